"""Wheels unpacked once under the cache and shared by every environment (.pth lines):
complete or absent, and verified against their wheel once per process."""

from __future__ import annotations

import zipfile
import zlib
from pathlib import Path

from harness.host.fsutil import drop_bytecode, extract_once, remove_tree
from harness.provision.wheels import ArtifactError


class DamagedWheel(ArtifactError):
    """A cached wheel that cannot be unpacked (removed: fetched or built again)."""


_UNPACKED_OK: set[str] = set()  # shared copies verified by this process


def matches(wheel: Path, tree: Path) -> bool:
    """Every file of ``wheel`` is in ``tree`` with its size and CRC (a truncated or
    unreadable shared ``bottle.py`` is told from a good one before any server imports it)."""
    try:
        with zipfile.ZipFile(wheel) as zf:
            for info in zf.infolist():
                if info.is_dir():
                    continue
                data = (tree / info.filename).read_bytes()
                if len(data) != info.file_size or zlib.crc32(data) != info.CRC:
                    return False
    except (OSError, ValueError, EOFError, zipfile.BadZipFile):
        return False
    return True


def unpacked(wheel: Path, cache_dir: Path) -> Path:
    """A wheel unpacked once under the cache (renamed into place: complete or absent),
    verified against the wheel once per process and unpacked again when damaged."""
    final = cache_dir / "unpacked" / wheel.name
    if str(final) in _UNPACKED_OK:
        return final
    if final.is_dir() or final.is_symlink():
        if matches(wheel, final):
            drop_bytecode(final)  # an earlier run's bytecode is not the wheel's
            _UNPACKED_OK.add(str(final))
            return final
        remove_tree(final)  # damaged: unpacked again below
    try:
        extract_once(wheel, final)
    except (zipfile.BadZipFile, EOFError, OSError) as exc:
        wheel.unlink(missing_ok=True)
        raise DamagedWheel(
            f"{wheel.name} in the cache is damaged ({exc}); removed: "
            "it is fetched or built again on the next run"
        ) from None
    _UNPACKED_OK.add(str(final))
    return final
