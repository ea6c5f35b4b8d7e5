"""sharp_theory: a theory simulator for sharpness-aware minimization.

Small models whose behaviour is known exactly, run under GD, SGD, SAM and its variants and BAR,
with exact Hessians, to check published claims. Public API (pinned by tests/test_public_api.py)::

    import sharp_theory as st
    problem = st.problems.op_toy(noise=0.5)
    traj = st.run(problem, st.optim.sam(lr=1e-4, rho=0.2), steps=10_000,
                  key=jax.random.key(0), stride=100,
                  observe={"B": st.observables.of_params(st.measure.balancedness)})

Importing sharp_theory changes two JAX settings (each can be turned off before the import):

* float64 support (``jax_enable_x64``) so that exact checks can run in float64; arrays keep the
  dtype you give them. ``SHARP_THEORY_X64=0`` leaves JAX's default alone.
* one CPU device per available core (``jax_num_cpu_devices``), so that :func:`sweep` can split
  its runs over all cores (JAX's default is one CPU device, which runs a sweep on one core).
  ``SHARP_THEORY_CPU_DEVICES=n`` asks for n devices (1 leaves JAX's default alone). Nothing is
  changed when JAX has already started its backends, when ``XLA_FLAGS`` forces a host device
  count, or when ``jax_num_cpu_devices`` was set by you.
"""
import os as _os

import jax as _jax

if _os.environ.get("SHARP_THEORY_X64", "1") != "0":
    _jax.config.update("jax_enable_x64", True)


def _available_cores() -> int:
    try:
        return len(_os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return _os.cpu_count() or 1


def _one_cpu_device_per_core() -> None:
    requested = _os.environ.get("SHARP_THEORY_CPU_DEVICES", "").strip()
    if requested and not (requested.isdigit() and int(requested) >= 1):
        raise ValueError(f"SHARP_THEORY_CPU_DEVICES={requested!r}: expected a positive integer "
                         "(the number of JAX CPU devices; 1 leaves JAX's default alone)")
    count = int(requested) if requested else _available_cores()
    forced = "xla_force_host_platform_device_count" in _os.environ.get("XLA_FLAGS", "")
    if count <= 1 or forced or _jax.config.jax_num_cpu_devices != -1:
        return
    try:
        _jax.config.update("jax_num_cpu_devices", count)
    except RuntimeError:  # JAX already runs: its device count can no longer change
        pass


_one_cpu_device_per_core()

from . import claims, dynamics, measure, observables, optim, problems, theory  # noqa: E402
from .dynamics import SweepResult, Trajectory, run, sweep  # noqa: E402
from .errors import ConfigError  # noqa: E402
from .version import __version__  # noqa: E402

# Imported on first use (PEP 562), so that ``import sharp_theory`` does not load matplotlib
# (plotting) or the lab machinery: ``st.plotting``, ``st.labkit`` and ``st.studies`` still work.
# ``st.testing`` (the claim fuzzer) too: it needs hypothesis.
_ON_FIRST_USE = ("labkit", "plotting", "studies", "testing")


def __getattr__(name: str):
    if name in _ON_FIRST_USE:
        import importlib

        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_ON_FIRST_USE))


__all__ = ["problems", "optim", "dynamics", "observables", "measure", "theory", "studies", "claims", "labkit",
           "plotting", "testing", "run", "sweep", "Trajectory", "SweepResult", "ConfigError", "__version__"]
