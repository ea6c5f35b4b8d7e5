"""More than one process: ``sharp-theory launch`` and the ``--coordinator`` options of ``reproduce``.

JAX's own multi-process engine (``jax.distributed``) does the work: every process runs the same
lab with the same arguments, ``jax.devices()`` then lists the devices of all processes, and
``st.sweep`` and the conv-ReLU grid (``sharp_theory.studies.phase_diagram``) divide their lanes
over all of them and gather the results to every process. Process 0 writes the output folder and
the checkpoints; the others write nothing there.

* One machine: ``sharp-theory launch --processes N -- reproduce LAB [options]`` starts N local
  processes with a coordinator on 127.0.0.1 (a free port) and CPU collectives over gloo, watches
  them, and when one fails stops the others (SIGTERM, then SIGKILL after a grace period): a dead
  peer gives an error within seconds, never a hang.
* A cluster: start ``sharp-theory reproduce LAB --coordinator HOST:PORT --num-processes N
  --process-id I`` on every host (or ``--distributed`` alone where JAX detects the cluster
  itself: SLURM, Open MPI). There JAX's heartbeat (``--heartbeat-s``) ends the survivors when a
  peer dies. The output folder must be on a file system every process sees (its checkpoints
  decide what a rerun recomputes, and every process must decide the same).

A resumed run stays consistent: before joining, every process other than 0 takes a read-only
copy of ``OUT/.checkpoints`` (process 0 cannot write a new stage before all have joined) and
computes exactly the stages process 0 does; the copies are compared after joining, and a
mismatch is an error, not a hang.
"""
from __future__ import annotations

import argparse
import dataclasses
import hashlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from .errors import ConfigError
from .output import CHECKPOINTS

SCRATCH_PARENT_ENV = "SHARP_THEORY_SCRATCH_PARENT"
"""Environment variable naming the folder in which processes other than 0 create their scratch
output folder (set by :func:`launch` to its own temporary folder, removed when it returns)."""

GRACE_S = 5.0  # how long a stopped process may take to exit before it is killed
POLL_S = 0.2


@dataclasses.dataclass(frozen=True)
class Cluster:
    """How this process joins the others.

    Attributes:
      coordinator: ``HOST:PORT`` of process 0's coordination service (None: detected by JAX).
      num_processes: how many processes in all (None: detected).
      process_id: this process's index, 0 .. num_processes - 1 (None: detected).
      heartbeat_s: seconds without a heartbeat after which JAX ends the survivors.
    """

    coordinator: str | None
    num_processes: int | None
    process_id: int | None
    heartbeat_s: int = 60


def add_cluster_arguments(parser: argparse.ArgumentParser) -> None:
    """``--coordinator``, ``--num-processes``, ``--process-id``, ``--distributed``,
    ``--heartbeat-s`` (for ``sharp-theory reproduce``)."""
    group = parser.add_argument_group("several processes or hosts (jax.distributed)")
    group.add_argument("--coordinator", metavar="HOST:PORT", default=None,
                       help="process 0's address; with --num-processes and --process-id")
    group.add_argument("--num-processes", type=int, default=None, metavar="N")
    group.add_argument("--process-id", type=int, default=None, metavar="I")
    group.add_argument("--distributed", action="store_true",
                       help="join a cluster JAX detects itself (SLURM, Open MPI)")
    group.add_argument("--heartbeat-s", type=int, default=60, metavar="S",
                       help="a peer silent this long ends the run (default 60)")


def cluster_from(args) -> Cluster | None:
    """The :class:`Cluster` the parsed options ask for (None: a single process).

    Raises:
      ConfigError: an incomplete or out-of-range setting, before any work.
    """
    explicit = (args.coordinator, args.num_processes, args.process_id)
    if all(value is None for value in explicit):
        if not args.distributed:
            return None
        return Cluster(None, None, None, _heartbeat(args.heartbeat_s))
    if any(value is None for value in explicit):
        missing = [name for name, value in zip(("--coordinator", "--num-processes",
                                                "--process-id"), explicit) if value is None]
        raise ConfigError(missing[0], None, "given together with the other two of --coordinator "
                          "HOST:PORT, --num-processes N, --process-id I")
    host, colon, port = args.coordinator.rpartition(":")
    if not (colon and host and port.isdigit() and 0 < int(port) < 65536):
        raise ConfigError("--coordinator", args.coordinator, "HOST:PORT with a port in 1..65535")
    if args.num_processes < 1:
        raise ConfigError("--num-processes", args.num_processes, "an integer >= 1")
    if not 0 <= args.process_id < args.num_processes:
        raise ConfigError("--process-id", args.process_id,
                          f"0..{args.num_processes - 1} (--num-processes {args.num_processes})")
    return Cluster(args.coordinator, args.num_processes, args.process_id,
                   _heartbeat(args.heartbeat_s))


def _heartbeat(seconds) -> int:
    if seconds < 5:
        raise ConfigError("--heartbeat-s", seconds, "an integer >= 5 (seconds)")
    return int(seconds)


def _process_id_hint(cluster: Cluster) -> int:
    """This process's index before JAX knows it (the scheduler's rank variable when detected)."""
    if cluster.process_id is not None:
        return cluster.process_id
    for name in ("SLURM_PROCID", "OMPI_COMM_WORLD_RANK", "PMI_RANK"):
        if os.environ.get(name, "").isdigit():
            return int(os.environ[name])
    return 0


def _tree_digest(folder: Path) -> str:
    """A hash of the relative paths of the files under ``folder`` (what a rerun would load)."""
    digest = hashlib.sha256()
    if folder.is_dir():
        for path in sorted(p for p in folder.rglob("*") if p.is_file() and
                           not p.name.startswith(".")):
            digest.update(str(path.relative_to(folder)).encode() + b"\0")
    return digest.hexdigest()


@dataclasses.dataclass
class Membership:
    """This process's part in a multi-process run (from :func:`join`).

    Attributes:
      process_id, num_processes: as JAX numbers them.
      out: where this process's lab writes: the real folder on process 0, a private scratch
        folder (removed by :meth:`leave`) on the others.
    """

    process_id: int
    num_processes: int
    out: Path
    scratch: Path | None

    def leave(self) -> None:
        """Wait for every process (JAX's shutdown barrier), then remove the scratch folder."""
        import jax

        jax.distributed.shutdown()
        self.discard()

    def discard(self) -> None:
        """Remove the scratch folder (processes other than 0); nothing else."""
        if self.scratch is not None:
            shutil.rmtree(self.scratch, ignore_errors=True)


def join(cluster: Cluster, out: Path, *, resume: bool) -> Membership:
    """Join the other processes (``jax.distributed.initialize``, CPU collectives over gloo).

    Call before anything else computes with JAX. Processes other than 0 get a scratch output
    folder holding a copy of ``out/.checkpoints`` (taken before joining, so it cannot contain a
    stage of this run), so that they resume exactly the stages process 0 resumes and write nothing
    into ``out``.

    Args:
      cluster: how to reach the others.
      out: the lab's output folder (process 0 writes it).
      resume: False ignores saved stages (``--no-resume``), on every process.

    Returns:
      This process's :class:`Membership`.

    Raises:
      RuntimeError: the processes see different saved stages (``out`` is not on a shared file
        system); nothing has been computed.
    """
    scratch = None
    this_out = Path(out)
    if _process_id_hint(cluster) != 0:
        # Under `launch` the scratch folder lies in the launcher's own temporary folder, which
        # the launcher removes even when this process is killed (SIGKILL) before its cleanup.
        scratch = Path(tempfile.mkdtemp(prefix="sharp-theory-process-",
                                        dir=os.environ.get(SCRATCH_PARENT_ENV) or None))
        this_out = scratch / "out"
        this_out.mkdir()
        saved = Path(out) / CHECKPOINTS
        if resume and saved.is_dir():
            shutil.copytree(saved, this_out / CHECKPOINTS)
    import jax

    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    jax.distributed.initialize(coordinator_address=cluster.coordinator,
                               num_processes=cluster.num_processes,
                               process_id=cluster.process_id,
                               heartbeat_timeout_seconds=cluster.heartbeat_s)
    if jax.process_index() != 0 and scratch is None:
        raise RuntimeError(f"this process is {jax.process_index()} for JAX but looked like "
                           "process 0 before joining; pass --process-id")
    if resume:
        import numpy as np
        from jax.experimental import multihost_utils

        digest = np.frombuffer(bytes.fromhex(_tree_digest(this_out / CHECKPOINTS)), np.uint8)
        gathered = np.asarray(multihost_utils.process_allgather(digest))
        if not (gathered == gathered[0]).all():
            raise RuntimeError(f"the processes see different saved stages in {Path(out) / CHECKPOINTS}: "
                               "put --out on a file system every process shares, or rerun with "
                               "--no-resume")
    return Membership(jax.process_index(), jax.process_count(), this_out, scratch)


# --- the local launcher --------------------------------------------------------------------------

def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def check_command(command: list[str]) -> list[str]:
    """The sharp-theory command each process runs (``reproduce LAB ...``), checked."""
    command = command[1:] if command[:1] == ["--"] else list(command)
    if not command or command[0] != "reproduce":
        raise ConfigError("command", " ".join(command) or "(none)",
                          "-- reproduce LAB [options] (each process runs it)")
    taken = {"--coordinator", "--num-processes", "--process-id", "--distributed"}
    clash = [word for word in command if word.split("=")[0] in taken]
    if clash:
        raise ConfigError("command", clash[0], "no cluster options (launch sets them)")
    return command


def _stop(processes: list[subprocess.Popen]) -> None:
    """SIGTERM every live process, then SIGKILL whatever is still alive after ``GRACE_S``."""
    for process in processes:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + GRACE_S
    for process in processes:
        try:
            process.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def launch(command: list[str], *, processes: int, devices_per_process: int | None = None,
           heartbeat_s: int = 60, timeout_s: float | None = None) -> int:
    """Run ``sharp-theory COMMAND`` in ``processes`` local processes joined by jax.distributed.

    Process 0 keeps this terminal's output; the others' output goes to log files that are printed
    (their last lines) if they fail. As soon as one process fails, the others are stopped.

    Args:
      command: ``["reproduce", LAB, ...]`` (a leading ``--`` is dropped).
      processes: how many processes (>= 1).
      devices_per_process: JAX CPU devices per process (default: the cores divided among them).
      heartbeat_s: passed on as ``--heartbeat-s``.
      timeout_s: stop everything after this many seconds (None: no limit).

    Returns:
      0 when every process succeeded, else the first failure's exit code (124 on timeout).
    """
    from . import interrupts
    from .jax_setup import available_cores

    command = check_command(command)
    if processes < 1:
        raise ConfigError("--processes", processes, "an integer >= 1")
    if devices_per_process is None:
        devices_per_process = max(1, available_cores() // processes)
    elif devices_per_process < 1:
        raise ConfigError("--devices-per-process", devices_per_process, "an integer >= 1")
    address = f"127.0.0.1:{free_port()}"
    logs = Path(tempfile.mkdtemp(prefix="sharp-theory-launch-"))
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS" or
           "xla_force_host_platform_device_count" not in v}
    env["SHARP_THEORY_CPU_DEVICES"] = str(devices_per_process)
    env[SCRATCH_PARENT_ENV] = str(logs)
    children: list[subprocess.Popen] = []
    stop = interrupts.register(lambda: _stop(children))
    try:
        for index in range(processes):
            argv = [sys.executable, "-m", "sharp_theory.cli", *command, "--coordinator", address,
                    "--num-processes", str(processes), "--process-id", str(index),
                    "--heartbeat-s", str(heartbeat_s)]
            if index == 0:
                children.append(subprocess.Popen(argv, env=env))
            else:
                with open(logs / f"process-{index}.log", "wb") as log:
                    children.append(subprocess.Popen(argv, env=env, stdout=log,
                                                     stderr=subprocess.STDOUT))
            print(f"sharp-theory launch: process {index} of {processes} started (pid "
                  f"{children[-1].pid}, {devices_per_process} CPU device(s), coordinator "
                  f"{address})", file=sys.stderr, flush=True)
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        while True:
            codes = [child.poll() for child in children]
            if all(code == 0 for code in codes):
                return 0
            failed = [(index, code) for index, code in enumerate(codes) if code not in (None, 0)]
            if failed or (deadline is not None and time.monotonic() > deadline):
                _stop(children)
                if failed:
                    index, code = failed[0]
                    reason = (f"process {index} (pid {children[index].pid}) exited with code "
                              f"{code}" + (f" (signal {-code})" if code < 0 else ""))
                else:
                    index, code, reason = None, 124, f"timeout after {timeout_s} s"
                print(f"sharp-theory launch: {reason}; stopped the other processes",
                      file=sys.stderr, flush=True)
                log = logs / f"process-{index}.log"
                if index and log.is_file():
                    tail = log.read_text(errors="replace").splitlines()[-15:]
                    print("\n".join(f"  [process {index}] {line}" for line in tail),
                          file=sys.stderr)
                return code if code > 0 else 1
            time.sleep(POLL_S)
    finally:
        _stop(children)
        interrupts.unregister(stop)
        shutil.rmtree(logs, ignore_errors=True)
