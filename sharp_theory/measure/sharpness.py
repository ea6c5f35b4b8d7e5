"""Sharpness by every common definition: worst case, adaptive, m-, average-case, local entropy,
the PAC-Bayes bound of SAM, and the Fisher-Rao norm.

Functions of the parameters take ``fn(params) -> scalar`` (for a problem, use
:func:`sharp_theory.measure.full_batch_loss`); measures that need single examples (m-sharpness,
Fisher-Rao norm) take the optimizer contract's ``loss_fn(params, batch)`` and a batch whose
leaves share a leading example axis, with ``loss_fn`` the mean over that axis. All are
traceable, so they can be recorded along a trajectory.

Conventions: "sharpness" is always a loss *increase* over the value at ``params``, so 0 means
flat. On a quadratic ``½ εᵀHε`` around a minimum, the closed forms are (tests check each)::

    worst case, ℓ2 ball radius ρ:         ρ² λ_max(H) / 2
    adaptive (ASAM), scale T = |w| + η:   ρ² λ_max(T H T) / 2
    average case, ε ~ N(0, σ² I):         σ² tr(H) / 2
    local entropy, ε ~ N(0, σ² I), T=1:   ½ Σ_i log(1 + σ² λ_i)

References:
  Keskar, Mudigere, Nocedal, Smelyanskiy, Tang. On large-batch training for deep learning:
    generalization gap and sharp minima. ICLR 2017 (ε-sharpness).
  Foret, Kleiner, Mobahi, Neyshabur. Sharpness-Aware Minimization for Efficiently Improving
    Generalization. ICLR 2021: eq. (1) and Thm 1 / App. A.1 (PAC-Bayes bound), Sec. 4.1
    (m-sharpness).
  Kwon, Kim, Park, Choi. ASAM: Adaptive Sharpness-Aware Minimization for Scale-Invariant
    Learning of Deep Neural Networks. ICML 2021, Def. 3 (adaptive sharpness, T_w = |w| + η).
  Jiang, Neyshabur, Mobahi, Krishnan, Bengio. Fantastic generalization measures and where to
    find them. ICLR 2020 (average-case / "PAC-Bayes flatness" sharpness).
  Chaudhari et al. Entropy-SGD: biasing gradient descent into wide valleys. ICLR 2017, eq. (3)
    (local entropy).
  Liang, Poggio, Rakhlin, Stokes. Fisher-Rao metric, geometry, and complexity of neural
    networks. AISTATS 2019, Def. 2 and Lemma 2.1.
"""
from __future__ import annotations

import functools
import math
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
from jax.flatten_util import ravel_pytree

from ..errors import ConfigError, check_int
from ..tree import split_into_chunks
from .spectrum import Estimate, flat_parameters, mean_and_standard_error, callable_tree

BALL_NORMS = (2.0, math.inf)
"""The perturbation-ball norms p the worst-case searches accept: 2 and inf."""


def _check_radius(parameter, value):
    # Radii may be traced (recorded along a trajectory); check only concrete values.
    if isinstance(value, (int, float)) and not (value >= 0 and math.isfinite(value)):
        raise ConfigError(parameter, value, "a finite radius >= 0")


def _check_ball_norm(p):
    try:
        p = float(p)
    except (TypeError, ValueError):
        raise ConfigError("p", p, "2 or inf (the norm of the perturbation ball)") from None
    if p not in BALL_NORMS:
        raise ConfigError("p", p, "2 or inf (the norm of the perturbation ball)")
    return p


def _unit_ascent(gradient, p):
    """The maximizer of gᵀu over the unit p-ball (zero gradient -> zero direction)."""
    if p == math.inf:
        return jnp.sign(gradient)
    norm = jnp.linalg.norm(gradient)
    return gradient / jnp.maximum(norm, jnp.finfo(gradient.dtype).tiny)


def _project(delta, rho, p):
    if p == math.inf:
        return jnp.clip(delta, -rho, rho)
    norm = jnp.linalg.norm(delta)
    return delta * jnp.minimum(1.0, rho / jnp.maximum(norm, jnp.finfo(delta.dtype).tiny))


class WorstCase(NamedTuple):
    """The result of a worst-case sharpness search.

    Attributes:
      sharpness: ``max_ε fn(params + ε) - fn(params)`` found (a lower bound on the true max).
      perturbation: the maximizing ε, a pytree like ``params``.
    """

    sharpness: Any
    perturbation: Any


def epsilon_sharpness(fn: Callable, params, rho, *, p: float = 2.0, adaptive: bool = False,
                      adaptive_offset: float = 0.01, num_steps: int = 50, num_restarts: int = 4,
                      step_size: float = 1.0, key=None) -> WorstCase:
    """Worst-case ε-sharpness ``max_{‖ε‖_p ≤ ρ} fn(params + ε) - fn(params)``.

    Projected gradient ascent with restarts: ``δ ← Π_ball(δ + step_size·ρ·u(∇))`` with ``u`` the
    steepest-ascent unit direction for the p-norm (``g/‖g‖`` or ``sign g``). The first restart
    starts at 0, so its first iterate is SAM's own perturbation and the result is never below
    SAM's one-step estimate; the others start at random points of the sphere. The best value
    seen over all iterates is returned. For convex ``fn`` and step_size 1 (ℓ2) or 2 (ℓ∞) each
    step is a monotone conditional-gradient step.

    With ``adaptive=True`` the ball is ``‖T⁻¹ε‖_p ≤ ρ`` with ``T = diag(|w| + adaptive_offset)``
    (ASAM's adaptive sharpness): the search runs over ``δ = T⁻¹ε`` in the plain ball.

    Args:
      fn: ``fn(params) -> scalar``.
      params: parameter pytree.
      rho: radius (>= 0).
      p: 2 or inf.
      adaptive: use ASAM's parameter-scaled ball.
      adaptive_offset: η in ``T = |w| + η`` (Kwon et al. use 0.01).
      num_steps: ascent steps per restart (>= 1).
      num_restarts: restarts (>= 1; the first starts at 0).
      step_size: step length as a fraction of rho.
      key: PRNG key of the random restarts (default: a fixed key).

    Returns:
      :class:`WorstCase` (sharpness, maximizing perturbation).

    References: Keskar et al. 2017; Foret et al. 2021, eq. (1); Kwon et al. 2021, Def. 3.
    """
    _check_radius("rho", rho)
    p = _check_ball_norm(p)
    steps = check_int("num_steps", num_steps, minimum=1)
    restarts = check_int("num_restarts", num_restarts, minimum=1)
    flat_parameters(params)
    key = jax.random.key(0) if key is None else key
    sharpness, perturbation = _epsilon_sharpness(
        callable_tree(fn), params, rho, adaptive_offset, step_size, key, p=p, adaptive=bool(adaptive),
        steps=steps, restarts=restarts)
    return WorstCase(sharpness, perturbation)


@functools.partial(jax.jit, static_argnames=("p", "adaptive", "steps", "restarts"))
def _epsilon_sharpness(fn, params, rho, adaptive_offset, step_size, key, *, p, adaptive, steps,
                       restarts):
    flat, unravel = flat_parameters(params)
    n = flat.size
    scale = (jnp.abs(flat) + adaptive_offset) if adaptive else jnp.ones_like(flat)
    rho = jnp.asarray(rho, flat.dtype)

    def value(delta):
        return fn(unravel(flat + scale * delta))

    value_and_grad = jax.value_and_grad(value)

    def start_point(index):
        draw = jax.random.normal(jax.random.fold_in(key, index), (n,), flat.dtype)
        on_sphere = (rho * jnp.sign(draw)) if p == math.inf else rho * draw / jnp.linalg.norm(draw)
        return jnp.where(index == 0, jnp.zeros_like(flat), on_sphere)

    def ascend(delta0):
        def step(carry, _):
            delta, best_value, best_delta = carry
            current, gradient = value_and_grad(delta)
            better = current > best_value
            best_value = jnp.where(better, current, best_value)
            best_delta = jnp.where(better, delta, best_delta)
            delta = _project(delta + step_size * rho * _unit_ascent(gradient, p), rho, p)
            return (delta, best_value, best_delta), None

        initial = (delta0, jnp.asarray(-jnp.inf, flat.dtype), delta0)
        (delta, best_value, best_delta), _ = jax.lax.scan(step, initial, None, length=steps)
        last = value(delta)
        better = last > best_value
        return jnp.where(better, last, best_value), jnp.where(better, delta, best_delta)

    values, deltas = jax.vmap(ascend)(jax.vmap(start_point)(jnp.arange(restarts)))
    best = jnp.argmax(values)
    # Never report less than 0: ε = 0 is always in the ball.
    sharpness = jnp.maximum(values[best] - fn(params), 0.0)
    return sharpness, unravel(scale * deltas[best])


def adaptive_sharpness(fn: Callable, params, rho, **options) -> WorstCase:
    """ASAM's adaptive sharpness: :func:`epsilon_sharpness` with ``adaptive=True``.

    The ball is ``‖T⁻¹ε‖_p ≤ ρ`` with ``T = diag(|w| + adaptive_offset)``, so the measure is
    invariant to rescalings of the weights that leave the function unchanged.

    Args:
      fn: ``fn(params) -> scalar``.
      params: parameter pytree.
      rho: radius (>= 0).
      **options: ``p``, ``adaptive_offset``, ``num_steps``, ``num_restarts``, ``step_size``,
        ``key`` as for :func:`epsilon_sharpness`.

    Returns:
      :class:`WorstCase` (sharpness, maximizing perturbation ε).

    References:
      Kwon, Kim, Park, Choi 2021, Def. 3 (adaptive sharpness, T_w = |w| + η).
    """
    return epsilon_sharpness(fn, params, rho, adaptive=True, **options)


class _ChunkLoss:
    """``params -> loss_fn(params, chunk)`` (a small class so the closure is explicit)."""

    def __init__(self, loss_fn, chunk):
        self.loss_fn, self.chunk = loss_fn, chunk

    def __call__(self, params):
        return self.loss_fn(params, self.chunk)


def m_sharpness(loss_fn: Callable, params, batch, rho, m: int, **options):
    """Foret et al.'s m-sharpness: the mean over disjoint chunks of m examples of each chunk's
    worst-case sharpness, ``mean_S max_{‖ε‖ ≤ ρ} [L_S(w + ε) - L_S(w)]``.

    m equal to the batch size is the full-batch ε-sharpness; small m lets every chunk pick its
    own worst perturbation (the quantity 1-SAM / m-SAM descend on).

    Args:
      loss_fn: ``loss_fn(params, batch)``, the mean over the batch's leading axis.
      params: parameter pytree.
      batch: examples (pytree with a shared leading axis whose size m divides).
      rho: radius.
      m: examples per chunk.
      **options: as for :func:`epsilon_sharpness` (p, adaptive, num_steps, num_restarts, key).

    Returns:
      The m-sharpness (scalar).

    References: Foret et al. 2021, Sec. 4.1 and App. C.3.
    """
    m = check_int("m", m, minimum=1)
    chunks = split_into_chunks(batch, m)
    key = options.pop("key", None)
    key = jax.random.key(0) if key is None else key
    return _m_sharpness(callable_tree(loss_fn), params, chunks, rho, key,
                        tuple(sorted(options.items(), key=lambda item: item[0])))


@functools.partial(jax.jit, static_argnames=("options",))
def _m_sharpness(loss_fn, params, chunks, rho, key, options):
    def chunk_sharpness(chunk):
        return epsilon_sharpness(_ChunkLoss(loss_fn, chunk), params, rho, key=key,
                                 **dict(options)).sharpness

    return jnp.mean(jax.lax.map(chunk_sharpness, chunks))


@functools.partial(jax.jit, static_argnames=("num_samples",))
def _gaussian_differences_jit(fn, params, sigma, key, *, num_samples):
    flat, unravel = flat_parameters(params)
    noise = jax.random.normal(key, (num_samples, flat.size), flat.dtype)
    reference = fn(params)
    perturbed = jax.lax.map(lambda z: fn(unravel(flat + sigma * z)), noise,
                            batch_size=min(num_samples, 256))
    return perturbed - reference


def _gaussian_differences(fn, params, sigma, num_samples, key):
    return _gaussian_differences_jit(callable_tree(fn), params, sigma, key, num_samples=num_samples)


def average_sharpness(fn: Callable, params, sigma, *, num_samples: int = 256, key) -> Estimate:
    """Average-case sharpness ``E_{ε ~ N(0, σ² I)} fn(params + ε) - fn(params)``.

    Equals ``σ² tr(H) / 2`` on a quadratic around its minimum (the low-pass-filter / random
    weight perturbation measure; Jiang et al. 2020 call its inverse PAC-Bayes flatness).

    Args:
      fn: ``fn(params) -> scalar``.
      params: parameter pytree.
      sigma: perturbation standard deviation (>= 0).
      num_samples: Monte-Carlo samples (>= 2).
      key: PRNG key (required).

    Returns:
      :class:`Estimate` (value, standard_error, num_samples).

    References:
      Jiang, Neyshabur, Mobahi, Krishnan, Bengio 2020 (average-case sharpness);
      Bisla, Wang, Choromanska 2022 (the low-pass-filtered loss).
    """
    _check_radius("sigma", sigma)
    count = check_int("num_samples", num_samples, minimum=2)
    return mean_and_standard_error(_gaussian_differences(fn, params, sigma, count, key))


def local_entropy(fn: Callable, params, sigma, *, temperature: float = 1.0,
                  num_samples: int = 256, key) -> Estimate:
    """Local-entropy sharpness ``-T log E_{ε ~ N(0, σ² I)} exp(-(fn(params+ε) - fn(params))/T)``.

    Entropy-SGD's local entropy ``F(w; γ) = log ∫ exp(-f(w')/T - γ‖w - w'‖²/2) dw'`` with
    ``γ = 1/σ²``, up to its additive constant and sign: this is ``f(w)`` minus the smoothed
    ("free energy") loss, so it is 0 for a flat function and grows with the volume of the
    surrounding low-loss region shrinking. On a quadratic around its minimum it equals
    ``(T/2) Σ_i log(1 + σ² λ_i / T)``; by Jensen it never exceeds :func:`average_sharpness`.

    Args:
      fn: ``fn(params) -> scalar``.
      params: parameter pytree.
      sigma: perturbation standard deviation (γ = 1/σ²).
      temperature: T (> 0).
      num_samples: Monte-Carlo samples (>= 2).
      key: PRNG key (required).

    Returns:
      :class:`Estimate`; the standard error is the delta-method error of the log.

    References: Chaudhari et al. 2017, eq. (3) and (4); Baldassi et al., PNAS 113 (2016).
    """
    _check_radius("sigma", sigma)
    if isinstance(temperature, (int, float)) and not temperature > 0:
        raise ConfigError("temperature", temperature, "a temperature > 0")
    count = check_int("num_samples", num_samples, minimum=2)
    scaled = -_gaussian_differences(fn, params, sigma, count, key) / temperature
    shift = jnp.max(scaled)  # log-mean-exp without overflow
    weights = jnp.exp(scaled - shift)
    mean_weight = jnp.mean(weights)
    value = -temperature * (shift + jnp.log(mean_weight))
    standard_error = temperature * jnp.std(weights, ddof=1) / math.sqrt(count) / mean_weight
    return Estimate(value, standard_error, count)


class PacBayesBound(NamedTuple):
    """Foret et al.'s generalization bound and its two parts: ``bound = sharp_loss + complexity``.

    Attributes:
      bound: the bound on the population loss (a scalar array), up to the theorem's Õ(1) term.
      sharp_loss: ``L_S(w) + max_{‖ε‖≤ρ} [L_S(w+ε) − L_S(w)]`` (the worst case found).
      complexity: :func:`sam_pac_bayes_complexity` at ‖w‖, ρ, k, n, δ.

    References:
      Foret, Kleiner, Mobahi, Neyshabur 2021, Thm 1 and App. A.1.
    """

    bound: Any
    sharp_loss: Any
    complexity: Any


def sam_pac_bayes_complexity(weight_norm, rho, num_parameters: int, num_examples: int,
                             delta: float = 0.05):
    """The complexity term of Foret et al.'s Thm 1 (App. A.1), without its Õ(1) constant.

    ``sqrt([k log(1 + ‖w‖²/ρ² (1 + sqrt(log(n)/k))²) + 4 log(n/δ)] / (n - 1))`` with k
    parameters and n training examples.

    Args:
      weight_norm: ‖w‖₂ of the parameters (≥ 0; scalar, may be traced).
      rho: the SAM radius ρ (> 0).
      num_parameters: k (≥ 1).
      num_examples: n (≥ 2).
      delta: the confidence level δ, in (0, 1).

    Returns:
      A scalar array: the complexity term.

    Raises:
      ConfigError: ``num_parameters`` < 1, ``num_examples`` < 2, or ``delta`` outside (0, 1).

    References:
      Foret, Kleiner, Mobahi, Neyshabur 2021, Thm 1 and App. A.1.
    """
    k = check_int("num_parameters", num_parameters, minimum=1)
    n = check_int("num_examples", num_examples, minimum=2)
    if isinstance(delta, (int, float)) and not 0 < delta < 1:
        raise ConfigError("delta", delta, "a confidence level in (0, 1)")
    ratio = jnp.square(weight_norm / rho) * (1.0 + math.sqrt(math.log(n) / k)) ** 2
    return jnp.sqrt((k * jnp.log1p(ratio) + 4.0 * math.log(n / delta)) / (n - 1))


def sam_pac_bayes_bound(fn: Callable, params, rho, *, num_examples: int, delta: float = 0.05,
                        **options) -> PacBayesBound:
    """Foret et al.'s bound ``L_D(w) ≤ max_{‖ε‖≤ρ} L_S(w+ε) + complexity(‖w‖²/ρ², k, n, δ)``.

    The theorem holds with probability 1 - δ over the draw of n training examples for a loss
    bounded in [0, 1] and a data-independent ρ; the Õ(1) term of the theorem is dropped (it is
    not given explicitly), so the value is the bound up to that constant. The maximum is the
    worst case found by :func:`epsilon_sharpness` (a lower estimate of the true max).

    Args:
      fn: the training loss ``L_S(params)``.
      params: parameter pytree.
      rho: radius (> 0).
      num_examples: n.
      delta: confidence (0 < δ < 1).
      **options: as for :func:`epsilon_sharpness`.

    Returns:
      :class:`PacBayesBound` (bound, sharp_loss, complexity).

    References: Foret et al. 2021, Thm 1 and App. A.1.
    """
    if isinstance(rho, (int, float)) and not rho > 0:
        raise ConfigError("rho", rho, "a radius > 0")
    flat, _ = flat_parameters(params)
    worst = epsilon_sharpness(fn, params, rho, **options)
    sharp_loss = fn(params) + worst.sharpness
    complexity = sam_pac_bayes_complexity(jnp.linalg.norm(flat), rho, flat.size, num_examples,
                                          delta)
    return PacBayesBound(sharp_loss + complexity, sharp_loss, complexity)


def _examples(batch):
    leaves = jax.tree_util.tree_leaves(batch)
    if not leaves:
        return None
    return leaves[0].shape[0]


def fisher_rao_norm(loss_fn: Callable, params, batch):
    """Empirical Fisher-Rao norm ``sqrt(mean_k ⟨θ, ∇_θ ℓ_k(θ)⟩²)``.

    ``θᵀ F θ`` with F the empirical Fisher ``mean_k ∇ℓ_k ∇ℓ_kᵀ`` of the per-example losses ℓ_k.
    For a network f that is positively homogeneous of degree L+1 in its parameters (ReLU
    without biases), ``⟨θ, ∇_θ ℓ⟩ = (L+1) f · ∂ℓ/∂f`` (Liang et al. 2019, Lemma 2.1).

    Args:
      loss_fn: ``loss_fn(params, batch)`` (mean over the leading axis).
      params: parameter pytree.
      batch: examples with a leading axis, or None for a data-free loss (one "example").

    Returns:
      The Fisher-Rao norm (scalar).

    References: Liang, Poggio, Rakhlin, Stokes 2019, Def. 2 (with the empirical Fisher).
    """
    return _fisher_rao_norm(callable_tree(loss_fn), params, batch)


@jax.jit
def _fisher_rao_norm(loss_fn, params, batch):
    flat, _ = ravel_pytree(params)

    def inner_product(example_batch):
        gradient = ravel_pytree(jax.grad(loss_fn)(params, example_batch))[0]
        return jnp.vdot(flat, gradient)

    if _examples(batch) is None:
        return jnp.abs(inner_product(batch))
    singles = jax.tree_util.tree_map(lambda x: x[:, None], batch)
    products = jax.lax.map(inner_product, singles)
    return jnp.sqrt(jnp.mean(jnp.square(products)))


__all__ = [
    "WorstCase", "epsilon_sharpness", "adaptive_sharpness", "m_sharpness", "average_sharpness",
    "local_entropy", "PacBayesBound", "sam_pac_bayes_complexity", "sam_pac_bayes_bound",
    "fisher_rao_norm", "BALL_NORMS",
]
