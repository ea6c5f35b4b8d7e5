"""The diagonal-net study: our optimizers set up to run the authors' own updates.

Andriushchenko & Flammarion (ICML 2022) train diagonal linear networks with their own loops;
:func:`authors_optimizer` gives the optimizer of this package that runs the same update with
their (γ, ρ), so a lab or a benchmark can compare the two step for step. It lives here, above
both problems and optim, because it joins the two.

References:
  Andriushchenko, Flammarion. Towards Understanding Sharpness-Aware Minimization. ICML 2022.
"""
from __future__ import annotations

from .. import optim
from ..errors import check_choice
from ..problems.diagonal import AUTHORS_VARIANTS, rho_from_authors


def authors_optimizer(variant: str, lr, rho_authors=0.0):
    """Our optimizer that runs the authors' update ``variant`` with their (γ, ρ).

    Args:
      variant: one of :data:`AUTHORS_VARIANTS` ("gd", "sgd", "n-sam", "1-sam").
      lr: their step size γ (> 0).
      rho_authors: their ρ (>= 0; ignored for gd and sgd).

    Returns:
      An :class:`sharp_theory.optim.Optimizer`:
    "gd" → ``gd(lr)``; "sgd" → one uniformly drawn example per step (with replacement, as their
    ``np.random.randint``); "n-sam" → ``usam(lr, ρ)``; "1-sam" → ``usam(lr, 2ρ, m=1)``.

    References: Andriushchenko & Flammarion 2022, their public code (benchmarks/bench_diagonal_nets.py).
    """
    check_choice("variant", variant, AUTHORS_VARIANTS)
    if variant == "gd":
        return optim.gd(lr)
    if variant == "sgd":
        return optim.sgd(lr, batch_size=1, replace=True)
    if variant == "n-sam":
        return optim.usam(lr, rho_from_authors(rho_authors, "n-sam"))
    return optim.usam(lr, rho_from_authors(rho_authors, "1-sam"), m=1)
