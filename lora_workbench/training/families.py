"""How sd-scripts trains a LoRA for each model family: one `TrainingFamily` entry per family, the way
sd-scripts gives each family a NetworkTrainer subclass (sdxl_train_network.py, flux_train_network.py ...).

An entry says which script and network modules train it, which extra model files the script needs
(with sd-scripts' option names and the ComfyUI folder each comes from), the family options sd-scripts'
docs recommend, the sample settings that make its sample images meaningful, and the numbers the
memory estimate (memory.py) works with. Facts checked against sd-scripts 48d368f: the argument
parsers (library/*_train_utils.py, *_train_network.py), docs/*_train_network.md and the
`enable_block_swap` limits of each model class.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from ..modelfiles import families as file_families


@dataclass(frozen=True)
class ModelFile:
    """One extra model file a trainer needs, passed as `--<option> <path>`."""

    option: str  # sd-scripts' option name (clip_l, t5xxl, ae, vae, gemma2, text_encoder, byt5, qwen3)
    label: str  # what a person calls it
    folder: str  # the ComfyUI folder_paths name it is picked from (text_encoders, vae)
    kind: str  # the modelfiles.components kind the file must be
    hint: str  # regex on the lower-case file name that pre-selects it
    avoid: str = ""  # regex of names never pre-selected (e.g. T5 "scaled" fp8, which sd-scripts cannot load)
    bundled_kind: str = ""  # when the base checkpoint carries this kind, the file is optional
    example: str = ""  # the name ComfyUI's and the model makers' downloads use
    # musubi-tuner: the steps that take the file (cache_latents, cache_text_encoder_outputs, train; ()
    # = train only), the model-file setting that picks it when its name differs from `option` (FLUX.1
    # Kontext's --text_encoder2 is picked in t5xxl) and the variants that need it (() = all).
    steps: tuple[str, ...] = ()
    widget: str = ""
    variants: tuple[str, ...] = ()

    @property
    def setting(self) -> str:
        """The model-file setting (widget) that picks this file."""
        return self.widget or self.option

    def needed_for(self, variant: str) -> bool:
        return not self.variants or variant in self.variants

    @property
    def required(self) -> bool:
        return not self.bundled_kind


@dataclass(frozen=True)
class SampleSettings:
    """What sd-scripts' sampler for the family needs for a meaningful image (prompt-file options)."""

    steps: int  # --s
    cfg: float | None  # --l (None: sd-scripts' own default, for the SD families)
    guidance: float | None = None  # --g: FLUX's embedded guidance
    negative: str = ""  # --n when the family needs a negative prompt (Chroma)


@dataclass(frozen=True)
class MemoryModel:
    """Sizes for the VRAM estimate (billions of parameters, GiB per megapixel of activations)."""

    dit_b: float  # the diffusion model's parameters
    te_b: float  # all text encoders together
    vae_b: float
    lora_m_per_rank: float  # LoRA parameters (millions) per unit of network_dim, default targets
    act_gib_per_mpix: float  # activations per megapixel per image with gradient checkpointing
    max_swap: int = 0  # the most --blocks_to_swap the model class accepts (0 = not supported)
    swap_unit_b: float = 0.0  # parameters moved off the GPU per swapped block
    no_checkpointing_factor: float = 8.0  # activations grow this much without gradient checkpointing
    te_cpu_option: str = ""  # the option that runs the text encoders on the CPU (HunyuanImage)
    trained_te_b: float | None = None  # the encoders a text-encoder LoRA trains (FLUX: CLIP-L only)


@dataclass(frozen=True)
class TrainingFamily:
    id: str
    network_modules: tuple[str, ...]  # the first is the default
    model_files: tuple[ModelFile, ...]
    sample: SampleSettings
    memory: MemoryModel
    recommended: dict[str, object] = field(default_factory=dict)  # family options, sd-scripts' advice
    required: dict[str, object] = field(default_factory=dict)  # options the trainer insists on
    bucket_step: int = 64  # resolution and bucket sizes must be multiples of this
    trains_text_encoder: bool = True  # the network can train a text-encoder LoRA
    fp8_option: str = "fp8_base"  # the option that loads the base model in fp8 ("" = none)
    mixed_precision: str = "bf16"  # what sd-scripts recommends on a GPU
    sample_variants: dict[str, SampleSettings] = field(default_factory=dict)  # by ModelInfo.variant
    memory_variants: dict[str, MemoryModel] = field(default_factory=dict)  # by ModelInfo.variant
    # ---- added for musubi-tuner (a run of several steps); the defaults are sd-scripts' one-step run
    backend: str = "sd-scripts"  # the trainer that owns the recipe (backends/__init__.py checks it)
    display_name: str = ""  # "" = modelfiles.families' name for the id
    steps: dict[str, str] = field(default_factory=dict)  # step name -> script under the checkout
    output: str = "as_trained"  # "as_trained" | "convert": ComfyUI loads the LoRA only once converted
    variant_option: str = ""  # the trainer option the variant becomes (Wan --task, --model_version)
    variant_names: dict[str, str] = field(default_factory=dict)  # variant -> what a person calls it
    refused_variants: dict[str, str] = field(default_factory=dict)  # variant -> why it cannot train
    te_fp8_option: str = ""  # the option running the text encoder in fp8 (fp8_t5, fp8_vl, fp8_llm, ...)
    timestep_samplings: tuple[str, ...] = ()  # what the trainer takes (() = sd-scripts' list)
    optimizers: tuple[str, ...] = ()  # the optimizers the trainer can build (() = every one we offer)
    video: bool = False  # trains on videos too (video subsets, target_frames ...)
    # timestep samplings only this family's trainer takes (Lumina 2's nextdit_shift): added to what it
    # takes, and named as this family's when another family is given one
    own_timestep_samplings: tuple[str, ...] = ()
    # Why the trainer's code for the family does not start on a machine without CUDA ("" = it does):
    # said before a CPU run, instead of the trainer's own traceback at its first step.
    cpu_note: str = ""
    # Without buckets, width and height must be multiples of this (sd-scripts asserts 64).
    fixed_size_step: int = 64
    # The trainer buckets every dataset (musubi-tuner): sizes are multiples of bucket_step, buckets or
    # not (Wan's own 832x480).
    always_buckets: bool = False

    @property
    def script(self) -> str:
        return self.steps.get("train") or file_families.get(self.id).script

    @property
    def name(self) -> str:
        return self.display_name or file_families.get(self.id).name

    def sample_for(self, variant: str = "") -> SampleSettings:
        return self.sample_variants.get(variant, self.sample)

    def memory_for(self, variant: str = "") -> MemoryModel:
        return self.memory_variants.get(variant, self.memory)


# --------------------------------------------------------------------------- the extra model files
_CLIP_L = ModelFile(
    "clip_l",
    "CLIP-L text encoder",
    "text_encoders",
    "clip_l",
    r"clip[-_]?l(\b|_|\.)",
    example="clip_l.safetensors",
)
_CLIP_G = ModelFile(
    "clip_g",
    "CLIP-G text encoder",
    "text_encoders",
    "clip_g",
    r"clip[-_]?g(\b|_|\.)",
    example="clip_g.safetensors",
)
_T5XXL = ModelFile(
    "t5xxl",
    "T5-XXL text encoder",
    "text_encoders",
    "t5xxl",
    r"t5[-_.]?(v1_1[-_.]?)?xxl",
    avoid=r"scaled",
    example="t5xxl_fp16.safetensors",
)
_FLUX_AE = ModelFile(
    "ae",
    "FLUX autoencoder",
    "vae",
    "ae16",
    r"(^|[^a-z])ae[._]|flux.*vae|vae.*flux",
    example="ae.safetensors",
)
_SD3_OPTIONAL = tuple(replace(f, bundled_kind=f.kind) for f in (_CLIP_L, _CLIP_G, _T5XXL))
_SD3_VAE = ModelFile(
    "vae", "SD3 VAE", "vae", "ae16", r"sd3.*vae|vae.*sd3", bundled_kind="ae16", example="sd3_vae.safetensors"
)
_GEMMA2 = ModelFile(
    "gemma2",
    "Gemma 2 2B text encoder",
    "text_encoders",
    "gemma2",
    r"gemma[-_]?2",
    example="gemma_2_2b_fp16.safetensors",
)
_QWEN25VL = ModelFile(
    "text_encoder",
    "Qwen2.5-VL 7B text encoder",
    "text_encoders",
    "qwen2_5_vl",
    r"qwen[-_]?2[._]?5[-_]?vl",
    example="qwen_2.5_vl_7b.safetensors",
)
_BYT5 = ModelFile(
    "byt5",
    "ByT5 glyph text encoder",
    "text_encoders",
    "byt5",
    r"byt5",
    example="byt5_small_glyphxl_fp16.safetensors",
)
_HUNYUAN_VAE = ModelFile(
    "vae",
    "HunyuanImage 2.1 VAE",
    "vae",
    "hunyuan_vae",
    r"hunyuan[-_]?image.*vae",
    example="hunyuan_image_2.1_vae_fp16.safetensors",
)
_QWEN3 = ModelFile(
    "qwen3",
    "Qwen3 0.6B text encoder",
    "text_encoders",
    "qwen3",
    r"qwen[-_]?3[-_]?0?[._]?6b",
    example="qwen_3_06b_base.safetensors",
)
_QWEN_IMAGE_VAE = ModelFile(
    "vae",
    "Qwen-Image VAE",
    "vae",
    "qwen_image_vae",
    r"qwen[-_]?image.*vae|qwen.*vae",
    example="qwen_image_vae.safetensors",
)

_SD_MODULES = ("networks.lora", "networks.dylora", "networks.lora_fa", "networks.oft")

FAMILY_LIST: tuple[TrainingFamily, ...] = (
    TrainingFamily(
        "sd1",
        _SD_MODULES,
        (),
        SampleSettings(20, None),
        MemoryModel(0.86, 0.123, 0.084, 0.56, 2.0),
        mixed_precision="fp16",
    ),
    TrainingFamily(
        "sd2",
        _SD_MODULES,
        (),
        SampleSettings(20, None),
        MemoryModel(0.87, 0.35, 0.084, 0.6, 2.0),
        mixed_precision="fp16",
    ),
    TrainingFamily(
        "sdxl",
        _SD_MODULES,
        (),
        SampleSettings(25, None),
        MemoryModel(2.57, 0.82, 0.084, 3.4, 2.5),
        bucket_step=32,
        mixed_precision="bf16",
    ),
    TrainingFamily(
        "sd3",
        ("networks.lora_sd3",),
        (*_SD3_OPTIONAL, _SD3_VAE),
        SampleSettings(28, 4.5),
        MemoryModel(8.15, 5.58, 0.084, 4.21, 1.4, max_swap=36, swap_unit_b=0.213, trained_te_b=0.82),
        recommended={
            "training_shift": 1.0,
            "weighting_scheme": "uniform",
            "t5xxl_max_token_length": 256,
            "apply_lg_attn_mask": False,
            "apply_t5_attn_mask": False,
            "cache_text_encoder_outputs": True,
        },
        bucket_step=32,
        memory_variants={  # the default above is SD3.5 large
            "medium": MemoryModel(
                2.09, 5.58, 0.084, 1.67, 0.8, max_swap=22, swap_unit_b=0.087, trained_te_b=0.82
            ),
            "3.5-medium": MemoryModel(
                2.47, 5.58, 0.084, 1.85, 0.9, max_swap=22, swap_unit_b=0.1, trained_te_b=0.82
            ),
        },
    ),
    TrainingFamily(
        "flux",
        ("networks.lora_flux", "networks.oft_flux"),
        (_CLIP_L, _T5XXL, _FLUX_AE),
        SampleSettings(20, 1.0, guidance=3.5),
        MemoryModel(11.9, 4.88, 0.084, 4.79, 2.6, max_swap=35, swap_unit_b=0.31, trained_te_b=0.123),
        recommended={
            "guidance_scale": 1.0,
            "timestep_sampling": "flux_shift",
            "model_prediction_type": "raw",
            "discrete_flow_shift": 3.1582,
            "apply_t5_attn_mask": False,
            "cache_text_encoder_outputs": True,
        },
        bucket_step=32,
        sample_variants={"schnell": SampleSettings(4, 1.0, guidance=0.0)},
    ),
    TrainingFamily(
        "chroma",
        ("networks.lora_flux",),
        (_T5XXL, _FLUX_AE),
        SampleSettings(
            26,
            4.0,
            guidance=0.0,
            negative="low quality, ugly, unfinished, out of focus, deformed, disfigure, blurry, smudged, "
            "restricted palette, flat colors",
        ),
        MemoryModel(8.9, 4.76, 0.084, 3.5, 2.6, max_swap=35, swap_unit_b=0.226),
        recommended={
            "guidance_scale": 0.0,
            "timestep_sampling": "sigmoid",
            "model_prediction_type": "raw",
            "cache_text_encoder_outputs": True,
        },
        required={"model_type": "chroma", "apply_t5_attn_mask": True},
        bucket_step=32,
        trains_text_encoder=False,  # lora_flux trains CLIP-L only, and Chroma has none
    ),
    TrainingFamily(
        "lumina2",
        ("networks.lora_lumina",),
        (_GEMMA2, _FLUX_AE),
        SampleSettings(36, 4.0),
        MemoryModel(2.61, 2.61, 0.084, 1.65, 1.1, max_swap=24, swap_unit_b=0.087),
        recommended={
            "timestep_sampling": "nextdit_shift",
            "discrete_flow_shift": 6.0,
            "model_prediction_type": "raw",
            "system_prompt": "You are an assistant designed to generate high-quality images based on user prompts.",
            "gemma2_max_token_length": 256,
            "cache_text_encoder_outputs": True,
        },
        bucket_step=16,
        own_timestep_samplings=("nextdit_shift",),  # lumina_train_util's NextDiT shift
    ),
    TrainingFamily(
        "hunyuan_image",
        ("networks.lora_hunyuan_image",),
        (_QWEN25VL, _BYT5, _HUNYUAN_VAE),
        SampleSettings(30, 3.5),
        MemoryModel(
            17.4, 8.6, 0.4, 5.88, 0.8, max_swap=37, swap_unit_b=0.424, te_cpu_option="text_encoder_cpu"
        ),
        recommended={
            "model_prediction_type": "raw",
            "discrete_flow_shift": 5.0,
            "timestep_sampling": "sigma",
            "cache_text_encoder_outputs": True,
        },
        required={"network_train_unet_only": True},
        bucket_step=32,
        trains_text_encoder=False,
        fp8_option="fp8_scaled",
    ),
    TrainingFamily(
        "anima",
        ("networks.lora_anima",),
        (_QWEN3, _QWEN_IMAGE_VAE),
        SampleSettings(30, 4.0),
        MemoryModel(2.09, 0.6, 0.127, 1.43, 0.85, max_swap=26, swap_unit_b=0.07),
        recommended={
            "timestep_sampling": "sigmoid",
            "discrete_flow_shift": 1.0,
            "vae_chunk_size": 64,
            "cache_text_encoder_outputs": True,
        },
        bucket_step=16,
        trains_text_encoder=False,  # a Qwen3 LoRA cannot train while its outputs are cached
        fp8_option="",
    ),
)

FAMILIES: dict[str, TrainingFamily] = {f.id: f for f in FAMILY_LIST}


def get(family_id: str) -> TrainingFamily:
    """The recipe of any trainer's family (sd-scripts' here, musubi-tuner's in its backend)."""
    recipe = FAMILIES.get(family_id) or _other_backends().get(family_id)
    if recipe is None:
        known = ", ".join([*FAMILIES, *_other_backends()])
        raise KeyError(f"no training recipe for model family {family_id!r}; known: {known}")
    return recipe


def _other_backends() -> dict[str, TrainingFamily]:
    from .backends.musubi.families import FAMILIES as musubi  # lazily: that table imports this module

    return musubi


def all_recipes() -> tuple[TrainingFamily, ...]:
    """Every trainer's recipes, sd-scripts' first (for the help pages and the settings table tests)."""
    return (*FAMILY_LIST, *_other_backends().values())


def family_of_option(option: str) -> list[str]:
    """The families whose recommended or required options include `option` (for wrong-family errors)."""
    return [f.id for f in FAMILY_LIST if option in f.recommended or option in f.required]
