"""Captions as sd-scripts reads them, and the caption keywords (the seed's sd-train-keywords-list).

sd-scripts (`DreamBoothDataset.read_caption`) looks for `<image stem><caption_extension>`, then, for a
stem of five or more `_`-separated parts, the stem without its last four parts (its face-crop naming).
It reads the file as strict UTF-8 (other bytes stop the run), asserts it is not empty, and trains on
the first line, stripped, unless `enable_wildcard` is set. A first line of only spaces therefore
trains an empty caption, and a byte-order mark stays part of the text.
"""

from __future__ import annotations

import os
import re
from collections import Counter
from dataclasses import dataclass

from .. import terminal
from .captions_merge import split_tags
from .confined import Entry, Folder

LINE_BREAK = re.compile(r"\r\n|\r|\n")  # what readlines() splits on in text mode (universal newlines)
MAX_CAPTION_BYTES = 1 << 20  # a caption is a line of text; anything larger is read only this far

# CaptionCheck.problem values
MISSING = "missing"  # no caption file: sd-scripts uses the class token
EMPTY = "empty"  # an empty file (sd-scripts stops) or a first line with no text (an empty caption)
ENCODING = "encoding"  # not UTF-8: sd-scripts stops with UnicodeDecodeError
REFUSED = "refused"  # a link that leaves the allowed roots: not read
UNREADABLE = "unreadable"


@dataclass
class CaptionCheck:
    """One image's caption: the file sd-scripts would read, its text, and what is wrong with it."""

    name: str | None = None  # the caption file name (None: none found)
    problem: str = ""  # "" or one of the values above
    detail: str = ""
    text: str = ""
    multiline: bool = False  # more than one line with text: only the first is trained
    bom: bool = False  # starts with a UTF-8 byte-order mark, which sd-scripts keeps in the caption


def candidates(image_name: str, caption_extension: str) -> list[str]:
    """The caption file names sd-scripts tries for an image, in its order."""
    stem = os.path.splitext(image_name)[0]
    names = [stem + caption_extension]
    parts = stem.split("_")
    if len(parts) >= 5:
        face = "_".join(parts[:-4]) + caption_extension
        if face not in names:
            names.append(face)
    return names


def check(
    folder: Folder, files: dict[str, Entry], image_name: str, caption_extension: str, video: bool = False
) -> CaptionCheck:
    """Find and read one image's caption the way sd-scripts will; `video`: a video's the way
    musubi-tuner will (datasources.py `get_caption`: only `<stem><ext>`, the whole text, stripped)."""
    names = (
        candidates(image_name, caption_extension)[:1] if video else candidates(image_name, caption_extension)
    )
    for name in names:
        entry = files.get(name)
        if entry is not None and entry.kind in ("file", "outside"):
            return _read(folder, entry, video)
    return CaptionCheck(problem=MISSING)


def _read(folder: Folder, entry: Entry, whole: bool = False) -> CaptionCheck:
    if entry.kind == "outside":
        return CaptionCheck(entry.name, REFUSED, f"a link to {entry.link}, outside the allowed roots")
    try:
        raw = folder.read_bytes(entry, MAX_CAPTION_BYTES)
    except OSError as exc:
        return CaptionCheck(entry.name, UNREADABLE, exc.strerror or str(exc))
    except Exception as exc:  # PathNotAllowed: swapped for a link after the listing
        return CaptionCheck(entry.name, REFUSED, str(exc))
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return CaptionCheck(entry.name, ENCODING, f"byte {exc.start} is not UTF-8")
    lines = [text] if whole else LINE_BREAK.split(text)
    result = CaptionCheck(entry.name, text=text, bom=text.startswith("\ufeff"))
    result.multiline = sum(1 for line in lines if line.strip()) > 1
    if not lines or not lines[0].strip():
        result.problem = EMPTY
        result.detail = "empty" if not raw else "no text on its first line"
    return result


# --------------------------------------------------------------------------- keywords
def trained_line(text: str) -> str:
    """The caption sd-scripts trains on: the first line (its universal newlines), stripped; the other
    lines are never read without enable_wildcard, which the pack does not set."""
    return LINE_BREAK.split(text, 1)[0].strip()


def keywords(texts) -> list[tuple[str, int]]:
    """Distinct comma-separated tags across caption texts with their counts, most frequent first: of
    the line each trains on (trained_line), a byte-order mark aside (reported on its own)."""
    counts: Counter[str] = Counter()
    for text in texts:
        counts.update(split_tags(trained_line(text.lstrip("\ufeff"))))
    return sorted(counts.items(), key=lambda kv: (-kv[1], kv[0].lower()))


def format_keywords(found: list[tuple[str, int]], limit: int | None = 40) -> str:
    shown = found if limit is None else found[:limit]
    text = ", ".join(f"{terminal.shown(k)} ({n})" for k, n in shown)
    if limit is not None and len(found) > limit:
        text += f", ... and {len(found) - limit} more"
    return text
