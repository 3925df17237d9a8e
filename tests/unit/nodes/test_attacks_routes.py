"""Attacks on the HTTP routes, on a real aiohttp app: paths that escape, files swapped mid-request,
over-long paths, 1e400, JSON nested a hundred thousand deep, oversized bodies. Every answer is a
400/403/404/413 with a sentence, never a 500, and nothing outside the roots is read."""

from __future__ import annotations

import json
import os

import pytest
import pytest_asyncio
from aiohttp import web

SECRET = b"\x89PNG\r\n\x1a\noutside secret"
PREVIEW = "/lora_workbench/dataset/preview"
SAMPLE = "/lora_workbench/train/sample"
JSON = {"Content-Type": "application/json"}


@pytest.fixture
def routes_mod(pack, roots, monkeypatch):
    mod = pack.nodes._routes
    monkeypatch.setattr(mod, "_registered_on", [])
    return mod


@pytest_asyncio.fixture
async def client(aiohttp_client, routes_mod):
    table = web.RouteTableDef()
    routes_mod.add_routes(table)
    app = web.Application(client_max_size=64 << 20)  # ComfyUI accepts big bodies: our cap must hold
    app.add_routes(table)
    return await aiohttp_client(app)


@pytest.fixture
def world(roots, tmp_path_factory):
    outside = tmp_path_factory.mktemp("outside")
    (outside / "secret.png").write_bytes(SECRET)
    (outside / "proj" / "images" / "1_x").mkdir(parents=True)
    (roots / "proj" / "images").mkdir(parents=True)
    return roots, outside


async def refused(resp, *statuses: int) -> str:
    body = await resp.read()
    assert resp.status in statuses, (resp.status, body[:300])
    assert SECRET not in body
    message = json.loads(body)["error"]
    assert message and "Traceback" not in message
    return message


# --------------------------------------------------------------------------- preview: paths
def preview_paths(roots, outside):
    return {
        "outside": (str(outside / "proj"), 403),
        "dot-dot": (str(roots / ".." / outside.name / "proj"), 403),
        "relative dot-dot": ("../../../../../../etc", 403),
        "escaping link": ("link/proj", 403),
        "NUL": ("proj\x00x", 403),
        "5000 chars": ("p" * 5000, 400),
        "300-byte name": ("proj/" + "n" * 300, 400),
        "lone surrogate": ("proj/\ud800", 400),
        "empty": ("   ", 403),
        "unknown user's home": ("~nouser-xq/proj", 400),
    }


@pytest.mark.asyncio
@pytest.mark.parametrize(
    "case",
    [
        "outside",
        "dot-dot",
        "relative dot-dot",
        "escaping link",
        "NUL",
        "5000 chars",
        "300-byte name",
        "lone surrogate",
        "empty",
        "unknown user's home",
    ],
)
async def test_preview_paths_that_escape_or_break_are_refused(client, world, case):
    roots, outside = world
    (roots / "link").symlink_to(outside, target_is_directory=True)
    project, status = preview_paths(roots, outside)[case]
    body = json.dumps({"project": project})  # json.dumps keeps a lone surrogate as \ud800
    r = await client.post(PREVIEW, data=body, headers={"Content-Type": "application/json"})
    await refused(r, status)


# --------------------------------------------------------------------------- preview: numbers and shapes
NUMBERS = {
    "1e400": "1e400",
    "-1e400": "-1e400",
    "1e-400": "1e-400",
    "string 1e-400": '"1e-400"',
    "string 1e400": '"1e400"',
    "NaN": "NaN",
    "Infinity": "Infinity",
    "5000 digits": "9" * 5000,
    "2**70": str(2**70),
    "1.5": "1.5",
    "list": "[512]",
    "object": '{"a": 1}',
    "true": "true",
    "long string": '"' + "9" * 100000 + '"',
}


@pytest.mark.asyncio
@pytest.mark.parametrize("key", ["width", "height", "batch_size", "epochs", "max_items_per_epoch"])
@pytest.mark.parametrize("case", sorted(NUMBERS))
async def test_odd_numbers_are_400_with_the_field_named(client, world, key, case):
    body = '{"project": "proj", "' + key + '": ' + NUMBERS[case] + "}"
    r = await client.post(PREVIEW, data=body, headers={"Content-Type": "application/json"})
    assert key in await refused(r, 400)


def node_ranges(pack) -> dict:
    inputs = pack.nodes.dataset_subset_weights.DatasetSubsetWeights.INPUT_TYPES()
    widgets = inputs["required"] | inputs["optional"]
    return {k: (w[1]["min"], w[1]["max"]) for k, w in widgets.items() if w[0] == "INT"}


@pytest.mark.asyncio
async def test_the_preview_takes_exactly_the_nodes_ranges_and_nothing_wider(client, world, pack):
    ranges = node_ranges(pack)
    assert set(ranges) == {
        "width",
        "height",
        "batch_size",
        "epochs",
        "max_items_per_epoch",
        "target_steps",
        "folder_repeats",
    }
    for key, (low, high) in ranges.items():
        for number in (low - 1, high + 1):
            r = await client.post(PREVIEW, json={"project": "proj", key: number})
            assert key in await refused(r, 400), (key, number)
    # the review's reproducer: a budget of 10**9 and batches of 1024 tied up a worker for minutes
    for key, number in (("max_items_per_epoch", 10**9), ("batch_size", 1024)):
        r = await client.post(PREVIEW, json={"project": "proj", key: number})
        assert key in await refused(r, 400)


@pytest.mark.asyncio
async def test_the_widest_plan_the_node_allows_answers_at_once(client, roots, pack):
    from PIL import Image

    subset = roots / "one" / "images" / "1_x"
    subset.mkdir(parents=True)
    Image.new("RGB", (64, 64)).save(subset / "a.png")
    (subset / "a.txt").write_text("x")
    ranges = node_ranges(pack)
    body = {"project": "one", "width": 64, "height": 64, "weights": "", "repeats": "folders"}
    for key in ("batch_size", "max_items_per_epoch", "target_steps"):
        body[key] = ranges[key][1]
    r = await client.post(PREVIEW, json=body)  # was ~5 s (10**7 multiples stepped through one by one)
    assert r.status == 200, await r.text()
    assert (await r.json())["steps"]["total_steps"] == ranges["target_steps"][1]


BODIES = {
    "deep list": "[" * 100000 + "]" * 100000,
    "deep value": '{"project": ' + "[" * 100000 + "]" * 100000 + "}",
    "deep object": '{"a": ' * 50000 + "1" + "}" * 50000,
    "not utf-8": b'{"project": "\xff\xfe"}',
    "not an object": '"proj"',
    "empty": "",
    "truncated": '{"project": "pro',
    "project a list": '{"project": ["proj"]}',
    "weights an object": '{"project": "proj", "weights": {"a": 1}}',
}


@pytest.mark.asyncio
@pytest.mark.parametrize("case", sorted(BODIES))
async def test_malformed_bodies_are_400_with_a_sentence(client, world, case):
    r = await client.post(PREVIEW, data=BODIES[case], headers={"Content-Type": "application/json"})
    await refused(r, 400)


@pytest.mark.asyncio
async def test_a_body_over_one_mib_is_413_before_it_is_parsed(client, world):
    big = json.dumps({"project": "proj", "weights": "x" * (2 << 20)})
    await refused(await client.post(PREVIEW, data=big, headers=JSON), 413)

    async def chunks():  # no Content-Length: the cap holds while reading
        for _ in range(40):
            yield b"x" * (64 << 10)

    await refused(await client.post(PREVIEW, data=chunks(), headers=JSON), 413)


# --------------------------------------------------------------------------- sample images
@pytest.mark.asyncio
async def test_sample_paths_that_escape_or_break_are_refused(client, world):
    roots, outside = world
    run = roots / "run"
    run.mkdir()
    (run / "notes.txt").write_text("inside, not an image")
    (run / "link.png").symlink_to(outside / "secret.png")
    (run / "txt.png").symlink_to(run / "notes.txt")
    (run / "dir.png").mkdir()
    os.mkfifo(run / "fifo.png")
    cases = {
        str(outside / "secret.png"): 403,
        str(run / "link.png"): 403,
        str(run / ".." / ".." / outside.name / "secret.png"): 403,
        str(run / "txt.png"): 403,
        str(run / "dir.png"): 403,
        str(run / "fifo.png"): 403,
        str(run / "none.png"): 404,
        "": 403,
        "x" * 5000 + ".png": 400,
        "run/" + "n" * 300 + ".png": 400,
        "~nouser-xq/s.png": 400,
    }
    for path, status in cases.items():
        await refused(await client.get(SAMPLE, params={"path": path}), status)


@pytest.mark.asyncio
async def test_a_sample_swapped_for_a_symlink_after_the_check_is_not_served(client, world, monkeypatch):
    from lora_workbench import paths

    roots, outside = world
    sample = roots / "s.png"
    sample.write_bytes(b"\x89PNG\r\n\x1a\ninside")
    real = paths.confine

    def confine_then_swap(*args, **kwargs):
        got = real(*args, **kwargs)
        sample.unlink()
        sample.symlink_to(outside / "secret.png")
        return got

    monkeypatch.setattr(paths, "confine", confine_then_swap)
    await refused(await client.get(SAMPLE, params={"path": str(sample)}), 403)


@pytest.mark.asyncio
async def test_a_sample_served_is_the_file_that_was_checked(client, world):
    roots, _ = world
    sample = roots / "s.png"
    sample.write_bytes(b"\x89PNG\r\n\x1a\ninside")
    r = await client.get(SAMPLE, params={"path": str(sample)})
    assert r.status == 200 and await r.read() == b"\x89PNG\r\n\x1a\ninside"
    assert r.headers["Content-Type"] == "image/png"


# --------------------------------------------------------------------------- settings
@pytest.mark.asyncio
async def test_a_settings_file_with_a_string_roots_never_widens_what_a_route_may_touch(
    client, world, monkeypatch, tmp_path
):
    _, outside = world
    settings = tmp_path / "bad-settings.json"
    settings.write_text(json.dumps({"roots": "/"}))
    monkeypatch.setenv("LORA_WORKBENCH_SETTINGS", str(settings))
    msg = await refused(await client.post(PREVIEW, json={"project": str(outside / "proj")}), 400)
    assert str(settings) in msg and "`roots`" in msg
    await refused(await client.get(SAMPLE, params={"path": str(outside / "secret.png")}), 400)
    await refused(await client.get("/lora_workbench/library/status"), 400)
