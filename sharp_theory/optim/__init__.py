"""Step rules on one contract (see :mod:`sharp_theory.optim.base`).

Constructors return :class:`Optimizer` objects whose hyperparameters are pytree leaves::

    st.optim.gd(lr=0.1)
    st.optim.sgd(lr=0.1, batch_size=8, replace=False)
    st.optim.sam(lr=0.1, rho=0.05, p=2, m=None)
    st.optim.usam(lr=0.1, rho=0.05)
    st.optim.nbar(lr=0.1, alpha=0.5, schedule="cosine", horizon=10_000)
    st.optim.obar(lr=0.1, alpha=0.5)

Every constructor takes ``base=`` (``"plain"``, ``st.optim.momentum(0.9)``, ``st.optim.adam()``
or any optax transformation without the learning rate). Modules:

- :mod:`.base`: the contract, the base step, :class:`StepRule`, :func:`make_optimizer`;
- :mod:`.sharpness_aware`: GD/SGD, SAM, USAM (p-norm balls, m-sharpness);
- :mod:`.bar`: nBAR and oBAR;
- the SAM family by theme (one paper card each in papers/sam-family-*.md):
  :mod:`.efficient` (LookSAM, SSAM, RST, AE-SAM), :mod:`.geometry` (ASAM, preconditioned SAM,
  Functional-SAM), :mod:`.averaging` (LPF-SGD, RWP, SWA, WASAM, Flat-LoRA) and :mod:`.learned`
  (LETS, SAF), :mod:`.surrogate` (GSAM, CR-SAM, Frob-SAM, Det-SAM), :mod:`.history`
  (Momentum-SAM, S2-SAM, SAMPa, Lookahead-SAM), :mod:`.perturbation` (Friendly SAM, R-SAM,
  Delta-SAM, μP²) and :mod:`.phase_switch` (late-phase SAM around any rule);
- :mod:`.adversarial`: adversarial training (input perturbations, PGD; exact for linear scores).
"""
from __future__ import annotations

from .adversarial import (ATTACK_NORMS, AdversarialTraining, adversarial_training,
                          dual_step_direction, pgd_perturbation, project_to_ball)
from .averaging import (FlatLoRA, RandomPerturbation, WeightAveraging, averaged_weights, flat_lora,
                        gaussian_perturbation, live_iterate, lpf_sgd, random_perturbation, rwp,
                        smoothed_gradient, swa, wasam)
from .bar import SCHEDULES, BalancednessAware, alpha_schedule, nbar, obar
from .base import (Base, Optimizer, StepRule, adam, adam_moments, adamw, as_base, base_step, custom,
                   descend, domains, gradient, initial_state, loss_and_gradient, make_optimizer,
                   momentum, plain, step_info)
from .efficient import AdaptiveSwitching, LookSAM, RandomSwitching, SparseSAM, ae_sam, looksam, rst, ssam
from .geometry import (AdaptiveSAM, FunctionalSAM, OutputModel, PreconditionedSAM,
                       adaptive_ascent_direction, asam, check_output_model, functional_sam,
                       preconditioned_ascent, preconditioned_sam)
from .learned import LearnedRadius, TrajectoryConsistency, lets, saf
from .sharpness_aware import (GradientDescent, SharpnessAware, ascent_direction, gd, sam,
                              sam_gradient, sgd, usam)
from .history import (LookaheadSAM, MomentumSAM, ParallelSAM, SingleStepSAM, lookahead_sam,
                      momentum_sam, parallel_gradients, s2_sam, sampa)
from .phase_switch import LatePhase, late_phase
from .perturbation import (FriendlySAM, LayerwiseSAM, RandomSmoothingSAM, ReweightedSAM, delta_sam,
                           friendly_sam, instance_weights, layerwise_perturbation, mup2_sam,
                           per_example_gradients, r_sam, spectral_scales)
from .surrogate import (HESSIAN_MEASURES, CurvatureRegularizedSAM, HessianMeasurePenalty,
                        SurrogateGap, cr_sam, det_sam, frob_sam, gsam, measure_gradient_estimate,
                        orthogonal_correction, trace_gradient_estimate)

CONSTRUCTORS = ("gd", "sgd", "sam", "usam", "nbar", "obar", "asam", "looksam", "ssam",
                "random_perturbation", "lpf_sgd", "rwp", "swa", "wasam", "rst", "ae_sam",
                "flat_lora", "preconditioned_sam", "functional_sam", "lets", "saf",
                "gsam", "friendly_sam", "momentum_sam", "s2_sam", "sampa", "lookahead_sam", "cr_sam",
                "r_sam", "delta_sam", "mup2_sam", "frob_sam", "det_sam", "late_phase",
                "adversarial_training")
"""Every optimizer constructor, in the order of the README's tables."""

__all__ = list(CONSTRUCTORS) + [
    "CONSTRUCTORS",
    # the contract and building blocks for new rules
    "Base", "Optimizer", "StepRule", "make_optimizer", "domains", "initial_state", "step_info",
    "descend", "gradient", "loss_and_gradient", "base_step", "as_base", "plain", "momentum",
    "adam", "adamw", "adam_moments", "custom",
    # the rules
    "GradientDescent", "SharpnessAware", "BalancednessAware", "AdaptiveSAM", "LookSAM",
    "SparseSAM", "RandomPerturbation", "WeightAveraging", "RandomSwitching", "AdaptiveSwitching",
    "FlatLoRA", "PreconditionedSAM", "FunctionalSAM", "LearnedRadius", "TrajectoryConsistency",
    "SurrogateGap", "CurvatureRegularizedSAM", "HessianMeasurePenalty", "MomentumSAM",
    "SingleStepSAM", "ParallelSAM", "LookaheadSAM", "FriendlySAM", "RandomSmoothingSAM",
    "ReweightedSAM", "LayerwiseSAM", "LatePhase",
    # pieces of rules that measures, labs and tests use
    "ascent_direction", "sam_gradient", "adaptive_ascent_direction", "preconditioned_ascent",
    "gaussian_perturbation", "smoothed_gradient", "alpha_schedule", "SCHEDULES", "OutputModel",
    "check_output_model", "averaged_weights", "live_iterate",
    "orthogonal_correction", "trace_gradient_estimate", "measure_gradient_estimate",
    "HESSIAN_MEASURES", "parallel_gradients", "per_example_gradients", "instance_weights",
    "spectral_scales", "layerwise_perturbation",
    # issue 27: adversarial training
    "AdversarialTraining", "ATTACK_NORMS", "pgd_perturbation", "dual_step_direction",
    "project_to_ball",
]
