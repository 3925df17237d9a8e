"""HTTP routes for the settings dialog's trainer rows (sd-scripts, musubi-tuner): *Install*, *Check* and
*Update*, each managed trainer's status, one background job at a time with its progress, and Cancel.

The POST routes take `{}` (sd-scripts) or `{"trainer": "<id>"}` with one of the ids the backends declare,
and nothing else: what is installed comes from that trainer's own pins (its InstallSpec) and ComfyUI's
own interpreter, never from the request, so no URL, commit, package or path can be chosen over HTTP.
Like every non-GET route they take only same-origin JSON (the `handler` guard in _routes.py). The job
runs in a thread: the other routes keep answering meanwhile.
"""

from __future__ import annotations

import sys
from pathlib import Path

from ._routes import PREFIX, HttpError, _in_thread, _json_body, _json_response, handler


def _training_running() -> bool:
    from ..lora_workbench.training import runner

    status = runner.current_status()
    return bool(status) and status.get("state") in ("starting", "running")


def _comfyui_code() -> Path | None:
    """ComfyUI's own folder (beside folder_paths.py), whose comfy/sd1_tokenizer fills the trainer's
    offline tokenizers; not base_path, which --base-directory may move away from the code."""
    from . import _comfy

    try:
        return Path(_comfy.folder_paths().__file__).resolve().parent
    except Exception:  # outside ComfyUI (tests): no tokenizer files to copy from
        return None


_ABSENT = object()


def _trainer(value) -> str:
    """A trainer id from a request (absent: sd-scripts): one the backends declare, else a 400 naming them."""
    from ..lora_workbench.trainer_env import pins

    known = pins.ids()
    if value is _ABSENT:
        return pins.TRAINER
    if not isinstance(value, str) or value not in known:
        shown = repr(value) if len(repr(value)) <= 60 else repr(value)[:57] + "..."
        raise HttpError(400, f"trainer must be one of {', '.join(known)}, not {shown}.")
    return value


def _status(trainer: str) -> dict:
    from ..lora_workbench.trainer_env import job, pins, status
    from ..lora_workbench.trainer_env.layout import Layout

    return {
        "status": status.status(Layout.default(trainer)),
        "job": job.current(),
        "trainers": list(pins.ids()),
    }


@handler
async def trainer_get(request):
    """GET ?trainer=<id> (default sd-scripts): its pinned commit, which checkout training uses and why,
    the managed builds, and the running or last install/update/check job (of any trainer: one runs at a
    time) with its step, pip's current line and time so far."""
    trainer = _trainer(request.query.get("trainer", _ABSENT))
    return _json_response(await _in_thread(_status, trainer))


async def _start(request, action: str):
    data = await _json_body(request)
    other = sorted(str(k) for k in data if k != "trainer")
    if other:
        raise HttpError(
            400,
            f"This route takes no settings ({', '.join(other[:5])}): it {action}s the pack's pinned "
            'trainer. Send {} or {"trainer": "musubi-tuner"}.',
        )
    trainer = _trainer(data.get("trainer", _ABSENT))
    from ..lora_workbench.trainer_env import job

    try:
        state = job.start(
            action,
            comfy_python=sys.executable,
            comfyui=_comfyui_code(),
            training_running=_training_running,
            trainer=trainer,
        )
    except job.JobRefused as exc:
        raise HttpError(409, str(exc)) from None
    return _json_response({"job": state}, status=202)


@handler
async def trainer_install(request):
    """POST {} or {"trainer": id}: install the trainer's pinned commit into its own venv (torch matched to
    ComfyUI's)."""
    return await _start(request, "install")


@handler
async def trainer_update(request):
    """POST {} or {"trainer": id}: build the pinned commit beside the trainer in use; switch only when its
    checks pass."""
    return await _start(request, "update")


@handler
async def trainer_check(request):
    """POST {} or {"trainer": id}: run the managed trainer's checks again (imports, its --help, torch, GPU)."""
    return await _start(request, "check")


@handler
async def trainer_cancel(request):
    """POST {}: stop the running job; the trainer in use stays as it was."""
    await _json_body(request)
    from ..lora_workbench.trainer_env import job

    stopped = job.cancel()
    return _json_response(
        {"cancelled": stopped, "message": "cancel requested" if stopped else "nothing runs"}
    )


def add_routes(routes) -> None:
    routes.get(f"{PREFIX}/trainer")(trainer_get)
    routes.post(f"{PREFIX}/trainer/install")(trainer_install)
    routes.post(f"{PREFIX}/trainer/update")(trainer_update)
    routes.post(f"{PREFIX}/trainer/check")(trainer_check)
    routes.post(f"{PREFIX}/trainer/cancel")(trainer_cancel)
