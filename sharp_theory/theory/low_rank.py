"""Flattest solutions of overparametrized matrix sensing, as convex programs (cvxpy).

On the solution set {(L, R) : 𝒜(L Rᵀ) = b} the scaled Hessian trace is
``str = 2(‖D1 L‖²_F + ‖D2 R‖²_F) >= 4‖D1 L Rᵀ D2‖_*`` (AM-GM on the factorization of D1 X D2), with
equality at the balanced factorization of ``D1 X D2``. Hence the flattest solutions are found by

    X_f = argmin ‖D1 X D2‖_*  subject to  𝒜(X) = b,
    D1 X_f D2 = U Σ Vᵀ,  L_f = D1⁻¹ U √Σ,  R_f = D2⁻¹ V √Σ  (zero-padded to k columns),

with ``str(L_f, R_f) = 4‖D1 X_f D2‖_*``. With 𝒜 = identity, D1 = D2 = I and this is the balanced
factorization ``L = U√Σ, R = V√Σ`` of M with str = 4‖M‖_*.

References:
  Ding, Drusvyatskiy, Fazel, Harchaoui. Flat minima generalize for low-rank matrix recovery.
  arXiv 2203.03756: Sec. 3, Thm 3.2 (flat minima recover the ground truth when the weighted
  nuclear-norm program has it as its unique solution), Thm 3.3 (near norm-minimality and
  balancedness when α1 I ⪯ D_i ⪯ α2 I). Recht, Fazel, Parrilo 2010 (nuclear-norm minimization).
"""
from __future__ import annotations

import dataclasses

import numpy as np

from ..errors import ConfigError, check_int


def symmetric_sqrt(matrix) -> np.ndarray:
    """The positive semidefinite square root of a symmetric PSD matrix (eigendecomposition)."""
    matrix = np.asarray(matrix, dtype=float)
    values, vectors = np.linalg.eigh(0.5 * (matrix + matrix.T))
    return (vectors * np.sqrt(np.clip(values, 0.0, None))) @ vectors.T


def balanced_factorization(product, k: int, D1=None, D2=None, *, rank_tolerance: float = 1e-9):
    """The flattest factorization ``(L, R)`` with k columns of a given product X.

    ``D1 X D2 = U Σ Vᵀ``, ``L = D1⁻¹ U √Σ``, ``R = D2⁻¹ V √Σ``, keeping singular values above
    ``rank_tolerance · σ_max`` and padding with zero columns to k.

    Args:
      product: X (d1, d2).
      k: number of columns (>= the numerical rank of D1 X D2).
      D1, D2: the (invertible) weight square roots (default identity).
      rank_tolerance: relative cut-off below which singular values count as zero.

    Returns:
      ``(L, R)`` as numpy arrays; ``L @ R.T`` equals X up to the discarded singular values.
    """
    product = np.asarray(product, dtype=float)
    d1, d2 = product.shape
    D1 = np.eye(d1) if D1 is None else np.asarray(D1, dtype=float)
    D2 = np.eye(d2) if D2 is None else np.asarray(D2, dtype=float)
    u, s, vt = np.linalg.svd(D1 @ product @ D2)
    keep = int(np.sum(s > rank_tolerance * max(s[0], np.finfo(float).tiny)))
    if keep > k:
        raise ConfigError("k", k, f">= the rank {keep} of the product to factor")
    root = np.sqrt(s[:keep])
    left = np.zeros((d1, k))
    right = np.zeros((d2, k))
    left[:, :keep] = np.linalg.solve(D1, u[:, :keep] * root)
    right[:, :keep] = np.linalg.solve(D2, vt[:keep].T * root)
    return left, right


@dataclasses.dataclass(frozen=True)
class ConvexSolution:
    """A solution of a nuclear-norm program.

    Attributes:
      product: the minimizer X (d1, d2).
      objective: the optimal value (‖D1 X D2‖_* or ‖X‖_*).
      status: the solver's status ("optimal", "optimal_inaccurate", "infeasible", ...).
      residual: ``‖𝒜(X) − b‖ / max(‖b‖, 1)``, how well the constraint holds.
    """

    product: np.ndarray
    objective: float
    status: str
    residual: float

    @property
    def solved(self) -> bool:
        return self.status in ("optimal", "optimal_inaccurate")


def _flat_sensing(sensing):
    sensing = np.asarray(sensing, dtype=float)
    if sensing.ndim != 3:
        raise ConfigError("A", sensing.shape, "an array of shape (m, d1, d2)")
    return sensing.reshape(sensing.shape[0], -1)


def weighted_nuclear_norm_minimization(sensing, measured, D1=None, D2=None, *,
                                       solver: str | None = None) -> ConvexSolution:
    """``min ‖D1 X D2‖_*`` subject to ``⟨A_i, X⟩ = b_i`` for all i (cvxpy, default solver Clarabel).

    With D1 = D2 = I this is nuclear-norm minimization (Recht, Fazel, Parrilo 2010).

    Args:
      sensing: A (m, d1, d2).
      measured: b (m,).
      D1, D2: symmetric weight matrices (default identity).
      solver: a cvxpy solver name (default "CLARABEL").

    Returns:
      A :class:`ConvexSolution` (an infeasible program, e.g. noisy b with m > d1 d2, is reported
      through ``status``; ``product`` is then NaN).
    """
    import cvxpy as cp

    rows = _flat_sensing(sensing)
    _, d1, d2 = np.shape(sensing)
    measured = np.asarray(measured, dtype=float)
    if measured.shape != (rows.shape[0],):
        raise ConfigError("b", measured.shape, f"shape ({rows.shape[0]},)")
    variable = cp.Variable((d1, d2))
    weighted = variable
    if D1 is not None:
        weighted = np.asarray(D1, dtype=float) @ weighted
    if D2 is not None:
        weighted = weighted @ np.asarray(D2, dtype=float)
    # cvxpy's vec is column-major; A_i flattened row-major pairs with vec(Xᵀ) = row-major vec(X).
    constraint = rows @ cp.vec(variable.T, order="F") == measured
    program = cp.Problem(cp.Minimize(cp.normNuc(weighted)), [constraint])
    try:
        # Clarabel (interior point) solves these SDPs to ~1e-8; cvxpy's default pick for them can
        # be SCS at its default eps, whose ~1e-3 errors would read as recovery failures.
        program.solve(solver=solver or "CLARABEL")
    except cp.error.SolverError as error:
        return ConvexSolution(np.full((d1, d2), np.nan), float("nan"), f"solver error: {error}",
                              float("nan"))
    if variable.value is None:
        return ConvexSolution(np.full((d1, d2), np.nan), float("nan"), str(program.status),
                              float("nan"))
    product = np.asarray(variable.value)
    residual = np.linalg.norm(rows @ product.ravel() - measured) / max(np.linalg.norm(measured), 1.0)
    return ConvexSolution(product, float(program.value), str(program.status), float(residual))


def nuclear_norm_minimization(sensing, measured, *, solver: str | None = None) -> ConvexSolution:
    """The baseline ``min ‖X‖_*`` subject to 𝒜(X) = b (Recht, Fazel, Parrilo 2010)."""
    return weighted_nuclear_norm_minimization(sensing, measured, solver=solver)


@dataclasses.dataclass(frozen=True)
class FlatSolution:
    """The flattest solution of a matrix-sensing problem.

    Attributes:
      product: X_f = L_f R_fᵀ, the weighted-nuclear-norm minimizer.
      left, right: the flattest factors (L_f, R_f) with k columns.
      scaled_trace: ``4‖D1 X_f D2‖_*``, the smallest str over the solution set.
      status, residual: from the convex solver (see :class:`ConvexSolution`).
    """

    product: np.ndarray
    left: np.ndarray
    right: np.ndarray
    scaled_trace: float
    status: str
    residual: float

    @property
    def params(self) -> dict:
        """``{"x": L_f, "y": R_f}`` as float64 JAX arrays (ready for the measures)."""
        import jax.numpy as jnp

        return {"x": jnp.asarray(self.left, dtype=jnp.float64),
                "y": jnp.asarray(self.right, dtype=jnp.float64)}


def flattest_solution(problem, *, k: int | None = None, solver: str | None = None) -> FlatSolution:
    """The flattest solution of ``st.problems.matrix_sensing(...)`` (Ding et al. 2022, Thm 3.2).

    Solves ``min ‖D1 X D2‖_* s.t. 𝒜(X) = b`` with D1, D2 the square roots of the problem's
    ``D1_squared``, ``D2_squared`` and factors the minimizer by :func:`balanced_factorization`.

    Args:
      problem: a matrix-sensing Problem (examples ``{"A", "b"}``).
      k: columns of the factors (default: those of ``problem.params0``).
      solver: a cvxpy solver name (default "CLARABEL").

    Returns:
      A :class:`FlatSolution`. If the minimizer has rank > k, the flattest point of the
      factorized problem is not a factorization of it and ConfigError("k", ...) is raised.
    """
    sensing = np.asarray(problem.examples["A"])
    measured = np.asarray(problem.examples["b"])
    k = np.shape(problem.params0["x"])[1] if k is None else check_int("k", k, minimum=1)
    D1 = symmetric_sqrt(problem.constants["D1_squared"])
    D2 = symmetric_sqrt(problem.constants["D2_squared"])
    solution = weighted_nuclear_norm_minimization(sensing, measured, D1, D2, solver=solver)
    if not solution.solved:
        nan = np.full(sensing.shape[1:], np.nan)
        return FlatSolution(nan, np.full((nan.shape[0], k), np.nan),
                            np.full((nan.shape[1], k), np.nan), float("nan"), solution.status,
                            solution.residual)
    # Solver accuracy is ~1e-8 relative: singular values below 1e-6 σ_max are numerical zeros.
    left, right = balanced_factorization(solution.product, k, D1, D2, rank_tolerance=1e-6)
    return FlatSolution(solution.product, left, right, 4.0 * solution.objective,
                        solution.status, solution.residual)


def identity_flattest_scaled_trace(target) -> float:
    """With 𝒜 = identity (f = ‖L Rᵀ − M‖²_F): the flattest str is ``4‖M‖_*`` (THEORY §3, claim 1)."""
    return 4.0 * float(np.sum(np.linalg.svd(np.asarray(target, dtype=float), compute_uv=False)))


def relative_recovery_error(product, target) -> float:
    """``‖X − M‖_F / ‖M‖_F``."""
    target = np.asarray(target, dtype=float)
    return float(np.linalg.norm(np.asarray(product) - target) / np.linalg.norm(target))
