"""Stability thresholds: sympy derivations and trajectories of the library's optimizers on
random quadratics, including the divergence boundary found by bisection."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st_h

import sharp_theory as st
from sharp_theory.errors import ConfigError
from sharp_theory.problems.base import Problem
from sharp_theory.theory import stability

KEY = jax.random.key(0)
D = 3


def _quadratic_objective(params, batch, constants):
    return 0.5 * params @ constants["H"] @ params


def _norm(params):
    return jnp.linalg.norm(params)


def quadratic_problem(eigenvalues, seed):
    """½ xᵀHx with H = Q diag(eigenvalues) Qᵀ (random rotation) and a random unit start."""
    rng = np.random.default_rng(seed)
    d = len(eigenvalues)
    rotation, _ = np.linalg.qr(rng.standard_normal((d, d)))
    matrix = rotation @ np.diag(eigenvalues) @ rotation.T
    start = rng.standard_normal(d)
    return Problem(objective=_quadratic_objective, params0=jnp.asarray(start / np.linalg.norm(start)),
                   constants={"H": jnp.asarray(0.5 * (matrix + matrix.T))}, name="quadratic"), rotation


def final_norm(problem, optimizer, steps):
    traj = st.run(problem, optimizer, steps=steps, key=KEY, observe={"norm": st.observables.of_params(_norm)}, stride=steps)
    return np.inf if traj.diverged else float(traj.final("norm"))


def divergence_boundary(problem, optimizer, low, high, steps, threshold, iterations=22):
    """Bisection on lr for the smallest step size whose run ends with norm above threshold."""
    for _ in range(iterations):
        middle = 0.5 * (low + high)
        if final_norm(problem, optimizer.with_hparams(lr=middle), steps) > threshold:
            high = middle
        else:
            low = middle
    return 0.5 * (low + high)


def test_sympy_derivations_equal_the_closed_forms():
    assert stability.check_derivations() == {"gd_limit": True, "usam_limit": True,
                                             "sam_two_cycle_radius": True, "sam_edge": True}


eigenvalue_triples = st_h.lists(st_h.floats(0.5, 4.0), min_size=D, max_size=D)


@settings(max_examples=6)
@given(eigenvalues=eigenvalue_triples, seed=st_h.integers(0, 1000))
def test_gd_divergence_boundary_is_two_over_lambda_max(eigenvalues, seed):
    problem, _ = quadratic_problem(eigenvalues, seed)
    limit = float(stability.gd_stability_limit(1.0)) / max(eigenvalues)  # η* = 2/λ_max
    found = divergence_boundary(problem, st.optim.gd(0.1), 0.5 * limit, 1.5 * limit, 3000, 1.0)
    assert found == pytest.approx(limit, rel=5e-3)


@settings(max_examples=6)
@given(eigenvalues=eigenvalue_triples, seed=st_h.integers(0, 1000), rho=st_h.floats(0.01, 1.0))
def test_usam_divergence_boundary_is_eta_lambda_one_plus_rho_lambda_equal_two(eigenvalues, seed, rho):
    problem, _ = quadratic_problem(eigenvalues, seed)
    top = max(eigenvalues)
    limit = 2.0 / (top * (1.0 + rho * top))  # the η solving ηλ(1 + ρλ) = 2
    found = divergence_boundary(problem, st.optim.usam(0.1, rho), 0.5 * limit, 1.5 * limit, 3000, 1.0)
    assert found == pytest.approx(limit, rel=5e-3)
    # the same threshold in the λ direction
    assert stability.usam_stability_limit(limit, rho) == pytest.approx(top, rel=1e-12)
    assert stability.usam_is_stable(0.99 * limit, rho, eigenvalues)
    assert not stability.usam_is_stable(1.01 * limit, rho, eigenvalues)


@settings(max_examples=5)
@given(eigenvalues=eigenvalue_triples, seed=st_h.integers(0, 1000), rho=st_h.floats(0.01, 0.2))
def test_sam_diverges_exactly_where_gd_does(eigenvalues, seed, rho):
    # The normalized ascent adds at most ηρλ per step: bounded forcing, same 2/λ_max boundary.
    problem, _ = quadratic_problem(eigenvalues, seed)
    limit = 2.0 / max(eigenvalues)
    found = divergence_boundary(problem, st.optim.sam(0.1, rho), 0.5 * limit, 1.5 * limit, 5000, 1e6)
    assert found == pytest.approx(limit, rel=1e-2)


@settings(max_examples=8)
@given(product=st_h.floats(0.05, 1.9), rho=st_h.floats(0.01, 0.5), sharpness=st_h.floats(0.5, 5.0))
def test_sam_two_cycle_radius_on_a_one_dimensional_quadratic(product, rho, sharpness):
    problem = Problem(objective=_quadratic_objective, params0=jnp.array([1.0]),
                      constants={"H": jnp.array([[sharpness]])}, name="quadratic-1d")
    lr = product / sharpness
    traj = st.run(problem, st.optim.sam(lr, rho), steps=1500, key=KEY, observe={"x": st.observables.of_params(lambda x: x[0])},
                  stride=1)
    x = np.asarray(traj.observed["x"])
    radius = stability.sam_two_cycle_radius(lr, rho, sharpness)
    assert abs(x[-1]) == pytest.approx(radius, rel=1e-8)
    assert x[-1] == pytest.approx(-x[-2], rel=1e-8)  # it bounces across the minimum


@settings(max_examples=5)
@given(seed=st_h.integers(0, 1000), product=st_h.floats(0.1, 0.9), rho=st_h.floats(0.01, 0.3))
def test_wen_ma_li_theorem_4_8_limit_norm_and_alignment(seed, product, rho):
    eigenvalues = [2.0, 1.0, 0.5, 0.25]
    problem, rotation = quadratic_problem(eigenvalues, seed)
    lr = product / eigenvalues[0]
    traj = st.run(problem, st.optim.sam(lr, rho), steps=4000, key=KEY, observe={"norm": st.observables.of_params(_norm)},
                  stride=4000)
    limit = stability.wen_ma_li_limit_norm(lr, rho, eigenvalues[0])
    assert float(traj.final("norm")) == pytest.approx(limit, rel=1e-6)
    top_vector = rotation[:, 0]
    alignment = abs(float(jnp.dot(traj.params, top_vector))) / float(jnp.linalg.norm(traj.params))
    assert alignment == pytest.approx(1.0, abs=1e-6)


def test_usam_one_step_multiplier_along_an_eigenvector():
    eigenvalues = [3.0, 1.0, 0.5]
    problem, rotation = quadratic_problem(eigenvalues, 0)
    optimizer = st.optim.usam(0.1, 0.2)
    for i, lam in enumerate(eigenvalues):
        start = jnp.asarray(rotation[:, i])
        params, _, _ = optimizer.step(start, optimizer.init(start), problem.loss, None,
                                      optimizer.hparams, KEY)
        expected = (1 - 0.1 * lam * (1 + 0.2 * lam)) * rotation[:, i]
        np.testing.assert_allclose(params, expected, atol=1e-14)


@settings(max_examples=50)
@given(grad_norm=st_h.floats(1e-3, 1e3), lr=st_h.floats(1e-3, 1.0), rho=st_h.floats(1e-3, 1.0))
def test_sam_edge_properties(grad_norm, lr, rho):
    edge = stability.sam_edge(grad_norm, lr, rho)
    assert 0 < edge < 2.0 / lr
    # it is USAM's limit with radius ρ/g, i.e. it solves ηλ(1 + ρλ/g) = 2
    assert lr * edge * (1 + rho * edge / grad_norm) == pytest.approx(2.0, rel=1e-9)
    # a larger gradient norm makes the ascent relatively smaller: the edge rises towards 2/η
    assert stability.sam_edge(2 * grad_norm, lr, rho) > edge
    assert stability.sam_edge(1e12, lr, rho) == pytest.approx(2.0 / lr, rel=1e-6)


def test_closed_forms_reject_values_outside_their_regime():
    with pytest.raises(ConfigError, match="lr"):
        stability.gd_stability_limit(0.0)
    with pytest.raises(ConfigError, match="lr \\* sharpness"):
        stability.sam_two_cycle_radius(1.0, 0.1, 2.5)
    with pytest.raises(ConfigError, match="top_eigenvalue"):
        stability.wen_ma_li_limit_norm(0.6, 0.1, 2.0)
    with pytest.raises(ConfigError, match="rho"):
        stability.sam_edge(1.0, 0.1, 0.0)
