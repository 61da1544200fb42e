#!/bin/sh
# check_socket_survives.sh -- a `bisect.py --run` check for gunicorn issue #1298:
# does the Unix socket file survive a worker exit?
#
#   python bisect.py 19.5.0..19.7.0 --run ./examples/check_socket_survives.sh \
#       --terms kept,unlinked
#
# It boots the target's gunicorn (first on PATH under --run) with a plain WSGI app on a
# Unix socket in the current (private) directory: 1 worker, 2 threads (so gunicorn
# picks its threaded gthread worker), max_requests=2 (the worker exits after 2
# requests and the arbiter boots a new one).  It sends a few requests over the socket
# with Python's standard library only, waits for the worker to exit, and looks at the
# socket file.
#
# Exit status, the git-bisect-run way:
#   0    the socket file is still there and answers after a worker exited   (pass)
#   1    the socket file is gone after a worker exited: #1298               (fail)
#   125  cannot tell: gunicorn did not boot, or no worker exited in time
# The last lines it prints are the evidence in the report.
#
# Any POSIX sh; needs only the target's python and gunicorn.  The harness kills
# whatever is left (the backgrounded gunicorn too) when the check ends.

set -u

cat > app.py <<'EOF'
def app(environ, start_response):
    body = b"Hello World"
    start_response("200 OK", [("Content-Type", "text/plain"),
                              ("Content-Length", str(len(body)))])
    return [body]
EOF

# its own output (warnings, a worker's traceback) goes to the log, not into the evidence
gunicorn --bind "unix:$PWD/gunicorn.sock" --workers 1 --threads 2 --max-requests 2 \
    app:app >gunicorn.log 2>&1 &
server=$!
trap 'kill "$server" 2>/dev/null' EXIT

python - "$PWD/gunicorn.sock" "$PWD/gunicorn.log" <<'EOF'
# Python 3.6-safe: gunicorn 19.x runs on old interpreters.
import http.client
import os
import re
import socket
import sys
import time

SOCK, LOG = sys.argv[1], sys.argv[2]


class UnixConnection(http.client.HTTPConnection):
    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(SOCK)


def get():
    """One request on a fresh connection: the Server header, or why it failed."""
    conn = UnixConnection("localhost", timeout=2)
    try:
        conn.request("GET", "/", headers={"Connection": "close"})
        resp = conn.getresponse()
        resp.read()
        return resp.status == 200, resp.getheader("Server")
    except (OSError, http.client.HTTPException) as exc:
        return False, type(exc).__name__
    finally:
        conn.close()


def log():
    try:
        with open(LOG) as fh:
            return fh.read()
    except OSError:
        return ""


def untestable(why):
    """Exit 125 with the reason and gunicorn's most telling line (its last error)."""
    print(why)
    lines = [ln.strip() for ln in log().splitlines() if ln.strip()]
    errors = [ln for ln in lines if re.match(r"[\w.]*(Error|Exception)\b", ln)]
    if errors or lines:
        print("gunicorn: " + (errors or lines)[-1])
    sys.exit(125)


deadline = time.time() + 10
while not (os.path.exists(SOCK) and get()[0]):
    if time.time() > deadline:
        untestable("gunicorn did not answer on its Unix socket within 10 s")
    time.sleep(0.1)

server = get()[1]
for _ in range(4):  # max_requests=2: the first worker has to go
    get()
    if not os.path.exists(SOCK):
        break

deadline = time.time() + 5
while "Worker exiting" not in log() and os.path.exists(SOCK):
    if time.time() > deadline:
        untestable("no worker exited after max_requests within 5 s")
    time.sleep(0.05)
time.sleep(0.5)  # a closing worker unlinks right before it is gone

if not os.path.exists(SOCK):
    print("Server: %s" % server)
    print("the socket file is gone after a worker exited (#1298)")
    sys.exit(1)
ok, answer = get()
if not ok:
    untestable("the socket file is there but does not answer: %s" % answer)
print("Server: %s" % server)
print("the socket file survived a worker exit and still answers")
EOF
