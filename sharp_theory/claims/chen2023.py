"""Claims of Chen, Zhang, Kou, Chen, Hsieh, Gu. Why Does Sharpness-Aware Minimization Generalize
Better Than SGD? NeurIPS 2023 (arXiv 2310.07269). Measured by the ``benign-overfitting`` lab.

The lab runs the (d, ‖μ‖) phase diagram of a two-layer conv ReLU network trained with mini-batch
SGD and SAM (sharp_theory.studies.phase_diagram) and reports the numbers these checks read.
"""
from __future__ import annotations

import math

from .base import Claim, Verdict, register, verdict

PAPER = "chen2023"
LAB = "benign-overfitting"
REGIME = ("two-layer conv ReLU, m = 10 filters per sign, P = 2 patches, n = 20, σ_p = 1, "
          "label flip p = 0.1, σ0 = 0.01; mini-batch SGD and SAM (batch 10, lr 0.1, "
          "τ = m√B/(Pσ_p√d)); benign cell = mean test error (observed labels) ≤ p + 0.05")


def _too_small(measured: dict):
    """The --quick grid exercises the code path; it is too small to judge a phase diagram."""
    if measured.get("grid") == "quick":
        return Verdict("inconclusive", {"grid": "quick"},
                       "the --quick grid is too small to judge this claim; run the CPU default")
    return None


def _boundary_slope(measured: dict) -> Verdict:
    if _too_small(measured):
        return _too_small(measured)
    slope = float(measured["sgd_boundary_slope"])
    low, high = float(measured["sgd_boundary_slope_ci_low"]), float(measured["sgd_boundary_slope_ci_high"])
    points = int(measured["sgd_boundary_points"])
    numbers = {"slope": slope, "ci_low": low, "ci_high": high, "boundary_points": points,
               "predicted": 0.25}
    if points < 4 or not math.isfinite(high - low) or high - low > 1.0:
        return Verdict("inconclusive", numbers,
                       "too few boundary points or a confidence interval wider than 1")
    return verdict(low <= 0.25 <= high, numbers,
                   "95% CI of the fitted slope of log ‖μ‖* against log d contains 1/4")


def _sam_region(measured: dict) -> Verdict:
    if _too_small(measured):
        return _too_small(measured)
    contained = float(measured["sam_contains_sgd_fraction"])
    sgd_last, sam_last = int(measured["sgd_benign_cells_largest_d"]), int(measured["sam_benign_cells_largest_d"])
    numbers = {"sam_benign_where_sgd_benign": contained, "sgd_benign_cells_largest_d": sgd_last,
               "sam_benign_cells_largest_d": sam_last,
               "sgd_benign_cells": int(measured["sgd_benign_cells"]),
               "sam_benign_cells": int(measured["sam_benign_cells"])}
    return verdict(contained >= 0.95 and sam_last > sgd_last, numbers,
                   "SAM benign in >= 95% of SGD's benign cells (cell noise), and in strictly more "
                   "cells than SGD at the largest d")


def _noise_coefficients(measured: dict) -> Verdict:
    if _too_small(measured):
        return _too_small(measured)
    sgd, sam = float(measured["max_rho_final_sgd_median"]), float(measured["max_rho_final_sam_median"])
    fraction = float(measured["rho_smaller_fraction"])
    numbers = {"median_max_rho_sgd": sgd, "median_max_rho_sam": sam,
               "cells_with_smaller_rho_under_sam": fraction}
    return verdict(sam < sgd and fraction >= 0.9, numbers,
                   "final max|ρ| (mean over repeats) smaller under SAM in >= 90% of cells")


def _noise_relus_off(measured: dict) -> Verdict:
    if _too_small(measured):
        return _too_small(measured)
    sgd, sam = float(measured["early_ascent_active_sgd"]), float(measured["early_ascent_active_sam"])
    numbers = {"early_active_at_gradient_point_sgd": sgd, "early_active_at_gradient_point_sam": sam,
               "early_active_at_iterate_sgd": float(measured["early_iterate_active_sgd"]),
               "early_active_at_iterate_sam": float(measured["early_iterate_active_sam"]),
               "early_step": int(measured["early_step"])}
    return verdict(sam < sgd, numbers,
                   "fraction of label-aligned noise ReLUs active where the gradient is taken, "
                   "early in training, averaged over cells: SAM < SGD")


register(Claim(
    id="chen2023.benign_overfitting.sgd_boundary_quarter_power",
    paper=PAPER, source="Thm 3.2",
    statement="For mini-batch SGD the benign/harmful boundary follows n‖μ‖⁴ ∝ d P⁴ σ_p⁴, so the "
              "fitted slope of log ‖μ‖* against log d is 1/4.",
    regime=REGIME, lab=LAB, check=_boundary_slope, expected="pass"))

register(Claim(
    id="chen2023.benign_overfitting.sam_region_contains_sgd",
    paper=PAPER, source="Thm 4.1 vs Thm 3.2",
    statement="SAM overfits benignly wherever SGD does, and in strictly more cells at the "
              "largest dimension.",
    regime=REGIME, lab=LAB, check=_sam_region, expected="pass"))

register(Claim(
    id="chen2023.benign_overfitting.sam_smaller_noise_coefficients",
    paper=PAPER, source="Sec. 5 (proof sketch), Lemma on noise memorization",
    statement="SAM keeps the noise-memorization coefficients max|ρ| smaller than SGD does.",
    regime=REGIME, lab=LAB, check=_noise_coefficients, expected="pass"))

register(Claim(
    id="chen2023.benign_overfitting.sam_switches_off_noise_relus",
    paper=PAPER, source="Sec. 5 (proof sketch)",
    statement="Early in training SAM's perturbation switches off the ReLUs that would fit noise: "
              "fewer label-aligned noise ReLUs are active where SAM takes its gradient than "
              "where SGD does.",
    regime=REGIME, lab=LAB, check=_noise_relus_off, expected="pass"))
