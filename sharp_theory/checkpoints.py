"""Resumable lab runs: every expensive call a lab makes is saved when it finishes and reloaded,
in the same order, when the same command is run again.

``sharp-theory reproduce`` opens a :class:`StageStore` in ``OUT/.checkpoints/FINGERPRINT/`` for
the lab it runs. While it is open, each top-level call of a function decorated with
:func:`resumable` (``st.run``, ``st.sweep``) is a *stage*: stage k's result is saved as
``stage-000k-NAME.pkl`` (atomically) as soon as it returns. A rerun of the same command (same
lab, sizes, seeds, options, and the same code: the fingerprint hashes all of them) loads stages
0..k-1 instead of computing them and goes on from stage k. Labs are deterministic given their
settings (explicit PRNG keys), so stage k of the rerun is the same call as stage k of the first
run. Results are returned as host (numpy) arrays whether computed or loaded, so what the lab
does next sees the same values in both cases and a resumed run's numbers equal an uninterrupted
run's bit for bit (``tests/test_resume.py``).

Outside a store (library use, tests) the decorated functions behave exactly as undecorated.
"""
from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import os
import pickle
import shutil
import tempfile
from pathlib import Path
from typing import Callable

import numpy as np

from .output import CRITICAL, honour_umask

PACKAGE_ROOT = Path(__file__).resolve().parent
_STORE: "StageStore | None" = None


def source_fingerprint(extra_files=()) -> str:
    """A hash of sharp_theory's source files (and ``extra_files``, e.g. the lab script)."""
    digest = hashlib.sha256()
    for path in sorted(PACKAGE_ROOT.rglob("*.py")) + [Path(p) for p in extra_files]:
        digest.update(str(path.relative_to(PACKAGE_ROOT) if path.is_relative_to(PACKAGE_ROOT)
                          else path.name).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def fingerprint(settings: dict, extra_files=()) -> str:
    """A short hash of a run's settings (JSON-able) and of the code that runs them."""
    payload = json.dumps(settings, sort_keys=True, default=str) + source_fingerprint(extra_files)
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


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


@dataclasses.dataclass
class StageStore:
    """Saved stages of one lab run.

    Attributes:
      folder: where this run's stages live (``OUT/.checkpoints/FINGERPRINT``).
      loaded: stages read from disk so far (recorded as ``resumed_stages`` in results.json).
    """

    folder: Path
    next_index: int = 0
    loaded: int = 0
    _depth: int = 0

    @classmethod
    def open(cls, root: Path, key: str, *, resume: bool) -> "StageStore":
        """The store for run ``key`` under ``root``; stores of other keys are removed (they
        belong to other settings or older code), and with ``resume=False`` this key's too."""
        root = Path(root)
        with CRITICAL:
            if root.is_dir():
                for entry in root.iterdir():
                    if entry.name != key or not resume:
                        shutil.rmtree(entry, ignore_errors=True) if entry.is_dir() else entry.unlink()
            folder = root / key
            folder.mkdir(parents=True, exist_ok=True)
            honour_umask(root)
        return cls(folder)

    def saved(self) -> int:
        """How many stages are on disk."""
        return len(list(self.folder.glob("stage-*.pkl")))

    def call(self, name: str, compute: Callable[[], object]):
        """Stage ``next_index``: load it if saved, else compute, save and return it."""
        path = self.folder / f"stage-{self.next_index:04d}-{name}.pkl"
        self.next_index += 1
        if path.exists():
            with path.open("rb") as handle:
                result = pickle.load(handle)
            self.loaded += 1
            return result
        self._depth += 1
        try:
            result = to_host(compute())
        finally:
            self._depth -= 1
        with CRITICAL:
            with tempfile.NamedTemporaryFile("wb", dir=self.folder, prefix=".", suffix=".tmp",
                                             delete=False) as handle:
                pickle.dump(result, handle, protocol=pickle.HIGHEST_PROTOCOL)
                temporary = Path(handle.name)
            honour_umask(temporary)
            os.replace(temporary, path)
        return result


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
