"""musubi-tuner's LoRAs (Qwen-Image, Wan, Z-Image, FLUX.2, FLUX.1 Kontext, HunyuanVideo 1.5, FramePack): the
family a LoRA file was trained for (musubi's metadata, else its key layout), the ComfyUI model classes of
each family, and how much of a LoRA ComfyUI's own key map places on a model.

musubi saves `ss_base_model_version` (its architecture's full name: "wan", "qwen_image_edit", ...) and
`modelspec.architecture` ("Z-Image/lora"); its keys are kohya-style `lora_unet_<module path with _>` of
its own DiT, and its converters rewrite them for ComfyUI. Nothing here reads more than a header.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from . import families
from .safetensors_header import SafetensorsHeader


@dataclass(frozen=True)
class LoraFamily:
    id: str  # the family id training uses (for_family)
    name: str  # for sentences
    base_versions: tuple[str, ...]  # musubi's ss_base_model_version values (exact)
    modelspec: tuple[str, ...] = ()  # modelspec.architecture without "/lora", lower case (exact)
    comfy_configs: tuple[str, ...] = ()  # ComfyUI comfy/supported_models.py class names


MUSUBI_LORAS: tuple[LoraFamily, ...] = (
    LoraFamily("wan", "Wan 2.1/2.2", ("wan",), ("wan2.1",), ("WAN21_T2V",)),
    LoraFamily(
        "qwen_image",
        "Qwen-Image",
        ("qwen_image", "qwen_image_edit", "qwen_image_layered"),
        (
            "qwen-image",
            "qwen-image-edit",
            "qwen-image-edit-plus",
            "qwen-image-edit-2511",
            "qwen-image-layered",
        ),
        ("QwenImage",),
    ),
    LoraFamily("z_image", "Z-Image", ("z_image",), ("z-image",), ("ZImage",)),
    LoraFamily(
        "flux2",
        "FLUX.2",
        ("flux_2_dev", "flux_2_klein_4b", "flux_2_klein_9b"),
        ("flux.2-dev", "flux.2-klein-4b", "flux.2-klein-9b"),
        ("Flux2",),
    ),
    # musubi writes FLUX.1 dev's modelspec for Kontext, and ComfyUI loads Kontext as a Flux model: the
    # Flux class is claimed by both flux and flux_kontext (see comfy_family).
    LoraFamily("flux_kontext", "FLUX.1 Kontext", ("flux_kontext",), (), ("Flux",)),
    LoraFamily(
        "hunyuan_video_1_5",
        "HunyuanVideo 1.5",
        ("hunyuan_video_1_5",),
        ("hunyuan-video-1.5",),
        ("HunyuanVideo15",),
    ),
    LoraFamily("framepack", "FramePack", ("framepack",), ("framepack",)),
)
NAMES: dict[str, str] = {f.id: f.name for f in MUSUBI_LORAS}
# A LoRA converted for ComfyUI is written beside the trained one as <stem>_comfy.safetensors (the trained
# file stays: musubi resumes and merges from its own layout).
COMFY_SUFFIX = "_comfy"

_TAIL = re.compile(
    r"\.(lora_(down|up|mid|A|B)\.weight|alpha|dora_scale|hada_\w+|lokr_\w+|diff|diff_b|set_weight"
    r"|w_norm|b_norm|reshape_weight)$"
)


# --------------------------------------------------------------------------- which family
def from_metadata(metadata: Mapping[str, str]) -> tuple[str, str] | None:
    """(family id, reason) from musubi's ss_base_model_version, else its modelspec.architecture."""
    version = str(metadata.get("ss_base_model_version", "")).strip().lower()
    arch = str(metadata.get("modelspec.architecture", "")).strip().lower().removesuffix("/lora")
    for fam in MUSUBI_LORAS:
        if version and version in fam.base_versions:
            return fam.id, f"ss_base_model_version={version}"
    for fam in MUSUBI_LORAS:
        if arch and arch in fam.modelspec:
            return fam.id, f"modelspec.architecture={arch}"
    return None


def _down_width(header: SafetensorsHeader, pattern: str) -> int | None:
    """The input width of the first LoRA down weight whose key matches `pattern`."""
    rx = re.compile(pattern)
    for key in header.keys():
        if key.endswith((".lora_down.weight", ".lora_A.weight")) and rx.search(key):
            shape = header.shape(key)
            return int(shape[1]) if shape and len(shape) >= 2 else None
    return None


def _any(header: SafetensorsHeader, pattern: str) -> bool:
    rx = re.compile(pattern)
    return any(rx.search(k) for k in header.keys())


def _flux2(header: SafetensorsHeader) -> tuple[str, str] | None:
    """FLUX.2's double blocks have a SwiGLU mlp 3x their width (FLUX.1: 4x) and widths FLUX.1 lacks."""
    width = _down_width(header, r"double_blocks[._]\d+[._]img_attn[._]qkv")
    mlp_in = _down_width(header, r"double_blocks[._]\d+[._]img_mlp[._]2")
    if width and mlp_in == 3 * width:
        return "flux2", f"double blocks of width {width} with a 3x mlp"
    return None


# (family, reason, key pattern): the layouts musubi's network modules (and its converters) write.
_KEY_RULES: tuple[tuple[str, str, str], ...] = (
    (
        "framepack",
        "HunyuanVideo diffusers blocks with a lora_unet_ prefix",
        r"^lora_unet_single_transformer_blocks_",
    ),
    (
        "qwen_image",
        "Qwen-Image transformer blocks (img_mlp/txt_mlp)",
        r"transformer_blocks[._]\d+[._](img|txt)_mlp",
    ),
    (
        "wan",
        "Wan blocks (self_attn/cross_attn q, k, v, o)",
        r"(^|[._])blocks[._]\d+[._](self|cross)_attn[._][qkvo]\.",
    ),
)


def from_keys(header: SafetensorsHeader) -> tuple[str, str] | None:
    """(family id, reason) from the key layouts only musubi writes, or None (sd-scripts' own families and
    FLUX.1 Kontext, whose layout is FLUX.1's, are told apart by lora_file's rules)."""
    for family, reason, pattern in _KEY_RULES:
        if _any(header, pattern):
            return family, reason
    if _down_width(header, r"(^|[._])layers[._]\d+[._]attention[._](to_q|qkv)") == 3840:
        return "z_image", "Next-DiT attention of width 3840"
    if _down_width(header, r"double_blocks[._]\d+[._]img_attn[._]q(kv)?\.") == 2048:
        return "hunyuan_video_1_5", "double blocks of width 2048"
    return _flux2(header)


def detect(header: SafetensorsHeader) -> tuple[str, str] | None:
    """A musubi family for this LoRA (its metadata first), or None for lora_file's rules to decide."""
    return from_metadata(header.metadata) or from_keys(header)


# --------------------------------------------------------------------------- which model
def comfy_family(class_names: Iterable[str]) -> str | None:
    """The family of a ComfyUI model from its config class MRO names (most specific first), over both
    trainers' families: "flux|flux_kontext" where both claim the class; None if none does."""
    for cls_name in class_names:
        ids = [f.id for f in families.FAMILY_LIST if cls_name in f.comfy_configs]
        ids += [f.id for f in MUSUBI_LORAS if cls_name in f.comfy_configs]
        if ids:  # once each: families.py may come to list a musubi family's classes too
            return "|".join(dict.fromkeys(ids))
    return None


# --------------------------------------------------------------------------- what ComfyUI places
def module_of(key: str) -> str:
    """The LoRA module a key belongs to (its name before .lora_down.weight, .alpha, ...)."""
    m = _TAIL.search(key)
    return key[: m.start()] if m else key


def unmapped_modules(keys: Iterable[str], key_map: Mapping[str, object]) -> tuple[int, list[str]]:
    """(number of LoRA modules, those ComfyUI's `key_map` does not place): its loader skips these with
    one 'lora key not loaded' line each."""
    modules = sorted({module_of(k) for k in keys})
    return len(modules), [m for m in modules if m not in key_map]


def coverage_problem(name: str, family: str, total: int, unmapped: list[str], hint: str = "") -> str:
    """The sentence for a LoRA ComfyUI places none or only part of, or "" when every module maps.
    A musubi family's LoRA must map whole (a partial one is a layout ComfyUI needs converted); any
    other LoRA is refused only when nothing of it maps."""
    if not unmapped or (family not in NAMES and len(unmapped) < total):
        return ""
    placed = "none" if len(unmapped) == total else f"only {total - len(unmapped)}"
    example = unmapped[0]
    return (
        f"ComfyUI places {placed} of the {total} modules of the LoRA {name} on this model (e.g. {example} "
        f"has no weight here), so it would change {'nothing' if placed == 'none' else 'part of it'}. "
        + (hint or "Check that the LoRA was trained for this model, or convert it to ComfyUI's layout.")
    )
