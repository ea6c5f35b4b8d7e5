"""Adversarial robustness of classifiers, measured exactly where the score is linear in the input
and by PGD otherwise, with the feature weights that explain it.

Every function here is pure JAX (jit- and vmap-friendly), so it can run as an observable inside
``st.run``/``st.sweep`` or on a sweep's final parameters:

- :func:`linear_robust_accuracy`: the closed form Φ((wᵀμ − ε‖w‖_q)/sqrt(wᵀΣw)) of
  :func:`sharp_theory.theory.robustness.gaussian_linear_accuracy` (the NumPy oracle, which
  validates its input) as JAX code;
- :func:`pgd_robust_accuracy`: the accuracy on a sample under a PGD attack on each margin
  (:func:`sharp_theory.optim.pgd_perturbation`); on a linear score one step is the exact attack,
  and a test checks the two against each other;
- :func:`robust_accuracy`: either, by the problem's model;
- :func:`effective_weights`, :func:`robust_weight_ratio`: the input weights a model uses
  (its mean input gradient; ``w`` itself for a linear score) and the weight on the robust feature
  against the ℓ1 weight on the non-robust ones;
- :func:`input_gradient_norm`: the mean dual norm of the input gradient of the loss (the
  first-order growth of the loss under an attack).

Models and data are those of :func:`sharp_theory.problems.robust_features`.

References:
  Zhang, He, Zhu, Chen, Wang, Wei. On the Duality Between Sharpness-Aware Minimization and
    Adversarial Training. ICML 2024 (robust accuracy by PGD; robust-feature weights, Sec. 4).
  Madry et al. ICLR 2018 (PGD).
"""
from __future__ import annotations

import math

import jax
import jax.numpy as jnp
from jax.scipy.special import ndtr

from ..errors import ConfigError
from ..optim.adversarial import check_attack_norm, pgd_perturbation
from ..problems.feature_mixture import LINEAR_SCORE_MODELS, FeatureClassifier


def _dual_norm(vector, norm: float):
    if norm == math.inf:
        return jnp.sum(jnp.abs(vector), axis=-1)
    if norm == 1.0:
        return jnp.max(jnp.abs(vector), axis=-1)
    return jnp.sqrt(jnp.sum(vector * vector, axis=-1))


def linear_robust_accuracy(w, mean, covariance, epsilon, norm=math.inf):
    """The accuracy of ``sign(wᵀx)`` on ``x | y ~ N(y·mean, covariance)`` under the worst ℓ_p
    attack of radius ε: ``Φ((wᵀμ − ε‖w‖_q)/sqrt(wᵀΣw))`` (JAX; no input validation, see
    :func:`sharp_theory.theory.robustness.gaussian_linear_accuracy` for the checked oracle).

    Args:
      w: the weights, shape (d,) (not all zeros).
      mean: μ, shape (d,).
      covariance: Σ, shape (d, d), positive definite along w.
      epsilon: the radius ε ≥ 0 (may be traced or an array: broadcast).
      norm: the attack norm, 1, 2 or ∞ (static).

    Returns:
      The accuracy (a JAX scalar, or an array shaped like ``epsilon``).

    References:
      Tsipras et al. 2019; Zhang et al. 2024, Sec. 4.
    """
    norm = float(norm) if norm != "inf" else math.inf
    if norm not in (1.0, 2.0, math.inf):
        raise ConfigError("norm", norm, "one of 1, 2, inf")
    margin = w @ mean - jnp.asarray(epsilon) * _dual_norm(w, norm)
    return ndtr(margin / jnp.sqrt(w @ covariance @ w))


def _classifier(problem) -> FeatureClassifier:
    objective = getattr(problem, "objective", None)
    if not isinstance(objective, FeatureClassifier):
        raise ConfigError("problem", getattr(problem, "name", type(problem).__name__),
                          "a problem built by st.problems.robust_features")
    return objective


def pgd_robust_accuracy(problem, params, epsilon, *, norm=math.inf, steps: int = 10,
                        x=None, y=None):
    """The accuracy under a PGD attack on each example's margin ``y·s(x + δ)``, ``‖δ‖_p ≤ ε``.

    PGD starts at δ = 0 and takes ``steps`` steps of 2.5·ε/steps (one step of ε when
    ``steps=1``) along the dual-norm direction that lowers the margin, projecting back on the
    ball. On a score linear in x the first step already reaches the exact worst perturbation.

    Args:
      problem: a problem of :func:`sharp_theory.problems.robust_features`.
      params: its parameters.
      epsilon: the attack radius ε ≥ 0.
      norm: 2 or ∞.
      steps: PGD steps (≥ 1, static).
      x: inputs (default: the problem's test set ``x_test``).
      y: labels ±1 (default ``y_test``).

    Returns:
      The fraction of examples whose attacked margin stays > 0.

    References:
      Madry et al. 2018.
    """
    classifier = _classifier(problem)
    norm = check_attack_norm(norm)
    x = problem.constants["x_test"] if x is None else x
    y = problem.constants["y_test"] if y is None else y
    step_size = 1.0 if steps == 1 else 2.5 / steps

    def negative_margins(inputs):
        return -jnp.sum(y * classifier.score(params, inputs))

    delta = pgd_perturbation(negative_margins, x, epsilon, norm=norm, steps=steps,
                             step_size=step_size)
    return jnp.mean((y * classifier.score(params, x + delta) > 0).astype(x.dtype))


def effective_weights(problem, params, x=None):
    """The input weights a model uses: the mean input gradient of its score, ``E[∇_x s(x)]``.

    For the linear model it is w itself, for the diagonal network u⊙v (both exact, independent of
    x); for the ReLU network it is averaged over ``x`` (default: the test set).

    Args:
      problem: a problem of :func:`sharp_theory.problems.robust_features`.
      params: its parameters.
      x: inputs to average over (default ``x_test``).

    Returns:
      A vector of length d (coordinate 0 is the robust feature).
    """
    classifier = _classifier(problem)
    if classifier.model == "linear":
        return params
    if classifier.model == "diagonal":
        return params["u"] * params["v"]
    x = problem.constants["x_test"] if x is None else x
    gradients = jax.grad(lambda inputs: jnp.sum(classifier.score(params, inputs)))(x)
    return jnp.mean(gradients, axis=0)


def robust_weight_ratio(weights):
    """The weight on the robust feature against the ℓ1 weight on the non-robust ones:
    ``|β₀| / Σ_{j≥1} |β_j|`` (coordinate 0 robust, as in
    :func:`sharp_theory.problems.robust_features`). An ℓ∞ attack of radius ε costs a linear score
    ε‖β‖₁, so the larger this ratio, the less of the margin the attack can take.

    Args:
      weights: β, a vector of length ≥ 2 (e.g. :func:`effective_weights`).

    Returns:
      The ratio (a JAX scalar; ∞ if every non-robust weight is 0 and w₀ is not, NaN at w = 0,
      e.g. the linear model's zero start).
    """
    weights = jnp.asarray(weights)
    return jnp.abs(weights[0]) / jnp.sum(jnp.abs(weights[1:]))


def robust_accuracy(problem, params, epsilon, *, norm=math.inf, steps: int = 10):
    """The robust accuracy of a :func:`~sharp_theory.problems.robust_features` model: exact on the
    population for the linear and diagonal models (their score is linear in x, see
    :func:`linear_robust_accuracy`), by PGD on the test set for the ReLU network
    (:func:`pgd_robust_accuracy`).

    Args:
      problem: the problem.
      params: its parameters.
      epsilon: the attack radius ε ≥ 0 (0: clean accuracy).
      norm: 2 or ∞.
      steps: PGD steps for the ReLU network.

    Returns:
      The accuracy (a JAX scalar).
    """
    classifier = _classifier(problem)
    norm = check_attack_norm(norm)
    if classifier.model in LINEAR_SCORE_MODELS:
        return linear_robust_accuracy(effective_weights(problem, params), problem.constants["mean"],
                                      problem.constants["covariance"], epsilon, norm)
    return pgd_robust_accuracy(problem, params, epsilon, norm=norm, steps=steps)


def input_gradient_norm(problem, params, *, norm=math.inf, x=None, y=None):
    """The mean dual norm ``E‖∇_x ℓ(y·s(x))‖_q`` of the loss's input gradient (q dual to the
    attack norm p): how fast the loss grows under a small ℓ_p attack, to first order.

    Args:
      problem: a problem of :func:`sharp_theory.problems.robust_features`.
      params: its parameters.
      norm: the attack norm, 2 or ∞.
      x: inputs (default ``x_test``).
      y: labels (default ``y_test``).

    Returns:
      The mean over examples (a JAX scalar).
    """
    classifier = _classifier(problem)
    norm = check_attack_norm(norm)
    x = problem.constants["x_test"] if x is None else x
    y = problem.constants["y_test"] if y is None else y
    gradients = jax.grad(
        lambda inputs: jnp.sum(classifier.margin_loss(y * classifier.score(params, inputs))))(x)
    return jnp.mean(_dual_norm(gradients, norm))
