"""Gradient descent and the sharpness-aware family: SAM, USAM, p-norm balls and m-sharpness.

Rules :class:`GradientDescent` and :class:`SharpnessAware` with their constructors
:func:`gd`, :func:`sgd`, :func:`sam` and :func:`usam`.

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

from ..errors import POSITIVE, check_int, check_p_norm
from ..tree import global_norm, safe_normalize, split_into_chunks, tree_add
from .base import (LR_AND_RADIUS, Base, Optimizer, StepRule, as_base, base_step, domains,
                   initial_state, loss_and_gradient, make_optimizer)


@dataclasses.dataclass(frozen=True)
class GradientDescent(StepRule):
    """The gradient-descent rule ``w+ = w - lr * base(∇L(w))``; with mini-batches drawn by the
    runner this is SGD. Built by :func:`gd` and :func:`sgd`.

    Attributes:
      base: the :class:`Base` step (plain, momentum, Adam, custom).
      label: the name in results ("gd" or "sgd").
    """

    base: Base = Base()
    label: str = "gd"
    hparam_domains = domains(lr=POSITIVE)

    @property
    def name(self) -> str:
        return self.label

    def init(self, params):
        return initial_state(self.base, params)

    def step(self, params, state, loss_fn, batch, hparams, key):
        loss, grads = loss_and_gradient(loss_fn, params, batch)
        params, base_state = base_step(self.base, params, grads, state["base"], hparams["lr"])
        info = {"loss": loss, "grad_norm": global_norm(grads), "grad_evals": jnp.asarray(1.0)}
        return params, {"base": base_state, "count": state["count"] + 1}, info


def ascent_direction(grads, rho, p: float = 2.0, normalize: bool = True):
    """SAM's first-order worst-case perturbation ε of the gradient ``grads``.

    Normalized: the maximizer of ``gᵀε`` over the p-norm ball of radius rho,
    ``ε = rho · sign(g)|g|^{q-1} / (‖g‖_q^q)^{1/p}`` with ``1/p + 1/q = 1``;
    p = 2 gives ``rho · g/‖g‖`` and p = inf gives ``rho · sign(g)``. Unnormalized (USAM):
    ``ε = rho · g``. A zero gradient gives a zero perturbation, never NaN.

    Args:
      grads: the gradient pytree g.
      rho: the radius (≥ 0; cast to each leaf's dtype).
      p: the ball's norm, in (1, inf] (ignored when ``normalize`` is False).
      normalize: SAM's normalized ascent (True) or USAM's ``rho · g`` (False).

    Returns:
      ε, a pytree like ``grads``.

    References:
      Foret, Kleiner, Mobahi, Neyshabur 2021, eq. (2); Andriushchenko & Flammarion 2022
      (unnormalized SAM).
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
    """The loss and gradient at ``w`` and the gradient at the ascent point ``w + ε(∇L(w))``.

    The ascent uses the same batch as the descent (the analysed SAM).

    Args:
      params: the parameter pytree w.
      loss_fn: ``loss_fn(params, batch) -> scalar``.
      batch: the batch for both gradients.
      rho: the radius (≥ 0).
      p: the ball's norm, in (1, inf].
      normalize: SAM (True) or USAM (False), see :func:`ascent_direction`.

    Returns:
      ``(loss, grads, perturbed_grads)``: L(w), ∇L(w) and ∇L(w + ε).

    References:
      Foret, Kleiner, Mobahi, Neyshabur 2021, eqs. (2)-(3).
    """
    loss, grads = loss_and_gradient(loss_fn, params, batch)
    perturbation = ascent_direction(grads, rho, p, normalize)
    _, perturbed_grads = loss_and_gradient(loss_fn, tree_add(params, perturbation), batch)
    return loss, grads, perturbed_grads


@dataclasses.dataclass(frozen=True)
class SharpnessAware(StepRule):
    """The SAM (normalized) or USAM (unnormalized) rule, optionally with m-sharpness.

    ``w+ = w - lr · base(∇L_B(w + ε))`` with ``ε = ascent_direction(∇L_B(w), rho)``. With
    ``m`` set, the batch is split into chunks of m examples; each chunk gets its own ascent
    point and the chunk gradients at those points are averaged (m = 1 is "1-SAM"). With
    rho = 0 the update equals the base rule bit-for-bit. Built by :func:`sam` and :func:`usam`.

    Attributes:
      base: the :class:`Base` step.
      normalize: SAM's normalized ascent (True) or USAM's ``rho · g`` (False).
      p: the ascent ball's norm, in (1, inf].
      m: the m-sharpness chunk size (None: the whole batch).

    References:
      Foret, Kleiner, Mobahi, Neyshabur 2021, eqs. (2)-(3) and Sec. 4.1; Andriushchenko &
      Flammarion 2022.
    """

    base: Base = Base()
    normalize: bool = True
    p: float = 2.0
    m: int | None = None
    hparam_domains = LR_AND_RADIUS

    @property
    def name(self) -> str:
        name = "sam" if self.normalize else "usam"
        if self.p != 2.0:
            name += f"-l{'inf' if self.p == math.inf else f'{self.p:g}'}"
        if self.m is not None:
            name = f"{self.m}-{name}"
        return name

    def init(self, params):
        return initial_state(self.base, params)

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


def gd(lr, *, base=None, batch_size=None) -> Optimizer:
    """Gradient descent ``w+ = w - lr · base(∇L(w))`` on the full batch.

    Args:
      lr: step size (> 0).
      base: base rule (plain, momentum, adam, or an optax transformation).
      batch_size: None for the full batch (or the problem's own batch for fresh-noise problems).

    Returns:
      An :class:`sharp_theory.optim.Optimizer` named "gd".

    Raises:
      ConfigError: ``lr`` ≤ 0 or a bad ``base``/``batch_size``.

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> import sharp_theory as st
      >>> opt = st.optim.gd(lr=0.1)
      >>> loss_fn = lambda w, batch: 0.5 * jnp.sum(w**2)  # gradient w
      >>> w = jnp.array([3.0, 4.0])
      >>> w1, state, info = opt.step(w, opt.init(w), loss_fn, None, opt.hparams, jax.random.key(0))
      >>> [round(float(v), 6) for v in w1], float(info["loss"])  # w - 0.1 w
      ([2.7, 3.6], 12.5)
    """
    return make_optimizer(GradientDescent(as_base(base), "gd"), {"lr": lr}, batch_size=batch_size)


def sgd(lr, *, batch_size=1, replace=False, base=None) -> Optimizer:
    """Stochastic gradient descent on mini-batches drawn by the runner.

    Args:
      lr: step size (> 0).
      batch_size: examples per step (>= 1).
      replace: draw with replacement (True) or by shuffled epochs (False).
      base: base rule.

    Returns:
      An Optimizer named "sgd".

    References:
      Robbins & Monro 1951 (stochastic approximation).
    """
    return make_optimizer(GradientDescent(as_base(base), "sgd"), {"lr": lr},
                          batch_size=batch_size, replace=replace)


def sam(lr, rho, *, p=2, m=None, base=None, batch_size=None, replace=False) -> Optimizer:
    """Sharpness-aware minimization with a normalized ascent step.

    ``w+ = w - lr · base(∇L(w + ε))``, ``ε = rho · ∇L(w)/‖∇L(w)‖`` for p = 2.

    Args:
      lr: step size (> 0).
      rho: radius of the ascent ball (>= 0; 0 gives the base rule bit-for-bit).
      p: norm of the ball, in (1, inf] (2 is the usual SAM).
      m: m-sharpness chunk size (None: the whole batch; 1: per example, "1-SAM").
      base: base rule (see :func:`gd`).
      batch_size: examples per step (None: full batch).
      replace: draw mini-batches with replacement (True) or by shuffled epochs (False).

    Returns:
      An Optimizer named "sam" (with "-lp" and "m-" marks for other norms and chunk sizes).

    Raises:
      ConfigError: a value outside its domain (lr ≤ 0, rho < 0, p ≤ 1, m < 1, ...).

    References:
      Foret, Kleiner, Mobahi, Neyshabur 2021, eqs. (2)-(3) and Sec. 4.1 (m-sharpness).

    Examples:
      One SAM step on ``½‖w‖²``: the gradient is taken at ``w + ρ w/‖w‖``.

      >>> import jax, jax.numpy as jnp
      >>> import sharp_theory as st
      >>> opt = st.optim.sam(lr=0.1, rho=0.05)
      >>> loss_fn = lambda w, batch: 0.5 * jnp.sum(w**2)
      >>> w = jnp.array([3.0, 4.0])  # ‖w‖ = 5, so ε = 0.05 · (0.6, 0.8)
      >>> w1, state, info = opt.step(w, opt.init(w), loss_fn, None, opt.hparams, jax.random.key(0))
      >>> [round(float(v), 6) for v in w1]  # w - 0.1 (w + ε)
      [2.697, 3.596]
      >>> opt.name, float(info["grad_evals"])  # two gradients per step
      ('sam', 2.0)
    """
    p = check_p_norm("p", p)
    if m is not None:
        check_int("m", m, minimum=1)
    rule = SharpnessAware(as_base(base), normalize=True, p=p, m=m)
    return make_optimizer(rule, {"lr": lr, "rho": rho}, batch_size=batch_size, replace=replace)


def usam(lr, rho, *, m=None, base=None, batch_size=None, replace=False) -> Optimizer:
    """Unnormalized SAM: ascent ``ε = rho · ∇L`` instead of SAM's normalized one.

    Args:
      lr: step size (> 0).
      rho: ascent scale (>= 0; 0 gives the base rule bit-for-bit).
      m: m-sharpness chunk size (None: the whole batch; 1: per example).
      base: base rule (see :func:`gd`).
      batch_size: examples per step (None: full batch).
      replace: draw mini-batches with replacement (True) or by shuffled epochs (False).

    Returns:
      An Optimizer named "usam" ("m-usam" with chunks).

    References:
      Andriushchenko & Flammarion 2022 (unnormalized SAM); Agarwala & Dauphin 2023 (its
      stability threshold).
    """
    if m is not None:
        check_int("m", m, minimum=1)
    rule = SharpnessAware(as_base(base), normalize=False, p=2.0, m=m)
    return make_optimizer(rule, {"lr": lr, "rho": rho}, batch_size=batch_size, replace=replace)
