"""Cold start of every lab at --quick, in new processes, with and without the persistent
compilation cache (sharp_theory.compile_cache), and the command line's start-up time.

For each lab: one run with the cache off (SHARP_THEORY_COMPILE_CACHE=0), then two runs with the
cache on in a folder that starts empty (the first fills it, the second reads it). Each run is a
new ``python -m sharp_theory.cli reproduce LAB --quick`` process, timed by wall clock, with the
load average recorded before it (the machine may be shared). Prints a markdown table and writes
the numbers as JSON.

Run: ``python benchmarks/bench_compile_cache.py [--labs a b ...] [--json out.json]``.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def load_average() -> float:
    return round(os.getloadavg()[0], 2)


def children_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed(argv: list[str], env: dict) -> tuple[float, int, float]:
    """Wall seconds, exit code and CPU seconds (user + system) of one new process."""
    cpu = children_cpu_s()
    start = time.perf_counter()
    done = subprocess.run(argv, env=env, cwd=ROOT, stdout=subprocess.DEVNULL,
                          stderr=subprocess.PIPE, text=True)
    if done.returncode != 0:
        print(done.stderr[-2000:], file=sys.stderr)
    return time.perf_counter() - start, done.returncode, children_cpu_s() - cpu


def cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "sharp_theory.cli", *args]


def startup(env: dict, repeats: int = 5) -> dict:
    """Best and median wall time of ``--help`` and ``list`` in new processes."""
    found = {}
    for name, argv in (("--help", cli("--help")), ("list", cli("list"))):
        times = sorted(timed(argv, env)[0] for _ in range(repeats))
        found[name] = {"best_s": round(times[0], 3), "median_s": round(times[len(times) // 2], 3)}
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--labs", nargs="*", default=None, help="default: every lab")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    labs = args.labs or sorted(p.stem.replace("_", "-") for p in (ROOT / "labs").glob("*.py")
                               if not p.name.startswith("_"))
    report = {"startup": startup(env), "labs": {}}
    print("start-up:", json.dumps(report["startup"]), flush=True)
    with tempfile.TemporaryDirectory(prefix="bench-compile-cache-") as scratch:
        for lab in labs:
            cache = Path(scratch) / f"cache-{lab}"
            row = {}
            for label, setting in (("off", "0"), ("first", str(cache)), ("second", str(cache))):
                out = Path(scratch) / f"out-{lab}-{label}"
                load = load_average()
                seconds, code, cpu = timed(cli("reproduce", lab, "--quick", "--out", str(out)),
                                      dict(env, SHARP_THEORY_COMPILE_CACHE=setting))
                row[label] = {"s": round(seconds, 1), "cpu_s": round(cpu, 1), "load_before": load,
                              "exit": code}
            row["cache_files"] = sum(1 for f in cache.rglob("*") if f.is_file())
            row["cache_mb"] = round(sum(f.stat().st_size for f in cache.rglob("*") if f.is_file())
                                    / 2**20, 1)
            report["labs"][lab] = row
            print(lab, json.dumps(row), flush=True)
    print("\nwall seconds (CPU seconds, user + system, all threads)\n")
    print("| lab | cache off | cache on, first run (fills it) | cache on, second run | "
          "second / off, CPU | cache entries | load average before the runs |")
    print("|---|---|---|---|---|---|---|")
    for lab, row in report["labs"].items():
        loads = " / ".join(str(row[k]["load_before"]) for k in ("off", "first", "second"))
        cells = " | ".join(f"{row[k]['s']} s ({row[k]['cpu_s']} s)" for k in ("off", "first", "second"))
        print(f"| {lab} | {cells} | {row['second']['cpu_s'] / row['off']['cpu_s']:.2f} | "
              f"{row['cache_files']} ({row['cache_mb']} MiB) | {loads} |")
    if args.json:
        args.json.write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
