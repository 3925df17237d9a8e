"""musubi-tuner installed for real by the pack: `lora-workbench trainer install --trainer musubi-tuner`
from a local clone into an empty LORA_WORKBENCH_HOME with nothing configured; its own venv (pip install
-e of the checkout with musubi's pins, torch held by a constraint), checked by importing musubi_tuner and
running qwen_image_train_network.py --help (Wan's scripts need a CUDA device even for --help); then found as the musubi-tuner in use, a second install that changes
nothing, `trainer check`, and sd-scripts' managed folder left alone.

Needs LORA_WORKBENCH_MUSUBI_SOURCE (a local musubi-tuner clone or mirror holding the pinned commit) and
a pip that finds torch and musubi's requirements without a long download (a cache, a wheel folder or a
local index). The build is a full torch venv (about 6 GB; minutes on 2 cores), deleted at the end.
LORA_WORKBENCH_TEST_TORCH picks its torch (default: the pack's fallback pins, as --torch).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from lora_workbench.trainer_env import pins

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parents[2]
MUSUBI = "musubi-tuner"
SOURCE_ENV = "LORA_WORKBENCH_MUSUBI_SOURCE"
TRAINER_VARS = ("MUSUBI_TUNER_PATH", "MUSUBI_PYTHON", "KOHYA_SS_PATH", "KOHYA_PYTHON")


@pytest.fixture(scope="module")
def source() -> str:
    value = os.environ.get(SOURCE_ENV)
    if not value:
        pytest.skip(f"{SOURCE_ENV} is not set: point it at a local musubi-tuner clone or mirror")
    ref = pins.spec(MUSUBI).ref
    found = subprocess.run(["git", "-C", value, "cat-file", "-e", f"{ref}^{{commit}}"], capture_output=True)
    if found.returncode != 0:
        pytest.skip(f"{SOURCE_ENV}={value} has no commit {ref[:12]}")
    return value


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    folder = tmp_path_factory.mktemp("musubi-home")
    yield folder
    shutil.rmtree(folder, ignore_errors=True)  # a torch venv: gigabytes


def cli_env(home: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in TRAINER_VARS}
    env["LORA_WORKBENCH_HOME"] = str(home)
    env["LORA_WORKBENCH_SETTINGS"] = str(home / "no-settings.json")
    return env


def trainer_cli(home: Path, *args: str) -> subprocess.CompletedProcess:
    argv = [sys.executable, "-m", "lora_workbench", "trainer", *args, "--trainer", MUSUBI]
    done = subprocess.run(argv, cwd=REPO, env=cli_env(home), capture_output=True, text=True)
    print(f"\n$ lora-workbench trainer {' '.join(args)} --trainer {MUSUBI} -> {done.returncode}")
    print(done.stdout + done.stderr[-3000:])
    return done


def install_args(source: str) -> list[str]:
    torch = os.environ.get("LORA_WORKBENCH_TEST_TORCH") or " ".join(pins.FALLBACK_TORCH)
    return ["install", "--source", source, "--torch", torch]


@pytest.fixture(scope="module")
def installed(home, source) -> dict:
    t0 = time.monotonic()
    done = trainer_cli(home, *install_args(source))
    print(f"first musubi-tuner install: {time.monotonic() - t0:.0f}s")
    assert done.returncode == 0, done.stderr
    return json.loads(trainer_cli(home, "status", "--json").stdout)["managed"]


def test_the_install_checks_musubi_tuner_and_becomes_the_one_in_use(installed, home, monkeypatch):
    from lora_workbench import paths
    from lora_workbench.training.backends.musubi.install import find_musubi

    assert installed["commit"] == pins.spec(MUSUBI).ref and installed["checked"]["torch"]
    for var in TRAINER_VARS:
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("LORA_WORKBENCH_HOME", str(home))
    found = find_musubi()
    assert (str(found.root), str(found.python)) == (installed["src"], installed["python"])
    assert paths.managed_trainer() is None  # sd-scripts' folder: untouched
    assert not (home / "trainers" / "sd-scripts").exists()
    probe = subprocess.run(
        [installed["python"], "-c", "import musubi_tuner, sys; print(musubi_tuner.__file__)"],
        capture_output=True,
        text=True,
    )
    assert probe.returncode == 0 and probe.stdout.strip().startswith(installed["src"]), probe.stderr


def test_a_second_musubi_install_changes_nothing_and_check_passes(installed, home, source):
    t0 = time.monotonic()
    done = trainer_cli(home, *install_args(source))
    print(f"second install: {time.monotonic() - t0:.2f}s")
    assert done.returncode == 0 and done.stdout.startswith(f"up to date: {installed['build']}")
    checked = trainer_cli(home, "check")
    assert checked.returncode == 0 and checked.stdout.startswith("ok: torch ")
