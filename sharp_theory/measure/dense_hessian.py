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
    """``(f_flat, w_flat)`` with ``f_flat(w_flat) == fn(params)``."""
    flat, unravel = ravel_pytree(params)
    return (lambda w: fn(unravel(w))), flat


def hessian(fn: Callable, params):
    """Dense Hessian matrix (n x n) of ``fn`` at ``params`` (n = total parameter count)."""
    flat_fn, flat = flat_function(fn, params)
    return jax.hessian(flat_fn)(flat)


def hessian_eigenvalues(fn: Callable, params):
    """All Hessian eigenvalues in ascending order (symmetrized dense ``eigh``)."""
    matrix = hessian(fn, params)
    return jnp.linalg.eigvalsh(0.5 * (matrix + matrix.T))


def hessian_vector_product(fn: Callable, params, vector):
    """``∇²fn(params) · vector`` (vector is a pytree like params), forward-over-reverse."""
    return jax.jvp(jax.grad(fn), (params,), (vector,))[1]
