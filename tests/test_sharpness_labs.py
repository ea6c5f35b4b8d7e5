"""Smoke test of the command-line path: a lab runs via `sharp-theory reproduce --quick`
and every claim meets its expectation. (Every lab, these included, also runs as a notebook in
tests/test_notebooks.py with the same checks; one lab through the CLI is enough here, and
`make test-min` runs it under the lowest dependency versions.)"""
import json

import pytest

from sharp_theory import labkit
from sharp_theory.cli import main

# Lab 0, the course's first and quickest lab (edge-of-stability, the earlier choice, also runs
# as a notebook in the suite, so this run repeated it at twice the cost).
LABS = {"what-sam-does": ["bowl", "valley"]}


@pytest.mark.slow
@pytest.mark.parametrize("lab", sorted(LABS))
def test_lab_quick(tmp_path, lab):
    out = tmp_path / "out"
    assert main(["reproduce", lab, "--quick", "--out", str(out)]) == 0
    results = json.loads((out / "results.json").read_text())
    # Every figure passes the figure lint (issue 18), and the key figure has a slide copy.
    assert not labkit.figure_problems(results, out), labkit.figure_problems(results, out)
    assert any(c.get("slide") for c in results["figure_checks"].values())
    for figure in LABS[lab]:
        assert (out / f"{figure}.png").stat().st_size > 0
        assert (out / f"{figure}.svg").stat().st_size > 0
    assert (out / "trajectories.npz").stat().st_size > 0
    assert results["claims"], "the lab registers claims"
    for claim in results["claims"]:
        # Quick sizes may be too small to judge ("inconclusive"), never contradict the claim.
        assert labkit.verdict_matches(claim, quick=True), (claim["id"], claim["measured"], claim["detail"])
