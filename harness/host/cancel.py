"""Cancellation passed down from the job to every wait, instead of a process-wide flag.

One ``Cancel`` per session: Ctrl-C/SIGTERM sets it, every scenario's polling loop
checks it, and a library caller (bench/soak.py) can start a new session with a fresh
one after an interrupt.
"""

from __future__ import annotations

import threading


class Cancelled(KeyboardInterrupt):
    """Raised where a cancelled run stops; a KeyboardInterrupt so the CLI's one
    interrupt path (report what was established, exit 130) handles both."""


class Cancel:
    """A settable, waitable flag with a ``check`` that raises ``Cancelled``."""

    def __init__(self) -> None:
        self._event = threading.Event()

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
