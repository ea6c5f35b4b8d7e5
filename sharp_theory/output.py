"""What a long computation shows and leaves behind: atomic file writes and one progress bar.

Part of the lowest layer (it imports nothing else from sharp_theory), shared by the studies
(resumable phase-diagram chunks) and the labs (``results.json``).
"""
from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path
from typing import Callable, Iterable


def write_atomic(path, write: Callable[[str], None]) -> None:
    """Write a file so that readers see the old content or the new one, never a half.

    Args:
      path: the destination file (its folder must exist).
      write: ``write(temporary_path)`` writes the whole content to the temporary file it is
        given (in the destination's folder, so the final rename stays on one file system).

    Returns:
      None. On success ``path`` holds the new content (``os.replace``); on failure the
      temporary file is removed and ``path`` is untouched.
    """
    path = Path(path)
    with tempfile.NamedTemporaryFile(dir=path.parent, delete=False, suffix=".tmp") as handle:
        temporary = handle.name
    try:
        write(temporary)
        os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.remove(temporary)


def progress_wanted() -> bool:
    """Whether progress bars should show: stderr is a terminal, a notebook runs us, or
    ``SHARP_THEORY_PROGRESS`` is set."""
    return (sys.stderr.isatty() or "ipykernel" in sys.modules
            or bool(os.environ.get("SHARP_THEORY_PROGRESS")))


def progress(iterable: Iterable, desc: str, total: int | None = None, enabled: bool | None = None):
    """A tqdm progress bar over ``iterable``.

    Args:
      iterable: what to iterate over.
      desc: the bar's label.
      total: the number of items (default ``len(iterable)`` when it has one).
      enabled: show the bar (default :func:`progress_wanted`).

    Returns:
      An iterator over the same items.
    """
    from tqdm.auto import tqdm

    enabled = progress_wanted() if enabled is None else enabled
    return tqdm(iterable, desc=desc, total=total, disable=not enabled)
