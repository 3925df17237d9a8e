"""The training features with the non-SD families: what their trainers take (resume, continuing from a
LoRA file, loraplus, dropout, caption settings) passes, what they ignore or cannot do is a sentence."""

from __future__ import annotations

import pytest

from lora_workbench.dataset.dataset_toml import dataset_from_toml
from lora_workbench.errors import ValidationError
from lora_workbench.modelfiles.detect import detect_model
from lora_workbench.training import families, kohya, train
from lora_workbench.training.command import Target, build_command
from lora_workbench.training.options import TrainOptions
from lora_workbench.training.validation import check_family, network_module_for, validate
from tests.unit import synthetic_models as sm
from tests.unit import train_fakes as fakes

DIT = ("flux", "chroma", "sd3", "lumina2", "hunyuan_image", "anima")


def ok(family: str, **values) -> TrainOptions:
    opts = TrainOptions.from_values(values)
    validate(opts)
    check_family(opts, family)
    return opts


def refused(family: str, message: str, **values) -> None:
    opts = TrainOptions.from_values(values)
    with pytest.raises(ValidationError, match=message):
        validate(opts)
        check_family(opts, family)


@pytest.mark.parametrize("family", DIT)
def test_what_every_family_trainer_takes(family):
    ok(family, resume="latest", save_state=True, save_every_n_epochs=1, save_last_n_epochs_state=2)
    ok(family, network_weights="/tmp/x.safetensors", dim_from_weights=True)
    ok(family, network_args="loraplus_lr_ratio=16", rank_dropout=0.1, module_dropout=0.1, network_dropout=0.1)
    ok(family, shuffle_caption=True, keep_tokens=1, caption_tag_dropout_rate=0.1, flip_aug=True)
    ok(family, optimizer="Prodigy", learning_rate=1.0, optimizer_args="decouple=True weight_decay=0.01")
    ok(family, gradient_accumulation_steps=2, lr_warmup_ratio=0.05, max_grad_norm=0.5)


@pytest.mark.parametrize("family", DIT)
@pytest.mark.parametrize(
    "values",
    [
        {"network_type": "locon", "conv_dim": 4},
        {"network_type": "dylora"},
        {"network_type": "lycoris_loha"},
        {"min_snr_gamma": 5.0},
        {"multires_noise_iterations": 6},
    ],
)
def test_sd_only_features_are_refused_for_the_other_families_by_name(family, values):
    name = next(iter(values))
    refused(family, f"{name} applies only to .*SD.* base models and this base model is", **values)


@pytest.mark.parametrize("family", DIT)
def test_sd_block_keys_are_not_read_by_the_families_own_lora(family):
    module = families.get(family).network_modules[0]
    refused(
        family,
        f"network_args block_dims is not read by {module}.*networks.lora",
        network_args="block_dims=4,4",
    )


def test_the_module_decides_which_keys_and_settings_it_reads():
    refused("sd1", "loraplus_lr_ratio is not read by networks.lora_fa", network_module="networks.lora_fa",
            network_args="loraplus_lr_ratio=4")  # fmt: skip
    refused(
        "flux", "networks.oft_flux ignores rank_dropout", network_module="networks.oft_flux", rank_dropout=0.1
    )
    refused("flux", "scale_weight_norms needs a network that can rescale", scale_weight_norms=1.0,
            network_module="networks.oft_flux")  # fmt: skip
    ok("flux", scale_weight_norms=1.0)
    ok("hunyuan_image", scale_weight_norms=1.0)  # its LoRA network is lora_flux's
    ok("sdxl", network_args="block_dims=" + ",".join(["4"] * 23))


def test_network_type_and_network_module_name_one_module():
    refused("sd1", "network_type locon picks its module itself", network_type="locon", conv_dim=4,
            network_module="networks.lora_fa")  # fmt: skip
    refused("sd1", "set network_type to dylora instead", network_module="networks.dylora")
    assert network_module_for(ok("flux"), families.get("flux")) == "networks.lora_flux"
    assert network_module_for(ok("sd1", network_type="lycoris_lokr"), families.get("sd1")) == "lycoris.kohya"
    assert network_module_for(ok("sd1", network_module="networks.oft"), families.get("sd1")) == "networks.oft"


@pytest.fixture
def flux_ds(tmp_path, monkeypatch):
    monkeypatch.setenv("LORA_WORKBENCH_SETTINGS", str(tmp_path / "none.json"))
    fakes.make_kohya(tmp_path, monkeypatch)
    project = fakes.make_project(tmp_path)
    base = sm.write_model(tmp_path / "flux1-dev.safetensors", sm.flux("dev"))
    return dataset_from_toml(project / "dataset.toml", project), detect_model(base)


def flux_command(tmp_path, flux_ds, captions=(), **values):
    ds, model = flux_ds
    opts = TrainOptions.from_values(values)
    target = Target(ds, model, kohya.find_install(), "gpu", tmp_path / "out", dataset_captions=captions)
    return build_command(opts, target)


def test_varying_captions_turn_flux_text_encoder_caching_off_with_a_warning(tmp_path, flux_ds):
    assert flux_command(tmp_path, flux_ds).config["training"]["cache_text_encoder_outputs"] is True
    for cmd in (
        flux_command(tmp_path, flux_ds, shuffle_caption=True),
        flux_command(tmp_path, flux_ds, captions=("caption_tag_dropout_rate",)),  # a subset's own option
    ):
        assert "cache_text_encoder_outputs" not in cmd.config["training"]
        assert any("cache_text_encoder_outputs is off for this run" in w for w in cmd.warnings)
    with pytest.raises(ValidationError, match="cache_text_encoder_outputs on cannot go with shuffle_caption"):
        flux_command(tmp_path, flux_ds, shuffle_caption=True, cache_text_encoder_outputs="on")


def test_a_subset_caption_option_in_the_dataset_toml_is_found(tmp_path):
    toml = tmp_path / "dataset.toml"
    toml.write_text(
        "[general]\nshuffle_caption = false\n[[datasets]]\n[[datasets.subsets]]\nimage_dir = 'a'\n"
        "caption_tag_dropout_rate = 0.1\n[[datasets.subsets]]\nimage_dir = 'b'\nshuffle_caption = true\n"
    )
    assert train.dataset_captions(toml) == ("shuffle_caption", "caption_tag_dropout_rate")
    assert train.dataset_captions(tmp_path / "missing.toml") == ()
