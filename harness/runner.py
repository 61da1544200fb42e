"""Evaluate one target: pick an interpreter, build or reuse its environment, run the
scenario (``repeat`` times), decide.  The one place where the effects meet.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from . import envs
from .artifacts import Artifact, ArtifactError
from .interpreters import Interpreter, how_to_get, order
from .scenarios import processes, socket_loss
from .verdict import Outcome, Verdict, combine, decide

# Only a hint for the message when nothing fits; the choice itself is made by evidence.
_KNOWN_NEEDS = {"19.": "3.9"}


class NoInterpreter(Exception):
    """No interpreter on this machine can run the target (exit status 2)."""


@dataclass(frozen=True)
class Row:
    """One line of the report: a target, where it ran, and what it did."""

    target: str
    verdict: Verdict
    detail: str
    python: str | None = None
    kind: str = "release"  # or "commit"
    sha: str | None = None
    compat: bool = False
    traceback: str = ""
    reused_env: bool = False
    seconds: float = 0.0
    runs: tuple[str, ...] = ()
    tried: tuple[str, ...] = ()  # interpreters that could not boot it, with why
    bottle: str | None = None  # the app's bottle version in that environment
    env_seconds: float = 0.0  # finding or building the environment (bench/ breakdown)
    boot_seconds: float = 0.0  # of ``seconds``, waiting for gunicorn to listen

    def as_json(self) -> dict:
        return {
            "target": self.target,
            "kind": self.kind,
            "sha": self.sha,
            "python": self.python,
            "verdict": self.verdict.value,
            "detail": self.detail,
            "compat": self.compat,
            "traceback": self.traceback,
            "reused_env": self.reused_env,
            "seconds": round(self.seconds, 3),
            "runs": list(self.runs),
            "tried": list(self.tried),
            "bottle": self.bottle,
            "env_seconds": round(self.env_seconds, 3),
            "boot_seconds": round(self.boot_seconds, 3),
        }


@dataclass
class Runner:
    """Everything fixed for a run: where to cache, which Pythons, scenario parameters."""

    cache_dir: Path
    interpreters: Sequence[Interpreter]
    params: socket_loss.Params
    compat_dir: Path | None = None
    override: Interpreter | None = None
    repeat: int = 1
    on_log: Callable[[str, str], None] | None = None
    progress: Callable[[str], None] = lambda msg: None

    def _candidates(self) -> list[Interpreter]:
        """Newest first, every time: the newest Python that boots a release is the answer,
        and each refusal is cached evidence (envs.preflight), cheap to read again."""
        if self.override is not None:
            return [self.override]
        return order(self.interpreters)

    def environment(self, artifact: Artifact) -> tuple[envs.Environment, list[str]]:
        """The newest interpreter whose environment boots this gunicorn, with the evidence."""
        tried: list[str] = []
        for interp in self._candidates():
            if processes.STOP.is_set():
                raise KeyboardInterrupt
            self.progress(f"{artifact.label}: environment on Python {interp.version}")
            refused = envs.preflight(
                artifact, interp, self.cache_dir, self.params.worker_class or ""
            )
            if refused:
                tried.append(f"{interp.version}: {refused}")
                continue
            env = envs.ensure(artifact, interp, self.cache_dir, self.params.worker_class or "")
            if env.works:
                return env, tried
            tried.append(f"{interp.version}: {env.reason}")
        if self.override is not None:
            raise NoInterpreter(
                f"--python {self.override.version} cannot run gunicorn {artifact.label}: "
                f"{tried[0].split(': ', 1)[1]}"
            )
        need = next((v for k, v in _KNOWN_NEEDS.items() if artifact.version.startswith(k)), None)
        hint = f"; it likely needs Python <= {need}: {how_to_get(need)}" if need else ""
        found = ", ".join(i.version for i in self.interpreters) or "none"
        raise NoInterpreter(
            f"no Python found here can run gunicorn {artifact.label} (tried {found}){hint}"
        )

    def evaluate(
        self, artifact: Artifact, kind: str = "release", interpreter: Interpreter | None = None
    ) -> Row:
        """Run the scenario on ``artifact``; install and boot problems become ``error`` rows.

        With ``interpreter`` (commits: the Python that ran the releases around them) only
        that one is tried, so a commit that cannot boot is untestable, not a reason to
        go hunting for another Python.
        """
        if processes.STOP.is_set():
            raise KeyboardInterrupt
        t0 = time.monotonic()
        try:
            if interpreter is not None:
                env = envs.ensure(
                    artifact, interpreter, self.cache_dir, self.params.worker_class or ""
                )
                tried: list[str] = []
                if not env.works:
                    return Row(
                        artifact.label,
                        Verdict.ERROR,
                        f"cannot boot on Python {interpreter.version}: {env.reason}",
                        python=interpreter.version,
                        kind=kind,
                        sha=artifact.sha,
                    )
            else:
                env, tried = self.environment(artifact)
        except (ArtifactError, envs.EnvError) as exc:
            return Row(
                artifact.label, Verdict.ERROR, f"install failed: {exc}", kind=kind, sha=artifact.sha
            )
        env_seconds = time.monotonic() - t0
        outcomes: list[Outcome] = []
        seconds = boot = 0.0
        for i in range(self.repeat):
            suffix = f" (run {i + 1}/{self.repeat})" if self.repeat > 1 else ""
            self.progress(f"{artifact.label}: scenario on Python {env.interpreter.version}{suffix}")
            result = socket_loss.run(env.python, self.params, self.compat_dir)
            if processes.STOP.is_set():
                raise KeyboardInterrupt  # a run cut short by Ctrl-C is not evidence
            if self.on_log is not None:
                self.on_log(artifact.label, result.log)
            seconds += result.observation.duration
            boot += result.observation.boot_seconds
            outcomes.append(decide(result.observation))
        out = combine(outcomes)
        detail = out.detail
        if out.compat_used:
            detail += " (compat: SO_REUSEPORT on AF_UNIX accepted as a no-op)"
        return Row(
            target=artifact.label,
            verdict=out.verdict,
            detail=detail,
            python=env.interpreter.version,
            kind=kind,
            sha=artifact.sha,
            compat=out.compat_used,
            traceback=out.traceback,
            reused_env=env.reused,
            seconds=seconds,
            runs=tuple(v.value for v in out.runs),
            tried=tuple(tried),
            bottle=env.bottle,
            env_seconds=env_seconds,
            boot_seconds=boot,
        )
