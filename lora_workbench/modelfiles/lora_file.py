"""Inspect a LoRA file without loading it: which model family it was trained for, whether it carries
text-encoder weights, and its trigger words; plus the model-family names used to compare it with a
loaded checkpoint.

Everything comes from the safetensors header (tensor names, shapes, kohya `ss_*` metadata), so a
check costs one small read and needs neither torch nor ComfyUI.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from ..errors import ValidationError
from .safetensors_header import SafetensorsHeader, read_header

# Families a LoRA or a model can belong to. "unknown" never blocks loading.
SD1, SD2, SDXL, FLUX, UNKNOWN = "sd1", "sd2", "sdxl", "flux", "unknown"

FAMILY_NAMES = {SD1: "SD1.5", SD2: "SD2.x", SDXL: "SDXL", FLUX: "Flux", UNKNOWN: "an unknown model family"}

# The width of the cross-attention context (attn2 to_k/to_v input) tells the UNet families apart.
CONTEXT_DIM_FAMILY = {768: SD1, 1024: SD2, 2048: SDXL}
# The width of the (first) text encoder's hidden state, for LoRAs without UNet cross-attention keys.
TE_DIM_FAMILY = {768: SD1, 1024: SD2}

# ComfyUI's model config classes (comfy/supported_models.py) -> family. Subclasses are resolved by
# walking the class's MRO, so SD15_instructpix2pix is sd1 and SSD1B is sdxl.
MODEL_CONFIG_FAMILY = {
    "SD15": SD1,
    "SD20": SD2,
    "SD21UnclipL": SD2,
    "SD21UnclipH": SD2,
    "SDXL": SDXL,
    "Flux": FLUX,
    "FluxInpaint": FLUX,
    "FluxSchnell": FLUX,
}
# Fallback when no model config is reachable: ComfyUI's latent format classes (comfy/latent_formats.py).
# SD15 latents are shared by SD1 and SD2, so that one only says "sd1 or sd2".
LATENT_FORMAT_FAMILY = {"SDXL": SDXL, "Flux": FLUX}
SD1_OR_SD2 = "sd1|sd2"

# kohya's modelspec.architecture / ss_base_model_version metadata -> family (prefix match).
METADATA_ARCH_PREFIXES = (
    ("stable-diffusion-xl", SDXL),
    ("sdxl", SDXL),
    ("stable-diffusion-v2", SD2),
    ("sd_v2", SD2),
    ("stable-diffusion-v1", SD1),
    ("sd_v1", SD1),
    ("flux", FLUX),
    ("chroma", FLUX),
)

_FLUX_MARKERS = ("double_blocks", "single_blocks", "single_transformer_blocks")
_TE_PREFIXES = (
    "lora_te_",
    "lora_te1_",
    "lora_te2_",
    "lora_te3_",
    "text_encoder.",
    "text_encoder_2.",
    "text_encoders.",
    "te1.",
    "te2.",
)
_DOWN_SUFFIXES = (".lora_down.weight", ".lora_A.weight", ".down.weight", "_lora.down.weight")


@dataclass
class LoraInfo:
    path: str
    arch: str  # sd1, sd2, sdxl, flux, unknown
    has_te: bool  # carries text-encoder weights
    trigger_words: list[str] = field(default_factory=list)
    keys: int = 0
    rank: int | None = None
    metadata: dict[str, str] = field(default_factory=dict)
    arch_source: str = ""  # what decided `arch` (for messages): "context dim 768", "metadata", ...

    @property
    def arch_name(self) -> str:
        return FAMILY_NAMES.get(self.arch, self.arch)


def is_te_key(key: str) -> bool:
    return key.startswith(_TE_PREFIXES)


def _down_dim(header: SafetensorsHeader, key: str) -> int | None:
    shape = header.shape(key)
    if shape and len(shape) >= 2:
        return int(shape[1])
    return None


def detect_arch(header: SafetensorsHeader) -> tuple[str, str]:  # noqa: C901 (cut into steps pending)
    """(family, reason) from tensor names and shapes, falling back to kohya's metadata."""
    keys = header.keys()
    if any(m in k for k in keys for m in _FLUX_MARKERS):
        return FLUX, "Flux block names"
    for k in keys:
        if ("attn2" in k and ("to_k" in k or "to_v" in k)) and k.endswith(_DOWN_SUFFIXES):
            dim = _down_dim(header, k)
            if dim in CONTEXT_DIM_FAMILY:
                return CONTEXT_DIM_FAMILY[dim], f"cross-attention width {dim}"
    if any(k.startswith(("lora_te2_", "text_encoder_2.", "te2.")) for k in keys):
        return SDXL, "two text encoders"
    for k in keys:
        if k.startswith(("lora_te_", "text_encoder.")) and "q_proj" in k and k.endswith(_DOWN_SUFFIXES):
            dim = _down_dim(header, k)
            if dim in TE_DIM_FAMILY:
                return TE_DIM_FAMILY[dim], f"text-encoder width {dim}"
    meta = header.metadata
    for field_name in ("modelspec.architecture", "ss_base_model_version"):
        value = meta.get(field_name, "").lower()
        for prefix, family in METADATA_ARCH_PREFIXES:
            if value.startswith(prefix):
                return family, f"{field_name}={value}"
    if meta.get("ss_v2", "").lower() == "true":
        return SD2, "ss_v2=True"
    return UNKNOWN, "no known key pattern"


def _strip_repeats(folder: str) -> str:
    """kohya folder names are `N_name`; the name part is the trigger word."""
    m = re.match(r"^\d+_(.+)$", folder)
    return (m.group(1) if m else folder).strip()


def _json(meta: dict, key: str):
    try:
        return json.loads(meta.get(key, "") or "null")
    except (json.JSONDecodeError, TypeError):
        return None


def trigger_words_from_metadata(meta: dict[str, str]) -> list[str]:
    """Class tokens of the non-reg subsets (ss_datasets), else the dataset folder names
    (ss_tag_frequency keys, `N_` stripped), else ss_output_name."""
    words: list[str] = []

    def add(word) -> None:
        word = str(word or "").strip()
        if word and word not in words:
            words.append(word)

    datasets = _json(meta, "ss_datasets")
    if isinstance(datasets, list):
        for ds in datasets:
            for sub in (ds or {}).get("subsets", []) if isinstance(ds, dict) else []:
                if isinstance(sub, dict) and not sub.get("is_reg"):
                    add(sub.get("class_tokens"))
    if not words:
        freq = _json(meta, "ss_tag_frequency")
        if isinstance(freq, dict):
            for folder in freq:
                add(_strip_repeats(str(folder)))
    if not words:
        add(meta.get("ss_output_name"))
    return words


def inspect_header(header: SafetensorsHeader) -> LoraInfo:
    arch, reason = detect_arch(header)
    keys = header.keys()
    rank = None
    for k in keys:
        if k.endswith(_DOWN_SUFFIXES):
            shape = header.shape(k)
            if shape:
                rank = int(shape[0])
                break
    return LoraInfo(
        path=header.path,
        arch=arch,
        arch_source=reason,
        has_te=any(is_te_key(k) for k in keys),
        trigger_words=trigger_words_from_metadata(header.metadata),
        keys=len(keys),
        rank=rank,
        metadata=dict(header.metadata),
    )


def inspect(path: str | os.PathLike) -> LoraInfo:
    """Inspect a .safetensors LoRA; other formats (.pt, .ckpt) come back as arch "unknown"."""
    p = os.fspath(path)
    if not p.lower().endswith((".safetensors", ".sft")):
        return LoraInfo(path=p, arch=UNKNOWN, has_te=False, arch_source="not a safetensors file")
    return inspect_header(read_header(p))


def model_family(class_names: Iterable[str] = (), latent_format: str | None = None) -> str:
    """The family of a loaded model from its config class MRO names (most specific first), or its
    latent format class name. "unknown" when neither is recognised; "sd1|sd2" for SD15 latents."""
    for name in class_names:
        if name in MODEL_CONFIG_FAMILY:
            return MODEL_CONFIG_FAMILY[name]
    if latent_format:
        if latent_format in LATENT_FORMAT_FAMILY:
            return LATENT_FORMAT_FAMILY[latent_format]
        if latent_format == "SD15":
            return SD1_OR_SD2
    return UNKNOWN


def family_name(family: str) -> str:
    if family == SD1_OR_SD2:
        return "SD1.5/SD2.x"
    return FAMILY_NAMES.get(family, family)


def compatible(lora_arch: str, family: str) -> bool:
    """False only when both sides are known and differ: an unknown side never blocks loading."""
    if UNKNOWN in (lora_arch, family):
        return True
    return lora_arch in family.split("|")


def check_compatible(info: LoraInfo, family: str, model_label: str = "the model") -> None:
    """Raise a ValidationError naming both sides when `info` cannot apply to a `family` model."""
    if compatible(info.arch, family):
        return
    name = os.path.basename(info.path)
    raise ValidationError(
        f"The LoRA {name} was trained for {info.arch_name} ({info.arch_source}), but {model_label} is "
        f"{family_name(family)}. Load a {info.arch_name} checkpoint, or pick a LoRA trained on "
        f"{family_name(family)}."
    )


EPOCH_NAME = "{stem}-{epoch:06d}{ext}"  # kohya's per-epoch file name (train_util EPOCH_FILE_NAME)


def epoch_file(final_path: str, epoch: int, epoch_paths: Iterable[str] = ()) -> str:
    """The file of one epoch of a run: 0 = the final file; N = `<name>-00000N.safetensors` (from
    `epoch_paths` or beside the final file), or the final file when its ss_epoch says it is epoch N."""
    if epoch <= 0:
        return final_path
    stem, ext = os.path.splitext(os.path.basename(final_path))
    wanted = EPOCH_NAME.format(stem=stem, epoch=epoch, ext=ext)
    listed = list(epoch_paths)
    for p in listed:
        if os.path.basename(p) == wanted:
            return p
    beside = os.path.join(os.path.dirname(final_path), wanted)
    if os.path.isfile(beside):
        return beside
    final_epoch = None
    try:
        final_epoch = int(read_header(final_path).metadata.get("ss_epoch", ""))
    except Exception:  # not a safetensors file, or no ss_epoch
        final_epoch = None
    if final_epoch == epoch:
        return final_path
    available = sorted(
        {
            int(m.group(1))
            for p in listed + _siblings(final_path)
            if (m := re.search(r"-(\d{6})\.[^.]+$", os.path.basename(p)))
        }
    )
    if final_epoch:
        available.append(final_epoch)
    have = ", ".join(str(e) for e in available) or "none besides the final file"
    raise ValidationError(
        f"No epoch {epoch} file for {os.path.basename(final_path)} (looked for {wanted}); epochs saved: "
        f"{have}. Set epoch to 0 for the final file, or save every epoch when training."
    )


def _siblings(final_path: str) -> list[str]:
    stem, _ext = os.path.splitext(os.path.basename(final_path))
    folder = os.path.dirname(final_path) or "."
    try:
        return [os.path.join(folder, n) for n in os.listdir(folder) if n.startswith(stem + "-")]
    except OSError:
        return []
