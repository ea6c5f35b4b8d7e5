"""SAM whose ascent comes from earlier steps: Momentum-SAM, S2-SAM, SAMPa, Lookahead-SAM.

These rules build the perturbation from something the previous step already computed (the
momentum, the last gradient, an auxiliary iterate), so that the two gradients of SAM are either
one (Momentum-SAM, S2-SAM) or independent of each other and computable in parallel (SAMPa).
Every rule reports ``info["grad_evals"]`` (all gradients) and, where it differs,
``info["sequential_grad_evals"]`` (gradients that must wait for one another: the wall time on
parallel hardware). The loss they report at w is one extra forward pass, not a gradient.
Paper card: papers/sam-family-history.md.

References:
  Momentum-SAM   Becker, Altrock, Risse. Momentum-SAM: Sharpness Aware Minimization without
                 Computational Overhead. arXiv 2401.12033 (2024), Alg. 1.
  S2-SAM         single-step SAM that perturbs along the previous step's gradient (the "single-step /
                 history-based" family); we implement the reuse rule it is named for.
  SAMPa          Xie, Pethick, Cevher. SAMPa: Sharpness-aware Minimization Parallelized.
                 NeurIPS 2024 (arXiv 2410.10683), Sec. 3.
  Lookahead-SAM  Yu, Zhang, Kwok. Improving Sharpness-Aware Minimization by Lookahead. ICML 2024,
                 Sec. 3 (the extra-gradient and optimistic-gradient forms).
"""
from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp

from ..errors import DECAY, NONNEGATIVE, POSITIVE, PROBABILITY
from ..tree import safe_normalize, tree_add
from .base import (Base, Optimizer, StepRule, as_base, descend, domains, gradient, initial_state,
                   make_optimizer, step_info)
from .sharpness_aware import sam_gradient

_tree_map = jax.tree_util.tree_map


def _scaled(tree, factor):
    return _tree_map(lambda x: jnp.asarray(factor, x.dtype) * x, tree)


def _zeros(params):
    return _tree_map(jnp.zeros_like, params)


def parallel_gradients(loss_fn, points, batch):
    """The gradients of ``loss_fn`` at several independent points as one batched (vmapped) call.

    Args:
      loss_fn: ``loss_fn(params, batch) -> scalar``.
      points: a pytree of parameters with a leading axis of points.
      batch: the batch shared by every point.

    Returns:
      A pytree like ``points``: the gradient at each point (one gradient's depth: the points do
      not depend on one another).
    """
    return jax.vmap(lambda p: gradient(loss_fn, p, batch))(points)


def _stack(*trees):
    return _tree_map(lambda *xs: jnp.stack(xs), *trees)


def _unstack(tree, index):
    return _tree_map(lambda x: x[index], tree)


# --- Momentum-SAM --------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class MomentumSAM(StepRule):
    """Momentum-SAM: the gradient at ``w − ρ v/‖v‖``, v the accumulated momentum; one gradient.

    ``g̃ = ∇L(w − ρ v/‖v‖)``, ``v+ = β v + g̃``, ``w+ = w − lr · base(g̃)``. The rule keeps its own
    buffer v (β static); with ``base=st.optim.momentum(β)`` the base's momentum is the same v and
    the update is Becker et al.'s SGD-with-MSAM. Since the step is ``w − lr v``, −v points
    downhill: the perturbation is taken *along the descent* (as in the paper), and the first
    step (v = 0) is a plain step. ρ = 0 is the base rule bit for bit.

    Attributes:
      base: the :class:`Base` step.
      beta: β in [0, 1) of the buffer v.

    References:
      Becker, Altrock, Risse 2024 (arXiv 2401.12033), Alg. 1.
    """

    base: Base = Base()
    beta: float = 0.9
    name = "momentum-sam"
    hparam_domains = domains(lr=POSITIVE, rho=NONNEGATIVE)

    def init(self, params):
        state = initial_state(self.base, params)
        state["velocity"] = _zeros(params)
        return state

    def step(self, params, state, loss_fn, batch, hparams, key):
        velocity = state["velocity"]
        offset = _scaled(safe_normalize(velocity), -hparams["rho"])
        perturbed = gradient(loss_fn, tree_add(params, offset), batch)
        loss = loss_fn(params, batch)
        velocity = _tree_map(lambda v, g: jnp.asarray(self.beta, v.dtype) * v + g, velocity, perturbed)
        params, state = descend(self, params, state, perturbed, hparams, velocity=velocity)
        return params, state, step_info(loss, perturbed, 1.0)


def momentum_sam(lr, rho, *, beta=0.9, base=None, batch_size=None, replace=False) -> Optimizer:
    """Momentum-SAM (Becker et al. 2024): perturb along the momentum, one gradient per step.

    Args:
      lr: step size (> 0).
      rho: radius of the perturbation along −v/‖v‖ (>= 0; 0 is the base rule).
      beta: the buffer's β in [0, 1) (use ``base=st.optim.momentum(beta)`` for the paper's rule).
      base: the base step.
      batch_size: examples per step (None: the full batch).
      replace: draw mini-batches with replacement (True) or by shuffled epochs (False).

    Returns:
      An Optimizer named "momentum-sam"; ``info["grad_norm"]`` is that of the gradient it took
      (at the perturbed point).

    References:
      Becker, Altrock, Risse 2024 (arXiv 2401.12033), Alg. 1.
    """
    DECAY.check("beta", beta)
    return make_optimizer(MomentumSAM(as_base(base), float(beta)), dict(lr=lr, rho=rho),
                          batch_size=batch_size, replace=replace)


# --- S2-SAM --------------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class SingleStepSAM(StepRule):
    """S2-SAM: SAM's ascent along the *previous* step's gradient; one gradient per step.

    ``g̃_t = ∇L(w_t + ρ g̃_{t−1}/‖g̃_{t−1}‖)``, ``w+ = w − lr · base(g̃_t)``, g̃_{−1} = 0 (the first
    step is a plain step). ρ = 0 is the base rule bit for bit.

    Attributes:
      base: the :class:`Base` step.

    References:
      The single-step (history-based) SAM named S2-SAM: the ascent direction is the gradient the
      previous step computed, so no second gradient is needed.
    """

    base: Base = Base()
    name = "s2-sam"
    hparam_domains = domains(lr=POSITIVE, rho=NONNEGATIVE)

    def init(self, params):
        state = initial_state(self.base, params)
        state["previous"] = _zeros(params)
        return state

    def step(self, params, state, loss_fn, batch, hparams, key):
        offset = _scaled(safe_normalize(state["previous"]), hparams["rho"])
        perturbed = gradient(loss_fn, tree_add(params, offset), batch)
        loss = loss_fn(params, batch)
        params, state = descend(self, params, state, perturbed, hparams, previous=perturbed)
        return params, state, step_info(loss, perturbed, 1.0)


def s2_sam(lr, rho, *, base=None, batch_size=None, replace=False) -> Optimizer:
    """S2-SAM: perturb along the previous step's gradient, one gradient per step.

    Args:
      lr: step size (> 0).
      rho: radius (>= 0; 0 is the base rule).
      base: the base step.
      batch_size: examples per step (None: the full batch).
      replace: draw mini-batches with replacement (True) or by shuffled epochs (False).

    Returns:
      An Optimizer named "s2-sam".

    References:
      See :class:`SingleStepSAM`.
    """
    return make_optimizer(SingleStepSAM(as_base(base)), dict(lr=lr, rho=rho),
                          batch_size=batch_size, replace=replace)


# --- SAMPa ---------------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class ParallelSAM(StepRule):
    """SAMPa: the ascent from an auxiliary iterate, so SAM's two gradients are independent.

    With the auxiliary gradient ``a_t = ∇L(y_t)`` from the previous step:
    ``ε_t = ρ a_t/‖a_t‖``, ``y_{t+1} = w_t − lr · a_t``; then ``∇L(w_t + ε_t)`` and
    ``a_{t+1} = ∇L(y_{t+1})`` depend only on known points and are computed as one batched call;
    ``w+ = w − lr · base((1 − λ) ∇L(w_t + ε_t) + λ a_{t+1})``. Two gradients per step, one deep.
    We start from a_0 = 0 (the first step is a plain step at y_1 = w_0).

    Attributes:
      base: the :class:`Base` step.

    References:
      Xie, Pethick, Cevher 2024 (NeurIPS; arXiv 2410.10683), Sec. 3 (SAMPa and SAMPa-λ).
    """

    base: Base = Base()
    name = "sampa"
    hparam_domains = domains(lr=POSITIVE, rho=NONNEGATIVE, auxiliary_weight=PROBABILITY)

    def init(self, params):
        state = initial_state(self.base, params)
        state["auxiliary_grad"] = _zeros(params)
        return state

    def step(self, params, state, loss_fn, batch, hparams, key):
        auxiliary = state["auxiliary_grad"]
        ascent_point = tree_add(params, _scaled(safe_normalize(auxiliary), hparams["rho"]))
        next_auxiliary_point = _tree_map(lambda w, a: w - jnp.asarray(hparams["lr"], w.dtype) * a,
                                         params, auxiliary)
        both = parallel_gradients(loss_fn, _stack(ascent_point, next_auxiliary_point), batch)
        perturbed, next_auxiliary = _unstack(both, 0), _unstack(both, 1)
        loss = loss_fn(params, batch)
        lam = hparams["auxiliary_weight"]
        direction = _tree_map(lambda p, a: (1.0 - jnp.asarray(lam, p.dtype)) * p
                              + jnp.asarray(lam, p.dtype) * a, perturbed, next_auxiliary)
        params, state = descend(self, params, state, direction, hparams,
                                auxiliary_grad=next_auxiliary)
        return params, state, step_info(loss, perturbed, 2.0, sequential_grad_evals=jnp.asarray(1.0))


def sampa(lr, rho, *, auxiliary_weight=0.0, base=None, batch_size=None, replace=False) -> Optimizer:
    """SAMPa (Xie et al. 2024): SAM with its two gradients computed in parallel.

    Args:
      lr: step size (> 0; also the auxiliary sequence's step).
      rho: radius (>= 0).
      auxiliary_weight: λ in [0, 1] mixing in the auxiliary gradient (0: SAMPa; SAMPa-0.2 uses 0.2).
      base: the base step.
      batch_size: examples per step (None: the full batch).
      replace: draw mini-batches with replacement (True) or by shuffled epochs (False).

    Returns:
      An Optimizer named "sampa"; ``info["sequential_grad_evals"]`` is 1.

    References:
      Xie, Pethick, Cevher 2024 (NeurIPS; arXiv 2410.10683), Sec. 3.
    """
    return make_optimizer(ParallelSAM(as_base(base)), dict(lr=lr, rho=rho, auxiliary_weight=auxiliary_weight),
                          batch_size=batch_size, replace=replace)


# --- Lookahead-SAM -------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class LookaheadSAM(StepRule):
    """Lookahead-SAM: SAM's gradient taken at an extrapolated point ŵ (extra-gradient SAM).

    Extra-gradient form: ``ŵ = w − lr · s(w)``, ``w+ = w − lr · base(s(ŵ))``, where s(x) =
    ∇L(x + ρ∇L(x)/‖∇L(x)‖) is SAM's gradient (four gradients per step). Optimistic form
    (``optimistic=True``): ``ŵ_t = w_t − lr · s(ŵ_{t−1})`` reuses the previous step's SAM gradient,
    two gradients per step. ρ = 0 gives extra-gradient (or optimistic) gradient descent.

    Attributes:
      base: the :class:`Base` step.
      optimistic: reuse the last SAM gradient for the extrapolation.

    References:
      Yu, Zhang, Kwok 2024 (ICML), Sec. 3: the lookahead (extra-gradient / optimistic) SAM
      updates the paper starts from; its simplified final algorithm is not reproduced.
    """

    base: Base = Base()
    optimistic: bool = False
    hparam_domains = domains(lr=POSITIVE, rho=NONNEGATIVE)

    @property
    def name(self) -> str:
        return "lookahead-sam-og" if self.optimistic else "lookahead-sam"

    def init(self, params):
        state = initial_state(self.base, params)
        if self.optimistic:
            state["previous"] = _zeros(params)
        return state

    def step(self, params, state, loss_fn, batch, hparams, key):
        lr, rho = hparams["lr"], hparams["rho"]
        if self.optimistic:
            extrapolation = state["previous"]
            loss = loss_fn(params, batch)
            grads = None
        else:
            loss, grads, extrapolation = sam_gradient(params, loss_fn, batch, rho)
        lookahead = _tree_map(lambda w, s: w - jnp.asarray(lr, w.dtype) * s, params, extrapolation)
        _, lookahead_grads, direction = sam_gradient(lookahead, loss_fn, batch, rho)
        extra = {"previous": direction} if self.optimistic else {}
        params, state = descend(self, params, state, direction, hparams, **extra)
        cost = 2.0 if self.optimistic else 4.0
        return params, state, step_info(loss, lookahead_grads if grads is None else grads, cost)


def lookahead_sam(lr, rho, *, optimistic=False, base=None, batch_size=None, replace=False) -> Optimizer:
    """Lookahead-SAM (Yu et al. 2024): SAM's gradient at an extra-gradient look-ahead point.

    Args:
      lr: step size (> 0; also the look-ahead step).
      rho: radius (>= 0).
      optimistic: reuse the previous SAM gradient for the look-ahead (2 gradients, not 4).
      base: the base step.
      batch_size: examples per step (None: the full batch).
      replace: draw mini-batches with replacement (True) or by shuffled epochs (False).

    Returns:
      An Optimizer named "lookahead-sam" or "lookahead-sam-og".

    References:
      Yu, Zhang, Kwok 2024 (ICML), Sec. 3.
    """
    if not isinstance(optimistic, bool):
        from ..errors import ConfigError
        raise ConfigError("optimistic", optimistic, "True or False")
    return make_optimizer(LookaheadSAM(as_base(base), optimistic), dict(lr=lr, rho=rho),
                          batch_size=batch_size, replace=replace)


__all__ = ["MomentumSAM", "SingleStepSAM", "ParallelSAM", "LookaheadSAM", "momentum_sam", "s2_sam",
           "sampa", "lookahead_sam", "parallel_gradients"]
