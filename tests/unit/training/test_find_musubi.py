"""Finding musubi-tuner: MUSUBI_TUNER_PATH / musubi_tuner_path, else the managed install; its own
Python (MUSUBI_PYTHON / musubi_python, the managed one, else the checkout's venv); every miss a sentence
naming what to set or run. Real folders; the 'pythons' are never run."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from lora_workbench import settings
from lora_workbench.errors import ValidationError
from lora_workbench.trainer_env import install as inst
from lora_workbench.trainer_env.layout import Layout
from lora_workbench.training.backends import for_family, owner_of
from lora_workbench.training.backends.musubi import MUSUBI
from lora_workbench.training.backends.musubi.install import INSTALL_SPEC, find_musubi
from tests.unit.trainer_env.trainer_fakes import FakeTools, make_musubi_repo, request

posix_only = pytest.mark.skipif(os.name == "nt", reason="venv/bin/python layout")


@pytest.fixture(autouse=True)
def nothing_set(tmp_path, monkeypatch):
    monkeypatch.setenv("LORA_WORKBENCH_HOME", str(tmp_path / "home"))
    for var in ("MUSUBI_TUNER_PATH", "MUSUBI_PYTHON"):
        monkeypatch.delenv(var, raising=False)


def checkout(folder: Path, venv: str | None = "venv") -> Path:
    """A folder that looks like a musubi-tuner checkout, with a 'python' in its venv."""
    marker = folder / INSTALL_SPEC.marker
    marker.parent.mkdir(parents=True)
    marker.write_text("", encoding="utf-8")
    if venv:
        py = folder / venv / "bin" / "python"
        py.parent.mkdir(parents=True)
        py.write_text("#!/bin/sh\n", encoding="utf-8")
    return folder


def test_nothing_set_or_installed_says_how_to_install_or_point_at_one():
    with pytest.raises(ValidationError) as exc:
        find_musubi()
    text = str(exc.value)
    assert (
        "`lora-workbench trainer install --trainer musubi-tuner`" in text and "set MUSUBI_TUNER_PATH" in text
    )


def test_a_missing_folder_is_named(tmp_path, monkeypatch):
    monkeypatch.setenv("MUSUBI_TUNER_PATH", str(tmp_path / "nowhere"))
    with pytest.raises(ValidationError, match=f"MUSUBI_TUNER_PATH={tmp_path / 'nowhere'} does not exist"):
        find_musubi()


def test_a_folder_that_is_not_musubi_tuner_names_the_file_it_lacks(tmp_path, monkeypatch):
    (tmp_path / "sd-scripts").mkdir()
    monkeypatch.setenv("MUSUBI_TUNER_PATH", str(tmp_path / "sd-scripts"))
    with pytest.raises(ValidationError, match="has no src/musubi_tuner/wan_train_network.py"):
        find_musubi()


@posix_only
@pytest.mark.parametrize("venv", ["venv", ".venv"])
def test_the_checkouts_own_venv_is_its_python(tmp_path, monkeypatch, venv):
    root = checkout(tmp_path / "musubi-tuner", venv)
    monkeypatch.setenv("MUSUBI_TUNER_PATH", str(root))
    found = find_musubi()
    assert (found.root, found.scripts_dir, found.python) == (root, root, root / venv / "bin" / "python")


@posix_only
def test_musubi_python_wins_over_a_python_in_the_checkout(tmp_path, monkeypatch):
    root = checkout(tmp_path / "musubi-tuner")  # its venv/bin/python could be anybody's
    own = tmp_path / "own-env" / "python"
    own.parent.mkdir()
    own.write_text("", encoding="utf-8")
    monkeypatch.setenv("MUSUBI_TUNER_PATH", str(root))
    monkeypatch.setenv("MUSUBI_PYTHON", str(own))
    assert find_musubi().python == own


def test_a_musubi_python_that_does_not_exist_is_named_not_replaced(tmp_path, monkeypatch):
    monkeypatch.setenv("MUSUBI_TUNER_PATH", str(checkout(tmp_path / "musubi-tuner")))
    monkeypatch.setenv("MUSUBI_PYTHON", str(tmp_path / "gone" / "python"))
    with pytest.raises(ValidationError, match="MUSUBI_PYTHON=.*gone/python does not exist"):
        find_musubi()


def test_a_checkout_without_a_venv_asks_for_musubi_python(tmp_path, monkeypatch):
    monkeypatch.setenv("MUSUBI_TUNER_PATH", str(checkout(tmp_path / "musubi-tuner", venv=None)))
    with pytest.raises(ValidationError, match="has no venv/bin/python.*set MUSUBI_PYTHON"):
        find_musubi()


@posix_only
def test_the_settings_keys_name_the_checkout_and_python(tmp_path):
    root = checkout(tmp_path / "musubi-tuner", venv=None)
    py = tmp_path / "env" / "bin" / "python"
    py.parent.mkdir(parents=True)
    py.write_text("", encoding="utf-8")
    settings.update({"musubi_tuner_path": str(root), "musubi_python": str(py)})
    found = find_musubi()
    assert (found.root, found.python) == (root, py)


def test_the_managed_install_is_found_with_its_own_python(tmp_path):
    src, commit = make_musubi_repo(tmp_path / "src")
    layout = Layout.default("musubi-tuner")
    report = inst.install(request(src, commit, trainer="musubi-tuner"), layout=layout, runner=FakeTools())
    found = MUSUBI.find()
    assert (str(found.root), str(found.python)) == (report.src, report.python)


def test_the_musubi_backend_owns_its_install_spec():
    assert MUSUBI.install_spec is INSTALL_SPEC and INSTALL_SPEC.trainer == MUSUBI.id
    assert all(owner_of(f) is MUSUBI for f in MUSUBI.recipes())
    assert all(for_family(f)[0] is MUSUBI for f in MUSUBI.recipes())
