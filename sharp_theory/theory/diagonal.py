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

References: derived here (paper card); the update rules are those of Andriushchenko &
Flammarion, ICML 2022, Sec. 4, and the authors' code.
"""
from __future__ import annotations

import numpy as np
import sympy as sp


def _c(u, v):
    return u**2 - v**2


def gd_step() -> dict:
    """Derive with sympy one GD step on one coordinate of β = u⊙v: ``c+ = c(1 − η²g²)``.

    Returns:
      A dict with the symbols ``u``, ``v``, ``eta``, ``g``; ``next_c`` (c = u² − v² after the
      update, expanded), ``claimed`` (``c(1 − η²g²)``) and ``residual`` (the simplified
      difference: 0 when the identity holds).

    References:
      Derived here (paper card).
    """
    u, v, eta, g = sp.symbols("u v eta g", real=True)
    u_next, v_next = u - eta * g * v, v - eta * g * u
    next_c = _c(u_next, v_next)
    claimed = _c(u, v) * (1 - eta**2 * g**2)
    return {"u": u, "v": v, "eta": eta, "g": g, "next_c": next_c, "claimed": claimed,
            "residual": sp.simplify(sp.expand(next_c - claimed))}


def n_sam_step() -> dict:
    """Derive with sympy one unnormalized n-SAM step on one coordinate of β = u⊙v.

    ``c+ = c(1 − 2ηρ·g·g' − η²g'²(1 − ρ²g²))`` with g the gradient coefficient at (u, v) and g'
    the one at the ascent point.

    Returns:
      The keys of :func:`gd_step` plus ``rho`` and ``g_ascent`` (the symbol g').

    References:
      Derived here (paper card); update rule of Andriushchenko & Flammarion 2022,
      Sec. 4.
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
    """Derive with sympy one unnormalized 1-SAM step on one coordinate, with n examples.

    ``c+ = c(1 − 2ηρB − η²(A² − ρ²B²))`` with ``A = mean_k g'_k`` and ``B = mean_k g_k g'_k``.

    Args:
      n_examples: the number of examples n (≥ 1); one symbol pair (g_k, g'_k) per example.

    Returns:
      The keys of :func:`n_sam_step`, with ``g`` and ``g_ascent`` tuples of ``n_examples``
      symbols, plus the expressions ``A`` and ``B``.

    References:
      Derived here (paper card); update rule of Andriushchenko & Flammarion 2022,
      Sec. 4 (1-SAM: one ascent per example).
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
    """The gradient coefficient ``g = Xᵀ(Xβ − y)/n`` of L = ‖Xβ − y‖²/(2n).

    For β = u⊙v, ``∂L/∂u = g⊙v`` and ``∂L/∂v = g⊙u``.

    Args:
      X: the (n, d) design matrix.
      y: the (n,) targets.
      beta: the (d,) linear predictor β.

    Returns:
      A (d,) float64 numpy array.
    """
    X = np.asarray(X, dtype=float)
    return X.T @ (X @ beta - y) / X.shape[0]


def gd_factor(eta, g):
    """Per-coordinate factor ``1 − η²g²`` of one GD step (``c+ = factor·c``).

    Args:
      eta: the learning rate η.
      g: the (d,) gradient coefficients (:func:`gradient_coefficient`).

    Returns:
      A (d,) array of factors.

    References:
      Derived here (:func:`gd_step`; papers/andriushchenko2022-diagonal-nets.md).
    """
    return 1.0 - eta**2 * np.square(g)


def n_sam_factor(eta, rho, g, g_ascent):
    """Per-coordinate factor ``1 − 2ηρgg' − η²g'²(1 − ρ²g²)`` of one unnormalized n-SAM step.

    Args:
      eta: the learning rate η.
      rho: the (unnormalized) SAM radius ρ.
      g: the (d,) gradient coefficients at (u, v).
      g_ascent: the (d,) gradient coefficients g' at the ascent point.

    Returns:
      A (d,) array of factors (``c+ = factor·c``).

    References:
      Derived here (:func:`n_sam_step`; papers/andriushchenko2022-diagonal-nets.md).
    """
    return 1.0 - 2.0 * eta * rho * g * g_ascent - eta**2 * g_ascent**2 * (1.0 - rho**2 * g**2)


def one_sam_factor(eta, rho, g_examples, g_ascent_examples):
    """Per-coordinate factor ``1 − 2ηρB − η²(A² − ρ²B²)`` of one unnormalized 1-SAM step.

    Args:
      eta: the learning rate η.
      rho: the (unnormalized) SAM radius ρ.
      g_examples: (n, d) per-example coefficients g_k = r_k x_k at (u, v).
      g_ascent_examples: (n, d) coefficients g'_k at each example's own ascent point.

    Returns:
      A (d,) array of factors (``c+ = factor·c``), with ``A = mean_k g'_k`` and
      ``B = mean_k g_k g'_k``.

    References:
      Derived here (:func:`one_sam_step`; papers/andriushchenko2022-diagonal-nets.md).
    """
    A = np.mean(g_ascent_examples, axis=0)
    B = np.mean(g_examples * g_ascent_examples, axis=0)
    return 1.0 - 2.0 * eta * rho * B - eta**2 * (A**2 - rho**2 * B**2)


def n_sam_coefficients(X, y, u, v, rho):
    """The coefficients (g, g') of one unnormalized n-SAM step at (u, v).

    Args:
      X: the (n, d) design matrix.
      y: the (n,) targets.
      u: the (d,) first factor.
      v: the (d,) second factor.
      rho: the (unnormalized) SAM radius ρ.

    Returns:
      A pair of (d,) arrays: g at β = u⊙v and g' at the ascent point
      ``(u + ρgv, v + ρgu)``.
    """
    g = gradient_coefficient(X, y, u * v)
    u_ascent, v_ascent = u + rho * g * v, v + rho * g * u
    return g, gradient_coefficient(X, y, u_ascent * v_ascent)


def one_sam_coefficients(X, y, u, v, rho):
    """The per-example coefficients (g_k, g'_k) of one unnormalized 1-SAM step at (u, v).

    Each example k ascends along its own loss ℓ_k = ½(x_kᵀβ − y_k)² with radius ρ.

    Args:
      X: the (n, d) design matrix.
      y: the (n,) targets.
      u: the (d,) first factor.
      v: the (d,) second factor.
      rho: the (unnormalized) SAM radius ρ.

    Returns:
      A pair of (n, d) arrays: g_k = r_k x_k at (u, v) and g'_k at example k's ascent point.
    """
    X = np.asarray(X, dtype=float)
    residual = X @ (u * v) - y
    g_examples = residual[:, None] * X
    u_ascent = u + rho * g_examples * v  # (n, d): one ascent point per example
    v_ascent = v + rho * g_examples * u
    residual_ascent = np.sum(X * u_ascent * v_ascent, axis=1) - y
    return g_examples, residual_ascent[:, None] * X
