"""The conv-ReLU grid's span engine: training the coordinates of W − W0 in an orthonormal basis of
the training patches gives the same trajectories as training W (issue 16, part 4)."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as hst

import sharp_theory as st
from sharp_theory.problems import conv_relu as cr
from sharp_theory.studies import phase_diagram as phase
from sharp_theory.measure import signal_noise as sn

SMALL = dict(n_train=6, n_test=300, n_filters=3)  # span size K = 1 + 6 (2 - 1) = 7
OBSERVE = st.observables.all_of_params_and_problem(
    {"train_loss": cr.training_loss, "test_error": cr.observed_label_test_error,
     "max_rho": sn.max_noise_coefficient, "max_gamma": sn.max_signal_coefficient})
SPAN_OPTIMIZERS = {
    "sgd": st.optim.sgd(0.2, batch_size=3),
    "sam": st.optim.sam(0.2, 0.8, batch_size=3),
    "usam_momentum": st.optim.usam(0.1, 0.3, batch_size=3, base=st.optim.momentum(0.9)),
}
# Chunks of five over six cells per d: chunk 1 mixes d = 16 and d = 40 cells (padded to 40).
GRID = dict(steps=9, stride=3, repeats=2, observe=OBSERVE, tau_scaling="paper", progress=False,
            chunk_size=5, **SMALL)
DIMS, SIGNALS = [16, 40], [0.7, 2.5, 4.0]


@pytest.fixture(scope="module")
def both_engines():
    return {engine: phase.conv_relu_grid(DIMS, SIGNALS, SPAN_OPTIMIZERS, engine=engine, **GRID)
            for engine in ("weights", "span")}


def test_span_engine_records_equal_the_weights_engine(both_engines):
    weights, span = both_engines["weights"], both_engines["span"]
    assert weights.config["engine"] == "weights" and span.config["engine"] == "span"
    for name in SPAN_OPTIMIZERS:
        for key, value in weights.observed[name].items():
            assert np.all(np.isfinite(value)), (name, key)
            np.testing.assert_allclose(span.observed[name][key], value, rtol=1e-9, atol=1e-12,
                                       err_msg=f"{name} {key}")
    # The runs moved: the comparison is not between two copies of the initialization.
    assert np.all(np.abs(np.diff(weights.observed["sam"]["train_loss"], axis=-1)) > 0)


def test_span_engine_cell_equals_a_single_run_of_the_network(both_engines):
    dim, signal_index, repeat = 16, 2, 1
    problem = cr.conv_relu_signal_noise(dim, SIGNALS[signal_index], seed=repeat, **SMALL)
    tau = 0.8 * float(phase.paper_tau_unit(dim, 3, 3, 2, 1.0))
    run = st.run(problem, st.optim.sam(0.2, tau, batch_size=3), steps=9, stride=3,
                 key=jax.random.key(repeat), observe=OBSERVE)
    for name in OBSERVE:
        np.testing.assert_allclose(both_engines["span"].observed["sam"][name][0, signal_index, repeat],
                                   np.asarray(run.observed[name]), rtol=1e-9, atol=1e-12)


def test_auto_engine_picks_span_only_where_it_is_exact():
    from sharp_theory.dynamics.trajectory import as_observables
    observables = as_observables(OBSERVE)
    select = lambda engine, optimizers, min_dim=16: phase.select_engine(
        engine, optimizers, observables, min_dim, 6, 2)
    assert select("auto", SPAN_OPTIMIZERS) == "span"
    assert select("weights", SPAN_OPTIMIZERS) == "weights"
    # d below 2K = 14: the patches are too few dimensions apart to be a well-conditioned basis.
    assert select("auto", SPAN_OPTIMIZERS, min_dim=13) == "weights"
    with pytest.raises(st.ConfigError, match="smallest d = 13"):
        select("span", SPAN_OPTIMIZERS, min_dim=13)
    # Adam and SAM in other norms do not commute with rotations of parameter space.
    for other in (st.optim.sgd(0.1, batch_size=3, base=st.optim.adam()),
                  st.optim.sam(0.1, 0.1, p=np.inf, batch_size=3)):
        assert select("auto", {"sgd": SPAN_OPTIMIZERS["sgd"], "other": other}) == "weights"
        with pytest.raises(st.ConfigError, match="'other'.*not rotation-equivariant"):
            select("span", {"other": other})
    warm = as_observables({"spectrum": st.measure.warm_top_eigenpairs()})
    assert phase.select_engine("auto", SPAN_OPTIMIZERS, warm, 16, 6, 2) == "weights"
    with pytest.raises(st.ConfigError, match="engine"):
        select("fast", SPAN_OPTIMIZERS)
    with pytest.raises(st.ConfigError, match="engine"):
        phase.conv_relu_grid([10], [1.0], {"adam": st.optim.sgd(0.1, base=st.optim.adam())},
                             steps=2, engine="span", **SMALL)


def test_a_second_grid_with_other_optimizers_compiles_its_own_program():
    """Compiled chunk programs are keyed by the optimizers too (a second call in one process with
    other optimizers, same cells, used to reuse the first call's program and fail)."""
    args = dict(steps=2, stride=1, repeats=1, observe=OBSERVE, progress=False, **SMALL)
    first = phase.conv_relu_grid([16], [1.0], {"a": st.optim.sgd(0.2, batch_size=3)}, **args)
    second = phase.conv_relu_grid([16], [1.0], {"a": st.optim.sam(0.2, 0.5, batch_size=3),
                                                "b": st.optim.sgd(0.2, batch_size=3)}, **args)
    np.testing.assert_array_equal(second.observed["b"]["train_loss"], first.observed["a"]["train_loss"])
    assert not np.array_equal(second.observed["a"]["train_loss"], first.observed["a"]["train_loss"])


def test_ladder_ratio_four():
    assert [phase.padded_dimension(d, 1600, 4) for d in (100, 101, 400, 401, 1600)] == \
        [100, 400, 400, 1600, 1600]


@jax.jit
def _both_coordinates(problem, coefficients_problem, basis, coefficients, rho):
    """Loss, gradient and one SAM step (radius ``rho``) on a batch of three examples, in weight
    coordinates (at W0 + AQ) and in coefficient coordinates (at A). Compiled once per shape: the
    examples below reuse four programs instead of compiling every operation on its own."""
    weights = cr.weights_from_coefficients(coefficients, problem, basis)
    batch_index = jnp.asarray([0, 2, 5])
    sam = st.optim.sam(0.3, 0.0)
    hparams = dict(sam.hparams, rho=rho)
    key = jax.random.key(0)
    results = []
    for this, params in ((problem, weights), (coefficients_problem, coefficients)):
        batch = jax.tree_util.tree_map(lambda x: x[batch_index], this.examples)
        loss, grad = jax.value_and_grad(this.loss)(params, batch)
        stepped, _, _ = sam.step(params, sam.init(params), this.loss, batch, hparams, key)
        results.append((loss, grad, stepped))
    return results


@settings(max_examples=6, deadline=None)
@given(dim=hst.sampled_from([14, 30]), pad=hst.sampled_from([0, 10]),
       signal=hst.floats(0.3, 8.0), seed=hst.integers(0, 10_000), isotropic=hst.booleans(),
       rho=hst.floats(0.0, 2.0))
def test_coefficient_problem_is_the_network_in_other_coordinates(dim, pad, signal, seed, isotropic,
                                                                 rho):
    """Q is orthonormal and spans every patch; the coefficient loss is the network's loss at
    W0 + AQ, its gradient is ∇_W Qᵀ with the same norm, and one SAM step in A maps to one SAM
    step in W (float64, to rounding)."""
    problem = cr.conv_relu_signal_noise(dim, signal, seed=seed, isotropic=isotropic,
                                        pad_to=dim + pad, **SMALL)
    basis = cr.patch_span_basis(problem)
    q = np.asarray(basis)
    assert q.shape == (7, dim + pad) and np.all(q[:, dim:] == 0)
    np.testing.assert_allclose(q @ q.T, np.eye(7), atol=1e-13)
    patches = np.asarray(problem.examples["x"]).reshape(-1, dim + pad)
    np.testing.assert_allclose(patches @ q.T @ q, patches, atol=1e-12 * np.abs(patches).max())

    coefficients_problem = cr.coefficient_problem(problem, basis)
    rng = np.random.default_rng(seed)
    coefficients = {"A": jnp.asarray(0.3 * rng.standard_normal((2, 3, 7)))}
    (loss_w, grad_w, new_w), (loss_a, grad_a, new_a) = _both_coordinates(
        problem, coefficients_problem, basis, coefficients, jnp.asarray(rho))
    assert float(loss_a) == pytest.approx(float(loss_w), rel=1e-12)
    np.testing.assert_allclose(np.asarray(grad_a["A"]), np.asarray(grad_w["W"]) @ q.T,
                               rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(np.asarray(grad_a["A"]) @ q, np.asarray(grad_w["W"]),
                               rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(
        np.asarray(cr.weights_from_coefficients(new_a, problem, basis)["W"]),
        np.asarray(new_w["W"]), rtol=1e-10, atol=1e-13)
