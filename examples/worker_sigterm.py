"""SIGTERM one gthread worker: its replacement boots and the socket file stays."""

import signal

SETTINGS = {"workers": 2, "threads": 4, "max_requests": 0}  # workers exit only when told to


def check(server):
    victim = server.worker_pids()[0]
    server.signal(victim, signal.SIGTERM)
    if not server.wait_for(lambda: server.exits >= 1 and server.boots >= 3, timeout=10):
        return (
            "error",
            f"worker {victim} not replaced: {server.exits} exit(s), {server.boots} boot(s)",
        )
    if not server.socket_exists():
        return "fail", f"socket file gone after worker {victim} exited on SIGTERM"
    status = server.probe()  # "ok", or why not: ENOENT, ECONNREFUSED, timeout ...
    if status != "ok":
        return "fail", f"socket file kept, but a new connection got {status}"
    return "pass", f"worker {victim} replaced; socket kept; new connection served"
