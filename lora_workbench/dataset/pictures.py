"""Images handed to the dataset (from a graph or from files) made ready to store: the size limits, the
fit to the training size (none, crop, pad; never an upscale), a mask stored as the PNG's alpha, and the
content hash that names the file. Pillow only; the ComfyUI adapter converts its tensors to Pillow images.
"""

from __future__ import annotations

import hashlib
import io
import os
import warnings
from dataclasses import dataclass

from ..errors import ValidationError

FIT_MODES = ("none", "crop", "pad")
MAX_IMAGES = 1000  # per run: a graph that hands over more is a mistake, not a dataset step
MAX_SIDE = 16_384  # px per side
MAX_PIXELS = 1 << 26  # per image (67 Mpx), below Pillow's decompression-bomb limit (89 Mpx)
MAX_RUN_PIXELS = 1 << 30  # all images of one run together
HASH_CHARS = 20  # hex characters of the content hash in the file name (80 bits)


@dataclass
class Picture:
    """One image to store: a Pillow image, its mask (mode "L", white = the loss counts) or None, and
    how the user knows it (e.g. "image 3" or a file name), for error sentences."""

    image: object
    mask: object = None
    label: str = "image"


def check_sizes(sizes: list[tuple[int, int]], what: str = "images") -> None:
    """The count and pixel limits of one run; a ValidationError sentence names the first offender."""
    if len(sizes) > MAX_IMAGES:
        raise ValidationError(
            f"{len(sizes)} {what} were given; at most {MAX_IMAGES} are saved per run. Split the batch."
        )
    for i, (w, h) in enumerate(sizes):
        if w < 1 or h < 1 or w > MAX_SIDE or h > MAX_SIDE or w * h > MAX_PIXELS:
            raise ValidationError(
                f"Image {i + 1} is {w}x{h}; images may be at most {MAX_SIDE} px a side and "
                f"{MAX_PIXELS // 1_000_000} megapixels. Scale it down first."
            )
    total = sum(w * h for w, h in sizes)
    if total > MAX_RUN_PIXELS:
        raise ValidationError(
            f"The {what} hold {total // 1_000_000} megapixels together; at most "
            f"{MAX_RUN_PIXELS // 1_000_000} are saved per run. Split the batch."
        )


def open_file(path: str | os.PathLike) -> object:
    """An image file as a Pillow image (RGB or RGBA), its size checked from the header before decoding:
    a file that is no image, or too large (a decompression bomb), is a ValidationError sentence."""
    from PIL import Image

    try:
        with warnings.catch_warnings():  # the size is checked below, against a lower limit
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            im = Image.open(path)
        with im:
            check_sizes([im.size], "images")
            im.load()
            return im.convert("RGBA" if _has_alpha(im) else "RGB")
    except ValidationError as exc:
        raise ValidationError(f"{path}: {exc}") from None
    except (OSError, ValueError, Image.DecompressionBombError) as exc:
        raise ValidationError(f"{path} cannot be read as an image ({exc}).") from None


def _has_alpha(im) -> bool:
    return im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info)


def fitted(pic: Picture, fit: str, size: tuple[int, int]) -> Picture:
    """The picture at the training size: `crop` scales down to cover it and cuts the middle, `pad` scales
    down to fit inside and pads with black (the padding masked out when there is a mask); `none` keeps it.
    An image that would have to be enlarged is a ValidationError sentence: upscaling is the graph's job."""
    if fit == "none":
        return pic
    if fit not in FIT_MODES:
        raise ValidationError(f"fit must be one of {', '.join(FIT_MODES)}, not {fit!r}.")
    (w, h), (tw, th) = pic.image.size, size
    if fit == "crop":
        if w < tw or h < th:
            raise ValidationError(
                f"{pic.label} is {w}x{h}, smaller than the training size {tw}x{th}; fit crop never enlarges. "
                f"Upscale it in the graph first, or use fit pad or none."
            )
        return _crop(pic, size)
    return _pad(pic, size)


def _crop(pic: Picture, size: tuple[int, int]) -> Picture:
    from PIL import Image

    (w, h), (tw, th) = pic.image.size, size
    scale = max(tw / w, th / h)
    sw, sh = max(tw, round(w * scale)), max(th, round(h * scale))
    left, top = (sw - tw) // 2, (sh - th) // 2
    box = (left, top, left + tw, top + th)

    def cut(im):
        return None if im is None else im.resize((sw, sh), Image.LANCZOS).crop(box)

    return Picture(cut(pic.image), cut(pic.mask), pic.label)


def _pad(pic: Picture, size: tuple[int, int]) -> Picture:
    from PIL import Image

    (w, h), (tw, th) = pic.image.size, size
    scale = min(tw / w, th / h, 1.0)
    sw, sh = min(tw, max(1, round(w * scale))), min(th, max(1, round(h * scale)))
    at = ((tw - sw) // 2, (th - sh) // 2)

    def place(im, mode):
        if im is None:
            return None
        canvas = Image.new(mode, size, 0)
        canvas.paste(im.resize((sw, sh), Image.LANCZOS) if (sw, sh) != im.size else im, at)
        return canvas

    return Picture(place(pic.image, pic.image.mode), place(pic.mask, "L"), pic.label)


def with_mask(pic: Picture) -> object:
    """The image to store: RGB, or RGBA with the mask as alpha (what sd-scripts reads with alpha_mask)."""
    if pic.mask is None:
        return pic.image if pic.image.mode in ("RGB", "RGBA") else pic.image.convert("RGB")
    if pic.mask.size != pic.image.size:
        raise ValidationError(
            f"The mask of {pic.label} is {pic.mask.size[0]}x{pic.mask.size[1]}, the image "
            f"{pic.image.size[0]}x{pic.image.size[1]}; give masks the images' size."
        )
    rgba = pic.image.convert("RGB").convert("RGBA")
    rgba.putalpha(pic.mask.convert("L"))
    return rgba


def content_name(image) -> str:
    """The file name of an image: a hash of its pixels (mode, size, bytes), so the same image is one file."""
    h = hashlib.sha256(f"{image.mode}:{image.size[0]}x{image.size[1]}\n".encode())
    h.update(image.tobytes())
    return h.hexdigest()[:HASH_CHARS] + ".png"


def png_bytes(image) -> bytes:
    """The image as PNG without metadata (the same pixels always give the same bytes)."""
    buf = io.BytesIO()
    image.save(buf, "PNG", compress_level=6)
    return buf.getvalue()
