"""Claims of Li, Zhang, He (NeurIPS 2024, arXiv 2410.14802), measured by the balancedness lab.

B. Li, L. Zhang, N. He. Implicit Regularization of Sharpness-Aware Minimization for Scale-Invariant
Problems. Balancedness ``B = ½(‖x‖² − ‖y‖²)`` of the factors of ``f(xᵀy)`` (OP) and ``f(xyᵀ)``
(NOP). Every check reads the numbers ``labs/balancedness.py`` stores in ``measured`` and states its
threshold with the reason for it. Card: papers/li2024-balancedness.md.
"""
from __future__ import annotations

import numpy as np

from .base import Claim, register, verdict

PAPER = "li2024"
LAB = "balancedness"
EPS = float(np.finfo(np.float64).eps)

# Exact identities: B = ½(‖x‖² − ‖y‖²) is a sum of ~10 rounded products, so its float64 error is a
# few eps·(‖x‖² + ‖y‖²); 64 eps·max(‖x‖² + ‖y‖²) leaves a wide margin and is still ~1e-14.
IDENTITY_ULPS = 64
# The per-step bound |ΔB_t| ≤ (η²/2)‖g_t‖² summed over the run is compared with its expectation
# integrated from records (trapezoid); 25% covers the quadrature and the sampling of ‖g_t‖².
BUDGET_SLACK = 1.25
# Our exact expected SAM rate is linearized in the per-step factor (error ~ (η·rate)² per step) and
# integrated from records; 10% covers that and the seed-to-seed spread of Σ|f'_t| (< 1%).
RATE_TOLERANCE = 0.10
# "SAM moves B towards ‖g_x‖ = ‖g_y‖": it ends at least twice as close (relative imbalance) as SGD.
IMBALANCE_FACTOR = 0.5
# Lemma 1 in float64 on O(1) numbers: a dense 6x6 eigvalsh is accurate to ~1e-15 relative.
LEMMA_TOLERANCE = 1e-12
# Thm 5's normalization by the all-layer gradient norm acts like rho/√D only on average over the
# layers' fluctuating norms; we accept 25% between D layers and one layer at rho/√D.
DEPTH_TOLERANCE = 0.25
# BAR acts layer by layer, so per-layer |B_T| should not depend on D beyond seed noise.
BAR_DEPTH_SPREAD = 0.25


def _values(measured, section, key):
    return [float(v) for v in measured[section][key]]


def _positive_noise(measured, section):
    return [i for i, a in enumerate(measured[section]["noise"]) if a > 0]


# --- claim 1: GD conserves B; exact one-step identities ------------------------------------------

def _check_gd_identity(measured):
    m = measured["gd_identity"]
    tolerance = IDENTITY_ULPS * EPS * m["max_squared_norm"]
    errors = [m["op_max_abs_error"], m["nop_max_abs_error"]]
    changes = [m["op_mean_abs_change"], m["nop_mean_abs_change"]]
    ok = max(errors) <= tolerance and min(changes) > 1e3 * tolerance
    return verdict(ok, {"op_max_abs_error": m["op_max_abs_error"],
                        "nop_max_abs_error": m["nop_max_abs_error"], "tolerance": tolerance,
                        "op_mean_abs_change": m["op_mean_abs_change"],
                        "nop_mean_abs_change": m["nop_mean_abs_change"], "lr": m["lr"]},
                   "one SGD step at a time, replayed with the same noise draws; the identities must "
                   "hold to round-off while B itself changes by much more (not vacuous)")


register(Claim(
    id="li2024.balancedness.gd_one_step_identity", paper=PAPER, source="Thm 1 (exact discrete form derived here)",
    statement="One GD step multiplies B by (1 − η²f'²) on f(xᵀy) and adds (η²/2)(‖g_x‖² − ‖g_y‖²) on "
              "f(xyᵀ), exactly; checked on SGD trajectories of both noisy toys.",
    regime="any step size; OP and NOP toys with noise 1, η = 0.05, float64", lab=LAB,
    check=_check_gd_identity))


def _check_gd_conserves(measured):
    numbers, ok = {}, True
    for toy in ("op", "nop"):
        m = measured[f"sgd_{toy}"]
        ratio = float(m["max_change_over_budget"])
        numbers[f"{toy}_max_change_over_budget"] = ratio
        numbers[f"{toy}_max_abs_change"] = max(_values(measured, f"sgd_{toy}", "max_abs_change"))
        numbers[f"{toy}_abs_B0"] = abs(float(m["B0"]))
        ok = ok and ratio <= BUDGET_SLACK
    numbers["allowed_ratio"] = BUDGET_SLACK
    return verdict(ok, numbers, "|B_T − B_0| of SGD against the O(η²) budget (η²/2)Σ_t E‖g_t‖² "
                                "for every noise level and seed")


register(Claim(
    id="li2024.balancedness.gd_conserves", paper=PAPER, source="Thm 1",
    statement="SGD keeps B constant up to its O(η²) per-step change: |B_T − B_0| stays within "
              "(η²/2)Σ_t E(‖g_x‖² + ‖g_y‖²), which vanishes as η → 0 with ηT fixed.",
    regime="OP and NOP toys, noise α ∈ {0, 0.25, 0.5, 1}, batch 1, η·T = 10", lab=LAB,
    check=_check_gd_conserves))


# --- claim 2: SAM on NOP moves B towards ‖g_x‖ = ‖g_y‖ --------------------------------------------

def _check_sam_nop(measured):
    m = measured["sam_nop"]
    indices = _positive_noise(measured, "sam_nop")
    sam = [m["median_final_relative_imbalance_sam"][i] for i in indices]
    sgd = [m["median_final_relative_imbalance_sgd"][i] for i in indices]
    b_sam = [m["median_abs_B_final"][i] for i in indices]
    b_sgd = [m["median_abs_B_final_sgd"][i] for i in indices]
    ok = all(a <= IMBALANCE_FACTOR * b for a, b in zip(sam, sgd))
    return verdict(ok, {"noise": [m["noise"][i] for i in indices],
                        "relative_imbalance_sam": sam, "relative_imbalance_sgd": sgd,
                        "abs_B_final_sam": b_sam, "abs_B_final_sgd": b_sgd,
                        "required_factor": IMBALANCE_FACTOR},
                   "relative expected imbalance |E‖g_x‖² − E‖g_y‖²|/(E‖g_x‖² + E‖g_y‖²) at T")


register(Claim(
    id="li2024.balancedness.sam_nop_balances", paper=PAPER, source="Thm 2, Cor. 1/2",
    statement="SAM on f(xyᵀ) drifts B at rate ρ(‖g_x‖² − ‖g_y‖²)/‖g‖, i.e. towards the point where "
              "‖g_x‖ = ‖g_y‖: at the end of the run the expected gradient imbalance under SAM is at "
              "most half of SGD's.",
    regime="NOP toy, ρ = 0.1, noise α ∈ {0.25, 0.5, 1} (at α = 0 both gradients vanish)", lab=LAB,
    check=_check_sam_nop))


# --- claim 3: SAM on OP drives |B| to 0 at the predicted rate; m-sharpness ------------------------

def _check_sam_op(measured):
    m = measured["sam_op"]
    tolerance = IDENTITY_ULPS * EPS * measured["gd_identity"]["max_squared_norm"]
    below_sgd = all(a < b for a, b in zip(m["median_abs_B_final"], m["median_abs_B_final_sgd"]))
    rate_error = float(m["max_relative_error_vs_prediction"])
    ok = below_sgd and rate_error <= RATE_TOLERANCE and m["identity_max_abs_error"] <= tolerance
    return verdict(ok, {"noise": m["noise"], "abs_B_final_sam": m["median_abs_B_final"],
                        "abs_B_final_sgd": m["median_abs_B_final_sgd"],
                        "log_ratio": m["median_log_ratio"],
                        "predicted_log_ratio": m["median_predicted_log_ratio"],
                        "first_order_log_ratio": m["median_first_order_log_ratio"],
                        "max_relative_error": rate_error, "allowed": RATE_TOLERANCE,
                        "identity_max_abs_error": m["identity_max_abs_error"]},
                   "log|B_T/B_0| against the exact expected SAM rate (Lemma 2 plus its O(ρ²) term "
                   "4ρ², derived here) integrated along each run; the one-step SAM identity on a "
                   "replayed trajectory")


register(Claim(
    id="li2024.balancedness.sam_op_drives_to_zero", paper=PAPER, source="Lemma 2, Thm 3",
    statement="SAM on f(xᵀy) shrinks |B| exponentially, d log|B|/dt = −2ρ E|f'|/√(‖x‖²+‖y‖²) + O(ρ²); "
              "the measured decay matches the exact expected rate within 10% for every noise level "
              "and seed, and |B_T| ends below SGD's.",
    regime="OP toy, ρ = 0.2, batch 1, noise α ∈ {0, 0.25, 0.5, 1}, η·T = 10", lab=LAB,
    check=_check_sam_op))


def _check_m_sharpness(measured):
    m = measured["m_sharpness"]
    indices = _positive_noise(measured, "m_sharpness")
    one = [m["median_abs_B_final_1_sam"][i] for i in indices]
    whole = [m["median_abs_B_final_n_sam"][i] for i in indices]
    return verdict(all(a < b for a, b in zip(one, whole)),
                   {"noise": [m["noise"][i] for i in indices], "batch": m["batch"],
                    "abs_B_final_1_sam": one, "abs_B_final_n_sam": whole},
                   "median |B_T| of 1-SAM (m = 1) vs SAM with one ascent for the whole batch")


register(Claim(
    id="li2024.balancedness.m_sharpness_stronger", paper=PAPER, source="Thm 3 (m-sharpness)",
    statement="With m-sharpness the pull on B uses the mean of the chunks' |f'|, which is at least "
              "|mean f'|: 1-SAM balances more than SAM on the whole batch.",
    regime="OP toy, batch of 4 fresh draws, ρ = 0.2, noise α ∈ {0.25, 0.5, 1} (at α = 0 all "
           "draws agree and the two coincide)", lab=LAB, check=_check_m_sharpness))


# --- claim 4: data-responsive ---------------------------------------------------------------------

def _check_data_responsive(measured):
    op = [float(v) for v in measured["sam_op"]["median_abs_B_final"]]
    nop = [float(v) for v in measured["sam_nop"]["median_abs_B_final"]]
    decreasing = all(np.diff(op) < 0) and all(np.diff(nop) < 0)
    return verdict(decreasing, {"noise": measured["sam_op"]["noise"], "op_abs_B_final_sam": op,
                                "nop_abs_B_final_sam": nop},
                   "median |B_T| under SAM must decrease strictly as the noise level grows")


register(Claim(
    id="li2024.balancedness.data_responsive", paper=PAPER, source="Sec. 3 (Thm 2/3 discussion), Fig. 1",
    statement="SAM's balancing is data-responsive: the noisier the data, the smaller |B_T|.",
    regime="OP (ρ = 0.2) and NOP (ρ = 0.1) toys, noise α ∈ {0, 0.25, 0.5, 1}", lab=LAB,
    check=_check_data_responsive))


# --- claim 5: Lemma 1 -----------------------------------------------------------------------------

def _check_lemma1(measured):
    m = measured["lemma1"]
    smallest = float(m["smallest_top_eigenvalue"])
    expected_smallest = float(m["closed_form_minimum_2fpp_w"])
    ok = (m["max_relative_error"] <= LEMMA_TOLERANCE
          and abs(m["B_at_smallest_top_eigenvalue"]) <= LEMMA_TOLERANCE
          and abs(smallest / expected_smallest - 1) <= LEMMA_TOLERANCE)
    return verdict(ok, {"minimizers": m["minimizers"], "max_relative_error": m["max_relative_error"],
                        "B_at_smallest": m["B_at_smallest_top_eigenvalue"],
                        "smallest_top_eigenvalue": smallest, "closed_form_minimum": expected_smallest,
                        "tolerance": LEMMA_TOLERANCE},
                   "exact dense Hessian of f(xᵀy) at minimizers with different B, float64")


register(Claim(
    id="li2024.balancedness.lemma1_balanced_is_flattest", paper=PAPER, source="Lemma 1",
    statement="At a minimizer of f(xᵀy) (f'(w) = 0, f''(w) > 0) the top Hessian eigenvalue is "
              "f''(w)(‖x‖² + ‖y‖²); among minimizers with the same w it is smallest, 2f''(w)|w|, at "
              "the balanced one (B = 0).",
    regime="d = 3, w = 0.5, f = (w − 0.5)² and cosh(w − 0.5), 104 minimizers", lab=LAB,
    check=_check_lemma1))


# --- claim 6: D LoRA-like layers ------------------------------------------------------------------

def _check_lora(measured):
    m = measured["lora"]
    sam = [float(v) for v in m["sam_median_abs_B_final"]]
    bar = [float(v) for v in m["nbar_median_abs_B_final"]]
    reference = [float(v) for v in m["single_layer_sam_rho_over_sqrt_D"]]
    weakens = all(np.diff(sam) > 0)
    matches = max(abs(a / b - 1) for a, b in zip(sam, reference)) <= DEPTH_TOLERANCE
    bar_spread = max(bar) / min(bar) - 1
    ok = weakens and matches and bar_spread <= BAR_DEPTH_SPREAD
    return verdict(ok, {"layers": m["layers"], "sam_abs_B_final": sam,
                        "single_layer_rho_over_sqrt_D": reference, "nbar_abs_B_final": bar,
                        "nbar_spread": bar_spread},
                   "per-layer median |B_T|: SAM must grow with D and track one layer at ρ/√D "
                   "(within 25%); nBAR must not depend on D (spread within 25%)")


register(Claim(
    id="li2024.balancedness.lora_depth_weakens_sam", paper=PAPER, source="Thm 5",
    statement="With D LoRA-like layers SAM divides each layer's drift by the gradient norm over all "
              "layers, so its per-layer balancing weakens as D grows (like one layer at ρ/√D); "
              "BAR balances each layer on its own, independently of D.",
    regime="D ∈ {1, 4, 16} layers of the NOP toy, rank 1, noise α = 1, ρ = 0.1", lab=LAB,
    check=_check_lora))


# --- BAR (Fig. 2b) and the saddle collapse ---------------------------------------------------------

def _check_bar(measured):
    rows = measured["bar"]["rows"]
    noise = measured["bar"]["noise"]
    indices = [i for i, a in enumerate(noise) if a > 0]
    sam_op, sam_nop = rows["op:SAM (ρ=0.2)"], rows["nop:SAM (ρ=0.1)"]
    half_cost = all(rows[k]["grad_evals_per_run"] == 0.5 * sam_op["grad_evals_per_run"]
                    for k in ("op:oBAR", "op:nBAR", "nop:nBAR"))
    op_balanced = all(rows["op:oBAR"]["median_abs_B_final"][i] <= sam_op["median_abs_B_final"][i]
                      for i in indices)
    nop_balances = all(rows["nop:nBAR"]["median_abs_B_final"][i]
                       < 0.5 * rows["nop:SGD"]["median_abs_B_final"][i] for i in indices)
    ok = half_cost and op_balanced and nop_balances
    return verdict(ok, {"noise": [noise[i] for i in indices],
                        "op_obar_abs_B": [rows["op:oBAR"]["median_abs_B_final"][i] for i in indices],
                        "op_sam_abs_B": [sam_op["median_abs_B_final"][i] for i in indices],
                        "nop_nbar_abs_B": [rows["nop:nBAR"]["median_abs_B_final"][i] for i in indices],
                        "nop_sam_abs_B": [sam_nop["median_abs_B_final"][i] for i in indices],
                        "nop_sgd_abs_B": [rows["nop:SGD"]["median_abs_B_final"][i] for i in indices],
                        "grad_evals_bar": rows["op:oBAR"]["grad_evals_per_run"],
                        "grad_evals_sam": sam_op["grad_evals_per_run"]},
                   "BAR with α matched to SAM's initial speed, cosine-decayed")


register(Claim(
    id="li2024.bar.balances_at_half_cost", paper=PAPER, source="Alg. 2/3, Fig. 2b",
    statement="BAR balances at one gradient per step (half of SAM's): oBAR ends at least as balanced "
              "as SAM on OP, nBAR ends with |B_T| below half of SGD's on NOP.",
    regime="OP and NOP toys, noise α ∈ {0.25, 0.5, 1}; α_BAR matched to SAM's initial drift at "
           "noise 0.5, cosine decay to 0 at T", lab=LAB, check=_check_bar))


def _check_saddle(measured):
    m = measured["saddle"]
    noise = list(m["noise"])
    at_one, at_two = noise.index(1.0), noise.index(2.0)
    sgd_never = all(max(m[f"{toy}_sgd_collapsed_fraction"]) == 0 for toy in ("op", "nop"))
    sam_at_two = all(m[f"{toy}_sam_collapsed_fraction"][at_two] == 1 for toy in ("op", "nop"))
    sam_not_at_one = all(m[f"{toy}_sam_collapsed_fraction"][at_one] == 0 for toy in ("op", "nop"))
    return verdict(sgd_never and sam_at_two and sam_not_at_one,
                   {"noise": noise,
                    **{f"{toy}_{name}_collapsed": m[f"{toy}_{name}_collapsed_fraction"]
                       for toy in ("op", "nop") for name in ("sam", "sgd")}},
                   "collapsed: ‖x_T‖² + ‖y_T‖² < 1e-3 (‖x_0‖² + ‖y_0‖²)")


register(Claim(
    id="li2024.balancedness.saddle_collapse", paper=PAPER, source="derived (THEORY.md §1 note)",
    statement="With strong noise SAM collapses both toys to the saddle x = y = 0 (every seed at "
              "α = 2, none at α = 1), while SGD never does; the paper's toys stay at α ≤ 1.",
    regime="OP (ρ = 0.2) and NOP (ρ = 0.1) toys, noise α ∈ {1, 1.25, 1.5, 2}, η·T = 10", lab=LAB,
    check=_check_saddle))
