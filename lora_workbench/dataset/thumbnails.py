"""Small previews of a subset's images for the caption editor, made on the server and capped.

The image is read through the open subset folder (no-follow, regular files only, its size checked by
fstat before a byte is read), its pixel count checked from the header before it is decoded (a
decompression bomb is refused with a sentence, not decoded), and scaled to at most `MAX_SIDE` pixels
as a JPEG. Previews are kept in memory keyed by (folder, name, inode, size, mtime), so an edited or
replaced image gets a new one and an unchanged one is not decoded twice.
"""

from __future__ import annotations

import io
import os
import threading
import warnings
from collections import OrderedDict
from dataclasses import dataclass

from ..errors import ValidationError
from .confined import Entry, Folder

MAX_SIDE = 256  # the editor's grid shows them at 128-256 px
MAX_SOURCE_BYTES = 64 << 20
MAX_SOURCE_PIXELS = 64_000_000  # about 8000 x 8000; Pillow's own bomb limit is 89 MP
CACHE_ITEMS = 512
CACHE_BYTES = 32 << 20
QUALITY = 82


@dataclass(frozen=True)
class Thumbnail:
    data: bytes
    content_type: str = "image/jpeg"


_cache: OrderedDict[tuple, Thumbnail] = OrderedDict()
_cache_bytes = 0
_lock = threading.Lock()


def _key(folder: Folder, name: str, st: os.stat_result) -> tuple:
    return (str(folder.path), name, st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


def _remember(key: tuple, thumb: Thumbnail) -> None:
    global _cache_bytes
    with _lock:
        if key in _cache:
            return
        _cache[key] = thumb
        _cache_bytes += len(thumb.data)
        while len(_cache) > CACHE_ITEMS or _cache_bytes > CACHE_BYTES:
            _, old = _cache.popitem(last=False)
            _cache_bytes -= len(old.data)


def _cached(key: tuple) -> Thumbnail | None:
    with _lock:
        thumb = _cache.get(key)
        if thumb is not None:
            _cache.move_to_end(key)
        return thumb


def clear_cache() -> None:
    global _cache_bytes
    with _lock:
        _cache.clear()
        _cache_bytes = 0


def thumbnail(folder: Folder, name: str, max_side: int = MAX_SIDE) -> Thumbnail:
    """A JPEG preview of the plain image file `name` in `folder` (already checked to be one of its images)."""
    fd = folder.open_fd(Entry(name, "file"))  # no-follow; a FIFO or device is refused
    with os.fdopen(fd, "rb") as f:
        st = os.fstat(f.fileno())
        if st.st_size > MAX_SOURCE_BYTES:
            raise ValidationError(
                f"{folder.path / name} is {st.st_size >> 20} MiB; previews are made of images up to "
                f"{MAX_SOURCE_BYTES >> 20} MiB."
            )
        key = _key(folder, name, st) + (max_side,)
        found = _cached(key)
        if found is not None:
            return found
        thumb = _make(f.read(MAX_SOURCE_BYTES + 1), folder.path / name, max_side)
    _remember(key, thumb)
    return thumb


def _make(raw: bytes, where, max_side: int) -> Thumbnail:
    from PIL import Image, ImageOps

    try:
        with warnings.catch_warnings():  # the pixel count is checked below, with a sentence
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            im = Image.open(io.BytesIO(raw))
        with im:
            w, h = im.size
            if w * h > MAX_SOURCE_PIXELS:
                raise ValidationError(
                    f"{where} is {w}x{h} pixels; previews are made of images up to {MAX_SOURCE_PIXELS:,} pixels."
                )
            im.draft("RGB", (max_side, max_side))  # JPEG: decode at a smaller scale
            small = ImageOps.exif_transpose(im) or im
            small.thumbnail((max_side, max_side))
            rgb = _flatten(small)
    except ValidationError:
        raise
    except Exception as exc:  # Pillow raises many kinds (and DecompressionBombError): all mean "no preview"
        raise ValidationError(
            f"{where} cannot be read as an image ({str(exc)[:200] or type(exc).__name__})."
        ) from None
    out = io.BytesIO()
    rgb.save(out, "JPEG", quality=QUALITY)
    return Thumbnail(out.getvalue())


def _flatten(im):
    """RGB on a grey background (transparent parts show as grey, as the editor's grid does)."""
    from PIL import Image

    if im.mode in ("RGBA", "LA") or (im.mode == "P" and "transparency" in im.info):
        rgba = im.convert("RGBA")
        base = Image.new("RGB", rgba.size, (64, 64, 64))
        base.paste(rgba, mask=rgba.getchannel("A"))
        return base
    return im.convert("RGB")
