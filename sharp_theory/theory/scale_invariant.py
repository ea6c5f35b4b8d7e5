"""Exact one-step identities for GD on scale-invariant problems (sympy).

References: Li, Zhang, He 2024, Thm 1 (B is conserved under gradient flow). The one-step
identities below are derived here: they quantify the O(η²) change of B under one GD step.
"""
from __future__ import annotations

import sympy as sp


def _vector(name: str, size: int):
    return sp.Matrix(sp.symbols(f"{name}1:{size + 1}", real=True))


def op_gd_step(dimension: int = 3) -> dict:
    """Derive with sympy how one GD step on f(xᵀy) changes B: ``B+ = (1 - η² f'²) B``.

    The update is ``x+ = x - η f' y``, ``y+ = y - η f' x`` with f' a free symbol, so the identity
    holds for every f.

    Args:
      dimension: the length of x and y (≥ 1; the identity does not depend on it).

    Returns:
      A dict with the symbols ``x``, ``y`` (sympy column vectors), ``eta``, ``fprime``; the
      expressions ``balancedness`` (B = ½(‖x‖² - ‖y‖²)), ``next_balancedness`` (B after the step),
      ``claimed`` (``(1 - η² f'²) B``) and ``residual`` (their simplified difference: 0 when the
      identity holds).

    References:
      Li, Zhang, He 2024, Thm 1 (B is conserved under gradient flow); the O(η²) one-step
      identity is derived here.
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
    """Derive with sympy one GD step on f(xyᵀ): ``B+ - B = (η²/2)(‖g_x‖² - ‖g_y‖²)``.

    Here ``g_x = G y`` and ``g_y = Gᵀx`` with G a generic symbolic matrix (the gradient of f at
    xyᵀ), so the identity holds for every f.

    Args:
      rows: the length of x (≥ 1).
      cols: the length of y (≥ 1).

    Returns:
      A dict with the keys of :func:`op_gd_step` (``fprime`` excepted) plus ``G`` (the
      ``rows × cols`` symbolic matrix); ``residual`` is 0 when the identity holds.

    References:
      Li, Zhang, He 2024, Thm 1; the one-step identity is derived here.
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
    """The factor ``1 - η² f'²`` by which one GD step multiplies B on f(xᵀy).

    Args:
      eta: the learning rate η.
      fprime: the derivative f'(xᵀy) at the current point.

    Returns:
      The factor (a float, or an array when the arguments are arrays).

    References:
      Li, Zhang, He 2024, Thm 1 (its discrete-step counterpart, derived in :func:`op_gd_step`).
    """
    return 1.0 - eta**2 * fprime**2


def lemma1_top_eigenvalue(f_second: float, x_sq_norm: float, y_sq_norm: float) -> float:
    """The top Hessian eigenvalue at a minimizer of f(xᵀy): ``λ_max = f''(w)(‖x‖² + ‖y‖²)``.

    Args:
      f_second: f''(w) at the minimizer w = xᵀy.
      x_sq_norm: ‖x‖².
      y_sq_norm: ‖y‖².

    Returns:
      ``f_second * (x_sq_norm + y_sq_norm)`` (float or array).

    References:
      Li, Zhang, He 2024, Lemma 1.
    """
    return f_second * (x_sq_norm + y_sq_norm)
