"""Long & Bartlett's SAM edge of stability, checked on SAM trajectories in the edge-of-stability lab.

Their local-quadratic calculation for (normalized) full-batch SAM gives a stability threshold for
the top Hessian eigenvalue that depends on the current gradient norm g:
λ_SAM(g) = (g/2ρ)(√(1 + 8ρ/(ηg)) − 1), below GD's 2/η. The check reads SAM runs of the tanh toy
and compares the λ_max they settle at with λ_SAM(‖∇L_t‖) along the run.

References:
  Long, Bartlett. Sharpness-Aware Minimization and the Edge of Stability. JMLR 25 (2024)
    (arXiv 2309.12488).
"""
from __future__ import annotations

from .base import Claim, Threshold, Verdict, finite_max, judge, register

LAB = "edge-of-stability"
TRACKING = 0.05  # median |λ_max/λ_SAM(‖∇L‖) − 1| over the run after its first 10%
BELOW_GD_EDGE = 1.0  # λ_max·η/2 stays below 1 throughout that part of the run


def _check_sam_edge(measured, *, quick) -> Verdict:
    runs = measured["sam_runs"]
    deviation = finite_max([r["late_median_abs_deviation_from_sam_edge"] for r in runs],
                           "deviation from the SAM edge")
    above = finite_max([r["late_max_over_gd_edge"] for r in runs], "λ_max/(2/η)")
    numbers = {"max_median_abs_deviation": deviation, "max_lambda_over_gd_edge": above,
               "rhos": [r["rho"] for r in runs],
               "final_sharpness": [r["final_sharpness"] for r in runs],
               "final_sam_edge": [r["final_sam_edge"] for r in runs]}
    return judge(Threshold("max over ρ of median |λ_max/λ_SAM(‖∇L‖) − 1| (after 10% of steps)",
                           deviation, "<", TRACKING), numbers,
                 "λ_max of each SAM run (dense/Lanczos) against λ_SAM of that run's own gradient "
                 "norm at the same record; λ_max < 2/η throughout; every run's status ok",
                 also=[Threshold("max over ρ of λ_max/(2/η) after 10% of steps", above, "<",
                                 BELOW_GD_EDGE)])


register(Claim(
    id="long2024.sam_edge.trajectories_settle_at_sam_edge", paper="long2024",
    source="Sec. 3 (the SAM edge), Sec. 4 (experiments)",
    statement="Full-batch SAM's λ_max settles at the SAM edge λ_SAM(g) = (g/2ρ)(√(1 + 8ρ/(ηg)) − 1) "
              "of the current gradient norm g, below GD's 2/η: after the first 10% of steps the "
              "median |λ_max/λ_SAM − 1| is below 5% for every ρ.",
    regime="the edge-of-stability lab's tanh toy (width 100, 20 points of T_4), SAM with η = 0.1 "
           "(2/η = 20), ρ in {0.01, 0.03, 0.1}, 40k full-batch steps",
    lab=LAB, check=_check_sam_edge))
