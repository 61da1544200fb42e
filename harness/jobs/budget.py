"""One ``-j`` budget for the whole run: at most ``jobs`` evaluations at once, whether
they are release cells or commits of several bisections side by side."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from typing import TypeVar

from harness.host.cancel import Cancel

T = TypeVar("T")
R = TypeVar("R")


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
        return [f.result() for f in futures]

    def unordered(self, fn: Callable[[T], R], items: Iterable[T]) -> Iterator[tuple[int, R]]:
        """(index, result) as each one ends."""
        futures = {self._pool.submit(fn, item): i for i, item in enumerate(items)}
        for fut in as_completed(futures):
            yield futures[fut], fut.result()

    def abandon(self) -> None:
        """On Ctrl-C: running evaluations see the cancel and tear down, queued ones never
        start, and nobody waits for them (the caller kills every server at once)."""
        self.cancel.set()
        self._pool.shutdown(wait=False, cancel_futures=True)

    def close(self) -> None:
        """Wait for what runs, unless abandoned (nobody waits for a cancelled run)."""
        self._pool.shutdown(wait=not self.cancel.is_set())
