"""Issue 24: a researcher's own model through st.sweep vs the vmap + scan loop they would write.

The work: a two-layer linear net ŷ = aᵀWx (W: 10×20, a: 10, 210 parameters) on 40 noisy
examples, full-batch SAM (lr 0.05) over ρ ∈ {0, 0.02, 0.05, 0.1} × 4 seeds (each seed its own
initialization) × 3,000 steps, with λ_max recorded every 30 steps by dense eigh of the 210×210
Hessian. Both sides run the same float64 arithmetic; the script reports the ratio (wall time
including compilation, then a second, compiled call) and how far the records differ, beside how
far the hand loop's own records move when its initial parameters are scaled by 1 + 1e-15 (a few
ulps): SAM's normalized ascent near a minimum amplifies rounding, so two correct float64
programs that round differently part by as much as that.

    .venv/bin/python benchmarks/bench_own_model.py [--steps 3000]
"""
import argparse
import os
import time

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

import sharp_theory as st

D, H, N, LR, STRIDE = 20, 10, 40, 0.05, 30
RHOS = [0.0, 0.02, 0.05, 0.1]


def data():
    k_x, k_w, k_noise = jax.random.split(jax.random.key(0), 3)
    X = jax.random.normal(k_x, (N, D))
    y = X @ jax.random.normal(k_w, (D,)) / np.sqrt(D) + 0.1 * jax.random.normal(k_noise, (N,))
    return X, y


def loss(params, batch):
    x, target = batch
    return 0.5 * jnp.mean((x @ params["W"].T @ params["a"] - target) ** 2)


def init(key):
    k_W, k_a = jax.random.split(key)
    return {"W": 0.3 * jax.random.normal(k_W, (H, D)), "a": 0.3 * jax.random.normal(k_a, (H,))}


def library(problem, steps, seeds):
    result = st.sweep(problem, st.optim.sam(lr=LR, rho=0.05), grid={"rho": RHOS}, seeds=seeds,
                      steps=steps, stride=STRIDE, init=init,
                      observe={"lambda_max": st.observables.lambda_max})
    return np.asarray(result["sam"].observed["lambda_max"])


_HAND = {}


def hand_loop(batch, steps, seeds, init_scale=1.0):
    """The loop a researcher writes: vmap over (ρ, seed) of a scan of SAM steps, one device
    (compiled once per size, like the sweep). ``init_scale`` multiplies the initial parameters
    (1 + 1e-15 measures how the records respond to rounding)."""
    if (steps, seeds) not in _HAND:
        _HAND[steps, seeds] = _hand_program(batch, steps)
    return np.asarray(_HAND[steps, seeds](jnp.asarray(RHOS), jnp.arange(seeds),
                                          jnp.asarray(init_scale)))


def _hand_program(batch, steps):
    def full_loss(params):
        return loss(params, batch)

    def lambda_max(params):
        flat, unravel = ravel_pytree(params)
        return jnp.linalg.eigvalsh(jax.hessian(lambda w: full_loss(unravel(w)))(flat))[-1]

    def sam_step(params, rho):
        grads = jax.grad(full_loss)(params)
        norm = jnp.sqrt(sum(jnp.sum(g ** 2) for g in jax.tree_util.tree_leaves(grads)))
        ascent = jax.tree_util.tree_map(lambda w, g: w + rho * g / norm, params, grads)
        adversarial = jax.grad(full_loss)(ascent)
        return jax.tree_util.tree_map(lambda w, g: w - LR * g, params, adversarial)

    def one_run(rho, seed, init_scale):
        start = jax.tree_util.tree_map(lambda w: w * init_scale,
                                       init(jax.random.fold_in(jax.random.key(seed), 3)))
        params = start

        def record_interval(params, _):
            params = jax.lax.fori_loop(0, STRIDE, lambda i, p: sam_step(p, rho), params)
            return params, lambda_max(params)

        params, records = jax.lax.scan(record_interval, params, None, length=steps // STRIDE)
        return jnp.concatenate([lambda_max(start)[None], records])

    return jax.jit(jax.vmap(jax.vmap(one_run, in_axes=(None, 0, None)), in_axes=(0, None, None)))


def timed(fn, *args):
    started = time.perf_counter()
    out = fn(*args)
    return out, time.perf_counter() - started


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument("--seeds", type=int, default=4)
    args = parser.parse_args()
    X, y = data()
    problem = st.problems.from_loss(loss, init(jax.random.key(0)), (X, y))
    print(f"devices {len(jax.devices())}, load average {os.getloadavg()[0]:.1f}")
    ours, ours_cold = timed(library, problem, args.steps, args.seeds)
    _, ours_warm = timed(library, problem, args.steps, args.seeds)
    hand, hand_cold = timed(hand_loop, (X, y), args.steps, args.seeds)
    _, hand_warm = timed(hand_loop, (X, y), args.steps, args.seeds)
    error = np.abs(ours - hand) / np.abs(hand)
    nudged = hand_loop((X, y), args.steps, args.seeds, 1.0 + 1e-15)
    sensitivity = np.abs(nudged - hand) / np.abs(hand)
    print(f"st.sweep (sharded)   {ours_cold:7.2f} s cold, {ours_warm:7.2f} s warm")
    print(f"hand vmap+scan loop  {hand_cold:7.2f} s cold, {hand_warm:7.2f} s warm")
    print(f"ratio hand / sweep   {hand_cold / ours_cold:5.2f}x cold, {hand_warm / ours_warm:5.2f}x warm")
    for index, rho in enumerate(RHOS):
        print(f"rho={rho:<5} largest relative difference of the lambda_max records: sweep vs hand "
              f"{error[index].max():.1e}; hand vs hand with params0 x (1 + 1e-15) "
              f"{sensitivity[index].max():.1e}")
    print(f"load average after {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
