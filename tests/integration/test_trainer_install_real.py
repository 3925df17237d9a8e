"""The managed trainer for real: `lora-workbench trainer install` from a local sd-scripts clone into
an empty LORA_WORKBENCH_HOME with no trainer configured, then a real training run on what it built;
a second install that changes nothing; a broken requirement that leaves the trainer in use working;
kill -9 in the middle of pip, then install again.

Needs LORA_WORKBENCH_TRAINER_SOURCE (a local sd-scripts clone or mirror that holds the pinned commit)
and a pip that finds torch and sd-scripts' requirements without a long download (its cache or a
wheel folder): each build is a full venv (about 6 GB, a few minutes on 2 cores), deleted at the end.
Also the tier's ComfyUI (tokenizer files), SD1.5 checkpoint and smoke dataset.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from lora_workbench.trainer_env import pins

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parents[2]
SOURCE_ENV = "LORA_WORKBENCH_TRAINER_SOURCE"
KOHYA_VARS = ("KOHYA_SS_PATH", "KOHYA_PYTHON", "LORA_WORKBENCH_TOKENIZER_CACHE")


@pytest.fixture(scope="module")
def source() -> str:
    value = os.environ.get(SOURCE_ENV)
    if not value:
        pytest.skip(f"{SOURCE_ENV} is not set: point it at a local sd-scripts clone or mirror")
    found = subprocess.run(
        ["git", "-C", value, "cat-file", "-e", f"{pins.REF}^{{commit}}"], capture_output=True
    )
    if found.returncode != 0:
        pytest.skip(f"{SOURCE_ENV}={value} has no commit {pins.REF[:12]}")
    return value


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    folder = tmp_path_factory.mktemp("trainer-home")
    yield folder
    shutil.rmtree(folder, ignore_errors=True)  # two or three venvs of torch: gigabytes


def cli_env(home: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in KOHYA_VARS}
    env["LORA_WORKBENCH_HOME"] = str(home)
    env["LORA_WORKBENCH_SETTINGS"] = str(home / "no-settings.json")
    return env


def trainer_cli(home: Path, *args: str) -> subprocess.CompletedProcess:
    argv = [sys.executable, "-m", "lora_workbench", "trainer", *args]
    done = subprocess.run(argv, cwd=REPO, env=cli_env(home), capture_output=True, text=True)
    print(
        f"\n$ lora-workbench trainer {' '.join(args)}  -> {done.returncode}\n{done.stdout}{done.stderr[-3000:]}"
    )
    return done


def status(home: Path) -> dict:
    return json.loads(trainer_cli(home, "status", "--json").stdout)


@pytest.fixture(scope="module")
def installed(home, source, comfyui_dir) -> dict:
    t0 = time.monotonic()
    done = trainer_cli(home, "install", "--source", source, "--comfyui", str(comfyui_dir))
    print(f"first install: {time.monotonic() - t0:.0f}s")
    assert done.returncode == 0, done.stderr
    return status(home)["managed"]


def test_an_install_with_no_trainer_configured_trains_for_real(
    installed, home, tmp_path, monkeypatch, smoke_images, test_checkpoint
):
    from lora_workbench import paths
    from lora_workbench.dataset import dataset_toml
    from lora_workbench.modelfiles.safetensors_header import read_header
    from lora_workbench.training import train
    from lora_workbench.training.options import TrainOptions

    for var in KOHYA_VARS:
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("LORA_WORKBENCH_HOME", str(home))
    monkeypatch.setenv("LORA_WORKBENCH_SETTINGS", str(tmp_path / "none.json"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")
    assert paths.kohya_ss_path() == Path(installed["src"])
    proj = tmp_path / "managedproj"
    sub = proj / "images" / "1_testsubject"
    shutil.copytree(smoke_images, sub)
    (proj / "dataset.toml").write_text(
        '[general]\ncaption_extension = ".txt"\nenable_bucket = false\n\n[[datasets]]\nresolution = [64, 64]\n'
        f'batch_size = 1\n\n  [[datasets.subsets]]\n  image_dir = "{sub.as_posix()}"\n  class_tokens = "testsubject"\n'
        "  num_repeats = 1\n",
        encoding="utf-8",
    )
    spec = TrainOptions(epochs=1, width=64, height=64, network_dim=4, network_alpha=4, device="cpu", seed=42)
    run = train.train(spec, dataset_toml.load_project_dataset(proj), test_checkpoint)
    command = (Path(run.run_dir) / "command.txt").read_text()
    print("command:", command.splitlines()[-1][:400])
    config = (Path(run.run_dir) / "config.toml").read_text()
    assert installed["python"] in command and str(home / "trainers" / "sd-scripts" / "tokenizers") in config
    assert any(k.startswith("lora_unet_") for k in read_header(run.lora.path).keys())


def test_a_second_install_changes_nothing(installed, home, source, comfyui_dir):
    t0 = time.monotonic()
    done = trainer_cli(home, "install", "--source", source, "--comfyui", str(comfyui_dir))
    print(f"second install: {time.monotonic() - t0:.2f}s")
    assert done.returncode == 0 and done.stdout.startswith(f"up to date: {installed['build']}")


def test_a_broken_requirement_leaves_the_trainer_in_use_working(installed, home, source, tmp_path):
    repo = tmp_path / "broken"
    subprocess.run(["git", "clone", "-q", "--no-checkout", source, str(repo)], check=True)
    git = ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@example.invalid"]
    subprocess.run([*git, "checkout", "-q", pins.REF], check=True)
    reqs = repo / "requirements.txt"
    reqs.write_text("lora-workbench-no-such-package==9.9.9\n" + reqs.read_text(), encoding="utf-8")
    subprocess.run([*git, "commit", "-q", "-am", "a requirement that does not exist"], check=True)
    ref = subprocess.run(
        [*git, "rev-parse", "HEAD"], check=True, capture_output=True, text=True
    ).stdout.strip()
    done = trainer_cli(home, "install", "--source", str(repo), "--ref", ref)
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert '"ERROR: ' in done.stderr and "lora-workbench-no-such-package" in done.stderr
    assert f"The trainer in use ({installed['build']}) is unchanged" in done.stderr
    assert status(home)["managed"]["build"] == installed["build"]
    assert trainer_cli(home, "check").returncode == 0


def test_an_install_killed_in_the_middle_of_pip_converges_when_run_again(
    installed, home, source, comfyui_dir
):
    other_python = os.path.realpath(shutil.which("python3.11") or sys.executable)  # another build
    args = ["install", "--source", source, "--python", other_python, "--comfyui", str(comfyui_dir)]
    argv = [sys.executable, "-m", "lora_workbench", "trainer", *args]
    proc = subprocess.Popen(argv, cwd=REPO, env=cli_env(home), start_new_session=True)
    trainer_dir = home / "trainers" / "sd-scripts"
    try:
        log = wait_for_pip(trainer_dir, installed["build"], proc)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # the CLI and pip with it, as a crash would
        proc.wait()
    print(f"killed after {len(log.read_text().splitlines())} lines of {log}")
    assert status(home)["managed"]["build"] == installed["build"]
    done = trainer_cli(home, *args)
    assert done.returncode == 0
    after = status(home)["managed"]
    assert after["build"] == log.parent.parent.name and after["previous"] == installed["build"]
    assert trainer_cli(home, "check").returncode == 0


def wait_for_pip(trainer_dir: Path, old: str, proc: subprocess.Popen) -> Path:
    """The new build's pip log once pip has printed a few lines (so the kill lands inside pip)."""
    for _ in range(3000):
        for log in trainer_dir.glob("*/build/pip.log"):
            if log.parent.parent.name != old and len(log.read_text(errors="replace").splitlines()) >= 20:
                return log
        assert proc.poll() is None, "the install ended before pip got going"
        time.sleep(0.2)
    raise AssertionError("pip never started")
