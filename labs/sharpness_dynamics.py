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
# # What SAM minimizes: λ_max for full-batch SAM, the trace for 1-SAM
# Wen, Ma, Li (ICLR 2023) show that near a manifold of minimizers full-batch SAM follows a slow
# flow that decreases the top Hessian eigenvalue λ_max, while 1-SAM (each example perturbed by
# its own gradient) decreases the trace of the Hessian; how fast the sharpness falls per step
# depends on η and ρ as a power law (you predict the power of ρ below); and on a quadratic
# ½xᵀHx with ηλ_1 < 1, SAM's iterate settles at distance ηρλ_1/(2 − ηλ_1) from the minimum
# along the top eigenvector (Thm 4.8).
#
# Setting (papers/wen2023-how-sam-minimizes-sharpness.md, our own instance): parameters (a, b, x3, x4) and
# L = F1(a,b)·x3² + F2(a,b)·x4², with F1 = 3 + (a−1)² + b² and F2 = 2.5 − 2·exp(−((a+1)² + b²)/2).
# The minimizers form the plane x3 = x4 = 0; there the Hessian is diag(0, 0, 2F1, 2F2), so
# λ_max = 2F1 (F1 ≥ 3 > 2.5 ≥ F2) is smallest at (a, b) = (1, 0), and the trace 2(F1 + F2) at
# b = 0, a ≈ 0.522. The two examples are 2F1·x3² and 2F2·x4² (their mean is L).
#
# What to look at: panel (a) — the (a, b) paths of SAM and 1-SAM; panel (b) — λ_max and trace
# along the way; panel (c) — the per-step decrease of λ_max against η and ρ; panel (d) — Thm
# 4.8's radius on a quadratic.

# %%
import jax
import jax.numpy as jnp
import numpy as np
import scipy.optimize

import sharp_theory as st
from sharp_theory.observables import of_params, of_params_and_problem
from sharp_theory.problems.base import Problem
from sharp_theory.theory import stability

lab = st.labkit.start("sharpness-dynamics", default_seeds=1, quick_seeds=1)

LR, RHO = 0.01, 0.05
STEPS = 200_000 if lab.quick else 400_000
RATE_LRS, RATE_RHOS = (0.005, 0.01, 0.02), (0.025, 0.05, 0.1)
RATE_LEVELS = (7.5, 7.0)  # λ_max levels between which the decrease rate is timed
RATE_STEPS = 120_000
ONE_SAM_LRS = (0.02, 0.01, 0.005, 0.0025)
ONE_SAM_RHO, ONE_SAM_STEPS = 0.1, (400_000 if lab.quick else 1_600_000)
START = (0.0, 0.5, 0.3, 0.3)
lab.record_config(lr=LR, rho=RHO, steps=STEPS, start=START, rate_lrs=RATE_LRS, rate_rhos=RATE_RHOS,
                  rate_levels=RATE_LEVELS, rate_steps=RATE_STEPS, one_sam_lrs=ONE_SAM_LRS,
                  one_sam_rho=ONE_SAM_RHO, one_sam_steps=ONE_SAM_STEPS)


# %% [markdown]
# ## The 4-D toy and its exact sharpness

# %%
def curvatures(params):
    a, b = params[0], params[1]
    f1 = 3.0 + (a - 1.0) ** 2 + b**2
    f2 = 2.5 - 2.0 * jnp.exp(-((a + 1.0) ** 2 + b**2) / 2.0)
    return f1, f2


def toy_loss(params, batch):
    # batch["e"] one-hot selects example 1 (2F1·x3²) or example 2 (2F2·x4²); mean over the batch.
    f1, f2 = curvatures(params)
    per_example = 2.0 * (batch["e"][:, 0] * f1 * params[2] ** 2 + batch["e"][:, 1] * f2 * params[3] ** 2)
    return jnp.mean(per_example)


problem = st.problems.from_loss(toy_loss, jnp.asarray(START), data={"e": np.eye(2)}, name="wen-toy")


def lambda_max(params, problem):
    return st.measure.lambda_max(st.measure.full_batch_loss(problem), params, method="dense")


def trace(params, problem):
    return st.measure.hessian_trace(st.measure.full_batch_loss(problem), params, method="dense")


def coordinate_a(params):
    return params[0]


def coordinate_b(params):
    return params[1]


def normal_distance(params):
    return jnp.linalg.norm(params[2:])


OBSERVE = {"a": of_params(coordinate_a), "b": of_params(coordinate_b),
           "lambda_max": of_params_and_problem(lambda_max), "trace": of_params_and_problem(trace),
           "normal_distance": of_params(normal_distance)}

trace_minimizer = scipy.optimize.minimize_scalar(
    lambda a: (a - 1.0) ** 2 - 2.0 * np.exp(-((a + 1.0) ** 2) / 2.0), bounds=(-1, 2),
    method="bounded", options={"xatol": 1e-12}).x

# %% [markdown] tags=["predict"]
# **Predict, then run.** Near a manifold of minimizers, full-batch SAM drifts towards the
# smallest top eigenvalue λ_max. 1-SAM perturbs each example along its own gradient: does it
# minimize the same quantity, or the *trace* of the Hessian? Set `predict_one_sam_trace` to
# `True` (the trace) or `False`. The table at the end of the lab confirms or contradicts your
# prediction with the measured verdict.

# %% tags=["prediction"]
predict_one_sam_trace = True  # SOLUTION

# %% [markdown]
# **Exercise 1 (numeric prediction).** Full-batch SAM (η = 0.01, ρ = 0.05) starts at
# (a, b, x3, x4) = (0, 0.5, 0.3, 0.3) and runs 200,000 steps at quick sizes. If it ends at the
# minimizer with the smallest λ_max, what is λ_max there? Use the toy's formulas above. Graded
# within 1% of the exact (dense) λ_max at SAM's last iterate: SAM ends within ~2e-3 of the plane
# and its drift along the plane has converged by then.

# %% tags=["exercise"]
predicted_sam_final_lambda_max = 6.0  # SOLUTION

# %% [markdown]
# ## GD, full-batch SAM and 1-SAM from the same start

# %%
optimizers = {"gd": st.optim.gd(LR), "sam": st.optim.sam(LR, RHO), "1-sam": st.optim.sam(LR, RHO, m=1)}
runs = {name: st.run(problem, optimizer, steps=STEPS, key=jax.random.key(0), observe=OBSERVE,
                     stride=STEPS // 2000)
        for name, optimizer in lab.progress(optimizers.items(), "optimizers")}
steps_recorded = np.asarray(runs["sam"].steps)
final = {name: {"a": float(t.final("a")), "b": float(t.final("b")),
                "lambda_max": float(t.final("lambda_max")), "trace": float(t.final("trace")),
                "normal_distance": float(t.final("normal_distance")), "status": t.status}
         for name, t in runs.items()}

# Thm 4.8's radius on the toy: near the plane the normal block is diag(2F1, 2F2), λ_1 = 2F1.
toy_radius = stability.wen_ma_li_limit_norm(LR, RHO, final["sam"]["lambda_max"])

# %% tags=["exercise-check"]
st.labkit.check_number("predicted_sam_final_lambda_max", predicted_sam_final_lambda_max,
                       final["sam"]["lambda_max"], rtol=0.01)

# %% [markdown]
# **Exercise 2 (coding).** Write one 1-SAM step: each example i takes its own normalized ascent
# `w + ρ∇ℓ_i(w)/‖∇ℓ_i(w)‖`, its gradient is taken there, and the step averages those gradients.
# `example_gradient(w, i)` returns `∇ℓ_i(w)`. It must match `st.optim.sam(lr, rho, m=1)` on this
# toy to 1e-12 (the check draws random points).

# %% tags=["exercise"]
def my_one_sam_step(w, example_gradient, n_examples, lr, rho):
    """One 1-SAM step from w on n_examples examples."""
    # BEGIN SOLUTION
    total = jnp.zeros_like(w)
    for i in range(n_examples):
        g = example_gradient(w, i)
        total = total + example_gradient(w + rho * g / jnp.linalg.norm(g), i)
    return w - lr * total / n_examples
    # END SOLUTION


# %% tags=["exercise-check"]
def example_gradient(w, i):
    return jax.grad(toy_loss)(w, {"e": jnp.eye(2)[i:i + 1]})


def library_one_sam_step(w, gradient_of_example, n_examples, lr, rho):
    # the library's 1-SAM (m = 1) on the toy's two examples, one step from w
    return st.run(problem, st.optim.sam(lr, rho, m=1), steps=1, key=jax.random.key(0),
                  params0=w).params


st.labkit.check_function(
    "my_one_sam_step", my_one_sam_step, library_one_sam_step,
    [(jnp.asarray(np.random.default_rng(i).normal(size=4)), example_gradient, 2, 0.01 * (i + 1),
      0.05 * (i + 1)) for i in range(3)], atol=1e-12)

# %% [markdown]
# ## The rate: how fast full-batch SAM lowers λ_max, against η and ρ
# **Exercise 3 (numeric prediction).** Near the plane SAM's ascent points along the top
# eigenvector v of the Hessian, so it takes its gradient at w + ρv. Expand ∇L(w + ρv) in ρ to
# the first order whose term moves w *along* the plane (∇L and Hv are normal to it there) and
# predict the power q in "λ_max falls by ∝ ρ^q per step". The lab times the fall of λ_max from
# 7.5 to 7 on a 3 × 3 grid of (η, ρ) and fits log-rate against log ρ; graded within 5% of the
# mean fitted slope (the three fits agree to 1e-3; higher orders in ρ move them by less).

# %% tags=["exercise"]
predicted_rho_exponent = 2  # SOLUTION

# %%
rate_sweep = st.sweep(problem, {"sam": st.optim.sam(LR, RHO)}, steps=RATE_STEPS, seeds=1,
                      grid={"lr": list(RATE_LRS), "rho": list(RATE_RHOS)},
                      observe={"lambda_max": of_params_and_problem(lambda_max)}, stride=10)
rate_curves = np.asarray(rate_sweep["sam"].observed["lambda_max"])[:, :, 0, :]
rate_steps = np.arange(rate_curves.shape[-1]) * 10


def crossing_step(curve, level):
    """First step at which the curve falls to ``level`` (linear interpolation), NaN if never."""
    below = np.flatnonzero(curve <= level)
    if below.size == 0 or below[0] == 0:
        return np.nan
    i = below[0]
    return rate_steps[i - 1] + (curve[i - 1] - level) * 10 / (curve[i - 1] - curve[i])


upper, lower = RATE_LEVELS
rates = np.array([[(upper - lower) / (crossing_step(rate_curves[i, j], lower) - crossing_step(rate_curves[i, j], upper))
                   for j in range(len(RATE_RHOS))] for i in range(len(RATE_LRS))])
log_lr, log_rho = np.log(RATE_LRS), np.log(RATE_RHOS)
slopes_in_lr = [float(np.polyfit(log_lr, np.log(rates[:, j]), 1)[0]) for j in range(len(RATE_RHOS))]
slopes_in_rho = [float(np.polyfit(log_rho, np.log(rates[i, :]), 1)[0]) for i in range(len(RATE_LRS))]
# the decrease per step divided by ηρ² should be one constant across the grid
normalized_rates = rates / (np.asarray(RATE_LRS)[:, None] * np.asarray(RATE_RHOS)[None, :] ** 2)

# %% tags=["exercise-check"]
st.labkit.check_number("predicted_rho_exponent", predicted_rho_exponent,
                       float(np.mean(slopes_in_rho)), rtol=0.05)

# %% [markdown]
# ## 1-SAM's endpoint as η → 0
# At finite η the 1-SAM endpoint sits a little off the trace minimizer; the offset is O(η).

# %%
one_sam = st.sweep(problem, {"1-sam": st.optim.sam(0.01, ONE_SAM_RHO, m=1)}, steps=ONE_SAM_STEPS,
                   seeds=1, grid={"lr": list(ONE_SAM_LRS)}, observe={"a": of_params(coordinate_a)},
                   stride=ONE_SAM_STEPS // 8)
one_sam_a = np.asarray(one_sam["1-sam"].observed["a"])[:, 0, :]
one_sam_final = one_sam_a[:, -1]
one_sam_converged = np.abs(one_sam_a[:, -1] - one_sam_a[:, -2])
fit = np.polyfit(np.asarray(ONE_SAM_LRS), one_sam_final, 1)
extrapolated_a = float(fit[1])  # value at η = 0


# %% [markdown]
# ## Thm 4.8 on a quadratic

# %%
def quadratic_objective(params, batch, constants):
    return 0.5 * params @ constants["H"] @ params


def norm(params):
    return jnp.linalg.norm(params)


rng = np.random.default_rng(1)
eigenvalues = np.array([2.0, 1.2, 0.7, 0.3, 0.1])
rotation, _ = np.linalg.qr(rng.standard_normal((5, 5)))
matrix = rotation @ np.diag(eigenvalues) @ rotation.T
quadratic = Problem(objective=quadratic_objective, params0=jnp.asarray(rng.standard_normal(5)),
                    constants={"H": jnp.asarray(0.5 * (matrix + matrix.T))}, name="quadratic")
theorem_cases = []
theorem_curves = {}
for product in (0.2, 0.5, 0.9):
    lr = product / eigenvalues[0]
    traj = st.run(quadratic, st.optim.sam(lr, 0.1), steps=6000, key=jax.random.key(0),
                  observe={"norm": of_params(norm)}, stride=20)
    limit = float(stability.wen_ma_li_limit_norm(lr, 0.1, eigenvalues[0]))
    alignment = abs(float(jnp.dot(traj.params, rotation[:, 0]))) / float(jnp.linalg.norm(traj.params))
    theorem_cases.append({"eta_lambda1": product, "rho": 0.1, "predicted_norm": limit,
                          "final_norm": float(traj.final("norm")),
                          "relative_error": abs(float(traj.final("norm")) - limit) / limit,
                          "alignment": alignment})
    theorem_curves[product] = (np.asarray(traj.steps), np.asarray(traj.observed["norm"]), limit)

# %% [markdown]
# ## Figure

# %%
fig, axes = st.plotting.figure(2, 2, width=3.5, height=2.8)
ax = axes[0, 0]
grid_a, grid_b = np.meshgrid(np.linspace(-0.6, 1.6, 200), np.linspace(-0.3, 0.7, 120))
f1 = 3 + (grid_a - 1) ** 2 + grid_b**2
f2 = 2.5 - 2 * np.exp(-((grid_a + 1) ** 2 + grid_b**2) / 2)
SAM_COLOR, TRACE_COLOR = st.plotting.color_for("sam"), st.plotting.PALETTE[3]
contours = ax.contour(grid_a, grid_b, 2 * f1, levels=8, colors=SAM_COLOR, alpha=0.35, linewidths=0.8)
ax.clabel(contours, fontsize=8, fmt="λ=%.1f")
ax.contour(grid_a, grid_b, 2 * (f1 + f2), levels=8, colors=TRACE_COLOR, alpha=0.35,
           linewidths=0.8, linestyles="dotted")
for name, traj in runs.items():
    ax.plot(traj.observed["a"], traj.observed["b"], color=st.plotting.color_for(name),
            label=name + (" (stays near the start)" if name == "gd" else ""))
ax.plot([1.0], [0.0], "*", color=SAM_COLOR, markersize=12, label="argmin $\\lambda_{max}$ (1, 0)")
ax.plot([trace_minimizer], [0.0], "*", color=TRACE_COLOR, markersize=12,
        label=f"argmin trace ({trace_minimizer:.3f}, 0)")
ax.plot([START[0]], [START[1]], "ko", label="start")
ax.set(title=f"(a) paths (η = {LR:g}, ρ = {RHO:g}); level sets of\n"
             "$\\lambda_{max}$ (solid) and of the trace (dotted)", xlabel="a", ylabel="b")
st.plotting.legend_right(ax)
ax = axes[0, 1]
for name, traj in runs.items():
    color = st.plotting.color_for(name)
    # records from the first stride on (log time axis)
    ax.plot(steps_recorded[1:], np.asarray(traj.observed["lambda_max"])[1:], color=color,
            label=f"{name}: $\\lambda_{{max}}$")
    ax.plot(steps_recorded[1:], np.asarray(traj.observed["trace"])[1:], color=color, linestyle="--",
            label=f"{name}: trace")
ax.set(title="(b) full-batch SAM lowers $\\lambda_{max}$, 1-SAM the trace", xlabel="step",
       ylabel="$\\lambda_{max}$ (solid), trace (dashed)", xscale="log")
st.plotting.legend_right(ax)
ax = axes[1, 0]
for j, rho in enumerate(RATE_RHOS):
    ax.plot(RATE_LRS, rates[:, j], "o-", color=st.plotting.PALETTE[j],
            label=f"ρ = {rho:g} (slope in η {slopes_in_lr[j]:.2f})")
ax.set(title=f"(c) decrease of $\\lambda_{{max}}$ per step ({upper:g} → {lower:g});\n"
             f"slopes in ρ at fixed η: {', '.join(f'{s:.2f}' for s in slopes_in_rho)}",
       xlabel="step size η", ylabel="$-\\Delta\\lambda_{max}$ per step", xscale="log", yscale="log")
st.plotting.legend_right(ax)
ax = axes[1, 1]
for index, (product, (steps_q, norms, limit)) in enumerate(theorem_curves.items()):
    color = st.plotting.PALETTE[index]
    ax.plot(steps_q, norms, color=color, label=f"SAM, ηλ₁ = {product:g}, ρ = 0.1")
    ax.axhline(limit, color=color, linestyle="--", linewidth=1)
ax.set(title="(d) Thm 4.8: $\\|x_t\\| \\to \\eta\\rho\\lambda_1/(2 - \\eta\\lambda_1)$ (dashed)",
       xlabel="step", ylabel="distance to the minimum $\\|x_t\\|$", yscale="log")
st.plotting.legend_right(ax)
st.plotting.finding(fig, "Full-batch SAM drifts to the $\\lambda_{max}$ minimizer and 1-SAM to the "
                    f"trace minimizer, at a rate ∝ ηρ² (fitted slopes in ρ: "
                    f"{', '.join(f'{s:.2f}' for s in slopes_in_rho)})")
lab.savefig(fig, "sharpness_dynamics", slide=True,
            claims=["wen2023.flow.full_batch_sam_minimizes_lambda_max",
                    "wen2023.flow.one_sam_minimizes_trace", "wen2023.rate.eta_rho_squared",
                    "wen2023.thm48.limit_radius"])

fig, axes = st.plotting.figure(1, 1, width=4.2, height=2.9)
ax = axes[0, 0]
ax.plot(ONE_SAM_LRS, one_sam_final, "o", color=st.plotting.color_for("1-sam"), label="1-SAM endpoint a")
line = np.linspace(0, max(ONE_SAM_LRS), 50)
ax.plot(line, np.polyval(fit, line), color=st.plotting.color_for("1-sam"), linestyle="--",
        label=f"linear fit, a(η→0) = {extrapolated_a:.4f}")
ax.axhline(trace_minimizer, color="black", linewidth=1, label=f"argmin trace = {trace_minimizer:.4f}")
ax.set(title=f"ρ = {ONE_SAM_RHO:g}",
       xlabel="step size η", ylabel="coordinate a of the 1-SAM endpoint",
       xticks=[0.0, 0.005, 0.01, 0.015, 0.02])
st.plotting.legend_right(ax)
st.plotting.finding(fig, f"1-SAM ends O(η) away from the trace minimizer: a(η→0) = "
                    f"{extrapolated_a:.4f} vs argmin trace {trace_minimizer:.4f}")
lab.savefig(fig, "one_sam_endpoint", claims=["wen2023.flow.one_sam_minimizes_trace"])

# %% [markdown]
# **Exercise 4 (open question).** Full-batch SAM and 1-SAM start together and end at different
# minimizers. Using Exercise 3's expansion, explain which curvature each one's ascent "sees":
# full-batch SAM perturbs along the top eigenvector of the whole Hessian, 1-SAM along each
# example's own gradient. Why does that turn into λ_max for one and the trace for the other on
# this toy, whose two examples are 2F1·x3² and 2F2·x4²? What would change if both examples
# depended on x3 only?

# %% tags=["teacher-note"]
# Teacher's note (not on the students' site): the along-the-plane term of ∇L(w + ρu) is
# (ρ²/2)∇(uᵀHu), so each ascent descends the curvature in the direction it perturbs. Full-batch
# SAM near the plane perturbs along the top eigenvector (its 2-cycle lives there): it descends
# λ_max = 2F1. 1-SAM perturbs example i along ∇ℓ_i, which for 2F1·x3² is the x3 axis and for
# 2F2·x4² the x4 axis, so it descends each example's own curvature, 2F1 + 2F2 in total: the
# trace (Wen, Ma, Li 2023, Thms 4.5 and 5.4; there each example's Hessian has rank one near the
# manifold, as here). If both examples depended on x3 only, both ascents would be along x3,
# the trace would be 2F1 + const, and the two methods would go to the same point.

# %%
lab.save_arrays(steps=steps_recorded, **{f"{name}_{key}": np.asarray(t.observed[key])
                                         for name, t in runs.items() for key in OBSERVE},
                rate_lrs=np.asarray(RATE_LRS), rate_rhos=np.asarray(RATE_RHOS), rates=rates,
                one_sam_lrs=np.asarray(ONE_SAM_LRS), one_sam_final_a=one_sam_final)
measured = {
    "final": final, "trace_minimizer_a": float(trace_minimizer),
    "lambda_max_minimizer": [1.0, 0.0],
    "sam_distance_to_lambda_max_minimizer": float(np.hypot(final["sam"]["a"] - 1.0, final["sam"]["b"])),
    "one_sam_distance_to_trace_minimizer": float(np.hypot(final["1-sam"]["a"] - trace_minimizer,
                                                          final["1-sam"]["b"])),
    "rates": rates.tolist(), "slopes_in_lr": slopes_in_lr, "slopes_in_rho": slopes_in_rho,
    "normalized_rate_spread": float(normalized_rates.max() / normalized_rates.min()),
    "one_sam_lrs": list(ONE_SAM_LRS), "one_sam_final_a": one_sam_final.tolist(),
    "one_sam_last_change": float(one_sam_converged.max()),
    "one_sam_extrapolated_a": extrapolated_a,
    "toy_radius_predicted": float(toy_radius), "toy_radius_measured": final["sam"]["normal_distance"],
    "theorem_4_8": theorem_cases,
}
results = lab.finish(measured)

# %% [markdown]
# **Your predictions against the measurements.**

# %%
st.labkit.compare_predictions(results, {
    "wen2023.flow.one_sam_minimizes_trace": predict_one_sam_trace,
})
