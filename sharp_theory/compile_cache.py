"""Where JAX keeps compiled programs between processes (its persistent compilation cache).

A lab's cold run is mostly XLA compilation; with the cache on, the second ``sharp-theory
reproduce`` of the same lab in a new process loads its programs from disk instead. The cache is
on by default, in a folder of the user's cache directory, never inside the repository:

* ``SHARP_THEORY_COMPILE_CACHE`` unset or ``1``: ``$XDG_CACHE_HOME/sharp-theory/jax-compile``
  (``~/.cache/sharp-theory/jax-compile`` when ``XDG_CACHE_HOME`` is unset);
* ``SHARP_THEORY_COMPILE_CACHE=0``: off;
* ``SHARP_THEORY_COMPILE_CACHE=/absolute/folder``: that folder.

A folder that cannot be written (read-only, under a file, no permission) is skipped with one
note on stderr: the run goes on without the cache.

JAX's own setting wins: when ``jax_compilation_cache_dir`` is already set (for instance by
``JAX_COMPILATION_CACHE_DIR``), nothing is changed. Entries are keyed by JAX/XLA version,
backend, program and compile options, so a stale entry is never used; delete the folder at any
time to free the space (when the optional ``filelock``
package is installed, JAX also evicts least-recently-used entries beyond ``MAX_BYTES``).
"""
from __future__ import annotations

import importlib.util
import os
from pathlib import Path

ENVIRONMENT_VARIABLE = "SHARP_THEORY_COMPILE_CACHE"
# Programs that compile faster than this are not worth a disk entry (JAX's default is 1 s, which
# would skip most of the simulator's programs: many compile in 0.2-1 s, and a lab has dozens).
MIN_COMPILE_SECONDS = 0.1
MAX_BYTES = 2 * 1024**3


def folder() -> Path | None:
    """The cache folder the environment asks for, or None when the cache is off.

    Raises:
        ValueError: ``SHARP_THEORY_COMPILE_CACHE`` is neither 0, 1 nor an absolute path (a
            relative one would scatter caches into whatever folder a command runs from).
    """
    value = os.environ.get(ENVIRONMENT_VARIABLE, "").strip()
    if value.lower() in ("0", "off", "false", "no"):
        return None
    if value in ("", "1"):
        base = os.environ.get("XDG_CACHE_HOME", "").strip()
        root = Path(base) if base and Path(base).is_absolute() else Path.home() / ".cache"
        return root / "sharp-theory" / "jax-compile"
    path = Path(value).expanduser()
    if not path.is_absolute():
        from .errors import ConfigError

        raise ConfigError(ENVIRONMENT_VARIABLE, value, "0 (off), 1 (the default folder in the "
                          "user cache) or an absolute folder path")
    return path


def usable(path: Path) -> bool:
    """Whether files can be written into ``path`` (created if missing): the compile cache, and
    matplotlib's folders (sharp_theory.jax_setup). Tried by creating a file there, since
    ``os.access`` answers yes to root on a read-only file system."""
    import tempfile

    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=path):
            pass
        return True
    except OSError:
        return False


def enable(jax) -> Path | None:
    """Point the imported ``jax`` module's persistent compilation cache at :func:`folder`.

    Args:
        jax: the imported ``jax`` module.

    Returns:
        The folder in use (possibly one JAX was already given), or None when the cache is off.
    """
    chosen = folder()
    current = jax.config.jax_compilation_cache_dir
    if current:
        return Path(current)
    if chosen is None:
        return None
    if not usable(chosen):
        import sys

        print(f"sharp-theory: note: the compile cache folder {chosen} cannot be written; compiled "
              f"programs are not kept between runs ({ENVIRONMENT_VARIABLE}=0 silences this)",
              file=sys.stderr)
        return None
    jax.config.update("jax_compilation_cache_dir", str(chosen))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", MIN_COMPILE_SECONDS)
    if jax.config.jax_compilation_cache_max_size == -1 and importlib.util.find_spec("filelock"):
        jax.config.update("jax_compilation_cache_max_size", MAX_BYTES)  # JAX's LRU needs filelock
    return chosen
