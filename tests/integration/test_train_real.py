"""train.train() on REAL kohya sd-scripts: CPU, the random SD1.5 checkpoint, 64x64, 2 epochs x 4 steps,
accelerate launch --cpu. Checks the LoRA's kohya keys, that its metadata names our dataset's subset,
the per-epoch file, the loss curve, real sample images from our prompts file, and the cache."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import pytest

from lora_workbench.dataset import dataset_toml
from lora_workbench.modelfiles.safetensors_header import read_header
from lora_workbench.training import train
from lora_workbench.training.options import TrainOptions

pytestmark = pytest.mark.integration


@pytest.fixture
def project(tmp_path, monkeypatch, kohya_dir, kohya_python, tokenizer_cache, smoke_images) -> Path:
    src = smoke_images
    monkeypatch.setenv("LORA_WORKBENCH_SETTINGS", str(tmp_path / "none.json"))
    monkeypatch.setenv("KOHYA_SS_PATH", str(kohya_dir))
    monkeypatch.setenv("KOHYA_PYTHON", str(kohya_python))
    monkeypatch.setenv("LORA_WORKBENCH_TOKENIZER_CACHE", str(tokenizer_cache))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")
    proj = tmp_path / "smokeproj"
    sub = proj / "images" / "1_testsubject"
    shutil.copytree(src, sub)
    (proj / "dataset.toml").write_text(
        '[general]\ncaption_extension = ".txt"\nshuffle_caption = false\nkeep_tokens = 1\nenable_bucket = false\n\n'
        f"[[datasets]]\nresolution = [64, 64]\nbatch_size = 1\n\n  [[datasets.subsets]]\n"
        f'  image_dir = "{sub.as_posix()}"\n  class_tokens = "testsubject"\n  num_repeats = 1\n',
        encoding="utf-8",
    )
    return proj


def test_real_training_through_our_core_then_a_cache_hit(project, test_checkpoint):
    spec = TrainOptions(
        epochs=2,
        width=64,
        height=64,
        network_dim=4,
        network_alpha=4,
        device="cpu",
        launcher="accelerate",
        sample_prompts="testsubject, a photo",
        sample_steps=2,
        seed=42,
    )
    ds = dataset_toml.load_project_dataset(project)
    assert ds.steps_per_epoch == 4
    texts: list[str] = []
    t0 = time.monotonic()
    run = train.train(spec, ds, test_checkpoint, on_update=lambda st: texts.append(st.text()))
    wall = time.monotonic() - t0
    run_dir = Path(run.run_dir)
    print(f"\nreal train: {wall:.1f}s, run folder {run_dir.name}, last text: {texts[-1]}")
    print("losses:", run.losses)
    print("command:", (run_dir / "command.txt").read_text().splitlines()[-1])
    lora = run.lora
    assert Path(lora.path).is_file() and lora.path == str(run_dir / "smokeproj.safetensors")
    assert lora.epoch_paths == [str(run_dir / "smokeproj-000001.safetensors")]
    header = read_header(lora.path)
    keys = header.keys()
    assert any(k.startswith("lora_unet_") for k in keys) and any(k.startswith("lora_te_") for k in keys)
    dirs = json.loads(header.metadata.get("ss_dataset_dirs", "{}"))
    datasets = header.metadata.get("ss_datasets", "")
    print(f"LoRA: {len(keys)} tensors; ss_dataset_dirs={dirs}; ss_steps={header.metadata.get('ss_steps')}")
    assert "1_testsubject" in dirs or "1_testsubject" in datasets
    assert lora.metadata.get("ss_network_dim") == "4" and lora.trigger_words == ["testsubject"]
    assert [s for s, _ in run.losses] == list(range(1, 9))
    assert Path(run.loss_curve).is_file()
    print("samples:", [Path(s).name for s in run.samples])
    assert run.samples, "sd-scripts wrote no sample images from our prompts file"
    assert any("epoch 2/2" in t for t in texts)

    t1 = time.monotonic()
    again = train.train(spec, dataset_toml.load_project_dataset(project), test_checkpoint)
    print(f"second call: cached={again.cached} in {time.monotonic() - t1:.2f}s")
    assert again.cached and again.lora.path == lora.path
    assert sorted(p.name for p in (project / "output").iterdir()) == [run_dir.name]
