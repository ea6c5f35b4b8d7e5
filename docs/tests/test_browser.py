"""The built sites, opened in a real headless browser (Debian's Chromium) as a reader would:
every lab page shows its figures and its claim table, the API reference lists the public names,
math and the sliders' first frames render from disk with nothing fetched; the students' site
shows Lab 0 and the syllabus without a solution, a teacher's note or a build path.

Run after `make docs` and `make student-site` (CI: `make docs-test`). Screenshots of every lab
page are kept in build/browser/ (the test's output)."""
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
STUDENT_SITE = ROOT / "student-site"
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
    # A page opened from disk resolves its own links to file:// URLs of the site's folder (in a
    # clone under /tmp that path holds "/tmp/"): only paths outside the site are leaks.
    shown = page.stdout.replace(SITE.resolve().as_uri(), "").replace(str(SITE.resolve()), "")
    for text in ("THEORY.md", "/tmp/", "/build/notebooks"):
        assert text not in shown, text


class Reading(HTMLParser):
    """A page as read: its visible text, the MathJax output it holds, and the images that follow
    a "Try it yourself" heading (before the next section)."""

    def __init__(self):
        super().__init__()
        self.text, self.math, self.math_errors, self.slider_frames = [], 0, 0, []
        self._skip, self._heading, self._in_try = 0, None, False

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self._skip += tag in ("script", "style")
        if "MathJax" in (attrs.get("class") or "").split():   # a typeset formula
            self.math += 1
        if "MathJax_Error" in (attrs.get("class") or "").split():
            self.math_errors += 1
        if tag in ("h1", "h2"):
            self._heading = []
        if tag == "img" and self._in_try:
            self.slider_frames.append(attrs.get("src", ""))

    def handle_endtag(self, tag):
        if tag in ("script", "style") and self._skip:
            self._skip -= 1
        if tag in ("h1", "h2") and self._heading is not None:
            self._in_try = "try it yourself" in "".join(self._heading).lower()
            self._heading = None

    def handle_data(self, data):
        if self._heading is not None:
            self._heading.append(data)
        if not self._skip:
            self.text.append(data)


def read(path: Path) -> tuple[Reading, str]:
    """``path`` opened from disk (file://) in the browser: what it shows, and the DOM."""
    page = browse(path.as_uri(), "--dump-dom")
    assert page.returncode == 0, page.stderr[-2000:]
    reading = Reading()
    reading.feed(page.stdout)
    return reading, page.stdout


@pytest.mark.parametrize("site", [SITE, STUDENT_SITE], ids=["teachers", "students"])
@pytest.mark.parametrize("lab", ["edge-of-stability", "balancedness"])
def test_sliders_show_their_first_frame_from_disk(site, lab):
    if not (site / "index.html").is_file():
        pytest.fail(f"{site.name}/ is not built: run `make docs` and `make student-site`")
    page, dom = read(site / "labs" / f"{lab}.html")
    frames = [src for src in page.slider_frames if src.startswith("data:image/png")]
    assert frames, f"{lab}: no figure under 'Try it yourself'"
    # The widget's state and the loader it would fetch are not on the page.
    assert "widget-state+json" not in dom and "html-manager" not in dom and "cdn.jsdelivr" not in dom


@pytest.mark.parametrize("site", [SITE, STUDENT_SITE], ids=["teachers", "students"])
@pytest.mark.parametrize("page", ["labs/what-sam-does.html", "labs/sam-adversarial.html",
                                  "students.html"])
def test_math_renders_from_disk(site, page):
    """MathJax (the local copy) typesets notebook and markdown math on a page opened as a file."""
    if not (site / "index.html").is_file():
        pytest.fail(f"{site.name}/ is not built: run `make docs` and `make student-site`")
    reading, dom = read(site / page)
    if reading.math_errors:   # once more: a browser starved of CPU can time MathJax out
        reading, dom = read(site / page)
    assert reading.math > 0 and reading.math_errors == 0, (page, reading.math, reading.math_errors)
    assert 'src="https://cdnjs' not in dom and "mathjax/MathJax.js" in dom


STUDENT_PAGES = ["index.html", "syllabus.html", "students.html", "labs/index.html",
                 "labs/what-sam-does.html", "labs/edge-of-stability.html",
                 "labs/balancedness.html", "api/optim.html"]


@pytest.mark.parametrize("page", STUDENT_PAGES)
def test_student_site_shows_no_answer(page):
    """The students' site, opened from disk: no solution line, no "SOLUTION", no raw role, no
    THEORY.md, no build path; the answers of Lab 0 are blanks; Lab 0 and the syllabus show."""
    if not (STUDENT_SITE / "index.html").is_file():
        pytest.fail("student-site/ is not built: run `make student-site`")
    reading, dom = read(STUDENT_SITE / page)
    text = " ".join("".join(reading.text).split())
    for leak in ("SOLUTION", ":func:", "THEORY.md", "/build/", "/tmp/", str(ROOT),
                 "Teacher's note"):
        assert leak not in text, f"{page} shows {leak!r}"
        assert leak not in dom.replace(STUDENT_SITE.as_uri(), ""), f"{page} holds {leak!r}"
    assert "md-search__input" in dom, f"{page}: no search box on a page opened from disk"
    assert not (STUDENT_SITE / "teachers.html").exists()
    if page == "syllabus.html":
        assert "What SAM does" in text
    if page == "labs/what-sam-does.html":
        assert "predicted_two_cycle_radius = ..." in text
        assert "predicted_two_cycle_radius = 0.15" not in text
        # The verdicts come after the last prediction prompt, at the end of the page (the
        # heading's earlier mentions are the table of contents).
        assert text.rfind("Predict, then run") < text.rfind("The claims, measured")
        assert "data-claims" in dom[dom.rfind("The claims, measured"):]


class SearchResults(HTMLParser):
    """The search box's answer in the DOM: the count line and the links of the hits."""

    def __init__(self):
        super().__init__()
        self.meta, self.hits, self.scripts, self._in_meta = "", [], [], False

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        classes = (attrs.get("class") or "").split()
        self._in_meta = "md-search-result__meta" in classes
        if tag == "a" and "offline-search-hit" in classes:
            self.hits.append(attrs.get("href", ""))
        if tag == "script" and attrs.get("src"):
            self.scripts.append(attrs["src"])

    def handle_data(self, data):
        if self._in_meta:
            self.meta += data

    def handle_endtag(self, tag):
        self._in_meta = False


@pytest.mark.parametrize("site", [SITE, STUDENT_SITE], ids=["teachers", "students"])
def test_search_answers_from_disk(site):
    """A page opened as a file (file://) answers a query typed into the search box (``?q=``
    types it) from search/search_index.js: the hits link, relative to the page, to the pages
    that hold the words; nothing is loaded from the network (the theme's iframe-worker shim
    included)."""
    if not (site / "index.html").is_file():
        pytest.fail(f"{site.name}/ is not built: run `make docs` and `make student-site`")
    page = site / "labs" / "what-sam-does.html"
    for query, wanted in (("edge of stability", "labs/edge-of-stability.html"),
                          ("balancedness", "labs/balancedness.html")):
        shown = browse(f"{page.as_uri()}?q={query.replace(' ', '%20')}", "--dump-dom")
        assert shown.returncode == 0, shown.stderr[-2000:]
        results = SearchResults()
        results.feed(shown.stdout)
        assert "matching document" in results.meta and results.hits, (query, results.meta)
        targets = [(page.parent / href.split("#")[0]).resolve() for href in results.hits]
        assert all(target.is_file() for target in targets), (query, results.hits)
        assert (site / wanted).resolve() in targets, (query, results.hits)
        assert not [src for src in results.scripts if src.startswith(("http:", "https:", "//"))], \
            results.scripts
    nothing = browse(f"{page.as_uri()}?q=qqzzxxnotaword", "--dump-dom")
    results = SearchResults()
    results.feed(nothing.stdout)
    assert results.meta.strip() == "No matching documents" and not results.hits, results.meta
