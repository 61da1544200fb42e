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
import weakref

_HARNESS_PID = os.getpid()
_REAL_EXIT = os._exit
_REAL_START = threading.Thread.start
_REAL_HOOK = threading.excepthook
# thread -> the check() thread it belongs to.  Keyed by the Thread objects, never by their
# idents: an ident is reused as soon as its thread ends, and a stale one would aim a
# ``Stopped`` at another row's check.  Weak, so that ended threads drop out by themselves.
_owner: weakref.WeakKeyDictionary[threading.Thread, threading.Thread] = weakref.WeakKeyDictionary()
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
    """Thread.start that records the new thread under the check that started it (before
    it runs: a thread it starts at once is recorded too)."""
    with _lock:
        root = _owner.get(threading.current_thread())
        if root is not None:
            _owner[self] = root
    _REAL_START(self)


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


def adopt(thread: threading.Thread) -> None:
    """Make ``thread`` (not yet started) the root of a check: the threads it starts, and
    the threads those start, are its own."""
    with _lock:
        _owner[thread] = thread


def owned(root: threading.Thread) -> list[threading.Thread]:
    """The live threads that belong to the check rooted at ``root``."""
    with _lock:
        return [t for t, r in _owner.items() if r is root and t.is_alive()]


def _raise_in(thread: threading.Thread, exc: type[BaseException]) -> None:
    ident = thread.ident
    if ident is not None and thread.is_alive():
        ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(ident), ctypes.py_object(exc))


def stop(root: threading.Thread, grace: float = 2.0) -> list[threading.Thread]:
    """Raise ``Stopped`` in every thread of the check rooted at ``root`` until they end or
    ``grace`` passes (a loop may catch it once); returns the threads still alive."""
    until = time.monotonic() + grace
    left = owned(root)
    while left and time.monotonic() < until:
        for thread in left:
            _raise_in(thread, Stopped)
        time.sleep(0.02)
        left = owned(root)
    return left
