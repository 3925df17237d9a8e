"""Detectors for the families musubi-tuner trains: Qwen-Image, Wan 2.x, Z-Image, FLUX.2, FLUX.1 Kontext,
HunyuanVideo 1.5 and FramePack, from tensor names and shapes in both spellings musubi loads (the
original/diffusers names and ComfyUI's repackaged files).

Facts from musubi-tuner 30c658c's loaders (`load_*_model`: which prefixes they strip, which ComfyUI
names their weight hooks convert; all load with strict=True, so extra scale tensors fail) and from
ComfyUI's comfy/model_detection.py (the marker tensors). Where tensors cannot tell a variant, the file
name may (families.ModelType.name_hint), and the trainer's model type decides (detect.detect_model).
"""

from __future__ import annotations

from collections.abc import Callable

from . import families
from .keyfacts import CKPT, Found, Keys

# The file to download instead of one musubi-tuner cannot load: (family, variant) -> name and place.
DOWNLOADS: dict[tuple[str, str], str] = {
    (
        "qwen_image",
        "",
    ): "qwen_image_bf16.safetensors (Comfy-Org/Qwen-Image_ComfyUI, split_files/diffusion_models)",
    ("qwen_image", "edit"): "qwen_image_edit_bf16.safetensors (Comfy-Org/Qwen-Image-Edit_ComfyUI)",
    ("qwen_image", "edit-2509"): "qwen_image_edit_2509_bf16.safetensors (Comfy-Org/Qwen-Image-Edit_ComfyUI)",
    ("qwen_image", "edit-2511"): "qwen_image_edit_2511_bf16.safetensors (Comfy-Org/Qwen-Image-Edit_ComfyUI)",
    ("wan", ""): "the fp16/bf16 file of the model from Comfy-Org/Wan_2.1_ComfyUI_repackaged or "
    "Comfy-Org/Wan_2.2_ComfyUI_Repackaged (split_files/diffusion_models)",
    ("wan", "t2v-1.3B"): "wan2.1_t2v_1.3B_bf16.safetensors (Comfy-Org/Wan_2.1_ComfyUI_repackaged)",
    ("wan", "t2v-14B"): "wan2.1_t2v_14B_bf16.safetensors (Comfy-Org/Wan_2.1_ComfyUI_repackaged)",
    (
        "wan",
        "i2v-14B",
    ): "wan2.1_i2v_720p_14B_bf16.safetensors or the 480p one (Comfy-Org/Wan_2.1_ComfyUI_repackaged)",
    (
        "wan",
        "t2v-A14B",
    ): "wan2.2_t2v_high_noise_14B_fp16.safetensors and wan2.2_t2v_low_noise_14B_fp16.safetensors "
    "(Comfy-Org/Wan_2.2_ComfyUI_Repackaged)",
    (
        "wan",
        "i2v-A14B",
    ): "wan2.2_i2v_high_noise_14B_fp16.safetensors and wan2.2_i2v_low_noise_14B_fp16.safetensors "
    "(Comfy-Org/Wan_2.2_ComfyUI_Repackaged)",
    ("z_image", ""): "the bf16 diffusion model from Comfy-Org/z_image (split_files/diffusion_models)",
    ("flux2", "dev"): "flux2-dev.safetensors (black-forest-labs/FLUX.2-dev)",
    ("flux2", "klein-4b"): "flux2-klein-4b.safetensors (black-forest-labs/FLUX.2-klein-4B)",
    ("flux2", "klein-base-4b"): "flux2-klein-base-4b.safetensors (black-forest-labs/FLUX.2-klein-base-4B)",
    ("flux2", "klein-9b"): "flux2-klein-9b.safetensors (black-forest-labs/FLUX.2-klein-9B)",
    ("flux2", "klein-base-9b"): "flux2-klein-base-9b.safetensors (black-forest-labs/FLUX.2-klein-base-9B)",
    ("flux2", ""): "flux2-dev.safetensors or flux2-klein-*.safetensors (black-forest-labs)",
    ("flux_kontext", ""): "flux1-kontext-dev.safetensors (black-forest-labs/FLUX.1-Kontext-dev)",
    ("hunyuan_video_1_5", ""): "hunyuanvideo1.5_720p_t2v_fp16.safetensors or the _i2v_ one "
    "(Comfy-Org/HunyuanVideo_1.5_repackaged, split_files/diffusion_models)",
    ("framepack", ""): "FramePackI2V_HY_bf16.safetensors (Kijai/HunyuanVideo_comfy)",
}
# Families whose musubi loader trains from fp8_e4m3fn weights as they are (wan.md's support matrix:
# with --fp8_base and without --fp8_scaled); the others need bf16/fp16 weights.
FP8_LOADABLE = ("wan",)


def download(family: str, variant: str = "") -> str:
    return DOWNLOADS.get((family, variant)) or DOWNLOADS.get((family, ""), "the bf16 file")


def _name(family: str) -> str:
    return families.get(family).name


def _prefix_unusable(found: Found, k: Keys, marker: str, allowed: tuple[str, ...]) -> None:
    """musubi's loaders strip at most `model.diffusion_model.`; other prefixes fail their strict load."""
    prefix = k.prefix(marker)
    if prefix not in allowed:
        takes = "bare names" if allowed == ("",) else "bare or model.diffusion_model. names"
        found.unusable = (
            f"its tensors sit under {prefix!r}, and musubi-tuner's {_name(found.arch)} loader reads {takes}; "
            f"use {download(found.arch, found.variant)}"
        )


# --------------------------------------------------------------------------- one detector per family
def qwen_image(k: Keys) -> Found | None:
    """Qwen-Image (and Edit): txt_norm + img_in (ComfyUI's marker), diffusers names in both spellings."""
    if not k.has("txt_norm.weight", "img_in.weight"):
        return None
    blocks = k.count("transformer_blocks", "attn.to_q.weight")
    found = Found("qwen_image", f"Qwen-Image's txt_norm and img_in ({blocks} blocks)", "original")
    if k.has("__index_timestep_zero__"):  # the flag ComfyUI writes into Edit-2511 files
        found.variant, found.how = "edit-2511", found.how + " with ComfyUI's Edit-2511 flag"
    if k.has("time_text_embed.addition_t_embedding.weight"):
        found.variant = "layered"
        found.unusable = (
            "Qwen-Image-Layered trains on layered (RGBA) image sets, which the workbench does not set up; "
            f"use {download('qwen_image')}"
        )
    _prefix_unusable(found, k, "txt_norm.weight", ("", CKPT))
    return found


# Wan models musubi-tuner does not train: their extra tensors (comfy/model_detection.py) -> what they are.
_WAN_OTHERS = (
    ("vace_patch_embedding.weight", "VACE"),
    ("control_adapter.conv.weight", "camera-control"),
    ("casual_audio_encoder.encoder.final_linear.weight", "speech-to-video (S2V)"),
    ("audio_proj.audio_proj_glob_1.layer.bias", "HuMo"),
    ("face_adapter.fuser_blocks.0.k_norm.weight", "Animate"),
)


def wan(k: Keys) -> Found | None:
    """Wan 2.1/2.2: head.modulation; patch_embedding's input channels and width give musubi's --task."""
    shape = k.shape("patch_embedding.weight")
    if not k.has("head.modulation") or len(shape) != 5:
        return None
    dim, in_dim = shape[0], shape[1]
    out_dim = (k.dim("head.head.weight", 0) or 64) // 4
    blocks = k.count("blocks", "self_attn.q.weight")
    how = f"Wan's head.modulation, width {dim}, {in_dim} input channels, {blocks} blocks"
    task = "ti2v-5B" if out_dim == 48 or dim == 3072 else _wan_task(k, dim, in_dim)
    found = Found("wan", how, task)
    _prefix_unusable(found, k, "head.modulation", ("", CKPT))
    found.unusable = _wan_refusal(k, dim, in_dim, out_dim, found.variant) or found.unusable
    return found


def _wan_task(k: Keys, dim: int, in_dim: int) -> str:
    if in_dim == 16:
        return {1536: "t2v-1.3B", 5120: "t2v-14B"}.get(dim, "")
    if in_dim == 36 and dim == 5120:
        if k.has("img_emb.emb_pos"):
            return "flf2v-14B"
        return "i2v-14B" if k.has("img_emb.proj.0.bias") else "i2v-A14B"  # Wan 2.2 I2V has no CLIP input
    return ""


def _wan_refusal(k: Keys, dim: int, in_dim: int, out_dim: int, task: str) -> str:
    for marker, what in _WAN_OTHERS:
        if k.has(marker):
            return f"it is a Wan {what} model; musubi-tuner trains the Wan text/image-to-video models here"
    if out_dim == 48 or dim == 3072:
        return (
            "musubi-tuner (30c658c) does not train Wan 2.2 TI2V 5B; train Wan 2.1 T2V 1.3B or a 14B model "
            f"instead, e.g. {download('wan', 't2v-1.3B')}"
        )
    if in_dim == 48:
        return (
            "it is a Wan Fun Control model, which trains on control videos the workbench does not set up; "
            f"use {download('wan', 't2v-14B' if dim == 5120 else 't2v-1.3B')}"
        )
    if not task:
        return f"width {dim} with {in_dim} input channels is none of the Wan models musubi-tuner trains"
    return ""


def z_image(k: Keys) -> Found | None:
    """Z-Image: Lumina 2's layout (cap_embedder) 3840 wide over Qwen3 4B features (2560), in ComfyUI's
    names (x_embedder, attention.qkv) or the diffusers/musubi ones (all_x_embedder.2-1, to_q/to_k/to_v)."""
    if k.has("all_x_embedder.2-1.weight"):
        width, spelling = k.dim("all_x_embedder.2-1.weight", 0), "diffusers"
        layers = k.count("layers", "attention.to_q.weight")
    elif k.has("cap_embedder.1.weight") and (
        k.dim("cap_embedder.1.weight", 1) == 2560 or k.dim("x_embedder.weight", 0) == 3840
    ):
        width, spelling = k.dim("x_embedder.weight", 0), "ComfyUI"
        layers = k.count("layers", "attention.qkv.weight")
    else:
        return None
    found = Found(
        "z_image", f"Z-Image's cap_embedder over Qwen3 features, {spelling} names ({layers} layers)"
    )
    if width != 3840:
        found.unusable = f"its width is {width}; musubi-tuner builds the 3840-wide Z-Image DiT"
    _prefix_unusable(found, k, "cap_embedder.1.weight", ("",))
    return found


_FLUX2_WIDTHS = {6144: "dev", 4096: "klein-9b", 3072: "klein-4b"}  # musubi's FLUX2_MODEL_INFO params


def flux2(k: Keys) -> Found | None:
    """FLUX.2 dev / klein: FLUX's blocks with the shared double/single stream modulations."""
    if k.has("double_stream_modulation_img.linear.weight"):
        return Found(
            "flux2",
            "FLUX.2 in diffusers naming (double_stream_modulation_img.linear)",
            layout="diffusers",
            unusable=f"it is in diffusers naming, which musubi-tuner cannot load; use {download('flux2')}",
        )
    if not k.has("double_stream_modulation_img.lin.weight", "img_in.weight"):
        return None
    width = k.dim("img_in.weight", 0) or 0
    blocks = f"{k.count('double_blocks', 'img_attn.qkv.weight')} double / {k.count('single_blocks', 'linear1.weight')} single"
    found = Found(
        "flux2", f"FLUX.2's stream modulations, width {width} ({blocks} blocks)", _FLUX2_WIDTHS.get(width, "")
    )
    if not found.variant:
        found.unusable = (
            f"its width is {width}, none of FLUX.2 dev (6144), klein 9B (4096) or klein 4B (3072)"
        )
    _prefix_unusable(found, k, "double_stream_modulation_img.lin.weight", ("",))
    return found


def flux_kontext(k: Keys) -> Found | None:
    """FLUX.1 Kontext has FLUX.1 dev's tensors: only the model type or the file name says Kontext."""
    if not (k.wanted == "flux_kontext" or k.name_says(families.get("flux_kontext").name_hint)):
        return None
    if not k.has("double_blocks.0.img_attn.norm.key_norm.scale", "img_in.weight"):
        return None
    if k.has_any("double_stream_modulation_img.lin.weight", "distilled_guidance_layer.norms.0.scale"):
        return None  # FLUX.2 or Chroma
    found = Found("flux_kontext", "FLUX.1 dev's double/single blocks (Kontext shares them)")
    if not k.has("guidance_in.in_layer.weight"):
        found.unusable = f"it has no guidance input (FLUX.1 schnell); Kontext is {download('flux_kontext')}"
    elif k.dim("img_in.weight", 1) != 64:
        found.unusable = f"its img_in takes {k.dim('img_in.weight', 1)} features; Kontext's takes 64"
    _prefix_unusable(found, k, "img_in.weight", ("", CKPT))
    return found


def hunyuan_video_1_5(k: Keys) -> Found | None:
    """HunyuanVideo 1.5: the token refiner with cond_type_embedding; musubi's names split img_attn q/k/v,
    ComfyUI's pack them (img_attn_qkv), and musubi's loader splits them back."""
    if not k.has("txt_in.individual_token_refiner.blocks.0.norm1.weight", "cond_type_embedding.weight"):
        return None
    spelling = "ComfyUI" if k.has("double_blocks.0.img_attn_qkv.weight") else "Tencent"
    blocks = k.count("double_blocks", "img_attn_proj.weight")
    found = Found(
        "hunyuan_video_1_5",
        f"HunyuanVideo 1.5's cond_type_embedding, {spelling} names ({blocks} blocks)",
        "t2v",
    )
    width = k.dim("img_in.proj.weight", 0)
    if width != 2048:
        found.unusable = f"its width is {width}; musubi-tuner builds the 2048-wide HunyuanVideo 1.5 DiT"
    _prefix_unusable(found, k, "cond_type_embedding.weight", ("",))
    return found


def framepack(k: Keys) -> Found | None:
    """FramePack: HunyuanVideo's packed transformer (diffusers names) with clean_x_embedder and the
    SigLIP image_projection."""
    if not k.has("clean_x_embedder.proj.weight", "image_projection.up.weight"):
        return None
    blocks = f"{k.count('transformer_blocks', 'attn.to_q.weight')} double / {k.count('single_transformer_blocks', 'attn.to_q.weight')} single"
    found = Found("framepack", f"FramePack's clean_x_embedder and image_projection ({blocks} blocks)")
    _prefix_unusable(found, k, "clean_x_embedder.proj.weight", ("",))
    return found


# Tried before sd-scripts' detectors: FLUX.2 has FLUX.1's markers, Z-Image Lumina 2's, HunyuanVideo 1.5
# HunyuanImage's token refiner; Kontext answers only when asked for (model type or file name).
DETECTORS: tuple[Callable[[Keys], Found | None], ...] = (
    flux2,
    flux_kontext,
    z_image,
    hunyuan_video_1_5,
    framepack,
    qwen_image,
    wan,
)
REFINERS: dict[str, Callable[[Keys], Found | None]] = {"flux_kontext": flux_kontext}

# Markers of models neither trainer trains here, for the refusal.
OTHER_MODELS = (
    (
        "context_embedder.token_refiner.refiner_blocks.0.attn.to_q.weight",
        "HunyuanVideo in diffusers naming (musubi-tuner trains FramePack, whose file adds clean_x_embedder "
        "and image_projection)",
    ),
)
