"""Stability thresholds of GD, SAM and USAM on quadratics, in closed form and derived by sympy.

On ``L(x) = ½ xᵀ H x`` with eigenvalues λ_1 ≥ λ_2 ≥ ... the updates are

* GD   ``x+ = (I - ηH) x``: stable iff ``η λ_1 < 2``, i.e. λ_1 below the **edge** 2/η.
* USAM ``x+ = x - ηH(x + ρHx) = (I - ηH - ηρH²) x``: stable iff ``η λ (1 + ρλ) < 2`` for
  every eigenvalue (the map's eigenvalue ``1 - ηλ(1+ρλ)`` must stay above -1).
* SAM  ``x+ = x - ηH(x + ρ Hx/‖Hx‖)``: the ascent adds at most ``ηρλ_1`` per step, so SAM
  diverges exactly when GD does (η λ_1 > 2); below it, on a 1-D quadratic, SAM ends in the
  2-cycle ``x ↔ -x`` with radius ``ηρλ/(2 - ηλ)``.
* The SAM edge: freezing SAM's normalization at the current gradient norm g, SAM acts like
  USAM with radius ρ/g, whose stability limit solves ``ηλ(1 + ρλ/g) = 2``:
  ``λ_SAM(g) = (g/(2ρ)) (sqrt(1 + 8ρ/(ηg)) - 1)`` (< 2/η, and → 2/η as ρ/g → 0).
* Wen, Ma, Li Thm 4.8: on ``½xᵀHx`` with ``ηλ_1 < 1`` SAM's iterate aligns with the top
  eigenvector and ``‖x_t‖ → ηρλ_1/(2 - ηλ_1)``: the same radius as the 1-D 2-cycle.

Every closed form has a ``derive_*`` twin that obtains it with sympy from the update rule; tests
check that the two agree and that trajectories of the library's optimizers obey them.

References:
  Cohen, Kaur, Li, Kolter, Talwalkar. Gradient Descent on Neural Networks Typically Occurs at
    the Edge of Stability. ICLR 2021, Sec. 2 (the 2/η threshold of GD on quadratics).
  Wen, Ma, Li. How Does Sharpness-Aware Minimization Minimize Sharpness? ICLR 2023, Thm 4.8.
  Bartlett, Long, Bousquet. The Dynamics of Sharpness-Aware Minimization: Bouncing Across
    Ravines and Drifting Towards Wide Minima. JMLR 24 (2023) (SAM's 2-cycle on quadratics).
  Agarwala & Dauphin. SAM operates far from home: eigenvalue regularization as a dynamical
    phenomenon. ICML 2023 (the USAM threshold).
  Long & Bartlett. Sharpness-Aware Minimization and the Edge of Stability. JMLR 25 (2024) (the
    SAM edge).
"""
from __future__ import annotations

import numpy as np
import sympy

from ..errors import ConfigError, check_nonnegative, check_positive


def gd_stability_limit(lr):
    """The largest stable sharpness of GD on a quadratic: ``2/η``.

    GD on ``½xᵀHx`` converges iff ``η λ_max(H) < 2``, so ``2/η`` is the edge of stability that
    full-batch GD's sharpness hovers at (Cohen et al.).

    Args:
      lr: the learning rate η (> 0), scalar or array.

    Returns:
      ``2/η`` as a float64 numpy array of ``lr``'s shape (0-d for a scalar).

    Raises:
      ConfigError: ``lr`` is not positive.

    References:
      Cohen, Kaur, Li, Kolter, Talwalkar 2021, Sec. 2 (the 2/η threshold of GD on quadratics).

    Examples:
      >>> from sharp_theory.theory import stability
      >>> float(stability.gd_stability_limit(0.1))
      20.0
      >>> stability.gd_is_stable(0.1, 19.9), stability.gd_is_stable(0.1, 20.1)
      (True, False)
    """
    check_positive("lr", lr)
    return 2.0 / np.asarray(lr, dtype=float)


def gd_is_stable(lr, sharpness) -> bool:
    """Whether GD on a quadratic with top eigenvalue ``sharpness`` converges: ``η λ < 2``.

    Args:
      lr: the learning rate η (> 0), scalar or array.
      sharpness: the top Hessian eigenvalue λ, scalar or array (broadcast against ``lr``).

    Returns:
      A Python bool: True iff ``η λ < 2`` for every broadcast pair.

    References:
      Cohen, Kaur, Li, Kolter, Talwalkar 2021, Sec. 2.
    """
    return bool(np.all(np.asarray(lr) * np.asarray(sharpness) < 2.0))


def usam_stability_limit(lr, rho):
    """The largest stable eigenvalue of USAM: the λ with ``ηλ(1 + ρλ) = 2``.

    Closed form ``(sqrt(1 + 8ρ/η) - 1)/(2ρ)``, computed as ``4/(η(sqrt(1 + 8ρ/η) + 1))`` (no
    cancellation as ρ → 0); it equals ``2/η`` at ρ = 0 and is below ``2/η`` for ρ > 0.

    Args:
      lr: the learning rate η (> 0), scalar or array.
      rho: the USAM radius ρ (≥ 0), scalar or array.

    Returns:
      The limit as a float64 numpy array of the broadcast shape of ``lr`` and ``rho``.

    Raises:
      ConfigError: ``lr`` ≤ 0 or ``rho`` < 0.

    References:
      Agarwala & Dauphin 2023 (the USAM threshold); papers/agarwala2023-sam-far-from-home.md.

    Examples:
      >>> from sharp_theory.theory import stability
      >>> lam = float(stability.usam_stability_limit(0.1, 0.05))
      >>> round(lam, 4), round(0.1 * lam * (1 + 0.05 * lam), 12)  # on the boundary ηλ(1+ρλ) = 2
      (12.3607, 2.0)
    """
    check_positive("lr", lr)
    check_nonnegative("rho", rho)
    lr, rho = np.asarray(lr, dtype=float), np.asarray(rho, dtype=float)
    safe_rho = np.where(rho > 0, rho, 1.0)
    # (√(1+8ρ/η) - 1)/(2ρ) = 4/(η(√(1+8ρ/η) + 1)): the second form has no cancellation at ρ → 0.
    root = np.sqrt(1.0 + 8.0 * safe_rho / lr)
    return np.where(rho > 0, 4.0 / (lr * (root + 1.0)), 2.0 / lr)


def usam_is_stable(lr, rho, eigenvalues) -> bool:
    """Whether USAM on ``½xᵀHx`` converges: ``ηλ(1 + ρλ) < 2`` for every eigenvalue λ of H.

    Args:
      lr: the learning rate η (> 0).
      rho: the USAM radius ρ (≥ 0).
      eigenvalues: the Hessian eigenvalues λ (≥ 0), any array-like.

    Returns:
      A Python bool: True iff every eigenvalue satisfies the condition.

    References:
      Agarwala & Dauphin 2023 (the USAM threshold); papers/agarwala2023-sam-far-from-home.md.
    """
    eigenvalues = np.asarray(eigenvalues, dtype=float)
    return bool(np.all(lr * eigenvalues * (1.0 + rho * eigenvalues) < 2.0))


def sam_edge(grad_norm, lr, rho):
    """SAM's effective stability edge at gradient norm g.

    ``λ_SAM(g) = (g/(2ρ)) (sqrt(1 + 8ρ/(ηg)) - 1)``: the USAM limit with radius ρ/g (SAM's
    normalization frozen at g); always below ``2/η``, and → ``2/η`` as ρ/g → 0.

    Args:
      grad_norm: the gradient norm g = ‖∇L‖ (≥ 0; 0 is treated as the smallest positive float),
        scalar or array.
      lr: the learning rate η (> 0).
      rho: the SAM radius ρ (> 0).

    Returns:
      ``λ_SAM(g)`` as a float64 numpy array of the broadcast shape.

    Raises:
      ConfigError: ``lr`` or ``rho`` not positive, or a negative ``grad_norm``.

    References:
      Long & Bartlett 2024 (the SAM edge); papers/long2024-sam-edge-of-stability.md.
    """
    check_positive("lr", lr)
    check_positive("rho", rho)
    grad_norm = np.asarray(grad_norm, dtype=float)
    if np.any(grad_norm < 0):
        raise ConfigError("grad_norm", grad_norm, "gradient norms >= 0")
    return usam_stability_limit(lr, rho / np.maximum(grad_norm, np.finfo(float).tiny))


def sam_two_cycle_radius(lr, rho, sharpness):
    """Radius of SAM's 2-cycle ``x ↔ -x`` on ``½ λ x²``: ``ηρλ/(2 - ηλ)``.

    Args:
      lr: the learning rate η (> 0).
      rho: the SAM radius ρ (≥ 0).
      sharpness: the curvature λ, with ``0 < ηλ < 2`` (below GD's edge).

    Returns:
      The radius as a float64 numpy array of the broadcast shape.

    Raises:
      ConfigError: ``lr`` ≤ 0, ``rho`` < 0, or ``ηλ`` outside (0, 2).

    References:
      Bartlett, Long, Bousquet 2023 (SAM's 2-cycle on quadratics); papers/agarwala2023-sam-far-from-home.md.
    """
    check_positive("lr", lr)
    check_nonnegative("rho", rho)
    product = np.asarray(lr, dtype=float) * np.asarray(sharpness, dtype=float)
    if np.any(product >= 2.0) or np.any(product <= 0):
        raise ConfigError("lr * sharpness", product, "0 < η λ < 2 (below GD's edge)")
    return product * rho / (2.0 - product)


def wen_ma_li_limit_norm(lr, rho, top_eigenvalue):
    """The limit ``‖x_t‖ → ηρλ_1/(2 - ηλ_1)`` of SAM on ``½xᵀHx`` (Wen, Ma, Li Thm 4.8).

    Args:
      lr: the learning rate η (> 0).
      rho: the SAM radius ρ (≥ 0).
      top_eigenvalue: H's top eigenvalue λ_1, with ``0 < ηλ_1 < 1`` (the theorem's regime).

    Returns:
      The limiting norm as a float64 numpy array (the 1-D 2-cycle radius at λ_1).

    Raises:
      ConfigError: ``ηλ_1`` outside (0, 1).

    References:
      Wen, Ma, Li 2023, Thm 4.8.
    """
    product = np.asarray(lr, dtype=float) * np.asarray(top_eigenvalue, dtype=float)
    if np.any(product >= 1.0) or np.any(product <= 0):
        raise ConfigError("lr * top_eigenvalue", product, "0 < η λ_1 < 1 (Thm 4.8's regime)")
    return sam_two_cycle_radius(lr, rho, top_eigenvalue)


# --- sympy derivations ------------------------------------------------------------------------

eta, rho, lam, g, x = sympy.symbols("eta rho lambda g x", positive=True)


def derive_gd_limit():
    """Derive GD's edge with sympy: the λ at which the multiplier ``1 - ηλ`` on ``½λx²`` reaches -1.

    Returns:
      The sympy expression ``2/eta``.

    References:
      Cohen, Kaur, Li, Kolter, Talwalkar 2021, Sec. 2.
    """
    (solution,) = sympy.solve(sympy.Eq(1 - eta * lam, -1), lam)
    return sympy.simplify(solution)


def derive_usam_limit():
    """Derive USAM's limit with sympy: the positive λ at which ``1 - ηλ(1 + ρλ)`` reaches -1.

    Returns:
      A sympy expression in ``eta`` and ``rho`` (equal to ``CLOSED_FORMS["usam_limit"]``).

    References:
      Agarwala & Dauphin 2023; papers/agarwala2023-sam-far-from-home.md.
    """
    solutions = sympy.solve(sympy.Eq(1 - eta * lam * (1 + rho * lam), -1), lam)
    return sympy.simplify([s for s in solutions if s.is_positive is not False][0])


def derive_sam_two_cycle_radius():
    """Derive SAM's 2-cycle radius with sympy: the x > 0 with ``x - ηλ(x + ρ) = -x``.

    Returns:
      A sympy expression in ``eta``, ``rho``, ``lambda`` (equal to
      ``CLOSED_FORMS["sam_two_cycle_radius"]``).

    References:
      Bartlett, Long, Bousquet 2023; Wen, Ma, Li 2023, Thm 4.8.
    """
    (solution,) = sympy.solve(sympy.Eq(x - eta * lam * (x + rho), -x), x)
    return sympy.simplify(solution)


def derive_sam_edge():
    """Derive the SAM edge with sympy: the USAM limit with ρ replaced by ρ/g.

    Returns:
      A sympy expression in ``eta``, ``rho``, ``g`` (equal to ``CLOSED_FORMS["sam_edge"]``).

    References:
      Long & Bartlett 2024; papers/long2024-sam-edge-of-stability.md.
    """
    return sympy.simplify(derive_usam_limit().subs(rho, rho / g))


CLOSED_FORMS = {
    "gd_limit": 2 / eta,
    "usam_limit": (sympy.sqrt(1 + 8 * rho / eta) - 1) / (2 * rho),
    "sam_two_cycle_radius": eta * rho * lam / (2 - eta * lam),
    "sam_edge": (g / (2 * rho)) * (sympy.sqrt(1 + 8 * rho / (eta * g)) - 1),
}
"""The stated closed forms as sympy expressions (keys ``gd_limit``, ``usam_limit``,
``sam_two_cycle_radius``, ``sam_edge``), which :func:`check_derivations` compares with the
``derive_*`` results.
"""


def check_derivations() -> dict:
    """Compare every sympy derivation with its stated closed form in :data:`CLOSED_FORMS`.

    Returns:
      ``{name: bool}`` for ``gd_limit``, ``usam_limit``, ``sam_two_cycle_radius`` and
      ``sam_edge``: True iff ``simplify(derived - closed_form) == 0``.
    """
    derived = {"gd_limit": derive_gd_limit(), "usam_limit": derive_usam_limit(),
               "sam_two_cycle_radius": derive_sam_two_cycle_radius(),
               "sam_edge": derive_sam_edge()}
    return {name: sympy.simplify(derived[name] - CLOSED_FORMS[name]) == 0 for name in derived}


def sam_edge_below_gd_edge(grad_norm, lr, rho) -> bool:
    """Whether ``λ_SAM(g) < 2/η`` (the ascent always lowers the edge below GD's).

    Args:
      grad_norm: the gradient norm g (> 0), scalar or array.
      lr: the learning rate η (> 0).
      rho: the SAM radius ρ (> 0).

    Returns:
      A Python bool: True iff :func:`sam_edge` is below ``2/η`` for every entry.

    References:
      Long & Bartlett 2024; papers/long2024-sam-edge-of-stability.md.
    """
    return bool(np.all(sam_edge(grad_norm, lr, rho) < 2.0 / lr))


__all__ = [
    "gd_stability_limit", "gd_is_stable", "usam_stability_limit", "usam_is_stable", "sam_edge",
    "sam_two_cycle_radius", "wen_ma_li_limit_norm", "derive_gd_limit", "derive_usam_limit",
    "derive_sam_two_cycle_radius", "derive_sam_edge", "check_derivations", "CLOSED_FORMS",
    "sam_edge_below_gd_edge",
]
