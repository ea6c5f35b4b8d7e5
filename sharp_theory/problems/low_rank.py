"""Overparametrized low-rank matrix sensing ``f(L, R) = (1/m)‖𝒜(L Rᵀ) − b‖²``.

References:
  Ding, Drusvyatskiy, Fazel, Harchaoui. Flat minima generalize for low-rank matrix recovery.
  arXiv 2203.03756 (2022, v2 2023): Sec. 2-3 (the factorized problem, the scaled Hessian trace,
  Thm 3.2 exact recovery by flat minima), Sec. 8 (experiments).

Parameters are ``{"x": L, "y": R}`` with ``L`` of shape (d1, k) and ``R`` of shape (d2, k), so the
factor-pair tools of the library (``st.measure.balancedness``, ``st.optim.nbar`` / ``obar``) act
on the pair (L, R) directly: the keys are "x" and "y" rather than "L" and "R" for that reason.

Measurements are a finite data set ``examples = {"A": (m, d1, d2), "b": (m,)}`` and the objective is
the mean over the measurement axis, so mini-batches and m-sharpness mean "a subset of the
measurements". Every built-in operator is *isotropic*, ``E⟨A_i, X⟩² = ‖X‖²_F``:

- ``"identity"``: all m = d1·d2 entries, ``A_i = √(d1 d2) E_jl``, so ``f = ‖L Rᵀ − M‖²_F`` exactly;
- ``"gaussian"``: ``A_i`` with iid N(0, 1) entries;
- ``"bilinear"``: ``A_i = a_i c_iᵀ`` with ``a_i ~ N(0, I_d1)``, ``c_i ~ N(0, I_d2)``;
- ``"completion"``: m distinct entries drawn uniformly, ``A_i = √(d1 d2) E_jl``.

With this scaling the weights ``D1² = (1/(m d2)) Σ A_i A_iᵀ`` and ``D2² = (1/(m d1)) Σ A_iᵀ A_i`` of
the scaled trace are the identity for ``"identity"`` and close to it for the random operators.
"""
from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

from ..errors import ConfigError, check_choice, check_int, check_nonnegative, check_positive
from .base import Problem

OPERATORS = ("identity", "gaussian", "bilinear", "completion")


def _float(value):
    return jnp.asarray(value, dtype=jnp.result_type(float))


def measure_product(sensing, product):
    """``𝒜(X)_i = ⟨A_i, X⟩`` for a stack of sensing matrices (m, d1, d2) and X (d1, d2)."""
    return jnp.einsum("ijl,jl->i", sensing, product)


def _sensing_objective(params, batch, constants):
    # f = mean_i (⟨A_i, L Rᵀ⟩ − b_i)²: the mean over measurements is the paper's (1/m)‖·‖².
    product = params["x"] @ params["y"].T
    residuals = measure_product(batch["A"], product) - batch["b"]
    return jnp.mean(jnp.square(residuals))


def sensing_weights(sensing):
    """The weights ``(D1², D2²)`` of the scaled Hessian trace for a stack of sensing matrices.

    ``D1² = (1/(m d2)) Σ_i A_i A_iᵀ`` (d1 x d1) and ``D2² = (1/(m d1)) Σ_i A_iᵀ A_i`` (d2 x d2), so
    that ``str(L, R) = 2(‖D1 L‖²_F + ‖D2 R‖²_F)`` for the objective ``(1/m)‖𝒜(L Rᵀ) − b‖²``.

    References: Ding et al. 2022, Sec. 3 (the reweighting matrices of the scaled trace).
    """
    sensing = np.asarray(sensing, dtype=float)  # numpy: called once per instance, any m
    m, d1, d2 = sensing.shape
    rows = np.einsum("ijl,ikl->jk", sensing, sensing) / (m * d2)
    cols = np.einsum("ijl,ijk->lk", sensing, sensing) / (m * d1)
    return rows, cols


@dataclasses.dataclass(frozen=True)
class GaussianFactorInit:
    """Random factors ``L, R`` with iid normal entries (hashable, so jit caches are reused).

    ``L`` entries have standard deviation ``init_scale · init_imbalance`` and ``R`` entries
    ``init_scale / init_imbalance`` (both constants of the problem), so the product's scale does
    not depend on the imbalance while ``‖L‖²_F − ‖R‖²_F`` grows with it.
    """

    shape_x: tuple
    shape_y: tuple

    def __call__(self, key, constants):
        key_x, key_y = jax.random.split(key)
        dtype = constants["ground_truth"].dtype
        scale_x = constants["init_scale"] * constants["init_imbalance"]
        scale_y = constants["init_scale"] / constants["init_imbalance"]
        return {"x": scale_x * jax.random.normal(key_x, self.shape_x, dtype=dtype),
                "y": scale_y * jax.random.normal(key_y, self.shape_y, dtype=dtype)}


# Compiled per (initializer, shapes): building many instances of one size draws their factors fast.
_draw_factors = jax.jit(lambda initializer, key, constants: initializer(key, constants),
                        static_argnums=0)


def random_low_rank(d1: int, d2: int, rank: int, rng: np.random.Generator) -> np.ndarray:
    """A random rank-``rank`` matrix ``U Vᵀ`` (Gaussian factors) scaled to unit Frobenius norm."""
    product = rng.standard_normal((d1, rank)) @ rng.standard_normal((d2, rank)).T
    return product / np.linalg.norm(product)


def sensing_operator(operator: str, d1: int, d2: int, measurements: int,
                     rng: np.random.Generator) -> np.ndarray:
    """The stack ``(A_1, ..., A_m)`` of a built-in isotropic operator (see module docstring)."""
    if operator == "gaussian":
        return rng.standard_normal((measurements, d1, d2))
    if operator == "bilinear":
        left = rng.standard_normal((measurements, d1))
        right = rng.standard_normal((measurements, d2))
        return left[:, :, None] * right[:, None, :]
    if operator == "identity":
        entries = np.arange(d1 * d2)
    else:  # completion: distinct entries, uniformly at random
        entries = np.sort(rng.choice(d1 * d2, size=measurements, replace=False))
    sensing = np.zeros((entries.size, d1 * d2))
    sensing[np.arange(entries.size), entries] = np.sqrt(d1 * d2)
    return sensing.reshape(entries.size, d1, d2)


def _check_user_arrays(sensing, measured, ground_truth):
    sensing = np.asarray(sensing, dtype=float)
    if sensing.ndim != 3 or sensing.shape[0] < 1:
        raise ConfigError("A", sensing.shape, "an array of shape (m, d1, d2) with m >= 1")
    if not np.all(np.isfinite(sensing)):
        raise ConfigError("A", "non-finite entries", "finite values")
    if measured is None:
        if ground_truth is None:
            raise ConfigError("b", None, "the measurements b (m,), or a ground_truth to measure")
    else:
        measured = np.asarray(measured, dtype=float)
        if measured.shape != sensing.shape[:1] or not np.all(np.isfinite(measured)):
            raise ConfigError("b", measured.shape, f"finite values of shape ({sensing.shape[0]},)")
    return sensing, measured


def matrix_sensing(d1: int = 10, d2: int | None = None, *, rank: int = 2, k: int | None = None,
                   operator: str = "gaussian", measurements: int | None = None,
                   noise: float = 0.0, init_scale: float = 1e-2, init_imbalance: float = 1.0,
                   seed: int = 0, A=None, b=None, ground_truth=None) -> Problem:
    """Overparametrized matrix sensing ``f(L, R) = (1/m) Σ_i (⟨A_i, L Rᵀ⟩ − b_i)²``.

    The instance (operator, ground truth M, noise, initial factors) is drawn from ``seed``: M is a
    random rank-``rank`` matrix with ‖M‖_F = 1 and ``b = 𝒜(M) + noise · ξ`` with ξ ~ N(0, I_m)
    drawn once (the noise is part of the data, not redrawn per step).

    Args:
      d1: rows of the matrix, in [1, 512].
      d2: columns of the matrix, in [1, 512] (default d1).
      rank: rank r of the ground truth (1 <= r <= min(d1, d2)).
      k: number of factor columns (k >= r; default min(d1, d2), fully overparametrized).
      operator: "identity", "gaussian", "bilinear" or "completion" (see module docstring);
        ignored when ``A`` is given.
      measurements: number m of measurements (default min(d1 d2, 3 r (d1 + d2)); "identity"
        always uses d1 d2; "completion" needs m <= d1 d2).
      noise: standard deviation of the additive measurement noise (>= 0).
      init_scale: the scale of the initial factors (> 0): iid N(0, σ²) entries with
        σ = init_scale · init_imbalance for L and init_scale / init_imbalance for R.
      init_imbalance: the ratio between the two factors' scales (> 0); > 1 starts far from
        balanced (LᵀL ≫ RᵀR).
      seed: integer seed of the instance (numpy Generator for the data, JAX key for the init).
      A: your own sensing operator, shape (m, d1, d2).
      b: your own measurements, shape (m,) (with ``A`` given and ``b=None`` the measurements
        are ``𝒜(ground_truth) + noise · ξ``).
      ground_truth: your own M (d1, d2) (default: the random rank-r matrix; with your own A and
        b and no ground_truth it is unknown and stored as NaN, so recovery errors read NaN); used
        for b when b is not given and by the recovery-error measures.

    Mini-batches of measurements come from the optimizer (``st.optim.sgd(lr, batch_size=...)``).

    Returns:
      A Problem with params ``{"x": L (d1, k), "y": R (d2, k)}``, examples ``{"A", "b"}`` and
      constants ``ground_truth`` (M), ``D1_squared``, ``D2_squared`` (weights of the scaled
      Hessian trace, see :func:`sensing_weights`), ``init_scale``, ``init_imbalance``;
      ``problem.init(key)`` draws fresh random factors.

    Examples:
      >>> import numpy as np
      >>> import sharp_theory as st
      >>> problem = st.problems.matrix_sensing(d1=4, rank=1, operator="identity")
      >>> problem.params0["x"].shape, problem.examples["A"].shape  # k = 4 columns, m = 16
      ((4, 4), (16, 4, 4))
      >>> truth = np.asarray(problem.constants["ground_truth"])
      >>> round(float(np.linalg.norm(truth)), 12), int(np.linalg.matrix_rank(truth))
      (1.0, 1)
      >>> exact = {"x": truth, "y": np.eye(4)}  # L Rᵀ = M fits every measurement
      >>> round(float(problem.loss(exact, problem.examples)), 12)
      0.0

    References: Ding, Drusvyatskiy, Fazel, Harchaoui 2022 (arXiv 2203.03756), Sec. 2 and 8.
    """
    seed = check_int("seed", seed, minimum=0)
    check_nonnegative("noise", noise)
    check_positive("init_scale", init_scale)
    check_positive("init_imbalance", init_imbalance)
    # Separate streams: the same seed gives the same M (and noise) whatever the operator or m.
    truth_rng, operator_rng, noise_rng = (np.random.default_rng([seed, stream]) for stream in range(3))
    if A is not None:
        sensing, measured = _check_user_arrays(A, b, ground_truth)
        m, d1, d2 = sensing.shape
        operator = "user"
    else:
        if b is not None:
            raise ConfigError("b", "given without A", "A and b together (or neither)")
        check_choice("operator", operator, OPERATORS)
        d1 = check_int("d1", d1, minimum=1, maximum=512)
        d2 = d1 if d2 is None else check_int("d2", d2, minimum=1, maximum=512)
        if operator == "identity":
            if measurements not in (None, d1 * d2):
                raise ConfigError("measurements", measurements,
                                  f"None or d1*d2 = {d1 * d2} for the identity operator")
            m = d1 * d2
        elif measurements is None:
            m = min(d1 * d2, 3 * rank * (d1 + d2))
        else:
            limit = d1 * d2 if operator == "completion" else None
            m = check_int("measurements", measurements, minimum=1, maximum=limit)
        measured = None
    rank = check_int("rank", rank, minimum=1, maximum=min(d1, d2))
    k = min(d1, d2) if k is None else check_int("k", k, minimum=rank)
    if ground_truth is not None:
        ground_truth = np.asarray(ground_truth, dtype=float)
        if ground_truth.shape != (d1, d2) or not np.all(np.isfinite(ground_truth)):
            raise ConfigError("ground_truth", ground_truth.shape, f"finite values of shape {(d1, d2)}")
    elif operator == "user" and measured is not None:
        ground_truth = np.full((d1, d2), np.nan)  # unknown: recovery errors read NaN, not a guess
    else:
        ground_truth = random_low_rank(d1, d2, rank, truth_rng)
    if operator != "user":  # every argument is checked: now draw the operator
        sensing = sensing_operator(operator, d1, d2, m, operator_rng)
    if measured is None:
        measured = np.einsum("ijl,jl->i", sensing, ground_truth)
        measured = measured + noise * noise_rng.standard_normal(m)

    initializer = GaussianFactorInit((d1, k), (d2, k))
    rows, cols = sensing_weights(sensing)
    constants = {"ground_truth": _float(ground_truth), "D1_squared": _float(rows),
                 "D2_squared": _float(cols),
                 "init_scale": _float(init_scale), "init_imbalance": _float(init_imbalance)}
    params0 = _draw_factors(initializer, jax.random.fold_in(jax.random.key(seed), 1), constants)
    return Problem(objective=_sensing_objective, params0=params0, constants=constants,
                   examples={"A": _float(sensing), "b": _float(measured)},
                   initializer=initializer, name=f"matrix_sensing_{operator}")


def measurements_of(problem: Problem):
    """The sensing operator and measurements ``(A, b)`` of a matrix-sensing problem (numpy).

    Args:
      problem: a problem built by :func:`matrix_sensing` (examples ``{"A", "b"}``).

    Returns:
      ``(A, b)``: A of shape (m, d1, d2) and b of shape (m,).
    """
    return np.asarray(problem.examples["A"]), np.asarray(problem.examples["b"])
