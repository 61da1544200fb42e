"""The registry names the catalogue's cases, and the fixture API they use works on a real
gunicorn (every method once, from a scenario file)."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.scenarios import registry
from harness.scenarios.base import Options, ScenarioError
from harness.scenarios.user import UserScenario
from harness.scenarios.user_file import load
from tests.conftest import run_cli, run_json

pytestmark = pytest.mark.local

DATA = Path(__file__).parent / "data"
TRACKERS = {
    "reload-leak": 3648,
    "reload-drops": 3394,
    "keepalive-slow": 3025,
    "reload-broken-app": 2244,
    "respawn": None,
}


@pytest.mark.parametrize("name", sorted(TRACKERS))
def test_each_catalogue_name_resolves_to_its_file(name):
    scenario = registry.create(name, Options())
    assert isinstance(scenario, UserScenario)
    about = scenario.about()
    assert about.name == name and about.record.get("tracker") == TRACKERS[name]
    assert Path(about.record["path"]) == registry.CATALOGUE[name].resolve()
    assert str(Path.cwd()) not in about.summary  # the package's path, not this checkout's


def test_the_listing_shows_each_case_with_its_tracker_number():
    lines = dict(registry.listing())
    for name, tracker in TRACKERS.items():
        assert name in lines
        if tracker:
            assert lines[name].startswith(f"#{tracker}")
    out = run_cli("--list-scenarios").stdout
    assert all(name in out for name in TRACKERS)


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
