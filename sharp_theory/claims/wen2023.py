"""Claims from Wen, Ma, Li, "How Does Sharpness-Aware Minimization Minimize Sharpness?" (ICLR
2023, arXiv 2211.05729), checked in the sharpness-dynamics lab.
"""
from __future__ import annotations

from .base import Claim, Threshold, Verdict, finite, finite_max, finite_min, judge, register

LAB = "sharpness-dynamics"
TOY = ("4-D toy L = F1(a,b)·x3² + F2(a,b)·x4² (papers/wen2023-how-sam-minimizes-sharpness.md), start (0, 0.5, 0.3, 0.3), "
       "η = 0.01, ρ = 0.05, 4·10⁵ steps (2·10⁵ in --quick), deterministic full batch of 2 examples")


DISTANCE = 1e-3  # full-batch SAM's endpoint within 1e-3 of argmin λ_max
EXTRAPOLATION = 2e-3  # 1-SAM's endpoint extrapolated to η → 0 within 2e-3 of argmin trace
SETTLED = 1e-4  # ... from runs that have stopped moving (largest last change)
ON_MANIFOLD = 1e-3  # |b| at the end: on the manifold of minimizers
RATE_SLOPE_ETA = (0.85, 1.15)  # log-log slope of the λ_max decrease rate in η (claimed 1)
RATE_SLOPE_RHO = (1.8, 2.2)  # ... and in ρ (claimed 2)
RADIUS_QUADRATIC = 1e-6  # Thm 4.8 on an exact quadratic: relative error of the limit radius
ALIGNMENT = 1 - 1e-6
RADIUS_TOY = 0.02  # on the toy's normal directions (not exactly quadratic): 2%


def _check_full_batch(measured, *, quick) -> Verdict:
    distance = finite(measured["sam_distance_to_lambda_max_minimizer"])
    final = measured["final"]["sam"]
    return judge(Threshold("distance of SAM's endpoint to argmin λ_max", distance, "<", DISTANCE),
                 {"distance_to_argmin_lambda_max": distance, "final_a": final["a"],
                  "final_b": final["b"], "final_lambda_max": final["lambda_max"]},
                 "full-batch SAM's endpoint within 1e-3 of (a, b) = (1, 0); run status ok")


def _check_one_sam(measured, *, quick) -> Verdict:
    target = finite(measured["trace_minimizer_a"])
    extrapolated = finite(measured["one_sam_extrapolated_a"])
    final_b = finite(measured["final"]["1-sam"]["b"])
    change = finite(measured["one_sam_last_change"])
    numbers = {"argmin_trace_a": target, "one_sam_a_main_run": measured["final"]["1-sam"]["a"],
               "one_sam_a_extrapolated_to_eta_0": extrapolated, "one_sam_final_b": final_b,
               "largest_last_change": change}
    return judge(Threshold("|a(η → 0) − argmin trace a|", abs(extrapolated - target), "<",
                           EXTRAPOLATION), numbers,
                 "1-SAM's converged endpoint a(η), linearly extrapolated to η → 0, within 2e-3 of "
                 "argmin trace; at η = 0.01 it is O(η) off",
                 also=[Threshold("|b| of 1-SAM's endpoint", abs(final_b), "<", ON_MANIFOLD),
                       Threshold("largest last change of the 1-SAM endpoints", change, "<",
                                 SETTLED)])


def _check_rate(measured, *, quick) -> Verdict:
    slopes_lr, slopes_rho = measured["slopes_in_lr"], measured["slopes_in_rho"]
    numbers = {"slopes_in_eta": slopes_lr, "slopes_in_rho": slopes_rho,
               "normalized_rate_spread": measured["normalized_rate_spread"]}
    # Distance outside the allowed band (0 inside it): the decisive number is the worst slope's.
    def outside(values, band):
        return finite_max([max(band[0] - v, v - band[1], 0.0) for v in values])
    return judge(Threshold("largest distance of a slope in η outside [0.85, 1.15]",
                           outside(slopes_lr, RATE_SLOPE_ETA), "<=", 0.0), numbers,
                 "log-log slopes of the λ_max decrease per step: η in [0.85, 1.15], ρ in [1.8, 2.2]",
                 also=[Threshold("largest distance of a slope in ρ outside [1.8, 2.2]",
                                 outside(slopes_rho, RATE_SLOPE_RHO), "<=", 0.0)])


def _check_theorem_4_8(measured, *, quick) -> Verdict:
    cases = measured["theorem_4_8"]
    error = finite_max([c["relative_error"] for c in cases], "relative error")
    alignment = finite_min([c["alignment"] for c in cases], "alignment")
    toy_error = abs(finite(measured["toy_radius_measured"])
                    / finite(measured["toy_radius_predicted"]) - 1)
    return judge(Threshold("max relative error of ‖x_t‖ vs ηρλ₁/(2−ηλ₁) (quadratic)", error, "<",
                           RADIUS_QUADRATIC),
                 {"quadratic_max_relative_error": error, "quadratic_min_alignment": alignment,
                  "toy_relative_error": toy_error},
                 "quadratic: ‖x_t‖ within 1e-6 (relative) of ηρλ₁/(2−ηλ₁), |cos(x_t, v₁)| > 1−1e-6; "
                 "toy: normal distance within 2%",
                 also=[Threshold("min |cos(x_t, v₁)|", alignment, ">", ALIGNMENT),
                       Threshold("toy: relative error of the normal distance", toy_error, "<",
                                 RADIUS_TOY)])


register(Claim(
    id="wen2023.flow.full_batch_sam_minimizes_lambda_max", paper="wen2023", source="Sec. 4 (full-batch SAM); theorem number not re-checked",
    statement="Near a manifold of minimizers, full-batch SAM drifts along the manifold towards a "
              "minimizer of the top Hessian eigenvalue λ_max (its endpoint within 1e-3 of it).",
    regime=TOY, lab=LAB, check=_check_full_batch))
register(Claim(
    id="wen2023.flow.one_sam_minimizes_trace", paper="wen2023", source="Sec. 5 (1-SAM); theorem number not re-checked",
    statement="1-SAM (each example perturbed along its own gradient) drifts towards a minimizer of "
              "the trace of the Hessian, in the limit η, ρ → 0 (endpoint extrapolated to η → 0 within "
              "2e-3 of it).",
    regime=TOY + "; 1-SAM endpoint for η in {0.02, 0.01, 0.005, 0.0025} at ρ = 0.1, extrapolated "
                 "to η → 0", lab=LAB, check=_check_one_sam))
register(Claim(
    id="wen2023.rate.eta_rho_squared", paper="wen2023", source="Sec. 4 (phase II, O(ηρ²) per step)",
    statement="In phase II, full-batch SAM lowers λ_max by Θ(ηρ²) per step (log-log slopes of "
              "the rate in η within [0.85, 1.15], in ρ within [1.8, 2.2]).",
    regime="4-D toy, η in {0.005, 0.01, 0.02} × ρ in {0.025, 0.05, 0.1}, time for λ_max to fall "
           "from 7.5 to 7.0", lab=LAB, check=_check_rate))
register(Claim(
    id="wen2023.thm48.limit_radius", paper="wen2023", source="Thm 4.8",
    statement="On L = ½xᵀHx with ηλ₁ < 1, SAM's iterate aligns with the top eigenvector and "
              "‖x_t‖ → ηρλ₁/(2 − ηλ₁) (within 1e-6 relative on the quadratic, 2% on the toy).",
    regime="5-D quadratic, λ = (2, 1.2, 0.7, 0.3, 0.1), ηλ₁ in {0.2, 0.5, 0.9}, ρ = 0.1, 6000 "
           "steps; and the toy's normal directions at its endpoint",
    lab=LAB, check=_check_theorem_4_8))
