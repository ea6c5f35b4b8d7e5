"""Trajectories (:func:`run`, module :mod:`.trajectory`) and vmapped grids (:func:`sweep`,
module :mod:`.sweeps`)."""
from .sweeps import SweepResult, lane_mesh, sweep
from .trajectory import (Observable, Trajectory, as_observables, evaluation_loss, record_steps, run,
                         simulate)

__all__ = ["run", "sweep", "simulate", "Trajectory", "SweepResult", "Observable", "as_observables",
           "evaluation_loss", "record_steps", "lane_mesh"]
