"""The classroom layer: predictions against verdicts, sliders, and the students' notebooks."""
import ast
import os
import shutil
from pathlib import Path

import jupytext
import pytest

from sharp_theory import labkit
from sharp_theory.claims import REGISTRY
from sharp_theory.errors import ConfigError

ROOT = Path(__file__).resolve().parent.parent
LABS = sorted(labkit.available_labs().items())



RESULTS = {"claims": [{"id": "a.holds", "verdict": "pass"}, {"id": "a.breaks", "verdict": "fail"},
                      {"id": "a.small", "verdict": "inconclusive"}]}


def test_predictions_are_confirmed_contradicted_or_not_judged(capsys):
    rows = labkit.compare_predictions(RESULTS, {"a.holds": True, "a.breaks": True,
                                                "a.small": False})
    assert [row["outcome"] for row in rows] == ["confirmed", "contradicted", "too small to judge"]
    rows = labkit.compare_predictions(RESULTS, {"a.breaks": False, "a.holds": ...})
    assert [row["outcome"] for row in rows] == ["confirmed", "no prediction"]
    rows = labkit.compare_predictions(RESULTS, {"fuzzer finds it": False},
                                      facts={"fuzzer finds it": True})
    assert rows[0]["outcome"] == "contradicted"
    assert "contradicted" in capsys.readouterr().out


@pytest.mark.parametrize("predictions, fragment", [
    ({"a.unknown": True}, "invalid predictions='a.unknown'"),
    ({"a.holds": "yes"}, "invalid predictions['a.holds']="),
])
def test_bad_predictions_are_refused_by_name(predictions, fragment):
    with pytest.raises(ConfigError, match=fragment.replace("[", r"\[").replace("]", r"\]")):
        labkit.compare_predictions(RESULTS, predictions)


def test_sliders_are_notebook_only_and_check_their_ranges():
    assert labkit.sliders(lambda lr: None, lr=(1e-3, 1e-1, 1e-2, "log")) is None  # not a notebook
    with pytest.raises(ConfigError, match="invalid lr="):
        labkit.sliders(lambda lr: None, lr=(1e-1, 1e-3, 1e-2))
    with pytest.raises(ConfigError, match="invalid lr="):
        labkit.sliders(lambda lr: None, lr=(0.0, 1.0, 0.5, "log"))


@pytest.mark.parametrize("name, path", LABS, ids=[name for name, _ in LABS])
def test_every_lab_asks_for_predictions_that_its_claims_answer(name, path, site_builder):
    """Each lab has predict-then-run prompts before its key cells, each answer key agrees with
    the claim's expected verdict, and the lab compares them with the measured verdicts."""
    notebook = jupytext.read(path)
    found = site_builder.predictions(notebook)
    assert found, f"{name}: no prediction cell"
    compare = [cell.source for cell in notebook.cells if "compare_predictions" in cell.source]
    assert len(compare) == 1, f"{name}: one cell compares predictions with verdicts"
    call = next(node for node in ast.walk(ast.parse(compare[0])) if isinstance(node, ast.Call))
    claims = {key.value: value.id for key, value in zip(call.args[1].keys, call.args[1].values)}
    for index, variable, answer in found:
        assert notebook.cells[index - 1].metadata.get("tags") == ["predict"], \
            f"{name}: the prompt for {variable} comes right before it"
        assert variable in claims.values(), f"{name}: {variable} is never compared"
        claim_id = next(k for k, v in claims.items() if v == variable)
        if claim_id in REGISTRY:
            assert REGISTRY[claim_id].lab == name
            assert answer == (REGISTRY[claim_id].expected == "pass"), (claim_id, answer)


@pytest.mark.slow
def test_student_version_builds_and_its_checks_grade(tmp_path, site_builder):
    """`make student` for one lab: answers blanked, otter checks pass on the key and fail on a
    blank or wrong answer."""
    from otter.test_files import OKTestFile

    labs = dict(LABS)
    # The key's own run is checked where the fuzz-a-bound notebook is built below.
    built = site_builder.build_student(tmp_path, {"balancedness": labs["balancedness"]},
                                       check_key=False)
    assert len(built) == 1
    import nbformat

    student = "\n".join(cell.source for cell in nbformat.read(built[0], as_version=4).cells)
    assert "predict_sam_balances = ..." in student and "# SOLUTION" not in student
    assert 'grader.check("predict_sam_balances")' in student
    assert 'os.environ.setdefault("SHARP_THEORY_QUICK", "1")' in student
    tests = tmp_path / "balancedness" / "dist" / "autograder" / "tests"
    student_tests = tmp_path / "balancedness" / "dist" / "student" / "tests"
    for variable in ("predict_sgd_conserves", "predict_sam_balances"):
        graded = OKTestFile.from_file(str(tests / f"{variable}.py"))
        assert any(case.hidden for case in graded.test_cases), "the answer key is hidden"
        assert not any(case.hidden for case in OKTestFile.from_file(
            str(student_tests / f"{variable}.py")).test_cases), "students see only public checks"
        for answer, passes in [(True, True), (False, False), (..., False)]:
            graded = OKTestFile.from_file(str(tests / f"{variable}.py"))
            graded.run({variable: answer})
            assert graded.passed_all == passes, (variable, answer)
    shutil.rmtree(tmp_path / "balancedness")



@pytest.mark.slow
def test_student_notebook_runs_as_handed_out(tmp_path, site_builder):
    """The fastest lab's students' notebook, executed as a student would open it (answers
    still blank): the otter checks run and say the answer is missing, the lab runs at quick
    sizes to the end, and the comparison says no prediction was made."""
    import nbformat
    from nbclient import NotebookClient

    [student] = site_builder.build_student(tmp_path, {"fuzz-a-bound": dict(LABS)["fuzz-a-bound"]})
    notebook = nbformat.read(student, as_version=4)
    client = NotebookClient(notebook, timeout=600, kernel_name="python3",
                            resources={"metadata": {"path": str(student.parent)}})
    client.execute(env={**os.environ, "PYTHONPATH": str(ROOT),
                        "SHARP_THEORY_OUT": str(tmp_path / "out")})
    outputs = "\n".join(str(output.get("text", "")) + str(output.get("data", {}).get("text/plain", ""))
                        for cell in notebook.cells if cell.cell_type == "code"
                        for output in cell.outputs)
    assert "predict_falsified" in outputs and "failed" in outputs.lower(), outputs[-2000:]
    assert "no prediction" in outputs
    assert (tmp_path / "out" / "results.json").is_file()


def test_the_syllabus_lists_every_lab_in_the_course_order(site_builder):
    """Every lab has a row in docs/syllabus.md, in the order the site lists the labs."""
    syllabus = (ROOT / "docs" / "syllabus.md").read_text()
    order = site_builder.in_course_order(dict(LABS))
    assert set(order) <= set(site_builder.COURSE_ORDER), "add the new lab to COURSE_ORDER"
    rows = [line for line in syllabus.splitlines() if line.startswith("| ") and "(labs/" in line]
    linked = [row.split("(labs/")[1].split(".ipynb")[0] for row in rows]
    assert linked == order
    assert order[0] == "what-sam-does"


def test_first_frame_is_the_figure_explore_draws_at_the_initial_values():
    import base64

    import matplotlib
    import matplotlib.pyplot as plt

    matplotlib.use("Agg")
    drawn = []

    def explore(a=1.0):
        drawn.append(a)
        plt.subplots(figsize=(2, 2))[1].plot([0, 1], [0, a])
        plt.show()   # shows nothing under Agg: the open figure is taken

    frame = labkit.first_frame(explore, {"a": 0.5})
    assert drawn == [0.5] and not plt.get_fignums()
    assert base64.b64decode(frame).startswith(b"\x89PNG")
    assert labkit.first_frame(lambda a=1.0: None, {"a": 1.0}) is None


@pytest.mark.slow
def test_sliders_in_a_kernel_show_the_live_widget_and_a_still_first_frame(tmp_path):
    """In a real kernel: one output holding the widget (for a live front end) and the PNG of
    the figure at the initial values (for a page without a kernel); a slider change redraws."""
    import os

    import nbformat
    from nbclient import NotebookClient

    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(
        "import matplotlib.pyplot as plt\nfrom sharp_theory import labkit\n"
        "calls = []\n"
        "def explore(a=1.0):\n    calls.append(a)\n"
        "    plt.subplots(figsize=(2, 2))[1].plot([0, 1], [0, a])\n    plt.show()\n"
        "controls = labkit.sliders(explore, a=(0.0, 2.0, 1.0))\n"
        "controls.children[0].value = 1.5\nprint(calls)")],
        metadata={"kernelspec": {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}})
    root = Path(labkit.__file__).resolve().parents[1]
    env = dict(os.environ, MPLBACKEND="module://matplotlib_inline.backend_inline",
               PYTHONPATH=os.pathsep.join(filter(None, [str(root), os.environ.get("PYTHONPATH")])))
    NotebookClient(notebook, kernel_name="python3", timeout=120,
                   resources={"metadata": {"path": str(tmp_path)}}).execute(env=env)
    outputs = notebook.cells[0].outputs
    [shown] = [out for out in outputs if out.output_type == "display_data"]
    assert "application/vnd.jupyter.widget-view+json" in shown.data
    assert shown.data["image/png"] and "a = 1" in shown.data["text/plain"]
    assert "[1.0, 1.5]" in "".join(out.get("text", "") for out in outputs)
