"""kohya sd-scripts' dataset config (`--dataset_config`): build it from the subsets and write it as TOML.

Only keys sd-scripts' config_util schema accepts are written (it rejects unknown keys). The writer is
toml_writer (no toml dependency, Windows paths as literal strings).
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

from . import toml_writer
from .errors import WorkbenchError
from .types import DatasetSubset

toml_string = toml_writer.toml_string  # kept for callers of the old name

HEADER = "# Dataset config written by lora-workbench (kohya sd-scripts --dataset_config)."
_WEIGHTS_PREFIX = "# lora-workbench weights = "
BUCKET_STEP = 64


def build_config(subsets: list[DatasetSubset], *, resolution: tuple[int, int], batch_size: int,
                 enable_bucket: bool, caption_extension: str = ".txt") -> dict:
    """The [general] / [[datasets]] / [[datasets.subsets]] structure as plain dicts and lists."""
    w, h = int(resolution[0]), int(resolution[1])
    general = {"caption_extension": caption_extension, "enable_bucket": bool(enable_bucket)}
    ds: dict = {"resolution": [w, h], "batch_size": max(1, int(batch_size)), "enable_bucket": bool(enable_bucket)}
    if enable_bucket:
        # kohya asserts min_bucket_reso <= min(resolution); keep its defaults (256..1024) where they fit
        lo = min(256, (min(w, h) // BUCKET_STEP) * BUCKET_STEP or BUCKET_STEP)
        hi = max(1024, int(math.ceil(max(w, h) / BUCKET_STEP)) * BUCKET_STEP)
        ds.update(min_bucket_reso=lo, max_bucket_reso=hi, bucket_reso_steps=BUCKET_STEP)
    ds["subsets"] = [{
        "image_dir": s.image_dir,
        "num_repeats": int(s.repeats),
        "class_tokens": s.class_tokens or s.name,
        "caption_extension": caption_extension,
        "is_reg": bool(s.is_reg),
    } for s in subsets]
    return {"general": general, "datasets": [ds]}


def dumps(config: dict, weights: dict[str, float] | None = None) -> str:
    """TOML text for build_config()'s structure (with our header and the weights as a comment)."""
    lines = [HEADER]
    if weights is not None:
        lines.append(_WEIGHTS_PREFIX + json.dumps(weights, ensure_ascii=True))
    return "\n".join(lines) + "\n\n" + toml_writer.dumps(config)


def read_weights(text: str) -> dict[str, float] | None:
    """The weights recorded in a TOML we wrote, or None."""
    for line in text.splitlines()[:5]:
        if line.startswith(_WEIGHTS_PREFIX):
            try:
                return {str(k): float(v) for k, v in json.loads(line[len(_WEIGHTS_PREFIX):]).items()}
            except (ValueError, AttributeError):
                return None
    return None


def is_ours(path: str | os.PathLike) -> bool:
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return f.readline().rstrip("\n") == HEADER
    except OSError:
        return False


def write(path: str | os.PathLike, text: str) -> Path:
    """Write atomically; refuses to replace a dataset config the pack did not write."""
    p = Path(path)
    if p.exists() and not is_ours(p):
        raise WorkbenchError(f"{p} exists and was not written by lora-workbench; move or rename it so it is "
                             f"not overwritten, then apply again.")
    tmp = p.with_name(f".{p.name}.tmp-{os.getpid()}")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, p)
    return p
