"""The model families the pack trains, as facts about their files: names, the trainer script, and the
names other programs give them (kohya's modelspec/ss_* metadata, ComfyUI's model config classes).

sd-scripts trains the first nine, musubi-tuner the rest (Qwen-Image, Wan 2.x, Z-Image, FLUX.2, FLUX.1
Kontext, HunyuanVideo 1.5, FramePack). One record per family; detection (detect.py), LoRA inspection
(lora_file.py) and the training recipes (training/backends) all key on `Family.id`. Where a file cannot
tell a variant (Qwen-Image Edit has Qwen-Image's tensors, Wan 2.2 A14B has Wan 2.1 14B's, FLUX.1
Kontext has FLUX.1 dev's), a model type names it: `model_types` here, the trainer's model_type input.
Nothing here reads a file.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ModelType:
    """A model_type value for a variant the file cannot tell (or can, only by its file name)."""

    name: str  # the model_type value: "wan_t2v_A14B"
    variant: str  # the variant it sets: "t2v-A14B"
    refines: tuple[str, ...]  # the variants whose tensors it shares: "t2v-14B"
    name_hint: str = ""  # a regex on the lower-case file name that picks it under auto


@dataclass(frozen=True)
class Family:
    id: str
    name: str  # for sentences: "FLUX.1", "SD3"
    script: str  # the sd-scripts trainer that trains LoRAs for it
    modelspec: tuple[str, ...] = ()  # modelspec.architecture prefixes (sd-scripts' sai_model_spec)
    base_versions: tuple[str, ...] = ()  # ss_base_model_version prefixes
    comfy_configs: tuple[str, ...] = ()  # ComfyUI comfy/supported_models.py class names
    comfy_latents: tuple[str, ...] = ()  # ComfyUI latent format class names (fallback, unambiguous only)
    variant_names: tuple[tuple[str, str], ...] = ()  # detect.py's variant -> its usual name
    trainer: str = "sd-scripts"  # the trainer named in sentences ("sd-scripts" | "musubi-tuner")
    model_types: tuple[ModelType, ...] = ()  # variants a model_type (or the file name) picks
    refines: tuple[str, ...] = ()  # families whose tensors it shares (Kontext: FLUX.1 dev's)
    name_hint: str = ""  # for a family that refines another: a regex on the file name that picks it

    def display(self, variant: str = "") -> str:
        """'FLUX.1 dev', 'SD3.5 large', 'HunyuanImage 2.1': the family with its variant."""
        names = dict(self.variant_names)
        if variant in names:
            return names[variant]
        return f"{self.name} {variant}" if variant else self.name


FAMILY_LIST: tuple[Family, ...] = (
    Family(
        "sd1",
        "SD 1.x",
        "train_network.py",
        ("stable-diffusion-v1",),
        ("sd_v1",),
        ("SD15",),
    ),
    Family(
        "sd2",
        "SD 2.x",
        "train_network.py",
        ("stable-diffusion-v2",),
        ("sd_v2",),
        ("SD20", "SD21UnclipL", "SD21UnclipH"),
    ),
    Family(
        "sdxl",
        "SDXL",
        "sdxl_train_network.py",
        ("stable-diffusion-xl",),
        ("sdxl",),
        ("SDXL",),
        ("SDXL",),
    ),
    Family(
        "sd3",
        "SD3",
        "sd3_train_network.py",
        ("stable-diffusion-3",),
        ("sd3", "medium", "5-medium", "5-large"),  # sd3_train_network writes the MMDiT type here
        ("SD3",),
        ("SD3",),
        (("medium", "SD3 medium"), ("3.5-medium", "SD3.5 medium"), ("3.5-large", "SD3.5 large")),
    ),
    Family(
        "flux",
        "FLUX.1",
        "flux_train_network.py",
        ("flux-1",),
        ("flux1",),
        ("Flux", "FluxSchnell", "FluxInpaint"),
    ),
    Family(
        "chroma",
        "Chroma",
        "flux_train_network.py",
        ("chroma",),
        ("chroma",),
        ("Chroma",),
    ),
    Family(
        "lumina2",
        "Lumina Image 2.0",
        "lumina_train_network.py",
        ("lumina",),
        ("lumina",),
        ("Lumina2",),
    ),
    Family(
        "hunyuan_image",
        "HunyuanImage 2.1",
        "hunyuan_image_train_network.py",
        ("hunyuan-image",),
        ("hunyuan-image",),
        ("HunyuanImage21",),
        ("HunyuanImage21",),
        (("2.1", "HunyuanImage 2.1"),),
    ),
    Family(
        "anima",
        "Anima",
        "anima_train_network.py",
        ("anima",),
        ("anima",),
        ("Anima",),
    ),
    # musubi-tuner: modelspec.architecture and ss_base_model_version as its trainers write them
    # (utils/sai_model_spec.py ARCH_*, dataset/architectures.py *_FULL).
    Family(
        "qwen_image",
        "Qwen-Image",
        "qwen_image_train_network.py",
        ("qwen-image",),  # Qwen-Image, -Edit, -Edit-Plus, -Edit-2511, -Layered
        ("qwen_image",),
        ("QwenImage",),
        (),  # its latent format is Wan 2.1's: no answer alone
        (
            ("original", "Qwen-Image"),
            ("edit", "Qwen-Image-Edit"),
            ("edit-2509", "Qwen-Image-Edit-2509"),
            ("edit-2511", "Qwen-Image-Edit-2511"),
            ("layered", "Qwen-Image-Layered"),
        ),
        trainer="musubi-tuner",
        model_types=(  # ComfyUI's file names: qwen_image_edit[_2509|_2511]_bf16.safetensors
            ModelType("qwen_image_edit", "edit", ("original",), r"qwen[-_]?image[-_]?edit(?![-_]?25\d\d)"),
            ModelType("qwen_image_edit_2509", "edit-2509", ("original",), r"edit[-_]?2509"),
            ModelType("qwen_image_edit_2511", "edit-2511", ("original", "edit-2511"), r"edit[-_]?2511"),
        ),
    ),
    Family(
        "wan",
        "Wan 2.x",
        "wan_train_network.py",
        ("wan2.1",),
        ("wan",),
        (
            "WAN21_T2V",
            "WAN21_I2V",
            "WAN22_T2V",
            "WAN21_FunControl2V",
            "WAN21_Vace",
            "WAN21_Camera",
            "WAN22_Camera",
            "WAN22_S2V",
            "WAN21_HuMo",
            "WAN22_Animate",
        ),
        ("Wan22",),
        (
            ("t2v-1.3B", "Wan 2.1 T2V 1.3B"),
            ("t2v-14B", "Wan 2.1 T2V 14B"),
            ("i2v-14B", "Wan 2.1 I2V 14B"),
            ("flf2v-14B", "Wan 2.1 FLF2V 14B"),
            ("t2v-A14B", "Wan 2.2 T2V A14B"),
            ("i2v-A14B", "Wan 2.2 I2V A14B"),
            ("ti2v-5B", "Wan 2.2 TI2V 5B"),
        ),
        trainer="musubi-tuner",
        model_types=(  # ComfyUI's: wan2.2_t2v_high_noise_14B_fp16.safetensors, ..._low_noise_...
            ModelType(
                "wan_t2v_A14B", "t2v-A14B", ("t2v-14B",), r"wan[-_.]?2[-_.]?2|a14b|(high|low)[-_]?noise"
            ),
            ModelType("wan_i2v_A14B", "i2v-A14B", ("i2v-A14B",)),
        ),
    ),
    Family(
        "z_image",
        "Z-Image",
        "zimage_train_network.py",
        ("z-image",),
        ("z_image",),
        ("ZImage",),  # newer ComfyUI; a125cd84 has no Z-Image class
        trainer="musubi-tuner",
    ),
    Family(
        "flux2",
        "FLUX.2",
        "flux_2_train_network.py",
        ("flux.2-",),  # Flux.2-dev, Flux.2-klein-4b, Flux.2-klein-9b
        ("flux_2_",),
        ("Flux2",),  # newer ComfyUI; a125cd84 has no FLUX.2 class
        (),
        (
            ("dev", "FLUX.2 dev"),
            ("klein-4b", "FLUX.2 klein 4B"),
            ("klein-base-4b", "FLUX.2 klein base 4B"),
            ("klein-9b", "FLUX.2 klein 9B"),
            ("klein-base-9b", "FLUX.2 klein base 9B"),
        ),
        trainer="musubi-tuner",
        model_types=(  # BFL's file names: flux2-klein-base-4b.safetensors
            ModelType("flux2_klein_base_4b", "klein-base-4b", ("klein-4b",), r"klein[-_]?base"),
            ModelType("flux2_klein_base_9b", "klein-base-9b", ("klein-9b",), r"klein[-_]?base"),
        ),
    ),
    Family(
        "flux_kontext",
        "FLUX.1 Kontext",
        "flux_kontext_train_network.py",
        ("flux.1-dev",),  # musubi writes Flux.1-dev for Kontext; sd-scripts' FLUX.1 writes flux-1-dev
        ("flux_kontext",),
        (),  # ComfyUI loads Kontext as its Flux class
        trainer="musubi-tuner",
        refines=("flux",),
        name_hint=r"kontext",
    ),
    Family(
        "hunyuan_video_1_5",
        "HunyuanVideo 1.5",
        "hv_1_5_train_network.py",
        ("hunyuan-video-1.5",),
        ("hunyuan_video_1_5",),
        ("HunyuanVideo15",),  # newer ComfyUI; a125cd84 has none
        (),
        (("t2v", "HunyuanVideo 1.5 T2V"), ("i2v", "HunyuanVideo 1.5 I2V")),
        trainer="musubi-tuner",
        model_types=(ModelType("hunyuan_video_1_5_i2v", "i2v", ("t2v",), r"i2v"),),
    ),
    Family(
        "framepack",
        "FramePack",
        "fpack_train_network.py",
        ("framepack",),
        ("framepack",),
        (),  # ComfyUI has no FramePack model (custom nodes load it)
        trainer="musubi-tuner",
    ),
)

FAMILIES: dict[str, Family] = {f.id: f for f in FAMILY_LIST}
FAMILY_IDS: tuple[str, ...] = tuple(FAMILIES)
SD_UNET_IDS = ("sd1", "sd2", "sdxl")  # the UNet families (train_network.py / sdxl_train_network.py)
TRAINERS: tuple[str, ...] = tuple(dict.fromkeys(f.trainer for f in FAMILY_LIST))

# The trainer's model type input: auto, every family, then the variants a file cannot tell.
VARIANT_TYPES: dict[str, tuple[str, ModelType]] = {
    t.name: (f.id, t) for f in FAMILY_LIST for t in f.model_types
}
MODEL_TYPES: tuple[str, ...] = ("auto", *FAMILY_IDS, *VARIANT_TYPES)


def get(family_id: str) -> Family:
    """The family record; a KeyError names the known ids."""
    try:
        return FAMILIES[family_id]
    except KeyError:
        raise KeyError(f"unknown model family {family_id!r}; known: {', '.join(FAMILY_IDS)}") from None


def name(family_id: str) -> str:
    fam = FAMILIES.get(family_id)
    return fam.name if fam else family_id


def supported(trainer: str | None = None) -> str:
    """'SD 1.x, ..., and Anima': the families one trainer (or, with None, any) trains, for sentences."""
    names = [f.name for f in FAMILY_LIST if trainer in (None, f.trainer)]
    return ", ".join(names[:-1]) + " and " + names[-1] if len(names) > 1 else "".join(names)


def from_metadata(metadata: dict[str, str]) -> tuple[str, str] | None:
    """(family id, reason) from kohya's modelspec.architecture / ss_base_model_version, or None.
    The longest matching prefix wins (musubi's 'Flux.1-dev' for Kontext beside sd-scripts' 'flux-1')."""
    for field in ("modelspec.architecture", "ss_base_model_version"):
        value = str(metadata.get(field, "")).lower()
        if not value:
            continue
        matches = [
            (len(prefix), fam.id)
            for fam in FAMILY_LIST
            for prefix in (fam.modelspec if field.startswith("modelspec") else fam.base_versions)
            if value.startswith(prefix)
        ]
        if matches:
            return max(matches)[1], f"{field}={value}"
    return None


def from_comfy_config(class_names) -> str | None:
    """The family of a ComfyUI model config class (its MRO names, most specific first), or None."""
    for cls_name in class_names:
        for fam in FAMILY_LIST:
            if cls_name in fam.comfy_configs:
                return fam.id
    return None


def from_comfy_latent(latent_format: str) -> str | None:
    for fam in FAMILY_LIST:
        if latent_format in fam.comfy_latents:
            return fam.id
    return None
