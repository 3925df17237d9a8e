"""Continue from an existing LoRA file (network_weights) as a new run: the file is checked against the
base model and the network before launch, and its identity is part of the cache key."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from lora_workbench.dataset import dataset_toml
from lora_workbench.dataset.dataset_toml import tomllib
from lora_workbench.errors import ValidationError
from lora_workbench.modelfiles.safetensors_header import write_safetensors_header_only
from lora_workbench.training import train
from lora_workbench.training.options import TrainOptions
from tests.unit import train_fakes as fakes

LORA = "lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn2_to_k"


@pytest.fixture
def setup(tmp_path, monkeypatch):
    monkeypatch.setenv("LORA_WORKBENCH_SETTINGS", str(tmp_path / "none.json"))
    monkeypatch.setenv("LORA_WORKBENCH_CACHE_DIR", str(tmp_path / "cache"))
    fakes.make_kohya(tmp_path, monkeypatch)
    for var in ("FAKE_SD_FAIL", "FAKE_SD_NO_FILE", "FAKE_SD_SLEEP", "FAKE_SD_CRASH_AT_EPOCH"):
        monkeypatch.delenv(var, raising=False)
    project = fakes.make_project(tmp_path)
    ckpt = fakes.write_checkpoint(tmp_path / "models" / "sd15.safetensors", fakes.sd1_tensors())
    return dataset_toml.load_project_dataset(project), ckpt


def spec(**kw) -> TrainOptions:
    base = dict(
        epochs=1, width=64, height=64, network_dim=4, network_alpha=4, device="cpu", launcher="python"
    )
    return TrainOptions(**{**base, **kw})


def lora_file(path: Path, rank: int = 4, context: int = 768, kind: str = "lora") -> Path:
    if kind == "loha":
        tensors = {f"{LORA}.hada_w1_a": ("F16", [context, rank]), f"{LORA}.alpha": ("F16", [])}
    else:
        tensors = {
            f"{LORA}.lora_down.weight": ("F16", [rank, context]),
            f"{LORA}.lora_up.weight": ("F16", [320, rank]),
        }
    write_safetensors_header_only(path, tensors, {"ss_network_dim": str(rank)})
    return path


def test_a_run_continued_from_a_lora_file_names_it_and_keys_on_it(setup, tmp_path):
    ds, ckpt = setup
    first = train.train(spec(), ds, ckpt)
    cont = train.train(spec(network_weights=first.lora.path), ds, ckpt)
    assert cont.run_dir != first.run_dir and not cont.cached
    cfg = tomllib.loads((Path(cont.run_dir) / "config.toml").read_text())
    assert cfg["network"]["network_weights"] == first.lora.path
    key = train.prepare(spec(network_weights=first.lora.path), ds, ckpt).fingerprint
    assert key != train.prepare(spec(), ds, ckpt).fingerprint
    os.utime(first.lora.path, ns=(1, 1))  # the same path with another file: another run
    assert train.prepare(spec(network_weights=first.lora.path), ds, ckpt).fingerprint != key


@pytest.mark.parametrize(
    ("make", "values", "message"),
    [
        (lambda p: lora_file(p, rank=8), {}, "has rank 8 and network_dim is 4; set network_dim to 8"),
        (lambda p: lora_file(p, context=2048), {}, "trained for SDXL"),
        (lambda p: lora_file(p, kind="loha"), {}, "holds lycoris_loha weights; set network_type"),
        (lambda p: p.with_suffix(".ckpt"), {}, "is not a .safetensors file"),
        (lambda p: p.parent / "missing.safetensors", {}, "is not a .safetensors file"),
    ],
)
def test_a_lora_file_that_cannot_continue_is_a_sentence_before_launch(setup, tmp_path, make, values, message):
    ds, ckpt = setup
    path = make(tmp_path / "prev.safetensors")
    with pytest.raises(ValidationError, match=message):
        train.prepare(spec(network_weights=str(path), **values), ds, ckpt)


def test_dim_from_weights_takes_any_rank(setup, tmp_path):
    ds, ckpt = setup
    path = lora_file(tmp_path / "prev.safetensors", rank=8)
    train.prepare(spec(network_weights=str(path), dim_from_weights=True), ds, ckpt)
    loha = lora_file(tmp_path / "loha.safetensors", kind="loha")
    with pytest.raises(ValidationError, match="LyCORIS"):  # the right type, but no LyCORIS in this python
        train.prepare(spec(network_weights=str(loha), network_type="lycoris_loha"), ds, ckpt)
