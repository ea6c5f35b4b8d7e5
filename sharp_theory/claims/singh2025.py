"""Functional-SAM and spurious sharpness (Singh, Mobahi, Agarwala, Dauphin 2025), judged on the exact
softmax next-token model of the "spurious-sharpness" lab.

Every number comes from ``measured["cells"]["V{V}_s{s}"]`` of labs/spurious_sharpness.py: per
vocabulary size V and Zipf exponent s, each optimizer tuned on ρ by its mean test cross-entropy
(over seeds), with its test cross-entropy at equal steps and at half the steps (equal gradient
evaluations for the two-gradient rules), its logit statistics and the exact path sharpness of its
final iterates: λ_max of the training-loss Hessian and its Rayleigh split at the top eigenvector
into the logit path (Gauss-Newton) and the functional path, λ_max of each part, and the
calibration-matched λ_max. ``measured["squared_loss"]`` holds the squared-loss contrast. Paper
card: papers/singh2025-functional-sam.md (thresholds and reasons there).

Quick runs have one vocabulary size and two seeds: every claim is judged there with the same
thresholds (their margins are wide: see the paper card), except the trend over V, which needs
the full run's three vocabulary sizes and is "inconclusive" at quick sizes.
"""
from __future__ import annotations

from .base import Claim, Threshold, finite, finite_values, inconclusive, judge, register

LAB = "spurious-sharpness"
PAPER = "singh2025"
SOURCE = "arXiv 2502.02407, abstract and Sec. 3-5"
MOST = 0.5  # "most of the reduction": a share of at least one half
HALVES = 0.5  # "shrinks": the calibration-matched advantage is at most half the raw one
MOVED = 0.05  # a logit statistic "moved": a relative change of at least 5%
FUNCTIONAL_DROP = -0.05  # "lowers the functional-path sharpness": by at least 5%
CE_TOLERANCE = 0.005  # nats: "at least as good" allows this much (seed noise of the means)
INTERPOLATION = 1e-4  # the squared-loss run reached interpolation: training loss below this
CONSTANT = 1e-12  # ∇²ℓ unchanged to rounding
NEGLIGIBLE = 1e-2  # functional part at most 1% of the Hessian (Frobenius)

_REGIME = ("next-token model V ∈ {8, 16, 32}, Zipf s ∈ {0, 1, 1.5}, embedding 8 → tanh 16 → V "
           "logits, exact cross-entropy on 2V² training pairs, full batch, AdamW base (lr 0.01, "
           "weight decay 1e-4), 400 steps, ρ tuned on {0.1, 0.3, 1}, 5 seeds")


def _cells(measured):
    cells = measured["cells"]
    return [cells[key] for key in sorted(cells)]


def _relative(value, reference):
    return (finite(value) - finite(reference)) / abs(finite(reference))


def _logit_path_share(measured, *, quick):
    cells = _cells(measured)
    drop = sum(finite(c["adamw"]["lambda_max"]) - finite(c["sam"]["lambda_max"]) for c in cells)
    drop_gn = sum(finite(c["adamw"]["top_gauss_newton"]) - finite(c["sam"]["top_gauss_newton"])
                  for c in cells)
    trace_drop = sum(finite(c["adamw"]["trace"]) - finite(c["sam"]["trace"]) for c in cells)
    trace_drop_gn = sum(finite(c["adamw"]["trace_gauss_newton"])
                        - finite(c["sam"]["trace_gauss_newton"]) for c in cells)
    numbers = {"lambda_max_drop_summed": drop, "logit_path_part_of_drop": drop_gn,
               "share_lambda_max": drop_gn / drop, "share_trace": trace_drop_gn / trace_drop,
               "functional_part_of_adamw_lambda_max": [finite(c["adamw"]["top_functional"])
                                                       / finite(c["adamw"]["lambda_max"])
                                                       for c in cells]}
    return judge(
        Threshold("share of SAM's λ_max drop (vs AdamW) through the logit path, pooled",
                         numbers["share_lambda_max"], ">=", MOST), numbers,
        "Δλ_max = λ_AdamW − λ_SAM split by the Rayleigh quotients of the Gauss-Newton and "
        "functional parts at each iterate's top eigenvector, summed over the V x s cells",
        also=[Threshold("premise: SAM lowered λ_max (summed drop)", drop, ">", 0.0),
              Threshold("the same share of the trace drop", numbers["share_trace"], ">=", MOST)])


register(Claim(
    id="singh2025.spurious.logit_path_carries_sam_reduction", paper=PAPER, source=SOURCE,
    statement="On a softmax cross-entropy model, most of SAM's reduction of λ_max (and of the "
              "trace) relative to AdamW comes through the logit path J_Fᵀ∇²ℓJ_F (share >= 0.5, "
              "pooled over the V x s grid; premise: SAM lowers λ_max).",
    regime=_REGIME, lab=LAB, check=_logit_path_share))


def _share_cell(cell):
    drop = finite(cell["adamw"]["lambda_max"]) - finite(cell["sam"]["lambda_max"])
    return (finite(cell["adamw"]["top_gauss_newton"]) - finite(cell["sam"]["top_gauss_newton"])) / drop


def _share_grows(measured, *, quick):
    cells = measured["cells"]
    sizes, exponents = measured["vocab_sizes"], measured["zipf_exponents"]
    smallest = cells[f"V{min(sizes)}_s{min(exponents):g}"]
    largest = cells[f"V{max(sizes)}_s{max(exponents):g}"]
    numbers = {"share_smallest_V_s": _share_cell(smallest), "share_largest_V_s": _share_cell(largest),
               "functional_part_of_adamw_lambda_max_largest": finite(largest["adamw"]["top_functional"])
               / finite(largest["adamw"]["lambda_max"])}
    numbers["growth"] = numbers["share_largest_V_s"] - numbers["share_smallest_V_s"]
    if len(finite_values(sizes)) < 2:
        return inconclusive(numbers, "needs the full run: one vocabulary size, no trend in V to "
                            "judge")
    return judge(
        Threshold("logit-path share at the largest (V, s) minus at the smallest",
                         numbers["growth"], ">=", 0.01), numbers,
        "the share of SAM's λ_max drop through the logit path, largest V and s against smallest")


register(Claim(
    id="singh2025.spurious.share_grows_with_vocab_and_zipf", paper=PAPER, source=SOURCE,
    statement="The logit path's share of SAM's λ_max reduction grows with the vocabulary size V "
              "and the Zipf exponent s (share at the largest (V, s) exceeds that at the smallest "
              "by >= 0.01).",
    regime=_REGIME, lab=LAB, check=_share_grows, expected="fail"))


def _logit_norm_change(cell, name):
    return abs(_relative(cell[name]["logit_norm"], cell["adamw"]["logit_norm"]))


def _calibration(measured, *, quick):
    cells = _cells(measured)
    raw = [1.0 - finite(c["sam"]["lambda_max"]) / finite(c["adamw"]["lambda_max"]) for c in cells]
    calibrated = [1.0 - finite(c["sam"]["lambda_max_calibrated"])
                  / finite(c["adamw"]["lambda_max_calibrated"]) for c in cells]
    moved = [_logit_norm_change(c, "sam") for c in cells]
    confidence = [_relative(c["sam"]["max_probability"], c["adamw"]["max_probability"]) for c in cells]
    numbers = {"raw_advantage_mean": sum(raw) / len(raw),
               "calibrated_advantage_mean": sum(calibrated) / len(calibrated),
               "sam_logit_norm_relative_change_mean": sum(moved) / len(moved),
               "sam_max_probability_relative_change": confidence}
    numbers["calibrated_over_raw"] = numbers["calibrated_advantage_mean"] / numbers["raw_advantage_mean"]
    return judge(
        Threshold("SAM's calibration-matched λ_max advantage / its raw advantage",
                         numbers["calibrated_over_raw"], "<=", HALVES), numbers,
        "advantage = 1 − λ_SAM/λ_AdamW, mean over cells; calibration-matched: λ_max of "
        "w ↦ ℓ(F(w)/T*) with the temperature T* refitted to the training data at each iterate",
        also=[Threshold("premise: SAM has a raw advantage (mean)", numbers["raw_advantage_mean"],
                        ">", 0.0),
              Threshold("SAM's logit norm moved (mean relative change)",
                        numbers["sam_logit_norm_relative_change_mean"], ">=", MOVED)])


register(Claim(
    id="singh2025.spurious.sam_sharpness_is_calibration", paper=PAPER, source=SOURCE,
    statement="SAM lowers sharpness spuriously: its logit statistics move (logit norm changes by "
              ">= 5%) and at matched calibration (one refitted temperature) its λ_max advantage "
              "over AdamW shrinks to at most half.",
    regime=_REGIME, lab=LAB, check=_calibration, expected="fail"))


def _functional_sam(measured, *, quick):
    cells = _cells(measured)
    change = [_relative(c["functional-sam"]["lambda_max_functional"],
                        c["adamw"]["lambda_max_functional"]) for c in cells]
    fsam_moved = [_logit_norm_change(c, "functional-sam") for c in cells]
    sam_moved = [_logit_norm_change(c, "sam") for c in cells]
    numbers = {"functional_lambda_max_relative_change_mean": sum(change) / len(change),
               "fsam_logit_norm_change_mean": sum(fsam_moved) / len(fsam_moved),
               "sam_logit_norm_change_mean": sum(sam_moved) / len(sam_moved)}
    return judge(
        Threshold("Functional-SAM's relative change of the functional part's λ_max vs AdamW",
                         numbers["functional_lambda_max_relative_change_mean"], "<=",
                         FUNCTIONAL_DROP), numbers,
        "mean over cells of (λ_F,FSAM − λ_F,AdamW)/λ_F,AdamW, λ_F the largest eigenvalue of "
        "Σ ∂ℓ/∂F_i ∇²F_i at the final iterate",
        also=[Threshold("Functional-SAM's logit-norm change / SAM's",
                        numbers["fsam_logit_norm_change_mean"] / numbers["sam_logit_norm_change_mean"],
                        "<=", 0.5)])


register(Claim(
    id="singh2025.functional_sam.lowers_functional_sharpness", paper=PAPER, source=SOURCE,
    statement="Functional-SAM lowers the functional-path sharpness (λ_max of Σ ∂ℓ/∂F_i ∇²F_i by "
              ">= 5% vs AdamW) without moving the logit statistics (logit-norm change <= half "
              "of SAM's).",
    regime=_REGIME, lab=LAB, check=_functional_sam, expected="fail"))


def _precond_avoids(measured, *, quick):
    cells = _cells(measured)
    pre = [_logit_norm_change(c, "precond-sam") for c in cells]
    sam = [_logit_norm_change(c, "sam") for c in cells]
    numbers = {"precond_sam_logit_norm_change_mean": sum(pre) / len(pre),
               "sam_logit_norm_change_mean": sum(sam) / len(sam)}
    numbers["ratio"] = numbers["precond_sam_logit_norm_change_mean"] / numbers["sam_logit_norm_change_mean"]
    return judge(
        Threshold("preconditioned SAM's logit-norm change / SAM's", numbers["ratio"], "<=",
                         0.5), numbers,
        "relative change of the logit norm against AdamW's, mean over cells, each tuned")


register(Claim(
    id="singh2025.precond_sam.avoids_spurious_route", paper=PAPER, source=SOURCE,
    statement="Preconditioning SAM's perturbation with Adam's second moments also avoids the "
              "spurious route: its logit statistics move at most half as much as SAM's (relative "
              "logit-norm change vs AdamW, ratio <= 0.5).",
    regime=_REGIME, lab=LAB, check=_precond_avoids, expected="fail"))


def _combination(measured, *, quick):
    cells = _cells(measured)
    gaps = [finite(c["functional-sam-precond"]["test_cross_entropy"])
            - min(finite(c["functional-sam"]["test_cross_entropy"]),
                  finite(c["precond-sam"]["test_cross_entropy"])) for c in cells]
    numbers = {"combination_minus_best_single_mean": sum(gaps) / len(gaps), "per_cell": gaps}
    return judge(
        Threshold("test CE of Functional-SAM + preconditioning minus the better of the two",
                         numbers["combination_minus_best_single_mean"], "<=", CE_TOLERANCE),
        numbers, "tuned test cross-entropy (nats), mean over cells")


register(Claim(
    id="singh2025.combination.at_least_as_good", paper=PAPER, source=SOURCE,
    statement="Functional-SAM with a preconditioned perturbation is at least as good as either "
              "alone in test cross-entropy (at most 0.005 nats above the better one, mean over "
              "cells).",
    regime=_REGIME, lab=LAB, check=_combination, expected="fail"))


def _equal_steps(measured, *, quick):
    cells = _cells(measured)
    gaps = [min(finite(c["functional-sam"]["test_cross_entropy"]),
                finite(c["functional-sam-precond"]["test_cross_entropy"]))
            - min(finite(c["adamw"]["test_cross_entropy"]), finite(c["sam"]["test_cross_entropy"]))
            for c in cells]
    numbers = {"functional_minus_best_baseline_mean": sum(gaps) / len(gaps), "per_cell": gaps}
    return judge(
        Threshold("best Functional-SAM variant's test CE minus the better of AdamW and SAM",
                         numbers["functional_minus_best_baseline_mean"], "<", 0.0), numbers,
        "tuned test cross-entropy (nats) at equal steps, mean over cells")


register(Claim(
    id="singh2025.functional_sam.beats_adamw_and_sam", paper=PAPER, source=SOURCE,
    statement="At equal steps Functional-SAM (alone or preconditioned) reaches a lower test "
              "cross-entropy than both AdamW and SAM (difference < 0, mean over cells).",
    regime=_REGIME, lab=LAB, check=_equal_steps, expected="fail"))


def _equal_compute(measured, *, quick):
    cells = _cells(measured)
    gaps = [finite(c["sam"]["test_cross_entropy_half_steps"])
            - finite(c["adamw"]["test_cross_entropy"]) for c in cells]
    numbers = {"sam_half_steps_minus_adamw_mean": sum(gaps) / len(gaps), "per_cell": gaps}
    return judge(
        Threshold("SAM's test CE at half the steps minus AdamW's at all steps (equal "
                         "gradient evaluations)", numbers["sam_half_steps_minus_adamw_mean"], ">=",
                         0.0), numbers,
        "SAM spends two gradients per step: at half the steps it has spent AdamW's budget")


register(Claim(
    id="singh2025.sam.no_gain_at_equal_compute", paper=PAPER, source=SOURCE,
    statement="At equal gradient evaluations SAM does not beat AdamW (SAM's test CE at half the "
              "steps minus AdamW's at all steps >= 0, mean over cells): the abstract's NLP finding.",
    regime=_REGIME, lab=LAB, check=_equal_compute, expected="fail"))


def _squared_loss(measured, *, quick):
    contrast = measured["squared_loss"]
    numbers = {key: finite(contrast[key]) for key in (
        "functional_fraction_at_interpolation", "functional_fraction_at_start", "train_loss",
        "loss_hessian_change", "softmax_loss_hessian_change", "sam_functional_path_norm",
        "sam_logit_path_norm")}
    return judge(
        Threshold("‖functional part‖_F / ‖H‖_F at the interpolating solution",
                  numbers["functional_fraction_at_interpolation"], "<=", NEGLIGIBLE), numbers,
        "diagonal linear network x ↦ xᵀ(u⊙v), ½-mean squared error, n = 10, d = 20, GD to "
        "interpolation; ∇²ℓ compared at two outputs (and the softmax's, for contrast)",
        also=[Threshold("premise: training loss at interpolation", numbers["train_loss"], "<=",
                        INTERPOLATION),
              Threshold("change of the squared loss's ∇²ℓ between two outputs",
                        numbers["loss_hessian_change"], "<=", CONSTANT),
              Threshold("relative change of the softmax's ∇²ℓ (contrast)",
                        numbers["softmax_loss_hessian_change"], ">=", NEGLIGIBLE)])


register(Claim(
    id="singh2025.squared_loss.no_spurious_route", paper=PAPER, source="derived (Sec. 3 contrast)",
    statement="On a squared loss ∇²ℓ is constant, so the logit path cannot move through output "
              "statistics, and the functional path vanishes at interpolation (its Frobenius share "
              "of the Hessian <= 1e-2; ∇²ℓ unchanged to 1e-12 while the softmax's changes by "
              ">= 1e-2): Functional-SAM is GD there.",
    regime="diagonal linear network, n = 10, d = 20, 3-sparse target, GD lr 0.05, 20000 steps",
    lab=LAB, check=_squared_loss))
