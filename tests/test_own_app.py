"""Your own app and its stack (issue 15): ``--with``, ``--app``, ``--path``, any REQUIRES,
a pip that is the target's or says it is absent, gunicorn's own dependencies.  The rules
on their own first, then real environments and real gunicorn serving a real Flask app."""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from harness.provision import requirements
from harness.provision.interpreters import discover
from harness.provision.wheels import Artifact, project_dependencies, tree_wheel
from harness.request import UsageError, parse
from harness.scenarios import registry as command
from tests.conftest import ROOT, run_cli, run_json

pytestmark = pytest.mark.pure

EXAMPLE = ROOT / "examples" / "flask_app"
CHECK = str(EXAMPLE / "underscore_header.py")
NO_SUCH = "gunicorn-bisect-no-such-package==1"
MIRROR = Path("/work/.mirror/benoitc+gunicorn/repo")


# -- the command line ------------------------------------------------------------------------
def test_the_options_reach_every_scenario(tmp_path: Path) -> None:
    reqs = tmp_path / "requirements.txt"
    reqs.write_text("Jinja2>=3  # the templates\n")
    r = parse(
        ["21.2.0", "--with", "Flask", "--with-requirements", str(reqs), "--app", "app:app"]
        + ["--app-dir", str(EXAMPLE), "--path", "/whoami"],
        "bisect.py",
    )
    assert r.options.requirements.requirements == ("flask", "jinja2>=3")
    assert (r.options.app, r.options.app_dir, r.options.path) == ("app:app", EXAMPLE, "/whoami")


@pytest.mark.parametrize(
    "args, says",
    [
        (["--with", "flask ==="], "--with: not a requirement"),
        (["--app", "nosuchmodule:app"], "no module 'nosuchmodule'"),
        (["--app", "app"], None),  # MODULE alone is gunicorn's "module:application"
        (["--app", "app:app;rm"], "expected MODULE:CALLABLE"),
        (["--app-dir", "/tmp"], "give --app too"),
        (["--path", "whoami"], "must start with /"),
    ],
)
def test_bad_input_is_one_line(args: list[str], says: str | None) -> None:
    argv = ["21.2.0", *args] + (["--app-dir", str(EXAMPLE)] if "--app" in args else [])
    if says is None:
        parse(argv, "bisect.py")
        return
    with pytest.raises(UsageError) as err:
        parse(argv, "bisect.py")
    assert says in str(err.value) and "\n" not in str(err.value)


@pytest.mark.local
def test_an_unparsable_with_exits_2_in_one_line() -> None:
    proc = run_cli("--check", "21.2.0", "--with", "flask ===")
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1


@pytest.mark.local
def test_a_scenario_file_requires_anything(tmp_path: Path) -> None:
    from harness.scenarios import registry
    from harness.scenarios.base import Options

    path = tmp_path / "needs_flask.py"
    path.write_text('REQUIRES = ["Flask>=2", "bottle==0.12.13"]\ndef check(server):\n    pass\n')
    options = Options(requirements=requirements.parse(["requests"]))
    scenario = registry.create(str(path), options)
    # bottle stays the harness's own wheel; the rest joins --with in the installed set
    assert scenario.requirements().requirements == ("flask>=2", "requests")


# -- gunicorn's own dependencies -------------------------------------------------------------
def _wheel(tmp_path: Path, requires: list[str]) -> Artifact:
    meta = "Metadata-Version: 2.1\nName: gunicorn\nVersion: 22.0.0\n"
    meta += "".join(f"Requires-Dist: {r}\n" for r in requires)
    wheel = tmp_path / "gunicorn-22.0.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as zf:
        zf.writestr("gunicorn/__init__.py", "")
        zf.writestr("gunicorn-22.0.0.dist-info/METADATA", meta)
    return Artifact("22.0.0", "22.0.0", wheel, "digest")


def test_only_the_non_extra_requirements_but_setuptools_are_installed(tmp_path: Path) -> None:
    artifact = _wheel(
        tmp_path,
        [
            "packaging",
            'importlib-metadata; python_version < "3.8"',
            "setuptools>=3.0",
            'eventlet>=0.24.1; extra == "eventlet"',
        ],
    )
    assert requirements.gunicorn_dependencies(artifact) == (
        "packaging",
        'importlib-metadata; python_version < "3.8"',
    )


def test_19x_needs_nothing_more(tmp_path: Path) -> None:
    artifact = _wheel(tmp_path, ['gevent>=0.13; extra == "gevent"'])
    assert requirements.gunicorn_dependencies(artifact) == ()
    assert requirements.dependency_set(artifact, None, tmp_path) is None  # type: ignore[arg-type]


# -- pip inside --run ------------------------------------------------------------------------
@pytest.mark.local
def test_pip_in_a_command_says_it_is_absent(tmp_path: Path) -> None:
    shim = command.pip_shim(tmp_path / "shim")
    # a Python with no pip of its own: -S hides the base site-packages, as a target's venv
    env = {"PYTHONPATH": str(shim), "VIRTUAL_ENV": "/the/target", "PATH": "/usr/bin:/bin"}
    proc = subprocess.run(
        [sys.executable, "-S", "-m", "pip", "install", "x"], env=env, capture_output=True, text=True
    )
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.strip().splitlines() == [
        "pip: not in this target's environment (/the/target); gunicorn-bisect installs "
        "packages into it with --with REQ"
    ]
    assert (shim / "bin" / "pip").read_text().endswith('exec python -m pip "$@"\n')


@pytest.mark.local
def test_pip_in_a_command_is_the_real_one_when_there_is_one(tmp_path: Path) -> None:
    shim = command.pip_shim(tmp_path / "shim")
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "--version"],
        env={"PYTHONPATH": str(shim), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0 and proc.stdout.startswith("pip "), proc.stderr


# -- real runs: a Flask app whose route changes at 22.0.0 ------------------------------------
def _own(*args: str) -> tuple[str, ...]:
    """--with flask, and the example's directory for --app."""
    where = ("--app-dir", str(EXAMPLE)) if "--app" in args else ()
    return (*where, "--with", "flask", *args)


@pytest.mark.real
def test_the_flask_app_changes_at_22(tmp_path: Path, cache_dir: Path, no_leaks) -> None:
    report = run_json(
        "21.2.0,22.0.0",
        "--no-commits",
        "--scenario",
        CHECK,
        *_own("--app", "app:app"),
        cache_dir=cache_dir,
        results_dir=tmp_path,
    )
    rows = {r["target"]: r for r in report["rows"]}
    assert (rows["21.2.0"]["verdict"], rows["22.0.0"]["verdict"]) == ("pass", "fail")
    assert all(r["flask"] and r["app"] == "app:app" for r in rows.values())  # resolved, served
    assert report["scenario"]["parameters"]["app"] == "app:app"
    # one installed set, shared: asked again it is found, not built, and both environments on that
    # Python (those with flask alone) put that same directory first on their path
    version = rows["22.0.0"]["python"]
    interp = next(i for i in discover(cache_dir) if i.version == version)
    installed = requirements.ensure(requirements.parse(["flask"]), interp, cache_dir)
    assert not installed.built
    first = {}
    for env in (cache_dir / "envs").glob(f"gunicorn-2[12].*-py{version}-*"):
        manifest = json.loads((env / "gunicorn-bisect-env.json").read_text())
        if set(manifest["extras"]) == {"flask"}:
            pth = next(env.glob("lib/*/site-packages/gunicorn-bisect-shared.pth"))
            first.setdefault(manifest["label"], set()).add(pth.read_text().split()[0])
    assert first["21.2.0"] == first["22.0.0"] == {str(installed.path)}


@pytest.mark.real
@pytest.mark.parametrize("app", ["app:app", "app:create_app()"])
def test_an_app_with_no_root_route_serves_every_built_in(
    app: str, tmp_path: Path, cache_dir: Path, no_leaks
) -> None:
    for scenario in ("keeps-serving", "socket-loss"):
        proc = run_cli(
            "--check",
            "22.0.0",
            "--scenario",
            scenario,
            *_own("--app", app, "--path", "/whoami"),
            "--cache-dir",
            str(cache_dir),
            "--results-dir",
            str(tmp_path),
        )
        assert "not listening" not in proc.stdout + proc.stderr
        assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.real
def test_a_run_command_sees_the_installed_set_and_no_foreign_pip(
    tmp_path: Path, cache_dir: Path
) -> None:
    script = "python -c 'import flask, packaging' && python -m pip install flask"
    report = run_json(
        "22.0.0",
        "--run",
        script,
        *_own(),
        cache_dir=cache_dir,
        results_dir=tmp_path,
    )
    row = report["rows"][0]
    assert row["verdict"] == "fail" and "not in this target's environment" in row["detail"]


@pytest.mark.real
def test_a_requirement_that_cannot_resolve_is_an_error_row(tmp_path: Path, cache_dir: Path) -> None:
    where = ("--cache-dir", str(cache_dir), "--results-dir", str(tmp_path))
    proc = run_cli("--check", "21.2.0", "--python", "3.11", "--with", NO_SUCH, *where)
    assert proc.returncode == 125, proc.stderr
    assert f"No matching distribution found for {NO_SUCH}" in proc.stdout
    for built in (cache_dir / "layers").glob("py*"):  # nothing half-built
        assert (built / requirements.MANIFEST).is_file(), built


@pytest.mark.real
@pytest.mark.skipif(not MIRROR.is_dir(), reason="needs the local gunicorn clone (not in CI)")
def test_the_bisection_names_the_underscore_commit(tmp_path: Path, cache_dir: Path) -> None:
    report = run_json(
        "21.2.0..22.0.0",
        "--scenario",
        CHECK,
        *_own("--app", "app:app"),
        "--repo",
        str(MIRROR),
        cache_dir=cache_dir,
        results_dir=tmp_path,
    )
    assert "72b8970d" in json.dumps(report["regressions"])


ASGI_APP = """\
async def app(scope, receive, send):
    if scope["type"] == "http":
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"hello"})
"""


@pytest.mark.real
def test_an_asgi_app_behind_an_asgi_worker(tmp_path: Path, cache_dir: Path, no_leaks) -> None:
    (tmp_path / "asgiapp.py").write_text(ASGI_APP)
    proc = run_cli(
        *("--check", "23.0.0", "--scenario", "keeps-serving", "--app", "asgiapp:app"),
        *("--app-dir", str(tmp_path), "--with", "uvicorn-worker"),
        *("--worker-class", "uvicorn_worker.UvicornWorker", "--cache-dir", str(cache_dir)),
        *("--results-dir", str(tmp_path / "results")),
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "pass" in proc.stdout and "was asked, but gunicorn ran" not in proc.stderr


def test_a_commit_wheel_requires_what_its_pyproject_does(tmp_path: Path) -> None:
    (tmp_path / "gunicorn").mkdir()
    (tmp_path / "gunicorn" / "__init__.py").write_text("version_info = (22, 0, 0)\n")
    (tmp_path / "pyproject.toml").write_text(
        "[project]\nname = 'gunicorn'\ndependencies = [\n"
        '    \'importlib_metadata; python_version<"3.8"\',\n    "packaging",\n]\n'
        "[project.optional-dependencies]\ngevent = ['gevent>=1.4.0']\n"
    )
    wheel = tree_wheel(tmp_path, tmp_path / "out")
    artifact = Artifact("abc", "22.0.0", wheel, "digest", sha="abc")
    assert requirements.gunicorn_dependencies(artifact) == (
        'importlib_metadata; python_version<"3.8"',
        "packaging",
    )
    (tmp_path / "pyproject.toml").write_text(
        "[project]\nname = 'x'\n[tool.x]\ndependencies = ['no']\n"
    )
    assert project_dependencies(tmp_path / "pyproject.toml") == ()


# -- "served" means the app's own healthy answer; boots serves --app ------------------------
ALWAYS_500 = """\
def app(environ, start_response):
    start_response("500 Internal Server Error", [("Content-Length", "4")])
    return [b"oops"]
"""
TEAPOT = """\
def app(environ, start_response):
    start_response("418 I'm a teapot", [("Content-Length", "6")])
    return [b"teapot"]
"""


def _row(tmp_path: Path, cache_dir: Path, *args: str, status: int = 0) -> dict:
    report = run_json(
        "19.5.0", "--no-commits", *args, cache_dir=cache_dir, results_dir=tmp_path, status=status
    )
    (row,) = report["rows"]
    return row


@pytest.mark.real
def test_an_app_that_always_answers_500_never_passes(tmp_path: Path, cache_dir: Path, no_leaks):
    """socket-loss and keeps-serving used to say "20/20 new connections served" of an app
    that answers 500 to everything: now the healthy answer is read first, and a 5xx there
    is an error row that says so; the report's own app still passes."""
    (tmp_path / "broken.py").write_text(ALWAYS_500)
    own = ("--app", "broken:app", "--app-dir", str(tmp_path))
    for scenario in ("socket-loss", "keeps-serving"):
        row = _row(tmp_path, cache_dir, "--scenario", scenario, *own, status=125)
        assert row["verdict"] == "error", row["detail"]
        assert "your app answers HTTP 500 on / before any restart" in row["detail"]
        assert row["healthy_status"] == "500"
    row = _row(tmp_path, cache_dir, "--scenario", "keeps-serving")
    assert row["verdict"] == "pass", row["detail"]
    assert (row["healthy_status"], row["statuses"]) == ("200", {"200": 20})


@pytest.mark.real
def test_boots_serves_your_app_and_fails_one_that_does_not_import(
    tmp_path: Path, cache_dir: Path, no_leaks
):
    (tmp_path / "teapot.py").write_text(TEAPOT)
    (tmp_path / "raises.py").write_text("raise RuntimeError('no config here')\n")
    where = ("--app-dir", str(tmp_path), "--scenario", "boots")
    row = _row(tmp_path, cache_dir, "--app", "teapot:app", *where)
    assert row["verdict"] == "pass" and row["detail"] == "booted and answered (HTTP 418)"
    assert row["app"] == "teapot:app"
    row = _row(tmp_path, cache_dir, "--app", "raises:app", *where)
    assert row["verdict"] == "fail", row["detail"]
    assert "RuntimeError: no config here" in row["detail"] + row["traceback"]
