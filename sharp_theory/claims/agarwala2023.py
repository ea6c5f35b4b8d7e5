"""The stability threshold of unnormalized SAM (USAM) on quadratics, checked by bisection in η in the
edge-of-stability lab.

One USAM step on ½xᵀHx multiplies the component along an eigenvector with eigenvalue λ by
1 − ηλ(1 + ρλ), so the iterates stay bounded iff ηλ_max(1 + ρλ_max) < 2. Agarwala & Dauphin study
(unnormalized) SAM in a quadratic regression model and derive this SAM edge of stability,
λ(1 + ρλ) = 2/η, which the top eigenvalue reaches during training.

References:
  Agarwala, Dauphin. SAM operates far from home: eigenvalue regularization as a dynamical
    phenomenon. ICML 2023 (arXiv 2302.08692).
"""
from __future__ import annotations

from .base import Claim, Threshold, Verdict, finite_max, judge, register

LAB = "edge-of-stability"
TOLERANCE = 5e-3  # bisection resolves the boundary to ~1e-5 relative; 0.5% is generous


def _check_usam(measured, *, quick) -> Verdict:
    rows = [r for r in measured["usam_boundaries"] if r["rho"] > 0]
    error = finite_max([r["relative_error"] for r in rows], "relative error")
    return judge(Threshold("max relative error of the bisected η boundary vs 2/(λ(1 + ρλ))",
                           error, "<", TOLERANCE),
                 {"max_relative_error": error, "cases": len(rows)},
                 "bisection boundary of USAM (3000-step runs) vs the η solving ηλ(1 + ρλ) = 2")


register(Claim(
    id="agarwala2023.usam.quadratic_threshold", paper="agarwala2023",
    source="Sec. 3 (quadratic model; SAM-EOS λ(1 + ρλ) = 2/η for unnormalized SAM)",
    statement="Unnormalized SAM on a quadratic is stable iff η λ_max (1 + ρ λ_max) < 2, below "
              "GD's edge: the bisected divergence boundary in η is within 0.5% of 2/(λ(1 + ρλ)).",
    regime="½xᵀHx in 3-D, λ_max in {1, 4, 10}, ρ in {0.05, 0.2, 0.5}, bisection in η",
    lab=LAB, check=_check_usam, about_divergence=True))
