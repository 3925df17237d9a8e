"""HTTP routes under /lora_workbench/ for the web panels: dataset preview, library and training status.

Handlers are plain aiohttp functions added by `add_routes(routes)`: `register()` puts them on
PromptServer.instance.routes (ComfyUI mirrors them under /api), the unit tests on a bare app. Every
path argument goes through `paths.confine` (files are opened first, then checked: `paths.open_file`);
every request must name this machine as its Host while ComfyUI listens on it only (`_check_host`: a
DNS-rebinding page is 403); a request that is not a GET must come from this server's own page (or from
no browser) and carry `application/json` (`_check_caller`: 403 / 415); refusals are 403 with the reason, bad input 400 (over-long paths, numbers like 1e400, JSON nested too
deep), a body over 1 MiB 413, and an unexpected failure a one-line 500 (the traceback goes to the
server log only). The core's working modules (dataset scan, library watch, training runner) are
imported inside the handlers, not here: ComfyUI imports every pack at start-up, and no route is
called before a panel asks.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import math
import os
from collections.abc import Awaitable, Callable
from pathlib import Path

from ..lora_workbench import events, numbers, paths
from ..lora_workbench.errors import PathNotAllowed, ValidationError, WorkbenchError
from . import _comfy

log = logging.getLogger("lora_workbench")

PREFIX = "/lora_workbench"
SAMPLE_EXTS = (".png", ".jpg", ".jpeg", ".webp")

_registered_on: list[object] = []  # the route tables register() already filled (idempotence)


class HttpError(Exception):
    """An answer other than 200: its message goes to the client as {"error": message}."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


def _web():
    from aiohttp import web

    return web


def _finite(value):
    """NaN/inf become null: browsers' JSON.parse refuses them."""
    if isinstance(value, float) and (value != value or value in (float("inf"), float("-inf"))):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


def _json_response(data, status: int = 200):
    web = _web()
    return web.Response(
        text=json.dumps(_finite(data), default=str, allow_nan=False),
        status=status,
        content_type="application/json",
    )


def _error(status: int, message: str):
    return _json_response({"error": message}, status=status)


SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


DEFAULT_PORTS = {"http": 80, "https": 443}


def _same_origin(origin: str, host: str) -> bool:
    """Does the Origin header name the server the request reached (its Host)? Host names compared as
    ComfyUI's origin_only_middleware does; ports as browsers write them: an Origin without a port is on
    its scheme's default port (http://127.0.0.1 is a page on port 80, not ComfyUI on 8188), and a Host
    without a port was reached on a default port (a reverse proxy on 80 or 443)."""
    from urllib.parse import urlsplit

    try:
        o, h = urlsplit(origin.strip().lower()), urlsplit("//" + host.strip().lower())
        o_port, h_port = o.port, h.port
    except ValueError:  # a port that is not a number
        return False
    if o.scheme not in DEFAULT_PORTS or not o.hostname or not h.hostname:
        return False
    if o.hostname != h.hostname:
        return False
    o_port = o_port or DEFAULT_PORTS[o.scheme]
    return o_port in DEFAULT_PORTS.values() if h_port is None else o_port == h_port


HOSTS_ENV = (
    "LORA_WORKBENCH_HOSTS"  # names a reverse proxy or tunnel serves ComfyUI under (comma-separated; *: any)
)


def _is_loopback_name(name: str) -> bool:
    import ipaddress

    name = name.rstrip(".")
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def _check_host(request) -> None:
    """While ComfyUI listens on this machine only, a request must name it as this machine (localhost,
    127.0.0.1, [::1]) or as a name the user gave in LORA_WORKBENCH_HOSTS: a DNS-rebinding page reaches
    127.0.0.1 under its own name, so its Origin matches its Host and it could read and change
    everything here. With --listen on a network the user let that network in, under any name."""
    from urllib.parse import urlsplit

    if not all(_is_loopback_name(a.strip("[]")) for a in _comfy.listen_addresses()):
        return
    host = request.headers.get("Host", "")
    try:
        name = urlsplit("//" + host.strip().lower()).hostname or ""
    except ValueError:
        name = ""
    allowed = {h.strip().lower().rstrip(".") for h in os.environ.get(HOSTS_ENV, "").split(",") if h.strip()}
    if _is_loopback_name(name) or name.rstrip(".") in allowed or "*" in allowed:  # "*": any name
        return
    raise HttpError(
        403,
        f"This server was reached as {_shown(host)}, not as this machine (localhost, 127.0.0.1), while ComfyUI "
        f"listens on this machine only; open ComfyUI at http://127.0.0.1, or add that name to {HOSTS_ENV} "
        "when a reverse proxy serves it under it.",
    )


def _check_caller(request) -> None:
    """A state-changing request must come from this server's own page (or no browser at all) and carry
    JSON: a page elsewhere, a sandboxed iframe or data: page (Origin null) and a plain form post
    cannot reach it. No Origin header at all is a client that is not a browser (curl, the CLI)."""
    origin = request.headers.get("Origin")
    if origin is not None:
        if not _same_origin(origin, request.headers.get("Host", "")):
            raise HttpError(
                403,
                f"Requests from the page {_shown(origin)} may not change anything here; use ComfyUI's "
                "own page (a reverse proxy must pass the Host header through).",
            )
    if request.content_type != "application/json":
        raise HttpError(
            415,
            f"{request.method} {request.path} takes only Content-Type application/json, "
            f"not {_shown(request.content_type)}.",
        )


def handler(fn: Callable[..., Awaitable]):
    """Turn HttpError and user-facing core errors into JSON answers, anything else into a 500 line.
    Every request first passes `_check_host` (this machine's name), and every one other than
    GET/HEAD/OPTIONS `_check_caller` (same origin, JSON)."""

    @functools.wraps(fn)
    async def wrapped(request):
        try:
            _check_host(request)
            if request.method not in SAFE_METHODS:
                _check_caller(request)
            return await fn(request)
        except HttpError as exc:
            return _error(exc.status, exc.message)
        except PathNotAllowed as exc:
            return _error(403, str(exc))
        except (ValidationError, WorkbenchError) as exc:
            return _error(400, str(exc))
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the client gets one line, the log the traceback
            log.exception("lora-workbench: %s %s failed", request.method, request.path)
            first = (str(exc).splitlines() or [""])[0][:300]
            return _error(500, f"{type(exc).__name__}: {first}" if first else type(exc).__name__)

    return wrapped


async def _in_thread(fn, *args, **kwargs):
    """File-system work off the event loop, so a slow disk never stalls ComfyUI's websocket."""
    return await asyncio.get_running_loop().run_in_executor(None, functools.partial(fn, *args, **kwargs))


# --------------------------------------------------------------------------- request parsing
MAX_BODY_BYTES = 1 << 20  # a panel request is a few hundred bytes
MAX_SAMPLE_BYTES = 64 << 20  # a sample image is a PNG of a few MB


async def _body_text(request) -> str:
    """The body as text, refused (413) past MAX_BODY_BYTES before it is all read."""
    if request.content_length is not None and request.content_length > MAX_BODY_BYTES:
        raise HttpError(413, f"The request body is {request.content_length} bytes; at most {MAX_BODY_BYTES}.")
    chunks, total = [], 0
    while chunk := await request.content.read(1 << 16):
        total += len(chunk)
        if total > MAX_BODY_BYTES:
            raise HttpError(413, f"The request body is larger than {MAX_BODY_BYTES} bytes.")
        chunks.append(chunk)
    try:
        return b"".join(chunks).decode("utf-8")
    except UnicodeDecodeError:
        raise HttpError(400, "The request body is not UTF-8 text; send JSON.") from None


def _parse_int(digits: str) -> int | float:
    """JSON integers; one too long for any field is infinite, so its field refuses it by name."""
    if len(digits) <= 40:
        return int(digits)
    return -math.inf if digits.startswith("-") else math.inf


async def _json_body(request) -> dict:
    text = await _body_text(request)
    if not text.strip():
        raise HttpError(400, "The request body is empty; send a JSON object.")
    try:
        data = json.loads(text, parse_int=_parse_int, parse_float=numbers.float_or_literal)
    except json.JSONDecodeError as exc:
        raise HttpError(
            400, f"The request body is not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno})."
        ) from None
    except RecursionError:
        raise HttpError(400, "The request body is nested too deeply; send a flat JSON object.") from None
    except ValueError as exc:  # e.g. an integer of more than 4300 digits
        raise HttpError(400, f"The request body holds a value JSON cannot carry here ({exc}).") from None
    if not isinstance(data, dict):
        raise HttpError(400, f"The request body must be a JSON object, not {type(data).__name__}.")
    return data


def _shown(value) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _int(data: dict, key: str, default: int | None, lo: int, hi: int) -> int | None:
    value = data.get(key, default)
    if value is None:
        if default is None:
            return None
        raise HttpError(400, f"{key} is required (a whole number from {lo} to {hi}).")
    wrong = HttpError(400, f"{key} must be a whole number from {lo} to {hi}, not {_shown(value)}.")
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise wrong
    if isinstance(value, int):
        number = value
    else:
        try:
            number = numbers.parse_float(value) if isinstance(value, str) else value
        except ValueError:
            raise wrong from None
        if not math.isfinite(number) or number != int(number):  # 1e400 is inf: refused, not a 500
            raise wrong
        number = int(number)
    if not lo <= number <= hi:
        raise wrong
    return number


def _bool(data: dict, key: str, default: bool) -> bool:
    value = data.get(key, default)
    if isinstance(value, bool):
        return value
    if value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise HttpError(400, f"{key} must be true or false, not {value!r}.")


def _str(data: dict, key: str, default: str | None = None) -> str:
    value = data.get(key, default)
    if value is None:
        raise HttpError(400, f"{key} is required (a string).")
    if not isinstance(value, str):
        raise HttpError(400, f"{key} must be a string, not {type(value).__name__}.")
    return value


# --------------------------------------------------------------------------- handlers
@handler
async def dataset_preview(request):
    """POST {project, weights, width, height, enable_bucket, batch_size, epochs, max_items_per_epoch,
    repeats, target_steps, wrong_size, caption_extension, folder_repeats,
    missing_caption}: the subsets with image counts and the
    repeats/shares they get, computed by the core, which reads only inside the allowed roots."""
    data = await _json_body(request)
    project = paths.confine(_str(data, "project"), what="project folder")
    repeats = data.get("repeats")
    from ..lora_workbench.dataset import prepare
    from ..lora_workbench.dataset.confined import Guard
    from ..lora_workbench.dataset.limits import LIMITS

    def number(key: str, default: int) -> int:  # the node's own ranges: nothing wider over HTTP
        if data.get(key) is None:  # the weights editor sends null for "not set"
            return default
        return _int(data, key, default, *LIMITS[key])

    options = prepare.DatasetOptions(
        weights_text=_str(data, "weights", ""),
        resolution=(number("width", 512), number("height", 512)),
        enable_bucket=_bool(data, "enable_bucket", True),
        batch_size=number("batch_size", 1),
        epochs=number("epochs", 1),
        max_items_per_epoch=number("max_items_per_epoch", 0) or None,
        repeats=None if repeats in (None, "") else _str(data, "repeats"),
        target_steps=number("target_steps", 0),
        wrong_size=_str(data, "wrong_size", "bucket"),
        caption_extension=_str(data, "caption_extension", ".txt"),
        folder_repeats=number("folder_repeats", 1),
        missing_caption=_str(data, "missing_caption", "error"),
    )
    if not project.is_dir():
        raise HttpError(404, f"The project folder {project} does not exist; create it or pick another one.")
    result = await _in_thread(prepare.preview, str(project), options, guard=Guard(paths.allowed_roots()))
    return _json_response(result)


@handler
async def library_status(request):
    """GET: allowed roots, the configured library, watchers, the last link report, links per target."""
    from ..lora_workbench.library import watch

    roots = [str(r) for r in paths.allowed_roots()]
    try:
        library = paths.library_path()
    except Exception:
        library = None
    watchers = watch.watcher_status()
    last = events.latest(events.LIBRARY)
    targets = await _in_thread(_target_counts, watchers, last)
    return _json_response(
        {
            "roots": roots,
            "library": str(library) if library else None,
            "watchers": watchers,
            "watching": any(w.get("running") for w in watchers),
            "last_report": last,
            "targets": targets,
        }
    )


@handler
async def train_status(request):
    """GET: the current (or last) training run's status, {"state": "idle"} before any run."""
    from ..lora_workbench.training import runner

    status = runner.current_status()
    return _json_response(status if status is not None else {"state": "idle"})


@handler
async def train_cancel(request):
    """POST: ask the running training to stop (API users; the Cancel button already interrupts)."""
    from ..lora_workbench.training import runner

    cancelled = bool(runner.cancel_current())
    return _json_response(
        {"cancelled": cancelled, "message": "cancel requested" if cancelled else "no training is running"}
    )


@handler
async def train_sample(request):
    """GET ?path=: one sample image the trainer wrote (an image file inside the allowed roots).

    The file is opened first and then checked (paths.open_file), so a file swapped for a symlink
    between the check and the read is refused, never served."""
    value = request.query.get("path", "")
    data, real = await _in_thread(_read_sample, value)
    kind = {".png": "image/png", ".webp": "image/webp"}.get(real.suffix.lower(), "image/jpeg")
    return _web().Response(body=data, content_type=kind, headers={"Cache-Control": "no-cache"})


def _read_sample(value: str) -> tuple[bytes, Path]:
    try:
        f = paths.open_file(value, what="sample image")
    except FileNotFoundError:
        raise HttpError(404, f"The sample image {paths.shown(value)} does not exist.") from None
    with f:
        if f.path.suffix.lower() not in SAMPLE_EXTS:
            raise HttpError(403, f"{f.path.name} is not a sample image ({', '.join(SAMPLE_EXTS)}).")
        return f.read(limit=MAX_SAMPLE_BYTES), f.path


def add_routes(routes) -> None:
    """Add the pack's handlers to an aiohttp RouteTableDef (PromptServer's or a test app's)."""
    routes.post(f"{PREFIX}/dataset/preview")(dataset_preview)
    routes.get(f"{PREFIX}/library/status")(library_status)
    routes.get(f"{PREFIX}/train/status")(train_status)
    routes.post(f"{PREFIX}/train/cancel")(train_cancel)
    routes.get(f"{PREFIX}/train/sample")(train_sample)
    # the settings dialog's, the Training tab's and the caption editor's
    from . import routes_captions, routes_settings, routes_trainer, routes_training

    routes_settings.add_routes(routes)
    routes_training.add_routes(routes)
    routes_captions.add_routes(routes)
    routes_trainer.add_routes(routes)


def register() -> bool:
    """Register the routes on PromptServer.instance if a server is running; True when they are there.

    Also allows ComfyUI's own folders as roots and forwards core events to the browser. Safe to call
    again: a route table is filled once.
    """
    server = _comfy.prompt_server()
    if server is None or getattr(server, "routes", None) is None:
        return False
    _comfy.register_comfy_roots()
    _comfy.forward_core_events()
    if not any(t is server.routes for t in _registered_on):
        add_routes(server.routes)
        _registered_on.append(server.routes)
    return True


# --------------------------------------------------------------------------- links per target
def _target_counts(watchers: list[dict], last_report: dict | None) -> list[dict]:
    """The link counts for the (library, UI) pairs the panel knows of: the running watchers' targets,
    else the last report's library with this ComfyUI."""
    from ..lora_workbench.library import layout

    pairs: list[tuple[str, dict]] = [
        (w["library"], dict(w.get("targets") or {})) for w in watchers if w.get("library")
    ]
    if (
        not pairs
        and last_report
        and last_report.get("library")
        and last_report.get("trigger") != "link-trained"
    ):
        ui_dir = _comfy_ui_dir()
        if ui_dir is not None:
            pairs.append((last_report["library"], {"comfyui": ui_dir}))
    return [row for lib, uis in pairs for row in layout.link_counts(lib, uis)]


def _comfy_ui_dir() -> str | None:
    try:
        return str(Path(_comfy.folder_paths().models_dir).parent)
    except Exception:
        return None
