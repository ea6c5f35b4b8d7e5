"""Forgetting after fine-tuning, its quadratic prediction, and flatness on a 2-D loss surface.

Task A is learned first (endpoint ``w_A``), then task B from there (endpoint ``w_B``). With
``Δw = w_B − w_A``:

* :func:`exact_forgetting` — the exact rise of task A's loss, ``F = L_A(w_B) − L_A(w_A)``;
* :func:`quadratic_forgetting` — its second-order prediction at a minimum of L_A,
  ``½ Δwᵀ H_A Δw`` (exact when L_A is quadratic and minimized at w_A; Mirzadeh et al. 2020),
  computed with one Hessian-vector product; :func:`forgetting_bound` — ``½ λ_max(H_A)‖Δw‖²``;
* :func:`surface_flatness` — three flatness numbers of the 2-D surface
  ``f(a, b) = L(w + a d₁ + b d₂)`` along two random directions, in the spirit of Li et al.
  2024 (App. A.3 names them SC, AG and MAG). **The definitions are ours** (we did not find the
  paper's formulas): on a uniform (points × points) grid over ``[−r, r]²``, with the exact
  derivatives of f (autodiff, no finite differences),

  - SC (surface curvature) = mean over the grid of ``(f_aa + f_bb)/2``,
  - AG (average gradient) = mean over the grid of ``‖∇f‖₂ = √(f_a² + f_b²)``,
  - MAG (mean absolute gradient) = mean over the grid of ``(|f_a| + |f_b|)/2``.

  On ``L = ½wᵀHw`` with orthonormal directions D = [d₁ d₂], ``f`` is the quadratic with matrix
  ``M = DᵀHD``: SC = tr M/2 everywhere, AG and MAG are the grid means of ``‖Mz‖`` and
  ``(|(Mz)₁| + |(Mz)₂|)/2`` (tests check this).

References:
  S. I. Mirzadeh, M. Farajtabar, R. Pascanu, H. Ghasemzadeh. Understanding the Role of Training
    Regimes in Continual Learning. NeurIPS 2020, Sec. 3 (F ≈ ½ΔwᵀH_AΔw ≤ ½λ_max‖Δw‖²).
  H. Li, L. Ding, M. Fang, D. Tao. Revisiting Catastrophic Forgetting in Large Language Model
    Tuning. Findings of EMNLP 2024, arXiv:2406.04836 (flatness of the tuned model's surface).
  H. Li, Z. Xu, G. Taylor, C. Studer, T. Goldstein. Visualizing the Loss Landscape of Neural
    Nets. NeurIPS 2018 (random-direction surfaces, layer-wise normalized directions).
"""
from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp
from jax.flatten_util import ravel_pytree

from ..errors import ConfigError, check_int, check_positive
from .dense_hessian import hessian_vector_product
from .spectrum import lambda_max

__all__ = ["exact_forgetting", "quadratic_forgetting", "forgetting_bound", "random_directions",
           "loss_surface", "surface_flatness", "SURFACE_NORMALIZATIONS"]

SURFACE_NORMALIZATIONS = ("layer", "unit")
"""How :func:`random_directions` scales its directions: ``"layer"`` — each leaf of a direction
has the Frobenius norm of the same leaf of the parameters (Li et al. 2018); ``"unit"`` — two
orthonormal directions of the flat parameter vector."""


def _difference(params_a, params_b):
    flat_a, unravel = ravel_pytree(params_a)
    flat_b, _ = ravel_pytree(params_b)
    if flat_a.shape != flat_b.shape:
        raise ConfigError("params_b", f"{flat_b.size} parameters",
                          f"the structure of params_a ({flat_a.size} parameters)")
    return unravel(flat_b - flat_a)


def exact_forgetting(loss_a: Callable, params_a, params_b):
    """The exact forgetting ``F = L_A(w_B) − L_A(w_A)``.

    Args:
      loss_a: ``loss_a(params) -> scalar``, task A's loss.
      params_a: task A's endpoint w_A (a pytree).
      params_b: the fine-tuned parameters w_B (the same structure).

    Returns:
      A scalar array.

    References:
      Mirzadeh et al. NeurIPS 2020, Sec. 3 (forgetting of task A after learning task B).
    """
    return loss_a(params_b) - loss_a(params_a)


def quadratic_forgetting(loss_a: Callable, params_a, params_b):
    """The second-order prediction ``½ Δwᵀ H_A Δw`` of the forgetting, ``Δw = w_B − w_A``.

    Exact (to round-off) when L_A is quadratic and minimized at w_A; otherwise the gradient
    term ``∇L_A(w_A)ᵀΔw`` is left out on purpose (w_A is taken as a minimum of L_A).

    Args:
      loss_a: ``loss_a(params) -> scalar``, task A's loss.
      params_a: task A's endpoint w_A.
      params_b: the fine-tuned parameters w_B.

    Returns:
      A scalar array (one Hessian-vector product at w_A).

    References:
      Mirzadeh et al. NeurIPS 2020, Eq. (3).
    """
    delta = _difference(params_a, params_b)
    product = hessian_vector_product(loss_a, params_a, delta)
    return 0.5 * sum(jnp.vdot(d, h) for d, h in zip(jax.tree_util.tree_leaves(delta),
                                                    jax.tree_util.tree_leaves(product)))


def forgetting_bound(loss_a: Callable, params_a, params_b, **options):
    """Mirzadeh et al.'s bound ``½ λ_max(H_A) ‖Δw‖²`` on the quadratic prediction.

    Args:
      loss_a: ``loss_a(params) -> scalar``.
      params_a: task A's endpoint w_A (the Hessian is taken there).
      params_b: the fine-tuned parameters w_B.
      **options: passed to :func:`sharp_theory.measure.lambda_max` (``method``, ...).

    Returns:
      A scalar array.

    References:
      Mirzadeh et al. NeurIPS 2020, Eq. (4).
    """
    flat, _ = ravel_pytree(_difference(params_a, params_b))
    return 0.5 * lambda_max(loss_a, params_a, **options) * jnp.sum(flat ** 2)


def random_directions(params, key, *, normalization: str = "layer"):
    """Two random directions in parameter space for a 2-D loss surface.

    Args:
      params: the centre of the surface (a pytree; its structure is the directions').
      key: a ``jax.random`` key (explicit; the same key gives the same directions).
      normalization: one of :data:`SURFACE_NORMALIZATIONS`.

    Returns:
      ``(d1, d2)``, pytrees shaped like ``params``.

    References:
      Li, Xu, Taylor, Studer, Goldstein. NeurIPS 2018, Sec. 4 (filter/layer normalization).
    """
    if normalization not in SURFACE_NORMALIZATIONS:
        raise ConfigError("normalization", normalization, "one of " + ", ".join(SURFACE_NORMALIZATIONS))
    flat, unravel = ravel_pytree(params)
    draws = jax.random.normal(key, (2, flat.size), dtype=flat.dtype)
    if normalization == "unit":
        first = draws[0] / jnp.linalg.norm(draws[0])
        second = draws[1] - (draws[1] @ first) * first
        return unravel(first), unravel(second / jnp.linalg.norm(second))

    def layer(direction):
        tree = unravel(direction)
        return jax.tree_util.tree_map(
            lambda d, p: d * jnp.linalg.norm(p) / jnp.maximum(jnp.linalg.norm(d), 1e-300), tree, params)
    return layer(draws[0]), layer(draws[1])


def _grid(radius, points):
    check_positive("radius", radius)
    points = check_int("points", points, minimum=2)
    axis = jnp.linspace(-radius, radius, points)
    a, b = jnp.meshgrid(axis, axis, indexing="ij")
    return a, b


def _surface_function(loss: Callable, params, directions):
    d1, d2 = directions

    def surface(z):
        return loss(jax.tree_util.tree_map(lambda p, u, v: p + z[0] * u + z[1] * v, params, d1, d2))
    return surface


def loss_surface(loss: Callable, params, key, *, radius: float = 1.0, points: int = 21,
                 normalization: str = "layer"):
    """The loss on a 2-D grid around ``params`` along two random directions.

    Args:
      loss: ``loss(params) -> scalar``.
      params: the centre.
      key: a ``jax.random`` key for :func:`random_directions`.
      radius: r > 0; the grid covers ``[−r, r]²``.
      points: grid points per axis (>= 2).
      normalization: one of :data:`SURFACE_NORMALIZATIONS`.

    Returns:
      ``(a, b, values)``, three (points, points) arrays: ``values[i, j] = L(w + a d₁ + b d₂)``.

    References:
      Li, Xu, Taylor, Studer, Goldstein. NeurIPS 2018 (2-D loss surfaces).
    """
    a, b = _grid(radius, points)
    surface = _surface_function(loss, params, random_directions(params, key,
                                                                normalization=normalization))
    values = jax.vmap(surface)(jnp.stack([a.ravel(), b.ravel()], axis=-1)).reshape(a.shape)
    return a, b, values


def surface_flatness(loss: Callable, params, key, *, radius: float = 1.0, points: int = 11,
                     normalization: str = "layer") -> dict:
    """SC, AG and MAG of the 2-D random-direction surface around ``params`` (our definitions).

    Args:
      loss: ``loss(params) -> scalar``.
      params: the centre (e.g. the fine-tuned model).
      key: a ``jax.random`` key for :func:`random_directions`.
      radius: r > 0; the grid covers ``[−r, r]²`` in units of the directions.
      points: grid points per axis (>= 2).
      normalization: one of :data:`SURFACE_NORMALIZATIONS`.

    Returns:
      dict with scalar arrays ``"SC"`` (mean of ``(f_aa + f_bb)/2``), ``"AG"`` (mean of
      ``‖∇f‖``) and ``"MAG"`` (mean of ``(|f_a| + |f_b|)/2``) over the grid (module docstring).

    References:
      Li, Ding, Fang, Tao. Findings of EMNLP 2024, App. A.3 (the three measures' names; the
      formulas here are ours).
    """
    a, b = _grid(radius, points)
    surface = _surface_function(loss, params, random_directions(params, key,
                                                                normalization=normalization))
    z = jnp.stack([a.ravel(), b.ravel()], axis=-1)
    gradients = jax.vmap(jax.grad(surface))(z)
    hessians = jax.vmap(jax.hessian(surface))(z)
    return {"SC": jnp.mean(0.5 * (hessians[:, 0, 0] + hessians[:, 1, 1])),
            "AG": jnp.mean(jnp.linalg.norm(gradients, axis=-1)),
            "MAG": jnp.mean(0.5 * jnp.sum(jnp.abs(gradients), axis=-1))}
