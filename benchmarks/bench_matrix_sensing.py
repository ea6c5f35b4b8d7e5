"""Time per SAM step on matrix sensing with the scaled Hessian trace observed every `stride` steps.

Question: what does observing str (the Ding et al. 2022 flatness measure) cost along a SAM
trajectory, and where does the dense Hessian stop being the right way to get it?

For d1 = d2 = d in (8, 16, 32), k = 4, r = 2, Gaussian sensing with m = 3 r (d1 + d2), we time
``st.run`` of SAM (compiled once, timed on a second call) with:

- ``none``: no observable (the cost of SAM itself, 2 gradients per step);
- ``closed``: str = 2(‖D1 L‖² + ‖D2 R‖²) (exact everywhere; O(d² k) per record);
- ``hutch16``: block-wise Hutchinson with 16 probes per block (32 HVPs per record);
- ``dense``: str from the dense autodiff Hessian (n = k(d1 + d2) HVPs, O(n²) memory per record).

Run: ``.venv/bin/python benchmarks/bench_matrix_sensing.py [--steps 2000] [--stride 10]``.
Prints a markdown table (ms per step, and the one-off cost of one str evaluation).
"""
from __future__ import annotations

import argparse
import time

import jax
import jax.numpy as jnp

import sharp_theory as st
from sharp_theory.measure import low_rank as lm


def hutchinson_str(params, problem):
    """Block-wise Hutchinson str with 16 probes per block (fixed probe key: a cost benchmark)."""
    loss = lambda p: problem.loss(p, problem.examples)  # noqa: E731
    return lm.scaled_hessian_trace_hutchinson(loss, params, jax.random.key(0), probes=16)


OBSERVERS = {"none": None, "closed": lm.sensing_scaled_trace, "hutch16": hutchinson_str,
             "dense": lm.sensing_scaled_trace_dense}


def best_time(fn, repeats: int = 5) -> float:
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(fn())
        best = min(best, time.perf_counter() - start)
    return best


def measure(d: int, k: int, steps: int, stride: int) -> dict:
    problem = st.problems.matrix_sensing(d, rank=2, k=k, operator="gaussian",
                                         measurements=3 * 2 * 2 * d, seed=0, init_scale=0.3)
    optimizer = st.optim.sam(0.01, 0.05)
    row = {"d": d, "k": k, "n": k * 2 * d, "m": 3 * 2 * 2 * d}
    for name, observer in OBSERVERS.items():
        observe = ({"loss": st.observables.of_params_and_problem(lm.training_loss)} if observer is None
                   else {"str": st.observables.of_params_and_problem(observer)})

        def go():
            return st.run(problem, optimizer, steps=steps, key=jax.random.key(0), observe=observe,
                          stride=stride).params

        go()  # compile
        row[f"{name}_ms_per_step"] = 1e3 * best_time(go) / steps
    for name in ("closed", "hutch16", "dense"):
        single = jax.jit(OBSERVERS[name])
        jax.block_until_ready(single(problem.params0, problem))
        row[f"{name}_ms_per_eval"] = 1e3 * best_time(lambda: single(problem.params0, problem), 10)
    return row


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--stride", type=int, default=10)
    parser.add_argument("--k", type=int, default=4)
    parser.add_argument("--sizes", type=int, nargs="+", default=[8, 16, 32])
    args = parser.parse_args()
    rows = [measure(d, args.k, args.steps, args.stride) for d in args.sizes]
    print(f"SAM steps={args.steps}, stride={args.stride}, float64, {jax.devices()[0]}")
    print("| d | n | m | SAM only | + closed | + Hutchinson 16 | + dense Hessian | "
          "one str: closed / Hutchinson / dense |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['d']} | {r['n']} | {r['m']} | {r['none_ms_per_step']:.4f} | "
              f"{r['closed_ms_per_step']:.4f} | {r['hutch16_ms_per_step']:.4f} | "
              f"{r['dense_ms_per_step']:.4f} | {r['closed_ms_per_eval']:.3f} / "
              f"{r['hutch16_ms_per_eval']:.3f} / {r['dense_ms_per_eval']:.3f} |")
    print("(ms per SAM step including the observation every stride steps; last column: ms for "
          "one evaluation at the initial point)")


if __name__ == "__main__":
    main()
