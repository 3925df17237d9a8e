"""Attacks on the queue client: a server that answers not as ComfyUI does. Non-JSON, bad UTF-8, wrong
shapes, cut-short bodies, garbage status lines, trickling bytes, huge answers, odd websocket messages,
hostile image names. Every case ends in one `error:` line and exit code 1, 2, 3 or 4 (never a
traceback), within the deadline, and nothing is written outside the download folder."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from aiohttp import web

from lora_workbench import cli
from lora_workbench.client import queue_client as qc

REPO = Path(__file__).resolve().parents[3]
PROMPT = {"9": {"class_type": "SaveImage", "inputs": {"filename_prefix": "x"}, "_meta": {"title": "Save"}}}
PNG = b"\x89PNG\r\n\x1a\nfake"
OK_STATUS = {"status_str": "success", "completed": True, "messages": []}


def image(name, subfolder=""):
    return {"filename": name, "subfolder": subfolder, "type": "output"}


class Hostile:
    """A server whose routes answer as the test says; unset routes answer as ComfyUI would."""

    def __init__(self, **routes):
        self.routes = routes
        self.interrupted = 0
        self.outputs = {"9": {"images": [image("x.png")]}}
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self.dispatch)
        self.app = app

    async def dispatch(self, request):
        route = "/" + request.match_info["tail"].split("/", 1)[0]
        if route == "/interrupt":
            self.interrupted += 1
        handler = self.routes.get(route)
        if handler is not None:
            return await handler(request)
        return await self.default(route, request)

    async def default(self, route, request):
        if route == "/prompt":
            return web.json_response({"prompt_id": "p-1", "number": 0, "node_errors": {}})
        if route == "/history":
            return web.json_response({"p-1": {"outputs": self.outputs, "status": OK_STATUS}})
        if route == "/view":
            return web.Response(body=PNG, content_type="image/png")
        if route == "/ws":
            ws = web.WebSocketResponse()
            await ws.prepare(request)
            await ws.close()
            return ws
        return web.Response()


def body(data, status=200, content_type="application/json"):
    async def handler(request):
        raw = data if isinstance(data, bytes) else data.encode()
        return web.Response(body=raw, status=status, content_type=content_type)

    return handler


async def start(aiohttp_server, **routes):
    fake = Hostile(**routes)
    server = await aiohttp_server(fake.app)
    return fake, f"http://127.0.0.1:{server.port}"


async def raw_server(reply: bytes, trickle: float = 0.0):
    """A TCP server that answers every request with `reply` (a byte at a time when trickling)."""

    async def handle(reader, writer):
        await reader.read(65536)
        if trickle:
            for b in reply:
                writer.write(bytes([b]))
                await writer.drain()
                await asyncio.sleep(trickle)
        else:
            writer.write(reply)
            await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    return server, f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"


async def run_cli(tmp_path, url, *argv, workflow=PROMPT):
    path = tmp_path / "wf.json"
    path.write_text(json.dumps(workflow))
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(None, cli.main, ["queue", str(path), "--server", url, *argv])


def one_line_error(capsys) -> str:
    err = capsys.readouterr().err
    assert "Traceback" not in err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert lines and lines[0].startswith("error: "), err
    return err


# --------------------------------------------------------------------------- /prompt answers
PROMPT_REPLIES = {
    "not json": body("<html>hello</html>", content_type="text/html"),
    "bad utf-8": body(b'{"prompt_id": "\xff\xfe"}'),
    "a list": body("[1, 2]"),
    "no prompt_id": body("{}"),
    "prompt_id null": body('{"prompt_id": null}'),
    "prompt_id object": body('{"prompt_id": {"a": 1}}'),
    "prompt_id true": body('{"prompt_id": true}'),
    "deep": body("[" * 100000 + "]" * 100000),
    "truncated json": body('{"prompt_id": "p-'),
    "node_errors a list": body('{"prompt_id": "p-1", "node_errors": [1, 2]}'),
}


@pytest.mark.asyncio
@pytest.mark.parametrize("case", sorted(PROMPT_REPLIES))
async def test_an_odd_prompt_answer_is_one_line_and_exit_1(aiohttp_server, tmp_path, capsys, case):
    _fake, url = await start(aiohttp_server, **{"/prompt": PROMPT_REPLIES[case]})
    rc = await run_cli(tmp_path, url, "--poll", "--timeout", "10")
    assert rc in (0, 1) if case == "node_errors a list" else rc == 1
    if rc:
        one_line_error(capsys)


REJECTIONS = {
    "html 400": body("<b>bad</b>", status=400, content_type="text/html"),
    "node_errors a list": body('{"error": "x", "node_errors": [1]}', status=400),
    "node info a string": body('{"error": {"message": 5}, "node_errors": {"3": "broken"}}', status=400),
    "errors not a list": body('{"node_errors": {"3": {"errors": {"a": 1}, "class_type": [1]}}}', status=400),
    "error entries odd": body('{"node_errors": {"3": {"errors": [1, null, {"extra_info": 7}]}}}', status=400),
}


@pytest.mark.asyncio
@pytest.mark.parametrize("case", sorted(REJECTIONS))
async def test_an_odd_rejection_is_still_a_validation_error(aiohttp_server, tmp_path, capsys, case):
    _fake, url = await start(aiohttp_server, **{"/prompt": REJECTIONS[case]})
    assert await run_cli(tmp_path, url, "--poll") == 2
    assert "rejected the workflow" in one_line_error(capsys)


@pytest.mark.asyncio
async def test_a_server_error_page_is_one_line(aiohttp_server, tmp_path, capsys):
    _fake, url = await start(aiohttp_server, **{"/prompt": body("<h1>500</h1>" * 500, 500, "text/html")})
    assert await run_cli(tmp_path, url, "--poll") == 1
    assert len(one_line_error(capsys)) < 1200


# --------------------------------------------------------------------------- broken HTTP
RAW = {
    "cut short": b'HTTP/1.1 200 OK\r\nContent-Length: 100\r\nContent-Type: application/json\r\n\r\n{"pro',
    "garbage status": b"SSH-2.0-OpenSSH_9.6\r\n",
    "chunked cut short": b'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n10\r\n{"prompt_',
    "nothing": b"",
}


@pytest.mark.asyncio
@pytest.mark.parametrize("case", sorted(RAW))
async def test_a_broken_http_answer_is_one_line(tmp_path, capsys, case):
    server, url = await raw_server(RAW[case])
    async with server:
        rc = await run_cli(tmp_path, url, "--poll", "--timeout", "5")
    assert rc in (1, 4)
    one_line_error(capsys)


@pytest.mark.asyncio
async def test_a_server_that_trickles_is_cut_off_by_the_http_timeout(tmp_path):
    reply = b"HTTP/1.1 200 OK\r\nContent-Length: 4000\r\n\r\n" + b" " * 4000
    server, url = await raw_server(reply, trickle=0.01)
    async with server:
        client = qc.QueueClient(url, out=lambda s: None, http_timeout=1.0)
        t = time.monotonic()
        with pytest.raises((qc.ServerUnreachable, qc.BadReply)):
            await asyncio.get_running_loop().run_in_executor(None, client.submit, PROMPT)
        assert time.monotonic() - t < 3.5


@pytest.mark.asyncio
async def test_an_answer_over_the_cap_is_refused_while_it_is_read(aiohttp_server, monkeypatch):
    monkeypatch.setattr(qc, "MAX_JSON_BYTES", 1 << 20)
    _fake, url = await start(aiohttp_server, **{"/object_info": body('{"a": "' + "x" * (3 << 20) + '"}')})
    with pytest.raises(qc.BadReply, match="larger than 1 MiB"):
        await asyncio.get_running_loop().run_in_executor(None, qc.QueueClient(url).object_info)


@pytest.mark.asyncio
async def test_an_object_info_of_the_wrong_shape_is_one_line(aiohttp_server, tmp_path, capsys):
    ui = {"nodes": [{"id": 1, "type": "SaveImage", "widgets_values": ["x"], "mode": 0}], "links": []}
    for info in ("[1]", '{"SaveImage": 5}', '{"SaveImage": {"input": [1]}}'):
        _fake, url = await start(aiohttp_server, **{"/object_info": body(info)})
        assert await run_cli(tmp_path, url, "--poll", workflow=ui) in (1, 2)
        one_line_error(capsys)


# --------------------------------------------------------------------------- /history in poll mode
HISTORIES = {
    "a list": "[]",
    "entry a string": '{"p-1": "done"}',
    "status a list": '{"p-1": {"status": [1], "outputs": {}}}',
    "messages odd": '{"p-1": {"status": {"completed": true, "messages": [1, ["execution_error"], '
    '["execution_error", 5]]}, "outputs": []}}',
    "outputs odd": '{"p-1": {"status": {"completed": true, "status_str": "success"}, '
    '"outputs": {"9": {"images": [5, {"filename": 7}, {"x": 1}]}}}}',
}


@pytest.mark.asyncio
@pytest.mark.parametrize("case", sorted(HISTORIES))
async def test_odd_history_answers_end_in_one_line(aiohttp_server, tmp_path, capsys, case):
    _fake, url = await start(aiohttp_server, **{"/history": body(HISTORIES[case])})
    rc = await run_cli(tmp_path, url, "--poll", "--timeout", "3", "--download", str(tmp_path / "dl"))
    assert rc in (0, 1, 3)
    if rc:
        one_line_error(capsys)
    else:
        assert "Traceback" not in capsys.readouterr().err


# --------------------------------------------------------------------------- odd websocket messages
def ws_sending(messages, then_close=False):
    async def handler(request):
        ws = web.WebSocketResponse(max_msg_size=0)
        await ws.prepare(request)
        for m in messages:
            if isinstance(m, bytes):
                await ws.send_bytes(m)
            else:
                await ws.send_str(m)
        if then_close:
            await ws.close()
            return ws
        async for _ in ws:
            pass
        return ws

    return handler


ODD_WS = [
    "not json",
    "[1, 2, 3]",
    "5",
    "null",
    '{"type": 5, "data": {}}',
    '{"type": "executing", "data": [1]}',
    '{"type": "executing", "data": {"node": {"a": 1}, "prompt_id": "p-1"}}',
    '{"type": "progress", "data": {"node": [1], "value": {"x": 1}, "max": null, "prompt_id": "p-1"}}',
    '{"type": "executed", "data": {"node": "9", "output": [1], "prompt_id": "p-1"}}',
    '{"type": "execution_cached", "data": {"nodes": 7, "prompt_id": "p-1"}}',
    '{"type": "lora_workbench.train", "data": {"text": ["x"]}}',
    '{"type": "__class__", "data": {}}',
    '{"type": "_say", "data": {}}',
    "[" * 50000 + "]" * 50000,
    b"\x00\x01binary",
]


@pytest.mark.asyncio
async def test_odd_websocket_messages_are_skipped_and_the_run_still_ends(aiohttp_server, tmp_path, capsys):
    end = '{"type": "executing", "data": {"node": null, "prompt_id": "p-1"}}'
    fake, url = await start(aiohttp_server)
    fake.routes["/ws"] = ws_sending(ODD_WS)

    async def prompt(request):  # answer, then send the messages over the open socket
        return web.json_response({"prompt_id": "p-1"})

    fake.routes["/prompt"] = prompt
    fake.routes["/ws"] = ws_sending([*ODD_WS, end])
    rc = await run_cli(tmp_path, url, "--timeout", "10", "--download", str(tmp_path / "dl"))
    captured = capsys.readouterr()
    assert rc == 0 and "Traceback" not in captured.err, captured.err


@pytest.mark.asyncio
async def test_a_websocket_message_over_the_cap_falls_back_to_polling(
    aiohttp_server, tmp_path, capsys, monkeypatch
):
    monkeypatch.setattr(qc, "MAX_WS_MESSAGE_BYTES", 1 << 16)
    fake, url = await start(aiohttp_server)
    fake.routes["/ws"] = ws_sending(['{"type": "status", "data": {"x": "' + "y" * (1 << 17) + '"}}'])
    assert await run_cli(tmp_path, url, "--timeout", "10") == 0
    assert "polling /history" in capsys.readouterr().out


# --------------------------------------------------------------------------- images and the download folder
@pytest.mark.asyncio
async def test_two_images_of_the_same_name_are_both_kept_and_names_cannot_escape(
    aiohttp_server, tmp_path, capsys
):
    outside = tmp_path / "outside"
    outside.mkdir()
    dl = tmp_path / "dl"
    dl.mkdir()
    (dl / "planted.png").symlink_to(outside / "victim.png")  # a link where an image will be saved
    fake, url = await start(aiohttp_server)
    served = {}

    async def view(request):
        served.setdefault(request.query["filename"], 0)
        served[request.query["filename"]] += 1
        return web.Response(body=PNG + request.query["subfolder"].encode(), content_type="image/png")

    fake.routes["/view"] = view
    fake.outputs = {
        "9": {"images": [image("x.png", "a"), image("x.png", "b"), image("../../outside/evil.png")]},
        "10": {"images": [image("planted.png"), image(""), image(".."), image("a\nb.png"), {"filename": 5}]},
    }
    assert await run_cli(tmp_path, url, "--poll", "--download", str(dl)) == 0
    out = capsys.readouterr().out
    assert sorted(os.listdir(dl)) == ["evil.png", "planted-2.png", "planted.png", "x-2.png", "x.png"]
    assert {(dl / "x.png").read_bytes(), (dl / "x-2.png").read_bytes()} == {PNG + b"a", PNG + b"b"}
    assert os.listdir(outside) == [] and os.path.islink(dl / "planted.png")
    assert out.count("saved ") == 4


# --------------------------------------------------------------------------- the overall deadline
@pytest.mark.asyncio
async def test_the_timeout_bounds_a_run_that_never_ends(aiohttp_server, tmp_path, capsys):
    fake, url = await start(aiohttp_server, **{"/history": body("{}")})
    t = time.monotonic()
    assert await run_cli(tmp_path, url, "--poll", "--timeout", "1") == 3
    assert time.monotonic() - t < 1 + qc.CANCEL_GRACE_S and fake.interrupted == 1
    one_line_error(capsys)


@pytest.mark.asyncio
async def test_the_timeout_bounds_the_downloads_too(aiohttp_server, tmp_path, capsys):
    async def slow_view(request):
        resp = web.StreamResponse()
        await resp.prepare(request)
        for _ in range(100):
            await resp.write(b"x" * 100)
            await asyncio.sleep(0.1)
        return resp

    _fake, url = await start(aiohttp_server, **{"/view": slow_view})
    t = time.monotonic()
    rc = await run_cli(tmp_path, url, "--poll", "--timeout", "1.5", "--download", str(tmp_path / "dl"))
    assert rc == 3 and time.monotonic() - t < 1.5 + qc.CANCEL_GRACE_S + 1
    one_line_error(capsys)
    assert os.listdir(tmp_path / "dl") == []


@pytest.mark.asyncio
async def test_a_long_quiet_run_is_not_cut_by_the_http_timeout(aiohttp_server):
    async def ws(request):
        sock = web.WebSocketResponse()
        await sock.prepare(request)
        for _ in range(3):
            await asyncio.sleep(0.7)  # longer than the client's http timeout, in total
            await sock.send_str('{"type": "status", "data": {}}')
        await sock.send_str('{"type": "executing", "data": {"node": null, "prompt_id": "p-1"}}')
        async for _ in sock:
            pass
        return sock

    _fake, url = await start(aiohttp_server, **{"/ws": ws})
    result = await qc.QueueClient(url, out=lambda s: None, http_timeout=1.0).run_async(PROMPT, timeout=10)
    assert result.status == "success"


# --------------------------------------------------------------------------- a real process
def test_the_real_cli_process_prints_one_line_for_a_non_comfy_server(tmp_path):
    import http.server
    import threading

    class NotComfy(http.server.BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 (http.server's name)
            self.send_response(200)
            self.send_header("Content-Length", "7")
            self.end_headers()
            self.wfile.write(b"\xff\xfe{}[]!")

        do_GET = do_POST  # noqa: N815

        def log_message(self, *args):
            pass

    httpd = http.server.HTTPServer(("127.0.0.1", 0), NotComfy)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    wf = tmp_path / "wf.json"
    wf.write_text(json.dumps(PROMPT))
    try:
        env = {**os.environ, "PYTHONPATH": str(REPO), "LORA_WORKBENCH_SETTINGS": str(tmp_path / "none.json")}
        url = f"http://127.0.0.1:{httpd.server_port}"
        out = subprocess.run(
            [sys.executable, "-m", "lora_workbench", "queue", str(wf), "--server", url, "--poll"],
            capture_output=True,
            text=True,
            timeout=60,
            env=env,
        )
    finally:
        httpd.shutdown()
    assert out.returncode == 1 and "Traceback" not in out.stderr
    assert out.stderr.startswith("error: ") and out.stderr.count("\n") == 1


def test_an_output_image_the_disk_has_no_room_for_is_a_sentence_and_no_cut_off_file(tmp_path, monkeypatch):
    import errno

    from lora_workbench.errors import DiskFull

    real_fdopen = os.fdopen

    class HalfWritten:  # what a full disk does: part of the bytes land, then ENOSPC
        def __init__(self, f):
            self.f = f

        def write(self, data):
            self.f.write(data[: len(data) // 2])
            self.f.flush()
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.f.close()

    monkeypatch.setattr(os, "fdopen", lambda fd, mode: HalfWritten(real_fdopen(fd, mode)))
    with pytest.raises(DiskFull, match=r"The disk is full: .*out\.png could not be written"):
        qc._save_new(str(tmp_path), "out.png", PNG * 1000)
    assert os.listdir(tmp_path) == []
