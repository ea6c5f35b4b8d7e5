"""Implicit-bias measures for diagonal linear networks: effective initialization, norms, and the
hyperbolic-entropy potential ψ_c with its minimizer over the interpolating set.

For ``β = u⊙v`` started at ``u = a·1, v = 0``, gradient flow keeps ``c = u² − v²`` fixed (per
coordinate) and converges to ``argmin {ψ_c(β) : Xβ = y}`` with

    ψ_c(β) = Σ_i [ (β_i/2)·asinh(2β_i/c_i) − ¼·√(c_i² + 4β_i²) + c_i/4 ],

the hyperbolic entropy of Woodworth et al. (their φ_α with α_i = √c_i / 2, up to a factor 2).
Small c gives the minimum-ℓ1 interpolator (sparse), large c the minimum-ℓ2 one. Discrete GD and
SAM shrink c; the interpolator they reach is close to argmin ψ_{c_T} for the final c_T.

The minimizer is computed through the dual: the KKT conditions ``∇ψ_c(β) = ½·asinh(2β/c) = Xᵀν``
give ``β(ν) = (c/2)·sinh(2Xᵀν)``; ν minimizes the smooth convex dual
``F(ν) = Σ_i (c_i/4)(cosh(2(Xᵀν)_i) − 1) − νᵀy``, whose gradient is ``Xβ(ν) − y``. We solve it by
damped Newton (Armijo backtracking, with each step capped so that no coordinate of Xᵀν moves by
more than ``max_step``), which is robust for c from 1e-12 to 1e4.

References:
  Woodworth, Gunasekar, Lee, Moroshko, Savarese, Golan, Soudry, Srebro. Kernel and Rich Regimes in
  Overparametrized Models. COLT 2020, Thm 1 (the potential).
  Andriushchenko, Flammarion. Towards Understanding Sharpness-Aware Minimization. ICML 2022, Sec. 4
  (SAM shrinks the effective initialization of diagonal linear networks).
"""
from __future__ import annotations

import dataclasses

import jax.numpy as jnp
import numpy as np
import scipy.linalg
import scipy.optimize

from ..errors import ConfigError, check_choice


def effective_initialization(params, parametrization: str = "uv"):
    """Per-coordinate effective initialization c.

    Args:
      params: ``{"u", "v"}``.
      parametrization: "uv" (β = u⊙v: ``c = u² − v²``) or "uu-vv" (β = u² − v²: ``c = 4u⊙v``);
        in both cases c is conserved by gradient flow and β(t) = (c/2)·sinh(2Xᵀν(t)) from β = 0.

    Returns:
      An array of shape (d,).

    References:
      Woodworth et al. 2020, Thm 1 (c is conserved by gradient flow);
      Andriushchenko & Flammarion 2022, Sec. 4 (SAM shrinks c).
    """
    check_choice("parametrization", parametrization, ("uv", "uu-vv"))
    u, v = params["u"], params["v"]
    if parametrization == "uv":
        return u * u - v * v
    return 4.0 * u * v


def predictor(params, parametrization: str = "uv"):
    """The linear predictor of a diagonal linear network: β = u⊙v ("uv") or u⊙u − v⊙v ("uu-vv").

    Args:
      params: ``{"u": (d,), "v": (d,)}``.
      parametrization: "uv" or "uu-vv".

    Returns:
      β, an array of shape (d,).

    Raises:
      ConfigError: an unknown ``parametrization``.
    """
    check_choice("parametrization", parametrization, ("uv", "uu-vv"))
    u, v = params["u"], params["v"]
    return u * v if parametrization == "uv" else u * u - v * v


def l1_norm(beta):
    """The ℓ1 norm ‖β‖₁.

    Args:
      beta: a vector β.

    Returns:
      A scalar array.
    """
    return jnp.sum(jnp.abs(beta))


def l2_norm(beta):
    """The ℓ2 norm ‖β‖₂.

    Args:
      beta: a vector β.

    Returns:
      A scalar array.
    """
    return jnp.linalg.norm(beta)


def _positive_c(c, size):
    c = np.broadcast_to(np.asarray(c, dtype=float), (size,)).copy()
    if not np.all(np.isfinite(c)) or np.any(c <= 0):
        raise ConfigError("c", c if c.size <= 6 else f"min {np.min(c):.3g}",
                          "finite effective initializations > 0")
    return c


def hyperbolic_entropy(beta, c):
    """ψ_c(β) = Σ_i [(β_i/2)·asinh(2β_i/c_i) − ¼√(c_i² + 4β_i²) + c_i/4] (numpy, float64).

    Args:
      beta: vector β.
      c: effective initialization, a scalar or one value per coordinate (> 0).

    Returns:
      ψ_c(β) >= 0, with ψ_c(0) = 0.

    References:
      Woodworth et al. 2020, Thm 1 (their φ_α with α_i = √c_i / 2, up to a factor 2).
    """
    beta = np.asarray(beta, dtype=float)
    c = _positive_c(c, beta.size)
    # √(c² + 4β²) − c cancels for |β| ≪ c; 4β² / (√(c² + 4β²) + c) is the same number, exactly
    # computed.
    root_minus_c = 4.0 * beta**2 / (np.hypot(c, 2.0 * beta) + c)
    return float(np.sum(0.5 * beta * np.arcsinh(2.0 * beta / c) - 0.25 * root_minus_c))


@dataclasses.dataclass(frozen=True)
class PotentialMinimizer:
    """The result of :func:`potential_minimizer`.

    Attributes:
      beta: argmin ψ_c over {Xβ = y}.
      dual: the dual variable ν (β = (c/2)·sinh(2Xᵀν)).
      residual: ‖Xβ − y‖₂ / max(1, ‖y‖₂) at the returned β.
      iterations: Newton iterations used.
      converged: True when the residual is below the tolerance.
    """

    beta: np.ndarray
    dual: np.ndarray
    residual: float
    iterations: int
    converged: bool


def _dual_objective(nu, X, y, c):
    z = X.T @ nu
    with np.errstate(over="ignore"):
        # cosh(2z) − 1 = 2 sinh(z)²: exact for small z, overflows to inf (rejected) for large z.
        value = np.sum(0.5 * c * np.sinh(z) ** 2) - nu @ y
    return value if np.isfinite(value) else np.inf


def potential_minimizer(X, y, c, *, tol: float = 1e-10, max_iter: int = 500,
                        max_step: float = 4.0) -> PotentialMinimizer:
    """argmin ψ_c(β) subject to Xβ = y, by damped Newton on the dual.

    Args:
      X: (n, d) design with full row rank (n <= d: the interpolating set is non-empty).
      y: (n,) targets.
      c: effective initialization (scalar or (d,) vector, every entry > 0; 1e-12 to 1e4 is
        tested). For a c_T with non-positive entries pass ``np.abs`` of it or clip it; the
        potential is defined for c > 0 only.
      tol: stop when ‖Xβ − y‖ <= tol·max(1, ‖y‖).
      max_iter: Newton iterations before giving up (``converged=False``).
      max_step: cap on max_i |Δ(Xᵀν)_i| per iteration, which keeps sinh from overflowing when
        c is tiny and the undamped step is huge.

    Returns:
      A :class:`PotentialMinimizer`.

    References: Woodworth et al. 2020, Thm 1; the dual form is derived in this module's docstring.
    """
    X = np.asarray(X, dtype=float)
    y = np.asarray(y, dtype=float)
    if X.ndim != 2 or y.shape != (X.shape[0],):
        raise ConfigError("X, y", (X.shape, y.shape), "X of shape (n, d) and y of shape (n,)")
    c = _positive_c(c, X.shape[1])
    scale = max(1.0, float(np.linalg.norm(y)))
    nu = np.zeros(X.shape[0])
    value = _dual_objective(nu, X, y, c)
    residual = np.inf
    for iteration in range(1, max_iter + 1):
        z = X.T @ nu
        beta = 0.5 * c * np.sinh(2.0 * z)
        gradient = X @ beta - y
        residual = float(np.linalg.norm(gradient)) / scale
        if residual <= tol:
            return PotentialMinimizer(beta, nu, residual, iteration - 1, True)
        weights = c * np.cosh(2.0 * z)  # d²ψ*/dz², the dual Hessian is X diag(weights) Xᵀ
        hessian = (X * weights) @ X.T
        try:
            step = -scipy.linalg.solve(hessian, gradient, assume_a="pos")
        except (np.linalg.LinAlgError, ValueError):
            step = -np.linalg.lstsq(hessian, gradient, rcond=None)[0]
        move = np.max(np.abs(X.T @ step))
        t = min(1.0, max_step / move) if move > 0 else 1.0
        slope = float(gradient @ step)
        # Armijo backtracking on the dual objective (damped Newton). Near the solution the
        # decrease of F falls below its rounding error; there the step is judged by the
        # residual ‖Xβ − y‖ instead, which is still accurately computable.
        accepted = False
        while t > 1e-20:
            candidate = nu + t * step
            candidate_value = _dual_objective(candidate, X, y, c)
            if candidate_value <= value + 1e-4 * t * slope:
                accepted = True
                break
            if np.isfinite(candidate_value) and \
                    abs(candidate_value - value) <= 1e-12 * (1.0 + abs(value)):
                candidate_beta = 0.5 * c * np.sinh(2.0 * (X.T @ candidate))
                if np.linalg.norm(X @ candidate_beta - y) / scale < residual:
                    accepted = True
                    break
            t *= 0.5
        if not accepted:
            break
        nu, value = candidate, candidate_value
    beta = 0.5 * c * np.sinh(2.0 * (X.T @ nu))
    residual = float(np.linalg.norm(X @ beta - y)) / scale
    return PotentialMinimizer(beta, nu, residual, iteration, residual <= tol)


def min_l1_interpolator(X, y) -> np.ndarray:
    """The minimum-ℓ1 interpolator ``argmin ‖β‖₁ s.t. Xβ = y``, as a linear program (scipy HiGHS).

    Solved with ``β = p − q``, ``p, q ≥ 0``; the small-initialization limit of the diagonal
    network's implicit bias.

    Args:
      X: the (n, d) design matrix.
      y: the (n,) targets.

    Returns:
      β, a (d,) float64 numpy array.

    Raises:
      ConfigError: the linear program has no solution (no β interpolates).

    References:
      Woodworth et al. 2020, Thm 1 (c → 0 gives the minimum-ℓ1 solution).
    """
    X = np.asarray(X, dtype=float)
    y = np.asarray(y, dtype=float)
    d = X.shape[1]
    result = scipy.optimize.linprog(np.ones(2 * d), A_eq=np.hstack([X, -X]), b_eq=y,
                                    bounds=[(0, None)] * (2 * d), method="highs")
    if not result.success:
        raise ConfigError("X, y", result.message, "an interpolation problem with a solution")
    return result.x[:d] - result.x[d:]


def min_l2_interpolator(X, y) -> np.ndarray:
    """The minimum-ℓ2 interpolator ``argmin ‖β‖₂ s.t. Xβ = y`` = ``Xᵀ(XXᵀ)⁻¹y`` (pseudo-inverse).

    Args:
      X: the (n, d) design matrix.
      y: the (n,) targets.

    Returns:
      β, a (d,) float64 numpy array (the least-squares solution when no β interpolates).

    References:
      Woodworth et al. 2020, Thm 1 (c → ∞ gives the minimum-ℓ2 solution).
    """
    return np.linalg.pinv(np.asarray(X, dtype=float)) @ np.asarray(y, dtype=float)


def relative_distance(beta, reference) -> float:
    """The relative distance ``‖β − β_ref‖₂ / ‖β_ref‖₂``.

    Args:
      beta: a vector β.
      reference: the reference β_ref (nonzero), same shape.

    Returns:
      A Python float.
    """
    beta, reference = np.asarray(beta, dtype=float), np.asarray(reference, dtype=float)
    return float(np.linalg.norm(beta - reference) / np.linalg.norm(reference))
