"""The facts a detector reads from a safetensors header: tensor names -> shapes (and dtypes), looked
up under any of the prefixes trainers and ComfyUI put in front of a diffusion model's own names.

Shared by the sd-scripts detectors (detect.py) and the musubi-tuner ones (detect_musubi.py); each
returns a `Found` when it recognises its family's marker tensors.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# Where a diffusion model's own tensors may sit inside a file (ComfyUI and trainers use all of these).
DIT_PREFIXES = ("", "model.diffusion_model.", "net.", "diffusion_model.", "model.")
CKPT = "model.diffusion_model."


@dataclass
class Found:
    arch: str
    how: str
    variant: str = ""
    layout: str = "diffusion_model"
    unusable: str = ""


class Keys:
    """The header's tensor names -> shapes, with lookups that ignore the diffusion-model prefix."""

    def __init__(
        self,
        shapes: dict[str, list[int]],
        name: str = "",
        dtypes: dict[str, str] | None = None,
        wanted: str = "",
    ):
        self.shapes = shapes
        self.name = name.lower()  # the file's base name: a tie-breaker where tensors cannot tell
        self.dtypes = dtypes or {}
        self.wanted = wanted  # the family the user set as model type ("" = auto)

    def find(self, suffix: str) -> str | None:
        """The full tensor name of `suffix` under any of DIT_PREFIXES, or None."""
        for prefix in DIT_PREFIXES:
            if prefix + suffix in self.shapes:
                return prefix + suffix
        return None

    def has(self, *suffixes: str) -> bool:
        return all(self.find(s) is not None for s in suffixes)

    def has_any(self, *suffixes: str) -> bool:
        return any(self.find(s) is not None for s in suffixes)

    def shape(self, suffix: str) -> list[int]:
        key = self.find(suffix)
        return list(self.shapes[key]) if key else []

    def dim(self, suffix: str, axis: int) -> int | None:
        """One axis of a tensor's shape (None when the tensor or the axis is missing)."""
        shape = self.shape(suffix)
        return shape[axis] if -len(shape) <= axis < len(shape) else None

    def dtype(self, suffix: str) -> str:
        key = self.find(suffix)
        return self.dtypes.get(key, "") if key else ""

    def prefix(self, suffix: str) -> str:
        key = self.find(suffix) or suffix
        return key[: len(key) - len(suffix)]

    def count(self, block: str, tail: str) -> int:
        """How many `<block>.N.<tail>` tensors the file has (blocks of a transformer stack)."""
        pattern = re.compile(rf"(?:^|\.){re.escape(block)}\.(\d+)\.{re.escape(tail)}$")
        return len({m.group(1) for k in self.shapes if (m := pattern.search(k))})

    def any_startswith(self, *prefixes: str) -> bool:
        return any(k.startswith(prefixes) for k in self.shapes)

    def name_says(self, pattern: str) -> bool:
        return bool(pattern) and re.search(pattern, self.name) is not None
