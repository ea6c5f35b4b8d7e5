"""Binary classification of a Gaussian mixture with one robust and many non-robust features.

Labels ``y = ±1`` are equiprobable; given y the input ``x ∈ R^{1+k}`` is Gaussian with mean
``y·μ`` and covariance ``σ²I``, where ``μ = (a, η, …, η)``: coordinate 0 is the *robust* feature
(strongly informative, ``a`` large against an attack's radius) and coordinates 1..k are the k
*non-robust* features (each weakly informative, ``η`` small, together informative because k is
large). A classifier that leans on the non-robust features is accurate but fragile: an ℓ∞ attack
of radius ε ≥ η erases each of them. This is the Gaussian version of the robust/non-robust
feature model of Tsipras et al. (2019) used by Zhang et al. (2024, Sec. 4).

Exact population quantities are constants of the problem (``mean`` = μ, ``covariance`` = σ²I),
so the clean and robust accuracy of any linear score is a closed form
(:func:`sharp_theory.theory.robustness.gaussian_linear_accuracy`); a test set drawn from the
same law (``x_test``, ``y_test``) serves the non-linear models.

Models (``model=``), each scoring an input x:

- ``"linear"``: ``s(x) = wᵀx``, parameters ``w`` (zeros at the start);
- ``"diagonal"``: a diagonal network ``s(x) = (u⊙v)ᵀx``, parameters ``{"u", "v"}`` (both
  ``init_scale·1``);
- ``"relu"``: a two-layer ReLU network ``s(x) = aᵀ relu(W x)``, parameters ``{"W", "a"}`` (W of
  shape width×(1+k) with N(0, init_scale²/(1+k)) entries, a = ±1/√width), drawn from the seed.

Losses (``loss=``) of the margin ``m = y·s(x)``: ``"logistic"`` ``log(1 + e^{−m})`` and
``"squared"`` ``½(1 − m)²``; the objective is their mean over the batch ``{"x", "y"}``.

References:
  Tsipras, Santurkar, Engstrom, Turner, Madry. Robustness May Be at Odds with Accuracy. ICLR 2019.
  Zhang, He, Zhu, Chen, Wang, Wei. On the Duality Between Sharpness-Aware Minimization and
    Adversarial Training. ICML 2024 (arXiv 2402.15152), Sec. 4.
"""
from __future__ import annotations

import dataclasses
import math

import jax
import jax.numpy as jnp
import numpy as np

from ..errors import ConfigError, check_choice, check_int
from .base import Problem

MODELS = ("linear", "diagonal", "relu")
"""The models of :func:`robust_features`."""
LOSSES = ("logistic", "squared")
"""The losses of :func:`robust_features`."""
LINEAR_SCORE_MODELS = ("linear", "diagonal")
"""Models whose score is linear in the input (robust accuracy in closed form)."""


def _positive(parameter, value) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ConfigError(parameter, value, "a finite number > 0") from None
    if isinstance(value, bool) or not (math.isfinite(number) and number > 0):
        raise ConfigError(parameter, value, "a finite number > 0")
    return number


@dataclasses.dataclass(frozen=True)
class FeatureClassifier:
    """The objective of :func:`robust_features`: the mean loss of the margins ``y·s(x)``.

    Attributes:
      model: one of :data:`MODELS`.
      loss: one of :data:`LOSSES`.
    """

    model: str
    loss: str

    def score(self, params, x):
        """The scores s(x) of a batch of inputs x (shape n×d) -> shape (n,)."""
        if self.model == "linear":
            return x @ params
        if self.model == "diagonal":
            return x @ (params["u"] * params["v"])
        return jax.nn.relu(x @ params["W"].T) @ params["a"]

    def margin_loss(self, margins):
        """The per-example loss of the margins."""
        if self.loss == "logistic":
            return jnp.logaddexp(jnp.zeros_like(margins), -margins)
        return 0.5 * (1.0 - margins) ** 2

    def outputs(self, params, batch, constants):
        return self.score(params, batch["x"])

    def loss_of_outputs(self, outputs, batch, constants):
        return jnp.mean(self.margin_loss(batch["y"] * outputs))

    def __call__(self, params, batch, constants):
        return self.loss_of_outputs(self.outputs(params, batch, constants), batch, constants)


@dataclasses.dataclass(frozen=True)
class _Scores:
    """``outputs_fn`` of the problem; compares by value (a bound method would compare by the
    identity of its classifier, and every new problem would compile its sweep anew)."""

    classifier: FeatureClassifier

    def __call__(self, params, batch, constants):
        return self.classifier.outputs(params, batch, constants)


@dataclasses.dataclass(frozen=True)
class _LossOfScores:
    """``loss_of_outputs_fn`` of the problem (by value, see :class:`_Scores`)."""

    classifier: FeatureClassifier

    def __call__(self, outputs, batch, constants):
        return self.classifier.loss_of_outputs(outputs, batch, constants)


def sample_mixture(rng: np.random.Generator, n: int, mean, noise) -> dict:
    """``n`` draws of the mixture: y = ±1 equiprobable, x = y·mean + noise·z, z ~ N(0, I).

    Args:
      rng: a NumPy generator (``np.random.default_rng(seed)``), consumed in the order y, z.
      n: the number of examples.
      mean: μ, shape (d,).
      noise: σ.

    Returns:
      ``{"x": (n, d), "y": (n,)}`` float64 JAX arrays.
    """
    mean = np.asarray(mean, dtype=np.float64)
    y = rng.choice(np.array([-1.0, 1.0]), size=n)
    x = y[:, None] * mean[None, :] + noise * rng.standard_normal((n, mean.shape[0]))
    return {"x": jnp.asarray(x), "y": jnp.asarray(y)}


@dataclasses.dataclass(frozen=True)
class _ReluInitializer:
    width: int
    dimension: int
    init_scale: float

    def __call__(self, key, constants):
        w_key, a_key = jax.random.split(key)
        W = self.init_scale / math.sqrt(self.dimension) * jax.random.normal(
            w_key, (self.width, self.dimension), jnp.float64)
        signs = jnp.where(jax.random.bernoulli(a_key, 0.5, (self.width,)), 1.0, -1.0)
        return {"W": W, "a": signs / math.sqrt(self.width)}


def robust_features(*, model: str = "linear", loss: str = "logistic", n: int = 200,
                    n_nonrobust: int = 20, robust_mean: float = 1.0, nonrobust_mean: float = 0.2,
                    noise: float = 1.0, width: int = 16, init_scale: float = 0.1,
                    n_test: int = 4000, seed: int = 0) -> Problem:
    """Classification of the robust/non-robust Gaussian mixture by a linear, diagonal or ReLU model.

    Args:
      model: "linear", "diagonal" or "relu" (see the module).
      loss: "logistic" or "squared".
      n: training examples (≥ 2), drawn once from ``seed``.
      n_nonrobust: k, the number of non-robust features (≥ 1).
      robust_mean: a > 0, the robust feature's class mean.
      nonrobust_mean: η > 0, each non-robust feature's class mean.
      noise: σ > 0, the standard deviation of every feature.
      width: hidden units of the ReLU model (≥ 1; ignored by the others).
      init_scale: the scale of the initialization (> 0; the linear model starts at 0).
      n_test: test examples for measures that sample (≥ 1).
      seed: the data's seed (≥ 0): the training set, then the test set, are drawn by
        ``np.random.default_rng(seed)``; the ReLU model's ``params0`` by ``jax.random.key(seed)``,
        and ``problem.init(key)`` draws a ReLU initialization per key.

    Returns:
      A :class:`Problem` with examples ``{"x", "y"}``, constants ``mean`` (μ), ``covariance``
      (σ²I), ``x_test``, ``y_test``, and the output split (scores). Its ``objective`` is a
      :class:`FeatureClassifier` (``problem.objective.score(params, x)``).

    Raises:
      ConfigError: a value outside its range, before any work.

    References:
      Tsipras et al. 2019; Zhang et al. 2024, Sec. 4.

    Examples:
      >>> import sharp_theory as st
      >>> problem = st.problems.robust_features(n=50, n_nonrobust=10)
      >>> problem.constants["mean"][:3].tolist(), problem.examples["x"].shape
      ([1.0, 0.2, 0.2], (50, 11))
    """
    check_choice("model", model, MODELS)
    check_choice("loss", loss, LOSSES)
    n = check_int("n", n, minimum=2)
    k = check_int("n_nonrobust", n_nonrobust, minimum=1)
    width = check_int("width", width, minimum=1)
    n_test = check_int("n_test", n_test, minimum=1)
    seed = check_int("seed", seed, minimum=0)
    a = _positive("robust_mean", robust_mean)
    eta = _positive("nonrobust_mean", nonrobust_mean)
    sigma = _positive("noise", noise)
    init_scale = _positive("init_scale", init_scale)
    d = 1 + k
    mean = np.concatenate([[a], np.full(k, eta)])
    rng = np.random.default_rng(seed)
    train = sample_mixture(rng, n, mean, sigma)
    test = sample_mixture(rng, n_test, mean, sigma)
    initializer = None
    if model == "linear":
        params0 = jnp.zeros(d, jnp.float64)
    elif model == "diagonal":
        params0 = {"u": jnp.full(d, init_scale), "v": jnp.full(d, init_scale)}
    else:
        initializer = _ReluInitializer(width, d, init_scale)
        params0 = initializer(jax.random.key(seed), None)
    objective = FeatureClassifier(model, loss)
    constants = {"mean": jnp.asarray(mean), "covariance": jnp.asarray(sigma ** 2 * np.eye(d)),
                 "x_test": test["x"],
                 "y_test": test["y"]}
    return Problem(objective=objective, params0=params0, constants=constants, examples=train,
                   initializer=initializer, name=f"robust-features-{model}-{loss}",
                   outputs_fn=_Scores(objective), loss_of_outputs_fn=_LossOfScores(objective))
