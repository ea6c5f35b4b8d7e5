"""``sharp-theory fuzz``: fuzz claims in a file, or ours, and print or save what was found.

Exit codes: 0 every claim holds, 1 at least one falsified (or a replayed slack < 0), 2 bad input,
a claim that cannot be evaluated (one line on stderr naming the claim and the drawn values), or
the budget exceeded.

The budget is a deadline. Importing the file, and each claim's search, run under a watchdog
thread: when the import takes longer than ``--budget-s`` plus a grace of ``IMPORT_GRACE_S``, or a
claim longer than ``--budget-s`` plus ``max(CLAIM_GRACE_S, --budget-s)`` (the search itself stops
at the budget; the grace covers the evaluation under way and the boundary step), the command
ends with one line, "budget exceeded at import / in claim NAME after N instance(s)", and exit
code 2, whatever the user's code is doing (a loop, a sleep, a compiled call).
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys
import threading
import time
from pathlib import Path

from ..errors import ConfigError

IMPORT_GRACE_S = 5.0
CLAIM_GRACE_S = 3.0
MIN_INSTANCES = 100

HELP = "fuzz your own bounds (@st.testing.claim functions) for counterexamples"
EPILOG = """targets:
  FILE              every claim in FILE
  FILE::NAME        one claim
  --registered      our own theory (sharp_theory/testing/registered.py); NAMEs select some

output: the verdict ("holds" | "falsified"), the instances tried, the worst violation found, the
shrunk counterexample moved next to the boundary where the claim stops holding, its slack, the
seed, and a replay command that prints the same slack bit for bit. "holds" needs at least
--min-instances instances. The budget is a deadline: an import or a claim that overruns it
(plus a grace) is stopped. exit codes: 0 holds, 1 falsified, 2 bad input, a claim that raised
(its file and line named) / returned NaN / never met its assume / ran too few instances, or the
budget exceeded (one line on stderr)."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``fuzz`` subcommand's arguments."""
    parser.add_argument("targets", nargs="*", metavar="TARGET",
                        help="FILE or FILE::NAME (with --registered: claim names)")
    parser.add_argument("--registered", action="store_true", help="fuzz our own theory's claims")
    parser.add_argument("--budget-s", type=float, default=60.0,
                        help="search time per claim in seconds (default 60)")
    parser.add_argument("--max-examples", type=int, default=None,
                        help="stop a claim's search after this many hypothesis examples")
    parser.add_argument("--min-instances", type=int, default=MIN_INSTANCES,
                        help="instances inside the regime a claim needs before it 'holds' "
                             f"(default {MIN_INSTANCES}; capped at --max-examples)")
    parser.add_argument("--seed", type=int, default=0, help="search seed (default 0)")
    parser.add_argument("--json", action="store_true",
                        help="print one JSON object (with several claims: {'claims': [...]})")
    parser.add_argument("--save", type=Path, default=None, metavar="DIR",
                        help="write NAME.json and NAME.npz for each counterexample into DIR")
    parser.add_argument("--replay", default=None, metavar="VALUES",
                        help="re-evaluate one claim at these JSON values and print its slack")


class Watchdog:
    """Ends the process with one line and exit code 2 when the current phase overruns its limit.

    A thread, not a signal: it fires whatever the main thread is doing (a Python loop, a sleep,
    a compiled XLA call that holds no Python lock).
    """

    def __init__(self, budget_s: float):
        self.budget_s = budget_s
        self.instances = 0
        self._phase: str | None = None
        self._deadline = math.inf
        self._lock = threading.Lock()
        threading.Thread(target=self._watch, name="sharp-theory-fuzz-watchdog", daemon=True).start()

    def start(self, phase: str, limit_s: float) -> None:
        """Begin ``phase`` ("at import", "in claim NAME"), which may last ``limit_s`` seconds."""
        with self._lock:
            self._phase, self.instances = phase, 0
            self._deadline = time.monotonic() + limit_s

    def stop(self) -> None:
        with self._lock:
            self._phase, self._deadline = None, math.inf

    def _watch(self) -> None:
        while True:
            time.sleep(0.05)
            with self._lock:
                overrun = time.monotonic() > self._deadline
                phase, instances = self._phase, self.instances
            if overrun:
                from ..output import CRITICAL

                with CRITICAL:  # let a counterexample file being saved finish its rename
                    counted = "" if phase == "at import" else f" after {instances} instance(s)"
                    message = (f"sharp-theory: error: --budget-s {self.budget_s:g} exceeded "
                               f"{phase}{counted}; the claim's code did not return in time\n")
                    try:
                        sys.stdout.flush()
                    except Exception:  # noqa: BLE001
                        pass
                    os.write(2, message.encode())
                    os._exit(2)


class _NoWatchdog:
    """The watchdog's interface, doing nothing."""

    instances = 0

    def start(self, phase: str, limit_s: float) -> None:
        pass

    def stop(self) -> None:
        pass


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
    if args.min_instances < 1:
        raise ConfigError("--min-instances", args.min_instances, "an integer >= 1")
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
    from .. import interrupts

    # The deadline ends the process, so only the command-line program arms it (a test or a
    # notebook calling main(argv) in its own process keeps the budget of the search alone).
    watchdog = Watchdog(args.budget_s) if interrupts.installed() else _NoWatchdog()
    watchdog.start("at import", args.budget_s + IMPORT_GRACE_S)
    chosen = _resolve(args)
    watchdog.stop()
    if args.replay is not None:
        watchdog.start(f"in claim {chosen[0][0].name}" if chosen else "at replay",
                       args.budget_s + max(CLAIM_GRACE_S, args.budget_s))
        return _replay(args, chosen)
    results = []
    for record, target in chosen:
        watchdog.start(f"in claim {record.name}", args.budget_s + max(CLAIM_GRACE_S, args.budget_s))
        result = fuzz(record, budget_s=args.budget_s, seed=args.seed,
                      max_examples=args.max_examples, replay_target=target,
                      min_instances=args.min_instances, progress=watchdog)
        watchdog.stop()
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
