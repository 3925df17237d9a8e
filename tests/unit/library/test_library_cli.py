"""`lora-workbench init / link / link-trained`: summary lines and exit codes scripts can test."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from lora_workbench.cli import main
from lora_workbench.library.layout import LIBRARY_FOLDERS
from lora_workbench.modelfiles.safetensors_header import write_safetensors_header_only

REPO = Path(__file__).resolve().parents[3]


@pytest.fixture(autouse=True)
def isolated_env(tmp_path, monkeypatch):
    monkeypatch.setenv("LORA_WORKBENCH_SETTINGS", str(tmp_path / "none.json"))
    for var in ("COMFYUI_PATH", "A1111_PATH", "FORGE_PATH", "SD_MODELS_PATH"):
        monkeypatch.delenv(var, raising=False)


@pytest.fixture
def setup(tmp_path):
    lib = tmp_path / "lib"
    assert main(["init", str(lib)]) == 0
    (lib / "loras" / "a.safetensors").write_text("x")
    comfy = tmp_path / "ComfyUI"
    (comfy / "models/loras").mkdir(parents=True)
    return lib, comfy


def test_init_creates_the_layout(tmp_path, capsys):
    assert main(["init", str(tmp_path / "lib")]) == 0
    assert sorted(os.listdir(tmp_path / "lib")) == sorted(LIBRARY_FOLDERS)
    assert f"{len(LIBRARY_FOLDERS) + 1} folders created" in capsys.readouterr().out
    assert main(["init", str(tmp_path / "lib")]) == 0
    assert "0 folders created" in capsys.readouterr().out


def test_link_prints_a_summary_and_exits_0(setup, capsys, tmp_path):
    lib, comfy = setup
    rc = main(["link", str(lib), "--comfyui", str(comfy), "--a1111", str(tmp_path / "none"), "--no-forge"])
    out = capsys.readouterr().out
    assert rc == 0
    assert out.splitlines()[0] == "created 1, fixed 0, removed 0, collisions 0, skipped 1 target"
    assert (comfy / "models/loras/a.safetensors").is_symlink()


def test_link_exits_1_on_a_collision(setup, capsys):
    lib, comfy = setup
    (comfy / "models/loras/a.safetensors").write_text("mine")
    assert main(["link", str(lib), "--comfyui", str(comfy), "--no-a1111", "--no-forge"]) == 1
    assert "collision" in capsys.readouterr().out


def test_link_exits_1_when_the_library_is_missing(tmp_path, capsys):
    assert main(["link", str(tmp_path / "unmounted"), "--no-a1111", "--no-forge", "--no-comfyui"]) == 1
    assert "library missing" in capsys.readouterr().out


def test_link_dry_run_changes_nothing(setup, capsys):
    lib, comfy = setup
    assert main(["link", str(lib), "--comfyui", str(comfy), "--no-a1111", "--no-forge", "--dry-run"]) == 0
    assert capsys.readouterr().out.startswith("dry run: created 1")
    assert os.listdir(comfy / "models/loras") == []


def test_link_uses_comfyui_path_from_the_environment(setup, monkeypatch, capsys):
    lib, comfy = setup
    monkeypatch.setenv("COMFYUI_PATH", str(comfy))
    assert main(["link", str(lib), "--no-a1111", "--no-forge", "--category", "loras"]) == 0
    assert (comfy / "models/loras/a.safetensors").is_symlink()


def test_an_unknown_category_is_a_usage_error(setup, capsys):
    lib, comfy = setup
    assert main(["link", str(lib), "--category", "lora"]) == 1
    assert "Unknown library category lora" in capsys.readouterr().err


def test_link_trained_follows_the_suffix_rule(tmp_path, capsys):
    project = tmp_path / "project"
    (project / "output-v2").mkdir(parents=True)
    write_safetensors_header_only(project / "output-v2" / "x.safetensors", {"w": ("F16", [2, 2])})
    comfy = tmp_path / "ComfyUI"
    (comfy / "models/loras").mkdir(parents=True)
    assert main(["link-trained", str(project), "--comfyui", str(comfy), "--no-a1111", "--no-forge"]) == 0
    assert (comfy / "models/loras/x-v2.safetensors").is_symlink()
    assert capsys.readouterr().out.startswith("created 1")
    assert main(["link-trained", str(tmp_path / "nope"), "--comfyui", str(comfy)]) == 1


def test_link_watch_relinks_until_ctrl_c_and_exits_0(setup, tmp_path):
    lib, comfy = setup
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "lora_workbench",
            "link",
            str(lib),
            "--comfyui",
            str(comfy),
            "--no-a1111",
            "--no-forge",
            "--watch",
        ],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        seen = []
        for line in proc.stdout:  # the watcher is armed once it says so
            seen.append(line)
            if line.startswith("watching"):
                break
        assert (comfy / "models/loras/a.safetensors").is_symlink(), seen
        deadline = time.monotonic() + 30
        (lib / "loras" / "live.safetensors").write_text("x")
        while not (comfy / "models/loras/live.safetensors").is_symlink() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert (comfy / "models/loras/live.safetensors").is_symlink()
    finally:
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0, out
    assert "stopped watching" in out
