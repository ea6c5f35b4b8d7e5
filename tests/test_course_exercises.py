"""Issue 25's course-wide rule: every lab holds at least three exercises besides its yes/no
predictions (graded ones plus open questions), and the course has every kind at least once."""
import math

import numpy as np
import pytest

import sharp_theory as st
from exercise_checks import assert_key_passes_and_wrong_fail, exercises, open_questions
from sharp_theory import labkit
from sharp_theory.theory import robustness

LABS = sorted(labkit.available_labs())
KINDS = ("numeric", "derivation", "coding", "open question")


@pytest.mark.parametrize("lab", LABS)
def test_every_lab_has_at_least_three_exercises(lab):
    graded, questions = exercises(lab), open_questions(lab)
    assert len(graded) + len(questions) >= 3, (lab, list(graded), len(questions))


def test_the_course_has_every_kind_of_exercise():
    prompts = [exercise["prompt"] for lab in LABS for exercise in exercises(lab).values()]
    prompts += [question for lab in LABS for question in open_questions(lab)]
    for kind in KINDS:
        assert any(f"({kind}" in prompt for prompt in prompts), kind


def test_sam_adversarial_worst_linf_attack_coding_exercise():
    exercise = exercises("sam-adversarial")["my_worst_linf_perturbation"]
    namespace = {"st": st, "np": np, "math": math, "robustness": robustness}
    assert_key_passes_and_wrong_fail(exercise, namespace, [
        "def my_worst_linf_perturbation(w, y, eps):\n    return y * eps * np.sign(w)",  # raises it
        "def my_worst_linf_perturbation(w, y, eps):\n    return -y * eps * w / np.linalg.norm(w)",
        "def my_worst_linf_perturbation(w, y, eps):\n    return -eps * np.sign(w)"])  # label lost
