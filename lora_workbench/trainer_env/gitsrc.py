"""Checking out the trainer's source at one commit into a new folder, from a URL or a local clone.

A local mirror may lack a few large blobs it never needed; a plain checkout would stop at them, so
those paths are left out with a sparse checkout (sd-scripts' training never reads them). A remote is
cloned with --filter=blob:none: only the blobs of the one commit are fetched.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

from ..errors import WorkbenchError


class SourceError(WorkbenchError):
    """The source cannot be cloned or has no such commit."""


def _git(args: list[str], cwd: Path, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["git", *args], cwd=cwd, input=stdin, capture_output=True, text=True, errors="replace"
    )


def checkout(source: str, ref: str, dest: Path, run: Callable, say: Callable[[str], None]) -> str:
    """Clone `source` into dest (which must not exist) checked out at `ref`; returns the full commit."""
    local = Path(source).expanduser().is_dir()
    clone = ["git", "clone", "--quiet", "--no-checkout"]
    if not local:
        clone.append("--filter=blob:none")
    dest.parent.mkdir(parents=True, exist_ok=True)
    result = run([*clone, "--", str(Path(source).expanduser()) if local else source, str(dest)], "git.log")
    if not result.ok:
        raise SourceError(
            f"git could not clone {source}: {_last(result.tail)}. Check --source (a URL or a local clone)."
        )
    found = _git(["rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}"], dest)
    commit = found.stdout.strip()
    if found.returncode != 0 or not commit:
        raise SourceError(f"{source} has no commit {ref!r}; give --ref a commit that exists there.")
    if local:
        _leave_out_missing(dest, commit, say)
    done = _git(["-c", "advice.detachedHead=false", "checkout", "--quiet", commit], dest)
    if done.returncode != 0:
        # left-out paths make git print "error: invalid object" while it builds the index; it exits 0
        errors = [ln for ln in done.stderr.splitlines() if not ln.startswith("error: invalid object ")]
        raise SourceError(f"git could not check out {commit[:12]} from {source}: {_last(errors)}.")
    return commit


def missing_paths(repo: Path, commit: str) -> list[str]:
    """The files of `commit` whose blob the clone lacks."""
    tree = _git(["ls-tree", "-r", "-z", "--full-tree", commit], repo).stdout.split("\0")
    entries = []
    for item in tree:
        meta, _, path = item.partition("\t")
        parts = meta.split()
        if len(parts) == 3 and parts[1] == "blob":
            entries.append((parts[2], path))
    if not entries:
        return []
    check = _git(
        ["cat-file", "--batch-check=%(objectname) %(objecttype)"],
        repo,
        "\n".join(o for o, _ in entries) + "\n",
    )
    answers = check.stdout.splitlines()
    return [path for (_, path), answer in zip(entries, answers, strict=False) if answer.endswith(" missing")]


def _leave_out_missing(repo: Path, commit: str, say: Callable[[str], None]) -> None:
    patterns = ["/*"]
    for path in missing_paths(repo, commit):
        say(f"the source lacks the file {path!r}; it is left out of the checkout")
        escaped = "".join("\\" + c if c in "[]*?!#\\ " else c for c in path)
        patterns.append(f"!/{escaped}")
    if len(patterns) == 1:
        return
    _git(["config", "core.sparseCheckout", "true"], repo)
    _git(["config", "core.sparseCheckoutCone", "false"], repo)
    info = repo / ".git" / "info"
    info.mkdir(parents=True, exist_ok=True)
    (info / "sparse-checkout").write_text("\n".join(patterns) + "\n", encoding="utf-8")


def _last(lines: list[str]) -> str:
    lines = [ln.strip() for ln in lines if ln.strip()]
    return lines[-1][:300] if lines else "no message"
