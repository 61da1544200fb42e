"""Requirement sets (``--with``): the set's rules on their own, then real pip, real
requirement sets and real environments that import from them."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from harness.host import fsutil
from harness.model.errors import HarnessError
from harness.provision import environments, index, requirements, wheels
from harness.provision.environments import EnvNeeds
from harness.provision.interpreters import Interpreter, discover
from harness.provision.wheels import ArtifactError

pytestmark = pytest.mark.pure

ROOT = Path(__file__).resolve().parent.parent

# --- the requirement set, pip's decisive line, what a distribution makes importable ------


@given(st.permutations(["Flask", "eventlet==0.30.2", "Jinja2>=3", "zope.interface"]))
def test_one_set_whatever_the_order_or_spelling(reqs):
    assert requirements.parse(reqs) == requirements.parse(
        ["flask", "eventlet==0.30.2", "jinja2>=3", "zope-interface", "FLASK"]
    )


def test_a_requirements_file_joins_the_command_line(tmp_path):
    path = tmp_path / "requirements.txt"
    path.write_text("# the app\nflask  # web\n\neventlet==0.30.2\n")
    got = requirements.parse(["gunicorn==20.1.0"], [path])
    assert got.requirements == ("eventlet==0.30.2", "flask", "gunicorn==20.1.0")
    assert got.gunicorn == "gunicorn==20.1.0"
    assert requirements.parse(["flask"]).gunicorn is None and not requirements.parse([])


@pytest.mark.parametrize(
    "reqs, text, says",
    [
        (["flask ==="], "", "--with: not a requirement"),
        (["pkg @ https://example.org/pkg.whl"], "", "direct URLs"),
        ([], "flask\n--index-url https://x\n", "requirements.txt:2: pip options"),
    ],
)
def test_what_is_not_a_requirement_is_one_line(tmp_path, reqs, text, says):
    path = tmp_path / "requirements.txt"
    path.write_text(text)
    with pytest.raises(requirements.RequirementsInvalid) as err:
        requirements.parse(reqs, [path] if text else [])
    assert says in str(err.value) and "\n" not in str(err.value)
    assert isinstance(err.value, HarnessError) and not isinstance(err.value, ArtifactError)


def test_a_missing_requirements_file_is_one_line(tmp_path):
    with pytest.raises(requirements.RequirementsInvalid, match="No such file"):
        requirements.parse([], [tmp_path / "nope.txt"])


def test_a_requirements_file_that_is_no_file_is_one_line_at_once(tmp_path):
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)  # nobody writes it: reading would wait for ever
    big = tmp_path / "big.txt"
    big.write_text("flask\n" * 200_000)
    for path, says in [
        (Path("/dev/zero"), "not a regular file"),
        (fifo, "not a regular file"),
        (big, "larger than 1024 KiB"),
    ]:
        with pytest.raises(requirements.RequirementsInvalid) as err:
            requirements.parse([], [path])
        assert str(err.value) == f"--with-requirements {path}: {says}"


NO_MATCH = """\
ERROR: Could not find a version that satisfies the requirement nosuchpkg==1 (from versions: none)
ERROR: No matching distribution found for nosuchpkg==1
"""
CONFLICT = """\
ERROR: Cannot install flask==3.0.0 and werkzeug==2.0.0 because these package versions have conflicting dependencies.

The conflict is caused by:
    The user requested werkzeug==2.0.0
    flask 3.0.0 depends on Werkzeug>=3.0.0

ERROR: ResolutionImpossible: for help visit https://pip.pypa.io/en/latest/topics/dependency-resolution/#dealing-with-dependency-conflicts

[notice] A new release of pip is available: 23.0 -> 25.0
"""


def test_pips_decisive_line():
    assert requirements.decisive_line(NO_MATCH) == "No matching distribution found for nosuchpkg==1"
    assert requirements.decisive_line(CONFLICT).startswith(
        "Cannot install flask==3.0.0 and werkzeug"
    )
    assert (
        requirements.decisive_line("Traceback\n  ...\nOSError: disk full\n") == "OSError: disk full"
    )
    assert requirements.decisive_line("") == "pip failed without a message"


def test_the_importable_names_of_a_record():
    record = "\n".join(
        [
            "flask/__init__.py,sha256=x,1",
            "flask/__pycache__/app.cpython-312.pyc,,",
            "flask-3.1.0.dist-info/METADATA,sha256=y,2",
            "six.py,sha256=z,3",
            "_cffi_backend.cpython-312-x86_64-linux-gnu.so,sha256=w,4",
            "../../bin/flask,sha256=v,5",
            "flask.data/scripts/tool,,",
        ]
    )
    assert requirements.top_level_names(record) == ["flask", "six"]


def test_the_digest_sees_every_file_but_bytecode(tmp_path):
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "mod.py").write_text("x = 1\n")
    (tmp_path / "pkg" / "native.so").write_bytes(b"\x7fELF")
    first = fsutil.tree_digest(tmp_path, requirements.MANIFEST)
    (tmp_path / "pkg" / "__pycache__").mkdir()
    (tmp_path / "pkg" / "__pycache__" / "mod.cpython-312.pyc").write_bytes(b"junk")
    assert fsutil.tree_digest(tmp_path, requirements.MANIFEST) == first
    (tmp_path / "pkg" / "native.so").write_bytes(b"\x7fELF2")
    assert fsutil.tree_digest(tmp_path, requirements.MANIFEST) != first


def test_pip_gets_the_runs_indexes_with_their_credentials_and_no_config_file(tmp_path):
    index.configure("https://user:s3cret@mirror.example/simple", ["file:///srv/wheels"])
    try:
        env, urls = requirements.pip_env(tmp_path)
    finally:
        index.configure(None)
    assert env["PIP_INDEX_URL"] == "https://user:s3cret@mirror.example/simple"
    assert env["PIP_EXTRA_INDEX_URL"] == "file:///srv/wheels"
    assert env["PIP_CONFIG_FILE"] == os.devnull
    assert "s3cret" not in json.dumps(urls)  # the key and any record stay clean


# --- real installed sets ---------------------------------------------------------------------------


def interpreter(minor: str, cache_dir: Path) -> Interpreter:
    found = [i for i in discover(cache_dir) if i.minor == minor]
    if not found:
        pytest.skip(f"no Python {minor} here")
    return found[0]


def environment(
    version: str, interp: Interpreter, cache_dir: Path, installed: requirements.InstalledSet
) -> environments.Environment:
    artifact = wheels.gunicorn_release(version, cache_dir, index.project("gunicorn", cache_dir))
    env = environments.ensure(artifact, interp, cache_dir, EnvNeeds(user_set=installed))
    assert env.works, env.reason
    return env


def run_in(env: environments.Environment, code: str) -> dict:
    proc = subprocess.run(
        [str(env.python), "-c", code], capture_output=True, text=True, timeout=60, cwd="/"
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


IMPORTS = """
import json, flask, gunicorn
try:
    from importlib.metadata import version
except ImportError:  # Python 3.6-3.7
    import pkg_resources
    version = lambda name: pkg_resources.get_distribution(name).version
print(json.dumps({"flask": flask.__file__, "flask_version": version("flask"),
                  "gunicorn": gunicorn.__file__}))
"""


def identity(installed: requirements.InstalledSet) -> tuple[int, int]:
    manifest = installed.path / requirements.MANIFEST
    return installed.path.stat().st_ino, manifest.stat().st_mtime_ns


def builds(cache_dir: Path) -> set[str]:
    root = cache_dir / "layers"
    # every entry but the build locks (empty files, as for environments)
    return {p.name for p in root.iterdir() if p.suffix != ".lock"} if root.is_dir() else set()


@pytest.mark.real
@pytest.mark.parametrize(
    "minor, release, pip",
    [("3.6", "19.9.0", "21.3.1"), ("3.9", "20.1.0", None), ("3.12", "23.0.0", None)],
)
def test_flask_comes_from_the_installed_set_and_a_second_target_installs_nothing(
    cache_dir, minor, release, pip
):
    """3.6 too, whose own pip predates the resolver: the installed's pip is 21.3.1 there."""
    interp = interpreter(minor, cache_dir)
    installed = requirements.ensure(requirements.parse(["flask"]), interp, cache_dir)
    manifest = json.loads((installed.path / requirements.MANIFEST).read_text())
    assert pip is None or manifest["pip"] == pip
    assert "flask" in installed.versions and not (installed.path / "gunicorn").exists()
    env = environment(release, interp, cache_dir, installed)
    found = run_in(env, IMPORTS)
    assert Path(found["flask"]).is_relative_to(installed.path)
    assert found["flask_version"] == installed.versions["flask"]
    assert Path(found["gunicorn"]).is_relative_to(env.path)
    assert env.extras["flask"] == installed.versions["flask"]  # what the row shows

    # gunicorn's own dependencies (22.0.0: packaging) are a installed of their own, once per Python
    project = index.project("gunicorn", cache_dir)
    requirements.dependency_set(
        wheels.gunicorn_release("22.0.0", cache_dir, project), interp, cache_dir
    )
    before, entries = identity(installed), builds(cache_dir)
    # another run, another target on the same Python: the same installed set, verified, not rebuilt
    again = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; from pathlib import Path; from harness.provision import requirements;"
            "from harness.provision.interpreters import Interpreter;"
            "l = requirements.ensure(requirements.parse(['flask']), Interpreter(*sys.argv[1:4]), Path(sys.argv[4]));"
            "print(l.built, l.path)",
            interp.path,
            interp.version,
            interp.source,
            str(cache_dir),
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
    )
    assert again.returncode == 0, again.stderr
    assert again.stdout.split() == ["False", str(installed.path)]
    other = environment("22.0.0", interp, cache_dir, installed)
    assert Path(run_in(other, IMPORTS)["flask"]).is_relative_to(installed.path)
    assert identity(installed) == before and builds(cache_dir) == entries


@pytest.mark.real
def test_an_altered_installed_set_is_rebuilt_not_used(tmp_path, cache_dir):
    interp = interpreter("3.12", cache_dir)
    cache = tmp_path / "cache"
    (cache / "wheels").mkdir(parents=True)
    for whl in (cache_dir / "wheels").glob("pip-*.whl"):  # no download of pip again
        shutil.copy(whl, cache / "wheels" / whl.name)
    first = requirements.ensure(requirements.parse(["six"]), interp, cache)
    six = next(first.path.glob("six.py"))
    six.write_text(six.read_text() + "\nraise SystemExit('tampered')\n")
    requirements._known_here.clear()  # as a new process would start
    again = requirements.ensure(requirements.parse(["six"]), interp, cache)
    assert again.built and "tampered" not in next(again.path.glob("six.py")).read_text()


@pytest.mark.real
def test_a_set_that_cannot_resolve_is_one_line_and_leaves_nothing(cache_dir):
    interp = interpreter("3.12", cache_dir)
    before = builds(cache_dir)
    refused = cache_dir / "layers" / "refused"
    refusals = set(refused.iterdir()) if refused.is_dir() else set()
    with pytest.raises(requirements.SetRefused) as err:
        requirements.ensure(requirements.parse(["nosuchpkg-gunicorn-bisect==1"]), interp, cache_dir)
    message = str(err.value)
    assert "No matching distribution found for nosuchpkg-gunicorn-bisect==1" in message
    assert "\n" not in message and isinstance(err.value, ArtifactError)
    assert builds(cache_dir) == before
    assert (set(refused.iterdir()) if refused.is_dir() else set()) == refusals
    with pytest.raises(requirements.SetRefused) as again:  # the next target: the same answer
        requirements.ensure(requirements.parse(["nosuchpkg-gunicorn-bisect==1"]), interp, cache_dir)
    assert str(again.value) == message


@pytest.mark.real
def test_eventlet_0_30_2_is_installed_where_it_imports_and_turns_newer_pythons_away(cache_dir):
    """It imports on 3.9; on 3.10 dnspython 1.16 fails ("cannot set 'is_timeout'"), on
    3.12 ``imp`` is gone: those Pythons are turned away with that line."""
    reqs = requirements.parse(["eventlet==0.30.2"])
    old = interpreter("3.9", cache_dir)
    installed = requirements.ensure(reqs, old, cache_dir)
    assert installed.versions == {"eventlet": "0.30.2"}
    new = interpreter("3.12", cache_dir)
    before = builds(cache_dir) - {"refused"}
    for _ in range(2):  # the second time from the remembered refusal
        with pytest.raises(requirements.SetRefused, match=r"eventlet 0.30.2 does not import on Py"):
            requirements.ensure(reqs, new, cache_dir)
    assert builds(cache_dir) - {"refused"} == before  # no installed left for 3.12


@pytest.mark.real
def test_a_requirement_on_gunicorn_never_shadows_the_targets(cache_dir):
    interp = interpreter("3.12", cache_dir)
    installed = requirements.ensure(requirements.parse(["uvicorn-worker"]), interp, cache_dir)
    assert not list(installed.path.glob("gunicorn-[0-9]*.dist-info"))
    assert (
        not (installed.path / "gunicorn").exists()
        and not (installed.path / "bin" / "gunicorn").exists()
    )
    env = environment("22.0.0", interp, cache_dir, installed)
    found = run_in(
        env,
        "import json, importlib.metadata as md, gunicorn, uvicorn_worker\n"
        "print(json.dumps({'v': gunicorn.__version__, 'dist': md.version('gunicorn'),"
        " 'worker': uvicorn_worker.__file__}))",
    )
    assert found["v"] == found["dist"] == "22.0.0"
    assert Path(found["worker"]).is_relative_to(installed.path)


# --- an interrupt during the import check is no refusal (issue 26, item 4) ----------------

# A installed whose one module imports slowly while a marker exists; pip's step copies it in
# (the import check, what this is about, is the real one), and a SIGINT reaches the
# harness the moment the import check runs.
INTERRUPTED_IMPORT = r"""
import os, signal, sys, threading, time
from pathlib import Path
from harness.host import processes
from harness.provision import requirements
from harness.provision.interpreters import Interpreter

cache, marker, path, version = sys.argv[1:5]

def pip_copies_the_installed_set(interp, reqs, dest, env):
    (dest / "slowimp.py").write_text(
        "import os, time\nif os.path.exists(%r):\n    time.sleep(30)\n" % marker)
    info = dest / "slowimp-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: slowimp\nVersion: 1.0\n")
    (info / "RECORD").write_text("slowimp.py,,\nslowimp-1.0.dist-info/METADATA,,\n")

requirements._pip_install = pip_copies_the_installed_set

def ctrl_c_at_the_import_check():
    while True:
        for p in Path("/proc").glob("[0-9]*"):
            try:
                if b"failed =" + b" {}" in (p / "cmdline").read_bytes():
                    os.kill(os.getpid(), signal.SIGINT)
                    return
            except OSError:
                pass
        time.sleep(0.01)

with processes.signals_as_flags(lambda: None):
    if os.path.exists(marker):
        threading.Thread(target=ctrl_c_at_the_import_check, daemon=True).start()
    try:
        installed = requirements.ensure(requirements.parse(["slowimp"]), Interpreter(path, version, "pyenv"), Path(cache))
        print("layer", installed.versions)
    except processes.Cancelled:
        print("cancelled")
    except requirements.SetRefused as exc:
        print("refused", exc)
    sys.stdout.flush()
    os._exit(0)
"""


@pytest.mark.real
def test_an_interrupt_during_the_import_check_is_not_a_refusal(tmp_path, cache_dir):
    interp = interpreter("3.13", cache_dir)
    cache = tmp_path / "cache"
    (cache / "wheels").mkdir(parents=True)
    for whl in (cache_dir / "wheels").glob("pip-*.whl"):  # no download of pip again
        shutil.copy(whl, cache / "wheels" / whl.name)
    marker = tmp_path / "slow"
    marker.touch()

    def run() -> str:
        argv = [sys.executable, "-c", INTERRUPTED_IMPORT, str(cache), str(marker)]
        proc = subprocess.run(
            [*argv, interp.path, interp.version],
            capture_output=True,
            text=True,
            cwd=ROOT,
            timeout=120,
        )
        return proc.stdout.strip() + proc.stderr[-300:]

    assert run() == "cancelled"
    assert not list((cache / "layers").glob("refused/*.json"))
    # what older runs wrote on an interrupt is not taken for a refusal either
    _, urls = requirements.pip_env(cache)
    name = f"py{interp.version}-{requirements._key(requirements.parse(['slowimp']), interp, urls)}"
    poisoned = {"reason": f"slowimp 1.0 does not import on Python {interp.version}: "
                "KeyboardInterrupt"}  # fmt: skip
    (cache / "layers" / "refused").mkdir(exist_ok=True)
    (cache / "layers" / "refused" / f"{name}.json").write_text(json.dumps(poisoned))
    marker.unlink()  # the next run: no interrupt, the same installed set
    assert run() == "layer {'slowimp': '1.0'}"
