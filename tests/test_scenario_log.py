"""Reading gunicorn's log: the worker traceback, the boot error, the effective settings."""

from harness.scenarios.gunicorn_log import boot_error, effective_setting, last_traceback

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
