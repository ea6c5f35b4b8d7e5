"""Claims from Cohen et al. (ICLR 2021) on the edge of stability, and the stability thresholds of
SAM and USAM on quadratics that extend its 2/η argument (checked in the edge-of-stability lab).

References:
  Cohen, Kaur, Li, Kolter, Talwalkar. Gradient Descent on Neural Networks Typically Occurs at the
    Edge of Stability. ICLR 2021 (arXiv 2103.00065).
  Agarwala & Dauphin. SAM operates far from home: eigenvalue regularization as a dynamical
    phenomenon. ICML 2023 (arXiv 2302.08692): the SAM edge.
"""
from __future__ import annotations

from .base import Claim, Verdict, register, verdict

LAB = "edge-of-stability"
TOY = ("full-batch GD on a one-hidden-layer tanh network (width 100) fitted to 20 points of the "
       "Chebyshev polynomial T_4 on [-1, 1], squared loss; 2/η in {20, 26, 32}, 40k steps")


def _gd_runs(measured):
    runs = measured["gd_runs"]
    if not runs:
        raise KeyError("gd_runs")
    return runs


def _check_progressive_sharpening(measured) -> Verdict:
    runs = _gd_runs(measured)
    ratios_start = [r["initial_sharpness"] / r["edge"] for r in runs]
    ratios_max = [r["max_sharpness"] / r["edge"] for r in runs]
    numbers = {"max_initial_ratio": max(ratios_start), "min_peak_ratio": min(ratios_max),
               "runs": len(runs)}
    return verdict(max(ratios_start) < 0.9 and min(ratios_max) >= 0.97, numbers,
                   "λ_max starts below 0.9·(2/η) and rises to at least 0.97·(2/η) in every run")


def _check_hovers(measured) -> Verdict:
    runs = _gd_runs(measured)
    medians = [r["late_median_ratio"] for r in runs]
    maxima = [r["late_max_ratio"] for r in runs]
    numbers = {"late_median_ratio_range": [min(medians), max(medians)],
               "late_max_ratio": max(maxima), "diverged_runs": sum(r["status"] != "ok" for r in runs)}
    ok = min(medians) >= 0.95 and max(medians) <= 1.05 and max(maxima) <= 1.1
    return verdict(ok and numbers["diverged_runs"] == 0, numbers,
                   "second half of each run: median λ_max/(2/η) in [0.95, 1.05], max <= 1.1")


def _check_loss_falls(measured) -> Verdict:
    runs = _gd_runs(measured)
    reductions = [r["late_median_loss"] / r["loss_when_edge_reached"] for r in runs]
    increases = [r["loss_increases_at_edge"] for r in runs]
    numbers = {"max_late_over_edge_loss": max(reductions), "min_loss_increases": min(increases)}
    return verdict(max(reductions) < 0.5 and min(increases) >= 1, numbers,
                   "after λ_max reaches 0.95·(2/η), the median loss over the last 20% of records "
                   "is < half the loss at that moment, and the loss rises at least once")


def _check_gd_quadratic(measured) -> Verdict:
    error = measured["gd_quadratic_max_relative_error"]
    return verdict(error < 5e-3, {"max_relative_error": error},
                   "bisection boundary of GD on 3 random quadratics vs η* = 2/λ_max")


def _check_usam(measured) -> Verdict:
    error = measured["usam_max_relative_error"]
    return verdict(error < 5e-3, {"max_relative_error": error,
                                  "cases": len(measured["usam_boundaries"])},
                   "bisection boundary of USAM vs the η solving ηλ(1 + ρλ) = 2")


def _check_sam_edge(measured) -> Verdict:
    runs = measured["sam_runs"]
    deviation = max(r["late_median_abs_deviation_from_sam_edge"] for r in runs)
    above = max(r["late_max_over_gd_edge"] for r in runs)
    return verdict(deviation < 0.05 and above < 1.0,
                   {"max_median_abs_deviation": deviation, "max_lambda_over_gd_edge": above,
                    "rhos": [r["rho"] for r in runs]},
                   "after the first 10% of steps: median |λ_max/λ_SAM(‖∇L‖) − 1| < 5% and "
                   "λ_max < 2/η throughout")


register(Claim(
    id="cohen2021.eos.progressive_sharpening", paper="cohen2021", source="Sec. 3, Fig. 1-2",
    statement="Under full-batch GD the top Hessian eigenvalue rises during training until it "
              "reaches the stability threshold 2/η.",
    regime=TOY, lab=LAB, check=_check_progressive_sharpening))
register(Claim(
    id="cohen2021.eos.hovers_at_two_over_eta", paper="cohen2021", source="Sec. 3, Fig. 1-2",
    statement="Once at 2/η, λ_max stops rising and hovers just around 2/η for the rest of "
              "training instead of exceeding it (GD does not diverge).",
    regime=TOY, lab=LAB, check=_check_hovers))
register(Claim(
    id="cohen2021.eos.loss_keeps_falling", paper="cohen2021", source="Sec. 3",
    statement="At the edge of stability the training loss keeps decreasing over long horizons, "
              "though not monotonically.",
    regime=TOY, lab=LAB, check=_check_loss_falls))
register(Claim(
    id="cohen2021.quadratic.gd_threshold", paper="cohen2021", source="Sec. 2 (derived)",
    statement="On a quadratic, GD converges iff η λ_max < 2: the divergence boundary in η is "
              "2/λ_max.",
    regime="½xᵀHx in 3-D, λ_max in {1, 4, 10}, random rotation, bisection with 3000-step runs",
    lab=LAB, check=_check_gd_quadratic))
register(Claim(
    id="cohen2021.quadratic.usam_threshold", paper="cohen2021",
    source="derived; Agarwala & Dauphin 2023",
    statement="Unnormalized SAM on a quadratic is stable iff η λ (1 + ρ λ) < 2 for the top "
              "eigenvalue: its edge lies below GD's.",
    regime="½xᵀHx in 3-D, λ_max in {1, 4, 10}, ρ in {0.05, 0.2, 0.5}, bisection in η",
    lab=LAB, check=_check_usam))
register(Claim(
    id="cohen2021.sam.tracks_sam_edge", paper="cohen2021",
    source="Agarwala & Dauphin 2023 (SAM edge); derived",
    statement="Full-batch SAM's λ_max equilibrates at the SAM edge "
              "λ_SAM(g) = (g/2ρ)(√(1 + 8ρ/(ηg)) − 1) of the current gradient norm g, below 2/η.",
    regime="the tanh toy above, SAM with η = 0.1 (2/η = 20), ρ in {0.01, 0.03, 0.1}, 40k steps",
    lab=LAB, check=_check_sam_edge))
