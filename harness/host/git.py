"""Read-only access to a Gunicorn git history through the ``git`` command line.

Every git effect of the project lives here.  The user's repository is never written
to: no checkout, reset, bisect, ref update or even new objects (picks are staged in a
private object directory), and none of its own code runs (see ``SAFE``).  A remote URL
is mirrored once into a bare cache clone, named without its credentials.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

from harness.host.fsutil import private_dir, run_temp_dir
from harness.model.errors import HarnessError
from harness.model.redact import redact_url, without_userinfo
from harness.model.results import CommitInfo, declared_version, github_commit_url, parse_refs
from harness.model.verdict import last_line

_URL_RE = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
_SCP_RE = re.compile(r"^(?:[^@/:\s]+@)?[^/:\s]+:(?!//)[^\s]*$")


class SourceError(HarnessError):
    """A one-line, user-facing problem with the repository or a ref."""


def is_remote_spec(spec: str) -> bool:
    """True when ``spec`` is a URL (or scp-like ssh address) rather than a local path."""
    if Path(spec).expanduser().exists():
        return False
    if _URL_RE.match(spec):
        return True
    return bool(_SCP_RE.match(spec)) and not spec.startswith((".", "/", "~"))


def _slug(url: str) -> str:
    """Stable, filesystem-safe cache name for a remote URL (never its credentials)."""
    url = redact_url(url)
    stripped = re.sub(r"\.git$", "", _URL_RE.sub("", url).rstrip("/"))
    readable = re.sub(r"[^A-Za-z0-9_.-]+", "-", stripped).strip("-.")[-60:] or "repo"
    return f"{readable}-{hashlib.sha256(url.encode()).hexdigest()[:10]}"


def stderr_line(text: str) -> str:
    """The line of git's error output worth showing, with no credentials in it."""
    return redact_url(last_line(text, default="no error output"))


#: What would point git at other objects or another history than the repository's own.
_UNSET = set(
    "GIT_DIR GIT_WORK_TREE GIT_INDEX_FILE GIT_OBJECT_DIRECTORY GIT_ALTERNATE_OBJECT_DIRECTORIES"
    " GIT_REPLACE_REF_BASE GIT_GRAFT_FILE".split()
)


def base_env() -> dict[str, str]:
    """Environment for every git call: no locks, no prompts, stable messages."""
    env = {k: v for k, v in os.environ.items() if k not in _UNSET}
    env.update(
        GIT_OPTIONAL_LOCKS="0",
        GIT_TERMINAL_PROMPT="0",
        GIT_ASKPASS="true",
        LC_ALL="C",
        LANGUAGE="C",
        # a partial clone must not fetch what it lacks from its promisor remote (git 2.44+)
        GIT_NO_LAZY_FETCH="1",
        # the history as its objects say, not as refs/replace (or a graft) rewrites it
        GIT_NO_REPLACE_OBJECTS="1",
    )
    env.setdefault("GIT_SSH_COMMAND", "ssh -o BatchMode=yes")
    return env


#: Read-only means none of the repository's own code runs: no hook (read-tree with a
#: private index still fires post-index-change), no fsmonitor daemon or command.
SAFE = ("-c", "core.hooksPath=/dev/null", "-c", "core.fsmonitor=false")


def run_git(
    args: Sequence[str],
    *,
    env: dict[str, str] | None = None,
    input: bytes | None = None,
) -> subprocess.CompletedProcess[bytes]:
    """Run git without raising; a missing git binary becomes a SourceError."""
    try:
        return subprocess.run(
            ["git", *SAFE, *args],
            env=env if env is not None else base_env(),
            input=input,
            capture_output=True,
        )
    except FileNotFoundError as exc:
        raise SourceError("git is not installed (needed to read Gunicorn's history)") from exc
    except OSError as exc:
        raise SourceError(f"cannot run git: {exc}") from exc


def _run_in(git_dir: Path, *args: str, **kw) -> subprocess.CompletedProcess[bytes]:
    return run_git(["--git-dir", str(git_dir), *args], **kw)


def _refuse_incomplete(git_dir: Path, spec: str) -> None:
    """A shallow or partial clone cannot name a commit: its boundary would look like the
    first commit of the history (a wrong answer, not an error), whatever form --repo takes."""
    shallow = _run_in(git_dir, "rev-parse", "--is-shallow-repository")
    if shallow.stdout.decode().strip() == "true":
        raise SourceError(
            f"--repo {spec}: shallow clone lacks the history to bisect; "
            "point --repo at a full clone"
        )
    promisor = _run_in(git_dir, "config", "--get-regexp", r"^remote\..*\.promisor$")
    extension = _run_in(git_dir, "config", "--get", "extensions.partialclone")
    if b"true" in promisor.stdout.lower() or extension.stdout.strip():
        raise SourceError(
            f"--repo {spec}: partial clone (objects left on its remote) cannot be read "
            "without fetching into it; point --repo at a full clone"
        )


def open_local(spec: str) -> tuple[Path, str | None]:
    """A local clone (bare, or a work tree's top) read in place: its git directory and its
    origin URL (redacted), once it is known to be a full clone."""
    path = Path(spec).expanduser()
    if not path.exists():
        raise SourceError(f"--repo {spec}: no such directory")
    if not path.is_dir():
        raise SourceError(f"--repo {spec}: not a directory")
    proc = run_git(["-C", str(path), "rev-parse", "--absolute-git-dir"])
    if proc.returncode != 0:
        raise SourceError(f"--repo {spec}: not a git repository")
    git_dir = Path(proc.stdout.decode().strip())
    if git_dir.resolve() != path.resolve():  # not a bare repo: must be a work tree's top
        top = run_git(["-C", str(path), "rev-parse", "--show-toplevel"])
        toplevel = top.stdout.decode().strip()
        if top.returncode != 0 or Path(toplevel).resolve() != path.resolve():
            where = f" (it is inside {toplevel})" if toplevel else ""
            raise SourceError(f"--repo {spec}: not a git repository{where}")
    _refuse_incomplete(git_dir, spec)
    origin = _run_in(git_dir, "config", "--get", "remote.origin.url")
    remote = (origin.stdout.decode().strip() or None) if origin.returncode == 0 else None
    return git_dir, redact_url(remote) if remote else None


def open_remote(url: str, cache_dir: Path) -> Path:
    """The bare cache clone of ``url`` under ``cache_dir``/repos, cloned on first use
    (into a temporary name, then renamed: a concurrent run's clone wins quietly)."""
    repos = cache_dir.expanduser().resolve() / "repos"
    final = repos / f"{_slug(url)}.git"
    if not (final / "HEAD").exists():
        try:
            private_dir(repos)
            tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", suffix=".tmp", dir=repos))
        except OSError as exc:
            raise SourceError(f"cannot create the clone cache in {repos}: {exc}") from exc
        try:
            target = tmp / "repo.git"
            proc = run_git(["clone", "--bare", "--quiet", "--", url, str(target)])
            if proc.returncode != 0:
                raise SourceError(unreachable(url, proc.stderr))
            _refuse_incomplete(target, redact_url(url))  # never kept: refused every time
            if without_userinfo(url) != url:  # no secret on disk: fetch gets the URL per call
                _run_in(target, "config", "remote.origin.url", without_userinfo(url))
            try:
                os.rename(target, final)
            except OSError:
                if not (final / "HEAD").exists():  # not a concurrent winner: real failure
                    raise SourceError(
                        f"cannot move the clone of {redact_url(url)} into {final}"
                    ) from None
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    _refuse_incomplete(final, redact_url(url))
    return final


def unreachable(url: str, stderr: bytes) -> str:
    """The one line for a clone or fetch that could not reach its remote."""
    reason = stderr_line(stderr.decode(errors="replace")).removeprefix("fatal: ")
    url, reason = redact_url(url), redact_url(reason)
    return f"cannot reach {url} (no network? git said: {reason}): point --repo at a local clone"


DEFAULT_REPO = "https://github.com/benoitc/gunicorn.git"

# NUL between fields, RS between records: sha, short sha, parents, subject, author, date, body
_LOG_FORMAT = "%x00".join(["%H", "%h", "%P", "%s", "%an <%ae>", "%aI", "%b"]) + "%x1e"
_MIRROR = ("+refs/tags/*:refs/tags/*", "+refs/heads/*:refs/heads/*")
_MISSING = re.compile(
    r"(invalid object|cannot read '|unable to read|not a tree object|bad object|missing (blob|tree))[^\n]*"
)


class DamagedRepo(HarnessError):
    """The history's clone lacks objects it names: no commit can be judged from it."""


class Repo:
    """A Gunicorn history, read through a git directory that is never modified."""

    def __init__(self, git_dir: Path, spec: str, remote: str | None, managed: bool) -> None:
        self.git_dir = git_dir
        self.spec = spec
        #: URL the history comes from: the spec itself or a local clone's origin.
        self.remote = remote
        #: True for our own cache clone, which may be fetched; False for the user's repo.
        self.managed = managed
        self._fetched = False
        self._fetch_url = "origin"

    def __repr__(self) -> str:
        return f"Repo({self.spec!r}, git_dir={str(self.git_dir)!r})"

    @classmethod
    def open(cls, spec: str, cache_dir: Path) -> Repo:
        """Open a local clone in place, or a remote URL through a cached bare clone."""
        if is_remote_spec(spec):
            shown = redact_url(spec)
            repo = cls(open_remote(spec, Path(cache_dir)), shown, shown, managed=True)
            repo._fetch_url = spec  # with its credentials, in memory only
            return repo
        git_dir, remote = open_local(spec)
        return cls(git_dir, spec, remote, managed=False)

    # ------------------------------------------------------------------ plumbing
    def _failed(self, what: str, proc: subprocess.CompletedProcess[bytes]) -> SourceError:
        said = stderr_line(proc.stderr.decode(errors="replace"))
        return SourceError(f"{what} failed in {self.spec}: {said}")

    def _git(self, *args: str, what: str | None = None, **run) -> bytes:
        """Git's output on this repository (``run``: env, input); else one-line errors."""
        proc = _run_in(self.git_dir, *args, **run)
        if proc.returncode != 0:
            self._refuse_damaged(proc.stderr.decode(errors="replace"))
            raise self._failed(what or f"git {args[0]}", proc)
        return proc.stdout

    def _try_resolve(self, ref: str) -> str | None:
        verify = ("rev-parse", "--verify", "--quiet", "--end-of-options", f"{ref}^{{commit}}")
        proc = _run_in(self.git_dir, *verify)
        return proc.stdout.decode().strip() if proc.returncode == 0 else None

    def fetch(self) -> None:
        """Update our cache clone's tags and branches (never the user's repo)."""
        if not self.managed or self._fetched:
            return
        self._fetched = True
        # the URL itself: its credentials are never kept on disk
        proc = _run_in(self.git_dir, "fetch", "--quiet", "--prune", self._fetch_url, *_MIRROR)
        if proc.returncode != 0:
            raise SourceError(unreachable(self.spec, proc.stderr))

    def _found(self, find: Callable[[], str | None]) -> str | None:
        """``find()``, asked again after one fetch of our cache clone when it found nothing."""
        found = find()
        if found is None and self.managed and not self._fetched:
            self.fetch()
            found = find()
        return found

    @staticmethod
    def _check_ref(*refs: str) -> None:
        for ref in refs:
            if not ref or ref.startswith("-") or any(c in ref for c in "\0\n"):
                raise SourceError(f"invalid ref {ref!r}")

    # ------------------------------------------------------------------ queries
    def resolve(self, ref: str) -> str:
        """Full commit sha of a branch, tag (peeled) or (abbreviated) sha."""
        self._check_ref(ref)
        sha = self._found(lambda: self._try_resolve(ref))
        if sha is None:
            raise SourceError(f"ref {ref!r} not found in {self.spec}")
        return sha

    def tag_for_version(self, version: str) -> str | None:
        """The tag naming a PyPI release: 19.6.0, else 19.0 for 19.0.0, else v-prefixed."""
        self._check_ref(version)
        candidates = [version]
        while candidates[-1].endswith(".0") and candidates[-1].count(".") > 1:
            candidates.append(candidates[-1][: -len(".0")])
        candidates += [f"v{c}" for c in candidates]

        def tagged() -> str | None:
            return next((t for t in candidates if self._try_resolve(f"refs/tags/{t}")), None)

        return self._found(tagged)

    def is_ancestor(self, ancestor: str, sha: str) -> bool:
        """True when ``ancestor`` is in ``sha``'s history (itself included)."""
        self._check_ref(ancestor, sha)
        proc = _run_in(self.git_dir, "merge-base", "--is-ancestor", ancestor, sha)
        if proc.returncode not in (0, 1):
            raise self._failed("git merge-base", proc)
        return proc.returncode == 0

    def merge_bases(self, a: str, b: str) -> list[str]:
        """The best common ancestors of ``a`` and ``b`` (git bisect's merge bases)."""
        self._check_ref(a, b)
        proc = _run_in(self.git_dir, "merge-base", "--all", a, b)
        if proc.returncode == 1:
            return []  # no common history
        if proc.returncode != 0:
            raise self._failed("git merge-base", proc)
        return sorted(proc.stdout.decode().split())

    def version_at(self, sha: str) -> str | None:
        """The version gunicorn/__init__.py declares at ``sha`` ("19.6.0"), read as a
        blob (no filter, no attribute); None where there is no such file or line."""
        self._check_ref(sha)
        proc = _run_in(self.git_dir, "cat-file", "blob", f"{sha}:gunicorn/__init__.py")
        if proc.returncode != 0:
            return None
        return declared_version(proc.stdout.decode(errors="replace"))

    def tags_containing(self, sha: str) -> list[str]:
        """Names of the tags whose commit has ``sha`` in its history."""
        self._check_ref(sha)
        names = ("--format=%(refname:strip=2)", "refs/tags/")
        return self._git("for-each-ref", "--contains", sha, *names).decode().split()

    def graph(self, old: str | Iterable[str], new: str) -> dict[str, tuple[str, ...]]:
        """Parents of every commit in ``old..new`` (all parents, merges included)."""
        olds = [old] if isinstance(old, str) else list(old)
        self._check_ref(*olds, new)
        for ref in olds:  # a moved tag: the older release is not in the newer one's past
            if _run_in(self.git_dir, "merge-base", "--is-ancestor", ref, new).returncode == 1:
                raise SourceError(
                    f"{ref[:12]} is not an ancestor of {new[:12]} in {self.spec}: the history "
                    "contradicts the release tags (a moved or rewritten tag?)"
                )
        excluded = [f"^{ref}" for ref in olds]
        what = f"listing {', '.join(olds) or 'root'}..{new}"
        out = self._git("rev-list", "--parents", new, *excluded, "--", what=what)
        lines = (line.split() for line in out.decode().splitlines() if line.strip())
        return {sha: tuple(parents) for sha, *parents in lines}

    def info(self, sha: str) -> CommitInfo:
        """Subject, author, PR and fixed issues of one commit."""
        return self.infos([sha])[0]

    def infos(self, shas: Iterable[str]) -> list[CommitInfo]:
        """Batched ``info``: one ``git log`` call for many commits, in the given order."""
        wanted = list(shas)
        if not wanted:
            return []
        self._check_ref(*wanted)
        log = ("-c", "log.showSignature=false", "log", "--no-walk=unsorted", "--no-color")
        out = self._git(*log, f"--format={_LOG_FORMAT}", *wanted, "--", what="git log")
        result = []
        for record in out.decode(errors="replace").split("\x1e"):
            if record.strip("\n"):
                fields = record.lstrip("\n").split("\x00")
                sha, short, parents, subject, author, date, body = fields[:7]
                body = body.rstrip("\n")
                info = (sha, short, tuple(parents.split()), subject, author, date, body)
                result.append(CommitInfo(*info, *parse_refs(subject, body)))
        if len(result) != len(wanted):
            raise SourceError(f"git log returned {len(result)} of {len(wanted)} commits")
        return result

    def web_url(self, sha: str) -> str | None:
        """GitHub link for a commit when the history comes from GitHub."""
        return github_commit_url(self.remote, sha)

    # ------------------------------------------------------------------ trees
    def export(self, sha: str, dest: Path) -> None:
        """Write the tree of ``sha`` into ``dest`` without any checkout."""
        self._check_ref(sha)
        self._archive(sha, Path(dest), env=None)

    def export_with_pick(self, sha: str, pick: str, dest: Path) -> bool:
        """Write ``sha``'s tree plus the change of ``pick`` (vs its first parent) into
        ``dest``: a commit that only works with a later repair.  The patch is staged in a
        private index and object directory (the repository stays untouched).  A file of
        the change that does not apply is left out when it is no Python source (a CI file
        the mainline changed meanwhile); False when a Python file does not apply cleanly.
        """
        self._check_ref(sha, pick)
        base = self.resolve(sha)
        picked = self.info(self.resolve(pick))
        parent = picked.parents[0] if picked.parents else self._empty_tree()
        with tempfile.TemporaryDirectory(prefix="pick-", dir=run_temp_dir()) as tmp:
            objects = Path(tmp) / "objects"
            objects.mkdir()
            env = base_env()
            env.update(
                GIT_INDEX_FILE=str(Path(tmp) / "index"),
                GIT_OBJECT_DIRECTORY=str(objects),
                GIT_ALTERNATE_OBJECT_DIRECTORIES=str(self._objects_dir()),
            )
            self._git("read-tree", base, env=env, what="git read-tree")
            if not self._apply(self._patch(parent, picked.sha), env):
                names = self._patch(parent, picked.sha, "--name-only").decode().splitlines()
                for name in names:
                    ok = self._apply(self._patch(parent, picked.sha, path=name), env)
                    if not ok and name.endswith(".py"):
                        return False
            tree = self._git("write-tree", env=env, what="git write-tree").decode().strip()
            self._archive(tree, Path(dest), env=env)
        return True

    def _patch(self, parent: str, sha: str, *options: str, path: str | None = None) -> bytes:
        """The change from ``parent`` to ``sha``, byte-exact (no driver, no textconv)."""
        flags = ("--binary", "--full-index", "--no-color", "--no-ext-diff", "--no-textconv")
        paths = (path,) if path else ()
        diff = ("diff", *flags, "--no-renames", *options, parent, sha, "--", *paths)
        return self._git(*diff, what=f"diffing {sha}")

    def _apply(self, patch: bytes, env: dict[str, str]) -> bool:
        if not patch.strip():
            return True
        apply = ("apply", "--cached", "--whitespace=nowarn")
        return _run_in(self.git_dir, *apply, env=env, input=patch).returncode == 0

    def _objects_dir(self) -> Path:
        out = self._git("rev-parse", "--git-path", "objects").decode().strip()
        return Path(out).resolve()  # relative answers are relative to our cwd

    def _empty_tree(self) -> str:
        return self._git("hash-object", "-t", "tree", "/dev/null").decode().strip()

    def _refuse_damaged(self, said: str) -> None:
        """A missing object is the clone's fault, not the commit's: one line for the run
        (a clone missing blobs gave 33 "cannot export" rows and exit 0)."""
        m = _MISSING.search(said)
        if m:
            raise DamagedRepo(
                f"--repo {self.spec}: the clone is missing objects (git: {m.group(0).strip()}); "
                "repair it (git fsck) or clone it again"
            )

    def _archive(self, treeish: str, dest: Path, env: dict[str, str] | None) -> None:
        """Write the tree's files as its blobs hold them: read with ls-tree and cat-file,
        never ``git archive``, so no filter, attribute (export-subst, eol) or textconv of
        the repository's configuration changes a byte or runs a command."""
        dest.mkdir(parents=True, exist_ok=True)
        tree = ("ls-tree", "-r", "-z", "--full-tree", treeish, "--")
        listing = self._git(*tree, env=env, what=f"listing {treeish}")
        entries = []
        for record in filter(None, listing.split(b"\0")):
            meta, _, raw = record.partition(b"\t")
            mode, kind, sha = meta.decode().split()
            if kind == "blob":  # not a submodule, which holds no file of the package
                entries.append(
                    (mode, sha, _safe_path(raw.decode(errors="surrogateescape"), treeish))
                )
        blobs = self._blobs([sha for _, sha, _ in entries], env)
        links = []
        for mode, sha, rel in entries:
            path = dest / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            if mode == "120000":
                links.append((path, blobs[sha]))
                continue
            path.write_bytes(blobs[sha])
            path.chmod(0o755 if mode == "100755" else 0o644)
        for path, target in links:  # last: no file is ever written through a link
            os.symlink(os.fsdecode(target), path)

    def _blobs(self, shas: list[str], env: dict[str, str] | None) -> dict[str, bytes]:
        """The contents of many blobs through one ``git cat-file --batch``."""
        wanted = list(dict.fromkeys(shas))
        if not wanted:
            return {}
        batch = "\n".join(wanted).encode() + b"\n"
        out = self._git("cat-file", "--batch", input=batch, env=env)
        blobs: dict[str, bytes] = {}
        pos = 0
        for sha in wanted:
            end = out.index(b"\n", pos)
            header = out[pos:end].split()
            if len(header) == 2 and header[1] == b"missing":
                self._refuse_damaged(f"missing blob {sha}")
            if len(header) != 3 or header[1] != b"blob":
                raise SourceError(f"cannot read blob {sha[:12]} from {self.spec}")
            size = int(header[2])
            blobs[sha] = out[end + 1 : end + 1 + size]
            pos = end + 1 + size + 1
        return blobs


def _safe_path(rel: str, treeish: str) -> Path:
    """A tree entry's path, refused when it would leave the export or touch a .git."""
    parts = rel.split("/")
    if rel.startswith("/") or any(p in ("", ".", "..") or p.lower() == ".git" for p in parts):
        raise SourceError(f"{treeish[:12]} holds a path that cannot be exported: {rel!r}")
    return Path(*parts)
