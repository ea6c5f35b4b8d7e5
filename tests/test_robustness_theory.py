"""st.theory.robustness: the exact robust accuracy of a linear score on a Gaussian mixture against
sampled data and sampled attacks, and the input/weight duality identities, to round-off.

Pure NumPy (no compilation); hypothesis strategies draw small dimensions and seeds."""
import math

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st_h

from sharp_theory.errors import ConfigError
from sharp_theory.theory import robustness as rb

NORMS = (1, 2, math.inf)
dims = st_h.sampled_from((1, 2, 3, 5))
seeds = st_h.integers(0, 10_000)
norms = st_h.sampled_from(NORMS)
radii = st_h.floats(0.0, 2.0)


def _random_ball_points(rng, d, epsilon, p, count):
    """Points of the ℓ_p sphere of radius ε (directions drawn at random, then rescaled)."""
    u = rng.standard_normal((count, d)) * rng.exponential(1.0, (count, d)) ** rng.uniform(0, 2)
    norm = np.linalg.norm(u, ord=p, axis=1, keepdims=True)
    return epsilon * u / norm


@settings(max_examples=60)
@given(dims, seeds, norms, radii)
def test_the_worst_perturbation_attains_the_margin_drop_and_no_sampled_attack_does_better(
        d, seed, p, epsilon):
    rng = np.random.default_rng(seed)
    w, x = rng.standard_normal(d), rng.standard_normal(d)
    y = int(rng.choice((-1, 1)))
    drop = rb.linear_margin_drop(w, epsilon, p)
    delta = rb.worst_linear_perturbation(w, y, epsilon, p)
    # The worst δ lies on the ball and lowers the margin by exactly ε‖w‖_q.
    assert np.linalg.norm(delta, ord=p) == pytest.approx(epsilon, rel=1e-12, abs=1e-15)
    assert y * w @ (x + delta) == pytest.approx(y * w @ x - drop, rel=1e-12, abs=1e-12)
    # 2,000 sampled perturbations of the same ball never lower it more (Hölder).
    sampled = _random_ball_points(rng, d, epsilon, p, 2_000)
    assert np.min(y * (x + sampled) @ w) >= y * w @ x - drop - 1e-12
    # ...and the best of them comes close where the ball is small in d (no gap hidden by Hölder).
    if d == 1:
        assert np.min(y * (x + sampled) @ w) == pytest.approx(y * w @ x - drop, abs=1e-12)


@settings(max_examples=12)
@given(st_h.sampled_from((2, 3, 5)), st_h.integers(0, 1_000), norms, st_h.floats(0.0, 0.6))
def test_gaussian_linear_accuracy_matches_sampled_data_under_the_worst_attack(d, seed, p, epsilon):
    rng = np.random.default_rng(seed)
    w, mean = rng.standard_normal(d), rng.standard_normal(d)
    root = rng.standard_normal((d, d)) / math.sqrt(d)
    covariance = root @ root.T + 0.1 * np.eye(d)
    exact = rb.gaussian_linear_accuracy(w, mean, covariance, epsilon, p)
    n = 200_000
    y = rng.choice((-1.0, 1.0), n)
    x = y[:, None] * mean + rng.standard_normal((n, d)) @ np.linalg.cholesky(covariance).T
    # Each example gets its own worst perturbation (computed, not read off the formula).
    attacked = x + np.stack([rb.worst_linear_perturbation(w, 1, epsilon, p)]) * y[:, None]
    sampled = float(np.mean(np.sign(attacked @ w) == y))
    standard_error = math.sqrt(max(exact * (1 - exact), 1e-6) / n)
    assert abs(sampled - exact) <= 5 * standard_error + 1e-9, (sampled, exact)


@settings(max_examples=40)
@given(dims, seeds, norms)
def test_accuracy_falls_with_the_radius_and_epsilon_zero_is_clean(d, seed, p):
    rng = np.random.default_rng(seed)
    w, mean = rng.standard_normal(d), rng.standard_normal(d)
    clean = rb.gaussian_linear_accuracy(w, mean, np.eye(d), 0.0, p)
    assert clean == pytest.approx(rb.gaussian_linear_accuracy(w, mean, np.eye(d)), abs=0)
    values = [rb.gaussian_linear_accuracy(w, mean, np.eye(d), e, p) for e in (0.0, 0.1, 0.5, 2.0)]
    assert all(a >= b for a, b in zip(values, values[1:]))
    # The three norms order as their dual norms: ‖w‖_∞ ≤ ‖w‖_2 ≤ ‖w‖_1.
    at = {q: rb.gaussian_linear_accuracy(w, mean, np.eye(d), 0.3, q) for q in NORMS}
    assert at[1] >= at[2] - 1e-15 and at[2] >= at[math.inf] - 1e-15


def test_closed_form_values():
    # Φ(1) and Φ(0): one informative coordinate, unit noise.
    assert rb.gaussian_linear_accuracy([2.0, 0.0], [1.0, 0.0], np.eye(2)) == pytest.approx(
        0.8413447460685429, rel=1e-14)
    assert rb.gaussian_linear_accuracy([1.0, 1.0], [1.0, 1.0], np.eye(2), 1.0, "inf") == 0.5
    # A deterministic score (zero variance): 1 when its margin survives the attack, else 0.
    assert rb.gaussian_linear_accuracy([1.0], [1.0], [[0.0]], 0.5) == 1.0
    assert rb.gaussian_linear_accuracy([1.0], [1.0], [[0.0]], 1.5) == 0.0
    assert rb.dual_exponent(1) == math.inf and rb.dual_exponent("inf") == 1.0


@settings(max_examples=60)
@given(st_h.sampled_from((1, 2, 4)), st_h.sampled_from((1, 3, 5)), seeds)
def test_first_layer_weight_perturbation_reproduces_any_input_perturbation(m, d, seed):
    rng = np.random.default_rng(seed)
    W, x, delta = rng.standard_normal((m, d)), rng.standard_normal(d), rng.standard_normal(d)
    delta_W = rb.weight_perturbation_for_input(W, x, delta)
    np.testing.assert_allclose((W + delta_W) @ x, W @ (x + delta), rtol=1e-12, atol=1e-12)
    assert np.linalg.norm(delta_W) == pytest.approx(np.linalg.norm(W @ delta) / np.linalg.norm(x),
                                                    rel=1e-12)
    # The reverse: exact for every ΔW when W has full row rank (m ≤ d, generic W) ...
    any_delta_W = rng.standard_normal((m, d))
    back = rb.input_perturbation_for_weights(W, x, any_delta_W)
    reproduced = np.allclose(W @ (x + back), (W + any_delta_W) @ x, rtol=1e-10, atol=1e-10)
    assert rb.has_full_row_rank(W) == (m <= d)
    if m <= d:
        assert reproduced
    else:  # ... and generically impossible otherwise (ΔW x leaves the range of W).
        assert not reproduced


@settings(max_examples=60)
@given(dims, seeds, radii)
def test_weight_perturbation_lowers_the_margin_by_rho_times_the_input_norm(d, seed, rho):
    rng = np.random.default_rng(seed)
    w, x = rng.standard_normal(d), rng.standard_normal(d)
    y = int(rng.choice((-1, 1)))
    worst = -rho * y * x / np.linalg.norm(x)
    drop = rb.weight_perturbation_margin_drop(x, rho)
    assert y * (w + worst) @ x == pytest.approx(y * w @ x - drop, rel=1e-12, abs=1e-12)
    sampled = _random_ball_points(rng, d, rho, 2, 2_000)
    assert np.min(y * (w + sampled) @ x) >= y * w @ x - drop - 1e-12
    # The ℓ2 input attack of the equivalent radius drops the margin by the same amount.
    epsilon = rb.equivalent_input_radius(rho, np.linalg.norm(x), np.linalg.norm(w))
    assert rb.linear_margin_drop(w, epsilon, 2) == pytest.approx(drop, rel=1e-12, abs=1e-15)


@pytest.mark.parametrize("call, parameter", [
    (lambda: rb.gaussian_linear_accuracy([1.0], [1.0], [[1.0]], -0.1), "epsilon"),
    (lambda: rb.gaussian_linear_accuracy([1.0], [1.0], [[1.0]], 0.1, 3), "norm"),
    (lambda: rb.gaussian_linear_accuracy([1.0], [1.0], [[1.0]], 0.1, "l7"), "norm"),
    (lambda: rb.gaussian_linear_accuracy([1.0, 0.0], [1.0, 0.0], [[1.0, 2.0], [2.0, 1.0]]),
     "covariance"),
    (lambda: rb.gaussian_linear_accuracy([1.0, 0.0], [1.0, 0.0], [[1.0, 0.5], [0.0, 1.0]]),
     "covariance"),
    (lambda: rb.gaussian_linear_accuracy([1.0, 0.0], [1.0], np.eye(2)), "mean"),
    (lambda: rb.gaussian_linear_accuracy([1.0, 0.0], [1.0, 0.0], np.eye(3)), "covariance"),
    (lambda: rb.gaussian_linear_accuracy([0.0, 0.0], [1.0, 0.0], np.eye(2)), "w"),
    (lambda: rb.gaussian_linear_accuracy([1.0, np.nan], [1.0, 0.0], np.eye(2)), "w"),
    (lambda: rb.worst_linear_perturbation([1.0], 0, 0.1), "y"),
    (lambda: rb.weight_perturbation_for_input(np.eye(2), [1.0, 0.0, 0.0], [0.0, 0.0, 0.0]), "x"),
    (lambda: rb.weight_perturbation_for_input(np.eye(2), [0.0, 0.0], [1.0, 0.0]), "x"),
    (lambda: rb.input_perturbation_for_weights(np.eye(2), [1.0, 0.0], np.eye(3)), "delta_W"),
    (lambda: rb.equivalent_input_radius(0.1, 0.0, 1.0), "x_norm"),
    (lambda: rb.weight_perturbation_margin_drop([1.0], -1.0), "rho"),
])
def test_bad_input_is_refused_in_one_line_naming_the_parameter(call, parameter):
    with pytest.raises(ConfigError) as error:
        call()
    assert error.value.parameter == parameter
    assert "\n" not in str(error.value) and "expected" in str(error.value)
