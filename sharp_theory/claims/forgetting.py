"""Forgetting after fine-tuning (labs/forgetting.py; papers/forgetting.md).

* Lin, Ju, Liang, Shroff (ICML 2023): closed-form expected task losses in sequential
  Gaussian linear regression.
* Evron, Moroshko, Ward, Srebro, Soudry (COLT 2022): two-task forgetting from principal angles,
  its worst case, and the cyclic-order bound; random orders against the bounds with stated
  constants (Attia et al. 2025, Evron et al. 2025).
* Mirzadeh, Farajtabar, Pascanu, Ghasemzadeh (NeurIPS 2020): F ≈ ½ΔwᵀH_AΔw.
* Derived here: SAM and GD fitted to convergence forget the same in linear regression.
* Li, Ding, Fang, Tao (Findings of EMNLP 2024): SAM fine-tuning forgets less; with WiSE-FT less
  still; forgetting tracks the flatness of the tuned model.
* Watts et al. (2026): SAM during pretraining lowers later forgetting.
* Biderman et al. (TMLR 2024): LoRA learns less and forgets less than full fine-tuning.
* Li, Zhang, He (NeurIPS 2024): SAM balances the LoRA factors.

References:
  Lin, Ju, Liang, Shroff. Theory on Forgetting and Generalization of Continual Learning. ICML 2023.
  Evron et al. How catastrophic can catastrophic forgetting be in linear regression? COLT 2022.
  Mirzadeh et al. Understanding the Role of Training Regimes in Continual Learning. NeurIPS 2020.
  Li, Ding, Fang, Tao. Revisiting Catastrophic Forgetting in Large Language Model Tuning.
    Findings of EMNLP 2024.
  Watts et al. arXiv:2605.02105 (2026).
"""
from __future__ import annotations

import numpy as np

from .base import (Claim, Threshold, Verdict, finite, finite_max, finite_min, finite_values,
                   inconclusive, judge, register)

LAB = "forgetting"
LINEAR = ("sequential linear regression, Gaussian features x ~ N(0, I_p), p ≥ n + 2, w_0 = 0, "
          "each task fitted to the interpolator closest to the previous iterate")
NOISELESS = ("noiseless tasks sharing a solution w*, ‖X_m‖ ≤ 1, each fitted to convergence from "
             "the previous iterate; two tasks in p = 6 (ranks 1-3), three rank-one tasks in d = 10")
NEXT_TOKEN = ("softmax_bigram(V = 8, d = 4, h = 8), exact cross-entropy; task A its table, task B "
              "(1 − λ)J_A + λJ_s for gaps λ in 0.001..0.8 and random tables J_s; pretraining GD "
              "η = 2 (10k/20k steps) polished to a minimum by Newton steps, fine-tuning from w_A "
              "at η = 1: SAM K = 100 steps, GD 2K")
Z_BOUND = 4.0
ROUND_OFF = 1e-9
QUADRATIC_TOLERANCE = 0.1
SIZE_SPEARMAN = 0.8
MINIMUM_GRADIENT = 1e-8  # premise: ‖∇L_A(w_A)‖ at most this (w_A is a minimum)
SAM_GD_TOLERANCE = 0.01
SAM_RATIO = 0.8
LANE_FRACTION = 0.75
SPEARMAN = 0.8
FLATNESS_MEASURES = ("lambda_max", "trace", "SC", "AG", "MAG")


def _lin(measured, *, quick) -> Verdict:
    lin = measured["lin"]
    worst = finite_max([row["max_abs_z"] for row in lin["configs"]])
    return judge(Threshold("max |closed form − Monte Carlo| / standard error", worst, "<=", Z_BOUND),
                 {"max_abs_z": worst, "fraction_within_3_se": lin["fraction_within_3_se"],
                  "repeats": lin["repeats"]},
                 f"every entry of M over {len(lin['configs'])} (p, n, T, σ) settings")


def _evron(measured, *, quick) -> Verdict:
    evron = measured["evron"]
    error = finite(evron["two_task_max_abs_error_over_norm"])
    ratios = {"two_task": evron["two_task_max_ratio_to_worst_case"],
              "norm_one_data": evron["norm_one_data_max_ratio_to_worst_case"],
              "cyclic": evron["cyclic_max_ratio_to_bound"]}
    worst_ratio = finite_max(list(ratios.values()))
    return judge(Threshold("max |formula − simulation| / ‖w*‖²", error, "<=", ROUND_OFF),
                 {"max_error": error, **{f"{k}_max_ratio": v for k, v in ratios.items()},
                  "worst_case_attained": evron["worst_case_attained_ratios"]},
                 "principal-angle formula to round-off; no run above its worst case",
                 also=[Threshold("max forgetting / worst-case bound", worst_ratio, "<=", 1.0)])


def _random_orders(measured, *, quick) -> Verdict:
    orders = measured["random_orders"]
    with_replacement = finite(orders["max_ratio_to_13_over_sqrt_k"])
    single_pass = finite(orders["single_pass_max_ratio_to_2_d_minus_r_over_k"])
    numbers = {"max_ratio_to_13_over_sqrt_k": with_replacement,
               "single_pass_max_ratio_to_2_d_minus_r_over_k": single_pass,
               "smallest_constant_c_for_c_d_minus_mean_rank_over_k":
                   orders["smallest_constant_c_for_c_d_minus_mean_rank_over_k"],
               "iterations": orders["iterations"], "seeds": orders["seeds"]}
    if not orders["single_pass_ranks_equal"]:
        return inconclusive(numbers, "outside the premise of 2(d − r)/k: the single-pass tasks "
                                     "do not all have the same rank r")
    return judge(Threshold("max over k ≤ 400 and seeds of E L(w_k) / (13/√k), with replacement",
                           with_replacement, "<=", 1.0), numbers,
                 "exact expectations over random orders; jointly realizable tasks, w_0 = 0",
                 also=[Threshold("max over k ≤ T and seeds of E L(w_k) / (2(d − r)/k), single pass",
                                 single_pass, "<=", 1.0)])


def _quadratic(measured, *, quick) -> Verdict:
    exact = finite(measured["quadratic"]["max_relative_error"])
    tokens = measured["next_token_quadratic"]
    errors = tokens["median_relative_error_by_gap"]
    smallest = finite(errors[0])
    diagonal = measured["diagonal_quadratic"]
    diagonal_smallest = finite(diagonal["median_relative_error_by_gap"][0])
    gradient = finite_max([tokens["gradient_norm_at_w_a"], diagonal["gradient_norm_at_w_a"]])
    if gradient > MINIMUM_GRADIENT:
        return inconclusive({"gradient_norm_at_w_a": gradient, "smallest_gap_error": smallest},
                            f"outside the premise: ‖∇L_A(w_A)‖ = {gradient:.3g} > "
                            f"{MINIMUM_GRADIENT:g}, w_A is not a minimum of L_A")
    return judge(Threshold("median |½ΔwᵀH_AΔw / F − 1| at the smallest gap (next-token)", smallest,
                           "<=", QUADRATIC_TOLERANCE),
                 {"quadratic_max_relative_error": exact, "median_error_by_gap": errors,
                  "gaps": tokens["gaps"], "median_distance_by_gap": tokens["median_distance_by_gap"],
                  "fraction_of_gaps_within_10_percent": tokens["fraction_of_gaps_within_10_percent"],
                  "gradient_norm_at_w_a": gradient,
                  "diagonal_median_error_by_gap": diagonal["median_relative_error_by_gap"],
                  "diagonal_gaps": diagonal["gaps"],
                  "diagonal_median_distance_by_gap": diagonal["median_distance_by_gap"],
                  "diagonal_largest_gap_within_10_percent":
                      diagonal["largest_gap_within_10_percent"]},
                 "exact on a quadratic; within 10% on the next-token model and on the diagonal "
                 "net for the smallest gap",
                 also=[Threshold("max relative error on the quadratic", exact, "<=", ROUND_OFF),
                       Threshold("median |½ΔwᵀH_AΔw / F − 1| at the smallest gap (diagonal net)",
                                 diagonal_smallest, "<=", QUADRATIC_TOLERANCE)])


def _sam_gd_linear(measured, *, quick) -> Verdict:
    linear = measured["linear_regression"]
    gap = finite(linear["max_relative_sam_gd_gap"])
    to_projection = finite(linear["max_relative_gd_projection_gap"])
    return judge(Threshold("max |F_SAM − F_GD| / F_GD", gap, "<=", SAM_GD_TOLERANCE),
                 {"max_relative_sam_gd_gap": gap, "max_relative_gd_projection_gap": to_projection},
                 "SAM and GD, run to convergence on task B from w_A, forget the same",
                 also=[Threshold("max |F_GD − F_projection| / F_projection", to_projection, "<=",
                                 SAM_GD_TOLERANCE)])


def _sam_forgets_less(measured, *, quick) -> Verdict:
    sam = measured["sam_finetuning"]
    fraction = finite(sam["fraction_at_most_0_8"])
    return judge(Threshold("fraction of (gap, seed) lanes with F_SAM ≤ 0.8 F_GD at the best ρ",
                           fraction, ">=", LANE_FRACTION),
                 {"fraction": fraction, "best_rho": sam["best_rho"],
                  "median_ratio": sam["median_ratio"],
                  "median_ratio_by_rho": sam["median_ratio_by_rho"],
                  "fraction_sam_below_gd": sam["fraction_sam_below_gd"],
                  "median_loss_b_excess_sam_minus_gd": sam["median_loss_b_excess_sam_minus_gd"]},
                 "SAM (K steps) against GD (2K steps) from the same pretrained w_A")


def _wise(measured, *, quick) -> Verdict:
    wise = measured["wise_ft"]
    fraction = finite(wise["fraction_sam_wise_below_both"])
    return judge(Threshold("fraction of lanes where SAM + WiSE-FT forgets less than SAM and than "
                           "GD + WiSE-FT", fraction, ">=", LANE_FRACTION),
                 {"fraction": fraction, "alpha": wise["alpha"],
                  "median_ratio_sam_wise_to_gd_wise": wise["median_ratio_sam_wise_to_gd_wise"],
                  "median_ratio_sam_wise_to_sam": wise["median_ratio_sam_wise_to_sam"]},
                 "WiSE-FT with α = 0.5 on top of either fine-tuning")


def _rehearsal(measured, *, quick) -> Verdict:
    rehearsal = measured["rehearsal"]
    fraction = finite(rehearsal["fraction_sam_rehearsal_below_both"])
    return judge(Threshold("fraction of lanes where SAM + rehearsal forgets less than SAM and than "
                           "GD + rehearsal", fraction, ">=", LANE_FRACTION),
                 {"fraction": fraction, "rehearsal": rehearsal["fraction"],
                  "median_ratio_sam_rehearsal_to_gd_rehearsal":
                      rehearsal["median_ratio_sam_rehearsal_to_gd_rehearsal"],
                  "median_ratio_sam_rehearsal_to_sam": rehearsal["median_ratio_sam_rehearsal_to_sam"],
                  "median_ratio_gd_rehearsal_to_gd": rehearsal["median_ratio_gd_rehearsal_to_gd"]},
                 f"rehearsal: a fraction {rehearsal['fraction']} of task A's table in the "
                 "fine-tuning table, SAM at the best ρ")


def _flatness(measured, *, quick) -> Verdict:
    flatness = measured["flatness"]
    if list(flatness["measures"]) != list(FLATNESS_MEASURES):
        raise ValueError(f"flatness measures {flatness['measures']}, expected {FLATNESS_MEASURES}")
    values = list(flatness["spearman_by_measure"])
    correlations = dict(zip(FLATNESS_MEASURES, values))
    weakest = finite_min(values)
    return judge(Threshold("min over λ_max, trace, SC, AG, MAG of Spearman(measure, F)", weakest,
                           ">=", SPEARMAN),
                 {**{f"spearman_{k}": v for k, v in correlations.items()},
                  "lanes": measured["flatness"]["lanes"]},
                 "flatness of the GD-tuned model on task B against its forgetting, over all lanes")


def _sam_pretraining(measured, *, quick) -> Verdict:
    pre = measured["sam_pretraining"]
    fraction = finite(pre["fraction_less_forgetting"])
    return judge(Threshold("fraction of lanes where GD fine-tuning after SAM pretraining forgets "
                           "less than after GD pretraining", fraction, ">=", LANE_FRACTION),
                 {"fraction": fraction, "median_ratio": pre["median_ratio"], "rho": pre["rho"],
                  "sam_pretrain_excess_loss": pre["sam_pretrain_excess_loss"],
                  "lambda_max_a_gd": pre["lambda_max_a_gd"], "lambda_max_a_sam": pre["lambda_max_a_sam"]},
                 "the same fine-tuning (GD, 2K steps) from the two pretrained points")


register(Claim(
    id="lin2023.forgetting.closed_form_matches_monte_carlo", paper="lin2023", source="Theorem 1",
    statement="The closed-form expected loss of every task after every task matches Monte Carlo "
              "of the sequential fits: every entry within 4 standard errors (4 rather than 3: "
              "about 40 entries are compared at once).",
    regime=LINEAR + "; (p, n, T, σ) ∈ {(12,4,3,0), (12,4,3,0.5), (24,6,4,0.3), (24,12,3,0)}",
    lab=LAB, check=_lin))

register(Claim(
    id="evron2022.forgetting.two_task_formula_and_bounds", paper="evron2022",
    source="Sec. 4 (two tasks), Sec. 5 (cyclic orders); the formula derived in papers/forgetting.md",
    statement="Two-task forgetting after k alternating fits equals ½Σa_j²cos^{2(k−1)}θ_j sin²θ_j "
              "to round-off (≤ 1e-9 ‖w*‖²), and no run exceeds the worst cases "
              "½‖w*‖²(k−1)^{k−1}/k^k (two tasks) and T² min(1/√k, d/k) (cyclic): max ratio ≤ 1.",
    regime=NOISELESS, lab=LAB, check=_evron))

register(Claim(
    id="evron2022.forgetting.random_order_bounds", paper="evron2022",
    source="random orderings (Evron et al. 2022: O((d − r̄)/k), constant not verified); the "
           "constants of Attia et al. 2025 and Evron et al. 2025 as stated by Tsipory et al. 2025",
    statement="Under a uniformly random task order the exact expected normalized average loss "
              "E L(w_k) = E (1/T)Σ_m‖X_m w_k − y_m‖²/(‖w*‖²R²) stays at or below 13/√k (with "
              "replacement, every k ≤ 400) and, for a single pass over tasks of one rank r, at or "
              "below 2(d − r)/k (every k ≤ T): max ratio to the bound ≤ 1. The smallest C with "
              "E L(w_k) ≤ C(d − r̄)/k (Evron et al. 2022's rate) is reported.",
    regime="noiseless jointly realizable tasks, w_0 = 0, each fitted to convergence; with "
           "replacement T = 4 tasks of ranks 1-3 in d = 10 scaled to R = 1; single pass T = 5 "
           "tasks of one rank r in d = 4, near a common subspace (mean over all 120 orders)",
    lab=LAB, check=_random_orders))

register(Claim(
    id="mirzadeh2020.forgetting.quadratic_prediction", paper="mirzadeh2020", source="Sec. 3, Eq. (3)",
    statement="F = ½ΔwᵀH_AΔw to round-off (≤ 1e-9 relative) when L_A is quadratic and minimized "
              "at w_A, and within 10% (median over seeds) on the next-token model and on the "
              "diagonal net at the smallest task gap, when w_A is a minimum (‖∇L_A(w_A)‖ ≤ 1e-8; "
              "otherwise inconclusive).",
    regime="least squares with n > p (quadratic); " + NEXT_TOKEN + "; diagonal net β = u⊙v, "
           "n = 20, d = 10, task B θ_A + λξ (λ in 0.003..1), GD η = 0.05 for 400 steps from the "
           "balanced exact minimum", lab=LAB, check=_quadratic))

register(Claim(
    id="evron2022.forgetting.sam_equals_gd_in_linear_regression", paper="evron2022",
    source="derived (papers/forgetting.md): SAM's gradients lie in the row space of X_B",
    statement="On a least-squares task B started at w_A, SAM (ρ = 0.01) and GD run to convergence "
              "forget task A the same: max |F_SAM − F_GD|/F_GD ≤ 0.01, and GD ends at the "
              "projection (within 1%).",
    regime="p = 20, n = 8 per task, η = 0.5, 3,000 steps", lab=LAB, check=_sam_gd_linear))

register(Claim(
    id="li2024forgetting.forgetting.sam_forgets_less", paper="li2024forgetting",
    source="Sec. 4, Table 2", expected="fail",
    statement="SAM fine-tuning forgets at most 0.8× as much as the baseline at equal gradient "
              "evaluations in ≥ 75% of the (gap, seed) lanes, at the best ρ of the grid.",
    regime=NEXT_TOKEN, lab=LAB, check=_sam_forgets_less))

register(Claim(
    id="li2024forgetting.forgetting.sam_with_wise_ft", paper="li2024forgetting",
    source="Sec. 4 (SAM combined with Wise-FT)", expected="fail",
    statement="SAM + WiSE-FT (α = 0.5) forgets less than SAM alone and than GD + WiSE-FT in ≥ 75% "
              "of the lanes.",
    regime=NEXT_TOKEN, lab=LAB, check=_wise))

register(Claim(
    id="li2024forgetting.forgetting.sam_with_rehearsal", paper="li2024forgetting",
    source="Sec. 4 (SAM combined with rehearsal)", expected="fail",
    statement="SAM + rehearsal (20% of task A's data mixed into fine-tuning) forgets less than "
              "SAM alone and than GD + rehearsal in ≥ 75% of the lanes.",
    regime=NEXT_TOKEN, lab=LAB, check=_rehearsal))

register(Claim(
    id="li2024forgetting.forgetting.flatness_tracks_forgetting", paper="li2024forgetting",
    source="Sec. 3 (flatness vs forgetting), App. A.3 (SC, AG, MAG)", expected="fail",
    statement="Across task gaps, forgetting rises with the tuned model's flatness measures: "
              "Spearman ≥ 0.8 for each of λ_max, trace, SC, AG and MAG (our definitions of the "
              "last three).",
    regime=NEXT_TOKEN, lab=LAB, check=_flatness))

register(Claim(
    id="watts2026.forgetting.sam_pretraining", paper="watts2026", source="abstract",
    expected="fail",
    statement="GD fine-tuning forgets less after SAM pretraining (ρ = 0.05) than after GD "
              "pretraining in ≥ 75% of the lanes (both pretrained points polished to exact minima "
              "of L_A by Newton steps, so only their place on the minimizer set differs).",
    regime=NEXT_TOKEN, lab=LAB, check=_sam_pretraining))


def _lora(measured, *, quick) -> Verdict:
    lora = measured["lora"]
    forgets_less = finite(lora["fraction_lora_forgets_less"])
    learns_less = finite(lora["fraction_lora_learns_less"])
    return judge(Threshold("fraction of lanes where LoRA (GD, 2K steps) forgets less than full "
                           "fine-tuning (GD, 2K steps)", forgets_less, ">=", LANE_FRACTION),
                 {"fraction_forgets_less": forgets_less, "fraction_learns_less": learns_less,
                  "median_forgetting_ratio": lora["median_forgetting_ratio_lora_to_full"],
                  "median_forgetting_ratio_by_gap": lora["median_forgetting_ratio_by_gap"],
                  "median_loss_b_excess_lora_minus_full":
                      lora["median_loss_b_excess_lora_minus_full"]},
                 "rank-1 W0 + xyᵀ on the readout against all parameters, equal gradient "
                 "evaluations, exact forgetting",
                 also=[Threshold("fraction of lanes where LoRA ends with a higher task-B loss",
                                 learns_less, ">=", LANE_FRACTION)])


def _lora_balance(measured, *, quick) -> Verdict:
    lora = measured["lora"]
    fraction = finite(lora["fraction_sam_more_balanced"])
    return judge(Threshold("fraction of lanes where SAM (K steps) ends with smaller |‖x‖² − ‖y‖²| "
                           "than GD (2K steps)", fraction, ">=", LANE_FRACTION),
                 {"fraction": fraction, "median_imbalance_gd": lora["median_imbalance_gd"],
                  "median_imbalance_sam": lora["median_imbalance_sam"],
                  "imbalance_at_start": lora["imbalance_at_start"], "rho": lora["rho"],
                  "fraction_sam_lora_forgets_less_than_gd_lora":
                      lora["fraction_sam_lora_forgets_less_than_gd_lora"],
                  "median_forgetting_ratio_sam_lora_to_gd_lora":
                      lora["median_forgetting_ratio_sam_lora_to_gd_lora"]},
                 "SAM against GD on the LoRA factors, from the same start")


LORA_REGIME = (NEXT_TOKEN + "; LoRA: rank-1 update W0 + xyᵀ of the readout (16 trainable "
               "parameters of 144), y_0 = 0, x_0 = 0.3·N(0, 1), the same η")

register(Claim(
    id="biderman2024.forgetting.lora_learns_less_forgets_less", paper="biderman2024",
    source="Sec. 4.1 (LoRA underperforms), Sec. 4.2 (LoRA forgets less)",
    statement="LoRA fine-tuning forgets the source task less than full fine-tuning at equal "
              "gradient evaluations in ≥ 75% of the (gap, seed) lanes, and learns the target "
              "task less (higher task-B loss) in ≥ 75% of them.",
    regime=LORA_REGIME, lab=LAB, check=_lora))

register(Claim(
    id="li2024.forgetting.sam_balances_lora_factors", paper="li2024",
    source="Li, Zhang, He NeurIPS 2024 (SAM's implicit balancedness), on LoRA factors",
    statement="SAM on the LoRA factors (K steps, ρ = 0.02) ends more balanced than GD (2K steps), "
              "|‖x‖² − ‖y‖²| smaller, in ≥ 75% of the lanes.",
    regime=LORA_REGIME, lab=LAB, check=_lora_balance))


def _size_trend(sign: int):
    def check(measured, *, quick) -> Verdict:
        size = measured["model_size"]
        values = finite_values(list(size["spearman_by_gap"]))
        gradient = finite(size["max_gradient_at_minimum"])
        median = float(np.median(values))
        numbers = {"median_spearman": median, "spearman_by_gap": values, "gaps": size["gaps"],
                   "hidden_sizes": size["hidden_sizes"], "max_gradient_at_minimum": gradient}
        if gradient > MINIMUM_GRADIENT:
            return inconclusive(numbers, f"a pretrained model is not at a minimum of L_A "
                                         f"(‖∇L_A‖ = {gradient:.3g} > {MINIMUM_GRADIENT:g})")
        if sign > 0:
            return judge(Threshold("median over gaps of Spearman(width, forgetting)", median, ">=",
                                   SIZE_SPEARMAN), numbers, "wider models forget more")
        return judge(Threshold("median over gaps of Spearman(width, forgetting)", median, "<=",
                               -SIZE_SPEARMAN), numbers, "wider models forget less")
    return check


SIZES_REGIME = (NEXT_TOKEN + "; hidden width h ∈ {8, 16, 32, 64} (144–872 parameters), GD "
                "fine-tuning with the same η and steps for every width")

register(Claim(
    id="li2024forgetting.forgetting.bigger_forgets_more", paper="li2024forgetting",
    source="Sec. 4 (TinyLlama, 7B, 13B)",
    statement="Bigger models forget more: the median over task gaps of Spearman(hidden width, "
              "median forgetting) is ≥ 0.8 (full runs only).",
    regime=SIZES_REGIME, lab=LAB, check=_size_trend(+1)))

register(Claim(
    id="goldfarb2023.forgetting.wider_forgets_less", paper="goldfarb2023",
    source="Goldfarb & Hand AISTATS 2023; Mirzadeh et al. 2022 (wide networks forget less)",
    expected="fail",
    statement="Wider models forget less: the median over task gaps of Spearman(hidden width, "
              "median forgetting) is ≤ −0.8 (full runs only).",
    regime=SIZES_REGIME, lab=LAB, check=_size_trend(-1)))
