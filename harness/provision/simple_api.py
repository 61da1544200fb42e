"""The simple repository API, read-only and pure: a project page -> its files.

PEP 691 JSON (``application/vnd.pypi.simple.v1+json``) and PEP 503 HTML (anchors, with
``#sha256=`` fragments, ``data-requires-python`` and PEP 592 ``data-yanked``); every URL is
resolved against the page it came from, because mirrors answer with relative links.
The version of each file comes from its name (wheel or sdist), as pip reads it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from html.parser import HTMLParser
from urllib.parse import unquote, urljoin

from packaging.utils import (
    InvalidSdistFilename,
    InvalidWheelFilename,
    canonicalize_name,
    parse_sdist_filename,
    parse_wheel_filename,
)
from packaging.version import InvalidVersion

JSON_TYPE = "application/vnd.pypi.simple.v1+json"
_ABSOLUTE = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://")
ACCEPT = f"{JSON_TYPE}, application/vnd.pypi.simple.v1+html;q=0.2, text/html;q=0.1"


@dataclass(frozen=True)
class DistFile:
    filename: str
    url: str
    sha256: str  # "" when the index gives no sha256
    packagetype: str  # "bdist_wheel" or "sdist"
    requires_python: str | None
    size: int | None = None  # bytes, when the index says (PEP 700)


@dataclass(frozen=True)
class Link:
    """One file as a project page lists it."""

    filename: str
    url: str  # absolute, without the hash fragment
    sha256: str
    requires_python: str | None
    yanked: bool
    size: int | None = None


#: A file name we may write under the cache: one path component, the characters wheel and
#: sdist names use.  Names come from the network; ``..%2F`` or a PEP 691 ``filename``
#: with a ``/`` must never become a path outside the cache.
_SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+!-]*$")


def safe_filename(name: str) -> bool:
    """True when ``name`` is one harmless path component (no separator, no ``..``)."""
    return bool(_SAFE_NAME.match(name)) and ".." not in name and len(name) <= 255


def normalize(name: str) -> str:
    """PEP 503 normalized name: the page is ``<index>/<normalized>/``."""
    return re.sub(r"[-_.]+", "-", name).lower()


def _link(href: str, base: str, requires_python: str | None, yanked: bool) -> Link | None:
    url = href.strip()
    if not _ABSOLUTE.match(url):  # relative to the page (or to its <base>)
        url = urljoin(base, url)
    url, _, fragment = url.partition("#")
    filename = unquote(url.partition("?")[0].rsplit("/", 1)[-1])
    if not safe_filename(filename):
        return None  # not a file we could name safely: no wheel or sdist of ours
    algo, _, digest = fragment.partition("=")
    sha256 = digest.lower() if algo.lower() == "sha256" else ""
    return Link(filename, url, sha256, (requires_python or "").strip() or None, yanked)


class _Anchors(HTMLParser):
    def __init__(self, page_url: str) -> None:
        super().__init__(convert_charrefs=True)
        self.base = page_url
        self.links: list[Link] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "base" and a.get("href"):
            self.base = urljoin(self.base, a["href"] or "")
        elif tag == "a" and a.get("href"):
            link = _link(
                a["href"] or "", self.base, a.get("data-requires-python"), "data-yanked" in a
            )
            if link is not None:
                self.links.append(link)


def parse_html(text: str, page_url: str) -> list[Link]:
    """PEP 503: every anchor of the page (attribute values arrive unescaped)."""
    parser = _Anchors(page_url)
    parser.feed(text)
    parser.close()
    return parser.links


class PageError(ValueError):
    """A project page that is not what the simple API promises (one line: which field)."""


def _field(f: dict, name: str, kinds: tuple[type, ...], where: int):
    value = f.get(name)
    wrong = value is not None and not isinstance(value, kinds)
    if wrong or (isinstance(value, bool) and bool not in kinds):  # True is an int too
        raise PageError(
            f"PEP 691 files[{where}].{name} is a {type(value).__name__}, "
            f"not {' or '.join(k.__name__ for k in kinds)}"
        )
    return value


def parse_json(doc: dict, page_url: str) -> list[Link]:
    """PEP 691: the ``files`` list; ``yanked`` is false or true/a reason.  A field of the
    wrong type is a PageError naming it, never an internal error."""
    if not isinstance(doc, dict) or not isinstance(doc.get("files"), list):
        raise PageError("not a PEP 691 project page (no 'files' list)")
    links = []
    for i, f in enumerate(doc["files"]):
        if not isinstance(f, dict):
            raise PageError(f"PEP 691 files[{i}] is a {type(f).__name__}, not an object")
        url = _field(f, "url", (str,), i)
        if not url:
            raise PageError(f"PEP 691 files[{i}] has no url")
        hashes = _field(f, "hashes", (dict,), i) or {}
        sha256 = hashes.get("sha256") or ""
        if not isinstance(sha256, str):
            raise PageError(f"PEP 691 files[{i}].hashes.sha256 is not a string")
        requires = _field(f, "requires-python", (str,), i)
        yanked = _field(f, "yanked", (bool, str), i)
        size = _field(f, "size", (int,), i)
        link = _link(url, page_url, requires, bool(yanked))
        name = _field(f, "filename", (str,), i) or (link.filename if link else "")
        if link is None or not safe_filename(name):
            continue  # a name we cannot write safely is no file of ours
        links.append(Link(name, link.url, sha256.lower(), link.requires_python, link.yanked, size))
    return links


def release_of(link: Link, project: str) -> tuple[str, DistFile] | None:
    """(version, file) for a wheel or sdist of ``project``; None for anything else."""
    name = link.filename
    try:
        if name.endswith(".whl"):
            dist, version, _, _ = parse_wheel_filename(name)
            kind = "bdist_wheel"
        elif name.endswith((".tar.gz", ".zip")):
            dist, version = parse_sdist_filename(name)
            kind = "sdist"
        else:
            return None  # eggs, .exe installers, signatures
    except (InvalidWheelFilename, InvalidSdistFilename, InvalidVersion):
        return None
    if canonicalize_name(dist) != canonicalize_name(project):
        return None
    return str(version), DistFile(
        name, link.url, link.sha256, kind, link.requires_python, link.size
    )
