"""kohya sd-scripts' dataset config (`--dataset_config`): build it from the subsets, write it as TOML,
and read one back into a LoraDataset (what `lora-workbench train` uses after `dataset apply`).

Only keys sd-scripts' config_util schema accepts are written (it rejects unknown keys). The writer is
toml_writer (no toml dependency, Windows paths as literal strings).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .. import numbers, toml_writer
from ..datatypes import DatasetSubset, LoraDataset
from ..errors import PathNotAllowed, ValidationError, WorkbenchError
from . import limits
from .confined import Guard
from .images import ImageRules, is_image, rules_in_use
from .scan import CONTROL_DIR, match_controls

try:  # Python 3.11+; 3.10 needs tomli (ComfyUI's own requirements usually bring it)
    import tomllib
except ModuleNotFoundError:  # pragma: no cover
    import tomli as tomllib  # type: ignore[no-redef]

toml_string = toml_writer.toml_string  # kept for callers of the old name

HEADER = "# Dataset config written by lora-workbench (kohya sd-scripts --dataset_config)."
_WEIGHTS_PREFIX = "# lora-workbench weights = "
_PLAN_PREFIX = "# lora-workbench plan = "  # {"target_steps": T, "epochs": E, "total_steps": S}
_EPOCHS_PREFIX = "# lora-workbench epochs = "  # the dataset node's epochs (the trainer's when its own is 0)
BUCKET_STEP = 64


def build_config(
    subsets: list[DatasetSubset],
    *,
    resolution: tuple[int, int],
    batch_size: int,
    enable_bucket: bool,
    caption_extension: str = ".txt",
    subset_options: Mapping[str, Any] | None = None,
    missing_caption: str = "error",
) -> dict:
    """The [general] / [[datasets]] / [[datasets.subsets]] structure as plain dicts and lists.
    `subset_options`: caption/augmentation keys written into every subset (see the hook below).
    `missing_caption` "empty" leaves class_tokens out of the training subsets: sd-scripts then trains an
    image without a caption file on an empty caption instead of the class tokens."""
    w, h = int(resolution[0]), int(resolution[1])
    general = {"caption_extension": caption_extension, "enable_bucket": bool(enable_bucket)}
    ds: dict = {
        "resolution": [w, h],
        "batch_size": max(1, int(batch_size)),
        "enable_bucket": bool(enable_bucket),
    }
    if enable_bucket:
        # kohya asserts min_bucket_reso <= min(resolution); keep its defaults (256..1024) where they fit
        lo = min(256, (min(w, h) // BUCKET_STEP) * BUCKET_STEP or BUCKET_STEP)
        hi = max(1024, int(math.ceil(max(w, h) / BUCKET_STEP)) * BUCKET_STEP)
        ds.update(min_bucket_reso=lo, max_bucket_reso=hi, bucket_reso_steps=BUCKET_STEP)
        # An image smaller than the resolution trains at its own size instead of being upscaled
        # (blurred) into a bucket; larger ones are scaled down to the resolution's area as before.
        ds["bucket_no_upscale"] = True
    ds["subsets"] = [_subset_table(s, caption_extension, missing_caption) for s in subsets]
    # --- hook (features): per-subset caption and augmentation keys from the trainer's caption settings
    # (KohyaCaptionOptions -> DatasetSubsetWeights.caption_options, made sd-scripts' keys by
    # training.command.subset_caption_keys: shuffle_caption, keep_tokens, caption_dropout_rate,
    # caption_tag_dropout_rate, flip_aug, color_aug, random_crop, ...). A subset's own value wins over
    # the trainer's run-wide defaults, which go to [general] of the run's copy.
    for sub in ds["subsets"]:
        sub.update(subset_options or {})
    return {"general": general, "datasets": [ds]}


def _subset_table(s: DatasetSubset, caption_extension: str, missing_caption: str) -> dict:
    table = {
        "image_dir": s.image_dir,
        "num_repeats": int(s.repeats),
        "class_tokens": s.class_tokens or s.name,
        "caption_extension": caption_extension,
        "is_reg": bool(s.is_reg),
    }
    if missing_caption == "empty" and not s.is_reg:
        del table["class_tokens"]
    if s.alpha_mask:
        table["alpha_mask"] = True  # the PNGs' alpha masks the loss (Save Training Images' masks)
    return table


def dumps(
    config: dict, weights: dict[str, float] | None = None, plan: dict | None = None, epochs: int = 0
) -> str:
    """TOML text for build_config()'s structure, with our header and the weights, step plan and epochs
    as comments (toml_writer.comment: nothing can break out of a comment line)."""
    lines = [HEADER[2:]]
    if weights is not None:
        lines.append(_WEIGHTS_PREFIX[2:] + json.dumps(weights, ensure_ascii=True))
    if plan:
        lines.append(_PLAN_PREFIX[2:] + json.dumps(plan, ensure_ascii=True))
    if epochs:
        lines.append(_EPOCHS_PREFIX[2:] + str(int(epochs)))
    return toml_writer.comment(*lines) + "\n" + toml_writer.dumps(config)


def _comment_json(text: str, prefix: str):
    for line in text.splitlines()[:5]:
        if line.startswith(prefix):
            try:
                return numbers.loads(line[len(prefix) :])
            except (ValueError, RecursionError):  # JSON nested thousands deep is as unreadable as bad JSON
                return _UNREADABLE
    return None


_UNREADABLE = object()


def read_weights(text: str) -> dict[str, float] | None:
    """The weights recorded in a TOML we wrote, or None."""
    data = _comment_json(text, _WEIGHTS_PREFIX)
    try:
        return {str(k): float(v) for k, v in data.items()} if isinstance(data, dict) else None
    except (TypeError, ValueError):
        return None


def read_plan(text: str, where: str = "the dataset config") -> dict | None:
    """The step plan recorded in a TOML we wrote ({"target_steps", "epochs", "total_steps"}), or None when
    it records none. A plan it records must be usable as it stands: ValidationError (naming `where` and
    the value) when it cannot be read or asks for epochs or a target the pack would refuse as settings."""
    data = _comment_json(text, _PLAN_PREFIX)
    if data is None:
        return None
    fix = "write it again with `lora-workbench dataset apply` (or DatasetSubsetWeights)"
    if not isinstance(data, dict) or not all(type(data.get(k)) is int for k in ("epochs", "target_steps")):
        raise ValidationError(
            f"The step plan in {where} (its `{_PLAN_PREFIX[2:].strip()}` line) is not readable: it needs "
            f"whole numbers for epochs and target_steps; {fix}."
        )
    for key, low in (("epochs", limits.LIMITS["epochs"][0]), ("target_steps", 1)):
        high = limits.LIMITS[key][1]
        if not low <= data[key] <= high:
            raise ValidationError(
                f"The step plan in {where} asks for {key} = {data[key]}; it must be from {low} to {high}: {fix}."
            )
    return data


def read_epochs(text: str, where: str = "the dataset config") -> int:
    """The dataset node's epochs recorded in a TOML we wrote (0 when it records none); a value the
    trainer would refuse is a ValidationError naming `where` and the value."""
    data = _comment_json(text, _EPOCHS_PREFIX)
    if data is None:
        return 0
    low, high = limits.LIMITS["epochs"]
    if type(data) is not int or not low <= data <= high:
        shown = "unreadable" if data is _UNREADABLE else repr(data)
        raise ValidationError(
            f"The epochs in {where} (its `{_EPOCHS_PREFIX[2:].strip()}` line) are {shown}; they must be a "
            f"whole number from {low} to {high}: write it again with `lora-workbench dataset apply` (or "
            f"DatasetSubsetWeights)."
        )
    return data


def is_ours(text: str | None) -> bool:
    return text is not None and text.split("\n", 1)[0].rstrip("\r") == HEADER


def write(path: str | os.PathLike, text: str, guard: Guard | None = None) -> Path:
    """Write atomically through the guard; refuses to replace a dataset config the pack did not write,
    and a link in its place. Nothing is created when the text cannot be encoded."""
    p = Path(path)
    try:
        data = text.encode("utf-8")
    except UnicodeEncodeError:
        raise WorkbenchError(
            f"The dataset config for {p.parent} names a path that is not valid UTF-8; rename that folder."
        ) from None
    with (guard or Guard()).open_dir(p.parent, "project folder") as folder:
        try:
            existing = folder.read_own_text(p.name, 4096)
        except PathNotAllowed:
            raise WorkbenchError(
                f"{p} is a link; the pack never writes through a link. Remove it, then apply again."
            ) from None
        if existing is not None and not is_ours(existing):
            raise WorkbenchError(
                f"{p} exists and was not written by lora-workbench; move or rename it so it is "
                f"not overwritten, then apply again."
            )
        return folder.write_atomic(p.name, data)


# --------------------------------------------------------------------------- reading
def _count_images(folder: Path, rules: ImageRules) -> int:
    """The images sd-scripts will read in `folder`, by the rules of the checkout in use."""
    try:
        return sum(1 for p in folder.iterdir() if p.is_file() and is_image(p.name, rules))
    except OSError:
        return 0


def _images_in(folder: Path, rules: ImageRules) -> list[str]:
    try:
        return [p.name for p in folder.iterdir() if p.is_file() and is_image(p.name, rules)]
    except OSError:
        return []


def _control_facts(image_dir: Path, rules: ImageRules) -> dict:
    """A subset's control/ folder (image pairs), counted as the scan counts it; none without one."""
    control = image_dir / CONTROL_DIR
    if not control.is_dir():
        return {}
    controls = _images_in(control, rules)
    match = match_controls(_images_in(image_dir, rules), controls)
    return {
        "control_dir": str(control),
        "control_count": len(controls),
        "control_missing": len(match.without),
    }


def _content_hash(toml_path: Path, dirs: list[Path]) -> str:
    h = hashlib.sha256(toml_path.read_bytes())
    for d in dirs:
        try:
            entries = sorted(os.scandir(d), key=lambda e: e.name)
        except OSError:
            continue
        for e in entries:
            if e.is_file() and not e.name.endswith(".npz"):
                st = e.stat()
                h.update(f"{d}/{e.name}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return h.hexdigest()[:32]


def _read_config(path: Path) -> tuple[str, dict]:
    try:
        text = path.read_text(encoding="utf-8")
        return text, tomllib.loads(text, parse_float=numbers.parse_float)
    except numbers.OutOfRange as exc:  # 1e-400 would be 0.0 here and in sd-scripts: never silently
        raise WorkbenchError(
            f"The dataset config {path} holds a number a float cannot hold: {exc}."
        ) from None
    except FileNotFoundError:
        raise WorkbenchError(
            f"No dataset config at {path}; run `lora-workbench dataset apply` on the project "
            f"first (or queue DatasetSubsetWeights)."
        ) from None
    except tomllib.TOMLDecodeError as exc:
        raise WorkbenchError(
            f"The dataset config {path} is not valid TOML ({exc}); fix or rewrite it."
        ) from None


def _subsets_of(datasets: list[dict]) -> list[DatasetSubset]:
    """The subsets a TOML lists, with their images counted now (sd-scripts skips num_repeats < 1)."""
    subsets: list[DatasetSubset] = []
    rules = rules_in_use()
    for ds in datasets:
        for s in ds.get("subsets", []):
            image_dir = Path(s["image_dir"])
            repeats = int(s.get("num_repeats", 1))
            if repeats < 1:
                continue
            subsets.append(
                DatasetSubset(
                    name=image_dir.name.split("_", 1)[-1],
                    image_dir=str(image_dir),
                    images=_count_images(image_dir, rules),
                    repeats=repeats,
                    class_tokens=str(s.get("class_tokens", "")),
                    is_reg=bool(s.get("is_reg", False)),
                    alpha_mask=s.get("alpha_mask") is True,
                    **_control_facts(image_dir, rules),
                )
            )
    train = sum(s.items for s in subsets if not s.is_reg) or 1
    for s in subsets:
        if not s.is_reg:
            s.share = s.items / train
    return subsets


def dataset_from_toml(
    toml_path: str | os.PathLike, project_dir: str | os.PathLike | None = None
) -> LoraDataset:
    """A LoraDataset from a kohya dataset TOML (what `dataset apply` writes), counting the images;
    the step plan it records (target_steps) comes back as planned_epochs."""
    path = Path(toml_path).resolve()
    text, data = _read_config(path)
    general = data.get("general", {})
    datasets = data.get("datasets") or []
    if not datasets:
        raise WorkbenchError(
            f"The dataset config {path} has no [[datasets]]; rewrite it with `dataset apply`."
        )
    first = datasets[0]
    res = first.get("resolution", general.get("resolution", 512))
    batch = int(first.get("batch_size", general.get("batch_size", 1)))
    subsets = _subsets_of(datasets)
    items = sum(s.items for s in subsets if not s.is_reg) * (2 if any(s.is_reg for s in subsets) else 1)
    plan = read_plan(text, str(path)) or {}
    return LoraDataset(
        project_dir=str(Path(project_dir) if project_dir is not None else path.parent),
        toml_path=str(path),
        resolution=(int(res[0]), int(res[1])) if isinstance(res, list) else (int(res), int(res)),
        enable_bucket=bool(first.get("enable_bucket", general.get("enable_bucket", False))),
        batch_size=batch,
        subsets=subsets,
        items_per_epoch=items,
        steps_per_epoch=math.ceil(items / max(1, batch)),
        caption_extension=str(general.get("caption_extension", ".txt")),
        fingerprint=_content_hash(
            path, [Path(d) for s in subsets for d in (s.image_dir, s.control_dir) if d]
        ),
        planned_epochs=int(plan.get("epochs", 0)),
        target_steps=int(plan.get("target_steps", 0)),
        epochs=read_epochs(text, str(path)),
    )


def load_project_dataset(project_dir: str | os.PathLike) -> LoraDataset:
    """The project's dataset as `dataset apply` left it: `<project>/dataset.toml`."""
    project = Path(project_dir).expanduser().resolve()
    if not project.is_dir():
        raise WorkbenchError(f"The project folder {project} does not exist.")
    return dataset_from_toml(project / "dataset.toml", project)
