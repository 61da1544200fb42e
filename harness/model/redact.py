"""Secrets out of every line we print or record: ``user:pass@`` in a URL becomes
``***@``, so a record, a "Reproduce with:" line or an error can be shared as is."""

from __future__ import annotations

import re
from collections.abc import Sequence

# scheme://userinfo@host... ; the userinfo ends at the LAST '@' before the path (urllib and
# pip split there: a password may hold '@'), and has no '/', '?', '#' or blank
_USERINFO = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)(?P<userinfo>[^/?# \t\r\n]+)@")

REDACTED = "***"


def redact_url(text: str) -> str:
    """Any ``scheme://user[:password]@`` inside ``text`` with the userinfo hidden."""
    return _USERINFO.sub(lambda m: f"{m['scheme']}{REDACTED}@", text)


def without_userinfo(text: str) -> str:
    """Every URL's ``user[:password]@`` removed (what may be kept on disk)."""
    return _USERINFO.sub(lambda m: m["scheme"], text)


def redact_argv(argv: Sequence[str]) -> list[str]:
    """Every URL's userinfo hidden (``--opt=URL``, ``--opt URL``, positional)."""
    return [redact_url(a) for a in argv]
