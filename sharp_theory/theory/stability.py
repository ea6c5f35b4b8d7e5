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
    phenomenon. ICML 2023 (the SAM edge; the USAM threshold).
"""
from __future__ import annotations

import numpy as np
import sympy

from ..errors import ConfigError, check_nonnegative, check_positive


def gd_stability_limit(lr):
    """The largest stable sharpness of GD: ``2/η`` (stable iff ``λ_max < 2/η``)."""
    check_positive("lr", lr)
    return 2.0 / np.asarray(lr, dtype=float)


def gd_is_stable(lr, sharpness) -> bool:
    """GD on a quadratic with top eigenvalue ``sharpness`` converges iff ``η λ < 2``."""
    return bool(np.all(np.asarray(lr) * np.asarray(sharpness) < 2.0))


def usam_stability_limit(lr, rho):
    """The largest λ with ``ηλ(1 + ρλ) < 2``: ``(sqrt(1 + 8ρ/η) - 1)/(2ρ)`` (2/η at ρ = 0)."""
    check_positive("lr", lr)
    check_nonnegative("rho", rho)
    lr, rho = np.asarray(lr, dtype=float), np.asarray(rho, dtype=float)
    safe_rho = np.where(rho > 0, rho, 1.0)
    # (√(1+8ρ/η) - 1)/(2ρ) = 4/(η(√(1+8ρ/η) + 1)): the second form has no cancellation at ρ → 0.
    root = np.sqrt(1.0 + 8.0 * safe_rho / lr)
    return np.where(rho > 0, 4.0 / (lr * (root + 1.0)), 2.0 / lr)


def usam_is_stable(lr, rho, eigenvalues) -> bool:
    """USAM on ``½xᵀHx`` converges iff ``ηλ(1 + ρλ) < 2`` for every eigenvalue λ ≥ 0 of H."""
    eigenvalues = np.asarray(eigenvalues, dtype=float)
    return bool(np.all(lr * eigenvalues * (1.0 + rho * eigenvalues) < 2.0))


def sam_edge(grad_norm, lr, rho):
    """SAM's effective stability edge at gradient norm g:
    ``λ_SAM(g) = (g/(2ρ)) (sqrt(1 + 8ρ/(ηg)) - 1)``.

    It is the USAM limit with radius ρ/g (SAM's normalization frozen at g); always < 2/η.

    Args:
      grad_norm: ‖∇L‖ (> 0), scalar or array.
      lr: η (> 0).
      rho: ρ (> 0).

    References: Agarwala & Dauphin 2023 (SAM edge); THEORY.md §5.
    """
    check_positive("lr", lr)
    check_positive("rho", rho)
    grad_norm = np.asarray(grad_norm, dtype=float)
    if np.any(grad_norm < 0):
        raise ConfigError("grad_norm", grad_norm, "gradient norms >= 0")
    return usam_stability_limit(lr, rho / np.maximum(grad_norm, np.finfo(float).tiny))


def sam_two_cycle_radius(lr, rho, sharpness):
    """Radius of SAM's 2-cycle ``x ↔ -x`` on ``½ λ x²``: ``ηρλ/(2 - ηλ)`` (needs ηλ < 2)."""
    check_positive("lr", lr)
    check_nonnegative("rho", rho)
    product = np.asarray(lr, dtype=float) * np.asarray(sharpness, dtype=float)
    if np.any(product >= 2.0) or np.any(product <= 0):
        raise ConfigError("lr * sharpness", product, "0 < η λ < 2 (below GD's edge)")
    return product * rho / (2.0 - product)


def wen_ma_li_limit_norm(lr, rho, top_eigenvalue):
    """Wen, Ma, Li Thm 4.8: ``lim ‖x_t‖ = ηρλ_1/(2 - ηλ_1)`` for SAM on ``½xᵀHx``, ηλ_1 < 1."""
    product = np.asarray(lr, dtype=float) * np.asarray(top_eigenvalue, dtype=float)
    if np.any(product >= 1.0) or np.any(product <= 0):
        raise ConfigError("lr * top_eigenvalue", product, "0 < η λ_1 < 1 (Thm 4.8's regime)")
    return sam_two_cycle_radius(lr, rho, top_eigenvalue)


# --- sympy derivations ------------------------------------------------------------------------

eta, rho, lam, g, x = sympy.symbols("eta rho lambda g x", positive=True)


def derive_gd_limit():
    """λ at which GD's multiplier ``1 - ηλ`` on ``½λx²`` reaches -1."""
    (solution,) = sympy.solve(sympy.Eq(1 - eta * lam, -1), lam)
    return sympy.simplify(solution)


def derive_usam_limit():
    """Positive λ at which USAM's multiplier ``1 - ηλ(1 + ρλ)`` reaches -1."""
    solutions = sympy.solve(sympy.Eq(1 - eta * lam * (1 + rho * lam), -1), lam)
    return sympy.simplify([s for s in solutions if s.is_positive is not False][0])


def derive_sam_two_cycle_radius():
    """x > 0 with SAM's update ``x - ηλ(x + ρ)`` equal to -x (the symmetric 2-cycle)."""
    (solution,) = sympy.solve(sympy.Eq(x - eta * lam * (x + rho), -x), x)
    return sympy.simplify(solution)


def derive_sam_edge():
    """The USAM limit with ρ replaced by ρ/g (SAM's normalization frozen at gradient norm g)."""
    return sympy.simplify(derive_usam_limit().subs(rho, rho / g))


CLOSED_FORMS = {
    "gd_limit": 2 / eta,
    "usam_limit": (sympy.sqrt(1 + 8 * rho / eta) - 1) / (2 * rho),
    "sam_two_cycle_radius": eta * rho * lam / (2 - eta * lam),
    "sam_edge": (g / (2 * rho)) * (sympy.sqrt(1 + 8 * rho / (eta * g)) - 1),
}


def check_derivations() -> dict:
    """``{name: True/False}``: does each sympy derivation equal the stated closed form?"""
    derived = {"gd_limit": derive_gd_limit(), "usam_limit": derive_usam_limit(),
               "sam_two_cycle_radius": derive_sam_two_cycle_radius(),
               "sam_edge": derive_sam_edge()}
    return {name: sympy.simplify(derived[name] - CLOSED_FORMS[name]) == 0 for name in derived}


def sam_edge_below_gd_edge(grad_norm, lr, rho) -> bool:
    """λ_SAM(g) < 2/η for every g > 0, ρ > 0 (the ascent always lowers the edge)."""
    return bool(np.all(sam_edge(grad_norm, lr, rho) < 2.0 / lr))


__all__ = [
    "gd_stability_limit", "gd_is_stable", "usam_stability_limit", "usam_is_stable", "sam_edge",
    "sam_two_cycle_radius", "wen_ma_li_limit_norm", "derive_gd_limit", "derive_usam_limit",
    "derive_sam_two_cycle_radius", "derive_sam_edge", "check_derivations", "CLOSED_FORMS",
    "sam_edge_below_gd_edge",
]
