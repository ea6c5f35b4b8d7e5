"""benchmarks/gpu.sh can only be run for real where a GPU is lent; here its checks and its dry
run (the benchmark at toy sizes on the CPU, no install) are tested."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "benchmarks" / "gpu.sh"


def _run(*args, timeout=600):
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
    return subprocess.run(["bash", str(SCRIPT), "--python", sys.executable, *args], env=env,
                          capture_output=True, text=True, timeout=timeout, cwd=ROOT)


@pytest.mark.parametrize("args, message", [(["--cuda", "11"], "--cuda 11"),
                                           (["--budget-s", "ten"], "--budget-s ten"),
                                           (["--bogus"], "unknown argument --bogus")])
def test_bad_arguments_are_refused_before_anything_runs(args, message):
    done = _run(*args, timeout=60)
    assert done.returncode == 2 and message in done.stderr


@pytest.mark.slow
def test_the_dry_run_writes_every_part(tmp_path):
    out = tmp_path / "gpu.json"
    done = _run("--dry-run", "--out", str(out))
    assert done.returncode == 0, done.stderr[-3000:]
    assert "would run, if JAX saw no GPU" in done.stdout and "jax[cuda12]==" in done.stdout
    report = json.loads(out.read_text())
    assert report["smoke"] is True and report["errors"] == {}
    assert set(report["parts"]) == {"conv_relu_paper", "conv_relu_cpu_preset",
                                    "balancedness_sweep", "diagonal_nets_sweep"}
    paper = report["parts"]["conv_relu_paper"]
    assert paper["complete"] and paper["chunks_done"] == paper["chunks"] >= 1
    for name in ("balancedness_sweep", "diagonal_nets_sweep"):
        assert report["parts"][name]["warm_s"] > 0
