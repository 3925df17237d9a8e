"""How kohya's musubi-tuner trains a LoRA for each of its families: one recipe (`TrainingFamily`) per
family id, as sd-scripts' table does, plus what a musubi run adds: the script of each step (cache
latents, cache text-encoder outputs, train, convert), the trainer option a variant becomes (Wan's
`--task`, Qwen-Image's and FLUX.2's `--model_version`), the text encoder's fp8 option and whether
ComfyUI loads the LoRA as trained.

Facts checked against musubi-tuner 30c658c4: the parsers (`training/parser_common.py`, each
`<fam>_train_network.py`, `<fam>_cache_*.py`), `docs/<fam>.md` (recommended options, ComfyUI
downloads, blocks_to_swap limits, VRAM tables) and `wan/configs/__init__.py` (WAN_CONFIGS).
"""

from __future__ import annotations

from dataclasses import replace

from ... import families as shared_recipes
from ...families import MemoryModel, ModelFile, SampleSettings, TrainingFamily
from . import outputs

MUSUBI = "musubi-tuner"
SRC = "src/musubi_tuner"  # the scripts' folder inside the checkout

# What musubi's --timestep_sampling takes (training/parser_common.py _add_timestep_args); the
# family-specific shifts of families we do not train (ideogram4_shift, krea2_shift) are left out.
TIMESTEP_SAMPLINGS = (
    "sigma",
    "uniform",
    "sigmoid",
    "shift",
    "flux_shift",
    "flux2_shift",
    "qwen_shift",
    "logsnr",
    "qinglong_flux",
    "qinglong_qwen",
)
# trainer_base.get_optimizer builds AdamW, AdamW8bit and Adafactor itself; any other name it looks up
# in torch.optim (or a dotted module), which none of our other choices is: they would crash late.
OPTIMIZERS = ("AdamW", "AdamW8bit", "Adafactor")

_LATENTS = "cache_latents"
_TEXT = "cache_text_encoder_outputs"
_TRAIN = "train"
_BOTH = (_LATENTS, _TRAIN)
_TE = (_TEXT, _TRAIN)


def _steps(prefix: str, family_id: str) -> dict:
    """The family's scripts per step (`steps`) and its `output`: a convert step only where outputs.py,
    the one table of what ComfyUI loads, converts the LoRA."""
    steps = {
        _LATENTS: f"{prefix}_cache_latents.py",
        _TEXT: f"{prefix}_cache_text_encoder_outputs.py",
        _TRAIN: f"{prefix}_train_network.py",
    }
    row = outputs.output_for(family_id)
    if row.converts:
        steps["convert"] = row.script.removeprefix(f"{SRC}/")
    return {"steps": steps, "output": row.layout}


def _recommended(timestep_sampling: str, **own) -> dict:
    """musubi's advice: the family's timestep sampling, then what every family takes (no loss weighting,
    text-encoder outputs cached), then the family's own."""
    shared = {"weighting_scheme": "none", "cache_text_encoder_outputs": True}
    return {"recommended": {"timestep_sampling": timestep_sampling, **shared, **own}}


_CUDA_AT_IMPORT = (
    "musubi-tuner's Wan code asks CUDA for its device when it loads (wan/modules/t5.py, at the pinned "
    "commit), so on a machine without an NVIDIA GPU every step stops at once with 'Found no NVIDIA "
    "driver': train {name} on a GPU. (The pack's own CPU test puts bench/musubi_cpu_shim on PYTHONPATH "
    "and trains from a float32 DiT with mixed_precision no; that is a check, not a way to train.)"
)


# --------------------------------------------------------------------------- the extra model files
# `kind` is the modelfiles.components kind the picked file must hold; hints match the names of
# ComfyUI's repackaged downloads (Comfy-Org/*_ComfyUI*), which musubi's docs point to.
_QWEN_VAE = ModelFile(
    "vae",
    "Qwen-Image VAE",
    "vae",
    "qwen_image_vae",
    r"qwen[-_]?image.*vae",
    avoid=r"layered",
    example="qwen_image_vae.safetensors",
    steps=_BOTH,
)
_QWEN_VL = ModelFile(
    "text_encoder",
    "Qwen2.5-VL 7B text encoder",
    "text_encoders",
    "qwen2_5_vl",
    r"qwen[-_]?2[._]?5[-_]?vl",
    avoid=r"scaled|fp8",
    example="qwen_2.5_vl_7b.safetensors",
    steps=_TE,
)
_WAN_VAE = ModelFile(
    "vae",
    "Wan 2.1 VAE",
    "vae",
    "wan_vae",
    r"wan[-_]?2[._]?1.*vae|wan.*vae",
    avoid=r"2[._]?2",
    example="wan_2.1_vae.safetensors",
    steps=_BOTH,
)
_UMT5 = ModelFile(
    "t5",
    "umT5-XXL text encoder (Wan's own file)",
    "text_encoders",
    "umt5_xxl",
    r"umt5",
    avoid=r"scaled|fp8",
    example="models_t5_umt5-xxl-enc-bf16.pth",
    steps=_TE,
    widget="umt5",
)
_WAN_CLIP = ModelFile(
    "clip",
    "Wan 2.1 image encoder (open-clip XLM-RoBERTa ViT-H)",
    "clip_vision",
    "wan_clip",
    r"xlm[-_]?roberta|open[-_]?clip|clip[-_]?vision[-_]?h",
    example="models_clip_open-clip-xlm-roberta-large-vit-huge-14.pth",
    steps=_BOTH,
    widget="image_encoder",
    variants=("i2v-14B", "flf2v-14B", "i2v-14B-FC"),
)
_ZIMAGE_TE = ModelFile(
    "text_encoder",
    "Qwen3 4B text encoder",
    "text_encoders",
    "qwen3",
    r"qwen[-_]?3[-_]?4b",
    avoid=r"scaled|fp8",
    example="qwen_3_4b.safetensors",
    steps=_TE,
)
_FLUX_AE = ModelFile(
    "vae",
    "FLUX.1 autoencoder",
    "vae",
    "ae16",
    r"(^|[^a-z])ae[._]|flux.*vae|vae.*flux",
    avoid=r"flux[-_.]?2",
    example="ae.safetensors",
    steps=_BOTH,
)
_FLUX2_VAE = ModelFile(
    "vae",
    "FLUX.2 autoencoder",
    "vae",
    "flux2_vae",
    r"flux[-_.]?2.*(vae|ae)",
    example="flux2-vae.safetensors",
    steps=_BOTH,
)
_MISTRAL = ModelFile(
    "text_encoder",
    "Mistral Small 3.1 text encoder (FLUX.2 dev)",
    "text_encoders",
    "mistral3",
    r"mistral",
    avoid=r"scaled|fp8",
    example="mistral_3_small_flux2_bf16.safetensors",
    steps=_TE,
    variants=("dev",),
)
_KLEIN_4B = ModelFile(
    "text_encoder",
    "Qwen3 4B text encoder (FLUX.2 klein 4B)",
    "text_encoders",
    "qwen3",
    r"qwen[-_]?3[-_]?4b",
    avoid=r"scaled|fp8",
    example="qwen_3_4b.safetensors",
    steps=_TE,
    variants=("klein-4b", "klein-base-4b"),
)
_KLEIN_8B = ModelFile(
    "text_encoder",
    "Qwen3 8B text encoder (FLUX.2 klein 9B)",
    "text_encoders",
    "qwen3",
    r"qwen[-_]?3[-_]?8b",
    avoid=r"scaled|fp8",
    example="qwen_3_8b.safetensors",
    steps=_TE,
    variants=("klein-9b", "klein-base-9b"),
)
_KONTEXT_T5 = ModelFile(
    "text_encoder1",
    "T5-XXL text encoder",
    "text_encoders",
    "t5xxl",
    r"t5[-_.]?(v1_1[-_.]?)?xxl",
    avoid=r"scaled|umt5",
    example="t5xxl_fp16.safetensors",
    steps=_TE,
    widget="t5xxl",
)
_KONTEXT_CLIP = ModelFile(
    "text_encoder2",
    "CLIP-L text encoder",
    "text_encoders",
    "clip_l",
    r"clip[-_]?l(\b|_|\.)",
    example="clip_l.safetensors",
    steps=_TE,
    widget="clip_l",
)
_HV15_VAE = ModelFile(
    "vae",
    "HunyuanVideo 1.5 VAE",
    "vae",
    "hv15_vae",
    r"hunyuan[-_]?video[-_]?1[._]?5.*vae",
    example="hunyuanvideo15_vae_fp16.safetensors",
    steps=_BOTH,
)
_BYT5 = replace(shared_recipes._BYT5, steps=_TE)  # HunyuanImage 2.1's glyph encoder, the same file
_SIGLIP = ModelFile(
    "image_encoder",
    "SigLIP image encoder",
    "clip_vision",
    "siglip",
    r"sig[-_]?lip",
    example="sigclip_vision_patch14_384.safetensors",
    steps=_BOTH,
    widget="image_encoder",
    variants=("i2v",),
)
_HV_VAE = ModelFile(
    "vae",
    "HunyuanVideo VAE",
    "vae",
    "hunyuan_video_vae",
    r"hunyuan[-_]?video.*vae",
    avoid=r"1[._]?5",
    example="hunyuan_video_vae_bf16.safetensors",
    steps=_BOTH,
)
_LLAVA = ModelFile(
    "text_encoder1",
    "LLaVA-LLaMA-3 8B text encoder",
    "text_encoders",
    "llava_llama3",
    r"llava[-_]?llama[-_]?3",
    avoid=r"scaled|fp8",
    example="llava_llama3_fp16.safetensors",
    steps=_TE,
    widget="text_encoder",
)
_FPACK_CLIP = ModelFile(
    "text_encoder2",
    "CLIP-L text encoder",
    "text_encoders",
    "clip_l",
    r"clip[-_]?l(\b|_|\.)",
    example="clip_l.safetensors",
    steps=_TE,
    widget="clip_l",
)
_FPACK_SIGLIP = ModelFile(
    "image_encoder",
    "SigLIP image encoder (FramePack)",
    "clip_vision",
    "siglip",
    r"sig[-_]?lip",
    example="sigclip_vision_patch14_384.safetensors",
    steps=_BOTH,
    widget="image_encoder",
)

# --------------------------------------------------------------------------- variants
WAN_TASKS = {  # musubi's WAN_CONFIGS keys -> what a person calls them
    "t2v-1.3B": "Wan 2.1 T2V 1.3B",
    "t2v-14B": "Wan 2.1 T2V 14B",
    "i2v-14B": "Wan 2.1 I2V 14B",
    "t2i-14B": "Wan 2.1 T2I 14B",
    "flf2v-14B": "Wan 2.1 FLF2V 14B",
    "t2v-1.3B-FC": "Wan 2.1 Fun Control 1.3B",
    "t2v-14B-FC": "Wan 2.1 Fun Control 14B",
    "i2v-14B-FC": "Wan 2.1 Fun Control I2V 14B",
    "t2v-A14B": "Wan 2.2 T2V A14B",
    "i2v-A14B": "Wan 2.2 I2V A14B",
}
WAN_I2V = ("i2v-14B", "flf2v-14B", "i2v-14B-FC", "i2v-A14B")
QWEN_VERSIONS = {
    "original": "Qwen-Image",
    "edit": "Qwen-Image-Edit",
    "edit-2509": "Qwen-Image-Edit-2509",
    "edit-2511": "Qwen-Image-Edit-2511",
}
FLUX2_VERSIONS = {  # flux_2/flux2_utils.py FLUX2_MODEL_INFO
    "dev": "FLUX.2 dev",
    "klein-4b": "FLUX.2 klein 4B",
    "klein-base-4b": "FLUX.2 klein base 4B",
    "klein-9b": "FLUX.2 klein 9B",
    "klein-base-9b": "FLUX.2 klein base 9B",
}
HV15_TASKS = {"t2v": "HunyuanVideo 1.5 T2V", "i2v": "HunyuanVideo 1.5 I2V"}

_WAN_14B = MemoryModel(14.3, 5.7, 0.127, 4.8, 2.0, max_swap=39, swap_unit_b=0.357)
_WAN_13B = MemoryModel(1.42, 5.7, 0.127, 1.37, 0.6, max_swap=29, swap_unit_b=0.047)
_FLUX2_DEV = MemoryModel(32.0, 24.0, 0.084, 12.0, 3.5, max_swap=29, swap_unit_b=0.8)
_KLEIN_4B_MEM = MemoryModel(3.9, 4.0, 0.084, 2.0, 1.2, max_swap=13, swap_unit_b=0.15)
_KLEIN_9B_MEM = MemoryModel(9.1, 8.2, 0.084, 4.0, 2.0, max_swap=16, swap_unit_b=0.3)

# What every musubi family shares: the trainer, its samplings and optimizers, buckets always on in
# steps of 16, no text-encoder LoRA.
_COMMON = {
    "backend": MUSUBI,
    "timestep_samplings": TIMESTEP_SAMPLINGS,
    "optimizers": OPTIMIZERS,
    "bucket_step": 16,
    "always_buckets": True,
    "trains_text_encoder": False,
}

FAMILY_LIST: tuple[TrainingFamily, ...] = (
    TrainingFamily(
        "qwen_image",
        ("networks.lora_qwen_image",),
        (_QWEN_VAE, _QWEN_VL),
        SampleSettings(25, 4.0),
        MemoryModel(20.4, 8.3, 0.127, 9.2, 5.0, max_swap=58, swap_unit_b=0.34),
        **_recommended(timestep_sampling="shift", discrete_flow_shift=2.2),
        display_name="Qwen-Image",
        **_steps("qwen_image", "qwen_image"),
        variant_option="model_version",
        variant_names=QWEN_VERSIONS,
        refused_variants={
            "layered": "Qwen-Image-Layered trains on layered target images, which the pack's datasets do not "
            "have; train it with musubi-tuner directly."
        },
        te_fp8_option="fp8_vl",
        **_COMMON,
    ),
    TrainingFamily(
        "wan",
        ("networks.lora_wan",),
        (_WAN_VAE, _UMT5, _WAN_CLIP),
        SampleSettings(20, 5.0),
        _WAN_14B,
        **_recommended(timestep_sampling="shift", discrete_flow_shift=3.0),
        memory_variants={"t2v-1.3B": _WAN_13B, "t2v-1.3B-FC": _WAN_13B},
        display_name="Wan",
        **_steps("wan", "wan"),
        variant_option="task",
        variant_names=WAN_TASKS,
        refused_variants={
            "": "The Wan task cannot be read from this base model file; set task (t2v-14B, i2v-A14B, ...) to the "
            "model it is.",
            "ti2v-5B": "musubi-tuner 30c658c4 cannot train Wan 2.2 TI2V-5B (its WAN_CONFIGS has no ti2v-5B task); "
            "train a Wan 2.1 or Wan 2.2 A14B model instead.",
        },
        te_fp8_option="fp8_t5",
        video=True,
        **_COMMON,
        cpu_note=_CUDA_AT_IMPORT.format(name="Wan"),
    ),
    TrainingFamily(
        "z_image",
        ("networks.lora_zimage",),
        (_FLUX_AE, _ZIMAGE_TE),
        SampleSettings(25, 4.0),
        MemoryModel(6.15, 4.0, 0.084, 2.3, 1.5, max_swap=28, swap_unit_b=0.2),
        **_recommended(timestep_sampling="shift", discrete_flow_shift=2.0),
        display_name="Z-Image",
        # ComfyUI fuses Z-Image's attention: the LoRA is converted (outputs.py says how)
        **_steps("zimage", "z_image"),
        te_fp8_option="fp8_llm",
        **_COMMON,
    ),
    TrainingFamily(
        "flux2",
        ("networks.lora_flux_2",),
        (_FLUX2_VAE, _MISTRAL, _KLEIN_4B, _KLEIN_8B),
        SampleSettings(50, 1.0, guidance=4.0),
        _FLUX2_DEV,
        **_recommended(timestep_sampling="flux2_shift"),
        sample_variants={
            "klein-4b": SampleSettings(4, 1.0, guidance=1.0),
            "klein-9b": SampleSettings(4, 1.0, guidance=1.0),
            "klein-base-4b": SampleSettings(50, 4.0),
            "klein-base-9b": SampleSettings(50, 4.0),
        },
        memory_variants={
            "klein-4b": _KLEIN_4B_MEM,
            "klein-base-4b": _KLEIN_4B_MEM,
            "klein-9b": _KLEIN_9B_MEM,
            "klein-base-9b": _KLEIN_9B_MEM,
        },
        display_name="FLUX.2",
        **_steps("flux_2", "flux2"),
        variant_option="model_version",
        variant_names=FLUX2_VERSIONS,
        te_fp8_option="fp8_text_encoder",
        **_COMMON,
    ),
    TrainingFamily(
        "flux_kontext",
        ("networks.lora_flux",),
        (_FLUX_AE, _KONTEXT_T5, _KONTEXT_CLIP),
        SampleSettings(25, 1.0, guidance=2.5),
        MemoryModel(11.9, 4.88, 0.084, 4.79, 5.2, max_swap=35, swap_unit_b=0.31),
        **_recommended(timestep_sampling="flux_shift", guidance_scale=1.0),
        display_name="FLUX.1 Kontext",
        **_steps("flux_kontext", "flux_kontext"),
        te_fp8_option="fp8_t5",
        **_COMMON,
    ),
    TrainingFamily(
        "hunyuan_video_1_5",
        ("networks.lora_hv_1_5",),
        (_HV15_VAE, _QWEN_VL, _BYT5, _SIGLIP),
        SampleSettings(25, 6.0),
        MemoryModel(8.3, 8.5, 0.25, 3.0, 2.5, max_swap=51, swap_unit_b=0.15),
        **_recommended(timestep_sampling="shift", discrete_flow_shift=2.0),
        display_name="HunyuanVideo 1.5",
        # ComfyUI's HunyuanVideo 1.5 names its layers differently: musubi ships a converter for it
        **_steps("hv_1_5", "hunyuan_video_1_5"),
        variant_option="task",
        variant_names=HV15_TASKS,
        te_fp8_option="fp8_vl",
        video=True,
        **_COMMON,
    ),
    TrainingFamily(
        "framepack",
        ("networks.lora_framepack",),
        (_HV_VAE, _LLAVA, _FPACK_CLIP, _FPACK_SIGLIP),
        SampleSettings(25, 1.0, guidance=10.0),
        MemoryModel(13.0, 8.1, 0.25, 5.0, 3.0, max_swap=36, swap_unit_b=0.22),
        **_recommended(timestep_sampling="shift", discrete_flow_shift=3.0),
        display_name="FramePack",
        **_steps("fpack", "framepack"),
        te_fp8_option="fp8_llm",
        video=True,
        **_COMMON,
        cpu_note=_CUDA_AT_IMPORT.format(name="FramePack"),
    ),
)

FAMILIES: dict[str, TrainingFamily] = {f.id: f for f in FAMILY_LIST}

# The arguments each step adds beyond the model files, per variant: the I2V caches need --i2v (Wan:
# the first frame as control; HunyuanVideo 1.5: the image features).
VARIANT_STEP_FLAGS: dict[str, dict[str, dict[str, tuple[str, ...]]]] = {
    "wan": {task: {_LATENTS: ("--i2v",)} for task in WAN_I2V},
    "hunyuan_video_1_5": {"i2v": {_LATENTS: ("--i2v",)}},
}
# The modules and parser builders of each step (for the parser check): dotted names are looked up in
# the step's module (`cache_latents.setup_parser_common` is musubi_tuner.cache_latents' function).
_CL = "cache_latents.setup_parser_common"
_CT = "cache_text_encoder_outputs.setup_parser_common"
PARSERS: dict[str, dict[str, tuple[str, ...]]] = {
    "qwen_image": {
        _LATENTS: (_CL, "cache_latents.hv_setup_parser", "qwen_image_setup_parser"),
        _TEXT: (_CT, "qwen_image_setup_parser"),
        _TRAIN: ("setup_parser_common", "qwen_image_setup_parser"),
    },
    "wan": {
        _LATENTS: (_CL, "wan_setup_parser"),
        _TEXT: (_CT, "wan_setup_parser"),
        _TRAIN: ("setup_parser_common", "wan_setup_parser"),
    },
    "z_image": {
        _LATENTS: (_CL,),
        _TEXT: (_CT, "zimage_setup_parser"),
        _TRAIN: ("setup_parser_common", "zimage_setup_parser"),
    },
    "flux2": {
        _LATENTS: (_CL, "flux2_utils.add_model_version_args"),
        _TEXT: (_CT, "flux_2_setup_parser"),
        _TRAIN: ("setup_parser_common", "flux2_setup_parser"),
    },
    "flux_kontext": {
        _LATENTS: (_CL, "cache_latents.hv_setup_parser"),
        _TEXT: (_CT, "flux_kontext_setup_parser"),
        _TRAIN: ("setup_parser_common", "flux_kontext_setup_parser"),
    },
    "hunyuan_video_1_5": {
        _LATENTS: (_CL, "hv1_5_setup_parser"),
        _TEXT: (_CT, "hunyuan_video_1_5_setup_parser"),
        _TRAIN: ("setup_parser_common", "hv1_5_setup_parser"),
    },
    "framepack": {
        _LATENTS: (_CL, "cache_latents.hv_setup_parser", "framepack_setup_parser"),
        _TEXT: (_CT, "framepack_setup_parser"),
        _TRAIN: ("setup_parser_common", "framepack_setup_parser"),
    },
}


def get(family_id: str) -> TrainingFamily:
    try:
        return FAMILIES[family_id]
    except KeyError:
        raise KeyError(f"musubi-tuner has no recipe for model family {family_id!r}") from None
