"""Several processes through jax.distributed on one machine (sharp-theory launch): the same
measured numbers bit for bit as one process, for a sweep and for the conv-ReLU grid; a dead peer
ends the run with a clear error in bounded time; the rerun resumes and gives the same numbers."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from argparse import Namespace
from pathlib import Path

import pytest

from sharp_theory import launch
from sharp_theory.errors import ConfigError

ROOT = Path(__file__).resolve().parent.parent

# A lab with one st.sweep stage and one conv-ReLU grid stage (quick preset). With TWO_PIDS=DIR
# each process writes its pid after the sweep; process 1 then waits for DIR/go (never created
# in the dead-peer test) while process 0 goes on into the grid and blocks on its peer.
TWO_STAGES = '''# # Two stages
import os, pathlib, time
import jax
import numpy as np
import sharp_theory as st
from sharp_theory.studies import phase_diagram

lab = st.labkit.start("two-stages")
problem = st.problems.op_toy(noise=0.5)
swept = st.sweep(problem, [st.optim.sgd(lr=1e-2), st.optim.sam(lr=1e-2, rho=0.1)], steps=300,
                 seeds=3, grid={"rho": [0.05, 0.1, 0.2]}, stride=50,
                 observe={"B": st.observables.of_params(st.measure.balancedness)})
pids = os.environ.get("TWO_PIDS")
if pids:
    pathlib.Path(pids, f"{jax.process_index()}.pid").write_text(str(os.getpid()))
    while jax.process_index() == 1 and not pathlib.Path(pids, "go").exists():
        time.sleep(0.05)
spec = phase_diagram.PRESETS["quick"]
# One padded dimension and SAM alone: one chunk program to compile (each takes ~10 s on 2 cores).
grid = phase_diagram.conv_relu_grid(
    spec["dims"][:1], spec["signals"], {"sam": phase_diagram.preset_optimizers(spec)["sam"]},
    steps=spec["steps"],
    stride=spec["stride"], repeats=spec["repeats"], tau_scaling="paper", progress=False,
    checkpoint_dir=lab.checkpoint_folder("grid"))
lab.finish({"sweep_B": {name: np.asarray(t.observed["B"]).tolist() for name, t in swept.items()},
            "sweep_x": {name: np.asarray(t.params["x"]).tolist() for name, t in swept.items()},
            "grid": {f"{opt}/{name}": np.asarray(v).tolist()
                     for opt, obs in grid.observed.items() for name, v in obs.items()},
            "devices": [str(d) for d in jax.devices()]})
'''


@pytest.fixture(scope="module")
def labs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("labs")
    (folder / "two_stages.py").write_text(TWO_STAGES)
    return folder


def _env(labs, **extra):
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
    env.update(SHARP_THEORY_LABS=str(labs), PYTHONPATH=str(ROOT), JAX_PLATFORMS="cpu", **extra)
    return env


def _cli(args, env, timeout=400):
    return subprocess.run([sys.executable, "-m", "sharp_theory.cli", *args], env=env,
                          capture_output=True, text=True, timeout=timeout, cwd=ROOT)


def _measured(out: Path) -> dict:
    return json.loads((out / "results.json").read_text())


@pytest.fixture(scope="module")
def one_process(labs, tmp_path_factory):
    """The lab's output folder from one process with two CPU devices."""
    out = tmp_path_factory.mktemp("one") / "out"
    done = _cli(["reproduce", "two-stages", "--out", str(out)],
                _env(labs, SHARP_THEORY_CPU_DEVICES="2"))
    assert done.returncode == 0, done.stderr[-3000:]
    return out


@pytest.mark.slow
def test_two_processes_give_the_numbers_of_one_bit_for_bit(labs, one_process, tmp_path):
    two = _cli(["launch", "--processes", "2", "--devices-per-process", "1", "--timeout-s", "300",
                "--", "reproduce", "two-stages", "--out", str(tmp_path / "two")], _env(labs))
    assert two.returncode == 0, two.stderr[-3000:]
    single, multi = _measured(one_process), _measured(tmp_path / "two")
    assert len(single["measured"]["devices"]) == 2
    assert len(multi["measured"]["devices"]) == 2  # one device in each of the two processes
    for key in ("sweep_B", "sweep_x", "grid"):
        # JSON floats are printed exactly (repr), so equal text means equal bits.
        assert json.dumps(multi["measured"][key]) == json.dumps(single["measured"][key]), key
    # Only process 0 wrote: one output folder, nothing of process 1's anywhere in it.
    assert sorted(p.name for p in (tmp_path / "two").iterdir()) == sorted(
        p.name for p in one_process.iterdir())
    assert "process 1 of 2 started" in two.stderr


@pytest.mark.slow
def test_a_dead_peer_stops_the_run_in_bounded_time_and_the_rerun_resumes(labs, one_process,
                                                                       tmp_path):
    pids = tmp_path / "pids"
    pids.mkdir()
    out = tmp_path / "out"
    temporary = tmp_path / "tmp"  # the launcher's and the processes' temporary folders
    temporary.mkdir()
    env = _env(labs, TWO_PIDS=str(pids), TMPDIR=str(temporary))
    started = time.monotonic()
    process = subprocess.Popen(
        [sys.executable, "-m", "sharp_theory.cli", "launch", "--processes", "2",
         "--devices-per-process", "1", "--timeout-s", "300", "--", "reproduce", "two-stages",
         "--out", str(out)], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        cwd=ROOT)
    while not ((pids / "0.pid").exists() and (pids / "1.pid").exists()):
        assert process.poll() is None, process.communicate()[1][-3000:]
        assert time.monotonic() - started < 300
        time.sleep(0.1)
    survivor = int((pids / "0.pid").read_text())
    time.sleep(1.0)  # process 0 is now inside the grid, waiting for its peer
    killed = time.monotonic()
    os.kill(int((pids / "1.pid").read_text()), signal.SIGKILL)
    _, stderr = process.communicate(timeout=120)
    assert time.monotonic() - killed < launch.GRACE_S + 10
    assert process.returncode != 0
    assert "process 1" in stderr and "signal 9" in stderr and "stopped the other" in stderr
    with pytest.raises(ProcessLookupError):
        os.kill(survivor, 0)
    assert not (out / "results.json").exists()
    # The killed process could not remove its scratch folder; the launcher removed it.
    assert list(temporary.iterdir()) == []

    (pids / "go").write_text("")
    rerun = _cli(["launch", "--processes", "2", "--devices-per-process", "1", "--timeout-s", "300",
                  "--", "reproduce", "two-stages", "--out", str(out)], env)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    resumed = _measured(out)
    assert resumed["resumed_stages"] == 1  # the sweep was saved before the peer died
    for key in ("sweep_B", "sweep_x", "grid"):
        assert json.dumps(resumed["measured"][key]) == json.dumps(_measured(one_process)["measured"][key])


def _args(**given):
    base = dict(coordinator=None, num_processes=None, process_id=None, distributed=False,
                heartbeat_s=60)
    return Namespace(**{**base, **given})


def test_cluster_options_are_checked_before_any_work():
    assert launch.cluster_from(_args()) is None
    assert launch.cluster_from(_args(distributed=True)) == launch.Cluster(None, None, None, 60)
    assert launch.cluster_from(_args(coordinator="node1:1234", num_processes=4, process_id=3)) == \
        launch.Cluster("node1:1234", 4, 3, 60)
    for bad, parameter in [(dict(coordinator="node1:1234"), "--num-processes"),
                           (dict(coordinator="node1", num_processes=2, process_id=0), "--coordinator"),
                           (dict(coordinator="h:99999", num_processes=2, process_id=0), "--coordinator"),
                           (dict(coordinator="h:1", num_processes=2, process_id=2), "--process-id"),
                           (dict(coordinator="h:1", num_processes=0, process_id=0), "--num-processes"),
                           (dict(distributed=True, heartbeat_s=1), "--heartbeat-s")]:
        with pytest.raises(ConfigError) as error:
            launch.cluster_from(_args(**bad))
        assert error.value.parameter == parameter, bad


def test_launch_runs_only_reproduce_and_sets_the_cluster_options_itself(labs, tmp_path):
    for command in (["check"], ["--", "reproduce", "x", "--process-id", "1"], []):
        with pytest.raises(ConfigError):
            launch.check_command(command)
    assert launch.check_command(["--", "reproduce", "x", "--quick"]) == ["reproduce", "x", "--quick"]
    done = _cli(["launch", "--processes", "2", "--", "check"], _env(labs))
    assert done.returncode == 2 and done.stderr.count("\n") == 1 and "reproduce LAB" in done.stderr
