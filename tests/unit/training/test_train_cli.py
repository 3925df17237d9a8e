"""`lora-workbench train`: print-command, a run with a terminal progress line, Ctrl-C exits 130."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from lora_workbench import cli
from lora_workbench.training import model_files
from tests.unit import train_fakes

fakes = train_fakes  # shared fakes: synthetic checkpoints, projects, a fake sd-scripts tree
FAST = [
    "--epochs",
    "2",
    "--width",
    "64",
    "--height",
    "64",
    "--network-dim",
    "4",
    "--network-alpha",
    "4",
    "--device",
    "cpu",
    "--launcher",
    "python",
]


@pytest.fixture
def setup(tmp_path, monkeypatch):
    monkeypatch.setenv("LORA_WORKBENCH_SETTINGS", str(tmp_path / "none.json"))
    fakes.make_kohya(tmp_path, monkeypatch)
    for var in (
        "FAKE_SD_FAIL",
        "FAKE_SD_NO_FILE",
        "FAKE_SD_SLEEP",
        "FAKE_SD_CHILD_PIDFILE",
        "FAKE_SD_LAUNCHES",
    ):
        monkeypatch.delenv(var, raising=False)
    project = fakes.make_project(tmp_path)
    ckpt = fakes.write_checkpoint(tmp_path / "sd15.safetensors", fakes.sd1_tensors())
    return project, ckpt


def test_print_command_prints_the_argv_and_writes_nothing(setup, capsys):
    project, ckpt = setup
    rc = cli.main(
        ["train", str(project), "--base", str(ckpt), *FAST, "--sampler", "euler_a", "--no-train-text-encoder"]
    )
    assert rc == 0  # a real (fake) run first, so print-command must not touch its folder either
    before = sorted(p.name for p in (project / "output").iterdir())
    capsys.readouterr()
    rc = cli.main(["train", str(project), "--base", str(ckpt), *FAST, "--seed", "7", "--print-command"])
    out = capsys.readouterr().out
    assert rc == 0 and "train_network.py --config_file" in out and "p1-002" in out
    assert sorted(p.name for p in (project / "output").iterdir()) == before


def test_train_command_runs_and_reports_the_files(setup, capsys):
    project, ckpt = setup
    rc = cli.main(["train", str(project), "--base", str(ckpt), *FAST])
    captured = capsys.readouterr()
    assert rc == 0
    assert f"LoRA: {project / 'output' / 'p1-001' / 'p1.safetensors'}" in captured.out
    assert "\rfinished" in captured.err and "trigger words: subject" in captured.out
    rc = cli.main(["train", str(project), "--base", str(ckpt), *FAST])
    assert rc == 0 and "reused" in capsys.readouterr().out


def test_bad_values_exit_1_with_a_sentence(setup, capsys):
    project, ckpt = setup
    rc = cli.main(["train", str(project), "--base", str(ckpt), *FAST, "--width", "100"])
    assert rc == 1 and "width is 100" in capsys.readouterr().err


def test_missing_dataset_toml_says_what_to_run(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    rc = cli.main(["train", str(tmp_path / "empty"), "--base", str(tmp_path / "x.safetensors")])
    assert rc == 1 and "dataset apply" in capsys.readouterr().err


@pytest.mark.skipif(os.name == "nt", reason="POSIX signals")
def test_ctrl_c_cancels_cleanly_and_exits_130(setup, tmp_path):
    project, ckpt = setup
    pidfile = tmp_path / "child.pid"
    env = dict(os.environ, FAKE_SD_SLEEP="0.5", FAKE_SD_CHILD_PIDFILE=str(pidfile))
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "lora_workbench",
            "train",
            str(project),
            "--base",
            str(ckpt),
            *FAST,
            "--epochs",
            "30",
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 30
    while not pidfile.exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    time.sleep(1.0)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    assert "cancelled" in err
    from lora_workbench.training.proctree import pid_alive

    assert not pid_alive(int(pidfile.read_text()))


def test_every_setting_flag_reaches_the_options(setup):
    """Each setting's flag (and sd-scripts' spelling of it) sets that setting; nothing else changes."""
    from lora_workbench.cli.train import options_from_args
    from lora_workbench.training.settings import SETTINGS

    parser = cli.build_parser()
    for s in SETTINGS:
        value = s.example_value()
        for flag in (s.flag, *s.flags):
            if s.type is bool:
                argv = [flag if value else f"--no-{flag[2:]}"]
            else:
                argv = [flag, str(value)]
            opts = options_from_args(parser.parse_args(["train", "p", "--base", "b", *argv]))
            assert opts.non_defaults() == {s.name: value}, (flag, opts.non_defaults())


def test_the_old_flags_still_parse(setup):
    from lora_workbench.cli.train import options_from_args

    args = cli.build_parser().parse_args(
        ["train", "p", "--base", "b", *FAST, "--sampler", "euler_a", "--scheduler", "cosine", "--link",
         "--no-train-text-encoder", "--max-train-steps", "6", "--optimizer", "Lion"]
    )  # fmt: skip
    opts = options_from_args(args)
    assert (opts.sample_sampler, opts.lr_scheduler, opts.link_to_library, opts.train_text_encoder) == (
        "euler_a",
        "cosine",
        True,
        False,
    )
    assert (opts.epochs, opts.network_alpha, opts.max_train_steps, opts.optimizer) == (2, 4.0, 6, "Lion")


def test_a_flux_run_from_the_terminal_takes_its_files_by_path_or_from_comfyui(
    setup, tmp_path, capsys, monkeypatch
):
    from tests.unit import synthetic_models as sm

    project, _ = setup
    flux = sm.write_model(tmp_path / "flux1-dev.safetensors", sm.flux("dev"))
    t5 = sm.write_model(tmp_path / "files/t5xxl_fp16.safetensors", sm.t5xxl())
    comfy = tmp_path / "ComfyUI"
    sm.write_model(comfy / "models/clip/clip_l.safetensors", sm.clip_l())
    sm.write_model(comfy / "models/vae/ae.safetensors", sm.flux_ae())
    monkeypatch.setenv("COMFYUI_PATH", str(comfy))
    argv = ["train", str(project), "--base", str(flux), *FAST, "--t5xxl", str(t5), "--print-command"]
    assert cli.main([*argv, "--guidance-scale", "2.5"]) == 0
    out = capsys.readouterr().out
    assert "FLUX.1 dev base" in out and "flux_train_network.py --config_file" in out
    rc = cli.main([*argv, "--system-prompt", "draw"])
    err = capsys.readouterr().err
    assert rc == 1 and "system_prompt applies only to Lumina Image 2.0" in err
    monkeypatch.delenv("COMFYUI_PATH")
    rc = cli.main(argv)
    assert rc == 1 and "needs a CLIP-L text encoder (--clip_l)" in capsys.readouterr().err


# --------------------------------------------------------------------------- --base NAME
def comfy_with(tmp_path, monkeypatch, folder: str, name: str) -> Path:
    """A ComfyUI folder (COMFYUI_PATH) holding the synthetic SD 1.x checkpoint as models/<folder>/<name>."""
    comfy = tmp_path / "ComfyUI"
    fakes.write_checkpoint(comfy / "models" / folder / name, fakes.sd1_tensors())
    monkeypatch.setenv("COMFYUI_PATH", str(comfy))
    return comfy


def test_base_by_name_is_found_in_comfyuis_checkpoints(setup, tmp_path, monkeypatch, capsys):
    project, _ = setup
    comfy = comfy_with(tmp_path, monkeypatch, "checkpoints", "sd15/mine.safetensors")
    monkeypatch.chdir(tmp_path)  # the name is not looked up in the working folder
    assert cli.main(["train", str(project), "--base", "sd15/mine.safetensors", *FAST, "--print-command"]) == 0
    assert capsys.readouterr().out.startswith("# SD 1.x base")
    found = model_files.find_base_model("sd15/mine.safetensors", comfy)
    assert found == str(comfy / "models" / "checkpoints" / "sd15" / "mine.safetensors")


@pytest.mark.parametrize("given", ["flat.safetensors", "diffusion_models/flat.safetensors"])
def test_base_by_name_is_found_in_comfyuis_diffusion_models(setup, tmp_path, monkeypatch, capsys, given):
    project, _ = setup
    comfy = comfy_with(tmp_path, monkeypatch, "unet", "flat.safetensors")
    assert cli.main(["train", str(project), "--base", given, *FAST, "--print-command"]) == 0
    assert model_files.find_base_model(given, comfy) == str(comfy / "models" / "unet" / "flat.safetensors")


def test_base_by_name_reads_comfyuis_extra_model_paths(setup, tmp_path, monkeypatch, capsys):
    pytest.importorskip("yaml")
    project, _ = setup
    comfy = comfy_with(tmp_path, monkeypatch, "vae", "unused.safetensors")
    fakes.write_checkpoint(tmp_path / "shared" / "ckpts" / "far.safetensors", fakes.sd1_tensors())
    (comfy / "extra_model_paths.yaml").write_text(
        f"mine:\n  base_path: {tmp_path / 'shared'}\n  checkpoints: ckpts\n"
    )
    assert cli.main(["train", str(project), "--base", "far.safetensors", *FAST, "--print-command"]) == 0
    found = model_files.find_base_model("far.safetensors", comfy)
    assert found == str(tmp_path / "shared" / "ckpts" / "far.safetensors")


def test_a_base_name_not_found_is_one_sentence_naming_where_it_looked(setup, tmp_path, monkeypatch, capsys):
    project, _ = setup
    comfy = comfy_with(tmp_path, monkeypatch, "checkpoints", "other.safetensors")
    assert cli.main(["train", str(project), "--base", "missing.safetensors", *FAST, "--print-command"]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "'missing.safetensors' is not a file nor in" in err
    assert str(comfy / "models" / "checkpoints") in err and str(comfy / "models" / "diffusion_models") in err


def test_a_base_name_without_comfyui_path_says_it_was_not_searched(setup, monkeypatch, capsys):
    project, _ = setup
    monkeypatch.delenv("COMFYUI_PATH", raising=False)
    assert cli.main(["train", str(project), "--base", "missing.safetensors", *FAST]) == 1
    assert "COMFYUI_PATH is not set" in capsys.readouterr().err


def test_a_base_name_with_dot_dot_is_not_joined_to_comfyuis_folders(setup, tmp_path, monkeypatch, capsys):
    project, _ = setup
    comfy_with(tmp_path, monkeypatch, "checkpoints", "x.safetensors")
    fakes.write_checkpoint(tmp_path / "ComfyUI" / "models" / "escaped.safetensors", fakes.sd1_tensors())
    monkeypatch.chdir(project)
    assert cli.main(["train", str(project), "--base", "../escaped.safetensors", *FAST]) == 1
    assert "is not a file nor in" in capsys.readouterr().err
