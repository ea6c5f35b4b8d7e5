"""The fuzzer: a guided hypothesis search for a negative slack, shrinking, and a boundary step.

1. Search. Hypothesis draws instances from the claim's strategies and is told to maximize
   ``-slack`` (``hypothesis.target``), so draws drift towards the bound's edge instead of only
   sampling at random. A vectorized claim evaluates ``batch`` draws per call.
2. Shrink. The first violation is shrunk by hypothesis (smaller dimensions, simpler numbers).
3. Boundary. One float value of the shrunk counterexample is then bisected against the nearest
   value of that parameter at which the claim held (all other values fixed), so the reported
   counterexample sits next to the boundary of the claim's truth; ``boundary`` says how close.
4. Replay. The reported slack is recomputed on the replay code path (``Claim.evaluate``), so
   ``sharp-theory fuzz ... --replay VALUES`` prints the same float, bit for bit.

The search runs in chunks of examples with seeds derived from ``seed`` until ``budget_s``
seconds or ``max_examples`` instances are spent.
"""
from __future__ import annotations

import contextlib
import dataclasses
import math
import shlex
import time

import numpy as np

from .. import checkpoints
from ..errors import ConfigError, check_int
from .decorator import Claim, ClaimError, source_file, as_slack, format_values, values_to_json

CHUNK = 200            # hypothesis examples per search chunk
KEPT_PASSING = 4096    # passing instances remembered as anchors for the boundary step
BISECTIONS = 100       # at most this many halvings (float64 needs <= 64 from any bracket)


@dataclasses.dataclass(frozen=True)
class FuzzResult:
    """What one fuzz run found.

    Attributes:
      claim: the claim's name.
      statement: its docstring's first paragraph, on one line.
      verdict: "holds" (no violation in ``examples`` instances), "falsified", or "error".
      examples: instances evaluated inside the claim's regime.
      rejected: draws outside the regime (``assume`` failed / ``in_regime`` False).
      counterexample: the drawn values of the shrunk, boundary-refined violation (or None).
      slack: the slack at ``counterexample`` (bit-identical to what ``replay`` prints).
      min_slack: the smallest slack seen (how close a surviving claim came to failing; for a
        falsified claim, the worst violation found, which the boundary step does not move).
      worst: the values at which ``min_slack`` was seen (None when nothing was evaluated).
      seed: the search seed.
      elapsed_s: wall time of the search, in seconds.
      replay: a shell command that re-evaluates ``counterexample`` and prints ``slack``.
      boundary: {"parameter", "failing", "holding", "gap"}: the parameter moved to the boundary,
        its failing value, the nearest value found where the claim holds, and their distance.
      error: the one-line error for verdict "error".
      min_instances: the instances "holds" required (``fuzz(min_instances=...)``, capped at
        ``max_examples``); fewer makes the verdict "error".
    """

    claim: str
    statement: str
    verdict: str
    examples: int
    rejected: int
    counterexample: dict | None
    slack: float | None
    min_slack: float | None
    seed: int
    elapsed_s: float
    replay: str | None = None
    boundary: dict | None = None
    error: str | None = None
    worst: dict | None = None
    min_instances: int = 1

    def to_json(self) -> dict:
        """A JSON-ready dict (the ``--json`` output of one claim)."""
        import json

        counterexample = (None if self.counterexample is None
                          else json.loads(values_to_json(self.counterexample)))
        worst = None if self.worst is None else json.loads(values_to_json(self.worst))
        return {"claim": self.claim, "statement": self.statement, "verdict": self.verdict,
                "examples": self.examples, "min_instances": self.min_instances,
                "rejected": self.rejected,
                "counterexample": counterexample, "slack": _json_float(self.slack),
                "min_slack": _json_float(self.min_slack), "worst": worst, "seed": self.seed,
                "elapsed_s": round(self.elapsed_s, 3), "replay": self.replay,
                "boundary": self.boundary, "error": self.error}

    def describe(self) -> str:
        """Human-readable lines (the CLI's output and the pytest failure message)."""
        head = f"{self.claim}: {self.verdict} after {self.examples} instance(s) in {self.elapsed_s:.1f} s (seed {self.seed})"
        if self.verdict == "error":
            return f"{head}\n  error: {self.error}"
        if self.verdict == "holds":
            return head + (f" (at least {self.min_instances} required)" if self.min_instances > 1
                           else "") + ("" if self.min_slack is None
                                       else f"; smallest slack {self.min_slack!r}")
        lines = [head, f"  counterexample: {format_values(self.counterexample)}",
                 f"  slack: {self.slack!r}"]
        if self.boundary:
            b = self.boundary
            lines.append(f"  boundary: {b['parameter']} fails at {b['failing']!r}, holds at "
                         f"{b['holding']!r} (gap {b['gap']:.3g}); the counterexample sits there")
        if self.worst is not None and self.min_slack is not None and self.worst != self.counterexample:
            lines.append(f"  worst violation found: slack {self.min_slack!r} at "
                         f"{format_values(self.worst)}")
        lines.append(f"  replay: {self.replay}")
        return "\n".join(lines)


def _json_float(value):
    if value is None or not math.isfinite(value):
        return None if value is None else repr(value)
    return value


class _Violation(AssertionError):
    """Raised inside the search at a negative slack (hypothesis then shrinks the draw)."""


class _OutOfTime(BaseException):
    """Ends a search chunk at the budget. A BaseException, so hypothesis stops at once instead
    of treating it as a failure to shrink (as it would an Exception) or drawing on."""


class _Search:
    """Counters and memory of one search (private, mutable by design: hypothesis calls back)."""

    def __init__(self, claim: Claim, deadline: float, progress=None):
        self.claim, self.deadline, self.progress = claim, deadline, progress
        self.worst: dict | None = None
        self.valid = self.rejected = 0
        self.found = False
        self.timed_out = False
        self.in_claim = False
        self.last_values: dict | None = None
        self.last_slack: float | None = None
        self.min_slack = math.inf
        self.passing: list[dict] = []

    def out_of_time(self) -> bool:
        return not self.found and time.monotonic() > self.deadline

    def count(self, instances: int) -> None:
        self.valid += instances
        if self.progress is not None:
            self.progress.instances = self.valid

    def stop_if_out_of_time(self) -> None:
        if self.out_of_time():
            raise _OutOfTime()

    def keep_passing(self, values: dict) -> None:
        if len(self.passing) < KEPT_PASSING:
            self.passing.append(values)

    def one(self, values: dict) -> None:
        from hypothesis import target
        from hypothesis.errors import UnsatisfiedAssumption

        self.stop_if_out_of_time()
        self.last_values, self.in_claim = values, True
        try:
            raw = self.claim.fn(**values)
        except UnsatisfiedAssumption:
            self.rejected += 1
            self.in_claim = False
            raise
        slack = as_slack(self.claim.name, raw, values)
        self.in_claim = False
        self.count(1)
        if slack < self.min_slack:
            self.min_slack, self.worst = slack, dict(values)
        target(float(np.clip(-slack, -1e300, 1e300)), label="negative slack")
        if slack < 0:
            self.found, self.last_slack = True, slack
            raise _Violation(f"slack {slack!r} < 0 at {format_values(values)}")
        self.keep_passing(values)

    def many(self, draws: list) -> None:
        from hypothesis import assume, target

        self.stop_if_out_of_time()
        keys = list(self.claim.strategies)
        self.last_values, self.in_claim = draws[0], True
        stacked = {k: np.stack([np.asarray(d[k]) for d in draws]) for k in keys}
        slacks, regime = self.claim.evaluate_batch(stacked)
        self.in_claim = False
        self.rejected += int(np.sum(~regime))
        if not regime.any():
            assume(False)
        nan = regime & np.isnan(slacks)
        if nan.any():
            index = int(np.argmax(nan))
            self.last_values = draws[index]
            as_slack(self.claim.name, math.nan, draws[index])
        self.count(int(np.sum(regime)))
        masked = np.where(regime, slacks, np.inf)
        worst = int(np.argmin(masked))
        if float(masked[worst]) < self.min_slack:
            self.min_slack, self.worst = float(masked[worst]), dict(draws[worst])
        target(float(np.clip(-masked[worst], -1e300, 1e300)), label="negative slack")
        if masked[worst] < 0:
            self.found, self.last_slack, self.last_values = True, float(masked[worst]), draws[worst]
            raise _Violation(f"slack {masked[worst]!r} < 0 at {format_values(draws[worst])}")
        for index in np.flatnonzero(regime)[:8]:
            self.keep_passing(draws[int(index)])


def _run_chunk(search: _Search, examples: int, chunk_seed: int) -> None:
    from hypothesis import HealthCheck, Phase, Verbosity, given, settings
    from hypothesis import seed as hypothesis_seed
    from hypothesis import strategies as hs

    claim = search.claim
    drawn = hs.fixed_dictionaries(claim.strategies)
    if claim.vectorized:
        strategy = hs.lists(drawn, min_size=claim.batch, max_size=claim.batch)
        body = search.many
    else:
        strategy, body = drawn, search.one

    @settings(max_examples=examples, deadline=None, database=None, derandomize=False,
              suppress_health_check=list(HealthCheck), report_multiple_bugs=False,
              print_blob=False, verbosity=Verbosity.quiet,
              phases=(Phase.explicit, Phase.generate, Phase.target, Phase.shrink))
    @hypothesis_seed(chunk_seed)
    @given(strategy)
    def search_chunk(draw):
        body(draw)

    search_chunk()


def _one_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0] if text else ''}".strip().rstrip(":")


def raised_where(error: BaseException, claim: Claim) -> str:
    """``FILE:LINE`` of the innermost frame of ``error``'s traceback in the claim's own file
    (else the innermost frame outside sharp_theory, hypothesis and JAX), or "" when none."""
    import traceback

    frames = traceback.extract_tb(error.__traceback__)
    own = source_file(claim.fn)
    chosen = [f for f in frames if f.filename == own]
    if not chosen:
        skipped = ("/sharp_theory/", "/hypothesis/", "/jax/", "/jaxlib/", "/numpy/")
        chosen = [f for f in frames if not any(part in f.filename for part in skipped)]
    return f"{chosen[-1].filename}:{chosen[-1].lineno}" if chosen else ""


def fuzz(claim: Claim, *, budget_s: float | None = 60.0, seed: int = 0,
         max_examples: int | None = None, replay_target: str | None = None,
         refine_boundary: bool = True, min_instances: int = 1, progress=None) -> FuzzResult:
    """Search for a counterexample to ``claim``.

    Args:
      claim: a :class:`Claim` (``decorated.claim``).
      budget_s: wall-clock budget of the search (None: only ``max_examples`` limits it).
      seed: the search seed (same seed, same draws).
      max_examples: stop after this many hypothesis examples (None: the budget decides; with
        neither, the claim's own ``max_examples``).
      replay_target: how the replay command names the claim (``FILE::NAME`` or
        ``--registered NAME``; default: the file that defines the claim's function).
      refine_boundary: move the shrunk counterexample to the boundary (see module docstring).
      min_instances: "holds" needs at least this many instances inside the regime (capped at
        ``max_examples``); fewer is verdict "error" ("give it more time").
      progress: an object whose ``instances`` attribute is kept equal to the instances
        evaluated so far (the command line's watchdog reads it).

    Returns:
      A :class:`FuzzResult`. Never raises for a failing or broken claim: errors (the claim
      raised, returned NaN, or never satisfied its regime) are verdict "error".
    """
    min_instances = check_int("min_instances", min_instances, minimum=1)
    with _no_saved_stages():
        return _fuzz(claim, budget_s=budget_s, seed=seed, max_examples=max_examples,
                     replay_target=replay_target, refine_boundary=refine_boundary,
                     min_instances=min_instances, progress=progress)


@contextlib.contextmanager
def _no_saved_stages():
    """Inside ``sharp-theory reproduce`` each st.run call is a saved stage (sharp_theory.
    checkpoints); the thousands of runs of a search are not stages: switch the store off."""
    previous = checkpoints.activate(None)
    try:
        yield
    finally:
        checkpoints.activate(previous)


def _fuzz(claim: Claim, *, budget_s, seed, max_examples, replay_target, refine_boundary,
          min_instances=1, progress=None):
    from hypothesis.errors import Flaky, Unsatisfiable

    if budget_s is not None and not (budget_s > 0 and math.isfinite(budget_s)):
        raise ConfigError("budget_s", budget_s, "a finite number of seconds > 0")
    seed = check_int("seed", seed, minimum=0)
    if max_examples is not None:
        check_int("max_examples", max_examples, minimum=1)
    if budget_s is None and max_examples is None:
        max_examples = claim.max_examples
    started = time.monotonic()
    search = _Search(claim, started + budget_s if budget_s is not None else math.inf, progress)
    failure: BaseException | None = None
    spent, chunk_index = 0, 0
    while not search.found:
        if max_examples is not None and spent >= max_examples:
            break
        if time.monotonic() > search.deadline:
            break
        examples = CHUNK if max_examples is None else min(CHUNK, max_examples - spent)
        try:
            _run_chunk(search, examples, seed * 1_000_003 + chunk_index)
        except Unsatisfiable:
            if search.valid == 0 and not search.out_of_time():
                failure = ClaimError(f"claim {claim.name} never satisfied its assume(...) in "
                                     f"{search.rejected} draws: widen the strategies or the regime")
                break
        except _Violation:
            pass
        except _OutOfTime:
            search.timed_out = True
            break
        except ClaimError as error:
            failure = error
        except Flaky:
            failure = ClaimError(f"claim {claim.name} is not reproducible: it failed once at "
                                 f"{format_values(search.last_values or {})} and not when repeated; "
                                 "make it deterministic (explicit keys and seeds)")
        except Exception as error:  # the user's claim (or a strategy) raised: report, don't crash
            where = (f"at {format_values(search.last_values)}" if search.in_claim and
                     search.last_values is not None else "while drawing its values")
            line = raised_where(error, claim)
            failure = ClaimError(f"claim {claim.name} raised {_one_line(error)}"
                                 + (f" in {line}" if line else "") + f" {where}")
        if failure is not None:
            break
        spent += examples
        chunk_index += 1
    elapsed = time.monotonic() - started
    min_slack = None if math.isinf(search.min_slack) else search.min_slack
    required = min(min_instances, max_examples) if max_examples is not None else min_instances
    common = dict(claim=claim.name, statement=claim.statement, examples=search.valid,
                  rejected=search.rejected, min_slack=min_slack, seed=seed,
                  worst=None if search.worst is None else dict(search.worst),
                  min_instances=required)
    if failure is not None:
        return FuzzResult(verdict="error", counterexample=None, slack=None, elapsed_s=elapsed,
                          error=str(failure), **common)
    if not search.found:
        if search.valid == 0:
            reason = (f"evaluated no instance within --budget-s {budget_s:g} (give it more time)"
                      if search.timed_out and search.rejected == 0 else
                      f"never satisfied its assume(...) in {search.rejected} draws: widen the "
                      "strategies or the regime")
            return FuzzResult(verdict="error", counterexample=None, slack=None, elapsed_s=elapsed,
                              error=f"claim {claim.name} {reason}", **common)
        if search.valid < required:
            spent_on = f"--budget-s {budget_s:g}" if budget_s else f"{max_examples} examples"
            return FuzzResult(verdict="error", counterexample=None, slack=None, elapsed_s=elapsed,
                              error=f"claim {claim.name} was evaluated at only {search.valid} "
                                    f"instance(s) in {spent_on}, fewer than the {required} that "
                                    "'holds' requires (--min-instances): give it more time",
                              **common)
        return FuzzResult(verdict="holds", counterexample=None, slack=None, elapsed_s=elapsed, **common)
    counterexample, boundary = dict(search.last_values), None
    if refine_boundary:
        counterexample, boundary = refine_to_boundary(claim, counterexample, search.passing)
    slack, in_regime = claim.evaluate(counterexample)
    slack = float(slack)
    if not (in_regime and slack < 0):  # the replay path must see the violation the search saw
        return FuzzResult(verdict="error", counterexample=counterexample, slack=slack,
                          elapsed_s=time.monotonic() - started,
                          error=f"claim {claim.name} is not reproducible: slack "
                                f"{search.last_slack!r} in the search, {slack!r} (in regime: "
                                f"{in_regime}) when re-evaluated at "
                                f"{format_values(counterexample)}; make it deterministic "
                                "(explicit keys and seeds)", **common)
    target = replay_target or f"{source_file(claim.fn)}::{claim.name}"
    replay = f"sharp-theory fuzz {target} --replay {shlex.quote(values_to_json(counterexample))}"
    return FuzzResult(verdict="falsified", counterexample=counterexample, slack=slack,
                      elapsed_s=time.monotonic() - started, replay=replay, boundary=boundary,
                      **common)


def _evaluate_quietly(claim: Claim, values: dict):
    """Slack at ``values``, or None when out of the regime, NaN, or the claim raised."""
    try:
        slack, in_regime = claim.evaluate(values)
        slack = float(slack)
    except Exception:
        return None
    return slack if in_regime and not math.isnan(slack) else None


def refine_to_boundary(claim: Claim, failing: dict, passing: list, *, candidates: int = 8):
    """Move one float value of a counterexample to the boundary of the claim's truth.

    For each float-valued parameter in order, the remembered passing values of that parameter
    closest to the failing one are tried with every other value fixed; the first that makes
    the claim hold is bisected against the failing value until the two are adjacent floats (or
    the regime/NaN stops it).

    Args:
      claim: the :class:`Claim`.
      failing: a counterexample's values (dict name -> value).
      passing: a list of value dicts at which the claim held.
      candidates: passing values tried per parameter (≥ 1).

    Returns:
      ``(values, boundary)``: the refined counterexample (still failing) and
      ``{"parameter", "failing", "holding", "gap"}``, or ``(failing, None)`` when no
      single-parameter bracket was found.
    """
    for key, value in failing.items():
        if not isinstance(value, float) or not math.isfinite(value):
            continue
        seen = sorted({p[key] for p in passing
                       if isinstance(p.get(key), float) and math.isfinite(p[key]) and p[key] != value},
                      key=lambda v: abs(v - value))
        for candidate in seen[:candidates]:
            slack = _evaluate_quietly(claim, {**failing, key: candidate})
            if slack is None or slack < 0:
                continue
            low, high = value, candidate
            for _ in range(BISECTIONS):
                middle = 0.5 * low + 0.5 * high
                if middle in (low, high):
                    break
                slack = _evaluate_quietly(claim, {**failing, key: middle})
                if slack is None:
                    break
                if slack < 0:
                    low = middle
                else:
                    high = middle
            refined = {**failing, key: low}
            if (_evaluate_quietly(claim, refined) or 0.0) >= 0:  # paranoia: keep a true failure
                return failing, None
            return refined, {"parameter": key, "failing": low, "holding": high,
                             "gap": abs(high - low)}
    return failing, None


def replay(claim: Claim, values: dict) -> float:
    """The slack of ``claim`` at ``values`` on the search's code path (bit-identical).

    Args:
      claim: the :class:`Claim` (``decorated.claim``).
      values: dict name -> drawn value (e.g. from :func:`values_from_json`).

    Returns:
      The slack, a Python float (≥ 0 holds, < 0 violated).

    Raises:
      ClaimError: the values are outside the claim's regime, the slack is NaN, or it raised.
    """
    try:
        with _no_saved_stages():
            slack, in_regime = claim.evaluate(values)
    except ClaimError:
        raise
    except Exception as error:
        raise ClaimError(f"claim {claim.name} raised {_one_line(error)} at "
                         f"{format_values(values)}") from None
    if not in_regime:
        raise ClaimError(f"claim {claim.name}: the values are outside its regime (assume failed) "
                         f"at {format_values(values)}")
    return as_slack(claim.name, slack, values)
