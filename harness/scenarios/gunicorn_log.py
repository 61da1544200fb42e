"""What gunicorn's own log says (workers booted and exited, the worker class, its settings,
errors and tracebacks), read incrementally while it runs.  The log is the user's code's to
fill (an app writing 100 MB cost 445 MB when the whole text was kept), so the reader keeps
a bounded tail and counts the facts as each chunk is read.
"""

from __future__ import annotations

import codecs
import re
from collections import deque
from dataclasses import dataclass
from pathlib import Path

# gunicorn's name for a worker class in "Using worker: ..." -> the name users pass
_WORKER_NAMES = {"threads": "gthread", "sync": "sync"}

TAIL_CHARS = 1 << 20  # ``text`` keeps between this many and twice as many characters
#: Bytes read at a time, and at most per ``refresh()`` (a server flooding its log must not
#: stall the poll that reads it).
READ_CHUNK = 1 << 20
READ_BUDGET = 32 << 20
LINE_MAX = 64 << 10  # a line this long without a newline is judged as it is
TRACEBACK_MAX = 256 << 10
#: Distinct pids, settings and error lines remembered (a log that invents them is bounded).
PIDS_MAX = 65536
SETTINGS_MAX = 1024
ERRORS_MAX = 256

BOOT = re.compile(r"Booting worker with pid: (\d+)")
EXIT = re.compile(r"Worker exiting \(pid: (\d+)\)")
USING = re.compile(r"Using worker: (\S+)")
SETTING = re.compile(r"^[ \t]+(\w+): (\S+)[ \t]*$", re.M)
ERROR_LINE = re.compile(r"^\[[^]\n]*\] \[\d+\] \[(?:ERROR|CRITICAL)\] (.+)$", re.M)
CRASH = "Exception in worker process"
RETRYING = "Retrying in 1 second"
TRACEBACK = "Traceback (most recent call last)"
#: The boot error's telling lines, most telling first: what a line holds, what it must be.
TELLING = (
    ("connection to ", re.compile(r".*?connection to \S+ failed: (.+)")),
    ("Error: ", re.compile(r"(\w*Error: .+)")),
    ("Exception: ", re.compile(r"(\w*Exception: .+)")),
)
RECORD = re.compile(r"^\[[^]]*\] \[\d+\] \[\w+\] ")
#: gunicorn's own records that say nothing went wrong (not a reason a server exited).
ROUTINE = re.compile(
    r"^(?:Starting gunicorn|Listening at|Using worker|Booting worker|Worker exiting|"
    r"Arbiter booted|Handling signal|Shutting down: Master$|Goodbye)"
)
#: ``path:line: SomeWarning: ...`` (and the source it quotes on the next line, indented):
#: never why a server did not boot (gunicorn 19.x importing pkg_resources).
WARNING = re.compile(r"^\S.*:\d+: \w*Warning: ")


@dataclass(frozen=True)
class _Lasts:
    """The latest of each line ``boot_error`` and ``last_traceback`` choose from."""

    telling: tuple[str, ...] = ("", "", "")  # the last match of each TELLING pattern
    line: str = ""  # the last line that is not DEBUG, blank or a warning
    routine: bool = False  # ... and it is one of gunicorn's routine records
    traceback: str = ""  # from the last "Traceback" line on, as read so far
    tb_open: bool = False  # the traceback may go on in the next lines


def _traceback_block(text: str) -> tuple[str, bool]:
    """The traceback ``text`` starts with, and whether it may go on past ``text``."""
    lines = text.split("\n")
    block = [lines[0]]
    for ln in lines[1:]:
        if ln.startswith("[") and "] [" in ln:  # the next log record
            return "\n".join(block), False
        block.append(ln)
        if ln and not ln[0].isspace():  # the unindented exception line closes it
            return "\n".join(block), False
    return "\n".join(block), True


def _last_line(block: str) -> tuple[str, bool] | None:
    """The block's last line that could say why (not DEBUG, blank or a warning)."""
    lines = block[-LINE_MAX:].splitlines()
    for i in range(len(lines) - 1, -1, -1):
        ln = lines[i].strip()
        if not ln or "DEBUG" in ln or WARNING.match(lines[i]):
            continue
        if lines[i][:1].isspace() and i > 0 and WARNING.match(lines[i - 1]):
            continue  # the source line a warning quotes
        message = RECORD.sub("", ln)
        return message, message != ln and bool(ROUTINE.match(message))
    return None


def _last_traceback_start(block: str) -> int:
    at = len(block)
    while True:
        at = block.rfind(TRACEBACK, 0, at)
        if at <= 0 or block[at - 1] == "\n":
            return at


def _last_telling(block: str, needle: str, line: re.Pattern[str]) -> str | None:
    """The last line of ``block`` holding ``needle`` and matching ``line`` (searched from the
    end: a regex over every line of a flooded log costs 20 ms a MiB)."""
    end = len(block)
    while (at := block.rfind(needle, 0, end)) >= 0:
        start = block.rfind("\n", 0, at) + 1
        stop = block.find("\n", at)
        found = line.fullmatch(block, start, len(block) if stop < 0 else stop)
        if found:
            return found.group(1).strip()
        end = start
    return None


def _fed(lasts: _Lasts, block: str) -> _Lasts:
    """``lasts`` after the complete lines of ``block``."""
    telling = tuple(
        _last_telling(block, needle, line) or old
        for (needle, line), old in zip(TELLING, lasts.telling)
    )
    line, routine = _last_line(block) or (lasts.line, lasts.routine)
    traceback, tb_open = lasts.traceback, lasts.tb_open
    start = _last_traceback_start(block)
    if start >= 0:
        traceback, tb_open = _traceback_block(block[start : start + TRACEBACK_MAX])
    elif tb_open:
        joint = "" if traceback.endswith("\n") else "\n"
        traceback, tb_open = _traceback_block(traceback + joint + block)
    if len(traceback) >= TRACEBACK_MAX:
        traceback, tb_open = traceback[:TRACEBACK_MAX], False
    return _Lasts(telling, line, routine, traceback, tb_open)


class Log:
    """Incremental reader of the server's log file, and what it says."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._offset = 0
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._tail = ""  # the latest text, a partial last line included
        self._dropped = 0  # characters no longer in the tail
        self._pending = ""  # the last line, until its newline arrives
        self._lasts = _Lasts()
        self.boots = 0  # 'Booting worker' lines so far
        self._booted: deque[int] = deque(maxlen=PIDS_MAX)
        self._exited: set[int] = set()
        self._exits_beyond = 0  # exits counted once PIDS_MAX distinct pids were seen
        self.crashes = 0  # "Exception in worker process" lines
        self.retrying = False  # a bind failed and gunicorn retries it
        self._worker_class: str | None = None
        self._settings: dict[str, str] = {}
        self._errors: dict[str, None] = {}

    @classmethod
    def of(cls, text: str) -> Log:
        """What a log's whole ``text`` says (tests, and logs read some other way)."""
        log = cls(None)
        log._feed(text)
        return log

    def refresh(self, drain: bool = False) -> str:
        """Read what the server wrote since the last call, at most READ_BUDGET bytes unless
        ``drain`` (a server that exited: all of it); the tail."""
        if self.path is None:
            return self.text
        read = 0
        try:
            with open(self.path, "rb") as fh:
                fh.seek(self._offset)
                while drain or read < READ_BUDGET:
                    chunk = fh.read(READ_CHUNK)
                    if not chunk:
                        break
                    read += len(chunk)
                    self._offset += len(chunk)
                    self._feed(self._decoder.decode(chunk))
        except OSError:
            pass
        return self.text

    def _feed(self, text: str) -> None:
        self._tail += text
        if len(self._tail) > 2 * TAIL_CHARS:
            cut = self._tail.find("\n", len(self._tail) - TAIL_CHARS) + 1 or len(self._tail)
            cut = min(cut, len(self._tail) - TAIL_CHARS // 2)
            self._dropped += cut
            self._tail = self._tail[cut:]
        pending = self._pending + text
        end = pending.rfind("\n") + 1
        if end == 0 and len(pending) > LINE_MAX:
            end = len(pending)  # one endless line: judge it as it is
        self._pending = pending[end:]
        if end:
            self._count(pending[:end])

    def _count(self, block: str) -> None:
        """Count what the complete lines of ``block`` say."""
        pids = [int(p) for p in BOOT.findall(block)]
        self.boots += len(pids)
        self._booted.extend(pids)
        for pid in map(int, EXIT.findall(block)):
            if pid in self._exited:
                continue
            if len(self._exited) < PIDS_MAX:
                self._exited.add(pid)
            else:
                self._exits_beyond += 1
        if self._worker_class is None and (found := USING.search(block)):
            self._worker_class = found.group(1)
        self.crashes += block.count(CRASH)
        self.retrying = self.retrying or RETRYING in block
        indented = block[:1] in (" ", "\t") or "\n " in block or "\n\t" in block
        for name, value in SETTING.findall(block) if indented else ():
            if name not in self._settings and len(self._settings) < SETTINGS_MAX:
                self._settings[name] = value
        errors = "] [ERROR] " in block or "] [CRITICAL] " in block
        for line in ERROR_LINE.findall(block) if errors else ():
            if line not in self._errors:  # in the order each was first seen
                self._errors[line] = None
                if len(self._errors) > ERRORS_MAX:
                    del self._errors[next(iter(self._errors))]
        self._lasts = _fed(self._lasts, block)

    def _latest(self) -> _Lasts:
        """The lasts with the partial last line judged as if it were complete."""
        if not self._pending:
            return self._lasts
        return _fed(self._lasts, self._pending + "\n")

    @property
    def text(self) -> str:
        """The log's latest 1-2 MiB (a first line says how much came before it)."""
        if not self._dropped:
            return self._tail
        return f"[gunicorn-bisect: {self._dropped} earlier characters not kept]\n{self._tail}"

    @property
    def exits(self) -> int:
        """Distinct workers logged as exiting."""
        return len(self._exited) + self._exits_beyond

    @property
    def booted_pids(self) -> list[int]:
        """Every worker that booted so far (the latest PIDS_MAX), oldest first."""
        return list(self._booted)

    @property
    def worker_pids(self) -> list[int]:
        """Workers booted and not (yet) logged as exiting, oldest first."""
        return [p for p in self._booted if p not in self._exited]

    @property
    def worker_class(self) -> str | None:
        name = self._worker_class
        if name is None:
            return None
        if name in _WORKER_NAMES:
            return _WORKER_NAMES[name]
        # gunicorn's own classes by their short name; a third party's (uvicorn_worker.
        # UvicornWorker) as given, so the table does not warn it differed from what was asked
        return name.rsplit(".", 1)[-1] if name.startswith("gunicorn.") else name

    def errors(self, limit: int = 3) -> list[str]:
        """The arbiter's and workers' own error lines, quoted as evidence."""
        return list(self._errors)[-limit:]

    def setting(self, name: str) -> str | None:
        """A setting as the arbiter logged it at debug level: the server's own (a user's
        config file may decide workers and max_requests), not our defaults."""
        return self._settings.get(name)

    def last_traceback(self) -> str:
        """The last Python traceback (a worker's, in the failing case)."""
        return self._latest().traceback.strip()

    def boot_error(self, routine: bool = True) -> str:
        """The most telling line of a server that did not come up, or "";  ``routine=False``:
        gunicorn's routine records do not count (a server that exited: not why it did)."""
        lasts = self._latest()
        for found in lasts.telling:
            if found:
                return found
        return lasts.line if routine or not lasts.routine else ""
