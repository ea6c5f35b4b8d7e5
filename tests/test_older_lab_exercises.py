"""The exercises of the flows, sam-family, fuzz-a-bound, benign-overfitting and
spurious-sharpness labs (issue 25): each lab holds at least three besides its predictions, every
one graded is decidable at quick sizes, the keys pass and wrong answers fail. Exercises checked
against the library run here (no lab run); those checked against a lab's measurements are
graded on the lab's recorded quick run in the lab's own test file."""
from types import SimpleNamespace

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import sharp_theory as st
from exercise_checks import assert_key_passes_and_wrong_fail, exercises, open_questions
from sharp_theory.problems import next_token
from sharp_theory.studies import phase_diagram

LABS = ("flows", "sam-family", "fuzz-a-bound", "benign-overfitting", "spurious-sharpness")
BASE = {"st": st, "jax": jax, "jnp": jnp, "np": np}


@pytest.mark.parametrize("lab", LABS)
def test_each_lab_has_three_exercises_and_an_open_question(lab):
    found = exercises(lab)
    questions = open_questions(lab)
    assert len(found) + len(questions) >= 3 and len(found) >= 2 and questions, (lab, list(found))
    for variable, exercise in found.items():
        assert "SOLUTION" in exercise["key"], variable
        assert "**Exercise" in exercise["prompt"], variable
        assert "st.labkit.check_" in exercise["check"], variable
    for question in questions:
        assert "open question" in question


def test_flows_drift_coefficient_derivation():
    exercise = exercises("flows")["drift_coefficient_formula"]
    assert_key_passes_and_wrong_fail(exercise, BASE, [
        'drift_coefficient_formula = "eta*rho**2/2"',  # the η, ρ → 0 limit
        'drift_coefficient_formula = "2*eta*rho**2/(2 - eta*lam)"',  # the square forgotten
        'drift_coefficient_formula = "2*eta*rho**2/(2 - eta*lam)**2 + kappa"'])  # other names


def test_spurious_sharpness_softmax_hessian_and_its_top_eigenvalue():
    found = exercises("spurious-sharpness")
    namespace = dict(BASE, next_token=next_token)
    assert_key_passes_and_wrong_fail(found["softmax_loss_hessian"], namespace, [
        "def softmax_loss_hessian(z):\n    return jnp.diag(jax.nn.softmax(z))\n",
        "def softmax_loss_hessian(z):\n    p = jax.nn.softmax(z)\n"
        "    return jnp.outer(p, p) - jnp.diag(p)\n"])
    assert_key_passes_and_wrong_fail(found["predicted_uniform_top_eigenvalue"], namespace, [
        "predicted_uniform_top_eigenvalue = 1.0",
        "predicted_uniform_top_eigenvalue = 1 / 8 - 1 / 64", "predicted_uniform_top_eigenvalue = 0"])


def test_sam_family_asam_perturbation():
    assert_key_passes_and_wrong_fail(exercises("sam-family")["my_asam_perturbation"], BASE, [
        # SAM's direction, and ASAM with one factor T instead of T².
        "def my_asam_perturbation(w, g, rho, eta):\n    return rho * g / jnp.linalg.norm(g)\n",
        "def my_asam_perturbation(w, g, rho, eta):\n    t = jnp.abs(w) + eta\n"
        "    return rho * t * g / jnp.linalg.norm(t * g)\n"])


def test_fuzz_a_bound_usam_step_and_saddle_factor():
    found = exercises("fuzz-a-bound")
    assert_key_passes_and_wrong_fail(found["my_usam_step"], BASE, [
        "def my_usam_step(w, gradient, lr, rho):\n    g = gradient(w)\n"
        "    return w - lr * gradient(w + rho * g / jnp.linalg.norm(g))\n",  # SAM, normalized
        "def my_usam_step(w, gradient, lr, rho):\n    return w - lr * gradient(w)\n"])
    # The saddle counterexample sits on ρμ = 1 (η = 1/16, μ = 2 as the fuzzer shrinks it).
    saddle = SimpleNamespace(counterexample={"lr": 0.0625, "rho": 0.5,
                                             "quad": SimpleNamespace(facts={"lambda_min": -2.0})})
    assert_key_passes_and_wrong_fail(found["usam_saddle_factor"], dict(BASE, saddle=saddle), [
        'usam_saddle_factor = "1 + eta*mu"', 'usam_saddle_factor = "1 + eta*mu*(1 + rho*mu)"',
        'usam_saddle_factor = "1 - eta*mu*(1 - rho*mu)"'])


def test_benign_overfitting_boundary_coding():
    assert_key_passes_and_wrong_fail(
        exercises("benign-overfitting")["my_benign_boundary"], dict(BASE, phase=phase_diagram), [
            # linear instead of logarithmic interpolation in ‖μ‖, and the first cell below.
            "def my_benign_boundary(errors, signals, threshold):\n"
            "    k = int(np.nonzero(np.asarray(errors) <= threshold)[0][0])\n"
            "    f = (errors[k - 1] - threshold) / (errors[k - 1] - errors[k])\n"
            "    return signals[k - 1] + f * (signals[k] - signals[k - 1])\n",
            "def my_benign_boundary(errors, signals, threshold):\n"
            "    return signals[int(np.nonzero(np.asarray(errors) <= threshold)[0][0])]\n"])
