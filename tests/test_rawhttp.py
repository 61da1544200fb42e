"""harness.host.rawhttp against a real HTTP/1.1 server (stdlib, in a thread), TCP and Unix."""

from __future__ import annotations

import time

import pytest

from harness.host.rawhttp import ENDINGS, RawConnection, exchange, request
from tests.local_http import free_address, serve

pytestmark = pytest.mark.local


@pytest.fixture(params=["tcp", "unix"])
def server(request, tmp_path):
    with serve(request.param, str(tmp_path / "s.sock")) as (srv, address):
        yield srv, address


def test_a_response_comes_back_whole(server) -> None:
    _, address = server
    reply = exchange(address, request("/"))
    assert reply.ended == "response"
    assert reply.status == 200 and reply.status_line.startswith("HTTP/1.1 200")
    assert reply.header("content-length") == "5" and reply.body == b"hello"
    assert reply.raw.endswith(b"\r\n\r\nhello")
    assert reply.as_json()["ended"] in ENDINGS


def test_chunked_and_close_delimited_bodies(server) -> None:
    _, address = server
    chunked = exchange(address, request("/chunked"))
    assert (chunked.ended, chunked.body) == ("response", b"hello world")
    closed = exchange(address, request("/close"))
    assert (closed.ended, closed.status, closed.body) == ("closed", 200, b"until close")


def test_head_has_no_body_even_with_a_length(server) -> None:
    _, address = server
    reply = exchange(address, request("/", method="HEAD"), head=True)
    assert (reply.ended, reply.status, reply.body) == ("response", 200, b"")


def test_a_kept_alive_connection_is_reused(server) -> None:
    _, address = server
    with RawConnection(address) as conn:
        conn.send(request("/"))
        first = conn.read()
        conn.send(request("/"))
        second = conn.read()
    assert (first.header("X-Nth"), second.header("X-Nth")) == ("1", "2")


def test_pipelined_requests_are_read_one_by_one(server) -> None:
    _, address = server
    with RawConnection(address) as conn:
        conn.send(request("/") * 2)
        replies = [conn.read(), conn.read()]
    assert [r.header("X-Nth") for r in replies] == ["1", "2"]


def test_a_request_slower_than_the_keepalive_gets_an_empty_reply(server) -> None:
    # the server closes a connection idle for 2 s; the second request starts, pauses, goes on
    _, address = server
    with RawConnection(address, timeout=5) as conn:
        conn.send(request("/"))
        assert conn.read().status == 200
        conn.send(b"GET / HTTP/1.1\r\n")
        time.sleep(2.5)
        conn.send(b"Host: localhost\r\n\r\n")
        late = conn.read()
    assert late.ended in ("closed", "reset") and late.status is None and late.empty


def test_reset_timeout_and_limit_are_outcomes_not_exceptions(server) -> None:
    _, address = server
    if isinstance(address, tuple):  # a Unix socket cannot be reset, only closed
        assert exchange(address, request("/reset")).ended == "reset"
    slow = exchange(address, request("/slow"), timeout=0.5)
    assert slow.ended == "timeout" and 0.4 < slow.seconds < 1.4
    big = exchange(address, request("/big"), max_bytes=64 * 1024)
    assert big.ended == "limit" and len(big.raw) == 64 * 1024
    bad = exchange(address, request("/badlength"))
    assert (bad.ended, bad.status) == ("malformed", 200)


def test_nothing_listening_is_refused(tmp_path) -> None:
    assert exchange(free_address(), request("/")).ended == "refused"
    gone = exchange(str(tmp_path / "nothing.sock"), request("/"))
    assert (gone.ended, gone.error) == ("refused", "ENOENT")
