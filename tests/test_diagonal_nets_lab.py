"""Smoke test of the diagonal-nets lab in --quick mode: every output exists, every claim has its
expected verdict."""
import json

import numpy as np
import pytest

from sharp_theory import labkit
from sharp_theory.labkit import verdict_matches

FIGURES = ("test_loss_vs_rho", "implicit_bias_vs_rho", "loss_curves", "effective_init_over_time",
           "finetuning", "test_loss_vs_init_scale", "stochastic_rate")


@pytest.mark.slow
def test_lab_quick(quick_lab_run):
    # The lab run once as a notebook at quick sizes; the fixture makes the checks every lab must
    # pass (tests/test_notebooks.py runs the labs without a test file of their own).
    out = quick_lab_run("diagonal-nets") / "out"
    results = json.loads((out / "results.json").read_text())
    # Every figure passes the figure lint (issue 18), and the key figure has a slide copy.
    assert not labkit.figure_problems(results, out), labkit.figure_problems(results, out)
    assert any(c.get("slide") for c in results["figure_checks"].values())
    assert results["lab"] == "diagonal-nets" and results["quick"] is True
    assert set(results["figures"]) == set(FIGURES)
    for name in FIGURES:
        assert (out / f"{name}.png").stat().st_size > 0 and (out / f"{name}.svg").stat().st_size > 0
    with np.load(out / "trajectories.npz") as arrays:
        assert arrays["test_loss_1_sam"].shape == (1, len(results["config"]["rho_grid"]))
    claims = results["claims"]
    assert len(claims) == 15
    for claim in claims:
        # Quick sizes may abstain (said in the detail), never contradict the expectation.
        assert verdict_matches(claim, quick=True), claim
