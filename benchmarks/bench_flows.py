"""Benchmark: predicting 10⁶ full-batch SAM steps with ``st.flow`` against running them (issue 28).

Two exact models near a valley of minimizers, where SAM bounces across the valley and drifts
slowly along it:

* f(xyᵀ) = ½‖xyᵀ − A‖²_F with A = abᵀ (3 × 2, rank 1), started near the valley with unequal
  factor norms; the drift moves the balancedness B = ½(‖x‖² − ‖y‖²) to 0.
* a diagonal linear net β = u⊙v (n = 10, d = 20, k = 2 sparse regression, ``uv`` start scale
  0.3, full batch); the drift moves ‖β‖₁ and the balancedness ½Σ(u² − v²).

For each model: ``st.run`` (SAM, 10⁶ steps, records every 10⁴) and ``st.flow`` with
``kind="slow-corrected"`` (the same records; solver tolerance rtol = 1e-7, atol = 1e-3·rtol, and
for the diagonal net also rtol = 1e-6), both timed warm (compiled once before; the shortest of 3
calls) and cold (the first call, with compilation), in one process; the ratio is run time / flow
time. The records must agree: the script prints the largest difference of the drifting quantity
between run and flow, and between the flow at each tolerance and at the first.

Run: ``.venv/bin/python benchmarks/bench_flows.py [--steps N]`` (prints a markdown block).

``--lr-to-zero`` measures accuracy instead (issue 28: errors as η → 0 at fixed ρ/η): SAM on
½(xy − 1/2)² (scalars) started 0.01 off the valley at x = 2, with ρ = η ∈ {0.1, 0.05, 0.025}
and horizons 2 000 (0.1/η)³ steps (the same drift in log B, which moves ∝ ηρ² per step); for
each η the largest gap in log B between the run and each slow flow (records after the first
10% of the horizon, where the run's oscillation has settled), as a fraction of the flow's
drift in log B.
"""
from __future__ import annotations

import argparse
import os
import time

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

import sharp_theory as st
from sharp_theory.observables import of_params


def outer_product_problem():
    a, b = np.array([1.0, 0.5, -0.5]), np.array([0.8, -0.6])
    target = jnp.asarray(np.outer(a, b))
    x0, y0 = 1.6 * a + np.array([0.02, 0.0, 0.0]), b / 1.6
    problem = st.problems.outer_product(lambda W: 0.5 * jnp.sum((W - target) ** 2), x0, y0)
    return problem, {"B": of_params(st.measure.balancedness)}


def diagonal_problem():
    problem = st.problems.diagonal_linear(n=10, n_test=10, d=20, k=2, seed=0, init_scale=0.3)
    observe = {"l1": of_params(lambda p: jnp.sum(jnp.abs(p["u"] * p["v"]))),
               "B": of_params(lambda p: 0.5 * jnp.sum(p["u"] ** 2 - p["v"] ** 2))}
    return problem, observe


def timed(function, repeats=1):
    """The result and the shortest of ``repeats`` wall times (the machine is shared)."""
    best = np.inf
    for _ in range(repeats):
        start = time.perf_counter()
        result = function()
        jax.block_until_ready(result.params)
        best = min(best, time.perf_counter() - start)
    return result, best


def bench(name, problem, observe, lr, rho, steps, stride, rtols=(1e-7,), valleys=("full",)):
    optimizer = st.optim.sam(lr=lr, rho=rho)
    key = jax.random.key(0)
    observe = {**observe, "w": of_params(lambda p: ravel_pytree(p)[0])}
    run = lambda: st.run(problem, optimizer, steps=steps, stride=stride, key=key, observe=observe)
    run_result, run_cold = timed(run)
    _, run_warm = timed(run, repeats=3)
    quantity = "l1" if "l1" in observe else "B"
    measured = np.asarray(run_result.observed[quantity])
    reference = None
    for valley in valleys:
        for rtol in rtols:
            flow = lambda: st.flow(problem, optimizer, steps=steps, stride=stride, key=key,
                                   observe=observe, kind="slow-corrected", rtol=rtol,
                                   atol=1e-3 * rtol, valley=valley)
            flow_result, flow_cold = timed(flow)
            _, flow_warm = timed(flow, repeats=3)
            predicted = np.asarray(flow_result.observed[quantity])
            weights = np.asarray(flow_result.observed["w"])
            if reference is None:
                reference = (predicted, weights)
            gap = float(np.max(np.abs(measured - predicted)))
            weight_gap = float(np.max(np.linalg.norm(weights - run_result.observed["w"], axis=1)))
            to_full = float(np.max(np.abs(predicted - reference[0])))
            to_full_w = float(np.max(np.linalg.norm(weights - reference[1], axis=1)))
            print(f"| {name}, {valley}, rtol {rtol:.0e} | {steps:.0e} | {run_warm:.2f} s "
                  f"({run_cold:.2f} s) | {flow_warm:.3f} s ({flow_cold:.2f} s) | "
                  f"{run_warm / flow_warm:.0f}× ({run_cold / flow_cold:.1f}×) | "
                  f"{int(flow_result.state['num_steps'])} | {quantity}: {measured[0]:.4g} → "
                  f"{measured[-1]:.4g} (run), {predicted[-1]:.4g} (flow); max gap {gap:.1e}, "
                  f"weights {weight_gap:.1e} | to the full flow at rtol {rtols[0]:.0e}: "
                  f"{to_full:.1e}, weights {to_full_w:.1e} | {run_result.status} / "
                  f"{flow_result.status} | load {' '.join(f'{x:.1f}' for x in os.getloadavg())} |",
                  flush=True)


def lr_to_zero(lrs=(0.1, 0.05, 0.025), rho_over_lr=1.0):
    problem = st.problems.outer_product(lambda W: 0.5 * jnp.sum((W - 0.5) ** 2),
                                        np.array([2.01]), np.array([0.25]))
    observe = {"B": of_params(st.measure.balancedness)}
    print("| η (ρ = η) | steps | ηλ | run's drift in log B | limit flow's gap / drift | "
          "corrected flow's gap / drift |")
    print("|---|---|---|---|---|---|")
    for lr in lrs:
        steps = int(round(2000 * (lrs[0] / lr) ** 3))
        stride = steps // 200
        optimizer = st.optim.sam(lr=lr, rho=rho_over_lr * lr)
        key = jax.random.key(0)
        run = st.run(problem, optimizer, steps=steps, stride=stride, key=key, observe=observe)
        log_run = np.log(np.asarray(run.observed["B"]))
        gaps = []
        for kind in ("slow", "slow-corrected"):
            traj = st.flow(problem, optimizer, steps=steps, stride=stride, key=key,
                           observe=observe, kind=kind)
            log_flow = np.log(np.asarray(traj.observed["B"]))
            gaps.append(np.max(np.abs(log_run - log_flow)[20:])
                        / abs(log_flow[-1] - log_flow[0]))
        lam = 2.01**2 + 0.25**2
        print(f"| {lr} | {steps} | {lr * lam:.3f} | {log_run[-1] - log_run[0]:.3f} | "
              f"{gaps[0]:.2e} | {gaps[1]:.2e} |", flush=True)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=1_000_000)
    parser.add_argument("--lr-to-zero", action="store_true")
    args = parser.parse_args()
    if args.lr_to_zero:
        lr_to_zero()
        return
    stride = max(1, args.steps // 100)
    print("| model, valley, tolerance | steps | run warm (cold) | flow warm (cold) | ratio warm "
          "(cold) | solver steps | drift: run, flow, distance | flow − full flow | status run / "
          "flow | load |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    problem, observe = outer_product_problem()
    bench("f(xyᵀ), 3 × 2", problem, observe, lr=0.05, rho=0.01, steps=args.steps, stride=stride,
          valleys=("full", "reduced"))
    problem, observe = diagonal_problem()
    bench("diagonal net, d = 20", problem, observe, lr=0.05, rho=0.01, steps=args.steps,
          stride=stride, rtols=(1e-7, 1e-6), valleys=("full", "reduced"))

if __name__ == "__main__":
    main()
