"""The dataset TOML we write is accepted by a REAL sd-scripts run (`--dataset_config`), and kohya counts the
same items per epoch as our step math; caption options written per subset reach every subset.

Needs KOHYA_SS_PATH (+ the random SD1.5 test checkpoint and offline tokenizer; see conftest.py).
Plain `python train_network.py` on CPU, 64x64, 2 steps (~30 s, ~7 GB RAM).
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest
from PIL import Image

from lora_workbench.dataset import prepare, project

pytestmark = pytest.mark.integration


def scripts_dir(kohya_dir: Path) -> Path:
    return kohya_dir if (kohya_dir / "train_network.py").is_file() else kohya_dir / "sd-scripts"


def make_project(root: Path, reg: bool) -> Path:
    project.init_project(root)
    if reg:
        folder = root / "regularization" / "1_square"
        folder.mkdir()
        for i in range(2):
            Image.new("RGB", (64, 64), (90, 90, 90 + 40 * i)).save(folder / f"r{i}.png")
    for dirname, n, color in (("1_redthing", 3, (200, 30, 30)), ("Blue Thing", 2, (30, 30, 200))):
        folder = root / "images" / dirname
        folder.mkdir()
        for i in range(n):
            Image.new("RGB", (64, 64), tuple(min(255, c + 10 * i) for c in color)).save(folder / f"{i}.png")
            (folder / f"{i}.txt").write_text(f"{dirname.split('_')[-1]}, plain square, variant {i}")
    return root


@pytest.mark.parametrize("buckets_and_reg", [False, True], ids=["plain", "buckets+reg"])
def test_sd_scripts_trains_on_our_dataset_toml(
    tmp_path, kohya_dir, kohya_python, test_checkpoint, tokenizer_cache, buckets_and_reg
):
    root = make_project(tmp_path / "proj with space", reg=buckets_and_reg)
    # the second case also carries caption options per subset (DatasetSubsetWeights.caption_options)
    captions = {"shuffle_caption": True, "keep_tokens": 1, "flip_aug": True} if buckets_and_reg else {}
    options = prepare.DatasetOptions(
        "redthing: 2\nBlue Thing: 1", (64, 64), buckets_and_reg, repeats="weights", subset_options=captions
    )
    ds, summary = prepare.prepare_dataset(root, options)
    train_items = sum(s.images * s.repeats for s in ds.subsets if not s.is_reg)
    assert ds.items_per_epoch == train_items * (2 if buckets_and_reg else 1)
    out = tmp_path / "out"
    argv = [
        str(kohya_python),
        "train_network.py",
        "--pretrained_model_name_or_path",
        str(test_checkpoint),
        "--dataset_config",
        ds.toml_path,
        "--output_dir",
        str(out),
        "--output_name",
        "t",
        "--network_module",
        "networks.lora",
        "--network_dim",
        "4",
        "--save_model_as",
        "safetensors",
        "--max_train_steps",
        "2",
        "--tokenizer_cache_dir",
        str(tokenizer_cache),
        "--learning_rate",
        "1e-4",
        "--optimizer_type",
        "AdamW",
        "--max_data_loader_n_workers",
        "0",
        "--seed",
        "1",
    ]
    env = dict(
        os.environ,
        HF_HUB_OFFLINE="1",
        TRANSFORMERS_OFFLINE="1",
        PYTHONUNBUFFERED="1",
        PYTHONIOENCODING="utf-8",
        COLUMNS="200",
    )
    proc = subprocess.run(
        argv,
        cwd=scripts_dir(kohya_dir),
        env=env,
        capture_output=True,
        text=True,
        encoding="utf-8",
        errors="replace",
        timeout=900,
    )
    log = proc.stdout + proc.stderr
    (tmp_path / "train.log").write_text(log)
    assert proc.returncode == 0, log[-4000:]
    assert "Invalid user config" not in log
    assert (out / "t.safetensors").is_file(), log[-4000:]
    m = re.search(r"num train images \* repeats[^:]*:\s*(\d+)", log)
    assert m, log[-4000:]
    assert int(m.group(1)) == train_items
    batches = re.search(r"num batches per epoch[^:]*:\s*(\d+)", log)
    assert batches and int(batches.group(1)) == ds.steps_per_epoch, log[-4000:]  # x2 with reg, as kohya does
    if buckets_and_reg:
        assert re.search(r"num reg images[^:]*:\s*2\b", log), log[-4000:]
        assert "enable_bucket: True" in log
        for line in ("shuffle_caption: True", "keep_tokens: 1", "flip_aug: True"):
            assert log.count(line) >= 3, f"{line!r} is not in every subset sd-scripts printed"
    print(
        f"\nsd-scripts: num train images * repeats = {m.group(1)}; ours: {train_items} "
        f"(items per epoch {ds.items_per_epoch})\n{summary}"
    )
