#!/usr/bin/env python3
"""Is this checkout's default job as fast as an older revision's?  Both timed on the same
machine, warm, interleaved (old, new, old, new ...), so that load and caches hit both alike.

    .venv/bin/python bench/versus.py --old REV --repo CLONE [--rounds 5] [-- EXTRA ARGS]

REV is a commit of this project (checked out into a temporary git worktree); CLONE a local
clone of gunicorn (only read).  Each side gets its own cache, warmed by one untimed run;
then each round runs ``bisect.py 19.5.0..19.7.0 --repo CLONE`` once per side.  Python's
bytecode is written as a user's would be (PYTHONDONTWRITEBYTECODE is unset), so neither
side pays for compiling its modules on every start.  Prints every time, the medians and
the ratio new/old; exit status 1 if the two sides print different answers.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RANGE = "19.5.0..19.7.0"


def timed(checkout: Path, cache: Path, repo: str, extra: list[str]) -> tuple[float, str]:
    """(wall seconds, the answer: every transition's commit) of one run of the default job."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    cmd = [sys.executable, str(checkout / "bisect.py"), RANGE, "--repo", repo]
    cmd += ["--cache-dir", str(cache), "--format", "json", *extra]
    start = time.monotonic()
    proc = subprocess.run(cmd, cwd=checkout, env=env, capture_output=True, text=True)
    seconds = time.monotonic() - start
    if proc.returncode != 0:
        sys.exit(f"versus: {checkout.name}: exit {proc.returncode}: {proc.stderr.strip()[-300:]}")
    doc = json.loads(proc.stdout)
    found = [
        (e.get("commit") or {}).get("sha")
        for key in ("regressions", "fixes")
        for e in doc.get(key, [])
    ]
    return seconds, " ".join(str(s)[:12] for s in found)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--old", required=True, help="the older revision of this project")
    ap.add_argument("--repo", required=True, help="a local clone of gunicorn")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("extra", nargs="*", help="more bisect.py arguments, after --")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="gunicorn-bisect-versus-") as tmp:
        old = Path(tmp) / "old"
        subprocess.run(
            ["git", "-C", str(ROOT), "worktree", "add", "-q", "--detach", str(old), args.old],
            check=True,
        )
        try:
            sides = {"old": old, "new": ROOT}
            caches = {name: Path(tmp) / f"cache-{name}" for name in sides}
            answers = {}
            for name, checkout in sides.items():  # warm each cache, untimed
                answers[name] = timed(checkout, caches[name], args.repo, args.extra)[1]
                print(f"warmed {name}: {answers[name]}")
            times: dict[str, list[float]] = {name: [] for name in sides}
            for n in range(args.rounds):
                for name, checkout in sides.items():
                    seconds, _ = timed(checkout, caches[name], args.repo, args.extra)
                    times[name].append(seconds)
                    print(f"round {n + 1} {name}: {seconds:.2f} s")
        finally:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(old)])
    med = {name: statistics.median(t) for name, t in times.items()}
    for name, t in times.items():
        print(f"{name}: median {med[name]:.2f} s, min {min(t):.2f}, max {max(t):.2f}")
    print(f"new/old: {med['new'] / med['old']:.2f}")
    if answers["old"] != answers["new"]:
        print(f"the answers differ: old {answers['old']!r}, new {answers['new']!r}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
