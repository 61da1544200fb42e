"""Flake-aware bisection against fixed ``--repeat N`` bisection, on simulated racy histories.

A history of ``--revisions`` revisions has a planted first broken one (uniform over the
candidates).  Every run of a broken revision fails at ``rate``, of a healthy one at
``false``.  For each (rate, false) cell and each seed, the confidence search
(``harness.model.confidence``) runs until it is confident at ``--confidence`` or spends
``--max-runs``; then fixed-repeat bisection (git's rule, ``harness.model.search``; a
revision is broken when any of its N runs fails, or a majority) is tried with N = 1, 2, ...
up to 40 until it is right at least as often as the search's confident claims.  Pure simulation: no gunicorn.

    python bench/confidence.py [--seeds 250] [--revisions 16] [--confidence 0.95]
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from harness.model.confidence import CulpritSearch, Prior, drive  # noqa: E402
from harness.model.search import Bisection, Outcome  # noqa: E402

RATES = (1.0, 0.5, 0.2, 0.05)
FALSE_RATES = (0.0, 0.01, 0.05)
MAX_REPEAT = 40


@dataclass(frozen=True)
class Cell:
    claims: int
    right: int
    runs: int
    seeds: int

    @property
    def accuracy(self) -> float:
        return self.right / self.claims if self.claims else float("nan")


def runner(culprit: int, rate: float, false: float, seed: int):
    """Runs of revisions ``r<i>``: each fails at ``rate`` from ``culprit`` on, ``false`` before."""
    rng = random.Random(seed)

    def observe(batch: list[str]) -> list[bool]:
        return [rng.random() < (rate if int(r[1:]) >= culprit else false) for r in batch]

    return observe


def confident_search(args, rate: float, false: float, prior: Prior | None) -> Cell:
    claims = right = runs = 0
    revs = [f"r{i}" for i in range(args.revisions)]
    for seed in range(args.seeds):
        culprit = random.Random(seed).randrange(1, args.revisions)
        search = CulpritSearch(revs, prior, args.confidence, args.max_runs)
        found = drive(search, runner(culprit, rate, false, seed), args.k)
        runs += found.runs
        if found.status == "confident":
            claims += 1
            right += found.culprit == revs[culprit]
    return Cell(claims, right, runs, args.seeds)


def fixed_repeat(args, rate: float, false: float, repeat: int, share: float) -> Cell:
    """Plain bisection where each revision runs ``repeat`` times and is broken when more than
    ``share`` of them fail (0: any fail; 0.5: a majority)."""
    revs = [f"r{i}" for i in range(args.revisions)]
    graph = {r: [p] for p, r in zip(revs, revs[1:])} | {revs[0]: []}
    right = runs = 0
    for seed in range(args.seeds):
        culprit = random.Random(seed).randrange(1, args.revisions)
        observe = runner(culprit, rate, false, seed)
        b = Bisection(graph, revs[0], revs[-1])
        while b.result().status == "pending":
            (rev,) = b.next_steps(1)
            failed = sum(observe([rev] * repeat)) > share * repeat
            b.record(rev, Outcome.NEW if failed else Outcome.OLD)
            runs += repeat
        right += b.result().commit == revs[culprit]
    return Cell(args.seeds, right, runs, args.seeds)


def repeat_for(args, rate: float, false: float, accuracy: float) -> str:
    """The cheapest N (any-fail or majority rule) whose accuracy reaches ``accuracy``."""
    found: list[tuple[float, str]] = []
    best = (0.0, "")
    for share, rule in ((0.0, "any"), (0.5, "majority")):
        for repeat in range(1, MAX_REPEAT + 1, 1 if share == 0.0 else 2):
            cell = fixed_repeat(args, rate, false, repeat, share)
            if cell.accuracy >= accuracy:
                found.append((cell.runs / cell.seeds, f"N={repeat} {rule}"))
                break
            best = max(best, (cell.accuracy, f"N={repeat} {rule}"))
    if not found:
        return f"never (best {best[0]:.2f}, {best[1]})"
    runs, label = min(found)
    return f"{label}: {runs:.1f}"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", type=int, default=250, help="histories per cell")
    p.add_argument("--revisions", type=int, default=16)
    p.add_argument("--confidence", type=float, default=0.95)
    p.add_argument("--max-runs", type=int, default=200)
    p.add_argument("-k", type=int, default=1, help="revisions at once (-j)")
    args = p.parse_args()
    start = time.monotonic()
    print(
        f"{args.revisions} revisions, {args.seeds} seeds per cell, confidence "
        f"{args.confidence}, budget {args.max_runs} runs, k={args.k}\n"
    )
    print(
        "| rate | false | confident | right when confident | mean runs | fixed repeat, same accuracy |"
    )
    print("|---|---|---|---|---|---|")
    claims = right = 0
    rows = [(r, f, None) for r in RATES for f in FALSE_RATES]
    rows.append((1.0, 0.0, Prior.deterministic()))
    for rate, false, prior in rows:
        cell = confident_search(args, rate, false, prior)
        if prior is None:
            claims, right = claims + cell.claims, right + cell.right
        label = f"{rate:.0%}" + (" (deterministic prior)" if prior else "")
        same = repeat_for(args, rate, false, cell.accuracy) if cell.right else "-"
        print(
            f"| {label} | {false:.0%} | {cell.claims / cell.seeds:.0%} | {cell.accuracy:.3f} | "
            f"{cell.runs / cell.seeds:.1f} | {same} |"
        )
    print(
        f"\nall confident claims (default prior): {right}/{claims} right = {right / claims:.3f} "
        f"(target >= {args.confidence}); {time.monotonic() - start:.0f} s"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
