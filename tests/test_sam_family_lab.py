"""Smoke run of the "sam-family" lab in --quick mode: outputs exist, every claim as expected."""
import json

import numpy as np
import pytest

import sharp_theory as st
from exercise_checks import assert_key_passes_and_wrong_fail, exercises
from sharp_theory import labkit


@pytest.mark.slow
def test_sam_family_lab_quick(quick_lab_run):
    # The lab run once as a notebook at quick sizes; the fixture makes the checks every lab must
    # pass (tests/test_notebooks.py runs the labs without a test file of their own).
    out = quick_lab_run("sam-family") / "out"
    results = json.loads((out / "results.json").read_text())
    # Every figure passes the figure lint (issue 18), and the key figure has a slide copy.
    assert not labkit.figure_problems(results, out), labkit.figure_problems(results, out)
    assert any(c.get("slide") for c in results["figure_checks"].values())
    assert results["quick"] is True
    assert set(results["figures"]) == {"quality_vs_cost", "learning_curves"}
    for figure in results["figures"]:
        assert (out / f"{figure}.png").exists() and (out / f"{figure}.svg").exists()
    arrays = np.load(out / "trajectories.npz")
    assert "diagonal_linear__sam__quality" in arrays.files
    summary = results["measured"]["summary"]["diagonal_linear"]
    # Costs are the rules' own counts: SAM 2 per step, LookSAM-5 1.2, SGD 1.
    steps = results["config"]["steps"]
    assert summary["sgd"]["grad_evals"] == steps
    assert summary["sam"]["grad_evals"] == 2 * steps
    assert summary["looksam-5"]["grad_evals"] == 1.2 * steps
    # Exercise 1 graded on this run's numbers (issue 25).
    assert_key_passes_and_wrong_fail(
        exercises("sam-family")["predicted_looksam_cost"],
        {"st": st, "SUMMARY": results["measured"]["summary"]},
        ["predicted_looksam_cost = 1.0", "predicted_looksam_cost = 2.0",
         "predicted_looksam_cost = 1.25"])  # SAM on one step in four
    assert len(results["claims"]) >= 10
    for claim in results["claims"]:
        assert claim["verdict"] == claim["expected"], claim
