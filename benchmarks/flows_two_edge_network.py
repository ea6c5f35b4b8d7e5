"""Measurement: GD's central flow with two eigenvalues at the edge on a small network (issue 28).

The width-20 tanh network of the flows lab (one hidden layer, 20 points of Chebyshev T₄ on
[−1, 1], squared loss, the lab's start) trained by full-batch GD at η = 0.5 (2/η = 4) for 2 000
steps: GD holds λ₁ at the edge and brings λ₂ up to it. Beside the run (every step recorded):
the central flow with ``edge_eigenvalues=2`` and with one eigenvalue, and gradient flow (rtol
1e-6, atol 1e-9, records every 20 steps). Printed:

* the steps over which the two-eigenvalue flow holds both top eigenvalues at the edge
  (λ₂ ≥ (1 − 1e-3)·2/η);
* the run's top two Hessian eigenvalues at its two-step centres ½(w_t + w_{t+1}), averaged over
  100-step windows around each record, and their largest deviation from 2/η from step 1 000;
* every 100 steps, each flow's weight error against the run's 100-step window average of the
  weights (the flows predict the time-averaged path), and the ratio of the two-eigenvalue flow's
  error to gradient flow's;
* where each flow stopped, its solver steps and its wall time.

Costly: on a loaded 2-core machine the two central flows took 1 261 s and 617 s (both stop when
they exhaust their 10⁵ solver steps), which is why this is not a section of the lab
(papers/flows.md and benchmarks/README.md have the numbers).

Run: ``.venv/bin/python benchmarks/flows_two_edge_network.py``.
"""
from __future__ import annotations

import time

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

import sharp_theory as st
from sharp_theory.observables import of_params

WIDTH, LR, STEPS, STRIDE, HALF_WINDOW = 20, 0.5, 2_000, 20, 50


def network_problem():
    """The flows lab's width-20 tanh network on Chebyshev T₄ (its start, seed 0)."""
    def network(params, x):
        return jnp.tanh(x[:, None] * params["w"] + params["b"]) @ params["v"]

    def loss(params, batch):
        return 0.5 * jnp.mean((network(params, batch["x"]) - batch["y"]) ** 2)

    init = np.random.default_rng(0)
    params = {"w": jnp.asarray(0.5 * init.standard_normal(WIDTH)),
              "b": jnp.asarray(0.5 * init.standard_normal(WIDTH)),
              "v": jnp.asarray(init.standard_normal(WIDTH) / np.sqrt(WIDTH))}
    points = np.linspace(-1.0, 1.0, 20)
    data = {"x": points, "y": np.polynomial.chebyshev.Chebyshev.basis(4)(points)}
    return st.problems.from_loss(loss, params, name="tanh-chebyshev-20", data=data), loss, data


def main():
    problem, loss, data = network_problem()
    flat0, unravel = ravel_pytree(problem.params0)
    batch = {name: jnp.asarray(value) for name, value in data.items()}
    flat_loss = lambda w: loss(unravel(w), batch)
    top_two = jax.jit(jax.vmap(lambda w: jnp.linalg.eigvalsh(jax.hessian(flat_loss)(w))[-2:][::-1]))
    edge = 2.0 / LR
    watch = {"w": of_params(lambda p: ravel_pytree(p)[0])}
    gd = st.optim.gd(lr=LR)
    run = st.run(problem, gd, steps=STEPS, stride=1, key=jax.random.key(0), observe=watch)
    flows, seconds = {}, {}
    for name, kind, k in (("two-eigenvalue", "central", 2), ("one-eigenvalue", "central", 1),
                          ("gradient", "gradient", 1)):
        start = time.perf_counter()
        flows[name] = st.flow(problem, gd, steps=STEPS, stride=STRIDE, key=jax.random.key(0),
                              observe=watch, kind=kind, edge_eigenvalues=k, rtol=1e-6, atol=1e-9)
        seconds[name] = time.perf_counter() - start
        print(f"{name} flow: {seconds[name]:.0f} s, stopped at {int(flows[name].diverged_at)}, "
              f"{int(flows[name].state['num_steps'])} solver steps")
    weights = np.asarray(run.observed["w"])
    centres = 0.5 * (weights[1:] + weights[:-1])
    centre_top_two = np.asarray(top_two(jnp.asarray(centres)))
    records = np.asarray(flows["gradient"].steps)
    paths = {name: np.asarray(flow.observed["w"]) for name, flow in flows.items()}
    finite = np.isfinite(paths["two-eigenvalue"]).all(axis=1)
    flow_top_two = np.asarray(top_two(jnp.asarray(np.nan_to_num(paths["two-eigenvalue"]))))
    both = finite & (flow_top_two[:, 1] >= edge * (1 - 1e-3))
    first, last = records[both].min(), records[both].max()
    print(f"the two-eigenvalue flow holds both at the edge from step {first} to {last}")
    inside = ((records >= first) & (records <= last) & (records >= HALF_WINDOW)
              & (records + HALF_WINDOW <= STEPS - 1))
    windows = records[inside]
    window_top_two = np.array([centre_top_two[t - HALF_WINDOW:t + HALF_WINDOW].mean(0)
                               for t in windows])
    window_weights = np.array([weights[t - HALF_WINDOW:t + HALF_WINDOW].mean(0) for t in windows])
    settled = windows >= 1_000
    print(f"run, 100-step windows from step 1000: λ₁ within "
          f"{100 * np.abs(window_top_two[settled, 0] / edge - 1).max():.2f}%, λ₂ within "
          f"{100 * np.abs(window_top_two[settled, 1] / edge - 1).max():.2f}% of 2/η = {edge}")
    errors = {name: np.linalg.norm(window_weights - path[inside], axis=1)
              for name, path in paths.items()}
    print("| step | run's λ₁, λ₂ (window) | two-eigenvalue flow | one-eigenvalue flow | "
          "gradient flow | ratio two / gradient |")
    print("|---|---|---|---|---|---|")
    for index, step in enumerate(windows):
        if step % 100 == 0:
            print(f"| {step} | {window_top_two[index, 0]:.3f}, {window_top_two[index, 1]:.3f} | "
                  + " | ".join(f"{errors[name][index]:.4f}" for name in paths)
                  + f" | {errors['two-eigenvalue'][index] / errors['gradient'][index]:.3f} |")
    ratio = errors["two-eigenvalue"] / errors["gradient"]
    print(f"two-eigenvalue flow's error / gradient flow's: at most {ratio.max():.3f} over steps "
          f"{windows[0]}-{windows[-1]}, {ratio[-1]:.3f} at the last")
    late = [(t, round(float(centre_top_two[t - HALF_WINDOW:t + HALF_WINDOW, 1].mean()), 3))
            for t in range(1_400, STEPS - HALF_WINDOW, 100)]
    print(f"run's λ₂ (window) after the flows stop: {late}")


if __name__ == "__main__":
    main()
