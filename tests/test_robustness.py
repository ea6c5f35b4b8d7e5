"""The robust-features problem, the adversarial-training rule and the robustness measures: AT at
ε = 0 is GD bit for bit, its one-step inner maximum is the exact worst case on linear scores (and
PGD reaches it too), the PGD robust accuracy equals the exact per-example count on a linear model,
and bad input is refused in one line."""
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st_h

import sharp_theory as st
from sharp_theory.errors import ConfigError
from sharp_theory.theory import robustness as rb

KEY = jax.random.key(0)


@pytest.fixture(scope="module")
def linear():
    return st.problems.robust_features(model="linear", n=64, n_nonrobust=5, n_test=4000)


def test_the_problem_holds_its_population_and_draws_from_it(linear):
    mean = np.asarray(linear.constants["mean"])
    assert mean.tolist() == [1.0] + [0.2] * 5
    np.testing.assert_array_equal(np.asarray(linear.constants["covariance"]), np.eye(6))
    x, y = np.asarray(linear.constants["x_test"]), np.asarray(linear.constants["y_test"])
    assert set(np.unique(y)) == {-1.0, 1.0}
    # y·x ~ N(μ, I): the sample mean of 4,000 draws is within 4 standard errors of μ.
    assert np.all(np.abs((y[:, None] * x).mean(axis=0) - mean) < 4 / math.sqrt(len(y)))
    assert linear.examples["x"].shape == (64, 6)


def test_models_and_losses_score_as_documented():
    x = jnp.array([[1.0, -2.0, 0.5]])
    for model, params, score in (
            ("linear", jnp.array([1.0, 2.0, 3.0]), 1.0 - 4.0 + 1.5),
            ("diagonal", {"u": jnp.array([1.0, 2.0, 3.0]), "v": jnp.array([2.0, 1.0, 0.0])},
             2.0 - 4.0),
            ("relu", {"W": jnp.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]), "a": jnp.array([2.0, 5.0])},
             2.0)):
        problem = st.problems.robust_features(model=model, n=4, n_nonrobust=2, width=2)
        assert float(problem.objective.score(params, x)[0]) == pytest.approx(score, abs=1e-15)
        batch = {"x": x, "y": jnp.array([-1.0])}
        assert float(problem.loss(params, batch)) == pytest.approx(math.log1p(math.exp(score)),
                                                                   rel=1e-14)
    squared = st.problems.robust_features(loss="squared", n=4, n_nonrobust=2)
    assert float(squared.loss(jnp.array([1.0, 2.0, 3.0]), {"x": x, "y": jnp.array([1.0])})) == \
        pytest.approx(0.5 * (1 - (-1.5)) ** 2)


PROPERTY_PROBLEMS = {loss: st.problems.robust_features(loss=loss, n=16, n_nonrobust=3)
                    for loss in ("logistic", "squared")}


@jax.jit
def _attack(w, eps):
    """The attack on both losses, both norms, one step and ten: one program for every draw."""
    out = {}
    for loss, problem in PROPERTY_PROBLEMS.items():
        batch = problem.examples
        for norm in (2.0, math.inf):
            for steps, step_size in ((1, 1.0), (10, 0.25)):
                out[loss, norm, steps] = st.optim.pgd_perturbation(
                    lambda xx, problem=problem, batch=batch: problem.loss(w, {**batch, "x": xx}),
                    batch["x"], eps, norm=norm, steps=steps, step_size=step_size)
    return out


@settings(max_examples=15)
@given(st_h.integers(0, 1000), st_h.floats(0.0, 0.5))
def test_one_step_inner_maximum_is_the_exact_worst_case_on_a_linear_score(seed, eps):
    rng = np.random.default_rng(seed)
    w = rng.standard_normal(4) * 2
    attacks = _attack(jnp.asarray(w), eps)
    for (loss, norm, steps), delta in attacks.items():
        batch = PROPERTY_PROBLEMS[loss].examples
        margins = np.asarray(batch["y"]) * (np.asarray(batch["x"]) @ w)
        # The exact maximizer lowers each margin by ε‖w‖_q (logistic: always; squared: where the
        # margin is < 1, and raises it where the margin is > 1).
        lower = np.stack([rb.worst_linear_perturbation(w, int(y), eps, norm)
                          for y in np.asarray(batch["y"])])
        expected = np.where((margins < 1)[:, None] | (loss == "logistic"), lower, -lower)
        np.testing.assert_allclose(np.asarray(delta), expected, atol=1e-12,
                                   err_msg=f"{loss}, norm {norm}, {steps} steps")


def test_adversarial_training_at_zero_radius_is_gd_bit_for_bit(linear):
    gd = st.run(linear, st.optim.gd(0.5), steps=20, key=KEY)
    at = st.run(linear, st.optim.adversarial_training(0.5, 0.0), steps=20, key=KEY)
    np.testing.assert_array_equal(np.asarray(at.params), np.asarray(gd.params))


def test_adversarial_training_step_descends_the_loss_at_the_exact_worst_inputs(linear):
    w = jnp.asarray(np.random.default_rng(1).standard_normal(6))
    optimizer = st.optim.adversarial_training(0.3, 0.2)
    w_next, _, info = optimizer.step(w, optimizer.init(w), linear.loss, linear.examples,
                                     optimizer.hparams, KEY)
    batch = linear.examples
    worst = batch["x"] - 0.2 * batch["y"][:, None] * jnp.sign(w)[None, :]
    expected = w - 0.3 * jax.grad(linear.loss)(w, {**batch, "x": worst})
    np.testing.assert_allclose(np.asarray(w_next), np.asarray(expected), rtol=1e-13, atol=1e-15)
    assert float(info["adversarial_loss"]) > float(info["loss"])
    assert float(info["grad_evals"]) == 2.0


def test_an_epsilon_grid_is_one_compiled_call_and_bad_values_are_refused(linear):
    result = st.sweep(linear, st.optim.adversarial_training(0.5, 0.1), steps=5,
                      grid={"epsilon": [0.0, 0.1, 0.2]})
    assert result.shape == (3, 1)
    with pytest.raises(ConfigError, match="epsilon"):
        st.sweep(linear, st.optim.adversarial_training(0.5, 0.1), steps=5,
                 grid={"epsilon": [0.1, -0.1]})


@pytest.mark.parametrize("make, parameter", [
    (lambda: st.optim.adversarial_training(0.1, -0.1), "epsilon"),
    (lambda: st.optim.adversarial_training(0.0, 0.1), "lr"),
    (lambda: st.optim.adversarial_training(0.1, 0.1, step_size=0.0), "step_size"),
    (lambda: st.optim.adversarial_training(0.1, 0.1, norm=1), "norm"),
    (lambda: st.optim.adversarial_training(0.1, 0.1, steps=0), "steps"),
    (lambda: st.problems.robust_features(model="cnn"), "model"),
    (lambda: st.problems.robust_features(loss="hinge"), "loss"),
    (lambda: st.problems.robust_features(n=1), "n"),
    (lambda: st.problems.robust_features(noise=0.0), "noise"),
    (lambda: st.problems.robust_features(nonrobust_mean=-0.2), "nonrobust_mean"),
    (lambda: st.measure.robust_accuracy(st.problems.op_toy(), None, 0.1), "problem"),
])
def test_bad_input_is_refused_in_one_line(make, parameter):
    with pytest.raises(ConfigError) as error:
        make()
    assert error.value.parameter == parameter and "\n" not in str(error.value)


@pytest.mark.parametrize("norm", [2.0, math.inf])
def test_pgd_robust_accuracy_equals_the_exact_count_on_a_linear_model(linear, norm):
    w = jnp.asarray(np.random.default_rng(2).standard_normal(6)) + linear.constants["mean"]
    x, y = np.asarray(linear.constants["x_test"]), np.asarray(linear.constants["y_test"])
    q = {2.0: 2, math.inf: 1}[norm]
    attack = {steps: jax.jit(lambda eps, steps=steps: st.measure.pgd_robust_accuracy(
        linear, w, eps, norm=norm, steps=steps)) for steps in (1, 10)}
    for eps in (0.0, 0.1, 0.4):
        exact_count = float(np.mean(y * (x @ np.asarray(w)) - eps * np.linalg.norm(w, q) > 0))
        for steps in (1, 10):
            assert float(attack[steps](eps)) == exact_count
        # ... and the sample agrees with the population's closed form (4 standard errors).
        population = float(st.measure.robust_accuracy(linear, w, eps, norm=norm))
        assert population == pytest.approx(
            rb.gaussian_linear_accuracy(np.asarray(w), np.asarray(linear.constants["mean"]),
                                        np.eye(6), eps, norm), rel=1e-12)
        assert abs(exact_count - population) <= 4 * math.sqrt(population * (1 - population) / len(y))


def test_feature_weights_ratio_and_input_gradient_norm(linear):
    diagonal = st.problems.robust_features(model="diagonal", n=8, n_nonrobust=2)
    params = {"u": jnp.array([2.0, 1.0, -1.0]), "v": jnp.array([1.5, 0.5, 0.5])}
    np.testing.assert_array_equal(np.asarray(st.measure.effective_weights(diagonal, params)),
                                  [3.0, 0.5, -0.5])
    assert float(st.measure.robust_weight_ratio(jnp.array([3.0, 0.5, -0.5]))) == 3.0
    # A ReLU network whose units are all active on the test set has input gradient Wᵀa.
    relu = st.problems.robust_features(model="relu", n=8, n_nonrobust=2, width=2)
    W = jnp.array([[0.0, 0.0, 0.0], [0.1, 0.2, 0.0]]) + jnp.array([[1e-3, 0, 0], [0, 0, 0]])
    shifted = relu.with_constants(x_test=jnp.broadcast_to(jnp.array([1.0, 1.0, 0.0]),
                                                          relu.constants["x_test"].shape))
    a = jnp.array([3.0, -2.0])
    np.testing.assert_allclose(np.asarray(st.measure.effective_weights(shifted, {"W": W, "a": a})),
                               np.asarray(W.T @ a), rtol=1e-14)
    # Linear logistic: E|ℓ'(m)|·‖w‖_q exactly (the input gradient of example k is ℓ'(m_k)·y_k·w).
    w = linear.constants["mean"]
    x, y = linear.constants["x_test"], linear.constants["y_test"]
    slopes = jax.nn.sigmoid(-(y * (x @ w)))
    assert float(st.measure.input_gradient_norm(linear, w, norm=math.inf)) == pytest.approx(
        float(jnp.mean(slopes) * jnp.sum(jnp.abs(w))), rel=1e-12)
