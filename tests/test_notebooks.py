"""Every lab opens as a notebook (jupytext) and runs top to bottom in a kernel (nbclient), the
way the docs site runs it (tools/site.py: quick sizes, output inline).

With ``SHARP_THEORY_SITE_CACHE=DIR`` (CI sets it) the executed notebooks are kept in DIR, where
``make docs`` picks them up instead of running every lab a second time; without it they go to
a temporary folder (see the ``quick_lab_run`` fixture in conftest.py)."""
import json

import jupytext
import nbformat
import pytest

from sharp_theory import labkit

LABS = sorted(labkit.available_labs().items())
# Figures some labs must draw (the rest are checked through results.json's own list).
EXPECTED_FIGURES = {"sharpness-dynamics": ("sharpness_dynamics", "one_sam_endpoint"),
                    "landscape": ("interpolation", "slices", "m_sharpness_vs_gap")}



@pytest.mark.slow
@pytest.mark.parametrize("name, path", [
    # This test and the lab's own test (tests/test_*_lab.py) read one run (quick_lab_run).
    (name, path) for name, path in LABS], ids=[name for name, _ in LABS])
def test_lab_runs_as_a_notebook(name, path, quick_lab_run):
    notebook = jupytext.read(path)
    assert notebook.cells[0].cell_type == "markdown", "a lab opens with its title and question"
    nbformat.validate(notebook)
    folder = quick_lab_run(name)
    out = folder / "out"
    results = json.loads((out / "results.json").read_text())
    # Every figure passes the figure lint (issue 18).
    assert not labkit.figure_problems(results, out), labkit.figure_problems(results, out)
    assert results["lab"] == name and results["quick"] is True
    for figure in results["figures"]:
        assert (out / f"{figure}.png").exists() and (out / f"{figure}.svg").exists()
    for figure in EXPECTED_FIGURES.get(name, ()):
        assert figure in results["figures"], f"{name}: figure {figure} is missing"
    # The key figure's slide copy (checked to exist by figure_problems) and the arrays.
    assert any(check.get("slide") for check in results["figure_checks"].values()), name
    assert (out / "trajectories.npz").stat().st_size > 0
    for claim in results["claims"]:
        # Quick sizes may be too small to judge ("inconclusive"), never contradict the claim.
        assert labkit.verdict_matches(claim, quick=True), claim
    executed = nbformat.read(folder / f"{name}.ipynb", as_version=4)
    images = sum("image/png" in output.get("data", {}) for cell in executed.cells
                 if cell.cell_type == "code" for output in cell.outputs)
    assert images >= len(results["figures"]), "every figure is shown inline"
