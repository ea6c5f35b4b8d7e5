"""The three facts Lab 0 ("What SAM does") teaches, as claims its numbers must support.

* SAM with ρ = 0 is gradient descent, bit for bit (Foret et al. 2021, the update rule).
* On a quadratic, SAM does not converge: it ends in a 2-cycle across the sharpest direction of
  radius ηρλ/(2 − ηλ) (Bartlett, Long, Bousquet 2023, Sec. 3).
* On f(xy) = (xy − 1)²/2, whose minimizers form the valley xy = 1, SAM drifts to the flattest
  minimizer x = y = 1 (λ_max = 2) where GD stays where it reached the valley (Li, Zhang, He 2024:
  SAM drives the balancedness to 0; GD keeps it).

References:
  Foret, Kleiner, Mobahi, Neyshabur. Sharpness-Aware Minimization for Efficiently Improving
    Generalization. ICLR 2021, Eq. (2)-(3).
  Bartlett, Long, Bousquet. The Dynamics of Sharpness-Aware Minimization: Bouncing Across
    Ravines and Drifting Towards Wide Minima. JMLR 24 (2023).
  Li, Zhang, He. Implicit Regularization of Sharpness-Aware Minimization for Scale-Invariant
    Problems. NeurIPS 2024.
"""
from __future__ import annotations

from .base import Claim, Threshold, Verdict, finite, judge, register

LAB = "what-sam-does"
BOWL = "L(w) = ½(10 w₁² + w₂²) from (1, 1), η = 0.15, ρ = 0.05, 400 full-batch steps"
VALLEY = ("f(x, y) = ½(xy − 1)² from (2, 0.45), η = 0.1, ρ = 0.1, 2,000 (--quick) or 5,000 "
          "full-batch steps")
RADIUS_TOLERANCE = 0.01  # relative
FLATTEST = 2.0           # λ_max at x = y = 1
FLATTEST_TOLERANCE = 0.05
GD_KEEPS = 0.9           # GD's final |B| stays above 0.9 of its initial |B|


def _rho_zero(measured, *, quick) -> Verdict:
    gap = max(finite(measured["bowl"]["rho_zero_max_difference"]),
              finite(measured["valley"]["rho_zero_max_difference"]))
    return judge(Threshold("max |SAM(ρ = 0) − GD| over both runs", gap, "<=", 0.0),
                 {"bowl": measured["bowl"]["rho_zero_max_difference"],
                  "valley": measured["valley"]["rho_zero_max_difference"]},
                 "SAM with ρ = 0 reproduces GD's iterates exactly")


def _two_cycle(measured, *, quick) -> Verdict:
    bowl = measured["bowl"]
    radius, predicted = finite(bowl["sam_late_radius"]), finite(bowl["predicted_radius"])
    error = abs(radius / predicted - 1)
    return judge(Threshold("|measured radius / ηρλ(2 − ηλ)⁻¹ − 1|", error, "<=", RADIUS_TOLERANCE),
                 {"measured_radius": radius, "predicted_radius": predicted,
                  "spread_over_last_20_steps": bowl["sam_late_radius_spread"],
                  "gd_final_distance": bowl["gd_final_distance"]},
                 "SAM's late |w₁| equals the 2-cycle radius; GD converges")


def _drift(measured, *, quick) -> Verdict:
    valley = measured["valley"]
    sam, gd = valley["SAM"], valley["GD"]
    sharpness_error = abs(finite(sam["final_lambda_max"]) / FLATTEST - 1)
    gd_kept = finite(gd["final_balancedness"]) / abs(finite(gd["initial_balancedness"]))
    return judge(Threshold("|λ_max(SAM end) / 2 − 1|", sharpness_error, "<=", FLATTEST_TOLERANCE),
                 {"sam_final_lambda_max": sam["final_lambda_max"],
                  "gd_final_lambda_max": gd["final_lambda_max"],
                  "gd_exact_lambda_max": gd["exact_lambda_max"],
                  "sam_final_balancedness": sam["final_balancedness"],
                  "gd_balancedness_kept": gd_kept},
                 "SAM ends at the flattest minimizer, while GD keeps its balancedness",
                 also=[Threshold("GD's final |B| / |B₀|", gd_kept, ">=", GD_KEEPS)])


register(Claim(
    id="foret2021.what_sam_does.rho_zero_is_gd", paper="foret2021", source="Eq. (3), ρ = 0",
    statement="SAM with radius ρ = 0 takes exactly GD's steps: the largest difference of the "
              "iterates over both Lab 0 runs is 0 (threshold: ≤ 0, bit for bit).",
    regime=BOWL + "; " + VALLEY, lab=LAB, check=_rho_zero))

register(Claim(
    id="bartlett2023.what_sam_does.two_cycle_radius", paper="bartlett2023", source="Sec. 3",
    statement="On a quadratic with η·λ_max < 2, SAM ends in a 2-cycle across the top eigenvector "
              "of radius ηρλ/(2 − ηλ): the mean |w₁| over the last 20 steps is within 1% of it.",
    regime=BOWL, lab=LAB, check=_two_cycle))

register(Claim(
    id="li2024.what_sam_does.drifts_to_the_flattest_minimizer", paper="li2024",
    source="Sec. 3 (SAM drives the balancedness to 0), Lemma 1 (sharpness of f(xᵀy))",
    statement="On ½(xy − 1)², SAM ends at the flattest minimizer: λ_max = x² + y² averaged over "
              "the last two steps is within 5% of 2, while GD keeps ≥ 90% of its initial "
              "balancedness |B₀| (and so its sharper minimizer).",
    regime=VALLEY, lab=LAB, check=_drift))
