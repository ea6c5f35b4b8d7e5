"""The two JAX settings sharp_theory needs, applied the moment JAX is imported.

``import sharp_theory`` does not import JAX (so that ``sharp-theory --help`` and ``list`` start
in a fraction of a second). Instead the package root calls :func:`apply_when_jax_loads`: if JAX
is already imported the settings are applied at once, otherwise a one-shot import hook applies
them right after ``import jax`` finishes, by whichever module imports it first (sharp_theory's
own or the user's), and before any array exists or any backend starts:

* float64 support (``jax_enable_x64``), so exact checks can run in float64; arrays keep the
  dtype you give them. ``SHARP_THEORY_X64=0`` leaves JAX's default alone.
* one CPU device per available core (``jax_num_cpu_devices``), so a sweep can split its runs
  over all cores. ``SHARP_THEORY_CPU_DEVICES=n`` asks for n devices (1 leaves JAX's default
  alone). Nothing is changed when JAX has already started its backends, when ``XLA_FLAGS``
  forces a host device count, or when ``jax_num_cpu_devices`` was set by you.
* the persistent compilation cache (:mod:`sharp_theory.compile_cache`), on by default.

The environment is read and checked when the package is imported (a bad value fails there).
"""
from __future__ import annotations

import importlib.abc
import os
import sys
import threading

from . import compile_cache


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
    if requested and not (requested.isdigit() and int(requested) >= 1):
        raise ValueError(f"SHARP_THEORY_CPU_DEVICES={requested!r}: expected a positive integer "
                         "(the number of JAX CPU devices; 1 leaves JAX's default alone)")
    return int(requested) if requested else available_cores()


def apply(jax) -> None:
    """Apply float64, the CPU device count and the compile cache to the imported ``jax`` module."""
    if os.environ.get("SHARP_THEORY_X64", "1") != "0":
        jax.config.update("jax_enable_x64", True)
    count = requested_cpu_devices()
    forced = "xla_force_host_platform_device_count" in os.environ.get("XLA_FLAGS", "")
    if count > 1 and not forced and jax.config.jax_num_cpu_devices == -1:
        try:
            jax.config.update("jax_num_cpu_devices", count)
        except RuntimeError:  # JAX already runs: its device count can no longer change
            pass
    compile_cache.enable(jax)


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
    """Check the environment now; apply the settings now if JAX is loaded, else on its import."""
    requested_cpu_devices()
    compile_cache.folder()
    if "jax" in sys.modules:
        apply(sys.modules["jax"])
    elif not any(isinstance(finder, _AfterJaxImport) for finder in sys.meta_path):
        sys.meta_path.insert(0, _AfterJaxImport())
