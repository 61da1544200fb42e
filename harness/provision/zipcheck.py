"""Is a wheel on disk whole?  What was built here (a commit's wheel, bottle's) or listed
without a sha256 has nothing else to be checked against before it is reused."""

from __future__ import annotations

import zipfile
from pathlib import Path

_INTACT: dict[tuple[str, int, int], bool] = {}


def intact(wheel: Path) -> bool:
    """A readable zip whose every member matches its CRC (a truncated or unreadable file
    is not); remembered per process by the file's size and mtime."""
    try:
        st = wheel.stat()
        key = (str(wheel), st.st_size, st.st_mtime_ns)
        if key not in _INTACT:
            with zipfile.ZipFile(wheel) as zf:
                _INTACT[key] = zf.testzip() is None
        return _INTACT[key]
    except (OSError, zipfile.BadZipFile, ValueError, EOFError):
        return False
