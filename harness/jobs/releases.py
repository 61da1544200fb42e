"""The release table: every requested release in every column, within the budget."""

from __future__ import annotations

from harness.host.progress import Progress
from harness.jobs.budget import Budget
from harness.jobs.protocols import Evaluator
from harness.model import targets
from harness.model.table import Table


def release_table(
    lab: Evaluator, table: Table, spec_text: str, budget: Budget, progress: Progress
) -> None:
    """Fill ``table`` cell by cell as results arrive (an interrupt leaves what was
    established); a download per release first, then each cell."""
    releases = targets.resolve(targets.parse(spec_text), lab.versions(), lab.package)
    table.targets = list(releases)
    labels = table.labels
    cells = len(releases) * len(labels)
    progress(f"{len(releases)} release(s) to test: {', '.join(releases)}")
    if not table.single:
        progress(f"{len(labels)} deployments each: {', '.join(labels)}")
    progress.start(len(releases) + cells, "steps")
    fetched = []
    for v in releases:
        progress(f"{v}: fetching the wheel")
        fetched.append(lab.fetch(v))
        progress.advance()
    work = [(v, f, c) for v, f in zip(releases, fetched) for c in labels]
    evaluate = lambda job: lab.release(job[1], job[2])  # noqa: E731
    for done, (i, row) in enumerate(budget.unordered(evaluate, work), 1):
        version, _, column = work[i]
        table.put(version, column, row)
        progress.advance()
        where = "" if table.single else f" {column}"
        progress(f"{row.target}{where}: {row.verdict.value} ({cells - done} remain)")


def worker_class_notes(table: Table) -> list[str]:
    """Never let a table claim a worker class that did not run: say where it differed."""
    notes = []
    for col in table.columns:
        asked = col.worker_class
        ran = sorted(
            {
                str(r.facts.get("worker_class"))
                for r in table.column_rows(col.label)
                if r.facts.get("worker_class") not in (None, asked)
            }
        )
        if asked and ran:
            notes.append(
                f"warning: --worker-class {asked} was asked, but gunicorn ran {', '.join(ran)} "
                "(see each row's worker_class); gunicorn turns sync into gthread when threads > 1"
            )
    return notes
