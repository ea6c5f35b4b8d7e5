"""Claims of Andriushchenko & Flammarion (ICML 2022) on diagonal linear networks, and the derived
identities behind them. All are measured by the lab ``diagonal-nets`` (labs/diagonal_nets.py).

Settings (the authors' code): n = 20, d = 30, k = 3 sparse noiseless regression, β = u⊙v from
u = 0.1·1, v = 0, 10⁴ steps, η = 15/d for the ρ grid; our ρ (1-SAM: twice the authors' ρ).
Most checks are made on every data set of the lab (data set 0 is the authors'; a few use data
set 0 only, as stated); a NaN for any data set makes the verdict inconclusive.
"""
from __future__ import annotations

import numpy as np

from .base import Claim, Threshold, finite, finite_values, inconclusive, judge, register

PAPER = "andriushchenko2022"
LAB = "diagonal-nets"
REGIME = ("sparse regression n=20, d=30, k=3; beta=u*v, u0=0.1, v0=0; 1e4 steps; eta=15/d for the "
          "rho grid (13 values of our rho in [1e-3, 1]); unnormalized SAM")


ORDERS = 0.1  # "by orders of magnitude": at least 10x lower test loss
ORDERS_DATASETS = 0.75  # ... on at least 3 of 4 data sets


def _values(m, key):
    """A per-data-set list of floats from the measured dict; a NaN raises (fails closed)."""
    return finite_values(np.atleast_1d(np.asarray(m[key], dtype=object)).tolist(), key)


def _gd_initial_potential(m, *, quick):
    distances = _values(m, "gd_dist_to_initial_potential")
    return judge(Threshold("max over data sets of dist(β_GD, argmin ψ_{a²})", max(distances), "<=",
                           0.05),
                 {"gd_dist_to_initial_potential": distances,
                  "gd_dist_to_final_potential": _values(m, "gd_dist_to_final_potential")},
                 "on every data set, the relative distance of GD's beta_T to argmin psi_{a^2} over "
                 "{X beta = y} is <= 0.05")


def _shrunk_potential(prefix):
    def check(m, *, quick):
        count = int(m[f"{prefix}_potential_ratio_count"])
        if count < 2:
            return inconclusive({"runs_checked": count}, "fewer than 2 interpolating runs whose "
                                "beta_T is > 2% away from argmin psi_{a^2}")
        ratio = finite(m[f"{prefix}_potential_ratio_max"])
        return judge(Threshold("max over runs of dist(β_T, argmin ψ_{c_T}) / dist(β_T, argmin ψ_{a²})",
                               ratio, "<=", 1 / 3), {"max_ratio": ratio, "runs_checked": count},
                     "for every interpolating (data set, rho) run whose beta_T is > 2% from "
                     "argmin psi_{a^2}: dist(beta_T, argmin psi_{c_T}) <= dist(beta_T, argmin "
                     "psi_{a^2}) / 3")
    return check


def _c_order(m, *, quick):
    count, total = int(m["c_order_holds_count"]), int(m["all_interpolate_count"])
    # (The per-ρ log c shrinkages of data set 0 are in results.json; at large ρ 1-SAM drives c to
    # 0 exactly, log c = −inf, so they are not read here: the verdict rests on the counts.)
    numbers = {"runs_ordered": count, "runs_where_all_three_interpolate": total}
    if total < 3:
        return inconclusive(numbers, "fewer than 3 runs where all three interpolate")
    return judge(Threshold("runs where the order 1-SAM < n-SAM < GD fails", total - count, "==", 0),
                 numbers, "mean_i log c_T,i: 1-SAM < n-SAM < GD for every (data set, rho) where all "
                 "three interpolate")


def _one_sam_beats_gd(m, *, quick):
    counts = [int(v) for v in finite_values(m["one_sam_beats_gd_count"])]
    ratios = _values(m, "one_sam_best_test_ratio")
    return judge(Threshold("min over data sets of ρ values where 1-SAM beats GD", min(counts), ">=",
                           5),
                 {"rho_values_1sam_better": counts, "best_test_ratio_1sam_over_gd": ratios,
                  "best_rho": _values(m, "one_sam_best_rho"), "gd_test_loss": _values(m, "gd_test_loss")},
                 "on every data set, 1-SAM (interpolating) has a lower test loss than GD at >= 5 "
                 "rho values of the grid",
                 also=[Threshold("max over data sets of best test ratio 1-SAM/GD", max(ratios), "<",
                                 1.0)])


def _one_sam_orders(m, *, quick):
    if quick:  # the quick run has one data set; the claim is about 3 of 4
        return inconclusive({}, "the quick run has fewer data sets than the claim counts (3 of 4)")
    ratios = _values(m, "one_sam_best_test_ratio")
    fraction = sum(r <= ORDERS for r in ratios) / len(ratios)
    return judge(Threshold("fraction of data sets where 1-SAM's best test loss is <= 0.1 x GD's",
                           fraction, ">=", ORDERS_DATASETS),
                 {"best_test_ratio_1sam_over_gd": ratios, "best_rho": _values(m, "one_sam_best_rho")},
                 "at 1-SAM's best rho of the grid, test loss ratio 1-SAM/GD <= 0.1 (an order of "
                 "magnitude) on at least 3 of 4 data sets")


def _l1_toward_sparse(m, *, quick):
    gaps = _values(m, "one_sam_best_l1_gap_ratio")
    monotone = [bool(v) for v in np.atleast_1d(m["one_sam_l1_nonincreasing"])]
    return judge(Threshold("max over data sets of |‖β_1SAM‖₁ − ‖θ*‖₁| / |‖β_GD‖₁ − ‖θ*‖₁|",
                           max(gaps), "<", 1.0),
                 {"l1_gap_ratio_1sam_over_gd": gaps, "theta_star_l1": _values(m, "theta_star_l1"),
                  "gd_l1_norm": _values(m, "gd_l1_norm"),
                  "one_sam_best_l1_norm": _values(m, "one_sam_best_l1_norm"),
                  "l1_nonincreasing_in_rho": monotone},
                 "on every data set, at 1-SAM's best rho | ||beta||_1 - ||theta*||_1 | is smaller "
                 "than GD's, and ||beta_1SAM||_1 does not increase with rho over the interpolating "
                 "range",
                 also=[Threshold("data sets where ‖β_1SAM‖₁ increases with ρ",
                                 sum(not v for v in monotone), "==", 0)])


def _n_sam_large_rho(m, *, quick):
    ratios = _values(m, "n_sam_largest_rho_test_ratio")
    return judge(Threshold("min over data sets of n-SAM/GD test loss at the largest interpolating ρ",
                           min(ratios), ">", 1.0),
                 {"test_ratio_nsam_over_gd": ratios, "rho": _values(m, "n_sam_largest_rho")},
                 "on every data set, n-SAM's test loss at its largest interpolating rho exceeds GD's")


def _n_sam_beats_gd(m, *, quick):
    ratios = _values(m, "n_sam_min_test_ratio")
    fraction = sum(r < 1.0 for r in ratios) / len(ratios)
    return judge(Threshold("fraction of data sets where n-SAM beats GD at some ρ", fraction, ">",
                           0.5),
                 {"min_test_ratio_nsam_over_gd": ratios, "gd_test_loss": _values(m, "gd_test_loss")},
                 "on a majority of data sets, n-SAM's test loss (interpolating runs) is below GD's "
                 "for some rho of the grid")


def _finetune_numbers(m):
    losses = m["finetune_test_loss"]
    return {"erm_then_erm": finite(losses["erm → erm"]), "erm_then_1sam": finite(losses["erm → 1-sam"]),
            "1sam_then_erm": finite(losses["1-sam → erm"])}


def _erm_then_one_sam(m, *, quick):
    numbers = _finetune_numbers(m)
    return judge(Threshold("test loss (ERM → 1-SAM) / (ERM → ERM)",
                           numbers["erm_then_1sam"] / numbers["erm_then_erm"], "<=", 0.5), numbers,
                 "after 1e4 ERM steps then 1e4 1-SAM steps (eta=1/d): test loss <= 0.5 x that of "
                 "1e4 + 1e4 ERM steps")


def _one_sam_then_erm(m, *, quick):
    numbers = _finetune_numbers(m)
    return judge(Threshold("test loss (1-SAM → ERM) / (ERM → ERM)",
                           numbers["1sam_then_erm"] / numbers["erm_then_erm"], "<=", 0.5), numbers,
                 "after 1e4 1-SAM steps then 1e4 ERM steps (eta=1/d): test loss <= 0.5 x that of "
                 "1e4 + 1e4 ERM steps")


def _one_step(m, *, quick):
    factors = m["one_step_max_relative_error"]
    errors = {k: finite(factors[k]) for k in ("gd", "n-sam", "1-sam")}  # each rule must be there
    symbolic = bool(m["one_step_symbolic_residuals_zero"])
    return judge(Threshold("max relative error of the one-step factor", max(errors.values()), "<=",
                           1e-12),
                 {"symbolic_residuals_zero": symbolic,
                  **{f"max_rel_error_{k}": v for k, v in errors.items()}},
                 "sympy residuals are 0 and the simulated c+ matches factor x c to 1e-12 (relative "
                 "to u+^2 + v+^2) on random float64 instances",
                 also=[Threshold("sympy residuals are zero (1 = yes)", float(symbolic), "==", 1.0)])


def _potential_limits(m, *, quick):
    l1, l2 = finite(m["potential_c_1e-12_vs_min_l1"]), finite(m["potential_c_1e4_vs_min_l2"])
    return judge(Threshold("relative distance argmin ψ_{1e-12} to the min-ℓ1 interpolator", l1,
                           "<=", 1e-4), {"c_1e-12_vs_min_l1": l1, "c_1e4_vs_min_l2": l2},
                 "relative distances: argmin psi_{1e-12} to the LP min-l1 interpolator <= 1e-4; "
                 "argmin psi_{1e4} to the min-l2 interpolator <= 1e-6",
                 also=[Threshold("relative distance argmin ψ_{1e4} to the min-ℓ2 interpolator", l2,
                                 "<=", 1e-6)])


def _kernel_to_rich(m, *, quick):
    gd = np.asarray(finite_values(m["init_scale_gd_test_loss"]))
    return judge(Threshold("min over the init grid of the step up in GD's test loss",
                           float(np.min(np.diff(gd))), ">", 0.0),
                 {"init_scales": m["init_scales"], "gd_test_loss": gd.tolist()},
                 "GD's test loss increases with the initialization scale a over the whole grid")


def _stochastic_rate(m, *, quick):
    horizons = [int(h) for h in m["rate_horizons"]]
    averages = _values(m, "rate_usam_average_squared_gradient")
    bound = _values(m, "rate_leading_term")
    numbers = {"horizons": horizons, "average_squared_gradient": averages,
               "leading_term_of_bound": bound,
               "sqrt_T_times_average": _values(m, "rate_usam_normalized"),
               "tail_exponent": finite(m["rate_usam_tail_exponent"]),
               "usam_exponent": finite(m["rate_usam_exponent"]),
               "sgd_exponent": finite(m["rate_sgd_exponent"])}
    # -0.4 separates the claimed T^-1/2 from slower rates (T^-0.4 or worse) between the two
    # largest horizons, where the runs have left their initial transient.
    return judge(Threshold("exponent of the average squared gradient between the two largest T",
                           numbers["tail_exponent"], "<=", -0.4), numbers,
                 "at every horizon T the average over t < T of ||grad L(w_t)||^2 is below "
                 "2 (L(w0) - L*) / (eta0 sqrt T) (the bound's optimization term; L* = 0), and it "
                 "decays at least like T^-0.4 between the two largest horizons",
                 also=[Threshold("max over T of average / bound term",
                                 max(a / b for a, b in zip(averages, bound)), "<=", 1.0)])


for claim in [
    Claim(f"{PAPER}.implicit_bias.gd_initial_potential", PAPER, "derived (Woodworth et al. 2020, Thm 1)",
          "GD with a moderate step converges to (almost) the interpolator that minimizes the "
          "hyperbolic entropy psi_c at the initial c = a^2 (relative distance <= 0.05 on every data set): its step factors "
          "1 - eta^2 g^2 barely move c.",
          REGIME, LAB, _gd_initial_potential),
    Claim(f"{PAPER}.implicit_bias.one_sam_shrunk_potential", PAPER, "derived (paper card)",
          "1-SAM's interpolator is explained by a smaller effective initialization: it lies much closer "
          "to argmin psi_{c_T} (c_T its final u^2 - v^2) than to argmin psi_{a^2} (at most 1/3 of "
          "that distance in every run that moved > 2%).",
          REGIME, LAB, _shrunk_potential("one_sam")),
    Claim(f"{PAPER}.implicit_bias.n_sam_shrunk_potential", PAPER, "derived (paper card)",
          "The same for n-SAM: its interpolator lies much closer to argmin psi_{c_T} than to "
          "argmin psi_{a^2} wherever it has moved away from the latter (at most 1/3 of it).",
          REGIME, LAB, _shrunk_potential("n_sam"), expected="fail"),
    Claim(f"{PAPER}.implicit_bias.c_shrinkage_order", PAPER, "Sec. 4 / abstract (m-sharpness)",
          "1-SAM shrinks the effective initialization c more than n-SAM, which shrinks it more than GD "
          "(in every run where all three interpolate; at least 3 such runs).",
          REGIME, LAB, _c_order),
    Claim(f"{PAPER}.generalization.one_sam_beats_gd", PAPER, "Sec. 4, test loss vs rho figure",
          "1-SAM's interpolator has a lower test loss than GD's over a range of rho: at >= 5 of the "
          "13 rho values on every data set, and below GD's at its best rho.", REGIME, LAB,
          _one_sam_beats_gd),
    Claim(f"{PAPER}.generalization.one_sam_orders_of_magnitude", PAPER,
          "Sec. 4, test loss vs rho figure",
          "At its best rho, 1-SAM's test loss is at least 10x lower than GD's (orders of magnitude) "
          "on at least 3 of the 4 data sets.", REGIME, LAB, _one_sam_orders, expected="fail"),
    Claim(f"{PAPER}.generalization.one_sam_l1_toward_sparse", PAPER, "Sec. 4 (sparsity via smaller c)",
          "1-SAM's l1 norm falls with rho toward ||theta*||_1 (the sparse solution), away from GD's: "
          "its l1 gap at the best rho is below GD's (ratio < 1) on every data set, and it never "
          "increases with rho.",
          REGIME, LAB, _l1_toward_sparse),
    Claim(f"{PAPER}.generalization.n_sam_large_rho_worse", PAPER, "derived caveat (paper card)",
          "n-SAM with a large rho generalizes worse than GD (test-loss ratio > 1 at its largest "
          "interpolating rho on every data set).", REGIME, LAB, _n_sam_large_rho),
    Claim(f"{PAPER}.generalization.n_sam_beats_gd", PAPER,
          "abstract: for a class of problems SAM's solution generalizes better than GD's (tested "
          "here at the authors' experimental settings, not the theorem's class)",
          "n-SAM (the full-batch SAM) improves GD's test loss for some rho at these settings, on "
          "a majority of data sets.",
          REGIME, LAB, _n_sam_beats_gd, expected="fail"),
    Claim(f"{PAPER}.finetuning.erm_then_one_sam", PAPER,
          "authors' notebook, fine-tuning figure (the abstract's fine-tuning claim is for non-linear "
          "networks)",
          "Fine-tuning the ERM (GD) solution with 1-SAM substantially lowers its test loss (to at "
          "most half of continued ERM's).",
          "eta=1/d, a=0.1, 1e4 ERM steps then 1e4 1-SAM steps, our rho=0.3 (0.15 in the authors' "
          "units); the ERM iterate is then nearly interpolating", LAB, _erm_then_one_sam,
          expected="fail"),
    Claim(f"{PAPER}.finetuning.one_sam_then_erm", PAPER, "authors' notebook, fine-tuning figure",
          "ERM after a 1-SAM phase keeps 1-SAM's better interpolator (test loss at most half of "
          "ERM's).",
          "eta=1/d, a=0.1, 1e4 1-SAM steps then 1e4 ERM steps, our rho=0.3", LAB, _one_sam_then_erm),
    Claim(f"{PAPER}.theory.one_step_factors", PAPER, "derived (paper card)",
          "One step multiplies c = u^2 - v^2 exactly by 1 - eta^2 g^2 (GD), by "
          "1 - 2 eta rho g g' - eta^2 g'^2 (1 - rho^2 g^2) (unnormalized n-SAM), and by "
          "1 - 2 eta rho B - eta^2 (A^2 - rho^2 B^2), A = mean g'_k, B = mean g_k g'_k (1-SAM) "
          "(sympy residual 0; float64 relative error <= 1e-12).",
          "any X, y, u, v, eta, rho (float64)", LAB, _one_step),
    Claim(f"{PAPER}.theory.potential_limits", PAPER, "derived (Woodworth et al. 2020)",
          "argmin psi_c over the interpolating set tends to the minimum-l1 interpolator as c -> 0 and "
          "to the minimum-l2 one as c -> infinity (relative distances <= 1e-4 at c = 1e-12, "
          "<= 1e-6 at c = 1e4).", "c = 1e-12 and c = 1e4 on the lab's data sets",
          LAB, _potential_limits),
    Claim(f"{PAPER}.convergence.stochastic_usam_rate", PAPER,
          "Sec. 5, convergence of unnormalized SAM with stochastic gradients (paper card, "
          "marked unverified there: constants not checked against the paper's theorem)",
          "With step eta0/sqrt(T) and radius rho0 T^(-1/4), unnormalized SAM with stochastic "
          "gradients reaches an average squared gradient norm O(1/sqrt(T)) over T steps (below "
          "the bound's leading term at every T; exponent <= -0.4 between the two largest T).",
          "data set 0, beta=u*v, a=0.1, one example per step for ascent and descent, eta0=1, rho0=0.2 "
          "(our units), 8 seeds, T = 250, 1000, 4000, 16000", LAB, _stochastic_rate),
    Claim(f"{PAPER}.implicit_bias.kernel_to_rich", PAPER, "Woodworth et al. 2020 (context of Sec. 4)",
          "Smaller initialization gives sparser, better-generalizing GD solutions (rich regime); larger "
          "initialization the kernel regime with a larger test loss (GD's test loss strictly "
          "increasing in a over the grid).",
          "eta=5/d, a in [1e-3, 1], 1e4 steps, data set 0", LAB, _kernel_to_rich),
]:
    register(claim)
