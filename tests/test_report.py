"""`sharp-theory report` renders through Jinja2 with everything escaped, offline."""
import json
import re

from sharp_theory.report import build_report

HOSTILE = '<script>alert("x")</script>'


def _results(lab: str, statement: str) -> dict:
    return {
        "lab": lab, "quick": True, "seeds": 2, "wall_time_s": 1.5,
        "versions": {"git_commit": "abc<i>", "jax": "0.10.2"},
        "measured": {"value": 1.0}, "figures": ["line"],
        "claims": [{"id": "tiny.claim", "verdict": "pass", "expected": "pass",
                    "statement": statement, "measured": {"value": 1.0}, "detail": ""}],
    }


def test_report_escapes_every_field_and_needs_no_network(tmp_path):
    (tmp_path / "tiny").mkdir()
    (tmp_path / "tiny" / "results.json").write_text(json.dumps(_results("tiny", HOSTILE)))
    page = build_report(tmp_path).read_text()
    assert "<script>" not in page and "&lt;script&gt;" in page
    assert "abc&lt;i&gt;" in page  # a commit string is escaped too
    assert "1 of 1 claims match" in page
    assert 'src="tiny/line.png"' in page
    # Offline: no remote resource of any kind.
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", page)


def test_report_counts_a_claim_that_differs(tmp_path):
    results = _results("tiny", "value below two")
    results["claims"][0]["verdict"] = "fail"
    (tmp_path / "tiny").mkdir()
    (tmp_path / "tiny" / "results.json").write_text(json.dumps(results))
    page = build_report(tmp_path).read_text()
    assert "0 of 1 claims match" in page and 'class="differs"' in page and "(expected pass)" in page


def test_an_inconclusive_claim_says_why_and_a_decided_one_does_not(tmp_path):
    results = _results("tiny", "value below two")
    results["claims"][0].update(verdict="inconclusive", detail="needs the full run: one size")
    results["claims"].append(dict(results["claims"][0], id="tiny.other", verdict="pass",
                                  detail="a decided claim's detail stays off the table"))
    (tmp_path / "tiny").mkdir()
    (tmp_path / "tiny" / "results.json").write_text(json.dumps(results))
    page = build_report(tmp_path).read_text()
    shown = page.count("needs the full run: one size")  # the report shows each table twice
    assert shown >= 1 and page.count('class="why"') == shown
    assert "stays off the table" not in page
