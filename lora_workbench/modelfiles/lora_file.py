"""Inspect a LoRA file without loading it: which model family it was trained for, whether it carries
text-encoder weights, and its trigger words; the family of a loaded ComfyUI model to compare it
with; and the key renames that make an sd-scripts LoRA one ComfyUI's loader fully understands.
LoRAs from both trainers: sd-scripts' and musubi-tuner's (`lora_unet_<module>` as trained, or
`diffusion_model.<module>.lora_A` after musubi's convert_lora.py --target other), by their metadata
(modelspec.architecture, ss_base_model_version) or, without it, their module names and widths.

Everything comes from the safetensors header (tensor names, shapes, kohya `ss_*` / `modelspec.*`
metadata), so a check costs one small read and needs neither torch nor ComfyUI.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from ..errors import ValidationError
from . import families, lora_keys
from .safetensors_header import SafetensorsHeader, read_header

# Families a LoRA or a model can belong to (families.FAMILY_IDS); "unknown" never blocks loading.
SD1, SD2, SDXL, SD3, FLUX, CHROMA = "sd1", "sd2", "sdxl", "sd3", "flux", "chroma"
LUMINA2, HUNYUAN_IMAGE, ANIMA, UNKNOWN = "lumina2", "hunyuan_image", "anima", "unknown"
QWEN_IMAGE, WAN, Z_IMAGE, FLUX2 = "qwen_image", "wan", "z_image", "flux2"
FLUX_KONTEXT, HUNYUAN_VIDEO_1_5, FRAMEPACK = "flux_kontext", "hunyuan_video_1_5", "framepack"
SD1_OR_SD2 = "sd1|sd2"  # ComfyUI's SD15 latent format is shared by both
FLUX_OR_CHROMA = "flux|chroma"  # a LoRA of the shared FLUX blocks only, with no metadata to tell

FAMILY_NAMES = {f.id: f.name for f in families.FAMILY_LIST}
FAMILY_NAMES.update(lora_keys.NAMES)  # musubi-tuner's families
FAMILY_NAMES.update(
    {UNKNOWN: "an unknown model family", SD1_OR_SD2: "SD 1.x/2.x", FLUX_OR_CHROMA: "FLUX.1/Chroma"}
)

# The width of the cross-attention context (attn2 to_k/to_v input) tells the UNet families apart.
CONTEXT_DIM_FAMILY = {768: SD1, 1024: SD2, 2048: SDXL}
# The width of the (first) text encoder's hidden state, for LoRAs without UNet cross-attention keys.
TE_DIM_FAMILY = {768: SD1, 1024: SD2}

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
_FLUX_DIFFUSERS_MARKERS = ("single_transformer_blocks", "transformer.transformer_blocks")


@dataclass
class LoraInfo:
    path: str
    arch: str  # a family id, "sd1|sd2", "flux|chroma" or "unknown"
    has_te: bool  # carries text-encoder weights
    trigger_words: list[str] = field(default_factory=list)
    keys: int = 0
    rank: int | None = None
    metadata: dict[str, str] = field(default_factory=dict)
    arch_source: str = ""  # what decided `arch` (for messages): "context dim 768", "metadata", ...

    @property
    def arch_name(self) -> str:
        return family_name(self.arch)


def is_te_key(key: str) -> bool:
    return key.startswith(_TE_PREFIXES)


def _down_dim(header: SafetensorsHeader, key: str) -> int | None:
    shape = header.shape(key)
    if shape and len(shape) >= 2:
        return int(shape[1])
    return None


def _first_width(header: SafetensorsHeader, pattern: str) -> int | None:
    """The input width of the first LoRA down weight whose module name matches `pattern`."""
    rx = re.compile(pattern)
    for k in header.keys():
        if k.endswith(_DOWN_SUFFIXES) and rx.search(k):
            return _down_dim(header, k)
    return None


def _up_rows(header: SafetensorsHeader, pattern: str) -> int | None:
    """The output width of the first LoRA up weight whose module name matches `pattern`."""
    rx = re.compile(pattern)
    for k in header.keys():
        if k.endswith((".lora_up.weight", ".lora_B.weight")) and rx.search(k):
            shape = header.shape(k)
            return int(shape[0]) if shape else None
    return None


# --------------------------------------------------------------------------- one rule per family layout
_MUSUBI_IDS = tuple(f.id for f in families.FAMILY_LIST if f.trainer == "musubi-tuner")


def _musubi_family(header: SafetensorsHeader) -> tuple[str, str] | None:
    """musubi-tuner's families: its metadata first (Kontext's modules are FLUX.1 dev's), then module
    names (lora_unet_<path> as trained, diffusion_model.<path> converted) and widths."""
    meta = families.from_metadata(header.metadata)
    if meta and meta[0] in _MUSUBI_IDS:
        return meta
    keys = header.keys()
    sep = r"[._]"
    if any(re.search(rf"(^|{sep})blocks{sep}\d+{sep}(self|cross)_attn{sep}[qkvo]\.", k) for k in keys):
        return WAN, "Wan blocks (self_attn/cross_attn q, k, v, o)"
    if any(re.search(rf"transformer_blocks{sep}\d+{sep}(img|txt)_(mlp|mod)", k) for k in keys):
        return QWEN_IMAGE, "Qwen-Image transformer_blocks with img/txt mlp and mod"
    if any(re.search(r"(^lora_unet_|^diffusion_model\.)single_transformer_blocks", k) for k in keys):
        return FRAMEPACK, "HunyuanVideo's diffusers blocks under lora_unet_/diffusion_model (FramePack)"
    return _musubi_by_width(header)


def _musubi_by_width(header: SafetensorsHeader) -> tuple[str, str] | None:
    sep = r"[._]"
    width = _first_width(header, rf"double_blocks{sep}\d+{sep}img_attn{sep}(q|k|v|qkv)($|\.)")
    if width == 2048:
        return HUNYUAN_VIDEO_1_5, "double blocks of width 2048"
    if width in (4096, 6144):
        return FLUX2, f"double blocks of width {width}"
    if width == 3072 and _up_rows(header, rf"single_blocks{sep}\d+{sep}linear1") == 9 * 3072:
        return FLUX2, "single blocks' linear1 of FLUX.2 klein 4B (9 x 3072 outputs)"
    if _first_width(header, rf"layers{sep}\d+{sep}attention{sep}(to_q|qkv)") == 3840:
        return Z_IMAGE, "Next-DiT layers of width 3840"
    return None


def _dit_family(header: SafetensorsHeader) -> tuple[str, str] | None:
    """The DiT families from sd-scripts' module names (lora_unet_<module path with _>)."""
    keys = header.keys()
    if any("joint_blocks_" in k or "joint_blocks." in k for k in keys):
        return SD3, "MMDiT joint_blocks"
    # Every one of these layers takes the hidden state in: FLUX/Chroma 3072 wide, HunyuanImage 3584.
    hidden_in = r"(img|txt)_(attn[._]qkv|mod|mlp[._](0|fc1))|linear1|modulation"
    blocks = _first_width(header, rf"(double_blocks|single_blocks)[._]\d+[._]({hidden_in})")
    if blocks == 3584:
        return HUNYUAN_IMAGE, "double/single blocks of width 3584"
    if blocks == 3072:
        return _flux_or_chroma(header)
    if any(m in k for k in keys for m in _FLUX_DIFFUSERS_MARKERS):
        return FLUX, "FLUX diffusers block names"
    if any(
        re.search(r"(^|[._])(layers|context_refiner|noise_refiner)[._]\d+[._]attention[._]qkv", k)
        for k in keys
    ):
        return LUMINA2, "Next-DiT attention.qkv layers"
    if any(re.search(r"(^|[._])(blocks[._]\d+[._](self|cross)_attn[._]q_proj|llm_adapter)", k) for k in keys):
        return ANIMA, "Cosmos-style blocks (self_attn/cross_attn q_proj)"
    return None


def _flux_or_chroma(header: SafetensorsHeader) -> tuple[str, str]:
    """FLUX.1 and Chroma share the blocks; Chroma has no modulation layers, and kohya says which."""
    meta = families.from_metadata(header.metadata)
    if meta and meta[0] in (FLUX, CHROMA, FLUX_KONTEXT):
        return meta[0], f"FLUX blocks, {meta[1]}"
    if header.metadata.get("ss_model_type", "").lower() == CHROMA:
        return CHROMA, "FLUX blocks, ss_model_type=chroma"
    if any(re.search(r"(_mod[._]lin|modulation[._]lin)", k) for k in header.keys()):
        return FLUX, "FLUX blocks with modulation layers"
    return FLUX_OR_CHROMA, "FLUX blocks without modulation layers (FLUX.1 or Chroma)"


def _unet_family(header: SafetensorsHeader) -> tuple[str, str] | None:
    for k in header.keys():
        if ("attn2" in k and ("to_k" in k or "to_v" in k)) and k.endswith(_DOWN_SUFFIXES):
            dim = _down_dim(header, k)
            if dim in CONTEXT_DIM_FAMILY:
                return CONTEXT_DIM_FAMILY[dim], f"cross-attention width {dim}"
    return None


def _te_family(header: SafetensorsHeader) -> tuple[str, str] | None:
    """Text-encoder-only LoRAs: which encoders (te1/te2/te3) and how wide the first one is."""
    keys = header.keys()
    has = {p: any(k.startswith(p) for k in keys) for p in ("lora_te1_", "lora_te2_", "lora_te3_")}
    if has["lora_te3_"]:
        return (
            (SD3, "CLIP-L, CLIP-G and T5 encoders") if has["lora_te2_"] else (FLUX, "CLIP-L and T5 encoders")
        )
    if has["lora_te2_"] or any(k.startswith(("text_encoder_2.", "te2.")) for k in keys):
        return SDXL, "two text encoders"
    width = _first_width(header, r"^(lora_te_|text_encoder\.).*q_proj")
    if width in TE_DIM_FAMILY and any("text_model" in k for k in keys):
        return TE_DIM_FAMILY[width], f"text-encoder width {width}"
    if width == 2304:
        return LUMINA2, "Gemma 2 text encoder (width 2304)"
    if width == 1024 and any(k.startswith("lora_te_") and "layers_" in k for k in keys):
        return ANIMA, "Qwen3 text encoder (width 1024)"
    return None


def detect_arch(header: SafetensorsHeader) -> tuple[str, str]:
    """(family, reason) from tensor names and shapes, falling back to kohya's metadata; musubi-tuner's
    families first, by their metadata or the layouts only musubi writes (as trained or converted)."""
    for rule in (_musubi_family, lora_keys.detect, _dit_family, _unet_family, _te_family):
        found = rule(header)
        if found:
            return found
    meta = families.from_metadata(header.metadata)
    if meta:
        return meta
    if header.metadata.get("ss_v2", "").lower() == "true":
        return SD2, "ss_v2=True"
    return UNKNOWN, "no known key pattern"


def _strip_repeats(folder: str) -> str:
    """kohya folder names are `N_name`; the name part is the trigger word."""
    m = re.match(r"^\d+_(.+)$", folder)
    return (m.group(1) if m else folder).strip()


def _json(meta: dict, key: str):
    try:
        return json.loads(meta.get(key, "") or "null")
    except (ValueError, TypeError, RecursionError):  # not JSON, nested without end, a 5,000-digit number
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
    found = lora_keys.comfy_family(class_names)
    if found:
        return found
    if latent_format:
        found = families.from_comfy_latent(latent_format)
        if found:
            return found
        if latent_format == "SD15":
            return SD1_OR_SD2
    return UNKNOWN


def family_name(family: str) -> str:
    """'FLUX.1', or for a model more than one family claims ('flux|flux_kontext') 'FLUX.1 or FLUX.1 Kontext'."""
    if family in FAMILY_NAMES:
        return FAMILY_NAMES[family]
    return " or ".join(FAMILY_NAMES.get(f, f) for f in family.split("|"))


def _related(family: str) -> set[str]:
    """A family with those whose tensors it shares (FLUX.1 Kontext and FLUX.1: ComfyUI loads both as Flux)."""
    out = set()
    for f in family.split("|"):
        out.add(f)
        fam = families.FAMILIES.get(f)
        out.update(fam.refines if fam else ())
        out.update(g.id for g in families.FAMILY_LIST if f in g.refines)
    return out


def compatible(lora_arch: str, family: str) -> bool:
    """False only when both sides are known and share no family: an unknown side never blocks."""
    if UNKNOWN in (lora_arch, family):
        return True
    return bool(_related(lora_arch) & _related(family))


def check_compatible(info: LoraInfo, family: str, model_label: str = "the model") -> None:
    """Raise a ValidationError naming both sides when `info` cannot apply to a `family` model."""
    if compatible(info.arch, family):
        return
    name = os.path.basename(info.path)
    raise ValidationError(
        f"The LoRA {name} was trained for {info.arch_name} ({info.arch_source}), but {model_label} is "
        f"{family_name(family)}. Load a {info.arch_name} model, or pick a LoRA trained on "
        f"{family_name(family)}."
    )


# --------------------------------------------------------------------------- keys ComfyUI understands
# sd-scripts names HunyuanImage's layers as Tencent does; ComfyUI renames them when it loads the model
# (fc1 -> 0, fc2 -> 2, mod.linear -> mod.lin), so a LoRA's module names need the same renames.
COMFY_MODULE_RENAMES: dict[str, tuple[tuple[str, str], ...]] = {
    HUNYUAN_IMAGE: (
        (r"_(img|txt)_mlp_fc1$", r"_\1_mlp_0"),
        (r"_(img|txt)_mlp_fc2$", r"_\1_mlp_2"),
        (r"_(img|txt)_mod_linear$", r"_\1_mod_lin"),
        (r"_modulation_linear$", r"_modulation_lin"),
    ),
}
_TAILS = (".lora_down.weight", ".lora_up.weight", ".alpha", ".dora_scale", ".lora_mid.weight")


def _split(key: str) -> tuple[str, str]:
    for tail in _TAILS:
        if key.endswith(tail):
            return key[: -len(tail)], tail
    return key, ""


def _suffix_index(key_map: Mapping[str, object], generic_prefix: str) -> dict[str, str | None]:
    """underscore-joined tails of ComfyUI's generic key names -> the name (None when not unique)."""
    index: dict[str, str | None] = {}
    for name in key_map:
        if not name.startswith(generic_prefix):
            continue
        parts = name[len(generic_prefix) :].split(".")
        for i in range(len(parts)):
            tail = "_".join(parts[i:])
            index[tail] = name if tail not in index else None
    return index


def align_keys(keys: Iterable[str], key_map: Mapping[str, object], family: str) -> dict[str, str]:
    """old key -> new key for the LoRA modules ComfyUI's `key_map` does not know as they are: first the
    family's renames (COMFY_MODULE_RENAMES), then, for a kohya lora_te_/lora_unet_ module, the one
    generic ComfyUI name (text_encoders.<path> / diffusion_model.<path>) that ends with its path.
    Modules it cannot place keep their names (ComfyUI then logs them as not loaded)."""
    renames: dict[str, str] = {}
    indexes: dict[str, dict[str, str | None]] = {}
    for key in keys:
        module, tail = _split(key)
        if not tail or module in key_map:
            continue
        new = module
        for pattern, repl in COMFY_MODULE_RENAMES.get(family, ()):
            new = re.sub(pattern, repl, new)
        if new not in key_map:
            new = _generic_name(new, key_map, indexes) or new
        if new != module:
            renames[key] = new + tail
    return renames


def _generic_name(module: str, key_map, indexes) -> str | None:
    for kohya_prefix, generic in (("lora_te_", "text_encoders."), ("lora_unet_", "diffusion_model.")):
        if module.startswith(kohya_prefix):
            if generic not in indexes:
                indexes[generic] = _suffix_index(key_map, generic)
            return indexes[generic].get(module[len(kohya_prefix) :])
    return None


EPOCH_NAME = "{stem}-{epoch:06d}{ext}"  # kohya's per-epoch file name (train_util EPOCH_FILE_NAME)


def epoch_file(final_path: str, epoch: int, epoch_paths: Iterable[str] = ()) -> str:
    """The file of one epoch of a run: 0 = the final file; N = `<name>-00000N.safetensors` (from
    `epoch_paths` or beside the final file; for a final `<name>_comfy` file converted for ComfyUI, the
    converted `<name>-00000N_comfy` first), or the final file when its ss_epoch says it is epoch N."""
    if epoch <= 0:
        return final_path
    stem, ext = os.path.splitext(os.path.basename(final_path))
    names = _epoch_names(stem, epoch, ext)
    wanted = names[0]
    listed = list(epoch_paths)
    beside = [os.path.join(os.path.dirname(final_path), n) for n in names]
    found = _first_named(names, listed + [p for p in beside if os.path.isfile(p)])
    if found:
        return found
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


def _epoch_names(stem: str, epoch: int, ext: str) -> list[str]:
    """The names epoch `epoch` of a final file `stem+ext` may have, best first: kohya's; for a final
    file converted for ComfyUI (`<name>_comfy`), the converted epoch file, else the trainer's own (its
    layout is then refused with the command that converts it)."""
    names = [EPOCH_NAME.format(stem=stem, epoch=epoch, ext=ext)]
    base = stem.removesuffix(lora_keys.COMFY_SUFFIX)
    if base != stem:
        names.append(EPOCH_NAME.format(stem=base, epoch=epoch, ext=lora_keys.COMFY_SUFFIX + ext))
        names.append(EPOCH_NAME.format(stem=base, epoch=epoch, ext=ext))
    return names


def _first_named(names: list[str], paths: list[str]) -> str | None:
    """The first of `paths` named `names[0]`, else `names[1]`, ...; None if none is."""
    by_name = {os.path.basename(p): p for p in reversed(paths)}  # the first path of a name wins
    return next((by_name[n] for n in names if n in by_name), None)


def _siblings(final_path: str) -> list[str]:
    stem, _ext = os.path.splitext(os.path.basename(final_path))
    folder = os.path.dirname(final_path) or "."
    try:
        return [os.path.join(folder, n) for n in os.listdir(folder) if n.startswith(stem + "-")]
    except OSError:
        return []
