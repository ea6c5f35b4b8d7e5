"""Forgetting in sequential linear regression: closed forms and worst-case bounds.

Two exact settings where "fit task B from task A's solution" is a projection.

**Gaussian tasks (Lin, Ju, Liang, Shroff 2023).** Task i has a ground truth ``w*_i ∈ ℝ^p``,
``n`` examples ``x ~ N(0, I_p)`` and labels ``y = xᵀw*_i + N(0, σ²)``; the learner starts at
``w_0 = 0`` and fits task t to convergence from ``w_{t−1}`` (overparameterized, ``p ≥ n + 2``):
the interpolator closest to ``w_{t−1}``,

    w_t = w_{t−1} + X_tᵀ(X_t X_tᵀ)⁻¹(y_t − X_t w_{t−1}) = (I − P_t) w_{t−1} + P_t w*_t + X_tᵀ(X_t X_tᵀ)⁻¹ z_t,

with ``P_t`` the projection onto the row space of ``X_t`` (a uniformly random n-dimensional
subspace, so ``E P_t = (n/p) I``) and ``E (X_t X_tᵀ)⁻¹ = I/(p − n − 1)`` (inverse Wishart). The
three terms are orthogonal or have a zero-mean cross term, so ``m_t(i) = E‖w_t − w*_i‖²`` obeys

    m_t(i) = (1 − n/p) m_{t−1}(i) + (n/p)‖w*_t − w*_i‖² + σ² n/(p − n − 1),   m_0(i) = ‖w*_i‖²,

and ``E L_i(w_t) = m_t(i) + σ²`` for the test loss ``L_i(w) = E(xᵀw − y_i)² = ‖w − w*_i‖² + σ²``.
Unrolled with ``r = 1 − n/p`` this is the paper's Theorem 1 (there without the σ² of the test
label): ``r^t‖w*_i‖² + Σ_{k≤t}(1 − r) r^{t−k}‖w*_k − w*_i‖² + p σ²(1 − r^t)/(p − n − 1)``.

**Noiseless realizable tasks (Evron, Moroshko, Ward, Srebro, Soudry 2022).** All tasks share a
solution ``w*``; task m's data ``X_m`` has spectral norm ≤ 1 and fitting it from the previous
iterate projects the error ``e = w − w*`` onto the null space ``N_m = ker X_m``. Forgetting after
k tasks is the mean loss over the tasks seen, ``F(k) = (1/k) Σ_{t≤k} ‖X_{τ(t)} w_k − y_{τ(t)}‖²``.
For two tasks seen alternately (1, 2, 1, 2, ...), with principal angles θ_j between ``N_1`` and
``N_2`` (our derivation in their setting): each principal pair spans a plane where the
projections act on lines at angle θ_j, so after k ≥ 1 steps the error's component there has
length ``a_j cos^{k−1}θ_j`` and its distance to the other null space is that times ``sin θ_j``.
For data with orthonormal rows (loss = squared distance to the null space; the worst case of
norm-≤1 data)

    F(k) = ½ Σ_j a_j² cos^{2(k−1)}θ_j sin²θ_j,   a_j = ⟨u_j, e_0⟩ (u_j: principal vectors in N_1),

so ``F(k) ≤ ½‖w*‖² max_c c^{k−1}(1 − c) = ½‖w*‖² (k − 1)^{k−1}/k^k ≤ ‖w*‖²/(2e(k − 1))``, attained
by a single angle with ``cos²θ = (k − 1)/k``. For T tasks in cyclic order, Evron et al. bound the
forgetting by ``T² min(1/√k, d/k)`` (‖w*‖ ≤ 1, ‖X_m‖ ≤ 1; abstract and Sec. 5).

**Random task orders.** Evron et al. (2022) also bound the expected loss under a uniformly
random order with replacement by ``O((d − r̄)/k)`` (d the dimension, r̄ the tasks' mean rank),
lifting the cyclic bound's T². We could not verify that bound's constant (the follow-ups we
found restate it with constants omitted), so we check the random-order bounds whose constants
are stated: for the normalized average loss over all T tasks

    L(w) = (1/T) Σ_m ‖X_m w − y_m‖² / (‖w*‖² R²),   R = max_m ‖X_m‖,

Attia, Schliserman, Sherman, Koren (2025) prove ``E L(w_k) ≤ 13/√k`` for random orders with or
without replacement, and Evron, Levinstein, Schliserman, Sherman, Koren, Soudry, Srebro (2025)
prove ``E L(w_k) ≤ 2(d − r)/k`` for a single pass in random order without replacement over tasks
of rank r (both as stated by Tsipory et al. 2025, Sec. 5 and App. G.3). With replacement the
error ``e_k = w_k − w*`` has ``E e_k e_kᵀ = Φ^k(e_0 e_0ᵀ)`` with ``Φ(S) = (1/T) Σ_m P_m S P_m``
(``P_m`` the projection onto ker X_m), so ``E L(w_k)`` is exact (:func:`random_order_expected_loss`);
without replacement it is the mean over all T! orders.

References:
  S. Lin, P. Ju, Y. Liang, N. Shroff. Theory on Forgetting and Generalization of Continual
    Learning. ICML 2023, arXiv:2302.05836, Theorem 1.
  I. Evron, E. Moroshko, R. Ward, N. Srebro, D. Soudry. How catastrophic can catastrophic
    forgetting be in linear regression? COLT 2022, PMLR 178:4028-4079, arXiv:2205.09588.
  I. Evron, R. Levinstein, M. Schliserman, U. Sherman, T. Koren, D. Soudry, N. Srebro. Better
    rates for random task orderings in continual linear models. arXiv:2504.04579 (2025).
  A. Attia, M. Schliserman, U. Sherman, T. Koren. Fast last-iterate convergence of SGD in the
    smooth interpolation regime. NeurIPS 2025.
  M. Tsipory, R. Levinstein, I. Evron, M. Kong, D. Needell, D. Soudry. Are greedy task
    orderings better than random in continual linear regression? NeurIPS 2025, arXiv:2510.19941,
    Sec. 5 and App. G.3 (the two constants above) and App. F, Table 1 (Evron et al. 2022's
    O((d − r̄)/k), constants omitted).
"""
from __future__ import annotations

import math

import numpy as np

from ..errors import ConfigError, check_int

__all__ = ["expected_task_losses", "expected_forgetting", "expected_generalization_error",
           "sequential_projection_fit", "two_task_forgetting", "two_task_worst_case",
           "cyclic_forgetting_bound", "principal_angles", "normalized_average_loss",
           "random_order_expected_loss", "random_order_loss_bound", "single_pass_loss_bound"]


def _finite_array(parameter: str, value, ndim: int) -> np.ndarray:
    try:
        array = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise ConfigError(parameter, value, f"a finite real array with {ndim} dimensions") from None
    if array.ndim != ndim:
        raise ConfigError(parameter, f"shape {array.shape}",
                          f"a {ndim}-D array" + (" (T, p): one row per task" if ndim == 2 else ""))
    if not np.all(np.isfinite(array)):
        raise ConfigError(parameter, "an array with NaN or Inf", "finite values")
    return array


def _check_sigma(sigma) -> float:
    try:
        value = float(sigma)
    except (TypeError, ValueError):
        raise ConfigError("sigma", sigma, "a finite real number >= 0") from None
    if not math.isfinite(value) or value < 0:
        raise ConfigError("sigma", sigma, "a finite real number >= 0")
    return value


def _check_n(n, p: int) -> int:
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ConfigError("n", n, "an integer >= 1 (examples per task)")
    if p < int(n) + 2:
        raise ConfigError("n", n, f"<= p - 2 = {p - 2} (the closed form needs p >= n + 2; "
                                  f"p = {p})")
    return int(n)


def _task_stack(w_stars) -> np.ndarray:
    if isinstance(w_stars, (list, tuple)):
        shapes = {np.shape(w) for w in w_stars}
        if len(w_stars) < 1:
            raise ConfigError("w_stars", "[]", "T >= 1 task vectors")
        if len(shapes) != 1:
            raise ConfigError("w_stars", f"task shapes {sorted(shapes)}",
                              "one shape (p,) for every task")
        if len(next(iter(shapes))) != 1:
            raise ConfigError("w_stars", f"task shape {next(iter(shapes))}", "vectors of shape (p,)")
    stack = _finite_array("w_stars", w_stars, 2)
    if stack.shape[0] < 1:
        raise ConfigError("w_stars", f"T = {stack.shape[0]} tasks", "T >= 1")
    return stack


def expected_task_losses(w_stars, n: int, sigma: float) -> np.ndarray:
    """Expected test loss of every task after every task (Lin et al. 2023, Theorem 1).

    Args:
      w_stars: the tasks' ground truths, shape (T, p) (or a list of T vectors of shape (p,)),
        T >= 1, in the order they are learned.
      n: examples per task, with ``p >= n + 2``.
      sigma: the label noise's standard deviation (>= 0).

    Returns:
      float64 array M of shape (T, T): ``M[t − 1, i] = E L_i(w_t)``, the expected test loss
      ``E(xᵀw_t − y_i)² = E‖w_t − w*_i‖² + σ²`` of task i after learning tasks 1..t from
      ``w_0 = 0`` (each to convergence from the previous iterate: the minimum-distance
      interpolator), over the Gaussian features and the noise.

    Raises:
      ConfigError: ``p < n + 2``, T < 1, tasks of different shapes, ``sigma < 0`` or a
        non-finite value, in one line, before any work.

    References:
      Lin, Ju, Liang, Shroff. Theory on Forgetting and Generalization of Continual Learning.
      ICML 2023, Theorem 1.
    """
    stack = _task_stack(w_stars)
    sigma = _check_sigma(sigma)
    tasks, p = stack.shape
    n = _check_n(n, p)
    keep = 1.0 - n / p
    noise = sigma ** 2 * n / (p - n - 1)
    gaps = np.sum((stack[:, None, :] - stack[None, :, :]) ** 2, axis=-1)  # gaps[t, i]
    errors = np.sum(stack ** 2, axis=-1)  # m_0(i) = ‖w*_i‖²
    rows = []
    for t in range(tasks):
        errors = keep * errors + (n / p) * gaps[t] + noise
        rows.append(errors + sigma ** 2)
    return np.stack(rows)


def expected_forgetting(losses) -> float:
    """Lin et al.'s forgetting after the last task: ``(1/(T−1)) Σ_{i<T} (M[T−1, i] − M[i, i])``.

    Args:
      losses: the (T, T) array of :func:`expected_task_losses` (T >= 2).

    Returns:
      The mean rise of the earlier tasks' expected losses from just after each was learned to
      the end.

    References:
      Lin, Ju, Liang, Shroff. ICML 2023, Sec. 3 (forgetting F_T).
    """
    losses = _finite_array("losses", losses, 2)
    tasks = losses.shape[0]
    if losses.shape != (tasks, tasks) or tasks < 2:
        raise ConfigError("losses", f"shape {losses.shape}", "(T, T) with T >= 2")
    return float(np.mean(losses[-1, :-1] - np.diag(losses)[:-1]))


def expected_generalization_error(losses) -> float:
    """Lin et al.'s generalization error: the mean over tasks of ``M[T−1, i]``.

    Args:
      losses: the (T, T) array of :func:`expected_task_losses`.

    Returns:
      ``(1/T) Σ_i E L_i(w_T)``.

    References:
      Lin, Ju, Liang, Shroff. ICML 2023, Sec. 3 (generalization error G_T).
    """
    losses = _finite_array("losses", losses, 2)
    if losses.shape[0] != losses.shape[1]:
        raise ConfigError("losses", f"shape {losses.shape}", "(T, T)")
    return float(np.mean(losses[-1]))


def sequential_projection_fit(previous, X, y):
    """Fit one task to convergence from ``previous``: the interpolator of ``Xw = y`` closest to it.

    This is where GD (and SAM, whose gradients also lie in the row space of X) ends on an
    underdetermined least-squares task started at ``previous``.

    Args:
      previous: the starting point, shape (p,).
      X: the task's design, shape (n, p), full row rank.
      y: its labels, shape (n,).

    Returns:
      ``previous + Xᵀ(XXᵀ)⁻¹(y − X previous)``.

    References:
      Evron et al. COLT 2022, Sec. 2 (the learner); Lin et al. ICML 2023, Sec. 2.
    """
    previous, X, y = np.asarray(previous, float), np.asarray(X, float), np.asarray(y, float)
    return previous + X.T @ np.linalg.solve(X @ X.T, y - X @ previous)


def _null_space(X: np.ndarray) -> np.ndarray:
    _, singular, vt = np.linalg.svd(X, full_matrices=True)
    rank = int(np.sum(singular > singular.max(initial=0.0) * max(X.shape) * np.finfo(float).eps))
    return vt[rank:].T


def principal_angles(X1, X2):
    """Cosines of the principal angles between the null spaces of two task designs.

    Args:
      X1: the first task's design, shape (n1, p).
      X2: the second task's design, shape (n2, p).

    Returns:
      ``(cosines, vectors)``: one cosine per direction of ``N_1 = ker X1`` (descending; a
      direction of N_1 orthogonal to N_2 has cosine 0) and the matching orthonormal principal
      vectors of N_1 as columns, shape (p, dim N_1).

    References:
      Björck & Golub, Numerical methods for computing angles between linear subspaces, Math.
      Comp. 27 (1973) (angles from the SVD of Q1ᵀQ2).
    """
    X1 = _finite_array("X1", X1, 2)
    X2 = _finite_array("X2", X2, 2)
    if X1.shape[1] != X2.shape[1]:
        raise ConfigError("X2", f"shape {X2.shape}", f"(n2, {X1.shape[1]}): the same p as X1")
    q1, q2 = _null_space(X1), _null_space(X2)
    u, singular, _ = np.linalg.svd(q1.T @ q2, full_matrices=True)
    cosines = np.zeros(q1.shape[1])
    cosines[:singular.size] = np.minimum(singular[:q1.shape[1]], 1.0)
    return cosines, q1 @ u


def _check_iterations(iterations) -> int:
    if isinstance(iterations, bool) or not isinstance(iterations, (int, np.integer)) or iterations < 1:
        raise ConfigError("iterations", iterations, "an integer >= 1 (tasks fitted so far)")
    return int(iterations)


def two_task_forgetting(X1, X2, w_star, iterations: int) -> np.ndarray:
    """Exact two-task forgetting under alternating fits, from principal angles (Evron et al.).

    The learner starts at 0 and fits task 1, 2, 1, 2, ... (each to convergence from the previous
    iterate); the tasks share the solution ``w_star``.

    Args:
      X1: task 1's design, shape (n1, p), with orthonormal rows (``X1 X1ᵀ = I``) for the
        equality; for other data with ``‖X‖ ≤ 1`` the values are upper bounds.
      X2: task 2's design, shape (n2, p), the same way.
      w_star: the shared solution, shape (p,).
      iterations: k >= 1, the number of tasks fitted.

    Returns:
      float64 array of shape (k,): entry k−1 is ``F(k) = ½ Σ_j a_j² cos^{2(k−1)}θ_j sin²θ_j``,
      the mean over the two tasks of ``‖X_m(w_k − w*)‖²`` (k = 1: half task 2's loss). For even
      k this is Evron et al.'s average over the k tasks seen; we average over both tasks for
      every k.

    References:
      Evron, Moroshko, Ward, Srebro, Soudry. COLT 2022, Sec. 4 (two tasks, principal angles).
    """
    w_star = _finite_array("w_star", w_star, 1)
    iterations = _check_iterations(iterations)
    cosines, vectors = principal_angles(X1, X2)
    if vectors.shape[0] != w_star.size:
        raise ConfigError("w_star", f"shape {w_star.shape}", f"({vectors.shape[0]},)")
    components = vectors.T @ (-w_star)  # e_0 = 0 − w*, projected onto N_1's principal vectors
    k = np.arange(1, iterations + 1)[:, None]
    shrink = np.where(k == 1, 1.0, cosines[None, :] ** (2 * (k - 1)))
    return 0.5 * np.sum(components[None, :] ** 2 * shrink * (1.0 - cosines[None, :] ** 2), axis=1)


def two_task_worst_case(iterations: int, w_star_norm: float = 1.0) -> float:
    """The largest two-task forgetting after k fits over all data with ``‖X_m‖ ≤ 1``.

    Args:
      iterations: k >= 1.
      w_star_norm: a bound on ``‖w*‖`` (>= 0).

    Returns:
      ``½‖w*‖² (k − 1)^{k−1}/k^k`` (k = 1: ½‖w*‖²), which is ≤ ``‖w*‖²/(2e(k − 1))``.

    References:
      Evron, Moroshko, Ward, Srebro, Soudry. COLT 2022, Sec. 4 (the two-task worst case).
    """
    iterations = _check_iterations(iterations)
    norm = float(w_star_norm)
    if not math.isfinite(norm) or norm < 0:
        raise ConfigError("w_star_norm", w_star_norm, "a finite number >= 0")
    k = iterations
    return 0.5 * norm ** 2 * ((k - 1) ** (k - 1) / k ** k if k > 1 else 1.0)


def cyclic_forgetting_bound(tasks: int, iterations: int, dimension: int) -> float:
    """Evron et al.'s worst-case bound on forgetting for T tasks seen cyclically for k fits.

    Args:
      tasks: T >= 1.
      iterations: k >= 1 fits in all (k = T·cycles in their cyclic setting).
      dimension: d >= 1, the parameter dimension.

    Returns:
      ``T² min(1/√k, d/k)`` (for ``‖w*‖ ≤ 1`` and ``‖X_m‖ ≤ 1``).

    References:
      Evron, Moroshko, Ward, Srebro, Soudry. COLT 2022, abstract and Sec. 5 (cyclic orders).
    """
    tasks, iterations = check_int("tasks", tasks), check_int("iterations", iterations)
    dimension = check_int("dimension", dimension)
    return float(tasks ** 2 * min(1.0 / math.sqrt(iterations), dimension / iterations))


def _designs(designs) -> list:
    if not isinstance(designs, (list, tuple)) or len(designs) < 1:
        raise ConfigError("designs", type(designs).__name__, "a list of T >= 1 task designs (n_m, d)")
    arrays = [_finite_array("designs", X, 2) for X in designs]
    widths = {X.shape[1] for X in arrays}
    if len(widths) != 1:
        raise ConfigError("designs", f"widths {sorted(widths)}", "one dimension d for every task")
    return arrays


def normalized_average_loss(designs, w_star, w) -> float:
    """The mean loss over all tasks, ``(1/T) Σ_m ‖X_m(w − w*)‖² / (‖w*‖² R²)``, R = max ‖X_m‖.

    Args:
      designs: the T task designs X_m, each of shape (n_m, d).
      w_star: the shared solution (labels ``y_m = X_m w*``), shape (d,), nonzero.
      w: the point, shape (d,).

    Returns:
      The normalized average loss L(w) of the random-order bounds (0 at w*, at most 1 at w = 0).

    References:
      Tsipory et al. NeurIPS 2025, Definition 2.3; Evron et al. COLT 2022, Sec. 2.
    """
    designs = _designs(designs)
    w_star, w = _finite_array("w_star", w_star, 1), _finite_array("w", w, 1)
    radius = max(np.linalg.norm(X, 2) for X in designs)
    error = w - w_star
    total = sum(float(np.sum((X @ error) ** 2)) for X in designs) / len(designs)
    return total / (float(w_star @ w_star) * radius ** 2)


def random_order_expected_loss(designs, w_star, iterations: int) -> np.ndarray:
    """Exact ``E L(w_k)`` for k = 1..K under a uniformly random task order with replacement.

    The learner starts at 0 and fits task ``τ(t) ~ Unif[T]`` (independent draws) to convergence
    from the previous iterate; the error's second moment follows ``S_k = (1/T) Σ_m P_m S_{k−1} P_m``
    from ``S_0 = w* w*ᵀ``, and ``E L(w_k) = (1/T) Σ_m tr(X_mᵀX_m S_k) / (‖w*‖² R²)``.

    Args:
      designs: the T task designs X_m, each (n_m, d); labels ``y_m = X_m w*`` (jointly realizable).
      w_star: the shared solution, shape (d,), nonzero.
      iterations: K >= 1.

    Returns:
      float64 array of shape (K,): entry k−1 is the expected normalized average loss after k fits.

    References:
      Evron et al. COLT 2022 (random orderings; the projection view); Tsipory et al.
      NeurIPS 2025, Definition 2.3 (the normalized loss).
    """
    designs = _designs(designs)
    w_star = _finite_array("w_star", w_star, 1)
    iterations = _check_iterations(iterations)
    if w_star.size != designs[0].shape[1]:
        raise ConfigError("w_star", f"shape {w_star.shape}", f"({designs[0].shape[1]},)")
    norm = float(w_star @ w_star)
    if norm == 0.0:
        raise ConfigError("w_star", "the zero vector", "a nonzero shared solution")
    projections = []
    for X in designs:
        null = _null_space(X)
        projections.append(null @ null.T)
    grams = [X.T @ X for X in designs]
    radius = max(np.linalg.norm(X, 2) for X in designs)
    moment = np.outer(w_star, w_star)
    losses = []
    for _ in range(iterations):
        moment = sum(P @ moment @ P for P in projections) / len(projections)
        losses.append(sum(float(np.sum(G * moment)) for G in grams) / len(grams))
    return np.asarray(losses) / (norm * radius ** 2)


def random_order_loss_bound(iterations: int) -> float:
    """Attia et al.'s bound on the expected normalized average loss under random orders.

    Args:
      iterations: k >= 1 fits (with or without replacement).

    Returns:
      ``13/√k`` (an upper bound on ``E L(w_k)``; vacuous, at least 1, for k <= 169).

    References:
      Attia, Schliserman, Sherman, Koren. NeurIPS 2025, as stated in Tsipory et al. NeurIPS 2025,
      Sec. 5. Evron et al. COLT 2022 prove O((d − r̄)/k) with replacement (constant not
      verified here).
    """
    return 13.0 / math.sqrt(_check_iterations(iterations))


def single_pass_loss_bound(iterations: int, dimension: int, rank: int) -> float:
    """Evron et al. (2025)'s bound for a single pass in random order over rank-r tasks.

    Args:
      iterations: k >= 1 fits, each task at most once (k <= T).
      dimension: d >= 1.
      rank: r, the rank of every task's design, 1 <= r <= d.

    Returns:
      ``2(d − r)/k``, an upper bound on ``E L(w_k)`` over uniformly random orders without
      replacement.

    References:
      Evron, Levinstein, Schliserman, Sherman, Koren, Soudry, Srebro. arXiv:2504.04579 (2025), as
      stated in Tsipory et al. NeurIPS 2025, App. G.3.
    """
    iterations = _check_iterations(iterations)
    dimension = check_int("dimension", dimension)
    rank = check_int("rank", rank, maximum=dimension)  # at most the dimension
    return 2.0 * (dimension - rank) / iterations
