"""Claims from Foret, Kleiner, Mobahi, Neyshabur, "Sharpness-Aware Minimization for Efficiently
Improving Generalization" (ICLR 2021, arXiv 2010.01412), checked in the landscape lab on the
problems of this package (not on the paper's image-classification networks).

The λ_max claim was narrowed to the squared-loss problems after it failed on the logistic
conv-ReLU net; the claim in its original regime (every problem of the lab) stays registered beside
the narrowed one, with its numbers, as an expected failure.
"""
from __future__ import annotations

from .base import (Claim, MissingMeasurement, Threshold, Verdict, finite, finite_max, inconclusive,
                   judge, register)

LAB = "landscape"
PROBLEMS = ("squared-loss problems: GD and SAM from the same start on a tanh regression net "
            "(from_loss), the NOP toy, a diagonal linear net (n = 20, d = 30) and matrix sensing "
            "(10x10, rank 2), 20k full-batch steps each (--quick: the tanh net and the diagonal "
            "net only); the logistic conv-ReLU net of the lab (in quick runs too) is judged "
            "separately")
ALL_PROBLEMS = ("every problem of the landscape lab: the four squared-loss problems above and the "
                "logistic conv-ReLU net (d = 100, n = 20, 5k full-batch steps)")
SMALLER = 1.0  # SAM/GD ratio below 1


def _cases(measured, loss_type=None):
    """The lab's problems, optionally only those with the given loss type."""
    return {name: c for name, c in measured["cases"].items()
            if loss_type is None or c["loss_type"] == loss_type}


def _lambda_max_ratios(cases):
    return {name: finite(c["sam"]["lambda_max"]) / finite(c["gd"]["lambda_max"])
            for name, c in cases.items()}


def _judge_lambda_max(measured, quick, loss_type, detail):
    cases = _cases(measured, loss_type)
    if not cases:
        if quick:
            return inconclusive({}, f"no {loss_type}-loss problem in this quick run")
        raise MissingMeasurement(f"measured.cases with loss_type {loss_type}")
    ratios = _lambda_max_ratios(cases)
    worst = finite_max(list(ratios.values()), "λ_max ratio")
    return judge(Threshold("max over problems of λ_max(SAM)/λ_max(GD)", worst, "<", SMALLER),
                 {"sam_over_gd_lambda_max": ratios, "problems": len(ratios)}, detail)


def _check_lambda_max(measured, *, quick) -> Verdict:
    return _judge_lambda_max(measured, quick, "squared",
                             "λ_max(SAM solution) < λ_max(GD solution) on every squared-loss problem")


def _check_lambda_max_logistic(measured, *, quick) -> Verdict:
    return _judge_lambda_max(measured, quick, "logistic",
                             "λ_max(SAM) < λ_max(GD) on the logistic conv-ReLU net after the same steps")


def _check_lambda_max_all(measured, *, quick) -> Verdict:
    if quick:  # the quick run has 3 of the 5 problems: the original regime is not covered
        return inconclusive({}, "needs the full run: the quick run has 3 of the lab's 5 problems")
    return _judge_lambda_max(measured, quick, None,
                             "λ_max(SAM) < λ_max(GD) on every problem of the lab")


def _check_ratio(measured, *, quick) -> Verdict:
    cases = _cases(measured, "squared")
    ratios = {name: finite(c["sam"]["lambda_max_over_lambda_5"])
              / finite(c["gd"]["lambda_max_over_lambda_5"]) for name, c in cases.items()}
    worst = finite_max(list(ratios.values()), "eigenratio ratio")
    return judge(Threshold("max over problems of (λ_max/λ_5)(SAM) / (λ_max/λ_5)(GD)", worst, "<",
                           SMALLER), {"sam_over_gd_eigenratio": ratios, "problems": len(ratios)},
                 "λ_max/λ_5 of the SAM solution below GD's on every squared-loss problem")


def _check_m_sharpness(measured, *, quick) -> Verdict:
    study = measured["gap_study"]
    if study is None and quick:
        return inconclusive({}, "the diagonal-linear problem was not available in this quick run")
    tau_one = finite(study["kendall_tau_one_sharpness"])
    tau_full = finite(study["kendall_tau_full_batch_sharpness"])
    return judge(Threshold("Kendall τ(m = 1) − τ(full batch)", tau_one - tau_full, ">", 0.0),
                 {"kendall_tau_m1": tau_one, "kendall_tau_full_batch": tau_full,
                  "kendall_tau_lambda_max": study["kendall_tau_lambda_max"],
                  "models": study["converged_models"]},
                 "Kendall τ between sharpness and the test-train gap over GD/SAM/1-SAM solutions: "
                 "m = 1 above full batch, and positive",
                 also=[Threshold("Kendall τ(m = 1)", tau_one, ">", 0.0)])


register(Claim(
    id="foret2021.minima.sam_smaller_lambda_max", paper="foret2021", source="Sec. 4.2, Fig. 3 (right)",
    statement="SAM converges to minima with a smaller top Hessian eigenvalue than the base "
              "optimizer (SAM/GD λ_max ratio below 1 on every squared-loss problem; narrowed "
              "regime, see the all-problems claim).", regime=PROBLEMS, lab=LAB,
    check=_check_lambda_max))
register(Claim(
    id="foret2021.minima.sam_smaller_lambda_max_all_problems", paper="foret2021",
    source="Sec. 4.2, Fig. 3 (right); original regime",
    statement="SAM's solution has a smaller top Hessian eigenvalue than GD's on every problem we "
              "run, squared or logistic loss (SAM/GD λ_max ratio below 1 on all five).",
    regime=ALL_PROBLEMS, lab=LAB, check=_check_lambda_max_all, expected="fail"))
register(Claim(
    id="foret2021.minima.sam_smaller_eigenratio", paper="foret2021", source="Sec. 4.2, Fig. 3 (right)",
    statement="SAM's minima also have a smaller ratio λ_max/λ_5 (SAM/GD ratio of λ_max/λ_5 below "
              "1 on every squared-loss problem).", regime=PROBLEMS, lab=LAB, check=_check_ratio))
register(Claim(
    id="foret2021.m_sharpness.tracks_gap", paper="foret2021", source="Sec. 4.1, Fig. 3 (middle)",
    statement="m-sharpness with small m correlates better with the generalization gap than "
              "full-batch sharpness (Kendall τ with the gap: m = 1 above full batch, and > 0).",
    regime="diagonal linear net (n = 20, d = 30, init 0.1), solutions of GD, SAM and 1-SAM with "
           "ρ in {0.01, 0.02, 0.05, 0.1, 0.2} (20k steps, lr 0.1) that reach train loss < 1e-3; "
           "sharpness measured at ρ = 0.05", lab=LAB, check=_check_m_sharpness))
register(Claim(
    id="foret2021.minima.sam_smaller_lambda_max_logistic", paper="foret2021",
    source="Sec. 4.2, Fig. 3 (right)",
    statement="SAM's solution has a smaller top Hessian eigenvalue than GD's, also on a "
              "logistic-loss network (SAM/GD λ_max ratio below 1).",
    regime="the conv-ReLU signal+noise net (d = 100, n = 20) of the landscape lab, 5k full-batch "
           "steps from the same start; logistic loss has no minimizer, so both iterates are still "
           "moving and their curvature still shrinking",
    lab=LAB, check=_check_lambda_max_logistic, expected="fail"))
