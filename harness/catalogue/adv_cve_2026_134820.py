"""CVE-2026-134820: the pure-Python ASGI parser accepts malformed framing headers (request smuggling).

Advisory: CVE-2026-134820 (VulnCheck), "Gunicorn 25.2.0 before 27.0.0 ... pure-Python ASGI
parser ... whitespace-padded Transfer-Encoding or Content-Length headers, signed
Content-Length values, or invalid chunk terminators"; no GHSA/PYSEC id.  Needs the
``asgi`` worker (``SINCE``); the Python parser runs because gunicorn_h1c (an optional
extra) is not installed.  ``VECTORS``: ``Content-Length: +4``, and ``Transfer-Encoding :
chunked`` beside ``Content-Length: 4``; fail = either accepted; pass = both refused.
Our runs (24.0.0..27.0.1): pass 24.0.0 ... 25.1.0; fail 25.2.0 ... 26.2.0 (signed CL read
as 4; 25.2.0 also takes 'Transfer-Encoding :'); pass 27.0.0, 27.0.1: the claim agrees.
The introducing commit is ambiguous (untestable commits at the boundary).
"""

from __future__ import annotations

from harness.catalogue import _wire

ID = "CVE-2026-134820"
ALIASES: list[str] = []
CLAIMED = {"CVE-2026-134820": [("25.2.0", "27.0.0")]}
#: the first release with the asgi worker (ae1eea81): older ones have nothing to test
SINCE = "24.0.0"
APP = _wire.ASGI_ECHO_APP
SETTINGS = {"workers": 1, "worker_class": "asgi"}
VECTORS = {
    "signed CL +4": _wire.post(b"Content-Length: +4\r\n", _wire.LENGTH_BODY),
    "TE with a space before the colon + CL": _wire.post(
        b"Content-Length: 4\r\nTransfer-Encoding : chunked\r\n"
    ),
}
BAD = {
    "signed CL +4": {"length", "chunked"},
    "TE with a space before the colon + CL": {"length", "chunked"},
}

observe = _wire.observer(VECTORS)
decide = _wire.judged(BAD, "smuggling: a malformed framing header accepted")
