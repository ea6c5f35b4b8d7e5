"""Exact (dense) Hessians of any parameter pytree.

The Hessian is taken of ``fn(params) -> scalar`` over the flattened parameters (``ravel_pytree``);
for exact checks pass float64 parameters. Dense is right up to a few thousand parameters.
λ_max and the trace have one name each, in :mod:`.spectrum` (:func:`lambda_max`,
:func:`hessian_trace`), dense or matrix-free.
"""
from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp
from jax.flatten_util import ravel_pytree


def flat_function(fn: Callable, params):
    """``fn`` as a function of one flat vector: ``f_flat(w_flat) == fn(params)``.

    Args:
      fn: ``fn(params) -> scalar``.
      params: a parameter pytree.

    Returns:
      ``(f_flat, w_flat)``: the function of a flat vector (``ravel_pytree`` order) and the
      flattened (n,) parameters.
    """
    flat, unravel = ravel_pytree(params)
    return (lambda w: fn(unravel(w))), flat


def hessian(fn: Callable, params):
    """The dense Hessian matrix of ``fn`` at ``params``.

    Args:
      fn: ``fn(params) -> scalar``, twice differentiable.
      params: a parameter pytree (float64 for exact checks).

    Returns:
      The (n, n) Hessian over the flattened parameters (``ravel_pytree`` order), n the total
      parameter count; as computed by ``jax.hessian`` (symmetric up to rounding).
    """
    flat_fn, flat = flat_function(fn, params)
    return jax.hessian(flat_fn)(flat)


def hessian_eigenvalues(fn: Callable, params):
    """All Hessian eigenvalues of ``fn`` at ``params``, ascending (symmetrized dense ``eigh``).

    Args:
      fn: ``fn(params) -> scalar``.
      params: a parameter pytree (float64 for exact checks).

    Returns:
      An (n,) array of eigenvalues in ascending order, n the total parameter count.
    """
    matrix = hessian(fn, params)
    return jnp.linalg.eigvalsh(0.5 * (matrix + matrix.T))


def hessian_vector_product(fn: Callable, params, vector):
    """The Hessian-vector product ``∇²fn(params) · vector``, forward-over-reverse.

    Args:
      fn: ``fn(params) -> scalar``.
      params: a parameter pytree.
      vector: a pytree of the same structure and shapes as ``params``.

    Returns:
      A pytree like ``params``: the product, without forming the Hessian.
    """
    return jax.jvp(jax.grad(fn), (params,), (vector,))[1]
