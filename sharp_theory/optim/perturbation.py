"""SAM with a different perturbation: Friendly SAM, R-SAM, Delta-SAM and μP² layerwise scaling.

Each rule changes only how the ascent ε is built; the descent is SAM's (the gradient at w + ε,
fed to the base). With ρ = 0 every rule equals its base rule bit for bit
(tests/test_sam_family_more.py). Paper card: papers/sam-family-perturbation.md.

References:
  Friendly SAM  Li, Zhou, He, Cheng, Huang. Friendly Sharpness-Aware Minimization. CVPR 2024
                (arXiv 2403.12350), Sec. 4.
  R-SAM         Liu, Mai, Cheng, Chen, Hsieh, You. Random Sharpness-Aware Minimization. NeurIPS 2022.
  Delta-SAM     Zhou, Liu, Zhang, Chen. Sharpness-Aware Minimization with Dynamic Reweighting.
                Findings of EMNLP 2022 (arXiv 2112.08772).
  μP²           Haas, Xu, Cevher, Vankadara. μP²: Effective Sharpness Aware Minimization Requires
                Layerwise Perturbation Scaling. NeurIPS 2024 (arXiv 2411.00075).
"""
from __future__ import annotations

import dataclasses
import math

import jax
import jax.numpy as jnp
from jax.flatten_util import ravel_pytree

from ..errors import DECAY, NONNEGATIVE, POSITIVE, ConfigError
from ..tree import global_norm, leading_size, safe_normalize, tree_add
from .base import (Base, Optimizer, StepRule, as_base, descend, domains, gradient, initial_state,
                   loss_and_gradient, make_optimizer, step_info)
from .sharpness_aware import ascent_direction

_tree_map = jax.tree_util.tree_map


def _scaled(tree, factor):
    return _tree_map(lambda x: jnp.asarray(factor, x.dtype) * x, tree)


# --- Friendly SAM --------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class FriendlySAM(StepRule):
    """F-SAM: perturb along the batch gradient minus σ times an EMA of past gradients.

    ``m_t = λ m_{t−1} + (1 − λ) g_t``, ``d_t = g_t − σ m_t``, ``ε = ρ d_t/‖d_t‖``,
    ``w+ = w − lr · base(∇L_B(w + ε))``. The EMA estimates the full-batch gradient, so d is the
    batch's gradient noise (Li et al. 2024). σ = 0 is SAM; ρ = 0 the base rule.

    Attributes:
      base: the :class:`Base` step.
      decay: λ in [0, 1) of the EMA.

    References:
      Li, Zhou, He, Cheng, Huang 2024 (CVPR; arXiv 2403.12350), Sec. 4.
    """

    base: Base = Base()
    decay: float = 0.9
    name = "friendly-sam"
    hparam_domains = domains(lr=POSITIVE, rho=NONNEGATIVE, full_gradient_weight=NONNEGATIVE)

    def init(self, params):
        state = initial_state(self.base, params)
        state["mean_grad"] = _tree_map(jnp.zeros_like, params)
        return state

    def step(self, params, state, loss_fn, batch, hparams, key):
        loss, grads = loss_and_gradient(loss_fn, params, batch)
        decay = self.decay
        mean = _tree_map(lambda m, g: decay * m + (1.0 - decay) * g, state["mean_grad"], grads)
        sigma = hparams["full_gradient_weight"]
        noise = _tree_map(lambda g, m: g - jnp.asarray(sigma, g.dtype) * m, grads, mean)
        perturbed = gradient(loss_fn, tree_add(params, ascent_direction(noise, hparams["rho"])), batch)
        params, state = descend(self, params, state, perturbed, hparams, mean_grad=mean)
        return params, state, step_info(loss, grads, 2.0)


def friendly_sam(lr, rho, *, full_gradient_weight=1.0, decay=0.9, base=None, batch_size=None,
                 replace=False) -> Optimizer:
    """Friendly SAM (Li et al. 2024): perturb along the stochastic-gradient-noise component.

    Args:
      lr: step size (> 0).
      rho: radius (>= 0).
      full_gradient_weight: σ, how much of the EMA (full-gradient estimate) to remove (>= 0; 0 is
        SAM, 1 the paper's).
      decay: λ in [0, 1) of the EMA.
      base: the base step.
      batch_size: examples per step (None: the full batch).
      replace: draw mini-batches with replacement (True) or by shuffled epochs (False).

    Returns:
      An Optimizer named "friendly-sam".

    References:
      Li, Zhou, He, Cheng, Huang 2024 (CVPR; arXiv 2403.12350), Sec. 4.
    """
    DECAY.check("decay", decay)
    return make_optimizer(FriendlySAM(as_base(base), float(decay)), dict(lr=lr, rho=rho, full_gradient_weight=full_gradient_weight),
                          batch_size=batch_size, replace=replace)


# --- R-SAM ---------------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class RandomSmoothingSAM(StepRule):
    """R-SAM: the ascent direction is the gradient at a Gaussian-smoothed point.

    ``δ ~ N(0, σ² I)``, ``ε = ρ ∇L(w + δ)/‖∇L(w + δ)‖``, ``w+ = w − lr · base(∇L(w + ε))``: one
    ascent step on the randomly smoothed loss (Liu et al. 2022). σ = 0 is SAM bit for bit.

    Attributes:
      base: the :class:`Base` step.

    References:
      Liu, Mai, Cheng, Chen, Hsieh, You 2022 (NeurIPS).
    """

    base: Base = Base()
    name = "r-sam"
    hparam_domains = domains(lr=POSITIVE, rho=NONNEGATIVE, smoothing_std=NONNEGATIVE)

    def init(self, params):
        return initial_state(self.base, params)

    def step(self, params, state, loss_fn, batch, hparams, key):
        flat, unravel = ravel_pytree(params)
        noise = unravel(jnp.asarray(hparams["smoothing_std"], flat.dtype)
                        * jax.random.normal(key, flat.shape, flat.dtype))
        loss, smoothed = loss_and_gradient(loss_fn, tree_add(params, noise), batch)
        perturbed = gradient(loss_fn, tree_add(params, ascent_direction(smoothed, hparams["rho"])), batch)
        loss = loss_fn(params, batch)
        params, state = descend(self, params, state, perturbed, hparams)
        return params, state, step_info(loss, smoothed, 2.0)


def r_sam(lr, rho, *, smoothing_std=0.01, base=None, batch_size=None, replace=False) -> Optimizer:
    """R-SAM (Liu et al. 2022): SAM's ascent computed at a Gaussian-perturbed point.

    Args:
      lr: step size (> 0).
      rho: radius (>= 0).
      smoothing_std: σ, the standard deviation of the smoothing noise (>= 0; 0 is SAM).
      base: the base step.
      batch_size: examples per step (None: the full batch).
      replace: draw mini-batches with replacement (True) or by shuffled epochs (False).

    Returns:
      An Optimizer named "r-sam"; ``info["grad_norm"]`` is that of the smoothed gradient.

    References:
      Liu, Mai, Cheng, Chen, Hsieh, You 2022 (NeurIPS).
    """
    return make_optimizer(RandomSmoothingSAM(as_base(base)), dict(lr=lr, rho=rho, smoothing_std=smoothing_std),
                          batch_size=batch_size, replace=replace)


# --- Delta-SAM -----------------------------------------------------------------------------------

def per_example_gradients(loss_fn, params, batch):
    """Each example's gradient (vmapped over the batch's leading axis, one example per call).

    Args:
      loss_fn: ``loss_fn(params, batch) -> scalar``, the mean of per-example losses.
      params: the parameters.
      batch: a batch pytree with a leading example axis.

    Returns:
      A pytree like ``params`` with a leading example axis.
    """
    one = lambda example: gradient(loss_fn, params, _tree_map(lambda x: x[None], example))
    return jax.vmap(one)(batch)


def instance_weights(example_grads, rho, temperature):
    """Delta-SAM's weights ``softmax_i(ρ‖g_i‖ / τ)``: examples whose own worst-case loss rise
    (ρ‖g_i‖ to first order) is larger weigh more; τ → ∞ gives uniform weights (SAM).

    Args:
      example_grads: per-example gradients (leading example axis).
      rho: the radius.
      temperature: τ > 0.

    Returns:
      An (n,) array of weights summing to 1.
    """
    norms = jax.vmap(global_norm)(example_grads)
    return jax.nn.softmax(rho * norms / temperature)


@dataclasses.dataclass(frozen=True)
class ReweightedSAM(StepRule):
    """Delta-SAM: a batch perturbation along a reweighted sum of per-example gradients.

    ``a = softmax(ρ‖g_i‖/τ)``, ``ε = ρ Σ a_i g_i / ‖Σ a_i g_i‖``, ``w+ = w − lr · base(∇L_B(w + ε))``:
    one perturbation per batch that leans towards the examples whose per-instance perturbation
    would raise their loss most (our reading of the "theoretically principled weighting
    factors" of Zhou et al. 2022). Assumes the loss is the mean of per-example losses (the batch
    gradient is the mean of the per-example ones). τ → ∞ is SAM; ρ = 0 the base rule.

    Attributes:
      base: the :class:`Base` step.

    References:
      Zhou, Liu, Zhang, Chen 2022 (Findings of EMNLP; arXiv 2112.08772).
    """

    base: Base = Base()
    name = "delta-sam"
    hparam_domains = domains(lr=POSITIVE, rho=NONNEGATIVE, temperature=POSITIVE)

    def init(self, params):
        return initial_state(self.base, params)

    def step(self, params, state, loss_fn, batch, hparams, key):
        rho = hparams["rho"]
        if batch is None or leading_size(batch) is None:
            loss, grads = loss_and_gradient(loss_fn, params, batch)
            direction = grads
        else:
            example_grads = per_example_gradients(loss_fn, params, batch)
            grads = _tree_map(lambda g: jnp.mean(g, axis=0), example_grads)
            weights = instance_weights(example_grads, rho, hparams["temperature"])
            direction = _tree_map(lambda g: jnp.tensordot(weights.astype(g.dtype), g, axes=1),
                                  example_grads)
            loss = loss_fn(params, batch)
        perturbed = gradient(loss_fn, tree_add(params, ascent_direction(direction, rho)), batch)
        params, state = descend(self, params, state, perturbed, hparams)
        return params, state, step_info(loss, grads, 2.0)


def delta_sam(lr, rho, *, temperature=1.0, base=None, batch_size=None, replace=False) -> Optimizer:
    """Delta-SAM (Zhou et al. 2022): SAM with dynamically reweighted per-example ascent.

    Args:
      lr: step size (> 0).
      rho: radius (>= 0).
      temperature: τ > 0 of the softmax weights (large: SAM).
      base: the base step.
      batch_size: examples per step (None: the full batch).
      replace: draw mini-batches with replacement (True) or by shuffled epochs (False).

    Returns:
      An Optimizer named "delta-sam".

    References:
      Zhou, Liu, Zhang, Chen 2022 (Findings of EMNLP; arXiv 2112.08772).
    """
    return make_optimizer(ReweightedSAM(as_base(base)), dict(lr=lr, rho=rho, temperature=temperature),
                          batch_size=batch_size, replace=replace)


# --- μP² -----------------------------------------------------------------------------------------

def spectral_scales(params):
    """μP²'s per-layer perturbation scale: √(fan_out/fan_in) for a 2-D leaf of shape
    (fan_in, fan_out) (the ``x @ W`` convention), 1 for every other leaf.

    Args:
      params: the parameter pytree.

    Returns:
      A list of floats, one per leaf (``jax.tree_util.tree_leaves`` order).
    """
    return [math.sqrt(leaf.shape[1] / leaf.shape[0]) if leaf.ndim == 2 else 1.0
            for leaf in jax.tree_util.tree_leaves(params)]


def layerwise_perturbation(grads, rho, scales):
    """``ε_l = ρ s_l g_l / ‖g_l‖`` per leaf (0 where g_l = 0).

    Args:
      grads: the gradient pytree.
      rho: the radius.
      scales: one scale s_l per leaf.

    Returns:
      ε, a pytree like ``grads``; ‖ε_l‖ = ρ s_l for every leaf with a nonzero gradient.
    """
    leaves, treedef = jax.tree_util.tree_flatten(grads)
    out = [jnp.asarray(rho * s, g.dtype) * safe_normalize(g) for g, s in zip(leaves, scales)]
    return jax.tree_util.tree_unflatten(treedef, out)


@dataclasses.dataclass(frozen=True)
class LayerwiseSAM(StepRule):
    """μP² SAM: every layer perturbed on its own ball, radius ρ·√(fan_out/fan_in).

    ``ε_l = ρ s_l ∇_l L/‖∇_l L‖`` with s_l from :func:`spectral_scales` (or ``scales``), then
    SAM's descent. This is the spectral condition of Haas et al. 2024 (each layer's perturbation
    of the order of its μP update, √(fan_out/fan_in) in spectral norm; for the rank-one gradients
    of one example the Frobenius and spectral norms agree), so that no layer's perturbation
    vanishes or dominates as the width grows. Global SAM instead spends the radius on the layer
    with the largest gradient, which in wide networks is the last one.

    Attributes:
      base: the :class:`Base` step.
      scales: fixed per-leaf scales (None: :func:`spectral_scales`).

    References:
      Haas, Xu, Cevher, Vankadara 2024 (NeurIPS; arXiv 2411.00075).
    """

    base: Base = Base()
    scales: tuple | None = None
    name = "mup2-sam"
    hparam_domains = domains(lr=POSITIVE, rho=NONNEGATIVE)

    def init(self, params):
        return initial_state(self.base, params)

    def step(self, params, state, loss_fn, batch, hparams, key):
        loss, grads = loss_and_gradient(loss_fn, params, batch)
        scales = spectral_scales(params) if self.scales is None else self.scales
        if len(scales) != len(jax.tree_util.tree_leaves(params)):
            raise ConfigError("scales", len(scales), f"one scale per parameter leaf "
                              f"({len(jax.tree_util.tree_leaves(params))})")
        perturbation = layerwise_perturbation(grads, hparams["rho"], scales)
        perturbed = gradient(loss_fn, tree_add(params, perturbation), batch)
        params, state = descend(self, params, state, perturbed, hparams)
        return params, state, step_info(loss, grads, 2.0)


def mup2_sam(lr, rho, *, scales=None, base=None, batch_size=None, replace=False) -> Optimizer:
    """μP² SAM (Haas et al. 2024): layerwise perturbation radii ρ·√(fan_out/fan_in).

    Args:
      lr: step size (> 0).
      rho: the common radius (>= 0; 0 is the base rule).
      scales: a sequence of positive per-leaf scales (None: √(fan_out/fan_in) for 2-D leaves, 1
        for others).
      base: the base step.
      batch_size: examples per step (None: the full batch).
      replace: draw mini-batches with replacement (True) or by shuffled epochs (False).

    Returns:
      An Optimizer named "mup2-sam".

    References:
      Haas, Xu, Cevher, Vankadara 2024 (NeurIPS; arXiv 2411.00075).
    """
    if scales is not None:
        scales = tuple(float(POSITIVE.check("scales", s)) for s in scales)
    return make_optimizer(LayerwiseSAM(as_base(base), scales), dict(lr=lr, rho=rho),
                          batch_size=batch_size, replace=replace)


__all__ = ["FriendlySAM", "RandomSmoothingSAM", "ReweightedSAM", "LayerwiseSAM", "friendly_sam",
           "r_sam", "delta_sam", "mup2_sam", "per_example_gradients", "instance_weights",
           "spectral_scales", "layerwise_perturbation"]
