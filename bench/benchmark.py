#!/usr/bin/env python3
"""Time the harness against the plain recipe, on the same machine, in one run.

    .venv/bin/python bench/benchmark.py --repo PATH [--skip-plain] [--python PY] [-j N]

PATH is a local clone (or bare mirror) of https://github.com/benoitc/gunicorn; it is
only read.  Measured, all for ``19.5.0..19.7.0 --repo PATH --format json``:

(a) plain: bench/plain_recipe.sh (fresh venv + pip per step, ``git bisect run``) over
    the same work: the 3 releases, then 19.5.0..19.6.0 and 19.6.0..19.7.0 bisected;
(b) cold: ``bisect.py`` with a fresh, empty ``--cache-dir``;
(c) warm: the same command again on that cache;
(d) one scenario on a built environment: ``bisect.py --check 19.6.0`` on the warm
    cache (wall time, process start-up included) and the row's ``seconds`` field
    (the scenario alone) from ``bisect.py 19.6.0 --no-commits --format json``.

Prints the wall times, the ratios, the harness's per-step breakdown from its JSON, the
commits each method named, and whether the targets in bench/README.md are met.  Exit
status 1 when the harness names the wrong commits, 0 otherwise.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RANGE = "19.5.0..19.7.0"
EXPECTED = {
    "regression": ("418f1404", "remove file locking", None),
    "fix": ("0be79968", "Refactor socket activation and fd inheritance (#1310)", "1db805c7"),
}
# issue 11's targets (the second round): see bench/README.md
TARGETS = {
    "cold_max": 12.0,
    "warm_max": 4.0,
    "cold_ratio": 6.0,
    "warm_ratio": 18.0,
    "scenario_max": 1.5,
    "cpu_per_eval": 0.25,
}


def harness_cmd(args: argparse.Namespace, *rest: str) -> list[str]:
    cmd = [sys.executable, str(ROOT / "bisect.py"), *rest]
    if args.python:
        cmd += ["--python", args.python]
    if args.jobs:
        cmd += ["-j", str(args.jobs)]
    return cmd


CPU: dict[str, float] = {}  # label -> CPU seconds of the run (itself and what it reaped)


def timed(cmd: list[str], label: str) -> tuple[float, subprocess.CompletedProcess]:
    import resource

    print(f"[bench] {label}: {' '.join(cmd)}", file=sys.stderr, flush=True)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.monotonic()
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    wall = time.monotonic() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    CPU[label] = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    print(f"[bench] {label}: {wall:.1f} s, exit {proc.returncode}", file=sys.stderr, flush=True)
    return wall, proc


def run_plain(args: argparse.Namespace) -> tuple[float, list[str]]:
    """Run the plain recipe, echoing each of its result lines with its arrival time."""
    cmd = [str(HERE / "plain_recipe.sh"), "--repo", args.repo]
    if args.python:
        cmd += ["--python", args.python]
    print(f"[bench] plain: {' '.join(cmd)}", file=sys.stderr, flush=True)
    t0 = time.monotonic()
    lines = []
    with subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, cwd=ROOT
    ) as proc:
        assert proc.stdout is not None
        for line in proc.stdout:
            line = line.rstrip("\n")
            lines.append(f"  +{time.monotonic() - t0:6.1f} s  {line}")
            print(f"[bench] plain +{time.monotonic() - t0:.1f} s: {line}", file=sys.stderr)
    wall = time.monotonic() - t0
    if proc.returncode != 0:
        lines.append(f"  (plain recipe exited {proc.returncode})")
    return wall, lines


def load_json(proc: subprocess.CompletedProcess, label: str) -> dict:
    try:
        return json.loads(proc.stdout)
    except ValueError:
        tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        raise SystemExit(
            f"benchmark: {label}: no JSON report (exit {proc.returncode}): {tail}"
        ) from None


def evaluations(report: dict) -> list[dict]:
    """Every evaluation of the run, as {kind, build, env, boot, scenario} seconds."""
    out = [
        {
            "kind": "release",
            "build": 0.0,
            "env": r["env_seconds"],
            "boot": r["boot_seconds"],
            "scenario": r["seconds"],
        }
        for r in report["rows"]
    ]
    for t in report["regressions"] + report["fixes"]:
        for s in (t.get("commit") or {}).get("steps", []):
            out.append(
                {
                    "kind": "commit",
                    "build": s["build_seconds"],
                    "env": s["env_seconds"],
                    "boot": s["boot_seconds"],
                    "scenario": s["scenario_seconds"],
                }
            )
    return out


def breakdown(report: dict, label: str) -> list[str]:
    evs = evaluations(report)
    groups = [("all", evs)] + [
        (k, [e for e in evs if e["kind"] == k]) for k in ("release", "commit")
    ]
    counts = ", ".join(f"{len(g)} {k}s" for k, g in groups[1:])
    lines = [
        f"{label}: {len(evs)} evaluations ({counts}); seconds, sum / median",
        f"  {'':9}" + "".join(f"{k + f' ({len(g)})':>20}" for k, g in groups),
    ]
    for key in ("build", "env", "boot", "scenario"):
        cells = []
        for _, g in groups:
            values = [e[key] for e in g] or [0.0]
            cells.append(f"{sum(values):9.2f} / {statistics.median(values):6.3f}")
        lines.append(f"  {key:9}" + "".join(f"{c:>20}" for c in cells))
    lines.append("  (build: commit wheels only; boot is part of scenario; sums add up")
    lines.append("   work done in parallel, so they can exceed the wall time)")
    return lines


def answers(report: dict) -> tuple[list[str], bool]:
    lines, ok = [], True
    for t in report["rows"]:
        lines.append(f"  release {t['target']}: {t['verdict']}")
    for kind, items in (("regression", report["regressions"]), ("fix", report["fixes"])):
        want_sha, want_subject, want_pick = EXPECTED[kind]
        if len(items) != 1:
            lines.append(f"  {kind}: expected one, got {len(items)}")
            ok = False
            continue
        t = items[0]
        c = t.get("commit") or {}
        rng = f"{t.get('last_good') or t.get('last_bad')}..{t.get('first_bad') or t.get('first_good')}"
        needed = ", ".join(n[:8] for n in c.get("needed", [])) or None
        good = (
            c.get("status") == "found"
            and (c.get("sha") or "").startswith(want_sha)
            and (needed or None) == want_pick
        )
        ok = ok and good
        pick = f", needs {needed} picked on top" if needed else ""
        pr = f", PR #{c['pr']}" if c.get("pr") else ""
        lines.append(
            f"  {kind} {rng}: {c.get('status')} {(c.get('sha') or '?')[:8]} "
            f"{c.get('subject')!r}{pr}{pick} ({len(c.get('steps', []))} steps) "
            f"[{'OK' if good else 'WRONG, expected ' + want_sha}]"
        )
        for step in c.get("steps", []):
            if step["verdict"] not in ("pass", "fail"):
                pick = f"+{step['picked'][:8]}" if step.get("picked") else ""
                lines.append(
                    f"    untestable step {step['sha'][:8]}{pick}: {step['verdict']}: {step['detail']}"
                )
    return lines, ok


def verdict(ok: bool) -> str:
    return "met" if ok else "MISSED"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--repo", required=True, help="local clone or bare mirror of gunicorn")
    p.add_argument("--skip-plain", action="store_true", help="do not run the plain recipe")
    p.add_argument("--python", help="interpreter for both methods (default: each one's choice)")
    p.add_argument("-j", "--jobs", type=int, help="harness parallelism (default: its own)")
    p.add_argument("--keep-cache", action="store_true", help="keep the cold/warm cache dir")
    args = p.parse_args()
    args.repo = str(Path(args.repo).expanduser().resolve())
    if not Path(args.repo).exists():
        p.error(f"--repo {args.repo}: no such directory")

    out: list[str] = [
        f"host: {os.uname().sysname} {os.uname().release}, {os.cpu_count()} CPUs; "
        f"harness -j {args.jobs or os.cpu_count()}; repo {args.repo}"
    ]
    plain_wall = None
    if not args.skip_plain:
        plain_wall, plain_lines = run_plain(args)
        out.append(f"(a) plain recipe: {plain_wall:.1f} s")
        out += plain_lines

    tmp = Path(tempfile.mkdtemp(prefix="gunicorn-bisect-bench-"))
    cache, results = tmp / "cache", tmp / "results"
    try:
        full = [RANGE, "--repo", args.repo, "--format", "json", "--cache-dir", str(cache)]
        full += ["--results-dir", str(results), "-q"]
        cold_wall, cold_proc = timed(harness_cmd(args, *full), "cold")
        cold = load_json(cold_proc, "cold run")
        warm_wall, warm_proc = timed(harness_cmd(args, *full), "warm")
        warm = load_json(warm_proc, "warm run")
        check_wall, check_proc = timed(
            harness_cmd(args, "--check", "19.6.0", "--cache-dir", str(cache), "-q"),
            "check 19.6.0",
        )
        _, one_proc = timed(
            harness_cmd(
                args,
                "19.6.0",
                "--no-commits",
                "--format",
                "json",
                "--cache-dir",
                str(cache),
                "--results-dir",
                str(results),
                "-q",
            ),
            "one row 19.6.0",
        )
        one = load_json(one_proc, "19.6.0 row")["rows"][0]
    finally:
        if args.keep_cache:
            print(f"[bench] cache kept in {cache}", file=sys.stderr)
        else:
            shutil.rmtree(tmp, ignore_errors=True)

    evals = len(warm.get("rows", [])) + sum(
        len((f.get("commit") or {}).get("steps", []))
        for f in warm.get("regressions", []) + warm.get("fixes", [])
    )
    warm_cpu = CPU.get("warm", 0.0)
    per_eval = warm_cpu / evals if evals else 0.0
    out.append(
        f"(b) harness cold: {cold_wall:.1f} s (exit {cold_proc.returncode}; "
        f"CPU {CPU.get('cold', 0.0):.1f} s)"
    )
    out.append(
        f"(c) harness warm: {warm_wall:.1f} s (exit {warm_proc.returncode}; CPU {warm_cpu:.1f} s "
        f"for {evals} evaluations = {per_eval:.2f} s each, harness start-up included; "
        "workers killed at teardown are not counted)"
    )
    out.append(
        f"(d) --check 19.6.0 warm: {check_wall:.2f} s wall, exit {check_proc.returncode}: "
        f"{check_proc.stdout.strip()}"
    )
    out.append(
        f"    one scenario on the built environment (row 'seconds'): {one['seconds']:.3f} s "
        f"(boot {one['boot_seconds']:.3f} s, env lookup {one['env_seconds']:.3f} s, "
        f"verdict {one['verdict']}, reused_env {one['reused_env']})"
    )
    if plain_wall is not None:
        out.append(
            f"ratios: plain/cold = {plain_wall / cold_wall:.1f}x, "
            f"plain/warm = {plain_wall / warm_wall:.1f}x"
        )
    out += breakdown(cold, "cold breakdown")
    out += breakdown(warm, "warm breakdown")

    out.append("harness answers (cold run):")
    cold_lines, cold_ok = answers(cold)
    out += cold_lines
    out.append("harness answers (warm run):")
    warm_lines, warm_ok = answers(warm)
    out += warm_lines

    out.append("targets:")
    out.append(
        f"  cold full run <= {TARGETS['cold_max']:.0f} s: {cold_wall:.1f} s "
        f"{verdict(cold_wall <= TARGETS['cold_max'])}"
    )
    out.append(
        f"  CPU per evaluation <= {TARGETS['cpu_per_eval']} s: {per_eval:.2f} s "
        f"{verdict(per_eval <= TARGETS['cpu_per_eval'])}"
    )
    out.append(
        f"  warm full run <= {TARGETS['warm_max']:.0f} s: {warm_wall:.1f} s "
        f"{verdict(warm_wall <= TARGETS['warm_max'])}"
    )
    if plain_wall is not None:
        out.append(
            f"  warm >= {TARGETS['warm_ratio']:.0f}x faster than plain: "
            f"{plain_wall / warm_wall:.1f}x {verdict(plain_wall / warm_wall >= TARGETS['warm_ratio'])}"
        )
        out.append(
            f"  cold >= {TARGETS['cold_ratio']:.0f}x faster than plain: "
            f"{plain_wall / cold_wall:.1f}x {verdict(plain_wall / cold_wall >= TARGETS['cold_ratio'])}"
        )
    else:
        out.append("  ratios: not measured (--skip-plain)")
    out.append(
        f"  one scenario on a built environment <= {TARGETS['scenario_max']} s: "
        f"{one['seconds']:.3f} s {verdict(one['seconds'] <= TARGETS['scenario_max'])}"
    )
    print("\n".join(out))
    return 0 if cold_ok and warm_ok else 1


if __name__ == "__main__":
    sys.exit(main())
