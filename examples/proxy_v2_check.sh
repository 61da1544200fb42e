#!/bin/sh
# Is PROXY protocol v2 support in? (fail = not yet); cannot tell (125) when the server
# does not keep serving through worker restarts (24.0.0's outage stretch).
cat > app.py <<'PY'
def app(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"ok"]
PY
port=$(python -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
gunicorn -w 1 --max-requests 1 -b 127.0.0.1:$port app:app >gunicorn.log 2>&1 &
python - "$port" <<'PY' || exit 125
import sys, time, urllib.request
port = sys.argv[1]
deadline = time.time() + 10
served = 0
while time.time() < deadline and served < 3:
    try:
        urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2).read()
        served += 1
    except OSError:
        time.sleep(0.2)
sys.exit(0 if served == 3 else 1)
PY
python -c "import gunicorn.config as c; assert hasattr(c, 'validate_proxy_protocol'), 'no PROXY v2'"
