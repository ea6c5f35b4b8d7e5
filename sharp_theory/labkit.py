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
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from . import checkpoints, interrupts
from .errors import ConfigError, check_int
from .output import OutputFolder, in_notebook, progress, write_text_atomic
from .version import __version__

SAVED_DPI = 150
"""The resolution (dots per inch) of the PNGs a lab saves."""

REPO_ROOT = Path(__file__).resolve().parent.parent
"""The repository checkout this package was imported from (labs/ and papers/ live under it)."""


def labs_dir() -> Path:
    """Where the lab scripts live (``SHARP_THEORY_LABS`` overrides the repository's labs/).

    Returns:
      The folder's path (it may not exist, e.g. in an installed wheel).
    """
    return Path(os.environ.get("SHARP_THEORY_LABS", REPO_ROOT / "labs"))


def lab_name(path: Path) -> str:
    """The lab name of a script: its file stem with "_" replaced by "-".

    Args:
      path: the script's path (``labs/edge_of_stability.py``).

    Returns:
      The name (``"edge-of-stability"``).
    """
    return path.stem.replace("_", "-")


def available_labs() -> dict[str, Path]:
    """Every lab script in :func:`labs_dir` (files starting with "_" excepted).

    Returns:
      dict lab name (file stem with '-') -> script path, sorted by file name; empty when the
      folder does not exist.
    """
    directory = labs_dir()
    if not directory.is_dir():
        return {}
    return {lab_name(p): p for p in sorted(directory.glob("*.py")) if not p.name.startswith("_")}


def lab_title(path: Path) -> str:
    """The first markdown heading of a percent-format lab script.

    Args:
      path: the script's path.

    Returns:
      The heading's text (the file stem when the script has none).
    """
    for line in path.read_text().splitlines():
        if line.startswith("# # "):
            return line[4:].strip()
    return path.stem


def lab_path(name: str) -> Path:
    """The script of the lab called ``name``.

    Args:
      name: a lab name (see :func:`available_labs`).

    Returns:
      The script's path.

    Raises:
      ConfigError: no lab has that name (the known names are listed).
    """
    labs = available_labs()
    if name not in labs:
        raise ConfigError("LAB", name, "one of " + ", ".join(sorted(labs)) if labs else
                          "a lab name, but no labs/ folder was found")
    return labs[name]


MAX_SEEDS = 1000  # the seeds of a lab run side by side in memory; more is a typo, not a plan
"""The most seeds a lab run accepts (they run side by side in memory; more is a typo, not a plan).
"""


@dataclasses.dataclass
class LabSettings:
    """How a lab is run.

    Attributes:
      quick: small sizes (CI, classroom).
      out: the output folder (default ``results/LAB``).
      seeds: number of seeds (default: the lab's own).
      extra: lab-specific options (``grid``, ``device``), checked against what the lab declares.
      resume: load the stages a previous, interrupted run of the same command saved in
        ``OUT/.checkpoints`` (False discards them and starts from zero).
      checkpoints: save completed stages at all (notebooks do not: cells may be rerun out of
        order, so "the k-th call" would not name the same computation).
      replace_other_lab: the output folder may hold another lab's results, which this run
        replaces (without it such a folder is refused).
    """

    quick: bool = False
    out: Path | None = None
    seeds: int | None = None
    extra: dict = dataclasses.field(default_factory=dict)
    resume: bool = True
    checkpoints: bool = True
    replace_other_lab: bool = False


_PENDING: list[LabSettings] = []  # set by the CLI around runpy


def check_seeds(seeds) -> int | None:
    """Check ``--seeds``: None (the lab's default) or an integer in [1, MAX_SEEDS].

    Args:
      seeds: the requested number of seeds, or None.

    Returns:
      The number as an int, or None.

    Raises:
      ConfigError: not an integer in [1, :data:`MAX_SEEDS`].
    """
    if seeds is None:
        return None
    return check_int("--seeds", seeds, minimum=1, maximum=MAX_SEEDS)


def _settings_from_argv(name: str, options: dict) -> LabSettings:
    parser = argparse.ArgumentParser(prog=f"labs/{name}.py")
    parser.add_argument("--quick", action="store_true", help="small sizes (CI)")
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--seeds", type=int, default=None)
    parser.add_argument("--resume", action=argparse.BooleanOptionalAction, default=True)
    for option in options:
        parser.add_argument(f"--{option}", default=None)
    args, _ = parser.parse_known_args()
    extra = {option: getattr(args, option) for option in options
             if getattr(args, option) is not None}
    return LabSettings(quick=args.quick, out=args.out, seeds=args.seeds, extra=extra,
                       resume=args.resume)


def _settings_from_env(options: dict) -> LabSettings:
    quick = os.environ.get("SHARP_THEORY_QUICK", "0").lower() in ("1", "true", "yes")
    out = os.environ.get("SHARP_THEORY_OUT")
    seeds = os.environ.get("SHARP_THEORY_SEEDS")
    if seeds:
        try:
            seeds = int(seeds)
        except ValueError:
            raise ConfigError("SHARP_THEORY_SEEDS", seeds, f"an integer in [1, {MAX_SEEDS}]") from None
    extra = {option: os.environ[f"SHARP_THEORY_{option.upper()}"] for option in options
             if os.environ.get(f"SHARP_THEORY_{option.upper()}")}
    return LabSettings(quick=quick, out=Path(out) if out else None, seeds=seeds or None,
                       extra=extra, resume=False, checkpoints=False)


def check_options(name: str, settings: LabSettings, options: dict, quick_options: dict) -> None:
    """Refuse options the lab does not have, values outside their choices, and values that
    contradict ``--quick`` (ConfigError: one line, before any work).

    Args:
      name: the lab's name (for the message).
      settings: the :class:`LabSettings` of this run (its ``extra`` options and ``quick``).
      options: option name -> allowed values (None: any value) that the lab declares.
      quick_options: option name -> the value ``--quick`` uses (another value is refused with it).

    Returns:
      None.

    Raises:
      ConfigError: an unknown option, a value outside its choices, or one that contradicts
        ``--quick``.
    """
    for option, value in settings.extra.items():
        if option not in options:
            takes = ", ".join(f"--{o}" for o in options) or "no options besides --quick/--seeds"
            raise ConfigError(f"--{option}", value, f"no --{option} for lab {name!r} (it takes "
                              f"{takes})")
        choices = options[option]
        if choices is not None and value not in choices:
            raise ConfigError(f"--{option}", value, "one of " + ", ".join(map(str, choices)))
        if settings.quick and option in quick_options and value != quick_options[option]:
            raise ConfigError(f"--{option}", value, f"{quick_options[option]!r} or no --{option} "
                              f"with --quick (--quick uses --{option} {quick_options[option]})")


def git_commit() -> str | None:
    """The commit of the repository checkout, for the provenance of results.

    Returns:
      The ``git rev-parse HEAD`` hash, or None outside a git checkout (or without git).
    """
    try:
        out = subprocess.run(["git", "-C", str(REPO_ROOT), "rev-parse", "HEAD"],
                             capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def versions(with_devices: bool = True) -> dict:
    """The versions a result was computed with (stored in every results.json).

    Args:
      with_devices: also list JAX's devices (starts JAX's backend; ``check --cached`` does not
        need it).

    Returns:
      dict with the python, jax, jaxlib, numpy, scipy, sympy and sharp_theory versions, the git
      commit, the platform and (``with_devices``) JAX's devices.
    """
    import jax
    import scipy
    import sympy

    found = {"python": platform.python_version(), "jax": jax.__version__,
             "jaxlib": getattr(jax.lib, "__version__", None) or jax.__version__,
             "numpy": np.__version__, "scipy": scipy.__version__, "sympy": sympy.__version__,
             "sharp_theory": __version__, "git_commit": git_commit(),
             "platform": platform.platform()}
    if with_devices:
        found["devices"] = [str(d) for d in jax.devices()]
    return found


PROVENANCE_KEYS = ("git_commit", "sharp_theory", "jax", "jaxlib", "numpy", "scipy", "sympy",
                   "python")
"""The entries of results.json's ``versions`` that must match the running code for stored
results to count as this code's (``check --cached`` and ``report`` compare them)."""


def provenance_differences(results: dict, current: dict | None = None) -> list[str]:
    """How the code that computed ``results`` differs from the running code.

    Args:
      results: a lab's results dict (its ``versions``).
      current: :func:`versions` of the running code (computed when None).

    Returns:
      One short text per differing entry of :data:`PROVENANCE_KEYS` ("jax 0.4.30 -> 0.4.31");
      empty when they all match.
    """
    stored = results.get("versions")
    if not isinstance(stored, dict):
        return ["no versions recorded"]
    current = versions(with_devices=False) if current is None else current
    return [f"{key} {stored.get(key)} -> {current.get(key)}" for key in PROVENANCE_KEYS
            if stored.get(key) != current.get(key)]


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
    """Write ``payload`` as JSON (NaN as null, infinities as strings), atomically.

    Args:
      path: the file to write.
      payload: a dict of JSON-able values, numpy/JAX arrays and scalars, and paths.

    Returns:
      None.
    """
    write_text_atomic(path, json.dumps(_jsonable(payload), indent=2, allow_nan=False))


class Lab:
    """A running lab: collects figures and arrays in a staging folder inside its output folder,
    saves its expensive stages for a resumed run, and publishes everything at the end."""

    def __init__(self, name: str, settings: LabSettings, default_seeds: int, quick_seeds: int,
                 options: dict | None = None, quick_options: dict | None = None):
        self.name = name
        self.quick = bool(settings.quick)
        check_seeds(settings.seeds)
        check_options(name, settings, options or {}, quick_options or {})
        self.seeds = settings.seeds or (quick_seeds if self.quick else default_seeds)
        self.extra = dict(settings.extra)
        if self.quick:
            self.extra.update(quick_options or {})
        self.config: dict = {}
        self.figures: list[str] = []
        self.figure_checks: dict[str, dict] = {}
        self.arrays: dict[str, np.ndarray] = {}
        self.started = time.time()
        self.started_at = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
        self.results: dict | None = None
        # Everything above is checked; from here on we write (into a folder we own only).
        self.environment = checkpoints.numeric_environment()  # imports JAX: before the claim
        # A notebook cell that starts the lab again after a failed cell: the earlier, unfinished
        # run of this process gives its folder (and lock) back first.
        wanted = Path(settings.out or Path("results") / name).expanduser().absolute()
        for earlier in list(_ACTIVE):
            if earlier.results is None and getattr(earlier, "out", None) == wanted:
                earlier.abort()
        self.output = OutputFolder.claim(settings.out or Path("results") / name, name,
                                         replace_other_lab=settings.replace_other_lab)
        self.out = self.output.path
        self._cleanup = interrupts.register(self.abort)
        self.stages: checkpoints.StageStore | None = None
        self._previous_store = None
        try:
            self.staging = self.output.open_staging()
            if settings.checkpoints:
                self._open_stages(name, settings.resume)
        except OSError:
            self.abort()
            raise

    def _open_stages(self, name: str, resume: bool) -> None:
        script = available_labs().get(name)
        key = checkpoints.run_fingerprint(
            {"lab": name, "quick": self.quick, "seeds": self.seeds, "extra": self.extra},
            extra_files=[script] if script else [])
        self.stages = checkpoints.StageStore.open(self.output.checkpoints, key, resume=resume,
                                                  label=name)
        saved = self.stages.saved()
        if saved:
            print(f"{name}: resuming: {saved} completed stage(s) in {self.stages.folder}",
                  file=sys.stderr)
        self._previous_store = checkpoints.activate(self.stages)

    def record_config(self, **config) -> None:
        """Record the settings of this run (sizes, step sizes, grids) in results.json."""
        self.config.update(config)

    def checkpoint_folder(self, name: str) -> Path | None:
        """A folder for a stage that checkpoints itself (the conv-ReLU grid's chunks), inside
        this run's saved stages; None when the run does not resume."""
        if self.stages is None:
            return None
        return self.stages.folder / name

    def savefig(self, fig, name: str, *, claims=(), runs: dict | None = None,
                slide: bool = False) -> list[str]:
        """Save a matplotlib figure as ``name.png`` and ``name.svg``, lint it, record it.

        Args:
          fig: the figure; its title (``st.plotting.finding``) is its finding.
          name: file stem.
          claims: the ids of the claims (of this lab) the figure supports.
          runs: legend label -> status of the runs drawn ("ok", "diverged", "not fitted",
            "at the saddle", ...), from the numbers; a run that is not "ok" must be drawn
            with its status mark (``st.plotting.plot_run`` / ``band`` with ``status=``).
          slide: also save a 16:9 copy with large fonts as ``name-slide.png`` (the lab's key
            figure).

        Returns:
          The figure's lint problems (``st.plotting.lint.lint_figure``; empty when it passes),
          also recorded in results.json under ``figure_checks[name]`` with its finding, claims
          and runs.
        """
        import matplotlib.pyplot as plt

        from .plotting import save_figure, slide_copy
        from .plotting.lint import lint_figure

        shown_dpi = fig.dpi
        png = self.staging / f"{name}.png"
        # One drawing serves the PNG, the SVG and the lint (it judges the layout as saved).
        problems = save_figure(fig, png, self.staging / f"{name}.svg", dpi=SAVED_DPI,
                               lint=lambda renderer: lint_figure(fig, runs=runs, renderer=renderer))
        self.figures.append(name)
        self.figure_checks[name] = {"finding": " ".join(fig.get_suptitle().split()),
                                    "claims": list(claims),
                                    "runs": dict(runs or {}), "lint": problems}
        if problems:
            print(f"{self.name}: figure {name}: " + "; ".join(problems), file=sys.stderr)
        if slide:
            slide_copy(fig, self.staging / f"{name}-slide.png")
            self.figure_checks[name]["slide"] = f"{name}-slide.png"
        if in_notebook():
            # The notebook shows the PNG just saved, at the size the inline backend would show
            # the figure, instead of drawing the figure once more at the end of the cell.
            from IPython.display import Image, display

            data = png.read_bytes()
            width = int.from_bytes(data[16:20], "big")  # the PNG header's pixel width
            display(Image(data=data, format="png", width=round(width * shown_dpi / SAVED_DPI)))
        plt.close(fig)
        return problems

    def save_arrays(self, **arrays) -> None:
        """Arrays to store in ``trajectories.npz`` (name -> array)."""
        for key, value in arrays.items():
            self.arrays[key] = np.asarray(value)

    def progress(self, iterable, desc: str, total: int | None = None):
        """A progress bar over ``iterable`` (shown on a terminal, in a notebook, or when
        ``SHARP_THEORY_PROGRESS=1``)."""
        return progress(iterable, f"{self.name}: {desc}", total)

    def finish(self, measured: dict) -> dict:
        """Evaluate this lab's claims on ``measured``, write everything, publish it.

        Returns the results dict (also written as results.json).
        """
        from .claims import claims_for_lab

        registered = claims_for_lab(self.name)
        grid = str(self.extra.get("grid") or self.config.get("grid") or "default")
        claims = [claim.evaluate(measured, quick=self.quick, grid=grid) for claim in registered]
        known = {claim.id for claim in registered}
        for name, checks in self.figure_checks.items():
            unknown = [c for c in checks["claims"] if c not in known]
            if unknown:
                checks["lint"].append(f"claims {unknown} are not claims of lab {self.name!r}")
        self.results = {
            "lab": self.name, "quick": self.quick, "seeds": self.seeds, "config": self.config,
            "grid": grid, "environment": self.environment,
            "versions": versions(), "started": self.started_at,
            "wall_time_s": round(time.time() - self.started, 3),
            "resumed_stages": 0 if self.stages is None else self.stages.loaded,
            "measured": measured, "claims": claims, "figures": self.figures,
            "figure_checks": self.figure_checks,
        }
        np.savez_compressed(self.staging / "trajectories.npz", **self.arrays)
        write_json_atomic(self.staging / "results.json", self.results)
        self.output.publish()
        if self.stages is not None:
            self.stages.discard()  # this run's stages only; other settings' stay
        self.output.release()
        self._close()
        print(format_claims_table(self.results["claims"], self.quick))
        print(f"{self.name}: wrote {self._shown_out()}")
        return _jsonable(self.results)

    def _shown_out(self) -> str:
        """The output folder as the run's message names it: in full on the command line; in a
        notebook relative to the notebook's folder when inside it, else by its name only (a
        page built from the notebook must not show the builder's temporary paths)."""
        if not in_notebook():
            return str(self.out)
        try:
            return str(self.out.relative_to(Path.cwd()))
        except ValueError:
            return self.out.name

    def abort(self) -> None:
        """Remove the staging folder (nothing half-written is left behind); completed stages
        stay in ``OUT/.checkpoints`` for a rerun to resume from (an empty store goes)."""
        if self.stages is not None and not self.stages.saved():
            self.stages.discard()
        self.output.abort()
        self._close()

    def _close(self) -> None:
        interrupts.unregister(self._cleanup)
        if self.stages is not None and checkpoints.active_store() is self.stages:
            checkpoints.activate(self._previous_store)


def start(name: str, *, default_seeds: int = 4, quick_seeds: int = 2,
          options: dict | None = None, quick_options: dict | None = None) -> Lab:
    """Start lab ``name`` with settings from the CLI, the script's argv, or the environment.

    Args:
      name: the lab's name (its file stem with '-').
      default_seeds: the number of seeds of a full run.
      quick_seeds: the number of seeds of a ``--quick`` run.
      options: the lab's own options, name -> allowed values (None: any string), e.g.
        ``{"grid": ("quick", "cpu", "paper"), "device": ("cpu", "gpu")}``; any other option
        is refused.
      quick_options: the values ``--quick`` implies (``{"grid": "quick"}``); another value
        given with ``--quick`` is refused.

    Returns:
      The running :class:`Lab`. Every setting is checked before the output folder is touched.
    """
    options = dict(options or {})
    if _PENDING:
        settings = _PENDING[-1]
    elif in_notebook():
        settings = _settings_from_env(options)
    else:
        settings = _settings_from_argv(name, options)
    lab = Lab(name, settings, default_seeds, quick_seeds, options, quick_options)
    _ACTIVE.append(lab)
    return lab


_ACTIVE: list[Lab] = []


def read_results(path: Path, parameter: str = "--cached") -> dict:
    """A lab's results.json, or a one-line ConfigError if it is missing or not ours.

    Args:
      path: the results.json file.
      parameter: the command-line parameter to name in the error (``--cached``).

    Returns:
      The parsed results (keys ``lab``, ``quick``, ``claims``, ``measured``, ...).

    Raises:
      ConfigError: the file is missing, unreadable, or lacks the keys sharp-theory writes.
    """
    if not path.is_file():
        raise ConfigError(parameter, str(path), "an existing results.json (run `sharp-theory "
                          "reproduce LAB --out DIR` first, or drop --cached)")
    try:
        results = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, ValueError) as error:
        raise ConfigError(parameter, str(path), f"a readable results.json written by sharp-theory "
                          f"({type(error).__name__}: {str(error).splitlines()[0][:80]})") from None
    required = {"lab": str, "quick": bool, "claims": list, "measured": dict}
    wrong = [key for key, kind in required.items() if not isinstance(results.get(key), kind)] \
        if isinstance(results, dict) else list(required)
    if not wrong:
        claim_keys = {"id": str, "verdict": str, "expected": str, "statement": str, "measured": dict}
        if not all(isinstance(c, dict) and all(isinstance(c.get(k), t) for k, t in claim_keys.items())
                   for c in results["claims"]):
            wrong = ["well-formed claims"]
        if not all(isinstance(f, str) for f in results.get("figures", [])):
            wrong.append("a list of figure names")
    if wrong:
        raise ConfigError(parameter, str(path), "a results.json written by sharp-theory (it lacks "
                          + ", ".join(wrong) + ")")
    return results


def figure_problems(results: dict, out: Path | None = None) -> dict[str, list[str]]:
    """What the figure lint found in a lab's results.json, by figure (empty: every figure
    passes), plus figures without a lint record, and a missing slide file when ``out`` (the
    lab's output folder) is given.

    Args:
      results: a lab's results dict.
      out: its output folder, to check that each recorded slide copy exists.

    Returns:
      figure name -> problems, only for figures that have some.
    """
    checks = results.get("figure_checks") or {}
    found = {}
    for name in results.get("figures", []):
        record = checks.get(name)
        if record is None:
            found[name] = ["no lint record (saved without Lab.savefig?)"]
            continue
        problems = list(record.get("lint", []))
        if out is not None and record.get("slide") and not (Path(out) / record["slide"]).is_file():
            problems.append(f"slide copy {record['slide']} missing")
        if problems:
            found[name] = problems
    return found


def format_number(value) -> str:
    """A number (or a short list of numbers) for a text table, with 4 significant digits.

    Args:
      value: a bool, None, int, float, numpy scalar, list/tuple, or anything with ``str``.

    Returns:
      The text; lists of more than 4 values as ``"[n values]"``.
    """
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

    Args:
      claim: a claim row of results.json (``verdict``, ``expected``).
      quick: whether the run used --quick sizes.

    Returns:
      True when the verdict is the expected one (or inconclusive in a quick run).
    """
    if claim["verdict"] == claim["expected"]:
        return True
    return quick and claim["verdict"] == "inconclusive"


def format_claims_table(claims: list[dict], quick: bool = False) -> str:
    """A plain-text table: id, verdict (expected), the decisive number against its threshold.

    A claim without a decisive number (an ad-hoc one, or one that could not get that far) shows
    its first numbers instead; an inconclusive verdict gets a second line with the reason.

    Args:
      claims: the claim rows of results.json.
      quick: whether the run used --quick sizes (inconclusive verdicts are then not flagged).

    Returns:
      The table as one string (a one-line note when there are no claims).
    """
    from .claims.base import format_decisive

    if not claims:
        return "(no claims registered for this lab)"
    width = max(len(c["id"]) for c in claims)
    lines = [f"{'claim':<{width}}  {'verdict':<12}  {'expected':<12}  decisive number (threshold)"]
    for c in claims:
        shown = format_decisive(c) or ", ".join(
            f"{k}={format_number(v)}" for k, v in list(c["measured"].items())[:5])
        if c["verdict"] == c["expected"]:
            flag = ""
        elif verdict_matches(c, quick):
            flag = "  (inconclusive at quick sizes)"
        else:
            flag = "  <-- differs from expected"
        lines.append(f"{c['id']:<{width}}  {c['verdict']:<12}  {c['expected']:<12}  {shown}{flag}")
        if c["verdict"] == "inconclusive" and c.get("detail"):
            lines.append(f"{'':<{width}}    why: {c['detail']}")
    return "\n".join(lines)


# --- classroom: predictions and sliders ---------------------------------------------------------

def compare_predictions(results: dict, predictions: dict[str, object],
                        facts: dict[str, bool] | None = None) -> list[dict]:
    """Set each "predict, then run" answer beside the measured verdict of its claim.

    A prediction is about whether a claim holds in our simulation: ``True`` (it holds: verdict
    "pass"), ``False`` (it does not: verdict "fail"); ``...`` or ``None`` means not made yet (the
    students' notebook starts that way). A quick run may be too small to judge ("inconclusive").

    Args:
      results: what ``lab.finish(measured)`` returned (its ``claims`` hold the verdicts).
      predictions: claim id (or a key of ``facts``) -> the prediction.
      facts: statements the lab measured that are not registered claims (the fuzz lab's "the
        fuzzer falsifies this bound"): statement -> whether it held.

    Returns:
      One dict per prediction: ``claim``, ``prediction``, ``verdict`` and ``outcome`` (one of
      "confirmed", "contradicted", "too small to judge", "no prediction"); also printed.

    Raises:
      ConfigError: a claim id this lab did not judge, or a prediction that is not a bool.
    """
    verdicts = {claim["id"]: claim["verdict"] for claim in results["claims"]}
    verdicts.update({statement: "pass" if held else "fail" for statement, held in (facts or {}).items()})
    rows = []
    for claim_id, prediction in predictions.items():
        if claim_id not in verdicts:
            raise ConfigError("predictions", claim_id, f"a claim this lab judged: {sorted(verdicts)}")
        if prediction is ... or prediction is None:
            outcome = "no prediction"
        elif not isinstance(prediction, bool):
            raise ConfigError(f"predictions[{claim_id!r}]", repr(prediction),
                              "True (the claim holds), False (it does not) or ... (not made)")
        elif verdicts[claim_id] not in ("pass", "fail"):
            outcome = "too small to judge"
        else:
            outcome = "confirmed" if prediction == (verdicts[claim_id] == "pass") else "contradicted"
        rows.append({"claim": claim_id, "prediction": prediction, "verdict": verdicts[claim_id],
                     "outcome": outcome})
    width = max((len(row["claim"]) for row in rows), default=5)
    print(f"{'claim':<{width}}  {'you said':<10}  {'measured':<12}  outcome")
    for row in rows:
        said = {True: "holds", False: "fails"}.get(row["prediction"], "-")
        print(f"{row['claim']:<{width}}  {said:<10}  {row['verdict']:<12}  {row['outcome']}")
    return rows


class ExerciseFailed(AssertionError):
    """An exercise's answer does not match; the message is one sentence for the student."""


def _answered(name: str, value) -> None:
    if value is ... or value is None:
        raise ExerciseFailed(f"{name}: replace ... with your answer.")


def feedback(check) -> None:
    """Run an exercise's check and print one sentence if it fails (nothing if it passes).

    The autograder's hidden tests call this, so a student sees the check's sentence ("x = 0.2 is
    33% away from the measured 0.15 (allowed: 2%)") rather than a traceback.

    Args:
      check: a function of no arguments that raises :class:`ExerciseFailed` (or any
        AssertionError, whose message is then printed) when the answer is wrong.

    Returns:
      None.
    """
    try:
        check()
    except AssertionError as failed:  # ExerciseFailed, or a plain assert with its message
        print(str(failed).splitlines()[0] if str(failed) else "the answer does not match.")
    except Exception as error:  # noqa: BLE001 - a broken answer must give a sentence, not a trace
        reason = (str(error).splitlines() or [""])[0][:120]
        print(f"the check could not run on this answer ({type(error).__name__}: {reason}).")


def check_number(name: str, value, target, *, rtol: float):
    """Check a numeric answer against a measured or derived number.

    Args:
      name: what the answer is called (the variable students set).
      value: the answer (a real number).
      target: the number it must match (measured by the lab, so never hard-coded).
      rtol: the relative tolerance (> 0).

    Returns:
      None (so a notebook cell ending with the check shows nothing).

    Raises:
      ExerciseFailed: no answer, not a finite number, farther than ``rtol`` from ``target``
        (one sentence saying how far), or a target that is not finite (the run measured nothing
        to grade against: never a pass).
      ConfigError: ``rtol`` is not a finite number > 0.
    """
    if not (isinstance(rtol, (int, float)) and np.isfinite(rtol) and rtol > 0):
        raise ConfigError("rtol", rtol, "a finite number > 0")
    _answered(name, value)
    try:
        answer = float(value)
    except (TypeError, ValueError):
        raise ExerciseFailed(f"{name} should be a number, not {type(value).__name__}.") from None
    if not np.isfinite(answer):
        raise ExerciseFailed(f"{name} should be a finite number, not {answer}.")
    target = float(target)
    if not np.isfinite(target):
        # Not the student's fault, and not a pass either: the run above measured nothing usable.
        raise ExerciseFailed(f"{name} cannot be checked: the run measured {target} for it "
                             f"(rerun the lab's cells above).")
    off = abs(answer - target) / max(abs(target), np.finfo(float).tiny)
    if not off <= rtol:
        raise ExerciseFailed(f"{name} = {answer:.4g} is {off:.0%} away from the measured "
                             f"{target:.4g} (allowed: {rtol:.0%}).")


def check_expression(name: str, text, expected, symbols: dict):
    """Check a formula written as text against a sympy expression, symbolically.

    Args:
      name: what the answer is called.
      text: the student's formula, e.g. ``"eta*rho*lam/(2 - eta*lam)"``.
      expected: the sympy expression it must equal (from ``st.theory``'s derivations).
      symbols: the names the formula may use -> the sympy symbols of ``expected``.

    Returns:
      The parsed sympy expression.

    Raises:
      ExerciseFailed: no answer, a formula that does not parse or uses other names, or one not
        identically equal to ``expected`` (one sentence).
    """
    import sympy

    _answered(name, text)
    if not isinstance(text, str):
        raise ExerciseFailed(f"{name} should be a formula in quotes, e.g. \"eta*rho\".")
    try:
        parsed = sympy.sympify(text, locals=dict(symbols))
    except (sympy.SympifyError, SyntaxError, TypeError):
        raise ExerciseFailed(f"{name}: {text!r} is not a formula sympy can read.") from None
    unknown = sorted(str(s) for s in parsed.free_symbols - set(symbols.values()))
    if unknown:
        raise ExerciseFailed(f"{name} uses {', '.join(unknown)}; use only "
                             f"{', '.join(sorted(symbols))}.")
    if sympy.simplify(parsed - expected) != 0:
        raise ExerciseFailed(f"{name} = {text} is not equal to the formula the lab derives.")
    return parsed


def check_function(name: str, function, reference, cases, *, atol: float):
    """Check a student's function against the library's on given inputs.

    Args:
      name: the function's name.
      function: the student's function.
      reference: the library's computation, same arguments.
      cases: a list of argument tuples.
      atol: the largest allowed absolute difference of any output entry.

    Returns:
      None (so a notebook cell ending with the check shows nothing).

    Raises:
      ExerciseFailed: the function raises, returns another shape, or differs by more than
        ``atol`` (one sentence naming the case).
    """
    _answered(name, function)
    for index, case in enumerate(cases):
        expected = np.asarray(reference(*case))
        try:
            got = np.asarray(function(*case))
        except Exception as error:  # noqa: BLE001 - the student's code: report, do not crash
            raise ExerciseFailed(f"{name} raised {type(error).__name__} on test case "
                                 f"{index + 1}.") from None
        if got.shape != expected.shape:
            raise ExerciseFailed(f"{name} returned shape {got.shape} on test case {index + 1}; "
                                 f"expected {expected.shape}.")
        difference = float(np.max(np.abs(got - expected))) if expected.size else 0.0
        if not difference <= atol:
            raise ExerciseFailed(f"{name} differs from the library by {difference:.3g} on test "
                                 f"case {index + 1} (allowed: {atol:g}).")


def sliders(explore, **controls):
    """Interactive controls over ``explore``'s keyword arguments, in a notebook only.

    Each change reruns ``explore`` (which should rerun a short simulation and draw it); keep its
    hyperparameters pytree leaves (``st.optim.sam(lr=..., rho=...)``) so a change never recompiles.
    In a notebook the figure ``explore`` draws at the initial values is shown at once, twice
    over in one output: inside the live widget (a kernel moves the sliders) and as a still PNG
    image of the same figure, which is what a page without a kernel shows (the docs site, a
    notebook viewer); nothing is fetched from the network for either.

    Args:
      explore: a function of keyword arguments only.
      **controls: name -> ``(low, high, initial)`` for a linear slider or
        ``(low, high, initial, "log")`` for a logarithmic one.

    Returns:
      The widget (sliders above the figure) in a notebook, already displayed; None elsewhere (a
      script or the CLI, where nobody can move a slider).

    Raises:
      ConfigError: a control that is not ``low < initial <= high`` (positive bounds for "log").
    """
    for name, spec in controls.items():
        low, high, initial = spec[:3]
        log = len(spec) > 3 and spec[3] == "log"
        if not (low < high and low <= initial <= high) or (log and low <= 0):
            raise ConfigError(name, repr(spec), "(low, high, initial[, 'log']) with low <= initial "
                              "<= high, low < high (and low > 0 for 'log')")
    if not in_notebook():
        return None
    import math

    import ipywidgets
    from IPython.display import display

    widgets = {}
    for name, spec in controls.items():
        low, high, initial = spec[:3]
        if len(spec) > 3:
            widgets[name] = ipywidgets.FloatLogSlider(
                value=initial, base=10, min=math.log10(low), max=math.log10(high), step=0.05,
                description=name, continuous_update=False)
        else:
            widgets[name] = ipywidgets.FloatSlider(
                value=initial, min=low, max=high, step=(high - low) / 100, description=name,
                continuous_update=False)
    frame = first_frame(explore, {name: spec[2] for name, spec in controls.items()})
    figure = ipywidgets.Output()
    if frame is not None:
        figure.outputs = ({"output_type": "display_data", "metadata": {},
                           "data": {"image/png": frame, "text/plain": "<Figure>"}},)

    def redraw(change=None):
        with figure:
            figure.clear_output(wait=True)
            explore(**{name: widget.value for name, widget in widgets.items()})

    for widget in widgets.values():
        widget.observe(redraw, names="value")
    box = ipywidgets.VBox([*widgets.values(), figure])
    bundle = dict(box._repr_mimebundle_())
    bundle["text/plain"] = "Try it yourself: " + ", ".join(
        f"{name} = {spec[2]:g}" for name, spec in controls.items())
    if frame is not None:
        bundle["image/png"] = frame
    display(bundle, raw=True)
    return box


def first_frame(explore, values: dict) -> str | None:
    """The figure ``explore(**values)`` draws, as a base64 PNG (what a page without a kernel
    shows of a slider cell).

    Whatever ``explore`` displays is captured, not shown; a figure it shows (``plt.show()``
    under Jupyter's inline backend) or leaves open is taken, and closed.

    Args:
      explore: the sliders' function.
      values: its keyword arguments (the sliders' initial values).

    Returns:
      The first figure's PNG, base64-encoded; None if ``explore`` drew no figure.
    """
    import base64
    import io

    import matplotlib.pyplot as plt
    from IPython.utils.capture import capture_output

    before = set(plt.get_fignums())
    with capture_output(display=True) as captured:
        explore(**values)
    images = [output.data["image/png"] for output in captured.outputs
              if "image/png" in output.data]
    for number in sorted(set(plt.get_fignums()) - before):  # drawn but never shown
        buffer = io.BytesIO()
        plt.figure(number).savefig(buffer, format="png", bbox_inches="tight")
        plt.close(number)
        images.append(buffer.getvalue())
    if not images:
        return None
    image = images[0]
    return base64.b64encode(image).decode("ascii") if isinstance(image, bytes) else image
