"""Two-layer convolutional ReLU network on signal-plus-noise patches (benign vs harmful overfitting).

References:
  Chen, Zhang, Kou, Chen, Hsieh, Gu. Why Does Sharpness-Aware Minimization Generalize Better
  Than SGD? NeurIPS 2023 (arXiv 2310.07269): the data model (one signal patch ``ŷ·μ``, the other
  patches Gaussian noise orthogonal to μ, labels flipped with probability p), the network
  ``f(W, x) = F₊₁(W₊₁, x) − F₋₁(W₋₁, x)`` with ``F_j = (1/m) Σ_r Σ_p ReLU(⟨w_{j,r}, x_p⟩)``, the
  logistic loss, and Gaussian initialization ``N(0, σ0² I)``.
  Kou, Chen, Chen, Gu. Benign Overfitting in Two-layer ReLU Convolutional Neural Networks.
  ICML 2023 (arXiv 2303.04145): the same model analysed for gradient descent.

Layout. Parameters are ``{"W": W}`` with ``W`` of shape ``(2, m, d)``: ``W[0]`` are the m filters
of the +1 output, ``W[1]`` those of the −1 output (the second layer is fixed to ±1/m). An example
is ``x`` of shape ``(P, d)``; patch 0 is the signal ``ŷ·μ`` (the network sums over patches, so
the position does not matter), patches 1..P−1 are noise. ``μ = ‖μ‖·e₀``, so the noise covariance
``σ_p²(I − μμᵀ/‖μ‖²)`` is ``σ_p²`` on coordinates 1..d−1 and 0 on coordinate 0 (by rotation
invariance of the data model and of the Gaussian initialization this is no loss of generality).

Zero padding. Every array may carry ``d_max ≥ d`` coordinates, the last ``d_max − d`` of them
zero in the data and in the initial filters. The ReLU network's outputs, losses and gradients
are then unchanged and the padded coordinates of W stay exactly zero under GD, SGD and SAM
(their gradient is a sum of data coordinates that are zero), which lets every dimension of a
phase diagram share one compiled program (``sharp_theory.studies.phase_diagram``).

Randomness. Data and initialization of a problem with ``seed`` and dimension ``d`` are drawn
from ``cell_key(seed, d) = fold_in(key(seed), d)``, one independent stream per coordinate, so
the first d coordinates do not depend on how far the arrays are padded.

Test error. The test set is ``n_test`` fresh examples represented exactly by what the network
sees of them: the clean label ŷ, the flip, and for each noise patch the pre-activations
``⟨w_{j,r}, ξ⟩`` of all 2m filters, which are jointly Gaussian with covariance
``σ_p² W Σ Wᵀ`` (Σ the noise covariance). We store standard normals ``g`` of shape
``(n_test, P−1, 2m)`` and form ``σ_p · g · Lᵀ`` with ``L Lᵀ = W Σ Wᵀ`` (Cholesky): for every W this is distributed
exactly as the pre-activations of n_test independent test points, at a memory cost
independent of d. Test error against the observed labels (Bayes error p) and against the clean
labels are both reported.
"""
from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

from ..errors import ConfigError, check_int, check_nonnegative, check_positive
from .base import Problem

# Fold-in tags of the problem's random streams (distinct from the runner's 0, 1, 2).
_TAG_LABELS, _TAG_FLIPS, _TAG_NOISE, _TAG_INIT, _TAG_TEST = 101, 102, 103, 104, 105


@dataclasses.dataclass(frozen=True)
class ConvReluLayout:
    """The static shapes of a conv-ReLU signal/noise problem (hashable: part of a jit key).

    Attributes:
      n_train: training examples n.
      n_test: test examples.
      n_patches: patches per example P (>= 2: one signal, P−1 noise).
      n_filters: filters per output sign m.
      d_max: length of every patch array (the dimension d plus zero padding).
      isotropic: noise covariance σ_p² I instead of σ_p²(I − μμᵀ/‖μ‖²).
    """

    n_train: int
    n_test: int
    n_patches: int
    n_filters: int
    d_max: int
    isotropic: bool = False


def network_output(params, x):
    """``f(W, x) = F₊₁ − F₋₁``, ``F_j = (1/m) Σ_r Σ_p ReLU(⟨w_{j,r}, x_p⟩)`` for a batch x (n, P, d).

    Returns:
      Array (n,) of outputs.

    References: Chen et al. 2023, Sec. 2 (two-layer CNN with fixed second layer).
    """
    return _output_of_preactivations(jnp.einsum("jrd,npd->njrp", params["W"], x))


def _output_of_preactivations(pre):
    """``F₊₁ − F₋₁`` from the pre-activations ``pre[n, j, r, p] = ⟨w_{j,r}, x_{n,p}⟩``."""
    per_sign = jnp.sum(jax.nn.relu(pre), axis=(2, 3)) / pre.shape[2]
    return per_sign[:, 0] - per_sign[:, 1]


def logistic_objective(params, batch, constants):
    """Mean logistic loss ``log(1 + exp(−y f(W, x)))`` over the batch."""
    margins = batch["y"] * network_output(params, batch["x"])
    return jnp.mean(jax.nn.softplus(-margins))


def noise_mask(dim, layout: ConvReluLayout, dtype):
    """1 on the coordinates that carry noise (1..d−1, or 0..d−1 if isotropic), 0 elsewhere."""
    index = jnp.arange(layout.d_max, dtype=jnp.asarray(dim).dtype)
    inside = index < dim
    if not layout.isotropic:
        inside = inside & (index > 0)
    return inside.astype(dtype)


def _per_coordinate_normals(key, shape, d_max, dtype):
    """Standard normals of shape (*shape, d_max), coordinate k drawn from ``fold_in(key, k)``.

    The first d coordinates are the same whatever d_max is, so padding never changes the draw.
    """
    draws = jax.vmap(lambda k: jax.random.normal(jax.random.fold_in(key, k), shape, dtype))(
        jnp.arange(d_max))
    return jnp.moveaxis(draws, 0, -1)


def cell_key(seed, dim):
    """The key of the data and initialization of (seed, dimension): ``fold_in(key(seed), dim)``."""
    return jax.random.fold_in(jax.random.key(seed), dim)


def build_problem(key, dim, signal_strength, noise_std, label_flip, init_std,
                  layout: ConvReluLayout, dtype=None) -> Problem:
    """Draw one problem instance; traceable in ``key, dim, signal_strength, ...`` (vmap-able).

    Args:
      key: the cell key (see :func:`cell_key`).
      dim: the dimension d (<= layout.d_max); may be a traced integer.
      signal_strength: ‖μ‖ (> 0).
      noise_std: σ_p.
      label_flip: p, the probability that an observed label is the flipped clean label.
      init_std: σ0 of the Gaussian initialization.
      layout: the static shapes.
      dtype: float dtype (default: float64 when x64 is on).

    Returns:
      A :class:`Problem` with examples ``{"x": (n, P, d_max), "y": (n,)}``, params0
      ``{"W": (2, m, d_max)}`` and constants ``mu, noise_mask, noise_std, label_flip,
      clean_labels, test_normals, test_clean_labels, test_flips``.
    """
    dtype = jnp.result_type(float) if dtype is None else dtype
    n, n_test, patches, m = layout.n_train, layout.n_test, layout.n_patches, layout.n_filters
    mask = noise_mask(dim, layout, dtype)
    mu = jnp.zeros(layout.d_max, dtype).at[0].set(jnp.asarray(signal_strength, dtype))
    clean = jax.random.rademacher(jax.random.fold_in(key, _TAG_LABELS), (n,), dtype)
    flipped = jax.random.bernoulli(jax.random.fold_in(key, _TAG_FLIPS), label_flip, (n,))
    observed = jnp.where(flipped, -clean, clean)
    normals = _per_coordinate_normals(jax.random.fold_in(key, _TAG_NOISE), (n, patches - 1),
                                      layout.d_max, dtype)
    noise = noise_std * normals * mask[None, None, :]
    signal = clean[:, None] * mu[None, :]
    x = jnp.concatenate([signal[:, None, :], noise], axis=1)
    support = (jnp.arange(layout.d_max, dtype=jnp.asarray(dim).dtype) < dim).astype(dtype)
    weights = init_std * _per_coordinate_normals(jax.random.fold_in(key, _TAG_INIT), (2, m),
                                                 layout.d_max, dtype) * support[None, None, :]
    test_key = jax.random.fold_in(key, _TAG_TEST)
    test_clean = jax.random.rademacher(jax.random.fold_in(test_key, 0), (n_test,), dtype)
    test_flips = jax.random.bernoulli(jax.random.fold_in(test_key, 1), label_flip, (n_test,))
    test_normals = jax.random.normal(jax.random.fold_in(test_key, 2), (n_test, patches - 1, 2 * m),
                                     dtype)
    constants = {
        "mu": mu, "noise_mask": mask, "noise_std": jnp.asarray(noise_std, dtype),
        "label_flip": jnp.asarray(label_flip, dtype), "clean_labels": clean,
        "test_normals": test_normals, "test_clean_labels": test_clean,
        "test_flips": test_flips.astype(dtype),
    }
    return Problem(objective=logistic_objective, params0={"W": weights}, constants=constants,
                   examples={"x": x, "y": observed}, name="conv_relu_signal_noise")


def spd_cholesky(matrix, relative_jitter=1e-12):
    """Lower Cholesky factor of a symmetric positive semi-definite K×K matrix, in plain jnp ops.

    A jitter ``relative_jitter · trace/K`` (plus the smallest normal number) is added to the
    diagonal so that singular Gram matrices (e.g. a zero initialization) factor without NaN.
    Written as a loop over columns rather than LAPACK: batched LAPACK calls inside vmapped
    scans hung on XLA:CPU here (jax 0.10.2) for batches of 24 and more.
    """
    size = matrix.shape[-1]
    tiny = jnp.finfo(matrix.dtype).tiny
    shift = relative_jitter * jnp.trace(matrix) / size + tiny
    matrix = matrix + shift * jnp.eye(size, dtype=matrix.dtype)
    index = jnp.arange(size)

    def column(j, lower):
        partial = matrix[:, j] - lower @ lower[j]  # only columns < j of ``lower`` are filled
        diagonal = jnp.sqrt(jnp.maximum(partial[j], tiny))
        values = jnp.where(index > j, partial / diagonal, 0.0)
        return lower.at[:, j].set(jnp.where(index == j, diagonal, values))

    return jax.lax.fori_loop(0, size, column, jnp.zeros_like(matrix))


def spd_solve(matrix, rhs):
    """Solve ``matrix · X = rhs`` for a symmetric positive definite matrix (plain jnp ops)."""
    lower = spd_cholesky(matrix, relative_jitter=0.0)
    size = matrix.shape[-1]
    y = lower_triangular_solve(lower, rhs)

    def backward(k, x):
        i = size - 1 - k
        return x.at[i].set((y[i] - lower[:, i] @ x) / lower[i, i])

    return jax.lax.fori_loop(0, size, backward, jnp.zeros_like(rhs))


def lower_triangular_solve(lower, rhs):
    """Solve ``lower · X = rhs`` by forward substitution (plain jnp ops).

    Args:
      lower: a (K, K) lower-triangular matrix with a nonzero diagonal.
      rhs: the right-hand side, (K,) or (K, ...).

    Returns:
      X, shaped like ``rhs``.
    """
    def row(i, solution):
        # Row i: (rhs_i − Σ_{k<i} L[i, k] X_k) / L[i, i] (rows >= i of ``solution`` are still 0).
        return solution.at[i].set((rhs[i] - lower[i] @ solution) / lower[i, i])

    return jax.lax.fori_loop(0, lower.shape[-1], row, jnp.zeros_like(rhs))


def patch_span_basis(problem: Problem):
    """An orthonormal basis of the span of the training patches: μ and every noise patch.

    Every gradient of the network with respect to a filter is a combination of training patches
    (module docstring of :mod:`sharp_theory.measure.signal_noise`), so under GD, SGD and SAM
    ``W(t) − W(0)`` stays in this span of K = 1 + n(P−1) vectors. The basis is computed by
    Cholesky QR applied twice (the second pass makes the rows orthonormal to rounding level).
    The patches must be linearly independent: d ≥ K for Gaussian noise; well conditioned
    for d ≥ 2K.

    Args:
      problem: a :func:`conv_relu_signal_noise` problem (possibly zero padded).

    Returns:
      A (K, d_max) array Q with ``Q Qᵀ = I`` (zero beyond the problem's dimension).

    References:
      Cao, Chen, Belkin, Gu 2022 and Chen, Zhang, Kou, Chen, Hsieh, Gu 2023, Sec. 5 (the
      signal-noise decomposition that keeps W(t) − W(0) in this span).
    """
    mu = problem.constants["mu"]
    noise = problem.examples["x"][:, 1:, :]
    rows = jnp.concatenate([mu[None, :], noise.reshape(-1, noise.shape[-1])], axis=0)
    tiny = jnp.finfo(rows.dtype).tiny
    basis = rows / jnp.maximum(jnp.linalg.norm(rows, axis=1, keepdims=True), tiny)
    for _ in range(2):
        lower = spd_cholesky(basis @ basis.T, relative_jitter=0.0)
        inverse = lower_triangular_solve(lower, jnp.eye(lower.shape[-1], dtype=lower.dtype))
        basis = inverse @ basis
    return basis


def coefficient_objective(params, batch, constants):
    """The logistic loss of the network ``W = W0 + A Q`` as a function of the coefficients A.

    ``batch["initial_pre"]`` holds each example's pre-activations under W0 (n, 2, m, P) and
    ``batch["coordinates"]`` its patches in the basis Q (n, P, K), so a pre-activation is
    ``initial_pre + Σ_k A[j, r, k] coordinates[n, p, k]``: the same value as the network on the
    patches, at a cost independent of d.
    """
    pre = batch["initial_pre"] + jnp.einsum("jrk,npk->njrp", params["A"], batch["coordinates"])
    margins = batch["y"] * _output_of_preactivations(pre)
    return jnp.mean(jax.nn.softplus(-margins))


def coefficient_problem(problem: Problem, basis) -> Problem:
    """The training problem in the coordinates A of ``W − W0 = A Q`` (Q from
    :func:`patch_span_basis`).

    For rules whose update is built from gradients by operations that commute with rotations
    of parameter space (GD, SGD, SAM, USAM, heavy-ball momentum), training A from 0 with this
    problem gives, step for step, ``W0 + A Q`` equal to training W directly (up to rounding):
    ``∇_A = ∇_W Qᵀ``, ``∇_W = ∇_A Q`` because ∇_W lies in the span, and ``‖∇_A‖ = ‖∇_W‖``
    because Q is orthonormal. A step then costs O(n P m K) instead of O(n P m d). The
    mini-batches are the same (same number of examples). Adam and other coordinate-wise rules
    do not commute with rotations and must train W.

    Args:
      problem: a :func:`conv_relu_signal_noise` problem.
      basis: its :func:`patch_span_basis`.

    Returns:
      A :class:`Problem` with params ``{"A": zeros (2, m, K)}``.
    """
    weights0 = problem.params0["W"]
    x = problem.examples["x"]
    examples = {"initial_pre": jnp.einsum("jrd,npd->njrp", weights0, x),
                "coordinates": jnp.einsum("kd,npd->npk", basis, x),
                "y": problem.examples["y"]}
    coefficients0 = jnp.zeros(weights0.shape[:2] + (basis.shape[0],), weights0.dtype)
    return Problem(objective=coefficient_objective, params0={"A": coefficients0},
                   constants={}, examples=examples, name=problem.name + "-coefficients")


def weights_from_coefficients(params, problem: Problem, basis) -> dict:
    """The network's parameters ``{"W": W0 + A Q}`` from coefficient-space parameters ``{"A"}``.

    Args:
      params: ``{"A": (2, m, K)}``.
      problem: the :func:`conv_relu_signal_noise` problem (its W0).
      basis: the (K, d_max) basis Q.

    Returns:
      ``{"W": (2, m, d_max)}``.
    """
    return {"W": problem.params0["W"] + jnp.einsum("jrk,kd->jrd", params["A"], basis)}


def _test_outputs(params, constants):
    """Network outputs on the stored test set (see the module docstring) and its clean labels."""
    weights = params["W"]
    two_m = 2 * weights.shape[1]
    m = weights.shape[1]
    clean = constants["test_clean_labels"]
    # Signal patch: ⟨w_{j,r}, ŷ μ⟩ = ŷ ‖μ‖ w_{j,r,0} (μ = ‖μ‖ e₀).
    signal_pre = clean[:, None] * jnp.dot(weights.reshape(two_m, -1), constants["mu"])[None, :]
    masked = weights.reshape(two_m, -1) * constants["noise_mask"][None, :]
    # Any factor L with L Lᵀ = W Σ Wᵀ gives pre-activations g Lᵀ with the right covariance.
    factor = spd_cholesky(masked @ masked.T)
    noise_pre = constants["noise_std"] * jnp.einsum("tpk,lk->tpl", constants["test_normals"], factor)
    activations = jax.nn.relu(signal_pre) + jnp.sum(jax.nn.relu(noise_pre), axis=1)
    per_sign = activations.reshape(-1, 2, m).sum(axis=2) / m
    return per_sign[:, 0] - per_sign[:, 1], clean


def observed_label_test_error(params, problem):
    """Test error against the observed (noisy) labels; its Bayes optimum is the flip rate p."""
    outputs, clean = _test_outputs(params, problem.constants)
    observed = jnp.where(problem.constants["test_flips"] > 0, -clean, clean)
    return jnp.mean((observed * outputs <= 0).astype(outputs.dtype))


def clean_label_test_error(params, problem):
    """Test error against the clean labels ŷ (0 for a perfect classifier)."""
    outputs, clean = _test_outputs(params, problem.constants)
    return jnp.mean((clean * outputs <= 0).astype(outputs.dtype))


def training_error(params, problem):
    """Fraction of training examples misclassified against their observed labels."""
    batch = problem.examples
    return jnp.mean((batch["y"] * network_output(params, batch["x"]) <= 0).astype(batch["x"].dtype))


def training_loss(params, problem):
    """The full-data logistic loss."""
    return problem.loss(params, problem.examples)


def check_settings(dim, signal_strength, n_train, n_test, n_patches, n_filters, noise_std,
                   label_flip, init_std, pad_to=None):
    """Validate the constructor's settings (ConfigError before any work)."""
    dim = check_int("dim", dim, minimum=2)
    check_positive("signal_strength", signal_strength)
    check_int("n_train", n_train, minimum=1)
    check_int("n_test", n_test, minimum=1)
    check_int("n_patches", n_patches, minimum=2)
    check_int("n_filters", n_filters, minimum=1)
    check_positive("noise_std", noise_std)
    check_nonnegative("init_std", init_std)
    check_nonnegative("label_flip", label_flip)
    if not float(label_flip) < 0.5:
        raise ConfigError("label_flip", label_flip, "a probability in [0, 0.5)")
    if pad_to is not None:
        check_int("pad_to", pad_to, minimum=dim)
    return dim


def conv_relu_signal_noise(dim: int = 1000, signal_strength: float = 5.0, *, n_train: int = 20,
                           n_test: int = 1000, n_patches: int = 2, n_filters: int = 10,
                           noise_std: float = 1.0, label_flip: float = 0.1,
                           init_std: float = 0.01, isotropic: bool = False, seed: int = 0,
                           pad_to: int | None = None) -> Problem:
    """Two-layer conv ReLU network, logistic loss, on the signal/noise patch data.

    Args:
      dim: patch dimension d (>= 2).
      signal_strength: ‖μ‖ (> 0).
      n_train: training examples n (a finite data set: SGD draws shuffled-epoch mini-batches).
      n_test: test examples used by the test-error observables.
      n_patches: patches per example P (>= 2).
      n_filters: filters per output sign m.
      noise_std: σ_p.
      label_flip: p in [0, 0.5).
      init_std: σ0.
      isotropic: noise covariance σ_p² I instead of σ_p²(I − μμᵀ/‖μ‖²).
      seed: data and initialization come from ``cell_key(seed, dim)``; run the problem with
        ``key=jax.random.key(seed)`` to reproduce the matching cell of a grid sweep.
      pad_to: store every patch with this many coordinates (zero padded; default d).

    Returns:
      A :class:`Problem`; ``params0 = {"W": (2, m, pad_to or d)}`` is the Gaussian init.
      Observables: :func:`observed_label_test_error`, :func:`clean_label_test_error`, :func:`training_error`,
      :func:`training_loss` and ``sharp_theory.measure.signal_noise`` measures.

    References: Chen et al. 2023 (arXiv 2310.07269), Sec. 2 (data model and network).
    """
    dim = check_settings(dim, signal_strength, n_train, n_test, n_patches, n_filters, noise_std,
                         label_flip, init_std, pad_to)
    if not isinstance(isotropic, bool):
        raise ConfigError("isotropic", isotropic, "True or False")
    check_int("seed", seed, minimum=0)
    layout = ConvReluLayout(int(n_train), int(n_test), int(n_patches), int(n_filters),
                            int(pad_to or dim), isotropic)
    return _build_jit(cell_key(seed, dim), jnp.asarray(dim), float(signal_strength),
                      float(noise_std), float(label_flip), float(init_std), layout)


_build_jit = jax.jit(build_problem, static_argnames=("layout", "dtype"))


def as_numpy_problem(problem: Problem) -> dict:
    """The problem's arrays as numpy (for plain-loop baselines and inspection)."""
    out = {"x": np.asarray(problem.examples["x"]), "y": np.asarray(problem.examples["y"]),
           "W0": np.asarray(problem.params0["W"])}
    out.update({name: np.asarray(value) for name, value in problem.constants.items()})
    return out
