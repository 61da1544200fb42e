#!/usr/bin/env bash
# The "plain" recipe: what a maintainer does without gunicorn-bisect, as the baseline
# for bench/benchmark.py.
#
#   bench/plain_recipe.sh --repo PATH [--python PY] [--releases "19.5.0 19.6.0 19.7.0"]
#
# 1. each release from PyPI: a fresh venv, `pip install gunicorn==X`, the scenario
#    (bench/plain_check.sh);
# 2. each neighbouring pair whose verdicts differ: `git bisect run plain_check.sh` in a
#    throw-away `git clone --shared` of PATH (your clone is only read), every step
#    again a fresh venv and `pip install` of the checkout.  A fix is bisected with
#    --term-old=broken --term-new=fixed.  Commits that cannot be tested exit 125
#    (skip), exactly as git expects; what git then says is reported as is.
#
# PATH must be a local clone (or bare mirror) of https://github.com/benoitc/gunicorn
# with its tags; nothing is fetched.  PY defaults to the newest Python 3.6-3.9 found
# under $PYENV_ROOT/versions or on PATH.
#
# Kernel compat: the server gets harness/host/compat.py's sitecustomize shim on PYTHONPATH
# (written with harness.host.compat.write_shim), the same one the harness uses, so 19.7.x can
# bind a Unix socket on kernels that reject SO_REUSEPORT on AF_UNIX.  It is a no-op
# elsewhere.
#
# Output: one line per release ("release X: pass|fail|error") and per bisection
# ("regression A..B: <sha> <subject>", "fix A..B: ...", or git's own words when only
# skipped commits are left).  Temp dirs are removed and servers killed on every exit.
set -u

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(dirname "$HERE")
CHECK="$HERE/plain_check.sh"
repo=""
py=""
releases="19.5.0 19.6.0 19.7.0"

usage() {
    sed -n '2,27p' "$0" | sed 's/^# \{0,1\}//'
    exit 2
}
while [ $# -gt 0 ]; do
    case "$1" in
    --repo) repo=${2:?--repo needs a path}; shift 2 ;;
    --python) py=${2:?--python needs a path}; shift 2 ;;
    --releases) releases=${2:?--releases needs a list}; shift 2 ;;
    -h | --help) usage ;;
    *) echo "plain_recipe.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
done
[ -n "$repo" ] || { echo "plain_recipe.sh: --repo PATH (a local clone of gunicorn) is required" >&2; exit 2; }
git -C "$repo" rev-parse --git-dir >/dev/null 2>&1 || { echo "plain_recipe.sh: --repo $repo: not a git repository" >&2; exit 2; }

find_python() { # newest 3.6-3.9 under pyenv's versions or on PATH
    local best="" bestv=0 p v
    for p in "${PYENV_ROOT:-$HOME/.pyenv}"/versions/*/bin/python3 \
        $(command -v python3.9 python3.8 python3.7 python3.6 2>/dev/null); do
        [ -x "$p" ] || continue
        v=$("$p" -c 'import sys; print("%d%02d%03d" % sys.version_info[:3])' 2>/dev/null) || continue
        if [ "$v" -ge 306000 ] && [ "$v" -lt 310000 ] && [ "$v" -gt "$bestv" ]; then
            best=$p
            bestv=$v
        fi
    done
    echo "$best"
}
[ -n "$py" ] || py=$(find_python)
[ -n "$py" ] || { echo "plain_recipe.sh: no Python 3.6-3.9 found; pass --python" >&2; exit 2; }

work=$(mktemp -d "${TMPDIR:-/tmp}/plain-recipe.XXXXXX")
trap 'rm -rf "$work"' EXIT
trap 'exit 130' INT TERM

# the harness's kernel shim, imported from this project (stdlib only, any python3 will do)
PLAIN_SHIM_DIR="$work/shim"
export PLAIN_SHIM_DIR
(cd "$work" && PYTHONPATH="$ROOT" "$py" -c \
    "import sys; from pathlib import Path; from harness.host.compat import write_shim; write_shim(Path(sys.argv[1]))" \
    "$PLAIN_SHIM_DIR") || { echo "plain_recipe.sh: cannot write the compat shim" >&2; exit 2; }

echo "python: $py ($("$py" -V 2>&1))"

# 1. releases
declare -A verdict
for v in $releases; do
    "$CHECK" "$py" "gunicorn==$v"
    case $? in 0) verdict[$v]=pass ;; 1) verdict[$v]=fail ;; *) verdict[$v]=error ;; esac
    echo "release $v: ${verdict[$v]}"
done

# 2. bisect every change between neighbouring testable releases
git clone --quiet --shared --no-checkout "$repo" "$work/clone" || exit 2
prev=""
for v in $releases; do
    [ "${verdict[$v]}" = error ] && continue
    if [ -n "$prev" ] && [ "${verdict[$prev]}" != "${verdict[$v]}" ]; then
        if [ "${verdict[$prev]}" = pass ]; then
            kind=regression
            start=(git bisect start "$v" "$prev")
            run=(git bisect run "$CHECK" "$py" "$work/clone")
            found="is the first bad commit"
        else
            kind=fix
            start=(git bisect start --term-old=broken --term-new=fixed "$v" "$prev")
            run=(git bisect run "$CHECK" --invert "$py" "$work/clone")
            found="is the first fixed commit"
        fi
        (
            cd "$work/clone" &&
                "${start[@]}" >/dev/null 2>&1 &&
                "${run[@]}" >"$work/bisect.log" 2>&1
            git bisect reset --quiet >/dev/null 2>&1
            true
        )
        steps=$(grep -c "^running" "$work/bisect.log")
        if line=$(grep -m1 "$found" "$work/bisect.log"); then
            sha=${line%% *}
            subject=$(git -C "$work/clone" log -1 --format=%s "$sha")
            echo "$kind $prev..$v: $sha $subject ($steps steps)"
        elif grep -q "only 'skip'ped commits left" "$work/bisect.log"; then
            cands=$(sed -n "/only 'skip'ped commits left/,\$p" "$work/bisect.log" | grep -oE '^[0-9a-f]{40}' | cut -c1-10 | tr '\n' ' ')
            echo "$kind $prev..$v: ambiguous, only skipped commits left: ${cands% } ($steps steps)"
        else
            echo "$kind $prev..$v: bisection failed: $(tail -1 "$work/bisect.log") ($steps steps)"
        fi
    fi
    prev=$v
done
