"""What a long computation writes and shows: atomic files that honour the umask, output folders
we own, and one progress bar.

Part of the lowest layer (it imports nothing else from sharp_theory but ``errors``), shared by
the studies (resumable phase-diagram chunks), the fuzzer (saved counterexamples), the
checkpoints and the labs (``results.json``).

Output folders. A lab's output folder (``--out DIR``) holds a marker, ``.sharp-theory.json``,
listing the files sharp_theory wrote there. A folder is ours when it is new, empty, carries the
marker, or was written by an earlier version (its ``results.json`` names the lab and lists its
figures). Anything else is refused before any work starts, so a user's files (``--out .``,
``--out my_project``) are never replaced. Inside our folder a run stages its files in
``.staging-PID-*/``, keeps resumable stages in ``.checkpoints/``, and publishes by renaming each
staged file into place (results.json last), then deletes the files of the previous run that
this run no longer writes.

One run per folder. A run holds an exclusive lock (``flock``) on ``OUT/.sharp-theory.lock`` from
the moment it claims the folder until it has published or aborted; the lock file names the
holder's process. A second run into the same folder is refused in one line naming that process,
before it writes anything. The operating system releases the lock when the holder dies, however
it dies. A folder holding another lab's results is refused too, unless the run is told to
replace them (``replace_other_lab``; ``--replace-other-lab`` on the command line).

Every file and folder honours the umask (``tempfile`` alone would create them 0600 / 0700).
"""

from __future__ import annotations

import dataclasses
import fcntl
import json
import os
import sys
import shutil
import tempfile
import threading
from pathlib import Path
from typing import Callable, Iterable

from .errors import ConfigError

MARKER = ".sharp-theory.json"
STAGING_PREFIX = ".staging-"
CHECKPOINTS = ".checkpoints"
LOCK = ".sharp-theory.lock"

# Held while files are renamed into place or a checkpoint is written, so that an interrupt
# (sharp_theory.interrupts) waits for the few milliseconds it takes instead of cutting it short.
CRITICAL = threading.RLock()
_UMASK: int | None = None


def current_umask() -> int:
    """The process umask (read once: reading it means setting it)."""
    global _UMASK
    if _UMASK is None:
        _UMASK = os.umask(0o022)
        os.umask(_UMASK)
    return _UMASK


def honour_umask(path: Path) -> None:
    """Give a file made by ``tempfile`` the mode an ordinary ``open`` would have given it."""
    base = 0o777 if Path(path).is_dir() else 0o666
    os.chmod(path, base & ~current_umask())


def write_atomic(path, write: Callable[[str], None]) -> None:
    """Write a file so that readers see the old content or the new one, never a half.

    Args:
      path: the destination file (its folder must exist).
      write: ``write(temporary_path)`` writes the whole content to the temporary file it is
        given (in the destination's folder, so the final rename stays on one file system).

    Returns:
      None. On success ``path`` holds the new content (``os.replace``) with the permissions
      the umask gives a new file; on failure the temporary file is removed and ``path`` is
      untouched. An interrupt (:mod:`sharp_theory.interrupts`) waits for the rename.
    """
    path = Path(path)
    with CRITICAL:
        with tempfile.NamedTemporaryFile(dir=path.parent, delete=False, prefix=".",
                                         suffix=".tmp") as handle:
            temporary = handle.name
        try:
            write(temporary)
            honour_umask(Path(temporary))
            os.replace(temporary, path)
        finally:
            if os.path.exists(temporary):
                os.remove(temporary)


def write_text_atomic(path, text: str) -> None:
    """:func:`write_atomic` for a text file."""
    write_atomic(path, lambda temporary: Path(temporary).write_text(text))


def _read_marker(folder: Path) -> dict | None:
    try:
        marker = json.loads((folder / MARKER).read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(marker, dict) or marker.get("written_by") != "sharp-theory":
        return None
    files = marker.get("files")
    if not isinstance(files, list) or not all(isinstance(f, str) and "/" not in f for f in files):
        return None
    return marker


def _legacy_files(folder: Path, lab: str) -> list[str] | None:
    """Files an earlier version of sharp_theory wrote (before the marker), or None."""
    try:
        results = json.loads((folder / "results.json").read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(results, dict) or results.get("lab") != lab:
        return None
    figures = results.get("figures") or []
    if not all(isinstance(name, str) for name in figures):
        return None
    return (["results.json", "trajectories.npz"] + [f"{n}.png" for n in figures] +
            [f"{n}.svg" for n in figures])


def _ours(name: str) -> bool:
    return name in (MARKER, CHECKPOINTS, LOCK) or name.startswith(STAGING_PREFIX)


def _holder(lock_path: Path) -> str:
    """What the lock file says about the run holding it (best effort: it may be mid-write)."""
    try:
        record = json.loads(lock_path.read_text())
        return (f"process {record['pid']} (`{record['command']}`, started {record['started']})")
    except (OSError, ValueError, KeyError, TypeError):
        return "another process"


def _busy(parameter: str, out, lock_path: Path) -> ConfigError:
    return ConfigError(parameter, str(out), f"a folder no other run is writing ({_holder(lock_path)} "
                       "holds it; wait for it to finish or choose another --out)")


def _command_line() -> str:
    """The command this process was started with, as a user typed it (``sharp-theory reproduce
    ...``; a lab run by runpy changes ``sys.argv[0]``, ``sys.orig_argv`` keeps the original)."""
    words = list(getattr(sys, "orig_argv", None) or sys.argv or ["python"])
    if len(words) > 1 and Path(words[1]).name == "sharp-theory":
        words = words[1:]
    return " ".join([Path(words[0]).name] + words[1:])


def probe_lock(path: Path, parameter: str = "--out", out=None) -> None:
    """Refuse now if another run holds ``path``'s lock (nothing is written; the probe's own
    shared lock is released at once)."""
    lock_path = Path(path) / LOCK
    try:
        descriptor = os.open(lock_path, os.O_RDONLY)
    except OSError:
        return  # no lock file: nobody has claimed the folder
    try:
        fcntl.flock(descriptor, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        raise _busy(parameter, out if out is not None else path, lock_path) from None
    except OSError:
        return
    finally:
        os.close(descriptor)


class FolderLock:
    """An exclusive lock on an output folder, held for a whole run.

    Attributes:
      path: the lock file (``OUT/.sharp-theory.lock``).
    """

    def __init__(self, path: Path):
        self.path = Path(path)
        self._descriptor: int | None = None

    def acquire(self, parameter: str, out) -> None:
        """Take the lock or raise a one-line ConfigError naming the process that holds it.

        Raises:
          ConfigError: another run holds the lock.
          OSError: the lock file cannot be created (the caller words it).
        """
        import time

        busy_tries = 0
        for _ in range(100):
            descriptor = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666 & ~current_umask())
            try:
                fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(descriptor)
                busy_tries += 1
                if busy_tries >= 5:  # a probe (inspect) holds it for microseconds only
                    raise _busy(parameter, out, self.path) from None
                time.sleep(0.05)
                continue
            except OSError:
                os.close(descriptor)
                raise
            # The holder removes the file when it releases; a lock taken on a file that was
            # removed meanwhile protects nothing, so take it again on the file now there.
            try:
                same = os.stat(self.path).st_ino == os.fstat(descriptor).st_ino
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(descriptor)
        else:
            raise _busy(parameter, out, self.path)
        self._descriptor = descriptor
        import datetime

        command = _command_line()
        record = json.dumps({"pid": os.getpid(), "command": command[:200],
                             "started": datetime.datetime.now().isoformat(timespec="seconds")})
        try:
            os.ftruncate(descriptor, 0)
            os.pwrite(descriptor, record.encode(), 0)
        except OSError:
            pass  # the lock holds without its note (a full disk must not stop the claim)

    def release(self) -> None:
        """Remove the lock file and release the lock (in that order: a run waiting on the old
        file then sees that it was removed and takes the lock on a new one)."""
        if self._descriptor is not None:
            descriptor, self._descriptor = self._descriptor, None
            try:
                self.path.unlink(missing_ok=True)
            except OSError:
                pass
            try:
                fcntl.flock(descriptor, fcntl.LOCK_UN)
            finally:
                os.close(descriptor)

    @property
    def held(self) -> bool:
        return self._descriptor is not None


@dataclasses.dataclass
class OutputFolder:
    """A lab's output folder, checked and claimed before any work.

    Attributes:
      path: the folder (absolute).
      lab: the lab's name (recorded in the marker).
      created: the folders this run created (the output folder and any missing parents,
        innermost first); an aborted run removes them again if it left nothing worth keeping.
      previous_files: the files of the previous run (listed in the marker).
    """

    path: Path
    lab: str
    created: tuple = ()
    previous_files: tuple = ()
    staging: Path | None = None
    lock: FolderLock | None = None

    @classmethod
    def inspect(cls, out, lab: str, parameter: str = "--out", *, replace_other_lab: bool = False,
                probe: bool = True) -> tuple[Path, bool, list[str]]:
        """Check, without writing anything, that ``out`` is a folder we may write.

        Args:
          out: the folder.
          lab: the lab that will write it.
          parameter: the command-line parameter to name in errors.
          replace_other_lab: allow a folder holding another lab's results (they are replaced).
          probe: also refuse when another run holds the folder's lock.

        Returns:
          (absolute path, whether it must be created, the files a previous run wrote there).

        Raises:
          ConfigError: ``out`` is a file, lies under a file, cannot be named on this file
            system (too long, permission), holds files that sharp_theory did not write (the
            message names some of them), holds another lab's results, or another run holds it.
        """
        try:
            return cls._inspect(out, lab, parameter, replace_other_lab, check_lock=probe)
        except OSError as error:
            raise ConfigError(parameter, str(out), "a folder path this file system accepts ("
                              f"{error.strerror or error})") from None

    @classmethod
    def _inspect(cls, out, lab, parameter, replace_other_lab, *, check_lock):
        path = Path(out).expanduser().absolute()
        if path.exists() and not path.is_dir():
            raise ConfigError(parameter, str(out), f"a folder path ({path} is a file)")
        probe = path
        while not probe.exists() and probe.parent != probe:
            probe = probe.parent
        if not probe.is_dir():
            raise ConfigError(parameter, str(out), f"a folder path ({probe} is a file)")
        if not os.access(probe, os.W_OK | os.X_OK):
            raise ConfigError(parameter, str(out), f"a writable location ({probe} is not writable)")
        if not path.exists():
            return path, True, []
        try:
            entries = sorted(p.name for p in path.iterdir())
        except OSError as error:
            raise ConfigError(parameter, str(out), f"a readable folder ({error.strerror})") from None
        if check_lock:
            probe_lock(path, parameter, out)
        marker = _read_marker(path)
        if marker is not None:
            previous = list(marker["files"])
            other = marker.get("lab")
            if other not in (None, lab) and previous and not replace_other_lab:
                raise ConfigError(parameter, str(out), f"a folder for lab {lab!r} (it holds the "
                                  f"results of lab {other!r}; choose another --out, or pass "
                                  "--replace-other-lab to replace them)")
        else:
            previous = _legacy_files(path, lab) or []
        foreign = [e for e in entries if not _ours(e) and e not in previous]
        if foreign:
            raise ConfigError(parameter, str(out), _refusal(foreign, lab))
        if any((path / name).is_dir() for name in previous):
            raise ConfigError(parameter, str(out), "a folder whose listed results are files")
        return path, False, previous

    @classmethod
    def claim(cls, out, lab: str, parameter: str = "--out", *,
              replace_other_lab: bool = False) -> "OutputFolder":
        """:meth:`inspect` ``out``, create it, take its lock for this run, mark it as ours.

        Raises:
          ConfigError: as :meth:`inspect`, another run holds the folder, or the folder cannot
            be created or written (the reason in words, e.g. "Permission denied", "No such
            file or directory" for /proc).
        """
        path, must_create, _ = cls.inspect(out, lab, parameter,
                                           replace_other_lab=replace_other_lab)
        created = []
        probe = path
        while must_create and not probe.exists():
            created.append(probe)
            probe = probe.parent
        folder = cls(path, lab)
        try:
            for new in reversed(created):
                try:
                    new.mkdir()
                except FileExistsError:  # another run made it at the same moment: not ours
                    created.remove(new)
            folder.created = tuple(created)
            folder.lock = FolderLock(path / LOCK)
            folder.lock.acquire(parameter, out)
            # Under the lock, look again: another run may have published there meanwhile.
            _, _, previous = cls.inspect(out, lab, parameter, replace_other_lab=replace_other_lab,
                                         probe=False)
            folder.previous_files = tuple(previous)
            folder._write_marker(previous)
        except ConfigError:
            folder._undo_claim()
            raise
        except OSError as error:
            folder._undo_claim()
            raise ConfigError(parameter, str(out), f"a folder that can be created and written "
                              f"({error.strerror or error})") from None
        return folder

    def _undo_claim(self) -> None:
        """Leave the folder as it was before a claim that failed (only empty folders we made go)."""
        held = self.lock is not None and self.lock.held
        if held:
            self.abort()
        else:
            for made in self.created:  # innermost first; another run's files stop it
                try:
                    made.rmdir()
                except OSError:
                    break

    def _write_marker(self, files) -> None:
        write_text_atomic(self.path / MARKER, json.dumps(
            {"written_by": "sharp-theory", "lab": self.lab, "files": sorted(files)}, indent=1))

    def open_staging(self) -> Path:
        """A fresh staging folder inside ``path`` for this run's files."""
        self.remove_stale_staging()
        # Created and recorded under the lock an interrupt's clean-up takes: a signal can never
        # see the folder on disk before abort() knows to remove it.
        with CRITICAL:
            self.staging = Path(tempfile.mkdtemp(prefix=f"{STAGING_PREFIX}{os.getpid()}-",
                                                 dir=self.path))
            honour_umask(self.staging)
        return self.staging

    def remove_stale_staging(self) -> None:
        """Staging folders of runs killed without a chance to clean up (SIGKILL, power loss)."""
        for entry in self.path.glob(STAGING_PREFIX + "*"):
            pid = entry.name[len(STAGING_PREFIX):].split("-", 1)[0]
            if pid.isdigit() and int(pid) != os.getpid() and not _alive(int(pid)):
                shutil.rmtree(entry, ignore_errors=True)

    @property
    def checkpoints(self) -> Path:
        return self.path / CHECKPOINTS

    def publish(self) -> None:
        """Move the staged files into place (results.json last).

        The previous run's files that this run did not write again are deleted; nothing else is.
        """
        if self.staging is None:
            raise RuntimeError("publish() before open_staging()")
        with CRITICAL:
            names = sorted(p.name for p in self.staging.iterdir())
            if any((self.staging / n).is_dir() for n in names):
                raise RuntimeError(f"a lab staged a folder in {self.staging}; only files are published")
            # List the union first: a crash half-way through still leaves every file ours.
            self._write_marker(set(names) | set(self.previous_files))
            for name in sorted(names, key=lambda n: n == "results.json"):
                os.replace(self.staging / name, self.path / name)
            for name in set(self.previous_files) - set(names):
                (self.path / name).unlink(missing_ok=True)
            self._write_marker(names)
            self.previous_files = tuple(names)
            self.staging.rmdir()
            self.staging = None

    def abort(self) -> None:
        """Remove this run's staging folder; remove the folder itself if this run created it
        and it holds nothing but our marker and lock (saved stages are kept for a resumed run;
        the caller removes its own empty store first). Then release the lock."""
        with CRITICAL:
            try:
                if self.staging is not None:
                    shutil.rmtree(self.staging, ignore_errors=True)
                    self.staging = None
                if self.created:
                    self._remove_if_empty()
            finally:
                self.release()

    def _remove_if_empty(self) -> None:
        try:
            left = {p.name for p in self.path.iterdir()}
        except OSError:
            return
        if CHECKPOINTS in left:
            try:
                self.checkpoints.rmdir()  # only when no store is left in it
                left.discard(CHECKPOINTS)
            except OSError:
                pass
        if left <= {MARKER, LOCK}:
            (self.path / MARKER).unlink(missing_ok=True)
            self.release()  # removes the lock file
            for folder in self.created:  # innermost first; stops at a non-empty one
                try:
                    folder.rmdir()
                except OSError:
                    break

    def release(self) -> None:
        """Release the folder's lock (after publishing or aborting)."""
        if self.lock is not None:
            self.lock.release()


def _refusal(foreign: list[str], lab: str) -> str:
    shown = ", ".join(repr(name) for name in foreign[:3]) + (", ..." if len(foreign) > 3 else "")
    return (f"a new or empty folder, or one sharp-theory wrote (it holds {len(foreign)} "
            f"entr{'y' if len(foreign) == 1 else 'ies'} sharp-theory did not write: {shown}); "
            f"choose a fresh path such as results/{lab}")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def in_notebook() -> bool:
    """Whether a Jupyter kernel runs us (labs then take their settings from the environment).

    A kernel that runs this code, not merely an imported ``ipykernel`` (jupyter_client imports
    it in any process that looks up a kernel spec, e.g. one that executes notebooks)."""
    if "ipykernel" not in sys.modules:
        return False
    from IPython import get_ipython

    return getattr(get_ipython(), "kernel", None) is not None


def progress_wanted() -> bool:
    """Whether progress bars should show: stderr is a terminal, a notebook runs us, or
    ``SHARP_THEORY_PROGRESS`` is set."""
    return (sys.stderr.isatty() or in_notebook()
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
