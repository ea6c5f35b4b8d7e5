"""Matrix sensing (Ding, Drusvyatskiy, Fazel, Harchaoui 2022): problem, measures, flat solutions."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as hs

import sharp_theory as st
from sharp_theory.errors import ConfigError
from sharp_theory.measure import low_rank as lm
from sharp_theory.theory import low_rank as tl

OPERATORS = ("identity", "gaussian", "bilinear", "completion")
D1, D2, K = 5, 4, 3  # fixed shapes so compiled Hessians are reused across examples


def sensing(operator, seed=0, **kwargs):
    measurements = None if operator == "identity" else 12
    return st.problems.matrix_sensing(D1, D2, rank=2, k=K, operator=operator,
                                      measurements=measurements, seed=seed, **kwargs)


def random_factors(seed, scale=1.0):
    rng = np.random.default_rng(seed)
    return {"x": jnp.asarray(scale * rng.standard_normal((D1, K))),
            "y": jnp.asarray(scale * rng.standard_normal((D2, K)))}


# --- the problem -------------------------------------------------------------------------------

def test_identity_operator_is_the_frobenius_loss():
    problem = sensing("identity", seed=3)
    params = random_factors(1)
    target = problem.constants["ground_truth"]
    expected = jnp.sum((params["x"] @ params["y"].T - target) ** 2)
    assert problem.examples["A"].shape == (D1 * D2, D1, D2)
    np.testing.assert_allclose(problem.loss(params, problem.examples), expected, rtol=1e-13)
    np.testing.assert_allclose(problem.constants["D1_squared"], np.eye(D1), atol=1e-14)
    np.testing.assert_allclose(problem.constants["D2_squared"], np.eye(D2), atol=1e-14)


@pytest.mark.parametrize("operator", OPERATORS)
def test_ground_truth_rank_norm_and_noiseless_fit(operator):
    problem = sensing(operator, seed=2)
    target = np.asarray(problem.constants["ground_truth"])
    singular = np.linalg.svd(target, compute_uv=False)
    assert np.linalg.norm(target) == pytest.approx(1.0, rel=1e-12)
    assert np.sum(singular > 1e-10) == 2
    A, b = st.problems.matrix_sensing_measurements(problem)
    np.testing.assert_allclose(np.einsum("ijl,jl->i", A, target), b, atol=1e-12)
    assert problem.params0["x"].shape == (D1, K) and problem.params0["y"].shape == (D2, K)


def test_random_operators_are_isotropic_on_average():
    # E⟨A_i, X⟩² = ‖X‖²_F, so D1², D2² concentrate at I as m grows.
    for operator in ("gaussian", "bilinear"):
        problem = st.problems.matrix_sensing(4, 3, operator=operator, measurements=20_000, seed=0)
        np.testing.assert_allclose(problem.constants["D1_squared"], np.eye(4), atol=0.06)
        np.testing.assert_allclose(problem.constants["D2_squared"], np.eye(3), atol=0.06)


def test_same_seed_same_ground_truth_for_every_m_and_noise_is_added():
    a = st.problems.matrix_sensing(6, operator="gaussian", measurements=20, seed=5)
    b = st.problems.matrix_sensing(6, operator="gaussian", measurements=30, seed=5, noise=0.1)
    np.testing.assert_array_equal(a.constants["ground_truth"], b.constants["ground_truth"])
    A, measured = st.problems.matrix_sensing_measurements(b)
    clean = np.einsum("ijl,jl->i", A, np.asarray(b.constants["ground_truth"]))
    assert 0.03 < np.std(measured - clean) < 0.2


def test_user_operator_and_measurements():
    rng = np.random.default_rng(0)
    A = rng.standard_normal((7, 3, 2))
    truth = np.outer([1.0, 0.0, 0.0], [0.0, 1.0])
    from_truth = st.problems.matrix_sensing(A=A, ground_truth=truth, rank=1, k=2)
    np.testing.assert_allclose(from_truth.examples["b"], A[:, 0, 1])
    given_b = st.problems.matrix_sensing(A=A, b=np.arange(7.0), rank=1)
    assert given_b.name == "matrix_sensing_user"
    np.testing.assert_array_equal(given_b.examples["b"], np.arange(7.0))
    # no ground truth given: unknown, so the recovery error is NaN rather than a made-up number
    assert np.isnan(float(lm.recovery_error(given_b.params0, given_b)))
    assert np.isfinite(float(lm.sensing_scaled_trace(given_b.params0, given_b)))


def test_init_scale_and_imbalance():
    problem = st.problems.matrix_sensing(30, operator="gaussian", measurements=10, k=30,
                                         init_scale=0.5, init_imbalance=4.0, seed=0)
    assert np.std(problem.params0["x"]) == pytest.approx(2.0, rel=0.1)
    assert np.std(problem.params0["y"]) == pytest.approx(0.125, rel=0.1)
    fresh = problem.init(jax.random.key(7))
    assert fresh["x"].shape == (30, 30)
    assert not np.allclose(fresh["x"], problem.params0["x"])


@pytest.mark.parametrize("kwargs, parameter", [
    ({"operator": "fourier"}, "operator"),
    ({"operator": "completion", "measurements": 26}, "measurements"),
    ({"operator": "identity", "measurements": 10}, "measurements"),
    ({"rank": 6}, "rank"),
    ({"rank": 3, "k": 2}, "k"),
    ({"noise": -0.1}, "noise"),
    ({"init_scale": 0.0}, "init_scale"),
    ({"b": np.ones(3)}, "b"),
    ({"A": np.ones((3, 4))}, "A"),
    ({"A": np.ones((3, 2, 2)), "b": np.ones(4)}, "b"),
    ({"ground_truth": np.ones((2, 2))}, "ground_truth"),
])
def test_bad_input_raises_config_error(kwargs, parameter):
    with pytest.raises(ConfigError) as error:
        st.problems.matrix_sensing(5, **kwargs)
    assert error.value.parameter == parameter


# --- the scaled trace ----------------------------------------------------------------------------

@settings(max_examples=12, deadline=None)
@given(operator=hs.sampled_from(OPERATORS), seed=hs.integers(0, 10_000),
       scale=hs.floats(0.05, 3.0))
def test_closed_form_equals_exact_hessian_everywhere(operator, seed, scale):
    # Anywhere, not only at solutions: the residual term lives in the off-diagonal LR block.
    problem = sensing(operator, seed=seed % 7)
    params = random_factors(seed, scale)
    dense = lm.sensing_scaled_trace_dense(params, problem)
    closed = lm.sensing_scaled_trace(params, problem)
    assert abs(dense - closed) <= 1e-10 * abs(dense)


@settings(max_examples=12, deadline=None)
@given(operator=hs.sampled_from(OPERATORS), seed=hs.integers(0, 10_000),
       scale=hs.floats(0.05, 3.0))
def test_scaled_trace_is_at_least_four_weighted_nuclear_norms(operator, seed, scale):
    # AM-GM: 2(‖D1 L‖² + ‖D2 R‖²) >= 4‖D1 L Rᵀ D2‖_*, the bound behind "flat = weighted NNM".
    problem = sensing(operator, seed=seed % 7)
    params = random_factors(seed, scale)
    D1 = tl.symmetric_sqrt(problem.constants["D1_squared"])
    D2 = tl.symmetric_sqrt(problem.constants["D2_squared"])
    product = np.asarray(params["x"] @ params["y"].T)
    bound = 4 * np.sum(np.linalg.svd(D1 @ product @ D2, compute_uv=False))
    assert float(lm.sensing_scaled_trace(params, problem)) >= bound * (1 - 1e-12)


def test_dense_scaled_trace_weights_the_blocks():
    # f = ‖x‖²·a + ‖y‖²·c has Hessian diag(2a, 2c): str = 2a·d1/d1 ... = 2a + 2c per entry count.
    params = {"x": jnp.ones((3, 2)), "y": jnp.ones((5, 2))}
    value = lm.scaled_hessian_trace(lambda p: 1.5 * jnp.sum(p["x"] ** 2) + jnp.sum(p["y"] ** 2),
                                    params)
    assert float(value) == pytest.approx(3.0 * 6 / 3 + 2.0 * 10 / 5, rel=1e-14)


def test_hutchinson_estimate_within_its_standard_error():
    problem = sensing("gaussian", seed=1)
    params = random_factors(4)
    loss = lambda p: problem.loss(p, problem.examples)  # noqa: E731
    exact = float(lm.sensing_scaled_trace_dense(params, problem))
    hessian = np.asarray(jax.jit(lambda p: st.measure.hessian(loss, p))(params))
    n_x = D1 * K
    variance = 0.0
    for block, size in ((hessian[:n_x, :n_x], D1), (hessian[n_x:, n_x:], D2)):
        off = block - np.diag(np.diag(block))
        variance += 2 * np.sum(off**2) / size**2  # variance of one probe of this block
    probes = 400
    estimator = jax.jit(lambda p, key: lm.scaled_hessian_trace_hutchinson(loss, p, key, probes))
    estimate = float(estimator(params, jax.random.key(0)))
    standard_error = np.sqrt(variance / probes)
    assert abs(estimate - exact) <= 4 * standard_error
    assert standard_error < 0.2 * exact  # the test is informative, not vacuous


# --- identity case: the balanced factorization is the flattest (THEORY §3 claim 1) ------------

IDENTITY = st.problems.matrix_sensing(D1, D2, rank=2, k=K, operator="identity", seed=11)
FLAT_L, FLAT_R = tl.balanced_factorization(np.asarray(IDENTITY.constants["ground_truth"]), K)
FLAT = {"x": jnp.asarray(FLAT_L), "y": jnp.asarray(FLAT_R)}


def test_balanced_factorization_has_str_four_nuclear_norm():
    target = np.asarray(IDENTITY.constants["ground_truth"])
    np.testing.assert_allclose(FLAT_L @ FLAT_R.T, target, atol=1e-14)
    dense = float(lm.sensing_scaled_trace_dense(FLAT, IDENTITY))
    assert abs(dense - tl.identity_flattest_scaled_trace(target)) <= 1e-10 * dense
    assert float(lm.factor_balancedness_gap(FLAT)) <= 1e-14
    assert abs(float(lm.norm_minimality_gap(FLAT))) <= 1e-13


@settings(max_examples=25, deadline=None)
@given(entries=hs.lists(hs.floats(-1.5, 1.5), min_size=K * K, max_size=K * K))
def test_every_other_factorization_is_sharper(entries):
    G = np.eye(K) + np.asarray(entries).reshape(K, K)
    assume(abs(np.linalg.det(G)) > 0.05 and np.linalg.cond(G) < 1e4)
    moved = {"x": FLAT["x"] @ G, "y": FLAT["y"] @ np.linalg.inv(G).T}
    np.testing.assert_allclose(moved["x"] @ moved["y"].T, FLAT["x"] @ FLAT["y"].T, atol=1e-9)
    flat_str = float(lm.sensing_scaled_trace_dense(FLAT, IDENTITY))
    moved_str = float(lm.sensing_scaled_trace_dense(moved, IDENTITY))
    assert moved_str >= flat_str * (1 - 1e-10)
    # on solutions of the identity case str = 2‖L‖² + 2‖R‖² (D = I)
    norms = 2 * float(jnp.sum(moved["x"] ** 2) + jnp.sum(moved["y"] ** 2))
    assert abs(moved_str - norms) <= 1e-10 * norms


@settings(max_examples=15, deadline=None)
@given(seed=hs.integers(0, 10_000))
def test_weighted_balanced_factorization(seed):
    rng = np.random.default_rng(seed)
    product = rng.standard_normal((D1, 2)) @ rng.standard_normal((D2, 2)).T
    D1w = tl.symmetric_sqrt(np.eye(D1) + 0.3 * np.diag(rng.random(D1)))
    D2w = tl.symmetric_sqrt(np.eye(D2) + 0.3 * np.diag(rng.random(D2)))
    left, right = tl.balanced_factorization(product, K, D1w, D2w)
    np.testing.assert_allclose(left @ right.T, product, atol=1e-12)
    scaled_left, scaled_right = D1w @ left, D2w @ right
    np.testing.assert_allclose(scaled_left.T @ scaled_left, scaled_right.T @ scaled_right, atol=1e-12)
    params = {"x": jnp.asarray(left), "y": jnp.asarray(right)}
    value = lm.scaled_hessian_trace_closed_form(params, D1w @ D1w, D2w @ D2w)
    weighted = 4 * np.sum(np.linalg.svd(D1w @ product @ D2w, compute_uv=False))
    assert abs(float(value) - weighted) <= 1e-12 * weighted


def test_gaps_and_balancedness_relation():
    params = random_factors(3)
    left, right = np.asarray(params["x"]), np.asarray(params["y"])
    assert float(lm.norm_minimality_gap(params)) > 0
    trace_gap = np.trace(left.T @ left - right.T @ right)
    assert trace_gap == pytest.approx(2 * float(st.measure.balancedness(params)), rel=1e-12)
    assert float(lm.factor_balancedness_gap(params)) >= abs(trace_gap) / np.sqrt(K) - 1e-12


def test_balanced_factorization_rejects_too_few_columns():
    with pytest.raises(ConfigError):
        tl.balanced_factorization(np.eye(4), 2)


# --- convex programs (few, tiny cvxpy solves) -------------------------------------------------

def test_flattest_solution_identity_and_gaussian_recovery():
    flat = tl.flattest_solution(IDENTITY)
    target = np.asarray(IDENTITY.constants["ground_truth"])
    assert flat.solved
    assert tl.relative_recovery_error(flat.product, target) < 1e-6
    assert flat.scaled_trace == pytest.approx(tl.identity_flattest_scaled_trace(target), rel=1e-6)

    # 4x4 rank 1: 7 degrees of freedom, 14 Gaussian measurements < 16 entries: an SDP to solve.
    problem = st.problems.matrix_sensing(4, rank=1, operator="gaussian", measurements=14, seed=0)
    target = np.asarray(problem.constants["ground_truth"])
    flat = tl.flattest_solution(problem)
    baseline = tl.nuclear_norm_minimization(*st.problems.matrix_sensing_measurements(problem))
    assert flat.status in ("optimal", "optimal_inaccurate") and flat.residual < 1e-6
    assert tl.relative_recovery_error(flat.product, target) < 1e-4
    assert tl.relative_recovery_error(baseline.product, target) < 1e-4
    dense = float(lm.sensing_scaled_trace_dense(flat.params, problem))
    assert dense == pytest.approx(flat.scaled_trace, rel=1e-6)
    assert float(problem.loss(flat.params, problem.examples)) < 1e-10


def test_too_few_measurements_cannot_recover():
    # 3 measurements < r(d1 + d2 - r) = 7: the solution set contains other rank-1 matrices.
    problem = st.problems.matrix_sensing(4, rank=1, operator="gaussian", measurements=3, seed=0)
    flat = tl.flattest_solution(problem)
    assert flat.solved
    assert tl.relative_recovery_error(flat.product, problem.constants["ground_truth"]) > 0.05


# --- dynamics on the factorization --------------------------------------------------------------

def test_optimizers_run_on_factor_pairs_and_sam_rho_zero_is_gd():
    problem = sensing("gaussian", seed=0, init_scale=0.3, init_imbalance=2.0)
    observe = st.observables.all_of_params_and_problem({"str": lm.sensing_scaled_trace,
                                                        "loss": lm.training_loss})
    result = st.sweep(problem, {"gd": st.optim.gd(0.02), "sam0": st.optim.sam(0.02, 0.0),
                                "nbar": st.optim.nbar(0.02, 0.5)},
                      steps=200, observe=observe, stride=50)
    np.testing.assert_array_equal(result["gd"].observed["str"], result["sam0"].observed["str"])
    for name in ("gd", "nbar"):
        loss = np.asarray(result[name].observed["loss"])[0]
        assert loss[-1] < 0.5 * loss[0]
        assert result[name].status[0] == "ok"
    final = jax.tree_util.tree_map(lambda leaf: leaf[0], result["gd"].params)
    np.testing.assert_allclose(result["gd"].final("str")[0],
                               lm.sensing_scaled_trace_dense(final, problem), rtol=1e-10)


# --- the claims' checks can fail --------------------------------------------------------------

def test_claim_checks_pass_and_fail_on_the_right_numbers():
    from sharp_theory.claims import get

    identity = {"identity_str_vs_4_nuclear_rel_error": 1e-15, "identity_flat_balancedness_gap": 1e-16,
                "identity_min_excess_over_G": 0.5, "identity_G_draws": 5, "identity_flat_str": 5.0}
    claim = get("ding2024.identity.flat_is_balanced")
    assert claim.check(identity, quick=False).verdict == "pass"
    assert claim.check({**identity, "identity_min_excess_over_G": -1e-6}, quick=False).verdict == "fail"

    phase = {"phase_measurements": [10, 20, 40, 60], "phase_flat_success_rate": [0, 0, 1, 1],
             "phase_d1": 6, "phase_d2": 6, "phase_rank": 2}
    claim = get("ding2024.sensing.flat_minima_recover")
    assert claim.check(phase, quick=False).verdict == "pass"
    assert claim.check({**phase, "phase_flat_success_rate": [0.2, 0, 1, 1]}, quick=False).verdict == "fail"
    assert claim.check({**phase, "phase_flat_success_rate": [0, 0, 1, 0.7]}, quick=False).verdict == "fail"

    gaps = {"gap_measurements": [10, 40, 160], "phase_flat_balancedness_gap_median": [0.1, 0.05, 0.02],
            "phase_flat_norm_gap_median": [1e-3, 3e-4, 1e-4]}
    claim = get("ding2024.sensing.flat_nearly_balanced")
    assert claim.check(gaps, quick=False).verdict == "pass"
    assert claim.check({**gaps, "phase_flat_norm_gap_median": [1e-3, 9e-4, 8e-4]}, quick=False).verdict == "fail"

    dynamics = {"dynamics_str_gd": 80.0, "dynamics_str_sam": 7.5, "dynamics_str_flattest": 5.3,
                "dynamics_loss_gd": 1e-30, "dynamics_loss_sam": 5e-5}
    claim = get("ding2024.dynamics.sam_flatter_than_gd")
    assert claim.check(dynamics, quick=False).verdict == "pass"
    assert claim.check({**dynamics, "dynamics_loss_sam": 0.8}, quick=False).verdict == "fail"
    assert claim.check({**dynamics, "dynamics_str_sam": 50.0}, quick=False).verdict == "fail"

    closed = {"str_closed_form_max_rel_difference": 1e-15, "str_closed_form_points": 4}
    claim = get("ding2024.str.closed_form")
    assert claim.check(closed, quick=False).verdict == "pass"
    assert claim.check({**closed, "str_closed_form_max_rel_difference": 1e-6}, quick=False).verdict == "fail"
