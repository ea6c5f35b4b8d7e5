"""The wider SAM family on the one optimizer contract (THEORY.md §7).

Every rule here is a frozen dataclass :class:`StepRule` with static structure (base rule, schedule
lengths, mask kind) and sweepable hyperparameters in ``hparams`` (``lr``, ``rho``, ``sigma``,
...). Every step reports, in ``info``:

- ``grad_evals``: gradient evaluations this step, in full-batch passes (a per-example Fisher pass
  over the batch counts 1, a gradient on half the batch counts 0.5). Rules that take a SAM step
  only on some steps report the count of the branch actually taken, so the runner's
  ``traj.grad_evals`` is the cost the method would pay on real hardware. (Under ``vmap`` JAX
  evaluates both branches of a ``lax.cond``; that is a property of the simulator, not of the
  method, and is not counted.)
- ``hvp_evals``: Hessian-vector products this step (0 for all rules except LETS).

Randomness comes only from the ``key`` argument of ``step``. With its radius (or noise level, or
penalty weight) set to 0 every rule equals its base rule bit-for-bit; tests/test_sam_family.py
says so rule by rule.

Rules and papers:
  ASAM            Kwon, Kim, Park, Choi. ICML 2021 (arXiv 2102.11600), Sec. 3, adaptive ascent
                  ``ε = ρ T_w² g / ‖T_w g‖`` with ``T_w = diag(|w| + η)``.
  LookSAM         Liu, Mai, Chen, Hsieh, You. CVPR 2022 (arXiv 2203.02714), Sec. 3.2.
  SSAM            Mi, Shen, Ren, Zhou, Sun, Ji, Tao. NeurIPS 2022 (arXiv 2210.05177), Sec. 3.
  RWP / LPF-SGD   Bisla, Wang, Choromanska. AISTATS 2022 (arXiv 2201.08025) (LPF-SGD);
                  Li, Tao, Yan, Lei, Wu, Fang, He, Huang. TMLR 2024 (arXiv 2404.00357) (m-RWP).
  SWA / WASAM     Izmailov, Podoprikhin, Garipov, Vetrov, Wilson. UAI 2018 (arXiv 1803.05407);
                  Kaddour, Liu, Silva, Kusner. NeurIPS 2022 (arXiv 2202.00661) (WASAM).
  RST             Zhao, Zhang, Hu. arXiv 2203.09962 (2022), Alg. 1.
  AE-SAM          Jiang, Yang, Zhang, Kwok. ICLR 2023 (arXiv 2304.14647), Sec. 3.
  Flat-LoRA       Li, He, Li, Wang, Shang, Huang. ICML 2025 (arXiv 2409.14396), Sec. 3.
  Preconditioned  Singh, Mobahi, Agarwala, Dauphin. arXiv 2502.02407 (2025), Sec. 5
  SAM and         (perturbation ``ρ P⁻¹g/‖P⁻¹g‖`` with Adam's ``P = √v̂ + ε``) and Sec. 4
  Functional-SAM  (``g_FSAM = J_F(w + ε)ᵀ ∇_F ℓ(F(w))``).
  LETS            Wang, Jiang, Fu, Zhang. Enhancing Sharpness-Aware Minimization by Learning
                  Perturbation Radius. arXiv 2408.08222 (2024), Sec. 3: ρ follows a hypergradient
                  of ½(validation loss - training loss)² through the SAM update (we use the
                  exact hypergradient of a one-step lookahead instead of their diagonal-Hessian
                  approximation).
  SAF / MESA      Du, Zhou, Feng, Tan, Zhou. Sharpness-Aware Training for Free. NeurIPS 2022
                  (arXiv 2205.14083): a trajectory-consistency penalty between the current
                  outputs and those of an exponential moving average of the weights (MESA form).
"""
from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
from jax.flatten_util import ravel_pytree

from ..errors import ConfigError, check_choice, check_int, check_nonnegative
from ..tree import (global_norm, leading_size, safe_normalize, tree_add, tree_scale,
                    tree_squared_norm)
from .bar import _rebuild, factor_pairs
from .base import (Base, Optimizer, StepRule, adam, as_base, base_step, loss_and_gradient,
                   make_hparams)
from .sam import SharpnessAware, ascent_direction

_tree_map = jax.tree_util.tree_map


def _gradient(loss_fn, params, batch):
    return loss_and_gradient(loss_fn, params, batch)[1]


def _cost(grad_evals, hvp_evals=0.0):
    dtype = jnp.result_type(float)
    return {"grad_evals": jnp.asarray(grad_evals, dtype),
            "hvp_evals": jnp.asarray(hvp_evals, dtype)}


def _info(loss, grads, grad_evals, hvp_evals=0.0, **extra):
    info = {"loss": loss, "grad_norm": global_norm(grads)}
    info.update(_cost(grad_evals, hvp_evals))
    info.update(extra)
    return info


def _descend(rule, params, state, direction, hparams, **extra_state):
    """Base step along ``direction`` and the bookkeeping every rule shares."""
    params, base_state = base_step(rule.base, params, direction, state["base"], hparams["lr"])
    new_state = dict(state)
    new_state.update(base=base_state, count=state["count"] + 1, **extra_state)
    return params, new_state


def _batching(batch_size, replace):
    if batch_size is not None:
        check_int("batch_size", batch_size, minimum=1)
    if not isinstance(replace, bool):
        raise ConfigError("replace", replace, "True or False")
    return batch_size


def _check_probability(name, value):
    check_nonnegative(name, value)
    if float(value) > 1:
        raise ConfigError(name, value, "a probability in [0, 1]")


# --- ASAM ----------------------------------------------------------------------------------------

def adaptive_ascent_direction(params, grads, rho, eta):
    """ASAM's ascent ``ε = ρ T² g / ‖T g‖`` with ``T = diag(|w| + η)`` (element-wise).

    This maximizes ``gᵀε`` over the ellipsoid ``‖T⁻¹ε‖ ≤ ρ`` (Kwon et al. 2021, Sec. 3, p = 2).
    With ``η = 0`` it is equivariant under every diagonal positive rescaling ``w → A w`` that
    leaves the loss invariant: the ascent at ``A w`` is ``A ε``. A zero gradient gives ε = 0.

    Args:
      params, grads: pytrees of the same structure.
      rho: radius (>= 0).
      eta: offset η >= 0 that keeps zero weights perturbable (0.01 in the paper).

    Returns:
      The perturbation ε (a pytree like params).
    """
    scale = _tree_map(lambda w: jnp.abs(w) + jnp.asarray(eta, w.dtype), params)
    scaled_grads = _tree_map(lambda t, g: t * g, scale, grads)
    unit = safe_normalize(scaled_grads)
    return _tree_map(lambda t, u: jnp.asarray(rho, u.dtype) * t * u, scale, unit)


@dataclasses.dataclass(frozen=True)
class AdaptiveSAM(StepRule):
    """ASAM: SAM with the ascent taken in the |w|-rescaled geometry (two gradients per step).

    ``radius`` names the hyperparameter that holds ρ ("rho" by default); a lab can call it
    "rho_adaptive" so that one sweep gives ASAM its own grid (its ρ is on another scale).
    """

    base: Base = Base()
    radius: str = "rho"
    grads_per_step = 2.0
    name = "asam"

    def step(self, params, state, loss_fn, batch, hparams, key):
        loss, grads = loss_and_gradient(loss_fn, params, batch)
        perturbation = adaptive_ascent_direction(params, grads, hparams[self.radius],
                                                 hparams["eta"])
        perturbed = _gradient(loss_fn, tree_add(params, perturbation), batch)
        params, state = _descend(self, params, state, perturbed, hparams)
        return params, state, _info(loss, grads, 2.0)


def asam(lr, rho, *, eta=0.01, radius_name="rho", base=None, batch_size=None,
         replace=False) -> Optimizer:
    """Adaptive SAM (Kwon et al. 2021): ``w+ = w - lr·base(∇L(w + ρT²g/‖Tg‖))``, ``T = |w| + η``.

    Args:
      lr: step size (> 0).
      rho: radius in the rescaled geometry (>= 0). It is not on SAM's scale: the paper uses
        about 10x SAM's rho because ``‖ε‖ ≈ ρ·|w|``.
      eta: offset η (>= 0; 0.01 in the paper, 0 gives exact rescaling invariance).
      radius_name: the hyperparameter name of ρ (default "rho"; another name lets a sweep
        give ASAM a grid of its own next to SAM's "rho").
      base, batch_size, replace: as for :func:`sharp_theory.optim.sam`.
    """
    if not isinstance(radius_name, str) or not radius_name.isidentifier() or radius_name in (
            "lr", "eta"):
        raise ConfigError("radius_name", radius_name, "an identifier other than 'lr' and 'eta'")
    hparams = make_hparams(lr=lr, eta=eta, **{radius_name: rho})
    return Optimizer(AdaptiveSAM(as_base(base), radius_name), hparams,
                     _batching(batch_size, replace), replace)


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
    """

    base: Base = Base()
    every: int = 5

    @property
    def name(self) -> str:
        return f"looksam-{self.every}"

    @property
    def grads_per_step(self) -> float:
        return 1.0 + 1.0 / self.every

    def init(self, params):
        state = super().init(params)
        state["correction"] = _tree_map(jnp.zeros_like, params)
        return state

    def step(self, params, state, loss_fn, batch, hparams, key):
        rho = hparams["rho"]
        loss, grads = loss_and_gradient(loss_fn, params, batch)
        recompute = state["count"] % self.every == 0

        def sam_step():
            perturbed = _gradient(loss_fn, tree_add(params, ascent_direction(grads, rho)), batch)
            keep = jnp.asarray(rho > 0, jnp.result_type(float))
            correction = tree_scale(_orthogonal_part(perturbed, grads), keep)
            return perturbed, correction

        def reuse_step():
            correction = state["correction"]
            size = hparams["alpha"] * global_norm(grads)
            unit = safe_normalize(correction)
            return _tree_map(lambda g, u: g + size * u, grads, unit), correction

        direction, correction = jax.lax.cond(recompute, sam_step, reuse_step)
        params, state = _descend(self, params, state, direction, hparams, correction=correction)
        return params, state, _info(loss, grads, jnp.where(recompute, 2.0, 1.0))


def looksam(lr, rho, *, every=5, alpha=0.7, base=None, batch_size=None, replace=False) -> Optimizer:
    """LookSAM (Liu et al. 2022): SAM every ``every`` steps, reused correction in between.

    Args:
      lr: step size (> 0).
      rho: SAM radius (>= 0).
      every: the period k of the SAM steps (>= 1; k = 1 is SAM).
      alpha: weight α of the reused orthogonal correction (>= 0; 0.7 in the paper).
      base, batch_size, replace: as for :func:`sharp_theory.optim.sam`.
    """
    every = check_int("every", every, minimum=1)
    return Optimizer(LookSAM(as_base(base), every), make_hparams(lr=lr, rho=rho, alpha=alpha),
                     _batching(batch_size, replace), replace)


# --- SSAM ----------------------------------------------------------------------------------------

MASK_KINDS = ("fisher", "random")


def _per_example_fisher(params, loss_fn, batch):
    """Empirical Fisher diagonal: the mean over the batch's examples of squared gradients."""
    if batch is None or leading_size(batch) is None:
        grads = _gradient(loss_fn, params, batch)
        return _tree_map(jnp.square, grads)
    one = lambda example: _gradient(loss_fn, params, _tree_map(lambda x: x[None], example))
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
    """

    base: Base = Base()
    mask: str = "fisher"
    sparsity: float = 0.5
    update_every: int = 10

    @property
    def name(self) -> str:
        return f"ssam-{self.mask}"

    @property
    def grads_per_step(self) -> float:
        return 2.0 + (1.0 / self.update_every if self.mask == "fisher" else 0.0)

    def _keep(self, params) -> int:
        size = ravel_pytree(params)[0].size
        return max(1, int(round((1.0 - self.sparsity) * size)))

    def init(self, params):
        state = super().init(params)
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
        perturbed = _gradient(loss_fn, tree_add(params, perturbation), batch)
        params, state = _descend(self, params, state, perturbed, hparams, mask=mask)
        extra = jnp.where(update, 1.0, 0.0) if self.mask == "fisher" else 0.0
        return params, state, _info(loss, grads, 2.0 + extra)


def ssam(lr, rho, *, mask="fisher", sparsity=0.5, update_every=10, base=None, batch_size=None,
         replace=False) -> Optimizer:
    """Sparse SAM (Mi et al. 2022): perturb only a masked subset of coordinates.

    Args:
      lr: step size (> 0).
      rho: SAM radius (>= 0).
      mask: "fisher" (largest empirical Fisher information, SSAM-F) or "random".
      sparsity: fraction of coordinates NOT perturbed, in [0, 1) (0 is SAM).
      update_every: steps between mask updates (>= 1).
      base, batch_size, replace: as for :func:`sharp_theory.optim.sam`.
    """
    check_choice("mask", mask, MASK_KINDS)
    check_nonnegative("sparsity", sparsity)
    if not float(sparsity) < 1:
        raise ConfigError("sparsity", sparsity, "a fraction in [0, 1)")
    update_every = check_int("update_every", update_every, minimum=1)
    rule = SparseSAM(as_base(base), mask, float(sparsity), update_every)
    return Optimizer(rule, make_hparams(lr=lr, rho=rho), _batching(batch_size, replace), replace)


# --- Random weight perturbation / LPF-SGD --------------------------------------------------------

NOISE_SCALES = ("absolute", "rows")


def _noise_scale(leaf, scale: str):
    """Per-entry standard deviation multiplier: 1, or the norm of the entry's row (filter)."""
    if scale == "absolute":
        return jnp.ones_like(leaf)
    if leaf.ndim == 0:
        return jnp.abs(leaf)
    if leaf.ndim == 1:
        return jnp.broadcast_to(jnp.linalg.norm(leaf), leaf.shape)
    norms = jnp.sqrt(jnp.sum(jnp.square(leaf), axis=tuple(range(1, leaf.ndim)), keepdims=True))
    return jnp.broadcast_to(norms, leaf.shape)


def gaussian_perturbation(params, key, sigma, scale: str = "absolute"):
    """One draw ``ε`` with independent entries ``N(0, σ² s²)``, s = 1 or the row norm of w."""
    flat, unravel = ravel_pytree(params)
    noise = unravel(jax.random.normal(key, flat.shape, flat.dtype))
    return _tree_map(lambda w, z: jnp.asarray(sigma, w.dtype) * jax.lax.stop_gradient(
        _noise_scale(w, scale)) * z, params, noise)


def smoothed_gradient(loss_fn, params, batch, key, sigma, draws: int, scale: str = "absolute"):
    """Monte Carlo gradient of the Gaussian-smoothed loss ``E_ε L(w + ε)`` with ``draws`` draws.

    Unbiased for ``∇ E_ε L(w + ε)``; its error shrinks like ``1/√draws`` (tested against the
    closed form on a factorized quadratic). Returns the averaged gradient.
    """
    keys = jax.random.split(key, draws)
    one = lambda k: _gradient(loss_fn, tree_add(params, gaussian_perturbation(params, k, sigma,
                                                                              scale)), batch)
    return _tree_map(lambda g: jnp.mean(g, axis=0), jax.vmap(one)(keys))


@dataclasses.dataclass(frozen=True)
class RandomPerturbation(StepRule):
    """Random weight perturbation: descend along ``λ ḡ_σ + (1 - λ) g``.

    ``ḡ_σ`` averages ``draws`` gradients at ``w + ε_m``, ``ε_m ~ N(0, σ² s²)`` (s = 1 or the row
    norm of each weight, "filter-wise" as in LPF-SGD and RWP). λ = ``mix`` = 1 is LPF-SGD
    (Bisla et al. 2022, the gradient of the low-pass-filtered loss); λ < 1 is the mixed RWP
    gradient of Li et al. 2024 (which needs the clean gradient too). σ = 0 is the base rule.
    """

    base: Base = Base()
    draws: int = 1
    scale: str = "absolute"

    @property
    def name(self) -> str:
        return f"rwp-{self.draws}"

    @property
    def grads_per_step(self) -> float:
        return float(self.draws) + 1.0

    def step(self, params, state, loss_fn, batch, hparams, key):
        sigma, mix = hparams["sigma"], hparams["mix"]
        loss, grads = loss_and_gradient(loss_fn, params, batch)
        smooth = smoothed_gradient(loss_fn, params, batch, key, sigma, self.draws, self.scale)
        mixed = _tree_map(lambda s, g: mix * s + (1.0 - mix) * g, smooth, grads)
        # σ = 0: every draw equals g, and averaging identical draws can round; take g itself.
        direction = _tree_map(lambda m, g: jnp.where(sigma > 0, m, g), mixed, grads)
        params, state = _descend(self, params, state, direction, hparams)
        cost = self.draws + jnp.where(mix < 1, 1.0, 0.0)
        return params, state, _info(loss, grads, cost)


def random_perturbation(lr, sigma, *, draws=1, mix=1.0, scale="absolute", base=None,
                        batch_size=None, replace=False) -> Optimizer:
    """Gaussian random weight perturbation (LPF-SGD with mix = 1, RWP with mix < 1).

    Args:
      lr: step size (> 0).
      sigma: noise standard deviation σ (>= 0; relative to each row's norm with scale="rows").
      draws: perturbations averaged per step (>= 1), one gradient each.
      mix: weight λ in [0, 1] of the perturbed gradient (1 - λ on the clean gradient).
      scale: "absolute" (σ) or "rows" (σ·‖row of w‖, filter-wise as in LPF-SGD / RWP).
      base, batch_size, replace: as for :func:`sharp_theory.optim.sam`.
    """
    draws = check_int("draws", draws, minimum=1)
    check_choice("scale", scale, NOISE_SCALES)
    _check_probability("mix", mix)
    rule = RandomPerturbation(as_base(base), draws, scale)
    return Optimizer(rule, make_hparams(lr=lr, sigma=sigma, mix=mix),
                     _batching(batch_size, replace), replace)


def lpf_sgd(lr, sigma, *, draws=8, scale="rows", base=None, batch_size=None, replace=False):
    """LPF-SGD (Bisla et al. 2022): the averaged gradient of ``draws`` Gaussian perturbations."""
    return random_perturbation(lr, sigma, draws=draws, mix=1.0, scale=scale, base=base,
                               batch_size=batch_size, replace=replace)


def rwp(lr, sigma, *, mix=0.5, draws=1, scale="rows", base=None, batch_size=None, replace=False):
    """RWP (Li et al. 2024): ``λ ∇L(w + ε) + (1 - λ) ∇L(w)`` with filter-wise Gaussian ε."""
    return random_perturbation(lr, sigma, draws=draws, mix=mix, scale=scale, base=base,
                               batch_size=batch_size, replace=replace)


# --- SWA / WASAM ---------------------------------------------------------------------------------

EXPOSE = ("average", "iterate")


@dataclasses.dataclass(frozen=True)
class WeightAveraging(StepRule):
    """Stochastic weight averaging around any inner rule (Izmailov et al. 2018).

    The state holds the live iterate of the inner rule (``state["iterate"]``), the running mean
    of the iterates taken after step ``start`` every ``every`` steps (``state["average"]``) and
    their number. ``expose`` says which of the two the step returns as ``params``: with
    ``"average"`` (default) ``run``/``sweep`` observe and return the averaged weights, the model
    SWA deploys, while the inner rule keeps stepping from its own iterate; before the first
    average is taken both are the same. Read either one from a state with
    :func:`averaged_weights` / :func:`live_iterate`.
    """

    inner: StepRule = None
    start: int = 0
    every: int = 1
    expose: str = "average"
    label: str = "swa"

    @property
    def name(self) -> str:
        return self.label

    @property
    def grads_per_step(self) -> float:
        return self.inner.grads_per_step

    def init(self, params):
        return {"inner": self.inner.init(params), "iterate": params, "average": params,
                "n_averaged": jnp.zeros((), jnp.int32), "count": jnp.zeros((), jnp.int32)}

    def step(self, params, state, loss_fn, batch, hparams, key):
        current = state["iterate"] if self.expose == "average" else params
        iterate, inner_state, info = self.inner.step(current, state["inner"], loss_fn, batch,
                                                     hparams, key)
        done = state["count"] + 1
        take = (done >= self.start) & ((done - self.start) % self.every == 0)
        n_averaged = state["n_averaged"] + take.astype(jnp.int32)
        weight = 1.0 / jnp.maximum(n_averaged, 1).astype(jnp.result_type(float))

        def update(avg, new):
            running = avg + weight.astype(avg.dtype) * (new - avg)
            # No average yet: track the iterate; its first member: the iterate itself (exactly).
            taken = jnp.where(n_averaged == 1, new, running)
            return jnp.where(n_averaged == 0, new, jnp.where(take, taken, avg))

        average = _tree_map(update, state["average"], iterate)
        new_state = {"inner": inner_state, "iterate": iterate, "average": average,
                     "n_averaged": n_averaged, "count": done}
        out = average if self.expose == "average" else iterate
        return out, new_state, info


def averaged_weights(state):
    """The SWA average held in a :class:`WeightAveraging` state."""
    return state["average"]


def live_iterate(state):
    """The inner rule's current iterate held in a :class:`WeightAveraging` state."""
    return state["iterate"]


def swa(optimizer: Optimizer, *, start=0, every=1, expose="average", label=None) -> Optimizer:
    """Wrap any optimizer with stochastic weight averaging (Izmailov et al. 2018).

    Args:
      optimizer: the inner optimizer (its hyperparameters stay sweepable).
      start: first step whose iterate enters the average (>= 0).
      every: average every ``every`` steps after ``start`` (>= 1).
      expose: "average" (the step returns the averaged weights; the default) or "iterate".
      label: the name in results (default "swa" or "wasam" for a SAM inner rule).

    Returns:
      An Optimizer whose state holds the average (see :func:`averaged_weights`).
    """
    if not isinstance(optimizer, Optimizer):
        raise ConfigError("optimizer", type(optimizer).__name__, "a sharp_theory Optimizer")
    start = check_int("start", start, minimum=0)
    every = check_int("every", every, minimum=1)
    check_choice("expose", expose, EXPOSE)
    if label is None:
        label = "wasam" if optimizer.name == "sam" else "swa"
    rule = WeightAveraging(optimizer.rule, start, every, expose, str(label))
    return Optimizer(rule, dict(optimizer.hparams), optimizer.batch_size, optimizer.replace)


def wasam(lr, rho, *, start=0, every=1, base=None, batch_size=None, replace=False) -> Optimizer:
    """WASAM (Kaddour et al. 2022): SAM with stochastic weight averaging; see :func:`swa`."""
    inner = Optimizer(SharpnessAware(as_base(base)), make_hparams(lr=lr, rho=rho),
                      _batching(batch_size, replace), replace)
    return swa(inner, start=start, every=every, label="wasam")


# --- RST -----------------------------------------------------------------------------------------

SWITCH_SCHEDULES = ("constant", "linear")


@dataclasses.dataclass(frozen=True)
class RandomSwitching(StepRule):
    """RST: at step t take a SAM step with probability p(t), else a plain step (Zhao et al. 2022).

    ``p(t) = p0 + (p1 - p0)·min(t/horizon, 1)`` for the linear schedule, ``p0`` for the
    constant one. The coin comes from the step's key. p ≡ 1 is SAM, p ≡ 0 the base rule.
    """

    base: Base = Base()
    schedule: str = "constant"
    horizon: int | None = None
    name = "rst"

    @property
    def grads_per_step(self) -> float:
        return 1.5

    def probability(self, hparams, count):
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
            lambda: _gradient(loss_fn, tree_add(params, ascent_direction(grads, hparams["rho"])),
                              batch),
            lambda: grads)
        params, state = _descend(self, params, state, direction, hparams)
        return params, state, _info(loss, grads, jnp.where(use_sam, 2.0, 1.0),
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
      base, batch_size, replace: as for :func:`sharp_theory.optim.sam`.
    """
    _check_probability("switch_prob", switch_prob)
    values = dict(lr=lr, rho=rho, switch_prob=switch_prob)
    if switch_prob_end is None:
        rule = RandomSwitching(as_base(base), "constant", None)
    else:
        _check_probability("switch_prob_end", switch_prob_end)
        if horizon is None:
            raise ConfigError("horizon", horizon, "an integer >= 1 with switch_prob_end")
        rule = RandomSwitching(as_base(base), "linear", check_int("horizon", horizon, minimum=1))
        values["switch_prob_end"] = switch_prob_end
    return Optimizer(rule, make_hparams(**values), _batching(batch_size, replace), replace)


# --- AE-SAM --------------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class AdaptiveSwitching(StepRule):
    """AE-SAM: a SAM step only when ``‖g‖²`` is large relative to its running statistics.

    ``μ_t = δ μ_{t-1} + (1-δ)‖g_t‖²``, ``σ²_t = δ σ²_{t-1} + (1-δ)(‖g_t‖² - μ_t)²`` and SAM is used
    iff ``‖g_t‖² ≥ κ·(μ_t + c σ_t)`` (Jiang et al. 2023, Sec. 3, with κ = 1). κ =
    ``threshold_scale`` is our addition so that κ = 0 (threshold 0) gives SAM on every step;
    c is static (the paper moves c linearly during training; we keep it fixed).
    """

    base: Base = Base()
    decay: float = 0.9
    c: float = 0.0
    name = "ae-sam"

    @property
    def grads_per_step(self) -> float:
        return 1.5

    def init(self, params):
        state = super().init(params)
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
            lambda: _gradient(loss_fn, tree_add(params, ascent_direction(grads, hparams["rho"])),
                                      batch),
            lambda: grads)
        params, state = _descend(self, params, state, direction, hparams, mean=mean, var=var)
        return params, state, _info(loss, grads, jnp.where(use_sam, 2.0, 1.0),
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
      base, batch_size, replace: as for :func:`sharp_theory.optim.sam`.
    """
    if not 0 <= decay < 1:
        raise ConfigError("decay", decay, "a number in [0, 1)")
    try:
        c = float(c)
    except (TypeError, ValueError):
        raise ConfigError("c", c, "a real number") from None
    rule = AdaptiveSwitching(as_base(base), float(decay), c)
    return Optimizer(rule, make_hparams(lr=lr, rho=rho, threshold_scale=threshold_scale),
                     _batching(batch_size, replace), replace)


# --- Flat-LoRA -----------------------------------------------------------------------------------

def _matrix_factor_pairs(params):
    pairs = factor_pairs(params)
    for pair in pairs:
        x, y = pair["x"], pair["y"]
        if jnp.ndim(x) != 2 or jnp.ndim(y) != 2:
            raise ConfigError("params", f"factor shapes {jnp.shape(x)}, {jnp.shape(y)}",
                              "matrix factors x (d1, r), y (d2, r) (st.problems.lora)")
    return pairs


def _merged_perturbation_grad(loss_fn, params, batch, noises):
    """Gradient w.r.t. the factors at ``x yᵀ + ε`` for each pair, without a new loss function.

    Each pair ``(x, y)`` is padded to ``([x, ε], [y, I])`` so that its product is
    ``x yᵀ + ε·I = x yᵀ + ε``; the gradient of the first r columns is then exactly
    ``(∂L/∂W) y`` and ``(∂L/∂W)ᵀ x`` at the perturbed merged weight. This needs a loss that
    sees each pair only through ``x @ y.T`` (true for ``st.problems.lora``).
    """
    pairs = _matrix_factor_pairs(params)
    padded = []
    for pair, noise in zip(pairs, noises):
        x, y = pair["x"], pair["y"]
        eye = jnp.eye(y.shape[0], dtype=y.dtype)
        padded.append({"x": jnp.concatenate([x, noise], axis=1),
                       "y": jnp.concatenate([y, eye], axis=1)})
    grads = _gradient(loss_fn, _rebuild(params, padded), batch)
    out = [{"x": g["x"][:, :p["x"].shape[1]], "y": g["y"][:, :p["y"].shape[1]]}
           for g, p in zip(factor_pairs(grads), pairs)]
    return _rebuild(params, out)


@dataclasses.dataclass(frozen=True)
class FlatLoRA(StepRule):
    """Flat-LoRA: one gradient at a Gaussian perturbation of each merged weight ``W = x yᵀ``.

    ``ε_ij ~ N(0, σ² ‖W_i,:‖² / d2)`` (row-scaled, d2 the input dimension; Li et al. 2024, Sec.
    3), applied to the merged weight rather than to the factors, so the perturbation lives in
    the full d1 x d2 space while the update stays low-rank. The frozen base weight W0 lives in
    the problem's constants, which a step rule does not see: the row norms are those of the
    adapter product ``x yᵀ`` (equal to the merged weight for W0 = 0, the lora default).
    One gradient per step. σ = 0 gives the base rule.
    """

    base: Base = Base()
    name = "flat-lora"
    grads_per_step = 1.0

    def step(self, params, state, loss_fn, batch, hparams, key):
        sigma = hparams["sigma"]
        pairs = _matrix_factor_pairs(params)
        keys = jax.random.split(key, len(pairs))
        noises = []
        for pair, k in zip(pairs, keys):
            merged = jax.lax.stop_gradient(pair["x"] @ pair["y"].T)
            row = jnp.linalg.norm(merged, axis=1, keepdims=True) / jnp.sqrt(merged.shape[1])
            noises.append(sigma * row * jax.random.normal(k, merged.shape, merged.dtype))
        loss, grads = loss_and_gradient(loss_fn, params, batch)
        perturbed = _merged_perturbation_grad(loss_fn, params, batch, noises)
        # σ = 0 short-circuit: the padded product adds exact zeros, but a wider matrix product
        # may sum the nonzero terms in another order.
        direction = _tree_map(lambda p, g: jnp.where(sigma > 0, p, g), perturbed, grads)
        params, state = _descend(self, params, state, direction, hparams)
        return params, state, _info(loss, grads, 1.0)


def flat_lora(lr, sigma, *, base=None, batch_size=None, replace=False) -> Optimizer:
    """Flat-LoRA (Li et al. 2024): random perturbation of the merged weight, one gradient.

    Args:
      lr: step size (> 0).
      sigma: relative noise level σ (>= 0).
      base, batch_size, replace: as for :func:`sharp_theory.optim.sam`.

    Works on factor-pair parameters with matrix factors (``st.problems.lora``).
    """
    return Optimizer(FlatLoRA(as_base(base)), make_hparams(lr=lr, sigma=sigma),
                     _batching(batch_size, replace), replace)


# --- Preconditioned SAM and Functional-SAM -------------------------------------------------------

def _adam_preconditioner(base: Base, base_state):
    """``P = √v̂ + eps`` from Adam's second moments (bias-corrected; ``P = eps`` before step 1)."""
    count = base_state.count.astype(jnp.result_type(float))
    correction = jnp.where(count > 0, 1.0 - base.b2 ** count, 1.0)
    return _tree_map(lambda nu: jnp.sqrt(nu / correction) + base.eps, base_state.nu)


def preconditioned_ascent(grads, preconditioner, rho):
    """``ε = ρ P⁻¹g / ‖P⁻¹g‖`` (0 for a zero gradient)."""
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
    """Raise ConfigError unless ``model(params, batch)`` equals ``problem.loss(params, batch)``."""
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
    """

    base: Base = dataclasses.field(default_factory=adam)
    name = "precond-sam"
    grads_per_step = 2.0

    def step(self, params, state, loss_fn, batch, hparams, key):
        loss, grads = loss_and_gradient(loss_fn, params, batch)
        preconditioner = _adam_preconditioner(self.base, state["base"])
        perturbation = preconditioned_ascent(grads, preconditioner, hparams["rho"])
        perturbed = _gradient(loss_fn, tree_add(params, perturbation), batch)
        params, state = _descend(self, params, state, perturbed, hparams)
        return params, state, _info(loss, grads, 2.0)


def preconditioned_sam(lr, rho, *, base=None, batch_size=None, replace=False) -> Optimizer:
    """Preconditioned SAM (Singh et al. 2025, Sec. 5): Adam-preconditioned ascent, Adam descent.

    Args:
      lr: step size (> 0).
      rho: radius (>= 0).
      base: an Adam base (default ``st.optim.adam()``); any other base is a ConfigError.
    """
    base = adam() if base is None else as_base(base)
    if base.kind != "adam":
        raise ConfigError("base", base.kind, "an Adam base (st.optim.adam(...))")
    return Optimizer(PreconditionedSAM(base), make_hparams(lr=lr, rho=rho),
                     _batching(batch_size, replace), replace)


@dataclasses.dataclass(frozen=True)
class FunctionalSAM(StepRule):
    """Functional-SAM: the Jacobian at the perturbed point, the loss derivative at w.

    ``g = J_F(w + ε)ᵀ ∇_F ℓ(F(w))`` with SAM's ``ε = ρ g0/‖g0‖`` (or the preconditioned ε with
    ``precondition=True`` and an Adam base), where ``g0 = J_F(w)ᵀ∇_F ℓ(F(w))`` is the plain
    gradient (Singh et al. 2025, Sec. 4). SAM's gradient ``J_F(w+ε)ᵀ∇_F ℓ(F(w+ε))`` adds the
    "logit path" through ``∇_F ℓ``; Functional-SAM keeps only the "functional path". Cost: a
    forward and a backward at w and one vector-Jacobian product at w + ε: 2 gradients.
    The loss comes from ``model`` (an :class:`OutputModel`), not from the runner's loss_fn.
    """

    base: Base = Base()
    model: OutputModel = None
    precondition: bool = False
    grads_per_step = 2.0

    @property
    def name(self) -> str:
        return "functional-sam" + ("-precond" if self.precondition else "")

    def step(self, params, state, loss_fn, batch, hparams, key):
        forward = lambda p: self.model.outputs(p, batch)
        outputs, pullback = jax.vjp(forward, params)
        loss, output_grad = jax.value_and_grad(lambda o: self.model.loss(o, batch))(outputs)
        (grads,) = pullback(output_grad)
        if self.precondition:
            perturbation = preconditioned_ascent(
                grads, _adam_preconditioner(self.base, state["base"]), hparams["rho"])
        else:
            perturbation = ascent_direction(grads, hparams["rho"])
        _, perturbed_pullback = jax.vjp(forward, tree_add(params, perturbation))
        (direction,) = perturbed_pullback(output_grad)
        params, state = _descend(self, params, state, direction, hparams)
        return params, state, _info(loss, grads, 2.0)


def _check_model(model):
    if not isinstance(model, OutputModel):
        raise ConfigError("model", type(model).__name__, "an st.optim.OutputModel")
    try:
        hash(model)
    except TypeError:
        raise ConfigError("model", type(model).__name__, "a hashable OutputModel (a frozen "
                          "dataclass without array fields)") from None


def functional_sam(lr, rho, *, model, precondition=False, base=None, batch_size=None,
                   replace=False) -> Optimizer:
    """Functional-SAM (Singh et al. 2025, arXiv 2502.02407, Sec. 4).

    Args:
      lr: step size (> 0).
      rho: radius (>= 0).
      model: an :class:`OutputModel` splitting the loss into outputs and loss-of-outputs.
      precondition: use Adam's preconditioned perturbation (needs ``base=st.optim.adam()``).
      base, batch_size, replace: as for :func:`sharp_theory.optim.sam`.
    """
    _check_model(model)
    base = as_base(base)
    if precondition and base.kind != "adam":
        raise ConfigError("base", base.kind, "an Adam base when precondition=True")
    return Optimizer(FunctionalSAM(base, model, bool(precondition)), make_hparams(lr=lr, rho=rho),
                     _batching(batch_size, replace), replace)


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
    """

    base: Base = Base()
    name = "lets"
    grads_per_step = 3.5

    def init(self, params):
        state = super().init(params)
        state["rho"] = jnp.asarray(-1.0, jnp.result_type(float))  # < 0: take hparams["rho"]
        return state

    def step(self, params, state, loss_fn, batch, hparams, key):
        rho = jnp.where(state["rho"] < 0, hparams["rho"], state["rho"])
        loss, grads = loss_and_gradient(loss_fn, params, batch)
        perturbed = _gradient(loss_fn, tree_add(params, ascent_direction(grads, rho)), batch)
        train, held_out = _halves(batch, state["count"] % 2 == 1)
        train_grads = _gradient(loss_fn, params, train)

        def gap(radius):
            point = tree_add(params, ascent_direction(train_grads, radius))
            lookahead = _tree_map(lambda w, g: w - hparams["lr"] * g, params,
                                  _gradient(loss_fn, point, train))
            return 0.5 * jnp.square(loss_fn(lookahead, held_out) - loss_fn(lookahead, train))

        slope = jax.grad(gap)(rho)
        new_rho = jnp.maximum(rho - hparams["beta"] * slope, 0.0)
        params, state = _descend(self, params, state, perturbed, hparams, rho=new_rho)
        return params, state, _info(loss, grads, 3.5, 0.5, rho=rho)


def lets(lr, rho, *, beta=0.01, base=None, batch_size=None, replace=False) -> Optimizer:
    """SAM with a learned radius (LETS-style; see :class:`LearnedRadius`).

    Args:
      lr: step size (> 0).
      rho: initial radius ρ_0 (>= 0).
      beta: meta step size of ρ (>= 0; 0 keeps ρ = ρ_0, i.e. SAM).
      base, batch_size, replace: as for :func:`sharp_theory.optim.sam`. The batch must hold
        at least 2 examples.
    """
    return Optimizer(LearnedRadius(as_base(base)), make_hparams(lr=lr, rho=rho, beta=beta),
                     _batching(batch_size, replace), replace)


# --- SAF-style trajectory consistency ------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class TrajectoryConsistency(StepRule):
    """SAF/MESA-style: descend ``L(w) + (λ/2)·mean‖F(w) - F(w̄)‖²`` with w̄ an EMA of the weights.

    Du et al. 2022 penalise the change of the outputs along the trajectory (SAF: outputs
    recorded E epochs ago, with a KL divergence on softmax outputs; MESA: the outputs of an
    exponential moving average of the weights). Our models are regressions, so the distance is
    the squared error of the outputs; w̄ follows ``w̄ ← δ w̄ + (1 - δ) w``. Cost: one gradient
    plus one forward pass of the averaged model (counted as 0 gradients). λ = 0 is the base rule.
    """

    base: Base = Base()
    model: OutputModel = None
    decay: float = 0.9
    name = "saf"
    grads_per_step = 1.0

    def init(self, params):
        state = super().init(params)
        state["teacher"] = params
        return state

    def step(self, params, state, loss_fn, batch, hparams, key):
        teacher_outputs = jax.lax.stop_gradient(self.model.outputs(state["teacher"], batch))

        def objective(p):
            penalty = 0.5 * jnp.mean(jnp.square(self.model.outputs(p, batch) - teacher_outputs))
            return loss_fn(p, batch) + hparams["lam"] * penalty

        _, total_grads = jax.value_and_grad(objective)(params)
        loss = loss_fn(params, batch)
        params, state = _descend(self, params, state, total_grads, hparams)
        teacher = _tree_map(lambda t, w: self.decay * t + (1.0 - self.decay) * w,
                            state["teacher"], params)
        state["teacher"] = teacher
        return params, state, _info(loss, total_grads, 1.0)


def saf(lr, lam, *, model, decay=0.9, base=None, batch_size=None, replace=False) -> Optimizer:
    """SAF/MESA-style trajectory-consistency penalty (Du et al. 2022), one gradient per step.

    Args:
      lr: step size (> 0).
      lam: penalty weight λ (>= 0; 0 is the base rule).
      model: an :class:`OutputModel` giving the outputs F(w).
      decay: δ in [0, 1) of the weight average that supplies the reference outputs.
      base, batch_size, replace: as for :func:`sharp_theory.optim.sam`.
    """
    _check_model(model)
    if not 0 <= decay < 1:
        raise ConfigError("decay", decay, "a number in [0, 1)")
    return Optimizer(TrajectoryConsistency(as_base(base), model, float(decay)),
                     make_hparams(lr=lr, lam=lam), _batching(batch_size, replace), replace)


VARIANTS = ("asam", "looksam", "ssam", "random_perturbation", "lpf_sgd", "rwp", "swa", "wasam",
            "rst", "ae_sam", "flat_lora", "preconditioned_sam", "functional_sam", "lets", "saf")

__all__ = list(VARIANTS) + [
    "AdaptiveSAM", "LookSAM", "SparseSAM", "RandomPerturbation", "WeightAveraging",
    "RandomSwitching", "AdaptiveSwitching", "FlatLoRA", "PreconditionedSAM", "FunctionalSAM",
    "LearnedRadius", "TrajectoryConsistency", "OutputModel", "check_output_model",
    "averaged_weights", "live_iterate", "adaptive_ascent_direction", "preconditioned_ascent",
    "gaussian_perturbation", "smoothed_gradient"]
