"""Resumable lab runs: every expensive call a lab makes is saved when it finishes and reloaded,
in the same order, when the same command is run again, but only when nothing that changes its
numbers has changed and the saved file is exactly the one that was written.

``sharp-theory reproduce`` opens a :class:`StageStore` in ``OUT/.checkpoints/FINGERPRINT/`` for
the lab it runs. While it is open, each top-level call of a function decorated with
:func:`resumable` (``st.run``, ``st.sweep``) is a *stage*: stage k's result is saved as soon as it
returns, as two files written atomically:

* ``stage-000k-NAME.npz``: the arrays of the result (``np.load(..., allow_pickle=False)``: a
  stage file can hold numbers only, never code that runs when it is loaded);
* ``stage-000k-NAME.json``: the shape of the result (which dataclass, dict, list holds which
  array), the store's fingerprint, and a SHA-256 checksum of both files' content. It is
  written last, so a stage without it was never completed.

The fingerprint (:func:`run_fingerprint`) hashes everything that changes a stage's numbers: the
lab, its sizes, seeds and options, the source of sharp_theory and of the lab script, the
precision (float64 or float32), the device and process counts, the JAX backend, and the python,
jax, jaxlib and numpy versions. A rerun of the same command in the same environment loads stages
0..k-1 and goes on from stage k; any other rerun has another fingerprint and starts from zero.
A stage whose checksum, fingerprint or format does not match, or that cannot be read, is computed
again with a one-line note: it is never loaded and a run never stays stuck on it. Labs are
deterministic given their settings (explicit PRNG keys), so stage k of the rerun is the same
call as stage k of the first run, and results are returned as host (numpy) arrays whether
computed or loaded: a resumed run's numbers equal an uninterrupted run's bit for bit.

Outside a store (library use, tests) the decorated functions behave exactly as undecorated.
"""
from __future__ import annotations

import dataclasses
import functools
import hashlib
import importlib
import io
import json
import os
import sys
from pathlib import Path
from typing import Callable

import numpy as np

from .output import CRITICAL, honour_umask, write_atomic

PACKAGE_ROOT = Path(__file__).resolve().parent
STAGE_FORMAT = 2
# Classes a stage may name to rebuild its result; anything else is refused when loading, so a
# stage file cannot make us import arbitrary modules.
TRUSTED_MODULES = ("sharp_theory.", "optax.")
_STORE: "StageStore | None" = None


def source_fingerprint(extra_files=()) -> str:
    """A hash of sharp_theory's source files (and ``extra_files``, e.g. the lab script)."""
    digest = hashlib.sha256()
    for path in sorted(PACKAGE_ROOT.rglob("*.py")) + [Path(p) for p in extra_files]:
        digest.update(str(path.relative_to(PACKAGE_ROOT) if path.is_relative_to(PACKAGE_ROOT)
                          else path.name).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def numeric_environment() -> dict:
    """What besides the settings and the code changes a computation's numbers.

    Returns:
      dict with ``precision`` ("float64" when ``jax_enable_x64`` is on, else "float32"),
      ``devices`` and ``processes`` (JAX's counts), ``backend`` ("cpu", "gpu", ...) and the
      python, jax, jaxlib and numpy versions. Imports JAX.
    """
    import platform

    import jax

    return {"precision": "float64" if jax.config.jax_enable_x64 else "float32",
            "devices": jax.device_count(), "processes": jax.process_count(),
            "backend": jax.default_backend(), "python": platform.python_version(),
            "jax": jax.__version__,
            "jaxlib": getattr(jax.lib, "__version__", None) or jax.__version__,
            "numpy": np.__version__}


def fingerprint(settings: dict, extra_files=()) -> str:
    """A short hash of a run's settings (JSON-able) and of the code that runs them."""
    payload = json.dumps(settings, sort_keys=True, default=str) + source_fingerprint(extra_files)
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def run_fingerprint(settings: dict, extra_files=()) -> str:
    """:func:`fingerprint` of ``settings`` plus :func:`numeric_environment`: the key of a lab's
    store, so that a stage is only ever loaded into a run that would compute the same numbers."""
    return fingerprint({"settings": settings, "environment": numeric_environment()}, extra_files)


def to_host(value):
    """``value`` with every JAX array replaced by a numpy array (dataclasses, dicts, lists and
    tuples are rebuilt; anything else is returned as it is)."""
    import jax

    if isinstance(value, jax.Array):
        if jax.dtypes.issubdtype(value.dtype, jax.dtypes.prng_key):
            return value  # typed keys stay keys (they carry their PRNG implementation)
        return np.asarray(value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        changes = {f.name: to_host(getattr(value, f.name)) for f in dataclasses.fields(value)
                   if f.init}
        return dataclasses.replace(value, **changes)
    if isinstance(value, dict):
        return type(value)((key, to_host(item)) for key, item in value.items())
    if isinstance(value, tuple) and hasattr(value, "_fields"):  # a NamedTuple (optax states)
        return type(value)(*(to_host(item) for item in value))
    if isinstance(value, (list, tuple)):
        return type(value)(to_host(item) for item in value)
    return value


# --- a stage as data: a JSON tree of containers plus arrays -------------------------------------

class NotStorable(TypeError):
    """A stage result holds something that cannot be stored as data (it is then not saved)."""


class DamagedStage(ValueError):
    """A saved stage that may not be loaded (checksum, fingerprint, format or content)."""


def _class_name(cls) -> str:
    return f"{cls.__module__}:{cls.__qualname__}"


def _trusted_class(name: str):
    module, _, qualname = name.partition(":")
    if not module.startswith(TRUSTED_MODULES):
        raise DamagedStage(f"names class {name!r} outside sharp_theory and optax")
    try:
        target = importlib.import_module(module)
        for part in qualname.split("."):
            target = getattr(target, part)
    except (ImportError, AttributeError):
        raise DamagedStage(f"names class {name!r}, which this code does not have") from None
    if not isinstance(target, type):
        raise DamagedStage(f"names {name!r}, which is not a class")
    return target


def encode(value, arrays: dict) -> dict | list | str | int | bool | None:
    """The JSON description of ``value``; its arrays are added to ``arrays`` (name -> array).

    Raises:
      NotStorable: ``value`` holds something other than arrays, numbers, strings, None, typed
        PRNG keys, lists, tuples, dicts, NamedTuples and dataclasses.
    """
    import jax

    if value is None or isinstance(value, (bool, str)):
        return {"t": "atom", "v": value}
    if isinstance(value, int) and not isinstance(value, bool):
        return {"t": "int", "v": str(value)}
    if isinstance(value, float):
        return {"t": "float", "v": value.hex()}
    if isinstance(value, jax.Array) and jax.dtypes.issubdtype(value.dtype, jax.dtypes.prng_key):
        name = f"a{len(arrays)}"
        arrays[name] = np.asarray(jax.random.key_data(value))
        return {"t": "key", "impl": str(jax.random.key_impl(value)), "k": name}
    if isinstance(value, (np.ndarray, np.generic, jax.Array)):
        array = np.asarray(value)
        if array.dtype.hasobject:
            raise NotStorable("an array of Python objects")
        name = f"a{len(arrays)}"
        arrays[name] = array
        return {"t": "array" if isinstance(value, np.ndarray) else "scalar", "k": name}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        fields = {f.name: encode(getattr(value, f.name), arrays)
                  for f in dataclasses.fields(value) if f.init}
        return {"t": "dataclass", "cls": _class_name(type(value)), "fields": fields}
    if isinstance(value, tuple) and hasattr(value, "_fields"):
        return {"t": "namedtuple", "cls": _class_name(type(value)),
                "items": [encode(item, arrays) for item in value]}
    if isinstance(value, dict):
        return {"t": "dict", "items": [[encode(k, arrays), encode(v, arrays)]
                                       for k, v in value.items()]}
    if isinstance(value, (list, tuple)):
        return {"t": type(value).__name__, "items": [encode(item, arrays) for item in value]}
    raise NotStorable(f"a {type(value).__module__}.{type(value).__qualname__}")


def decode(node, arrays) -> object:
    """Rebuild what :func:`encode` described (``arrays``: the loaded npz).

    Raises:
      DamagedStage: the description is not one :func:`encode` writes, or names an untrusted class.
    """
    if not isinstance(node, dict) or "t" not in node:
        raise DamagedStage("holds a malformed entry")
    kind = node["t"]
    if kind == "atom":
        return node["v"]
    if kind == "int":
        return int(node["v"])
    if kind == "float":
        return float.fromhex(node["v"])
    if kind in ("array", "scalar"):
        array = np.array(arrays[node["k"]])
        return array if kind == "array" else array[()]
    if kind == "key":
        import jax

        return jax.random.wrap_key_data(np.array(arrays[node["k"]]), impl=node["impl"])
    if kind == "dataclass":
        cls = _trusted_class(node["cls"])
        if not dataclasses.is_dataclass(cls):
            raise DamagedStage(f"names {node['cls']!r} as a dataclass")
        return cls(**{name: decode(item, arrays) for name, item in node["fields"].items()})
    if kind == "namedtuple":
        cls = _trusted_class(node["cls"])
        return cls(*(decode(item, arrays) for item in node["items"]))
    if kind == "dict":
        return {decode(k, arrays): decode(v, arrays) for k, v in node["items"]}
    if kind in ("list", "tuple"):
        items = [decode(item, arrays) for item in node["items"]]
        return items if kind == "list" else tuple(items)
    raise DamagedStage(f"holds an entry of unknown kind {kind!r}")


def _checksum(npz_bytes: bytes, tree_text: str) -> str:
    digest = hashlib.sha256()
    digest.update(npz_bytes)
    digest.update(tree_text.encode())
    return digest.hexdigest()


@dataclasses.dataclass
class StageStore:
    """Saved stages of one lab run.

    Attributes:
      folder: where this run's stages live (``OUT/.checkpoints/FINGERPRINT``).
      key: the fingerprint (each stage records it; a stage with another is not loaded).
      label: how notes name the run (the lab's name).
      loaded: stages read from disk so far (recorded as ``resumed_stages`` in results.json).
      recomputed: stages found on disk but computed again (damaged or from other settings).
    """

    folder: Path
    key: str = ""
    label: str = "sharp-theory"
    next_index: int = 0
    loaded: int = 0
    recomputed: int = 0
    _depth: int = 0

    @classmethod
    def open(cls, root: Path, key: str, *, resume: bool, label: str = "sharp-theory") -> "StageStore":
        """The store for run ``key`` under ``root``. Stores of other keys are left alone (they
        belong to other settings or another environment; the output folder's lock guarantees
        that no other run is using them now); with ``resume=False`` this key's stages are
        discarded."""
        root = Path(root)
        folder = root / key
        with CRITICAL:
            if not resume and folder.is_dir():
                for entry in folder.iterdir():
                    _remove(entry)
            folder.mkdir(parents=True, exist_ok=True)
            honour_umask(root)
            honour_umask(folder)
        return cls(folder, key=key, label=label)

    def saved(self) -> int:
        """How many completed stages are on disk (a stage is complete once its .json exists)."""
        return len(list(self.folder.glob("stage-*.json")))

    def _paths(self, index: int, name: str) -> tuple[Path, Path]:
        stem = f"stage-{index:04d}-{name}"
        return self.folder / f"{stem}.npz", self.folder / f"{stem}.json"

    def load(self, index: int, name: str):
        """Stage ``index`` as saved.

        Raises:
          FileNotFoundError: it was never completed.
          DamagedStage: it must not be loaded (the message says why, in a few words).
        """
        arrays_path, tree_path = self._paths(index, name)
        try:
            header = json.loads(tree_path.read_text())
        except FileNotFoundError:
            raise
        except (OSError, UnicodeDecodeError, ValueError) as error:
            raise DamagedStage(f"its description cannot be read ({type(error).__name__})") from None
        if not isinstance(header, dict) or header.get("format") != STAGE_FORMAT:
            raise DamagedStage("it was written in another stage format")
        if header.get("key") != self.key or header.get("index") != index:
            raise DamagedStage("it was computed by another run (other settings or environment)")
        try:
            npz_bytes = arrays_path.read_bytes()
        except OSError as error:
            raise DamagedStage(f"its arrays cannot be read ({error.strerror or error})") from None
        tree_text = json.dumps(header.get("tree"), sort_keys=True)
        if header.get("sha256") != _checksum(npz_bytes, tree_text):
            raise DamagedStage("its checksum does not match its content")
        try:
            with np.load(io.BytesIO(npz_bytes), allow_pickle=False) as data:
                arrays = {name: data[name] for name in data.files}
            return decode(header["tree"], arrays)
        except DamagedStage:
            raise
        except Exception as error:  # noqa: BLE001 - any unreadable content means: recompute
            raise DamagedStage(f"its content cannot be decoded ({type(error).__name__})") from None

    def save(self, index: int, name: str, result) -> bool:
        """Write stage ``index``; returns False (with a note) when ``result`` is not storable."""
        arrays: dict = {}
        try:
            tree = encode(result, arrays)
        except NotStorable as reason:
            print(f"{self.label}: note: stage {index} ({name}) is not saved for resuming: its "
                  f"result holds {reason}", file=sys.stderr)
            return False
        buffer = io.BytesIO()
        np.savez(buffer, **arrays)
        npz_bytes = buffer.getvalue()
        tree_text = json.dumps(tree, sort_keys=True)
        header = {"format": STAGE_FORMAT, "key": self.key, "index": index, "name": name,
                  "sha256": _checksum(npz_bytes, tree_text), "tree": tree}
        arrays_path, tree_path = self._paths(index, name)
        with CRITICAL:
            tree_path.unlink(missing_ok=True)  # an old description never pairs with new arrays
            write_atomic(arrays_path, lambda temporary: Path(temporary).write_bytes(npz_bytes))
            write_atomic(tree_path, lambda temporary: Path(temporary).write_text(
                json.dumps(header, sort_keys=True)))
        return True

    def call(self, name: str, compute: Callable[[], object]):
        """Stage ``next_index``: load it if saved and intact, else compute, save and return it."""
        index = self.next_index
        self.next_index += 1
        try:
            result = self.load(index, name)
        except FileNotFoundError:
            pass
        except DamagedStage as reason:
            self.recomputed += 1
            print(f"{self.label}: note: saved stage {index} ({name}) is not used, {reason}; "
                  "computing it again", file=sys.stderr)
        else:
            self.loaded += 1
            return result
        self._depth += 1
        try:
            result = to_host(compute())
        finally:
            self._depth -= 1
        self.save(index, name, result)
        return result

    def discard(self) -> None:
        """Remove this store's folder (and ``.checkpoints`` when nothing else is left in it)."""
        with CRITICAL:
            _remove(self.folder)
            try:
                self.folder.parent.rmdir()
            except OSError:
                pass


def _remove(path: Path) -> None:
    import shutil

    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        try:
            path.unlink()
        except FileNotFoundError:
            pass


def active_store() -> StageStore | None:
    return _STORE


def activate(store: StageStore | None) -> StageStore | None:
    """Make ``store`` the one :func:`resumable` calls use; returns the previous one."""
    global _STORE
    previous, _STORE = _STORE, store
    return previous


def resumable(fn: Callable) -> Callable:
    """Decorate an expensive, deterministic function so that, inside a lab run with an open
    :class:`StageStore`, each top-level call is a saved stage. Nested calls (a sweep calling
    run) belong to their caller's stage."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        store = _STORE
        if store is None or store._depth > 0:
            return fn(*args, **kwargs)
        return store.call(fn.__name__, lambda: fn(*args, **kwargs))

    return wrapper
