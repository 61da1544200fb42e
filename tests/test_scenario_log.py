"""Reading gunicorn's log: the worker traceback, the boot error, the effective settings."""

import pytest

from harness.scenarios.gunicorn_log import TAIL_CHARS, Log


def last_traceback(log: str) -> str:
    return Log.of(log).last_traceback()


def boot_error(log: str) -> str:
    return Log.of(log).boot_error() or "no output"


def effective_setting(log: str, name: str) -> str | None:
    return Log.of(log).setting(name)


pytestmark = pytest.mark.pure

WORKER_CRASH = """\
[2017-02-18 01:26:57 +0900] [56927] [INFO] Autorestarting worker after current request.
[2017-02-18 01:26:57 +0900] [56927] [ERROR] Exception in worker process
Traceback (most recent call last):
  File "/x/gunicorn/arbiter.py", line 557, in spawn_worker
    worker.init_process()
  File "/x/gunicorn/sock.py", line 123, in close
    os.unlink(self.cfg_addr)
FileNotFoundError: [Errno 2] No such file or directory: '/tmp/gunicorn.sock'
[2017-02-18 01:26:57 +0900] [56927] [INFO] Worker exiting (pid: 56927)
"""


def test_last_traceback_is_the_whole_worker_traceback_and_nothing_after():
    tb = last_traceback(WORKER_CRASH)
    assert tb.startswith("Traceback (most recent call last):")
    assert tb.splitlines()[-1].startswith("FileNotFoundError: [Errno 2]")
    assert "Worker exiting" not in tb


def test_last_traceback_takes_the_last_of_several():
    first = WORKER_CRASH.replace("FileNotFoundError", "KeyError")
    assert last_traceback(first + WORKER_CRASH).splitlines()[-1].startswith("FileNotFound")


def test_no_traceback_in_a_clean_log():
    assert last_traceback("[x] [1] [INFO] Booting worker with pid: 1\n") == ""


def test_boot_error_names_the_failed_bind():
    log = (
        "[t] [1] [DEBUG] connection to unix:/tmp/x/g.sock failed: [Errno 95] Operation "
        "not supported\n[t] [1] [ERROR] Retrying in 1 second.\n"
    )
    assert boot_error(log) == "[Errno 95] Operation not supported"


def test_boot_error_falls_back_to_the_last_exception_line():
    log = "[t] [1] [INFO] Starting gunicorn 19.6.0\nImportError: No module named web\n"
    assert boot_error(log) == "ImportError: No module named web"


def test_effective_setting_reads_the_arbiters_config_dump():
    log = (
        "[t] [1] [DEBUG] Current configuration:\n  workers: 5\n  max_requests: 512\n"
        "  max_requests_jitter: 0\n"
    )
    assert effective_setting(log, "workers") == "5"
    assert effective_setting(log, "max_requests") == "512"
    assert effective_setting(log, "threads") is None


# -- read incrementally, kept bounded ------------------------------------------------------------
BOOTED = (
    "".join(f"[t] [1] [INFO] Booting worker with pid: {pid}\n" for pid in (101, 102, 103))
    + "[t] [1] [INFO] Worker exiting (pid: 101)\n[t] [1] [ERROR] Worker timeout\n"
)


def _read_in_pieces(tmp_path, text: str, size: int) -> Log:
    """A log file written ``size`` bytes at a time, refreshed after each write."""
    path = tmp_path / "gunicorn.log"
    log = Log(path)
    data = text.encode()
    with open(path, "wb") as fh:
        for at in range(0, len(data), size):
            fh.write(data[at : at + size])
            fh.flush()
            log.refresh()
    return log


def test_a_log_read_in_pieces_says_what_the_whole_says(tmp_path):
    """Lines split across reads (and a UTF-8 character split across bytes) count once."""
    text = "[t] [1] [DEBUG] Current configuration:\n  workers: 3\n" + BOOTED + "é\n" + WORKER_CRASH
    log = _read_in_pieces(tmp_path, text, 7)
    assert (log.boots, log.exits, log.worker_pids) == (3, 2, [102, 103])
    assert log.setting("workers") == "3"
    assert log.errors() == ["Worker timeout", "Exception in worker process"]
    assert log.last_traceback() == last_traceback(WORKER_CRASH)
    assert log.text == text


def test_a_flooded_log_keeps_a_bounded_tail_and_every_fact(tmp_path):
    """10 MiB of noise after the facts: the tail is 1-2 MiB, the facts are all there."""
    noise = ("x" * 1023 + "\n") * 1024 * 10
    log = _read_in_pieces(tmp_path, BOOTED + WORKER_CRASH + noise, 3 << 20)
    assert TAIL_CHARS <= len(log.text) <= 2 * TAIL_CHARS + 100
    assert log.text.startswith("[gunicorn-bisect: ") and log.text.endswith("x\n")
    assert (log.boots, log.exits, log.crashes) == (3, 2, 1)
    assert log.last_traceback().splitlines()[-1].startswith("FileNotFoundError: [Errno 2]")
    assert (
        log.boot_error()
        == "FileNotFoundError: [Errno 2] No such file or directory: '/tmp/gunicorn.sock'"
    )


def test_a_traceback_read_across_pieces_is_whole(tmp_path):
    log = _read_in_pieces(tmp_path, WORKER_CRASH, 50)
    assert log.last_traceback() == last_traceback(WORKER_CRASH)
    assert "Worker exiting" not in log.last_traceback()


def test_a_warning_is_never_the_boot_error():
    """gunicorn 19.x warns as it imports pkg_resources; a config file that then calls
    os._exit(3) left only that warning, reported as the reason ("import pkg_resources")."""
    log = "/x/gunicorn/util.py:25: UserWarning: pkg_resources is deprecated as an API.\n"
    log += "  import pkg_resources\n"
    assert Log.of(log).boot_error() == ""
    assert boot_error(log) == "no output"


def test_a_routine_record_is_no_reason_for_a_server_that_exited():
    log = "[t] [1] [INFO] Starting gunicorn 23.0.0\n"
    assert Log.of(log).boot_error(routine=False) == ""
    assert Log.of(log).boot_error() == "Starting gunicorn 23.0.0"
    failed = log + "[t] [1] [INFO] Reason: Worker failed to boot.\n"
    assert Log.of(failed).boot_error(routine=False) == "Reason: Worker failed to boot."


def test_a_partial_last_line_is_judged_but_not_counted():
    log = Log.of("[t] [1] [INFO] Starting\nRuntimeError: no newline yet")
    assert log.boot_error() == "RuntimeError: no newline yet"
    assert Log.of("[t] [1] [INFO] Booting worker with pid: 12").boots == 0
