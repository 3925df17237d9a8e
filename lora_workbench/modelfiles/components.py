"""What kind of text encoder, VAE or image encoder a file holds (CLIP-L, T5-XXL, UMT5-XXL, Qwen2.5-VL,
the Wan VAE, SigLIP, ...), from the names and shapes in its safetensors header.

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
    "umt5_xxl": "a UMT5-XXL text encoder in Wan's own names (models_t5_umt5-xxl-enc-bf16.pth)",
    "umt5_xxl_hf": "a UMT5-XXL text encoder in Hugging Face names (ComfyUI's umt5_xxl_fp16.safetensors, "
    "which musubi-tuner's Wan loader cannot read)",
    "byt5": "a ByT5 (glyph) text encoder",
    "gemma2": "a Gemma 2 2B text encoder",
    "qwen2_5_vl": "a Qwen2.5-VL 7B text encoder",
    "qwen3": "a Qwen3 0.6B text encoder",
    "qwen3_4b": "a Qwen3 4B text encoder",
    "qwen3_8b": "a Qwen3 8B text encoder",
    "mistral3": "a Mistral Small 3 (24B) text encoder",
    "llava_llama3": "a LLaVA-LLaMA-3 8B text encoder",
    "siglip": "a SigLIP image encoder (sigclip_vision_patch14_384)",
    "clip_vision_h": "a CLIP ViT-H/14 image encoder (ComfyUI's clip_vision_h)",
    "sd_vae": "an SD 1.x/2.x/SDXL VAE (4 latent channels)",
    "ae16": "a 16-channel autoencoder (the FLUX.1 AE / SD3 VAE)",
    "flux2_vae": "the FLUX.2 autoencoder (32 latent channels)",
    "hunyuan_vae": "the HunyuanImage 2.1 VAE (64 latent channels)",
    "hunyuan_video_vae": "the HunyuanVideo VAE (3D, 16 latent channels)",
    "hv15_vae": "the HunyuanVideo 1.5 VAE (3D, 32 latent channels)",
    "qwen_image_vae": "a Wan 2.1 / Qwen-Image VAE (3D, 16 latent channels)",
    "wan22_vae": "the Wan 2.2 VAE (3D, 48 latent channels; only Wan 2.2 TI2V 5B uses it)",
}
# Other names recipes may use for a kind: the files cannot be told apart (Wan 2.1's and Qwen-Image's
# VAEs have one architecture; the FLUX.1 AE is the 16-channel AE).
KIND_ALIASES = {
    "wan_vae": "qwen_image_vae",
    "qwen25_vl": "qwen2_5_vl",
    "flux_ae": "ae16",
    "clip_vision": "clip_vision_h",
}
# A kind that also accepts its sizes: a slot of kind qwen3 takes any Qwen3; qwen3_4b takes only 4B.
KIND_PARENTS = {"qwen3_4b": "qwen3", "qwen3_8b": "qwen3"}


def canonical(kind: str) -> str:
    return KIND_ALIASES.get(kind, kind)


def satisfies(file_kind: str, slot_kind: str) -> bool:
    """Whether a file of `file_kind` fills a slot that wants `slot_kind` ("unknown" never blocks)."""
    file_kind, slot_kind = canonical(file_kind), canonical(slot_kind)
    return file_kind in ("unknown", slot_kind) or KIND_PARENTS.get(file_kind) == slot_kind


@dataclass(frozen=True)
class _Rule:
    suffix: str  # the tail of a tensor name that the kind always has
    kind: Callable[[list[int], set[str], str], str | None]  # (shape, all keys, prefix) -> kind or None


def _clip(shape, _keys, _prefix):
    return {768: "clip_l", 1280: "clip_g"}.get(shape[-1]) if len(shape) == 2 else None


_UMT5_VOCAB = 256384  # T5-XXL has 32128


def _t5(shape, keys, prefix):
    if shape == [4096, 4096]:
        # UMT5 keeps a relative position bias in every block; T5 only in the first
        umt5 = prefix + "encoder.block.1.layer.0.SelfAttention.relative_attention_bias.weight" in keys
        return "umt5_xxl_hf" if umt5 else "t5xxl"
    return "byt5" if len(shape) == 2 and shape[1] == 1472 else None


def _wan_t5(shape, keys, prefix):
    """Wan's own T5 names (blocks.N.attn.q, a pos_embedding per block), as musubi-tuner loads them."""
    return "umt5_xxl" if shape == [32, 64] and prefix + "token_embedding.weight" in keys else None


_QWEN3_WIDTHS = {1024: "qwen3", 2560: "qwen3_4b", 4096: "qwen3_8b"}


def _llm(shape, keys, prefix):
    width = shape[1] if len(shape) == 2 else None
    if prefix + "layers.0.self_attn.q_norm.weight" in keys:
        return _QWEN3_WIDTHS.get(width)
    return {2304: "gemma2", 3584: "qwen2_5_vl", 4096: "llava_llama3", 5120: "mistral3"}.get(width)


def _vae(shape, _keys, _prefix):
    if len(shape) == 5:  # the video VAEs: 3D convolutions
        return {16: "qwen_image_vae", 48: "wan22_vae"}.get(shape[1])
    if len(shape) == 4:
        return {4: "sd_vae", 16: "ae16", 32: "flux2_vae", 64: "hunyuan_vae"}.get(shape[1])
    return None


def _causal_vae(shape, _keys, _prefix):
    """HunyuanVideo's VAEs wrap each 3D conv (conv_in.conv)."""
    return {16: "hunyuan_video_vae", 32: "hv15_vae"}.get(shape[1]) if len(shape) == 5 else None


def _vision(shape, _keys, _prefix):
    return {1152: "siglip", 1280: "clip_vision_h"}.get(shape[0]) if len(shape) == 4 else None


_RULES = (
    _Rule("text_model.encoder.layers.0.self_attn.q_proj.weight", _clip),
    _Rule("encoder.block.0.layer.0.SelfAttention.q.weight", _t5),
    _Rule("blocks.0.pos_embedding.embedding.weight", _wan_t5),
    _Rule("layers.0.self_attn.q_proj.weight", _llm),
    _Rule("decoder.conv_in.weight", _vae),
    _Rule("decoder.conv1.weight", _vae),  # ComfyUI's name for the Qwen-Image/Wan VAE's first conv
    _Rule("decoder.conv_in.conv.weight", _causal_vae),
    _Rule("vision_model.embeddings.patch_embedding.weight", _vision),
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
    `*.scale_weight`; the newer "fp8mixed" ones `*.weight_scale` with `*.comfy_quant`); sd-scripts reads
    the weights without the scales, and musubi-tuner's strict loaders refuse the extra tensors."""
    tails = (".scaled_fp8", ".scale_weight", ".weight_scale", ".comfy_quant")
    return any(k == "scaled_fp8" or k.endswith(tails) for k in shapes)


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
    return KIND_NAMES.get(canonical(kind), "an unknown kind of file")
