"""The public API is curated: the names below are what users get, no constructor shadows its
module, no private name is exported, and ``import sharp_theory`` loads no plotting library."""
from __future__ import annotations

import importlib
import pkgutil
import subprocess
import sys
import types
from pathlib import Path

import pytest

import sharp_theory as st

ROOT = Path(__file__).resolve().parent.parent

PUBLIC = {
    "sharp_theory": {
        "problems", "optim", "dynamics", "observables", "measure", "theory", "studies", "claims",
        "labkit", "plotting", "testing", "run", "sweep", "flow", "Trajectory", "SweepResult",
        "ConfigError", "__version__"},
    "sharp_theory.problems": {
        "Problem", "from_loss", "op_toy", "nop_toy", "scalar_product", "outer_product", "lora",
        "matrix_sensing", "matrix_sensing_measurements", "diagonal_linear",
        "conv_relu_signal_noise", "softmax_bigram", "from_model", "robust_features",
        # issue 26: task sequences for forgetting
        "least_squares_task", "sequential_regression", "bigram_fine_tuning",
        "diagonal_fine_tuning", "low_rank_fine_tuning", "FineTuningTasks"},
    "sharp_theory.optim": {
        "gd", "sgd", "sam", "usam", "nbar", "obar", "asam", "looksam", "ssam",
        "random_perturbation", "lpf_sgd", "rwp", "swa", "wasam", "rst", "ae_sam", "flat_lora",
        "preconditioned_sam", "functional_sam", "lets", "saf", "CONSTRUCTORS",
        "Base", "Optimizer", "StepRule", "make_optimizer", "domains", "initial_state", "step_info",
        "descend", "gradient", "loss_and_gradient", "base_step", "as_base", "plain", "momentum",
        "adam", "adamw", "adam_moments", "custom",
        "GradientDescent", "SharpnessAware", "BalancednessAware", "AdaptiveSAM", "LookSAM",
        "SparseSAM", "RandomPerturbation", "WeightAveraging", "RandomSwitching",
        "AdaptiveSwitching", "FlatLoRA", "PreconditionedSAM", "FunctionalSAM", "LearnedRadius",
        "TrajectoryConsistency",
        "ascent_direction", "sam_gradient", "adaptive_ascent_direction", "preconditioned_ascent",
        "gaussian_perturbation", "smoothed_gradient", "alpha_schedule", "SCHEDULES",
        "OutputModel", "check_output_model", "averaged_weights", "live_iterate",
        # issue 30: the rest of the family
        "gsam", "friendly_sam", "momentum_sam", "s2_sam", "sampa", "lookahead_sam", "cr_sam",
        "r_sam", "delta_sam", "mup2_sam", "frob_sam", "det_sam", "late_phase",
        "SurrogateGap", "CurvatureRegularizedSAM", "HessianMeasurePenalty", "MomentumSAM",
        "SingleStepSAM", "ParallelSAM", "LookaheadSAM", "FriendlySAM", "RandomSmoothingSAM",
        "ReweightedSAM", "LayerwiseSAM", "LatePhase", "orthogonal_correction",
        "trace_gradient_estimate", "measure_gradient_estimate", "HESSIAN_MEASURES",
        "parallel_gradients", "per_example_gradients", "instance_weights", "spectral_scales",
        "layerwise_perturbation",
        # issue 27: adversarial training
        "adversarial_training", "AdversarialTraining", "ATTACK_NORMS", "pgd_perturbation",
        "dual_step_direction", "project_to_ball"},
    "sharp_theory.dynamics": {
        "run", "sweep", "simulate", "Trajectory", "SweepResult", "Observable", "as_observables",
        "evaluation_loss", "record_steps", "lane_mesh", "flow", "flow_kinds_for",
        "integrate_flow", "FLOW_KINDS", "RunInterrupted", "estimate_run_memory",
        "seed_key_data", "StallError", "wait_for"},
    "sharp_theory.measure": {
        "balancedness", "gradient_imbalance", "sam_balancedness_drift", "flat_function", "hessian",
        "hessian_eigenvalues", "hessian_vector_product", "lambda_max", "hessian_trace",
        "top_hessian_eigenpairs", "top_hessian_eigenvalues", "eigenvalue_ratio",
        "hessian_frobenius_norm", "hessian_spectrum", "spectral_density", "hutchinson_trace",
        "effective_dimensionality", "lanczos", "parameter_count", "full_batch_loss", "Eigenpairs",
        "Estimate", "Spectrum", "adaptive_sharpness", "average_sharpness", "epsilon_sharpness",
        "fisher_rao_norm", "local_entropy", "m_sharpness", "sam_pac_bayes_bound",
        "sam_pac_bayes_complexity", "low_rank", "scaled_hessian_trace",
        "scaled_hessian_trace_closed_form", "scaled_hessian_trace_hutchinson",
        "factor_balancedness_gap", "product_nuclear_norm", "norm_minimality_gap",
        "implicit_bias", "effective_initialization", "hyperbolic_entropy", "potential_minimizer",
        "min_l1_interpolator", "min_l2_interpolator", "sharpness", "spectrum",
        "signal_noise_coefficients", "max_noise_coefficient", "max_signal_coefficient",
        "noise_activation_fraction", "aligned_noise_activation_fraction", "logit_path",
        "calibration_temperature", "hessian_split", "logit_statistics", "path_sharpness",
        "sam_update_split", "warm_spectrum", "WarmEigenpairs", "warm_top_eigenpairs",
        "universal", "UNIVERSAL_MEASURES", "universal_sharpness", "universal_sharpness_gradient",
        "robustness", "effective_weights", "input_gradient_norm", "linear_robust_accuracy",
        "pgd_robust_accuracy", "robust_accuracy", "robust_weight_ratio",
        # issue 26: forgetting after fine-tuning
        "forgetting", "exact_forgetting", "quadratic_forgetting", "forgetting_bound",
        "random_directions", "loss_surface", "surface_flatness"},
    "sharp_theory.observables": {
        "loss", "lambda_max", "hessian_trace", "param_norm", "grad_norm", "DENSE_LIMIT",
        "of_params", "of_params_and_problem", "all_of_params", "all_of_params_and_problem",
        "RunState", "WarmObservable", "ParamsObservable", "ParamsAndProblemObservable"},
    "sharp_theory.theory": {"scale_invariant", "low_rank", "diagonal", "stability", "robustness",
                              "forgetting"},
    "sharp_theory.studies": {"convergence", "diagonal_nets", "phase_diagram", "sam_family_more"},
}

PACKAGES = ["sharp_theory", "sharp_theory.problems", "sharp_theory.optim",
            "sharp_theory.dynamics", "sharp_theory.measure", "sharp_theory.theory",
            "sharp_theory.studies", "sharp_theory.claims", "sharp_theory.plotting",
            "sharp_theory.commands"]


@pytest.mark.parametrize("package", sorted(PUBLIC))
def test_the_public_names_are_pinned(package):
    module = importlib.import_module(package)
    assert set(module.__all__) == PUBLIC[package], (
        f"{package}.__all__ changed: added {sorted(set(module.__all__) - PUBLIC[package])}, "
        f"removed {sorted(PUBLIC[package] - set(module.__all__))} (update PUBLIC on purpose)")
    assert len(module.__all__) == len(set(module.__all__)), "a name is exported twice"
    for name in module.__all__:
        assert getattr(module, name) is not None
        assert not name.startswith("_") or name == "__version__"


@pytest.mark.parametrize("package", PACKAGES)
def test_no_attribute_shadows_a_submodule(package):
    """``st.problems.diagonal`` is the module, ``st.problems.diagonal_linear`` the constructor."""
    module = importlib.import_module(package)
    if not hasattr(module, "__path__"):
        return
    for info in pkgutil.iter_modules(module.__path__):
        importlib.import_module(f"{package}.{info.name}")
        value = getattr(module, info.name)
        assert isinstance(value, types.ModuleType), (
            f"{package}.{info.name} is {type(value).__name__}, not the module {info.name}.py")


def test_one_name_per_measure():
    for gone in ("top_hessian_eigenvalue", "exact_hessian_trace", "average_squared_gradient_norm",
                 "squared_gradient_norm", "convergence"):
        assert not hasattr(st.measure, gone), gone


def test_importing_the_package_loads_no_plotting_library():
    code = ("import sys, sharp_theory as st; loaded = [m for m in ('matplotlib', 'sharp_theory.plotting',"
            " 'sharp_theory.labkit') if m in sys.modules]; print(loaded); st.plotting;"
            " print('matplotlib' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT,
                         timeout=120, check=True).stdout.split("\n")
    assert out[0] == "[]", out  # nothing heavy at import
    assert out[1] == "True", out  # st.plotting still works, on first use
