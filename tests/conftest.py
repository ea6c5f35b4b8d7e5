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

import jax  # noqa: E402
import pytest  # noqa: E402
from hypothesis import settings  # noqa: E402

import sharp_theory  # noqa: E402,F401  (turns on jax_enable_x64 and the compile cache)

# Derandomized: a property test draws the same instances on every run, so CI cannot flake;
# the strategies still cover the theorem's regime (bounded so JIT caches are reused).
settings.register_profile("sharp_theory", deadline=None, derandomize=True, print_blob=True)
settings.load_profile("sharp_theory")

assert jax.config.jax_enable_x64

# The test workers themselves write no persistent cache entries: after a few hundred programs in
# one long-lived worker, jaxlib 0.10.2 aborted the process inside `executable.serialize()` (a
# cache write; twice in two full runs, on different tests, never in a test run alone). The
# subprocesses the tests start (CLI, labs, notebooks) still share the run's cache above.
jax.config.update("jax_enable_compilation_cache", False)

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
