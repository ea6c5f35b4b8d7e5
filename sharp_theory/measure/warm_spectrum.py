"""Top Hessian eigenpairs tracked along a run, warm-started from the previous record.

A cold Lanczos solve needs tens of Hessian-vector products (HVPs) per record. Between two
records a few optimizer steps move the parameters little, so the previous record's top
eigenvectors are nearly the new ones: a Lanczos run of a few steps started from them recovers
the top eigenvalues to high relative accuracy. :func:`warm_top_eigenpairs` is an observable
(:class:`sharp_theory.observables.WarmObservable`) that does exactly that inside the trajectory
scan: matrix-free (HVPs by forward-over-reverse differentiation), traceable and vmappable across
the lanes of a sweep, with the HVPs it spends reported at every record.

Recorded (observe name ``NAME``): ``NAME.values`` (k,) top eigenvalues, descending;
``NAME.residuals`` (k,) Ritz residual norms ‖Hv − λv‖; ``NAME.matvecs`` HVPs spent at that
record (the cold solve at the initial point is counted in the first record).

References:
  Lanczos (1950); Golub & Van Loan, Matrix Computations, Sec. 10.1 (Ritz pairs, residual
    bound |β_m s_m|); Parlett, The Symmetric Eigenvalue Problem, Ch. 11 (error of a Ritz value
    is at most residual² / gap).
  Cohen, Kaur, Li, Kolter, Talwalkar. Gradient descent on neural networks typically occurs at
    the edge of stability. ICLR 2021 (λ_max recorded along training).
"""
from __future__ import annotations

import dataclasses
from typing import Callable

import jax
import jax.numpy as jnp

from ..errors import ConfigError, check_int
from ..observables import WarmObservable
from jax.flatten_util import ravel_pytree

from .spectrum import flat_parameters, full_batch_loss


def hvp_operator(fn: Callable, params):
    """``(matvec, flat params)``: ``matvec(v) = ∇²fn(params) v`` for flat ``v``, each product one
    forward-over-reverse pass (``jax.jvp`` of the gradient).

    Unlike ``jax.linearize`` (:func:`sharp_theory.measure.spectrum.hessian_operator`), nothing is
    stored between products: for the two to five products of a warm-started record this is
    cheaper (measured: ``benchmarks/bench_warm_spectrum.py``).
    """
    flat, unravel = flat_parameters(params)

    def flat_gradient(w):
        return ravel_pytree(jax.grad(fn)(unravel(w)))[0]

    def matvec(vector):
        return jax.jvp(flat_gradient, (flat,), (vector,))[1]

    return matvec, flat


def _ritz(alphas, betas, size, k):
    """Top-k Ritz pairs of the leading ``size`` x ``size`` block of the tridiagonal matrix
    (entries past ``size`` are decoupled and pushed below every Ritz value).

    Returns:
      (values descending (k,), coefficients (m, k), residual norms |β_size s_last| (k,)).
    """
    m = alphas.shape[0]
    inside = jnp.arange(m) < size
    floor = -10.0 * (jnp.max(jnp.abs(jnp.where(inside, alphas, 0.0))) + 1.0)
    diagonal = jnp.where(inside, alphas, floor)
    off = jnp.where(jnp.arange(m - 1) < size - 1, betas[:-1], 0.0)
    ritz_values, coefficients = jnp.linalg.eigh(jnp.diag(diagonal) + jnp.diag(off, 1)
                                                + jnp.diag(off, -1))
    values, coefficients = ritz_values[::-1][:k], coefficients[:, ::-1][:, :k]
    last = coefficients[jnp.maximum(size - 1, 0), :]
    return values, coefficients, jnp.abs(betas[jnp.maximum(size - 1, 0)] * last)


def _lanczos_ritz(matvec: Callable, start, min_steps: int, max_steps: int, k: int, tol: float):
    """Lanczos from ``start`` (full reorthogonalization, no restarts) until the top-k Ritz
    pairs have relative residuals ``|β s| / |θ| <= tol``, at least ``min_steps`` and at most
    ``max_steps`` steps (one HVP each).

    The first ``min_steps`` steps are unrolled (straight-line code: XLA computes the gradient's
    primal pass once for all their HVPs, which inside a loop it would redo every step); further
    steps, taken only while a lane has not converged, run in a ``while_loop``.

    Returns:
      (top-k Ritz values descending, Ritz vectors (k, n), residual norms (k,), steps taken).
    """
    n = start.shape[0]
    dtype = start.dtype
    tiny = jnp.finfo(dtype).tiny
    m = max_steps
    basis = jnp.zeros((m + 1, n), dtype).at[0].set(start / jnp.linalg.norm(start))
    alphas, betas = jnp.zeros((m,), dtype), jnp.zeros((m,), dtype)

    def step(j, basis, alphas, betas, rows):
        """Lanczos step j against the first ``rows`` basis vectors (rows >= j + 1)."""
        used = basis[:rows]
        mask = (jnp.arange(rows) <= j).astype(dtype)
        w = matvec(basis[j])
        alpha = jnp.vdot(basis[j], w)
        for _ in range(2):  # twice is enough
            w = w - (mask * (used @ w)) @ used
        beta = jnp.linalg.norm(w)
        # An invariant subspace (an exact eigenvector as start): the next vector is 0 and the
        # coupling vanishes, so the Ritz values stay exact.
        basis = basis.at[j + 1].set(jnp.where(beta > tiny, w / jnp.maximum(beta, tiny), 0.0))
        return basis, alphas.at[j].set(alpha), betas.at[j].set(beta)

    def converged(size, alphas, betas):
        values, _, residuals = _ritz(alphas, betas, size, k)
        return jnp.all(residuals <= tol * jnp.abs(values))

    for j in range(min_steps):
        basis, alphas, betas = step(j, basis, alphas, betas, j + 1)
    taken = jnp.asarray(min_steps)
    if max_steps > min_steps:
        def more(carry):
            j, basis, alphas, betas, _ = carry
            basis, alphas, betas = step(j, basis, alphas, betas, m + 1)
            return j + 1, basis, alphas, betas, converged(j + 1, alphas, betas)

        carry = (taken, basis, alphas, betas, converged(min_steps, alphas, betas))
        taken, basis, alphas, betas, _ = jax.lax.while_loop(
            lambda c: (c[0] < m) & ~c[4], more, carry)
    values, coefficients, residuals = _ritz(alphas, betas, taken, k)
    vectors = coefficients.T @ basis[:m]
    return values, vectors, residuals, taken


@dataclasses.dataclass(frozen=True)
class WarmEigenpairs(WarmObservable):
    """Observable: the top-k Hessian eigenpairs of a loss, warm-started at every record.

    Attributes:
      k: eigenpairs tracked.
      min_steps: the fewest Lanczos steps (= HVPs) per record, started from the previous
        record's eigenvectors.
      max_steps: the most Lanczos steps (= HVPs) per record.
      tol: relative residual at which a record's solve stops.
      cold_steps: Lanczos steps of the cold solve at the initial point.
      loss: ``loss(problem) -> fn(params) -> scalar``; default the problem's full-batch loss.
      jitter: weight of a fixed random direction added to the start vector, so that an
        eigenvalue overtaking the tracked ones is found within a few records.
    """

    k: int = 1
    min_steps: int = 2
    max_steps: int = 8
    tol: float = 1e-5
    cold_steps: int = 60
    loss: Callable | None = None
    jitter: float = 1e-3

    def _operator(self, params, problem):
        fn = full_batch_loss(problem) if self.loss is None else self.loss(problem)
        return hvp_operator(fn, params)

    def init(self, params, problem, state):
        matvec, flat = self._operator(params, problem)
        steps = min(self.cold_steps, flat.size)
        start = jax.random.rademacher(jax.random.key(0), flat.shape, dtype=flat.dtype)
        _, vectors, _, taken = _lanczos_ritz(matvec, start, steps, steps, self.k, 0.0)
        direction = jax.random.rademacher(jax.random.key(1), flat.shape, dtype=flat.dtype)
        return {"vectors": vectors, "pending": taken.astype(flat.dtype),
                "jitter": self.jitter * jnp.sqrt(float(self.k) / flat.size) * direction}

    def update(self, params, problem, state, carry):
        matvec, flat = self._operator(params, problem)
        start = jnp.sum(carry["vectors"], axis=0) + carry["jitter"]
        top = min(self.max_steps, flat.size)
        values, vectors, residuals, taken = _lanczos_ritz(
            matvec, start, min(self.min_steps, top), top, self.k, self.tol)
        record = {"values": values, "residuals": residuals,
                  "matvecs": carry["pending"] + taken.astype(flat.dtype)}
        return record, {"vectors": vectors, "pending": jnp.zeros_like(carry["pending"]),
                        "jitter": carry["jitter"]}


def warm_top_eigenpairs(k: int = 1, *, min_steps: int = 2, max_steps: int = 8,
                        tol: float = 1e-5, cold_steps: int = 60, loss: Callable | None = None,
                        jitter: float = 1e-3) -> WarmEigenpairs:
    """An observable that tracks the top-k Hessian eigenpairs along a run, each record's
    Lanczos solve started from the previous record's eigenvectors and stopped once converged.

    Use it in ``observe``: ``st.run(problem, opt, observe={"spectrum":
    st.measure.warm_top_eigenpairs()}, stride=10)`` records ``spectrum.values``,
    ``spectrum.residuals`` and ``spectrum.matvecs``. A Ritz value's error is at most
    residual² / (gap to the next eigenvalue), so ``tol`` (relative residual) = 1e-5 gives
    about 1e-10 relative accuracy when the gap is a tenth of λ_max; the accuracy against a cold
    solve is measured by ``benchmarks/bench_warm_spectrum.py``.

    Args:
      k: eigenpairs tracked (>= 1).
      min_steps: the fewest Lanczos steps (HVPs) per record (k <= min_steps <= max_steps).
      max_steps: the most Lanczos steps (HVPs) per record.
      tol: stop when every tracked pair has ‖Hv − θv‖ <= tol·|θ| (in [0, 1)).
      cold_steps: Lanczos steps of the cold solve at the initial point (>= k).
      loss: ``loss(problem) -> fn(params) -> scalar`` (default: the full-batch loss).
      jitter: weight of a fixed random direction in the start vector, so that an eigenvalue
        overtaking the tracked ones is picked up (in [0, 1)).

    Returns:
      A :class:`WarmEigenpairs` observable.

    Raises:
      ConfigError: a setting out of range.
    """
    k = check_int("k", k, minimum=1)
    min_steps = check_int("min_steps", min_steps, minimum=k)
    max_steps = check_int("max_steps", max_steps, minimum=min_steps)
    cold_steps = check_int("cold_steps", cold_steps, minimum=k)
    for name, value in (("tol", tol), ("jitter", jitter)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value < 1.0:
            raise ConfigError(name, value, "a number in [0, 1)")
    return WarmEigenpairs(k=k, min_steps=min_steps, max_steps=max_steps, tol=float(tol),
                          cold_steps=cold_steps, loss=loss, jitter=float(jitter))


__all__ = ["warm_top_eigenpairs", "WarmEigenpairs"]
