"""Hessian spectra: every matrix-free path against the exact dense answer on small problems."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st_h

import sharp_theory as st
from sharp_theory.errors import ConfigError
from sharp_theory.measure import spectrum

N = 24  # parameter count of the random test problems (fixed so compiled code is reused)


def random_symmetric(seed, n=N, shift=0.5):
    """A random symmetric indefinite matrix with a clear top eigenvalue."""
    rng = np.random.default_rng(seed)
    a = rng.standard_normal((n, n))
    return jnp.asarray(a @ a.T / n - shift * np.eye(n))


def nonquadratic(matrix):
    """A smooth non-quadratic function of a pytree whose Hessian mixes both leaves."""
    def fn(params):
        w, b = params["w"], params["b"]
        return 0.5 * w @ matrix @ w + jnp.sum(jnp.cos(b) * jnp.tanh(w[:3])) + 0.1 * jnp.sum(w**4)
    return fn


def random_params(seed, n=N):
    rng = np.random.default_rng(seed + 1000)
    return {"w": jnp.asarray(0.3 * rng.standard_normal(n)), "b": jnp.asarray(rng.standard_normal(3))}


def dense_eigh(fn, params):
    values, vectors = np.linalg.eigh(np.asarray(st.measure.hessian(fn, params)))
    return values[::-1], vectors[:, ::-1]


@jax.jit
def lanczos_top5(matrix, params):
    pairs = spectrum.top_hessian_eigenpairs(nonquadratic(matrix), params, 5,
                                            method="matrix_free", num_iterations=N + 3)
    return pairs.values, pairs.vectors, pairs.residual_norms


@settings(max_examples=5)
@given(seed=st_h.integers(0, 10_000))
def test_lanczos_matches_dense_eigh(seed):
    matrix, params = random_symmetric(seed), random_params(seed)
    exact_values, exact_vectors = dense_eigh(nonquadratic(matrix), params)
    values, vectors, residuals = lanczos_top5(matrix, params)
    np.testing.assert_allclose(values, exact_values[:5], rtol=0, atol=1e-10)
    assert np.all(residuals < 1e-8)
    flat_vectors = jax.vmap(lambda v: jax.flatten_util.ravel_pytree(v)[0])(vectors)
    gaps = -np.diff(exact_values[:6])
    for i in range(5):
        if gaps[i] > 1e-3 and (i == 0 or gaps[i - 1] > 1e-3):  # eigenvector defined
            assert abs(np.dot(flat_vectors[i], exact_vectors[:, i])) == pytest.approx(1.0, abs=1e-8)


def test_lanczos_basis_is_orthonormal_and_full_run_gives_every_eigenvalue():
    matrix = random_symmetric(3)
    result = spectrum.lanczos(lambda v: matrix @ v, jnp.ones(N), N)
    np.testing.assert_allclose(result.basis @ result.basis.T, np.eye(N), atol=1e-12)
    ritz = np.linalg.eigvalsh(np.asarray(spectrum.tridiagonal(result)))
    np.testing.assert_allclose(ritz, np.linalg.eigvalsh(np.asarray(matrix)), atol=1e-11)


def test_lanczos_survives_an_exhausted_krylov_space():
    # Only 2 distinct eigenvalues (rank 3 + zeros): the Krylov space of any start vector has
    # dimension <= 2; the iteration must restart cleanly and still find every eigenvalue.
    def fn(w):
        return jnp.sum(w[:3] ** 2) + 0.25 * w[3] ** 2

    pairs = spectrum.top_hessian_eigenpairs(fn, jnp.zeros(30), 5, method="matrix_free",
                                            num_iterations=30)
    np.testing.assert_allclose(pairs.values, [2.0, 2.0, 2.0, 0.5, 0.0], atol=1e-12)
    assert np.all(np.isfinite(pairs.residual_norms))


def test_auto_method_switches_at_threshold_and_override_wins():
    assert spectrum.resolve_method("auto", spectrum.DENSE_MAX_PARAMETERS) == "dense"
    assert spectrum.resolve_method("auto", spectrum.DENSE_MAX_PARAMETERS + 1) == "matrix_free"
    assert spectrum.resolve_method("matrix_free", 3) == "matrix_free"
    assert spectrum.resolve_method("dense", 10**6) == "dense"
    fn = nonquadratic(random_symmetric(1))
    params = random_params(1)
    assert spectrum.top_hessian_eigenpairs(fn, params, 1).method == "dense"
    assert spectrum.top_hessian_eigenpairs(fn, params, 1, dense_max=5).method == "matrix_free"


def test_from_loss_problem_and_full_batch_loss():
    rng = np.random.default_rng(0)
    data = {"X": rng.standard_normal((16, 4)), "y": rng.standard_normal(16)}

    def loss(params, batch):
        hidden = jnp.tanh(batch["X"] @ params["W"])
        return 0.5 * jnp.mean((hidden @ params["v"] - batch["y"]) ** 2)

    params0 = {"W": jnp.asarray(rng.standard_normal((4, 5))), "v": jnp.asarray(rng.standard_normal(5))}
    problem = st.problems.from_loss(loss, params0, data=data)
    fn = st.measure.full_batch_loss(problem)
    exact = np.sort(np.asarray(st.measure.hessian_eigenvalues(fn, params0)))[::-1]
    for method in ("dense", "matrix_free"):
        values = st.measure.top_hessian_eigenvalues(fn, params0, 5, method=method)
        np.testing.assert_allclose(values, exact[:5], atol=1e-10)
    assert st.measure.eigenvalue_ratio(fn, params0, 5, method="dense") == pytest.approx(exact[0] / exact[4], rel=1e-10)
    full = st.measure.hessian_spectrum(fn, params0)  # 25 parameters: "auto" is the exact path
    np.testing.assert_allclose(full.eigenvalues(), exact[::-1], atol=1e-10)
    assert full.expectation(lambda x: x) == pytest.approx(np.sum(exact), rel=1e-10)


def test_exact_trace_and_frobenius_matrix_free_equal_dense():
    fn, params = nonquadratic(random_symmetric(5)), random_params(5)
    matrix = np.asarray(st.measure.hessian(fn, params))
    for method in ("dense", "matrix_free"):
        assert spectrum.hessian_trace(fn, params, method=method) == pytest.approx(
            np.trace(matrix), rel=1e-12)
        assert spectrum.hessian_frobenius_norm(fn, params, method=method) == pytest.approx(
            np.linalg.norm(matrix), rel=1e-12)


def test_hutchinson_is_unbiased_within_its_standard_error():
    fn, params = nonquadratic(random_symmetric(7)), random_params(7)
    exact = float(np.trace(np.asarray(st.measure.hessian(fn, params))))
    keys = jax.random.split(jax.random.key(11), 200)
    estimates = jax.vmap(lambda k: spectrum.hutchinson_trace(fn, params, num_probes=40, key=k))(keys)
    z = (np.asarray(estimates.value) - exact) / np.asarray(estimates.standard_error)
    # Each estimate is within 4 standard errors, and about 95% within 2 (CLT, 40 probes).
    assert np.all(np.abs(z) < 4.0)
    assert 0.88 <= np.mean(np.abs(z) < 2.0) <= 0.995
    # The Rademacher variance is 2(‖H‖_F² - Σ H_ii²) per probe (Hutchinson 1989).
    matrix = np.asarray(st.measure.hessian(fn, params))
    variance = 2 * (np.sum(matrix**2) - np.sum(np.diag(matrix) ** 2))
    typical_error = np.median(np.asarray(estimates.standard_error))
    assert typical_error == pytest.approx(np.sqrt(variance / 40), rel=0.15)


def test_slq_is_exact_for_polynomials_when_the_krylov_space_is_complete():
    fn, params = nonquadratic(random_symmetric(9)), random_params(9)
    matrix = np.asarray(st.measure.hessian(fn, params))
    n = matrix.shape[0]
    density = spectrum.spectral_density(fn, params, num_iterations=n, num_probes=6,
                                        key=jax.random.key(2))
    np.testing.assert_allclose(np.sum(density.weights), 1.0, atol=1e-12)
    # With m = n steps each probe's Gauss rule is exact, so the SLQ trace is Hutchinson's
    # estimate with the same (normalized) probes: n · mean_z zᵀHz / ‖z‖².
    probes = jax.vmap(lambda k: jax.random.rademacher(k, (n,), dtype=jnp.float64))(
        jax.random.split(jax.random.key(2), 6))
    hutchinson = np.mean([z @ matrix @ z for z in np.asarray(probes)])
    assert density.expectation(lambda x: x) == pytest.approx(hutchinson, rel=1e-10)
    grid = np.linspace(-10, 10, 4001)
    assert np.trapezoid(np.asarray(density.density(grid, 0.2)), grid) == pytest.approx(1.0, abs=1e-6)


def test_effective_dimensionality_dense_closed_form_and_slq_within_error():
    fn, params = nonquadratic(random_symmetric(4)), random_params(4)
    eigenvalues = np.asarray(st.measure.hessian_eigenvalues(fn, params))
    clipped = np.maximum(eigenvalues, 0)
    for z in (0.1, 1.0):
        exact = np.sum(clipped / (clipped + z))
        assert spectrum.effective_dimensionality(fn, params, z, method="dense") == pytest.approx(exact, rel=1e-12)
        slq = spectrum.spectral_density(fn, params, num_iterations=20, num_probes=64, key=jax.random.key(5))
        n = slq.dimension
        # per-probe estimates n Σ_i τ_i² f(θ_i) (weights were divided by the probe count)
        nodes = np.maximum(np.asarray(slq.nodes), 0)
        per_probe = n * np.sum(np.asarray(slq.weights) * 64 * nodes / (nodes + z), axis=1)
        error = per_probe.std(ddof=1) / np.sqrt(64)
        assert abs(per_probe.mean() - exact) < 4 * error


def test_lambda_max_is_traceable_inside_a_run():
    matrix = random_symmetric(2, n=4, shift=0.0)
    problem = st.problems.from_loss(lambda w, batch: 0.5 * w @ matrix @ w + 0.1 * jnp.sum(w**4),
                                    jnp.ones(4))
    observe = {"lanczos": st.observables.of_params(lambda w: spectrum.lambda_max(
        lambda v: problem.loss(v, None), w, method="matrix_free", num_iterations=4))}
    traj = st.run(problem, st.optim.gd(0.05), steps=20, key=jax.random.key(0), observe=observe,
                  stride=10)
    exact = st.measure.lambda_max(lambda v: problem.loss(v, None), traj.params, method="dense")
    assert traj.final("lanczos") == pytest.approx(float(exact), rel=1e-10)


def test_bad_inputs_raise_config_errors():
    fn, params = nonquadratic(random_symmetric(0)), random_params(0)
    with pytest.raises(ConfigError, match="method"):
        spectrum.top_hessian_eigenpairs(fn, params, method="power")
    with pytest.raises(ConfigError, match="k"):
        spectrum.top_hessian_eigenpairs(fn, params, k=N + 4)
    with pytest.raises(ConfigError, match="num_iterations"):
        spectrum.top_hessian_eigenpairs(fn, params, k=3, method="matrix_free", num_iterations=2)
    with pytest.raises(ConfigError, match="distribution"):
        spectrum.hutchinson_trace(fn, params, key=jax.random.key(0), distribution="uniform")
    with pytest.raises(ConfigError, match="z"):
        spectrum.effective_dimensionality(fn, params, z=0.0)
    with pytest.raises(ConfigError, match="params"):
        spectrum.lambda_max(lambda p: 0.0, {})
