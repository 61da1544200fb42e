"""A process's resources read from /proc: open fds by kind, threads, children, zombies.

Why: leaks are a class of regression of their own (#3648: the arbiter's fds go
12 -> 36 and its threads 2 -> 8 over 5 SIGHUPs), and a scenario that can only send
requests cannot see them.  Each read returns a frozen snapshot that a pure ``decide``
compares (before and after an action); nothing here judges.  Linux only.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

PROC = Path("/proc")


class ProcessGone(ProcessLookupError):
    """The process exited (or was reaped) while we read it: an observation, not a bug."""


@dataclass(frozen=True)
class Fds:
    """Open file descriptors by kind, as /proc/PID/fd's links name them."""

    sockets: int = 0  # socket:[inode]
    pipes: int = 0  # pipe:[inode]
    files: int = 0  # a path: regular files, devices, directories
    other: int = 0  # anon_inode:[eventpoll], [eventfd], ...

    @property
    def total(self) -> int:
        return self.sockets + self.pipes + self.files + self.other

    def as_json(self) -> dict:
        return {
            "total": self.total,
            "sockets": self.sockets,
            "pipes": self.pipes,
            "files": self.files,
            "other": self.other,
        }


@dataclass(frozen=True)
class Snapshot:
    """One process at one moment: what a leak or a lost worker shows up in."""

    pid: int
    state: str  # R, S, Z, ... (/proc/PID/stat)
    fds: Fds
    threads: int
    children: tuple[int, ...]
    zombies: tuple[int, ...]  # children in state Z: exited, not yet reaped

    def as_json(self) -> dict:
        return {
            "pid": self.pid,
            "state": self.state,
            "fds": self.fds.as_json(),
            "threads": self.threads,
            "children": list(self.children),
            "zombies": list(self.zombies),
        }


def _stat(pid: int) -> tuple[str, int]:
    """(state, parent pid) from /proc/PID/stat; the command name may hold spaces or ')'."""
    try:
        text = (PROC / str(pid) / "stat").read_text()
    except (FileNotFoundError, ProcessLookupError) as exc:
        raise ProcessGone(pid) from exc
    fields = text[text.rindex(")") + 2 :].split()
    return fields[0], int(fields[1])


def start_time(pid: int) -> str | None:
    """``pid``'s start time (clock ticks since boot, field 22 of its stat), which tells it
    from a later process given the same pid; None if it is gone."""
    try:
        text = (PROC / str(pid) / "stat").read_text()
        return text[text.rindex(")") + 2 :].split()[19]
    except (OSError, ValueError, IndexError):
        return None


def state(pid: int) -> str:
    """R, S, Z, ... of ``pid``; raises ``ProcessGone`` if it is not there."""
    return _stat(pid)[0]


def _kind(link: str) -> str:
    if link.startswith("socket:"):
        return "sockets"
    if link.startswith("pipe:"):
        return "pipes"
    if link.startswith("/"):
        return "files"
    return "other"


def fds(pid: int) -> Fds:
    """Count ``pid``'s open fds by kind (an fd closed while we read it is skipped)."""
    where = PROC / str(pid) / "fd"
    try:
        names = os.listdir(where)
    except (FileNotFoundError, ProcessLookupError) as exc:
        raise ProcessGone(pid) from exc
    counts = {"sockets": 0, "pipes": 0, "files": 0, "other": 0}
    for name in names:
        try:
            counts[_kind(os.readlink(where / name))] += 1
        except FileNotFoundError:
            continue
    return Fds(**counts)


def threads(pid: int) -> int:
    try:
        return len(os.listdir(PROC / str(pid) / "task"))
    except (FileNotFoundError, ProcessLookupError) as exc:
        raise ProcessGone(pid) from exc


def children(pid: int) -> tuple[int, ...]:
    """``pid``'s direct children, from every process's parent pid (no kernel option needed)."""
    found = []
    for entry in PROC.glob("[0-9]*"):
        try:
            if _stat(int(entry.name))[1] == pid:
                found.append(int(entry.name))
        except (ProcessGone, ValueError, OSError):
            continue
    return tuple(sorted(found))


def descendants(pid: int) -> list[int]:
    """``pid``'s children, theirs and so on, as the parent pids in /proc say right now."""
    kids: dict[int, list[int]] = {}
    for entry in PROC.glob("[0-9]*"):
        try:
            kids.setdefault(_stat(int(entry.name))[1], []).append(int(entry.name))
        except (ProcessGone, ValueError, OSError):
            continue
    found, todo = [], [pid]
    while todo:
        for kid in kids.get(todo.pop(), ()):
            if kid not in found and kid != pid:
                found.append(kid)
                todo.append(kid)
    return found


def snapshot(pid: int) -> Snapshot:
    """Everything above for ``pid``; raises ``ProcessGone`` if it is not there."""
    state, _ = _stat(pid)
    kids = children(pid)
    zombies = []
    for kid in kids:
        try:
            if _stat(kid)[0] == "Z":
                zombies.append(kid)
        except ProcessGone:
            continue
    return Snapshot(pid, state, fds(pid), threads(pid), kids, tuple(zombies))
