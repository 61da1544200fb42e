"""Where pip looks for packages: ``index-url`` and ``extra-index-url`` as pip itself reads them.

Users behind a private index or mirror have already told pip where it is; the harness
reads the same places in pip's order (later overrides earlier): global files
(``$XDG_CONFIG_DIRS/pip/pip.conf``, ``/etc/pip.conf``), user files (``~/.pip/pip.conf``,
``$XDG_CONFIG_HOME/pip/pip.conf``; skipped when ``PIP_CONFIG_FILE`` names an existing file),
the site file (``sys.prefix/pip.conf``), ``PIP_CONFIG_FILE``, then the environment
(``PIP_INDEX_URL``, ``PIP_EXTRA_INDEX_URL``). ``PIP_CONFIG_FILE=/dev/null`` loads no file,
as in pip. Within a file ``[install]`` overrides ``[global]``. A file pip could not parse
is skipped here (pip itself refuses to run then, which tells the user).
"""

from __future__ import annotations

import configparser
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

SECTIONS = ("global", "install")  # pip's order: [global], then the command's own section


@dataclass(frozen=True)
class PipIndexes:
    """What pip's configuration says; ``index_url`` None means pip's default (PyPI)."""

    index_url: str | None
    extra: tuple[str, ...]
    origin: str  # where index-url came from ("PIP_INDEX_URL", a file path, or "default")


def config_files(
    environ: Mapping[str, str], home: Path, prefix: Path, etc: Path = Path("/etc")
) -> list[Path]:
    """pip's configuration files for this environment, lowest priority first."""
    env_file = environ.get("PIP_CONFIG_FILE")
    if env_file == os.devnull:
        return []
    xdg_dirs = environ.get("XDG_CONFIG_DIRS") or "/etc/xdg"
    files = [Path(d) / "pip" / "pip.conf" for d in xdg_dirs.split(os.pathsep) if d]
    files.append(etc / "pip.conf")
    if not (env_file and Path(env_file).exists()):
        xdg_home = environ.get("XDG_CONFIG_HOME") or str(home / ".config")
        files += [home / ".pip" / "pip.conf", Path(xdg_home) / "pip" / "pip.conf"]
    files.append(prefix / "pip.conf")
    if env_file:
        files.append(Path(env_file))
    return files


def _file_values(path: Path) -> dict[str, str]:
    parser = configparser.RawConfigParser()
    try:
        parser.read(path, encoding="utf-8")
    except (configparser.Error, UnicodeDecodeError, OSError):
        return {}
    values: dict[str, str] = {}
    for section in SECTIONS:
        if parser.has_section(section):
            for key, value in parser.items(section):
                values[key.lower().replace("_", "-").lstrip("-")] = value
    return values


def read(
    environ: Mapping[str, str] | None = None,
    home: Path | None = None,
    prefix: Path | None = None,
    etc: Path = Path("/etc"),
) -> PipIndexes:
    """pip's ``index-url`` and ``extra-index-url`` (whitespace-separated lists, as pip splits them)."""
    environ = os.environ if environ is None else environ
    home = Path.home() if home is None else home
    prefix = Path(sys.prefix) if prefix is None else prefix
    index_url: str | None = None
    origin = "default"
    extra: list[str] = []
    for path in config_files(environ, home, prefix, etc):
        values = _file_values(path)
        if values.get("index-url", "").strip():
            index_url, origin = values["index-url"].strip(), str(path)
        if "extra-index-url" in values:
            extra = values["extra-index-url"].split()
    if environ.get("PIP_INDEX_URL", "").strip():
        index_url, origin = environ["PIP_INDEX_URL"].strip(), "PIP_INDEX_URL"
    if "PIP_EXTRA_INDEX_URL" in environ:
        extra = environ["PIP_EXTRA_INDEX_URL"].split()
    return PipIndexes(index_url, tuple(extra), origin)
