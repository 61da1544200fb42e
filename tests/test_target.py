"""The target objects (harness.jobs.target), each kind on its own and through the Runner:
labels, kind, sha, which Python, what they add to a row; no build, no gunicorn, no
network (milliseconds)."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.host.git import SourceError
from harness.jobs.setup import Runner
from harness.jobs.target import (
    BuildFailed,
    Gunicorn,
    GunicornTargets,
    PackageTargets,
    Pinned,
    _Built,
    fetched,
    maker,
)
from harness.model.verdict import Verdict
from harness.provision.environments import EnvNeeds
from harness.provision.interpreters import Interpreter
from harness.provision.wheels import Artifact, ArtifactError

pytestmark = pytest.mark.pure

SHA = "418f140445c0" + "ab" * 14
PICK = "1db805c7f6b3" + "cd" * 14
PY39 = Interpreter("/py/3.9", "3.9.18", "pyenv")
PY312 = Interpreter("/py/3.12", "3.12.1", "pyenv")


def artifact(label: str = "19.6.0", version: str = "19.6.0", sha: str | None = None) -> Artifact:
    return Artifact(label, version, Path(f"/w/gunicorn-{version}.whl"), "d", sha)


class NoGit:
    """A history that must not be read: making a target builds nothing."""

    def __getattr__(self, name: str):
        raise AssertionError(f"history.{name} used while making a target")


def release(version: str = "19.6.0") -> Gunicorn:
    return fetched(artifact(version, version))


def test_a_release_is_named_by_its_version_and_has_no_sha() -> None:
    r = release()
    assert (r.label, r.kind, r.sha, r.python) == ("19.6.0", "release", None, None)
    assert r.describe() == "gunicorn 19.6.0"
    needs = EnvNeeds()
    assert r.needs(needs, PY39, Path("/c")) == (r.wheel(), needs)
    assert r.facts(r.wheel()) == {}


def test_only_gunicorn_19_hints_at_an_older_python() -> None:
    assert "Python <= 3.9" in release().hint()
    assert release("20.1.0").hint() == ""
    built = Gunicorn("abc", lambda: artifact("abc", "19.7.0"), SHA)
    assert "Python <= 3.9" in built.hint()  # the version the commit's wheel declares
    assert Pinned("eventlet", "0.30.3", lambda: "eventlet==0.30.3", lambda i: None).hint() == ""


def test_a_commit_runs_on_its_releases_python_and_is_built_only_when_used() -> None:
    make = GunicornTargets(Path("/c"))
    c = make.commit(NoGit(), SHA, None, "3.9.18")
    assert (c.label, c.kind, c.sha, c.python) == (SHA[:10], "commit", SHA, "3.9.18")
    healed = make.commit(NoGit(), SHA, PICK, None)
    assert (healed.label, healed.sha, healed.python) == (f"{SHA[:10]}+{PICK[:7]}", SHA, None)


def test_a_git_ref_is_named_by_its_row_and_searches_every_python() -> None:
    for make in (GunicornTargets(Path("/c")), maker(Path("/c"), "Eventlet")):
        ref = make.commit(NoGit(), SHA, None, None, "20.0.1 (418f140445c0)")
        assert (ref.label, ref.kind, ref.sha, ref.python) == (
            "20.0.1 (418f140445c0)",
            "commit",
            SHA,
            None,
        )


def test_a_dependency_release_is_named_after_it_with_gunicorn_beside() -> None:
    make = maker(Path("/c"), "Eventlet", gunicorn="20.1.0")
    assert isinstance(make, PackageTargets) and make.package == "eventlet"
    assert make.gunicorn.version == "20.1.0"
    p = make.release("0.30.3", project=None)
    assert (p.label, p.kind, p.sha, p.python) == ("0.30.3", "release", None, None)
    assert p.describe() == "eventlet 0.30.3"
    assert p.requirement() == "eventlet==0.30.3"
    assert p.facts(artifact("20.1.0", "20.1.0")) == {"gunicorn": "20.1.0"}
    c = make.commit(NoGit(), SHA, None, "3.12.1")
    assert (c.label, c.kind, c.python) == (SHA[:10], "commit", "3.12.1")


def test_gunicorn_is_its_own_maker_whatever_the_spelling() -> None:
    assert isinstance(maker(Path("/c"), "Gunicorn"), GunicornTargets)


@pytest.mark.parametrize("error", [ArtifactError("no setup.py"), SourceError("git archive")])
def test_a_build_is_made_once_and_its_failure_is_a_build_failed(error: Exception) -> None:
    calls = []

    def make() -> Artifact:
        calls.append(1)
        raise error

    built = _Built(make)
    for _ in range(3):
        with pytest.raises(BuildFailed, match=f"^build failed: {error}$"):
            built()
    assert len(calls) == 1
    ok = _Built(lambda: calls.append(2) or artifact())
    assert ok() is ok() and calls.count(2) == 1


def test_a_target_that_cannot_be_built_is_an_error_row_not_the_end() -> None:
    """No interpreter is tried and no scenario asked: the row says why."""
    runner = Runner(Path("/c"), [PY39], scenario=None)  # type: ignore[arg-type]
    broken = Gunicorn("20.0.1 (418f140445c0)", _Built(lambda: (_ for _ in ()).throw(
        ArtifactError("the wheel built from 418f140445 does not hold its tree")
    )), SHA)  # fmt: skip
    row = runner.evaluate(broken)
    assert (row.target, row.verdict, row.kind, row.sha) == (
        broken.label,
        Verdict.ERROR,
        "commit",
        SHA,
    )
    assert row.detail == "build failed: the wheel built from 418f140445 does not hold its tree"


def test_which_python_a_target_asks_for() -> None:
    runner = Runner(Path("/c"), [PY312, PY39], scenario=None)  # type: ignore[arg-type]
    assert runner._python("3.9.18") is PY39
    assert runner._python(None) is None  # search, newest first
    assert runner._python("3.6.15") is None  # gone since: search as well
    given = Interpreter("/opt/3.9", "3.9.18", "--python")
    runner.override = given
    assert runner._python("3.9.18") is given


def test_no_module_tells_the_kinds_of_target_apart() -> None:
    """Outside harness/jobs/target.py a target is a ``Target``: no module imports a kind
    (so none can ``isinstance`` one); adding a kind touches that module only."""
    import ast

    kinds = {"Gunicorn", "Pinned", "GunicornTargets", "PackageTargets", "PinnedGunicorn"}
    root = Path(__file__).resolve().parent.parent / "harness"
    for path in root.rglob("*.py"):
        if path.name == "target.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module == "harness.jobs.target":
                assert not kinds & {a.name for a in node.names}, path
