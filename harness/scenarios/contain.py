"""Bounds on a user's code that runs inside the harness's own process (``check(server)``).

The check runs in a thread of the harness, so nothing it does may end or outlive the run:

- ``os._exit`` called from the harness's process raises ``ExitCalled`` in the calling
  thread instead of ending the harness with no report and no record (the harness itself
  never calls it; forked children, whose pid differs, still exit for real);
- every thread a check starts, directly or through a library, belongs to that check, and
  when its time is up ``stop`` raises ``Stopped`` in each one still running: a pure-Python
  loop ends at its next bytecode, instead of burning a core through every later row.  A
  thread blocked inside C (a long ``sleep``, a read) sleeps on harmlessly until it returns.
"""

from __future__ import annotations

import ctypes
import os
import threading
import time

_HARNESS_PID = os.getpid()
_REAL_EXIT = os._exit
_REAL_START = threading.Thread.start
_REAL_HOOK = threading.excepthook
_owner: dict[int, int] = {}  # thread ident -> the ident of the check() thread it belongs to
_lock = threading.Lock()
_installed = False


class ExitCalled(BaseException):
    """``os._exit(status)`` called by user code in the harness's process."""

    def __init__(self, status: int) -> None:
        super().__init__(f"os._exit({status}) called")
        self.status = status


class Stopped(BaseException):
    """Raised in a user thread whose run is over (a BaseException: ``except Exception``
    in the user's loop does not swallow it)."""


def _guarded_exit(status: int) -> None:
    if os.getpid() == _HARNESS_PID:
        raise ExitCalled(status)
    _REAL_EXIT(status)


def _owned_start(self: threading.Thread) -> None:
    """Thread.start that records the new thread under the check that started it."""
    _REAL_START(self)
    with _lock:
        root = _owner.get(threading.get_ident())
        if root is not None and self.ident is not None:
            _owner[self.ident] = root


def _quiet_hook(args: threading.ExceptHookArgs) -> None:
    """A thread ended by ``stop`` is not an error worth a traceback on stderr."""
    if args.exc_type is not Stopped:
        _REAL_HOOK(args)


def install() -> None:
    """Idempotent; called before the first user code runs."""
    global _installed, _HARNESS_PID
    if _installed:
        return
    _HARNESS_PID = os.getpid()
    os._exit = _guarded_exit  # type: ignore[assignment]
    threading.Thread.start = _owned_start  # type: ignore[method-assign]
    threading.excepthook = _quiet_hook
    _installed = True


def adopt(ident: int | None = None) -> None:
    """Make a thread (the calling one by default) the root of a check: the threads it
    starts are its own.  Idempotent: the check's thread and its starter both call it."""
    ident = threading.get_ident() if ident is None else ident
    with _lock:
        _owner[ident] = ident


def owned(root: int) -> list[int]:
    """The live threads (idents) that belong to the check rooted at ``root``."""
    alive = {t.ident for t in threading.enumerate()}
    with _lock:
        for ident in [i for i in _owner if i not in alive]:
            del _owner[ident]  # ended: an ident may be reused by a later thread
        return [i for i, r in _owner.items() if r == root]


def _raise_in(ident: int, exc: type[BaseException]) -> None:
    ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(ident), ctypes.py_object(exc))


def stop(root: int, grace: float = 2.0) -> list[int]:
    """Raise ``Stopped`` in every thread of the check rooted at ``root`` until they end or
    ``grace`` passes (a loop may catch it once); returns the idents still alive."""
    until = time.monotonic() + grace
    left = owned(root)
    while left and time.monotonic() < until:
        for ident in left:
            _raise_in(ident, Stopped)
        time.sleep(0.02)
        left = owned(root)
    return left


def forget(root: int) -> None:
    """Drop the bookkeeping of a check whose threads all ended."""
    with _lock:
        for ident in [i for i, r in _owner.items() if r == root]:
            del _owner[ident]
