"""An mkdocs hook (tools/site.py adds it to the generated config): the students' site reuses the
API reference pages the teacher's build rendered, instead of rendering the docstrings again.

The API pages are the same on both sites (the library's docstrings; nothing of a lab's answers).
Rendering them (mkdocstrings) is most of an mkdocs build, so the teacher's build saves each API
page's finished content (cross-references resolved) and its table of contents in
``build/api-pages/MODULE.json``, keyed by a hash of the page's source and of the library. The
students' build writes the same source; when the key matches, this hook puts the saved content
and table of contents in place of a one-line stub page (``reuse``), so mkdocstrings renders
nothing. tools/site.py writes the stub only where the saved page is current, and checks the
students' site for leaks afterwards as for every page.

The mode comes from the config's ``extra.api_pages``: ``{"mode": "save"|"reuse", "folder": ...,
"keys": {"api/MODULE.md": key}}``.
"""
from __future__ import annotations

import json
from pathlib import Path

from mkdocs.structure.toc import AnchorLink, TableOfContents


def _settings(config):
    return config["extra"].get("api_pages") or {}


def _toc_items(links) -> list[dict]:
    return [{"title": link.title, "id": link.id, "level": link.level,
             "children": _toc_items(link.children)} for link in links]


def _toc_links(items: list[dict]) -> list[AnchorLink]:
    links = []
    for item in items:
        link = AnchorLink(item["title"], item["id"], item["level"])
        link.children = _toc_links(item["children"])
        links.append(link)
    return links


def saved_page(folder: Path, src_path: str) -> Path:
    """Where the teacher's build keeps API page ``src_path`` (``api/optim.md``)."""
    return Path(folder) / (Path(src_path).stem + ".json")


def on_page_content(html, page, config, files):
    settings = _settings(config)
    key = settings.get("keys", {}).get(page.file.src_uri)
    if settings.get("mode") != "reuse" or key is None:
        return html
    saved = json.loads(saved_page(settings["folder"], page.file.src_uri).read_text())
    if saved["key"] != key:   # tools/site.py checked this; a page changed in between
        raise RuntimeError(f"{page.file.src_uri}: the saved API page is stale (rebuild the site)")
    page.toc = TableOfContents(_toc_links(saved["toc"]))
    return saved["content"]


def on_post_page(output, page, config):
    # After on_env: page.content holds the resolved cross-references.
    settings = _settings(config)
    key = settings.get("keys", {}).get(page.file.src_uri)
    if settings.get("mode") == "save" and key is not None:
        path = saved_page(settings["folder"], page.file.src_uri)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"key": key, "content": page.content,
                                    "toc": _toc_items(page.toc.items)}))
    return output
