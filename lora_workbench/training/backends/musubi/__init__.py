"""kohya musubi-tuner as a backend: Qwen-Image, Wan 2.1/2.2, Z-Image, FLUX.2, FLUX.1 Kontext,
HunyuanVideo 1.5 and FramePack; each run caches latents, caches text-encoder outputs, trains, and
converts the LoRA where ComfyUI needs another key layout."""

from __future__ import annotations

from pathlib import Path

from ..base import Install
from .install import INSTALL_SPEC, find_musubi


class MusubiBackend:
    id = "musubi-tuner"
    install_spec = INSTALL_SPEC

    def recipes(self):
        from .families import FAMILIES

        return FAMILIES

    def find(self, root: Path | None = None) -> Install:
        return find_musubi(root)

    def build(self, opts, target, warnings=None):
        from .command import build

        return build(opts, target, warnings)


MUSUBI = MusubiBackend()
