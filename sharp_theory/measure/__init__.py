"""Measures: exact Hessians and spectra, balancedness."""
from .balance import balancedness, gradient_imbalance
from .dense_hessian import flat_function, hessian, hessian_eigenvalues, hessian_vector_product

__all__ = ["balancedness", "gradient_imbalance", "flat_function", "hessian", "hessian_eigenvalues",
           "hessian_vector_product"]
from . import low_rank  # noqa: E402
from .low_rank import (factor_balancedness_gap, norm_minimality_gap, product_nuclear_norm,  # noqa: E402
                       scaled_hessian_trace, scaled_hessian_trace_closed_form,
                       scaled_hessian_trace_hutchinson)
__all__ += ["low_rank", "scaled_hessian_trace", "scaled_hessian_trace_closed_form",
            "scaled_hessian_trace_hutchinson", "factor_balancedness_gap", "product_nuclear_norm",
            "norm_minimality_gap"]
from . import implicit_bias  # noqa: E402
from .implicit_bias import (effective_initialization, hyperbolic_entropy,  # noqa: E402
                            min_l1_interpolator, min_l2_interpolator, potential_minimizer)
__all__ += ["implicit_bias", "effective_initialization", "hyperbolic_entropy",
            "potential_minimizer", "min_l1_interpolator", "min_l2_interpolator"]
from . import sharpness, spectrum  # noqa: E402  (issue 6: sharpness toolkit)
from .spectrum import (Eigenpairs, Estimate, Spectrum, effective_dimensionality, eigenvalue_ratio,  # noqa: E402
                       hessian_trace, full_batch_loss, hessian_frobenius_norm, hessian_spectrum,
                       hutchinson_trace, lambda_max, lanczos, parameter_count, spectral_density,
                       top_hessian_eigenpairs, top_hessian_eigenvalues)
from .sharpness import (adaptive_sharpness, average_sharpness, epsilon_sharpness, fisher_rao_norm,  # noqa: E402
                        local_entropy, m_sharpness, sam_pac_bayes_bound, sam_pac_bayes_complexity)
__all__ += ["sharpness", "spectrum", "Eigenpairs", "Estimate", "Spectrum", "effective_dimensionality",
            "eigenvalue_ratio", "hessian_trace", "full_batch_loss", "hessian_frobenius_norm",
            "hessian_spectrum", "hutchinson_trace", "lambda_max", "lanczos", "parameter_count",
            "spectral_density", "top_hessian_eigenpairs", "top_hessian_eigenvalues",
            "adaptive_sharpness", "average_sharpness", "epsilon_sharpness", "fisher_rao_norm",
            "local_entropy", "m_sharpness", "sam_pac_bayes_bound", "sam_pac_bayes_complexity"]
from .balance import sam_balancedness_drift  # noqa: E402
__all__ += ["sam_balancedness_drift"]
from .signal_noise import (aligned_noise_activation_fraction, max_noise_coefficient,  # noqa: E402
                           max_signal_coefficient, noise_activation_fraction, signal_noise_coefficients)
__all__ += ["signal_noise_coefficients", "max_noise_coefficient", "max_signal_coefficient",
            "noise_activation_fraction", "aligned_noise_activation_fraction"]
from . import logit_path  # noqa: E402  (issue 14: logit path vs functional path)
from .logit_path import (calibration_temperature, hessian_split, logit_statistics,  # noqa: E402
                         path_sharpness, sam_update_split)
__all__ += ["logit_path", "calibration_temperature", "hessian_split", "logit_statistics",
            "path_sharpness", "sam_update_split"]
from . import warm_spectrum  # noqa: E402  (issue 16: spectra inside the scan, warm-started)
from .warm_spectrum import WarmEigenpairs, warm_top_eigenpairs  # noqa: E402
__all__ += ["warm_spectrum", "WarmEigenpairs", "warm_top_eigenpairs"]
from . import universal  # noqa: E402  (issue 30: the universal class of sharpness measures)
from .universal import UNIVERSAL_MEASURES, universal_sharpness, universal_sharpness_gradient  # noqa: E402
__all__ += ["universal", "UNIVERSAL_MEASURES", "universal_sharpness", "universal_sharpness_gradient"]
from . import robustness  # noqa: E402  (issue 27: robust accuracy, robust-feature weights)
from .robustness import (effective_weights, input_gradient_norm, linear_robust_accuracy,  # noqa: E402
                         pgd_robust_accuracy, robust_accuracy, robust_weight_ratio)
__all__ += ["robustness", "effective_weights", "input_gradient_norm", "linear_robust_accuracy",
            "pgd_robust_accuracy", "robust_accuracy", "robust_weight_ratio"]
from . import forgetting  # noqa: E402  (issue 26: forgetting after fine-tuning)
from .forgetting import (exact_forgetting, forgetting_bound, loss_surface,  # noqa: E402
                         quadratic_forgetting, random_directions, surface_flatness)
__all__ += ["forgetting", "exact_forgetting", "forgetting_bound", "loss_surface", "quadratic_forgetting",
            "random_directions", "surface_flatness"]
