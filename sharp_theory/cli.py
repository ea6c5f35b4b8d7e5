"""The ``sharp-theory`` command: list | reproduce LAB | check [CLAIM..] | report | run PROBLEM |
launch --processes N -- reproduce LAB.

Bad input is reported in one line naming the parameter, the value and the valid range, with exit
code 2, before any work starts and without writing anything. Ctrl-C / SIGTERM end the command
within a moment with one line and exit code 130 / 143 (sharp_theory.interrupts); a rerun of the
same ``reproduce`` resumes from the completed stages (sharp_theory.checkpoints). Output folders
are only ever written when they are new, empty or ours, by one run at a time
(sharp_theory.output). A file-system fault (no space left, a name too long, no permission) is
one line and exit code 3; nothing half-written is left. The exit codes are in :data:`EXIT_CODES`.
"""
from __future__ import annotations

import argparse
import errno
import importlib
import os
import pkgutil
import runpy
import sys
from pathlib import Path

from . import interrupts, jax_setup, labkit, launch
from .errors import ConfigError, StallError
from .output import OutputFolder

EXIT_CODES = {
    0: "done; every verdict as expected",
    1: "a verdict differs from its expectation (or a fuzzed claim was falsified)",
    2: "bad input: an argument, an environment variable, a busy or foreign output folder, a "
       "fuzz budget exceeded (one line on stderr, nothing written)",
    3: "a file-system fault while writing: no space left, a quota, a permission lost (one line "
       "on stderr; completed stages are kept, nothing half-written is left)",
    4: "--strict: stored results were computed by other code (check --cached, report)",
    5: "a compiled computation stalled: no CPU progress for SHARP_THEORY_STALL_S seconds (one "
       "line on stderr; completed stages are kept)",
    130: "interrupted by SIGINT (Ctrl-C); a rerun of the same command resumes",
    143: "interrupted by SIGTERM; a rerun of the same command resumes",
}
"""What each exit code of ``sharp-theory`` means (the same for every command)."""

# Measured per lab on 2 cores (README, "How long --quick takes").
QUICK_TIME = "15 s to 1.5 min"

ENVIRONMENT = """environment variables (each checked before any work; a bad value is exit 2):
  SHARP_THEORY_CPU_DEVICES=n  JAX CPU devices (default: one per core; 1 = JAX's default)
  SHARP_THEORY_X64=0|1        0 keeps JAX's float32 default; 1 (default) turns on float64
  SHARP_THEORY_COMPILE_CACHE=0|1|DIR  compiled programs are kept in ~/.cache/sharp-theory
                              (XDG_CACHE_HOME) between runs; 0 turns it off, an absolute DIR
                              moves it; an unwritable folder is skipped with one note
  SHARP_THEORY_PROGRESS=0|1   progress bars even when stderr is not a terminal
  SHARP_THEORY_STALL_S=s      a compiled CPU computation that uses no CPU time for s seconds
                              (default 300) ends the command with exit 5; 0 waits forever
  SHARP_THEORY_LABS=DIR       run lab scripts from DIR instead of the repository's labs/
  SHARP_THEORY_QUICK=0|1, SHARP_THEORY_OUT=DIR, SHARP_THEORY_SEEDS=N, SHARP_THEORY_GRID=NAME,
  SHARP_THEORY_DEVICE=cpu|gpu  the same settings for a lab run inside a notebook

exit codes: 0 done / verdicts as expected, 1 a verdict differs from its expectation (fuzz: a
claim falsified), 2 bad input or a busy / foreign output folder (one line on stderr, nothing
written), 3 a file-system fault while writing (no space, quota, permission), 4 --strict and stored
results from other code, 5 a computation stalled (no CPU progress for SHARP_THEORY_STALL_S s),
130 / 143 interrupted by SIGINT / SIGTERM"""


class OneLineParser(argparse.ArgumentParser):
    """argparse, but a usage error is one line on stderr and exit code 2."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message}\n")


def _commands() -> dict:
    """Single-run commands for user data, discovered in ``sharp_theory.commands``."""
    from . import commands

    found = {}
    for module in pkgutil.iter_modules(commands.__path__):
        loaded = importlib.import_module(f"{commands.__name__}.{module.name}")
        if hasattr(loaded, "NAME") and hasattr(loaded, "main"):
            found[loaded.NAME] = loaded
    return found


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog="sharp-theory",
                           description="Reproduce and check published claims about SAM.",
                           epilog=ENVIRONMENT,
                           formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True, parser_class=OneLineParser)
    sub.add_parser("list", help="labs and claims")

    reproduce = sub.add_parser(
        "reproduce", help="run a lab: figures, results.json, trajectories.npz",
        epilog="OUT must be new, empty, or a folder sharp-theory wrote: files we did not write "
               "are never replaced or deleted. Completed stages are saved in OUT/.checkpoints "
               "while the lab runs; rerunning an interrupted command resumes from them.",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    reproduce.add_argument("lab", metavar="LAB")
    reproduce.add_argument("--quick", action="store_true",
                           help=f"small sizes for CI and class ({QUICK_TIME} per lab on 2 cores)")
    reproduce.add_argument("--out", type=Path, default=None,
                           help="output folder (default results/LAB)")
    reproduce.add_argument("--seeds", type=int, default=None,
                           help=f"number of seeds, 1..{labkit.MAX_SEEDS} (default: the lab's)")
    reproduce.add_argument("--resume", action=argparse.BooleanOptionalAction, default=True,
                           help="resume an interrupted run from OUT/.checkpoints (default); "
                                "--no-resume starts from zero")
    reproduce.add_argument("--grid", default=None,
                           help="grid preset for labs that have several (benign-overfitting: "
                                "quick, cpu, paper)")
    reproduce.add_argument("--device", choices=("cpu", "gpu"), default=None,
                           help="where labs that support it run their grids (default: what JAX finds)")
    reproduce.add_argument("--replace-other-lab", action="store_true",
                           help="OUT may hold another lab's results; this run replaces them "
                                "(without it such a folder is refused)")
    launch.add_cluster_arguments(reproduce)

    launcher = sub.add_parser(
        "launch", help="run a lab in N local processes joined by jax.distributed",
        description="Start N processes of `sharp-theory reproduce LAB ...` on this machine, "
                    "joined by jax.distributed (coordinator on 127.0.0.1, CPU collectives over "
                    "gloo). Sweeps and the conv-ReLU grid divide their lanes over all processes; "
                    "process 0 writes OUT. If one process fails, the others are stopped.",
        epilog="example: sharp-theory launch --processes 2 -- reproduce benign-overfitting "
               "--quick --out results/bo")
    launcher.add_argument("--processes", type=int, required=True, metavar="N")
    launcher.add_argument("--devices-per-process", type=int, default=None, metavar="K",
                          help="JAX CPU devices per process (default: cores / N, at least 1)")
    launcher.add_argument("--timeout-s", type=float, default=None,
                          help="stop every process after this many seconds (exit code 124)")
    launcher.add_argument("--heartbeat-s", type=int, default=60,
                          help="a process silent this long ends the run (default 60)")
    launcher.add_argument("command_", nargs=argparse.REMAINDER, metavar="-- reproduce LAB ...")

    check = sub.add_parser("check", help="run the labs behind claims and print their verdicts")
    check.add_argument("claims", nargs="*", metavar="CLAIM",
                       help="claim ids, paper keys (li2024) or lab names (balancedness); "
                            "default: every claim")
    check.add_argument("--quick", action="store_true", help="small sizes (a claim may then be "
                       "inconclusive, never contradict its expectation)")
    check.add_argument("--out", type=Path, default=Path("results"),
                       help="folder for the labs' results (one subfolder per lab)")
    check.add_argument("--cached", action="store_true",
                       help="use existing OUT/LAB/results.json instead of re-running the lab "
                            "(a missing one is an error); a results.json computed by other code "
                            "(commit, versions) is named in a warning")
    check.add_argument("--strict", action="store_true",
                       help="with --cached: exit 4 when a results.json was computed by other code")

    report = sub.add_parser("report", help="one HTML page with every lab's figures and claims")
    report.add_argument("--out", type=Path, default=Path("results"))
    report.add_argument("--strict", action="store_true",
                        help="exit 4 (and write nothing) when a results.json was computed by "
                             "other code")

    from .testing import command as fuzz_command  # noqa: E402 (imports hypothesis lazily)

    fuzz = sub.add_parser("fuzz", help=fuzz_command.HELP, epilog=fuzz_command.EPILOG,
                          formatter_class=argparse.RawDescriptionHelpFormatter)
    fuzz_command.add_arguments(fuzz)

    run = sub.add_parser("run", help="a single run on your own data")
    run_sub = run.add_subparsers(dest="problem", required=True, parser_class=OneLineParser)
    for name, module in _commands().items():
        command = run_sub.add_parser(name, help=getattr(module, "HELP", ""))
        module.add_arguments(command)
    return parser


def reproduce_lab(name: str, *, quick: bool, out: Path | None, seeds: int | None,
                  extra: dict | None = None, resume: bool = True,
                  cluster: launch.Cluster | None = None, replace_other_lab: bool = False) -> dict:
    """Run lab ``name`` in this process and return its results dict.

    ``extra`` holds lab-specific options (``grid``, ``device``) that the lab declares and reads
    from ``lab.extra``. ``resume`` loads the stages a previous run of the same command saved.
    With ``cluster`` this process first joins the others (sharp_theory.launch); only process 0
    writes ``out``. ``replace_other_lab`` lets ``out`` hold another lab's results.
    """
    path = labkit.lab_path(name)
    labkit.check_seeds(seeds)
    out = out or Path("results") / name
    OutputFolder.inspect(out, name, replace_other_lab=replace_other_lab)  # before importing JAX
    membership = None
    if cluster is not None:
        membership = launch.join(cluster, out, resume=resume)
        out = membership.out
    labkit._PENDING.append(labkit.LabSettings(quick=quick, out=out, seeds=seeds,
                                              extra=extra or {}, resume=resume,
                                              replace_other_lab=replace_other_lab))
    active_before = len(labkit._ACTIVE)
    try:
        runpy.run_path(str(path), run_name="__lab__")
    except BaseException:
        for lab in labkit._ACTIVE[active_before:]:
            lab.abort()
        raise
    finally:
        labkit._PENDING.pop()
        if membership is not None and not (active_before < len(labkit._ACTIVE) and
                                           labkit._ACTIVE[-1].results is not None):
            membership.discard()  # a failed run: no shutdown barrier, the scratch folder goes
    started = labkit._ACTIVE[active_before:]
    if not started or started[-1].results is None:
        raise RuntimeError(f"lab {name!r} did not call lab.finish(); nothing was written")
    if membership is not None:
        membership.leave()
    return started[-1].results


def select_claims(selectors) -> list:
    """Claims named by id, paper key or lab name (all claims when ``selectors`` is empty)."""
    from .claims import all_claims

    claims = all_claims()
    if not selectors:
        return claims
    labs = labkit.available_labs()
    chosen: dict = {}
    for selector in selectors:
        found = [c for c in claims if selector in (c.id, c.paper, c.lab)]
        if not found:
            papers = sorted({c.paper for c in claims})
            raise ConfigError("claim", selector, "a claim id, a paper key (" + ", ".join(papers) +
                              ") or a lab name (" + ", ".join(sorted(labs)) + "); "
                              "`sharp-theory list` shows the claim ids")
        chosen.update((c.id, c) for c in found)
    return sorted(chosen.values(), key=lambda c: c.id)


def cmd_list() -> int:
    from .claims import all_claims

    labs = labkit.available_labs()
    print("Labs (sharp-theory reproduce LAB [--quick]):")
    for name, path in labs.items():
        print(f"  {name:<22} {labkit.lab_title(path)}")
    print("\nClaims (sharp-theory check [CLAIM_ID ...]):")
    for claim in all_claims():
        print(f"  {claim.id:<55} [{claim.lab}; expected {claim.expected}]")
    return 0


def warn_provenance(results_by_lab: dict, where: Path) -> list[str]:
    """Print one warning per lab whose stored results were computed by other code.

    Args:
      results_by_lab: lab name -> its results dict (as read from results.json).
      where: the folder holding the labs' folders (for the message).

    Returns:
      The labs that were warned about.
    """
    stale = []
    current = labkit.versions(with_devices=False)
    for lab, results in results_by_lab.items():
        differences = labkit.provenance_differences(results, current)
        if differences:
            stale.append(lab)
            print(f"sharp-theory: warning: {where / lab / 'results.json'} was computed by other "
                  "code than this one: " + "; ".join(differences), file=sys.stderr)
    return stale


def differing_claims(results: dict) -> list[str]:
    """The ids of the claims in a results dict whose verdict differs from its expectation."""
    quick = bool(results.get("quick"))
    return [c["id"] for c in results.get("claims", []) if not labkit.verdict_matches(c, quick)]


def cmd_reproduce(args) -> int:
    """``sharp-theory reproduce``: 0 when every verdict is as expected, else 1."""
    extra = {k: v for k, v in (("grid", args.grid), ("device", args.device)) if v is not None}
    cluster = launch.cluster_from(args)
    results = reproduce_lab(args.lab, quick=args.quick, out=args.out, seeds=args.seeds,
                            extra=extra, resume=args.resume, cluster=cluster,
                            replace_other_lab=args.replace_other_lab)
    differing = differing_claims(results)
    if differing:
        print(f"sharp-theory: {len(differing)} claim(s) differ from the expected verdict: "
              + ", ".join(differing), file=sys.stderr)
        return 1
    return 0


def cmd_check(args) -> int:
    selected = select_claims(args.claims)
    labs_needed = sorted({claim.lab for claim in selected})
    for lab in labs_needed:
        labkit.lab_path(lab)  # unknown lab -> clear error before any work
    if args.strict and not args.cached:
        raise ConfigError("--strict", "without --cached", "--strict together with --cached "
                          "(a fresh run is computed by this code)")
    cached = {}
    for lab in labs_needed:  # every input is checked before the first lab runs
        if args.cached:
            cached[lab] = labkit.read_results(args.out / lab / "results.json")
        else:
            OutputFolder.inspect(args.out / lab, lab)
    stale = warn_provenance(cached, args.out) if args.cached else []
    rows = []
    for lab in labs_needed:
        if args.cached:
            results = cached[lab]
        else:
            results = reproduce_lab(lab, quick=args.quick, out=args.out / lab, seeds=None)
        # Stored numbers are judged again by the current checks (the stored rows may be older),
        # against the expectation of the grid the results record.
        quick = bool(results.get("quick", args.quick))
        grid = results.get("grid") or (results.get("config") or {}).get("grid")
        for claim in selected:
            if claim.lab == lab:
                row = claim.evaluate(results.get("measured", {}), quick=quick,
                                     grid=str(grid) if grid else None)
                row["quick"] = quick
                rows.append(row)
    print()
    print(labkit.format_claims_table(rows, quick=any(r["quick"] for r in rows)))
    differing = [r["id"] for r in rows if not labkit.verdict_matches(r, r["quick"])]
    if stale and args.strict:
        print(f"\n--strict: {len(stale)} lab(s) have results computed by other code: "
              + ", ".join(stale), file=sys.stderr)
        return 4
    if differing:
        print(f"\n{len(differing)} claim(s) differ from the expected verdict: " + ", ".join(differing))
        return 1
    print(f"\nall {len(rows)} claim(s) match their expected verdict")
    return 0


def cmd_fuzz(args) -> int:
    """``sharp-theory fuzz``: property-based search for counterexamples to claimed bounds."""
    from .testing import command as fuzz_command

    return fuzz_command.main(args)


def main(argv=None) -> int:
    """The console entry point. Called without ``argv`` (the real command line) it also takes
    over SIGINT/SIGTERM (see sharp_theory.interrupts); tests pass ``argv`` and keep theirs."""
    if argv is None:
        interrupts.install()
    parser = build_parser()
    args = parser.parse_args(argv)
    interrupts.say_resumable(args.command in ("reproduce", "check", "launch"))
    try:
        jax_setup.check_environment()
        jax_setup.private_matplotlib_folder_if_needed()
        if args.command == "list":
            return cmd_list()
        if args.command == "reproduce":
            return cmd_reproduce(args)
        if args.command == "launch":
            return launch.launch(args.command_, processes=args.processes,
                                 devices_per_process=args.devices_per_process,
                                 heartbeat_s=args.heartbeat_s, timeout_s=args.timeout_s)
        if args.command == "check":
            return cmd_check(args)
        if args.command == "report":
            from .report import build_report

            path = build_report(args.out, strict=args.strict, warn=warn_provenance)
            if path is None:
                return 4
            print(f"wrote {path}")
            return 0
        if args.command == "run":
            return _commands()[args.problem].main(args)
        if args.command == "fuzz":
            return cmd_fuzz(args)
    except ConfigError as error:
        print(f"sharp-theory: error: {str(error).splitlines()[0]}", file=sys.stderr)
        return 2
    except StallError as error:
        # The stuck computation keeps XLA's threads: end the process at once (staging folders
        # removed, completed stages kept), without unwinding JAX, which could wait on them.
        interrupts.end_process(5, f"sharp-theory: error: {error}")
    except OSError as error:
        if error.errno is None:
            raise
        print(f"sharp-theory: error: {describe_os_error(error)}", file=sys.stderr)
        return 3
    except KeyboardInterrupt:  # only reached when main() was called with argv (no watcher)
        print("sharp-theory: interrupted; rerun the same command to resume", file=sys.stderr)
        return 130
    return 2


def describe_os_error(error: OSError) -> str:
    """One line for a file-system fault: what failed, on which file, and what to do.

    Args:
      error: the OSError (``errno`` set).

    Returns:
      The line (no traceback, no newline).
    """
    where = f" ({error.filename})" if error.filename else ""
    advice = {errno.ENOSPC: "free some space or choose another --out; completed stages are kept "
                            "and a rerun resumes",
              errno.EDQUOT: "free some space or choose another --out",
              errno.ENAMETOOLONG: "choose a shorter --out path",
              errno.EACCES: "choose a folder you may write",
              errno.EPERM: "choose a folder you may write",
              errno.EROFS: "choose a folder on a writable file system"}.get(error.errno, "")
    text = f"{error.strerror or os.strerror(error.errno)}{where}"
    return text + (f"; {advice}" if advice else "")


def console() -> None:
    """The ``sharp-theory`` executable: :func:`main` on the real command line, then an exit
    that skips the interpreter's teardown. Everything we write is closed and renamed by then;
    the teardown would only reset the signal handlers (a Ctrl-C in that last moment would kill
    the process with no message) and unload JAX, which can crash at exit."""
    try:
        code = main()
    finally:
        jax_setup.remove_private_folders()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(code)


if __name__ == "__main__":
    console()
