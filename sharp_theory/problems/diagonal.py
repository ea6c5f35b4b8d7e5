"""Diagonal linear networks on sparse noiseless regression.

The model is a linear predictor ``x ↦ xᵀβ`` whose weights are parametrized as a product,
``β = u⊙v`` ("uv", init ``u = a·1, v = 0``) or ``β = u⊙u − v⊙v`` ("uu-vv", init ``u = v = a·1``).
The loss is ``L = ‖Xβ − y‖²/(2n)``, the mean over examples of ``ℓ_k = ½(x_kᵀβ − y_k)²``; the test
loss is the same expression on the test set. Every interpolator has zero training loss; which one
an optimizer finds (the "implicit bias") is set by the initialization scale and the optimizer.

Conventions (our ρ versus the authors' code): our 1-SAM ascent for example k is ``ρ·∇ℓ_k`` with
``ℓ_k = ½(x_kᵀβ − y_k)²``; the authors' code writes the ascent with the un-halved squared residual,
i.e. ``ρ_authors · ∇(x_kᵀβ − y_k)² = 2ρ_authors·∇ℓ_k``. So ``ρ_ours = 2·ρ_authors`` for
unnormalized 1-SAM, and ``ρ_ours = ρ_authors`` for unnormalized n-SAM (both use ∇L). See
:func:`rho_from_authors` (and :func:`sharp_theory.studies.diagonal_nets.authors_optimizer`).

References:
  Andriushchenko, Flammarion. Towards Understanding Sharpness-Aware Minimization. ICML 2022,
  Sec. 4 (diagonal linear networks); data recipe and update rules as in the authors' code
  (tml-epfl/understanding-sam, diagonal_linear_nets/diag_nets.py and diag_nets_sam.ipynb).
  Woodworth et al. Kernel and Rich Regimes in Overparametrized Models. COLT 2020 (the
  ``u⊙u − v⊙v`` model and its hyperbolic-entropy implicit bias).
"""
from __future__ import annotations

import dataclasses

import jax.numpy as jnp
import numpy as np

from ..errors import ConfigError, check_choice, check_int, check_nonnegative, check_positive
from ..observables import all_of_params_and_problem
from .base import Problem

PARAMETRIZATIONS = ("uv", "uu-vv")
AUTHORS_VARIANTS = ("gd", "sgd", "n-sam", "1-sam")


# --- data ---------------------------------------------------------------------------------------

def sparse_regression_data(n: int = 20, n_test: int = 1000, d: int = 30, k: int = 3,
                           seed: int = 0) -> dict:
    """The authors' sparse noiseless regression data, drawn in their order.

    ``X`` (n×d) and ``X_test`` (n_test×d) have iid N(0, 1) entries; ``θ*`` is a standard normal
    vector with all but its first k coordinates set to zero, then made non-negative and scaled to
    unit ℓ2 norm; ``y = Xθ*``, ``y_test = X_test θ*``. The draws use a local
    ``np.random.RandomState(seed)`` in the authors' order (X, X_test, θ*), so ``seed=0``
    reproduces the data of their notebook (which calls ``np.random.seed(0)``) bit-for-bit.

    Args:
      n: the number of training examples.
      n_test: the number of test examples.
      d: the dimension.
      k: the sparsity of the target (1 <= k <= d).
      seed: integer seed of the data.

    Returns:
      dict with float64 arrays ``X, y, X_test, y_test, theta_star``.
    """
    n = check_int("n", n, minimum=1)
    n_test = check_int("n_test", n_test, minimum=1)
    d = check_int("d", d, minimum=1)
    k = check_int("k", k, minimum=1, maximum=d)
    seed = check_int("seed", seed, minimum=0)
    # A local legacy generator (not the global one): the only way to reproduce the authors'
    # stream, which draws with multivariate_normal(0, I) after np.random.seed.
    rng = np.random.RandomState(seed)
    X = rng.multivariate_normal(np.zeros(d), np.eye(d), n)
    X_test = rng.multivariate_normal(np.zeros(d), np.eye(d), n_test)
    theta_star = rng.randn(d)
    theta_star[k:] = 0.0
    theta_star = np.abs(theta_star) / np.linalg.norm(theta_star)
    return {"X": X, "y": X @ theta_star, "X_test": X_test, "y_test": X_test @ theta_star,
            "theta_star": theta_star}


def check_regression_data(X, y, X_test, y_test, dtype=np.float64) -> dict:
    """Validate user-supplied regression arrays (shapes agree, values finite).

    Raises :class:`ConfigError` naming the array. Returns the arrays as ``dtype``.
    """
    arrays = {}
    for name, value in (("X", X), ("y", y), ("X_test", X_test), ("y_test", y_test)):
        if value is None:
            raise ConfigError(name, None, "an array (X, y, X_test and y_test are all required)")
        if np.iscomplexobj(value):
            raise ConfigError(name, f"complex array of dtype {np.asarray(value).dtype}",
                              "a real-valued array (the imaginary part would be lost)")
        try:
            array = np.asarray(value, dtype=float)
        except (TypeError, ValueError):
            raise ConfigError(name, value, "a numeric array") from None
        if not np.all(np.isfinite(array)):
            raise ConfigError(name, f"{int(np.sum(~np.isfinite(array)))} non-finite entries",
                              "finite values")
        arrays[name] = array
    for matrix, vector in (("X", "y"), ("X_test", "y_test")):
        if arrays[matrix].ndim != 2 or 0 in arrays[matrix].shape:
            raise ConfigError(matrix, f"shape {arrays[matrix].shape}", "a non-empty 2-D array "
                              "(examples × features)")
        if arrays[vector].shape != (arrays[matrix].shape[0],):
            raise ConfigError(vector, f"shape {arrays[vector].shape}",
                              f"shape ({arrays[matrix].shape[0]},) to match {matrix}")
    if arrays["X_test"].shape[1] != arrays["X"].shape[1]:
        raise ConfigError("X_test", f"shape {arrays['X_test'].shape}",
                          f"{arrays['X'].shape[1]} features like X")
    return {name: array.astype(dtype) for name, array in arrays.items()}


# --- model --------------------------------------------------------------------------------------

def beta_of(params, parametrization: str = "uv"):
    """The linear predictor: ``u⊙v`` ("uv") or ``u⊙u − v⊙v`` ("uu-vv")."""
    u, v = params["u"], params["v"]
    if parametrization == "uv":
        return u * v
    return u * u - v * v


@dataclasses.dataclass(frozen=True)
class DiagonalLinearObjective:
    """``mean_k ½(x_kᵀβ − y_k)²`` over a batch ``{"x", "y"}`` (hashable: one compile per
    parametrization)."""

    parametrization: str = "uv"

    def beta(self, params):
        return beta_of(params, self.parametrization)

    def __call__(self, params, batch, constants):
        # x_kᵀβ as multiply-and-sum rather than a matrix-vector product: vmapped over sweep
        # lanes (and over 1-SAM's examples) a matvec becomes a batched library dot, while this
        # form fuses with the surrounding elementwise work (the benchmark's sweep: 0.108 s vs
        # 0.14 s on two cores, 0.195 s vs 0.235 s on one; same values to rounding).
        beta = jnp.broadcast_to(self.beta(params), batch["x"].shape)
        residual = jnp.sum(batch["x"] * beta, axis=-1) - batch["y"]
        return 0.5 * jnp.mean(jnp.square(residual))


def initial_params(init_scale, d: int, parametrization: str = "uv", dtype=np.float64) -> dict:
    """``u = a·1, v = 0`` ("uv") or ``u = v = a·1`` ("uu-vv"); both start at β = 0.

    The effective initialization is ``c = a²`` for "uv" and ``c = 4a²`` for "uu-vv"
    (see :func:`sharp_theory.measure.effective_initialization`).
    """
    check_positive("init_scale", init_scale)
    check_choice("parametrization", parametrization, PARAMETRIZATIONS)
    u = np.full(d, float(init_scale), dtype=dtype)
    v = np.zeros(d, dtype=dtype) if parametrization == "uv" else u.copy()
    return {"u": jnp.asarray(u), "v": jnp.asarray(v)}


def diagonal_linear(n: int = 20, n_test: int = 1000, d: int = 30, k: int = 3, seed: int = 0, *,
                    X=None, y=None, X_test=None, y_test=None, parametrization: str = "uv",
                    init_scale: float = 0.1, dtype=np.float64) -> Problem:
    """A diagonal linear network on sparse regression (Andriushchenko & Flammarion 2022, Sec. 4).

    Args:
      n: training examples of :func:`sparse_regression_data` (the paper's 20; ignored when
        ``X`` is given, as are the next four).
      n_test: test examples (the paper's 1000).
      d: the dimension (the paper's 30).
      k: the sparsity of the target, 1 <= k <= d (the paper's 3).
      seed: integer seed of the data.
      X: your own (n, d) training design instead (give all four of X, y, X_test, y_test;
        finite, matching shapes).
      y: your own (n,) training targets.
      X_test: your own (n_test, d) test design.
      y_test: your own (n_test,) test targets.
      parametrization: "uv" (β = u⊙v) or "uu-vv" (β = u⊙u − v⊙v).
      init_scale: a > 0; "uv" starts at u = a·1, v = 0; "uu-vv" at u = v = a·1.
      dtype: float64 (exact checks) or float32. For float32 runs with ``usam``, give the
        optimizer float32 hyperparameters (``dataclasses.replace(opt, hparams={k: v.astype(
        np.float32) ...})``, as ``sharp-theory run diagonal-net`` does): the core's unnormalized
        ascent multiplies by the float64 ρ and would promote the parameters.

    Returns:
      A Problem with params ``{"u", "v"}``, examples ``{"x": X, "y": y}`` (so SGD and m-SAM see
      single examples), constants ``X_test, y_test, theta_star`` (NaN for user data); its
      evaluation loss is the full training loss ``‖Xβ − y‖²/(2n)``. Use :data:`OBSERVABLES`
      for train / test loss, c, ‖β‖₁ along trajectories.

    Examples:
      >>> import jax.numpy as jnp
      >>> import sharp_theory as st
      >>> problem = st.problems.diagonal_linear(n=20, d=30, k=3, seed=0)
      >>> problem.examples["x"].shape, problem.params0["u"].shape
      ((20, 30), (30,))
      >>> int(jnp.sum(problem.constants["theta_star"] != 0))  # a k-sparse ground truth
      3
      >>> c = st.measure.effective_initialization(problem.params0)  # u = 0.1·1, v = 0: c = 0.01
      >>> sorted({round(float(value), 12) for value in c})
      [0.01]

    References: Andriushchenko & Flammarion 2022, Sec. 4; the authors' code for the data recipe.
    """
    check_choice("parametrization", parametrization, PARAMETRIZATIONS)
    check_positive("init_scale", init_scale)
    if dtype not in (np.float64, np.float32, "float64", "float32"):
        raise ConfigError("dtype", dtype, "float64 or float32")
    dtype = np.dtype(dtype).type
    user_data = any(value is not None for value in (X, y, X_test, y_test))
    if user_data:
        data = check_regression_data(X, y, X_test, y_test, dtype)
        theta_star = np.full(data["X"].shape[1], np.nan, dtype=dtype)
    else:
        data = {key: value.astype(dtype) for key, value in
                sparse_regression_data(n, n_test, d, k, seed).items()}
        theta_star = data["theta_star"]
    dimension = data["X"].shape[1]
    return Problem(
        objective=DiagonalLinearObjective(parametrization),
        params0=initial_params(init_scale, dimension, parametrization, dtype),
        constants={"X_test": jnp.asarray(data["X_test"]), "y_test": jnp.asarray(data["y_test"]),
                   "theta_star": jnp.asarray(theta_star)},
        examples={"x": jnp.asarray(data["X"]), "y": jnp.asarray(data["y"])},
        name=f"diagonal_linear[{parametrization}]")


# --- observables (module-level so jit caches are reused) -----------------------------------------

def beta(params, problem):
    """β of a diagonal-linear problem's parameters."""
    return problem.objective.beta(params)


def train_loss(params, problem):
    """``‖Xβ − y‖²/(2n)`` on the training set."""
    return problem.loss(params, problem.examples)


def test_set_loss(params, problem):
    """``‖X_test β − y_test‖²/(2 n_test)``."""
    residual = problem.constants["X_test"] @ beta(params, problem) - problem.constants["y_test"]
    return 0.5 * jnp.mean(jnp.square(residual))


def effective_init(params, problem):
    """Per-coordinate effective initialization c (``u² − v²`` for "uv", ``4u⊙v`` for "uu-vv")."""
    u, v = params["u"], params["v"]
    if problem.objective.parametrization == "uv":
        return u * u - v * v
    return 4.0 * u * v


def l1_norm(params, problem):
    """‖β‖₁."""
    return jnp.sum(jnp.abs(beta(params, problem)))


def distance_to_target(params, problem):
    """‖β − θ*‖₂ (NaN for user data, where θ* is unknown)."""
    return jnp.linalg.norm(beta(params, problem) - problem.constants["theta_star"])


OBSERVABLES = all_of_params_and_problem(
    {"train_loss": train_loss, "test_loss": test_set_loss, "c": effective_init,
     "l1_norm": l1_norm, "distance_to_theta_star": distance_to_target})
"""The diagonal net's observables for ``st.run``/``st.sweep`` (signature ``(params, problem, state)``)."""


# --- the authors' conventions ---------------------------------------------------------------------

def rho_from_authors(rho_authors, variant: str):
    """Our ρ for the authors' ρ (unnormalized SAM in their code).

    Args:
      rho_authors: ρ as written in the authors' code (scalar or array, >= 0).
      variant: "n-sam" (ascent ρ∇L in both: same ρ) or "1-sam" (their per-example ascent uses
        ``∇(x_kᵀβ − y_k)² = 2∇ℓ_k``: ours is 2ρ).

    Returns:
      ρ in our convention (ascent ``ρ·∇ℓ_k`` for 1-SAM, ``ρ·∇L`` for n-SAM).
    """
    check_nonnegative("rho_authors", rho_authors)
    check_choice("variant", variant, ("n-sam", "1-sam"))
    factor = 2.0 if variant == "1-sam" else 1.0
    if np.ndim(rho_authors):
        return factor * np.asarray(rho_authors, dtype=float)
    return factor * float(rho_authors)
