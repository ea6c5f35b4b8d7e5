"""Balancedness of factor pairs and the gradient imbalance that drives it.

References: Li, Zhang, He 2024, eq. (2): B = ½(‖x‖² - ‖y‖²); Thm 2 (NOP drift ∝ ‖g_x‖² - ‖g_y‖²).
"""
from __future__ import annotations

import jax
import jax.numpy as jnp

from ..tree import factor_pairs, tree_squared_norm


def balancedness(params):
    """The balancedness ``B = ½(‖x‖² − ‖y‖²)`` of a factor pair (Frobenius norms for matrices).

    Conserved by gradient flow on f(xᵀy) and f(xyᵀ); SAM drives it towards 0.

    Args:
      params: ``{"x", "y"}`` (vectors or matrices) or a list of such dicts (LoRA layers).

    Returns:
      A scalar array for one pair, an array with one entry per layer for a list.

    References:
      Li, Zhang, He 2024, eq. (2) (definition), Thm 1 (conserved by gradient flow), Thm 2
      (SAM's drift).

    Examples:
      >>> import jax.numpy as jnp
      >>> import sharp_theory as st
      >>> pair = {"x": jnp.array([3.0, 0.0]), "y": jnp.array([1.0, 1.0])}
      >>> float(st.measure.balancedness(pair))  # (9 - 2) / 2
      3.5
      >>> st.measure.balancedness([pair, {"x": jnp.ones(2), "y": jnp.ones(2)}]).tolist()
      [3.5, 0.0]
    """
    values = [0.5 * (tree_squared_norm(p["x"]) - tree_squared_norm(p["y"]))
              for p in factor_pairs(params)]
    return values[0] if isinstance(params, dict) else jnp.stack(values)


def gradient_imbalance(loss, params):
    """The gradient imbalance ``‖g_x‖² − ‖g_y‖²`` of ``loss`` per factor pair (the direction of
    SAM's drift of B).

    Args:
      loss: ``loss(params) -> scalar``.
      params: ``{"x", "y"}`` or a list of such dicts.

    Returns:
      A scalar array for one pair, one entry per pair for a list.

    References:
      Li, Zhang, He 2024, Thm 2 (the NOP drift is proportional to ‖g_x‖² − ‖g_y‖²).
    """
    grads = jax.grad(loss)(params)
    values = [tree_squared_norm(g["x"]) - tree_squared_norm(g["y"]) for g in factor_pairs(grads)]
    return values[0] if isinstance(params, dict) else jnp.stack(values)


def sam_balancedness_drift(loss, params, batches, rho):
    """Thm 2's first-order SAM drift of B, averaged over a stack of batches.

    For each batch the drift is ``rho (‖g_x‖² - ‖g_y‖²) / ‖(g_x, g_y)‖`` (per unit time t = η·step,
    to first order in rho; for f(xᵀy) it equals ``-2 rho |f'| B / √(‖x‖² + ‖y‖²)``, Lemma 2).

    Args:
      loss: ``loss(params, batch) -> scalar``.
      params: ``{"x", "y"}`` (one pair).
      batches: a batch pytree with one extra leading axis (one entry per draw).
      rho: SAM radius.

    Returns:
      The mean drift over the draws (a scalar).

    References: Li, Zhang, He 2024, Thm 2 and Lemma 2.
    """
    def one(batch):
        grads = jax.grad(loss)(params, batch)
        gx, gy = tree_squared_norm(grads["x"]), tree_squared_norm(grads["y"])
        norm = jnp.sqrt(gx + gy)
        return rho * (gx - gy) / jnp.maximum(norm, jnp.finfo(norm.dtype).tiny)

    return jnp.mean(jax.vmap(one)(batches))
