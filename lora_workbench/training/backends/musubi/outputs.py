"""What ComfyUI loads from a musubi-tuner run: per family, the LoRA as musubi saved it ("as_trained") or a
converted copy ("convert"), why, and the convert step's command (musubi's own converter, run in its
Python after the train step).

musubi names every LoRA module kohya-style after its own DiT (`lora_unet_<module path with _>`), and
ComfyUI maps that style onto its model's weight names (`comfy/lora.py` `model_lora_keys_unet`: for every
`diffusion_model.<path>.weight`, `lora_unet_<path with _>`). So a family loads as trained wherever musubi's
DiT has ComfyUI's module names, and needs a conversion where it has diffusers-style or split q/k/v names
that ComfyUI's model fuses; there musubi's own `*_lora_to_comfy.py` script for the family writes ComfyUI's
names (convert_lora.py --target other writes diffusers names, which only some ComfyUI models map).
Checked against ComfyUI a125cd84 by tests/integration/test_musubi_lora_keys.py (musubi's own network
modules on musubi's DiTs built on the meta device, ComfyUI's own LoRA loader).
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from pathlib import Path

from ....errors import ValidationError
from ....modelfiles.lora_keys import COMFY_SUFFIX, NAMES

AS_TRAINED, CONVERT = "as_trained", "convert"
Z_IMAGE_TO_COMFY = "src/musubi_tuner/networks/convert_z_image_lora_to_comfy.py"
HV15_TO_COMFY = "src/musubi_tuner/networks/convert_hunyuan_video_1_5_lora_to_comfy.py"


@dataclass(frozen=True)
class ComfyOutput:
    """How a family's LoRA reaches ComfyUI."""

    layout: str  # AS_TRAINED | CONVERT
    reason: str  # why, for docs and sentences
    script: str = ""  # the converter (`SCRIPT SRC DST`), relative to the musubi-tuner checkout
    elsewhere: str = ""  # where the LoRA is used when not in ComfyUI's own loader (a sentence)

    @property
    def converts(self) -> bool:
        return self.layout == CONVERT


OUTPUTS: dict[str, ComfyOutput] = {
    "wan": ComfyOutput(
        AS_TRAINED,
        "musubi's Wan DiT has the original Wan module names ComfyUI's WAN21/WAN22 models use, so ComfyUI "
        "maps every lora_unet_blocks_N_* module as saved; a convert_lora.py --target other copy breaks "
        "likeness (issue 21).",
    ),
    "qwen_image": ComfyOutput(
        AS_TRAINED,
        "musubi's Qwen-Image DiT has the module names of ComfyUI's QwenImage model "
        "(transformer_blocks.N.attn.to_q, img_mlp.net.0.proj, ...), so ComfyUI maps every module as saved.",
    ),
    "flux_kontext": ComfyOutput(
        AS_TRAINED,
        "musubi's FLUX.1 DiT has Black Forest Labs' module names (double_blocks.N.img_attn.qkv, "
        "single_blocks.N.linear1), which ComfyUI's Flux model uses, so ComfyUI maps every module as saved.",
    ),
    "flux2": ComfyOutput(
        AS_TRAINED,
        "musubi loads FLUX.2's Black Forest Labs checkpoint without renaming, as ComfyUI does, so the "
        "lora_unet_ module names are ComfyUI's own (ComfyUI a125cd84 predates FLUX.2: a newer ComfyUI "
        "is needed to load it at all).",
    ),
    "z_image": ComfyOutput(
        CONVERT,
        "musubi's Z-Image DiT has diffusers attention names (attention.to_q/to_k/to_v, to_out.0) where "
        "ComfyUI's model has one fused attention.qkv and attention.out: as saved, ComfyUI loads only the "
        "feed-forward modules. musubi's convert_z_image_lora_to_comfy.py fuses q/k/v and renames to_out, "
        "and every ComfyUI maps its lora_unet_ names; convert_lora.py --target other (zimage.md) is mapped "
        "only by ComfyUIs whose Lumina2 LoRA map knows diffusers names (not a125cd84).",
        Z_IMAGE_TO_COMFY,
    ),
    "hunyuan_video_1_5": ComfyOutput(
        CONVERT,
        "musubi's HunyuanVideo 1.5 DiT splits attention into img_attn_q/k/v and names mlp fc1/fc2 and "
        "mod linear where ComfyUI's model has a fused qkv, mlp.0/2 and mod.lin; convert_lora.py --target "
        "other keeps the split names, so musubi's own convert_hunyuan_video_1_5_lora_to_comfy.py, which "
        "fuses q/k/v and renames the rest, is the converter (hunyuan_video_1_5.md).",
        HV15_TO_COMFY,
    ),
    "framepack": ComfyOutput(
        AS_TRAINED,
        "ComfyUI has no FramePack model of its own (a125cd84 detects none in a FramePack DiT); FramePack "
        "runs in kijai's ComfyUI-FramePackWrapper, which reads musubi's LoRA layout itself, so the LoRA "
        "is kept as musubi saved it.",
        elsewhere="ComfyUI has no FramePack model: use FramePack LoRAs with kijai's ComfyUI-FramePackWrapper.",
    ),
}


def output_for(family: str) -> ComfyOutput:
    """The family's row, or a sentence naming the families musubi-tuner trains here."""
    try:
        return OUTPUTS[family]
    except KeyError:
        raise ValidationError(
            f"No ComfyUI output rule for model family {family!r}; musubi-tuner families: "
            f"{', '.join(OUTPUTS)}."
        ) from None


def comfy_file_name(output_name: str, family: str) -> str:
    """The file ComfyUI loads: the trained file, or `<name>_comfy.safetensors` beside it when converted
    (the trained file is kept: musubi resumes and merges from its own layout)."""
    suffix = COMFY_SUFFIX if output_for(family).converts else ""
    return f"{output_name}{suffix}.safetensors"


def convert_args(family: str, src: str, dst: str) -> tuple[str, ...]:
    """The convert step's argv after the python: the converter script (relative to the checkout, the
    step's cwd) and its file arguments; () for a family loaded as trained."""
    out = output_for(family)
    return (out.script, src, dst) if out.converts else ()


def convert_hint(family: str, lora_path: str) -> str:
    """For a LoRA of a family ComfyUI needs converted: the sentence naming the command that converts it
    (for a file in musubi's own layout, such as an epoch file); where ComfyUI's loader is not the place
    (FramePack), where to use it; "" for any other family."""
    out = OUTPUTS.get(family)
    if out is None or not out.converts:
        return out.elsewhere if out else ""
    src = Path(lora_path)
    dst = src.with_name(f"{src.stem}{COMFY_SUFFIX}.safetensors")
    command = " ".join(shlex.quote(a) for a in ("python", *convert_args(family, str(src), str(dst))))
    return (
        f"A {NAMES.get(family, family)} LoRA in musubi-tuner's own layout needs converting first: in the "
        f"musubi-tuner checkout run `{command}` and load {dst.name} (Kohya LoRA Train converts the final "
        "file itself)."
    )
