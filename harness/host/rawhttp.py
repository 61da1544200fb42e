"""A raw HTTP/1.x exchange: bytes in; status line, headers, body and how it ended out.

Parser and keep-alive bugs live below what a client library shows: ``requests`` retries,
hides a reset behind an exception, and cannot send slowly on a kept-alive connection
(#3025: a request slower than ``keepalive`` gets an empty reply).  Here every byte is the
caller's, every read is bounded (a deadline, a size cap), and the outcome is a frozen
``Reply`` whose ``ended`` is one of ``ENDINGS``, never an exception.  An address is a Unix
socket path (``str``) or ``(host, port)``.
"""

from __future__ import annotations

import errno
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass

#: How a read ended.  "response": a whole response by its framing (Content-Length,
#: chunked, or none for HEAD/1xx/204/304); "closed": the peer closed (a body framed by
#: the close is complete then); "reset": ECONNRESET/EPIPE; "timeout": the deadline
#: passed; "limit": ``max_bytes`` reached; "refused": nothing accepted the connection;
#: "malformed": a length or chunk size that is not a number (the body cannot be framed).
ENDINGS = ("response", "closed", "reset", "timeout", "limit", "refused", "malformed")
_NO_BODY = (204, 304)


@dataclass(frozen=True)
class Reply:
    """One response as it came off the wire (or the lack of one, and why)."""

    ended: str
    status_line: str = ""
    status: int | None = None
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes = b""
    raw: bytes = b""  # every byte read for this response
    error: str = ""  # errno name ("ECONNRESET"), when the socket said one
    seconds: float = 0.0

    def header(self, name: str) -> str | None:
        """The first header called ``name`` (any case), or None."""
        return next((v for k, v in self.headers if k.lower() == name.lower()), None)

    @property
    def empty(self) -> bool:
        """Nothing at all came back: the "empty reply" of curl."""
        return not self.raw

    def as_json(self) -> dict:
        return {
            "ended": self.ended,
            "status_line": self.status_line,
            "status": self.status,
            "headers": [list(h) for h in self.headers],
            "body_bytes": len(self.body),
            "error": self.error,
            "seconds": round(self.seconds, 3),
        }


class _Ended(Exception):
    def __init__(self, ended: str, error: str = "") -> None:
        self.ended, self.error = ended, error


def _ending(exc: OSError) -> _Ended:
    if isinstance(exc, socket.timeout):
        return _Ended("timeout")
    name = errno.errorcode.get(exc.errno or 0, type(exc).__name__)
    refused = exc.errno in (errno.ECONNREFUSED, errno.ENOENT, errno.ECONNABORTED)
    return _Ended("refused" if refused else "reset", name)


def _parse_head(head: bytes) -> tuple[str, int | None, tuple[tuple[str, str], ...]]:
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ", 2)
    ok = len(parts) >= 2 and parts[0].startswith("HTTP/") and parts[1].isdigit()
    headers = tuple(
        (k.strip(), v.strip()) for k, sep, v in (ln.partition(":") for ln in lines[1:]) if sep
    )
    return lines[0], int(parts[1]) if ok else None, headers


class RawConnection:
    """One connection to send bytes on and read responses from, in any rhythm.

    ``with RawConnection(addr) as c: c.send(req); first = c.read(); time.sleep(3);
    c.send(req); second = c.read()`` -- what a kept-alive client does, slowly.
    """

    def __init__(
        self, address: str | tuple[str, int], timeout: float = 5.0, max_bytes: int = 1 << 20
    ) -> None:
        self.address, self.timeout, self.max_bytes = address, timeout, max_bytes
        self._buf = b""
        self._raw = bytearray()  # every byte read for the response being read
        self._deadline = 0.0
        self._failed: _Ended | None = None  # the connect failed: every read says so
        self._send_failed: _Ended | None = None
        family = socket.AF_UNIX if isinstance(address, str) else socket.AF_INET
        self._sock = socket.socket(family, socket.SOCK_STREAM)
        self._sock.settimeout(timeout)
        try:
            self._sock.connect(address)
        except OSError as exc:
            self._failed = _ending(exc)
            if self._failed.ended == "timeout":
                self._failed = _Ended("refused", "connect timeout")

    def send(self, data: bytes) -> bool:
        """Send all of ``data``; False (and the next read says why) when it could not."""
        if self._failed or self._send_failed:
            return False
        try:
            self._sock.sendall(data)
            return True
        except OSError as exc:  # the peer may still have answered (a 400, then close)
            self._send_failed = _ending(exc)
            return False

    def _fill(self) -> bool:
        """Read more into the buffer; False on a clean close."""
        left = self._deadline - time.monotonic()
        if left <= 0:
            raise _Ended("timeout")
        if len(self._raw) >= self.max_bytes:
            raise _Ended("limit")
        self._sock.settimeout(left)
        try:
            chunk = self._sock.recv(min(65536, self.max_bytes - len(self._raw)))
        except OSError as exc:
            raise _ending(exc) from exc
        self._raw += chunk
        self._buf += chunk
        return bool(chunk)

    def _until(self, enough: Callable[[bytes], bool]) -> None:
        while not enough(self._buf):
            if not self._fill():
                raise _Ended("closed")

    def _take(self, n: int) -> bytes:
        self._until(lambda buf: len(buf) >= n)
        out, self._buf = self._buf[:n], self._buf[n:]
        return out

    def _before(self, sep: bytes) -> bytes:
        """What comes before ``sep``, taken with it."""
        self._until(lambda buf: sep in buf)
        out, self._buf = self._buf.split(sep, 1)
        return out

    def _chunked(self) -> bytes:
        body = b""
        while size := int(self._before(b"\r\n").split(b";")[0].strip() or b"0", 16):
            body += self._take(size)
            self._take(2)
        while self._before(b"\r\n"):  # trailers, then the empty line
            pass
        return body

    def read(self, head: bool = False, timeout: float | None = None) -> Reply:
        """Read one response (``head``: it answers a HEAD, so it has no body)."""
        start = time.monotonic()
        self._deadline = start + (self.timeout if timeout is None else timeout)
        self._raw = bytearray(self._buf)
        line, status, headers, body = "", None, None, None
        try:
            if self._failed:
                raise self._failed
            line, status, headers = _parse_head(self._before(b"\r\n\r\n"))
            body = self._body(status, {k.lower(): v for k, v in headers}, head)
            ended, error = "response", ""
        except ValueError as exc:
            ended, error = "malformed", str(exc)[:200]
        except _Ended as end:
            ended, error = end.ended, end.error
            if ended == "closed" and not self._raw and self._send_failed:
                ended, error = self._send_failed.ended, self._send_failed.error
            if ended == "closed" and headers is not None and body is None:
                body, self._buf = self._buf, b""  # framed by the close
        raw, seconds = bytes(self._raw), time.monotonic() - start
        return Reply(ended, line, status, headers or (), body or b"", raw, error, seconds)

    def _body(self, status: int | None, names: dict[str, str], head: bool) -> bytes:
        if head or status is None or status < 200 or status in _NO_BODY:
            return b""
        if "chunked" in names.get("transfer-encoding", "").lower():
            return self._chunked()
        if "content-length" in names:
            return self._take(int(names["content-length"]))
        while self._fill():  # no framing: the body ends when the peer closes
            pass
        raise _Ended("closed")

    def close(self) -> None:
        self._sock.close()

    def __enter__(self) -> RawConnection:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def exchange(
    address: str | tuple[str, int],
    data: bytes,
    timeout: float = 5.0,
    max_bytes: int = 1 << 20,
    head: bool = False,
) -> Reply:
    """One fresh connection: send ``data``, read one response, close."""
    with RawConnection(address, timeout, max_bytes) as conn:
        conn.send(data)
        return conn.read(head=head)


def request(
    path: str = "/", method: str = "GET", host: str = "localhost", close: bool = False
) -> bytes:
    """A minimal well-formed request, for callers that only vary the rhythm."""
    extra = "Connection: close\r\n" if close else ""
    return f"{method} {path} HTTP/1.1\r\nHost: {host}\r\n{extra}\r\n".encode()
