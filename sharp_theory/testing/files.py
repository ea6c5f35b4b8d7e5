"""Finding claims (in a user's file, or ours) and saving counterexamples atomically."""
from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import numpy as np

from ..errors import ConfigError
from ..output import write_atomic, write_text_atomic
from .decorator import Claim, encode_value
from .runner import FuzzResult


def claims_in_module(module) -> dict[str, Claim]:
    """Claims defined in a module, by name, in definition order."""
    found = {}
    for value in vars(module).values():
        record = getattr(value, "__sharp_claim__", None)
        if isinstance(record, Claim):
            found[record.name] = record
    return found


def load_file(path: str | Path) -> dict[str, Claim]:
    """Import a user's Python file and return its claims.

    Args:
      path: the Python file with ``@st.testing.claim`` functions.

    Returns:
      dict name -> :class:`Claim`, in definition order.

    Raises:
      ConfigError: missing file, a syntax error (file:line named), an import that fails, or a
        file without claims; always one line.
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigError("FILE", str(path), "an existing Python file with @st.testing.claim functions")
    name = "sharp_theory_user_claims_" + "".join(c if c.isalnum() else "_" for c in str(path.resolve()))
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except SyntaxError as error:
        sys.modules.pop(name, None)
        raise ConfigError("FILE", str(path), f"valid Python (syntax error at line {error.lineno}: "
                          f"{error.msg})") from None
    except Exception as error:  # any failure of the user's module, as one line
        sys.modules.pop(name, None)
        first = (str(error).strip().splitlines() or [""])[0]
        raise ConfigError("FILE", str(path), f"a file that imports cleanly ({type(error).__name__}: "
                                             f"{first})") from None
    claims = claims_in_module(module)
    if not claims:
        raise ConfigError("FILE", str(path), "a file with at least one @st.testing.claim function")
    return claims


def registered_claims() -> dict[str, Claim]:
    """Our own theory as fuzzable claims (``sharp-theory fuzz --registered``).

    Returns:
      dict name -> :class:`Claim` of :mod:`sharp_theory.testing.registered`.
    """
    from . import registered

    return claims_in_module(registered)


def select(claims: dict[str, Claim], names, where: str) -> list[Claim]:
    """The claims named in ``names`` (all when empty), or a one-line ConfigError."""
    if not names:
        return list(claims.values())
    missing = [n for n in names if n not in claims]
    if missing:
        raise ConfigError("claim", missing[0], f"one of the claims in {where}: " + ", ".join(claims))
    return [claims[n] for n in names]


def instance_arrays(values: dict) -> dict:
    """Every array of a counterexample: drawn numbers, and each instance's parameters, constants,
    examples and facts, under names like ``quad/params0``, ``quad/facts/eigenvalues``."""
    import jax

    from .instances import Instance

    arrays = {}
    for name, value in values.items():
        if isinstance(value, Instance):
            problem = value.problem
            for part in ("params0", "constants", "examples"):
                leaves = jax.tree_util.tree_flatten_with_path(getattr(problem, part))[0]
                for key_path, leaf in leaves:
                    arrays[f"{name}/{part}{jax.tree_util.keystr(key_path)}"] = np.asarray(leaf)
            for fact, array in value.facts.items():
                if array is not None:
                    arrays[f"{name}/facts/{fact}"] = np.asarray(array)
        else:
            try:
                array = np.asarray(value)
            except (TypeError, ValueError):
                continue
            if array.dtype != object:
                arrays[name] = array
    return arrays


def save_counterexample(result: FuzzResult, folder: str | Path) -> list[Path]:
    """Write ``NAME.json`` (values, slack, replay command) and ``NAME.npz`` (the instance's
    arrays) into ``folder``, each atomically. Nothing is written for a claim that holds.

    Args:
      result: the :class:`FuzzResult` of a search.
      folder: the folder to write into (created if missing).

    Returns:
      The paths written (empty unless the verdict is "falsified").

    Raises:
      ConfigError: ``folder`` is an existing file.
    """
    if result.verdict != "falsified":
        return []
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise ConfigError("--save", str(folder), "a folder (this path is a file)")
    folder.mkdir(parents=True, exist_ok=True)
    record = result.to_json()
    record["values"] = {k: encode_value(v) for k, v in result.counterexample.items()}
    json_path, npz_path = folder / f"{result.claim}.json", folder / f"{result.claim}.npz"
    write_text_atomic(json_path, json.dumps(record, indent=2) + "\n")
    arrays = instance_arrays(result.counterexample)

    def write_npz(temporary):
        with open(temporary, "wb") as stream:  # a stream: savez would append ".npz" to a name
            np.savez_compressed(stream, **arrays)

    write_atomic(npz_path, write_npz)
    return [json_path, npz_path]
