"""The softmax next-token problem and the logit-path / functional-path measures (issue 14).

Exact references in float64: the Hessian split sums to the dense Hessian to round-off, the
Gauss-Newton part is positive semi-definite, the first-order SAM split matches the exact one as
ρ → 0, and the calibration temperature minimizes the training loss along the temperature.
"""
from __future__ import annotations

import dataclasses

import jax
import jax.flatten_util
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as hst

import sharp_theory as st
from sharp_theory.errors import ConfigError
from sharp_theory.measure import logit_path
from sharp_theory.problems import next_token


# Jitted once per shape: hypothesis draws values for a few fixed shapes, so the cache is reused.
_split = jax.jit(lambda problem, params: logit_path.hessian_split(problem, params))
_dense_hessian = jax.jit(lambda problem, params: st.measure.hessian(lambda p: problem.loss(p, None),
                                                                    params))
_sam_split = jax.jit(lambda problem, params, rho: logit_path.sam_update_split(problem, params, rho))


def _flat(tree):
    return np.asarray(jax.flatten_util.ravel_pytree(tree)[0])


def _problem(V=6, s=1.0, d=3, h=4, tied=False, seed=0):
    return st.problems.softmax_bigram(V, zipf_exponent=s, embedding_dim=d, hidden_dim=h,
                                      tied=tied, n_train=3 * V * V, seed=seed)


def test_tables_are_distributions_and_training_is_a_sample_of_the_population():
    tables = next_token.bigram_tables(10, 1.5, n_train=500, seed=3)
    assert tables.shape == (2, 10, 10)
    np.testing.assert_allclose(tables.sum(axis=(1, 2)), 1.0, rtol=0, atol=1e-12)
    assert np.all(tables >= 0)
    counts = tables[0] * 500
    np.testing.assert_allclose(counts, np.round(counts), atol=1e-9)
    # Zipf contexts: the first token is the most frequent context.
    context = tables[1].sum(axis=1)
    np.testing.assert_allclose(context, next_token.zipf_weights(10, 1.5), rtol=1e-12)
    np.testing.assert_array_equal(tables, next_token.bigram_tables(10, 1.5, n_train=500, seed=3))
    assert not np.array_equal(tables, next_token.bigram_tables(10, 1.5, n_train=500, seed=4))


def test_losses_are_the_exact_cross_entropies_and_the_bayes_floor_holds():
    problem = _problem()
    params = problem.init(jax.random.key(1))
    logits = np.asarray(next_token.logits(params))
    log_p = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
    train, population = np.asarray(problem.constants["tables"])
    assert float(problem.loss(params, None)) == pytest.approx(-(train * log_p).sum(), rel=1e-12)
    assert float(problem.evaluation_loss(params)) == pytest.approx(-(population * log_p).sum(), rel=1e-12)
    assert float(problem.evaluation_loss(params)) >= float(next_token.bayes_cross_entropy(problem))
    # The declared output split composes to the loss.
    assert float(problem.loss_of_outputs(problem.outputs(params, None), None)) == \
        pytest.approx(float(problem.loss(params, None)), rel=1e-14)


def test_tied_embeddings_have_no_readout_and_bad_input_is_refused():
    problem = _problem(d=4, h=4, tied=True)
    assert "readout" not in problem.params0
    assert next_token.logits(problem.params0).shape == (6, 6)
    for kwargs, parameter in ((dict(vocab_size=1), "vocab_size"),
                              (dict(tied=True, embedding_dim=3, hidden_dim=4), "hidden_dim"),
                              (dict(zipf_exponent=-1.0), "zipf_exponent"),
                              (dict(activation="relu"), "activation"),
                              (dict(init_scale=0.0), "init_scale")):
        with pytest.raises(ConfigError, match=parameter):
            st.problems.softmax_bigram(**kwargs)


SHAPES = [(2, 1, 1, False), (5, 3, 4, False), (6, 3, 3, True)]  # (V, d, h, tied)


@pytest.mark.slow
@settings(max_examples=15, deadline=None)
@given(shape=hst.sampled_from(SHAPES), s=hst.sampled_from([0.0, 1.0, 1.5]),
       scale=hst.floats(0.1, 3.0), seed=hst.integers(0, 10_000))
def test_the_hessian_split_sums_to_the_dense_hessian_and_gauss_newton_is_psd(shape, s, scale, seed):
    V, d, h, tied = shape
    problem = _problem(V, s, d, h, tied, seed % 5)
    params = jax.tree_util.tree_map(lambda x: scale * x, problem.init(jax.random.key(seed)))
    split = _split(problem, params)
    full = np.asarray(split.full)
    scale = max(1.0, float(np.abs(full).max()))
    np.testing.assert_allclose(split.gauss_newton + split.functional, full, rtol=0,
                               atol=1e-12 * scale)
    dense = np.asarray(_dense_hessian(problem, params))
    np.testing.assert_allclose(full, 0.5 * (dense + dense.T), rtol=0, atol=1e-12 * scale)
    assert np.linalg.eigvalsh(np.asarray(split.gauss_newton))[0] >= -1e-12 * scale
    # Both parts are genuinely present on this model (∇²F ≠ 0, softmax curvature ≠ 0).
    assert np.abs(np.asarray(split.gauss_newton)).max() > 1e-8


@pytest.mark.slow
def test_path_sharpness_matches_the_dense_spectrum():
    problem = _problem(V=5, d=3, h=3)
    params = problem.init(jax.random.key(2))
    split = _split(problem, params)
    n = split.full.shape[0]
    result = jax.jit(lambda p, w: logit_path.path_sharpness(p, w, lanczos_steps=n))(problem, params)
    for key, matrix in (("", split.full), ("_gauss_newton", split.gauss_newton),
                        ("_functional", split.functional)):
        top = np.linalg.eigvalsh(np.asarray(matrix))[-1]
        assert float(result["lambda_max" + key]) == pytest.approx(top, rel=1e-9, abs=1e-12)
    np.testing.assert_allclose(float(result["trace_gauss_newton"]), np.trace(split.gauss_newton), rtol=1e-10)
    np.testing.assert_allclose(float(result["trace_functional"]), np.trace(split.functional),
                               rtol=1e-9, atol=1e-12)
    assert float(result["top_gauss_newton"] + result["top_functional"]) == \
        pytest.approx(float(result["lambda_max"]), rel=1e-9)


@pytest.mark.slow
def test_sam_update_split_is_exact_and_first_order_in_rho():
    problem = _problem(V=6, d=3, h=4)
    params = problem.init(jax.random.key(5))
    loss_fn = problem.loss_function()
    rho = 0.3
    split = _sam_split(problem, params, rho)
    sam_gradient = st.optim.sam_gradient(params, loss_fn, None, rho)[-1]
    np.testing.assert_allclose(_flat(split.gradient) + _flat(split.logit_path) + _flat(split.functional_path),
                               _flat(sam_gradient), rtol=0, atol=1e-12)
    errors = []
    for small in (1e-3, 1e-4):
        tiny = _sam_split(problem, params, small)
        errors.append(np.linalg.norm(_flat(tiny.logit_path) - _flat(tiny.logit_path_linear))
                      + np.linalg.norm(_flat(tiny.functional_path) - _flat(tiny.functional_path_linear)))
    # The remainder is O(ρ²): ten times smaller ρ, about a hundred times smaller error.
    assert errors[1] < errors[0] / 50


def test_calibration_temperature_minimizes_the_loss_along_the_temperature():
    problem = _problem(V=6)
    params = problem.init(jax.random.key(7))
    temperature = float(logit_path.calibration_temperature(problem, params))
    outputs = problem.outputs(params, None)
    loss = lambda t: float(problem.loss_of_outputs(outputs / t, None))  # noqa: E731
    assert loss(temperature) <= min(loss(temperature * 1.05), loss(temperature / 1.05))
    # Scaling the logits by c scales the fitted temperature by c.
    scaled = dataclasses.replace(problem, outputs_fn=lambda p, b, c: 2.0 * next_token.logits(p))
    refitted = float(logit_path.calibration_temperature(scaled, params))
    assert refitted == pytest.approx(2 * temperature, rel=1e-8)


def test_logit_statistics_of_known_logits():
    stats = logit_path.logit_statistics(jnp.array([[0.0, 0.0], [jnp.log(3.0), 0.0]]),
                                        jnp.array([0.5, 0.5]))
    assert float(stats["max_probability"]) == pytest.approx(0.5 * 0.5 + 0.5 * 0.75)
    entropy = lambda p: -(p * np.log(p) + (1 - p) * np.log(1 - p))  # noqa: E731
    assert float(stats["entropy"]) == pytest.approx(0.5 * entropy(0.5) + 0.5 * entropy(0.75))
    assert float(stats["logit_norm"]) == pytest.approx(np.sqrt(0.5 * (np.log(3.0) / 2) ** 2))


def test_measures_refuse_a_problem_without_outputs():
    problem = st.problems.from_loss(lambda p, b: jnp.sum(p ** 2), jnp.ones(3))
    with pytest.raises(ConfigError, match="problem"):
        logit_path.hessian_split(problem, problem.params0)


@pytest.mark.slow
def test_functional_sam_on_the_softmax_model_uses_the_problems_split_and_adamw_decays():
    problem = _problem(V=5)
    base = st.optim.adamw(weight_decay=0.1)
    for optimizer in (st.optim.functional_sam(0.01, 0.1, base=base),
                      st.optim.functional_sam(0.01, 0.1, precondition=True, base=base),
                      st.optim.preconditioned_sam(0.01, 0.1, base=base)):
        trajectory = st.run(problem, optimizer, steps=2, key=jax.random.key(0))
        assert trajectory.status == "ok" and float(trajectory.grad_evals) == 4.0
    # With a zero gradient direction AdamW still shrinks the weights: w - lr·λ·w.
    zero = st.problems.from_loss(lambda p, b: 0.0 * jnp.sum(p), jnp.ones(2))
    trajectory = st.run(zero, st.optim.gd(0.5, base=base), steps=1, key=jax.random.key(0))
    np.testing.assert_allclose(trajectory.params, 1.0 - 0.5 * 0.1, rtol=1e-12)
    assert st.optim.adamw(weight_decay=0.0).make().init(jnp.ones(2)).__class__ is \
        st.optim.adam().make().init(jnp.ones(2)).__class__
    with pytest.raises(ConfigError, match="weight_decay"):
        st.optim.adamw(weight_decay=-1.0)
