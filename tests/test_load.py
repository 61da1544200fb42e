"""tests/load.py (the Load helper) against a real HTTP/1.1 server that misbehaves during the action."""

from __future__ import annotations

import time

import pytest

from tests.load import Load
from tests.local_http import free_address, serve

pytestmark = pytest.mark.local


@pytest.fixture
def tcp():
    with serve("tcp") as (srv, address):
        yield srv, address


def failing_for(srv, how, seconds: float = 0.3) -> None:
    srv.fail = how
    time.sleep(seconds)
    srv.fail = None


def test_a_quiet_action_fails_nothing(tcp) -> None:
    _, address = tcp
    with Load(address, concurrency=4, deadline=10, max_requests=400) as load:
        time.sleep(0.3)
    counts = load.stop()
    assert counts.failed == 0 and counts.ok == counts.requests > 0
    assert counts.requests <= 400 and counts.seconds < 10 + 5
    assert counts.as_json()["failed"] == 0


def test_non_2xx_during_the_action_is_counted_by_status(tcp) -> None:
    srv, address = tcp
    with Load(address, concurrency=4, deadline=10, max_requests=5000) as load:
        failing_for(srv, 503)
        counts = load.stop()
    assert counts.status > 0 and dict(counts.statuses).keys() == {503}
    assert counts.ok > 0  # before and after the action
    assert counts.failed == counts.status and counts.samples[0].endswith("HTTP 503")


def test_resets_during_the_action_are_counted(tcp) -> None:
    srv, address = tcp
    with Load(address, concurrency=4, deadline=10, max_requests=5000, mode="fresh") as load:
        failing_for(srv, "reset")
        counts = load.stop()
    assert counts.reset > 0 and counts.ok > 0


def test_nothing_listening_is_refused_within_the_deadline() -> None:
    start = time.monotonic()
    counts = Load(free_address(), concurrency=2, deadline=0.5).start().stop()
    assert counts.refused == counts.requests > 0 and counts.ok == 0
    assert time.monotonic() - start < 5


def test_the_cap_ends_the_load_and_kept_alive_connections_are_reused(tcp) -> None:
    _, address = tcp
    kept = Load(address, concurrency=2, deadline=20, max_requests=60, mode="keepalive").start()
    assert kept.wait()
    counts = kept.stop()
    assert counts.capped and counts.requests == 60 and counts.ok == 60
    assert counts.connections < 60 // 2
    fresh = Load(address, concurrency=2, deadline=20, max_requests=30, mode="fresh").start()
    assert fresh.wait()
    counts = fresh.stop()
    assert counts.requests == 30 and counts.connections == 30


def test_a_unix_socket_takes_load_too(tmp_path) -> None:
    with serve("unix", str(tmp_path / "s.sock")) as (_, address):
        load = Load(address, concurrency=2, deadline=10, max_requests=40).start()
        assert load.wait()
        counts = load.stop()
    assert counts.requests == 40 and counts.ok == 40
