"""Hessian spectra of any scalar function of a parameter pytree: exact (dense) or matrix-free.

Every function here takes ``fn(params) -> scalar`` (for a problem, use :func:`full_batch_loss`)
and a parameter pytree. Small models get the exact answer from the dense Hessian and ``eigh``;
large ones are handled without ever forming the Hessian, from Hessian-vector products (HVPs):

* top-k eigenpairs by the Lanczos method with full reorthogonalization,
* the spectral density by stochastic Lanczos quadrature (SLQ),
* the trace and Frobenius norm exactly from n HVPs, or Hutchinson's estimate with its standard
  error.

``method="auto"`` picks the dense path for at most :data:`DENSE_MAX_PARAMETERS` parameters (the
crossover measured by ``benchmarks/bench_spectrum.py``) and the matrix-free path above;
``method="dense"`` or ``method="matrix_free"`` overrides the choice. Everything is traceable, so
these measures can be recorded along a trajectory (``st.run(..., observe=...)``).

References:
  Lanczos, C. An iteration method for the solution of the eigenvalue problem of linear
    differential and integral operators. J. Res. Nat. Bur. Standards 45 (1950).
  Golub & Van Loan, Matrix Computations (4th ed.), Sec. 10.1 (Lanczos with full
    reorthogonalization) and Giraud, Langou, Rozloznik, "The loss of orthogonality in the
    Gram-Schmidt process" (2005) ("twice is enough").
  Ubaru, Chen, Saad. Fast estimation of tr(f(A)) via stochastic Lanczos quadrature. SIAM J.
    Matrix Anal. Appl. 38(4), 2017; Ghorbani, Krishnan, Xiao. An investigation into neural net
    optimization via Hessian eigenvalue density. ICML 2019 (SLQ for Hessians).
  Hutchinson. A stochastic estimator of the trace of the influence matrix for Laplacian
    smoothing splines. Comm. Statist. Simul. Comput. 18 (1989).
  Maddox, Benton, Wilson. Rethinking parameter counting in deep models: effective
    dimensionality revisited. arXiv 2003.02139 (2020), eq. (2): N_eff(H, z) = Σ λ_i/(λ_i + z).
  Foret, Kleiner, Mobahi, Neyshabur. Sharpness-Aware Minimization for Efficiently Improving
    Generalization. ICLR 2021, Sec. 4.2 / Table 3 (λ_max and λ_max/λ_5 of the Hessian).
"""
from __future__ import annotations

import functools
import math
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
from jax.flatten_util import ravel_pytree

from ..errors import ConfigError, check_choice, check_int
# The Lanczos method and the Hessian operator live in the lowest layer (the ready observables
# use them too); their names stay available here.
from ..krylov import (DEFAULT_LANCZOS_STEPS, FullBatchLoss, LanczosResult, default_key,  # noqa: F401
                      dense_hessian, flat_parameters, hessian_operator, lanczos,
                      parameter_count, tridiagonal)

# Parameter count up to which method="auto" uses the dense Hessian. benchmarks/bench_spectrum.py
# ("Hessian spectrum: dense vs matrix-free (issue 6)" in benchmarks/README.md): on a 2-core CPU
# the dense Hessian + eigh is faster for λ_max below ~200 parameters, the two tie near 300, and
# Lanczos is 8x faster at 500 and 100x at 1000 (both exact to ~1e-16 there).
DENSE_MAX_PARAMETERS = 300
"""Parameter count up to which ``method="auto"`` takes the dense Hessian (and ``eigh``); above it
the matrix-free (HVP) path. Measured by ``benchmarks/bench_spectrum.py``.
"""

METHODS = ("auto", "dense", "matrix_free")
"""The accepted ``method`` values: ``"auto"``, ``"dense"``, ``"matrix_free"``."""



# --- plumbing ---------------------------------------------------------------------------------

def full_batch_loss(problem) -> Callable:
    """The training objective of ``problem`` as ``fn(params)`` for the measures in this module.

    Args:
      problem: any :class:`sharp_theory.problems.Problem` (including ``from_loss`` ones).

    Returns:
      ``fn(params) -> scalar``: the full-batch loss (or the population loss for fresh-noise
      problems without a finite data set).
    """
    from ..problems.base import Problem

    if not isinstance(problem, Problem):
        raise ConfigError("problem", type(problem).__name__, "a sharp_theory Problem")
    return FullBatchLoss(problem)


def callable_tree(fn: Callable):
    """``fn`` as a pytree, so it can be an argument of a jitted function.

    Pytree callables (:class:`FullBatchLoss`, ``jax.tree_util.Partial``) pass through: their
    arrays are traced arguments and their functions part of the cache key, so a new problem
    with the same structure reuses the compiled code. Any other callable is wrapped in a
    ``Partial`` with no arguments (cached by the function's identity: define ``fn`` once and
    reuse it to avoid recompiling).

    Args:
      fn: any callable ``fn(params) -> scalar``.

    Returns:
      ``fn`` itself when it is a pytree with leaves, else ``jax.tree_util.Partial(fn)``.

    Raises:
      ConfigError: ``fn`` is not callable.
    """
    if not callable(fn):
        raise ConfigError("fn", fn, "a callable fn(params) -> scalar")
    if jax.tree_util.all_leaves([fn]):
        return jax.tree_util.Partial(fn)
    return fn


def resolve_method(method: str, n: int, dense_max: int = DENSE_MAX_PARAMETERS) -> str:
    """The Hessian path for a model with ``n`` parameters: ``"dense"`` or ``"matrix_free"``.

    Args:
      method: one of :data:`METHODS`; ``"auto"`` picks dense for ``n <= dense_max``.
      n: the parameter count (≥ 1).
      dense_max: the ``"auto"`` threshold (default :data:`DENSE_MAX_PARAMETERS`).

    Returns:
      ``"dense"`` or ``"matrix_free"``.

    Raises:
      ConfigError: ``method`` is not one of :data:`METHODS`.
    """
    check_choice("method", method, METHODS)
    if method == "auto":
        return "dense" if n <= dense_max else "matrix_free"
    return method


def _rademacher(key, shape, dtype):
    return jax.random.rademacher(key, shape, dtype=dtype)


# --- eigenpairs -------------------------------------------------------------------------------

class Eigenpairs(NamedTuple):
    """Top-k Hessian eigenpairs, largest first.

    Attributes:
      values: eigenvalues, shape (k,), descending (algebraically largest first).
      vectors: unit eigenvectors as a pytree like ``params`` with a leading axis of size k.
      residual_norms: ``‖H v_i - λ_i v_i‖`` for each pair (a convergence certificate; for
        Lanczos the standard bound ``|β_m S_{m,i}|``, for the dense path the computed residual).
      method: "dense" or "matrix_free".
    """

    values: Any
    vectors: Any
    residual_norms: Any
    method: str


def _check_k(k, n):
    return check_int("k", k, minimum=1, maximum=n)


def top_hessian_eigenpairs(fn: Callable, params, k: int = 1, *, method: str = "auto",
                           num_iterations: int | None = None, key=None,
                           dense_max: int = DENSE_MAX_PARAMETERS) -> Eigenpairs:
    """The k algebraically largest eigenvalues of ∇²fn(params) and their eigenvectors.

    Args:
      fn: ``fn(params) -> scalar``.
      params: parameter pytree (use float64 for exact checks).
      k: number of eigenpairs (1 <= k <= parameter count).
      method: "auto" (dense up to ``dense_max`` parameters, else matrix-free), "dense"
        (``eigh`` of the full Hessian) or "matrix_free" (Lanczos on HVPs).
      num_iterations: Lanczos steps (default ``min(n, max(80, 3k))``); ignored for dense.
      key: PRNG key of the Lanczos start vector (default: fixed key).
      dense_max: the "auto" threshold.

    Returns:
      :class:`Eigenpairs` (values descending, vectors as a stacked pytree, residual norms).

    References:
      Lanczos 1950; Golub & Van Loan, Matrix Computations, Sec. 10.1 (Lanczos with
      full reorthogonalization).
    """
    flat, _ = flat_parameters(params)
    n = flat.size
    k = _check_k(k, n)
    method = resolve_method(method, n, dense_max)
    steps = None
    if method == "matrix_free":
        steps = num_iterations if num_iterations is not None else min(n, max(DEFAULT_LANCZOS_STEPS, 3 * k))
        steps = check_int("num_iterations", steps, minimum=k, maximum=n)
    values, vectors, residuals = _top_eigenpairs(callable_tree(fn), params, default_key(key),
                                                 k=k, steps=steps)
    return Eigenpairs(values, vectors, residuals, method)


@functools.partial(jax.jit, static_argnames=("k", "steps"))
def _top_eigenpairs(fn, params, key, *, k, steps):
    flat, unravel = flat_parameters(params)
    if steps is None:  # dense
        matrix, _, _ = dense_hessian(fn, params)
        values, vectors = jnp.linalg.eigh(matrix)
        values, vectors = values[::-1][:k], vectors[:, ::-1][:, :k]
        residuals = jnp.linalg.norm(matrix @ vectors - vectors * values[None, :], axis=0)
    else:
        matvec, _, _ = hessian_operator(fn, params)
        start = _rademacher(jax.random.fold_in(key, 1), (flat.size,), flat.dtype)
        result = lanczos(matvec, start, steps, key=key)
        ritz_values, ritz_coefficients = jnp.linalg.eigh(tridiagonal(result))
        values, ritz_coefficients = ritz_values[::-1][:k], ritz_coefficients[:, ::-1][:, :k]
        vectors = result.basis.T @ ritz_coefficients
        residuals = jnp.abs(result.betas[-1] * ritz_coefficients[-1, :])
    return values, jax.vmap(unravel)(vectors.T), residuals


def top_hessian_eigenvalues(fn: Callable, params, k: int = 1, **options):
    """The k largest Hessian eigenvalues of ``fn`` at ``params``, descending.

    Args:
      fn: ``fn(params) -> scalar``.
      params: parameter pytree (use float64 for exact checks).
      k: number of eigenvalues (1 <= k <= parameter count).
      **options: ``method``, ``num_iterations``, ``key``, ``dense_max`` as for
        :func:`top_hessian_eigenpairs`.

    Returns:
      An array of shape (k,), algebraically largest first.
    """
    return top_hessian_eigenpairs(fn, params, k, **options).values


def lambda_max(fn: Callable, params, **options):
    """The sharpness λ_max(∇²fn(params)): the largest Hessian eigenvalue, dense or by Lanczos.

    Args:
      fn: ``fn(params) -> scalar`` (for a problem, :func:`full_batch_loss`).
      params: parameter pytree (use float64 for exact checks).
      **options: ``method`` ("auto", "dense", "matrix_free"), ``num_iterations``, ``key``,
        ``dense_max`` as for :func:`top_hessian_eigenpairs`.

    Returns:
      A scalar array: the algebraically largest eigenvalue.

    References:
      Foret, Kleiner, Mobahi, Neyshabur 2021, Sec. 4.2 (λ_max as the sharpness SAM lowers);
      Cohen et al. 2021 (λ_max at the edge of stability 2/η).

    Examples:
      >>> import jax.numpy as jnp
      >>> import sharp_theory as st
      >>> curvatures = jnp.array([3.0, 1.0, 0.5])
      >>> fn = lambda w: 0.5 * jnp.sum(curvatures * w**2)  # Hessian diag(3, 1, 0.5)
      >>> round(float(st.measure.lambda_max(fn, jnp.zeros(3))), 10)
      3.0
      >>> round(float(st.measure.lambda_max(fn, jnp.zeros(3), method="matrix_free")), 10)
      3.0
    """
    return top_hessian_eigenpairs(fn, params, 1, **options).values[0]


def eigenvalue_ratio(fn: Callable, params, k: int = 5, **options):
    """The ratio λ_max / λ_k of the Hessian's top eigenvalues.

    A large ratio means one direction is much sharper than the rest.

    Args:
      fn: ``fn(params) -> scalar``.
      params: parameter pytree.
      k: which eigenvalue to divide by (2 <= k <= parameter count for a meaningful ratio; k = 1
        gives 1).
      **options: as for :func:`top_hessian_eigenpairs`.

    Returns:
      A scalar array ``λ_1 / λ_k`` (inf or NaN when λ_k is 0).

    References:
      Foret, Kleiner, Mobahi, Neyshabur 2021, Sec. 4.2 / Table 3 (they report λ_max/λ_5).
    """
    values = top_hessian_eigenvalues(fn, params, k, **options)
    return values[0] / values[k - 1]


# --- spectrum and spectral density --------------------------------------------------------------

class Spectrum(NamedTuple):
    """The Hessian's eigenvalue distribution as a discrete measure.

    For the dense path the nodes are all n eigenvalues with weight 1/n each (exact). For
    stochastic Lanczos quadrature the nodes are the Ritz values of each probe's Lanczos run and
    the weights the squared first components of the Ritz vectors, averaged over probes (the
    Gauss quadrature rule of the probe's spectral measure; Ubaru et al. 2017).

    Attributes:
      nodes: shape (num_probes, m) (dense: (1, n)).
      weights: same shape, nonnegative, summing to 1.
      dimension: n, the parameter count.
    """

    nodes: Any
    weights: Any
    dimension: int

    def expectation(self, function: Callable):
        """``tr f(H) = n ∫ f dμ`` estimated from the measure (exact for the dense path)."""
        return self.dimension * jnp.sum(self.weights * function(self.nodes))

    def density(self, grid, bandwidth):
        """Gaussian-smoothed density on ``grid`` (integrates to 1 over the real line)."""
        grid = jnp.asarray(grid)
        z = (grid[:, None] - self.nodes.reshape(-1)[None, :]) / bandwidth
        kernel = jnp.exp(-0.5 * z**2) / (bandwidth * jnp.sqrt(2.0 * jnp.pi))
        return kernel @ self.weights.reshape(-1)

    def eigenvalues(self):
        """All eigenvalues, ascending (dense spectra only: one probe with n equal weights)."""
        return jnp.sort(self.nodes.reshape(-1))


def spectral_density(fn: Callable, params, *, num_iterations: int = 60, num_probes: int = 8,
                     key) -> Spectrum:
    """Stochastic Lanczos quadrature estimate of the Hessian's spectral density.

    Each probe z is a normalized Rademacher vector; m Lanczos steps from z give the Gauss
    quadrature rule ``Σ_i τ_i² δ(θ_i)`` of the measure ``Σ_j (zᵀu_j)² δ(λ_j)``, whose mean over
    probes is the spectral density ``(1/n) Σ_j δ(λ_j)``.

    Args:
      fn: ``fn(params) -> scalar``.
      params: parameter pytree (floating point).
      num_iterations: Lanczos steps per probe (<= n).
      num_probes: independent probes.
      key: PRNG key (required: the estimate is random).

    Returns:
      A :class:`Spectrum` with nodes/weights of shape (num_probes, num_iterations).

    References: Ubaru, Chen, Saad 2017, Alg. 1; Ghorbani, Krishnan, Xiao 2019, Sec. 2.
    """
    flat, _ = flat_parameters(params)
    n = flat.size
    steps = check_int("num_iterations", num_iterations, minimum=1, maximum=n)
    probes = check_int("num_probes", num_probes, minimum=1)
    nodes, weights = _slq(callable_tree(fn), params, key, steps=steps, probes=probes)
    return Spectrum(nodes, weights, n)


@functools.partial(jax.jit, static_argnames=("steps", "probes"))
def _slq(fn, params, key, *, steps, probes):
    matvec, flat, _ = hessian_operator(fn, params)

    def one_probe(probe_key):
        start = _rademacher(probe_key, (flat.size,), flat.dtype)
        result = lanczos(matvec, start, steps, key=jax.random.fold_in(probe_key, 7))
        values, coefficients = jnp.linalg.eigh(tridiagonal(result))
        return values, coefficients[0, :] ** 2

    nodes, weights = jax.vmap(one_probe)(jax.random.split(key, probes))
    return nodes, weights / probes


@jax.jit
def _dense_eigenvalues(fn, params):
    return jnp.linalg.eigvalsh(dense_hessian(fn, params)[0])


@jax.jit
def _dense_trace_and_frobenius(fn, params):
    matrix = dense_hessian(fn, params)[0]
    return jnp.trace(matrix), jnp.linalg.norm(matrix)


@jax.jit
def _matrix_free_trace_and_frobenius(fn, params):
    diagonal, squared_column_norms = _column_statistics(fn, params)
    return jnp.sum(diagonal), jnp.sqrt(jnp.sum(squared_column_norms))


def hessian_spectrum(fn: Callable, params, *, method: str = "auto", num_iterations: int = 60,
                     num_probes: int = 8, key=None,
                     dense_max: int = DENSE_MAX_PARAMETERS) -> Spectrum:
    """The full Hessian spectrum: exact (dense ``eigh``) or its SLQ estimate (matrix-free).

    Args:
      fn: ``fn(params) -> scalar``.
      params: parameter pytree (floating point).
      method: "auto", "dense" or "matrix_free" (stochastic Lanczos quadrature).
      num_iterations: SLQ Lanczos steps per probe (see :func:`spectral_density`).
      num_probes: SLQ probes.
      key: SLQ PRNG key (default: a fixed key).
      dense_max: the "auto" threshold.

    Returns:
      A :class:`Spectrum`; for the dense path ``spectrum.eigenvalues()`` is every eigenvalue.

    References:
      Ubaru, Chen, Saad 2017, Alg. 1; Ghorbani, Krishnan, Xiao 2019, Sec. 2 (SLQ).
    """
    flat, _ = flat_parameters(params)
    n = flat.size
    if resolve_method(method, n, dense_max) == "dense":
        values = _dense_eigenvalues(callable_tree(fn), params)
        return Spectrum(values[None, :], jnp.full((1, n), 1.0 / n, values.dtype), n)
    return spectral_density(fn, params, num_iterations=min(num_iterations, n),
                            num_probes=num_probes, key=default_key(key))


# --- trace and Frobenius norm -------------------------------------------------------------------

class Estimate(NamedTuple):
    """A Monte-Carlo estimate with its standard error.

    Attributes:
      value: the sample mean (a scalar array).
      standard_error: the sample standard deviation / sqrt(num_samples) (inf for one sample).
      num_samples: the number of samples (a Python int).
    """

    value: Any
    standard_error: Any
    num_samples: int


def mean_and_standard_error(samples) -> Estimate:
    """The sample mean of ``samples`` (1-D) with its standard error (inf for one sample).

    Args:
      samples: array of shape (count,).

    Returns:
      :class:`Estimate` (value, standard_error, num_samples).
    """
    count = samples.shape[0]
    spread = jnp.std(samples, ddof=1) if count > 1 else jnp.asarray(jnp.inf, samples.dtype)
    return Estimate(jnp.mean(samples), spread / math.sqrt(count), count)


def _column_statistics(fn: Callable, params, batch_size: int = 64):
    """(diagonal, squared column norms) of the Hessian from n HVPs with the unit vectors."""
    matvec, flat, _ = hessian_operator(fn, params)
    n = flat.size

    def column(index):
        column_vector = matvec(jax.nn.one_hot(index, n, dtype=flat.dtype))
        return column_vector[index], jnp.sum(column_vector**2)

    return jax.lax.map(column, jnp.arange(n), batch_size=min(batch_size, n))


def hessian_trace(fn: Callable, params, *, method: str = "auto",
                        dense_max: int = DENSE_MAX_PARAMETERS):
    """The trace tr ∇²fn(params), exactly: dense diagonal, or n HVPs with the unit vectors.

    The matrix-free path never stores the Hessian (memory O(n)) but costs n HVPs; for an
    estimate at a fixed cost use :func:`hutchinson_trace`.

    Args:
      fn: ``fn(params) -> scalar``.
      params: parameter pytree (floating point).
      method: "auto" (dense up to ``dense_max`` parameters), "dense" or "matrix_free".
      dense_max: the "auto" threshold (default :data:`DENSE_MAX_PARAMETERS`).

    Returns:
      A scalar array: the sum of the Hessian's eigenvalues.

    Examples:
      >>> import jax
      >>> import jax.numpy as jnp
      >>> import sharp_theory as st
      >>> fn = lambda w: 0.5 * jnp.sum(jnp.array([3.0, 1.0, 0.5]) * w**2)
      >>> round(float(st.measure.hessian_trace(fn, jnp.zeros(3))), 10)
      4.5
      >>> estimate = st.measure.hutchinson_trace(fn, jnp.zeros(3), num_probes=16,
      ...                                        key=jax.random.key(0))
      >>> round(float(estimate.value), 10)  # Rademacher probes are exact for a diagonal Hessian
      4.5
    """
    flat, _ = flat_parameters(params)
    if resolve_method(method, flat.size, dense_max) == "dense":
        return _dense_trace_and_frobenius(callable_tree(fn), params)[0]
    return _matrix_free_trace_and_frobenius(callable_tree(fn), params)[0]


def hutchinson_trace(fn: Callable, params, *, num_probes: int = 64, key,
                     distribution: str = "rademacher") -> Estimate:
    """Hutchinson's estimate ``tr H ≈ mean_i z_iᵀ H z_i`` with its standard error.

    Args:
      fn: ``fn(params) -> scalar``.
      params: parameter pytree (floating point).
      num_probes: number of probe vectors (>= 2 for a finite standard error).
      key: PRNG key (required).
      distribution: "rademacher" (minimum variance among iid-entry probes:
        ``2(‖H‖_F² - Σ H_ii²)`` per probe) or "gaussian" (``2‖H‖_F²``).

    Returns:
      :class:`Estimate` (value, standard_error, num_samples).

    References: Hutchinson 1989; Avron & Toledo, J. ACM 58(2), 2011 (variances).
    """
    check_choice("distribution", distribution, ("rademacher", "gaussian"))
    probes = check_int("num_probes", num_probes, minimum=1)
    samples = _hutchinson_samples(callable_tree(fn), params, key, probes=probes,
                                  distribution=distribution)
    return mean_and_standard_error(samples)


@functools.partial(jax.jit, static_argnames=("probes", "distribution"))
def _hutchinson_samples(fn, params, key, *, probes, distribution):
    matvec, flat, _ = hessian_operator(fn, params)
    if distribution == "rademacher":
        vectors = _rademacher(key, (probes, flat.size), flat.dtype)
    else:
        vectors = jax.random.normal(key, (probes, flat.size), flat.dtype)
    return jax.vmap(lambda z: jnp.vdot(z, matvec(z)))(vectors)


def hessian_frobenius_norm(fn: Callable, params, *, method: str = "auto",
                           dense_max: int = DENSE_MAX_PARAMETERS):
    """The Frobenius norm ‖∇²fn(params)‖_F, exactly: dense, or from the n Hessian columns (n HVPs).

    Args:
      fn: ``fn(params) -> scalar``.
      params: parameter pytree (floating point).
      method: "auto" (dense up to ``dense_max`` parameters), "dense" or "matrix_free".
      dense_max: the "auto" threshold (default :data:`DENSE_MAX_PARAMETERS`).

    Returns:
      A scalar array ``sqrt(Σ_ij H_ij²)``.
    """
    flat, _ = flat_parameters(params)
    if resolve_method(method, flat.size, dense_max) == "dense":
        return _dense_trace_and_frobenius(callable_tree(fn), params)[1]
    return _matrix_free_trace_and_frobenius(callable_tree(fn), params)[1]


def effective_dimensionality(fn: Callable, params, z: float = 1.0, *, method: str = "auto",
                             num_iterations: int = 60, num_probes: int = 8, key=None,
                             dense_max: int = DENSE_MAX_PARAMETERS):
    """The effective dimensionality ``N_eff = Σ_i λ_i / (λ_i + z)`` of the Hessian.

    Counts the directions whose curvature exceeds the scale z. Negative eigenvalues (away from
    a minimum) are clipped at 0: they add no "determined" direction. Exact for the dense path,
    the SLQ estimate of ``tr f(H)`` for the matrix-free one.

    Args:
      fn: ``fn(params) -> scalar``.
      params: parameter pytree.
      z: curvature scale (> 0); Maddox et al. use a prior precision.
      method: "auto", "dense" or "matrix_free", as for :func:`hessian_spectrum`.
      num_iterations: SLQ Lanczos steps per probe (matrix-free only).
      num_probes: SLQ probes (matrix-free only).
      key: SLQ PRNG key (default: a fixed key).
      dense_max: the "auto" threshold.

    Returns:
      A scalar array between 0 and the parameter count.

    Raises:
      ConfigError: a Python-number ``z`` that is not > 0.

    References:
      MacKay 1992; Maddox, Benton, Wilson 2020, eq. (2).
    """
    if isinstance(z, (int, float)) and not z > 0:
        raise ConfigError("z", z, "a curvature scale > 0")
    spectrum = hessian_spectrum(fn, params, method=method, num_iterations=num_iterations,
                                num_probes=num_probes, key=key, dense_max=dense_max)

    def ratio(values):
        clipped = jnp.maximum(values, 0.0)
        return clipped / (clipped + z)

    return spectrum.expectation(ratio)


__all__ = [
    "DENSE_MAX_PARAMETERS", "METHODS", "FullBatchLoss", "full_batch_loss", "parameter_count",
    "resolve_method", "callable_tree", "hessian_operator", "lanczos", "LanczosResult", "tridiagonal", "Eigenpairs",
    "top_hessian_eigenpairs", "top_hessian_eigenvalues", "lambda_max", "eigenvalue_ratio",
    "Spectrum", "spectral_density", "hessian_spectrum", "Estimate", "hessian_trace",
    "hutchinson_trace", "hessian_frobenius_norm", "effective_dimensionality",
]
