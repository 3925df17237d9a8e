"""The settings ComfyUI's settings dialog may change: which keys, the checks on save, the atomic write,
and the roots that no request can touch."""

from __future__ import annotations

import json
import os

import pytest

from lora_workbench import editable_settings
from lora_workbench.errors import ValidationError


@pytest.fixture
def settings_file(roots, tmp_path, monkeypatch):
    path = tmp_path / "config" / "settings.json"
    monkeypatch.setenv("LORA_WORKBENCH_SETTINGS", str(path))
    for s in editable_settings.EDITABLE:
        monkeypatch.delenv(editable_settings.env_of(s.key), raising=False)
    return path


def fake_python(folder, *, torch_ok=True, name="python"):
    """An executable named like an interpreter that answers the torch probe (or fails it)."""
    folder.mkdir(parents=True, exist_ok=True)
    exe = folder / name
    body = (
        'echo "2.4.1 False 3.11.9"'
        if torch_ok
        else "echo \"ModuleNotFoundError: No module named 'torch'\" >&2; exit 1"
    )
    exe.write_text(f"#!/bin/sh\n{body}\n", encoding="utf-8")
    exe.chmod(0o755)
    return exe


posix_only = pytest.mark.skipif(os.name == "nt", reason="fake interpreters are shell scripts")


def test_saving_writes_the_file_the_cli_reads_and_keeps_the_other_keys(settings_file, tmp_path):
    settings_file.parent.mkdir(parents=True)
    settings_file.write_text(json.dumps({"roots": [str(tmp_path)], "own_key": 1}), encoding="utf-8")
    cache = tmp_path / "tokenizers"
    cache.mkdir()
    checks = editable_settings.save({"tokenizer_cache_dir": str(cache)}, confine=True)
    assert [c.ok for c in checks] == [True]
    data = json.loads(settings_file.read_text(encoding="utf-8"))
    assert data == {"roots": [str(tmp_path)], "own_key": 1, "tokenizer_cache_dir": str(cache)}
    from lora_workbench.training import kohya

    assert kohya.default_tokenizer_cache() == str(cache)  # what a training run will use
    assert not list(settings_file.parent.glob(".settings-*"))  # no temp file left behind


def test_an_empty_value_removes_the_key(settings_file, tmp_path):
    settings_file.parent.mkdir(parents=True)
    settings_file.write_text(
        json.dumps({"kohya_python": "/x/python", "library": str(tmp_path), "tokenizer_cache_dir": "/t"}),
        "utf-8",
    )
    editable_settings.save({"tokenizer_cache_dir": ""}, confine=True)
    editable_settings.save({"kohya_python": ""}, confine=False)
    assert json.loads(settings_file.read_text("utf-8")) == {"library": str(tmp_path)}


@pytest.mark.parametrize("key", ["roots", "ROOTS", "settings", "__proto__", "library "])
def test_the_roots_and_unknown_keys_are_refused_and_nothing_is_written(settings_file, tmp_path, key):
    settings_file.parent.mkdir(parents=True)
    before = json.dumps({"roots": [str(tmp_path / "only")]})
    settings_file.write_text(before, encoding="utf-8")
    with pytest.raises(ValidationError, match="cannot be set here"):
        editable_settings.save({key: "/", "tokenizer_cache_dir": str(tmp_path)}, confine=True)
    assert settings_file.read_text("utf-8") == before


def test_a_missing_folder_is_a_message_and_nothing_is_saved(settings_file, tmp_path):
    cache = tmp_path / "tok"
    cache.mkdir()
    checks = editable_settings.save(
        {"tokenizer_cache_dir": str(cache), "kohya_ss_path": str(tmp_path / "nope")}, confine=False
    )
    bad = [c for c in checks if not c.ok]
    assert [c.key for c in bad] == ["kohya_ss_path"] and "does not exist" in bad[0].error
    assert not settings_file.exists()  # all or none


def test_a_relative_path_or_a_control_character_is_refused(settings_file):
    assert "absolute path" in editable_settings.check("library", "models", confine=False).error
    assert "control character" in editable_settings.check("library", "/a\nb", confine=False).error
    with pytest.raises(ValidationError, match="must be text"):
        editable_settings.check("library", ["/a"], confine=False)


def test_an_sd_scripts_folder_needs_train_network_py(settings_file, tmp_path):
    gui = tmp_path / "kohya_ss"
    (gui / "sd-scripts").mkdir(parents=True)
    check = editable_settings.check("kohya_ss_path", str(gui), confine=False)
    assert not check.ok and "train_network.py" in check.error
    (gui / "sd-scripts" / "train_network.py").write_text("", encoding="utf-8")
    check = editable_settings.check("kohya_ss_path", str(gui), confine=False)
    assert check.ok and any("sd-scripts found" in n for n in check.notes)
    assert any("no venv" in n for n in check.notes)


def test_a_kohya_gui_folder_needs_its_lora_presets_and_the_node_reads_what_was_saved(settings_file, tmp_path):
    from lora_workbench import paths

    gui = tmp_path / "kohya_ss"
    gui.mkdir()
    check = editable_settings.check("kohya_ss_gui_path", str(gui), confine=False)
    assert not check.ok and "presets/lora" in check.error
    (gui / "presets" / "lora").mkdir(parents=True)
    (gui / "presets" / "lora" / "SDXL - LoRA prodigy.json").write_text("{}", encoding="utf-8")
    assert editable_settings.save({"kohya_ss_gui_path": str(gui)}, confine=False)[0].notes == (
        "1 LoRA presets in presets/lora",
    )
    assert paths.kohya_ss_gui_path() == gui  # where the GUI config node lists its presets


@posix_only
def test_a_python_that_imports_torch_passes_with_its_versions(settings_file, tmp_path):
    py = fake_python(tmp_path / "venv" / "bin")
    check = editable_settings.check("kohya_python", str(py), confine=False)
    assert check.ok, check.error
    assert check.notes == ("Python 3.11.9, torch 2.4.1, no CUDA GPU (CPU only)",)


@posix_only
def test_a_python_that_cannot_import_torch_is_a_message(settings_file, tmp_path):
    py = fake_python(tmp_path / "bin", torch_ok=False, name="python3")
    check = editable_settings.check("kohya_python", str(py), confine=False)
    assert not check.ok and "cannot import torch" in check.error and "No module named 'torch'" in check.error


@posix_only
def test_only_an_interpreter_may_be_named_as_the_python(settings_file, tmp_path):
    sh = fake_python(tmp_path / "bin", name="sh")
    check = editable_settings.check("kohya_python", str(sh), confine=False)
    assert not check.ok and "not a Python interpreter" in check.error
    assert (
        "does not exist"
        in editable_settings.check("kohya_python", str(tmp_path / "python"), confine=False).error
    )


def test_a_folder_that_would_widen_the_roots_must_lie_inside_them(settings_file, tmp_path_factory):
    outside = tmp_path_factory.mktemp("elsewhere")
    for key in ("library", "comfyui_path", "a1111_path", "forge_path"):
        check = editable_settings.check(key, str(outside), confine=True)
        assert not check.ok and "outside the allowed roots" in check.error, key
        assert "cannot widen the roots" in check.error
        assert editable_settings.check(key, str(outside), confine=False).ok  # the CLI is your own shell


def test_a_symlink_out_of_the_roots_is_refused_for_the_library(settings_file, tmp_path, tmp_path_factory):
    outside = tmp_path_factory.mktemp("outside")
    link = tmp_path / "lib"
    link.symlink_to(outside, target_is_directory=True)
    check = editable_settings.check("library", str(link), confine=True)
    assert not check.ok and "outside the allowed roots" in check.error


def test_a_symlinked_settings_file_stays_a_symlink(settings_file, tmp_path, monkeypatch):
    real = tmp_path / "dotfiles" / "lw.json"
    real.parent.mkdir()
    real.write_text("{}", encoding="utf-8")
    link = tmp_path / "linked-settings.json"
    link.symlink_to(real)
    monkeypatch.setenv("LORA_WORKBENCH_SETTINGS", str(link))
    editable_settings.save({"library": str(tmp_path)}, confine=True)
    assert link.is_symlink() and json.loads(real.read_text("utf-8")) == {"library": str(tmp_path)}


def test_a_broken_settings_file_is_never_overwritten(settings_file, tmp_path):
    settings_file.parent.mkdir(parents=True)
    settings_file.write_text("{not json", encoding="utf-8")
    from lora_workbench.errors import WorkbenchError

    with pytest.raises(WorkbenchError, match="not valid JSON"):
        editable_settings.save({"library": str(tmp_path)}, confine=True)
    assert settings_file.read_text("utf-8") == "{not json"


def test_the_dialog_shows_every_key_settings_py_lets_it_write_and_no_other():
    from lora_workbench import settings

    writable = [s.key for s in settings.SETTINGS if s.ui_writable]
    assert sorted(editable_settings.BY_KEY) == sorted(writable) and "roots" not in writable


def test_describe_says_when_the_environment_wins(settings_file, tmp_path, monkeypatch):
    editable_settings.save({"library": str(tmp_path)}, confine=True)
    monkeypatch.setenv("SD_MODELS_PATH", "/from/env")
    item = next(i for i in editable_settings.describe() if i["key"] == "library")
    assert (
        item["value"] == str(tmp_path)
        and item["env_value"] == "/from/env"
        and item["effective"] == "/from/env"
    )
    assert "roots" not in {i["key"] for i in editable_settings.describe()}


@posix_only
def test_twelve_checks_at_once_start_the_interpreter_once(settings_file, tmp_path):
    from concurrent.futures import ThreadPoolExecutor

    runs = tmp_path / "runs.log"
    py = tmp_path / "venv" / "bin" / "python"
    py.parent.mkdir(parents=True)
    py.write_text(f'#!/bin/sh\necho run >> {runs}\necho "2.4.1 False 3.11.9"\n', encoding="utf-8")
    py.chmod(0o755)
    with ThreadPoolExecutor(12) as pool:
        checks = list(
            pool.map(lambda _: editable_settings.check("kohya_python", str(py), confine=False), range(12))
        )
    assert all(c.ok for c in checks) and len({c.notes for c in checks}) == 1
    assert runs.read_text().splitlines() == ["run"]


@posix_only
def test_an_interpreter_changed_on_disk_is_checked_again(settings_file, tmp_path):
    py = fake_python(tmp_path / "venv2" / "bin")
    assert editable_settings.check("kohya_python", str(py), confine=False).ok
    py.write_text("#!/bin/sh\necho no torch >&2; exit 1\n", encoding="utf-8")
    assert "cannot import torch" in editable_settings.check("kohya_python", str(py), confine=False).error


def test_a_root_folder_saved_from_a_shell_is_stored_resolved(settings_file, tmp_path):
    (tmp_path / "real").mkdir()
    (tmp_path / "via").symlink_to(tmp_path / "real", target_is_directory=True)
    editable_settings.save(
        {"library": str(tmp_path / "via"), "comfyui_path": str(tmp_path / "real" / ".." / "real")},
        confine=False,
    )
    real = os.path.realpath(tmp_path / "real")
    assert json.loads(settings_file.read_text("utf-8")) == {"library": real, "comfyui_path": real}


def test_a_save_the_disk_has_no_room_for_is_a_sentence_and_keeps_the_old_file(
    settings_file, tmp_path, monkeypatch
):
    from lora_workbench.errors import DiskFull
    from tests.unit.full_disk import fill_disk_for, temp_files

    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    editable_settings.save({"a1111_path": str(tmp_path / "a")}, confine=True)
    fill_disk_for(monkeypatch, "settings.json")
    with pytest.raises(DiskFull, match=r"The disk is full: .*settings\.json could not be written"):
        editable_settings.save({"a1111_path": str(tmp_path / "b")}, confine=True)
    assert json.loads(settings_file.read_text("utf-8"))["a1111_path"] == str(tmp_path / "a")
    assert temp_files(settings_file.parent) == []


def test_a_tokenizer_cache_re_pointed_out_of_the_roots_after_the_save_is_refused_at_use(
    settings_file, tmp_path, tmp_path_factory
):
    from lora_workbench.training import kohya

    shared = tmp_path / "shared"
    (shared / "tok").mkdir(parents=True)
    editable_settings.save({"tokenizer_cache_dir": str(shared / "tok")}, confine=True)
    outside = tmp_path_factory.mktemp("outside")
    (shared / "tok").rename(shared / "tok-old")  # a shared project (git pull) re-points the folder
    (shared / "tok").symlink_to(outside, target_is_directory=True)
    with pytest.raises(ValidationError, match=r"now leads to .*outside the allowed roots"):
        kohya.default_tokenizer_cache()


def test_a_tokenizer_cache_set_from_a_shell_outside_the_roots_is_used_as_it_is(
    settings_file, tmp_path_factory
):
    from lora_workbench.training import kohya

    disk = tmp_path_factory.mktemp("disk")
    link = tmp_path_factory.mktemp("home") / "tok"
    link.symlink_to(disk, target_is_directory=True)
    editable_settings.save({"tokenizer_cache_dir": str(link)}, confine=False)
    assert kohya.default_tokenizer_cache() == str(link)


# --------------------------------------------------------------------------- musubi-tuner's keys
def musubi_checkout(folder, *, planted_python=True):
    """A musubi-tuner checkout; its venv/bin/python leaves a mark if anything ever runs it."""
    (folder / "src" / "musubi_tuner").mkdir(parents=True)
    (folder / "src" / "musubi_tuner" / "wan_train_network.py").write_text("", encoding="utf-8")
    marker = folder / "RAN"
    if planted_python:
        py = folder / "venv" / "bin" / "python"
        py.parent.mkdir(parents=True)
        py.write_text(f"#!/bin/sh\ntouch {marker}\necho 2.4.1 False 3.11.9\n", encoding="utf-8")
        py.chmod(0o755)
    return folder, marker


def test_the_dialog_shows_musubi_tuner_and_its_python_read_only_under_their_own_heading(settings_file):
    items = {i["key"]: i for i in editable_settings.describe()}
    for key, env in (("musubi_tuner_path", "MUSUBI_TUNER_PATH"), ("musubi_python", "MUSUBI_PYTHON")):
        assert items[key]["shell_only"] and items[key]["env"] == env
        assert items[key]["group"] == "Training (musubi-tuner)"
        assert items[key]["command"] == f"lora-workbench settings --set {key}=/path/to/it"


@pytest.mark.parametrize("key", ["musubi_tuner_path", "musubi_python"])
def test_the_browser_can_neither_set_nor_clear_musubi_tuners_paths(settings_file, tmp_path, key):
    folder, marker = musubi_checkout(tmp_path / "uploaded")
    for value in (str(folder), str(folder / "venv" / "bin" / "python"), ""):
        (check,) = editable_settings.save({key: value}, confine=True)
        assert not check.ok and "never set from the browser" in check.error
    assert not settings_file.exists() and not marker.exists()


@posix_only
def test_a_musubi_checkout_set_from_a_shell_is_checked_without_running_its_python(settings_file, tmp_path):
    folder, marker = musubi_checkout(tmp_path / "musubi-tuner")
    (check,) = editable_settings.save({"musubi_tuner_path": str(folder)}, confine=False)
    assert check.ok and check.notes == (f"musubi-tuner found in {folder}",)
    assert not marker.exists()  # a folder check looks at files; only a python value set from a shell runs
    assert json.loads(settings_file.read_text())["musubi_tuner_path"] == str(folder)


def test_a_folder_that_is_not_musubi_tuner_is_refused_from_the_shell_too(settings_file, tmp_path):
    (tmp_path / "sd-scripts").mkdir()
    (check,) = editable_settings.save({"musubi_tuner_path": str(tmp_path / "sd-scripts")}, confine=False)
    assert not check.ok and "has no src/musubi_tuner/wan_train_network.py" in check.error
    assert not settings_file.exists()


def test_a_musubi_checkout_without_a_venv_asks_for_its_python(settings_file, tmp_path):
    folder, _ = musubi_checkout(tmp_path / "musubi-tuner", planted_python=False)
    (check,) = editable_settings.save({"musubi_tuner_path": str(folder)}, confine=False)
    assert check.ok and "also set the Python of the musubi-tuner environment" in check.notes[-1]


@posix_only
def test_musubi_python_set_from_a_shell_is_probed_for_torch(settings_file, tmp_path):
    py = fake_python(tmp_path / "musubi-env" / "bin")
    (check,) = editable_settings.save({"musubi_python": str(py)}, confine=False)
    assert check.ok and check.notes == ("Python 3.11.9, torch 2.4.1, no CUDA GPU (CPU only)",)
