"""Fixtures for the claim mutation suite: the numbers of the last full-size run of every lab,
trimmed to what the lab's claims read.

A fixture is ``tests/fixtures/claims/LAB.json``::

    {"lab": ..., "source": "how the run was made", "measured": {...trimmed...}}

Refresh after a full run (``sharp-theory reproduce LAB --out DIR/LAB`` for each lab)::

    PYTHONPATH=. python tests/claim_fixtures.py DIR [LAB ...]

Trimming keeps every key path a claim of the lab reads (found by running each check on a
recording view of the full results) and the statuses of the runs it reads from; nothing else.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "claims"


def fixture_path(lab: str) -> Path:
    return FIXTURES / f"{lab}.json"


def load_fixture(lab: str) -> dict | None:
    """The stored fixture of ``lab`` (None if there is none)."""
    path = fixture_path(lab)
    return json.loads(path.read_text()) if path.exists() else None


def trim(value, paths: set[tuple]):
    """``value`` keeping only what lies on the key paths in ``paths`` (a path () keeps all)."""
    if () in paths or not paths:
        return value
    heads = {path[0] for path in paths}
    if isinstance(value, dict):
        return {key: trim(value[key], {p[1:] for p in paths if p[0] == key})
                for key in value if key in heads}
    if isinstance(value, list):  # a list of runs: keep its length, trim each run
        return [trim(item, {p[1:] for p in paths if p[0] == index}) if index in heads else {}
                for index, item in enumerate(value)]
    return value


def paths_read(lab: str, measured: dict) -> set[tuple]:
    """Every key path the claims of ``lab`` read from ``measured`` (leaves and run statuses)."""
    from sharp_theory.claims import claims_for_lab
    from sharp_theory.claims.base import read_paths

    paths: set[tuple] = set()
    for claim in claims_for_lab(lab):
        leaves, statuses = read_paths(claim.check, measured, quick=False)
        paths |= set(leaves) | set(statuses)
    return paths


def build(results_dir: Path, lab: str) -> dict:
    """The fixture of ``lab`` from ``results_dir/lab/results.json`` (a full-size run)."""
    results = json.loads((Path(results_dir) / lab / "results.json").read_text())
    if results.get("quick"):
        raise SystemExit(f"{lab}: {results_dir} holds a --quick run; fixtures come from full runs")
    measured = results["measured"]
    versions = results.get("versions", {})
    return {"lab": lab, "source": f"full run of {results.get('started')}, commit "
                                  f"{versions.get('git_commit')}, seeds {results.get('seeds')}, "
                                  f"wall time {results.get('wall_time_s')} s",
            "measured": trim(measured, paths_read(lab, measured))}


def main(argv: list[str]) -> int:
    from sharp_theory.claims import all_claims

    results_dir = Path(argv[0])
    labs = argv[1:] or sorted({claim.lab for claim in all_claims()})
    FIXTURES.mkdir(parents=True, exist_ok=True)
    for lab in labs:
        fixture = build(results_dir, lab)
        fixture_path(lab).write_text(json.dumps(fixture, indent=1, ensure_ascii=False) + "\n")
        print(f"{lab}: {fixture_path(lab)} ({fixture_path(lab).stat().st_size} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
