"""What the dataset node counts is what the REAL sd-scripts counts and trains (issue 13).

1. A dataset with mixed-case extensions (x.PNG, x.JPG read; x.Png, .hidden.png skipped on Linux),
   missing captions and a regularization subset, folders 10_alice (10 images) and 2_bob (5): our
   scan's per-folder counts equal sd-scripts' "found directory ... contains N image files", and the
   default (repeats = folders) gives kohya's own `num train images * repeats` = 110.
2. With target_steps, a real training through the pack (the node function, then train.train with
   accelerate on the CPU) runs exactly the total the node showed: sd-scripts' banner
   "total optimization steps" equals steps per epoch x the planned epochs, whatever the trainer's
   own epochs setting says (6_alice x2 + 2_bob x1 = 14 items; target 21 -> repeats /2, 7 x 3 epochs).

Needs KOHYA_SS_PATH (+ the harness's random SD1.5 checkpoint and offline tokenizer; see conftest.py).
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest
from PIL import Image

from lora_workbench.dataset import dataset_toml, prepare
from lora_workbench.dataset.prepare import DatasetOptions

pytestmark = pytest.mark.integration


def scripts_dir(kohya_dir: Path) -> Path:
    return kohya_dir if (kohya_dir / "train_network.py").is_file() else kohya_dir / "sd-scripts"


def square(path: Path, shade: int, fmt: str = "PNG") -> None:
    Image.new("RGB", (64, 64), (shade, 40, 255 - shade)).save(path, fmt)


def mixed_project(root: Path) -> Path:
    alice = root / "images" / "10_alice"
    bob = root / "images" / "2_bob"
    reg = root / "regularization" / "1_person"
    for folder in (alice, bob, reg):
        folder.mkdir(parents=True)
    for i in range(6):
        square(alice / f"a{i}.png", 20 * i)
    for i in range(2):
        square(alice / f"up{i}.PNG", 100 + i)
    for i in range(2):
        square(alice / f"j{i}.JPG", 150 + i, "JPEG")
    square(alice / "mixed.Png", 7)  # sd-scripts' glob skips it on Linux
    square(alice / ".hidden.png", 9)  # and this one everywhere
    for p in list(alice.iterdir()):
        (alice / (p.name.rsplit(".", 1)[0] + ".txt")).write_text("alice, square")
    for i in range(5):
        square(bob / f"b{i}.png", 30 * i)
        if i:  # b0 has no caption: sd-scripts uses the class token
            (bob / f"b{i}.txt").write_text("bob, square")
    for i in range(3):
        square(reg / f"r{i}.jpg", 60 * i, "JPEG")  # no captions at all
    return root


def run_sd_scripts(kohya_dir, kohya_python, ckpt, tokenizer_cache, toml_path, out: Path) -> str:
    argv = [
        str(kohya_python), "train_network.py",
        "--pretrained_model_name_or_path", str(ckpt),
        "--dataset_config", str(toml_path),
        "--output_dir", str(out), "--output_name", "t",
        "--network_module", "networks.lora", "--network_dim", "4",
        "--save_model_as", "safetensors", "--max_train_steps", "1",
        "--tokenizer_cache_dir", str(tokenizer_cache),
        "--learning_rate", "1e-4", "--optimizer_type", "AdamW",
        "--max_data_loader_n_workers", "0", "--seed", "1",
    ]  # fmt: skip
    env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", PYTHONUNBUFFERED="1",
               PYTHONIOENCODING="utf-8", COLUMNS="200")  # fmt: skip
    proc = subprocess.run(argv, cwd=scripts_dir(kohya_dir), env=env, capture_output=True, text=True,
                          encoding="utf-8", errors="replace", timeout=900)  # fmt: skip
    log = proc.stdout + proc.stderr
    (out.parent / "sd-scripts.log").write_text(log)
    assert proc.returncode == 0, log[-4000:]
    return log


def test_counts_match_sd_scripts_for_mixed_case_missing_captions_and_regularization(
    tmp_path, kohya_dir, kohya_python, test_checkpoint, tokenizer_cache
):
    root = mixed_project(tmp_path / "proj")
    options = DatasetOptions(resolution=(64, 64))  # repeats = folders, the default
    a = prepare.analyse(root, options)
    assert a.mode == "folders" and a.steps.train_items == 110
    ours = {Path(s.folder).name: s.image_count for s in a.scan.subsets}
    assert ours == {"10_alice": 10, "2_bob": 5, "1_person": 3}
    # bob's missing caption is an error for the pack, so write the TOML from the analysis itself:
    # this run checks the counting rules, not the pack's stricter caption policy
    toml = tmp_path / "dataset.toml"
    config = dataset_toml.build_config(a.subsets, resolution=(64, 64), batch_size=1, enable_bucket=False)
    toml.write_text(dataset_toml.dumps(config), encoding="utf-8")
    log = run_sd_scripts(kohya_dir, kohya_python, test_checkpoint, tokenizer_cache, toml, tmp_path / "out")
    theirs = {
        Path(d).name: int(n) for d, n in re.findall(r"found directory (\S+) contains (\d+) image files", log)
    }
    total = re.search(r"num train images \* repeats[^:]*:\s*(\d+)", log)
    reg = re.search(r"num reg images[^:]*:\s*(\d+)", log)
    print(f"\nours: {ours}, train items {a.steps.train_items}\nsd-scripts: {theirs}, "
          f"num train images * repeats {total and total.group(1)}, num reg images {reg and reg.group(1)}")  # fmt: skip
    assert theirs == ours
    assert total and int(total.group(1)) == 110 == a.steps.train_items
    assert reg and int(reg.group(1)) == 3


def test_target_steps_train_exactly_what_the_node_showed(
    roots, monkeypatch, pack, comfy, kohya_dir, kohya_python, test_checkpoint, tokenizer_cache
):
    from lora_workbench.training import train
    from lora_workbench.training.options import TrainOptions

    root = roots / "proj"
    for name, n in (("6_alice", 2), ("2_bob", 1)):  # small: 21 steps at batch 1 take about a minute
        folder = root / "images" / name
        folder.mkdir(parents=True)
        for i in range(n):
            square(folder / f"{i}.png", 17 * i)
            (folder / f"{i}.txt").write_text(f"{name[name.index('_') + 1 :]}, square")
    monkeypatch.setenv("KOHYA_SS_PATH", str(kohya_dir))
    monkeypatch.setenv("KOHYA_PYTHON", str(kohya_python))
    monkeypatch.setenv("LORA_WORKBENCH_TOKENIZER_CACHE", str(tokenizer_cache))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")
    comfy.start_server()
    node = pack.NODE_CLASS_MAPPINGS["DatasetSubsetWeights"]()
    out = node.prepare(project_folder=str(root), weights="", width=64, height=64, enable_bucket=False,
                       apply_mode="toml (non-destructive)", batch_size=1, epochs=3, max_items_per_epoch=0,
                       target_steps=21)  # fmt: skip
    ds, text = out["result"]
    shown = re.search(r"= (\d+) steps \(target 21: (\w+)", text)
    print("\n" + text)
    assert shown, text
    planned = int(shown.group(1))
    assert planned == ds.steps_per_epoch * ds.planned_epochs and ds.planned_epochs > 1
    spec = TrainOptions(epochs=5, width=64, height=64, network_dim=4, network_alpha=4, device="cpu",
                     launcher="accelerate", seed=3, save_every_n_epochs=0)  # fmt: skip
    run = train.train(spec, ds, test_checkpoint)
    log = (Path(run.run_dir) / "train.log").read_text(encoding="utf-8", errors="replace")
    banner = re.search(r"total optimization steps[^:\n]*:\s*(\d+)", log)
    epochs = re.search(r"num epochs[^:\n]*:\s*(\d+)", log)
    items = re.search(r"num train images \* repeats[^:]*:\s*(\d+)", log)
    print(f"node: {planned} steps ({ds.steps_per_epoch} x {ds.planned_epochs} epochs); sd-scripts banner: "
          f"total optimization steps {banner and banner.group(1)}, num epochs {epochs and epochs.group(1)}, "
          f"num train images * repeats {items and items.group(1)}")  # fmt: skip
    assert banner and int(banner.group(1)) == planned
    assert epochs and int(epochs.group(1)) == ds.planned_epochs
    assert items and int(items.group(1)) == sum(s.items for s in ds.subsets)
    assert Path(run.lora.path).is_file()


def test_a_plain_folder_of_mixed_size_photos_trains_in_sd_scripts_without_upscaling(
    tmp_path, kohya_dir, kohya_python, test_checkpoint, tokenizer_cache
):
    """Issue 19: a folder of photos of mixed sizes and no captions, with the node's defaults (buckets
    on, wrong_size bucket): one subset named after the folder, the count sd-scripts finds, and the
    small portrait bucketed at its own size (bucket_no_upscale), where buckets that upscale would put
    it in a larger one. The dataset.toml and output/ sd-scripts writes into the folder are not images."""
    root = tmp_path / "mochi"
    root.mkdir()
    for name, size in (("wide.jpg", (192, 128)), ("portrait.jpg", (64, 128)), ("square.png", (128, 128))):
        Image.new("RGB", size, (90, 120, 30)).save(root / name)
    ds, text = prepare.prepare_dataset(root, DatasetOptions(resolution=(128, 128)))
    print("\n" + text)
    assert [(s.name, s.images, s.repeats) for s in ds.subsets] == [("mochi", 3, 1)] and ds.enable_bucket
    log = run_sd_scripts(
        kohya_dir, kohya_python, test_checkpoint, tokenizer_cache, ds.toml_path, root / "output"
    )
    found = re.findall(r"found directory (\S+) contains (\d+) image files", log)
    buckets = re.findall(r"bucket \d+: resolution \((\d+), (\d+)\), count: (\d+)", log)
    print(f"sd-scripts: {found}; buckets {buckets}")
    assert found == [(str(root), "3")]
    assert ("64", "128", "1") in buckets  # its own size: never upscaled
    assert all(int(w) * int(h) <= 128 * 128 for w, h, _n in buckets)
    assert sorted(os.listdir(root)) == [
        "dataset.toml",
        "output",
        "portrait.jpg",
        "sd-scripts.log",
        "square.png",
        "wide.jpg",
    ]
