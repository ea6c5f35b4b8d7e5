"""Shared test settings: float64 on, hypothesis reproducible across CI runs."""
import importlib.util
import os
import sys
from pathlib import Path

os.environ.setdefault("MPLBACKEND", "Agg")

import jax  # noqa: E402
import pytest  # noqa: E402
from hypothesis import settings  # noqa: E402

import sharp_theory  # noqa: E402,F401  (turns on jax_enable_x64)

# Derandomized: a property test draws the same instances on every run, so CI cannot flake;
# the strategies still cover the theorem's regime (bounded so JIT caches are reused).
settings.register_profile("sharp_theory", deadline=None, derandomize=True, print_blob=True)
settings.load_profile("sharp_theory")

assert jax.config.jax_enable_x64


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
