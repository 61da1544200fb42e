"""Read-only access to a Gunicorn git history through the ``git`` command line.

Every git effect of the project lives here so that the rest of the code can stay
pure and testable.  The user's repository is never written to: no checkout,
reset, bisect, ref update or even new objects (picks are staged in a private
object directory).  Remote URLs are mirrored once into a bare cache clone.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import tarfile
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path

from harness.host.fsutil import private_dir, run_temp_dir
from harness.model.commit_refs import github_commit_url, parse_refs
from harness.model.errors import HarnessError
from harness.model.redact import redact_url
from harness.model.results import CommitInfo
from harness.model.verdict import last_line

DEFAULT_REPO = "https://github.com/benoitc/gunicorn.git"

_URL_RE = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
_SCP_RE = re.compile(r"^(?:[^@/:\s]+@)?[^/:\s]+:(?!//)[^\s]*$")

_FIELD = "%x00"
_RECORD = "%x1e"
_LOG_FORMAT = _FIELD.join(["%H", "%h", "%P", "%s", "%an <%ae>", "%aI", "%b"]) + _RECORD


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
    stripped = re.sub(r"^[A-Za-z][A-Za-z0-9+.-]*://", "", url).rstrip("/")
    stripped = re.sub(r"\.git$", "", stripped)
    readable = re.sub(r"[^A-Za-z0-9_.-]+", "-", stripped).strip("-.")[-60:] or "repo"
    digest = hashlib.sha256(url.encode()).hexdigest()[:10]
    return f"{readable}-{digest}"


def _last_line(text: str) -> str:
    return redact_url(last_line(text, default="no error output"))


def _base_env() -> dict[str, str]:
    """Environment for every git call: no locks, no prompts, stable messages."""
    env = dict(os.environ)
    for name in ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "GIT_OBJECT_DIRECTORY"):
        env.pop(name, None)
    env.pop("GIT_ALTERNATE_OBJECT_DIRECTORIES", None)
    env.update(
        GIT_OPTIONAL_LOCKS="0",
        GIT_TERMINAL_PROMPT="0",
        GIT_ASKPASS="true",
        LC_ALL="C",
        LANGUAGE="C",
        # a partial clone must not fetch what it lacks from its promisor remote (git 2.44+)
        GIT_NO_LAZY_FETCH="1",
    )
    env.setdefault("GIT_SSH_COMMAND", "ssh -o BatchMode=yes")
    return env


#: Read-only means none of the repository's own code runs: no hook (read-tree with a
#: private index still fires post-index-change), no fsmonitor daemon or command.
_SAFE = ("-c", "core.hooksPath=/dev/null", "-c", "core.fsmonitor=false")


def _run(
    args: Sequence[str],
    *,
    env: dict[str, str] | None = None,
    input: bytes | None = None,
    cwd: Path | None = None,
) -> subprocess.CompletedProcess[bytes]:
    """Run git without raising; a missing git binary becomes a SourceError."""
    try:
        return subprocess.run(
            ["git", *_SAFE, *args],
            env=env if env is not None else _base_env(),
            input=input,
            cwd=cwd,
            capture_output=True,
            check=False,
        )
    except FileNotFoundError as exc:
        raise SourceError("git is not installed (needed to read Gunicorn's history)") from exc
    except OSError as exc:
        raise SourceError(f"cannot run git: {exc}") from exc


def _refuse_incomplete(git_dir: Path, spec: str) -> None:
    """A shallow or partial clone cannot name a commit: its boundary would look like the
    first commit of the history (a wrong answer, not an error), whatever form --repo takes."""
    shallow = _run(["--git-dir", str(git_dir), "rev-parse", "--is-shallow-repository"])
    if shallow.stdout.decode().strip() == "true":
        raise SourceError(
            f"--repo {spec}: shallow clone lacks the history to bisect; "
            "point --repo at a full clone"
        )
    promisor = _run(
        ["--git-dir", str(git_dir), "config", "--get-regexp", r"^remote\..*\.promisor$"]
    )
    extension = _run(["--git-dir", str(git_dir), "config", "--get", "extensions.partialclone"])
    if b"true" in promisor.stdout.lower() or extension.stdout.strip():
        raise SourceError(
            f"--repo {spec}: partial clone (objects left on its remote) cannot be read "
            "without fetching into it; point --repo at a full clone"
        )


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

    def __repr__(self) -> str:
        return f"Repo({self.spec!r}, git_dir={str(self.git_dir)!r})"

    # ------------------------------------------------------------------ opening
    @classmethod
    def open(cls, spec: str, cache_dir: Path) -> Repo:
        """Open a local clone in place, or a remote URL through a cached bare clone."""
        if is_remote_spec(spec):
            return cls._open_remote(spec, Path(cache_dir))
        return cls._open_local(spec)

    @classmethod
    def _open_local(cls, spec: str) -> Repo:
        path = Path(spec).expanduser()
        if not path.exists():
            raise SourceError(f"--repo {spec}: no such directory")
        if not path.is_dir():
            raise SourceError(f"--repo {spec}: not a directory")
        proc = _run(["-C", str(path), "rev-parse", "--absolute-git-dir"])
        if proc.returncode != 0:
            raise SourceError(f"--repo {spec}: not a git repository")
        git_dir = Path(proc.stdout.decode().strip())
        if git_dir.resolve() != path.resolve():  # not a bare repo: must be a work tree's top
            top = _run(["-C", str(path), "rev-parse", "--show-toplevel"])
            toplevel = top.stdout.decode().strip()
            if top.returncode != 0 or Path(toplevel).resolve() != path.resolve():
                where = f" (it is inside {toplevel})" if toplevel else ""
                raise SourceError(f"--repo {spec}: not a git repository{where}")
        _refuse_incomplete(git_dir, spec)
        origin = _run(["--git-dir", str(git_dir), "config", "--get", "remote.origin.url"])
        remote = (origin.stdout.decode().strip() or None) if origin.returncode == 0 else None
        remote = redact_url(remote) if remote else None
        return cls(git_dir, spec, remote, managed=False)

    @classmethod
    def _open_remote(cls, url: str, cache_dir: Path) -> Repo:
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
                proc = _run(["clone", "--bare", "--quiet", "--", url, str(target)])
                if proc.returncode != 0:
                    raise SourceError(cls._unreachable(url, proc.stderr))
                _refuse_incomplete(target, redact_url(url))  # never kept: refused every time
                try:
                    os.rename(target, final)
                except OSError:
                    if not (final / "HEAD").exists():  # not a concurrent winner: real failure
                        raise SourceError(
                            f"cannot move the clone of {redact_url(url)} into {final}"
                        ) from None
            finally:
                shutil.rmtree(tmp, ignore_errors=True)
        shown = redact_url(url)
        _refuse_incomplete(final, shown)
        return cls(final, shown, shown, managed=True)

    @staticmethod
    def _unreachable(url: str, stderr: bytes) -> str:
        reason = _last_line(stderr.decode(errors="replace")).removeprefix("fatal: ")
        url, reason = redact_url(url), redact_url(reason)
        return f"cannot reach {url} (no network? git said: {reason}): point --repo at a local clone"

    # ------------------------------------------------------------------ plumbing
    def _git(
        self,
        *args: str,
        input: bytes | None = None,
        env: dict[str, str] | None = None,
        what: str | None = None,
    ) -> bytes:
        """Run a git command on this repository; failures become one-line SourceErrors."""
        proc = _run(["--git-dir", str(self.git_dir), *args], input=input, env=env)
        if proc.returncode != 0:
            reason = _last_line(proc.stderr.decode(errors="replace"))
            raise SourceError(f"{what or 'git ' + args[0]} failed in {self.spec}: {reason}")
        return proc.stdout

    def _try_resolve(self, ref: str) -> str | None:
        proc = _run(
            [
                "--git-dir",
                str(self.git_dir),
                "rev-parse",
                "--verify",
                "--quiet",
                "--end-of-options",
                f"{ref}^{{commit}}",
            ]
        )
        return proc.stdout.decode().strip() if proc.returncode == 0 else None

    def fetch(self) -> None:
        """Update our cache clone's tags and branches (never the user's repo)."""
        if not self.managed or self._fetched:
            return
        self._fetched = True
        proc = _run(
            [
                "--git-dir",
                str(self.git_dir),
                "fetch",
                "--quiet",
                "--prune",
                "origin",
                "+refs/tags/*:refs/tags/*",
                "+refs/heads/*:refs/heads/*",
            ]
        )
        if proc.returncode != 0:
            raise SourceError(self._unreachable(self.spec, proc.stderr))

    @staticmethod
    def _check_ref(ref: str) -> None:
        if not ref or ref.startswith("-") or any(c in ref for c in "\0\n"):
            raise SourceError(f"invalid ref {ref!r}")

    # ------------------------------------------------------------------ queries
    def resolve(self, ref: str) -> str:
        """Full commit sha of a branch, tag (peeled) or (abbreviated) sha."""
        self._check_ref(ref)
        sha = self._try_resolve(ref)
        if sha is None and self.managed and not self._fetched:
            self.fetch()
            sha = self._try_resolve(ref)
        if sha is None:
            raise SourceError(f"ref {ref!r} not found in {self.spec}")
        return sha

    def tag_for_version(self, version: str) -> str | None:
        """The tag naming a PyPI release: 19.6.0, else 19.0 for 19.0.0, else v-prefixed."""
        self._check_ref(version)
        candidates = [version]
        trimmed = version
        while trimmed.endswith(".0") and trimmed.count(".") > 1:
            trimmed = trimmed[: -len(".0")]
            candidates.append(trimmed)
        candidates += [f"v{c}" for c in candidates]
        for attempt in range(2):
            for tag in candidates:
                if self._try_resolve(f"refs/tags/{tag}") is not None:
                    return tag
            if attempt == 0 and self.managed and not self._fetched:
                self.fetch()
            else:
                break
        return None

    def graph(self, old: str | Iterable[str], new: str) -> dict[str, tuple[str, ...]]:
        """Parents of every commit in ``old..new`` (all parents, merges included)."""
        olds = [old] if isinstance(old, str) else list(old)
        for ref in [*olds, new]:
            self._check_ref(ref)
        for ref in olds:  # a moved tag: the older release is not in the newer one's past
            ancestor = ["--git-dir", str(self.git_dir), "merge-base", "--is-ancestor", ref, new]
            if _run(ancestor).returncode == 1:
                raise SourceError(
                    f"{ref[:12]} is not an ancestor of {new[:12]} in {self.spec}: the history "
                    "contradicts the release tags (a moved or rewritten tag?)"
                )
        out = self._git(
            "rev-list",
            "--parents",
            new,
            *(f"^{ref}" for ref in olds),
            "--",
            what=f"listing {', '.join(olds) or 'root'}..{new}",
        )
        graph: dict[str, tuple[str, ...]] = {}
        for line in out.decode().splitlines():
            if line.strip():
                sha, *parents = line.split()
                graph[sha] = tuple(parents)
        return graph

    def info(self, sha: str) -> CommitInfo:
        """Subject, author, PR and fixed issues of one commit."""
        return self.infos([sha])[0]

    def infos(self, shas: Iterable[str]) -> list[CommitInfo]:
        """Batched ``info``: one ``git log`` call for many commits, in the given order."""
        wanted = list(shas)
        if not wanted:
            return []
        for ref in wanted:
            self._check_ref(ref)
        out = self._git(
            "-c",
            "log.showSignature=false",
            "log",
            "--no-walk=unsorted",
            "--no-color",
            f"--format={_LOG_FORMAT}",
            *wanted,
            "--",
            what="git log",
        )
        records = [r for r in out.decode(errors="replace").split("\x1e") if r.strip("\n")]
        result = []
        for record in records:
            fields = record.lstrip("\n").split("\x00")
            sha, short, parents, subject, author, date, body = fields[:7]
            body = body.rstrip("\n")
            pr, fixes = parse_refs(subject, body)
            result.append(
                CommitInfo(
                    sha=sha,
                    short=short,
                    parents=tuple(parents.split()),
                    subject=subject,
                    author=author,
                    date=date,
                    body=body,
                    pr=pr,
                    fixes=fixes,
                )
            )
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
        """Write ``sha``'s tree plus the change of ``pick`` (vs its first parent) into dest.

        Used to test commits that only work with a later repair.  The patch is
        staged in a private index and object directory, so the repository and
        its index stay untouched.  False when the change does not apply cleanly.
        """
        self._check_ref(sha)
        self._check_ref(pick)
        base = self.resolve(sha)
        picked = self.info(self.resolve(pick))
        parent = picked.parents[0] if picked.parents else self._empty_tree()
        patch = self._git(
            "diff",
            "--binary",
            "--full-index",
            "--no-color",
            "--no-ext-diff",
            "--no-textconv",
            "--no-renames",
            parent,
            picked.sha,
            "--",
            what=f"diffing {pick}",
        )
        with tempfile.TemporaryDirectory(prefix="pick-", dir=run_temp_dir()) as tmp:
            objects = Path(tmp) / "objects"
            objects.mkdir()
            env = _base_env()
            env.update(
                GIT_INDEX_FILE=str(Path(tmp) / "index"),
                GIT_OBJECT_DIRECTORY=str(objects),
                GIT_ALTERNATE_OBJECT_DIRECTORIES=str(self._objects_dir()),
            )
            self._git("read-tree", base, env=env, what="git read-tree")
            if patch.strip():
                proc = _run(
                    ["--git-dir", str(self.git_dir), "apply", "--cached", "--whitespace=nowarn"],
                    env=env,
                    input=patch,
                )
                if proc.returncode != 0:
                    return False
            tree = self._git("write-tree", env=env, what="git write-tree").decode().strip()
            self._archive(tree, Path(dest), env=env)
        return True

    def _objects_dir(self) -> Path:
        out = self._git("rev-parse", "--git-path", "objects").decode().strip()
        return Path(out).resolve()  # relative answers are relative to our cwd

    def _empty_tree(self) -> str:
        return self._git("hash-object", "-t", "tree", "/dev/null").decode().strip()

    def _archive(self, treeish: str, dest: Path, env: dict[str, str] | None) -> None:
        dest.mkdir(parents=True, exist_ok=True)
        args = ["git", *_SAFE, "--git-dir", str(self.git_dir), "archive", "--format=tar", treeish]
        try:
            proc = subprocess.Popen(
                args,
                env=env if env is not None else _base_env(),
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
            )
        except OSError as exc:
            raise SourceError(f"cannot run git: {exc}") from exc
        assert proc.stdout is not None and proc.stderr is not None
        try:
            with tarfile.open(fileobj=proc.stdout, mode="r|") as archive:
                if hasattr(tarfile, "data_filter"):
                    archive.extractall(dest, filter="fully_trusted")
                else:  # pragma: no cover - Pythons without extraction filters
                    archive.extractall(dest)
        except (tarfile.TarError, OSError) as exc:
            proc.kill()
            proc.wait()
            reason = _last_line(proc.stderr.read().decode(errors="replace"))
            raise SourceError(f"cannot export {treeish} from {self.spec}: {reason or exc}") from exc
        else:
            # tarfile stops at the end-of-archive marker; git may still be writing the
            # record padding after it. Drain to EOF so git is never killed by SIGPIPE.
            while proc.stdout.read(65536):
                pass
        finally:
            proc.stdout.close()
        stderr = proc.stderr.read()
        proc.stderr.close()
        status = proc.wait()
        if status != 0:
            reason = _last_line(stderr.decode(errors="replace"))
            raise SourceError(
                f"cannot export {treeish} from {self.spec}: git archive exited {status}: {reason}"
            )
