"""λ_max of a Hessian: matrix-free Lanczos vs dense ``eigh`` as the parameter count grows.

The model is a one-hidden-layer tanh network ``f(x) = v·tanh(Wx)`` on 64 fixed Gaussian inputs
in 10 dimensions with an MSE loss; the width sets the parameter count (11 per hidden unit). For
each size we time, after compilation, (a) the dense path: ``jax.hessian`` + ``eigvalsh`` and
(b) the matrix-free path: Lanczos with full reorthogonalization on Hessian-vector products
(``st.measure.lambda_max(..., method="matrix_free")``), and report the relative error of (b)
against (a) where the dense Hessian fits (else against a 200-step Lanczos reference with its
residual bound). Run: ``python benchmarks/bench_spectrum.py [--max-params 100000]``.
"""
from __future__ import annotations

import argparse
import json
import os
import time

import jax
import jax.numpy as jnp
import numpy as np

import sharp_theory as st

INPUTS, EXAMPLES = 10, 64


def network_loss(params, batch):
    prediction = jnp.tanh(batch["x"] @ params["W"]) @ params["v"]
    return 0.5 * jnp.mean((prediction - batch["y"]) ** 2)


def make_problem(width: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    data = {"x": rng.standard_normal((EXAMPLES, INPUTS)), "y": rng.standard_normal(EXAMPLES)}
    params = {"W": jnp.asarray(rng.standard_normal((INPUTS, width)) / np.sqrt(INPUTS)),
              "v": jnp.asarray(rng.standard_normal(width) / np.sqrt(width))}
    return st.problems.from_loss(network_loss, params, data=data)


def best_time(function, argument, repeats: int) -> float:
    jax.block_until_ready(function(argument))  # compile
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(function(argument))
        best = min(best, time.perf_counter() - start)
    return best


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-params", type=int, default=100_000)
    parser.add_argument("--max-dense", type=int, default=6_000,
                        help="largest parameter count for the dense path (memory/time)")
    parser.add_argument("--lanczos-steps", type=int, default=st.measure.spectrum.DEFAULT_LANCZOS_STEPS)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args(argv)

    widths = [w for w in (3, 9, 18, 27, 45, 91, 181, 364, 909, 1818, 4545, 9090)
              if 11 * w <= args.max_params]
    rows = []
    for width in widths:
        problem = make_problem(width)
        fn = st.measure.full_batch_loss(problem)
        n = st.measure.parameter_count(problem.params0)
        steps = min(n, args.lanczos_steps)
        lanczos = jax.jit(lambda p, fn=fn, steps=steps: st.measure.lambda_max(
            fn, p, method="matrix_free", num_iterations=steps))
        row = {"parameters": n, "lanczos_steps": steps,
               "lanczos_s": best_time(lanczos, problem.params0, args.repeats)}
        estimate = float(lanczos(problem.params0))
        if n <= args.max_dense:
            dense = jax.jit(lambda p, fn=fn: st.measure.lambda_max(fn, p, method="dense"))
            row["dense_s"] = best_time(dense, problem.params0, args.repeats)
            reference = float(dense(problem.params0))
            row["reference"] = "dense eigh"
        else:
            pairs = st.measure.top_hessian_eigenpairs(fn, problem.params0, 1, method="matrix_free",
                                                      num_iterations=min(n, 200))
            reference = float(pairs.values[0])
            row["reference"] = f"Lanczos 200 steps (residual {float(pairs.residual_norms[0]):.1e})"
        row["lambda_max"] = reference
        row["relative_error"] = abs(estimate - reference) / abs(reference)
        rows.append(row)
        print(json.dumps(row), flush=True)

    # the smallest size from which on the matrix-free path is faster at every measured size
    timed = [r for r in rows if "dense_s" in r]
    crossover = next((r["parameters"] for i, r in enumerate(timed)
                      if all(s["lanczos_s"] < s["dense_s"] for s in timed[i:])), None)
    print(json.dumps({"crossover_parameters": crossover, "load_average": os.getloadavg(),
                      "cpu_count": os.cpu_count(), "devices": [str(d) for d in jax.devices()],
                      "jax": jax.__version__}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
