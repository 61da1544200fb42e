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


@dataclass(frozen=True)
class Link:
    """One file as a project page lists it."""

    filename: str
    url: str  # absolute, without the hash fragment
    sha256: str
    requires_python: str | None
    yanked: bool


def normalize(name: str) -> str:
    """PEP 503 normalized name: the page is ``<index>/<normalized>/``."""
    return re.sub(r"[-_.]+", "-", name).lower()


def _link(href: str, base: str, requires_python: str | None, yanked: bool) -> Link | None:
    url = href.strip()
    if not _ABSOLUTE.match(url):  # relative to the page (or to its <base>)
        url = urljoin(base, url)
    url, _, fragment = url.partition("#")
    filename = unquote(url.partition("?")[0].rsplit("/", 1)[-1])
    if not filename:
        return None
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


def parse_json(doc: dict, page_url: str) -> list[Link]:
    """PEP 691: the ``files`` list; ``yanked`` is false or true/a reason."""
    if not isinstance(doc.get("files"), list):
        raise ValueError("not a PEP 691 project page (no 'files' list)")
    links = []
    for f in doc["files"]:
        link = _link(f["url"], page_url, f.get("requires-python"), bool(f.get("yanked")))
        if link is None:
            continue
        sha256 = (f.get("hashes") or {}).get("sha256", "").lower()
        links.append(
            Link(
                f.get("filename") or link.filename,
                link.url,
                sha256,
                link.requires_python,
                link.yanked,
            )
        )
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
    return str(version), DistFile(name, link.url, link.sha256, kind, link.requires_python)
