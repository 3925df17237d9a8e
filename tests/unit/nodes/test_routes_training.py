"""The Training tab's routes: recent runs come back from disk after a reload (nothing in memory), the run
training now is merged in live, and every folder is confined to the allowed roots."""

from __future__ import annotations

import importlib
import os

import pytest
import pytest_asyncio
from aiohttp import web

from lora_workbench.training import history, runner
from tests.unit.training.test_history import make_run


@pytest.fixture
def mod(pack, roots, monkeypatch):
    module = importlib.import_module(f"{pack.__name__}.nodes.routes_training")
    monkeypatch.setattr(runner, "_current_status", None)
    monkeypatch.setenv("LORA_WORKBENCH_SETTINGS", str(roots / "cfg" / "settings.json"))
    return module


@pytest_asyncio.fixture
async def client(aiohttp_client, mod):
    table = web.RouteTableDef()
    mod.add_routes(table)
    app = web.Application()
    app.add_routes(table)
    return await aiohttp_client(app)


@pytest.mark.asyncio
async def test_runs_started_earlier_are_listed_from_their_folders(client, mod, roots):
    project = roots / "anna"
    make_run(project, "anna-001", age=300)
    make_run(project, "anna-002", state="failed")
    history.remember_run(project / "output" / "anna-001")
    r = await client.get("/lora_workbench/train/runs")
    assert r.status == 200
    data = await r.json()
    assert [x["run_id"] for x in data["runs"]] == ["anna-002", "anna-001"] and data["current"] is None
    assert data["runs"][0]["state"] == "failed"


@pytest.mark.asyncio
async def test_the_live_run_is_merged_into_its_folder(client, mod, roots):
    run = make_run(roots / "cat", "cat-001", state="running")
    live = runner.TrainStatus(
        run_id="cat-001", state="running", step=3, total=8, losses=[(1, 0.3), (2, 0.2), (3, 0.25)]
    )
    live.log_path = str(run / "train.log")
    runner.publish_status(live)  # the project is not in the index: the live run brings it
    data = await (await client.get("/lora_workbench/train/runs")).json()
    assert data["runs"][0]["live"] is True and data["runs"][0]["step"] == 3
    r = await client.get("/lora_workbench/train/run", params={"dir": str(run)})
    d = await r.json()
    assert r.status == 200 and d["state"] == "running" and d["total"] == 8 and len(d["losses"]) == 3
    assert d["log_tail"] and any(f["kind"] == "lora" for f in d["files"])


@pytest.mark.asyncio
async def test_the_live_run_brings_its_phase_and_the_phases_own_count(client, mod, roots):
    """A musubi run's cache steps: the Training tab names the phase and counts its items (the panel on
    the node had it from the event; the tab's detail came from the route without it)."""
    run = make_run(roots / "cat", "cat-001", state="running")
    live = runner.TrainStatus(run_id="cat-001", state="running", step=0, total=8)
    live.phase, live.progress, live.phase_step, live.phase_total = "Caching latents", "count", 3, 12
    live.log_path = str(run / "train.log")
    runner.publish_status(live)
    d = await (await client.get("/lora_workbench/train/run", params={"dir": str(run)})).json()
    assert (d["phase"], d["progress"], d["phase_step"], d["phase_total"]) == (
        "Caching latents",
        "count",
        3,
        12,
    )


@pytest.mark.asyncio
async def test_a_run_its_folder_says_ended_is_not_shown_live(client, mod, roots):
    # The last live message may never have come (ComfyUI's interrupt cut it): the folder wins.
    run = make_run(roots / "dog", "dog-001", state="cancelled")
    live = runner.TrainStatus(run_id="dog-001", state="starting", message="cancelling")
    live.log_path = str(run / "train.log")
    runner.publish_status(live)
    data = await (await client.get("/lora_workbench/train/runs")).json()
    assert data["runs"][0]["state"] == "cancelled" and "live" not in data["runs"][0]
    d = await (await client.get("/lora_workbench/train/run", params={"dir": str(run)})).json()
    assert d["state"] == "cancelled"


@pytest.mark.asyncio
async def test_one_run_in_full_from_disk(client, mod, roots):
    run = make_run(roots / "p", "p-001", samples=2)
    r = await client.get("/lora_workbench/train/run", params={"dir": str(run)})
    d = await r.json()
    assert r.status == 200 and d["state"] == "finished" and d["dir"] == os.path.realpath(run)
    assert len(d["samples"]) == 2 and d["losses"] == [[1, 0.5], [2, 0.4]] and "live" not in d


@pytest.mark.asyncio
@pytest.mark.parametrize("where", ["outside", "dotdot", "link"])
async def test_a_run_folder_outside_the_roots_is_403(client, mod, roots, tmp_path_factory, where):
    elsewhere = make_run(tmp_path_factory.mktemp("elsewhere") / "x", "x-001")
    value = {
        "outside": str(elsewhere),
        "dotdot": str(roots / ".." / elsewhere.relative_to(elsewhere.parents[3])),
        "link": str(roots / "escape"),
    }[where]
    if where == "link":
        (roots / "escape").symlink_to(elsewhere, target_is_directory=True)
    r = await client.get("/lora_workbench/train/run", params={"dir": value})
    assert r.status == 403, await r.text()


@pytest.mark.asyncio
async def test_an_index_entry_outside_the_roots_is_not_listed(client, mod, roots, tmp_path_factory):
    elsewhere = tmp_path_factory.mktemp("elsewhere")
    make_run(elsewhere / "x", "x-001")
    history.remember_run(elsewhere / "x" / "output" / "x-001")
    data = await (await client.get("/lora_workbench/train/runs")).json()
    assert data["runs"] == []


@pytest.mark.asyncio
@pytest.mark.parametrize("query", ["", "?dir=", "?dir=%00"])
async def test_a_missing_or_bad_dir_is_refused(client, mod, query):
    r = await client.get("/lora_workbench/train/run" + query)
    assert r.status in (400, 403) and (await r.json())["error"]


@pytest.mark.asyncio
async def test_a_folder_without_run_json_is_404(client, mod, roots):
    (roots / "plain").mkdir()
    r = await client.get("/lora_workbench/train/run", params={"dir": str(roots / "plain")})
    assert r.status == 404


@pytest.mark.asyncio
@pytest.mark.parametrize("limit", ["0", "201", "x", "-1", "\u00b2", "\u0663", "\uff11", "1\u00b2"])
async def test_a_bad_limit_is_400(client, mod, limit):
    # "²" and the Arabic-Indic "٣" pass str.isdigit() but int() refuses them: a 500 before
    r = await client.get("/lora_workbench/train/runs", params={"limit": limit})
    assert r.status == 400
    assert "limit must be a whole number" in (await r.json())["error"]
