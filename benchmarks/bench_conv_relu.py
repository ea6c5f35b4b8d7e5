"""Benchmark: the conv-ReLU phase-diagram grid through the compiled sweep vs a plain numpy loop.

The compiled path is :func:`sharp_theory.studies.phase_diagram.conv_relu_grid` (all cells, both
optimizers, a few programs, chunked) with its default engine: for SGD and SAM that is the span
engine, which trains the coordinates of W − W0 in an orthonormal basis of the training patches.
The same grid trained in weight space (``engine="weights"``, every cell bit for bit ``st.run``)
is timed too, and the largest difference between the two engines' records is reported. The baseline is the loop a researcher writes first: for each
cell and optimizer, numpy forward/backward passes with hand-written gradients, one run after the
other, recording the same quantities every ``stride`` steps. The loop is timed on a sample of
cells spread over all dimensions and extrapolated to the whole grid (said so in the output).

FLOP count (training steps only): one gradient of the network on a batch of B examples costs
``4 · B · P · d · 2m`` (forward pre-activations and the weight gradient, 2 flops per
multiply-add); SGD needs one per step, SAM two. "Useful" uses each cell's own d; "executed"
uses the padded d_max that the compiled program really multiplies.

Run: ``python benchmarks/bench_conv_relu.py [--grid quick|cpu] [--sample N] [--device cpu|gpu]``
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))


def numpy_train(data: dict, *, lr: float, rho: float, batch_size: int, steps: int, stride: int,
                seed: int, sam: bool) -> dict:
    """Plain numpy SGD / SAM (same-batch normalized ascent) on one conv-ReLU problem.

    ``data`` is :func:`sharp_theory.problems.conv_relu.as_numpy_problem` of the cell (same data
    and initialization as the compiled path; mini-batch order comes from numpy, not JAX).
    Records training loss, observed-label test error and max |ρ| every ``stride`` steps.
    """
    x, y, weights = data["x"], data["y"], data["W0"].copy()
    n, _, d = x.shape
    m = weights.shape[1]
    signs = np.array([1.0, -1.0])
    rng = np.random.default_rng(seed)

    def outputs(w, xb):
        pre = np.einsum("jrd,npd->njrp", w, xb)
        return (np.maximum(pre, 0).sum(axis=(2, 3)) / m) @ signs, pre

    def gradient(w, xb, yb):
        f, pre = outputs(w, xb)
        margin = yb * f
        # d/df log(1 + exp(-y f)) = -y sigmoid(-y f), averaged over the batch
        coef = -yb / (1.0 + np.exp(margin)) / len(yb)
        active = (pre > 0).astype(x.dtype)
        weight = coef[:, None, None, None] * active * signs[None, :, None, None] / m
        return np.einsum("njrp,npd->jrd", weight, xb)

    noise = x[:, 1:, :].reshape(-1, d)
    basis = np.concatenate([data["mu"][None] / np.linalg.norm(data["mu"]),
                            noise / np.linalg.norm(noise, axis=1, keepdims=True)])

    def record(w):
        f, _ = outputs(w, x)
        loss = np.mean(np.logaddexp(0.0, -y * f))
        coefficients, *_ = np.linalg.lstsq(basis.T, (w - data["W0"]).reshape(2 * m, d).T,
                                           rcond=None)
        rho = coefficients[1:] * np.linalg.norm(noise, axis=1)[:, None]
        masked = w.reshape(2 * m, d) * data["noise_mask"]
        gram = masked @ masked.T
        shift = 1e-12 * np.trace(gram) / (2 * m) + np.finfo(float).tiny
        factor = np.linalg.cholesky(gram + shift * np.eye(2 * m))  # same factor as the library
        clean = data["test_clean_labels"]
        signal_pre = clean[:, None] * (w.reshape(2 * m, d) @ data["mu"])[None]
        noise_pre = data["noise_std"] * np.einsum("tpk,lk->tpl", data["test_normals"], factor)
        act = np.maximum(signal_pre, 0) + np.maximum(noise_pre, 0).sum(axis=1)
        test_f = act.reshape(-1, 2, m).sum(axis=2) / m @ signs
        observed = np.where(data["test_flips"] > 0, -clean, clean)
        return loss, np.mean(observed * test_f <= 0), np.max(np.abs(rho))

    records = [record(weights)]
    per_epoch = n // batch_size
    order = rng.permutation(n)
    for step in range(steps):
        if step % per_epoch == 0:
            order = rng.permutation(n)
        index = order[(step % per_epoch) * batch_size:(step % per_epoch + 1) * batch_size]
        xb, yb = x[index], y[index]
        g = gradient(weights, xb, yb)
        if sam:
            norm = np.linalg.norm(g)
            g = gradient(weights + rho * g / max(norm, np.finfo(float).tiny), xb, yb)
        weights = weights - lr * g
        if (step + 1) % stride == 0 or step + 1 == steps:
            records.append(record(weights))
    return {"loss": np.array([r[0] for r in records]), "test_error": np.array([r[1] for r in records]),
            "max_rho": np.array([r[2] for r in records]), "W": weights}


def _timed(call) -> float:
    start = time.perf_counter()
    call()
    return time.perf_counter() - start


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--grid", choices=("quick", "cpu"), default="cpu")
    parser.add_argument("--sample", type=int, default=16, help="cells timed in the numpy loop")
    parser.add_argument("--device", choices=("cpu", "gpu"), default=None)
    args = parser.parse_args(argv)

    import jax

    import sharp_theory as st
    from sharp_theory.studies import phase_diagram as grid_module
    from sharp_theory.problems import conv_relu
    import machine
    GRIDS, optimizers_for = grid_module.PRESETS, grid_module.preset_optimizers

    spec = GRIDS[args.grid]
    optimizers = optimizers_for(spec)
    kwargs = dict(steps=spec["steps"], repeats=spec["repeats"], stride=spec["stride"],
                  tau_scaling=spec["tau_scaling"], n_train=spec["n_train"], device=args.device)
    dims, signals = np.asarray(spec["dims"]), np.asarray(spec["signals"])

    # Compiled grid recording the same three quantities as the loop below; the first call
    # compiles, a second call is timed warm. Then the lab's eight default observables, warm.
    from sharp_theory.measure import signal_noise
    matched = st.observables.all_of_params_and_problem(
        {"train_loss": conv_relu.training_loss,
         "test_error": conv_relu.observed_label_test_error,
         "max_rho": signal_noise.max_noise_coefficient})
    import os
    import resource

    def cpu_s():
        usage = resource.getrusage(resource.RUSAGE_SELF)
        return usage.ru_utime + usage.ru_stime

    load_before = os.getloadavg()[0]
    start, cpu = time.perf_counter(), cpu_s()
    result = grid_module.conv_relu_grid(dims, signals, optimizers, observe=matched, **kwargs)
    cold, cold_cpu = time.perf_counter() - start, cpu_s() - cpu
    start, cpu = time.perf_counter(), cpu_s()
    grid_module.conv_relu_grid(dims, signals, optimizers, observe=matched, **kwargs)
    warm, warm_cpu = time.perf_counter() - start, cpu_s() - cpu
    warm_result = grid_module.conv_relu_grid(dims, signals, optimizers, observe=matched, **kwargs)
    warm_again = min(warm, _timed(lambda: grid_module.conv_relu_grid(
        dims, signals, optimizers, observe=matched, **kwargs)))
    grid_module.conv_relu_grid(dims, signals, optimizers, **kwargs)
    warm_all_observables = _timed(lambda: grid_module.conv_relu_grid(dims, signals, optimizers,
                                                                      **kwargs))
    n_cells = result.config["n_cells"]
    # The same grid trained in weight space (engine "weights", each cell bit for bit st.run):
    # its time, and how far the default engine's records are from it.
    weights_kwargs = dict(kwargs, engine="weights")
    weights_result = grid_module.conv_relu_grid(dims, signals, optimizers, observe=matched,
                                                **weights_kwargs)
    weights_warm = _timed(lambda: grid_module.conv_relu_grid(dims, signals, optimizers,
                                                             observe=matched, **weights_kwargs))
    engine_difference = max(
        float(np.max(np.abs(warm_result.observed[o][k] - weights_result.observed[o][k])))
        for o in optimizers for k in weights_result.observed[o])

    # Plain numpy loop on a sample of cells spread over the dimensions, extrapolated.
    rng = np.random.default_rng(0)
    cell_dims = np.repeat(dims, signals.size * spec["repeats"])
    sample = np.sort(rng.choice(n_cells, size=min(args.sample, n_cells), replace=False))
    loop_seconds = []
    loop_cpu = cpu_s()
    for cell in sample:
        d_i, s_i, r_i = np.unravel_index(cell, (dims.size, signals.size, spec["repeats"]))
        problem = conv_relu.conv_relu_signal_noise(int(dims[d_i]), float(signals[s_i]),
                                                   seed=int(r_i), n_train=spec["n_train"])
        data = conv_relu.as_numpy_problem(problem)
        start = time.perf_counter()
        for name, optimizer in optimizers.items():
            rho = float(optimizer.hparams.get("rho", 0.0))
            if spec["tau_scaling"] == "paper" and "rho" in optimizer.hparams:
                rho *= float(grid_module.paper_tau_unit(dims[d_i], optimizer.batch_size, 10, 2, 1.0))
            numpy_train(data, lr=float(optimizer.hparams["lr"]), rho=rho,
                        batch_size=optimizer.batch_size, steps=spec["steps"],
                        stride=spec["stride"], seed=int(r_i), sam="rho" in optimizer.hparams)
        loop_seconds.append(time.perf_counter() - start)
    loop_cpu = cpu_s() - loop_cpu
    # Extrapolate with time ∝ a + b·d fitted on the sample (all runs of a cell together).
    design = np.stack([np.ones(sample.size), cell_dims[sample]], axis=1)
    coef, *_ = np.linalg.lstsq(design, np.asarray(loop_seconds), rcond=None)
    loop_total = float(np.sum(coef[0] + coef[1] * cell_dims))

    m, patches = 10, 2
    # Gradients per step as measured by a one-step run (info["grad_evals"]; SGD 1, SAM 2).
    probe = st.problems.conv_relu_signal_noise(int(dims.min()), 1.0, seed=0)
    grads_per_step = {name: float(st.run(probe, opt, steps=1, key=jax.random.key(0)).grad_evals)
                      for name, opt in optimizers.items()}
    useful = executed = 0.0
    # Executed work of the weights engine (cells padded to its ladder); the span engine's steps
    # do not multiply d-length vectors, so a FLOP rate means nothing for it.
    padded_dims = np.array([grid_module.padded_dimension(
        int(d), int(dims.max()), grid_module.LADDER_RATIO["weights"]) for d in cell_dims])
    for name, optimizer in optimizers.items():
        per_dim = 4 * optimizer.batch_size * patches * 2 * m * grads_per_step[name] * spec["steps"]
        useful += per_dim * float(np.sum(cell_dims))
        executed += per_dim * float(np.sum(padded_dims))
    peak = machine.describe()
    report = {
        "grid": args.grid, "cells": n_cells, "optimizers": list(optimizers),
        "steps": spec["steps"], "dims": [int(dims.min()), int(dims.max()), int(dims.size)],
        "signals": int(signals.size), "repeats": spec["repeats"],
        "devices": list(result.devices), "chunk_size": result.config["chunk_size"],
        "load_average_before": round(load_before, 2),
        "load_average_after": round(os.getloadavg()[0], 2),
        "engine": result.config["engine"],
        "compiled_cold_s": round(cold, 2), "compiled_warm_s": round(warm_again, 2),
        "weights_engine_warm_s": round(weights_warm, 2),
        "speedup_warm_weights_engine": round(loop_total / weights_warm, 1),
        "max_abs_difference_engines": engine_difference,
        "compiled_cold_cpu_s": round(cold_cpu, 2), "compiled_warm_cpu_s": round(warm_cpu, 2),
        "numpy_loop_sampled_cpu_s": round(loop_cpu, 2),
        "compiled_warm_all_8_observables_s": round(warm_all_observables, 2),
        "speedup_warm_all_8_observables": round(loop_total / warm_all_observables, 1),
        "numpy_loop_sampled_cells": int(sample.size),
        "numpy_loop_sampled_s": round(float(np.sum(loop_seconds)), 2),
        "numpy_loop_extrapolated_s": round(loop_total, 1),
        "speedup_cold": round(loop_total / cold, 1), "speedup_warm": round(loop_total / warm_again, 1),
        "useful_gflop": round(useful / 1e9, 2), "executed_gflop": round(executed / 1e9, 2),
        "weights_engine_useful_gflops_per_s": round(useful / weights_warm / 1e9, 3),
        "weights_engine_executed_gflops_per_s": round(executed / weights_warm / 1e9, 3),
        "peak_gflops_float64": round(peak["peak_flops_float64_jax"] / 1e9, 2),
        "weights_engine_fraction_of_peak_executed": round(
            executed / weights_warm / peak["peak_flops_float64_jax"], 4),
        "machine": {k: peak[k] for k in ("cpu", "cores", "platform")},
    }
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
