"""A run of 10 releases with ``--with flask`` on a warm cache against the same run without
it (issue 15's target: within 1.5x).  The installed set is resolved once per interpreter and shared,
so on a warm cache the only extra cost is reading it back and verifying its digest.

    python bench/with_layer.py [--cache-dir DIR] [--runs N]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RELEASES = "20.0.2..23.0.0"  # 10 releases, 20.x (no dependencies) to 23.0.0 (packaging)
TARGET = 1.5


def run(cache: Path, extra: list[str]) -> float:
    """Seconds for one full run (a table of 10 releases, no commits)."""
    argv = [sys.executable, str(ROOT / "bisect.py"), RELEASES, "--no-commits", "-q"]
    argv += ["--format", "json", "--cache-dir", str(cache), "--results-dir", str(cache / "r")]
    started = time.monotonic()
    proc = subprocess.run([*argv, *extra], capture_output=True, text=True, cwd=ROOT)
    seconds = time.monotonic() - started
    if proc.returncode not in (0, 125):
        sys.exit(f"run failed ({proc.returncode}): {proc.stderr.strip()}")
    return seconds


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--cache-dir", type=Path, default=Path("/tmp/gunicorn-bisect-bench-layer"))
    p.add_argument("--runs", type=int, default=3)
    a = p.parse_args()
    cases = {"without": [], "--with flask": ["--with", "flask"]}
    for extra in cases.values():
        run(a.cache_dir, extra)  # warm: environments and the installed set built once
    times = {
        name: [run(a.cache_dir, extra) for _ in range(a.runs)] for name, extra in cases.items()
    }
    for name, seconds in times.items():
        shown = ", ".join(f"{s:.1f}" for s in seconds)
        print(f"{name:>13}: median {statistics.median(seconds):.1f} s ({shown})")
    ratio = statistics.median(times["--with flask"]) / statistics.median(times["without"])
    print(f"ratio {ratio:.2f}x (target <= {TARGET}x): {'met' if ratio <= TARGET else 'NOT met'}")


if __name__ == "__main__":
    main()
