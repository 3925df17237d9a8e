"""Attacks on the caption editor's routes, with real links, FIFOs and a folder swapped mid-request:
names with `..`, a link planted as a caption or an image, a FIFO, a subset folder that is (or becomes)
a link, a project outside the roots, giant bodies, 10,000 captions. Every answer is a 400/403/404/413
with a sentence, nothing outside the roots is read or written, and nothing hangs."""

from __future__ import annotations

import json
import os

import pytest
import pytest_asyncio
from PIL import Image

from tests.unit.nodes.route_app import serve_pack_routes

LIST = "/lora_workbench/captions"
THUMB = "/lora_workbench/captions/thumbnail"
SAVE = "/lora_workbench/captions/save"
BULK = "/lora_workbench/captions/bulk"
KEY = "images/2_Alice"
SECRET = "outside secret caption"


@pytest_asyncio.fixture
async def client(aiohttp_client, pack, roots, monkeypatch):
    return await serve_pack_routes(aiohttp_client, pack, monkeypatch, client_max_size=64 << 20)


@pytest.fixture
def world(roots, tmp_path_factory):
    outside = tmp_path_factory.mktemp("outside")
    (outside / "secret.txt").write_text(SECRET, encoding="utf-8")
    Image.new("RGB", (64, 64), (255, 0, 0)).save(outside / "secret.png")
    (outside / "proj" / "images" / "2_Alice").mkdir(parents=True)
    folder = roots / "project" / "images" / "2_Alice"
    folder.mkdir(parents=True)
    Image.new("RGB", (64, 64), (0, 0, 255)).save(folder / "a.png")
    (folder / "a.txt").write_text("alice", encoding="utf-8")
    return roots / "project", outside


async def refused(resp, *statuses: int) -> str:
    body = await resp.read()
    assert resp.status in statuses, (resp.status, body[:300])
    assert SECRET.encode() not in body
    message = json.loads(body)["error"]
    assert message and "Traceback" not in message
    return message


def save_body(project, items, subset=KEY) -> dict:
    return {"project": str(project), "subset": subset, "items": items}


# --------------------------------------------------------------------------- project and subset
@pytest.mark.asyncio
@pytest.mark.parametrize("case", ["outside", "dot-dot", "link out"])
async def test_a_project_outside_the_roots_is_403(client, world, case):
    project, outside = world
    if case == "link out":
        os.symlink(outside / "proj", project.parent / "linked")
    value = {
        "outside": str(outside / "proj"),
        "dot-dot": str(project / ".." / ".." / outside.name / "proj"),
        "link out": str(project.parent / "linked"),
    }[case]
    r = await client.get(LIST, params={"project": value})
    assert "outside the allowed roots" in await refused(r, 403)
    r = await client.post(SAVE, json=save_body(value, [{"image": "a.png", "caption": "x", "hash": ""}]))
    await refused(r, 403)


@pytest.mark.asyncio
@pytest.mark.parametrize(
    "subset",
    ["images/../../outside", "../images/2_Alice", "images/..", "etc/2_Alice", "images/2_Alice/x", "images"],
)
async def test_a_subset_that_is_no_subset_folder_name_is_400(client, world, subset):
    project, _ = world
    r = await client.get(LIST, params={"project": str(project), "subset": subset})
    assert "images/3_Subject" in await refused(r, 400)


@pytest.mark.asyncio
@pytest.mark.parametrize("inside", [False, True])
async def test_a_subset_folder_that_is_a_link_is_refused(client, world, inside):
    project, outside = world
    target = project / "elsewhere" if inside else outside / "proj" / "images" / "2_Alice"
    target.mkdir(exist_ok=True)
    (target / "b.png").write_bytes(b"x")
    os.symlink(target, project / "images" / "3_Linked")
    r = await client.get(LIST, params={"project": str(project), "subset": "images/3_Linked"})
    assert "link" in await refused(r, 403)
    r = await client.post(
        SAVE, json=save_body(project, [{"image": "b.png", "caption": "x", "hash": ""}], "images/3_Linked")
    )
    await refused(r, 403)
    assert not (target / "b.txt").exists()


@pytest.mark.asyncio
async def test_an_images_folder_that_is_a_link_out_is_refused(client, roots, tmp_path_factory):
    outside = tmp_path_factory.mktemp("outside")
    (outside / "2_Alice").mkdir()
    (roots / "project").mkdir()
    os.symlink(outside, roots / "project" / "images")
    r = await client.get(LIST, params={"project": str(roots / "project"), "subset": KEY})
    await refused(r, 403)


@pytest.mark.asyncio
async def test_a_subset_folder_swapped_for_a_link_after_it_was_listed_is_not_written(
    client, world, monkeypatch
):
    project, outside = world
    from lora_workbench.dataset import confined

    real = project / "images" / "2_Alice"
    entries = confined.Folder.entries

    def entries_then_swap(self):
        found = entries(self)
        if self.path.name == "images" and real.is_dir() and not real.is_symlink():
            os.rename(real, project / "moved")
            os.symlink(outside / "proj" / "images" / "2_Alice", real)
        return found

    monkeypatch.setattr(confined.Folder, "entries", entries_then_swap)
    r = await client.post(SAVE, json=save_body(project, [{"image": "a.png", "caption": "x", "hash": ""}]))
    assert "changed while" in await refused(r, 403)
    assert os.listdir(outside / "proj" / "images" / "2_Alice") == []


# --------------------------------------------------------------------------- images and captions
@pytest.mark.asyncio
@pytest.mark.parametrize(
    "image", ["../a.png", "../../outside/secret.png", "/etc/passwd", "a.txt", "", "a.png\x00"]
)
async def test_a_save_naming_no_image_of_the_subset_is_refused_and_writes_nothing(client, world, image):
    project, _ = world
    before = sorted(os.listdir(project / "images"))
    r = await client.post(SAVE, json=save_body(project, [{"image": image, "caption": "x", "hash": ""}]))
    await refused(r, 400, 403)
    assert sorted(os.listdir(project / "images")) == before
    assert (project / "images" / "2_Alice" / "a.txt").read_text() == "alice"


@pytest.mark.asyncio
async def test_a_caption_planted_as_a_link_out_is_neither_read_nor_written_through(client, world):
    project, outside = world
    folder = project / "images" / "2_Alice"
    Image.new("RGB", (8, 8)).save(folder / "b.png")
    os.symlink(outside / "secret.txt", folder / "b.txt")
    r = await client.get(LIST, params={"project": str(project), "subset": KEY})
    body = await r.read()
    assert r.status == 200 and SECRET.encode() not in body
    item = {i["image"]: i for i in json.loads(body)["subset"]["items"]}["b.png"]
    assert "link" in item["problem"]
    r = await client.post(SAVE, json=save_body(project, [{"image": "b.png", "caption": "pwned", "hash": ""}]))
    assert "link" in await refused(r, 403)
    assert (outside / "secret.txt").read_text() == SECRET and os.path.islink(folder / "b.txt")


@pytest.mark.asyncio
async def test_an_image_planted_as_a_link_gets_no_preview_and_no_caption(client, world):
    project, outside = world
    folder = project / "images" / "2_Alice"
    os.symlink(outside / "secret.png", folder / "c.png")
    r = await client.get(LIST, params={"project": str(project), "subset": KEY})
    body = await r.json()
    assert "c.png" in body["subset"]["skipped"] and "c.png" not in [
        i["image"] for i in body["subset"]["items"]
    ]
    r = await client.get(THUMB, params={"project": str(project), "subset": KEY, "image": "c.png"})
    assert "link" in await refused(r, 403)
    r = await client.post(SAVE, json=save_body(project, [{"image": "c.png", "caption": "x", "hash": ""}]))
    await refused(r, 403)
    assert not (folder / "c.txt").exists()


@pytest.mark.asyncio
async def test_a_fifo_as_caption_or_image_neither_hangs_nor_is_written(client, world):
    project, _ = world
    folder = project / "images" / "2_Alice"
    Image.new("RGB", (8, 8)).save(folder / "d.png")
    os.mkfifo(folder / "d.txt")
    os.mkfifo(folder / "e.png")
    r = await client.get(LIST, params={"project": str(project), "subset": KEY})
    body = await r.json()
    assert r.status == 200 and "e.png" in body["subset"]["skipped"]
    assert "not a plain file" in {i["image"]: i for i in body["subset"]["items"]}["d.png"]["problem"]
    r = await client.post(SAVE, json=save_body(project, [{"image": "d.png", "caption": "x", "hash": ""}]))
    await refused(r, 403)
    r = await client.get(THUMB, params={"project": str(project), "subset": KEY, "image": "e.png"})
    await refused(r, 403)
    assert os.path.exists(folder / "d.txt") and not os.path.isfile(folder / "d.txt")


@pytest.mark.asyncio
async def test_an_image_of_a_hundred_megapixels_gets_a_sentence_not_a_decode(client, world):
    project, _ = world
    Image.new("1", (12_000, 9_000)).save(project / "images" / "2_Alice" / "bomb.png")
    r = await client.get(THUMB, params={"project": str(project), "subset": KEY, "image": "bomb.png"})
    assert "pixels" in await refused(r, 400)


# --------------------------------------------------------------------------- sizes and counts
@pytest.mark.asyncio
async def test_a_body_over_one_mib_is_413(client, world):
    project, _ = world
    items = [{"image": "a.png", "caption": "x" * 2000, "hash": ""}] * 600
    r = await client.post(SAVE, json=save_body(project, items))
    await refused(r, 413)


@pytest.mark.asyncio
@pytest.mark.parametrize("route", [SAVE, BULK])
async def test_ten_thousand_captions_in_one_request_are_refused_with_a_sentence(client, world, route):
    project, _ = world
    if route == SAVE:
        body = save_body(project, [{"image": f"{i}.png", "caption": "a", "hash": ""} for i in range(10_000)])
    else:
        body = {"op": "add", "tag": "x", "captions": ["a"] * 10_000}
    r = await client.post(route, json=body)
    assert "at most" in await refused(r, 400, 413)


@pytest.mark.asyncio
async def test_a_subset_of_ten_thousand_captioned_images_is_listed_a_page_at_a_time(client, roots):
    folder = roots / "big" / "images" / "1_many"
    folder.mkdir(parents=True)
    for i in range(10_000):
        (folder / f"{i:05}.png").write_bytes(b"")
        (folder / f"{i:05}.txt").write_text("many, tags", encoding="utf-8")
    r = await client.get(LIST, params={"project": str(roots / "big"), "limit": "1000"})
    assert r.status == 200
    body = (await r.json())["subset"]
    assert (
        body["total"] == 10_000
        and len(body["items"]) == 1000
        and body["tags"] == [["many", 10_000], ["tags", 10_000]]
    )


@pytest.mark.asyncio
@pytest.mark.parametrize("query", [{"limit": "5000"}, {"offset": "-1"}, {"limit": "1e3"}, {"offset": "²"}])
async def test_odd_paging_numbers_are_400_naming_the_field(client, world, query):
    project, _ = world
    r = await client.get(LIST, params={"project": str(project), **query})
    assert next(iter(query)) in await refused(r, 400)


@pytest.mark.asyncio
@pytest.mark.parametrize(
    "item",
    [
        "a.png",
        {"image": "a.png", "caption": 5, "hash": ""},
        {"image": "a.png", "caption": "x", "hash": "../../etc"},
        {"image": ["a.png"], "caption": "x", "hash": ""},
        {"image": "a.png", "caption": "x" * 9000, "hash": ""},
    ],
)
async def test_malformed_save_items_are_400_with_a_sentence(client, world, item):
    project, _ = world
    r = await client.post(SAVE, json=save_body(project, [item]))
    await refused(r, 400)
    assert (project / "images" / "2_Alice" / "a.txt").read_text() == "alice"


# --------------------------------------------------------------------------- callers
@pytest.mark.asyncio
async def test_a_save_from_another_page_or_as_a_form_is_refused(client, world):
    project, _ = world
    body = json.dumps(save_body(project, [{"image": "a.png", "caption": "x", "hash": ""}]))
    r = await client.post(
        SAVE, data=body, headers={"Content-Type": "application/json", "Origin": "http://evil.test"}
    )
    await refused(r, 403)
    r = await client.post(SAVE, data=body, headers={"Content-Type": "text/plain"})
    await refused(r, 415)
    assert (project / "images" / "2_Alice" / "a.txt").read_text() == "alice"
