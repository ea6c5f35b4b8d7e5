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
# # SAM balances scale-invariant factors (Li, Zhang, He 2024)
# On `f(xᵀy)` (OP) and `f(xyᵀ)` (NOP) the balancedness `B = ½(‖x‖² − ‖y‖²)` is conserved by
# gradient flow, but SAM moves it: towards 0 on OP, towards `‖g_x‖ = ‖g_y‖` on NOP, faster
# when the data are noisier. This lab reproduces the paper's toys (App. A.4: 3-dimensional,
# `x0 = (0.2, −0.1, 0.3)`, `y0 = −3x0`, fresh noise each step, T = 1e5, η = 1e-4) and checks
# claims 1–6 of papers/li2024-balancedness.md:
#
# * exact one-step GD identities on real trajectories (claim 1), and SGD's conservation;
# * Fig. 1a/1b: `|‖x‖² − ‖y‖²|` under SGD and SAM for noise levels α ∈ {0, 0.25, 0.5, 1};
#   SAM's OP decay against the exact expected rate (Lemma 2 plus its O(ρ²) term);
#   USAM and m-SAM (1-SAM vs SAM on a batch of 4 fresh draws);
# * Fig. 2b: BAR (nBAR, oBAR) beside SAM at half the gradient cost;
# * Lemma 1: exact Hessians of minimizers against `f''(w)(‖x‖² + ‖y‖²)`;
# * the D-layer LoRA-like problem: SAM's per-layer pull weakens like ρ/√D, BAR's does not;
# * where SAM collapses to the saddle at 0 (noise α ≥ 1.5 here).
#
# Reference: B. Li, L. Zhang, N. He. Implicit Regularization of Sharpness-Aware Minimization for
# Scale-Invariant Problems. NeurIPS 2024, arXiv:2410.14802.

# %%
import jax
import jax.numpy as jnp
import numpy as np

import sharp_theory as st
import sharp_theory.plotting  # noqa: F401  (st.plotting)
from sharp_theory.observables import of_params, of_params_and_problem
from sharp_theory.problems.scale_invariant import (expected_squared_gradients,
                                                   op_sam_expected_log_rate, op_sam_step_factor)

lab = st.labkit.start("balancedness", default_seeds=8, quick_seeds=2)

# Paper settings (App. A.4). Quick mode keeps the horizon t = η·T = 10 with 50x fewer, larger steps.
STEPS = 2_000 if lab.quick else 100_000
LR = 5e-3 if lab.quick else 1e-4
RECORDS = 100 if lab.quick else 200
STRIDE = STEPS // RECORDS
NOISE_LEVELS = [0.0, 0.25, 0.5, 1.0]
RHO_OP, RHO_NOP = 0.2, 0.1
M_SAM_BATCH = 4
LAYERS = [1, 4] if lab.quick else [1, 4, 16]
SADDLE_NOISE = [1.0, 1.25, 1.5, 2.0]
SEEDS = lab.seeds
lab.record_config(steps=STEPS, lr=LR, stride=STRIDE, noise_levels=NOISE_LEVELS, rho_op=RHO_OP,
                  rho_nop=RHO_NOP, m_sam_batch=M_SAM_BATCH, lora_layers=LAYERS,
                  saddle_noise=SADDLE_NOISE, seeds=SEEDS, dtype="float64")
measured = {}


# %% [markdown] tags=["predict"]
# **Predict, then run.** Both toys start unbalanced (`y0 = −3x0`, so B = ½(‖x‖² − ‖y‖²) < 0).
# Under SGD with small steps, does B stay where it started? Set `predict_sgd_conserves` to
# `True` (B is conserved as η → 0) or `False`.

# %% tags=["prediction"]
predict_sgd_conserves = True  # SOLUTION

# %% [markdown] tags=["predict"]
# **Predict, then run.** And SAM on `f(xᵀy)`: does it drive |B| to 0, at the rate Lemma 2 plus
# its O(ρ²) term gives? Set `predict_sam_balances` to `True` or `False`. The table at the end of
# the lab confirms or contradicts both predictions with the measured verdicts.

# %% tags=["prediction"]
predict_sam_balances = True  # SOLUTION

# %% [markdown]
# Observables are module-level functions (static arguments of the compiled sweep).

# %%
def balancedness(params):
    return st.measure.balancedness(params)


def factor_x(params):
    return params["x"]


def factor_y(params):
    return params["y"]


def squared_norm(params):
    """‖x‖² + ‖y‖² per pair (summed over a layer's rank columns)."""
    pairs = params if isinstance(params, list) else [params]
    values = jnp.stack([jnp.sum(p["x"] ** 2) + jnp.sum(p["y"] ** 2) for p in pairs])
    return values[0] if isinstance(params, dict) else values


def population_loss(params, problem):
    return problem.evaluation_loss(params)


OBSERVE = {"B": of_params(balancedness), "x": of_params(factor_x), "y": of_params(factor_y),
           "loss": of_params_and_problem(population_loss)}
OBSERVE_LORA = {"B": of_params(balancedness), "loss": of_params_and_problem(population_loss)}


def median_abs_final(trajectory, name="B"):
    """Median over seeds of |final value| (arrays: grid..., seed)."""
    return np.median(np.abs(trajectory.final(name)), axis=-1)


# %% [markdown]
# ## Claim 1: exact one-step identities, checked on trajectories
# Gradient flow conserves B: along `ẋ = −f'(xᵀy) y`, `ẏ = −f'(xᵀy) x` both `½‖x‖²` and `½‖y‖²`
# change at the same rate `−f'·xᵀy`. A step of finite size η does not quite.
#
# **Exercise 1 (derivation).** One GD step on `f(xᵀy)` is `x⁺ = x − ηf'y`, `y⁺ = y − ηf'x`
# with `f' = f'(xᵀy)`. Expand `B⁺ = ½(‖x⁺‖² − ‖y⁺‖²)` and write the ratio `B⁺/B` as a formula
# in `eta` and `fp` (for f') — a string such as `"1 - eta*fp"`. It is checked symbolically
# against sympy's expansion of the update (`st.theory.scale_invariant.op_gd_step`); the run
# below then shows the factor holding, to round-off, on every step of a real trajectory.

# %% tags=["exercise"]
gd_balancedness_factor = "1 - eta**2*fp**2"  # SOLUTION

# %% [markdown]
# The run below checks the factor of Exercise 1 on OP and its analogue on `f(xyᵀ)`, where one
# step adds `(η²/2)(‖g_x‖² − ‖g_y‖²)` to B. We run SGD with fresh noise (α = 1) at a large step
# η = 0.05 (so the O(η²) change is visible), record every iterate, replay each step's noise draw
# with `problem.batch(key, step)`, and compare. The same replay checks the exact SAM identity on
# OP, `B⁺ = (1 − 2ηρ s f̃'/N − η²f̃'²(1 − ρ²/N²)) B`, derived from the update the same way
# (`s = sign f'`, `N² = ‖x‖² + ‖y‖²`, `f̃'` the derivative at the ascent point).

# %%
IDENTITY_STEPS, IDENTITY_LR = (50 if lab.quick else 200), 0.05
identity_key = jax.random.key(123)


def replay(problem, optimizer, key):
    """Every iterate of a short run, and the batch each step used (replayed from the key)."""
    trajectory = st.run(problem, optimizer, steps=IDENTITY_STEPS, key=key,
                        observe={"x": of_params(factor_x), "y": of_params(factor_y), "B": of_params(balancedness)}, stride=1)
    batches = jax.vmap(lambda step: problem.batch(key, step, 1))(jnp.arange(IDENTITY_STEPS))
    return trajectory.observed, batches


def op_derivative(problem, w, batch):
    """f'(w) of the OP toy's per-batch loss as a function of the product w."""
    def f(product):
        labels = problem.constants["target"] + problem.constants["noise"] * batch["n"]
        return jnp.mean((product - labels) ** 2)
    return jax.grad(f)(w)


@jax.jit
def op_gd_identity_error(problem, x, y, b_next, batch, lr):
    fprime = op_derivative(problem, x @ y, batch)
    return jnp.abs(b_next - (1.0 - lr**2 * fprime**2) * balancedness({"x": x, "y": y}))


@jax.jit
def nop_gd_identity_error(problem, x, y, b_next, batch, lr):
    params = {"x": x, "y": y}
    grads = jax.grad(problem.loss)(params, batch)
    change = lr**2 / 2 * (jnp.sum(grads["x"] ** 2) - jnp.sum(grads["y"] ** 2))
    return jnp.abs(b_next - (balancedness(params) + change))


@jax.jit
def op_sam_identity_error(problem, x, y, b_next, batch, lr, rho):
    fprime = op_derivative(problem, x @ y, batch)
    scale = rho * jnp.sign(fprime) / jnp.sqrt(x @ x + y @ y)
    fprime_perturbed = op_derivative(problem, (x + scale * y) @ (y + scale * x), batch)
    factor = op_sam_step_factor(x, y, fprime, fprime_perturbed, lr, rho)
    return jnp.abs(b_next - factor * balancedness({"x": x, "y": y}))


def identity_errors(check, problem, optimizer, *extra):
    observed, batches = replay(problem, optimizer, identity_key)
    x, y, b = observed["x"], observed["y"], observed["B"]
    errors = jax.vmap(check, in_axes=(None, 0, 0, 0, 0) + (None,) * len(extra))(
        problem, x[:-1], y[:-1], b[1:], batches, *extra)
    changes = jnp.abs(jnp.diff(b))
    squared = jnp.sum(x**2, -1) + jnp.sum(y**2, -1)
    return float(jnp.max(errors)), float(jnp.mean(changes)), float(jnp.max(squared))


op_identity = st.problems.op_toy(noise=1.0)
nop_identity = st.problems.nop_toy(noise=1.0)
op_error, op_change, op_norm = identity_errors(op_gd_identity_error, op_identity,
                                               st.optim.sgd(IDENTITY_LR), IDENTITY_LR)
nop_error, nop_change, nop_norm = identity_errors(nop_gd_identity_error, nop_identity,
                                                  st.optim.sgd(IDENTITY_LR), IDENTITY_LR)
sam_error, sam_change, sam_norm = identity_errors(op_sam_identity_error, op_identity,
                                                  st.optim.sam(IDENTITY_LR, RHO_OP), IDENTITY_LR, RHO_OP)

# float64 round-off of B = ½(‖x‖² − ‖y‖²) is a few eps·(‖x‖² + ‖y‖²) ~ 1e-15 here.
measured["gd_identity"] = {
    "steps": IDENTITY_STEPS, "lr": IDENTITY_LR,
    "op_max_abs_error": op_error, "op_mean_abs_change": op_change,
    "nop_max_abs_error": nop_error, "nop_mean_abs_change": nop_change,
    "sam_op_max_abs_error": sam_error, "sam_op_mean_abs_change": sam_change,
    "max_squared_norm": max(op_norm, nop_norm, sam_norm),
}
print(measured["gd_identity"])

# %% tags=["exercise-check"]
import sympy  # noqa: E402

one_step = st.theory.scale_invariant.op_gd_step(dimension=1)
st.labkit.check_expression(
    "gd_balancedness_factor", gd_balancedness_factor,
    sympy.cancel(one_step["next_balancedness"] / one_step["balancedness"]),
    {"eta": one_step["eta"], "fp": one_step["fprime"]})

# %% [markdown]
# **Exercise 2 (numeric prediction).** Now SAM on the noiseless OP toy (α = 0, step `LR`,
# radius `RHO_OP`: η = 0.005 and ρ = 0.2 at quick sizes, over T = 2,000 steps). Within a few
# units of time it fits `xᵀy = 0.5`; after that |B| keeps shrinking by the same fraction every
# step. Predict that per-step rate `−Δ log|B|` from the exact SAM factor above (a number, or an
# expression in `LR` and `RHO_OP`). Hint: the ascent moves the product to about `xᵀy + sρN`,
# so once the fit is exact `s f̃' ≈ 2ρN`, and terms of order η² are negligible. The lab
# measures the rate over the last quarter of the run (median over seeds); graded within 5%, the
# size of the corrections you neglect (relative O(ηN²) and O(ρ²/N²), about 2% at quick sizes).

# %% tags=["exercise"]
predicted_noiseless_decay_rate = 4 * LR * RHO_OP**2  # SOLUTION

# %% [markdown]
# ## Fig. 1b (OP) and Fig. 2b: SGD, SAM, USAM, nBAR, oBAR on `E(xᵀy − (0.5 + αn))²`
# **Choosing BAR's α.** BAR moves B by `∓α(‖x‖² + ‖y‖²)` per unit time (η·steps), SAM by
# Thm 2's `ρ(‖g_x‖² − ‖g_y‖²)/‖g‖`. We set α so the two speeds agree at the start of the run
# for the middle noise level α_noise = 0.5 (the drift averaged over 4096 noise draws), and decay it
# with a cosine schedule to 0 at T, as the paper recommends decreasing schedules. A constant α
# never stops pushing: on the NOP toy without noise it drives ‖x‖ → ∞ (we saw B ≈ 5e3).
# On OP, nBAR and oBAR choose the same direction (‖g_x‖ = |f'|‖y‖, ‖g_y‖ = |f'|‖x‖), so they
# coincide up to ties.


# %%
def matched_bar_alpha(problem, rho):
    """α for BAR: SAM's initial |dB/dt| (Thm 2, mean over 4096 draws) over ‖x0‖² + ‖y0‖²."""
    draws = problem.batch(jax.random.key(2024), 0, 4096)
    draws = jax.tree_util.tree_map(lambda n: n[:, None], draws)  # 4096 batches of one draw
    drift = st.measure.sam_balancedness_drift(problem.loss, problem.params0, draws, rho)
    speed = float(jnp.abs(drift))
    return speed / float(squared_norm(problem.params0)), speed


op_problem = st.problems.op_toy()
nop_problem = st.problems.nop_toy()
ALPHA_OP, SAM_SPEED_OP = matched_bar_alpha(op_problem.with_constants(noise=0.5), RHO_OP)
ALPHA_NOP, SAM_SPEED_NOP = matched_bar_alpha(nop_problem.with_constants(noise=0.5), RHO_NOP)
lab.record_config(bar_alpha_op=ALPHA_OP, bar_alpha_nop=ALPHA_NOP, bar_schedule="cosine",
                  bar_alpha_rule="SAM's initial |dB/dt| at noise 0.5 divided by ‖x0‖²+‖y0‖²")
print(f"BAR alpha: OP {ALPHA_OP:.4f} (SAM speed {SAM_SPEED_OP:.4f}), "
      f"NOP {ALPHA_NOP:.4f} (SAM speed {SAM_SPEED_NOP:.4f})")

op_optimizers = {
    "SGD": st.optim.sgd(LR),
    f"SAM (ρ={RHO_OP})": st.optim.sam(LR, RHO_OP),
    f"USAM (ρ={RHO_OP})": st.optim.usam(LR, RHO_OP),
    "nBAR": st.optim.nbar(LR, ALPHA_OP, schedule="cosine", horizon=STEPS),
    "oBAR": st.optim.obar(LR, ALPHA_OP, schedule="cosine", horizon=STEPS),
}
OP_SAM = f"SAM (ρ={RHO_OP})"
op_result = st.sweep(op_problem, op_optimizers, steps=STEPS, seeds=SEEDS,
                     grid={"noise": NOISE_LEVELS}, observe=OBSERVE, stride=STRIDE)
steps_axis = op_result[OP_SAM].steps

# %% [markdown]
# m-sharpness on OP: a batch of 4 fresh draws per step; SAM with one ascent for the batch
# ("n-SAM", m = 4) against 1-SAM (m = 1, one ascent per draw). SGD on the same batches for scale.

# %%
m_optimizers = {
    f"SGD (batch {M_SAM_BATCH})": st.optim.sgd(LR, batch_size=M_SAM_BATCH),
    f"n-SAM (ρ={RHO_OP}, m={M_SAM_BATCH})": st.optim.sam(LR, RHO_OP, batch_size=M_SAM_BATCH),
    f"1-SAM (ρ={RHO_OP}, m=1)": st.optim.sam(LR, RHO_OP, m=1, batch_size=M_SAM_BATCH),
}
m_result = st.sweep(op_problem, m_optimizers, steps=STEPS, seeds=SEEDS, grid={"noise": NOISE_LEVELS},
                    observe=OBSERVE, stride=STRIDE)

# %% [markdown]
# ## Fig. 1a: NOP `E‖xyᵀ − (A + αN)‖²_F`, SGD vs SAM (ρ = 0.1) and nBAR

# %%
nop_optimizers = {"SGD": st.optim.sgd(LR), f"SAM (ρ={RHO_NOP})": st.optim.sam(LR, RHO_NOP),
                  "nBAR": st.optim.nbar(LR, ALPHA_NOP, schedule="cosine", horizon=STEPS)}
NOP_SAM = f"SAM (ρ={RHO_NOP})"
nop_result = st.sweep(nop_problem, nop_optimizers, steps=STEPS, seeds=SEEDS,
                      grid={"noise": NOISE_LEVELS}, observe=OBSERVE, stride=STRIDE)


# %% [markdown]
# Post-processing: expected gradient norms (exact, `expected_squared_gradients`) along the
# recorded iterates, and on OP the exact expected SAM decay rate integrated along the run.

# %%
@jax.jit
def _expected_gradients_grid(problem, noise_levels, xs, ys):
    def at(noise, x, y):
        return expected_squared_gradients({"x": x, "y": y}, problem.with_constants(noise=noise))

    over_records = jax.vmap(at, in_axes=(None, 0, 0))
    over_seeds = jax.vmap(over_records, in_axes=(None, 0, 0))
    return jax.vmap(over_seeds, in_axes=(0, 0, 0))(noise_levels, xs, ys)


def expected_gradients_along(problem, trajectory, noise_levels):
    """E‖g_x‖², E‖g_y‖² at every record: arrays (noise, seed, record)."""
    gx, gy = _expected_gradients_grid(problem, jnp.asarray(noise_levels),
                                      jnp.asarray(trajectory.observed["x"]),
                                      jnp.asarray(trajectory.observed["y"]))
    return np.asarray(gx), np.asarray(gy)


def integrate(rate_per_step, steps):
    """Trapezoid sum of a per-step rate recorded at ``steps`` (last axis)."""
    return np.sum(0.5 * (rate_per_step[..., 1:] + rate_per_step[..., :-1]) * np.diff(steps), axis=-1)


def predicted_sam_op_log_ratio(trajectory, noise_levels, lr, rho):
    xs, ys = jnp.asarray(trajectory.observed["x"]), jnp.asarray(trajectory.observed["y"])

    def at(noise, x, y):
        constants = op_problem.with_constants(noise=noise).constants
        rates = op_sam_expected_log_rate({"x": x, "y": y}, constants, lr, rho)
        return jnp.stack([rates["total"], rates["first_order"]])

    mapped = jax.jit(jax.vmap(jax.vmap(jax.vmap(at, (None, 0, 0)), (None, 0, 0)), (0, 0, 0)))
    rates = np.asarray(mapped(jnp.asarray(noise_levels), xs, ys))  # (noise, seed, record, 2)
    return -integrate(rates[..., 0], trajectory.steps), -integrate(rates[..., 1], trajectory.steps)


def relative_log_ratio(trajectory):
    b = np.abs(np.asarray(trajectory.observed["B"]))
    return np.log(b[..., -1] / b[..., 0])


gd_budget = {}
for toy, problem, result in (("op", op_problem, op_result), ("nop", nop_problem, nop_result)):
    gx, gy = expected_gradients_along(problem, result["SGD"], NOISE_LEVELS)
    # |B_T − B_0| ≤ (η²/2) Σ_t (‖g_x‖² + ‖g_y‖²) exactly; its expectation from the records.
    budget = 0.5 * LR**2 * integrate(gx + gy, result["SGD"].steps)
    change = np.abs(result["SGD"].final("B") - np.asarray(result["SGD"].observed["B"])[..., 0])
    gd_budget[toy] = {"budget": budget, "change": change}
    measured[f"sgd_{toy}"] = {
        "noise": NOISE_LEVELS,
        "median_abs_B_final": median_abs_final(result["SGD"]).tolist(),
        "B0": float(np.asarray(result["SGD"].observed["B"])[0, 0, 0]),
        "max_abs_change": np.max(change, axis=-1).tolist(),
        "min_budget": np.min(budget, axis=-1).tolist(),
        "max_change_over_budget": float(np.max(change / budget)),
    }

# %% [markdown]
# **Conservation as η → 0 (Thm 1).** The per-step change of B is O(η²), so over a fixed time
# t = η·T = 10 the total change is O(η): on a log-log grid of η the median |B_T − B_0| should have
# slope 1 (slope 0 would mean B is not conserved as η → 0; slope 2 a per-step change of O(η³)). We
# fit the slope over (η, seed) points with its 95% CI for each toy and noise level, and report
# |B_T − B_0|/|B_0| at the lab's η. (The one-step identity alone bounds |ΔB| by construction and
# cannot fail; this measurement can.)

# %%
import scipy.stats  # noqa: E402

CONSERVATION_LRS = [2e-2, 1e-2] if lab.quick else [4e-3, 2e-3, 1e-3, 5e-4]  # plus the lab's η
CONSERVATION_TIME = STEPS * LR  # η·T of every run of the lab


def sgd_abs_change(problem, lr):
    """|B_T − B_0| of SGD at step size lr over time η·T = CONSERVATION_TIME: (noise, seed)."""
    steps = int(round(CONSERVATION_TIME / lr))
    result = st.sweep(problem, {"SGD": st.optim.sgd(lr)}, steps=steps, seeds=SEEDS,
                      grid={"noise": NOISE_LEVELS}, observe={"B": of_params(balancedness)},
                      stride=max(1, steps // 10))["SGD"]
    b = np.asarray(result.observed["B"])
    return np.abs(b[..., -1] - b[..., 0])


def log_log_slope(lrs, changes):
    """OLS slope of log|ΔB| on log η over (η, seed) points and its 95% CI (t distribution)."""
    x = np.repeat(np.log(lrs), changes.shape[-1])
    y = np.log(changes).reshape(-1)
    fit = scipy.stats.linregress(x, y)
    half = scipy.stats.t.ppf(0.975, len(x) - 2) * fit.stderr
    return float(fit.slope), float(fit.slope - half), float(fit.slope + half)


conservation = {"lrs": CONSERVATION_LRS + [LR], "time": CONSERVATION_TIME, "noise": NOISE_LEVELS}
for toy, problem, result in (("op", op_problem, op_result), ("nop", nop_problem, nop_result)):
    lab_change = np.abs(result["SGD"].final("B") - np.asarray(result["SGD"].observed["B"])[..., 0])
    changes = np.stack([sgd_abs_change(problem, lr) for lr in CONSERVATION_LRS] + [lab_change])
    fits = [log_log_slope(np.asarray(conservation["lrs"]), changes[:, i]) for i in range(len(NOISE_LEVELS))]
    b0 = abs(float(np.asarray(result["SGD"].observed["B"])[0, 0, 0]))
    conservation[toy] = {
        "median_abs_change": np.median(changes, axis=-1).tolist(),  # (lr, noise)
        "slope": [f[0] for f in fits], "slope_ci_low": [f[1] for f in fits],
        "slope_ci_high": [f[2] for f in fits], "abs_B0": b0,
        "relative_change_at_lab_lr": (np.max(lab_change, axis=-1) / b0).tolist(),
    }
measured["sgd_conservation"] = conservation
print("conservation slopes:", {toy: conservation[toy]["slope"] for toy in ("op", "nop")})

# %%
predicted_total, predicted_first = predicted_sam_op_log_ratio(op_result[OP_SAM], NOISE_LEVELS, LR, RHO_OP)
measured_log = relative_log_ratio(op_result[OP_SAM])
measured["sam_op"] = {
    "noise": NOISE_LEVELS, "rho": RHO_OP,
    "median_abs_B_final": median_abs_final(op_result[OP_SAM]).tolist(),
    "median_abs_B_final_sgd": median_abs_final(op_result["SGD"]).tolist(),
    "median_log_ratio": np.median(measured_log, axis=-1).tolist(),
    "median_predicted_log_ratio": np.median(predicted_total, axis=-1).tolist(),
    "median_first_order_log_ratio": np.median(predicted_first, axis=-1).tolist(),
    "max_relative_error_vs_prediction": float(np.max(np.abs(measured_log / predicted_total - 1))),
    # Lemma 2's leading term alone, as the paper states it (no O(ρ²) correction): per noise level.
    "relative_error_vs_first_order": np.max(np.abs(measured_log / predicted_first - 1), axis=-1).tolist(),
    "identity_max_abs_error": measured["gd_identity"]["sam_op_max_abs_error"],
    "median_abs_B_final_usam": median_abs_final(op_result[f"USAM (ρ={RHO_OP})"]).tolist(),
}
# Exercise 2: the per-step decay of log|B| over the last quarter of the noiseless run.
noiseless_b = np.abs(np.asarray(op_result[OP_SAM].observed["B"])[NOISE_LEVELS.index(0.0)])
quarter = len(steps_axis) * 3 // 4
measured["sam_op"]["noiseless_late_decay_rate_per_step"] = float(np.median(
    -(np.log(noiseless_b[:, -1]) - np.log(noiseless_b[:, quarter]))
    / (steps_axis[-1] - steps_axis[quarter])))
print("late decay rate of log|B| per step at α = 0:",
      measured["sam_op"]["noiseless_late_decay_rate_per_step"])

# %% tags=["exercise-check"]
st.labkit.check_number("predicted_noiseless_decay_rate", predicted_noiseless_decay_rate,
                       measured["sam_op"]["noiseless_late_decay_rate_per_step"], rtol=0.05)

# %%
m_names = list(m_optimizers)
measured["m_sharpness"] = {
    "noise": NOISE_LEVELS, "batch": M_SAM_BATCH,
    "median_abs_B_final_sgd": median_abs_final(m_result[m_names[0]]).tolist(),
    "median_abs_B_final_n_sam": median_abs_final(m_result[m_names[1]]).tolist(),
    "median_abs_B_final_1_sam": median_abs_final(m_result[m_names[2]]).tolist(),
}

gx_sam, gy_sam = expected_gradients_along(nop_problem, nop_result[NOP_SAM], NOISE_LEVELS)
gx_sgd, gy_sgd = expected_gradients_along(nop_problem, nop_result["SGD"], NOISE_LEVELS)
imbalance_sam = np.abs(gx_sam - gy_sam) / (gx_sam + gy_sam)
imbalance_sgd = np.abs(gx_sgd - gy_sgd) / (gx_sgd + gy_sgd)
measured["sam_nop"] = {
    "noise": NOISE_LEVELS, "rho": RHO_NOP,
    "B0": float(np.asarray(nop_result[NOP_SAM].observed["B"])[0, 0, 0]),
    "median_abs_B_final": median_abs_final(nop_result[NOP_SAM]).tolist(),
    "median_abs_B_final_sgd": median_abs_final(nop_result["SGD"]).tolist(),
    "median_final_relative_imbalance_sam": np.median(imbalance_sam[..., -1], axis=-1).tolist(),
    "median_final_relative_imbalance_sgd": np.median(imbalance_sgd[..., -1], axis=-1).tolist(),
}

# BAR vs SAM: final |B|, final population loss, gradient evaluations.
bar_rows = {}
for toy, result, names in (("op", op_result, [OP_SAM, "nBAR", "oBAR", "SGD"]),
                           ("nop", nop_result, [NOP_SAM, "nBAR", "SGD"])):
    for name in names:
        bar_rows[f"{toy}:{name}"] = {
            "median_abs_B_final": median_abs_final(result[name]).tolist(),
            "median_final_loss": np.median(result[name].final("loss"), axis=-1).tolist(),
            "grad_evals_per_run": float(np.asarray(result[name].grad_evals).flat[0]),
            "diverged_runs": int(np.sum(result[name].diverged)),
        }


def counted_gradient_evaluations(problem, optimizer, steps=4):
    """Backward passes through ``problem.loss`` per step, counted by a wrapper around the loss.

    Independent of the rules' own ``grad_evals`` counters: the wrapper is a custom VJP whose
    backward pass increments a Python counter; the steps run eagerly (``jax.disable_jit``) so each
    gradient the rule takes is one call of the backward pass.
    """
    calls = {"backward": 0}

    @jax.custom_vjp
    def counted_loss(params, batch):
        return problem.loss(params, batch)

    def forward(params, batch):
        return jax.vjp(problem.loss, params, batch)

    def backward(pullback, cotangent):
        calls["backward"] += 1
        return pullback(cotangent)

    counted_loss.defvjp(forward, backward)
    params, state, key = problem.params0, optimizer.init(problem.params0), jax.random.key(7)
    with jax.disable_jit():
        for step in range(steps):
            params, state, _ = optimizer.step(params, state, counted_loss, problem.batch(key, step, 1),
                                              optimizer.hparams, jax.random.fold_in(key, step))
    return calls["backward"] / steps


counted = {f"op:{name}": counted_gradient_evaluations(op_problem.with_constants(noise=0.5),
                                                      op_optimizers[name])
           for name in (OP_SAM, "nBAR", "oBAR", "SGD")}
counted.update({f"nop:{name}": counted_gradient_evaluations(nop_problem.with_constants(noise=0.5),
                                                            nop_optimizers[name])
                for name in (NOP_SAM, "nBAR", "SGD")})
measured["bar"] = {"noise": NOISE_LEVELS, "alpha_op": ALPHA_OP, "alpha_nop": ALPHA_NOP,
                   "rows": bar_rows,
                   "counted_gradient_evaluations_per_step": counted}
for key, row in bar_rows.items():
    print(f"{key:>22}: |B_T| {np.round(row['median_abs_B_final'], 5)}  "
          f"loss {np.round(row['median_final_loss'], 4)}  grad evals {row['grad_evals_per_run']:.0f}")

# %%
import matplotlib.pyplot as plt  # noqa: E402

NOISE_COLORS = plt.get_cmap("viridis")(np.linspace(0.0, 0.85, len(NOISE_LEVELS)))


def plot_gap(ax, steps, trajectory, noise_index, **style):
    gap = 2.0 * np.abs(np.asarray(trajectory.observed["B"])[noise_index])  # |‖x‖² − ‖y‖²|
    st.plotting.band(ax, steps, gap, axis=0, log=True, **style)


fig, axes = st.plotting.figure(2, 2, width=3.4, height=2.5)
for row, (toy, result, sam_name, gx_gy) in enumerate(
        (("OP: $f = E(x^Ty - (0.5 + \\alpha n))^2$", op_result, OP_SAM, None),
         ("NOP: $f = E\\|xy^T - (A + \\alpha N)\\|^2$", nop_result, NOP_SAM, (gx_sam, gy_sam, gx_sgd, gy_sgd)))):
    ax = axes[row][0]
    for i, noise in enumerate(NOISE_LEVELS):
        gap = 2.0 * np.abs(np.asarray(result[sam_name].observed["B"])[i])
        ax.plot(steps_axis, np.median(gap, axis=0), color=NOISE_COLORS[i], label=f"{sam_name}, α={noise}")
        gap_sgd = 2.0 * np.abs(np.asarray(result["SGD"].observed["B"])[i])
        ax.plot(steps_axis, np.median(gap_sgd, axis=0), color=NOISE_COLORS[i], linestyle="--",
                label=f"SGD, α={noise}")
    ax.set_yscale("log")
    ax.set_title(toy)
    ax.set_xlabel("iteration")
    ax.set_ylabel("|‖x‖² − ‖y‖²| (median)")
    ax = axes[row][1]
    if gx_gy is None:
        gx_op, gy_op = expected_gradients_along(op_problem, result[sam_name], NOISE_LEVELS)
        gx_op_sgd, gy_op_sgd = expected_gradients_along(op_problem, result["SGD"], NOISE_LEVELS)
        gx_gy = (gx_op, gy_op, gx_op_sgd, gy_op_sgd)
    for i, noise in enumerate(NOISE_LEVELS):
        ax.plot(steps_axis, np.median(np.abs(gx_gy[0][i] - gx_gy[1][i]), axis=0),
                color=NOISE_COLORS[i], label=f"{sam_name}, α={noise}")
        ax.plot(steps_axis, np.median(np.abs(gx_gy[2][i] - gx_gy[3][i]), axis=0),
                color=NOISE_COLORS[i], linestyle="--", label=f"SGD, α={noise}")
    ax.set_yscale("log")
    ax.set_title("gradient imbalance (expected over the noise)")
    ax.set_xlabel("iteration")
    ax.set_ylabel("$|E\\|g_x\\|^2 - E\\|g_y\\|^2|$")
st.plotting.key_legend(fig, {f"α = {noise}": NOISE_COLORS[i] for i, noise in enumerate(NOISE_LEVELS)},
                       {"SAM": {"linestyle": "-"}, "SGD": {"linestyle": "--"}}, ncol=6)
sam_final = float(np.median(2.0 * np.abs(np.asarray(op_result[OP_SAM].observed["B"])[:, :, -1])))
sgd_final = float(np.median(2.0 * np.abs(np.asarray(op_result["SGD"].observed["B"])[:, :, -1])))
st.plotting.finding(fig, f"SAM drives |B| toward 0, SGD keeps it (OP, median final "
                    f"|‖x‖² − ‖y‖²|: SAM {sam_final:.2g}, SGD {sgd_final:.2g}; η={LR:g}, T={STEPS:,})")
lab.savefig(fig, "fig1_balancedness", slide=True,
            claims=["li2024.balancedness.sam_op_drives_to_zero", "li2024.balancedness.sam_nop_balances",
                    "li2024.balancedness.data_responsive"])

# %% [markdown]
# SAM's decay on OP against theory: the measured `log|B_T/B_0|` next to the exact expected rate
# integrated along the run, and next to Lemma 2's first-order term alone (which misses the
# `−4ρ²B` part, the only pull left when α = 0 and the fit is exact).

# %%
fig, axes = st.plotting.figure(1, 2, width=3.4, height=2.8)
ax = axes[0][0]
ax.plot(NOISE_LEVELS, -np.median(measured_log, axis=-1), "o-", color=st.plotting.color_for("sam"),
        label=f"{OP_SAM}: measured")
ax.plot(NOISE_LEVELS, -np.median(predicted_total, axis=-1), "k--", label="exact expected rate (ours)")
ax.plot(NOISE_LEVELS, -np.median(predicted_first, axis=-1), ":", color="grey",
        label="Lemma 2 first-order term only")
ax.set_xlabel("noise level α")
ax.set_ylabel("$-\\log(|B_T|\\,/\\,|B_0|)$")
ax.set_title("OP: SAM's balancing, measured vs theory")
st.plotting.legend_right(ax)
ax = axes[0][1]
for i, (name, result) in enumerate(list(m_result.items()) + [(f"USAM (ρ={RHO_OP}) batch 1", op_result[f"USAM (ρ={RHO_OP})"]),
                                                            (OP_SAM + " batch 1", op_result[OP_SAM])]):
    batch_one_sam = name.startswith("SAM")  # batch-1 SAM and 1-SAM overlap: the same pull
    ax.plot(NOISE_LEVELS, median_abs_final(result), "s--" if batch_one_sam else "o-",
            color=st.plotting.color_for(name.split(" ")[0], i), label=name,
            markerfacecolor="none" if batch_one_sam else None)
ax.set_yscale("log")
ax.set_xlabel("noise level α")
ax.set_ylabel("median $|B_T|$")
ax.set_title(f"OP: m-sharpness and USAM (T={STEPS:,})")
st.plotting.legend_right(ax)
st.plotting.finding(fig, "Our exact expected rate predicts SAM's balancing; Lemma 2's first-order "
                    "term alone does not. 1-SAM balances more than batch SAM")
lab.savefig(fig, "fig1c_op_rate_msam",
            claims=["li2024.balancedness.sam_op_drives_to_zero",
                    "li2024.balancedness.sam_op_first_order_rate",
                    "li2024.balancedness.m_sharpness_stronger"])

# %% [markdown]
# **Exercise 3 (open question).** Panel (a) shows SAM balancing much faster when the labels are
# noisier, although the noise has mean zero and SGD, fed the same noise, hardly moves B. Using
# the SAM factor of Claim 1, explain in a few sentences where the extra pull comes from, why it
# survives at an exact fit of the mean, and why USAM (no normalization) responds to noise too
# but is not the same (compare `median_abs_B_final_usam` with SAM's in `results.json`).

# %% tags=["teacher-note"]
# Teacher's note (not on the students' site): per step SAM multiplies B by
# 1 − 2ηρ s f̃'/N − O(η²), and s f̃' = |f'| + 2ρN + O(ρ²): the pull is 2ηρ(|f'| + 2ρN)/N. SGD's
# change is only O(η²f'²). With fresh noise f' = 2(xᵀy − 0.5 − αn) is a normal variable whose
# mean goes to 0 at the fit but whose spread does not, so E|f'| ≥ 2α√(2/π) > 0 for ever: the
# first-order (Lemma 2) term keeps pulling at a rate ∝ ηρα/N, while without noise only the
# 4ηρ² term of Exercise 2 is left. The sign s and f̃' are taken on the same draw, so the
# product is |f'| (not its mean) — the noise is rectified. USAM's ascent is ρ∇L, unnormalized,
# so its pull is ∝ ηρ f'² (again rectified: E f'² = μ² + 4α²) and grows with α quadratically
# rather than linearly; it is weaker at small noise and stronger at large noise.

# %% [markdown]
# ## Fig. 2b: BAR beside SAM

# %%
fig, axes = st.plotting.figure(1, 3, width=3.0, height=2.6)
noise_index = NOISE_LEVELS.index(0.5)
for ax, (title, result, names) in zip(
        axes[0][:2], ((f"OP, α=0.5", op_result, [OP_SAM, "oBAR", "nBAR", "SGD"]),
                      (f"NOP, α=0.5", nop_result, [NOP_SAM, "nBAR", "SGD"]))):
    for name in names:
        style = {"linestyle": ":"} if name == "nBAR" and result is op_result else {}
        gap = 2.0 * np.abs(np.asarray(result[name].observed["B"])[noise_index])
        label = name if "BAR" not in name else f"{name} (cosine)"
        ax.plot(steps_axis, np.median(gap, axis=0), color=st.plotting.color_for(name), label=label, **style)
    ax.set_yscale("log")
    ax.set_xlabel("iteration")
    ax.set_ylabel("|‖x‖² − ‖y‖²|")
    ax.set_title(title)
ax = axes[0][2]
labels = list(bar_rows)
loss_values = [bar_rows[k]["median_final_loss"][noise_index] for k in labels]
evals = [bar_rows[k]["grad_evals_per_run"] for k in labels]
colors = [st.plotting.color_for(k.split(":")[1]) for k in labels]
ax.barh(range(len(labels)), evals, color=colors)
for i, (value, loss) in enumerate(zip(evals, loss_values)):
    ax.text(value, i, f" loss {loss:.4f}", va="center")
ax.set_yticks(range(len(labels)))
ax.set_yticklabels(labels)
ax.set_xlabel("gradient evaluations per run")
ax.set_title("cost and final loss (α=0.5)")
ax.set_ylabel("toy : optimizer")
ax.set_xlim(0, max(evals) * 1.9)
st.plotting.figure_legend(fig, axes[0][:2], ncol=5)
st.plotting.finding(fig, f"BAR balances like SAM at half the gradient cost (α₀ = {ALPHA_OP:.3f} on "
                    f"OP, {ALPHA_NOP:.3f} on NOP)")
lab.savefig(fig, "fig2b_bar", claims=["li2024.bar.balances_at_half_cost"])

# %% [markdown]
# ## Lemma 1: sharpness of minimizers of f(xᵀy) against B
# Minimizers `x = a·u`, `y = (w/a)·u + β·v` (u ⊥ v unit, `xᵀy = w = 0.5`) of the noiseless OP
# loss `(xᵀy − 0.5)²` (`f'' = 2`, via `st.problems.scalar_product`) and of `cosh(xᵀy − 0.5)` (`f'' = 1`). The exact Hessian's λ_max
# (float64, `st.measure.lambda_max`) against `f''(w)(‖x‖² + ‖y‖²)`. For β = 0
# (x ∥ y) this is `2f''√(B² + w²)`, smallest at B = 0.


# %%
def cosh_loss(w):
    return jnp.cosh(w - 0.5)


def square_loss(w):
    return (w - 0.5) ** 2


rng = np.random.default_rng(0)
u = rng.standard_normal(3)
u /= np.linalg.norm(u)
v = rng.standard_normal(3)
v -= (v @ u) * u
v /= np.linalg.norm(v)
scales = np.geomspace(0.3, 3.0, 25)
scales = np.sort(np.append(scales, np.sqrt(0.5)))  # the balanced member for β = 0


@jax.jit
def top_eigenvalues(problem, xs, ys):
    """Exact λ_max of the Hessian of the problem's loss at each (x, y) (float64, dense)."""
    def top(x, y):
        return st.measure.lambda_max(lambda p: problem.loss(p, None), {"x": x, "y": y},
                                     method="dense")
    return jax.vmap(top)(xs, ys)


lemma_rows = []
for f_name, curvature, loss in (("(w-0.5)^2", 2.0, square_loss), ("cosh(w-0.5)", 1.0, cosh_loss)):
    problem = st.problems.scalar_product(loss, u, u)
    for beta in (0.0, 0.5):
        xs = jnp.asarray(scales[:, None] * u)
        ys = jnp.asarray((0.5 / scales)[:, None] * u + beta * v)
        tops = np.asarray(top_eigenvalues(problem, xs, ys))
        for x, y, top in zip(xs, ys, tops):
            params = {"x": x, "y": y}
            lemma_rows.append((f_name, beta, float(balancedness(params)), float(top),
                               curvature * float(squared_norm(params))))
lemma = np.array([(r[1], r[2], r[3], r[4]) for r in lemma_rows])
relative_errors = np.abs(lemma[:, 2] / lemma[:, 3] - 1)
parallel = [r for r in lemma_rows if r[0] == "(w-0.5)^2" and r[1] == 0.0]
argmin_B = min(parallel, key=lambda r: r[3])[2]
measured["lemma1"] = {
    "minimizers": len(lemma_rows), "max_relative_error": float(np.max(relative_errors)),
    "B_at_smallest_top_eigenvalue": float(argmin_B),
    "smallest_top_eigenvalue": float(min(r[3] for r in parallel)),
    "closed_form_minimum_2fpp_w": 2.0 * 2.0 * 0.5,
    "max_parallel_error_vs_sqrt_form": float(max(abs(r[3] - 2 * 2.0 * np.sqrt(r[2]**2 + 0.25)) / r[3]
                                                 for r in parallel)),
}
fig, axes = st.plotting.figure(1, 1, width=4.4, height=3.0)
ax = axes[0][0]
lemma_colors = {}
for i, (f_name, beta) in enumerate([(f, b) for f in ("(w-0.5)^2", "cosh(w-0.5)") for b in (0.0, 0.5)]):
    rows = np.array([(r[2], r[3], r[4]) for r in lemma_rows if r[0] == f_name and r[1] == beta])
    color = st.plotting.PALETTE[i]
    shown_name = f_name.replace("^2", "²").replace("-", "−")
    lemma_colors[f"f = {shown_name}, β = {beta}"] = color
    ax.plot(rows[:, 0], rows[:, 2], color=color)
    ax.plot(rows[:, 0], rows[:, 1], "o", color=color, markersize=3)
ax.set_yscale("log")
ax.set_xlabel("balancedness B = ½(‖x‖² − ‖y‖²)")
ax.set_ylabel("$\\lambda_{max}$ of the Hessian")
ax.set_title("minimizers of $f(x^Ty)$, two families each")
st.plotting.key_legend(fig, lemma_colors, {"f″(w)(‖x‖²+‖y‖²)": {"linestyle": "-"},
                                           "exact Hessian $\\lambda_{max}$": {"marker": "o", "linestyle": "none"}},
                       ncol=3)
st.plotting.finding(fig, f"Lemma 1: $\\lambda_{{max}}$ = f″(w)(‖x‖²+‖y‖²) (max rel. error "
                    f"{np.max(relative_errors):.1e}): balanced minimizers are the flattest")
lab.savefig(fig, "lemma1_sharpness", claims=["li2024.balancedness.lemma1_balanced_is_flattest"])

# %% [markdown]
# ## Multi-layer: D LoRA-like layers `W0 + X_l Y_lᵀ` (noise α = 1)
# SAM normalizes its ascent by the gradient norm over all layers, so each layer's pull is roughly
# that of one layer with radius ρ/√D. BAR acts per layer, so D does not matter. As a reference we
# run SAM on a single NOP layer with ρ/√D.

# %%
LORA_NOISE = 1.0
lora_rows = {}
for layers in lab.progress(LAYERS, "LoRA layers"):
    problem = st.problems.lora(layers, noise=LORA_NOISE)
    result = st.sweep(problem, {"SAM": st.optim.sam(LR, RHO_NOP),
                                "nBAR": st.optim.nbar(LR, ALPHA_NOP, schedule="cosine", horizon=STEPS)},
                      steps=STEPS, seeds=SEEDS, observe=OBSERVE_LORA, stride=STRIDE)
    lora_rows[layers] = {name: np.abs(np.asarray(result[name].observed["B"])) for name in ("SAM", "nBAR")}
reference = st.sweep(nop_problem.with_constants(noise=LORA_NOISE), {"SAM": st.optim.sam(LR, RHO_NOP)},
                     steps=STEPS, seeds=SEEDS, grid={"rho": [RHO_NOP / np.sqrt(d) for d in LAYERS]},
                     observe=OBSERVE, stride=STRIDE)
reference_final = median_abs_final(reference["SAM"])
measured["lora"] = {
    "layers": LAYERS, "noise": LORA_NOISE, "rho": RHO_NOP,
    # per-layer |B_T|, median over seeds and layers
    "sam_median_abs_B_final": [float(np.median(lora_rows[d]["SAM"][:, -1])) for d in LAYERS],
    "nbar_median_abs_B_final": [float(np.median(lora_rows[d]["nBAR"][:, -1])) for d in LAYERS],
    "single_layer_sam_rho_over_sqrt_D": reference_final.tolist(),
}
print(measured["lora"])
fig, axes = st.plotting.figure(1, 2, width=3.4, height=2.8)
ax = axes[0][0]
lora_colors = {}
for i, d in enumerate(LAYERS):
    color = plt.get_cmap("plasma")(i / len(LAYERS))
    lora_colors[f"D = {d}"] = color
    # records axis is after (seed, ...): observed["B"] is (seed, record, layer)
    ax.plot(steps_axis, 2 * np.median(lora_rows[d]["SAM"], axis=(0, 2)), color=color, label=f"SAM ρ={RHO_NOP}, D={d}")
    ax.plot(steps_axis, 2 * np.median(lora_rows[d]["nBAR"], axis=(0, 2)), color=color, linestyle="--",
            label=f"nBAR, D={d}")
ax.set_yscale("log")
ax.set_xlabel("iteration")
ax.set_ylabel("per-layer |‖X‖² − ‖Y‖²| (median)")
ax.set_title(f"D LoRA-like layers, α={LORA_NOISE}")
ax.legend(handles=st.plotting.key_legend(fig, lora_colors, {f"SAM ρ={RHO_NOP}": {"linestyle": "-"},
                                                            "nBAR": {"linestyle": "--"}}).legend_handles,
          loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0)
fig.legends.clear()
ax = axes[0][1]
ax.plot(LAYERS, measured["lora"]["sam_median_abs_B_final"], "o-", color=st.plotting.color_for("sam"),
        label=f"SAM ρ={RHO_NOP} on D layers")
ax.plot(LAYERS, reference_final, "s--", color="grey", label="SAM ρ/√D on one layer")
ax.plot(LAYERS, measured["lora"]["nbar_median_abs_B_final"], "^-", color=st.plotting.color_for("nbar"),
        label="nBAR on D layers")
ax.set_xscale("log", base=2)
ax.set_xlabel("number of layers D")
ax.set_ylabel("per-layer median $|B_T|$")
ax.set_title("final |B| against depth")
st.plotting.legend_right(ax)
st.plotting.finding(fig, "SAM's pull on balancedness weakens with the number of layers D, BAR's does not")
lab.savefig(fig, "lora_layers", claims=["li2024.balancedness.lora_depth_weakens_sam"])

# %% [markdown]
# ## Where SAM collapses to the saddle at 0
# With strong noise SAM's ascent makes the origin (x = y = 0, a saddle of the loss) attractive:
# the iterates shrink to 0 and stay. We sweep α ∈ {1, 1.25, 1.5, 2} and call a run collapsed when
# `‖x_T‖² + ‖y_T‖² < 1e-3 (‖x_0‖² + ‖y_0‖²)`.

# %%
# Same optimizers, observables and grid shape as the Fig. 1 sweeps: the compiled programs are
# reused, only the noise values change.
assert len(SADDLE_NOISE) == len(NOISE_LEVELS)
saddle = {}
measured["saddle"] = {"noise": SADDLE_NOISE}
for toy, problem, optimizers, sam_name in (("op", op_problem, op_optimizers, OP_SAM),
                                           ("nop", nop_problem, nop_optimizers, NOP_SAM)):
    result = st.sweep(problem, optimizers, steps=STEPS, seeds=SEEDS, grid={"noise": SADDLE_NOISE},
                      observe=OBSERVE, stride=STRIDE)
    for name, label in ((sam_name, "sam"), ("SGD", "sgd")):
        observed = result[name].observed
        norms = np.sum(np.asarray(observed["x"]) ** 2, -1) + np.sum(np.asarray(observed["y"]) ** 2, -1)
        saddle[f"{toy}:{label}"] = norms
        collapsed = norms[..., -1] < 1e-3 * norms[..., 0]
        measured["saddle"][f"{toy}_{label}_collapsed_fraction"] = np.mean(collapsed, axis=-1).tolist()
        measured["saddle"][f"{toy}_{label}_median_final_squared_norm"] = np.median(norms[..., -1], -1).tolist()
print(measured["saddle"])
SADDLE = "at the saddle 0"
fig, axes = st.plotting.figure(1, 2, width=3.4, height=2.8)
saddle_colors, saddle_runs = {}, {}
for ax, toy in zip(axes[0], ("op", "nop")):
    for name, style in (("SAM", "-"), ("SGD", ":")):
        norms = saddle[f"{toy}:{name.lower()}"]
        for i, noise in enumerate(SADDLE_NOISE):
            color = plt.get_cmap("magma")(0.15 + 0.7 * i / len(SADDLE_NOISE))
            saddle_colors[f"α = {noise}"] = color
            median = np.median(norms[i], axis=0)
            status = SADDLE if median[-1] < 1e-3 * median[0] else "ok"
            label = f"{toy.upper()} {name}, α={noise}"
            saddle_runs[f"{label} @ {toy.upper()}"] = status
            st.plotting.plot_run(ax, steps_axis, median, style, color=color, label=label, status=status)
    ax.set_label(toy.upper())
    ax.set_yscale("log")
    ax.set_xlabel("iteration")
    ax.set_ylabel("‖x‖² + ‖y‖² (median)")
    ax.set_title(f"{toy.upper()}, SAM ρ={RHO_OP if toy == 'op' else RHO_NOP}")
collapsed = {name: sum(v != "ok" for k, v in saddle_runs.items() if f" {name}," in k)
             for name in ("SAM", "SGD")}
st.plotting.key_legend(fig, saddle_colors, {"SAM": {"linestyle": "-"}, "SGD": {"linestyle": ":"}},
                       statuses=[SADDLE] if sum(collapsed.values()) else [], ncol=4)
st.plotting.finding(fig, "With strong noise SAM collapses to the saddle at 0: "
                    f"{collapsed['SAM']} of {2 * len(SADDLE_NOISE)} SAM medians (dashed), "
                    f"{collapsed['SGD']} of {2 * len(SADDLE_NOISE)} SGD medians")
lab.savefig(fig, "saddle_collapse", runs=saddle_runs, claims=["li2024.balancedness.saddle_collapse"])

# %%
lab.save_arrays(
    steps=steps_axis, noise_levels=np.asarray(NOISE_LEVELS),
    **{f"op_B_{name.split(' ')[0]}": np.asarray(op_result[name].observed["B"]) for name in op_optimizers},
    **{f"op_loss_{name.split(' ')[0]}": np.asarray(op_result[name].observed["loss"]) for name in op_optimizers},
    **{f"nop_B_{name.split(' ')[0]}": np.asarray(nop_result[name].observed["B"]) for name in nop_optimizers},
    **{f"msam_B_{name.split(' ')[0]}": np.asarray(m_result[name].observed["B"]) for name in m_optimizers},
    **{f"lora_B_{name}_D{d}": lora_rows[d][name] for d in LAYERS for name in ("SAM", "nBAR")},
    lemma1=lemma,
)
results = lab.finish(measured)

# %% [markdown]
# **Your predictions against the measurements.**

# %%
st.labkit.compare_predictions(results, {
    "li2024.balancedness.gd_conserves": predict_sgd_conserves,
    "li2024.balancedness.sam_op_drives_to_zero": predict_sam_balances,
})

# %% [markdown]
# ## Try it yourself
# Move the sliders: the step size η, SAM's radius ρ and the noise level α of `f(xᵀy)`. Each
# change reruns SGD and SAM for 2,000 steps from the paper's start and draws |B| over time.
# The hyperparameters are leaves of the optimizer and problem pytrees, so a change reuses the
# compiled program (no recompilation): well under a second per change after the first.


# %%
def explore_balancedness(lr=5e-3, rho=0.2, noise=0.5, steps=2_000):
    """|B| over time under SGD and SAM on the OP toy, for one setting of the sliders."""
    import matplotlib.pyplot as plt

    problem = st.problems.op_toy(noise=noise)
    observe = {"B": of_params(balancedness)}
    fig, ax = plt.subplots(figsize=(5, 3.2))
    for name, optimizer in {"SGD": st.optim.sgd(lr=lr), "SAM": st.optim.sam(lr=lr, rho=rho)}.items():
        run = st.run(problem, optimizer, steps=steps, key=jax.random.key(0), observe=observe,
                     stride=steps // 100)
        ax.plot(run.steps * lr, np.abs(run.observed["B"]), label=f"{name} ({run.status})")
    ax.set(yscale="log", xlabel="time $t = \\eta\\,T$", ylabel="$|B|$",
           title=f"$\\eta$ = {lr:.1e}, $\\rho$ = {rho:.2f}, noise = {noise:.2f}")
    ax.legend()
    plt.show()


controls = st.labkit.sliders(explore_balancedness, lr=(1e-3, 2e-2, 5e-3, "log"),
                             rho=(0.0, 0.5, 0.2), noise=(0.0, 1.5, 0.5))
