"""Claims of the wider SAM family, checked at equal cost on exact problems by the "sam-family" lab.

Every number comes from ``measured["summary"][problem][variant]`` of labs/sam_family.py: the
variant tuned on its own knob grid (median over seeds), its final quality (test loss of the
diagonal linear network; excess population loss for the LoRA-like problem), λ_max and trace of
the Hessian at the end, and the gradient evaluations it spent. Papers and the reasoning behind
each threshold: papers/sam-family-efficient.md, -geometry.md, -averaging.md, -learned.md.

Functional-SAM's language-model mechanism (spurious sharpness through the logit path) is judged
on an exact softmax model in :mod:`sharp_theory.claims.singh2025` (lab "spurious-sharpness").
"""
from __future__ import annotations

from .base import Claim, Threshold, Verdict, finite, finite_max, finite_min, finite_values, judge, register

LAB = "sam-family"
REGRESSION = "diagonal_linear"
LORA = "lora"

MATCH_FACTOR = 1.5  # "matches SAM": tuned quality at most 1.5x SAM's tuned quality
FLATTER = 0.95  # "flatter": λ_max at most 95% of the baseline's
EXACT = 1e-12  # float64 rounding level of an exact identity
BROKEN = 1e-2  # a violation this large is not rounding


def _row(measured, problem, variant):
    """The tuned row of ``variant``; every seed at its tuned knob value must have finished.

    The row's numbers are medians over the seeds that did not diverge; reading the per-seed
    results (a diverged seed's is NaN) makes the verdict inconclusive instead of judging the
    survivors only.
    """
    row = measured["summary"][problem][variant]
    finite_values(row["quality_seeds"], f"{problem}.{variant}.quality_seeds")
    return row


def _matches_sam_cheaper(variant, max_cost_ratio):
    def check(measured, *, quick):
        row, sam = _row(measured, REGRESSION, variant), _row(measured, REGRESSION, "sam")
        sgd = _row(measured, REGRESSION, "sgd")
        numbers = {"variant_test_loss": row["quality"], "sam_test_loss": sam["quality"],
                   "sgd_test_loss": sgd["quality"],
                   "quality_ratio_vs_sam": row["quality"] / sam["quality"],
                   "cost_ratio_vs_sam": row["grad_evals"] / sam["grad_evals"],
                   "variant_knob": row["value"], "sam_rho": sam["value"]}
        return judge(Threshold(f"{variant} tuned test loss / SAM's", numbers["quality_ratio_vs_sam"],
                               "<=", MATCH_FACTOR), numbers,
                     f"{variant} tuned test loss <= {MATCH_FACTOR} x SAM's at <= {max_cost_ratio} x "
                     "SAM's gradient evaluations (diagonal net, batch 2)",
                     also=[Threshold("gradient evaluations / SAM's", numbers["cost_ratio_vs_sam"],
                                     "<=", max_cost_ratio)])
    return check


_EFFICIENT_REGIME = ("diagonal linear network (n = 20, d = 30, 3-sparse target, u⊙v init 0.3), "
                     "mini-batches of 2, lr 0.05, 3000 steps; each method tuned on its own grid")

register(Claim(
    id="liu2022.looksam.matches_sam_cheaper", paper="liu2022", source="Sec. 4 (abstract)",
    statement="LookSAM with k = 5 reaches SAM's generalization while computing the SAM "
              "gradient only every fifth step (tuned test loss <= 1.5x SAM's at <= 0.65x its gradient "
              "evaluations).",
    regime=_EFFICIENT_REGIME, lab=LAB, check=_matches_sam_cheaper("looksam-5", 0.65)))

register(Claim(
    id="zhao2022.rst.matches_sam_cheaper", paper="zhao2022", source="Sec. 5 (abstract)",
    statement="Randomized switching with SAM probability 0.5 keeps SAM's generalization at "
              "about 75% of its cost (tuned test loss <= 1.5x SAM's at <= 0.8x its gradient "
              "evaluations).",
    regime=_EFFICIENT_REGIME, lab=LAB, check=_matches_sam_cheaper("rst", 0.8), expected="fail"))

register(Claim(
    id="jiang2023.ae_sam.matches_sam_cheaper", paper="jiang2023", source="Sec. 4 (abstract)",
    statement="AE-SAM, taking SAM steps only when the squared gradient norm exceeds its running "
              "mean, matches SAM's generalization at a fraction of its cost (tuned test loss <= 1.5x "
              "SAM's at <= 0.8x its gradient evaluations).",
    regime=_EFFICIENT_REGIME, lab=LAB, check=_matches_sam_cheaper("ae-sam", 0.8),
    expected="fail"))

register(Claim(
    id="mi2022.ssam.half_mask_keeps_sam", paper="mi2022", source="Sec. 5 (abstract)",
    statement="Perturbing only the 50% of coordinates with the largest Fisher information "
              "preserves SAM's generalization (tuned test loss <= 1.5x SAM's, at <= 1.1x its cost).",
    regime=_EFFICIENT_REGIME + "; sparsity 0.5, mask every 10 steps", lab=LAB,
    check=_matches_sam_cheaper("ssam-fisher", 1.1), expected="fail"))

register(Claim(
    id="du2022.saf.matches_sam_at_sgd_cost", paper="du2022", source="Sec. 5 (abstract)",
    statement="A trajectory-consistency penalty (SAF/MESA) recovers SAM's generalization at "
              "the cost of one gradient per step (tuned test loss <= 1.5x SAM's at <= 0.55x its "
              "gradient evaluations).",
    regime=_EFFICIENT_REGIME + "; EMA teacher (decay 0.9), squared output distance", lab=LAB,
    check=_matches_sam_cheaper("saf", 0.55), expected="fail"))


def _asam_invariance(measured, *, quick):
    violation = measured["asam_rescaling_violation"]
    numbers = {key: finite(violation[key]) for key in ("asam_eta0", "asam_eta001", "sam")}
    return judge(Threshold("largest relative violation of ε(Aw) = Aε(w), ASAM (η = 0)",
                           numbers["asam_eta0"], "<=", EXACT), numbers,
                 "largest relative violation of ε(Aw) = Aε(w) over 200 random rescalings of "
                 "f(xᵀy); must be rounding for ASAM (η = 0), order one for SAM (not vacuous)",
                 also=[Threshold("the same for SAM", numbers["sam"], ">=", BROKEN)])


register(Claim(
    id="kwon2021.asam.rescaling_invariant", paper="kwon2021", source="Sec. 3, Thm 1 setting",
    statement="With η = 0, ASAM's ascent is equivariant under loss-preserving positive diagonal "
              "rescalings (x, y) → (Ax, A⁻¹y), so its adaptive sharpness is rescaling invariant; "
              "SAM's is not (largest violation <= 1e-12 for ASAM, >= 1e-2 for SAM).",
    regime="f(xᵀy) = (xᵀy − 0.5)², x, y ∈ R³ with |entries| in [0.2, 2], A = diag(c), "
           "c ∈ [0.25, 4]³", lab=LAB, check=_asam_invariance))


def _asam_vs_sam(measured, *, quick):
    asam, sam = _row(measured, REGRESSION, "asam"), _row(measured, REGRESSION, "sam")
    numbers = {"asam_test_loss": asam["quality"], "sam_test_loss": sam["quality"],
               "asam_rho": asam["value"], "sam_rho": sam["value"]}
    return judge(Threshold("tuned test loss ASAM / SAM", finite(asam["quality"]) / finite(sam["quality"]),
                           "<=", 1.0), numbers,
                 "tuned ASAM (η = 0.01, its own ρ grid) vs tuned SAM on the diagonal net")


register(Claim(
    id="kwon2021.asam.generalizes_better_than_sam", paper="kwon2021", source="Sec. 4 (abstract)",
    statement="ASAM generalizes better than SAM (tuned test loss ASAM/SAM <= 1).",
    regime=_EFFICIENT_REGIME + "; ASAM η = 0.01", lab=LAB, check=_asam_vs_sam, expected="fail"))


def _precond(measured, *, quick):
    pre = _row(measured, REGRESSION, "precond-sam")
    sam_adam = _row(measured, REGRESSION, "sam-adam")
    adam = _row(measured, REGRESSION, "adam")
    pre_seeds, sam_seeds = pre["quality_seeds"], sam_adam["quality_seeds"]
    numbers = {"precond_sam_test_loss": pre["quality"], "sam_adam_test_loss": sam_adam["quality"],
               "adam_test_loss": adam["quality"], "precond_sam_seeds": pre_seeds,
               "sam_adam_seeds": sam_seeds}
    detail = ("tuned preconditioned SAM vs tuned SAM, both with an Adam base (lr 0.01), seed by "
              "seed: pass if every seed of the former beats every seed of the latter, fail if the "
              "reverse")
    # Separation of the two seed clouds: > 0 when every seed of preconditioned SAM beats every
    # seed of SAM, < 0 when the reverse separation exists; overlapping clouds decide nothing.
    better = finite_min(sam_seeds) - finite_max(pre_seeds)
    worse = finite_min(pre_seeds) - finite_max(sam_seeds)
    decisive = Threshold("min(SAM seeds) − max(preconditioned-SAM seeds)", better, ">", 0.0)
    if better > 0 or worse > 0:
        return judge(decisive, numbers, detail)
    # Both runs are chaotic near the minimum (last-bit differences grow to O(1) by step 3000), so
    # the medians' order follows the seeds and the rounding, not the method.
    return Verdict("inconclusive", numbers, detail + "; the seeds' test losses overlap", decisive)


register(Claim(
    id="singh2025.precond_sam.beats_sam_with_adam", paper="singh2025", source="Sec. 5",
    statement="Preconditioning SAM's perturbation by Adam's second moments improves on SAM "
              "with the same Adam base (every seed of it below every seed of SAM-with-Adam).",
    regime=_EFFICIENT_REGIME.replace("lr 0.05", "Adam lr 0.01"), lab=LAB, check=_precond,
    expected="inconclusive"))


def _lpf(measured, *, quick):
    lpf, sgd = _row(measured, REGRESSION, "lpf-sgd"), _row(measured, REGRESSION, "sgd")
    numbers = {"lpf_trace": lpf["trace"], "sgd_trace": sgd["trace"],
               "lpf_test_loss": lpf["quality"], "sgd_test_loss": sgd["quality"],
               "lpf_sigma": lpf["value"]}
    return judge(Threshold("tuned test loss LPF-SGD / SGD", finite(lpf["quality"]) / finite(sgd["quality"]),
                           "<", 1.0), numbers,
                 "tuned LPF-SGD (4 draws, row-scaled σ) vs SGD: Hessian trace at the end and test loss",
                 also=[Threshold("Hessian trace LPF-SGD / SGD", finite(lpf["trace"]) / finite(sgd["trace"]),
                                 "<", 1.0)])


register(Claim(
    id="bisla2022.lpf_sgd.flatter_and_better_than_sgd", paper="bisla2022", source="Sec. 5",
    statement="Low-pass-filtered SGD ends in a flatter region (smaller Hessian trace) than SGD "
              "and generalizes better (both ratios to SGD below 1).",
    regime=_EFFICIENT_REGIME + "; 4 Gaussian draws per step", lab=LAB, check=_lpf))


def _rwp(measured, *, quick):
    rwp, sgd = _row(measured, REGRESSION, "rwp"), _row(measured, REGRESSION, "sgd")
    numbers = {"rwp_test_loss": rwp["quality"], "sgd_test_loss": sgd["quality"],
               "rwp_sigma": rwp["value"]}
    return judge(Threshold("tuned test loss RWP / SGD", finite(rwp["quality"]) / finite(sgd["quality"]),
                           "<", 1.0), numbers,
                 "tuned RWP (λ = 0.5 mix, one draw, row-scaled σ) vs SGD test loss")


register(Claim(
    id="li2024rwp.rwp.improves_on_sgd", paper="li2024rwp", source="Sec. 4",
    statement="Mixing the gradient at a random weight perturbation with the clean gradient "
              "improves generalization over SGD (tuned test loss ratio RWP/SGD below 1).",
    regime=_EFFICIENT_REGIME + "; λ = 0.5, one draw", lab=LAB, check=_rwp))


def _wasam(measured, *, quick):
    wasam, sam = _row(measured, REGRESSION, "wasam"), _row(measured, REGRESSION, "sam")
    swa, sgd = _row(measured, REGRESSION, "swa"), _row(measured, REGRESSION, "sgd")
    numbers = {"wasam_test_loss": wasam["quality"], "sam_test_loss": sam["quality"],
               "swa_test_loss": swa["quality"], "sgd_test_loss": sgd["quality"]}
    return judge(Threshold("tuned test loss WASAM / SAM", finite(wasam["quality"]) / finite(sam["quality"]),
                           "<=", 1.0), numbers,
                 "tuned WASAM (average of the second half) vs tuned SAM")


register(Claim(
    id="kaddour2022.wasam.not_worse_than_sam", paper="kaddour2022", source="Sec. 4",
    statement="Averaging SAM's iterates (WASAM) generalizes at least as well as SAM (tuned test "
              "loss ratio WASAM/SAM <= 1).",
    regime=_EFFICIENT_REGIME + "; average over steps 1500-3000", lab=LAB, check=_wasam,
    expected="fail"))


def _flat_lora(measured, *, quick):
    flat, sgd = _row(measured, LORA, "flat-lora"), _row(measured, LORA, "sgd")
    numbers = {"flat_lora_lambda_max": flat["lambda_max"], "lora_sgd_lambda_max": sgd["lambda_max"],
               "ratio": flat["lambda_max"] / sgd["lambda_max"], "flat_lora_sigma": flat["value"]}
    return judge(Threshold("λ_max Flat-LoRA / LoRA", numbers["ratio"], "<=", FLATTER), numbers,
                 "λ_max of the population loss at the end, Flat-LoRA vs plain LoRA training")


register(Claim(
    id="li2024flatlora.flat_lora.flatter_than_lora", paper="li2024flatlora", source="Sec. 4",
    statement="Random perturbation of the merged weight (Flat-LoRA) ends at a flatter solution "
              "than LoRA training, at no extra gradient cost (λ_max ratio Flat-LoRA/LoRA <= 0.95).",
    regime="LoRA-like W0 + X_l Y_lᵀ, 4 layers of 3x3 (2 in --quick), rank 1, noise 0.5, "
           "batch 2, lr 0.01, 3000 steps; least squares in the merged weight", lab=LAB,
    check=_flat_lora, expected="fail"))


def _lets_robust(measured, *, quick):
    lets, sam = _row(measured, REGRESSION, "lets"), _row(measured, REGRESSION, "sam")
    lets_spread = finite_max(lets["quality_by_value"]) / finite_min(lets["quality_by_value"])
    sam_spread = finite_max(sam["quality_by_value"]) / finite_min(sam["quality_by_value"])
    numbers = {"lets_spread": lets_spread, "sam_spread": sam_spread,
               "lets_by_initial_rho": lets["quality_by_value"],
               "sam_by_rho": sam["quality_by_value"]}
    return judge(Threshold("spread (max/min test loss over the ρ grid) LETS / SAM",
                           lets_spread / sam_spread, "<", 1.0), numbers,
                 "max/min test loss over the ρ grid: LETS (ρ is the initial radius) vs SAM (ρ fixed)")


register(Claim(
    id="wang2024lets.lets.robust_to_initial_rho", paper="wang2024lets", source="Sec. 5",
    statement="Learning the radius makes SAM's result insensitive to the initial radius (spread "
              "max/min of the test loss over the ρ grid smaller than SAM's).",
    regime=_EFFICIENT_REGIME + "; meta step 10, halves of each batch as train / held-out",
    lab=LAB, check=_lets_robust))


def _lets_vs_sam(measured, *, quick):
    lets, sam = _row(measured, REGRESSION, "lets"), _row(measured, REGRESSION, "sam")
    numbers = {"lets_test_loss": lets["quality"], "sam_test_loss": sam["quality"]}
    return judge(Threshold("tuned test loss LETS / SAM", finite(lets["quality"]) / finite(sam["quality"]),
                           "<=", 1.0), numbers, "tuned LETS vs tuned SAM")


register(Claim(
    id="wang2024lets.lets.improves_on_sam", paper="wang2024lets", source="Sec. 5 (abstract)",
    statement="SAM with a learned radius generalizes better than SAM with a tuned fixed radius "
              "(tuned test loss ratio LETS/SAM <= 1).",
    regime=_EFFICIENT_REGIME + "; meta step 10", lab=LAB, check=_lets_vs_sam, expected="fail"))
