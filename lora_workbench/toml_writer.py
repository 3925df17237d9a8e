"""A small TOML writer for the configs we hand sd-scripts (no toml dependency; tomllib only reads).

Scalars, arrays, tables and arrays of tables - the shapes of kohya's --config_file and
--dataset_config. Windows paths become literal strings ('C:\\x') so they read as typed.
"""

from __future__ import annotations

import math
import os
import re

_CTRL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
_BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")


def toml_string(value: str) -> str:
    """A TOML string: literal ('...') for Windows paths when possible, else basic with escapes."""
    if "\\" in value and "'" not in value and not _CTRL.search(value):
        return f"'{value}'"
    out = []
    for ch in value:
        if ch == "\\":
            out.append("\\\\")
        elif ch == '"':
            out.append('\\"')
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\t":
            out.append("\\t")
        elif ch == "\r":
            out.append("\\r")
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def toml_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"cannot write {value} to TOML")
        return repr(value)  # always has '.', 'e' or is inf/nan (refused above): a TOML float
    if isinstance(value, (str, os.PathLike)):
        return toml_string(os.fspath(value))
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    raise TypeError(f"cannot write {type(value).__name__} to TOML")


def _key(k: str) -> str:
    return k if _BARE_KEY.match(k) else toml_string(k)


def dumps(data: dict, _prefix: str = "") -> str:
    """TOML text for `data`: keys with None values are left out; dicts become tables, lists of
    dicts arrays of tables (nested under their parent's name)."""
    lines: list[str] = []
    tables: list[tuple[str, dict]] = []
    arrays: list[tuple[str, list[dict]]] = []
    for k, v in data.items():
        if v is None:
            continue
        if isinstance(v, dict):
            tables.append((k, v))
        elif isinstance(v, list) and v and all(isinstance(x, dict) for x in v):
            arrays.append((k, v))
        else:
            lines.append(f"{_key(k)} = {toml_value(v)}")
    out = "\n".join(lines) + ("\n" if lines else "")
    for k, v in tables:
        name = f"{_prefix}{_key(k)}"
        out += f"\n[{name}]\n" + dumps(v, name + ".")
    for k, items in arrays:
        name = f"{_prefix}{_key(k)}"
        for item in items:
            out += f"\n[[{name}]]\n" + dumps(item, name + ".")
    return out
