"""Gradient descent and the sharpness-aware family: SAM, USAM, p-norm balls and m-sharpness.

References:
  Foret, Kleiner, Mobahi, Neyshabur. Sharpness-Aware Minimization for Efficiently Improving
  Generalization. ICLR 2021, eq. (2) (p-norm ascent direction) and Sec. 4.1 (m-sharpness).
  Andriushchenko, Flammarion. Towards Understanding Sharpness-Aware Minimization. ICML 2022
  (unnormalized SAM, n-SAM vs 1-SAM).
"""
from __future__ import annotations

import dataclasses
import math

import jax
import jax.numpy as jnp

from ..errors import ConfigError
from ..tree import global_norm, leading_size, safe_normalize, tree_add
from .base import Base, StepRule, base_step, loss_and_gradient


@dataclasses.dataclass(frozen=True)
class GradientDescent(StepRule):
    """``w+ = w - lr * base(∇L(w))``; with mini-batches drawn by the runner this is SGD."""

    base: Base = Base()
    label: str = "gd"

    @property
    def name(self) -> str:
        return self.label

    def step(self, params, state, loss_fn, batch, hparams, key):
        loss, grads = loss_and_gradient(loss_fn, params, batch)
        params, base_state = base_step(self.base, params, grads, state["base"], hparams["lr"])
        info = {"loss": loss, "grad_norm": global_norm(grads), "grad_evals": jnp.asarray(1.0)}
        return params, {"base": base_state, "count": state["count"] + 1}, info


def ascent_direction(grads, rho, p: float = 2.0, normalize: bool = True):
    """SAM's first-order worst-case perturbation.

    Normalized: the maximizer of ``gᵀε`` over the p-norm ball of radius rho,
    ``ε = rho · sign(g)|g|^{q-1} / (‖g‖_q^q)^{1/p}`` with ``1/p + 1/q = 1`` (Foret et al. eq. 2);
    p = 2 gives ``rho · g/‖g‖`` and p = inf gives ``rho · sign(g)``. Unnormalized (USAM):
    ``ε = rho · g``. A zero gradient gives a zero perturbation, never NaN.
    """
    if not normalize:
        # rho cast to each leaf's dtype: a float64 rho must not promote float32 parameters.
        return jax.tree_util.tree_map(lambda g: jnp.asarray(rho, g.dtype) * g, grads)
    if p == 2.0:
        return jax.tree_util.tree_map(lambda u: jnp.asarray(rho, u.dtype) * u, safe_normalize(grads))
    if p == math.inf:
        return jax.tree_util.tree_map(lambda g: jnp.asarray(rho, g.dtype) * jnp.sign(g), grads)
    q = p / (p - 1.0)
    leaves = jax.tree_util.tree_leaves(grads)
    q_power_sum = sum(jnp.sum(jnp.abs(g) ** q) for g in leaves)
    tiny = jnp.finfo(leaves[0].dtype).tiny
    denominator = jnp.maximum(q_power_sum ** (1.0 / p), tiny)
    return jax.tree_util.tree_map(
        lambda g: jnp.asarray(rho, g.dtype) * jnp.sign(g) * jnp.abs(g) ** (q - 1.0) / denominator,
        grads)


def sam_gradient(params, loss_fn, batch, rho, p: float = 2.0, normalize: bool = True):
    """Loss and gradient at ``w`` and the gradient at the ascent point ``w + ε(∇L(w))``.

    The ascent uses the same batch as the descent (the analysed SAM). Returns
    ``(loss, grads, perturbed_grads)``.
    """
    loss, grads = loss_and_gradient(loss_fn, params, batch)
    perturbation = ascent_direction(grads, rho, p, normalize)
    _, perturbed_grads = loss_and_gradient(loss_fn, tree_add(params, perturbation), batch)
    return loss, grads, perturbed_grads


def split_into_chunks(batch, m: int):
    """Reshape every leaf's leading axis n into (n // m, m); n must be a multiple of m."""
    n = leading_size(batch)
    if n is None:
        raise ConfigError("m", m, "m-sharpness needs a batch of examples; this problem has none")
    if n % m:
        raise ConfigError("m", m, f"a divisor of the batch size {n}")
    return jax.tree_util.tree_map(lambda x: x.reshape((n // m, m) + x.shape[1:]), batch)


@dataclasses.dataclass(frozen=True)
class SharpnessAware(StepRule):
    """SAM (normalized) or USAM (unnormalized), optionally with m-sharpness.

    ``w+ = w - lr · base(∇L_B(w + ε))`` with ``ε = ascent_direction(∇L_B(w), rho)``. With
    ``m`` set, the batch is split into chunks of m examples; each chunk gets its own ascent
    point and the chunk gradients at those points are averaged (m = 1 is "1-SAM"). With
    rho = 0 the update equals the base rule bit-for-bit.
    """

    base: Base = Base()
    normalize: bool = True
    p: float = 2.0
    m: int | None = None
    grads_per_step = 2.0

    @property
    def name(self) -> str:
        name = "sam" if self.normalize else "usam"
        if self.p != 2.0:
            name += f"-l{'inf' if self.p == math.inf else f'{self.p:g}'}"
        if self.m is not None:
            name = f"{self.m}-{name}"
        return name

    def step(self, params, state, loss_fn, batch, hparams, key):
        rho = hparams["rho"]
        if self.m is None:
            loss, grads, perturbed = sam_gradient(params, loss_fn, batch, rho, self.p, self.normalize)
        else:
            chunks = split_into_chunks(batch, self.m)
            per_chunk = jax.vmap(
                lambda chunk: sam_gradient(params, loss_fn, chunk, rho, self.p, self.normalize))
            losses, chunk_grads, chunk_perturbed = per_chunk(chunks)
            loss = jnp.mean(losses)
            grads = jax.tree_util.tree_map(lambda g: jnp.mean(g, axis=0), chunk_grads)
            perturbed = jax.tree_util.tree_map(lambda g: jnp.mean(g, axis=0), chunk_perturbed)
        params, base_state = base_step(self.base, params, perturbed, state["base"], hparams["lr"])
        info = {"loss": loss, "grad_norm": global_norm(grads), "grad_evals": jnp.asarray(2.0)}
        return params, {"base": base_state, "count": state["count"] + 1}, info
