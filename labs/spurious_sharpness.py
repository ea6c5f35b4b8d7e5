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
# # Spurious sharpness on an exact softmax model (Singh, Mobahi, Agarwala, Dauphin 2025)
# Functional-SAM's argument: with a softmax cross-entropy, SAM can lower the loss curvature
# through the **logit path** `J_Fᵀ ∇²ℓ J_F` — the softmax's own curvature `diag(p) − ppᵀ`
# changes with the logits' confidence — instead of through the network function (the
# **functional path** `Σ_i ∂ℓ/∂F_i ∇²F_i`). Functional-SAM perturbs only through the function,
# preconditioning the perturbation (Adam's geometry) is said to avoid the spurious route as
# well, and the two combine best.
#
# Here the model is exact: a next-token model over a vocabulary of V tokens with Zipf(s)
# context frequencies and a seeded Dirichlet bigram table (`st.problems.softmax_bigram`), an
# embedding → tanh hidden layer → V logits network, trained full-batch on the exact empirical
# cross-entropy of `2V²` sampled pairs, and scored on the exact population cross-entropy. Every
# Hessian split is exact (`st.measure.logit_path`). Five optimizers share an AdamW base (lr
# 0.01, weight decay 1e-4): AdamW, SAM, Functional-SAM, preconditioned SAM and Functional-SAM
# with the preconditioned perturbation. **One compiled `st.sweep` per V** covers the Zipf
# exponents (a grid over the data tables), the ρ grid and the seeds; each SAM-type optimizer is
# tuned on ρ by its mean test cross-entropy.
#
# What to look at: the sharpness-by-path figure (which part of the curvature SAM removes), the
# logit statistics (did SAM move the confidence?), test cross-entropy against steps and against
# gradient evaluations, and the V × s heatmaps.

# %%

import jax
import jax.flatten_util
import jax.numpy as jnp
import numpy as np

import sharp_theory as st
import sharp_theory.plotting  # noqa: F401  (st.plotting)
from sharp_theory.measure import logit_path
from sharp_theory.observables import of_params_and_problem
from sharp_theory.problems import next_token

lab = st.labkit.start("spurious-sharpness", default_seeds=5, quick_seeds=2)
QUICK = lab.quick

V_GRID = [8] if QUICK else [8, 16, 32]
S_GRID = [0.0, 1.5] if QUICK else [0.0, 1.0, 1.5]
RHO_GRID = [0.3, 1.0] if QUICK else [0.1, 0.3, 1.0]
STEPS = 120 if QUICK else 400
RECORDS = 8
LR, WEIGHT_DECAY = 0.01, 1e-4
EMBEDDING, HIDDEN = 8, 16
TRAIN_PER_CELL = 2  # n_train = 2 V²: a few pairs per (context, token) cell -> a generalization gap
LANCZOS_STEPS = 24
OPTIMIZERS = ("adamw", "sam", "functional-sam", "precond-sam", "functional-sam-precond")
SAM_TYPES = OPTIMIZERS[1:]
lab.record_config(vocab_sizes=V_GRID, zipf_exponents=S_GRID, rho_grid=RHO_GRID, steps=STEPS,
                  lr=LR, weight_decay=WEIGHT_DECAY, embedding_dim=EMBEDDING, hidden_dim=HIDDEN,
                  n_train="2 V^2", records=RECORDS, lanczos_steps=LANCZOS_STEPS, seeds=lab.seeds,
                  tuning="rho per (V, s, optimizer) by mean test cross-entropy over seeds")


# %% [markdown]
# ## Observables and optimizers (module level, so each V compiles once)

# %%
def test_cross_entropy(params, problem):
    return next_token.population_cross_entropy(params, problem)


def train_cross_entropy(params, problem):
    return problem.loss(params, None)


def statistics(params, problem):
    stats = logit_path.logit_statistics(next_token.logits(params), next_token.context_weights(problem))
    return jnp.stack([stats["max_probability"], stats["entropy"], stats["logit_norm"],
                      logit_path.calibration_temperature(problem, params)])


def flat_parameters(params, problem):
    return jax.flatten_util.ravel_pytree(params)[0]


OBSERVE = {"test": of_params_and_problem(test_cross_entropy),
           "train": of_params_and_problem(train_cross_entropy),
           "stats": of_params_and_problem(statistics),
           "params": of_params_and_problem(flat_parameters)}
STAT_NAMES = ("max_probability", "entropy", "logit_norm", "temperature")

base = st.optim.adamw(weight_decay=WEIGHT_DECAY)
OPTIMIZER_OBJECTS = {
    "adamw": st.optim.gd(LR, base=base),
    "sam": st.optim.sam(LR, RHO_GRID[0], base=base),
    "functional-sam": st.optim.functional_sam(LR, RHO_GRID[0], base=base),
    "precond-sam": st.optim.preconditioned_sam(LR, RHO_GRID[0], base=base),
    "functional-sam-precond": st.optim.functional_sam(LR, RHO_GRID[0], precondition=True, base=base),
}


def measure_lane(problem, params, tables):
    """Exact path sharpness of one final iterate (its own data tables)."""
    lane_problem = problem.with_constants(tables=tables)
    return logit_path.path_sharpness(lane_problem, params, lanczos_steps=LANCZOS_STEPS)


def split_over_training(problem, flat, tables):
    """λ_max and its Rayleigh split at one recorded iterate (no traces: cheap enough per record)."""
    params = jax.flatten_util.ravel_pytree(problem.params0)[1](flat)
    result = logit_path.path_sharpness(problem.with_constants(tables=tables), params,
                                       lanczos_steps=LANCZOS_STEPS, trace=False)
    return jnp.stack([result["lambda_max"], result["top_gauss_newton"], result["top_functional"]])


def sam_split_lane(problem, params, tables, rho):
    """Norms of the exact logit-path and functional-path parts of SAM's update at ``params``."""
    lane_problem = problem.with_constants(tables=tables)
    split = logit_path.sam_update_split(lane_problem, params, rho)
    norm = lambda tree: jnp.linalg.norm(jax.flatten_util.ravel_pytree(tree)[0])  # noqa: E731
    return jnp.stack([norm(split.logit_path), norm(split.functional_path)])


# %% [markdown] tags=["predict"]
# **Predict, then run.** Cross-entropy's Hessian splits into a logit path (Jᵀ∇²ℓ J: the curvature
# of the softmax, which SAM can lower by changing the model's confidence) and a functional path
# (the network's own curvature). When SAM lowers λ_max on this next-token model, does most of
# the reduction come through the logit path? Set `predict_logit_path_dominates` to `True` or
# `False`.

# %% tags=["prediction"]
predict_logit_path_dominates = True  # SOLUTION

# %% [markdown] tags=["predict"]
# **Predict, then run.** Functional-SAM regularizes curvature only through the network function.
# At equal steps, will it reach a lower test cross-entropy than both AdamW and SAM on this toy,
# as the paper reports for language models? Set `predict_functional_sam_wins`. The table at the
# end of the lab confirms or contradicts your prediction with the measured verdict.

# %% tags=["prediction"]
predict_functional_sam_wins = False  # SOLUTION

# %% [markdown]
# **Exercise 1 (coding).** The logit path's middle factor is ∇²ℓ, the Hessian of one context's
# cross-entropy −log softmax(z)_b in its logits z. Write it as a function of the logits (it does
# not depend on the observed token b). It must match the autodiff Hessian of the library's
# `next_token.cross_entropy_of_logits` to 1e-12 on random logits (the check draws them).

# %% tags=["exercise"]
def softmax_loss_hessian(z):
    """∇²ℓ of −log softmax(z)_b in the logits z (a (V, V) array)."""
    # BEGIN SOLUTION
    p = jax.nn.softmax(z)
    return jnp.diag(p) - jnp.outer(p, p)
    # END SOLUTION


# %% tags=["exercise-check"]
def library_loss_hessian(z):
    observed = jnp.zeros_like(z).at[0].set(1.0)[None, :]  # one context, next token 0
    return jax.hessian(lambda logits: next_token.cross_entropy_of_logits(logits[None, :],
                                                                         observed))(z)


st.labkit.check_function("softmax_loss_hessian", softmax_loss_hessian, library_loss_hessian,
                         [(3.0 * jax.random.normal(jax.random.key(i), (V,)),) for i, V in
                          enumerate((3, 8, 8))], atol=1e-12)

# %% [markdown]
# **Exercise 2 (numeric prediction).** At initialization the logits are nearly equal, so every
# context starts close to the uniform prediction p = 1/V. With your ∇²ℓ, what is its largest
# eigenvalue at uniform p for the quick run's vocabulary V = 8? (As p becomes confident, towards
# one token, what happens to it?) Graded to 1e-9 against the eigenvalues of the autodiff
# Hessian at equal logits: the answer is exact, so only rounding is allowed.

# %% tags=["exercise"]
predicted_uniform_top_eigenvalue = 1 / 8  # SOLUTION

# %% tags=["exercise-check"]
uniform_hessian = jax.hessian(lambda logits: next_token.cross_entropy_of_logits(
    logits[None, :], jnp.zeros(8).at[0].set(1.0)[None, :]))(jnp.zeros(8))
st.labkit.check_number("predicted_uniform_top_eigenvalue", predicted_uniform_top_eigenvalue,
                       float(np.linalg.eigvalsh(np.asarray(uniform_hessian))[-1]), rtol=1e-9)

# %% [markdown]
# ## One sweep per vocabulary size: s, ρ and seeds in one compiled program

# %%
def cell_key(V, s):
    return f"V{V}_s{s:g}"


SWEEPS, TABLES, PROBLEMS = {}, {}, {}
for V in lab.progress(V_GRID, "vocabulary sizes"):
    n_train = TRAIN_PER_CELL * V * V
    problem = st.problems.softmax_bigram(V, zipf_exponent=S_GRID[0], embedding_dim=EMBEDDING,
                                         hidden_dim=HIDDEN, n_train=n_train, seed=0)
    tables = np.stack([next_token.bigram_tables(V, s, n_train=n_train, seed=0) for s in S_GRID])
    PROBLEMS[V], TABLES[V] = problem, tables
    SWEEPS[V] = st.sweep(problem, OPTIMIZER_OBJECTS, steps=STEPS, seeds=lab.seeds,
                         grid={"tables": tables, "rho": RHO_GRID}, observe=OBSERVE,
                         stride=STEPS // RECORDS, init=problem.initializer)

STEP_AXIS = np.asarray(SWEEPS[V_GRID[0]]["adamw"].steps)
HALF = int(np.argmin(np.abs(STEP_AXIS - STEPS // 2)))  # the record at half the steps


# %% [markdown]
# ## Tuning, then exact path sharpness at every tuned final iterate
# Each SAM-type optimizer's ρ is chosen per (V, s) by its mean test cross-entropy over seeds at
# the last step (equal steps) and, separately, at half the steps (equal gradient evaluations:
# two per SAM step against AdamW's one at the last step). The exact Hessian measures (λ_max by
# Lanczos, traces from all n basis vectors) run on the tuned final iterates, one vmapped call
# per V.

# %%
def tuned_index(trajectory, record):
    """(s,) index of the best ρ per Zipf exponent (mean test CE over seeds at ``record``)."""
    test = np.asarray(trajectory.observed["test"])[..., record]  # (s, rho, seed)
    return np.nanargmin(np.nanmean(test, axis=-1), axis=1)


MEASURE_JIT = {}
SUMMARY = {}
for V in lab.progress(V_GRID, "path sharpness"):
    sweep, problem = SWEEPS[V], PROBLEMS[V]
    lanes_params, lanes_tables, lane_index = [], [], []
    for name in OPTIMIZERS:
        traj = sweep[name]
        best = tuned_index(traj, -1)
        for si in range(len(S_GRID)):
            for seed in range(lab.seeds):
                lanes_params.append(jax.tree_util.tree_map(lambda x: x[si, best[si], seed], traj.params))
                lanes_tables.append(TABLES[V][si])
                lane_index.append((name, si, seed))
    stacked = jax.tree_util.tree_map(lambda *xs: jnp.stack(xs), *lanes_params)
    measure = jax.jit(jax.vmap(measure_lane, in_axes=(None, 0, 0)))
    measured_lanes = jax.device_get(measure(problem, stacked, jnp.asarray(np.stack(lanes_tables))))
    # SAM's own update split at AdamW's final iterate, at SAM's tuned radius.
    adamw_params = jax.tree_util.tree_map(lambda x: x[:, 0], sweep["adamw"].params)  # (s, seed)
    sam_best = tuned_index(sweep["sam"], -1)
    flat_params = jax.tree_util.tree_map(lambda x: x.reshape((-1,) + x.shape[2:]), adamw_params)
    split_tables = np.repeat(TABLES[V], lab.seeds, axis=0)
    split_rho = np.repeat(np.asarray(RHO_GRID)[sam_best], lab.seeds)
    split = np.asarray(jax.jit(jax.vmap(sam_split_lane, in_axes=(None, 0, 0, 0)))(
        problem, flat_params, jnp.asarray(split_tables), jnp.asarray(split_rho)))
    split = split.reshape(len(S_GRID), lab.seeds, 2)
    for si, s in enumerate(S_GRID):
        cell = {"V": V, "s": s, "bayes_cross_entropy": float(next_token.bayes_cross_entropy(
            problem.with_constants(tables=TABLES[V][si])))}
        statuses = []
        for name in OPTIMIZERS:
            traj = sweep[name]
            best = int(tuned_index(traj, -1)[si])
            best_half = int(tuned_index(traj, HALF)[si])
            rows = [i for i, (n, sj, _) in enumerate(lane_index) if n == name and sj == si]
            per_seed = {key: np.asarray(value)[rows] for key, value in measured_lanes.items()}
            test = np.asarray(traj.observed["test"])[si, best]  # (seed, record)
            stats = np.asarray(traj.observed["stats"])[si, best, :, -1]  # (seed, 4)
            status = traj.status[si, best]
            statuses += [str(x) for x in np.atleast_1d(status)]
            cell[name] = {
                "rho": float(RHO_GRID[best]) if name != "adamw" else 0.0,
                "test_cross_entropy": float(np.mean(test[:, -1])),
                "test_cross_entropy_seeds": test[:, -1].tolist(),
                "test_cross_entropy_half_steps": float(np.mean(
                    np.asarray(traj.observed["test"])[si, best_half, :, HALF])),
                "train_cross_entropy": float(np.mean(np.asarray(traj.observed["train"])[si, best, :, -1])),
                "grad_evals": float(np.mean(np.asarray(traj.grad_evals)[si, best])),
                **{stat: float(np.mean(stats[:, k])) for k, stat in enumerate(STAT_NAMES)},
                **{key: float(np.mean(value)) for key, value in per_seed.items()},
                "seeds": {key: value.tolist() for key, value in per_seed.items()
                          if key in ("lambda_max", "top_gauss_newton", "top_functional")},
            }
        cell["sam_update_split_at_adamw"] = {
            "logit_path_norm": float(np.mean(split[si, :, 0])),
            "functional_path_norm": float(np.mean(split[si, :, 1])),
            "logit_share": float(np.mean(split[si, :, 0] / (split[si, :, 0] + split[si, :, 1])))}
        bad = [x for x in statuses if x != "ok"]
        cell["status"] = bad[0] if bad else "ok"
        SUMMARY[cell_key(V, s)] = cell


# %% [markdown]
# ## Contrast: a squared loss has no spurious route
# On a diagonal linear network `x ↦ xᵀ(u⊙v)` with ½-mean squared error, `∇²ℓ` is a constant
# (the logit path can change only through J), and the functional path is weighted by the
# residuals, which vanish at interpolation: there Functional-SAM's update is GD's.

# %%
def squared_loss_contrast(seed=0, n=10, d=20, steps=20000, lr=0.05):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    beta_star = np.zeros(d)
    beta_star[:3] = 1.0
    y = X @ beta_star
    data = {"x": X, "y": y}
    outputs = lambda p, b: b["x"] @ (p["u"] * p["v"])  # noqa: E731
    loss_of_outputs = lambda o, b: 0.5 * jnp.mean(jnp.square(o - b["y"]))  # noqa: E731
    problem = st.problems.from_loss(lambda p, b: loss_of_outputs(outputs(p, b), b),
                                    {"u": jnp.full(d, 0.5), "v": jnp.full(d, 0.5)}, data,
                                    name="diagonal_squared", outputs=outputs,
                                    loss_of_outputs=loss_of_outputs)
    trajectory = st.run(problem, st.optim.gd(lr), steps=steps, key=jax.random.key(seed), stride=steps)
    params = trajectory.params
    split = logit_path.hessian_split(problem, params)
    at_start = logit_path.hessian_split(problem, problem.params0)
    frob = lambda m: float(jnp.linalg.norm(m))  # noqa: E731
    out0 = outputs(problem.params0, data)
    loss_hessian = jax.hessian(lambda o: loss_of_outputs(o, data))
    sam = logit_path.sam_update_split(problem, params, 0.05)
    norm = lambda tree: float(jnp.linalg.norm(jax.flatten_util.ravel_pytree(tree)[0]))  # noqa: E731
    # The softmax's ∇²ℓ, by contrast, moves with the logits.
    soft = PROBLEMS[V_GRID[0]]
    soft_out = soft.outputs(soft.params0, None)
    soft_hessian = jax.hessian(lambda o: soft.loss_of_outputs(o, None))
    return {
        "train_loss": float(problem.loss(params, data)),
        "functional_fraction_at_interpolation": frob(split.functional) / frob(split.full),
        "functional_fraction_at_start": frob(at_start.functional) / frob(at_start.full),
        "loss_hessian_change": frob(loss_hessian(out0 + 1.0) - loss_hessian(out0)),
        "softmax_loss_hessian_change": frob(soft_hessian(2.0 * soft_out) - soft_hessian(soft_out))
        / frob(soft_hessian(soft_out)),
        "sam_functional_path_norm": norm(sam.functional_path),
        "sam_logit_path_norm": norm(sam.logit_path),
        "status": trajectory.status,
    }


CONTRAST = squared_loss_contrast(steps=3000 if QUICK else 20000)
print(CONTRAST)


# %% [markdown]
# ## Figures

# %%
# Colour-blind-safe (st.plotting.PALETTE, Okabe & Ito).
COLORS = {"adamw": "#000000", "sam": "#D55E00", "functional-sam": "#009E73",
          "precond-sam": "#E69F00", "functional-sam-precond": "#CC79A7"}
V_SHOW, S_SHOW = V_GRID[-1], S_GRID[-1]
cell_show = SUMMARY[cell_key(V_SHOW, S_SHOW)]


def logit_share(cell):
    drop = cell["adamw"]["lambda_max"] - cell["sam"]["lambda_max"]
    return (cell["adamw"]["top_gauss_newton"] - cell["sam"]["top_gauss_newton"]) / drop


def draw(ax, steps, values, name, cell, diverged):
    """Median and 10-90% band over seeds; a lane with a run that is not ok is drawn dashed and
    labelled with its status (st.plotting.band)."""
    st.plotting.band(ax, steps, values, label=label_of(name, cell), color=COLORS[name],
                     status="diverged" if np.any(diverged) else "ok")


def label_of(name, cell):
    rho = cell[name]["rho"]
    return name if name == "adamw" else f"{name} ($\\rho={rho:g}$)"


si_show = S_GRID.index(S_SHOW)
over_training = jax.jit(jax.vmap(jax.vmap(split_over_training, in_axes=(None, 0, None)),
                                 in_axes=(None, 0, None)))
PATHS = {}
for name in OPTIMIZERS:
    best = int(tuned_index(SWEEPS[V_SHOW][name], -1)[si_show])
    recorded = jnp.asarray(np.asarray(SWEEPS[V_SHOW][name].observed["params"])[si_show, best])
    PATHS[name] = np.asarray(over_training(PROBLEMS[V_SHOW], recorded,
                                           jnp.asarray(TABLES[V_SHOW][si_show])))  # (seed, rec, 3)
fig, axes = st.plotting.figure(1, 3, width=3.0, height=3.4)
parts = ["full $\\lambda_{max}$", "logit part at $u_1$", "functional part at $u_1$"]
for k, (ax, title) in enumerate(zip(axes[0], parts)):
    for name in OPTIMIZERS:
        best = int(tuned_index(SWEEPS[V_SHOW][name], -1)[si_show])
        draw(ax, STEP_AXIS, PATHS[name][..., k], name, cell_show,
             SWEEPS[V_SHOW][name].diverged[si_show, best])
    ax.set_xlabel("step")
    ax.set_ylabel(title)
st.plotting.figure_legend(fig, axes[0, :1])
drop = 1 - cell_show["sam"]["lambda_max"] / cell_show["adamw"]["lambda_max"]
st.plotting.finding(fig, f"V = {V_SHOW}, s = {S_SHOW:g}: SAM ends with {drop:.0%} lower "
                    f"$\\lambda_{{max}}$ than AdamW, {logit_share(cell_show):.1%} of the drop "
                    "through the logit path")
lab.savefig(fig, "sharpness_by_path", slide=True,
            claims=["singh2025.spurious.logit_path_carries_sam_reduction"])

fig, axes = st.plotting.figure(2, 2, width=3.4, height=2.6)
for k, stat in enumerate(STAT_NAMES):
    ax = axes.flat[k]
    sweep = SWEEPS[V_SHOW]
    si = S_GRID.index(S_SHOW)
    for name in OPTIMIZERS:
        best = int(tuned_index(sweep[name], -1)[si])
        values = np.asarray(sweep[name].observed["stats"])[si, best, :, :, k]
        draw(ax, STEP_AXIS, values, name, cell_show, sweep[name].diverged[si, best])
    ax.set_xlabel("step")
    ax.set_ylabel(stat.replace("_", " ") + (" $T^*$" if stat == "temperature" else ""))
    if stat == "temperature":
        ax.set_yscale("log")
st.plotting.figure_legend(fig, axes[0, :1])
moved = cell_show["sam"]["logit_norm"] / cell_show["adamw"]["logit_norm"] - 1
confidence = cell_show["sam"]["max_probability"] - cell_show["adamw"]["max_probability"]
st.plotting.finding(fig, f"V = {V_SHOW}, s = {S_SHOW:g}: SAM's logit norm ends {moved:+.0%} vs "
                    f"AdamW, its max probability {confidence:+.3f} (tuned $\\rho$)")
lab.savefig(fig, "logit_statistics", claims=["singh2025.spurious.sam_sharpness_is_calibration"])

fig, axes = st.plotting.figure(1, 2, width=3.8, height=3.0)
for name in OPTIMIZERS:
    sweep = SWEEPS[V_SHOW]
    si = S_GRID.index(S_SHOW)
    best = int(tuned_index(sweep[name], -1)[si])
    test = np.asarray(sweep[name].observed["test"])[si, best]
    per_step = 1.0 if name == "adamw" else 2.0
    for ax, scale in zip(axes[0], (1.0, per_step)):
        draw(ax, STEP_AXIS * scale, test, name, cell_show, sweep[name].diverged[si, best])
axes[0, 0].set_xlabel("step")
axes[0, 1].set_xlabel("gradient evaluations")
for ax in axes[0]:
    ax.set_ylabel("test cross-entropy (nats)")
    ax.axhline(cell_show["bayes_cross_entropy"], color="gray", ls=":", lw=1)
st.plotting.figure_legend(fig, axes[0, :1])
best_name = min(OPTIMIZERS, key=lambda n: cell_show[n]["test_cross_entropy"])
st.plotting.finding(fig, f"V = {V_SHOW}, s = {S_SHOW:g}: lowest test cross-entropy at equal "
                    f"steps: {best_name} (dotted: Bayes floor)")
lab.savefig(fig, "test_cross_entropy", claims=["singh2025.functional_sam.beats_adamw_and_sam",
                                              "singh2025.sam.no_gain_at_equal_compute"])


def grid_of(fn):
    return np.array([[fn(SUMMARY[cell_key(V, s)]) for s in S_GRID] for V in V_GRID])


def gap_vs_adamw(name):
    return lambda c: c[name]["test_cross_entropy"] - c["adamw"]["test_cross_entropy"]


heat = [("SAM's $\\lambda_{max}$ drop: logit-path share", logit_share),
        ("test CE: SAM $-$ AdamW", gap_vs_adamw("sam")),
        ("test CE: FSAM $-$ AdamW", gap_vs_adamw("functional-sam"))]
fig, axes = st.plotting.figure(1, 3, width=3.4, height=2.9)
for ax, (title, fn) in zip(axes[0], heat):
    values = grid_of(fn)
    image = ax.imshow(values, cmap="coolwarm", aspect="auto", origin="lower")
    for i in range(len(V_GRID)):
        for j in range(len(S_GRID)):
            ok = SUMMARY[cell_key(V_GRID[i], S_GRID[j])]["status"] == "ok"
            ax.text(j, i, f"{values[i, j]:.2f}" + ("" if ok else "*"), ha="center", va="center")
    ax.set_xticks(range(len(S_GRID)), [f"{s:g}" for s in S_GRID])
    ax.set_yticks(range(len(V_GRID)), [str(V) for V in V_GRID])
    ax.set_xlabel("Zipf exponent $s$")
    ax.set_ylabel("vocabulary $V$")
    ax.set_title(title)
    colorbar = fig.colorbar(image, ax=ax, shrink=0.8)
    colorbar.set_label("share" if fn is logit_share else "nats")
shares = grid_of(logit_share)
st.plotting.finding(fig, f"Over the V x s grid the logit path carries {shares.min():.1%}-"
                    f"{shares.max():.1%} of SAM's $\\lambda_{{max}}$ drop (* marks a cell with a "
                    "run that is not ok)")
lab.savefig(fig, "grid_heatmap", claims=["singh2025.spurious.share_grows_with_vocab_and_zipf"])


# %% [markdown]
# **Exercise 3 (open question).** Look at the sharpness-by-path figure and the logit statistics
# side by side. SAM ends with a much lower λ_max than AdamW, almost all of the drop through the
# logit path Jᵀ∇²ℓJ, yet its largest predicted probability hardly differs from AdamW's. Since
# ∇²ℓ depends only on the probabilities (Exercise 1), through which factor must the logit path
# have shrunk? What does that say about the "spurious sharpness = calibration" explanation, and
# which one measurement would you add to confirm your answer?

# %% tags=["teacher-note"]
# Teacher's note (not on the students' site): with p (hence ∇²ℓ = diag(p) − ppᵀ) nearly
# unchanged, the Gauss-Newton term JᵀHJ can only shrink through J, the Jacobian of the logits
# in the parameters: SAM makes the logits less sensitive to the weights (the quick run's logit
# norm drops by about a fifth, 1.77 → 1.35 at s = 0 and 1.95 → 1.59 at s = 1.5, while max
# probability moves by less than 0.005 and λ_max falls from 1.59 to 1.00 and from 5.4 to 2.3).
# That is why `sam_sharpness_is_calibration` fails here: refitting a temperature (matching
# calibration) leaves almost all of SAM's advantage (ratio ≈ 0.97, threshold 0.5). The
# reduction is real geometry of the network, not a change of confidence. A confirming
# measurement: the top singular value of J (or ‖J u₁‖ at the top eigenvector u₁) for AdamW and
# SAM at their final iterates, or the readout weights' norm, which scales J directly.

# %% [markdown]
# ## Results and claims

# %%
MEASURED = {"cells": SUMMARY, "squared_loss": CONTRAST, "vocab_sizes": V_GRID,
            "zipf_exponents": S_GRID, "steps": STEPS, "seeds": lab.seeds, "quick": QUICK}
for V in V_GRID:
    for name in OPTIMIZERS:
        lab.save_arrays(**{f"V{V}__{name}__test": np.asarray(SWEEPS[V][name].observed["test"]),
                           f"V{V}__{name}__stats": np.asarray(SWEEPS[V][name].observed["stats"])})
results = lab.finish(MEASURED)

# %% [markdown]
# **Your predictions against the measurements.**

# %%
st.labkit.compare_predictions(results, {
    "singh2025.spurious.logit_path_carries_sam_reduction": predict_logit_path_dominates,
    "singh2025.functional_sam.beats_adamw_and_sam": predict_functional_sam_wins,
})
