"""What the new training settings become in sd-scripts' config, dataset TOML and step math: network
types and their network_args, optimizer args, loss settings, captions and augmentation, states, logs."""

from __future__ import annotations

import pytest

from lora_workbench import toml_writer
from lora_workbench.dataset.dataset_toml import dataset_from_toml
from lora_workbench.errors import ValidationError
from lora_workbench.modelfiles.detect import detect_model
from lora_workbench.training import command, kohya, train
from lora_workbench.training.backends.sd_scripts import dataset_config
from lora_workbench.training.command import Target, build_command
from lora_workbench.training.options import TrainOptions
from lora_workbench.training.validation import check_family, validate
from tests.unit import train_fakes as fakes

SD = fakes.option_set("train_network_options.txt")


@pytest.fixture
def ds(tmp_path, monkeypatch):
    monkeypatch.setenv("LORA_WORKBENCH_SETTINGS", str(tmp_path / "none.json"))
    fakes.make_kohya(tmp_path, monkeypatch)
    project = fakes.make_project(tmp_path, images=5)
    return dataset_from_toml(project / "dataset.toml", project)


def build(tmp_path, ds, family="sd1", device="cpu", augments=(), **values):
    tensors = fakes.sdxl_tensors() if family == "sdxl" else fakes.sd1_tensors()
    ckpt = fakes.write_checkpoint(tmp_path / f"{family}.safetensors", tensors)
    opts = TrainOptions.from_values(values)
    validate(opts)
    target = Target(
        ds, detect_model(ckpt), kohya.find_install(), device, tmp_path / "out-007",
        logging_dir=tmp_path / "logs", dataset_augments=augments,
    )  # fmt: skip
    return build_command(opts, target)


def argv_list(cmd, flag: str) -> list[str] | None:
    """The values after `flag` in the script's argv (None when it is not there)."""
    if flag not in cmd.argv:
        return None
    rest = cmd.argv[cmd.argv.index(flag) + 1 :]
    return rest[: next((i for i, a in enumerate(rest) if a.startswith("--")), len(rest))]


def test_locon_min_snr_captions_and_accumulation(tmp_path, ds):
    cmd = build(
        tmp_path, ds, network_type="locon", conv_dim=8, conv_alpha=4.0, rank_dropout=0.1, min_snr_gamma=5.0,
        gradient_accumulation_steps=2, shuffle_caption=True, keep_tokens=1, caption_dropout_rate=0.1,
        caption_tag_dropout_rate=0.2, flip_aug=True, network_args="loraplus_lr_ratio=16",
    )  # fmt: skip
    net = cmd.config["network"]
    assert net["network_module"] == "networks.lora"
    assert argv_list(cmd, "--network_args") == [
        "conv_dim=8",
        "conv_alpha=4.0",
        "rank_dropout=0.1",
        "loraplus_lr_ratio=16.0",
    ]
    assert cmd.config["training"]["min_snr_gamma"] == 5.0
    assert cmd.config["training"]["gradient_accumulation_steps"] == 2
    assert cmd.dataset_patch["subset_defaults"] == {
        "shuffle_caption": True,
        "keep_tokens": 1,
        "caption_dropout_rate": 0.1,
        "caption_tag_dropout_rate": 0.2,
        "flip_aug": True,
    }
    assert set(command.config_keys(cmd.config)) <= SD


def test_gradient_accumulation_divides_the_steps_per_epoch(tmp_path, ds):
    assert ds.steps_per_epoch == 5
    assert build(tmp_path, ds).total_steps == 15
    assert (
        build(tmp_path, ds, gradient_accumulation_steps=2).total_steps == 9
    )  # ceil(5/2) x 3, like sd-scripts
    assert build(tmp_path, ds, device="gpu", num_processes=2, gradient_accumulation_steps=2).total_steps == 6
    assert build(tmp_path, ds, gradient_accumulation_steps=2, max_train_steps=7).total_steps == 7


def test_lycoris_and_dylora_network_args(tmp_path, ds):
    loha = build(tmp_path, ds, network_type="lycoris_loha", conv_dim=4, network_args="preset=attn-mlp")
    assert loha.config["network"]["network_module"] == "lycoris.kohya"
    assert argv_list(loha, "--network_args") == [
        "algo=loha",
        "conv_dim=4",
        "conv_alpha=1.0",
        "preset=attn-mlp",
    ]
    oft = build(tmp_path, ds, network_type="lycoris_diag_oft")
    assert argv_list(oft, "--network_args") == ["algo=diag-oft"]
    dy = build(tmp_path, ds, network_type="dylora", network_dim=8, dylora_unit=4)
    assert dy.config["network"]["network_module"] == "networks.dylora"
    assert argv_list(dy, "--network_args") == ["unit=4"]
    lyc_dy = build(tmp_path, ds, network_type="lycoris_dylora", network_dim=8, dylora_unit=2)
    assert argv_list(lyc_dy, "--network_args") == ["algo=dylora", "block_size=2"]
    plain = build(tmp_path, ds)
    assert "--network_args" not in plain.argv and "--optimizer_args" not in plain.argv


def test_key_value_args_with_commas_go_on_the_command_line_not_into_the_config(tmp_path, ds):
    """toml_writer refuses a list item holding a comma (toml 0.10.2 may split it), so block_dims=2,4,4 and
    betas=0.9,0.99 travel as argv items after --config_file, where sd-scripts' parser reads them over the
    config; the config stays writable and holds neither key."""
    dims = ",".join(["4"] * 25)
    cmd = build(
        tmp_path, ds, network_args=f"block_dims={dims} block_alphas={dims}", optimizer_args="betas=0.9,0.99"
    )
    script_at = next(i for i, a in enumerate(cmd.argv) if a.endswith("train_network.py"))
    assert cmd.argv[script_at + 1] == "--config_file"
    assert argv_list(cmd, "--network_args") == [
        f"block_dims={dims}",
        f"block_alphas={','.join(['4.0'] * 25)}",
    ]
    assert argv_list(cmd, "--optimizer_args") == ["betas=0.9,0.99"]
    assert cmd.argv.index("--network_args") > script_at
    assert "network_args" not in cmd.config["network"] and "optimizer_args" not in cmd.config["optimizer"]
    toml_writer.dumps(cmd.config)  # would raise TomlWriteError for a list item holding a comma


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"network_type": "locon"}, "locon trains the conv layers too: set conv_dim"),
        ({"conv_dim": 8}, "conv_dim 8 has no effect with network_type lora"),
        ({"network_type": "dylora", "network_dim": 8, "dylora_unit": 3}, "not a multiple of dylora_unit 3"),
        ({"dylora_unit": 2}, "dylora_unit is for network_type dylora"),
        ({"network_type": "dylora", "network_dim": 8, "rank_dropout": 0.1}, "DyLoRA ignores"),
        ({"network_type": "dylora", "network_dim": 8, "conv_dim": 4}, "conv_dim equal to network_dim"),
        ({"lr_scheduler": "adafactor"}, "only with the Adafactor optimizer"),
        ({"lr_warmup_ratio": 0.1, "lr_warmup_steps": 10}, "keep one"),
        ({"lr_scheduler": "constant", "lr_warmup_ratio": 0.1}, "takes no warmup"),
        ({"save_last_n_epochs_state": 2}, "turn save_state on too"),
        ({"dim_from_weights": True}, "needs network_weights"),
        ({"multires_noise_discount": 0.1}, "no effect without multires_noise_iterations"),
    ],
)
def test_settings_that_do_not_fit_together_are_sentences(values, message):
    with pytest.raises(ValidationError, match=message):
        validate(TrainOptions.from_values(values))


def test_optimizer_loss_and_schedule_settings(tmp_path, ds):
    cmd = build(
        tmp_path, ds, optimizer="Prodigy", learning_rate=1.0, unet_lr=1.0,
        optimizer_args="decouple=True weight_decay=0.01 d_coef=2 use_bias_correction=True safeguard_warmup=True",
        lr_warmup_ratio=0.05, max_grad_norm=0.0, scale_weight_norms=1.0, multires_noise_iterations=6,
        multires_noise_discount=0.2, lr_scheduler_num_cycles=3,
    )  # fmt: skip
    opt = cmd.config["optimizer"]
    assert argv_list(cmd, "--optimizer_args")[2] == "d_coef=2.0" and opt["lr_warmup_steps"] == 0.05
    assert opt["max_grad_norm"] == 0.0 and opt["lr_scheduler_num_cycles"] == 3
    assert cmd.config["network"]["scale_weight_norms"] == 1.0
    assert cmd.config["training"]["multires_noise_iterations"] == 6
    assert cmd.config["training"]["multires_noise_discount"] == 0.2
    defaults = build(tmp_path, ds).config
    assert (
        "max_grad_norm" not in defaults["optimizer"] and "multires_noise_discount" not in defaults["training"]
    )


def test_clip_skip_is_for_sd1_and_sd2_only(tmp_path, ds):
    assert build(tmp_path, ds, clip_skip=2).config["training"]["clip_skip"] == 2
    with pytest.raises(ValidationError, match="clip_skip applies only to SD 1.x, SD 2.x"):
        build(tmp_path, ds, "sdxl", device="gpu", clip_skip=2)


def test_color_aug_and_random_crop_turn_latent_caching_off(tmp_path, ds):
    cmd = build(tmp_path, ds, color_aug=True)
    assert cmd.config["training"]["cache_latents"] is False
    assert cmd.config["training"]["cache_latents_to_disk"] is False
    assert any("cache_latents is off" in w and "color_aug" in w for w in cmd.warnings)
    from_toml = build(tmp_path, ds, augments=("random_crop",))
    assert from_toml.config["training"]["cache_latents"] is False
    assert build(tmp_path, ds).config["training"]["cache_latents"] is True


def test_the_dataset_toml_decides_latent_caching_too(tmp_path, ds):
    path = tmp_path / "aug.toml"
    path.write_text(
        "[general]\n[[datasets]]\n  [[datasets.subsets]]\n  image_dir = 'x'\n  random_crop = true\n"
    )
    assert train.dataset_augments(path) == ("random_crop",)
    assert train.dataset_augments(ds.toml_path) == ()


def test_caption_defaults_go_to_general_and_a_subsets_own_value_wins(tmp_path, ds):
    data = {
        "general": {},
        "datasets": [{"subsets": [{"image_dir": "a", "shuffle_caption": False}, {"image_dir": "b"}]}],
    }
    dataset_config.apply_patch(data, {"subset_defaults": {"shuffle_caption": True, "keep_tokens": 2}})
    assert data["general"] == {"shuffle_caption": True, "keep_tokens": 2}
    assert data["datasets"][0]["subsets"][0] == {"image_dir": "a", "shuffle_caption": False}


def test_subset_caption_keys_take_only_caption_settings():
    keys = command.subset_caption_keys({"flip_aug": True, "keep_tokens": 0, "caption_dropout_rate": 0.1})
    assert keys == {"flip_aug": True, "caption_dropout_rate": 0.1}
    with pytest.raises(ValidationError, match="optimizer is not a caption or augmentation setting"):
        command.subset_caption_keys({"optimizer": "Lion"})


def test_states_resume_and_tensorboard(tmp_path, ds):
    cmd = build(tmp_path, ds, save_state=True, save_last_n_epochs_state=2, save_last_n_epochs=3)
    assert (
        cmd.config["saving"]["save_state"] is True and cmd.config["saving"]["save_last_n_epochs_state"] == 2
    )
    assert cmd.config["saving"]["save_last_n_epochs"] == 3
    assert cmd.config["training"]["logging_dir"] == str(tmp_path / "logs")
    assert cmd.config["training"]["log_prefix"] == "out-007_"
    assert "logging_dir" not in build(tmp_path, ds, tensorboard=False).config["training"]
    assert "resume" not in cmd.config["saving"]
    end_only = build(tmp_path, ds, save_state_on_train_end=True).config["saving"]
    assert end_only["save_state_on_train_end"] is True and "save_state" not in end_only


def test_network_weights_and_dim_from_weights(tmp_path, ds):
    lora = tmp_path / "prev.safetensors"
    cmd = build(tmp_path, ds, network_weights=str(lora), dim_from_weights=True)
    assert cmd.config["network"]["network_weights"] == str(lora)
    assert cmd.config["network"]["dim_from_weights"] is True


# --------------------------------------------------------------------------- buckets and rates before launch
def test_a_minimum_bucket_above_the_training_size_is_a_sentence_before_launch():
    with pytest.raises(ValidationError, match=r"min_bucket_reso 256 is above the training size 64x64"):
        validate(TrainOptions(buckets="on", width=64, height=64, min_bucket_reso=256))


def test_a_maximum_bucket_below_the_training_size_is_a_sentence_before_launch():
    with pytest.raises(ValidationError, match=r"max_bucket_reso 512 is below the training size 768x512"):
        validate(TrainOptions(buckets="on", width=768, height=512, max_bucket_reso=512))


def test_bucket_steps_must_divide_by_the_familys_step():
    opts = TrainOptions(buckets="on", bucket_reso_steps=32, min_bucket_reso=256, max_bucket_reso=1024)
    check_family(opts, "sdxl")
    with pytest.raises(ValidationError, match=r"bucket_reso_steps is 32; sd-scripts' SD 1.x trainer needs a"):
        check_family(opts, "sd1")


def test_a_learning_rate_above_one_with_adamw_is_a_warning():
    warnings = validate(TrainOptions(learning_rate=10.0))
    assert any("with AdamW will most likely diverge" in w for w in warnings)
