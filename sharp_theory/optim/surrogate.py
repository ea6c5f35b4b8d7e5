"""SAM plus an explicit sharpness term: GSAM, CR-SAM and the universal class (Frob-SAM, Det-SAM).

Each rule descends SAM's direction (or the plain gradient) corrected by an estimate of the
gradient of a sharpness measure. Paper card: papers/sam-family-surrogate.md. With ρ = 0 and the
correction's weight 0 every rule equals its base rule bit for bit (tests/test_sam_family_more.py).

References:
  GSAM       Zhuang, Gong, Yuan, Cui, Adam, Dvornek, Tatikonda, Duncan, Liu. Surrogate Gap
             Minimization Improves Sharpness-Aware Training. ICLR 2022 (arXiv 2203.08065), Alg. 1.
  CR-SAM     Wu, Luo, Wunsch. CR-SAM: Curvature Regularized Sharpness-Aware Minimization. AAAI 2024
             (arXiv 2312.13555).
  Universal  Tahmasebi, Soleymani, Bahri, Jegelka, Jaillet. A Universal Class of Sharpness-Aware
             Minimization Algorithms. ICML 2024 (arXiv 2406.03682).
"""
from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
from jax.flatten_util import ravel_pytree

from ..errors import NONNEGATIVE, POSITIVE, check_choice, check_positive
from .base import (Base, Optimizer, StepRule, as_base, descend, domains, gradient,
                   initial_state, loss_and_gradient, make_optimizer, step_info)
from .sharpness_aware import sam_gradient

_tree_map = jax.tree_util.tree_map


def tree_inner(a, b):
    """The inner product ``Σ_leaves Σ a·b`` of two pytrees of the same structure.

    Args:
      a: a pytree of arrays.
      b: a pytree like ``a``.

    Returns:
      A scalar array.
    """
    return sum(jnp.sum(x * y) for x, y in zip(jax.tree_util.tree_leaves(a),
                                              jax.tree_util.tree_leaves(b)))


def orthogonal_correction(grads, perturbed_grads):
    """GSAM's ``g_⊥``: the part of the plain gradient g orthogonal to the perturbed gradient g_p.

    ``g_⊥ = g − (⟨g, g_p⟩ / ⟨g_p, g_p⟩) g_p`` with 0/0 := 0. Both inner products come from the
    same function, so with g_p = g (ρ = 0) the ratio is exactly 1 and g_⊥ exactly 0.

    Args:
      grads: the plain gradient g = ∇L(w).
      perturbed_grads: the gradient at the ascent point g_p = ∇L(w + ε).

    Returns:
      g_⊥, a pytree like ``grads``; ⟨g_⊥, g_p⟩ = 0 up to rounding.

    References:
      Zhuang et al. 2022, Alg. 1 (gradient decomposition).
    """
    reference_sq = tree_inner(perturbed_grads, perturbed_grads)
    tiny = jnp.finfo(jnp.result_type(reference_sq)).tiny
    coefficient = jnp.where(reference_sq > tiny,
                            tree_inner(grads, perturbed_grads) / jnp.maximum(reference_sq, tiny), 0.0)
    return _tree_map(lambda g, p: g - coefficient.astype(g.dtype) * p, grads, perturbed_grads)


@dataclasses.dataclass(frozen=True)
class SurrogateGap(StepRule):
    """GSAM: SAM's descent plus an ascent along the part of ∇L(w) orthogonal to ∇L(w + ε).

    ``w+ = w − lr · base(g_p − α g_⊥)`` with g_p = ∇L(w + ρ g/‖g‖) and g_⊥ from
    :func:`orthogonal_correction`. The surrogate gap h(w) = L(w + ε) − L(w) has gradient
    ≈ g_p − g; moving along +g_⊥ lowers it, and since g_⊥ ⟂ g_p the perturbed loss is unchanged
    to first order (Zhuang et al. 2022). α = 0 is SAM; ρ = 0 is the base rule.

    Attributes:
      base: the :class:`Base` step.

    References:
      Zhuang et al. 2022 (ICLR; arXiv 2203.08065), Alg. 1.
    """

    base: Base = Base()
    name = "gsam"
    hparam_domains = domains(lr=POSITIVE, rho=NONNEGATIVE, alpha=NONNEGATIVE)

    def init(self, params):
        return initial_state(self.base, params)

    def step(self, params, state, loss_fn, batch, hparams, key):
        loss, grads, perturbed = sam_gradient(params, loss_fn, batch, hparams["rho"])
        correction = orthogonal_correction(grads, perturbed)
        alpha = hparams["alpha"]
        direction = _tree_map(lambda p, c: p - jnp.asarray(alpha, p.dtype) * c, perturbed, correction)
        params, state = descend(self, params, state, direction, hparams)
        return params, state, step_info(loss, grads, 2.0)


def gsam(lr, rho, *, alpha=0.1, base=None, batch_size=None, replace=False) -> Optimizer:
    """GSAM (Zhuang et al. 2022): SAM plus an orthogonal ascent that lowers the surrogate gap.

    Args:
      lr: step size (> 0).
      rho: SAM radius (>= 0; 0 gives the base rule bit for bit).
      alpha: weight α of the orthogonal correction (>= 0; 0 is SAM).
      base: the base step (see :func:`sharp_theory.optim.gd`).
      batch_size: examples per step (None: the full batch).
      replace: draw mini-batches with replacement (True) or by shuffled epochs (False).

    Returns:
      An Optimizer named "gsam" (two gradients per step).

    References:
      Zhuang et al. 2022 (ICLR; arXiv 2203.08065), Alg. 1.

    Examples:
      On ``½‖w‖²`` the perturbed gradient is parallel to g, so g_⊥ = 0 and GSAM is SAM.

      >>> import jax, jax.numpy as jnp
      >>> import sharp_theory as st
      >>> opt = st.optim.gsam(lr=0.1, rho=0.05, alpha=0.5)
      >>> w = jnp.array([3.0, 4.0])
      >>> w1, _, _ = opt.step(w, opt.init(w), lambda w, b: 0.5 * jnp.sum(w**2), None, opt.hparams,
      ...                     jax.random.key(0))
      >>> [round(float(v), 6) for v in w1]
      [2.697, 3.596]
    """
    return make_optimizer(SurrogateGap(as_base(base)), dict(lr=lr, rho=rho, alpha=alpha),
                          batch_size=batch_size, replace=replace)


# --- CR-SAM --------------------------------------------------------------------------------------

def rademacher_like(params, key):
    """A pytree like ``params`` of independent ±1 entries (one key split per leaf)."""
    flat, unravel = ravel_pytree(params)
    return unravel(jax.random.rademacher(key, flat.shape, flat.dtype))


def trace_gradient_estimate(loss_fn, params, batch, grads, probe, h):
    """Finite-difference estimate of ∇(vᵀ∇²L(w)v): ``(∇L(w+hv) + ∇L(w−hv) − 2∇L(w)) / h²``.

    Exact (up to rounding) when ∇L is quadratic in w (L cubic); O(h²) off otherwise. With a
    Rademacher probe v its mean over v is ∇ tr ∇²L(w) (Hutchinson). The two gradients at w ± hv
    are independent and computed as one batched call.

    Args:
      loss_fn: ``loss_fn(params, batch) -> scalar``.
      params: the parameters w.
      batch: the batch.
      grads: ∇L(w) (already computed by the caller).
      probe: the direction v (a pytree like ``params``).
      h: the difference step (> 0).

    Returns:
      A pytree like ``params``.

    References:
      Wu, Luo, Wunsch 2024 (AAAI), the finite-difference trace gradient.
    """
    signs = jnp.asarray([1.0, -1.0], jnp.result_type(float))
    points = jax.vmap(lambda s: _tree_map(lambda w, v: w + (s * h).astype(w.dtype) * v, params, probe))(signs)
    both = jax.vmap(lambda p: gradient(loss_fn, p, batch))(points)
    return _tree_map(lambda b, g: (b[0] + b[1] - 2.0 * g) / jnp.asarray(h * h, g.dtype), both, grads)


@dataclasses.dataclass(frozen=True)
class CurvatureRegularizedSAM(StepRule):
    """CR-SAM: SAM's direction plus β times a finite-difference estimate of ∇ tr ∇²L.

    ``w+ = w − lr · base(∇L(w + ε) + β (∇L(w+hv) + ∇L(w−hv) − 2∇L(w))/h²)`` with a fresh
    Rademacher probe v each step. Four gradients per step, of which the two at w ± hv run in
    parallel with the SAM gradient. Our rule regularizes the plain trace; the paper divides it
    by a gradient-norm scale ("normalized trace"), which is not reproduced here.

    Attributes:
      base: the :class:`Base` step.

    References:
      Wu, Luo, Wunsch 2024 (AAAI; arXiv 2312.13555).
    """

    base: Base = Base()
    name = "cr-sam"
    hparam_domains = domains(lr=POSITIVE, rho=NONNEGATIVE, beta=NONNEGATIVE, h=POSITIVE)

    def init(self, params):
        return initial_state(self.base, params)

    def step(self, params, state, loss_fn, batch, hparams, key):
        loss, grads, perturbed = sam_gradient(params, loss_fn, batch, hparams["rho"])
        probe = rademacher_like(params, key)
        curvature = trace_gradient_estimate(loss_fn, params, batch, grads, probe, hparams["h"])
        beta = hparams["beta"]
        direction = _tree_map(lambda p, c: p + jnp.asarray(beta, p.dtype) * c, perturbed, curvature)
        params, state = descend(self, params, state, direction, hparams)
        return params, state, step_info(loss, grads, 4.0, sequential_grad_evals=jnp.asarray(2.0))


def cr_sam(lr, rho, *, beta=0.01, h=0.01, base=None, batch_size=None, replace=False) -> Optimizer:
    """CR-SAM (Wu et al. 2024): SAM plus a finite-difference Hessian-trace penalty.

    Args:
      lr: step size (> 0).
      rho: SAM radius (>= 0).
      beta: weight β of the trace gradient (>= 0; 0 is SAM).
      h: finite-difference step (> 0).
      base: the base step.
      batch_size: examples per step (None: the full batch).
      replace: draw mini-batches with replacement (True) or by shuffled epochs (False).

    Returns:
      An Optimizer named "cr-sam" (four gradients per step, two sequential).

    References:
      Wu, Luo, Wunsch 2024 (AAAI; arXiv 2312.13555).
    """
    return make_optimizer(CurvatureRegularizedSAM(as_base(base)), dict(lr=lr, rho=rho, beta=beta, h=h),
                          batch_size=batch_size, replace=replace)


# --- the universal class: Frob-SAM, Det-SAM ------------------------------------------------------

HESSIAN_MEASURES = ("trace", "frobenius", "determinant")
"""The sharpness measures of :class:`HessianMeasurePenalty`: tr H, ‖H‖_F², log det(H + δI)."""


def measure_gradient_estimate(loss_fn, params, batch, measure: str, probe, shift):
    """A one-probe estimate of the gradient of a Hessian measure S(w) (exact in expectation).

    - ``"trace"``: ∇(vᵀHv), unbiased for ∇ tr H with a Rademacher or Gaussian probe;
    - ``"frobenius"``: ∇‖Hv‖², unbiased for ∇‖H‖_F² with a Gaussian probe (E vvᵀ = I);
    - ``"determinant"``: the exact ∇ log|det(H + δI)| from the dense Hessian (small models only;
      the probe is unused).

    Args:
      loss_fn: ``loss_fn(params, batch) -> scalar``.
      params: the parameters w.
      batch: the batch.
      measure: one of :data:`HESSIAN_MEASURES`.
      probe: a pytree like ``params``.
      shift: δ of the determinant measure.

    Returns:
      A pytree like ``params``.

    References:
      Tahmasebi et al. 2024 (ICML; arXiv 2406.03682): Frob-SAM and Det-SAM target ‖H‖_F and det H.
    """
    flat, unravel = ravel_pytree(params)
    flat_loss = lambda w: loss_fn(unravel(w), batch)
    v, _ = ravel_pytree(probe)

    def hvp(w):
        return jax.jvp(jax.grad(flat_loss), (w,), (v,))[1]

    if measure == "trace":
        value = lambda w: jnp.dot(v, hvp(w))
    elif measure == "frobenius":
        value = lambda w: jnp.sum(jnp.square(hvp(w)))
    else:
        def value(w):
            matrix = jax.hessian(flat_loss)(w)
            matrix = 0.5 * (matrix + matrix.T) + shift * jnp.eye(w.size, dtype=w.dtype)
            return jnp.linalg.slogdet(matrix)[1]
    return unravel(jax.grad(value)(flat))


@dataclasses.dataclass(frozen=True)
class HessianMeasurePenalty(StepRule):
    """Gradient descent on ``L + λ S`` for a Hessian measure S of the universal class.

    ``w+ = w − lr · base(∇L(w) + λ ĝ_S)``, ĝ_S from :func:`measure_gradient_estimate` with a fresh
    probe each step (Gaussian for "frobenius", Rademacher for "trace"). Frob-SAM targets ‖H‖_F
    (we descend ‖H‖_F², which has the same minimizers and an unbiased one-probe gradient); Det-SAM
    targets det H (we descend log det(H + δI), δ > 0 keeping it finite at degenerate minima).
    These estimators use Hessian-vector products by autodiff, not the paper's zeroth-order
    perturbation estimators; the measure each descends is the one the paper names.

    Attributes:
      base: the :class:`Base` step.
      measure: "trace", "frobenius" or "determinant".

    References:
      Tahmasebi, Soleymani, Bahri, Jegelka, Jaillet 2024 (ICML; arXiv 2406.03682).
    """

    base: Base = Base()
    measure: str = "frobenius"
    hparam_domains = domains(lr=POSITIVE, penalty=NONNEGATIVE, shift=POSITIVE)

    @property
    def name(self) -> str:
        return {"trace": "trace-sam", "frobenius": "frob-sam", "determinant": "det-sam"}[self.measure]

    def init(self, params):
        return initial_state(self.base, params)

    def step(self, params, state, loss_fn, batch, hparams, key):
        loss, grads = loss_and_gradient(loss_fn, params, batch)
        flat, unravel = ravel_pytree(params)
        if self.measure == "frobenius":
            probe = unravel(jax.random.normal(key, flat.shape, flat.dtype))
        else:
            probe = rademacher_like(params, key)
        penalty = measure_gradient_estimate(loss_fn, params, batch, self.measure, probe, hparams["shift"])
        lam = hparams["penalty"]
        direction = _tree_map(lambda g, s: g + jnp.asarray(lam, g.dtype) * s, grads, penalty)
        params, state = descend(self, params, state, direction, hparams)
        hvps = {"trace": 1.0, "frobenius": 2.0, "determinant": float(flat.size)}[self.measure]
        return params, state, step_info(loss, grads, 1.0, hvps)


def _measure_optimizer(measure, lr, penalty, shift, base, batch_size, replace):
    check_choice("measure", measure, HESSIAN_MEASURES)
    return make_optimizer(HessianMeasurePenalty(as_base(base), measure),
                          dict(lr=lr, penalty=penalty, shift=shift), batch_size=batch_size, replace=replace)


def frob_sam(lr, penalty, *, base=None, batch_size=None, replace=False) -> Optimizer:
    """Frob-SAM (Tahmasebi et al. 2024): descend ``L + λ‖∇²L‖_F²`` with a one-probe estimate.

    Args:
      lr: step size (> 0).
      penalty: weight λ of the Frobenius penalty (>= 0; 0 is the base rule).
      base: the base step.
      batch_size: examples per step (None: the full batch).
      replace: draw mini-batches with replacement (True) or by shuffled epochs (False).

    Returns:
      An Optimizer named "frob-sam" (one gradient and two HVPs per step).

    References:
      Tahmasebi, Soleymani, Bahri, Jegelka, Jaillet 2024 (ICML; arXiv 2406.03682).
    """
    return _measure_optimizer("frobenius", lr, penalty, 1.0, base, batch_size, replace)


def det_sam(lr, penalty, *, shift=1e-3, base=None, batch_size=None, replace=False) -> Optimizer:
    """Det-SAM (Tahmasebi et al. 2024): descend ``L + λ log det(∇²L + δI)`` (dense; small models).

    Args:
      lr: step size (> 0).
      penalty: weight λ (>= 0; 0 is the base rule).
      shift: δ > 0 added to the Hessian's diagonal.
      base: the base step.
      batch_size: examples per step (None: the full batch).
      replace: draw mini-batches with replacement (True) or by shuffled epochs (False).

    Returns:
      An Optimizer named "det-sam" (one gradient and a dense Hessian's derivative per step).

    References:
      Tahmasebi, Soleymani, Bahri, Jegelka, Jaillet 2024 (ICML; arXiv 2406.03682).
    """
    check_positive("shift", shift)
    return _measure_optimizer("determinant", lr, penalty, shift, base, batch_size, replace)


__all__ = ["SurrogateGap", "CurvatureRegularizedSAM", "HessianMeasurePenalty", "gsam", "cr_sam",
           "frob_sam", "det_sam", "orthogonal_correction", "trace_gradient_estimate",
           "measure_gradient_estimate", "tree_inner", "rademacher_like", "HESSIAN_MEASURES"]
