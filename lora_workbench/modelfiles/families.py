"""The model families sd-scripts trains, as facts about their files: names, the trainer script, and the
names other programs give them (kohya's modelspec/ss_* metadata, ComfyUI's model config classes).

One record per family; detection (detect.py), LoRA inspection (lora_file.py) and the training recipes
(training/families.py) all key on `Family.id`. Nothing here reads a file.
"""

from __future__ import annotations

from dataclasses import dataclass


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
)

FAMILIES: dict[str, Family] = {f.id: f for f in FAMILY_LIST}
FAMILY_IDS: tuple[str, ...] = tuple(FAMILIES)
SD_UNET_IDS = ("sd1", "sd2", "sdxl")  # the UNet families (train_network.py / sdxl_train_network.py)


def get(family_id: str) -> Family:
    """The family record; a KeyError names the known ids."""
    try:
        return FAMILIES[family_id]
    except KeyError:
        raise KeyError(f"unknown model family {family_id!r}; known: {', '.join(FAMILY_IDS)}") from None


def name(family_id: str) -> str:
    fam = FAMILIES.get(family_id)
    return fam.name if fam else family_id


def from_metadata(metadata: dict[str, str]) -> tuple[str, str] | None:
    """(family id, reason) from kohya's modelspec.architecture / ss_base_model_version, or None."""
    for field in ("modelspec.architecture", "ss_base_model_version"):
        value = str(metadata.get(field, "")).lower()
        if not value:
            continue
        for fam in FAMILY_LIST:
            prefixes = fam.modelspec if field.startswith("modelspec") else fam.base_versions
            if value.startswith(prefixes):
                return fam.id, f"{field}={value}"
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
