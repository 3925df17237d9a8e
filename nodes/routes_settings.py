"""HTTP routes for ComfyUI's settings dialog: read and save the paths the pack would otherwise take
from the environment (library, kohya_ss / sd-scripts and its Python, tokenizer cache, UI folders).

The values land in the same settings file the command line reads. Only the keys in
`editable_settings.EDITABLE` are accepted; the allowed roots never are (see that module for why).
"""

from __future__ import annotations

from ._routes import PREFIX, HttpError, _in_thread, _json_body, _json_response, handler


@handler
async def settings_get(request):
    """GET: every editable setting with its saved value, its environment override and the file."""
    from ..lora_workbench import editable_settings, paths

    items = await _in_thread(editable_settings.describe)
    return _json_response({"settings": items, "settings_file": str(paths.settings_path())})


@handler
async def settings_save(request):
    """POST {"values": {key: value, ...}}: check each value and save them all, or none.

    200 {saved: true, checks, settings}; 400 {error, saved: false, checks} when a check fails (a folder
    that does not exist, a Python that cannot import torch, a path outside the roots) or a key is not
    editable. Paths that would widen the allowed roots must already lie inside them.
    """
    data = await _json_body(request)
    values = data.get("values")
    if not isinstance(values, dict) or not values:
        raise HttpError(400, 'Send {"values": {"<key>": "<path>"}} with at least one setting.')
    from ..lora_workbench import editable_settings

    checks = await _in_thread(editable_settings.save, values, confine=True)
    body = {"checks": [c.to_dict() for c in checks]}
    failed = [c for c in checks if not c.ok]
    if failed:
        return _json_response({"error": failed[0].error, "saved": False, **body}, status=400)
    items = await _in_thread(editable_settings.describe)
    return _json_response({"saved": True, **body, "settings": items})


def add_routes(routes) -> None:
    routes.get(f"{PREFIX}/settings")(settings_get)
    routes.post(f"{PREFIX}/settings")(settings_save)
