"""Which files are training images, and their sizes from the file header (no decode).

sd-scripts globs .png .jpg .jpeg .webp .bmp in either letter case and loads every match.
"""

from __future__ import annotations

import os
import struct

IMAGE_EXTS = (".png", ".jpg", ".jpeg", ".webp", ".bmp")  # what sd-scripts globs, either case


def is_image(name: str) -> bool:
    """True for a file name sd-scripts would train on (hidden files excluded)."""
    return name.lower().endswith(IMAGE_EXTS) and not name.startswith(".")


def _png_size(head: bytes) -> tuple[int, int] | None:
    if head[:8] == b"\x89PNG\r\n\x1a\n" and head[12:16] == b"IHDR" and len(head) >= 24:
        return struct.unpack(">II", head[16:24])
    return None


_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}


def _jpeg_size(f) -> tuple[int, int]:
    f.seek(2)
    while True:
        b = f.read(2)
        if len(b) < 2 or b[0] != 0xFF:
            raise ValueError("broken JPEG marker")
        m = b[1]
        while m == 0xFF:  # fill bytes
            nb = f.read(1)
            if not nb:
                raise ValueError("truncated JPEG")
            m = nb[0]
        if m == 0x01 or 0xD0 <= m <= 0xD8:
            continue
        if m == 0xD9 or m == 0xDA:
            raise ValueError("JPEG without a frame header")
        seg = f.read(2)
        if len(seg) < 2:
            raise ValueError("truncated JPEG")
        length = int.from_bytes(seg, "big")
        if m in _SOF:
            data = f.read(5)
            if len(data) < 5:
                raise ValueError("truncated JPEG frame header")
            h, w = struct.unpack(">HH", data[1:5])
            return w, h
        if length < 2:
            raise ValueError("broken JPEG segment")
        f.seek(length - 2, 1)


def image_size(path: str | os.PathLike) -> tuple[int, int]:
    """(width, height) from the file's header only; raises ValueError/OSError for a broken file.

    PNG and JPEG are parsed here (fast); other formats go through PIL's lazy open, which also reads
    only the header.
    """
    with open(path, "rb") as f:
        head = f.read(32)
        if not head:
            raise ValueError("empty file")
        size = _png_size(head)
        if size is not None:
            if size[0] <= 0 or size[1] <= 0:
                raise ValueError("PNG with a zero size")
            return int(size[0]), int(size[1])
        if head[:2] == b"\xff\xd8":
            w, h = _jpeg_size(f)
            if w <= 0 or h <= 0:
                raise ValueError("JPEG with a zero size")
            return w, h
    from PIL import Image

    with Image.open(path) as im:
        return int(im.size[0]), int(im.size[1])


def image_size_decoded(path: str | os.PathLike) -> tuple[int, int]:
    """(width, height) after a full decode (slow; catches truncated pixel data too)."""
    from PIL import Image

    with Image.open(path) as im:
        im.load()
        return int(im.size[0]), int(im.size[1])
