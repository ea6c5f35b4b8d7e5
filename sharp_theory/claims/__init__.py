"""The claim registry. Every module in this package registers its paper's claims on import."""
import importlib
import pkgutil

from .base import (REGISTRY, VERDICTS, Claim, LabDidNotMeasure, NonFiniteMeasurement, Threshold,
                   Verdict, all_claims, claims_for_lab, finite, finite_max, finite_min,
                   finite_values, get, inconclusive, judge, register, verdict)

for _module in pkgutil.iter_modules(__path__):
    if _module.name != "base":
        importlib.import_module(f"{__name__}.{_module.name}")

__all__ = ["Claim", "Verdict", "Threshold", "REGISTRY", "VERDICTS", "register", "get",
           "all_claims", "claims_for_lab", "verdict", "judge", "inconclusive", "finite",
           "finite_values", "finite_max", "finite_min", "NonFiniteMeasurement", "LabDidNotMeasure"]
