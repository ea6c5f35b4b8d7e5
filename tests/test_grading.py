"""Grading end to end: `make student`'s autograder bundles grade a right and a wrong submission
of a lab through the real grader (`otter run`), with full and partial marks, and feedback in
one sentence (no traceback, no file path)."""
import json
import subprocess
import sys
import zipfile
from pathlib import Path

import nbformat
import pytest

from sharp_theory import labkit

pytestmark = pytest.mark.slow

LABS = labkit.available_labs()


def fill(notebook_path: Path, answers: dict, out: Path) -> Path:
    """The notebook (a student's copy or the answer key) with the answer cells of ``answers``
    replaced: a one-line ``name = ...`` cell by ``name = value``, a ``def name(...)`` cell by the
    given source."""
    notebook = nbformat.read(notebook_path, as_version=4)
    for cell in notebook.cells:
        if cell.cell_type != "code":
            continue
        for name, value in answers.items():
            if cell.source.startswith(f"{name} = ") and "\n" not in cell.source.strip():
                cell.source = f"{name} = {value!r}"
            elif cell.source.startswith(f"def {name}(") and isinstance(value, str):
                cell.source = value
    nbformat.write(notebook, out)
    return out


def grade(bundle: Path, submission: Path, out: Path) -> dict:
    out.mkdir(parents=True, exist_ok=True)
    done = subprocess.run([sys.executable, "-m", "otter", "run", "-a", str(bundle), "-o", str(out),
                           str(submission)], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    results = json.loads((out / "results.json").read_text())
    return {test["name"]: test for test in results["tests"] if test["name"] != "Public Tests"}


@pytest.fixture(scope="module")
def bundles(tmp_path_factory, site_builder):
    out = tmp_path_factory.mktemp("student")
    chosen = {name: LABS[name] for name in ("what-sam-does", "edge-of-stability")}
    # The key is graded through `otter run` below: otter assign need not run it too.
    site_builder.build_student(out, chosen, check_key=False)
    return out


def _bundle(bundles: Path, lab: str) -> Path:
    [bundle] = (bundles / lab / "dist" / "autograder").glob("*.zip")
    return bundle


def test_the_bundle_installs_sharp_theory_and_jax(bundles):
    with zipfile.ZipFile(_bundle(bundles, "what-sam-does")) as bundle:
        names = bundle.namelist()
        requirements = (bundles / "what-sam-does" / "requirements.txt").read_text()
    assert any(name.startswith("files/sharp_theory-") and name.endswith(".whl") for name in names)
    assert "sharp_theory-" in requirements and "jax==" in requirements and "jaxlib==" in requirements


def test_a_second_lab_bundle_grades_each_of_its_exercises(bundles):
    """The edge-of-stability bundle carries one grader test per exercise and the student's copy
    carries no answer (it is graded through otter below, like Lab 0)."""
    with zipfile.ZipFile(_bundle(bundles, "edge-of-stability")) as bundle:
        tests = {Path(name).stem for name in bundle.namelist() if name.startswith("tests/")}
    assert tests == {"predict_hovers_at_edge", "predict_sam_lower_edge", "predicted_settled_sharpness",
                     "usam_limit_formula", "my_sam_edge"}
    student = nbformat.read(bundles / "edge-of-stability" / "dist" / "student"
                            / "edge-of-stability.ipynb", as_version=4)
    sources = [cell.source.strip() for cell in student.cells if cell.cell_type == "code"]
    for name in tests:  # a blank answer, or a function whose body is blank
        assert f"{name} = ..." in sources or any(
            source.startswith(f"def {name}(") and source.endswith("\n    ...") for source in sources), name


def test_a_right_and_a_wrong_submission_get_full_and_partial_marks(bundles, tmp_path):
    """Lab 0 through the real grader: the key gets every point; typical wrong answers lose
    theirs, each with one sentence of feedback."""
    lab = "what-sam-does"
    bundle = _bundle(bundles, lab)
    right = bundles / lab / "dist" / "autograder" / f"{lab}.ipynb"  # the answer key filled in
    scores = grade(bundle, right, tmp_path / "right")
    expected = {"predict_rho_zero_is_gd": 0, "predicted_two_cycle_radius": 0,
                "two_cycle_radius_formula": 0, "predicted_sam_final_sharpness": 1, "my_sam_step": 0}
    assert {name: test["score"] for name, test in scores.items()} == \
        {name: test["max_score"] for name, test in scores.items()}
    assert set(scores) == set(expected)
    wrong = {"predict_rho_zero_is_gd": False, "predicted_two_cycle_radius": 0.3,
             "two_cycle_radius_formula": "eta*rho*lam/(2 + eta*lam)",
             "predicted_sam_final_sharpness": 2.0,
             "my_sam_step": "def my_sam_step(w, gradient, lr, rho):\n    return w - lr * gradient(w)\n"}
    student = bundles / lab / "dist" / "student" / f"{lab}.ipynb"
    scores = grade(bundle, fill(student, wrong, tmp_path / f"{lab}-wrong.ipynb"), tmp_path / "wrong")
    assert {name: test["score"] for name, test in scores.items()} == expected
    _feedback_is_one_sentence(scores, expected)
    assert "is 100% away from the measured 0.15 (allowed: 2%)" in \
        scores["predicted_two_cycle_radius"]["output"]
    assert "is not equal to the formula the lab derives" in \
        scores["two_cycle_radius_formula"]["output"]


def test_a_second_lab_grades_a_half_right_submission_item_by_item(bundles, tmp_path):
    """The edge-of-stability lab through the real grader (issue 25: two labs): a submission right
    on the yes/no, numeric and coding items and wrong on the other two gets exactly those points
    (each `otter run` executes the whole lab, so one mixed submission stands for two)."""
    lab = "edge-of-stability"
    key = bundles / lab / "dist" / "autograder" / f"{lab}.ipynb"
    wrong = {"predict_sam_lower_edge": False, "usam_limit_formula": "(sqrt(1 + 8*rho/eta) - 1)/2"}
    submission = fill(key, wrong, tmp_path / f"{lab}-half.ipynb")
    scores = grade(_bundle(bundles, lab), submission, tmp_path / "half")
    expected = {"predict_hovers_at_edge": 1, "predict_sam_lower_edge": 0,
                "predicted_settled_sharpness": 1, "usam_limit_formula": 0, "my_sam_edge": 1}
    assert {name: test["score"] for name, test in scores.items()} == expected
    assert all(scores[name]["max_score"] == 1 for name in expected)
    _feedback_is_one_sentence(scores, expected)


def _feedback_is_one_sentence(scores: dict, expected: dict) -> None:
    for name, points in expected.items():
        if points:
            continue
        output = scores[name]["output"]
        assert output.strip(), name
        assert "Traceback" not in output and "/tmp" not in output and str(Path.home()) not in output
