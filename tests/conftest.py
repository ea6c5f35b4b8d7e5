"""Shared test settings: float64 on, strict dtype and rank promotion, hypothesis reproducible
across CI runs, and a counter of how often JAX traces the simulation (library code keeps none)."""
import atexit
import collections
import importlib.util
import os
import shutil
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("MPLBACKEND", "Agg")

# The persistent compilation cache (on by default in ~/.cache) goes to a folder of this test run
# instead, shared by the subprocesses the tests start and removed at the end: the suite never
# writes into the user's home. SHARP_THEORY_COMPILE_CACHE=0 keeps it off.
if os.environ.get("SHARP_THEORY_COMPILE_CACHE", "").strip().lower() not in ("0", "off", "false", "no"):
    if not os.environ.get("SHARP_THEORY_TEST_COMPILE_CACHE"):  # the first process of the run
        _CACHE = tempfile.mkdtemp(prefix="sharp-theory-test-compile-cache-")
        os.environ["SHARP_THEORY_TEST_COMPILE_CACHE"] = _CACHE
        atexit.register(shutil.rmtree, _CACHE, ignore_errors=True)
    os.environ["SHARP_THEORY_COMPILE_CACHE"] = os.environ["SHARP_THEORY_TEST_COMPILE_CACHE"]

# The labs' quick runs (fixture quick_lab_run): one folder per test run, made by the first process
# (the workers inherit it); its path, unique to the run, also marks the runs made in this one.
if not os.environ.get("SHARP_THEORY_TEST_LABS"):
    _LABS = tempfile.mkdtemp(prefix="sharp-theory-test-labs-")
    os.environ["SHARP_THEORY_TEST_LABS"] = _LABS
    atexit.register(shutil.rmtree, _LABS, ignore_errors=True)
    # atexit runs on a normal end and on Ctrl-C, not on SIGTERM's default action (the process is
    # killed outright): a SIGTERM to the test run left both folders in TMPDIR. SIGTERM now stops
    # the run as Ctrl-C does (pytest ends the session on KeyboardInterrupt; SystemExit inside a
    # test would only fail that test). Only the first process of the run owns the folders.
    import signal

    def _stop_like_ctrl_c(signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")

    if signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
        signal.signal(signal.SIGTERM, _stop_like_ctrl_c)

# A test run started in the background by a non-interactive shell (`cmd &`) inherits SIGINT
# ignored, and so would every process it starts: the tests that press Ctrl-C on a child would see
# it ignored and time out (two did so). Ctrl-C is restored here, for this process and its children.
import signal as _signal  # noqa: E402

if _signal.getsignal(_signal.SIGINT) == _signal.SIG_IGN:
    _signal.signal(_signal.SIGINT, _signal.default_int_handler)

import jax  # noqa: E402
import pytest  # noqa: E402
from hypothesis import settings  # noqa: E402

import sharp_theory  # noqa: E402,F401  (turns on jax_enable_x64 and the compile cache)

# Derandomized: a property test draws the same instances on every run, so CI cannot flake;
# the strategies still cover the theorem's regime (bounded so JIT caches are reused).
settings.register_profile("sharp_theory", deadline=None, derandomize=True, print_blob=True)
settings.load_profile("sharp_theory")

assert jax.config.jax_enable_x64

# The test workers themselves write no persistent cache entries (they compile thousands of small
# programs that no other process reuses); the subprocesses the tests start (CLI, labs, notebooks)
# share the run's cache above.
jax.config.update("jax_enable_compilation_cache", False)

# Every compiled program keeps ~3 memory mappings until JAX's caches drop it, and Linux allows a
# process 65530 (vm.max_map_count). A long-lived xdist worker crossed that limit and died with
# "Fatal Python error: Aborted" inside XLA (three full runs, always after ~600 tests; one test file
# alone left 19,000 mappings). Between test files the caches are dropped once a worker holds many.
MAPPINGS_BEFORE_CLEARING = 20_000


def _memory_mappings() -> int:
    try:
        with open(f"/proc/{os.getpid()}/maps", "rb") as maps:
            return sum(1 for _ in maps)
    except OSError:  # not Linux: no such limit to watch
        return 0


def pytest_runtest_teardown(item, nextitem):
    if nextitem is not None and nextitem.path == item.path:
        return
    if _memory_mappings() > MAPPINGS_BEFORE_CLEARING:
        jax.clear_caches()

# The slow tests (lab runs, notebooks, subprocess CLIs: 30-90 s each) go first. pytest-xdist hands
# tests out in collection order, and most lab tests sort late (test_s*, test_w*): collected in
# file order, one worker ran the last lab test alone while the other sat idle. Longest first is the
# classic way to even out two queues. The order among the slow tests and among the rest is kept.
def pytest_collection_modifyitems(config, items):
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)


# Implicit promotions hide bugs (a float64 hyperparameter silently promoting float32 parameters,
# a (n,) + (n, 1) broadcast): every test runs the library with JAX's strict settings. The lab
# smoke tests (files *_lab.py, *_labs.py) run lab scripts, which are user-level notebooks written
# against JAX's defaults; the library code they call is held to the strict settings by the others.
LAB_SCRIPT_TESTS = ("_lab.py", "_labs.py")


@pytest.fixture(autouse=True)
def strict_promotion(request):
    """Run each test under ``jax_numpy_dtype_promotion="strict"`` and
    ``jax_numpy_rank_promotion="raise"`` (lab-script smoke tests excepted, see above)."""
    if request.node.path.name.endswith(LAB_SCRIPT_TESTS):
        yield
        return
    with jax.numpy_dtype_promotion("strict"), jax.numpy_rank_promotion("raise"):
        yield

# --- tracing counter ----------------------------------------------------------------------------
# JAX reports every trace of a jitted function with its name; counting the simulation's traces
# ("simulate" for st.run, "_sweep_body" for st.sweep) proves that new values reuse a program.
SIMULATION_FUNCTIONS = ("simulate", "_sweep_body")
_TRACES = collections.Counter()


def _count_trace(event, duration, fun_name=None, **kwargs):
    if event == "/jax/core/compile/jaxpr_trace_duration" and fun_name:
        _TRACES[fun_name] += 1


jax.monitoring.register_event_duration_secs_listener(_count_trace)


@pytest.fixture
def simulation_traces():
    """``simulation_traces()``: how often st.run / st.sweep have traced their program so far."""
    return lambda: sum(_TRACES[name] for name in SIMULATION_FUNCTIONS)


BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"


@pytest.fixture(scope="session")
def load_benchmark():
    """``load_benchmark(name)``: the module ``benchmarks/<name>.py`` (tests check that the
    benchmarks' hand-written baselines compute what the library computes)."""
    if str(BENCHMARKS) not in sys.path:
        sys.path.insert(0, str(BENCHMARKS))  # the scripts import their sibling ``machine``

    def load(name):
        spec = importlib.util.spec_from_file_location(name, BENCHMARKS / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module
    return load


@pytest.fixture(scope="session")
def site_builder():
    """tools/site.py (the docs site and student-version builder), loaded by path: its name
    would clash with the standard library's ``site``."""
    root = Path(__file__).resolve().parent.parent
    spec = importlib.util.spec_from_file_location("sharp_site", root / "tools" / "site.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def check_lab_notebook(name: str, script: Path, folder: Path) -> None:
    """What every lab run as a notebook must show: a markdown title cell, a valid notebook,
    figures that pass the figure lint with PNG, SVG and a slide copy, the arrays, every claim's
    verdict compatible with its expectation at quick sizes, every figure inline."""
    import json

    import jupytext
    import nbformat

    from sharp_theory import labkit

    notebook = jupytext.read(script)
    assert notebook.cells[0].cell_type == "markdown", "a lab opens with its title and question"
    nbformat.validate(notebook)
    out = folder / "out"
    results = json.loads((out / "results.json").read_text())
    # Every figure passes the figure lint (issue 18).
    assert not labkit.figure_problems(results, out), labkit.figure_problems(results, out)
    assert results["lab"] == name and results["quick"] is True
    for figure in results["figures"]:
        assert (out / f"{figure}.png").exists() and (out / f"{figure}.svg").exists()
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


@pytest.fixture(scope="session")
def quick_lab_run(site_builder):
    """``quick_lab_run(name)``: the folder of lab ``name`` run once in this test run, as a notebook
    at quick sizes (``LAB.ipynb`` executed, ``out/`` with results.json, figures and arrays),
    checked by :func:`check_lab_notebook`.

    A lab with a test file of its own (tests/test_*_lab.py) is run there, and
    tests/test_notebooks.py runs the others: every lab runs once. Should two tests ask for one
    lab, the workers share the run through a folder and a lock per lab: the first runs it afresh
    (never from an earlier test run's cache), the other waits and reads it. With
    ``SHARP_THEORY_SITE_CACHE=DIR`` (CI) the folder is DIR, where ``make docs`` finds the runs.
    """
    import fcntl

    from sharp_theory import labkit

    labs = labkit.available_labs()
    root = Path(os.environ.get("SHARP_THEORY_SITE_CACHE") or os.environ["SHARP_THEORY_TEST_LABS"])

    def run(name):
        root.mkdir(parents=True, exist_ok=True)
        with open(root / f".{name}.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
            folder = root / name
            this_run = os.environ["SHARP_THEORY_TEST_LABS"]
            if (folder / "test-run").is_file() and (folder / "test-run").read_text() == this_run:
                return folder
            if (folder / "key").is_file():  # an earlier run's result would make the tests vacuous
                (folder / "key").unlink()
            folder = site_builder.execute_lab(name, labs[name], root)
            check_lab_notebook(name, labs[name], folder)
            (folder / "test-run").write_text(this_run)
            return folder
    return run
