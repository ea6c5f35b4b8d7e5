"""Smoke test: the fuzz-a-bound guide runs in --quick mode, falsifies the SAM statement at the
closed-form boundary, replays it bit for bit, and the corrected statement survives."""
import json
from types import SimpleNamespace

import pytest

import sharp_theory as st
from exercise_checks import assert_key_passes_and_wrong_fail, exercises
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
    # A fixed count of examples (not a time budget): the same instances on every machine.
    assert measured["corrected_statement"]["examples"] == results["config"]["corrected_examples"] == 100
    # Exercises 1 and 2 graded on this run's counterexamples (issue 25).
    values = {"rho": sam["rho"], "lr": sam["lr"],
              "quad": SimpleNamespace(facts={"lambda_max": sam["lambda_max"]})}
    found = exercises("fuzz-a-bound")
    assert_key_passes_and_wrong_fail(
        found["predicted_rho_boundary"], {"st": st, "values": values, "TOLERANCE": 1e-6}, [
            "predicted_rho_boundary = 2e-6 / (values['lr'] * values['quad'].facts['lambda_max'])",
            "predicted_rho_boundary = 1e-6"])
    saddle = SimpleNamespace(counterexample={
        "lr": measured["usam_statement"]["lr"], "rho": measured["usam_statement"]["rho"],
        "quad": SimpleNamespace(facts={"lambda_min": -measured["usam_statement"]["mu"]})})
    assert_key_passes_and_wrong_fail(found["usam_saddle_factor"], {"st": st, "saddle": saddle},
                                     ['usam_saddle_factor = "1 + eta*mu*(1 + rho*mu)"'])
    usam = measured["usam_statement"]
    assert usam["verdict"] == "falsified" and usam["rho_mu_gap"] < 1e-9 and usam["dimension"] == 2
