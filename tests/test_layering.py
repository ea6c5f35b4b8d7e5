"""The package's import graph runs one way: utils → problems/optim/theory → dynamics → measure →
studies → claims → labs, with no back-edge, and no module imports another's private names.

Walks every ``sharp_theory/**.py`` with ``ast`` (imports inside functions count too), so a new
back-edge fails here before anyone imports anything.
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE_ROOT = Path(__file__).resolve().parent.parent / "sharp_theory"

# Layer of each top-level module or subpackage of sharp_theory (higher may import lower).
LAYERS = {
    "_pytree": 0, "errors": 0, "tree": 0, "output": 0, "version": 0, "observables": 0,
    "checkpoints": 0, "interrupts": 0, "krylov": 0, "compile_cache": 0, "jax_setup": 0,
    "problems": 1, "optim": 1, "theory": 1,
    "dynamics": 2,
    "measure": 3,
    "studies": 4,
    "claims": 5, "testing": 5,
    "labkit": 6, "plotting": 6, "report": 6, "cli": 6, "commands": 6, "launch": 6,
    "": 7,  # the package root: the public facade, which re-exports every layer
}
# Packages of one layer that must stay independent of each other.
PEERS = {"problems", "optim", "theory"}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE_ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(path): path for path in sorted(PACKAGE_ROOT.rglob("*.py"))}


def imports_of(name: str, path: Path, known: dict) -> list[tuple[str, str, int]]:
    """``(imported module, imported name or "", line)`` for every sharp_theory import in a file."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(alias.name, "", node.lineno) for alias in node.names
                      if alias.name.split(".")[0] == "sharp_theory"]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.split(".")[0] != "sharp_theory":
                continue
            for alias in node.names:
                submodule = f"{target}.{alias.name}"
                # ``from . import optim`` imports the submodule, not a name of the package.
                found.append((submodule, "", node.lineno) if submodule in known
                             else (target, alias.name, node.lineno))
    return found


def layer_of(module: str) -> tuple[str, int]:
    parts = module.split(".")
    top = parts[1] if len(parts) > 1 else ""
    if top not in LAYERS:
        raise AssertionError(f"{module}: no layer declared for sharp_theory.{top} in LAYERS")
    return top, LAYERS[top]


def edges():
    known = modules()
    for name, path in known.items():
        for target, imported, line in imports_of(name, path, known):
            yield name, path, target, imported, line


def test_every_module_has_a_layer():
    for name in modules():
        layer_of(name)


def test_no_import_goes_up_a_layer_or_across_peers():
    bad = []
    for source, path, target, _, line in edges():
        (source_top, source_layer), (target_top, target_layer) = layer_of(source), layer_of(target)
        if target_layer > source_layer:
            bad.append(f"{path.name}:{line} {source} (layer {source_layer}) imports {target} "
                       f"(layer {target_layer})")
        elif source_top != target_top and source_top in PEERS and target_top in PEERS:
            bad.append(f"{path.name}:{line} {source} imports its peer {target}")
    assert not bad, "back-edges in the import graph:\n" + "\n".join(bad)


def test_no_private_name_is_imported_from_another_module():
    bad = [f"{path.name}:{line} {source} imports {target}.{imported}"
           for source, path, target, imported, line in edges()
           if imported.startswith("_") and not imported.startswith("__") and target != source]
    bad += [f"{path.name}:{line} {source} imports private module {target}"
            for source, path, target, imported, line in edges()
            if any(part.startswith("_") and part != "_pytree" for part in target.split(".")[1:])]
    assert not bad, "\n".join(bad)


def test_the_checker_sees_a_back_edge(tmp_path):
    """The walker itself can fail: a planted ``problems -> dynamics`` import is a back-edge."""
    known = {"sharp_theory.problems.fake": tmp_path / "fake.py", "sharp_theory.dynamics": None}
    (tmp_path / "fake.py").write_text("from ..dynamics import run\nfrom ..tree import _hidden\n")
    found = imports_of("sharp_theory.problems.fake", tmp_path / "fake.py", known)
    assert ("sharp_theory.dynamics", "run", 1) in found
    assert ("sharp_theory.tree", "_hidden", 2) in found
    assert layer_of("sharp_theory.dynamics")[1] > layer_of("sharp_theory.problems.fake")[1]
    with pytest.raises(AssertionError, match="no layer declared"):
        layer_of("sharp_theory.unknown_module")
