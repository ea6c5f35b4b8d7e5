"""Cheaper SAM: rules that compute SAM's second gradient less often or on fewer coordinates.

LookSAM, SSAM, RST and AE-SAM (paper card: papers/sam-family-efficient.md). Every step reports
in ``info["grad_evals"]`` the gradients of the branch it actually took, so the runner's
``traj.grad_evals`` is the cost the method would pay (under ``vmap`` JAX evaluates both branches
of a ``lax.cond``; that is a property of the simulator, not of the method, and is not counted).
With the radius 0 every rule equals its base rule bit-for-bit (tests/test_sam_family.py).

References:
  LookSAM  Liu, Mai, Chen, Hsieh, You. CVPR 2022 (arXiv 2203.02714), Sec. 3.2.
  SSAM     Mi, Shen, Ren, Zhou, Sun, Ji, Tao. NeurIPS 2022 (arXiv 2210.05177), Sec. 3.
  RST      Zhao, Zhang, Hu. arXiv 2203.09962 (2022), Alg. 1.
  AE-SAM   Jiang, Yang, Zhang, Kwok. ICLR 2023 (arXiv 2304.14647), Sec. 3.
"""
from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
from jax.flatten_util import ravel_pytree

from ..errors import (DECAY, NONNEGATIVE, POSITIVE, PROBABILITY, REAL, ConfigError, Domain,
                      check_choice, check_int)
from ..tree import global_norm, leading_size, safe_normalize, tree_add, tree_scale, tree_squared_norm
from .base import (LR_AND_RADIUS, Base, Optimizer, StepRule, as_base, descend, domains, gradient,
                   initial_state, loss_and_gradient, make_optimizer, step_info)
from .sharpness_aware import ascent_direction

_tree_map = jax.tree_util.tree_map


# --- LookSAM -------------------------------------------------------------------------------------

def _orthogonal_part(vector, reference):
    """``vector - (⟨vector, ref⟩/‖ref‖²) ref`` with 0/0 := 0."""
    reference_sq = tree_squared_norm(reference)
    tiny = jnp.finfo(jnp.result_type(reference_sq)).tiny
    inner = sum(jnp.sum(a * b) for a, b in zip(jax.tree_util.tree_leaves(vector),
                                                jax.tree_util.tree_leaves(reference)))
    coefficient = inner / jnp.maximum(reference_sq, tiny)
    return _tree_map(lambda v, r: v - coefficient * r, vector, reference)


@dataclasses.dataclass(frozen=True)
class LookSAM(StepRule):
    """LookSAM: a SAM step every ``every`` steps, reusing the stored SAM correction in between.

    On SAM steps the SAM gradient ``g_s`` is split into its part along the plain gradient g and
    the orthogonal part ``g_v = g_s - (⟨g_s, g⟩/‖g‖²) g``, which the state keeps. On the other
    steps ``g_s ≈ g + α (‖g‖/‖g_v‖) g_v`` (Liu et al. 2022, Sec. 3.2), one gradient each. With
    ``every = 1`` every step is a SAM step. With ρ = 0 no correction is stored (it would be
    rounding noise of size 1e-16 that the normalization would blow up to α‖g‖).

    Attributes:
      base: the :class:`Base` step.
      every: the period k of the SAM steps (≥ 1; k = 1 is SAM).

    References:
      Liu, Mai, Chen, Hsieh, You 2022 (CVPR; arXiv 2203.02714), Sec. 3.2.
    """

    base: Base = Base()
    every: int = 5
    hparam_domains = domains(lr=POSITIVE, rho=NONNEGATIVE, alpha=NONNEGATIVE)

    @property
    def name(self) -> str:
        return f"looksam-{self.every}"

    def init(self, params):
        state = initial_state(self.base, params)
        state["correction"] = _tree_map(jnp.zeros_like, params)
        return state

    def step(self, params, state, loss_fn, batch, hparams, key):
        rho = hparams["rho"]
        loss, grads = loss_and_gradient(loss_fn, params, batch)
        recompute = state["count"] % self.every == 0

        def sam_step():
            perturbed = gradient(loss_fn, tree_add(params, ascent_direction(grads, rho)), batch)
            keep = jnp.asarray(rho > 0, jnp.result_type(float))
            correction = tree_scale(_orthogonal_part(perturbed, grads), keep)
            return perturbed, correction

        def reuse_step():
            correction = state["correction"]
            size = hparams["alpha"] * global_norm(grads)
            unit = safe_normalize(correction)
            return _tree_map(lambda g, u: g + size * u, grads, unit), correction

        direction, correction = jax.lax.cond(recompute, sam_step, reuse_step)
        params, state = descend(self, params, state, direction, hparams, correction=correction)
        return params, state, step_info(loss, grads, jnp.where(recompute, 2.0, 1.0))


def looksam(lr, rho, *, every=5, alpha=0.7, base=None, batch_size=None, replace=False) -> Optimizer:
    """LookSAM (Liu et al. 2022): SAM every ``every`` steps, reused correction in between.

    Args:
      lr: step size (> 0).
      rho: SAM radius (>= 0).
      every: the period k of the SAM steps (>= 1; k = 1 is SAM).
      alpha: weight α of the reused orthogonal correction (>= 0; 0.7 in the paper).
      base: the base step (None or "plain", ``st.optim.momentum(...)``, ``st.optim.adam(...)``,
        or an optax transformation without the learning rate).
      batch_size: examples per step (None: the full batch).
      replace: draw mini-batches with replacement (True) or by shuffled epochs (False).

    Returns:
      An Optimizer named "looksam-<every>"; ``info["grad_evals"]`` is 2 on SAM steps, 1 else.

    References:
      Liu, Mai, Chen, Hsieh, You 2022 (CVPR; arXiv 2203.02714), Sec. 3.2.
    """
    every = check_int("every", every, minimum=1)
    return make_optimizer(LookSAM(as_base(base), every), dict(lr=lr, rho=rho, alpha=alpha),
                          batch_size=batch_size, replace=replace)


# --- SSAM ----------------------------------------------------------------------------------------

MASK_KINDS = ("fisher", "random")
"""SSAM's mask choices: ``"fisher"`` (SSAM-F) and ``"random"``."""
SPARSITY = Domain(0.0, 1.0, False, True, False, "a fraction in [0, 1)")
"""The domain of SSAM's sparsity: a fraction in [0, 1)."""


def _per_example_fisher(params, loss_fn, batch):
    """Empirical Fisher diagonal: the mean over the batch's examples of squared gradients."""
    if batch is None or leading_size(batch) is None:
        grads = gradient(loss_fn, params, batch)
        return _tree_map(jnp.square, grads)
    one = lambda example: gradient(loss_fn, params, _tree_map(lambda x: x[None], example))
    per_example = jax.vmap(one)(batch)
    return _tree_map(lambda g: jnp.mean(jnp.square(g), axis=0), per_example)


def _top_fraction_mask(scores, keep: int):
    """A 0/1 pytree with ones on the ``keep`` largest entries of ``scores`` (all leaves pooled)."""
    flat, unravel = ravel_pytree(scores)
    if keep >= flat.size:
        return unravel(jnp.ones_like(flat))
    _, index = jax.lax.top_k(flat, keep)
    return unravel(jnp.zeros_like(flat).at[index].set(1.0))


@dataclasses.dataclass(frozen=True)
class SparseSAM(StepRule):
    """SSAM: SAM whose perturbation ``ρ g/‖g‖`` is multiplied by a 0/1 mask (Mi et al. 2022).

    The mask keeps the ``1 - sparsity`` fraction of coordinates with the largest empirical
    Fisher information (``"fisher"``: mean squared per-example gradient on the current batch,
    SSAM-F) or a uniformly random subset (``"random"``); it is recomputed every
    ``update_every`` steps and carried in the state. The mask multiplies the normalized SAM
    perturbation, as in the paper (it is not renormalized). Sparsity 0 is SAM.

    Attributes:
      base: the :class:`Base` step.
      mask: "fisher" or "random" (see :data:`MASK_KINDS`).
      sparsity: the fraction of coordinates not perturbed, in [0, 1).
      update_every: steps between mask updates (≥ 1).

    References:
      Mi, Shen, Ren, Zhou, Sun, Ji, Tao 2022 (NeurIPS; arXiv 2210.05177), Sec. 3.
    """

    base: Base = Base()
    mask: str = "fisher"
    sparsity: float = 0.5
    update_every: int = 10
    hparam_domains = LR_AND_RADIUS

    @property
    def name(self) -> str:
        return f"ssam-{self.mask}"

    def _keep(self, params) -> int:
        size = ravel_pytree(params)[0].size
        return max(1, int(round((1.0 - self.sparsity) * size)))

    def init(self, params):
        state = initial_state(self.base, params)
        state["mask"] = _tree_map(jnp.ones_like, params)
        return state

    def step(self, params, state, loss_fn, batch, hparams, key):
        loss, grads = loss_and_gradient(loss_fn, params, batch)
        update = state["count"] % self.update_every == 0
        keep = self._keep(params)

        def new_mask():
            if self.mask == "fisher":
                scores = _per_example_fisher(params, loss_fn, batch)
            else:
                flat, unravel = ravel_pytree(params)
                scores = unravel(jax.random.uniform(key, flat.shape, flat.dtype))
            return _top_fraction_mask(scores, keep)

        mask = jax.lax.cond(update, new_mask, lambda: state["mask"])
        perturbation = _tree_map(lambda e, m: e * m, ascent_direction(grads, hparams["rho"]), mask)
        perturbed = gradient(loss_fn, tree_add(params, perturbation), batch)
        params, state = descend(self, params, state, perturbed, hparams, mask=mask)
        extra = jnp.where(update, 1.0, 0.0) if self.mask == "fisher" else 0.0
        return params, state, step_info(loss, grads, 2.0 + extra)


def ssam(lr, rho, *, mask="fisher", sparsity=0.5, update_every=10, base=None, batch_size=None,
         replace=False) -> Optimizer:
    """Sparse SAM (Mi et al. 2022): perturb only a masked subset of coordinates.

    Args:
      lr: step size (> 0).
      rho: SAM radius (>= 0).
      mask: "fisher" (largest empirical Fisher information, SSAM-F) or "random".
      sparsity: fraction of coordinates NOT perturbed, in [0, 1) (0 is SAM).
      update_every: steps between mask updates (>= 1).
      base: the base step (None or "plain", ``st.optim.momentum(...)``, ``st.optim.adam(...)``,
        or an optax transformation without the learning rate).
      batch_size: examples per step (None: the full batch).
      replace: draw mini-batches with replacement (True) or by shuffled epochs (False).

    Returns:
      An Optimizer named "ssam-<mask>".

    References:
      Mi, Shen, Ren, Zhou, Sun, Ji, Tao 2022 (NeurIPS; arXiv 2210.05177), Sec. 3.
    """
    check_choice("mask", mask, MASK_KINDS)
    SPARSITY.check("sparsity", sparsity)
    update_every = check_int("update_every", update_every, minimum=1)
    rule = SparseSAM(as_base(base), mask, float(sparsity), update_every)
    return make_optimizer(rule, dict(lr=lr, rho=rho), batch_size=batch_size, replace=replace)


# --- RST -----------------------------------------------------------------------------------------

SWITCH_SCHEDULES = ("constant", "linear")
"""RST's schedules of the switching probability: ``"constant"`` and ``"linear"``."""


@dataclasses.dataclass(frozen=True)
class RandomSwitching(StepRule):
    """RST: at step t take a SAM step with probability p(t), else a plain step (Zhao et al. 2022).

    ``p(t) = p0 + (p1 - p0)·min(t/horizon, 1)`` for the linear schedule, ``p0`` for the
    constant one. The coin comes from the step's key. p ≡ 1 is SAM, p ≡ 0 the base rule.

    Attributes:
      base: the :class:`Base` step.
      schedule: "constant" or "linear" (see :data:`SWITCH_SCHEDULES`).
      horizon: steps of the linear schedule (None for "constant").

    References:
      Zhao, Zhang, Hu 2022 (arXiv 2203.09962), Alg. 1.
    """

    base: Base = Base()
    schedule: str = "constant"
    horizon: int | None = None
    name = "rst"
    hparam_domains = domains(lr=POSITIVE, rho=NONNEGATIVE, switch_prob=PROBABILITY,
                             switch_prob_end=PROBABILITY)

    def init(self, params):
        return initial_state(self.base, params)

    def probability(self, hparams, count):
        """p(t) at step ``count`` from ``hparams["switch_prob"]`` (and ``"switch_prob_end"``)."""
        start = hparams["switch_prob"]
        if self.schedule == "constant":
            return start
        progress = jnp.minimum(count / self.horizon, 1.0)
        return start + (hparams["switch_prob_end"] - start) * progress

    def step(self, params, state, loss_fn, batch, hparams, key):
        loss, grads = loss_and_gradient(loss_fn, params, batch)
        use_sam = jax.random.bernoulli(key, self.probability(hparams, state["count"]))
        direction = jax.lax.cond(
            use_sam,
            lambda: gradient(loss_fn, tree_add(params, ascent_direction(grads, hparams["rho"])),
                             batch),
            lambda: grads)
        params, state = descend(self, params, state, direction, hparams)
        return params, state, step_info(loss, grads, jnp.where(use_sam, 2.0, 1.0),
                                        sam_step=use_sam.astype(jnp.result_type(float)))


def rst(lr, rho, *, switch_prob=0.5, switch_prob_end=None, horizon=None, base=None,
        batch_size=None, replace=False) -> Optimizer:
    """Randomized sharpness-aware training (Zhao et al. 2022).

    Args:
      lr: step size (> 0).
      rho: SAM radius (>= 0).
      switch_prob: probability p0 of a SAM step (at t = 0 for the linear schedule), in [0, 1].
      switch_prob_end: p1 at ``horizon`` (None: constant p0).
      horizon: steps of the linear schedule (required with ``switch_prob_end``).
      base: the base step (None or "plain", ``st.optim.momentum(...)``, ``st.optim.adam(...)``,
        or an optax transformation without the learning rate).
      batch_size: examples per step (None: the full batch).
      replace: draw mini-batches with replacement (True) or by shuffled epochs (False).

    Returns:
      An Optimizer named "rst"; ``info["sam_step"]`` records the coin of each step.

    References:
      Zhao, Zhang, Hu 2022 (arXiv 2203.09962), Alg. 1.
    """
    values = dict(lr=lr, rho=rho, switch_prob=switch_prob)
    if switch_prob_end is None:
        rule = RandomSwitching(as_base(base), "constant", None)
    else:
        if horizon is None:
            raise ConfigError("horizon", horizon, "an integer >= 1 with switch_prob_end")
        rule = RandomSwitching(as_base(base), "linear", check_int("horizon", horizon, minimum=1))
        values["switch_prob_end"] = switch_prob_end
    return make_optimizer(rule, values, batch_size=batch_size, replace=replace)


# --- AE-SAM --------------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class AdaptiveSwitching(StepRule):
    """AE-SAM: a SAM step only when ``‖g‖²`` is large relative to its running statistics.

    ``μ_t = δ μ_{t-1} + (1-δ)‖g_t‖²``, ``σ²_t = δ σ²_{t-1} + (1-δ)(‖g_t‖² - μ_t)²`` and SAM is used
    iff ``‖g_t‖² ≥ κ·(μ_t + c σ_t)`` (Jiang et al. 2023, Sec. 3, with κ = 1). κ =
    ``threshold_scale`` is our addition so that κ = 0 (threshold 0) gives SAM on every step;
    c is static (the paper moves c linearly during training; we keep it fixed).

    Attributes:
      base: the :class:`Base` step.
      decay: δ in [0, 1) of the running mean and variance of ‖g‖².
      c: how many running standard deviations above the mean the threshold sits (any real).

    References:
      Jiang, Yang, Zhang, Kwok 2023 (ICLR; arXiv 2304.14647), Sec. 3.
    """

    base: Base = Base()
    decay: float = 0.9
    c: float = 0.0
    name = "ae-sam"
    hparam_domains = domains(lr=POSITIVE, rho=NONNEGATIVE, threshold_scale=NONNEGATIVE)

    def init(self, params):
        state = initial_state(self.base, params)
        zero = jnp.zeros((), jnp.result_type(float))
        state.update(mean=zero, var=zero)
        return state

    def step(self, params, state, loss_fn, batch, hparams, key):
        loss, grads = loss_and_gradient(loss_fn, params, batch)
        squared = tree_squared_norm(grads)
        mean = self.decay * state["mean"] + (1.0 - self.decay) * squared
        var = self.decay * state["var"] + (1.0 - self.decay) * jnp.square(squared - mean)
        threshold = hparams["threshold_scale"] * (mean + self.c * jnp.sqrt(var))
        use_sam = squared >= threshold
        direction = jax.lax.cond(
            use_sam,
            lambda: gradient(loss_fn, tree_add(params, ascent_direction(grads, hparams["rho"])),
                             batch),
            lambda: grads)
        params, state = descend(self, params, state, direction, hparams, mean=mean, var=var)
        return params, state, step_info(loss, grads, jnp.where(use_sam, 2.0, 1.0),
                                        sam_step=use_sam.astype(jnp.result_type(float)))


def ae_sam(lr, rho, *, threshold_scale=1.0, c=0.0, decay=0.9, base=None, batch_size=None,
           replace=False) -> Optimizer:
    """AE-SAM (Jiang et al. 2023): SAM when ``‖g‖² ≥ κ(μ + cσ)`` of its running statistics.

    Args:
      lr: step size (> 0).
      rho: SAM radius (>= 0).
      threshold_scale: κ (>= 0; 1 is the paper's rule, 0 is SAM on every step).
      c: how many running standard deviations above the mean (static; any real).
      decay: δ in [0, 1) of the running mean and variance.
      base: the base step (None or "plain", ``st.optim.momentum(...)``, ``st.optim.adam(...)``,
        or an optax transformation without the learning rate).
      batch_size: examples per step (None: the full batch).
      replace: draw mini-batches with replacement (True) or by shuffled epochs (False).

    Returns:
      An Optimizer named "ae-sam"; ``info["sam_step"]`` records which steps were SAM steps.

    References:
      Jiang, Yang, Zhang, Kwok 2023 (ICLR; arXiv 2304.14647), Sec. 3.
    """
    DECAY.check("decay", decay)
    REAL.check("c", c)
    rule = AdaptiveSwitching(as_base(base), float(decay), float(c))
    return make_optimizer(rule, dict(lr=lr, rho=rho, threshold_scale=threshold_scale),
                          batch_size=batch_size, replace=replace)


__all__ = ["LookSAM", "SparseSAM", "RandomSwitching", "AdaptiveSwitching", "looksam", "ssam", "rst",
           "ae_sam", "MASK_KINDS", "SWITCH_SCHEDULES"]
