"""Sharpness measures against their closed forms on quadratics and exact enumerations."""
import itertools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st_h

import sharp_theory as st
from sharp_theory.errors import ConfigError
from sharp_theory.measure import sharpness

D = 6


def psd_matrix(seed, d=D):
    rng = np.random.default_rng(seed)
    a = rng.standard_normal((d, d))
    return jnp.asarray(a @ a.T / d + 0.05 * np.eye(d))


def quadratic(matrix, center):
    return jax.tree_util.Partial(_quadratic, matrix, center)


def _quadratic(matrix, center, w):
    return 0.5 * (w - center) @ matrix @ (w - center)


@jax.jit
def _l2_sharpness_on_quadratic(matrix, rho):
    return sharpness.epsilon_sharpness(quadratic(matrix, jnp.zeros(D)), jnp.zeros(D), rho,
                                       num_steps=300).sharpness


@settings(max_examples=6)
@given(seed=st_h.integers(0, 10_000), rho=st_h.floats(0.01, 2.0))
def test_l2_epsilon_sharpness_of_a_quadratic_is_rho2_lambda_max_over_2(seed, rho):
    matrix = psd_matrix(seed)
    exact = rho**2 * np.linalg.eigvalsh(np.asarray(matrix))[-1] / 2
    found = float(_l2_sharpness_on_quadratic(matrix, rho))
    assert found <= exact * (1 + 1e-12)  # a search can only find a lower bound
    assert found == pytest.approx(exact, rel=1e-6)


def test_small_rho_limit_on_a_non_quadratic_minimum():
    # f has its minimum at 0 with Hessian AᵀA; ε-sharpness / (ρ² λ_max / 2) -> 1 at rate O(ρ²)
    # (odd terms vanish at a minimum of an even function).
    a = np.asarray(np.random.default_rng(1).standard_normal((D, D)))
    fn = jax.tree_util.Partial(_log_cosh_plus_quartic, jnp.asarray(a))
    lambda_max = np.linalg.eigvalsh(a.T @ a)[-1]
    errors = []
    for rho in (0.1, 0.01, 0.001):
        found = float(sharpness.epsilon_sharpness(fn, jnp.zeros(D), rho, num_steps=300).sharpness)
        errors.append(abs(found / (rho**2 * lambda_max / 2) - 1))
    assert errors[-1] < 1e-5
    assert errors[0] > errors[1] > errors[2]
    assert errors[0] / errors[1] > 50  # second-order convergence (factor 100 per decade of ρ)


def _log_cosh_plus_quartic(a, w):
    return jnp.sum(jnp.log(jnp.cosh(a @ w))) + 0.1 * jnp.sum(w**4)


def test_linf_sharpness_closed_forms_and_vertex_enumeration():
    rho = 0.3
    # Separable (diagonal) quadratic: every vertex is optimal, max = ρ² tr(H) / 2.
    diagonal = jnp.diag(jnp.arange(1.0, D + 1.0))
    found = sharpness.epsilon_sharpness(quadratic(diagonal, jnp.zeros(D)), jnp.zeros(D), rho,
                                        p=math.inf, step_size=2.0, num_restarts=8).sharpness
    assert float(found) == pytest.approx(rho**2 * float(jnp.trace(diagonal)) / 2, rel=1e-12)
    # Rank one H = a aᵀ: the best vertex is sign(a), max = ρ² ‖a‖₁² / 2.
    a = jnp.asarray(np.random.default_rng(0).standard_normal(D))
    found = sharpness.epsilon_sharpness(quadratic(jnp.outer(a, a), jnp.zeros(D)), jnp.zeros(D),
                                        rho, p=math.inf, step_size=2.0, num_restarts=8).sharpness
    assert float(found) == pytest.approx(rho**2 * float(jnp.sum(jnp.abs(a))) ** 2 / 2, rel=1e-12)
    # General H: maximizing a convex quadratic over a box is NP-hard; the search returns a
    # feasible value (never above the enumerated optimum over all 2^6 vertices) at least as
    # large as SAM's one ℓ∞ step would give.
    for seed in range(3):
        matrix = np.asarray(psd_matrix(seed))
        brute = max(0.5 * rho**2 * np.array(s) @ matrix @ np.array(s)
                    for s in itertools.product([-1.0, 1.0], repeat=D))
        found = float(sharpness.epsilon_sharpness(quadratic(jnp.asarray(matrix), jnp.zeros(D)),
                                                  jnp.zeros(D), rho, p=math.inf, step_size=2.0,
                                                  num_restarts=8).sharpness)
        assert found <= brute * (1 + 1e-12)
        assert found >= 0.8 * brute


def test_sharpness_is_at_least_sams_one_step_estimate_away_from_a_minimum():
    matrix = psd_matrix(4)
    center = jnp.arange(D, dtype=jnp.float64) / D
    fn = quadratic(matrix, center)
    w = jnp.zeros(D)
    gradient = jax.grad(fn)(w)
    rho = 0.2
    one_step = fn(w + rho * gradient / jnp.linalg.norm(gradient)) - fn(w)
    result = sharpness.epsilon_sharpness(fn, w, rho, num_steps=300)
    assert result.sharpness >= one_step - 1e-15
    assert jnp.linalg.norm(result.perturbation) == pytest.approx(rho, rel=1e-12)
    assert fn(w + result.perturbation) - fn(w) == pytest.approx(float(result.sharpness), rel=1e-12)


def test_adaptive_sharpness_closed_form_and_scale_invariance():
    matrix = psd_matrix(5)
    center = jnp.asarray(np.random.default_rng(5).standard_normal(D))
    scale = np.abs(np.asarray(center)) + 0.01
    exact = 0.1**2 / 2 * np.linalg.eigvalsh(scale[:, None] * np.asarray(matrix) * scale[None, :])[-1]
    found = sharpness.adaptive_sharpness(quadratic(matrix, center), center, 0.1, num_steps=300)
    assert float(found.sharpness) == pytest.approx(exact, rel=1e-6)

    # ASAM's point (Kwon et al. 2021, Thm 2): with T = |w| (offset 0) the measure is invariant
    # under the rescaling (u, v) -> (a u, v / a) that leaves f(u·v) unchanged.
    params = {"u": jnp.array([0.7, -0.4]), "v": jnp.array([1.1, 0.3])}
    rescaled = {"u": 5.0 * params["u"], "v": params["v"] / 5.0}
    values = [float(sharpness.adaptive_sharpness(_product_loss, p, 0.05, adaptive_offset=0.0,
                                                 num_steps=200).sharpness) for p in (params, rescaled)]
    plain = [float(sharpness.epsilon_sharpness(_product_loss, p, 0.05, num_steps=200).sharpness)
             for p in (params, rescaled)]
    assert values[0] == pytest.approx(values[1], rel=1e-8)
    assert abs(plain[0] - plain[1]) > 0.1 * plain[0]  # the plain ball is not invariant


def _product_loss(params):
    return (jnp.dot(params["u"], params["v"]) - 1.0) ** 2


def per_example_loss(w, batch):
    return 0.5 * jnp.mean((batch["x"] @ w) ** 2)


def test_m_sharpness_one_closed_form_full_batch_equals_epsilon_sharpness():
    x = np.random.default_rng(2).standard_normal((8, D))
    batch = {"x": jnp.asarray(x)}
    rho = 0.1
    w = jnp.zeros(D)
    # m = 1: each example is a rank-one quadratic with λ = ‖x_k‖².
    one = sharpness.m_sharpness(per_example_loss, w, batch, rho, 1, num_steps=300)
    assert float(one) == pytest.approx(np.mean(rho**2 * np.sum(x**2, axis=1) / 2), rel=1e-10)
    full = sharpness.m_sharpness(per_example_loss, w, batch, rho, 8, num_steps=300)
    exact_full = rho**2 / 2 * np.linalg.eigvalsh(x.T @ x / 8)[-1]
    assert float(full) == pytest.approx(exact_full, rel=1e-6)
    # the mean of per-chunk maxima is at least the max of the mean
    four = sharpness.m_sharpness(per_example_loss, w, batch, rho, 4, num_steps=300)
    assert float(one) >= float(four) >= float(full) * (1 - 1e-9)


def test_average_sharpness_and_local_entropy_against_closed_forms():
    matrix = psd_matrix(7)
    eigenvalues = np.linalg.eigvalsh(np.asarray(matrix))
    fn, w = quadratic(matrix, jnp.zeros(D)), jnp.zeros(D)
    sigma = 0.3
    average = sharpness.average_sharpness(fn, w, sigma, num_samples=4000, key=jax.random.key(3))
    assert abs(float(average.value) - sigma**2 * eigenvalues.sum() / 2) < 4 * float(average.standard_error)
    entropy = sharpness.local_entropy(fn, w, sigma, num_samples=4000, key=jax.random.key(3))
    exact_entropy = 0.5 * np.sum(np.log1p(sigma**2 * eigenvalues))
    assert abs(float(entropy.value) - exact_entropy) < 4 * float(entropy.standard_error)
    # Jensen on the same samples: -log E e^{-Δ} <= E Δ, deterministically.
    assert float(entropy.value) <= float(average.value)


def test_pac_bayes_bound_terms():
    fn = quadratic(psd_matrix(8), jnp.zeros(D))
    w = jnp.full(D, 0.2)
    rho, n, delta = 0.05, 1000, 0.05
    result = sharpness.sam_pac_bayes_bound(fn, w, rho, num_examples=n, delta=delta)
    k = D
    expected = math.sqrt((k * math.log(1 + (float(jnp.sum(w**2)) / rho**2)
                                       * (1 + math.sqrt(math.log(n) / k)) ** 2)
                          + 4 * math.log(n / delta)) / (n - 1))
    assert float(result.complexity) == pytest.approx(expected, rel=1e-12)
    worst = sharpness.epsilon_sharpness(fn, w, rho)
    assert float(result.sharp_loss) == pytest.approx(float(fn(w) + worst.sharpness), rel=1e-12)
    assert float(result.bound) == pytest.approx(float(result.sharp_loss + result.complexity), rel=1e-12)
    # more data tightens the complexity term
    assert sharpness.sam_pac_bayes_complexity(1.0, rho, k, 10 * n) < sharpness.sam_pac_bayes_complexity(1.0, rho, k, n)


def test_fisher_rao_norm_linear_model_and_homogeneity_lemma():
    rng = np.random.default_rng(3)
    x, y, w = rng.standard_normal((10, 4)), rng.standard_normal(10), rng.standard_normal(4)
    batch = {"x": jnp.asarray(x), "y": jnp.asarray(y)}

    def squared(w, batch):
        return 0.5 * jnp.mean((batch["x"] @ w - batch["y"]) ** 2)

    prediction = x @ w
    exact = np.sqrt(np.mean(((prediction - y) * prediction) ** 2))
    assert float(sharpness.fisher_rao_norm(squared, jnp.asarray(w), batch)) == pytest.approx(exact, rel=1e-12)

    # Two-layer ReLU network without biases is 2-homogeneous: <θ, ∇ℓ> = 2 f ℓ'(f).
    params = {"W": jnp.asarray(rng.standard_normal((4, 5))), "v": jnp.asarray(rng.standard_normal(5))}

    def network(params, x):
        return jax.nn.relu(x @ params["W"]) @ params["v"]

    def relu_loss(params, batch):
        return 0.5 * jnp.mean((network(params, batch["x"]) - batch["y"]) ** 2)

    f = np.asarray(network(params, batch["x"]))
    lemma = np.sqrt(np.mean((2 * f * (f - y)) ** 2))
    assert float(sharpness.fisher_rao_norm(relu_loss, params, batch)) == pytest.approx(lemma, rel=1e-12)


def test_measures_work_on_a_from_loss_problem():
    rng = np.random.default_rng(4)
    data = {"x": rng.standard_normal((12, 3)), "y": rng.standard_normal(12)}

    def loss(params, batch):
        return 0.5 * jnp.mean((jnp.tanh(batch["x"] @ params["w"]) - batch["y"]) ** 2)

    problem = st.problems.from_loss(loss, {"w": jnp.asarray(rng.standard_normal(3))}, data=data)
    fn = st.measure.full_batch_loss(problem)
    params = problem.params0
    rho = 1e-3
    worst = st.measure.epsilon_sharpness(fn, params, rho)
    gradient_norm = float(jnp.linalg.norm(jax.grad(fn)(params)["w"]))
    # away from a minimum the first-order term dominates: ≈ ρ‖∇L‖
    assert float(worst.sharpness) == pytest.approx(rho * gradient_norm, rel=2e-2)
    assert st.measure.m_sharpness(problem.loss, params, problem.examples, rho, 3) > 0
    assert st.measure.fisher_rao_norm(problem.loss, params, problem.examples) > 0


def test_bad_inputs_raise_config_errors():
    fn = quadratic(psd_matrix(0), jnp.zeros(D))
    w = jnp.zeros(D)
    with pytest.raises(ConfigError, match="p"):
        sharpness.epsilon_sharpness(fn, w, 0.1, p=3)
    with pytest.raises(ConfigError, match="rho"):
        sharpness.epsilon_sharpness(fn, w, -0.1)
    with pytest.raises(ConfigError, match="m"):
        sharpness.m_sharpness(per_example_loss, w, {"x": jnp.ones((8, D))}, 0.1, 3)
    with pytest.raises(ConfigError, match="delta"):
        sharpness.sam_pac_bayes_bound(fn, w, 0.1, num_examples=10, delta=1.5)
    with pytest.raises(ConfigError, match="num_samples"):
        sharpness.average_sharpness(fn, w, 0.1, num_samples=1, key=jax.random.key(0))
