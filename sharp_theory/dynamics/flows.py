"""Flows: the ODEs that predict where full-batch GD, USAM and SAM go, integrated with diffrax.

:func:`flow` mirrors :func:`sharp_theory.dynamics.run`: the same observables at the same step
indices, from an ODE in the parameters whose time is counted in steps. The flows (``kind``):

- ``"gradient"``: gradient flow ``dw/dt = -η ∇L(w)`` (the baseline every prediction is
  compared with; the limit of every rule as η, ρ -> 0).
- ``"central"``: the central flow of the rule's update direction ``G`` (GD: ``∇L``; USAM:
  ``∇L(w + ρ∇L)``; SAM: ``∇L(w + ρ∇L/‖∇L‖)``) at its edge of stability,
  ``dw/dt = -η [G(w) + ½ σ² D²G(w)[u, u]]``, where u is the top Hessian eigenvector and σ² >= 0
  (the variance of the oscillation along u) is zero below the edge and, at the edge, keeps the
  edge quantity μ at 2/η. The edge quantity is the top eigenvalue of the linearized update:
  GD ``μ = λ`` (Cohen et al. 2025), USAM ``μ = λ(1 + ρλ)``, SAM with its normalization frozen
  ``μ = λ(1 + ρλ/‖∇L‖)`` (Long & Bartlett 2024). With G = ∇L, ``D²G[u, u] = ∇λ`` and this is
  exactly the GD central flow with one eigenvalue at the edge. The constraint is held by
  Baumgarte relaxation: at the edge ``dμ/dt = -κ (μ - 2/η)`` with ``κ = EDGE_RELAXATION`` per
  step, so a solver's small overshoot decays instead of accumulating. The flow also records the
  predicted time averages ``flow.time_averaged_loss = L + ½σ²λ`` and
  ``flow.time_averaged_grad_norm_sq = ‖∇L‖² + σ²λ²``, and ``flow.sigma2``, ``flow.edge``
  (η μ / 2: 1 at the edge). GD's central flow can hold up to k eigenvalues at the edge
  together (``edge_eigenvalues=k``): σ² becomes a k × k matrix Σ, the solution of a semidefinite
  complementarity problem (:func:`solve_sdcp`; Cohen et al. 2025).
- ``"slow"``: SAM near a manifold of minimizers (Wen, Ma, Li 2023): gradient flow onto the
  manifold plus the drift ``-(ηρ²/2) P ∇λ`` along it (P projects onto the Hessian's null
  space, the manifold's tangent space at a minimizer).
- ``"slow-corrected"``: the same drift at finite ηλ: ``-(2ηρ²/(2 - ηλ)²) P ∇λ`` (derived in
  papers/flows.md from SAM's 2-cycle across the valley; equal to the limit as ηλ -> 0).

The slow kinds integrate the whole flow in the parameters by default (``valley="full"``: stiff,
Kvaerno5). ``valley="reduced"`` splits it where it is slow: gradient flow until the iterate is
on the valley (``‖∇L‖ <= VALLEY_SWITCH_TOLERANCE · max(1, ‖∇L(w₀)‖)``), a few Newton steps onto
it, then only the drift ``-c P∇λ`` with P the exact projection onto the valley's tangent space
(not stiff: an explicit solver, Tsit5).

All flows use the problem's exact dense Hessian (flows are for the small exact models); the
third derivatives are directional derivatives by ``jax.jvp``/``jax.grad`` of ``uᵀ∇²L u``.

References:
  Cohen, Damian, Talwalkar, Kolter, Lee. Understanding optimization in deep learning with
  central flows. ICLR 2025. Wen, Ma, Li. How does sharpness-aware minimization minimize
  sharpness? ICLR 2023. Long, Bartlett. Sharpness-aware minimization and the edge of stability.
  JMLR 2024. Kidger. On neural differential equations (diffrax), 2021.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

from ..errors import ConfigError, check_int, check_positive
from ..krylov import lanczos, tridiagonal
from ..observables import RunState, WarmObservable
from ..optim.base import Optimizer
from ..optim.sharpness_aware import GradientDescent, SharpnessAware, sam_gradient
from ..problems.base import Problem
from .stall import wait_for
from .trajectory import Trajectory, as_observables, check_key, record_steps, starting_params

FLOW_KINDS = ("gradient", "central", "slow", "slow-corrected")
"""Every flow :func:`flow` knows (which ones an optimizer has: :func:`flow_kinds_for`)."""

EDGE_RELAXATION = 0.5
"""κ, per step: at the edge the central flow relaxes μ to 2/η as ``dμ/dt = -κ(μ - 2/η)``."""

SDCP_TOLERANCE = 1e-12
"""Relative KKT residual at which the several-eigenvalue central flow's k × k semidefinite
complementarity problem counts as solved (:func:`solve_sdcp`)."""

SDCP_MAX_ITERATIONS = 20_000
"""The most accelerated projected-gradient iterations :func:`solve_sdcp` takes."""

NULL_SPACE_TOLERANCE = 1e-4
"""δ/λ_max of the slow flow's tangent projection ``δ²(H² + δ²)⁻¹`` (eigenvalues far below δ
span the tangent space)."""


VALLEYS = ("full", "reduced")
"""How the slow flows are integrated (:func:`flow`'s ``valley``): the whole flow in the parameters,
or gradient flow to the valley and then the drift along it alone."""

VALLEY_SWITCH_TOLERANCE = 1e-6
"""The reduced slow flow leaves gradient flow for the drift along the valley once
``‖∇L(w)‖ <= VALLEY_SWITCH_TOLERANCE · max(1, ‖∇L(w₀)‖)``."""

VALLEY_NEWTON_STEPS = 4
"""Newton steps ``w <- w - H⁺∇L`` (on the non-null eigenspace) that put the switch point on the
valley."""

VALLEY_RETRACTION_TOLERANCE = 1e-10
"""After the Newton steps ``‖∇L‖ <= VALLEY_RETRACTION_TOLERANCE · max(1, ‖∇L(w₀)‖)``, or the
reduced flow refuses the start (not near a valley of minimizers)."""


def flow_kinds_for(optimizer: Optimizer) -> tuple[str, ...]:
    """The flows :func:`flow` has for ``optimizer`` (empty: none).

    Args:
      optimizer: an :class:`sharp_theory.optim.Optimizer`.

    Returns:
      A tuple of names from :data:`FLOW_KINDS`, the default first: full-batch GD and USAM with
      the plain base have ``("central", "gradient")``; full-batch SAM (2-norm ball, no
      m-sharpness) has ``("slow", "slow-corrected", "central", "gradient")``; any other rule,
      base or batching has none.
    """
    rule = optimizer.rule
    if getattr(rule, "base", None) is None or rule.base.kind != "plain":
        return ()
    if optimizer.batch_size is not None:
        return ()
    if isinstance(rule, GradientDescent) and rule.label == "gd":
        return ("central", "gradient")
    if isinstance(rule, SharpnessAware) and rule.p == 2.0 and rule.m is None:
        if rule.normalize:
            return ("slow", "slow-corrected", "central", "gradient")
        return ("central", "gradient")
    return ()


class FlowField:
    """The vector fields of the flows on flat parameters ``w`` (a 1-D array).

    Built by :func:`integrate_flow`; every method is traceable (hyperparameters may be traced,
    so ``jax.vmap`` over an optimizer's hparams sweeps flows in one compiled call).

    Attributes:
      loss: ``loss(w) -> scalar``, the full-batch (or population) loss of the flat parameters.
      lr: η.
      rho: ρ (0 for GD).
      normalize: SAM's normalized ascent (True) or USAM's (False).
      unravel: flat -> parameter pytree.
    """

    def __init__(self, problem: Problem, optimizer: Optimizer, unravel):
        self.unravel = unravel
        self.lr = optimizer.hparams["lr"]
        self.rho = optimizer.hparams.get("rho", jnp.zeros_like(self.lr))
        rule = optimizer.rule
        self.normalize = bool(getattr(rule, "normalize", False))
        self.is_gd = isinstance(rule, GradientDescent)
        if problem.sampler is not None:  # fresh-noise problems: the population loss in closed form
            self.loss = lambda w: problem.population(unravel(w), problem.constants)
        else:
            batch, loss_fn = problem.full_batch(), problem.loss_function()
            self.loss = lambda w: loss_fn(unravel(w), batch)

    def gradient(self, w):
        """∇L(w)."""
        return jax.grad(self.loss)(w)

    def direction(self, w):
        """The rule's update direction G(w): ∇L (GD) or ∇L at the ascent point (USAM, SAM)."""
        if self.is_gd:
            return self.gradient(w)
        flat_loss = lambda params, batch: self.loss(params)
        return sam_gradient(w, flat_loss, None, self.rho, 2.0, self.normalize)[2]

    def hvp(self, w, v):
        """∇²L(w) v."""
        return jax.jvp(self.gradient, (w,), (v,))[1]

    def eigh(self, w):
        """The dense Hessian's eigenvalues (ascending) and eigenvectors, without gradients."""
        hessian = jax.hessian(self.loss)(w)
        values, vectors = jnp.linalg.eigh(0.5 * (hessian + hessian.T))
        return jax.lax.stop_gradient(values), jax.lax.stop_gradient(vectors)

    def edge_quantity(self, w, u):
        """μ(w) with the top eigenvector u held fixed: λ, λ(1 + ρλ) or λ(1 + ρλ/‖∇L‖)."""
        lam = jnp.vdot(u, self.hvp(w, u))
        if self.is_gd:
            return lam
        if self.normalize:
            norm = jnp.maximum(jnp.linalg.norm(self.gradient(w)), jnp.finfo(w.dtype).tiny)
            return lam * (1.0 + self.rho * lam / norm)
        return lam * (1.0 + self.rho * lam)

    def central(self, w):
        """``(dw/dt, σ², μ, λ)`` of the central flow at w."""
        values, vectors = self.eigh(w)
        lam, u = values[-1], vectors[:, -1]
        mu, grad_mu = jax.value_and_grad(self.edge_quantity)(w, u)
        direction = self.direction(w)
        second = jax.jvp(lambda v: jax.jvp(self.direction, (v,), (u,))[1], (w,), (u,))[1]
        edge = 2.0 / self.lr
        curvature = jnp.vdot(grad_mu, second)
        needed = 2.0 * (-jnp.vdot(grad_mu, direction) + EDGE_RELAXATION * (mu - edge) / self.lr)
        safe = jnp.where(curvature > 0, curvature, 1.0)
        sigma2 = jnp.where((mu >= edge) & (curvature > 0), jnp.maximum(needed / safe, 0.0), 0.0)
        velocity = -self.lr * (direction + 0.5 * sigma2 * second)
        return velocity, sigma2, mu, lam

    def slow(self, w, corrected: bool, dense: bool | None = None):
        """dw/dt of SAM's slow flow: gradient flow plus the drift along the minimizer manifold.

        ``dense=True`` takes λ, u and the projection from a dense eigendecomposition;
        ``dense=False`` takes the top eigenpair from :func:`top_eigenpair` (Lanczos and Rayleigh
        quotient iteration, certified, with the eigendecomposition as fallback) and the
        projection from one Cholesky solve: the same vector field to rounding (``tests/test_flows.py`` compares the two).
        The default (None): dense up to :data:`SLOW_DENSE_MAX_PARAMETERS` parameters.
        """
        # The drift is O(ηρ²): the implicit solver's chord iteration uses the Jacobian of the
        # gradient-flow part alone (−η∇²L, Hessian-vector products), not the drift's third and
        # fourth derivatives. Only the iteration's Jacobian changes, not the vector field.
        drift = jax.lax.stop_gradient(self.drift(w, corrected, dense, top_eigenpair, filters=1))
        return -self.lr * self.gradient(w) - drift

    def valley_drift(self, w, corrected: bool, dense: bool | None = None):
        """dw/dt of the reduced slow flow on the valley: the drift ``-c P∇λ`` alone.

        P, the projection onto the Hessian's null space (the valley's tangent space on the
        valley), is the full flow's filter applied twice, ``(δ²(H² + δ²)⁻¹)²`` (δ =
        ``NULL_SPACE_TOLERANCE`` λ_max): 1 on the null space and at most (δ/λ_i)⁴ on a normal
        direction of curvature λ_i, so the drift does not push the iterate off the valley (the
        filter once leaks (δ/λ_i)², which the full flow's gradient-flow part pulls back and the
        reduced flow has not). ``dense=True``: λ, u and P from one eigendecomposition;
        ``dense=False``: λ, u from :func:`valley_top_eigenpair` (power iteration: the Hessian is
        positive semidefinite on a valley of minimizers) and P from one Cholesky factorization
        and two solves (:func:`tangent_projection`). Default (None): dense up to
        :data:`SLOW_DENSE_MAX_PARAMETERS` parameters, as :meth:`slow`.
        """
        return -self.drift(w, corrected, dense, valley_top_eigenpair, filters=2)

    def drift(self, w, corrected: bool, dense: bool | None, eigenpair, filters: int):
        """``c(ηλ) (δ²(H² + δ²)⁻¹)^filters ∇λ``: the slow flows' drift at w (the rate c of
        :func:`drift_rate`, δ = ``NULL_SPACE_TOLERANCE`` λ_max).

        ``dense=True``: λ, u and the filter from one eigendecomposition; ``dense=False``: λ, u
        from ``eigenpair(hessian)`` and the filter by Cholesky solves (:func:`tangent_projection`);
        None: dense up to :data:`SLOW_DENSE_MAX_PARAMETERS` parameters.
        """
        if dense is None:
            dense = w.shape[0] <= SLOW_DENSE_MAX_PARAMETERS
        if dense:
            values, vectors = self.eigh(w)
            lam, u = values[-1], vectors[:, -1]
        else:
            hessian = jax.lax.stop_gradient(jax.hessian(self.loss)(w))
            hessian = 0.5 * (hessian + hessian.T)
            lam, u = eigenpair(hessian)
        grad_lam = jax.grad(lambda v: jnp.vdot(u, self.hvp(v, u)))(w)
        # δ²(H² + δ²)⁻¹ with δ = tolerance·λ_max: the projection onto the null space at a
        # minimizer, and smooth in w off it (a hard cut-off flickers as eigenvalues cross it).
        delta2 = (NULL_SPACE_TOLERANCE * lam) ** 2
        if dense:
            tangent = (delta2 / (values**2 + delta2)) ** filters
            projected = vectors @ (tangent * (vectors.T @ grad_lam))
        else:
            projected = tangent_projection(hessian, grad_lam, delta2, repeat=filters)
        return drift_rate(self.lr, self.rho, lam, corrected) * projected

    def onto_valley(self, w):
        """``VALLEY_NEWTON_STEPS`` Newton steps ``w <- w - H⁺∇L`` (H⁺ on the eigenvalues above δ).

        H⁺ is ``λ_i/(λ_i² + δ²)`` in the eigenbasis: along a normal direction (λ_i ≫ δ) the step
        removes the offset, along a tangent one (λ_i ≪ δ) it moves w by a fraction (λ_i/δ)² of
        that direction's gradient component over λ_i, ≈ 0. So near a valley of minimizers it
        converges quadratically to the point of the valley below w.
        """
        def newton(_, v):
            values, vectors = self.eigh(v)
            delta2 = (NULL_SPACE_TOLERANCE * values[-1]) ** 2
            inverse = values / (values**2 + delta2)
            return v - vectors @ (inverse * (vectors.T @ self.gradient(v)))

        return jax.lax.fori_loop(0, VALLEY_NEWTON_STEPS, newton, w)

    def central_several(self, w, k: int):
        """``(dw/dt, Σ, λ)`` of the GD central flow with up to k eigenvalues at the edge.

        Σ (k × k, positive semidefinite, in the basis of the top k eigenvectors ``u_i``) solves the
        semidefinite complementarity problem of :func:`solve_sdcp` with ``A_ij = ⟨∇H_ij, ∇L⟩ −
        κ(λ_i − 2/η)δ_ij/η`` and ``B[Σ]_ij = ½ Σ_kl ⟨∇H_ij, ∇H_kl⟩ Σ_kl``, where
        ``H_ij(w) = u_iᵀ∇²L(w)u_j`` (``∇H_ij = ∇³L[u_i, u_j]``), restricted to the eigenvalues at
        or above the edge; ``dw/dt = −η(∇L + ½ Σ_ij Σ_ij ∇H_ij)``. λ: the top k eigenvalues,
        descending.
        """
        values, vectors = self.eigh(w)
        lams, us = values[::-1][:k], vectors[:, ::-1][:, :k]
        edge = 2.0 / self.lr

        def third(u_i, u_j):  # ∇_w (u_iᵀ ∇²L(w) u_j)
            return jax.grad(lambda v: jnp.vdot(u_i, self.hvp(v, u_j)))(w)

        rows = jnp.repeat(jnp.arange(k), k)
        cols = jnp.tile(jnp.arange(k), k)
        derivatives = jax.vmap(third)(us.T[rows], us.T[cols]).reshape(k, k, -1)
        derivatives = 0.5 * (derivatives + jnp.swapaxes(derivatives, 0, 1))
        gradient = self.gradient(w)
        progressive = jnp.einsum("ijn,n->ij", derivatives, gradient)
        relaxation = EDGE_RELAXATION * (lams - edge) / self.lr
        linear = progressive - jnp.diag(relaxation)
        gram = 0.5 * jnp.einsum("ijn,kln->ijkl", derivatives, derivatives)
        active = lams >= edge
        sigma = solve_sdcp(linear, gram, active)
        velocity = -self.lr * (gradient + 0.5 * jnp.einsum("ij,ijn->n", sigma, derivatives))
        return velocity, sigma, lams

    def velocity(self, w, kind: str, edge_eigenvalues: int = 1):
        """dw/dt of the flow ``kind`` at w (``edge_eigenvalues``: the GD central flow's k)."""
        if kind == "gradient":
            return -self.lr * self.gradient(w)
        if kind == "central":
            if edge_eigenvalues > 1:
                return self.central_several(w, edge_eigenvalues)[0]
            return self.central(w)[0]
        return self.slow(w, corrected=kind == "slow-corrected")


SLOW_DENSE_MAX_PARAMETERS = 24
"""The slow flows use a dense ``eigh`` per evaluation up to this many parameters, and above it
a certified Lanczos + Rayleigh quotient iteration plus a Cholesky solve (:func:`top_eigenpair`),
which is faster there (40 parameters: the whole flow 1.4-1.5× faster than with ``eigh``;
benchmarks/README.md) and keeps small problems on the dense path (no extra compiled code)."""

TOP_EIGENPAIR_TOLERANCE = 1e-12
"""Relative residual ``‖Hx − θx‖ / |θ|`` at which :func:`top_eigenpair`'s refinement stops."""

TOP_EIGENPAIR_KRYLOV_DIMENSION = 12
"""The dimension of the Krylov space from which :func:`top_eigenpair` takes its first Ritz pair."""

TOP_EIGENPAIR_MAX_ITERATIONS = 20
"""The most Rayleigh quotient iterations :func:`top_eigenpair` takes before it falls back to
``eigh``."""


def top_eigenpair(hessian, *, tolerance: float = TOP_EIGENPAIR_TOLERANCE,
                  krylov_dimension: int = TOP_EIGENPAIR_KRYLOV_DIMENSION,
                  max_iterations: int = TOP_EIGENPAIR_MAX_ITERATIONS, fallback: bool = True):
    """The largest eigenvalue of a symmetric matrix and its unit eigenvector, without ``eigh``.

    Lanczos (:func:`sharp_theory.krylov.lanczos`, full reorthogonalization) from a fixed generic
    start builds a Krylov space of dimension ``krylov_dimension``; its top Ritz pair starts a
    Rayleigh quotient iteration (one LU solve with ``θI − H`` per iteration, cubic convergence)
    that stops when the relative residual ``‖Hx − θx‖/|θ|`` is at most ``tolerance``. Unlike
    power iteration, the Ritz pair
    does not slow down when the most negative eigenvalue is close in size to the top one. The
    result is then certified to be the *largest* eigenvalue (the iteration converges to the
    eigenvalue nearest its start, which need not be the top one) by a Cholesky factorization of
    ``θ(1 + 1e-9)I − H`` + a tiny shift, which exists iff every eigenvalue lies below.
    Unconverged, negative or uncertified: the dense ``eigh`` answer instead (under ``jax.vmap``
    both branches run).

    Args:
      hessian: a symmetric (n, n) array.
      tolerance: the relative residual at which the iteration stops (> 0).
      krylov_dimension: the Krylov space's dimension (static; at most n is used).
      max_iterations: the most Rayleigh quotient iterations (static).
      fallback: True: the ``eigh`` answer where the iteration is not certified; False: NaNs
        there instead (static; tests check the iterative path alone with it).

    Returns:
      ``(λ_max, u)``: a scalar and a unit (n,) vector.

    References:
      Parlett, *The Symmetric Eigenvalue Problem* (1998), ch. 4 (Rayleigh quotient iteration)
      and ch. 13 (Lanczos).
    """
    n, dtype = hessian.shape[0], hessian.dtype
    identity, tiny = jnp.eye(n, dtype=dtype), jnp.finfo(dtype).tiny
    dimension = min(krylov_dimension, n)
    start = jnp.cos(1.0 + 2.0 * jnp.arange(n, dtype=dtype))  # generic, fixed
    krylov_space = lanczos(lambda v: hessian @ v, start, dimension)
    ritz = jnp.linalg.eigh(tridiagonal(krylov_space))[1][:, -1]
    first = krylov_space.basis.T @ ritz
    first = first / jnp.maximum(jnp.linalg.norm(first), tiny)

    def residual(x):
        hx = hessian @ x
        theta = jnp.vdot(x, hx)
        return theta, jnp.linalg.norm(hx - theta * x) / jnp.maximum(jnp.abs(theta), tiny)

    def keep_going(state):
        x, iteration = state
        return (iteration < max_iterations) & (residual(x)[1] > tolerance)

    def iterate(state):
        x, iteration = state
        y = jnp.linalg.solve(residual(x)[0] * identity - hessian, x)
        return y / jnp.maximum(jnp.linalg.norm(y), tiny), iteration + 1

    x, _ = jax.lax.while_loop(keep_going, iterate, (first, jnp.asarray(0)))
    theta, relative = residual(x)
    return _certified_top_eigenpair(hessian, theta, x, relative <= tolerance, fallback)


def _certified_top_eigenpair(hessian, theta, x, converged, fallback: bool):
    """``(θ, x)`` where it is certified as the largest eigenpair of ``hessian``, else the dense
    ``eigh`` answer (``fallback``) or NaNs. Certified: converged, θ > 0 and a Cholesky
    factorization of ``θ(1 + 1e-9)I − H`` (+ eps·‖H‖) exists, so no eigenvalue lies above θ."""
    identity = jnp.eye(hessian.shape[0], dtype=hessian.dtype)
    margin = theta * (1.0 + 1e-9) + jnp.finfo(hessian.dtype).eps * jnp.linalg.norm(hessian)
    below = jnp.linalg.cholesky(margin * identity - hessian)
    certified = converged & (theta > 0) & jnp.all(jnp.isfinite(below))
    if not fallback:
        return jnp.where(certified, theta, jnp.nan), jnp.where(certified, x, jnp.nan)

    def dense(_):
        values, vectors = jnp.linalg.eigh(hessian)
        return values[-1], vectors[:, -1]

    return jax.lax.cond(certified, lambda _: (theta, x), dense, None)


def tangent_projection(hessian, vector, delta2, repeat: int = 1):
    """``δ²(H² + δ²I)⁻¹ v`` by one Cholesky solve: the slow flow's projection onto the null space.

    Args:
      hessian: a symmetric (n, n) array H.
      vector: v, an (n,) array.
      delta2: δ² > 0 (the slow flow uses δ = 1e-4 λ_max).
      repeat: apply the filter this many times (static, >= 1; the reduced slow flow uses 2),
        with one factorization.

    Returns:
      The (n,) array ``(δ²(H² + δ²I)⁻¹)^repeat v`` (equal to ``Σ_i (δ²/(λ_i² + δ²))^repeat
      u_i u_iᵀ v`` over H's eigenpairs, without computing them).
    """
    shifted = hessian @ hessian + delta2 * jnp.eye(hessian.shape[0], dtype=hessian.dtype)
    factor = jax.scipy.linalg.cho_factor(shifted, lower=True)
    for _ in range(repeat):
        vector = delta2 * jax.scipy.linalg.cho_solve(factor, vector)
    return vector


VALLEY_POWER_ITERATIONS = 2_000
"""The most power iterations :func:`valley_top_eigenpair` takes before it falls back to ``eigh``."""


def valley_top_eigenpair(hessian, *, tolerance: float = TOP_EIGENPAIR_TOLERANCE,
                         max_iterations: int = VALLEY_POWER_ITERATIONS, fallback: bool = True):
    """The largest eigenpair of a positive semidefinite matrix by power iteration, certified.

    On a valley of minimizers the Hessian is positive semidefinite, so power iteration (one
    matrix-vector product per iteration, from a fixed generic start) converges to the largest
    eigenvalue, at the rate λ₂/λ₁ (71 iterations to relative residual 1e-12 on the benchmark's
    diagonal net, λ₂/λ₁ = 0.68): cheaper there than :func:`top_eigenpair`'s Lanczos and LU
    solves or a dense ``eigh``. The result is certified as the largest eigenvalue by a Cholesky
    factorization of ``θ(1 + 1e-9)I − H`` (+ a tiny shift), as in :func:`top_eigenpair`;
    unconverged, non-positive or uncertified, it is the dense ``eigh`` answer instead (under
    ``jax.vmap`` both branches run).

    Args:
      hessian: a symmetric (n, n) array.
      tolerance: the relative residual ``‖Hx − θx‖/|θ|`` at which the iteration stops (> 0).
      max_iterations: the most iterations (static).
      fallback: True: the ``eigh`` answer where the iteration is not certified; False: NaNs
        there instead (static; the tests check the iteration alone with it).

    Returns:
      ``(λ_max, u)``: a scalar and a unit (n,) vector.

    References:
      Parlett, *The Symmetric Eigenvalue Problem* (1998), ch. 4 (power iteration).
    """
    n, dtype = hessian.shape[0], hessian.dtype
    tiny = jnp.finfo(dtype).tiny
    start = jnp.cos(1.0 + 2.0 * jnp.arange(n, dtype=dtype))  # generic, fixed
    start = start / jnp.linalg.norm(start)

    def residual(x, hx):  # (θ, ‖Hx − θx‖/|θ|) from x and Hx: one product per iteration
        theta = jnp.vdot(x, hx)
        return theta, jnp.linalg.norm(hx - theta * x) / jnp.maximum(jnp.abs(theta), tiny)

    def keep_going(state):
        x, hx, iteration = state
        return (iteration < max_iterations) & (residual(x, hx)[1] > tolerance)

    def iterate(state):
        _, hx, iteration = state
        x = hx / jnp.maximum(jnp.linalg.norm(hx), tiny)
        return x, hessian @ x, iteration + 1

    x, hx, _ = jax.lax.while_loop(keep_going, iterate, (start, hessian @ start, jnp.asarray(0)))
    theta, relative = residual(x, hx)
    return _certified_top_eigenpair(hessian, theta, x, relative <= tolerance, fallback)


def solve_sdcp(linear, operator, active, *, tolerance: float = SDCP_TOLERANCE,
               max_iterations: int = SDCP_MAX_ITERATIONS):
    """Solve the semidefinite complementarity problem of the central flow with k eigenvalues.

    Finds the k × k symmetric X with ``X ⪰ 0``, ``A + B[X] ⪰ 0`` and ``⟨X, A + B[X]⟩ = 0``,
    with ``X_ij = 0`` unless eigenvalues i and j are both active. B is positive semidefinite (a
    Gram operator), so X minimizes the convex ``½⟨X, B[X]⟩ + ⟨A, X⟩`` over the positive
    semidefinite matrices supported on the active block (the complementarity conditions are that
    problem's optimality conditions); it is solved by accelerated projected gradient (step 1/‖B‖,
    restarted when the objective's gradient turns against the momentum; the projection onto the
    cone clips the eigenvalues of the k × k iterate at 0) until the projected-gradient residual
    ``‖X − Π(X − (A + B[X])/‖B‖)‖ ‖B‖`` is at most ``tolerance · (‖A‖ + tiny)``. With one active
    eigenvalue the first iterate is the closed form ``max(0, −A/B)``.

    Args:
      linear: A, a symmetric (k, k) array.
      operator: B, a (k, k, k, k) array, ``B[X]_ij = Σ_kl operator[i, j, k, l] X_kl``, symmetric
        as a k² × k² matrix and positive semidefinite.
      active: (k,) booleans: which eigenvalues are at the edge.
      tolerance: the relative residual at which to stop (> 0).
      max_iterations: the most iterations (static).

    Returns:
      X, a (k, k) positive semidefinite array (zero outside the active block).

    References:
      Cohen, Damian, Talwalkar, Kolter, Lee 2025 (the complementarity problem of central flows).
    """
    k = linear.shape[0]
    matrix = operator.reshape(k * k, k * k)
    apply = lambda x: (matrix @ x.reshape(-1)).reshape(k, k)
    lipschitz = jnp.linalg.eigvalsh(0.5 * (matrix + matrix.T))[-1]
    step = 1.0 / jnp.maximum(lipschitz, jnp.finfo(linear.dtype).tiny)
    support = (active[:, None] & active[None, :]).astype(linear.dtype)
    scale = jnp.linalg.norm(linear) + jnp.finfo(linear.dtype).tiny

    def project(y):
        y = support * 0.5 * (y + y.T)
        values, vectors = jnp.linalg.eigh(y)
        return (vectors * jnp.maximum(values, 0.0)[None, :]) @ vectors.T

    def residual(x):
        return jnp.linalg.norm(x - project(x - step * (linear + apply(x)))) / step

    def keep_going(state):
        x, _, _, iteration = state
        return (iteration < max_iterations) & (residual(x) > tolerance * scale)

    def iterate(state):
        x, y, momentum, iteration = state
        x_new = project(y - step * (linear + apply(y)))
        momentum_new = 0.5 * (1.0 + jnp.sqrt(1.0 + 4.0 * momentum**2))
        restart = jnp.vdot(linear + apply(y), x_new - x) > 0
        y_new = x_new + ((momentum - 1.0) / momentum_new) * (x_new - x)
        return (x_new, jnp.where(restart, x_new, y_new), jnp.where(restart, 1.0, momentum_new),
                iteration + 1)

    zero = jnp.zeros_like(linear)
    one = jnp.ones((), linear.dtype)
    x, _, _, _ = jax.lax.while_loop(keep_going, iterate, (zero, zero, one, jnp.asarray(0)))
    return x


def drift_rate(lr, rho, lam, corrected: bool):
    """The coefficient c of SAM's drift ``-c P∇λ`` along the valley, per step.

    Args:
      lr: η.
      rho: ρ.
      lam: λ_max at the valley point.
      corrected: the finite-ηλ rate ``2ηρ²/(2 - ηλ)²`` (True) or Wen–Ma–Li's limit ``ηρ²/2``.

    Returns:
      c (an array).

    References:
      Wen, Ma, Li 2023 (the limit); papers/flows.md (the finite-ηλ rate).
    """
    if corrected:
        return 2.0 * lr * rho**2 / (2.0 - lr * lam) ** 2
    return 0.5 * lr * rho**2 * jnp.ones_like(lam)


def integrate_flow(problem: Problem, optimizer: Optimizer, params0, *, steps: int, stride: int,
                   observables, kind: str, rtol: float = 1e-8, atol: float = 1e-10,
                   max_solver_steps: int = 100_000, edge_eigenvalues: int = 1,
                   valley: str = "full"):
    """The traceable body of :func:`flow` (``jax.vmap`` it over hyperparameters for a sweep).

    Args:
      problem: the Problem.
      optimizer: the Optimizer whose flow is integrated (its hyperparameters may be traced).
      params0: the initial parameters.
      steps: the horizon in steps (static).
      stride: the recording interval (static).
      observables: a tuple of :class:`sharp_theory.dynamics.Observable`.
      kind: one of :data:`FLOW_KINDS` (static).
      rtol: the solver's relative tolerance.
      atol: the solver's absolute tolerance.
      max_solver_steps: the most solver steps (static).
      edge_eigenvalues: k, the most eigenvalues the GD central flow holds at the edge (static;
        1: the closed form, above 1: :func:`solve_sdcp`).
      valley: the slow flows' integration, one of :data:`VALLEYS` (static; see :func:`flow`).

    Returns:
      ``(params, observed, diverged_at, stats)``: the last finite recorded parameters, dict name
      -> records, the first record step at which the solution stopped (-1 if none), and the
      solver's statistics (``num_steps``, ``num_accepted_steps``, ``num_rejected_steps``; with
      ``valley="reduced"`` also ``valley_step``, the time at which the drift along the valley
      took over, -1 if gradient flow did not reach a valley, and ``valley_gradient_norm``,
      ‖∇L‖ after the Newton steps onto it; records after a failed switch are NaN).
    """
    import diffrax

    flat0, unravel = ravel_pytree(params0)
    field = FlowField(problem, optimizer, unravel)
    times = jnp.asarray(record_steps(steps, stride), flat0.dtype)
    term = diffrax.ODETerm(lambda t, w, args: field.velocity(w, kind, edge_eigenvalues))
    # The slow flows are stiff (gradient flow onto the valley at rate ηλ per step, a drift along it
    # at rate ~ηρ²): an implicit solver takes steps of the drift's time scale (on the OP toy,
    # 3 000 SAM steps: 68 solver steps, against 417 for Tsit5). Its chord iteration uses the
    # Jacobian −η∇²L of the gradient-flow part (FlowField.slow); with the drift's own Jacobian
    # (third and fourth derivatives through an eigendecomposition) diffrax's default chord
    # iteration rejected 58% of its steps (6 246 solver steps).
    if kind.startswith("slow") and valley == "reduced":
        path, stats = _reduced_slow_path(field, flat0, times, steps,
                                         kind == "slow-corrected", rtol, atol, max_solver_steps)
    else:
        if kind.startswith("slow"):
            import optimistix

            solver = diffrax.Kvaerno5(root_finder=optimistix.Chord(rtol=rtol, atol=atol))
        else:
            solver = diffrax.Tsit5()
        solution = diffrax.diffeqsolve(
            term, solver, t0=0.0, t1=float(steps), dt0=None, y0=flat0,
            saveat=diffrax.SaveAt(ts=times),
            stepsize_controller=diffrax.PIDController(rtol=rtol, atol=atol),
            max_steps=max_solver_steps, throw=False)
        path = solution.ys
        stats = {name: jnp.asarray(solution.stats[name]) for name in
                 ("num_steps", "num_accepted_steps", "num_rejected_steps")}
    finite = jnp.all(jnp.isfinite(path), axis=1)
    ok = jnp.cumprod(finite.astype(jnp.int32)).astype(bool)
    n_ok = jnp.sum(ok)
    diverged_at = jnp.where(n_ok < times.shape[0], times[jnp.minimum(n_ok, times.shape[0] - 1)],
                            -1).astype(jnp.int32)
    last = path[jnp.maximum(n_ok - 1, 0)]
    safe_path = jnp.where(ok[:, None], path, last[None, :])
    hparams, opt_state = optimizer.hparams, optimizer.init(params0)

    def observe(warm, record):
        w, time, good = record
        params = unravel(w)
        state = RunState(hparams=hparams, optimizer_state=opt_state, step=time.astype(jnp.int32))
        values, new_warm = {}, {}
        for obs in observables:
            if isinstance(obs.fn, WarmObservable):
                value, new_warm[obs.name] = obs.fn.update(params, problem, state, warm[obs.name])
            else:
                value = obs(params, problem, state)
            if isinstance(value, dict):
                values.update({f"{obs.name}.{k}": jnp.asarray(v) for k, v in value.items()})
            else:
                values[obs.name] = jnp.asarray(value)
        if kind == "central" and edge_eigenvalues > 1:
            _, sigma, lams = field.central_several(w, edge_eigenvalues)
            values["flow.sigma2"] = jnp.trace(sigma)
            values["flow.sigma2_matrix"] = sigma
            values["flow.edge"] = 0.5 * field.lr * lams[0]
            values["flow.time_averaged_loss"] = field.loss(w) + 0.5 * jnp.vdot(jnp.diag(sigma),
                                                                               lams)
            values["flow.time_averaged_grad_norm_sq"] = (jnp.sum(field.gradient(w) ** 2)
                                                         + jnp.vdot(jnp.diag(sigma), lams**2))
        elif kind == "central":
            _, sigma2, mu, lam = field.central(w)
            values["flow.sigma2"] = sigma2
            values["flow.edge"] = 0.5 * field.lr * mu
            values["flow.time_averaged_loss"] = field.loss(w) + 0.5 * sigma2 * lam
            values["flow.time_averaged_grad_norm_sq"] = (jnp.sum(field.gradient(w) ** 2)
                                                         + sigma2 * lam**2)
        return new_warm, {name: jnp.where(good, v, jnp.nan) for name, v in values.items()}

    state0 = RunState(hparams=hparams, optimizer_state=opt_state, step=jnp.asarray(0))
    warm = {obs.name: obs.fn.init(params0, problem, state0) for obs in observables
            if isinstance(obs.fn, WarmObservable)}
    _, observed = jax.lax.scan(observe, warm, (safe_path, times, ok))
    return unravel(last), observed, diverged_at, stats


def _reduced_slow_path(field: FlowField, flat0, times, steps: int, corrected: bool, rtol, atol,
                       max_solver_steps: int):
    """The reduced slow flow's records: gradient flow to the valley, Newton onto it, the drift.

    Returns ``(path, stats)``: the (records, n) parameters (NaN after a failed switch) and the
    solver statistics of both phases together, with ``valley_step`` and ``valley_gradient_norm``.
    """
    import diffrax

    scale = jnp.maximum(1.0, jnp.linalg.norm(field.gradient(flat0)))
    controller = diffrax.PIDController(rtol=rtol, atol=atol)
    # Phase 1: gradient flow until ‖∇L‖ <= VALLEY_SWITCH_TOLERANCE · scale (an event ends it).
    on_valley = diffrax.Event(lambda t, w, args, **kwargs: jnp.linalg.norm(field.gradient(w))
                              <= VALLEY_SWITCH_TOLERANCE * scale)
    fitting = diffrax.diffeqsolve(
        diffrax.ODETerm(lambda t, w, args: -field.lr * field.gradient(w)), diffrax.Tsit5(),
        t0=0.0, t1=float(steps), dt0=None, y0=flat0,
        saveat=diffrax.SaveAt(subs=[diffrax.SubSaveAt(ts=times), diffrax.SubSaveAt(t1=True)]),
        stepsize_controller=controller, max_steps=max_solver_steps, throw=False, event=on_valley)
    fitted_path, switch, fitted = fitting.ys[0], fitting.ts[1][-1], fitting.ys[1][-1]
    reached = (jnp.isfinite(switch) & (switch < steps)
               & (jnp.linalg.norm(field.gradient(fitted)) <= VALLEY_SWITCH_TOLERANCE * scale))
    # Phase 2: Newton onto the valley, then the drift alone. Its clock starts at 0, not at the
    # switch: the fitting is fast against the drift (two time scales), and the full flow and SAM
    # drift while they fit; records before the switch are phase 1's.
    start = field.onto_valley(jnp.where(reached, fitted, flat0))
    residual = jnp.linalg.norm(field.gradient(start))
    switched = reached & (residual <= VALLEY_RETRACTION_TOLERANCE * scale)
    t_switch = jnp.where(reached, switch, 0.0)
    drifting = diffrax.diffeqsolve(
        diffrax.ODETerm(lambda t, w, args: field.valley_drift(w, corrected)), diffrax.Tsit5(),
        t0=0.0, t1=float(steps), dt0=None, y0=start,
        saveat=diffrax.SaveAt(ts=times), stepsize_controller=controller,
        max_steps=max_solver_steps, throw=False)
    before = times < t_switch
    after = jnp.where(switched, drifting.ys, jnp.nan)
    path = jnp.where(before[:, None], fitted_path, after)
    stats = {name: jnp.asarray(fitting.stats[name]) + jnp.asarray(drifting.stats[name])
             for name in ("num_steps", "num_accepted_steps", "num_rejected_steps")}
    stats["valley_step"] = jnp.where(switched, t_switch, -1.0)
    stats["valley_gradient_norm"] = residual
    return path, stats


_integrate_jit = jax.jit(integrate_flow, static_argnames=(
    "steps", "stride", "observables", "kind", "max_solver_steps", "edge_eigenvalues", "valley"))


def flow(problem: Problem, optimizer: Optimizer, *, steps: int, key, observe=None,
         stride: int = 1, params0=None, init=None, kind: str | None = None, rtol: float = 1e-8,
         atol: float = 1e-10, max_solver_steps: int = 100_000,
         edge_eigenvalues: int = 1, valley: str = "full") -> Trajectory:
    """Predict a full-batch run of ``optimizer`` with its flow: a Trajectory to put beside ``run``'s.

    The arguments mean what they mean in :func:`sharp_theory.dynamics.run` (the same records at
    the same step indices; time is counted in steps). ``key`` only seeds ``init``: a flow is
    deterministic. Fresh-noise problems are followed on their closed-form population loss.

    Args:
      problem: a Problem (``st.problems.*``) with a finite data set or a population loss.
      optimizer: full-batch ``st.optim.gd``, ``usam`` or ``sam`` (2-norm, plain base).
      steps: the horizon in steps (>= 1).
      key: a JAX PRNG key (for ``init``; the flow itself draws nothing).
      observe: dict name -> ``fn(params, problem, state)`` as for ``run``.
      stride: record every ``stride`` steps (>= 1).
      params0: the initial parameters (default ``problem.params0``).
      init: ``fn(key) -> params``, drawn from ``init_key(key)`` as ``run`` does.
      kind: which flow (:data:`FLOW_KINDS`; default the first of :func:`flow_kinds_for`:
        "central" for GD and USAM, "slow" for SAM).
      rtol: the adaptive solver's relative tolerance (> 0).
      atol: its absolute tolerance (> 0).
      max_solver_steps: the most solver steps (>= 1); a flow that needs more stops, and its
        ``diverged_at`` names the first record it did not reach.
      edge_eigenvalues: k >= 1, the most eigenvalues GD's central flow holds at the edge
        together (at most the number of parameters). With k = 1 σ² has its closed form; with
        k > 1 the k × k matrix Σ (the covariance of the oscillation in the top-k eigenbasis)
        solves the semidefinite complementarity problem of Cohen et al. (:func:`solve_sdcp`),
        recorded as ``flow.sigma2_matrix`` (``flow.sigma2`` is its trace). GD's central flow only:
        USAM's and SAM's several-eigenvalue flows are not derived.
      valley: how the slow kinds are integrated (:data:`VALLEYS`). ``"full"`` (default): the
        whole flow in the parameters, gradient flow onto the valley and the drift along it
        together (stiff; Kvaerno5). ``"reduced"``: gradient flow (Tsit5) until
        ``‖∇L‖ <= VALLEY_SWITCH_TOLERANCE · max(1, ‖∇L(w₀)‖)``, ``VALLEY_NEWTON_STEPS`` Newton
        steps onto the valley, then only the drift ``-c P∇λ`` with the same c as the full flow
        and P the projection onto the valley's tangent space (not stiff; Tsit5): the same
        trajectory on the valley at a fraction of the cost; the drift that the full flow adds
        during the fitting phase is left out. The other kinds take ``"full"`` only.

    Returns:
      A :class:`Trajectory`: ``params`` (the last finite record), ``observed`` (with the central
      flow's ``flow.*`` predictions added), ``steps``, ``diverged_at``, ``state`` (the solver's
      statistics), ``optimizer`` (e.g. "gd central flow"). A flow does not count gradient
      evaluations: ``grad_evals`` and ``hvp_evals`` are NaN.

    Raises:
      ConfigError: an optimizer without a flow (one line naming those that have one), an
        unknown ``kind`` or ``valley``, or any argument ``run`` would refuse, before any work;
        with ``valley="reduced"``, after the integration, a start from which gradient flow does
        not reach a valley of minimizers within ``steps`` (or the Newton steps do not land on
        it).

    References:
      Cohen, Damian, Talwalkar, Kolter, Lee 2025 (central flows); Wen, Ma, Li 2023 (SAM's slow
      flow); Long, Bartlett 2024 (SAM's edge).

    Examples:
      >>> import jax
      >>> import sharp_theory as st
      >>> problem = st.problems.op_toy()
      >>> traj = st.dynamics.flow(problem, st.optim.gd(lr=0.05), steps=100, stride=50,
      ...                         key=jax.random.key(0), kind="gradient")
      >>> traj.steps.tolist(), traj.optimizer
      ([0, 50, 100], 'gd gradient flow')
      >>> st.dynamics.flow(problem, st.optim.sgd(lr=0.05), steps=10, key=jax.random.key(0))
      Traceback (most recent call last):
      ...
      sharp_theory.errors.ConfigError: invalid optimizer='sgd': expected full-batch gd, usam or sam (2-norm ball, plain base, no m-sharpness): no flow predicts this optimizer
    """
    if not isinstance(problem, Problem):
        raise ConfigError("problem", type(problem).__name__, "a sharp_theory Problem")
    if not isinstance(optimizer, Optimizer):
        raise ConfigError("optimizer", type(optimizer).__name__, "a sharp_theory Optimizer")
    kinds = flow_kinds_for(optimizer)
    if not kinds:
        raise ConfigError("optimizer", optimizer.name,
                          "full-batch gd, usam or sam (2-norm ball, plain base, no m-sharpness): "
                          "no flow predicts this optimizer")
    if kind is None:
        kind = kinds[0]
    if kind not in kinds:
        raise ConfigError("kind", kind, f"one of {', '.join(kinds)} for {optimizer.name}")
    if problem.sampler is not None and problem.population is None:
        raise ConfigError("problem", problem.name,
                          "a problem with a finite data set or a closed-form population loss")
    steps = check_int("steps", steps, minimum=1)
    stride = check_int("stride", stride, minimum=1)
    max_solver_steps = check_int("max_solver_steps", max_solver_steps, minimum=1)
    check_positive("rtol", rtol)
    check_positive("atol", atol)
    edge_eigenvalues = check_int("edge_eigenvalues", edge_eigenvalues, minimum=1)
    if edge_eigenvalues > 1 and (kind != "central"
                                 or not isinstance(optimizer.rule, GradientDescent)):
        raise ConfigError("edge_eigenvalues", edge_eigenvalues,
                          f"1 for the {optimizer.name} {kind} flow (several eigenvalues at the "
                          "edge: gd's central flow only)")
    if valley not in VALLEYS:
        raise ConfigError("valley", valley, f"one of {', '.join(VALLEYS)}")
    if valley == "reduced" and not kind.startswith("slow"):
        raise ConfigError("valley", valley, f"'full' for the {optimizer.name} {kind} flow (a "
                          "reduced flow along the valley: the slow kinds only)")
    check_key(key)
    observables = as_observables(observe)
    params0 = starting_params(problem, params0, init, key)
    n_params = int(ravel_pytree(params0)[0].shape[0])
    check_int("edge_eigenvalues", edge_eigenvalues, minimum=1, maximum=n_params)
    params, observed, diverged_at, stats = wait_for(_integrate_jit(
        problem, optimizer, params0, steps=steps, stride=stride, observables=observables,
        kind=kind, rtol=rtol, atol=atol, max_solver_steps=max_solver_steps,
        edge_eigenvalues=edge_eigenvalues, valley=valley), "st.flow")
    if valley == "reduced" and float(stats["valley_step"]) < 0:
        raise ConfigError("valley", valley, f"'full' for this start: gradient flow did not reach "
                          f"a valley of minimizers by step {steps} (‖∇L‖ <= "
                          f"{VALLEY_SWITCH_TOLERANCE:g}·max(1, ‖∇L(w₀)‖), then Newton to "
                          f"{VALLEY_RETRACTION_TOLERANCE:g}; reached "
                          f"{float(stats['valley_gradient_norm']):.3g})")
    return Trajectory(params=params, observed=jax.tree_util.tree_map(np.asarray, observed),
                      steps=record_steps(steps, stride), diverged_at=np.asarray(diverged_at),
                      grad_evals=np.asarray(np.nan), hvp_evals=np.asarray(np.nan),
                      state=jax.tree_util.tree_map(np.asarray, stats),
                      optimizer=f"{optimizer.name} {kind}{' reduced' if valley == 'reduced' else ''} flow",
                      problem=problem.name)
