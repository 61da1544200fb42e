"""--output: checked before the run; devices, pipes and links written through; modes kept."""

from __future__ import annotations

import os
import stat
import threading
from pathlib import Path

import pytest

from harness.host.output import OutputError, check_output, write_output

pytestmark = pytest.mark.pure


def test_a_new_file_is_written_with_the_umask_mode(tmp_path: Path) -> None:
    out = tmp_path / "report.md"
    check_output(out)
    write_output(out, "hello\n")
    assert out.read_text() == "hello\n"
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(out.stat().st_mode) == 0o666 & ~umask
    assert [p.name for p in tmp_path.iterdir()] == ["report.md"]


def test_an_existing_file_keeps_its_mode(tmp_path: Path) -> None:
    out = tmp_path / "report.md"
    out.write_text("old")
    out.chmod(0o644)
    write_output(out, "new")
    assert out.read_text() == "new"
    assert stat.S_IMODE(out.stat().st_mode) == 0o644


def test_a_symlink_is_written_through_not_replaced(tmp_path: Path) -> None:
    target = tmp_path / "real.md"
    target.write_text("old")
    link = tmp_path / "link.md"
    link.symlink_to(target)
    write_output(link, "new")
    assert link.is_symlink() and target.read_text() == "new"


def test_a_pipe_is_written_through(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    got: list[bytes] = []
    reader = threading.Thread(target=lambda: got.append(fifo.read_bytes()))
    reader.start()
    write_output(fifo, "through the pipe")
    reader.join(5)
    assert got == [b"through the pipe"]
    assert stat.S_ISFIFO(fifo.stat().st_mode)


def test_a_device_stays_a_device() -> None:
    check_output(Path("/dev/null"))
    write_output(Path("/dev/null"), "nothing")
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode)


@pytest.mark.parametrize(
    "where, said",
    [("missing/report.md", "no such directory"), ("", "is a directory")],
)
def test_unusable_outputs_are_one_line_before_the_run(tmp_path: Path, where, said) -> None:
    with pytest.raises(OutputError, match=said):
        check_output(tmp_path / where)


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write anywhere")
def test_an_unwritable_directory_is_found_before_the_run(tmp_path: Path) -> None:
    tmp_path.chmod(0o500)
    try:
        with pytest.raises(OutputError, match="not writable"):
            check_output(tmp_path / "report.md")
    finally:
        tmp_path.chmod(0o700)
