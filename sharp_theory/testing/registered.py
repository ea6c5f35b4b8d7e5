"""Our own theory as fuzzable claims: ``sharp-theory fuzz --registered [NAME ...]``.

Each claim is a bound or an identity from the paper cards (papers/), written as a slack (>= 0: holds) over the
regime where it is stated. Identities hold to rounding: their slack is a tolerance (a small
multiple of float64's eps times the problem's scale) minus the measured error. The cheap ones
are vectorized: one compiled program evaluates 32 draws at a time.

The file imports the library as a user would (``import sharp_theory as st``), so it doubles as an
example of how to write claims.

References:
  Li, Zhang, He. Implicit regularization of sharpness-aware minimization for scale-invariant
    problems (NeurIPS 2024, arXiv 2410.14802): GD's one-step balancedness identities, SAM's
    drift, Lemma 1.
  Andriushchenko & Flammarion. Towards understanding sharpness-aware minimization (ICML 2022):
    the diagonal-net one-step factors of c = u² − v² (derived in sharp_theory.theory.diagonal).
  Cohen et al. Gradient descent on neural networks typically occurs at the edge of stability
    (ICLR 2021): GD is stable on a quadratic iff ηλ < 2.
  Agarwala & Dauphin. SAM operates far from home (ICML 2023); Long & Bartlett. Sharpness-aware
    minimization and the edge of stability (JMLR 2024): the USAM threshold ηλ(1 + ρλ) < 2 and the
    SAM edge λ_SAM(g) < 2/η.
  Bartlett, Long, Bousquet (JMLR 2023); Wen, Ma, Li (ICLR 2023, Thm 4.8): SAM's 2-cycle radius
    ηρλ/(2 − ηλ) on a quadratic.
  Ding, Drusvyatskiy, Fazel, Harchaoui. Flat minima generalize for low-rank matrix recovery
    (arXiv 2203.03756): str = 2(‖D1 L‖² + ‖D2 R‖²) >= 4‖D1 M D2‖_* on solutions, with equality
    at the balanced factorization.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from hypothesis import strategies as hs

from sharp_theory import measure, optim, problems
from sharp_theory.dynamics import run
from sharp_theory.observables import of_params
from sharp_theory.theory import low_rank as low_rank_theory
from sharp_theory.testing.decorator import claim
from sharp_theory.testing.instances import (diagonal_nets, matrix_sensings, quadratic_objective,
                                            quadratics)
from sharp_theory.theory import diagonal as diagonal_theory
from sharp_theory.theory import stability

EPS = np.finfo(np.float64).eps
KEY = jax.random.key(0)
BATCH = 32

coordinate = hs.floats(-2.0, 2.0)
vector3 = hs.lists(coordinate, min_size=3, max_size=3)
vector2 = hs.lists(coordinate, min_size=2, max_size=2)

OP_BASE = problems.op_toy(noise=0.0, target=0.0, x0=np.ones(3), y0=np.ones(3))
OP_BATCH = {"n": jnp.zeros((1,))}
NOP_BASE = problems.nop_toy(noise=0.0, target=np.zeros((3, 2)), noise_scales=np.ones(3),
                               x0=np.ones(3), y0=np.ones(2))
NOP_BATCH = {"n": jnp.zeros((1, 3, 2))}
GD = optim.gd(0.1)
SAM = optim.sam(0.1, 0.1)
USAM = optim.usam(0.1, 0.1)


def _balancedness(params):
    """B = ½(‖x‖² − ‖y‖²)."""
    return 0.5 * (params["x"] @ params["x"] - params["y"] @ params["y"])


def _step(optimizer, problem, params, batch, hparams):
    new, _, _ = optimizer.step(params, optimizer.init(params), problem.loss, batch, hparams, KEY)
    return new


# --- Li, Zhang, He 2024 -------------------------------------------------------------------------

@jax.jit
def _op_gd_slack(x, y, lr, target):
    def one(x, y, lr, target):
        problem = OP_BASE.with_constants(target=target)
        params = {"x": x, "y": y}
        new = _step(GD, problem, params, OP_BATCH, {"lr": lr})
        fprime = 2.0 * (x @ y - target)
        expected = (1.0 - lr**2 * fprime**2) * _balancedness(params)
        scale = (x @ x + y @ y) * (1.0 + (lr * fprime) ** 2)
        return 64 * EPS * jnp.maximum(scale, 1.0) - jnp.abs(_balancedness(new) - expected)
    return jax.vmap(one)(x, y, lr, target)


@claim(vectorized=True, batch=BATCH, x=vector3, y=vector3, lr=hs.floats(1e-4, 0.2),
       target=hs.floats(-1.0, 1.0))
def gd_step_scales_balancedness_op(x, y, lr, target):
    """One GD step on f(xᵀy) multiplies B = ½(‖x‖² − ‖y‖²) by exactly 1 − η²f'² (to rounding)."""
    return np.asarray(_op_gd_slack(x, y, lr, target))


@jax.jit
def _nop_gd_slack(x, y, lr, target):
    def one(x, y, lr, target):
        problem = NOP_BASE.with_constants(target=target.reshape(3, 2))
        params = {"x": x, "y": y}
        grads = jax.grad(problem.loss)(params, NOP_BATCH)
        gx, gy = grads["x"] @ grads["x"], grads["y"] @ grads["y"]
        new = _step(GD, problem, params, NOP_BATCH, {"lr": lr})
        expected = _balancedness(params) + 0.5 * lr**2 * (gx - gy)
        scale = x @ x + y @ y + lr**2 * (gx + gy)
        return 64 * EPS * jnp.maximum(scale, 1.0) - jnp.abs(_balancedness(new) - expected)
    return jax.vmap(one)(x, y, lr, target)


@claim(vectorized=True, batch=BATCH, x=vector3, y=vector2, lr=hs.floats(1e-4, 0.2),
       target=hs.lists(coordinate, min_size=6, max_size=6))
def gd_step_moves_balancedness_nop(x, y, lr, target):
    """One GD step on f(xyᵀ) changes B by exactly (η²/2)(‖g_x‖² − ‖g_y‖²) (to rounding)."""
    return np.asarray(_nop_gd_slack(x, y, lr, target))


@jax.jit
def _op_sam_slack(x, y, lr, rho, target):
    def one(x, y, lr, rho, target):
        problem = OP_BASE.with_constants(target=target)
        params = {"x": x, "y": y}
        squared = x @ x + y @ y
        fprime = 2.0 * (x @ y - target)
        scale = rho * jnp.sign(fprime) / jnp.sqrt(jnp.maximum(squared, 1e-300))
        fprime_ascent = 2.0 * ((x + scale * y) @ (y + scale * x) - target)
        before = _balancedness(params)
        in_regime = ((jnp.abs(fprime) > 1e-3) & (jnp.abs(before) > 1e-3)
                     & (rho <= 0.5 * jnp.sqrt(squared)) & (lr * jnp.abs(fprime_ascent) <= 0.5))
        after = _balancedness(_step(SAM, problem, params, OP_BATCH, {"lr": lr, "rho": rho}))
        return jnp.abs(before) - jnp.abs(after) + 64 * EPS * jnp.maximum(squared, 1.0), in_regime
    return jax.vmap(one)(x, y, lr, rho, target)


@claim(vectorized=True, batch=BATCH, x=vector3, y=vector3, lr=hs.floats(1e-4, 0.05),
       rho=hs.floats(1e-3, 0.3), target=hs.floats(-1.0, 1.0))
def sam_step_shrinks_abs_balancedness_op(x, y, lr, rho, target):
    """One SAM step on f(xᵀy) = (xᵀy − t)² does not increase |B| (regime: f' ≠ 0, B ≠ 0,
    ρ <= ½√(‖x‖² + ‖y‖²), η|f'(ascent point)| <= ½)."""
    slack, in_regime = _op_sam_slack(x, y, lr, rho, target)
    return np.asarray(slack), np.asarray(in_regime)


@jax.jit
def _lemma1_slack(direction, other, scale, w, beta):
    def one(direction, other, scale, w, beta):
        u = direction / jnp.linalg.norm(direction)
        v = other - (other @ u) * u
        x, y = scale * u, (w / scale) * u + beta * v
        minimum = x @ y

        def loss(flat):  # f(w) = cosh(w − w*): f'(w*) = 0, f''(w*) = 1
            return jnp.cosh(flat[:3] @ flat[3:] - minimum)

        top = jnp.linalg.eigvalsh(jax.hessian(loss)(jnp.concatenate([x, y])))[-1]
        closed = x @ x + y @ y
        return 1e-12 * closed - jnp.abs(top - closed)
    return jax.vmap(one)(direction, other, scale, w, beta)


@claim(vectorized=True, batch=BATCH, direction=vector3, other=vector3, scale=hs.floats(0.2, 3.0),
       w=hs.floats(-1.5, 1.5), beta=hs.floats(-1.0, 1.0))
def lemma1_top_eigenvalue_at_minimizers(direction, other, scale, w, beta):
    """At a minimizer of f(xᵀy), λ_max(∇²) = f''(w)(‖x‖² + ‖y‖²) (Li et al. Lemma 1)."""
    in_regime = np.linalg.norm(direction, axis=1) >= 0.1
    safe = np.where(in_regime[:, None], direction, 1.0)
    return np.asarray(_lemma1_slack(safe, other, scale, w, beta)), in_regime


# --- stability on quadratics --------------------------------------------------------------------

@jax.jit
def _two_cycle_slack(product, rho, sharpness):
    def one(product, rho, sharpness):
        lr = product / sharpness
        problem = problems.Problem(objective=quadratic_objective, params0=jnp.ones(1),
                                      constants={"hessian": sharpness * jnp.ones((1, 1))})
        hparams = {"lr": lr, "rho": rho}

        def body(_, state):
            params, opt_state = state
            params, opt_state, _ = SAM.step(params, opt_state, problem.loss, None, hparams, KEY)
            return params, opt_state

        params, _ = jax.lax.fori_loop(0, 1500, body, (problem.params0, SAM.init(problem.params0)))
        radius = product * rho / (2.0 - product)
        return 1e-8 * radius - jnp.abs(jnp.abs(params[0]) - radius)
    return jax.vmap(one)(product, rho, sharpness)


@claim(vectorized=True, batch=BATCH, product=hs.floats(0.05, 1.9), rho=hs.floats(0.01, 0.5),
       sharpness=hs.floats(0.5, 5.0))
def sam_two_cycle_radius(product, rho, sharpness):
    """Full-batch SAM on ½λx² (0 < ηλ < 2) ends on the 2-cycle of radius ηρλ/(2 − ηλ)
    (relative error <= 1e-8 after 1500 steps)."""
    return np.asarray(_two_cycle_slack(product, rho, sharpness))


@claim(vectorized=True, batch=BATCH, grad_norm=hs.floats(1e-3, 1e3), lr=hs.floats(1e-3, 1.0),
       rho=hs.floats(1e-3, 1.0))
def sam_edge_below_gd_edge(grad_norm, lr, rho):
    """SAM's edge λ_SAM(g) = (g/2ρ)(√(1 + 8ρ/(ηg)) − 1) lies strictly below GD's 2/η."""
    return (2.0 / lr - stability.sam_edge(grad_norm, lr, rho)) * lr / 2.0


@claim(vectorized=True, batch=BATCH, lr=hs.floats(1e-3, 1.0), rho=hs.floats(0.0, 10.0))
def usam_limit_solves_threshold(lr, rho):
    """The USAM stability limit λ* satisfies ηλ*(1 + ρλ*) = 2 (to 1e-13 relative)."""
    limit = stability.usam_stability_limit(lr, rho)
    return 1e-13 - np.abs(lr * limit * (1.0 + rho * limit) - 2.0) / 2.0


def _norm(params):
    return jnp.linalg.norm(params)


def _final_norm(problem, optimizer, steps=100):
    trajectory = run(problem, optimizer, steps=steps, key=KEY, observe={"norm": of_params(_norm)},
                        stride=steps)
    return float(trajectory.final("norm"))


@claim(quad=quadratics(dims=(1, 2, 3, 4), eigenvalues=(0.1, 10.0)),
       fraction=hs.floats(0.01, 0.99))
def gd_nonexpansive_below_edge(quad, fraction):
    """GD with η = fraction·2/λ_max (below the edge 2/η) never moves away from the minimizer of
    a positive-definite quadratic: ‖x_100‖ <= ‖x_0‖ (Cohen et al.'s threshold)."""
    start = float(np.linalg.norm(quad.problem.params0))
    end = _final_norm(quad.problem, optim.gd(fraction * 2.0 / quad.facts["lambda_max"]))
    return (start * (1 + 1e-12) - end) / start


@claim(quad=quadratics(dims=(1, 2, 3, 4), eigenvalues=(0.1, 10.0)),
       fraction=hs.floats(0.01, 0.99), rho=hs.floats(0.0, 1.0))
def usam_nonexpansive_below_threshold(quad, fraction, rho):
    """USAM with ηλ_max(1 + ρλ_max) < 2 never moves away from the minimizer of a
    positive-definite quadratic: ‖x_100‖ <= ‖x_0‖."""
    top = quad.facts["lambda_max"]
    lr = fraction * 2.0 / (top * (1.0 + rho * top))
    start = float(np.linalg.norm(quad.problem.params0))
    return (start * (1 + 1e-12) - _final_norm(quad.problem, optim.usam(lr, rho))) / start


# --- diagonal linear networks -------------------------------------------------------------------

@jax.jit
def _one_step(problem, optimizer):
    return _step(optimizer, problem, problem.params0, problem.examples, optimizer.hparams)


def _factor_slack(net, optimizer, factor):
    """1e-11 − max_i |c+_i − factor_i c_i| / (u+_i² + v+_i²) after one step from (u_0, v_0)."""
    new = _one_step(net.problem, optimizer)
    u, v = np.asarray(new["u"]), np.asarray(new["v"])
    error = np.max(np.abs((u**2 - v**2) - factor * net.facts["c0"]) / (u**2 + v**2))
    return 1e-11 - float(error)


@claim(net=diagonal_nets(), lr=hs.floats(0.01, 0.5))
def diagonal_gd_one_step_factor(net, lr):
    """One GD step on a diagonal net multiplies c = u² − v² by exactly 1 − η²g² per coordinate."""
    X, y, p = net.facts["X"], net.facts["y"], net.problem.params0
    g = diagonal_theory.gradient_coefficient(X, y, np.asarray(p["u"] * p["v"]))
    return _factor_slack(net, optim.gd(lr), diagonal_theory.gd_factor(lr, g))


@claim(net=diagonal_nets(), lr=hs.floats(0.01, 0.5), rho=hs.floats(0.0, 1.0))
def diagonal_usam_one_step_factor(net, lr, rho):
    """One unnormalized n-SAM step multiplies c by exactly 1 − 2ηρgg' − η²g'²(1 − ρ²g²)."""
    X, y, p = net.facts["X"], net.facts["y"], net.problem.params0
    u, v = np.asarray(p["u"]), np.asarray(p["v"])
    factor = diagonal_theory.n_sam_factor(lr, rho, *diagonal_theory.n_sam_coefficients(X, y, u, v, rho))
    return _factor_slack(net, optim.usam(lr, rho), factor)


@claim(net=diagonal_nets(), lr=hs.floats(0.01, 0.5), rho=hs.floats(0.0, 1.0))
def diagonal_one_sam_one_step_factor(net, lr, rho):
    """One unnormalized 1-SAM step multiplies c by exactly 1 − 2ηρB − η²(A² − ρ²B²) (per-example
    ascents averaged)."""
    X, y, p = net.facts["X"], net.facts["y"], net.problem.params0
    u, v = np.asarray(p["u"]), np.asarray(p["v"])
    factor = diagonal_theory.one_sam_factor(lr, rho,
                                            *diagonal_theory.one_sam_coefficients(X, y, u, v, rho))
    return _factor_slack(net, optim.usam(lr, rho, m=1), factor)


# --- matrix sensing -----------------------------------------------------------------------------

@jax.jit
def _scaled_trace(problem, params):
    return measure.scaled_hessian_trace(lambda p: problem.loss(p, problem.examples), params)


def _solution_and_bound(sensing, gauge):
    """A solution (L, R) with L Rᵀ = M, L = U√Σ G, R = V√Σ G⁻ᵀ, and 4‖D1 M D2‖_*."""
    truth = sensing.facts["ground_truth"]
    k = np.asarray(sensing.problem.params0["x"]).shape[1]
    U, sigma, Vt = np.linalg.svd(truth, full_matrices=False)
    root = np.sqrt(sigma[:k])
    left, right = (U[:, :k] * root) @ gauge, (Vt.T[:, :k] * root) @ np.linalg.inv(gauge).T
    D1 = low_rank_theory.symmetric_sqrt(sensing.facts["D1_squared"])
    D2 = low_rank_theory.symmetric_sqrt(sensing.facts["D2_squared"])
    bound = 4.0 * np.linalg.norm(D1 @ truth @ D2, "nuc")
    return {"x": jnp.asarray(left), "y": jnp.asarray(right)}, bound


@claim(sensing=matrix_sensings(), gauge_seed=hs.integers(0, 2**16 - 1),
       spread=hs.floats(0.0, 1.5))
def scaled_trace_at_least_weighted_nuclear_norm(sensing, gauge_seed, spread):
    """At every solution L Rᵀ = M of matrix sensing, the scaled Hessian trace is at least
    4‖D1 M D2‖_* (Ding et al.; identity sensing: 4c‖M‖_*)."""
    k = np.asarray(sensing.problem.params0["x"]).shape[1]
    rng = np.random.default_rng(gauge_seed)
    rotation, _ = np.linalg.qr(rng.standard_normal((k, k)))
    gauge = rotation @ np.diag(np.exp(spread * rng.uniform(-1.0, 1.0, k)))
    params, bound = _solution_and_bound(sensing, gauge)
    measured = float(_scaled_trace(sensing.problem, params))
    return (measured - bound) / bound + 1e-10


@claim(sensing=matrix_sensings())
def balanced_solution_attains_bound(sensing):
    """The balanced solution L = U√Σ, R = V√Σ has scaled trace exactly 4‖D1 M D2‖_* for identity
    sensing (the flattest solution; relative error <= 1e-10)."""
    k = np.asarray(sensing.problem.params0["x"]).shape[1]
    params, bound = _solution_and_bound(sensing, np.eye(k))
    measured = float(_scaled_trace(sensing.problem, params))
    return 1e-10 - abs(measured - bound) / bound


__all__ = ["gd_step_scales_balancedness_op", "gd_step_moves_balancedness_nop",
           "sam_step_shrinks_abs_balancedness_op", "lemma1_top_eigenvalue_at_minimizers",
           "sam_two_cycle_radius", "sam_edge_below_gd_edge", "usam_limit_solves_threshold",
           "gd_nonexpansive_below_edge", "usam_nonexpansive_below_threshold",
           "diagonal_gd_one_step_factor", "diagonal_usam_one_step_factor",
           "diagonal_one_sam_one_step_factor", "scaled_trace_at_least_weighted_nuclear_norm",
           "balanced_solution_attains_bound"]
