"""Options -> sd-scripts argv, config TOML and dataset TOML patch, checked against sd-scripts' REAL option
names (tests/fixtures/sdscripts/*_options.txt, extracted from its argparse); every setting reaches it."""

from __future__ import annotations

import sys

import pytest

from lora_workbench import toml_writer
from lora_workbench.dataset.dataset_toml import dataset_from_toml, tomllib
from lora_workbench.modelfiles.detect import detect_model
from lora_workbench.training import command, kohya
from lora_workbench.training.command import Target, build_command
from lora_workbench.training.options import TrainOptions
from lora_workbench.training.settings import SD_SCRIPTS_FAMILIES, SETTINGS, Where
from lora_workbench.training.validation import validate
from tests.unit import synthetic_models as sm
from tests.unit import train_fakes

fakes = train_fakes  # shared fakes: synthetic checkpoints, projects, a fake sd-scripts tree
TN = fakes.option_set("train_network_options.txt")
SDXL = fakes.option_set("sdxl_train_network_options.txt")
ACCEL = fakes.option_set("accelerate_launch_options.txt")
TENSORS = {
    "sd1": fakes.sd1_tensors,
    "sd2": fakes.sd2_tensors,
    "sdxl": fakes.sdxl_tensors,
    "sd3": lambda: sm.sd3_checkpoint("medium"),
    "flux": lambda: sm.flux("dev"),
    "chroma": sm.chroma,
    "lumina2": sm.lumina2,
    "hunyuan_image": sm.hunyuan_image,
    "anima": sm.anima,
}
# Settings that decide how the pack runs rather than what the command holds; each has its own test:
# model_type (test_model_type_overrides_the_detected_family), show_samples (test_show_samples_...),
# link_to_library (test_train.py::test_link_to_library_...), resume (tests/unit/training/test_resume.py).
# The extra model files are resolved to paths in train.prepare (test_model_files, test_train_families).
MODEL_FILES = {"clip_l", "clip_g", "t5xxl", "ae", "vae", "gemma2", "text_encoder", "byt5", "qwen3", "umt5"}
MODEL_FILES |= {"image_encoder"}
RUN_LEVEL = {"model_type", "show_samples", "link_to_library", "resume", "task", "model_version", *MODEL_FILES}
# An explicit script must be the one auto picks (test_a_script_that_does_not_fit_is_a_sentence).
SAME_AS_AUTO = {"script"}


@pytest.fixture
def env(tmp_path, monkeypatch):
    monkeypatch.setenv("LORA_WORKBENCH_SETTINGS", str(tmp_path / "none.json"))
    kohya_root = fakes.make_kohya(tmp_path, monkeypatch)
    project = fakes.make_project(tmp_path)
    ds = dataset_from_toml(project / "dataset.toml", project)
    return kohya_root, project, ds


def _build(tmp_path, ds, family="sd1", device=None, **values):
    ckpt = fakes.write_checkpoint(tmp_path / f"base_{family}.safetensors", TENSORS[family]())
    opts = TrainOptions.from_values(values)
    if device is None:
        device = opts.device if opts.device != "auto" else "gpu"
    model = detect_model(ckpt, opts.model_type)
    target = Target(ds, model, kohya.find_install(), device, tmp_path / "out", logging_dir=tmp_path / "logs")
    return build_command(opts, target)


def _sd_scripts_family(s) -> str | None:
    """The first sd-scripts family a setting applies to (None: musubi-tuner's alone)."""
    return next((f for f in s.families if f in SD_SCRIPTS_FAMILIES), None)


def _script_options(cmd):
    i = next(i for i, a in enumerate(cmd.argv) if a.endswith(".py"))
    return command.argv_options(cmd.argv[:i]), command.argv_options(cmd.argv[i + 1 :])


def _what_it_builds(cmd) -> tuple:
    return (cmd.argv, cmd.config, cmd.prompts, cmd.dataset_patch)


def test_sd15_argv_and_config_use_only_real_sdscripts_options(tmp_path, env):
    _, _, ds = env
    cmd = _build(tmp_path, ds, device="cpu", sample_prompts="a photo of subject", width=64, height=64)
    assert cmd.script == "train_network.py" and cmd.argv[-3].endswith("train_network.py")
    launcher_opts, script_opts = _script_options(cmd)
    assert set(launcher_opts) <= ACCEL, set(launcher_opts) - ACCEL
    assert set(script_opts) <= TN
    keys = command.config_keys(cmd.config)
    assert set(keys) <= TN, set(keys) - TN
    assert len(keys) == len(set(keys))  # no option twice across sections


def test_sdxl_argv_and_config_use_only_real_sdscripts_options(tmp_path, env):
    _, _, ds = env
    cmd = _build(
        tmp_path,
        ds,
        "sdxl",
        device="gpu",
        mixed_precision="fp16",
        train_text_encoder=False,
        buckets="on",
        num_processes=2,
        gpu_ids="0,1",
        sample_prompts="x",
    )
    assert cmd.script == "sdxl_train_network.py"
    launcher_opts, script_opts = _script_options(cmd)
    assert set(launcher_opts) <= ACCEL and set(script_opts) <= SDXL
    assert set(command.config_keys(cmd.config)) <= SDXL
    assert "--multi_gpu" in cmd.argv and cmd.argv[cmd.argv.index("--gpu_ids") + 1] == "0,1"
    assert cmd.config["training"]["no_half_vae"] is True
    assert cmd.config["network"]["network_train_unet_only"] is True
    assert "text_encoder_lr" not in cmd.config["optimizer"]


def test_every_setting_changes_what_is_built(tmp_path, env):
    """The builder test of the settings table: a non-default value of each setting (with what its
    example needs) changes the argv, config, prompts or dataset patch; run-level ones are listed."""
    _, _, ds = env
    assert {s.name for s in SETTINGS if s.where is Where.RUN} == RUN_LEVEL
    for s in SETTINGS:
        family = _sd_scripts_family(s)
        if s.where is Where.RUN or s.name in SAME_AS_AUTO or family is None:
            continue  # musubi-tuner's own settings: tests/unit/training/test_musubi_*.py
        base = _what_it_builds(_build(tmp_path, ds, family, **s.example_with))
        changed = {**s.example_with, s.name: s.example_value()}
        validate(TrainOptions.from_values(changed))
        assert _what_it_builds(_build(tmp_path, ds, family, **changed)) != base, s.name


def test_table_driven_settings_are_written_under_their_sdscripts_name(tmp_path, env):
    _, _, ds = env
    for s in SETTINGS:
        if s.where is not Where.CONFIG or s.emit == "custom" or _sd_scripts_family(s) is None:
            continue
        value = s.example_value()
        cmd = _build(tmp_path, ds, _sd_scripts_family(s), **{**s.example_with, s.name: value})
        assert cmd.config[s.section][s.sd_name] == (True if s.emit == "flag" else value), s.name


def test_config_toml_parses_and_resolution_is_a_string(tmp_path, env):
    _, _, ds = env
    cmd = _build(tmp_path, ds, device="cpu", width=768, height=512, buckets="on")
    data = tomllib.loads(toml_writer.dumps(cmd.config))
    assert data["dataset"]["resolution"] == "768,512"
    assert data["optimizer"]["text_encoder_lr"] == 5e-5 and data["network"]["network_alpha"] == 16.0
    assert data["training"]["max_train_steps"] == ds.steps_per_epoch * 3  # the seed's rule
    assert data["saving"]["save_model_as"] == "safetensors"
    assert data["network"]["network_module"] == "networks.lora"
    assert data["training"]["cache_latents_to_disk"] and data["training"]["gradient_checkpointing"]
    assert data["dataset"]["bucket_no_upscale"] is True
    assert cmd.dataset_patch["datasets"]["resolution"] == [768, 512]


def test_epochs_step_rule_lets_sdscripts_count(tmp_path, env):
    _, _, ds = env
    cmd = _build(tmp_path, ds, step_rule="epochs", epochs=5)
    assert cmd.config["training"]["max_train_epochs"] == 5 and "max_train_steps" not in cmd.config["training"]


def test_cpu_run_is_launched_with_cpu_flags(tmp_path, env):
    _, _, ds = env
    cmd = _build(tmp_path, ds, device="cpu")
    assert "--cpu" in cmd.argv and cmd.mixed_precision == "no"
    assert cmd.argv[cmd.argv.index("--mixed_precision") + 1] == "no"
    assert cmd.argv[:3] == [sys.executable, "-m", "accelerate.commands.launch"]
    assert cmd.config["training"]["sdpa"] is True and "xformers" not in cmd.config["training"]


def test_python_launcher_runs_the_script_directly(tmp_path, env):
    _, _, ds = env
    cmd = _build(tmp_path, ds, device="cpu", launcher="python")
    assert cmd.argv[0] == sys.executable and cmd.argv[1].endswith("train_network.py")
    assert cmd.argv[2:] == ["--config_file", str(tmp_path / "out" / "config.toml")]


def test_multi_node_options(tmp_path, env):
    _, _, ds = env
    cmd = _build(
        tmp_path,
        ds,
        device="gpu",
        num_machines=2,
        machine_rank=1,
        main_process_ip="10.0.0.1",
        main_process_port=29500,
    )
    a = cmd.argv
    assert a[a.index("--machine_rank") + 1] == "1" and a[a.index("--main_process_ip") + 1] == "10.0.0.1"
    assert a[a.index("--main_process_port") + 1] == "29500" and a[a.index("--num_machines") + 1] == "2"


def test_sd2_sets_v2(tmp_path, env):
    _, _, ds = env
    cmd = _build(tmp_path, ds, "sd2", v_parameterization=True)
    assert cmd.config["model"]["v2"] is True and cmd.config["model"]["v_parameterization"] is True


def test_an_option_for_another_family_is_a_sentence(tmp_path, env):
    _, _, ds = env
    with pytest.raises(Exception, match="v_parameterization applies only to SD 2.x base models .* SDXL"):
        _build(tmp_path, ds, "sdxl", v_parameterization=True)


def test_a_script_that_does_not_fit_is_a_sentence(tmp_path, env):
    _, _, ds = env
    with pytest.raises(
        Exception, match="script sdxl_train_network.py does not train SD 2.x .* set model_type to sdxl"
    ):
        _build(tmp_path, ds, "sd2", script="sdxl_train_network.py")
    auto = _build(tmp_path, ds, "sdxl")
    assert _what_it_builds(_build(tmp_path, ds, "sdxl", script="sdxl_train_network.py")) == _what_it_builds(
        auto
    )


def test_model_type_overrides_the_detected_family(tmp_path, env):
    _, _, ds = env
    cmd = _build(tmp_path, ds, "sd1", model_type="sd2")
    assert cmd.config["model"]["v2"] is True and cmd.arch == "sd2"


def test_sample_prompts_go_into_a_file_never_into_argv(tmp_path, env):
    _, _, ds = env
    evil = "a cat --output_dir /etc\nsecond; rm -rf / --w 128"
    cmd = _build(tmp_path, ds, sample_prompts=evil, width=64, height=64)
    assert not any("cat" in a or "rm -rf" in a for a in cmd.argv)
    lines = cmd.prompts.splitlines()
    assert lines[0] == "a cat --output_dir /etc --w 64 --h 64 --d 12345 --s 20"
    assert lines[1].startswith("second; rm -rf / --w 128 --h 64")
    assert cmd.config["sample"]["sample_sampler"] == "dpm_2"
    assert cmd.config["sample"]["sample_prompts"] == str(tmp_path / "out" / "prompts.txt")


def test_no_prompts_means_no_sample_options(tmp_path, env):
    _, _, ds = env
    assert "sample" not in _build(tmp_path, ds).config


def test_show_samples_without_prompts_samples_the_trigger_words(env):
    _, _, ds = env
    opts = command.effective_options(TrainOptions(show_samples=True), ds)
    assert opts.sample_prompts == "subject"
    given = TrainOptions(show_samples=True, sample_prompts="mine", epochs=3, width=64, height=64)
    assert command.effective_options(given, ds) is given


def test_tokenizer_cache_defaults_to_the_environment(tmp_path, env, monkeypatch):
    _, _, ds = env
    monkeypatch.setenv("LORA_WORKBENCH_TOKENIZER_CACHE", str(tmp_path / "tok"))
    cmd = _build(tmp_path, ds)
    assert cmd.config["model"]["tokenizer_cache_dir"] == str(tmp_path / "tok")


def test_output_name_defaults_to_the_sanitized_project_name(tmp_path, env):
    _, _, ds = env
    ds.project_dir = str(tmp_path / "my project (v2)")
    assert _build(tmp_path, ds).output_name == "my_project_v2"


def test_display_command_is_shell_quoted(tmp_path, env):
    _, _, ds = env
    ds.project_dir = str(tmp_path / "with space")
    cmd = _build(tmp_path, ds)
    assert "'" not in cmd.argv[-1] and cmd.display().count("--config_file") == 1


def test_dataset_patch_levels(env):
    _, _, ds = env
    patch = command.dataset_patch(TrainOptions(caption_extension=".caption", batch_size=3, buckets="on"), ds)
    assert patch["general"] == {"caption_extension": ".caption"}
    assert patch["datasets"]["batch_size"] == 3 and patch["datasets"]["enable_bucket"] is True
    assert command.dataset_patch(TrainOptions(width=64, height=64), ds) == {}
