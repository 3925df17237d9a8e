"""A small client for a running ComfyUI: submit a prompt (POST /prompt), follow it over the websocket
(/ws?clientId=, our `lora_workbench.train` progress included), report validation and execution errors
as sentences, and download the output images through /view.

HTTP goes through urllib (stdlib); the websocket through aiohttp, imported only when following a run.
When the websocket cannot be opened the client polls /history instead.

The server is not trusted to be well-formed: a reply that is not JSON, not UTF-8, cut short, of an
unexpected shape or larger than MAX_JSON_BYTES is a `BadReply` sentence; odd websocket messages are
skipped. Every HTTP exchange ends within `http_timeout` (a server that trickles bytes is cut off), and
a run's `timeout` bounds everything from submitting to the last download. Downloaded images never
overwrite a file: a second image of the same name is saved as `name-2.png`.
"""

from __future__ import annotations

import asyncio
import http.client
import json
import os
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .. import disk, numbers, terminal
from ..errors import WorkbenchError
from . import workflow as wf

TRAIN_EVENT = "lora_workbench.train"  # events.TRAIN, spelled out so this module stands alone
MAX_JSON_BYTES = 64 << 20  # /object_info of a big install is a few MB
MAX_IMAGE_BYTES = 1 << 30
MAX_WS_MESSAGE_BYTES = 16 << 20
CANCEL_GRACE_S = 5.0  # interrupting after a timeout may take this long on top


class ServerUnreachable(WorkbenchError):
    """No ComfyUI answered at the URL (or it stopped answering)."""


class BadReply(WorkbenchError):
    """The server answered, but not as ComfyUI does: not JSON, cut short, an unexpected shape."""


class DeadlineExceeded(WorkbenchError):
    """The run's overall timeout passed (while submitting, following or downloading)."""


class PromptRejected(WorkbenchError):
    """HTTP 400 from /prompt: the graph did not validate (node_errors)."""

    def __init__(self, message: str, body: dict | None = None):
        super().__init__(message)
        self.body = body or {}


@dataclass
class RunResult:
    prompt_id: str
    status: str  # success | error | interrupted | timeout
    outputs: dict = field(default_factory=dict)  # node id -> ui output (images, ...)
    error: dict | None = None  # the execution_error data
    images: list[str] = field(default_factory=list)  # downloaded files
    elapsed_s: float = 0.0

    @property
    def exit_code(self) -> int:
        return {"success": 0, "error": 1, "interrupted": 1, "timeout": 3}.get(self.status, 1)


def _dict(value) -> dict:
    return value if isinstance(value, dict) else {}


def _list(value) -> list:
    return value if isinstance(value, list) else []


def _text(value, limit: int = 500) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def format_node_errors(body: dict) -> str:
    """The 400 answer of /prompt as lines: the top error, then one line per failing input."""
    body = _dict(body)
    lines = []
    err = body.get("error") or {}
    if isinstance(err, dict) and err.get("message"):
        head = _text(err["message"])
        if err.get("details"):
            head += f": {_text(err['details'])}"
        lines.append(head)
    elif err:
        lines.append(_text(err))
    for nid, info in sorted(_dict(body.get("node_errors")).items(), key=lambda kv: str(kv[0])):
        info = _dict(info)
        kind = _text(info.get("class_type", "?"), 80)
        for e in _list(info.get("errors")):
            e = _dict(e)
            name = _dict(e.get("extra_info")).get("input_name")
            where = f"node {nid} ({kind})" + (f" input {_text(name, 80)}" if name else "")
            detail = _text(e.get("details") or "")
            message = _text(e.get("message", e.get("type", "error")))
            lines.append(f"  {where}: {message}" + (f" - {detail}" if detail else ""))
    return "\n".join(lines) or "the server rejected the prompt"


def format_execution_error(data: dict, traceback_lines: int = 0) -> str:
    data = _dict(data)
    node = _text(data.get("node_id"), 80)
    kind = _text(data.get("node_type") or "?", 80)
    msg = _text(data.get("exception_message") or "").strip()
    etype = _text(data.get("exception_type") or "error", 80)
    text = f"node {node} ({kind}) failed: {etype}: {msg}"
    tb = [line for line in _list(data.get("traceback")) if isinstance(line, str)]
    if traceback_lines and tb:
        text += "\n" + "".join(tb[-traceback_lines:]).rstrip()
    return text


def safe_image_name(filename) -> str | None:
    """The file name to save an output image under, or None when it is not a usable name."""
    if not isinstance(filename, str):
        return None
    name = os.path.basename(filename.replace("\\", "/"))
    if name in ("", ".", "..") or any(ord(c) < 0x20 or c == "\x7f" for c in name) or len(name) > 200:
        return None
    return name


class QueueClient:
    def __init__(
        self,
        server: str = "http://127.0.0.1:8188",
        out: Callable[[str], None] = terminal.echo,  # server text may hold escape sequences
        http_timeout: float = 30.0,
        poll_interval: float = 1.0,
    ):
        self.poll_interval = poll_interval  # seconds between /history polls when there is no websocket
        self.server = server.rstrip("/")
        if "://" not in self.server:
            self.server = "http://" + self.server
        self.out = out
        self.http_timeout = http_timeout
        self.client_id = uuid.uuid4().hex
        self.deadline: float | None = None  # time.monotonic() by which the whole run must end
        self._prompt_id = ""  # the run being followed (to interrupt it when the deadline passes)

    # ------------------------------------------------------------------ HTTP (stdlib)
    def _exchange_deadline(self) -> float:
        end = time.monotonic() + self.http_timeout
        if self.deadline is not None:
            if time.monotonic() >= self.deadline:
                raise DeadlineExceeded("The run's time limit passed.")
            end = min(end, self.deadline)
        return end

    def _read(self, r, limit: int, end: float, what: str) -> bytes:
        """The body, read in pieces: refused past `limit` bytes or past the `end` time."""
        chunks, total = [], 0
        while chunk := r.read1(1 << 16):
            total += len(chunk)
            if total > limit:
                raise BadReply(f"{what} is larger than {limit >> 20} MiB; is {self.server} ComfyUI?")
            if time.monotonic() > end:
                raise self._too_slow(what)
            chunks.append(chunk)
        return b"".join(chunks)

    def _too_slow(self, what: str) -> WorkbenchError:
        if self.deadline is not None and time.monotonic() >= self.deadline:
            return DeadlineExceeded(f"The run's time limit passed while reading {what}.")
        return ServerUnreachable(
            f"{what} did not arrive within {self.http_timeout:g} s; the server is too slow."
        )

    def _fetch(self, url: str, data: bytes | None, limit: int, what: str) -> tuple[int, bytes]:
        """(HTTP status, body) of one exchange; ServerUnreachable, BadReply or DeadlineExceeded."""
        end = self._exchange_deadline()
        headers = {"Content-Type": "application/json"} if data else {}
        req = urllib.request.Request(url, data=data, headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=max(0.1, end - time.monotonic())) as r:
                return r.status, self._read(r, limit, end, what)
        except urllib.error.HTTPError as exc:
            with exc:
                return exc.code, self._read(exc, 1 << 20, end, what)
        except http.client.HTTPException as exc:  # cut short, a bad status line
            raise BadReply(f"{what} broke off ({type(exc).__name__}); is {self.server} ComfyUI?") from None
        except TimeoutError:
            raise self._too_slow(what) from None
        except (urllib.error.URLError, ConnectionError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise ServerUnreachable(
                f"No ComfyUI answered at {self.server} ({reason}). Start it, or pass --server with its address."
            ) from None

    def _decode(self, raw: bytes, what: str) -> Any:
        if not raw:
            return None
        try:
            return json.loads(raw.decode("utf-8"))
        except UnicodeDecodeError:
            raise BadReply(f"{what} is not UTF-8 text; is {self.server} ComfyUI?") from None
        except (ValueError, RecursionError):
            raise BadReply(
                f"{what} is not JSON ({_text(raw[:80].decode('utf-8', 'replace'), 80)!r}...)."
            ) from None

    def _request(self, route: str, body: dict | None = None) -> Any:
        what = f"The answer of {self.server}{route.split('?', 1)[0]}"
        data = json.dumps(body).encode() if body is not None else None
        status, raw = self._fetch(self.server + route, data, MAX_JSON_BYTES, what)
        if status < 400:
            return self._decode(raw, what)
        try:
            payload = json.loads(raw.decode("utf-8"))
        except (ValueError, RecursionError):
            payload = {"error": raw.decode(errors="replace")[:500]}
        if status == 400 and route.endswith("/prompt"):
            raise PromptRejected(format_node_errors(_dict(payload)), _dict(payload))
        raise WorkbenchError(f"{self.server}{route} answered HTTP {status}: {_text(payload)}")

    def object_info(self) -> dict:
        info = self._request("/object_info")
        if not isinstance(info, dict):
            raise BadReply(f"{self.server}/object_info is not a JSON object; is it ComfyUI?")
        return info

    def submit(self, prompt: dict, extra_data: dict | None = None) -> str:
        body = {"prompt": prompt, "client_id": self.client_id}
        if extra_data:
            body["extra_data"] = extra_data
        answer = self._request("/prompt", body)
        prompt_id = _dict(answer).get("prompt_id")
        if not isinstance(prompt_id, (str, int)) or isinstance(prompt_id, bool) or str(prompt_id) == "":
            raise BadReply(f"{self.server}/prompt answered without a prompt_id ({_text(answer, 200)}).")
        if _dict(answer).get("node_errors"):  # accepted, but some outputs were dropped
            self.out("warning: " + format_node_errors({"node_errors": answer["node_errors"]}))
        return str(prompt_id)

    def history(self, prompt_id: str) -> dict | None:
        answer = self._request(f"/history/{urllib.parse.quote(prompt_id)}")
        if answer is not None and not isinstance(answer, dict):
            raise BadReply(f"{self.server}/history answered {_text(answer, 120)}, not a JSON object.")
        entry = (answer or {}).get(prompt_id)
        if entry is not None and not isinstance(entry, dict):
            raise BadReply(f"{self.server}/history holds {_text(entry, 120)} for the run, not an object.")
        return entry

    def cancel(self, prompt_id: str) -> None:
        """Stop the run: interrupt it if running, drop it if still queued (a few seconds at most)."""
        saved, self.deadline = self.deadline, time.monotonic() + CANCEL_GRACE_S
        try:
            for route, body in (
                ("/interrupt", {"prompt_id": prompt_id}),
                ("/queue", {"delete": [prompt_id]}),
            ):
                try:
                    self._request(route, body)
                except WorkbenchError:
                    pass
        finally:
            self.deadline = saved

    def download(self, outputs: dict, folder: str, kinds: tuple[str, ...] = ("output",)) -> list[str]:
        """Save every output image (type in `kinds`) of a run into `folder`; returns the paths.

        A name already taken (by a file there, or an image saved earlier in this run) gets a
        number: `x.png`, `x-2.png`, ... so two images of the same name are both kept."""
        os.makedirs(folder, exist_ok=True)
        saved = []
        for _nid, ui in sorted(_dict(outputs).items(), key=lambda kv: str(kv[0])):
            for img in _list(_dict(ui).get("images")):
                img = _dict(img)
                kind = img.get("type", "output")
                if kind not in kinds:
                    continue
                name = safe_image_name(img.get("filename"))
                if name is None:
                    self.out(f"warning: skipped an output image with an unusable name ({_text(img, 120)})")
                    continue
                data = self._view(img, kind)
                saved.append(_save_new(folder, name, data))
        return saved

    def _view(self, img: dict, kind: str) -> bytes:
        sub = img.get("subfolder", "")
        query = urllib.parse.urlencode(
            {"filename": img["filename"], "subfolder": sub if isinstance(sub, str) else "", "type": kind}
        )
        what = f"The image {_text(img['filename'], 80)} from {self.server}/view"
        status, data = self._fetch(f"{self.server}/view?{query}", None, MAX_IMAGE_BYTES, what)
        if status >= 400:
            raise WorkbenchError(f"Could not download {_text(img['filename'], 80)}: HTTP {status}.")
        return data

    # ------------------------------------------------------------------ running
    def run(
        self,
        prompt: dict,
        timeout: float | None = None,
        download_dir: str | None = None,
        use_websocket: bool = True,
    ) -> RunResult:
        """Submit `prompt`, follow it to the end and download its images. Raises PromptRejected (400),
        ServerUnreachable and BadReply; execution errors, interrupts and timeouts come back in the
        result."""
        return asyncio.run(self.run_async(prompt, timeout, download_dir, use_websocket))

    async def run_async(
        self,
        prompt: dict,
        timeout: float | None = None,
        download_dir: str | None = None,
        use_websocket: bool = True,
    ) -> RunResult:
        start = time.monotonic()
        self.deadline = start + timeout if timeout else None
        self._prompt_id = ""
        result = None
        try:
            result = await self._submit_and_follow(prompt, use_websocket)
            await self._finish(result, download_dir)
        except DeadlineExceeded as exc:
            self.out(f"timed out: {exc}")
            result = result or RunResult(prompt_id=self._prompt_id, status="timeout")
            result.status = "timeout"
        finally:
            self.deadline = None
        if result.status == "timeout" and result.prompt_id:
            await asyncio.get_running_loop().run_in_executor(None, self.cancel, result.prompt_id)
        result.elapsed_s = time.monotonic() - start
        return result

    async def _submit_and_follow(self, prompt: dict, use_websocket: bool) -> RunResult:
        loop = asyncio.get_running_loop()
        ws_ctx = await self._open_ws() if use_websocket else None
        try:
            prompt_id = self._prompt_id = await loop.run_in_executor(None, self.submit, prompt)
            self.out(f"queued prompt {prompt_id}")
            if ws_ctx is not None:
                return await self._follow_ws(ws_ctx[1], prompt_id, prompt, self.deadline)
            return await self._poll(prompt_id, self.deadline)
        finally:
            if ws_ctx is not None:
                await ws_ctx[1].close()
                await ws_ctx[0].close()

    async def _finish(self, result: RunResult, download_dir: str | None) -> None:
        """The outputs from /history (the websocket may have missed some), then the downloads."""
        loop = asyncio.get_running_loop()
        if result.status in ("success", "error", "interrupted"):
            hist = await loop.run_in_executor(None, self.history, result.prompt_id)
            if hist and isinstance(hist.get("outputs"), dict):
                result.outputs = hist["outputs"]
        if download_dir and result.outputs:
            result.images = await loop.run_in_executor(None, self.download, result.outputs, download_dir)

    async def _open_ws(self):
        """(session, websocket) or None (the socket would not open: poll instead)."""
        import aiohttp  # heavy: only when a websocket is wanted

        session = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=self.http_timeout)
        )  # the handshake
        url = self.server.replace("http", "ws", 1) + f"/ws?clientId={self.client_id}"
        try:
            ws = await session.ws_connect(url, heartbeat=30, max_msg_size=MAX_WS_MESSAGE_BYTES)
        except Exception as exc:
            await session.close()
            self.out(f"websocket {url} failed ({_text(str(exc), 200)}): polling /history instead")
            return None
        return session, ws

    def _title(self, prompt: dict, node: Any) -> str:
        entry = prompt.get(str(node)) or {}
        title = (entry.get("_meta") or {}).get("title") or entry.get("class_type") or "?"
        return f"{_text(str(node), 40)} ({title})"

    async def _follow_ws(self, ws, prompt_id: str, prompt: dict, deadline: float | None) -> RunResult:
        import aiohttp

        follow = _Follow(self, prompt_id, prompt)
        while True:
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                self.out("timed out: interrupting the run")
                follow.result.status = "timeout"
                return follow.result
            try:
                msg = await ws.receive(timeout=left)
            except asyncio.TimeoutError:
                continue
            if msg.type in (aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.CLOSING, aiohttp.WSMsgType.ERROR):
                self.out("websocket closed: polling /history instead")
                return await self._poll(prompt_id, deadline)
            if msg.type == aiohttp.WSMsgType.TEXT and follow.handle(msg.data):
                return follow.result

    async def _poll(self, prompt_id: str, deadline: float | None) -> RunResult:
        loop = asyncio.get_running_loop()
        while True:
            hist = await loop.run_in_executor(None, self.history, prompt_id)
            status = _dict((hist or {}).get("status"))
            if hist and status.get("completed") is not None:
                return self._from_history(prompt_id, hist, status)
            if deadline is not None and time.monotonic() >= deadline:
                self.out("timed out: interrupting the run")
                return RunResult(prompt_id=prompt_id, status="timeout")
            await asyncio.sleep(self.poll_interval)

    def _from_history(self, prompt_id: str, hist: dict, status: dict) -> RunResult:
        result = RunResult(prompt_id=prompt_id, status="running", outputs=_dict(hist.get("outputs")))
        for message in _list(status.get("messages")):
            if not (isinstance(message, list) and len(message) == 2):
                continue
            name, data = message
            if name == "execution_error":
                result.status, result.error = "error", _dict(data)
                self.out("error: " + format_execution_error(data, traceback_lines=3))
            elif name == "execution_interrupted":
                result.status = "interrupted"
        if result.status == "running":
            result.status = "success" if status.get("status_str") == "success" else "error"
        return result


class _Follow:
    """The websocket messages of one run, turned into lines and a result; odd messages are skipped."""

    def __init__(self, client: QueueClient, prompt_id: str, prompt: dict):
        self.client, self.prompt_id, self.prompt = client, prompt_id, prompt
        self.result = RunResult(prompt_id=prompt_id, status="running")
        self.last_train = ""
        self.last_progress: tuple = ()

    def handle(self, text: str) -> bool:
        """Take one text message; True when the run is over."""
        try:
            event = json.loads(text)
        except (ValueError, RecursionError):
            return False
        if not isinstance(event, dict) or not isinstance(event.get("data", {}), (dict, type(None))):
            return False
        kind, data = event.get("type"), event.get("data") or {}
        if kind == TRAIN_EVENT:
            self._train(data)
            return False
        if data.get("prompt_id") not in (None, self.prompt_id):
            return False
        handler = (
            getattr(self, "_on_" + kind, None) if isinstance(kind, str) and kind.isidentifier() else None
        )
        return bool(handler(data)) if handler is not None else False

    def _say(self, text: str) -> None:
        self.client.out(text)

    def _train(self, data: dict) -> None:
        text = data.get("text") or f"step {data.get('step')}/{data.get('total')} loss {data.get('loss')}"
        text = _text(text, 300)
        if text != self.last_train:
            self._say(f"  train: {text}")
            self.last_train = text

    def _on_execution_start(self, data: dict) -> None:
        self._say("started")

    def _on_execution_cached(self, data: dict) -> None:
        nodes = _list(data.get("nodes"))
        if nodes:
            self._say(f"cached: {', '.join(_text(str(n), 40) for n in nodes)}")

    def _on_executing(self, data: dict) -> bool:
        node = data.get("node")
        if node is None and data.get("prompt_id") == self.prompt_id:
            self.result.status = "success" if self.result.status == "running" else self.result.status
            return True
        if node is not None:
            self._say(f"running {self.client._title(self.prompt, node)}")
        return False

    def _on_progress(self, data: dict) -> None:
        step = (data.get("node"), data.get("value"), data.get("max"))
        if step != self.last_progress:  # nodes may repeat the same value
            self._say(
                f"  {self.client._title(self.prompt, step[0])} {_text(step[1], 20)}/{_text(step[2], 20)}"
            )
            self.last_progress = step

    def _on_executed(self, data: dict) -> None:
        self.result.outputs[str(data.get("node"))] = _dict(data.get("output"))

    def _on_execution_success(self, data: dict) -> bool:
        self.result.status = "success"
        return True

    def _on_execution_error(self, data: dict) -> bool:
        self.result.status, self.result.error = "error", data
        self._say("error: " + format_execution_error(data, traceback_lines=3))
        return True

    def _on_execution_interrupted(self, data: dict) -> bool:
        self.result.status = "interrupted"
        self._say(f"interrupted at {self.client._title(self.prompt, data.get('node_id'))}")
        return True


def _save_new(folder: str, name: str, data: bytes) -> str:
    """Write `data` as a new file in `folder` (never over a file or through a link): name, name-2, ..."""
    stem, ext = os.path.splitext(name)
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_BINARY", 0)
    for n in range(1, 10000):
        dest = os.path.join(folder, name if n == 1 else f"{stem}-{n}{ext}")
        try:
            fd = os.open(dest, flags, 0o644)
        except FileExistsError:
            continue
        try:
            with disk.said_if_full(dest), os.fdopen(fd, "wb") as f:
                f.write(data)
        except BaseException:  # a full disk: no cut-off image left that looks whole
            os.unlink(dest)
            raise
        return dest
    raise WorkbenchError(
        f"{folder} already holds 9999 files named like {name}; empty it or pick another folder."
    )


def load_workflow(path: str) -> dict:
    try:
        with open(path, encoding="utf-8") as f:
            return numbers.loads(f.read())
    except FileNotFoundError:
        raise WorkbenchError(f"The workflow {path} does not exist.") from None
    except numbers.OutOfRange as exc:
        raise WorkbenchError(f"The workflow {path} holds a number a float cannot hold: {exc}.") from None
    except json.JSONDecodeError as exc:
        raise WorkbenchError(f"The workflow {path} is not JSON ({exc}).") from None
    except UnicodeDecodeError:
        raise WorkbenchError(
            f"The workflow {path} is not UTF-8 text; export it from ComfyUI again."
        ) from None
    except (ValueError, RecursionError):
        raise WorkbenchError(
            f"The workflow {path} is not JSON this client can read (nested too deep?)."
        ) from None
    except OSError as exc:
        raise WorkbenchError(f"The workflow {path} cannot be read ({exc.strerror}).") from None


def prepare_prompt(
    workflow: dict,
    client: QueueClient | None = None,
    overrides: list[str] = (),
    object_info: dict | None = None,
    notes: list[str] | None = None,
) -> dict:
    """An API-format prompt from an API- or UI-format workflow (UI needs /object_info), overrides applied
    (`notes` receives a line for each override moved onto another node, see workflow.apply_overrides)."""
    if wf.is_ui_format(workflow):
        if object_info is None:
            if client is None:
                raise WorkbenchError("A UI-format workflow needs the server's /object_info to convert.")
            object_info = client.object_info()
        try:
            prompt = wf.ui_to_api(workflow, object_info)
        except (TypeError, AttributeError, KeyError, IndexError, ValueError) as exc:
            if isinstance(exc, WorkbenchError):
                raise
            raise BadReply(
                f"The workflow could not be converted with the server's /object_info "
                f"({type(exc).__name__}: {_text(str(exc), 200)}); is the server ComfyUI, and the workflow its?"
            ) from None
    elif wf.is_api_format(workflow):
        prompt = json.loads(json.dumps(workflow))
        if overrides and object_info is None and client is not None:
            try:
                object_info = client.object_info()
            except WorkbenchError:
                object_info = None  # overrides then guess their types
    else:
        raise WorkbenchError("This file is neither an API-format prompt nor a UI-format workflow.")
    return wf.apply_overrides(prompt, list(overrides), object_info, notes)
