"""A run's run.json as the Training tab may use it: capped, and every field it reads checked for its type.

A run.json may come from a shared project, so nothing in it is trusted: the record is read (`read`,
the one reader of run.json) relative to its open run folder without following a link, only up to
MAX_RECORD_BYTES (checked with fstat before reading), and `typed` keeps the fields the tab shows only
when each has its expected type (text, a whole number, a finite number, a list of [step, loss] pairs, a
list of texts). A field of another type is left out and named in `notes`; it never breaks the list.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from typing import Any

from .. import paths

# A run.json keeps every loss point: about 1 MiB for 20,000 steps, 5 MiB for 100,000 (json indent=2).
MAX_RECORD_BYTES = 8 << 20
RUN_FILE = "run.json"
MAX_COUNT = 10**12  # steps, epochs: far past any run, and exact in a browser's numbers

_BAD = object()


def read(run: paths.ConfinedDir | str | os.PathLike) -> object:
    """The run folder's run.json parsed (whatever JSON it holds), read relative to the open folder (a
    path is opened first, unconfined, without following a link): a regular file of at most
    MAX_RECORD_BYTES, never a link; FileNotFoundError, another OSError or a WorkbenchError sentence."""
    if isinstance(run, paths.ConfinedDir):
        return run.read_json(RUN_FILE, MAX_RECORD_BYTES, what="run record")
    with paths.open_dir(run, what="run folder", confined=False) as d:
        return d.read_json(RUN_FILE, MAX_RECORD_BYTES, what="run record")


def _text(value: Any) -> Any:
    return value if isinstance(value, str) else _BAD


def _count(value: Any) -> Any:
    ok = isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= MAX_COUNT
    return value if ok else _BAD


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _seconds(value: Any) -> Any:
    return value if value is None or (_finite(value) and value >= 0) else _BAD


def _texts(value: Any) -> Any:
    ok = isinstance(value, list) and all(isinstance(v, str) for v in value)
    return value if ok else _BAD


def _loss(value: Any) -> Any:
    """A loss as the chart takes it: a finite number, or None for a NaN/inf step (fp16 failures)."""
    if value is None or _finite(value):
        return value
    return None if isinstance(value, float) else _BAD


def _point(value: Any) -> Any:
    if not (isinstance(value, list) and len(value) == 2 and _count(value[0]) is not _BAD):
        return _BAD
    loss = _loss(value[1])
    return _BAD if loss is _BAD else [value[0], loss]


def _losses(value: Any) -> Any:
    if not isinstance(value, list):
        return _BAD
    points = [_point(v) for v in value]
    return _BAD if any(p is _BAD for p in points) else points


# field -> (check returning the value to keep or _BAD, what the field must be)
Schema = dict[str, tuple[Callable[[Any], Any], str]]
LOSSES = (_losses, "a list of [step, loss] pairs")
STATUS: Schema = {
    "step": (_count, "a whole number"),
    "total": (_count, "a whole number"),
    "epoch": (_count, "a whole number"),
    "epochs": (_count, "a whole number"),
    "elapsed_s": (_seconds, "a number of seconds"),
    "it_per_s": (_seconds, "a number"),
    "text": (_text, "text"),
    "losses": LOSSES,
}
SPEC: Schema = {"epochs": (_count, "a whole number")}
RECORD: Schema = {
    "state": (_text, "text"),
    "started_at": (_text, "text"),
    "finished_at": (_text, "text"),
    "base_model": (_text, "text"),
    "device": (_text, "text"),
    "error": (_text, "text"),
    "warnings": (_texts, "a list of texts"),
    "losses": LOSSES,
}
NESTED: dict[str, Schema] = {"status": STATUS, "spec": SPEC}


def _fields(raw: dict, schema: Schema, prefix: str, notes: list[str]) -> dict:
    out = {}
    for key, (check, must_be) in schema.items():
        if key not in raw:
            continue
        value = check(raw[key])
        if value is _BAD:
            notes.append(f"run.json's {prefix}{key} is not {must_be}; it was left out.")
        else:
            out[key] = value
    return out


def typed(raw: dict) -> dict:
    """The fields of a run.json record the tab uses, each of its type (`status` and `spec` always
    dicts); `notes` names every field left out for its type."""
    notes: list[str] = []
    out = _fields(raw, RECORD, "", notes)
    for key, schema in NESTED.items():
        inner = raw.get(key, {})
        if not isinstance(inner, dict):
            notes.append(f"run.json's {key} is not an object; it was left out.")
            inner = {}
        out[key] = _fields(inner, schema, f"{key}.", notes)
    out["notes"] = notes
    return out
