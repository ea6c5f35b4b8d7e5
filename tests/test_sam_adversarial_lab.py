"""Smoke test: the SAM-vs-adversarial-training lab (Zhang et al. 2024) run once as a notebook at
quick sizes (through ``quick_lab_run``, which makes the checks every lab must pass); its figures,
arrays and claims, and the numbers it must record."""
import json

import numpy as np
import pytest

from sharp_theory.labkit import verdict_matches

FIGURES = ("robust_weight", "equivalence_radius", "frontier")
CLAIMS = ("zhang2024.sam_adversarial.duality_identities",
          "zhang2024.sam_adversarial.linear_full_batch_sam_changes_nothing",
          "zhang2024.sam_adversarial.per_example_sam_raises_robust_weight_linear",
          "zhang2024.sam_adversarial.per_example_sam_raises_robust_weight_diagonal",
          "zhang2024.sam_adversarial.sam_gains_small_budget_robustness",
          "zhang2024.sam_adversarial.ordering_sgd_sam_at",
          "zhang2024.sam_adversarial.equivalence_radius_predicts_at_budget")


@pytest.mark.slow
def test_sam_adversarial_lab_quick(quick_lab_run):
    out = quick_lab_run("sam-adversarial") / "out"
    results = json.loads((out / "results.json").read_text())
    assert sorted(results["figures"]) == sorted(FIGURES)
    claims = {claim["id"]: claim for claim in results["claims"]}
    assert set(CLAIMS) == set(claims)
    # Every claim is decided at quick sizes (≥ 80% required), each as expected.
    for claim_id in CLAIMS:
        assert verdict_matches(claims[claim_id], quick=True), claims[claim_id]
        assert claims[claim_id]["verdict"] == claims[claim_id]["expected"], claims[claim_id]
    measured = results["measured"]
    # The linear-score models' accuracies are exact: ε = 0 is the clean accuracy, and robust
    # accuracy falls with the budget in every lane.
    for model in ("linear", "diagonal", "relu"):
        for name, lane in measured[model]["lanes"].items():
            accuracy = np.asarray(lane["accuracy"])
            if model != "relu":  # (PGD on a sample need not be monotone in ε)
                assert np.all(np.diff(accuracy) <= 1e-12), (model, name, accuracy)
                # The exact ℓ2 accuracies: the same clean accuracy, falling with the budget.
                l2 = np.asarray(lane["accuracy_l2"])
                assert l2[0] == accuracy[0] and np.all(np.diff(l2) < 0), (model, name, l2)
            assert accuracy[-1] < accuracy[0], (model, name, accuracy)
            assert 0.5 < accuracy[0] < 0.95 and lane["status"] == "ok", (model, name)
    assert results["config"]["data_seeds"] == [0]  # quick: one training set (full: three)
    # The equivalence radius is judged against a 31-budget ℓ2 AT axis on every training set.
    for draw in measured["linear"]["equivalence"]:
        assert len(draw["epsilons"]) == 31 and len(draw["direction_distance"]) == 3
        assert all(len(row) == 31 for row in draw["direction_distance"])
    with np.load(out / "trajectories.npz") as arrays:
        assert np.all(np.isfinite(arrays["diagonal_ratio_GD"]))
