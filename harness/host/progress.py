"""Progress on stderr, so stdout stays the report: a run over 40+ releases takes a minute
or more.  A tqdm bar on a terminal (done/total, the step, elapsed, time left), plain
lines with -v, a line every 30 s elsewhere (a CI log), nothing with -q.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from typing import TextIO


class Progress:
    """Plain lines (``-v``, or a non-terminal asked for lines) or nothing at all."""

    def __init__(self, lines: bool = False, verbose: bool = False, stream: TextIO | None = None):
        self.lines = lines
        self.verbose = verbose
        self.stream = stream or sys.stderr
        self.started = time.monotonic()

    def __call__(self, msg: str) -> None:
        """The current step, with the time since the run started."""
        if self.lines:
            elapsed = time.monotonic() - self.started
            print(f"[gunicorn-bisect {elapsed:6.2f}s] {msg}", file=self.stream, flush=True)

    def start(self, total: int, unit: str) -> None:
        """A new stretch of ``total`` items (releases, commits)."""

    def advance(self, n: int = 1) -> None:
        """``n`` items done."""

    def close(self) -> None:
        """Clear the bar, if any, before the report prints."""

    def log(self, label: str, text: str) -> None:
        if self.verbose:
            self.stream.write(f"----- gunicorn log: {label} -----\n{text}\n----- end -----\n")
            self.stream.flush()


class BarProgress(Progress):
    """A tqdm bar: done/total, the current step, elapsed, and the estimated time left."""

    def __init__(self, stream: TextIO | None = None) -> None:
        super().__init__(lines=False, stream=stream)
        self._bar = None
        self._lock = threading.Lock()

    def start(self, total: int, unit: str) -> None:
        from tqdm import tqdm

        with self._lock:
            if self._bar is not None:
                self._bar.close()
            try:  # a terminal that reports no size (a fresh pty) would get a 0-wide bar
                sized = os.get_terminal_size(self.stream.fileno()).columns > 0
            except (OSError, ValueError, AttributeError):
                sized = False
            self._bar = tqdm(
                total=total,
                unit=f" {unit}",
                file=self.stream,
                leave=False,
                dynamic_ncols=sized,
                ncols=None if sized else 100,
                nrows=None if sized else 24,  # 0 rows would hide the bar as off-screen
                bar_format="{n_fmt}/{total_fmt}{unit} |{bar:20}| {elapsed}<{remaining} {desc}",
            )

    def __call__(self, msg: str) -> None:
        with self._lock:
            if self._bar is not None:
                self._bar.set_description_str(msg[:70], refresh=True)

    def advance(self, n: int = 1) -> None:
        with self._lock:
            if self._bar is not None:
                self._bar.update(n)

    def close(self) -> None:
        with self._lock:
            if self._bar is not None:
                self._bar.close()
                self._bar = None


class Heartbeat(Progress):
    """Where stderr is no terminal (a CI log, a redirect): a line every ``every`` seconds
    while work goes on (the step, how much is done), so a long run is never silent."""

    def __init__(self, stream: TextIO | None = None, every: float = 30.0) -> None:
        super().__init__(lines=False, stream=stream)
        self.every = every
        self._lock = threading.Lock()
        self._step, self._done, self._total, self._unit = "", 0, 0, ""
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _beat(self) -> None:
        while not self._stop.wait(self.every):
            with self._lock:
                step, done, total, unit = self._step, self._done, self._total, self._unit
            counted = f" ({done} of about {total}{unit} done)" if total else ""
            elapsed = time.monotonic() - self.started
            print(
                f"[gunicorn-bisect {elapsed:6.0f}s] still working{counted}: {step or 'starting'}",
                file=self.stream,
                flush=True,
            )

    def _ensure(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._beat, name="heartbeat", daemon=True)
            self._thread.start()

    def __call__(self, msg: str) -> None:
        with self._lock:
            self._step = msg
            self._ensure()

    def start(self, total: int, unit: str) -> None:
        with self._lock:
            self._done, self._total, self._unit = 0, total, f" {unit}"
            self._ensure()

    def advance(self, n: int = 1) -> None:
        with self._lock:
            self._done += n
            self._total = max(self._total, self._done)

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=1)


def for_terminal(verbose: bool, quiet: bool, stream: TextIO | None = None) -> Progress:
    """Nothing with -q; lines with -v; a bar on a terminal; else a heartbeat."""
    stream = stream or sys.stderr
    if quiet:
        return Progress(stream=stream)
    if verbose:
        return Progress(lines=True, verbose=True, stream=stream)
    if stream.isatty():
        return BarProgress(stream)
    return Heartbeat(stream)
