"""GPU timings in one bounded run: the paper-size conv-ReLU grid, the CPU-preset grid, and the
balancedness and diagonal-nets sweeps, each on JAX's default platform (run by benchmarks/gpu.sh).

Everything is written to ``--out`` (JSON) after each part, so a run stopped by its time limit
still leaves the parts it finished. The paper grid (50 × 50 ‖μ‖ × 10 repeats × SGD and SAM, d up
to 10⁴, 200 steps) is computed chunk by chunk until its budget is spent; chunks done, cells per
second and the extrapolated total are reported (``complete`` says whether it finished).

``--smoke`` runs every part at toy sizes on whatever JAX finds (CPU here): it checks the script,
not the hardware (tests/test_benchmarks.py runs it).

Run: ``python benchmarks/bench_gpu.py --out gpu.json [--budget-s 420] [--smoke]``
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

# Seconds of the whole budget given to each part (the rest is start-up and slack).
SHARES = {"conv_relu_paper": 0.55, "conv_relu_cpu_preset": 0.15, "balancedness_sweep": 0.1,
          "diagonal_nets_sweep": 0.1}


def write(path: Path, report: dict) -> None:
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(json.dumps(report, indent=1, default=str))
    os.replace(temporary, path)


def grid_until(spec: dict, budget_s: float, *, smoke: bool) -> dict:
    """The preset ``spec``'s conv-ReLU grid, chunk by chunk, until done or ``budget_s`` is spent."""
    from sharp_theory.studies import phase_diagram

    kwargs = dict(steps=spec["steps"], repeats=spec["repeats"], stride=spec["stride"],
                  tau_scaling=spec["tau_scaling"], n_train=spec["n_train"], progress=False)
    if smoke:
        kwargs["chunk_size"] = 4
    optimizers = phase_diagram.preset_optimizers(spec)
    calls = []
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bench-gpu-grid-") as folder:
        while True:
            start = time.perf_counter()
            result = phase_diagram.conv_relu_grid(spec["dims"], spec["signals"], optimizers,
                                                  checkpoint_dir=folder, max_new_chunks=1, **kwargs)
            calls.append(round(time.perf_counter() - start, 3))
            done = len(list(Path(folder).glob("chunk_*.npz")))
            if result.complete or time.perf_counter() - started > budget_s:
                break
    n_chunks, n_cells = result.config["n_chunks"], result.config["n_cells"]
    chunk_size = result.config["chunk_size"]
    # The first call compiles; later calls are chunks of other ladder sizes (some compile too).
    elapsed = float(np.sum(calls))
    steady = calls[1:] or calls
    per_chunk = float(np.median(steady))
    return {"cells": n_cells, "optimizers": len(optimizers), "steps": spec["steps"],
            "dims": [int(min(spec["dims"])), int(max(spec["dims"])), len(spec["dims"])],
            "chunk_size": chunk_size, "chunks": n_chunks, "chunks_done": done,
            "complete": bool(result.complete), "seconds": round(elapsed, 2),
            "first_call_s": calls[0], "median_chunk_s": round(per_chunk, 3),
            "cells_per_s": round(done * chunk_size / elapsed, 1) if elapsed else None,
            "extrapolated_total_s": round(calls[0] + per_chunk * (n_chunks - 1), 1),
            "devices": list(result.devices)}


def balancedness_sweep(smoke: bool) -> dict:
    import jax

    import bench_balancedness as bench
    import sharp_theory as st

    steps = 1_000 if smoke else bench.STEPS
    problem = st.problems.op_toy()
    named = bench.optimizers(0.05)

    def once(levels):
        start = time.perf_counter()
        result = st.sweep(problem, named, steps=steps, seeds=bench.SEEDS, grid={"noise": levels},
                          observe={"B": st.observables.of_params(bench.final_balancedness)},
                          stride=steps)
        jax.block_until_ready([result[name].params for name in named])
        return time.perf_counter() - start

    cold = once(bench.NOISE_LEVELS)
    warm = once([0.1, 0.3, 0.7, 0.9])
    return {"runs": len(named) * len(bench.NOISE_LEVELS) * bench.SEEDS, "steps": steps,
            "cold_s": round(cold, 3), "warm_s": round(warm, 3)}


def diagonal_nets_sweep(smoke: bool) -> dict:
    import jax

    import bench_diagonal_nets as bench
    import sharp_theory as st
    from sharp_theory.problems.diagonal import OBSERVABLES, diagonal_linear

    steps = 500 if smoke else bench.STEPS
    problem = diagonal_linear(bench.N, bench.N_TEST, bench.D, bench.K, 0,
                              init_scale=bench.INIT_SCALE)
    optimizers = {"gd": st.optim.gd(bench.LR), "n-sam": st.optim.usam(bench.LR, 0.1),
                  "1-sam": st.optim.usam(bench.LR, 0.1, m=1)}
    observe = {"train_loss": OBSERVABLES["train_loss"], "test_loss": OBSERVABLES["test_loss"]}

    def once():
        start = time.perf_counter()
        result = st.sweep(problem, optimizers, steps=steps, grid={"rho": bench.RHOS},
                          observe=observe, stride=steps)
        jax.block_until_ready(result["1-sam"].params)
        return time.perf_counter() - start

    cold = once()
    warm = sorted(once() for _ in range(3))[1]
    return {"runs": 25, "steps": steps, "cold_s": round(cold, 3), "warm_s": round(warm, 3)}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="JSON file for the timings")
    parser.add_argument("--budget-s", type=float, default=420.0,
                        help="seconds for all parts together (default 420)")
    parser.add_argument("--smoke", action="store_true",
                        help="toy sizes on any platform: checks the script, not the hardware")
    args = parser.parse_args(argv)
    began = time.perf_counter()

    import jax

    import sharp_theory as st  # noqa: F401  (float64, compile cache)
    from sharp_theory.studies import phase_diagram

    report = {"smoke": args.smoke, "budget_s": args.budget_s, "python": platform.python_version(),
              "jax": jax.__version__, "backend": jax.default_backend(),
              "devices": [str(d) for d in jax.devices()],
              "device_kind": jax.devices()[0].device_kind, "x64": bool(jax.config.jax_enable_x64),
              "compile_cache": jax.config.jax_compilation_cache_dir, "parts": {}, "errors": {}}
    write(args.out, report)
    presets = dict(phase_diagram.PRESETS)
    if args.smoke:
        tiny = dict(presets["quick"], dims=[20, 40], signals=[1.0, 2.0], steps=20, stride=10)
        presets = {"paper": tiny, "cpu": tiny}
    parts = {
        "conv_relu_paper": lambda budget: grid_until(presets["paper"], budget, smoke=args.smoke),
        "conv_relu_cpu_preset": lambda budget: grid_until(presets["cpu"], budget, smoke=args.smoke),
        "balancedness_sweep": lambda budget: balancedness_sweep(args.smoke),
        "diagonal_nets_sweep": lambda budget: diagonal_nets_sweep(args.smoke),
    }
    for name, part in parts.items():
        start = time.perf_counter()
        try:
            report["parts"][name] = part(SHARES[name] * args.budget_s)
        except Exception as error:  # a failed part is recorded; the others still run
            report["errors"][name] = f"{type(error).__name__}: {error}"[:2000]
        report["parts"].setdefault(name, {})["wall_s"] = round(time.perf_counter() - start, 2)
        report["elapsed_s"] = round(time.perf_counter() - began, 2)
        write(args.out, report)
        print(name, json.dumps(report["parts"][name]), flush=True)
    return 1 if report["errors"] else 0


if __name__ == "__main__":
    raise SystemExit(main())
