"""Untrusted paths are confined to the configured roots; settings and env are read as documented."""

import json
import os

import pytest

from lora_workbench import paths
from lora_workbench.errors import PathNotAllowed, WorkbenchError


def test_confine_accepts_a_folder_inside_a_root(roots):
    (roots / "proj").mkdir()
    assert paths.confine(str(roots / "proj")) == (roots / "proj").resolve()


def test_confine_takes_relative_paths_relative_to_the_first_root(roots):
    assert paths.confine("proj/images") == (roots / "proj" / "images").resolve()


def test_confine_refuses_traversal(roots):
    with pytest.raises(PathNotAllowed, match="outside the allowed roots"):
        paths.confine(str(roots / ".." / ".." / "etc"))


def test_confine_refuses_an_absolute_path_outside_the_roots(roots):
    with pytest.raises(PathNotAllowed, match="LORA_WORKBENCH_ROOTS"):
        paths.confine("/etc/passwd", what="project folder")


def test_the_roots_refusal_names_only_top_level_roots(roots, monkeypatch):
    comfy = roots / "ComfyUI"
    for sub in ("models", "input", "output"):
        paths.register_root(comfy / sub)
    monkeypatch.setenv("COMFYUI_PATH", str(comfy))
    with pytest.raises(PathNotAllowed) as exc:
        paths.confine("/etc/x", what="project folder")
    listed = str(exc.value).split("allowed roots (", 1)[1].split(")", 1)[0]
    assert listed == str(roots.resolve())


def test_the_roots_refusal_names_five_roots_then_counts_the_rest(roots, monkeypatch):
    many = [roots / f"r{i}" for i in range(8)]
    monkeypatch.setenv("LORA_WORKBENCH_ROOTS", os.pathsep.join(str(m) for m in many))
    with pytest.raises(PathNotAllowed) as exc:
        paths.confine("/etc/x", what="project folder")
    assert "r4 and 3 more)" in str(exc.value) and "r5" not in str(exc.value)


def test_the_roots_refusal_gives_the_settings_line_and_the_projects_folder(roots, monkeypatch):
    monkeypatch.setenv("COMFYUI_PATH", str(roots / "ComfyUI"))
    with pytest.raises(PathNotAllowed) as exc:
        paths.confine("/etc/x", what="project folder")
    msg = str(exc.value)
    assert '`"roots": ["/etc/x"]`' in msg and str(paths.settings_path()) in msg
    assert f"Put it in {roots / 'ComfyUI' / 'lora-projects'}" in msg


def test_confine_refuses_a_symlink_that_escapes_a_root(roots, tmp_path_factory):
    outside = tmp_path_factory.mktemp("outside")
    (roots / "escape").symlink_to(outside, target_is_directory=True)
    with pytest.raises(PathNotAllowed):
        paths.confine(str(roots / "escape" / "x"))


def test_confine_without_any_root_says_what_to_set(monkeypatch, tmp_path):
    monkeypatch.delenv("LORA_WORKBENCH_ROOTS", raising=False)
    monkeypatch.delenv("SD_MODELS_PATH", raising=False)
    monkeypatch.delenv("COMFYUI_PATH", raising=False)
    monkeypatch.setenv("LORA_WORKBENCH_SETTINGS", str(tmp_path / "none.json"))
    monkeypatch.setattr(paths, "_registered_roots", [])
    with pytest.raises(PathNotAllowed, match="No allowed roots"):
        paths.confine(str(tmp_path))


def test_confine_rejects_empty_and_nul(roots):
    with pytest.raises(PathNotAllowed, match="empty"):
        paths.confine("  ")
    with pytest.raises(PathNotAllowed, match="NUL"):
        paths.confine("a\x00b")


def test_roots_come_from_env_settings_library_and_registered_folders(roots, tmp_path, monkeypatch):
    a, b, lib, reg = (tmp_path / n for n in ("a", "b", "lib", "reg"))
    settings = tmp_path / "settings.json"
    settings.write_text(json.dumps({"roots": [str(b)]}))
    monkeypatch.setenv("LORA_WORKBENCH_SETTINGS", str(settings))
    monkeypatch.setenv("LORA_WORKBENCH_ROOTS", os.pathsep.join([str(a), ""]))
    monkeypatch.setenv("SD_MODELS_PATH", str(lib))
    paths.register_root(reg)
    got = paths.allowed_roots()
    for p in (a, b, lib, reg):
        assert p.resolve() in got


def test_a_broken_settings_file_is_a_clear_error(tmp_path, monkeypatch):
    bad = tmp_path / "settings.json"
    bad.write_text("{not json")
    monkeypatch.setenv("LORA_WORKBENCH_SETTINGS", str(bad))
    with pytest.raises(WorkbenchError, match=str(bad)):
        paths.load_settings()


def test_ui_defaults_follow_the_seed(monkeypatch, tmp_path):
    monkeypatch.setenv("LORA_WORKBENCH_SETTINGS", str(tmp_path / "none.json"))
    for var in ("A1111_PATH", "FORGE_PATH", "KOHYA_SS_PATH"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert paths.a1111_path() == tmp_path / "stable-diffusion-webui"
    assert paths.forge_path() == tmp_path / "stable-diffusion-webui-forge"
    assert paths.kohya_ss_path() == tmp_path / "kohya_ss"
    monkeypatch.setenv("A1111_PATH", str(tmp_path / "x"))
    assert paths.a1111_path() == tmp_path / "x"
