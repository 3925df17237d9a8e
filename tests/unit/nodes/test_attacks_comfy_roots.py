"""Which of ComfyUI's folders a workflow may touch: the model folders, input, output and the projects
place <ComfyUI>/lora-projects; never ComfyUI's own folder, custom_nodes/ (code) or user/ (settings),
so a shared workflow cannot make a folder, a file or a link where ComfyUI would load or trust it."""

from __future__ import annotations

import os

import pytest

from lora_workbench import paths
from lora_workbench.errors import PathNotAllowed


@pytest.fixture
def comfy_roots_only(pack, comfy, monkeypatch):
    monkeypatch.delenv("LORA_WORKBENCH_ROOTS", raising=False)
    monkeypatch.setattr(paths, "_registered_roots", [])
    pack.nodes._comfy.register_comfy_roots()
    return comfy.base


@pytest.mark.parametrize(
    "place",
    ["custom_nodes/evil_pack", "user/default/comfy.settings.json", "new_folder", ".", "main.py"],
)
def test_a_workflow_cannot_reach_comfyuis_code_or_settings(comfy_roots_only, place):
    with pytest.raises(PathNotAllowed, match="outside the allowed roots"):
        paths.confine(comfy_roots_only / place, what="project folder")


def test_a_model_folder_configured_inside_custom_nodes_is_not_a_root(pack, comfy, monkeypatch):
    # extra_model_paths.yaml can name any folder for a category; one inside custom_nodes/ stays closed.
    monkeypatch.delenv("LORA_WORKBENCH_ROOTS", raising=False)
    monkeypatch.setattr(paths, "_registered_roots", [])
    fp = comfy.modules["folder_paths"]
    monkeypatch.setitem(fp.folder_names_and_paths, "loras", ([str(comfy.base / "custom_nodes" / "x")], set()))
    monkeypatch.setitem(fp.folder_names_and_paths, "vae", ([str(comfy.base)], set()))
    pack.nodes._comfy.register_comfy_roots()
    for place in ("custom_nodes/x/a.py", "b.py"):
        with pytest.raises(PathNotAllowed):
            paths.confine(comfy.base / place)


@pytest.mark.parametrize(
    "place", ["models/loras/a.safetensors", "models/checkpoints", "input/p", "output/run"]
)
def test_model_input_and_output_folders_stay_allowed(comfy_roots_only, place):
    assert paths.confine(comfy_roots_only / place) == comfy_roots_only.resolve() / place


def test_lora_projects_beside_models_is_a_root_made_on_first_use_only(pack, comfy_roots_only):
    projects = comfy_roots_only / "lora-projects"
    assert not projects.exists()  # registering the roots made nothing
    assert pack.nodes._comfy.projects_root() == projects and projects.is_dir()
    assert paths.confine(projects / "anna") == projects.resolve() / "anna"
    assert os.path.realpath(projects) in [str(r) for r in paths.allowed_roots()]


def test_comfyui_path_opens_its_model_input_output_and_projects_folders_only(tmp_path, monkeypatch):
    comfy = tmp_path / "ComfyUI"
    monkeypatch.setenv("LORA_WORKBENCH_ROOTS", str(tmp_path / "elsewhere"))
    monkeypatch.setenv("COMFYUI_PATH", str(comfy))
    monkeypatch.setattr(paths, "_registered_roots", [])
    for place in ("models/loras", "input", "output/run", "lora-projects/anna"):
        assert paths.confine(comfy / place) == comfy.resolve() / place
    for place in ("custom_nodes/evil", "user/default", "main.py"):
        with pytest.raises(PathNotAllowed):
            paths.confine(comfy / place)
