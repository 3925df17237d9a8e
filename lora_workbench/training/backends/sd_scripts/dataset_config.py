"""sd-scripts' dataset config for one run: a copy of the project's dataset TOML with the trainer's
settings patched in (command.dataset_patch says which), as the text the run folder's dataset.toml gets."""

from __future__ import annotations

import os
from pathlib import Path

from .... import disk, paths, toml_writer
from ....datatypes import LoraDataset
from ....errors import ValidationError

try:  # Python 3.11+; 3.10 needs tomli (ComfyUI's own requirements usually bring it)
    import tomllib
except ModuleNotFoundError:  # pragma: no cover
    import tomli as tomllib  # type: ignore[no-redef]

MAX_DATASET_TOML = 64 << 20


def apply_patch(data: dict, patch: dict) -> None:
    """Set the patch's keys: [general] ones everywhere they are set (the trainer wins), [[datasets]]
    ones on every dataset (dropped from [general]), subset ones on every subset, subset_defaults in
    [general] only (a subset's own value wins)."""
    general = data.setdefault("general", {})
    general.update(patch.get("general", {}))
    general.update(patch.get("subset_defaults", {}))
    for key in patch.get("datasets", {}):
        general.pop(key, None)
    for ds in data.get("datasets", []):
        ds.update({k: v for k, v in patch.get("general", {}).items() if k in ds})
        ds.update(patch.get("datasets", {}))
        for sub in ds.get("subsets", []):
            sub.update({k: v for k, v in patch.get("general", {}).items() if k in sub})
            sub.update(patch.get("subsets", {}))


def dataset_copy_text(dataset: LoraDataset, patch: dict) -> str:
    """The run's dataset.toml: the project's as it is when nothing is patched, else re-written with
    `patch` ({level: {key: value}}) applied under a comment naming the original and the changes."""
    src = Path(dataset.toml_path)
    with paths.open_file(src, what="dataset config", confined=False) as f:  # a FIFO is refused
        raw = f.read(limit=MAX_DATASET_TOML)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ValidationError(
            f"The dataset config {src} is not UTF-8 text; prepare the dataset again (`dataset apply`)."
        ) from None
    if not patch:
        return text
    data = tomllib.loads(text)
    apply_patch(data, patch)
    changes = ", ".join(f"{k}={v}" for level in patch.values() for k, v in level.items())
    head = toml_writer.comment(f"Copy of {src} for this run; the trainer set: {changes}")
    return head + toml_writer.dumps(data)


def write_dataset_copy(dataset: LoraDataset, patch: dict, dest: str | os.PathLike) -> None:
    """Write the run's dataset.toml to `dest` (the parser checks write it where a run would)."""
    disk.write_atomic(dest, dataset_copy_text(dataset, patch))
