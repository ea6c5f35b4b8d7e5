"""Warm-started spectra inside the scan (issue 16, part 3): the tracked top eigenvalues agree with
a dense solve at every record, in a run and in every lane of a sweep, with the HVPs counted."""
from __future__ import annotations

import functools
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as hs

import sharp_theory as st
from sharp_theory.errors import ConfigError
from sharp_theory.observables import of_params_and_problem

WIDTH = 20


def tanh_loss(params, batch):
    hidden = jnp.tanh(batch["x"][:, None] * params["w"][None, :] + params["b"][None, :])
    prediction = hidden @ params["v"]
    return 0.5 * jnp.mean((prediction - batch["y"]) ** 2)


@pytest.fixture(scope="module")
def problem():
    rng = np.random.default_rng(0)
    params = {"w": jnp.asarray(0.5 * rng.standard_normal(WIDTH)),
              "b": jnp.asarray(0.5 * rng.standard_normal(WIDTH)),
              "v": jnp.asarray(rng.standard_normal(WIDTH) / np.sqrt(WIDTH))}
    inputs = np.linspace(-1.0, 1.0, 12)
    targets = np.polynomial.chebyshev.Chebyshev.basis(4)(inputs)
    return st.problems.from_loss(tanh_loss, params, data={"x": inputs, "y": targets})


def dense_top(params, problem):
    return st.measure.top_hessian_eigenvalues(st.measure.full_batch_loss(problem), params, 2,
                                              method="dense")


def test_warm_values_match_a_dense_solve_at_every_record(problem):
    run = st.run(problem, st.optim.sam(0.2, 0.05), steps=300, stride=10, key=jax.random.key(0),
                 observe={"spectrum": st.measure.warm_top_eigenpairs(2, min_steps=3, max_steps=10),
                          "dense": of_params_and_problem(dense_top)})
    warm = np.asarray(run.observed["spectrum.values"])
    dense = np.asarray(run.observed["dense"])
    assert warm.shape == dense.shape == (31, 2)
    np.testing.assert_allclose(warm[:, 0], dense[:, 0], rtol=1e-8)
    matvecs = np.asarray(run.observed["spectrum.matvecs"])
    assert matvecs[0] >= 3 * WIDTH  # the cold solve (all of the 60-dimensional space) comes first
    assert np.all((matvecs[1:] >= 3) & (matvecs[1:] <= 10))
    assert np.all(np.asarray(run.observed["spectrum.residuals"])[:, 0] <= 1e-5 * warm[:, 0] + 1e-12)


def test_every_lane_of_a_sweep_tracks_its_own_spectrum(problem):
    """Lanes (split over the CPU devices) agree with single runs, which agree with dense solves
    (previous test)."""
    observe = {"spectrum": st.measure.warm_top_eigenpairs()}
    rhos = [0.0, 0.05, 0.2]
    swept = st.sweep(problem, {"sam": st.optim.sam(0.2, 0.05)}, steps=100, stride=10, seeds=1,
                     grid={"rho": rhos}, observe=observe)["sam"]
    lanes = np.asarray(swept.observed["spectrum.values"])[:, 0, :, 0]
    for lane, rho in zip(lanes, rhos):
        single = st.run(problem, st.optim.sam(0.2, rho), steps=100, stride=10,
                        key=jax.random.key(0), observe=observe)
        np.testing.assert_allclose(lane, np.asarray(single.observed["spectrum.values"])[:, 0],
                                   rtol=1e-8)
    assert not np.allclose(lanes[0], lanes[-1])  # the lanes differ: each tracked its own Hessian


def test_called_directly_it_is_a_cold_solve(problem):
    observable = st.measure.warm_top_eigenpairs(cold_steps=3 * WIDTH)
    record = observable(problem.params0, problem, None)
    exact = dense_top(problem.params0, problem)[0]
    assert float(record["values"][0]) == pytest.approx(float(exact), rel=1e-10)


@pytest.mark.parametrize("settings", [{"k": 0}, {"min_steps": 0}, {"k": 3, "min_steps": 2},
                                      {"min_steps": 3, "max_steps": 2}, {"tol": 1.5}, {"tol": -1e-3},
                                      {"jitter": float("nan")}, {"cold_steps": 0},
                                      {"eig_tol": 1.0}, {"gap_safety": 0.5},
                                      {"gap_safety": float("inf")}, {"refresh": 0}])
def test_bad_settings_are_refused(settings):
    with pytest.raises(ConfigError):
        st.measure.warm_top_eigenpairs(**settings)


N_QUADRATIC = 8


def quadratic_record(spectrum, seed, perturbation, **settings):
    """One warm record on the quadratic ½ wᵀAw, A = R diag(spectrum) Rᵀ, started from the top
    eigenvector plus ``perturbation`` times a random unit direction (the carried gap estimate is
    the cold solve's, over the whole space: exact). Returns (record, exact eigenvalues)."""
    rng = np.random.default_rng(seed)
    rotation, _ = np.linalg.qr(rng.standard_normal((N_QUADRATIC, N_QUADRATIC)))
    direction = rng.standard_normal(N_QUADRATIC)
    order = np.argsort(spectrum)[::-1]
    spectrum = np.asarray(spectrum, float)[order]
    matrix = rotation @ np.diag(spectrum) @ rotation.T
    start = rotation[:, 0] + perturbation * direction / np.linalg.norm(direction)
    return _quadratic_record(jnp.asarray(matrix), jnp.asarray(start), **settings), spectrum


@functools.partial(jax.jit, static_argnames=("gap_safety", "eig_tol", "tol"))
def _quadratic_record(matrix, start, **settings):
    # Compiled once per settings: hypothesis draws many matrices of one shape.
    observable = st.measure.warm_top_eigenpairs(
        cold_steps=N_QUADRATIC, loss=lambda _: lambda w: 0.5 * w @ matrix @ w, **settings)
    params = jnp.zeros(N_QUADRATIC)
    carry = observable.init(params, None, None)
    carry = dict(carry, vectors=carry["vectors"].at[0].set(start / jnp.linalg.norm(start)),
                 pending=jnp.zeros_like(carry["pending"]))
    return observable.update(params, None, None, carry)[0]


@settings(max_examples=25)
@given(spectrum=hs.lists(hs.floats(-3.0, 10.0), min_size=N_QUADRATIC, max_size=N_QUADRATIC),
       seed=hs.integers(0, 2**16), perturbation=hs.floats(1e-6, 0.5))
def test_the_recorded_error_bound_holds_with_the_exact_gap(spectrum, seed, perturbation):
    """Kato–Temple: with the exact gap (gap_safety 1) the recorded bound is at least the
    relative error of the recorded value, however many steps the record took."""
    top = sorted(spectrum)[::-1]
    assume(top[0] > 0.5 and top[0] - top[1] > 0.05)
    record, exact = quadratic_record(spectrum, seed, perturbation, gap_safety=1.0)
    value = float(record["values"][0])
    error = (exact[0] - value) / abs(value)
    assert error >= -1e-12  # a Rayleigh quotient lies below λ_max
    assert error <= float(record["error_estimates"][0]) * (1 + 1e-6) + 1e-13
    if float(record["matvecs"]) == 1:  # stopped after one HVP: certified
        assert (float(record["error_estimates"][0]) <= 1e-7
                or float(record["residuals"][0]) <= 1e-5 * abs(value))


def test_a_near_eigenvector_is_accepted_after_one_hvp_and_a_poor_one_is_not():
    spectrum = [10.0, 6.0, 3.0, 1.0, 0.0, -1.0, -2.0, -4.0]
    near, exact = quadratic_record(spectrum, 1, 1e-5)
    assert float(near["matvecs"]) == 1
    assert float(near["values"][0]) == pytest.approx(exact[0], rel=1e-7)
    poor, _ = quadratic_record(spectrum, 1, 0.3)
    assert float(poor["matvecs"]) > 1
    assert float(poor["values"][0]) == pytest.approx(exact[0], rel=1e-9)
    strict, _ = quadratic_record(spectrum, 1, 1e-5, eig_tol=0.0, tol=0.0)
    assert float(strict["matvecs"]) == 8  # nothing certifies: max_steps


def test_the_carried_vector_improves_by_a_power_step_per_record():
    """Records accepted after one HVP carry Hy/‖Hy‖: on a fixed Hessian the residual shrinks by
    about max_i≥2 |λ_i| / λ_max per record."""
    spectrum = jnp.asarray([10.0, 6.0, 3.0, 1.0, 0.0, -1.0, -2.0, -4.0])
    matrix = jnp.diag(spectrum)
    observable = st.measure.warm_top_eigenpairs(
        eig_tol=0.5, cold_steps=N_QUADRATIC, loss=lambda _: lambda w: 0.5 * w @ matrix @ w)
    params = jnp.zeros(N_QUADRATIC)
    carry = observable.init(params, None, None)
    start = jnp.eye(N_QUADRATIC)[0] + 1e-2 * jnp.ones(N_QUADRATIC)
    carry = dict(carry, vectors=carry["vectors"].at[0].set(start / jnp.linalg.norm(start)),
                 pending=jnp.zeros_like(carry["pending"]))
    residuals = []
    for _ in range(5):
        record, carry = observable.update(params, None, None, carry)
        assert float(record["matvecs"]) == 1
        residuals.append(float(record["residuals"][0]))
    ratios = np.asarray(residuals[1:]) / np.asarray(residuals[:-1])
    assert np.all(ratios <= 0.6 * 1.1), ratios


def test_refresh_records_take_more_than_one_step(problem):
    """Every ``refresh`` records at least one record takes k + 1 HVPs (and re-estimates the gap),
    even where one HVP is certified; the values still match a dense solve."""
    run = st.run(problem, st.optim.sam(0.02, 0.01), steps=200, stride=10, key=jax.random.key(0),
                 observe={"spectrum": st.measure.warm_top_eigenpairs(refresh=3, eig_tol=1e-4),
                          "dense": of_params_and_problem(dense_top)})
    matvecs = np.asarray(run.observed["spectrum.matvecs"])[1:]
    assert np.any(matvecs == 1)
    for window in range(len(matvecs) - 2):
        assert np.any(matvecs[window:window + 3] >= 2), matvecs
    np.testing.assert_allclose(np.asarray(run.observed["spectrum.values"])[:, 0],
                               np.asarray(run.observed["dense"])[:, 0], rtol=1e-4)


def test_with_the_gap_renewed_every_record_the_bounds_hold_along_a_run(problem):
    """refresh=1: λ2 re-estimated from the guard pair (θ2 + r2) at every record; the recorded
    bound (gap_safety 1) is at least the error against a dense solve at every record."""
    run = st.run(problem, st.optim.sam(0.2, 0.05), steps=200, stride=10, key=jax.random.key(0),
                 observe={"spectrum": st.measure.warm_top_eigenpairs(refresh=1, gap_safety=1.0),
                          "dense": of_params_and_problem(dense_top)})
    warm = np.asarray(run.observed["spectrum.values"])[:, 0]
    dense = np.asarray(run.observed["dense"])[:, 0]
    bounds = np.asarray(run.observed["spectrum.error_estimates"])[:, 0]
    errors = np.abs(dense - warm) / np.abs(warm)
    assert np.all(errors <= bounds + 1e-13), (errors, bounds)
    assert np.all(np.asarray(run.observed["spectrum.matvecs"])[1:] >= 2)
