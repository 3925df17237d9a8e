"""The pack's HTTP routes on a bare aiohttp app: dataset preview, library/training status, path refusals."""

from __future__ import annotations

import importlib
import json
import os
import types

import pytest
import pytest_asyncio
from aiohttp import web

from lora_workbench import events


@pytest.fixture
def routes_mod(pack, roots, monkeypatch):
    mod = pack.nodes._routes
    monkeypatch.setattr(mod, "_registered_on", [])
    return mod


@pytest_asyncio.fixture
async def client(aiohttp_client, routes_mod):
    table = web.RouteTableDef()
    routes_mod.add_routes(table)
    app = web.Application()
    app.add_routes(table)
    return await aiohttp_client(app)


CORE_MODULES = {"dataset": "lora_workbench.dataset.prepare", "runner": "lora_workbench.training.runner"}


def fake_core(monkeypatch, name: str, **attrs) -> types.ModuleType:
    """Replace functions of a core module the handlers call (the pack shares the top-level modules)."""
    mod = importlib.import_module(CORE_MODULES[name])
    for k, v in attrs.items():
        monkeypatch.setattr(mod, k, v)
    return mod


def make_project(root, subsets: dict[str, int]):
    from PIL import Image

    project = root / "project"
    for folder, count in subsets.items():
        d = project / "images" / folder
        d.mkdir(parents=True)
        for i in range(count):
            Image.new("RGB", (64, 64), (i * 40 % 255, 80, 120)).save(d / f"img{i}.png")
            (d / f"img{i}.txt").write_text(f"{folder.split('_', 1)[-1]}, photo", encoding="utf-8")
    return project


# --------------------------------------------------------------------------- dataset preview
@pytest.mark.asyncio
async def test_preview_hands_the_request_to_the_core_and_returns_its_answer(client, roots, monkeypatch):
    project = roots / "project"
    project.mkdir()
    calls = []

    def preview(project_dir, options, guard=None):
        calls.append((project_dir, options, guard.confined))
        return {
            "subsets": [{"name": "Alice", "images": 3, "weight": 2.0, "repeats": 4, "share": 0.8}],
            "issues": [],
            "steps_per_epoch": 15,
            "loss": float("nan"),
        }

    fake_core(monkeypatch, "dataset", preview=preview)
    r = await client.post(
        "/lora_workbench/dataset/preview",
        json={
            "project": "project",
            "weights": "Alice: 2",
            "width": 64,
            "height": 128,
            "enable_bucket": False,
            "batch_size": 2,
            "epochs": 3,
            "max_items_per_epoch": 0,
        },
    )
    assert r.status == 200, await r.text()
    body = await r.json()
    assert body["subsets"][0]["repeats"] == 4
    assert body["loss"] is None  # NaN would break the browser's JSON.parse
    from lora_workbench.dataset.prepare import DatasetOptions

    expected = DatasetOptions("Alice: 2", (64, 128), False, 2, 3, None, target_steps=0)
    assert calls == [(str(project), expected, True)]  # the core reads only inside the roots


@pytest.mark.asyncio
async def test_preview_of_a_real_project_counts_images_per_subset(client, roots):
    make_project(roots, {"10_Alice": 3, "10_Bob": 1})
    r = await client.post(
        "/lora_workbench/dataset/preview",
        json={
            "project": str(roots / "project"),
            "weights": "Alice: 1\nBob: 1",
            "width": 64,
            "height": 64,
            "enable_bucket": False,
            "batch_size": 1,
            "epochs": 1,
        },
    )
    assert r.status == 200, await r.text()
    body = await r.json()
    counts = {s["name"]: s["images"] for s in body["subsets"]}
    assert counts == {"Alice": 3, "Bob": 1}
    repeats = {s["name"]: s["repeats"] for s in body["subsets"]}
    assert all(isinstance(v, int) and v >= 1 for v in repeats.values())


@pytest.mark.asyncio
async def test_preview_takes_the_weights_editors_request_with_nulls_for_unset_numbers(client, roots):
    # web/weights_editor.js sends max_items_per_epoch: null when the widget is 0 (the default budget)
    make_project(roots, {"10_Alice": 3, "10_Bob": 1})
    body = {"project": str(roots / "project"), "weights": "", "width": 512, "height": 512}
    body |= {"enable_bucket": False, "batch_size": 1, "epochs": 1, "max_items_per_epoch": None}
    body |= {"repeats": None, "target_steps": 0, "wrong_size": "error", "caption_extension": ".txt"}
    r = await client.post("/lora_workbench/dataset/preview", json=body)
    assert r.status == 200, await r.text()
    assert {s["name"] for s in (await r.json())["subsets"]} == {"Alice", "Bob"}


@pytest.mark.asyncio
async def test_preview_repeats_follow_the_weights(client, roots):
    make_project(roots, {"1_Alice": 2, "1_Bob": 2})

    async def repeats(weights: str) -> dict:
        r = await client.post(
            "/lora_workbench/dataset/preview",
            json={
                "project": "project",
                "weights": weights,
                "width": 64,
                "height": 64,
                "enable_bucket": False,
                "batch_size": 1,
                "epochs": 1,
            },
        )
        assert r.status == 200, await r.text()
        return {s["name"]: s["repeats"] for s in (await r.json())["subsets"]}

    even, skewed = await repeats("Alice: 1\nBob: 1"), await repeats("Alice: 3\nBob: 1")
    assert even["Alice"] == even["Bob"]
    assert skewed["Alice"] > skewed["Bob"]


@pytest.mark.asyncio
@pytest.mark.parametrize("project", ["../../etc", "/etc", "project/../../.."])
async def test_preview_refuses_paths_outside_the_roots_with_403(client, project):
    r = await client.post("/lora_workbench/dataset/preview", json={"project": project, "weights": ""})
    assert r.status == 403
    body = await r.json()
    assert "outside the allowed roots" in body["error"]
    assert "Traceback" not in body["error"]


@pytest.mark.asyncio
async def test_preview_refuses_a_symlink_that_escapes_the_roots(client, roots, tmp_path_factory):
    outside = tmp_path_factory.mktemp("outside-the-roots")
    (roots / "sneaky").symlink_to(outside, target_is_directory=True)
    r = await client.post("/lora_workbench/dataset/preview", json={"project": "sneaky", "weights": ""})
    assert r.status == 403
    body = await r.json()
    assert str(outside) in body["error"] and "outside the allowed roots" in body["error"]


@pytest.mark.asyncio
async def test_preview_of_a_missing_project_is_404_with_the_folder(client, roots):
    r = await client.post("/lora_workbench/dataset/preview", json={"project": "nope", "weights": ""})
    assert r.status == 404
    assert str(roots / "nope") in (await r.json())["error"]


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("body", "says"),
    [
        ("{not json", "not valid JSON"),
        ("", "empty"),
        ("[1, 2]", "JSON object"),
        (json.dumps({"project": 5}), "project must be a string"),
        (json.dumps({"project": "p", "width": "wide"}), "width must be a whole number"),
        (json.dumps({"project": "p", "batch_size": 0}), "batch_size must be a whole number from 1"),
        (json.dumps({"project": "p", "enable_bucket": "maybe"}), "enable_bucket must be true or false"),
        (json.dumps({"weights": ""}), "project is required"),
    ],
)
async def test_bad_requests_get_400_with_a_reason_not_a_traceback(client, body, says):
    r = await client.post(
        "/lora_workbench/dataset/preview", data=body, headers={"Content-Type": "application/json"}
    )
    assert r.status == 400
    text = (await r.json())["error"]
    assert says in text
    assert "Traceback" not in text


@pytest.mark.asyncio
async def test_a_core_validation_error_is_400_with_its_sentence(client, roots, monkeypatch):
    from lora_workbench.errors import ValidationError

    (roots / "project").mkdir()

    def preview(*_a, **_kw):
        raise ValidationError("The weights line 'Alice = 2' has no colon; write `Alice: 2`.")

    fake_core(monkeypatch, "dataset", preview=preview)
    r = await client.post(
        "/lora_workbench/dataset/preview", json={"project": "project", "weights": "Alice = 2"}
    )
    assert r.status == 400
    assert "has no colon" in (await r.json())["error"]


@pytest.mark.asyncio
async def test_an_unexpected_error_is_a_one_line_500_and_logged(client, monkeypatch, caplog):
    def current_status():
        raise RuntimeError("disk on fire\nsecond line")

    fake_core(monkeypatch, "runner", current_status=current_status)
    r = await client.get("/lora_workbench/train/status")
    assert r.status == 500
    assert (await r.json()) == {"error": "RuntimeError: disk on fire"}
    assert any("train/status failed" in rec.getMessage() and rec.exc_info for rec in caplog.records)


# --------------------------------------------------------------------------- training
@pytest.mark.asyncio
async def test_train_status_is_idle_before_any_run(client, monkeypatch):
    from lora_workbench.training import runner

    monkeypatch.setattr(runner, "_current_status", None)
    r = await client.get("/lora_workbench/train/status")
    assert r.status == 200
    assert await r.json() == {"state": "idle"}


@pytest.mark.asyncio
async def test_train_status_is_the_runners_latest_status(client, monkeypatch):
    from lora_workbench.training import runner

    monkeypatch.setattr(runner, "_current_status", None)
    status = runner.TrainStatus(
        run_id="r1",
        state="running",
        step=3,
        total=8,
        epoch=1,
        epochs=2,
        loss=0.25,
        losses=[(1, 0.5), (2, 0.3), (3, 0.25)],
        node_id="7",
    )
    runner.publish_status(status)
    body = await (await client.get("/lora_workbench/train/status")).json()
    assert body["run_id"] == "r1" and body["state"] == "running" and body["node_id"] == "7"
    assert body["losses"] == [[1, 0.5], [2, 0.3], [3, 0.25]]


@pytest.mark.asyncio
async def test_cancel_without_a_running_training_says_so(client, monkeypatch):
    from lora_workbench.training import runner

    monkeypatch.setattr(runner, "_current_status", None)
    monkeypatch.setattr(runner, "_current_cancel", None)
    r = await client.post("/lora_workbench/train/cancel", json={})
    assert r.status == 200
    assert await r.json() == {"cancelled": False, "message": "no training is running"}


@pytest.mark.asyncio
async def test_cancel_sets_the_running_trainings_cancel_flag(client, monkeypatch):
    import threading

    from lora_workbench.training import runner

    flag = threading.Event()
    monkeypatch.setattr(runner, "_current_status", {"run_id": "r2", "state": "running"})
    monkeypatch.setattr(runner, "_current_cancel", flag)
    body = await (await client.post("/lora_workbench/train/cancel", json={})).json()
    assert body["cancelled"] is True
    assert flag.is_set()


@pytest.mark.asyncio
async def test_sample_images_are_served_from_inside_the_roots_only(client, roots, tmp_path_factory):
    from PIL import Image

    sample = roots / "run" / "sample" / "s_000001.png"
    sample.parent.mkdir(parents=True)
    Image.new("RGB", (8, 8), (255, 0, 0)).save(sample)
    (roots / "run" / "notes.txt").write_text("secret", encoding="utf-8")
    outside = tmp_path_factory.mktemp("elsewhere") / "x.png"
    Image.new("RGB", (8, 8)).save(outside)

    ok = await client.get("/lora_workbench/train/sample", params={"path": str(sample)})
    assert ok.status == 200
    assert (await ok.read())[:8] == b"\x89PNG\r\n\x1a\n"
    not_image = await client.get(
        "/lora_workbench/train/sample", params={"path": str(roots / "run/notes.txt")}
    )
    assert not_image.status == 403
    escaped = await client.get("/lora_workbench/train/sample", params={"path": str(outside)})
    assert escaped.status == 403
    assert "outside the allowed roots" in (await escaped.json())["error"]
    missing = await client.get("/lora_workbench/train/sample", params={"path": str(roots / "run/none.png")})
    assert missing.status == 404


# --------------------------------------------------------------------------- library
@pytest.mark.asyncio
async def test_library_status_shape_before_anything_ran(client, roots):
    body = await (await client.get("/lora_workbench/library/status")).json()
    assert body["roots"] == [os.path.realpath(roots)]
    assert body["watchers"] == [] and body["watching"] is False
    assert body["last_report"] is None and body["targets"] == []


@pytest.mark.asyncio
async def test_library_status_counts_links_per_target_after_a_link_pass(client, comfy, roots):
    lib = roots / "library"
    (lib / "loras").mkdir(parents=True)
    (lib / "loras" / "style.safetensors").write_bytes(b"x")
    (lib / "checkpoints").mkdir()
    (lib / "checkpoints" / "base.safetensors").write_bytes(b"x")
    models = comfy.base / "models"
    (models / "loras" / "style.safetensors").symlink_to(lib / "loras" / "style.safetensors")
    (models / "loras" / "mine.safetensors").write_bytes(b"real file, not ours")
    (models / "checkpoints" / "base.safetensors").symlink_to(lib / "checkpoints" / "base.safetensors")
    events.publish(
        events.LIBRARY,
        {
            "library": str(lib),
            "trigger": "link",
            "created": 2,
            "collisions": 1,
            "summary": "created 2, fixed 0, removed 0, collisions 1, skipped 0 targets",
        },
    )

    body = await (await client.get("/lora_workbench/library/status")).json()
    assert body["last_report"]["created"] == 2
    links = {(t["ui"], t["category"]): t["links"] for t in body["targets"]}
    assert links[("comfyui", "loras")] == 1
    assert links[("comfyui", "checkpoints")] == 1
    assert links[("comfyui", "vae")] == 0


@pytest.mark.asyncio
async def test_library_status_lists_a_running_watcher(client, comfy, roots):
    pytest.importorskip("watchdog")
    from lora_workbench.library import watch

    lib = roots / "library"
    (lib / "loras").mkdir(parents=True)
    watch.ensure_watcher(lib, {"comfyui": comfy.base})
    try:
        body = await (await client.get("/lora_workbench/library/status")).json()
    finally:
        watch.stop_all()
    assert body["watching"] is True
    assert body["watchers"][0]["library"] == str(lib)
    assert {t["category"] for t in body["targets"]} >= {"loras", "checkpoints"}


# --------------------------------------------------------------------------- registration
def test_register_without_a_server_does_nothing(routes_mod):
    assert routes_mod.register() is False


def test_register_adds_the_routes_once_and_forwards_events(routes_mod, pack, comfy, monkeypatch):
    from lora_workbench import paths

    server = comfy.start_server()
    assert routes_mod.register() is True
    assert routes_mod.register() is True  # idempotent
    found = sorted((r.method, r.path) for r in server.routes)
    assert found == sorted(
        [
            ("POST", "/lora_workbench/dataset/preview"),
            ("GET", "/lora_workbench/library/status"),
            ("GET", "/lora_workbench/train/status"),
            ("POST", "/lora_workbench/train/cancel"),
            ("GET", "/lora_workbench/train/sample"),
            ("GET", "/lora_workbench/settings"),
            ("POST", "/lora_workbench/settings"),
            ("GET", "/lora_workbench/train/runs"),
            ("GET", "/lora_workbench/train/run"),
            ("GET", "/lora_workbench/captions"),
            ("GET", "/lora_workbench/captions/thumbnail"),
            ("POST", "/lora_workbench/captions/save"),
            ("POST", "/lora_workbench/captions/bulk"),
            ("GET", "/lora_workbench/trainer"),
            ("POST", "/lora_workbench/trainer/install"),
            ("POST", "/lora_workbench/trainer/update"),
            ("POST", "/lora_workbench/trainer/check"),
            ("POST", "/lora_workbench/trainer/cancel"),
        ]
    )
    assert os.path.realpath(comfy.base / "models" / "loras") in [str(r) for r in paths.allowed_roots()]
    events.publish(events.TRAIN, {"run_id": "r", "state": "running"})
    assert ("lora_workbench.train", {"run_id": "r", "state": "running"}) in comfy.sent


@pytest.mark.asyncio
async def test_preview_follows_the_nodes_missing_caption_mode(client, roots):
    make_project(roots, {"1_Alice": 2})
    (roots / "project" / "images" / "1_Alice" / "img0.txt").unlink()
    body = {"project": str(roots / "project"), "width": 64, "height": 64, "enable_bucket": False}
    stopped = await (await client.post("/lora_workbench/dataset/preview", json=body)).json()
    body["missing_caption"] = "class_tokens"
    trained = await (await client.post("/lora_workbench/dataset/preview", json=body)).json()
    assert stopped["ok"] is False and trained["ok"] is True
    body["missing_caption"] = "guess"
    r = await client.post("/lora_workbench/dataset/preview", json=body)
    assert r.status == 400 and "missing_caption must be one of" in await r.text()
