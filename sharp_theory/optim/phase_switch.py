"""Late-phase SAM: the base step (GD/SGD, momentum, Adam) until a chosen step, any rule after.

Zhou et al. (ICLR 2025) report that switching from SGD to SAM only for the last few epochs gives
nearly the flatness and test error of SAM from the start. :func:`late_phase` turns any rule into
that schedule: before ``switch_step`` every step is the rule's own base step on the plain
gradient (one gradient), from ``switch_step`` on it is the rule's step. The base state
(momentum buffers, Adam moments) and the step counter are shared, so the switch does not
restart them. ``switch_step`` is a hyperparameter leaf: a grid of switch steps is one sweep.

References:
  Zhou, Wang, Mao, Li, Yan. Sharpness-Aware Minimization Efficiently Selects Flatter Minima Late in
  Training. ICLR 2025 (arXiv 2410.10373).
"""
from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp

from ..errors import NONNEGATIVE, ConfigError
from ..tree import global_norm
from .base import Base, Optimizer, StepRule, base_step, domains, loss_and_gradient

SWITCH = "switch_step"
"""The hyperparameter name of the switch step."""


@dataclasses.dataclass(frozen=True)
class LatePhase(StepRule):
    """The base step before ``hparams["switch_step"]``, the wrapped rule from then on.

    Attributes:
      inner: the wrapped :class:`StepRule` (its state must hold ``"base"`` and ``"count"``, as every
        rule's but the averaging wrappers' does).

    References:
      Zhou, Wang, Mao, Li, Yan 2025 (ICLR; arXiv 2410.10373).
    """

    inner: StepRule = None

    @property
    def base(self) -> Base:
        """The wrapped rule's base."""
        return self.inner.base

    @property
    def name(self) -> str:
        return f"late-{self.inner.name}"

    @property
    def hparam_domains(self):
        """The wrapped rule's hyperparameters and ``switch_step`` (>= 0)."""
        return domains(**dict(self.inner.hparam_domains), **{SWITCH: NONNEGATIVE})

    def init(self, params):
        state = self.inner.init(params)
        if not isinstance(state, dict) or "base" not in state or "count" not in state:
            raise ConfigError("optimizer", self.inner.name,
                              "a rule whose state holds its base step and counter (not swa/wasam)")
        return state

    def step(self, params, state, loss_fn, batch, hparams, key):
        inner_hparams = {k: v for k, v in hparams.items() if k != SWITCH}

        def late():
            return self.inner.step(params, state, loss_fn, batch, inner_hparams, key)

        def early():
            loss, grads = loss_and_gradient(loss_fn, params, batch)
            new_params, base_state = base_step(self.base, params, grads, state["base"], hparams["lr"])
            new_state = dict(state)
            new_state.update(base=base_state, count=state["count"] + 1)
            shapes = jax.eval_shape(late)[2]
            values = {"loss": loss, "grad_norm": global_norm(grads), "grad_evals": 1.0}
            info = {name: jnp.asarray(values.get(name, 0.0), shape.dtype).reshape(shape.shape)
                    if name in values else jnp.zeros(shape.shape, shape.dtype)
                    for name, shape in shapes.items()}
            return new_params, new_state, info

        switch = hparams[SWITCH]
        switched = state["count"].astype(jnp.result_type(switch)) >= switch
        return jax.lax.cond(switched, late, early)


def late_phase(optimizer: Optimizer, switch_step) -> Optimizer:
    """Run ``optimizer``'s base step until ``switch_step``, then ``optimizer`` (late-phase SAM).

    Args:
      optimizer: any optimizer whose state holds its base step (every ``st.optim`` constructor's
        but :func:`swa`/:func:`wasam`); its hyperparameters stay sweepable.
      switch_step: the first step taken by ``optimizer`` (>= 0; 0 is ``optimizer`` throughout).

    Returns:
      An Optimizer named "late-<name>" with the hyperparameter ``switch_step`` added.

    Raises:
      ConfigError: ``optimizer`` is not an Optimizer or ``switch_step`` < 0.

    References:
      Zhou, Wang, Mao, Li, Yan 2025 (ICLR; arXiv 2410.10373).

    Examples:
      >>> import sharp_theory as st
      >>> opt = st.optim.late_phase(st.optim.sam(0.1, 0.05), switch_step=900)
      >>> opt.name, sorted(opt.hparams)
      ('late-sam', ['lr', 'rho', 'switch_step'])
    """
    if not isinstance(optimizer, Optimizer):
        raise ConfigError("optimizer", type(optimizer).__name__, "an st.optim Optimizer")
    rule = LatePhase(optimizer.rule)
    value = rule.hparam_domains[SWITCH].check(SWITCH, switch_step)
    hparams = dict(optimizer.hparams)
    hparams[SWITCH] = jnp.asarray(value, dtype=jnp.result_type(float))
    return Optimizer(rule, hparams, optimizer.batch_size, optimizer.replace)


__all__ = ["LatePhase", "late_phase"]
