"""missing_caption against a REAL sd-scripts run: with `class_tokens` the uncaptioned images train on the
folder's subject (sd-scripts finds the subset's class_tokens), with `empty` on an empty caption (the TOML
has no class_tokens, so sd-scripts says it uses an empty caption). CPU, random SD1.5, 64x64, 2 steps.
"""

from __future__ import annotations

import os
import subprocess

import pytest
from PIL import Image

from lora_workbench.dataset import prepare

from .test_dataset_toml_kohya import scripts_dir

pytestmark = pytest.mark.integration
EMPTY_SAYS = "neither caption file nor class tokens are found. use empty caption"
FALLBACK_SAYS = "No caption file found for 2 images"


def run_sd_scripts(toml: str, out, kohya_dir, kohya_python, checkpoint, tokenizer_cache) -> str:
    argv = [str(kohya_python), "train_network.py", "--pretrained_model_name_or_path", str(checkpoint)]
    argv += ["--dataset_config", toml, "--output_dir", str(out), "--output_name", "t"]
    argv += ["--network_module", "networks.lora", "--network_dim", "4", "--max_train_steps", "2"]
    argv += ["--tokenizer_cache_dir", str(tokenizer_cache), "--max_data_loader_n_workers", "0"]
    argv += ["--optimizer_type", "AdamW", "--learning_rate", "1e-4", "--save_model_as", "safetensors"]
    env = dict(
        os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", PYTHONIOENCODING="utf-8", COLUMNS="1000"
    )
    proc = subprocess.run(
        argv,
        cwd=scripts_dir(kohya_dir),
        env=env,
        capture_output=True,
        text=True,
        errors="replace",
        timeout=900,
    )
    log = proc.stdout + proc.stderr
    (out.parent / "train.log").write_text(log)
    assert proc.returncode == 0, log[-4000:]
    return log


@pytest.mark.parametrize("mode", ["class_tokens", "empty"])
def test_sd_scripts_trains_uncaptioned_images_the_way_missing_caption_says(
    tmp_path, kohya_dir, kohya_python, test_checkpoint, tokenizer_cache, mode
):
    folder = tmp_path / "proj" / "images" / "1_redthing"
    folder.mkdir(parents=True)
    for i in range(3):
        Image.new("RGB", (64, 64), (200, 30 + 20 * i, 30)).save(folder / f"{i}.png")
    (folder / "0.txt").write_text("redthing, plain square")
    ds, summary = prepare.prepare_dataset(
        tmp_path / "proj", prepare.DatasetOptions(resolution=(64, 64), missing_caption=mode)
    )
    log = run_sd_scripts(
        ds.toml_path, tmp_path / "out", kohya_dir, kohya_python, test_checkpoint, tokenizer_cache
    )
    said = [line.strip() for line in log.splitlines() if "caption" in line and "found" in line]
    assert any(FALLBACK_SAYS in line for line in said), said or log[-4000:]
    assert any(EMPTY_SAYS in line for line in said) == (mode == "empty"), said
    print(f"\n{mode}: sd-scripts said {EMPTY_SAYS if mode == 'empty' else FALLBACK_SAYS!r}\n{summary}")
