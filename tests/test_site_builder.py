"""tools/site.py's students' site and notebook launcher, on small made-up pages (no lab runs):
answers blanked, teacher notes dropped, verdicts after the prompts, every kind of leak caught,
widgets shown by their still frame, `make notebook` resolving a lab."""
from __future__ import annotations

import base64
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_blank_solutions_leaves_the_names_and_nothing_of_the_answers(site_builder):
    source = ("x = 1\npredict_balances = True  # SOLUTION\nradius: float = 0.15  # SOLUTION\n"
              "def step(w, g, lr, rho):\n    # BEGIN SOLUTION\n    d = g / abs(g)\n"
              "    return w - lr * d\n    # END SOLUTION\nprint(x)")
    assert site_builder.blank_solutions(source) == (
        "x = 1\npredict_balances = ...\nradius: float = ...\ndef step(w, g, lr, rho):\n"
        "    ...\nprint(x)")


def _cell(kind, source, tags=(), outputs=()):
    cell = (nbformat.v4.new_code_cell(source, outputs=list(outputs)) if kind == "code"
            else nbformat.v4.new_markdown_cell(source))
    if tags:
        cell.metadata["tags"] = list(tags)
    return cell


def test_student_cells_blank_answers_drop_notes_and_outputs(site_builder):
    printed = nbformat.v4.new_output("stream", name="stdout", text="radius = 0.15: right\n")
    notebook = nbformat.v4.new_notebook(cells=[
        _cell("markdown", "# Lab"),
        _cell("code", "predict_balances = True  # SOLUTION", ["prediction"]),
        _cell("code", "radius = 0.15  # SOLUTION", ["exercise"], [printed]),
        _cell("code", "run = simulate()", outputs=[printed]),
        _cell("code", "check_number('radius', radius, measured)", ["exercise-check"], [printed]),
        _cell("code", "# Teacher's note: the answer is the 2-cycle", ["teacher-note"]),
        _cell("code", "st.labkit.compare_predictions(results, {'c': predict_balances})",
              outputs=[printed]),
    ])
    site_builder.student_cells(notebook)
    sources = [cell.source for cell in notebook.cells]
    assert sources[1:3] == ["predict_balances = ...", "radius = ..."]
    assert notebook.cells[2].outputs == [] and notebook.cells[3].outputs == [printed]
    assert 'grader.check("radius")' in sources[4] and notebook.cells[4].cell_type == "markdown"
    assert not any("Teacher" in source or "compare_predictions" in source for source in sources)
    assert len(notebook.cells) == 6


def test_static_outputs_show_a_widget_by_its_frame_and_drop_its_state(site_builder):
    frame = base64.b64encode(b"\x89PNG frame").decode()
    view = {"version_major": 2, "version_minor": 0, "model_id": "m"}
    notebook = nbformat.v4.new_notebook(cells=[_cell("code", "controls = sliders(...)", outputs=[
        nbformat.v4.new_output("display_data", data={
            "text/plain": "Try it yourself", "image/png": frame,
            "application/vnd.jupyter.widget-view+json": view}),
        nbformat.v4.new_output("display_data", data={
            "text/plain": "VBox()", "application/vnd.jupyter.widget-view+json": view}),
        nbformat.v4.new_output("execute_result", data={"text/plain": "[]"}, execution_count=1),
        nbformat.v4.new_output("stream", name="stderr", text=(
            f"{ROOT}/sharp_theory/plotting/__init__.py:193: UserWarning: a\n"
            "/tmp/ipykernel_26889/3948012265.py:24: UserWarning: b\n")),
    ])])
    notebook.metadata["widgets"] = {"application/vnd.jupyter.widget-state+json": {}}
    site_builder.static_outputs(notebook)
    shown, warning = notebook.cells[0].outputs
    assert shown["data"] == {"text/plain": "Try it yourself", "image/png": frame}
    # Paths of the machine that built the page do not show; the warnings do.
    assert warning["text"] == ("sharp_theory/plotting/__init__.py:193: UserWarning: a\n"
                               "(this cell):24: UserWarning: b\n")
    assert "widgets" not in notebook.metadata


def test_answer_key_of_lab_zero_holds_its_solutions_and_its_note(site_builder):
    labs = {"what-sam-does": ROOT / "labs" / "what_sam_does.py"}
    key = site_builder.answer_key(labs)["what-sam-does"]
    assert "predicted_two_cycle_radius = 0.15" in key
    assert any("2-cycle" in secret or "valley" in secret for secret in key if "=" not in secret)


def test_a_common_line_in_a_solution_block_is_not_an_answer(site_builder, tmp_path):
    """A solution block's line that other labs show outside their solutions (``return np.nan``)
    is not a secret (it failed the students' build on three other labs' pages); a line found
    only in the solution is."""
    solution = ("# %% tags=[\"exercise\"]\ndef my_fit(x):\n    # BEGIN SOLUTION\n"
                "    if x is None:\n        return np.nan\n    return distinctive_fit_formula(x)\n"
                "    # END SOLUTION\n")
    other = "# %%\ndef helper(x):\n    if x is None:\n        return np.nan\n    return x\n"
    (tmp_path / "one.py").write_text(solution)
    (tmp_path / "two.py").write_text(other)
    key = site_builder.answer_key({"one": tmp_path / "one.py", "two": tmp_path / "two.py"})
    assert key["one"] == ["return distinctive_fit_formula(x)"]
    alone = site_builder.answer_key({"one": tmp_path / "one.py"})
    assert "return np.nan" in alone["one"]


@pytest.mark.parametrize("shown, leak", [
    ("<p>predicted_two_cycle_radius = 0.15</p>", "answer"),
    ('<pre><span class="n">predicted_two_cycle_radius</span><span class="w"> </span>'
     '<span class="o">=</span> <span class="mf">0.15</span></pre>', "answer"),
    ("<p>wrote /tmp/x/build/notebooks/lab/out</p>", "/build/"),
    ("<p>see THEORY.md</p>", "THEORY.md"),
    ("<p>x = 1  # SOLUTION</p>", "SOLUTION"),
    ("<p>:func:<code>gd</code></p>", ":func:"),
    ("<p>predicted_two_cycle_radius = ...</p>", None),
])
def test_student_leaks_catch_every_kind_of_leak(site_builder, tmp_path, shown, leak):
    site = tmp_path / "site"
    site.mkdir()
    (site / "page.html").write_text(f"<html><body>{shown}</body></html>")
    problems = site_builder.student_leaks(site, {"what-sam-does": ROOT / "labs" / "what_sam_does.py"})
    if leak is None:
        assert problems == []
    else:
        assert problems and all(p.startswith("page.html: shows") for p in problems), problems
        assert any(leak in p for p in problems), problems


def test_check_site_flags_a_script_fetched_from_the_network(site_builder, tmp_path):
    (tmp_path / "index.html").write_text(
        '<script src="https://cdn.example.org/mathjax/MathJax.js"></script>')
    problems = site_builder.check_site(tmp_path, labs={})
    assert any("fetches https://cdn.example.org/mathjax/MathJax.js" in p for p in problems)


def test_check_site_no_longer_allows_the_iframe_worker_shim(site_builder, tmp_path):
    # mkdocs-material's offline plugin loaded it for search on file:// pages; our own script
    # (docs/javascripts/search-offline.js) does that job, so the shim is a remote fetch again.
    (tmp_path / "index.html").write_text('<script src="https://unpkg.com/iframe-worker/shim"></script>')
    problems = site_builder.check_site(tmp_path, labs={})
    assert any("fetches https://unpkg.com/iframe-worker/shim" in p for p in problems), problems
    assert any("search/search_index.js: missing" in p for p in problems), problems


def test_search_script_defines_the_index_a_file_page_loads(site_builder, tmp_path):
    import json

    index = {"config": {"lang": ["en"]},
             "docs": [{"location": "labs/a.html#x", "title": "Edge \u2028 of </script>", "text": "<p>t</p>"}]}
    (tmp_path / "search").mkdir()
    (tmp_path / "search" / "search_index.json").write_text(json.dumps(index))
    script = site_builder.write_search_script(tmp_path).read_text()
    prefix = f"var {site_builder.SEARCH_GLOBAL} = "
    assert script.startswith(prefix) and script.rstrip().endswith(";")
    assert json.loads(script[len(prefix):].rstrip().rstrip(";")) == index


def test_notebook_command_resolves_a_lab_or_names_the_valid_ones(site_builder):
    labs = {"balancedness": ROOT / "labs" / "balancedness.py"}
    command = site_builder.notebook_command("balancedness", labs)
    assert command[:4] == [sys.executable, "-m", "notebook", "labs/balancedness.py"]
    with pytest.raises(SystemExit, match="invalid LAB='balance': expected one of balancedness"):
        site_builder.notebook_command("balance", labs)


@pytest.mark.slow
def test_make_notebook_opens_the_lab_as_a_notebook(tmp_path):
    """`make notebook LAB=... DRY_RUN=1` prints the command; that command, started without a
    browser, serves the lab's script as a notebook (jupytext); the server is then stopped."""
    dry = subprocess.run(["make", "-s", "notebook", "LAB=edge-of-stability", "DRY_RUN=1"],
                         cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert dry.returncode == 0, dry.stderr[-2000:]
    command = dry.stdout.strip().splitlines()[-1].split()
    assert command[1:4] == ["-m", "notebook", "labs/edge_of_stability.py"]
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = dict(os.environ, JUPYTER_RUNTIME_DIR=str(tmp_path), JUPYTER_DATA_DIR=str(tmp_path))
    server = subprocess.Popen(
        command + ["--no-browser", f"--port={port}", "--ServerApp.port_retries=0",
                   "--IdentityProvider.token=test"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        url = (f"http://127.0.0.1:{port}/api/contents/edge_of_stability.py"
               "?content=0&token=test")
        deadline, model = time.time() + 90, None
        while time.time() < deadline and server.poll() is None:
            try:
                with urllib.request.urlopen(url, timeout=5) as response:
                    model = response.read().decode()
                break
            except OSError:
                time.sleep(0.5)
        assert model is not None, server.stderr.read()[-2000:] if server.poll() is not None else \
            "the server did not answer in 90 s"
        assert '"type": "notebook"' in model, model
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
