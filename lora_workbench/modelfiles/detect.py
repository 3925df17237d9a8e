"""Which Stable Diffusion architecture a base checkpoint is, from its tensor names and shapes.

Reads only the safetensors header (no tensor data, no torch), so a 7 GB SDXL checkpoint costs one
small read. The answer picks sd-scripts' training script: SD1.x/SD2.x -> train_network.py, SDXL ->
sdxl_train_network.py. Pickled .ckpt files are never loaded: the user names the type instead.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from ..errors import ValidationError, WorkbenchError
from .safetensors_header import read_header

ARCHES = ("sd1", "sd2", "sdxl")
ARCH_NAMES = {"sd1": "SD 1.x", "sd2": "SD 2.x", "sdxl": "SDXL"}
SCRIPT_FOR_ARCH = {"sd1": "train_network.py", "sd2": "train_network.py", "sdxl": "sdxl_train_network.py"}

# The cross-attention key's input width is the text encoder's width: 768 (CLIP-L), 1024 (OpenCLIP-H),
# 2048 (CLIP-L + bigG concatenated).
_UNET = "model.diffusion_model."
_CONTEXT_DIM_ARCH = {768: "sd1", 1024: "sd2", 2048: "sdxl"}

# Key markers of models sd-scripts trains with other scripts (or not at all): the name for the message.
_UNSUPPORTED = (
    ("double_blocks.", "Flux"),
    ("joint_blocks.", "SD3 / SD3.5"),
    ("model.diffusion_model.double_blocks.", "Flux"),
    ("pos_embed_input.", "SD3"),
    ("model.diffusion_model.layers.", "Lumina / a DiT model"),
    ("transformer_blocks.0.attn.add_q_proj", "a DiT model (Flux/SD3 diffusers format)"),
    ("model.diffusion_model.x_embedder", "a DiT model (SD3/Flux/PixArt)"),
)


@dataclass
class ModelInfo:
    path: str
    arch: str  # "sd1" | "sd2" | "sdxl"
    how: str  # what the answer rests on, for logs and the run record

    @property
    def script(self) -> str:
        return SCRIPT_FOR_ARCH[self.arch]

    @property
    def name(self) -> str:
        return ARCH_NAMES[self.arch]


def _unsupported(path: str, what: str) -> ValidationError:
    return ValidationError(
        f"{path} looks like {what}, which this trainer does not support: it trains LoRAs for SD 1.x, "
        f"SD 2.x and SDXL checkpoints. Pick an SD 1.5, SD 2.x or SDXL checkpoint as the base model."
    )


def detect_from_keys(
    path: str, shapes: dict[str, list[int]], metadata: dict[str, str] | None = None
) -> ModelInfo:
    """Classify from tensor names -> shapes (the safetensors header)."""
    keys = list(shapes)
    if any(k.startswith("conditioner.embedders.1.") for k in keys):
        return ModelInfo(path, "sdxl", "SDXL's second text encoder (conditioner.embedders.1)")
    for k in keys:
        if ".attn2.to_k.weight" in k and k.startswith(_UNET):
            shape = shapes[k]
            if len(shape) == 2 and shape[1] in _CONTEXT_DIM_ARCH:
                arch = _CONTEXT_DIM_ARCH[shape[1]]
                return ModelInfo(path, arch, f"cross-attention width {shape[1]} ({k})")
    if any(k.startswith("cond_stage_model.model.") for k in keys):
        return ModelInfo(path, "sd2", "OpenCLIP text encoder (cond_stage_model.model)")
    if any(k.startswith("cond_stage_model.transformer.") for k in keys) and any(
        k.startswith(_UNET + "input_blocks.") for k in keys
    ):
        return ModelInfo(path, "sd1", "CLIP-L text encoder (cond_stage_model.transformer)")
    for marker, what in _UNSUPPORTED:
        if any(marker in k for k in keys):
            raise _unsupported(path, what)
    arch_meta = (metadata or {}).get("modelspec.architecture", "")
    if arch_meta:
        raise _unsupported(path, f"a '{arch_meta}' model")
    if any(k.startswith("lora_") or ".lora_down." in k for k in keys):
        raise ValidationError(
            f"{path} is a LoRA, not a base checkpoint; pick a full SD 1.5, SD 2.x or SDXL "
            f"checkpoint as the base model."
        )
    sample = ", ".join(keys[:3]) or "no tensors"
    raise ValidationError(
        f"Could not tell which model {path} is (first tensors: {sample}). If it is an SD 1.x, SD 2.x or "
        f"SDXL checkpoint, set the model type (sd1/sd2/sdxl) on the trainer instead of auto."
    )


def _detect_diffusers(path: Path) -> ModelInfo:
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
    arch = _CONTEXT_DIM_ARCH.get(dim)
    if arch is None:
        raise _unsupported(str(path), f"a diffusers model with cross_attention_dim={dim}")
    return ModelInfo(str(path), arch, f"diffusers unet/config.json cross_attention_dim {dim}")


def detect_model(path: str | os.PathLike, override: str = "auto") -> ModelInfo:
    """The architecture of the checkpoint at `path`; `override` ("sd1"/"sd2"/"sdxl") skips reading it."""
    p = Path(path)
    override = (override or "auto").lower()
    if override not in ("auto", *ARCHES):
        raise ValidationError(f"Unknown model type {override!r}; use auto, sd1, sd2 or sdxl.")
    if not p.exists():
        raise ValidationError(f"The base model {p} does not exist; pick an existing checkpoint file.")
    if override != "auto":
        return ModelInfo(str(p), override, "set by the user")
    if p.is_dir():
        return _detect_diffusers(p)
    if p.suffix.lower() in (".safetensors", ".sft"):
        try:
            header = read_header(p)
        except WorkbenchError as exc:
            raise ValidationError(f"Cannot read the base model: {exc}") from None
        shapes = {k: list(v.get("shape", [])) for k, v in header.tensors.items() if isinstance(v, dict)}
        return detect_from_keys(str(p), shapes, header.metadata)
    raise ValidationError(
        f"Cannot tell which model {p} is: {p.suffix or 'this'} files are pickles, which are not opened "
        f"to look inside. Set the model type (sd1, sd2 or sdxl) on the trainer, or convert it to .safetensors."
    )
