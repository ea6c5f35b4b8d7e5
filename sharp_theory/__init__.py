"""sharp_theory: a theory simulator for sharpness-aware minimization.

Small models whose behaviour is known exactly, run under GD, SGD, SAM and its variants and BAR,
with exact Hessians, to check published claims. Public API::

    import sharp_theory as st
    problem = st.problems.op_toy(noise=0.5)
    traj = st.run(problem, st.optim.sam(lr=1e-4, rho=0.2), steps=10_000,
                  key=jax.random.key(0), observe={"B": st.measure.balancedness}, stride=100)

Importing sharp_theory turns on JAX's float64 support (``jax_enable_x64``) so that exact checks
can run in float64; arrays keep the dtype you give them. Set ``SHARP_THEORY_X64=0`` before the
import to leave JAX's default alone.
"""
import os as _os

import jax as _jax

if _os.environ.get("SHARP_THEORY_X64", "1") != "0":
    _jax.config.update("jax_enable_x64", True)

__version__ = "0.1.0"

from . import claims, measure, optim, problems, theory  # noqa: E402
from .dynamics import SweepResult, Trajectory, run, sweep  # noqa: E402
from .errors import ConfigError  # noqa: E402
from . import labkit, plotting  # noqa: E402

__all__ = ["problems", "optim", "measure", "theory", "claims", "labkit", "plotting", "run", "sweep",
           "Trajectory", "SweepResult", "ConfigError", "__version__"]
