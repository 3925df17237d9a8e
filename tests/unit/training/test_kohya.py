"""Spec -> sd-scripts argv and config TOML, checked against sd-scripts' REAL option names
(tests/fixtures/sdscripts/*_options.txt, extracted from its argparse), and validation sentences."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from lora_workbench import toml_writer
from lora_workbench.dataset.dataset_toml import dataset_from_toml, tomllib
from lora_workbench.errors import ValidationError
from lora_workbench.modelfiles.detect import detect_model
from lora_workbench.training import kohya
from lora_workbench.training.kohya import TrainSpec
from tests.unit import train_fakes

fakes = train_fakes  # shared fakes: synthetic checkpoints, projects, a fake sd-scripts tree
TN = fakes.option_set("train_network_options.txt")
SDXL = fakes.option_set("sdxl_train_network_options.txt")
ACCEL = fakes.option_set("accelerate_launch_options.txt")


@pytest.fixture
def env(tmp_path, monkeypatch):
    monkeypatch.setenv("LORA_WORKBENCH_SETTINGS", str(tmp_path / "none.json"))
    kohya_root = fakes.make_kohya(tmp_path, monkeypatch)
    project = fakes.make_project(tmp_path)
    ds = dataset_from_toml(project / "dataset.toml", project)
    return kohya_root, project, ds


def _build(tmp_path, ds, ckpt_tensors, device="cpu", **spec_kw):
    ckpt = fakes.write_checkpoint(tmp_path / "base.safetensors", ckpt_tensors)
    spec = TrainSpec(**spec_kw)
    out = tmp_path / "out"
    return kohya.build_command(
        spec,
        ds,
        detect_model(ckpt, spec.model_type),
        kohya.find_install(),
        output_dir=out,
        dataset_toml=out / "dataset.toml",
        config_path=out / "config.toml",
        prompts_path=out / "prompts.txt",
        device=device,
    )


def _script_options(cmd):
    i = next(i for i, a in enumerate(cmd.argv) if a.endswith(".py"))
    return kohya.argv_options(cmd.argv[:i]), kohya.argv_options(cmd.argv[i + 1 :])


def test_seed_defaults():
    s = TrainSpec()
    assert (s.epochs, s.width, s.height, s.seed, s.network_dim, s.network_alpha) == (
        3,
        512,
        512,
        12345,
        128,
        128,
    )
    assert (s.learning_rate, s.unet_lr, s.text_encoder_lr, s.noise_offset) == (1e-4, 1e-4, 5e-5, 0.0)
    assert (s.sample_sampler, s.lr_scheduler, s.optimizer) == ("dpm_2", "cosine_with_restarts", "AdamW")


def test_sd15_argv_and_config_use_only_real_sdscripts_options(tmp_path, env):
    _, project, ds = env
    cmd = _build(tmp_path, ds, fakes.sd1_tensors(), sample_prompts="a photo of subject", width=64, height=64)
    assert cmd.script == "train_network.py" and cmd.argv[-3].endswith("train_network.py")
    launcher_opts, script_opts = _script_options(cmd)
    assert set(launcher_opts) <= ACCEL, set(launcher_opts) - ACCEL
    assert set(script_opts) <= TN
    keys = kohya.config_keys(cmd.config)
    assert set(keys) <= TN, set(keys) - TN
    assert len(keys) == len(set(keys))  # no option twice across sections


def test_sdxl_argv_and_config_use_only_real_sdscripts_options(tmp_path, env):
    _, _, ds = env
    cmd = _build(
        tmp_path,
        ds,
        fakes.sdxl_tensors(),
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
    assert set(kohya.config_keys(cmd.config)) <= SDXL
    assert "--multi_gpu" in cmd.argv and cmd.argv[cmd.argv.index("--gpu_ids") + 1] == "0,1"
    assert cmd.config["training"]["no_half_vae"] is True
    assert cmd.config["network"]["network_train_unet_only"] is True
    assert "text_encoder_lr" not in cmd.config["optimizer"]


def test_config_toml_parses_and_resolution_is_a_string(tmp_path, env):
    _, _, ds = env
    cmd = _build(tmp_path, ds, fakes.sd1_tensors(), width=768, height=512, buckets="on")
    data = tomllib.loads(toml_writer.dumps(cmd.config))
    assert data["dataset"]["resolution"] == "768,512"
    assert data["optimizer"]["text_encoder_lr"] == 5e-5 and data["network"]["network_alpha"] == 128.0
    assert data["training"]["max_train_steps"] == ds.steps_per_epoch * 3  # the seed's rule
    assert (
        data["training"]["save_model_as"] == "safetensors"
        and data["network"]["network_module"] == "networks.lora"
    )
    assert data["training"]["cache_latents_to_disk"] and data["training"]["gradient_checkpointing"]
    assert data["dataset"]["bucket_no_upscale"] is True


def test_epochs_step_rule_lets_sdscripts_count(tmp_path, env):
    _, _, ds = env
    cmd = _build(tmp_path, ds, fakes.sd1_tensors(), step_rule="epochs", epochs=5)
    assert cmd.config["training"]["max_train_epochs"] == 5 and "max_train_steps" not in cmd.config["training"]


def test_cpu_run_is_launched_with_cpu_flags(tmp_path, env):
    _, _, ds = env
    cmd = _build(tmp_path, ds, fakes.sd1_tensors())
    assert "--cpu" in cmd.argv and cmd.mixed_precision == "no"
    assert cmd.argv[cmd.argv.index("--mixed_precision") + 1] == "no"
    assert cmd.argv[:3] == [sys.executable, "-m", "accelerate.commands.launch"]
    assert cmd.config["training"]["sdpa"] is True and "xformers" not in cmd.config["training"]


def test_python_launcher_runs_the_script_directly(tmp_path, env):
    _, _, ds = env
    cmd = _build(tmp_path, ds, fakes.sd1_tensors(), launcher="python")
    assert cmd.argv[0] == sys.executable and cmd.argv[1].endswith("train_network.py")
    assert cmd.argv[2:] == ["--config_file", str(tmp_path / "out" / "config.toml")]


def test_multi_node_options(tmp_path, env):
    _, _, ds = env
    cmd = _build(
        tmp_path,
        ds,
        fakes.sd1_tensors(),
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
    cmd = _build(tmp_path, ds, fakes.sd2_tensors(), v_parameterization=True)
    assert cmd.config["model"]["v2"] is True and cmd.config["model"]["v_parameterization"] is True


def test_sample_prompts_go_into_a_file_never_into_argv(tmp_path, env):
    _, _, ds = env
    evil = "a cat --output_dir /etc\nsecond; rm -rf / --w 128"
    cmd = _build(tmp_path, ds, fakes.sd1_tensors(), sample_prompts=evil, width=64, height=64)
    assert not any("cat" in a or "rm -rf" in a for a in cmd.argv)
    lines = cmd.prompts.splitlines()
    assert lines[0] == "a cat --output_dir /etc --w 64 --h 64 --d 12345 --s 20"
    assert lines[1].startswith("second; rm -rf / --w 128 --h 64")
    assert cmd.config["sample"]["sample_sampler"] == "dpm_2"
    assert cmd.config["sample"]["sample_prompts"] == str(tmp_path / "out" / "prompts.txt")


def test_no_prompts_means_no_sample_options(tmp_path, env):
    _, _, ds = env
    assert "sample" not in _build(tmp_path, ds, fakes.sd1_tensors()).config


def test_tokenizer_cache_defaults_to_the_environment(tmp_path, env, monkeypatch):
    _, _, ds = env
    monkeypatch.setenv("LORA_WORKBENCH_TOKENIZER_CACHE", str(tmp_path / "tok"))
    cmd = _build(tmp_path, ds, fakes.sd1_tensors())
    assert cmd.config["model"]["tokenizer_cache_dir"] == str(tmp_path / "tok")


def test_output_name_defaults_to_the_sanitized_project_name(tmp_path, env):
    _, _, ds = env
    ds.project_dir = str(tmp_path / "my project (v2)")
    assert _build(tmp_path, ds, fakes.sd1_tensors()).output_name == "my_project_v2"


@pytest.mark.parametrize(
    "kw,match",
    [
        ({"width": 500}, "width is 500; sd-scripts needs a multiple of 64"),
        ({"height": 520, "buckets": "on"}, None),
        ({"height": 522, "buckets": "on"}, "multiple of 8"),
        ({"epochs": 0}, "epochs is 0; set it between 1"),
        ({"network_dim": 5000}, "network_dim is 5000"),
        ({"learning_rate": float("nan")}, "finite"),
        ({"output_name": "../evil"}, "output_name '../evil' may only hold"),
        ({"output_name": "a b"}, "may only hold"),
        ({"sample_sampler": "dpmpp_2m"}, "sample_sampler is 'dpmpp_2m'; choose one of: ddim"),
        ({"optimizer": "adamw; rm"}, "optimizer"),
        ({"lr_scheduler": "constant", "lr_warmup_steps": 10}, "constant' takes no warmup"),
        ({"launcher": "python", "num_processes": 2}, "launcher 'accelerate'"),
        ({"num_machines": 2}, "main_process_ip"),
        ({"gpu_ids": "0;1"}, "gpu_ids"),
        ({"main_process_ip": "--config_file=/tmp/x"}, "is not an address"),
        ({"num_machines": 2, "main_process_ip": "-h"}, "main_process_ip"),
        ({"caption_extension": "txt"}, "caption_extension 'txt' must look like '.txt'"),
        ({"device": "cpu", "mixed_precision": "fp16"}, "fp16 needs a GPU"),
        ({"device": "cpu", "optimizer": "AdamW8bit"}, "bitsandbytes"),
        ({"device": "cpu", "attention": "xformers"}, "xformers needs a GPU"),
    ],
)
def test_validation_names_the_setting_and_what_to_do(kw, match):
    if match is None:
        kohya.validate(TrainSpec(**kw))
        return
    with pytest.raises(ValidationError, match=match):
        kohya.validate(TrainSpec(**kw))


def test_alpha_above_dim_is_a_warning():
    warnings = kohya.validate(TrainSpec(network_dim=8, network_alpha=16))
    assert any("keep alpha <= dim" in w for w in warnings)


def test_finds_sd_scripts_inside_a_kohya_ss_checkout(tmp_path, monkeypatch):
    monkeypatch.setenv("LORA_WORKBENCH_SETTINGS", str(tmp_path / "none.json"))
    base = fakes.make_kohya(tmp_path, monkeypatch, layout="kohya_ss")
    inst = kohya.find_install()
    assert inst.scripts_dir == base / "sd-scripts" and inst.python == Path(sys.executable)


def test_missing_kohya_and_python_are_sentences(tmp_path, monkeypatch):
    monkeypatch.setenv("LORA_WORKBENCH_SETTINGS", str(tmp_path / "none.json"))
    monkeypatch.setenv("KOHYA_SS_PATH", str(tmp_path / "nowhere"))
    with pytest.raises(ValidationError, match="does not exist. Install kohya_ss"):
        kohya.find_install()
    (tmp_path / "empty").mkdir()
    monkeypatch.setenv("KOHYA_SS_PATH", str(tmp_path / "empty"))
    with pytest.raises(ValidationError, match="neither train_network.py nor sd-scripts/train_network.py"):
        kohya.find_install()
    fakes.make_kohya(tmp_path, monkeypatch)
    monkeypatch.delenv("KOHYA_PYTHON")
    with pytest.raises(ValidationError, match="No python found for sd-scripts .* set KOHYA_PYTHON"):
        kohya.find_install()
    venv_py = tmp_path / "sd-scripts" / "venv" / "bin" / "python"
    venv_py.parent.mkdir(parents=True)
    venv_py.write_text("")
    if os.name != "nt":
        assert kohya.find_install().python == venv_py
    monkeypatch.setenv("KOHYA_PYTHON", str(tmp_path / "nope" / "python"))
    with pytest.raises(ValidationError, match="KOHYA_PYTHON=.* does not exist"):
        kohya.find_install()


def test_toml_writer_round_trips_nested_tables_and_escapes():
    data = {
        "general": {"caption_extension": ".txt", "flag": True},
        "datasets": [
            {
                "resolution": [64, 64],
                "batch_size": 1,
                "subsets": [{"image_dir": 'C:\\data\\"x"\n', "num_repeats": 2, "w": 1e-05}],
            }
        ],
    }
    assert tomllib.loads(toml_writer.dumps(data)) == data


def test_display_command_is_shell_quoted(tmp_path, env):
    _, _, ds = env
    ds.project_dir = str(tmp_path / "with space")
    cmd = _build(tmp_path, ds, fakes.sd1_tensors())
    assert "'" not in cmd.argv[-1] and cmd.display().count("--config_file") == 1
