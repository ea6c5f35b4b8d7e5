"""Step rules on one contract (see :mod:`sharp_theory.optim.base`).

Constructors return :class:`Optimizer` objects whose hyperparameters are pytree leaves::

    st.optim.gd(lr=0.1)
    st.optim.sgd(lr=0.1, batch_size=8, replace=False)
    st.optim.sam(lr=0.1, rho=0.05, p=2, m=None)
    st.optim.usam(lr=0.1, rho=0.05)
    st.optim.nbar(lr=0.1, alpha=0.5, schedule="cosine", horizon=10_000)
    st.optim.obar(lr=0.1, alpha=0.5)

Every constructor takes ``base=`` (``"plain"``, ``st.optim.momentum(0.9)``, ``st.optim.adam()``
or any optax transformation without the learning rate).
"""
from __future__ import annotations

from ..errors import ConfigError, check_choice, check_int, check_p_norm
from .bar import SCHEDULES, BalancednessAware, alpha_schedule, factor_pairs
from .base import (Base, Optimizer, StepRule, adam, as_base, base_step, custom, loss_and_gradient,
                   make_hparams, momentum, plain)
from .sam import GradientDescent, SharpnessAware, ascent_direction, sam_gradient, split_into_chunks


def _batching(batch_size, replace):
    if batch_size is not None:
        check_int("batch_size", batch_size, minimum=1)
    if not isinstance(replace, bool):
        raise ConfigError("replace", replace, "True or False")
    return batch_size


def gd(lr, *, base=None, batch_size=None) -> Optimizer:
    """Gradient descent ``w+ = w - lr · base(∇L(w))`` on the full batch.

    Args:
      lr: step size (> 0).
      base: base rule (plain, momentum, adam, or an optax transformation).
      batch_size: None for the full batch (or the problem's own batch for fresh-noise problems).
    """
    return Optimizer(GradientDescent(as_base(base), "gd"), make_hparams(lr=lr),
                     _batching(batch_size, False), False)


def sgd(lr, *, batch_size=1, replace=False, base=None) -> Optimizer:
    """Stochastic gradient descent on mini-batches drawn by the runner.

    Args:
      lr: step size (> 0).
      batch_size: examples per step (>= 1).
      replace: draw with replacement (True) or by shuffled epochs (False).
      base: base rule.
    """
    return Optimizer(GradientDescent(as_base(base), "sgd"), make_hparams(lr=lr),
                     _batching(batch_size, replace), replace)


def sam(lr, rho, *, p=2, m=None, base=None, batch_size=None, replace=False) -> Optimizer:
    """Sharpness-aware minimization with a normalized ascent step (Foret et al. 2021, eq. 2).

    Args:
      lr: step size (> 0).
      rho: radius of the ascent ball (>= 0; 0 gives the base rule bit-for-bit).
      p: norm of the ball, in (1, inf] (2 is the usual SAM).
      m: m-sharpness chunk size (None: the whole batch; 1: per example, "1-SAM").
      base, batch_size, replace: as for :func:`sgd`.
    """
    p = check_p_norm("p", p)
    if m is not None:
        check_int("m", m, minimum=1)
    rule = SharpnessAware(as_base(base), normalize=True, p=p, m=m)
    return Optimizer(rule, make_hparams(lr=lr, rho=rho), _batching(batch_size, replace), replace)


def usam(lr, rho, *, m=None, base=None, batch_size=None, replace=False) -> Optimizer:
    """Unnormalized SAM: ascent ``ε = rho · ∇L`` (Andriushchenko & Flammarion 2022).

    Args: as for :func:`sam` (no ``p``: the ascent is not normalized).
    """
    if m is not None:
        check_int("m", m, minimum=1)
    rule = SharpnessAware(as_base(base), normalize=False, p=2.0, m=m)
    return Optimizer(rule, make_hparams(lr=lr, rho=rho), _batching(batch_size, replace), replace)


def _bar(variant, lr, alpha, schedule, horizon, base, batch_size, replace) -> Optimizer:
    check_choice("schedule", schedule, SCHEDULES)
    if schedule != "constant":
        if horizon is None:
            raise ConfigError("horizon", horizon, f"an integer >= 1 for the {schedule!r} schedule")
        check_int("horizon", horizon, minimum=1)
    rule = BalancednessAware(variant, as_base(base), schedule, horizon)
    return Optimizer(rule, make_hparams(lr=lr, alpha=alpha), _batching(batch_size, replace), replace)


def nbar(lr, alpha, *, schedule="constant", horizon=None, base=None, batch_size=None,
         replace=False) -> Optimizer:
    """nBAR (Li, Zhang, He 2024, Alg. 3): balance towards ‖g_x‖ = ‖g_y‖, one gradient per step.

    Args:
      lr: step size (> 0).
      alpha: regularization strength alpha_0 (>= 0).
      schedule: "constant", "linear" or "cosine" decay of alpha to 0 at ``horizon`` steps.
      horizon: number of steps of the decay (required for linear / cosine).
    """
    return _bar("nbar", lr, alpha, schedule, horizon, base, batch_size, replace)


def obar(lr, alpha, *, schedule="constant", horizon=None, base=None, batch_size=None,
         replace=False) -> Optimizer:
    """oBAR (Li, Zhang, He 2024, Alg. 2): shrink |‖x‖² - ‖y‖²|, one gradient per step.

    Args: as for :func:`nbar`.
    """
    return _bar("obar", lr, alpha, schedule, horizon, base, batch_size, replace)


__all__ = [
    "Base", "Optimizer", "StepRule", "GradientDescent", "SharpnessAware", "BalancednessAware",
    "gd", "sgd", "sam", "usam", "nbar", "obar", "plain", "momentum", "adam", "custom", "as_base",
    "ascent_direction", "sam_gradient", "split_into_chunks", "alpha_schedule", "factor_pairs",
    "base_step", "loss_and_gradient", "make_hparams", "SCHEDULES",
]
from .variants import (AdaptiveSAM, AdaptiveSwitching, FlatLoRA, FunctionalSAM, LearnedRadius,  # noqa: E402
                       LookSAM, OutputModel, PreconditionedSAM, RandomPerturbation, RandomSwitching,
                       SparseSAM, TrajectoryConsistency, WeightAveraging, ae_sam, asam,
                       averaged_weights, check_output_model, flat_lora, functional_sam, lets,
                       live_iterate, looksam, lpf_sgd, preconditioned_sam, random_perturbation, rst,
                       rwp, saf, ssam, swa, wasam)
__all__ += ["AdaptiveSAM", "AdaptiveSwitching", "FlatLoRA", "FunctionalSAM", "LearnedRadius", "LookSAM", "OutputModel", "PreconditionedSAM", "RandomPerturbation", "RandomSwitching", "SparseSAM", "TrajectoryConsistency", "WeightAveraging", "ae_sam", "asam", "averaged_weights", "check_output_model", "flat_lora", "functional_sam", "lets", "live_iterate", "looksam", "lpf_sgd", "preconditioned_sam", "random_perturbation", "rst", "rwp", "saf", "ssam", "swa", "wasam"]
