"""Closed forms and sympy derivations used as oracles by tests and labs."""
from . import scale_invariant

__all__ = ["scale_invariant"]
