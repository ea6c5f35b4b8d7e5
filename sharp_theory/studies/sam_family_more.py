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
import scipy.sparse.linalg
from jax.flatten_util import ravel_pytree

from .. import optim
from ..measure.universal import universal_sharpness, universal_sharpness_gradient


def _random_points(problem, instances, seed, spread=0.5):
    # One compiled program for the flattening and the draw (each eager op would compile alone).
    @jax.jit
    def draw(params):
        flat = ravel_pytree(params)[0]
        noise = jax.random.normal(jax.random.key(seed), (instances,) + flat.shape, flat.dtype)
        return flat, flat[None] + spread * noise

    flat, points = draw(problem.params0)
    return flat, ravel_pytree(problem.params0)[1], points


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
    info = jax.jit(lambda params: opt.step(params, opt.init(params), loss, None, opt.hparams,
                                           jax.random.key(0))[2])(problem.params0)
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

    def measures(w):
        return {"frobenius": universal_sharpness(fn, w, "frobenius"),
                "imbalance": jnp.abs(w[0] ** 2 - w[1] ** 2),
                "log_det": universal_sharpness(fn, w, "determinant", shift=shift),
                "loss": fn(w), "product": w[0] * w[1],
                "frobenius_gradient_norm": jnp.linalg.norm(universal_sharpness_gradient(fn, w, "frobenius"))}

    # One compiled program per method (its run and the measures at its end), one for the
    # measures at the start and at the balanced minimum: each eager op would compile alone.
    out = {}
    for name, opt in runs.items():
        def body(carry, key, opt=opt):
            w, state = carry
            w, state, _ = opt.step(w, state, factorization_loss, None, opt.hparams, key)
            return (w, state), None

        def run(w, opt=opt, body=body):
            keys = jax.random.split(jax.random.key(3), steps)
            (w, _), _ = jax.lax.scan(body, (w, opt.init(w)), keys)
            return measures(w)

        ended = jax.jit(run)(w0)
        out[name] = {key: float(ended[key]) for key in ("frobenius", "imbalance", "log_det", "loss", "product")}
    at = jax.jit(measures)
    minimum, start = at(jnp.ones(2, jnp.float64)), at(w0)
    out["minimum"] = {key: float(minimum[key]) for key in ("frobenius", "log_det")}
    out["start"] = {key: float(start[key]) for key in ("frobenius", "imbalance", "log_det",
                                                       "frobenius_gradient_norm")}
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
    @jax.jit  # one compiled program for the whole segment
    def segment(start, end):
        ts = jnp.linspace(0.0, 1.0, points)
        return jax.vmap(lambda t: loss(jax.tree_util.tree_map(lambda a, b: (1 - t) * a + t * b, start, end)))(ts)

    along = np.asarray(segment(start, end))
    return float(np.max(along) - max(along[0], along[-1]))


def interpolating_minimum(residuals, params, *, iterations=8):
    """The interpolator near ``params``: Gauss-Newton steps ``w ← w − J⁺ r`` (minimum-norm).

    On an over-parametrized least-squares problem the minima form a manifold; from a point near
    it, the minimum-norm Gauss-Newton step converges quadratically to a nearby point of it.

    Args:
      residuals: ``residuals(params) -> (n,)`` array, zero exactly at an interpolator.
      params: a parameter pytree near an interpolator (e.g. the end of an SGD run).
      iterations: Gauss-Newton steps (each one squares the residual's size near the manifold).

    Returns:
      The interpolator, a pytree like ``params``.
    """
    flat, unravel = ravel_pytree(params)
    residual_of = lambda w: residuals(unravel(w))

    @jax.jit
    def solve(flat):
        step = lambda w, _: (w - jnp.linalg.pinv(jax.jacfwd(residual_of)(w)) @ residual_of(w), None)
        return jax.lax.scan(step, flat, None, length=iterations)[0]

    return unravel(solve(flat))


def batch_hessians(per_example_hessians, batch_size):
    """The Hessian ``H_ξ`` of every ordered mini-batch ξ drawn with replacement, restricted to the
    span S of the per-example Hessians (outside S every linearized step is the identity).

    Args:
      per_example_hessians: ``(n, p, p)`` positive semi-definite Hessians at a minimum.
      batch_size: examples per mini-batch.

    Returns:
      ``(n^batch_size, r, r)`` array, r = dim S.
    """
    eigenvalues, vectors = np.linalg.eigh(per_example_hessians.mean(0))
    basis = vectors[:, eigenvalues > 1e-9 * eigenvalues[-1]]
    reduced = np.einsum("pa,ipq,qb->iab", basis, per_example_hessians, basis)
    n = reduced.shape[0]
    index = np.stack(np.meshgrid(*[np.arange(n)] * batch_size, indexing="ij"), -1).reshape(-1, batch_size)
    return reduced[index].mean(1)


def linearized_sam_maps(hessians, lr, rho):
    """``I − η(H + ρH²)`` for each stacked ``H``: unnormalized SAM's step, linearized at a minimum.

    Args:
      hessians: ``(k, r, r)`` mini-batch Hessians at the minimum.
      lr: the step size η.
      rho: the ascent scale ρ (0: SGD's maps).

    Returns:
      ``(k, r, r)`` array.
    """
    return np.eye(hessians.shape[1])[None] - lr * (hessians + rho * hessians @ hessians)


def mean_square_growth(maps):
    """Spectral radius of ``M ↦ E_ξ A_ξ M A_ξᵀ``: the per-step growth of ``E‖δ‖²`` under the
    random linear maps ``δ ← A_ξ δ`` (ξ uniform over the stacked maps).

    Args:
      maps: stacked matrices ``(k, r, r)``.

    Returns:
      A float μ (> 1: the mean square grows; <= 1: linearly stable in mean square).

    References:
      Wu, Ma, E 2018 (linear stability of SGD in mean square).
    """
    rank = maps.shape[1]
    flat = maps.reshape(len(maps), rank * rank)
    # Σ_k A_ab A_cd as a product of the flattened maps, then ordered as the operator (ac, bd).
    second_moment = (flat.T @ flat).reshape(rank, rank, rank, rank).transpose(0, 2, 1, 3)
    operator = second_moment.reshape(rank * rank, -1) / len(maps)
    # The operator preserves the cone of PSD matrices, so its largest eigenvalue in modulus is
    # real and positive (Krein-Rutman); ARPACK finds it from a few products.
    top = scipy.sparse.linalg.eigs(operator, k=1, which="LM", v0=np.eye(rank).ravel(),
                                   return_eigenvectors=False)
    return float(np.abs(top[0]))


def lyapunov_exponent(maps, *, steps=4000, chains=32, seed=0):
    """Top Lyapunov exponent (per step, of ``log‖δ‖``) of the random product of ``maps``.

    Args:
      maps: stacked matrices ``(k, r, r)``, one drawn uniformly at each step.
      steps: length of each product.
      chains: independent products (their spread is the estimate's uncertainty).
      seed: integer seed of the draws.

    Returns:
      dict ``rate`` (mean over chains) and ``standard_error`` (their standard deviation / √chains).
    """
    rng = np.random.default_rng(seed)
    vectors = rng.standard_normal((chains, maps.shape[1]))
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    total = np.zeros(chains)
    burn_in = steps // 10
    for step in range(steps):
        vectors = np.einsum("cab,cb->ca", maps[rng.integers(0, len(maps), chains)], vectors)
        norms = np.linalg.norm(vectors, axis=1)
        vectors /= norms[:, None]
        if step >= burn_in:
            total += np.log(norms)
    rates = total / (steps - burn_in)
    return {"rate": float(rates.mean()), "standard_error": float(rates.std() / np.sqrt(chains))}


def late_phase_escape(problem, sgd_end, residuals, *, lr, batch_size=2, rho_factor=2.0,
                      lab_rho=0.1, offset=1e-12, growth=1e4, max_steps=2000, runs=128, seed=4):
    """SAM's escape from the minimum SGD found, measured against its linearization.

    Zhou et al. (2025)'s phase (i): switched on at a minimum w* of SGD, SAM leaves it
    exponentially fast when w* is linearly unstable for SAM. Near an interpolating minimum the
    per-example Hessians are ``H_i = J_iᵀJ_i`` and the unnormalized SAM step on a mini-batch ξ is,
    to first order in δ = w − w*, ``δ ← (I − η(H_ξ + ρH_ξ²)) δ`` (normalized SAM's ascent
    ρ∇L/‖∇L‖ does not vanish at w*, so it has no linearization there). The maps predict two
    rates: the growth of ``E‖δ‖²`` (linear stability in mean square: the spectral radius μ of
    ``M ↦ E A_ξ M A_ξᵀ``) and the growth of a typical run's ``log‖δ‖`` (the top Lyapunov
    exponent γ). Here ρ is ``rho_factor`` times the radius ρ_c at which μ crosses 1 (found by
    bisection); the runs start at ``w* + offset·d̂`` with d̂ the direction from w* to SGD's end
    point, take i.i.d. mini-batches and last until the predicted typical growth is ``growth``.

    Args:
      problem: a finite-data Problem whose loss is ``mean_i ½ r_i(w)²``.
      sgd_end: the end point of the SGD run (a pytree).
      residuals: ``residuals(params) -> (n,)`` of the problem's examples.
      lr: the step size η of both phases.
      batch_size: examples per step, drawn with replacement (the linearization's i.i.d. premise).
      rho_factor: ρ / ρ_c for the measured runs (> 1: escape predicted).
      lab_rho: a radius whose mean-square growth is reported as well (the lab's SAM radius).
      offset: the initial distance from w*.
      growth: the predicted typical growth of ‖δ‖ over the run (sets the number of steps).
      max_steps: the most steps a run takes.
      runs: independent runs (mini-batch sequences).
      seed: integer seed of the runs.

    Returns:
      dict with the minimum (``minimum_loss``, ``minimum_gradient_norm``, ``sgd_offset``), the
      predictions (``rho_critical``, ``rho``, ``mean_square_growth`` μ, ``sgd_mean_square_growth``,
      ``lab_rho_mean_square_growth``, ``predicted_rate`` γ and ``predicted_rate_error``,
      ``predicted_mean_square_rate`` ½ log μ), the measurement (``steps``, ``measured_rate``: the
      slope of the mean of log‖w_t − w*‖ over the last two thirds of the steps, its
      ``measured_rate_error``, ``measured_mean_square_rate``: ½ × the slope of log mean‖δ_t‖²,
      ``largest_distance`` over all runs) and ``distance_curve`` (mean log-distance by step).

    References:
      Zhou, Wang, Mao, Li, Yan. Sharpness-Aware Minimization Efficiently Selects Flatter Minima
      Late in Training. ICLR 2025, Sec. 4 (phase i). Wu, Ma, E 2018 (linear stability of SGD in
      mean square).
    """
    examples = problem.examples
    n = jax.tree_util.tree_leaves(examples)[0].shape[0]

    @jax.jit
    def prepare(params):  # one compiled program: the minimum, its loss and Hessians
        flat_end, unravel = ravel_pytree(params)
        flat_min = ravel_pytree(interpolating_minimum(residuals, params))[0]
        example_loss = lambda w, i: problem.loss(unravel(w), jax.tree_util.tree_map(lambda x: x[i][None], examples))
        hessians = jax.vmap(jax.hessian(example_loss), (None, 0))(flat_min, jnp.arange(n))
        loss, gradient = jax.value_and_grad(lambda w: problem.loss(unravel(w), examples))(flat_min)
        return flat_end, flat_min, hessians, loss, jnp.linalg.norm(gradient)

    flat_end, flat_min, hessians, minimum_loss, gradient_norm = map(np.asarray, prepare(sgd_end))

    batches = batch_hessians(hessians, batch_size)
    growth_at = lambda rho: mean_square_growth(linearized_sam_maps(batches, lr, rho))
    low, high = 0.0, 1.0
    while growth_at(high) <= 1.0:
        low, high = high, 2.0 * high
    for _ in range(10):
        middle = 0.5 * (low + high)
        low, high = (low, middle) if growth_at(middle) > 1.0 else (middle, high)
    rho_critical = high
    rho = rho_factor * rho_critical
    maps = linearized_sam_maps(batches, lr, rho)
    mu = mean_square_growth(maps)
    lyapunov = lyapunov_exponent(maps)
    gamma = lyapunov["rate"]
    steps = int(min(max_steps, np.ceil(np.log(growth) / gamma))) if gamma > 0 else max_steps

    opt = optim.usam(lr, rho)
    sgd_offset = float(np.linalg.norm(flat_end - flat_min))
    start = flat_min + offset * (flat_end - flat_min) / sgd_offset

    @jax.jit
    def all_runs(params, start, flat_min):  # one compiled program: every run, vmapped
        unravel = ravel_pytree(params)[1]

        def one_run(key):
            def body(carry, step):
                w, state = carry
                batch = problem.batch(key, step, batch_size, replace=True)
                params, state, _ = opt.step(unravel(w), state, problem.loss, batch, opt.hparams,
                                            jax.random.fold_in(key, step))
                w = ravel_pytree(params)[0]
                return (w, state), jnp.sum(jnp.square(w - flat_min))
            _, squared = jax.lax.scan(body, (start, opt.init(unravel(start))), jnp.arange(steps))
            return jnp.concatenate([jnp.full((1,), offset ** 2), squared])

        return jax.vmap(one_run)(jax.random.split(jax.random.key(seed), runs))

    squared = np.asarray(all_runs(sgd_end, start, flat_min))
    t = np.arange(steps + 1)
    window = t >= steps // 3
    log_distance = 0.5 * np.log(squared)
    per_run = np.polyfit(t[window], log_distance[:, window].T, 1)[0]
    largest = np.sqrt(squared.max(1))
    mean_square = np.polyfit(t[window], np.log(squared[:, window].mean(0)), 1)[0]
    return {"minimum_loss": float(minimum_loss), "minimum_gradient_norm": float(gradient_norm),
            "sgd_offset": sgd_offset,
            "rho_critical": rho_critical, "rho": rho, "rho_factor": rho_factor, "lr": lr,
            "batch_size": batch_size,
            "mean_square_growth": mu, "sgd_mean_square_growth": growth_at(0.0),
            "lab_rho": lab_rho, "lab_rho_mean_square_growth": growth_at(lab_rho),
            "predicted_rate": gamma, "predicted_rate_error": lyapunov["standard_error"],
            "predicted_mean_square_rate": 0.5 * float(np.log(mu)),
            "steps": steps, "runs": runs, "offset": offset,
            "measured_rate": float(per_run.mean()),
            "measured_rate_error": float(per_run.std() / np.sqrt(runs)),
            "measured_mean_square_rate": 0.5 * float(mean_square),
            "median_rate": float(np.median(per_run)),
            "largest_distance": float(largest.max()),
            "largest_distance_q90": float(np.quantile(largest, 0.9)),
            "final_distance_median": float(np.median(np.sqrt(squared[:, -1]))),
            "distance_curve": log_distance.mean(0)[:: max(1, steps // 50)].tolist()}


__all__ = ["gsam_first_order_violation", "sampa_parallel_violation", "cr_sam_trace_gradient_error",
           "mup2_layer_balance", "universal_class_descent", "factorization_loss", "loss_barrier",
           "BALANCED_MINIMUM", "interpolating_minimum", "batch_hessians", "linearized_sam_maps",
           "mean_square_growth",
           "lyapunov_exponent", "late_phase_escape"]
