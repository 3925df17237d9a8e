"""A tiny, deterministic training set: PIL-drawn PNGs with .txt captions, and its dataset.toml.

    python make_dataset.py --root DIR [--size 64] [--count 4] [--repeats 2] [--token testsubject]

    DIR/images/<repeats>_<token>/img_00.png + img_00.txt ...   (kohya's folder naming)
    DIR/dataset.toml                                          (sd-scripts --dataset_config)

Needs Pillow. An existing dataset.toml means the dataset is there and nothing is written.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from PIL import Image, ImageDraw

COLOURS = [
    ((220, 40, 40), "red"),
    ((40, 180, 60), "green"),
    ((40, 80, 220), "blue"),
    ((230, 200, 40), "yellow"),
]


def draw(i: int, size: int) -> tuple[Image.Image, str]:
    """Solid, gradient, circle, checkerboard: four shapes a LoRA could tell apart."""
    rgb, name = COLOURS[i % len(COLOURS)]
    img = Image.new("RGB", (size, size), rgb)
    pen = ImageDraw.Draw(img)
    kind = i % 4
    if kind == 1:
        for x in range(size):
            t = x / max(1, size - 1)
            pen.line([(x, 0), (x, size - 1)], fill=tuple(int(c + (255 - c) * t) for c in rgb))
        return img, f"{name} to white gradient"
    if kind == 2:
        m = size // 4
        pen.ellipse([m, m, size - m, size - m], fill=(255, 255, 255))
        return img, f"white circle on {name} background"
    if kind == 3:
        s = max(1, size // 8)
        for y in range(0, size, s):
            for x in range(0, size, s):
                if (x // s + y // s) % 2:
                    pen.rectangle([x, y, x + s - 1, y + s - 1], fill=(0, 0, 0))
        return img, f"{name} and black checkerboard"
    return img, f"solid {name} background"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--root", required=True)
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--count", type=int, default=4)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--token", default="testsubject")
    args = ap.parse_args()
    root = Path(args.root).resolve()
    if (root / "dataset.toml").is_file():
        print(f"exists, kept: {root}")
        return 0
    sub = root / "images" / f"{args.repeats}_{args.token}"
    sub.mkdir(parents=True, exist_ok=True)
    for i in range(args.count):
        img, what = draw(i, args.size)
        img.save(sub / f"img_{i:02d}.png", format="PNG")
        (sub / f"img_{i:02d}.txt").write_text(f"{args.token}, {what}\n", encoding="utf-8")
    # json.dumps gives a valid TOML basic string for any path (quotes and backslashes escaped).
    toml = (
        '[general]\ncaption_extension = ".txt"\nshuffle_caption = false\nkeep_tokens = 1\n'
        f"enable_bucket = false\n\n[[datasets]]\nresolution = [{args.size}, {args.size}]\nbatch_size = 1\n\n"
        f"  [[datasets.subsets]]\n  image_dir = {json.dumps(sub.as_posix())}\n"
        f"  class_tokens = {json.dumps(args.token)}\n  num_repeats = {args.repeats}\n"
    )
    (root / "dataset.toml").write_text(toml, encoding="utf-8")
    print(f"wrote {args.count} images with captions to {sub}, and {root / 'dataset.toml'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
