"""One server's life, the same for every scenario that boots one: boot, act, stop, result.

A scenario says what to boot, what to do once it serves and what a failed boot is; this
template owns the deadline, the teardown that always runs and what every result carries.
"""

from __future__ import annotations

import abc
import time
from typing import Any

from harness.host.cancel import Cancel
from harness.scenarios.base import RunContext, RunResult, Scenario
from harness.scenarios.server import BootError, Server, ServerSpec

#: At most this long to boot, and never more than half of the run's limit.
BOOT_LIMIT = 10.0


class ServerScenario(Scenario):
    """A scenario that judges one gunicorn the harness boots and owns."""

    @abc.abstractmethod
    def spec(self, boot_timeout: float) -> ServerSpec:
        """What to boot: the app, its settings, where it listens."""

    @abc.abstractmethod
    def act(self, server: Server, deadline: float, cancel: Cancel) -> Any:
        """Exercise the serving server until ``deadline``; the observation.  Whatever
        ``act`` starts it also ends: the server is stopped as soon as it returns."""

    @abc.abstractmethod
    def not_booted(self, server: Server, reason: str) -> Any:
        """The observation of a server that did not come up (``reason``: one line)."""

    def facts(self, server: Server, observation: Any) -> dict[str, Any]:
        """What the row and the JSON show besides the verdict."""
        return {"worker_class": server.log.worker_class}

    def own_app(self, facts: dict[str, Any]) -> dict[str, Any]:
        """The row names the user's ``--app`` when it served instead of the scenario's."""
        return {**facts, "app": self.options.app} if self.options.app else facts

    def run(self, ctx: RunContext, cancel: Cancel) -> RunResult:
        """Boot, act, stop: within ``ctx.timeout`` (plus teardown), never leaking."""
        started = time.monotonic()
        server = Server(ctx, self.spec(boot_timeout=min(BOOT_LIMIT, ctx.timeout / 2)), cancel)
        try:
            try:
                server.start()
            except BootError as exc:
                observation = self.not_booted(server, str(exc))
            else:
                observation = self.act(server, started + ctx.timeout, cancel)
            return RunResult(
                observation,
                log=server.log.refresh(drain=not server.alive()),
                duration=round(time.monotonic() - started, 3),
                boot_seconds=server.boot_seconds,
                compat_used=server.compat_used,
                facts=self.own_app(self.facts(server, observation)),
            )
        finally:
            server.stop()


def server_traceback(server: Server) -> str:
    """The server's last Python traceback, with its private directory as <tmpdir>."""
    server.log.refresh(drain=not server.alive())  # a server that exited wrote it all
    return server.scrub(server.log.last_traceback())
