"""Claims of Ding, Drusvyatskiy, Fazel, Harchaoui (2022): flat minima of low-rank matrix recovery.

Paper: Flat minima generalize for low-rank matrix recovery, arXiv 2203.03756. Measured by the
"matrix-sensing" lab (labs/matrix_sensing.py); settings in papers/ding2024-flat-minima-low-rank.md.
"""
from __future__ import annotations

import numpy as np

from .base import Claim, Threshold, finite, finite_values, inconclusive, judge, register

LAB = "matrix-sensing"
PAPER = "ding2024"

EXACT_TOLERANCE = 1e-10  # float64 agreement required of exact identities
SUCCESS_THRESHOLD = 1e-3  # relative recovery error ‖X − M‖_F / ‖M‖_F counted as exact recovery
RECOVERY_FACTOR = 2.0  # "enough measurements": m >= RECOVERY_FACTOR · r (d1 + d2)
FIT_LOSS = 1e-3  # a trajectory "fits" when its final training loss is below this (‖M‖_F = 1)
MARKEDLY_SMALLER = 0.5  # SAM's final str at most half of GD's
TOWARD_FLATTEST = 0.25  # SAM's excess over the flattest str at most a quarter of GD's
# First-order rates of the flat-solution gaps in m (D_i − I ~ 1/√m): balancedness ~ m^(-1/2),
# norm-minimality ~ m^(-1); accepted bands for the fitted log-log slopes.
BALANCEDNESS_SLOPE = (-0.7, -0.3)
NORM_GAP_SLOPE = (-1.3, -0.7)


def _identity_flat(measured, *, quick):
    numbers = {
        "str_vs_4_nuclear_rel_error": finite(measured["identity_str_vs_4_nuclear_rel_error"]),
        "flat_balancedness_gap": finite(measured["identity_flat_balancedness_gap"]),
        "min_excess_over_G": finite(measured["identity_min_excess_over_G"]),
        "G_draws": int(finite(measured["identity_G_draws"])),
    }
    allowed_excess = -EXACT_TOLERANCE * finite(measured["identity_flat_str"])
    return judge(Threshold("relative error of str(U√Σ, V√Σ) vs 4‖M‖_*",
                           numbers["str_vs_4_nuclear_rel_error"], "<=", EXACT_TOLERANCE), numbers,
                 "exact-Hessian str of the balanced factorization U√Σ, V√Σ vs 4‖M‖_*, and "
                 "str(LG, RG⁻ᵀ) − str(L, R) over random invertible G (must be >= 0)",
                 also=[Threshold("balancedness gap of U√Σ, V√Σ", numbers["flat_balancedness_gap"],
                                 "<=", EXACT_TOLERANCE),
                       Threshold("min over G of str(LG, RG⁻ᵀ) − str(L, R)",
                                 numbers["min_excess_over_G"], ">=", allowed_excess),
                       Threshold("random G drawn", numbers["G_draws"], ">=", 1)])


def _closed_form(measured, *, quick):
    numbers = {"max_rel_difference": finite(measured["str_closed_form_max_rel_difference"]),
               "points": int(finite(measured["str_closed_form_points"]))}
    return judge(Threshold("max relative difference autodiff str vs closed form",
                           numbers["max_rel_difference"], "<=", EXACT_TOLERANCE), numbers,
                 "dense autodiff Hessian vs 2(‖D1 L‖² + ‖D2 R‖²) in float64 at flat solutions of "
                 "every operator and at trajectory end points",
                 also=[Threshold("points compared", numbers["points"], ">=", 1)])


def _phase_transition(measured, *, quick):
    measurements = np.asarray(finite_values(measured["phase_measurements"]))
    rates = np.asarray(finite_values(measured["phase_flat_success_rate"]))
    d1, d2, rank = (int(measured["phase_d1"]), int(measured["phase_d2"]),
                    int(measured["phase_rank"]))
    degrees = rank * (d1 + d2 - rank)
    enough = measurements >= RECOVERY_FACTOR * rank * (d1 + d2)
    too_few = measurements < degrees
    if not enough.any() or not too_few.any():
        return inconclusive({"m_grid": measurements.tolist()}, "the m grid must reach below "
                            "r(d1+d2−r) and above the recovery threshold")
    numbers = {"min_rate_with_enough_m": float(np.min(rates[enough])),
               "max_rate_below_dof": float(np.max(rates[too_few])),
               "m_enough_from": float(RECOVERY_FACTOR * rank * (d1 + d2)),
               "degrees_of_freedom": float(degrees)}
    return judge(Threshold("min success rate with m >= 2r(d1+d2)", numbers["min_rate_with_enough_m"],
                           ">=", 0.9), numbers,
                 f"success = relative error < {SUCCESS_THRESHOLD:g}; the grid must reach below "
                 "r(d1+d2-r) and above the recovery threshold",
                 also=[Threshold("max success rate with m < r(d1+d2−r)",
                                 numbers["max_rate_below_dof"], "<=", 0.0)])


def _log_log_slope(x, y):
    """Least-squares slope of log y against log x."""
    return float(np.polyfit(np.log(x), np.log(y), 1)[0])


def _gap_numbers(measured):
    measurements = np.asarray(finite_values(measured["gap_measurements"]))
    balance = np.asarray(finite_values(measured["phase_flat_balancedness_gap_median"]))
    norm_gap = np.asarray(finite_values(measured["phase_flat_norm_gap_median"]))
    positive = bool(np.all(balance > 0) and np.all(norm_gap > 0))
    numbers = {"m": measurements.tolist(), "balancedness_gap": balance.tolist(),
               "norm_gap": norm_gap.tolist(),
               "balancedness_slope": _log_log_slope(measurements, balance) if positive else float("nan"),
               "norm_gap_slope": _log_log_slope(measurements, norm_gap) if positive else float("nan")}
    return numbers, balance, norm_gap


def _nearly_balanced(measured, *, quick):
    numbers, balance, norm_gap = _gap_numbers(measured)
    return judge(Threshold("log-log slope of the balancedness gap in m", numbers["balancedness_slope"],
                           "<", 0.0), numbers,
                 "medians over trials of ‖L_fᵀL_f − R_fᵀR_f‖_F/‖X_f‖_* and "
                 "(½(‖L_f‖²+‖R_f‖²) − ‖X_f‖_*)/‖X_f‖_* over the recovering part of the m grid: "
                 "positive (not exactly balanced), falling with m (negative log-log slope) and at "
                 "least halved from the first to the last m",
                 also=[Threshold("log-log slope of the norm-minimality gap", numbers["norm_gap_slope"],
                                 "<", 0.0),
                       Threshold("last/first balancedness gap", balance[-1] / balance[0], "<=", 0.5),
                       Threshold("last/first norm-minimality gap", norm_gap[-1] / norm_gap[0], "<=",
                                 0.5),
                       Threshold("smallest gap (must be > 0: not exactly balanced)",
                                 min(balance.min(), norm_gap.min()), ">", 0.0)])


def _gaps_at_first_order_rates(measured, *, quick):
    numbers, balance, norm_gap = _gap_numbers(measured)
    slope_b, slope_n = numbers["balancedness_slope"], numbers["norm_gap_slope"]
    # Distance of a slope outside its band (0 inside): one decisive number per band.
    outside_b = max(BALANCEDNESS_SLOPE[0] - slope_b, slope_b - BALANCEDNESS_SLOPE[1], 0.0)
    outside_n = max(NORM_GAP_SLOPE[0] - slope_n, slope_n - NORM_GAP_SLOPE[1], 0.0)
    rises = int(np.sum(np.diff(balance) >= 0) + np.sum(np.diff(norm_gap) >= 0))
    numbers["increases_along_m"] = rises
    return judge(Threshold("distance of the balancedness slope outside [−0.7, −0.3]", outside_b,
                           "<=", 0.0), numbers,
                 "fitted log-log slopes of the median gaps over the whole m grid, and a strict "
                 "decrease of both gaps at every step of the grid",
                 also=[Threshold("distance of the norm-gap slope outside [−1.3, −0.7]", outside_n,
                                 "<=", 0.0),
                       Threshold("steps of the m grid where a gap does not fall", rises, "==", 0)])


def _sam_vs_gd(prefix, decisive="str"):
    """The dynamics check for one initialization; ``decisive`` names the headline condition
    ("str": SAM's str against GD's; "fit": SAM fits the data), the others are side conditions."""
    def check(measured, *, quick):
        numbers = {"str_gd": finite(measured[f"{prefix}str_gd"]),
                   "str_sam": finite(measured[f"{prefix}str_sam"]),
                   "str_flattest": finite(measured[f"{prefix}str_flattest"]),
                   "loss_gd": finite(measured[f"{prefix}loss_gd"]),
                   "loss_sam": finite(measured[f"{prefix}loss_sam"])}
        excess_gd = numbers["str_gd"] - numbers["str_flattest"]
        excess_sam = numbers["str_sam"] - numbers["str_flattest"]
        conditions = {
            "str": Threshold("str_sam / str_gd", numbers["str_sam"] / numbers["str_gd"], "<=",
                             MARKEDLY_SMALLER),
            "fit": Threshold("final training loss of SAM", numbers["loss_sam"], "<=", FIT_LOSS)}
        headline = conditions.pop(decisive)
        return judge(headline, numbers,
                     "medians over instances of the final str and training loss; "
                     f"fit = loss <= {FIT_LOSS:g}, str_sam <= {MARKEDLY_SMALLER} str_gd and "
                     f"str_sam − flattest <= {TOWARD_FLATTEST} (str_gd − flattest)",
                     also=[*conditions.values(),
                           Threshold("final training loss of GD", numbers["loss_gd"], "<=", FIT_LOSS),
                           Threshold("(str_sam − flattest)/(str_gd − flattest)",
                                     excess_sam / excess_gd if excess_gd > 0 else float("inf"),
                                     "<=", TOWARD_FLATTEST)])
    return check


register(Claim(
    id="ding2024.identity.flat_is_balanced",
    paper=PAPER, source="Sec. 3 (identity case); 4‖M‖_* derived",
    statement="With 𝒜 = identity (f = ‖L Rᵀ − M‖²_F) the scaled Hessian trace on solutions is "
              "2‖L‖² + 2‖R‖²; the balanced factorization L = U√Σ, R = V√Σ attains 4‖M‖_* and every "
              "other factorization (L G, R G⁻ᵀ) of M has a larger or equal str (all to 1e-10).",
    regime="identity operator, rank-r M with ‖M‖_F = 1, k >= r, float64, random invertible G",
    lab=LAB, check=_identity_flat))

register(Claim(
    id="ding2024.str.closed_form",
    paper=PAPER, source="Sec. 3 (reweighted trace); derived",
    statement="For f = (1/m)‖𝒜(L Rᵀ) − b‖², str = (1/d1) tr ∇²_LL f + (1/d2) tr ∇²_RR f equals "
              "2(‖D1 L‖²_F + ‖D2 R‖²_F) with D1² = Σ A_i A_iᵀ/(m d2), D2² = Σ A_iᵀ A_i/(m d1) "
              "(relative difference <= 1e-10).",
    regime="identity, Gaussian, bilinear and completion operators; float64; at solutions (and, "
           "as derived here, anywhere)",
    lab=LAB, check=_closed_form))

register(Claim(
    id="ding2024.sensing.flat_minima_recover",
    paper=PAPER, source="Thm 3.2 and Sec. 8 (Gaussian sensing)",
    statement="The flattest solutions (weighted nuclear-norm minimizer, factored as D1⁻¹U√Σ, "
              "D2⁻¹V√Σ) recover the ground truth exactly once the number of Gaussian measurements "
              f"is large enough (here m >= {RECOVERY_FACTOR:g}·r(d1+d2)), and never below the "
              "r(d1+d2−r) degrees of freedom of a rank-r matrix: a phase transition in m (success "
              "rate >= 0.9 above, exactly 0 below).",
    regime="Gaussian sensing, d1 = d2 = d, r = 2, noiseless, k = d, 10 trials per m",
    lab=LAB, check=_phase_transition))

register(Claim(
    id="ding2024.sensing.flat_nearly_balanced",
    paper=PAPER, source="Thm 3.3",
    statement="Flat solutions are nearly norm-minimal and nearly balanced, not exactly (D_i is not "
              "a multiple of I); both gaps shrink as m grows (negative log-log slopes, each gap at "
              "least halved from the first to the last m, every gap > 0). Narrowed form; the "
              "rates are the next claim.",
    regime="Gaussian sensing in the recovering part of the m grid (m >= the recovery threshold)",
    lab=LAB, check=_nearly_balanced))

register(Claim(
    id="ding2024.sensing.gaps_fall_at_first_order_rates",
    paper=PAPER, source="Thm 3.3 (rates: first-order expansion in D_i − I, derived)",
    statement="The original form of the near-balancedness claim: both gaps fall at every step of "
              "the m grid, the balancedness gap like m^(-1/2) (fitted slope in [−0.7, −0.3]) and "
              "the norm-minimality gap like m^(-1) (slope in [−1.3, −0.7]).",
    regime="Gaussian sensing, the whole m grid of the lab (m = 2, 8, 32, 128 · r(d1 + d2)), "
           "medians over 10 trials",
    lab=LAB, check=_gaps_at_first_order_rates))

register(Claim(
    id="ding2024.dynamics.sam_flatter_than_gd",
    paper=PAPER, source="ours (experiment on the factorized problem)",
    statement="From a large, unbalanced initialization, full-batch SAM ends at a markedly smaller "
              "str than GD (at most half) while both fit the measurements (loss <= 1e-3), and most "
              "of the way to the flattest value 4‖D1 X_f D2‖_* (excess at most a quarter of GD's).",
    regime="Gaussian sensing d = 10, r = 2, k = 10, m = 60; init_scale 0.2, init_imbalance 3; "
           "lr 0.02, rho 0.1, 20 000 steps; medians over instances",
    lab=LAB, check=_sam_vs_gd("dynamics_")))

register(Claim(
    id="ding2024.dynamics.sam_flatter_than_gd_small_init",
    paper=PAPER, source="ours (experiment on the factorized problem); original regime",
    statement="The dynamics claim before it was narrowed to the large init: from a small balanced "
              "initialization too, SAM fits the data (loss <= 1e-3, as GD does) and ends at str at "
              "most half of GD's and at most a quarter of GD's excess over the flattest str.",
    regime="Gaussian sensing d = 10, r = 2, k = 10, m = 60; init_scale 0.01, balanced; lr 0.02, "
           "rho 0.1, 20 000 steps; medians over instances",
    lab=LAB, check=_sam_vs_gd("dynamics_small_init_", decisive="fit"), expected="fail"))
