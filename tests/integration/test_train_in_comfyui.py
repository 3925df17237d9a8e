"""KohyaLoRATrain in a REAL ComfyUI, queued over HTTP like the API does: a real sd-scripts run (CPU,
random SD1.5, 64x64) that writes the LoRA, and a longer run interrupted with POST /interrupt that ends
"interrupted" with no trainer process left.

The dataset comes from DatasetSubsetWeights. Until that node exists, a test-only node
(`WorkbenchTestDataset`, written into a second server's custom_nodes) builds the LORA_DATASET from the
project's dataset.toml with the core's own reader, so the trainer node is still exercised end to end.
"""

from __future__ import annotations

import json
import os
import shutil
import time
import urllib.request
import uuid
from pathlib import Path

import pytest

from .conftest import REPO, start_comfy, stop_comfy

pytestmark = pytest.mark.integration

HARNESS_HOME = Path(os.environ.get("HARNESS_HOME", str(Path.home() / "harness")))
CKPT = "random_sd15.safetensors"

HELPER_NODE = '''
import sys
sys.path.insert(0, {repo!r})
from lora_workbench.train import dataset_from_toml


class WorkbenchTestDataset:
    CATEGORY = "testing"
    FUNCTION = "run"
    RETURN_TYPES = ("LORA_DATASET",)

    @classmethod
    def INPUT_TYPES(cls):
        return {{"required": {{"project": ("STRING", {{"default": ""}})}}}}

    def run(self, project):
        return (dataset_from_toml(project + "/dataset.toml", project),)


NODE_CLASS_MAPPINGS = {{"WorkbenchTestDataset": WorkbenchTestDataset}}
'''


def make_project(project: Path, repeats: int = 1) -> None:
    src = HARNESS_HOME / "datasets" / "smoke" / "images" / "2_testsubject"
    if not src.is_dir():
        pytest.skip(f"no smoke dataset at {src}: run ../shared/harness/setup.sh")
    sub = project / "images" / f"{repeats}_testsubject"
    shutil.copytree(src, sub)
    (project / "dataset.toml").write_text(
        '[general]\ncaption_extension = ".txt"\nenable_bucket = false\n\n[[datasets]]\nresolution = [64, 64]\n'
        f'batch_size = 1\n\n  [[datasets.subsets]]\n  image_dir = "{sub.as_posix()}"\n'
        f'  class_tokens = "testsubject"\n  num_repeats = {repeats}\n', encoding="utf-8")


@pytest.fixture(scope="module")
def server(request, comfyui_dir, comfy_python, tmp_path_factory, kohya_dir, kohya_python, test_checkpoint,
           tokenizer_cache):
    """The shared server when the pack has DatasetSubsetWeights, else one with the test-only dataset node."""
    if (REPO / "nodes" / "dataset_subset_weights.py").is_file():
        shared = request.getfixturevalue("comfy_server")
        info = shared.get_json("/object_info")
        for name in ("KohyaLoRATrain", "DatasetSubsetWeights"):
            if name not in info:
                pytest.fail(f"{name} is not registered:\n{shared.log()[-3000:]}")
        yield shared, info, "DatasetSubsetWeights"
        return
    home = tmp_path_factory.mktemp("comfy-train-home")
    (home / "custom_nodes").mkdir()
    (home / "custom_nodes" / "workbench_test_dataset.py").write_text(HELPER_NODE.format(repo=str(REPO)))
    env = {"KOHYA_SS_PATH": str(kohya_dir), "KOHYA_PYTHON": str(kohya_python),
           "LORA_WORKBENCH_TOKENIZER_CACHE": str(tokenizer_cache)}
    own = start_comfy(comfyui_dir, comfy_python, home, env, checkpoint=test_checkpoint)
    try:
        info = own.get_json("/object_info")
        if "KohyaLoRATrain" not in info:
            pytest.fail(f"KohyaLoRATrain is not registered:\n{own.log()[-3000:]}")
        yield own, info, "WorkbenchTestDataset"
    finally:
        stop_comfy(own)


def fill_defaults(info: dict, class_type: str, given: dict) -> dict:
    """`given` plus the default of every other required widget (an API prompt must name them all)."""
    out = dict(given)
    for name, spec in (info[class_type]["input"].get("required") or {}).items():
        if name in out:
            continue
        kind, opts = spec[0], (spec[1] if len(spec) > 1 else {})
        if isinstance(kind, list):
            out[name] = opts.get("default", kind[0] if kind else "")
        elif "default" in opts:
            out[name] = opts["default"]
    return out


def project_input(info: dict, node: str) -> str:
    spec = info[node]["input"]
    names = [n for s in ("required", "optional") for n in (spec.get(s) or {})]
    for name in names:
        if name in ("project", "project_dir", "project_path", "project_folder"):
            return name
    return next(n for n in names if "project" in n or "folder" in n or n.endswith("dir"))


def queue(srv, prompt: dict) -> str:
    body = json.dumps({"prompt": prompt, "client_id": uuid.uuid4().hex}).encode()
    req = urllib.request.Request(srv.url + "/prompt", data=body, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return json.loads(r.read())["prompt_id"]
    except urllib.error.HTTPError as exc:
        raise AssertionError(f"/prompt refused: {exc.read().decode()[:3000]}") from None


def wait_history(srv, prompt_id: str, timeout: float) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        hist = srv.get_json(f"/history/{prompt_id}")
        if prompt_id in hist and hist[prompt_id].get("status", {}).get("completed") is not None:
            entry = hist[prompt_id]
            if entry["status"].get("status_str") in ("success", "error") or entry.get("outputs"):
                return entry
        time.sleep(1)
    raise AssertionError(f"prompt {prompt_id} did not finish in {timeout} s:\n{srv.log()[-3000:]}")


def train_prompt(info: dict, dataset_node: str, project: Path, **train_inputs) -> dict:
    ds_inputs = fill_defaults(info, dataset_node, {project_input(info, dataset_node): str(project)})
    inputs = fill_defaults(info, "KohyaLoRATrain", {"dataset": ["1", 0], "ckpt_name": CKPT, "width": 64,
                                                    "height": 64, "network_dim": 4, "network_alpha": 4.0,
                                                    "device": "cpu", **train_inputs})
    return {"1": {"class_type": dataset_node, "inputs": ds_inputs},
            "2": {"class_type": "KohyaLoRATrain", "inputs": inputs}}


def trainers_alive(marker: str) -> list[int]:
    out = []
    for e in os.listdir("/proc"):
        if not e.isdigit():
            continue
        try:
            cmd = Path(f"/proc/{e}/cmdline").read_bytes().replace(b"\0", b" ").decode("utf-8", "replace")
            state = Path(f"/proc/{e}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            continue
        if "train_network.py" in cmd and marker in cmd and state not in ("Z", "X"):
            out.append(int(e))
    return out


def test_train_node_runs_real_sd_scripts_from_an_api_prompt(server):
    srv, info, dataset_node = server
    project = srv.home / "projects" / "p1"
    make_project(project)
    t0 = time.monotonic()
    pid = queue(srv, train_prompt(info, dataset_node, project, epochs=1, output_name="apitest"))
    entry = wait_history(srv, pid, 600)
    wall = time.monotonic() - t0
    status = entry["status"]
    assert status["status_str"] == "success", json.dumps(status)[:3000] + srv.log()[-3000:]
    lora = project / "output" / "apitest-001" / "apitest.safetensors"
    assert lora.is_file()
    ui = entry["outputs"]["2"]
    print(f"\nComfyUI train prompt: {wall:.1f}s; ui images {ui.get('images')}; text {ui.get('text')}")
    assert ui["images"] and ui["images"][0]["type"] == "temp"
    from lora_workbench.safetensors_header import read_header

    keys = read_header(lora).keys()
    assert any(k.startswith("lora_unet_") for k in keys) and any(k.startswith("lora_te_") for k in keys)

    # The same prompt again: ComfyUI's cache or ours; nothing trains and no new run folder appears.
    t1 = time.monotonic()
    pid2 = queue(srv, train_prompt(info, dataset_node, project, epochs=1, output_name="apitest"))
    assert wait_history(srv, pid2, 120)["status"]["status_str"] == "success"
    print(f"re-queued: {time.monotonic() - t1:.1f}s")
    assert sorted(p.name for p in (project / "output").iterdir()) == ["apitest-001"]


def test_interrupt_stops_the_trainer_and_the_prompt_ends_interrupted(server):
    srv, info, dataset_node = server
    project = srv.home / "projects" / "p2"
    make_project(project)
    pid = queue(srv, train_prompt(info, dataset_node, project, epochs=20, output_name="cancelme"))
    deadline = time.monotonic() + 300
    log = None
    while time.monotonic() < deadline:
        logs = list((project / "output").glob("cancelme-*/train.log"))
        if logs and b"avr_loss=" in logs[0].read_bytes():
            log = logs[0]
            break
        time.sleep(0.5)
    assert log is not None, f"no training step within 300 s:\n{srv.log()[-3000:]}"
    assert trainers_alive(str(project)), "the trainer should be running now"
    t0 = time.monotonic()
    req = urllib.request.Request(srv.url + "/interrupt", data=b"{}", headers={"Content-Type": "application/json"})
    urllib.request.urlopen(req, timeout=30).read()
    entry = wait_history(srv, pid, 120)
    stopped = time.monotonic() - t0
    messages = [m[0] for m in entry["status"].get("messages", [])]
    print(f"\ninterrupt: prompt ended {stopped:.1f}s after POST /interrupt; messages {messages}")
    assert "execution_interrupted" in messages, json.dumps(entry["status"])[:2000]
    left = trainers_alive(str(project))
    end = time.monotonic() + 10
    while left and time.monotonic() < end:
        time.sleep(0.2)
        left = trainers_alive(str(project))
    assert left == [], f"train_network.py still running: {left}"
    assert not (log.parent / "cancelme.safetensors").exists()
    assert json.loads((log.parent / "run.json").read_text())["state"] == "cancelled"
