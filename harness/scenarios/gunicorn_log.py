"""What gunicorn's own log says (workers booted and exited, the worker class, its
settings, errors and tracebacks): pure parsing, read incrementally while it runs."""

from __future__ import annotations

import codecs
import re
from pathlib import Path

# gunicorn's name for a worker class in "Using worker: ..." -> the name users pass
_WORKER_NAMES = {"threads": "gthread", "sync": "sync"}


class Log:
    """Incremental reader of the server's log file, and what it says."""

    BOOT = re.compile(r"Booting worker with pid: (\d+)")
    EXIT = re.compile(r"Worker exiting \(pid: (\d+)\)")
    USING = re.compile(r"Using worker: (\S+)")

    def __init__(self, path: Path) -> None:
        self.path = path
        self.text = ""
        self._offset = 0
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")

    def refresh(self) -> str:
        """Append what the server wrote since the last call (polled every few ms)."""
        try:
            with open(self.path, "rb") as fh:
                fh.seek(self._offset)
                chunk = fh.read()
        except OSError:
            return self.text
        self._offset += len(chunk)
        self.text += self._decoder.decode(chunk)
        return self.text

    @property
    def boots(self) -> int:
        return len(self.BOOT.findall(self.text))

    @property
    def exits(self) -> int:
        return len(set(self.EXIT.findall(self.text)))

    @property
    def booted_pids(self) -> list[int]:
        """Every worker that booted so far, oldest first."""
        return [int(p) for p in self.BOOT.findall(self.text)]

    @property
    def worker_pids(self) -> list[int]:
        """Workers booted and not (yet) logged as exiting, oldest first."""
        gone = {int(p) for p in self.EXIT.findall(self.text)}
        return [p for p in self.booted_pids if p not in gone]

    @property
    def worker_class(self) -> str | None:
        found = self.USING.search(self.text)
        if not found:
            return None
        name = found.group(1)
        if name in _WORKER_NAMES:
            return _WORKER_NAMES[name]
        # gunicorn's own classes by their short name; a third party's (uvicorn_worker.
        # UvicornWorker) as given, so the table does not warn it differed from what was asked
        return name.rsplit(".", 1)[-1] if name.startswith("gunicorn.") else name

    def errors(self, limit: int = 3) -> list[str]:
        """The arbiter's and workers' own error lines, quoted as evidence."""
        found = re.findall(r"^\[[^]]*\] \[\d+\] \[(?:ERROR|CRITICAL)\] (.+)$", self.text, re.M)
        return list(dict.fromkeys(found))[-limit:]


def last_traceback(log: str) -> str:
    """The last Python traceback in a gunicorn log (a worker's, in the failing case)."""
    lines = log.splitlines()
    starts = [i for i, ln in enumerate(lines) if ln.startswith("Traceback (most recent call last)")]
    if not starts:
        return ""
    block = [lines[starts[-1]]]
    for ln in lines[starts[-1] + 1 :]:
        if ln.startswith("[") and "] [" in ln:  # the next log record
            break
        block.append(ln)
        if ln and not ln[0].isspace():  # the unindented exception line closes it
            break
    return "\n".join(block).strip()


def effective_setting(log: str, name: str) -> str | None:
    """A setting as the arbiter reports it ("Current configuration:" at debug level).

    With ``--gunicorn-config`` the user's file decides workers and max_requests; the
    counts a scenario waits for must be the server's own, not our defaults.
    """
    found = re.search(rf"^\s+{re.escape(name)}: (\S+)\s*$", log, flags=re.M)
    return found.group(1) if found else None


def boot_error(log: str) -> str:
    """The most telling line of a server that did not come up."""
    for pattern in (
        r"connection to \S+ failed: (.+)",
        r"^(\w*Error: .+)$",
        r"^(\w*Exception: .+)$",
    ):
        found = re.findall(pattern, log, flags=re.M)
        if found:
            return found[-1].strip()
    for ln in reversed(log.splitlines()):
        if ln.strip() and "DEBUG" not in ln:
            return re.sub(r"^\[[^]]*\] \[\d+\] \[\w+\] ", "", ln.strip())
    return "no output"
