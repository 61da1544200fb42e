"""Secrets in URLs (``https://user:token@host/...``) never reach a message, a record or a
path: anything we print or name after a URL goes through here first."""

from __future__ import annotations

import re

# userinfo of any scheme://user[:password]@host, wherever it sits in a line of text
_USERINFO = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)[^/@\s]*@")


def redact_url(url: str) -> str:
    """``url`` with its user and password (if any) replaced by ``***``."""
    return _USERINFO.sub(lambda m: f"{m['scheme']}***@", url)


def redact_text(text: str) -> str:
    """Every URL's userinfo in ``text`` (an error message that quotes a URL) redacted."""
    return redact_url(text)
