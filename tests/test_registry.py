"""The registry discovers every case; one lifecycle applies every option to every case the
same way, or refuses it in one line before anything starts; the fixture API works on a real
gunicorn (every method once, from a scenario file)."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.provision import requirements
from harness.scenarios import registry
from harness.scenarios.base import Options, ScenarioError
from harness.scenarios.case import load
from harness.scenarios.lifecycle import CaseScenario
from tests.conftest import run_cli, run_json

pytestmark = pytest.mark.local

DATA = Path(__file__).parent / "data"
CATALOGUE = [n for n, c in registry.cases().items() if not c.builtin]


@pytest.mark.parametrize("name", CATALOGUE)
def test_each_catalogue_name_resolves_to_its_file(name):
    case = registry.cases()[name]
    about = registry.create(name, Options()).about()
    assert about.name == name and about.record.get("tracker") == case.tracker
    assert Path(about.record["path"]) == case.path.resolve()
    assert str(Path.cwd()) not in about.summary  # the package's path, not this checkout's


def test_the_catalogue_is_discovered_from_its_folder():
    files = sorted(p.stem for p in registry.CATALOGUE.glob("*.py") if not p.stem.startswith("_"))
    assert sorted(registry.cases()[n].path.stem for n in CATALOGUE) == files
    assert registry.names()[:3] == ["socket-loss", "keeps-serving", "boots"]


def test_the_listing_shows_each_case_with_its_tracker_number_aligned():
    lines = dict(registry.listing())
    for name, case in registry.cases().items():
        assert name in lines and "``" not in lines[name]
        if case.tracker:
            assert lines[name].startswith(f"#{case.tracker}")
    out = run_cli("--list-scenarios").stdout.splitlines()
    assert [ln.split()[0] for ln in out[: len(lines) - 2]] == list(lines)[: len(lines) - 2]
    starts = {len(ln) - len(ln[ln.index("  ") :].lstrip()) for ln in out}
    assert len(starts) == 1, out  # every description starts in the same column


def test_an_unknown_name_lists_the_catalogue_too():
    with pytest.raises(ScenarioError, match="reload-leak"):
        registry.create("reload-leek", Options())


def test_a_file_says_its_timeout_tracker_and_id_or_is_refused(tmp_path):
    own = load(DATA / "life_fixture.py")
    assert (own.timeout, own.tracker, own.osv_id) == (45.0, 1, "")
    bad = tmp_path / "bad.py"
    bad.write_text("TIMEOUT = -1\ndef check(server):\n    return 'pass', ''\n")
    with pytest.raises(ScenarioError, match="TIMEOUT must be a positive number"):
        load(bad)
    bad.write_text("CANNOT = {'prxy': 'x'}\ndef check(server):\n    return 'pass', ''\n")
    with pytest.raises(ScenarioError, match="CANNOT must map options"):
        load(bad)


# -- every case x every option: applied the same way, or refused in one line ----------------------
def each_option(tmp_path: Path) -> dict[str, Options]:
    (tmp_path / "app.py").write_text("app = None\n")
    config = tmp_path / "conf.py"
    config.write_text("workers = 2\n")
    return {
        "proxy": Options(proxy="nginx"),
        "app": Options(app="app:app", app_dir=tmp_path),
        "bind": Options(bind="tcp"),
        "worker_class": Options(worker_class="sync"),
        "with": Options(requirements=requirements.parse(["six"])),
        "load": Options(load="wrk", bind="tcp"),
        "gunicorn_config": Options(gunicorn_config=config),
        "path": Options(path="/health"),
        "trigger": Options(trigger="signal"),
        "workers": Options(workers=2),
    }


def applied(option: str, sc: CaseScenario, o: Options) -> bool:
    """The option reached the server the lifecycle boots (or its record)."""
    spec, params = sc.spec(10.0), sc.parameters()
    return {
        "proxy": params["proxy"] == o.proxy,
        "app": spec.app == o.app and spec.app_source is None and spec.app_dir == o.app_dir,
        "bind": spec.bind == "tcp",
        "worker_class": spec.settings.get("worker_class") == "sync",
        "with": "six" in sc.requirements().requirements,
        "load": params.get("load") == "wrk",
        "gunicorn_config": spec.config_file == o.gunicorn_config,
        "path": spec.path == o.path,
        "trigger": spec.settings.get("max_requests") == 0,
        "workers": spec.settings.get("workers") == 2,
    }[option]


def test_every_case_takes_every_option_or_refuses_it_in_one_line(tmp_path):
    table: dict[tuple[str, str], str] = {}
    for name, case in registry.cases().items():
        for option, o in each_option(tmp_path).items():
            try:
                sc = registry.create(name, o)
            except ScenarioError as exc:
                line = str(exc)
                assert "\n" not in line and line.startswith(f"--scenario {name}: cannot honour")
                assert case.cannot[option] in line and registry.refused(name, o) == line
                table[name, option] = "refused"
            else:
                assert option not in case.cannot and registry.refused(name, o) == ""
                assert applied(option, sc, o), (name, option)
                table[name, option] = "applied"
    # what users rely on: every case goes through a proxy but the one that needs a
    # connection straight to gunicorn; load and trigger drive the recycling cases only
    assert table["keepalive-slow", "proxy"] == "refused"
    for name in ("boots", "reload-broken-app", "reload-drops", "reload-leak", "respawn"):
        assert table[name, "proxy"] == "applied"  # with keepalive-slow: the six that ignored it
        assert table[name, "load"] == table[name, "trigger"] == "refused"
    for name in ("socket-loss", "keeps-serving"):
        assert {o for (n, o), v in table.items() if n == name and v == "refused"} == set()
    assert table["boots", "app"] == "applied"


def test_an_app_dir_with_a_gunicorn_package_is_refused_before_anything_runs(tmp_path):
    (tmp_path / "app.py").write_text("app = None\n")
    (tmp_path / "gunicorn").mkdir()
    with pytest.raises(ScenarioError, match="would replace every target's gunicorn"):
        registry.create("socket-loss", Options(app="app:app", app_dir=tmp_path))
    proc = run_cli("--check", "19.5.0", "--app", "app:app", "--app-dir", str(tmp_path))
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0 and "gunicorn" in proc.stderr


@pytest.mark.real
def test_every_fixture_method_on_a_real_gunicorn(cache_dir, tmp_path, no_leaks):
    report = run_json(
        "23.0.0",
        "--no-commits",
        "--scenario",
        str(DATA / "life_fixture.py"),
        cache_dir=cache_dir,
        results_dir=tmp_path,
    )
    (row,) = report["rows"]
    assert row["verdict"] == "pass", row["detail"]
