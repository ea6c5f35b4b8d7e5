"""Trajectories (:func:`run`, module :mod:`.trajectory`) and vmapped grids (:func:`sweep`,
module :mod:`.sweeps`)."""
from .sweeps import SweepResult, lane_mesh, seed_key_data, sweep
from .trajectory import (Observable, RunInterrupted, Trajectory, as_observables,
                         estimate_run_memory, evaluation_loss, record_steps, run, simulate)

__all__ = ["run", "sweep", "simulate", "Trajectory", "SweepResult", "Observable", "as_observables",
           "evaluation_loss", "record_steps", "lane_mesh", "RunInterrupted", "estimate_run_memory",
           "seed_key_data"]
