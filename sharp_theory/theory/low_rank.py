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
import warnings

import numpy as np

from ..errors import ConfigError, check_int


def symmetric_sqrt(matrix) -> np.ndarray:
    """The positive semidefinite square root of a symmetric PSD matrix (by eigendecomposition).

    The input is symmetrized first and negative eigenvalues (round-off) are clipped to 0.

    Args:
      matrix: a symmetric positive semidefinite (d, d) array.

    Returns:
      A (d, d) float64 numpy array S with ``S @ S ≈ matrix``.
    """
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
      D1: the (invertible) left weight square root, (d1, d1) (default identity).
      D2: the (invertible) right weight square root, (d2, d2) (default identity).
      rank_tolerance: relative cut-off below which singular values count as zero.

    Returns:
      ``(L, R)`` as numpy arrays; ``L @ R.T`` equals X up to the discarded singular values.

    References:
      Ding, Drusvyatskiy, Fazel, Harchaoui 2022, Sec. 3 (the flattest factorization
      of a product).
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


def _solve_nuclear(rows, measured, d1, d2, solver):
    """``min ‖Y‖_*`` s.t. ``rows @ vec(Y) = measured`` (row-major vec); returns (Y, value, status)."""
    import cvxpy as cp

    variable = cp.Variable((d1, d2))
    # cvxpy's vec is column-major; vec(Yᵀ) column-major = vec(Y) row-major, as rows expects.
    program = cp.Problem(cp.Minimize(cp.normNuc(variable)),
                         [rows @ cp.vec(variable.T, order="F") == measured])
    # Clarabel (interior point) solves these SDPs to ~1e-8; cvxpy's default pick for them can be
    # SCS at its default eps, whose ~1e-3 errors would read as recovery failures. SCS at a tight
    # eps is the fallback when Clarabel stops on numerical trouble.
    attempts = [(solver, {})] if solver else [("CLARABEL", {}),
                                              ("SCS", {"eps": 1e-10, "max_iters": 200_000})]
    status = "not solved"
    for name, options in attempts:
        try:
            with warnings.catch_warnings():  # "may be inaccurate" is reported through status
                warnings.simplefilter("ignore", UserWarning)
                program.solve(solver=name, **options)
        except cp.error.SolverError as error:
            status = f"solver error ({name}): {error}"
            continue
        status = str(program.status)
        if variable.value is not None and status in ("optimal", "optimal_inaccurate"):
            return np.asarray(variable.value), float(program.value), status
    return None, float("nan"), status


def weighted_nuclear_norm_minimization(sensing, measured, D1=None, D2=None, *,
                                       solver: str | None = None) -> ConvexSolution:
    """``min ‖D1 X D2‖_*`` subject to ``⟨A_i, X⟩ = b_i`` for all i (cvxpy with Clarabel).

    Solved in the variable ``Y = D1 X D2``: ``⟨A_i, X⟩ = ⟨D1⁻¹ A_i D2⁻¹, Y⟩`` for symmetric D's,
    so the program is plain nuclear-norm minimization with the reweighted operator, and
    ``X = D1⁻¹ Y D2⁻¹``. With D1 = D2 = I this is nuclear-norm minimization (Recht, Fazel,
    Parrilo 2010).

    Args:
      sensing: A (m, d1, d2).
      measured: b (m,).
      D1: the symmetric positive definite left weight, (d1, d1) (default identity).
      D2: the symmetric positive definite right weight, (d2, d2) (default identity).
      solver: a cvxpy solver name (default "CLARABEL", then SCS at eps 1e-10 if it fails).

    Returns:
      A :class:`ConvexSolution` (an infeasible program, e.g. noisy b with m > d1 d2, is reported
      through ``status``; ``product`` is then NaN). When 𝒜 is injective (m >= d1 d2 and full
      rank) the only feasible point is found by least squares, without the SDP.

    References:
      Recht, Fazel, Parrilo 2010; Ding, Drusvyatskiy, Fazel, Harchaoui 2022,
      Sec. 3 and Thm 3.2.
    """
    flat_rows = _flat_sensing(sensing)
    m, d1, d2 = np.shape(sensing)
    measured = np.asarray(measured, dtype=float)
    if measured.shape != (m,):
        raise ConfigError("b", measured.shape, f"shape ({m},)")
    inverse_1 = np.eye(d1) if D1 is None else np.linalg.inv(np.asarray(D1, dtype=float))
    inverse_2 = np.eye(d2) if D2 is None else np.linalg.inv(np.asarray(D2, dtype=float))
    reweighted = np.einsum("jp,ipq,ql->ijl", inverse_1, np.asarray(sensing, dtype=float), inverse_2)
    rows = reweighted.reshape(m, -1)
    if m >= d1 * d2 and np.linalg.matrix_rank(rows) == d1 * d2:
        # 𝒜 is injective: the constraint has one solution (or none, with noise); no SDP needed.
        weighted = np.linalg.lstsq(rows, measured, rcond=None)[0].reshape(d1, d2)
        value = float(np.sum(np.linalg.svd(weighted, compute_uv=False)))
        fits = np.linalg.norm(rows @ weighted.ravel() - measured) <= 1e-8 * max(np.linalg.norm(measured), 1.0)
        status = "optimal" if fits else "infeasible"
        if not fits:
            weighted = None
    else:
        weighted, value, status = _solve_nuclear(rows, measured, d1, d2, solver)
    if weighted is None:
        return ConvexSolution(np.full((d1, d2), np.nan), float("nan"), status, float("nan"))
    product = inverse_1 @ weighted @ inverse_2
    residual = np.linalg.norm(flat_rows @ product.ravel() - measured) / max(np.linalg.norm(measured), 1.0)
    return ConvexSolution(product, value, status, float(residual))


def nuclear_norm_minimization(sensing, measured, *, solver: str | None = None) -> ConvexSolution:
    """The baseline ``min ‖X‖_*`` subject to 𝒜(X) = b (cvxpy, as in
    :func:`weighted_nuclear_norm_minimization` with D1 = D2 = I).

    Args:
      sensing: the measurement matrices A, shape (m, d1, d2).
      measured: the measurements b, shape (m,).
      solver: a cvxpy solver name (default "CLARABEL", then SCS at eps 1e-10 if it fails).

    Returns:
      A :class:`ConvexSolution` (status "infeasible" and a NaN product when no X fits).

    References:
      Recht, Fazel, Parrilo 2010 (nuclear-norm minimization).
    """
    return weighted_nuclear_norm_minimization(sensing, measured, solver=solver)


@dataclasses.dataclass(frozen=True)
class FlatSolution:
    """The flattest solution of a matrix-sensing problem.

    Attributes:
      product: X_f = L_f R_fᵀ, the weighted-nuclear-norm minimizer.
      left: the flattest left factor L_f, (d1, k).
      right: the flattest right factor R_f, (d2, k).
      scaled_trace: ``4‖D1 X_f D2‖_*``, the smallest str over the solution set.
      status: the convex solver's status (see :class:`ConvexSolution`).
      residual: the relative constraint residual (see :class:`ConvexSolution`).
    """

    product: np.ndarray
    left: np.ndarray
    right: np.ndarray
    scaled_trace: float
    status: str
    residual: float

    @property
    def solved(self) -> bool:
        return self.status in ("optimal", "optimal_inaccurate")

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

    References:
      Ding, Drusvyatskiy, Fazel, Harchaoui 2022, Sec. 3 and Thm 3.2.
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
    """The flattest scaled Hessian trace with 𝒜 = identity (f = ‖L Rᵀ − M‖²_F): ``4‖M‖_*``.

    Args:
      target: the target matrix M, shape (d1, d2).

    Returns:
      ``4‖M‖_*`` as a Python float.

    References:
      Ding, Drusvyatskiy, Fazel, Harchaoui 2022, Sec. 3 (AM-GM on the balanced factorization);
      papers/ding2024-flat-minima-low-rank.md.
    """
    return 4.0 * float(np.sum(np.linalg.svd(np.asarray(target, dtype=float), compute_uv=False)))


def relative_recovery_error(product, target) -> float:
    """The relative recovery error ``‖X − M‖_F / ‖M‖_F``.

    Args:
      product: the recovered matrix X, shape (d1, d2).
      target: the ground truth M (nonzero), same shape.

    Returns:
      A Python float (0 for exact recovery).
    """
    target = np.asarray(target, dtype=float)
    return float(np.linalg.norm(np.asarray(product) - target) / np.linalg.norm(target))
