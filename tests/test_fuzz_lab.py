"""Smoke test: the fuzz-a-bound guide runs in --quick mode, falsifies the SAM statement at the
closed-form boundary, replays it bit for bit, and the corrected statement survives."""
import json

import pytest

from sharp_theory import labkit


@pytest.mark.slow
def test_fuzz_a_bound_lab_quick(quick_lab_run):
    # The lab run once as a notebook at quick sizes; the fixture makes the checks every lab must
    # pass (tests/test_notebooks.py runs the labs without a test file of their own).
    out = quick_lab_run("fuzz-a-bound") / "out"
    results = json.loads((out / "results.json").read_text())
    # Every figure passes the figure lint (issue 18), and the key figure has a slide copy.
    assert not labkit.figure_problems(results, out), labkit.figure_problems(results, out)
    assert any(c.get("slide") for c in results["figure_checks"].values())
    assert results["figures"] == ["slack_along_rho"]
    for suffix in ("png", "svg"):
        assert (out / f"slack_along_rho.{suffix}").stat().st_size > 0
    measured = results["measured"]
    sam = measured["sam_statement"]
    assert sam["verdict"] == "falsified" and sam["dimension"] == 1 and sam["replay_identical"]
    assert sam["relative_gap"] < 1e-6
    assert measured["corrected_statement"]["verdict"] == "holds"
    assert measured["corrected_statement"]["examples"] >= 100
    usam = measured["usam_statement"]
    assert usam["verdict"] == "falsified" and usam["rho_mu_gap"] < 1e-9 and usam["dimension"] == 2
