"""Which model family a base model file is, from its tensor names and shapes alone.

Reads only the safetensors header (no tensor data, no torch), so a 24 GB FLUX file costs one small
read. Full checkpoints (ComfyUI's models/checkpoints) and diffusion-model-only files (models/
diffusion_models, models/unet) are both recognised, with or without the `model.diffusion_model.` /
`net.` prefixes. One small detector per family, tried in order (musubi-tuner's families first,
detect_musubi.py, then sd-scripts' here); the first that recognises its marker tensors answers. The
answer names the family (families.py), its variant (FLUX dev/schnell, SD3 medium/3.5 large, Wan's
task, FLUX.2 dev/klein), which text encoders/VAE the file already carries, and, when the family's
trainer cannot train from this file as it is, why (`unusable`), so the trainer can say so before
launch. Where the file cannot tell (FLUX.1 Kontext, Qwen-Image Edit, Wan 2.2 A14B), the model type
decides. Pickled .ckpt files are never loaded: the user names the family instead.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import ValidationError, WorkbenchError
from . import components, detect_musubi, families
from .keyfacts import CKPT as _CKPT
from .keyfacts import DIT_PREFIXES, Found, Keys
from .safetensors_header import read_header

ARCHES = families.SD_UNET_IDS  # the families the SD command builder handles (sd1, sd2, sdxl)
FAMILY_IDS = families.FAMILY_IDS
ARCH_NAMES = {f.id: f.name for f in families.FAMILY_LIST}
SCRIPT_FOR_ARCH = {f.id: f.script for f in families.FAMILY_LIST}
__all__ = ["DIT_PREFIXES", "ModelInfo", "detect_from_keys", "detect_model", "model_types"]


@dataclass
class ModelInfo:
    path: str
    arch: str  # the family id (families.FAMILY_IDS)
    how: str  # what the answer rests on, for logs and the run record
    variant: str = ""  # dev / schnell; 3.5-large; Wan's task (t2v-1.3B); "" when there is one
    layout: str = "checkpoint"  # checkpoint | diffusion_model | diffusers
    includes: tuple[str, ...] = ()  # component kinds the file carries (components.KIND_NAMES)
    unusable: str = ""  # why the family's trainer cannot train from this file as it is ("" = it can)
    warnings: list[str] = field(default_factory=list)
    fp8_weights: bool = False  # its diffusion model is stored in fp8 (musubi: --fp8_base, not --fp8_scaled)

    @property
    def family(self) -> str:
        return self.arch

    @property
    def script(self) -> str:
        return SCRIPT_FOR_ARCH[self.arch]

    @property
    def trainer(self) -> str:
        return families.get(self.arch).trainer

    @property
    def name(self) -> str:
        fam = families.FAMILIES.get(self.arch)
        return fam.display(self.variant) if fam else self.arch


# --------------------------------------------------------------------------- one detector per family
def _sd_unet(k: Keys) -> Found | None:
    """SD 1.x / 2.x / SDXL: the UNet's cross-attention width is the text encoder's width."""
    widths = {768: "sd1", 1024: "sd2", 2048: "sdxl"}
    arch, how = None, ""
    if k.any_startswith("conditioner.embedders.1."):
        arch, how = "sdxl", "SDXL's second text encoder (conditioner.embedders.1)"
    else:
        for key, shape in k.shapes.items():
            if ".attn2.to_k.weight" in key and "input_blocks." in key and len(shape) == 2:
                if shape[1] in widths:
                    arch, how = widths[shape[1]], f"cross-attention width {shape[1]} ({key})"
                    break
    if arch is None and k.any_startswith("cond_stage_model.model."):
        arch, how = "sd2", "OpenCLIP text encoder (cond_stage_model.model)"
    if (
        arch is None
        and k.any_startswith("cond_stage_model.transformer.")
        and k.has("input_blocks.0.0.weight")
    ):
        arch, how = "sd1", "CLIP-L text encoder (cond_stage_model.transformer)"
    if arch is None:
        return None
    if k.any_startswith("cond_stage_model.", "conditioner.", "first_stage_model."):
        return Found(arch, how, layout="checkpoint")
    return Found(
        arch,
        how,
        unusable=f"it holds only the {ARCH_NAMES[arch]} UNet; sd-scripts trains {ARCH_NAMES[arch]} from a "
        "full checkpoint (UNet, text encoder and VAE in one file, ComfyUI's models/checkpoints)",
    )


def _sd3(k: Keys) -> Found | None:
    if not k.has("joint_blocks.0.context_block.attn.qkv.weight"):
        return None
    if not k.has("joint_blocks.0.context_block.attn.ln_k.weight"):
        variant = "medium"
    elif k.count("joint_blocks", "x_block.attn2.qkv.weight"):
        variant = "3.5-medium"
    else:
        variant = "3.5-large"
    depth = k.count("joint_blocks", "x_block.attn.qkv.weight")
    found = Found("sd3", f"MMDiT joint_blocks ({depth} blocks)", variant)
    if k.prefix("joint_blocks.0.context_block.attn.qkv.weight") == _CKPT:
        found.layout = "checkpoint"
    else:
        found.unusable = (
            "sd3_train_network.py reads the MMDiT only from keys under model.diffusion_model. (the "
            "single-file checkpoint, like Stability AI's sd3.5_large.safetensors); this file holds the "
            "bare diffusion model"
        )
    return found


def _flux(k: Keys) -> Found | None:
    if not k.has("double_blocks.0.img_attn.norm.key_norm.scale"):
        return None
    blocks = f"{k.count('double_blocks', 'img_attn.qkv.weight')} double / {k.count('single_blocks', 'linear1.weight')} single blocks"
    if k.any_startswith(*(p + "distilled_guidance_layer." for p in DIT_PREFIXES)):
        found = Found("chroma", f"FLUX blocks with Chroma's distilled_guidance_layer ({blocks})")
        if k.has("nerf_blocks.0.norm.scale"):
            found.variant = "radiance"
            found.unusable = (
                "Chroma Radiance works in pixel space; sd-scripts trains the latent Chroma models"
            )
        return found
    if not k.has("img_in.weight"):
        return None
    variant = "dev" if k.has("guidance_in.in_layer.weight") else "schnell"
    found = Found(
        "flux",
        f"FLUX double/single blocks ({blocks}), guidance_in {'present' if variant == 'dev' else 'absent'}",
        variant,
    )
    channels = k.shape("img_in.weight")[-1:] or [64]
    if channels[0] != 64:
        found.unusable = (
            f"its img_in takes {channels[0]} input features (a FLUX.1 Fill/Canny/Depth model); "
            "sd-scripts trains the text-to-image FLUX.1 dev and schnell"
        )
    return found


def _flux_diffusers(k: Keys) -> Found | None:
    if not k.has("single_transformer_blocks.0.attn.to_k.weight", "x_embedder.weight"):
        return None
    variant = "dev" if k.has("time_text_embed.guidance_embedder.linear_1.weight") else "schnell"
    return Found("flux", "FLUX in diffusers naming (single_transformer_blocks)", variant, layout="diffusers")


def _lumina2(k: Keys) -> Found | None:
    if not k.has("cap_embedder.1.weight", "layers.0.attention.qkv.weight"):
        return None
    found = Found("lumina2", f"Next-DiT cap_embedder and {k.count('layers', 'attention.qkv.weight')} layers")
    dim = (k.shape("x_embedder.weight") or [2304])[0]
    if dim != 2304:
        found.unusable = (
            f"its width is {dim}; lumina_train_network.py builds the 2B Lumina Image 2.0 (width 2304)"
        )
    prefix = k.prefix("cap_embedder.1.weight")
    if prefix not in ("", _CKPT):
        found.unusable = (
            f"its tensors sit under {prefix!r}; sd-scripts reads bare or model.diffusion_model. keys"
        )
    return found


def _hunyuan_image(k: Keys) -> Found | None:
    if not k.has("txt_in.individual_token_refiner.blocks.0.norm1.weight"):
        return None
    patch = k.shape("img_in.proj.weight")
    if len(patch) != 4:
        return Found(
            "hunyuan_image",
            "HunyuanVideo blocks",
            "video",
            unusable="it is HunyuanVideo 1.0 (3D patches); sd-scripts trains HunyuanImage 2.1, and the "
            "workbench trains HunyuanVideo 1.5 and FramePack through musubi-tuner",
        )
    found = Found("hunyuan_image", "HunyuanImage token refiner with 2D patches", "2.1")
    if patch[1] != 64 or not k.has("byt5_in.fc1.weight"):
        found.variant = "refiner"
        found.unusable = "it is not the HunyuanImage 2.1 base DiT (64 latent channels with the ByT5 input)"
    elif k.prefix("img_in.proj.weight") != "":
        found.unusable = (
            f"its tensors sit under {k.prefix('img_in.proj.weight')!r}; hunyuan_image_train_network.py "
            "loads the original DiT file with bare keys (Tencent's hunyuanimage2.1.safetensors)"
        )
    elif not k.has("double_blocks.0.img_mlp.fc1.weight"):
        found.unusable = (
            "it uses ComfyUI's tensor names (img_mlp.0, img_mod.lin); hunyuan_image_train_network.py "
            "loads the original Tencent names (img_mlp.fc1, img_mod.linear): use Tencent's "
            "hunyuanimage2.1.safetensors"
        )
    return found


def _anima(k: Keys) -> Found | None:
    if not k.has("blocks.0.mlp.layer1.weight", "x_embedder.proj.1.weight"):
        return None
    if not k.has("llm_adapter.out_proj.weight"):
        return None  # a Cosmos Predict2 DiT without Anima's LLM adapter: refused as Cosmos below
    found = Found(
        "anima", f"Cosmos-style DiT with the LLM adapter ({k.count('blocks', 'mlp.layer1.weight')} blocks)"
    )
    width = (k.shape("x_embedder.proj.1.weight") or [2048])[0]
    if width != 2048:
        found.unusable = f"its width is {width}; anima_train_network.py builds the 2048-wide Anima DiT"
    return found


_DETECTORS: tuple[Callable[[Keys], Found | None], ...] = (
    *detect_musubi.DETECTORS,
    _sd_unet,
    _sd3,
    _flux,
    _flux_diffusers,
    _lumina2,
    _hunyuan_image,
    _anima,
)

# Markers of models neither trainer trains here (ComfyUI's model_detection knows them): for the message.
_OTHER_MODELS = (
    *detect_musubi.OTHER_MODELS,  # first: HunyuanVideo's diffusers names include SD3's marker
    (
        "transformer_blocks.0.attn.add_q_proj.weight",
        "SD3 in diffusers naming (sd-scripts needs the single-file checkpoint)",
    ),
    (
        "down_blocks.0.resnets.0.conv1.weight",
        "a diffusers-format UNet (sd-scripts needs the single-file checkpoint)",
    ),
    ("blocks.0.mlp.layer1.weight", "Cosmos Predict2 (without Anima's LLM adapter)"),
    ("caption_projection.0.linear.weight", "HiDream"),
    ("double_layers.0.attn.w1q.weight", "AuraFlow"),
    ("t_block.1.weight", "PixArt"),
    ("mlp_t5.0.weight", "Hunyuan-DiT"),
    ("clf.1.weight", "Stable Cascade"),
    ("adaln_single.emb.timestep_embedder.linear_1.bias", "LTX-Video"),
    ("t5_yproj.weight", "Mochi"),
    ("blocks.block0.blocks.0.block.attn.to_q.0.weight", "Cosmos"),
    ("time_caption_embed.timestep_embedder.linear_1.bias", "OmniGen2"),
    ("transformer.rotary_pos_emb.inv_freq", "Stable Audio"),
)

_SUPPORTED = (
    f"{families.supported('sd-scripts')} (through sd-scripts), or {families.supported('musubi-tuner')} "
    "(through musubi-tuner)"
)


def _refuse_known(path: str, k: Keys, metadata: dict[str, str]) -> None:
    """Raise a sentence for a file that is recognisably something other than a trainable base model."""
    for marker, what in _OTHER_MODELS:
        if k.has(marker):
            raise ValidationError(
                f"{path} looks like {what}, which the workbench does not train LoRAs for. Pick a base "
                f"model of one of: {_SUPPORTED}."
            )
    if any(key.startswith("lora_") or ".lora_down." in key or ".lora_A." in key for key in k.shapes):
        raise ValidationError(
            f"{path} is a LoRA, not a base model; pick the model the LoRA is to be trained on."
        )
    kinds = components.kinds_in(k.shapes)
    if kinds:
        names = " and ".join(components.kind_name(kind) for kind in kinds)
        raise ValidationError(
            f"{path} holds {names}, not a diffusion model: pick it in the trainer's text encoder/VAE "
            f"inputs and pick the diffusion model (or full checkpoint) as the base model."
        )


def _stored_fp8(k: Keys) -> bool:
    """Whether the diffusion model's weights are fp8 (any fp8 matrix; norms and biases stay wide)."""
    return any(dtype.startswith("F8") for dtype in k.dtypes.values())


def _quantized(found: Found, k: Keys) -> str:
    """Why a ComfyUI scaled/mixed fp8 file (or, for most musubi families, any fp8 file) cannot train."""
    trainer = families.get(found.arch).trainer
    if components.is_scaled_fp8(k.shapes):
        if trainer == "sd-scripts":
            return (
                "it is a ComfyUI 'scaled fp8' file, whose weights sd-scripts reads without their scales; "
                "train from the bf16/fp16 file (or a plain fp8 one)"
            )
        return (
            "it is a ComfyUI 'scaled fp8' file, whose scale tensors musubi-tuner's loader does not read; "
            f"use {detect_musubi.download(found.arch, found.variant)}"
        )
    if trainer == "musubi-tuner" and found.arch not in detect_musubi.FP8_LOADABLE and _stored_fp8(k):
        return (
            f"its weights are stored in fp8, and musubi-tuner trains {families.get(found.arch).name} from "
            f"bf16/fp16 weights (it makes its own fp8 with fp8_base); use "
            f"{detect_musubi.download(found.arch, found.variant)}"
        )
    return ""


def _bundled(found: Found, includes: tuple[str, ...]) -> str:
    """musubi-tuner loads the diffusion model alone: a file that also holds encoders fails its load."""
    if not includes or families.get(found.arch).trainer != "musubi-tuner":
        return ""
    parts = " and ".join(components.kind_name(kind) for kind in includes)
    return (
        f"it also holds {parts}; musubi-tuner loads the diffusion model alone (ComfyUI's "
        f"models/diffusion_models), so use {detect_musubi.download(found.arch, found.variant)}"
    )


def _finish(path: str, found: Found, k: Keys, metadata: dict[str, str]) -> ModelInfo:
    _name_variant(found, k)
    includes = tuple(components.kinds_in(k.shapes))
    unusable = found.unusable or _quantized(found, k) or _bundled(found, includes)
    info = ModelInfo(path, found.arch, found.how, found.variant, found.layout, includes, unusable)
    info.fp8_weights = _stored_fp8(k)
    if found.layout == "diffusion_model" and includes:
        info.layout = "checkpoint"
    meta = families.from_metadata(metadata)
    if meta and meta[0] != found.arch:
        info.warnings.append(
            f"{os.path.basename(path)} says it is {families.name(meta[0])} ({meta[1]}), but its tensors are "
            f"{info.name}'s ({found.how}); going by the tensors."
        )
    return info


def _name_variant(found: Found, k: Keys) -> None:
    """Where tensors cannot tell two variants apart (Wan 2.1 14B and 2.2 A14B), the file name may."""
    for model_type in families.get(found.arch).model_types:
        if found.variant in model_type.refines and k.name_says(model_type.name_hint):
            found.variant = model_type.variant
            found.how += f"; the file name says {families.get(found.arch).display(model_type.variant)}"
            return


def detect_from_keys(
    path: str,
    shapes: dict[str, list[int]],
    metadata: dict[str, str] | None = None,
    dtypes: dict[str, str] | None = None,
    wanted: str = "",
) -> ModelInfo:
    """Classify from tensor names -> shapes (the safetensors header); `wanted` is the family the user
    set, which lets a family that shares another's tensors (FLUX.1 Kontext) answer."""
    metadata = metadata or {}
    k = Keys(shapes, os.path.basename(path), dtypes, wanted)
    refiner = detect_musubi.REFINERS.get(wanted)
    for detector in (refiner, *_DETECTORS) if refiner else _DETECTORS:
        found = detector(k)
        if found is not None:
            return _finish(path, found, k, metadata)
    _refuse_known(path, k, metadata)
    meta = families.from_metadata(metadata)
    if meta:
        return ModelInfo(path, meta[0], f"metadata {meta[1]} (no known tensor layout)")
    sample = ", ".join(list(shapes)[:3]) or "no tensors"
    raise ValidationError(
        f"Could not tell which model {path} is (first tensors: {sample}). If it is one of {_SUPPORTED}, "
        f"set the model type on the trainer instead of auto."
    )


_PIPELINES = {  # diffusers model_index.json _class_name -> (family, usable)
    "FluxPipeline": ("flux", True),
    "StableDiffusion3Pipeline": ("sd3", False),
    "Lumina2Pipeline": ("lumina2", False),
    "Lumina2Text2ImgPipeline": ("lumina2", False),
    "QwenImagePipeline": ("qwen_image", False),
    "QwenImageEditPipeline": ("qwen_image", False),
    "QwenImageEditPlusPipeline": ("qwen_image", False),
    "WanPipeline": ("wan", False),
    "WanImageToVideoPipeline": ("wan", False),
    "ZImagePipeline": ("z_image", False),
    "Flux2Pipeline": ("flux2", False),
    "Flux2KleinPipeline": ("flux2", False),
    "FluxKontextPipeline": ("flux_kontext", False),
    "HunyuanVideo15Pipeline": ("hunyuan_video_1_5", False),
    "HunyuanVideoFramepackPipeline": ("framepack", False),
}


def _diffusers_refusal(arch: str) -> str:
    fam = families.get(arch)
    why = f"{fam.trainer} trains {fam.name} from a single .safetensors file, not a diffusers folder"
    return f"{why}; use {detect_musubi.download(arch)}" if fam.trainer == "musubi-tuner" else why


def _detect_diffusers(path: Path) -> ModelInfo:
    try:
        index = json.loads((path / "model_index.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        index = {}
    pipeline = index.get("_class_name", "") if isinstance(index, dict) else ""
    if pipeline in _PIPELINES:
        arch, usable = _PIPELINES[pipeline]
        why = "" if usable else _diffusers_refusal(arch)
        return ModelInfo(str(path), arch, f"diffusers {pipeline}", layout="diffusers", unusable=why)
    cfg = path / "unet" / "config.json"
    try:
        data = json.loads(cfg.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        raise ValidationError(
            f"{path} is a folder but not a diffusers model (no readable unet/config.json); pick a "
            f".safetensors checkpoint file."
        ) from None
    dim = data.get("cross_attention_dim")
    if isinstance(dim, list):
        dim = dim[0] if dim else None
    arch = {768: "sd1", 1024: "sd2", 2048: "sdxl"}.get(dim)
    if arch is None:
        raise ValidationError(
            f"{path} is a diffusers model with cross_attention_dim={dim}, which is none of SD 1.x, SD 2.x "
            f"or SDXL; pick a .safetensors base model file."
        )
    return ModelInfo(
        str(path), arch, f"diffusers unet/config.json cross_attention_dim {dim}", layout="diffusers"
    )


def model_types() -> tuple[str, ...]:
    """The values of the trainer's model type input: auto, every family id, then the variants a file
    cannot tell (qwen_image_edit, wan_t2v_A14B, ...: families.VARIANT_TYPES)."""
    return families.MODEL_TYPES


def detect_model(path: str | os.PathLike, override: str = "auto") -> ModelInfo:
    """The family of the base model at `path`; `override` (a model type) sets the family, or the family
    and variant, instead of what the file says (which is still read for its variant and parts)."""
    p = Path(path)
    override = (override or "auto").strip()
    if override.lower() in families.FAMILY_IDS or override.lower() == "auto":
        override = override.lower()
    if override not in model_types():
        raise ValidationError(f"Unknown model type {override!r}; use one of: {', '.join(model_types())}.")
    if not p.exists():
        raise ValidationError(f"The base model {p} does not exist; pick an existing model file.")
    if override == "auto":
        return _detect_file(p)
    if override in families.VARIANT_TYPES:
        family, model_type = families.VARIANT_TYPES[override]
        return _with_variant(_overridden(p, family), model_type)
    return _overridden(p, override)


def _overridden(p: Path, family: str) -> ModelInfo:
    """The family set by hand; what the file says (variant, bundled parts) is kept when it agrees."""
    try:
        found = _detect_file(p, wanted=family)
    except ValidationError:
        return ModelInfo(str(p), family, "set by the user")
    if found.arch == family:
        found.how = f"set by the user, and the file agrees ({found.how})"
        return found
    return ModelInfo(str(p), family, f"set by the user (the file looks like {found.name})")


def _with_variant(info: ModelInfo, model_type: families.ModelType) -> ModelInfo:
    """A model type that names a variant: it refines what the file says, or a sentence says why not."""
    fam = families.get(info.arch)
    if info.variant and info.variant not in (*model_type.refines, model_type.variant):
        info.unusable = info.unusable or (
            f"the model type {model_type.name} names {fam.display(model_type.variant)}, but the file is "
            f"{info.name} ({info.how}); set the model type to {fam.id} or auto"
        )
        return info
    info.variant = model_type.variant
    info.how = f"{info.how}; the model type says {fam.display(model_type.variant)}"
    return info


def _detect_file(p: Path, wanted: str = "") -> ModelInfo:
    if p.is_dir():
        return _detect_diffusers(p)
    if p.suffix.lower() in (".safetensors", ".sft"):
        try:
            header = read_header(p)
        except WorkbenchError as exc:
            raise ValidationError(f"Cannot read the base model: {exc}") from None
        tensors = {k: v for k, v in header.tensors.items() if isinstance(v, dict)}
        shapes = {k: list(v.get("shape", [])) for k, v in tensors.items()}
        dtypes = {k: str(v.get("dtype", "")) for k, v in tensors.items()}
        return detect_from_keys(str(p), shapes, header.metadata, dtypes, wanted)
    raise ValidationError(
        f"Cannot tell which model {p} is: {p.suffix or 'this'} files are pickles, which are not opened "
        f"to look inside. Set the model type on the trainer, or convert it to .safetensors."
    )
