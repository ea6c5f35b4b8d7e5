"""Build the documentation site (``make docs``) and the students' notebooks (``make student``).

    python tools/site.py build [--jobs 2]                  # site/ (static, works offline)
    python tools/site.py build --students                  # student-site/: no answers, no notes
    python tools/site.py check [--students]                # links, figures, API names (, leaks)
    python tools/site.py student [--out build/student]     # one otter-grader assignment per lab
    python tools/site.py notebook LAB [--dry-run]          # open a lab in Jupyter Notebook

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
site.

``build --students`` makes the students' site from the same executed notebooks (nothing is run
again when ``build`` ran first): prediction and exercise cells show blanked answers (``name =
...``, a function body ``...``) and no output, an exercise's check becomes a "check your answer"
note, teacher notes and the "For teachers" page are left out, and the claim table (the verdicts
that answer the predictions) moves from the top of a lab page to its end. The build fails if a
solution line, a teacher's note, "SOLUTION", a raw Sphinx role, "THEORY.md" or a build path
reaches a page (:func:`student_leaks`).

Both sites render math offline (MathJax 2 copied from the ``jupyter-server-mathjax`` package into
``javascripts/mathjax/``) and show the "Try it yourself" sliders as their first frame (the PNG
that ``st.labkit.sliders`` puts beside the widget; the widget itself needs a kernel). Both
search from disk: the index is also written as a script (:func:`write_search_script`), which
``docs/javascripts/search-offline.js`` loads on a file:// page to answer the search box; no page
loads anything from the network (:func:`check_site` fails on any remote script, style or image).

Each assignment's ``dist/autograder/`` holds ``autograder.zip``, whose
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
import typing
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

ROOT = Path(__file__).resolve().parent.parent
BUILD = ROOT / "build"
SOURCE = BUILD / "site-src"          # mkdocs' docs_dir: generated, never edited by hand
SITE = ROOT / "site"
STUDENT_SOURCE = BUILD / "student-site-src"
STUDENT_SITE = ROOT / "student-site"   # `build --students`: no answers, no teacher's notes
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


class Target(typing.NamedTuple):
    """Which site a build writes: the generated mkdocs sources, the site folder, and whether it
    is the students' version."""
    source: Path
    site: Path
    students: bool


TEACHERS = Target(SOURCE, SITE, students=False)
STUDENTS = Target(STUDENT_SOURCE, STUDENT_SITE, students=True)
# MathJax 2, as the jupyter-server-mathjax package ships it; copied into each site.
MATHJAX_DIR = "javascripts/mathjax"
MATHJAX_NOTEBOOK_URL = "../javascripts/mathjax-load.js"   # docs/javascripts/: it loads the copy
# A page's link to the teachers' page, and what stands there on the students' site.
TEACHERS_LINK = "[For teachers](teachers.md)"
STUDENTS_LINK = "[For students](students.md)"


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
    return lab_links(name, results, source) + "\n\n" + claims_block(name, results, full_figures)


def lab_links(name: str, results: dict, source: str) -> str:
    """The lab's one line of links: the command that reproduces it, its paper cards, its file."""
    papers = sorted({claim["id"].split(".")[0] for claim in results["claims"]})
    cards = [(paper, card_for(paper)) for paper in papers]
    links = ", ".join(f'<a href="../papers/{html.escape(card[:-3])}.html">{html.escape(paper)}</a>'
                      for paper, card in cards if card)
    return (f"**Reproduce:** `sharp-theory reproduce {name}` (add `--quick` for small sizes) · "
            f"**Paper card{'s' if len(cards) > 1 else ''}:** {links or '(none)'} · "
            f"**Source:** `labs/{source}`")


def claims_block(name: str, results: dict, full_figures: list[str]) -> str:
    """The claim table (every claim's verdict on the run shown) and the full run's figures."""
    from sharp_theory.report import claim_rows, figure_caption, templates

    table = templates().get_template("claims.html.j2").module.claim_list(
        claim_rows(results["claims"], results["quick"]))
    size = ("quick sizes (<code>--quick</code>): too small to judge shows as inconclusive; "
            "<code>make demo</code> or the command above gives the full run"
            if results["quick"] else f"the full run in <code>results/{html.escape(name)}/</code>")
    gallery = "".join(
        f'<figure><img src="{html.escape(name)}/{html.escape(figure)}.png" alt="{html.escape(figure)}">'
        f"<figcaption>{html.escape(figure_caption(results, figure))} (full run)</figcaption></figure>"
        for figure in full_figures)
    return (f"<div class=\"claims-block\" data-claims=\"{len(results['claims'])}\" markdown=\"0\">"
            + (f"<p><b>Claims</b>, judged on {size}:</p>{table}" if results["claims"] else
               "<p>This lab registers no claims: its verdicts are the ones it prints below.</p>")
            + f"</div>\n\n{gallery}")


WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
# The file a kernel compiles a cell into, as a warning names it (/tmp/ipykernel_123/456.py).
KERNEL_CELL_FILE = re.compile(r"/\S*/ipykernel_\d+/\d+\.py")


def static_outputs(notebook) -> None:
    """What a page without a kernel can show, in place: no empty ``[]``/``None`` results, a
    widget shown by its still image (``st.labkit.sliders`` puts the first frame beside the
    widget; the widget's state, which needs a loader from the network, is dropped), and paths
    in printed text (a warning's file) relative to the repository, not the build machine's."""
    notebook.metadata.pop("widgets", None)
    for cell in notebook.cells:
        if cell.cell_type != "code":
            continue
        kept = []
        for out in cell.outputs:
            if out.get("output_type") == "stream":
                out["text"] = KERNEL_CELL_FILE.sub("(this cell)", out["text"].replace(f"{ROOT}{os.sep}", ""))
            if out.get("output_type") == "execute_result" and \
                    out.get("data", {}).get("text/plain", "").strip() in ("[]", "None"):
                continue   # an empty list (savefig's lint: no problem) says nothing
            if WIDGET_VIEW in out.get("data", {}):
                del out["data"][WIDGET_VIEW]
                if "image/png" not in out["data"]:
                    continue   # a widget without a still frame: nothing to show
            kept.append(out)
        cell.outputs = kept


def blank_solutions(source: str) -> str:
    """A cell's source as the students get it (otter-grader's rules): ``name = answer  #
    SOLUTION`` becomes ``name = ...``; the lines between ``# BEGIN SOLUTION`` and ``# END
    SOLUTION`` become one ``...``."""
    lines, inside = [], False
    for line in source.splitlines():
        stripped = line.strip()
        indent = line[:len(line) - len(line.lstrip())]
        if stripped.startswith("# BEGIN SOLUTION"):
            inside = True
            lines.append(f"{indent}...")
        elif stripped.startswith("# END SOLUTION"):
            inside = False
        elif inside:
            continue
        elif re.search(r"#\s*SOLUTION\s*$", line):
            assignment = re.match(r"(\s*[A-Za-z_][\w.]*(?:\s*:[^=]+)?)\s*=(?!=)", line)
            lines.append(f"{assignment.group(1).rstrip()} = ..." if assignment else f"{indent}...")
        else:
            lines.append(line)
    return "\n".join(lines)


def student_cells(notebook) -> None:
    """An executed lab notebook made the students' page, in place: predictions and exercises
    blanked and without output, each exercise's check a "check your answer" note, teacher notes
    and the cells that set the teacher's predictions beside the verdicts left out."""
    import nbformat

    cells, last_exercise = [], None
    for cell in notebook.cells:
        tags = cell.metadata.get("tags", [])
        if "teacher-note" in tags:
            continue
        if "prediction" in tags or "exercise" in tags:
            cell.source = blank_solutions(cell.source)
            cell.outputs, cell.execution_count = [], None
            if "exercise" in tags:
                last_exercise = (_defined_names(cell.source) or ["your answer"])[0]
        elif "exercise-check" in tags:
            cell = nbformat.v4.new_markdown_cell(
                f"**Check your answer.** In your notebook, `grader.check(\"{last_exercise}\")` "
                "runs here: it compares your answer with what the cells above measured.")
        elif cell.cell_type == "code" and "st.labkit.compare_predictions(" in cell.source:
            cell = nbformat.v4.new_markdown_cell(
                "*In your notebook, this cell sets your predictions beside the measured "
                "verdicts; the verdicts are in the claim table at the end of this page.*")
        cells.append(cell)
    notebook.cells = cells


def write_lab_page(name: str, executed: Path, script: Path, target: Target = TEACHERS) -> dict:
    """``labs/LAB.ipynb`` (executed, with the header cell) and ``labs/LAB/`` (its figures).

    The students' page (``target.students``) has its answers blanked (:func:`student_cells`)
    and its claim table at the end, after every prediction it answers."""
    import nbformat

    notebook = nbformat.read(executed / f"{name}.ipynb", as_version=4)
    results = json.loads((executed / "out" / "results.json").read_text())
    static_outputs(notebook)
    figures_dir = target.source / "labs" / name
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
    if target.students:
        student_cells(notebook)
        notebook.cells.insert(1, nbformat.v4.new_markdown_cell(lab_links(name, results, script.name)))
        notebook.cells.append(nbformat.v4.new_markdown_cell(
            "## The claims, measured\n\nThe verdicts of the run above (after your predictions):"
            "\n\n" + claims_block(name, results, full_figures)))
    else:
        notebook.cells.insert(1, nbformat.v4.new_markdown_cell(
            lab_header(name, results, script.name, full_figures)))
    nbformat.write(notebook, target.source / "labs" / f"{name}.ipynb")
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


def write_guide_pages(target: Target = TEACHERS) -> list[str]:
    """Every guide executed into ``guides/`` of the site source; returns their page paths. The
    students' build reuses the teacher's build's run of a guide (newer than its script)."""
    pages = []
    for script in sorted(GUIDES.glob("*.py")):
        executed = BUILD / "guides" / f"{script.stem}.ipynb"
        if not (target.students and executed.is_file()
                and executed.stat().st_mtime >= script.stat().st_mtime):
            executed = execute_guide(script, BUILD / "guides")
        (target.source / "guides").mkdir(exist_ok=True)
        shutil.copyfile(executed, target.source / "guides" / executed.name)
        pages.append(f"guides/{executed.name}")
    return pages


def copy_mathjax(folder: Path) -> None:
    """MathJax 2 from the jupyter-server-mathjax package into ``folder`` (English only): the
    pages load it from there, so math renders with nothing fetched."""
    import jupyter_server_mathjax

    static = Path(jupyter_server_mathjax.__file__).parent / "static"
    shutil.copytree(static, folder, dirs_exist_ok=True,
                    ignore=lambda where, names: [n for n in names if Path(where).name == "localization"
                                                 and n != "en"])


def write_pages(executed: dict[str, Path], labs: dict[str, Path], target: Target = TEACHERS) -> None:
    from sharp_theory import labkit

    source = target.source
    shutil.rmtree(source, ignore_errors=True)
    shutil.copytree(DOCS, source, ignore=shutil.ignore_patterns("*.py", "__pycache__", "tests"))
    if target.students:
        # The students' site has no teacher's page: its "For students" page stands there.
        (source / "teachers.md").unlink()
        for page in source.glob("*.md"):
            page.write_text(page.read_text().replace(TEACHERS_LINK, STUDENTS_LINK))
    copy_mathjax(source / MATHJAX_DIR)
    shutil.copytree(PAPERS, source / "papers")
    (source / "labs").mkdir(exist_ok=True)
    rows = []
    for number, name in enumerate(in_course_order(executed)):
        results = write_lab_page(name, executed[name], labs[name], target)
        claims = results["claims"]
        same = sum(c["verdict"] == c["expected"] for c in claims)
        undecided = sum(c["verdict"] == "inconclusive" and c["expected"] != "inconclusive"
                        for c in claims)
        seconds = executed_seconds(executed[name], name)
        rows.append(f"| {number} | [{labkit.lab_title(labs[name])}]({name}.ipynb) | `{name}` | "
                    f"{same} as expected, {undecided} inconclusive, "
                    f"{len(claims) - same - undecided} differ "
                    f"({'quick' if results['quick'] else 'full'} run) | {seconds} |")
    (source / "labs" / "index.md").write_text(
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
    (source / "papers" / "index.md").write_text(
        "# Paper cards\n\nOne card per paper: the setting, the claims we check, our numbers, and "
        "where our simulation disagrees.\n\n" + "\n".join(
            f"- [{card.read_text().splitlines()[0].lstrip('# ').strip()}]({card.name})"
            for card in cards) + "\n")
    api = source / "api"
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


def site_config(labs: dict[str, Path], target: Target = TEACHERS) -> Path:
    """``build/mkdocs.yml`` (``build/mkdocs-students.yml``): the repository's mkdocs.yml with one
    nav entry per lab (and, for the students, their page instead of the teachers')."""
    import yaml

    from sharp_theory import labkit

    config = yaml.safe_load((ROOT / "mkdocs.yml").read_text())
    config["docs_dir"], config["site_dir"] = str(target.source), str(target.site)
    if target.students:
        config["site_name"] += " (students)"
        config["nav"] = [entry for entry in config["nav"] if entry != {"For teachers": "teachers.md"}]
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
            # Every notebook page sits one folder down (labs/, guides/).
            plugin["mkdocs-jupyter"]["custom_mathjax_url"] = MATHJAX_NOTEBOOK_URL
    path = BUILD / ("mkdocs-students.yml" if target.students else "mkdocs.yml")
    path.write_text(yaml.safe_dump(config, sort_keys=False, allow_unicode=True))
    return path


def mkdocs_build(labs: dict[str, Path], target: Target = TEACHERS) -> None:
    started = time.time()
    subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--quiet",
                    "--config-file", str(site_config(labs, target))], check=True, cwd=ROOT,
                   env=dict(os.environ, NO_MKDOCS_2_WARNING="1"))
    link_roles(target.site)
    write_search_script(target.site)
    print(f"site: mkdocs built {target.site} in {time.time() - started:.0f} s")


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
    # The search index holds the pages' text: a role shows there as its plain name.
    for index in (site / "search").glob("search_index.js*"):
        text = index.read_text()
        new, count = ROLE.subn(lambda match: match.group(1), text)
        if count:
            index.write_text(new)
            rewritten += count
    return rewritten


SEARCH_SCRIPT = "search/search_index.js"
SEARCH_GLOBAL = "sharpTheorySearchIndex"


def write_search_script(site: Path) -> Path:
    """The search index as a script, ``search/search_index.js`` defining ``sharpTheorySearchIndex``:
    a page opened from disk (file://) may load a script but not fetch JSON, so
    ``javascripts/search-offline.js`` answers the search box from it there.

    Args:
      site: a built site (mkdocs' ``search/search_index.json`` in it).

    Returns:
      The path of the script.
    """
    index = json.loads((site / "search" / "search_index.json").read_text())
    script = site / SEARCH_SCRIPT
    script.write_text(f"var {SEARCH_GLOBAL} = {json.dumps(index, ensure_ascii=False)};\n")
    return script


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


def check_site(site: Path = SITE, labs=None, students: bool = False) -> list[str]:
    """Problems in a built site: a local link or image that points nowhere, a script, style or
    image fetched from the network, a lab page without its figures or claim table, a public
    name missing from the API reference; on the students' site (``students``), also every leak
    of an answer (:func:`student_leaks`).

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
            if (parts.scheme in ("http", "https") or url.startswith("//")) \
                    and tag in ("script", "img", "link", "iframe"):
                problems.append(f"{page.relative_to(site)}: fetches {url} (the site works offline)")
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
        for leak in ("THEORY.md", "/build/notebooks", "/tmp/", str(ROOT)):
            if leak in text:
                problems.append(f"labs/{name}.html: mentions {leak}")
        if "Traceback (most recent call last)" in text or 'class="ansi-red' in text and "Error" in text:
            problems.append(f"labs/{name}.html: a cell error is shown")
    if not (site / SEARCH_SCRIPT).is_file():
        problems.append(f"{SEARCH_SCRIPT}: missing (no search from disk)")
    problems.extend(missing_api_names(site))
    if students:
        problems.extend(student_leaks(site, labs if labs is not None else labkit.available_labs()))
    return problems


# --- what must not reach the students' site --------------------------------------------------

class _Text(HTMLParser):
    """A page's visible text and code (scripts and styles left out)."""

    def __init__(self):
        super().__init__()
        self.parts: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag, attrs):
        self._skip += tag in ("script", "style")

    def handle_endtag(self, tag):
        self._skip -= tag in ("script", "style") and self._skip > 0

    def handle_data(self, data):
        if not self._skip:
            self.parts.append(data)


def _normalized(text: str) -> str:
    return " ".join(text.split())


def answer_key(labs: dict[str, Path]) -> dict[str, list[str]]:
    """What the teacher's notebooks hold and the students' site must not: per lab, each
    solution line (``name = answer``), each line of a solution block that appears outside the
    solutions of no lab (a common line such as ``return np.nan`` is not an answer: other labs
    show it), and a stretch of each teacher's note, whitespace-normalized."""
    import jupytext

    # Every lab's text with its answers blanked: what any page may show.
    outside = " ".join(_normalized(blank_solutions(script.read_text())) for script in labs.values())
    key: dict[str, list[str]] = {}
    for name, script in labs.items():
        notebook = jupytext.read(script)
        secrets, solution_lines = [], set()
        for cell in notebook.cells:
            tags = cell.metadata.get("tags", [])
            if "teacher-note" in tags:
                # Its longest line (a line reads the same in a code or a markdown cell).
                lines = [_normalized(re.sub(r"^\s*#\s?", "", line))
                         for line in cell.source.splitlines()]
                longest = max(lines, key=len, default="")
                if len(longest) >= 20:
                    secrets.append(longest)
            inside = False
            for line in cell.source.splitlines():
                stripped = line.strip()
                if stripped.startswith("# BEGIN SOLUTION"):
                    inside = True
                elif stripped.startswith("# END SOLUTION"):
                    inside = False
                elif re.search(r"#\s*SOLUTION\s*$", line):
                    secrets.append(_normalized(re.sub(r"#\s*SOLUTION\s*$", "", line)))
                elif inside and len(stripped) >= 12 and not stripped.startswith("#"):
                    solution_lines.add(_normalized(stripped))
        secrets += sorted(line for line in solution_lines if line not in outside)
        key[name] = secrets
    return key


# Text that no page of the students' site may show (the build fails on any of them).
STUDENT_FORBIDDEN = ("SOLUTION", ":func:", "THEORY.md", "/build/", "/tmp/", "site-src",
                     "Teacher's note", "teacher-note")


def student_leaks(site: Path, labs: dict[str, Path]) -> list[str]:
    """Whatever of the answers reached the students' site: a solution line or a teacher's note
    of any lab (:func:`answer_key`) on any page, "SOLUTION", a raw Sphinx role, "THEORY.md", a
    build path (this checkout's path, ``/build/``, ``/tmp/``), the teachers' page.

    Returns:
      One line per leak (empty when the site is clean).
    """
    key = answer_key(labs)
    forbidden = STUDENT_FORBIDDEN + (str(ROOT),)
    problems = []
    if (site / "teachers.html").exists():
        problems.append("teachers.html: the teachers' page is on the students' site")
    pages = sorted(site.rglob("*.html")) + sorted((site / "search").glob("*.js*"))
    for page in pages:
        raw = page.read_text(errors="replace")
        if page.suffix == ".html":
            parser = _Text()
            parser.feed(raw)
            text = _normalized(html.unescape("".join(parser.parts)))
        else:
            text = _normalized(raw)
        shown = raw + "\n" + text
        where = page.relative_to(site)
        problems += [f"{where}: shows {word!r}" for word in forbidden if word in shown]
        problems += [f"{where}: shows {lab}'s answer {secret!r}"
                     for lab, secrets in key.items() for secret in secrets if secret in text]
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


def build_student(out: Path, labs: dict[str, Path], *, check_key: bool = True) -> list[Path]:
    """``out/LAB/student/LAB.ipynb`` (answers blanked, public checks) and
    ``out/LAB/autograder/`` (solutions, every check) for each lab with predictions.

    With ``check_key`` (``make student``), otter runs the answer key through every check
    while it builds (the lab is executed once more); a caller that grades the key through
    ``otter run`` itself (tests/test_grading.py) leaves that to its own grading."""
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
        subprocess.run([sys.executable, "-m", "otter", "assign", f"{name}.ipynb", "dist",
                        *([] if check_key else ["--no-run-tests"])],
                       check=True, cwd=folder, stdout=subprocess.DEVNULL)
        for handed in (folder / "dist" / "student" / f"{name}.ipynb",
                       folder / "dist" / "autograder" / f"{name}.ipynb"):
            grade_at_the_end(handed)
        built.append(folder / "dist" / "student" / f"{name}.ipynb")
        print(f"student: {name}: {built[-1].relative_to(ROOT) if built[-1].is_relative_to(ROOT) else built[-1]}")
    return built


# --- command line ------------------------------------------------------------------------------

def notebook_command(name: str, labs: dict[str, Path]) -> list[str]:
    """The command that opens lab ``name`` in Jupyter Notebook (jupytext reads the lab's
    percent-format script as a notebook; saving writes the script back).

    Raises:
      SystemExit: ``name`` is not a lab (the message lists the labs).
    """
    if name not in labs:
        raise SystemExit(f"notebook: invalid LAB={name!r}: expected one of {', '.join(sorted(labs))}")
    command = [sys.executable, "-m", "notebook", str(labs[name].relative_to(ROOT))]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        command.append("--allow-root")   # Jupyter refuses root otherwise (a container, CI)
    return command


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="tools/site.py", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    build = sub.add_parser("build", help="execute the labs (quick) and build site/")
    build.add_argument("--jobs", type=int, default=int(os.environ.get("SITE_JOBS", "2")))
    build.add_argument("--labs", nargs="*", help="only these labs (default: all)")
    build.add_argument("--students", action="store_true",
                       help="the students' site into student-site/ (no answers, no teacher's notes)")
    check = sub.add_parser("check", help="check links, figures, claim tables and API names in site/")
    check.add_argument("--students", action="store_true", help="check student-site/ (and for leaks)")
    student = sub.add_parser("student", help="the students' notebooks (otter-grader)")
    student.add_argument("--out", type=Path, default=BUILD / "student")
    notebook = sub.add_parser("notebook", help="open a lab in Jupyter Notebook")
    notebook.add_argument("lab", help="the lab's name (balancedness)")
    notebook.add_argument("--dry-run", action="store_true",
                          help="print the command and exit (nothing started)")
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
        target = STUDENTS if args.students else TEACHERS
        started = time.time()
        executed = execute_labs(labs, args.jobs)
        write_pages(executed, labs, target)
        write_guide_pages(target)
        mkdocs_build(labs, target)
        problems = check_site(target.site, labs=labs, students=target.students)
        for line in problems:
            print(f"site: {line}", file=sys.stderr)
        print(f"site: {len(labs)} lab pages{' (students)' if target.students else ''}, "
              f"{time.time() - started:.0f} s in all; "
              f"{'problems above' if problems else 'no broken link, figure or API name'}"
              f"{'' if problems or not target.students else ', no answer shown'}")
        return 1 if problems else 0
    if args.command == "check":
        target = STUDENTS if args.students else TEACHERS
        problems = check_site(target.site, students=target.students)
        for line in problems:
            print(f"site: {line}", file=sys.stderr)
        return 1 if problems else 0
    if args.command == "notebook":
        command = notebook_command(args.lab, labs)
        print(" ".join(command), flush=True)
        if args.dry_run:
            return 0
        os.chdir(ROOT)
        os.execv(command[0], command)
    built = build_student(args.out, labs)
    print(f"student: {len(built)} lab(s) with predictions into {args.out}")
    return 0 if built else 1


if __name__ == "__main__":
    sys.exit(main())
