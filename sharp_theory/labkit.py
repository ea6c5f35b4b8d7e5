"""What every lab uses: its settings (quick / out / seeds), figure and array saving, and the
atomic write of ``results.json`` + figures + ``trajectories.npz`` with the claims' verdicts.

A lab script starts with ``lab = st.labkit.start("balancedness")`` and ends with
``lab.finish(measured)``. Settings come from, in order: the CLI (``sharp-theory reproduce``),
the script's own command line (``python labs/x.py --quick --out DIR --seeds N``), or, inside a
notebook, the environment (``SHARP_THEORY_QUICK=1``, ``SHARP_THEORY_OUT``, ``SHARP_THEORY_SEEDS``).
"""
from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from .errors import ConfigError, check_int
from .output import progress, write_atomic
from .version import __version__

REPO_ROOT = Path(__file__).resolve().parent.parent


def labs_dir() -> Path:
    """Where the lab scripts live (``SHARP_THEORY_LABS`` overrides the repository's labs/)."""
    return Path(os.environ.get("SHARP_THEORY_LABS", REPO_ROOT / "labs"))


def lab_name(path: Path) -> str:
    return path.stem.replace("_", "-")


def available_labs() -> dict[str, Path]:
    """Lab name (file stem with '-') -> script path."""
    directory = labs_dir()
    if not directory.is_dir():
        return {}
    return {lab_name(p): p for p in sorted(directory.glob("*.py")) if not p.name.startswith("_")}


def lab_title(path: Path) -> str:
    """The first markdown heading of a percent-format lab script."""
    for line in path.read_text().splitlines():
        if line.startswith("# # "):
            return line[4:].strip()
    return path.stem


def lab_path(name: str) -> Path:
    labs = available_labs()
    if name not in labs:
        raise ConfigError("LAB", name, "one of " + ", ".join(sorted(labs)) if labs else
                          "a lab name, but no labs/ folder was found")
    return labs[name]


@dataclasses.dataclass
class LabSettings:
    quick: bool = False
    out: Path | None = None
    seeds: int | None = None
    extra: dict = dataclasses.field(default_factory=dict)


_PENDING: list[LabSettings] = []  # set by the CLI around runpy


def check_writable(out: Path) -> Path:
    """Fail (before any work) if ``out`` could not be created and written."""
    out = Path(out).expanduser().absolute()
    probe = out
    while not probe.exists():
        if probe.parent == probe:
            break
        probe = probe.parent
    if probe.exists() and not probe.is_dir():
        raise ConfigError("--out", str(out), f"a directory path ({probe} is a file)")
    if not os.access(probe, os.W_OK | os.X_OK):
        raise ConfigError("--out", str(out), f"a writable location ({probe} is not writable)")
    return out


def _settings_from_argv(name: str) -> LabSettings:
    parser = argparse.ArgumentParser(prog=f"labs/{name}.py")
    parser.add_argument("--quick", action="store_true", help="small sizes (CI)")
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--seeds", type=int, default=None)
    args, _ = parser.parse_known_args()
    return LabSettings(quick=args.quick, out=args.out, seeds=args.seeds)


def _settings_from_env() -> LabSettings:
    quick = os.environ.get("SHARP_THEORY_QUICK", "0").lower() in ("1", "true", "yes")
    out = os.environ.get("SHARP_THEORY_OUT")
    seeds = os.environ.get("SHARP_THEORY_SEEDS")
    return LabSettings(quick=quick, out=Path(out) if out else None,
                       seeds=int(seeds) if seeds else None)


def _in_notebook() -> bool:
    return "ipykernel" in sys.modules


def git_commit() -> str | None:
    try:
        out = subprocess.run(["git", "-C", str(REPO_ROOT), "rev-parse", "HEAD"],
                             capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def versions() -> dict:
    import jax
    import scipy
    import sympy

    return {"python": platform.python_version(), "jax": jax.__version__,
            "jaxlib": getattr(jax.lib, "__version__", None) or jax.__version__,
            "numpy": np.__version__, "scipy": scipy.__version__, "sympy": sympy.__version__,
            "sharp_theory": __version__, "git_commit": git_commit(),
            "platform": platform.platform(), "devices": [str(d) for d in jax.devices()]}


def _jsonable(value: Any):
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, (np.generic,)):
        value = value.item()
    if hasattr(value, "__array__") and not isinstance(value, (str, bytes)):
        array = np.asarray(value)
        return _jsonable(array.item() if array.ndim == 0 else array.tolist())
    if isinstance(value, float) and not np.isfinite(value):
        return None if np.isnan(value) else ("inf" if value > 0 else "-inf")
    return value


def write_json_atomic(path: Path, payload: dict) -> None:
    """Write ``payload`` (made JSON-safe) to ``path`` atomically (:func:`output.write_atomic`)."""
    text = json.dumps(_jsonable(payload), indent=2, allow_nan=False)
    write_atomic(path, lambda temporary: Path(temporary).write_text(text))


class Lab:
    """A running lab: collects figures and arrays in a staging folder, then publishes atomically."""

    def __init__(self, name: str, settings: LabSettings, default_seeds: int, quick_seeds: int):
        self.name = name
        self.quick = bool(settings.quick)
        if settings.seeds is not None:
            check_int("--seeds", settings.seeds, minimum=1)
        self.seeds = settings.seeds or (quick_seeds if self.quick else default_seeds)
        self.out = check_writable(settings.out or Path("results") / name)
        self.extra = settings.extra
        self.config: dict = {}
        self.figures: list[str] = []
        self.arrays: dict[str, np.ndarray] = {}
        self.started = time.time()
        self.started_at = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
        self.out.parent.mkdir(parents=True, exist_ok=True)
        self.staging = Path(tempfile.mkdtemp(prefix=f".{self.out.name}.tmp-", dir=self.out.parent))
        self.results: dict | None = None

    def record_config(self, **config) -> None:
        """Record the settings of this run (sizes, step sizes, grids) in results.json."""
        self.config.update(config)

    def savefig(self, fig, name: str) -> None:
        """Save a matplotlib figure as ``name.png`` and ``name.svg``."""
        import matplotlib.pyplot as plt

        for suffix in ("png", "svg"):
            fig.savefig(self.staging / f"{name}.{suffix}", dpi=150, bbox_inches="tight")
        self.figures.append(name)
        if not _in_notebook():
            plt.close(fig)

    def save_arrays(self, **arrays) -> None:
        """Arrays to store in ``trajectories.npz`` (name -> array)."""
        for key, value in arrays.items():
            self.arrays[key] = np.asarray(value)

    def progress(self, iterable, desc: str, total: int | None = None):
        """A progress bar over ``iterable`` (quiet when not attached to a terminal)."""
        return progress(iterable, f"{self.name}: {desc}", total)

    def finish(self, measured: dict) -> dict:
        """Evaluate this lab's claims on ``measured``, write everything, publish atomically.

        Returns the results dict (also written as results.json).
        """
        from .claims import claims_for_lab

        claims = [claim.evaluate(measured) for claim in claims_for_lab(self.name)]
        self.results = {
            "lab": self.name, "quick": self.quick, "seeds": self.seeds, "config": self.config,
            "versions": versions(), "started": self.started_at,
            "wall_time_s": round(time.time() - self.started, 3), "measured": measured,
            "claims": claims, "figures": self.figures,
        }
        np.savez_compressed(self.staging / "trajectories.npz", **self.arrays)
        write_json_atomic(self.staging / "results.json", self.results)
        self._publish()
        print(format_claims_table(self.results["claims"], self.quick))
        print(f"{self.name}: wrote {self.out}")
        return _jsonable(self.results)

    def _publish(self) -> None:
        old = None
        if self.out.exists():
            old = self.out.parent / f".{self.out.name}.old-{os.getpid()}"
            os.replace(self.out, old)
        os.replace(self.staging, self.out)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)

    def abort(self) -> None:
        """Remove the staging folder (nothing half-written is left behind)."""
        shutil.rmtree(self.staging, ignore_errors=True)


def start(name: str, *, default_seeds: int = 4, quick_seeds: int = 2) -> Lab:
    """Start lab ``name`` with settings from the CLI, the script's argv, or the environment."""
    if _PENDING:
        settings = _PENDING[-1]
    elif _in_notebook():
        settings = _settings_from_env()
    else:
        settings = _settings_from_argv(name)
    lab = Lab(name, settings, default_seeds, quick_seeds)
    _ACTIVE.append(lab)
    return lab


_ACTIVE: list[Lab] = []


def format_number(value) -> str:
    if isinstance(value, bool) or value is None:
        return str(value)
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        return f"{value:.4g}"
    if isinstance(value, (list, tuple)) and len(value) <= 4:
        return "[" + ", ".join(format_number(v) for v in value) + "]"
    if isinstance(value, (list, tuple)):
        return f"[{len(value)} values]"
    return str(value)


def verdict_matches(claim: dict, quick: bool) -> bool:
    """Whether a claim's verdict agrees with its expectation.

    A quick run is allowed to be "inconclusive" (sizes too small to judge, said in the claim's
    detail); it may never contradict the expectation (pass where fail is expected, or fail
    where pass is expected).
    """
    if claim["verdict"] == claim["expected"]:
        return True
    return quick and claim["verdict"] == "inconclusive"


def format_claims_table(claims: list[dict], quick: bool = False) -> str:
    """A plain-text table: id, verdict (expected), key numbers."""
    if not claims:
        return "(no claims registered for this lab)"
    width = max(len(c["id"]) for c in claims)
    lines = [f"{'claim':<{width}}  {'verdict':<12}  {'expected':<12}  measured"]
    for c in claims:
        numbers = ", ".join(f"{k}={format_number(v)}" for k, v in list(c["measured"].items())[:5])
        if c["verdict"] == c["expected"]:
            flag = ""
        elif verdict_matches(c, quick):
            flag = "  (inconclusive at quick sizes)"
        else:
            flag = "  <-- differs from expected"
        lines.append(f"{c['id']:<{width}}  {c['verdict']:<12}  {c['expected']:<12}  {numbers}{flag}")
    return "\n".join(lines)
