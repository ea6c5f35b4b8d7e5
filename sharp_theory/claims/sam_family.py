"""Claims of the wider SAM family, checked at equal cost on exact problems by the "sam-family" lab.

Every number comes from ``measured["summary"][problem][variant]`` of labs/sam_family.py: the
variant tuned on its own knob grid (median over seeds), its final quality (test loss of the
diagonal linear network; excess population loss for the LoRA-like problem), λ_max and trace of
the Hessian at the end, and the gradient evaluations it spent. Papers and the reasoning behind
each threshold: papers/sam-family-efficient.md, -geometry.md, -averaging.md, -learned.md.

Where our problems cannot speak to a paper's claim (Functional-SAM's language-model
mechanism), no claim is registered; the card says why.
"""
from __future__ import annotations

from .base import Claim, Verdict, register, verdict

LAB = "sam-family"
REGRESSION = "diagonal_linear"
LORA = "lora"

MATCH_FACTOR = 1.5  # "matches SAM": tuned quality at most 1.5x SAM's tuned quality
FLATTER = 0.95  # "flatter": λ_max at most 95% of the baseline's
EXACT = 1e-12  # float64 rounding level of an exact identity
BROKEN = 1e-2  # a violation this large is not rounding


def _row(measured, problem, variant):
    return measured["summary"][problem][variant]


def _matches_sam_cheaper(variant, max_cost_ratio):
    def check(measured):
        row, sam = _row(measured, REGRESSION, variant), _row(measured, REGRESSION, "sam")
        sgd = _row(measured, REGRESSION, "sgd")
        numbers = {"variant_test_loss": row["quality"], "sam_test_loss": sam["quality"],
                   "sgd_test_loss": sgd["quality"],
                   "quality_ratio_vs_sam": row["quality"] / sam["quality"],
                   "cost_ratio_vs_sam": row["grad_evals"] / sam["grad_evals"],
                   "variant_knob": row["value"], "sam_rho": sam["value"]}
        holds = (numbers["quality_ratio_vs_sam"] <= MATCH_FACTOR
                 and numbers["cost_ratio_vs_sam"] <= max_cost_ratio)
        return verdict(holds, numbers, f"{variant} tuned test loss <= {MATCH_FACTOR} x SAM's at "
                       f"<= {max_cost_ratio} x SAM's gradient evaluations (diagonal net, batch 2)")
    return check


_EFFICIENT_REGIME = ("diagonal linear network (n = 20, d = 30, 3-sparse target, u⊙v init 0.3), "
                     "mini-batches of 2, lr 0.05, 3000 steps; each method tuned on its own grid")

register(Claim(
    id="liu2022.looksam.matches_sam_cheaper", paper="liu2022", source="Sec. 4 (abstract)",
    statement="LookSAM with k = 5 reaches SAM's generalization while computing the SAM "
              "gradient only every fifth step (1.2 instead of 2 gradients per step).",
    regime=_EFFICIENT_REGIME, lab=LAB, check=_matches_sam_cheaper("looksam-5", 0.65)))

register(Claim(
    id="zhao2022.rst.matches_sam_cheaper", paper="zhao2022", source="Sec. 5 (abstract)",
    statement="Randomized switching with SAM probability 0.5 keeps SAM's generalization at "
              "about 75% of its cost.",
    regime=_EFFICIENT_REGIME, lab=LAB, check=_matches_sam_cheaper("rst", 0.8), expected="fail"))

register(Claim(
    id="jiang2023.ae_sam.matches_sam_cheaper", paper="jiang2023", source="Sec. 4 (abstract)",
    statement="AE-SAM, taking SAM steps only when the squared gradient norm exceeds its running "
              "mean, matches SAM's generalization at a fraction of its cost.",
    regime=_EFFICIENT_REGIME, lab=LAB, check=_matches_sam_cheaper("ae-sam", 0.8),
    expected="fail"))

register(Claim(
    id="mi2022.ssam.half_mask_keeps_sam", paper="mi2022", source="Sec. 5 (abstract)",
    statement="Perturbing only the 50% of coordinates with the largest Fisher information "
              "preserves SAM's generalization.",
    regime=_EFFICIENT_REGIME + "; sparsity 0.5, mask every 10 steps", lab=LAB,
    check=_matches_sam_cheaper("ssam-fisher", 1.1), expected="fail"))

register(Claim(
    id="du2022.saf.matches_sam_at_sgd_cost", paper="du2022", source="Sec. 5 (abstract)",
    statement="A trajectory-consistency penalty (SAF/MESA) recovers SAM's generalization at "
              "the cost of one gradient per step.",
    regime=_EFFICIENT_REGIME + "; EMA teacher (decay 0.9), squared output distance", lab=LAB,
    check=_matches_sam_cheaper("saf", 0.55), expected="fail"))


def _asam_invariance(measured):
    numbers = {key: float(value) for key, value in measured["asam_rescaling_violation"].items()}
    holds = numbers["asam_eta0"] <= EXACT and numbers["sam"] >= BROKEN
    return verdict(holds, numbers, "largest relative violation of ε(Aw) = Aε(w) over 200 random "
                   "rescalings of f(xᵀy); must be rounding for ASAM (η = 0), order one for SAM")


register(Claim(
    id="kwon2021.asam.rescaling_invariant", paper="kwon2021", source="Sec. 3, Thm 1 setting",
    statement="With η = 0, ASAM's ascent is equivariant under loss-preserving positive diagonal "
              "rescalings (x, y) → (Ax, A⁻¹y), so its adaptive sharpness is rescaling invariant; "
              "SAM's is not.",
    regime="f(xᵀy) = (xᵀy − 0.5)², x, y ∈ R³ with |entries| in [0.2, 2], A = diag(c), "
           "c ∈ [0.25, 4]³", lab=LAB, check=_asam_invariance))


def _asam_vs_sam(measured):
    asam, sam = _row(measured, REGRESSION, "asam"), _row(measured, REGRESSION, "sam")
    numbers = {"asam_test_loss": asam["quality"], "sam_test_loss": sam["quality"],
               "asam_rho": asam["value"], "sam_rho": sam["value"]}
    return verdict(asam["quality"] <= sam["quality"], numbers,
                   "tuned ASAM (η = 0.01, its own ρ grid) vs tuned SAM on the diagonal net")


register(Claim(
    id="kwon2021.asam.generalizes_better_than_sam", paper="kwon2021", source="Sec. 4 (abstract)",
    statement="ASAM generalizes better than SAM.",
    regime=_EFFICIENT_REGIME + "; ASAM η = 0.01", lab=LAB, check=_asam_vs_sam, expected="fail"))


def _precond(measured):
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
    if max(pre_seeds) < min(sam_seeds):
        return Verdict("pass", numbers, detail)
    if max(sam_seeds) < min(pre_seeds):
        return Verdict("fail", numbers, detail)
    # Both runs are chaotic near the minimum (last-bit differences grow to O(1) by step 3000), so
    # the medians' order follows the seeds and the rounding, not the method.
    return Verdict("inconclusive", numbers, detail + "; the seeds' test losses overlap")


register(Claim(
    id="singh2025.precond_sam.beats_sam_with_adam", paper="singh2025", source="Sec. 5",
    statement="Preconditioning SAM's perturbation by Adam's second moments improves on SAM "
              "with the same Adam base.",
    regime=_EFFICIENT_REGIME.replace("lr 0.05", "Adam lr 0.01"), lab=LAB, check=_precond,
    expected="inconclusive"))


def _lpf(measured):
    lpf, sgd = _row(measured, REGRESSION, "lpf-sgd"), _row(measured, REGRESSION, "sgd")
    numbers = {"lpf_trace": lpf["trace"], "sgd_trace": sgd["trace"],
               "lpf_test_loss": lpf["quality"], "sgd_test_loss": sgd["quality"],
               "lpf_sigma": lpf["value"]}
    holds = lpf["trace"] < sgd["trace"] and lpf["quality"] < sgd["quality"]
    return verdict(holds, numbers, "tuned LPF-SGD (4 draws, row-scaled σ) vs SGD: Hessian trace "
                   "at the end and test loss")


register(Claim(
    id="bisla2022.lpf_sgd.flatter_and_better_than_sgd", paper="bisla2022", source="Sec. 5",
    statement="Low-pass-filtered SGD ends in a flatter region (smaller Hessian trace) than SGD "
              "and generalizes better.",
    regime=_EFFICIENT_REGIME + "; 4 Gaussian draws per step", lab=LAB, check=_lpf))


def _rwp(measured):
    rwp, sgd = _row(measured, REGRESSION, "rwp"), _row(measured, REGRESSION, "sgd")
    numbers = {"rwp_test_loss": rwp["quality"], "sgd_test_loss": sgd["quality"],
               "rwp_sigma": rwp["value"]}
    return verdict(rwp["quality"] < sgd["quality"], numbers,
                   "tuned RWP (λ = 0.5 mix, one draw, row-scaled σ) vs SGD test loss")


register(Claim(
    id="li2024rwp.rwp.improves_on_sgd", paper="li2024rwp", source="Sec. 4",
    statement="Mixing the gradient at a random weight perturbation with the clean gradient "
              "improves generalization over SGD.",
    regime=_EFFICIENT_REGIME + "; λ = 0.5, one draw", lab=LAB, check=_rwp))


def _wasam(measured):
    wasam, sam = _row(measured, REGRESSION, "wasam"), _row(measured, REGRESSION, "sam")
    swa, sgd = _row(measured, REGRESSION, "swa"), _row(measured, REGRESSION, "sgd")
    numbers = {"wasam_test_loss": wasam["quality"], "sam_test_loss": sam["quality"],
               "swa_test_loss": swa["quality"], "sgd_test_loss": sgd["quality"]}
    return verdict(wasam["quality"] <= sam["quality"], numbers,
                   "tuned WASAM (average of the second half) vs tuned SAM")


register(Claim(
    id="kaddour2022.wasam.not_worse_than_sam", paper="kaddour2022", source="Sec. 4",
    statement="Averaging SAM's iterates (WASAM) generalizes at least as well as SAM.",
    regime=_EFFICIENT_REGIME + "; average over steps 1500-3000", lab=LAB, check=_wasam,
    expected="fail"))


def _flat_lora(measured):
    flat, sgd = _row(measured, LORA, "flat-lora"), _row(measured, LORA, "sgd")
    numbers = {"flat_lora_lambda_max": flat["lambda_max"], "lora_sgd_lambda_max": sgd["lambda_max"],
               "ratio": flat["lambda_max"] / sgd["lambda_max"], "flat_lora_sigma": flat["value"]}
    return verdict(numbers["ratio"] <= FLATTER, numbers,
                   "λ_max of the population loss at the end, Flat-LoRA vs plain LoRA training")


register(Claim(
    id="li2024flatlora.flat_lora.flatter_than_lora", paper="li2024flatlora", source="Sec. 4",
    statement="Random perturbation of the merged weight (Flat-LoRA) ends at a flatter solution "
              "than LoRA training, at no extra gradient cost.",
    regime="LoRA-like W0 + X_l Y_lᵀ, 4 layers of 3x3 (2 in --quick), rank 1, noise 0.5, "
           "batch 2, lr 0.01, 3000 steps; least squares in the merged weight", lab=LAB,
    check=_flat_lora, expected="fail"))


def _lets_robust(measured):
    lets, sam = _row(measured, REGRESSION, "lets"), _row(measured, REGRESSION, "sam")
    lets_spread = max(lets["quality_by_value"]) / min(lets["quality_by_value"])
    sam_spread = max(sam["quality_by_value"]) / min(sam["quality_by_value"])
    numbers = {"lets_spread": lets_spread, "sam_spread": sam_spread,
               "lets_by_initial_rho": lets["quality_by_value"],
               "sam_by_rho": sam["quality_by_value"]}
    return verdict(lets_spread < sam_spread, numbers, "max/min test loss over the ρ grid: LETS "
                   "(ρ is the initial radius) vs SAM (ρ fixed)")


register(Claim(
    id="wang2024lets.lets.robust_to_initial_rho", paper="wang2024lets", source="Sec. 5",
    statement="Learning the radius makes SAM's result insensitive to the initial radius.",
    regime=_EFFICIENT_REGIME + "; meta step 10, halves of each batch as train / held-out",
    lab=LAB, check=_lets_robust))


def _lets_vs_sam(measured):
    lets, sam = _row(measured, REGRESSION, "lets"), _row(measured, REGRESSION, "sam")
    numbers = {"lets_test_loss": lets["quality"], "sam_test_loss": sam["quality"]}
    return verdict(lets["quality"] <= sam["quality"], numbers, "tuned LETS vs tuned SAM")


register(Claim(
    id="wang2024lets.lets.improves_on_sam", paper="wang2024lets", source="Sec. 5 (abstract)",
    statement="SAM with a learned radius generalizes better than SAM with a tuned fixed radius.",
    regime=_EFFICIENT_REGIME + "; meta step 10", lab=LAB, check=_lets_vs_sam, expected="fail"))
