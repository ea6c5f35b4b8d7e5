"""Randomness and averaging: random perturbations instead of the worst case, and weight averages.

LPF-SGD and RWP (Gaussian perturbations), Flat-LoRA (a perturbation of the merged weight), SWA
and WASAM (averages of the iterates); paper card papers/sam-family-averaging.md. With the
noise level 0 every perturbation rule equals its base rule bit-for-bit (tests/test_sam_family.py).

References:
  RWP / LPF-SGD   Bisla, Wang, Choromanska. AISTATS 2022 (arXiv 2201.08025) (LPF-SGD);
                  Li, Tao, Yan, Lei, Wu, Fang, He, Huang. TMLR 2024 (arXiv 2404.00357) (m-RWP).
  SWA / WASAM     Izmailov, Podoprikhin, Garipov, Vetrov, Wilson. UAI 2018 (arXiv 1803.05407);
                  Kaddour, Liu, Silva, Kusner. NeurIPS 2022 (arXiv 2202.00661) (WASAM).
  Flat-LoRA       Li, He, Li, Wang, Shang, Huang. ICML 2025 (arXiv 2409.14396), Sec. 3.
"""
from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
from jax.flatten_util import ravel_pytree

from ..errors import NONNEGATIVE, POSITIVE, PROBABILITY, ConfigError, check_choice, check_int
from ..tree import factor_pairs, rebuild_factor_pairs, tree_add
from .base import (Base, Optimizer, StepRule, as_base, descend, domains, gradient,
                   initial_state, loss_and_gradient, make_optimizer, step_info)
from .sharpness_aware import SharpnessAware

_tree_map = jax.tree_util.tree_map


# --- Random weight perturbation / LPF-SGD --------------------------------------------------------

NOISE_SCALES = ("absolute", "rows")
"""How the Gaussian perturbations are scaled: ``"absolute"`` (σ) or ``"rows"`` (σ times each
row's norm, filter-wise).
"""


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
    """One Gaussian perturbation ``ε`` with independent entries ``N(0, σ² s²)``, s = 1 or the row
    norm of w.

    Args:
      params: the parameter pytree w.
      key: a JAX PRNG key (one draw per key).
      sigma: the standard deviation σ (≥ 0; relative to each row's norm with scale="rows").
      scale: "absolute" or "rows" (see :data:`NOISE_SCALES`); the row norm is not
        differentiated through.

    Returns:
      ε, a pytree like ``params``.

    References:
      Bisla, Wang, Choromanska 2022 (LPF-SGD, filter-wise noise); Li et al. 2024 (RWP).
    """
    flat, unravel = ravel_pytree(params)
    noise = unravel(jax.random.normal(key, flat.shape, flat.dtype))
    return _tree_map(lambda w, z: jnp.asarray(sigma, w.dtype) * jax.lax.stop_gradient(
        _noise_scale(w, scale)) * z, params, noise)


def smoothed_gradient(loss_fn, params, batch, key, sigma, draws: int, scale: str = "absolute"):
    """Monte Carlo gradient of the Gaussian-smoothed loss ``E_ε L(w + ε)`` with ``draws`` draws.

    Unbiased for ``∇ E_ε L(w + ε)``; its error shrinks like ``1/√draws`` (tested against the
    closed form on a factorized quadratic).

    Args:
      loss_fn: ``loss_fn(params, batch) -> scalar``.
      params: the parameter pytree w.
      batch: the batch for every gradient.
      key: a JAX PRNG key (split into ``draws`` keys).
      sigma: the standard deviation σ (≥ 0).
      draws: the number of perturbations averaged (≥ 1).
      scale: "absolute" or "rows" (see :func:`gaussian_perturbation`).

    Returns:
      The averaged gradient, a pytree like ``params``.

    References:
      Bisla, Wang, Choromanska 2022 (the gradient of the low-pass-filtered loss).
    """
    keys = jax.random.split(key, draws)
    one = lambda k: gradient(loss_fn, tree_add(params, gaussian_perturbation(params, k, sigma,
                                                                              scale)), batch)
    return _tree_map(lambda g: jnp.mean(g, axis=0), jax.vmap(one)(keys))


@dataclasses.dataclass(frozen=True)
class RandomPerturbation(StepRule):
    """Random weight perturbation: descend along ``λ ḡ_σ + (1 - λ) g``.

    ``ḡ_σ`` averages ``draws`` gradients at ``w + ε_m``, ``ε_m ~ N(0, σ² s²)`` (s = 1 or the row
    norm of each weight, "filter-wise" as in LPF-SGD and RWP). λ = ``mix`` = 1 is LPF-SGD
    (Bisla et al. 2022, the gradient of the low-pass-filtered loss); λ < 1 is the mixed RWP
    gradient of Li et al. 2024 (which needs the clean gradient too). σ = 0 is the base rule.

    Attributes:
      base: the :class:`Base` step.
      draws: perturbations averaged per step (≥ 1).
      scale: "absolute" or "rows" (see :data:`NOISE_SCALES`).

    References:
      Bisla, Wang, Choromanska 2022 (LPF-SGD); Li et al. 2024 (RWP).
    """

    base: Base = Base()
    draws: int = 1
    scale: str = "absolute"

    hparam_domains = domains(lr=POSITIVE, sigma=NONNEGATIVE, mix=PROBABILITY)

    @property
    def name(self) -> str:
        return f"rwp-{self.draws}"

    def init(self, params):
        return initial_state(self.base, params)


    def step(self, params, state, loss_fn, batch, hparams, key):
        sigma, mix = hparams["sigma"], hparams["mix"]
        loss, grads = loss_and_gradient(loss_fn, params, batch)
        smooth = smoothed_gradient(loss_fn, params, batch, key, sigma, self.draws, self.scale)
        mixed = _tree_map(lambda s, g: mix * s + (1.0 - mix) * g, smooth, grads)
        # σ = 0: every draw equals g, and averaging identical draws can round; take g itself.
        direction = _tree_map(lambda m, g: jnp.where(sigma > 0, m, g), mixed, grads)
        params, state = descend(self, params, state, direction, hparams)
        cost = self.draws + jnp.where(mix < 1, 1.0, 0.0)
        return params, state, step_info(loss, grads, cost)


def random_perturbation(lr, sigma, *, draws=1, mix=1.0, scale="absolute", base=None,
                        batch_size=None, replace=False) -> Optimizer:
    """Gaussian random weight perturbation (LPF-SGD with mix = 1, RWP with mix < 1).

    Args:
      lr: step size (> 0).
      sigma: noise standard deviation σ (>= 0; relative to each row's norm with scale="rows").
      draws: perturbations averaged per step (>= 1), one gradient each.
      mix: weight λ in [0, 1] of the perturbed gradient (1 - λ on the clean gradient).
      scale: "absolute" (σ) or "rows" (σ·‖row of w‖, filter-wise as in LPF-SGD / RWP).
      base: the base step (None or "plain", ``st.optim.momentum(...)``, ``st.optim.adam(...)``,
        or an optax transformation without the learning rate).
      batch_size: examples per step (None: the full batch).
      replace: draw mini-batches with replacement (True) or by shuffled epochs (False).

    Returns:
      An Optimizer named "rwp-<draws>"; each step costs ``draws`` gradients (+1 when mix < 1).

    References:
      Bisla, Wang, Choromanska 2022 (AISTATS; arXiv 2201.08025) (LPF-SGD);
      Li, Tao, Yan, Lei, Wu, Fang, He, Huang 2024 (TMLR; arXiv 2404.00357) (RWP).
    """
    draws = check_int("draws", draws, minimum=1)
    check_choice("scale", scale, NOISE_SCALES)
    rule = RandomPerturbation(as_base(base), draws, scale)
    return make_optimizer(rule, dict(lr=lr, sigma=sigma, mix=mix),
                          batch_size=batch_size, replace=replace)


def lpf_sgd(lr, sigma, *, draws=8, scale="rows", base=None, batch_size=None, replace=False):
    """LPF-SGD: descend along the averaged gradient of ``draws`` Gaussian perturbations.

    :func:`random_perturbation` with ``mix = 1``.

    Args:
      lr: step size (> 0).
      sigma: noise standard deviation σ (>= 0; relative to each row's norm with scale="rows").
      draws: perturbations averaged per step (>= 1).
      scale: "rows" (filter-wise, as in the paper) or "absolute".
      base: base rule (see :func:`sharp_theory.optim.gd`).
      batch_size: examples per step (None: full batch).
      replace: draw mini-batches with replacement (True) or by shuffled epochs (False).

    Returns:
      An Optimizer named "rwp-<draws>".

    References:
      Bisla, Wang, Choromanska 2022, Sec. 3.
    """
    return random_perturbation(lr, sigma, draws=draws, mix=1.0, scale=scale, base=base,
                               batch_size=batch_size, replace=replace)


def rwp(lr, sigma, *, mix=0.5, draws=1, scale="rows", base=None, batch_size=None, replace=False):
    """RWP: descend along ``λ ∇L(w + ε) + (1 - λ) ∇L(w)`` with filter-wise Gaussian ε.

    :func:`random_perturbation` with ``mix = λ``.

    Args:
      lr: step size (> 0).
      sigma: noise standard deviation σ (>= 0; relative to each row's norm with scale="rows").
      mix: weight λ in [0, 1] of the perturbed gradient.
      draws: perturbations averaged per step (>= 1).
      scale: "rows" (filter-wise, as in the paper) or "absolute".
      base: base rule (see :func:`sharp_theory.optim.gd`).
      batch_size: examples per step (None: full batch).
      replace: draw mini-batches with replacement (True) or by shuffled epochs (False).

    Returns:
      An Optimizer named "rwp-<draws>".

    References:
      Li et al. 2024 (random weight perturbation, the mixed gradient).
    """
    return random_perturbation(lr, sigma, draws=draws, mix=mix, scale=scale, base=base,
                               batch_size=batch_size, replace=replace)


# --- SWA / WASAM ---------------------------------------------------------------------------------

EXPOSE = ("average", "iterate")
"""What a :class:`WeightAveraging` step returns as ``params``: ``"average"`` or ``"iterate"``."""


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

    Attributes:
      inner: the wrapped :class:`StepRule`.
      start: first step whose iterate enters the average (≥ 0).
      every: average every ``every`` steps after ``start`` (≥ 1).
      expose: "average" or "iterate" (see :data:`EXPOSE`).
      label: the name in results ("swa" or "wasam").

    References:
      Izmailov, Podoprikhin, Garipov, Vetrov, Wilson 2018 (SWA); Kaddour et al. 2022 (WASAM).
    """

    inner: StepRule = None
    start: int = 0
    every: int = 1
    expose: str = "average"
    label: str = "swa"

    @property
    def base(self) -> Base:
        """The inner rule's base."""
        return self.inner.base

    @property
    def name(self) -> str:
        return self.label

    @property
    def hparam_domains(self):
        """The inner rule's hyperparameters: averaging adds none."""
        return self.inner.hparam_domains

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
    """The SWA average held in a :class:`WeightAveraging` state.

    Args:
      state: the optimizer state of a :func:`swa` / :func:`wasam` run.

    Returns:
      The running average of the iterates, a pytree like the parameters.
    """
    return state["average"]


def live_iterate(state):
    """The inner rule's current iterate held in a :class:`WeightAveraging` state.

    Args:
      state: the optimizer state of a :func:`swa` / :func:`wasam` run.

    Returns:
      The inner rule's iterate, a pytree like the parameters.
    """
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

    References:
      Izmailov, Podoprikhin, Garipov, Vetrov, Wilson 2018 (UAI; arXiv 1803.05407).
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
    """WASAM: SAM with stochastic weight averaging (see :func:`swa`).

    Args:
      lr: step size (> 0).
      rho: SAM radius (>= 0).
      start: first step whose iterate enters the average (>= 0).
      every: average every ``every`` steps after ``start`` (>= 1).
      base: base rule of the inner SAM (see :func:`sharp_theory.optim.gd`).
      batch_size: examples per step (None: full batch).
      replace: draw mini-batches with replacement (True) or by shuffled epochs (False).

    Returns:
      An Optimizer named "wasam" whose steps return the averaged weights.

    References:
      Kaddour, Liu, Silva, Kusner 2022 (WASAM).
    """
    inner = make_optimizer(SharpnessAware(as_base(base)), dict(lr=lr, rho=rho),
                           batch_size=batch_size, replace=replace)
    return swa(inner, start=start, every=every, label="wasam")


# --- Flat-LoRA -----------------------------------------------------------------------------------

def _matrix_factor_pairs(params):
    pairs = factor_pairs(params)
    for pair in pairs:
        x, y = pair["x"], pair["y"]
        if jnp.ndim(x) != 2 or jnp.ndim(y) != 2:
            raise ConfigError("params", f"factor shapes {jnp.shape(x)}, {jnp.shape(y)}",
                              "matrix factors x (d1, r), y (d2, r) (st.problems.lora)")
    return pairs


def merged_perturbation_gradient(loss_fn, params, batch, noises):
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
    grads = gradient(loss_fn, rebuild_factor_pairs(params, padded), batch)
    out = [{"x": g["x"][:, :p["x"].shape[1]], "y": g["y"][:, :p["y"].shape[1]]}
           for g, p in zip(factor_pairs(grads), pairs)]
    return rebuild_factor_pairs(params, out)


@dataclasses.dataclass(frozen=True)
class FlatLoRA(StepRule):
    """Flat-LoRA: one gradient at a Gaussian perturbation of each merged weight ``W = x yᵀ``.

    ``ε_ij ~ N(0, σ² ‖W_i,:‖² / d2)`` (row-scaled, d2 the input dimension; Li et al. 2024, Sec.
    3), applied to the merged weight rather than to the factors, so the perturbation lives in
    the full d1 x d2 space while the update stays low-rank. The frozen base weight W0 lives in
    the problem's constants, which a step rule does not see: the row norms are those of the
    adapter product ``x yᵀ`` (equal to the merged weight for W0 = 0, the lora default).
    One gradient per step. σ = 0 gives the base rule.

    Attributes:
      base: the :class:`Base` step.

    References:
      Li, He, Li, Wang, Shang, Huang 2025 (Flat-LoRA; ICML, arXiv 2409.14396), Sec. 3.
    """

    base: Base = Base()
    name = "flat-lora"
    hparam_domains = domains(lr=POSITIVE, sigma=NONNEGATIVE)

    def init(self, params):
        return initial_state(self.base, params)

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
        perturbed = merged_perturbation_gradient(loss_fn, params, batch, noises)
        # σ = 0 short-circuit: the padded product adds exact zeros, but a wider matrix product
        # may sum the nonzero terms in another order.
        direction = _tree_map(lambda p, g: jnp.where(sigma > 0, p, g), perturbed, grads)
        params, state = descend(self, params, state, direction, hparams)
        return params, state, step_info(loss, grads, 1.0)


def flat_lora(lr, sigma, *, base=None, batch_size=None, replace=False) -> Optimizer:
    """Flat-LoRA (Li et al. 2024): random perturbation of the merged weight, one gradient.

    Args:
      lr: step size (> 0).
      sigma: relative noise level σ (>= 0).
      base: the base step (None or "plain", ``st.optim.momentum(...)``, ``st.optim.adam(...)``,
        or an optax transformation without the learning rate).
      batch_size: examples per step (None: the full batch).
      replace: draw mini-batches with replacement (True) or by shuffled epochs (False).

    Works on factor-pair parameters with matrix factors (``st.problems.lora``).

    Returns:
      An Optimizer named "flat-lora".

    References:
      Li, He, Li, Wang, Shang, Huang 2025 (Flat-LoRA; ICML, arXiv 2409.14396), Sec. 3.
    """
    return make_optimizer(FlatLoRA(as_base(base)), dict(lr=lr, sigma=sigma),
                          batch_size=batch_size, replace=replace)


__all__ = ["RandomPerturbation", "WeightAveraging", "FlatLoRA", "random_perturbation", "lpf_sgd",
           "rwp", "swa", "wasam", "flat_lora", "averaged_weights", "live_iterate",
           "gaussian_perturbation", "smoothed_gradient", "NOISE_SCALES", "EXPOSE"]
