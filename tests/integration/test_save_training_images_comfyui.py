"""Save Training Images in a REAL ComfyUI: an IMAGE batch made by core nodes (two EmptyImage colours,
ImageBatch) and a core SolidMask go through Save Training Images, Dataset Subset Weights and a real
KohyaLoRATrain run (CPU, random SD1.5, 64x64, 1 epoch) queued as an API prompt; the images land under
content-hash names with their captions, the subset trains with alpha_mask, and queuing again adds nothing.
"""

from __future__ import annotations

import json
import time

import pytest

from .test_train_in_comfyui import CKPT, fill_defaults, option_nodes, queue, wait_history

pytestmark = pytest.mark.integration

try:
    import tomllib
except ModuleNotFoundError:  # pragma: no cover
    import tomli as tomllib


@pytest.fixture(scope="module")
def server(comfy_server):
    info = comfy_server.get_json("/object_info")
    for name in ("SaveTrainingImages", "DatasetSubsetWeights", "KohyaLoRATrain", "EmptyImage", "SolidMask"):
        if name not in info:
            pytest.fail(f"{name} is not registered:\n{comfy_server.log()[-3000:]}")
    return comfy_server, info


def graph(info: dict, project: str) -> dict:
    chain, link = option_nodes(info, {"device": "cpu", "save_every_n_epochs": 0, "sample_steps": 2}, 20)
    empty = {"width": 64, "height": 64, "batch_size": 1}
    return {
        "1": {"class_type": "EmptyImage", "inputs": {**empty, "color": 0xCC2020}},
        "2": {"class_type": "EmptyImage", "inputs": {**empty, "color": 0x2020CC}},
        "3": {"class_type": "ImageBatch", "inputs": {"image1": ["1", 0], "image2": ["2", 0]}},
        "4": {"class_type": "SolidMask", "inputs": {"value": 1.0, "width": 64, "height": 64}},
        "5": {
            "class_type": "SaveTrainingImages",
            "inputs": {
                "images": ["3", 0],
                "masks": ["4", 0],
                "project_folder": project,
                "subject": "square",
                "repeats": 2,
                "captions": "red square\nblue square",
                "trigger_word": "ohwx",
            },
        },
        "6": {
            "class_type": "DatasetSubsetWeights",
            "inputs": fill_defaults(
                info, "DatasetSubsetWeights", {"project_folder": ["5", 0], "width": 64, "height": 64}
            ),
        },
        "7": {
            "class_type": "KohyaLoRATrain",
            "inputs": fill_defaults(
                info,
                "KohyaLoRATrain",
                {
                    "dataset": ["6", 0],
                    "ckpt_name": CKPT,
                    "width": 64,
                    "height": 64,
                    "network_dim": 4,
                    "network_alpha": 4.0,
                    "epochs": 1,
                    "output_name": "saved",
                    "options": link,
                },
            ),
        },
        **chain,
    }


def test_an_image_batch_from_core_nodes_is_saved_and_trained(server):
    srv, info = server
    project = srv.home / "projects" / "saved"
    t0 = time.monotonic()
    entry = wait_history(srv, queue(srv, graph(info, str(project))), 600)
    assert entry["status"]["status_str"] == "success", json.dumps(entry["status"])[:3000] + srv.log()[-3000:]
    folder = project / "images" / "2_square"
    names = sorted(p.name for p in folder.iterdir())
    captions = sorted(p.read_text() for p in folder.glob("*.txt"))
    print(f"\nsaved and trained in {time.monotonic() - t0:.1f}s: {names}; captions {captions}")
    print("summary:", entry["outputs"]["5"]["text"])
    assert captions == ["ohwx, blue square\n", "ohwx, red square\n"]
    assert len([n for n in names if n.endswith(".png") and len(n) == 24]) == 2
    (sub,) = tomllib.loads((project / "dataset.toml").read_text())["datasets"][0]["subsets"]
    assert sub["alpha_mask"] is True and sub["num_repeats"] == 2
    assert (project / "output" / "saved-001" / "saved.safetensors").is_file()

    entry = wait_history(srv, queue(srv, graph(info, str(project))), 120)  # queued again: nothing new
    assert entry["status"]["status_str"] == "success"
    assert sorted(p.name for p in folder.iterdir()) == names
    assert sorted(p.name for p in (project / "output").iterdir()) == ["saved-001"]
