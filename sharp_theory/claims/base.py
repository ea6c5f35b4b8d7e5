"""Claims: the unit of truth. A claim turns a lab's measured numbers into a verdict.

Each claim has an id (``paperkey.topic.statement``), a statement in our own words that names its
threshold, the regime where it should hold, the lab that measures it, the verdict we expect, and
``check(measured, *, quick)`` returning a :class:`Verdict` with the numbers it used and its
*decisive number*: the one quantity compared with the claim's threshold.

One verdict engine (:meth:`Claim.evaluate`) stands between every check and its verdict, so a
check cannot certify what its numbers do not support:

- the check reads ``measured`` through a recording view: reading a NaN, ±Inf or JSON ``null``
  stops the check and makes the verdict "inconclusive", naming the key path; so do non-finite
  numbers in the verdict's own numbers or decisive value;
- any run status other than "ok" (e.g. "diverged at step 812") makes it "inconclusive" too,
  unless the claim is about divergence (``about_divergence=True``);
- a key the check needs but the lab did not record is an error of the lab in a full-size run
  (:class:`LabDidNotMeasure` is raised, the run fails loudly); in a quick run it is
  "inconclusive" with the key named.

Checks compare numbers through :func:`judge` and the fail-closed helpers (:func:`finite_max`,
:func:`finite_min`, :func:`finite_values`), which raise :class:`NonFiniteMeasurement` instead of
silently dropping a NaN the way ``max``/``min`` do.
"""
from __future__ import annotations

import dataclasses
import inspect
import math
import operator
from collections.abc import Mapping, Sequence
from typing import Any, Callable, Iterable, Iterator

import numpy as np

from ..errors import ConfigError

VERDICTS = ("pass", "fail", "inconclusive")
"""The three verdicts a claim can get: ``"pass"``, ``"fail"``, ``"inconclusive"``."""
RELATIONS = {"<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge,
             "==": operator.eq}
OK_STATUS = "ok"
STATUS_KEYS = ("status", "statuses")


class NonFiniteMeasurement(ValueError):
    """A number a check relies on is NaN, infinite or missing (JSON null)."""


class MissingMeasurement(KeyError):
    """The check asked for a key the lab did not record (raised by the recording view)."""

    def __init__(self, path: str):
        super().__init__(path)
        self.path = path

    def __str__(self) -> str:
        return self.path


class LabDidNotMeasure(RuntimeError):
    """A full-size run lacks a number one of its claims needs: an error of the lab, not a verdict."""


# --- the decisive number ----------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class Threshold:
    """A named number compared with a threshold: ``value relation bound`` must hold for a pass.

    Attributes:
      name: what the number is (``"max λ_max/(2/η) over runs"``).
      value: the measured value.
      relation: one of ``<``, ``<=``, ``>``, ``>=``, ``==``.
      bound: the threshold.
    """

    name: str
    value: float
    relation: str
    bound: float

    def __post_init__(self):
        if self.relation not in RELATIONS:
            raise ValueError(f"relation must be one of {tuple(RELATIONS)}, got {self.relation!r}")

    def holds(self) -> bool:
        """Whether the value is on the passing side of the threshold (False for NaN)."""
        value = float(self.value)
        return math.isfinite(value) and bool(RELATIONS[self.relation](value, float(self.bound)))

    def describe(self) -> str:
        return f"{self.name} = {float(self.value):.4g} (pass if {self.relation} {float(self.bound):.4g})"

    def as_dict(self) -> dict:
        return {"name": self.name, "value": float(self.value), "relation": self.relation,
                "threshold": float(self.bound), "holds": self.holds()}


@dataclasses.dataclass(frozen=True)
class Verdict:
    """The outcome of a claim's check.

    Attributes:
      verdict: "pass", "fail" or "inconclusive".
      measured: the numbers the check used (shown in tables and cards).
      detail: how the numbers were judged, or why no judgement was possible.
      decisive: the number whose side of its threshold decides pass vs fail (None only where
        the check could not get that far, e.g. a quick run too small to judge).
    """

    verdict: str
    measured: dict
    detail: str = ""
    decisive: Threshold | None = None

    def __post_init__(self):
        if self.verdict not in VERDICTS:
            raise ValueError(f"verdict must be one of {VERDICTS}, got {self.verdict!r}")


def judge(decisive: Threshold, numbers: dict, detail: str = "", *,
          also: Iterable[Threshold] = ()) -> Verdict:
    """Judge a claim's numbers: "pass" iff the decisive number and every further condition are on
    their passing side.

    Args:
      decisive: the headline comparison (the number the claim's statement names).
      numbers: the numbers to report with the verdict.
      detail: how they were measured and judged.
      also: side conditions that must hold as well (each a :class:`Threshold`), e.g. "no run
        diverged" or "the premise of the theorem holds"; the first one that fails is named.

    Returns:
      A Verdict carrying ``decisive``; "inconclusive" if any compared value is not finite.

    Examples:
      >>> from sharp_theory.claims import Threshold, judge
      >>> ratio = Threshold("max λ_max/(2/η)", 0.97, "<", 1.1)
      >>> judge(ratio, {"ratio": 0.97}).verdict
      'pass'
      >>> premise = Threshold("η λ_1 (premise < 1)", 1.5, "<", 1.0)
      >>> outcome = judge(ratio, {"ratio": 0.97}, "GD runs", also=[premise])
      >>> outcome.verdict, outcome.detail
      ('fail', 'GD runs; side condition failed: η λ_1 (premise < 1) = 1.5 (pass if < 1)')
      >>> judge(Threshold("ratio", float("nan"), "<", 1.1), {}).verdict  # fails closed
      'inconclusive'
    """
    conditions = [decisive, *also]
    for condition in conditions:
        if not math.isfinite(float(condition.value)):
            return Verdict("inconclusive", numbers,
                           f"{condition.name} is not finite ({condition.value}): {detail}", decisive)
    failing = [c for c in conditions[1:] if not c.holds()]
    passed = decisive.holds() and not failing
    if failing:
        detail = f"{detail}; side condition failed: {failing[0].describe()}"
    return Verdict("pass" if passed else "fail", numbers, detail, decisive)


def inconclusive(numbers: dict, reason: str, decisive: Threshold | None = None) -> Verdict:
    """A verdict that says why the numbers cannot decide.

    Args:
      numbers: the numbers measured so far (reported with the verdict).
      reason: why no judgement is possible (e.g. "quick run too small to judge").
      decisive: the decisive comparison, when it could be formed (else None).

    Returns:
      An "inconclusive" :class:`Verdict`.
    """
    return Verdict("inconclusive", numbers, reason, decisive)


def verdict(condition: bool, measured: dict, detail: str = "") -> Verdict:
    """Legacy form without a decisive number: "pass" if ``condition`` holds, else "fail".

    Registered claims use :func:`judge`; this stays for ad-hoc claims (tests, notebooks). The
    engine still makes any NaN the check read, or in ``measured``, "inconclusive".

    Args:
      condition: whether the claim holds (converted with ``bool``).
      measured: the numbers to report with the verdict.
      detail: how they were judged.

    Returns:
      A "pass" or "fail" :class:`Verdict` without a decisive number.
    """
    return Verdict("pass" if bool(condition) else "fail", measured, detail)


def format_decisive(row: dict) -> str:
    """"name = value (pass if < threshold)" for a results.json claim row, "" without a decisive."""
    decisive = row.get("decisive")
    if not isinstance(decisive, dict) or not decisive:
        return ""

    def number(value) -> str:  # JSON stores NaN as null; a hand-edited file may hold anything
        try:
            return f"{float(value):.4g}"
        except (TypeError, ValueError):
            return "nan" if value is None else repr(value)

    return (f"{decisive.get('name', '?')} = {number(decisive.get('value'))} "
            f"(pass if {decisive.get('relation', '?')} {number(decisive.get('threshold'))})")


# --- fail-closed helpers -----------------------------------------------------------------------------

def finite_values(values, name: str = "value") -> list[float]:
    """``values`` (a number, list, array or nested list) as a flat list of floats, all finite.

    Args:
      values: a number, list, tuple, numpy array, or nested mix of them.
      name: the name used in the error message (the key path of the values).

    Returns:
      A flat list of Python floats.

    Raises:
      NonFiniteMeasurement: if any value is NaN, ±Inf or None.
    """
    flat = []
    for path, leaf in _numeric_leaves(_unwrap(values), name, every=True):
        number = _as_number(leaf)
        if number is None or not math.isfinite(number):
            raise NonFiniteMeasurement(f"{path} is {leaf!r}")
        flat.append(number)
    return flat


def finite(value, name: str = "value") -> float:
    """One finite float (raises :class:`NonFiniteMeasurement` otherwise).

    Args:
      value: a number or a one-element container.
      name: the name used in error messages.

    Returns:
      The value as a Python float.

    Raises:
      NonFiniteMeasurement: the value is NaN, ±Inf or None.
      ValueError: ``value`` holds more or fewer than one number.
    """
    values = finite_values(value, name)
    if len(values) != 1:
        raise ValueError(f"{name}: expected one number, got {len(values)}")
    return values[0]


def finite_max(values, name: str = "value") -> float:
    """``max`` that fails closed: a NaN anywhere raises instead of being skipped.

    Args:
      values: numbers (any nesting accepted by :func:`finite_values`).
      name: the name used in error messages.

    Returns:
      The largest value, a Python float.

    Raises:
      NonFiniteMeasurement: a value is NaN, ±Inf or None, or ``values`` is empty.
    """
    flat = finite_values(values, name)
    if not flat:
        raise NonFiniteMeasurement(f"{name} is empty")
    return max(flat)


def finite_min(values, name: str = "value") -> float:
    """``min`` that fails closed: a NaN anywhere raises instead of being skipped.

    Args:
      values: numbers (any nesting accepted by :func:`finite_values`).
      name: the name used in error messages.

    Returns:
      The smallest value, a Python float.

    Raises:
      NonFiniteMeasurement: a value is NaN, ±Inf or None, or ``values`` is empty.
    """
    flat = finite_values(values, name)
    if not flat:
        raise NonFiniteMeasurement(f"{name} is empty")
    return min(flat)


# --- walking numbers ---------------------------------------------------------------------------------

def _as_number(leaf) -> float | None:
    """A numeric leaf as a float (None stays None: a NaN written to JSON as null)."""
    if leaf is None:
        return None
    if isinstance(leaf, str):
        return float(leaf)  # only "nan", "inf", "-inf" reach here
    return float(leaf)


_NONFINITE_STRINGS = ("nan", "inf", "-inf", "+inf", "infinity", "-infinity")


def _numeric_leaves(value, path: str, every: bool = False) -> Iterator[tuple[str, Any]]:
    """(path, leaf) for the numbers in a nested structure; None and "inf"/"nan" strings count.

    Strings other than the non-finite spellings JSON writers use are not numbers and are skipped.
    A numeric array yields its first non-finite element, or (``every=False``, enough to look for
    NaN) one finite stand-in, or (``every=True``) all its elements.
    """
    if isinstance(value, Mapping):
        for key, item in value.items():
            yield from _numeric_leaves(item, f"{path}.{key}", every)
    elif isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            yield from _numeric_leaves(item, f"{path}[{index}]", every)
    elif isinstance(value, str):
        if value.strip().lower() in _NONFINITE_STRINGS:
            yield path, value
    elif value is None or isinstance(value, (bool, np.bool_)):
        if value is None:
            yield path, None
    elif isinstance(value, (int, float, np.number)):
        yield path, value
    elif hasattr(value, "__array__"):
        array = np.asarray(value)
        if array.dtype.kind in "biufc":
            flat = array.reshape(-1)
            bad = np.flatnonzero(~np.isfinite(flat)) if array.dtype.kind in "fc" else []
            if len(bad):
                index = np.unravel_index(int(bad[0]), array.shape) if array.ndim else ()
                yield f"{path}{list(index) if index else ''}", flat[int(bad[0])].item()
            elif every:
                for index, item in enumerate(flat.tolist()):
                    yield f"{path}[{index}]", item
            elif flat.size:
                yield path, 0.0  # finite array: one stand-in is enough to look for NaN
        elif array.dtype.kind == "O":
            yield from _numeric_leaves(array.tolist(), path, every)


def first_nonfinite(value, path: str = "measured") -> str | None:
    """The key path of the first NaN/Inf/null number in ``value``, with the value; else None."""
    for where, leaf in _numeric_leaves(_unwrap(value), path):
        number = _as_number(leaf)
        if number is None or not math.isfinite(number):
            return f"{where} = {leaf!r}"
    return None


def _statuses(value, path: str) -> Iterator[tuple[str, str]]:
    """(path, status) for every status string in a status value (a string, list or dict)."""
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, Mapping):
        for key, item in value.items():
            yield from _statuses(item, f"{path}.{key}")
    elif isinstance(value, (list, tuple)) or hasattr(value, "__array__"):
        for index, item in enumerate(np.asarray(value, dtype=object).reshape(-1).tolist()
                                     if not isinstance(value, (list, tuple)) else value):
            yield from _statuses(item, f"{path}[{index}]")


# --- the recording view ------------------------------------------------------------------------------

def _format_path(path: tuple) -> str:
    text = "measured"
    for key in path:
        text += f"[{key}]" if isinstance(key, int) else f".{key}"
    return text


class _ReadLog:
    """The key paths a check read (leaves) and the status entries of the runs it read from."""

    def __init__(self):
        self.leaves: dict[tuple, Any] = {}
        self.statuses: dict[tuple, Any] = {}


def _wrap(value, path: tuple, log: _ReadLog):
    """A recording view of ``value`` (dicts and lists holding dicts); other leaves are logged.

    Raises:
      NonFiniteMeasurement: when the leaf read holds a NaN, ±Inf or null: the check stops at the
        first number it cannot trust, before it can drop it (``max``) or compare it (NaN < x is
        False, which reads as a fail or, negated, a pass).
    """
    if isinstance(value, Mapping):
        return _ReadMap(value, path, log)
    if isinstance(value, (list, tuple)) and any(isinstance(v, Mapping) for v in value):
        return _ReadList(value, path, log)  # a list of runs: log what is read of each
    log.leaves[path] = value
    bad = first_nonfinite(value, _format_path(path))
    if bad:
        raise NonFiniteMeasurement(bad)
    return value


class _ReadMap(Mapping):
    """A read-only dict view that logs every key read and the status of the dict it belongs to."""

    def __init__(self, data: Mapping, path: tuple, log: _ReadLog):
        self._data, self._path, self._log = data, path, log

    def _note_status(self):
        for key in STATUS_KEYS:
            if key in self._data:
                self._log.statuses[self._path + (key,)] = self._data[key]

    def __getitem__(self, key):
        if key not in self._data:
            raise MissingMeasurement(_format_path(self._path + (key,)))
        self._note_status()
        return _wrap(self._data[key], self._path + (key,), self._log)

    def __contains__(self, key) -> bool:
        return key in self._data

    def __iter__(self):
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __repr__(self) -> str:
        return f"_ReadMap({_format_path(self._path)})"


class _ReadList(Sequence):
    """A read-only list view (for lists of runs) that logs the elements read."""

    def __init__(self, data, path: tuple, log: _ReadLog):
        self._data, self._path, self._log = list(data), path, log

    def __getitem__(self, index):
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self._data)))]
        if index < 0:
            index += len(self._data)
        return _wrap(self._data[index], self._path + (index,), self._log)

    def __len__(self) -> int:
        return len(self._data)


def _unwrap(value):
    """Plain Python/numpy values from recording views (for results.json and for walking)."""
    if isinstance(value, _ReadMap):
        return {k: _unwrap(v) for k, v in value._data.items()}
    if isinstance(value, _ReadList):
        return [_unwrap(v) for v in value._data]
    if isinstance(value, Mapping):
        return {k: _unwrap(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_unwrap(v) for v in value]
    return value


def read_paths(check: Callable, measured: dict, *, quick: bool) -> tuple[dict, dict]:
    """Run ``check`` on a recording view of ``measured``: (leaves read, statuses read), by path.

    Used by the mutation tests to know which numbers a check depends on.
    """
    log = _ReadLog()
    try:
        check(_wrap(measured, (), log), quick=quick)
    except (NonFiniteMeasurement, MissingMeasurement):
        pass
    return dict(log.leaves), dict(log.statuses)


# --- claims ------------------------------------------------------------------------------------------

def _takes_quick(check: Callable) -> bool:
    try:
        parameters = inspect.signature(check).parameters
    except (TypeError, ValueError):
        return False
    return "quick" in parameters and parameters["quick"].kind == inspect.Parameter.KEYWORD_ONLY


@dataclasses.dataclass(frozen=True)
class Claim:
    """A published (or derived) statement with a check that can fail.

    Attributes:
      id: unique id, e.g. ``li2024.balancedness.sam_decreases``.
      paper: paper key (matches the card in papers/), e.g. ``li2024``.
      source: where in the paper (``Thm 2``, ``Lemma 1``, ``derived``).
      statement: the claim in our own words, naming its threshold.
      regime: the setting in which it is claimed (and in which we test it).
      lab: the lab whose results.json holds the numbers (``balancedness``).
      check: ``check(measured: dict, *, quick: bool) -> Verdict``.
      expected: the verdict we expect ("pass" normally; "fail" where our simulation shows the
        claim breaking and that finding is itself the result).
      about_divergence: the claim is about runs that diverge, so a run status other than "ok"
        is data for it rather than a reason to withhold the verdict.
      established_on: the size or grid on which ``expected`` was established (every lab's
        full run by default; "--grid cpu" for the conv-ReLU grid's claims).
      expected_on: grid name -> the expected verdict on that grid, where it differs from
        ``expected`` (a verdict that flips with size is a finding; the card gives both numbers).
    """

    id: str
    paper: str
    source: str
    statement: str
    regime: str
    lab: str
    check: Callable[..., Verdict]
    expected: str = "pass"
    about_divergence: bool = False
    established_on: str = "the lab's full run"
    expected_on: dict = dataclasses.field(default_factory=dict)

    def expected_for(self, grid: str | None = None) -> str:
        """The expected verdict on ``grid`` (a lab's ``--grid`` name; None: the default)."""
        return self.expected_on.get(grid, self.expected) if grid else self.expected

    def judge(self, measured: dict, *, quick: bool) -> Verdict:
        """The engine: run the check on a recording view, then overrule it where it cannot decide.

        Args:
          measured: the lab's measured numbers (nested dicts/lists/arrays).
          quick: whether the run used the lab's --quick sizes.

        Returns:
          The check's Verdict, or an "inconclusive" one naming the NaN, the run status or (in a
          quick run) the missing key that prevents a verdict.

        Raises:
          LabDidNotMeasure: in a full-size run, when the check needs a key the lab did not record.
        """
        log = _ReadLog()
        view = _wrap(measured, (), log)
        try:
            if _takes_quick(self.check):
                outcome = self.check(view, quick=quick)
            else:  # an ad-hoc claim (tests, notebooks) written as check(measured)
                outcome = self.check(view)
        except MissingMeasurement as missing:
            if not quick:
                raise LabDidNotMeasure(
                    f"claim {self.id} needs {missing.path}, which lab {self.lab!r} did not "
                    "record in a full-size run") from None
            return Verdict("inconclusive", {}, f"quick run: the lab did not measure {missing.path}")
        except NonFiniteMeasurement as error:
            return Verdict("inconclusive", {}, f"a number the check needs is NaN, infinite or "
                                               f"missing (null): {error}")
        except ZeroDivisionError:  # a measured denominator is exactly 0: the ratio is undefined
            return Verdict("inconclusive", {}, "a ratio the check forms has a measured "
                                               "denominator of 0")
        numbers = _unwrap(outcome.measured)
        outcome = dataclasses.replace(outcome, measured=numbers)
        for path, value in log.leaves.items():
            bad = first_nonfinite(value, _format_path(path))
            if bad:
                return dataclasses.replace(outcome, verdict="inconclusive",
                                           detail=f"a number the check read is not finite: {bad}")
        bad = first_nonfinite(numbers, "verdict numbers")
        if bad is None and outcome.decisive is not None:
            bad = first_nonfinite(outcome.decisive.value, f"decisive {outcome.decisive.name}")
        if bad:
            return dataclasses.replace(outcome, verdict="inconclusive",
                                       detail=f"a number the check computed is not finite: {bad}")
        if not self.about_divergence:
            for path, value in log.statuses.items():
                for where, status in _statuses(value, _format_path(path)):
                    if status != OK_STATUS:
                        return dataclasses.replace(
                            outcome, verdict="inconclusive",
                            detail=f"a run the check read did not finish cleanly: {where} = "
                                   f"{status!r}")
        return outcome

    def evaluate(self, measured: dict, *, quick: bool, grid: str | None = None) -> dict:
        """:meth:`judge`, as the row stored in results.json and shown in tables (``grid``: the
        lab's ``--grid``, which may change the expected verdict, see ``expected_on``)."""
        outcome = self.judge(measured, quick=quick)
        row = {"id": self.id, "paper": self.paper, "source": self.source,
               "statement": self.statement, "regime": self.regime,
               "expected": self.expected_for(grid), "established_on": self.established_on,
               "verdict": outcome.verdict, "measured": outcome.measured,
               "detail": outcome.detail}
        if outcome.decisive is not None:
            row["decisive"] = outcome.decisive.as_dict()
        return row


REGISTRY: dict[str, Claim] = {}
"""Every registered claim by id (filled when :mod:`sharp_theory.claims` imports its modules)."""


def register(claim: Claim) -> Claim:
    """Add ``claim`` to the registry; its check must take the run size as ``quick=``.

    Args:
      claim: the :class:`Claim` to register (its id must be new).

    Returns:
      ``claim`` itself (so a module can write ``NAME = register(Claim(...))``).

    Raises:
      ValueError: the id is already registered or ``expected`` is not a verdict.
      TypeError: the check does not take a keyword-only ``quick``.
    """
    if claim.id in REGISTRY:
        raise ValueError(f"claim id {claim.id!r} registered twice")
    if claim.expected not in VERDICTS or not set(claim.expected_on.values()) <= set(VERDICTS):
        raise ValueError(f"claim {claim.id!r}: expected must be one of {VERDICTS}")
    if not _takes_quick(claim.check):
        raise TypeError(f"claim {claim.id!r}: check must be check(measured, *, quick)")
    REGISTRY[claim.id] = claim
    return claim


def get(claim_id: str) -> Claim:
    """The registered claim with id ``claim_id``.

    Args:
      claim_id: a claim id such as ``"li2024.balancedness.sam_decreases"``.

    Returns:
      The :class:`Claim`.

    Raises:
      ConfigError: no claim has that id.
    """
    if claim_id not in REGISTRY:
        raise ConfigError("claim", claim_id, "a registered claim id (see `sharp-theory list`)")
    return REGISTRY[claim_id]


def all_claims() -> list[Claim]:
    """Every registered claim, sorted by id.

    Returns:
      A list of :class:`Claim`.
    """
    return sorted(REGISTRY.values(), key=lambda c: c.id)


def claims_for_lab(lab: str) -> list[Claim]:
    """The registered claims whose numbers a lab measures, sorted by id.

    Args:
      lab: the lab name (e.g. ``"balancedness"``).

    Returns:
      A list of :class:`Claim` (empty for an unknown lab).
    """
    return [c for c in all_claims() if c.lab == lab]
