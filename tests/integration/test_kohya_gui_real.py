"""kohya_ss GUI configs through `lora-workbench train --kohya-json` on REAL sd-scripts (CPU, the random
SD1.5 checkpoint, 64x64): a Prodigy config's optimizer args and learning rate reach the optimizer (the
LoRA's ss_optimizer / ss_learning_rate metadata say so), and a config that asks for a GPU-only
optimizer and attention trains on the CPU when the flags override them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lora_workbench import cli
from lora_workbench.modelfiles.safetensors_header import read_header

from .test_train_real import project  # noqa: F401 (the fixture: a 64x64 smoke project, real sd-scripts)

pytestmark = pytest.mark.integration

PRODIGY = {  # the shape of the kohya_ss GUI's Prodigy presets and guides
    "LoRA_type": "Standard",
    "optimizer": "Prodigy",
    "optimizer_args": '"decouple=True" "weight_decay=0.01" "d_coef=1.2" betas=(0.9,0.99)',
    "learning_rate": 1.0,
    "unet_lr": 1.0,
    "text_encoder_lr": 1.0,
    "lr_scheduler": "constant",
    "network_dim": 4,
    "network_alpha": 4,
    "max_resolution": "64,64",
    "epoch": 1,
    "seed": "42",
    "mixed_precision": "no",
    "save_precision": "float",
    "xformers": "sdpa",
}


def _lora(project_dir: Path) -> Path:
    (found,) = sorted((project_dir / "output").glob("*-*/*.safetensors"))
    return found


def test_a_prodigy_config_trains_with_every_optimizer_arg_and_its_learning_rate(
    project,  # noqa: F811 (the fixture imported above)
    test_checkpoint,
    tmp_path,
    capsys,
):
    config = tmp_path / "prodigy.json"
    config.write_text(json.dumps(PRODIGY), encoding="utf-8")
    rc = cli.main(["train", str(project), "--base", str(test_checkpoint), "--kohya-json", str(config),
                   "--device", "cpu", "--no-cache"])  # fmt: skip
    out = capsys.readouterr()
    assert rc == 0, out.err[-3000:]
    meta = read_header(_lora(project)).metadata
    print(f"\nss_optimizer={meta.get('ss_optimizer')}\nss_learning_rate={meta.get('ss_learning_rate')}")
    optimizer = meta["ss_optimizer"]
    assert "Prodigy" in optimizer
    for arg in ("decouple=True", "weight_decay=0.01", "d_coef=1.2", "betas=(0.9, 0.99)"):
        assert arg in optimizer, (arg, optimizer)
    assert float(meta["ss_learning_rate"]) == 1.0


def test_a_gpu_only_optimizer_in_the_config_trains_on_the_cpu_when_the_flags_override_it(
    project,  # noqa: F811 (the fixture imported above)
    test_checkpoint,
    tmp_path,
    capsys,
):
    config = tmp_path / "gpu.json"
    gpu_config = {**PRODIGY, "optimizer": "AdamW8bit", "optimizer_args": "", "learning_rate": 1e-4,
                  "unet_lr": 1e-4, "text_encoder_lr": 5e-5, "xformers": "xformers"}  # fmt: skip
    config.write_text(json.dumps(gpu_config), encoding="utf-8")
    argv = ["train", str(project), "--base", str(test_checkpoint), "--kohya-json", str(config),
            "--device", "cpu", "--no-cache"]  # fmt: skip
    assert cli.main(argv) == 1
    assert "optimizer AdamW8bit needs a GPU" in capsys.readouterr().err
    rc = cli.main([*argv, "--optimizer", "AdamW", "--attention", "sdpa"])
    out = capsys.readouterr()
    assert rc == 0, out.err[-3000:]
    assert "overridden optimizer: optimizer from --optimizer wins" in out.out
    meta = read_header(_lora(project)).metadata
    print(f"\nss_optimizer={meta.get('ss_optimizer')}")
    assert meta["ss_optimizer"].startswith("torch.optim.adamw.AdamW")
