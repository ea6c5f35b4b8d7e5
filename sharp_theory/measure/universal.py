"""The universal class's sharpness measures, exactly: tr H, ‖H‖_F², log det(H + δI), and gradients.

Tahmasebi et al. (ICML 2024) define a class of sharpness measures that can express any function
of the Hessian; its named members target the trace (average-direction SAM), the Frobenius norm
(Frob-SAM) and the determinant (Det-SAM). These dense, exact versions are what the rules of
:mod:`sharp_theory.optim.surrogate` estimate, and what the tests and the "sam-family" lab check
them against (float64, small models).

References:
  Tahmasebi, Soleymani, Bahri, Jegelka, Jaillet. A Universal Class of Sharpness-Aware
  Minimization Algorithms. ICML 2024 (arXiv 2406.03682).
"""
from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp
from jax.flatten_util import ravel_pytree

from ..errors import check_choice, check_nonnegative

UNIVERSAL_MEASURES = ("trace", "frobenius", "determinant")
"""The measures of :func:`universal_sharpness`."""


def _flat_value(fn, measure, shift):
    def value(flat, unravel):
        matrix = jax.hessian(lambda w: fn(unravel(w)))(flat)
        matrix = 0.5 * (matrix + matrix.T)
        if measure == "trace":
            return jnp.trace(matrix)
        if measure == "frobenius":
            return jnp.sum(jnp.square(matrix))
        return jnp.linalg.slogdet(matrix + shift * jnp.eye(flat.size, dtype=flat.dtype))[1]
    return value


def universal_sharpness(fn: Callable, params, measure: str, *, shift: float = 0.0):
    """A Hessian measure of the universal class at ``params``: tr H, ‖H‖_F² or log|det(H + δI)|.

    Args:
      fn: ``fn(params) -> scalar``.
      params: parameter pytree (float64 for exact checks; dense Hessian, small models).
      measure: "trace", "frobenius" (the squared Frobenius norm) or "determinant" (log|det(H+δI)|).
      shift: δ >= 0 of the determinant measure (ignored otherwise).

    Returns:
      A scalar array.

    References:
      Tahmasebi et al. 2024 (ICML; arXiv 2406.03682).

    Examples:
      >>> import jax.numpy as jnp
      >>> import sharp_theory as st
      >>> fn = lambda w: 0.5 * jnp.sum(jnp.array([3.0, 1.0]) * w**2)  # H = diag(3, 1)
      >>> [round(float(st.measure.universal_sharpness(fn, jnp.zeros(2), m)), 6)
      ...  for m in ("trace", "frobenius", "determinant")]
      [4.0, 10.0, 1.098612]
    """
    check_choice("measure", measure, UNIVERSAL_MEASURES)
    check_nonnegative("shift", shift)
    flat, unravel = ravel_pytree(params)
    return _flat_value(fn, measure, shift)(flat, unravel)


def universal_sharpness_gradient(fn: Callable, params, measure: str, *, shift: float = 0.0):
    """The exact gradient of :func:`universal_sharpness` (autodiff through the dense Hessian).

    Args:
      fn: ``fn(params) -> scalar`` (three times differentiable).
      params: parameter pytree.
      measure: "trace", "frobenius" or "determinant".
      shift: δ >= 0 of the determinant measure.

    Returns:
      A pytree like ``params``: what Frob-SAM / Det-SAM's one-probe estimates average to.

    References:
      Tahmasebi et al. 2024 (ICML; arXiv 2406.03682).
    """
    check_choice("measure", measure, UNIVERSAL_MEASURES)
    check_nonnegative("shift", shift)
    flat, unravel = ravel_pytree(params)
    return unravel(jax.grad(lambda w: _flat_value(fn, measure, shift)(w, unravel))(flat))


__all__ = ["UNIVERSAL_MEASURES", "universal_sharpness", "universal_sharpness_gradient"]
