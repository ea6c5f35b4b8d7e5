"""Build the documentation site (``make docs``) and the students' notebooks (``make student``).

    python tools/site.py build [--jobs 2] [--no-execute]   # site/ (static, works offline)
    python tools/site.py check                             # links, figures, API names in site/
    python tools/site.py student [--out build/student]     # one otter-grader assignment per lab

``build`` executes every lab as a notebook at quick sizes (the same way a reader's Jupyter would:
jupytext reads the percent-format script, nbclient runs it in a kernel), keeps the executed
notebook in ``build/notebooks/`` keyed by a hash of the lab and of the library's source (so an
unchanged lab is not run twice; ``SHARP_THEORY_SITE_CACHE`` moves that cache, and the test suite
fills it when it runs the labs as notebooks), then writes the pages into ``build/site-src/`` and
runs ``mkdocs build --strict`` into ``site/``. A lab whose full results are in ``results/LAB/``
(``make demo``) shows the full run's claim table and figures above its quick notebook.

A lab opts into the classroom by two tagged cells per prediction::

    # %% [markdown] tags=["predict"]
    # **Predict, then run.** Will SAM drive the imbalance to 0? ...

    # %% tags=["prediction"]
    predict_sam_balances = True  # SOLUTION

``student`` turns each such pair into an otter-grader question (the answer line is blanked in the
student's copy; a public test checks the answer is a bool, a hidden one checks it), and the lab's
``st.labkit.compare_predictions`` cell later confirms or contradicts the prediction with the
claim's measured verdict.

Exercises (numeric predictions, derivations, coding tasks) are a cell tagged ``exercise`` holding
the answer (``name = value  # SOLUTION`` lines, or a function whose body sits between
``# BEGIN SOLUTION`` / ``# END SOLUTION``), followed by a cell tagged ``exercise-check`` that
checks it against the lab's own measurements or the library (``st.labkit.check_number``,
``check_expression``, ``check_function``). The lab runs both, so the site build proves every key
right at the sizes students run; ``student`` makes the check the question's hidden test and adds a
public one that says what it checks (that an answer was given). A cell tagged ``teacher-note``
(the notes to an open question) appears in neither the students' notebook nor the students'
site. Each assignment's ``dist/autograder/`` holds ``autograder.zip``, whose
``requirements.txt`` installs sharp_theory (the wheel in the zip) and the locked JAX, numpy,
scipy, sympy and matplotlib.
"""
from __future__ import annotations

import argparse
import ast
import concurrent.futures
import hashlib
import html
import json
import os
import re
import shutil
import subprocess
import sys
import time
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

ROOT = Path(__file__).resolve().parent.parent
BUILD = ROOT / "build"
SOURCE = BUILD / "site-src"          # mkdocs' docs_dir: generated, never edited by hand
SITE = ROOT / "site"
RESULTS = ROOT / "results"           # full results from `make demo` / `sharp-theory reproduce`
DOCS = ROOT / "docs"                 # hand-written pages (index, teachers, API stubs) and images
PAPERS = ROOT / "papers"
# Modules of the API reference: one page each, every public name listed by mkdocstrings.
API_MODULES = ("problems", "optim", "dynamics", "observables", "measure", "theory", "studies",
               "testing", "claims")
# The labs in teaching order (docs/syllabus.md explains it); a lab not listed comes last.
COURSE_ORDER = ("what-sam-does", "edge-of-stability", "balancedness", "sharpness-dynamics",
                "flows", "landscape", "diagonal-nets", "matrix-sensing", "sam-family",
                "fuzz-a-bound", "benign-overfitting", "spurious-sharpness", "sam-adversarial",
                "forgetting")


def in_course_order(names) -> list[str]:
    """Lab names sorted by :data:`COURSE_ORDER` (unlisted labs last, alphabetically)."""
    return sorted(names, key=lambda n: (COURSE_ORDER.index(n) if n in COURSE_ORDER
                                        else len(COURSE_ORDER), n))


def notebook_cache() -> Path:
    return Path(os.environ.get("SHARP_THEORY_SITE_CACHE", BUILD / "notebooks")).resolve()


# --- executing labs ----------------------------------------------------------------------------

def source_key(lab_script: Path) -> str:
    """A hash of everything an executed lab notebook depends on: the lab script, the library's
    source and the Python version (a change in any of them re-executes)."""
    digest = hashlib.sha256()
    files = [lab_script, *sorted((ROOT / "sharp_theory").rglob("*.py"))]
    for path in files:
        digest.update(str(path.relative_to(ROOT)).encode())
        digest.update(path.read_bytes())
    digest.update(sys.version.encode())
    return digest.hexdigest()[:20]


def execute_lab(name: str, script: Path, cache: Path | None = None) -> Path:
    """Run lab ``name`` as a notebook at quick sizes, unless an up-to-date run is cached.

    Args:
      name: the lab's name (``balancedness``).
      script: its percent-format script.
      cache: the folder holding executed labs (default: ``notebook_cache()``).

    Returns:
      The lab's folder in the cache: ``LAB.ipynb`` (executed, outputs inline), ``out/`` (its
      results.json and figures) and ``key`` (the source hash it was run from).

    Raises:
      nbclient.exceptions.CellExecutionError: a cell failed (the message names the cell).
    """
    import jupytext
    from nbclient import NotebookClient

    folder = (cache or notebook_cache()) / name
    key = source_key(script)
    if (folder / "key").is_file() and (folder / "key").read_text() == key \
            and (folder / "out" / "results.json").is_file():
        return folder
    work = folder.with_name(f".{name}.running-{os.getpid()}")
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    notebook = jupytext.read(script)
    env = dict(os.environ, SHARP_THEORY_QUICK="1", SHARP_THEORY_OUT=str(work / "out"),
               MPLBACKEND="module://matplotlib_inline.backend_inline",
               # The kernel imports this checkout's sharp_theory, whatever is installed.
               PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    started = time.time()
    client = NotebookClient(notebook, timeout=900, kernel_name="python3",
                            resources={"metadata": {"path": str(work)}})
    try:
        client.execute(env=env)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    notebook.metadata["sharp_theory"] = {"executed_s": round(time.time() - started, 1)}
    import nbformat
    nbformat.write(notebook, work / f"{name}.ipynb")
    (work / "key").write_text(key)
    shutil.rmtree(folder, ignore_errors=True)
    os.replace(work, folder)       # a half-run lab never looks cached
    return folder


def executed_seconds(folder: Path, name: str):
    """The wall time (s) of the run that produced ``folder/LAB.ipynb``, or "?" if unrecorded."""
    notebook = json.loads((folder / f"{name}.ipynb").read_text())
    return notebook["metadata"].get("sharp_theory", {}).get("executed_s", "?")


def execute_labs(labs: dict[str, Path], jobs: int) -> dict[str, Path]:
    """Execute (or reuse) every lab, ``jobs`` kernels at a time; one line per lab."""
    done: dict[str, Path] = {}
    failures = []
    with concurrent.futures.ThreadPoolExecutor(max_workers=jobs) as pool:
        futures = {pool.submit(execute_lab, name, path): name for name, path in labs.items()}
        for future in concurrent.futures.as_completed(futures):
            name = futures[future]
            try:
                done[name] = future.result()
            except Exception as error:  # report every failing lab, then stop
                failures.append(f"{name}: {type(error).__name__}: {str(error)[-2000:]}")
                continue
            print(f"site: {name} executed ({executed_seconds(done[name], name)} s, quick sizes)",
                  flush=True)
    if failures:
        raise SystemExit("site: a lab failed to run as a notebook:\n" + "\n".join(failures))
    return done


# --- pages -------------------------------------------------------------------------------------

def card_for(paper: str) -> str | None:
    """The paper card (file name under papers/) of a paper key, if there is one."""
    matches = sorted(PAPERS.glob(f"{paper}-*.md")) + sorted(PAPERS.glob(f"{paper}.md"))
    return matches[0].name if matches else None


def lab_header(name: str, results: dict, source: str, full_figures: list[str]) -> str:
    """The markdown cell put under a lab's title: command, cards, claim table, full figures."""
    from sharp_theory.report import claim_rows, figure_caption, templates

    papers = sorted({claim["id"].split(".")[0] for claim in results["claims"]})
    cards = [(paper, card_for(paper)) for paper in papers]
    links = ", ".join(f'<a href="../papers/{html.escape(card[:-3])}.html">{html.escape(paper)}</a>'
                      for paper, card in cards if card)
    table = templates().get_template("claims.html.j2").module.claim_list(
        claim_rows(results["claims"], results["quick"]))
    size = ("quick sizes (<code>--quick</code>): too small to judge shows as inconclusive; "
            "<code>make demo</code> or the command above gives the full run"
            if results["quick"] else f"the full run in <code>results/{html.escape(name)}/</code>")
    gallery = "".join(
        f'<figure><img src="{html.escape(name)}/{html.escape(figure)}.png" alt="{html.escape(figure)}">'
        f"<figcaption>{html.escape(figure_caption(results, figure))} (full run)</figcaption></figure>"
        for figure in full_figures)
    return (f"**Reproduce:** `sharp-theory reproduce {name}` (add `--quick` for small sizes) · "
            f"**Paper card{'s' if len(cards) > 1 else ''}:** {links or '(none)'} · "
            f"**Source:** `labs/{source}`\n\n"
            f"<div class=\"claims-block\" data-claims=\"{len(results['claims'])}\" markdown=\"0\">"
            + (f"<p><b>Claims</b>, judged on {size}:</p>{table}" if results["claims"] else
               "<p>This lab registers no claims: its verdicts are the ones it prints below.</p>")
            + f"</div>\n\n{gallery}")


def write_lab_page(name: str, executed: Path, script: Path) -> dict:
    """``labs/LAB.ipynb`` (executed, with the header cell) and ``labs/LAB/`` (its figures)."""
    import nbformat

    notebook = nbformat.read(executed / f"{name}.ipynb", as_version=4)
    results = json.loads((executed / "out" / "results.json").read_text())
    for cell in notebook.cells:
        if cell.cell_type == "code":  # an empty list (savefig's lint: no problem) says nothing
            cell.outputs = [out for out in cell.outputs if not (
                out.get("output_type") == "execute_result"
                and out.get("data", {}).get("text/plain", "").strip() in ("[]", "None"))]
    figures_dir = SOURCE / "labs" / name
    figures_dir.mkdir(parents=True, exist_ok=True)
    full_figures: list[str] = []
    full = RESULTS / name / "results.json"
    if full.is_file():
        stored = json.loads(full.read_text())
        if not stored.get("quick", True):
            results = stored
            for figure in stored.get("figures", []):
                png = RESULTS / name / f"{figure}.png"
                if png.is_file():
                    shutil.copy2(png, figures_dir / png.name)
                    full_figures.append(figure)
    header = nbformat.v4.new_markdown_cell(lab_header(name, results, script.name, full_figures))
    notebook.cells.insert(1, header)
    nbformat.write(notebook, SOURCE / "labs" / f"{name}.ipynb")
    return results


GUIDES = DOCS / "guides"


def execute_guide(script: Path, folder: Path) -> Path:
    """Run a guide (``docs/guides/NAME.py``, percent format) as a notebook at quick sizes
    (``SHARP_THEORY_GUIDE_QUICK=1``) in ``folder``; returns the executed ``NAME.ipynb``.

    Raises:
      nbclient.exceptions.CellExecutionError: a cell failed (the message names the cell).
    """
    import jupytext
    import nbformat
    from nbclient import NotebookClient

    folder.mkdir(parents=True, exist_ok=True)
    notebook = jupytext.read(script)
    env = dict(os.environ, SHARP_THEORY_GUIDE_QUICK="1",
               MPLBACKEND="module://matplotlib_inline.backend_inline",
               PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    NotebookClient(notebook, timeout=900, kernel_name="python3",
                   resources={"metadata": {"path": str(folder)}}).execute(env=env)
    path = folder / f"{script.stem}.ipynb"
    nbformat.write(notebook, path)
    return path


def write_guide_pages() -> list[str]:
    """Every guide executed into ``guides/`` of the site source; returns their page paths."""
    pages = []
    for script in sorted(GUIDES.glob("*.py")):
        executed = execute_guide(script, BUILD / "guides")
        (SOURCE / "guides").mkdir(exist_ok=True)
        shutil.copyfile(executed, SOURCE / "guides" / executed.name)
        pages.append(f"guides/{executed.name}")
    return pages


def write_pages(executed: dict[str, Path], labs: dict[str, Path]) -> None:
    from sharp_theory import labkit

    shutil.rmtree(SOURCE, ignore_errors=True)
    shutil.copytree(DOCS, SOURCE, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    shutil.copytree(PAPERS, SOURCE / "papers")
    (SOURCE / "labs").mkdir(exist_ok=True)
    rows = []
    for number, name in enumerate(in_course_order(executed)):
        results = write_lab_page(name, executed[name], labs[name])
        claims = results["claims"]
        same = sum(c["verdict"] == c["expected"] for c in claims)
        undecided = sum(c["verdict"] == "inconclusive" and c["expected"] != "inconclusive"
                        for c in claims)
        seconds = executed_seconds(executed[name], name)
        rows.append(f"| {number} | [{labkit.lab_title(labs[name])}]({name}.ipynb) | `{name}` | "
                    f"{same} as expected, {undecided} inconclusive, "
                    f"{len(claims) - same - undecided} differ "
                    f"({'quick' if results['quick'] else 'full'} run) | {seconds} |")
    (SOURCE / "labs" / "index.md").write_text(
        "# Labs\n\nEach lab is a notebook: the page shows it executed, with its figures and the "
        "verdict of every claim it checks. Open the same file in Jupyter (`jupytext` opens "
        "`labs/*.py` as notebooks) or run it with `sharp-theory reproduce LAB`. They are listed "
        "in teaching order; the [syllabus](../syllabus.md) gives each one's prerequisites, time "
        "and goals.\n\n"
        "| # | lab | name | claims | quick run as a notebook (s) |\n|---|---|---|---|---|\n"
        + "\n".join(rows) + "\n\nA quick run may leave a claim *inconclusive* (too small to "
        "judge, never contradicting its expectation); it is counted apart from the claims it "
        "decided. The last column is the wall time of the quick run this site was built from (on "
        "the machine that built it, with two labs running at a time).\n")
    cards = sorted(PAPERS.glob("*.md"))
    (SOURCE / "papers" / "index.md").write_text(
        "# Paper cards\n\nOne card per paper: the setting, the claims we check, our numbers, and "
        "where our simulation disagrees.\n\n" + "\n".join(
            f"- [{card.read_text().splitlines()[0].lstrip('# ').strip()}]({card.name})"
            for card in cards) + "\n")
    api = SOURCE / "api"
    api.mkdir(exist_ok=True)
    for module, names in public_names().items():
        entries = [f"# `sharp_theory.{module}`\n", f"::: sharp_theory.{module}",
                   "    options:\n      members: false\n      show_root_heading: false\n"]
        leading = [name for name in API_FIRST.get(module, ()) if name in names]
        if leading:
            entries.append("The names a first lab uses come first (" + ", ".join(
                f"`{name}`" for name in leading) + "); the others follow in alphabetical "
                "order.\n")
        for name in api_page_order(module, names):
            entries += [f"::: {canonical_path(module, name)}",
                        "    options:\n      show_root_heading: true\n"
                        "      show_root_full_path: false\n      heading_level: 2\n"]
        (api / f"{module}.md").write_text("\n".join(entries))


def site_config(labs: dict[str, Path]) -> Path:
    """``build/mkdocs.yml``: the repository's mkdocs.yml with one nav entry per lab."""
    import yaml

    from sharp_theory import labkit

    config = yaml.safe_load((ROOT / "mkdocs.yml").read_text())
    config["docs_dir"], config["site_dir"] = str(SOURCE), str(SITE)
    for plugin in config["plugins"]:
        if isinstance(plugin, dict) and "mkdocstrings" in plugin:
            plugin["mkdocstrings"]["handlers"]["python"]["paths"] = [str(ROOT)]
    entries = [{labkit.lab_title(labs[name]): f"labs/{name}.ipynb"} for name in in_course_order(labs)]
    for section in config["nav"]:
        if isinstance(section, dict) and "Labs" in section:
            section["Labs"] = ["labs/index.md", *entries]
    guides = [{labkit.lab_title(script): f"guides/{script.stem}.ipynb"}
              for script in sorted(GUIDES.glob("*.py"))]
    if guides:
        config["nav"].insert(2, {"Guides": guides})
    for plugin in config["plugins"]:
        if isinstance(plugin, dict) and "mkdocs-jupyter" in plugin:
            plugin["mkdocs-jupyter"]["include"] = ["labs/*.ipynb", "guides/*.ipynb"]
    path = BUILD / "mkdocs.yml"
    path.write_text(yaml.safe_dump(config, sort_keys=False, allow_unicode=True))
    return path


def mkdocs_build(labs: dict[str, Path]) -> None:
    started = time.time()
    subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--quiet",
                    "--config-file", str(site_config(labs))], check=True, cwd=ROOT,
                   env=dict(os.environ, NO_MKDOCS_2_WARNING="1"))
    link_roles(SITE)
    print(f"site: mkdocs built {SITE} in {time.time() - started:.0f} s")


ROLE = re.compile(r":(?:func|class|meth|mod|attr|data|obj|exc):(<code>([^<]+)</code>)")


def link_roles(site: Path) -> int:
    """Turn the Sphinx roles our docstrings use (``:func:`gd```, rendered as ``:func:<code>gd
    </code>``) into links to the documented name on the API pages (or plain code when the
    name is not documented there). Returns the number of roles rewritten."""
    found = []
    for page in sorted((site / "api").glob("*.html")):
        parser = _Links()
        parser.feed(page.read_text(errors="replace"))
        found += [(anchor, page.name) for anchor in parser.ids if anchor.startswith("sharp_theory.")]
    anchors: dict[str, str] = {}
    # Shallow names first: `base` is the module sharp_theory.optim.base before it is some
    # class's attribute; a short name only stands for a module-level name.
    for anchor, page_name in sorted(found, key=lambda item: (item[0].count("."), item[0])):
        names = [anchor, anchor.split(".", 1)[1]]
        if anchor.count(".") <= 3:
            names.append(anchor.rsplit(".", 1)[-1])
        for name in names:
            anchors.setdefault(name, f"{page_name}#{anchor}")
    rewritten = 0
    for page in sorted(site.rglob("*.html")):
        text = page.read_text(errors="replace")
        if ":<code>" not in text:
            continue
        prefix = "../" * (len(page.relative_to(site).parts) - 1) + "api/"

        def link(match):
            name = match.group(2).strip("~").rstrip("()")
            target = anchors.get(name) or anchors.get(name.rsplit(".", 1)[-1])
            return f'<a href="{prefix}{target}">{match.group(1)}</a>' if target else match.group(1)

        new, count = ROLE.subn(link, text)
        if count:
            page.write_text(new)
            rewritten += count
    return rewritten


# --- checks on the built site ------------------------------------------------------------------

class _Links(HTMLParser):
    def __init__(self):
        super().__init__()
        self.links: list[tuple[str, str]] = []   # (tag, url)
        self.ids: set[str] = set()

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if attrs.get("id"):
            self.ids.add(attrs["id"])
        for attribute in ("href", "src"):
            if attrs.get(attribute):
                self.links.append((tag, attrs[attribute]))


def check_site(site: Path = SITE, labs=None) -> list[str]:
    """Problems in a built site: a local link or image that points nowhere, a lab page without
    its figures or claim table, a public name missing from the API reference.

    Returns:
      One line per problem (empty when the site is sound).
    """
    from sharp_theory import labkit

    problems: list[str] = []
    pages = sorted(site.rglob("*.html"))
    if not pages:
        return [f"{site}: no pages (run `make docs`)"]
    for page in pages:
        parser = _Links()
        parser.feed(page.read_text(errors="replace"))
        for tag, url in parser.links:
            parts = urlsplit(url)
            if parts.scheme in ("http", "https", "mailto", "data", "javascript") or url.startswith("//"):
                continue
            if not parts.path:
                continue
            # Root-absolute links (only the 404 page has them) are relative to the site's root.
            base = site if parts.path.startswith("/") else page.parent
            target = (base / unquote(parts.path).lstrip("/")).resolve()
            if target.is_dir():
                target = target / "index.html"
            if not target.exists():
                problems.append(f"{page.relative_to(site)}: broken {tag} link {url}")
    for page in pages:
        if ROLE.search(page.read_text(errors="replace")):
            problems.append(f"{page.relative_to(site)}: a raw Sphinx role (:func:...) is shown")
    for name in (labs if labs is not None else labkit.available_labs()):
        page = site / "labs" / f"{name}.html"
        if not page.is_file():
            problems.append(f"labs/{name}.html: missing (lab {name} has no page)")
            continue
        text = page.read_text(errors="replace")
        claims = re.search(r'data-claims="(\d+)"', text)
        if claims is None:
            problems.append(f"labs/{name}.html: no claims block")
        elif text.count('<div class="claim ok"') + text.count('<div class="claim differs"') \
                != int(claims.group(1)):
            problems.append(f"labs/{name}.html: the claim table does not show its "
                            f"{claims.group(1)} claims")
        if text.count("<img") < 1:
            problems.append(f"labs/{name}.html: no figure")
        for leak in ("THEORY.md", "/build/notebooks"):
            if leak in text:
                problems.append(f"labs/{name}.html: mentions {leak}")
        if "Traceback (most recent call last)" in text or 'class="ansi-red' in text and "Error" in text:
            problems.append(f"labs/{name}.html: a cell error is shown")
    problems.extend(missing_api_names(site))
    return problems


# The names a first lab uses lead their API page (a student looking for sam() should not scroll
# past every helper of the optimizer contract); every other public name follows alphabetically.
API_FIRST = {
    "problems": ("op_toy", "nop_toy", "scalar_product", "outer_product", "lora", "diagonal_linear",
                 "matrix_sensing", "conv_relu_signal_noise", "softmax_bigram", "from_loss",
                 "from_model", "Problem"),
    "optim": ("gd", "sgd", "sam", "usam", "nbar", "obar", "asam", "looksam", "ssam", "gsam",
              "CONSTRUCTORS"),
    "dynamics": ("run", "sweep", "flow", "Trajectory", "SweepResult"),
    "observables": ("loss", "lambda_max", "hessian_trace", "param_norm", "grad_norm", "of_params",
                    "of_params_and_problem"),
    "measure": ("balancedness", "lambda_max", "hessian_trace", "hessian", "top_hessian_eigenpairs",
                "full_batch_loss"),
    "testing": ("claim", "fuzz"),
}


def api_page_order(module: str, names: list[str]) -> list[str]:
    """``names`` with the module's :data:`API_FIRST` names first (in that order), then the rest
    alphabetically."""
    first = [name for name in API_FIRST.get(module, ()) if name in names]
    return first + sorted(name for name in names if name not in first)


def public_names() -> dict[str, list[str]]:
    """Every public name of the documented modules (their ``__all__``)."""
    import importlib

    names = {}
    for module in API_MODULES:
        imported = importlib.import_module(f"sharp_theory.{module}")
        names[module] = sorted(n for n in getattr(imported, "__all__", []) if not n.startswith("_"))
    return names


def canonical_path(module: str, name: str) -> str:
    """Where public name ``sharp_theory.MODULE.NAME`` is defined (what mkdocstrings renders,
    and the id its heading gets): ``sharp_theory.testing.claim`` is
    ``sharp_theory.testing.decorator.claim``; a submodule is its own path."""
    import importlib
    import inspect
    import pkgutil

    package = importlib.import_module(f"sharp_theory.{module}")
    value = getattr(package, name)
    if inspect.ismodule(value):
        return value.__name__
    if (inspect.isclass(value) or inspect.isfunction(value)) \
            and getattr(value, "__module__", "").startswith("sharp_theory"):
        return f"{value.__module__}.{value.__qualname__}"
    # A constant (a dict, a tuple): the submodule whose source assigns it.
    candidates = [package.__name__]
    if hasattr(package, "__path__"):
        candidates += [f"{package.__name__}.{info.name}"
                       for info in pkgutil.iter_modules(package.__path__)]
    for candidate in candidates:
        source = inspect.getsource(importlib.import_module(candidate))
        if re.search(rf"^{re.escape(name)}\s*(:[^=]+)?=", source, re.MULTILINE):
            return f"{candidate}.{name}"
    return f"{package.__name__}.{name}"


def missing_api_names(site: Path = SITE) -> list[str]:
    """Public names the API reference pages do not document (mkdocstrings gives each an id)."""
    problems = []
    for module, names in public_names().items():
        page = site / "api" / f"{module}.html"
        if not page.is_file():
            problems.append(f"api/{module}.html: missing")
            continue
        parser = _Links()
        parser.feed(page.read_text(errors="replace"))
        for name in names:
            if canonical_path(module, name) not in parser.ids:
                problems.append(f"api/{module}.html: public name sharp_theory.{module}.{name} "
                                "is not documented")
    return problems


# --- student versions --------------------------------------------------------------------------

ASSIGNMENT_CONFIG = """# ASSIGNMENT CONFIG
name: {name}
init_cell: true
export_cell: false
check_all_cell: false
run_tests: false
generate:
  pdf: false
  filtering: false
  pagebreaks: false
solutions_pdf: false
requirements: requirements.txt
overwrite_requirements: true
files:
  - {wheel}
tests:
  files: true
"""
# What the grader's environment needs besides otter itself: the locked versions of these.
GRADER_PACKAGES = ("jax", "jaxlib", "numpy", "scipy", "sympy", "matplotlib", "optax", "tqdm",
                   "jupytext", "hypothesis", "jinja2", "ml-dtypes", "opt-einsum")
PUBLIC_MESSAGE = ("this public check only says that you answered; whether the answer is right "
                  "is graded when you submit")


def grader_requirements(wheel: str) -> str:
    """requirements.txt of an autograder: the sharp_theory wheel and the locked dependencies."""
    locked = {}
    for line in (ROOT / "requirements.lock").read_text().splitlines():
        line = line.split("#")[0].strip()
        if "==" in line:
            name, version = line.split("==", 1)
            locked[name.strip().lower()] = version.strip()
    pins = [f"{name}=={locked[name]}" for name in GRADER_PACKAGES if name in locked]
    return "\n".join([f"./{wheel}"] + pins) + "\n"


def predictions(notebook) -> list[tuple[int, str, object]]:
    """The lab's predictions: (index of the ``prediction`` cell, variable, expected answer)."""
    found = []
    for index, cell in enumerate(notebook.cells):
        if cell.cell_type != "code" or "prediction" not in cell.metadata.get("tags", []):
            continue
        tree = ast.parse(cell.source)
        assigns = [node for node in tree.body if isinstance(node, ast.Assign)]
        if len(assigns) != 1 or "# SOLUTION" not in cell.source:
            raise SystemExit(f"student: a prediction cell holds one `name = answer  # SOLUTION` "
                             f"line, not:\n{cell.source}")
        target = assigns[0].targets[0].id
        found.append((index, target, ast.literal_eval(assigns[0].value)))
    return found


def _defined_names(source: str) -> list[str]:
    """Names an exercise cell defines (assignments and functions), in order."""
    names = []
    for node in ast.parse(source).body:
        if isinstance(node, ast.Assign):
            names += [target.id for target in node.targets if isinstance(target, ast.Name)]
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            names.append(node.name)
    return names


def _test_cell(code: str, *, hidden: bool, message: str, success: str | None = None):
    import nbformat

    # The public check (an answer was given) is worth nothing; the hidden one all the points.
    config = [f"hidden: {'true' if hidden else 'false'}", f"points: {1 if hidden else 0}",
              f"failure_message: {json.dumps(message)}"]
    if success:
        config.append(f"success_message: {json.dumps(success)}")
    return nbformat.v4.new_code_cell('""" # BEGIN TEST CONFIG\n' + "\n".join(config)
                                     + '\n""" # END TEST CONFIG\n' + code)


def teacher_notebook(name: str, script: Path):
    """The lab as an otter-grader master notebook: each predict/prediction pair and each
    exercise/exercise-check pair a question; teacher notes left out."""
    import jupytext
    import nbformat

    notebook = jupytext.read(script)
    notebook.metadata.setdefault("kernelspec", {"name": "python3", "display_name": "Python 3",
                                                "language": "python"})
    notebook.metadata.setdefault("language_info", {"name": "python"})
    raw = nbformat.v4.new_raw_cell
    questions = {index: (variable, answer) for index, variable, answer in predictions(notebook)}
    wheel = f"sharp_theory-{_version()}-py3-none-any.whl"
    cells = [raw(ASSIGNMENT_CONFIG.format(name=name, wheel=wheel)),
             # Students run the quick sizes: a lab finishes in about a minute on a laptop.
             nbformat.v4.new_code_cell('import os\nos.environ.setdefault("SHARP_THEORY_QUICK", "1")')]
    consumed: dict[int, str] = {}
    for index, cell in enumerate(notebook.cells):
        tags = cell.metadata.get("tags", [])
        if index in consumed:
            # Where the lab checks the answer, the students check theirs (see grade_at_the_end).
            marker = nbformat.v4.new_markdown_cell(f"**Check your answer** (`{consumed[index]}`):")
            marker.metadata["tags"] = [f"check-here:{consumed[index]}"]
            cells.append(marker)
            continue
        if "teacher-note" in tags:
            continue
        if index in questions:
            variable, answer = questions[index]
            prompt = cells.pop() if cells[-1].cell_type == "markdown" else None
            cells.append(raw(f"# BEGIN QUESTION\nname: {variable}\npoints: 1"))
            if prompt is not None:
                cells.append(prompt)
            cells += [raw("# BEGIN SOLUTION"), cell, raw("# END SOLUTION"), raw("# BEGIN TESTS"),
                      _test_cell(f"assert isinstance({variable}, {type(answer).__name__})",
                                 hidden=False, message=f"set {variable} to True or False",
                                 success=PUBLIC_MESSAGE),
                      _test_cell(_graded_check(
                          f"assert {variable} == {answer!r}, 'the measurements say otherwise: "
                          "see the claim table at the end of the lab'"), hidden=True,
                          message="the measurements say otherwise: see the claim table at the "
                                  "end of the lab"),
                      raw("# END TESTS"), raw("# END QUESTION")]
        elif "exercise" in tags:
            names = _defined_names(cell.source)
            checks = [j for j in range(index + 1, len(notebook.cells))
                      if "exercise-check" in notebook.cells[j].metadata.get("tags", [])][:1]
            if not names or not checks or "SOLUTION" not in cell.source:
                raise SystemExit(f"student: {name}: an exercise cell defines its answer with a "
                                 f"# SOLUTION line and is followed by an exercise-check cell:\n"
                                 f"{cell.source}")
            variable = names[0]
            consumed[checks[0]] = variable
            prompt = cells.pop() if cells[-1].cell_type == "markdown" else None
            cells.append(raw(f"# BEGIN QUESTION\nname: {variable}\npoints: 1"))
            if prompt is not None:
                cells.append(prompt)
            check = _graded_check(notebook.cells[checks[0]].source)
            cells += [raw("# BEGIN SOLUTION"), cell, raw("# END SOLUTION"), raw("# BEGIN TESTS"),
                      _test_cell(f"assert {variable} is not ..., 'replace ... with your answer'",
                                 hidden=False, message=f"{variable}: replace ... with your answer",
                                 success=PUBLIC_MESSAGE),
                      _test_cell(check, hidden=True,
                                 message=f"{variable} does not match what the lab measures"),
                      raw("# END TESTS"), raw("# END QUESTION")]
        elif "exercise-check" in tags:
            raise SystemExit(f"student: {name}: an exercise-check cell without its exercise")
        else:
            cells.append(cell)
    notebook.cells = cells
    return notebook


def _graded_check(source: str) -> str:
    """An exercise-check cell as a hidden test: run inside ``st.labkit.feedback``, so the grader
    shows the check's one sentence when it fails and nothing when it passes."""
    body = "\n".join("    " + line if line.strip() else "" for line in source.splitlines())
    return (f"def _exercise_check():\n{body}\n\n\nimport sharp_theory as _sharp_theory\n"
            "_sharp_theory.labkit.feedback(_exercise_check)")


def _version() -> str:
    sys.path.insert(0, str(ROOT))
    from sharp_theory.version import __version__

    return __version__


def _build_wheel(folder: Path) -> Path:
    """The sharp_theory wheel (pure Python) into ``folder``, for the autograder's environment."""
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                    "--quiet", "-w", str(folder), str(ROOT)], check=True,
                   stdout=subprocess.DEVNULL)
    [wheel] = folder.glob("sharp_theory-*.whl")
    return wheel


def grade_at_the_end(path: Path) -> None:
    """Move each exercise's ``grader.check`` cell to where the lab checks that exercise.

    A prediction is asked *before* the run that measures its answer, and otter grades a question
    where its ``grader.check`` cell runs; so that cell goes right after the "Check your answer"
    marker that :func:`teacher_notebook` left at the place of the lab's own check.
    """
    import nbformat

    notebook = nbformat.read(path, as_version=4)
    cells = list(notebook.cells)
    for marker in [c for c in cells if any(t.startswith("check-here:")
                                           for t in c.get("metadata", {}).get("tags", []))]:
        variable = next(t for t in marker.metadata["tags"] if t.startswith("check-here:"))[11:]
        check = [c for c in cells if c.cell_type == "code"
                 and c.source.strip() == f'grader.check("{variable}")']
        if not check:
            continue
        cells.remove(check[0])
        cells.insert(cells.index(marker) + 1, check[0])
    notebook.cells = cells
    nbformat.write(notebook, path)


def build_student(out: Path, labs: dict[str, Path]) -> list[Path]:
    """``out/LAB/student/LAB.ipynb`` (answers blanked, public checks) and
    ``out/LAB/autograder/`` (solutions, every check) for each lab with predictions."""
    import nbformat

    built = []
    wheels = out / ".wheel"
    shutil.rmtree(wheels, ignore_errors=True)
    wheels.mkdir(parents=True)
    wheel = _build_wheel(wheels)
    for name, script in sorted(labs.items()):
        teacher = teacher_notebook(name, script)
        if not any(cell.cell_type == "raw" and cell.source.startswith("# BEGIN QUESTION")
                   for cell in teacher.cells):
            continue
        folder = out / name
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        shutil.copy(wheel, folder / wheel.name)
        (folder / "requirements.txt").write_text(grader_requirements(wheel.name))
        nbformat.write(teacher, folder / f"{name}.ipynb")
        subprocess.run([sys.executable, "-m", "otter", "assign", f"{name}.ipynb", "dist"],
                       check=True, cwd=folder, stdout=subprocess.DEVNULL)
        for handed in (folder / "dist" / "student" / f"{name}.ipynb",
                       folder / "dist" / "autograder" / f"{name}.ipynb"):
            grade_at_the_end(handed)
        built.append(folder / "dist" / "student" / f"{name}.ipynb")
        print(f"student: {name}: {built[-1].relative_to(ROOT) if built[-1].is_relative_to(ROOT) else built[-1]}")
    return built


# --- command line ------------------------------------------------------------------------------

def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="tools/site.py", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    build = sub.add_parser("build", help="execute the labs (quick) and build site/")
    build.add_argument("--jobs", type=int, default=int(os.environ.get("SITE_JOBS", "2")))
    build.add_argument("--labs", nargs="*", help="only these labs (default: all)")
    sub.add_parser("check", help="check links, figures, claim tables and API names in site/")
    student = sub.add_parser("student", help="the students' notebooks (otter-grader)")
    student.add_argument("--out", type=Path, default=BUILD / "student")
    args = parser.parse_args(argv)

    sys.path.insert(0, str(ROOT))
    from sharp_theory import labkit

    labs = labkit.available_labs()
    if args.command == "build":
        if args.labs:
            unknown = sorted(set(args.labs) - set(labs))
            if unknown:
                parser.error(f"invalid --labs={unknown}: expected lab names from {sorted(labs)}")
            labs = {name: labs[name] for name in args.labs}
        if not 1 <= args.jobs <= 64:
            parser.error(f"invalid --jobs={args.jobs}: expected an integer in [1, 64]")
        started = time.time()
        executed = execute_labs(labs, args.jobs)
        write_pages(executed, labs)
        write_guide_pages()
        mkdocs_build(labs)
        problems = check_site(labs=labs)
        for line in problems:
            print(f"site: {line}", file=sys.stderr)
        print(f"site: {len(labs)} lab pages, {time.time() - started:.0f} s in all; "
              f"{'problems above' if problems else 'no broken link, figure or API name'}")
        return 1 if problems else 0
    if args.command == "check":
        problems = check_site()
        for line in problems:
            print(f"site: {line}", file=sys.stderr)
        return 1 if problems else 0
    built = build_student(args.out, labs)
    print(f"student: {len(built)} lab(s) with predictions into {args.out}")
    return 0 if built else 1


if __name__ == "__main__":
    sys.exit(main())
