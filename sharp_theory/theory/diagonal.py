"""Exact one-step factors of the effective initialization c = u² − v² of a diagonal linear network
β = u⊙v under GD, unnormalized n-SAM and unnormalized 1-SAM (sympy derivations + numeric forms).

Per coordinate i, with ``g = (Xᵀr/n)_i`` the gradient coefficient of L = ‖Xβ − y‖²/(2n) (so that
∂L/∂u_i = g v_i and ∂L/∂v_i = g u_i):

* GD ``u+ = u − ηgv, v+ = v − ηgu`` gives ``c+ = c·(1 − η²g²)``.
* Unnormalized n-SAM: ascent ``u' = u + ρgv, v' = v + ρgu``; with g' the gradient coefficient at
  (u', v'), the descent ``u+ = u − ηg'v', v+ = v − ηg'u'`` gives
  ``c+ = c·(1 − 2ηρ·g·g' − η²g'²·(1 − ρ²g²))``.
* Unnormalized 1-SAM (ours: ascent ρ∇ℓ_k per example k, ℓ_k = ½(x_kᵀβ − y_k)²): with g_k the
  coefficient of example k at (u, v) and g'_k the one at its own ascent point,
  ``c+ = c·(1 − 2ηρ·B − η²·(A² − ρ²B²))``, ``A = mean_k g'_k``, ``B = mean_k g_k·g'_k``.
  For one example it is the n-SAM factor; B = mean_k g_k g'_k (a mean of products) is what makes
  1-SAM shrink c more than n-SAM, whose term is the product of means g·g'.

The identities hold for any values of the gradient coefficients (they use only the form of the
updates), so sympy treats g, g', g_k, g'_k as free symbols. Normalized SAM is the same with ρ
replaced by ρ/‖∇L‖ (or ρ/‖∇ℓ_k‖ per example).

References: derived here (THEORY.md §2, claim 2); the update rules are those of Andriushchenko &
Flammarion, ICML 2022, Sec. 4, and the authors' code.
"""
from __future__ import annotations

import numpy as np
import sympy as sp


def _c(u, v):
    return u**2 - v**2


def gd_step() -> dict:
    """sympy: one GD step on one coordinate of β = u⊙v.

    Returns:
      dict with the symbols (u, v, eta, g), ``next_c`` (expanded from the update), ``claimed``
      (``c(1 − η²g²)``) and ``residual`` (simplified difference: 0 when the identity holds).
    """
    u, v, eta, g = sp.symbols("u v eta g", real=True)
    u_next, v_next = u - eta * g * v, v - eta * g * u
    next_c = _c(u_next, v_next)
    claimed = _c(u, v) * (1 - eta**2 * g**2)
    return {"u": u, "v": v, "eta": eta, "g": g, "next_c": next_c, "claimed": claimed,
            "residual": sp.simplify(sp.expand(next_c - claimed))}


def n_sam_step() -> dict:
    """sympy: one unnormalized n-SAM step on one coordinate of β = u⊙v.

    Returns the same keys as :func:`gd_step` plus ``rho`` and ``g_ascent`` (g').
    """
    u, v, eta, rho, g, g_ascent = sp.symbols("u v eta rho g g_ascent", real=True)
    u_ascent, v_ascent = u + rho * g * v, v + rho * g * u
    u_next, v_next = u - eta * g_ascent * v_ascent, v - eta * g_ascent * u_ascent
    next_c = _c(u_next, v_next)
    claimed = _c(u, v) * (1 - 2 * eta * rho * g * g_ascent
                          - eta**2 * g_ascent**2 * (1 - rho**2 * g**2))
    return {"u": u, "v": v, "eta": eta, "rho": rho, "g": g, "g_ascent": g_ascent,
            "next_c": next_c, "claimed": claimed,
            "residual": sp.simplify(sp.expand(next_c - claimed))}


def one_sam_step(n_examples: int = 3) -> dict:
    """sympy: one unnormalized 1-SAM step on one coordinate, with ``n_examples`` examples.

    Returns the keys of :func:`n_sam_step` with ``g`` and ``g_ascent`` as tuples (one symbol per
    example), and ``A``, ``B``.
    """
    u, v, eta, rho = sp.symbols("u v eta rho", real=True)
    g = sp.symbols(f"g1:{n_examples + 1}", real=True)
    g_ascent = sp.symbols(f"gp1:{n_examples + 1}", real=True)
    grad_u = sum(gp * (v + rho * gk * u) for gk, gp in zip(g, g_ascent)) / n_examples
    grad_v = sum(gp * (u + rho * gk * v) for gk, gp in zip(g, g_ascent)) / n_examples
    next_c = _c(u - eta * grad_u, v - eta * grad_v)
    A = sum(g_ascent) / n_examples
    B = sum(gk * gp for gk, gp in zip(g, g_ascent)) / n_examples
    claimed = _c(u, v) * (1 - 2 * eta * rho * B - eta**2 * (A**2 - rho**2 * B**2))
    return {"u": u, "v": v, "eta": eta, "rho": rho, "g": g, "g_ascent": g_ascent, "A": A, "B": B,
            "next_c": next_c, "claimed": claimed,
            "residual": sp.simplify(sp.expand(next_c - claimed))}


# --- numeric forms (numpy; used by tests and the lab) -------------------------------------------

def gradient_coefficient(X, y, beta):
    """g = Xᵀ(Xβ − y)/n: ∂L/∂u = g⊙v, ∂L/∂v = g⊙u for β = u⊙v."""
    X = np.asarray(X, dtype=float)
    return X.T @ (X @ beta - y) / X.shape[0]


def gd_factor(eta, g):
    """Per-coordinate factor ``1 − η²g²`` of one GD step (c+ = factor·c)."""
    return 1.0 - eta**2 * np.square(g)


def n_sam_factor(eta, rho, g, g_ascent):
    """Per-coordinate factor ``1 − 2ηρgg' − η²g'²(1 − ρ²g²)`` of one unnormalized n-SAM step."""
    return 1.0 - 2.0 * eta * rho * g * g_ascent - eta**2 * g_ascent**2 * (1.0 - rho**2 * g**2)


def one_sam_factor(eta, rho, g_examples, g_ascent_examples):
    """Per-coordinate factor ``1 − 2ηρB − η²(A² − ρ²B²)`` of one unnormalized 1-SAM step.

    Args:
      g_examples: (n, d) per-example coefficients g_k = r_k x_k at (u, v).
      g_ascent_examples: (n, d) coefficients g'_k at each example's own ascent point.
    """
    A = np.mean(g_ascent_examples, axis=0)
    B = np.mean(g_examples * g_ascent_examples, axis=0)
    return 1.0 - 2.0 * eta * rho * B - eta**2 * (A**2 - rho**2 * B**2)


def n_sam_coefficients(X, y, u, v, rho):
    """(g, g') for unnormalized n-SAM at (u, v): g at β = u⊙v, g' at the ascent point."""
    g = gradient_coefficient(X, y, u * v)
    u_ascent, v_ascent = u + rho * g * v, v + rho * g * u
    return g, gradient_coefficient(X, y, u_ascent * v_ascent)


def one_sam_coefficients(X, y, u, v, rho):
    """(g_k, g'_k), each (n, d), for unnormalized 1-SAM (ascent ρ∇ℓ_k, ℓ_k = ½(x_kᵀβ − y_k)²)."""
    X = np.asarray(X, dtype=float)
    residual = X @ (u * v) - y
    g_examples = residual[:, None] * X
    u_ascent = u + rho * g_examples * v  # (n, d): one ascent point per example
    v_ascent = v + rho * g_examples * u
    residual_ascent = np.sum(X * u_ascent * v_ascent, axis=1) - y
    return g_examples, residual_ascent[:, None] * X
