"""kohya_ss configs mean what they meant (issue 22): configs shaped like the ones people share reach
sd-scripts as the config asked, or stop with a sentence naming the key; a flag or an option node the
user gives wins over the config, even at its default value."""

from __future__ import annotations

import json

import pytest

from lora_workbench import cli
from lora_workbench.dataset.dataset_toml import dataset_from_toml
from lora_workbench.errors import ValidationError
from lora_workbench.modelfiles.detect import detect_model
from lora_workbench.training import kohya
from lora_workbench.training.backends.sd_scripts import kohya_gui
from lora_workbench.training.command import Target, build_command
from lora_workbench.training.options import TrainOptions
from lora_workbench.training.validation import check_family, validate
from tests.unit import synthetic_models as sm
from tests.unit import train_fakes as fakes

FLUX_FILES = {"clip_l": "/m/clip_l.safetensors", "t5xxl": "/m/t5.safetensors", "ae": "/m/ae.safetensors"}


@pytest.fixture
def ds(tmp_path, monkeypatch):
    monkeypatch.setenv("LORA_WORKBENCH_SETTINGS", str(tmp_path / "none.json"))
    fakes.make_kohya(tmp_path, monkeypatch)
    project = fakes.make_project(tmp_path, images=5)
    return dataset_from_toml(project / "dataset.toml", project)


def built(tmp_path, ds, config: dict, family: str = "sd1", **explicit):
    """What sd-scripts gets from a GUI config (plus explicit settings): (command, flat config)."""
    imp = kohya_gui.import_config(config, "shared.json")
    imp.check(dict.fromkeys(explicit, "test"))
    opts = TrainOptions.from_values({**imp.settings(explicit), **explicit})
    validate(opts)
    check_family(opts, family)
    tensors = {"sd1": fakes.sd1_tensors, "sdxl": fakes.sdxl_tensors, "flux": lambda: sm.flux("dev")}[family]
    ckpt = sm.write_model(tmp_path / f"{family}.safetensors", tensors())
    files = FLUX_FILES if family == "flux" else {}
    target = Target(ds, detect_model(ckpt), kohya.find_install(), "gpu", tmp_path / "out", model_files=files)
    cmd = build_command(opts, target)
    return cmd, {k: v for sec in cmd.config.values() for k, v in sec.items()}


def argv_values(cmd, flag: str) -> list[str]:
    rest = cmd.argv[cmd.argv.index(flag) + 1 :]
    return rest[: next((i for i, a in enumerate(rest) if a.startswith("--")), len(rest))]


# --------------------------------------------------------------------------- optimizer args
@pytest.mark.parametrize(
    "text",
    [
        "decouple=True weight_decay=0.01 d_coef=1.2 betas=(0.9,0.99)",
        '"decouple=True" "weight_decay=0.01" "d_coef=1.2" "betas=0.9,0.99"',
        "decouple=true weight_decay=0.01 d_coef=1.2 betas='0.9,0.99'",
        "decouple=True weight_decay=0.01 d_coef=1.2 betas=[0.9,0.99,]",
        "--optimizer_args decouple=True weight_decay=0.01 d_coef=1.2 betas=(0.9,0.99)",
    ],
)
def test_prodigy_args_written_any_way_sd_scripts_reads_reach_it_whole(tmp_path, ds, text):
    cmd, flat = built(tmp_path, ds, {"optimizer": "Prodigy", "learning_rate": 1.0, "optimizer_args": text})
    assert flat["optimizer_type"] == "Prodigy" and flat["learning_rate"] == 1.0
    assert argv_values(cmd, "--optimizer_args") == [
        "decouple=True",
        "weight_decay=0.01",
        "d_coef=1.2",
        "betas=0.9,0.99",
    ]


def test_one_odd_optimizer_arg_is_refused_by_name_and_the_others_are_kept():
    imp = kohya_gui.import_config(
        {"optimizer": "Prodigy", "optimizer_args": "decouple=True betas=(0.9, 0.99) weight_decay=0.01"}
    )
    assert imp.values["optimizer_args"] == "decouple=True weight_decay=0.01"
    assert imp.refused == [
        (
            "optimizer_args",
            "'betas=(0.9, 0.99)': the GUI and sd-scripts split the args at spaces, so sd-scripts would stop "
            "on it; write it without spaces (betas=(0.9,0.99))",
        )
    ]
    with pytest.raises(ValidationError, match=r"optimizer_args: 'betas=\(0\.9, 0\.99\)': the GUI"):
        imp.check()


def test_an_arg_the_optimizer_does_not_read_stops_the_import_unless_optimizer_args_is_given():
    imp = kohya_gui.import_config({"optimizer": "AdamW", "optimizer_args": "weight_decay=0.1 d_coef=2"})
    with pytest.raises(ValidationError, match=r"'d_coef=2': d_coef is not read by the AdamW optimizer"):
        imp.check()
    imp.check({"optimizer_args": "--optimizer-args"})  # the user's own args settle it


# --------------------------------------------------------------------------- keys that change training
def test_training_keys_of_the_config_reach_sd_scripts_as_settings(tmp_path, ds):
    config = {
        "max_token_length": "225",
        "debiased_estimation_loss": True,
        "min_timestep": 100,
        "max_timestep": 900,
        "noise_offset": 0.0357,
        "adaptive_noise_scale": 0.00357,
        "noise_offset_random_strength": True,
        "enable_bucket": True,
        "bucket_no_upscale": False,
        "bucket_reso_steps": 128,
        "min_bucket_reso": 256,
        "max_bucket_reso": 1024,
        "max_resolution": "512,512",
    }
    cmd, flat = built(tmp_path, ds, config)
    assert (flat["max_token_length"], flat["debiased_estimation_loss"]) == (225, True)
    assert (flat["min_timestep"], flat["max_timestep"]) == (100, 900)
    assert (flat["adaptive_noise_scale"], flat["noise_offset_random_strength"]) == (0.00357, True)
    assert (flat["bucket_no_upscale"], flat["bucket_reso_steps"]) == (False, 128)
    assert cmd.dataset_patch["datasets"]["bucket_no_upscale"] is False
    assert cmd.dataset_patch["datasets"]["bucket_reso_steps"] == 128


def test_additional_parameters_become_settings_by_their_sd_scripts_names(tmp_path, ds):
    text = '--max_grad_norm=0 --network_train_unet_only --debiased_estimation_loss --min_snr_gamma "5"'
    _, flat = built(tmp_path, ds, {"additional_parameters": text})
    assert (flat["max_grad_norm"], flat["network_train_unet_only"]) == (0.0, True)
    assert (flat["debiased_estimation_loss"], flat["min_snr_gamma"]) == (True, 5.0)


def test_a_scheduler_class_in_additional_parameters_stops_the_import_naming_it():
    imp = kohya_gui.import_config(
        {"additional_parameters": '--lr_scheduler_type "CosineAnnealingLR" --lr_scheduler_args "T_max=1000"'}
    )
    with pytest.raises(ValidationError) as err:
        imp.check()
    assert "additional_parameters --lr_scheduler_type: --lr_scheduler_type CosineAnnealingLR would" in str(
        err.value
    )
    assert "--lr_scheduler_args T_max=1000" in str(err.value)
    assert "--ignore-unsupported-keys" in str(err.value)
    imp.check(ignore_unsupported=True)  # the user's word: train without them


def test_the_guis_use_the_folder_name_caption_stops_the_import_with_what_to_do():
    imp = kohya_gui.import_config({"caption_extension": ".none-use-foldername"})
    assert "set caption_extension to your captions' extension" in dict(imp.refused)["caption_extension"]
    imp.check({"caption_extension": "--caption-extension"})


@pytest.mark.parametrize(("key", "off", "on"), [("loss_type", "l2", "huber"), ("masked_loss", False, True),
                                                ("prior_loss_weight", 1.0, 0.5)])  # fmt: skip
def test_a_key_with_no_setting_is_skipped_when_off_and_refused_when_on(key, off, on):
    assert dict(kohya_gui.import_config({key: off}).skipped)[key] == "off in the config; changes nothing here"
    assert dict(kohya_gui.import_config({key: on}).refused)[key].startswith(repr(on))


def test_a_prodigy_learning_rate_above_one_reaches_sd_scripts(tmp_path, ds):
    _, flat = built(tmp_path, ds, {"optimizer": "Prodigy", "learning_rate": 10, "unet_lr": 10})
    assert (flat["learning_rate"], flat["unet_lr"]) == (10.0, 10.0)


# --------------------------------------------------------------------------- LoKr full matrix
def test_lokr_dim_100000_is_lycoris_full_matrix(tmp_path, ds):
    config = {"LoRA_type": "LyCORIS/LoKr", "network_dim": 100000, "network_alpha": 1, "conv_dim": 100000,
              "conv_alpha": 1, "factor": 6, "decompose_both": False}  # fmt: skip
    cmd, flat = built(tmp_path, ds, config)
    assert flat["network_module"] == "lycoris.kohya" and flat["network_dim"] == 1024
    assert argv_values(cmd, "--network_args") == [
        "algo=lokr",
        "conv_dim=1024",
        "conv_alpha=1.0",
        "full_matrix=True",
        "factor=6",
    ]


# --------------------------------------------------------------------------- FLUX presets
FLUX1D = {  # the shape of the kohya_ss GUI's flux1D preset
    "LoRA_type": "Flux1", "flux1_checkbox": True, "network_dim": 16, "network_alpha": 16,
    "optimizer": "AdamW8bit", "learning_rate": 0.0003, "unet_lr": 0.0003, "text_encoder_lr": 0,
    "min_snr_gamma": 7, "mixed_precision": "bf16", "full_bf16": True, "fp8_base": True,
    "guidance_scale": 1, "discrete_flow_shift": 3, "timestep_sampling": "sigmoid",
    "model_prediction_type": "raw", "t5xxl_max_token_length": 512, "apply_t5_attn_mask": True,
    "flux1_cache_text_encoder_outputs": True, "train_blocks": "all", "split_mode": False,
    "max_resolution": "512,512", "enable_bucket": True, "bucket_reso_steps": 64, "min_bucket_reso": 256,
    "max_bucket_reso": 2048, "clip_skip": 1, "t5xxl": "put the full path here", "sdxl": False,
}  # fmt: skip


def test_the_flux1d_preset_trains_on_a_flux_base_as_it_asks(tmp_path, ds):
    cmd, flat = built(tmp_path, ds, FLUX1D, family="flux")
    assert cmd.script == "flux_train_network.py" and flat["network_module"] == "networks.lora_flux"
    assert (flat["timestep_sampling"], flat["guidance_scale"], flat["discrete_flow_shift"]) == (
        "sigmoid",
        1.0,
        3.0,
    )
    assert (flat["t5xxl_max_token_length"], flat["apply_t5_attn_mask"], flat["fp8_base"]) == (512, True, True)
    assert (flat["full_bf16"], flat["mixed_precision"], flat["optimizer_type"]) == (True, "bf16", "AdamW8bit")
    assert "min_snr_gamma" not in flat and flat["cache_text_encoder_outputs"] is True


def test_a_flux_preset_says_what_its_trainer_ignores_and_never_that_flux_is_not_trained():
    report = kohya_gui.import_config(FLUX1D, "flux1D.json").report()
    assert "not trained by this pack" not in report
    assert "skipped    min_snr_gamma: FLUX.1's trainer does not read it (changes nothing)" in report


# --------------------------------------------------------------------------- precedence
@pytest.fixture
def gui_config(tmp_path):
    path = tmp_path / "sd15 - EDG_LoraOptiSettings.json"
    path.write_text(
        json.dumps(
            {
                "optimizer": "AdamW8bit",
                "xformers": True,
                "min_snr_gamma": 5,
                "network_dim": 64,
                "epoch": 20,
                "seed": "1234",
                "max_resolution": "64,64",
            }
        ),  # fmt: skip
        encoding="utf-8",
    )
    return path


def start(argv: list[str]) -> TrainOptions:
    from lora_workbench.cli.train import _start_values, options_from_args

    args = cli.build_parser().parse_args(["train", "p", "--base", "b", *argv])
    values, _ = _start_values(args)
    return options_from_args(args, values)


def test_typed_flags_at_their_default_win_over_the_config(gui_config, capsys):
    flags = ["--optimizer", "AdamW", "--attention", "sdpa", "--min-snr-gamma", "0", "--network-dim", "128",
             "--epochs", "3", "--seed", "12345"]  # fmt: skip
    opts = start(["--kohya-json", str(gui_config), *flags])
    assert (opts.optimizer, opts.attention, opts.min_snr_gamma) == ("AdamW", "sdpa", 0.0)
    assert (opts.network_dim, opts.epochs, opts.seed) == (128, 3, 12345)
    out = capsys.readouterr().out
    assert "overridden optimizer: optimizer from --optimizer wins" in out
    assert "overridden xformers: attention from --attention wins" in out


def test_flags_left_out_take_the_configs_values(gui_config):
    opts = start(["--kohya-json", str(gui_config)])
    assert (opts.optimizer, opts.attention, opts.network_dim, opts.epochs) == (
        "AdamW8bit",
        "xformers",
        64,
        20,
    )


def test_a_gpu_only_optimizer_of_the_config_trains_on_the_cpu_when_the_flag_overrides_it(gui_config):
    opts = start(
        ["--kohya-json", str(gui_config), "--device", "cpu", "--optimizer", "AdamW", "--attention", "sdpa"]
    )
    validate(opts)  # no "needs a GPU" sentence left


def test_the_cli_stops_on_a_refused_key_and_goes_on_with_ignore_unsupported_keys(tmp_path, capsys):
    config = tmp_path / "gui.json"
    config.write_text(json.dumps({"loss_type": "huber", "network_dim": 8}), encoding="utf-8")
    with pytest.raises(ValidationError, match=r"loss_type: 'huber' is a loss this pack does not offer"):
        start(["--kohya-json", str(config)])
    assert start(["--kohya-json", str(config), "--ignore-unsupported-keys"]).network_dim == 8


def test_option_nodes_and_changed_widgets_win_over_the_gui_config_node(pack, comfy, roots):
    config = roots / "gui.json"
    config.write_text(json.dumps({"optimizer": "Lion", "epoch": 20, "network_dim": 64}), encoding="utf-8")
    gui = pack.NODE_CLASS_MAPPINGS["KohyaGuiConfigOptions"]()
    optimizer = pack.NODE_CLASS_MAPPINGS["KohyaOptimizerOptions"]()
    chain, _text = gui.collect(config_file=str(config), unique_id="2")["result"]
    (chain,) = optimizer.collect(options=chain, unique_id="3", optimizer="AdamW")
    collect = pack.nodes.kohya_lora_train.collect_options
    opts = collect({"epochs": 5, "network_dim": 32}, chain, "4")
    # the option node's AdamW (its default) wins; the epochs widget moved off its default wins; the
    # network_dim widget at its default gives way to the config
    assert (opts.optimizer, opts.epochs, opts.network_dim) == ("AdamW", 5, 64)


def test_the_trainer_node_stops_on_a_refused_key_unless_the_toggle_is_on(pack, comfy, roots):
    config = roots / "gui.json"
    config.write_text(json.dumps({"masked_loss": True, "network_dim": 8}), encoding="utf-8")
    gui = pack.NODE_CLASS_MAPPINGS["KohyaGuiConfigOptions"]()
    collect = pack.nodes.kohya_lora_train.collect_options
    chain, text = gui.collect(config_file=str(config), unique_id="2")["result"]
    assert "refused    masked_loss: True needs mask images" in text
    with pytest.raises(ValidationError, match=r"masked_loss: True needs mask images"):
        collect({}, chain, "4")
    chain, _ = gui.collect(config_file=str(config), ignore_unsupported_keys=True, unique_id="2")["result"]
    assert collect({}, chain, "4").network_dim == 8


def test_the_toggle_is_the_gui_config_nodes_last_widget_so_saved_workflows_keep_their_values(pack, comfy):
    from lora_workbench.training import node_layout

    required = pack.NODE_CLASS_MAPPINGS["KohyaGuiConfigOptions"].INPUT_TYPES()["required"]
    assert list(required) == ["preset", "config_file", "ignore_unsupported_keys"]
    old = {"id": 1, "type": "KohyaGuiConfigOptions", "widgets_values": ["(none)", "gui.json"], "inputs": [],
           "outputs": [], "pos": [0, 0], "size": [300, 100], "flags": {}, "order": 0, "mode": 0}  # fmt: skip
    ui = {"last_node_id": 1, "last_link_id": 0, "nodes": [old], "links": [], "version": 0.4}
    migrated, notes = node_layout.migrate_workflow(json.loads(json.dumps(ui)))
    assert migrated["nodes"][0]["widgets_values"] == ["(none)", "gui.json"] and not notes


def test_a_gui_config_with_trailing_commas_is_a_sentence_naming_the_file_and_imports_nothing(tmp_path):
    path = tmp_path / "guide.json"
    path.write_text('{"optimizer": "Prodigy", "optimizer_args": "betas=(0.9,0.99)", "epoch": 2,}\n')
    with pytest.raises(ValidationError, match=r"The kohya_ss config .*guide\.json is not valid JSON"):
        kohya_gui.import_file(path)


def test_another_optimizer_given_explicitly_takes_the_configs_optimizer_args_out_too(tmp_path, capsys):
    config = tmp_path / "prodigy.json"
    config.write_text(
        json.dumps({"optimizer": "Prodigy", "optimizer_args": "decouple=True d_coef=2", "epoch": 2}),
        encoding="utf-8",
    )
    opts = start(["--kohya-json", str(config), "--optimizer", "AdamW"])
    assert (opts.optimizer, opts.optimizer_args, opts.epochs) == ("AdamW", "", 2)
    validate(opts)
    assert (
        "overridden optimizer_args: optimizer_args from --optimizer (the config's" in capsys.readouterr().out
    )
