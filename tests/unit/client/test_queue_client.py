"""The queue client against a local aiohttp server that speaks ComfyUI's message shapes."""

from __future__ import annotations

import asyncio
import json

import pytest
from aiohttp import web

from lora_workbench import cli
from lora_workbench.client import queue_client as qc

PNG = b"\x89PNG\r\n\x1a\nfake"
PROMPT = {
    "3": {"class_type": "KSampler", "inputs": {"seed": 1, "steps": 2}, "_meta": {"title": "KSampler"}},
    "9": {"class_type": "SaveImage", "inputs": {"filename_prefix": "x"}, "_meta": {"title": "Save"}},
}
OBJECT_INFO = {
    "KSampler": {
        "input": {"required": {"seed": ["INT", {"control_after_generate": True}], "steps": ["INT", {}]}},
        "input_order": {"required": ["seed", "steps"]},
    },
    "SaveImage": {"input": {"required": {"filename_prefix": ["STRING", {}]}}},
}


class FakeComfy:
    """POST /prompt, /ws, /history, /view, /object_info, /interrupt, /queue as ComfyUI answers them."""

    def __init__(self, scenario: str):
        self.scenario = scenario
        self.sockets: dict[str, web.WebSocketResponse] = {}
        self.prompts: list[dict] = []
        self.interrupted: list[dict] = []
        self.history: dict = {}
        self.app = web.Application()
        self.app.add_routes(
            [
                web.post("/prompt", self.prompt),
                web.get("/ws", self.ws),
                web.get("/history/{pid}", self.get_history),
                web.get("/view", self.view),
                web.get("/object_info", self.object_info),
                web.post("/interrupt", self.interrupt),
                web.post("/queue", self.queue),
            ]
        )

    async def object_info(self, request):
        return web.json_response(OBJECT_INFO)

    async def ws(self, request):
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        self.sockets[request.query["clientId"]] = ws
        await ws.send_json(
            {"type": "status", "data": {"status": {"exec_info": {"queue_remaining": 0}}, "sid": "x"}}
        )
        async for _msg in ws:
            pass
        return ws

    async def prompt(self, request):
        body = await request.json()
        self.prompts.append(body)
        if self.scenario == "invalid":
            return web.json_response(
                {
                    "error": {
                        "type": "prompt_outputs_failed_validation",
                        "message": "Prompt outputs failed validation",
                        "details": "",
                        "extra_info": {},
                    },
                    "node_errors": {
                        "4": {
                            "errors": [
                                {
                                    "type": "value_not_in_list",
                                    "message": "Value not in list",
                                    "details": "ckpt_name: 'nope.safetensors' not in ['v1-5-pruned-emaonly.safetensors']",
                                    "extra_info": {"input_name": "ckpt_name"},
                                }
                            ],
                            "dependent_outputs": ["9"],
                            "class_type": "CheckpointLoaderSimple",
                        }
                    },
                },
                status=400,
            )
        pid = "p-1"
        asyncio.get_running_loop().create_task(self.execute(body["client_id"], pid))
        return web.json_response({"prompt_id": pid, "number": 0, "node_errors": {}})

    async def execute(self, client_id: str, pid: str):
        ws = self.sockets.get(client_id)
        if self.scenario == "nows":
            ws = None
        send = ws.send_json if ws is not None else None
        messages = [
            ("execution_start", {"prompt_id": pid, "timestamp": 0}),
            ("execution_cached", {"nodes": [], "prompt_id": pid, "timestamp": 0}),
            ("executing", {"node": "12", "display_node": "12", "prompt_id": pid}),
            ("lora_workbench.train", {"step": 4, "total": 8, "loss": 0.12, "text": "step 4/8 · loss 0.120"}),
            ("executing", {"node": "3", "display_node": "3", "prompt_id": pid}),
            ("progress", {"value": 1, "max": 2, "prompt_id": pid, "node": "3"}),
        ]
        outputs = {"9": {"images": [{"filename": "x_00001_.png", "subfolder": "", "type": "output"}]}}
        status = {"status_str": "success", "completed": True, "messages": []}
        if self.scenario == "error":
            err = {
                "prompt_id": pid,
                "node_id": "12",
                "node_type": "KohyaLoRATrain",
                "executed": [],
                "exception_message": "No python found for sd-scripts",
                "exception_type": "WorkbenchError",
                "traceback": ["Traceback...\n", "WorkbenchError: No python found\n"],
                "current_inputs": {},
                "current_outputs": {},
            }
            messages.append(("execution_error", err))
            outputs = {}
            status = {"status_str": "error", "completed": False, "messages": [["execution_error", err]]}
        elif self.scenario == "slow":
            await asyncio.sleep(30)
        else:
            messages += [
                ("executed", {"node": "9", "display_node": "9", "output": outputs["9"], "prompt_id": pid}),
                ("execution_success", {"prompt_id": pid, "timestamp": 1}),
            ]
        messages.append(("executing", {"node": None, "prompt_id": pid}))
        await asyncio.sleep(0.05)
        for kind, data in messages:
            if send is not None:
                await send({"type": kind, "data": data})
                await ws.send_bytes(b"\x00\x00\x00\x01preview")  # binary previews are ignored
        self.history[pid] = {"prompt": [0, pid, {}, {}, []], "outputs": outputs, "status": status, "meta": {}}

    async def get_history(self, request):
        pid = request.match_info["pid"]
        return web.json_response({pid: self.history[pid]} if pid in self.history else {})

    async def view(self, request):
        assert request.query["type"] == "output"
        return web.Response(body=PNG, content_type="image/png")

    async def interrupt(self, request):
        self.interrupted.append(await request.json())
        return web.Response()

    async def queue(self, request):
        return web.Response()


async def start(aiohttp_server, scenario):
    fake = FakeComfy(scenario)
    server = await aiohttp_server(fake.app)
    return fake, f"http://127.0.0.1:{server.port}"


@pytest.mark.asyncio
async def test_a_run_is_followed_over_the_websocket_and_images_are_downloaded(aiohttp_server, tmp_path):
    fake, url = await start(aiohttp_server, "ok")
    lines: list[str] = []
    client = qc.QueueClient(url, out=lines.append)
    result = await client.run_async(PROMPT, timeout=20, download_dir=str(tmp_path / "dl"))
    assert result.status == "success" and result.exit_code == 0
    assert fake.prompts[0]["client_id"] == client.client_id
    assert (tmp_path / "dl/x_00001_.png").read_bytes() == PNG
    text = "\n".join(lines)
    assert "train: step 4/8 · loss 0.120" in text
    assert "running 3 (KSampler)" in text and "3 (KSampler) 1/2" in text


@pytest.mark.asyncio
async def test_validation_errors_name_the_node_and_input(aiohttp_server):
    _fake, url = await start(aiohttp_server, "invalid")
    client = qc.QueueClient(url, out=lambda s: None)
    with pytest.raises(qc.PromptRejected) as err:
        await client.run_async(PROMPT, timeout=20)
    msg = str(err.value)
    assert "Prompt outputs failed validation" in msg
    assert "node 4 (CheckpointLoaderSimple) input ckpt_name: Value not in list" in msg
    assert "nope.safetensors" in msg


@pytest.mark.asyncio
async def test_execution_errors_come_back_with_the_failing_node(aiohttp_server):
    _fake, url = await start(aiohttp_server, "error")
    lines: list[str] = []
    result = await qc.QueueClient(url, out=lines.append).run_async(PROMPT, timeout=20)
    assert result.status == "error" and result.exit_code == 1
    assert qc.format_execution_error(result.error) == (
        "node 12 (KohyaLoRATrain) failed: WorkbenchError: No python found for sd-scripts"
    )
    assert any("No python found" in line for line in lines)


@pytest.mark.asyncio
async def test_without_a_websocket_the_client_polls_history(aiohttp_server, tmp_path):
    _fake, url = await start(aiohttp_server, "nows")
    client = qc.QueueClient(url, out=lambda s: None, poll_interval=0.05)
    result = await client.run_async(PROMPT, timeout=20, download_dir=str(tmp_path), use_websocket=False)
    assert result.status == "success" and len(result.images) == 1
    _fake2, url2 = await start(aiohttp_server, "error")
    client2 = qc.QueueClient(url2, out=lambda s: None, poll_interval=0.05)
    result = await client2.run_async(PROMPT, timeout=20, use_websocket=False)
    assert result.status == "error" and result.error["node_type"] == "KohyaLoRATrain"


@pytest.mark.asyncio
async def test_a_timeout_interrupts_the_run(aiohttp_server):
    fake, url = await start(aiohttp_server, "slow")
    result = await qc.QueueClient(url, out=lambda s: None).run_async(PROMPT, timeout=0.5)
    assert result.status == "timeout" and result.exit_code == 3
    assert fake.interrupted == [{"prompt_id": "p-1"}]


@pytest.mark.asyncio
async def test_cli_queue_exit_codes(aiohttp_server, tmp_path, capsys):
    path = tmp_path / "api.json"
    path.write_text(json.dumps(PROMPT))
    loop = asyncio.get_running_loop()

    async def run_cli(*argv):
        return await loop.run_in_executor(None, cli.main, ["queue", str(path), *argv])

    fake, url = await start(aiohttp_server, "ok")
    assert await run_cli("--server", url, "--set", "KSampler.steps=7", "--download", str(tmp_path / "o")) == 0
    assert fake.prompts[-1]["prompt"]["3"]["inputs"]["steps"] == 7
    assert "saved " in capsys.readouterr().out
    _f, bad = await start(aiohttp_server, "invalid")
    assert await run_cli("--server", bad) == 2
    assert "ckpt_name" in capsys.readouterr().err
    _f, err = await start(aiohttp_server, "error")
    assert await run_cli("--server", err) == 1
    assert await run_cli("--server", url, "--set", "nosuch.steps=1") == 2
    assert await run_cli("--server", "http://127.0.0.1:9") == 4
