"""Top Hessian eigenpairs tracked along a run, warm-started from the previous record.

A cold Lanczos solve needs tens of Hessian-vector products (HVPs) per record. Between two
records a few optimizer steps move the parameters little, so the previous record's top
eigenvectors are nearly the new ones: a Lanczos run of a few steps started from them recovers
the top eigenvalues to high relative accuracy. :func:`warm_top_eigenpairs` is an observable
(:class:`sharp_theory.observables.WarmObservable`) that does exactly that inside the trajectory
scan: matrix-free (HVPs by forward-over-reverse differentiation), traceable and vmappable across
the lanes of a sweep, with the HVPs it spends reported at every record.

Recorded (observe name ``NAME``): ``NAME.values`` (k,) top eigenvalues, descending;
``NAME.residuals`` (k,) Ritz residual norms ‖Hv − λv‖; ``NAME.error_estimates`` (k,)
residual² / (|λ| · estimated gap / gap_safety), Kato–Temple's relative error bound evaluated
with an *estimated* gap: a bound when the gap estimate holds, an estimate otherwise (see
:func:`warm_top_eigenpairs` for when it was exceeded);
``NAME.matvecs`` HVPs spent at that record (the cold solve at the initial point is counted in
the first record). A record whose bound is small stops after one HVP.

References:
  Lanczos (1950); Golub & Van Loan, Matrix Computations, Sec. 10.1 (Ritz pairs, residual
    bound |β_m s_m|); Parlett, The Symmetric Eigenvalue Problem, Ch. 11 (error of a Ritz value
    is at most residual² / gap); Kato (1949), Temple (1928) (the Rayleigh-quotient bound);
    Weinstein (1934) (an eigenvalue within the residual of a Ritz value).
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


# Straight-line Lanczos steps at most: a warm record takes a few and gains from unrolling (above);
# the 60 steps of a cold solve unrolled took ~28 s to compile for a 60-parameter model on 2 cores.
UNROLLED_STEPS = 12


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

    Args:
      alphas: diagonal (m,).
      betas: off-diagonal (m,); ``betas[j]`` couples steps j and j + 1.
      size: the steps taken (traced or static, 1 <= size <= m).
      k: Ritz pairs wanted (k <= m).

    Returns:
      (values descending (k,), coefficients (m, k), couplings (k,), the (k+1)-th Ritz value)
      (pairs past m: NaN values, zero coefficients):
      a Ritz pair (θ, y = Q s) has ``H y − θ y = coupling · q_size`` with coupling
      ``β_size · s_last`` (signed); the (k+1)-th value is NaN when ``size <= k``.
    """
    m = alphas.shape[0]
    inside = jnp.arange(m) < size
    floor = -10.0 * (jnp.max(jnp.abs(jnp.where(inside, alphas, 0.0))) + 1.0)
    diagonal = jnp.where(inside, alphas, floor)
    off = jnp.where(jnp.arange(m - 1) < size - 1, betas[:-1], 0.0)
    ritz_values, coefficients = jnp.linalg.eigh(jnp.diag(diagonal) + jnp.diag(off, 1)
                                                + jnp.diag(off, -1))
    descending = ritz_values[::-1]
    values, coefficients = descending[:k], coefficients[:, ::-1][:, :k]
    if m < k:  # fewer Ritz pairs than asked: NaN values, zero vectors
        values = jnp.concatenate([values, jnp.full((k - m,), jnp.nan, values.dtype)])
        coefficients = jnp.concatenate([coefficients, jnp.zeros((m, k - m), values.dtype)], 1)
    last = coefficients[jnp.maximum(size - 1, 0), :]
    following = (jnp.where(size > k, descending[k], jnp.nan) if m > k
                 else jnp.asarray(jnp.nan, alphas.dtype))
    return values, coefficients, betas[jnp.maximum(size - 1, 0)] * last, following


def _lanczos_ritz(matvec: Callable, start, min_steps: int, max_steps: int, k: int,
                  stop: Callable | None = None):
    """Lanczos from ``start`` (full reorthogonalization, no restarts): ``min_steps`` steps, then
    more (at most ``max_steps`` in all, one HVP each) until ``stop(values, residuals, size)``
    holds for the top-k Ritz pairs.

    The first ``min_steps`` steps are unrolled when there are at most ``UNROLLED_STEPS`` of
    them (straight-line code: XLA computes the gradient's primal pass once for all their HVPs,
    which inside a loop it would redo every step; more run in one loop). Further
    steps run in a ``while_loop`` inside a ``lax.cond`` on ``stop`` after the unrolled steps, so
    a record that stops there pays for none of the larger basis the loop carries (under ``vmap``
    the cond becomes a select and the loop runs while any lane goes on).

    Returns:
      (top-k Ritz values descending, Ritz vectors (k, n), residual vectors ``H y − θ y`` (k, n),
      residual norms (k,), steps taken, the (k+1)-th Ritz value or NaN).
    """
    n = start.shape[0]
    dtype = start.dtype
    tiny = jnp.finfo(dtype).tiny

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

    def finish(basis, alphas, betas, size):
        values, coefficients, couplings, following = _ritz(alphas, betas, size, k)
        vectors = coefficients.T @ basis[:alphas.shape[0]]
        residual_vectors = couplings[:, None] * basis[size][None, :]
        return (values, vectors, residual_vectors, jnp.abs(couplings),
                jnp.asarray(size), following)

    first = min_steps
    basis = jnp.zeros((first + 1, n), dtype).at[0].set(start / jnp.linalg.norm(start))
    alphas, betas = jnp.zeros((first,), dtype), jnp.zeros((first,), dtype)
    if first <= UNROLLED_STEPS:
        for j in range(first):
            basis, alphas, betas = step(j, basis, alphas, betas, j + 1)
    else:  # a long cold solve: one loop body to compile instead of `first` copies
        basis, alphas, betas = jax.lax.fori_loop(
            0, first, lambda j, carry: step(j, *carry, first + 1), (basis, alphas, betas))
    if max_steps == first:
        return finish(basis, alphas, betas, first)

    def stops(size, alphas, betas):
        values, _, couplings, _ = _ritz(alphas, betas, size, k)
        return stop(values, jnp.abs(couplings), size)

    def go_on():
        m = max_steps
        grown = jnp.zeros((m + 1, n), dtype).at[:first + 1].set(basis)
        carry = (jnp.asarray(first), grown,
                 jnp.zeros((m,), dtype).at[:first].set(alphas),
                 jnp.zeros((m,), dtype).at[:first].set(betas), jnp.asarray(False))

        def more(carry):
            j, basis_, alphas_, betas_, _ = carry
            basis_, alphas_, betas_ = step(j, basis_, alphas_, betas_, m + 1)
            return j + 1, basis_, alphas_, betas_, stops(j + 1, alphas_, betas_)

        taken, grown, alphas_, betas_, _ = jax.lax.while_loop(
            lambda c: (c[0] < m) & ~c[4], more, carry)
        return finish(grown, alphas_, betas_, taken)

    return jax.lax.cond(stops(first, alphas, betas),
                        lambda: finish(basis, alphas, betas, first), go_on)


def _certified(values, residuals, following, *, tol: float, eig_tol: float, gap_safety: float):
    """Which Ritz pairs may stop: residual ``r <= tol·|θ|``, or the error bound
    ``r² / (|θ| · gap / gap_safety) <= eig_tol``.

    The gap of pair i is its distance to the neighbouring Ritz values (the pair above, and below
    the pair below, or ``following`` for the last tracked pair: an estimate of the next
    eigenvalue, carried from an earlier solve); a pair whose gap is not positive is never
    certified by the bound.

    Args:
      values: Ritz values, descending (k,).
      residuals: their residual norms ‖Hy − θy‖ (k,).
      following: the estimate of the (k+1)-th eigenvalue (+inf: unknown, -inf: none exists).
      tol: relative residual that stops a pair on its own.
      eig_tol: relative eigenvalue-error bound that stops a pair.
      gap_safety: the factor by which the estimated gaps are shrunk before use (>= 1).

    Returns:
      ``(stops (k,) bool, error bounds (k,))``: the bounds are ``r² / (|θ| · gap / gap_safety)``
      (+inf where the gap is not positive).
    """
    neighbours = jnp.concatenate([jnp.asarray([jnp.inf], values.dtype), values,
                                  jnp.asarray(following, values.dtype)[None]])
    gaps = jnp.minimum(neighbours[:-2] - values, values - neighbours[2:])
    scale = jnp.abs(values) * gaps / gap_safety
    bounds = jnp.where(gaps > 0, residuals ** 2 / jnp.where(gaps > 0, scale, 1.0), jnp.inf)
    return (residuals <= tol * jnp.abs(values)) | (bounds <= eig_tol), bounds


@dataclasses.dataclass(frozen=True)
class WarmEigenpairs(WarmObservable):
    """Observable: the top-k Hessian eigenpairs of a loss, warm-started at every record.

    Attributes:
      k: eigenpairs tracked.
      min_steps: the fewest Lanczos steps (= HVPs) per record, started from the previous
        record's eigenvectors.
      max_steps: the most Lanczos steps (= HVPs) per record.
      tol: relative residual at which a record's solve stops.
      eig_tol: relative eigenvalue-error bound (residual² / (|θ| · gap / gap_safety)) at which a
        record's solve stops.
      gap_safety: factor by which the carried gap estimates are shrunk in that bound.
      refresh: records after which a record takes at least k + 1 steps from the tracked and the
        guard vectors (and jitters its start), re-estimating the next eigenvalue below the
        tracked ones.
      cold_steps: Lanczos steps of the cold solve at the initial point.
      loss: ``loss(problem) -> fn(params) -> scalar``; default the problem's full-batch loss.
      jitter: weight of a fixed random direction added to the start vector at refresh records,
        so that an eigenvalue overtaking the tracked ones is found.
    """

    k: int = 1
    min_steps: int = 1
    max_steps: int = 8
    tol: float = 1e-5
    eig_tol: float = 1e-7
    gap_safety: float = 4.0
    refresh: int = 10
    cold_steps: int = 60
    loss: Callable | None = None
    jitter: float = 1e-5

    def _operator(self, params, problem):
        fn = full_batch_loss(problem) if self.loss is None else self.loss(problem)
        return hvp_operator(fn, params)

    def _carried(self, values, vectors, residual_vectors):
        """The start vectors for the next record: the top Ritz vector after one power step for
        k = 1 (``Hy = θy + residual vector``, no extra HVP), the Ritz vectors otherwise."""
        if self.k > 1:
            return vectors
        stepped = values[:1, None] * vectors[:1] + residual_vectors[:1]
        norm = jnp.linalg.norm(stepped, axis=1, keepdims=True)
        usable = jnp.isfinite(norm) & (norm > 0)
        stepped = jnp.where(usable, stepped / jnp.where(usable, norm, 1.0), vectors[:1])
        return jnp.concatenate([stepped, vectors[1:]], axis=0)

    def init(self, params, problem, state):
        matvec, flat = self._operator(params, problem)
        steps = min(self.cold_steps, flat.size)
        pairs = min(self.k + 1, flat.size)  # the tracked pairs and a guard pair below them
        start = jax.random.rademacher(jax.random.key(0), flat.shape, dtype=flat.dtype)
        values, vectors, residual_vectors, residuals, taken, _ = _lanczos_ritz(
            matvec, start, steps, steps, pairs, None)
        if steps > self.k and pairs > self.k:  # the guard: an upper estimate of λ_{k+1}
            following = values[self.k] + residuals[self.k]
        else:  # none exists (whole space spanned: -inf) or unknown (+inf: no gap certified)
            following = jnp.asarray(-jnp.inf if steps >= flat.size else jnp.inf, flat.dtype)
        direction = jax.random.rademacher(jax.random.key(1), flat.shape, dtype=flat.dtype)
        return {"vectors": self._carried(values, vectors, residual_vectors),
                "pending": taken.astype(flat.dtype), "following": following,
                "age": jnp.asarray(0),
                "jitter": self.jitter * jnp.sqrt(float(self.k) / flat.size) * direction}

    def update(self, params, problem, state, carry):
        matvec, flat = self._operator(params, problem)
        k = self.k
        top = min(self.max_steps, flat.size)
        low = min(self.min_steps, top)
        pairs = carry["vectors"].shape[0]
        guarded = pairs > k
        refreshing = carry["age"] >= self.refresh - 1
        # A refresh record starts from the tracked vectors, the guard vector and the jitter and
        # takes at least k + 1 steps: its (k+1)-th Ritz pair re-estimates λ_{k+1}.
        start = (jnp.sum(carry["vectors"][:k], axis=0)
                 + jnp.where(refreshing, 1.0, 0.0)
                 * (jnp.sum(carry["vectors"][k:], axis=0) + carry["jitter"]))
        need = jnp.where(refreshing, min(k + 1, top), low)

        def following_at(values, residuals, size):
            if not guarded:
                return carry["following"]
            fresh = refreshing & (size > k)
            return jnp.where(fresh, values[k] + residuals[k], carry["following"])

        def judged(values, residuals, size):
            return _certified(values[:k], residuals[:k], following_at(values, residuals, size),
                              tol=self.tol, eig_tol=self.eig_tol, gap_safety=self.gap_safety)

        def stop(values, residuals, size):
            return (size >= need) & jnp.all(judged(values, residuals, size)[0])

        values, vectors, residual_vectors, residuals, taken, _ = _lanczos_ritz(
            matvec, start, low, top, pairs, stop)
        bounds = judged(values, residuals, taken)[1]
        renewed = refreshing & (taken > k) if guarded else jnp.asarray(False)
        carried = self._carried(values, vectors, residual_vectors)
        if guarded:  # the guard vector is kept until a refresh record renews it
            carried = carried.at[k:].set(jnp.where(renewed, carried[k:], carry["vectors"][k:]))
        record = {"values": values[:k], "residuals": residuals[:k], "error_estimates": bounds,
                  "matvecs": carry["pending"] + taken.astype(flat.dtype)}
        return record, {"vectors": carried, "pending": jnp.zeros_like(carry["pending"]),
                        "following": following_at(values, residuals, taken),
                        "age": (jnp.where(renewed, 0, carry["age"] + 1) if guarded
                                else jnp.zeros_like(carry["age"])),
                        "jitter": carry["jitter"]}


def warm_top_eigenpairs(k: int = 1, *, min_steps: int | None = None, max_steps: int = 8,
                        tol: float = 1e-5, eig_tol: float = 1e-7, gap_safety: float = 4.0,
                        refresh: int = 10, cold_steps: int = 60, loss: Callable | None = None,
                        jitter: float = 1e-5) -> WarmEigenpairs:
    """An observable that tracks the top-k Hessian eigenpairs along a run, each record's
    Lanczos solve started from the previous record's eigenvectors and stopped once certified.

    Use it in ``observe``: ``st.run(problem, opt, observe={"spectrum":
    st.measure.warm_top_eigenpairs()}, stride=10)`` records ``spectrum.values``,
    ``spectrum.residuals``, ``spectrum.error_estimates`` and ``spectrum.matvecs``.

    A record's solve stops (after at least ``min_steps`` HVPs) when every tracked Ritz pair
    (θ, y) with residual r = ‖Hy − θy‖ has r <= ``tol``·|θ|, or error bound
    r² / (|θ| · gap / ``gap_safety``) <= ``eig_tol``. The bound is Kato–Temple's: a Ritz value
    is within r² / gap of its eigenvalue when no other eigenvalue is nearer than the gap, so
    with the true gap it bounds the relative error. The gap below the last tracked pair is an
    *estimate*: a guard pair (the (k+1)-th) is tracked too, and every ``refresh`` records a
    solve started from the tracked vectors, the guard vector and a small jitter takes at least
    k + 1 steps; λ_{k+1} is then estimated by θ_{k+1} + r_{k+1} (Weinstein: an eigenvalue lies
    within r_{k+1} of θ_{k+1}; it is λ_{k+1} unless the Krylov space missed that eigenvector,
    which the cold solve from a random start and the tracking make unlikely). Between refreshes
    the estimate is carried unchanged while the spectrum moves: hence the ``gap_safety`` factor
    (measured: with the defaults, on the width-100 tanh net near a crossing λ1 − λ2 ≈ 0.035,
    2 of 201 records had an error up to 1.5x their recorded bound, the largest 6e-8 relative;
    ``refresh=1`` renews the estimate at every record: no record exceeded its bound, at two
    or more HVPs per record), and the accuracy against a cold solve measured by
    ``benchmarks/bench_warm_spectrum.py``. With k = 1 a well-tracked record stops after one HVP
    (θ = vᵀHv); the vector carried to the next record is then the Ritz vector after one power
    step, ``Hy`` (free: ``Hy = θy + residual vector``), which damps the other eigenvectors'
    components by λ_i/λ_max (when |λ_min| > λ_max it grows that component instead; the residual
    then rises and the solve takes more steps, which restores the vector).

    Args:
      k: eigenpairs tracked (>= 1).
      min_steps: the fewest Lanczos steps (HVPs) per record (k <= min_steps <= max_steps;
        default k).
      max_steps: the most Lanczos steps (HVPs) per record.
      tol: stop when every tracked pair has ‖Hy − θy‖ <= tol·|θ| (in [0, 1)).
      eig_tol: or when every tracked pair's error bound is at most eig_tol (in [0, 1)).
      gap_safety: the estimated gaps are divided by it in the bound (>= 1).
      refresh: the records between re-estimates of λ_{k+1} (>= 1): every ``refresh``-th record
        takes at least k + 1 steps from the tracked and guard vectors and the jitter.
      cold_steps: Lanczos steps of the cold solve at the initial point (>= k).
      loss: ``loss(problem) -> fn(params) -> scalar`` (default: the full-batch loss).
      jitter: weight of a fixed random direction in the start vector at refresh records, so
        that an eigenvalue overtaking the tracked ones is picked up (in [0, 1)).

    Returns:
      A :class:`WarmEigenpairs` observable.

    Raises:
      ConfigError: a setting out of range.
    """
    k = check_int("k", k, minimum=1)
    min_steps = check_int("min_steps", k if min_steps is None else min_steps, minimum=k)
    max_steps = check_int("max_steps", max_steps, minimum=min_steps)
    cold_steps = check_int("cold_steps", cold_steps, minimum=k)
    refresh = check_int("refresh", refresh, minimum=1)
    for name, value in (("tol", tol), ("eig_tol", eig_tol), ("jitter", jitter)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value < 1.0:
            raise ConfigError(name, value, "a number in [0, 1)")
    if (isinstance(gap_safety, bool) or not isinstance(gap_safety, (int, float))
            or not 1.0 <= gap_safety < float("inf")):
        raise ConfigError("gap_safety", gap_safety, "a finite number >= 1")
    return WarmEigenpairs(k=k, min_steps=min_steps, max_steps=max_steps, tol=float(tol),
                          eig_tol=float(eig_tol), gap_safety=float(gap_safety), refresh=refresh,
                          cold_steps=cold_steps, loss=loss, jitter=float(jitter))


__all__ = ["warm_top_eigenpairs", "WarmEigenpairs"]
