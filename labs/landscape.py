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
# # Loss landscapes around GD and SAM solutions, and which sharpness tracks generalization
# Foret et al. (ICLR 2021) report that SAM's minima have a much smaller top Hessian eigenvalue
# λ_max and a smaller ratio λ_max/λ_5 than SGD's, and that m-sharpness with small m correlates
# better with the generalization gap than full-batch sharpness. This lab trains GD and SAM from
# the same start on several problems of this package and looks at the landscape around each
# solution three ways:
#
# 1. the loss along the straight line from the GD solution (t = 0) to the SAM solution (t = 1);
# 2. 2-D slices along two random filter-normalized directions (Li et al., NeurIPS 2018: each
#    unit's slice of the direction is rescaled to the norm of that unit's weights, so the
#    picture does not depend on how the weights are scaled) — same directions for GD and SAM;
# 3. 2-D slices along the top two Hessian eigenvectors of each solution.
#
# It then measures every sharpness of ``st.measure`` at both solutions, and on diagonal linear
# networks ranks a family of solutions (GD, SAM, 1-SAM at several ρ) by m-sharpness (m = 1) and
# by full-batch sharpness, against their generalization gap (Kendall τ).
#
# What to look at: the slices — a SAM solution's low-loss basin (dark) is wider; the numbers
# table in results.json; the scatter plot — which sharpness orders the gaps.

# %%
import jax
import jax.numpy as jnp
import matplotlib.colors
import numpy as np
import scipy.stats

import sharp_theory as st
from sharp_theory.observables import of_params_and_problem

lab = st.labkit.start("landscape", default_seeds=1, quick_seeds=1)

SLICE_POINTS = 15 if lab.quick else 31
SLICE_SPAN = 1.0  # slices cover [-1, 1] x [-1, 1] in units of the (normalized) directions
EIGEN_SPAN = 0.5  # eigenvector slices: unit eigenvectors, ±0.5
LINE_POINTS = 41
SHARPNESS_RHO = 0.05
M_SHARPNESS_RHOS = (0.01, 0.02, 0.05, 0.1, 0.2)
lab.record_config(slice_points=SLICE_POINTS, slice_span=SLICE_SPAN, eigen_span=EIGEN_SPAN,
                  sharpness_rho=SHARPNESS_RHO, m_sharpness_training_rhos=M_SHARPNESS_RHOS)


# %% [markdown]
# ## The problems
# Each case: a problem, GD and SAM settings, and (when the problem has one) a test loss.

# %%
def tanh_loss(params, batch):
    prediction = jnp.tanh(batch["x"][:, None] * params["w"] + params["b"]) @ params["v"]
    return 0.5 * jnp.mean((prediction - batch["y"]) ** 2)


def tanh_regression():
    rng = np.random.default_rng(0)
    x = np.linspace(-1, 1, 16)
    y = np.sin(3 * x) + 0.1 * rng.standard_normal(16)
    params = {"w": jnp.asarray(rng.standard_normal(20)), "b": jnp.asarray(rng.standard_normal(20)),
              "v": jnp.asarray(rng.standard_normal(20) / np.sqrt(20))}
    problem = st.problems.from_loss(tanh_loss, params, data={"x": x, "y": y}, name="tanh-regression")
    grid = np.linspace(-1, 1, 200)
    test_batch = {"x": jnp.asarray(grid), "y": jnp.asarray(np.sin(3 * grid))}
    return problem, (lambda p: tanh_loss(p, test_batch))


def diagonal_linear_case():
    problem = st.problems.diagonal_linear()
    from sharp_theory.problems.diagonal import test_set_loss
    return problem, (lambda p: test_set_loss(p, problem))


def matrix_sensing_case():
    return st.problems.matrix_sensing(d1=10, rank=2), None


def nop_case():
    return st.problems.nop_toy(noise=0.0), None


def conv_relu_case():
    # logistic loss on signal/noise patches (Chen et al. 2023 setting, small: d = 100, 20 examples,
    # 2000 parameters, so the matrix-free spectrum path is used); no test *loss* is plotted
    return st.problems.conv_relu_signal_noise(dim=100, n_train=20, n_test=500), None


# name -> (builder, lr, rho, steps); problems another helper is still building are skipped
# (and listed in results.json) when their constructor is missing or fails.
CASES = {
    "tanh net": (tanh_regression, 0.05, 0.05, 20_000),
    "NOP toy": (nop_case, 0.05, 0.1, 20_000),
    "diagonal linear net": (diagonal_linear_case, 0.1, 0.05, 20_000),
    "matrix sensing": (matrix_sensing_case, 0.1, 0.05, 20_000),
    "conv-ReLU net": (conv_relu_case, 0.5, 0.1, 5_000),
}
if lab.quick:  # one from_loss problem, the one the gap study needs, and the logistic net (cheap:
    # 2000 parameters; the same steps as the full run, so the prediction below is decided here too)
    CASES = {name: CASES[name] for name in ("tanh net", "diagonal linear net", "conv-ReLU net")}
problems, skipped = {}, {}
for name, (builder, lr, rho, steps) in CASES.items():
    try:
        problems[name] = builder()
    except (AttributeError, ImportError, TypeError, ValueError) as error:  # not built (yet)
        skipped[name] = f"{type(error).__name__}: {error}"
lab.record_config(cases={name: {"lr": c[1], "rho": c[2], "steps": c[3]} for name, c in CASES.items()},
                  skipped=skipped)


# %% [markdown] tags=["predict"]
# **Predict, then run.** SAM is said to find flatter minima. On a logistic-loss network trained
# to (near) separation, will SAM's solution have a smaller top Hessian eigenvalue than GD's? Set
# `predict_sam_flatter_logistic` to `True` or `False` (think about what happens to the Hessian
# of the logistic loss as the margin grows). The table at the end of the lab confirms or
# contradicts your prediction with the measured verdict.

# %% tags=["prediction"]
predict_sam_flatter_logistic = False  # SOLUTION

# %% [markdown]
# ## Train GD and SAM from the same start

# %%
def train_loss(params, problem):
    return st.measure.full_batch_loss(problem)(params)


solutions = {}
for name in lab.progress(list(problems), "train"):
    problem, _ = problems[name]
    _, lr, rho, steps = CASES[name]
    runs = st.sweep(problem, {"gd": st.optim.gd(lr), "sam": st.optim.sam(lr, rho)}, steps=steps,
                    seeds=1, observe={"loss": of_params_and_problem(train_loss)}, stride=steps)
    solutions[name] = {opt: jax.tree_util.tree_map(lambda x: x[0], runs[opt].params) for opt in ("gd", "sam")}
    solutions[name]["status"] = {opt: str(np.ravel(runs[opt].status)[0]) for opt in ("gd", "sam")}


# %% [markdown]
# ## Sharpness of each solution, by every definition
# The worst-case ε-sharpness `max_{‖ε‖ ≤ ρ} L(w + ε) − L(w)` (Foret et al.'s, with ρ = 0.05
# here) is found by projected gradient ascent (`st.measure.epsilon_sharpness`).
#
# **Exercise 1 (derivation).** At a minimum w (∇L = 0) expand L(w + ε) to second order and
# maximize over the ball: write the ε-sharpness as a formula in `rho` and `lam` (λ_max of the
# Hessian). It is checked symbolically, then numerically: evaluated at the λ_max of GD's
# tanh-net solution it must be within 2% of the ε-sharpness the lab measures there (GD's
# solution fits the data, so the gradient's term ρ‖∇L‖ and the cubic terms are below 1% of it).

# %% tags=["exercise"]
epsilon_sharpness_at_minimum = "rho**2*lam/2"  # SOLUTION

# %%
def describe(problem, test_loss, params, key):
    fn = st.measure.full_batch_loss(problem)
    top = st.measure.top_hessian_eigenvalues(fn, params, 5)
    row = {"train_loss": float(fn(params)),
           "lambda_max": float(top[0]), "lambda_max_over_lambda_5": float(top[0] / top[4]),
           "trace": float(st.measure.hessian_trace(fn, params)),
           "frobenius": float(st.measure.hessian_frobenius_norm(fn, params)),
           "effective_dimensionality": float(st.measure.effective_dimensionality(fn, params, 1.0)),
           "epsilon_sharpness": float(st.measure.epsilon_sharpness(fn, params, SHARPNESS_RHO).sharpness),
           "adaptive_sharpness": float(st.measure.adaptive_sharpness(fn, params, SHARPNESS_RHO).sharpness),
           "average_sharpness": float(st.measure.average_sharpness(fn, params, SHARPNESS_RHO, key=key).value)}
    if problem.examples is not None:
        row["one_sharpness"] = float(st.measure.m_sharpness(problem.loss, params, problem.examples,
                                                            SHARPNESS_RHO, 1))
        row["fisher_rao_norm"] = float(st.measure.fisher_rao_norm(problem.loss, params, problem.examples))
    if test_loss is not None:
        row["test_loss"] = float(test_loss(params))
    return row


table = {name: {opt: describe(*problems[name], solutions[name][opt], jax.random.key(1))
                for opt in ("gd", "sam")} for name in problems}
# Foret et al.'s λ_max statements are checked on the squared-loss problems. On the logistic
# conv-ReLU net every curvature keeps shrinking as the margins grow, so λ_max there mostly
# measures how far training has gone; its numbers are reported (results.json, paper card), not
# judged by the claims.
LOGISTIC_CASES = ("conv-ReLU net",)
for name in table:
    table[name]["loss_type"] = "logistic" if name in LOGISTIC_CASES else "squared"

# %% tags=["exercise-check"]
import sympy  # noqa: E402

rho_symbol, lam_symbol = sympy.symbols("rho lam", positive=True)
scale = sympy.symbols("c", nonnegative=True)  # ε = c·ρ·v_max, 0 ≤ c ≤ 1: the quadratic's best ε
quadratic_model = sympy.Rational(1, 2) * lam_symbol * (scale * rho_symbol) ** 2
formula = st.labkit.check_expression(
    "epsilon_sharpness_at_minimum", epsilon_sharpness_at_minimum,
    sympy.Max(*[quadratic_model.subs(scale, c) for c in (0, 1)]),  # increasing in c: c = 1
    {"rho": rho_symbol, "lam": lam_symbol})
gd_tanh = table["tanh net"]["gd"]
st.labkit.check_number(
    "epsilon_sharpness_at_minimum at GD's tanh-net solution",
    float(formula.subs({rho_symbol: SHARPNESS_RHO, lam_symbol: gd_tanh["lambda_max"]})),
    gd_tanh["epsilon_sharpness"], rtol=0.02)

# %% [markdown]
# **Exercise 2 (coding).** SAM's step estimates the ε-sharpness with one ascent step: take
# ε = ρ∇L(w)/‖∇L(w)‖ and return `L(w + ε) − L(w)`. Write it for a function `loss(w)` of an
# array; it must match `st.measure.epsilon_sharpness` run with one step and one restart (whose
# first iterate is that ε) to 1e-12, on random smooth functions away from a minimum. Why is it
# never above the full ε-sharpness of the table?

# %% tags=["exercise"]
def my_sam_sharpness_estimate(loss, w, rho):
    """L(w + ρ∇L/‖∇L‖) − L(w), SAM's one-step estimate of the ε-sharpness."""
    # BEGIN SOLUTION
    g = jax.grad(loss)(w)
    return loss(w + rho * g / jnp.linalg.norm(g)) - loss(w)
    # END SOLUTION


# %% tags=["exercise-check"]
def library_one_step_sharpness(loss, w, rho):
    return st.measure.epsilon_sharpness(loss, w, rho, num_steps=1, num_restarts=1).sharpness


factor = jnp.asarray(np.random.default_rng(0).standard_normal((4, 4)))


def smooth_test_loss(w):
    # one function for every case (one compiled program), a quadratic plus a non-quadratic term
    return 0.5 * w @ factor.T @ factor @ w + jnp.sum(jnp.cos(w))


st.labkit.check_function(
    "my_sam_sharpness_estimate", my_sam_sharpness_estimate, library_one_step_sharpness,
    [(smooth_test_loss, jnp.asarray(np.random.default_rng(10 + seed).normal(size=4)),
      0.05 * (seed + 1)) for seed in range(3)], atol=1e-12)


# %% [markdown]
# ## 1-D interpolation and 2-D slices

# %%
def filter_normalized_direction(key, params):
    """A random direction, each unit's slice rescaled to that unit's weight norm (Li et al. 2018).

    Units are the vectors along the last axis of arrays with >= 2 axes (a conv filter W[j, r, :],
    a row of a factor matrix) and the single entries of vectors (each entry its own unit, as for
    the hidden units of the tanh net and the coordinates of a diagonal network).
    """
    leaves, treedef = jax.tree_util.tree_flatten(params)
    keys = jax.random.split(key, len(leaves))
    out = []
    for leaf_key, leaf in zip(keys, leaves):
        draw = jax.random.normal(leaf_key, leaf.shape, leaf.dtype)
        if leaf.ndim >= 2:
            scale = jnp.linalg.norm(leaf, axis=-1, keepdims=True) / jnp.maximum(
                jnp.linalg.norm(draw, axis=-1, keepdims=True), 1e-30)
        else:
            scale = jnp.abs(leaf) / jnp.maximum(jnp.abs(draw), 1e-30)
        out.append(draw * scale)
    return jax.tree_util.tree_unflatten(treedef, out)


def combine(params, directions, coefficients):
    return jax.tree_util.tree_map(lambda p, *ds: p + sum(c * d for c, d in zip(coefficients, ds)),
                                  params, *directions)


def slice_losses(fn, params, first, second, span):
    grid = jnp.linspace(-span, span, SLICE_POINTS)
    evaluate = jax.jit(jax.vmap(jax.vmap(lambda a, b: fn(combine(params, (first, second), (a, b))),
                                         in_axes=(None, 0)), in_axes=(0, None)))
    return np.asarray(grid), np.asarray(evaluate(grid, grid)).T  # rows: second direction


line = np.linspace(-0.25, 1.25, LINE_POINTS)
interpolation, slices = {}, {}
for index, name in enumerate(problems):
    problem, test_loss = problems[name]
    fn = st.measure.full_batch_loss(problem)
    gd, sam = solutions[name]["gd"], solutions[name]["sam"]
    along = [combine(gd, (jax.tree_util.tree_map(lambda a, b: b - a, gd, sam),), (t,)) for t in line]
    interpolation[name] = {"train": [float(fn(p)) for p in along],
                           "test": [float(test_loss(p)) for p in along] if test_loss else None}
    key = jax.random.key(100 + index)
    slices[name] = {}
    for opt, params in (("gd", gd), ("sam", sam)):
        # the same random draw for both solutions, normalized to each one's own weights
        first = filter_normalized_direction(jax.random.fold_in(key, 0), params)
        second = filter_normalized_direction(jax.random.fold_in(key, 1), params)
        slices[name][f"{opt}-random"] = slice_losses(fn, params, first, second, SLICE_SPAN)
        vectors = st.measure.top_hessian_eigenpairs(fn, params, 2).vectors
        top1 = jax.tree_util.tree_map(lambda v: v[0], vectors)
        top2 = jax.tree_util.tree_map(lambda v: v[1], vectors)
        slices[name][f"{opt}-eigen"] = slice_losses(fn, params, top1, top2, EIGEN_SPAN)

# %% [markdown]
# ## m-sharpness against the generalization gap (diagonal linear networks)

# %%
gap_study = None
if "diagonal linear net" in problems:
    problem, test_loss = problems["diagonal linear net"]
    _, lr, _, steps = CASES["diagonal linear net"]
    family = st.sweep(problem, {"sam": st.optim.sam(lr, 0.05), "1-sam": st.optim.sam(lr, 0.05, m=1)},
                      steps=steps, seeds=1, grid={"rho": [0.0, *M_SHARPNESS_RHOS]},
                      observe={"loss": of_params_and_problem(train_loss)}, stride=steps)
    fn = st.measure.full_batch_loss(problem)
    models = []
    for opt in ("sam", "1-sam"):
        for i, rho in enumerate([0.0, *M_SHARPNESS_RHOS]):
            if opt == "1-sam" and rho == 0.0:
                continue  # identical to GD (the sam lane at ρ = 0)
            params = jax.tree_util.tree_map(lambda x: x[i, 0], family[opt].params)
            train = float(fn(params))
            models.append({"optimizer": "gd" if rho == 0.0 else opt, "rho": rho, "train_loss": train,
                           "test_loss": float(test_loss(params)),
                           "gap": float(test_loss(params)) - train,
                           "one_sharpness": float(st.measure.m_sharpness(problem.loss, params, problem.examples,
                                                                         SHARPNESS_RHO, 1)),
                           "full_batch_sharpness": float(st.measure.epsilon_sharpness(fn, params, SHARPNESS_RHO).sharpness),
                           "lambda_max": float(st.measure.lambda_max(fn, params))})
    # Sharpness at a point that is not a minimum measures the slope, not the curvature: rank only
    # the solutions that fit the training set (train loss < 1e-3); the others are listed.
    converged = [m for m in models if m["train_loss"] < 1e-3]
    gaps = [m["gap"] for m in converged]

    def kendall(key):
        return float(scipy.stats.kendalltau([m[key] for m in converged], gaps)[0])

    gap_study = {"models": models, "converged_models": len(converged),
                 "excluded_unconverged": [f"{m['optimizer']} rho={m['rho']:g}" for m in models
                                          if m["train_loss"] >= 1e-3],
                 "kendall_tau_one_sharpness": kendall("one_sharpness"),
                 "kendall_tau_full_batch_sharpness": kendall("full_batch_sharpness"),
                 "kendall_tau_lambda_max": kendall("lambda_max")}

# %% [markdown]
# ## Figures

# %%
names = list(problems)
FORET = "foret2021."  # the prefix of this lab's claim ids


def end_status(name, opt):
    """"ok" or "diverged": how the run that produced a solution ended."""
    return "ok" if solutions[name]["status"][opt] == "ok" else "diverged"


runs = {}
fig, axes = st.plotting.figure(1, len(names), width=2.6, height=2.4)
for ax, name in zip(axes[0], names):
    ax.plot(line, interpolation[name]["train"], color="black", label="training loss")
    if interpolation[name]["test"]:
        ax.plot(line, interpolation[name]["test"], color=st.plotting.PALETTE[0], linestyle="--",
                label="test loss")
    for position, opt in ((0, "gd"), (1, "sam")):
        status = end_status(name, opt)
        runs[f"{opt.upper()} solution @ {name}"] = status
        lines = [ax.axvline(position, color=st.plotting.color_for(opt), linewidth=1,
                            label=st.plotting.status_label(f"{opt.upper()} solution", status),
                            **({} if status == "ok" else {"linestyle": "--"}))]
        st.plotting.mark_status(lines, status)
    ax.set_label(name)
    ax.set(title=name, xlabel="t in $(1-t)\\,w_{GD} + t\\,w_{SAM}$", ylabel="loss", yscale="log")
st.plotting.figure_legend(fig, ncol=4)
sharper = sum(table[name]["sam"]["lambda_max"] < table[name]["gd"]["lambda_max"] for name in names)
st.plotting.finding(fig, f"From GD's solution (t=0) to SAM's (t=1): SAM's has the smaller "
                    f"$\\lambda_{{max}}$ on {sharper} of {len(names)} problems")
lab.savefig(fig, "interpolation", runs=runs, slide=True,
            claims=[FORET + "minima.sam_smaller_lambda_max",
                    FORET + "minima.sam_smaller_lambda_max_all_problems"])

fig, axes = st.plotting.figure(len(names), 4, width=2.3, height=2.1)
for row, name in enumerate(names):
    panels = ("gd-random", "sam-random", "gd-eigen", "sam-eigen")
    all_values = np.concatenate([np.ravel(slices[name][p][1]) for p in panels])
    # one log colour scale per problem (shared by GD and SAM): four decades below the 95th
    # percentile, so the basin around each solution is resolved
    top = np.nanpercentile(all_values, 95)
    levels = np.geomspace(top * 1e-4, top, 13)
    for col, panel in enumerate(panels):
        ax = axes[row, col]
        grid, values = slices[name][panel]
        filled = ax.contourf(grid, grid, np.clip(values, levels[0], levels[-1]), levels=levels,
                             norm=matplotlib.colors.LogNorm(), cmap="viridis")
        ax.contour(grid, grid, np.clip(values, levels[0], levels[-1]), levels=levels[::3],
                   colors="white", linewidths=0.5)
        ax.plot(0, 0, "w+", markersize=10)
        optimizer, kind = panel.split("-")
        status = end_status(name, optimizer)
        ax.set_title(st.plotting.status_label(
            f"{optimizer.upper()}, {'random' if kind == 'random' else 'top-2 eigvecs'}", status))
        ax.set_xlabel("direction 1" if kind == "random" else "along $v_1$ (unit)")
        ax.set_ylabel(("direction 2" if kind == "random" else "along $v_2$ (unit)")
                      if col else f"{name}\ndirection 2")
    fig.colorbar(filled, ax=axes[row, 3], label="training loss", format="%.0e",
                 ticks=levels[::3])
st.plotting.finding(fig, "Training loss on 2-D slices around each solution (random filter-normalized "
                    "directions, and the top-2 Hessian eigenvectors)")
lab.savefig(fig, "slices", claims=[FORET + "minima.sam_smaller_lambda_max",
                                   FORET + "minima.sam_smaller_eigenratio"])

# %% [markdown]
# **Exercise 3 (open question).** The random slices rescale each unit's slice of the direction
# to that unit's weight norm (filter normalization). On the diagonal linear net the prediction
# depends on u ⊙ v only: replace (u, v) by (c·u, v/c) for a scalar c. What happens to the
# function, to λ_max and to an unnormalized random slice? Does it change the filter-normalized
# slice? What does that say about comparing "flatness" across solutions by λ_max alone?

# %% tags=["teacher-note"]
# Teacher's note (not on the students' site): the function and the training/test losses are
# unchanged, but the Hessian is not: the curvature along u scales like 1/c², along v like c², so
# λ_max can be made as large as one likes at an equivalent solution (Dinh et al., ICML 2017,
# "Sharp minima can generalize"). An unnormalized slice of fixed length looks sharper or flatter
# with c; the filter-normalized one scales the direction with the weights (entrywise here), so
# the slice is the same function of the slice coordinates for every c (Li et al. 2018). Hence
# λ_max compares solutions only within a fixed parametrization or after such a normalization;
# adaptive sharpness (ASAM) and the balanced representatives of Lab 2 are other answers.

if gap_study is not None:
    fig, axes = st.plotting.figure(1, 2, width=3.2, height=2.8)
    for ax, key, label in ((axes[0, 0], "one_sharpness", "1-sharpness (m = 1)"),
                           (axes[0, 1], "full_batch_sharpness", "full-batch ε-sharpness (m = n)")):
        for model in gap_study["models"]:
            if model["train_loss"] >= 1e-3:
                continue  # not a minimum (see results.json: excluded_unconverged)
            ax.plot(model[key], model["gap"], "o", color=st.plotting.color_for(model["optimizer"]),
                    label=model["optimizer"].upper())
        tau = gap_study[f"kendall_tau_{key}"]
        ax.set(title=f"Kendall τ = {tau:.2f}",
               xlabel=f"{label}, ρ = {SHARPNESS_RHO:g}", ylabel="generalization gap (test − train)")
        ax.set_yscale("symlog", linthresh=1e-4)  # gaps span decades and can be ~0
        ax.set_ylim(bottom=-1e-4)
        ax.ticklabel_format(axis="x", style="sci", scilimits=(-2, 2))
    st.plotting.figure_legend(fig, title=f"diagonal net, minima with training loss < 1e-3 "
                              f"({gap_study['converged_models']} models)")
    st.plotting.finding(fig, f"1-sharpness ranks the generalization gap (Kendall τ = "
                        f"{gap_study['kendall_tau_one_sharpness']:.2f}); full-batch sharpness: τ = "
                        f"{gap_study['kendall_tau_full_batch_sharpness']:.2f}")
    lab.savefig(fig, "m_sharpness_vs_gap", claims=[FORET + "m_sharpness.tracks_gap"])

# %%
lab.save_arrays(interpolation_t=line,
                **{f"interp_{i}": np.asarray(interpolation[n]["train"]) for i, n in enumerate(names)},
                **{f"slice_{i}_{p.replace('-', '_')}": slices[n][p][1] for i, n in enumerate(names)
                   for p in slices[n]})
measured = {"cases": table, "skipped_cases": skipped,
            "status": {name: solutions[name]["status"] for name in names},
            "gap_study": gap_study}
results = lab.finish(measured)

# %% [markdown]
# **Your predictions against the measurements.**

# %%
st.labkit.compare_predictions(results, {
    "foret2021.minima.sam_smaller_lambda_max_logistic": predict_sam_flatter_logistic,
})
