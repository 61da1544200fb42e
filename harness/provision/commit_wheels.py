"""Wheels built from git commits, cached by full commit sha (and the pick that healed it).

A commit's tree is exported (never checked out), made a wheel and remembered with the
digest of its ``gunicorn/`` package, so its environment can prove it holds exactly that
commit's code. A ``--package`` dependency is built the standard way (pip's PEP 517 build,
in isolation from its own ``build-system.requires``) and kept with the wheel's sha256.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path

from packaging.utils import canonicalize_name

from harness.host import processes
from harness.host.fsutil import atomic_write_text, remove_tree
from harness.host.git import Repo
from harness.provision import requirements, wheels
from harness.provision.index import sha256_of
from harness.provision.wheels import Artifact, ArtifactError

BUILD_RECORD = "build.json"


def _load(folder: Path, label: str, sha: str) -> Artifact | None:
    """The verified artifact in ``folder`` (a damaged or swapped wheel is rebuilt, never
    used): a gunicorn wheel by its package's digest, a dependency's by its sha256."""
    try:
        rec = json.loads((folder / BUILD_RECORD).read_text())
        wheel = folder / rec["wheel"]
        if rec.get("sha") != sha or not wheels.intact(wheel):
            return None
        if "sha256" in rec:
            digest, got = rec["sha256"], sha256_of(wheel)
        else:
            digest, got = rec["digest"], wheels.package_digest(wheels.wheel_package_files(wheel))
        return Artifact(label, rec["version"], wheel, digest, sha) if got == digest else None
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None


def _cached_build(
    repo: Repo, sha: str, pick: str | None, root: Path, build: Callable[[Path, Path], tuple]
) -> Artifact:
    """The wheel of ``sha`` (``pick`` on top) under ``root``: reused when it verifies, else
    exported, built (``build(tree, out)``: the wheel and what its record adds) and sealed."""
    key = sha if pick is None else f"{sha}+{pick}"
    label = sha[:10] if pick is None else f"{sha[:10]}+{pick[:7]}"

    def make(tmp: Path) -> None:
        tree, out = tmp / "tree", tmp / "out"
        tree.mkdir()
        out.mkdir()
        if pick is None:
            repo.export(sha, tree)
        elif not repo.export_with_pick(sha, pick, tree):
            raise ArtifactError(f"{pick[:10]} does not apply on top of {sha[:10]}")
        wheel, fields = build(tree, out)
        version = wheel.name.split("-")[1]
        wheel = wheel.replace(tmp / wheel.name)
        remove_tree(tree)
        remove_tree(out)
        record = {"sha": sha, "pick": pick, "wheel": wheel.name, "version": version, **fields}
        atomic_write_text(tmp / BUILD_RECORD, json.dumps(record))

    found = wheels.built_once(root / key, lambda: _load(root / key, label, sha), make)[0]
    if found is None:
        raise ArtifactError(f"build of {sha[:10]} did not verify")
    return found


def commit_wheel(repo: Repo, sha: str, cache_dir: Path, pick: str | None = None) -> Artifact:
    """The wheel of ``sha`` (with ``pick``'s change applied on top when healing)."""

    def build(tree: Path, out: Path) -> tuple[Path, dict]:
        if not (tree / "gunicorn").is_dir():
            raise ArtifactError(f"{sha[:10]} has no gunicorn/ package")
        digest = wheels.package_digest(wheels.dir_package_files(tree))
        # the package copied as it is; setuptools only where the version is not plain
        wheel = wheels.tree_wheel(tree, out) or wheels.build_wheel(tree, out)
        if wheels.package_digest(wheels.wheel_package_files(wheel)) != digest:
            raise ArtifactError(f"the wheel built from {sha[:10]} does not hold its tree")
        return wheel, {"digest": digest}

    return _cached_build(repo, sha, pick, cache_dir / "builds", build)


PEP517_TIMEOUT = 600


def package_commit_wheel(
    repo: Repo, sha: str, cache_dir: Path, name: str, pick: str | None = None
) -> Artifact:
    """The wheel of dependency ``name`` at ``sha`` (``pick`` on top), built once."""

    def build(tree: Path, out: Path) -> tuple[Path, dict]:
        cmd = [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(out), str(tree)]
        env = requirements.pip_env(cache_dir)[0]
        try:  # own session, run token, bounded output; Ctrl-C raises Cancelled
            proc = processes.run_to_end(cmd, timeout=PEP517_TIMEOUT, env=env, cwd=tree, what="pip")
        except processes.Undecided as exc:
            raise ArtifactError(f"the build gave no wheel: {exc}") from None
        built = sorted(out.glob("*.whl"))
        if proc.returncode != 0 or not built:
            raise ArtifactError(requirements.decisive_line(proc.stderr + "\n" + proc.stdout))
        return built[0], {"sha256": sha256_of(built[0])}

    root = cache_dir / "builds" / canonicalize_name(name)
    return _cached_build(repo, sha, pick, root, build)
