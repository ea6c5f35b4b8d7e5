"""Adversarial training (AT): descend the loss at the worst input perturbation of each example.

``w+ = w − lr · base(∇_w L(w, x + δ*))`` with ``δ*`` the per-example maximizer of the loss in an
ℓ_p ball of radius ε around each input, found by projected gradient ascent (PGD) on the inputs.
For a linear score and a loss that is monotone in the margin (logistic) or quadratic in it
(squared), one normalized step of length ε (``steps=1``, ``step_size=1``, the default) *is* the
exact inner maximum: the input gradient of example k is parallel to ±w, and the dual-norm step
along it is the ℓ_p vector of norm ε that moves the margin the most (see
:mod:`sharp_theory.theory.robustness`). More steps (PGD) serve non-linear models.

The rule sits on the optimizer contract: ``epsilon`` and the relative PGD step ``step_size`` are
hyperparameters (pytree leaves), so ``st.sweep`` runs an ε grid in one compiled call; with
ε = 0 the rule takes exactly gradient descent's steps.

References:
  Madry, Makelov, Schmidt, Tsipras, Vladu. Towards Deep Learning Models Resistant to Adversarial
    Attacks. ICLR 2018 (PGD adversarial training; step 2.5·ε/steps).
  Goodfellow, Shlens, Szegedy. Explaining and Harnessing Adversarial Examples. ICLR 2015 (the
    one-step attack, exact for linear scores).
  Zhang, He, Zhu, Chen, Wang, Wei. On the Duality Between Sharpness-Aware Minimization and
    Adversarial Training. ICML 2024 (AT next to SAM).
"""
from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping

import jax
import jax.numpy as jnp

from ..errors import NONNEGATIVE, POSITIVE, ConfigError, check_int
from ..tree import global_norm
from .base import (Base, Optimizer, StepRule, as_base, base_step, domains, initial_state,
                   loss_and_gradient, make_optimizer)

ATTACK_NORMS = (2.0, math.inf)
"""The input balls the PGD attack supports: ℓ2 and ℓ∞."""


def check_attack_norm(norm) -> float:
    """The attack norm as a float: 2 or ∞ (``math.inf`` or ``"inf"``).

    Args:
      norm: the requested norm.

    Returns:
      ``2.0`` or ``math.inf``.

    Raises:
      ConfigError: any other value.
    """
    if isinstance(norm, str) and norm.strip().lower() == "inf":
        return math.inf
    if isinstance(norm, bool) or not isinstance(norm, (int, float)) or float(norm) not in ATTACK_NORMS:
        raise ConfigError("norm", norm, "2 or inf (the attack ball's norm)")
    return float(norm)


def _rows(array):
    return array.reshape(array.shape[0], -1)


def dual_step_direction(gradient, norm: float):
    """The unit-ℓ_p direction of steepest ascent of each example's input gradient.

    ``sign(g)`` for p = ∞, ``g/‖g‖₂`` for p = 2 (row by row over the leading example axis); a zero
    gradient gives a zero direction, never NaN.

    Args:
      gradient: the input gradients, leading axis = examples.
      norm: 2 or ``math.inf``.

    Returns:
      An array like ``gradient``.
    """
    if norm == math.inf:
        return jnp.sign(gradient)
    rows = _rows(gradient)
    squared = jnp.sum(rows * rows, axis=1, keepdims=True)
    safe = jnp.where(squared > 0, squared, jnp.ones_like(squared))
    unit = jnp.where(squared > 0, rows / jnp.sqrt(safe), jnp.zeros_like(rows))
    return unit.reshape(gradient.shape)


def project_to_ball(delta, epsilon, norm: float):
    """Each example's perturbation projected onto the ℓ_p ball of radius ε (p ∈ {2, ∞}).

    Args:
      delta: the perturbations, leading axis = examples.
      epsilon: the radius ε ≥ 0 (a scalar, possibly traced).
      norm: 2 or ``math.inf``.

    Returns:
      An array like ``delta``.
    """
    epsilon = jnp.asarray(epsilon, delta.dtype)
    if norm == math.inf:
        return jnp.clip(delta, -epsilon, epsilon)
    rows = _rows(delta)
    length = jnp.sqrt(jnp.sum(rows * rows, axis=1, keepdims=True))
    scale = jnp.where(length > epsilon, epsilon / jnp.where(length > 0, length, 1.0), 1.0)
    return (rows * scale).reshape(delta.shape)


def pgd_perturbation(objective, inputs, epsilon, *, norm: float = math.inf, steps: int = 1,
                     step_size=1.0):
    """Per-example perturbations of ``inputs`` that ascend ``objective`` inside ℓ_p balls.

    Starts at δ = 0 and takes ``steps`` steps ``δ ← Π_ε(δ + step_size·ε·u(∇_δ objective))``, u the
    dual-norm direction (:func:`dual_step_direction`) and Π_ε the projection on each example's
    ball (:func:`project_to_ball`). ``objective`` must be a sum or mean of per-example terms (so
    each example's gradient is its own). With ``steps=1, step_size=1`` and a linear score it is the
    exact worst perturbation.

    Args:
      objective: ``objective(perturbed_inputs) -> scalar`` to maximize.
      inputs: the inputs, leading axis = examples.
      epsilon: the radius ε ≥ 0.
      norm: 2 or ``math.inf``.
      steps: the number of ascent steps (≥ 1, static).
      step_size: the step as a fraction of ε.

    Returns:
      δ, an array like ``inputs`` with every row in its ball.

    References:
      Madry et al. 2018 (PGD).
    """
    epsilon = jnp.asarray(epsilon, inputs.dtype)
    length = jnp.asarray(step_size, inputs.dtype) * epsilon
    ascend = jax.grad(lambda delta: objective(inputs + delta))

    def body(_, delta):
        return project_to_ball(delta + length * dual_step_direction(ascend(delta), norm),
                               epsilon, norm)

    return jax.lax.fori_loop(0, steps, body, jnp.zeros_like(inputs))


@dataclasses.dataclass(frozen=True)
class AdversarialTraining(StepRule):
    """Adversarial training: the base step on the gradient at per-example worst-case inputs.

    The batch must be a dict holding the inputs under ``inputs`` (leading axis = examples); the
    rule perturbs them by :func:`pgd_perturbation` on ``loss_fn(params, batch)`` and steps with
    the gradient of the loss at the perturbed batch. Built by :func:`adversarial_training`.

    Attributes:
      base: the :class:`Base` step.
      norm: the attack ball's norm, 2 or ∞.
      steps: PGD steps of the inner maximization (1: the one-step attack, exact for linear
        scores).
      inputs: the batch key of the inputs.

    References:
      Madry et al. 2018; Goodfellow, Shlens, Szegedy 2015.
    """

    base: Base = Base()
    norm: float = math.inf
    steps: int = 1
    inputs: str = "x"
    hparam_domains = domains(lr=POSITIVE, epsilon=NONNEGATIVE, step_size=POSITIVE)

    @property
    def name(self) -> str:
        norm = "linf" if self.norm == math.inf else "l2"
        return f"at-{norm}" if self.steps == 1 else f"at-{norm}-pgd{self.steps}"

    def init(self, params):
        return initial_state(self.base, params)

    def step(self, params, state, loss_fn, batch, hparams, key):
        if not isinstance(batch, Mapping) or self.inputs not in batch:
            raise ConfigError("batch", type(batch).__name__,
                              f"a dict batch holding the inputs under {self.inputs!r}")
        inputs = batch[self.inputs]

        def loss_at(perturbed):
            return loss_fn(params, {**batch, self.inputs: perturbed})

        delta = pgd_perturbation(loss_at, inputs, hparams["epsilon"], norm=self.norm,
                                 steps=self.steps, step_size=hparams["step_size"])
        adversarial = {**batch, self.inputs: inputs + delta}
        adversarial_loss, grads = loss_and_gradient(loss_fn, params, adversarial)
        params_next, base_state = base_step(self.base, params, grads, state["base"], hparams["lr"])
        info = {"loss": loss_fn(params, batch), "adversarial_loss": adversarial_loss,
                "grad_norm": global_norm(grads), "grad_evals": jnp.asarray(1.0 + self.steps)}
        return params_next, {"base": base_state, "count": state["count"] + 1}, info


def adversarial_training(lr, epsilon, *, norm=math.inf, steps: int = 1, step_size=None,
                         inputs: str = "x", base=None, batch_size=None,
                         replace: bool = False) -> Optimizer:
    """Adversarial training with a PGD inner maximization (one exact step for linear scores).

    Args:
      lr: step size (> 0).
      epsilon: the attack radius ε (≥ 0; 0 gives gradient descent's steps exactly).
      norm: the attack ball, 2 or ``math.inf`` (default ℓ∞).
      steps: PGD steps (≥ 1; 1 is the one-step attack, exact for linear scores).
      step_size: each PGD step as a fraction of ε (> 0; default 1 for one step, else 2.5/steps).
      inputs: the key of the inputs in the problem's batch dict.
      base: base rule (plain, momentum, adam, or an optax transformation).
      batch_size: examples per step (None: the full batch).
      replace: draw mini-batches with replacement.

    Returns:
      An :class:`sharp_theory.optim.Optimizer` named "at-linf" / "at-l2" (with "-pgdK" for K > 1
      steps), hyperparameters ``lr``, ``epsilon`` and ``step_size``.

    Raises:
      ConfigError: a value outside its domain, a norm other than 2 or ∞, ``steps`` < 1.

    References:
      Madry et al. 2018; Goodfellow, Shlens, Szegedy 2015; Zhang et al. 2024.

    Examples:
      >>> import sharp_theory as st
      >>> opt = st.optim.adversarial_training(0.1, 0.05)
      >>> opt.name, sorted(opt.hparams)
      ('at-linf', ['epsilon', 'lr', 'step_size'])
      >>> st.optim.adversarial_training(0.1, -0.05)
      Traceback (most recent call last):
      ...
      sharp_theory.errors.ConfigError: invalid epsilon=-0.05: expected a finite value >= 0
    """
    norm = check_attack_norm(norm)
    steps = check_int("steps", steps, minimum=1)
    if not isinstance(inputs, str):
        raise ConfigError("inputs", inputs, "the batch key of the inputs (a string)")
    if step_size is None:
        step_size = 1.0 if steps == 1 else 2.5 / steps
    rule = AdversarialTraining(as_base(base), norm, steps, inputs)
    return make_optimizer(rule, {"lr": lr, "epsilon": epsilon, "step_size": step_size},
                          batch_size=batch_size, replace=replace)
