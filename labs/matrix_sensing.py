# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Low-rank matrix sensing: flat minima recover the ground truth, and SAM finds flatter ones than GD
# On the overparametrized factorization f(L, R) = (1/m)‖𝒜(L Rᵀ) − b‖² (L: d1 x k, R: d2 x k,
# k ≥ r) every (L, R) with 𝒜(L Rᵀ) = b is a global minimum. Ding, Drusvyatskiy, Fazel and
# Harchaoui (arXiv 2203.03756) measure flatness by the scaled Hessian trace
# str = (1/d1) tr ∇²_LL f + (1/d2) tr ∇²_RR f = 2(‖D1 L‖² + ‖D2 R‖²) and prove that the flattest
# minima recover the rank-r ground truth M (Thm 3.2), and are nearly balanced (Thm 3.3).
#
# What to look at:
# 1. the identity case: str of the balanced factorization is 4‖M‖_*, and any other factorization
#    (LG, RG⁻ᵀ) is sharper (exact Hessians, float64);
# 2. success rate of flat solutions (the weighted nuclear-norm program) and of nuclear-norm
#    minimization against the number m of Gaussian measurements: a phase transition;
# 3. how far flat solutions are from norm-minimal and balanced, against m (log scale);
# 4. str along GD, SAM, USAM and nBAR trajectories from a large unbalanced initialization, with the
#    flattest value as a line, and the balancedness gap ‖LᵀL − RᵀR‖_F over time;
# 5. the final str against ρ for SAM and USAM (from a small init, SAM with large ρ never leaves
#    the saddle at the origin).
#
# Parameters are {"x": L, "y": R}, so st.measure.balancedness and st.optim.nbar act on (L, R).

# %%
import jax
import jax.numpy as jnp
import numpy as np

import sharp_theory as st
from sharp_theory.observables import of_params, of_params_and_problem
from sharp_theory.claims.ding2024 import SUCCESS_THRESHOLD
from sharp_theory.measure import low_rank as low_rank_measures
from sharp_theory.theory import low_rank as low_rank_theory

lab = st.labkit.start("matrix-sensing", default_seeds=10, quick_seeds=3)
quick = lab.quick
rank = 2
trials = lab.seeds  # trials per point of the phase transition and of the gaps
phase_sizes = (6,) if quick else (8, 12, 16)
phase_factors = (0.5, 0.75, 1.0, 2.0) if quick else (0.5, 0.75, 1.0, 1.25, 1.5, 1.75, 2.0, 2.5)
gap_size = 6 if quick else 10
gap_multiples = (2, 8, 32) if quick else (2, 8, 32, 128)  # m = multiple · r (d1 + d2)
dynamics = {"d": 10, "k": 10, "measurements": 60, "init_scale": 0.2, "init_imbalance": 3.0,
            "small_init_scale": 0.01, "lr": 0.02, "rho": 0.1, "usam_rho": 0.02, "nbar_alpha": 1.0,
            "rho_grid": (0.02, 0.1) if quick else (0.01, 0.02, 0.05, 0.1, 0.2),
            "steps": 10_000 if quick else 20_000, "stride": 200, "instances": 2 if quick else 5}
identity_case = {"d1": 8, "d2": 6, "k": 4, "G_draws": 20}
lab.record_config(rank=rank, trials=trials, phase_sizes=phase_sizes, phase_factors=phase_factors,
                  gap_size=gap_size, gap_multiples=gap_multiples, dynamics=dynamics,
                  identity_case=identity_case, success_threshold=SUCCESS_THRESHOLD,
                  operator="gaussian (iid N(0,1) entries), noiseless", solver="cvxpy + Clarabel")
measured = {}


# %% [markdown] tags=["predict"]
# **Predict, then run.** Among all factorizations L Rᵀ that fit the measurements, take the
# flattest one (smallest scaled Hessian trace). With enough Gaussian measurements, does it
# recover the low-rank ground truth? Set `predict_flat_recovers` to `True` or `False`.

# %% tags=["prediction"]
predict_flat_recovers = True  # SOLUTION

# %% [markdown] tags=["predict"]
# **Predict, then run.** From a *small, balanced* initialization, does full-batch SAM still end
# at a markedly flatter solution than GD (at most half its scaled trace)? Set
# `predict_sam_flatter_small_init`. The table at the end of the lab confirms or contradicts your
# prediction with the measured verdict.

# %% tags=["prediction"]
predict_sam_flatter_small_init = False  # SOLUTION

# %% [markdown]
# ## 1. The identity case: the balanced factorization is the flattest
# f = ‖L Rᵀ − M‖²_F. The balanced factorization L = U√Σ, R = V√Σ should have
# str = 4‖M‖_* (here from the exact dense Hessian), and every (L G, R G⁻ᵀ) — the same product —
# a larger str. We draw G = exp(S) with S Gaussian (well conditioned, invertible).
#
# **Exercise 1 (numeric prediction).** For the identity operator D1 = D2 = I. Take G = 2I:
# (2L, R/2) has the same product as the balanced (L, R). Predict the ratio
# str(2L, R/2) / str(L, R). The lab computes both from exact dense Hessians in float64, so the
# answer is graded within 1e-6 (round-off is ~1e-14).

# %% tags=["exercise"]
predicted_str_ratio_at_two = (4 + 1 / 4) / 2  # SOLUTION

# %%
identity = st.problems.matrix_sensing(identity_case["d1"], identity_case["d2"], rank=rank,
                                      k=identity_case["k"], operator="identity", seed=0)
target = np.asarray(identity.constants["ground_truth"])
flat_left, flat_right = low_rank_theory.balanced_factorization(target, identity_case["k"])
flat_params = {"x": jnp.asarray(flat_left), "y": jnp.asarray(flat_right)}
identity_str = float(low_rank_measures.sensing_scaled_trace_dense(flat_params, identity))
four_nuclear = low_rank_theory.identity_flattest_scaled_trace(target)
rng = np.random.default_rng(0)
excesses = []
for _ in range(identity_case["G_draws"]):
    generator = 0.5 * rng.standard_normal((identity_case["k"], identity_case["k"]))
    values, vectors = np.linalg.eig(generator)
    G = np.real(vectors @ np.diag(np.exp(values)) @ np.linalg.inv(vectors))
    moved = {"x": flat_params["x"] @ G, "y": flat_params["y"] @ np.linalg.inv(G).T}
    excesses.append(float(low_rank_measures.sensing_scaled_trace_dense(moved, identity))
                    - identity_str)
scaled_by_two = {"x": 2.0 * flat_params["x"], "y": flat_params["y"] / 2.0}
str_ratio_at_two = float(low_rank_measures.sensing_scaled_trace_dense(scaled_by_two, identity)
                         / identity_str)
measured.update(
    identity_str_ratio_at_two=str_ratio_at_two,
    identity_flat_str=identity_str, identity_four_nuclear_norm=four_nuclear,
    identity_str_vs_4_nuclear_rel_error=abs(identity_str - four_nuclear) / four_nuclear,
    identity_flat_balancedness_gap=float(low_rank_measures.factor_balancedness_gap(flat_params)),
    identity_min_excess_over_G=float(np.min(excesses)),
    identity_median_excess_over_G=float(np.median(excesses)), identity_G_draws=len(excesses))
print(f"identity: str(balanced) = {identity_str:.12f}, 4‖M‖_* = {four_nuclear:.12f}, "
      f"min excess over {len(excesses)} G = {np.min(excesses):.3g}")

# %% tags=["exercise-check"]
st.labkit.check_number("predicted_str_ratio_at_two", predicted_str_ratio_at_two,
                       measured["identity_str_ratio_at_two"], rtol=1e-6)

# %% [markdown]
# **Exercise 2 (coding).** Still for f = ‖L Rᵀ − M‖²_F: f is quadratic in L for fixed R, so
# tr ∇²_LL f does not depend on the point. Write `my_identity_scaled_trace(L, R)`, the scaled
# trace (1/d1) tr ∇²_LL f + (1/d2) tr ∇²_RR f at any (L, R), in closed form. It must match the
# trace of the exact dense Hessian (`st.measure.low_rank.sensing_scaled_trace_dense`) to 1e-9
# at random points, not only at minima.

# %% tags=["exercise"]
def my_identity_scaled_trace(L, R):
    """(1/d1) tr ∇²_LL f + (1/d2) tr ∇²_RR f for f = ‖L Rᵀ − M‖²_F."""
    # BEGIN SOLUTION
    return 2.0 * (np.sum(L**2) + np.sum(R**2))
    # END SOLUTION


# %% tags=["exercise-check"]
def library_identity_scaled_trace(L, R):
    return float(low_rank_measures.sensing_scaled_trace_dense(
        {"x": jnp.asarray(L), "y": jnp.asarray(R)}, identity))


trace_cases = []
for trial in range(3):
    case_rng = np.random.default_rng(70 + trial)
    trace_cases.append((case_rng.normal(size=(identity_case["d1"], identity_case["k"])),
                        case_rng.normal(size=(identity_case["d2"], identity_case["k"]))))
st.labkit.check_function("my_identity_scaled_trace", my_identity_scaled_trace,
                         library_identity_scaled_trace, trace_cases, atol=1e-9)

# %% [markdown]
# ## 2. Closed form vs exact Hessian at flat solutions of every operator
# The dense autodiff Hessian against 2(‖D1 L‖² + ‖D2 R‖²) at the flattest solution of each
# operator (identity, Gaussian, bilinear, completion), d1 = 8, d2 = 6, k = 6.

# %%
closed_form_differences = {}
for operator in ("identity", "gaussian", "bilinear", "completion"):
    problem = st.problems.matrix_sensing(8, 6, rank=rank, operator=operator, seed=1,
                                         measurements=None if operator == "identity" else 40)
    flat = low_rank_theory.flattest_solution(problem)
    dense = float(low_rank_measures.sensing_scaled_trace_dense(flat.params, problem))
    closed = float(low_rank_measures.sensing_scaled_trace(flat.params, problem))
    closed_form_differences[operator] = abs(dense - closed) / abs(dense)
    print(f"{operator:>10}: str dense {dense:.12f}  closed form {closed:.12f}  "
          f"4‖D1 X D2‖_* {flat.scaled_trace:.8f}  loss {float(low_rank_measures.training_loss(flat.params, problem)):.1e}")

# %% [markdown]
# ## 3. Phase transition in the number of Gaussian measurements
# For each m: `trials` instances (random rank-2 M with ‖M‖_F = 1, Gaussian 𝒜, noiseless); the flat
# solution solves min ‖D1 X D2‖_* s.t. 𝒜(X) = b, the baseline min ‖X‖_* s.t. 𝒜(X) = b. Success:
# relative error ‖X − M‖_F / ‖M‖_F below the threshold. m is shown in units of r(d1 + d2); the
# degrees of freedom of a rank-r matrix are r(d1 + d2 − r).

# %%
def solve_instance(d, measurements, seed, baseline=True):
    """Relative errors of the flat and (if ``baseline``) nuclear-norm solutions, and the flat
    solution's relative balancedness and norm-minimality gaps."""
    problem = st.problems.matrix_sensing(d, rank=rank, operator="gaussian",
                                         measurements=measurements, seed=seed)
    target = np.asarray(problem.constants["ground_truth"])
    flat = low_rank_theory.flattest_solution(problem)
    baseline_error = np.nan
    if baseline:
        nuclear_solution = low_rank_theory.nuclear_norm_minimization(
            *st.problems.matrix_sensing_measurements(problem))
        baseline_error = low_rank_theory.relative_recovery_error(nuclear_solution.product, target)
    nuclear = float(np.sum(np.linalg.svd(flat.product, compute_uv=False)))
    balance_gap = float(low_rank_measures.factor_balancedness_gap(flat.params)) / nuclear
    norm_gap = float(low_rank_measures.norm_minimality_gap(flat.params)) / nuclear
    return (low_rank_theory.relative_recovery_error(flat.product, target), baseline_error,
            balance_gap, norm_gap)


phase = {}
for d in phase_sizes:
    grid = np.asarray([int(round(f * rank * 2 * d)) for f in phase_factors])
    errors = np.full((len(grid), trials, 2), np.nan)
    for i, m in enumerate(lab.progress(grid, desc=f"phase transition d={d}")):
        for trial in range(trials):
            errors[i, trial] = solve_instance(d, int(m), trial)[:2]
    phase[d] = {"measurements": grid, "errors": errors,
                "flat_rate": np.mean(errors[..., 0] < SUCCESS_THRESHOLD, axis=1),
                "nuclear_rate": np.mean(errors[..., 1] < SUCCESS_THRESHOLD, axis=1)}
    print(f"d={d}: m = {grid.tolist()}\n  flat success {phase[d]['flat_rate'].tolist()}\n"
          f"  nuclear-norm success {phase[d]['nuclear_rate'].tolist()}")
    lab.save_arrays(**{f"phase_d{d}_measurements": grid, f"phase_d{d}_errors": errors})

# %% [markdown]
# ## 4. Flat solutions are nearly, not exactly, norm-minimal and balanced
# Gaps of the flat factorization (L_f, R_f) relative to ‖X_f‖_*: balancedness
# ‖L_fᵀL_f − R_fᵀR_f‖_F and norm-minimality ½(‖L_f‖² + ‖R_f‖²) − ‖X_f‖_* (0 iff norm-minimal),
# for m from 2 r(d1+d2) (recovery) upward. D1, D2 concentrate at I like 1/√m.

# %%
gap_grid = np.asarray([multiple * rank * 2 * gap_size for multiple in gap_multiples])
gaps = np.full((len(gap_grid), trials, 3), np.nan)
for i, m in enumerate(lab.progress(gap_grid, desc="flat-solution gaps")):
    for trial in range(trials):
        flat_error, _, balance_gap, norm_gap = solve_instance(gap_size, int(m), 100 + trial,
                                                              baseline=False)
        gaps[i, trial] = flat_error, balance_gap, norm_gap
lab.save_arrays(gap_measurements=gap_grid, gap_values=gaps)
print("median balancedness gap", np.median(gaps[..., 1], axis=1).round(5).tolist())
print("median norm-minimality gap", np.median(gaps[..., 2], axis=1).round(6).tolist())

# %% [markdown]
# ## 5. Dynamics: GD, SAM, USAM and nBAR from a large unbalanced initialization
# Gaussian sensing with d = 10, r = 2, k = 10 and m = 60 measurements (flat solutions recover M
# here). The initial L has entries of scale init_scale·imbalance, R of scale init_scale/imbalance.
# One compiled sweep per instance runs the four optimizers over a grid of ρ (GD and nBAR, which
# have no ρ, run once); new instances reuse the compilation. The flattest str 4‖D1 X_f D2‖_*
# comes from cvxpy. A second condition starts small and balanced.

# %%
def balancedness_gap(params):
    return low_rank_measures.factor_balancedness_gap(params)


observe = {"str": of_params_and_problem(low_rank_measures.sensing_scaled_trace),
           "loss": of_params_and_problem(low_rank_measures.training_loss),
           "recovery_error": of_params_and_problem(low_rank_measures.recovery_error),
           "balancedness_gap": of_params(balancedness_gap)}
optimizers = {
    "gd": st.optim.gd(dynamics["lr"]),
    "sam": st.optim.sam(dynamics["lr"], dynamics["rho"]),
    "usam": st.optim.usam(dynamics["lr"], dynamics["usam_rho"]),
    "nbar": st.optim.nbar(dynamics["lr"], dynamics["nbar_alpha"], schedule="cosine",
                          horizon=dynamics["steps"]),
}
rho_grid = np.asarray(dynamics["rho_grid"])
shown_rho = {"gd": 0, "nbar": 0, "sam": int(np.flatnonzero(rho_grid == dynamics["rho"])[0]),
             "usam": int(np.flatnonzero(rho_grid == dynamics["usam_rho"])[0])}
conditions = {"large unbalanced": (dynamics["init_scale"], dynamics["init_imbalance"]),
              "small balanced": (dynamics["small_init_scale"], 1.0)}
# records[condition][optimizer][observable]: (instances, len(rho_grid), n_records)
records = {condition: {name: {key: [] for key in observe} for name in optimizers}
           for condition in conditions}
diverged = {condition: {name: [] for name in optimizers} for condition in conditions}
flattest = {condition: [] for condition in conditions}
end_point_differences = []
for condition, (scale, imbalance) in conditions.items():
    for instance in lab.progress(range(dynamics["instances"]), desc=f"dynamics ({condition})"):
        problem = st.problems.matrix_sensing(
            dynamics["d"], rank=rank, k=dynamics["k"], operator="gaussian",
            measurements=dynamics["measurements"], init_scale=scale, init_imbalance=imbalance,
            seed=instance)
        flattest[condition].append(low_rank_theory.flattest_solution(problem).scaled_trace)
        result = st.sweep(problem, optimizers, steps=dynamics["steps"], seeds=1,
                          grid={"rho": rho_grid}, observe=observe, stride=dynamics["stride"])
        for name in optimizers:
            trajectory = result[name]
            for key in observe:
                records[condition][name][key].append(np.asarray(trajectory.observed[key])[:, 0])
            diverged[condition][name].append(np.asarray(trajectory.diverged)[:, 0])
            for index in range(len(rho_grid) if name in ("sam", "usam") else 1):
                final = jax.tree_util.tree_map(lambda leaf: jnp.asarray(leaf)[index, 0],
                                               trajectory.params)
                dense = float(low_rank_measures.sensing_scaled_trace_dense(final, problem))
                closed = float(low_rank_measures.sensing_scaled_trace(final, problem))
                end_point_differences.append(abs(dense - closed) / abs(dense))
steps_recorded = np.asarray(result["gd"].steps)
for condition in conditions:
    for name in optimizers:
        diverged[condition][name] = np.stack(diverged[condition][name])
        for key in observe:
            records[condition][name][key] = np.stack(records[condition][name][key])
            lab.save_arrays(**{f"dynamics_{condition.replace(' ', '_')}_{name}_{key}":
                               records[condition][name][key]})
lab.save_arrays(dynamics_steps=steps_recorded, dynamics_rho_grid=rho_grid)


def shown(condition, name, key):
    """(instances, n_records) at the ρ shown in the trajectory figure."""
    return records[condition][name][key][:, shown_rho[name]]


def final_median(condition, name, key, rho_index=None):
    index = shown_rho[name] if rho_index is None else rho_index
    return float(np.nanmedian(records[condition][name][key][:, index, -1]))


large = "large unbalanced"
for condition in conditions:
    print(f"{condition}: flattest str median {np.median(flattest[condition]):.4f}")
    for name in optimizers:
        print(f"  {name:>5}: final str {final_median(condition, name, 'str'):.4f}  loss "
              f"{final_median(condition, name, 'loss'):.2e}  recovery error "
              f"{final_median(condition, name, 'recovery_error'):.3f}  balancedness gap "
              f"{final_median(condition, name, 'balancedness_gap'):.3f}")
    for name in ("sam", "usam"):
        final_str = [final_median(condition, name, "str", i) for i in range(len(rho_grid))]
        final_loss = [final_median(condition, name, "loss", i) for i in range(len(rho_grid))]
        print(f"  {name} over ρ = {rho_grid.tolist()}: final str {np.round(final_str, 3).tolist()}, "
              f"loss {[f'{value:.1e}' for value in final_loss]}, diverged instances "
              f"{diverged[condition][name].sum(axis=0).tolist()}")

# %% [markdown]
# ## Figures

# %%
FIT_LOSS = 1e-3  # a run whose median final loss is above this has not fitted the measurements


def run_status(condition, name, rho_index=None):
    """How a run (median over instances) ended: "ok", "diverged", "not fitted", or "at the
    saddle X = 0" (not fitted and its product LRᵀ still ≈ 0: relative recovery error ≈ 1)."""
    index = shown_rho[name] if rho_index is None else rho_index
    if diverged[condition][name][:, index].any():
        return "diverged"
    if final_median(condition, name, "loss", index) <= FIT_LOSS:
        return "ok"
    if final_median(condition, name, "recovery_error", index) > 0.99:
        return "at the saddle $X=0$"
    return "not fitted"


main_d = phase_sizes[-1]
fig, axes = st.plotting.figure(1, len(phase_sizes), width=3.4)
for ax, d in zip(axes[0], phase_sizes):
    units = phase[d]["measurements"] / (rank * 2 * d)
    ax.plot(units, phase[d]["flat_rate"], "o-", color=st.plotting.color_for("sam"),
            label="flat solution (min $\\|D_1 X D_2\\|_*$)")
    ax.plot(units, phase[d]["nuclear_rate"], "s--", color=st.plotting.color_for("gd"),
            label="nuclear-norm minimization")
    ax.axvline((2 * d - rank) / (2 * d), color="0.5", linestyle=":",
               label="degrees of freedom $r(d_1+d_2-r)$")
    ax.set_xlabel("measurements $m\\,/\\,r(d_1 + d_2)$")
    ax.set_ylabel("success rate")
    ax.set_title(f"$d_1 = d_2 = {d}$, $r = {rank}$, {trials} trials;\nsuccess: rel. error < "
                 f"{SUCCESS_THRESHOLD:g}")
    ax.set_ylim(-0.05, 1.05)
st.plotting.figure_legend(fig, ncol=1)
st.plotting.finding(fig, "Flat solutions recover $M$ once $m$ passes the degrees of freedom, "
                    "like nuclear-norm minimization")
lab.savefig(fig, "phase_transition", claims=["ding2024.sensing.flat_minima_recover"])

fig, axes = st.plotting.figure(1, 1, width=5.0, height=3.2)
ax = axes[0][0]
for column, label, color in (
        (1, "balancedness $\\|L^TL - R^TR\\|_F\\,/\\,\\|X\\|_*$", st.plotting.color_for("nbar")),
        (2, "norm-minimality $(\\frac{1}{2}(\\|L\\|^2+\\|R\\|^2) - \\|X\\|_*)\\,/\\,\\|X\\|_*$",
         st.plotting.color_for("obar"))):
    st.plotting.band(ax, gap_grid, gaps[..., column].T, label=label, color=color)
ax.set_xscale("log")
ax.set_yscale("log")
ax.set_xlabel("measurements $m$ (log scale)")
ax.set_ylabel("relative gap of the flat solution")
ax.set_title(f"Gaussian, $d = {gap_size}$, $r = {rank}$; median, 10-90% of {trials} trials")
st.plotting.figure_legend(fig, ncol=1)
st.plotting.finding(fig, "Flat solutions are nearly balanced and nearly norm-minimal; "
                    "both gaps fall with $m$")
lab.savefig(fig, "flat_solution_gaps", claims=["ding2024.sensing.flat_nearly_balanced",
                                                "ding2024.sensing.gaps_fall_at_first_order_rates"])

# %% [markdown]
# **Exercise 3 (open question).** Flatness (the smallest scaled trace among interpolating
# factorizations) is a property of the loss at a point; recovering M is about the product.
# Using Exercise 1 and the closed form str = 2(‖D1 L‖² + ‖D2 R‖²), explain why minimizing str
# over factorizations that fit the data is the same as a (weighted) nuclear-norm minimization
# over X = LRᵀ, and why that recovers a low-rank M once m passes the degrees of freedom. Would a
# flat minimum still recover M with m far below r(d1 + d2 − r)? And why can SAM, which lowers
# str, fail to help from a small balanced initialization (second row of the dynamics figure)?

# %% tags=["teacher-note"]
# Teacher's note (not on the students' site): for a fixed product X, min over factorizations of
# ‖D1 L‖² + ‖D2 R‖² is 2‖D1 X D2‖_* (the variational form of the nuclear norm; attained by the
# balanced factorization of D1 X D2 — Exercise 1 shows the unbalanced ones are sharper), so the
# flattest interpolating minimum is the minimizer of the weighted nuclear norm subject to
# 𝒜(X) = b (Ding et al. 2022, Thm 3.2). The nuclear norm is the convex envelope of the rank on
# the spectral-norm ball, and with Gaussian measurements it recovers rank-r matrices once m is
# of the order of the degrees of freedom (Recht, Fazel, Parrilo 2010); D1, D2 → I as m grows.
# Far below that, many low-norm matrices fit the data and the flattest one is not M: flatness
# helps only through this convex surrogate. From a small balanced start GD already has the
# implicit low-rank, near-balanced bias (Gunasekar et al. 2017; Li, Ma, Zhang 2018), so there is
# little sharpness left for SAM to remove, and a large ρ can hold it at the saddle X = 0.

labels = {"gd": "GD", "sam": f"SAM ($\\rho$ = {dynamics['rho']})",
          "usam": f"USAM ($\\rho$ = {dynamics['usam_rho']})",
          "nbar": f"nBAR ($\\alpha$ = {dynamics['nbar_alpha']}, cosine)"}
short = {"large unbalanced": "large init", "small balanced": "small init"}
statuses = {condition: {name: run_status(condition, name) for name in optimizers}
            for condition in conditions}
fig, axes = st.plotting.figure(len(conditions), 4, width=2.6, height=2.3)
for row, condition in enumerate(conditions):
    for column, (key, title, ylabel) in enumerate((
            ("str", "scaled Hessian trace", "str"),
            ("balancedness_gap", "balancedness gap", "$\\|L^TL - R^TR\\|_F$"),
            ("recovery_error", "recovery error", "$\\|LR^T - M\\|_F\\,/\\,\\|M\\|_F$"),
            ("loss", "training loss", "loss"))):
        ax = axes[row][column]
        ax.set_label(short[condition])
        for name in optimizers:
            st.plotting.band(ax, steps_recorded, shown(condition, name, key), label=labels[name],
                             color=st.plotting.color_for(name), log=True,
                             status=statuses[condition][name])
        if key == "str":
            ax.axhline(np.median(flattest[condition]), color="0.3", linestyle=":",
                       label="flattest $4\\|D_1 X_f D_2\\|_*$")
        if row == 0:
            ax.set_title(title)
        ax.set_xlabel("step")
        ax.set_ylabel(f"{short[condition]}: {ylabel}" if column == 0 else ylabel)
    st.plotting.legend_right(axes[row][-1], source=axes[row][0])
small_sam = statuses["small balanced"]["sam"]
st.plotting.finding(
    fig, f"SAM ends flatter than GD (str {final_median(large, 'sam', 'str'):.3g} vs "
    f"{final_median(large, 'gd', 'str'):.3g}); from a small init SAM is "
    + ("fitted" if small_sam == "ok" else small_sam))
lab.savefig(fig, "dynamics", claims=["ding2024.dynamics.sam_flatter_than_gd",
                                     "ding2024.dynamics.sam_flatter_than_gd_small_init"],
            runs={f"{labels[name]} @ {short[condition]}": statuses[condition][name]
                  for condition in conditions for name in optimizers}, slide=True)

fig, axes = st.plotting.figure(1, len(conditions), width=3.4, height=2.9)
for ax, condition in zip(axes[0], conditions):
    for name in ("sam", "usam"):
        final_str = np.asarray([final_median(condition, name, "str", i) for i in range(len(rho_grid))])
        status = np.asarray([run_status(condition, name, i) for i in range(len(rho_grid))])
        color = st.plotting.color_for(name)
        ax.plot(rho_grid, final_str, "-", color=color, label=name.upper())
        ax.plot(rho_grid[status == "ok"], final_str[status == "ok"], "o", color=color)
        for flagged in sorted(set(status) - {"ok"}):
            st.plotting.plot_run(ax, rho_grid[status == flagged], final_str[status == flagged], "o",
                                 color=color, label=name.upper(), status=flagged, markersize=7)
    for name, style in (("gd", ":"), ("nbar", "-.")):
        ax.axhline(final_median(condition, name, "str"), color=st.plotting.color_for(name),
                   linestyle=style, label=labels[name])
    ax.axhline(np.median(flattest[condition]), color="0.3", linestyle="--",
               label="flattest $4\\|D_1 X_f D_2\\|_*$")
    ax.set_xscale("log")
    ax.set_yscale("symlog", linthresh=1.0)
    ax.set_xlabel("$\\rho$ (log scale)")
    ax.set_ylabel(f"final str after {dynamics['steps']} steps")
    ax.set_title(f"{short[condition]} (median; diverged runs left out)")
st.plotting.figure_legend(fig, ncol=3)
st.plotting.finding(fig, "Larger $\\rho$ makes SAM flatter, until it no longer fits "
                    f"(hollow: median loss > {FIT_LOSS:g})")
lab.savefig(fig, "str_vs_rho", claims=["ding2024.dynamics.sam_flatter_than_gd"])

# %% [markdown]
# ## Claims

# %%
recovering = gap_grid >= 2 * rank * 2 * gap_size
measured.update(
    str_closed_form_max_rel_difference=max(max(closed_form_differences.values()),
                                           max(end_point_differences)),
    str_closed_form_points=len(closed_form_differences) + len(end_point_differences),
    str_closed_form_rel_difference_by_operator=closed_form_differences,
    phase_d1=main_d, phase_d2=main_d, phase_rank=rank,
    phase_measurements=phase[main_d]["measurements"],
    phase_flat_success_rate=phase[main_d]["flat_rate"],
    phase_nuclear_success_rate=phase[main_d]["nuclear_rate"],
    phase_by_size={str(d): {"measurements": phase[d]["measurements"],
                            "flat_success_rate": phase[d]["flat_rate"],
                            "nuclear_success_rate": phase[d]["nuclear_rate"]} for d in phase_sizes},
    gap_measurements=gap_grid[recovering],
    phase_flat_balancedness_gap_median=np.median(gaps[recovering, :, 1], axis=1),
    phase_flat_norm_gap_median=np.median(gaps[recovering, :, 2], axis=1),
    gap_flat_recovery_error_max=float(np.max(gaps[..., 0])),
    dynamics_str_flattest=float(np.median(flattest[large])),
    dynamics_str_initial=float(np.median(shown(large, "gd", "str")[:, 0])),
    dynamics_rho_grid=rho_grid,
)
for name in optimizers:
    for key, short in (("str", "str"), ("loss", "loss"), ("recovery_error", "recovery_error"),
                       ("balancedness_gap", "balancedness_gap")):
        measured[f"dynamics_{short}_{name}"] = final_median(large, name, key)
        measured[f"dynamics_small_init_{short}_{name}"] = final_median("small balanced", name, key)
measured["dynamics_small_init_str_flattest"] = float(np.median(flattest["small balanced"]))
for condition, prefix in ((large, "dynamics"), ("small balanced", "dynamics_small_init")):
    for name in ("sam", "usam"):
        measured[f"{prefix}_{name}_str_by_rho"] = [final_median(condition, name, "str", i)
                                                   for i in range(len(rho_grid))]
        measured[f"{prefix}_{name}_loss_by_rho"] = [final_median(condition, name, "loss", i)
                                                    for i in range(len(rho_grid))]
        measured[f"{prefix}_{name}_diverged_by_rho"] = diverged[condition][name].sum(axis=0)
results = lab.finish(measured)

# %% [markdown]
# **Your predictions against the measurements.**

# %%
st.labkit.compare_predictions(results, {
    "ding2024.sensing.flat_minima_recover": predict_flat_recovers,
    "ding2024.dynamics.sam_flatter_than_gd_small_init": predict_sam_flatter_small_init,
})
