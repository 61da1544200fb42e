"""boots: does the installed server come up and answer at all?

``fail`` when it does not: workers crash on start, the app or the worker class does not
import (eventlet 0.30.3 removed ``ALREADY_HANDLED``, which gunicorn 20.x's eventlet worker
imports), with the log's decisive line quoted.  This is how a dependency breaking gunicorn
at start-up is bisected (``--package eventlet``).  The boot probe does not resolve the
worker class here, so a worker class that fails to import is this scenario's ``fail``,
not an environment that cannot be built (that stays ``error``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.build import worker_libs
from harness.build.interpreters import Interpreter
from harness.host.cancel import Cancel
from harness.model.verdict import Decision, Verdict
from harness.scenarios.base import About, EnvNeeds, Options, Scenario
from harness.scenarios.lifecycle import ServerScenario, server_traceback
from harness.scenarios.server import Server, ServerSpec

NAME = "boots"
DESCRIPTION = "fail when the server does not come up and answer (workers crash, imports fail)"
TITLE = "Gunicorn boots and answers: bisection report"

#: Lines that say the harness, not the build, kept the server from listening.
_NOT_THE_BUILD = re.compile(r"connection to \S+ failed|Address already in use|Retrying in")


@dataclass(frozen=True)
class Observation:
    booted: bool
    reason: str = ""  # the decisive log line of a server that did not come up
    answer: str = ""  # what the readiness probe got ("ok", "HTTP 404")
    worker_class: str | None = None
    traceback: str = ""


def create(options: Options) -> Scenario:
    return Boots(options)


def decisive(reason: str) -> str:
    """The line without the file it names (``... from 'eventlet.wsgi' (/x/y.py)``): the
    same failure reads the same on every target."""
    return re.sub(r" \((?:/|<tmpdir>)[^()]*\)", "", reason).strip()


def decide(obs: Observation) -> Decision:
    """pass: it answered HTTP (any status); fail: it did not come up, with the reason;
    error: what kept it from listening was the host (a bind that failed)."""
    if obs.booted:
        answer = "" if obs.answer in ("", "ok") else f" ({obs.answer})"
        return Decision(Verdict.PASS, f"booted and answered{answer}", obs.traceback)
    if _NOT_THE_BUILD.search(obs.reason):
        return Decision(Verdict.ERROR, f"server could not listen: {obs.reason}", obs.traceback)
    return Decision(Verdict.FAIL, f"did not boot: {decisive(obs.reason)}", obs.traceback)


class Boots(ServerScenario):
    """A plain WSGI app under the chosen worker class: booted and answering, or why not."""

    def __init__(self, options: Options) -> None:
        self.options = options
        self.rules = decide

    def own_needs(self, interp: Interpreter, cache_dir: Path) -> EnvNeeds:
        """The worker class's libraries (a ``--package``/``--with`` pin comes first on the
        path); the probe does not import the worker: that is what is judged here."""
        worker = worker_libs.extras_for(self.options.worker_class, interp, cache_dir)
        return EnvNeeds(extras=tuple(worker))

    def about(self) -> About:
        o = self.options
        parameters = {
            "workers": o.workers or 1,
            "worker_class": o.worker_class or "auto",
            "bind": o.bind,
            "timeout": o.timeout,
            "gunicorn_config": str(o.gunicorn_config) if o.gunicorn_config else None,
            "app": "a plain WSGI Hello World",
        }
        if o.path != "/":
            parameters["path"] = o.path
        summary = f"workers={o.workers or 1} worker_class={o.worker_class or 'auto'}"
        if o.bind != "unix":
            summary += f" bind={o.bind}"
        return About.of(NAME, DESCRIPTION, summary, TITLE, parameters)

    def spec(self, boot_timeout: float) -> ServerSpec:
        o = self.options
        settings: dict[str, Any] = {"workers": o.workers or 1}
        if o.worker_class:
            settings["worker_class"] = o.worker_class
        if o.threads:
            settings["threads"] = o.threads
        return ServerSpec(
            settings=settings,
            config_file=o.gunicorn_config,
            bind=o.bind,
            boot_timeout=boot_timeout,
            path=o.path,
        )

    def act(self, server: Server, deadline: float, cancel: Cancel) -> Observation:
        return Observation(
            True,
            answer=server.probe(path=self.options.path),
            worker_class=server.log.worker_class,
        )

    def not_booted(self, server: Server, reason: str) -> Observation:
        return Observation(
            False,
            reason=server.scrub(reason),
            worker_class=server.log.worker_class,
            traceback=server_traceback(server),
        )
