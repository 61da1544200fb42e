"""What the advisory cases (``adv_*.py``) share: the echo apps, the request bytes, the
reading of one reply into an outcome, and the observe/decide of a smuggling case.

A smuggling request's body can be framed two ways: by its ``Content-Length`` (the body is
``LENGTH_BODY``; the rest would be a second request, ``SMUGGLED``) or as ``chunked`` (the
body is ``SMUGGLED``).  The echo app answers with the body it got, so the reply names the
framing the server chose (``outcome``): ``length``, ``chunked`` or ``refused``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

#: a WSGI app for Python 2.7 and 3.x: the path and the body it got, in hex; on /crlf it
#: puts the (percent-decoded) query string into a response header, as an app that echoes
#: user input would (CVE-2018-1000164)
ECHO_APP = """
import binascii
try:
    from urllib.parse import unquote
except ImportError:
    from urllib import unquote


def app(environ, start_response):
    body = environ['wsgi.input'].read()
    out = ('path=%s\\nbody=%s\\n' % (
        environ.get('PATH_INFO', ''), binascii.hexlify(body).decode('ascii'))).encode('ascii')
    headers = [('Content-Type', 'text/plain'), ('Content-Length', str(len(out)))]
    if environ.get('PATH_INFO') == '/crlf':
        headers.append(('X-Echo', unquote(environ.get('QUERY_STRING', ''))[2:]))
    start_response('200 OK', headers)
    return [out]
"""

#: the same echo as an ASGI app (the ``asgi`` worker, gunicorn >= 25)
ASGI_ECHO_APP = """
import binascii


async def app(scope, receive, send):
    if scope['type'] == 'lifespan':
        while True:
            message = await receive()
            kind = message['type'].replace('.startup', '.startup.complete')
            kind = kind.replace('.shutdown', '.shutdown.complete')
            await send({'type': kind})
            if message['type'] == 'lifespan.shutdown':
                return
    body = b''
    while True:
        message = await receive()
        body += message.get('body', b'')
        if not message.get('more_body'):
            break
    out = ('path=%s\\nbody=%s\\n' % (scope['path'], binascii.hexlify(body).decode())).encode()
    headers = [(b'content-type', b'text/plain'), (b'content-length', str(len(out)).encode())]
    await send({'type': 'http.response.start', 'status': 200, 'headers': headers})
    await send({'type': 'http.response.body', 'body': out})
"""

SMUGGLED = b"GET /smuggled HTTP/1.1\r\nHost: localhost\r\n\r\n"
#: SMUGGLED as one chunk: a chunked reader's whole body
CHUNKED = b"%x\r\n" % len(SMUGGLED) + SMUGGLED + b"\r\n0\r\n\r\n"
#: what a Content-Length reader takes: the chunk-size line only
LENGTH_BODY = CHUNKED[: CHUNKED.index(b"\r\n") + 2]


def post(framing: bytes, body: bytes = CHUNKED, path: str = "/echo") -> bytes:
    """A POST with the framing header lines given (each ending in CRLF) and ``body``."""
    head = f"POST {path} HTTP/1.1\r\nHost: localhost\r\n".encode()
    return head + framing + b"\r\n" + body


#: a well-formed chunked POST: every release must read it as chunked (the control)
CONTROL = post(b"Transfer-Encoding: chunked\r\n")


def outcome(reply: Any, length_body: bytes = LENGTH_BODY, chunked_body: bytes = SMUGGLED) -> str:
    """How the server framed the request's body, from its one reply."""
    if reply.status is None:
        if reply.ended in ("closed", "reset"):
            return "refused"  # closed the connection without an answer
        return f"no answer ({reply.ended})"
    if reply.status >= 400:
        return "refused"
    text = reply.body.decode("latin-1")
    body = dict(ln.split("=", 1) for ln in text.splitlines() if "=" in ln).get("body", "")
    if body == chunked_body.hex():
        return "chunked"
    if body == length_body.hex():
        return "length"
    return f"HTTP {reply.status}, body {bytes.fromhex(body)[:40]!r}" if body else "unframed"


def seen(reply: Any) -> dict[str, Any]:
    """One reply as a case records it: what a decide needs, nothing live."""
    return {
        "status": reply.status,
        "line": reply.status_line,
        "ended": reply.ended,
        "outcome": outcome(reply),
        "headers": [list(h) for h in reply.headers],
    }


def observer(vectors: dict[str, bytes], wait: float = 5.0) -> Callable[[Any], dict[str, Any]]:
    """A case's ``observe``: the control, then each vector, each on a fresh connection."""

    def observe(server: Any) -> dict[str, Any]:
        control = seen(server.exchange(CONTROL, 5.0))
        return {
            "control": control,
            "vectors": {n: seen(server.exchange(d, wait)) for n, d in vectors.items()},
        }

    return observe


def control_failed(obs: dict[str, Any]) -> tuple[str, str] | None:
    """error when the control (a well-formed chunked POST) was not read as chunked."""
    control = obs["control"]
    if control["outcome"] == "chunked":
        return None
    shown = control["line"] or control["ended"]
    return "error", f"the control (a well-formed chunked POST) was not served: {shown}"


def judge(obs: dict[str, Any], bad: dict[str, set[str]], what: str) -> tuple[str, str]:
    """fail: a vector's outcome is one of its ``bad`` ones; pass: none; error: no control."""
    if failed := control_failed(obs):
        return failed
    outcomes = {name: v["outcome"] for name, v in obs["vectors"].items()}
    shown = "; ".join(f"{name}: {o}" for name, o in outcomes.items())
    failing = [name for name, o in outcomes.items() if o in bad[name]]
    if failing:
        return "fail", f"{what}: {shown}"
    odd = [o for o in outcomes.values() if o not in ("refused", "length", "chunked")]
    if odd:
        return "error", f"an answer the case cannot read: {shown}"
    return "pass", f"control served; {shown}"


def judged(bad: dict[str, set[str]], what: str) -> Callable[[dict[str, Any]], tuple[str, str]]:
    """A smuggling case's ``decide``: ``judge`` with its ``bad`` outcomes."""
    return lambda obs: judge(obs, bad, what)
