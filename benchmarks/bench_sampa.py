"""Issue 30: SAMPa's two gradients on two devices against SAM's two serial gradients.

SAMPa (Xie, Pethick, Cevher 2024) makes SAM's two gradients independent of each other, so they
can run at once on two devices: one step in one gradient's wall time. This script times, on a
model where a gradient dominates the step (an MLP 256-512-512-10, 400k parameters, float64,
mini-batch of 512), in one process:

- one plain gradient step (SGD) on one device;
- a SAM step (two gradients one after the other) on one device;
- a SAMPa step on one device (its pair of gradients as one vmapped call, `st.optim.sampa`);
- a SAMPa step on two devices: the pair split over a two-device mesh with `jax.shard_map`, one
  gradient per device;
- a SAM step on two devices, data-parallel: each gradient's mini-batch split over the devices and
  the halves' gradients averaged (what SAM itself can do with two devices).

Before timing, each two-device step is checked against the library's one-device step
(`st.optim.sampa`, `st.optim.sam`): the same parameters after 3 steps, to rounding.

The two devices are host (CPU) devices, forced with
``XLA_FLAGS=--xla_force_host_platform_device_count=2`` in this process before JAX is imported.
Two configurations run in two child processes, because XLA reads its threading flags once:
``all`` (XLA's defaults: every device's program may use every core's threads, so a one-device
gradient already uses both cores) and ``one`` (``--xla_cpu_multi_thread_eigen=false`` and one
intra-op thread: one core per device, the picture of one accelerator per device).

    .venv/bin/python benchmarks/bench_sampa.py [--repeats 20]
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

WIDTHS = (256, 512, 512, 10)
BATCH = 512
LR, RHO = 0.05, 0.05
FLAGS = {"all": "--xla_force_host_platform_device_count=2",
         "one": "--xla_force_host_platform_device_count=2 --xla_cpu_multi_thread_eigen=false "
                "intra_op_parallelism_threads=1"}


def measure(repeats: int) -> dict:
    import jax
    import jax.numpy as jnp
    import numpy as np
    from jax.sharding import Mesh, NamedSharding, PartitionSpec

    import sharp_theory as st

    devices = jax.devices()
    assert len(devices) == 2, devices
    keys = jax.random.split(jax.random.key(0), len(WIDTHS) + 1)
    params = [{"w": jax.random.normal(k, (a, b)) / np.sqrt(a), "b": jnp.zeros(b)}
              for k, a, b in zip(keys, WIDTHS[:-1], WIDTHS[1:])]
    x = jax.random.normal(keys[-1], (BATCH, WIDTHS[0]))
    labels = jnp.arange(BATCH) % WIDTHS[-1]
    batch = {"x": x, "y": labels}

    def loss(params, batch):
        h = batch["x"]
        for layer in params[:-1]:
            h = jnp.tanh(h @ layer["w"] + layer["b"])
        logits = h @ params[-1]["w"] + params[-1]["b"]
        return -jnp.mean(jax.nn.log_softmax(logits)[jnp.arange(len(batch["y"])), batch["y"]])

    mesh = Mesh(np.asarray(devices), ("pair",))
    pair = PartitionSpec("pair")
    key = jax.random.key(1)

    def library_step(optimizer):
        return jax.jit(lambda w, state: optimizer.step(w, state, loss, batch, optimizer.hparams, key)[:2])

    sgd, sam, sampa = st.optim.gd(LR), st.optim.sam(LR, RHO), st.optim.sampa(LR, RHO)
    steps = {"sgd (1 gradient, 1 device)": (library_step(sgd), sgd.init(params)),
             "sam (2 serial gradients, 1 device)": (library_step(sam), sam.init(params)),
             "sampa (2 gradients vmapped, 1 device)": (library_step(sampa), sampa.init(params))}

    # SAMPa on two devices: the same update as st.optim.sampa (λ = 0, plain base), with the pair
    # of independent gradients split over the mesh, one gradient per device.
    pair_gradient = jax.shard_map(lambda points: jax.vmap(jax.grad(loss), (0, None))(points, batch),
                                  mesh=mesh, in_specs=pair, out_specs=pair, check_vma=False)

    @jax.jit
    def sampa_two_devices(w, auxiliary):
        leaves = jax.tree_util.tree_leaves(auxiliary)
        norm = jnp.sqrt(sum(jnp.sum(a * a) for a in leaves))
        scale = jnp.where(norm > 0, RHO / jnp.where(norm > 0, norm, 1.0), 0.0)
        ascent = jax.tree_util.tree_map(lambda p, a: p + scale * a, w, auxiliary)
        following = jax.tree_util.tree_map(lambda p, a: p - LR * a, w, auxiliary)
        points = jax.tree_util.tree_map(lambda a, b: jax.device_put(jnp.stack([a, b])), ascent, following)
        points = jax.lax.with_sharding_constraint(points, NamedSharding(mesh, pair))
        both = pair_gradient(points)
        perturbed = jax.tree_util.tree_map(lambda g: g[0], both)
        next_auxiliary = jax.tree_util.tree_map(lambda g: g[1], both)
        return jax.tree_util.tree_map(lambda p, g: p - LR * g, w, perturbed), next_auxiliary

    # SAM on two devices, data-parallel: each gradient from the two halves of the mini-batch.
    half_gradient = jax.shard_map(
        lambda w, half: jax.lax.pmean(jax.grad(loss)(w, half), "pair"), mesh=mesh,
        in_specs=(PartitionSpec(), pair), out_specs=PartitionSpec(), check_vma=False)

    @jax.jit
    def sam_data_parallel(w, unused):
        g = half_gradient(w, batch)
        norm = jnp.sqrt(sum(jnp.sum(a * a) for a in jax.tree_util.tree_leaves(g)))
        perturbed = jax.tree_util.tree_map(lambda p, a: p + RHO * a / norm, w, g)
        gp = half_gradient(perturbed, batch)
        return jax.tree_util.tree_map(lambda p, a: p - LR * a, w, gp), unused

    zeros = jax.tree_util.tree_map(jnp.zeros_like, params)
    steps["sampa (1 gradient per device, 2 devices)"] = (sampa_two_devices, zeros)
    steps["sam data-parallel (batch split, 2 devices)"] = (sam_data_parallel, zeros)

    # Same numbers first: three steps of each two-device step against the library's step.
    def three(step, state):
        w = params
        for _ in range(3):
            w, state = step(w, state)
        return w

    def distance(a, b):
        flat = lambda t: np.concatenate([np.ravel(v) for v in jax.tree_util.tree_leaves(t)])
        return float(np.max(np.abs(flat(a) - flat(b))))

    check = {
        "sampa 2 devices vs st.optim.sampa": distance(three(sampa_two_devices, zeros),
                                                      three(*steps["sampa (2 gradients vmapped, 1 device)"])),
        "sam data-parallel vs st.optim.sam": distance(three(sam_data_parallel, zeros),
                                                      three(*steps["sam (2 serial gradients, 1 device)"])),
    }
    for name, value in check.items():
        assert value < 1e-10, (name, value)

    # Interleaved timing: every step once per round, best and median over the rounds.
    times = {name: [] for name in steps}
    state = {name: (params, start) for name, (_, start) in steps.items()}
    for name, (step, _) in steps.items():
        jax.block_until_ready(step(*state[name]))  # compile
    for _ in range(repeats):
        for name, (step, _) in steps.items():
            start = time.perf_counter()
            jax.block_until_ready(step(*state[name]))
            times[name].append(time.perf_counter() - start)
    return {"devices": [str(d) for d in devices], "check_max_abs_difference": check,
            "best_s": {k: min(v) for k, v in times.items()},
            "median_s": {k: float(np.median(v)) for k, v in times.items()},
            "load_average": os.getloadavg()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--config", choices=sorted(FLAGS))
    args = parser.parse_args()
    if args.config:  # child: the flags are already in the environment
        print(json.dumps(measure(args.repeats)))
        return 0
    sys.path.insert(0, os.path.dirname(__file__))
    from machine import cpu_model

    print(f"machine: {cpu_model()}, {os.cpu_count()} cores; load average {os.getloadavg()}")
    for config, flags in FLAGS.items():
        env = dict(os.environ, XLA_FLAGS=flags)
        env.pop("NPROC", None)
        out = subprocess.run([sys.executable, __file__, "--config", config, "--repeats", str(args.repeats)],
                             env=env, capture_output=True, text=True, check=True)
        result = json.loads(out.stdout.strip().splitlines()[-1])
        best, median = result["best_s"], result["median_s"]
        one = median["sgd (1 gradient, 1 device)"]
        sam = median["sam (2 serial gradients, 1 device)"]
        print(f"\nthreads per device: {config} ({flags}); load average after: "
              f"{[round(v, 1) for v in result['load_average']]}")
        print(f"  same numbers: {result['check_max_abs_difference']}")
        print(f"  {'step':45s} {'best ms':>9s} {'median ms':>10s} {'/ SAM':>7s} {'/ 1 grad':>9s}")
        for name in best:
            print(f"  {name:45s} {1e3 * best[name]:9.1f} {1e3 * median[name]:10.1f} "
                  f"{median[name] / sam:7.2f} {median[name] / one:9.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
