"""One interrupt path for the command line: Ctrl-C (SIGINT) and SIGTERM end the process within a
moment, whatever it is doing, with one line and no traceback.

Python runs signal handlers only between bytecodes of the main thread, so a long XLA compilation
or a compiled scan would delay a Ctrl-C by many seconds, and unwinding JAX from an exception
during one can crash at exit. Instead, :func:`install` gives both signals a handler that does
nothing in Python, and asks the interpreter's C-level handler to write the signal's number to a
pipe (``signal.set_wakeup_fd``), which it does at once, whichever thread the signal lands on. A
watcher thread blocked on that pipe wakes up, waits for any atomic rename or checkpoint write in
progress (``output.CRITICAL``), runs the registered clean-ups (each lab removes its staging
folder; completed checkpoints stay for the rerun), prints one line and ends the process with
128 + the signal number: 130 for SIGINT, 143 for SIGTERM.
"""
from __future__ import annotations

import os
import signal
import sys
import threading
from typing import Callable

from .output import CRITICAL

SIGNALS = (signal.SIGINT, signal.SIGTERM)
_CLEANUPS: list[Callable[[], None]] = []
_INSTALLED = False
_RESUMABLE = False


def register(cleanup: Callable[[], None]) -> Callable[[], None]:
    """Run ``cleanup()`` if the process is interrupted; returns it for :func:`unregister`."""
    _CLEANUPS.append(cleanup)
    return cleanup


def unregister(cleanup: Callable[[], None]) -> None:
    if cleanup in _CLEANUPS:
        _CLEANUPS.remove(cleanup)


def installed() -> bool:
    """Whether this process is the command-line program (:func:`install` ran): only then may a
    watchdog end the whole process."""
    return _INSTALLED


def say_resumable(resumable: bool = True) -> None:
    """Whether the interrupt line should tell the user that a rerun resumes (``reproduce``,
    ``check``) or just that the command stopped (``fuzz``, ``run``, ...)."""
    global _RESUMABLE
    _RESUMABLE = resumable


def install(prog: str = "sharp-theory") -> None:
    """Route SIGINT/SIGTERM to the watcher thread (from the main thread of a command-line entry
    point; not for library use: it changes the whole process)."""
    global _INSTALLED
    if _INSTALLED or threading.current_thread() is not threading.main_thread():
        return
    read_end, write_end = os.pipe()
    os.set_blocking(write_end, False)
    for signum in SIGNALS:
        # A signal ignored when we started stays ignored: a shell starts background jobs with
        # SIGINT ignored so that Ctrl-C at the terminal does not reach them.
        if signal.getsignal(signum) is not signal.SIG_IGN:
            signal.signal(signum, _ignore_in_python)
    signal.set_wakeup_fd(write_end, warn_on_full_buffer=False)
    threading.Thread(target=_watch, args=(read_end, prog), name="sharp-theory-interrupts",
                     daemon=True).start()
    _INSTALLED = True


def _ignore_in_python(signum, frame) -> None:
    """The Python-level handler: the watcher thread does the work (see the module docstring)."""


def _watch(read_end: int, prog: str) -> None:
    while True:
        received = os.read(read_end, 1)
        if received and received[0] in SIGNALS:
            break
    signum = received[0]
    advice = ("; completed stages are kept, rerun the same command to resume"
              if _RESUMABLE else "")
    end_process(128 + signum, f"{prog}: interrupted by {signal.Signals(signum).name}{advice}")


def end_process(code: int, line: str) -> None:
    """Run the registered clean-ups, print ``line`` on stderr and end the process with ``code``
    at once (``os._exit``: no unwinding through JAX, whose threads may be busy or stuck).

    Args:
      code: the exit status.
      line: one line for stderr (without the newline).
    """
    with CRITICAL:
        for cleanup in reversed(list(_CLEANUPS)):
            try:
                cleanup()
            except Exception:  # noqa: BLE001 - a failing clean-up must not block the exit
                pass
        try:
            sys.stdout.flush()
        except Exception:  # noqa: BLE001
            pass
        os.write(2, f"{line}\n".encode())
        os._exit(code)
