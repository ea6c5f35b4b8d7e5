"""The command line starts without JAX; the JAX settings still apply before any library JAX
code runs; the persistent compilation cache is on by default, off with 0, outside the repo."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from sharp_theory import compile_cache

ROOT = Path(__file__).resolve().parent.parent


def _python(code: str, **env_vars) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
    env.update(env_vars, PYTHONPATH=str(ROOT), JAX_PLATFORMS="cpu")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         timeout=300, cwd=ROOT)
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


HEAVY = ("jax", "jaxlib", "scipy", "sympy", "matplotlib", "hypothesis")


@pytest.mark.parametrize("argv", [["--help"], ["list"], ["reproduce", "--help"]])
def test_help_and_list_import_no_jax(argv):
    code = f"""
import contextlib, io, json, sys
from sharp_theory import cli
text = io.StringIO()
with contextlib.redirect_stdout(text):
    try:
        code = cli.main({argv!r})
    except SystemExit as exit:
        code = exit.code
print(json.dumps({{"code": code, "chars": len(text.getvalue()),
                  "heavy": sorted(m for m in {HEAVY!r} if m in sys.modules)}}))
"""
    report = _python(code)
    assert report["code"] in (0, None) and report["chars"] > 100, report
    assert report["heavy"] == [], f"{argv} imported {report['heavy']}"


def test_the_import_check_can_fail():
    """The check above sees JAX when something does import it."""
    report = _python("import json, sys, sharp_theory as st; st.problems; "
                     "print(json.dumps({'jax': 'jax' in sys.modules}))")
    assert report == {"jax": True}


SETTINGS = ("import json, jax; print(json.dumps({'x64': bool(jax.config.jax_enable_x64), "
            "'dtype': str(jax.numpy.ones(1).dtype), 'devices': len(jax.devices()), "
            "'cache': jax.config.jax_compilation_cache_dir}))")


@pytest.mark.parametrize("order", ["sharp_theory first", "jax first", "library module"])
def test_jax_settings_apply_whoever_imports_jax(order, tmp_path):
    before = {"sharp_theory first": "import sharp_theory; ",
              "jax first": "import jax, sharp_theory; ",
              "library module": "import sharp_theory.problems; "}[order]
    report = _python(before + SETTINGS, SHARP_THEORY_CPU_DEVICES="2",
                     SHARP_THEORY_COMPILE_CACHE=str(tmp_path))
    assert report == {"x64": True, "dtype": "float64", "devices": 2, "cache": str(tmp_path)}


def test_settings_can_be_left_alone(tmp_path):
    report = _python("import sharp_theory; " + SETTINGS, SHARP_THEORY_X64="0",
                     SHARP_THEORY_CPU_DEVICES="1", SHARP_THEORY_COMPILE_CACHE="0",
                     HOME=str(tmp_path), XDG_CACHE_HOME=str(tmp_path / "xdg"))
    assert report == {"x64": False, "dtype": "float32", "devices": 1, "cache": None}
    assert list(tmp_path.iterdir()) == []


def test_cache_folder_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("SHARP_THEORY_COMPILE_CACHE", "0")
    assert compile_cache.folder() is None
    monkeypatch.setenv("SHARP_THEORY_COMPILE_CACHE", str(tmp_path / "c"))
    assert compile_cache.folder() == tmp_path / "c"
    monkeypatch.setenv("SHARP_THEORY_COMPILE_CACHE", "1")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert compile_cache.folder() == tmp_path / "xdg" / "sharp-theory" / "jax-compile"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.delenv("SHARP_THEORY_COMPILE_CACHE")
    default = compile_cache.folder()
    assert default == Path.home() / ".cache" / "sharp-theory" / "jax-compile"
    assert ROOT not in default.parents
    monkeypatch.setenv("SHARP_THEORY_COMPILE_CACHE", "relative/folder")
    with pytest.raises(ValueError, match="SHARP_THEORY_COMPILE_CACHE='relative/folder'"):
        compile_cache.folder()


def test_the_test_suite_keeps_the_cache_out_of_home():
    chosen = compile_cache.folder()
    assert chosen is None or Path.home() / ".cache" not in chosen.parents


def test_a_bad_cache_setting_fails_at_import():
    env = dict(os.environ, SHARP_THEORY_COMPILE_CACHE="cache-here", PYTHONPATH=str(ROOT))
    out = subprocess.run([sys.executable, "-c", "import sharp_theory"], env=env,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode != 0 and "SHARP_THEORY_COMPILE_CACHE='cache-here'" in out.stderr


CACHED_RUN = """
import json, jax, sharp_theory as st
hits = []
jax.monitoring.register_event_listener(
    lambda event, **kw: hits.append(1) if event == "/jax/compilation_cache/cache_hits" else None)
problem = st.problems.op_toy(noise=0.5)
traj = st.run(problem, st.optim.sam(lr=1e-3, rho=0.1), steps=50, key=jax.random.key(0), stride=10)
print(json.dumps({"hits": len(hits), "final": float(traj.params["x"][0])}))
"""


@pytest.mark.slow
def test_a_second_process_loads_programs_from_the_cache(tmp_path):
    first = _python(CACHED_RUN, SHARP_THEORY_COMPILE_CACHE=str(tmp_path))
    assert any(tmp_path.iterdir()), "nothing was written to the cache folder"
    second = _python(CACHED_RUN, SHARP_THEORY_COMPILE_CACHE=str(tmp_path))
    # The first process may hit its own entries: a program it compiles twice (an eager op, say)
    # is written the first time when that compile took over MIN_COMPILE_SECONDS, which a loaded
    # machine decides (one hit seen at load 10). The second hits everything the first wrote.
    assert second["hits"] > first["hits"], (first, second)
    assert second["final"] == first["final"]
