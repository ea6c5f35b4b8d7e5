"""Smoke run of the "flows" lab in --quick mode via the CLI (issue 28)."""
import json

import pytest

import sharp_theory as st
from exercise_checks import assert_key_passes_and_wrong_fail, exercises
from sharp_theory import labkit


@pytest.mark.slow
def test_flows_lab_quick(quick_lab_run):
    # The lab run once as a notebook at quick sizes; the fixture makes the checks every lab must
    # pass (tests/test_notebooks.py runs the labs without a test file of their own).
    out = quick_lab_run("flows") / "out"
    results = json.loads((out / "results.json").read_text())
    assert results["quick"] is True and results["figures"] == ["fig1_sam_slow_flow",
                                                               "fig2_valley_models"]
    assert not labkit.figure_problems(results, out), labkit.figure_problems(results, out)
    assert (out / "fig1_sam_slow_flow-slide.png").stat().st_size > 0
    # Every claim but the full-size central flow ones (GD, USAM) is decided at quick sizes, as
    # expected.
    assert len(results["claims"]) == 14
    for claim in results["claims"]:
        if claim["id"].startswith(("flows.gd_central.", "flows.usam_central.")):
            assert claim["verdict"] == "inconclusive"
        else:
            assert claim["verdict"] == claim["expected"], claim
    for row in results["measured"]["drift"]:
        assert row["status"] == "ok" and row["slow_corrected_flow_stopped_at"] == -1
    for model in results["measured"]["valley_models"].values():
        assert model["status"] == "ok" and model["flow_stopped_at"] == -1
    # Exercise 2 graded on this run's numbers: the key passes, wrong rates fail (issue 25).
    namespace = {"st": st, "rows": results["measured"]["drift"],
                 "ETA_LAMBDA": results["config"]["eta_lambda"]}
    assert_key_passes_and_wrong_fail(exercises("flows")["predicted_limit_rate"], namespace, [
        "predicted_limit_rate = 0.005",  # the corrected flow's rate
        "predicted_limit_rate = 0.005 * (2 - 1.6) / 2",  # the square forgotten
        "predicted_limit_rate = 0.005 * 4 / (2 - 1.6) ** 2"])  # the ratio upside down
