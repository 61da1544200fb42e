"""Readiness does not assume the app: a server that answers HTTP at all (any status)
with its workers booted is up; what a status means is the scenario's to say."""

from __future__ import annotations

import textwrap

import pytest

from harness.scenarios import registry
from harness.scenarios.base import Options
from harness.scenarios.server import Healthy, answer_once, probe_once, served
from tests.conftest import check_with_scenario
from tests.local_http import serve

pytestmark = pytest.mark.pure


@pytest.mark.parametrize("result", ["ok", "HTTP 404", "HTTP 500", "HTTP 302", "404", "200"])
def test_any_http_status_is_an_answer(result):
    assert served(result, proxied=False)
    assert served(result, proxied=True)


@pytest.mark.parametrize(
    "result", ["ECONNREFUSED", "ENOENT", "timeout", "empty response", "bad response", "ReadTimeout"]
)
def test_no_http_status_is_no_answer(result):
    assert not served(result, proxied=False)


@pytest.mark.parametrize("status", ["502", "503", "504"])
def test_a_gateway_error_is_served_only_when_no_proxy_is_in_front(status):
    """Through h2o or nginx a 502 is the proxy's word for a dead upstream; without one
    it is what the app itself answered."""
    assert not served(f"HTTP {status}", proxied=True)
    assert not served(status, proxied=True)
    assert served(f"HTTP {status}", proxied=False)


NO_ROOT = '''\
"""An app with no / route: only /health answers 200."""

APP = """
def app(environ, start_response):
    ok = environ["PATH_INFO"] == "/health"
    body = b"healthy" if ok else b"no such page"
    start_response("200 OK" if ok else "404 Not Found", [("Content-Length", str(len(body)))])
    return [body]
"""


def check(server):
    root, health = server.probe("/"), server.probe("/health")
    verdict = "pass" if (root, health) == ("HTTP 404", "ok") else "fail"
    return verdict, f"/ -> {root}; /health -> {health}"
'''


@pytest.mark.real
def test_an_app_without_a_root_route_boots_and_is_judged(cache_dir, tmp_path, no_leaks):
    """A 404 on / is an answer: the server is up, and check() sees both statuses."""
    scenario = tmp_path / "no_root.py"
    scenario.write_text(textwrap.dedent(NO_ROOT))
    proc = check_with_scenario("19.5.0", scenario, cache_dir, tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "not listening" not in proc.stdout
    assert "19.5.0: pass" in proc.stdout
    assert "/ -> HTTP 404; /health -> ok" in proc.stdout


def test_the_probed_path_is_named_only_when_it_is_not_the_default():
    """Records of default runs keep their keys; another path shows in header and record."""
    plain = registry.create("socket-loss", Options()).about()
    assert "path" not in plain.parameters and "path=" not in plain.summary
    other = registry.create("keeps-serving", Options(path="/health")).about()
    assert other.parameters["path"] == "/health"
    assert other.summary.endswith(" path=/health")
    assert other.record["parameters"]["path"] == "/health"


# -- after the event, "served" is the app's own healthy answer ---------------------------------
def test_served_against_a_healthy_answer_is_that_answer_only():
    """A 500 from an app that answered 200 before is no answer; a 404 from an app whose
    --path answered 404 before is (the app's own healthy answer)."""
    ok, missing = Healthy("200", "d1"), Healthy("404")
    assert served("ok", True, ok) and not served("HTTP 500", False, ok)
    assert not served("HTTP 200 (another body)", False, ok)
    assert served("HTTP 404", False, missing) and not served("ok", False, missing)
    assert not Healthy("500").ok and not Healthy("timeout").ok and Healthy("404").ok


@pytest.mark.local
def test_a_probe_tells_the_healthy_body_from_another():
    with serve() as (server, address):
        status, digest = answer_once(address, 2.0, "/")
        healthy = Healthy("200", digest)
        assert (status, probe_once(address, 2.0, "/", healthy)) == ("ok", "ok")
        assert probe_once(address, 2.0, "/close", healthy) == "HTTP 200 (another body)"
        server.fail = 503
        assert probe_once(address, 2.0, "/", healthy) == "HTTP 503"
