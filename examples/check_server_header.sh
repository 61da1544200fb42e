#!/bin/sh
# --run check: is gunicorn's version in its Server response header?
#   exit 0: "Server: gunicorn/20.0.4" (versioned), 1: "Server: gunicorn" (bare), 125: no answer
# It boots the target's gunicorn (first on PATH under --run) with a plain WSGI app on a
# Unix socket in the private working directory, and asks once with the standard library.
#
#   python bisect.py 20.0.4,20.1.0 --run ./examples/check_server_header.sh --terms versioned,bare
set -u
cat > app.py <<'EOF'
def app(environ, start_response):
    start_response("200 OK", [("Content-Length", "2")])
    return [b"ok"]
EOF
gunicorn --bind "unix:$PWD/s.sock" --workers 1 app:app >gunicorn.log 2>&1 &
python - "$PWD/s.sock" <<'EOF'
import http.client, os, socket, sys, time

class Conn(http.client.HTTPConnection):
    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX)
        self.sock.connect(sys.argv[1])

deadline = time.time() + 10
while True:
    try:
        c = Conn("localhost", timeout=2)
        c.request("GET", "/")
        server = c.getresponse().getheader("Server")
        break
    except OSError:
        if time.time() > deadline:
            print("gunicorn did not answer")
            sys.exit(125)
        time.sleep(0.1)
print("Server: %s" % server)
sys.exit(0 if "/" in server else 1)  # 0: the version is in the header
EOF
