"""One ``-j`` budget for the whole run: at most ``jobs`` evaluations at once, whether
they are release cells or commits of several bisections side by side."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import TypeVar

from harness.host.processes import Cancel

T = TypeVar("T")
R = TypeVar("R")

#: The longest the main thread sleeps waiting for evaluations: a signal another thread
#: receives runs its handler only once the main thread wakes; an untimed wait slept through
#: Ctrl-C until the cell ended (--repeat 50: past the hygiene test's 15 s), servers running.
TICK = 0.1


def result(fut: Future[R], cancel: Cancel | None = None) -> R:
    """``fut.result()``, waking every ``TICK`` (a cancelled run raises here, holding no lock)."""
    while not wait([fut], timeout=TICK).done:
        if cancel is not None:
            cancel.raise_if_set()
    return fut.result()


class Budget:
    def __init__(self, jobs: int, cancel: Cancel) -> None:
        self.jobs = max(1, jobs)
        self.cancel = cancel
        self._pool = ThreadPoolExecutor(max_workers=self.jobs, thread_name_prefix="eval")

    def submit(self, fn: Callable[..., R], *args) -> Future[R]:
        return self._pool.submit(fn, *args)

    def map(self, fn: Callable[[T], R], items: Iterable[T]) -> list[R]:
        """Results in the order of ``items``."""
        futures = [self._pool.submit(fn, item) for item in items]
        return [result(f, self.cancel) for f in futures]

    def unordered(self, fn: Callable[[T], R], items: Iterable[T]) -> Iterator[tuple[int, R]]:
        """(index, result) as each one ends."""
        futures = {self._pool.submit(fn, item): i for i, item in enumerate(items)}
        pending = set(futures)
        while pending:
            done, pending = wait(pending, timeout=TICK, return_when=FIRST_COMPLETED)
            if not done:
                self.cancel.raise_if_set()
            for fut in sorted(done, key=futures.__getitem__):
                yield futures[fut], fut.result()

    def abandon(self) -> None:
        """On Ctrl-C: running evaluations see the cancel, queued ones never start, nobody
        waits (the caller kills every server at once)."""
        self.cancel.set()
        self._pool.shutdown(wait=False, cancel_futures=True)

    def close(self) -> None:
        """Wait for what runs, unless abandoned (nobody waits for a cancelled run)."""
        self._pool.shutdown(wait=not self.cancel.is_set())
