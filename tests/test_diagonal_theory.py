"""Exact one-step factors of c = u² − v²: sympy derivations and property tests against the
optimizers of sharp_theory on random instances (float64)."""
import jax
import jax.numpy as jnp
import numpy as np
from hypothesis import given, settings, strategies as st_h

import sharp_theory as st
from sharp_theory.problems.diagonal import diagonal_linear
from sharp_theory.theory import diagonal as theory

N, D = 6, 8


def test_symbolic_residuals_are_zero():
    assert theory.gd_step()["residual"] == 0
    assert theory.n_sam_step()["residual"] == 0
    assert theory.one_sam_step(3)["residual"] == 0


def test_symbolic_identity_is_not_vacuous():
    # A wrong factor (missing the η² term) leaves a non-zero residual.
    step = theory.n_sam_step()
    wrong = step["claimed"] + step["eta"] ** 2 * step["g_ascent"] ** 2 * (step["u"] ** 2 - step["v"] ** 2)
    import sympy as sp
    assert sp.simplify(sp.expand(step["next_c"] - wrong)) != 0


def test_one_sam_factor_with_one_example_is_the_n_sam_factor():
    rng = np.random.default_rng(0)
    g, gp = rng.normal(size=(1, 5)), rng.normal(size=(1, 5))
    np.testing.assert_allclose(theory.one_sam_factor(0.3, 0.2, g, gp),
                               theory.n_sam_factor(0.3, 0.2, g[0], gp[0]), rtol=1e-15)


@jax.jit
def one_step(problem, optimizer, params):
    new, _, _ = optimizer.step(params, optimizer.init(params), problem.loss, problem.examples,
                               optimizer.hparams, jax.random.key(0))
    return new


def simulated_factor_error(problem, optimizer, u, v, factor):
    """max_i |c+_i − factor_i·c_i| / (u+_i² + v+_i²): the rounding scale of a difference of squares."""
    new = one_step(problem, optimizer, {"u": jnp.asarray(u), "v": jnp.asarray(v)})
    u_next, v_next = np.asarray(new["u"]), np.asarray(new["v"])
    return np.max(np.abs((u_next**2 - v_next**2) - factor * (u**2 - v**2)) / (u_next**2 + v_next**2))


instances = st_h.tuples(
    st_h.integers(0, 10_000),             # data seed
    st_h.integers(0, 10_000),             # parameter seed
    st_h.floats(0.01, 0.5),               # η
    st_h.floats(0.0, 1.0),                # ρ
    st_h.floats(0.1, 2.0),                # scale of u, v
)


def instance(data_seed, param_seed, scale):
    problem = diagonal_linear(N, 3, D, 3, data_seed, init_scale=1.0)
    X, y = np.asarray(problem.examples["x"]), np.asarray(problem.examples["y"])
    rng = np.random.default_rng(param_seed)
    return problem, X, y, scale * rng.normal(size=D), scale * rng.normal(size=D)


@settings(max_examples=25, deadline=None)
@given(instances)
def test_gd_factor_property(draw):
    data_seed, param_seed, lr, _, scale = draw
    problem, X, y, u, v = instance(data_seed, param_seed, scale)
    factor = theory.gd_factor(lr, theory.gradient_coefficient(X, y, u * v))
    assert simulated_factor_error(problem, st.optim.gd(lr), u, v, factor) <= 1e-13


@settings(max_examples=25, deadline=None)
@given(instances)
def test_n_sam_factor_property(draw):
    data_seed, param_seed, lr, rho, scale = draw
    problem, X, y, u, v = instance(data_seed, param_seed, scale)
    factor = theory.n_sam_factor(lr, rho, *theory.n_sam_coefficients(X, y, u, v, rho))
    assert simulated_factor_error(problem, st.optim.usam(lr, rho), u, v, factor) <= 1e-13


@settings(max_examples=25, deadline=None)
@given(instances)
def test_one_sam_factor_property(draw):
    data_seed, param_seed, lr, rho, scale = draw
    problem, X, y, u, v = instance(data_seed, param_seed, scale)
    factor = theory.one_sam_factor(lr, rho, *theory.one_sam_coefficients(X, y, u, v, rho))
    assert simulated_factor_error(problem, st.optim.usam(lr, rho, m=1), u, v, factor) <= 1e-13


@settings(max_examples=15, deadline=None)
@given(instances)
def test_normalized_n_sam_is_the_factor_with_rho_over_gradient_norm(draw):
    data_seed, param_seed, lr, rho, scale = draw
    problem, X, y, u, v = instance(data_seed, param_seed, scale)
    g = theory.gradient_coefficient(X, y, u * v)
    gradient_norm = np.sqrt(np.sum((g * v) ** 2) + np.sum((g * u) ** 2))  # ‖∇_(u,v) L‖
    effective_rho = rho / gradient_norm
    factor = theory.n_sam_factor(lr, effective_rho, *theory.n_sam_coefficients(X, y, u, v, effective_rho))
    assert simulated_factor_error(problem, st.optim.sam(lr, rho), u, v, factor) <= 1e-12


def test_factor_check_detects_a_wrong_rule():
    # The property tests can fail: normalized 1-SAM does not follow the unnormalized factor.
    problem, X, y, u, v = instance(1, 2, 1.0)
    factor = theory.one_sam_factor(0.2, 0.5, *theory.one_sam_coefficients(X, y, u, v, 0.5))
    assert simulated_factor_error(problem, st.optim.sam(0.2, 0.5, m=1), u, v, factor) > 1e-6


def test_one_sam_shrinks_c_more_than_n_sam_on_the_authors_data():
    # One step from the authors' initialization: the per-example term B = mean g_k g'_k dominates.
    problem = diagonal_linear(init_scale=0.1)
    X, y = np.asarray(problem.examples["x"]), np.asarray(problem.examples["y"])
    u, v = np.full(30, 0.1), np.zeros(30)
    gd = theory.gd_factor(0.5, theory.gradient_coefficient(X, y, u * v))
    n_sam = theory.n_sam_factor(0.5, 0.1, *theory.n_sam_coefficients(X, y, u, v, 0.1))
    one_sam = theory.one_sam_factor(0.5, 0.1, *theory.one_sam_coefficients(X, y, u, v, 0.1))
    assert np.prod(one_sam) < np.prod(n_sam) <= np.prod(gd) <= 1.0
