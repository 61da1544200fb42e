#!/usr/bin/env python3
"""Soak test: does the scenario give the same verdict every time?

    .venv/bin/python bench/soak.py [-n 50] [--releases 19.5.0,19.6.0,19.7.0]
                                   [--cache-dir DIR] [--python X.Y|PATH]

Runs the socket-loss scenario N times on each release and prints, per release, how
many runs gave each verdict, the scenario time (median / max), and whether any verdict
flipped.  Exit status 1 if a release did not give one verdict in all N runs.

It imports harness.runner.Runner and calls ``Runner.evaluate`` in this process, wired
exactly as ``bisect.py --check`` wires it (kernel answer and compat shim, interpreter
discovery, default scenario parameters), so the N runs measure the scenario, not the
~1 s start-up of a ``bisect.py`` process.  The environment of each release is built
(or found in the cache) once, by the first run.
"""

from __future__ import annotations

import argparse
import collections
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# Appended, not prepended: ROOT holds bisect.py, which must not shadow the stdlib module.
if str(ROOT) not in sys.path:
    sys.path.append(str(ROOT))

from harness.host import compat, processes  # noqa: E402
from harness.host.processes import Cancel  # noqa: E402
from harness.jobs.setup import Runner  # noqa: E402
from harness.jobs.target import fetched  # noqa: E402
from harness.provision import index, interpreters, wheels  # noqa: E402
from harness.scenarios import base, registry  # noqa: E402


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("-n", type=int, default=50, help="runs per release (default 50)")
    p.add_argument("--releases", default="19.5.0,19.6.0,19.7.0")
    p.add_argument("--scenario", default="socket-loss", help="a built-in scenario or a file")
    p.add_argument("--cache-dir", type=Path, help="default: the harness's user cache dir")
    p.add_argument("--python", help="X.Y or a path (default: as the harness chooses)")
    args = p.parse_args()
    if args.n < 1:
        p.error("-n must be at least 1")
    if args.cache_dir is None:
        from platformdirs import user_cache_dir

        args.cache_dir = Path(user_cache_dir("gunicorn-bisect"))
    cache = args.cache_dir.expanduser()
    cache.mkdir(parents=True, exist_ok=True)

    kernel = compat.ask_kernel()
    found = interpreters.discover(cache)
    override = interpreters.select(args.python, found) if args.python else None
    compat_dir = compat.write_shim() if kernel.reuseport_unix_rejected else None
    cancel = Cancel()  # a fresh one per session: a library caller can run again after Ctrl-C
    scenario = registry.create(args.scenario, base.Options())
    runner = Runner(cache, found, scenario, compat_dir, override, repeat=1, cancel=cancel)
    project = index.project("gunicorn", cache)
    releases = [v.strip() for v in args.releases.split(",") if v.strip()]

    print(f"soak: {args.n} runs per release; {kernel.describe()}; cache {cache}")
    flipped = []
    t_start = time.monotonic()
    try:
        for version in releases:
            artifact = wheels.gunicorn_release(version, cache, project)
            counts: collections.Counter[str] = collections.Counter()
            details: dict[str, str] = {}
            seconds: list[float] = []
            pythons = set()
            t0 = time.monotonic()
            for i in range(args.n):
                row = runner.evaluate(fetched(artifact))
                counts[row.verdict.value] += 1
                details.setdefault(row.verdict.value, row.detail)
                if i > 0 or row.reused_env:  # the first run may include building the env
                    seconds.append(row.seconds)
                pythons.add(row.python)
            wall = time.monotonic() - t0
            summary = ", ".join(f"{v} {n}" for v, n in counts.most_common())
            timing = (
                f"scenario median {statistics.median(seconds):.2f} s, max {max(seconds):.2f} s"
                if seconds
                else "no timing"
            )
            flip = len(counts) > 1
            if flip:
                flipped.append(version)
            print(
                f"{version} (Python {', '.join(sorted(p or '?' for p in pythons))}): {summary}"
                f" -> {'FLIPPED' if flip else 'stable'}; {timing}; {wall:.1f} s total"
            )
            for v, d in details.items():
                print(f"    {v}: e.g. {d}")
    except KeyboardInterrupt:
        cancel.set()
        print("soak: interrupted", file=sys.stderr)
        return 130
    finally:
        processes.terminate_all()
    total = time.monotonic() - t_start
    if flipped:
        print(f"soak: verdict flipped for {', '.join(flipped)} ({total:.0f} s)")
        return 1
    print(f"soak: no verdict flipped ({len(releases)} releases x {args.n} runs, {total:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
