"""The weights text: one `Subject: weight` per line, read into {subject: weight} and written back.

`3_Subject: 2` and `Subject = 2` work too, `#` starts a comment, and a JSON object {"Subject": 2} is
accepted. Subjects are matched with surrounding spaces ignored (`subject_key`), so a folder named
`3_ Alice ` is weighted by `Alice: 2`. A subject named twice is an error, never "the last one wins".
"""

from __future__ import annotations

import json
import math
import re

from .. import numbers
from ..errors import ValidationError

_COMMENT = re.compile(r"(^|\s)#.*$")
_PREFIX = re.compile(r"^\d+_(.+)$", re.S)


def subject_key(name: str) -> str:
    """How a subject is matched: its name without a `N_` prefix and surrounding spaces."""
    m = _PREFIX.match(name.strip())
    return (m.group(1) if m else name).strip()


def parse_weights(text: str | None) -> dict[str, float]:
    """{subject key: weight}; raises ValidationError naming the bad line."""
    if not text or not text.strip():
        return {}
    stripped = text.strip()
    items = _json_items(stripped) if stripped.startswith("{") else _line_items(text)
    out: dict[str, float] = {}
    for key, value, lineno, raw in items:
        name = subject_key(key)
        if not name:
            raise ValidationError(f"Line {lineno} of the weights, {raw!r}, has no subject name.")
        if name in out:
            raise ValidationError(
                f"Line {lineno} of the weights, {raw!r}: {name!r} is given twice; keep one line."
            )
        out[name] = _weight(value, name, lineno, raw)
    return out


def _json_items(text: str) -> list[tuple[str, object, int, str]]:
    try:
        pairs = json.loads(text, object_pairs_hook=lambda kv: kv, parse_float=str)  # _weight reads them
    except json.JSONDecodeError as exc:
        raise ValidationError(
            f"The weights look like JSON but are not valid ({exc.msg} at line "
            f"{exc.lineno}); write one `Subject: weight` per line instead."
        ) from None
    except RecursionError:
        raise ValidationError(
            "The weights JSON is nested too deeply; write one `Subject: weight` per line."
        ) from None
    if not isinstance(pairs, list) or not all(isinstance(p, tuple) for p in pairs):
        raise ValidationError('The weights JSON must be an object like {"Subject": 2}.')
    return [(str(k), v, i + 1, f"{k}: {v}") for i, (k, v) in enumerate(pairs)]


def _line_items(text: str) -> list[tuple[str, object, int, str]]:
    items = []
    for lineno, raw in enumerate(text.splitlines(), 1):
        line = _COMMENT.sub("", raw).strip()
        if not line:
            continue
        sep = max(line.rfind(":"), line.rfind("="))
        if sep <= 0:
            raise ValidationError(
                f"Line {lineno} of the weights, {raw.strip()!r}, is not `Subject: weight` "
                f"(e.g. `Subject: 2`); fix or remove it."
            )
        items.append((line[:sep], line[sep + 1 :].strip(), lineno, raw.strip()))
    return items


def _weight(value: object, name: str, lineno: int, raw: str) -> float:
    try:
        if isinstance(value, bool):
            raise TypeError
        w = numbers.parse_float(value) if isinstance(value, str) else float(value)  # type: ignore[arg-type]
    except numbers.OutOfRange as exc:
        raise ValidationError(
            f"Line {lineno} of the weights, {raw!r}: the weight must be a finite number >= 0 (0 excludes "
            f"the subset); {exc}."
        ) from None
    except (TypeError, ValueError, OverflowError):
        raise ValidationError(
            f"Line {lineno} of the weights, {raw!r}: {value!r} is not a number; "
            f"write e.g. `{name}: 2` (0 excludes the subset)."
        ) from None
    if not math.isfinite(w) or w < 0:
        raise ValidationError(
            f"Line {lineno} of the weights, {raw!r}: the weight must be a finite number >= 0 "
            f"(0 excludes the subset)."
        )
    return w


def format_weights(weights: dict[str, float]) -> str:
    """The text form parse_weights reads: one `Subject: weight` per line."""
    return "".join(f"{name}: {w:g}\n" for name, w in weights.items())
