"""The built site, opened in a real headless browser (Debian's Chromium) as a reader would:
every lab page shows its figures and its claim table, the API reference lists the public names.

Run after `make docs` (CI: `make docs-test`). Screenshots of every lab page are kept in
build/browser/ (the test's output)."""
from __future__ import annotations

import functools
import http.server
import os
import shutil
import subprocess
import sys
import tempfile
import threading
from html.parser import HTMLParser
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SITE = ROOT / "site"
SCREENSHOTS = ROOT / "build" / "browser"
sys.path.insert(0, str(ROOT))

from sharp_theory import labkit  # noqa: E402

BROWSER = os.environ.get("CHROMIUM", shutil.which("chromium") or shutil.which("chromium-browser"))
# Flags for a closed network: no background connections, no first-run pages, no GPU.
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--hide-scrollbars", "--virtual-time-budget=5000"]


@pytest.fixture(scope="module")
def server():
    if not (SITE / "index.html").is_file():
        pytest.fail("site/ is not built: run `make docs` first")
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(SITE))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    handler.log_message = lambda *args: None
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


def browse(url: str, *extra: str) -> subprocess.CompletedProcess:
    if BROWSER is None:
        pytest.fail("no Chromium: install Debian's `chromium` package (CI's .ci/run does)")
    with tempfile.TemporaryDirectory() as profile:
        return subprocess.run([BROWSER, *FLAGS, f"--user-data-dir={profile}", *extra, url],
                              capture_output=True, text=True, timeout=120)


class Rendered(HTMLParser):
    """What the browser's DOM holds: images (with their source), claim blocks, ids."""

    def __init__(self):
        super().__init__()
        self.images, self.claim_rows, self.ids, self.id_order = [], 0, set(), []
        self.claims_declared: int | None = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if attrs.get("id"):
            self.ids.add(attrs["id"])
            self.id_order.append(attrs["id"])
        if tag == "script" and attrs.get("src", "").endswith("javascripts/zoom.js"):
            self.zoom_script = True
        if attrs.get("data-claims") is not None:
            self.claims_declared = int(attrs["data-claims"])
        if tag == "img":
            self.images.append(attrs.get("src", ""))
        if tag == "div" and attrs.get("class") in ("claim ok", "claim differs"):
            self.claim_rows += 1


def built_labs() -> list[str]:
    return sorted(p.stem for p in (SITE / "labs").glob("*.html") if p.stem != "index") \
        if (SITE / "labs").is_dir() else sorted(labkit.available_labs())


@pytest.mark.parametrize("lab", built_labs())
def test_lab_page_shows_figures_and_claims(server, lab):
    page = browse(f"{server}/labs/{lab}.html", "--dump-dom")
    assert page.returncode == 0, page.stderr[-2000:]
    dom = Rendered()
    dom.feed(page.stdout)
    # The header cell says how many claims the lab judged; the rendered table shows them all.
    assert dom.claims_declared is not None, f"{lab}: no claims block on the page"
    assert dom.claim_rows == dom.claims_declared, (lab, dom.claim_rows, dom.claims_declared)
    # Figures: inline outputs of the executed notebook (data: URIs) or files next to the page.
    figures = [src for src in dom.images if src.startswith("data:image/png") or src.endswith(".png")]
    assert figures, f"{lab}: no figure rendered"
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    shot = SCREENSHOTS / f"{lab}.png"
    taken = browse(f"{server}/labs/{lab}.html", f"--screenshot={shot}", "--window-size=1280,1600")
    assert taken.returncode == 0 and shot.stat().st_size > 10_000, taken.stderr[-2000:]


def test_api_reference_lists_every_public_name(server):
    import importlib.util

    # tools/site.py by path (its name would clash with the standard library's `site`).
    spec = importlib.util.spec_from_file_location("sharp_site", ROOT / "tools" / "site.py")
    builder = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(builder)
    for module, names in builder.public_names().items():
        page = browse(f"{server}/api/{module}.html", "--dump-dom")
        dom = Rendered()
        dom.feed(page.stdout)
        missing = [n for n in names if builder.canonical_path(module, n) not in dom.ids]
        assert not missing, f"api/{module}: {missing} not in the rendered reference"
        # The names a first lab uses lead the page, in the order tools/site.py gives them.
        wanted = builder.api_page_order(module, names)
        shown = [i for i in dom.id_order if i in {builder.canonical_path(module, n) for n in names}]
        first = [builder.canonical_path(module, n) for n in wanted[:len(builder.API_FIRST.get(module, ()))]]
        assert shown[:len(first)] == first, (module, shown[:len(first)], first)


def test_lab_zero_and_the_syllabus_open_from_disk_with_search():
    """Opened as files (file://, no server): the syllabus lists Lab 0 first, Lab 0 renders its
    math and exercises, the search box is there and its index loads without a network."""
    syllabus = browse((SITE / "syllabus.html").as_uri(), "--dump-dom")
    assert syllabus.returncode == 0, syllabus.stderr[-2000:]
    assert "What SAM does" in syllabus.stdout and "two-week" in syllabus.stdout.lower()
    page = browse((SITE / "labs" / "what-sam-does.html").as_uri(), "--dump-dom")
    assert "md-search__input" in page.stdout, "no search box on a page opened from disk"
    # The offline build ships the index as a script (a worker cannot fetch JSON from file://).
    assert (SITE / "search" / "search_index.js").is_file()
    assert "Exercise 3 (coding)" in page.stdout
    dom = Rendered()
    dom.feed(page.stdout)
    assert getattr(dom, "zoom_script", False), "the click-to-zoom script is not on the lab page"
    for text in ("THEORY.md", "/tmp/", "/build/notebooks"):
        assert text not in page.stdout, text
