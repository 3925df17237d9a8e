"""The caption editor's routes on a bare aiohttp app: list, preview, bulk, save, and a save then a
reload that reads the new caption back."""

from __future__ import annotations

import io

import pytest
import pytest_asyncio
from PIL import Image

from tests.unit.nodes.route_app import serve_pack_routes

LIST = "/lora_workbench/captions"
THUMB = "/lora_workbench/captions/thumbnail"
SAVE = "/lora_workbench/captions/save"
BULK = "/lora_workbench/captions/bulk"
KEY = "images/2_Alice"


@pytest_asyncio.fixture
async def client(aiohttp_client, pack, roots, monkeypatch):
    return await serve_pack_routes(aiohttp_client, pack, monkeypatch)


@pytest.fixture
def project(roots):
    folder = roots / "project" / "images" / "2_Alice"
    folder.mkdir(parents=True)
    for i in range(2):
        Image.new("RGB", (400, 300), (90 * i, 40, 200)).save(folder / f"alice_{i}.png")
    (folder / "alice_0.txt").write_text("alice, red hair", encoding="utf-8")
    (roots / "project" / "images" / "1_Bob").mkdir()
    return roots / "project"


async def listing(client, project, **query) -> dict:
    r = await client.get(LIST, params={"project": str(project), **query})
    assert r.status == 200, await r.text()
    return await r.json()


@pytest.mark.asyncio
async def test_the_listing_has_the_subsets_and_the_first_subsets_captions(client, project):
    body = await listing(client, project)
    assert [s["key"] for s in body["subsets"]] == ["images/1_Bob", KEY]
    body = await listing(client, project, subset=KEY)
    items = {i["image"]: i for i in body["subset"]["items"]}
    assert items["alice_0.png"]["text"] == "alice, red hair" and items["alice_1.png"]["missing"]
    assert body["subset"]["tags"] == [["alice", 1], ["red hair", 1]]


@pytest.mark.asyncio
async def test_a_preview_is_a_small_jpeg(client, project):
    r = await client.get(THUMB, params={"project": str(project), "subset": KEY, "image": "alice_0.png"})
    assert r.status == 200 and r.content_type == "image/jpeg"
    with Image.open(io.BytesIO(await r.read())) as im:
        assert max(im.size) <= 256


@pytest.mark.asyncio
async def test_a_bulk_add_returns_the_changed_captions_without_writing(client, project):
    r = await client.post(BULK, json={"op": "add", "tag": "smiling", "captions": ["alice", "alice, smiling"]})
    assert r.status == 200
    assert await r.json() == {"captions": ["alice, smiling", "alice, smiling"], "changed": 1}
    assert (project / "images" / "2_Alice" / "alice_0.txt").read_text() == "alice, red hair"


@pytest.mark.asyncio
async def test_a_saved_caption_is_on_disk_and_comes_back_on_reload(client, project):
    items = {i["image"]: i for i in (await listing(client, project, subset=KEY))["subset"]["items"]}
    edits = [
        {"image": "alice_0.png", "caption": "alice, blue hair", "hash": items["alice_0.png"]["hash"]},
        {"image": "alice_1.png", "caption": "alice, smiling", "hash": ""},
    ]
    r = await client.post(SAVE, json={"project": str(project), "subset": KEY, "items": edits})
    assert r.status == 200, await r.text()
    assert sorted((await r.json())["written"]) == ["alice_0.txt", "alice_1.txt"]
    again = {i["image"]: i["text"] for i in (await listing(client, project, subset=KEY))["subset"]["items"]}
    assert again == {"alice_0.png": "alice, blue hair", "alice_1.png": "alice, smiling"}


@pytest.mark.asyncio
async def test_a_caption_changed_on_disk_meanwhile_is_409_with_a_sentence(client, project):
    items = {i["image"]: i for i in (await listing(client, project, subset=KEY))["subset"]["items"]}
    (project / "images" / "2_Alice" / "alice_0.txt").write_text("someone else", encoding="utf-8")
    edit = {"image": "alice_0.png", "caption": "mine", "hash": items["alice_0.png"]["hash"]}
    r = await client.post(SAVE, json={"project": str(project), "subset": KEY, "items": [edit]})
    assert r.status == 409
    assert "changed on disk" in (await r.json())["error"]
    assert (project / "images" / "2_Alice" / "alice_0.txt").read_text() == "someone else"


@pytest.mark.asyncio
async def test_a_project_that_does_not_exist_is_404_with_a_sentence(client, roots):
    r = await client.get(LIST, params={"project": str(roots / "nothing")})
    assert r.status == 404 and "nothing" in (await r.json())["error"]


@pytest.mark.asyncio
async def test_a_subset_that_does_not_exist_is_404(client, project):
    r = await client.get(LIST, params={"project": str(project), "subset": "images/9_Nobody"})
    assert r.status == 404 and "9_Nobody" in (await r.json())["error"]
