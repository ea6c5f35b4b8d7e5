"""Closed forms and sympy derivations used as oracles by tests and labs."""
from . import scale_invariant

__all__ = ["scale_invariant"]
from . import low_rank  # noqa: E402
__all__ += ["low_rank"]
from . import diagonal  # noqa: E402
__all__ += ["diagonal"]
from . import stability  # noqa: E402  (issue 6: GD/SAM/USAM stability thresholds)
__all__ += ["stability"]
from . import robustness  # noqa: E402  (issue 27: exact robustness of linear scores, duality)
__all__ += ["robustness"]
from . import forgetting  # noqa: E402  (issue 26: forgetting in sequential linear regression)
__all__ += ["forgetting"]
