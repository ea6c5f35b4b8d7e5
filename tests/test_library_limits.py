"""The library stops and sizes itself (issue 29, item 7).

* A long ``st.run`` is cut into compiled calls, so Ctrl-C ends it within a moment and keeps the
  completed records (``RunInterrupted.trajectory``).
* ``st.run``/``st.sweep`` estimate the memory of their records and state from shapes and refuse,
  in one line with the estimate, a run that will not fit, before any work.
* ``st.sweep(seeds=n)`` builds its n keys in one vectorized call.
"""
import os
import signal
import subprocess
import sys
import textwrap
import time

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import sharp_theory as st
from sharp_theory.dynamics import trajectory

INTERRUPTED = textwrap.dedent("""
    import sys, time
    import jax, jax.numpy as jnp
    import sharp_theory as st
    problem = st.problems.from_loss(lambda w, b: 0.5 * jnp.sum(w ** 2), jnp.ones(2))
    print("start", flush=True)
    try:
        st.run(problem, st.optim.sam(lr=0.1, rho=0.05), steps=10 ** 9, stride=10 ** 8,
               key=jax.random.key(0))
    except st.dynamics.RunInterrupted as interrupt:
        traj = interrupt.trajectory
        print("interrupted", traj.steps.tolist(), traj.observed["loss"].shape, flush=True)
        sys.exit(0)
    print("finished", flush=True)
""")


def test_ctrl_c_ends_a_long_run_within_seconds_and_keeps_the_completed_part():
    process = subprocess.Popen([sys.executable, "-c", INTERRUPTED], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    try:
        assert process.stdout.readline().strip() == "start"
        time.sleep(6)  # compiled and running (the run takes hours)
        assert process.poll() is None
        sent = time.monotonic()
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=30)
        elapsed = time.monotonic() - sent
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0, err[-2000:]
    assert "interrupted [0]" in out, out  # the initial record is kept (no full stride done)
    assert elapsed < 3.0, f"Ctrl-C took {elapsed:.1f} s to end the run"


def test_a_run_that_cannot_fit_in_memory_is_refused_in_one_line_before_any_work(monkeypatch):
    monkeypatch.setattr(trajectory, "physical_memory_bytes", lambda: 16 * 2 ** 30)
    problem = st.problems.from_loss(lambda w, b: 0.5 * jnp.sum(w ** 2), jnp.ones(2))
    started = time.monotonic()
    with pytest.raises(st.ConfigError) as error:
        st.run(problem, st.optim.gd(lr=0.1), steps=10 ** 9, key=jax.random.key(0))
    message = str(error.value)
    assert time.monotonic() - started < 5
    assert "\n" not in message and "steps=1000000000" in message
    assert "1,000,000,001 records of 8 bytes" in message and "22.4 GiB" in message
    with pytest.raises(st.ConfigError, match="records of 8 bytes x 64 lane"):
        st.sweep(problem, st.optim.gd(lr=0.1), seeds=64, steps=10 ** 8)
    # A larger stride fits.
    estimate = trajectory.estimate_run_memory(
        problem, st.optim.gd(lr=0.1), problem.params0, trajectory.as_observables(None),
        steps=10 ** 9, stride=10 ** 6)
    assert estimate["records"] == 1001 and estimate["record_bytes"] == 8


def test_a_million_seeds_are_keyed_in_one_vectorized_call():
    problem = st.problems.from_loss(lambda w, b: 0.5 * jnp.sum(w ** 2), jnp.ones(1))
    started = time.monotonic()
    result = st.sweep(problem, st.optim.gd(lr=0.1), seeds=10 ** 6, steps=1)
    assert time.monotonic() - started < 20
    assert result.shape == (10 ** 6,)
    np.testing.assert_array_equal(result.coords["seed"][[0, 999_999]], [0, 999_999])
    # Lane s is keyed by jax.random.key(s), as one run with that key.
    data = st.dynamics.sweeps.seed_key_data(np.asarray([0, 7, 2 ** 40]))
    for row, seed in zip(data, (0, 7, 2 ** 40)):
        np.testing.assert_array_equal(row, jax.random.key_data(jax.random.key(seed)))


def test_a_chunked_run_records_what_one_compiled_call_records(monkeypatch):
    problem = st.problems.from_loss(lambda w, b: 0.5 * jnp.sum(w ** 2), jnp.ones(2))
    optimizer = st.optim.sam(lr=0.1, rho=0.05)
    whole = {stride: st.run(problem, optimizer, steps=50, stride=stride, key=jax.random.key(0))
             for stride in (4, 20)}
    monkeypatch.setattr(trajectory, "CHUNKED_ABOVE", 10)
    monkeypatch.setattr(trajectory, "CHUNK_STEPS", 7)
    for stride, reference in whole.items():
        chunked = st.run(problem, optimizer, steps=50, stride=stride, key=jax.random.key(0))
        np.testing.assert_array_equal(chunked.steps, reference.steps)
        np.testing.assert_allclose(chunked.observed["loss"], reference.observed["loss"],
                                   rtol=1e-15, atol=0)
        np.testing.assert_allclose(chunked.params, reference.params, rtol=1e-15, atol=0)
