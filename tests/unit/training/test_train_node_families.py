"""KohyaLoRATrain with a FLUX diffusion model from ComfyUI's diffusion_models folder and its text
encoders and AE from ComfyUI's folders, in a stubbed ComfyUI with a fake sd-scripts."""

from __future__ import annotations

import sys
import types

import pytest

from lora_workbench.dataset import dataset_toml
from lora_workbench.errors import ValidationError
from lora_workbench.training.settings import AUTO_FILE, NONE_FILE
from tests.unit import synthetic_models as sm
from tests.unit import train_fakes as fakes

FLUX = "diffusion_models/flux1-dev.safetensors"


@pytest.fixture
def flux_env(pack, comfy, roots, tmp_path, monkeypatch):
    fakes.make_kohya(tmp_path, monkeypatch)
    monkeypatch.setenv("FAKE_SD_LAUNCHES", str(tmp_path / "launches.txt"))
    fake_torch = types.ModuleType("torch")
    fake_torch.from_numpy = lambda a: a
    monkeypatch.setitem(sys.modules, "torch", fake_torch)
    # leave the event forwarding as found (forward_core_events subscribes send_event when it is not)
    monkeypatch.setattr(pack.nodes._comfy.events, "_listeners", list(pack.nodes._comfy.events._listeners))
    models = comfy.base / "models"
    sm.write_model(models / "diffusion_models/flux1-dev.safetensors", sm.flux("dev"))
    sm.write_model(models / "text_encoders/clip_l.safetensors", sm.clip_l())
    sm.write_model(models / "clip/t5xxl_fp16.safetensors", sm.t5xxl())  # ComfyUI's older folder name
    sm.write_model(models / "vae/ae.safetensors", sm.flux_ae())
    project = fakes.make_project(tmp_path / "projects")
    comfy.start_server()
    return pack, dataset_toml.dataset_from_toml(project / "dataset.toml", project)


def test_diffusion_models_are_offered_as_base_models(flux_env):
    pack, _ = flux_env
    names = pack.nodes.kohya_lora_train.KohyaLoRATrain.INPUT_TYPES()["required"]["ckpt_name"][0]
    assert FLUX in names


def test_the_model_files_node_offers_comfyuis_text_encoders_and_vaes(flux_env):
    pack, _ = flux_env
    spec = pack.NODE_CLASS_MAPPINGS["KohyaModelFiles"].INPUT_TYPES()["optional"]
    assert spec["t5xxl"][0][:2] == [AUTO_FILE, NONE_FILE] and "t5xxl_fp16.safetensors" in spec["t5xxl"][0]
    assert "ae.safetensors" in spec["ae"][0] and spec["ae"][1]["default"] == AUTO_FILE
    assert all(opts.get("tooltip") for _kind, opts in spec.values())


def test_a_flux_lora_trains_with_files_picked_from_comfyuis_folders(flux_env, comfy):
    pack, ds = flux_env
    node = pack.nodes.kohya_lora_train.KohyaLoRATrain()
    (files,) = pack.NODE_CLASS_MAPPINGS["KohyaModelFiles"]().collect(
        unique_id="3", clip_l="clip_l.safetensors"
    )
    out = node.train(ds, FLUX, unique_id="7", options=files, epochs=1, width=64, height=64, network_dim=4,
                     network_alpha=4.0, device="cpu", launcher="python")  # fmt: skip
    lora = out["result"][0]
    from pathlib import Path

    from lora_workbench.dataset.dataset_toml import tomllib

    run_dir = Path(lora.output_dir)
    config = tomllib.loads((run_dir / "config.toml").read_text(encoding="utf-8"))
    assert config["model"]["t5xxl"] == str(comfy.base / "models/clip/t5xxl_fp16.safetensors")  # (auto)
    assert config["model"]["clip_l"] == str(comfy.base / "models/text_encoders/clip_l.safetensors")
    assert config["network"]["network_module"] == "networks.lora_flux"
    assert "flux_train_network.py" in (run_dir / "command.txt").read_text(encoding="utf-8")


def test_a_file_outside_comfyuis_folders_is_refused(flux_env, tmp_path):
    pack, ds = flux_env
    outside = sm.write_model(tmp_path / "elsewhere/t5.safetensors", sm.t5xxl())
    node = pack.nodes.kohya_lora_train.KohyaLoRATrain()
    (files,) = pack.NODE_CLASS_MAPPINGS["KohyaModelFiles"]().collect(unique_id="3", t5xxl=str(outside))
    with pytest.raises(ValidationError, match=r"is not in ComfyUI's models/text_encoders"):
        node.train(ds, FLUX, unique_id="7", options=files, width=64, height=64, device="cpu")


def test_an_unknown_base_model_name_is_a_sentence(flux_env):
    pack, ds = flux_env
    node = pack.nodes.kohya_lora_train.KohyaLoRATrain()
    with pytest.raises(ValidationError, match="checkpoints or diffusion_models folders"):
        node.train(ds, "diffusion_models/../../etc/passwd", unique_id="7", device="cpu")
