"""Two statements that sound right and are false: the fuzzer's own acceptance test.

``sharp-theory fuzz sharp_theory/testing/known_false.py`` falsifies both (exit 1) and reports a
shrunk counterexample next to the boundary where each statement stops being true. The functions
:func:`usam_boundary_gap` and :func:`sam_boundary_gap` say how close to the theory's boundary a
counterexample lies.

References:
  Kim, Park, Choi, Lee. Stability analysis of sharpness-aware minimization (arXiv 2301.06308):
    a saddle attracts unnormalized SAM once ρ exceeds 1/|λ| of its negative direction.
  Bartlett, Long, Bousquet. The dynamics of sharpness-aware minimization: bouncing across ravines
    and drifting towards wide minima (JMLR 24, 2023); Wen, Ma, Li. How does sharpness-aware
    minimization minimize sharpness? (ICLR 2023, Thm 4.8): full-batch SAM on a quadratic ends on
    a 2-cycle of radius ηρλ/(2 − ηλ), not at the minimizer.
"""
from __future__ import annotations

import jax
import numpy as np
from hypothesis import assume
from hypothesis import strategies as hs

from sharp_theory import optim
from sharp_theory.dynamics import run
from sharp_theory.observables import of_params
from sharp_theory.testing.decorator import claim
from sharp_theory.testing.instances import quadratics

SADDLE_STEPS = 200
SAM_STEPS = 1000
SAM_TOLERANCE = 1e-6
KEY = jax.random.key(0)


def parameters(params):
    """Observable: the iterate itself (module level: one compiled program per shape)."""
    return params


def final_iterate(problem, optimizer, steps):
    trajectory = run(problem, optimizer, steps=steps, key=KEY, observe={"x": of_params(parameters)},
                     stride=steps)
    return np.asarray(trajectory.final("x"), dtype=np.float64)


@claim(rho=hs.floats(0.0, 3.0), lr=hs.floats(0.01, 0.1),
       quad=quadratics(dims=(2, 3, 4), eigenvalues=(0.5, 2.0), saddle_curvature=(0.5, 2.0),
                       start_scale=(1e-4, 1e-2)))
def usam_escapes_saddle(rho, lr, quad):
    """USAM started near the strict saddle of a quadratic moves away from it along its unstable
    direction (slack: log-growth of that component over 200 steps)."""
    unstable = quad.facts["eigenvectors"][:, 0]
    start = np.asarray(quad.problem.params0)
    end = final_iterate(quad.problem, optim.usam(lr, rho), SADDLE_STEPS)
    return float(np.log(abs(unstable @ end)) - np.log(abs(unstable @ start)))


@claim(rho=hs.floats(0.0, 0.5), lr=hs.floats(0.1, 0.45),
       quad=quadratics(dims=(1, 2, 3, 4), eigenvalues=(0.5, 2.0), start_scale=(0.1, 1.0)))
def sam_converges_to_minimizer(rho, lr, quad):
    """Full-batch normalized SAM on a positive-definite quadratic ends within 1e-6 of its
    minimizer (slack: 1e-6 − distance after 1000 steps)."""
    assume(lr * quad.facts["lambda_max"] < 1)
    end = final_iterate(quad.problem, optim.sam(lr, rho), SAM_STEPS)
    return SAM_TOLERANCE - float(np.linalg.norm(end - quad.facts["minimizer"]))


def usam_boundary_gap(values: dict) -> float:
    """|ρμ − 1| at a counterexample of :func:`usam_escapes_saddle` (0 on the theory's boundary)."""
    mu = -values["quad"].facts["lambda_min"]
    return abs(values["rho"] * mu - 1.0)


def sam_boundary_gap(values: dict) -> float:
    """|r/1e-6 − 1| with r = ηρλ/(2 − ηλ) the 2-cycle radius at a counterexample of
    :func:`sam_converges_to_minimizer` (0 on the theory's boundary)."""
    product = values["lr"] * values["quad"].facts["lambda_max"]
    radius = product * values["rho"] / (2.0 - product)
    return abs(radius / SAM_TOLERANCE - 1.0)


__all__ = ["usam_escapes_saddle", "sam_converges_to_minimizer", "usam_boundary_gap",
           "sam_boundary_gap"]
