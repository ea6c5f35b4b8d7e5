"""A compiled computation that stops making progress ends with a clear error (issue 24): the
stall watchdog of ``st.run`` / ``st.sweep`` (``SHARP_THEORY_STALL_S``) and the command line's
exit code 5.

A stall is made for real: an observable calls back into Python and sleeps, so the compiled
program waits at 0% CPU, as the deadlocked sweeps did. The program runs on two CPU devices
(a sharded sweep; a run whose parameters are placed on both), where JAX dispatches it
asynchronously as it does every program without a host callback. (A one-device program that
calls back into Python runs in the calling thread: its wait is the callback's own.)
"""
import os
import subprocess
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import pytest

import sharp_theory as st
from sharp_theory.errors import ConfigError, StallError
from sharp_theory.jax_setup import check_environment, stall_seconds

pytestmark = pytest.mark.skipif(len(jax.devices()) < 2, reason="needs two CPU devices (one "
                                "per core on a machine with two cores or more)")


def _sleep_then_return(value):
    time.sleep(8.0)
    return value


def sleepy(params, problem, state):
    """An observable that waits 8 s in Python without using the CPU."""
    return jax.pure_callback(_sleep_then_return, jax.ShapeDtypeStruct((), jnp.float64),
                             jnp.sum(params), vmap_method="sequential")


def on_two_devices(tree):
    from jax.sharding import Mesh, NamedSharding, PartitionSpec

    assert len(jax.devices()) >= 2, jax.devices()
    mesh = Mesh(jax.devices()[:2], ("devices",))
    return jax.device_put(tree, NamedSharding(mesh, PartitionSpec()))


def quadratic():
    return st.problems.from_loss(lambda w, batch: jnp.sum(w ** 2), jnp.ones(2))


def test_a_run_that_makes_no_progress_ends_with_a_stall_error(monkeypatch):
    monkeypatch.setenv("SHARP_THEORY_STALL_S", "1")
    started = time.monotonic()
    with pytest.raises(StallError, match=r"st\.run made no progress for [12] s") as error:
        st.run(quadratic(), st.optim.gd(lr=0.1), steps=2, key=jax.random.key(0),
               observe={"slow": sleepy}, params0=on_two_devices(jnp.ones(2)))
    assert time.monotonic() - started < 7.0  # before the callback returns
    assert "SHARP_THEORY_STALL_S" in str(error.value) and "\n" not in str(error.value)


def test_a_sharded_sweep_that_makes_no_progress_ends_with_a_stall_error(monkeypatch):
    monkeypatch.setenv("SHARP_THEORY_STALL_S", "1")
    with pytest.raises(StallError, match=r"st\.sweep made no progress"):
        st.sweep(quadratic(), st.optim.sam(lr=0.1, rho=0.01), grid={"rho": [0.0, 0.01]},
                 steps=2, observe={"slow": sleepy})


def test_a_busy_computation_longer_than_the_limit_is_not_a_stall(monkeypatch):
    # ~1 s of matrix products with a 0.2 s limit: it uses the CPU all along, so it finishes.
    monkeypatch.setenv("SHARP_THEORY_STALL_S", "0.2")
    matrix = jax.random.normal(jax.random.key(0), (300, 300)) / 300 ** 0.5
    problem = st.problems.from_loss(lambda w, batch: 0.5 * jnp.sum((matrix @ w) ** 2),
                                    jnp.ones(300))
    run = lambda steps: st.run(problem, st.optim.gd(lr=0.01), steps=steps,  # noqa: E731
                               key=jax.random.key(0), stride=steps)
    run(200)  # compile first: compilation is not part of the wait
    started = time.monotonic()
    traj = run(60_000)
    assert traj.status == "ok" and time.monotonic() - started > 0.2


@pytest.mark.parametrize("value", ["abc", "-1", "nan", "1e9"])
def test_a_bad_stall_limit_is_refused_in_one_line(monkeypatch, value):
    monkeypatch.setenv("SHARP_THEORY_STALL_S", value)
    with pytest.raises(ConfigError, match=r"SHARP_THEORY_STALL_S=.*seconds in \[0, 1e6\]"):
        check_environment()
    monkeypatch.setenv("SHARP_THEORY_STALL_S", "0")
    assert stall_seconds() is None
    monkeypatch.delenv("SHARP_THEORY_STALL_S")
    assert stall_seconds() == 300.0


STUCK_LAB = '''
# %%
import time

import jax
import jax.numpy as jnp

import sharp_theory as st

lab = st.labkit.start("stuck", default_seeds=1, quick_seeds=1)
problem = st.problems.from_loss(lambda w, batch: jnp.sum(w ** 2), jnp.ones(2))


def wait(value):
    time.sleep(60.0)
    return value


observe = {"slow": lambda p, pr, s: jax.pure_callback(
    wait, jax.ShapeDtypeStruct((), jnp.float64), jnp.sum(p), vmap_method="sequential")}
st.sweep(problem, st.optim.gd(lr=0.1), grid={"lr": [0.1, 0.2]}, steps=2, observe=observe)
lab.finish({"value": 1.0})
'''


def test_the_command_line_ends_a_stalled_lab_with_exit_code_5_in_one_line(tmp_path):
    labs = tmp_path / "labs"
    labs.mkdir()
    (labs / "stuck.py").write_text(STUCK_LAB)
    env = {**os.environ, "SHARP_THEORY_LABS": str(labs), "SHARP_THEORY_CPU_DEVICES": "2",
           "SHARP_THEORY_STALL_S": "2"}
    console = str(Path(sys.executable).with_name("sharp-theory"))
    out = tmp_path / "out"
    started = time.monotonic()
    done = subprocess.run([console, "reproduce", "stuck", "--out", str(out)], env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 5, done.stderr[-2000:]
    assert time.monotonic() - started < 50  # long before the 60 s callback returns
    [line] = done.stderr.strip().splitlines()[-1:]
    assert line.startswith("sharp-theory: error: st.sweep made no progress"), done.stderr[-2000:]
    assert "Traceback" not in done.stderr
    left = sorted(p.name for p in out.iterdir()) if out.exists() else []
    assert not [name for name in left if "staging" in name or name.endswith(".tmp")], left
