"""Zhang, He, Zhu, Chen, Wang, Wei (ICML 2024): SAM and adversarial training, checked on models
where robustness is exact (lab ``sam-adversarial``).

Data: y = ±1, x | y ~ N(y·μ, I) in 21 dimensions, μ = (1, 0.2, …, 0.2): one robust feature and 20
non-robust ones; 200 training examples; logistic loss; full-batch steps of 0.5. Methods: GD,
full-batch SAM and per-example SAM (1-SAM) at ρ ∈ {0.05, 0.1, 0.2}, AT (ℓ∞, exact one-step inner
maximum on linear scores, PGD-3 on the ReLU net) at ε ∈ {0.05, 0.1, 0.2}. The robust-feature ratio
is ``|w₀| / Σ_{j≥1} |w_j|`` of the model's (effective) input weights; accuracies are exact
population values for the linear and diagonal models and PGD-10 on 4,000 test examples for the
two-layer ReLU network.

References:
  Zhang, He, Zhu, Chen, Wang, Wei. On the Duality Between Sharpness-Aware Minimization and
    Adversarial Training. ICML 2024 (arXiv 2402.15152): Sec. 3 (SAM's weight perturbation as a
    feature perturbation), Sec. 4 (robust/non-robust features: SAM and AT both raise the weight
    on robust features, AT more strongly), Sec. 5 (SAM raises robustness at small budgets without
    losing clean accuracy; AT wins at large budgets and loses clean accuracy).
"""
from __future__ import annotations

from .base import Claim, Threshold, Verdict, finite, finite_max, judge, register

LAB = "sam-adversarial"
DATA = ("y = ±1, x | y ~ N(yμ, I), μ = (1, 0.2 × 20), 200 examples, logistic loss, 3,000 "
        "full-batch steps of 0.5")
SMALL, LARGE = 0.1, 0.3   # ℓ∞ evaluation budgets (index into eval_epsilons)
IDENTITY_TOLERANCE = 1e-10
NULL_TOLERANCE = 0.01     # full-batch SAM's ratio within 1% of GD's
AT_RAISES = 1.2           # AT (ε = 0.1) raises the linear ratio by ≥ 20%
ONE_SAM_RAISES = 1.05     # 1-SAM raises the ratio by ≥ 5% (mean over three data draws)
ROBUST_GAIN = 0.02        # ≥ 2 points of robust accuracy ...
CLEAN_LOSS = 0.005        # ... at ≤ 0.5 points of clean accuracy
ONE_SAM_RHO, AT_EPSILON = "0.1", "0.2"
RADIUS_TOLERANCE = 0.25   # closest ℓ2 AT budget ≈ c·ε* with c within 25% of 1


def _lanes(measured, model):
    return measured[model]["lanes"]


def _index(measured, epsilon):
    return [round(float(e), 12) for e in measured["eval_epsilons"]].index(epsilon)


IDENTITIES = ("input_attack_margin_drop", "weight_perturbation_margin_drop", "first_layer_duality",
              "reverse_duality_full_row_rank", "pgd_one_step_vs_exact",
              "one_sam_is_l2_at_without_shrinkage")


def _identities(measured, *, quick) -> Verdict:
    recorded = measured["duality"]["max_relative_error"]
    errors = {name: recorded[name] for name in IDENTITIES}  # each one must be measured
    worst = finite_max(list(errors.values()))
    return judge(Threshold("largest relative error over the six identities", worst, "<=",
                           IDENTITY_TOLERANCE), dict(errors),
                 "the duality identities hold to round-off on random instances")


def _linear_null(measured, *, quick) -> Verdict:
    lanes = _lanes(measured, "linear")
    gd = finite(lanes["GD"]["ratio"])
    shifts = {name: finite(lane["ratio"]) / gd - 1 for name, lane in lanes.items()
              if name.startswith("SAM ")}
    worst = finite_max([abs(shift) for shift in shifts.values()])
    at_raise = finite(lanes["AT ε=0.1"]["ratio"]) / gd
    return judge(Threshold("max over ρ of |ratio(SAM)/ratio(GD) − 1|", worst, "<=", NULL_TOLERANCE),
                 {"gd_ratio": gd, "sam_relative_shift": shifts, "at_eps_0.1_ratio_over_gd": at_raise,
                  "one_sam_relative_shift": {name: finite(lane["ratio"]) / gd - 1
                                             for name, lane in lanes.items()
                                             if name.startswith("1-SAM")}},
                 "full-batch SAM leaves the linear ratio where GD puts it; AT moves it",
                 also=[Threshold("ratio(AT, ε = 0.1) / ratio(GD)", at_raise, ">=", AT_RAISES)])


def _one_sam_raises(model):
    def check(measured, *, quick) -> Verdict:
        lanes = _lanes(measured, model)
        gd = finite(lanes["GD"]["ratio"])
        raised = {name: finite(lane["ratio"]) / gd for name, lane in lanes.items()
                  if name.startswith("1-SAM")}
        best = finite_max(list(raised.values()))
        return judge(Threshold("max over ρ of ratio(1-SAM)/ratio(GD)", best, ">=", ONE_SAM_RAISES),
                     {"gd_ratio": gd, "one_sam_ratio_over_gd": raised},
                     f"per-example SAM on the {model} model against GD")
    return check


def _small_budget_gain(measured, *, quick) -> Verdict:
    lanes = _lanes(measured, "relu")
    small = _index(measured, SMALL)
    gd_clean, gd_robust = finite(lanes["GD"]["accuracy"][0]), finite(lanes["GD"]["accuracy"][small])
    gains, clean_losses = {}, {}
    for name, lane in lanes.items():
        if "SAM" in name:
            gains[name] = finite(lane["accuracy"][small]) - gd_robust
            clean_losses[name] = gd_clean - finite(lane["accuracy"][0])
    eligible = [gains[name] for name in gains if clean_losses[name] <= CLEAN_LOSS]
    best = max(eligible) if eligible else -1.0
    diagonal = _lanes(measured, "diagonal")
    diagonal_gain = {name: finite(lane["accuracy"][small]) - finite(diagonal["GD"]["accuracy"][small])
                     for name, lane in diagonal.items() if "SAM" in name}
    return judge(Threshold(f"best robust-accuracy gain at ε = {SMALL:g} over GD among SAM runs "
                           f"losing ≤ {100 * CLEAN_LOSS:g} points of clean accuracy", best, ">=",
                           ROBUST_GAIN),
                 {"relu_gd_clean": gd_clean, "relu_gd_robust": gd_robust,
                  "relu_robust_gain": gains, "relu_clean_loss": clean_losses,
                  "diagonal_robust_gain_exact": diagonal_gain, "seeds": measured["relu"]["seeds"]},
                 "SAM against GD on the two-layer ReLU network (PGD-10, mean over seeds)")


def _ordering(measured, *, quick) -> Verdict:
    lanes = _lanes(measured, "diagonal")
    large = _index(measured, LARGE)
    gd, sam, at = lanes["GD"], lanes[f"1-SAM ρ={ONE_SAM_RHO}"], lanes[f"AT ε={AT_EPSILON}"]
    ratios = {name: finite(lane["ratio"]) for name, lane in (("GD", gd), ("1-SAM", sam), ("AT", at))}
    clean = {name: finite(lane["accuracy"][0]) for name, lane in (("GD", gd), ("1-SAM", sam),
                                                                   ("AT", at))}
    robust_large = {name: finite(lane["accuracy"][large])
                    for name, lane in (("GD", gd), ("1-SAM", sam), ("AT", at))}
    return judge(Threshold("ratio(1-SAM) / ratio(GD)", ratios["1-SAM"] / ratios["GD"], ">=", 1.0),
                 {"ratio": ratios, "clean_accuracy": clean,
                  f"robust_accuracy_eps_{LARGE:g}": robust_large},
                 f"diagonal network, exact: GD, 1-SAM (ρ = {ONE_SAM_RHO}), AT (ε = {AT_EPSILON})",
                 also=[Threshold("ratio(AT) − ratio(1-SAM)", ratios["AT"] - ratios["1-SAM"], ">=", 0.0),
                       Threshold("clean(1-SAM) − clean(AT)", clean["1-SAM"] - clean["AT"], ">=", 0.0),
                       Threshold("|clean(1-SAM) − clean(GD)|", abs(clean["1-SAM"] - clean["GD"]),
                                 "<=", CLEAN_LOSS),
                       Threshold(f"robust(AT) − robust(1-SAM) at ε = {LARGE:g}",
                                 robust_large["AT"] - robust_large["1-SAM"], ">=", 0.0)])


def _equivalence_radius(measured, *, quick) -> Verdict:
    rows = []
    for draw in measured["linear"]["equivalence"]:
        epsilons = [finite(e) for e in draw["epsilons"]]
        for predicted, distances in zip(draw["predicted_epsilon"], draw["direction_distance"]):
            distances = [finite(d) for d in distances]
            best = epsilons[distances.index(min(distances))]
            rows.append({"predicted_epsilon": finite(predicted), "closest_epsilon": best,
                         "closest_over_predicted": best / finite(predicted),
                         "distance_at_closest": min(distances), "distance_at_zero": distances[0]})
    # The least-squares c in "closest ε ≈ c·ε*" over every (training set, ρ) pair.
    slope = (sum(row["closest_epsilon"] * row["predicted_epsilon"] for row in rows)
             / sum(row["predicted_epsilon"] ** 2 for row in rows))
    return judge(Threshold("|c − 1|, c the least-squares slope of closest ε against ε*",
                           abs(slope - 1), "<=", RADIUS_TOLERANCE),
                 {"slope_closest_over_predicted": slope, "per_training_set_and_rho": rows},
                 "1-SAM against ℓ2 AT on the linear model: the budget whose solution points where "
                 "1-SAM's does, against the equivalence radius")


register(Claim(
    id="zhang2024.sam_adversarial.duality_identities", paper="zhang2024", source="Sec. 3",
    statement="The worst ℓp input attack of radius ε lowers a linear margin by ε‖w‖_q, the worst "
              "ℓ2 weight perturbation of radius ρ by ρ‖x‖₂, ΔW = Wδxᵀ/‖x‖² reproduces any input "
              "perturbation δ of a first layer (and back when W has full row rank), one step of "
              "the library's attack finds the exact worst case, and the library's 1-SAM gradient on "
              "a linear score is ℓ'(m_k − ρ‖x_k‖)·y_k·x_k averaged (AT at the equivalence radius "
              "ρ‖x_k‖/‖w‖ without its shrinkage term): largest relative error ≤ 1e-10.",
    regime="200 random instances, d ≤ 7, m ≤ 3, ε, ρ ∈ [0, 1]; 1-SAM: 3 instances, 8 examples in "
           "6 dimensions, ρ = 0.3", lab=LAB, check=_identities))

register(Claim(
    id="zhang2024.sam_adversarial.linear_full_batch_sam_changes_nothing", paper="zhang2024",
    source="Sec. 4 (null result on the linear model; the issue's note)",
    statement="On linear logistic regression, full-batch SAM's robust-feature ratio stays within "
              "1% of GD's at every ρ ∈ {0.05, 0.1, 0.2}, while AT at ε = 0.1 raises it by ≥ 20%.",
    regime=DATA + "; linear score", lab=LAB, check=_linear_null))

register(Claim(
    id="zhang2024.sam_adversarial.per_example_sam_raises_robust_weight_linear", paper="zhang2024",
    source="Sec. 3-4 (the per-example weight perturbation as a feature perturbation)",
    statement="On linear logistic regression, per-example SAM (1-SAM) raises the robust-feature "
              "ratio over GD's by ≥ 5% for some ρ ∈ {0.05, 0.1, 0.2} (ratios averaged over three "
              "training sets; one with --quick).",
    regime=DATA + "; linear score", lab=LAB, check=_one_sam_raises("linear"), expected="fail"))

register(Claim(
    id="zhang2024.sam_adversarial.per_example_sam_raises_robust_weight_diagonal", paper="zhang2024",
    source="Sec. 3-4",
    statement="On the diagonal network u⊙v (init 0.1), per-example SAM (1-SAM) raises the "
              "robust-feature ratio over GD's by ≥ 5% for some ρ ∈ {0.05, 0.1, 0.2} (ratios averaged "
              "over three training sets; one with --quick).",
    regime=DATA + "; diagonal network u⊙v", lab=LAB, check=_one_sam_raises("diagonal")))

register(Claim(
    id="zhang2024.sam_adversarial.sam_gains_small_budget_robustness", paper="zhang2024",
    source="Sec. 5, Tables 1-2 (ℓ∞ budgets 1/255, 2/255 against AT's 8/255)",
    statement="On a two-layer ReLU network (16 units), some SAM run (full-batch or 1-SAM, ρ in the "
              "grid) gains ≥ 2 points of ℓ∞ robust accuracy at ε = 0.1 over GD while losing ≤ 0.5 "
              "points of clean accuracy (mean over seeds, PGD-10 on 4,000 test examples).",
    regime=DATA.replace("3,000", "3,000 (400 with --quick)") + "; ReLU network, 16 units, "
           "init scale 1; 4 seeds (2 with --quick)", lab=LAB, check=_small_budget_gain,
    expected="fail"))

register(Claim(
    id="zhang2024.sam_adversarial.ordering_sgd_sam_at", paper="zhang2024", source="Sec. 4-5",
    statement="The paper's ordering on the diagonal network (exact accuracies): robust-feature "
              "ratio GD ≤ 1-SAM (ρ = 0.1) ≤ AT (ε = 0.2); clean accuracy AT ≤ 1-SAM, with 1-SAM "
              "within 0.5 points of GD; AT's ℓ∞ robust accuracy at ε = 0.3 ≥ 1-SAM's "
              "(thresholds: each difference ≥ 0, the clean gap ≤ 0.005).",
    regime=DATA + "; diagonal network u⊙v", lab=LAB, check=_ordering))

register(Claim(
    id="zhang2024.sam_adversarial.equivalence_radius_predicts_at_budget", paper="zhang2024",
    source="Sec. 3 (the weight perturbation as a feature perturbation; the issue's claim 5)",
    statement="On linear logistic regression, the ℓ2 AT budget whose final weights point closest "
              "to 1-SAM's (1 − cos, over the grid ε ∈ {0, 0.01, …, 0.3}) is the equivalence radius "
              "ε* = ρ·mean‖x_k‖/‖w_1-SAM‖ to within 25%: over every ρ ∈ {0.05, 0.1, 0.2} and "
              "training set, the least-squares slope c of closest ε against ε* has |c − 1| ≤ 0.25.",
    regime=DATA + "; three training sets (one with --quick); linear score; ℓ2 AT with the "
           "exact one-step inner maximum", lab=LAB,
    check=_equivalence_radius, expected="fail"))
