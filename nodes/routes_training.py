"""HTTP routes for the Training tab: the recent runs read from their run folders, one run in full.

Runs are found through the project index (history.known_projects); every folder is opened inside the
allowed roots (no-follow, what was opened checked) and read only through that open folder, so a folder
swapped for a link after the check serves nothing. The run that is training right now in this process
is merged in from the runner's live status, so its step and loss curve are current before run.json is.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from ._routes import PREFIX, HttpError, _in_thread, _json_response, handler

# What the live status adds over the run folder while a run is going.
LIVE_FIELDS = (
    "state",
    "step",
    "total",
    "epoch",
    "epochs",
    "loss",
    "losses",
    "samples",
    "text",
    "message",
    "elapsed_s",
    "eta_s",
    "it_per_s",
    "rate",
    "node_id",
    "phase",  # the job's step (Caching latents, Training, ...) and its own count
    "progress",
    "phase_step",
    "phase_total",
)


def _live() -> dict | None:
    from ..lora_workbench.training import runner

    return runner.current_status()


def _live_dir(live: dict | None) -> str | None:
    if not live or not live.get("log_path"):
        return None
    return os.path.realpath(Path(live["log_path"]).parent)


def _merge(run: dict, live: dict | None) -> dict:
    """The run with the live status over it while it trains; once its folder says it ended, the
    folder wins (the last live message may never have come, e.g. when ComfyUI's interrupt cut it)."""
    if live is not None and _live_dir(live) == run.get("dir") and run.get("state") in ("running", "stopped"):
        run = {**run, **{k: live[k] for k in LIVE_FIELDS if k in live}, "live": True}
    return run


def _projects(live: dict | None) -> list[Path]:
    from ..lora_workbench.training import history

    projects = history.known_projects()
    current = history.project_of(_live_dir(live) or "")
    if current is not None and current not in projects:
        projects.insert(0, current)
    return [Path(os.path.realpath(p)) for p in projects]


def _list(limit: int) -> dict:
    from ..lora_workbench.training import history

    live = _live()
    runs = history.list_runs(_projects(live), limit=limit, confined=True)
    runs = [_merge(r, live) for r in runs]
    return {"runs": runs, "current": live}


@handler
async def train_runs(request):
    """GET ?limit=N (1-200, default 30): the newest runs of the known projects, newest first, each
    with state, steps and last loss; `current` is the live status of this process's latest run."""
    text = request.query.get("limit", "30")
    if not (text.isascii() and text.isdigit()) or not 1 <= int(text) <= 200:  # "²".isdigit() too
        raise HttpError(400, f"limit must be a whole number from 1 to 200, not {text!r}.")
    return _json_response(await _in_thread(_list, int(text)))


def _detail(value: str) -> dict:
    from ..lora_workbench.training import history

    # One open, checked folder; run.json, the log and the listing are read relative to it.
    try:
        with history.open_run(value, confined=True) as run:
            st = run.lstat(history.RUN_FILE)
            if st is None or not stat.S_ISREG(st.st_mode):
                raise HttpError(
                    404,
                    f"{run.path} is not a training run folder: its {history.RUN_FILE} is missing, a link or not "
                    "a plain file.",
                )
            found = history.detail(run)
    except FileNotFoundError:
        raise HttpError(404, f"The run folder {value!r} does not exist.") from None
    return _merge(found, _live())


@handler
async def train_run(request):
    """GET ?dir=<run folder>: one run in full: state, loss points, the log's last lines, the files."""
    value = request.query.get("dir", "")
    if not value:
        raise HttpError(400, "dir is required: the run folder, <project>/output/<name>-NNN.")
    return _json_response(await _in_thread(_detail, value))


def add_routes(routes) -> None:
    routes.get(f"{PREFIX}/train/runs")(train_runs)
    routes.get(f"{PREFIX}/train/run")(train_run)
