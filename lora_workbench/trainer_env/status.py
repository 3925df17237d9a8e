"""What `trainer status` shows for one trainer: the pinned commit, the data folder, which checkout
training uses and why (its environment variable, its settings key, the managed one, or the default
such as ~/kohya_ss), and the builds."""

from __future__ import annotations

import os
from pathlib import Path

from .. import paths, settings
from . import pins
from .install import busy
from .layout import MARKER, Layout, read_current, read_json_file


def status(layout: Layout | None = None) -> dict:
    layout = layout or Layout.default()
    spec = pins.spec(layout.trainer)
    info: dict = {
        "trainer": spec.trainer,
        "name": spec.name,
        "pinned": pins.as_dict(spec.trainer),
        "home": str(layout.home),
        "trainer_dir": str(layout.trainer_dir),
    }
    try:
        current = read_current(layout)
        info["managed"] = (
            None
            if current is None
            else {**current.record, "src": str(current.src), "python": str(current.python)}
        )
    except ValueError as exc:
        info["managed"], info["record_error"] = None, str(exc)
    path = paths.trainer_checkout(spec.trainer)
    if path is None and spec.default_path:
        path = Path(spec.default_path).expanduser()
    info["in_use"] = {
        "from": _in_use_from(spec),
        "path": str(path or ""),
        "exists": path is not None and path.is_dir(),
        "python": str(paths.trainer_python(spec.trainer) or ""),
    }
    info["builds"] = _builds(layout)
    info["installing"] = busy(layout) if layout.trainer_dir.is_dir() else False
    return info


def _in_use_from(spec) -> str:
    if os.environ.get(spec.path_env):
        return spec.path_env
    if settings.get(spec.path_setting):
        return f"{spec.path_setting} in {settings.settings_path()}"
    if paths.managed_trainer(spec.trainer) is not None:
        return "managed"
    return f"default ({spec.default_path})" if spec.default_path else "nothing (not installed, not set)"


def _builds(layout: Layout) -> list[dict]:
    if not layout.trainer_dir.is_dir():
        return []
    out = []
    for entry in sorted(os.scandir(layout.trainer_dir), key=lambda e: e.name):
        if entry.is_dir(follow_symlinks=False) and os.path.isfile(os.path.join(entry.path, MARKER)):
            if entry.name == "tokenizers":
                continue
            try:
                ready = read_json_file(layout.build(entry.name).ready)
            except (OSError, ValueError):
                ready = {}
            out.append({"name": entry.name, "ready": bool(ready), "commit": ready.get("commit", "")})
    return out


def lines(info: dict) -> list[str]:
    out = [
        f"pinned:     {info['trainer']} {info['pinned']['ref'][:12]} from {info['pinned']['source']}",
        f"data:       {info['trainer_dir']}",
        f"in use:     {info['in_use']['path'] or '-'} (from {info['in_use']['from']})",
    ]
    managed = info.get("managed")
    if managed:
        c = managed.get("checked") or {}
        out.append(
            f"managed:    {managed['build']} at {managed.get('commit', '')[:12]}, python {managed['python']}"
        )
        out.append(
            f"            torch {c.get('torch')} (CUDA {c.get('cuda') or '-'}, GPU {c.get('gpu') or 'none'})"
        )
    else:
        out.append(
            f"managed:    none{(' (' + info['record_error'] + ')') if info.get('record_error') else ''}"
        )
    for b in info["builds"]:
        out.append(f"build:      {b['name']} {'ready' if b['ready'] else 'unfinished'}")
    if info.get("installing"):
        out.append("an install is running now")
    return out
