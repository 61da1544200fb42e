"""The package index: a project's releases and their files, cached on disk.

Indexes, first match wins: ``configure()`` (``--index-url``: exactly those);
``GUNICORN_BISECT_INDEX``; pip's configuration (read_pip_config), where users keep their
mirror. All are read through the simple API (PEP 691 JSON, else HTML), PyPI too: one
protocol, no slower than PyPI's JSON API (cold 203 against 198 ms, half the bytes; warm 19
against 29 ms). Files merge by name (primary index first); yanked ones are left out.

A ``file://`` index is read from disk, uncached; a page missing there is "not on that
index", as for pip. An unreachable http(s) index falls back to its cached page of any age,
else it is one line: a release list missing one index's files would mislead a bisection.
Downloads are checked against the index's sha256. Pages stay fresh a day; credentials in
an index URL go as basic auth to its host only, never printed nor in cache keys.
"""

from __future__ import annotations

import base64
import configparser
import contextlib
import hashlib
import json
import os
import re
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urljoin, urlsplit, urlunsplit
from urllib.request import url2pathname

from packaging.utils import (
    InvalidSdistFilename,
    InvalidWheelFilename,
    canonicalize_name,
    parse_sdist_filename,
    parse_wheel_filename,
)
from packaging.version import InvalidVersion, Version

from harness.host.fsutil import atomic_write_bytes, atomic_write_text, private_temp_file
from harness.model.errors import HarnessError
from harness.model.redact import redact_url

PYPI = "https://pypi.org/simple"
FRESH_SECONDS = 24 * 3600
# A cached page: {v, page, absent, links: [[filename, url, sha256, requires_python, yanked, size]]}
CACHE_FORMAT = 2
USER_AGENT = "gunicorn-bisect (simple API reader)"
#: The most we read of a download (gunicorn's wheels are under 200 KiB, setuptools' 1.5 MiB)
DOWNLOAD_CAP = 64 << 20
PAGE_CAP = 32 << 20  # setuptools' project page is about 1 MiB


class IndexUnavailable(HarnessError):
    """The index is unreachable with nothing cached, or lacks the project."""


class HashMismatch(IndexUnavailable):
    """A download is not the file the index lists (it is not kept)."""


@dataclass(frozen=True)
class Project:
    """The releases of one project: version string -> files."""

    name: str
    releases: dict[str, tuple[DistFile, ...]]
    stale: bool = False

    @property
    def versions(self) -> list[str]:
        return [v for v, files in self.releases.items() if files]


@dataclass(frozen=True)
class Indexes:
    """The indexes a run reads, primary first, without credentials; ``origin`` says why."""

    urls: tuple[str, ...]
    origin: str


_auth: dict[str, str] = {}  # host -> Authorization header, from credentials in index URLs
_explicit: Indexes | None = None
_from_config: Indexes | None = None
_state_lock = threading.Lock()


def _clean(url: str) -> str:
    """The URL without user:password (remembered for its host) nor a trailing slash."""
    parts = urlsplit(url.strip())
    if parts.username is not None:
        secret = f"{unquote(parts.username)}:{unquote(parts.password or '')}"
        netloc = parts.netloc.rpartition("@")[2]
        _auth[netloc] = "Basic " + base64.b64encode(secret.encode()).decode()
        parts = parts._replace(netloc=netloc)
    return urlunsplit(parts).rstrip("/")


def _indexes_of(urls: Sequence[str], origin: str) -> Indexes:
    return Indexes(tuple(dict.fromkeys(_clean(u) for u in urls if u.strip())), origin)


def _as_url(text: str) -> str:
    """An index URL, or a local directory as its file:// URL."""
    if urlsplit(text).scheme in ("http", "https", "file"):
        return text
    if Path(text).expanduser().is_dir():
        return Path(text).expanduser().resolve().as_uri()
    raise IndexUnavailable(
        f"index URL {redact_url(text)!r}: not an http(s):// or file:// URL nor a directory"
    )


def configure(index_url: str | None, extra: Sequence[str] = ()) -> None:
    """Use exactly ``index_url`` (then ``extra``) for this process; None: the default."""
    global _explicit, _from_config
    urls = [_as_url(u) for u in ([index_url, *extra] if index_url else [])]
    with _state_lock:
        _explicit = _indexes_of(urls, "--index-url") if urls else None
        _from_config = None


def indexes() -> Indexes:
    global _from_config
    with _state_lock:
        if _explicit is not None:
            return _explicit
        if _from_config is None:
            own = os.environ.get("GUNICORN_BISECT_INDEX", "").strip()
            if own:
                _from_config = _indexes_of([own], "GUNICORN_BISECT_INDEX")
            else:
                pip = read_pip_config()
                _from_config = _indexes_of([pip.index_url or PYPI, *pip.extra], pip.origin)
        return _from_config


class _AuthPerHost(urllib.request.HTTPRedirectHandler):
    """urllib carries every header across a redirect: credentials must not leave their host
    (indexes commonly redirect downloads to a CDN)."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        new = super().redirect_request(req, fp, code, msg, headers, newurl)
        if new is not None:
            new.remove_header("Authorization")
            auth = _auth.get(urlsplit(new.full_url).netloc)
            if auth:
                new.add_header("Authorization", auth)
        return new


_opener = urllib.request.build_opener(_AuthPerHost)  # with the environment's proxies, as pip


def _open(url: str, timeout: float, accept: str | None = None):
    headers = {"User-Agent": USER_AGENT}
    if accept:
        headers["Accept"] = accept
    auth = _auth.get(urlsplit(url).netloc)
    if auth:
        headers["Authorization"] = auth
    return _opener.open(urllib.request.Request(url, headers=headers), timeout=timeout)


def _reason(exc: BaseException) -> str:
    if isinstance(exc, urllib.error.HTTPError):
        return f"HTTP {exc.code} {exc.reason}"
    return redact_url(str(getattr(exc, "reason", exc)))


@dataclass(frozen=True)
class _Page:
    links: tuple[Link, ...] | None  # None: the project is not on this index
    stale: bool = False


def _fetch(page_url: str) -> dict:
    """The page as a cacheable document: absent (404/410) or its links."""
    try:
        with _open(page_url, timeout=30, accept=ACCEPT) as resp:
            body, final = resp.read(PAGE_CAP + 1), resp.geturl()
            ctype = resp.headers.get_content_type()
            charset = resp.headers.get_content_charset() or "utf-8"
    except urllib.error.HTTPError as exc:
        if exc.code in (404, 410):
            return {"v": CACHE_FORMAT, "page": page_url, "absent": True, "links": []}
        raise
    if len(body) > PAGE_CAP:  # a hostile or broken server cannot fill memory
        raise IndexUnavailable(f"{page_url}: larger than {PAGE_CAP >> 20} MiB; not read")
    if ctype.startswith("application/vnd.pypi.simple.") and ctype.endswith("+json"):
        links = parse_json(json.loads(body), final)
    else:
        links = parse_html(body.decode(charset, errors="replace"), final)
    rows = [[x.filename, x.url, x.sha256, x.requires_python, x.yanked, x.size] for x in links]
    return {"v": CACHE_FORMAT, "page": final, "absent": False, "links": rows}


def _page_of(doc: dict, stale: bool) -> _Page:
    if doc.get("absent"):
        return _Page(None, stale)
    return _Page(tuple(Link(*x) for x in doc["links"]), stale)


def _page(index_url: str, name: str, cache_dir: Path) -> _Page:
    page_url = f"{index_url}/{canonicalize_name(name)}/"
    if urlsplit(index_url).scheme == "file":  # the project's directory (index.html) or file
        local = Path(url2pathname(urlsplit(page_url).path))
        local = local / "index.html" if local.is_dir() else local
        try:
            text = local.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return _Page(None)  # like pip: a location that is neither a file nor a directory
        return _Page(tuple(parse_html(text, local.as_uri())))
    host = re.sub(r"[^A-Za-z0-9.]+", "-", urlsplit(index_url).netloc or "local")[:40]
    slug = f"{host}-{hashlib.sha256(index_url.encode()).hexdigest()[:12]}"
    path = cache_dir / "index" / slug / f"{canonicalize_name(name)}.json"
    try:  # a damaged or older-format copy is no copy
        cached = json.loads(path.read_text())
        _page_of(cached, False)
        if cached.get("v") != CACHE_FORMAT:
            raise ValueError
        fresh = time.time() - path.stat().st_mtime < FRESH_SECONDS
    except (ValueError, TypeError, KeyError, OSError, AttributeError):
        cached, fresh = None, False
    if fresh:
        return _remember(_page_of(cached, stale=False), path)
    try:
        doc = _fetch(page_url)
    except (urllib.error.URLError, OSError, ValueError, TypeError, KeyError) as exc:
        if cached is not None:
            return _remember(_page_of(cached, stale=True), path)
        what = f"unreachable ({page_url}: {_reason(exc)})"
        if isinstance(exc, PageError):
            what = f"page {page_url} is unusable ({exc})"
        raise IndexUnavailable(f"package index {what} and no cached copy of it") from None
    # a 200 that lists none of the project's files (nothing, or a maintenance page's links)
    # is more likely an error page than the project: never cached, a good old copy wins
    if not doc["absent"] and not any(release_of(Link(*x), name) for x in doc["links"]):
        if cached is not None:
            return _remember(_page_of(cached, stale=True), path)
        return _page_of(doc, stale=False)
    atomic_write_bytes(path, json.dumps(doc).encode())
    return _remember(_page_of(doc, stale=False), path)


_page_file: dict[str, Path] = {}  # file URL -> the cached page that listed it


def _remember(page: _Page, path: Path) -> _Page:
    for link in page.links or ():
        _page_file[link.url] = path
    return page


_loaded: dict[tuple[str, str, tuple[str, ...]], Project] = {}
_loaded_lock = threading.Lock()


def project(name: str, cache_dir: Path, index_url: str | None = None) -> Project:
    """``name``'s releases on the configured indexes (or only ``index_url``), merged by file
    name (earlier indexes win), read once per process: every environment build asks again."""
    urls = _indexes_of([index_url], "argument").urls if index_url else indexes().urls
    key = (canonicalize_name(name), str(cache_dir), urls)
    with _loaded_lock:
        if key in _loaded:
            return _loaded[key]
        merged: dict[str, dict[str, DistFile]] = {}
        found, stale = False, False
        for url in urls:
            page = _page(url, name, cache_dir)
            if page.links is None:
                continue
            found, stale = True, stale or page.stale
            for link in page.links:
                release = None if link.yanked else release_of(link, name)
                if release is not None:
                    merged.setdefault(release[0], {}).setdefault(release[1].filename, release[1])
        if not found:
            where = ", ".join(urls)
            raise IndexUnavailable(f"{name}: no such project on the package index ({where})")
        order = sorted(merged, key=Version)
        _loaded[key] = Project(name, {v: tuple(merged[v].values()) for v in order}, stale)
        return _loaded[key]


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def download(file: DistFile, dest_dir: Path) -> Path:
    """One file in ``dest_dir``, downloaded once and kept only if its sha256 is the index's
    (a cached copy too: it may come from another index). Its name must be one safe path
    component; the read is bounded by the listed size and DOWNLOAD_CAP. A file listed with
    no sha256 is recorded at first download, later ones must match (:func:`verified`)."""
    if not safe_filename(file.filename):
        raise IndexUnavailable(f"{file.filename!r}: not a file name the cache can hold")
    dest = dest_dir / file.filename
    recorded = dest_dir / ".pins" / f"{file.filename}.sha256"
    expected = file.sha256
    if not expected:  # the one recorded at its first download, if any
        try:
            known = recorded.read_text().strip()
        except OSError:
            known = ""
        expected = known if re.fullmatch(r"[0-9a-f]{64}", known) else ""
    try:  # unreadable or truncated: fetched again, replaced when verified
        if expected and dest.is_file() and sha256_of(dest) == expected:
            return dest
    except OSError:
        pass
    cap = min(file.size, DOWNLOAD_CAP) if file.size is not None else DOWNLOAD_CAP
    url = redact_url(file.url)
    try:
        with _open(file.url, timeout=120) as resp, private_temp_file(dest) as (fh, tmp):
            h = hashlib.sha256()
            for block in iter(lambda: resp.read(1 << 20), b""):
                if fh.tell() + len(block) > cap:
                    raise IndexUnavailable(
                        f"{file.filename}: {url} sent more than the {cap} bytes "
                        f"{'the index lists' if file.size is not None else 'allowed'}; not kept"
                    )
                h.update(block)
                fh.write(block)
            got = h.hexdigest()
            if expected and got != expected:  # the page that listed it is stale from now on:
                if file.url in _page_file:  # the next run reads it again (it may be corrected)
                    with contextlib.suppress(OSError):
                        os.utime(_page_file[file.url], (0, 0))
                said = "the index lists" if file.sha256 else "its first download had"
                raise HashMismatch(
                    f"{file.filename}: sha256 mismatch ({said} {expected[:16]}..., "
                    f"{url} gave {got[:16]}...); not kept"
                )
            if not expected:  # no sha256 from the index: this first download is recorded
                atomic_write_text(recorded, got + "\n")
            fh.flush()
            os.fsync(fh.fileno())
            os.replace(tmp, dest)
    except (urllib.error.URLError, OSError) as exc:
        raise IndexUnavailable(f"cannot download {file.filename} ({url}: {_reason(exc)})") from None
    return dest


def verified(file: DistFile) -> bool:
    """Whether a download of ``file`` is checked against a sha256 from its index."""
    return bool(file.sha256)


# -- The simple repository API, pure: a project page (PEP 691 JSON or PEP 503 HTML) -> its
# files. URLs are resolved against the page (mirrors answer with relative links); a file's
# version comes from its name, as pip reads it.

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


#: A file name we may write under the cache: names come from the network, and ``..%2F`` or
#: a PEP 691 ``filename`` with a ``/`` must never become a path outside the cache.
_SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+!-]*$")


def safe_filename(name: str) -> bool:
    return bool(_SAFE_NAME.match(name)) and ".." not in name and len(name) <= 255


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
        href = a.get("href")
        if tag == "base" and href:
            self.base = urljoin(self.base, href)
        elif tag == "a" and href:
            link = _link(href, self.base, a.get("data-requires-python"), "data-yanked" in a)
            if link is not None:
                self.links.append(link)


def parse_html(text: str, page_url: str) -> list[Link]:
    """PEP 503: every anchor of the page (attribute values arrive unescaped)."""
    parser = _Anchors(page_url)
    parser.feed(text)
    parser.close()
    return parser.links


class PageError(ValueError):
    """A project page that is not what the simple API promises (which field)."""


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
    """PEP 691: the ``files`` list (``yanked``: false, or true/a reason); a field of the
    wrong type is a PageError naming it."""
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


# -- pip's ``index-url`` and ``extra-index-url``, read from pip's places in pip's order (later
# wins, ``[install]`` over ``[global]``, then PIP_INDEX_URL/PIP_EXTRA_INDEX_URL). A file pip
# could not parse is skipped (pip itself refuses to run then, which tells the user).


@dataclass(frozen=True)
class PipIndexes:
    """What pip's configuration says; ``index_url`` None means pip's default (PyPI)."""

    index_url: str | None
    extra: tuple[str, ...]
    origin: str  # where index-url came from ("PIP_INDEX_URL", a file path, or "default")


def _pip_file_values(path: Path) -> dict[str, str]:
    parser = configparser.RawConfigParser()
    try:
        parser.read(path, encoding="utf-8")
    except (configparser.Error, UnicodeDecodeError, OSError):
        return {}
    values: dict[str, str] = {}
    for section in ("global", "install"):  # pip's order: [global], then the command's own
        if parser.has_section(section):
            values.update(
                (k.lower().replace("_", "-").lstrip("-"), v) for k, v in parser.items(section)
            )
    return values


def read_pip_config(
    environ: Mapping[str, str] | None = None,
    home: Path | None = None,
    prefix: Path | None = None,
    etc: Path = Path("/etc"),
) -> PipIndexes:
    """pip's ``index-url`` and ``extra-index-url`` (whitespace-separated, as pip splits): its
    files, lowest priority first (user files skipped when PIP_CONFIG_FILE names an existing
    file, none when it is ``/dev/null``), then the environment."""
    environ = os.environ if environ is None else environ
    home = Path.home() if home is None else home
    env_file = environ.get("PIP_CONFIG_FILE")
    xdg_dirs = environ.get("XDG_CONFIG_DIRS") or "/etc/xdg"
    files = [Path(d) / "pip" / "pip.conf" for d in xdg_dirs.split(os.pathsep) if d]
    files.append(etc / "pip.conf")
    if not (env_file and Path(env_file).exists()):
        xdg_home = environ.get("XDG_CONFIG_HOME") or str(home / ".config")
        files += [home / ".pip" / "pip.conf", Path(xdg_home) / "pip" / "pip.conf"]
    files.append((prefix or Path(sys.prefix)) / "pip.conf")
    files += [Path(env_file)] if env_file else []
    if env_file == os.devnull:
        files = []
    index_url, origin, extra = None, "default", []
    for path in files:
        values = _pip_file_values(path)
        if values.get("index-url", "").strip():
            index_url, origin = values["index-url"].strip(), str(path)
        if "extra-index-url" in values:
            extra = values["extra-index-url"].split()
    if environ.get("PIP_INDEX_URL", "").strip():
        index_url, origin = environ["PIP_INDEX_URL"].strip(), "PIP_INDEX_URL"
    if "PIP_EXTRA_INDEX_URL" in environ:
        extra = environ["PIP_EXTRA_INDEX_URL"].split()
    return PipIndexes(index_url, tuple(extra), origin)
