"""fail when the server does not come up and answer (workers crash, imports fail)

``boots`` serves the case's plain app or ``--app``; ``fail`` quotes the log's decisive line
(eventlet 0.30.3 removed ``ALREADY_HANDLED``, which gunicorn 20.x's eventlet worker
imports): how a dependency breaking gunicorn at start-up is bisected (``--package``).  The
import trial does not resolve the worker class here (``JUDGES_IMPORTS``), so a worker
class that fails to import is this case's ``fail``, not an environment ``error``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from harness.model.verdict import Decision, Verdict

NAME = "boots"
TITLE = "Gunicorn boots and answers: bisection report"
SETTINGS = {"workers": 1}
JUDGES_IMPORTS = True

#: Lines that say the harness, not the build, kept the server from listening.
_NOT_THE_BUILD = re.compile(r"connection to \S+ failed|Address already in use|Retrying in")


@dataclass(frozen=True)
class Observation:
    booted: bool
    reason: str = ""  # the decisive log line of a server that did not come up
    answer: str = ""  # what the readiness probe got ("ok", "HTTP 404")
    worker_class: str | None = None
    traceback: str = ""


def decisive(reason: str) -> str:
    """The line without the file it names (``(/x/y.py)``): the same on every target."""
    return re.sub(r" \((?:/|<tmpdir>)[^()]*\)", "", reason).strip()


def decide(obs: Observation) -> Decision:
    """pass: it answered HTTP; fail: it did not come up; error: the host kept it (a bind)."""
    if obs.booted:
        answer = "" if obs.answer in ("", "ok") else f" ({obs.answer})"
        return Decision(Verdict.PASS, f"booted and answered{answer}", obs.traceback)
    if _NOT_THE_BUILD.search(obs.reason):
        return Decision(Verdict.ERROR, f"server could not listen: {obs.reason}", obs.traceback)
    return Decision(Verdict.FAIL, f"did not boot: {decisive(obs.reason)}", obs.traceback)


def observe(server: Any) -> Observation:
    """It booted: what it answered on ``--path`` (the readiness probe's answer again)."""
    return Observation(True, answer=server.probe(), worker_class=server.server.log.worker_class)


def not_booted(reason: str, traceback: str) -> Observation:
    return Observation(False, reason=reason, traceback=traceback)
