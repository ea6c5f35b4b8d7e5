"""The exercises of the older labs (balancedness, edge of stability, sharpness dynamics,
landscape, diagonal nets, matrix sensing): each graded answer key passes its check and wrong
answers fail it, on the numbers the lab's one quick run recorded.

The lab itself runs once in the test run (fixture ``quick_lab_run``; running it as a notebook
also runs every check on the answer key). Here each ``exercise-check`` cell is executed again,
outside the lab, in a namespace rebuilt from ``results.json``: with the key (it must pass) and
with a blank and typical wrong answers (each must fail with the check's one sentence).

(A lab-script test: the checks are lab code, held to JAX's default promotion rules, see
conftest.py.)
"""
import json

import jupytext
import numpy as np
import pytest

import sharp_theory as st
from sharp_theory import labkit


def exercises(name):
    """``[(variable, exercise source, check source)]`` of a lab, in order."""
    notebook = jupytext.read(labkit.available_labs()[name])
    cells = notebook.cells
    found = []
    for index, cell in enumerate(cells):
        if "exercise" not in cell.metadata.get("tags", []):
            continue
        check = next(c for c in cells[index + 1:] if "exercise-check" in c.metadata.get("tags", []))
        variable = next(line.split("=")[0].split("(")[0].replace("def ", "").strip()
                        for line in cell.source.splitlines() if line and not line.startswith("#"))
        found.append((variable, cell.source, check.source))
    return found


def judge(source, namespace):
    """None when the check passes, else the ExerciseFailed sentence."""
    try:
        exec(compile(source, "exercise-check", "exec"), dict(namespace))
    except labkit.ExerciseFailed as failed:
        return str(failed)
    return None


def check_lab_exercises(name, namespace, wrong):
    """Every exercise of lab ``name`` is in ``wrong``; its key passes, a blank and each wrong
    answer (a value, or source code defining the function) fail."""
    found = exercises(name)
    assert [variable for variable, _, _ in found] == list(wrong), "one row per exercise, in order"
    base = {"st": st, "np": np, **namespace}
    for variable, exercise, check in found:
        keyed = dict(base)
        exec(compile(exercise, "exercise", "exec"), keyed)
        assert judge(check, keyed) is None, (name, variable, judge(check, keyed))
        assert "replace ... with your answer" in judge(check, {**keyed, variable: ...})
        for answer in wrong[variable]:
            attempt = dict(keyed)
            if isinstance(answer, str) and answer.startswith("def "):
                exec(answer, attempt)
            else:
                attempt[variable] = answer
            sentence = judge(check, attempt)
            assert sentence is not None, (name, variable, answer, "a wrong answer passed")
            assert "\n" not in sentence and "Traceback" not in sentence


def recorded(quick_lab_run, name):
    return json.loads((quick_lab_run(name) / "out" / "results.json").read_text())


@pytest.mark.slow
def test_balancedness_exercises(quick_lab_run):
    results = recorded(quick_lab_run, "balancedness")
    check_lab_exercises("balancedness", {"measured": results["measured"]}, {
        # the flow's answer (B conserved), a sign slip, a power slip
        "gd_balancedness_factor": ["1", "1 + eta**2*fp**2", "1 - eta*fp", "1 - eta**2*fp"],
        # Lemma 2's first-order term alone (0 at an exact fit), half and twice the rate
        "predicted_noiseless_decay_rate": [0.0, 2 * 0.005 * 0.2**2, 8 * 0.005 * 0.2**2],
    })
