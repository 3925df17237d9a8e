"""A small TOML writer for the configs we hand sd-scripts (no toml dependency; tomllib only reads).

Scalars, arrays, tables and arrays of tables - the shapes of kohya's --config_file and
--dataset_config. Windows paths become literal strings ('C:\\x') so they read as typed.

Everything user-controlled (paths, names, prompts) leaves this module only as an escaped value, a
quoted key or through `comment()`: no text can end a line and start a key, a table or a subset of
its own. The output reads back identically with tomllib and with toml 0.10.2, the parser sd-scripts
uses (property-tested in tests/unit/core/test_toml_writer_props.py).
"""

from __future__ import annotations

import math
import os
import re
import unicodedata

from .errors import ValidationError

_CTRL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")  # not allowed raw in a literal string
_ODD_CTRL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")  # controls other than \t \n \r
_ARRAY_BREAKERS = ",[]{}"  # toml 0.10.2 splits array text on these even inside strings
_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")  # always with fullmatch: "key\n" is not a bare key
INT64 = (-(2**63), 2**63 - 1)


class TomlWriteError(ValidationError, ValueError):
    """A value or key TOML, or sd-scripts' parser, cannot hold as it is (a non-UTF-8 name, inf,
    an int past 64 bits, text toml 0.10.2 would read back differently)."""


def _check_text(value: str) -> None:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise TomlWriteError(
            f"{value.encode('utf-8', 'backslashreplace').decode()!r} is not valid Unicode (a file or folder "
            "name that is not UTF-8?); rename it to plain UTF-8 text."
        ) from None


def _refuse_string(value: str, why: str) -> TomlWriteError:
    shown = repr(value) if len(value) <= 80 else repr(value[:77]) + "..."
    return TomlWriteError(
        f"{shown} cannot be written to an sd-scripts config: its TOML parser (toml 0.10.2) would "
        f"read it back differently ({why}). Rename the file or folder, or change the text."
    )


def toml_string(value: str, in_array: bool = False) -> str:
    """A TOML string that tomllib and toml 0.10.2 both read back as `value`, else TomlWriteError.

    Literal ('...') when possible (Windows paths read as typed), else basic with escapes. Text that
    toml 0.10.2 misreads is refused rather than handed to sd-scripts changed: a control character
    (other than tab and line breaks) together with a backslash, a basic string starting with two
    double quotes, and inside arrays the characters , [ ] { } or a trailing backslash.
    """
    _check_text(value)
    if _ODD_CTRL.search(value) and "\\" in value:
        raise _refuse_string(value, "it holds a control character and a backslash")
    if in_array and any(c in value for c in _ARRAY_BREAKERS):
        raise _refuse_string(value, "a list item holding , [ ] { }")
    if "'" not in value and not _CTRL.search(value):
        if in_array and value.endswith("\\"):
            raise _refuse_string(value, "a list item ending in a backslash")
        return f"'{value}'"
    if value.startswith('""'):
        raise _refuse_string(value, "it starts with two double quotes")
    escaped = value.replace("\\", "\\\\").replace('"', '\\"')
    escaped = escaped.replace("\n", "\\n").replace("\r", "\\r").replace("\t", "\\t")
    escaped = _ODD_CTRL.sub(lambda m: f"\\u{ord(m.group()):04x}", escaped)
    return '"' + escaped + '"'


def _array(values) -> str:
    """An inline array; its items must be of one type (toml 0.10.2 refuses mixed arrays)."""
    kinds = {bool if isinstance(v, bool) else list if isinstance(v, tuple) else type(v) for v in values}
    kinds = {str if issubclass(k, (str, os.PathLike)) else k for k in kinds}
    if len(kinds) > 1:
        names = ", ".join(sorted(k.__name__ for k in kinds))
        raise TomlWriteError(f"A list mixes {names}; sd-scripts' TOML parser only reads lists of one type.")
    items = (
        toml_string(os.fspath(v), in_array=True) if isinstance(v, (str, os.PathLike)) else toml_value(v)
        for v in values
    )
    return "[" + ", ".join(items) + "]"


def toml_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        if not INT64[0] <= value <= INT64[1]:
            raise TomlWriteError(f"{value} is too large for TOML (64-bit integers only).")
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise TomlWriteError(f"cannot write {value} to TOML")
        return repr(value)  # always has '.', 'e' or is inf/nan (refused above): a TOML float
    if isinstance(value, (str, os.PathLike)):
        return toml_string(os.fspath(value))
    if isinstance(value, (list, tuple)):
        return _array(value)
    raise TypeError(f"cannot write {type(value).__name__} to TOML")


def _comment_char(ch: str) -> str:
    if ch == "\t" or unicodedata.category(ch) not in ("Cc", "Cs", "Zl", "Zp"):
        return ch
    named = {"\n": "\\n", "\r": "\\r"}
    return named.get(ch) or (f"\\x{ord(ch):02x}" if ord(ch) < 0x100 else f"\\u{ord(ch):04x}")


def comment(*lines: str) -> str:
    """TOML comment lines, "# text" per argument, each ending in a newline.

    Newlines, carriage returns, every other control character, Unicode line and paragraph separators
    and lone surrogates are written
    escaped ("\\n", "\\x1b"), so whatever the text holds - a project folder named "x\\nlogging_dir = ..."
    - it stays inside its comment.
    """
    return "".join("# " + "".join(_comment_char(ch) for ch in str(line)) + "\n" for line in lines)


def quotable_key(k: str) -> bool:
    """True when `k` can be written as a quoted key that tomllib and toml 0.10.2 read the same way.

    toml 0.10.2 reads escapes in quoted keys its own way, strips whitespace around them and refuses
    empty table names, so only plain printable text qualifies: no backslash, no control or other
    invisible character (a newline!), no space at either end or before a dot, and not both kinds
    of quote.
    """
    return (
        bool(k)
        and k == k.strip()
        and k.isprintable()
        and "\\" not in k
        and " ." not in k  # toml 0.10.2 drops that space in a table name
        and not ("'" in k and '"' in k)
        and _is_unicode(k)
    )


def _is_unicode(text: str) -> bool:
    try:
        text.encode("utf-8")
        return True
    except UnicodeEncodeError:
        return False


def _key(k: str) -> str:
    """A bare key when it is a plain word, a quoted one when `quotable_key`, else TomlWriteError."""
    if not isinstance(k, str):
        raise TypeError(f"TOML keys are strings, not {type(k).__name__}")
    if _BARE_KEY.fullmatch(k):
        return k
    if quotable_key(k):
        return f'"{k}"' if '"' not in k else f"'{k}'"
    raise TomlWriteError(
        f"{k!r} cannot be written as a TOML key that sd-scripts' parser reads the same way "
        "(it holds a line break, a control character, a backslash, both kinds of quote or outer spaces)."
    )


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
