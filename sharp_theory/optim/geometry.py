"""Other geometries: where SAM looks for the worst case.

ASAM (a |w|-rescaled ball), preconditioned SAM (Adam's geometry) and Functional-SAM (through the
model's outputs only); paper card papers/sam-family-geometry.md. With the radius 0 every rule
equals its base rule bit-for-bit (tests/test_sam_family.py).

References:
  ASAM            Kwon, Kim, Park, Choi. ICML 2021 (arXiv 2102.11600), Sec. 3, adaptive ascent
                  ``ε = ρ T_w² g / ‖T_w g‖`` with ``T_w = diag(|w| + η)``.
  Preconditioned  Singh, Mobahi, Agarwala, Dauphin. arXiv 2502.02407 (2025), Sec. 5
  SAM and         (perturbation ``ρ P⁻¹g/‖P⁻¹g‖`` with Adam's ``P = √v̂ + ε``) and Sec. 4
  Functional-SAM  (``g_FSAM = J_F(w + ε)ᵀ ∇_F ℓ(F(w))``).
"""
from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp

from ..errors import NONNEGATIVE, POSITIVE, ConfigError
from ..tree import safe_normalize, tree_add, tree_scale
from .base import (LR_AND_RADIUS, Base, Optimizer, StepRule, adam, adam_moments, as_base, descend,
                   domains, gradient, initial_state, loss_and_gradient, make_optimizer, step_info)
from .sharpness_aware import ascent_direction

_tree_map = jax.tree_util.tree_map


# --- ASAM ----------------------------------------------------------------------------------------

def adaptive_ascent_direction(params, grads, rho, eta):
    """ASAM's ascent ``ε = ρ T² g / ‖T g‖`` with ``T = diag(|w| + η)`` (element-wise).

    This maximizes ``gᵀε`` over the ellipsoid ``‖T⁻¹ε‖ ≤ ρ`` (Kwon et al. 2021, Sec. 3, p = 2).
    With ``η = 0`` it is equivariant under every diagonal positive rescaling ``w → A w`` that
    leaves the loss invariant: the ascent at ``A w`` is ``A ε``. A zero gradient gives ε = 0.

    Args:
      params: the parameter pytree w (its magnitudes give T).
      grads: the gradient g, a pytree like ``params``.
      rho: radius (>= 0).
      eta: offset η >= 0 that keeps zero weights perturbable (0.01 in the paper).

    Returns:
      The perturbation ε (a pytree like params).

    References:
      Kwon, Kim, Park, Choi 2021 (ICML; arXiv 2102.11600), Sec. 3.
    """
    scale = _tree_map(lambda w: jnp.abs(w) + jnp.asarray(eta, w.dtype), params)
    scaled_grads = _tree_map(lambda t, g: t * g, scale, grads)
    unit = safe_normalize(scaled_grads)
    return _tree_map(lambda t, u: jnp.asarray(rho, u.dtype) * t * u, scale, unit)


@dataclasses.dataclass(frozen=True)
class AdaptiveSAM(StepRule):
    """ASAM: SAM with the ascent taken in the |w|-rescaled geometry (two gradients per step).

    Its ρ is on another scale than SAM's; a sweep gives ASAM a grid of its own with a
    per-optimizer axis (``grid={"rho": [...], "asam.rho": [...]}``).

    Attributes:
      base: the :class:`Base` step.

    References:
      Kwon, Kim, Park, Choi 2021, Sec. 3 and Alg. 1.
    """

    base: Base = Base()
    name = "asam"
    hparam_domains = domains(lr=POSITIVE, rho=NONNEGATIVE, eta=NONNEGATIVE)

    def init(self, params):
        return initial_state(self.base, params)

    def step(self, params, state, loss_fn, batch, hparams, key):
        loss, grads = loss_and_gradient(loss_fn, params, batch)
        perturbation = adaptive_ascent_direction(params, grads, hparams["rho"], hparams["eta"])
        perturbed = gradient(loss_fn, tree_add(params, perturbation), batch)
        params, state = descend(self, params, state, perturbed, hparams)
        return params, state, step_info(loss, grads, 2.0)


def asam(lr, rho, *, eta=0.01, base=None, batch_size=None, replace=False) -> Optimizer:
    """Adaptive SAM (Kwon et al. 2021): ``w+ = w - lr·base(∇L(w + ρT²g/‖Tg‖))``, ``T = |w| + η``.

    Args:
      lr: step size (> 0).
      rho: radius in the rescaled geometry (>= 0). It is not on SAM's scale: the paper uses
        about 10x SAM's rho because ``‖ε‖ ≈ ρ·|w|``.
      eta: offset η (>= 0; 0.01 in the paper, 0 gives exact rescaling invariance).
      base: the base step (None or "plain", ``st.optim.momentum(...)``, ``st.optim.adam(...)``,
        or an optax transformation without the learning rate).
      batch_size: examples per step (None: the full batch).
      replace: draw mini-batches with replacement (True) or by shuffled epochs (False).

    Returns:
      An Optimizer named "asam" (in a sweep, ``grid={"asam.rho": [...]}`` gives it its own ρ
      axis next to SAM's "rho").

    References:
      Kwon, Kim, Park, Choi 2021 (ICML; arXiv 2102.11600), Sec. 3 and Alg. 1.
    """
    return make_optimizer(AdaptiveSAM(as_base(base)), dict(lr=lr, eta=eta, rho=rho),
                          batch_size=batch_size, replace=replace)


# --- Preconditioned SAM and Functional-SAM -------------------------------------------------------

def _adam_preconditioner(base: Base, base_state):
    """``P = √v̂ + eps`` from Adam's second moments (bias-corrected; ``P = eps`` before step 1)."""
    moments = adam_moments(base, base_state)
    count = moments.count.astype(jnp.result_type(float))
    correction = jnp.where(count > 0, 1.0 - base.b2 ** count, 1.0)
    return _tree_map(lambda nu: jnp.sqrt(nu / correction) + base.eps, moments.nu)


def preconditioned_ascent(grads, preconditioner, rho):
    """The preconditioned ascent ``ε = ρ P⁻¹g / ‖P⁻¹g‖`` (0 for a zero gradient).

    Args:
      grads: the gradient pytree g.
      preconditioner: a pytree like ``grads`` of positive entries P (element-wise).
      rho: the radius (≥ 0).

    Returns:
      ε, a pytree like ``grads`` with norm ρ (or 0).

    References:
      Singh et al. 2025 (arXiv 2502.02407), Sec. 5.
    """
    scaled = _tree_map(lambda g, p: g / p, grads, preconditioner)
    return tree_scale(safe_normalize(scaled), rho)


class OutputModel:
    """The extra interface Functional-SAM and the SAF-style penalty need: a model's outputs.

    A subclass (a frozen dataclass, so rules stay hashable) implements

    - ``outputs(params, batch) -> array``: the model's outputs F(w) on the batch (predictions,
      logits, or the merged weight matrix of a factorized model);
    - ``loss(outputs, batch) -> scalar``: the loss as a function of the outputs,

    such that ``loss(outputs(params, batch), batch)`` is the problem's loss. Everything the
    loss needs must come from ``batch`` or the dataclass's own (static) fields; the rules call
    the model, not ``loss_fn``. :func:`check_output_model` verifies the identity on a point.
    """

    def outputs(self, params, batch):  # pragma: no cover - abstract
        raise NotImplementedError

    def loss(self, outputs, batch):  # pragma: no cover - abstract
        raise NotImplementedError

    def __call__(self, params, batch):
        """The composed loss ``loss(outputs(params, batch), batch)``."""
        return self.loss(self.outputs(params, batch), batch)


def check_output_model(model: OutputModel, problem, params=None, batch=None, rtol=1e-12):
    """Verify that an :class:`OutputModel` reproduces a problem's loss: raise unless
    ``model(params, batch)`` equals ``problem.loss(params, batch)`` to ``rtol``.

    Args:
      model: the :class:`OutputModel` to check.
      problem: the :class:`sharp_theory.problems.Problem` whose loss it should equal.
      params: the point to compare at (default ``problem.params0``).
      batch: the batch to compare on (default ``problem.full_batch()``).
      rtol: relative tolerance of the comparison (absolute tolerance 0).

    Returns:
      None (the check passed).

    Raises:
      ConfigError: the two losses differ, naming both values.
    """
    import numpy as np

    params = problem.params0 if params is None else params
    batch = problem.full_batch() if batch is None else batch
    ours, theirs = float(model(params, batch)), float(problem.loss(params, batch))
    if not np.isclose(ours, theirs, rtol=rtol, atol=0.0):
        raise ConfigError("model", f"loss {ours!r}", f"the problem's loss {theirs!r}")


@dataclasses.dataclass(frozen=True)
class PreconditionedSAM(StepRule):
    """SAM with the perturbation preconditioned by Adam's second moments (Singh et al. 2025).

    ``ε = ρ P⁻¹g/‖P⁻¹g‖``, ``P = √v̂ + eps`` read from the Adam base's state before this
    step's update (so the step uses the preconditioner Adam has built so far). The base must be
    Adam. Two gradients per step.

    Attributes:
      base: the :class:`Base` step; must be Adam (its second moments give P).

    References:
      Singh, Mobahi, Agarwala, Dauphin 2025 (arXiv 2502.02407), Sec. 5.
    """

    base: Base = dataclasses.field(default_factory=adam)
    name = "precond-sam"
    hparam_domains = LR_AND_RADIUS

    def init(self, params):
        return initial_state(self.base, params)

    def step(self, params, state, loss_fn, batch, hparams, key):
        loss, grads = loss_and_gradient(loss_fn, params, batch)
        preconditioner = _adam_preconditioner(self.base, state["base"])
        perturbation = preconditioned_ascent(grads, preconditioner, hparams["rho"])
        perturbed = gradient(loss_fn, tree_add(params, perturbation), batch)
        params, state = descend(self, params, state, perturbed, hparams)
        return params, state, step_info(loss, grads, 2.0)


def preconditioned_sam(lr, rho, *, base=None, batch_size=None, replace=False) -> Optimizer:
    """Preconditioned SAM: Adam-preconditioned ascent, Adam descent.

    Args:
      lr: step size (> 0).
      rho: radius (>= 0).
      base: an Adam base (default ``st.optim.adam()``); any other base is a ConfigError.
      batch_size: examples per step (None: full batch).
      replace: draw mini-batches with replacement (True) or by shuffled epochs (False).

    Returns:
      An Optimizer named "precond-sam".

    Raises:
      ConfigError: a non-Adam base, or a value outside its domain.

    References:
      Singh et al. 2025 (arXiv 2502.02407), Sec. 5.
    """
    base = adam() if base is None else as_base(base)
    if base.kind != "adam":
        raise ConfigError("base", base.kind, "an Adam base (st.optim.adam(...))")
    return make_optimizer(PreconditionedSAM(base), dict(lr=lr, rho=rho),
                          batch_size=batch_size, replace=replace)


@dataclasses.dataclass(frozen=True)
class FunctionalSAM(StepRule):
    """Functional-SAM: the Jacobian at the perturbed point, the loss derivative at w.

    ``g = J_F(w + ε)ᵀ ∇_F ℓ(F(w))`` with SAM's ``ε = ρ g0/‖g0‖`` (or the preconditioned ε with
    ``precondition=True`` and an Adam base), where ``g0 = J_F(w)ᵀ∇_F ℓ(F(w))`` is the plain
    gradient (Singh et al. 2025, Sec. 4). SAM's gradient ``J_F(w+ε)ᵀ∇_F ℓ(F(w+ε))`` adds the
    "logit path" through ``∇_F ℓ``; Functional-SAM keeps only the "functional path". Cost: a
    forward and a backward at w and one vector-Jacobian product at w + ε: 2 gradients.
    The split of the loss into outputs and loss-of-outputs comes from ``model`` (an
    :class:`OutputModel`) or, with ``model=None``, from the problem itself: the runner's
    ``loss_fn`` carries a problem's ``outputs`` and ``loss_of_outputs`` when it declares them
    (:meth:`sharp_theory.problems.Problem.loss_function`).

    Attributes:
      base: the :class:`Base` step.
      model: the :class:`OutputModel` giving the output/loss split (None: the problem's own).
      precondition: use Adam's preconditioned perturbation (needs an Adam base).

    References:
      Singh et al. 2025 (arXiv 2502.02407), Sec. 4.
    """

    base: Base = Base()
    model: OutputModel | None = None
    precondition: bool = False
    hparam_domains = LR_AND_RADIUS

    @property
    def name(self) -> str:
        return "functional-sam" + ("-precond" if self.precondition else "")

    def init(self, params):
        return initial_state(self.base, params)

    def step(self, params, state, loss_fn, batch, hparams, key):
        outputs_of, loss_of_outputs = output_split(self.model, loss_fn)
        forward = lambda p: outputs_of(p, batch)
        outputs, pullback = jax.vjp(forward, params)
        loss, output_grad = jax.value_and_grad(lambda o: loss_of_outputs(o, batch))(outputs)
        (grads,) = pullback(output_grad)
        if self.precondition:
            perturbation = preconditioned_ascent(
                grads, _adam_preconditioner(self.base, state["base"]), hparams["rho"])
        else:
            perturbation = ascent_direction(grads, hparams["rho"])
        _, perturbed_pullback = jax.vjp(forward, tree_add(params, perturbation))
        (direction,) = perturbed_pullback(output_grad)
        params, state = descend(self, params, state, direction, hparams)
        return params, state, step_info(loss, grads, 2.0)


def output_split(model, loss_fn):
    """``(outputs(params, batch), loss_of_outputs(outputs, batch))`` for an output-based rule.

    Args:
      model: an :class:`OutputModel`, or None to take the split from ``loss_fn``.
      loss_fn: the runner's loss; a problem that declares ``outputs`` and ``loss_of_outputs``
        hands them over through it (:meth:`sharp_theory.problems.Problem.loss_function`).

    Returns:
      The two functions.

    Raises:
      ConfigError: ``model`` is None and the problem declares no outputs.
    """
    if model is not None:
        return model.outputs, model.loss
    outputs_of = getattr(loss_fn, "outputs", None)
    loss_of_outputs = getattr(loss_fn, "loss_of_outputs", None)
    if outputs_of is None or loss_of_outputs is None or not getattr(loss_fn, "has_outputs", False):
        raise ConfigError("model", None, "an OutputModel, or a problem that declares outputs "
                          "and loss_of_outputs")
    return outputs_of, loss_of_outputs


def require_output_model(model, allow_none: bool = False):
    """Refuse ``model`` unless it is a hashable :class:`OutputModel` (or None if allowed).

    Args:
      model: the value given as ``model=``.
      allow_none: accept None (the rule then uses the problem's own outputs).

    Raises:
      ConfigError: naming what a model must be.
    """
    if model is None and allow_none:
        return
    if not isinstance(model, OutputModel):
        raise ConfigError("model", type(model).__name__, "an st.optim.OutputModel")
    try:
        hash(model)
    except TypeError:
        raise ConfigError("model", type(model).__name__, "a hashable OutputModel (a frozen "
                          "dataclass without array fields)") from None


def functional_sam(lr, rho, *, model=None, precondition=False, base=None, batch_size=None,
                   replace=False) -> Optimizer:
    """Functional-SAM (Singh et al. 2025, arXiv 2502.02407, Sec. 4).

    Args:
      lr: step size (> 0).
      rho: radius (>= 0).
      model: an :class:`OutputModel` splitting the loss into outputs and loss-of-outputs, or
        None (default) for the split the problem declares (``Problem.outputs`` and
        ``Problem.loss_of_outputs``).
      precondition: use Adam's preconditioned perturbation (needs ``base=st.optim.adam()``).
      base: the base step (None or "plain", ``st.optim.momentum(...)``, ``st.optim.adam(...)``,
        or an optax transformation without the learning rate).
      batch_size: examples per step (None: the full batch).
      replace: draw mini-batches with replacement (True) or by shuffled epochs (False).

    Returns:
      An Optimizer named "functional-sam" ("functional-sam-precond" with ``precondition``).

    Raises:
      ConfigError: a model that is not a hashable :class:`OutputModel`, ``precondition`` without
        an Adam base, or a value outside its domain.

    References:
      Singh, Mobahi, Agarwala, Dauphin 2025 (arXiv 2502.02407), Sec. 4.
    """
    require_output_model(model, allow_none=True)
    base = as_base(base)
    if precondition and base.kind != "adam":
        raise ConfigError("base", base.kind, "an Adam base when precondition=True")
    return make_optimizer(FunctionalSAM(base, model, bool(precondition)), dict(lr=lr, rho=rho),
                          batch_size=batch_size, replace=replace)


__all__ = ["AdaptiveSAM", "PreconditionedSAM", "FunctionalSAM", "OutputModel", "asam",
           "preconditioned_sam", "functional_sam", "adaptive_ascent_direction",
           "preconditioned_ascent", "check_output_model", "output_split", "require_output_model"]
