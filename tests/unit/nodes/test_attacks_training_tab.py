"""Attacks on the Training tab's routes, on a real aiohttp app: a run folder swapped for a link to an
outside run between the roots check and the reads (once, and by a racing thread), and run.json records
of every odd shape planted in a shared project. Nothing outside the roots is served, and one bad record
never turns the run list into a 500 for the other projects."""

from __future__ import annotations

import importlib
import json
import os
import threading
import time

import pytest
import pytest_asyncio
from aiohttp import web

from lora_workbench import paths
from lora_workbench.training import history, runner
from tests.unit.training.test_history import make_run

MARK = "OUTSIDE-SECRET"
RUNS = "/lora_workbench/train/runs"
RUN = "/lora_workbench/train/run"


@pytest.fixture
def mod(pack, roots, monkeypatch):
    module = importlib.import_module(f"{pack.__name__}.nodes.routes_training")
    monkeypatch.setattr(runner, "_current_status", None)
    return module


@pytest_asyncio.fixture
async def client(aiohttp_client, mod):
    table = web.RouteTableDef()
    mod.add_routes(table)
    app = web.Application()
    app.add_routes(table)
    return await aiohttp_client(app)


@pytest.fixture
def world(roots, tmp_path_factory):
    """A run inside the roots (remembered in the index) and an outside run full of MARK."""
    inside = make_run(roots / "anna", "anna-001")
    history.remember_run(inside)
    outside = make_run(tmp_path_factory.mktemp("outside") / "x", "x-001", log=f"{MARK} log line\n")
    record = {"state": MARK, "started_at": MARK, "error": MARK, "warnings": [MARK], "losses": [[1, 0.5]]}
    (outside / "run.json").write_text(json.dumps(record), encoding="utf-8")
    (outside / f"{MARK}.safetensors").write_bytes(b"x")
    return inside, outside


class Swapper:
    """Swaps a folder for a symlink to `target` and back, in a loop on a thread, until stopped."""

    def __init__(self, folder, target):
        self.folder, self.target, self.aside = folder, target, folder.with_name(folder.name + ".aside")
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        steps = (
            lambda: os.rename(self.folder, self.aside),
            lambda: os.symlink(self.target, self.folder, target_is_directory=True),
            lambda: os.unlink(self.folder),
            lambda: os.rename(self.aside, self.folder),
        )
        while not self.stop.is_set():
            for step in steps:
                step()
                time.sleep(0.0002)  # each state (real, gone, link) lasts a moment

    def __enter__(self) -> Swapper:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        self.thread.join()


def swap_after_check(monkeypatch, folder, target):
    """paths.confine answers for `folder`, then the folder becomes a link to `target` (once)."""
    real = paths.confine

    def confine_then_swap(value, *args, **kwargs):
        got = real(value, *args, **kwargs)
        if kwargs.get("what") == "run folder" and not folder.is_symlink():
            os.rename(folder, folder.with_name(folder.name + ".aside"))
            folder.symlink_to(target, target_is_directory=True)
        return got

    monkeypatch.setattr(paths, "confine", confine_then_swap)


# --------------------------------------------------------------------------- swapped run folders
@pytest.mark.asyncio
async def test_a_run_folder_swapped_for_a_link_after_the_check_serves_nothing_outside(
    client, world, monkeypatch
):
    inside, outside = world
    swap_after_check(monkeypatch, inside, outside)
    r = await client.get(RUN, params={"dir": str(inside)})
    body = await r.text()
    assert r.status in (403, 404) and MARK not in body and json.loads(body)["error"]


@pytest.mark.asyncio
async def test_a_run_folder_swapped_for_a_link_after_the_check_is_not_listed(client, world, monkeypatch):
    inside, outside = world
    swap_after_check(monkeypatch, inside, outside)
    r = await client.get(RUNS)
    body = await r.text()
    assert r.status == 200 and MARK not in body and json.loads(body)["runs"] == []


@pytest.mark.asyncio
async def test_a_racing_swap_of_the_run_folder_never_serves_outside_data(client, world):
    inside, outside = world
    leaked = []
    with Swapper(inside, outside):
        for i in range(600):
            r = await client.get(RUN, params={"dir": str(inside)}) if i % 3 else await client.get(RUNS)
            body = await r.text()
            assert r.status in (200, 403, 404), body[:300]
            if MARK in body:
                leaked.append(body[:200])
    assert leaked == []


@pytest.mark.asyncio
async def test_a_run_folder_that_stays_put_is_read_in_full_through_its_descriptor(client, world):
    inside, _ = world
    d = await (await client.get(RUN, params={"dir": str(inside)})).json()
    assert d["dir"] == os.path.realpath(inside) and d["log_tail"] and d["losses"] == [[1, 0.5], [2, 0.4]]
    assert {f["name"] for f in d["files"]} >= {"anna-001.safetensors", "loss.png", "train.log"}


@pytest.mark.asyncio
async def test_a_run_folder_that_does_not_exist_is_404(client, roots, mod):
    r = await client.get(RUN, params={"dir": str(roots / "nobody" / "output" / "x-001")})
    assert r.status == 404 and "does not exist" in (await r.json())["error"]


# --------------------------------------------------------------------------- planted records
ODD_RECORDS = {
    "losses a number": {"state": "finished", "losses": 5},
    "losses an object": {"state": "finished", "losses": {}},
    "losses [null]": {"state": "finished", "losses": [None]},
    "losses a text": {"state": "finished", "losses": "abc"},
    "loss points of text": {"state": "finished", "losses": [["1", "0.5"]]},
    "warnings a number": {"state": "finished", "warnings": 5},
    "warnings [null]": {"state": "finished", "warnings": [None]},
    "state a list": {"state": []},
    "state an object": {"state": {"a": 1}},
    "status a list": {"state": "finished", "status": [1, 2]},
    "status of texts": {"state": "finished", "status": {"step": "7", "total": "x", "losses": 5}},
    "spec a number": {"state": "finished", "spec": 5},
    "error a list": {"state": "failed", "error": ["x"]},
    "times of numbers": {"state": "finished", "started_at": 5, "finished_at": [1]},
    "base_model a list": {"state": "finished", "base_model": ["x"]},
    "a huge number": {"state": "finished", "status": {"step": 10**300, "elapsed_s": 1e308 * 10}},
    "NaN everywhere": {
        "state": "finished",
        "losses": [[1, float("nan")]],
        "status": {"it_per_s": float("nan")},
    },
    "a huge text": {"state": "x" * 1_000_000, "error": "y" * 1_000_000},
}
ODD_FILES = {
    "a top-level list": "[1, 2, 3]",
    "null": "null",
    "nested deep": "[" * 100_000 + "]" * 100_000,
    "an integer of 5000 digits": '{"state": ' + "9" * 5000 + "}",
    "not JSON": "{broken",
    "not UTF-8": b'{"state": "\xff\xfe"}',
}


def plant(run, content) -> None:
    path = run / "run.json"
    path.unlink()
    if isinstance(content, dict):
        path.write_text(json.dumps(content), encoding="utf-8")
    elif isinstance(content, bytes):
        path.write_bytes(content)
    elif content == "sparse":
        with open(path, "wb") as f:
            f.truncate(100 << 20)
    elif content == "fifo":
        os.mkfifo(path)
    elif content == "link":
        path.symlink_to("/etc/passwd")
    else:
        path.write_text(content, encoding="utf-8")


SHAPES = {**ODD_RECORDS, **ODD_FILES, "a 100 MB sparse file": "sparse", "a FIFO": "fifo", "a link": "link"}


@pytest.mark.asyncio
@pytest.mark.parametrize("shape", list(SHAPES))
async def test_a_planted_odd_record_never_breaks_the_run_list(client, world, roots, shape):
    inside, _ = world
    shared = make_run(roots / "shared", "shared-001")
    history.remember_run(shared)
    plant(shared, SHAPES[shape])
    r = await client.get(RUNS)
    body = await r.text()
    assert r.status == 200, body[:300]
    runs = {x["run_id"]: x for x in json.loads(body)["runs"]}
    assert "anna-001" in runs and len(body) < 100_000
    assert all(isinstance(v, str) for k, v in runs.get("shared-001", {}).items() if k in ("state", "error"))


@pytest.mark.asyncio
@pytest.mark.parametrize("shape", list(SHAPES))
async def test_a_planted_odd_record_is_a_sentence_or_a_run_without_the_bad_fields(client, roots, mod, shape):
    shared = make_run(roots / "shared", "shared-001")
    plant(shared, SHAPES[shape])
    r = await client.get(RUN, params={"dir": str(shared)})
    body = await r.text()
    assert r.status in (200, 400, 403, 404), body[:300]
    d = json.loads(body)
    if r.status != 200:
        assert "run.json" in d["error"] or "run record" in d["error"]
    else:
        assert isinstance(d["losses"], list) and all(isinstance(w, str) for w in d["warnings"])
        assert isinstance(d["state"], str) and isinstance(d["step"], int)
