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
# # Bring your own model: a two-layer linear net, end to end
# Your model is not one of our labs. This guide takes a two-layer linear network
# ŷ = aᵀWx (W: 10×20, a: 10, so 210 parameters) on noisy synthetic data and walks the whole
# path: build the problem, run GD, SGD and SAM, sweep ρ × seeds with the sharpness λ_max
# recorded every 30 steps (exact, by dense `eigh` at 210 parameters), read the exact Hessian
# spectrum at the end, draw the figure, and fuzz a bound on your own instance.
#
# The same steps take an Equinox, Flax or Haiku model through `st.problems.from_model` (see the
# last section). `SHARP_THEORY_GUIDE_QUICK=1` (CI) runs it at small sizes.

# %%
import os

import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np
from hypothesis import strategies as hs

import sharp_theory as st

QUICK = os.environ.get("SHARP_THEORY_GUIDE_QUICK", "") == "1"
STEPS = 150 if QUICK else 3000
SEEDS = 2 if QUICK else 4
RHOS = [0.0, 0.02, 0.05, 0.1]
STRIDE = 30
D, H, N = 20, 10, 40

# %% [markdown]
# ## 1. The problem
# `from_loss` takes any `loss(params, batch) -> scalar` (a mean over the batch), the initial
# parameters and the data. It calls the loss once at the start: a vector output, shapes that do
# not fit or a NaN in the data are refused there, in one line. Everything runs in float64.

# %%
k_x, k_w, k_noise, k_init = jax.random.split(jax.random.key(0), 4)
X = jax.random.normal(k_x, (N, D))
y = X @ jax.random.normal(k_w, (D,)) / np.sqrt(D) + 0.1 * jax.random.normal(k_noise, (N,))


def loss(params, batch):
    x, target = batch
    prediction = x @ params["W"].T @ params["a"]
    return 0.5 * jnp.mean((prediction - target) ** 2)


k_W, k_a = jax.random.split(k_init)
params0 = {"W": 0.3 * jax.random.normal(k_W, (H, D)), "a": 0.3 * jax.random.normal(k_a, (H,))}
problem = st.problems.from_loss(loss, params0, (X, y), name="two_layer_linear")
problem

# %% [markdown]
# ## 2. GD, SGD and SAM
# Every run records the loss; `observe=` adds ready observables such as
# `st.observables.lambda_max`. `status` says "ok", "diverged ..." or "runaway ..." (a loss
# 10⁴× its start).

# %%
optimizers = {"gd": st.optim.gd(lr=0.05), "sgd": st.optim.sgd(lr=0.05, batch_size=8),
              "sam": st.optim.sam(lr=0.05, rho=0.05)}
for name, optimizer in optimizers.items():
    run = st.run(problem, optimizer, steps=STEPS, key=jax.random.key(0), stride=STRIDE,
                 observe={"lambda_max": st.observables.lambda_max})
    print(f"{name:4s} {run.status:3s} loss {run.final('loss'):.4g}  "
          f"lambda_max {run.final('lambda_max'):.4g}")

# %% [markdown]
# ## 3. A ρ × seed sweep with λ_max every 30 steps
# One compiled call runs every lane; the lanes are split over the CPU cores. Each seed draws its
# own initialization through `init=`.

# %%
def init(key):
    k_W, k_a = jax.random.split(key)
    return {"W": 0.3 * jax.random.normal(k_W, (H, D)), "a": 0.3 * jax.random.normal(k_a, (H,))}


result = st.sweep(problem, st.optim.sam(lr=0.05, rho=0.05), grid={"rho": RHOS}, seeds=SEEDS,
                  steps=STEPS, stride=STRIDE, init=init,
                  observe={"lambda_max": st.observables.lambda_max})
result

# %%
sam = result["sam"]
final_lambda = sam.final("lambda_max")  # (rho, seed)
for rho, row in zip(RHOS, final_lambda):
    print(f"rho={rho:<5} final lambda_max {row.mean():.4f} ± {row.std():.4f} over {SEEDS} seeds")

# %% [markdown]
# ## 4. The exact spectrum at the end
# At 210 parameters the dense Hessian is cheap: its eigenvalues are exact to rounding.

# %%
fn = st.measure.full_batch_loss(problem)
end = jax.tree_util.tree_map(lambda leaf: leaf[-1, 0], sam.params)  # largest rho, seed 0
eigenvalues = np.asarray(st.measure.hessian_eigenvalues(fn, end))
print("top 5 eigenvalues:", np.round(eigenvalues[::-1][:5], 5))
print("matches the recorded lambda_max:", np.isclose(eigenvalues.max(), final_lambda[-1, 0]))

# %% [markdown]
# ## 5. The figure

# %%
fig, ax = plt.subplots(figsize=(6, 3.5))
for index, rho in enumerate(RHOS):
    curve = sam.observed["lambda_max"][index]  # (seed, record)
    ax.plot(sam.steps, curve.mean(axis=0), label=f"ρ = {rho}")
ax.set_xlabel("step")
ax.set_ylabel("λ_max (mean over seeds)")
ax.set_title("SAM on the two-layer linear net")
ax.legend()
fig.tight_layout()
fig.savefig("bring_your_own_model_lambda_max.png", dpi=120)

# %% [markdown]
# ## 6. A fuzzed bound on your own instance
# A second-order statement one may write down: the loss at SAM's ascent point is at most
# L(w) + ρ‖∇L(w)‖ + ½ρ²λ_max(w). It is exact for a quadratic; this loss is quartic in (W, a),
# so the fuzzer searches the start scale and ρ for a violation. The slack is the bound minus the
# left side (≥ 0: holds on that instance).


# %%
@st.testing.claim(scale=hs.floats(0.05, 1.0), rho=hs.floats(0.0, 0.5), start=hs.integers(0, 3))
def ascent_loss_within_second_order(scale, rho, start):
    """L(w + ρ∇L/‖∇L‖) ≤ L(w) + ρ‖∇L(w)‖ + ½ρ²λ_max(w) on the two-layer linear net."""
    w = jax.tree_util.tree_map(lambda leaf: scale * leaf, init(jax.random.key(start)))
    grad = jax.grad(fn)(w)
    norm = float(st.observables.param_norm(grad))
    ascent = jax.tree_util.tree_map(lambda p, g: p + rho * g / norm, w, grad)
    lam = float(st.observables.lambda_max(w, problem))
    return float(fn(w) + rho * norm + 0.5 * rho ** 2 * lam - fn(ascent))


found = st.testing.fuzz(ascent_loss_within_second_order.claim,
                        budget_s=5 if QUICK else 60, max_examples=20 if QUICK else 400)
print(found.verdict, "after", found.examples, "instances; smallest slack", found.min_slack)
if found.counterexample is not None:
    print("counterexample:", found.counterexample, "slack", found.slack)

# %% [markdown]
# ## 7. A model from Equinox, Flax or Haiku
# `st.problems.from_model(model, loss, (inputs, targets))` takes an Equinox module, a Flax NNX
# module, a Flax Linen module with `params=` its variables, or a Haiku `hk.transform`-ed function
# with `params=`; the problem's parameters are the model's own pytree, upcast to float64.
# (`pip install 'sharp-theory[models]'`.)

# %%
try:
    import equinox as eqx
except ImportError:
    eqx = None
if eqx is not None:
    net = eqx.nn.MLP(D, 1, H, 1, activation=lambda z: z, use_bias=False, key=jax.random.key(1))
    model_problem = st.problems.from_model(net, lambda out, t: 0.5 * jnp.mean((out[:, 0] - t) ** 2),
                                           (X, y))
    run = st.run(model_problem, st.optim.sam(lr=0.05, rho=0.05), steps=STEPS,
                 key=jax.random.key(0), stride=STEPS, observe={"lambda_max": st.observables.lambda_max})
    print("equinox:", run.status, float(run.final("loss")), float(run.final("lambda_max")))
