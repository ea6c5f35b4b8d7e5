"""The claim fuzzer (issue 13): time to falsify known-false statements, and instances survived
by the registered (true) claims.

1. Each known-false statement of ``sharp_theory/testing/known_false.py`` is fuzzed with a 60 s
   budget for several seeds; we report the wall time to the (shrunk, boundary-refined)
   counterexample, how far it lies from the theory's boundary (|ρμ − 1| for the USAM saddle,
   |r/1e-6 − 1| for SAM's 2-cycle radius r), its dimension, and whether ``replay`` gives the
   same slack bit for bit.
2. Each registered claim is fuzzed until at least ``--instances`` instances (default 2,000) were
   evaluated in its regime; we report instances, rejected draws, the wall time (including
   compilation) and the smallest slack seen.

Run: ``python benchmarks/bench_fuzz.py [--seeds 3] [--instances 2000] [--json OUT]``.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import time

import sharp_theory as st
from sharp_theory.testing import known_false


def falsify(seeds: int) -> list[dict]:
    rows = []
    cases = ((known_false.usam_escapes_saddle, known_false.usam_boundary_gap),
             (known_false.sam_converges_to_minimizer, known_false.sam_boundary_gap))
    for decorated, gap in cases:
        for seed in range(seeds):
            started = time.perf_counter()
            result = st.testing.fuzz(decorated.claim, budget_s=60.0, seed=seed)
            elapsed = time.perf_counter() - started
            row = {"claim": result.claim, "seed": seed, "verdict": result.verdict,
                   "seconds": round(elapsed, 2), "examples": result.examples}
            if result.verdict == "falsified":
                values = result.counterexample
                row.update(boundary_gap=gap(values), dimension=len(values["quad"].facts["eigenvalues"]),
                           slack=result.slack, moved=result.boundary and result.boundary["parameter"],
                           replay_identical=st.testing.replay(decorated.claim, values) == result.slack,
                           counterexample={k: (v if isinstance(v, float) else repr(v))
                                           for k, v in values.items()})
            rows.append(row)
            print(json.dumps(row), flush=True)
    return rows


def survive(instances: int) -> list[dict]:
    rows = []
    for name, record in st.testing.registered_claims().items():
        examples = math.ceil(instances / record.batch) + (5 if record.vectorized else 0)
        started = time.perf_counter()
        result = st.testing.fuzz(record, budget_s=None, max_examples=examples, seed=0)
        row = {"claim": name, "verdict": result.verdict, "instances": result.examples,
               "rejected": result.rejected, "seconds": round(time.perf_counter() - started, 2),
               "min_slack": result.min_slack, "vectorized": record.vectorized}
        rows.append(row)
        print(json.dumps(row), flush=True)
    return rows


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--instances", type=int, default=2000)
    parser.add_argument("--json", default=None, help="write the rows to this JSON file")
    parser.add_argument("--skip-registered", action="store_true")
    args = parser.parse_args(argv)
    report = {"cpu_count": os.cpu_count(), "load_average": os.getloadavg(),
              "falsify": falsify(args.seeds)}
    if not args.skip_registered:
        report["registered"] = survive(args.instances)
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(report, handle, indent=2, default=repr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
