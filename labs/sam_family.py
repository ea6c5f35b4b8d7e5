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
# # The SAM family at equal cost: every variant on problems with a known answer
# A dozen variants of sharpness-aware minimization each claim SAM's benefit at lower cost, or
# with better scaling. Here every one of them (`sharp_theory/optim/`; papers and
# equations in the docstrings and in `papers/sam-family-*.md`) runs on the exact problems of
# this package, tuned on a small grid of its own knob (radius ρ, noise level σ, or penalty λ) by
# **one `st.sweep` per problem**, and is scored by what the problem says is right:
#
# - **diagonal linear network** on sparse regression (Andriushchenko & Flammarion 2022, Sec. 4;
#   mini-batches of 2): test loss of the interpolator it finds (lower is better, the
#   sparse target generalizes);
# - **matrix sensing** (Ding et al. 2022): relative recovery error ‖LRᵀ − M‖_F/‖M‖_F;
# - **two-layer convolutional ReLU network** on signal-plus-noise patches (Chen et al. 2023;
#   d = 30, ‖μ‖ = 1, 10% flipped labels, mini-batches of 4): test error against the clean labels
#   (full run only);
# - **LoRA-like** layers `W0 + X_l Y_lᵀ` fitting a noisy target (Li, Zhang, He 2024; 4 layers,
#   noise 0.5): every minimizer has the same loss, so this one scores flatness (λ_max of the
#   population loss) and balancedness among the runs that reached the loss SGD reaches.
#
# Against cost: the number of gradient evaluations (full-batch passes of the mini-batch) each
# run spent, counted by the rules themselves (`info["grad_evals"]`): a LookSAM step that reuses
# its correction costs 1, an RST step costs 2 only when the coin says SAM. What to look at: the
# quality-vs-cost figure (each marker is one variant at its best knob value; lower-left is
# better; SGD and SAM are the reference points), then the table and the paragraph per variant.

# %%
import dataclasses
import functools
import importlib
import textwrap
import warnings

import jax
import jax.numpy as jnp
import numpy as np

import sharp_theory as st
import sharp_theory.plotting  # noqa: F401  (st.plotting is not imported by sharp_theory itself)
from sharp_theory.observables import of_params, of_params_and_problem

diag_module = importlib.import_module("sharp_theory.problems.diagonal")
conv_module = importlib.import_module("sharp_theory.problems.conv_relu")

lab = st.labkit.start("sam-family", default_seeds=3, quick_seeds=2)
QUICK = lab.quick

STEPS = 3000
RECORDS = 5 if QUICK else 10
RHO_GRID = [0.05, 0.2] if QUICK else [0.02, 0.05, 0.1, 0.2, 0.4]
ASAM_GRID = [0.5, 2.0] if QUICK else [0.2, 0.5, 1.0, 2.0, 4.0]  # ASAM's ρ: ‖ε‖ ≈ ρ·|w|
SIGMA_GRID = [0.01, 0.05] if QUICK else [0.003, 0.01, 0.03, 0.1]
LAM_GRID = [0.3, 3.0] if QUICK else [0.1, 0.3, 1.0, 3.0]
CONVERGED = 2.0  # LoRA: a run "converged" if its excess loss is at most 2x SGD's
# Quick runs (CI) drop what no claim reads: two variants on the diagonal net, most on LoRA.
QUICK_SKIP = ("ssam-random", "functional-sam")
QUICK_LORA = ("sgd", "sam", "flat-lora")
LORA_LAYERS = 2 if QUICK else 4
LATE_SWITCH = STEPS - STEPS // 10  # late-phase SAM: SGD, then SAM for the last 10% of the steps
lab.record_config(steps=STEPS, rho_grid=RHO_GRID, asam_rho_grid=ASAM_GRID,
                  sigma_grid=SIGMA_GRID, lam_grid=LAM_GRID,
                  seeds=lab.seeds, converged_factor_vs_sgd=CONVERGED, lora_layers=LORA_LAYERS,
                  fixed_knobs={"asam": "eta=0.01", "looksam": "every=5, alpha=0.7",
                               "ssam": "sparsity=0.5, update_every=10",
                               "lpf-sgd": "draws=4, scale=rows", "rwp": "mix=0.5, draws=1, rows",
                               "swa/wasam": "average from STEPS/2 on, every step",
                               "rst": "switch_prob=0.5", "ae-sam": "kappa=1, c=0, decay=0.9",
                               "lets": "beta=10", "saf": "decay=0.9", "gsam": "alpha=0.1",
                               "friendly-sam": "sigma=1, decay=0.9", "momentum-sam": "beta=0.9",
                               "sampa": "lam=0", "lookahead-sam": "extra-gradient",
                               "cr-sam": "beta=0.01, h=0.01", "r-sam": "sigma=0.01",
                               "delta-sam": "temperature=1", "late-sam": "switch at STEPS - STEPS/10"})


# %% [markdown]
# ## Output models
# Functional-SAM (Singh et al. 2025) and the SAF-style penalty need the model's outputs, not
# only its loss: an `st.optim.OutputModel` says what the outputs are and how the loss reads
# them. Each one below is checked against the problem's own loss before use.

# %%
@dataclasses.dataclass(frozen=True)
class DiagonalNetOutputs(st.optim.OutputModel):
    """Predictions ``X(u⊙v)``; loss ``½ mean (o − y)²`` (the diagonal_linear objective)."""

    def outputs(self, params, batch):
        return batch["x"] @ (params["u"] * params["v"])

    def loss(self, outputs, batch):
        return 0.5 * jnp.mean(jnp.square(outputs - batch["y"]))


@dataclasses.dataclass(frozen=True)
class SensingOutputs(st.optim.OutputModel):
    """Measurements ``⟨A_i, LRᵀ⟩``; loss ``mean (o − b)²`` (the matrix_sensing objective)."""

    def outputs(self, params, batch):
        return jnp.einsum("ijl,jl->i", batch["A"], params["x"] @ params["y"].T)

    def loss(self, outputs, batch):
        return jnp.mean(jnp.square(outputs - batch["b"]))


@dataclasses.dataclass(frozen=True)
class ConvReluOutputs(st.optim.OutputModel):
    """Network outputs ``F₊₁ − F₋₁``; mean logistic loss (the conv_relu objective)."""

    def outputs(self, params, batch):
        return conv_module.network_output(params, batch["x"])

    def loss(self, outputs, batch):
        return jnp.mean(jax.nn.softplus(-batch["y"] * outputs))


@dataclasses.dataclass(frozen=True)
class LoRAOutputs(st.optim.OutputModel):
    """Merged weights ``X_l Y_lᵀ`` (W0 = 0); loss of the lora objective with A = diag(0.5, 0, 0)."""

    noise: float = 0.5
    scales: tuple = (1.0, 0.8, 0.5)

    def outputs(self, params, batch):
        return jnp.stack([pair["x"] @ pair["y"].T for pair in params])

    def loss(self, outputs, batch):
        target = jnp.zeros(outputs.shape[1:]).at[0, 0].set(0.5)
        scales = jnp.asarray(self.scales)[None, None, :, None]
        labels = target + self.noise * scales * batch["n"]  # (batch, layers, d1, d2)
        return jnp.sum(jnp.mean(jnp.sum(jnp.square(outputs[None] - labels), axis=(2, 3)), axis=0))


# %% [markdown]
# ## Observables (module-level, so compiled sweeps are reused)

# %%
def evaluation_loss(params, problem):
    return problem.evaluation_loss(params)


def lambda_max(params, problem):
    """λ_max of the problem's evaluation loss (population loss for the toys, train loss else)."""
    return st.measure.lambda_max(problem.evaluation_loss, params, method="dense")


def hessian_trace(params, problem):
    return st.measure.hessian_trace(problem.evaluation_loss, params, method="dense")


def diag_test_loss(params, problem):
    return diag_module.test_set_loss(params, problem)


def diag_balance(params):
    """½ Σ(u² − v²): the total effective initialization, conserved by gradient flow."""
    return 0.5 * jnp.sum(params["u"] ** 2 - params["v"] ** 2)


def conv_clean_test_error(params, problem):
    return conv_module.clean_label_test_error(params, problem)


def not_applicable(params):
    """Balancedness has no meaning for this model: NaN (shown as n/a)."""
    return jnp.asarray(jnp.nan)


def sensing_recovery(params, problem):
    truth = problem.constants["ground_truth"]
    return jnp.linalg.norm(params["x"] @ params["y"].T - truth) / jnp.linalg.norm(truth)


def lora_excess(params, problem):
    return problem.evaluation_loss(params) - problem.evaluation_loss(_lora_minimizer(params))


def _lora_minimizer(params):
    # A minimizer with the same structure: X Yᵀ = diag(0.5, 0, 0) in every layer.
    out = []
    for pair in params:
        x = jnp.zeros_like(pair["x"]).at[0, 0].set(jnp.sqrt(0.5))
        y = jnp.zeros_like(pair["y"]).at[0, 0].set(jnp.sqrt(0.5))
        out.append({"x": x, "y": y})
    return out


def factor_balance(params):
    """Mean |B| = |½(‖x‖² − ‖y‖²)| over the factor pairs (0 is balanced)."""
    return jnp.mean(jnp.abs(jnp.atleast_1d(st.measure.balancedness(params))))


# %% [markdown]
# ## The problems and the variants
# Every variant gets the problem's step size and batch size; Adam-based preconditioned SAM is
# compared with plain Adam at its own step size. Knobs: `rho` for the SAM-like rules (for
# LETS it is the initial radius, learned afterwards), `sigma` for the random perturbations,
# `lam` for the SAF-style penalty. A variant without a knob (SGD, Adam, SWA) runs once.

# %%
@dataclasses.dataclass(frozen=True)
class Setting:
    key: str
    title: str
    problem: st.problems.Problem
    lr: float
    adam_lr: float
    batch_size: int | None
    quality: object  # observable
    quality_label: str
    balance: object
    model: st.optim.OutputModel | None
    select: str  # "quality" or "flatness"
    matrix_factors: bool


def build_settings():
    # Quick runs (CI) keep the diagonal net and a 2-layer LoRA-like problem with the variants
    # the claims read; the full run adds matrix sensing, the conv ReLU net and every variant.
    # Only the problems a run uses are built (the conv ReLU net's data alone takes seconds).
    def diag():
        return Setting("diagonal_linear", "diagonal linear net (sparse regression)",
                       st.problems.diagonal_linear(init_scale=0.3), 0.05, 0.01, 2, diag_test_loss,
                       "test loss", diag_balance, DiagonalNetOutputs(), "quality", False)

    def sensing():
        return Setting("matrix_sensing", "matrix sensing (d=8, r=2)",
                       st.problems.matrix_sensing(8, rank=2, k=8, init_scale=0.1, seed=0), 0.05, 0.01,
                       8, sensing_recovery, "relative recovery error", factor_balance, SensingOutputs(),
                       "quality", True)

    def lora():
        return Setting("lora", f"LoRA-like, {LORA_LAYERS} layers, noise 0.5",
                       st.problems.lora(layers=LORA_LAYERS, noise=0.5, batch_size=2), 0.01, 0.005, None,
                       lora_excess, "excess population loss", factor_balance, LoRAOutputs(), "flatness",
                       True)

    def conv():
        problem = st.problems.conv_relu_signal_noise(dim=30, signal_strength=1.0, n_filters=5,
                                                     n_train=20, n_test=500, label_flip=0.1,
                                                     init_std=0.01)
        return Setting("conv_relu", "conv ReLU net (d=30, signal 1, 10% flips)", problem, 0.1, 0.01, 4,
                       conv_clean_test_error, "clean-label test error", not_applicable,
                       ConvReluOutputs(), "quality", False)

    return [diag(), lora()] if QUICK else [diag(), sensing(), lora(), conv()]


def variants(setting: Setting) -> dict:
    """name -> (optimizer, knob name or None)."""
    lr, b = setting.lr, dict(batch_size=setting.batch_size)
    half = STEPS // 2
    out = {
        "sgd": (st.optim.sgd(lr, **b) if setting.batch_size else st.optim.gd(lr), None),
        "sam": (st.optim.sam(lr, 0.1, **b), "rho"),
        "asam": (st.optim.asam(lr, 1.0, **b), "asam.rho"),
        "looksam-5": (st.optim.looksam(lr, 0.1, every=5, **b), "rho"),
        "ssam-fisher": (st.optim.ssam(lr, 0.1, mask="fisher", **b), "rho"),
        "ssam-random": (st.optim.ssam(lr, 0.1, mask="random", **b), "rho"),
        "lpf-sgd": (st.optim.lpf_sgd(lr, 0.01, draws=4, **b), "sigma"),
        "rwp": (st.optim.rwp(lr, 0.01, **b), "sigma"),
        "swa": (st.optim.swa(st.optim.sgd(lr, **b) if setting.batch_size else st.optim.gd(lr),
                             start=half), None),
        "wasam": (st.optim.wasam(lr, 0.1, start=half, **b), "rho"),
        "rst": (st.optim.rst(lr, 0.1, switch_prob=0.5, **b), "rho"),
        "ae-sam": (st.optim.ae_sam(lr, 0.1, **b), "rho"),
        "adam": (st.optim.gd(setting.adam_lr, base=st.optim.adam(), **b), None),
        "sam-adam": (st.optim.sam(setting.adam_lr, 0.1, base=st.optim.adam(), **b), "rho"),
        "precond-sam": (st.optim.preconditioned_sam(setting.adam_lr, 0.1, **b), "rho"),
        "functional-sam": (st.optim.functional_sam(lr, 0.1, model=setting.model, **b), "rho"),
        "lets": (st.optim.lets(lr, 0.1, beta=10.0, **b), "rho"),
        "saf": (st.optim.saf(lr, 1.0, model=setting.model, **b), "lam"),
    }
    if setting.matrix_factors:
        out["flat-lora"] = (st.optim.flat_lora(lr, 0.01, **b), "sigma")
    if setting.key == "diagonal_linear":  # the rest of the family (issue 30), on its own ρ grid
        out.update({
            "gsam": (st.optim.gsam(lr, 0.1, alpha=0.1, **b), "rho"),
            "friendly-sam": (st.optim.friendly_sam(lr, 0.1, full_gradient_weight=1.0, decay=0.9, **b), "rho"),
            "momentum-sam": (st.optim.momentum_sam(lr, 0.1, beta=0.9, **b), "rho"),
            "s2-sam": (st.optim.s2_sam(lr, 0.1, **b), "rho"),
            "sampa": (st.optim.sampa(lr, 0.1, auxiliary_weight=0.0, **b), "rho"),
            "lookahead-sam": (st.optim.lookahead_sam(lr, 0.1, **b), "rho"),
            "cr-sam": (st.optim.cr_sam(lr, 0.1, beta=0.01, h=0.01, **b), "rho"),
            "r-sam": (st.optim.r_sam(lr, 0.1, smoothing_std=0.01, **b), "rho"),
            "delta-sam": (st.optim.delta_sam(lr, 0.1, temperature=1.0, **b), "rho"),
            "late-sam": (st.optim.late_phase(st.optim.sam(lr, 0.1, **b), LATE_SWITCH), "rho"),
        })
    if QUICK:
        keep = QUICK_LORA if setting.key == "lora" else [n for n in out if n not in QUICK_SKIP]
        out = {name: out[name] for name in keep}
    return out


SETTINGS = build_settings()
for setting in SETTINGS:
    params = setting.problem.params0
    batch = setting.problem.batch(jax.random.key(0), 0, setting.batch_size or 2)
    st.optim.check_output_model(setting.model, setting.problem, params, batch)

# %% [markdown] tags=["predict"]
# **Predict, then run.** Averaging SAM's iterates (WASAM) is reported to generalize at least as
# well as SAM. On our small problems, tuned on the same grid, will WASAM's test loss be at most
# SAM's? Set `predict_wasam_not_worse`. The table at the end of the lab confirms or contradicts
# your prediction with the measured verdict.

# %% tags=["prediction"]
predict_wasam_not_worse = False  # SOLUTION

# %% [markdown]
# **Exercise 1 (numeric prediction).** LookSAM with `every=5` computes SAM's correction on one
# step in five (two gradient evaluations) and reuses it on the four steps in between (one
# evaluation each). SGD spends one evaluation per step. Over the 3,000 steps of the diagonal
# net, how many times SGD's gradient evaluations does LookSAM-5 spend (`cost_vs_sgd` in the
# table below)? Graded within 1%: the counts are the rules' own, and the schedule is
# deterministic (one step more or less of SAM would move the ratio by 0.03%).

# %% tags=["exercise"]
predicted_looksam_cost = 1.2  # SOLUTION

# %% [markdown]
# ## One sweep per problem

# %%
GRID = {"rho": RHO_GRID, "asam.rho": ASAM_GRID, "sigma": SIGMA_GRID, "lam": LAM_GRID}
SWEEPS = {}
for setting in lab.progress(SETTINGS, "problems"):
    observe = {"quality": of_params_and_problem(setting.quality),
               "loss": of_params_and_problem(evaluation_loss), "balance": of_params(setting.balance)}
    named = variants(setting)
    knobs = {knob for _, knob in named.values() if knob}
    SWEEPS[setting.key] = st.sweep(setting.problem, {k: v[0] for k, v in named.items()},
                                   steps=STEPS, seeds=lab.seeds,
                                   grid={k: v for k, v in GRID.items() if k in knobs},
                                   observe=observe,
                                   stride=max(1, STEPS // RECORDS))


# %% [markdown]
# ## Sharpness at the end
# λ_max and the trace of the Hessian of the evaluation loss at every run's final parameters
# (dense, exact; one compiled, vmapped call per problem, after the sweep).

# %%
HESSIAN_PASS_BYTES = 512 * 1024**2  # memory for the dense Hessians of one vmapped chunk of lanes


@functools.partial(jax.jit, static_argnames="chunk")
def _sharpness_of_lanes(problem, flat_params, chunk):
    # Chunks of lanes one after the other (lax.map): a full-size sweep has thousands of lanes and
    # their dense Hessians all at once would need tens of GB.
    return jax.lax.map(lambda p: (lambda_max(p, problem), hessian_trace(p, problem)), flat_params,
                       batch_size=chunk)


def hessian_measures(problem, sweeps):
    """λ_max and trace at every lane of every variant's final parameters (leading grid axes).

    All variants of one problem go through one compiled call (their lanes joined), so each
    problem compiles its Hessian program once whatever the variants' grid sizes.
    """
    own_rank = jax.tree_util.tree_leaves(problem.params0)[0].ndim
    leads, flats = {}, []
    for name, traj in sweeps.items():
        first = jax.tree_util.tree_leaves(traj.params)[0]
        leads[name] = first.shape[:first.ndim - own_rank]
        flats.append(jax.tree_util.tree_map(lambda x, lead=leads[name]: x.reshape((-1,) + x.shape[len(lead):]),
                                            traj.params))
    joined = jax.tree_util.tree_map(lambda *xs: jnp.concatenate(xs), *flats)
    lanes = jax.tree_util.tree_leaves(joined)[0].shape[0]
    size = sum(x.size for x in jax.tree_util.tree_leaves(problem.params0))
    chunk = int(min(lanes, max(1, HESSIAN_PASS_BYTES // (6 * 8 * size * size))))  # ~6 n×n arrays a lane
    top, trace = (np.asarray(a) for a in _sharpness_of_lanes(problem, joined, chunk))
    out, start = {}, 0
    for name, lead in leads.items():
        count = int(np.prod(lead))
        out[name] = (top[start:start + count].reshape(lead), trace[start:start + count].reshape(lead))
        start += count
    return out


SHARPNESS = {}
for setting in SETTINGS:
    for name, measures in hessian_measures(setting.problem, SWEEPS[setting.key]).items():
        SHARPNESS[setting.key, name] = measures


# %% [markdown]
# ## Tuning: each variant at its best knob value
# Selection uses the median over seeds. On the regression problems: the smallest final
# quality (test loss / recovery error). On the LoRA-like problem, where every minimizer has the
# same loss: the smallest final λ_max among the knob values whose median excess loss is at most
# `CONVERGED` times SGD's (if none, the smallest excess loss).

# %%
def knob_values(result, knob):
    """Values along the knob axis (other knob axes are broadcast copies: take index 0)."""
    grid_axes = [axis for axis in result.axes if axis != "seed"]

    def along(array):
        array = np.asarray(array)
        index = [slice(None) if axis == knob else 0 for axis in grid_axes]
        picked = array[tuple(index)]
        return picked if knob else picked[None]
    return along


def summarize(setting, result):
    rows = {}
    reference = None
    for name, (optimizer, knob) in variants(setting).items():
        traj = result[name]
        pick = knob_values(result, knob)
        finals = {key: pick(traj.final(key)) for key in ("quality", "loss", "balance")}
        top, trace = SHARPNESS[setting.key, name]
        finals.update(lambda_max=pick(top), trace=pick(trace))
        evals = pick(traj.grad_evals)
        diverged = pick(traj.diverged)
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN medians: n/a or diverged
            median = {k: np.nanmedian(np.where(diverged, np.nan,
                                               np.abs(v) if k == "balance" else v), axis=-1)
                      for k, v in finals.items()}
        if name == "sgd":
            reference = float(median["quality"][0])
        converged = median["quality"] <= CONVERGED * reference
        if np.all(np.isnan(median["quality"])):
            best = 0
        elif setting.select == "flatness" and np.any(converged):
            best = int(np.nanargmin(np.where(converged, median["lambda_max"], np.inf)))
        else:
            best = int(np.nanargmin(median["quality"]))
        values = GRID[knob] if knob else [None]
        rows[name] = {
            "knob": knob, "value": values[best],
            "quality": float(median["quality"][best]),
            "quality_by_value": [float(q) for q in median["quality"]],
            "quality_seeds": [float(q) for q in finals["quality"][best]],
            "trace_seeds": [float(q) for q in finals["trace"][best]],
            "loss": float(median["loss"][best]),
            "lambda_max": float(median["lambda_max"][best]),
            "trace": float(median["trace"][best]),
            "balance": float(median["balance"][best]),
            "grad_evals": float(np.median(evals[best])),
            "diverged_runs": int(np.sum(diverged)),
        }
    sgd_cost = rows["sgd"]["grad_evals"]
    for row in rows.values():
        row["cost_vs_sgd"] = row["grad_evals"] / sgd_cost
    return rows


SUMMARY = {s.key: summarize(s, SWEEPS[s.key]) for s in SETTINGS}

# %% tags=["exercise-check"]
st.labkit.check_number("predicted_looksam_cost", predicted_looksam_cost,
                       SUMMARY["diagonal_linear"]["looksam-5"]["cost_vs_sgd"], rtol=0.01)


# %%
def table(setting_key):
    rows = SUMMARY[setting_key]
    setting = next(s for s in SETTINGS if s.key == setting_key)
    lines = [f"{setting.title}: {setting.quality_label} (median of {lab.seeds} seeds)",
             f"{'variant':<15} {'knob':>17} {'quality':>10} {'λ_max':>9} {'trace':>9} "
             f"{'|balance|':>9} {'grads':>7} {'x SGD':>6}"]
    for name, row in rows.items():
        knob = "-" if row["knob"] is None else f"{row['knob']}={row['value']:g}"
        balance = "n/a" if np.isnan(row["balance"]) else f"{row['balance']:.3g}"
        lines.append(f"{name:<15} {knob:>17} {row['quality']:>10.3g} {row['lambda_max']:>9.3g} "
                     f"{row['trace']:>9.3g} {balance:>9} {row['grad_evals']:>7.0f} "
                     f"{row['cost_vs_sgd']:>6.2f}")
    return "\n".join(lines)


for setting in SETTINGS:
    print(table(setting.key), end="\n\n")

# %% [markdown]
# ## Quality against cost
# Top row: the problem's quality measure; bottom row: the Hessian trace at the end (λ_max is
# in the table). Each marker is one variant at its tuned knob value (median over seeds); the x
# axis is the number of gradient evaluations the run spent. Lower-left is better.

# %%
MARKERS = "os^vD<>pPX*hH8d+xo"
VARIANT_NAMES = list(next(iter(SUMMARY.values())))
VARIANT_NAMES += [n for rows in SUMMARY.values() for n in rows if n not in VARIANT_NAMES]
# colour-blind-safe colours other than SAM's, each also with its own marker
PALETTE = [c for c in st.plotting.PALETTE + ("#882255", "#44AA99", "#999933", "#332288", "#888888")
           if c not in (st.plotting.color_for("sam"), st.plotting.color_for("gd"))]


def style_of(name):
    """The same colour and marker for a variant in every panel (SGD black, SAM red)."""
    index = VARIANT_NAMES.index(name)
    color = {"sgd": st.plotting.color_for("gd"), "sam": st.plotting.color_for("sam")}.get(
        name, PALETTE[index % len(PALETTE)])
    return color, MARKERS[index % len(MARKERS)]


fig, axes = st.plotting.figure(2, len(SETTINGS), width=2.9, height=2.5)
handles = {}
for column, setting in enumerate(SETTINGS):
    rows = SUMMARY[setting.key]
    for name, row in rows.items():
        color, marker = style_of(name)
        for axis_row, key in enumerate(("quality", "trace")):
            handle = axes[axis_row, column].scatter(
                row["grad_evals"], max(row[key], 1e-12), color=color, marker=marker, s=40,
                edgecolors="black" if name in ("sgd", "sam") else "face", zorder=3)
            handles.setdefault(name, handle)
    axes[0, column].set_title(textwrap.fill(setting.title, 24))
    axes[0, column].set_ylabel(setting.quality_label + " (tuned)")
    axes[1, column].set_ylabel("Hessian trace at the end")
    for axis_row in range(2):
        axes[axis_row, column].set_yscale("log")
        axes[axis_row, column].set_xlabel("gradient evaluations per run")
fig.legend([handles[n] for n in VARIANT_NAMES if n in handles],
           [n for n in VARIANT_NAMES if n in handles], loc="outside lower center", ncol=6,
           title="variant (knob values: table)")
pairs = [(row, rows["sam"]) for rows in SUMMARY.values() for name, row in rows.items()
         if name not in ("sam", "sgd") and "sam" in rows]
matching = sum(row["quality"] <= 1.1 * sam["quality"] and row["grad_evals"] < sam["grad_evals"]
               for row, sam in pairs)
st.plotting.finding(fig, f"{matching} of {len(pairs)} (variant, problem) pairs reach SAM's tuned "
                    "quality (within 10%) at a lower gradient cost; lower-left is better")
lab.savefig(fig, "quality_vs_cost", slide=True, claims=[
    "liu2022.looksam.matches_sam_cheaper", "zhao2022.rst.matches_sam_cheaper",
    "jiang2023.ae_sam.matches_sam_cheaper", "du2022.saf.matches_sam_at_sgd_cost",
    "mi2022.ssam.half_mask_keeps_sam", "bisla2022.lpf_sgd.flatter_and_better_than_sgd",
    "kaddour2022.wasam.not_worse_than_sam", "kwon2021.asam.generalizes_better_than_sam",
    "li2024rwp.rwp.improves_on_sgd", "li2024flatlora.flat_lora.flatter_than_lora",
    "singh2025.precond_sam.beats_sam_with_adam", "wang2024lets.lets.improves_on_sam"])

# %% [markdown]
# ## Learning curves of the efficient variants (diagonal linear net)
# Test loss against gradient evaluations spent (not steps): a method that reaches SAM's test
# loss with fewer evaluations is to the left of SAM's curve.

# %%
fig, axes = st.plotting.figure(1, 1, width=4.4, height=3.0)
diag_setting = SETTINGS[0]
diag_result = SWEEPS[diag_setting.key]
steps_recorded = diag_result["sgd"].steps
for index, name in enumerate(("sgd", "sam", "looksam-5", "rst", "ae-sam", "ssam-fisher",
                              "lpf-sgd", "saf")):
    row = SUMMARY[diag_setting.key][name]
    traj = diag_result[name]
    pick = knob_values(diag_result, row["knob"])
    curves = np.asarray(pick(traj.observed["quality"]))
    values = GRID[row["knob"]] if row["knob"] else [None]
    curves = curves[values.index(row["value"])]
    spent = steps_recorded * row["grad_evals"] / STEPS  # mean cost per step x steps
    st.plotting.band(axes[0, 0], spent, curves, label=name, color=style_of(name)[0], log=True)
axes[0, 0].set_xlabel("gradient evaluations spent (mean cost per step × steps)")
axes[0, 0].set_ylabel("test loss")
axes[0, 0].set_title("diagonal linear net (median, 10-90% over seeds)")
st.plotting.legend_right(axes[0, 0])
final_loss = {name: float(SUMMARY[diag_setting.key][name]["quality"]) for name in ("sgd", "sam")}
st.plotting.finding(fig, f"Test loss against gradient evaluations spent: SAM ends at "
                    f"{final_loss['sam']:.2g}, SGD at {final_loss['sgd']:.2g}; left of SAM is cheaper")
lab.savefig(fig, "learning_curves", claims=["liu2022.looksam.matches_sam_cheaper",
                                            "zhao2022.rst.matches_sam_cheaper",
                                            "du2022.saf.matches_sam_at_sgd_cost"])

# %% [markdown]
# **Exercise 2 (coding).** ASAM (Kwon et al. 2021) takes its ascent step in a rescaled geometry:
# with T = diag(|w| + η) it maximizes gᵀε over the ellipsoid ‖T⁻¹ε‖ ≤ ρ. Solve that small
# problem (substitute ε = T v) and write the perturbation ε on plain arrays. It must match
# `st.optim.adaptive_ascent_direction` to 1e-12 on random weights and gradients (the check
# draws them, some weights zero).

# %% tags=["exercise"]
def my_asam_perturbation(w, g, rho, eta):
    """ASAM's perturbation ε at weights w with gradient g (arrays)."""
    # BEGIN SOLUTION
    scale = jnp.abs(w) + eta
    return rho * scale ** 2 * g / jnp.linalg.norm(scale * g)
    # END SOLUTION


# %% tags=["exercise-check"]
asam_cases = []
for case in range(3):
    w_case, g_case = jax.random.normal(jax.random.key(case), (2, 5))
    asam_cases.append((w_case.at[0].set(0.0), g_case, 0.05 * (case + 1), 0.01 * case))
st.labkit.check_function("my_asam_perturbation", my_asam_perturbation,
                         st.optim.adaptive_ascent_direction, asam_cases, atol=1e-12)

# %% [markdown]
# ## ASAM's invariance, measured
# With η = 0 the ASAM ascent at a rescaled point (x, y) → (Ax, A⁻¹y) (the loss f(xᵀy) is
# unchanged) is A times the ascent at the original point (Kwon et al. 2021). We measure the
# largest relative violation over random instances, for ASAM (η = 0 and η = 0.01) and SAM.

# %%
def rescaling_violation(direction, instances=200, seed=0):
    """max over random instances of ‖ε(Ax, A⁻¹y) − (Aε_x, A⁻¹ε_y)‖ / ‖(Aε_x, A⁻¹ε_y)‖."""
    rng = np.random.default_rng(seed)
    xs = jnp.asarray(rng.uniform(0.2, 2, (instances, 3)))
    ys = jnp.asarray(-rng.uniform(0.2, 2, (instances, 3)))
    cs = jnp.asarray(rng.uniform(0.25, 4, (instances, 3)))
    loss = lambda p: jnp.square(jnp.dot(p["x"], p["y"]) - 0.5)

    def one(x, y, c):
        params, moved = {"x": x, "y": y}, {"x": c * x, "y": y / c}
        eps = direction(params, jax.grad(loss)(params))
        eps_moved = direction(moved, jax.grad(loss)(moved))
        expected = jnp.concatenate([c * eps["x"], eps["y"] / c])
        got = jnp.concatenate([eps_moved["x"], eps_moved["y"]])
        return jnp.linalg.norm(got - expected) / jnp.linalg.norm(expected)

    return float(jnp.max(jax.jit(jax.vmap(one))(xs, ys, cs)))


ascent = st.optim.adaptive_ascent_direction
INVARIANCE = {
    "asam_eta0": rescaling_violation(lambda p, g: ascent(p, g, 0.1, 0.0)),
    "asam_eta001": rescaling_violation(lambda p, g: ascent(p, g, 0.1, 0.01)),
    "sam": rescaling_violation(lambda p, g: st.optim.ascent_direction(g, 0.1)),
}
print({k: f"{v:.3g}" for k, v in INVARIANCE.items()})

# %% [markdown]
# ## The rest of the family: what each paper promises, checked exactly
# GSAM's correction is orthogonal to the perturbed gradient (so the perturbed loss does not move
# to first order); SAMPa's two gradients are independent (batched = serial, one gradient deep);
# CR-SAM's finite differences give the Hessian-trace gradient; μP²'s layerwise radii keep every
# layer perturbed as the width grows, where global SAM perturbs only the last layer; Frob-SAM
# drifts along a valley of minima towards the one with the smallest Hessian; late-phase SAM stays
# in the SGD solution's valley, and leaves SGD's minimum at the rate its linearization predicts. (`sharp_theory/studies/sam_family_more.py`; cards:
# `papers/sam-family-rest.md`.)

# %%
from sharp_theory.studies import sam_family_more as more  # noqa: E402

diag_problem = SETTINGS[0].problem
late_row = SUMMARY["diagonal_linear"]["late-sam"]
pick_late = knob_values(SWEEPS["diagonal_linear"], "rho")
late_index = GRID["rho"].index(late_row["value"])
late_end = jax.tree_util.tree_map(lambda x: np.asarray(pick_late(x))[late_index, 0],
                                  SWEEPS["diagonal_linear"]["late-sam"].params)
pick_sgd = knob_values(SWEEPS["diagonal_linear"], None)
sgd_end = jax.tree_util.tree_map(lambda x: np.asarray(pick_sgd(x))[0, 0],
                                 SWEEPS["diagonal_linear"]["sgd"].params)
start_loss = float(diag_problem.evaluation_loss(diag_problem.params0))
MORE = {
    "gsam": more.gsam_first_order_violation(diag_problem),
    "sampa": more.sampa_parallel_violation(diag_problem),
    "cr_sam": more.cr_sam_trace_gradient_error(diag_problem),
    "mup2": more.mup2_layer_balance(),
    "universal": more.universal_class_descent(),
    "late_escape": more.late_phase_escape(
        diag_problem, sgd_end, lambda p: diag_problem.examples["x"] @ (p["u"] * p["v"]) - diag_problem.examples["y"],
        lr=SETTINGS[0].lr, batch_size=SETTINGS[0].batch_size, lab_rho=late_row["value"]),
    "late_phase": {"switch_step": LATE_SWITCH, "start_loss": start_loss,
                   "barrier_over_start_loss": more.loss_barrier(diag_problem.evaluation_loss, sgd_end,
                                                                late_end) / start_loss},
}
print({key: value for key, value in MORE.items() if key not in ("universal", "late_escape")})
print({key: value for key, value in MORE["late_escape"].items() if key != "distance_curve"})
print({name: run for name, run in MORE["universal"].items()})

# %% [markdown]
# ## What the numbers say, variant by variant
# The paragraphs below describe the full run (`sharp-theory reproduce sam-family`: 3 seeds,
# 3000 steps, ρ ∈ {0.02, 0.05, 0.1, 0.2, 0.4}); the quick run keeps the diagonal net and a
# 2-layer LoRA-like problem with smaller grids, and its numbers differ. Verdicts and the
# reasoning behind them: `papers/sam-family-*.md`.
#
# **SGD and SAM (the reference points).** On the diagonal net SAM's tuned test loss is 1.0e-3
# against SGD's 0.098, at twice the gradient evaluations; on matrix sensing 0.038 vs 0.080; on the
# conv ReLU net it removes the noise memorization entirely (clean test error 0.000 vs 0.090).
# On the LoRA-like problem SAM ends flatter (λ_max 2.08 vs 2.81) and more balanced.
#
# **ASAM (Kwon et al. 2021).** The invariance holds exactly: with η = 0 the rescaling violation
# is 5e-16, with η = 0.01 it is 0.036 and SAM's is 1.1. As an optimizer it does not carry SAM's
# sparsity bias (diagonal net 0.168, worse than SGD): it perturbs each coordinate in proportion
# to |w| + η, so the near-zero coordinates that SAM's bias keeps at zero are hardly touched. The
# paper's "ASAM generalizes better than SAM" fails here.
#
# **LookSAM (Liu et al. 2022).** Matches SAM on the diagonal net at 60% of its cost (6.8e-4 vs
# 1.0e-3) and on matrix sensing (0.033 vs 0.038), as claimed; on the conv ReLU net it keeps part
# of the effect (0.038). Its reused step has size α‖g‖ whatever ρ is, so on the noisy LoRA-like
# problem it never settles (excess loss 0.15 vs SGD's 0.011 at every ρ).
#
# **SSAM (Mi et al. 2022).** A 50% mask keeps part of SAM's effect (diagonal net 8.8e-3 with the
# Fisher mask, 2.2e-3 with a random one): the claim "half the perturbation keeps SAM's
# generalization" fails here, and the Fisher mask is no better than a random one. Its saving
# needs sparse back-propagation, which a dense simulator cannot show.
#
# **LPF-SGD and RWP (Bisla et al. 2022; Li et al. 2024).** On factorized models Gaussian
# smoothing adds σ²‖w‖²-like terms: a balancing weight decay. It shrinks the effective
# initialization of the diagonal net (test loss 5.4e-3 and 9.0e-3 vs SGD's 0.098, trace 2.75 vs
# 5.22) at 4 and 2 gradients per step; SAM does better at 2. No gain on the conv ReLU net.
#
# **SWA and WASAM (Izmailov et al. 2018; Kaddour et al. 2022).** Averaging helps where there is
# noise to average: nothing on the interpolating diagonal net (SWA 0.098 = SGD), an 8x lower
# excess loss on the noisy LoRA-like problem (0.0014 vs 0.0112). WASAM is slightly worse than SAM
# on the diagonal net (2.0e-3 vs 1.0e-3) and flatter than SAM on LoRA (λ_max 1.76 vs 2.08).
#
# **RST and AE-SAM (Zhao et al. 2022; Jiang et al. 2023).** SAM on about half of the steps, at
# 1.5 and 1.3 gradients per step. They keep part of SAM's effect, need ρ at the top of the grid
# to do so, and end 2.8x (RST) and 5.9x (AE-SAM) above SAM's test loss on the diagonal net and
# at 0.07 on the conv ReLU net: the bias SAM accumulates over every step is not recovered by
# plain steps in between.
#
# **Flat-LoRA (Li et al. 2024).** One gradient per step at a random perturbation of the merged
# weight. On our LoRA-like problem the loss is least squares in the merged weight, so the
# perturbation averages out exactly (E ∇L(W + ε) = ∇L(W)) and λ_max ends where plain training's
# does (2.80 vs 2.815). The paper's mechanism needs a loss that is not quadratic in W.
#
# **Preconditioned SAM and Functional-SAM (Singh et al. 2025).** Preconditioning the perturbation
# with Adam's second moments beats SAM with Adam on the diagonal net (3.8e-5 vs 1.4e-4) and on
# matrix sensing (0.034 vs 0.049). Functional-SAM's claim is about language models, which our
# problems cannot speak to; what they do show exactly: with a squared loss the functional path is
# weighted by the residuals, which vanish at interpolation, so on the diagonal net Functional-SAM
# keeps only part of SAM's effect (4.7e-3), while with the logistic loss of the conv ReLU net it
# matches SAM (0.000).
#
# **LETS (Wang et al. 2024).** The learned radius makes the result nearly independent of the
# initial ρ (max/min test loss over the grid 1.09, SAM's 84), but does not reach tuned SAM
# (3.7e-3) and costs 3.5 gradients per step. On the noisy LoRA-like problem the held-out gap is
# mostly noise and the learned radius runs away (13 of 15 runs diverge).
#
# **The rest of the family (issue 30; `papers/sam-family-rest.md`).** The mechanisms hold
# exactly: GSAM's correction is orthogonal to the perturbed gradient (1e-14), SAMPa's pair of
# gradients is the serial pair (7e-17) at a depth of one, CR-SAM's finite difference is the
# gradient of vᵀHv (4e-11 to 5e-11), and μP²'s radii keep both layers of a μP network perturbed at every
# width while global SAM's first-layer effect falls like n⁻². On the diagonal net GSAM, R-SAM,
# Delta-SAM and CR-SAM keep SAM's effect (0.47-1.2x its test loss) but are not separable from it
# over three seeds; Friendly SAM and Lookahead-SAM keep most of it (2x). The history-based
# rules lose it: S2-SAM and SAMPa take their ascent from another mini-batch's gradient and end
# at SGD's test loss, Momentum-SAM keeps part (0.045). Late-phase SAM (the last 10%) stays in
# SGD's valley and reaches SAM's λ_max, but not SAM's sparse solution (15x its test loss).
# Zhou et al.'s phase (i), the escape from SGD's minimum, is a linear instability: the minimum
# is stable for SGD and for SAM at the lab's radii, and turns unstable (in mean square) for
# unnormalized SAM above ρ_c = 1.40; at 2ρ_c runs started 1e-12 from it leave at 0.032 per step,
# 5% from the top Lyapunov exponent of the linearized maps, while the mean-square rate of
# linear-stability analysis (0.32) overstates what runs show tenfold.
#
# **SAF (Du et al. 2022).** With a squared output distance to an EMA of the weights, the
# consistency penalty only damps the trajectory: the test loss stays at SGD's for every λ. The
# paper's mechanism (KL between softmax outputs) cannot be reproduced with squared losses.

# %%
MEASURED = {
    "summary": SUMMARY,
    "asam_rescaling_violation": INVARIANCE,
    "more": MORE,
    "steps": STEPS, "seeds": lab.seeds, "quick": QUICK,
}
lab.save_arrays(**{f"{s.key}__{name}__quality": np.asarray(SWEEPS[s.key][name].final("quality"))
                   for s in SETTINGS for name in SUMMARY[s.key]})
results = lab.finish(MEASURED)

# %% [markdown]
# **Exercise 3 (open question).** Several variants match SAM's quality at a lower gradient cost
# on these problems. Name two choices this lab makes in scoring them (the tuning grid, what is
# compared at equal *steps* or equal *cost*, the median over seeds, the problems themselves) that
# could change the ranking on a real network, say for each in which direction, and describe the
# measurement you would add to find out.

# %% tags=["teacher-note"]
# Teacher's note (not on the students' site): good answers point at (1) tuning: each variant is
# tuned on a 2-point (quick) or 4-5-point grid of its own knob; a variant whose best value lies
# at the grid's edge is under-tuned (look at `quality_by_value`), so its ranking is a lower
# bound; (2) equal steps: every variant runs the same number of steps, so cheap variants are not
# given the budget they save; at equal gradient evaluations SGD (and LookSAM, RST) would run
# longer and could close or reverse the gap — the learning-curve figure against evaluations
# shows part of this; (3) seeds: medians over 2 (quick) or a few seeds hide the spread; a 10%
# "match" threshold can be inside seed noise (compare `quality_seeds`); (4) the problems have
# known answers and tiny sizes: LookSAM's reuse of the correction relies on the gradient
# changing slowly between SAM steps, which holds on small smooth problems and is the question on
# a large network with mini-batch noise. A measurement: rerun at equal evaluations (steps scaled
# by 1/cost_vs_sgd), widen the grid until the best value is interior, and report the spread.

# %% [markdown]
# **Your predictions against the measurements.**

# %%
st.labkit.compare_predictions(results, {
    "kaddour2022.wasam.not_worse_than_sam": predict_wasam_not_worse,
})
