"""Task sequences for forgetting: learn task A, then fine-tune on task B from A's endpoint.

* :func:`least_squares_task` and :func:`sequential_regression`: linear regression tasks
  ``L_t(w) = ‖X_t w − y_t‖²/(2n)`` (Gaussian designs or your own), one :class:`Problem` each.
* :func:`bigram_fine_tuning`: the softmax next-token model (:func:`softmax_bigram`) with a
  pretraining task A (its population table ``J_A``) and fine-tuning tables
  ``J_B = (1 − λ) J_A + λ J_s`` whose gap λ is set (and ``KL(J_B ‖ J_A)`` recorded), stacked on
  one grid axis.
* :func:`low_rank_fine_tuning`: LoRA-like fine-tuning of a pretrained model, one weight matrix
  replaced by ``W0 + x yᵀ`` with everything else frozen; the trainable parameters are x and y.
* :func:`diagonal_fine_tuning`: a diagonal linear network (:func:`diagonal_linear`) with task A
  and task B regression data on one grid axis.

Running task B from task A's endpoint is one call: ``st.run(task_b, optimizer, steps=...,
key=..., params0=w_a)``, or for every lane at once ``st.sweep(pair.task_a, optimizers,
steps=..., grid=pair.grid, params0=w_a)`` (the tasks differ only in a problem constant, so the
sweep compiles one program for all of them).

References:
  Evron, Moroshko, Ward, Srebro, Soudry. How catastrophic can catastrophic forgetting be in
  linear regression? COLT 2022 (sequential least squares).
  Lin, Ju, Liang, Shroff. Theory on Forgetting and Generalization of Continual Learning.
  ICML 2023 (Gaussian designs).
  Li, Ding, Fang, Tao. Revisiting Catastrophic Forgetting in Large Language Model Tuning.
  Findings of EMNLP 2024 (pretraining then fine-tuning a next-token model).
"""
from __future__ import annotations

import dataclasses

import jax.numpy as jnp
import numpy as np

from ..errors import ConfigError, check_int, check_nonnegative, check_positive
from .base import Problem
from .diagonal import DiagonalLinearObjective, initial_params
from .next_token import bigram_tables, softmax_bigram


def least_squares_objective(params, batch, constants):
    """``‖X w − y‖²/(2n)`` with ``X, y`` the problem's constants (``batch`` unused)."""
    residual = constants["X"] @ params - constants["y"]
    return 0.5 * jnp.mean(residual ** 2)


def _finite_matrix(parameter, value, ndim):
    try:
        array = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise ConfigError(parameter, value, f"a real array with {ndim} axes") from None
    if array.ndim != ndim or array.size == 0:
        raise ConfigError(parameter, value, f"a non-empty real array with {ndim} axes")
    if not np.all(np.isfinite(array)):
        raise ConfigError(parameter, value, "finite values")
    return array


def least_squares_task(X, y, *, params0=None, name: str = "least_squares") -> Problem:
    """One least-squares task ``L(w) = ‖X w − y‖²/(2n)`` as a Problem.

    Args:
      X: the (n, p) design (finite).
      y: the (n,) targets (finite).
      params0: the start (shape (p,); default zeros). Fine-tuning from task A's endpoint:
        pass ``params0=w_a`` here or to ``st.run``.
      name: the problem's name.

    Returns:
      A full-batch Problem (``batch`` is None) with constants ``X`` and ``y`` and parameters a
      vector of length p.

    References:
      Evron et al. COLT 2022, Sec. 2 (the loss of one task).
    """
    X = _finite_matrix("X", X, 2)
    y = _finite_matrix("y", y, 1)
    if y.shape[0] != X.shape[0]:
        raise ConfigError("y", f"shape {y.shape}", f"shape ({X.shape[0]},), one target per row of X")
    if params0 is None:
        params0 = np.zeros(X.shape[1])
    params0 = _finite_matrix("params0", params0, 1)
    if params0.shape != (X.shape[1],):
        raise ConfigError("params0", f"shape {params0.shape}", f"shape ({X.shape[1]},)")
    return Problem(objective=least_squares_objective, params0=jnp.asarray(params0),
                   constants={"X": jnp.asarray(X), "y": jnp.asarray(y)}, name=name)


def sequential_regression(designs=None, truths=None, *, tasks: int = 2, p: int = 20, n: int = 8,
                          sigma: float = 0.0, seed: int = 0) -> tuple[Problem, ...]:
    """A sequence of least-squares tasks, Gaussian (Lin et al.) or on your own designs.

    Task t has targets ``y_t = X_t w*_t + σ ε``. Drawn data: ``X_t`` has N(0, 1) entries,
    ``w*_t ~ N(0, I_p)``, ε ~ N(0, I_n), all from ``numpy.random.default_rng(seed)``.

    Args:
      designs: your own designs, shape (T, n, p) (default: Gaussian, from ``tasks, n, p``).
      truths: the ground truths ``w*_t``, shape (T, p) (default: Gaussian; with ``designs``
        given, T and p are read from it).
      tasks: T >= 1 when ``designs`` is None.
      p: the dimension (>= 1) when ``designs`` is None.
      n: examples per task (>= 1) when ``designs`` is None.
      sigma: label noise σ >= 0.
      seed: the data seed (>= 0).

    Returns:
      A tuple of T :func:`least_squares_task` problems, each starting at zero. Fine-tune task
      t + 1 from task t's endpoint with ``st.run(problems[t + 1], ..., params0=w_t)``.

    References:
      Lin, Ju, Liang, Shroff, ICML 2023, Sec. 3; Evron et al., COLT 2022, Sec. 2.
    """
    check_nonnegative("sigma", sigma)
    seed = check_int("seed", seed, minimum=0)
    rng = np.random.default_rng(seed)
    if designs is None:
        tasks = check_int("tasks", tasks, minimum=1)
        p, n = check_int("p", p, minimum=1), check_int("n", n, minimum=1)
        designs = rng.standard_normal((tasks, n, p))
    else:
        designs = _finite_matrix("designs", designs, 3)
    count, rows, dimension = designs.shape
    if truths is None:
        truths = rng.standard_normal((count, dimension))
    truths = _finite_matrix("truths", truths, 2)
    if truths.shape != (count, dimension):
        raise ConfigError("truths", f"shape {truths.shape}",
                          f"shape ({count}, {dimension}), one ground truth per task in designs")
    noise = float(sigma) * rng.standard_normal((count, rows)) if sigma else np.zeros((count, rows))
    return tuple(least_squares_task(designs[t], designs[t] @ truths[t] + noise[t],
                                    name=f"least_squares task {t + 1}") for t in range(count))


def _check_gaps(gaps):
    array = np.asarray(gaps, dtype=np.float64).reshape(-1) if np.ndim(gaps) <= 1 else None
    if array is None or array.size == 0 or not np.all(np.isfinite(array)) \
            or np.any(array < 0) or np.any(array > 1):
        raise ConfigError("gaps", gaps, "a non-empty list of task gaps λ in [0, 1]")
    return array


@dataclasses.dataclass(frozen=True)
class FineTuningTasks:
    """A pretraining task A and fine-tuning tasks B on one grid axis (lanes: gap-major, then seed).

    Attributes:
      task_a: the Problem of task A (its params0 is the model's initialization).
      grid: ``{name: array}`` with one leading lane axis: pass to ``st.sweep(task_a, ...,
        grid=grid, params0=w_a)`` to fine-tune every lane from w_a in one compiled call.
      gaps: the gap λ of every lane.
      seeds: the seed of every lane's other task.
      kl: a distance between task B and task A per lane (``KL(J_B ‖ J_A)`` for bigram tasks,
        ``‖w*_B − w*_A‖`` for regression tasks).
    """

    task_a: Problem
    grid: dict
    gaps: np.ndarray
    seeds: np.ndarray
    kl: np.ndarray

    @property
    def lanes(self) -> int:
        """The number of task-B lanes."""
        return int(self.gaps.shape[0])

    def task_b(self, lane: int) -> Problem:
        """Task B of one lane as a Problem (``task_a`` with that lane's grid values)."""
        lane = check_int("lane", lane, minimum=0, maximum=self.lanes - 1)
        return self.task_a.with_constants(**{k: jnp.asarray(v[lane]) for k, v in self.grid.items()})


def bigram_fine_tuning(gaps, *, seeds: int = 1, vocab_size: int = 8, embedding_dim: int = 4,
                       hidden_dim: int = 8, zipf_exponent: float = 1.0, seed: int = 0,
                       other_seed: int = 100, rehearsal: float = 0.0) -> FineTuningTasks:
    """The next-token model pretrained on task A, fine-tuned on tasks B at set gaps.

    Task A is the population table ``J_A`` of ``softmax_bigram(vocab_size, seed=seed)``, used as
    both the training and the population table (so L_A is exact and its minimum is the entropy).
    Task B of lane (λ, s) is ``J_B = (1 − λ) J_A + λ J_s`` with ``J_s`` the population table of
    ``bigram_tables(vocab_size, zipf_exponent, seed=other_seed + s)``. Rehearsal (replaying a
    fraction r of task A's data during fine-tuning) trains on ``(1 − r) J_B + r J_A`` while the
    lane's population table stays ``J_B``. (In this model replaying A is the same as shrinking
    the gap to ``λ(1 − r)`` in the training table: the mixtures are linear.)

    Args:
      gaps: task gaps λ in [0, 1] (a list; 0 gives task B = task A).
      seeds: how many other tables J_s per gap (>= 1).
      vocab_size: V (2..4096).
      embedding_dim: d >= 1.
      hidden_dim: h >= 1.
      zipf_exponent: s >= 0 of every table.
      seed: the seed of task A's table and of the model's initialization (>= 0).
      other_seed: the seed of the first other table (>= 0).
      rehearsal: the fraction r in [0, 1) of task-A data mixed into fine-tuning (0: none).

    Returns:
      :class:`FineTuningTasks` with ``grid = {"tables": array (lanes, 2, V, V)}`` (per lane
      the training table, then the population table J_B; lanes ordered gap-major), the lanes'
      gaps, seeds and ``KL(J_B ‖ J_A)``.

    References:
      Li, Ding, Fang, Tao, Findings of EMNLP 2024 (fine-tuning forgets pretraining).
    """
    gaps = _check_gaps(gaps)
    seeds = check_int("seeds", seeds, minimum=1)
    other_seed = check_int("other_seed", other_seed, minimum=0)
    check_nonnegative("rehearsal", rehearsal)
    if not rehearsal < 1:
        raise ConfigError("rehearsal", rehearsal, "a fraction in [0, 1)")
    base = softmax_bigram(vocab_size, zipf_exponent=zipf_exponent, embedding_dim=embedding_dim,
                          hidden_dim=hidden_dim, seed=seed)
    joint_a = np.asarray(base.constants["tables"][1])
    task_a = base.with_constants(tables=jnp.stack([jnp.asarray(joint_a)] * 2))
    others = [bigram_tables(vocab_size, zipf_exponent, n_train=1, seed=other_seed + s)[1]
              for s in range(seeds)]
    tables, lane_gaps, lane_seeds, kl = [], [], [], []
    for gap in gaps:
        for s in range(seeds):
            joint_b = (1 - gap) * joint_a + gap * others[s]
            training = (1 - rehearsal) * joint_b + rehearsal * joint_a
            tables.append(np.stack([training, joint_b]))
            lane_gaps.append(float(gap))
            lane_seeds.append(other_seed + s)
            kl.append(float(np.sum(joint_b * np.log(joint_b / joint_a))))
    return FineTuningTasks(task_a=task_a, grid={"tables": np.stack(tables)},
                           gaps=np.array(lane_gaps), seeds=np.array(lane_seeds), kl=np.array(kl))


def diagonal_fine_tuning(gaps, *, seeds: int = 1, n: int = 20, d: int = 10,
                         init_scale: float = 0.5, seed: int = 0) -> FineTuningTasks:
    """A diagonal linear network (β = u⊙v) on regression task A, then tasks B at set gaps.

    Task A: ``y = X θ_A`` with X (n, d) of N(0, 1) entries and θ_A ~ N(0, I_d). Task B of lane
    (λ, s): the same X, targets ``X θ_B`` with ``θ_B = θ_A + λ ξ_s``, ξ_s ~ N(0, I_d) from seed
    ``seed + 1 + s``. With n >= d the minimizers of L_A have β = θ_A.

    Args:
      gaps: task gaps λ >= 0 in [0, 1] (a list).
      seeds: directions ξ_s per gap (>= 1).
      n: examples (>= 1).
      d: the dimension (>= 1).
      init_scale: u = a·1, v = 0 at the start (> 0).
      seed: the data seed (>= 0).

    Returns:
      :class:`FineTuningTasks` whose ``task_a`` is :func:`diagonal_linear` on task A's data and
      whose grid swaps the training targets: ``{"targets": array (lanes, n)}`` (the objective
      reads ``constants["targets"]``), and ``kl`` holds ``‖θ_B − θ_A‖``.

    References:
      Woodworth et al., COLT 2020 (diagonal linear networks); Mirzadeh et al., NeurIPS 2020.
    """
    gaps = _check_gaps(gaps)
    seeds = check_int("seeds", seeds, minimum=1)
    n, d = check_int("n", n, minimum=1), check_int("d", d, minimum=1)
    seed = check_int("seed", seed, minimum=0)
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    theta_a = rng.standard_normal(d)
    directions = [np.random.default_rng(seed + 1 + s).standard_normal(d) for s in range(seeds)]
    targets, lane_gaps, lane_seeds, distance = [], [], [], []
    for gap in gaps:
        for s in range(seeds):
            theta_b = theta_a + gap * directions[s]
            targets.append(X @ theta_b)
            lane_gaps.append(float(gap))
            lane_seeds.append(seed + 1 + s)
            distance.append(float(np.linalg.norm(theta_b - theta_a)))
    task_a = Problem(objective=_diagonal_objective, params0=initial_params(init_scale, d),
                     constants={"X": jnp.asarray(X), "targets": jnp.asarray(X @ theta_a),
                                "theta": jnp.asarray(theta_a)},
                     name="diagonal_linear fine-tuning")
    return FineTuningTasks(task_a=task_a, grid={"targets": np.stack(targets)},
                           gaps=np.array(lane_gaps), seeds=np.array(lane_seeds),
                           kl=np.array(distance))


@dataclasses.dataclass(frozen=True)
class _LowRankObjective:
    """The base objective at the frozen parameters with ``layer`` replaced by W0 + x yᵀ."""

    base: object
    layer: str

    def __call__(self, params, batch, constants):
        frozen = dict(constants["frozen"])
        frozen[self.layer] = frozen[self.layer] + params["x"] @ params["y"].T
        return self.base(frozen, batch, constants)


def low_rank_fine_tuning(task: Problem, params, *, layer: str, rank: int = 1,
                         init_scale: float = 0.01, seed: int = 0) -> Problem:
    """LoRA-like fine-tuning: ``task`` with one weight matrix ``W0 + x yᵀ``, the rest frozen.

    The frozen parameters (``params``, e.g. task A's endpoint) live in the constants under
    ``"frozen"``; the trainable parameters are ``x`` (m, r) and ``y`` (n, r) for a (m, n) matrix
    ``W0 = params[layer]``. ``y`` starts at zero (so fine-tuning starts exactly at ``params``) and
    ``x`` at ``init_scale`` times N(0, 1) entries. The task's other constants are kept, so a
    sweep's grid over them (e.g. :func:`bigram_fine_tuning`'s ``grid``) still applies.

    Args:
      task: the problem to fine-tune on (its objective reads a dict of parameters).
      params: the pretrained parameters (a dict with a 2-D array under ``layer``).
      layer: the name of the adapted matrix, e.g. ``"readout"`` or ``"hidden"`` for
        :func:`softmax_bigram`.
      rank: r, 1 <= r <= min(m, n).
      init_scale: the scale of x's initialization (> 0).
      seed: the seed of x's initialization (>= 0).

    Returns:
      A Problem with params ``{"x", "y"}``, constants ``task.constants`` plus ``"frozen"``;
      ``sharp_theory.problems.tasks.merged_params(problem, params)`` gives the full parameters
      back.

    References:
      Hu et al. LoRA: Low-Rank Adaptation of Large Language Models. ICLR 2022.
    """
    if not isinstance(params, dict) or layer not in params:
        names = sorted(params) if isinstance(params, dict) else type(params).__name__
        raise ConfigError("layer", layer, f"a key of params ({names})")
    matrix = np.asarray(params[layer])
    if matrix.ndim != 2:
        raise ConfigError("layer", layer, f"a 2-D weight (params[{layer!r}] has shape {matrix.shape})")
    rank = check_int("rank", rank, minimum=1, maximum=min(matrix.shape))
    check_positive("init_scale", init_scale)
    seed = check_int("seed", seed, minimum=0)
    rng = np.random.default_rng(seed)
    adapter = {"x": jnp.asarray(init_scale * rng.standard_normal((matrix.shape[0], rank))),
               "y": jnp.zeros((matrix.shape[1], rank), dtype=jnp.asarray(matrix).dtype)}
    return Problem(objective=_LowRankObjective(task.objective, layer), params0=adapter,
                   constants={**task.constants, "frozen": dict(params)},
                   name=f"{task.name} + low-rank {layer}")


def merged_params(problem: Problem, params) -> dict:
    """The full parameters of a :func:`low_rank_fine_tuning` problem: ``W0 + x yᵀ`` merged in.

    Args:
      problem: a problem made by :func:`low_rank_fine_tuning`.
      params: its parameters ``{"x", "y"}``.

    Returns:
      The frozen parameters with the adapted matrix replaced by ``W0 + x yᵀ``.
    """
    if not isinstance(problem.objective, _LowRankObjective):
        raise ConfigError("problem", problem.name, "a problem made by low_rank_fine_tuning")
    merged = dict(problem.constants["frozen"])
    layer = problem.objective.layer
    merged[layer] = merged[layer] + params["x"] @ params["y"].T
    return merged


_DIAGONAL = DiagonalLinearObjective("uv")


def _diagonal_objective(params, batch, constants):
    return _DIAGONAL(params, {"x": constants["X"], "y": constants["targets"]}, constants)


__all__ = ["least_squares_task", "sequential_regression", "bigram_fine_tuning",
           "diagonal_fine_tuning", "low_rank_fine_tuning", "merged_params", "FineTuningTasks", "least_squares_objective"]
