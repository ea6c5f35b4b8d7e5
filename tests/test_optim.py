"""The optimizer contract: exact updates against hand formulas, rho = 0 reductions, safe norms."""
import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from hypothesis import given, settings, strategies as st_h

import sharp_theory as st
from sharp_theory.errors import ConfigError

KEY = jax.random.key(0)
MATRIX = jnp.array([[3.0, 0.5, 0.0], [0.5, 2.0, 0.3], [0.0, 0.3, 1.0]])


def quadratic_loss(w, batch):
    return 0.5 * w @ MATRIX @ w


def quadratic_problem():
    return st.problems.from_loss(quadratic_loss, jnp.array([1.0, -2.0, 0.5]))


def regression_problem(n=8, d=3, seed=0):
    rng = np.random.default_rng(seed)
    data = {"X": rng.standard_normal((n, d)), "y": rng.standard_normal(n)}
    return st.problems.from_loss(regression_loss, jnp.zeros(d), data=data)


def regression_loss(w, batch):
    return 0.5 * jnp.mean((batch["X"] @ w - batch["y"]) ** 2)


def leaves_equal(a, b):
    return all(np.array_equal(x, y) for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)))


def one_step(optimizer, problem, params=None, batch=None):
    params = problem.params0 if params is None else params
    state = optimizer.init(params)
    return optimizer.step(params, state, problem.loss, batch, optimizer.hparams, KEY)


PROBLEMS = [lambda: st.problems.nop_toy(noise=0.5), lambda: st.problems.op_toy(noise=1.0),
            regression_problem]


@pytest.mark.parametrize("problem_factory", PROBLEMS)
def test_sam_with_zero_rho_is_gd_bit_for_bit(problem_factory):
    problem = problem_factory()
    base_rule = st.run(problem, st.optim.gd(lr=1e-2), steps=300, key=KEY, stride=50)
    for zero in (st.optim.sam(lr=1e-2, rho=0.0), st.optim.usam(lr=1e-2, rho=0.0),
                 st.optim.sam(lr=1e-2, rho=0.0, p=math.inf), st.optim.sam(lr=1e-2, rho=0.0, p=3.0)):
        sam_run = st.run(problem, zero, steps=300, key=KEY, stride=50)
        assert leaves_equal(base_rule.params, sam_run.params), zero.name
        np.testing.assert_array_equal(base_rule.observed["loss"], sam_run.observed["loss"])


def assert_steps_agree_up_to_fma_rounding(problem, first, second, trials=10):
    """One step of each rule from the same (params, state, batch) agrees to a few roundings.

    The two rules compile to different XLA programs, and XLA's CPU backend contracts
    multiply-adds into FMAs depending on how it fused each program, so one step can differ in
    the last bit (a trajectory then drifts by a few ulps over hundreds of steps). We require
    |Δ| <= 4 eps (|w| + |w+|) per step: a few roundings of the terms the update adds.
    """
    step_first = jax.jit(lambda p, s, b: first.step(p, s, problem.loss, b, first.hparams, KEY))
    step_second = jax.jit(lambda p, s, b: second.step(p, s, problem.loss, b, second.hparams, KEY))
    rng = np.random.default_rng(1)
    for trial in range(trials):
        params = jax.tree.map(lambda x: jnp.asarray(rng.standard_normal(x.shape)), problem.params0)
        state = first.init(params)
        for warmup in range(3):  # a realistic optimizer state: a few real steps
            params, state, _ = step_first(params, state, problem.batch(jax.random.key(trial), warmup + 1))
        batch = problem.batch(jax.random.key(trial), 0)
        new_first, _, _ = step_first(params, state, batch)
        new_second, _, _ = step_second(params, state, batch)
        for w, a, b in zip(jax.tree.leaves(params), jax.tree.leaves(new_first),
                           jax.tree.leaves(new_second)):
            bound = 4 * np.finfo(np.float64).eps * (np.abs(w) + np.abs(a))
            assert np.all(np.abs(a - b) <= bound), (np.abs(a - b), bound)


@pytest.mark.parametrize("problem_factory", PROBLEMS)
@pytest.mark.parametrize("base", [st.optim.momentum(0.9), st.optim.adam()])
def test_sam_with_zero_rho_is_stateful_base_rule_up_to_fma_rounding(problem_factory, base):
    assert_steps_agree_up_to_fma_rounding(problem_factory(), st.optim.gd(lr=1e-2, base=base),
                                          st.optim.sam(lr=1e-2, rho=0.0, base=base))


def test_sam_step_matches_hand_formula_on_quadratic():
    problem = quadratic_problem()
    w = problem.params0
    lr, rho = 0.1, 0.05
    gradient = MATRIX @ w
    expected = w - lr * MATRIX @ (w + rho * gradient / jnp.linalg.norm(gradient))
    new, _, info = one_step(st.optim.sam(lr=lr, rho=rho), problem)
    np.testing.assert_allclose(new, expected, rtol=1e-14, atol=1e-15)
    assert float(info["grad_evals"]) == 2.0
    expected_usam = w - lr * MATRIX @ (w + rho * gradient)
    new, _, _ = one_step(st.optim.usam(lr=lr, rho=rho), problem)
    np.testing.assert_allclose(new, expected_usam, rtol=1e-14, atol=1e-15)


def test_sam_step_at_zero_gradient_is_finite_and_stays():
    # x = y = 0 is a saddle of f(xᵀy): the gradient is exactly zero there.
    problem = st.problems.scalar_product(lambda w: (w - 0.5) ** 2, jnp.zeros(3), jnp.zeros(3))
    for optimizer in (st.optim.sam(lr=0.1, rho=0.1), st.optim.sam(lr=0.1, rho=0.1, p=3.0),
                      st.optim.sam(lr=0.1, rho=0.1, p=math.inf)):
        new, _, info = one_step(optimizer, problem)
        assert all(np.all(np.isfinite(leaf)) for leaf in jax.tree.leaves(new))
        assert leaves_equal(new, problem.params0)
        assert float(info["grad_norm"]) == 0.0


@given(gradient=st_h.lists(st_h.floats(-10, 10, allow_subnormal=False), min_size=4, max_size=4),
       p=st_h.sampled_from([1.5, 2.0, 3.0, 4.0, math.inf]), rho=st_h.floats(1e-3, 2.0))
@settings(max_examples=60)
def test_ascent_direction_attains_the_dual_norm(gradient, p, rho):
    """ε maximizes gᵀε over the p-ball: ‖ε‖_p = ρ and gᵀε = ρ‖g‖_q (Hölder with equality)."""
    g = np.asarray(gradient)
    if np.linalg.norm(g) < 1e-6:
        return
    eps = np.asarray(st.optim.ascent_direction(jnp.asarray(g), rho, p=p))
    q = 1.0 if p == math.inf else p / (p - 1.0)
    np.testing.assert_allclose(np.linalg.norm(eps, ord=p), rho, rtol=1e-10)
    np.testing.assert_allclose(g @ eps, rho * np.linalg.norm(g, ord=q), rtol=1e-10)


def test_m_sam_matches_a_loop_over_chunks():
    problem = regression_problem(n=8)
    w = jnp.array([0.3, -0.2, 0.1])
    lr, rho, m = 0.1, 0.2, 2
    batch = problem.examples
    perturbed_grads = []
    for start in range(0, 8, m):
        chunk = jax.tree.map(lambda x: x[start:start + m], batch)
        g = jax.grad(regression_loss)(w, chunk)
        perturbed_grads.append(jax.grad(regression_loss)(w + rho * g / jnp.linalg.norm(g), chunk))
    expected = w - lr * jnp.mean(jnp.stack(perturbed_grads), axis=0)
    new, _, _ = one_step(st.optim.sam(lr=lr, rho=rho, m=m), problem, params=w, batch=batch)
    np.testing.assert_allclose(new, expected, rtol=1e-13)
    whole, _, _ = one_step(st.optim.sam(lr=lr, rho=rho, m=8), problem, params=w, batch=batch)
    full, _, _ = one_step(st.optim.sam(lr=lr, rho=rho), problem, params=w, batch=batch)
    np.testing.assert_allclose(whole, full, rtol=1e-13)


def test_m_sam_rejects_batch_not_divisible_by_m():
    problem = regression_problem(n=8)
    with pytest.raises(ConfigError, match="m=3"):
        one_step(st.optim.sam(lr=0.1, rho=0.1, m=3), problem, batch=problem.examples)


def _bar_expected(pair, grad, rate, variant):
    if variant == "nbar":
        grow_x = np.linalg.norm(grad["x"]) >= np.linalg.norm(grad["y"])
    else:
        grow_x = np.linalg.norm(pair["x"]) < np.linalg.norm(pair["y"])
    sx, sy = (1 + rate, 1 - rate) if grow_x else (1 - rate, 1 + rate)
    return pair["x"] * sx, pair["y"] * sy


@pytest.mark.parametrize("variant", ["nbar", "obar"])
def test_bar_step_matches_algorithm(variant):
    problem = st.problems.nop_toy()
    params = problem.params0
    batch = {"n": jnp.zeros((1, 3, 3))}
    lr, alpha = 0.05, 0.7
    grads = jax.grad(problem.loss)(params, batch)
    x_scaled, y_scaled = _bar_expected(params, grads, alpha * lr, variant)
    optimizer = getattr(st.optim, variant)(lr=lr, alpha=alpha)
    new, _, info = one_step(optimizer, problem, batch=batch)
    np.testing.assert_allclose(new["x"], x_scaled - lr * grads["x"], rtol=1e-14)
    np.testing.assert_allclose(new["y"], y_scaled - lr * grads["y"], rtol=1e-14)
    assert float(info["grad_evals"]) == 1.0


@pytest.mark.parametrize("variant", [st.optim.nbar, st.optim.obar])
def test_bar_with_zero_alpha_is_gd(variant):
    problem = st.problems.lora(layers=3, noise=0.5)
    assert_steps_agree_up_to_fma_rounding(problem, st.optim.gd(lr=1e-2), variant(lr=1e-2, alpha=0.0))


def test_alpha_schedules():
    assert float(st.optim.alpha_schedule(2.0, 50, "constant", None)) == 2.0
    np.testing.assert_allclose(st.optim.alpha_schedule(2.0, 25, "linear", 100), 1.5)
    np.testing.assert_allclose(st.optim.alpha_schedule(2.0, 50, "cosine", 100), 1.0)
    np.testing.assert_allclose(st.optim.alpha_schedule(2.0, 200, "linear", 100), 0.0)
    np.testing.assert_allclose(st.optim.alpha_schedule(2.0, 100, "cosine", 100), 0.0, atol=1e-15)


def test_adam_base_matches_optax_adam():
    problem = quadratic_problem()
    lr = 0.01
    ours = st.run(problem, st.optim.gd(lr=lr, base=st.optim.adam()), steps=50, key=KEY).params
    tx = optax.adam(lr)
    w, state = problem.params0, tx.init(problem.params0)
    with jax.numpy_dtype_promotion("standard"):  # optax's bias correction mixes float and int32
        for _ in range(50):
            updates, state = tx.update(jax.grad(quadratic_loss)(w, None), state, w)
            w = optax.apply_updates(w, updates)
    np.testing.assert_allclose(ours, w, rtol=1e-13)


def test_heavy_ball_base_matches_hand_recursion():
    problem = quadratic_problem()
    lr, beta = 0.05, 0.9
    ours = st.run(problem, st.optim.gd(lr=lr, base=st.optim.momentum(beta)), steps=30, key=KEY).params
    w, velocity = problem.params0, jnp.zeros(3)
    for _ in range(30):
        velocity = MATRIX @ w + beta * velocity
        w = w - lr * velocity
    np.testing.assert_allclose(ours, w, rtol=1e-13)


@pytest.mark.parametrize("make, parameter", [
    (lambda: st.optim.sam(lr=0.1, rho=-0.1), "rho=-0.1"),
    (lambda: st.optim.gd(lr=0.0), "lr=0.0"),
    (lambda: st.optim.sgd(lr=-1.0), "lr=-1.0"),
    (lambda: st.optim.sam(lr=0.1, rho=0.1, p=1), "p=1"),
    (lambda: st.optim.sam(lr=0.1, rho=0.1, m=0), "m=0"),
    (lambda: st.optim.sgd(lr=0.1, batch_size=0), "batch_size=0"),
    (lambda: st.optim.nbar(lr=0.1, alpha=-1.0), "alpha=-1.0"),
    (lambda: st.optim.obar(lr=0.1, alpha=1.0, schedule="linear"), "horizon=None"),
    (lambda: st.optim.obar(lr=0.1, alpha=1.0, schedule="exp"), "schedule='exp'"),
    (lambda: st.optim.sam(lr=float("nan"), rho=0.1), "lr=nan"),
    (lambda: st.optim.sam(lr=0.1, rho=0.1).with_hparams(rho=-2.0), "rho=-2.0"),
    (lambda: st.optim.sam(lr=0.1, rho=0.1).with_hparams(alpha=1.0), "hparam='alpha'"),
])
def test_bad_hyperparameters_name_parameter_value_and_range(make, parameter):
    with pytest.raises(ConfigError) as error:
        make()
    assert parameter in str(error.value)
    assert "expected" in str(error.value)


def test_bar_rejects_params_without_factor_pairs():
    with pytest.raises(ConfigError, match="params"):
        st.optim.nbar(lr=0.1, alpha=0.1).init(jnp.zeros(3))


def test_optimizer_names():
    assert st.optim.sam(lr=1, rho=1).name == "sam"
    assert st.optim.sam(lr=1, rho=1, m=1).name == "1-sam"
    assert st.optim.usam(lr=1, rho=1).name == "usam"
    assert st.optim.sam(lr=1, rho=1, p=math.inf).name == "sam-linf"
    assert st.optim.sgd(lr=1).name == "sgd"


def float32_loss(w, batch):
    return jnp.sum(w ** 2) + 0.1 * jnp.sum(w ** 4)


@pytest.mark.parametrize("optimizer", [
    st.optim.gd(lr=0.1), st.optim.sam(lr=0.1, rho=0.1), st.optim.usam(lr=0.1, rho=0.1),
    st.optim.sam(lr=0.1, rho=0.1, p=3.0), st.optim.sam(lr=0.1, rho=0.1, p=math.inf),
    st.optim.gd(lr=0.1, base=st.optim.adam()),
], ids=lambda o: o.name)
def test_float32_problems_stay_float32(optimizer):
    # Hyperparameters are float64 arrays; they must not promote float32 parameters.
    problem = st.problems.from_loss(float32_loss, jnp.ones(3, jnp.float32), dtype="float32")
    traj = st.run(problem, optimizer, steps=5, key=KEY)
    assert traj.params.dtype == jnp.float32 and traj.status == "ok"
