"""Learned and free: a radius learned online (LETS) and a trajectory-consistency penalty (SAF/MESA).

Paper card papers/sam-family-learned.md. With the meta step (LETS) or the penalty weight (SAF)
at 0 the rules reduce to SAM and to the base rule (tests/test_sam_family.py).

References:
  LETS        Wang, Jiang, Fu, Zhang. Enhancing Sharpness-Aware Minimization by Learning
              Perturbation Radius. arXiv 2408.08222 (2024), Sec. 3: ρ follows a hypergradient
              of ½(validation loss - training loss)² through the SAM update (we use the
              exact hypergradient of a one-step lookahead instead of their diagonal-Hessian
              approximation).
  SAF / MESA  Du, Zhou, Feng, Tan, Zhou. Sharpness-Aware Training for Free. NeurIPS 2022
              (arXiv 2205.14083): a trajectory-consistency penalty between the current
              outputs and those of an exponential moving average of the weights (MESA form).
"""
from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp

from ..errors import DECAY, NONNEGATIVE, POSITIVE, ConfigError
from ..tree import leading_size, tree_add
from .base import (Base, Optimizer, StepRule, as_base, descend, domains, gradient, initial_state,
                   loss_and_gradient, make_optimizer, step_info)
from .geometry import OutputModel, output_split, require_output_model
from .sharpness_aware import ascent_direction

_tree_map = jax.tree_util.tree_map


# --- LETS-style learned radius -------------------------------------------------------------------

def _halves(batch, parity):
    """Split the batch's examples into two halves; ``parity`` swaps which half comes first."""
    n = leading_size(batch) if batch is not None else None
    if n is None or n < 2:
        raise ConfigError("batch", n, "a batch of at least 2 examples (LETS holds half out)")
    half = n // 2
    first = _tree_map(lambda x: x[:half], batch)
    second = _tree_map(lambda x: x[half:2 * half], batch)
    pick = lambda a, b: _tree_map(lambda u, v: jnp.where(parity, v, u), a, b)
    return pick(first, second), pick(second, first)


@dataclasses.dataclass(frozen=True)
class LearnedRadius(StepRule):
    """LETS-style SAM whose radius is learned online (state ``rho``, initialised from hparams).

    Each step: a SAM step with the current radius ρ_t on the whole batch; then ρ moves by
    gradient descent (meta step ``beta``) on ``J(ρ) = ½(L_B(w⁺(ρ)) - L_A(w⁺(ρ)))²``
    (Wang et al. 2024, arXiv 2408.08222, Sec. 3), the squared
    gap between held-out half B and training half A after the one-step lookahead
    ``w⁺(ρ) = w - lr ∇L_A(w + ρ g_A/‖g_A‖)``; the halves swap every step so both serve as
    held-out data. ρ is clipped at 0. ``∂J/∂ρ`` goes through the lookahead's gradient, one
    Hessian-vector product on half the batch. Cost per step: 2 (SAM) + 0.5 (lookahead) + 1
    (half-batch gradients of both losses at w⁺) gradients and 0.5 HVP. The lookahead uses a
    plain step whatever the base.

    Attributes:
      base: the :class:`Base` step.

    References:
      Wang, Jiang, Fu, Zhang 2024 (arXiv 2408.08222), Sec. 3 (we use the exact
      hypergradient of a one-step lookahead instead of their diagonal-Hessian approximation).
    """

    base: Base = Base()
    name = "lets"
    hparam_domains = domains(lr=POSITIVE, rho=NONNEGATIVE, beta=NONNEGATIVE)

    def init(self, params):
        state = initial_state(self.base, params)
        state["rho"] = jnp.asarray(-1.0, jnp.result_type(float))  # < 0: take hparams["rho"]
        return state

    def step(self, params, state, loss_fn, batch, hparams, key):
        rho = jnp.where(state["rho"] < 0, hparams["rho"], state["rho"])
        loss, grads = loss_and_gradient(loss_fn, params, batch)
        perturbed = gradient(loss_fn, tree_add(params, ascent_direction(grads, rho)), batch)
        train, held_out = _halves(batch, state["count"] % 2 == 1)
        train_grads = gradient(loss_fn, params, train)

        def gap(radius):
            point = tree_add(params, ascent_direction(train_grads, radius))
            lookahead = _tree_map(lambda w, g: w - hparams["lr"] * g, params,
                                  gradient(loss_fn, point, train))
            return 0.5 * jnp.square(loss_fn(lookahead, held_out) - loss_fn(lookahead, train))

        slope = jax.grad(gap)(rho)
        new_rho = jnp.maximum(rho - hparams["beta"] * slope, 0.0)
        params, state = descend(self, params, state, perturbed, hparams, rho=new_rho)
        return params, state, step_info(loss, grads, 3.5, 0.5, rho=rho)


def lets(lr, rho, *, beta=0.01, base=None, batch_size=None, replace=False) -> Optimizer:
    """SAM with a learned radius (LETS-style; see :class:`LearnedRadius`).

    Args:
      lr: step size (> 0).
      rho: initial radius ρ_0 (>= 0).
      beta: meta step size of ρ (>= 0; 0 keeps ρ = ρ_0, i.e. SAM).
      base: the base step (None or "plain", ``st.optim.momentum(...)``, ``st.optim.adam(...)``,
        or an optax transformation without the learning rate).
      batch_size: examples per step (None: the full batch); at least 2 (LETS holds half
        of each batch out).
      replace: draw mini-batches with replacement (True) or by shuffled epochs (False).

    Returns:
      An Optimizer named "lets"; ``info["rho"]`` records the radius each step used.

    References:
      Wang, Jiang, Fu, Zhang 2024 (arXiv 2408.08222), Sec. 3.
    """
    return make_optimizer(LearnedRadius(as_base(base)), dict(lr=lr, rho=rho, beta=beta),
                          batch_size=batch_size, replace=replace)


# --- SAF-style trajectory consistency ------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class TrajectoryConsistency(StepRule):
    """SAF/MESA-style: descend ``L(w) + (λ/2)·mean‖F(w) - F(w̄)‖²`` with w̄ an EMA of the weights.

    Du et al. 2022 penalise the change of the outputs along the trajectory (SAF: outputs
    recorded E epochs ago, with a KL divergence on softmax outputs; MESA: the outputs of an
    exponential moving average of the weights). Our models are regressions, so the distance is
    the squared error of the outputs; w̄ follows ``w̄ ← δ w̄ + (1 - δ) w``. Cost: one gradient
    plus one forward pass of the averaged model (counted as 0 gradients). λ = 0 is the base rule.

    Attributes:
      base: the :class:`Base` step.
      model: the :class:`OutputModel` giving F(w) (None: the problem's declared outputs).
      decay: δ in [0, 1) of the weight average w̄.

    References:
      Du, Zhou, Feng, Tan, Zhou 2022 (NeurIPS; arXiv 2205.14083) (SAF and its
      MESA form).
    """

    base: Base = Base()
    model: OutputModel | None = None
    decay: float = 0.9
    name = "saf"
    hparam_domains = domains(lr=POSITIVE, lam=NONNEGATIVE)

    def init(self, params):
        state = initial_state(self.base, params)
        state["teacher"] = params
        return state

    def step(self, params, state, loss_fn, batch, hparams, key):
        outputs_of, _ = output_split(self.model, loss_fn)
        teacher_outputs = jax.lax.stop_gradient(outputs_of(state["teacher"], batch))

        def objective(p):
            penalty = 0.5 * jnp.mean(jnp.square(outputs_of(p, batch) - teacher_outputs))
            return loss_fn(p, batch) + hparams["lam"] * penalty

        _, total_grads = jax.value_and_grad(objective)(params)
        loss = loss_fn(params, batch)
        params, state = descend(self, params, state, total_grads, hparams)
        teacher = _tree_map(lambda t, w: self.decay * t + (1.0 - self.decay) * w,
                            state["teacher"], params)
        state["teacher"] = teacher
        return params, state, step_info(loss, total_grads, 1.0)


def saf(lr, lam, *, model=None, decay=0.9, base=None, batch_size=None, replace=False) -> Optimizer:
    """SAF/MESA-style trajectory-consistency penalty (Du et al. 2022), one gradient per step.

    Args:
      lr: step size (> 0).
      lam: penalty weight λ (>= 0; 0 is the base rule).
      model: an :class:`OutputModel` giving the outputs F(w), or None (default) for the
        outputs the problem declares (``Problem.outputs``).
      decay: δ in [0, 1) of the weight average that supplies the reference outputs.
      base: the base step (None or "plain", ``st.optim.momentum(...)``, ``st.optim.adam(...)``,
        or an optax transformation without the learning rate).
      batch_size: examples per step (None: the full batch).
      replace: draw mini-batches with replacement (True) or by shuffled epochs (False).

    Returns:
      An Optimizer named "saf".

    References:
      Du, Zhou, Feng, Tan, Zhou 2022 (NeurIPS; arXiv 2205.14083).
    """
    require_output_model(model, allow_none=True)
    DECAY.check("decay", decay)
    return make_optimizer(TrajectoryConsistency(as_base(base), model, float(decay)),
                          dict(lr=lr, lam=lam), batch_size=batch_size, replace=replace)


__all__ = ["LearnedRadius", "TrajectoryConsistency", "lets", "saf"]
