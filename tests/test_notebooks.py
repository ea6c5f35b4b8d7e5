"""Every lab opens as a notebook (jupytext) and runs top to bottom in a kernel (nbclient)."""
import json
import os

import jupytext
import nbformat
import pytest
from nbclient import NotebookClient

from sharp_theory import labkit

LABS = sorted(labkit.available_labs().items())


@pytest.mark.slow
@pytest.mark.parametrize("name, path", LABS, ids=[name for name, _ in LABS])
def test_lab_runs_as_a_notebook(name, path, tmp_path, monkeypatch):
    notebook = jupytext.read(path)
    assert notebook.cells[0].cell_type == "markdown", "a lab opens with its title and question"
    nbformat.validate(notebook)
    out = tmp_path / name
    # The kernel inherits the environment: quick sizes, output into tmp.
    monkeypatch.setenv("SHARP_THEORY_QUICK", "1")
    monkeypatch.setenv("SHARP_THEORY_OUT", str(out))
    monkeypatch.setenv("MPLBACKEND", "Agg")
    client = NotebookClient(notebook, timeout=600, kernel_name="python3",
                            resources={"metadata": {"path": str(tmp_path)}})
    client.execute()
    results = json.loads((out / "results.json").read_text())
    # Every figure passes the figure lint (issue 18).
    assert not labkit.figure_problems(results, out), labkit.figure_problems(results, out)
    assert results["lab"] == name and results["quick"] is True
    for figure in results["figures"]:
        assert (out / f"{figure}.png").exists() and (out / f"{figure}.svg").exists()
    for claim in results["claims"]:
        # Quick sizes may be too small to judge ("inconclusive"), never contradict the claim.
        assert labkit.verdict_matches(claim, quick=True), claim
