"""Measures: exact Hessians and spectra, balancedness."""
from .balance import balancedness, gradient_imbalance
from .hessian import (flat_function, hessian, hessian_eigenvalues, hessian_trace,
                      hessian_vector_product, top_hessian_eigenvalue)

__all__ = ["balancedness", "gradient_imbalance", "flat_function", "hessian", "hessian_eigenvalues",
           "hessian_trace", "hessian_vector_product", "top_hessian_eigenvalue"]
