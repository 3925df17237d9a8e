"""The settings dialog's routes: what they list, what they save (and where the CLI reads it back), and
what they refuse: the roots, unknown keys, missing folders, paths that would widen the roots."""

from __future__ import annotations

import importlib
import json
import os

import pytest
import pytest_asyncio
from aiohttp import web

from lora_workbench import cli, editable_settings


@pytest.fixture
def settings_file(roots, tmp_path, monkeypatch):
    path = tmp_path / "config" / "settings.json"
    monkeypatch.setenv("LORA_WORKBENCH_SETTINGS", str(path))
    for s in editable_settings.EDITABLE:
        monkeypatch.delenv(editable_settings.env_of(s.key), raising=False)
    return path


@pytest_asyncio.fixture
async def client(aiohttp_client, pack, settings_file):
    table = web.RouteTableDef()
    importlib.import_module(f"{pack.__name__}.nodes.routes_settings").add_routes(table)
    app = web.Application()
    app.add_routes(table)
    return await aiohttp_client(app)


def sd_scripts(folder):
    (folder / "sd-scripts").mkdir(parents=True)
    (folder / "sd-scripts" / "train_network.py").write_text("", encoding="utf-8")
    return folder


@pytest.mark.asyncio
async def test_get_lists_the_editable_settings_but_never_the_roots(client, settings_file):
    r = await client.get("/lora_workbench/settings")
    assert r.status == 200
    data = await r.json()
    keys = [s["key"] for s in data["settings"]]
    assert keys == [s.key for s in editable_settings.EDITABLE] and "roots" not in keys
    assert data["settings_file"] == str(settings_file)
    assert all(s["label"] and s["help"] and s["env"] for s in data["settings"])


@pytest.mark.asyncio
async def test_settings_saved_by_the_dialog_are_read_by_the_cli(client, settings_file, roots, capsys):
    cache = roots / "tokenizers"
    cache.mkdir()
    r = await client.post("/lora_workbench/settings", json={"values": {"tokenizer_cache_dir": str(cache)}})
    body = await r.json()
    assert r.status == 200 and body["saved"] is True, body
    assert json.loads(settings_file.read_text("utf-8")) == {"tokenizer_cache_dir": str(cache)}

    # The command line reads the same file.
    assert cli.main(["settings", "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    entry = next(s for s in shown["settings"] if s["key"] == "tokenizer_cache_dir")
    assert entry["effective"] == str(cache) and shown["settings_file"] == str(settings_file)


def test_the_trainer_set_from_a_shell_is_what_training_finds(settings_file, tmp_path, capsys):
    kohya = sd_scripts(tmp_path / "kohya_ss")
    (kohya / "venv" / "bin").mkdir(parents=True)
    py = kohya / "venv" / "bin" / "python"
    py.write_text("#!/bin/sh\nexit 0\n", encoding="utf-8")
    py.chmod(0o755)
    assert cli.main(["settings", "--set", f"kohya_ss_path={kohya}"]) == 0
    from lora_workbench.training import kohya as kohya_core

    install = kohya_core.find_install()
    assert install.scripts_dir == kohya / "sd-scripts" and install.python == py


@pytest.mark.asyncio
async def test_the_dialog_lists_the_trainer_paths_read_only_with_the_command_that_sets_them(client):
    data = await (await client.get("/lora_workbench/settings")).json()
    shell_only = {s["key"]: s["command"] for s in data["settings"] if s["shell_only"]}
    assert shell_only == {
        k: f"lora-workbench settings --set {k}=/path/to/it"
        for k in ("kohya_ss_path", "kohya_python", "kohya_ss_gui_path", "musubi_tuner_path", "musubi_python")
    }


@pytest.mark.asyncio
@pytest.mark.parametrize("key", ["roots", "allowed_roots", "LORA_WORKBENCH_ROOTS"])
async def test_the_roots_cannot_be_set_from_the_browser(client, settings_file, key):
    r = await client.post("/lora_workbench/settings", json={"values": {key: ["/"]}})
    assert r.status == 400
    assert "cannot be set here" in (await r.json())["error"]
    assert not settings_file.exists()


@pytest.mark.asyncio
async def test_a_failed_check_is_a_400_with_the_message_and_nothing_saved(client, settings_file, tmp_path):
    good = tmp_path / "tok"
    good.mkdir()
    r = await client.post(
        "/lora_workbench/settings",
        json={"values": {"tokenizer_cache_dir": str(good), "library": str(tmp_path / "missing")}},
    )
    body = await r.json()
    assert r.status == 400 and body["saved"] is False
    assert "does not exist" in body["error"]
    assert {c["key"]: c["ok"] for c in body["checks"]} == {"tokenizer_cache_dir": True, "library": False}
    assert not settings_file.exists()


@pytest.mark.asyncio
async def test_a_library_outside_the_roots_cannot_widen_them(client, settings_file, tmp_path_factory):
    outside = tmp_path_factory.mktemp("outside-lib")
    r = await client.post("/lora_workbench/settings", json={"values": {"library": str(outside)}})
    body = await r.json()
    assert r.status == 400 and "outside the allowed roots" in body["error"]
    from lora_workbench import paths

    assert os.path.realpath(outside) not in [str(p) for p in paths.allowed_roots()]


@pytest.mark.asyncio
@pytest.mark.parametrize(
    "body",
    [b"", b"[1]", b'{"values": []}', b'{"values": {}}', b'{"library": "/x"}', b"not json"],
)
async def test_malformed_requests_are_400(client, settings_file, body):
    r = await client.post("/lora_workbench/settings", data=body, headers={"Content-Type": "application/json"})
    assert r.status == 400 and (await r.json())["error"]
    assert not settings_file.exists()
