"""What kind of text encoder or VAE a file holds (CLIP-L, T5-XXL, Gemma 2, FLUX AE, ...), from the
names and shapes in its safetensors header.

The trainer uses it twice: to refuse, before launch, a T5 file picked where CLIP-L belongs, and to
see which parts a single-file checkpoint already carries (an SD3 checkpoint with its three text
encoders needs no --clip_l/--clip_g/--t5xxl). A file it cannot place is "unknown" and never blocks.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass

from ..errors import WorkbenchError
from .safetensors_header import read_header

# kind -> what a person calls it
KIND_NAMES = {
    "clip_l": "a CLIP-L text encoder",
    "clip_g": "a CLIP-G (bigG) text encoder",
    "t5xxl": "a T5-XXL text encoder",
    "byt5": "a ByT5 (glyph) text encoder",
    "gemma2": "a Gemma 2 2B text encoder",
    "qwen2_5_vl": "a Qwen2.5-VL 7B text encoder",
    "qwen3": "a Qwen3 0.6B text encoder",
    "sd_vae": "an SD 1.x/2.x/SDXL VAE (4 latent channels)",
    "ae16": "a 16-channel autoencoder (the FLUX.1 AE / SD3 VAE)",
    "hunyuan_vae": "the HunyuanImage 2.1 VAE (64 latent channels)",
    "qwen_image_vae": "a Qwen-Image / Wan 3D VAE",
}


@dataclass(frozen=True)
class _Rule:
    suffix: str  # the tail of a tensor name that the kind always has
    kind: Callable[[list[int], set[str], str], str | None]  # (shape, all keys, prefix) -> kind or None


def _clip(shape, _keys, _prefix):
    return {768: "clip_l", 1280: "clip_g"}.get(shape[-1]) if len(shape) == 2 else None


def _t5(shape, _keys, _prefix):
    if shape == [4096, 4096]:
        return "t5xxl"
    return "byt5" if len(shape) == 2 and shape[1] == 1472 else None


def _llm(shape, keys, prefix):
    width = shape[1] if len(shape) == 2 else None
    if width == 2304:
        return "gemma2"
    if width == 3584:
        return "qwen2_5_vl"
    if width == 1024 and prefix + "layers.0.self_attn.q_norm.weight" in keys:
        return "qwen3"
    return None


def _vae(shape, _keys, _prefix):
    if len(shape) == 5 and shape[1] == 16:
        return "qwen_image_vae"
    if len(shape) == 4:
        return {4: "sd_vae", 16: "ae16", 64: "hunyuan_vae"}.get(shape[1])
    return None


_RULES = (
    _Rule("text_model.encoder.layers.0.self_attn.q_proj.weight", _clip),
    _Rule("encoder.block.0.layer.0.SelfAttention.q.weight", _t5),
    _Rule("layers.0.self_attn.q_proj.weight", _llm),
    _Rule("decoder.conv_in.weight", _vae),
    _Rule("decoder.conv1.weight", _vae),  # ComfyUI's name for the Qwen-Image/Wan VAE's first conv
)


def kinds_in(shapes: dict[str, list[int]]) -> dict[str, str]:
    """Every component kind found in a header: kind -> the tensor name that showed it."""
    keys = set(shapes)
    found: dict[str, str] = {}
    for key, shape in shapes.items():
        for rule in _RULES:
            if not key.endswith(rule.suffix):
                continue
            prefix = key[: -len(rule.suffix)]
            if rule.suffix == "layers.0.self_attn.q_proj.weight" and prefix.endswith("encoder."):
                continue  # a CLIP layer (text_model.encoder.layers...), handled by _clip
            kind = rule.kind(list(shape), keys, prefix)
            if kind and kind not in found:
                found[kind] = key
    return found


def is_scaled_fp8(shapes: dict[str, list[int]]) -> bool:
    """ComfyUI's "scaled fp8" files store fp8 weights with per-layer scales (`scaled_fp8`,
    `*.scale_weight`); sd-scripts reads the weights without the scales."""
    return any(k == "scaled_fp8" or k.endswith((".scaled_fp8", ".scale_weight")) for k in shapes)


@dataclass(frozen=True)
class FileFacts:
    kind: str  # one component kind, or "unknown"
    scaled_fp8: bool = False


def file_facts(path: str | os.PathLike) -> FileFacts:
    """The component kind of a text-encoder/VAE file ("unknown" when unsure: several or none) and
    whether it is a scaled-fp8 file; one header read."""
    p = os.fspath(path)
    if not p.lower().endswith((".safetensors", ".sft")):
        return FileFacts("unknown")
    try:
        header = read_header(p)
    except WorkbenchError:
        return FileFacts("unknown")
    shapes = {k: list(v.get("shape", [])) for k, v in header.tensors.items() if isinstance(v, dict)}
    kinds = kinds_in(shapes)
    return FileFacts(next(iter(kinds)) if len(kinds) == 1 else "unknown", is_scaled_fp8(shapes))


def file_kind(path: str | os.PathLike) -> str:
    """The one component kind of a text-encoder/VAE file, "unknown" when unsure (several or none)."""
    return file_facts(path).kind


def kind_name(kind: str) -> str:
    return KIND_NAMES.get(kind, "an unknown kind of file")
