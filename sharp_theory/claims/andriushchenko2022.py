"""Claims of Andriushchenko & Flammarion (ICML 2022) on diagonal linear networks, and the derived
identities behind them. All are measured by the lab ``diagonal-nets`` (labs/diagonal_nets.py).

Settings (the authors' code): n = 20, d = 30, k = 3 sparse noiseless regression, β = u⊙v from
u = 0.1·1, v = 0, 10⁴ steps, η = 15/d for the ρ grid; our ρ (1-SAM: twice the authors' ρ).
Most checks are made on every data set of the lab (data set 0 is the authors'; a few use data
set 0 only, as stated); a NaN for any data set makes the verdict inconclusive.
"""
from __future__ import annotations

import math

import numpy as np

from .base import Claim, Verdict, register, verdict

PAPER = "andriushchenko2022"
LAB = "diagonal-nets"
REGIME = ("sparse regression n=20, d=30, k=3; beta=u*v, u0=0.1, v0=0; 1e4 steps; eta=15/d for the "
          "rho grid (13 values of our rho in [1e-3, 1]); unnormalized SAM")


def _values(m, key):
    """A per-data-set list of floats from the measured dict."""
    return [float(v) if v is not None else float("nan") for v in np.atleast_1d(m[key])]


def _checked(condition, values, numbers, detail):
    """``verdict`` that is inconclusive when any per-data-set value it relies on is NaN."""
    if any(math.isnan(v) for v in values):
        return Verdict("inconclusive", numbers, "a per-data-set value is NaN: " + detail)
    return verdict(condition, numbers, detail)


def _gd_initial_potential(m):
    distances = _values(m, "gd_dist_to_initial_potential")
    return _checked(max(distances) <= 0.05, distances,
                   {"gd_dist_to_initial_potential": distances,
                    "gd_dist_to_final_potential": _values(m, "gd_dist_to_final_potential")},
                   "on every data set, the relative distance of GD's beta_T to argmin psi_{a^2} over "
                   "{X beta = y} is <= 0.05")


def _shrunk_potential(prefix):
    def check(m):
        count = int(m[f"{prefix}_potential_ratio_count"])
        ratio = float(m[f"{prefix}_potential_ratio_max"]) if count else float("nan")
        numbers = {"max_ratio": ratio, "runs_checked": count}
        if count < 2:
            return Verdict("inconclusive", numbers, "fewer than 2 interpolating runs whose beta_T "
                           "is > 2% away from argmin psi_{a^2}")
        return verdict(ratio <= 1 / 3, numbers,
                       "for every interpolating (data set, rho) run whose beta_T is > 2% from "
                       "argmin psi_{a^2}: dist(beta_T, argmin psi_{c_T}) <= dist(beta_T, argmin "
                       "psi_{a^2}) / 3")
    return check


def _c_order(m):
    count, total = int(m["c_order_holds_count"]), int(m["all_interpolate_count"])
    numbers = {"runs_ordered": count, "runs_where_all_three_interpolate": total,
               "log_c_shrink_gd_dataset0": m["log_c_shrink_gd_dataset0"],
               "log_c_shrink_n_sam_dataset0": m["log_c_shrink_n_sam_dataset0"],
               "log_c_shrink_one_sam_dataset0": m["log_c_shrink_one_sam_dataset0"]}
    if total < 3:
        return Verdict("inconclusive", numbers, "fewer than 3 runs where all three interpolate")
    return verdict(count == total, numbers,
                   "mean_i log c_T,i: 1-SAM < n-SAM < GD for every (data set, rho) where all three "
                   "interpolate")


def _one_sam_beats_gd(m):
    counts = [int(v) for v in np.atleast_1d(m["one_sam_beats_gd_count"])]
    ratios = _values(m, "one_sam_best_test_ratio")
    return _checked(min(counts) >= 5 and max(ratios) < 1.0, ratios,
                   {"rho_values_1sam_better": counts, "best_test_ratio_1sam_over_gd": ratios,
                    "best_rho": _values(m, "one_sam_best_rho"), "gd_test_loss": _values(m, "gd_test_loss")},
                   "on every data set, 1-SAM (interpolating) has a lower test loss than GD at >= 5 "
                   "rho values of the grid")


def _l1_toward_sparse(m):
    gaps = _values(m, "one_sam_best_l1_gap_ratio")
    monotone = [bool(v) for v in np.atleast_1d(m["one_sam_l1_nonincreasing"])]
    return _checked(max(gaps) < 1.0 and all(monotone), gaps,
                   {"l1_gap_ratio_1sam_over_gd": gaps, "theta_star_l1": _values(m, "theta_star_l1"),
                    "gd_l1_norm": _values(m, "gd_l1_norm"),
                    "one_sam_best_l1_norm": _values(m, "one_sam_best_l1_norm"),
                    "l1_nonincreasing_in_rho": monotone},
                   "on every data set, at 1-SAM's best rho | ||beta||_1 - ||theta*||_1 | is smaller than "
                   "GD's, and ||beta_1SAM||_1 does not increase with rho over the interpolating range")


def _n_sam_large_rho(m):
    ratios = _values(m, "n_sam_largest_rho_test_ratio")
    return _checked(min(ratios) > 1.0, ratios, {"test_ratio_nsam_over_gd": ratios,
                                       "rho": _values(m, "n_sam_largest_rho")},
                   "on every data set, n-SAM's test loss at its largest interpolating rho exceeds GD's")


def _n_sam_beats_gd(m):
    ratios = _values(m, "n_sam_min_test_ratio")
    return _checked(sum(r < 1.0 for r in ratios) > len(ratios) / 2, ratios,
                   {"min_test_ratio_nsam_over_gd": ratios, "gd_test_loss": _values(m, "gd_test_loss")},
                   "on a majority of data sets, n-SAM's test loss (interpolating runs) is below GD's "
                   "for some rho of the grid")


def _finetune_numbers(m):
    losses = m["finetune_test_loss"]
    return {"erm_then_erm": float(losses["erm → erm"]), "erm_then_1sam": float(losses["erm → 1-sam"]),
            "1sam_then_erm": float(losses["1-sam → erm"])}


def _erm_then_one_sam(m):
    numbers = _finetune_numbers(m)
    return verdict(numbers["erm_then_1sam"] <= 0.5 * numbers["erm_then_erm"], numbers,
                   "after 1e4 ERM steps then 1e4 1-SAM steps (eta=1/d): test loss <= 0.5 x that of "
                   "1e4 + 1e4 ERM steps")


def _one_sam_then_erm(m):
    numbers = _finetune_numbers(m)
    return verdict(numbers["1sam_then_erm"] <= 0.5 * numbers["erm_then_erm"], numbers,
                   "after 1e4 1-SAM steps then 1e4 ERM steps (eta=1/d): test loss <= 0.5 x that of "
                   "1e4 + 1e4 ERM steps")


def _one_step(m):
    errors = {k: float(v) for k, v in m["one_step_max_relative_error"].items()}
    symbolic = bool(m["one_step_symbolic_residuals_zero"])
    return verdict(symbolic and max(errors.values()) <= 1e-12,
                   {"symbolic_residuals_zero": symbolic,
                    **{f"max_rel_error_{k}": v for k, v in errors.items()}},
                   "sympy residuals are 0 and the simulated c+ matches factor x c to 1e-12 (relative to "
                   "u+^2 + v+^2) on random float64 instances")


def _potential_limits(m):
    l1, l2 = float(m["potential_c_1e-12_vs_min_l1"]), float(m["potential_c_1e4_vs_min_l2"])
    return verdict(l1 <= 1e-4 and l2 <= 1e-6, {"c_1e-12_vs_min_l1": l1, "c_1e4_vs_min_l2": l2},
                   "relative distances: argmin psi_{1e-12} to the LP min-l1 interpolator <= 1e-4; "
                   "argmin psi_{1e4} to the min-l2 interpolator <= 1e-6")


def _kernel_to_rich(m):
    gd = np.asarray(m["init_scale_gd_test_loss"], dtype=float)
    one_sam = np.asarray(m["init_scale_one_sam_best_test_loss"], dtype=float)
    return verdict(bool(np.all(np.diff(gd) > 0)),
                   {"init_scales": m["init_scales"], "gd_test_loss": gd.tolist(),
                    "one_sam_best_test_loss": one_sam.tolist()},
                   "GD's test loss increases with the initialization scale a over the whole grid")


def _stochastic_rate(m):
    horizons = [int(h) for h in m["rate_horizons"]]
    averages = _values(m, "rate_usam_average_squared_gradient")
    bound = _values(m, "rate_leading_term")
    numbers = {"horizons": horizons, "average_squared_gradient": averages,
               "leading_term_of_bound": bound,
               "sqrt_T_times_average": _values(m, "rate_usam_normalized"),
               "tail_exponent": float(m["rate_usam_tail_exponent"]),
               "usam_exponent": float(m["rate_usam_exponent"]),
               "sgd_exponent": float(m["rate_sgd_exponent"])}
    if any(math.isnan(v) for v in averages):
        return Verdict("inconclusive", numbers, "a run diverged or a value is NaN")
    below = all(a <= b for a, b in zip(averages, bound))
    # -0.4 separates the claimed T^-1/2 from slower rates (T^-0.4 or worse) between the two
    # largest horizons, where the runs have left their initial transient.
    return verdict(below and numbers["tail_exponent"] <= -0.4, numbers,
                   "at every horizon T the average over t < T of ||grad L(w_t)||^2 is below "
                   "2 (L(w0) - L*) / (eta0 sqrt T) (the bound's optimization term; L* = 0), and it "
                   "decays at least like T^-0.4 between the two largest horizons")


for claim in [
    Claim(f"{PAPER}.implicit_bias.gd_initial_potential", PAPER, "derived (Woodworth et al. 2020, Thm 1)",
          "GD with a moderate step converges to (almost) the interpolator that minimizes the "
          "hyperbolic entropy psi_c at the initial c = a^2: its step factors 1 - eta^2 g^2 barely move c.",
          REGIME, LAB, _gd_initial_potential),
    Claim(f"{PAPER}.implicit_bias.one_sam_shrunk_potential", PAPER, "THEORY.md §2 claim 1 (derived)",
          "1-SAM's interpolator is explained by a smaller effective initialization: it lies much closer "
          "to argmin psi_{c_T} (c_T its final u^2 - v^2) than to argmin psi_{a^2}.",
          REGIME, LAB, _shrunk_potential("one_sam")),
    Claim(f"{PAPER}.implicit_bias.n_sam_shrunk_potential", PAPER, "THEORY.md §2 claim 1 (derived)",
          "The same for n-SAM: its interpolator lies much closer to argmin psi_{c_T} than to "
          "argmin psi_{a^2} wherever it has moved away from the latter.",
          REGIME, LAB, _shrunk_potential("n_sam"), expected="fail"),
    Claim(f"{PAPER}.implicit_bias.c_shrinkage_order", PAPER, "Sec. 4 / abstract (m-sharpness)",
          "1-SAM shrinks the effective initialization c more than n-SAM, which shrinks it more than GD.",
          REGIME, LAB, _c_order),
    Claim(f"{PAPER}.generalization.one_sam_beats_gd", PAPER, "Sec. 4, test loss vs rho figure",
          "1-SAM's interpolator has a lower test loss than GD's over a range of rho, by orders of "
          "magnitude at the best rho.", REGIME, LAB, _one_sam_beats_gd),
    Claim(f"{PAPER}.generalization.one_sam_l1_toward_sparse", PAPER, "Sec. 4 (sparsity via smaller c)",
          "1-SAM's l1 norm falls with rho toward ||theta*||_1 (the sparse solution), away from GD's.",
          REGIME, LAB, _l1_toward_sparse),
    Claim(f"{PAPER}.generalization.n_sam_large_rho_worse", PAPER, "derived caveat (THEORY.md §2)",
          "n-SAM with a large rho generalizes worse than GD.", REGIME, LAB, _n_sam_large_rho),
    Claim(f"{PAPER}.generalization.n_sam_beats_gd", PAPER,
          "abstract: for a class of problems SAM's solution generalizes better than GD's (tested "
          "here at the authors' experimental settings, not the theorem's class)",
          "n-SAM (the full-batch SAM) improves GD's test loss for some rho at these settings.",
          REGIME, LAB, _n_sam_beats_gd, expected="fail"),
    Claim(f"{PAPER}.finetuning.erm_then_one_sam", PAPER,
          "authors' notebook, fine-tuning figure (the abstract's fine-tuning claim is for non-linear "
          "networks)",
          "Fine-tuning the ERM (GD) solution with 1-SAM substantially lowers its test loss.",
          "eta=1/d, a=0.1, 1e4 ERM steps then 1e4 1-SAM steps, our rho=0.3 (0.15 in the authors' "
          "units); the ERM iterate is then nearly interpolating", LAB, _erm_then_one_sam,
          expected="fail"),
    Claim(f"{PAPER}.finetuning.one_sam_then_erm", PAPER, "authors' notebook, fine-tuning figure",
          "ERM after a 1-SAM phase keeps 1-SAM's better interpolator (much lower test loss than ERM).",
          "eta=1/d, a=0.1, 1e4 1-SAM steps then 1e4 ERM steps, our rho=0.3", LAB, _one_sam_then_erm),
    Claim(f"{PAPER}.theory.one_step_factors", PAPER, "derived (THEORY.md §2 claim 2)",
          "One step multiplies c = u^2 - v^2 exactly by 1 - eta^2 g^2 (GD), by "
          "1 - 2 eta rho g g' - eta^2 g'^2 (1 - rho^2 g^2) (unnormalized n-SAM), and by "
          "1 - 2 eta rho B - eta^2 (A^2 - rho^2 B^2), A = mean g'_k, B = mean g_k g'_k (1-SAM).",
          "any X, y, u, v, eta, rho (float64)", LAB, _one_step),
    Claim(f"{PAPER}.theory.potential_limits", PAPER, "derived (Woodworth et al. 2020)",
          "argmin psi_c over the interpolating set tends to the minimum-l1 interpolator as c -> 0 and "
          "to the minimum-l2 one as c -> infinity.", "c = 1e-12 and c = 1e4 on the lab's data sets",
          LAB, _potential_limits),
    Claim(f"{PAPER}.convergence.stochastic_usam_rate", PAPER,
          "Sec. 5, convergence of unnormalized SAM with stochastic gradients (THEORY.md §2 claim 4, "
          "marked unverified there: constants not checked against the paper's theorem)",
          "With step eta0/sqrt(T) and radius rho0 T^(-1/4), unnormalized SAM with stochastic "
          "gradients reaches an average squared gradient norm O(1/sqrt(T)) over T steps.",
          "data set 0, beta=u*v, a=0.1, one example per step for ascent and descent, eta0=1, rho0=0.2 "
          "(our units), 8 seeds, T = 250, 1000, 4000, 16000", LAB, _stochastic_rate),
    Claim(f"{PAPER}.implicit_bias.kernel_to_rich", PAPER, "Woodworth et al. 2020 (context of Sec. 4)",
          "Smaller initialization gives sparser, better-generalizing GD solutions (rich regime); larger "
          "initialization the kernel regime with a larger test loss.",
          "eta=5/d, a in [1e-3, 1], 1e4 steps, data set 0", LAB, _kernel_to_rich),
]:
    register(claim)
