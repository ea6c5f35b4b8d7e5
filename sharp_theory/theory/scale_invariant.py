"""Exact one-step identities for GD on scale-invariant problems (sympy).

References: Li, Zhang, He 2024, Thm 1 (B is conserved under gradient flow). The one-step
identities below are derived here: they quantify the O(η²) change of B under one GD step.
"""
from __future__ import annotations

import sympy as sp


def _vector(name: str, size: int):
    return sp.Matrix(sp.symbols(f"{name}1:{size + 1}", real=True))


def op_gd_step(dimension: int = 3) -> dict:
    """One GD step on f(xᵀy): ``B+ = (1 - η² f'²) B``.

    Returns a dict with the symbols, ``next_balancedness`` (B after the step, expanded from the
    update ``x+ = x - η f' y``, ``y+ = y - η f' x``), the ``claimed`` expression and the
    simplified ``residual`` (0 when the identity holds).
    """
    x, y = _vector("x", dimension), _vector("y", dimension)
    eta, fprime = sp.symbols("eta fprime", real=True)
    balancedness = (x.dot(x) - y.dot(y)) / 2
    x_next, y_next = x - eta * fprime * y, y - eta * fprime * x
    next_balancedness = (x_next.dot(x_next) - y_next.dot(y_next)) / 2
    claimed = (1 - eta**2 * fprime**2) * balancedness
    return {"x": x, "y": y, "eta": eta, "fprime": fprime, "balancedness": balancedness,
            "next_balancedness": next_balancedness, "claimed": claimed,
            "residual": sp.simplify(sp.expand(next_balancedness - claimed))}


def nop_gd_step(rows: int = 3, cols: int = 3) -> dict:
    """One GD step on f(xyᵀ): ``B+ - B = (η²/2)(‖g_x‖² - ‖g_y‖²)`` with ``g_x = G y``, ``g_y = Gᵀx``.

    G is a generic symbolic matrix (the gradient of f at xyᵀ). Returns the same keys as
    :func:`op_gd_step` plus ``G``.
    """
    x, y = _vector("x", rows), _vector("y", cols)
    eta = sp.symbols("eta", real=True)
    G = sp.Matrix(rows, cols, lambda i, j: sp.Symbol(f"G{i + 1}{j + 1}", real=True))
    grad_x, grad_y = G * y, G.T * x
    balancedness = (x.dot(x) - y.dot(y)) / 2
    x_next, y_next = x - eta * grad_x, y - eta * grad_y
    next_balancedness = (x_next.dot(x_next) - y_next.dot(y_next)) / 2
    claimed = balancedness + eta**2 / 2 * (grad_x.dot(grad_x) - grad_y.dot(grad_y))
    return {"x": x, "y": y, "eta": eta, "G": G, "balancedness": balancedness,
            "next_balancedness": next_balancedness, "claimed": claimed,
            "residual": sp.simplify(sp.expand(next_balancedness - claimed))}


def op_gd_factor(eta: float, fprime: float) -> float:
    """Numeric factor ``1 - η² f'²`` by which one GD step multiplies B on f(xᵀy)."""
    return 1.0 - eta**2 * fprime**2


def lemma1_top_eigenvalue(f_second: float, x_sq_norm: float, y_sq_norm: float) -> float:
    """Li, Zhang, He 2024, Lemma 1: at a minimizer of f(xᵀy), ``λ_max = f''(w)(‖x‖² + ‖y‖²)``."""
    return f_second * (x_sq_norm + y_sq_norm)
