"""Warm-started spectra inside the scan (issue 16, part 3): the tracked top eigenvalues agree with
a dense solve at every record, in a run and in every lane of a sweep, with the HVPs counted."""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

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
                                      {"jitter": float("nan")}, {"cold_steps": 0}])
def test_bad_settings_are_refused(settings):
    with pytest.raises(ConfigError):
        st.measure.warm_top_eigenpairs(**settings)
