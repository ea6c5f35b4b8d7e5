"""Helpers that grade a lab's exercises outside the lab: each exercise cell (the answer key) and
its exercise-check cell are read from the lab script and run in a small namespace, with the key
and with wrong answers, so a test can show that the key passes and a wrong answer fails without
running the lab again (numbers the check reads come from the lab's recorded quick run)."""
from __future__ import annotations

from pathlib import Path

import jupytext

from sharp_theory import labkit
from sharp_theory.labkit import ExerciseFailed

ROOT = Path(__file__).resolve().parent.parent


def exercises(lab: str) -> dict[str, dict]:
    """``{variable: {"key": source, "check": source, "prompt": markdown}}`` for every exercise
    of ``lab`` (its first defined name is the variable)."""
    import ast

    notebook = jupytext.read(labkit.available_labs()[lab])
    cells = notebook.cells
    found = {}
    for index, cell in enumerate(cells):
        if "exercise" not in cell.metadata.get("tags", []):
            continue
        node = ast.parse(cell.source).body[0]
        variable = node.name if isinstance(node, ast.FunctionDef) else node.targets[0].id
        check = next(c for c in cells[index + 1:] if "exercise-check" in c.metadata.get("tags", []))
        prompt = cells[index - 1].source if cells[index - 1].cell_type == "markdown" else ""
        found[variable] = {"key": cell.source, "check": check.source, "prompt": prompt}
    return found


def open_questions(lab: str) -> list[str]:
    """The markdown of every open question of ``lab`` (the cell right before a teacher note)."""
    cells = jupytext.read(labkit.available_labs()[lab]).cells
    return [cells[i - 1].source for i, cell in enumerate(cells)
            if "teacher-note" in cell.metadata.get("tags", [])]


def grade(exercise: dict, namespace: dict, answer: str | None = None) -> str | None:
    """Run the exercise's check with the key (``answer`` None) or with ``answer``, a source that
    defines the variable; returns None when the check passes, else its one-sentence reason."""
    scope = dict(namespace)
    exec(exercise["key"] if answer is None else answer, scope)  # noqa: S102 - our own lab's cells
    try:
        exec(exercise["check"], scope)  # noqa: S102
    except ExerciseFailed as failed:
        return str(failed)
    return None


def assert_key_passes_and_wrong_fail(exercise: dict, namespace: dict, wrong: list[str]) -> None:
    """The key passes its check; every wrong answer fails it with a sentence."""
    assert grade(exercise, namespace) is None, grade(exercise, namespace)
    for answer in wrong:
        reason = grade(exercise, namespace, answer)
        assert reason, f"a wrong answer passed: {answer}"
        assert "Traceback" not in reason and "\n" not in reason.strip()
