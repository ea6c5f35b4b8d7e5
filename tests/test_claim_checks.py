"""Every registered claim's check can fail, and NaN, divergence and missing numbers never pass.

Generated from the claim registry, so a new claim cannot skip it. For every claim, on the numbers
of the last full-size run of its lab (tests/fixtures/claims/LAB.json, see tests/claim_fixtures.py):

(a) the verdict is the claim's expected verdict;
(b) the same numbers with one NaN inserted in any number the check reads give "inconclusive";
(c) moving the numbers the check reads until its decisive number crosses its threshold flips the
    verdict (pass <-> fail): a check that survives every such move cannot fail, and is named;
(d) a number the check needs, removed, is an error of the lab in a full-size run and
    "inconclusive" in a quick one.

The verdict engine itself (claims/base.py) is tested first, on hand-made numbers.
"""
from __future__ import annotations

import copy
import math

import numpy as np
import pytest

from claim_fixtures import load_fixture
from sharp_theory.claims import (REGISTRY, Claim, LabDidNotMeasure, NonFiniteMeasurement, Threshold,
                                 all_claims, finite_max, finite_min, judge)
from sharp_theory.claims.base import read_paths

CLAIMS = all_claims()
IDS = [claim.id for claim in CLAIMS]


# --- the engine on hand-made numbers -----------------------------------------------------------------

def _max_below_one(measured, *, quick):
    runs = measured["runs"]
    worst = finite_max([run["ratio"] for run in runs])
    return judge(Threshold("max ratio", worst, "<", 1.0), {"max_ratio": worst}, "every ratio < 1")


def _naive_max(measured, *, quick):
    """A check written the old way: ``max`` drops a NaN that is not first."""
    worst = max(run["ratio"] for run in measured["runs"])
    return judge(Threshold("max ratio", worst, "<", 1.0), {"max_ratio": worst})


def _claim(check, **extra):
    return Claim(id="test.engine.claim", paper="test", source="test", statement="ratio < 1",
                 regime="test", lab="test", check=check, **extra)


def _runs(*ratios, status="ok"):
    return {"runs": [{"ratio": r, "status": status} for r in ratios]}


def test_engine_passes_and_fails_on_clean_numbers():
    assert _claim(_max_below_one).judge(_runs(0.5, 0.7), quick=False).verdict == "pass"
    assert _claim(_max_below_one).judge(_runs(0.5, 1.7), quick=False).verdict == "fail"


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf, None, "nan", "inf", np.float32("nan")])
def test_a_non_finite_number_anywhere_the_check_reads_is_inconclusive(bad):
    # A NaN that is not first is dropped by max(): the naive check would pass it.
    for check in (_max_below_one, _naive_max):
        outcome = _claim(check).judge(_runs(0.5, bad, 0.7), quick=False)
        assert outcome.verdict == "inconclusive"
        assert "runs[1].ratio" in outcome.detail


def test_non_finite_numbers_inside_arrays_and_nested_lists_are_found():
    def check(measured, *, quick):
        values = np.asarray(measured["grid"])
        return judge(Threshold("max", float(np.nanmax(values)), "<", 1.0), {})

    jax_numpy = pytest.importorskip("jax.numpy")
    for grid in (np.array([[0.1, 0.2], [np.nan, 0.3]]), [[0.1, 0.2], [0.3, float("inf")]],
                 jax_numpy.asarray([0.1, jax_numpy.nan])):
        outcome = _claim(check).judge({"grid": grid}, quick=False)
        assert outcome.verdict == "inconclusive", grid
    assert _claim(check).judge({"grid": np.array([0.1, 0.2])}, quick=False).verdict == "pass"


def test_a_nan_the_check_computes_is_inconclusive():
    def check(measured, *, quick):
        ratio = measured["a"] / measured["b"]  # 0/0 in float64 numpy -> nan
        return judge(Threshold("ratio", ratio, "<", 1.0), {"ratio": ratio})

    with np.errstate(invalid="ignore"):
        outcome = _claim(check).judge({"a": np.float64(0.0), "b": np.float64(0.0)}, quick=False)
    assert outcome.verdict == "inconclusive"


def test_a_run_that_did_not_finish_cleanly_is_inconclusive_unless_the_claim_is_about_divergence():
    measured = _runs(0.5, 0.7, status="diverged at step 812")
    outcome = _claim(_max_below_one).judge(measured, quick=False)
    assert outcome.verdict == "inconclusive" and "diverged at step 812" in outcome.detail
    # The status is found even though the check never reads it.
    assert _claim(_max_below_one, about_divergence=True).judge(measured, quick=False).verdict == "pass"


def test_a_missing_number_is_an_error_of_the_lab_at_full_size_and_inconclusive_when_quick():
    with pytest.raises(LabDidNotMeasure, match="measured.runs"):
        _claim(_max_below_one).judge({}, quick=False)
    outcome = _claim(_max_below_one).judge({}, quick=True)
    assert outcome.verdict == "inconclusive" and "measured.runs" in outcome.detail


def test_a_zero_denominator_is_inconclusive():
    def check(measured, *, quick):
        ratio = float(measured["a"]) / float(measured["b"])
        return judge(Threshold("ratio", ratio, "<", 1.0), {"ratio": ratio})

    assert _claim(check).judge({"a": 1.0, "b": 0.0}, quick=False).verdict == "inconclusive"
    assert _claim(check).judge({"a": 1.0, "b": 2.0}, quick=False).verdict == "pass"


def test_judge_requires_every_side_condition():
    main = Threshold("main", 0.5, "<", 1.0)
    assert judge(main, {}).verdict == "pass"
    assert judge(main, {}, also=[Threshold("side", 3, "==", 0)]).verdict == "fail"
    assert judge(Threshold("main", 1.5, "<", 1.0), {}).verdict == "fail"
    assert judge(Threshold("main", math.nan, "<", 1.0), {}).verdict == "inconclusive"


def test_fail_closed_helpers_raise_on_nan():
    assert finite_max([1.0, 3.0, 2.0]) == 3.0 and finite_min(np.array([1.0, 3.0])) == 1.0
    for helper in (finite_max, finite_min):
        with pytest.raises(NonFiniteMeasurement):
            helper([1.0, math.nan, 2.0])


def test_every_registered_check_takes_the_run_size():
    with pytest.raises(TypeError, match="quick"):
        from sharp_theory.claims import register
        register(_claim(lambda measured: judge(Threshold("x", 0, "<", 1), {})))


# --- the registry against the fixtures of the last full runs -----------------------------------------

def _fixture(claim):
    fixture = load_fixture(claim.lab)
    assert fixture is not None, (f"claim {claim.id} has no fixture: run its lab at full size and "
                                 f"`python tests/claim_fixtures.py DIR {claim.lab}`")
    return fixture["measured"]


def _judge(claim, measured):
    return claim.judge(measured, quick=False)


@pytest.mark.parametrize("claim_id", IDS)
def test_a_last_full_run_gives_the_expected_verdict(claim_id):
    claim = REGISTRY[claim_id]
    outcome = _judge(claim, _fixture(claim))  # a key missing from the fixture raises here
    assert outcome.verdict == claim.expected, outcome.detail
    if outcome.verdict != "inconclusive":
        assert outcome.decisive is not None, "a pass/fail verdict must name its decisive number"
        # A pass has its decisive number on the passing side (a fail may come from a side
        # condition instead).
        assert outcome.verdict == "fail" or outcome.decisive.holds()


def _numeric_paths(leaves: dict):
    """(path, index-or-None) for every numeric leaf read: scalars, and a few elements of lists."""
    for path, value in leaves.items():
        if isinstance(value, bool) or isinstance(value, str) or value is None:
            if isinstance(value, bool):
                yield path, None
            continue
        array = np.asarray(value, dtype=object)
        if array.ndim == 0:
            yield path, None
        elif array.size:
            for flat in sorted({0, array.size // 2, array.size - 1}):
                yield path, np.unravel_index(flat, array.shape)


def _set(measured, path, index, make):
    """A deep copy of ``measured`` with the leaf at ``path`` (element ``index``) replaced."""
    mutated = copy.deepcopy(measured)
    node = mutated
    for key in path[:-1]:
        node = node[key]
    leaf = node[path[-1]]
    if index is None:
        node[path[-1]] = make(leaf)
    else:
        array = np.array(leaf, dtype=object)
        array[index] = make(array[index])
        node[path[-1]] = array.tolist()
    return mutated


@pytest.mark.parametrize("claim_id", IDS)
def test_b_one_nan_in_any_number_read_makes_the_verdict_inconclusive(claim_id):
    claim = REGISTRY[claim_id]
    measured = _fixture(claim)
    leaves, _ = read_paths(claim.check, measured, quick=False)
    paths = list(_numeric_paths(leaves))
    assert paths, f"{claim_id} reads no number"
    for path, index in paths:
        outcome = _judge(claim, _set(measured, path, index, lambda _: float("nan")))
        assert outcome.verdict == "inconclusive", (path, index, outcome.verdict)


def _moves(value):
    """Ways to move one number (or a whole list) that can carry a decisive number across its
    threshold: scalings over six orders of magnitude, sign flips, shifts, order reversal."""
    if isinstance(value, bool):
        yield lambda v: not v
        return
    factors = (0.0, 1e-3, 0.1, 0.5, 0.9, 1.1, 2.0, 10.0, 1e3, -1.0)
    for factor in factors:
        yield lambda v, f=factor: _map(v, lambda x: x * f)
    for shift in (-1.0, 1.0, -0.3, 0.3, -10.0, 10.0):
        yield lambda v, s=shift: _map(v, lambda x: x + s)
    if isinstance(value, list):
        yield lambda v: list(reversed(v))


def _map(value, function):
    if isinstance(value, list):
        return [_map(item, function) for item in value]
    if isinstance(value, bool):
        return value
    result = function(float(value))
    return int(result) if isinstance(value, int) and float(result).is_integer() else result


def _flips(claim, measured):
    """The first move of one read number that carries the decisive number across its threshold
    and flips the verdict; None if no move does."""
    base = _judge(claim, measured)
    leaves, _ = read_paths(claim.check, measured, quick=False)
    candidates = [(path, None) for path in leaves] + [
        (path, index) for path, index in _numeric_paths(leaves) if index is not None]
    for path, index in candidates:
        leaf = leaves[path] if index is None else np.asarray(leaves[path], dtype=object)[index]
        for move in _moves(leaf):
            try:
                mutated = _set(measured, path, index, move)
                with np.errstate(all="ignore"):
                    outcome = _judge(claim, mutated)
            except (ArithmeticError, ValueError, TypeError, IndexError, LabDidNotMeasure):
                continue
            if outcome.verdict == "inconclusive" or outcome.decisive is None:
                continue
            # The engine's promise on every mutated input: a pass has its decisive number on the
            # passing side.
            assert outcome.verdict != "pass" or outcome.decisive.holds(), (path, outcome)
            crossed = base.decisive is None or outcome.decisive.holds() != base.decisive.holds()
            if outcome.verdict != base.verdict and crossed:
                return path, index, base.verdict, outcome.verdict
    return None


@pytest.mark.parametrize("claim_id", IDS)
def test_c_moving_the_decisive_number_across_its_threshold_flips_the_verdict(claim_id):
    claim = REGISTRY[claim_id]
    flip = _flips(claim, _fixture(claim))
    assert flip is not None, (f"{claim_id}: no move of the numbers it reads flips its verdict; "
                              "this check cannot fail")


@pytest.mark.parametrize("claim_id", IDS)
def test_d_a_missing_number_fails_a_full_run_and_is_inconclusive_in_a_quick_one(claim_id):
    claim = REGISTRY[claim_id]
    measured = _fixture(claim)
    leaves, _ = read_paths(claim.check, measured, quick=False)
    path = next(iter(leaves))
    mutated = copy.deepcopy(measured)
    node = mutated
    for key in path[:-1]:
        node = node[key]
    del node[path[-1]]
    with pytest.raises(LabDidNotMeasure):
        _judge(claim, mutated)
    assert claim.judge(mutated, quick=True).verdict == "inconclusive"


def test_every_registered_claim_is_reported_in_a_paper_card():
    from pathlib import Path

    cards = "".join(path.read_text() for path in (Path(__file__).resolve().parent.parent
                                                   / "papers").glob("*.md"))
    missing = [claim.id for claim in CLAIMS if f"`{claim.id}`" not in cards]
    assert not missing, f"claims without a row in papers/*.md: {missing}"
