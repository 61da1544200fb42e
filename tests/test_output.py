"""--output: checked before the run; devices, pipes and links written through; modes kept."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from harness.host.output import OutputError, check_output, write_output
from tests.conftest import ROOT

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


@pytest.mark.local
def test_output_to_dev_stdout_appended_to_a_log_stays_append(tmp_path: Path) -> None:
    log = tmp_path / "ci.log"
    log.write_text("earlier steps\n")
    code = (
        "from pathlib import Path; from harness.host.output import write_output; "
        "write_output(Path('/dev/stdout'), 'the report\\n')"
    )
    with open(log, "ab") as fh:  # what `>> ci.log` hands the process
        subprocess.run([sys.executable, "-c", code], stdout=fh, check=True, cwd=ROOT)
    assert log.read_text() == "earlier steps\nthe report\n"


@pytest.mark.skipif(
    os.geteuid() != 0 or not os.path.exists("/usr/bin/python3"),
    reason="needs root to act as nobody, and a Python nobody may run",
)
@pytest.mark.local
def test_an_existing_file_in_a_directory_that_takes_no_new_file_is_found_before_the_run() -> None:
    import pwd
    import shutil
    import tempfile

    nobody = pwd.getpwnam("nobody")
    where = Path(tempfile.mkdtemp(dir="/tmp"))
    try:
        where.chmod(0o755)  # root's: nobody may not create the temporary the write needs
        report = where / "report.md"
        report.write_text("old\n")
        os.chown(report, nobody.pw_uid, nobody.pw_gid)  # but may write the file itself
        code = (
            "from pathlib import Path; from harness.host.output import check_output, "
            f"OutputError\ntry:\n    check_output(Path({str(report)!r}))\n"
            "except OutputError as e:\n    print(e)"
        )
        proc = subprocess.run(
            ["/usr/bin/python3", "-c", code],  # the harness's own may sit under /root
            user=nobody.pw_uid,
            group=nobody.pw_gid,
            extra_groups=[],
            capture_output=True,
            text=True,
            cwd=ROOT,
        )
        assert proc.stdout.startswith(f"--output {report}: not writable"), proc.stderr
    finally:
        shutil.rmtree(where)


@pytest.mark.local
def test_during_a_run_fd_1_is_stderr_and_the_report_keeps_stdout(tmp_path: Path) -> None:
    """A program started during the run writes to fd 1: it lands on stderr, while the
    report and ``--output /dev/stdout`` reach the real stdout."""
    code = (
        "import subprocess\nfrom pathlib import Path\n"
        "from harness.host.output import own_stdout, write_output\n"
        "with own_stdout() as out:\n"
        "    subprocess.run(['echo', 'noise'])\n"
        "    print('report', file=out)\n"
        "    out.flush()\n"
        "    write_output(Path('/dev/stdout'), 'output file\\n')\n"
        "print('after the run')\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True
    )
    assert proc.stdout == "report\noutput file\nafter the run\n"
    assert proc.stderr == "noise\n"
