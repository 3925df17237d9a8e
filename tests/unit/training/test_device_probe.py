"""The device probe: asked once per sd-scripts environment, asked again when what it depends on changes."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from lora_workbench import paths
from lora_workbench.errors import ValidationError
from lora_workbench.training import device_probe
from lora_workbench.training.device_probe import probe_device

pytestmark = pytest.mark.skipif(os.name == "nt", reason="the fake interpreter is a shell script")


class FakeEnv:
    """A venv-shaped folder whose bin/python answers like the probe and counts how often it was started."""

    def __init__(self, root: Path, device: str = "cpu"):
        self.root = root
        self.site = root / "lib" / "python3.11" / "site-packages"
        self.torch = self.site / "torch"
        self.torch.mkdir(parents=True)
        (self.torch / "__init__.py").write_text("# torch\n")
        (self.torch / "version.py").write_text("__version__ = '2.14.1'\n")
        self.calls = root / "calls.txt"
        self.python = root / "bin" / "python"
        self.python.parent.mkdir()
        self.set_device(device)

    def set_device(self, device: str) -> None:
        answer = json.dumps({"device": device, "torch": "2.14.1", "torch_dir": str(self.torch)})
        self.python.write_text(f"#!/bin/sh\necho started >> '{self.calls}'\necho '{answer}'\n")
        self.python.chmod(0o755)

    @property
    def started(self) -> int:
        return len(self.calls.read_text().splitlines()) if self.calls.exists() else 0


@pytest.fixture
def cache(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv(paths.CACHE_ENV, str(tmp_path / "cache"))
    for key in device_probe.ENV_KEYS:
        monkeypatch.delenv(key, raising=False)
    return tmp_path / "cache" / device_probe.CACHE_FILE


def touch_later(path: Path, text: str) -> None:
    time.sleep(0.01)  # a different mtime even on coarse clocks
    path.write_text(text)


def test_the_environment_is_started_once_and_then_remembered(tmp_path, cache):
    env = FakeEnv(tmp_path / "venv", "gpu")
    assert probe_device(env.python) == "gpu"
    assert probe_device(env.python) == "gpu"
    assert probe_device(str(env.python)) == "gpu"
    assert env.started == 1
    saved = json.loads(cache.read_text())[str(env.python)]
    assert saved["device"] == "gpu" and saved["torch"] == "2.14.1" and saved["torch_dir"] == str(env.torch)


def test_another_torch_makes_it_ask_again(tmp_path, cache):
    env = FakeEnv(tmp_path / "venv")
    assert probe_device(env.python) == "cpu"
    touch_later(env.torch / "version.py", "__version__ = '2.15.0+cu130'\n")
    env.set_device("gpu")
    assert probe_device(env.python) == "gpu"
    assert env.started == 2


def test_a_package_installed_in_the_environment_makes_it_ask_again(tmp_path, cache):
    env = FakeEnv(tmp_path / "venv")
    probe_device(env.python)
    time.sleep(0.01)
    (env.site / "nvidia_cudnn").mkdir()
    probe_device(env.python)
    assert env.started == 2


def test_hiding_the_gpus_makes_it_ask_again(tmp_path, cache, monkeypatch):
    env = FakeEnv(tmp_path / "venv", "gpu")
    assert probe_device(env.python) == "gpu"
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    env.set_device("cpu")
    assert probe_device(env.python) == "cpu"
    assert env.started == 2


def test_two_environments_keep_their_own_answers(tmp_path, cache):
    gpu, cpu = FakeEnv(tmp_path / "a", "gpu"), FakeEnv(tmp_path / "b", "cpu")
    assert [probe_device(gpu.python), probe_device(cpu.python)] == ["gpu", "cpu"]
    assert [probe_device(gpu.python), probe_device(cpu.python)] == ["gpu", "cpu"]
    assert gpu.started == cpu.started == 1


@pytest.mark.parametrize("content", ["{not json", "[1, 2]", '{"X": {"device": "tpu"}}'])
def test_a_damaged_cache_file_is_asked_around_and_rewritten(tmp_path, cache, content):
    env = FakeEnv(tmp_path / "venv")
    cache.parent.mkdir(parents=True)
    cache.write_text(content.replace("X", str(env.python)))
    assert probe_device(env.python) == "cpu"
    assert json.loads(cache.read_text())[str(env.python)]["device"] == "cpu"


def test_an_unwritable_cache_still_answers(tmp_path, monkeypatch):
    blocker = tmp_path / "file-not-folder"
    blocker.write_text("")
    monkeypatch.setenv(paths.CACHE_ENV, str(blocker / "cache"))
    env = FakeEnv(tmp_path / "venv", "gpu")
    assert probe_device(env.python) == "gpu" and probe_device(env.python) == "gpu"
    assert env.started == 2


def test_a_python_without_torch_is_a_sentence_and_nothing_is_remembered(tmp_path, cache):
    bad = tmp_path / "venv" / "bin" / "python"
    bad.parent.mkdir(parents=True)
    bad.write_text("#!/bin/sh\necho 'ModuleNotFoundError: No module named torch' >&2\nexit 1\n")
    bad.chmod(0o755)
    for _ in range(2):
        with pytest.raises(
            ValidationError, match=r"cannot import torch \(ModuleNotFoundError: No module named torch\)"
        ):
            probe_device(bad)
    assert not cache.exists()


def test_a_missing_python_is_a_sentence(tmp_path, cache):
    with pytest.raises(ValidationError, match="Could not run the sd-scripts python .*KOHYA_PYTHON"):
        probe_device(tmp_path / "nowhere" / "python")


def test_the_cache_folder_follows_the_platform_convention(monkeypatch, tmp_path):
    monkeypatch.delenv(paths.CACHE_ENV, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    if os.name == "posix" and os.uname().sysname == "Linux":
        assert paths.cache_dir() == tmp_path / "xdg" / "lora-workbench"
    monkeypatch.setenv(paths.CACHE_ENV, str(tmp_path / "mine"))
    assert paths.cache_dir() == tmp_path / "mine"


def test_the_gpu_memory_is_remembered_with_the_answer(tmp_path, cache, monkeypatch):
    env = FakeEnv(tmp_path / "venv", "gpu")
    answer = json.dumps(
        {"device": "gpu", "torch": "2.14.1", "torch_dir": str(env.torch), "gpu_bytes": 24 << 30}
    )
    env.python.write_text(f"#!/bin/sh\necho started >> '{env.calls}'\necho '{answer}'\n")
    assert device_probe.gpu_memory_gib(env.python) is None  # not asked yet: no verdict
    assert probe_device(env.python) == "gpu"
    assert device_probe.gpu_memory_gib(env.python) == 24.0
    monkeypatch.setenv(device_probe.GPU_MEMORY_ENV, "12")
    assert device_probe.gpu_memory_gib(env.python) == 12.0
    assert env.started == 1
