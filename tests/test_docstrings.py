"""Every public name is documented (the API reference is generated from these docstrings), and
every docstring example runs.

(a) Each public function has a Google-style docstring with ``Args:`` naming every parameter, one
per entry (the site's parser documents none of the names in an ``x, y:`` entry) and none that
is not a parameter, and a ``Returns:`` (or ``Yields:``) section; each public class has its own
docstring, and a dataclass or named tuple names every field under ``Attributes:``; each public
constant has an attribute docstring (a string literal right after its assignment, which the
site's generator reads); each public module has a docstring.
(b) The ``>>>`` examples of every ``sharp_theory`` module run as doctests (float64 is on: the
package turns it on at import), and the entry points a new user meets first have one.
(c) The checker itself flags undocumented functions, classes and constants, and a failing
example, so (a) and (b) can fail.
"""
from __future__ import annotations

import ast
import dataclasses
import doctest
import importlib
import inspect
import pkgutil
import re
import textwrap
import types
from pathlib import Path

import pytest

import sharp_theory

# The packages whose public names make the API reference (their __all__; a public submodule is
# walked in turn: its __all__, or the functions, classes and UPPER_CASE constants it defines).
# The package root's __all__ reaches st.labkit and st.plotting too.
DOCUMENTED = ["sharp_theory", "sharp_theory.problems", "sharp_theory.optim",
              "sharp_theory.dynamics", "sharp_theory.measure", "sharp_theory.theory",
              "sharp_theory.studies", "sharp_theory.claims", "sharp_theory.testing",
              "sharp_theory.observables"]

SECTION = re.compile(r"^(?P<indent>\s*)(?P<name>Args|Arguments|Returns|Yields|Raises|Attributes|"
                     r"References|Examples|Example|Notes|Note|See Also|Warning):\s*(?P<rest>.*)$")
# An entry of an Args:/Attributes: section: "name: text" or "name (type): text".
ENTRY = re.compile(r"^(?P<name>[^\s:(][^:(]*?)\s*(\([^)]*\))?\s*:(\s|$)")
IDENTIFIER = re.compile(r"^\*{0,2}[A-Za-z_][A-Za-z0-9_]*$")


def sections(doc: str) -> dict[str, list[str]]:
    """Google-style sections of a docstring: section name -> its lines (dedented)."""
    found: dict[str, list[str]] = {}
    lines = inspect.cleandoc(doc).splitlines()
    current, indent = None, 0
    for line in lines:
        match = SECTION.match(line)
        if match:
            current, indent = match["name"], len(match["indent"])
            found[current] = [match["rest"]] if match["rest"] else []
            continue
        if current is None:
            continue
        if line.strip() and len(line) - len(line.lstrip()) <= indent:
            current = None
            continue
        found[current].append(line)
    return {name: textwrap.dedent("\n".join(body)).splitlines() for name, body in found.items()}


def entries(body: list[str]) -> list[str]:
    """The names an ``Args:``/``Attributes:`` section documents (its entries at the first indent),
    as written: ``"x, y"`` stays one (malformed) name, as the site's docstring parser reads it."""
    levels = [len(line) - len(line.lstrip()) for line in body if line.strip()]
    if not levels:
        return []
    level = min(levels)
    return [match["name"].strip() for line in body
            if line.strip() and len(line) - len(line.lstrip()) == level
            and (match := ENTRY.match(line.strip()))]


def entry_problems(section: str, named: list[str], expected: list[str],
                   others_allowed: bool) -> list[str]:
    """What is wrong with a section's entries: several names in one entry (the site's parser
    documents none of them), expected names missing, names that are not expected."""
    problems = []
    combined = [name for name in named if not IDENTIFIER.match(name)]
    if combined:
        problems.append(f"{section} one name per entry, not {combined}")
    bare = {name.lstrip("*") for name in named if IDENTIFIER.match(name)}
    missing = [name for name in expected if name.lstrip("*") not in bare]
    if missing:
        problems.append(f"{section} does not name {missing}")
    unknown = sorted(bare - {name.lstrip("*") for name in expected})
    if unknown and not others_allowed:
        problems.append(f"{section} names {unknown}, which are not parameters")
    return problems


def own_doc(obj) -> str | None:
    """The object's own docstring (not an inherited or a dataclass-generated one)."""
    doc = obj.__dict__.get("__doc__") if isinstance(obj, type) else getattr(obj, "__doc__", None)
    if isinstance(obj, type) and dataclasses.is_dataclass(obj) and doc and \
            doc.startswith(f"{obj.__name__}("):
        return None  # what @dataclass writes when the class has no docstring
    return doc if doc and doc.strip() else None


def parameter_names(fn) -> list[str]:
    """A function's parameters as its docstring names them (``*args``, ``**kwargs``)."""
    try:
        signature = inspect.signature(fn)
    except (TypeError, ValueError):
        return []
    names = []
    for name, parameter in signature.parameters.items():
        if name in ("self", "cls"):
            continue
        if parameter.kind is parameter.VAR_POSITIONAL:
            name = f"*{name}"
        elif parameter.kind is parameter.VAR_KEYWORD:
            name = f"**{name}"
        names.append(name)
    return names


def function_problems(fn) -> list[str]:
    """What a function's docstring lacks ([] when it is complete)."""
    doc = own_doc(fn)
    if doc is None:
        return ["no docstring"]
    found = sections(doc)
    problems = []
    params = parameter_names(fn)
    if params:
        if "Args" not in found and "Arguments" not in found:
            problems.append(f"no Args: section (parameters {params})")
        else:
            named = entries(found.get("Args", found.get("Arguments", [])))
            takes_keywords = any(p.startswith("**") for p in params)
            problems += entry_problems("Args:", named, params, others_allowed=takes_keywords)
    if "Returns" not in found and "Yields" not in found:
        problems.append("no Returns: section")
    return problems


def class_problems(cls) -> list[str]:
    """What a class's docstring lacks ([] when it is complete)."""
    doc = own_doc(cls)
    if doc is None:
        return ["no docstring"]
    fields = ([f.name for f in dataclasses.fields(cls)] if dataclasses.is_dataclass(cls)
              else list(cls._fields) if issubclass(cls, tuple) and hasattr(cls, "_fields") else [])
    fields = [name for name in fields if not name.startswith("_")]
    if fields:  # properties may be documented as attributes too
        named = entries(sections(doc).get("Attributes", []))
        return entry_problems("Attributes:", named, fields, others_allowed=True)
    return []


def has_attribute_docstring(module: types.ModuleType, name: str) -> bool:
    """Whether a top-level ``name = ...`` in ``module`` (or a submodule) is followed by a string."""
    sources = [module]
    if hasattr(module, "__path__"):
        sources += [importlib.import_module(f"{module.__name__}.{info.name}")
                    for info in pkgutil.iter_modules(module.__path__)]
    for source in sources:
        try:
            tree = ast.parse(Path(inspect.getfile(source)).read_text())
        except (TypeError, OSError):
            continue
        body = tree.body
        for node, after in zip(body, body[1:]):
            targets = (node.targets if isinstance(node, ast.Assign)
                       else [node.target] if isinstance(node, ast.AnnAssign) else [])
            if any(isinstance(t, ast.Name) and t.id == name for t in targets) and \
                    isinstance(after, ast.Expr) and isinstance(after.value, ast.Constant) and \
                    isinstance(after.value.value, str):
                return True
    return False


def module_constants(module: types.ModuleType) -> set[str]:
    """UPPER_CASE names assigned at the top level of a module's own source."""
    try:
        tree = ast.parse(Path(inspect.getfile(module)).read_text())
    except (TypeError, OSError):
        return set()
    names = set()
    for node in tree.body:
        targets = (node.targets if isinstance(node, ast.Assign)
                   else [node.target] if isinstance(node, ast.AnnAssign) else [])
        names |= {t.id for t in targets if isinstance(t, ast.Name) and t.id.isupper()
                  and not t.id.startswith("_")}
    return names


def public_names(module: types.ModuleType) -> list[str]:
    """A module's ``__all__``; without one, the functions and classes it defines and its
    UPPER_CASE constants."""
    if hasattr(module, "__all__"):
        return list(module.__all__)
    defined = {name for name, value in vars(module).items()
               if not name.startswith("_") and (inspect.isfunction(value) or inspect.isclass(value))
               and getattr(value, "__module__", None) == module.__name__}
    return sorted(defined | module_constants(module))


def public_objects() -> dict[str, object]:
    """``qualified name -> object`` for every public name of the documented packages."""
    found: dict[str, object] = {}
    todo = list(DOCUMENTED)
    seen = set()
    while todo:
        module_name = todo.pop(0)
        if module_name in seen:
            continue
        seen.add(module_name)
        module = importlib.import_module(module_name)
        found[module_name] = module
        for name in public_names(module):
            value = getattr(module, name)
            qualified = f"{module_name}.{name}"
            if isinstance(value, types.ModuleType):
                if value.__name__.startswith("sharp_theory."):
                    todo.append(value.__name__)
                else:
                    found[qualified] = value
                continue
            found[qualified] = value
    return found


def problems_of(qualified: str, value) -> list[str]:
    """What the documentation of one public name lacks (module, class, function or constant)."""
    if isinstance(value, types.ModuleType):
        return [] if own_doc(value) else ["no module docstring"]
    if inspect.isclass(value):
        return class_problems(value)
    if callable(value) and not isinstance(value, (dict, tuple, list)):
        return function_problems(value)
    module_name, _, name = qualified.rpartition(".")
    module = importlib.import_module(module_name)
    return [] if has_attribute_docstring(module, name) else ["no attribute docstring"]


def undocumented() -> dict[str, list[str]]:
    """``qualified name -> problems`` for every public name whose documentation is incomplete."""
    report = {}
    for qualified, value in public_objects().items():
        problems = problems_of(qualified, value)
        if problems:
            report[qualified] = problems
    return report


# -- (a) every public name is documented -----------------------------------------------------


def test_the_walk_reaches_the_public_api():
    names = public_objects()
    for expected in ("sharp_theory.run", "sharp_theory.optim.sam",
                     "sharp_theory.measure.lambda_max",
                     "sharp_theory.theory.stability.gd_stability_limit",
                     "sharp_theory.theory.scale_invariant", "sharp_theory.testing.claim",
                     "sharp_theory.claims.judge", "sharp_theory.observables.of_params",
                     "sharp_theory.studies.convergence", "sharp_theory.labkit.start",
                     "sharp_theory.plotting.figure"):
        assert expected in names, expected
    assert len(names) > 250, len(names)


def test_every_public_name_is_documented():
    report = undocumented()
    lines = [f"{name}: {'; '.join(problems)}" for name, problems in sorted(report.items())]
    assert not report, f"{len(report)} public names lack documentation:\n" + "\n".join(lines)


# -- (b) the examples run --------------------------------------------------------------------


def package_modules() -> list[types.ModuleType]:
    """Every module of the package, imported."""
    names = ["sharp_theory"] + [info.name for info in pkgutil.walk_packages(
        sharp_theory.__path__, prefix="sharp_theory.")]
    return [importlib.import_module(name) for name in names]


def test_docstring_examples_run():
    finder = doctest.DocTestFinder(exclude_empty=True)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    ran = []
    seen = set()
    for module in package_modules():
        for test in finder.find(module, module.__name__):
            if not test.examples or (test.filename, test.lineno) in seen:
                continue
            seen.add((test.filename, test.lineno))
            runner.run(test)
            ran.append(test.name)
    results = runner.summarize(verbose=False)
    assert results.failed == 0, f"{results.failed} doctest examples failed (output above)"
    assert len(ran) >= 15, f"only {len(ran)} docstrings have examples: {ran}"


# The entry points a new user meets first show a runnable example.
WITH_EXAMPLES = [
    "sharp_theory.run", "sharp_theory.sweep", "sharp_theory.problems.op_toy",
    "sharp_theory.problems.scalar_product", "sharp_theory.problems.diagonal_linear",
    "sharp_theory.problems.matrix_sensing", "sharp_theory.optim.sam", "sharp_theory.optim.gd",
    "sharp_theory.optim.make_optimizer", "sharp_theory.measure.balancedness",
    "sharp_theory.measure.lambda_max", "sharp_theory.measure.hessian_trace",
    "sharp_theory.observables.of_params", "sharp_theory.theory.stability.gd_stability_limit",
    "sharp_theory.testing.claim", "sharp_theory.claims.judge",
]


@pytest.mark.parametrize("name", WITH_EXAMPLES)
def test_key_entry_points_have_examples(name):
    module_name, _, attribute = name.rpartition(".")
    value = getattr(importlib.import_module(module_name), attribute)
    doc = own_doc(value) or ""
    assert "Examples" in sections(doc), f"{name}: no Examples: section"
    assert ">>>" in doc, f"{name}: its Examples: section has no doctest"


# -- (c) the checker can fail ----------------------------------------------------------------


def test_the_checker_flags_missing_documentation():
    def bare(a, b=1):
        return a + b

    def summary_only(a, b=1):
        """Add."""
        return a + b

    def one_argument_missing(a, *rest, **options):
        """Add.

        Args:
          a: a number.
          *rest: more numbers.

        Returns:
          The sum.
        """
        return a

    def complete(a, b=1, *rest, **options):
        """Add.

        Args:
          a: a number;
            continued on a second line.
          b (int): another number.
          *rest: more numbers.
          **options: ignored.

        Returns:
          The sum.
        """
        return a + b

    @dataclasses.dataclass(frozen=True)
    class Bare:
        value: float

    @dataclasses.dataclass(frozen=True)
    class HalfDocumented:
        """A pair.

        Attributes:
          first: the first.
        """

        first: float
        second: float

    def combined(a, b):
        """Add.

        Args:
          a, b: two numbers (a site's parser reads one parameter named "a, b").

        Returns:
          The sum.
        """
        return a + b

    def stale(a):
        """Double.

        Args:
          a: a number.
          b: a parameter the function no longer has.

        Returns:
          Twice a.
        """
        return 2 * a

    def only_summary_no_parameters():
        """A constant."""
        return 1

    assert function_problems(bare) == ["no docstring"]
    assert function_problems(combined) == ["Args: one name per entry, not ['a, b']",
                                           "Args: does not name ['a', 'b']"]
    assert function_problems(stale) == ["Args: names ['b'], which are not parameters"]
    assert function_problems(only_summary_no_parameters) == ["no Returns: section"]
    assert function_problems(summary_only) == ["no Args: section (parameters ['a', 'b'])",
                                               "no Returns: section"]
    assert function_problems(one_argument_missing) == ["Args: does not name ['**options']"]
    assert function_problems(complete) == []
    assert class_problems(Bare) == ["no docstring"]
    assert class_problems(HalfDocumented) == ["Attributes: does not name ['second']"]
    assert problems_of("sharp_theory.optim.NOT_DOCUMENTED", ("a",)) == ["no attribute docstring"]
    assert problems_of("sharp_theory.optim.CONSTRUCTORS", ("a",)) == []


def test_a_failing_example_is_reported():
    def wrong():
        """Two.

        >>> 1 + 1
        3
        """

    test = doctest.DocTestFinder().find(wrong, "wrong", globs={})[0]
    runner = doctest.DocTestRunner()
    runner.run(test, out=lambda text: None)
    assert runner.summarize(verbose=False).failed == 1
