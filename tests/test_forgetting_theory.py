"""st.theory.forgetting against independent simulation (numpy, float64).

Lin et al.'s closed form against Monte Carlo of the sequential min-distance fits (within 4
standard errors); Evron et al.'s two-task formula against alternating fits (round-off); the
worst cases never exceeded and attained; bad input refused in one line.
"""
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as hs

from sharp_theory.errors import ConfigError
from sharp_theory.theory import forgetting


def monte_carlo_task_losses(w_stars, n, sigma, repeats, seed):
    """Mean and standard error of L_i(w_t) = ‖w_t − w*_i‖² + σ² over simulated task sequences."""
    rng = np.random.default_rng(seed)
    tasks, p = w_stars.shape
    w = np.zeros((repeats, p))
    means, errors = np.zeros((tasks, tasks)), np.zeros((tasks, tasks))
    for t in range(tasks):
        X = rng.standard_normal((repeats, n, p))
        y = X @ w_stars[t] + sigma * rng.standard_normal((repeats, n))
        residual = y - np.einsum("rnp,rp->rn", X, w)
        gram = X @ np.swapaxes(X, 1, 2)
        w = w + np.einsum("rnp,rn->rp", X, np.linalg.solve(gram, residual[..., None])[..., 0])
        losses = np.sum((w[:, None, :] - w_stars[None]) ** 2, axis=-1) + sigma ** 2
        means[t] = losses.mean(0)
        errors[t] = losses.std(0, ddof=1) / math.sqrt(repeats)
    return means, errors


@settings(max_examples=12)
@given(p=hs.sampled_from([6, 9]), n=hs.sampled_from([1, 2, 4]), tasks=hs.sampled_from([1, 2, 3]),
       sigma=hs.sampled_from([0.0, 0.5]), seed=hs.integers(0, 10_000))
def test_expected_task_losses_match_monte_carlo(p, n, tasks, sigma, seed):
    w_stars = np.random.default_rng(seed).standard_normal((tasks, p)) / math.sqrt(p)
    closed = forgetting.expected_task_losses(w_stars, n, sigma)
    mean, error = monte_carlo_task_losses(w_stars, n, sigma, 20_000, seed + 1)
    assert closed.shape == (tasks, tasks)
    assert np.all(np.abs(closed - mean) <= 4 * error + 1e-12), (closed, mean, error)


def test_expected_task_losses_unrolled_form():
    """The recursion equals Lin et al.'s unrolled Theorem 1 (plus the test label's σ²)."""
    rng = np.random.default_rng(3)
    w_stars, n, sigma = rng.standard_normal((4, 10)), 3, 0.7
    p, r = 10, 1 - 3 / 10
    closed = forgetting.expected_task_losses(w_stars, n, sigma)
    for t in range(1, 5):
        for i in range(4):
            value = r ** t * w_stars[i] @ w_stars[i] + sum(
                (1 - r) * r ** (t - k) * np.sum((w_stars[k - 1] - w_stars[i]) ** 2)
                for k in range(1, t + 1)) + p * sigma ** 2 * (1 - r ** t) / (p - n - 1) + sigma ** 2
            assert closed[t - 1, i] == pytest.approx(value, rel=1e-12)
    assert forgetting.expected_forgetting(closed) == pytest.approx(
        np.mean([closed[3, i] - closed[i, i] for i in range(3)]), rel=1e-12)
    assert forgetting.expected_generalization_error(closed) == pytest.approx(closed[3].mean())


@pytest.mark.parametrize("call, parameter", [
    (lambda: forgetting.expected_task_losses(np.ones((2, 4)), 3, 0.1), "n"),   # p < n + 2
    (lambda: forgetting.expected_task_losses(np.ones((0, 6)), 2, 0.1), "w_stars"),  # T < 1
    (lambda: forgetting.expected_task_losses([np.ones(6), np.ones(5)], 2, 0.1), "w_stars"),
    (lambda: forgetting.expected_task_losses(np.ones((2, 6)), 2, -0.1), "sigma"),
    (lambda: forgetting.expected_task_losses(np.ones(6), 2, 0.1), "w_stars"),
    (lambda: forgetting.expected_task_losses(np.ones((2, 6)), 0, 0.1), "n"),
    (lambda: forgetting.two_task_forgetting(np.eye(3), np.eye(3), np.ones(3), 0), "iterations"),
    (lambda: forgetting.cyclic_forgetting_bound(0, 4, 3), "tasks"),
])
def test_bad_input_is_one_line_naming_the_parameter(call, parameter):
    with pytest.raises(ConfigError) as error:
        call()
    message = str(error.value)
    assert "\n" not in message and parameter in message


def alternating_fits(designs, w_star, order):
    """Errors e_k = w_k − w* of sequential min-distance fits (noiseless shared solution)."""
    w, path = np.zeros_like(w_star), []
    for m in order:
        X = designs[m]
        w = forgetting.sequential_projection_fit(w, X, X @ w_star)
        path.append(w - w_star)
    return path


def orthonormal_rows(rng, rows, p):
    return np.linalg.qr(rng.standard_normal((p, rows)))[0].T


@settings(max_examples=25)
@given(p=hs.sampled_from([3, 5, 8]), n1=hs.sampled_from([1, 2]), n2=hs.sampled_from([1, 2, 3]),
       seed=hs.integers(0, 10_000))
def test_two_task_formula_is_exact_for_orthonormal_rows(p, n1, n2, seed):
    rng = np.random.default_rng(seed)
    designs = [orthonormal_rows(rng, n1, p), orthonormal_rows(rng, min(n2, p - 1), p)]
    w_star = rng.standard_normal(p)
    k = 7
    path = alternating_fits(designs, w_star, [t % 2 for t in range(k)])
    simulated = [0.5 * sum(np.sum((X @ e) ** 2) for X in designs) for e in path]
    closed = forgetting.two_task_forgetting(designs[0], designs[1], w_star, k)
    np.testing.assert_allclose(closed, simulated, rtol=1e-9, atol=1e-12 * (w_star @ w_star))
    for iteration in range(1, k + 1):  # never above the worst case
        assert closed[iteration - 1] <= forgetting.two_task_worst_case(
            iteration, np.linalg.norm(w_star)) * (1 + 1e-12)


@settings(max_examples=15)
@given(p=hs.sampled_from([3, 6]), seed=hs.integers(0, 10_000))
def test_two_task_formula_bounds_data_of_norm_at_most_one(p, seed):
    rng = np.random.default_rng(seed)
    designs = [rng.standard_normal((2, p)) for _ in range(2)]
    designs = [X / np.linalg.norm(X, 2) for X in designs]
    w_star = rng.standard_normal(p)
    path = alternating_fits(designs, w_star, [t % 2 for t in range(6)])
    simulated = np.array([0.5 * sum(np.sum((X @ e) ** 2) for X in designs) for e in path])
    closed = forgetting.two_task_forgetting(designs[0], designs[1], w_star, 6)
    assert np.all(simulated <= closed * (1 + 1e-9) + 1e-14)


def test_two_task_worst_case_is_attained_by_one_angle():
    for k in (2, 3, 10):
        c = math.sqrt((k - 1) / k)
        theta = math.acos(c)
        X1 = np.array([[0.0, 1.0]])                                  # N_1 = span(e1)
        X2 = np.array([[-math.sin(theta), math.cos(theta)]])          # N_2 at angle θ
        w_star = np.array([-1.0, 0.0])                                # e_0 = e1 ∈ N_1
        value = forgetting.two_task_forgetting(X1, X2, w_star, k)[-1]
        assert value == pytest.approx(forgetting.two_task_worst_case(k), rel=1e-12)
        assert value <= 1 / (2 * math.e * (k - 1))


@settings(max_examples=10)
@given(tasks=hs.sampled_from([2, 3, 5]), p=hs.sampled_from([4, 10]), seed=hs.integers(0, 10_000))
def test_cyclic_forgetting_never_exceeds_the_bound(tasks, p, seed):
    rng = np.random.default_rng(seed)
    designs = [rng.standard_normal((1, p)) for _ in range(tasks)]
    designs = [X / np.linalg.norm(X, 2) for X in designs]
    w_star = rng.standard_normal(p)
    w_star /= np.linalg.norm(w_star)
    cycles = 6
    order = [t % tasks for t in range(tasks * cycles)]
    path = alternating_fits(designs, w_star, order)
    for k in range(tasks, tasks * cycles + 1, tasks):
        seen = np.mean([np.sum((designs[m] @ path[k - 1]) ** 2) for m in order[:k]])
        assert seen <= forgetting.cyclic_forgetting_bound(tasks, k, p)


def _fit_order(designs, w_star, order):
    w, losses = np.zeros_like(w_star), []
    for m in order:
        w = forgetting.sequential_projection_fit(w, designs[m], designs[m] @ w_star)
        losses.append(forgetting.normalized_average_loss(designs, w_star, w))
    return np.array(losses)


def _simulate_orders(designs, w_star, orders):
    """Normalized average loss after each fit, for every order (rows), all orders at once."""
    stacked = np.stack(designs)                       # (T, n, d): every task has n rows
    pseudo = np.linalg.pinv(stacked)                  # (T, d, n)
    w = np.zeros((len(orders), w_star.size))
    scale = (w_star @ w_star) * max(np.linalg.norm(X, 2) for X in designs) ** 2
    losses = []
    for t in range(orders.shape[1]):
        X, X_plus = stacked[orders[:, t]], pseudo[orders[:, t]]
        w = w + np.einsum("odn,on->od", X_plus, np.einsum("ond,d->on", X, w_star)
                          - np.einsum("ond,od->on", X, w))
        residuals = np.einsum("mnd,od->omn", stacked, w - w_star)
        losses.append(np.sum(residuals ** 2, axis=(1, 2)) / len(designs) / scale)
    return np.stack(losses, axis=1)                   # (orders, k)


@settings(max_examples=25, deadline=None)
@given(tasks=hs.sampled_from([2, 3]), d=hs.sampled_from([3, 5]), rank=hs.sampled_from([1, 2]),
       spread=hs.sampled_from([0.05, 1.0]), seed=hs.integers(0, 10_000))
def test_random_orders_match_the_exact_expectation_and_stay_below_the_bounds(tasks, d, rank,
                                                                              spread, seed):
    # Simulated random orders with replacement (many draws, batched fits) against the exact
    # second-moment recursion, and never above 13/√k; similar tasks (small spread) forget slowly.
    rng = np.random.default_rng(seed)
    common = rng.standard_normal((rank, d))
    designs = [common + spread * rng.standard_normal((rank, d)) for _ in range(tasks)]
    w_star = rng.standard_normal(d)
    iterations, draws = 6, 4000
    exact = forgetting.random_order_expected_loss(designs, w_star, iterations)
    runs = _simulate_orders(designs, w_star, rng.integers(0, tasks, (draws, iterations)))
    error = runs.std(0, ddof=1) / math.sqrt(draws)
    assert np.all(np.abs(runs.mean(0) - exact) <= 4 * error + 1e-12)
    assert np.all(runs <= 1.0 + 1e-12)  # L(w) ≤ ‖w − w*‖²/‖w*‖² ≤ 1 for w_0 = 0
    bounds = np.array([forgetting.random_order_loss_bound(k) for k in range(1, iterations + 1)])
    assert np.all(exact <= bounds)
    long_run = forgetting.random_order_expected_loss(designs, w_star, 400)
    assert np.all(long_run <= 13 / np.sqrt(np.arange(1, 401)))


@settings(max_examples=10, deadline=None)
@given(d=hs.sampled_from([3, 4]), tasks=hs.sampled_from([3, 4]), spread=hs.sampled_from([0.05, 1.0]),
       seed=hs.integers(0, 10_000))
def test_single_pass_random_orders_stay_below_two_d_minus_r_over_k(d, tasks, spread, seed):
    import itertools
    rng = np.random.default_rng(seed)
    rank = int(rng.integers(1, d))
    common = rng.standard_normal((rank, d))
    designs = [common + spread * rng.standard_normal((rank, d)) for _ in range(tasks)]
    w_star = rng.standard_normal(d)
    orders = np.array(list(itertools.permutations(range(tasks))))
    mean = _simulate_orders(designs, w_star, orders).mean(0)
    # the batched fits are the sequential fits (one order checked against the library's fit)
    np.testing.assert_allclose(_simulate_orders(designs, w_star, orders[:1])[0],
                               _fit_order(designs, w_star, orders[0]), rtol=1e-9, atol=1e-14)
    bounds = [forgetting.single_pass_loss_bound(k, d, rank) for k in range(1, tasks + 1)]
    assert np.all(mean <= bounds)


def test_random_order_expected_loss_on_two_lines_is_the_closed_form():
    # Two rank-one tasks in d = 2 whose null spaces are lines at angle θ; w* on neither line.
    # With replacement each step projects onto line 1 or 2; after the first step the error lies
    # on a line; enumerating all 2^k equally likely orders gives E L(w_k) independently.
    theta = 0.3
    X1 = np.array([[0.0, 1.0]])                              # null space: the x-axis
    X2 = np.array([[-math.sin(theta), math.cos(theta)]])     # null space: angle θ
    w_star = np.array([0.6, 0.8])
    k = 8
    exact = forgetting.random_order_expected_loss([X1, X2], w_star, k)
    lines = [np.array([1.0, 0.0]), np.array([math.cos(theta), math.sin(theta)])]
    expected = np.zeros(k)  # the mean over all 2^k orders, each as likely
    for step in range(1, k + 1):
        total = 0.0
        for order in itertools_product(step):
            e = -w_star
            for m in order:
                e = lines[m] * (lines[m] @ e)
            total += 0.5 * ((X1 @ e) ** 2 + (X2 @ e) ** 2).item()
        expected[step - 1] = total / 2 ** step
    np.testing.assert_allclose(exact, expected, rtol=1e-12, atol=1e-15)


def itertools_product(length):
    import itertools
    return itertools.product((0, 1), repeat=length)


def test_random_order_bounds_refuse_bad_input():
    with pytest.raises(ConfigError, match="iterations"):
        forgetting.random_order_loss_bound(0)
    with pytest.raises(ConfigError, match="rank"):
        forgetting.single_pass_loss_bound(3, 2, 3)
    with pytest.raises(ConfigError, match="designs"):
        forgetting.random_order_expected_loss([np.ones((1, 3)), np.ones((1, 4))], np.ones(3), 2)
    with pytest.raises(ConfigError, match="w_star"):
        forgetting.random_order_expected_loss([np.ones((1, 3))], np.zeros(3), 2)
