"""Cancellation passed down from the job to every wait, instead of a process-wide flag.

One ``Cancel`` per session: Ctrl-C/SIGTERM sets it, every scenario's polling loop
checks it, and a library caller (bench/soak.py) can start a new session with a fresh
one after an interrupt.

Signals never raise: under :func:`signals_as_flags` the handler only counts the signal
(and the interpreter writes a byte to a wakeup pipe).  A watchdog thread reads that
pipe, sets every live ``Cancel`` (the job's waits then raise ``Cancelled`` at a point of
their choosing, holding no lock), and ends the process itself if it is still alive
``GRACE`` seconds later or at a second signal, whatever its threads hold.  An exception
raised from a handler lands anywhere, inside ``concurrent.futures``' own locks
included: a KeyboardInterrupt there left the harness hung in futex waits for good.
"""

from __future__ import annotations

import os
import select
import signal
import threading
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager

#: How long after the first SIGINT/SIGTERM the process may still live (the table so far
#: printed, every server torn down) before the watchdog ends it.
GRACE = 5.0
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Cancelled(KeyboardInterrupt):
    """Raised where a cancelled run stops; a KeyboardInterrupt so the CLI's one
    interrupt path (report what was established, exit 130) handles both."""


_live: weakref.WeakSet[Cancel] = weakref.WeakSet()
_live_lock = threading.Lock()
_received = 0  # SIGINT/SIGTERM seen by this process (written by the handler only)
_watched = 0  # the same, as the watchdog counts them (it wakes at once, in any thread)
_interrupted = False  # the watchdog saw one: a session opened from now on starts cancelled


class Cancel:
    """A settable, waitable flag with a ``check`` that raises ``Cancelled``."""

    def __init__(self) -> None:
        self._event = threading.Event()
        if _interrupted:
            self._event.set()
        with _live_lock:
            _live.add(self)

    def set(self) -> None:
        self._event.set()

    def is_set(self) -> bool:
        return self._event.is_set()

    def wait(self, seconds: float) -> bool:
        """Sleep up to ``seconds``; True if cancelled meanwhile."""
        return self._event.wait(seconds)

    def check(self) -> None:
        if self._event.is_set():
            raise Cancelled


def received() -> int:
    """How many SIGINT/SIGTERM this process has received so far (a probe compares the
    count before and after: an answer given while the run was interrupted is no answer)."""
    return max(_received, _watched)  # the handler runs late in a busy main thread


def _count(signum, frame) -> None:  # the whole handler: no exception, no lock
    global _received
    _received += 1


def _cancel_every_session() -> None:
    global _interrupted
    _interrupted = True
    with _live_lock:
        live = list(_live)
    for c in live:
        c.set()


def _watch(read_fd: int, on_force_exit: Callable[[], None]) -> None:
    """The watchdog: first byte -> cancel every session; then GRACE s or a second signal
    -> ``on_force_exit()`` and ``os._exit(130)``.  EOF (disarmed) ends it quietly."""
    global _watched
    seen = 0
    while True:
        timeout = None if seen == 0 else GRACE
        ready, _, _ = select.select([read_fd], [], [], timeout)
        if ready:
            try:
                data = os.read(read_fd, 64)
            except OSError:
                return
            if not data:
                return  # disarmed: the run ended before any signal
            ours = sum(1 for b in data if b in STOP_SIGNALS)  # the byte is the signal number
            if not ours:
                continue
            seen += ours
            _watched += ours
            if seen == ours:  # the first: cancel, then give the run GRACE s to end itself
                _cancel_every_session()
                if seen == 1:
                    continue
        last = threading.Thread(target=on_force_exit, daemon=True)  # bounded, like the rest
        last.start()
        last.join(GRACE / 2)
        os._exit(130)


@contextmanager
def signals_as_flags(on_force_exit: Callable[[], None]) -> Iterator[None]:
    """SIGINT and SIGTERM only mark the run cancelled (see the module's docstring).

    A no-op outside the main thread (tests calling the CLI from a thread).  Once a
    signal has arrived, the watchdog stays armed past the block: the interpreter's own
    exit (joining the pool's threads) is bounded by it too.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    global _interrupted
    _interrupted = False
    read_fd, write_fd = os.pipe()
    os.set_blocking(write_fd, False)
    before = received()
    previous = {s: signal.getsignal(s) for s in STOP_SIGNALS}
    old_wakeup = signal.set_wakeup_fd(write_fd, warn_on_full_buffer=False)
    for s in STOP_SIGNALS:
        signal.signal(s, _count)
    watchdog = threading.Thread(
        target=_watch, args=(read_fd, on_force_exit), name="signal-watchdog", daemon=True
    )
    watchdog.start()
    try:
        yield
    finally:
        if received() == before:  # no signal: put everything back as it was
            for s, handler in previous.items():
                signal.signal(s, handler)
            signal.set_wakeup_fd(old_wakeup)
            os.close(write_fd)  # the watchdog reads EOF and ends
            watchdog.join(1)
            os.close(read_fd)
