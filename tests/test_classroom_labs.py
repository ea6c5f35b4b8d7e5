"""The labs' sliders: each change reruns the lab's own short simulation on the compiled program.

(A lab-script test: the lab's code is held to JAX's default promotion rules, see conftest.py.)"""
import ast
import types

import jupytext
import pytest

from sharp_theory import labkit


@pytest.mark.slow
@pytest.mark.parametrize("lab, function, changes", [
    ("balancedness", "explore_balancedness",
     [dict(lr=5e-3, rho=0.2, noise=0.5), dict(lr=1e-2, rho=0.3, noise=1.0),
      dict(lr=2e-3, rho=0.0, noise=0.0)]),
    ("edge-of-stability", "explore_edge",
     [dict(edge=26.0, rho=0.03), dict(edge=18.0, rho=0.08), dict(edge=35.0, rho=0.0)]),
])
def test_a_slider_change_reruns_without_recompiling(lab, function, changes, simulation_traces,
                                                    monkeypatch):
    """The sliders' functions: each change reruns the simulation on the compiled program (the
    first call compiles; later values of η, ρ, noise are pytree leaves and retrace nothing)."""
    import matplotlib.pyplot as plt

    monkeypatch.setattr(plt, "show", lambda: plt.close("all"))
    notebook = jupytext.read(labkit.available_labs()[lab])
    # A stand-in for the lab handle: quick sizes, default options, nothing recorded.
    quick_lab = types.SimpleNamespace(quick=True, seeds=1, extra={},
                                      record_config=lambda **config: None)
    namespace: dict = {"_start": lambda *args, **kwargs: quick_lab}
    # The lab's definitions only: its set-up cell (with a stand-in lab), then every cell made
    # of imports, definitions and assignments that run no simulation; the heavy cells are skipped.
    for cell in notebook.cells:
        if cell.cell_type != "code" or "tags" in cell.metadata:
            continue
        if "st.labkit.start(" in cell.source:
            exec(cell.source.replace("st.labkit.start(", "_start("), namespace)
            continue
        source = cell.source.split("controls = st.labkit.sliders")[0]
        if _only_definitions(source):
            exec(compile(source, lab, "exec"), namespace)
    explore = namespace[function]
    explore(**changes[0])
    compiled = simulation_traces()
    for change in changes[1:]:
        explore(**change)
    assert simulation_traces() == compiled, "a slider change recompiled the simulation"


def _only_definitions(source) -> bool:
    """Whether a cell (or a block of statements) only imports, defines and assigns, perhaps
    under an ``if``, without running a simulation."""
    body = ast.parse(source).body if isinstance(source, str) else source
    for node in body:
        if isinstance(node, (ast.Import, ast.ImportFrom, ast.FunctionDef, ast.ClassDef)):
            continue
        if isinstance(node, ast.If) and _only_definitions(node.body) \
                and _only_definitions(node.orelse):
            continue
        if isinstance(node, ast.Assign) and not any(
                isinstance(call, ast.Call) and isinstance(call.func, ast.Attribute)
                and call.func.attr in ("run", "sweep", "fuzz", "progress")
                for call in ast.walk(node.value)):
            continue
        return False
    return True
