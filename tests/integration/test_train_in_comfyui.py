"""KohyaLoRATrain in a REAL ComfyUI, queued over HTTP like the API does: a real sd-scripts run (CPU,
random SD1.5, 64x64) with settings from chained option nodes that writes the LoRA, and a longer run
queued as an API prompt of the first layout (old input names) interrupted with POST /interrupt that
ends "interrupted" with no trainer process left.

The dataset comes from the pack's own DatasetSubsetWeights node, as a user's graph has it.
"""

from __future__ import annotations

import json
import shutil
import time
import urllib.request
import uuid
from pathlib import Path

import pytest

from .conftest import smoke_images_dir, trainers_alive

pytestmark = pytest.mark.integration

CKPT = "random_sd15.safetensors"


def make_project(project: Path, repeats: int = 1) -> None:
    src = smoke_images_dir()
    if not src.is_dir():
        pytest.skip(
            f"no small dataset at {src}: set LORA_WORKBENCH_TEST_DATASET (scripts/integration-env.sh)"
        )
    sub = project / "images" / f"{repeats}_testsubject"
    shutil.copytree(src, sub)
    # no dataset.toml: DatasetSubsetWeights writes its own (and refuses to overwrite a foreign one)


@pytest.fixture(scope="module")
def server(comfy_server):
    """The shared real ComfyUI (pack + sd-scripts configured) and its /object_info."""
    info = comfy_server.get_json("/object_info")
    for name in ("KohyaLoRATrain", "DatasetSubsetWeights"):
        if name not in info:
            pytest.fail(f"{name} is not registered:\n{comfy_server.log()[-3000:]}")
    return comfy_server, info, "DatasetSubsetWeights"


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


def option_nodes(info: dict, options: dict, first_id: int = 10) -> tuple[dict, list | None]:
    """The option nodes (one per group, chained) that give `options`; and the link for the trainer."""
    from lora_workbench.training.settings import GROUP, SETTING

    prompt, link = {}, None
    by_node: dict[str, dict] = {}
    for name, value in options.items():
        by_node.setdefault(GROUP[SETTING[name].group].node, {})[name] = value
    for i, (node, values) in enumerate(by_node.items()):
        assert node in info, f"{node} is not registered"
        nid = str(first_id + i)
        prompt[nid] = {"class_type": node, "inputs": {**values, **({"options": link} if link else {})}}
        link = [nid, 0]
    return prompt, link


def train_prompt(info: dict, dataset_node: str, project: Path, options=None, **train_inputs) -> dict:
    """A dataset node and the trainer; `options` go through option nodes, other keyword arguments are
    the trainer's own inputs (old input names included: API prompts of the first layout)."""
    chain, link = option_nodes(info, options or {})
    ds_values = {project_input(info, dataset_node): str(project)}
    ds_spec = info[dataset_node]["input"]
    for name in ("width", "height"):  # the tiny 64x64 dataset must be validated at 64x64
        if name in ds_spec.get("required", {}) or name in ds_spec.get("optional", {}):
            ds_values[name] = 64
    ds_inputs = fill_defaults(info, dataset_node, ds_values)
    inputs = fill_defaults(
        info,
        "KohyaLoRATrain",
        {
            "dataset": ["1", 0],
            "ckpt_name": CKPT,
            "width": 64,
            "height": 64,
            "network_dim": 4,
            "network_alpha": 4.0,
            **({"options": link} if link else {}),
            **train_inputs,
        },
    )
    return {
        "1": {"class_type": dataset_node, "inputs": ds_inputs},
        "2": {"class_type": "KohyaLoRATrain", "inputs": inputs},
        **chain,
    }


def test_train_node_runs_real_sd_scripts_from_an_api_prompt(server):
    srv, info, dataset_node = server
    project = srv.home / "projects" / "p1"
    make_project(project)
    t0 = time.monotonic()
    options = {"device": "cpu", "save_every_n_epochs": 0, "sample_steps": 2}
    pid = queue(srv, train_prompt(info, dataset_node, project, options, epochs=1, output_name="apitest"))
    entry = wait_history(srv, pid, 600)
    wall = time.monotonic() - t0
    status = entry["status"]
    assert status["status_str"] == "success", json.dumps(status)[:3000] + srv.log()[-3000:]
    lora = project / "output" / "apitest-001" / "apitest.safetensors"
    assert lora.is_file()
    spec = json.loads((lora.parent / "run.json").read_text())["spec"]
    assert (spec["device"], spec["save_every_n_epochs"], spec["sample_steps"]) == ("cpu", 0, 2)
    ui = entry["outputs"]["2"]
    print(f"\nComfyUI train prompt: {wall:.1f}s; ui images {ui.get('images')}; text {ui.get('text')}")
    assert ui["images"] and ui["images"][0]["type"] == "temp"
    from lora_workbench.modelfiles.safetensors_header import read_header

    keys = read_header(lora).keys()
    assert any(k.startswith("lora_unet_") for k in keys) and any(k.startswith("lora_te_") for k in keys)

    # The same prompt again: ComfyUI's cache or ours; nothing trains and no new run folder appears.
    t1 = time.monotonic()
    pid2 = queue(srv, train_prompt(info, dataset_node, project, options, epochs=1, output_name="apitest"))
    assert wait_history(srv, pid2, 120)["status"]["status_str"] == "success"
    print(f"re-queued: {time.monotonic() - t1:.1f}s")
    assert sorted(p.name for p in (project / "output").iterdir()) == ["apitest-001"]


def test_interrupt_stops_the_trainer_and_the_prompt_ends_interrupted(server):
    srv, info, dataset_node = server
    project = srv.home / "projects" / "p2"
    make_project(project)
    # An API prompt of the first layout: device etc. as the trainer's own inputs (hidden inputs now).
    pid = queue(
        srv, train_prompt(info, dataset_node, project, epochs=20, output_name="cancelme", device="cpu")
    )
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
    req = urllib.request.Request(
        srv.url + "/interrupt", data=b"{}", headers={"Content-Type": "application/json"}
    )
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
