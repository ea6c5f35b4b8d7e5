"""st.problems task sequences: least squares, the bigram fine-tuning lanes, the diagonal net."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as hs

import sharp_theory as st
from sharp_theory.errors import ConfigError
from sharp_theory.problems.next_token import bigram_tables
from sharp_theory.theory import forgetting


@settings(max_examples=5, deadline=None)
@given(seed=hs.integers(0, 10_000), sigma=hs.sampled_from([0.0, 0.3]))
def test_sequential_regression_losses_are_the_least_squares_of_their_data(seed, sigma):
    tasks = st.problems.sequential_regression(tasks=3, p=6, n=4, sigma=sigma, seed=seed)
    assert len(tasks) == 3
    w = jnp.asarray(np.random.default_rng(seed + 1).standard_normal(6))
    for task in tasks:
        X, y = np.asarray(task.constants["X"]), np.asarray(task.constants["y"])
        assert X.shape == (4, 6)
        expected = 0.5 * np.mean((X @ np.asarray(w) - y) ** 2)
        assert float(task.loss(w, None)) == pytest.approx(expected, rel=1e-12)


def test_given_designs_and_truths_are_used_exactly():
    rng = np.random.default_rng(0)
    designs, truths = rng.standard_normal((2, 3, 5)), rng.standard_normal((2, 5))
    first, second = st.problems.sequential_regression(designs, truths)
    np.testing.assert_array_equal(np.asarray(second.constants["y"]), designs[1] @ truths[1])
    assert float(first.loss(jnp.asarray(truths[0]), None)) == pytest.approx(0.0, abs=1e-25)


def test_task_b_from_task_a_endpoint_is_one_run_and_ends_at_the_projection():
    rng = np.random.default_rng(3)
    designs, truths = rng.standard_normal((2, 3, 8)), rng.standard_normal((2, 8))
    task_a, task_b = st.problems.sequential_regression(designs, truths)
    w_a = forgetting.sequential_projection_fit(np.zeros(8), designs[0], designs[0] @ truths[0])
    run = st.run(task_b, st.optim.gd(0.1), steps=3_000, key=jax.random.key(0),
                 params0=jnp.asarray(w_a))
    projection = forgetting.sequential_projection_fit(w_a, designs[1], designs[1] @ truths[1])
    np.testing.assert_allclose(np.asarray(run.params), projection, atol=1e-8)


def test_bigram_lanes_mix_the_tables_with_the_set_gap():
    pair = st.problems.bigram_fine_tuning([0.0, 0.25, 1.0], seeds=2, vocab_size=4,
                                          embedding_dim=2, hidden_dim=3)
    assert pair.lanes == 6 and pair.grid["tables"].shape == (6, 2, 4, 4)
    np.testing.assert_array_equal(pair.gaps, [0.0, 0.0, 0.25, 0.25, 1.0, 1.0])
    joint_a = np.asarray(pair.task_a.constants["tables"][1])
    np.testing.assert_array_equal(np.asarray(pair.task_a.constants["tables"][0]), joint_a)
    other = bigram_tables(4, 1.0, n_train=1, seed=101)[1]
    np.testing.assert_allclose(pair.grid["tables"][3, 0], 0.75 * joint_a + 0.25 * other, rtol=1e-14)
    joint_b = pair.grid["tables"][3, 0]
    assert pair.kl[3] == pytest.approx(np.sum(joint_b * np.log(joint_b / joint_a)), rel=1e-12)
    assert pair.kl[0] == 0.0 and pair.kl[4] > pair.kl[2] > 0
    task_b = pair.task_b(3)
    params = pair.task_a.params0
    from sharp_theory.problems.next_token import cross_entropy_of_logits, logits
    expected = cross_entropy_of_logits(logits(params), jnp.asarray(joint_b))
    assert float(task_b.loss(params, None)) == pytest.approx(float(expected), rel=1e-12)


def test_rehearsal_mixes_task_a_into_the_training_table_only():
    plain = st.problems.bigram_fine_tuning([0.4], vocab_size=4, embedding_dim=2, hidden_dim=3)
    mixed = st.problems.bigram_fine_tuning([0.4], vocab_size=4, embedding_dim=2, hidden_dim=3,
                                           rehearsal=0.25)
    joint_a = np.asarray(plain.task_a.constants["tables"][1])
    joint_b = plain.grid["tables"][0, 1]
    np.testing.assert_array_equal(mixed.grid["tables"][0, 1], joint_b)
    np.testing.assert_allclose(mixed.grid["tables"][0, 0], 0.75 * joint_b + 0.25 * joint_a,
                               rtol=1e-14)
    # the same as a smaller gap λ(1 − r) in the training table
    smaller = st.problems.bigram_fine_tuning([0.3], vocab_size=4, embedding_dim=2, hidden_dim=3)
    np.testing.assert_allclose(mixed.grid["tables"][0, 0], smaller.grid["tables"][0, 0],
                               rtol=1e-13)


def test_diagonal_lanes_swap_targets_and_task_a_is_fitted_at_beta_theta_a():
    pair = st.problems.diagonal_fine_tuning([0.0, 0.5], seeds=2, n=12, d=4)
    assert pair.grid["targets"].shape == (4, 12)
    theta = np.asarray(pair.task_a.constants["theta"])
    # u = sqrt|θ|, v = sign(θ) sqrt|θ| gives β = θ_A: zero loss on task A.
    u = jnp.sqrt(jnp.abs(jnp.asarray(theta)))
    assert float(pair.task_a.loss({"u": u, "v": jnp.sign(jnp.asarray(theta)) * u}, None)) \
        == pytest.approx(0.0, abs=1e-25)
    np.testing.assert_allclose(pair.kl[2:] / 0.5, [np.linalg.norm(
        np.random.default_rng(1 + s).standard_normal(4)) for s in range(2)], rtol=1e-12)
    assert float(pair.task_b(0).loss({"u": u, "v": jnp.sign(jnp.asarray(theta)) * u}, None)) \
        == pytest.approx(0.0, abs=1e-25)


@pytest.mark.parametrize("call, parameter", [
    (lambda: st.problems.least_squares_task(np.ones((3, 2)), np.ones(4)), "y"),
    (lambda: st.problems.least_squares_task(np.ones((3, 2)), np.ones(3), params0=np.ones(3)),
     "params0"),
    (lambda: st.problems.sequential_regression(np.ones((2, 3, 4)), np.ones((3, 4))), "truths"),
    (lambda: st.problems.sequential_regression(tasks=0), "tasks"),
    (lambda: st.problems.sequential_regression(sigma=-1.0), "sigma"),
    (lambda: st.problems.sequential_regression(np.full((1, 2, 2), np.nan)), "designs"),
    (lambda: st.problems.bigram_fine_tuning([0.1, 1.5]), "gaps"),
    (lambda: st.problems.bigram_fine_tuning([]), "gaps"),
    (lambda: st.problems.bigram_fine_tuning([0.1], seeds=0), "seeds"),
    (lambda: st.problems.diagonal_fine_tuning([0.1], d=0), "d"),
    (lambda: st.problems.bigram_fine_tuning([0.1], rehearsal=1.0), "rehearsal"),
    (lambda: st.problems.bigram_fine_tuning([0.1], rehearsal=-0.1), "rehearsal"),
])
def test_bad_input_is_refused_naming_the_parameter(call, parameter):
    with pytest.raises(ConfigError, match=parameter):
        call()


def small_pair():
    return st.problems.bigram_fine_tuning([0.2, 0.6], vocab_size=4, embedding_dim=2, hidden_dim=3)


def test_low_rank_fine_tuning_starts_at_the_pretrained_model_and_merges_x_y_transpose():
    pair = small_pair()
    params_a = pair.task_a.params0
    adapted = st.problems.low_rank_fine_tuning(pair.task_a, params_a, layer="readout", rank=2)
    assert adapted.params0["x"].shape == (3, 2) and adapted.params0["y"].shape == (4, 2)
    assert float(adapted.loss(adapted.params0, None)) == float(pair.task_a.loss(params_a, None))
    rng = np.random.default_rng(0)
    moved = {"x": jnp.asarray(rng.standard_normal((3, 2))), "y": jnp.asarray(rng.standard_normal((4, 2)))}
    from sharp_theory.problems.tasks import merged_params
    merged = merged_params(adapted, moved)
    np.testing.assert_allclose(np.asarray(merged["readout"]), np.asarray(params_a["readout"])
                               + np.asarray(moved["x"]) @ np.asarray(moved["y"]).T, rtol=1e-14)
    assert float(adapted.loss(moved, None)) == pytest.approx(
        float(pair.task_a.loss(merged, None)), rel=1e-13)


def test_low_rank_fine_tuning_of_every_lane_is_one_sweep_and_stays_rank_one():
    pair = small_pair()
    adapted = st.problems.low_rank_fine_tuning(pair.task_a, pair.task_a.params0, layer="readout")
    result = st.sweep(adapted, {"GD": st.optim.gd(0.5)}, steps=50, grid=pair.grid, stride=50)["GD"]
    from sharp_theory.problems.tasks import merged_params
    for lane in range(pair.lanes):
        params = jax.tree_util.tree_map(lambda leaf: leaf[lane, 0], result.params)
        task_b = pair.task_b(lane)
        merged = merged_params(adapted, params)
        assert float(task_b.loss(merged, None)) < float(task_b.loss(pair.task_a.params0, None))
        change = np.asarray(merged["readout"]) - np.asarray(pair.task_a.params0["readout"])
        assert np.linalg.matrix_rank(change, tol=1e-12) == 1
        for name in ("embedding", "hidden", "hidden_bias", "readout_bias"):
            np.testing.assert_array_equal(np.asarray(merged[name]),
                                          np.asarray(pair.task_a.params0[name]))


@pytest.mark.parametrize("kwargs, parameter", [
    ({"layer": "nope"}, "layer"), ({"layer": "hidden_bias"}, "layer"),
    ({"layer": "readout", "rank": 4}, "rank"), ({"layer": "readout", "init_scale": 0.0}, "init_scale"),
])
def test_low_rank_fine_tuning_refuses_bad_input(kwargs, parameter):
    pair = small_pair()
    with pytest.raises(ConfigError, match=parameter):
        st.problems.low_rank_fine_tuning(pair.task_a, pair.task_a.params0, **kwargs)
