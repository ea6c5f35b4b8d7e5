"""The CLI and the lab kit: outputs, atomic writes, verdict exit codes, one-line errors."""
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from sharp_theory import claims, labkit
from sharp_theory.claims import Claim, verdict
from sharp_theory.cli import main

TINY_LAB = '''
# %% [markdown]
# # A tiny lab for the CLI tests

# %%
import numpy as np
import sharp_theory as st

lab = st.labkit.start("tiny", default_seeds=3, quick_seeds=1)
lab.record_config(size=4 if lab.quick else 8)
fig, axes = st.plotting.figure()
axes[0, 0].plot([0, 1], [0, 1])
lab.savefig(fig, "line")
if lab.extra.get("explode") or __import__("os").environ.get("TINY_EXPLODE"):
    raise RuntimeError("the lab failed half-way")
lab.save_arrays(values=np.arange(3.0))
lab.finish({"value": 1.5, "seeds_used": lab.seeds})
'''


@pytest.fixture
def tiny_lab(tmp_path, monkeypatch):
    labs = tmp_path / "labs"
    labs.mkdir()
    (labs / "tiny.py").write_text(TINY_LAB)
    monkeypatch.setenv("SHARP_THEORY_LABS", str(labs))
    below = Claim(id="tiny.value.below_two", paper="tiny", source="test", statement="value < 2",
                  regime="always", lab="tiny",
                  check=lambda m: verdict(m["value"] < 2, {"value": m["value"]}))
    monkeypatch.setitem(claims.REGISTRY, below.id, below)
    return tmp_path


def test_reproduce_writes_figures_results_and_trajectories(tiny_lab):
    out = tiny_lab / "results" / "tiny"
    assert main(["reproduce", "tiny", "--quick", "--out", str(out)]) == 0
    assert {p.name for p in out.iterdir()} == {"line.png", "line.svg", "results.json",
                                               "trajectories.npz", ".sharp-theory.json"}
    marker = json.loads((out / ".sharp-theory.json").read_text())
    assert marker["files"] == ["line.png", "line.svg", "results.json", "trajectories.npz"]
    results = json.loads((out / "results.json").read_text())
    assert results["lab"] == "tiny" and results["quick"] is True and results["seeds"] == 1
    assert results["config"] == {"size": 4}
    for key in ("python", "jax", "numpy", "sharp_theory", "git_commit"):
        assert key in results["versions"]
    assert results["wall_time_s"] >= 0
    assert results["claims"] == [{
        "id": "tiny.value.below_two", "paper": "tiny", "source": "test", "statement": "value < 2",
        "regime": "always", "expected": "pass", "established_on": "the lab's full run",
        "verdict": "pass", "measured": {"value": 1.5}, "detail": ""}]
    assert results["grid"] == "default"
    assert results["environment"]["precision"] == "float64"
    assert results["environment"]["devices"] >= 1 and results["environment"]["processes"] == 1
    np.testing.assert_array_equal(np.load(out / "trajectories.npz")["values"], [0.0, 1.0, 2.0])
    # No staging folders are left next to the output.
    assert [p.name for p in out.parent.iterdir()] == ["tiny"]


def test_seeds_flag_and_overwrite(tiny_lab):
    out = tiny_lab / "out"
    assert main(["reproduce", "tiny", "--out", str(out)]) == 0
    assert json.loads((out / "results.json").read_text())["seeds"] == 3
    assert main(["reproduce", "tiny", "--out", str(out), "--seeds", "5"]) == 0
    assert json.loads((out / "results.json").read_text())["measured"]["seeds_used"] == 5


def test_a_failing_lab_leaves_nothing_behind(tiny_lab, monkeypatch):
    out = tiny_lab / "results" / "tiny"
    monkeypatch.setenv("TINY_EXPLODE", "1")
    with pytest.raises(RuntimeError, match="half-way"):
        main(["reproduce", "tiny", "--out", str(out)])
    # The folders this run created (results/ and results/tiny) are gone again.
    assert not out.parent.exists()


def test_a_failing_rerun_keeps_the_previous_results(tiny_lab, monkeypatch):
    out = tiny_lab / "out"
    assert main(["reproduce", "tiny", "--quick", "--out", str(out)]) == 0
    monkeypatch.setenv("TINY_EXPLODE", "1")
    with pytest.raises(RuntimeError):
        main(["reproduce", "tiny", "--out", str(out)])
    assert json.loads((out / "results.json").read_text())["quick"] is True


def test_check_exit_codes_follow_the_verdicts(tiny_lab, monkeypatch, capsys):
    out = tiny_lab / "results"
    assert main(["check", "tiny.value.below_two", "--quick", "--out", str(out)]) == 0
    assert "tiny.value.below_two" in capsys.readouterr().out
    above = Claim(id="tiny.value.above_two", paper="tiny", source="test", statement="value > 2",
                  regime="always", lab="tiny",
                  check=lambda m: verdict(m["value"] > 2, {"value": m["value"]}))
    monkeypatch.setitem(claims.REGISTRY, above.id, above)
    assert main(["check", "--quick", "--out", str(out), "tiny.value.above_two"]) == 1
    assert "differ" in capsys.readouterr().out
    # An expected failure (a finding we report) matches its expectation: exit 0.
    finding = Claim(id="tiny.value.finding", paper="tiny", source="test", statement="value > 2",
                    regime="always", lab="tiny", expected="fail",
                    check=lambda m: verdict(m["value"] > 2, {"value": m["value"]}))
    monkeypatch.setitem(claims.REGISTRY, finding.id, finding)
    assert main(["check", "--cached", "--out", str(out), "tiny.value.finding"]) == 0


def test_inconclusive_is_tolerated_only_at_quick_sizes(tiny_lab, monkeypatch):
    out = tiny_lab / "results"
    unsure = Claim(id="tiny.value.unsure", paper="tiny", source="test", statement="needs size",
                   regime="always", lab="tiny",
                   check=lambda m: claims.Verdict("inconclusive", {}, "grid too small"))
    monkeypatch.setitem(claims.REGISTRY, unsure.id, unsure)
    assert main(["check", "--quick", "--out", str(out), "tiny.value.unsure"]) == 0
    assert main(["check", "--out", str(out), "tiny.value.unsure"]) == 1


def test_report_builds_one_page(tiny_lab):
    out = tiny_lab / "results"
    assert main(["reproduce", "tiny", "--quick", "--out", str(out / "tiny")]) == 0
    assert main(["report", "--out", str(out)]) == 0
    page = (out / "index.html").read_text()
    assert "tiny.value.below_two" in page and "tiny/line.png" in page


@pytest.mark.parametrize("argv, fragment", [
    (["reproduce", "no-such-lab"], "invalid LAB='no-such-lab'"),
    (["check", "no.such.claim"], "invalid claim='no.such.claim'"),
    (["reproduce", "tiny", "--seeds", "0"], "invalid --seeds=0"),
    (["report", "--out", "{tmp}/empty"], "invalid --out="),
])
def test_bad_input_is_one_line_exit_2_and_writes_nothing(tiny_lab, capsys, argv, fragment):
    argv = [a.replace("{tmp}", str(tiny_lab)) for a in argv]
    before = sorted(p.name for p in tiny_lab.iterdir())
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and fragment in err and "expected" in err
    assert sorted(p.name for p in tiny_lab.iterdir()) == before


def test_unwritable_out_is_refused_before_any_work(tiny_lab, capsys):
    blocker = tiny_lab / "a_file"
    blocker.write_text("not a folder")
    assert main(["reproduce", "tiny", "--out", str(blocker / "sub")]) == 2
    err = capsys.readouterr().err
    assert "invalid --out=" in err and "is a file" in err
    assert blocker.read_text() == "not a folder"


def test_console_script_lists_and_rejects_in_one_line(tmp_path):
    executable = Path(sys.executable).with_name("sharp-theory")
    listing = subprocess.run([str(executable), "list"], capture_output=True, text=True, timeout=120)
    assert listing.returncode == 0 and "Labs" in listing.stdout and "Claims" in listing.stdout
    bad = subprocess.run([str(executable), "reproduce", "nope", "--out", str(tmp_path / "x")],
                         capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and len(bad.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "x").exists()
    usage = subprocess.run([str(executable), "reproduce"], capture_output=True, text=True,
                           timeout=120)
    assert usage.returncode == 2 and len(usage.stderr.strip().splitlines()) == 1


def test_every_registered_claim_names_an_existing_lab():
    labs = labkit.available_labs()
    for claim in claims.all_claims():
        assert claim.lab in labs, f"{claim.id} names lab {claim.lab!r}, which does not exist"
        assert claim.expected in claims.VERDICTS
