"""Exact checks of the rest of the SAM family, for the "sam-family" lab's claims.

Each function measures one paper's promise on a model whose answer is known in closed form:
GSAM's first-order invariance and SAMPa's parallel gradients on the diagonal linear network,
CR-SAM's finite-difference trace gradient against autodiff, μP²'s layer balance on a two-layer
linear network across widths, and the universal class's measures on the scalar factorization
``½(ab − 1)²`` (minima ab = 1; every measure is smallest at the balanced minimum a = b = 1).

References:
  Zhuang et al. 2022 (GSAM); Xie, Pethick, Cevher 2024 (SAMPa); Wu, Luo, Wunsch 2024 (CR-SAM);
  Haas, Xu, Cevher, Vankadara 2024 (μP²); Tahmasebi et al. 2024 (Frob-SAM, Det-SAM).
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

from .. import optim
from ..measure.universal import universal_sharpness, universal_sharpness_gradient


def _random_points(problem, instances, seed, spread=0.5):
    flat, unravel = ravel_pytree(problem.params0)
    noise = jax.random.normal(jax.random.key(seed), (instances,) + flat.shape, flat.dtype)
    return flat, unravel, flat[None] + spread * noise


def gsam_first_order_violation(problem, *, rho=0.1, instances=64, seed=0):
    """Largest |d/dt L(w + ε + t g_⊥)| / (‖∇L(w+ε)‖ ‖g_⊥‖) over random points (ε held fixed), and
    the smallest same ratio for the plain gradient g (the contrast: it is not orthogonal).

    Args:
      problem: a Problem (its ``evaluation_loss`` is L).
      rho: SAM's radius.
      instances: random points w = w0 + 0.5·N(0, I).
      seed: integer seed.

    Returns:
      dict ``correction`` (max, should be rounding) and ``plain_gradient`` (min, order one).
    """
    _, unravel, points = _random_points(problem, instances, seed)
    loss = lambda flat: problem.evaluation_loss(unravel(flat))

    def one(w):
        g = jax.grad(loss)(w)
        eps = optim.ascent_direction(g, rho)
        gp = jax.grad(loss)(w + eps)
        g_perp = optim.orthogonal_correction(g, gp)
        along = lambda v: jax.jvp(lambda t: loss(w + eps + t * v), (0.0,), (1.0,))[1]
        scale = lambda v: jnp.linalg.norm(gp) * jnp.linalg.norm(v)
        return jnp.abs(along(g_perp)) / scale(g_perp), jnp.abs(along(g)) / scale(g)

    correction, plain = jax.jit(jax.vmap(one))(points)
    return {"correction": float(jnp.max(correction)), "plain_gradient": float(jnp.min(plain))}


def sampa_parallel_violation(problem, *, instances=64, seed=1):
    """Largest relative difference between SAMPa's batched gradient pair and two serial gradients.

    Args:
      problem: a Problem.
      instances: random pairs of points.
      seed: integer seed.

    Returns:
      dict ``parallel_vs_serial`` (max relative difference) and ``sequential_grad_evals`` (the
      depth one SAMPa step reports).
    """
    _, unravel, points = _random_points(problem, 2 * instances, seed)
    loss = lambda params, batch: problem.evaluation_loss(params)
    pairs = points.reshape(instances, 2, -1)

    def one(pair):
        stacked = jax.vmap(unravel)(pair)
        both = optim.parallel_gradients(loss, stacked, None)
        errors = []
        for index in range(2):
            serial = ravel_pytree(jax.grad(loss)(unravel(pair[index]), None))[0]
            batched = ravel_pytree(jax.tree_util.tree_map(lambda x: x[index], both))[0]
            errors.append(jnp.linalg.norm(batched - serial) / jnp.linalg.norm(serial))
        return jnp.max(jnp.stack(errors))

    worst = float(jnp.max(jax.jit(jax.vmap(one))(pairs)))
    opt = optim.sampa(0.05, 0.1)
    params = problem.params0
    _, _, info = opt.step(params, opt.init(params), loss, None, opt.hparams, jax.random.key(0))
    return {"parallel_vs_serial": worst, "sequential_grad_evals": float(info["sequential_grad_evals"]),
            "grad_evals": float(info["grad_evals"])}


def cr_sam_trace_gradient_error(problem, *, h=1e-3, probes=4, seed=2):
    """Relative error of CR-SAM's finite-difference ∇(vᵀHv) against autodiff, at random points.

    Args:
      problem: a Problem.
      h: the difference step.
      probes: random (point, Rademacher probe) pairs.
      seed: integer seed.

    Returns:
      dict ``relative_error`` (max over probes) and ``h``.
    """
    flat0, unravel, points = _random_points(problem, probes, seed)
    loss_flat = lambda w: problem.evaluation_loss(unravel(w))
    keys = jax.random.split(jax.random.key(seed + 1), probes)

    def one(w, key):
        v = jax.random.rademacher(key, w.shape, w.dtype)
        g = jax.grad(loss_flat)(w)
        estimate = optim.trace_gradient_estimate(lambda p, b: loss_flat(p), w, None, g, v, h)
        hvp = lambda u: jax.jvp(jax.grad(loss_flat), (u,), (v,))[1]
        exact = jax.grad(lambda u: jnp.dot(v, hvp(u)))(w)
        return jnp.linalg.norm(estimate - exact) / jnp.linalg.norm(exact)

    errors = jax.jit(jax.vmap(one))(points, keys)
    return {"relative_error": float(jnp.max(errors)), "h": h}


def mup2_layer_balance(widths=(16, 64, 256, 1024), *, dim=8, seeds=4, rho=0.1):
    """The output change from the first layer's perturbation over the second's, by width.

    Two-layer linear network ``f(x) = x W1 W2`` in μP (W1 ~ N(0, 1/d), W2 ~ N(0, 1/n²)), one
    example, squared loss to target 1. For ε from global SAM and from μP²'s layerwise radii,
    the first-order output changes are ``x ε1 W2`` and ``x W1 ε2``; their ratio (median over
    seeds) is reported per width.

    Args:
      widths: hidden widths n.
      dim: input dimension d.
      seeds: random instances per width.
      rho: the radius.

    Returns:
      dict ``widths``, ``sam_ratio`` and ``mup2_ratio`` (lists, one per width).
    """
    sam_ratio, mup2_ratio = [], []
    for width in widths:
        ratios = {"sam": [], "mup2": []}
        for seed in range(seeds):
            rng = np.random.default_rng(seed)
            x = rng.standard_normal(dim)
            w1 = rng.standard_normal((dim, width)) / np.sqrt(dim)
            w2 = rng.standard_normal((width, 1)) / width
            hidden = x @ w1
            residual = float(hidden @ w2[:, 0]) - 1.0  # dL/df for ½(f − 1)²
            g1 = np.outer(x, residual * w2[:, 0])  # ∂L/∂W1 (closed form)
            g2 = residual * hidden[:, None]  # ∂L/∂W2
            total = np.sqrt(np.sum(g1 ** 2) + np.sum(g2 ** 2))
            scales = optim.spectral_scales([g1, g2])
            perturbations = {
                "sam": (rho * g1 / total, rho * g2 / total),
                "mup2": (rho * scales[0] * g1 / np.linalg.norm(g1), rho * scales[1] * g2 / np.linalg.norm(g2))}
            for name, (e1, e2) in perturbations.items():
                ratios[name].append(abs(float(x @ e1 @ w2[:, 0])) / abs(float(hidden @ e2[:, 0])))
        sam_ratio.append(float(np.median(ratios["sam"])))
        mup2_ratio.append(float(np.median(ratios["mup2"])))
    return {"widths": list(widths), "sam_ratio": sam_ratio, "mup2_ratio": mup2_ratio}


def factorization_loss(params, batch=None):
    """``½(ab − 1)²``: minima on ab = 1, tr H = a² + b², ‖H‖_F² = a⁴ + b⁴ + 2 and det H = 0 there.

    Args:
      params: the array (a, b).
      batch: unused (the loss has no data).

    Returns:
      A scalar array.
    """
    return 0.5 * jnp.square(params[0] * params[1] - 1.0)


BALANCED_MINIMUM = {"trace": 2.0, "frobenius": 4.0}
"""Each measure's smallest value over the minima ab = 1 (at a = b = 1)."""


def universal_class_descent(*, start=(2.0, 0.5), steps=3000, lr=0.01, lam=0.001, shift=0.1):
    """Frob-SAM and Det-SAM from an unbalanced minimum of ``½(ab − 1)²``, against GD.

    Args:
      start: the starting minimum (a, b) with ab = 1.
      steps: steps of each run.
      lr: step size.
      lam: the penalty weight λ.
      shift: Det-SAM's δ.

    Returns:
      dict per method ("gd", "frob-sam", "det-sam") of the final ‖H‖_F², log det(H + δI), the
      imbalance |a² − b²| (0 at the balanced minimum), the loss and a·b, and the manifold minima of both measures.
    """
    w0 = jnp.asarray(start, jnp.float64)
    runs = {"gd": optim.gd(lr), "frob-sam": optim.frob_sam(lr, lam),
            "det-sam": optim.det_sam(lr, lam, shift=shift)}
    fn = lambda w: factorization_loss(w)
    out = {}
    for name, opt in runs.items():
        def body(carry, key, opt=opt):
            w, state = carry
            w, state, _ = opt.step(w, state, factorization_loss, None, opt.hparams, key)
            return (w, state), None
        keys = jax.random.split(jax.random.key(3), steps)
        (w, _), _ = jax.jit(lambda w: jax.lax.scan(body, (w, opt.init(w)), keys))(w0)
        out[name] = {"frobenius": float(universal_sharpness(fn, w, "frobenius")),
                     "imbalance": float(jnp.abs(w[0] ** 2 - w[1] ** 2)),
                     "log_det": float(universal_sharpness(fn, w, "determinant", shift=shift)),
                     "loss": float(fn(w)), "product": float(w[0] * w[1])}
    balanced = jnp.ones(2, jnp.float64)
    out["minimum"] = {"frobenius": float(universal_sharpness(fn, balanced, "frobenius")),
                      "log_det": float(universal_sharpness(fn, balanced, "determinant", shift=shift))}
    out["start"] = {"frobenius": float(universal_sharpness(fn, w0, "frobenius")),
                    "imbalance": float(jnp.abs(w0[0] ** 2 - w0[1] ** 2)),
                    "log_det": float(universal_sharpness(fn, w0, "determinant", shift=shift))}
    grad = universal_sharpness_gradient(fn, w0, "frobenius")
    out["start"]["frobenius_gradient_norm"] = float(jnp.linalg.norm(grad))
    return out


def loss_barrier(loss, start, end, *, points=21):
    """Largest rise of ``loss`` along the segment from ``start`` to ``end`` above the larger end.

    Args:
      loss: ``loss(params) -> scalar``.
      start: parameter pytree.
      end: parameter pytree like ``start``.
      points: evaluation points on the segment (ends included).

    Returns:
      A float: ``max_t L((1−t)start + t end) − max(L(start), L(end))`` (≥ 0 up to rounding).
    """
    ts = jnp.linspace(0.0, 1.0, points)
    along = jax.vmap(lambda t: loss(jax.tree_util.tree_map(lambda a, b: (1 - t) * a + t * b, start, end)))(ts)
    return float(jnp.max(along) - jnp.maximum(along[0], along[-1]))


__all__ = ["gsam_first_order_violation", "sampa_parallel_violation", "cr_sam_trace_gradient_error",
           "mup2_layer_balance", "universal_class_descent", "factorization_loss", "loss_barrier",
           "BALANCED_MINIMUM"]
