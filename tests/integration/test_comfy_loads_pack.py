"""The pack in a real ComfyUI: it imports cleanly, and LinkModelLibrary runs through /prompt."""

from __future__ import annotations

import json
import re
import time
import urllib.request
import uuid

import pytest

from .conftest import start_comfy, stop_comfy

pytestmark = pytest.mark.integration

PACK_DIR_NAME = "lora-workbench"  # the custom_nodes entry start_comfy links to this checkout


def import_time_line(log: str) -> str | None:
    """Our pack's line from ComfyUI's "Import times for custom nodes:" block."""
    block = log.split("Import times for custom nodes:", 1)
    if len(block) < 2:
        return None
    for line in block[1].splitlines()[1:40]:
        if PACK_DIR_NAME in line:
            return line.strip()
    return None


def tracebacks_about_us(log: str) -> list[str]:
    """Tracebacks (frames plus the exception line) that mention this pack."""
    out, lines = [], log.splitlines()
    for i, line in enumerate(lines):
        if not line.startswith("Traceback (most recent call last):"):
            continue
        j = i + 1
        while j < len(lines) and lines[j].startswith(" "):
            j += 1
        block = "\n".join(lines[i : j + 1])
        if "lora_workbench" in block or PACK_DIR_NAME in block:
            out.append(block)
    return out


def test_comfyui_imports_the_pack_without_failure(comfyui_dir, comfy_python, tmp_path):
    server = start_comfy(comfyui_dir, comfy_python, tmp_path / "home", extra_args=("--quick-test-for-ci",))
    try:
        server.process.wait(timeout=300)
    finally:
        stop_comfy(server)
    log = server.log()
    failed = [line for line in log.splitlines() if "IMPORT FAILED" in line and PACK_DIR_NAME in line]
    assert not failed, log[-4000:]
    assert not re.search(r"Cannot import .*lora-workbench", log), log[-4000:]
    tracebacks = tracebacks_about_us(log)
    assert not tracebacks, tracebacks[0][:3000]
    line = import_time_line(log)
    assert line is not None, f"our pack is not in the import times:\n{log[-3000:]}"
    print(f"\nComfyUI import time for the pack: {line}")
    assert server.process.returncode == 0, log[-3000:]


def post_json(url: str, body: dict) -> dict:
    req = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(req, timeout=30) as r:
        return json.loads(r.read())


def run_prompt(server, prompt: dict, timeout: float = 120) -> dict:
    queued = post_json(server.url + "/prompt", {"prompt": prompt, "client_id": uuid.uuid4().hex})
    assert not queued.get("node_errors"), queued
    pid = queued["prompt_id"]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        hist = server.get_json(f"/history/{pid}")
        if pid in hist and hist[pid].get("status", {}).get("completed") is not None:
            entry = hist[pid]
            if entry["status"].get("status_str") == "success":
                return entry
            raise AssertionError(json.dumps(entry["status"], indent=1)[:4000])
        time.sleep(0.3)
    raise AssertionError(f"prompt {pid} did not finish in {timeout} s:\n{server.log()[-3000:]}")


def link_prompt(library: str, watch: bool) -> dict:
    return {
        "1": {
            "class_type": "LinkModelLibrary",
            "inputs": {
                "library": library,
                "link_comfyui": True,
                "watch": watch,
                "init_if_missing": True,
                "dry_run": False,
                "a1111_path": "",
                "forge_path": "",
            },
        }
    }


def test_link_model_library_runs_in_a_real_server(comfyui_dir, comfy_python, tmp_path):
    home = tmp_path / "home"
    # --base-directory: the server's own models folder is home/models (inside the allowed root).
    server = start_comfy(comfyui_dir, comfy_python, home, extra_args=("--base-directory", str(home)))
    try:
        info = server.get_json("/object_info/LinkModelLibrary")["LinkModelLibrary"]
        assert info["output_node"] is True and info["category"].startswith("LoRA Workbench")
        lib = home / "library"
        (lib / "loras").mkdir(parents=True)
        (lib / "loras" / "libstyle.safetensors").write_bytes(b"\0" * 16)
        assert "libstyle.safetensors" not in server.get_json("/models/loras")

        entry = run_prompt(server, link_prompt(str(lib), watch=True))
        text = entry["outputs"]["1"]["text"][0]
        print(f"\nnode report:\n{text}")
        assert text.startswith("created 1,"), text
        assert (home / "models/loras/libstyle.safetensors").is_symlink()
        assert "libstyle.safetensors" in server.get_json("/models/loras")

        # watch on: a new download shows in the list without a restart
        (lib / "loras" / "downloaded.safetensors").write_bytes(b"\0" * 16)
        deadline = time.monotonic() + 30
        while "downloaded.safetensors" not in server.get_json("/models/loras"):
            assert time.monotonic() < deadline, server.log()[-3000:]
            time.sleep(0.2)
        run_prompt(server, link_prompt(str(lib), watch=False))  # stops the watcher
        assert not tracebacks_about_us(server.log()), server.log()[-4000:]
    finally:
        stop_comfy(server)
