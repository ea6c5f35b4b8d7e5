"""Claims from Foret, Kleiner, Mobahi, Neyshabur, "Sharpness-Aware Minimization for Efficiently
Improving Generalization" (ICLR 2021, arXiv 2010.01412), checked in the landscape lab on the
problems of this package (not on the paper's image-classification networks).
"""
from __future__ import annotations

from .base import Claim, Verdict, register, verdict

LAB = "landscape"
PROBLEMS = ("squared-loss problems: GD and SAM from the same start on a tanh regression net "
            "(from_loss), the NOP toy, a diagonal linear net (n = 20, d = 30) and matrix sensing "
            "(10x10, rank 2), 20k full-batch steps each (--quick: the tanh net and the diagonal "
            "net only); the logistic conv-ReLU net of the lab is reported separately")


def _cases(measured):
    """The squared-loss problems (the logistic conv-ReLU case is reported, not judged)."""
    cases = {name: c for name, c in measured["cases"].items() if c.get("loss_type") == "squared"}
    if not cases:
        raise KeyError("cases")
    return cases


def _check_lambda_max(measured) -> Verdict:
    cases = _cases(measured)
    ratios = {name: c["sam"]["lambda_max"] / c["gd"]["lambda_max"] for name, c in cases.items()}
    return verdict(all(r < 1 for r in ratios.values()),
                   {"sam_over_gd_lambda_max": ratios, "problems": len(ratios)},
                   "λ_max(SAM solution) < λ_max(GD solution) on every problem")


def _check_ratio(measured) -> Verdict:
    cases = _cases(measured)
    ratios = {name: c["sam"]["lambda_max_over_lambda_5"] / c["gd"]["lambda_max_over_lambda_5"]
              for name, c in cases.items()}
    return verdict(all(r < 1 for r in ratios.values()),
                   {"sam_over_gd_eigenratio": ratios, "problems": len(ratios)},
                   "λ_max/λ_5 of the SAM solution below GD's on every problem")


def _check_m_sharpness(measured) -> Verdict:
    study = measured["gap_study"]
    if study is None:
        return Verdict("inconclusive", {}, "the diagonal-linear problem was not available")
    tau_one = study["kendall_tau_one_sharpness"]
    tau_full = study["kendall_tau_full_batch_sharpness"]
    return verdict(tau_one > tau_full and tau_one > 0,
                   {"kendall_tau_m1": tau_one, "kendall_tau_full_batch": tau_full,
                    "kendall_tau_lambda_max": study["kendall_tau_lambda_max"],
                    "models": study["converged_models"]},
                   "Kendall τ between sharpness and the test-train gap over GD/SAM/1-SAM solutions: "
                   "m = 1 above full batch, and positive")


register(Claim(
    id="foret2021.minima.sam_smaller_lambda_max", paper="foret2021", source="Sec. 4.2, Fig. 3 (right)",
    statement="SAM converges to minima with a smaller top Hessian eigenvalue than the base "
              "optimizer.", regime=PROBLEMS, lab=LAB, check=_check_lambda_max))
register(Claim(
    id="foret2021.minima.sam_smaller_eigenratio", paper="foret2021", source="Sec. 4.2, Fig. 3 (right)",
    statement="SAM's minima also have a smaller ratio λ_max/λ_5 (the top direction is less "
              "dominant).", regime=PROBLEMS, lab=LAB, check=_check_ratio))
register(Claim(
    id="foret2021.m_sharpness.tracks_gap", paper="foret2021", source="Sec. 4.1, Fig. 3 (middle)",
    statement="m-sharpness with small m correlates better with the generalization gap than "
              "full-batch sharpness.",
    regime="diagonal linear net (n = 20, d = 30, init 0.1), solutions of GD, SAM and 1-SAM with "
           "ρ in {0.01, 0.02, 0.05, 0.1, 0.2} (20k steps, lr 0.1) that reach train loss < 1e-3; "
           "sharpness measured at ρ = 0.05", lab=LAB, check=_check_m_sharpness))


def _check_lambda_max_logistic(measured) -> Verdict:
    cases = {name: c for name, c in measured["cases"].items() if c.get("loss_type") == "logistic"}
    if not cases:
        return Verdict("inconclusive", {}, "no logistic-loss problem in this run (--quick skips it)")
    ratios = {name: c["sam"]["lambda_max"] / c["gd"]["lambda_max"] for name, c in cases.items()}
    return verdict(all(r < 1 for r in ratios.values()),
                   {"sam_over_gd_lambda_max": ratios, "problems": len(ratios)},
                   "λ_max(SAM) < λ_max(GD) on the logistic conv-ReLU net after the same steps")


register(Claim(
    id="foret2021.minima.sam_smaller_lambda_max_logistic", paper="foret2021",
    source="Sec. 4.2, Fig. 3 (right)",
    statement="SAM's solution has a smaller top Hessian eigenvalue than GD's, also on a "
              "logistic-loss network.",
    regime="the conv-ReLU signal+noise net (d = 100, n = 20) of the landscape lab, 5k full-batch "
           "steps from the same start; logistic loss has no minimizer, so both iterates are still "
           "moving and their curvature still shrinking",
    lab=LAB, check=_check_lambda_max_logistic, expected="fail"))
