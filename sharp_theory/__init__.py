"""sharp_theory: a theory simulator for sharpness-aware minimization.

Small models whose behaviour is known exactly, run under GD, SGD, SAM and its variants and BAR,
with exact Hessians, to check published claims. Public API (pinned by tests/test_public_api.py)::

    import sharp_theory as st
    problem = st.problems.op_toy(noise=0.5)
    traj = st.run(problem, st.optim.sam(lr=1e-4, rho=0.2), steps=10_000,
                  key=jax.random.key(0), stride=100,
                  observe={"B": st.observables.of_params(st.measure.balancedness)})

Importing sharp_theory loads no JAX, numpy or plotting library: each part is imported on first use
(``st.problems``, ``st.run``, ...), so ``sharp-theory --help`` starts at once. It does arrange
for two JAX settings, applied as soon as JAX is imported by anyone (sharp_theory.jax_setup):
float64 support (``SHARP_THEORY_X64=0`` leaves JAX's default alone) and one CPU device per
core (``SHARP_THEORY_CPU_DEVICES=n``), plus the persistent compilation cache
(sharp_theory.compile_cache; ``SHARP_THEORY_COMPILE_CACHE=0`` turns it off).
"""
from . import jax_setup
from .errors import ConfigError
from .version import __version__

try:
    jax_setup.apply_when_jax_loads()
except ConfigError as _error:  # a bad environment variable: one line from the command line
    jax_setup.refuse_on_the_command_line(_error)
    raise

# Imported on first use (PEP 562): the subpackages import JAX, numpy, sympy, matplotlib
# (plotting) or hypothesis (testing), which the command line's --help and list do not need.
_SUBMODULES = ("problems", "optim", "dynamics", "observables", "measure", "theory", "studies",
               "claims", "labkit", "plotting", "testing")
_FROM_DYNAMICS = ("run", "sweep", "flow", "Trajectory", "SweepResult")


def __getattr__(name: str):
    import importlib

    if name in _SUBMODULES:
        return importlib.import_module(f"{__name__}.{name}")
    if name in _FROM_DYNAMICS:
        return getattr(importlib.import_module(f"{__name__}.dynamics"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_SUBMODULES) | set(_FROM_DYNAMICS))


__all__ = ["problems", "optim", "dynamics", "observables", "measure", "theory", "studies", "claims", "labkit",
           "plotting", "testing", "run", "sweep", "flow", "Trajectory", "SweepResult", "ConfigError", "__version__"]
