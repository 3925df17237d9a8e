"""Captions a graph or a command line hands over, made one line per image: the shapes a caption node
gives (one text for all, one line per image, a list), the trigger word put first once, and the caption
modes (replace, append, keep existing). Any node that writes captions (Save Training Images, a tagger)
can use these functions; they read and write no files.
"""

from __future__ import annotations

import re

from ..errors import ValidationError

REPLACE, APPEND, KEEP = "replace", "append", "keep existing"
CAPTION_MODES = (REPLACE, APPEND, KEEP)
MAX_CAPTION_CHARS = 16_384  # sd-scripts trains one line; a caption past this is a pasted file, not a caption
_SPACE = re.compile(r"\s+")


def one_line(text: str) -> str:
    """A caption as the single line sd-scripts trains (line breaks and runs of spaces become one space)."""
    return _SPACE.sub(" ", text).strip()


def per_image(captions, count: int) -> list[str]:
    """`count` captions from what the `captions` input holds: None or "" (none), one text for every
    image, a text with one line per image, or a list (a caption node's list output, or the lines of a
    batch) of one caption per image. A shape that fits neither is a ValidationError sentence."""
    texts = _as_texts(captions)
    if len(texts) == 1:
        lines = [line for line in texts[0].splitlines() if line.strip()]
        texts = lines if len(lines) > 1 else [texts[0]]
    if len(texts) == 1:
        texts = texts * count
    if len(texts) != count:
        raise ValidationError(
            f"captions holds {len(texts)} captions for {count} image(s): give one caption for all, one line "
            f"per image, or a list of {count}."
        )
    out = [one_line(t) for t in texts]
    for i, text in enumerate(out):
        if len(text) > MAX_CAPTION_CHARS:
            raise ValidationError(
                f"The caption of image {i + 1} is {len(text)} characters long; at most {MAX_CAPTION_CHARS} are kept."
            )
    return out


def _as_texts(captions) -> list[str]:
    if captions is None:
        return [""]
    if isinstance(captions, str):
        return [captions]
    if isinstance(captions, (list, tuple)):
        flat = [c for item in captions for c in (item if isinstance(item, (list, tuple)) else [item])]
        bad = [type(c).__name__ for c in flat if not isinstance(c, str)]
        if bad:
            raise ValidationError(f"captions must be text; the list holds a {bad[0]}.")
        return flat or [""]
    raise ValidationError(f"captions must be text or a list of texts, not {type(captions).__name__}.")


def split_tags(text: str) -> list[str]:
    """The comma-separated tags of a caption line (or a tag list), stripped, empty ones left out: how
    sd-scripts' tagger script and the caption editor split them."""
    return [t.strip() for t in text.split(",") if t.strip()]


def checked_trigger(word: str) -> str:
    """The trigger word stripped; a line break or a comma in it is a ValidationError sentence."""
    word = (word or "").strip()
    if "\n" in word or "\r" in word or "," in word or len(word) > 200:
        raise ValidationError(
            f"The trigger word {word[:60]!r} must be one tag: no comma or line break, at most 200 characters."
        )
    return word


def with_trigger(caption: str, trigger: str) -> str:
    """`caption` with `trigger` as its first tag, exactly once (a copy elsewhere is moved, not doubled)."""
    if not trigger:
        return caption
    rest = [t for t in split_tags(caption) if t.casefold() != trigger.casefold()]
    return ", ".join([trigger, *rest])


def merge(existing: str | None, new: str, mode: str, trigger: str = "") -> str:
    """The caption to write: `new` (replace), `existing` plus the tags of `new` it lacks (append), or
    `existing` when there is one (keep existing); then the trigger word first."""
    if mode not in CAPTION_MODES:
        raise ValidationError(f"caption_mode must be one of {', '.join(CAPTION_MODES)}, not {mode!r}.")
    old = one_line(existing or "")
    if mode == KEEP and old:
        text = old
    elif mode == APPEND and old:
        have = {t.casefold() for t in split_tags(old)}
        text = ", ".join([*split_tags(old), *(t for t in split_tags(new) if t.casefold() not in have)])
    else:
        text = one_line(new)
    return with_trigger(text, trigger)
