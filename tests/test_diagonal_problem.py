"""Diagonal linear networks: data recipe, loss, parametrizations, the authors' conventions."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import sharp_theory as st
from sharp_theory.errors import ConfigError
from sharp_theory.problems.diagonal import (OBSERVABLES, diagonal_linear, initial_params,
                                            rho_from_authors, sparse_regression_data)
from sharp_theory.studies.diagonal_nets import authors_optimizer

KEY = jax.random.key(0)


def test_data_recipe_matches_the_description():
    data = sparse_regression_data(n=20, n_test=50, d=30, k=3, seed=0)
    theta = data["theta_star"]
    assert data["X"].shape == (20, 30) and data["X_test"].shape == (50, 30)
    assert np.all(theta[3:] == 0) and np.all(theta[:3] > 0)
    assert np.linalg.norm(theta) == pytest.approx(1.0, abs=1e-15)
    np.testing.assert_array_equal(data["y"], data["X"] @ theta)
    np.testing.assert_array_equal(data["y_test"], data["X_test"] @ theta)
    # Same seed, same data; another seed, other data.
    np.testing.assert_array_equal(sparse_regression_data(20, 50, 30, 3, 0)["X"], data["X"])
    assert not np.allclose(sparse_regression_data(20, 50, 30, 3, 1)["X"], data["X"])


def test_loss_is_half_mean_squared_residual_for_both_parametrizations():
    rng = np.random.default_rng(0)
    for parametrization in ("uv", "uu-vv"):
        problem = diagonal_linear(n=7, n_test=5, d=4, k=2, seed=1, parametrization=parametrization)
        X, y = np.asarray(problem.examples["x"]), np.asarray(problem.examples["y"])
        u, v = rng.normal(size=4), rng.normal(size=4)
        beta = u * v if parametrization == "uv" else u * u - v * v
        params = {"u": jnp.asarray(u), "v": jnp.asarray(v)}
        assert float(problem.loss(params, problem.examples)) == pytest.approx(
            np.sum((X @ beta - y) ** 2) / (2 * 7), rel=1e-13)
        X_test = np.asarray(problem.constants["X_test"])
        y_test = np.asarray(problem.constants["y_test"])
        assert float(OBSERVABLES["test_loss"](params, problem, None)) == pytest.approx(
            np.sum((X_test @ beta - y_test) ** 2) / (2 * 5), rel=1e-13)
        assert float(OBSERVABLES["l1_norm"](params, problem, None)) == pytest.approx(np.sum(np.abs(beta)))
        theta = np.asarray(problem.constants["theta_star"])
        assert float(OBSERVABLES["distance_to_theta_star"](params, problem, None)) == pytest.approx(
            np.linalg.norm(beta - theta), rel=1e-13)


def test_initialization_and_effective_init():
    uv = diagonal_linear(d=5, n=3, n_test=2, k=1, init_scale=0.3)
    np.testing.assert_array_equal(uv.params0["u"], np.full(5, 0.3))
    np.testing.assert_array_equal(uv.params0["v"], np.zeros(5))
    np.testing.assert_allclose(OBSERVABLES["c"](uv.params0, uv, None), np.full(5, 0.09), rtol=1e-15)
    squares = diagonal_linear(d=5, n=3, n_test=2, k=1, init_scale=0.3, parametrization="uu-vv")
    np.testing.assert_array_equal(squares.params0["v"], np.full(5, 0.3))
    np.testing.assert_allclose(OBSERVABLES["c"](squares.params0, squares, None), np.full(5, 0.36), rtol=1e-15)
    np.testing.assert_allclose(st.measure.effective_initialization(squares.params0, "uu-vv"),
                               np.full(5, 0.36), rtol=1e-15)


def test_user_data_and_float32():
    data = sparse_regression_data(6, 4, 5, 2, 3)
    problem = diagonal_linear(X=data["X"], y=data["y"], X_test=data["X_test"], y_test=data["y_test"],
                              dtype=np.float32)
    assert problem.examples["x"].dtype == jnp.float32 and problem.params0["u"].dtype == jnp.float32
    assert np.all(np.isnan(np.asarray(problem.constants["theta_star"])))
    traj = st.run(problem, st.optim.gd(0.1), steps=5, key=KEY, observe=OBSERVABLES)
    assert traj.params["u"].dtype == jnp.float32


@pytest.mark.parametrize("change, parameter", [
    ({"y": np.ones(3)}, "y"),
    ({"X": np.ones(6)}, "X"),
    ({"X_test": np.ones((4, 2))}, "X_test"),
    ({"y": np.r_[np.nan, np.ones(5)]}, "y"),
    ({"y_test": None}, "y_test"),
])
def test_bad_user_data_is_rejected_by_name(change, parameter):
    data = sparse_regression_data(6, 4, 5, 2, 3)
    arrays = {k: data[k] for k in ("X", "y", "X_test", "y_test")}
    arrays.update(change)
    with pytest.raises(ConfigError) as error:
        diagonal_linear(**arrays)
    assert error.value.parameter == parameter


@pytest.mark.parametrize("kwargs", [{"init_scale": 0.0}, {"parametrization": "uvw"}, {"k": 40},
                                    {"n": 0}, {"dtype": np.int32}])
def test_bad_settings_are_rejected(kwargs):
    with pytest.raises(ConfigError):
        diagonal_linear(**kwargs)


def test_rho_conversion():
    assert rho_from_authors(0.15, "1-sam") == 0.3
    assert rho_from_authors(0.15, "n-sam") == 0.15
    np.testing.assert_array_equal(rho_from_authors(np.array([0.1, 0.2]), "1-sam"), [0.2, 0.4])
    with pytest.raises(ConfigError):
        rho_from_authors(-0.1, "1-sam")
    with pytest.raises(ConfigError):
        rho_from_authors(0.1, "2-sam")


@pytest.mark.parametrize("variant", ["1-sam", "n-sam"])
def test_authors_optimizer_reproduces_their_update(variant, load_benchmark):
    # The benchmark's "authors' style" loop is their update written out in numpy (a Python loop
    # over examples for 1-SAM, ascent 2ρ r_k x_k); it takes our ρ, i.e. twice theirs for 1-SAM.
    loop = load_benchmark("bench_diagonal_nets").authors_style
    problem = diagonal_linear(n=10, n_test=5, d=12, k=2, seed=4, init_scale=0.5)
    X, y = np.asarray(problem.examples["x"]), np.asarray(problem.examples["y"])
    gamma, rho_authors = 0.2, 0.07
    traj = st.run(problem, authors_optimizer(variant, gamma, rho_authors), steps=30, key=KEY)
    rho_ours = 2 * rho_authors if variant == "1-sam" else rho_authors
    u, v = loop(variant, X, y, gamma, np.full(12, 0.5), np.zeros(12), 30, rho_ours)
    np.testing.assert_allclose(np.asarray(traj.params["u"]), u, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(np.asarray(traj.params["v"]), v, rtol=1e-12, atol=1e-14)


def test_authors_printed_numbers_are_reproduced():
    # The authors' notebook prints, for their data (np.random.seed(0)), gamma = 5/30, u0 = 0.1,
    # v0 = 0 and 10**4 + 1 iterations: GD test loss 0.015056044189449159 and n-SAM test losses
    # 0.015143589149560101 (rho = 0.01) and 0.03606494489010675 (rho = 1.0).
    problem = diagonal_linear(init_scale=0.1)
    result = st.sweep(problem, {"gd": authors_optimizer("gd", 5 / 30),
                                "n-sam": authors_optimizer("n-sam", 5 / 30, 0.01)},
                      steps=10_001, grid={"rho": [0.01, 1.0]},
                      observe={"test": OBSERVABLES["test_loss"]}, stride=10_001)
    assert result["gd"].final("test")[0, 0] == pytest.approx(0.015056044189449159, rel=1e-12)
    np.testing.assert_allclose(result["n-sam"].final("test")[:, 0],
                               [0.015143589149560101, 0.03606494489010675], rtol=1e-12)


def test_initial_params_for_a_sweep_over_scales_reuse_one_compilation(simulation_traces):
    problem = diagonal_linear(n=6, n_test=3, d=5, k=2)
    runs = []
    before = None
    for scale in (0.01, 0.1, 1.0):
        runs.append(st.run(problem, st.optim.gd(0.1), steps=3, key=KEY, params0=initial_params(scale, 5)))
        before = simulation_traces() if before is None else before
    assert simulation_traces() == before
    assert not np.allclose(runs[0].params["u"], runs[2].params["u"])
