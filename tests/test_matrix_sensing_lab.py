"""Smoke test: the matrix-sensing lab runs in --quick mode and every claim gets its expected verdict."""
import json

import numpy as np
import pytest

from sharp_theory.claims import claims_for_lab
from sharp_theory.cli import main


@pytest.mark.slow
def test_matrix_sensing_lab_quick(tmp_path):
    out = tmp_path / "out"
    assert main(["reproduce", "matrix-sensing", "--quick", "--out", str(out)]) == 0
    results = json.loads((out / "results.json").read_text())
    assert results["quick"] is True
    for stem in ("phase_transition", "flat_solution_gaps", "dynamics", "str_vs_rho"):
        for suffix in ("png", "svg"):
            assert (out / f"{stem}.{suffix}").stat().st_size > 0
    arrays = np.load(out / "trajectories.npz")
    assert "dynamics_steps" in arrays and "gap_values" in arrays
    verdicts = {claim["id"]: (claim["verdict"], claim["expected"]) for claim in results["claims"]}
    assert set(verdicts) == {claim.id for claim in claims_for_lab("matrix-sensing")}
    assert len(verdicts) == 5
    for claim_id, (verdict, expected) in verdicts.items():
        assert verdict == expected, (claim_id, verdict)
