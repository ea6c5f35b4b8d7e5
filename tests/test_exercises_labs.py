"""The exercises of the older labs (balancedness, edge of stability, sharpness dynamics,
landscape, diagonal nets, matrix sensing): each graded answer key passes its check and wrong
answers fail it, on the numbers the lab's one quick run recorded.

The lab itself runs once in the test run (fixture ``quick_lab_run``; running it as a notebook
also runs every check on the answer key). Here each ``exercise-check`` cell is executed again,
outside the lab, in a namespace rebuilt from ``results.json``: with the key (it must pass) and
with a blank and typical wrong answers (each must fail with the check's one sentence).

(A lab-script test: the checks are lab code, held to JAX's default promotion rules, see
conftest.py.)
"""
import json
import types

import jax
import jax.numpy as jnp
import jupytext
import numpy as np
import pytest

import sharp_theory as st
from sharp_theory import labkit


def exercises(name):
    """``[(variable, exercise source, check source)]`` of a lab, in order."""
    notebook = jupytext.read(labkit.available_labs()[name])
    cells = notebook.cells
    found = []
    for index, cell in enumerate(cells):
        if "exercise" not in cell.metadata.get("tags", []):
            continue
        check = next(c for c in cells[index + 1:] if "exercise-check" in c.metadata.get("tags", []))
        variable = next(line.split("=")[0].split("(")[0].replace("def ", "").strip()
                        for line in cell.source.splitlines() if line and not line.startswith("#"))
        found.append((variable, cell.source, check.source))
    return found


def definitions(name, cells):
    """The namespace of the lab's first ``cells`` code cells (imports, constants, the model),
    run with a stand-in for the lab handle (quick sizes, nothing recorded)."""
    notebook = jupytext.read(labkit.available_labs()[name])
    quick_lab = types.SimpleNamespace(quick=True, seeds=1, extra={},
                                      record_config=lambda **config: None)
    namespace = {"_start": lambda *args, **kwargs: quick_lab}
    code = [cell for cell in notebook.cells if cell.cell_type == "code"
            and not cell.metadata.get("tags")][:cells]
    for cell in code:
        exec(compile(cell.source.replace("st.labkit.start(", "_start("), name, "exec"), namespace)
    return namespace


def judge(source, namespace):
    """None when the check passes, else the ExerciseFailed sentence."""
    try:
        exec(compile(source, "exercise-check", "exec"), dict(namespace))
    except labkit.ExerciseFailed as failed:
        return str(failed)
    return None


def check_lab_exercises(name, namespace, wrong):
    """Every exercise of lab ``name`` is in ``wrong``; its key passes, a blank and each wrong
    answer (a value, or source code defining the function) fail."""
    found = exercises(name)
    assert [variable for variable, _, _ in found] == list(wrong), "one row per exercise, in order"
    base = {"st": st, "np": np, "jax": jax, "jnp": jnp, **namespace}
    for variable, exercise, check in found:
        keyed = dict(base)
        exec(compile(exercise, "exercise", "exec"), keyed)
        assert judge(check, keyed) is None, (name, variable, judge(check, keyed))
        assert "replace ... with your answer" in judge(check, {**keyed, variable: ...})
        for answer in wrong[variable]:
            attempt = dict(keyed)
            if isinstance(answer, str) and answer.startswith("def "):
                exec(answer, attempt)
            else:
                attempt[variable] = answer
            sentence = judge(check, attempt)
            assert sentence is not None, (name, variable, answer, "a wrong answer passed")
            assert "\n" not in sentence and "Traceback" not in sentence


def recorded(quick_lab_run, name):
    return json.loads((quick_lab_run(name) / "out" / "results.json").read_text())


@pytest.mark.slow
def test_balancedness_exercises(quick_lab_run):
    results = recorded(quick_lab_run, "balancedness")
    check_lab_exercises("balancedness", {"measured": results["measured"],
                                         "LR": results["config"]["lr"],
                                         "RHO_OP": results["config"]["rho_op"]}, {
        # the flow's answer (B conserved), a sign slip, a power slip
        "gd_balancedness_factor": ["1", "1 + eta**2*fp**2", "1 - eta*fp", "1 - eta**2*fp"],
        # Lemma 2's first-order term alone (0 at an exact fit), half and twice the rate
        "predicted_noiseless_decay_rate": [0.0, 2 * 0.005 * 0.2**2, 8 * 0.005 * 0.2**2],
    })


@pytest.mark.slow
def test_edge_of_stability_exercises(quick_lab_run):
    from sharp_theory.theory import stability

    measured = recorded(quick_lab_run, "edge-of-stability")["measured"]
    settled = float(np.median([row["late_median_ratio"] * row["edge"]
                               for row in measured["gd_runs"] if row["edge"] == 26.0]))
    check_lab_exercises("edge-of-stability", {
        "stability": stability, "settled_at_26": settled, "usam_rows": measured["usam_boundaries"]}, {
        # where it starts (~16), 1/η, and "it keeps rising" (twice the edge)
        "predicted_settled_sharpness": [16.0, 13.0, 52.0],
        # GD's 2/eta, the wrong root's sign, rho's factor slipped
        "usam_limit_formula": ["2/eta", "(sqrt(1 + 8*rho/eta) + 1)/(2*rho)",
                               "(sqrt(1 + 8*rho/eta) - 1)/rho"],
        # USAM's limit (no g), GD's edge, the radius not divided by g
        "my_sam_edge": [
            "def my_sam_edge(grad_norm, lr, rho):\n"
            "    return (np.sqrt(1 + 8 * rho / lr) - 1) / (2 * rho) + 0 * grad_norm\n",
            "def my_sam_edge(grad_norm, lr, rho):\n    return 2 / lr + 0 * grad_norm\n",
            "def my_sam_edge(grad_norm, lr, rho):\n"
            "    return grad_norm / (2 * rho) * (np.sqrt(1 + 8 * rho * grad_norm / lr) - 1)\n"],
    })


@pytest.mark.slow
def test_sharpness_dynamics_exercises(quick_lab_run):
    measured = recorded(quick_lab_run, "sharpness-dynamics")["measured"]
    namespace = definitions("sharpness-dynamics", 2)  # imports, constants, the toy
    namespace.update(final=measured["final"], slopes_in_rho=measured["slopes_in_rho"])
    check_lab_exercises("sharpness-dynamics", namespace, {
        # the start's λ_max region, the trace minimizer's trace, λ_max of example 2's minimum
        "predicted_sam_final_lambda_max": [2 * (3 + 1 + 0.25), 10.2, 2 * 2.5],
        # full-batch SAM (one ascent for both examples), GD, the ascent not normalized
        "my_one_sam_step": [
            "def my_one_sam_step(w, example_gradient, n_examples, lr, rho):\n"
            "    g = sum(example_gradient(w, i) for i in range(n_examples)) / n_examples\n"
            "    w_adv = w + rho * g / jnp.linalg.norm(g)\n"
            "    return w - lr * sum(example_gradient(w_adv, i) for i in range(n_examples)) / n_examples\n",
            "def my_one_sam_step(w, example_gradient, n_examples, lr, rho):\n"
            "    return w - lr * sum(example_gradient(w, i) for i in range(n_examples)) / n_examples\n",
            "def my_one_sam_step(w, example_gradient, n_examples, lr, rho):\n"
            "    return w - lr * sum(example_gradient(w + rho * example_gradient(w, i), i)\n"
            "                        for i in range(n_examples)) / n_examples\n"],
        # first order (the ascent's own gradient), third order
        "predicted_rho_exponent": [1, 3],
    })


@pytest.mark.slow
def test_landscape_exercises(quick_lab_run):
    results = recorded(quick_lab_run, "landscape")
    namespace = {"table": results["measured"]["cases"],
                 "SHARPNESS_RHO": results["config"]["sharpness_rho"]}
    check_lab_exercises("landscape", namespace, {
        # first order (a slope, not a curvature), the ½ dropped, a factor 2 too small
        "epsilon_sharpness_at_minimum": ["rho*lam", "rho**2*lam", "rho**2*lam/4"],
        # the ascent not normalized, the value at w itself, the gradient's first-order term only
        "my_sam_sharpness_estimate": [
            "def my_sam_sharpness_estimate(loss, w, rho):\n"
            "    return loss(w + rho * jax.grad(loss)(w)) - loss(w)\n",
            "def my_sam_sharpness_estimate(loss, w, rho):\n    return 0.0 * loss(w)\n",
            "def my_sam_sharpness_estimate(loss, w, rho):\n"
            "    return rho * jnp.linalg.norm(jax.grad(loss)(w))\n"],
    })


@pytest.mark.slow
def test_diagonal_nets_exercises(quick_lab_run):
    from sharp_theory.problems.diagonal import diagonal_linear

    measured = recorded(quick_lab_run, "diagonal-nets")["measured"]
    check_lab_exercises("diagonal-nets", {
        "one_sam_l1_ratio": measured["one_sam_best_l1_norm"][0] / measured["min_l1_norm"][0],
        "diagonal_linear": diagonal_linear}, {
        # GD's ratio at a = 0.1 (~1.19), the min-ℓ2 interpolator's side, a guess below the minimum
        "predicted_one_sam_l1_ratio": [
            measured["gd_l1_norm"][0] / measured["min_l1_norm"][0], 1.5, 0.9],
        # the 1/n dropped, u and v swapped, the gradient of β = u⊙v only
        "my_diagonal_gradient": [
            "def my_diagonal_gradient(X, y, u, v):\n"
            "    g = X.T @ (X @ (u * v) - y)\n    return np.stack([g * v, g * u])\n",
            "def my_diagonal_gradient(X, y, u, v):\n"
            "    g = X.T @ (X @ (u * v) - y) / X.shape[0]\n    return np.stack([g * u, g * v])\n",
            "def my_diagonal_gradient(X, y, u, v):\n"
            "    g = X.T @ (X @ (u * v) - y) / X.shape[0]\n    return np.stack([g, g])\n"],
    })


@pytest.mark.slow
def test_matrix_sensing_exercises(quick_lab_run):
    results = recorded(quick_lab_run, "matrix-sensing")
    namespace = definitions("matrix-sensing", 1)  # imports and sizes
    config = results["config"]["identity_case"]
    namespace.update(measured=results["measured"], identity_case=config, identity=st.problems.matrix_sensing(
        config["d1"], config["d2"], rank=results["config"]["rank"], k=config["k"],
        operator="identity", seed=0))
    check_lab_exercises("matrix-sensing", namespace, {
        # c² alone, c, the balanced value (no change)
        "predicted_str_ratio_at_two": [4.0, 2.0, 1.0],
        # the 1/d scaling dropped, the unscaled Hessian trace of one factor, ‖LRᵀ‖ instead
        "my_identity_scaled_trace": [
            "def my_identity_scaled_trace(L, R):\n"
            "    return 2.0 * (L.shape[0] * np.sum(R**2) + R.shape[0] * np.sum(L**2))\n",
            "def my_identity_scaled_trace(L, R):\n    return 2.0 * np.sum(L**2)\n",
            "def my_identity_scaled_trace(L, R):\n    return 4.0 * np.sum((L @ R.T)**2) ** 0.5\n"],
    })
