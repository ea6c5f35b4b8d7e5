"""Smoke test: the matrix-sensing lab runs in --quick mode and every claim gets its expected verdict."""
import json

import numpy as np
import pytest

from sharp_theory.claims import claims_for_lab
from sharp_theory import labkit
from sharp_theory.labkit import verdict_matches


@pytest.mark.slow
def test_matrix_sensing_lab_quick(quick_lab_run):
    # The lab run once as a notebook at quick sizes; the fixture makes the checks every lab must
    # pass (tests/test_notebooks.py runs the labs without a test file of their own).
    out = quick_lab_run("matrix-sensing") / "out"
    results = json.loads((out / "results.json").read_text())
    # Every figure passes the figure lint (issue 18), and the key figure has a slide copy.
    assert not labkit.figure_problems(results, out), labkit.figure_problems(results, out)
    assert any(c.get("slide") for c in results["figure_checks"].values())
    assert results["quick"] is True
    for stem in ("phase_transition", "flat_solution_gaps", "dynamics", "str_vs_rho"):
        for suffix in ("png", "svg"):
            assert (out / f"{stem}.{suffix}").stat().st_size > 0
    arrays = np.load(out / "trajectories.npz")
    assert "dynamics_steps" in arrays and "gap_values" in arrays
    claims = {claim["id"]: claim for claim in results["claims"]}
    assert set(claims) == {claim.id for claim in claims_for_lab("matrix-sensing")}
    assert len(claims) == 7
    for claim in claims.values():
        # Quick sizes may abstain (said in the detail), never contradict the expectation.
        assert verdict_matches(claim, quick=True), (claim["id"], claim["verdict"], claim["detail"])
