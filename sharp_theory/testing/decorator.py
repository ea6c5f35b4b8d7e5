"""The ``claim`` decorator: a bound written as a function that returns its slack.

A claim is a function of drawn values (keyword arguments, one hypothesis strategy each) that
returns a float *slack*: ``slack >= 0`` means the bound holds on that instance, ``slack < 0``
means it is violated. ``hypothesis.assume(condition)`` inside the function states the regime.
A NaN slack is never "holds": it is reported as an error.

``vectorized=True`` claims receive one array per drawn value (a leading axis of ``batch``
instances) and return an array of slacks, or ``(slacks, in_regime)`` with a boolean mask instead
of ``assume``; the fuzzer then evaluates ``batch`` instances per call (one compiled program for
all of them).
"""
from __future__ import annotations

import dataclasses
import json
import math
from typing import Any, Callable

import numpy as np

from ..errors import ConfigError, check_int



class ClaimError(Exception):
    """A claim could not be evaluated (it raised, returned a NaN, or never met its regime).

    The message is one line naming the claim and the drawn values.
    """


@dataclasses.dataclass(frozen=True)
class Claim:
    """A fuzzable bound.

    Attributes:
      name: the function's name (what ``FILE::NAME`` selects).
      fn: the undecorated function ``fn(**values) -> slack``.
      strategies: dict value name -> hypothesis strategy.
      statement: the docstring's first paragraph on one line (the bound in words).
      max_examples: examples when run as a pytest test.
      vectorized: whether ``fn`` takes a batch of draws at once.
      batch: draws per call of a vectorized claim (a fixed size: one compiled program).
      seed: the search seed when run as a pytest test.
    """

    name: str
    fn: Callable
    strategies: dict
    statement: str = ""
    max_examples: int = 100
    vectorized: bool = False
    batch: int = 32
    seed: int = 0

    def evaluate(self, values: dict):
        """``(slack, in_regime)`` at one instance, on the same code path as the search's replay.

        A vectorized claim is evaluated on a batch made of ``batch`` copies of the instance
        (the compiled program the search used), and entry 0 is returned. Hypothesis's
        ``assume`` failing gives ``in_regime = False``.
        """
        import warnings

        from hypothesis.errors import HypothesisDeprecationWarning, UnsatisfiedAssumption

        if not self.vectorized:
            try:
                with warnings.catch_warnings():  # assume() outside a search: we catch its signal
                    warnings.simplefilter("ignore", HypothesisDeprecationWarning)
                    return self.fn(**values), True
            except UnsatisfiedAssumption:
                return math.nan, False
        stacked = {k: np.stack([np.asarray(v)] * self.batch) for k, v in values.items()}
        slacks, regime = self.evaluate_batch(stacked)
        return slacks[0], bool(regime[0])

    def evaluate_batch(self, stacked: dict):
        """``(slacks, in_regime)`` arrays for a vectorized claim on stacked draws."""
        out = self.fn(**stacked)
        if isinstance(out, tuple) and len(out) == 2:
            slacks, regime = out
        else:
            slacks, regime = out, np.ones(self.batch, dtype=bool)
        slacks = np.asarray(slacks, dtype=np.float64).reshape(-1)
        regime = np.broadcast_to(np.asarray(regime, dtype=bool).reshape(-1), slacks.shape)
        if slacks.shape != (self.batch,):
            raise ClaimError(f"claim {self.name}: a vectorized claim must return {self.batch} "
                             f"slacks (one per draw), got shape {slacks.shape}")
        return slacks, regime


def as_slack(claim_name: str, value, values: dict) -> float:
    """The claim's return value as a float, or a one-line :class:`ClaimError`."""
    try:
        slack = float(np.asarray(value, dtype=np.float64).reshape(()))
    except (TypeError, ValueError):
        raise ClaimError(f"claim {claim_name} returned {type(value).__name__} {value!r:.60} at "
                         f"{format_values(values)}: expected one float slack "
                         "(>= 0 holds, < 0 violated)") from None
    if math.isnan(slack):
        raise ClaimError(f"claim {claim_name} returned a NaN slack at {format_values(values)}: "
                         "a NaN is never 'holds'; make the bound finite on its regime or "
                         "exclude the instance with hypothesis.assume")
    return slack


def claim(*, max_examples: int = 100, vectorized: bool = False, batch: int = 32, seed: int = 0,
          **strategies) -> Callable:
    """Turn ``fn(**values) -> slack`` into a fuzzable claim that is also a pytest test.

    Args:
      max_examples: instances hypothesis tries when the function runs as a pytest test.
      vectorized: ``fn`` takes one array per value (leading axis of size ``batch``) and returns
        ``batch`` slacks, or ``(slacks, in_regime)``.
      batch: draws per call of a vectorized claim, in [1, 256].
      seed: the search seed under pytest (the CLI's ``--seed`` overrides it).
      **strategies: one hypothesis strategy per keyword argument of ``fn``.

    Returns:
      A function with no parameters that pytest collects (name it ``test_*``): it fuzzes the
      claim and fails with the shrunk counterexample and its replay command. Called with
      keyword values, ``decorated(**values)`` returns the slack at those values. The
      :class:`Claim` record is ``decorated.claim``.

    Examples:
      A false bound (GD contracts for every step size) is falsified and moved to its boundary
      ``lr·lam = 2``; stated inside its regime with ``assume`` it holds:

      >>> import sharp_theory as st
      >>> from hypothesis import assume, strategies as hs
      >>> @st.testing.claim(lr=hs.floats(0.01, 1.0), lam=hs.floats(0.1, 10.0))
      ... def gd_contracts(lr, lam):
      ...     "One GD step on lam·x²/2 shrinks |x|: |1 − lr·lam| ≤ 1."
      ...     return 1.0 - abs(1.0 - lr * lam)
      >>> gd_contracts(lr=0.1, lam=5.0)  # the slack at one instance
      0.5
      >>> result = st.testing.fuzz(gd_contracts.claim, max_examples=100, budget_s=None, seed=0)
      >>> result.verdict, result.slack < 0
      ('falsified', True)
      >>> values = result.counterexample
      >>> result.boundary["parameter"] in values, round(values["lr"] * values["lam"], 9)
      (True, 2.0)
      >>> @st.testing.claim(lr=hs.floats(0.01, 1.0), lam=hs.floats(0.1, 10.0))
      ... def gd_contracts_below_edge(lr, lam):
      ...     "Below the edge (lr·lam < 2) one GD step on lam·x²/2 shrinks |x|."
      ...     assume(lr * lam < 2.0)
      ...     return 1.0 - abs(1.0 - lr * lam)
      >>> st.testing.fuzz(gd_contracts_below_edge.claim, max_examples=100, budget_s=None,
      ...                 seed=0).verdict
      'holds'

    References:
      MacIver, Hatfield-Dodds et al. Hypothesis: a new approach to property-based testing.
      JOSS 4(43), 2019 (the search, ``target`` and shrinking underneath).
    """
    from hypothesis.strategies import SearchStrategy

    check_int("max_examples", max_examples, minimum=1)
    check_int("batch", batch, minimum=1, maximum=256)
    check_int("seed", seed, minimum=0)
    if not strategies:
        raise ConfigError("strategies", "none", "at least one keyword argument name=strategy")
    for name, strategy in strategies.items():
        if not isinstance(strategy, SearchStrategy):
            raise ConfigError(name, strategy, "a hypothesis strategy (e.g. hypothesis.strategies"
                                              ".floats(0.1, 10.0))")

    def decorate(fn: Callable) -> Callable:
        doc = (fn.__doc__ or "").strip()
        record = Claim(name=fn.__name__, fn=fn, strategies=dict(strategies),
                       statement=" ".join(doc.split("\n\n")[0].split()), max_examples=max_examples,
                       vectorized=bool(vectorized), batch=batch if vectorized else 1, seed=seed)

        def run_or_evaluate(**values):
            if values:
                slack, in_regime = record.evaluate(values)
                return slack if in_regime else math.nan
            from .runner import fuzz

            result = fuzz(record, max_examples=record.max_examples, seed=record.seed,
                          budget_s=None, replay_target=f"{source_file(fn)}::{record.name}")
            if result.verdict == "error":
                raise ClaimError(result.error)
            if result.verdict == "falsified":
                raise AssertionError(result.describe())
            return None

        # Not functools.wraps: pytest would follow __wrapped__ and ask for fixtures named
        # after the drawn values.
        for attribute in ("__name__", "__qualname__", "__doc__", "__module__"):
            setattr(run_or_evaluate, attribute, getattr(fn, attribute))
        run_or_evaluate.claim = record
        run_or_evaluate.__sharp_claim__ = record
        return run_or_evaluate

    return decorate


def source_file(fn) -> str:
    code = getattr(fn, "__code__", None)
    return code.co_filename if code is not None else "FILE"


def format_values(values: dict) -> str:
    """``name=value, ...`` with floats in repr (exact) form."""
    return ", ".join(f"{k}={v!r}" for k, v in values.items())


# --- values <-> JSON (exact for floats: repr round-trips a float64) -----------------------------

def encode_value(value: Any):
    """A drawn value as JSON: numbers, strings, lists, numpy arrays (with their dtype), and
    instances as their family and spec. Floats are written exactly (repr round-trips)."""
    from .instances import Instance

    if isinstance(value, Instance):
        return {"instance": value.family, "spec": encode_value(value.spec)}
    if isinstance(value, dict):
        return {str(k): encode_value(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [encode_value(v) for v in value]
    if isinstance(value, np.ndarray):
        return {"array": value.tolist(), "dtype": str(value.dtype)}
    if isinstance(value, (np.floating, np.integer, np.bool_)):
        return value.item()
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise ConfigError("drawn value", value, "numbers, strings, lists, dicts or st.testing "
                      "instances (other objects cannot be saved or replayed)")


def decode_value(value: Any):
    """The inverse of :func:`encode_value` (instances are rebuilt from their spec)."""
    from .instances import build_instance

    if isinstance(value, dict):
        if set(value) == {"instance", "spec"}:
            return build_instance(value["instance"], value["spec"])
        if set(value) == {"array", "dtype"}:
            return np.asarray(value["array"], dtype=value["dtype"])
        return {k: decode_value(v) for k, v in value.items()}
    if isinstance(value, list):
        return [decode_value(v) for v in value]
    return value


def values_to_json(values: dict) -> str:
    """Drawn values as one line of JSON (what ``--replay`` takes); floats are written exactly.

    Args:
      values: dict name -> drawn value (numbers, strings, lists, dicts, numpy arrays with their
        dtype, ``st.testing.instances`` instances as their family and spec).

    Returns:
      A compact JSON string.

    Raises:
      ConfigError: a value of another type (it could not be saved or replayed).

    Examples:
      >>> from sharp_theory.testing import values_from_json, values_to_json
      >>> text = values_to_json({"lr": 0.1, "lam": 1 / 3})
      >>> text
      '{"lr":0.1,"lam":0.3333333333333333}'
      >>> values_from_json(text)["lam"] == 1 / 3  # exact round trip
      True
    """
    return json.dumps({k: encode_value(v) for k, v in values.items()}, separators=(",", ":"))


def values_from_json(text: str) -> dict:
    """The drawn values of a ``--replay`` JSON string (the inverse of :func:`values_to_json`).

    Args:
      text: a JSON object name -> encoded value; instances are rebuilt from their spec and
        arrays with their dtype.

    Returns:
      dict name -> value.

    Raises:
      ConfigError: ``text`` is not valid JSON or not a JSON object (named as ``--replay``).
    """
    try:
        loaded = json.loads(text)
    except json.JSONDecodeError as error:
        raise ConfigError("--replay", text, f"a JSON object of drawn values ({error.msg})") from None
    if not isinstance(loaded, dict):
        raise ConfigError("--replay", text, "a JSON object name -> value")
    return {k: decode_value(v) for k, v in loaded.items()}
