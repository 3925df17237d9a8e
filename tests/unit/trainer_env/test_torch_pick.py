"""Which torch the trainer gets: an explicit spec, or ComfyUI's own (auto), and its package index."""

from __future__ import annotations

import os
import sys
from types import SimpleNamespace

import pytest

from lora_workbench.errors import ValidationError
from lora_workbench.trainer_env import platform, torch_pick


@pytest.fixture
def linux(monkeypatch):
    monkeypatch.setattr(platform, "sys", SimpleNamespace(platform="linux"))
    monkeypatch.setattr(platform, "os", SimpleNamespace(name="posix", environ=os.environ))


@pytest.mark.parametrize(
    ("spec", "index"),
    [
        ("torch==2.4.1+cu124 torchvision==0.19.1+cu124", "https://download.pytorch.org/whl/cu124"),
        ("torch==2.4.1+cpu", "https://download.pytorch.org/whl/cpu"),
        ("torch==2.5.0+rocm6.2", "https://download.pytorch.org/whl/rocm6.2"),
        ("torch==2.14.1 torchvision==0.29.1", None),
    ],
)
def test_a_build_tag_picks_pytorchs_index_and_a_plain_version_pypi(linux, spec, index):
    choice = torch_pick.parse_spec(spec)
    assert choice.index_url == index and choice.pins == tuple(spec.split())


@pytest.mark.parametrize(
    ("spec", "says"),
    [
        ("torchvision==0.19.1", "must be `auto` or pins starting with torch"),
        ("torch>=2", "must be `auto` or pins starting with torch"),
        ("torch==2.4.1 numpy==2", "'numpy==2' is not a pin of torch"),
        ("torch==2.4.1+cu124 torchvision==0.19.1+cpu", "mixes builds"),
        ("torch==2.4.1+evil", "+evil is not a PyTorch build"),
        ("", "must be `auto`"),
    ],
)
def test_a_bad_torch_spec_is_a_sentence(spec, says):
    with pytest.raises(ValidationError, match=says.replace("+", r"\+")):
        torch_pick.parse_spec(spec)


def test_auto_matches_comfyuis_cuda_build_and_its_index(linux):
    choice = torch_pick.from_versions(
        {"torch": "2.4.1+cu124", "torchvision": "0.19.1+cu124"}, "/comfy/python"
    )
    assert choice.pins == ("torch==2.4.1+cu124", "torchvision==0.19.1+cu124")
    assert choice.index_url == "https://download.pytorch.org/whl/cu124" and "/comfy/python" in choice.origin
    assert choice.tag == "torch2.4.1-cu124"


def test_auto_on_macos_takes_the_default_torch_and_notes_mps(monkeypatch):
    monkeypatch.setattr(platform, "sys", SimpleNamespace(platform="darwin"))
    monkeypatch.setattr(platform, "os", SimpleNamespace(name="posix", environ=os.environ))
    choice = torch_pick.from_versions({"torch": "2.4.1"}, "/comfy/python")
    assert choice.pins == ("torch==2.4.1",) and choice.index_url is None and "MPS" in choice.note


def test_auto_on_windows_notes_that_pypis_torch_is_the_cpu_build(monkeypatch):
    monkeypatch.setattr(platform, "sys", SimpleNamespace(platform="win32"))
    monkeypatch.setattr(platform, "os", SimpleNamespace(name="nt", environ=os.environ))
    choice = torch_pick.from_versions({"torch": "2.4.1"}, "C:/comfy/python.exe")
    assert choice.index_url is None and "CPU build" in choice.note


def test_auto_reads_the_torch_an_interpreter_has_without_importing_it(linux, tmp_path):
    fake = tmp_path / "site"
    dist = fake / "torch-2.3.0+cpu.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: torch\nVersion: 2.3.0+cpu\n", encoding="utf-8"
    )
    script = tmp_path / "python"
    script.write_text(f'#!/bin/sh\nPYTHONPATH={fake} exec {sys.executable} "$@"\n', encoding="utf-8")
    script.chmod(0o755)
    choice = torch_pick.pick("auto", script)
    assert choice.pins[0] == "torch==2.3.0+cpu" and choice.index_url.endswith("/cpu")


def test_auto_without_a_torch_to_match_takes_the_packs_default_and_says_so(linux, tmp_path):
    choice = torch_pick.pick("auto", tmp_path / "no-python")
    assert choice.pins == ("torch==2.14.1", "torchvision==0.29.1") and "has no torch to match" in choice.note
