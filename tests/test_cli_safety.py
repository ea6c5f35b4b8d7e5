"""Issue 17: `--out` never deletes a user's files, interrupts end cleanly, every run resumes,
every bad input is one line. Each test here fails on the code before that issue."""
import contextlib
import hashlib
import io
import json
import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as hs

from sharp_theory import claims, labkit
from sharp_theory.claims import Claim, verdict
from sharp_theory.cli import main, select_claims
from sharp_theory.output import MARKER

# A lab with two saved stages (st.run calls), an option with choices, and two ways to stop
# half-way: STAGED_FAIL raises after the first stage, STAGED_WAIT sleeps after it (for signals).
STAGED_LAB = '''
# %% [markdown]
# # A staged lab for the CLI safety tests

# %%
import os, sys, time
import jax
import numpy as np
import sharp_theory as st

lab = st.labkit.start("staged", default_seeds=2, quick_seeds=1,
                      options={"grid": ("small", "large")}, quick_options={"grid": "small"})
steps = 30 if lab.extra.get("grid", "small") == "small" else 60
problem = st.problems.op_toy()
first = st.run(problem, st.optim.sam(lr=0.05, rho=0.1), steps=steps, key=jax.random.key(1),
               observe={"B": st.observables.of_params(st.measure.balancedness)}, stride=10)
if os.environ.get("STAGED_FAIL"):
    raise RuntimeError("stopped after the first stage")
if os.environ.get("STAGED_WAIT"):
    print("READY", flush=True)
    time.sleep(60)
second = st.run(problem, st.optim.gd(lr=0.05), steps=steps, key=jax.random.key(2),
                params0=first.params,
                observe={"B": st.observables.of_params(st.measure.balancedness)}, stride=10)
fig, axes = st.plotting.figure()
axes[0, 0].plot(np.asarray(second.observed["B"]))
lab.savefig(fig, "balance")
lab.save_arrays(B=second.observed["B"])
lab.finish({"final_B": float(second.final("B")), "first_B": float(first.final("B")),
            "seeds": lab.seeds})
'''


@pytest.fixture
def staged(tmp_path, monkeypatch):
    labs = tmp_path / "labs"
    labs.mkdir()
    (labs / "staged.py").write_text(STAGED_LAB)
    monkeypatch.setenv("SHARP_THEORY_LABS", str(labs))
    small = Claim(id="staged.balance.small", paper="stagedpaper", source="test",
                  statement="|B| stays below 10", regime="always", lab="staged",
                  check=lambda m: verdict(abs(m["final_B"]) < 10, {"final_B": m["final_B"]}))
    monkeypatch.setitem(claims.REGISTRY, small.id, small)
    work = tmp_path / "work"
    work.mkdir()
    return work


def run_cli(argv):
    """main(argv) in this process: (exit code, stdout, stderr); argparse exits become codes."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main([str(a) for a in argv])
        except SystemExit as exit_:
            code = exit_.code
    return code, out.getvalue(), err.getvalue()


def snapshot(root: Path, skip: Path | None = None) -> dict:
    """path -> (kind, content hash) of everything under ``root`` except ``skip``'s subtree."""
    found = {}
    for path in sorted(root.rglob("*")):
        if skip is not None and (path == skip or skip in path.parents):
            continue
        found[str(path.relative_to(root))] = ("dir", "") if path.is_dir() else \
            ("file", hashlib.sha256(path.read_bytes()).hexdigest())
    return found


def one_line_error(code, err):
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err and "expected" in lines[0]
    return lines[0]


# --- --out: only folders we own ----------------------------------------------------------------

@pytest.mark.parametrize("where", ["project", "."])
def test_out_never_replaces_a_users_folder(staged, monkeypatch, where):
    project = staged / "my_project"
    (project / "src").mkdir(parents=True)
    (project / "thesis.tex").write_text("three years of work")
    (project / "src" / "model.py").write_text("x = 1")
    before = snapshot(staged)
    if where == ".":
        monkeypatch.chdir(project)
    code, _, err = run_cli(["reproduce", "staged", "--quick", "--out",
                            "." if where == "." else project])
    line = one_line_error(code, err)
    assert "did not write" in line and "thesis.tex" in line
    assert snapshot(staged) == before


def test_our_folder_is_replaced_file_by_file_and_a_users_addition_is_refused(staged):
    out = staged / "results"
    assert run_cli(["reproduce", "staged", "--quick", "--out", out])[0] == 0
    marker = json.loads((out / MARKER).read_text())
    assert marker["files"] == ["balance.png", "balance.svg", "results.json", "trajectories.npz"]
    assert run_cli(["reproduce", "staged", "--out", out, "--grid", "large"])[0] == 0
    assert json.loads((out / "results.json").read_text())["quick"] is False
    (out / "notes.txt").write_text("mine")
    code, _, err = run_cli(["reproduce", "staged", "--quick", "--out", out])
    assert "notes.txt" in one_line_error(code, err)
    assert (out / "notes.txt").read_text() == "mine"


def test_a_folder_written_before_the_marker_existed_is_recognised(staged):
    out = staged / "old"
    assert run_cli(["reproduce", "staged", "--quick", "--out", out])[0] == 0
    (out / MARKER).unlink()  # what an earlier version left: results.json names lab and figures
    assert run_cli(["reproduce", "staged", "--quick", "--out", out])[0] == 0
    assert (out / MARKER).exists()


@pytest.mark.parametrize("mask", [0o022, 0o077])
def test_files_honour_the_umask(staged, mask, monkeypatch):
    import sharp_theory.output as outputs

    monkeypatch.setattr(outputs, "_UMASK", None)
    old = os.umask(mask)
    try:
        assert run_cli(["reproduce", "staged", "--quick", "--out", staged / "r"])[0] == 0
    finally:
        os.umask(old)
    for path in [staged / "r"] + list((staged / "r").iterdir()):
        mode = stat.S_IMODE(path.stat().st_mode)
        expected = (0o777 if path.is_dir() else 0o666) & ~mask
        assert mode == expected, (path.name, oct(mode), oct(expected))


# --- resume ------------------------------------------------------------------------------------

def test_a_failed_run_keeps_its_stages_and_the_rerun_resumes_bit_for_bit(staged, monkeypatch):
    straight = staged / "straight"
    assert run_cli(["reproduce", "staged", "--out", straight])[0] == 0
    resumed = staged / "resumed"
    monkeypatch.setenv("STAGED_FAIL", "1")
    with pytest.raises(RuntimeError, match="first stage"):
        run_cli(["reproduce", "staged", "--out", resumed])
    saved = sorted((resumed / ".checkpoints").rglob("stage-*"))
    assert [p.name for p in saved] == ["stage-0000-run.json", "stage-0000-run.npz"]
    assert not list(resumed.glob(".staging-*"))
    monkeypatch.delenv("STAGED_FAIL")
    code, _, err = run_cli(["reproduce", "staged", "--out", resumed])
    assert code == 0 and "resuming: 1 completed stage" in err
    a = json.loads((straight / "results.json").read_text())
    b = json.loads((resumed / "results.json").read_text())
    assert b["resumed_stages"] == 1 and a["resumed_stages"] == 0
    assert a["measured"] == b["measured"]  # bit for bit: JSON floats round-trip exactly
    np.testing.assert_array_equal(np.load(straight / "trajectories.npz")["B"],
                                  np.load(resumed / "trajectories.npz")["B"])
    assert not (resumed / ".checkpoints").exists()  # a finished run leaves no checkpoints


def test_no_resume_and_other_settings_start_from_zero(staged, monkeypatch):
    out = staged / "r"
    monkeypatch.setenv("STAGED_FAIL", "1")
    with pytest.raises(RuntimeError):
        run_cli(["reproduce", "staged", "--out", out])
    monkeypatch.delenv("STAGED_FAIL")
    # Other settings (more seeds) have another fingerprint: nothing is reused.
    assert run_cli(["reproduce", "staged", "--out", out, "--seeds", "3"])[0] == 0
    assert json.loads((out / "results.json").read_text())["resumed_stages"] == 0
    monkeypatch.setenv("STAGED_FAIL", "1")
    with pytest.raises(RuntimeError):
        run_cli(["reproduce", "staged", "--out", out])
    monkeypatch.delenv("STAGED_FAIL")
    assert run_cli(["reproduce", "staged", "--out", out, "--no-resume"])[0] == 0
    assert json.loads((out / "results.json").read_text())["resumed_stages"] == 0


# --- one-line errors, nothing accepted silently ---------------------------------------------------

def test_check_cached_needs_a_readable_results_file_and_runs_nothing(staged):
    code, out, err = run_cli(["check", "--cached", "--out", staged / "none", "staged"])
    assert "results.json" in one_line_error(code, err) and out == ""
    assert not (staged / "none").exists()
    broken = staged / "broken" / "staged"
    broken.mkdir(parents=True)
    for text in ("{", "[]", json.dumps({"lab": "staged", "quick": True, "claims": [{}],
                                        "measured": {}})):
        (broken / "results.json").write_text(text)
        code, _, err = run_cli(["check", "--cached", "--out", broken.parent, "staged"])
        assert "--cached" in one_line_error(code, err)
        code, _, err = run_cli(["report", "--out", broken.parent])
        assert "--out" in one_line_error(code, err)


def test_report_never_overwrites_someone_elses_index_html(staged):
    out = staged / "site"
    assert run_cli(["reproduce", "staged", "--quick", "--out", out / "staged"])[0] == 0
    (out / "index.html").write_text("<html>my course page</html>")
    code, _, err = run_cli(["report", "--out", out])
    assert "index.html" in one_line_error(code, err)
    assert (out / "index.html").read_text() == "<html>my course page</html>"
    (out / "index.html").unlink()
    assert run_cli(["report", "--out", out])[0] == 0
    assert run_cli(["report", "--out", out])[0] == 0  # our own page is replaced


@pytest.mark.parametrize("argv, fragment", [
    (["reproduce", "staged", "--quick", "--grid", "bogus"], "--grid='bogus'"),
    (["reproduce", "staged", "--quick", "--grid", "large"], "with --quick"),
    (["reproduce", "staged", "--device", "gpu"], "no --device for lab 'staged'"),
    (["reproduce", "staged", "--seeds", "1000000"], "--seeds=1000000"),
    (["reproduce", "staged", "--out", "/proc/sharp-theory-test"], "--out="),
    (["check", "nosuchpaper"], "a paper key"),
])
def test_bad_lab_input_is_one_line_and_writes_nothing(staged, monkeypatch, argv, fragment):
    monkeypatch.chdir(staged)
    code, _, err = run_cli(argv)
    assert fragment in one_line_error(code, err)
    assert list(staged.iterdir()) == []


def test_check_selects_claims_by_paper_key_or_lab_name(staged):
    by_paper = [c.id for c in select_claims(["stagedpaper"])]
    by_lab = [c.id for c in select_claims(["staged"])]
    assert by_paper == by_lab == ["staged.balance.small"]
    li = select_claims(["li2024"])
    assert li and all(c.paper == "li2024" for c in li)
    assert {c.lab for c in select_claims(["balancedness"])} == {"balancedness"}


def test_diagonal_net_bad_data_is_one_line(tmp_path):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(6, 4))
    y = X @ np.ones(4)
    cases = {
        "single.npy": (lambda p: np.save(p, X), ".npy array"),
        "complex.npz": (lambda p: np.savez(p, X=X + 1j, y=y, X_test=X, y_test=y), "real-valued"),
        "huge.npz": (lambda p: np.savez(p, X=X * 1e20, y=y * 1e20, X_test=X, y_test=y),
                     "fit in float32"),
    }
    for name, (write, fragment) in cases.items():
        write(tmp_path / name)
        code, _, err = run_cli(["run", "diagonal-net", "--data", tmp_path / name, "--steps", "5"])
        assert fragment in one_line_error(code, err)
    np.savez(tmp_path / "ok.npz", X=X, y=y, X_test=X, y_test=y)
    code, _, err = run_cli(["run", "diagonal-net", "--data", tmp_path / "ok.npz",
                            "--steps", str(10 ** 12)])
    assert "GiB" in one_line_error(code, err)


def test_help_documents_the_environment_variables():
    code, out, _ = run_cli(["--help"])
    assert code == 0
    for name in ("SHARP_THEORY_PROGRESS", "SHARP_THEORY_CPU_DEVICES", "SHARP_THEORY_QUICK",
                 "SHARP_THEORY_LABS", "130", "143"):
        assert name in out
    code, out, _ = run_cli(["reproduce", "--help"])
    assert "--no-resume" in out and ".checkpoints" in out


# --- signals in a real process -------------------------------------------------------------------

def _console(args, env_extra, labs):
    env = dict(os.environ, SHARP_THEORY_LABS=str(labs), SHARP_THEORY_CPU_DEVICES="1", **env_extra)
    return subprocess.Popen([str(Path(sys.executable).with_name("sharp-theory"))] + args,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


@pytest.mark.parametrize("signum, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_ends_the_run_at_once_with_one_line_and_the_rerun_resumes(staged, signum, code):
    labs = Path(os.environ["SHARP_THEORY_LABS"])
    out = staged / "out"
    process = _console(["reproduce", "staged", "--out", str(out)], {"STAGED_WAIT": "1"}, labs)
    assert process.stdout.readline().strip() == "READY"  # the first stage is saved
    sent = time.monotonic()
    process.send_signal(signum)
    stdout, stderr = process.communicate(timeout=30)
    assert time.monotonic() - sent < 5
    assert process.returncode == code, stderr
    assert "rerun the same command" in stderr.strip().splitlines()[-1], stderr
    assert "Traceback" not in stderr
    assert not list(out.glob(".staging-*")) and not list(out.rglob("*.tmp"))
    assert len(list((out / ".checkpoints").rglob("stage-*.json"))) == 1
    rerun = _console(["reproduce", "staged", "--out", str(out)], {}, labs)
    _, stderr = rerun.communicate(timeout=120)
    assert rerun.returncode == 0, stderr
    assert json.loads((out / "results.json").read_text())["resumed_stages"] == 1


# --- the CLI fuzz test -----------------------------------------------------------------------------

OUT_KINDS = ("new", "nested_new", "empty", "ours", "foreign", "a_file", "under_a_file", "proc")
ARGUMENTS = hs.one_of(
    hs.tuples(hs.just("reproduce"), hs.sampled_from(["staged", "nolab"]),
              hs.lists(hs.sampled_from([["--quick"], ["--seeds", "2"], ["--seeds", "0"],
                                        ["--seeds", "x"], ["--grid", "small"],
                                        ["--grid", "large"], ["--grid", "bogus"],
                                        ["--device", "cpu"], ["--no-resume"], ["--bogus"]]),
                       max_size=3)),
    hs.tuples(hs.just("check"), hs.sampled_from(["staged", "stagedpaper", "staged.balance.small",
                                                 "nope"]),
              hs.lists(hs.sampled_from([["--quick"], ["--cached"]]), max_size=2)),
    hs.tuples(hs.just("report"), hs.just(""), hs.just([])),
)


def _make_out(root: Path, kind: str) -> Path:
    if kind == "new":
        return root / "fresh"
    if kind == "nested_new":
        return root / "a" / "b" / "c"
    if kind == "empty":
        (root / "empty").mkdir()
        return root / "empty"
    if kind == "ours":
        (root / "ours").mkdir()
        (root / "ours" / MARKER).write_text(json.dumps(
            {"written_by": "sharp-theory", "lab": "staged", "files": ["results.json"]}))
        (root / "ours" / "results.json").write_text("{}")
        return root / "ours"
    if kind == "foreign":
        (root / "foreign").mkdir()
        (root / "foreign" / "thesis.tex").write_text("mine")
        return root / "foreign"
    if kind in ("a_file", "under_a_file"):
        (root / "a_file").write_text("a file")
        return root / "a_file" if kind == "a_file" else root / "a_file" / "sub"
    return Path("/proc/sharp-theory-fuzz")


@settings(max_examples=40, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(arguments=ARGUMENTS, out_kind=hs.sampled_from(OUT_KINDS))
def test_cli_fuzz_in_process(staged, tmp_path_factory, arguments, out_kind):
    command, target, flags = arguments
    root = tmp_path_factory.mktemp("fuzz")
    out = _make_out(root, out_kind)
    argv = [command] + ([target] if target else []) + [f for pair in flags for f in pair]
    argv += ["--out", str(out)]
    before = snapshot(root, skip=out)
    try:
        code, _, err = run_cli(argv)
    except Exception as error:  # noqa: BLE001 - the point: nothing may escape as a traceback
        pytest.fail(f"{argv} raised {type(error).__name__}: {error}")
    assert code in (0, 1, 2), (argv, code, err)
    if code == 2:
        assert len(err.strip().splitlines()) == 1, (argv, err)
    assert "Traceback" not in err
    after = snapshot(root, skip=out)
    # Nothing outside --out changed; a successful run may have created --out's parents.
    created = {k for k in set(after) - set(before)
               if code == 0 and root / k in out.parents and after[k][0] == "dir"}
    assert {k: v for k, v in after.items() if k not in created} == before, argv
    assert not list(root.rglob(".staging-*")) and not list(root.rglob("*.tmp")), argv
    if out_kind == "foreign":
        assert (out / "thesis.tex").read_text() == "mine"


@settings(max_examples=4, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(delay=hs.floats(0.0, 3.0), signum=hs.sampled_from([signal.SIGINT, signal.SIGTERM]),
       quick=hs.booleans())
def test_cli_fuzz_signals_at_random_times(staged, tmp_path_factory, delay, signum, quick):
    labs = Path(os.environ["SHARP_THEORY_LABS"])
    root = tmp_path_factory.mktemp("signals")
    out = root / "out"
    args = ["reproduce", "staged", "--out", str(out)] + (["--quick"] if quick else [])
    process = _console(args, {}, labs)
    # Random times from the moment the lab has claimed its folder (the command line's signal
    # handling is in place well before that: it is installed before any JAX backend starts).
    deadline = time.monotonic() + 60
    while not (out / MARKER).exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(delay)
    sent = time.monotonic()
    process.send_signal(signum)
    _, stderr = process.communicate(timeout=60)
    elapsed = time.monotonic() - sent
    context = (delay, signum, quick, process.returncode, round(elapsed, 2), stderr[-2000:])
    assert elapsed < 5, context
    assert process.returncode in (0, 128 + signum), context
    assert "Traceback" not in stderr, context
    if process.returncode:  # our line is the last one (XLA may log a slow compile before it)
        assert "interrupted by" in stderr.strip().splitlines()[-1], context
    assert not list(root.rglob(".staging-*")) and not list(root.rglob("*.tmp")), context
    assert [p.name for p in root.iterdir()] in ([], ["out"]), context
