"""Trajectories (:func:`run`, module :mod:`.trajectory`), vmapped grids (:func:`sweep`,
module :mod:`.sweeps`) and the flows that predict them (:func:`flow`, module :mod:`.flows`)."""
from .flows import FLOW_KINDS, flow, flow_kinds_for, integrate_flow
from ..errors import StallError
from .stall import wait_for
from .sweeps import SweepResult, lane_mesh, seed_key_data, sweep
from .trajectory import (Observable, RunInterrupted, Trajectory, as_observables,
                         estimate_run_memory, evaluation_loss, record_steps, run, simulate)

__all__ = ["run", "sweep", "simulate", "Trajectory", "SweepResult", "Observable", "as_observables",
           "evaluation_loss", "record_steps", "lane_mesh", "RunInterrupted", "estimate_run_memory",
           "seed_key_data", "flow", "flow_kinds_for", "integrate_flow", "FLOW_KINDS", "StallError", "wait_for"]
