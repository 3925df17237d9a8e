"""A small client for a running ComfyUI: submit a prompt (POST /prompt), follow it over the websocket
(/ws?clientId=, our `lora_workbench.train` progress included), report validation and execution errors
as sentences, and download the output images through /view.

HTTP goes through urllib (stdlib); the websocket through aiohttp, imported only when following a run.
When the websocket cannot be opened the client polls /history instead.
"""

from __future__ import annotations

import asyncio
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

from ..errors import WorkbenchError

TRAIN_EVENT = "lora_workbench.train"  # events.TRAIN, spelled out so this module stands alone


class ServerUnreachable(WorkbenchError):
    """No ComfyUI answered at the URL."""


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


def format_node_errors(body: dict) -> str:
    """The 400 answer of /prompt as lines: the top error, then one line per failing input."""
    lines = []
    err = body.get("error") or {}
    if isinstance(err, dict) and err.get("message"):
        head = err["message"]
        if err.get("details"):
            head += f": {err['details']}"
        lines.append(head)
    elif err:
        lines.append(str(err))
    for nid, info in sorted((body.get("node_errors") or {}).items(), key=lambda kv: str(kv[0])):
        kind = info.get("class_type", "?")
        for e in info.get("errors") or []:
            name = (e.get("extra_info") or {}).get("input_name")
            where = f"node {nid} ({kind})" + (f" input {name}" if name else "")
            detail = e.get("details") or ""
            lines.append(
                f"  {where}: {e.get('message', e.get('type', 'error'))}" + (f" - {detail}" if detail else "")
            )
    return "\n".join(lines) or "the server rejected the prompt"


def format_execution_error(data: dict, traceback_lines: int = 0) -> str:
    node = data.get("node_id")
    kind = data.get("node_type") or "?"
    msg = (data.get("exception_message") or "").strip()
    etype = data.get("exception_type") or "error"
    text = f"node {node} ({kind}) failed: {etype}: {msg}"
    tb = data.get("traceback") or []
    if traceback_lines and tb:
        text += "\n" + "".join(tb[-traceback_lines:]).rstrip()
    return text


class QueueClient:
    def __init__(
        self,
        server: str = "http://127.0.0.1:8188",
        out: Callable[[str], None] = print,
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

    # ------------------------------------------------------------------ HTTP (stdlib)
    def _request(self, route: str, body: dict | None = None) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(
            self.server + route, data=data, headers={"Content-Type": "application/json"} if data else {}
        )
        try:
            with urllib.request.urlopen(req, timeout=self.http_timeout) as r:
                raw = r.read()
        except urllib.error.HTTPError as exc:
            raw = exc.read()
            try:
                payload = json.loads(raw)
            except (json.JSONDecodeError, UnicodeDecodeError):
                payload = {"error": raw.decode(errors="replace")[:500]}
            if exc.code == 400 and route.endswith("/prompt"):
                raise PromptRejected(format_node_errors(payload), payload) from None
            raise WorkbenchError(
                f"{self.server}{route} answered HTTP {exc.code}: {str(payload)[:500]}"
            ) from None
        except (urllib.error.URLError, ConnectionError, TimeoutError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise ServerUnreachable(
                f"No ComfyUI answered at {self.server} ({reason}). Start it, or pass "
                "--server with its address."
            ) from None
        return json.loads(raw) if raw else None

    def object_info(self) -> dict:
        return self._request("/object_info")

    def submit(self, prompt: dict, extra_data: dict | None = None) -> str:
        body = {"prompt": prompt, "client_id": self.client_id}
        if extra_data:
            body["extra_data"] = extra_data
        answer = self._request("/prompt", body)
        if answer.get("node_errors"):  # accepted, but some outputs were dropped
            self.out("warning: " + format_node_errors({"node_errors": answer["node_errors"]}))
        return answer["prompt_id"]

    def history(self, prompt_id: str) -> dict | None:
        return (self._request(f"/history/{urllib.parse.quote(prompt_id)}") or {}).get(prompt_id)

    def cancel(self, prompt_id: str) -> None:
        """Stop the run: interrupt it if running, drop it if still queued."""
        for route, body in (("/interrupt", {"prompt_id": prompt_id}), ("/queue", {"delete": [prompt_id]})):
            try:
                self._request(route, body)
            except WorkbenchError:
                pass

    def download(self, outputs: dict, folder: str, kinds: tuple[str, ...] = ("output",)) -> list[str]:
        """Save every output image (type in `kinds`) of a run into `folder`; returns the paths."""
        os.makedirs(folder, exist_ok=True)
        saved = []
        for _nid, ui in sorted(outputs.items(), key=lambda kv: str(kv[0])):
            for img in (ui or {}).get("images", []) or []:
                if img.get("type", "output") not in kinds:
                    continue
                name = os.path.basename(img["filename"])
                query = urllib.parse.urlencode(
                    {
                        "filename": img["filename"],
                        "subfolder": img.get("subfolder", ""),
                        "type": img.get("type", "output"),
                    }
                )
                try:
                    with urllib.request.urlopen(
                        f"{self.server}/view?{query}", timeout=self.http_timeout
                    ) as r:
                        data = r.read()
                except (urllib.error.URLError, OSError) as exc:
                    raise WorkbenchError(
                        f"Could not download {img['filename']} from {self.server}/view: {exc}"
                    ) from None
                dest = os.path.join(folder, name)
                with open(dest, "wb") as f:
                    f.write(data)
                saved.append(dest)
        return saved

    # ------------------------------------------------------------------ running
    def run(
        self,
        prompt: dict,
        timeout: float | None = None,
        download_dir: str | None = None,
        use_websocket: bool = True,
    ) -> RunResult:
        """Submit `prompt`, follow it to the end and download its images. Raises PromptRejected (400) and
        ServerUnreachable; execution errors, interrupts and timeouts come back in the result."""
        return asyncio.run(self.run_async(prompt, timeout, download_dir, use_websocket))

    async def run_async(
        self,
        prompt: dict,
        timeout: float | None = None,
        download_dir: str | None = None,
        use_websocket: bool = True,
    ) -> RunResult:
        loop = asyncio.get_running_loop()
        start = time.monotonic()
        deadline = start + timeout if timeout else None
        ws_ctx = await self._open_ws() if use_websocket else None
        try:
            prompt_id = await loop.run_in_executor(None, self.submit, prompt)
            self.out(f"queued prompt {prompt_id}")
            if ws_ctx is not None:
                result = await self._follow_ws(ws_ctx[1], prompt_id, prompt, deadline)
            else:
                result = await self._poll(prompt_id, deadline)
        finally:
            if ws_ctx is not None:
                await ws_ctx[1].close()
                await ws_ctx[0].close()
        if result.status == "timeout":
            await loop.run_in_executor(None, self.cancel, result.prompt_id)
        if result.status in ("success", "error", "interrupted"):
            hist = await loop.run_in_executor(None, self.history, result.prompt_id)
            if hist:
                result.outputs = hist.get("outputs") or result.outputs
        if download_dir and result.outputs:
            result.images = await loop.run_in_executor(None, self.download, result.outputs, download_dir)
        result.elapsed_s = time.monotonic() - start
        return result

    async def _open_ws(self):
        """(session, websocket) or None (no aiohttp, or the socket would not open: poll instead)."""
        try:
            import aiohttp
        except ImportError:
            self.out("aiohttp is not installed: polling /history instead of following the websocket")
            return None
        session = aiohttp.ClientSession()
        url = self.server.replace("http", "ws", 1) + f"/ws?clientId={self.client_id}"
        try:
            ws = await session.ws_connect(url, heartbeat=30)
        except Exception as exc:
            await session.close()
            self.out(f"websocket {url} failed ({exc}): polling /history instead")
            return None
        return session, ws

    def _title(self, prompt: dict, node: Any) -> str:
        entry = prompt.get(str(node)) or {}
        title = (entry.get("_meta") or {}).get("title") or entry.get("class_type") or "?"
        return f"{node} ({title})"

    async def _follow_ws(self, ws, prompt_id: str, prompt: dict, deadline: float | None) -> RunResult:  # noqa: C901 (cut into steps pending)
        import aiohttp

        result = RunResult(prompt_id=prompt_id, status="running")
        last_train = ""
        last_progress: tuple = ()
        while True:
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                self.out("timed out: interrupting the run")
                result.status = "timeout"
                return result
            try:
                msg = await ws.receive(timeout=left)
            except asyncio.TimeoutError:
                continue
            if msg.type in (aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.CLOSING, aiohttp.WSMsgType.ERROR):
                self.out("websocket closed: polling /history instead")
                return await self._poll(prompt_id, deadline)
            if msg.type != aiohttp.WSMsgType.TEXT:
                continue  # binary previews
            try:
                event = json.loads(msg.data)
            except json.JSONDecodeError:
                continue
            kind, data = event.get("type"), event.get("data") or {}
            if kind == TRAIN_EVENT:
                text = (
                    data.get("text") or f"step {data.get('step')}/{data.get('total')} loss {data.get('loss')}"
                )
                if text != last_train:
                    self.out(f"  train: {text}")
                    last_train = text
                continue
            if data.get("prompt_id") not in (None, prompt_id):
                continue
            if kind == "execution_start":
                self.out("started")
            elif kind == "execution_cached" and data.get("nodes"):
                self.out(f"cached: {', '.join(str(n) for n in data['nodes'])}")
            elif kind == "executing":
                if data.get("node") is None and data.get("prompt_id") == prompt_id:
                    result.status = "success" if result.status == "running" else result.status
                    return result
                if data.get("node") is not None:
                    self.out(f"running {self._title(prompt, data['node'])}")
            elif kind == "progress":
                step = (data.get("node"), data.get("value"), data.get("max"))
                if step != last_progress:  # nodes may repeat the same value
                    self.out(f"  {self._title(prompt, step[0])} {step[1]}/{step[2]}")
                    last_progress = step
            elif kind == "executed":
                result.outputs[str(data.get("node"))] = data.get("output") or {}
            elif kind == "execution_success":
                result.status = "success"
                return result
            elif kind == "execution_error":
                result.status, result.error = "error", data
                self.out("error: " + format_execution_error(data, traceback_lines=3))
                return result
            elif kind == "execution_interrupted":
                result.status = "interrupted"
                self.out(f"interrupted at {self._title(prompt, data.get('node_id'))}")
                return result

    async def _poll(self, prompt_id: str, deadline: float | None) -> RunResult:
        loop = asyncio.get_running_loop()
        while True:
            hist = await loop.run_in_executor(None, self.history, prompt_id)
            if hist and (hist.get("status") or {}).get("completed") is not None:
                status = hist.get("status") or {}
                result = RunResult(prompt_id=prompt_id, status="running", outputs=hist.get("outputs") or {})
                for name, data in status.get("messages") or []:
                    if name == "execution_error":
                        result.status, result.error = "error", data
                        self.out("error: " + format_execution_error(data, traceback_lines=3))
                    elif name == "execution_interrupted":
                        result.status = "interrupted"
                if result.status == "running":
                    result.status = "success" if status.get("status_str") == "success" else "error"
                return result
            if deadline is not None and time.monotonic() >= deadline:
                self.out("timed out: interrupting the run")
                return RunResult(prompt_id=prompt_id, status="timeout")
            await asyncio.sleep(self.poll_interval)


def load_workflow(path: str) -> dict:
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except FileNotFoundError:
        raise WorkbenchError(f"The workflow {path} does not exist.") from None
    except json.JSONDecodeError as exc:
        raise WorkbenchError(f"The workflow {path} is not JSON ({exc}).") from None


def prepare_prompt(
    workflow: dict,
    client: QueueClient | None = None,
    overrides: list[str] = (),
    object_info: dict | None = None,
) -> dict:
    """An API-format prompt from an API- or UI-format workflow (UI needs /object_info), overrides applied."""
    from . import workflow as wf

    if wf.is_ui_format(workflow):
        if object_info is None:
            if client is None:
                raise WorkbenchError("A UI-format workflow needs the server's /object_info to convert.")
            object_info = client.object_info()
        prompt = wf.ui_to_api(workflow, object_info)
    elif wf.is_api_format(workflow):
        prompt = json.loads(json.dumps(workflow))
        if overrides and object_info is None and client is not None:
            try:
                object_info = client.object_info()
            except WorkbenchError:
                object_info = None  # overrides then guess their types
    else:
        raise WorkbenchError("This file is neither an API-format prompt nor a UI-format workflow.")
    return wf.apply_overrides(prompt, list(overrides), object_info)
