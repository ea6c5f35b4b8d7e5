"""Claims from Cohen et al. (ICLR 2021) on the edge of stability, checked in the edge-of-stability
lab, and GD's 2/λ_max threshold on quadratics that their argument rests on.

The SAM edge λ_SAM(‖∇L‖) is Long & Bartlett's (claims/long2024.py) and USAM's threshold on
quadratics Agarwala & Dauphin's (claims/agarwala2023.py); neither is in this paper.

References:
  Cohen, Kaur, Li, Kolter, Talwalkar. Gradient Descent on Neural Networks Typically Occurs at the
    Edge of Stability. ICLR 2021 (arXiv 2103.00065).
"""
from __future__ import annotations

from .base import (Claim, MissingMeasurement, Threshold, Verdict, finite_max, finite_min, judge,
                   register)

LAB = "edge-of-stability"
TOY = ("full-batch GD on a one-hidden-layer tanh network (width 100) fitted to 20 points of the "
       "Chebyshev polynomial T_4 on [-1, 1], squared loss; 2/η in {20, 26, 32}, 40k steps")

START_BELOW = 0.9  # λ_max starts below 0.9·(2/η): there is sharpening to see
PEAK_AT_LEAST = 0.97  # ... and rises to at least 0.97·(2/η)
HOVER_BAND = 0.05  # second-half median of λ_max/(2/η) within 1 ± 0.05
HOVER_MAX = 1.1  # and never above 1.1·(2/η)
LOSS_DROP = 0.5  # late median loss below half the loss when the edge is reached
QUADRATIC_TOLERANCE = 5e-3  # bisection in η resolves the boundary to ~1e-5; 5e-3 is generous


def _gd_runs(measured):
    runs = measured["gd_runs"]
    if not len(runs):  # an empty list is a lab that measured nothing
        raise MissingMeasurement("measured.gd_runs (empty)")
    return runs


def _check_progressive_sharpening(measured, *, quick) -> Verdict:
    runs = _gd_runs(measured)
    start = finite_max([r["initial_sharpness"] / r["edge"] for r in runs], "initial ratio")
    peak = finite_min([r["max_sharpness"] / r["edge"] for r in runs], "peak ratio")
    numbers = {"max_initial_ratio": start, "min_peak_ratio": peak, "runs": len(runs)}
    return judge(Threshold("min over runs of peak λ_max/(2/η)", peak, ">=", PEAK_AT_LEAST), numbers,
                 "λ_max starts below 0.9·(2/η) and rises to at least 0.97·(2/η) in every run",
                 also=[Threshold("max over runs of initial λ_max/(2/η)", start, "<", START_BELOW)])


def _check_hovers(measured, *, quick) -> Verdict:
    runs = _gd_runs(measured)
    medians = [r["late_median_ratio"] for r in runs]
    deviation = finite_max([abs(m - 1) for m in medians], "late median ratio")
    late_max = finite_max([r["late_max_ratio"] for r in runs], "late max ratio")
    numbers = {"late_median_ratio_range": [finite_min(medians), finite_max(medians)],
               "late_max_ratio": late_max}
    return judge(Threshold("max over runs of |median λ_max/(2/η) − 1| (second half)", deviation,
                           "<=", HOVER_BAND), numbers,
                 "second half of each run: median λ_max/(2/η) in [0.95, 1.05], max <= 1.1; every "
                 "run's status must be ok (the engine checks it)",
                 also=[Threshold("max over runs of late λ_max/(2/η)", late_max, "<=", HOVER_MAX)])


def _check_loss_falls(measured, *, quick) -> Verdict:
    runs = _gd_runs(measured)
    reduction = finite_max([r["late_median_loss"] / r["loss_when_edge_reached"] for r in runs],
                           "late/edge loss")
    increases = finite_min([r["loss_increases_at_edge"] for r in runs], "loss increases")
    numbers = {"max_late_over_edge_loss": reduction, "min_loss_increases": increases}
    return judge(Threshold("max over runs of late median loss / loss at the edge", reduction, "<",
                           LOSS_DROP), numbers,
                 "after λ_max reaches 0.95·(2/η), the median loss over the last 20% of records "
                 "is < half the loss at that moment, and the loss rises at least once",
                 also=[Threshold("min over runs of loss increases after the edge", increases, ">=",
                                 1)])


def _check_gd_quadratic(measured, *, quick) -> Verdict:
    rows = [r for r in measured["usam_boundaries"] if r["rho"] == 0]
    error = finite_max([r["relative_error"] for r in rows], "relative error")
    return judge(Threshold("max relative error of the bisected boundary vs 2/λ_max", error, "<",
                           QUADRATIC_TOLERANCE),
                 {"max_relative_error": error, "cases": len(rows)},
                 "bisection boundary of GD on 3 random quadratics vs η* = 2/λ_max")


register(Claim(
    id="cohen2021.eos.progressive_sharpening", paper="cohen2021", source="Sec. 3, Fig. 1-2",
    statement="Under full-batch GD the top Hessian eigenvalue rises during training until it "
              "reaches the stability threshold 2/η (in every run: from below 0.9·(2/η) to at "
              "least 0.97·(2/η)).",
    regime=TOY, lab=LAB, check=_check_progressive_sharpening))
register(Claim(
    id="cohen2021.eos.hovers_at_two_over_eta", paper="cohen2021", source="Sec. 3, Fig. 1-2",
    statement="Once at 2/η, λ_max stops rising and hovers around 2/η instead of exceeding it "
              "(second-half median within 5% of 2/η, never above 1.1·(2/η); GD does not diverge).",
    regime=TOY, lab=LAB, check=_check_hovers))
register(Claim(
    id="cohen2021.eos.loss_keeps_falling", paper="cohen2021", source="Sec. 3",
    statement="At the edge of stability the training loss keeps decreasing over long horizons, "
              "though not monotonically (late median loss below half the loss when the edge is "
              "reached; at least one increase).",
    regime=TOY, lab=LAB, check=_check_loss_falls))
register(Claim(
    id="cohen2021.quadratic.gd_threshold", paper="cohen2021", source="Sec. 2 (derived)",
    statement="On a quadratic, GD converges iff η λ_max < 2: the divergence boundary in η is "
              "2/λ_max (bisected boundary within 0.5%).",
    regime="½xᵀHx in 3-D, λ_max in {1, 4, 10}, random rotation, bisection with 3000-step runs",
    lab=LAB, check=_check_gd_quadratic))
