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
# # What SAM does: the objective, the update, and where it goes
#
# *Lab 0 of the course: 30–45 minutes, no prerequisites beyond gradient descent and a Hessian.*
#
# **The objective.** Sharpness-aware minimization (SAM; Foret, Kleiner, Mobahi, Neyshabur, ICLR
# 2021) does not minimize the loss $L(w)$ itself but the worst loss in a ball of radius $\rho$
# around $w$:
#
# $$\min_w \; \max_{\|\varepsilon\|_2 \le \rho} L(w + \varepsilon).$$
#
# A point whose neighbourhood is flat scores almost its own loss; a point at the bottom of a
# narrow valley scores much worse. To first order in $\rho$ the inner maximum is attained at
#
# $$\varepsilon^\star(w) = \rho\,\frac{\nabla L(w)}{\|\nabla L(w)\|},$$
#
# and SAM takes the gradient **there**, then steps from $w$:
#
# $$w_{t+1} = w_t - \eta\,\nabla L\!\left(w_t + \rho\,\frac{\nabla L(w_t)}{\|\nabla L(w_t)\|}\right).$$
#
# Two gradient evaluations per step instead of one. With $\rho = 0$ it is gradient descent (GD).
#
# **Sharpness.** Near a minimizer $w^\star$, $L(w^\star + \varepsilon) \approx L(w^\star) +
# \tfrac12 \varepsilon^\top H \varepsilon$ with $H = \nabla^2 L(w^\star)$, so the worst loss in the
# ball is $L(w^\star) + \tfrac12 \rho^2 \lambda_{\max}(H)$: the top Hessian eigenvalue
# $\lambda_{\max}$ measures sharpness in the worst direction, the trace $\operatorname{tr} H$ (the
# sum of all curvatures) on average over directions. This lab computes both exactly.
#
# You will see two things SAM does that GD does not:
# 1. on a quadratic bowl, SAM never settles: it ends **bouncing across** the sharp direction in a
#    2-cycle of a predictable size;
# 2. on $f(x, y) = (xy - 1)^2/2$, whose minimizers form the curve $xy = 1$ (a valley), that
#    bouncing **drifts SAM along the valley** to its flattest point, where GD stays put.
#
# Before each experiment you will predict a number, derive a formula or write code; the checks
# tell you whether you were right.

# %% [markdown] tags=["predict"]
# **Predict, then run.** With $\rho = 0$ the ascent step vanishes. Does SAM then take *exactly*
# gradient descent's steps, bit for bit, or only approximately (its normalization divides by the
# gradient's norm)?

# %% tags=["prediction"]
predict_rho_zero_is_gd = True  # SOLUTION

# %%
import jax
import jax.numpy as jnp
import numpy as np

import sharp_theory as st
from sharp_theory.observables import of_params
from sharp_theory.theory import stability

lab = st.labkit.start("what-sam-does", default_seeds=1, quick_seeds=1)
CURVATURES = (10.0, 1.0)  # the bowl L(w) = ½(10 w₁² + w₂²): λ_max = 10, trace 11
BOWL_LR, BOWL_RHO, BOWL_STEPS = 0.15, 0.05, 400
VALLEY_START = (2.0, 0.45)  # near the valley xy = 1, far from its flattest point x = y = 1
VALLEY_LR, VALLEY_RHO = 0.1, 0.1
VALLEY_STEPS = 2_000 if lab.quick else 5_000
lab.record_config(curvatures=CURVATURES, bowl_lr=BOWL_LR, bowl_rho=BOWL_RHO, bowl_steps=BOWL_STEPS,
                  valley_start=VALLEY_START, valley_lr=VALLEY_LR, valley_rho=VALLEY_RHO,
                  valley_steps=VALLEY_STEPS)


# %% [markdown]
# ## 1. A quadratic bowl: GD converges, SAM bounces
#
# On $L(w) = \tfrac12 (10 w_1^2 + w_2^2)$ with $\eta = 0.15$ GD is stable ($\eta\lambda_{\max} =
# 1.5 < 2$) and converges to $0$. SAM's perturbation has length $\rho$ whatever the gradient, so
# close to the minimum it keeps kicking the iterate across the sharp axis.
#
# **Exercise 1 (numeric prediction).** Along the sharp axis SAM's update is
# $w_1 \leftarrow (1 - \eta\lambda) w_1 - \eta\lambda\rho\,\mathrm{sign}(w_1)$. Look for a 2-cycle
# $w_1 \leftrightarrow -w_1$ and compute its radius for $\eta = 0.15$, $\rho = 0.05$, $\lambda = 10$.
# Write the number (graded within 2% of what the run measures).

# %% tags=["exercise"]
predicted_two_cycle_radius = 0.15  # SOLUTION

# %%
def bowl_loss(w, batch):
    return 0.5 * (CURVATURES[0] * w[0] ** 2 + CURVATURES[1] * w[1] ** 2)


bowl = st.problems.from_loss(bowl_loss, jnp.array([1.0, 1.0]), name="quadratic bowl")
position = {"w": of_params(lambda w: w)}
bowl_runs = {name: st.run(bowl, optimizer, steps=BOWL_STEPS, key=jax.random.key(0),
                          observe=position, stride=1)
             for name, optimizer in [("GD", st.optim.gd(BOWL_LR)),
                                     ("SAM", st.optim.sam(BOWL_LR, BOWL_RHO)),
                                     ("SAM, rho = 0", st.optim.sam(BOWL_LR, 0.0))]}
late = np.asarray(bowl_runs["SAM"].observed["w"])[-20:]
measured_radius = float(np.abs(late[:, 0]).mean())
radius_spread = float(np.abs(late[:, 0]).max() - np.abs(late[:, 0]).min())
gd_final_distance = float(np.linalg.norm(np.asarray(bowl_runs["GD"].observed["w"])[-1]))
rho_zero_gap = float(np.max(np.abs(np.asarray(bowl_runs["SAM, rho = 0"].observed["w"])
                                   - np.asarray(bowl_runs["GD"].observed["w"]))))
print(f"SAM's late |w1|: {measured_radius:.6g} (spread {radius_spread:.2g}); GD ends "
      f"{gd_final_distance:.2g} from the minimum; SAM with rho = 0 differs from GD by {rho_zero_gap:g}")

# %% tags=["exercise-check"]
st.labkit.check_number("predicted_two_cycle_radius", predicted_two_cycle_radius, measured_radius,
                       rtol=0.02)

# %% [markdown]
# **Exercise 2 (derivation).** Solve the 2-cycle condition for general $\eta$, $\rho$, $\lambda$
# (with $\eta\lambda < 2$) and write the radius as a formula in the symbols `eta`, `rho`, `lam`
# (a string such as `"eta*rho/(1 + lam)"`). It is checked symbolically against the library's
# closed form and numerically against the run.

# %% tags=["exercise"]
two_cycle_radius_formula = "eta*rho*lam/(2 - eta*lam)"  # SOLUTION

# %% tags=["exercise-check"]
symbols = {"eta": stability.eta, "rho": stability.rho, "lam": stability.lam}
formula = st.labkit.check_expression("two_cycle_radius_formula", two_cycle_radius_formula,
                                     stability.derive_sam_two_cycle_radius(), symbols)
st.labkit.check_number(
    "two_cycle_radius_formula at the bowl's numbers",
    float(formula.subs({stability.eta: BOWL_LR, stability.rho: BOWL_RHO,
                        stability.lam: CURVATURES[0]})), measured_radius, rtol=1e-6)

# %% [markdown]
# **Exercise 3 (coding).** Write one SAM step for a loss whose gradient you are given, on plain
# arrays: ascend by $\rho$ along the normalized gradient, take the gradient there, step from $w$.
# It must match `st.optim.sam` to $10^{-12}$ on random quadratics (the check draws them).

# %% tags=["exercise"]
def my_sam_step(w, gradient, lr, rho):
    """One SAM step from w, for a function ``gradient(w)``."""
    # BEGIN SOLUTION
    g = gradient(w)
    ascent = w + rho * g / jnp.linalg.norm(g)
    return w - lr * gradient(ascent)
    # END SOLUTION


# %% tags=["exercise-check"]
def library_sam_step(w, curvatures, lr, rho):
    problem = st.problems.from_loss(lambda v, b: 0.5 * jnp.sum(curvatures * v ** 2), w)
    return st.run(problem, st.optim.sam(lr, rho), steps=1, key=jax.random.key(0)).params


st.labkit.check_function(
    "my_sam_step",
    lambda w, c, lr, rho: my_sam_step(w, lambda v: c * v, lr, rho), library_sam_step,
    [(jax.random.normal(jax.random.key(i), (3,)), jnp.array([3.0, 1.0, 0.2]) * (i + 1), 0.1, 0.05 * i)
     for i in range(1, 4)], atol=1e-12)

# %%
fig, axes = st.plotting.figure(1, 2)
for (name, run), style in zip(list(bowl_runs.items())[:2], ("-", "-")):
    w = np.asarray(run.observed["w"])
    axes[0, 0].plot(w[:, 0], w[:, 1], style, marker=".", markersize=3, label=name)
    axes[0, 1].semilogy(np.abs(w[:, 0]) + 1e-300, label=name)
axes[0, 1].axhline(stability.sam_two_cycle_radius(BOWL_LR, BOWL_RHO, CURVATURES[0]), ls="--",
                   color="black", label="ηρλ/(2 − ηλ)")
axes[0, 0].set(xlabel="w₁ (sharp, λ = 10)", ylabel="w₂ (flat, λ = 1)", title="(a) paths in the bowl")
axes[0, 1].set(xlabel="step", ylabel="|w₁|", title="(b) the sharp coordinate", ylim=(1e-30, 2))
axes[0, 0].legend()
axes[0, 1].legend()
st.plotting.finding(fig, f"GD converges; SAM ends in a 2-cycle of radius {measured_radius:.3g} "
                         "across the sharp axis")
lab.savefig(fig, "bowl", claims=["bartlett2023.what_sam_does.two_cycle_radius",
                                 "foret2021.what_sam_does.rho_zero_is_gd"],
            runs={"GD": "ok", "SAM": "ok"})

# %% [markdown]
# ## 2. A valley of minimizers: SAM drifts to the flattest point
#
# $f(x, y) = \tfrac12 (xy - 1)^2$ is minimal on the whole curve $xy = 1$. At a minimizer its
# Hessian is $\begin{pmatrix} y^2 & xy \\ xy & x^2 \end{pmatrix}$, with eigenvalues $x^2 + y^2$
# and $0$: $\lambda_{\max} = \operatorname{tr} H = x^2 + y^2$, smallest ($= 2$) at $x = y = 1$.
# The balancedness $B = (x^2 - y^2)/2$ says where on the valley we are ($B = 0$ at the flattest
# point); gradient flow keeps $B$ exactly. Start at $(2, 0.45)$, close to the valley at its sharp
# end ($\lambda_{\max} \approx 4.2$ there).
#
# **Exercise 4 (numeric prediction).** Where does SAM's $\lambda_{\max} = x^2 + y^2$ end up
# after the run? Give a number (graded within 5% of the measured average over the last two
# steps, which smooths SAM's 2-cycle).

# %% tags=["exercise"]
predicted_sam_final_sharpness = 2.0  # SOLUTION

# %%
valley = st.problems.scalar_product(lambda w: 0.5 * (w - 1.0) ** 2, x0=[VALLEY_START[0]],
                                    y0=[VALLEY_START[1]])
valley_observe = {"x": of_params(lambda p: p["x"][0]), "y": of_params(lambda p: p["y"][0])}
valley_runs = {name: st.run(valley, optimizer, steps=VALLEY_STEPS, key=jax.random.key(0),
                            observe=valley_observe, stride=1)
               for name, optimizer in [("GD", st.optim.gd(VALLEY_LR)),
                                       ("SAM", st.optim.sam(VALLEY_LR, VALLEY_RHO)),
                                       ("SAM, rho = 0", st.optim.sam(VALLEY_LR, 0.0))]}


def valley_numbers(run):
    x, y = np.asarray(run.observed["x"]), np.asarray(run.observed["y"])
    sharpness = x ** 2 + y ** 2  # λ_max = trace at a minimizer (checked against the Hessian below)
    return {"final_lambda_max": float(sharpness[-2:].mean()),
            "final_balancedness": float(np.abs((x[-2:] ** 2 - y[-2:] ** 2) / 2).mean()),
            "initial_balancedness": float((x[0] ** 2 - y[0] ** 2) / 2),
            "final_loss": float(0.5 * (x[-1] * y[-1] - 1) ** 2), "status": run.status}


valley_measured = {name: valley_numbers(run) for name, run in valley_runs.items()}
# The exact Hessian at GD's endpoint: λ_max and the trace equal x² + y² there.
gd_end = valley_runs["GD"].params
hessian_eigenvalues = np.asarray(st.measure.hessian_eigenvalues(lambda p: valley.loss(p, None),
                                                                gd_end))
valley_measured["GD"]["exact_lambda_max"] = float(hessian_eigenvalues[-1])
valley_measured["GD"]["exact_trace"] = float(hessian_eigenvalues.sum())
valley_rho_zero_gap = float(max(np.max(np.abs(np.asarray(valley_runs["SAM, rho = 0"].observed[k])
                                              - np.asarray(valley_runs["GD"].observed[k])))
                                for k in ("x", "y")))
for name, numbers in valley_measured.items():
    print(name, {k: (round(v, 6) if isinstance(v, float) else v) for k, v in numbers.items()})

# %% tags=["exercise-check"]
st.labkit.check_number("predicted_sam_final_sharpness", predicted_sam_final_sharpness,
                       valley_measured["SAM"]["final_lambda_max"], rtol=0.05)

# %%
fig, axes = st.plotting.figure(1, 2)
curve = np.linspace(0.4, 2.6, 200)
axes[0, 0].plot(curve, 1 / curve, color="gray", lw=1, label="minimizers xy = 1")
for name in ("GD", "SAM"):
    run = valley_runs[name]
    axes[0, 0].plot(np.asarray(run.observed["x"]), np.asarray(run.observed["y"]), ".",
                    markersize=2, label=name)
    sharpness = np.asarray(run.observed["x"]) ** 2 + np.asarray(run.observed["y"]) ** 2
    axes[0, 1].plot(np.asarray(run.steps), sharpness, label=name)
axes[0, 1].axhline(2.0, ls="--", color="black", label="flattest minimizer (λ = 2)")
axes[0, 0].set(xlabel="x", ylabel="y", title="(a) paths near the valley", xlim=(0.3, 2.7),
               ylim=(0.3, 2.7))
axes[0, 1].set(xlabel="step", ylabel=r"$\lambda_{\max} = x^2 + y^2$",
               title="(b) sharpness along the run")
axes[0, 0].legend()
axes[0, 1].legend()
st.plotting.finding(fig, "GD stops where it reaches the valley; SAM slides along it to x = y "
                         rf"($\lambda_{{\max}}$ {valley_measured['SAM']['final_lambda_max']:.3g} vs GD's "
                         f"{valley_measured['GD']['final_lambda_max']:.3g})")
lab.savefig(fig, "valley", claims=["li2024.what_sam_does.drifts_to_the_flattest_minimizer"],
            runs={"GD": valley_runs["GD"].status, "SAM": valley_runs["SAM"].status}, slide=True)

# %% [markdown]
# **Exercise 5 (open question).** GD reaches the valley and stops; SAM keeps moving along it.
# Using the bowl of part 1, explain in a few sentences *what* moves SAM once it is in the
# valley (the gradient there is nearly zero), and why that motion points towards smaller
# $x^2 + y^2$. What would happen with USAM (no normalization of the ascent step)?

# %% tags=["teacher-note"]
# Teacher's note (not on the students' site): near the valley the normalized ascent step has
# length ρ whatever the gradient, so SAM sits in a 2-cycle across the valley (part 1, along the
# valley's sharp direction, whose curvature is x² + y²). The gradient taken at the far side of
# the cycle has a component *along* the valley: the curvature across it changes along it, and
# the two-point average of the cycle descends ρ²-times the gradient of λ_max (Wen, Ma, Li 2023;
# Bartlett, Long, Bousquet 2023). In balancedness terms, one SAM step changes B by
# -ηρ·f'·(x² - y²)/‖∇‖-type terms that shrink |B| (Li, Zhang, He 2024). USAM's ascent step
# ρ∇L vanishes with the gradient, so it stops too: its drift is O(ρ‖∇L‖) and dies at the valley.

# %%
measured = {
    "bowl": {"sam_late_radius": measured_radius, "sam_late_radius_spread": radius_spread,
             "predicted_radius": float(stability.sam_two_cycle_radius(BOWL_LR, BOWL_RHO,
                                                                      CURVATURES[0])),
             "gd_final_distance": gd_final_distance, "rho_zero_max_difference": rho_zero_gap,
             "statuses": {name: run.status for name, run in bowl_runs.items()}},
    "valley": dict(valley_measured, rho_zero_max_difference=valley_rho_zero_gap),
}
lab.save_arrays(**{f"bowl_{name.replace(' ', '_').replace(',', '')}": np.asarray(run.observed["w"])
                   for name, run in bowl_runs.items()})
results = lab.finish(measured)

# %% [markdown]
# **Your prediction against the measurement.**

# %%
st.labkit.compare_predictions(results, {
    "foret2021.what_sam_does.rho_zero_is_gd": predict_rho_zero_is_gd,
})
