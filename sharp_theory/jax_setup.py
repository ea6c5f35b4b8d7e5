"""The two JAX settings sharp_theory needs, applied the moment JAX is imported.

``import sharp_theory`` does not import JAX (so that ``sharp-theory --help`` and ``list`` start
in a fraction of a second). Instead the package root calls :func:`apply_when_jax_loads`: if JAX
is already imported the settings are applied at once, otherwise a one-shot import hook applies
them right after ``import jax`` finishes, by whichever module imports it first (sharp_theory's
own or the user's), and before any array exists or any backend starts:

* float64 support (``jax_enable_x64``), so exact checks can run in float64; arrays keep the
  dtype you give them. ``SHARP_THEORY_X64=0`` leaves JAX's default alone (``1``, the default,
  turns it on; any other value is refused).
* one CPU device per available core (``jax_num_cpu_devices``), so a sweep can split its runs
  over all cores. ``SHARP_THEORY_CPU_DEVICES=n`` asks for n devices (1 leaves JAX's default
  alone). Nothing is changed when JAX has already started its backends, when ``XLA_FLAGS``
  forces a host device count, or when ``jax_num_cpu_devices`` was set by you.
* a CPU thread pool with more threads than devices (``NPROC``, unless you set it). XLA runs each
  CPU device's program on one thread of its intra-op pool, which has one thread per core by
  default; LAPACK kernels (``eigh``, ``svd``, ``cholesky``... of a batch of matrices, as a
  vmapped observable makes) split their batch over that same pool and wait for the pieces. With
  one device per core, every pool thread can hold a device program that waits for pieces no
  thread is left to run: the sweep hangs at 0% CPU. ``cores + devices`` threads leave a free
  thread for the pieces whatever the devices do (see :func:`intra_op_threads`).
* the persistent compilation cache (:mod:`sharp_theory.compile_cache`), on by default.

The environment is read and checked when the package is imported (a bad value fails there,
with a :class:`~sharp_theory.errors.ConfigError`; the ``sharp-theory`` command prints it as one
line and exits with code 2). :func:`check_environment` checks every variable sharp_theory reads.
"""
from __future__ import annotations

import importlib.abc
import os
import shutil
import sys
import tempfile
import threading
from pathlib import Path

from . import compile_cache
from .errors import ConfigError

X64_VALUES = ("0", "1")
SWITCH_VALUES = ("", "0", "1")
_PRIVATE_FOLDERS: list[str] = []


def available_cores() -> int:
    """CPU cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def requested_cpu_devices() -> int:
    """The JAX CPU device count asked for by ``SHARP_THEORY_CPU_DEVICES`` (default: one per core).

    Raises:
        ValueError: the variable is set to something other than a positive integer.
    """
    requested = os.environ.get("SHARP_THEORY_CPU_DEVICES", "").strip()
    if requested and not (requested.isdigit() and 1 <= int(requested) <= 4096):
        raise ConfigError("SHARP_THEORY_CPU_DEVICES", requested, "an integer in [1, 4096] (the "
                          "number of JAX CPU devices; 1 leaves JAX's default alone)")
    return int(requested) if requested else available_cores()


STALL_VARIABLE = "SHARP_THEORY_STALL_S"
DEFAULT_STALL_SECONDS = 300.0
"""How long a compiled CPU computation may use no CPU time before it is called stalled."""


def stall_seconds() -> float | None:
    """The stall limit from ``SHARP_THEORY_STALL_S`` (default 300 s; ``0`` never stops a run).

    Returns:
        Seconds, or None when the watchdog is off.

    Raises:
        ConfigError: not a number in [0, 1e6].
    """
    value = os.environ.get(STALL_VARIABLE, "").strip()
    if not value:
        return DEFAULT_STALL_SECONDS
    try:
        seconds = float(value)
    except ValueError:
        seconds = float("nan")
    if not 0.0 <= seconds <= 1e6:
        raise ConfigError(STALL_VARIABLE, value, "seconds in [0, 1e6] (0 turns the stall watchdog "
                          "off)")
    return seconds or None


def x64_requested() -> bool:
    """Whether ``SHARP_THEORY_X64`` asks for float64 (unset or ``1``) or not (``0``).

    Raises:
        ConfigError: any other value (``false``, ``maybe``: a typo must not pick a precision).
    """
    value = os.environ.get("SHARP_THEORY_X64", "1").strip()
    if value not in X64_VALUES:
        raise ConfigError("SHARP_THEORY_X64", value, "0 (JAX's float32 default) or 1 (float64, "
                          "the default)")
    return value == "1"


def check_environment() -> None:
    """Check every environment variable sharp_theory reads; one ConfigError for the first bad one.

    Raises:
        ConfigError: a variable outside its documented values (``sharp-theory --help`` lists them).
    """
    x64_requested()
    requested_cpu_devices()
    stall_seconds()
    compile_cache.folder()
    for name in ("SHARP_THEORY_PROGRESS", "SHARP_THEORY_QUICK"):
        value = os.environ.get(name, "").strip()
        if value.lower() not in SWITCH_VALUES + ("true", "false", "yes", "no"):
            raise ConfigError(name, value, "0 or 1")
    labs = os.environ.get("SHARP_THEORY_LABS")
    if labs is not None and not Path(labs).is_dir():
        raise ConfigError("SHARP_THEORY_LABS", labs, "an existing folder of lab scripts")
    seeds = os.environ.get("SHARP_THEORY_SEEDS", "").strip()
    if seeds and not (seeds.isdigit() and 1 <= int(seeds) <= 1000):
        raise ConfigError("SHARP_THEORY_SEEDS", seeds, "an integer in [1, 1000]")
    device = os.environ.get("SHARP_THEORY_DEVICE", "").strip()
    if device not in ("", "cpu", "gpu"):
        raise ConfigError("SHARP_THEORY_DEVICE", device, "cpu or gpu")


def private_matplotlib_folder_if_needed() -> None:
    """Give matplotlib a private folder when its own would be unwritable.

    matplotlib keeps its font cache in ``MPLCONFIGDIR`` or ``$XDG_CACHE_HOME/matplotlib``; when
    that cannot be written it warns and leaves a ``matplotlib-*`` folder in /tmp. The command
    line instead points ``MPLCONFIGDIR`` at a folder of its own, removed when the command ends
    (:func:`remove_private_folders`). Nothing changes when ``MPLCONFIGDIR`` is set or the
    usual folders are writable.
    """
    if os.environ.get("MPLCONFIGDIR") or "matplotlib" in sys.modules:
        return
    home = Path.home()
    config = Path(os.environ.get("XDG_CONFIG_HOME") or home / ".config") / "matplotlib"
    cache = Path(os.environ.get("XDG_CACHE_HOME") or home / ".cache") / "matplotlib"
    if compile_cache.usable(config) and compile_cache.usable(cache):
        return
    from . import interrupts

    private = tempfile.mkdtemp(prefix="sharp-theory-matplotlib-")
    _PRIVATE_FOLDERS.append(private)
    interrupts.register(remove_private_folders)  # Ctrl-C ends the process without `finally`
    os.environ["MPLCONFIGDIR"] = private


def remove_private_folders() -> None:
    """Remove the folders :func:`private_matplotlib_folder_if_needed` made."""
    while _PRIVATE_FOLDERS:
        shutil.rmtree(_PRIVATE_FOLDERS.pop(), ignore_errors=True)


# The intra-op thread count XLA's CPU client was started with, when sharp_theory set it (None:
# not known, e.g. JAX had started its backends before sharp_theory was imported).
_INTRA_OP_THREADS: int | None = None


def _forced_device_count() -> int | None:
    """The host device count ``XLA_FLAGS`` forces, if any."""
    for flag in os.environ.get("XLA_FLAGS", "").split():
        if flag.startswith("--xla_force_host_platform_device_count="):
            value = flag.partition("=")[2]
            return int(value) if value.isdigit() else None
    return None


def intra_op_threads() -> int:
    """The threads of XLA's CPU intra-op pool in this process (``NPROC`` if set, else one per core).

    Returns:
      The number sharp_theory gave XLA when it started JAX, else ``NPROC`` if it is a positive
      integer, else the available cores (XLA's default).
    """
    if _INTRA_OP_THREADS is not None:
        return _INTRA_OP_THREADS
    value = os.environ.get("NPROC", "").strip()
    return int(value) if value.isdigit() and int(value) > 0 else available_cores()


def apply(jax) -> None:
    """Apply float64, the CPU device count, the CPU thread pool and the compile cache to the
    imported ``jax`` module."""
    global _INTRA_OP_THREADS
    if x64_requested():
        jax.config.update("jax_enable_x64", True)
    count = requested_cpu_devices()
    forced = _forced_device_count()
    devices = 1
    if forced is not None:
        devices = forced
    elif count > 1 and jax.config.jax_num_cpu_devices == -1:
        try:
            jax.config.update("jax_num_cpu_devices", count)
            devices = count
        except RuntimeError:  # JAX already runs: its device count can no longer change
            pass
    elif jax.config.jax_num_cpu_devices > 1:
        devices = jax.config.jax_num_cpu_devices
    if devices > 1 and "NPROC" not in os.environ and not _backends_started(jax):
        # Read by XLA when its CPU client starts (lazily, at the first device or array).
        os.environ["NPROC"] = str(available_cores() + devices)
        _INTRA_OP_THREADS = available_cores() + devices
    compile_cache.enable(jax)


def _backends_started(jax) -> bool:
    try:
        from jax._src import xla_bridge
        return bool(getattr(xla_bridge, "_backends", {}))
    except Exception:  # a JAX without this private module: assume started, change nothing
        return True


class _AfterJaxImport(importlib.abc.MetaPathFinder):
    """Finds nothing itself: wraps the real loader of ``jax`` so that :func:`apply` runs once
    ``jax/__init__.py`` has executed, then removes itself from ``sys.meta_path``."""

    def __init__(self):
        self._lock = threading.Lock()

    def find_spec(self, fullname, path=None, target=None):
        if fullname != "jax":
            return None
        with self._lock:
            if self in sys.meta_path:
                sys.meta_path.remove(self)
        for finder in sys.meta_path:
            find_spec = getattr(finder, "find_spec", None)
            spec = find_spec(fullname, path, target) if find_spec else None
            if spec is not None:
                if spec.loader is not None and hasattr(spec.loader, "exec_module"):
                    spec.loader = _ApplyAfterExec(spec.loader)
                return spec
        return None


class _ApplyAfterExec(importlib.abc.Loader):
    """The ``jax`` package's own loader, plus :func:`apply` after the module has executed."""

    def __init__(self, loader):
        self._loader = loader

    def create_module(self, spec):
        return self._loader.create_module(spec)

    def exec_module(self, module):
        self._loader.exec_module(module)
        apply(module)

    def __getattr__(self, name):  # get_resource_reader, get_data, is_package, ...
        return getattr(self._loader, name)


def apply_when_jax_loads() -> None:
    """Check the environment now; apply the settings now if JAX is loaded, else on its import.

    Raises:
        ConfigError: a variable outside its documented values (see :func:`check_environment`).
    """
    check_environment()
    if "jax" in sys.modules:
        apply(sys.modules["jax"])
    elif not any(isinstance(finder, _AfterJaxImport) for finder in sys.meta_path):
        sys.meta_path.insert(0, _AfterJaxImport())


def refuse_on_the_command_line(error: ConfigError) -> None:
    """When the ``sharp-theory`` command itself is starting, end it with ``error`` in one line and
    exit code 2 instead of an import traceback; in any other program, return (the caller raises).
    """
    if Path(sys.argv[0] if sys.argv else "").name == "sharp-theory":
        print(f"sharp-theory: error: {str(error).splitlines()[0]}", file=sys.stderr)
        raise SystemExit(2)
