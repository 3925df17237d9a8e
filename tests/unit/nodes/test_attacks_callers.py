"""Who can reach the state-changing routes: another web page (its Origin), a sandboxed iframe or a data:
page (Origin null) and a plain form post (text/plain, form-encoded, multipart) are refused before the
route runs, on every route that is not a GET, including any added later. Our own page, curl and the
CLI (no Origin header) still work."""

from __future__ import annotations

import json

import pytest
import pytest_asyncio
from aiohttp import web

from tests.unit.nodes.route_app import serve_pack_routes

HOST = "127.0.0.1:8188"


@pytest.fixture
def settings_file(roots, tmp_path, monkeypatch):
    path = tmp_path / "config" / "settings.json"
    monkeypatch.setenv("LORA_WORKBENCH_SETTINGS", str(path))
    return path


@pytest.fixture
def calls(pack, monkeypatch):
    """What the handlers did: a refused request must not reach one."""
    from lora_workbench.trainer_env import job
    from lora_workbench.training import runner

    seen: list[str] = []
    monkeypatch.setattr(runner, "cancel_current", lambda: seen.append("cancel") or True)
    monkeypatch.setattr(job, "start", lambda action, **kw: seen.append(action) or {"action": action})
    monkeypatch.setattr(job, "cancel", lambda: seen.append("cancel install") or True)
    return seen


def state_changing_routes(pack) -> list[str]:
    table = web.RouteTableDef()
    pack.nodes._routes.add_routes(table)
    return sorted({r.path for r in table if r.method not in ("GET", "HEAD", "OPTIONS")})


@pytest_asyncio.fixture
async def client(aiohttp_client, pack, roots, settings_file, monkeypatch):
    return await serve_pack_routes(aiohttp_client, pack, monkeypatch)


def body_for(route: str, roots) -> dict:
    if route.endswith("/settings"):
        return {"values": {"tokenizer_cache_dir": str(roots)}}
    if route.endswith("/dataset/preview"):
        return {"project": str(roots)}
    if route.endswith("/captions/save"):
        return {"project": str(roots), "subset": "images/1_x", "items": []}
    if route.endswith("/captions/bulk"):
        return {"op": "add", "tag": "x", "captions": ["a"]}
    return {}


FOREIGN = {
    "Origin null (sandboxed iframe, data: page)": "null",
    "another site": "https://evil.example",
    "another port on this host": "http://127.0.0.1:9999",
    "this host's name on another scheme": "file://127.0.0.1:8188",
    "a look-alike host": "http://127.0.0.1.evil.example:8188",
    "a port that is not a number": "http://127.0.0.1:x",
    "a page on this host's default port (80)": "http://127.0.0.1",
    "a page on this host's https port (443)": "https://127.0.0.1",
}


def test_every_route_that_is_not_a_get_is_checked(pack):
    # The guard sits in the handler decorator; this lists what it protects, so a new route is seen.
    assert state_changing_routes(pack) == [
        "/lora_workbench/captions/bulk",
        "/lora_workbench/captions/save",
        "/lora_workbench/dataset/preview",
        "/lora_workbench/settings",
        "/lora_workbench/train/cancel",
        "/lora_workbench/trainer/cancel",
        "/lora_workbench/trainer/check",
        "/lora_workbench/trainer/install",
        "/lora_workbench/trainer/update",
    ]


@pytest.mark.asyncio
@pytest.mark.parametrize("origin", sorted(FOREIGN))
async def test_a_request_from_another_page_changes_nothing(client, pack, roots, settings_file, calls, origin):
    for route in state_changing_routes(pack):
        r = await client.post(
            route,
            data=json.dumps(body_for(route, roots)),
            headers={"Content-Type": "application/json", "Origin": FOREIGN[origin], "Host": HOST},
        )
        body = await r.json()
        assert r.status == 403, (route, r.status, body)
        assert "may not change anything" in body["error"]
    assert calls == [] and not settings_file.exists()


CONTENT_TYPES = {
    "text/plain (a form or fetch without preflight)": ("text/plain", "{}"),
    "a form post": ("application/x-www-form-urlencoded", "values=1"),
    "multipart": ("multipart/form-data; boundary=x", "--x--"),
    "none": (None, "{}"),
    "json look-alike": ("application/jsonp", "{}"),
}


@pytest.mark.asyncio
@pytest.mark.parametrize("kind", sorted(CONTENT_TYPES))
async def test_a_body_that_is_not_declared_json_is_refused(client, pack, roots, settings_file, calls, kind):
    content_type, text = CONTENT_TYPES[kind]
    for route in state_changing_routes(pack):
        headers = {"Content-Type": content_type} if content_type else {}
        r = await client.post(route, data=text.encode(), headers=headers, skip_auto_headers=["Content-Type"])
        body = await r.json()
        assert r.status == 415, (route, r.status, body)
        assert "application/json" in body["error"]
    assert calls == [] and not settings_file.exists()


@pytest.mark.asyncio
@pytest.mark.parametrize(
    "origin", [None, f"http://{HOST}", "HTTP://127.0.0.1:8188", "http://127.0.0.1:8188/"]
)
async def test_our_own_page_and_clients_without_a_browser_are_served(client, roots, settings_file, origin):
    headers = {"Host": HOST, **({"Origin": origin} if origin else {})}
    r = await client.post("/lora_workbench/settings", json=body_for("/settings", roots), headers=headers)
    assert r.status == 200, await r.text()
    assert json.loads(settings_file.read_text("utf-8"))["tokenizer_cache_dir"] == str(roots)


@pytest.mark.asyncio
@pytest.mark.parametrize(
    "host, origin",
    [("comfy.example", "https://comfy.example"), ("comfy.example:443", "https://comfy.example")],
)
async def test_our_page_behind_a_reverse_proxy_on_the_default_port_is_served(
    client, roots, settings_file, monkeypatch, host, origin
):
    monkeypatch.setenv("LORA_WORKBENCH_HOSTS", "comfy.example")
    headers = {"Host": host, "Origin": origin}
    r = await client.post("/lora_workbench/settings", json=body_for("/settings", roots), headers=headers)
    assert r.status == 200, await r.text()


@pytest.mark.asyncio
async def test_a_page_on_another_port_of_a_proxied_host_changes_nothing(
    client, roots, settings_file, monkeypatch
):
    monkeypatch.setenv("LORA_WORKBENCH_HOSTS", "comfy.example")
    headers = {"Host": "comfy.example", "Origin": "http://comfy.example:8080"}
    r = await client.post("/lora_workbench/settings", json=body_for("/settings", roots), headers=headers)
    assert r.status == 403 and not settings_file.exists()


@pytest.mark.asyncio
async def test_reading_routes_stay_open_to_a_get_without_json(client):
    r = await client.get("/lora_workbench/train/status", headers={"Origin": "null"})
    assert r.status == 200


# --------------------------------------------------------------------------- DNS rebinding
REBINDING = "evil.example:8188"  # the attacker's name, re-pointed at 127.0.0.1 after the page loaded


@pytest.mark.asyncio
async def test_a_dns_rebinding_page_changes_nothing_though_its_origin_matches_its_host(
    client, pack, roots, settings_file, calls
):
    for route in state_changing_routes(pack):
        headers = {"Host": REBINDING, "Origin": f"http://{REBINDING}"}
        r = await client.post(route, json=body_for(route, roots), headers=headers)
        body = await r.json()
        assert r.status == 403 and "evil.example" in body["error"], (route, body)
    assert calls == [] and not settings_file.exists()


@pytest.mark.asyncio
@pytest.mark.parametrize("route", ["/lora_workbench/settings", "/lora_workbench/library/status"])
async def test_a_dns_rebinding_page_reads_nothing(client, route):
    # A same-origin GET carries no Origin header: only the Host tells the rebinding page apart.
    r = await client.get(route, headers={"Host": REBINDING})
    body = await r.json()
    assert r.status == 403 and "settings" not in body and "roots" not in body


@pytest.mark.asyncio
@pytest.mark.parametrize("host", ["localhost:8188", "LOCALHOST.:8188", "[::1]:8188", "127.0.0.2:8188"])
async def test_this_machines_own_names_are_served(client, host):
    r = await client.get("/lora_workbench/train/status", headers={"Host": host})
    assert r.status == 200, await r.text()


@pytest.mark.asyncio
async def test_with_listen_on_the_network_a_lan_name_is_served(client, pack, monkeypatch):
    monkeypatch.setattr(pack.nodes._comfy, "listen_addresses", lambda: ["0.0.0.0", "::"])
    r = await client.get("/lora_workbench/train/status", headers={"Host": "studio.lan:8188"})
    assert r.status == 200, await r.text()


@pytest.mark.asyncio
async def test_a_tunnel_named_in_lora_workbench_hosts_is_served(client, monkeypatch):
    monkeypatch.setenv("LORA_WORKBENCH_HOSTS", "comfy.example, *")
    r = await client.get("/lora_workbench/train/status", headers={"Host": "abc.trycloudflare.com"})
    assert r.status == 200, await r.text()
