"""Signal/noise decomposition of a two-layer conv ReLU network's filters, and noise ReLU activity.

Every gradient of the conv-ReLU network of :mod:`sharp_theory.problems.conv_relu` with respect to
a filter is a combination of the training patches, so for GD, SGD and SAM (plain base)

    w_{j,r}(t) = w_{j,r}(0) + γ_{j,r}(t) · μ/‖μ‖² + Σ_{i,p} ρ_{j,r,i,p}(t) · ξ_{i,p}/‖ξ_{i,p}‖²

holds exactly, with γ the signal-learning and ρ the noise-memorization coefficients. We recover
(γ, ρ) by least squares on the unit-normalized basis (μ/‖μ‖, ξ_{i,p}/‖ξ_{i,p}‖), which is exact
(up to rounding) whenever these n(P−1)+1 vectors are linearly independent (d > n(P−1) for
Gaussian noise) and is the best fit otherwise.

References:
  Chen, Zhang, Kou, Chen, Hsieh, Gu. NeurIPS 2023 (arXiv 2310.07269), Sec. 5 (signal-noise
  decomposition; SAM keeps noise memorization small by deactivating noise ReLUs early).
  Cao, Chen, Belkin, Gu. Benign Overfitting in Two-layer Convolutional Neural Networks.
  NeurIPS 2022 (the decomposition).
"""
from __future__ import annotations

import jax.numpy as jnp

from ..problems.conv_relu import spd_solve


def _noise_patches(problem):
    return problem.examples["x"][:, 1:, :]  # patch 0 is the signal (see problems.conv_relu)


def signal_noise_coefficients(params, problem):
    """γ and ρ of every filter relative to the problem's initialization ``problem.params0``.

    Args:
      params: ``{"W": (2, m, d)}``.
      problem: a ``conv_relu_signal_noise`` problem (its μ, training noise patches and W0).

    Returns:
      dict ``gamma`` (2, m) and ``rho`` (2, m, n, P−1); ``residual`` the norm of the part of
      W − W0 outside the span (≈ 0 for the training rules above).

    References:
      Cao, Chen, Belkin, Gu 2022 (the decomposition); Chen, Zhang, Kou, Chen,
      Hsieh, Gu 2023, Sec. 5.
    """
    mu = problem.constants["mu"]
    noise = _noise_patches(problem)
    n, noise_patches, d = noise.shape
    noise_flat = noise.reshape(n * noise_patches, d)
    mu_norm = jnp.linalg.norm(mu)
    noise_norms = jnp.linalg.norm(noise_flat, axis=1)
    tiny = jnp.finfo(mu.dtype).tiny
    basis = jnp.concatenate([(mu / jnp.maximum(mu_norm, tiny))[None, :],
                             noise_flat / jnp.maximum(noise_norms, tiny)[:, None]], axis=0)
    delta = (params["W"] - problem.params0["W"]).reshape(-1, d)
    gram = basis @ basis.T
    unit_coefficients = spd_solve(gram, basis @ delta.T)  # (1 + n(P−1), 2m)
    residual = jnp.linalg.norm(delta - unit_coefficients.T @ basis)
    # unit coefficient c on μ/‖μ‖ is γ/‖μ‖; on ξ/‖ξ‖ it is ρ/‖ξ‖.
    gamma = unit_coefficients[0] * mu_norm
    rho = unit_coefficients[1:] * noise_norms[:, None]
    two, m = params["W"].shape[:2]
    return {"gamma": gamma.reshape(two, m),
            "rho": rho.T.reshape(two, m, n, noise_patches),
            "residual": residual}


def max_noise_coefficient(params, problem):
    """The largest noise memorization of any filter: ``max_{j,r,i,p} |ρ_{j,r,i,p}|``.

    Args:
      params: ``{"W": (2, m, d)}``.
      problem: the ``conv_relu_signal_noise`` problem the filters were trained on.

    Returns:
      A scalar array ≥ 0.

    References:
      Chen, Zhang, Kou, Chen, Hsieh, Gu 2023, Sec. 5 (noise memorization ρ).
    """
    return jnp.max(jnp.abs(signal_noise_coefficients(params, problem)["rho"]))


def max_signal_coefficient(params, problem):
    """The signal learned: the larger of ``max_r γ_{+1,r}`` and ``max_r −γ_{−1,r}``.

    Filter j learns the signal when ``j·γ_{j,r}`` grows.

    Args:
      params: ``{"W": (2, m, d)}``.
      problem: the ``conv_relu_signal_noise`` problem the filters were trained on.

    Returns:
      A scalar array.

    References:
      Chen, Zhang, Kou, Chen, Hsieh, Gu 2023, Sec. 5 (signal learning γ).
    """
    gamma = signal_noise_coefficients(params, problem)["gamma"]
    return jnp.maximum(jnp.max(gamma[0]), jnp.max(-gamma[1]))


def noise_preactivations(params, problem):
    """The pre-activations ``⟨w_{j,r}, ξ_{i,p}⟩`` of every filter on every training noise patch.

    Args:
      params: ``{"W": (2, m, d)}``.
      problem: a ``conv_relu_signal_noise`` problem (its training noise patches).

    Returns:
      An array of shape (2, m, n, P−1).
    """
    return jnp.einsum("jrd,npd->jrnp", params["W"], _noise_patches(problem))


def noise_activation_fraction(params, problem, label_aligned: bool = False):
    """The fraction of (filter, training noise patch) pairs whose ReLU is active (⟨w, ξ⟩ > 0).

    Args:
      params: ``{"W": (2, m, d)}``.
      problem: a ``conv_relu_signal_noise`` problem (its training noise patches and labels).
      label_aligned: count only filters whose sign j equals the observed label y_i, the ones
        whose gradient pushes ⟨w_{j,r}, ξ_i⟩ up, i.e. the ReLUs that memorize noise.

    Returns:
      A scalar array in [0, 1].

    References:
      Chen, Zhang, Kou, Chen, Hsieh, Gu 2023, Sec. 5 (SAM deactivates noise ReLUs early).
    """
    active = (noise_preactivations(params, problem) > 0).astype(params["W"].dtype)
    if not label_aligned:
        return jnp.mean(active)
    signs = jnp.asarray([1.0, -1.0], active.dtype)
    aligned = (signs[:, None] == problem.examples["y"][None, :]).astype(active.dtype)  # (2, n)
    weights = aligned[:, None, :, None] * jnp.ones_like(active)
    return jnp.sum(active * weights) / jnp.sum(weights)


def aligned_noise_activation_fraction(params, problem):
    """:func:`noise_activation_fraction` with ``label_aligned=True`` (an observable).

    Args:
      params: ``{"W": (2, m, d)}``.
      problem: a ``conv_relu_signal_noise`` problem.

    Returns:
      A scalar array in [0, 1].

    References:
      Chen, Zhang, Kou, Chen, Hsieh, Gu 2023, Sec. 5.
    """
    return noise_activation_fraction(params, problem, label_aligned=True)
