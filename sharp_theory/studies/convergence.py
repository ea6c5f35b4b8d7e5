"""Convergence rates of stochastic methods: the average squared gradient norm over a horizon.

Non-convex convergence theorems bound ``(1/T) Σ_{t<T} E‖∇L(w_t)‖²`` when the step size and the
SAM radius are tuned to the horizon T (Andriushchenko & Flammarion 2022, Sec. 5: unnormalized
SAM with stochastic gradients, step ∝ 1/√T and ρ ∝ T^(-1/4), rate O(1/√T)). The functions here
measure that average on a problem for several horizons, so the exponent can be compared with the
theorem's: run each horizon as one :func:`sharp_theory.sweep` over seeds, record ‖∇L(w_t)‖² at
every step, average over steps and seeds.

References:
  Andriushchenko, Flammarion. Towards Understanding Sharpness-Aware Minimization. ICML 2022,
  Sec. 5 (convergence of SAM with stochastic gradients for smooth non-convex objectives).
"""
from __future__ import annotations

from typing import Callable, Sequence

import jax
import numpy as np

from ..dynamics import sweep
from ..errors import ConfigError, check_int, check_positive
from ..observables import of_params_and_problem
from ..tree import tree_squared_norm


def squared_gradient_norm(params, problem):
    """``‖∇L(w)‖²`` of the problem's reporting loss (full data, or the closed-form population).

    Args:
      params: parameters (any pytree).
      problem: a :class:`sharp_theory.problems.Problem`.

    Returns:
      A scalar array.

    References:
      Andriushchenko & Flammarion 2022, Sec. 5.
    """
    return tree_squared_norm(jax.grad(problem.evaluation_loss)(params))


def horizon_schedule(horizon: int, lr0: float, rho0: float) -> tuple[float, float]:
    """The step size ``lr0/√T`` and SAM radius ``rho0·T^(-1/4)`` tuned to a horizon T.

    Args:
      horizon: the number of steps T (≥ 1).
      lr0: the step-size constant (> 0).
      rho0: the radius constant (≥ 0).

    Returns:
      ``(lr, rho)`` as floats.

    References:
      Andriushchenko & Flammarion 2022, Sec. 5; papers/andriushchenko2022-diagonal-nets.md.

    Examples:
      >>> from sharp_theory.studies.convergence import horizon_schedule
      >>> [round(float(v), 6) for v in horizon_schedule(10_000, lr0=1.0, rho0=0.5)]
      [0.01, 0.05]
    """
    return lr0 / np.sqrt(horizon), rho0 / horizon ** 0.25


def leading_term(problem, lr0: float, horizons: Sequence[int], minimum_loss: float = 0.0) -> np.ndarray:
    """``2 (L(w0) − L*) / (lr0 √T)`` for each horizon T: the optimization term of the standard
    non-convex bound for step ``lr0/√T``; the noise and perturbation terms only add to it.

    Args:
      problem: the Problem (its ``params0`` is w0; its reporting loss is L).
      lr0: the step-size constant.
      horizons: step counts T.
      minimum_loss: L* (0 for problems that can be fitted exactly).

    Returns:
      A float64 array, one term per horizon.

    Raises:
      ConfigError: ``lr0`` is not positive.

    References:
      Andriushchenko & Flammarion 2022, Sec. 5 (the optimization term of the bound).
    """
    check_positive("lr0", lr0)
    gap = float(problem.evaluation_loss(problem.params0)) - minimum_loss
    return 2.0 * gap / (lr0 * np.sqrt(np.asarray(horizons, float)))


def average_squared_gradient_norm(problem, make_optimizer: Callable, horizons: Sequence[int], *,
                                  seeds: int = 8) -> np.ndarray:
    """``(1/T) Σ_{t<T} ‖∇L(w_t)‖²`` averaged over seeds, for each horizon T.

    Args:
      problem: a Problem with a finite data set or a population loss.
      make_optimizer: ``horizon -> Optimizer`` (the step size / radius tuned to that horizon, e.g.
        with :func:`horizon_schedule`).
      horizons: increasing positive step counts.
      seeds: independent runs per horizon (their batch draws differ).

    Returns:
      float64 array, one average per horizon (NaN where any run diverged).

    References:
      Andriushchenko & Flammarion 2022, Sec. 5.
    """
    horizons = [check_int("horizons", h, minimum=1) for h in horizons]
    if not horizons:
        raise ConfigError("horizons", horizons, "a non-empty list of positive step counts")
    seeds = check_int("seeds", seeds, minimum=1)
    averages = []
    for horizon in horizons:
        result = sweep(problem, {"run": make_optimizer(horizon)}, steps=horizon, seeds=seeds,
                       observe={"squared_gradient_norm": of_params_and_problem(squared_gradient_norm)}, stride=1)
        trajectory = result["run"]
        values = np.asarray(trajectory.observed["squared_gradient_norm"])[..., :-1]  # t < T
        averages.append(float("nan") if np.any(trajectory.diverged) else float(np.mean(values)))
    return np.asarray(averages)


def rate_exponent(horizons: Sequence[int], averages: Sequence[float]) -> float:
    """The least-squares slope of ``log average`` against ``log T`` (−0.5 for a 1/√T rate).

    Args:
      horizons: the step counts T (> 0).
      averages: the measured averages at those horizons (from
        :func:`average_squared_gradient_norm`).

    Returns:
      The slope, a float; NaN for fewer than two horizons or any non-finite or non-positive
      average.

    Raises:
      ConfigError: a horizon ≤ 0.

    Examples:
      >>> from sharp_theory.studies.convergence import rate_exponent
      >>> round(rate_exponent([100, 400, 1600], [0.1, 0.05, 0.025]), 12)  # halves per 4x steps
      -0.5
    """
    horizons, averages = np.asarray(horizons, float), np.asarray(averages, float)
    if horizons.size < 2:
        return float("nan")
    check_positive("horizons", float(np.min(horizons)))
    if not np.all(np.isfinite(averages)) or np.any(averages <= 0):
        return float("nan")
    return float(np.polyfit(np.log(horizons), np.log(averages), 1)[0])
