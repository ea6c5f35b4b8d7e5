"""Benchmark: the diagonal-nets ρ-grid figure as one ``st.sweep`` against two per-run numpy loops.

The workload (Andriushchenko & Flammarion 2022, Sec. 4; the lab's first figure): n = 20, d = 30,
k = 3 sparse regression (the authors' data), β = u⊙v from u = 0.1·1, v = 0, η = 15/d, 10⁴ steps,
float64, 12 values of ρ, optimizers GD, unnormalized n-SAM and unnormalized 1-SAM. GD does not
depend on ρ, so every implementation runs it once: 1 + 12 + 12 = 25 trajectories.

* ``st.sweep``: all 25 trajectories in one compiled, vmapped call; the final train / test loss is
  recorded (stride = steps), as in the loops. Timed warm (median of 5) and cold (with compilation).
  By default the sweep splits each optimizer's lanes over one JAX CPU device per core (importing
  sharp_theory creates them); the same sweep with ``shard=False`` (everything on one core) is
  timed too, so both ratios are reported.
* "authors' style": one trajectory at a time, a Python loop over steps with numpy, and for 1-SAM a
  Python loop over the n examples inside each step (the structure of the authors' notebook code;
  written here from the update rules, ρ converted to their convention: ρ_theirs = ρ_ours/2).
* "vectorized": one trajectory at a time, a Python loop over steps, each step fully vectorized in
  numpy (1-SAM's n ascent points as one (n, d) array).

All three must give the same final (u, v) to 1e-9 (max abs difference, float64).

FLOPs are counted by hand per step from the vectorized formulas (multiply and add = 1 each):
  GD     4nd + n + 8d    (β, r = Xβ − y, g = Xᵀr/n, two updates)
  n-SAM  8nd + 2n + 16d  (two gradients, ascent point, update)
  1-SAM  17nd + 2n + 7d  (r; G = r⊙X; n ascent points U, V (6nd); residuals there (3nd);
                          G' (nd); the two averaged gradients (4nd); update)
Achieved FLOP/s = total FLOPs / wall time, compared with the machine's practical peak
(``benchmarks/machine.py``: best large-matmul rate).

Run: ``.venv/bin/python benchmarks/bench_diagonal_nets.py [--authors-subset K]`` (prints a markdown
block). ``--authors-subset K`` times the authors'-style loop on K of the 12 ρ values per SAM
variant (all final iterates of those runs are still checked) and extrapolates linearly.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

import jax
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import machine  # noqa: E402

import sharp_theory as st  # noqa: E402
from sharp_theory.problems.diagonal import OBSERVABLES, diagonal_linear  # noqa: E402

N, N_TEST, D, K = 20, 1000, 30, 3
STEPS = 10_000
LR = 15 / D
INIT_SCALE = 0.1
RHOS = np.geomspace(1e-3, 0.3, 12)


def flops_per_step(kind: str, n: int = N, d: int = D) -> int:
    return {"gd": 4 * n * d + n + 8 * d, "n-sam": 8 * n * d + 2 * n + 16 * d,
            "1-sam": 17 * n * d + 2 * n + 7 * d}[kind]


# --- the two per-run numpy baselines ---------------------------------------------------------------

def authors_style(kind, X, y, lr, u, v, steps, rho_ours):
    """One run, loops as in the authors' notebook (a Python loop over examples for 1-SAM)."""
    n = X.shape[0]
    rho = rho_ours / 2.0 if kind == "1-sam" else rho_ours  # their 1-SAM ascent uses 2ρ r_k x_k
    for _ in range(steps):
        if kind == "gd":
            correlation = X.T @ (X @ (u * v) - y)
            u, v = u - lr * (correlation * v) / n, v - lr * (correlation * u) / n
        elif kind == "n-sam":
            correlation = X.T @ (X @ (u * v) - y)
            ascent_u, ascent_v = u + rho * (correlation * v) / n, v + rho * (correlation * u) / n
            correlation = X.T @ (X @ (ascent_u * ascent_v) - y)
            u, v = u - lr * (correlation * ascent_v) / n, v - lr * (correlation * ascent_u) / n
        else:
            residuals = X @ (u * v) - y
            step_u, step_v = np.zeros_like(u), np.zeros_like(v)
            for k in range(n):  # one ascent point per example, in a Python loop
                ascent_u = u + 2 * rho * residuals[k] * X[k] * v
                ascent_v = v + 2 * rho * residuals[k] * X[k] * u
                residual_there = (X[k] * ascent_u * ascent_v).sum() - y[k]
                step_u += residual_there * ascent_v * X[k] / n
                step_v += residual_there * ascent_u * X[k] / n
            u, v = u - lr * step_u, v - lr * step_v
    return u, v


def vectorized(kind, X, y, lr, u, v, steps, rho):
    """One run, every step vectorized in numpy (our ρ convention)."""
    n = X.shape[0]
    for _ in range(steps):
        r = X @ (u * v) - y
        if kind == "gd":
            g = X.T @ r / n
            u, v = u - lr * (g * v), v - lr * (g * u)
        elif kind == "n-sam":
            g = X.T @ r / n
            u_a, v_a = u + rho * (g * v), v + rho * (g * u)
            g_a = X.T @ (X @ (u_a * v_a) - y) / n
            u, v = u - lr * (g_a * v_a), v - lr * (g_a * u_a)
        else:
            G = r[:, None] * X                        # per-example coefficients g_k
            U, V = u + rho * G * v, v + rho * G * u   # each example's ascent point
            G_a = (np.sum(X * U * V, axis=1) - y)[:, None] * X
            u, v = u - lr * np.mean(G_a * V, axis=0), v - lr * np.mean(G_a * U, axis=0)
    return u, v


# --- the benchmark ------------------------------------------------------------------------------

def run_loop(loop, kinds_rhos, X, y, u0, v0, steps):
    finals, seconds = {}, {}
    for kind, rho in kinds_rhos:
        start = time.perf_counter()
        finals[(kind, rho)] = loop(kind, X, y, LR, u0.copy(), v0.copy(), steps, rho)
        seconds[(kind, rho)] = time.perf_counter() - start
    return finals, seconds


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--authors-subset", type=int, default=len(RHOS),
                        help="time the authors'-style loop on this many rho values per SAM variant")
    parser.add_argument("--steps", type=int, default=STEPS)
    args = parser.parse_args()
    steps = args.steps
    load_before = os.getloadavg()[0]

    problem = diagonal_linear(N, N_TEST, D, K, 0, init_scale=INIT_SCALE)
    X, y = np.asarray(problem.examples["x"]), np.asarray(problem.examples["y"])
    u0, v0 = np.asarray(problem.params0["u"]), np.asarray(problem.params0["v"])
    optimizers = {"gd": st.optim.gd(LR), "n-sam": st.optim.usam(LR, 0.1),
                  "1-sam": st.optim.usam(LR, 0.1, m=1)}
    observe = {"train_loss": OBSERVABLES["train_loss"], "test_loss": OBSERVABLES["test_loss"]}

    def sweep(shard=True):
        result = st.sweep(problem, optimizers, steps=steps, grid={"rho": RHOS}, observe=observe,
                          stride=steps, shard=shard)
        jax.block_until_ready(result["1-sam"].params)
        return result

    def timed(shard):
        start = time.perf_counter()
        result = sweep(shard)
        cold = time.perf_counter() - start
        warm_times = []
        for _ in range(5):
            start = time.perf_counter()
            result = sweep(shard)
            warm_times.append(time.perf_counter() - start)
        return result, cold, statistics.median(warm_times)

    result_one_core, cold_one_core, warm_one_core = timed(False)
    result, cold, warm = timed(True)
    mesh = st.dynamics.lane_mesh(len(RHOS))
    n_devices = 1 if mesh is None else mesh.devices.size

    runs = [("gd", 0.0)] + [(kind, float(rho)) for kind in ("n-sam", "1-sam") for rho in RHOS]
    flops = sum(flops_per_step(kind) for kind, _ in runs) * steps

    vec_finals, vec_seconds = run_loop(vectorized, runs, X, y, u0, v0, steps)
    subset = max(1, min(args.authors_subset, len(RHOS)))
    chosen = [("gd", 0.0)] + [(kind, float(rho)) for kind in ("n-sam", "1-sam")
                              for rho in RHOS[np.linspace(0, len(RHOS) - 1, subset).round().astype(int)]]
    auth_finals, auth_seconds = run_loop(authors_style, chosen, X, y, u0, v0, steps)
    # Extrapolate per kind: mean seconds per run x number of runs of that kind.
    authors_total = 0.0
    for kind in ("gd", "n-sam", "1-sam"):
        timed = [s for (k, _), s in auth_seconds.items() if k == kind]
        authors_total += statistics.mean(timed) * sum(1 for k, _ in runs if k == kind)
    vectorized_total = sum(vec_seconds.values())

    def ours(kind, rho):
        trajectory = result[kind]
        index = 0 if kind == "gd" else int(np.argmin(np.abs(RHOS - rho)))
        return (np.asarray(trajectory.params["u"])[index, 0], np.asarray(trajectory.params["v"])[index, 0])

    def max_difference(finals):
        return max(float(np.max(np.abs(np.concatenate(ours(*run)) - np.concatenate(final))))
                   for run, final in finals.items())

    diff_vec, diff_auth = max_difference(vec_finals), max_difference(auth_finals)
    diff_one_core = max(float(np.max(np.abs(np.asarray(result[k].params[p]) -
                                            np.asarray(result_one_core[k].params[p]))))
                        for k in optimizers for p in ("u", "v"))
    described = machine.describe()
    peak = described["peak_flops_float64_numpy"]
    report = {
        "machine": described, "steps": steps, "runs": len(runs), "rhos": RHOS.tolist(),
        "sweep_warm_s": warm, "sweep_cold_s": cold, "sweep_devices": n_devices,
        "sweep_one_core_warm_s": warm_one_core, "sweep_one_core_cold_s": cold_one_core,
        "max_abs_diff_sharded_vs_one_core": diff_one_core, "vectorized_s": vectorized_total,
        "authors_style_s": authors_total, "authors_style_timed_runs": len(chosen),
        "authors_style_extrapolated": len(chosen) < len(runs),
        "speedup_vs_authors_style": authors_total / warm, "speedup_vs_vectorized": vectorized_total / warm,
        "max_abs_diff_vs_vectorized": diff_vec, "max_abs_diff_vs_authors_style": diff_auth,
        "total_flops": flops, "sweep_flops_per_s": flops / warm,
        "vectorized_flops_per_s": flops / vectorized_total,
        "authors_style_flops_per_s": flops / authors_total, "peak_float64_flops_per_s": peak,
    }
    print(json.dumps(report, indent=2))
    ok = diff_vec <= 1e-9 and diff_auth <= 1e-9
    note = (f"timed on {len(chosen)} of {len(runs)} runs and extrapolated per optimizer"
            if report["authors_style_extrapolated"] else "all runs timed")
    print(f"""
## Diagonal linear networks (issue 3)

`benchmarks/bench_diagonal_nets.py`: the ρ-grid figure of the diagonal-nets lab — n = 20, d = 30,
{len(RHOS)} values of ρ, GD + unnormalized n-SAM + unnormalized 1-SAM ({len(runs)} trajectories;
GD is ρ-independent and run once), {steps} steps, float64 — as one `st.sweep` vs two per-run numpy
loops. Machine: {described['cpu']}, {described['cores']} cores, load average before the run
{load_before:.2f}.

| implementation | wall time | vectorized loop / it | authors' loop / it | FLOP/s | of float64 peak |
|---|---|---|---|---|---|
| `st.sweep` on {n_devices} CPU device(s), warm (median of 5) | {warm:.3f} s | {vectorized_total / warm:.0f}× | {authors_total / warm:.0f}× | {flops / warm:.3g} | {flops / warm / peak:.1%} |
| `st.sweep` on {n_devices} CPU device(s), cold (with compilation) | {cold:.2f} s | | | | |
| `st.sweep(shard=False)`, one core, warm | {warm_one_core:.3f} s | {vectorized_total / warm_one_core:.0f}× | {authors_total / warm_one_core:.0f}× | {flops / warm_one_core:.3g} | {flops / warm_one_core / peak:.1%} |
| `st.sweep(shard=False)`, one core, cold | {cold_one_core:.2f} s | | | | |
| numpy, vectorized per step | {vectorized_total:.1f} s | 1 | | {flops / vectorized_total:.3g} | {flops / vectorized_total / peak:.2%} |
| numpy, authors' style (loop over examples) | {authors_total:.1f} s ({note}) | | 1 | {flops / authors_total:.3g} | {flops / authors_total / peak:.3%} |

Same numbers: max |Δ(u, v)| vs vectorized {diff_vec:.1e}, vs authors' style {diff_auth:.1e}
({'OK, <= 1e-9' if ok else 'ABOVE 1e-9'}); sharded vs one-core sweep {diff_one_core:.1e}. Useful FLOPs counted by hand ({flops:.3g} in total; see the
script's docstring); peak = best numpy float64 matmul rate {peak:.3g} FLOP/s.
""")


if __name__ == "__main__":
    main()
