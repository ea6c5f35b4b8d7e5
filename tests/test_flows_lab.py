"""Smoke run of the "flows" lab in --quick mode via the CLI (issue 28)."""
import json

import pytest

from sharp_theory import labkit


@pytest.mark.slow
def test_flows_lab_quick(quick_lab_run):
    # The lab run once as a notebook at quick sizes; the fixture makes the checks every lab must
    # pass (tests/test_notebooks.py runs the labs without a test file of their own).
    out = quick_lab_run("flows") / "out"
    results = json.loads((out / "results.json").read_text())
    assert results["quick"] is True and results["figures"] == ["fig1_sam_slow_flow"]
    assert not labkit.figure_problems(results, out), labkit.figure_problems(results, out)
    assert (out / "fig1_sam_slow_flow-slide.png").stat().st_size > 0
    # Every claim but the full-size GD central flow one is decided at quick sizes, as expected.
    assert len(results["claims"]) == 5
    for claim in results["claims"]:
        if claim["id"] == "flows.gd_central.tanh_net_lambda_max":
            assert claim["verdict"] == "inconclusive"
        else:
            assert claim["verdict"] == claim["expected"], claim
    for row in results["measured"]["drift"]:
        assert row["status"] == "ok" and row["slow_corrected_flow_stopped_at"] == -1
