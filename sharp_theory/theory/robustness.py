"""Exact adversarial robustness of linear scores, and the duality between input and weight
perturbations.

For a linear score ``s(x) = wᵀx`` and a label ``y = ±1`` the margin is ``y·wᵀx``. By Hölder's
inequality the worst perturbation ``δ`` of the input in an ℓ_p ball of radius ε lowers the margin by
exactly ``ε‖w‖_q`` with ``1/p + 1/q = 1`` (p = 2 ↔ q = 2, p = ∞ ↔ q = 1, p = 1 ↔ q = ∞), so on
Gaussian class-conditionals ``x | y ~ N(y·μ, Σ)`` the accuracy of ``sign(wᵀx)`` under the worst
attack is the normal CDF

    Φ((wᵀμ − ε‖w‖_q) / sqrt(wᵀΣw)).

Weight perturbations are the dual picture. A perturbation ``Δw`` of the weights in an ℓ2 ball of
radius ρ, chosen per example, lowers the margin by exactly ``ρ‖x‖₂`` (it takes
``Δw = −ρ·y·x/‖x‖₂``): as much as an ℓ2 input attack of radius ``ρ‖x‖₂/‖w‖₂``. For a first layer
``W x`` (W of shape m×d) the weight perturbation ``ΔW = W δ xᵀ/‖x‖²`` reproduces any input
perturbation δ exactly, ``(W + ΔW) x = W (x + δ)``; the reverse direction, an input δ with
``W δ = ΔW x``, exists for every ΔW exactly when W has full row rank (m ≤ d), and is
``δ = W⁺ ΔW x``.

Everything here is plain NumPy in float64 (these are oracles for tests and labs); the JAX
versions that run inside compiled sweeps are in :mod:`sharp_theory.measure.robustness`. Bad input
is refused in one line naming the parameter, the value and the valid range.

References:
  Zhang, He, Zhu, Chen, Wang, Wei. On the Duality Between Sharpness-Aware Minimization and
    Adversarial Training. ICML 2024 (arXiv 2402.15152), Sec. 3-4 (SAM's weight perturbation as
    a feature perturbation; robust and non-robust features).
  Tsipras, Santurkar, Engstrom, Turner, Madry. Robustness May Be at Odds with Accuracy. ICLR 2019
    (one strongly informative robust feature, many weakly informative non-robust ones).
  Goodfellow, Shlens, Szegedy. Explaining and Harnessing Adversarial Examples. ICLR 2015 (the
    worst ℓ∞ perturbation of a linear score).
"""
from __future__ import annotations

import math

import numpy as np
from scipy.special import ndtr

from ..errors import ConfigError

NORMS = (1, 2, math.inf)
"""The attack norms: ℓ1, ℓ2 and ℓ∞ (``math.inf``, or the string ``"inf"``)."""

_NORM_RANGE = "one of 1, 2, inf"


def check_norm(norm) -> float:
    """The attack norm p as a float, refused unless it is 1, 2 or ∞.

    Args:
      norm: 1, 2, ``math.inf`` / ``np.inf`` or the string ``"inf"``.

    Returns:
      ``1.0``, ``2.0`` or ``math.inf``.

    Raises:
      ConfigError: any other value.
    """
    if isinstance(norm, str):
        if norm.strip().lower() in ("inf", "infinity", "linf"):
            return math.inf
        raise ConfigError("norm", norm, _NORM_RANGE)
    if isinstance(norm, bool):
        raise ConfigError("norm", norm, _NORM_RANGE)
    try:
        p = float(norm)
    except (TypeError, ValueError):
        raise ConfigError("norm", norm, _NORM_RANGE) from None
    if p not in NORMS:
        raise ConfigError("norm", norm, _NORM_RANGE)
    return p


def dual_exponent(norm) -> float:
    """The dual exponent q of the attack norm p (1/p + 1/q = 1).

    Args:
      norm: the attack norm p: 1, 2 or ∞.

    Returns:
      q: ∞ for p = 1, 2 for p = 2, 1 for p = ∞.

    Raises:
      ConfigError: a norm other than 1, 2, ∞.
    """
    p = check_norm(norm)
    return {1.0: math.inf, 2.0: 2.0, math.inf: 1.0}[p]


def _vector(parameter: str, value, *, nonzero: bool = False) -> np.ndarray:
    array = np.asarray(value, dtype=float) if not isinstance(value, str) else None
    if array is None or array.ndim != 1 or array.size == 0:
        raise ConfigError(parameter, value, "a non-empty 1-d array of numbers")
    if not np.all(np.isfinite(array)):
        raise ConfigError(parameter, value, "finite values")
    if nonzero and not np.any(array):
        raise ConfigError(parameter, value, "a vector that is not all zeros")
    return array


def _radius(parameter: str, value) -> float:
    try:
        radius = float(value)
    except (TypeError, ValueError):
        raise ConfigError(parameter, value, "a finite number >= 0") from None
    if isinstance(value, bool) or not (math.isfinite(radius) and radius >= 0):
        raise ConfigError(parameter, value, "a finite number >= 0")
    return radius


def check_covariance(covariance, dimension: int) -> np.ndarray:
    """A covariance matrix of the given dimension, refused unless symmetric positive semidefinite.

    Args:
      covariance: a d×d array.
      dimension: d.

    Returns:
      The matrix as float64.

    Raises:
      ConfigError: wrong shape, non-finite, asymmetric, or an eigenvalue below −1e-10·scale.
    """
    array = np.asarray(covariance, dtype=float)
    if array.shape != (dimension, dimension):
        raise ConfigError("covariance", f"an array of shape {array.shape}",
                          f"a {dimension}x{dimension} matrix (the length of w and mean)")
    if not np.all(np.isfinite(array)):
        raise ConfigError("covariance", covariance, "finite values")
    scale = max(float(np.max(np.abs(array))), 1.0)
    if not np.allclose(array, array.T, rtol=0.0, atol=1e-12 * scale):
        raise ConfigError("covariance", "an asymmetric matrix", "a symmetric PSD matrix")
    smallest = float(np.linalg.eigvalsh(array)[0])
    if smallest < -1e-10 * scale:
        raise ConfigError("covariance", f"a matrix with eigenvalue {smallest:.3g}",
                          "a positive semidefinite matrix (every eigenvalue >= 0)")
    return array


def linear_margin_drop(w, epsilon, norm=2) -> float:
    """How much the worst ℓ_p input perturbation of radius ε lowers the margin ``y·wᵀx``.

    Args:
      w: the weight vector (1-d).
      epsilon: the attack radius ε ≥ 0.
      norm: the attack norm p ∈ {1, 2, ∞}.

    Returns:
      ``ε‖w‖_q`` with ``1/p + 1/q = 1``.

    Raises:
      ConfigError: ε < 0, a norm other than 1, 2, ∞, or a bad ``w``.

    References:
      Hölder's inequality; Goodfellow, Shlens, Szegedy 2015 (p = ∞).
    """
    w = _vector("w", w)
    epsilon = _radius("epsilon", epsilon)
    return epsilon * float(np.linalg.norm(w, ord=dual_exponent(norm)))


def worst_linear_perturbation(w, y, epsilon, norm=2) -> np.ndarray:
    """The input perturbation of ℓ_p norm ε that lowers the margin ``y·wᵀx`` the most.

    ``δ = −y·ε·u`` with u the unit-ℓ_p vector maximizing ``wᵀu``: ``w/‖w‖₂`` (p = 2),
    ``sign(w)`` (p = ∞), and ``sign(w_i)·e_i`` at the largest ``|w_i|`` (p = 1). Its margin drop
    equals :func:`linear_margin_drop`.

    Args:
      w: the weight vector (1-d, not all zeros).
      y: the label, +1 or −1.
      epsilon: the attack radius ε ≥ 0.
      norm: the attack norm p ∈ {1, 2, ∞}.

    Returns:
      δ, an array like ``w``.

    Raises:
      ConfigError: ε < 0, a norm other than 1, 2, ∞, ``y`` not ±1, or ``w`` all zeros.
    """
    w = _vector("w", w, nonzero=True)
    epsilon = _radius("epsilon", epsilon)
    p = check_norm(norm)
    if y not in (1, -1):
        raise ConfigError("y", y, "+1 or -1")
    if p == 2.0:
        direction = w / np.linalg.norm(w)
    elif p == math.inf:
        direction = np.sign(w)
    else:
        direction = np.zeros_like(w)
        index = int(np.argmax(np.abs(w)))
        direction[index] = np.sign(w[index])
    return -float(y) * epsilon * direction


def gaussian_linear_accuracy(w, mean, covariance, epsilon=0.0, norm=2) -> float:
    """The accuracy of ``sign(wᵀx)`` on a symmetric Gaussian mixture under the worst ℓ_p attack.

    Labels ``y = ±1`` are equiprobable and ``x | y ~ N(y·mean, covariance)``. Every example is
    attacked by its own worst perturbation of ℓ_p norm ≤ ε, which lowers its margin by ``ε‖w‖_q``
    (see :func:`linear_margin_drop`); the margin ``y·wᵀx`` is ``N(wᵀμ, wᵀΣw)`` for either label,
    so the robust accuracy is ``Φ((wᵀμ − ε‖w‖_q)/sqrt(wᵀΣw))``. With ε = 0 it is the clean
    accuracy. A score with zero variance (``wᵀΣw = 0``) is deterministic: accuracy 1 if its margin
    is positive, else 0 (a tie, margin 0, counts as an error).

    Args:
      w: the weight vector (1-d, not all zeros).
      mean: μ, the mean of the class y = +1 (same length as ``w``).
      covariance: Σ, a symmetric positive semidefinite d×d matrix.
      epsilon: the attack radius ε ≥ 0 (0: clean accuracy).
      norm: the attack norm p ∈ {1, 2, ∞} (``math.inf`` or ``"inf"`` for ℓ∞).

    Returns:
      The accuracy, a float in [0, 1].

    Raises:
      ConfigError: ε < 0, a norm other than 1, 2, ∞, a covariance that is not PSD or not d×d,
        ``mean`` of another length than ``w``, or ``w`` all zeros.

    References:
      Tsipras et al. 2019 (the Gaussian robust/non-robust feature model); Zhang et al. 2024,
      Sec. 4.

    Examples:
      >>> import numpy as np
      >>> round(gaussian_linear_accuracy([1.0, 0.0], [1.0, 0.0], np.eye(2)), 6)  # Φ(1)
      0.841345
      >>> round(gaussian_linear_accuracy([1.0, 0.0], [1.0, 0.0], np.eye(2), 1.0, "inf"), 6)
      0.5
    """
    w = _vector("w", w, nonzero=True)
    mean = _vector("mean", mean)
    if mean.shape != w.shape:
        raise ConfigError("mean", f"an array of length {mean.size}",
                          f"a vector of the length of w ({w.size})")
    covariance = check_covariance(covariance, w.size)
    drop = linear_margin_drop(w, epsilon, norm)
    margin = float(w @ mean) - drop
    variance = float(w @ covariance @ w)
    if variance <= 0.0:
        return 1.0 if margin > 0 else 0.0
    return float(ndtr(margin / math.sqrt(variance)))


def weight_perturbation_margin_drop(x, rho) -> float:
    """How much the worst weight perturbation ``‖Δw‖₂ ≤ ρ`` lowers the margin ``y·wᵀx`` of one
    example: ``ρ‖x‖₂``, attained by ``Δw = −ρ·y·x/‖x‖₂`` (the per-example SAM perturbation of a
    linear score, up to its loss-derivative factor).

    Args:
      x: the input (1-d).
      rho: the weight-perturbation radius ρ ≥ 0.

    Returns:
      ``ρ‖x‖₂``.

    Raises:
      ConfigError: ρ < 0 or a bad ``x``.

    References:
      Zhang et al. 2024, Sec. 3 (the weight perturbation seen as a feature perturbation).
    """
    x = _vector("x", x)
    return _radius("rho", rho) * float(np.linalg.norm(x))


def equivalent_input_radius(rho, x_norm, w_norm) -> float:
    """The ℓ2 input radius whose worst attack lowers a linear margin as much as the worst weight
    perturbation of radius ρ: ``ε = ρ‖x‖₂/‖w‖₂``.

    Args:
      rho: the weight-perturbation radius ρ ≥ 0.
      x_norm: ‖x‖₂ > 0 (a typical input norm).
      w_norm: ‖w‖₂ > 0.

    Returns:
      ε.

    Raises:
      ConfigError: ρ < 0 or a norm that is not > 0.
    """
    rho = _radius("rho", rho)
    for name, value in (("x_norm", x_norm), ("w_norm", w_norm)):
        if _radius(name, value) <= 0:
            raise ConfigError(name, value, "a finite number > 0")
    return rho * float(x_norm) / float(w_norm)


def _first_layer(W, x):
    W = np.asarray(W, dtype=float)
    if W.ndim != 2 or W.size == 0 or not np.all(np.isfinite(W)):
        raise ConfigError("W", f"an array of shape {W.shape}", "a finite m x d matrix")
    x = _vector("x", x, nonzero=True)
    if x.size != W.shape[1]:
        raise ConfigError("x", f"an array of length {x.size}",
                          f"a vector of length d = {W.shape[1]} (W's columns)")
    return W, x


def weight_perturbation_for_input(W, x, delta) -> np.ndarray:
    """The first-layer weight perturbation that reproduces an input perturbation on one input:
    ``ΔW = W δ xᵀ/‖x‖²``, so that ``(W + ΔW) x = W (x + δ)`` exactly.

    Args:
      W: the first layer, an m×d matrix.
      x: the input (length d, not all zeros).
      delta: the input perturbation δ (length d).

    Returns:
      ΔW, an m×d matrix (its Frobenius norm is ``‖Wδ‖₂/‖x‖₂``).

    Raises:
      ConfigError: shapes that do not fit, or ``x`` all zeros.

    References:
      Zhang et al. 2024, Sec. 3.
    """
    W, x = _first_layer(W, x)
    delta = _vector("delta", delta)
    if delta.shape != x.shape:
        raise ConfigError("delta", f"an array of length {delta.size}",
                          f"a vector of the length of x ({x.size})")
    return np.outer(W @ delta, x) / float(x @ x)


def input_perturbation_for_weights(W, x, delta_W) -> np.ndarray:
    """The input perturbation that reproduces a first-layer weight perturbation on one input: the
    minimum-norm δ with ``W δ = ΔW x``, ``δ = W⁺ ΔW x``.

    It reproduces ΔW exactly (``W (x + δ) = (W + ΔW) x``) for every ΔW when W has full row rank
    (m ≤ d); otherwise only when ``ΔW x`` lies in the range of W, and the result is the
    least-squares δ (see :func:`has_full_row_rank`).

    Args:
      W: the first layer, an m×d matrix.
      x: the input (length d, not all zeros).
      delta_W: ΔW, an m×d matrix.

    Returns:
      δ, a vector of length d.

    Raises:
      ConfigError: shapes that do not fit.

    References:
      Zhang et al. 2024, Sec. 3.
    """
    W, x = _first_layer(W, x)
    delta_W = np.asarray(delta_W, dtype=float)
    if delta_W.shape != W.shape or not np.all(np.isfinite(delta_W)):
        raise ConfigError("delta_W", f"an array of shape {delta_W.shape}",
                          f"a finite matrix of W's shape {W.shape}")
    return np.linalg.pinv(W) @ (delta_W @ x)


def has_full_row_rank(W) -> bool:
    """Whether the first layer W (m×d) has rank m, the condition under which every weight
    perturbation ΔW has an input perturbation reproducing it.

    Args:
      W: an m×d matrix.

    Returns:
      True when rank(W) = m.
    """
    W = np.asarray(W, dtype=float)
    return bool(W.ndim == 2 and np.linalg.matrix_rank(W) == W.shape[0])
