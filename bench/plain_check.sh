#!/usr/bin/env bash
# One step of the "plain" recipe (what a maintainer does without gunicorn-bisect):
# a FRESH virtualenv, pip install, gunicorn on a Unix socket, requests with curl,
# does the socket file survive the worker restarts?
#
#   plain_check.sh [--invert] PY SOURCE
#
#   PY      the interpreter for the virtualenv (gunicorn 19.x needs Python <= 3.9)
#   SOURCE  a pip requirement ("gunicorn==19.6.0") or a directory (a git checkout)
#
# Exit status, for `git bisect run`: 0 the socket survived (pass), 1 it was lost (fail),
# 125 cannot tell (install failed, server did not boot, no worker restarted).
# --invert swaps 0 and 1 (bisecting a fix with --term-old=broken --term-new=fixed).
#
# Kernel compat: on kernels that reject SO_REUSEPORT on AF_UNIX (Linux >= 6.13 and
# backports) gunicorn 19.7.x cannot bind a Unix socket at all.  Like the harness, this
# recipe puts harness/host/compat.py's sitecustomize shim on the server's PYTHONPATH
# ($PLAIN_SHIM_DIR, written by plain_recipe.sh with harness.host.compat.write_shim); the shim
# only turns that one failing setsockopt into a no-op and changes nothing elsewhere.
#
# Bounded: pip has 300 s, boot 10 s, load 15 s; the server runs in its own session and
# its whole process group is killed on every exit path; the temp dir is removed.
set -u

invert=0
if [ "${1:-}" = "--invert" ]; then
    invert=1
    shift
fi
PY=${1:?usage: plain_check.sh [--invert] PY SOURCE}
SOURCE=${2:?usage: plain_check.sh [--invert] PY SOURCE}

WORKERS=3
THREADS=5
MAX_REQUESTS=16

tmp=$(mktemp -d "${TMPDIR:-/tmp}/plain-check.XXXXXX")
chmod 700 "$tmp"
pgid=""

cleanup() {
    if [ -n "$pgid" ]; then
        # quick shutdown first (the arbiter reaps its workers), then the whole group
        kill -INT "$pgid" 2>/dev/null
        for _ in $(seq 40); do
            kill -0 "$pgid" 2>/dev/null || break
            sleep 0.05
        done
        kill -KILL -- "-$pgid" 2>/dev/null
        wait "$pgid" 2>/dev/null
    fi
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

finish() { # finish VERDICT(0 pass / 1 fail / 125 error) MESSAGE
    local code=$1
    shift
    echo "plain-check: $(basename "$SOURCE"): $*" >&2
    if [ "$invert" = 1 ] && [ "$code" != 125 ]; then
        code=$((1 - code))
    fi
    exit "$code"
}

# 1. a fresh virtualenv and pip install
if ! "$PY" -m venv "$tmp/venv" >"$tmp/venv.log" 2>&1; then
    finish 125 "venv failed: $(tail -1 "$tmp/venv.log")"
fi
if [ -d "$SOURCE" ]; then
    # a checkout: leftovers of the previous step's build (build/, *.egg-info) must go
    git -C "$SOURCE" clean -fdxq 2>/dev/null
    req=$SOURCE
else
    req=$SOURCE
fi
if ! timeout 300 "$tmp/venv/bin/pip" install --quiet --disable-pip-version-check \
    "$req" bottle==0.12.13 'setuptools<81' >"$tmp/pip.log" 2>&1; then
    finish 125 "pip install failed: $(grep -v WARNING "$tmp/pip.log" | tail -1)"
fi
[ -d "$SOURCE" ] && git -C "$SOURCE" clean -fdxq 2>/dev/null

# 2. the report's app, gunicorn on a Unix socket in its own session
cat >"$tmp/web.py" <<'EOF'
from bottle import route, default_app


@route('/')
def index():
    return 'Hello World'


app = default_app()
EOF
sock="$tmp/gunicorn.sock"
log="$tmp/gunicorn.log"
(
    cd "$tmp" &&
        PYTHONPATH="${PLAIN_SHIM_DIR:-}" exec setsid "$tmp/venv/bin/gunicorn" \
            --bind "unix:$sock" --workers $WORKERS --threads $THREADS \
            --max-requests $MAX_REQUESTS --log-level debug web:app
) >"$log" 2>&1 </dev/null &
pgid=$!

get() { curl -s -m 5 --unix-socket "$sock" http://localhost/ 2>/dev/null; }
alive() { kill -0 "$pgid" 2>/dev/null; }
boots() { grep -c "Booting worker" "$log"; }

deadline=$((SECONDS + 10))
until [ -S "$sock" ] && [ "$(boots)" -ge $WORKERS ] && [ "$(get)" = "Hello World" ]; do
    if ! alive || [ $SECONDS -ge $deadline ] || grep -q "Retrying in 1 second" "$log"; then
        finish 125 "server did not start: $(grep -E 'Error|error' "$log" | tail -1)"
    fi
    sleep 0.05
done

# 3. load (keep-alive batches from 4 curls at once) until every worker restarted once
urls=()
for _ in $(seq 10); do urls+=(http://localhost/); done
deadline=$((SECONDS + 15))
while [ "$(boots)" -lt $((2 * WORKERS)) ] && [ -S "$sock" ] && alive; do
    [ $SECONDS -ge $deadline ] && finish 125 "no worker restarted within 15 s"
    loaders=()
    for _ in 1 2 3 4; do
        curl -s -m 5 --unix-socket "$sock" "${urls[@]}" >/dev/null 2>&1 &
        loaders+=($!)
    done
    wait "${loaders[@]}" 2>/dev/null
done
sleep 0.5 # let the replacement workers boot

# 4. the evidence: is the path still there, does a fresh connection get served?
alive || finish 125 "the arbiter died: $(tail -1 "$log")"
if [ ! -S "$sock" ]; then
    finish 1 "socket file gone after $(($(boots) - WORKERS)) worker restart(s)"
fi
if [ "$(get)" != "Hello World" ]; then
    finish 1 "socket path refuses new connections after the worker restarts"
fi
finish 0 "socket kept through $(($(boots) - WORKERS)) worker restart(s)"
