"""Claims of Ding, Drusvyatskiy, Fazel, Harchaoui (2022): flat minima of low-rank matrix recovery.

Paper: Flat minima generalize for low-rank matrix recovery, arXiv 2203.03756. Measured by the
"matrix-sensing" lab (labs/matrix_sensing.py); settings in papers/ding2024-flat-minima-low-rank.md.
"""
from __future__ import annotations

import numpy as np

from .base import Claim, register, verdict

LAB = "matrix-sensing"
PAPER = "ding2024"

EXACT_TOLERANCE = 1e-10  # float64 agreement required of exact identities
SUCCESS_THRESHOLD = 1e-3  # relative recovery error ‖X − M‖_F / ‖M‖_F counted as exact recovery
RECOVERY_FACTOR = 2.0  # "enough measurements": m >= RECOVERY_FACTOR · r (d1 + d2)
FIT_LOSS = 1e-3  # a trajectory "fits" when its final training loss is below this (‖M‖_F = 1)
MARKEDLY_SMALLER = 0.5  # SAM's final str at most half of GD's
TOWARD_FLATTEST = 0.25  # SAM's excess over the flattest str at most a quarter of GD's


def _identity_flat(measured):
    numbers = {
        "str_vs_4_nuclear_rel_error": float(measured["identity_str_vs_4_nuclear_rel_error"]),
        "flat_balancedness_gap": float(measured["identity_flat_balancedness_gap"]),
        "min_excess_over_G": float(measured["identity_min_excess_over_G"]),
        "G_draws": int(measured["identity_G_draws"]),
    }
    holds = (numbers["str_vs_4_nuclear_rel_error"] <= EXACT_TOLERANCE
             and numbers["flat_balancedness_gap"] <= EXACT_TOLERANCE
             and numbers["min_excess_over_G"] >= -EXACT_TOLERANCE * measured["identity_flat_str"]
             and numbers["G_draws"] >= 1)
    return verdict(holds, numbers, "exact-Hessian str of the balanced factorization U√Σ, V√Σ vs "
                   "4‖M‖_*, and str(LG, RG⁻ᵀ) − str(L, R) over random invertible G (must be >= 0)")


def _closed_form(measured):
    numbers = {"max_rel_difference": float(measured["str_closed_form_max_rel_difference"]),
               "points": int(measured["str_closed_form_points"])}
    return verdict(numbers["max_rel_difference"] <= EXACT_TOLERANCE and numbers["points"] >= 1,
                   numbers, "dense autodiff Hessian vs 2(‖D1 L‖² + ‖D2 R‖²) in float64 at flat "
                   "solutions of every operator and at trajectory end points")


def _phase_transition(measured):
    measurements = np.asarray(measured["phase_measurements"], dtype=float)
    rates = np.asarray(measured["phase_flat_success_rate"], dtype=float)
    d1, d2, rank = (int(measured["phase_d1"]), int(measured["phase_d2"]),
                    int(measured["phase_rank"]))
    degrees = rank * (d1 + d2 - rank)
    enough = measurements >= RECOVERY_FACTOR * rank * (d1 + d2)
    too_few = measurements < degrees
    numbers = {"min_rate_with_enough_m": float(np.min(rates[enough])) if enough.any() else float("nan"),
               "max_rate_below_dof": float(np.max(rates[too_few])) if too_few.any() else float("nan"),
               "m_enough_from": float(RECOVERY_FACTOR * rank * (d1 + d2)),
               "degrees_of_freedom": float(degrees)}
    return verdict(numbers["min_rate_with_enough_m"] >= 0.9 and numbers["max_rate_below_dof"] == 0.0,
                   numbers, f"success = relative error < {SUCCESS_THRESHOLD:g}; the grid must reach "
                   "below r(d1+d2-r) and above the recovery threshold")


def _log_log_slope(x, y):
    """Least-squares slope of log y against log x."""
    return float(np.polyfit(np.log(x), np.log(y), 1)[0])


def _nearly_balanced(measured):
    measurements = np.asarray(measured["gap_measurements"], dtype=float)
    balance = np.asarray(measured["phase_flat_balancedness_gap_median"], dtype=float)
    norm_gap = np.asarray(measured["phase_flat_norm_gap_median"], dtype=float)
    numbers = {"balancedness_gap_first": float(balance[0]), "balancedness_gap_last": float(balance[-1]),
               "norm_gap_first": float(norm_gap[0]), "norm_gap_last": float(norm_gap[-1]),
               "balancedness_slope": _log_log_slope(measurements, balance),
               "norm_gap_slope": _log_log_slope(measurements, norm_gap)}
    shrinking = (numbers["balancedness_slope"] < 0 and numbers["norm_gap_slope"] < 0
                 and balance[-1] <= 0.5 * balance[0] and norm_gap[-1] <= 0.5 * norm_gap[0]
                 and np.all(balance > 0) and np.all(norm_gap > 0))
    return verdict(shrinking, numbers, "medians over trials of ‖L_fᵀL_f − R_fᵀR_f‖_F/‖X_f‖_* and "
                   "(½(‖L_f‖²+‖R_f‖²) − ‖X_f‖_*)/‖X_f‖_* over the recovering part of the m grid: "
                   "positive (not exactly balanced), falling with m (negative log-log slope) and at "
                   "least halved from the first to the last m")


def _sam_vs_gd(measured):
    numbers = {"str_gd": float(measured["dynamics_str_gd"]),
               "str_sam": float(measured["dynamics_str_sam"]),
               "str_flattest": float(measured["dynamics_str_flattest"]),
               "loss_gd": float(measured["dynamics_loss_gd"]),
               "loss_sam": float(measured["dynamics_loss_sam"])}
    excess_gd = numbers["str_gd"] - numbers["str_flattest"]
    excess_sam = numbers["str_sam"] - numbers["str_flattest"]
    holds = (numbers["loss_gd"] <= FIT_LOSS and numbers["loss_sam"] <= FIT_LOSS
             and numbers["str_sam"] <= MARKEDLY_SMALLER * numbers["str_gd"]
             and excess_sam <= TOWARD_FLATTEST * excess_gd)
    return verdict(holds, numbers, "medians over instances of the final str and training loss; "
                   f"fit = loss <= {FIT_LOSS:g}, str_sam <= {MARKEDLY_SMALLER} str_gd and "
                   f"str_sam − flattest <= {TOWARD_FLATTEST} (str_gd − flattest)")


register(Claim(
    id="ding2024.identity.flat_is_balanced",
    paper=PAPER, source="Sec. 3 (identity case); 4‖M‖_* derived",
    statement="With 𝒜 = identity (f = ‖L Rᵀ − M‖²_F) the scaled Hessian trace on solutions is "
              "2‖L‖² + 2‖R‖²; the balanced factorization L = U√Σ, R = V√Σ attains 4‖M‖_* and every "
              "other factorization (L G, R G⁻ᵀ) of M has a larger or equal str.",
    regime="identity operator, rank-r M with ‖M‖_F = 1, k >= r, float64, random invertible G",
    lab=LAB, check=_identity_flat))

register(Claim(
    id="ding2024.str.closed_form",
    paper=PAPER, source="Sec. 3 (reweighted trace); derived",
    statement="For f = (1/m)‖𝒜(L Rᵀ) − b‖², str = (1/d1) tr ∇²_LL f + (1/d2) tr ∇²_RR f equals "
              "2(‖D1 L‖²_F + ‖D2 R‖²_F) with D1² = Σ A_i A_iᵀ/(m d2), D2² = Σ A_iᵀ A_i/(m d1).",
    regime="identity, Gaussian, bilinear and completion operators; float64; at solutions (and, "
           "as derived here, anywhere)",
    lab=LAB, check=_closed_form))

register(Claim(
    id="ding2024.sensing.flat_minima_recover",
    paper=PAPER, source="Thm 3.2 and Sec. 8 (Gaussian sensing)",
    statement="The flattest solutions (weighted nuclear-norm minimizer, factored as D1⁻¹U√Σ, "
              "D2⁻¹V√Σ) recover the ground truth exactly once the number of Gaussian measurements "
              f"is large enough (here m >= {RECOVERY_FACTOR:g}·r(d1+d2)), and never below the "
              "r(d1+d2−r) degrees of freedom of a rank-r matrix: a phase transition in m.",
    regime="Gaussian sensing, d1 = d2 = d, r = 2, noiseless, k = d, 10 trials per m",
    lab=LAB, check=_phase_transition))

register(Claim(
    id="ding2024.sensing.flat_nearly_balanced",
    paper=PAPER, source="Thm 3.3",
    statement="Flat solutions are nearly norm-minimal and nearly balanced, not exactly (D_i is not "
              "a multiple of I); both gaps shrink as m grows and D1, D2 concentrate at I (we "
              "expect log-log slopes near −1/2 for balancedness and −1 for norm-minimality).",
    regime="Gaussian sensing in the recovering part of the m grid (m >= the recovery threshold)",
    lab=LAB, check=_nearly_balanced))

register(Claim(
    id="ding2024.dynamics.sam_flatter_than_gd",
    paper=PAPER, source="ours (experiment on the factorized problem)",
    statement="From a large, unbalanced initialization, full-batch SAM ends at a markedly smaller "
              "str than GD while both fit the measurements, and most of the way to the flattest "
              "value 4‖D1 X_f D2‖_*.",
    regime="Gaussian sensing d = 10, r = 2, k = 10, m = 60; init_scale 0.2, init_imbalance 3; "
           "lr 0.02, rho 0.1, 20 000 steps; medians over instances",
    lab=LAB, check=_sam_vs_gd))
