"""The features through the nodes in a stubbed ComfyUI with a fake sd-scripts: the GPU hand-over, files a
workflow names (confined), the kohya_ss GUI config node, and per-subset caption options written by
DatasetSubsetWeights."""

from __future__ import annotations

import json
import sys
import types
from pathlib import Path

import pytest

from lora_workbench.dataset import dataset_toml
from lora_workbench.dataset.dataset_toml import tomllib
from lora_workbench.errors import PathNotAllowed, ValidationError
from lora_workbench.training import train
from lora_workbench.training.options import OptionSet
from tests.unit import train_fakes as fakes

GUI_CONFIG = {
    "LoRA_type": "Kohya LoCon",
    "conv_dim": 8,
    "conv_alpha": 4,
    "network_dim": 16,
    "optimizer": "Prodigy",
    "optimizer_args": '"decouple=True" "weight_decay=0.01"',
    "max_resolution": "64,64",
    "epoch": 2,
    "shuffle_caption": True,
    "output_dir": "/etc",
}


@pytest.fixture
def node_env(pack, comfy, roots, tmp_path, monkeypatch):
    fakes.make_kohya(tmp_path, monkeypatch)
    monkeypatch.setenv("LORA_WORKBENCH_CACHE_DIR", str(tmp_path / "cache"))
    for var in (
        "FAKE_SD_FAIL",
        "FAKE_SD_NO_FILE",
        "FAKE_SD_SLEEP",
        "FAKE_SD_CHILD_PIDFILE",
        "FAKE_SD_LAUNCHES",
    ):
        monkeypatch.delenv(var, raising=False)
    fake_torch = types.ModuleType("torch")
    fake_torch.from_numpy = lambda a: a
    monkeypatch.setitem(sys.modules, "torch", fake_torch)
    fakes.write_checkpoint(comfy.base / "models" / "checkpoints" / "sd15.safetensors", fakes.sd1_tensors())
    project = fakes.make_project(tmp_path / "projects")
    node = pack.nodes.kohya_lora_train.KohyaLoRATrain()
    return node, dataset_toml.dataset_from_toml(project / "dataset.toml", project)


def run_node(node, ds, **kw):
    args = dict(epochs=1, width=64, height=64, network_dim=4, network_alpha=4.0)
    return node.train(ds, "sd15.safetensors", unique_id="7", **{**args, **kw})


def cpu_chain(pack, **values):
    launch = pack.nodes.kohya_train_options.NODE_CLASS_MAPPINGS["KohyaLaunchOptions"]()
    (opts,) = launch.collect(device="cpu", launcher="python", unique_id="9")
    return opts.add(values, "test") if values else opts


def test_comfyuis_models_are_unloaded_before_a_gpu_run_only(node_env, pack, comfy, monkeypatch):
    node, ds = node_env
    run_node(node, ds, options=cpu_chain(pack))
    assert comfy.memory_calls == []  # a CPU run leaves ComfyUI's models where they are
    calls = []
    monkeypatch.setattr(train, "probe_device", lambda python: "gpu")
    monkeypatch.setattr(train, "_launch", lambda p, ctl, rec: calls.append(list(comfy.memory_calls)) or 1 / 0)
    launch = pack.nodes.kohya_train_options.NODE_CLASS_MAPPINGS["KohyaLaunchOptions"]()
    (gpu,) = launch.collect(device="gpu", launcher="python", unique_id="9")
    with pytest.raises(ZeroDivisionError):
        run_node(node, ds, epochs=2, options=gpu)
    assert calls == [["unload_all_models", "soft_empty_cache"]]  # before sd-scripts started


def test_network_weights_from_a_workflow_is_confined(node_env, pack, tmp_path_factory):
    node, ds = node_env
    outside = tmp_path_factory.mktemp("outside") / "x.safetensors"
    outside.write_bytes(b"{}")
    with pytest.raises(PathNotAllowed, match="outside the allowed roots"):
        run_node(node, ds, options=cpu_chain(pack, network_weights=str(outside)))
    with pytest.raises(PathNotAllowed, match="outside the allowed roots"):
        run_node(node, ds, options=cpu_chain(pack, resume="/etc/passwd"))


def test_the_gui_config_node_imports_a_file_and_reports_every_key(node_env, pack, roots):
    node, ds = node_env
    path = roots / "gui.json"
    path.write_text(json.dumps(GUI_CONFIG))
    gui = pack.NODE_CLASS_MAPPINGS["KohyaGuiConfigOptions"]()
    out = gui.collect(config_file=str(path), options=cpu_chain(pack), unique_id="3")
    options, report = out["result"]
    assert options.base["network_type"] == "locon" and options.base["conv_dim"] == 8
    assert options.base["optimizer_args"] == "decouple=True weight_decay=0.01"
    assert "skipped    output_dir: a path in the config is never followed" in report
    assert out["ui"]["text"] == [report] and report.startswith("kohya_ss config gui.json: ")
    # The config's settings replace the trainer's widgets at their defaults (network_dim 32); a widget
    # moved off its default (epochs 1) and an option node in the chain win over them.
    chained = options.add({"keep_tokens": 1}, "captions node")
    lora = run_node(node, ds, network_dim=32, options=chained)["result"][0]
    run_dir = Path(lora.output_dir)
    cfg = tomllib.loads((run_dir / "config.toml").read_text())
    assert cfg["network"]["network_dim"] == 16 and "network_args" not in cfg["network"]
    command_line = (run_dir / "command.txt").read_text()
    assert "--network_args conv_dim=8" in command_line  # key=value args travel on the argv
    assert cfg["optimizer"]["optimizer_type"] == "Prodigy" and cfg["training"]["max_train_steps"] == 4
    copy = tomllib.loads((run_dir / "dataset.toml").read_text())
    assert copy["general"]["shuffle_caption"] is True and copy["general"]["keep_tokens"] == 1
    override = OptionSet().with_base({"optimizer": "Lion"}, "cfg").add({"optimizer": "AdamW"}, "node")
    assert override.settings()["optimizer"] == "AdamW"
    with pytest.raises(ValidationError, match="Two kohya_ss configs"):
        gui.collect(config_file=str(path), options=options, unique_id="4")


def test_the_gui_config_node_refuses_files_outside_the_roots_and_non_json(
    node_env, pack, tmp_path_factory, roots
):
    gui = pack.NODE_CLASS_MAPPINGS["KohyaGuiConfigOptions"]()
    outside = tmp_path_factory.mktemp("elsewhere") / "gui.json"
    outside.write_text("{}")
    with pytest.raises(PathNotAllowed):
        gui.collect(config_file=str(outside), unique_id="3")
    (roots / "big.json").write_bytes(b" " * (1 << 20) + b"{}")
    with pytest.raises(ValidationError, match="larger than 1 MiB"):
        gui.collect(config_file=str(roots / "big.json"), unique_id="3")
    (roots / "list.json").write_text("[1, 2]")
    with pytest.raises(ValidationError, match="one JSON object"):
        gui.collect(config_file=str(roots / "list.json"), unique_id="3")
    with pytest.raises(ValidationError, match="Pick a kohya_ss preset or give a config_file"):
        gui.collect(unique_id="3")


def test_the_gui_config_node_lists_the_presets_of_the_configured_gui(
    pack, comfy, roots, tmp_path, monkeypatch
):
    gui_dir = tmp_path / "kohya_ss"
    (gui_dir / "presets" / "lora" / "user_presets").mkdir(parents=True)
    (gui_dir / "presets" / "lora" / "mine.json").write_text(json.dumps(GUI_CONFIG))
    (gui_dir / "presets" / "lora" / "user_presets" / "theirs.json").write_text("{}")
    monkeypatch.setenv("KOHYA_SS_GUI_PATH", str(gui_dir))
    cls = pack.NODE_CLASS_MAPPINGS["KohyaGuiConfigOptions"]
    assert cls.INPUT_TYPES()["required"]["preset"][0] == ["(none)", "mine", "user_presets/theirs"]
    options, report = cls().collect(preset="mine", unique_id="3")["result"]
    assert options.base["epochs"] == 2 and "mapped     LoRA_type: network_type = 'locon'" in report
    with pytest.raises(ValidationError, match="not in"):
        cls().collect(preset="../../etc/passwd", unique_id="3")


def test_dataset_subset_weights_writes_caption_options_into_every_subset(pack, comfy, roots):
    from PIL import Image

    comfy.start_server()
    for name in ("2_Cat", "1_Dog"):
        folder = roots / "proj" / "images" / name
        folder.mkdir(parents=True)
        for i in range(2):
            Image.new("RGB", (64, 64)).save(folder / f"{i}.png")
            (folder / f"{i}.txt").write_text(f"{name}, solo")
    captions = pack.nodes.kohya_train_options.NODE_CLASS_MAPPINGS["KohyaCaptionOptions"]()
    (opts,) = captions.collect(
        shuffle_caption=True, keep_tokens=1, flip_aug=True, color_aug=True, unique_id="5"
    )
    node = pack.NODE_CLASS_MAPPINGS["DatasetSubsetWeights"]()
    ds, _ = node.prepare(str(roots / "proj"), "", 64, 64, caption_options=opts, unique_id="6")["result"]
    data = tomllib.loads(Path(ds.toml_path).read_text())
    for sub in data["datasets"][0]["subsets"]:
        assert sub["shuffle_caption"] is True and sub["keep_tokens"] == 1
        assert sub["flip_aug"] is True and sub["color_aug"] is True
    assert train.dataset_augments(ds.toml_path) == ("color_aug",)  # the trainer turns latent caching off
    plain, _ = node.prepare(str(roots / "proj"), "", 64, 64, unique_id="6")["result"]
    assert plain.fingerprint != ds.fingerprint
    optimizer = pack.nodes.kohya_train_options.NODE_CLASS_MAPPINGS["KohyaOptimizerOptions"]()
    (wrong,) = optimizer.collect(optimizer="Lion", unique_id="8")
    with pytest.raises(ValidationError, match="optimizer is not a caption or augmentation setting"):
        node.prepare(str(roots / "proj"), "", 64, 64, caption_options=wrong, unique_id="6")


def test_the_trainers_text_names_the_config_keys_its_explicit_settings_won_over(node_env, pack, roots):
    node, ds = node_env
    path = roots / "gui.json"
    path.write_text(json.dumps(GUI_CONFIG))
    gui = pack.NODE_CLASS_MAPPINGS["KohyaGuiConfigOptions"]()
    options, _report = gui.collect(config_file=str(path), options=cpu_chain(pack), unique_id="3")["result"]
    chained = options.add({"optimizer": "AdamW"}, "Kohya Optimizer Options (node 5)")
    text = run_node(node, ds, options=chained)["ui"]["text"]
    assert "kohya_ss config overridden epoch: epochs from Kohya LoRA Train's epochs widget wins" in text
    assert (
        "kohya_ss config overridden optimizer: optimizer from Kohya Optimizer Options (node 5) wins" in text
    )
