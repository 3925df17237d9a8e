"""The settings dialog's trainer routes on a bare aiohttp app: status, install/update/check started as a
background job from the pack's pins only (a request that names anything but a known trainer is
refused), 409 while a training or another job runs, and the other routes answering during an install."""

from __future__ import annotations

import json
import threading

import pytest
import pytest_asyncio

from lora_workbench.trainer_env import install, job
from lora_workbench.training import runner
from tests.unit.nodes.route_app import serve_pack_routes


@pytest.fixture(autouse=True)
def fresh_job(monkeypatch):
    monkeypatch.setattr(job, "_state", None)
    monkeypatch.setattr(job, "_cancel", None)
    monkeypatch.setattr(job, "_thread", None)
    monkeypatch.setattr(install, "busy", lambda layout=None: False)
    yield
    job.cancel()
    job.wait(10)


@pytest.fixture
def work(monkeypatch):
    """The job's work, held until `release` is set; records what it was asked."""
    release, asked = threading.Event(), []

    def fake(action, python, comfyui, progress, flag, trainer="sd-scripts"):
        asked.append((action, python, trainer))
        progress(install.Progress("pip", "installing requirements", 3, 6, "Collecting accelerate", 4.0))
        while not (release.is_set() or flag.is_set()):
            flag.wait(0.01)
        if flag.is_set():
            raise install.InstallCancelled("cancelled")
        return {"changed": True, "src": "/x/src", "checked": {"torch": "2.14.1"}}

    real_start = job.start
    monkeypatch.setattr(job, "start", lambda action, **kw: real_start(action, **{**kw, "work": fake}))
    return release, asked


@pytest_asyncio.fixture
async def client(aiohttp_client, pack, roots, monkeypatch):
    return await serve_pack_routes(aiohttp_client, pack, monkeypatch)


@pytest.mark.asyncio
async def test_install_starts_a_job_and_returns_at_once(client, work):
    release, asked = work
    r = await client.post("/lora_workbench/trainer/install", json={})
    assert r.status == 202, await r.text()
    assert (await r.json())["job"]["action"] == "install"
    job.wait(0.2)
    assert asked and asked[0][0] == "install"
    release.set()
    job.wait(10)
    r = await client.get("/lora_workbench/trainer")
    body = await r.json()
    assert body["job"]["state"] == "done" and "installed in /x/src" in body["job"]["message"]
    assert body["status"]["pinned"]["ref"]


@pytest.mark.asyncio
@pytest.mark.parametrize(
    "body",
    [
        {"source": "https://evil.example/sd-scripts.git"},
        {"ref": "0" * 40},
        {"torch": "torch==1.0"},
        {"python": "/tmp/python"},
        {"packages": ["evil"]},
    ],
)
async def test_a_request_cannot_choose_what_is_installed(client, work, body):
    for action in ("install", "update", "check"):
        r = await client.post(f"/lora_workbench/trainer/{action}", json=body)
        assert r.status == 400, await r.text()
        assert "takes no settings" in (await r.json())["error"]
    assert work[1] == [] and job.current() is None


@pytest.mark.asyncio
async def test_install_is_refused_while_a_training_runs(client, work, monkeypatch):
    monkeypatch.setattr(runner, "current_status", lambda: {"state": "running", "step": 3})
    r = await client.post("/lora_workbench/trainer/install", json={})
    assert r.status == 409
    assert "A training is running" in (await r.json())["error"]
    assert work[1] == []


@pytest.mark.asyncio
async def test_a_second_job_is_409_and_the_other_routes_keep_answering(client, work, monkeypatch):
    release, _ = work
    monkeypatch.setattr(runner, "current_status", lambda: None)  # whatever an earlier test left there
    assert (await client.post("/lora_workbench/trainer/install", json={})).status == 202
    r = await client.post("/lora_workbench/trainer/check", json={})
    assert r.status == 409 and "already running" in (await r.json())["error"]
    r = await client.get("/lora_workbench/train/status")  # the install's thread does not hold the loop
    assert r.status == 200 and (await r.json())["state"] == "idle"
    r = await client.get("/lora_workbench/trainer")
    running = (await r.json())["job"]
    assert running["state"] == "running"
    release.set()


@pytest.mark.asyncio
async def test_cancel_stops_the_install(client, work):
    assert (await client.post("/lora_workbench/trainer/install", json={})).status == 202
    r = await client.post("/lora_workbench/trainer/cancel", json={})
    assert (await r.json())["cancelled"] is True
    job.wait(10)
    state = (await (await client.get("/lora_workbench/trainer")).json())["job"]
    assert state["state"] == "cancelled"
    r = await client.post("/lora_workbench/trainer/cancel", json={})
    assert (await r.json()) == {"cancelled": False, "message": "nothing runs"}


@pytest.mark.asyncio
async def test_status_before_any_job_names_the_pinned_commit_and_what_training_uses(client):
    body = json.loads(await (await client.get("/lora_workbench/trainer")).text())
    assert body["job"] is None
    assert body["status"]["in_use"]["from"]
    assert len(body["status"]["pinned"]["ref"]) == 40


@pytest.mark.asyncio
@pytest.mark.parametrize("action", ["install", "update", "check"])
async def test_a_known_trainer_id_picks_which_trainer_the_job_is_for(client, work, action):
    release, asked = work
    r = await client.post(f"/lora_workbench/trainer/{action}", json={"trainer": "musubi-tuner"})
    assert r.status == 202, await r.text()
    assert (await r.json())["job"]["trainer"] == "musubi-tuner"
    release.set()
    job.wait(10)
    assert asked[0][0] == action and asked[0][2] == "musubi-tuner"
    done = (await (await client.get("/lora_workbench/trainer?trainer=musubi-tuner")).json())["job"]
    assert done["state"] == "done" and done["message"].startswith("musubi-tuner ")


@pytest.mark.asyncio
async def test_a_body_without_a_trainer_still_means_sd_scripts(client, work):
    release, asked = work
    assert (await client.post("/lora_workbench/trainer/install", json={})).status == 202
    release.set()
    job.wait(10)
    assert asked[0][2] == "sd-scripts"


@pytest.mark.asyncio
@pytest.mark.parametrize(
    "trainer",
    [
        "kohya_ss",
        "../sd-scripts",
        "/tmp/planted-checkout",
        "",
        None,
        1,
        ["musubi-tuner"],
        {"id": "musubi-tuner"},
    ],
)
async def test_only_a_trainer_id_the_backends_declare_is_accepted(client, work, trainer):
    for action in ("install", "update", "check"):
        r = await client.post(f"/lora_workbench/trainer/{action}", json={"trainer": trainer})
        assert r.status == 400, await r.text()
        assert "trainer must be one of sd-scripts, musubi-tuner" in (await r.json())["error"]
    assert work[1] == [] and job.current() is None


@pytest.mark.asyncio
@pytest.mark.parametrize(
    "extra",
    [
        {"source": "https://evil.example/musubi-tuner.git"},
        {"ref": "0" * 40},
        {"python": "/tmp/planted/venv/bin/python"},
        {"musubi_python": "/tmp/planted/venv/bin/python"},
        {"musubi_tuner_path": "/tmp/planted"},
    ],
)
async def test_a_trainer_id_cannot_carry_anything_else(client, work, extra):
    r = await client.post("/lora_workbench/trainer/install", json={"trainer": "musubi-tuner", **extra})
    assert r.status == 400 and "takes no settings" in (await r.json())["error"]
    assert work[1] == [] and job.current() is None


@pytest.mark.asyncio
async def test_status_of_musubi_tuner_names_its_pin_and_the_trainers_the_dialog_shows(client, monkeypatch):
    for var in ("MUSUBI_TUNER_PATH", "MUSUBI_PYTHON"):
        monkeypatch.delenv(var, raising=False)
    body = await (await client.get("/lora_workbench/trainer?trainer=musubi-tuner")).json()
    assert body["status"]["trainer"] == "musubi-tuner" and body["trainers"] == ["sd-scripts", "musubi-tuner"]
    assert body["status"]["pinned"]["ref"].startswith("30c658c4f4b0")
    assert body["status"]["in_use"]["from"] == "nothing (not installed, not set)"


@pytest.mark.asyncio
@pytest.mark.parametrize("query", ["?trainer=evil", "?trainer=", "?trainer=..%2Fsd-scripts"])
async def test_status_of_an_unknown_trainer_is_a_400(client, query):
    r = await client.get(f"/lora_workbench/trainer{query}")
    assert r.status == 400 and "trainer must be one of" in (await r.json())["error"]


@pytest.mark.asyncio
async def test_one_job_at_a_time_whichever_trainer_it_is_for(client, work, monkeypatch):
    release, _ = work
    monkeypatch.setattr(runner, "current_status", lambda: None)
    assert (await client.post("/lora_workbench/trainer/install", json={})).status == 202
    r = await client.post("/lora_workbench/trainer/install", json={"trainer": "musubi-tuner"})
    assert r.status == 409 and "The sd-scripts install is already running" in (await r.json())["error"]
    release.set()
