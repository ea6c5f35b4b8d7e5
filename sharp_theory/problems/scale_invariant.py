"""Scale-invariant two-variable problems f(xᵀy), f(xyᵀ) and the LoRA-like W0 + XYᵀ.

References:
  Li, Zhang, He. Implicit Regularization of Sharpness-Aware Minimization for Scale-Invariant
  Problems. NeurIPS 2024 (arXiv 2410.14802): Sec. 2 (OP / NOP problems), App. A.4 (toy settings),
  Sec. 4 (LoRA with D layers).

Parameters are ``{"x": x, "y": y}`` (one pair) or, for :func:`lora`, a list of such dicts, one per
layer; these are the factor pairs that balancedness and BAR act on.
"""
from __future__ import annotations

import dataclasses
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np

from ..errors import ConfigError, check_int, check_nonnegative
from ..tree import factor_pairs
from .base import Problem, check_batch_size

PAPER_X0 = (0.2, -0.1, 0.3)  # App. A.4; y0 = -3 x0 gives B0 = -0.56
NOP_NOISE_SCALES = (1.0, 0.8, 0.5)  # N = diag(1, 0.8, 0.5) U, App. A.4
NOP_TARGET = ((0.5, 0.0, 0.0), (0.0, 0.0, 0.0), (0.0, 0.0, 0.0))  # A = diag(0.5, 0, 0)


def _float(value):
    return jnp.asarray(value, dtype=jnp.result_type(float))


def _initial_pair(x0, y0):
    x0 = np.asarray(PAPER_X0 if x0 is None else x0, dtype=float)
    y0 = -3.0 * x0 if y0 is None else np.asarray(y0, dtype=float)
    for name, value in (("x0", x0), ("y0", y0)):
        if value.ndim == 0 or not np.all(np.isfinite(value)):
            raise ConfigError(name, value.tolist(), "a finite vector")
    return x0, y0


# --- OP: f(xᵀy) ---------------------------------------------------------------------------------

def _op_objective(params, batch, constants):
    # f = E (xᵀy - (target + noise · n))², n ~ N(0, 1) drawn fresh in batch["n"].
    prediction = jnp.dot(params["x"], params["y"])
    labels = constants["target"] + constants["noise"] * batch["n"]
    return jnp.mean(jnp.square(prediction - labels))


def _op_population(params, constants):
    prediction = jnp.dot(params["x"], params["y"])
    return jnp.square(prediction - constants["target"]) + jnp.square(constants["noise"])


@dataclasses.dataclass(frozen=True)
class _NormalSampler:
    """Fresh standard normal draws of a fixed per-example shape (hashable, so jit caches reuse)."""

    shape: tuple

    def __call__(self, constants, key, batch_size):
        dtype = constants["target"].dtype
        return {"n": jax.random.normal(key, (batch_size,) + self.shape, dtype=dtype)}


def op_toy(noise=0.0, *, target=0.5, x0=None, y0=None, batch_size=1) -> Problem:
    """The overparametrized toy ``f = E(xᵀy - (target + noise·n))²`` with fresh n ~ N(0, 1).

    Args:
      noise: noise level alpha (>= 0); the paper uses alpha in {0, 0.25, 0.5, 1}.
      target: the clean label (0.5 in the paper).
      x0: initial x (default (0.2, -0.1, 0.3)).
      y0: initial y, same length as x0 (default -3 x0, so B0 = -0.56).
      batch_size: fresh draws per step when the optimizer does not set one.

    Returns:
      A Problem with params ``{"x", "y"}``; constants ``target`` and ``noise`` (sweepable);
      closed-form population loss ``(xᵀy - target)² + noise²``.

    Examples:
      >>> import sharp_theory as st
      >>> problem = st.problems.op_toy(noise=0.5)
      >>> round(float(st.measure.balancedness(problem.params0)), 12)  # B0 = ½(0.14 − 1.26)
      -0.56
      >>> round(float(problem.evaluation_loss(problem.params0)), 6)  # (−0.42 − 0.5)² + 0.5²
      1.0964

    References: Li, Zhang, He 2024, App. A.4.
    """
    check_nonnegative("noise", noise)
    check_batch_size(batch_size)
    x0, y0 = _initial_pair(x0, y0)
    if x0.shape != y0.shape or x0.ndim != 1:
        raise ConfigError("y0", y0.tolist(), f"a vector of the same shape as x0 {x0.shape}")
    return Problem(objective=_op_objective, params0={"x": _float(x0), "y": _float(y0)},
                   constants={"target": _float(target), "noise": _float(noise)},
                   sampler=_NormalSampler(()), population=_op_population, name="op_toy",
                   default_batch_size=batch_size)


# --- NOP: f(xyᵀ) --------------------------------------------------------------------------------

def _nop_residual(product, constants, n):
    labels = constants["target"] + constants["noise"] * constants["noise_scales"][:, None] * n
    return product - labels


def _nop_objective(params, batch, constants):
    product = jnp.outer(params["x"], params["y"])
    residuals = jax.vmap(lambda n: _nop_residual(product, constants, n))(batch["n"])
    return jnp.mean(jnp.sum(jnp.square(residuals), axis=(1, 2)))


def _nop_noise_energy(constants):
    # E‖noise · diag(s) U‖²_F = noise² · d2 · Σ s_i²
    d2 = constants["target"].shape[-1]
    return jnp.square(constants["noise"]) * d2 * jnp.sum(jnp.square(constants["noise_scales"]))


def _nop_population(params, constants):
    product = jnp.outer(params["x"], params["y"])
    return jnp.sum(jnp.square(product - constants["target"])) + _nop_noise_energy(constants)


def nop_toy(noise=0.0, *, target=NOP_TARGET, noise_scales=NOP_NOISE_SCALES, x0=None, y0=None,
            batch_size=1) -> Problem:
    """The non-overparametrized toy ``f = E‖xyᵀ - (A + noise·diag(s)U)‖²_F``, U iid N(0, 1).

    Args:
      noise: noise level alpha (>= 0).
      target: the matrix A (default diag(0.5, 0, 0)).
      noise_scales: s, the row scales of the noise (default (1, 0.8, 0.5)).
      x0: initial x, length d1 (default (0.2, -0.1, 0.3)).
      y0: initial y, length d2 (default -3 x0).
      batch_size: fresh noise matrices per step when the optimizer does not set one.

    Returns:
      A Problem with params ``{"x", "y"}`` and closed-form population loss
      ``‖xyᵀ - A‖²_F + noise² · d2 · Σ s_i²``.

    References: Li, Zhang, He 2024, App. A.4.
    """
    check_nonnegative("noise", noise)
    check_batch_size(batch_size)
    x0, y0 = _initial_pair(x0, y0)
    target = np.asarray(target, dtype=float)
    scales = np.asarray(noise_scales, dtype=float)
    if target.shape != (x0.size, y0.size):
        raise ConfigError("target", target.shape, f"shape (len(x0), len(y0)) = {(x0.size, y0.size)}")
    if scales.shape != (x0.size,):
        raise ConfigError("noise_scales", scales.shape, f"shape ({x0.size},)")
    return Problem(objective=_nop_objective, params0={"x": _float(x0), "y": _float(y0)},
                   constants={"target": _float(target), "noise": _float(noise),
                              "noise_scales": _float(scales)},
                   sampler=_NormalSampler(target.shape), population=_nop_population,
                   name="nop_toy", default_batch_size=batch_size)


# --- user objectives ----------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class _FactorObjective:
    """``f(xᵀy)`` (inner) or ``f(xyᵀ)`` (outer) for a user-supplied f."""

    f: Callable
    outer: bool

    def __call__(self, params, batch, constants):
        if self.outer:
            return self.f(jnp.outer(params["x"], params["y"]))
        return self.f(jnp.dot(params["x"], params["y"]))


def scalar_product(f: Callable, x0, y0) -> Problem:
    """An overparametrized problem ``min f(xᵀy)`` for any differentiable scalar f.

    Args:
      f: scalar -> scalar (e.g. ``lambda w: (w - 1) ** 2``), differentiable.
      x0: the initial x, a vector (None: the paper's (0.2, -0.1, 0.3)).
      y0: the initial y, a vector of the same length (None: ``-3 x0``).

    Returns:
      A deterministic Problem (no data, no noise) with params ``{"x", "y"}`` named
      "scalar_product"; ``problem.loss(params, None)`` is ``f(xᵀy)``.

    Raises:
      ConfigError: ``f`` not callable, or vectors that are not finite or differ in shape.

    References:
      Li, Zhang, He 2024, Sec. 2 (the OP problem f(xᵀy)) and Lemma 1.

    Examples:
      At a minimizer of f(xᵀy) the sharpness is ``f''·(‖x‖² + ‖y‖²)`` (Lemma 1):

      >>> import jax.numpy as jnp
      >>> import sharp_theory as st
      >>> problem = st.problems.scalar_product(lambda w: (w - 1.0) ** 2, x0=[1.0, 0.0],
      ...                                      y0=[0.5, 2.0])
      >>> float(problem.loss(problem.params0, None))  # xᵀy = 0.5
      0.25
      >>> at_minimum = {"x": jnp.array([1.0, 0.0]), "y": jnp.array([1.0, 0.0])}
      >>> fn = lambda params: problem.loss(params, None)
      >>> round(float(st.measure.lambda_max(fn, at_minimum)), 10)  # f'' = 2, ‖x‖² + ‖y‖² = 2
      4.0
    """
    if not callable(f):
        raise ConfigError("f", f, "a callable scalar -> scalar")
    x0, y0 = _initial_pair(x0, y0)
    if x0.shape != y0.shape or x0.ndim != 1:
        raise ConfigError("y0", y0.tolist(), f"a vector of the same shape as x0 {x0.shape}")
    return Problem(objective=_FactorObjective(f, outer=False),
                   params0={"x": _float(x0), "y": _float(y0)}, name="scalar_product")


def outer_product(f: Callable, x0, y0) -> Problem:
    """A non-overparametrized problem ``min f(xyᵀ)`` for any differentiable matrix -> scalar f.

    Args:
      f: (d1, d2) matrix -> scalar (e.g. ``lambda W: jnp.sum((W - A) ** 2)``), differentiable.
      x0: the initial x, a vector of length d1 (None: the paper's (0.2, -0.1, 0.3)).
      y0: the initial y, a vector of length d2 (None: ``-3 x0``).

    Returns:
      A deterministic Problem with params ``{"x", "y"}`` named "outer_product";
      ``problem.loss(params, None)`` is ``f(xyᵀ)``.

    Raises:
      ConfigError: ``f`` not callable, or non-vector or non-finite initial factors.

    References:
      Li, Zhang, He 2024, Sec. 2 (the NOP problem f(xyᵀ)).
    """
    if not callable(f):
        raise ConfigError("f", f, "a callable matrix -> scalar")
    x0, y0 = _initial_pair(x0, y0)
    if x0.ndim != 1 or y0.ndim != 1:
        raise ConfigError("x0", x0.shape, "vectors x0 (d1,) and y0 (d2,)")
    return Problem(objective=_FactorObjective(f, outer=True),
                   params0={"x": _float(x0), "y": _float(y0)}, name="outer_product")


# --- LoRA-like: W0_l + X_l Y_lᵀ, D layers ------------------------------------------------------

def _stacked_products(params, constants):
    # One (D, d1, d2) array of merged weights W0_l + X_l Y_lᵀ: vectorized over layers, so the
    # compiled program does not grow with D.
    xs = jnp.stack([pair["x"] for pair in params])
    ys = jnp.stack([pair["y"] for pair in params])
    return constants["base_weight"] + jnp.einsum("lir,ljr->lij", xs, ys)


def _lora_objective(params, batch, constants):
    products = _stacked_products(params, constants)  # (D, d1, d2)
    scales = constants["noise_scales"][None, None, :, None]
    labels = constants["target"][None] + constants["noise"] * scales * batch["n"]  # (b, D, d1, d2)
    per_layer = jnp.mean(jnp.sum(jnp.square(products[None] - labels), axis=(2, 3)), axis=0)
    return jnp.sum(per_layer)


def _layer(constants, layer):
    return {"target": constants["target"][layer], "noise": constants["noise"],
            "noise_scales": constants["noise_scales"]}


def _lora_population(params, constants):
    products = _stacked_products(params, constants)
    fit = jnp.sum(jnp.square(products - constants["target"]))
    return fit + len(params) * _nop_noise_energy(_layer(constants, 0))


def lora(layers=4, *, noise=0.0, rank=1, target=NOP_TARGET, noise_scales=NOP_NOISE_SCALES,
         base_weight=None, x0=None, y0=None, batch_size=1) -> Problem:
    """D independent LoRA-like layers ``W0_l + X_l Y_lᵀ`` fitting noisy targets.

    ``f = Σ_l E‖W0_l + X_l Y_lᵀ - (A + noise·diag(s)U_l)‖²_F``. Every layer is the NOP toy; what
    couples them is the optimizer: SAM normalizes its ascent by the gradient norm over *all*
    layers, so its per-layer balancing drift weakens as D grows, while BAR acts per layer.

    Args:
      layers: number of layers D (>= 1).
      noise: noise level alpha (>= 0).
      rank: adapter rank r (>= 1); X_l, Y_l are (d, r).
      target: A, shared by the layers (default diag(0.5, 0, 0)).
      noise_scales: row scales s of the noise.
      base_weight: frozen W0 (d1, d2), shared by the layers (default 0).
      x0: initial column of every X_l (default the NOP toy's x0), repeated across the rank
        columns with a 1/sqrt(r) scale so B0 per layer is the same for every r.
      y0: initial column of every Y_l (default -3 x0), repeated and scaled the same way.
      batch_size: noise draws per step.

    Returns:
      A Problem with params ``[{"x": (d1, r), "y": (d2, r)}] * D``.

    References: Li, Zhang, He 2024, Sec. 4 and Thm 5 (D-layer LoRA).
    """
    layers = check_int("layers", layers, minimum=1, maximum=256)
    rank = check_int("rank", rank, minimum=1)
    check_nonnegative("noise", noise)
    check_batch_size(batch_size)
    x0, y0 = _initial_pair(x0, y0)
    target = np.asarray(target, dtype=float)
    scales = np.asarray(noise_scales, dtype=float)
    if target.shape != (x0.size, y0.size):
        raise ConfigError("target", target.shape, f"shape {(x0.size, y0.size)}")
    base = np.zeros_like(target) if base_weight is None else np.asarray(base_weight, dtype=float)
    if base.shape != target.shape:
        raise ConfigError("base_weight", base.shape, f"shape {target.shape}")
    columns_x = np.repeat(x0[:, None], rank, axis=1) / np.sqrt(rank)
    columns_y = np.repeat(y0[:, None], rank, axis=1) / np.sqrt(rank)
    params0 = [{"x": _float(columns_x), "y": _float(columns_y)} for _ in range(layers)]
    constants = {"target": _float(np.broadcast_to(target, (layers,) + target.shape)),
                 "base_weight": _float(np.broadcast_to(base, (layers,) + base.shape)),
                 "noise": _float(noise), "noise_scales": _float(scales)}
    return Problem(objective=_lora_objective, params0=params0, constants=constants,
                   sampler=_NormalSampler((layers,) + target.shape), population=_lora_population,
                   name=f"lora_{layers}", default_batch_size=batch_size)


# --- closed forms used as oracles by the balancedness lab and tests -----------------------------

def expected_squared_gradients(params, problem: Problem):
    """``(E‖g_x‖², E‖g_y‖²)`` over one fresh noise draw, exactly, by autodiff.

    For :func:`op_toy`, :func:`nop_toy` and :func:`lora` the noise enters the residual linearly,
    so the gradient is affine in the standard normal draw n: ``g(n) = g(0) + Σ_k n_k c_k`` with
    ``c_k = g(e_k) - g(0)``, hence ``E‖g‖² = ‖g(0)‖² + Σ_k ‖c_k‖²`` (no sampling error).

    Args:
      params: ``{"x", "y"}`` or a list of such pairs.
      problem: a fresh-noise toy of this module (batch ``{"n": ...}`` of standard normals).

    Returns:
      ``(gx_sq, gy_sq)``: scalars for one pair, arrays with one entry per layer for a list.
    """
    sampler = problem.sampler
    if not isinstance(sampler, _NormalSampler):
        raise ConfigError("problem", problem.name, "op_toy, nop_toy or lora (fresh normal noise)")
    dtype = jax.tree_util.tree_leaves(params)[0].dtype
    size = int(np.prod(sampler.shape, dtype=int))
    zero = jnp.zeros((1,) + sampler.shape, dtype)
    basis = jnp.eye(size, dtype=dtype).reshape((size, 1) + sampler.shape)

    def gradient(n):
        return jax.grad(problem.loss)(params, {"n": n})

    at_zero = gradient(zero)
    at_basis = jax.vmap(gradient)(basis)

    def second_moment(mean, stacked):
        return jnp.sum(jnp.square(mean)) + jnp.sum(jnp.square(stacked - mean[None]))

    values = [(second_moment(g0["x"], gk["x"]), second_moment(g0["y"], gk["y"]))
              for g0, gk in zip(factor_pairs(at_zero), factor_pairs(at_basis))]
    if isinstance(params, dict):
        return values[0]
    return jnp.stack([v[0] for v in values]), jnp.stack([v[1] for v in values])


def op_derivative_moments(params, constants):
    """Moments of ``f' = 2(xᵀy - target - noise·n)``, n ~ N(0, 1), for :func:`op_toy`.

    ``f'`` is normal with mean ``μ = 2(xᵀy - target)`` and standard deviation ``σ = 2·noise``:
    ``E|f'| = σ√(2/π) exp(-μ²/2σ²) + μ erf(μ/(σ√2))``, ``E sign(f') = erf(μ/(σ√2))``,
    ``E f'² = μ² + σ²`` (σ = 0 gives |μ|, sign μ, μ²).

    Returns:
      dict with ``mean_abs``, ``mean_sign``, ``mean_square``.
    """
    mean = 2.0 * (jnp.dot(params["x"], params["y"]) - constants["target"])
    std = 2.0 * constants["noise"]
    safe_std = jnp.where(std > 0, std, 1.0)
    z = mean / (safe_std * jnp.sqrt(2.0))
    noisy_abs = safe_std * jnp.sqrt(2.0 / jnp.pi) * jnp.exp(-jnp.square(z)) + mean * jax.scipy.special.erf(z)
    return {"mean_abs": jnp.where(std > 0, noisy_abs, jnp.abs(mean)),
            "mean_sign": jnp.where(std > 0, jax.scipy.special.erf(z), jnp.sign(mean)),
            "mean_square": jnp.square(mean) + jnp.square(std)}


def op_sam_step_factor(x, y, fprime, fprime_perturbed, lr, rho):
    """Exact factor c in ``B+ = c·B`` for one SAM step (p = 2) on f(xᵀy).

    With ``N = √(‖x‖² + ‖y‖²)``, ``s = sign(f'(xᵀy))``, ``x̃ = x + (rho s/N) y``,
    ``ỹ = y + (rho s/N) x`` and ``f̃' = f'(x̃ᵀỹ)``, the update ``x+ = x - lr f̃' ỹ``,
    ``y+ = y - lr f̃' x̃`` gives ``c = 1 - 2 lr rho s f̃'/N - lr² f̃'² (1 - rho²/N²)`` [derived here
    from the update; rho = 0 gives the GD identity ``1 - lr² f'²``].
    """
    sq_norm = jnp.sum(jnp.square(x)) + jnp.sum(jnp.square(y))
    sign = jnp.sign(fprime)
    return (1.0 - 2.0 * lr * rho * sign * fprime_perturbed / jnp.sqrt(sq_norm)
            - lr**2 * jnp.square(fprime_perturbed) * (1.0 - rho**2 / sq_norm))


def op_sam_expected_log_rate(params, constants, lr, rho):
    """Expected ``-log(B+/B)`` per SAM step on :func:`op_toy` (batch 1), to first order in the step.

    From :func:`op_sam_step_factor` with ``f(w) = (w - target - noise·n)²``: the ascent moves the
    product to ``w̃ = w(1 + rho²/N²) + rho s N``, so ``s f̃' = |f'| + 2 rho N + 2 rho² w s/N²`` and

        E[-log c] ≈ 2 lr rho (E|f'| + 2 rho N + 2 rho² w E[s]/N²)/N + lr² E[f̃'²](1 - rho²/N²).

    The first term with ``E|f'|`` alone is Lemma 2's first-order drift; ``4 lr rho²`` is the
    O(rho²) part (present even without noise).

    Returns:
      dict with ``total`` (the expected log-decrement per step) and ``first_order``
      (``2 lr rho E|f'|/N``).
    """
    moments = op_derivative_moments(params, constants)
    w = jnp.dot(params["x"], params["y"])
    sq_norm = jnp.sum(jnp.square(params["x"])) + jnp.sum(jnp.square(params["y"]))
    norm = jnp.sqrt(sq_norm)
    shift_even = rho**2 * w / sq_norm  # part of w̃ - w that does not depend on s
    mean_signed_perturbed = (moments["mean_abs"] + 2.0 * rho * norm
                             + 2.0 * shift_even * moments["mean_sign"])
    # E f̃'² = E (f' + 2 shift_even + 2 rho s N)², using s f' = |f'|.
    mean_square_perturbed = (moments["mean_square"] + 4.0 * jnp.square(shift_even)
                             + 4.0 * rho**2 * sq_norm
                             + 8.0 * shift_even * (w - constants["target"])  # 4a·E f', E f' = 2(w - t)
                             + 4.0 * rho * norm * moments["mean_abs"]
                             + 8.0 * shift_even * rho * norm * moments["mean_sign"])
    first_order = 2.0 * lr * rho * moments["mean_abs"] / norm
    total = (2.0 * lr * rho * mean_signed_perturbed / norm
             + lr**2 * mean_square_perturbed * (1.0 - rho**2 / sq_norm))
    return {"total": total, "first_order": first_order}
