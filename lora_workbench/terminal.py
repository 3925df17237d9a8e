"""Text for the terminal: names from untrusted data (folder and file names, workflow titles, a
server's replies) may hold escape sequences that recolour, retitle or rewrite the terminal, or bidi
overrides that show a name reversed; the CLI prints everything through `echo`, which shows them as
escapes, and a single name through `shown`, which escapes its line breaks too.
"""

from __future__ import annotations

import re
import sys
from typing import TextIO

# C0 controls (tab and line feed kept by `safe`), DEL, C1 controls, the bidi marks, embeddings,
# overrides and isolates, the Unicode line and paragraph separators, and lone surrogates (a file name
# that is not UTF-8 decodes to them; printing one would raise UnicodeEncodeError).
_ODD = "\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069\ud800-\udfff"
_IN_TEXT = re.compile(f"[\x00-\x08\x0b-\x1f{_ODD}]")
_IN_NAME = re.compile(f"[\x00-\x1f{_ODD}]")


def _escape(m: re.Match) -> str:
    code = ord(m[0])
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"


def safe(text: str) -> str:
    """Text with every control character escaped (ESC -> \\x1b, U+202E -> \\u202e) but its tabs and
    line breaks, for whole messages."""
    return _IN_TEXT.sub(_escape, str(text))


def shown(name: object) -> str:
    """One name as it may be shown inside a line: every control escaped, line breaks too."""
    return _IN_NAME.sub(_escape, str(name))


def echo(text: object = "", *, file: TextIO | None = None, end: str = "\n", flush: bool = False) -> None:
    """print() for the CLI: the text with its control characters escaped (safe)."""
    print(safe(str(text)), file=file if file is not None else sys.stdout, end=end, flush=flush)
