"""The SAM family (sharp_theory/optim/{efficient,geometry,averaging,learned}.py): reductions, identities, costs, bad input.

Reductions are bit-for-bit (``np.array_equal``) over a short trajectory; identities that hold in
exact arithmetic but not in floating point (Functional-SAM = GD for a linear model, ...) use
float64 tolerances at the level of rounding.
"""
from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as hst
from jax.flatten_util import ravel_pytree

import sharp_theory as st
from sharp_theory.problems.base import optimizer_key
from sharp_theory.optim.averaging import merged_perturbation_gradient, smoothed_gradient
from sharp_theory.optim.geometry import adaptive_ascent_direction

STEPS = 8


# --- problems ------------------------------------------------------------------------------------

def _regression_outputs(params, batch):
    # Diagonal linear network: predictions X (u ⊙ v).
    return batch["x"] @ (params["u"] * params["v"])


def _regression_loss(params, batch):
    return jnp.mean(jnp.square(_regression_outputs(params, batch) - batch["y"]))


@dataclasses.dataclass(frozen=True)
class RegressionModel(st.optim.OutputModel):
    def outputs(self, params, batch):
        return _regression_outputs(params, batch)

    def loss(self, outputs, batch):
        return jnp.mean(jnp.square(outputs - batch["y"]))


def _regression_problem():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(12, 6))
    truth = np.array([1.0, -0.5, 0, 0, 0, 0])
    params0 = {"u": jnp.full(6, 0.5), "v": jnp.asarray(rng.normal(size=6) * 0.5)}
    return st.problems.from_loss(_regression_loss, params0, {"x": x, "y": x @ truth},
                                 name="regression")


REGRESSION = _regression_problem()


def _final(problem, optimizer, steps=STEPS, seed=0):
    traj = st.run(problem, optimizer, steps=steps, key=jax.random.key(seed))
    assert traj.status == "ok"
    return np.asarray(ravel_pytree(traj.params)[0]), float(traj.grad_evals)


def _bitwise_equal(problem, first, second, steps=STEPS):
    a, _ = _final(problem, first, steps)
    b, _ = _final(problem, second, steps)
    assert np.array_equal(a, b), np.max(np.abs(a - b))
    return a


# --- reductions to SAM ---------------------------------------------------------------------------

SAM_REDUCTIONS = {
    "looksam every=1": lambda b: st.optim.looksam(0.05, 0.1, every=1, base=b),
    "ssam fisher full mask": lambda b: st.optim.ssam(0.05, 0.1, mask="fisher", sparsity=0.0,
                                                     base=b),
    "ssam random full mask": lambda b: st.optim.ssam(0.05, 0.1, mask="random", sparsity=0.0,
                                                     base=b),
    "rst p=1": lambda b: st.optim.rst(0.05, 0.1, switch_prob=1.0, base=b),
    "ae-sam threshold 0": lambda b: st.optim.ae_sam(0.05, 0.1, threshold_scale=0.0, base=b),
    "lets beta=0": lambda b: st.optim.lets(0.05, 0.1, beta=0.0, base=b),
}


def _eager_final(problem, optimizer, steps=5, key=jax.random.key(0)):
    """The trajectory op by op (no XLA fusion), with run()'s batches and keys."""
    with jax.disable_jit():
        params, state = problem.params0, optimizer.init(problem.params0)
        for step in range(steps):
            params, state, _ = optimizer.step(params, state, problem.loss,
                                              problem.batch(key, step), optimizer.hparams,
                                              optimizer_key(key, step))
    return np.asarray(ravel_pytree(params)[0])


_EAGER_SAM = {}


@pytest.mark.parametrize("name, base", [(name, "momentum") for name in sorted(SAM_REDUCTIONS)]
                         + [("looksam every=1", "plain"), ("rst p=1", "plain")])
def test_reduces_to_sam_bit_for_bit(name, base):
    """Same floating-point operations as SAM, step by step.

    Compared eagerly: under jit, XLA may contract a multiply-add differently around a
    ``lax.cond`` than in SAM's straight-line program (1-ulp differences with a momentum base),
    which says nothing about the algorithm; compiled runs agree to 1e-15 (checked too).
    """
    variant = SAM_REDUCTIONS[name](base)
    if base not in _EAGER_SAM:
        _EAGER_SAM[base] = _eager_final(REGRESSION, st.optim.sam(0.05, 0.1, base=base))
    final = _eager_final(REGRESSION, variant)
    assert np.array_equal(final, _EAGER_SAM[base])
    # The run moved: the comparison is not between two copies of the start.
    assert not np.allclose(final, np.asarray(ravel_pytree(REGRESSION.params0)[0]))
    compiled, _ = _final(REGRESSION, variant, steps=5)
    np.testing.assert_allclose(compiled, final, rtol=0, atol=1e-15)


def test_sparse_mask_changes_the_trajectory():
    """The reduction test can fail: a 50% mask does not give SAM."""
    a, _ = _final(REGRESSION, st.optim.ssam(0.05, 0.1, sparsity=0.5))
    b, _ = _final(REGRESSION, st.optim.sam(0.05, 0.1))
    assert np.max(np.abs(a - b)) > 1e-6


# --- radius zero gives the base rule -------------------------------------------------------------

BASE_REDUCTIONS = {
    "asam": (lambda: st.optim.asam(0.05, 0.0), lambda: st.optim.gd(0.05)),
    "looksam": (lambda: st.optim.looksam(0.05, 0.0, every=3), lambda: st.optim.gd(0.05)),
    "ssam fisher": (lambda: st.optim.ssam(0.05, 0.0, sparsity=0.5), lambda: st.optim.gd(0.05)),
    "ssam random": (lambda: st.optim.ssam(0.05, 0.0, mask="random"), lambda: st.optim.gd(0.05)),
    "lpf-sgd": (lambda: st.optim.lpf_sgd(0.05, 0.0, draws=3), lambda: st.optim.gd(0.05)),
    "rwp": (lambda: st.optim.rwp(0.05, 0.0, mix=0.5, draws=2), lambda: st.optim.gd(0.05)),
    "rst": (lambda: st.optim.rst(0.05, 0.0, switch_prob=0.5), lambda: st.optim.gd(0.05)),
    "ae-sam": (lambda: st.optim.ae_sam(0.05, 0.0), lambda: st.optim.gd(0.05)),
    "lets": (lambda: st.optim.lets(0.05, 0.0, beta=0.0), lambda: st.optim.gd(0.05)),
    "precond-sam": (lambda: st.optim.preconditioned_sam(0.01, 0.0),
                    lambda: st.optim.gd(0.01, base=st.optim.adam())),
    "functional-sam": (lambda: st.optim.functional_sam(0.05, 0.0, model=RegressionModel()),
                       lambda: st.optim.gd(0.05)),
    "functional-sam precond": (
        lambda: st.optim.functional_sam(0.01, 0.0, model=RegressionModel(), precondition=True,
                                        base=st.optim.adam()),
        lambda: st.optim.gd(0.01, base=st.optim.adam())),
    "saf": (lambda: st.optim.saf(0.05, 0.0, model=RegressionModel()), lambda: st.optim.gd(0.05)),
    "wasam": (lambda: st.optim.wasam(0.05, 0.0, start=3),
              lambda: st.optim.swa(st.optim.gd(0.05), start=3)),
    "swa before start": (lambda: st.optim.swa(st.optim.sam(0.05, 0.1), start=STEPS + 1),
                         lambda: st.optim.sam(0.05, 0.1)),
}


@pytest.mark.parametrize("name", sorted(BASE_REDUCTIONS))
def test_zero_radius_equals_base_rule(name):
    variant, base = BASE_REDUCTIONS[name]
    _bitwise_equal(REGRESSION, variant(), base())


def test_flat_lora_zero_noise_equals_gd_on_lora():
    problem = st.problems.lora(layers=1, rank=2, noise=0.5, batch_size=2)
    _bitwise_equal(problem, st.optim.flat_lora(0.02, 0.0), st.optim.gd(0.02), steps=4)


# --- identities ----------------------------------------------------------------------------------

def test_looksam_costs_two_gradients_every_k_steps():
    _, evals = _final(REGRESSION, st.optim.looksam(0.05, 0.1, every=3), steps=7)
    assert evals == 2 * 3 + 1 * 4  # SAM steps at t = 0, 3, 6


def test_ssam_fisher_counts_its_mask_pass():
    _, evals = _final(REGRESSION, st.optim.ssam(0.05, 0.1, update_every=4), steps=8)
    assert evals == 2 * 8 + 2  # mask passes at t = 0 and 4


def test_ssam_fisher_mask_keeps_the_largest_fisher_coordinates():
    optimizer = st.optim.ssam(0.05, 0.1, sparsity=0.5)
    params = REGRESSION.params0
    step = jax.jit(lambda p, s, h, k: optimizer.step(p, s, REGRESSION.loss, REGRESSION.examples,
                                                     h, k))
    _, state, _ = step(params, optimizer.init(params), optimizer.hparams, jax.random.key(0))
    per_example = jax.vmap(lambda e: jax.grad(REGRESSION.loss)(
        params, jax.tree_util.tree_map(lambda x: x[None], e)))(REGRESSION.examples)
    fisher = np.asarray(ravel_pytree(jax.tree_util.tree_map(
        lambda g: jnp.mean(g ** 2, axis=0), per_example))[0])
    mask = np.asarray(ravel_pytree(state["mask"])[0])
    assert mask.sum() == 6
    assert np.min(fisher[mask == 1]) >= np.max(fisher[mask == 0])


def test_rst_and_ae_sam_costs_match_their_sam_steps():
    for optimizer in (st.optim.rst(0.05, 0.1, switch_prob=0.5), st.optim.ae_sam(0.05, 0.1)):
        _, evals = _final(REGRESSION, optimizer, steps=40)
        assert 40 < evals < 80, (optimizer.name, evals)


def _factor_loss(params, batch):
    return jnp.square(jnp.dot(params["x"], params["y"]) - 0.5)


_smoothed_jit = jax.jit(
    lambda p, k, s, draws: smoothed_gradient(_factor_loss, p, None, k, s, draws), static_argnums=3)


def test_rwp_averaged_gradient_converges_to_smoothed_gradient():
    """``(xᵀy - t)²`` smoothed by N(0, σ²I): gradient ``2(xᵀy - t) y + 2σ² x`` (and x ↔ y)."""
    params = {"x": jnp.array([0.3, -0.2, 0.5]), "y": jnp.array([0.4, 0.1, -0.6])}
    sigma = 0.3
    residual = float(jnp.dot(params["x"], params["y"])) - 0.5
    exact = np.concatenate([2 * residual * params["x"] * 0 + 2 * residual * np.asarray(params["y"])
                            + 2 * sigma ** 2 * np.asarray(params["x"]),
                            2 * residual * np.asarray(params["x"])
                            + 2 * sigma ** 2 * np.asarray(params["y"])])
    single = jax.jit(jax.vmap(lambda k: ravel_pytree(smoothed_gradient(
        _factor_loss, params, None, k, sigma, 1))[0]))(jax.random.split(jax.random.key(1), 2000))
    spread = float(np.sum(np.var(np.asarray(single), axis=0)))  # tr Cov of one draw
    errors = []
    for draws in (10, 1000, 20_000):
        estimate = np.asarray(ravel_pytree(_smoothed_jit(params, jax.random.key(draws), sigma,
                                                         draws))[0])
        error = np.linalg.norm(estimate - exact)
        assert error < 5 * np.sqrt(spread / draws), (draws, error)
        errors.append(error)
    assert errors[-1] < 0.05 * errors[0]
    # Far from σ = 0 the smoothed gradient differs from the plain one by 2σ²w, which is resolved.
    plain = np.concatenate([2 * residual * np.asarray(params["y"]),
                            2 * residual * np.asarray(params["x"])])
    assert np.linalg.norm(plain - exact) > 10 * errors[-1]


def test_rwp_step_uses_the_smoothed_gradient_of_its_key():
    problem = st.problems.from_loss(_factor_loss, {"x": jnp.array([0.3, -0.2, 0.5]),
                                                   "y": jnp.array([0.4, 0.1, -0.6])})
    optimizer = st.optim.lpf_sgd(0.1, 0.3, draws=5, scale="absolute")
    key = jax.random.key(7)
    params, _, info = optimizer.step(problem.params0, optimizer.init(problem.params0),
                                     problem.loss, None, optimizer.hparams, key)
    expected = jax.tree_util.tree_map(lambda w, g: w - 0.1 * g, problem.params0,
                                      smoothed_gradient(problem.loss, problem.params0, None, key,
                                                        0.3, 5))
    np.testing.assert_array_equal(ravel_pytree(params)[0], ravel_pytree(expected)[0])
    assert float(info["grad_evals"]) == 5.0


@settings(max_examples=25, deadline=None)
@given(x=hst.lists(hst.floats(0.2, 2.0), min_size=3, max_size=3),
       y=hst.lists(hst.floats(-2.0, -0.2), min_size=3, max_size=3),
       scale=hst.lists(hst.floats(0.25, 4.0), min_size=3, max_size=3),
       rho=hst.floats(0.01, 0.5))
def test_asam_ascent_is_rescaling_equivariant(x, y, scale, rho):
    """Kwon et al. 2021: with η = 0, the ASAM ascent at (Ax, A⁻¹y) is A ε, same perturbed loss."""
    params = {"x": jnp.asarray(x), "y": jnp.asarray(y)}
    c = jnp.asarray(scale)
    rescaled = {"x": c * params["x"], "y": params["y"] / c}
    loss = lambda p: _factor_loss(p, None)
    eps = adaptive_ascent_direction(params, jax.grad(loss)(params), rho, 0.0)
    eps_rescaled = adaptive_ascent_direction(rescaled, jax.grad(loss)(rescaled), rho, 0.0)
    np.testing.assert_allclose(eps_rescaled["x"], c * eps["x"], rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(eps_rescaled["y"], eps["y"] / c, rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(loss(jax.tree_util.tree_map(jnp.add, rescaled, eps_rescaled)),
                               loss(jax.tree_util.tree_map(jnp.add, params, eps)), rtol=1e-10)


def test_sam_and_asam_with_offset_are_not_rescaling_invariant():
    """The property above is specific: SAM's ascent and ASAM's with η > 0 break it."""
    params = {"x": jnp.array([0.3, 0.5, 1.0]), "y": jnp.array([-0.4, -1.0, -0.7])}
    c = jnp.array([3.0, 0.5, 2.0])
    rescaled = {"x": c * params["x"], "y": params["y"] / c}
    loss = lambda p: _factor_loss(p, None)

    def perturbed_loss(p, direction):
        eps = direction(p, jax.grad(loss)(p))
        return float(loss(jax.tree_util.tree_map(jnp.add, p, eps)))

    sam_dir = lambda p, g: st.optim.ascent_direction(g, 0.3)
    asam_eta = lambda p, g: adaptive_ascent_direction(p, g, 0.3, 0.5)
    for direction in (sam_dir, asam_eta):
        assert abs(perturbed_loss(rescaled, direction) - perturbed_loss(params, direction)) > 1e-3


def test_functional_sam_equals_gd_for_a_linear_model():
    """F(w) = Xw has a constant Jacobian: the functional path vanishes."""
    problem = st.problems.from_loss(_linear_loss, {"u": jnp.ones(6) * 0.3, "v": jnp.zeros(6)},
                                    REGRESSION.examples)
    a, _ = _final(problem, st.optim.functional_sam(0.05, 0.2, model=LinearModel()))
    b, _ = _final(problem, st.optim.gd(0.05))
    c, _ = _final(problem, st.optim.sam(0.05, 0.2))
    np.testing.assert_allclose(a, b, rtol=1e-13, atol=1e-15)
    assert np.max(np.abs(a - c)) > 1e-4  # SAM itself differs (its logit path is alive)


def test_functional_sam_equals_sam_for_a_loss_linear_in_the_outputs():
    """ℓ(o) = mean(o): ∇_F ℓ is constant, so the logit path vanishes and SAM = Functional-SAM."""
    problem = st.problems.from_loss(_mean_output_loss, REGRESSION.params0, REGRESSION.examples)
    a, _ = _final(problem, st.optim.functional_sam(0.05, 0.2, model=MeanOutputModel()))
    b, _ = _final(problem, st.optim.sam(0.05, 0.2))
    np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14)
    c, _ = _final(REGRESSION, st.optim.functional_sam(0.05, 0.2, model=RegressionModel()))
    d, _ = _final(REGRESSION, st.optim.sam(0.05, 0.2))
    assert np.max(np.abs(c - d)) > 1e-6  # with a curved loss the two differ


def _linear_loss(params, batch):
    return jnp.mean(jnp.square(batch["x"] @ (params["u"] + params["v"]) - batch["y"]))


@dataclasses.dataclass(frozen=True)
class LinearModel(st.optim.OutputModel):
    def outputs(self, params, batch):
        return batch["x"] @ (params["u"] + params["v"])

    def loss(self, outputs, batch):
        return jnp.mean(jnp.square(outputs - batch["y"]))


def _mean_output_loss(params, batch):
    return jnp.mean(_regression_outputs(params, batch))


@dataclasses.dataclass(frozen=True)
class MeanOutputModel(st.optim.OutputModel):
    def outputs(self, params, batch):
        return _regression_outputs(params, batch)

    def loss(self, outputs, batch):
        return jnp.mean(outputs)


def test_output_model_check():
    st.optim.check_output_model(RegressionModel(), REGRESSION)
    with pytest.raises(st.ConfigError):
        st.optim.check_output_model(MeanOutputModel(), REGRESSION)


def test_flat_lora_gradient_is_the_gradient_at_the_perturbed_merged_weight():
    problem = st.problems.lora(layers=2, rank=2, noise=0.3, batch_size=3)
    params = problem.init(jax.random.key(0))
    batch = problem.batch(jax.random.key(1), 0, 3)
    noises = [0.1 * jax.random.normal(jax.random.key(i), (3, 3)) for i in range(2)]
    ours = merged_perturbation_gradient(problem.loss, params, batch, noises)
    # Same loss with the perturbation moved into the frozen base weight W0 (0 by default).
    shifted = problem.with_constants(base_weight=jnp.stack(noises))
    reference = jax.grad(shifted.loss)(params, batch)
    np.testing.assert_allclose(ravel_pytree(ours)[0], ravel_pytree(reference)[0], rtol=1e-12,
                               atol=1e-14)


def test_preconditioned_sam_first_step_is_sam_with_adam():
    """Before Adam has seen a gradient, P = eps·1 and the perturbation is SAM's."""
    a, _ = _final(REGRESSION, st.optim.preconditioned_sam(0.01, 0.1), steps=1)
    b, _ = _final(REGRESSION, st.optim.sam(0.01, 0.1, base=st.optim.adam()), steps=1)
    np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-15)
    c, _ = _final(REGRESSION, st.optim.preconditioned_sam(0.01, 0.1), steps=6)
    d, _ = _final(REGRESSION, st.optim.sam(0.01, 0.1, base=st.optim.adam()), steps=6)
    assert np.max(np.abs(c - d)) > 1e-8  # afterwards the preconditioner matters


def _flat(params):
    return ravel_pytree(params)[0]


def test_swa_average_is_the_mean_of_the_iterates():
    inner = st.optim.gd(0.05)
    iterates = st.run(REGRESSION, inner, steps=6, key=jax.random.key(0), observe={"w": st.observables.of_params(_flat)})
    expected = np.mean(np.asarray(iterates.observed["w"])[2:], axis=0)  # after steps 2..6
    averaged = st.run(REGRESSION, st.optim.swa(inner, start=2), steps=6, key=jax.random.key(0))
    np.testing.assert_allclose(_flat(averaged.params), expected, rtol=1e-13)
    # The live iterate is still the plain trajectory, readable from the state.
    rule = st.optim.swa(inner, start=2).rule
    params, state = REGRESSION.params0, rule.init(REGRESSION.params0)
    for step in range(6):
        params, state, _ = rule.step(params, state, REGRESSION.loss, REGRESSION.examples,
                                     inner.hparams, jax.random.key(step))
    np.testing.assert_allclose(_flat(st.optim.live_iterate(state)), iterates.observed["w"][-1],
                               rtol=1e-14)
    np.testing.assert_array_equal(_flat(st.optim.averaged_weights(state)), _flat(params))


def test_swa_every_k_takes_every_kth_iterate():
    inner = st.optim.gd(0.05)
    iterates = st.run(REGRESSION, inner, steps=9, key=jax.random.key(0), observe={"w": st.observables.of_params(_flat)})
    expected = np.mean(np.asarray(iterates.observed["w"])[[3, 6, 9]], axis=0)
    averaged = st.run(REGRESSION, st.optim.swa(inner, start=3, every=3), steps=9,
                      key=jax.random.key(0))
    np.testing.assert_allclose(_flat(averaged.params), expected, rtol=1e-13)


def test_lets_moves_its_radius_and_keeps_it_nonnegative():
    optimizer = st.optim.lets(0.05, 0.05, beta=5.0)
    params, state = REGRESSION.params0, optimizer.init(REGRESSION.params0)
    radii = []
    for step in range(6):
        params, state, info = optimizer.step(params, state, REGRESSION.loss, REGRESSION.examples,
                                             optimizer.hparams, jax.random.key(step))
        radii.append(float(state["rho"]))
    assert min(radii) >= 0 and len(set(radii)) > 1
    assert float(info["hvp_evals"]) == 0.5


def test_runs_and_sweeps_add_up_hessian_vector_products():
    # LETS reports 0.5 Hessian-vector products per step; SAM none.
    lets = st.run(REGRESSION, st.optim.lets(0.05, 0.05, beta=5.0), steps=8, key=jax.random.key(0))
    assert float(lets.hvp_evals) == 4.0 and float(lets.grad_evals) > 0
    sam = st.run(REGRESSION, st.optim.sam(0.05, 0.05), steps=8, key=jax.random.key(0))
    assert float(sam.hvp_evals) == 0.0 and float(sam.grad_evals) == 16.0
    swept = st.sweep(REGRESSION, {"lets": st.optim.lets(0.05, 0.05, beta=5.0)}, steps=8, seeds=2,
                     grid={"rho": [0.01, 0.05]})
    np.testing.assert_array_equal(swept["lets"].hvp_evals, np.full((2, 2), 4.0))


@pytest.mark.parametrize("make", [
    lambda: st.optim.ssam(0.1, 0.1, sparsity=1.0),
    lambda: st.optim.ssam(0.1, 0.1, mask="magnitude"),
    lambda: st.optim.rst(0.1, 0.1, switch_prob=1.5),
    lambda: st.optim.rst(0.1, 0.1, switch_prob_end=1.0),
    lambda: st.optim.preconditioned_sam(0.1, 0.1, base="momentum"),
    lambda: st.optim.functional_sam(0.1, 0.1, model=lambda p, b: p),
    lambda: st.optim.looksam(0.1, 0.1, every=0),
    lambda: st.optim.random_perturbation(0.1, 0.1, mix=2.0),
    lambda: st.optim.asam(0.1, -0.1),
    lambda: st.optim.swa("sgd"),
])
def test_bad_configuration_is_a_config_error(make):
    with pytest.raises(st.ConfigError):
        make()


def test_flat_lora_rejects_vector_factors():
    with pytest.raises(st.ConfigError):
        st.run(st.problems.op_toy(), st.optim.flat_lora(0.1, 0.1), steps=1, key=jax.random.key(0))


def test_a_per_optimizer_grid_axis_sets_only_that_optimizers_hyperparameter():
    """``"asam.rho"`` gives ASAM its own radius grid next to SAM's shared "rho" axis (a vmapped
    lane equals its run to rounding: XLA may fuse the batched program differently)."""
    optimizers = {"sam": st.optim.sam(0.05, 0.1), "asam": st.optim.asam(0.05, 0.1)}
    result = st.sweep(REGRESSION, optimizers, steps=STEPS, seeds=1, shard=False,
                      grid={"rho": [0.1, 0.2], "asam.rho": [0.5, 2.0]})
    assert result.axes == ("rho", "asam.rho", "seed")
    for index, rho in enumerate([0.5, 2.0]):
        alone, _ = _final(REGRESSION, st.optim.asam(0.05, rho))
        swept = ravel_pytree(jax.tree_util.tree_map(lambda x: x[0, index, 0],
                                                    result["asam"].params))[0]
        np.testing.assert_allclose(np.asarray(swept), alone, rtol=1e-12, atol=1e-14)
    sam_alone, _ = _final(REGRESSION, st.optim.sam(0.05, 0.2))
    sam_swept = ravel_pytree(jax.tree_util.tree_map(lambda x: x[1, 0, 0], result["sam"].params))[0]
    np.testing.assert_allclose(np.asarray(sam_swept), sam_alone, rtol=1e-12, atol=1e-14)
    with pytest.raises(st.ConfigError, match="asam.sigma"):
        st.sweep(REGRESSION, {"asam": st.optim.asam(0.05, 0.1)}, steps=2, grid={"asam.sigma": [0.5]})
    with pytest.raises(st.ConfigError, match=r"grid\['asam.rho'\]=\[-1.0\]"):
        st.sweep(REGRESSION, {"asam": st.optim.asam(0.05, 0.1)}, steps=2, grid={"asam.rho": [-1.0]})
