"""Whether the sd-scripts environment can import a module (LyCORIS), asked once and remembered on disk
until that environment changes; a missing LyCORIS is a sentence saying how to install it there."""

from __future__ import annotations

import subprocess
import sys

import pytest

from lora_workbench.errors import ValidationError
from lora_workbench.training import module_probe


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("LORA_WORKBENCH_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"


def count_runs(monkeypatch) -> list:
    calls = []
    real = subprocess.run

    def counted(*a, **kw):
        calls.append(a[0])
        return real(*a, **kw)

    monkeypatch.setattr(module_probe.subprocess, "run", counted)
    return calls


def test_the_answer_is_remembered_until_the_environment_changes(cache, monkeypatch, tmp_path):
    calls = count_runs(monkeypatch)
    overlay = tmp_path / "overlay"
    overlay.mkdir()
    env = {"PYTHONPATH": str(overlay)}
    assert module_probe.probe_module(sys.executable, "lw_probe_mod", env=env)["found"] is False
    assert module_probe.probe_module(sys.executable, "lw_probe_mod", env=env)["found"] is False
    assert len(calls) == 1 and (cache / module_probe.CACHE_FILE).is_file()
    (overlay / "lw_probe_mod.py").write_text("X = 1\n")  # installed into the overlay: asked again
    assert module_probe.probe_module(sys.executable, "lw_probe_mod", env=env)["found"] is True
    assert len(calls) == 2
    assert (
        module_probe.probe_module(sys.executable, "lw_probe_mod", env={})["found"] is False
    )  # other PYTHONPATH


def test_a_missing_lycoris_says_how_to_install_it_there(cache):
    with pytest.raises(
        ValidationError, match=r"cannot import .* -m pip install lycoris-lora==3\.2\.0\.post2"
    ):
        module_probe.require_lycoris(sys.executable, "lycoris_loha", env={})


def test_a_damaged_cache_is_asked_again(cache, monkeypatch):
    cache.mkdir(parents=True)
    (cache / module_probe.CACHE_FILE).write_text("not json")
    assert module_probe.probe_module(sys.executable, "json")["found"] is True
