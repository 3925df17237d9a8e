"""Cheap hashes of a dataset's files (names, sizes, mtimes): the node re-runs and the trainer re-trains
when they change. Read through the same Guard as the scan, so they never look outside the roots."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from ..datatypes import DatasetSubset
from .confined import Folder, Guard
from .images import DEFAULT_RULES, IMAGE, ImageRules
from .scan import CAPTION_EXT, CONTROL_DIR, REG_DIR, TRAIN_DIR
from .videos import is_video


def _relevant(name: str, rules: ImageRules, caption_extension: str) -> bool:
    # sd-scripts writes latent caches (*.npz, metadata_cache.json) beside the images: they must not
    # make a finished training look stale
    return rules.classify(name) == IMAGE or is_video(name) or name.endswith(caption_extension)


def _hash_folder(h, folder: Folder, label: str, rules: ImageRules, caption_extension: str) -> None:
    for e in folder.entries():
        if e.kind in ("file", "outside", "missing") and _relevant(e.name, rules, caption_extension):
            h.update(
                f"{label}/{e.name}\0{e.kind}\0{e.size}\0{e.mtime_ns}\n".encode("utf-8", "surrogateescape")
            )


def _hash_subset(h, folder: Folder, label: str, caption_extension: str) -> None:
    """A subset folder and its control/ folder (image pairs: a changed reference image is a change)."""
    _hash_folder(h, folder, label, DEFAULT_RULES, caption_extension)
    control = next((e for e in folder.entries() if e.name == CONTROL_DIR), None)
    if control is not None:
        h.update(
            f"{label}/{CONTROL_DIR}\0{control.kind}\0{control.link}\n".encode("utf-8", "surrogateescape")
        )
        if control.kind == "dir":
            with folder.subdir(control) as inner:
                _hash_folder(h, inner, f"{label}/{CONTROL_DIR}", DEFAULT_RULES, caption_extension)


def listing_fingerprint(
    project_dir: str | os.PathLike, guard: Guard | None = None, caption_extension: str = CAPTION_EXT
) -> str:
    """Changes when a subset folder, image or caption of the project is added, removed or edited."""
    guard = guard or Guard()
    h = hashlib.sha256()
    with guard.open_dir(project_dir, "project folder") as top:
        listing = {e.name: e for e in top.entries()}
        _hash_folder(h, top, ".", DEFAULT_RULES, caption_extension)  # a plain folder of images
        for sub in (TRAIN_DIR, REG_DIR):
            entry = listing.get(sub)
            if entry is None or entry.kind != "dir":
                h.update(f"{sub}:{entry.kind if entry else 'missing'}\n".encode())
                continue
            with top.subdir(entry) as base:
                _hash_folder(h, base, sub, DEFAULT_RULES, caption_extension)  # images/ without subsets
                for d in base.entries():
                    h.update(f"{sub}/{d.name}\0{d.kind}\0{d.link}\n".encode("utf-8", "surrogateescape"))
                    if d.kind == "dir" and not d.name.startswith("."):
                        with base.subdir(d) as folder:
                            _hash_subset(h, folder, f"{sub}/{d.name}", caption_extension)
    return h.hexdigest()[:32]  # dataset.toml is left out: the node itself writes it


def content_fingerprint(
    project_dir: str | os.PathLike,
    subsets: list[DatasetSubset],
    toml_text: str,
    caption_extension: str = CAPTION_EXT,
    guard: Guard | None = None,
    rules: ImageRules = DEFAULT_RULES,
) -> str:
    """Hash of the trained images', videos' and captions' relative paths, sizes and mtimes, plus the TOML text."""
    guard = guard or Guard()
    root = Path(project_dir)
    h = hashlib.sha256(toml_text.encode("utf-8", "surrogateescape"))
    for s in subsets:
        folder = Path(s.image_dir)
        try:
            rel = folder.relative_to(root).as_posix()
        except ValueError:
            rel = folder.as_posix()
        with guard.open_dir(folder, "subset folder") as f:
            _hash_folder(h, f, rel, rules, caption_extension)
        if s.control_dir:  # the reference images of image pairs: musubi caches their latents too
            with guard.open_dir(s.control_dir, "control folder") as f:
                _hash_folder(h, f, f"{rel}/{CONTROL_DIR}", rules, caption_extension)
    return h.hexdigest()[:32]
