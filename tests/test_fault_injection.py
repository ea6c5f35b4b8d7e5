"""Issue "Results you can trust": every fault an operator meets, injected for real.

Each test reproduces one finding of that issue (a stale-precision or tampered stage, a pickle in a
stage, another lab's folder, two runs in one folder, a full disk, a long name, bad environment
values, an unwritable cache, edited provenance, hostile fuzz files, a differing verdict) and
fails on the code before it. The library's own limits (Ctrl-C in a long st.run, memory
estimates, vectorized seed keys) are in tests/test_library_limits.py.
"""
import errno
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from sharp_theory import checkpoints, claims
from sharp_theory.claims import Claim, verdict
from sharp_theory.cli import EXIT_CODES

from test_cli_safety import one_line_error, run_cli, snapshot, staged  # noqa: F401 (fixture)

ROOT = Path(__file__).resolve().parents[1]
CONSOLE = str(Path(sys.executable).with_name("sharp-theory"))

OTHER_LAB = '''
# %% [markdown]
# # Another lab, to share a folder with the staged one

# %%
import sharp_theory as st

lab = st.labkit.start("other", default_seeds=1, quick_seeds=1)
lab.finish({"value": 1.0})
'''


@pytest.fixture
def labs(staged):
    """test_cli_safety's staged lab (two st.run stages, a claim that passes) and a second lab,
    in SHARP_THEORY_LABS; returns the work folder."""
    (Path(os.environ["SHARP_THEORY_LABS"]) / "other.py").write_text(OTHER_LAB)
    return staged


def console(args, *, env=None, cwd=None):
    """The real ``sharp-theory`` executable in a subprocess (one JAX CPU device)."""
    full_env = {**os.environ, "SHARP_THEORY_CPU_DEVICES": "1", **(env or {})}
    return subprocess.Popen([CONSOLE] + [str(a) for a in args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=full_env, cwd=cwd)


def finished(process, timeout=180):
    out, err = process.communicate(timeout=timeout)
    return process.returncode, out, err


def interrupted_run(out: Path, monkeypatch):
    """A run of the staged lab that saved its first stage and then failed."""
    monkeypatch.setenv("STAGED_FAIL", "1")
    with pytest.raises(RuntimeError, match="first stage"):
        run_cli(["reproduce", "staged", "--out", out])
    monkeypatch.delenv("STAGED_FAIL")
    [store] = [p for p in (out / ".checkpoints").iterdir()]
    return store


def straight_results(root: Path) -> dict:
    out = root / "straight"
    assert run_cli(["reproduce", "staged", "--out", out])[0] == 0
    return json.loads((out / "results.json").read_text())


def resume(out: Path):
    code, _, err = run_cli(["reproduce", "staged", "--out", out])
    assert code == 0, err
    return json.loads((out / "results.json").read_text()), err


# --- item 1: checkpoints that cannot lie ----------------------------------------------------------

def resume_console(out: Path, env=None) -> dict:
    code, _, err = finished(console(["reproduce", "staged", "--out", out], env=env))
    assert code == 0, err
    return json.loads((out / "results.json").read_text())


def test_a_float32_stage_is_never_resumed_into_a_float64_run(labs):
    out = labs / "mixed"
    first = console(["reproduce", "staged", "--out", out],
                    env={"SHARP_THEORY_X64": "0", "STAGED_FAIL": "1"})
    code, _, err = finished(first)
    assert code != 0 and "first stage" in err
    assert len(list((out / ".checkpoints").rglob("stage-*.json"))) == 1
    results = resume_console(out)  # the same device count, float64
    assert results["resumed_stages"] == 0
    assert results["environment"]["precision"] == "float64"
    # The float32 stage is still there for a float32 rerun, which does resume it.
    again = resume_console(out, env={"SHARP_THEORY_X64": "0"})
    assert again["resumed_stages"] == 1 and again["environment"]["precision"] == "float32"
    assert not (out / ".checkpoints").exists()


@pytest.mark.parametrize("damage", ["array", "tree", "truncated", "description", "moved"])
def test_a_damaged_stage_is_computed_again_with_one_note(labs, monkeypatch, damage):
    out = labs / damage
    store = interrupted_run(out, monkeypatch)
    arrays_path, tree_path = store / "stage-0000-run.npz", store / "stage-0000-run.json"
    if damage == "array":  # one number changed inside the arrays, the file otherwise valid
        with np.load(arrays_path) as data:
            arrays = {name: np.array(data[name]) for name in data.files}
        name = next(n for n, a in arrays.items() if a.dtype.kind == "f" and a.size)
        arrays[name].flat[-1] += 1e-3
        np.savez(arrays_path, **arrays)
    elif damage == "tree":  # a stored value edited in the description
        header = json.loads(tree_path.read_text())
        text = json.dumps(header).replace('"t": "atom", "v": "', '"t": "atom", "v": "x', 1)
        assert text != json.dumps(header)
        tree_path.write_text(text)
    elif damage == "truncated":
        arrays_path.write_bytes(arrays_path.read_bytes()[:100])
    elif damage == "description":
        tree_path.write_text("{not json")
    else:  # a stage of another store (other settings) copied in
        header = json.loads(tree_path.read_text())
        header["key"] = "0" * 16
        tree_path.write_text(json.dumps(header))
    results, err = resume(out)
    assert results["resumed_stages"] == 0
    notes = [line for line in err.splitlines() if "saved stage 0 (run) is not used" in line]
    assert len(notes) == 1, err
    assert results["measured"] == straight_results(labs)["measured"]


def test_a_stage_cannot_run_code_when_loaded(labs, monkeypatch, tmp_path):
    out = labs / "hostile"
    store = interrupted_run(out, monkeypatch)
    touched = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):
            return (open, (str(touched), "w"))

    arrays_path, tree_path = store / "stage-0000-run.npz", store / "stage-0000-run.json"
    header = json.loads(tree_path.read_text())
    hostile = np.empty(1, dtype=object)
    hostile[0] = Payload()
    np.savez(arrays_path, a0=hostile)
    # A forger can recompute the checksum; loading must still not unpickle anything.
    header["sha256"] = checkpoints._checksum(arrays_path.read_bytes(),
                                             json.dumps(header["tree"], sort_keys=True))
    tree_path.write_text(json.dumps(header))
    results, err = resume(out)
    assert not touched.exists()
    assert results["resumed_stages"] == 0 and "is not used" in err


def test_a_stage_naming_a_foreign_class_is_refused(tmp_path):
    store = checkpoints.StageStore.open(tmp_path, "k" * 16, resume=True)
    assert store.save(0, "run", {"x": np.arange(3.0)})
    header = json.loads((tmp_path / ("k" * 16) / "stage-0000-run.json").read_text())
    header["tree"] = {"t": "dataclass", "cls": "subprocess:Popen", "fields": {}}
    header["sha256"] = checkpoints._checksum(
        (tmp_path / ("k" * 16) / "stage-0000-run.npz").read_bytes(),
        json.dumps(header["tree"], sort_keys=True))
    (tmp_path / ("k" * 16) / "stage-0000-run.json").write_text(json.dumps(header))
    with pytest.raises(checkpoints.DamagedStage, match="outside sharp_theory"):
        store.load(0, "run")


def test_stages_round_trip_bit_for_bit():
    import jax
    import optax

    from sharp_theory.dynamics.trajectory import Trajectory

    value = {"trajectory": Trajectory(params={"x": np.linspace(0, 1, 5)},
                                      observed={"loss": np.float32([1.5, 0.25])},
                                      steps=np.arange(2), diverged_at=np.int64(-1),
                                      grad_evals=np.int64(7), optimizer="sam"),
             "state": optax.ScaleByAdamState(count=np.int32(3), mu=np.ones(2), nu=np.zeros(2)),
             "key": jax.random.key(3), "numbers": [1, 2.5, float("nan"), None, "text", True],
             "pair": (np.float64(0.1), -7)}
    arrays = {}
    tree = checkpoints.encode(value, arrays)
    back = checkpoints.decode(json.loads(json.dumps(tree)), arrays)
    assert back["trajectory"].optimizer == "sam" and back["state"].count == 3
    np.testing.assert_array_equal(back["trajectory"].params["x"], value["trajectory"].params["x"])
    assert back["trajectory"].observed["loss"].dtype == np.float32
    assert back["numbers"][:2] == [1, 2.5] and np.isnan(back["numbers"][2])
    assert back["numbers"][3:] == [None, "text", True] and back["pair"][1] == -7
    assert np.array_equal(jax.random.key_data(back["key"]), jax.random.key_data(value["key"]))
    with pytest.raises(checkpoints.NotStorable):
        checkpoints.encode({"f": lambda: 0}, {})


def test_the_fingerprint_changes_with_precision_devices_and_versions(monkeypatch):
    settings = {"lab": "x", "quick": True}
    base = checkpoints.run_fingerprint(settings)
    environment = checkpoints.numeric_environment()
    for key, value in [("precision", "float32"), ("devices", 99), ("processes", 2),
                       ("jax", "0.0.1"), ("numpy", "1.0"), ("jaxlib", "0.0.1")]:
        changed = dict(environment, **{key: value})
        monkeypatch.setattr(checkpoints, "numeric_environment", lambda changed=changed: changed)
        assert checkpoints.run_fingerprint(settings) != base, key


# --- items 2 and 3: one run per folder, no other lab's results deleted ------------------------------

def test_another_labs_folder_is_refused_unless_replacing_is_asked_for(labs):
    out = labs / "shared"
    assert run_cli(["reproduce", "other", "--out", out])[0] == 0
    before = snapshot(out)
    code, _, err = run_cli(["reproduce", "staged", "--quick", "--out", out])
    assert "results of lab 'other'" in one_line_error(code, err)
    assert snapshot(out) == before
    code, _, err = run_cli(["reproduce", "staged", "--quick", "--out", out, "--replace-other-lab"])
    assert code == 0, err
    assert json.loads((out / "results.json").read_text())["lab"] == "staged"
    assert not (out / ".sharp-theory.lock").exists()


@pytest.mark.parametrize("second", [["--seeds", "3"], []], ids=["other settings", "same settings"])
def test_a_second_run_into_a_busy_folder_is_refused_and_breaks_nothing(labs, second):
    out = labs / "busy"
    first = console(["reproduce", "staged", "--out", out], env={"STAGED_WAIT": "1"})
    try:
        assert first.stdout.readline().strip() == "READY"  # first stage saved, lock held
        stages = snapshot(out / ".checkpoints")
        code, _, err = run_cli(["reproduce", "staged", "--out", out] + second)
        message = one_line_error(code, err)
        assert f"process {first.pid}" in message and "no other run is writing" in message
        assert snapshot(out / ".checkpoints") == stages  # nothing adopted, nothing deleted
        code, _, err = run_cli(["check", "--cached", "--out", labs, "staged"])
        assert code == 2  # no results yet: one line, and the running lab is untouched
        assert snapshot(out / ".checkpoints") == stages
    finally:
        first.send_signal(signal.SIGKILL)  # dies without any clean-up: the OS frees the lock
        first.wait(timeout=30)
    assert resume_console(out)["resumed_stages"] == 1


def test_runs_started_together_one_wins_the_other_names_it(labs):
    out = labs / "together"
    runs = [console(["reproduce", "staged", "--out", out], env={"STAGED_WAIT": "1"})
            for _ in range(2)]
    try:
        codes = []
        for run in runs:
            line = run.stdout.readline().strip()
            codes.append(line)
        winner = [run for run, line in zip(runs, codes) if line == "READY"]
        loser = [run for run, line in zip(runs, codes) if line != "READY"]
        assert len(winner) == 1 and len(loser) == 1, codes
        code, _, err = finished(loser[0])
        assert code == 2 and len(err.strip().splitlines()) == 1, err
        assert f"process {winner[0].pid}" in err and "Traceback" not in err
    finally:
        for run in runs:
            if run.poll() is None:
                run.send_signal(signal.SIGTERM)
                run.wait(timeout=30)


# --- item 4: faults in one line -----------------------------------------------------------------

def test_a_full_disk_is_one_line_exit_3_and_leaves_no_temp_file(labs, monkeypatch):
    """ENOSPC from the writer of a stage (injected after the temporary file was created)."""
    real = checkpoints.write_atomic

    def full_disk(path, write):
        def fill_then_fail(temporary):
            Path(temporary).write_bytes(b"partial")
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(temporary))
        return real(path, fill_then_fail)

    monkeypatch.setattr(checkpoints, "write_atomic", full_disk)
    out = labs / "full"
    code, _, err = run_cli(["reproduce", "staged", "--out", out])
    assert code == 3 and EXIT_CODES[3].startswith("a file-system fault")
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "No space left on device" in lines[0], err
    assert not list(out.rglob("*.tmp")) and not list(out.glob(".staging-*"))
    monkeypatch.setattr(checkpoints, "write_atomic", real)
    results, _ = resume(out)
    assert results["resumed_stages"] == 0


@pytest.fixture
def small_tmpfs(tmp_path):
    mount = tmp_path / "small"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(mount)],
                          capture_output=True)
    if done.returncode != 0:
        pytest.skip("cannot mount a tmpfs here (needs root); the injected ENOSPC test covers it")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], capture_output=True)


def test_a_real_full_disk_is_one_line_exit_3(labs, small_tmpfs):
    (small_tmpfs / "filler").write_bytes(b"\0" * (200 * 1024))  # leave ~56 KiB
    out = small_tmpfs / "out"
    code, _, err = finished(console(["reproduce", "staged", "--out", out]))
    assert code == 3, err
    assert len(err.strip().splitlines()) == 1 and "No space left on device" in err, err
    assert not list(out.rglob("*.tmp")) and not list(out.glob(".staging-*"))


def test_a_name_too_long_is_one_line(labs):
    code, _, err = run_cli(["reproduce", "staged", "--out", labs / ("x" * 300)])
    assert "File name too long" in one_line_error(code, err)


@pytest.mark.parametrize("variable, value", [
    ("SHARP_THEORY_CPU_DEVICES", "0"), ("SHARP_THEORY_CPU_DEVICES", "abc"),
    ("SHARP_THEORY_COMPILE_CACHE", "relative/cache"), ("SHARP_THEORY_X64", "maybe"),
    ("SHARP_THEORY_X64", "false"), ("SHARP_THEORY_PROGRESS", "sometimes")])
def test_a_bad_environment_value_is_one_line_and_exit_2(labs, variable, value):
    code, out, err = finished(console(["list"], env={variable: value}), timeout=60)
    assert code == 2, err
    assert err.strip().splitlines() == [err.strip()] and variable in err and repr(value) in err
    assert "Traceback" not in err and out == ""


def test_an_unwritable_cache_is_skipped_with_one_note_and_nothing_in_tmp(labs, tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    env = {"XDG_CACHE_HOME": str(blocker / "cache"), "XDG_CONFIG_HOME": str(blocker / "config"),
           "TMPDIR": str(scratch)}
    env_clean = {k: v for k, v in os.environ.items() if k not in ("MPLCONFIGDIR",
                                                                   "SHARP_THEORY_COMPILE_CACHE")}
    process = subprocess.Popen([CONSOLE, "reproduce", "staged", "--quick", "--out",
                                str(labs / "cache")], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True,
                               env=dict(env_clean, SHARP_THEORY_CPU_DEVICES="1", **env))
    code, _, err = finished(process)
    assert code == 0, err
    notes = [line for line in err.splitlines() if line.startswith("sharp-theory: note:")]
    assert len(notes) == 1 and "compile cache" in notes[0], err
    assert "Matplotlib" not in err and "WARNING" not in err, err
    assert list(scratch.iterdir()) == []


# --- item 5: provenance checked -----------------------------------------------------------------

def test_check_cached_and_report_name_results_from_other_code(labs):
    out = labs / "results"
    assert run_cli(["reproduce", "staged", "--out", out / "staged"])[0] == 0
    code, _, err = run_cli(["check", "--cached", "--out", out, "staged"])
    assert code == 0 and "warning" not in err
    path = out / "staged" / "results.json"
    results = json.loads(path.read_text())
    results["versions"].update(git_commit="0" * 40, sharp_theory="9.9.9", jax="0.0.1")
    path.write_text(json.dumps(results))
    code, _, err = run_cli(["check", "--cached", "--out", out, "staged"])
    assert code == 0
    [warning] = [line for line in err.splitlines() if "warning" in line]
    for fragment in ("git_commit 0000000000000000000000000000000000000000 ->",
                     "sharp_theory 9.9.9 ->", "jax 0.0.1 ->"):
        assert fragment in warning
    assert run_cli(["check", "--cached", "--strict", "--out", out, "staged"])[0] == 4
    code, _, err = run_cli(["report", "--out", out])
    assert code == 0 and "sharp_theory 9.9.9" in err
    assert "Computed by other code" in (out / "index.html").read_text()
    (out / "index.html").unlink()
    assert run_cli(["report", "--out", out, "--strict"])[0] == 4
    assert not (out / "index.html").exists()


# --- item 6: a fuzz deadline ----------------------------------------------------------------------

def fuzz(tmp_path, source, *args):
    path = tmp_path / "bound.py"
    path.write_text(source)
    started = time.monotonic()
    process = console(["fuzz", str(path), *args])
    code, out, err = finished(process, timeout=120)
    return code, out, err, time.monotonic() - started


HEADER = "import sharp_theory as st\nfrom hypothesis import strategies as hs\n"


def test_a_file_that_loops_at_import_ends_at_the_deadline(tmp_path):
    code, _, err, took = fuzz(tmp_path, HEADER + "while True:\n    pass\n", "--budget-s", "1")
    assert code == 2 and "exceeded at import" in err and len(err.strip().splitlines()) == 1, err
    assert took < 30


def test_a_claim_that_sleeps_ends_at_the_deadline_naming_it(tmp_path):
    source = HEADER + '''
import time

@st.testing.claim(x=hs.floats(0, 1))
def sleepy(x):
    """Holds, slowly."""
    time.sleep(30)
    return 1.0
'''
    code, _, err, took = fuzz(tmp_path, source, "--budget-s", "1")
    assert code == 2 and "exceeded in claim sleepy after 0 instance(s)" in err, err
    assert took < 25


def test_holds_needs_the_minimum_number_of_instances(tmp_path):
    source = HEADER + '''
import time

@st.testing.claim(x=hs.floats(0, 1))
def slow(x):
    """Holds, at 0.3 s an instance."""
    time.sleep(0.3)
    return 1.0
'''
    code, out, err, _ = fuzz(tmp_path, source, "--budget-s", "1.5")
    assert code == 2 and "fewer than the 100 that 'holds' requires" in err, err
    code, out, err, _ = fuzz(tmp_path, source, "--budget-s", "1.5", "--min-instances", "2")
    assert code == 0 and "holds after" in out, err


def test_a_raising_claim_names_its_file_and_line_and_the_worst_slack_is_shown(tmp_path):
    source = HEADER + '''
@st.testing.claim(x=hs.floats(0, 1))
def broken(x):
    """Raises."""
    values = [1.0]
    return values[3]
'''
    code, _, err, _ = fuzz(tmp_path, source, "--budget-s", "5")
    assert code == 2 and f"{tmp_path / 'bound.py'}:8" in err, err
    source = HEADER + '''
@st.testing.claim(x=hs.floats(0.0, 4.0))
def below_three(x):
    """x <= 3."""
    return 3.0 - x
'''
    code, out, _, _ = fuzz(tmp_path, source, "--budget-s", "5")
    assert code == 1 and "worst violation found: slack -1.0 at x=4.0" in out, out
    assert "slack: -4.440892098500626e-16" in out


# --- item 8: exit codes that mean what they say -----------------------------------------------------

def test_reproduce_exits_1_when_a_verdict_differs(labs, monkeypatch):
    flipped = Claim(id="staged.balance.tiny", paper="stagedpaper", source="test",
                    statement="|B| stays below 1e-300", regime="always", lab="staged",
                    check=lambda m: verdict(abs(m["final_B"]) < 1e-300, {"final_B": m["final_B"]}))
    monkeypatch.setitem(claims.REGISTRY, flipped.id, flipped)
    code, out, err = run_cli(["reproduce", "staged", "--quick", "--out", labs / "flip"])
    assert code == 1 and EXIT_CODES[1].startswith("a verdict differs")
    assert "staged.balance.tiny" in err.strip().splitlines()[-1]


def test_every_exit_code_is_documented_in_the_readme_and_the_help():
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("### Exit codes"):]
    code, out, _ = run_cli(["--help"])
    for exit_code in EXIT_CODES:
        assert f"| {exit_code} |" in section, exit_code
        assert str(exit_code) in out


# --- item 9: a verdict's grid -------------------------------------------------------------------

def test_a_claim_states_its_grid_and_its_expectation_follows_the_grid():
    claim = claims.get("chen2023.benign_overfitting.sam_smaller_noise_coefficients")
    assert "--grid cpu" in claim.established_on
    assert claim.expected_for("cpu") == "pass" and claim.expected_for("paper") == "fail"
    assert claim.expected_for(None) == "pass"


def test_a_notebook_that_starts_its_lab_again_gets_the_folder_back(tmp_path):
    """A cell rerun after a failed one: the same process claims its own folder a second time."""
    from sharp_theory import labkit

    settings = labkit.LabSettings(quick=True, out=tmp_path / "nb", checkpoints=False)
    labkit._PENDING.append(settings)
    try:
        labkit.start("notebook-lab")  # never finished: its cell failed
        again = labkit.start("notebook-lab")
    finally:
        labkit._PENDING.pop()
    again.finish({"value": 1.0})
    assert json.loads((tmp_path / "nb" / "results.json").read_text())["lab"] == "notebook-lab"
    assert not list((tmp_path / "nb").glob(".staging-*"))
