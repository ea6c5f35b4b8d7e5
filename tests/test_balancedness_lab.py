"""Smoke test: the balancedness lab (Li, Zhang, He 2024) in --quick mode writes every file and
every claim gets its expected verdict."""
import json

import numpy as np
import pytest

from sharp_theory import labkit
from sharp_theory.labkit import verdict_matches

FIGURES = ("fig1_balancedness", "fig1c_op_rate_msam", "fig2b_bar", "lemma1_sharpness",
           "lora_layers", "saddle_collapse")
CLAIMS = ("li2024.balancedness.gd_one_step_identity", "li2024.balancedness.gd_conserves",
          "li2024.balancedness.sam_nop_balances", "li2024.balancedness.sam_op_drives_to_zero",
          "li2024.balancedness.sam_op_first_order_rate",
          "li2024.balancedness.m_sharpness_stronger", "li2024.balancedness.data_responsive",
          "li2024.balancedness.lemma1_balanced_is_flattest",
          "li2024.balancedness.lora_depth_weakens_sam", "li2024.bar.balances_at_half_cost",
          "li2024.balancedness.saddle_collapse")


@pytest.mark.slow
def test_balancedness_lab_quick(quick_lab_run):
    # The lab run once as a notebook at quick sizes; the fixture makes the checks every lab must
    # pass (tests/test_notebooks.py runs the labs without a test file of their own).
    out = quick_lab_run("balancedness") / "out"
    results = json.loads((out / "results.json").read_text())
    # Every figure passes the figure lint (issue 18), and the key figure has a slide copy.
    assert not labkit.figure_problems(results, out), labkit.figure_problems(results, out)
    assert any(c.get("slide") for c in results["figure_checks"].values())
    assert results["lab"] == "balancedness" and results["quick"] is True
    for stem in FIGURES:
        for suffix in ("png", "svg"):
            assert (out / f"{stem}.{suffix}").stat().st_size > 0, f"{stem}.{suffix}"
    assert sorted(results["figures"]) == sorted(FIGURES)
    with np.load(out / "trajectories.npz") as arrays:
        assert arrays["op_B_SAM"].shape[:2] == (4, results["seeds"])
        assert np.all(np.isfinite(arrays["op_B_SAM"]))
    claims = {c["id"]: c for c in results["claims"]}
    assert set(CLAIMS) <= set(claims)
    for claim_id in CLAIMS:
        # Quick sizes may abstain (said in the detail), never contradict the expectation.
        assert verdict_matches(claims[claim_id], quick=True), claims[claim_id]
    # Conservation as η → 0 needs the full run's small step sizes; everything else is judged.
    assert claims["li2024.balancedness.gd_conserves"]["verdict"] == "inconclusive"
    assert all(c["verdict"] == c["expected"] for i, c in claims.items()
               if i != "li2024.balancedness.gd_conserves")
    # the lab records the settings a reader needs to rerun it
    assert results["config"]["steps"] == 2_000 and results["config"]["lr"] == 5e-3
