"""Importing kohya_ss GUI configs: every key used, mapped, refused or skipped with its reason; the
result passes our own checks. The real presets are read from a kohya_ss GUI checkout outside the project
(KOHYA_SS_GUI_PATH, e.g. a clone of bmaltais/kohya_ss); never copied into this repository."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from lora_workbench import cli
from lora_workbench.errors import ValidationError
from lora_workbench.training.backends.sd_scripts import kohya_gui
from lora_workbench.training.options import TrainOptions
from lora_workbench.training.settings import SETTING
from lora_workbench.training.validation import check_family, validate
from tests.unit import train_fakes as fakes


def test_every_key_is_accounted_for_once():
    data = {
        "LoRA_type": "LyCORIS/LoKr",
        "factor": 8,
        "use_cp": False,
        "LyCORIS_preset": "attn-mlp",
        "conv_dim": 4,
        "conv_alpha": 1,
        "network_dim": 32,
        "max_resolution": "768,512",
        "train_batch_size": 2,
        "epoch": 10,
        "max_train_epochs": "",
        "lr_scheduler": "cosine",
        "lr_warmup": 10,
        "optimizer": "AdamW",
        "optimizer_args": "weight_decay=0.1 d_coef=2",
        "clip_skip": 2,
        "xformers": "sdpa",
        "additional_parameters": "--max_grad_norm=0 --network_train_unet_only --log_prefix=x",
        "pretrained_model_name_or_path": "/models/x.safetensors",
        "huggingface_token": "secret",
        "something_new": 1,
    }
    imp = kohya_gui.import_config(data, "test.json")
    keys = [k for k, _ in imp.used + imp.mapped + imp.skipped + imp.refused]
    assert set(keys) >= set(data) - {"additional_parameters"}
    v = imp.values
    assert v["network_type"] == "lycoris_lokr" and v["conv_dim"] == 4 and v["network_dim"] == 32
    assert v["network_args"] == "factor=8 preset=attn-mlp"
    assert (v["width"], v["height"], v["batch_size"], v["epochs"]) == (768, 512, 2, 10)
    assert v["lr_warmup_ratio"] == 0.1 and v["clip_skip"] == 2 and v["attention"] == "sdpa"
    assert v["optimizer_args"] == "weight_decay=0.1" and v["max_grad_norm"] == 0.0
    assert v["train_text_encoder"] is False
    skipped = dict(imp.skipped)
    assert dict(imp.refused)["optimizer_args"].startswith("'d_coef=2': d_coef is not read by the AdamW")
    assert skipped["pretrained_model_name_or_path"].startswith("a path in the config is never followed")
    assert skipped["huggingface_token"] == "uploads are not done by this pack"
    assert skipped["something_new"] == "no setting of this name here"
    assert "additional_parameters --log_prefix" in skipped
    validate(TrainOptions.from_values(v))


def test_a_value_a_setting_refuses_is_refused_naming_key_and_value_and_empty_ones_are_skipped():
    imp = kohya_gui.import_config({"seed": "", "mixed_precision": "fp8", "network_dim": 100000})
    refused = dict(imp.refused)
    assert refused["mixed_precision"].startswith("mixed_precision is 'fp8'; choose one of")
    assert (
        refused["network_dim"] == "network_dim is 100000; set it between 1 and 1024 (the config has 100000)"
    )
    assert dict(imp.skipped)["seed"] == "empty in the config" and imp.values == {}
    with pytest.raises(
        ValidationError, match=r"The kohya_ss config config asks for training .*mixed_precision"
    ):
        imp.check()


def test_a_network_type_this_pack_does_not_train_is_refused():
    imp = kohya_gui.import_config({"LoRA_type": "LyCORIS/Something", "network_dim": 16})
    assert imp.values == {"network_dim": 16}
    assert dict(imp.refused)["LoRA_type"].startswith("LyCORIS/Something is not trained by this pack")


def test_odd_sizes_are_rounded_to_what_sd_scripts_takes():
    imp = kohya_gui.import_config({"max_resolution": "512,650", "enable_bucket": True})
    assert (imp.values["width"], imp.values["height"]) == (512, 648)
    assert "height 650 rounded down to a multiple of 8" in imp.report()


def test_the_cli_imports_a_gui_config_and_flags_win(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("LORA_WORKBENCH_SETTINGS", str(tmp_path / "none.json"))
    fakes.make_kohya(tmp_path, monkeypatch)
    project = fakes.make_project(tmp_path)
    ckpt = fakes.write_checkpoint(tmp_path / "sd15.safetensors", fakes.sd1_tensors())
    config = tmp_path / "gui.json"
    config.write_text(
        json.dumps({"network_dim": 16, "optimizer": "Lion", "max_resolution": "64,64", "epoch": 1})
    )
    argv = ["train", str(project), "--base", str(ckpt), "--kohya-json", str(config), "--device", "cpu"]
    rc = cli.main([*argv, "--optimizer", "AdamW", "--print-command"])
    out = capsys.readouterr().out
    assert rc == 0
    assert "kohya_ss config gui.json: 1 used, 2 mapped, 1 overridden, 0 refused, 0 skipped" in out
    assert "overridden optimizer: optimizer from --optimizer wins" in out
    cfg_line = next(line for line in out.splitlines() if "--config_file" in line)
    assert "p1-001" in cfg_line


# --------------------------------------------------------------------------- the real presets
def _gui_folder() -> Path:
    value = os.environ.get("KOHYA_SS_GUI_PATH")
    if not value:
        pytest.skip(
            "KOHYA_SS_GUI_PATH is not set: point it at a kohya_ss GUI checkout (bmaltais/kohya_ss) to "
            "import its presets/lora/*.json"
        )
    folder = Path(value)
    if not (folder / "presets" / "lora").is_dir():
        pytest.skip(f"KOHYA_SS_GUI_PATH={folder} has no presets/lora")
    return folder


def test_every_preset_of_the_kohya_ss_gui_is_used_refused_or_skipped_key_by_key_and_plans_for_its_family():
    """Each preset either plans on a base of its own family (the pack's own checks, the family rules)
    or names the keys it cannot train as meant; nothing that changes training is dropped unsaid."""
    presets = kohya_gui.presets(_gui_folder())
    assert len(presets) >= 30, sorted(presets)
    rows = []
    for name, path in sorted(presets.items()):
        data = json.loads(path.read_text(encoding="utf-8"))
        imp = kohya_gui.import_file(path)
        accounted = {k for k, _ in imp.used + imp.mapped + imp.skipped + imp.refused}
        assert accounted >= set(data) - {"additional_parameters"}, (name, set(data) - accounted)
        for key, why in imp.skipped + imp.refused:
            assert why, (name, key)
        assert set(imp.values) <= set(SETTING)
        opts = TrainOptions.from_values(imp.values)
        validate(opts)  # what it gives passes our own checks
        check_family(opts, {"": "sd1", "flux1": "flux"}.get(imp.family, imp.family))
        rows.append((name, *imp.counts(), len(imp.refused)))
    width = max(len(r[0]) for r in rows)
    print(f"\n{'preset':{width}}  used  mapped  skipped  refused")
    for name, used, mapped, skipped, refused in rows:
        print(f"{name:{width}}  {used:4d}  {mapped:6d}  {skipped:7d}  {refused:7d}")
