"""Saved workflows keep training what they trained when the `repeats` widget arrived.

UI-format workflows keep widget values by position: one saved before `repeats` existed has 9 values,
and the frontend leaves the new widgets at their defaults. The web editor (migrateRepeats) then sets
`repeats` to `weights` when weights were typed in, else `folders`; API-format prompts (and the CLI's
own UI -> API conversion) simply lack the input, and the node's default (None) does the same.
The JavaScript half runs under Node with a stub for ComfyUI's api.js.
"""

from __future__ import annotations

import copy
import json
import shutil
import subprocess
from pathlib import Path

import pytest

from lora_workbench.client import workflow as wf
from tests.unit.dataset.dataset_fakes import make_subset

REPO = Path(__file__).resolve().parents[3]
EXAMPLE = REPO / "example_workflows" / "train_a_lora_from_a_folder_of_photos.json"
OLD_WIDGETS = [
    "project_folder",
    "weights",
    "width",
    "height",
    "enable_bucket",
    "apply_mode",
    "batch_size",
    "epochs",
    "max_items_per_epoch",
]


def object_info(cls) -> dict:
    spec = cls.INPUT_TYPES()
    return {
        "DatasetSubsetWeights": {
            "input": spec,
            "input_order": {k: list(v) for k, v in spec.items() if k in ("required", "optional")},
        }
    }


def old_ui_workflow(project: str, weights: str) -> dict:
    """The example workflow's DatasetSubsetWeights node as saved before `repeats` existed (9 values)."""
    data = json.loads(EXAMPLE.read_text(encoding="utf-8"))
    node = next(n for n in data["nodes"] if n["type"] == "DatasetSubsetWeights")
    node = copy.deepcopy(node)
    node["widgets_values"] = [project, weights, 64, 64, False, "toml (non-destructive)", 1, 1, 0]
    node["inputs"] = []
    node["outputs"] = [{"name": "dataset", "type": "LORA_DATASET", "links": []}]
    return {"last_node_id": node["id"], "last_link_id": 0, "nodes": [node], "links": [], "version": 0.4}


@pytest.fixture
def node(pack, comfy, roots):
    comfy.start_server()
    yield pack.NODE_CLASS_MAPPINGS["DatasetSubsetWeights"]()
    comfy.modules["server"].PromptServer.instance = None


@pytest.fixture
def alice_bob(roots):
    root = roots / "proj"
    make_subset(root, "10_alice", 10)
    make_subset(root, "2_bob", 5)
    return root


@pytest.mark.parametrize(
    "weights, mode, repeats", [("", "folders", (10, 2)), ("alice: 1\nbob: 1", "weights", (1, 2))]
)
def test_an_old_ui_workflow_converts_and_keeps_its_training(node, alice_bob, weights, mode, repeats):
    api = wf.ui_to_api(old_ui_workflow(str(alice_bob), weights), object_info(type(node)))
    (entry,) = api.values()
    assert "repeats" not in entry["inputs"] and entry["inputs"]["weights"] == weights
    ds, text = node.prepare(**entry["inputs"])["result"]
    assert f"repeats {mode}" in text.splitlines()[1]
    assert tuple(s.repeats for s in ds.subsets) == repeats


def test_a_new_ui_workflow_keeps_the_mode_it_saved(node, alice_bob):
    data = old_ui_workflow(str(alice_bob), "alice: 1\nbob: 1")
    data["nodes"][0]["widgets_values"] += ["folders", 0, "error", ".txt"]
    (entry,) = wf.ui_to_api(data, object_info(type(node))).values()
    assert entry["inputs"]["repeats"] == "folders"
    ds, _ = node.prepare(**entry["inputs"])["result"]
    assert [s.repeats for s in ds.subsets] == [10, 2]


def plain_folder(roots):
    root = roots / "mochi"
    make_subset(root, "x", 3)
    flat = root / "images"
    for sub in (flat / "x").iterdir():
        sub.rename(flat / sub.name)
    (flat / "x").rmdir()
    return root


def test_a_workflow_saved_before_folder_repeats_trains_a_plain_folder_once_per_epoch(node, roots):
    data = old_ui_workflow(str(plain_folder(roots)), "")
    data["nodes"][0]["widgets_values"] += ["folders", 0, "error", ".txt"]
    (entry,) = wf.ui_to_api(data, object_info(type(node))).values()
    assert "folder_repeats" not in entry["inputs"]
    ds, _ = node.prepare(**entry["inputs"])["result"]
    assert [(s.name, s.repeats) for s in ds.subsets] == [("mochi", 1)]


def test_a_workflow_saved_with_folder_repeats_keeps_it(node, roots):
    data = old_ui_workflow(str(plain_folder(roots)), "")
    data["nodes"][0]["widgets_values"] += ["folders", 0, "error", ".txt", 5]
    (entry,) = wf.ui_to_api(data, object_info(type(node))).values()
    assert entry["inputs"]["folder_repeats"] == 5 and entry["inputs"]["caption_extension"] == ".txt"
    ds, _ = node.prepare(**entry["inputs"])["result"]
    assert [s.repeats for s in ds.subsets] == [5]


def test_an_api_prompt_without_repeats_uses_weights_when_typed_in(node, alice_bob):
    inputs = dict(
        zip(
            OLD_WIDGETS,
            [str(alice_bob), "alice: 3", 64, 64, False, "toml (non-destructive)", 1, 1, 0],
            strict=False,
        )
    )
    ds, text = node.prepare(**inputs)["result"]
    assert "repeats weights" in text and ds.subsets[0].share == pytest.approx(0.75)


# --------------------------------------------------------------------------- the browser half
RUNNER = r"""
import { migrateRepeats, seedWeightsText, setWeightLine } from "./ext/web/weights_editor.js";
const widgets = (names, values) => names.map((name, i) => ({ name, value: values[i] }));
const names = %s;
const fresh = () => ({ widgets: [...widgets([...names, "repeats", "target_steps", "wrong_size", "caption_extension"],
  ["p", "", 512, 512, false, "toml (non-destructive)", 1, 3, 0, "folders", 0, "error", ".txt"]),
  { name: "lora_workbench_weights_editor", serialize: false, value: null }] });
const out = {};
for (const [label, saved] of Object.entries({
  old_with_weights: ["p", "alice: 2", 512, 512, false, "toml (non-destructive)", 1, 3, 0],
  old_empty: ["p", "  ", 512, 512, false, "toml (non-destructive)", 1, 3, 0],
  new_saved: ["p", "alice: 2", 512, 512, false, "toml (non-destructive)", 1, 3, 0, "equal", 0, "error", ".txt"],
})) {
  const node = fresh();
  saved.forEach((v, i) => { node.widgets[i].value = v; });  // what LGraphNode.configure does
  const changed = migrateRepeats(node, saved);
  out[label] = { changed, repeats: node.widgets.find((w) => w.name === "repeats").value };
}
out.seeded = seedWeightsText("alice: 2  # mine", { alice: 10, bob: 1, carol: 2.5 });
out.set = setWeightLine(out.seeded, "bob", 3);
out.spaced = seedWeightsText("Alice: 2", { " Alice ": 10, bob: 1 });
out.spacedSet = setWeightLine(out.spaced, " Alice ", 4);
console.log(JSON.stringify(out));
"""


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")
def test_the_editor_migrates_old_workflows_and_seeds_weights_when_a_slider_moves(tmp_path):
    (tmp_path / "ext").mkdir()
    shutil.copytree(REPO / "web", tmp_path / "ext" / "web")
    (tmp_path / "scripts").mkdir()
    (tmp_path / "scripts" / "api.js").write_text("export const api = {};\n")
    (tmp_path / "ext" / "package.json").write_text('{"type": "module"}')
    (tmp_path / "package.json").write_text('{"type": "module"}')
    (tmp_path / "run.js").write_text(RUNNER % json.dumps(OLD_WIDGETS))
    run = subprocess.run(["node", str(tmp_path / "run.js")], capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    out = json.loads(run.stdout)
    assert out["old_with_weights"] == {"changed": True, "repeats": "weights"}
    assert out["old_empty"] == {"changed": True, "repeats": "folders"}
    assert out["new_saved"] == {"changed": False, "repeats": "equal"}
    assert out["seeded"].splitlines() == ["alice: 2  # mine", "bob: 1", "carol: 2.5"]
    assert out["set"].splitlines() == ["alice: 2  # mine", "bob: 3", "carol: 2.5"]
    assert out["spacedSet"].splitlines() == ["Alice: 4", "bob: 1"]  # a folder `3_ Alice ` is `Alice`
