"""The package index: which gunicorn releases exist, and their files (cached on disk).

One JSON document per project from PyPI's JSON API, kept under the cache dir for a
day; when the index cannot be reached a cached copy of any age is used, and only with
no copy at all do we give up (with one clear line).
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urljoin

from .fsutil import atomic_write_bytes

DEFAULT_INDEX = os.environ.get("GUNICORN_BISECT_INDEX", "https://pypi.org/pypi")
FRESH_SECONDS = 24 * 3600


class IndexUnavailable(Exception):
    """The package index could not be reached and nothing is cached."""


@dataclass(frozen=True)
class DistFile:
    filename: str
    url: str
    sha256: str
    packagetype: str  # "bdist_wheel" or "sdist"
    requires_python: str | None


@dataclass(frozen=True)
class Project:
    """The releases of one project: version string -> files."""

    name: str
    releases: dict[str, tuple[DistFile, ...]]
    stale: bool = False

    @property
    def versions(self) -> list[str]:
        return [v for v, files in self.releases.items() if files]


def _parse(name: str, cached: dict, stale: bool) -> Project:
    doc, base = cached.get("doc", {}), cached.get("url", "")
    releases: dict[str, tuple[DistFile, ...]] = {}
    for version, files in doc.get("releases", {}).items():
        releases[version] = tuple(
            DistFile(
                filename=f["filename"],
                url=urljoin(base, f["url"]),  # some mirrors answer with relative URLs
                sha256=f.get("digests", {}).get("sha256", ""),
                packagetype=f.get("packagetype", ""),
                requires_python=f.get("requires_python") or None,
            )
            for f in files
            if not f.get("yanked")
        )
    return Project(name, releases, stale)


_loaded: dict[tuple[str, str, str], Project] = {}
_loaded_lock = threading.Lock()


def project(name: str, cache_dir: Path, index_url: str = DEFAULT_INDEX) -> Project:
    """``name``'s releases, read once per process: every environment build asks again
    (setuptools' document alone is over a megabyte), and within one run it cannot change."""
    key = (name, str(cache_dir), index_url)
    with _loaded_lock:
        if key not in _loaded:
            _loaded[key] = _project(name, cache_dir, index_url)
        return _loaded[key]


def _project(name: str, cache_dir: Path, index_url: str) -> Project:
    """Load ``name`` from the cache if fresh, else from the index (falling back to stale)."""
    path = cache_dir / "index" / f"{name}.json"
    cached: dict | None = None
    if path.exists():
        try:
            cached = json.loads(path.read_text())
        except ValueError:
            cached = None
        if cached is not None and time.time() - path.stat().st_mtime < FRESH_SECONDS:
            return _parse(name, cached, stale=False)
    url = f"{index_url.rstrip('/')}/{name}/json"
    try:
        with urllib.request.urlopen(url, timeout=30) as resp:
            body = resp.read()
        cached_now = {"url": url, "doc": json.loads(body)}
    except (urllib.error.URLError, OSError, ValueError) as exc:
        if cached is not None:
            return _parse(name, cached, stale=True)
        reason = getattr(exc, "reason", exc)
        raise IndexUnavailable(
            f"package index unreachable ({url}: {reason}) and no cached copy of it"
        ) from None
    atomic_write_bytes(path, json.dumps(cached_now).encode())
    return _parse(name, cached_now, stale=False)


def download(file: DistFile, dest_dir: Path) -> Path:
    """Fetch one file into dest_dir (once), verifying its sha256 before it is kept."""
    dest = dest_dir / file.filename
    if dest.exists():
        return dest
    try:
        with urllib.request.urlopen(file.url, timeout=120) as resp:
            data = resp.read()
    except (urllib.error.URLError, OSError) as exc:
        raise IndexUnavailable(
            f"cannot download {file.filename}: {getattr(exc, 'reason', exc)}"
        ) from None
    if file.sha256 and hashlib.sha256(data).hexdigest() != file.sha256:
        raise IndexUnavailable(f"{file.filename}: sha256 mismatch, refusing to use it")
    atomic_write_bytes(dest, data)
    return dest
