"""The machine a benchmark ran on, and its measured peak FLOP/s.

"Peak" here is the practical peak: the best rate of a large dense matrix multiply (numpy's BLAS
and XLA), float64 and float32, on all cores. Benchmarks report achieved FLOP/s as a fraction of
it. Run ``python benchmarks/machine.py`` to print it.
"""
from __future__ import annotations

import json
import os
import platform
import time

import numpy as np


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def matmul_peak(dtype=np.float64, size: int = 2048, repeats: int = 5) -> float:
    """Best FLOP/s of an n x n matmul (2 n^3 flops) over ``repeats`` runs (numpy BLAS)."""
    rng = np.random.default_rng(0)
    a = rng.standard_normal((size, size)).astype(dtype)
    b = rng.standard_normal((size, size)).astype(dtype)
    a @ b
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - start)
    return 2.0 * size**3 / best


def jax_matmul_peak(dtype="float64", size: int = 2048, repeats: int = 5) -> float:
    import jax
    import jax.numpy as jnp

    jax.config.update("jax_enable_x64", True)
    a = jnp.ones((size, size), dtype=dtype)
    f = jax.jit(lambda x: x @ x)
    f(a).block_until_ready()
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        f(a).block_until_ready()
        best = min(best, time.perf_counter() - start)
    return 2.0 * size**3 / best


def describe() -> dict:
    return {"cpu": cpu_model(), "cores": os.cpu_count(), "platform": platform.platform(),
            "peak_flops_float64_numpy": matmul_peak(np.float64),
            "peak_flops_float32_numpy": matmul_peak(np.float32),
            "peak_flops_float64_jax": jax_matmul_peak("float64")}


if __name__ == "__main__":
    print(json.dumps(describe(), indent=2))
