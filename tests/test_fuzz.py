"""The claim fuzzer (st.testing, `sharp-theory fuzz`): verdicts, shrinking to the boundary,
bit-for-bit replay, one-line errors, --save, and the claim decorator as a pytest test."""
import json
import math
import textwrap

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as hs

import sharp_theory as st
from sharp_theory.cli import main
from sharp_theory.testing import instances, known_false

USER_FILE = '''
import math
import numpy as np
import hypothesis
from hypothesis import strategies as hs
import sharp_theory as st


@st.testing.claim(a=hs.floats(0.0, 10.0))
def square_at_most_fifty(a):
    """a² <= 50 for a in [0, 10] (false beyond √50)."""
    return 50.0 - a * a


@st.testing.claim(a=hs.floats(0.0, 1.0))
def square_at_most_one(a):
    """a² <= 1 on [0, 1] (true)."""
    return 1.0 - a * a
'''


def write(tmp_path, body, name="my_bounds.py"):
    path = tmp_path / name
    path.write_text(textwrap.dedent(body))
    return path


def run_cli(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_false_bound_is_falsified_and_shrunk_to_its_boundary(tmp_path, capsys):
    path = write(tmp_path, USER_FILE)
    code, out, err = run_cli(capsys, "fuzz", f"{path}::square_at_most_fifty", "--json",
                             "--budget-s", "20", "--seed", "3")
    assert code == 1 and err == ""
    result = json.loads(out)
    assert result["verdict"] == "falsified" and result["seed"] == 3 and result["examples"] >= 1
    a = result["counterexample"]["a"]
    assert abs(a - math.sqrt(50)) < 1e-12  # at the boundary (within rounding), not just anywhere
    assert result["slack"] < 0 and result["slack"] == 50.0 - a * a
    assert result["boundary"]["parameter"] == "a" and result["boundary"]["gap"] < 1e-12
    assert result["replay"].startswith(f"sharp-theory fuzz {path}::square_at_most_fifty --replay ")


def test_true_bound_holds_with_exit_zero(tmp_path, capsys):
    path = write(tmp_path, USER_FILE)
    code, out, _ = run_cli(capsys, "fuzz", f"{path}::square_at_most_one", "--json",
                           "--max-examples", "150")
    result = json.loads(out)
    assert code == 0 and result["verdict"] == "holds" and result["counterexample"] is None
    assert result["examples"] == 150 and result["min_slack"] >= 0


def test_whole_file_runs_every_claim(tmp_path, capsys):
    path = write(tmp_path, USER_FILE)
    code, out, _ = run_cli(capsys, "fuzz", str(path), "--json", "--max-examples", "100")
    payload = json.loads(out)
    assert code == 1 and payload["verdict"] == "falsified"
    assert [c["claim"] for c in payload["claims"]] == ["square_at_most_fifty", "square_at_most_one"]
    assert [c["verdict"] for c in payload["claims"]] == ["falsified", "holds"]


def test_replay_prints_the_same_slack_bit_for_bit(tmp_path, capsys):
    path = write(tmp_path, USER_FILE)
    _, out, _ = run_cli(capsys, "fuzz", f"{path}::square_at_most_fifty", "--json", "--budget-s", "20")
    result = json.loads(out)
    values = result["replay"].split("--replay ", 1)[1].strip("'")
    code, out, _ = run_cli(capsys, "fuzz", f"{path}::square_at_most_fifty", "--replay", values, "--json")
    replayed = json.loads(out)
    assert code == 1 and replayed["slack_hex"] == float(result["slack"]).hex()


def test_known_false_usam_saddle_statement_is_falsified_at_rho_times_mu_equal_one():
    result = st.testing.fuzz(known_false.usam_escapes_saddle.claim, budget_s=60, seed=0)
    assert result.verdict == "falsified"
    assert known_false.usam_boundary_gap(result.counterexample) < 1e-9
    assert len(result.counterexample["quad"].facts["eigenvalues"]) == 2  # smallest dimension
    assert st.testing.replay(known_false.usam_escapes_saddle.claim, result.counterexample) == result.slack


def test_known_false_sam_convergence_statement_is_falsified_at_the_two_cycle_radius():
    result = st.testing.fuzz(known_false.sam_converges_to_minimizer.claim, budget_s=60, seed=0)
    assert result.verdict == "falsified"
    assert known_false.sam_boundary_gap(result.counterexample) < 1e-6
    assert len(result.counterexample["quad"].facts["eigenvalues"]) == 1


NAN_CLAIM = '''
from hypothesis import strategies as hs
import sharp_theory as st

@st.testing.claim(a=hs.floats(0.0, 1.0))
def nan_slack(a):
    """Returns NaN."""
    return float("nan")
'''
RAISING_CLAIM = '''
from hypothesis import strategies as hs
import sharp_theory as st

@st.testing.claim(a=hs.floats(0.0, 1.0))
def raises(a):
    """Raises."""
    raise ValueError("boom\\nsecond line")
'''
UNSATISFIABLE_CLAIM = '''
import hypothesis
from hypothesis import strategies as hs
import sharp_theory as st

@st.testing.claim(a=hs.floats(0.0, 1.0))
def never_in_regime(a):
    """Never in its regime."""
    hypothesis.assume(a > 2.0)
    return 1.0
'''


@pytest.mark.parametrize("body, words", [
    (NAN_CLAIM, ["nan_slack", "NaN", "a="]),
    (RAISING_CLAIM, ["raises", "ValueError: boom", "a="]),
    (UNSATISFIABLE_CLAIM, ["never_in_regime", "never satisfied"]),
    ("def broken(:\n    pass\n", ["syntax error", "line 1"]),
])
def test_broken_claims_are_one_line_errors_with_exit_two(tmp_path, capsys, body, words):
    path = write(tmp_path, body)
    code, out, err = run_cli(capsys, "fuzz", str(path), "--budget-s", "5", "--max-examples", "50")
    assert code == 2 and out == ""
    assert len(err.strip().splitlines()) == 1, err
    for word in words:
        assert word in err


@pytest.mark.parametrize("argv, word", [
    (["fuzz", "no/such/file.py"], "FILE"),
    (["fuzz", "{path}::nope"], "square_at_most_fifty"),
    (["fuzz", "{path}", "--budget-s", "0"], "--budget-s"),
    (["fuzz", "--registered", "nope"], "gd_step_scales_balancedness_op"),
    (["fuzz"], "TARGET"),
])
def test_bad_input_is_one_line_exit_two(tmp_path, capsys, argv, word):
    path = write(tmp_path, USER_FILE)
    code, out, err = run_cli(capsys, *[a.format(path=path) for a in argv])
    assert code == 2 and len(err.strip().splitlines()) == 1 and word in err


def test_save_writes_values_and_instance_atomically(tmp_path, capsys):
    target = "sharp_theory/testing/known_false.py::sam_converges_to_minimizer"
    code, out, _ = run_cli(capsys, "fuzz", target, "--save", str(tmp_path / "found"), "--budget-s", "30")
    assert code == 1 and "saved" in out
    files = sorted(p.name for p in (tmp_path / "found").iterdir())
    assert files == ["sam_converges_to_minimizer.json", "sam_converges_to_minimizer.npz"]
    record = json.loads((tmp_path / "found" / files[0]).read_text())
    assert record["values"]["quad"]["instance"] == "quadratic" and "--replay" in record["replay"]
    arrays = np.load(tmp_path / "found" / files[1])
    assert arrays["quad/facts/hessian"].shape == (1, 1) and arrays["rho"] == record["values"]["rho"]


def test_same_seed_same_counterexample():
    claim = known_false.sam_converges_to_minimizer.claim
    first = st.testing.fuzz(claim, budget_s=30, seed=7)
    second = st.testing.fuzz(claim, budget_s=30, seed=7)
    assert first.counterexample["rho"] == second.counterexample["rho"]
    assert first.slack == second.slack


# --- the decorator as a pytest test ---------------------------------------------------------------

@st.testing.claim(max_examples=30, x=hs.floats(-1.0, 1.0))
def test_a_true_claim_is_an_ordinary_passing_pytest_test(x):
    """x² <= 1 on [-1, 1]."""
    return 1.0 - x * x


def test_a_false_claim_fails_under_pytest_with_counterexample_and_replay():
    @st.testing.claim(max_examples=100, x=hs.floats(0.0, 4.0))
    def test_false(x):
        """x <= 3."""
        return 3.0 - x

    with pytest.raises(AssertionError) as failure:
        test_false()
    message = str(failure.value)
    assert "falsified" in message and "counterexample: x=3.0000000000000004" in message
    assert "--replay" in message
    assert test_false(x=2.0) == 1.0  # called with values: the slack


def test_vectorized_claims_batch_draws_and_replay_bit_for_bit():
    @st.testing.claim(vectorized=True, batch=16, a=hs.floats(0.0, 10.0), b=hs.floats(0.0, 1.0))
    def sum_below_ten(a, b):
        """a + b <= 10 (false near a = 10)."""
        assert a.shape == (16,)
        return 10.0 - (a + b)

    result = st.testing.fuzz(sum_below_ten.claim, budget_s=30, seed=0)
    assert result.verdict == "falsified" and result.examples % 16 == 0
    values = result.counterexample
    assert values["a"] + values["b"] > 10 and values["a"] + values["b"] - 10 < 1e-12
    assert st.testing.replay(sum_below_ten.claim, values) == result.slack


def test_nan_inside_a_vectorized_batch_is_an_error_never_holds():
    @st.testing.claim(vectorized=True, batch=8, a=hs.floats(0.0, 1.0))
    def sometimes_nan(a):
        """NaN above 0.5."""
        return np.where(a > 0.5, np.nan, 1.0)

    result = st.testing.fuzz(sometimes_nan.claim, max_examples=50, budget_s=None)
    assert result.verdict == "error" and "NaN" in result.error


def test_decorator_rejects_bad_arguments():
    with pytest.raises(st.ConfigError, match="batch"):
        st.testing.claim(vectorized=True, batch=0, a=hs.floats(0, 1))
    with pytest.raises(st.ConfigError, match="hypothesis strategy"):
        st.testing.claim(a=[0.0, 1.0])


# --- registered claims ----------------------------------------------------------------------------

def test_at_least_ten_registered_claims_and_the_cheap_ones_hold():
    claims = st.testing.registered_claims()
    assert len(claims) >= 10
    for name in ("gd_step_scales_balancedness_op", "usam_limit_solves_threshold",
                 "sam_edge_below_gd_edge", "diagonal_gd_one_step_factor"):
        result = st.testing.fuzz(claims[name], max_examples=5, budget_s=None)
        assert result.verdict == "holds" and result.examples >= 5, result.describe()


def test_a_wrong_identity_is_caught():
    # The registered GD identity without the η² term: the fuzzer must find the difference.
    from sharp_theory.testing import registered

    @st.testing.claim(x=hs.lists(hs.floats(-2, 2), min_size=3, max_size=3),
                      y=hs.lists(hs.floats(-2, 2), min_size=3, max_size=3), lr=hs.floats(1e-4, 0.2))
    def wrong_identity(x, y, lr):
        """B is unchanged by a GD step (false: it is multiplied by 1 − η²f'²)."""
        x, y = np.asarray(x), np.asarray(y)
        new = registered._step(registered.GD, registered.OP_BASE, {"x": x, "y": y},
                               registered.OP_BATCH, {"lr": lr})
        before = 0.5 * (x @ x - y @ y)
        return 1e-12 - abs(float(registered._balancedness(new)) - before)

    assert st.testing.fuzz(wrong_identity.claim, budget_s=30).verdict == "falsified"


# --- instances ------------------------------------------------------------------------------------

@settings(max_examples=5, deadline=None)
@given(quad=instances.quadratics(dims=(1, 3), eigenvalues=(0.5, 2.0), saddle_curvature=None),
       saddle=instances.quadratics(dims=(2,), saddle_curvature=(0.5, 1.0)))
def test_quadratic_instances_know_their_spectrum_and_rebuild_bit_for_bit(quad, saddle):
    for instance in (quad, saddle):
        hessian = np.asarray(instance.problem.constants["hessian"])
        assert np.linalg.eigvalsh(hessian).max() == pytest.approx(instance.facts["lambda_max"], rel=1e-12)
        again = instances.build_instance(instance.family, instance.spec)
        assert np.array_equal(np.asarray(again.problem.params0), np.asarray(instance.problem.params0))
    assert saddle.facts["lambda_min"] < 0


@settings(max_examples=2, deadline=None)
@given(op=instances.scalar_products(), nop=instances.outer_products(), net=instances.diagonal_nets(),
       sensing=instances.matrix_sensings(), conv=instances.conv_relus(dims=(8,)))
def test_every_family_builds_a_problem_with_a_finite_loss(op, nop, net, sensing, conv):
    for instance in (op, nop, net, sensing, conv):
        problem = instance.problem
        batch = problem.batch(__import__("jax").random.key(0), 0)
        assert np.isfinite(float(problem.loss(problem.params0, batch)))
    p = op.problem.params0
    assert op.facts["B0"] == pytest.approx(0.5 * float(p["x"] @ p["x"] - p["y"] @ p["y"]))
    assert sensing.facts["nuclear_norm"] == pytest.approx(
        np.linalg.norm(np.asarray(sensing.problem.constants["ground_truth"]), "nuc"))


def test_instance_strategies_reject_bad_ranges():
    with pytest.raises(st.ConfigError, match="eigenvalues"):
        instances.quadratics(eigenvalues=(2.0, 1.0))
    with pytest.raises(st.ConfigError, match="dims"):
        instances.quadratics(dims=(1,), saddle_curvature=(0.5, 1.0))
    with pytest.raises(st.ConfigError, match="instance family"):
        instances.build_instance("nope", {})


def test_readme_fuzz_example_is_falsified_as_the_readme_says(tmp_path, capsys):
    import re
    from pathlib import Path

    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    section = readme.split("## Fuzz your own bounds", 1)[1]
    example = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    path = write(tmp_path, example)
    code, out, _ = run_cli(capsys, "fuzz", f"{path}::sam_reaches_the_minimizer", "--json",
                           "--budget-s", "30")
    result = json.loads(out)
    assert code == 1 and result["verdict"] == "falsified"
    values = result["counterexample"]
    eigenvalue = values["quad"]["spec"]["eigenvalues"][0]
    product = values["lr"] * eigenvalue
    assert len(values["quad"]["spec"]["eigenvalues"]) == 1
    assert values["rho"] == pytest.approx(1e-6 * (2 - product) / product, rel=1e-6)


def test_a_claim_that_is_not_reproducible_is_an_error_not_a_counterexample():
    calls = []

    @st.testing.claim(a=hs.floats(0.0, 1.0))
    def flips(a):
        """Negative only on its first evaluations (a stand-in for an unseeded claim)."""
        calls.append(a)
        return -1.0 if len(calls) < 3 else 1.0

    result = st.testing.fuzz(flips.claim, max_examples=20, budget_s=None)
    assert result.verdict == "error" and ("reproducible" in result.error or "Flaky" in result.error)
