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
# # Edge of stability: GD at 2/η, SAM at its own edge, USAM's threshold
# Full-batch gradient descent with step size η is stable on a quadratic only while the top
# Hessian eigenvalue λ_max stays below 2/η. Cohen et al. (ICLR 2021) observed that on neural
# networks λ_max *rises* during training (progressive sharpening) until it meets 2/η. What
# happens then, on a network rather than a quadratic, is this lab's first question. We use their
# toy (a one-hidden-layer tanh network, width 100, fitted to 20 equispaced points of the Chebyshev
# polynomial T_4 on [−1, 1] with the squared loss) at three step sizes.
#
# For SAM the same stability argument gives another edge: with its normalization frozen at the
# current gradient norm g, SAM acts like USAM (unnormalized SAM) with radius ρ/g, so its edge
# λ_SAM(g) is USAM's stability limit with ρ replaced by ρ/g (Long & Bartlett, JMLR 2024). You
# derive USAM's limit and code λ_SAM(g) below; the lab checks whether SAM's λ_max tracks
# λ_SAM(‖∇L_t‖). Finally, on quadratics we find USAM's divergence boundary by bisection and
# compare it with the limit you derived (ρ = 0 is GD's 2/λ).
#
# `--grid large` runs the same toy 333 times wider (100 002 parameters, output scaled by
# √(100/width) so λ_max starts where it does at width 100) and records λ_max every 10 steps with
# `st.measure.warm_top_eigenpairs`: Lanczos restarted from the previous record's eigenvector, a
# few Hessian-vector products per record (benchmarks/README.md, "Warm-started spectra").

# %%
import jax
import jax.numpy as jnp
import numpy as np

import sharp_theory as st
from sharp_theory.observables import of_params, of_params_and_problem
from sharp_theory.problems.base import Problem
from sharp_theory.theory import stability

# --grid large: the same toy 333 times wider (100 002 parameters), λ_max recorded every 10 steps
# by Lanczos warm-started from the previous record (st.measure.warm_top_eigenpairs).
lab = st.labkit.start("edge-of-stability", default_seeds=2, quick_seeds=1,
                      options={"grid": ("quick", "default", "large")},
                      quick_options={"grid": "quick"})
LARGE = lab.extra.get("grid") == "large"

BASE_WIDTH = 100
WIDTH = 33_334 if LARGE else BASE_WIDTH
INIT_SCALE = 0.5  # N(0, 0.5²) hidden weights and biases; output weights N(0, 1/100)
EDGES = (20.0, 26.0, 32.0)  # 2/η for the three GD step sizes
STEPS = 40_000
STRIDE = 10 if LARGE else (1_000 if lab.quick else 200)
LANCZOS_STEPS = 30  # λ_max along trajectories; checked against dense eigh at the end
CHECK_LANCZOS_STEPS = 120  # --grid large: the cold reference at the final points
SAM_LR, SAM_RHOS = 0.1, (0.01, 0.03, 0.1)
USAM_RHOS = (0.0, 0.05, 0.2, 0.5)
QUADRATIC_SPECTRA = ((1.0, 0.5, 0.2), (4.0, 1.0, 0.3), (10.0, 3.0, 1.0))
lab.record_config(grid="large" if LARGE else ("quick" if lab.quick else "default"),
                  width=WIDTH, init_scale=INIT_SCALE, target="Chebyshev T_4 on 20 points",
                  gd_edges=EDGES, steps=STEPS, stride=STRIDE, lanczos_steps=LANCZOS_STEPS,
                  sam_lr=SAM_LR, sam_rhos=SAM_RHOS, usam_rhos=USAM_RHOS,
                  quadratic_spectra=QUADRATIC_SPECTRA, seeds=lab.seeds,
                  bisection_iterations=16 if lab.quick else 24)


# %% [markdown]
# ## The tanh network and its observables

# %%
def network(params, x):
    # The output is scaled by sqrt(100 / width) (1 for the default width): a wider network
    # starts at the same λ_max instead of one growing with the width.
    scale = np.sqrt(BASE_WIDTH / WIDTH)
    return scale * (jnp.tanh(x[:, None] * params["w"] + params["b"]) @ params["v"])


def squared_loss(params, batch):
    return 0.5 * jnp.mean((network(params, batch["x"]) - batch["y"]) ** 2)


def initial_params(seed):
    rng = np.random.default_rng(seed)
    return {"w": jnp.asarray(INIT_SCALE * rng.standard_normal(WIDTH)),
            "b": jnp.asarray(INIT_SCALE * rng.standard_normal(WIDTH)),
            "v": jnp.asarray(rng.standard_normal(WIDTH) / np.sqrt(BASE_WIDTH))}


inputs = np.linspace(-1.0, 1.0, 20)
targets = np.polynomial.chebyshev.Chebyshev.basis(4)(inputs)
problem = st.problems.from_loss(squared_loss, initial_params(0),
                                data={"x": inputs, "y": targets}, name="tanh-chebyshev")


def sharpness(params, problem):
    return st.measure.lambda_max(st.measure.full_batch_loss(problem), params,
                                 method="matrix_free", num_iterations=LANCZOS_STEPS)


def train_loss(params, problem):
    return problem.loss(params, problem.full_batch())


def gradient_norm(params, problem):
    gradient = jax.grad(problem.loss)(params, problem.full_batch())
    return jnp.sqrt(sum(jnp.sum(g**2) for g in jax.tree_util.tree_leaves(gradient)))


OBSERVE = {"sharpness": of_params_and_problem(sharpness), "loss": of_params_and_problem(train_loss),
           "grad_norm": of_params_and_problem(gradient_norm)}
if LARGE:  # warm-started: a few HVPs per record instead of a 30-step cold Lanczos solve
    OBSERVE["sharpness"] = st.measure.warm_top_eigenpairs()


def sharpness_of(traj):
    """The recorded λ_max (records,): the cold observable's, or the warm one's top value."""
    if "sharpness" in traj.observed:
        return np.asarray(traj.observed["sharpness"])
    return np.asarray(traj.observed["sharpness.values"])[..., 0]


# %% [markdown] tags=["predict"]
# **Predict, then run.** Full-batch GD on a quadratic with λ_max > 2/η diverges. On this network
# λ_max starts far below 2/η and rises as GD trains. When it reaches 2/η, does it keep rising (and
# GD blow up), or hover around 2/η while the loss keeps falling? Set `predict_hovers_at_edge` to
# `True` (it hovers) or `False`.

# %% tags=["prediction"]
predict_hovers_at_edge = True  # SOLUTION

# %% [markdown] tags=["predict"]
# **Predict, then run.** Normalized SAM at the same step size: does its λ_max settle at a lower
# edge set by ρ and the gradient norm, λ_SAM(‖∇L‖) < 2/η? Set `predict_sam_lower_edge`.

# %% tags=["prediction"]
predict_sam_lower_edge = True  # SOLUTION

# %% [markdown]
# **Exercise 1 (numeric prediction).** GD with η = 2/26 on this network: λ_max starts near 16.
# From the stability of GD on a quadratic, predict the value λ_max settles at in the second half
# of the run, if it settles at all. Graded within 3% of the median λ_max the lab records over
# the second half of the run: once there, λ_max oscillates by about 2% around its level.

# %% tags=["exercise"]
predicted_settled_sharpness = 26.0  # SOLUTION

# %% [markdown]
# ## GD at three step sizes

# %%
gd_runs = {}
for seed in lab.progress(range(lab.seeds), "GD seeds"):
    for edge in EDGES:
        traj = st.run(problem, st.optim.gd(2.0 / edge), steps=STEPS, key=jax.random.key(seed),
                      observe=OBSERVE, stride=STRIDE, params0=initial_params(seed))
        gd_runs[(seed, edge)] = traj
steps_recorded = np.asarray(next(iter(gd_runs.values())).steps)


def summarize_gd(traj, edge):
    lam = sharpness_of(traj)
    loss = np.asarray(traj.observed["loss"])
    reached = np.flatnonzero(lam >= 0.95 * edge)
    late = lam[len(lam) // 2:]
    first = int(reached[0]) if reached.size else len(lam) - 1
    eos_loss = loss[first:]
    return {"edge": edge, "status": traj.status, "initial_sharpness": float(lam[0]),
            "max_sharpness": float(lam.max()),
            "step_edge_reached": int(steps_recorded[first]) if reached.size else None,
            "late_median_ratio": float(np.median(late) / edge),
            "late_max_ratio": float(late.max() / edge),
            "loss_when_edge_reached": float(loss[first]), "final_loss": float(loss[-1]),
            # EoS losses spike now and then (panel b): judge the trend by the median of the
            # last 20% of records rather than the single last one.
            "late_median_loss": float(np.median(loss[-max(1, len(loss) // 5):])),
            "loss_increases_at_edge": int(np.sum(np.diff(eos_loss) > 0))}


gd_summary = [dict(seed=seed, **summarize_gd(traj, edge)) for (seed, edge), traj in gd_runs.items()]
settled_at_26 = float(np.median([row["late_median_ratio"] * row["edge"] for row in gd_summary
                                 if row["edge"] == 26.0]))
print(f"GD at η = 2/26: median λ_max over the second half of the run {settled_at_26:.4g}")

# %% tags=["exercise-check"]
st.labkit.check_number("predicted_settled_sharpness", predicted_settled_sharpness, settled_at_26,
                       rtol=0.03)

# %%

# Lanczos (30 steps) against dense eigh at every final point: the recorded curves are exact.
# (--grid large: the warm-started values against a cold 120-step Lanczos solve.)
dense_check = []
for (seed, edge), traj in gd_runs.items():
    fn = st.measure.full_batch_loss(problem)
    dense = float(st.measure.lambda_max(fn, traj.params, method="matrix_free",
                                        num_iterations=CHECK_LANCZOS_STEPS) if LARGE else
                  st.measure.lambda_max(fn, traj.params, method="dense"))
    dense_check.append(abs(float(sharpness_of(traj)[-1]) - dense) / dense)

# %% [markdown]
# **Exercise 2 (open question).** On a quadratic, GD with ηλ_max > 2 diverges: the component
# along the top eigenvector is multiplied by 1 − ηλ_max < −1 each step. Here λ_max reached 2/η
# and GD did not diverge. What is different about the network's loss, and what mechanism pulls
# λ_max back below 2/η whenever it overshoots? Why does the loss spike at those moments
# (panel b of the figure below)?

# %% tags=["teacher-note"]
# Teacher's note (not on the students' site): a quadratic has a constant Hessian, a network's
# depends on the point. Past 2/η the iterate starts oscillating with growing amplitude along the
# top eigenvector u; the loss's third derivative then matters: averaged over the oscillation,
# the gradient picks up a term ½·(oscillation amplitude)²·∇λ_max (the derivative of uᵀHu), so
# GD descends λ_max itself and brings it back below 2/η, after which the oscillation shrinks
# ("self-stabilization", Damian, Nichani, Lee, ICLR 2023; Cohen et al. 2021 for the observation).
# The loss spikes while the oscillation is large. Progressive sharpening then pushes λ_max up
# again, hence the hovering at 2/η and the non-monotone but decreasing loss.

# %% [markdown]
# ## USAM's divergence boundary on quadratics (bisection in η)
# **Exercise 3 (derivation).** USAM perturbs by ρ∇L without normalizing. On a quadratic
# ½λx² along an eigenvector its step is x ← x − ηλ(x + ρλx), a multiplier 1 − ηλ(1 + ρλ). Find
# the largest λ for which USAM with step η and radius ρ does not diverge, as a formula in `eta`
# and `rho` (a string, e.g. `"2/eta"`). It is checked symbolically against the library's sympy
# derivation and, after the bisection below, numerically against the divergence boundaries it
# finds.

# %% tags=["exercise"]
usam_limit_formula = "(sqrt(1 + 8*rho/eta) - 1)/(2*rho)"  # SOLUTION


# %%
def quadratic_objective(params, batch, constants):
    return 0.5 * params @ constants["H"] @ params


def norm(params):
    return jnp.linalg.norm(params)


BISECTION_STEPS = 16 if lab.quick else 24  # bracket [0.5, 1.5]·η*: 2^-16 ≈ 1.5e-5 resolution


def divergence_boundary(quadratic, rho, low, high, steps=3000, iterations=BISECTION_STEPS):
    optimizer = st.optim.usam(low, rho)
    for _ in range(iterations):
        middle = 0.5 * (low + high)
        traj = st.run(quadratic, optimizer.with_hparams(lr=middle), steps=steps,
                      key=jax.random.key(0), observe={"norm": of_params(norm)}, stride=steps)
        grew = traj.diverged or float(traj.final("norm")) > 1.0  # start has norm 1
        low, high = (low, middle) if grew else (middle, high)
    return 0.5 * (low + high)


rng = np.random.default_rng(0)
usam_rows = []
for spectrum_values in QUADRATIC_SPECTRA:
    rotation, _ = np.linalg.qr(rng.standard_normal((3, 3)))
    matrix = rotation @ np.diag(spectrum_values) @ rotation.T
    start = rng.standard_normal(3)
    quadratic = Problem(objective=quadratic_objective, params0=jnp.asarray(start / np.linalg.norm(start)),
                        constants={"H": jnp.asarray(0.5 * (matrix + matrix.T))}, name="quadratic")
    top = max(spectrum_values)
    for rho in USAM_RHOS:
        predicted = 2.0 / (top * (1.0 + rho * top))
        measured = divergence_boundary(quadratic, rho, 0.5 * predicted, 1.5 * predicted)
        usam_rows.append({"lambda_max": top, "rho": rho, "predicted_lr": predicted,
                          "measured_lr": measured,
                          "relative_error": abs(measured - predicted) / predicted})

# %% tags=["exercise-check"]
usam_symbols = {"eta": stability.eta, "rho": stability.rho}
usam_limit = st.labkit.check_expression("usam_limit_formula", usam_limit_formula,
                                        stability.derive_usam_limit(), usam_symbols)
# At each measured boundary η (ρ > 0) the formula must give back the quadratic's λ_max. The
# bisection calls a step size stable when 3,000 steps do not grow the iterate, so a multiplier of
# modulus 1 + 1e-3 still passes: the measured η are ~5e-4 off (results: relative_error), hence 2e-3.
for row in (r for r in usam_rows if r["rho"] > 0):
    st.labkit.check_number("usam_limit_formula at a measured boundary",
                           float(usam_limit.subs({stability.eta: row["measured_lr"],
                                                  stability.rho: row["rho"]})),
                           row["lambda_max"], rtol=2e-3)

# %% [markdown]
# ## SAM's edge
# **Exercise 4 (coding).** SAM with its normalization frozen at the gradient norm g is USAM with
# radius ρ/g. Write `my_sam_edge(grad_norm, lr, rho)`, SAM's edge λ_SAM(g) for ρ > 0; it must
# work on a NumPy array of gradient norms (as the lab does with a whole run's record) and match
# `st.theory.stability.sam_edge` to 1e-9.

# %% tags=["exercise"]
def my_sam_edge(grad_norm, lr, rho):
    """SAM's edge λ_SAM(g) at gradient norm g, step size lr and radius rho > 0."""
    # BEGIN SOLUTION
    return grad_norm / (2 * rho) * (np.sqrt(1 + 8 * rho / (lr * grad_norm)) - 1)
    # END SOLUTION


# %% tags=["exercise-check"]
st.labkit.check_function(
    "my_sam_edge", my_sam_edge, stability.sam_edge,
    [(np.geomspace(1e-4, 10.0, 7), 0.1, 0.03), (np.array([0.5]), 2.0 / 26, 0.1),
     (np.array([2.0, 0.01]), 0.01, 0.5)], atol=1e-9)

# %%
sam_runs = {rho: st.run(problem, st.optim.sam(SAM_LR, rho), steps=STEPS, key=jax.random.key(0),
                        observe=OBSERVE, stride=STRIDE, params0=initial_params(0))
            for rho in lab.progress(SAM_RHOS, "SAM radii")}
sam_summary = []
for rho, traj in sam_runs.items():
    lam = sharpness_of(traj)
    edge = stability.sam_edge(np.asarray(traj.observed["grad_norm"]), SAM_LR, rho)
    late = slice(len(lam) // 10, None)  # after the initial transient (first 10% of the run)
    sam_summary.append({"rho": rho, "status": traj.status,
                        "late_median_abs_deviation_from_sam_edge": float(np.median(np.abs(lam[late] / edge[late] - 1))),
                        "late_max_over_gd_edge": float(lam[late].max() * SAM_LR / 2.0),
                        "final_sharpness": float(lam[-1]), "final_sam_edge": float(edge[-1]),
                        "final_loss": float(np.asarray(traj.observed["loss"])[-1])})


# %% [markdown]
# ## Figure
# Panel (a): λ_max of GD at the three step sizes against their 2/η (dashed); panel (b): the
# loss; panel (c): SAM's λ_max against its edge λ_SAM(‖∇L_t‖) (dotted) and 2/η; panel (d):
# USAM's measured divergence boundaries against the limit of Exercise 3.

# %%
def short_status(traj):
    """"ok", or "diverged" for a run that diverged (the step is in results.json)."""
    return "ok" if str(traj.status) == "ok" else "diverged"


runs = {}
fig, axes = st.plotting.figure(2, 2, width=3.6, height=2.7)
ax = axes[0, 0]
for index, edge in enumerate(EDGES):
    color = st.plotting.color_for("edge", index)
    label = f"GD, $\\eta$ = 2/{edge:g}"
    runs[label] = short_status(gd_runs[(0, edge)])
    st.plotting.plot_run(ax, steps_recorded, sharpness_of(gd_runs[(0, edge)]), color=color,
                         label=label, status=runs[label])
    ax.axhline(edge, color=color, linestyle="--", linewidth=1)
ax.set(title="(a) GD: sharpness rises to 2/$\\eta$ (dashed)", xlabel="step",
       ylabel="$\\lambda_{max}$ of the loss Hessian")
ax = axes[0, 1]
for index, edge in enumerate(EDGES):
    label = f"GD, $\\eta$ = 2/{edge:g}"
    st.plotting.plot_run(ax, steps_recorded, gd_runs[(0, edge)].observed["loss"],
                         color=st.plotting.color_for("edge", index), label=label, status=runs[label])
ax.set(title="(b) the loss keeps falling, non-monotonically", xlabel="step",
       ylabel="training loss (MSE / 2)", yscale="log")
st.plotting.legend_right(ax)
ax = axes[1, 0]
for index, (rho, traj) in enumerate(sam_runs.items()):
    color = st.plotting.color_for("sam", 0) if index == 0 else st.plotting.color_for("x", index + 3)
    edge = stability.sam_edge(np.asarray(traj.observed["grad_norm"]), SAM_LR, rho)
    label = f"SAM $\\lambda_{{max}}$, $\\rho$ = {rho:g}"
    runs[label] = short_status(traj)
    st.plotting.plot_run(ax, steps_recorded, sharpness_of(traj), color=color, label=label,
                         status=runs[label])
    ax.plot(steps_recorded, edge, color=color, linestyle=":", linewidth=2,
            label=f"$\\lambda_{{SAM}}(\\|\\nabla L_t\\|)$, $\\rho$ = {rho:g}")
ax.axhline(2.0 / SAM_LR, color="black", linestyle="--", linewidth=1, label="GD edge 2/$\\eta$")
ax.set(title=f"(c) SAM ($\\eta$ = {SAM_LR:g}) hovers at its own edge", xlabel="step",
       ylabel="$\\lambda_{max}$", yscale="log")
st.plotting.legend_right(ax)
ax = axes[1, 1]
for index, rho in enumerate(USAM_RHOS):
    rows = [r for r in usam_rows if r["rho"] == rho]
    grid = np.geomspace(0.8, 12, 100)
    color = st.plotting.PALETTE[(4, 6, 0, 3)[index]]
    ax.plot(grid, 2.0 / (grid * (1 + rho * grid)), color=color, linewidth=1,
            label=f"$\\eta\\lambda(1+\\rho\\lambda) = 2$, $\\rho$ = {rho:g}" + (" (GD)" if rho == 0 else ""))
    ax.plot([r["lambda_max"] for r in rows], [r["measured_lr"] for r in rows], "o", color=color)
ax.set(title="(d) USAM diverges past its limit (dots: bisection)",
       xlabel="$\\lambda_{max}$ of the quadratic", ylabel="largest stable step size $\\eta$",
       xscale="log", yscale="log")
st.plotting.legend_right(ax)
settled = [row["late_median_abs_deviation_from_sam_edge"] for row in sam_summary]
st.plotting.finding(fig, "GD's sharpness rises to 2/$\\eta$ and hovers there while the loss "
                    f"falls; SAM hovers at its own, lower edge (median deviation "
                    f"{max(settled):.1%} or less)")
lab.savefig(fig, "edge_of_stability", runs=runs, slide=True,
            claims=["cohen2021.eos.progressive_sharpening", "cohen2021.eos.hovers_at_two_over_eta",
                    "cohen2021.eos.loss_keeps_falling",
                    "long2024.sam_edge.trajectories_settle_at_sam_edge",
                    "agarwala2023.usam.quadratic_threshold", "cohen2021.quadratic.gd_threshold"])

# %%
lab.save_arrays(steps=steps_recorded, gd_edges=np.asarray(EDGES),
                gd_sharpness=np.stack([sharpness_of(gd_runs[(0, e)]) for e in EDGES]),
                gd_loss=np.stack([np.asarray(gd_runs[(0, e)].observed["loss"]) for e in EDGES]),
                sam_rhos=np.asarray(SAM_RHOS),
                sam_sharpness=np.stack([sharpness_of(t) for t in sam_runs.values()]),
                sam_grad_norm=np.stack([np.asarray(t.observed["grad_norm"]) for t in sam_runs.values()]),
                usam_boundaries=np.asarray([[r["lambda_max"], r["rho"], r["predicted_lr"], r["measured_lr"]]
                                            for r in usam_rows]))
measured = {
    "gd_runs": gd_summary,
    "lanczos_vs_dense_max_relative_error": float(max(dense_check)),
    "sharpness_method": ("warm-started Lanczos vs cold 120-step Lanczos" if LARGE
                         else "30-step Lanczos vs dense eigh"),
    "sam_runs": sam_summary, "sam_lr": SAM_LR,
    "usam_boundaries": usam_rows,
    "usam_max_relative_error": float(max(r["relative_error"] for r in usam_rows if r["rho"] > 0)),
    "gd_quadratic_max_relative_error": float(max(r["relative_error"] for r in usam_rows if r["rho"] == 0)),
}
if LARGE:  # HVPs per record of the warm-started λ_max (the first record includes the cold solve)
    matvecs = np.concatenate([np.asarray(t.observed["sharpness.matvecs"])[1:]
                              for t in list(gd_runs.values()) + list(sam_runs.values())])
    measured["warm_spectrum"] = {"parameters": 3 * WIDTH, "stride": STRIDE,
                                 "matvecs_per_record_mean": float(np.nanmean(matvecs)),
                                 "matvecs_per_record_max": float(np.nanmax(matvecs))}
results = lab.finish(measured)

# %% [markdown]
# **Your predictions against the measurements.**

# %%
st.labkit.compare_predictions(results, {
    "cohen2021.eos.hovers_at_two_over_eta": predict_hovers_at_edge,
    "long2024.sam_edge.trajectories_settle_at_sam_edge": predict_sam_lower_edge,
})

# %% [markdown]
# ## Try it yourself
# Move the sliders: GD's edge 2/η (the step size is η = 2/edge) and SAM's radius ρ at the same
# step size. Each change reruns both for 6,000 steps from the same start and draws λ_max against
# the edges. Step size and radius are pytree leaves: a change reuses the compiled program.


# %%
def explore_edge(edge=26.0, rho=0.03, steps=6_000):
    """λ_max over training under GD and SAM at η = 2/edge, with GD's edge drawn."""
    import matplotlib.pyplot as plt

    observe = {"sharpness": of_params_and_problem(sharpness)}
    lr = 2.0 / edge
    fig, ax = plt.subplots(figsize=(5, 3.2))
    for name, optimizer in {"GD": st.optim.gd(lr), f"SAM": st.optim.sam(lr=lr, rho=rho)}.items():
        run = st.run(problem, optimizer, steps=steps, key=jax.random.key(0), observe=observe,
                     stride=steps // 40, params0=initial_params(0))
        ax.plot(run.steps, run.observed["sharpness"], label=f"{name} ({run.status})")
    ax.axhline(edge, color="k", ls="--", lw=1, label="GD's edge $2/\\eta$")
    ax.set(xlabel="step", ylabel="$\\lambda_{\\max}$",
           title=f"$2/\\eta$ = {edge:.0f}, $\\rho$ = {rho:.3f}")
    ax.legend()
    plt.show()


controls = st.labkit.sliders(explore_edge, edge=(15.0, 40.0, 26.0), rho=(0.0, 0.1, 0.03))
