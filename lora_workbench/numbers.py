"""Numbers read from text: settings, network_args/optimizer_args values, kohya_ss GUI configs, subset
weights, `--set` overrides and JSON. Python's float() turns "1e400" into inf and, silently, "1e-400"
into 0.0; `parse_float` refuses those (and NaN) with a phrase naming the literal, which each caller
puts into its sentence naming the key. (A literal that keeps a non-zero value, "1e-320", is kept.)
"""

from __future__ import annotations

import json
import math
from typing import Any


class OutOfRange(ValueError):
    """A number literal a float cannot hold as written (the message is a phrase naming it)."""


def _zero_literal(text: str) -> bool:
    from decimal import Decimal, InvalidOperation  # only when a literal read as 0.0: rare

    try:
        return Decimal(text.strip().replace("_", "")) == 0
    except (InvalidOperation, ValueError):
        return False


def parse_float(text: str) -> float:
    """float(text), refusing what float() would not hold as written: ValueError('... is not a number')
    for text that is no number, OutOfRange for inf, NaN, and a non-zero literal that becomes 0.0."""
    shown = repr(text) if len(str(text)) <= 40 else repr(str(text)[:37] + "...")
    try:
        value = float(text)
    except (TypeError, ValueError, OverflowError):
        raise ValueError(f"{shown} is not a number") from None
    if math.isnan(value):
        raise OutOfRange(f"{shown} is NaN, not a number")
    if math.isinf(value):
        raise OutOfRange(f"{shown} is beyond the largest float (about 1.8e308)")
    if value == 0 and not _zero_literal(str(text)):
        raise OutOfRange(
            f"{shown} is nearer 0 than a float holds (it would become 0.0); write 0 if 0 is meant"
        )
    return value


def float_or_literal(literal: str) -> float | str:
    """A json `parse_float` for data read field by field: a literal a float cannot hold stays its text,
    which the field's own check then refuses by name (parse_float) instead of reading 0.0 or inf."""
    try:
        return parse_float(literal)
    except ValueError:
        return literal


def _constant(name: str) -> float:
    raise OutOfRange(f"{name} is not a finite number")


def loads(text: str | bytes, **kwargs: Any) -> Any:
    """json.loads with every number literal read by parse_float (and NaN/Infinity refused): OutOfRange
    (a ValueError, not a JSONDecodeError) names the literal."""
    return json.loads(text, parse_float=parse_float, parse_constant=_constant, **kwargs)


def arg_float(text: str) -> float:
    """An argparse `type` for float flags (parse_float): 1e400 and 1e-400 are usage errors, never inf
    or 0.0."""
    import argparse  # the CLI's, not the pack's import

    try:
        return parse_float(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
