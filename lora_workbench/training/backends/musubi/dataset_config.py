"""musubi-tuner's dataset config (`--dataset_config`), written from the dataset's subsets.

musubi reads `[general]` (resolution, caption_extension, batch_size, enable_bucket, bucket_no_upscale)
and one `[[datasets]]` table per folder (image_directory or video_directory, num_repeats, its own
cache_directory; videos: target_frames, frame_extraction, ...), validated by its ConfigSanitizer
(dataset/config_utils.py), which refuses unknown keys. It has no subsets, regularization images, class
tokens or caption variation: what a dataset asks for that musubi cannot do is a sentence, not a
trainer crash. Every path and name leaves here only through toml_writer (escaped values).

A model that learns from image pairs (FLUX.1 Kontext, Qwen-Image-Edit) reads each subset's control/
folder as its `control_directory` (the scan found and counted it); a subset without one, or with
training images it has no reference image for, is a sentence naming the folder to fill.

The caches live in the project (`cache/musubi/<family>/<NN>_<subset>`), so a second run with other
training settings finds them (the cache steps' reuse keys say when they are stale).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from .... import toml_writer
from ....dataset.scan import CONTROL_DIR
from ....datatypes import DatasetSubset, LoraDataset
from ....errors import ValidationError
from ...families import TrainingFamily

HEADER = "Dataset config written by lora-workbench (kohya musubi-tuner --dataset_config)."
CACHE_DIR = ("cache", "musubi")  # under the project folder
# The settings a video subset takes, with musubi's defaults (VideoDatasetParams): written when set.
_VIDEO_DEFAULTS = {"frame_stride": 1, "frame_sample": 1, "max_frames": 129}
_EXTRACTION_USES = {"slide": "frame_stride", "uniform": "frame_sample", "full": "max_frames"}


@dataclass
class DatasetConfig:
    """The dataset config of one run: its TOML text, the same as data, and what to tell the user."""

    text: str
    data: dict
    cache_dirs: tuple[str, ...]  # one per [[datasets]] table, in order
    warnings: list[str] = field(default_factory=list)


def cache_root(dataset: LoraDataset, family_id: str) -> Path:
    """Where a project keeps a family's musubi caches (latents and text-encoder outputs)."""
    return Path(dataset.project_dir).joinpath(*CACHE_DIR, family_id)


def is_video(subset: DatasetSubset) -> bool:
    """A subset of video clips (the video work marks them `kind="video"` or `is_video`)."""
    return getattr(subset, "kind", "image") == "video" or bool(getattr(subset, "is_video", False))


def _folder_name(index: int, subset: DatasetSubset) -> str:
    """A cache folder name of the subset's own: its position, then its name made safe (any text may
    be a folder name; only [A-Za-z0-9._-] reaches the disk)."""
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", subset.name).strip("._-")[:40]
    return f"{index:02d}_{safe or 'subset'}"


def _trained(dataset: LoraDataset) -> list[DatasetSubset]:
    """The subsets that train (a weight of 0 or no repeats leaves one out, as sd-scripts does)."""
    return [s for s in dataset.subsets if s.repeats >= 1 and s.weight != 0]


def _refuse(recipe: TrainingFamily, dataset: LoraDataset, target) -> None:
    """What musubi cannot express, as a sentence naming the subset or the setting."""
    for s in _trained(dataset):
        if s.is_reg:
            raise ValidationError(
                f"Subset {s.name!r} ({s.image_dir}) holds regularization images, which kohya musubi-tuner does "
                f"not train with; set its weight to 0 (or remove it from regularization/) to train {recipe.name}."
            )
        if is_video(s) and not recipe.video:
            raise ValidationError(
                f"Subset {s.name!r} ({s.image_dir}) holds videos and {recipe.name} trains on images; set its "
                f"weight to 0, or train a video model (Wan, HunyuanVideo 1.5, FramePack)."
            )
    per_subset = [*getattr(target, "dataset_captions", ()), *getattr(target, "dataset_augments", ())]
    if per_subset:
        raise ValidationError(
            f"The dataset sets {', '.join(dict.fromkeys(per_subset))} per subset ({dataset.toml_path}), and "
            f"musubi-tuner's dataset config has no such option; clear caption_options on DatasetSubsetWeights "
            f"and prepare the dataset again to train {recipe.name}."
        )
    if not _trained(dataset):
        raise ValidationError(
            f"The dataset {dataset.toml_path} has no subset to train (every weight is 0); give one a weight."
        )


def _refuse_unpaired(model: str, dataset: LoraDataset) -> None:
    """Every trained subset of a pairs model needs a control image for each training image."""
    for s in _trained(dataset):
        folder = Path(s.image_dir) / CONTROL_DIR
        if not s.control_dir or not s.control_count:
            raise ValidationError(
                f"{model} learns from image pairs and subset {s.name!r} has no control images; make the folder "
                f"{folder} with the reference image of each training image under the same name (a.jpg -> "
                f"control/a.png), apply the dataset again, or train a model that learns from single images."
            )
        if s.control_missing:
            raise ValidationError(
                f"{model} learns from image pairs and {s.control_missing} training image(s) of subset {s.name!r} "
                f"have no control image in {s.control_dir}; add one under each image's name (a.jpg -> "
                f"control/a.png) and apply the dataset again, or set the subset's weight to 0."
            )


def _frames(opts) -> list[int]:
    return [int(n) for n in str(opts.target_frames).split(",")]


def _video_keys(opts) -> dict:
    keys: dict = {"target_frames": _frames(opts), "frame_extraction": opts.frame_extraction}
    used = _EXTRACTION_USES.get(opts.frame_extraction)
    if used:
        keys[used] = getattr(opts, used)
    return keys


def _table(opts, index: int, subset: DatasetSubset, root: Path, pairs: bool) -> dict:
    folder = getattr(subset, "video_dir", "") or subset.image_dir
    cache = str(root / _folder_name(index, subset))
    table = {"cache_directory": cache, "num_repeats": int(subset.repeats)}
    if pairs:  # image pairs (FLUX.1 Kontext, Qwen-Image-Edit): the reference images
        table["control_directory"] = subset.control_dir
    if is_video(subset):
        return {"video_directory": folder, **table, **_video_keys(opts)}
    return {"image_directory": folder, **table}


def _buckets(opts, dataset: LoraDataset) -> bool:
    return opts.buckets == "on" or (opts.buckets == "dataset" and bool(dataset.enable_bucket))


def _general(opts, dataset: LoraDataset) -> dict:
    general = {
        "resolution": [int(opts.width), int(opts.height)],
        "caption_extension": opts.caption_extension or dataset.caption_extension or ".txt",
        "batch_size": int(opts.batch_size or dataset.batch_size or 1),
        "enable_bucket": _buckets(opts, dataset),
    }
    if general["enable_bucket"]:
        general["bucket_no_upscale"] = bool(opts.bucket_no_upscale)
    return general


def _notes(recipe: TrainingFamily, subsets: list[DatasetSubset]) -> list[str]:
    notes = [
        "musubi-tuner reads each caption from its caption file (no class tokens): an image without one "
        "stops its text-encoder cache; caption every image."
    ]
    masked = [s.name for s in subsets if s.alpha_mask]
    if masked:
        notes.append(
            f"musubi-tuner trains the whole image: the alpha masks of {', '.join(map(repr, masked))} are not used."
        )
    return notes


def build(opts, dataset: LoraDataset, recipe: TrainingFamily, target=None, pairs: str = "") -> DatasetConfig:
    """The dataset config for `opts` (effective: width, height and epochs resolved) on `dataset`;
    `pairs` names the model when it learns from image pairs (each subset's control/ folder is read)."""
    _refuse(recipe, dataset, target)
    if pairs:
        _refuse_unpaired(pairs, dataset)
    subsets = _trained(dataset)
    root = cache_root(dataset, recipe.id)
    tables = [_table(opts, i, s, root, bool(pairs)) for i, s in enumerate(subsets, 1)]
    data = {"general": _general(opts, dataset), "datasets": tables}
    text = toml_writer.comment(HEADER) + "\n" + toml_writer.dumps(data)
    return DatasetConfig(text, data, tuple(t["cache_directory"] for t in tables), _notes(recipe, subsets))


def cache_view(data: dict) -> dict:
    """The part of the dataset config that decides what the caches hold (the reuse keys hash it):
    repeats and batch size only decide how often an item is drawn, so they are left out."""
    general = {k: v for k, v in data["general"].items() if k != "batch_size"}
    tables = [{k: v for k, v in t.items() if k != "num_repeats"} for t in data["datasets"]]
    return {"general": general, "datasets": tables}


def cache_folders(text: str) -> list[str]:
    """The cache folders a written dataset config names (write_places.make_cache_folders makes them)."""
    from ....dataset.dataset_toml import tomllib  # tomli on Python 3.10

    return [t["cache_directory"] for t in tomllib.loads(text).get("datasets", []) if "cache_directory" in t]
