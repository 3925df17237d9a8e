"""The managed trainer's install, update or check running in the background for ComfyUI's settings
dialog: one job at a time, its progress kept for the dialog to poll, Cancel through a flag.

Nothing a request sends chooses what is installed: `start()` takes only the action's name and a known
trainer id, and builds the request from that trainer's own pins (its InstallSpec's commit from GitHub,
or from the mirror its variable, e.g. $LORA_WORKBENCH_TRAINER_SOURCE or $LORA_WORKBENCH_MUSUBI_SOURCE,
names in the server's own environment) and ComfyUI's own interpreter, so a web page that reaches the
route can at most install a trainer the pack would install anyway. One job runs at a time, whichever
trainer it is for. An
install is refused while a training runs (it would compete for the disk and memory, and the run's
trainer must not change under it); the routes stay free because the work runs in a thread.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ..errors import WorkbenchError
from . import install as installer
from . import pins
from .layout import Layout

ACTIONS = ("install", "update", "check")
MAX_LINE = 300  # pip's current line as shown; a long URL is cut, the rest is in the build's log


class JobRefused(WorkbenchError):
    """The action cannot start now (another job or a training is running, or it is not an action)."""


@dataclass
class JobState:
    """What the dialog shows: the action, where it is, pip's current line and, at the end, the verdict."""

    action: str
    trainer: str = pins.TRAINER
    state: str = "running"  # running | done | failed | cancelled
    step: str = ""
    title: str = "starting"
    index: int = 0
    total: int = 0
    line: str = ""
    elapsed_s: float = 0.0
    message: str = ""  # the verdict: what was installed or checked, or the failure's sentence
    report: dict = field(default_factory=dict)
    started_at: float = field(default_factory=time.time)

    def to_dict(self) -> dict:
        return asdict(self)


_lock = threading.Lock()
_state: JobState | None = None
_cancel: threading.Event | None = None
_thread: threading.Thread | None = None


def current() -> dict | None:
    """The running or last job's state (None before any in this process)."""
    with _lock:
        if _state is None:
            return None
        out = _state.to_dict()
    if out["state"] == "running":
        out["elapsed_s"] = round(time.time() - out["started_at"], 1)
    return out


def running() -> bool:
    with _lock:
        return _state is not None and _state.state == "running"


def cancel() -> bool:
    """Ask the running job to stop (pip is stopped; the next install converges); False when none runs."""
    with _lock:
        if _state is None or _state.state != "running" or _cancel is None:
            return False
        _cancel.set()
        return True


def start(
    action: str,
    *,
    comfy_python: str,
    comfyui: Path | None,
    training_running: Callable[[], bool],
    trainer: str = pins.TRAINER,
    work: Callable[..., dict] | None = None,
) -> dict:
    """Start `action` for `trainer` in a thread and return its first state; JobRefused says why it
    cannot start (an unknown action or trainer, a training or another job running)."""
    global _state, _cancel, _thread
    if action not in ACTIONS:
        raise JobRefused(f"{action!r} is not an action here; one of {', '.join(ACTIONS)}.")
    if trainer not in pins.ids():
        raise JobRefused(f"{trainer!r} is not a trainer the pack installs; one of {', '.join(pins.ids())}.")
    if training_running():
        raise JobRefused(
            f"A training is running; {action} {trainer} once it has finished (or cancel it first)."
        )
    with _lock:
        if _state is not None and _state.state == "running":
            raise JobRefused(
                f"The {_state.trainer} {_state.action} is already running; wait for it or cancel it."
            )
        if action == "install" and installer.busy(Layout.default(trainer)):
            raise JobRefused(
                f"Another install of {trainer} is running (from the command line?); wait for it to finish."
            )
        _state, _cancel = JobState(action, trainer), threading.Event()
        state, flag = _state, _cancel
        run = work or _work
        _thread = threading.Thread(
            target=_run,
            args=(
                state,
                flag,
                lambda: run(action, comfy_python, comfyui, _on_progress(state), flag, trainer),
            ),
            name=f"lora-workbench trainer {action} {trainer}",
            daemon=True,
        )
        _thread.start()
    return state.to_dict()


def wait(timeout: float | None = None) -> None:
    """Wait for the job's thread (tests, and a server that stops)."""
    thread = _thread
    if thread is not None:
        thread.join(timeout)


def _on_progress(state: JobState) -> Callable[[installer.Progress], None]:
    def on(p: installer.Progress) -> None:
        with _lock:
            state.step, state.title, state.index, state.total = p.step, p.title, p.index, p.total
            state.line = p.line[:MAX_LINE]
            state.elapsed_s = round(p.elapsed, 1)

    return on


def _run(state: JobState, flag: threading.Event, work: Callable[[], dict]) -> None:
    try:
        report = work()
        outcome, message = "done", _verdict(state.action, report, state.trainer)
    except installer.InstallCancelled:
        report, outcome = {}, "cancelled"
        message = f"{state.action} cancelled; the trainer in use is as it was. Install again to finish it."
    except WorkbenchError as exc:
        report, outcome, message = {}, "failed", str(exc)
    except Exception as exc:  # the dialog gets one line; a thread's traceback would reach nobody
        report, outcome, message = {}, "failed", f"{state.action} failed: {type(exc).__name__}: {exc}"
    with _lock:
        state.state, state.message, state.report = outcome, message, report
        state.elapsed_s = round(time.time() - state.started_at, 1)
        state.line = "" if outcome == "done" else state.line


def _work(
    action: str, comfy_python: str, comfyui: Path | None, progress, flag, trainer: str = pins.TRAINER
) -> dict:
    from .plan import InstallRequest
    from .torch_pick import pick

    layout = Layout.default(trainer)
    if action == "check":
        return {"checked": installer.check(layout)}
    if action == "update":  # to the pack's pinned commit, nothing else
        report = installer.update(None, None, comfyui=comfyui, layout=layout, progress=progress, cancel=flag)
        return report.to_dict()
    request = InstallRequest.pinned(
        pick("auto", comfy_python), comfy_python, comfyui=comfyui, trainer=trainer
    )
    return installer.install(request, layout=layout, progress=progress, cancel=flag).to_dict()


def _verdict(action: str, report: dict, trainer: str = pins.TRAINER) -> str:
    checked = report.get("checked") or {}
    torch = f"torch {checked.get('torch', '?')}"
    device = (
        f"GPU {checked['gpu']}"
        if checked.get("gpu")
        else ("Apple MPS" if checked.get("mps") else "no GPU: training runs on the CPU (slow)")
    )
    if action == "check":
        return f"{trainer} works: Python {checked.get('python', '?')}, {torch}, {device}."
    spec = pins.spec(trainer)
    what = "installed" if report.get("changed", True) else "already up to date"
    return (
        f"{trainer} {spec.ref[:12]} {what} in {report.get('src', '?')} "
        f"({torch}, {device}); training uses it unless {spec.path_env} or {spec.path_setting} is set."
    )
