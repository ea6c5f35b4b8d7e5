"""Property tests for Li, Zhang, He 2024 (arXiv 2410.14802): exact GD identities, SAM's OP drift,
Lemma 1, and the closed forms the balancedness lab uses as oracles. All in float64."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as hst

import sharp_theory as st
from sharp_theory.problems.scale_invariant import (expected_squared_gradients, op_derivative_moments,
                                                   op_sam_step_factor)
from sharp_theory.theory import scale_invariant as theory

EPS = np.finfo(np.float64).eps
coordinate = hst.floats(-2.0, 2.0, allow_nan=False)
vector3 = hst.lists(coordinate, min_size=3, max_size=3)
step_size = hst.floats(1e-4, 0.2)
target = hst.floats(-1.0, 1.0)


def _b(params):
    return float(st.measure.balancedness(params))


def _one_gd_step(problem, lr):
    optimizer = st.optim.gd(lr)
    params = problem.params0
    new_params, _, _ = optimizer.step(params, optimizer.init(params), problem.loss, None,
                                      optimizer.hparams, jax.random.key(0))
    return params, new_params


# Module-level objectives so the jit caches are reused across hypothesis examples.
class QuadraticOP:
    def __init__(self, c):
        self.c = c

    def __call__(self, w):
        return jnp.cos(w) + (w - self.c) ** 2  # non-quadratic on purpose

    def __eq__(self, other):
        return isinstance(other, QuadraticOP) and other.c == self.c

    def __hash__(self):
        return hash(self.c)


@settings(max_examples=40, deadline=None)
@given(x=vector3, y=vector3, lr=step_size, c=target)
def test_gd_step_on_f_of_inner_product_multiplies_B_by_one_minus_eta2_fprime2(x, y, lr, c):
    f = QuadraticOP(c)
    problem = st.problems.scalar_product(f, x, y)
    before, after = _one_gd_step(problem, lr)
    w = float(np.dot(x, y))
    fprime = float(jax.grad(f)(w))
    expected = theory.op_gd_factor(lr, fprime) * _b(before)
    scale = float(np.sum(np.square(x)) + np.sum(np.square(y))) * (1 + (lr * fprime) ** 2)
    assert abs(_b(after) - expected) <= 64 * EPS * max(scale, 1.0)


class MatrixFit:
    def __init__(self, seed):
        self.target = np.random.default_rng(seed).standard_normal((3, 2))

    def __call__(self, matrix):
        return jnp.sum((matrix - self.target) ** 2) + 0.1 * jnp.sum(matrix**4)


@settings(max_examples=40, deadline=None)
@given(x=vector3, y=hst.lists(coordinate, min_size=2, max_size=2), lr=step_size,
       seed=hst.integers(0, 3))
def test_gd_step_on_f_of_outer_product_changes_B_by_half_eta2_gradient_gap(x, y, lr, seed):
    problem = st.problems.outer_product(MatrixFit(seed), x, y)
    before, after = _one_gd_step(problem, lr)
    grads = jax.grad(lambda p: problem.loss(p, None))(before)
    gx, gy = float(jnp.sum(grads["x"] ** 2)), float(jnp.sum(grads["y"] ** 2))
    expected = _b(before) + lr**2 / 2 * (gx - gy)
    scale = float(np.sum(np.square(x)) + np.sum(np.square(y))) + lr**2 * (gx + gy)
    assert abs(_b(after) - expected) <= 64 * EPS * max(scale, 1.0)


def test_sympy_one_step_identities_simplify_to_zero():
    assert theory.op_gd_step()["residual"] == 0
    assert theory.nop_gd_step()["residual"] == 0


# SAM's OP drift. One SAM step multiplies B by c = 1 − 2ηρ s f̃'/N − η² f̃'² (1 − ρ²/N²)
# (op_sam_step_factor, derived from the update). For f(w) = (w − a)² the ascent moves w away from
# a: s f̃' = |f'| + 2ρN + 2ρ²w s/N² ≥ |f'| + 2ρN − ρ² > 0 when ρ < N. Then 0 < 1 − c when ρ < N,
# and c > −1 when η(2ρ|f̃'|/N + η f̃'²) < 2. Regime: f' ≠ 0, B ≠ 0, ρ ≤ N/2, η|f̃'| ≤ 0.5.
@settings(max_examples=40, deadline=None)
@given(x=vector3, y=vector3, lr=hst.floats(1e-4, 0.05), rho=hst.floats(1e-3, 0.3), a=target)
def test_one_sam_step_on_op_shrinks_abs_B_in_its_regime(x, y, lr, rho, a):
    x, y = np.asarray(x), np.asarray(y)
    squared = float(x @ x + y @ y)
    w = float(x @ y)
    balancedness = 0.5 * float(x @ x - y @ y)
    fprime = 2.0 * (w - a)
    sign = np.sign(fprime)
    scale = rho * sign / np.sqrt(max(squared, 1e-300))
    w_perturbed = float((x + scale * y) @ (y + scale * x))
    fprime_perturbed = 2.0 * (w_perturbed - a)
    in_regime = (abs(fprime) > 1e-3 and abs(balancedness) > 1e-3 and rho <= 0.5 * np.sqrt(squared)
                 and lr * abs(fprime_perturbed) <= 0.5)
    if not in_regime:
        return
    problem = st.problems.op_toy(noise=0.0, target=a, x0=x, y0=y)
    optimizer = st.optim.sam(lr, rho)
    batch = {"n": jnp.zeros((1,))}
    params = problem.params0
    new_params, _, _ = optimizer.step(params, optimizer.init(params), problem.loss, batch,
                                      optimizer.hparams, jax.random.key(0))
    after = _b(new_params)
    factor = float(op_sam_step_factor(jnp.asarray(x), jnp.asarray(y), fprime, fprime_perturbed, lr, rho))
    assert abs(after - factor * balancedness) <= 64 * EPS * max(squared, 1.0)
    assert abs(after) < abs(balancedness)


def test_sam_regime_is_not_vacuous():
    """The drift-sign property above must see in-regime instances: check a typical one."""
    x, y = np.array([0.2, -0.1, 0.3]), -3 * np.array([0.2, -0.1, 0.3])
    problem = st.problems.op_toy(noise=0.0, x0=x, y0=y)
    optimizer = st.optim.sam(1e-2, 0.2)
    params, _, _ = optimizer.step(problem.params0, optimizer.init(problem.params0), problem.loss,
                                  {"n": jnp.zeros((1,))}, optimizer.hparams, jax.random.key(0))
    assert abs(_b(params)) < 0.56


# Lemma 1: at a minimizer (f'(w) = 0) of f(xᵀy) the Hessian is f''(w) v vᵀ with v = (y, x).
class ShiftedCosh:
    def __init__(self, w):
        self.w = w

    def __call__(self, value):
        return jnp.cosh(value - self.w)

    def __eq__(self, other):
        return isinstance(other, ShiftedCosh) and other.w == self.w

    def __hash__(self):
        return hash(self.w)


@settings(max_examples=30, deadline=None)
@given(direction=vector3, other=vector3, scale=hst.floats(0.2, 3.0), w=hst.floats(-1.5, 1.5),
       beta=hst.floats(-1.0, 1.0))
def test_lemma1_top_hessian_eigenvalue_at_random_minimizers(direction, other, scale, w, beta):
    u = np.asarray(direction)
    if np.linalg.norm(u) < 0.1:
        return
    u = u / np.linalg.norm(u)
    v = np.asarray(other) - (np.asarray(other) @ u) * u  # orthogonal to u, so xᵀy = w exactly
    x = scale * u
    y = (w / scale) * u + beta * v
    problem = st.problems.scalar_product(ShiftedCosh(float(x @ y)), x, y)  # f'' = 1 at the minimum
    params = problem.params0
    top = float(st.measure.lambda_max(lambda p: problem.loss(p, None), params, method="dense"))
    closed = theory.lemma1_top_eigenvalue(1.0, float(x @ x), float(y @ y))
    assert top == pytest.approx(closed, rel=1e-12)
    # among minimizers with the same w, ‖x‖² + ‖y‖² ≥ 2|w|: balanced and parallel is flattest
    assert top >= 2 * abs(float(x @ y)) * (1 - 1e-12)


@settings(max_examples=20, deadline=None)
@given(x=vector3, y=vector3, noise=hst.floats(0.0, 2.0), c=target)
def test_expected_squared_gradients_op_closed_form(x, y, noise, c):
    problem = st.problems.op_toy(noise=noise, target=c, x0=x, y0=y)
    gx, gy = expected_squared_gradients(problem.params0, problem)
    w = float(np.dot(x, y))
    mean_fprime_sq = 4 * ((w - c) ** 2 + noise**2)  # E f'² for f' = 2(w − c − noise·n)
    assert float(gx) == pytest.approx(mean_fprime_sq * float(np.dot(y, y)), rel=1e-12, abs=1e-12)
    assert float(gy) == pytest.approx(mean_fprime_sq * float(np.dot(x, x)), rel=1e-12, abs=1e-12)
    moments = op_derivative_moments(problem.params0, problem.constants)
    assert float(moments["mean_square"]) == pytest.approx(mean_fprime_sq, rel=1e-12, abs=1e-12)


def test_expected_squared_gradients_nop_against_monte_carlo():
    problem = st.problems.nop_toy(noise=0.8)
    gx, gy = expected_squared_gradients(problem.params0, problem)
    draws = problem.batch(jax.random.key(7), 0, 200_000)["n"][:, None]
    grads = jax.vmap(lambda n: jax.grad(problem.loss)(problem.params0, {"n": n}))(draws)
    sample_x = np.sum(np.asarray(grads["x"]) ** 2, axis=1)
    sample_y = np.sum(np.asarray(grads["y"]) ** 2, axis=1)
    # 5 standard errors of the Monte Carlo mean
    assert abs(sample_x.mean() - float(gx)) <= 5 * sample_x.std() / np.sqrt(sample_x.size)
    assert abs(sample_y.mean() - float(gy)) <= 5 * sample_y.std() / np.sqrt(sample_y.size)


def test_op_mean_abs_derivative_against_quadrature():
    from scipy import integrate, stats

    params = {"x": jnp.array([0.3, 0.1, -0.2]), "y": jnp.array([0.5, -0.4, 0.2])}
    for noise in (0.0, 0.3, 1.5):
        constants = st.problems.op_toy(noise=noise).constants
        moments = op_derivative_moments(params, constants)
        mean = 2 * (float(params["x"] @ params["y"]) - 0.5)
        if noise == 0:
            assert float(moments["mean_abs"]) == pytest.approx(abs(mean), rel=1e-14)
            continue
        value, _ = integrate.quad(lambda n: abs(mean - 2 * noise * n) * stats.norm.pdf(n), -12, 12,
                                  points=[mean / (2 * noise)])
        assert float(moments["mean_abs"]) == pytest.approx(value, rel=1e-9)


def test_op_sam_expected_rate_is_the_mean_of_the_exact_step_factor():
    """E[1 − c] over the noise, c = op_sam_step_factor, equals op_sam_expected_log_rate's total."""
    from sharp_theory.problems.scale_invariant import op_sam_expected_log_rate

    lr, rho = 1e-2, 0.2
    for noise, x, y in ((0.0, [0.2, -0.1, 0.3], [-0.6, 0.3, -0.9]),
                        (0.7, [0.5, 0.2, -0.1], [0.4, 0.3, 0.2]),
                        (1.5, [0.9, -0.3, 0.2], [0.1, 0.5, -0.4])):
        problem = st.problems.op_toy(noise=noise, x0=x, y0=y)
        x, y = problem.params0["x"], problem.params0["y"]
        n = jax.random.normal(jax.random.key(3), (400_000,), jnp.float64)
        labels = 0.5 + noise * n
        fprime = 2 * (x @ y - labels)
        scale = rho * jnp.sign(fprime) / jnp.sqrt(x @ x + y @ y)
        x_perturbed = x[None] + scale[:, None] * y[None]  # the SAM ascent point, per draw
        y_perturbed = y[None] + scale[:, None] * x[None]
        w_perturbed = jnp.sum(x_perturbed * y_perturbed, axis=1)
        fprime_perturbed = 2 * (w_perturbed - labels)
        decrement = 1 - op_sam_step_factor(x, y, fprime, fprime_perturbed, lr, rho)
        predicted = float(op_sam_expected_log_rate(problem.params0, problem.constants, lr, rho)["total"])
        standard_error = float(jnp.std(decrement)) / np.sqrt(n.size)
        assert abs(float(jnp.mean(decrement)) - predicted) <= 5 * standard_error + 1e-15
