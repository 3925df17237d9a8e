"""The LinkModelLibrary node through the pack, with ComfyUI stubbed (tests/conftest.py)."""

import math
import os

import pytest

from lora_workbench.errors import PathNotAllowed
from lora_workbench.library import layout, watch


@pytest.fixture
def node(pack, comfy, roots):
    comfy.start_server()
    yield pack.NODE_CLASS_MAPPINGS["LinkModelLibrary"]()
    watch.stop_all()
    comfy.modules["server"].PromptServer.instance = None


@pytest.fixture
def lib(roots):
    root = roots / "library"
    layout.init_library(root)
    (root / "loras" / "style.safetensors").write_text("x")
    return root


def test_the_node_links_into_comfyuis_own_models_and_shows_the_report(node, comfy, lib):
    out = node.link(library=str(lib), link_comfyui=True, unique_id="7")
    link = comfy.base / "models/loras/style.safetensors"
    assert link.is_symlink() and os.readlink(link) == str(lib / "loras/style.safetensors")
    text = out["result"][0]
    assert out["ui"]["text"] == [text]
    assert text.startswith("created 1, fixed 0, removed 0, collisions 0")
    assert comfy.progress_texts == [(text.splitlines()[0], "7")]


def test_the_node_drops_comfyuis_file_list_cache_for_touched_categories(node, comfy, lib):
    fp = comfy.modules["folder_paths"]
    fp.filename_list_cache.update({"loras": ([], {}), "vae": ([], {}), "configs": ([], {})})
    node.link(library=str(lib))
    assert "loras" not in fp.filename_list_cache and "vae" not in fp.filename_list_cache
    assert "configs" in fp.filename_list_cache
    assert "style.safetensors" in fp.get_filename_list("loras")


def test_paths_outside_the_allowed_roots_are_refused(node, tmp_path_factory):
    outside = tmp_path_factory.mktemp("outside")
    with pytest.raises(PathNotAllowed):
        node.link(library=str(outside))
    with pytest.raises(PathNotAllowed):
        node.link(library="../../etc")


def test_an_a1111_path_outside_the_roots_is_refused(node, lib, tmp_path_factory):
    outside = tmp_path_factory.mktemp("webui")
    with pytest.raises(PathNotAllowed, match="A1111"):
        node.link(library=str(lib), a1111_path=str(outside))


def test_the_node_links_a1111_and_forge_when_given(node, lib, roots):
    a1111 = roots / "webui"
    (a1111 / "models/Lora").mkdir(parents=True)
    out = node.link(
        library=str(lib), link_comfyui=False, a1111_path=str(a1111), forge_path=str(roots / "no-forge")
    )
    assert (a1111 / "models/Lora/style.safetensors").is_symlink()
    assert "Forge" in out["result"][0]


def test_a_missing_library_is_reported_or_created(node, roots, comfy):
    out = node.link(library=str(roots / "new-lib"))
    assert "library missing" in out["result"][0]
    assert not (roots / "new-lib").exists()
    out = node.link(library=str(roots / "new-lib"), init_if_missing=True)
    assert (roots / "new-lib" / "loras").is_dir()
    assert "created the library layout" in out["result"][0]


def test_dry_run_on_the_node_changes_nothing(node, comfy, lib):
    out = node.link(library=str(lib), dry_run=True)
    assert out["result"][0].startswith("dry run: created 1")
    assert not os.path.lexists(comfy.base / "models/loras/style.safetensors")


def test_watch_on_starts_one_watcher_with_cache_invalidation_and_off_stops_it(node, comfy, lib):
    fp = comfy.modules["folder_paths"]
    node.link(library=str(lib), watch=True)
    node.link(library=str(lib), watch=True)
    assert len(watch.watcher_status()) == 1
    fp.filename_list_cache["loras"] = (["stale"], {})
    (lib / "loras" / "new.safetensors").write_text("x")
    deadline = 200
    while deadline and (
        "loras" in fp.filename_list_cache or not os.path.islink(comfy.base / "models/loras/new.safetensors")
    ):
        import time

        time.sleep(0.05)
        deadline -= 1
    assert deadline, "the watcher did not relink and drop the cache"
    out = node.link(library=str(lib), watch=False)
    assert watch.watcher_status() == []
    assert "stopped watching" in out["result"][0]


def test_is_changed_always_reruns(pack):
    cls = pack.NODE_CLASS_MAPPINGS["LinkModelLibrary"]
    assert math.isnan(cls.IS_CHANGED(library="x"))
    assert cls.OUTPUT_NODE is True


def test_the_library_default_comes_from_the_environment(pack, roots, monkeypatch):
    monkeypatch.setenv("SD_MODELS_PATH", str(roots / "models-lib"))
    cls = pack.NODE_CLASS_MAPPINGS["LinkModelLibrary"]
    spec = cls.INPUT_TYPES()
    assert spec["required"]["library"][1]["default"] == str(roots / "models-lib")
    assert "stable-diffusion-webui" in spec["optional"]["a1111_path"][1]["tooltip"]
    assert spec["hidden"] == {"unique_id": "UNIQUE_ID"}


@pytest.mark.parametrize("folder", ["input", "output", "temp"])
def test_a_library_in_comfyuis_upload_folders_is_refused(node, comfy, folder, monkeypatch):
    # Any page that reaches ComfyUI can put files into input/ (/upload/image) or output/: a workflow
    # naming such a folder as the library would link an uploaded .ckpt (a pickle) into every UI.
    base = comfy.base / folder
    monkeypatch.setenv(
        "LORA_WORKBENCH_ROOTS", os.pathsep.join([os.environ["LORA_WORKBENCH_ROOTS"], str(base)])
    )
    lib = base / "lib"
    layout.init_library(lib)
    (lib / "checkpoints" / "uploaded.ckpt").write_bytes(b"pickle")
    with pytest.raises(PathNotAllowed, match=f"lies in ComfyUI's {folder} folder"):
        node.link(library=str(lib), link_comfyui=True)
    assert not os.path.lexists(comfy.base / "models/checkpoints/uploaded.ckpt")
