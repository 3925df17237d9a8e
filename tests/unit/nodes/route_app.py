"""The pack's whole route table on a bare aiohttp app, for the route tests (no ComfyUI server)."""

from __future__ import annotations

from aiohttp import web


async def serve_pack_routes(aiohttp_client, pack, monkeypatch, client_max_size: int = 1024**2):
    """A test client of every pack route; `client_max_size` above aiohttp's 1 MiB lets a test show that
    our own body cap holds (ComfyUI accepts big bodies)."""
    monkeypatch.setattr(pack.nodes._routes, "_registered_on", [])
    table = web.RouteTableDef()
    pack.nodes._routes.add_routes(table)
    app = web.Application(client_max_size=client_max_size)
    app.add_routes(table)
    return await aiohttp_client(app)
