"""#1298: gthread on a Unix socket unlinks the socket file when a worker exits."""

import threading

import requests

APP = """
from bottle import route, default_app

@route('/')
def index():
    return 'Hello World'

app = default_app()
"""
REQUIRES = ["bottle==0.12.13"]  # as in the report
SETTINGS = {"workers": 3, "threads": 5, "max_requests": 16}  # threads > 1: gthread
BIND = "unix"


def check(server):
    stop = threading.Event()

    def load():  # keep-alive load: each worker recycles after 16 requests
        with server.client() as session:
            while not stop.is_set():
                try:
                    session.get(server.url, timeout=2)
                except requests.RequestException:
                    stop.wait(0.01)  # a recycling worker's reset, or the path is gone

    threads = [threading.Thread(target=load, daemon=True) for _ in range(8)]
    for t in threads:
        t.start()
    try:
        recycled = server.wait_for(lambda: server.exits >= 3 or not server.socket_exists(), 15)
    finally:
        stop.set()
    if not recycled:
        return "error", f"only {server.exits} worker exit(s) under load"
    served = 0
    for _ in range(20):  # fresh connections are the evidence
        try:
            served += server.get("/").status_code == 200
        except requests.RequestException:
            pass
    if not server.socket_exists():
        tb = server.last_traceback().splitlines()
        why = f"; worker traceback: {tb[-1]}" if tb else ""
        return (
            "fail",
            f"socket file gone after {server.exits} worker exit(s); {served}/20 served{why}",
        )
    if served < 20:
        return "error", f"socket file kept, but only {served}/20 new connections served"
    return "pass", f"socket kept through {server.exits} worker exits; 20/20 new connections served"
