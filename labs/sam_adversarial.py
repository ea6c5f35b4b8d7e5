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
# # SAM and adversarial training: weight perturbations against input perturbations
#
# Zhang, He, Zhu, Chen, Wang, Wei (ICML 2024, *On the Duality Between Sharpness-Aware
# Minimization and Adversarial Training*) report that SAM alone makes networks more robust to
# small adversarial attacks without losing clean accuracy, and explain it by a duality: perturbing
# the weights of a layer perturbs the features it computes, so SAM trains against a kind of
# feature attack, and (on a binary model with robust and non-robust features) both SAM and
# adversarial training (AT) move weight onto the robust feature, AT more strongly.
#
# Here robustness is exact. Labels $y = \pm 1$, inputs $x \mid y \sim N(y\mu, I)$ with
# $\mu = (a, \eta, \dots, \eta)$: coordinate 0 is a **robust** feature ($a = 1$), the other $k = 20$
# are **non-robust** ($\eta = 0.2$ each: an $\ell_\infty$ attack of radius 0.2 erases them). For a
# score linear in $x$ the worst $\ell_p$ attack of radius $\varepsilon$ lowers the margin
# $y\,w^\top x$ by $\varepsilon\|w\|_q$, so the robust accuracy is a closed form,
#
# $$\mathrm{acc}_\varepsilon(w) = \Phi\!\left(\frac{w^\top\mu - \varepsilon\|w\|_q}{\|w\|_2}\right),$$
#
# and the **robust-feature ratio** $r = |w_0| / \sum_{j\ge1}|w_j|$ says how much of the score
# survives an $\ell_\infty$ attack. We train a linear classifier, a diagonal network
# ($w = u\odot v$) and a two-layer ReLU network with logistic loss by GD, full-batch SAM, per-example
# SAM (1-SAM) and AT, and ask where SAM's effect appears.

# %% [markdown] tags=["predict"]
# **Predict, then run.** On *linear* logistic regression, does full-batch SAM leave the
# robust-feature ratio where GD puts it (within 1%, at every ρ we try)?

# %% tags=["prediction"]
predict_linear_sam_is_null = True  # SOLUTION

# %%
import math

import jax
import jax.numpy as jnp
import numpy as np

import sharp_theory as st
from sharp_theory.observables import of_params_and_problem
from sharp_theory.theory import robustness

lab = st.labkit.start("sam-adversarial", default_seeds=4, quick_seeds=2)
N, K, ROBUST_MEAN, NONROBUST_MEAN = 200, 20, 1.0, 0.2
LR = 0.5
RHOS = (0.05, 0.1, 0.2)                 # SAM and 1-SAM radii
EPSILONS = (0.05, 0.1, 0.2)             # AT budgets (ℓ∞); 0.2 = η erases the non-robust features
EVAL_EPSILONS = (0.0, 0.05, 0.1, 0.2, 0.3)  # ℓ∞ attacks at evaluation
EVAL_L2_EPSILONS = (0.0, 0.25, 0.5, 1.0)    # ℓ2 attacks at evaluation (exact on linear scores)
# ℓ2 AT budgets (one axis of each model's sweep): 0, 0.01, ..., 0.3 on the linear model (where the
# equivalence radius is judged), every fifth of them on the diagonal network.
L2_AT_EPSILONS = {"linear": tuple(round(0.01 * i, 10) for i in range(31)),
                  "diagonal": tuple(round(0.05 * i, 10) for i in range(7))}
L2_FRONTIER = (0.05, 0.1, 0.2, 0.3)         # ℓ2 AT lanes shown on the frontier
SMALL, LARGE = 0.1, 0.3                 # "small" and "large" evaluation budgets
L2_SMALL = 0.5                          # the ℓ2 budget of the frontier's ℓ2 panel
LINEAR_STEPS = 3_000
DATA_SEEDS = (0,) if lab.quick else (0, 1, 2)  # training sets for the linear-score models
RELU_STEPS = 400 if lab.quick else 3_000
RELU_RHOS = (0.2,) if lab.quick else (0.05, 0.1, 0.2, 0.4)
RELU_WIDTH, RELU_PGD_STEPS, EVAL_PGD_STEPS = 16, 3, 10
lab.record_config(n=N, n_nonrobust=K, robust_mean=ROBUST_MEAN, nonrobust_mean=NONROBUST_MEAN,
                  lr=LR, rhos=RHOS, epsilons=EPSILONS, eval_epsilons=EVAL_EPSILONS,
                  eval_l2_epsilons=EVAL_L2_EPSILONS, l2_at_epsilons=L2_AT_EPSILONS,
                  linear_steps=LINEAR_STEPS, data_seeds=DATA_SEEDS, relu_steps=RELU_STEPS, relu_rhos=RELU_RHOS,
                  relu_width=RELU_WIDTH, relu_pgd_steps=RELU_PGD_STEPS,
                  eval_pgd_steps=EVAL_PGD_STEPS, attack_norm="inf")

# %% [markdown]
# ## 1. The duality, to round-off
#
# Three identities carry the paper's argument over to exact models: the worst input attack lowers
# a linear margin by $\varepsilon\|w\|_q$; the worst per-example weight perturbation of radius
# $\rho$ lowers it by $\rho\|x\|_2$ (the same as an $\ell_2$ input attack of radius
# $\rho\|x\|_2/\|w\|_2$); and for a first layer $Wx$, the weight perturbation
# $\Delta W = W\delta x^\top/\|x\|^2$ computes exactly what the input perturbation $\delta$ does.
# We check them on random instances, and check that one step of the library's attack (PGD) finds
# the exact worst case of a linear score.
#
# A fourth identity says what per-example SAM (1-SAM) is on a linear score. Its ascent point for
# example $k$ is $w - \rho\,y_k x_k/\|x_k\|$, where the margin is $m_k - \rho\|x_k\|$, so its
# gradient is $\ell'(m_k - \rho\|x_k\|)\,y_k x_k$: a *reweighting* of the examples. AT with an
# ℓ2 budget $\varepsilon_k = \rho\|x_k\|/\|w\|$ (the equivalence radius) sees the same margin, but
# its gradient has a second term, $-\varepsilon_k\,\ell'\,w/\|w\|$, that shrinks the weights (with
# an ℓ∞ budget, $-\varepsilon\,\ell'\,\mathrm{sign}(w)$: an ℓ1 shrinkage that removes small
# non-robust weights). 1-SAM is AT without the shrinkage.
#
# **Exercise 1 (coding).** Before the checks: write the worst ℓ∞ attack on a linear score. Given
# weights `w`, a label `y` (±1) and a radius `eps`, return the δ with every |δ_i| ≤ ε that lowers
# the margin y·wᵀ(x + δ) the most (it does not depend on x). It is checked against the library's
# `robustness.worst_linear_perturbation(w, y, eps, norm=inf)` to 1e-12 on random instances.

# %% tags=["exercise"]
def my_worst_linf_perturbation(w, y, eps):
    """The ℓ∞ perturbation of radius eps that lowers the margin y * w @ x the most."""
    # BEGIN SOLUTION
    return -y * eps * np.sign(w)
    # END SOLUTION


# %% tags=["exercise-check"]
attack_rng = np.random.default_rng(7)
attack_cases = [(attack_rng.standard_normal(5), label, radius)
                for label, radius in ((1, 0.3), (-1, 0.3), (1, 1.7))]
st.labkit.check_function(
    "my_worst_linf_perturbation", my_worst_linf_perturbation,
    lambda w, y, eps: robustness.worst_linear_perturbation(w, y, eps, math.inf), attack_cases,
    atol=1e-12)

# %%
rng = np.random.default_rng(0)
errors = {"input_attack_margin_drop": 0.0, "weight_perturbation_margin_drop": 0.0,
          "first_layer_duality": 0.0, "reverse_duality_full_row_rank": 0.0,
          "pgd_one_step_vs_exact": 0.0, "one_sam_is_l2_at_without_shrinkage": 0.0}
for trial in range(200):
    d, m = int(rng.integers(1, 8)), int(rng.integers(1, 4))
    w, x = rng.standard_normal(d), rng.standard_normal(d)
    y = float(rng.choice((-1.0, 1.0)))
    eps, rho = float(rng.uniform(0, 1)), float(rng.uniform(0, 1))
    for p in (1, 2, math.inf):
        delta = robustness.worst_linear_perturbation(w, y, eps, p)
        drop = robustness.linear_margin_drop(w, eps, p)
        errors["input_attack_margin_drop"] = max(errors["input_attack_margin_drop"], abs(
            (y * w @ x - y * w @ (x + delta)) - drop) / max(drop, 1e-300) if drop else 0.0)
    weight_drop = robustness.weight_perturbation_margin_drop(x, rho)
    worst_w = -rho * y * x / np.linalg.norm(x)
    errors["weight_perturbation_margin_drop"] = max(
        errors["weight_perturbation_margin_drop"],
        abs((y * w @ x - y * (w + worst_w) @ x) - weight_drop) / max(weight_drop, 1e-300)
        if weight_drop else 0.0)
    W, delta = rng.standard_normal((m, d)), rng.standard_normal(d)
    delta_W = robustness.weight_perturbation_for_input(W, x, delta)
    scale = np.linalg.norm(W @ (x + delta))
    errors["first_layer_duality"] = max(errors["first_layer_duality"], float(
        np.linalg.norm((W + delta_W) @ x - W @ (x + delta)) / scale))
    if robustness.has_full_row_rank(W):
        any_delta_W = rng.standard_normal((m, d))
        back = robustness.input_perturbation_for_weights(W, x, any_delta_W)
        errors["reverse_duality_full_row_rank"] = max(
            errors["reverse_duality_full_row_rank"], float(
                np.linalg.norm(W @ (x + back) - (W + any_delta_W) @ x)
                / np.linalg.norm((W + any_delta_W) @ x)))
# One step of the library's attack (PGD) on a linear score against the exact worst case, on a
# batch of 200 examples (every example gets its own perturbation).
w = rng.standard_normal(6)
inputs, labels = rng.standard_normal((200, 6)), rng.choice((-1.0, 1.0), 200)
pgd = st.optim.pgd_perturbation(lambda batch: -jnp.sum(jnp.asarray(labels) * (batch @ jnp.asarray(w))),
                                jnp.asarray(inputs), 0.3, norm=math.inf)
exact = np.stack([robustness.worst_linear_perturbation(w, int(label), 0.3, math.inf)
                  for label in labels])
errors["pgd_one_step_vs_exact"] = float(np.max(np.abs(np.asarray(pgd) - exact)))
# Per-example SAM on a linear score is AT with an ℓ2 budget per example, ε_k = ρ‖x_k‖/‖w‖, minus
# AT's shrinkage term: the library's 1-SAM gradient against ℓ'(m_k − ρ‖x_k‖)·y_k·x_k averaged.
small = st.problems.robust_features(n=8, n_nonrobust=5, seed=1)
one_sam = st.optim.sam(1.0, 0.3, m=1)
for trial in range(3):
    w = jnp.asarray(rng.standard_normal(6))
    w_next, _, _ = one_sam.step(w, one_sam.init(w), small.loss, small.examples, one_sam.hparams,
                                jax.random.key(0))
    X, Y = np.asarray(small.examples["x"]), np.asarray(small.examples["y"])
    margins = Y * (X @ np.asarray(w)) - 0.3 * np.linalg.norm(X, axis=1)  # m_k − ρ‖x_k‖
    slopes = -1.0 / (1.0 + np.exp(margins))                                 # ℓ'(m) of log(1 + e^{−m})
    by_hand = np.mean(slopes[:, None] * Y[:, None] * X, axis=0)
    library = np.asarray(w - w_next)                                        # lr = 1
    errors["one_sam_is_l2_at_without_shrinkage"] = max(
        errors.get("one_sam_is_l2_at_without_shrinkage", 0.0),
        float(np.linalg.norm(library - by_hand) / np.linalg.norm(by_hand)))
print({name: f"{value:.2g}" for name, value in errors.items()})

# %% [markdown]
# ## 2. Linear and diagonal models: GD, SAM, 1-SAM and AT, exactly
#
# One compiled sweep per model: GD, full-batch SAM and per-example SAM (1-SAM: every example gets
# its own ascent point) at three radii, AT (exact one-step ℓ∞ inner maximum) at three budgets and
# ℓ2 AT on a budget grid from 0 (its ε = 0 lane takes GD's steps exactly and is the GD run), all
# from the same start on the same 200 examples, 3,000 full-batch steps of size 0.5. The robust
# ratio is recorded along the way; the accuracies at the end are the exact population values.
#
# **Exercise 2 (numeric prediction).** The Bayes classifier here is $w = \mu$. What is its
# accuracy under the ℓ∞ attack of radius 0.2 (which erases every non-robust feature's mean)?
# Use the formula above ($q = 1$ for ℓ∞). Graded within 0.5% of the library's closed form.

# %% tags=["exercise"]
predicted_bayes_robust_accuracy = 0.7244  # SOLUTION

# %% tags=["exercise-check"]
MEAN = np.concatenate([[ROBUST_MEAN], np.full(K, NONROBUST_MEAN)])
st.labkit.check_number("predicted_bayes_robust_accuracy", predicted_bayes_robust_accuracy,
                       robustness.gaussian_linear_accuracy(MEAN, MEAN, np.eye(1 + K), 0.2, "inf"),
                       rtol=0.005)

# %%
def ratio_of(params, problem, state=None):
    return st.measure.robust_weight_ratio(st.measure.effective_weights(problem, params))


def optimizers(relu=False):
    at_steps = RELU_PGD_STEPS if relu else 1
    chosen = {"GD": st.optim.gd(LR), "SAM": st.optim.sam(LR, RHOS[0]),
              "1-SAM": st.optim.sam(LR, RHOS[0], m=1),
              "AT": st.optim.adversarial_training(LR, EPSILONS[0], steps=at_steps)}
    if not relu:  # ℓ2 AT on its own budget grid (exact one-step inner maximum on linear scores);
        # its ε = 0 lane takes gradient descent's steps exactly and is the GD run (one program less)
        del chosen["GD"]
        chosen["AT-l2"] = st.optim.adversarial_training(LR, 0.0, norm=2)
    return chosen


def exact_numbers(problem, weights, status):
    """Exact clean/robust accuracies (ℓ∞ and ℓ2) and the robust ratio of one linear-score model."""
    mean, covariance = np.asarray(problem.constants["mean"]), np.asarray(problem.constants["covariance"])
    weights = np.asarray(weights)
    return {"ratio": float(st.measure.robust_weight_ratio(weights)), "status": str(status),
            "accuracy": [robustness.gaussian_linear_accuracy(weights, mean, covariance, e, "inf")
                         for e in EVAL_EPSILONS],
            "accuracy_l2": [robustness.gaussian_linear_accuracy(weights, mean, covariance, e, 2)
                            for e in EVAL_L2_EPSILONS]}


OBSERVE = {"loss": st.dynamics.evaluation_loss, "ratio": of_params_and_problem(ratio_of)}


def linear_model_study(model, data_seed):
    problem = st.problems.robust_features(model=model, n=N, n_nonrobust=K, robust_mean=ROBUST_MEAN,
                                          nonrobust_mean=NONROBUST_MEAN, seed=data_seed)
    # One compiled sweep (every data draw has the same shapes, so later draws reuse the program):
    # axes (ρ, ℓ∞ AT's ε, ℓ2 AT's ε, seed); each method varies only along its own axes.
    result = st.sweep(problem, optimizers(), steps=LINEAR_STEPS, seeds=1,
                      grid={"rho": RHOS, "AT.epsilon": EPSILONS,
                            "AT-l2.epsilon": L2_AT_EPSILONS[model]},
                      stride=LINEAR_STEPS // 30, observe=OBSERVE)
    effective = jax.vmap(jax.vmap(jax.vmap(jax.vmap(
        lambda p: st.measure.effective_weights(problem, p)))))
    weights = {name: np.asarray(effective(trajectory.params)) for name, trajectory in result.items()}
    status = {name: np.asarray(trajectory.status) for name, trajectory in result.items()}
    lanes = {"GD": exact_numbers(problem, weights["AT-l2"][0, 0, 0, 0], status["AT-l2"][0, 0, 0, 0])}
    for i, rho in enumerate(RHOS):
        for name in ("SAM", "1-SAM"):
            lanes[f"{name} ρ={rho:g}"] = exact_numbers(problem, weights[name][i, 0, 0, 0],
                                                       status[name][i, 0, 0, 0])
    for j, eps in enumerate(EPSILONS):
        lanes[f"AT ε={eps:g}"] = exact_numbers(problem, weights["AT"][0, j, 0, 0],
                                               status["AT"][0, j, 0, 0])
    for eps in L2_FRONTIER:
        j = L2_AT_EPSILONS[model].index(eps)
        lanes[f"AT-l2 ε={eps:g}"] = exact_numbers(
            problem, weights["AT-l2"][0, 0, j, 0], status["AT-l2"][0, 0, j, 0])
    # Where the equivalence radius points: 1-SAM at ρ against ℓ2 AT at every budget of the grid.
    x_norm = float(np.mean(np.linalg.norm(np.asarray(problem.examples["x"]), axis=1)))
    at_l2 = weights["AT-l2"][0, 0, :, 0]
    at_l2_status = [str(s) for s in status["AT-l2"][0, 0, :, 0]]
    equivalence = {"mean_x_norm": x_norm, "epsilons": list(L2_AT_EPSILONS[model]),
                   "predicted_epsilon": [], "direction_distance": [],
                   "ratio": [], "status": next((s for s in at_l2_status if s != "ok"), "ok")}
    for i, rho in enumerate(RHOS):
        one_sam = weights["1-SAM"][i, 0, 0, 0]
        equivalence["predicted_epsilon"].append(
            robustness.equivalent_input_radius(rho, x_norm, float(np.linalg.norm(one_sam))))
        cosines = at_l2 @ one_sam / (np.linalg.norm(at_l2, axis=1) * np.linalg.norm(one_sam))
        equivalence["direction_distance"].append((1.0 - cosines).tolist())
        equivalence["ratio"].append(float(st.measure.robust_weight_ratio(one_sam)))
    equivalence["at_l2_ratio"] = [float(st.measure.robust_weight_ratio(w)) for w in at_l2]
    curves = {"GD": np.asarray(result["AT-l2"].observed["ratio"])[0, 0, 0, 0],
              f"SAM ρ={RHOS[-1]:g}": np.asarray(result["SAM"].observed["ratio"])[-1, 0, 0, 0],
              f"1-SAM ρ={RHOS[-1]:g}": np.asarray(result["1-SAM"].observed["ratio"])[-1, 0, 0, 0],
              f"AT ε={EPSILONS[1]:g}": np.asarray(result["AT"].observed["ratio"])[0, 1, 0, 0]}
    return problem, result, lanes, curves, equivalence


def over_draws(model):
    """Every data draw's lanes, and their mean over draws (ratios and accuracies)."""
    draws = [linear_model_study(model, seed) for seed in DATA_SEEDS]
    per_draw = [lanes for _, _, lanes, _, _ in draws]
    mean = {name: {"ratio": float(np.mean([lanes[name]["ratio"] for lanes in per_draw])),
                   "ratio_per_draw": [lanes[name]["ratio"] for lanes in per_draw],
                   "accuracy": np.mean([lanes[name]["accuracy"] for lanes in per_draw],
                                       axis=0).tolist(),
                   "accuracy_l2": np.mean([lanes[name]["accuracy_l2"] for lanes in per_draw],
                                          axis=0).tolist(),
                   "status": next((lanes[name]["status"] for lanes in per_draw
                                   if lanes[name]["status"] != "ok"), "ok")}
            for name in per_draw[0]}
    return draws[0][0], draws[0][1], mean, draws[0][3], [draw[4] for draw in draws]


_, linear_result, linear_lanes, linear_curves, linear_equivalence = over_draws("linear")
(diagonal_problem, diagonal_result, diagonal_lanes, diagonal_curves,
 diagonal_equivalence) = over_draws("diagonal")
for title, lanes in (("linear", linear_lanes), ("diagonal", diagonal_lanes)):
    print(title)
    for name, numbers in lanes.items():
        print(f"  {name:12s} ratio {numbers['ratio']:.4f}  accuracy at ε = {EVAL_EPSILONS}: "
              + " ".join(f"{a:.4f}" for a in numbers["accuracy"]))

# %% [markdown]
# Robustness and sharpness side by side: the exact top Hessian eigenvalue and trace of the training
# loss at the end of each diagonal-network run (first training set).

# %%
diagonal_loss = st.measure.full_batch_loss(diagonal_problem)
diagonal_ends = {"GD": ("AT-l2", (0, 0, 0)), f"SAM ρ={RHOS[-1]:g}": ("SAM", (-1, 0, 0)),
                 f"1-SAM ρ={RHOS[-1]:g}": ("1-SAM", (-1, 0, 0)),
                 f"AT ε={EPSILONS[-1]:g}": ("AT", (0, -1, 0))}
sharpness_of = jax.jit(lambda params: (  # one compiled program for the four runs
    st.measure.lambda_max(diagonal_loss, params, method="dense"),
    st.measure.hessian_trace(diagonal_loss, params, method="dense")))
diagonal_sharpness = {}
for name, (optimizer, index) in diagonal_ends.items():
    params = jax.tree_util.tree_map(lambda leaf: leaf[index + (0,)], diagonal_result[optimizer].params)
    top, trace = sharpness_of(params)
    diagonal_sharpness[name] = {"lambda_max": float(top), "trace": float(trace)}
    print(f"  {name:12s} λ_max {diagonal_sharpness[name]['lambda_max']:.4g}  trace "
          f"{diagonal_sharpness[name]['trace']:.4g}  robust ratio {diagonal_lanes[name]['ratio']:.3f}")

# %% [markdown]
# On the linear model full-batch SAM does nothing measurable to the ratio: for a linear score
# the ascent step $w + \rho\nabla L/\|\nabla L\|$ shifts every example's margin by an amount
# proportional to its own $y\,x^\top\nabla L$, a small reweighting of a convex problem with the
# same data, and the iterates stay on GD's path to within a fraction of a percent. Per-example
# SAM perturbs the weights *per example* along $-y\,x$, the dual of an ℓ2 input attack of radius
# $\rho\|x\|_2/\|w\|_2$ (the identity of part 1): on the linear model it still does not favour
# the robust feature, on the diagonal network (depth two, non-convex) it does. AT moves the
# ratio most, on both.

# %%
def draw_ratio(ax, curves, steps, title):
    for name, values in curves.items():
        ax.plot(steps, values, label=name)
    ax.axhline(ROBUST_MEAN / (K * NONROBUST_MEAN), ls="--", color="black", lw=1,
               label="Bayes classifier w = μ")
    ax.set(xlabel="step", ylabel="robust-feature ratio |w₀| / Σ|wⱼ|", title=title, yscale="log")


fig, axes = st.plotting.figure(1, 2)
draw_ratio(axes[0, 0], linear_curves, np.asarray(linear_result["AT-l2"].steps), "(a) linear model")
draw_ratio(axes[0, 1], diagonal_curves, np.asarray(diagonal_result["AT-l2"].steps),
           "(b) diagonal network u⊙v")
st.plotting.figure_legend(fig)
linear_sam_shift = max(abs(linear_lanes[f"SAM ρ={rho:g}"]["ratio"] / linear_lanes["GD"]["ratio"] - 1)
                       for rho in RHOS)
st.plotting.finding(fig, f"Full-batch SAM leaves the linear model's robust ratio within "
                         f"{100 * linear_sam_shift:.2g}% of GD's; 1-SAM raises it only on the "
                         "diagonal network; AT raises it on both")
lab.savefig(fig, "robust_weight", claims=[
    "zhang2024.sam_adversarial.linear_full_batch_sam_changes_nothing",
    "zhang2024.sam_adversarial.per_example_sam_raises_robust_weight_linear",
    "zhang2024.sam_adversarial.per_example_sam_raises_robust_weight_diagonal"],
    runs={name: "ok" for name in linear_curves} | {"Bayes classifier w = μ": "ok"})

# %% [markdown]
# ### Which AT budget does 1-SAM behave like?
#
# Part 1's identity says 1-SAM at radius ρ sees, for example $k$, the margin that an ℓ2 attack of
# radius $\rho\|x_k\|/\|w\|$ leaves (the *equivalence radius*), and takes AT's gradient without
# AT's shrinkage term. So 1-SAM at ρ should end where ℓ2 AT ends at the budget
# $\varepsilon^* = \rho\,\overline{\|x\|}/\|w_{\text{1-SAM}}\|$ (mean input norm, 1-SAM's final
# weights), unless the missing shrinkage matters. The same sweep ran ℓ2 AT (exact inner maximum)
# at 31 budgets $\varepsilon \in \{0, 0.01, \dots, 0.3\}$; we measure how far each AT solution's
# direction is from 1-SAM's ($1 - \cos$) and ask whether the closest budget on the grid is
# $\varepsilon^*$: the least-squares slope $c$ of the closest budget against $\varepsilon^*$, over
# every ρ and training set, within 25% of 1.
#
# (The shrinkage term $-\varepsilon\ell'\,w/\|w\|$ of ℓ2 AT points along $w$: it changes the
# norm, not the direction, so if the equivalence radius holds anywhere it holds for directions.)

# %%
def best_matches(equivalence):
    """Per training set and ρ: (predicted ε*, the grid's closest ε, distance there, at ε = 0)."""
    rows = []
    for draw in equivalence:
        for i, rho in enumerate(RHOS):
            distance = np.asarray(draw["direction_distance"][i])
            rows.append((rho, draw["predicted_epsilon"][i], draw["epsilons"][int(np.argmin(distance))],
                         float(distance.min()), float(distance[0])))
    return rows


for title, equivalence in (("linear", linear_equivalence), ("diagonal", diagonal_equivalence)):
    print(title)
    for rho, predicted, best, closest, at_zero in best_matches(equivalence):
        print(f"  ρ = {rho:g}: predicted ε* = {predicted:.3f}, closest ℓ2 AT ε = {best:g} "
              f"(1 − cos = {closest:.2e}; at ε = 0: {at_zero:.2e})")

fig, axes = st.plotting.figure(1, 2)
for ax, equivalence, title in ((axes[0, 0], linear_equivalence, "(a) linear model"),
                               (axes[0, 1], diagonal_equivalence, "(b) diagonal network u⊙v")):
    draw = equivalence[0]
    for i, rho in enumerate(RHOS):
        line, = ax.plot(draw["epsilons"], draw["direction_distance"][i], marker=".",
                        label=f"1-SAM ρ = {rho:g}")
        ax.axvline(draw["predicted_epsilon"][i], color=line.get_color(), ls="--", lw=1)
    ax.set(xlabel="ℓ2 AT budget ε", ylabel="1 − cosine (1-SAM, AT weights)", title=title,
           yscale="log")
st.plotting.figure_legend(fig)
linear_rows = best_matches(linear_equivalence)
slope = (sum(best * predicted for _, predicted, best, _, _ in linear_rows)
         / sum(predicted ** 2 for _, predicted, _, _, _ in linear_rows))
print(f"linear model: closest ℓ2 AT budget ≈ {slope:.3f} × the equivalence radius (least squares)")
st.plotting.finding(fig, f"Dashed: the equivalence radius ρ‖x‖/‖w‖. On the linear model 1-SAM "
                         f"points like ℓ2 AT at about {slope:.2f} of it (first training set shown)")
lab.savefig(fig, "equivalence_radius",
            claims=["zhang2024.sam_adversarial.equivalence_radius_predicts_at_budget"],
            runs={f"1-SAM ρ = {rho:g}": "ok" for rho in RHOS})


# %% [markdown]
# ## 3. A two-layer ReLU network, robustness by PGD
#
# The same data, $s(x) = a^\top \mathrm{relu}(Wx)$ with 16 hidden units, every method from the same
# random initialization per seed; AT uses 3 PGD steps, the evaluation 10. The robust accuracy is
# measured on 4,000 fresh test examples (standard error about 0.7 points). (With `--quick`: 400
# steps, 2 seeds and one optimizer, 1-SAM at ρ ∈ {0, 0.2}, whose ρ = 0 lane is GD (the same steps
# up to round-off): no full-batch SAM and no AT on this network; the linear and diagonal models
# on one training set instead of three.)

# %%
relu_problem = st.problems.robust_features(model="relu", n=N, n_nonrobust=K, robust_mean=ROBUST_MEAN,
                                           nonrobust_mean=NONROBUST_MEAN, width=RELU_WIDTH,
                                           init_scale=1.0)
if lab.quick:  # one optimizer, one program: 1-SAM's ρ = 0 lane is GD
    relu_optimizers, relu_grid = {"1-SAM": st.optim.sam(LR, RELU_RHOS[0], m=1)}, {
        "rho": (0.0,) + RELU_RHOS}
else:
    relu_optimizers, relu_grid = optimizers(relu=True), {"rho": RELU_RHOS, "epsilon": EPSILONS}
relu_result = st.sweep(relu_problem, relu_optimizers, steps=RELU_STEPS, seeds=lab.seeds,
                       grid=relu_grid, stride=RELU_STEPS, init=relu_problem.init)


@jax.jit
def relu_numbers(params):
    accuracy = jax.vmap(lambda eps: st.measure.pgd_robust_accuracy(
        relu_problem, params, eps, steps=EVAL_PGD_STEPS))(jnp.asarray(EVAL_EPSILONS))
    train = st.measure.pgd_robust_accuracy(relu_problem, params, EPSILONS[-1], steps=EVAL_PGD_STEPS,
                                           x=relu_problem.examples["x"],
                                           y=relu_problem.examples["y"])
    return ratio_of(params, relu_problem), accuracy, train


def relu_lane(name, index):
    lanes = [jax.tree_util.tree_map(lambda leaf: leaf[index + (seed,)], relu_result[name].params)
             for seed in range(lab.seeds)]
    numbers = [relu_numbers(params) for params in lanes]
    statuses = np.asarray(relu_result[name].status)[index]
    return {"ratio": float(np.mean([float(r) for r, _, _ in numbers])),
            "train_robust_accuracy_eps_0.2": float(np.mean([float(t) for _, _, t in numbers])),
            "ratio_per_seed": [float(r) for r, _, _ in numbers],
            "accuracy": np.mean([np.asarray(a) for _, a, _ in numbers], axis=0).tolist(),
            "status": "ok" if all(s == "ok" for s in statuses) else
            next(s for s in statuses if s != "ok")}


if lab.quick:
    relu_lanes = {"GD": relu_lane("1-SAM", (0,))}
    relu_lanes |= {f"1-SAM ρ={rho:g}": relu_lane("1-SAM", (i + 1,)) for i, rho in enumerate(RELU_RHOS)}
else:
    relu_lanes = {"GD": relu_lane("GD", (0, 0))}
    for i, rho in enumerate(RELU_RHOS):
        for name in ("SAM", "1-SAM"):
            relu_lanes[f"{name} ρ={rho:g}"] = relu_lane(name, (i, 0))
    for j, eps in enumerate(EPSILONS):
        relu_lanes[f"AT ε={eps:g}"] = relu_lane("AT", (0, j))
for name, numbers in relu_lanes.items():
    print(f"  {name:12s} ratio {numbers['ratio']:.4f}  accuracy at ε = {EVAL_EPSILONS}: "
          + " ".join(f"{a:.4f}" for a in numbers["accuracy"]))

# %% [markdown] tags=["predict"]
# **Predict, then run.** On the ReLU network, does some SAM run (full-batch or per-example, any
# ρ of the grid) gain at least 2 points of robust accuracy at ε = 0.1 over GD while losing at most
# 0.5 points of clean accuracy, as the paper reports for deep networks?

# %% tags=["prediction"]
predict_relu_sam_gains_two_points = False  # SOLUTION

# %%
SMALL_INDEX, LARGE_INDEX = EVAL_EPSILONS.index(SMALL), EVAL_EPSILONS.index(LARGE)
L2_INDEX = EVAL_L2_EPSILONS.index(L2_SMALL)
fig, axes = st.plotting.figure(1, 3, width=3.0, height=3.0)
for ax, lanes, title, key, index, budget in (
        (axes[0, 0], diagonal_lanes, "(a) diagonal network, ℓ∞ (exact)", "accuracy", SMALL_INDEX,
         f"ℓ∞ ε = {SMALL:g}"),
        (axes[0, 1], relu_lanes, "(b) two-layer ReLU, ℓ∞ (PGD-10)", "accuracy", SMALL_INDEX,
         f"ℓ∞ ε = {SMALL:g}"),
        (axes[0, 2], diagonal_lanes, "(c) diagonal network, ℓ2 (exact)", "accuracy_l2", L2_INDEX,
         f"ℓ2 ε = {L2_SMALL:g}")):
    for family, marker in (("GD", "o"), ("SAM", "s"), ("1-SAM", "^"), ("AT", "D"), ("AT-l2", "v")):
        members = [(name, numbers) for name, numbers in lanes.items()
                   if name == family or name.startswith(family + " ")]
        if not members:
            continue
        ax.plot([100 * numbers[key][0] for _, numbers in members],
                [100 * numbers[key][index] for _, numbers in members],
                marker=marker, ls="-" if len(members) > 1 else "", label=family)
    ax.set(xlabel="clean accuracy (%)", ylabel=f"robust, {budget} (%)", title=title)
st.plotting.figure_legend(fig)
relu_gain = max(relu_lanes[name]["accuracy"][SMALL_INDEX] - relu_lanes["GD"]["accuracy"][SMALL_INDEX]
                for name in relu_lanes if "SAM" in name)
st.plotting.finding(fig, f"SAM's best robust gain at ε = {SMALL:g}: "
                         f"{100 * (diagonal_lanes[f'1-SAM ρ={RHOS[-1]:g}']['accuracy'][SMALL_INDEX] - diagonal_lanes['GD']['accuracy'][SMALL_INDEX]):.2g} "
                         f"points (diagonal, 1-SAM), {100 * relu_gain:.2g} (ReLU); AT moves the frontier")
lab.savefig(fig, "frontier", claims=["zhang2024.sam_adversarial.sam_gains_small_budget_robustness",
                                     "zhang2024.sam_adversarial.ordering_sgd_sam_at"],
            runs={"GD": "ok", "SAM": "ok", "1-SAM": "ok", "AT": "ok", "AT-l2": "ok"}, slide=True)

# %% [markdown]
# **Exercise 3 (open question).** On the diagonal network 1-SAM raises the robust ratio and AT
# raises it much more. Using part 1's identity (a per-example weight perturbation of radius ρ is an
# ℓ2 input attack of radius ρ‖x‖₂/‖w‖₂), estimate which AT budget 1-SAM at ρ = 0.1 imitates here
# (‖x‖₂ ≈ sqrt(21) for these inputs), and say why an ℓ2-type perturbation favours the robust
# feature less than AT's ℓ∞ attack does.

# %% tags=["teacher-note"]
# Teacher's note (not on the students' site): with ‖x‖₂ ≈ 4.7 and ‖u⊙v‖₂ ≈ 4-8 at the end of
# training, ρ = 0.1 corresponds to an ℓ2 input radius of roughly 0.06-0.12 (the equivalence
# section measures it: ε* = 0.059-0.122 over the three training sets, and the ℓ2 AT run pointing
# most like 1-SAM's has 0.4-0.85 of it), i.e. an ℓ∞ radius (per coordinate) of about 0.01-0.03
# spread over 21 coordinates: a much weaker attack on the
# non-robust features than AT's ℓ∞ budget 0.1-0.2, which takes ε from every coordinate at once
# and costs the score ε‖w‖₁. The ℓ2 attack costs ε‖w‖₂ and so penalizes the many small
# non-robust weights less: 1-SAM's shift is in AT's direction but smaller (Zhang et al.'s
# "different strengths").

# %%
measured = {
    "duality": {"max_relative_error": errors},
    "linear": {"lanes": linear_lanes, "equivalence": linear_equivalence},
    "diagonal": {"lanes": diagonal_lanes, "sharpness_first_draw": diagonal_sharpness,
                 "equivalence": diagonal_equivalence},
    "relu": {"lanes": relu_lanes, "seeds": lab.seeds, "steps": RELU_STEPS},
    "eval_epsilons": list(EVAL_EPSILONS),
    "eval_l2_epsilons": list(EVAL_L2_EPSILONS),
}
lab.save_arrays(**{f"linear_ratio_{name}": values for name, values in
                   zip(("GD", "SAM", "1-SAM", "AT"), linear_curves.values())},
                **{f"diagonal_ratio_{name}": values for name, values in
                   zip(("GD", "SAM", "1-SAM", "AT"), diagonal_curves.values())})
results = lab.finish(measured)

# %% [markdown]
# **Your predictions against the measurement.**

# %%
st.labkit.compare_predictions(results, {
    "zhang2024.sam_adversarial.linear_full_batch_sam_changes_nothing": predict_linear_sam_is_null,
    "zhang2024.sam_adversarial.sam_gains_small_budget_robustness": predict_relu_sam_gains_two_points,
})
