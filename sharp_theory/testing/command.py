"""``sharp-theory fuzz``: fuzz claims in a file, or ours, and print or save what was found.

Exit codes: 0 every claim holds, 1 at least one falsified (or a replayed slack < 0), 2 bad input
or a claim that cannot be evaluated (one line on stderr naming the claim and the drawn values).
"""
from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

from ..errors import ConfigError

HELP = "fuzz your own bounds (@st.testing.claim functions) for counterexamples"
EPILOG = """targets:
  FILE              every claim in FILE
  FILE::NAME        one claim
  --registered      our own theory (sharp_theory/testing/registered.py); NAMEs select some

output: the verdict ("holds" | "falsified"), the instances tried, the shrunk counterexample next
to the boundary where the claim stops holding, its slack, the seed, and a replay command that
prints the same slack bit for bit. exit codes: 0 holds, 1 falsified, 2 bad input or a claim that
raised / returned NaN / never met its assume (one line on stderr)."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``fuzz`` subcommand's arguments."""
    parser.add_argument("targets", nargs="*", metavar="TARGET",
                        help="FILE or FILE::NAME (with --registered: claim names)")
    parser.add_argument("--registered", action="store_true", help="fuzz our own theory's claims")
    parser.add_argument("--budget-s", type=float, default=60.0,
                        help="search time per claim in seconds (default 60)")
    parser.add_argument("--max-examples", type=int, default=None,
                        help="stop a claim's search after this many hypothesis examples")
    parser.add_argument("--seed", type=int, default=0, help="search seed (default 0)")
    parser.add_argument("--json", action="store_true",
                        help="print one JSON object (with several claims: {'claims': [...]})")
    parser.add_argument("--save", type=Path, default=None, metavar="DIR",
                        help="write NAME.json and NAME.npz for each counterexample into DIR")
    parser.add_argument("--replay", default=None, metavar="VALUES",
                        help="re-evaluate one claim at these JSON values and print its slack")


def _resolve(args) -> list[tuple]:
    """``[(claim, replay_target), ...]`` for the command line, or a one-line ConfigError."""
    from .files import load_file, registered_claims, select

    if args.registered:
        claims = select(registered_claims(), args.targets, "--registered")
        return [(c, f"--registered {c.name}") for c in claims]
    if not args.targets:
        raise ConfigError("TARGET", "none", "FILE, FILE::NAME or --registered")
    chosen = []
    for target in args.targets:
        path, _, name = target.rpartition("::") if "::" in target else (target, "", "")
        claims = load_file(path)
        for record in select(claims, [name] if name else [], path):
            chosen.append((record, f"{path}::{record.name}"))
    return chosen


def _check(args) -> None:
    if not (args.budget_s > 0 and math.isfinite(args.budget_s)):
        raise ConfigError("--budget-s", args.budget_s, "a finite number of seconds > 0")
    if args.seed < 0:
        raise ConfigError("--seed", args.seed, "an integer >= 0")
    if args.max_examples is not None and args.max_examples < 1:
        raise ConfigError("--max-examples", args.max_examples, "an integer >= 1")
    if args.save is not None and args.save.exists() and not args.save.is_dir():
        raise ConfigError("--save", str(args.save), "a folder (this path is a file)")


def _replay(args, chosen) -> int:
    from .decorator import ClaimError, values_from_json
    from .runner import replay

    if len(chosen) != 1:
        raise ConfigError("--replay", f"{len(chosen)} claims", "exactly one claim (FILE::NAME)")
    record, _ = chosen[0]
    values = values_from_json(args.replay)
    try:
        slack = replay(record, values)
    except ClaimError as error:
        print(f"sharp-theory: error: {error}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps({"claim": record.name, "slack": slack, "slack_hex": slack.hex()}))
    else:
        print(f"{record.name}: slack {slack!r} ({slack.hex()}) -> "
              f"{'holds' if slack >= 0 else 'violated'}")
    return 0 if slack >= 0 else 1


def main(args) -> int:
    """Run ``sharp-theory fuzz``; returns the exit code."""
    from .files import save_counterexample
    from .runner import fuzz

    _check(args)
    chosen = _resolve(args)
    if args.replay is not None:
        return _replay(args, chosen)
    results = []
    for record, target in chosen:
        result = fuzz(record, budget_s=args.budget_s, seed=args.seed,
                      max_examples=args.max_examples, replay_target=target)
        results.append(result)
        if result.verdict == "error":
            print(f"sharp-theory: error: {result.error}", file=sys.stderr)
        elif not args.json:
            print(result.describe(), flush=True)
        if args.save is not None:
            for path in save_counterexample(result, args.save):
                if not args.json:
                    print(f"  saved {path}")
    if args.json:
        payload = ([r.to_json() for r in results])
        print(json.dumps(payload[0] if len(payload) == 1 else
                         {"claims": payload, "verdict": _overall(results)}))
    elif len(results) > 1:
        counts = {v: sum(r.verdict == v for r in results) for v in ("holds", "falsified", "error")}
        print(f"{len(results)} claims: " + ", ".join(f"{n} {v}" for v, n in counts.items() if n))
    verdicts = {r.verdict for r in results}
    return 2 if "error" in verdicts else 1 if "falsified" in verdicts else 0


def _overall(results) -> str:
    verdicts = {r.verdict for r in results}
    return "error" if "error" in verdicts else "falsified" if "falsified" in verdicts else "holds"
