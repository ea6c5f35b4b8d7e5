"""Shared test settings: float64 on, hypothesis reproducible across CI runs."""
import os

os.environ.setdefault("MPLBACKEND", "Agg")

import jax  # noqa: E402
from hypothesis import settings  # noqa: E402

import sharp_theory  # noqa: E402,F401  (turns on jax_enable_x64)

# Derandomized: a property test draws the same instances on every run, so CI cannot flake;
# the strategies still cover the theorem's regime (bounded so JIT caches are reused).
settings.register_profile("sharp_theory", deadline=None, derandomize=True, print_blob=True)
settings.load_profile("sharp_theory")

assert jax.config.jax_enable_x64
