"""Balancedness-aware regularization (BAR): SAM's balancing effect at one gradient per step.

References:
  Li, Zhang, He. Implicit Regularization of Sharpness-Aware Minimization for Scale-Invariant
  Problems. NeurIPS 2024 (arXiv 2410.14802), Algorithms 2 (oBAR) and 3 (nBAR).

Both rules act on factor pairs ``(x, y)`` as a decoupled, weight-decay-like rescaling applied
before the base step, derived from the regularizer ``alpha_t · |xᵀx - yᵀy|``:

- nBAR (non-overparametrized, e.g. LoRA): if ``‖g_x‖ >= ‖g_y‖`` then ``x ← (1 + alpha·lr) x,
  y ← (1 - alpha·lr) y``, else the reverse — B moves to where ``‖g_x‖ = ‖g_y‖`` as under SAM.
- oBAR (overparametrized): if ``‖x‖ >= ‖y‖`` then ``x ← (1 - alpha·lr) x, y ← (1 + alpha·lr) y``,
  else the reverse — |B| shrinks as under SAM.

Parameters must be a dict with keys ``"x"`` and ``"y"`` (one pair) or a list/tuple of such dicts
(one pair per layer, each balanced on its own).
"""
from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp

from ..errors import NONNEGATIVE, POSITIVE, ConfigError, check_choice, check_int
from ..tree import factor_pairs, global_norm, rebuild_factor_pairs
from .base import (Base, Optimizer, StepRule, as_base, base_init, base_step, domains,
                   loss_and_gradient, make_optimizer)

SCHEDULES = ("constant", "linear", "cosine")
"""The decays of BAR's strength alpha_t: ``"constant"``, ``"linear"``, ``"cosine"``."""


def alpha_schedule(alpha0, count, schedule: str, horizon: int | None):
    """BAR's strength ``alpha_t`` at step ``count``: constant, or decaying to 0 at ``horizon``
    (linearly or by a cosine).

    Args:
      alpha0: the initial strength alpha_0 (≥ 0).
      count: the step index t (an int or a traced int array).
      schedule: one of :data:`SCHEDULES`.
      horizon: the step at which a decay reaches 0 (≥ 1; unused for "constant"); steps past it
        stay at 0.

    Returns:
      ``alpha_t`` (``alpha0`` itself for "constant", else a scalar array).

    References:
      Li, Zhang, He 2024, Algorithms 2 and 3 (the scheduled alpha_t).
    """
    if schedule == "constant":
        return alpha0
    progress = jnp.minimum(count / horizon, 1.0)
    if schedule == "linear":
        return alpha0 * (1.0 - progress)
    return alpha0 * 0.5 * (1.0 + jnp.cos(jnp.pi * progress))


@dataclasses.dataclass(frozen=True)
class BalancednessAware(StepRule):
    """The nBAR / oBAR rule on top of a base rule (one gradient evaluation per step).

    Built by :func:`nbar` and :func:`obar`; acts on ``{"x", "y"}`` factor pairs (or a list of
    them), see the module docstring.

    Attributes:
      variant: "nbar" (balance towards ‖g_x‖ = ‖g_y‖) or "obar" (shrink |‖x‖² − ‖y‖²|).
      base: the :class:`Base` step applied after the rescaling.
      schedule: the decay of alpha, one of :data:`SCHEDULES`.
      horizon: the decay's length in steps (None for "constant").

    References:
      Li, Zhang, He 2024, Algorithms 2 (oBAR) and 3 (nBAR).
    """

    variant: str = "nbar"
    base: Base = Base()
    schedule: str = "constant"
    horizon: int | None = None
    hparam_domains = domains(lr=POSITIVE, alpha=NONNEGATIVE)

    @property
    def name(self) -> str:
        return self.variant

    def init(self, params):
        factor_pairs(params)  # fail early on parameters without factor pairs
        return {"base": base_init(self.base, params), "count": jnp.zeros((), jnp.int32)}

    def step(self, params, state, loss_fn, batch, hparams, key):
        loss, grads = loss_and_gradient(loss_fn, params, batch)
        alpha = alpha_schedule(hparams["alpha"], state["count"], self.schedule, self.horizon)
        rate = alpha * hparams["lr"]
        balanced = []
        for pair, grad in zip(factor_pairs(params), factor_pairs(grads)):
            if self.variant == "nbar":
                grow_x = global_norm(grad["x"]) >= global_norm(grad["y"])
            else:
                grow_x = global_norm(pair["x"]) < global_norm(pair["y"])
            scale_x = jnp.where(grow_x, 1.0 + rate, 1.0 - rate)
            scale_y = jnp.where(grow_x, 1.0 - rate, 1.0 + rate)
            new_pair = dict(pair)
            new_pair["x"] = pair["x"] * scale_x.astype(pair["x"].dtype)
            new_pair["y"] = pair["y"] * scale_y.astype(pair["y"].dtype)
            balanced.append(new_pair)
        params = rebuild_factor_pairs(params, balanced)
        params, base_state = base_step(self.base, params, grads, state["base"], hparams["lr"])
        info = {"loss": loss, "grad_norm": global_norm(grads), "grad_evals": jnp.asarray(1.0),
                "alpha": alpha}
        return params, {"base": base_state, "count": state["count"] + 1}, info


def _bar(variant, lr, alpha, schedule, horizon, base, batch_size, replace) -> Optimizer:
    check_choice("schedule", schedule, SCHEDULES)
    if schedule != "constant":
        if horizon is None:
            raise ConfigError("horizon", horizon, f"an integer >= 1 for the {schedule!r} schedule")
        check_int("horizon", horizon, minimum=1)
    rule = BalancednessAware(variant, as_base(base), schedule, horizon)
    return make_optimizer(rule, {"lr": lr, "alpha": alpha}, batch_size=batch_size, replace=replace)


def nbar(lr, alpha, *, schedule="constant", horizon=None, base=None, batch_size=None,
         replace=False) -> Optimizer:
    """nBAR: balance towards ‖g_x‖ = ‖g_y‖ as SAM does, at one gradient per step.

    Args:
      lr: step size (> 0).
      alpha: regularization strength alpha_0 (>= 0).
      schedule: "constant", "linear" or "cosine" decay of alpha to 0 at ``horizon`` steps.
      horizon: number of steps of the decay (an integer ≥ 1; required for linear / cosine).
      base: base rule (see :func:`sharp_theory.optim.gd`).
      batch_size: examples per step (None: full batch).
      replace: draw mini-batches with replacement (True) or by shuffled epochs (False).

    Returns:
      An Optimizer named "nbar".

    Raises:
      ConfigError: a value outside its domain, an unknown schedule, or a decay without horizon.

    References:
      Li, Zhang, He 2024, Alg. 3.
    """
    return _bar("nbar", lr, alpha, schedule, horizon, base, batch_size, replace)


def obar(lr, alpha, *, schedule="constant", horizon=None, base=None, batch_size=None,
         replace=False) -> Optimizer:
    """oBAR: shrink |‖x‖² − ‖y‖²| as SAM does on overparametrized problems, one gradient a step.

    Args:
      lr: step size (> 0).
      alpha: regularization strength alpha_0 (>= 0).
      schedule: "constant", "linear" or "cosine" decay of alpha to 0 at ``horizon`` steps.
      horizon: number of steps of the decay (an integer ≥ 1; required for linear / cosine).
      base: base rule (see :func:`sharp_theory.optim.gd`).
      batch_size: examples per step (None: full batch).
      replace: draw mini-batches with replacement (True) or by shuffled epochs (False).

    Returns:
      An Optimizer named "obar".

    Raises:
      ConfigError: a value outside its domain, an unknown schedule, or a decay without horizon.

    References:
      Li, Zhang, He 2024, Alg. 2.
    """
    return _bar("obar", lr, alpha, schedule, horizon, base, batch_size, replace)
