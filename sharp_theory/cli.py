"""The ``sharp-theory`` command: list | reproduce LAB | check [CLAIM..] | report | run PROBLEM.

Bad input is reported in one line naming the parameter, the value and the valid range, with exit
code 2, before any work starts and without writing anything.
"""
from __future__ import annotations

import argparse
import importlib
import json
import pkgutil
import runpy
import sys
from pathlib import Path

from . import labkit
from .errors import ConfigError, check_int


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
                           description="Reproduce and check published claims about SAM.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=OneLineParser)
    sub.add_parser("list", help="labs and claims")

    reproduce = sub.add_parser("reproduce", help="run a lab: figures, results.json, trajectories.npz")
    reproduce.add_argument("lab", metavar="LAB")
    reproduce.add_argument("--quick", action="store_true", help="small sizes (minutes -> seconds)")
    reproduce.add_argument("--out", type=Path, default=None, help="output folder (results/LAB)")
    reproduce.add_argument("--seeds", type=int, default=None, help="number of seeds")
    reproduce.add_argument("--grid", default=None,
                           help="grid preset for labs that have several (benign-overfitting: "
                                "quick, cpu, paper)")
    reproduce.add_argument("--device", choices=("cpu", "gpu"), default=None,
                           help="where labs that support it run their grids (default: what JAX finds)")

    check = sub.add_parser("check", help="run the labs behind claims and print their verdicts")
    check.add_argument("claims", nargs="*", metavar="CLAIM_ID")
    check.add_argument("--quick", action="store_true")
    check.add_argument("--out", type=Path, default=Path("results"),
                       help="folder for the labs' results (one subfolder per lab)")
    check.add_argument("--cached", action="store_true",
                       help="use existing OUT/LAB/results.json instead of re-running the lab")

    report = sub.add_parser("report", help="one HTML page with every lab's figures and claims")
    report.add_argument("--out", type=Path, default=Path("results"))

    run = sub.add_parser("run", help="a single run on your own data")
    run_sub = run.add_subparsers(dest="problem", required=True, parser_class=OneLineParser)
    for name, module in _commands().items():
        command = run_sub.add_parser(name, help=getattr(module, "HELP", ""))
        module.add_arguments(command)
    return parser


def reproduce_lab(name: str, *, quick: bool, out: Path | None, seeds: int | None,
                  extra: dict | None = None) -> dict:
    """Run lab ``name`` in this process and return its results dict.

    ``extra`` holds lab-specific options (``grid``, ``device``) that the lab reads from
    ``lab.extra``.
    """
    path = labkit.lab_path(name)
    out = labkit.check_writable(out or Path("results") / name)
    if seeds is not None:
        check_int("--seeds", seeds, minimum=1)
    labkit._PENDING.append(labkit.LabSettings(quick=quick, out=out, seeds=seeds, extra=extra or {}))
    active_before = len(labkit._ACTIVE)
    try:
        runpy.run_path(str(path), run_name="__lab__")
    except BaseException:
        for lab in labkit._ACTIVE[active_before:]:
            lab.abort()
        raise
    finally:
        labkit._PENDING.pop()
    started = labkit._ACTIVE[active_before:]
    if not started or started[-1].results is None:
        raise RuntimeError(f"lab {name!r} did not call lab.finish(); nothing was written")
    return started[-1].results


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


def cmd_check(args) -> int:
    from .claims import all_claims, get

    selected = [get(cid) for cid in args.claims] if args.claims else all_claims()
    labs_needed = sorted({claim.lab for claim in selected})
    for lab in labs_needed:
        labkit.lab_path(lab)  # unknown lab -> clear error before any work
    labkit.check_writable(args.out)
    rows = []
    for lab in labs_needed:
        out = args.out / lab
        cached = out / "results.json"
        if args.cached and cached.exists():
            results = json.loads(cached.read_text())
        else:
            results = reproduce_lab(lab, quick=args.quick, out=out, seeds=None)
        by_id = {c["id"]: c for c in results["claims"]}
        for claim in selected:
            if claim.lab == lab:
                row = claim.evaluate(results.get("measured", {}), quick=bool(results.get("quick", args.quick)))
                row["quick"] = bool(results.get("quick", args.quick))
                rows.append(row)
    print()
    print(labkit.format_claims_table(rows, quick=any(r["quick"] for r in rows)))
    differing = [r["id"] for r in rows if not labkit.verdict_matches(r, r["quick"])]
    if differing:
        print(f"\n{len(differing)} claim(s) differ from the expected verdict: " + ", ".join(differing))
        return 1
    print(f"\nall {len(rows)} claim(s) match their expected verdict")
    return 0


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if args.command == "list":
            return cmd_list()
        if args.command == "reproduce":
            extra = {k: v for k, v in (("grid", args.grid), ("device", args.device)) if v is not None}
            reproduce_lab(args.lab, quick=args.quick, out=args.out, seeds=args.seeds, extra=extra)
            return 0
        if args.command == "check":
            return cmd_check(args)
        if args.command == "report":
            from .report import build_report

            path = build_report(args.out)
            print(f"wrote {path}")
            return 0
        if args.command == "run":
            return _commands()[args.problem].main(args)
    except ConfigError as error:
        print(f"sharp-theory: error: {error}", file=sys.stderr)
        return 2
    return 2


if __name__ == "__main__":
    sys.exit(main())
