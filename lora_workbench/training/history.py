"""Recent training runs, read back from their run folders (never from memory), for the Training tab.

A run folder is `<project>/output/<name>-NNN/` with run.json, train.log, loss.png, the LoRA files
and sample/. Which projects to look in is a small index beside the settings file
(`known-projects.json`), to which every training adds its project (train.train, so runs from the
node, the queue API and the CLI alike). The callers
confine what they read to the allowed roots; nothing here follows a path it did not list itself.
"""

from __future__ import annotations

import json
import os
import re
import stat
import tempfile
import threading
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from .. import paths

INDEX_NAME = "known-projects.json"
MAX_PROJECTS = 50
RUN_FILE = "run.json"
LOG_FILE = "train.log"
IMAGE_EXTS = (".png", ".jpg", ".jpeg", ".webp")
STALE_AFTER_S = 120.0  # a "running" run whose log has been silent this long is not running any more
TAIL_BYTES = 64 * 1024
_index_lock = threading.Lock()


# --------------------------------------------------------------------------- the project index
def index_path() -> Path:
    return paths.settings_path().parent / INDEX_NAME


def known_projects() -> list[Path]:
    """The projects runs were seen in, newest first (a missing or broken index is an empty one)."""
    try:
        data = json.loads(index_path().read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    items = data.get("projects", []) if isinstance(data, dict) else []
    return [Path(p) for p in items if isinstance(p, str) and p]


def project_of(run_dir: str | os.PathLike) -> Path | None:
    """`<project>` for `<project>/output*/<run>`; None for a folder of another shape."""
    run = Path(run_dir)
    if run.parent.name.startswith("output"):
        return run.parent.parent
    return None


def remember_run(run_dir: str | os.PathLike) -> bool:
    """Put the run's project first in the index (atomic write); True when the index changed. The
    index is a convenience: a folder it cannot be written to never stops a training."""
    project = project_of(run_dir)
    if project is None:
        return False
    with _index_lock:
        current = known_projects()
        if current[:1] == [project]:
            return False
        updated = [project] + [p for p in current if p != project]
        try:
            _write_index(updated[:MAX_PROJECTS])
        except OSError:
            return False
    return True


def _write_index(projects: list[Path]) -> None:
    target = index_path()
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".projects-", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump({"projects": [str(p) for p in projects]}, f, indent=1)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


# --------------------------------------------------------------------------- reading runs
def read_plain(path: Path, tail_bytes: int | None = None) -> bytes:
    """A regular file's bytes (its last `tail_bytes`), refusing a symlink in the last component and
    anything that is not a regular file: the run folder itself was resolved and confined by the
    caller, but a link inside it could lead anywhere and a FIFO named train.log would block a reader."""
    flags = (
        os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)
    )
    fd = os.open(path, flags)
    with os.fdopen(fd, "rb") as f:
        if not stat.S_ISREG(os.fstat(fd).st_mode) or os.path.islink(path):  # no O_NOFOLLOW on Windows
            raise OSError(f"{path} is not a regular file")
        if tail_bytes is not None:
            f.seek(max(0, os.fstat(fd).st_size - tail_bytes))
        return f.read()


def read_record(run_dir: Path) -> dict | None:
    try:
        data = json.loads(read_plain(run_dir / RUN_FILE).decode("utf-8"))
    except (OSError, ValueError, RecursionError):  # a shared project's run.json nested too deep
        return None
    return data if isinstance(data, dict) else None


def run_dirs(project: Path, allow: Callable[[Path], bool] = lambda _p: True) -> list[Path]:
    """The run folders (with a run.json) under the project's output*/ folders, resolved, that `allow`
    accepts (the routes pass their roots check: an output/ link may lead anywhere)."""
    out: list[Path] = []
    try:
        outputs = [d for d in project.iterdir() if d.name.startswith("output") and d.is_dir()]
    except OSError:
        return out
    for folder in outputs:
        try:
            found = [Path(os.path.realpath(d)) for d in folder.iterdir() if (d / RUN_FILE).is_file()]
        except OSError:
            continue
        out += [d for d in found if allow(d)]
    return out


def list_runs(
    projects: list[Path],
    limit: int = 30,
    now: float | None = None,
    allow: Callable[[Path], bool] = lambda _p: True,
) -> list[dict]:
    """Summaries of the newest runs across the projects, newest first."""
    found = {d for p in projects for d in run_dirs(p, allow)}
    dated = []
    for d in found:
        try:
            dated.append(((d / RUN_FILE).stat().st_mtime, d))
        except OSError:
            continue
    dated.sort(key=lambda x: (x[0], x[1].name), reverse=True)
    out = []
    for _mtime, d in dated[:limit]:
        rec = read_record(d)
        if rec is not None:
            out.append(summary(d, rec, now=now))
    return out


def summary(run_dir: Path, rec: dict, now: float | None = None) -> dict:
    """What the run list shows: name, project, state, steps, last loss, times."""
    status = rec.get("status") if isinstance(rec.get("status"), dict) else {}
    losses = rec.get("losses") or status.get("losses") or []
    last_loss = losses[-1][1] if losses and isinstance(losses[-1], list) and len(losses[-1]) > 1 else None
    spec = rec.get("spec") if isinstance(rec.get("spec"), dict) else {}
    return {
        "run_id": run_dir.name,
        "dir": str(run_dir),
        "project": str(project_of(run_dir) or run_dir.parent),
        "state": effective_state(rec.get("state", ""), run_dir / LOG_FILE, now=now),
        "started_at": rec.get("started_at", ""),
        "finished_at": rec.get("finished_at", ""),
        "step": status.get("step") or (losses[-1][0] if losses else 0),
        "total": status.get("total") or 0,
        "epoch": status.get("epoch") or 0,
        "epochs": status.get("epochs") or spec.get("epochs") or 0,
        "elapsed_s": status.get("elapsed_s")
        or _seconds_between(rec.get("started_at"), rec.get("finished_at")),
        "it_per_s": status.get("it_per_s"),
        "text": status.get("text", ""),
        "loss": last_loss,
        "base_model": Path(str(rec.get("base_model", ""))).name,
        "device": rec.get("device", ""),
        "error": _first_line(rec.get("error", "")),
    }


def effective_state(recorded: str, log_path: Path, now: float | None = None) -> str:
    """The state as the list should show it: a "running" record whose log went silent is "stopped"
    (ComfyUI was closed mid-run, or the process was killed)."""
    if recorded != "running":
        return recorded or "unknown"
    try:
        silent = (now if now is not None else time.time()) - log_path.stat().st_mtime
    except OSError:
        return "stopped"
    return "running" if silent < STALE_AFTER_S else "stopped"


def detail(run_dir: Path, log_lines: int = 40, max_losses: int = 500, now: float | None = None) -> dict:
    """One run in full: the summary plus the loss curve points, the log's last lines and the files."""
    rec = read_record(run_dir)
    if rec is None:
        raise FileNotFoundError(f"{run_dir} has no readable {RUN_FILE}")
    status = rec.get("status") if isinstance(rec.get("status"), dict) else {}
    losses = rec.get("losses") or status.get("losses") or []
    outputs = files(run_dir)
    return {
        **summary(run_dir, rec, now=now),
        "losses": thin(losses, max_losses),
        "log_tail": log_tail(run_dir / LOG_FILE, log_lines),
        "log_path": str(run_dir / LOG_FILE),
        "files": outputs,
        "samples": [f["path"] for f in outputs if f["kind"] == "sample"],
        "warnings": [w for w in rec.get("warnings", []) if isinstance(w, str)],
        "error_text": rec.get("error", "") if isinstance(rec.get("error"), str) else "",
    }


def thin(points: list, limit: int) -> list:
    """At most `limit` points, evenly spaced, the last one kept."""
    if limit <= 1 or len(points) <= limit:
        return list(points)
    stride = len(points) / limit
    return [points[int(i * stride)] for i in range(limit - 1)] + [points[-1]]


def files(run_dir: Path) -> list[dict]:
    """The run's outputs: LoRA files, the loss curve, sample images, and the log/config/command."""
    kinds = {".safetensors": "lora", ".toml": "config", ".txt": "text", ".log": "log", ".png": "image"}
    out = []
    entries = sorted(run_dir.iterdir()) if run_dir.is_dir() else []
    sample_dir = run_dir / "sample"
    linked = sample_dir.is_symlink()
    samples = sorted(sample_dir.iterdir()) if sample_dir.is_dir() and not linked else []
    for p in entries + samples:
        if p.is_symlink() or not p.is_file() or p.name.startswith("."):
            continue
        kind = (
            "sample"
            if p.parent == sample_dir and p.suffix.lower() in IMAGE_EXTS
            else kinds.get(p.suffix.lower())
        )
        if p.name == "loss.png":
            kind = "loss"
        if kind is None:
            continue
        out.append({"name": p.name, "path": str(p), "kind": kind, "size": p.stat().st_size})
    return out


def log_tail(log_path: Path, lines: int = 40) -> list[str]:
    """The log's last lines as a terminal would show them: a tqdm bar's `\\r` redraws keep only the
    last one, and blank lines are dropped."""
    try:
        raw = read_plain(log_path, tail_bytes=TAIL_BYTES)
    except OSError:
        return []
    text = raw.decode("utf-8", errors="replace")
    shown = [_last_redraw(ln) for ln in text.split("\n")]
    if len(raw) >= TAIL_BYTES:
        shown = shown[1:]  # the first line is probably cut
    return [ln for ln in shown if ln.strip()][-lines:]


_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")  # tqdm's cursor moves between nested bars


def _last_redraw(line: str) -> str:
    parts = [p.rstrip() for p in _ANSI.sub("", line).split("\r")]
    return next((p for p in reversed(parts) if p.strip()), "")


def _seconds_between(start: object, end: object) -> float | None:
    """Seconds between two run.json timestamps ("2025-10-11T12:00:00+0000"), None when one is missing."""
    try:
        a, b = (datetime.strptime(str(t), "%Y-%m-%dT%H:%M:%S%z") for t in (start, end))
    except (TypeError, ValueError):
        return None
    return max(0.0, (b - a).total_seconds())


def _first_line(text: object) -> str:
    return (str(text).strip().splitlines() or [""])[0][:300] if text else ""
