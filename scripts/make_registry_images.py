"""Draw the Comfy Registry icon and banner (docs/assets/icon.png, banner.png) with PIL only.

The icon is three linked nodes (images -> training -> LoRA) on the pack's dark slate; the banner adds
the name and the one-line promise. [tool.comfy] Icon / Banner in pyproject.toml point at them by
their raw repository URL. Run again after changing the drawing:

    python scripts/make_registry_images.py
"""

from __future__ import annotations

from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

ASSETS = Path(__file__).resolve().parents[1] / "docs" / "assets"
BG = (27, 30, 38)
NODE = (44, 49, 61)
EDGE = (84, 92, 110)
TEXT = (230, 233, 240)
MUTED = (150, 158, 175)
COLORS = ((79, 163, 255), (255, 166, 64), (102, 187, 106))  # images, training, LoRA
SCALE = 4  # draw large, shrink: smooth edges without an anti-aliasing library


def _font(size: int):
    return ImageFont.load_default(size=size * SCALE)


def _node(d: ImageDraw.ImageDraw, box: tuple[float, float, float, float], color, label: str, size: int):
    x0, y0, x1, y1 = (v * SCALE for v in box)
    r = 14 * SCALE
    d.rounded_rectangle([x0, y0, x1, y1], r, fill=NODE, outline=EDGE, width=2 * SCALE)
    d.rounded_rectangle([x0, y0, x1, y0 + 16 * SCALE], r, fill=color, corners=(True, True, False, False))
    d.text(((x0 + x1) / 2, (y0 + y1) / 2 + 8 * SCALE), label, fill=TEXT, font=_font(size), anchor="mm")


def _link(d: ImageDraw.ImageDraw, a: tuple[float, float], b: tuple[float, float], color):
    (ax, ay), (bx, by) = a, b
    pts = []
    for i in range(41):  # a cubic curve like the canvas draws links
        t = i / 40
        cx = (1 - t) ** 3 * ax + 3 * (1 - t) ** 2 * t * (ax + 30) + 3 * (1 - t) * t**2 * (bx - 30) + t**3 * bx
        cy = (1 - t) ** 3 * ay + 3 * (1 - t) ** 2 * t * ay + 3 * (1 - t) * t**2 * by + t**3 * by
        pts.append((cx * SCALE, cy * SCALE))
    d.line(pts, fill=color, width=5 * SCALE, joint="curve")
    for x, y in (a, b):
        d.ellipse([(x - 7) * SCALE, (y - 7) * SCALE, (x + 7) * SCALE, (y + 7) * SCALE], fill=color)


def _graph(d: ImageDraw.ImageDraw, ox: float, oy: float, w: float, label_size: int) -> None:
    """Three nodes in a falling line, linked: images -> train -> LoRA, in a box `w` wide."""
    nw, nh = w * 0.28, w * 0.2
    boxes = [
        (ox + w * 0.36 * i, oy + w * 0.3 * i, ox + w * 0.36 * i + nw, oy + w * 0.3 * i + nh) for i in range(3)
    ]
    for (a, b), color in zip(zip(boxes, boxes[1:], strict=False), COLORS, strict=False):
        _link(d, (a[2], (a[1] + a[3]) / 2 + 8), (b[0], (b[1] + b[3]) / 2 + 8), color)
    for box, color, label in zip(boxes, COLORS, ("images", "train", "LoRA"), strict=True):
        _node(d, box, color, label, label_size)


def icon(size: int = 400) -> Image.Image:
    img = Image.new("RGB", (size * SCALE, size * SCALE), BG)
    _graph(ImageDraw.Draw(img), size * 0.06, size * 0.14, size * 0.88, size // 17)
    return img.resize((size, size), Image.Resampling.LANCZOS)


def banner(width: int = 1200, height: int = 400) -> Image.Image:
    img = Image.new("RGB", (width * SCALE, height * SCALE), BG)
    d = ImageDraw.Draw(img)
    _graph(d, 50, 68, 330, 20)
    x = 420 * SCALE
    d.text((x, 120 * SCALE), "LoRA Workbench", fill=TEXT, font=_font(72))
    d.text(
        (x, 215 * SCALE),
        "From a folder of images to a trained LoRA in a sampler,",
        fill=MUTED,
        font=_font(28),
    )
    d.text((x, 255 * SCALE), "inside one ComfyUI graph, with kohya sd-scripts.", fill=MUTED, font=_font(28))
    return img.resize((width, height), Image.Resampling.LANCZOS)


def main() -> None:
    ASSETS.mkdir(parents=True, exist_ok=True)
    icon().save(ASSETS / "icon.png", optimize=True)
    banner().save(ASSETS / "banner.png", optimize=True)
    print(f"wrote {ASSETS / 'icon.png'} and {ASSETS / 'banner.png'}")


if __name__ == "__main__":
    main()
