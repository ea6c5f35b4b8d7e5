"""Trajectories (``run``) and vmapped grids (``sweep``)."""
from .trajectory import Observable, Trajectory, as_observables, evaluation_loss, record_steps, run, simulate
from .sweeps import SweepResult, lane_mesh, sweep

__all__ = ["run", "sweep", "simulate", "Trajectory", "SweepResult", "Observable", "as_observables",
           "evaluation_loss", "record_steps", "lane_mesh"]
