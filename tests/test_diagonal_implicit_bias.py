"""The hyperbolic-entropy potential ψ_c and its minimizer over {Xβ = y} (damped Newton on the
dual), checked against KKT conditions, direct minimization, the LP min-ℓ1 and the min-ℓ2
interpolators, and against gradient descent itself."""
import jax
import numpy as np
import pytest
import scipy.optimize
from hypothesis import given, settings, strategies as st_h

import sharp_theory as st
from sharp_theory.errors import ConfigError
from sharp_theory.measure import implicit_bias as ib
from sharp_theory.problems.diagonal import OBSERVABLES, diagonal_linear, sparse_regression_data

DATA = sparse_regression_data(20, 10, 30, 3, 0)
X, Y = DATA["X"], DATA["y"]


def null_space(matrix):
    _, singular, vt = np.linalg.svd(matrix)
    return vt[np.sum(singular > 1e-12):].T


def test_entropy_basic_properties():
    assert ib.hyperbolic_entropy(np.zeros(4), 0.3) == 0.0
    beta = np.array([0.5, -1.0, 2.0])
    assert ib.hyperbolic_entropy(beta, 0.1) > 0
    # Gradient of ψ_c is ½·asinh(2β/c) (finite differences).
    c, h = np.array([0.2, 1.0, 3.0]), 1e-6
    for i in range(3):
        step = np.zeros(3)
        step[i] = h
        numeric = (ib.hyperbolic_entropy(beta + step, c) - ib.hyperbolic_entropy(beta - step, c)) / (2 * h)
        assert numeric == pytest.approx(0.5 * np.arcsinh(2 * beta[i] / c[i]), rel=1e-7)
    # Small c: ψ_c(β) ≈ ½ ‖β‖₁ log(1/c) to leading order (ℓ1-like); large c: ≈ ‖β‖²/(2c).
    assert ib.hyperbolic_entropy(beta, 1e6) == pytest.approx(np.sum(beta**2) / 2e6, rel=1e-6)


@pytest.mark.parametrize("c", [1e-12, 1e-8, 1e-4, 1e-2, 1.0, 1e2, 1e4])
def test_minimizer_satisfies_kkt_over_the_whole_range_of_c(c):
    result = ib.potential_minimizer(X, Y, c)
    assert result.converged and result.residual <= 1e-10
    # KKT: ∇ψ_c(β) = ½ asinh(2β/c) lies in the row space of X (its null-space part vanishes).
    gradient = 0.5 * np.arcsinh(2 * result.beta / c)
    assert np.linalg.norm(null_space(X).T @ gradient) <= 1e-8 * max(1.0, np.linalg.norm(gradient))


def test_minimizer_limits_are_min_l1_and_min_l2():
    l1 = ib.min_l1_interpolator(X, Y)
    l2 = ib.min_l2_interpolator(X, Y)
    np.testing.assert_allclose(X @ l1, Y, atol=1e-9)
    np.testing.assert_allclose(l1, DATA["theta_star"], atol=1e-8)  # exact recovery at n=20, k=3
    assert ib.relative_distance(ib.potential_minimizer(X, Y, 1e-12).beta, l1) <= 1e-5
    assert ib.relative_distance(ib.potential_minimizer(X, Y, 1e4).beta, l2) <= 1e-8
    # ... and in between it is neither.
    middle = ib.potential_minimizer(X, Y, 1e-2).beta
    assert ib.relative_distance(middle, l1) > 1e-2 and ib.relative_distance(middle, l2) > 1e-2


def test_minimizer_matches_direct_constrained_minimization():
    small = sparse_regression_data(4, 2, 6, 2, 5)
    Xs, ys = small["X"], small["y"]
    c = np.array([0.05, 0.2, 1.0, 0.5, 2.0, 0.1])
    dual = ib.potential_minimizer(Xs, ys, c).beta
    direct = scipy.optimize.minimize(
        lambda b: ib.hyperbolic_entropy(b, c), ib.min_l2_interpolator(Xs, ys), method="SLSQP",
        jac=lambda b: 0.5 * np.arcsinh(2 * b / c),
        constraints=[{"type": "eq", "fun": lambda b: Xs @ b - ys, "jac": lambda b: Xs}],
        options={"ftol": 1e-14, "maxiter": 500})
    assert direct.success
    np.testing.assert_allclose(dual, direct.x, atol=1e-6)


@settings(max_examples=30, deadline=None)
@given(st_h.integers(0, 1000), st_h.floats(-12, 4), st_h.floats(0, 6))
def test_minimizer_is_optimal_against_feasible_perturbations(seed, log_c, spread):
    # Per-coordinate c spanning up to 6 decades around 10^log_c.
    rng = np.random.default_rng(seed)
    c = 10.0 ** (log_c + spread * (rng.uniform(size=30) - 0.5))
    result = ib.potential_minimizer(X, Y, c)
    assert result.converged
    basis = null_space(X)
    best = ib.hyperbolic_entropy(result.beta, c)
    for _ in range(5):
        direction = basis @ rng.normal(size=basis.shape[1])
        direction *= 1e-3 * np.linalg.norm(result.beta) / np.linalg.norm(direction)
        assert ib.hyperbolic_entropy(result.beta + direction, c) >= best - 1e-12 * max(1.0, best)


def test_bad_inputs_are_rejected():
    with pytest.raises(ConfigError):
        ib.potential_minimizer(X, Y, 0.0)
    with pytest.raises(ConfigError):
        ib.potential_minimizer(X, Y, np.r_[np.ones(29), -1.0])
    with pytest.raises(ConfigError):
        ib.potential_minimizer(X, Y[:5], 1.0)
    with pytest.raises(ConfigError):
        ib.hyperbolic_entropy(np.ones(3), np.nan)


def test_gradient_descent_lands_on_the_minimizer_for_its_final_c():
    # Small steps: GD is close to gradient flow, whose limit is argmin ψ_c; its discrete steps
    # shrink c (factors 1 − η²g²), and argmin ψ_{c_T} predicts β_T better than argmin ψ_{a²}.
    problem = diagonal_linear(n=20, n_test=10, d=30, k=3, seed=0, init_scale=0.3)
    traj = st.run(problem, st.optim.gd(0.05), steps=40_000, key=jax.random.key(0),
                  observe={"c": OBSERVABLES["c"], "train": OBSERVABLES["train_loss"]}, stride=40_000)
    assert traj.final("train") < 1e-20
    beta = np.asarray(traj.params["u"] * traj.params["v"])
    to_final = ib.relative_distance(beta, ib.potential_minimizer(X, Y, np.asarray(traj.final("c"))).beta)
    to_initial = ib.relative_distance(beta, ib.potential_minimizer(X, Y, 0.3**2).beta)
    assert to_final <= 1e-4 and to_final <= 0.1 * to_initial
    # The prediction is specific: the minimum-ℓ2 and minimum-ℓ1 interpolators are far.
    assert ib.relative_distance(beta, ib.min_l2_interpolator(X, Y)) > 0.1
    assert ib.relative_distance(beta, ib.min_l1_interpolator(X, Y)) > 0.1
