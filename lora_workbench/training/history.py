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
from ..errors import ValidationError, WorkbenchError
from . import records

INDEX_NAME = "known-projects.json"
MAX_PROJECTS = 50
RUN_FILE = records.RUN_FILE
LOG_FILE = "train.log"
IMAGE_EXTS = (".png", ".jpg", ".jpeg", ".webp")
STALE_AFTER_S = 120.0  # a "running" run whose log has been silent this long is not running any more
TAIL_BYTES = 64 * 1024
SHORT = 300  # characters of a record's text in the run list
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
# Every run folder is opened once (from a workflow or route: no-follow, and what was opened checked to
# lie in the roots); run.json, the log and the listing are then read relative to that open folder, so a
# folder swapped for a link after the check serves nothing from where the link leads.
Run = paths.ConfinedDir


def open_run(run_dir: str | os.PathLike, confined: bool = False) -> Run:
    """The run folder, open (confined: resolved inside the allowed roots, opened without following a
    link, what was opened checked); PathNotAllowed or FileNotFoundError otherwise."""
    return paths.open_dir(run_dir, what="run folder", confined=confined)


def _in_run(run: Run | str | os.PathLike, read: Callable[[Run], object]):
    """`read(run)` on an open run folder; a path (the CLI, tests) is opened unconfined first."""
    if isinstance(run, paths.ConfinedDir):
        return read(run)
    with open_run(run) as opened:
        return read(opened)


def load_record(run: Run | str | os.PathLike) -> dict:
    """The run's run.json, typed (`records.typed`); a sentence (ValidationError, PathNotAllowed) or
    FileNotFoundError when it is missing, a link, not a regular file, too big, not JSON or no object."""
    raw = records.read(run)
    if not isinstance(raw, dict):
        where = run.path if isinstance(run, paths.ConfinedDir) else Path(run)
        raise ValidationError(f"The run record {where / RUN_FILE} is not a JSON object.")
    return records.typed(raw)


def read_record(run: Run | str | os.PathLike) -> dict | None:
    """`load_record`, or None when it cannot be read (the run list leaves such a run out)."""
    try:
        return load_record(run)
    except (OSError, WorkbenchError):
        return None


def run_times(project: str | os.PathLike, confined: bool = False) -> dict[Path, float]:
    """{run folder (real path): run.json's mtime} for the runs in the project's output*/ folders. An
    output folder may be a link (confined: only into the roots); a run folder or run.json may not."""
    try:
        with paths.open_dir(project, what="project folder", confined=confined) as proj, proj.scandir() as it:
            names = [e.name for e in it if e.name.startswith("output")]
            base = proj.path
    except (OSError, WorkbenchError):
        return {}
    times: dict[Path, float] = {}
    for name in names:
        try:
            with paths.open_dir(base / name, what="output folder", confined=confined) as out:
                times.update(_runs_in(out))
        except (OSError, WorkbenchError):
            continue
    return times


def _runs_in(output: paths.ConfinedDir) -> dict[Path, float]:
    with output.scandir() as it:
        names = [e.name for e in it if e.is_dir(follow_symlinks=False)]
    times: dict[Path, float] = {}
    for name in names:
        try:
            with output.subdir(name) as run:
                st = run.lstat(RUN_FILE)
        except (OSError, WorkbenchError):
            continue
        if st is not None and stat.S_ISREG(st.st_mode):
            times[run.path] = st.st_mtime
    return times


def list_runs(
    projects: list[Path], limit: int = 30, now: float | None = None, confined: bool = False
) -> list[dict]:
    """Summaries of the newest runs across the projects, newest first; a run whose folder or record
    cannot be read is left out (one bad record never hides the others). `confined` (the routes): every
    folder is opened inside the allowed roots."""
    found: dict[Path, float] = {}
    for project in projects:
        found.update(run_times(project, confined))
    newest = sorted(found.items(), key=lambda x: (x[1], x[0].name), reverse=True)
    out = []
    for run_dir, _mtime in newest[:limit]:
        try:
            with open_run(run_dir, confined) as run:
                rec = read_record(run)
                if rec is not None:
                    out.append(summary(run, rec, now=now))
        except (OSError, WorkbenchError):
            continue
    return out


def summary(run: Run, rec: dict, now: float | None = None) -> dict:
    """What the run list shows: name, project, state, steps, last loss, times (`rec` is typed)."""
    status, spec = rec.get("status", {}), rec.get("spec", {})
    losses = rec.get("losses") or status.get("losses") or []
    log = run.lstat(LOG_FILE)
    return {
        "run_id": run.path.name,
        "dir": str(run.path),
        "project": str(project_of(run.path) or run.path.parent),
        "state": _short(effective_state(rec.get("state", ""), log.st_mtime if log else None, now=now)),
        "started_at": _short(rec.get("started_at", "")),
        "finished_at": _short(rec.get("finished_at", "")),
        "step": status.get("step") or (losses[-1][0] if losses else 0),
        "total": status.get("total") or 0,
        "epoch": status.get("epoch") or 0,
        "epochs": status.get("epochs") or spec.get("epochs") or 0,
        "elapsed_s": status.get("elapsed_s")
        or _seconds_between(rec.get("started_at"), rec.get("finished_at")),
        "it_per_s": status.get("it_per_s"),
        "text": _short(status.get("text", "")),
        "loss": losses[-1][1] if losses else None,
        "base_model": _short(Path(rec.get("base_model", "")).name),
        "device": _short(rec.get("device", "")),
        "error": _first_line(rec.get("error", "")),
    }


def effective_state(recorded: str, log_mtime: float | None, now: float | None = None) -> str:
    """The state as the list should show it: a "running" record whose log (modified at `log_mtime`;
    None: no log) went silent is "stopped" (ComfyUI was closed mid-run, or the process was killed)."""
    if recorded != "running":
        return recorded or "unknown"
    if log_mtime is None:
        return "stopped"
    silent = (now if now is not None else time.time()) - log_mtime
    return "running" if silent < STALE_AFTER_S else "stopped"


def detail(
    run: Run | str | os.PathLike, log_lines: int = 40, max_losses: int = 500, now: float | None = None
) -> dict:
    """One run in full: the summary plus the loss curve points, the log's last lines and the files; a
    sentence (or FileNotFoundError) when its run.json cannot be read."""
    return _in_run(run, lambda d: _detail(d, log_lines, max_losses, now))


def _detail(run: Run, log_lines: int, max_losses: int, now: float | None) -> dict:
    rec = load_record(run)
    losses = rec.get("losses") or rec.get("status", {}).get("losses") or []
    outputs = files(run)
    return {
        **summary(run, rec, now=now),
        "losses": thin(losses, max_losses),
        "log_tail": _tail_of(run, LOG_FILE, log_lines),
        "log_path": str(run.path / LOG_FILE),
        "files": outputs,
        "samples": [f["path"] for f in outputs if f["kind"] == "sample"],
        "warnings": rec.get("warnings", []) + rec["notes"],
        "error_text": rec.get("error", ""),
    }


def thin(points: list, limit: int) -> list:
    """At most `limit` points, evenly spaced, the last one kept."""
    if limit <= 1 or len(points) <= limit:
        return list(points)
    stride = len(points) / limit
    return [points[int(i * stride)] for i in range(limit - 1)] + [points[-1]]


KINDS = {".safetensors": "lora", ".toml": "config", ".txt": "text", ".log": "log", ".png": "image"}


def files(run: Run | str | os.PathLike) -> list[dict]:
    """The run's outputs: LoRA files, the loss curve, sample images, and the log/config/command; links
    (and a linked sample/ folder) are left out."""
    return _in_run(run, _files)


def _files(run: Run) -> list[dict]:
    out = _outputs(run, sample=False)
    try:
        with run.subdir("sample") as samples:
            out += _outputs(samples, sample=True)
    except (OSError, WorkbenchError):  # none, or a link
        pass
    return out


def _outputs(folder: paths.ConfinedDir, sample: bool) -> list[dict]:
    with folder.scandir() as it:
        entries = sorted((e for e in it if e.is_file(follow_symlinks=False)), key=lambda e: e.name)
    out = []
    for e in entries:
        suffix = os.path.splitext(e.name)[1].lower()
        kind = "sample" if sample and suffix in IMAGE_EXTS else KINDS.get(suffix)
        kind = "loss" if e.name == "loss.png" else kind
        if kind is None or e.name.startswith("."):
            continue
        try:
            size = e.stat(follow_symlinks=False).st_size
        except OSError:
            continue
        out.append({"name": e.name, "path": str(folder.path / e.name), "kind": kind, "size": size})
    return out


def log_tail(log_path: str | os.PathLike, lines: int = 40) -> list[str]:
    """The log's last lines as a terminal would show them: a tqdm bar's `\\r` redraws keep only the
    last one, and blank lines are dropped. A link or anything but a regular file reads as no lines."""
    log = Path(log_path)
    try:
        return _in_run(log.parent, lambda d: _tail_of(d, log.name, lines))
    except (OSError, WorkbenchError):
        return []


def _tail_of(run: Run, name: str, lines: int) -> list[str]:
    try:
        raw = run.read_tail(name, TAIL_BYTES)
    except (OSError, WorkbenchError):
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
    return (str(text).strip().splitlines() or [""])[0][:SHORT] if text else ""


def _short(text: str) -> str:
    """A record's text as the list shows it: at most SHORT characters (the list is polled)."""
    return text if len(text) <= SHORT else text[: SHORT - 1] + "…"
