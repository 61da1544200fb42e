"""``--package NAME`` (a dependency's releases and commits as the axis) and ``--scenario
boots``: the rules on their own, the orchestration with the fakes, then real runs."""

from __future__ import annotations

import shutil
import tarfile
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from harness.host.git import SourceError
from harness.host.processes import Cancel
from harness.host.progress import Progress
from harness.jobs.budget import Budget
from harness.jobs.run import Bisect, range_run
from harness.model.targets import TargetError
from harness.model.verdict import Verdict
from harness.report.json import as_json
from harness.report.render import render
from harness.request import UsageError, parse
from harness.scenarios import registry
from harness.scenarios.base import Options
from harness.scenarios.boots import Observation, decide, decisive
from tests.conftest import git, run_json
from tests.fakes import Lab, linear_history, report_for

pytestmark = pytest.mark.pure

ALREADY_HANDLED = "ImportError: cannot import name 'ALREADY_HANDLED' from 'eventlet.wsgi'"
MIRROR = Path("/work/.mirror/benoitc+gunicorn/repo")
FIX = "6a8ebb48"  # gunicorn PR #2581: the eventlet worker without ALREADY_HANDLED


# -- boots: the rules -------------------------------------------------------------------
def test_boots_passes_a_server_that_answers_with_any_status() -> None:
    assert decide(Observation(True, answer="ok")).verdict is Verdict.PASS
    answered = decide(Observation(True, answer="HTTP 404"))
    assert answered.verdict is Verdict.PASS and "HTTP 404" in answered.detail


def test_boots_fails_with_the_decisive_line_without_the_file_it_names() -> None:
    line = f"{ALREADY_HANDLED} (/cache/layers/py3.9-abc/eventlet/wsgi.py)"
    out = decide(Observation(False, reason=line))
    assert out.verdict is Verdict.FAIL
    assert out.detail == f"did not boot: {ALREADY_HANDLED}"


def test_a_bind_the_host_refused_is_an_error_not_the_builds_fail() -> None:
    obs = Observation(False, reason="connection to /tmp/x/gunicorn.sock failed: [Errno 98]")
    assert decide(obs).verdict is Verdict.ERROR


@given(st.text(alphabet=st.characters(blacklist_characters="()"), min_size=1))
def test_decisive_keeps_every_line_that_names_no_file(line: str) -> None:
    assert decisive(line) == line.strip()


@pytest.mark.local
def test_boots_is_a_built_in() -> None:
    assert "boots" in dict(registry.listing())
    about = registry.create("boots", Options(worker_class="eventlet")).about()
    assert about.name == "boots" and "worker_class=eventlet" in about.summary


# -- the request --------------------------------------------------------------------------
def test_package_and_its_gunicorn_pin_are_parsed(tmp_path: Path) -> None:
    req = parse(
        ["--package", "Eventlet", "0.30.2,0.30.3", "--gunicorn", "20.1.0", "--cache-dir", "c"],
        "bisect.py",
    )
    assert (req.package, req.gunicorn) == ("eventlet", "20.1.0")
    with pytest.raises(SourceError, match="give --repo with eventlet's git history"):
        req.history()


@pytest.mark.parametrize(
    "argv, message",
    [
        (["19.6.0", "--gunicorn", "20.1.0"], "give --package too"),
        (["1", "--package", "eventlet", "--gunicorn", "twenty"], "not a version number"),
        (["1", "--package", "no such"], "not a package name"),
        (["1", "--package", ""], "--package '': not a package name"),  # not gunicorn
    ],
)
def test_package_usage_errors_are_one_line(argv: list[str], message: str) -> None:
    with pytest.raises(UsageError, match=message):
        parse(argv, "bisect.py")


# -- the orchestration, with the fakes ----------------------------------------------------
EVENTLET = ["0.30.0", "0.30.1", "0.30.2", "0.30.3", "0.31.0"]


def package_run(lab: Lab, spec: str = "0.30.0..0.31.0", commits: bool = True):
    report = report_for(["eventlet/unix"])
    report.package = lab.package
    budget = Budget(2, Cancel())
    try:
        how = Bisect(lambda: lab.history) if commits else None
        return range_run(lab, report, spec, budget, Progress(), how)
    finally:
        budget.close()


def eventlet_lab() -> Lab:
    history = linear_history(40, {v: i * 8 for i, v in enumerate(EVENTLET[:-1])} | {"0.31.0": 39})
    fails = {(v, "eventlet/unix"): Verdict.FAIL for v in ("0.30.3", "0.31.0")}
    return Lab(EVENTLET, history, fails, first_bad="c020", package="eventlet")


def test_a_packages_releases_make_the_same_table_headed_by_its_name() -> None:
    rep = package_run(eventlet_lab())
    text = render(rep, "table")
    assert any(line.split()[:2] == ["eventlet", "python"] for line in text.splitlines())
    assert "regression introduced in 0.30.3 (last good 0.30.2)" in text
    doc = as_json(rep)
    assert doc["package"] == "eventlet"
    assert [r["verdict"] for r in doc["rows"]] == ["pass", "pass", "pass", "fail", "fail"]
    assert rep.findings and rep.findings[0].commit.sha == "c020"


def test_a_version_the_package_does_not_have_names_the_package() -> None:
    with pytest.raises(TargetError, match="eventlet 0.29.9 is not a release"):
        package_run(eventlet_lab(), "0.29.9,0.30.3", commits=False)


def test_without_its_history_the_commits_are_skipped_with_a_note() -> None:
    lab = eventlet_lab()
    report = report_for(["eventlet/unix"])
    budget = Budget(1, Cancel())

    def no_history():
        raise SourceError("--package eventlet: give --repo with eventlet's git history")

    try:
        rep = range_run(lab, report, "0.30.2,0.30.3", budget, Progress(), Bisect(no_history))
    finally:
        budget.close()
    assert any("give --repo with eventlet's git history" in n for n in rep.notes)
    assert not rep.findings


# -- real runs ------------------------------------------------------------------------------
def eventlet_boots(cache_dir: Path, results_dir: Path, *more: str) -> dict:
    """The README's run: eventlet 0.30.2 and 0.30.3 under gunicorn 20.1.0, booted."""
    return run_json(
        *("--package", "eventlet", "0.30.2,0.30.3", "--gunicorn", "20.1.0"),
        *("--worker-class", "eventlet", "--scenario", "boots", *more),
        cache_dir=cache_dir,
        results_dir=results_dir,
    )


@pytest.mark.real
def test_eventlet_0_30_3_breaks_gunicorn_20_1_at_boot(cache_dir: Path, tmp_path: Path) -> None:
    doc = eventlet_boots(cache_dir, tmp_path)
    rows = {r["target"]: r for r in doc["rows"]}
    assert doc["package"] == "eventlet"
    assert rows["0.30.2"]["verdict"] == "pass"
    assert rows["0.30.3"]["verdict"] == "fail"
    assert ALREADY_HANDLED in rows["0.30.3"]["detail"]
    assert doc["regressions"] and doc["regressions"][0]["first_bad"] == "0.30.3"
    assert rows["0.30.2"]["python"] == rows["0.30.3"]["python"]  # where 0.30 imports


class _WithEventlet:
    """boots with eventlet 0.30.3 in every environment's installed set: the pin ``--with
    eventlet==0.30.3`` gives (set here through the package axis's own path)."""

    def __init__(self, scenario, cache: Path) -> None:
        self._scenario, self._cache = scenario, cache

    def __getattr__(self, name: str):
        return getattr(self._scenario, name)

    def needs(self, interp, cache_dir):
        from harness.jobs.target import pinned_needs

        needs = self._scenario.needs(interp, cache_dir)
        # packaging: gunicorn 21's eventlet worker imports it (gunicorn's own dependency,
        # which environments do not install yet)
        for req in ("eventlet==0.30.3", "packaging"):
            needs = pinned_needs(needs, req, interp, cache_dir)
        return needs


@pytest.mark.real
@pytest.mark.skipif(not MIRROR.is_dir(), reason="needs the local gunicorn mirror")
def test_gunicorn_commits_name_the_eventlet_fix(cache_dir: Path) -> None:
    from harness.host.git import Repo
    from harness.jobs.setup import open_run

    scenario = _WithEventlet(registry.create("boots", Options(worker_class="eventlet")), cache_dir)
    setup = open_run(
        cache=cache_dir,
        python=None,
        scenarios=[scenario],
        no_compat=False,
        repeat=1,
        command="test",
        progress=Progress(),
    )
    budget = Budget(2, setup.cancel)
    try:
        how = Bisect(lambda: Repo.open(str(MIRROR), cache_dir), repo_given=True)
        rep = range_run(setup.lab, setup.report, "20.1.0..21.0.0", budget, Progress(), how)
    finally:
        budget.close()
    rows = {r.target: r for r in setup.table.deployment_rows(setup.table.labels[0])}
    assert rows["20.1.0"].verdict is Verdict.FAIL and ALREADY_HANDLED in rows["20.1.0"].detail
    assert rows["21.0.0"].verdict is Verdict.PASS
    fixes = [f for f in rep.findings if f.kind == "fix" and f.status == "found"]
    assert fixes and fixes[0].commit.sha.startswith(FIX)


def _sdist_tree(version: str, cache: Path, dest: Path) -> Path:
    """eventlet's sdist of ``version`` from the index (sha256-verified), unpacked."""
    from harness.provision import index

    files = index.project("eventlet", cache).releases[version]
    sdist = next(f for f in files if f.packagetype == "sdist")
    with tarfile.open(index.download(sdist, cache / "wheels" / "sdist")) as tf:
        tf.extractall(dest)  # noqa: S202 - a verified download
    return next(p for p in dest.iterdir() if p.is_dir())


def _replace_tree(repo: Path, tree: Path) -> None:
    for old in repo.iterdir():
        if old.name != ".git":
            shutil.rmtree(old) if old.is_dir() else old.unlink()
    shutil.copytree(tree, repo, dirs_exist_ok=True)


@pytest.fixture(scope="module")
def eventlet_history(cache_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """v0.30.2 - docs - wsgi.py := 0.30.3's (ALREADY_HANDLED gone) - v0.30.3, from the
    sdists (no eventlet source is kept in this project)."""
    work = tmp_path_factory.mktemp("eventlet")
    old = _sdist_tree("0.30.2", cache_dir, work / "old")
    new = _sdist_tree("0.30.3", cache_dir, work / "new")
    repo = work / "repo"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "master")
    _replace_tree(repo, old)
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "v0.30.2")
    git(repo, "tag", "v0.30.2")
    (repo / "NOTES.txt").write_text("docs only\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "docs: notes")
    shutil.copy(new / "eventlet" / "wsgi.py", repo / "eventlet" / "wsgi.py")
    git(repo, "commit", "-qam", "wsgi: drop ALREADY_HANDLED")
    removal = git(repo, "rev-parse", "HEAD")
    _replace_tree(repo, new)
    (repo / "NOTES.txt").write_text("docs only\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "v0.30.3")
    git(repo, "tag", "v0.30.3")
    return {"repo": repo, "removal": removal}


@pytest.mark.real
def test_an_eventlet_history_is_bisected_to_the_commit_that_broke_the_boot(
    cache_dir: Path, tmp_path: Path, eventlet_history: dict
) -> None:
    doc = eventlet_boots(cache_dir, tmp_path, "--repo", str(eventlet_history["repo"]))
    found = doc["regressions"][0]["commit"]
    assert found["status"] == "found", found
    assert all(s["verdict"] in ("pass", "fail") for s in found["steps"]), found["steps"]
    assert found["sha"] == eventlet_history["removal"]


EVENTLET_MIRROR = Path("/work/.mirror/eventlet+eventlet/repo")


@pytest.mark.real
@pytest.mark.skipif(not EVENTLET_MIRROR.is_dir(), reason="needs a local eventlet mirror")
def test_eventlets_own_history_names_the_commit_that_dropped_already_handled(
    cache_dir: Path, tmp_path: Path
) -> None:
    doc = eventlet_boots(cache_dir, tmp_path, "--repo", str(EVENTLET_MIRROR))
    found = doc["regressions"][0]["commit"]
    assert found["status"] == "found" and found["sha"].startswith("df0bc00c")
