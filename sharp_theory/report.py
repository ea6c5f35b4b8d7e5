"""``sharp-theory report``: one HTML page with every lab's figures and the claim table.

The page is rendered by Jinja2 from ``sharp_theory/templates/`` with autoescaping on, so a
statement, a lab name or a number can never inject markup; it needs no network (no scripts,
no fonts, images are the lab's own files next to it).
"""
from __future__ import annotations

from pathlib import Path

from .claims.base import format_decisive
from .errors import ConfigError
from .labkit import format_number, read_results, verdict_matches
from .output import write_text_atomic

GENERATOR = '<meta name="generator" content="sharp-theory report">'
# The marker earlier versions wrote (single quotes): a report they wrote is still ours to replace.
_EARLIER_GENERATOR = "<meta name='generator' content='sharp-theory report'>"


def templates():
    """The Jinja2 environment over ``sharp_theory/templates`` (autoescaping everything).

    Returns:
      A ``jinja2.Environment``; ``get_template("report.html.j2")`` renders the report, and
      ``claims.html.j2`` holds the ``claim_table`` macro the docs site reuses.
    """
    import jinja2

    return jinja2.Environment(
        loader=jinja2.PackageLoader("sharp_theory", "templates"),
        autoescape=True, undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)


def claim_rows(claims, quick: bool) -> list[dict]:
    """Claim rows of one results.json, as the templates show them.

    Args:
      claims: the ``claims`` list of a results.json.
      quick: whether those results come from a ``--quick`` run (a quick run may be inconclusive).

    Returns:
      One dict per claim: ``id``, ``statement``, ``verdict``, ``expected``, ``matches`` (the
      verdict is what we expect), ``decisive`` (the decisive number against its threshold) and
      ``numbers`` (every measured number, formatted) and ``why`` (an inconclusive verdict's
      reason, e.g. "needs the full run: ...", else empty).
    """
    return [{
        "id": claim["id"], "statement": claim["statement"], "verdict": claim["verdict"],
        "expected": claim["expected"], "matches": verdict_matches(claim, quick),
        "decisive": format_decisive(claim) or "(none)",
        "numbers": ", ".join(f"{k} = {format_number(v)}" for k, v in claim["measured"].items()),
        "why": (claim.get("detail") or "") if claim["verdict"] == "inconclusive" else "",
    } for claim in claims]


def figure_caption(results: dict, name: str) -> str:
    """A figure's caption: its finding and the claims it supports (from results.json), else
    its name. Figures are shown at most 720 px (7.5 in) wide: the page width the figure lint
    sizes fonts for (``sharp_theory.plotting.PAGE_WIDTH``).

    Args:
      results: a lab's results.json (its ``figure_checks`` hold each figure's finding).
      name: the figure's name.

    Returns:
      ``"name: finding (claims: ...)"``, or the name alone when no finding was recorded.
    """
    record = (results.get("figure_checks") or {}).get(name) or {}
    finding = record.get("finding") if isinstance(record, dict) else None
    if not isinstance(finding, str) or not finding:
        return name
    claims = [c for c in record.get("claims", []) if isinstance(c, str)]
    return f"{name}: {finding}" + (f" (claims: {', '.join(claims)})" if claims else "")


def build_report(results_dir: Path, *, strict: bool = False, warn=None) -> Path | None:
    """Write ``results_dir/index.html`` from every ``results_dir/*/results.json``.

    A lab whose results were computed by other code (commit, sharp_theory or dependency
    versions) is flagged on the page; ``warn`` (given by the command line) also prints it.

    Args:
      results_dir: a folder holding ``LAB/results.json`` for one or more labs.
      strict: write nothing and return None when any lab's results come from other code.
      warn: ``warn(results_by_lab, results_dir)`` prints the provenance warnings and returns
        the labs it warned about (None: no printing).

    Returns:
      The path of the page written (atomically), or None (``strict`` and stale results).

    Raises:
      ConfigError: no results in ``results_dir``, or its ``index.html`` is not one we wrote.
    """
    results_dir = Path(results_dir)
    found = sorted(results_dir.glob("*/results.json")) if results_dir.is_dir() else []
    if not found:
        raise ConfigError("--out", str(results_dir),
                          "a folder holding LAB/results.json (run `sharp-theory reproduce LAB`)")
    target = results_dir / "index.html"
    if target.exists() and not _ours(target):
        raise ConfigError("--out", str(results_dir), f"a folder whose index.html sharp-theory "
                          f"wrote ({target} is someone else's; choose another --out)")
    from .labkit import provenance_differences, versions as current_versions

    everything = {path: read_results(path, "--out") for path in found}
    if warn is not None:
        stale = warn({path.parent.name: results for path, results in everything.items()},
                     results_dir)
        if strict and stale:
            return None
    current = current_versions(with_devices=False)
    labs, all_claims = [], []
    for path, results in everything.items():
        versions = results.get("versions", {})
        rows = claim_rows(results["claims"], results["quick"])
        labs.append({
            "name": results["lab"], "quick": results["quick"], "seeds": results.get("seeds"),
            "wall_time": format_number(results.get("wall_time_s")),
            "commit": str(versions.get("git_commit")), "jax": str(versions.get("jax")),
            "provenance": provenance_differences(results, current),
            "figures": [{"name": name, "caption": figure_caption(results, name)}
                        for name in results.get("figures", [])],
            "claims": rows})
        all_claims.extend(rows)
    page = templates().get_template("report.html.j2").render(
        labs=labs, claims=all_claims, matching=sum(row["matches"] for row in all_claims))
    write_text_atomic(target, page)
    return target


def _ours(page: Path) -> bool:
    """Whether ``page`` is a report sharp-theory wrote (this version or an earlier one)."""
    try:
        head = page.read_text(errors="replace")[:2000]
    except OSError:
        return False
    return (GENERATOR in head or _EARLIER_GENERATOR in head
            or "<title>sharp_theory report</title>" in head)
