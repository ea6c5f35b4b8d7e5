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
# # Diagonal linear networks: which interpolator do GD, SGD, n-SAM and 1-SAM pick?
# Sparse noiseless regression (n = 20 examples, d = 30, a 3-sparse target θ*) with a diagonal
# linear network β = u⊙v started at u = a·1, v = 0 (Andriushchenko & Flammarion, ICML 2022,
# Sec. 4; data and update rules as in the authors' code). Every optimizer reaches zero training
# loss; the question is *which* interpolator, and why 1-SAM's generalizes better.
#
# The answer we measure: gradient flow keeps the effective initialization c = u² − v² fixed and
# lands on argmin{ψ_c(β) : Xβ = y} for the hyperbolic-entropy potential ψ_c (small c → sparse,
# minimum ℓ1). Each discrete step multiplies c by an exact factor (GD: 1 − η²g²; SAM adds a
# −2ηρ·g·g′ term); 1-SAM's factor contains the mean over examples of g_k·g′_k, which is much
# larger than n-SAM's product of means, so 1-SAM shrinks c far more and its interpolator is close
# to argmin ψ_{c_T}: sparser, with a smaller test loss.
#
# What to look at: (1) test loss vs ρ for GD / n-SAM / 1-SAM; (2) loss curves; (3) c over time;
# (4) ‖β‖₁ vs ρ; (5) how far β_T is from argmin ψ_{c_T} and from argmin ψ_{a²}; (6) fine-tuning;
# (7) test loss vs initialization scale a (kernel → rich). Conventions: our 1-SAM ascent is
# ρ·∇ℓ_k with ℓ_k = ½(x_kᵀβ − y_k)², so our ρ is twice the ρ in the authors' code for 1-SAM
# (same ρ for n-SAM); the axes show our ρ.
#
# What we find (papers/andriushchenko2022-diagonal-nets.md has the numbers): 1-SAM beats GD over a
# range of ρ on every data set (on the authors' data by five orders of magnitude), and c_T explains
# its interpolator; n-SAM never beats GD at these settings, and at large ρ its interpolator is not
# the ψ_{c_T} minimizer — two registered claims are expected to fail for that reason.

# %%
import warnings

import jax
import numpy as np

import sharp_theory as st
from sharp_theory.measure import implicit_bias
from sharp_theory.studies import convergence
from sharp_theory.problems.diagonal import (OBSERVABLES, diagonal_linear, initial_params,
                                            sparse_regression_data)
from sharp_theory.theory import diagonal as diagonal_theory

lab = st.labkit.start("diagonal-nets", default_seeds=4, quick_seeds=1)

N, N_TEST, D, K = 20, 1000, 30, 3
STEPS = 10_000
INIT_SCALE = 0.1
RHO_GRID = np.geomspace(1e-3, 1.0, 13)          # our ρ; one sweep per data set
INIT_SCALES = np.geomspace(1e-3, 1.0, 7) if not lab.quick else np.array([1e-3, 0.03, 1.0])
INIT_RHO_GRID = np.geomspace(1e-2, 0.6, 5)       # 1-SAM ρ grid at each a (best one reported)
INTERPOLATES = 1e-6                              # "reached zero training loss": L_T below this
DATA_SEEDS = list(range(lab.seeds))              # data set 0 is the authors' (np.random.seed(0))
lab.record_config(n=N, n_test=N_TEST, d=D, k=K, steps=STEPS, init_scale=INIT_SCALE,
                  rho_grid=RHO_GRID, init_scales=INIT_SCALES, init_rho_grid=INIT_RHO_GRID,
                  interpolation_threshold=INTERPOLATES, data_seeds=DATA_SEEDS,
                  lr_rho_grid=15 / D, rho_convention="ours: 1-SAM rho = 2 x authors' rho")


def optimizers(lr, rho=0.1):
    """The optimizers of this lab at step size ``lr`` (ρ is overridden by the sweep grid)."""
    return {"gd": st.optim.gd(lr),
            "n-sam": st.optim.usam(lr, rho),            # unnormalized, whole batch
            "1-sam": st.optim.usam(lr, rho, m=1),       # unnormalized, per example
            "n-sam (normalized)": st.optim.sam(lr, rho),
            "1-sam (normalized)": st.optim.sam(lr, rho, m=1)}


UNNORMALIZED = ("gd", "n-sam", "1-sam")

# %% [markdown] tags=["predict"]
# **Predict, then run.** On sparse regression GD from a small initialization already finds a
# fairly sparse interpolator. Does 1-SAM (each example perturbed along its own gradient) find
# one with a lower test loss, over a range of ρ? Set `predict_one_sam_beats_gd` to `True` or
# `False`.

# %% tags=["prediction"]
predict_one_sam_beats_gd = True  # SOLUTION

# %% [markdown] tags=["predict"]
# **Predict, then run.** And n-SAM, the full-batch SAM: does it also improve GD's test loss for
# some ρ, on most data sets? Set `predict_n_sam_beats_gd` (the paper finds its effect much
# weaker than 1-SAM's; what will these settings show?). The table at the end of the lab confirms
# or contradicts your prediction with the measured verdict.

# %% tags=["prediction"]
predict_n_sam_beats_gd = False  # SOLUTION

# %% [markdown]
# **Exercise 1 (numeric prediction).** The target θ* is 3-sparse and the n = 20 measurements
# recover it exactly by ℓ1 minimization, so min{‖β‖₁ : Xβ = y} = ‖θ*‖₁. Sections 1 and 2 run
# 1-SAM over 13 values of ρ and keep, on the authors' data set, the interpolator with the lowest
# test loss. From the potential ψ_c described above (what does it become as c → 0?) and from
# what SAM does to c, predict the ratio ‖β_T‖₁ / min{‖β‖₁ : Xβ = y} of that interpolator.
# Graded within 1%: at the best ρ, c has shrunk by orders of magnitude (section 2's middle
# panel), and there the ψ_c minimizer's ℓ1 norm is within 1e-3 of the minimum.

# %% tags=["exercise"]
predicted_one_sam_l1_ratio = 1.0  # SOLUTION

# %% [markdown]
# ## 1. The ρ grid: one sweep per data set (η = 15/d, a = 0.1, 10⁴ steps)

# %%
grid_runs = {}
datasets = {}
for seed in lab.progress(DATA_SEEDS, "rho grid per data set"):
    problem = diagonal_linear(N, N_TEST, D, K, seed, init_scale=INIT_SCALE)
    datasets[seed] = sparse_regression_data(N, N_TEST, D, K, seed)
    grid_runs[seed] = st.sweep(problem, optimizers(15 / D), steps=STEPS, seeds=1,
                               grid={"rho": RHO_GRID}, observe=OBSERVABLES, stride=STEPS // 100)


def final(name, observable):
    """(data set, ρ) array of the final value of a scalar observable."""
    return np.stack([grid_runs[s][name].final(observable)[:, 0] for s in DATA_SEEDS])


def final_c(name):
    """(data set, ρ, d) array of the final effective initialization."""
    return np.stack([grid_runs[s][name].final("c")[:, 0] for s in DATA_SEEDS])


def final_beta(name):
    # Lanes that diverged (the largest ρ) hold huge u and v: their product overflows to inf, and
    # every use below keeps finite entries only, so numpy's overflow warning says nothing new.
    with np.errstate(over="ignore", invalid="ignore"):
        return np.stack([np.asarray(grid_runs[s][name].params["u"])
                         * np.asarray(grid_runs[s][name].params["v"]) for s in DATA_SEEDS])[:, :, 0]


test = {name: final(name, "test_loss") for name in optimizers(1.0)}
train = {name: final(name, "train_loss") for name in optimizers(1.0)}
l1 = {name: final(name, "l1_norm") for name in optimizers(1.0)}
with np.errstate(divide="ignore", invalid="ignore"):
    # mean over coordinates of log10(c_T / a²): how much c shrank (0 = not at all)
    log_c_shrink = {name: np.mean(np.log10(np.abs(final_c(name)) / INIT_SCALE**2), axis=-1)
                    for name in optimizers(1.0)}
theta_l1 = np.array([np.sum(np.abs(datasets[s]["theta_star"])) for s in DATA_SEEDS])


interpolates = {name: train[name] < INTERPOLATES for name in optimizers(1.0)}  # (data set, ρ)


def band(ax, x, values, **kwargs):
    """``st.plotting.band`` without numpy's all-NaN warnings: runs that diverged or did not
    interpolate are NaN on purpose, and a ρ where every data set's run is NaN draws nothing."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return st.plotting.band(ax, x, values, **kwargs)


def median(values):
    """Median over data sets (axis 0), ignoring NaN / non-finite entries."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmedian(np.where(np.isfinite(values), values, np.nan), axis=0)


PAPER = "andriushchenko2022."  # the prefix of this lab's claim ids
fig, axes = st.plotting.figure(1, 3, width=3.1, height=3.0)
ax = axes[0, 0]
for index, name in enumerate(UNNORMALIZED):
    color = st.plotting.color_for(name, index)
    fitted = interpolates[name][0]
    ax.plot(RHO_GRID, test[name][0], marker="o", ms=3, label=name, color=color)
    if not fitted.all():
        st.plotting.plot_run(ax, RHO_GRID[~fitted], test[name][0][~fitted], "o", ms=6, color=color,
                             linestyle="none", label=f"{name}, train loss > {INTERPOLATES:g}",
                             status="not interpolating")
ax.set(xscale="log", yscale="log", xlabel="$\\rho$ (ours; 1-SAM: 2 × authors' $\\rho$)",
       ylabel="test loss", title="authors' data set (seed 0)")
for panel, names in ((1, UNNORMALIZED[1:]), (2, ("n-sam (normalized)", "1-sam (normalized)"))):
    ax = axes[0, panel]
    for index, name in enumerate(names):
        band(ax, RHO_GRID, test[name] / test["gd"], label=name,
                         color=st.plotting.color_for(name, index + 1), axis=0, log=True)
    ax.axhline(1.0, color=st.plotting.color_for("gd"), lw=1, label="gd")
    ax.set(xscale="log", xlabel="$\\rho$ (ours)", ylabel="test loss / GD's",
           title=["", f"unnormalized, {len(DATA_SEEDS)} data sets",
                  f"normalized ascent $\\rho\\nabla/\\|\\nabla\\|$"][panel])
st.plotting.figure_legend(fig, ncol=4, title=f"η = 15/d, a = {INIT_SCALE}, {STEPS} steps; "
                          "bands: median and 10-90% over data sets")
best_one_sam = float(np.nanmin(median(test["1-sam"] / test["gd"])))
best_n_sam = float(np.nanmin(median(test["n-sam"] / test["gd"])))
st.plotting.finding(fig, f"1-SAM's best test loss is {best_one_sam:.2g}× GD's, n-SAM's "
                    f"{best_n_sam:.2g}× (medians over data sets)")
lab.savefig(fig, "test_loss_vs_rho", slide=True,
            claims=[PAPER + "generalization.one_sam_beats_gd", PAPER + "generalization.n_sam_beats_gd",
                    PAPER + "generalization.one_sam_orders_of_magnitude",
                    PAPER + "generalization.n_sam_large_rho_worse"])

# %% [markdown]
# ## 2. Implicit bias: ‖β‖₁ and the distance of β_T to argmin ψ_{c_T} and to argmin ψ_{a²}
# For each run we solve argmin{ψ_c(β) : Xβ = y} by damped Newton on the dual, once with the
# initial c = a² and once with the run's final c_T (|c_T|, clipped at 1e-300: the potential needs
# c > 0). Runs that did not interpolate are left out (NaN).

# %%
def potential_distances(name):
    """(data set, ρ) relative distances of β_T to argmin ψ_{c_T} and to argmin ψ_{a²}."""
    betas, cs = final_beta(name), final_c(name)
    to_final = np.full(betas.shape[:2], np.nan)
    to_initial = np.full(betas.shape[:2], np.nan)
    for i, seed in enumerate(DATA_SEEDS):
        X, y = datasets[seed]["X"], datasets[seed]["y"]
        initial = implicit_bias.potential_minimizer(X, y, INIT_SCALE**2).beta
        for j in range(len(RHO_GRID)):
            if not (interpolates[name][i, j] and np.all(np.isfinite(cs[i, j]))):
                continue
            shrunk = implicit_bias.potential_minimizer(X, y, np.maximum(np.abs(cs[i, j]), 1e-300))
            to_final[i, j] = implicit_bias.relative_distance(betas[i, j], shrunk.beta)
            to_initial[i, j] = implicit_bias.relative_distance(betas[i, j], initial)
    return to_final, to_initial


distances = {name: potential_distances(name) for name in UNNORMALIZED}
min_l1 = np.array([np.sum(np.abs(implicit_bias.min_l1_interpolator(datasets[s]["X"], datasets[s]["y"])))
                   for s in DATA_SEEDS])

fig, axes = st.plotting.figure(1, 3, width=3.1, height=3.3)
for index, name in enumerate(UNNORMALIZED):
    color = st.plotting.color_for(name, index)
    band(axes[0, 0], RHO_GRID, np.where(interpolates[name], l1[name] / theta_l1[:, None], np.nan),
                     label=name, color=color)
    axes[0, 1].plot(RHO_GRID, median(log_c_shrink[name]), color=color, label=name, marker="o", ms=3)
axes[0, 0].axhline(1.0, color="k", ls=":", label="‖θ*‖₁")
axes[0, 0].axhline(np.median(min_l1 / theta_l1), color=st.plotting.PALETTE[2], ls="--", lw=1,
                   label="min ‖β‖₁ s.t. Xβ = y")
axes[0, 0].set(xscale="log", xlabel="$\\rho$ (ours)", ylabel="$\\|\\beta_T\\|_1 / \\|\\theta^*\\|_1$",
               title="ℓ1 norm of the interpolator")
axes[0, 1].set(xscale="log", xlabel="$\\rho$ (ours)", ylabel="$mean_i \\log_{10}(c_{T,i} / a^2)$",
               title="how much $c = u^2 - v^2$ shrank")
for index, name in enumerate(("n-sam", "1-sam")):
    color = st.plotting.color_for(name, index + 1)
    to_final, to_initial = distances[name]
    axes[0, 2].plot(RHO_GRID, median(to_final), color=color, marker="o", ms=3,
                    label=f"{name}: to argmin $\\psi_{{c_T}}$")
    axes[0, 2].plot(RHO_GRID, median(to_initial), color=color, ls="--",
                    label=f"{name}: to argmin $\\psi_{{a^2}}$")
gd_final, gd_initial = distances["gd"]
axes[0, 2].axhline(np.nanmedian(gd_initial), color="k", ls="--", lw=1,
                   label="gd: to argmin $\\psi_{a^2}$")
axes[0, 2].set(xscale="log", yscale="log", xlabel="$\\rho$ (ours)",
               ylabel="$\\|\\beta_T - \\beta_\\psi\\|_2 / \\|\\beta_\\psi\\|_2$",
               title="distance to potential minimizers")
st.plotting.figure_legend(fig, ncol=4, title=f"η = 15/d, a = {INIT_SCALE}; medians over data sets; "
                          "runs that do not interpolate are left out")
st.plotting.finding(fig, "SAM shrinks the effective initialization c, and 1-SAM's interpolator "
                    "has a smaller ℓ1 norm than GD's")
lab.savefig(fig, "implicit_bias_vs_rho",
            claims=[PAPER + "implicit_bias.c_shrinkage_order", PAPER + "implicit_bias.gd_initial_potential",
                    PAPER + "implicit_bias.n_sam_shrunk_potential",
                    PAPER + "implicit_bias.one_sam_shrunk_potential",
                    PAPER + "generalization.one_sam_l1_toward_sparse"])
# Exercise 1: 1-SAM's best interpolating run on data set 0, against the minimum ℓ1 norm.
best_one_sam_rho = int(np.argmin(np.where(interpolates["1-sam"][0], test["1-sam"][0], np.inf)))
one_sam_l1_ratio = float(l1["1-sam"][0, best_one_sam_rho] / min_l1[0])
print(f"1-SAM's best interpolator (ρ = {RHO_GRID[best_one_sam_rho]:.3g}): ‖β‖₁ / min ‖β‖₁ = "
      f"{one_sam_l1_ratio:.5f}; GD's: {l1['gd'][0, 0] / min_l1[0]:.5f}")

# %% tags=["exercise-check"]
st.labkit.check_number("predicted_one_sam_l1_ratio", predicted_one_sam_l1_ratio, one_sam_l1_ratio,
                       rtol=0.01)

# %% [markdown]
# ## 3. Loss curves (data set 0 = the authors'; our ρ = 0.3, i.e. 0.15 in their 1-SAM units)
# GD vs n-SAM (η = 5/d, a = 0.1), GD vs 1-SAM (η = 5/d, a = 0.02), GD vs SGD vs 1-SAM
# (η = 10/d, a = 0.1; SGD draws one example per step, with replacement, over several seeds).

# %%
CURVE_RHO = 0.3
CURVE_STRIDE = 50
curve_settings = [("GD vs n-SAM", 5 / D, 0.1, ("gd", "n-sam")),
                  ("GD vs 1-SAM", 5 / D, 0.02, ("gd", "1-sam")),
                  ("GD vs SGD vs 1-SAM", 10 / D, 0.1, ("gd", "sgd", "1-sam"))]
problem = diagonal_linear(N, N_TEST, D, K, 0, init_scale=INIT_SCALE)
curves = {}
for title, lr, scale, names in lab.progress(curve_settings, "loss curves"):
    # The same four optimizers in every panel (one compilation; lr is a leaf), plotted selectively.
    curve_optimizers = {"gd": st.optim.gd(lr), "sgd": st.optim.sgd(lr, batch_size=1, replace=True),
                        "n-sam": st.optim.usam(lr, CURVE_RHO), "1-sam": st.optim.usam(lr, CURVE_RHO, m=1)}
    curves[title] = st.sweep(problem, curve_optimizers, steps=STEPS, seeds=lab.seeds,
                             observe=OBSERVABLES, stride=CURVE_STRIDE, params0=initial_params(scale, D))

fig, axes = st.plotting.figure(1, 3, width=3.1, height=2.7)
for ax, (title, lr, scale, names) in zip(axes[0], curve_settings):
    result = curves[title]
    for index, name in enumerate(names):
        color = st.plotting.color_for(name, index)
        steps = result[name].steps
        band(ax, steps[1:], result[name].observed["test_loss"][:, 1:], label=f"{name} test",
                         color=color)
        ax.plot(steps[1:], np.median(result[name].observed["train_loss"][:, 1:], axis=0), color=color,
                ls="--", lw=1, label=f"{name} train")
    ax.set(xscale="log", yscale="log", xlabel="step", ylabel="loss",
           title=f"η = {lr * D:g}/d, a = {scale}, ρ = {CURVE_RHO}")
st.plotting.figure_legend(fig, ncol=4, title="bands: median and 10-90% over seeds")
last_panel = curves[curve_settings[-1][0]]
final_test = {name: float(np.median(last_panel[name].observed["test_loss"][:, -1]))
              for name in curve_settings[-1][3]}
st.plotting.finding(fig, f"Final test loss (η = 10/d): " + ", ".join(
    f"{name} {value:.2g}" for name, value in final_test.items()) + "; dashed: training loss")
lab.savefig(fig, "loss_curves", claims=[PAPER + "generalization.one_sam_beats_gd"])

# %% [markdown]
# ## 4. The effective initialization over time
# mean_i log10(c_t,i / a²) along the runs of the third panel above (η = 10/d, a = 0.1, ρ = 0.3),
# n-SAM included. Each GD step multiplies c_i by 1 − η²g_i²; SAM's factors shrink it more, 1-SAM's
# most. SGD's single-example gradients are large too, so SGD also shrinks c (Pesme et al. 2021).

# %%
c_runs = curves["GD vs SGD vs 1-SAM"]
fig, axes = st.plotting.figure(1, 1, width=4.2, height=2.8)
ax = axes[0, 0]
for index, name in enumerate(("gd", "sgd", "n-sam", "1-sam")):
    c_path = np.asarray(c_runs[name].observed["c"])  # (seed, record, d)
    with np.errstate(divide="ignore"):
        shrink = np.mean(np.log10(np.abs(c_path) / INIT_SCALE**2), axis=-1)
    band(ax, c_runs[name].steps, shrink, label=name, color=st.plotting.color_for(name, index))
ax.set(xscale="symlog", xlabel="step", ylabel="$mean_i \\log_{10}(c_{t,i} / a^2)$",
       title=f"η = 10/d, a = {INIT_SCALE}, ρ = {CURVE_RHO}")
st.plotting.legend_right(ax)
final_shrink = {}
for name in ("gd", "sgd", "n-sam", "1-sam"):
    with np.errstate(divide="ignore"):
        final_shrink[name] = float(np.median(np.mean(np.log10(np.abs(np.asarray(
            c_runs[name].observed["c"])[:, -1]) / INIT_SCALE**2), axis=-1)))
st.plotting.finding(fig, "The effective initialization c shrinks, by final mean $\\log_{10}(c/a^2)$: "
                    + ", ".join(f"{name} {value:.2g}" for name, value in final_shrink.items()))
lab.savefig(fig, "effective_init_over_time", claims=[PAPER + "implicit_bias.c_shrinkage_order"])

# %% [markdown]
# **Exercise 2 (open question).** n-SAM and 1-SAM use the same ρ and the same examples, yet
# 1-SAM shrinks c by orders of magnitude more. Per coordinate, one step multiplies c by a factor
# whose SAM term is −2ηρ times g·g′ for n-SAM (product of batch means) and times the mean over
# examples of g_k·g′_k for 1-SAM. Explain why the second is much larger near an interpolator,
# why a smaller c gives a sparser interpolator, and why SGD (one example per step) shrinks c as
# well, without any ascent step.

# %% tags=["teacher-note"]
# Teacher's note (not on the students' site): near an interpolator the full-batch gradient
# g = Xᵀr/n → 0 (r the residual), so n-SAM's product of means vanishes quadratically; the
# per-example coefficients g_k = x_k r_k do not cancel each other, and the mean of the products
# g_k·g′_k (≈ the mean of g_k² times a positive factor) stays of the order of the residuals'
# spread: 1-SAM keeps shrinking c while the residuals are not all zero (a "variance" term, as in
# SGD's noise). The interpolator is argmin ψ_c over Xβ = y; as c → 0, ψ_c/log(1/c) → ‖β‖₁ (the
# hyperbolic-entropy potential of Woodworth et al. 2020), so shrinking c moves the solution from
# the min-ℓ2 (kernel) towards the min-ℓ1 (rich, sparse) interpolator. SGD's factor is
# 1 − η²g_k² with the single example's g_k, which does not vanish with the full-batch gradient,
# so SGD's noise also shrinks c (Pesme, Pillaud-Vivien, Flammarion 2021); section 4 compares
# the sizes.

# %% [markdown]
# ## 5. Fine-tuning at η = 1/d: ERM → 1-SAM and 1-SAM → ERM (10⁴ + 10⁴ steps, ρ = 0.3)

# %%
FINETUNE_LR = 1 / D
problem = diagonal_linear(N, N_TEST, D, K, 0, init_scale=INIT_SCALE)
finetune_opts = {"erm": st.optim.gd(FINETUNE_LR), "1-sam": st.optim.usam(FINETUNE_LR, CURVE_RHO, m=1)}
phases = {}
for first, second in (("erm", "1-sam"), ("1-sam", "erm"), ("erm", "erm")):
    head = st.run(problem, finetune_opts[first], steps=STEPS, key=jax.random.key(0),
                  observe=OBSERVABLES, stride=CURVE_STRIDE)
    tail = st.run(problem, finetune_opts[second], steps=STEPS, key=jax.random.key(1),
                  observe=OBSERVABLES, stride=CURVE_STRIDE, params0=head.params)
    phases[f"{first} → {second}"] = (
        np.concatenate([head.steps, STEPS + tail.steps[1:]]),
        np.concatenate([head.observed["test_loss"], tail.observed["test_loss"][1:]]))

fig, axes = st.plotting.figure(1, 1, width=4.2, height=2.8)
ax = axes[0, 0]
styles = {"erm → 1-sam": dict(ls="--", lw=2.4), "1-sam → erm": dict(ls="-"), "erm → erm": dict(ls=":", lw=2)}
for index, (label, (steps, values)) in enumerate(phases.items()):
    # ERM → 1-SAM lies on top of ERM → ERM: dashed and dotted so that both stay visible.
    ax.plot(steps[1:], values[1:], label=f"{label} (final {values[-1]:.3g})",
            color=st.plotting.PALETTE[(2, 3, 4)[index]], **styles[label])
ax.axvline(STEPS, color="k", ls=":", lw=1)
ax.set(xscale="log", yscale="log", xlabel="step", ylabel="test loss",
       title=f"η = 1/d, a = {INIT_SCALE}, 1-SAM ρ = {CURVE_RHO} (switch at {STEPS})")
st.plotting.legend_right(ax)
finals = {label: float(values[-1]) for label, (steps, values) in phases.items()}
st.plotting.finding(fig, f"1-SAM then ERM ends at test loss {finals['1-sam → erm']:.3g}; ERM then "
                    f"1-SAM at {finals['erm → 1-sam']:.3g}, ERM alone at {finals['erm → erm']:.3g}")
lab.savefig(fig, "finetuning", claims=[PAPER + "finetuning.erm_then_one_sam",
                                       PAPER + "finetuning.one_sam_then_erm"])
finetune_final = {label: float(values[-1]) for label, (steps, values) in phases.items()}

# %% [markdown]
# ## 6. Kernel → rich: test loss vs initialization scale a (GD and 1-SAM, η = 5/d)
# One sweep per a (same shapes: compiled once); 1-SAM is reported at its best ρ of a small grid.

# %%
problem = diagonal_linear(N, N_TEST, D, K, 0, init_scale=INIT_SCALE)
scale_test = {"gd": [], "1-sam (best ρ)": []}
for scale in lab.progress(INIT_SCALES, "init scales"):
    result = st.sweep(problem, {"gd": st.optim.gd(5 / D), "1-sam": st.optim.usam(5 / D, 0.1, m=1)},
                      steps=STEPS, grid={"rho": INIT_RHO_GRID}, observe=OBSERVABLES, stride=STEPS,
                      params0=initial_params(scale, D))
    scale_test["gd"].append(float(result["gd"].final("test_loss")[0, 0]))
    one_sam = np.where(result["1-sam"].final("train_loss")[:, 0] < INTERPOLATES,
                       result["1-sam"].final("test_loss")[:, 0], np.nan)
    scale_test["1-sam (best ρ)"].append(float(np.nanmin(one_sam)) if np.any(np.isfinite(one_sam))
                                         else float("nan"))

fig, axes = st.plotting.figure(1, 1, width=4.2, height=2.8)
ax = axes[0, 0]
for index, (name, values) in enumerate(scale_test.items()):
    ax.plot(INIT_SCALES, values, marker="o", label=name, color=st.plotting.color_for(name, index))
ax.set(xscale="log", yscale="log", xlabel="initialization scale a (u₀ = a·1, v₀ = 0)",
       ylabel="test loss at step 10⁴",
       title="η = 5/d, authors' data; 1-SAM: best of ρ ∈ "
             f"({', '.join(f'{r:.2g}' for r in INIT_RHO_GRID)}), interpolating runs")
st.plotting.legend_right(ax)
small, large = int(np.argmin(INIT_SCALES)), int(np.argmax(INIT_SCALES))
st.plotting.finding(fig, "Kernel → rich: GD's test loss is " + f"{scale_test['gd'][large]:.2g} at "
                    f"a = {INIT_SCALES[large]:g} and {scale_test['gd'][small]:.2g} at "
                    f"a = {INIT_SCALES[small]:g}; 1-SAM's " + f"{scale_test['1-sam (best ρ)'][large]:.2g}"
                    f" and {scale_test['1-sam (best ρ)'][small]:.2g}")
lab.savefig(fig, "test_loss_vs_init_scale", claims=[PAPER + "implicit_bias.kernel_to_rich"])

# %% [markdown]
# **Exercise 3 (coding).** The loss is L(u, v) = ‖X(u⊙v) − y‖²/(2n). Write its gradient: return
# the pair (∂L/∂u, ∂L/∂v) as a (2, d) array. It must match JAX's gradient of the library's
# `diagonal_linear` loss to 1e-12 on random instances.

# %% tags=["exercise"]
def my_diagonal_gradient(X, y, u, v):
    """(∂L/∂u, ∂L/∂v) of ‖X(u⊙v) − y‖²/(2n), stacked as a (2, d) array."""
    # BEGIN SOLUTION
    g = X.T @ (X @ (u * v) - y) / X.shape[0]
    return np.stack([g * v, g * u])
    # END SOLUTION


# %% tags=["exercise-check"]
def library_diagonal_gradient(X, y, u, v):
    template = diagonal_linear(len(y), 4, len(u), 3, 0, init_scale=1.0)
    grads = jax.grad(template.loss)({"u": jax.numpy.asarray(u), "v": jax.numpy.asarray(v)},
                                    {"x": jax.numpy.asarray(X), "y": jax.numpy.asarray(y)})
    return np.stack([np.asarray(grads["u"]), np.asarray(grads["v"])])


gradient_cases = []
for trial in range(3):
    case_rng = np.random.default_rng(50 + trial)
    gradient_cases.append((case_rng.normal(size=(8, 10)), case_rng.normal(size=8),
                           case_rng.normal(size=10), case_rng.normal(size=10)))
st.labkit.check_function("my_diagonal_gradient", my_diagonal_gradient, library_diagonal_gradient,
                         gradient_cases, atol=1e-12)

# %% [markdown]
# ## 7. Exact checks: one-step factors of c, and the two limits of the potential minimizer

# %%
symbolic_residuals = {"gd": diagonal_theory.gd_step()["residual"],
                      "n-sam": diagonal_theory.n_sam_step()["residual"],
                      "1-sam": diagonal_theory.one_sam_step(3)["residual"]}


@jax.jit
def one_step(problem, optimizer, params):
    """One step of ``optimizer`` on the full batch (jitted once per step rule)."""
    new, _, _ = optimizer.step(params, optimizer.init(params), problem.loss, problem.examples,
                               optimizer.hparams, jax.random.key(0))
    return new


rng = np.random.default_rng(0)
one_step_errors = {"gd": 0.0, "n-sam": 0.0, "1-sam": 0.0}
for trial in range(5 if lab.quick else 20):
    problem = diagonal_linear(8, 4, 10, 3, trial, init_scale=1.0)
    X, y = np.asarray(problem.examples["x"]), np.asarray(problem.examples["y"])
    u, v = rng.normal(size=10), rng.normal(size=10)
    params = {"u": jax.numpy.asarray(u), "v": jax.numpy.asarray(v)}
    lr, rho = rng.uniform(0.01, 0.3), rng.uniform(0.0, 0.5)
    n_sam_g = diagonal_theory.n_sam_coefficients(X, y, u, v, rho)
    one_sam_g = diagonal_theory.one_sam_coefficients(X, y, u, v, rho)
    factors = {"gd": diagonal_theory.gd_factor(lr, diagonal_theory.gradient_coefficient(X, y, u * v)),
               "n-sam": diagonal_theory.n_sam_factor(lr, rho, *n_sam_g),
               "1-sam": diagonal_theory.one_sam_factor(lr, rho, *one_sam_g)}
    for name, optimizer in (("gd", st.optim.gd(lr)), ("n-sam", st.optim.usam(lr, rho)),
                            ("1-sam", st.optim.usam(lr, rho, m=1))):
        new = one_step(problem, optimizer, params)
        u_next, v_next = np.asarray(new["u"]), np.asarray(new["v"])
        # c = u² − v² is a difference: its rounding error scales with u² + v², not with |c|.
        error = np.max(np.abs((u_next**2 - v_next**2) - factors[name] * (u**2 - v**2))
                       / (u_next**2 + v_next**2))
        # np.max, not max: max(0.0, nan) is 0.0 and would hide a NaN step.
        one_step_errors[name] = float(np.max([one_step_errors[name], float(error)]))

limit_l1, limit_l2 = [], []
for seed in DATA_SEEDS:
    X, y = datasets[seed]["X"], datasets[seed]["y"]
    limit_l1.append(implicit_bias.relative_distance(
        implicit_bias.potential_minimizer(X, y, 1e-12).beta, implicit_bias.min_l1_interpolator(X, y)))
    limit_l2.append(implicit_bias.relative_distance(
        implicit_bias.potential_minimizer(X, y, 1e4).beta, implicit_bias.min_l2_interpolator(X, y)))
print("one-step factor errors:", one_step_errors, "symbolic residuals:", symbolic_residuals)
print("potential limits: c=1e-12 vs min-l1", max(limit_l1), "; c=1e4 vs min-l2", max(limit_l2))

# %% [markdown]
# ## 8. Stochastic SAM's convergence rate (Sec. 5; papers/andriushchenko2022-diagonal-nets.md)
# Unnormalized SAM with one-example stochastic gradients (the same example for the ascent and the
# descent), step η = η₀/√T and radius ρ = ρ₀·T^(-1/4) tuned to the horizon T. The theorem bounds
# the average over t < T of E‖∇L(w_t)‖² by O(1/√T): √T times the measured average must stay
# bounded as T grows. SGD with the same steps (ρ = 0) is shown for comparison.

# %%
RATE_HORIZONS = [100, 400, 1600] if lab.quick else [250, 1000, 4000, 16000]
RATE_LR0, RATE_RHO0, RATE_SEEDS = 1.0, 0.2, (4 if lab.quick else 8)
lab.record_config(rate_horizons=RATE_HORIZONS, rate_lr0=RATE_LR0, rate_rho0=RATE_RHO0,
                  rate_seeds=RATE_SEEDS, rate_batch_size=1)
problem = diagonal_linear(N, N_TEST, D, K, 0, init_scale=INIT_SCALE)


def tuned(name):
    def make(horizon):
        lr, rho = convergence.horizon_schedule(horizon, RATE_LR0, RATE_RHO0)
        return (st.optim.usam(lr, rho, batch_size=1) if name == "usam"
                else st.optim.sgd(lr, batch_size=1))
    return make


rate_average = {name: convergence.average_squared_gradient_norm(
                    problem, tuned(name), RATE_HORIZONS, seeds=RATE_SEEDS)
                for name in ("usam", "sgd")}
rate_normalized = {name: values * np.sqrt(RATE_HORIZONS) for name, values in rate_average.items()}
rate_exponents = {name: convergence.rate_exponent(RATE_HORIZONS, values)
                  for name, values in rate_average.items()}
# The optimization term 2 (L(w0) - L*) / (eta0 sqrt(T)) of the bound (L* = 0: n < d).
rate_leading_term = convergence.leading_term(problem, RATE_LR0, RATE_HORIZONS)

fig, axes = st.plotting.figure(1, 1, width=4.2, height=2.8)
ax = axes[0, 0]
for index, (name, values) in enumerate(rate_average.items()):
    ax.plot(RATE_HORIZONS, values, marker="o", color=st.plotting.color_for(name, index),
            label=f"{name} (slope {rate_exponents[name]:.3f})")
reference = rate_average["usam"][0] * np.sqrt(RATE_HORIZONS[0] / np.asarray(RATE_HORIZONS))
ax.plot(RATE_HORIZONS, reference, "k:", label="$\\propto 1/\\sqrt{T}$")
ax.plot(RATE_HORIZONS, rate_leading_term, "k--", lw=1, label="2 L(w₀) / (η₀ √T)")
ax.set(xscale="log", yscale="log", xlabel="horizon T (steps)",
       ylabel="$(1/T) \\sum_{t<T} \\|\\nabla L(w_t)\\|^2$ (mean of seeds)",
       title=f"η = {RATE_LR0}/√T, ρ = {RATE_RHO0}·$T^{{-1/4}}$, batch 1")
st.plotting.legend_right(ax)
st.plotting.finding(fig, f"Stochastic SAM's average squared gradient norm falls like "
                    f"$T^{{{rate_exponents['usam']:.2f}}}$ (bound: $T^{{-1/2}}$)")
lab.savefig(fig, "stochastic_rate", claims=[PAPER + "convergence.stochastic_usam_rate"])
print("average squared gradient norm:", rate_average, "exponents:", rate_exponents)

# %% [markdown]
# ## 9. Numbers for the claims

# %%
# Per data set, over the ρ values where the run interpolates (train loss < 1e-6).
def best_interpolating(name):
    """Per data set: index of the ρ with the lowest test loss among interpolating runs."""
    masked = np.where(interpolates[name], test[name], np.inf)
    return np.argmin(masked, axis=1)


rows = np.arange(len(DATA_SEEDS))
best = best_interpolating("1-sam")
gd_test = test["gd"][:, 0]
one_sam_better = interpolates["1-sam"] & (test["1-sam"] < test["gd"])
n_sam_masked = np.where(interpolates["n-sam"], test["n-sam"], np.inf)
largest_n_sam = np.array([np.max(np.flatnonzero(row)) for row in interpolates["n-sam"]])
all_three = interpolates["gd"] & interpolates["n-sam"] & interpolates["1-sam"]
c_ordered = (all_three & (log_c_shrink["1-sam"] < log_c_shrink["n-sam"])
             & (log_c_shrink["n-sam"] < log_c_shrink["gd"]))
l1_nonincreasing = [bool(np.all(np.diff(l1["1-sam"][i][interpolates["1-sam"][i]]) <= 1e-9)) for i in rows]


def shrunk_potential_ratios(name, moved_at=0.02):
    """dist(β_T, argmin ψ_{c_T}) / dist(β_T, argmin ψ_{a²}) over the (data set, ρ) runs that
    interpolate and ended more than ``moved_at`` (relative) away from argmin ψ_{a²}."""
    to_final, to_initial = distances[name]
    moved = np.isfinite(to_initial) & (to_initial > moved_at)
    return to_final[moved] / to_initial[moved], int(np.sum(moved))


one_sam_ratio, one_sam_moved = shrunk_potential_ratios("1-sam")
n_sam_ratio, n_sam_moved = shrunk_potential_ratios("n-sam")
measured = {
    "rho_grid": RHO_GRID, "data_seeds": DATA_SEEDS,
    "gd_test_loss": gd_test,
    "n_sam_test_loss_dataset0": test["n-sam"][0], "one_sam_test_loss_dataset0": test["1-sam"][0],
    "n_sam_test_ratio_median": median(test["n-sam"] / test["gd"]),
    "one_sam_test_ratio_median": median(test["1-sam"] / test["gd"]),
    "n_sam_normalized_test_ratio_median": median(test["n-sam (normalized)"] / test["gd"]),
    "one_sam_normalized_test_ratio_median": median(test["1-sam (normalized)"] / test["gd"]),
    "one_sam_interpolating_count": np.sum(interpolates["1-sam"], axis=1),
    "one_sam_beats_gd_count": np.sum(one_sam_better, axis=1),
    "one_sam_best_rho": RHO_GRID[best],
    "one_sam_best_test_ratio": test["1-sam"][rows, best] / gd_test,
    "n_sam_min_test_ratio": np.min(n_sam_masked, axis=1) / gd_test,
    "n_sam_largest_rho": RHO_GRID[largest_n_sam],
    "n_sam_largest_rho_test_ratio": test["n-sam"][rows, largest_n_sam] / gd_test,
    "log_c_shrink_gd_dataset0": log_c_shrink["gd"][0],
    "log_c_shrink_n_sam_dataset0": log_c_shrink["n-sam"][0],
    "log_c_shrink_one_sam_dataset0": log_c_shrink["1-sam"][0],
    "c_order_holds_count": int(np.sum(c_ordered)), "all_interpolate_count": int(np.sum(all_three)),
    "theta_star_l1": theta_l1, "min_l1_norm": min_l1, "gd_l1_norm": l1["gd"][:, 0],
    "one_sam_best_l1_norm": l1["1-sam"][rows, best],
    "gd_distance_to_theta_star": final("gd", "distance_to_theta_star")[:, 0],
    "one_sam_best_distance_to_theta_star": final("1-sam", "distance_to_theta_star")[rows, best],
    "one_sam_best_l1_gap_ratio": (np.abs(l1["1-sam"][rows, best] - theta_l1)
                                  / np.abs(l1["gd"][:, 0] - theta_l1)),
    "one_sam_l1_nonincreasing": l1_nonincreasing,
    "gd_dist_to_initial_potential": distances["gd"][1][:, 0],
    "gd_dist_to_final_potential": distances["gd"][0][:, 0],
    "one_sam_dist_to_final_potential_dataset0": distances["1-sam"][0][0],
    "one_sam_dist_to_initial_potential_dataset0": distances["1-sam"][1][0],
    "n_sam_dist_to_final_potential_dataset0": distances["n-sam"][0][0],
    "n_sam_dist_to_initial_potential_dataset0": distances["n-sam"][1][0],
    "one_sam_potential_ratio_max": float(np.max(one_sam_ratio)) if one_sam_moved else float("nan"),
    "one_sam_potential_ratio_count": one_sam_moved,
    "n_sam_potential_ratio_max": float(np.max(n_sam_ratio)) if n_sam_moved else float("nan"),
    "n_sam_potential_ratio_count": n_sam_moved,
    "finetune_test_loss": finetune_final,
    "init_scales": INIT_SCALES, "init_scale_gd_test_loss": scale_test["gd"],
    "init_scale_one_sam_best_test_loss": scale_test["1-sam (best ρ)"],
    "one_step_max_relative_error": one_step_errors,
    "one_step_symbolic_residuals_zero": all(residual == 0 for residual in symbolic_residuals.values()),
    "potential_c_1e-12_vs_min_l1": float(np.max(limit_l1)),  # np.max propagates a NaN
    "potential_c_1e4_vs_min_l2": float(np.max(limit_l2)),
    "rate_horizons": RATE_HORIZONS,
    "rate_usam_average_squared_gradient": rate_average["usam"],
    "rate_sgd_average_squared_gradient": rate_average["sgd"],
    "rate_usam_normalized": rate_normalized["usam"],
    "rate_usam_exponent": rate_exponents["usam"], "rate_sgd_exponent": rate_exponents["sgd"],
    "rate_leading_term": rate_leading_term,
    "rate_usam_tail_exponent": convergence.rate_exponent(RATE_HORIZONS[-2:],
                                                         rate_average["usam"][-2:]),
}

def array_key(prefix, name):
    """An npz-friendly key: 'test_loss_1_sam_normalized' for ('test_loss', '1-sam (normalized)')."""
    return prefix + "_" + "".join(ch if ch.isalnum() else "_" for ch in name).strip("_").replace("__", "_")


arrays = {"rho_grid": RHO_GRID, "init_scales": INIT_SCALES,
          "init_scale_gd_test_loss": scale_test["gd"],
          "init_scale_one_sam_test_loss": scale_test["1-sam (best ρ)"]}
for prefix, table in (("test_loss", test), ("train_loss", train), ("l1_norm", l1)):
    arrays.update({array_key(prefix, name): values for name, values in table.items()})
arrays.update({array_key("final_c", name): final_c(name) for name in UNNORMALIZED})
arrays.update({array_key("distance_to_theta_star", name): final(name, "distance_to_theta_star")
               for name in UNNORMALIZED})
lab.save_arrays(**arrays)
results = lab.finish(measured)

# %% [markdown]
# **Your predictions against the measurements.**

# %%
st.labkit.compare_predictions(results, {
    "andriushchenko2022.generalization.one_sam_beats_gd": predict_one_sam_beats_gd,
    "andriushchenko2022.generalization.n_sam_beats_gd": predict_n_sam_beats_gd,
})
