"""Attacks through the settings dialog's route, as a page on ComfyUI's own origin would send them: the
paths that decide what code runs are never stored or executed, the values that are roots cannot widen
the fence then or later (a link re-pointed after the save), and bad path text is a 400, never a 500."""

from __future__ import annotations

import json
import os

import pytest
import pytest_asyncio

from lora_workbench import editable_settings, paths
from tests.unit.nodes.route_app import serve_pack_routes

SETTINGS = "/lora_workbench/settings"
SAMPLE = "/lora_workbench/train/sample"
SECRET = b"\x89PNG\r\n\x1a\nthe secret outside"
EXECUTABLE = ("kohya_ss_path", "kohya_python", "kohya_ss_gui_path", "musubi_tuner_path", "musubi_python")
posix_only = pytest.mark.skipif(os.name == "nt", reason="a shell script as the planted python")


@pytest.fixture
def settings_file(roots, tmp_path, monkeypatch):
    path = tmp_path / "config" / "settings.json"
    monkeypatch.setenv("LORA_WORKBENCH_SETTINGS", str(path))
    for s in editable_settings.EDITABLE:
        monkeypatch.delenv(editable_settings.env_of(s.key), raising=False)
    return path


@pytest_asyncio.fixture
async def client(aiohttp_client, pack, roots, settings_file, monkeypatch):
    return await serve_pack_routes(aiohttp_client, pack, monkeypatch)


async def save(client, **values) -> tuple[int, dict]:
    r = await client.post(
        SETTINGS, json={"values": values}, headers={"Origin": f"http://{client.host}:{client.port}"}
    )
    return r.status, await r.json()


def planted_trainer(folder):
    """What ComfyUI's own /upload/image can put inside the roots: a train_network.py, musubi-tuner's
    wan_train_network.py and a 'python'."""
    marker = folder / "RAN"
    (folder / "sd-scripts").mkdir(parents=True)
    (folder / "sd-scripts" / "train_network.py").write_text(f"open({str(marker)!r}, 'w')\n")
    (folder / "src" / "musubi_tuner").mkdir(parents=True)
    (folder / "src" / "musubi_tuner" / "wan_train_network.py").write_text(f"open({str(marker)!r}, 'w')\n")
    (folder / "presets" / "lora").mkdir(parents=True)
    bin_dir = folder / "venv" / "bin"
    bin_dir.mkdir(parents=True)
    py = bin_dir / "python"
    py.write_text(f"#!/bin/sh\ntouch {marker}\necho 2.4.1 False 3.11.9\n")
    py.chmod(0o755)
    values = {"kohya_ss_path": str(folder), "kohya_python": str(py), "kohya_ss_gui_path": str(folder)}
    return {**values, "musubi_tuner_path": str(folder), "musubi_python": str(py)}, marker


@pytest.mark.asyncio
@pytest.mark.parametrize("key", EXECUTABLE)
async def test_a_path_that_decides_what_runs_is_never_saved_from_the_browser(
    client, roots, settings_file, key
):
    values, marker = planted_trainer(roots / "input" / "uploaded")
    status, body = await save(client, **{key: values[key]})
    assert status == 400 and body["saved"] is False
    assert f"lora-workbench settings --set {key}=" in body["error"]
    assert not settings_file.exists() and not marker.exists()


@pytest.mark.asyncio
async def test_the_browser_cannot_even_clear_a_trainer_path_set_from_a_shell(client, tmp_path, settings_file):
    settings_file.parent.mkdir(parents=True)
    settings_file.write_text(json.dumps({"kohya_python": "/opt/kohya/venv/bin/python"}))
    for key in EXECUTABLE:
        status, body = await save(client, **{key: ""})
        assert status == 400 and "never set from the browser" in body["error"]
    assert json.loads(settings_file.read_text()) == {"kohya_python": "/opt/kohya/venv/bin/python"}


@posix_only
@pytest.mark.asyncio
@pytest.mark.parametrize("key", ["kohya_python", "musubi_python"])
async def test_the_settings_check_never_runs_a_python_the_browser_names(client, roots, settings_file, key):
    values, marker = planted_trainer(roots / "shared-project")
    status, _ = await save(client, **{key: values[key]})
    assert status == 400 and not marker.exists()


@posix_only
@pytest.mark.asyncio
async def test_a_page_cannot_point_musubi_tuner_at_a_planted_checkout_with_other_settings(
    client, roots, settings_file
):
    values, marker = planted_trainer(roots / "input" / "uploaded")
    (roots / "lib").mkdir()
    status, body = await save(
        client, library=str(roots / "lib"), musubi_tuner_path=values["musubi_tuner_path"]
    )
    assert status == 400 and body["saved"] is False  # all or none: not even the library is saved
    assert not settings_file.exists() and not marker.exists()
    assert paths.musubi_tuner_path() is None


# --------------------------------------------------------------------------- the roots
@pytest.fixture
def outside(tmp_path_factory):
    out = tmp_path_factory.mktemp("outside")
    (out / "secret.png").write_bytes(SECRET)
    return out


@pytest.mark.asyncio
async def test_a_library_through_a_link_inside_the_roots_is_refused(client, roots, settings_file):
    (roots / "real-lib").mkdir()
    (roots / "project").mkdir()
    (roots / "project" / "lib").symlink_to(roots / "real-lib", target_is_directory=True)
    status, body = await save(client, library=str(roots / "project" / "lib"))
    assert (
        status == 400
        and "passes through the link" in body["error"]
        and str(roots / "real-lib") in body["error"]
    )
    assert not settings_file.exists()


@pytest.mark.asyncio
async def test_a_library_with_dot_dot_is_refused(client, roots, settings_file):
    (roots / "a").mkdir()
    (roots / "lib").mkdir()
    status, body = await save(client, library=str(roots / "a" / ".." / "lib"))
    assert status == 400 and "'..'" in body["error"] and not settings_file.exists()


@pytest.mark.asyncio
async def test_a_library_re_pointed_after_the_save_is_no_root_and_the_sample_route_serves_nothing_outside(
    client, roots, settings_file, outside, caplog
):
    # A folder that was the library when saved becomes a link to / (a git pull, a planted rename).
    (roots / "projects").mkdir()
    lib = roots / "projects" / "lib"
    lib.mkdir()
    status, body = await save(client, library=str(lib))
    assert status == 200, body
    assert json.loads(settings_file.read_text())["library"] == os.path.realpath(lib)
    lib.rename(roots / "projects" / "lib-old")
    lib.symlink_to("/", target_is_directory=True)
    assert paths.Path("/") not in paths.allowed_roots()
    r = await client.get(SAMPLE, params={"path": str(outside / "secret.png")})
    assert r.status == 403 and SECRET not in await r.read()
    assert "not an allowed root" in caplog.text and "settings --set library=" in caplog.text


@pytest.mark.asyncio
@pytest.mark.parametrize("folder", ["input", "models", "output", "lora-projects"])
async def test_a_comfyui_folder_planted_as_a_link_after_the_save_is_no_root(
    client, roots, settings_file, outside, caplog, folder
):
    # The ComfyUI folder saved from the dialog lies inside the roots (a shared project); its own
    # roots are its models/input/output/lora-projects, and the project plants one of them as a link.
    comfyui = roots / "shared" / "ComfyUI"
    comfyui.mkdir(parents=True)
    status, body = await save(client, comfyui_path=str(comfyui))
    assert status == 200, body
    (comfyui / folder).symlink_to("/", target_is_directory=True)
    assert paths.Path("/") not in paths.allowed_roots()
    r = await client.get(SAMPLE, params={"path": str(outside / "secret.png")})
    assert r.status == 403 and SECRET not in await r.read()
    assert f"{comfyui / folder} is a link" in caplog.text


def test_a_comfyui_outside_the_roots_keeps_its_linked_model_folder(roots, settings_file, tmp_path_factory):
    # The user's own ComfyUI (set from a shell, outside every root) may keep models on another disk.
    comfyui, disk = tmp_path_factory.mktemp("ComfyUI"), tmp_path_factory.mktemp("disk")
    (comfyui / "models").symlink_to(disk, target_is_directory=True)
    editable_settings.save({"comfyui_path": str(comfyui)}, confine=False)
    assert paths.Path(os.path.realpath(disk)) in paths.allowed_roots()


@pytest.mark.asyncio
async def test_a_library_swapped_for_a_link_while_it_is_checked_is_not_stored(
    client, roots, settings_file, outside, monkeypatch
):
    # The swap lands between the fence check and the resolving of the value to store (the worst moment
    # a racing process could hit); what would be stored is then the outside folder, itself no link.
    lib = roots / "shared" / "lib"
    lib.mkdir(parents=True)
    checked = editable_settings._link_inside_roots

    def swap_after_check(path):
        found = checked(path)
        lib.rename(roots / "shared" / "lib-old")
        lib.symlink_to(outside, target_is_directory=True)
        return found

    monkeypatch.setattr(editable_settings, "_link_inside_roots", swap_after_check)
    status, body = await save(client, library=str(lib))
    assert status == 400 and "changed while it was checked" in body["error"], body
    assert not settings_file.exists()
    assert paths.Path(os.path.realpath(outside)) not in paths.allowed_roots()


@pytest.mark.asyncio
async def test_a_library_saved_unresolved_before_this_check_is_no_root(client, roots, settings_file, outside):
    settings_file.parent.mkdir(parents=True)
    (roots / "lib").symlink_to(outside, target_is_directory=True)
    settings_file.write_text(json.dumps({"library": str(roots / "lib")}))
    assert paths.Path(os.path.realpath(outside)) not in paths.allowed_roots()
    r = await client.get(SAMPLE, params={"path": str(outside / "secret.png")})
    assert r.status == 403


@pytest.mark.asyncio
async def test_a_tokenizer_cache_outside_the_roots_is_refused_from_the_browser(
    client, settings_file, outside
):
    status, body = await save(client, tokenizer_cache_dir=str(outside))
    assert status == 400 and "outside the allowed roots" in body["error"] and not settings_file.exists()


# --------------------------------------------------------------------------- bad text
@pytest.mark.asyncio
@pytest.mark.parametrize(
    "text",
    ["~nouser-xq/x", "/" + "p/" * 2100, "/x/" + "n" * 300, "/x/\ud800"],
    ids=["~nouser", "over 4095 bytes", "300-byte name", "lone surrogate"],
)
@pytest.mark.parametrize("key", ["library", "tokenizer_cache_dir", "a1111_path"])
async def test_path_text_the_os_refuses_is_a_400_sentence(client, settings_file, key, text):
    status, body = await save(client, **{key: text})
    assert status == 400 and body["saved"] is False and "Traceback" not in body["error"]
    assert not settings_file.exists()
