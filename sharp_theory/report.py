"""``sharp-theory report``: one HTML page with every lab's figures and the claim table."""
from __future__ import annotations

import html
import json
from pathlib import Path

from .errors import ConfigError
from .claims.base import format_decisive
from .labkit import format_number, read_results, verdict_matches
from .output import write_text_atomic

GENERATOR = "<meta name='generator' content='sharp-theory report'>"


def _claim_rows(claims) -> str:
    rows = []
    for c in claims:
        numbers = ", ".join(f"{k} = {format_number(v)}" for k, v in c["measured"].items())
        ok = verdict_matches(c, c.get("quick", False))
        rows.append(
            f"<tr class='{'ok' if ok else 'differs'}'><td><code>{html.escape(c['id'])}</code></td>"
            f"<td>{html.escape(c['statement'])}</td><td><b>{c['verdict']}</b>"
            f"{'' if ok else ' (expected ' + c['expected'] + ')'}</td>"
            f"<td>{html.escape(format_decisive(c) or '(none)')}</td>"
            f"<td>{html.escape(numbers)}</td></tr>")
    return "\n".join(rows)


def _caption(results: dict, name: str) -> str:
    """A figure's caption: its finding and the claims it supports (from results.json), else
    its name. Figures are shown at most 720 px (7.5 in) wide: the page width the figure lint
    sizes fonts for (``sharp_theory.plotting.PAGE_WIDTH``)."""
    record = (results.get("figure_checks") or {}).get(name) or {}
    finding = record.get("finding") if isinstance(record, dict) else None
    if not isinstance(finding, str) or not finding:
        return name
    claims = [c for c in record.get("claims", []) if isinstance(c, str)]
    return f"{name}: {finding}" + (f" (claims: {', '.join(claims)})" if claims else "")


def build_report(results_dir: Path) -> Path:
    """Write ``results_dir/index.html`` from every ``results_dir/*/results.json``."""
    results_dir = Path(results_dir)
    found = sorted(results_dir.glob("*/results.json")) if results_dir.is_dir() else []
    if not found:
        raise ConfigError("--out", str(results_dir),
                          "a folder holding LAB/results.json (run `sharp-theory reproduce LAB`)")
    sections, all_rows = [], []
    target = results_dir / "index.html"
    if target.exists() and not _ours(target):
        raise ConfigError("--out", str(results_dir), f"a folder whose index.html sharp-theory "
                          f"wrote ({target} is someone else's; choose another --out)")
    for path in found:
        results = read_results(path, "--out")
        lab = results["lab"]
        figures = "\n".join(
            f"<figure><img src='{html.escape(lab)}/{html.escape(name)}.png' alt='{html.escape(name)}'>"
            f"<figcaption>{html.escape(_caption(results, name))}</figcaption></figure>"
            for name in results.get("figures", []))
        versions = results.get("versions", {})
        sections.append(
            f"<section><h2>{html.escape(lab)}</h2><p>{'quick run' if results['quick'] else 'full run'},"
            f" {results.get('seeds')} seeds, {format_number(results.get('wall_time_s'))} s, commit "
            f"{html.escape(str(versions.get('git_commit')))}, jax {html.escape(str(versions.get('jax')))}"
            f"</p>{figures}<table><tr><th>claim</th><th>statement</th><th>verdict</th>"
            f"<th>decisive number (threshold)</th><th>measured</th></tr>{_claim_rows(dict(c, quick=results['quick']) for c in results['claims'])}"
            f"</table></section>")
        all_rows.extend(dict(c, quick=results["quick"]) for c in results["claims"])
    matching = sum(verdict_matches(c, c["quick"]) for c in all_rows)
    page = f"""<!doctype html><html><head><meta charset='utf-8'>{GENERATOR}<title>sharp_theory report</title>
<style>body{{font-family:sans-serif;max-width:1200px;margin:auto;padding:1em}}
figure{{display:inline-block;margin:.5em;max-width:720px}} img{{max-width:100%}}
table{{border-collapse:collapse;width:100%;font-size:90%}} td,th{{border:1px solid #ccc;padding:4px;vertical-align:top}}
tr.differs{{background:#fdd}} tr.ok td:nth-child(3){{color:#060}}</style></head><body>
<h1>sharp_theory report</h1><p>{matching} of {len(all_rows)} claims match their expected verdict.</p>
<table><tr><th>claim</th><th>statement</th><th>verdict</th><th>decisive number (threshold)</th><th>measured</th></tr>{_claim_rows(all_rows)}</table>
{''.join(sections)}</body></html>"""
    write_text_atomic(target, page)
    return target


def _ours(page: Path) -> bool:
    """Whether ``page`` is a report sharp-theory wrote (this version or an earlier one)."""
    try:
        head = page.read_text(errors="replace")[:2000]
    except OSError:
        return False
    return GENERATOR in head or "<title>sharp_theory report</title>" in head
