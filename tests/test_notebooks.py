"""Every lab opens as a notebook (jupytext) and runs top to bottom in a kernel (nbclient), the
way the docs site runs it (tools/site.py: quick sizes, output inline).

Labs with a test file of their own (tests/test_*_lab.py) run there, through the same fixture
(``quick_lab_run`` in conftest.py, which makes the checks every lab must pass); this file runs
the others, so that every lab runs once. With ``SHARP_THEORY_SITE_CACHE=DIR`` (CI sets it) the
executed notebooks are kept in DIR, where ``make docs`` picks them up instead of running every
lab a second time."""
import json
import re
from pathlib import Path

import pytest

from sharp_theory import labkit

LABS = labkit.available_labs()
TESTS = Path(__file__).resolve().parent
# Labs whose own test file runs them (through quick_lab_run, which makes every check too).
OWN_TEST = {name: path.name for path in sorted(TESTS.glob("test_*_lab.py"))
            for name in re.findall(r'quick_lab_run\("([a-z0-9-]+)"\)', path.read_text())}
HERE = sorted(name for name in LABS if name not in OWN_TEST)
# Figures some labs must draw (the rest are checked through results.json's own list).
EXPECTED_FIGURES = {"sharpness-dynamics": ("sharpness_dynamics", "one_sam_endpoint"),
                    "landscape": ("interpolation", "slices", "m_sharpness_vs_gap")}


def test_every_lab_runs_as_a_notebook_here_or_in_its_own_test():
    assert set(OWN_TEST) <= set(LABS), set(OWN_TEST) - set(LABS)  # (HERE is the rest)
    assert len(HERE) >= 3 and len(OWN_TEST) >= 8, (HERE, OWN_TEST)  # neither side emptied


@pytest.mark.slow
@pytest.mark.parametrize("name", HERE)
def test_lab_runs_as_a_notebook(name, quick_lab_run):
    folder = quick_lab_run(name)  # runs the lab and makes the checks every lab must pass
    results = json.loads((folder / "out" / "results.json").read_text())
    for figure in EXPECTED_FIGURES.get(name, ()):
        assert figure in results["figures"], f"{name}: figure {figure} is missing"
