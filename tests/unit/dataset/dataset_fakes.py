"""Shared helpers for the dataset tests: real image files and captions in a project layout."""

from __future__ import annotations

from pathlib import Path

from PIL import Image

from lora_workbench.dataset.prepare import DatasetOptions

FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".webp": "WEBP", ".bmp": "BMP"}


def make_subset(
    root: Path,
    dirname: str,
    n: int,
    size=(64, 64),
    ext=".png",
    captions=True,
    reg=False,
    caption="photo, tag",
    stem="img",
) -> Path:
    """`n` images (and captions) in root/images/<dirname> (or regularization/)."""
    folder = root / ("regularization" if reg else "images") / dirname
    folder.mkdir(parents=True, exist_ok=True)
    fmt = FORMATS[ext.lower()]
    for i in range(n):
        Image.new("RGB", size, (i * 20 % 255, 80, 120)).save(folder / f"{stem}{i}{ext}", fmt)
        if captions:
            (folder / f"{stem}{i}.txt").write_text(f"{dirname.split('_')[-1]}, {caption}", encoding="utf-8")
    return folder


def image(path: Path, size=(64, 64), fmt="PNG") -> Path:
    Image.new("RGB", size, (10, 200, 30)).save(path, fmt)
    return path


def opts(weights: str = "", res=(64, 64), bucket: bool = False, **kw) -> DatasetOptions:
    """DatasetOptions with the tests' usual 64x64 resolution; a weights text means weights mode."""
    if "repeats" not in kw:
        kw["repeats"] = "weights" if weights.strip() else "folders"
    kw.setdefault("wrong_size", "error")  # the strict checks these tests judge (the node defaults to bucket)
    return DatasetOptions(weights_text=weights, resolution=res, enable_bucket=bucket, **kw)
