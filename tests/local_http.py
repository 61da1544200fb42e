"""A real HTTP/1.1 server in a thread (stdlib), on loopback TCP or a Unix socket, for tests.

It keeps connections alive, counts requests per connection (``X-Nth``), and can be
switched to misbehave (``server.fail = 503`` / ``"reset"``) while a test's action runs.
"""

from __future__ import annotations

import contextlib
import http.server
import socket
import socketserver
import struct
import threading
import time
from collections.abc import Iterator


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = 2.0  # an idle kept-alive connection is closed after this (like `keepalive`)

    def setup(self) -> None:
        super().setup()
        self.nth = 0

    def log_message(self, *args) -> None:  # quiet, and Unix peers have no address
        pass

    def address_string(self) -> str:
        return "local"

    def _send(self, status: int, body: bytes, headers: dict | None = None) -> None:
        self.send_response(status)
        for k, v in (headers or {"Content-Length": str(len(body))}).items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _reset(self) -> None:
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.connection.close()
        self.close_connection = True

    def do_GET(self) -> None:  # noqa: N802 - the stdlib's name
        self.nth += 1
        fail = self.server.fail
        if fail == "reset" or self.path == "/reset":
            return self._reset()
        if isinstance(fail, int):
            return self._send(fail, b"failing\n")
        if self.path == "/chunked":
            self._send(200, b"", {"Transfer-Encoding": "chunked"})
            self.wfile.write(b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n")
            return
        if self.path == "/close":  # no framing: the body ends with the connection
            self._send(200, b"until close", {"Connection": "close"})
            self.close_connection = True
            return
        if self.path == "/badlength":
            self.wfile.write(b"HTTP/1.1 200 OK\r\nContent-Length: abc\r\n\r\n")
            self.close_connection = True
            return
        if self.path == "/slow":
            time.sleep(1.5)
        if self.path == "/big":
            return self._send(200, b"x" * (1 << 20))
        self._send(200, b"hello", {"Content-Length": "5", "X-Nth": str(self.nth)})

    do_HEAD = do_GET


class _Quiet:
    def handle_error(self, request, client_address) -> None:  # a client that left early
        pass


class _Tcp(_Quiet, http.server.ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 512
    fail: int | str | None = None


class _Unix(_Quiet, socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True
    fail: int | str | None = None


def free_address() -> tuple[str, int]:
    """A loopback TCP address nothing listens on right now (for "refused")."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()


@contextlib.contextmanager
def serve(bind: str = "tcp", path: str = "") -> Iterator[tuple[object, str | tuple[str, int]]]:
    """(server, address) while a server thread runs; stopped and closed afterwards."""
    server = _Unix(path, Handler) if bind == "unix" else _Tcp(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield server, (path if bind == "unix" else server.server_address[:2])
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
