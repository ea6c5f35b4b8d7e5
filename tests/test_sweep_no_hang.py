"""Sharded sweeps whose observables call LAPACK (dense eigh, Lanczos's Ritz eigh, the warm
spectrum) finish on 2 CPU devices.

Each CPU device's program holds one thread of XLA's intra-op pool, and a batched LAPACK kernel
(the vmapped ``eigh`` of every lane's Hessian) splits its batch over the same pool and waits:
with one thread per device, both devices could wait for pieces no thread was left to run, and
the sweep hung at 0% CPU. Each case runs in a subprocess under a hard timeout, so a regression
fails the test instead of hanging the suite.
"""
import os
import subprocess
import sys
import textwrap

import pytest

SCRIPT = textwrap.dedent("""
    import sys, time, warnings
    warnings.simplefilter("error")  # no silent fallback to one device
    import jax, jax.flatten_util, jax.numpy as jnp
    import sharp_theory as st
    assert len(jax.devices()) == 2, jax.devices()

    def problem_of(n):
        X = jax.random.normal(jax.random.key(0), (16, n)) / n ** 0.5
        y = jnp.sin(jnp.arange(16.0))
        def loss(w, batch):
            x, t = batch
            return 0.5 * jnp.mean((x @ w - t) ** 2) + 0.25 * jnp.mean(w ** 4)
        return st.problems.from_loss(loss, 0.3 * jnp.ones(n), (X, y))

    fn = st.measure.full_batch_loss
    observables = {
        "dense": lambda p, pr, s: st.measure.lambda_max(fn(pr), p, method="dense"),
        "lanczos": lambda p, pr, s: st.measure.lambda_max(fn(pr), p, method="matrix_free",
                                                          num_iterations=12),
        "warm": st.measure.warm_top_eigenpairs(1),
    }
    def two_layer_net():
        # The report's model: y = a^T W x, W 10 x 20, a 10 (210 parameters), 40 examples; its
        # lambda_max by eigvalsh of jax.hessian, every 30 steps, as the researcher wrote it.
        kx, kw = jax.random.split(jax.random.key(0))
        X = jax.random.normal(kx, (40, 20))
        y = X @ jnp.linspace(-1.0, 1.0, 20) / 20 ** 0.5
        def loss(p, batch):
            x, t = batch
            return 0.5 * jnp.mean((x @ p["W"].T @ p["a"] - t) ** 2)
        params = {"W": 0.3 * jax.random.normal(kw, (10, 20)), "a": 0.3 * jnp.ones(10)}
        return st.problems.from_loss(loss, params, (X, y))

    def hand_written_lambda_max(p, pr, s):
        flat, unravel = jax.flatten_util.ravel_pytree(p)
        full = lambda w: pr.loss(unravel(w), pr.full_batch())
        return jnp.linalg.eigvalsh(jax.hessian(full)(flat))[-1]

    observables["hessian"] = hand_written_lambda_max
    for case in sys.argv[1:]:
        which, n, steps = case.split(":")
        problem = two_layer_net() if which == "hessian" else problem_of(int(n))
        result = st.sweep(problem, st.optim.sam(lr=0.05, rho=0.05),
                          grid={"rho": [0.0, 0.01, 0.02, 0.05]}, seeds=4, steps=int(steps),
                          stride=30 if which == "hessian" else 1,
                          observe={"lam": observables[which]})
        lam = result["sam"].observed["lam" if which != "warm" else "lam.values"]
        assert jnp.all(jnp.isfinite(jnp.asarray(lam))), lam
        print("finished", case, flush=True)
""")

# "hessian:210:60" is the report's own sweep (4 rho x 4 seeds, eigvalsh of the 210 x 210 Hessian
# every 30 steps), cut to 60 steps: before the fix it hung in three tries of three at 60 steps and
# three of three at 300 (0% CPU until a 90-150 s timeout).
CASES = ("hessian:210:60", "dense:64:30", "dense:200:6", "lanczos:64:20", "warm:32:6")


def _run(args, timeout, **env_vars):
    env = {k: v for k, v in os.environ.items() if k not in ("NPROC", "XLA_FLAGS")}
    env.update(SHARP_THEORY_CPU_DEVICES="2", **env_vars)
    try:
        return subprocess.run([sys.executable, "-c", SCRIPT, *args], env=env, capture_output=True,
                              text=True, timeout=timeout)
    except subprocess.TimeoutExpired as error:
        done = (error.stdout or b"").decode() if isinstance(error.stdout, bytes) else error.stdout
        pytest.fail(f"sharded sweeps {args} did not finish in {timeout} s (a hang); "
                    f"finished before: {done!r}")


def test_sharded_sweeps_with_lapack_observables_finish():
    out = _run(CASES, timeout=240)
    assert out.returncode == 0, out.stderr[-3000:]
    for case in CASES:
        assert f"finished {case}" in out.stdout


def test_a_pool_without_a_spare_thread_falls_back_to_one_device_and_says_so():
    # A user who sets NPROC to the device count gets the unsafe pool: the sweep runs on one
    # device with one warning (made an error in the script, so the script fails with it).
    out = _run(("dense:64:4",), timeout=150, NPROC="2")
    assert out.returncode != 0
    assert "runs on one device" in out.stderr and "NPROC=4" in out.stderr, out.stderr[-2000:]


def test_the_cpu_pool_has_a_thread_to_spare_for_every_device():
    # The cause, checked directly (the hang itself depends on timing): a fresh process with 2
    # CPU devices starts XLA's intra-op pool with cores + devices threads.
    code = ("import jax, os, sharp_theory\n"
            "from sharp_theory.jax_setup import intra_op_threads, available_cores\n"
            "n = len(jax.devices())\n"
            "assert n == 2 and intra_op_threads() == available_cores() + 2 > n, "
            "(n, intra_op_threads(), os.environ.get('NPROC'))\n"
            "print('ok', os.environ['NPROC'])")
    env = {k: v for k, v in os.environ.items() if k not in ("NPROC", "XLA_FLAGS")}
    env["SHARP_THEORY_CPU_DEVICES"] = "2"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0 and out.stdout.startswith("ok"), out.stderr[-2000:]
