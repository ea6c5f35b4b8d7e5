"""Conv-ReLU signal/noise problem, its measures, and the phase-diagram grid (issue 5)."""
import json
import os
import subprocess
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as hst

import sharp_theory as st
from sharp_theory.claims import get
from sharp_theory.studies import phase_diagram as phase
from sharp_theory.measure import signal_noise as sn
from sharp_theory.problems import conv_relu as cr

ROOT = Path(__file__).resolve().parent.parent
SMALL = dict(n_train=6, n_test=400, n_filters=3)
OBSERVE = st.observables.all_of_params_and_problem(
    {"train_loss": cr.training_loss, "test_error": cr.observed_label_test_error,
     "max_rho": sn.max_noise_coefficient})


def small_problem(dim=12, signal=2.0, seed=0, **kw):
    return cr.conv_relu_signal_noise(dim, signal, seed=seed, **{**SMALL, **kw})


def numpy_gradient(weights, x, y):
    """Hand-derived gradient of the mean logistic loss of f = F₊₁ − F₋₁ (independent of autodiff)."""
    m = weights.shape[1]
    signs = np.array([1.0, -1.0])
    pre = np.einsum("jrd,npd->njrp", weights, x)
    f = (np.maximum(pre, 0).sum(axis=(2, 3)) / m) @ signs
    coef = -y / (1.0 + np.exp(y * f)) / len(y)
    weight = coef[:, None, None, None] * (pre > 0) * signs[None, :, None, None] / m
    return f, np.einsum("njrp,npd->jrd", weight, x)


def test_data_model_layout():
    problem = small_problem(dim=10, pad_to=16, n_patches=3, label_flip=0.3)
    data = cr.as_numpy_problem(problem)
    x, clean, observed = data["x"], data["clean_labels"], data["y"]
    assert x.shape == (6, 3, 16) and data["W0"].shape == (2, 3, 16)
    np.testing.assert_array_equal(x[:, 0, :], clean[:, None] * data["mu"][None, :])  # signal ŷμ
    assert np.linalg.norm(data["mu"]) == pytest.approx(2.0)
    assert np.all(x[:, 1:, 0] == 0)  # noise ⟂ μ = ‖μ‖ e₀
    assert np.all(x[:, :, 10:] == 0) and np.all(data["W0"][:, :, 10:] == 0)  # zero padding
    assert set(np.unique(observed * clean)) <= {-1.0, 1.0}
    isotropic = cr.as_numpy_problem(small_problem(dim=10, isotropic=True))
    assert np.all(isotropic["x"][:, 1:, 0] != 0)


def test_autodiff_gradient_matches_hand_derivation():
    problem = small_problem(dim=9, signal=1.5, seed=3, init_std=0.5)
    data = cr.as_numpy_problem(problem)
    loss, grads = jax.value_and_grad(problem.loss)(problem.params0, problem.examples)
    f, hand = numpy_gradient(data["W0"], data["x"], data["y"])
    assert float(loss) == pytest.approx(np.mean(np.logaddexp(0, -data["y"] * f)), rel=1e-13)
    np.testing.assert_allclose(np.asarray(grads["W"]), hand, rtol=1e-12, atol=1e-15)


def test_bad_settings_raise_before_work():
    with pytest.raises(st.ConfigError, match="label_flip"):
        cr.conv_relu_signal_noise(10, 1.0, label_flip=0.5)
    with pytest.raises(st.ConfigError, match="dim"):
        cr.conv_relu_signal_noise(1, 1.0)
    with pytest.raises(st.ConfigError, match="signal_strength"):
        cr.conv_relu_signal_noise(10, 0.0)
    with pytest.raises(st.ConfigError, match="pad_to"):
        cr.conv_relu_signal_noise(10, 1.0, pad_to=5)
    with pytest.raises(st.ConfigError, match="device"):
        phase.conv_relu_grid([10], [1.0], {"gd": st.optim.gd(0.1)}, steps=2, device="tpu")
    with pytest.raises(st.ConfigError, match="signal_strengths"):
        phase.conv_relu_grid([10], [-1.0], {"gd": st.optim.gd(0.1)}, steps=2)


def test_decomposition_is_exact_along_training():
    problem = small_problem(dim=40, signal=2.0, seed=1)
    for optimizer in (st.optim.sgd(0.2, batch_size=3), st.optim.sam(0.2, 0.3, batch_size=3)):
        trajectory = st.run(problem, optimizer, steps=15, key=jax.random.key(1))
        parts = sn.signal_noise_coefficients(trajectory.params, problem)
        data = cr.as_numpy_problem(problem)
        noise = data["x"][:, 1:, :]
        rebuilt = (data["W0"] + np.asarray(parts["gamma"])[..., None] * data["mu"] / 4.0
                   + np.einsum("jrnp,npd->jrd", np.asarray(parts["rho"]),
                               noise / np.sum(noise ** 2, axis=-1, keepdims=True)))
        np.testing.assert_allclose(rebuilt, np.asarray(trajectory.params["W"]), atol=1e-12)
        assert float(parts["residual"]) < 1e-12
        assert np.any(np.abs(np.asarray(parts["rho"])) > 1e-3)  # something was learned


def test_spd_solve_and_cholesky_match_numpy():
    rng = np.random.default_rng(0)
    a = rng.standard_normal((7, 30))
    gram, rhs = a @ a.T, rng.standard_normal((7, 4))
    np.testing.assert_allclose(np.asarray(cr.spd_solve(jnp.asarray(gram), jnp.asarray(rhs))),
                               np.linalg.solve(gram, rhs), rtol=1e-10)
    lower = np.asarray(cr.spd_cholesky(jnp.asarray(gram), relative_jitter=0.0))
    np.testing.assert_allclose(lower, np.linalg.cholesky(gram), rtol=1e-10, atol=1e-12)
    assert np.all(np.isfinite(np.asarray(cr.spd_cholesky(jnp.zeros((4, 4))))))  # singular: no NaN


def test_test_error_matches_an_explicit_test_set():
    """The whitened test set gives the error of explicit test points, within Monte Carlo error."""
    problem = small_problem(dim=30, signal=1.0, seed=2, n_test=4000, label_flip=0.2)
    trained = st.run(problem, st.optim.gd(0.5), steps=30, key=jax.random.key(2)).params
    data = cr.as_numpy_problem(problem)
    rng = np.random.default_rng(5)
    clean = rng.choice([-1.0, 1.0], size=20000)
    flips = rng.random(20000) < 0.2
    noise = rng.standard_normal((20000, 1, 30)) * data["noise_mask"][None, None, :]
    x = np.concatenate([clean[:, None, None] * data["mu"][None, None, :], noise], axis=1)
    f, _ = numpy_gradient(np.asarray(trained["W"]), x, np.where(flips, -clean, clean))
    explicit_clean = np.mean(clean * f <= 0)
    explicit_observed = np.mean(np.where(flips, -clean, clean) * f <= 0)
    ours_clean = float(cr.clean_label_test_error(trained, problem))
    ours_observed = float(cr.observed_label_test_error(trained, problem))
    assert 0.02 < explicit_clean < 0.5  # a regime where the comparison means something
    for ours, theirs in ((ours_clean, explicit_clean), (ours_observed, explicit_observed)):
        sd = np.sqrt(theirs * (1 - theirs) * (1 / 4000 + 1 / 20000))
        assert abs(ours - theirs) < 4.5 * sd


@settings(max_examples=3, deadline=None)
@given(extra=hst.sampled_from([1, 21]), signal=hst.floats(0.3, 5.0), seed=hst.integers(0, 50))
def test_zero_padding_leaves_outputs_gradients_and_training_unchanged(extra, signal, seed):
    dim = 11
    plain = small_problem(dim=dim, signal=signal, seed=seed)
    padded = small_problem(dim=dim, signal=signal, seed=seed, pad_to=dim + extra)
    np.testing.assert_array_equal(np.asarray(padded.examples["x"])[..., :dim],
                                  np.asarray(plain.examples["x"]))
    loss_a, grad_a = jax.value_and_grad(plain.loss)(plain.params0, plain.examples)
    loss_b, grad_b = jax.value_and_grad(padded.loss)(padded.params0, padded.examples)
    assert float(loss_a) == pytest.approx(float(loss_b), rel=1e-14)
    np.testing.assert_allclose(np.asarray(grad_b["W"])[..., :dim], np.asarray(grad_a["W"]),
                               rtol=1e-12, atol=1e-16)
    assert np.all(np.asarray(grad_b["W"])[..., dim:] == 0)
    sam = st.optim.sam(0.3, 0.5, batch_size=3)
    run_a = st.run(plain, sam, steps=8, key=jax.random.key(seed), observe=OBSERVE, stride=4)
    run_b = st.run(padded, sam, steps=8, key=jax.random.key(seed), observe=OBSERVE, stride=4)
    np.testing.assert_allclose(np.asarray(run_b.params["W"])[..., :dim],
                               np.asarray(run_a.params["W"]), rtol=1e-11, atol=1e-14)
    assert np.all(np.asarray(run_b.params["W"])[..., dim:] == 0)
    for name in OBSERVE:
        np.testing.assert_allclose(run_b.observed[name], run_a.observed[name], rtol=1e-9, atol=1e-12)


GRID_ARGS = dict(steps=6, stride=3, repeats=2, observe=OBSERVE, n_test=200, n_train=6,
                 n_filters=3, tau_scaling="paper", progress=False)
GRID_OPTIMIZERS = {"sgd": st.optim.sgd(0.2, batch_size=3), "sam": st.optim.sam(0.2, 0.8, batch_size=3)}
# Six cells per d and chunks of five: chunk 0 holds only d = 9 cells (padded to 16 on the ladder
# 32, 16, 8, ...), chunk 1 mixes d = 9 and d = 32 (padded to 32). (d > 7 = n_train (P - 1) + 1
# keeps the signal/noise decomposition well posed.)
DIMS, SIGNALS = [9, 32], [0.7, 2.5, 4.0]


@pytest.fixture(scope="module")
def reference_grid():
    return phase.conv_relu_grid(DIMS, SIGNALS, GRID_OPTIMIZERS, chunk_size=5, **GRID_ARGS)


@pytest.mark.parametrize("signal_index", [1, 2])  # cell 3 is in chunk 0 (padded to 16), cell 5 in chunk 1 (32)
def test_grid_cell_equals_a_single_run(reference_grid, signal_index):
    assert reference_grid.complete and reference_grid.observed["sam"]["max_rho"].shape == (2, 3, 2, 3)
    dim, signal, repeat = 9, SIGNALS[signal_index], 1
    problem = cr.conv_relu_signal_noise(dim, signal, seed=repeat, n_test=200, n_train=6, n_filters=3)
    tau = 0.8 * float(phase.paper_tau_unit(dim, 3, 3, 2, 1.0))
    run = st.run(problem, st.optim.sam(0.2, tau, batch_size=3), steps=6, stride=3,
                 key=jax.random.key(repeat), observe=OBSERVE)
    for name in OBSERVE:
        np.testing.assert_allclose(reference_grid.observed["sam"][name][0, signal_index, repeat],
                                   np.asarray(run.observed[name]), rtol=1e-10, atol=1e-13)


def test_padding_ladder():
    assert [phase.padded_dimension(d, 1600) for d in (100, 101, 200, 201, 800, 801, 1600)] == \
        [100, 200, 200, 400, 800, 1600, 1600]
    assert [phase.padded_dimension(d, 16) for d in (2, 4, 5, 8, 9, 16)] == [2, 4, 8, 8, 16, 16]


def test_interrupted_sweep_resumes_to_identical_results(tmp_path, reference_grid):
    folder = tmp_path / "ckpt"
    partial = phase.conv_relu_grid(DIMS, SIGNALS, GRID_OPTIMIZERS, chunk_size=5,
                                   checkpoint_dir=folder, max_new_chunks=1, **GRID_ARGS)
    assert not partial.complete and partial.chunks_computed == 1
    assert np.isnan(partial.observed["sgd"]["train_loss"]).any()
    assert sorted(p.name for p in folder.iterdir()) == ["chunk_000000.npz",
                                                        "chunk_000000.npz.sha256", "manifest.json"]
    resumed = phase.conv_relu_grid(DIMS, SIGNALS, GRID_OPTIMIZERS, chunk_size=5,
                                   checkpoint_dir=folder, **GRID_ARGS)
    assert resumed.complete and resumed.chunks_loaded == 1 and resumed.chunks_computed == 2
    # A chunk edited on disk (one number) is computed again, never loaded.
    with np.load(folder / "chunk_000001.npz") as data:
        arrays = {name: np.array(data[name]) for name in data.files}
    first = sorted(arrays)[0]
    arrays[first].flat[0] += 1.0
    np.savez(folder / "chunk_000001.npz", **arrays)
    again = phase.conv_relu_grid(DIMS, SIGNALS, GRID_OPTIMIZERS, chunk_size=5,
                                 checkpoint_dir=folder, **GRID_ARGS)
    assert again.chunks_loaded == 2 and again.chunks_computed == 1
    for name in GRID_OPTIMIZERS:
        for key, value in reference_grid.observed[name].items():
            np.testing.assert_array_equal(again.observed[name][key], value)
    for name in GRID_OPTIMIZERS:
        for key, value in reference_grid.observed[name].items():
            np.testing.assert_array_equal(resumed.observed[name][key], value)
    with pytest.raises(st.ConfigError, match="checkpoint_dir"):
        phase.conv_relu_grid(DIMS, SIGNALS, GRID_OPTIMIZERS, chunk_size=5, checkpoint_dir=folder,
                             **{**GRID_ARGS, "steps": 7})


SHARDING_SCRIPT = """
import json, numpy as np, jax, sharp_theory as st
from sharp_theory.studies import phase_diagram as phase
from sharp_theory.problems import conv_relu as cr
from sharp_theory.measure import signal_noise as sn
observe = st.observables.all_of_params_and_problem(
    {"train_loss": cr.training_loss, "test_error": cr.observed_label_test_error,
     "max_rho": sn.max_noise_coefficient})
opts = {"sgd": st.optim.sgd(0.2, batch_size=3), "sam": st.optim.sam(0.2, 0.8, batch_size=3)}
args = dict(steps=6, stride=3, repeats=2, observe=observe, n_test=200, n_train=6, n_filters=3,
            tau_scaling="paper", progress=False, chunk_size=8, device="cpu")
sharded = phase.conv_relu_grid([9, 16], [0.7, 2.5, 4.0], opts, shard=True, **args)
single = phase.conv_relu_grid([9, 16], [0.7, 2.5, 4.0], opts, shard=False, **args)
same = all(np.array_equal(sharded.observed[o][k], single.observed[o][k], equal_nan=True)
           for o in opts for k in sharded.observed[o])
print(json.dumps({"devices": len(jax.devices()), "sharded": sharded.config["sharded"],
                  "unsharded": single.config["sharded"], "bitwise_equal": same}))
"""


def test_sharded_grid_equals_unsharded_bit_for_bit():
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=4",
               JAX_PLATFORMS="cpu")
    out = subprocess.run([sys.executable, "-c", SHARDING_SCRIPT], env=env, capture_output=True,
                         text=True, timeout=300, cwd=ROOT)
    assert out.returncode == 0, out.stderr[-2000:]
    report = json.loads(out.stdout.strip().splitlines()[-1])
    assert report == {"devices": 4, "sharded": True, "unsharded": False, "bitwise_equal": True}


def test_numpy_loop_baseline_matches_the_compiled_path(load_benchmark):
    """The benchmark's hand-written numpy SAM (full batch) equals st.run with autodiff."""
    bench = load_benchmark("bench_conv_relu")
    problem = small_problem(dim=20, signal=1.5, seed=4)
    data = cr.as_numpy_problem(problem)
    out = bench.numpy_train(data, lr=0.3, rho=0.4, batch_size=6, steps=10, stride=5, seed=0, sam=True)
    run = st.run(problem, st.optim.sam(0.3, 0.4), steps=10, stride=5, key=jax.random.key(0),
                 observe=OBSERVE)
    np.testing.assert_allclose(out["W"], np.asarray(run.params["W"]), rtol=1e-11, atol=1e-14)
    np.testing.assert_allclose(out["loss"], run.observed["train_loss"], rtol=1e-11)
    np.testing.assert_allclose(out["test_error"], run.observed["test_error"], atol=1e-12)
    np.testing.assert_allclose(out["max_rho"], run.observed["max_rho"], rtol=1e-8, atol=1e-12)


def test_boundary_interpolates_the_first_crossing():
    signals = np.array([1.0, 2.0, 4.0, 8.0])
    errors = np.array([[0.4, 0.3, 0.1, 0.1],    # crosses 0.2 halfway between 2 and 4 (log scale)
                       [0.1, 0.1, 0.1, 0.1],    # benign everywhere: no crossing
                       [0.5, 0.5, 0.5, 0.5]])   # never benign
    boundary = phase.benign_boundary(errors, signals, 0.2)
    assert boundary[0] == pytest.approx(np.sqrt(8.0))
    assert np.isnan(boundary[1]) and np.isnan(boundary[2])


@settings(max_examples=25, deadline=None)
@given(slope=hst.floats(-1.0, 1.0), intercept=hst.floats(-2.0, 2.0),
       noise=hst.floats(0.0, 0.05), seed=hst.integers(0, 1000))
def test_power_law_fit_recovers_the_exponent(slope, intercept, noise, seed):
    dims = np.geomspace(100, 1600, 8)
    rng = np.random.default_rng(seed)
    boundary = np.exp(intercept + slope * np.log(dims) + noise * rng.standard_normal(8))
    fit = phase.fit_power_law(dims, boundary)
    assert fit["points"] == 8 and fit["ci_low"] <= fit["slope"] <= fit["ci_high"]
    if noise == 0:
        assert fit["slope"] == pytest.approx(slope, abs=1e-9)
    assert abs(fit["slope"] - slope) < 0.6 * noise + 1e-9 + (fit["ci_high"] - fit["ci_low"])


def test_claim_checks_can_pass_fail_and_abstain():
    slope = get("chen2023.benign_overfitting.sgd_boundary_quarter_power")
    base = {"sgd_boundary_slope": 0.27, "sgd_boundary_slope_ci_low": 0.2,
            "sgd_boundary_slope_ci_high": 0.34, "sgd_boundary_points": 12, "diverged_runs": 0}
    assert slope.evaluate(base, quick=False)["verdict"] == "pass"
    assert slope.evaluate({**base, "sgd_boundary_slope_ci_low": 0.3}, quick=False)["verdict"] == "fail"
    assert slope.evaluate({**base, "sgd_boundary_points": 2}, quick=False)["verdict"] == "inconclusive"
    # A CI of width 1 contains both d^0 and d^(1/2): it cannot tell them apart, so never a pass.
    assert slope.evaluate({**base, "sgd_boundary_slope_ci_low": -0.2,
                           "sgd_boundary_slope_ci_high": 0.7}, quick=False)["verdict"] == "inconclusive"
    # A quick run is judged inside the same guards (issue 25): a pass, and "needs the full run"
    # with too few boundary points.
    assert slope.evaluate(base, quick=True)["verdict"] == "pass"
    few = slope.evaluate({**base, "sgd_boundary_points": 3}, quick=True)
    assert few["verdict"] == "inconclusive" and "needs the full run" in few["detail"]
    region = get("chen2023.benign_overfitting.sam_region_contains_sgd")
    numbers = {"premise_cells": 40, "premise_sgd_benign_cells": 20, "premise_tau": 0.1,
               "premise_sam_overfits_fraction": 0.9, "premise_sam_benign_where_sgd_benign": 1.0,
               "premise_sgd_benign_cells_largest_d": 1, "premise_sam_benign_cells_largest_d": 3,
               "diverged_runs": 0}
    assert region.evaluate(numbers, quick=False)["verdict"] == "pass"
    assert region.evaluate({**numbers, "premise_sam_benign_cells_largest_d": 1},
                           quick=False)["verdict"] == "fail"
    # Outside the theorem's premise (SAM does not fit the noisy labels) nothing is judged.
    assert region.evaluate({**numbers, "premise_sgd_benign_cells": 2},
                           quick=False)["verdict"] == "inconclusive"
    relus = get("chen2023.benign_overfitting.sam_switches_off_noise_relus")
    early = {"early_ascent_active_sgd": 0.55, "early_ascent_active_sam": 0.05,
             "early_iterate_active_sgd": 0.55, "early_iterate_active_sam": 0.8, "early_step": 20,
             "diverged_runs": 0}
    assert relus.evaluate(early, quick=False)["verdict"] == "pass"
    assert relus.evaluate({**early, "early_ascent_active_sam": 0.6}, quick=False)["verdict"] == "fail"
    assert relus.evaluate({**early, "diverged_runs": 3}, quick=False)["verdict"] == "fail"
