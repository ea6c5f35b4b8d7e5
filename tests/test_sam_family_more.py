"""The rest of the SAM family (GSAM, Friendly SAM, Momentum-SAM, S2-SAM, SAMPa, Lookahead-SAM,
CR-SAM, R-SAM, Delta-SAM, μP², Frob-SAM, Det-SAM, late-phase SAM): one step against its closed
form on a quadratic, ρ = 0 against the base rule, and the invariant each promises (hypothesis)."""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as hs

import sharp_theory as st
from sharp_theory.errors import ConfigError

O = st.optim
A = np.array([[2.0, 0.3, 0.0], [0.3, 1.0, 0.1], [0.0, 0.1, 0.5]])
W0 = np.array([1.0, -0.5, 0.3])
KEY = jax.random.key(0)


def quadratic(w, batch):
    return 0.5 * w @ jnp.asarray(A) @ w


def cubic(w, batch):
    return 0.5 * w @ jnp.asarray(A) @ w + 0.1 * jnp.sum(w ** 3) + 0.05 * w[0] * w[1] * w[2]


def one_step(optimizer, loss=quadratic, w=W0, key=KEY, state=None):
    w = jnp.asarray(w)
    state = optimizer.init(w) if state is None else state
    step = jax.jit(lambda w, state, hparams: optimizer.step(w, state, loss, None, hparams, key))
    return step(w, state, optimizer.hparams)


def unit(v):
    return v / np.linalg.norm(v)


# --- one step against the closed form on ½ wᵀAw ---------------------------------------------------

def test_gsam_one_step_closed_form():
    lr, rho, alpha = 0.1, 0.05, 0.4
    g = A @ W0
    gp = A @ (W0 + rho * unit(g))
    g_perp = g - (g @ gp) / (gp @ gp) * gp
    w1, _, info = one_step(O.gsam(lr, rho, alpha=alpha))
    np.testing.assert_allclose(w1, W0 - lr * (gp - alpha * g_perp), rtol=1e-13, atol=1e-15)
    assert float(info["grad_evals"]) == 2.0


def test_friendly_sam_one_step_closed_form():
    lr, rho, sigma, decay = 0.1, 0.05, 1.0, 0.9
    g = A @ W0
    d = g - sigma * (1 - decay) * g  # m_0 = 0, so m_1 = (1 − λ) g
    w1, state, _ = one_step(O.friendly_sam(lr, rho, full_gradient_weight=sigma, decay=decay))
    np.testing.assert_allclose(w1, W0 - lr * A @ (W0 + rho * unit(d)), rtol=1e-13)
    np.testing.assert_allclose(state["mean_grad"], (1 - decay) * g, rtol=1e-14)


def test_momentum_sam_two_steps_closed_form():
    lr, rho, beta = 0.1, 0.05, 0.9
    opt = O.momentum_sam(lr, rho, beta=beta)
    w1, state, info = one_step(opt)
    g0 = A @ W0  # v = 0: the first step is plain
    np.testing.assert_allclose(w1, W0 - lr * g0, rtol=1e-14)
    w2, _, _ = one_step(opt, w=w1, state=state)
    g1 = A @ (np.asarray(w1) - rho * unit(g0))  # v_1 = g0
    np.testing.assert_allclose(w2, np.asarray(w1) - lr * g1, rtol=1e-13)
    assert float(info["grad_evals"]) == 1.0


def test_s2_sam_two_steps_closed_form():
    lr, rho = 0.1, 0.05
    opt = O.s2_sam(lr, rho)
    w1, state, _ = one_step(opt)
    g0 = A @ W0
    w2, _, info = one_step(opt, w=w1, state=state)
    np.testing.assert_allclose(w2, np.asarray(w1) - lr * A @ (np.asarray(w1) + rho * unit(g0)), rtol=1e-13)
    assert float(info["grad_evals"]) == 1.0


def test_sampa_two_steps_closed_form():
    lr, rho, lam = 0.1, 0.05, 0.2
    opt = O.sampa(lr, rho, auxiliary_weight=lam)
    w1, state, _ = one_step(opt)
    g0 = A @ W0  # a_0 = 0: gradient at w_0 itself, y_1 = w_0, a_1 = g0
    np.testing.assert_allclose(w1, W0 - lr * g0, rtol=1e-14)
    w2, _, info = one_step(opt, w=w1, state=state)
    w1 = np.asarray(w1)
    y2 = w1 - lr * g0
    expected = w1 - lr * ((1 - lam) * A @ (w1 + rho * unit(g0)) + lam * A @ y2)
    np.testing.assert_allclose(w2, expected, rtol=1e-13)
    assert float(info["grad_evals"]) == 2.0 and float(info["sequential_grad_evals"]) == 1.0


def sam_direction(w, rho):
    return A @ (w + rho * unit(A @ w))


def test_lookahead_sam_one_step_closed_form():
    lr, rho = 0.1, 0.05
    ahead = W0 - lr * sam_direction(W0, rho)
    w1, _, info = one_step(O.lookahead_sam(lr, rho))
    np.testing.assert_allclose(w1, W0 - lr * sam_direction(ahead, rho), rtol=1e-13)
    assert float(info["grad_evals"]) == 4.0
    opt = O.lookahead_sam(lr, rho, optimistic=True)
    w1, state, _ = one_step(opt)  # no previous SAM gradient: look-ahead point is w itself
    np.testing.assert_allclose(w1, W0 - lr * sam_direction(W0, rho), rtol=1e-13)
    w2, _, _ = one_step(opt, w=w1, state=state)
    ahead = np.asarray(w1) - lr * sam_direction(W0, rho)
    np.testing.assert_allclose(w2, np.asarray(w1) - lr * sam_direction(ahead, rho), rtol=1e-13)


def test_cr_sam_one_step_closed_form_on_a_quadratic_has_no_trace_gradient():
    # ∇ tr H = 0 for a quadratic: CR-SAM is SAM up to the finite difference's rounding.
    lr, rho = 0.1, 0.05
    w1, _, info = one_step(O.cr_sam(lr, rho, beta=0.5, h=0.1))
    np.testing.assert_allclose(w1, W0 - lr * sam_direction(W0, rho), rtol=1e-12, atol=1e-13)
    assert float(info["grad_evals"]) == 4.0


def test_r_sam_one_step_closed_form():
    lr, rho, sigma = 0.1, 0.05, 0.3
    w1, _, _ = one_step(O.r_sam(lr, rho, smoothing_std=sigma))
    noise = sigma * np.asarray(jax.random.normal(KEY, (3,), jnp.float64))
    g_smoothed = A @ (W0 + noise)
    np.testing.assert_allclose(w1, W0 - lr * A @ (W0 + rho * unit(g_smoothed)), rtol=1e-13)


def test_delta_sam_one_step_closed_form_on_per_example_quadratics():
    x = np.array([[1.0, 0.0, 2.0], [0.5, -1.0, 0.0], [0.0, 1.0, 1.0]])
    y = np.array([1.0, 0.0, -1.0])
    batch = {"x": jnp.asarray(x), "y": jnp.asarray(y)}
    loss = lambda w, b: 0.5 * jnp.mean(jnp.square(b["x"] @ w - b["y"]))
    lr, rho, tau = 0.1, 0.5, 0.3
    opt = O.delta_sam(lr, rho, temperature=tau)
    w1, _, _ = opt.step(jnp.asarray(W0), opt.init(jnp.asarray(W0)), loss, batch, opt.hparams, KEY)
    per_example = (x @ W0 - y)[:, None] * x
    weights = np.exp(rho * np.linalg.norm(per_example, axis=1) / tau)
    weights /= weights.sum()
    eps = rho * unit(weights @ per_example)
    w_eps = W0 + eps
    expected = W0 - lr * x.T @ (x @ w_eps - y) / 3
    np.testing.assert_allclose(w1, expected, rtol=1e-13)


def test_mup2_one_step_closed_form():
    params = {"w1": jnp.asarray(np.arange(6.0).reshape(2, 3) / 10 - 0.2), "w2": jnp.asarray([0.5, -0.4, 0.3])}
    loss = lambda p, b: jnp.sum(jnp.tanh(jnp.array([1.0, -1.0]) @ p["w1"]) * p["w2"]) ** 2
    lr, rho = 0.1, 0.05
    opt = O.mup2_sam(lr, rho)
    new, _, _ = opt.step(params, opt.init(params), loss, None, opt.hparams, KEY)
    grads = jax.grad(loss)(params, None)
    eps = {"w1": rho * np.sqrt(3 / 2) * grads["w1"] / jnp.linalg.norm(grads["w1"]),
           "w2": rho * grads["w2"] / jnp.linalg.norm(grads["w2"])}
    g_eps = jax.grad(loss)(jax.tree_util.tree_map(jnp.add, params, eps), None)
    for name in params:
        np.testing.assert_allclose(new[name], params[name] - lr * g_eps[name], rtol=1e-13)


def test_frob_and_det_sam_one_step_closed_form():
    # For the cubic, H(w) = A + 0.6 diag(w) + 0.05 (off-diagonal pattern): the penalties' gradients
    # come from the exact measures in st.measure, computed independently by autodiff.
    lr, lam = 0.1, 0.3
    w1, _, info = one_step(O.det_sam(lr, lam, shift=0.5), loss=cubic)
    exact = jax.jit(lambda w: st.measure.universal_sharpness_gradient(
        lambda u: cubic(u, None), w, "determinant", shift=0.5))(jnp.asarray(W0))
    g = jax.grad(cubic)(jnp.asarray(W0), None)
    np.testing.assert_allclose(w1, W0 - lr * (g + lam * exact), rtol=1e-12)
    # Frob-SAM's probe: v = N(0, I) from the step key; its step uses ∇‖H v‖² exactly.
    w1, _, info = one_step(O.frob_sam(lr, lam), loss=cubic)
    v = jax.random.normal(KEY, (3,), jnp.float64)
    hv_sq = lambda w: jnp.sum(jnp.square(jax.hessian(lambda u: cubic(u, None))(w) @ v))
    np.testing.assert_allclose(w1, W0 - lr * (g + lam * jax.grad(hv_sq)(jnp.asarray(W0))), rtol=1e-12)
    assert float(info["grad_evals"]) == 1.0 and float(info["hvp_evals"]) == 2.0


# --- ρ = 0 (and a zero correction weight) is the base rule bit for bit -----------------------------

ZERO_RADIUS = [
    O.gsam(0.1, 0.0, alpha=0.7), O.friendly_sam(0.1, 0.0), O.momentum_sam(0.1, 0.0),
    O.s2_sam(0.1, 0.0), O.sampa(0.1, 0.0), O.cr_sam(0.1, 0.0, beta=0.0), O.r_sam(0.1, 0.0, smoothing_std=0.3),
    O.delta_sam(0.1, 0.0), O.mup2_sam(0.1, 0.0), O.frob_sam(0.1, 0.0), O.det_sam(0.1, 0.0),
]


@pytest.mark.parametrize("base", [None, O.momentum(0.9)], ids=["plain", "momentum"])
@pytest.mark.parametrize("index", range(len(ZERO_RADIUS)), ids=[o.name for o in ZERO_RADIUS])
def test_zero_radius_is_the_base_rule_bit_for_bit(index, base):
    template = ZERO_RADIUS[index]
    optimizer = O.Optimizer(type(template.rule)(**{**template.rule.__dict__, "base": O.as_base(base)}),
                            template.hparams)
    reference = O.gd(0.1, base=base)

    def run(opt):
        w, state = jnp.asarray(W0), opt.init(jnp.asarray(W0))
        for i in range(2):
            w, state, _ = opt.step(w, state, cubic, None, opt.hparams, jax.random.fold_in(KEY, i))
        return w

    assert np.array_equal(run(optimizer), run(reference)), optimizer.name


def test_zero_sigma_r_sam_and_friendly_sam_are_sam_bit_for_bit():
    def run(opt):
        w, state = jnp.asarray(W0), opt.init(jnp.asarray(W0))
        for i in range(3):
            w, state, _ = opt.step(w, state, cubic, None, opt.hparams, jax.random.fold_in(KEY, i))
        return w
    sam = run(O.sam(0.1, 0.05))
    assert np.array_equal(run(O.r_sam(0.1, 0.05, smoothing_std=0.0)), sam)
    assert np.array_equal(run(O.friendly_sam(0.1, 0.05, full_gradient_weight=0.0)), sam)
    assert np.array_equal(run(O.gsam(0.1, 0.05, alpha=0.0)), sam)


# --- the invariants each paper promises (hypothesis, bounded) --------------------------------------

vectors = hs.lists(hs.floats(-2.0, 2.0), min_size=3, max_size=3).map(np.asarray)


@jax.jit
def _gsam_first_order(w, rho):
    g = jax.grad(cubic)(w, None)
    eps = st.optim.ascent_direction(g, rho)
    gp = jax.grad(cubic)(w + eps, None)
    g_perp = O.orthogonal_correction(g, gp)
    directional = jax.jvp(lambda t: cubic(w + eps + t * g_perp, None), (0.0,), (1.0,))[1]
    return directional, jnp.linalg.norm(gp) * jnp.linalg.norm(g), jnp.linalg.norm(g)


@settings(max_examples=25, deadline=None)
@given(w=vectors, rho=hs.floats(0.01, 0.5))
def test_gsam_correction_leaves_the_perturbed_loss_unchanged_to_first_order(w, rho):
    """Zhuang et al.: g_⊥ ⟂ ∇L(w + ε), so moving along g_⊥ (ε held) changes L(· + ε) by O(t²)."""
    directional, scale, grad_norm = _gsam_first_order(jnp.asarray(w), jnp.asarray(rho))
    if float(grad_norm) < 1e-3:
        return
    assert abs(float(directional)) <= 1e-13 * max(float(scale), 1.0)


shapes = hs.lists(hs.tuples(hs.sampled_from([1, 2, 4, 8]), hs.sampled_from([1, 2, 4, 8])),
                  min_size=1, max_size=3)


@settings(max_examples=12, deadline=None)
@given(layer_shapes=shapes, rho=hs.floats(0.01, 1.0), seed=hs.integers(0, 2 ** 16))
def test_mup2_perturbation_of_each_layer_has_norm_rho_sqrt_fan_out_over_fan_in(layer_shapes, rho, seed):
    """Haas et al.: each layer is perturbed on its own scale ρ √(fan_out/fan_in), width by width."""
    rng = np.random.default_rng(seed)
    grads = [rng.standard_normal(shape) for shape in layer_shapes]
    eps = O.layerwise_perturbation(grads, rho, O.spectral_scales(grads))
    for e, (fan_in, fan_out) in zip(eps, layer_shapes):
        np.testing.assert_allclose(float(jnp.linalg.norm(e)), rho * np.sqrt(fan_out / fan_in), rtol=1e-13)


@settings(max_examples=10, deadline=None)
@given(w=vectors, y=vectors)
def test_sampa_parallel_gradients_equal_the_serial_ones(w, y):
    """Xie et al.: the two gradients depend only on known points; batched equals serial."""
    points = jax.tree_util.tree_map(lambda *xs: jnp.stack(xs), jnp.asarray(w), jnp.asarray(y))
    both = O.parallel_gradients(cubic, points, None)
    for index, point in enumerate((w, y)):
        np.testing.assert_allclose(both[index], jax.grad(cubic)(jnp.asarray(point), None),
                                   rtol=1e-14, atol=1e-15)


@jax.jit
def _trace_gradient_pair(w, v, h):
    estimate = O.trace_gradient_estimate(cubic, w, None, jax.grad(cubic)(w, None), v, h)
    exact = jax.grad(lambda u: v @ jax.hessian(lambda z: cubic(z, None))(u) @ v)(w)
    return estimate, exact


@settings(max_examples=10, deadline=None)
@given(w=vectors, seed=hs.integers(0, 2 ** 16), h=hs.sampled_from([1e-1, 1e-2]))
def test_cr_sam_finite_difference_is_the_trace_gradient_for_a_cubic(w, seed, h):
    """Wu et al.'s finite-difference estimate is exact when ∇L is quadratic (L cubic)."""
    v = jax.random.rademacher(jax.random.key(seed), (3,), jnp.float64)
    estimate, exact = _trace_gradient_pair(jnp.asarray(w), v, jnp.asarray(h))
    np.testing.assert_allclose(estimate, exact, rtol=1e-6, atol=1e-6 / h)


@jax.jit
def _basis_sums(w):
    out = []
    for measure in ("frobenius", "trace"):
        total = jax.vmap(lambda e: O.measure_gradient_estimate(cubic, w, None, measure, e, 0.0))(jnp.eye(3))
        exact = st.measure.universal_sharpness_gradient(lambda u: cubic(u, None), w, measure)
        out.append((jnp.sum(total, axis=0), exact))
    return out


@settings(max_examples=8, deadline=None)
@given(w=vectors)
def test_frobenius_estimator_summed_over_a_basis_is_the_exact_gradient(w):
    """E_v ∇‖Hv‖² = ∇‖H‖_F² for E vvᵀ = I: summing over the unit vectors gives it exactly."""
    for total, exact in _basis_sums(jnp.asarray(w)):
        np.testing.assert_allclose(total, exact, rtol=1e-12, atol=1e-13)


@jax.jit
def _delta_and_sam(w, batch, delta_hparams, sam_hparams):
    loss = lambda w, b: 0.5 * jnp.mean(jnp.square(b["x"] @ w - b["y"]))
    delta, sam = O.delta_sam(0.1, 0.2), O.sam(0.1, 0.2)
    return (delta.step(w, delta.init(w), loss, batch, delta_hparams, KEY)[0],
            sam.step(w, sam.init(w), loss, batch, sam_hparams, KEY)[0])


@settings(max_examples=6, deadline=None)
@given(tau=hs.sampled_from([1e13, 1e15]), seed=hs.integers(0, 100))
def test_delta_sam_at_high_temperature_is_sam(tau, seed):
    """Uniform weights (τ → ∞): Delta-SAM's perturbation is SAM's."""
    x = jax.random.normal(jax.random.key(seed), (4, 3), jnp.float64)
    batch = {"x": x, "y": jnp.arange(4.0)}
    w = jnp.asarray(W0)
    delta, sam = O.delta_sam(0.1, 0.2, temperature=tau), O.sam(0.1, 0.2)
    a, b = _delta_and_sam(w, batch, delta.hparams, sam.hparams)
    np.testing.assert_allclose(a, b, rtol=1e-12)


# --- late-phase SAM composes with every rule ------------------------------------------------------

def every_rule():
    return [O.gd(0.1), O.sam(0.1, 0.05), O.usam(0.1, 0.05), O.asam(0.1, 0.5), O.looksam(0.1, 0.05),
            O.ssam(0.1, 0.05), O.rst(0.1, 0.05), O.ae_sam(0.1, 0.05), O.lpf_sgd(0.1, 0.01),
            O.rwp(0.1, 0.01), O.flat_lora(0.1, 0.01), O.preconditioned_sam(0.1, 0.05),
            O.nbar(0.1, 0.5), O.obar(0.1, 0.5), O.gsam(0.1, 0.05), O.friendly_sam(0.1, 0.05),
            O.momentum_sam(0.1, 0.05), O.s2_sam(0.1, 0.05), O.sampa(0.1, 0.05),
            O.lookahead_sam(0.1, 0.05), O.cr_sam(0.1, 0.05), O.r_sam(0.1, 0.05),
            O.delta_sam(0.1, 0.05), O.mup2_sam(0.1, 0.05), O.frob_sam(0.1, 0.01),
            O.det_sam(0.1, 0.01), O.sam(0.1, 0.05, base=O.adam())]


def factor_loss(params, batch):
    return 0.5 * jnp.sum(jnp.square(params["x"] @ params["y"].T - jnp.eye(2)))


FACTORS = {"x": jnp.asarray([[1.0, 0.2], [0.1, 0.8]]), "y": jnp.asarray([[0.5, 0.3], [-0.2, 1.1]])}


@pytest.mark.parametrize("optimizer", every_rule(), ids=lambda o: o.name)
def test_late_phase_wraps_every_rule_with_matching_branches(optimizer):
    """Both branches of the switch give the same state and info structure, for every rule (traced,
    not compiled: ``jax.eval_shape``)."""
    late = O.late_phase(optimizer, 2)
    state = late.init(FACTORS)
    out = jax.eval_shape(lambda p, s, h: late.step(p, s, factor_loss, None, h, KEY), FACTORS, state,
                         late.hparams)
    assert jax.tree_util.tree_structure(out[1]) == jax.tree_util.tree_structure(state)


@pytest.mark.parametrize("optimizer", [O.sam(0.1, 0.05), O.looksam(0.1, 0.05, every=2),
                                       O.momentum_sam(0.1, 0.05), O.sampa(0.1, 0.05),
                                       O.rst(0.1, 0.05),
                                       O.sam(0.1, 0.05, base=O.adam())], ids=lambda o: o.name)
def test_late_phase_switch_at_zero_is_the_rule_and_never_is_its_base(optimizer):
    w = jnp.asarray(W0)
    runs = {"rule": optimizer, "late0": O.late_phase(optimizer, 0),
            "base": O.gd(0.1, base=optimizer.rule.base), "never": O.late_phase(optimizer, 1e9),
            "late1": O.late_phase(optimizer, 1)}

    @jax.jit
    def all_runs(hparams):  # one compiled program per rule: every schedule, two steps each
        out = {}
        for name, opt in runs.items():
            p, state = w, opt.init(w)
            for i in range(2):
                p, state, info = opt.step(p, state, cubic, None, hparams[name], jax.random.fold_in(KEY, i))
            out[name] = (p, info["grad_evals"], state["count"])
        return out

    out = all_runs({name: opt.hparams for name, opt in runs.items()})
    np.testing.assert_allclose(out["late0"][0], out["rule"][0], rtol=1e-14, atol=1e-16)
    np.testing.assert_allclose(out["never"][0], out["base"][0], rtol=1e-14, atol=1e-16)
    assert float(out["never"][1]) == 1.0
    # One base step, then the rule: its cost is the rule's, the counter ran through the switch.
    assert float(out["late1"][1]) == float(out["rule"][1]) and int(out["late1"][2]) == 2
    assert np.all(np.isfinite(out["late1"][0]))


def test_late_phase_refuses_what_it_cannot_wrap():
    with pytest.raises(ConfigError, match="optimizer"):
        O.late_phase(O.swa(O.sgd(0.1)), 5).init(jnp.asarray(W0))
    with pytest.raises(ConfigError, match="switch_step"):
        O.late_phase(O.sam(0.1, 0.05), -1)
    with pytest.raises(ConfigError, match="optimizer"):
        O.late_phase("sam", 5)


# --- bad hyperparameters: one line naming the parameter --------------------------------------------

@pytest.mark.parametrize("make, name, value", [
    (lambda v: O.gsam(0.1, 0.05, alpha=v), "alpha", -0.1),
    (lambda v: O.friendly_sam(0.1, 0.05, full_gradient_weight=v), "full_gradient_weight", -1.0),
    (lambda v: O.friendly_sam(0.1, 0.05, decay=v), "decay", 1.0),
    (lambda v: O.momentum_sam(0.1, v), "rho", -0.05),
    (lambda v: O.momentum_sam(0.1, 0.05, beta=v), "beta", 1.5),
    (lambda v: O.s2_sam(v, 0.05), "lr", 0.0),
    (lambda v: O.sampa(0.1, 0.05, auxiliary_weight=v), "auxiliary_weight", 1.5),
    (lambda v: O.lookahead_sam(0.1, 0.05, optimistic=v), "optimistic", "yes"),
    (lambda v: O.cr_sam(0.1, 0.05, h=v), "h", 0.0),
    (lambda v: O.cr_sam(0.1, 0.05, beta=v), "beta", np.nan),
    (lambda v: O.r_sam(0.1, 0.05, smoothing_std=v), "smoothing_std", -0.01),
    (lambda v: O.delta_sam(0.1, 0.05, temperature=v), "temperature", 0.0),
    (lambda v: O.mup2_sam(0.1, 0.05, scales=v), "scales", (1.0, -2.0)),
    (lambda v: O.frob_sam(0.1, v), "penalty", -1.0),
    (lambda v: O.det_sam(0.1, 0.1, shift=v), "shift", 0.0),
    (lambda v: O.late_phase(O.sam(0.1, 0.05), v), "switch_step", -3),
])
def test_new_rules_refuse_bad_hyperparameters_in_one_line(make, name, value):
    with pytest.raises(ConfigError) as caught:
        make(value)
    message = str(caught.value)
    assert name in message and "\n" not in message, message


# --- late-phase SAM's escape from the SGD minimum: the linearization the lab's claim uses ----------

def test_linearized_usam_map_is_exact_on_per_example_quadratics():
    # Per-example losses ½(x_kᵀw − y_k)² vanish at w*; their gradients are linear in δ = w − w*, so
    # one unnormalized SAM step on the batch is exactly δ ← (I − η(H_ξ + ρH_ξ²)) δ.
    from sharp_theory.studies.sam_family_more import linearized_sam_maps

    xs = np.array([[1.0, 0.5, -0.2], [0.3, -1.0, 0.8]])
    w_star = np.array([0.2, -0.1, 0.4])
    ys = xs @ w_star
    loss = lambda w, batch: 0.5 * jnp.mean(jnp.square(jnp.asarray(xs) @ w - jnp.asarray(ys)))
    delta = np.array([0.3, -0.2, 0.1])
    hessian = xs.T @ xs / len(xs)
    for rho in (0.0, 0.7):
        w1, _, _ = one_step(O.usam(0.1, rho), loss=loss, w=w_star + delta)
        expected = linearized_sam_maps(hessian[None], 0.1, rho)[0] @ delta
        np.testing.assert_allclose(np.asarray(w1) - w_star, expected, rtol=0, atol=1e-15)


@settings(max_examples=15, deadline=None)
@given(hs.integers(0, 10_000), hs.sampled_from([2, 3]), hs.sampled_from([1, 3]))
def test_mean_square_growth_and_lyapunov_exponent_against_closed_forms(seed, rank, count):
    # One map A: E A M Aᵀ = A M Aᵀ has spectral radius ρ(A)². Diagonal maps: the diagonal of M
    # evolves alone, so the growth is max_i mean_k a_ki², and log‖δ‖ grows at max_i mean_k log|a_ki|
    # (the law of large numbers, coordinate by coordinate), never faster than ½ log of the first.
    from sharp_theory.studies.sam_family_more import lyapunov_exponent, mean_square_growth

    rng = np.random.default_rng(seed)
    single = rng.standard_normal((1, rank, rank))
    radius = np.max(np.abs(np.linalg.eigvals(single[0])))
    assert mean_square_growth(single) == pytest.approx(radius ** 2, rel=1e-9)
    entries = rng.uniform(0.3, 1.8, (count, rank)) * rng.choice([-1.0, 1.0], (count, rank))
    diagonal = np.stack([np.diag(row) for row in entries])
    growth = np.max(np.mean(entries ** 2, axis=0))
    assert mean_square_growth(diagonal) == pytest.approx(growth, rel=1e-9)
    estimate = lyapunov_exponent(diagonal, steps=1500, chains=8, seed=seed)
    exact = np.max(np.mean(np.log(np.abs(entries)), axis=0))
    assert abs(estimate["rate"] - exact) <= 5 * estimate["standard_error"] + 2e-2
    assert estimate["rate"] <= 0.5 * np.log(growth) + 5 * estimate["standard_error"] + 1e-9
