"""Every training setting, declared once: type, default, bounds or choices, option group, help text,
the sd-scripts option it becomes and where that goes, the model families and devices it applies to.

Everything else is generated from this table: the KohyaLoRATrain widgets and its option nodes
(`node_layout`), the `train` CLI flags (`cli/train.py`), the per-setting checks (`validation`), the
config TOML, dataset TOML and accelerate argv (`command`), the reference in docs/settings.md
(`settings_doc`) and the run fingerprint (`train`). To add a setting, add one `Setting` here; the
unit tests then say what else it needs (a builder for `emit="custom"`, a cross-field rule, ...).

Pure data: no imports beyond the standard library and the model-family names.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from ..modelfiles import families as file_families
from .kvargs import NETWORK_TYPES

# --------------------------------------------------------------------------- vocabularies
# Model families the pack trains; a setting names the ones it applies to. sd-scripts' come from
# modelfiles/families.py; musubi-tuner's ids are fixed (backends/musubi/families.py holds their recipes,
# a unit test checks the two lists agree).
MUSUBI_FAMILIES = ("qwen_image", "wan", "z_image", "flux2", "flux_kontext", "hunyuan_video_1_5", "framepack")
FAMILIES = tuple(dict.fromkeys((*file_families.FAMILY_IDS, *MUSUBI_FAMILIES)))
SD_SCRIPTS_FAMILIES = tuple(f for f in FAMILIES if f not in MUSUBI_FAMILIES)  # what sd-scripts trains
SD_FAMILIES = file_families.SD_UNET_IDS
DIT_FAMILIES = tuple(f for f in FAMILIES if f not in SD_FAMILIES)  # the transformer families
FLOW_FAMILIES = ("flux", "chroma", "lumina2", "hunyuan_image", "anima")  # sd-scripts' flow matching
VIDEO_FAMILIES = ("wan", "hunyuan_video_1_5", "framepack")  # musubi-tuner trains on videos too
_SD = {"families": SD_SCRIPTS_FAMILIES}  # a setting musubi-tuner has no option for

# What sd-scripts accepts (library/train_util.py @ 48d368f); anything else fails late or silently.
SAMPLERS = (
    "ddim",
    "pndm",
    "lms",
    "euler",
    "euler_a",
    "heun",
    "dpm_2",
    "dpm_2_a",
    "dpmsolver",
    "dpmsolver++",
    "dpmsingle",
    "k_lms",
    "k_euler",
    "k_euler_a",
    "k_dpm_2",
    "k_dpm_2_a",
)
OPTIMIZERS = (
    "AdamW",
    "AdamW8bit",
    "PagedAdamW",
    "PagedAdamW8bit",
    "PagedAdamW32bit",
    "Lion",
    "Lion8bit",
    "PagedLion8bit",
    "SGDNesterov",
    "SGDNesterov8bit",
    "DAdaptation",
    "DAdaptAdaGrad",
    "DAdaptAdam",
    "DAdaptAdan",
    "DAdaptAdanIP",
    "DAdaptLion",
    "DAdaptSGD",
    "Adafactor",
    "Prodigy",
    "AdamWScheduleFree",
    "RAdamScheduleFree",
    "SGDScheduleFree",
)
GPU_ONLY_OPTIMIZERS = tuple(o for o in OPTIMIZERS if "8bit" in o or o.startswith("Paged"))  # bitsandbytes
SCHEDULERS = (
    "constant",
    "constant_with_warmup",
    "linear",
    "cosine",
    "cosine_with_restarts",
    "polynomial",
    "cosine_with_min_lr",
    "warmup_stable_decay",
    "inverse_sqrt",
    "adafactor",  # Adafactor's own schedule (optimizer Adafactor only)
)
MIXED_PRECISIONS = ("auto", "no", "fp16", "bf16")
SAVE_PRECISIONS = ("fp16", "bf16", "float")
SCRIPTS = ("auto", *dict.fromkeys(f.script for f in file_families.FAMILY_LIST))
MODEL_TYPES = file_families.MODEL_TYPES  # auto, every family, then the variants a file cannot tell
NETWORK_MODULES = (  # sd-scripts' networks/*.py each family's trainer accepts (training/families.py)
    "auto",
    "networks.lora",
    "networks.dylora",
    "networks.lora_fa",
    "networks.oft",
    "networks.lora_sd3",
    "networks.lora_flux",
    "networks.oft_flux",
    "networks.lora_lumina",
    "networks.lora_hunyuan_image",
    "networks.lora_anima",
    "networks.lora_qwen_image",  # musubi-tuner's
    "networks.lora_wan",
    "networks.lora_zimage",
    "networks.lora_flux_2",
    "networks.lora_hv_1_5",
    "networks.lora_framepack",
)
TIMESTEP_SAMPLINGS = ("auto", "sigma", "uniform", "sigmoid", "shift", "flux_shift", "nextdit_shift",
                      "flux2_shift", "qwen_shift", "logsnr", "qinglong_flux", "qinglong_qwen")  # fmt: skip
WEIGHTING_SCHEMES = ("auto", "none", "logit_normal", "mode", "cosmap", "sigma_sqrt")  # musubi-tuner's
WAN_TASKS = ("t2v-1.3B", "t2v-14B", "i2v-14B", "t2i-14B", "flf2v-14B", "t2v-1.3B-FC", "t2v-14B-FC",
             "i2v-14B-FC", "t2v-A14B", "i2v-A14B")  # fmt: skip
TASKS = ("auto", *WAN_TASKS, "t2v", "i2v")  # Wan's tasks, HunyuanVideo 1.5's t2v / i2v
MODEL_VERSIONS = ("auto", "original", "edit", "edit-2509", "edit-2511",  # Qwen-Image
                  "dev", "klein-4b", "klein-base-4b", "klein-9b", "klein-base-9b")  # FLUX.2  # fmt: skip
FRAME_EXTRACTIONS = ("head", "chunk", "slide", "uniform", "full")
TARGET_FRAMES_RE = re.compile(r"\d{1,4}(,\d{1,4}){0,31}")
PREDICTION_TYPES = ("auto", "raw", "additive", "sigma_scaled")
AUTO_ON_OFF = ("auto", "on", "off")
AUTO_FILE = "(auto)"  # an extra model file picked by name from ComfyUI's folder
NONE_FILE = "(none)"  # left out: the base checkpoint carries it (SD3)
LAUNCHERS = ("accelerate", "python")
DEVICES = ("auto", "gpu", "cpu")
ATTENTIONS = ("sdpa", "xformers", "none")
STEP_RULES = ("seed", "epochs")
BUCKETS = ("dataset", "on", "off")

# Checked with fullmatch: the whole value, no trailing newline slipping through a `$`.
# resume: "latest", a run folder name (<name>-NNN) or a path to one (checked against the project then).
RESUME_RE = re.compile(r"latest|[^\x00-\x1f-][^\x00-\x1f]{0,4095}")
OUTPUT_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")
CAPTION_EXT_RE = re.compile(r"\.[A-Za-z0-9_-]{1,16}")
GPU_IDS_RE = re.compile(r"all|\d+(,\d+)*")
HOST_RE = re.compile(r"[A-Za-z0-9\[][A-Za-z0-9.:\-\[\]]{0,254}")  # never a leading "-": no option injection


class Where(str, Enum):
    """Where a setting ends up."""

    CONFIG = "config"  # sd-scripts' --config_file TOML; `section` is the TOML section
    # the run's copy of the dataset TOML; `section` is general | datasets | subsets, or subset_defaults:
    # [general] only, so a value a subset sets itself (DatasetSubsetWeights' caption_options) wins
    DATASET = "dataset"
    LAUNCH = "launch"  # the `accelerate launch` argv before the script
    PROMPTS = "prompts"  # the sample prompts file
    RUN = "run"  # ours: decides how the pack runs, never passed to sd-scripts as it is


# How a CONFIG/DATASET setting is written when it is not built by hand: "value" always, "flag" as true
# when on, "if_set" when truthy, "non_default" when not at its default; "family": the default means the
# family's recommended value (training/families.py), others as given; "custom": a section builder in
# command.py writes it, usually because it depends on other settings or on the base model.
EMITS = ("value", "flag", "if_set", "non_default", "custom", "family")
# Text settings holding key=value pairs, checked per key (kvargs.py): never passed as raw text.
KV_KINDS = ("network", "optimizer")


@dataclass(frozen=True)
class Group:
    """An option group: one chainable option node (the main group is the KohyaLoRATrain node itself)."""

    key: str
    node: str  # node class name
    title: str  # display name
    help: str


GROUPS: tuple[Group, ...] = (
    Group("main", "KohyaLoRATrain", "Kohya LoRA Train", "The seed's questions and what every run needs."),
    Group(
        "network",
        "KohyaNetworkOptions",
        "Kohya Network Options",
        "What the network is and trains: LoRA, LoCon, DyLoRA or a LyCORIS algorithm, conv rank, dropout, "
        "network_args, text encoder or U-Net only, clip skip, v-parameterization.",
    ),
    Group(
        "optimizer",
        "KohyaOptimizerOptions",
        "Kohya Optimizer Options",
        "Optimizer, schedule and loss: optimizer and its args, scheduler, warmup, batch size, step count, "
        "gradient accumulation and clipping, min-SNR gamma, multires noise.",
    ),
    Group(
        "captions",
        "KohyaCaptionOptions",
        "Kohya Caption Options",
        "Captions, buckets and augmentation: caption extension, buckets, shuffle and keep tokens, caption "
        "and tag dropout, flip, color augmentation and random crop (run-wide defaults; feed this node to "
        "DatasetSubsetWeights' caption_options to write them per subset).",
    ),
    Group(
        "sampling",
        "KohyaSamplingOptions",
        "Kohya Sampling Options",
        "Sample images during training: prompts, how often, steps, showing them on the node.",
    ),
    Group(
        "saving",
        "KohyaSavingOptions",
        "Kohya Saving Options",
        "Saving and resume: per-epoch files, their precision, training states and resuming from them, "
        "continuing from a LoRA file, TensorBoard logs, linking the result into the model library.",
    ),
    Group(
        "precision",
        "KohyaPrecisionOptions",
        "Kohya Precision Options",
        "Precision and memory: mixed precision, checkpointing, latent caching, attention, workers.",
    ),
    Group(
        "launch",
        "KohyaLaunchOptions",
        "Kohya Launch Options",
        "Where and how sd-scripts runs: device, accelerate processes, GPUs and machines.",
    ),
    Group(
        "model_files",
        "KohyaModelFiles",
        "Kohya Model Files",
        "The text encoders and VAE a FLUX, SD3, Lumina, HunyuanImage or Anima base model trains with, "
        "picked from ComfyUI's text_encoders and vae folders ((auto): the obvious file by name).",
    ),
    Group(
        "family",
        "KohyaFamilyOptions",
        "Kohya Family Options",
        "The options of one model family (FLUX, SD3, Lumina, ...) and its memory savers; auto = what "
        "sd-scripts recommends for the base model's family. An option for another family is an error.",
    ),
)
GROUP = {g.key: g for g in GROUPS}


@dataclass(frozen=True)
class Setting:
    """One training setting. `name` is the widget name, the `--kebab-case` CLI flag and the key in
    run.json; never rename one (saved workflows and API prompts use it)."""

    name: str
    type: type  # bool | int | float | str
    default: Any
    group: str  # a GROUPS key
    help: str  # the widget tooltip and the --help text: what it does and what to choose
    low: float | None = None  # numbers: inclusive bounds
    high: float | None = None
    step: float | None = None  # the widget's step
    choices: tuple[str, ...] = ()
    pattern: re.Pattern | None = None  # text: must fullmatch when not empty
    pattern_hint: str = ""  # text: the end of "<name> '<value>' ..." saying what a good value is
    multiline: bool = False
    where: Where = Where.CONFIG
    section: str = ""  # the config TOML section, or the dataset TOML level
    sd_name: str | None = None  # the sd-scripts / accelerate option it becomes (None: ours only)
    emit: str = "custom"
    families: tuple[str, ...] = FAMILIES  # the model families it applies to
    comfy_folder: str = ""  # a file picked from this ComfyUI folder (folder_paths name): a dropdown
    gpu_only: bool = False  # any non-default value needs a GPU
    gpu_only_values: tuple = ()  # these values need a GPU
    gpu_why: str = ""  # why they need one (for the error sentence)
    required: bool = False  # a required widget on the main node
    flags: tuple[str, ...] = ()  # extra CLI spellings (sd-scripts' own names, short forms)
    affects_result: bool = (
        True  # False: changing it cannot change the trained file (kept out of the cache key)
    )
    example: Any = None  # a valid non-default value for the tests (None: derived)
    example_with: dict = field(default_factory=dict)  # other settings the example needs
    widget: dict = field(default_factory=dict)  # extra widget options (round, control_after_generate)
    doc_target: str = ""  # docs: where it goes, when `where`/`sd_name` do not say it all
    kv: str = ""  # a KV_KINDS name: the text is key=value pairs checked by kvargs
    doc_values: str = ""  # docs: the allowed values, when bounds/choices/pattern do not say it well

    @property
    def main(self) -> bool:
        return self.group == "main"

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")

    def example_value(self) -> Any:
        """A valid value other than the default, to exercise the setting in tests."""
        if self.example is not None:
            return self.example
        if self.type is bool:
            return not self.default
        if self.choices:
            return next(c for c in self.choices if c != self.default)
        if self.type in (int, float):
            value = self.default + (self.step or 1)
            return self.type(value if self.high is None or value <= self.high else self.default - 1)
        raise NotImplementedError(f"setting {self.name} needs an example value")


S = Setting
_LR = {"step": 0.00001, "widget": {"round": False}}

# fmt: off
SETTINGS: tuple[Setting, ...] = (
    # ------------------------------------------------------------------ main: the seed's questions
    # epochs, width and height: 0 = the dataset node's (one place per knob); the trainer says which it
    # used (command.dataset_settings_note). Saved workflows keep the values they hold.
    S("epochs", int, 0, "main", "Passes over the dataset (each image x its repeats once per epoch); "
      "0 = the dataset's epochs (or its step plan's).", low=0, high=10000, example=5, required=True,
      section="training", sd_name="max_train_epochs",
      doc_target="`max_train_steps` (epochs x steps per epoch) or `max_train_epochs` (step_rule=epochs)"),
    S("width", int, 0, "main", "Training width in pixels: a multiple of 64 (8 with buckets on); 0 = the "
      "dataset's.", low=0, high=8192, step=8, example=576, required=True, where=Where.DATASET,
      section="datasets",
      sd_name="resolution", doc_target='`resolution = [W, H]` per dataset; config `resolution = "W,H"`'),
    S("height", int, 0, "main", "Training height in pixels: a multiple of 64 (8 with buckets on); 0 = "
      "the dataset's.", low=0, high=8192, step=8, example=576, required=True, where=Where.DATASET,
      section="datasets",
      sd_name="resolution", doc_target='`resolution = [W, H]` per dataset; config `resolution = "W,H"`'),
    S("seed", int, 12345, "main", "Training seed; the same seed and inputs give the same LoRA (and "
      "reuse the earlier run instead of training again).", low=0, high=2**32 - 1, required=True,
      section="training", sd_name="seed", emit="value", widget={"control_after_generate": False}),
    # 32/16 (was the seed's 128/128): a person, pet or style fits in rank 32 on every family (kohya_ss
    # GUI presets and sd-scripts' docs use 4-32 for LoRA), at a quarter of the file size and VRAM for the
    # LoRA; alpha at half the rank keeps the update scale (alpha/dim) 0.5. Saved workflows keep theirs.
    S("network_dim", int, 32, "main", "LoRA rank: capacity and file size (32 fits one person, pet or "
      "style; 64-128 for many concepts).", low=1, high=1024, required=True, section="network",
      sd_name="network_dim", emit="value"),
    S("network_alpha", float, 16.0, "main", "Scales the update by alpha/dim (16/32 = 0.5); keep alpha <= "
      "dim.", low=0.0, high=1024.0, step=1.0, example=64.0, required=True, section="network",
      sd_name="network_alpha", emit="value"),
    S("learning_rate", float, 1e-4, "main", "Base learning rate (used where the U-Net and "
      "text-encoder rates are not set; Prodigy and DAdapt* take about 1: they find the step size).",
      low=0.0, high=100.0, example=2e-4, required=True,
      section="optimizer", sd_name="learning_rate", emit="value", **_LR),
    S("unet_lr", float, 1e-4, "main", "Learning rate of the U-Net LoRA.", low=0.0, high=100.0,
      example=2e-4, required=True, section="optimizer", sd_name="unet_lr", emit="value", **_LR, **_SD),
    S("text_encoder_lr", float, 5e-5, "main", "Learning rate of the text-encoder LoRA (not written "
      "when the text encoder is not trained).", low=0.0, high=100.0, example=1e-5, required=True,
      section="optimizer", sd_name="text_encoder_lr", **_LR),
    S("noise_offset", float, 0.0, "main", "Noise offset (0.05-0.1 helps very dark/bright images; "
      "0 = off).", low=0.0, high=1.0, step=0.01, example=0.05, required=True, section="training",
      sd_name="noise_offset", emit="value", **_SD),
    S("sample_sampler", str, "dpm_2", "main", "Sampler for the sample images (sd-scripts' names).",
      choices=SAMPLERS, required=True, section="sample", sd_name="sample_sampler", flags=("--sampler",),
      example_with={"sample_prompts": "a photo"}, **_SD),
    S("script", str, "auto", "main", "auto picks the family's trainer from the base model "
      "(train_network.py, sdxl_train_network.py, flux_train_network.py, ...); a script that does not fit "
      "the base model is an error (set model_type when the detection is wrong).", choices=SCRIPTS,
      required=True,
      where=Where.LAUNCH, doc_target="the training script run by accelerate/python",
      example="sdxl_train_network.py", example_with={"model_type": "sdxl"}, **_SD),
    S("output_name", str, "", "main", "File name of the LoRA (letters, digits, . _ -); empty = the "
      "project folder's name. Each run gets its own output/<name>-NNN folder.", pattern=OUTPUT_NAME_RE,
      pattern_hint="may only hold letters, digits, '.', '_' and '-' (at most 100, not starting with '.' or '-')",
      section="saving", sd_name="output_name", example="my_lora"),
    S("model_type", str, "auto", "main", "The base model's family: auto reads it from the file; set it "
      "for .ckpt files or a file auto does not recognise.",
      choices=MODEL_TYPES, where=Where.RUN, example="sd1",
      doc_target="picks the script and `v2`; never passed as is"),
    # ------------------------------------------------------------------ network
    S("train_text_encoder", bool, True, "network", "Train the text encoder too (off = U-Net only, "
      "smaller file).", section="network", sd_name="network_train_unet_only",
      doc_target="`network_train_unet_only = true` when off"),
    S("v_parameterization", bool, False, "network", "For SD 2.x 768-v models only.", section="model",
      sd_name="v_parameterization", emit="flag", families=("sd2",)),
    S("network_type", str, "lora", "network", "lora; locon (LoRA + conv layers, set conv_dim); dylora; "
      "lycoris_* trains a LyCORIS algorithm (LoHa, LoKr, ...) and needs the lycoris-lora package in the "
      "sd-scripts environment. SD 1.x/2.x/SDXL; the other families train lora (their own module).", choices=NETWORK_TYPES, section="network", sd_name="network_module",
      example="locon", example_with={"conv_dim": 4},
      doc_target="`network_module` (networks.lora, networks.dylora or lycoris.kohya with `algo=` in `network_args`)", families=SD_FAMILIES),
    S("conv_dim", int, 0, "network", "Rank of the conv (3x3) layers for locon, dylora and LyCORIS "
      "(0 = LyCORIS uses network_dim; locon needs it set).", low=0, high=1024, section="network",
      sd_name="network_args", example=4, example_with={"network_type": "locon"},
      doc_target="`conv_dim=N` in `network_args`", families=SD_FAMILIES),
    S("conv_alpha", float, 1.0, "network", "Alpha of the conv layers (with conv_dim).", low=0.0,
      high=1024.0, step=1.0, example=2.0, section="network", sd_name="network_args",
      example_with={"network_type": "locon", "conv_dim": 4}, doc_target="`conv_alpha=A` in `network_args`", families=SD_FAMILIES),
    S("dylora_unit", int, 1, "network", "DyLoRA: ranks trained together (network_dim must be a "
      "multiple of it).", low=1, high=1024, section="network", sd_name="network_args", example=2,
      example_with={"network_type": "dylora"},
      doc_target="`unit=N` (networks.dylora) or `block_size=N` (LyCORIS) in `network_args`", families=SD_FAMILIES),
    S("network_dropout", float, 0.0, "network", "Dropout of the network's neurons (0 = off; 0.1 "
      "is typical).", low=0.0, high=1.0, step=0.01, example=0.1, section="network",
      sd_name="network_dropout", emit="if_set"),
    S("rank_dropout", float, 0.0, "network", "Dropout of each rank (0 = off).", low=0.0, high=1.0,
      step=0.01, example=0.1, section="network", sd_name="network_args",
      doc_target="`rank_dropout=P` in `network_args`", **_SD),
    S("module_dropout", float, 0.0, "network", "Chance to skip a whole module in a step (0 = off).",
      low=0.0, high=1.0, step=0.01, example=0.1, section="network", sd_name="network_args",
      doc_target="`module_dropout=P` in `network_args`", **_SD),
    S("network_args", str, "", "network", "More network arguments as key=value pairs separated by "
      "spaces, e.g. 'loraplus_lr_ratio=16' or (LyCORIS) 'preset=attn-mlp use_tucker=True'; each key is "
      "checked against what the network type reads.", kv="network", section="network",
      sd_name="network_args", example="loraplus_lr_ratio=4", doc_target="`--network_args k=v ...`", **_SD),
    S("clip_skip", int, 0, "network", "Use the text encoder's output N layers from the end (2 for "
      "anime models; 0 = sd-scripts' default). SD 1.x/2.x only.", low=0, high=12, example=2,
      section="training", sd_name="clip_skip", emit="if_set", families=("sd1", "sd2")),
    # ------------------------------------------------------------------ optimizer and schedule
    S("optimizer", str, "AdamW", "optimizer", "sd-scripts optimizer; 8bit/Paged ones need a GPU "
      "(bitsandbytes).", choices=OPTIMIZERS, section="optimizer", sd_name="optimizer_type",
      emit="value", gpu_only_values=GPU_ONLY_OPTIMIZERS, gpu_why="it uses bitsandbytes", flags=("--optimizer-type",), example="Lion"),
    S("lr_scheduler", str, "cosine_with_restarts", "optimizer", "Learning-rate schedule.",
      choices=SCHEDULERS, section="optimizer", sd_name="lr_scheduler", emit="value",
      flags=("--scheduler",), example="cosine"),
    S("lr_warmup_steps", int, 0, "optimizer", "Warmup steps (not with the constant scheduler).",
      low=0, high=10_000_000, section="optimizer", sd_name="lr_warmup_steps", emit="value"),
    S("batch_size", int, 0, "optimizer", "Images per step; 0 = the dataset's batch size.", low=0,
      high=1024, example=2, where=Where.DATASET, section="datasets", sd_name="batch_size",
      flags=("--train-batch-size",), doc_target="`batch_size` per dataset; config `train_batch_size`"),
    S("max_train_steps", int, 0, "optimizer", "0 = from step_rule; otherwise stop after this many "
      "steps.", low=0, high=10_000_000, example=7, section="training", sd_name="max_train_steps"),
    S("step_rule", str, "seed", "optimizer", "seed: steps = steps per epoch x epochs; epochs: let "
      "sd-scripts count (exact with buckets).", choices=STEP_RULES, section="training",
      doc_target="`max_train_steps` (seed) or `max_train_epochs` (epochs)"),
    S("optimizer_args", str, "", "optimizer", "Optimizer arguments as key=value pairs separated by spaces "
      "(Prodigy: 'decouple=True weight_decay=0.01 d_coef=2 use_bias_correction=True safeguard_warmup=True'); "
      "each key is checked against the optimizer.", kv="optimizer", section="optimizer",
      sd_name="optimizer_args", example="weight_decay=0.05", doc_target="`--optimizer_args k=v ...`"),
    S("lr_warmup_ratio", float, 0.0, "optimizer", "Warmup as a share of all steps (0.05 = 5%); 0 = use "
      "lr_warmup_steps.", low=0.0, high=0.99, step=0.01, example=0.1, section="optimizer",
      sd_name="lr_warmup_steps", doc_target="`lr_warmup_steps` as a float below 1 (sd-scripts' ratio)"),
    S("lr_scheduler_num_cycles", int, 1, "optimizer", "Restarts of cosine_with_restarts.", low=1,
      high=1000, example=3, section="optimizer", sd_name="lr_scheduler_num_cycles", emit="non_default"),
    S("lr_scheduler_power", float, 1.0, "optimizer", "Power of the polynomial scheduler.", low=0.0,
      high=100.0, step=0.1, example=2.0, section="optimizer", sd_name="lr_scheduler_power",
      emit="non_default"),
    S("gradient_accumulation_steps", int, 1, "optimizer", "Add up the gradients of N batches per "
      "optimizer step (a larger effective batch; steps per epoch are divided by N).", low=1, high=1024,
      example=2, section="training", sd_name="gradient_accumulation_steps", emit="non_default"),
    S("max_grad_norm", float, 1.0, "optimizer", "Clip gradients to this norm (0 = no clipping).",
      low=0.0, high=1000.0, step=0.1, example=0.5, section="optimizer", sd_name="max_grad_norm",
      emit="non_default"),
    S("min_snr_gamma", float, 0.0, "optimizer", "Min-SNR loss weighting gamma (5 is the paper's "
      "value; 0 = off). SD 1.x/2.x/SDXL: the flow-matching trainers ignore it.", low=0.0, high=100.0, step=0.5, example=5.0, section="training",
      sd_name="min_snr_gamma", emit="if_set", families=SD_FAMILIES),
    S("scale_weight_norms", float, 0.0, "optimizer", "Scale down weights whose norm exceeds this "
      "(1.0 is a common start; 0 = off).", low=0.0, high=100.0, step=0.1, example=1.0,
      section="network", sd_name="scale_weight_norms", emit="if_set"),
    S("multires_noise_iterations", int, 0, "optimizer", "Multires noise iterations (6-10 typical; "
      "0 = off). SD 1.x/2.x/SDXL: the flow-matching trainers make their own noise.", low=0, high=64, example=6, section="training", sd_name="multires_noise_iterations",
      emit="if_set", families=SD_FAMILIES),
    S("multires_noise_discount", float, 0.3, "optimizer", "Multires noise discount (with iterations "
      "set).", low=0.0, high=1.0, step=0.05, example=0.1, section="training",
      sd_name="multires_noise_discount", example_with={"multires_noise_iterations": 6}, families=SD_FAMILIES),
    # ------------------------------------------------------------------ captions, buckets, augmentation
    S("caption_extension", str, "", "captions", "Caption file extension, e.g. .txt; empty = the "
      "dataset's.", pattern=CAPTION_EXT_RE, pattern_hint="must look like '.txt' (a dot and up to 16 letters or digits), or be empty to use the dataset's",
      where=Where.DATASET, section="general", sd_name="caption_extension", example=".caption"),
    S("buckets", str, "dataset", "captions", "Aspect-ratio buckets: as the dataset says, or force "
      "on/off.", choices=BUCKETS, where=Where.DATASET, section="datasets", sd_name="enable_bucket",
      example="on"),
    S("min_bucket_reso", int, 256, "captions", "Smallest bucket side (buckets on).", low=64, high=8192,
      step=64, where=Where.DATASET, section="datasets", sd_name="min_bucket_reso",
      example_with={"buckets": "on"}, **_SD),
    S("max_bucket_reso", int, 1024, "captions", "Largest bucket side (buckets on).", low=64, high=8192,
      step=64, example=960, where=Where.DATASET, section="datasets", sd_name="max_bucket_reso",
      example_with={"buckets": "on"}, **_SD),
    S("shuffle_caption", bool, False, "captions", "Shuffle the comma-separated tags of each caption.",
      where=Where.DATASET, section="subset_defaults", sd_name="shuffle_caption", emit="non_default", **_SD),
    S("keep_tokens", int, 0, "captions", "Keep the first N tags in place when shuffling (e.g. the "
      "trigger word).", low=0, high=255, example=1, where=Where.DATASET, section="subset_defaults",
      sd_name="keep_tokens", emit="non_default", **_SD),
    S("caption_dropout_rate", float, 0.0, "captions", "Chance to train an image with an empty caption.",
      low=0.0, high=1.0, step=0.01, example=0.1, where=Where.DATASET, section="subset_defaults",
      sd_name="caption_dropout_rate", emit="non_default", **_SD),
    S("caption_dropout_every_n_epochs", int, 0, "captions", "Drop all captions every N epochs (0 = "
      "never).", low=0, high=10000, example=2, where=Where.DATASET, section="subset_defaults",
      sd_name="caption_dropout_every_n_epochs", emit="non_default", **_SD),
    S("caption_tag_dropout_rate", float, 0.0, "captions", "Chance to drop each tag (not the kept ones).",
      low=0.0, high=1.0, step=0.01, example=0.1, where=Where.DATASET, section="subset_defaults",
      sd_name="caption_tag_dropout_rate", emit="non_default", **_SD),
    S("flip_aug", bool, False, "captions", "Flip images horizontally at random (not for asymmetric "
      "subjects or text).", where=Where.DATASET, section="subset_defaults", sd_name="flip_aug",
      emit="non_default", **_SD),
    S("color_aug", bool, False, "captions", "Vary hue at random; turns latent caching off.",
      where=Where.DATASET, section="subset_defaults", sd_name="color_aug", emit="non_default", **_SD),
    S("random_crop", bool, False, "captions", "Crop at random instead of centred; turns latent "
      "caching off.", where=Where.DATASET, section="subset_defaults", sd_name="random_crop",
      emit="non_default", **_SD),
    # ------------------------------------------------------------------ sampling
    S("sample_prompts", str, "", "sampling", "One prompt per line for sample images after each epoch "
      "(sd-scripts options like --n negative may follow). Written to a prompts file.", multiline=True,
      section="sample", sd_name="sample_prompts", example="a photo of subject",
      doc_target="written to prompts.txt; config `sample_prompts` names the file"),
    S("sample_every_n_epochs", int, 1, "sampling", "Make sample images every N epochs.", low=1,
      high=10000, section="sample", sd_name="sample_every_n_epochs",
      example_with={"sample_prompts": "a photo"}),
    S("sample_steps", int, 20, "sampling", "Sampling steps per sample image; at 20 (the default) each "
      "family's own (SD 1.x 20, SDXL 25, FLUX.1 dev 20, schnell 4, SD3 28, ...).", low=1, high=1000,
      example=12,
      where=Where.PROMPTS, sd_name="--s", example_with={"sample_prompts": "a photo"},
      doc_target="`--s N` on each line of prompts.txt"),
    S("show_samples", bool, False, "sampling", "Make sample images (the trigger words as prompt when "
      "no prompts are given) and show them on the node.", where=Where.RUN, affects_result=False,
      doc_target="fills the prompts with the trigger words when empty"),
    # ------------------------------------------------------------------ saving and resume
    S("save_every_n_epochs", int, 1, "saving", "Also save <name>-00000N.safetensors every N epochs "
      "(0 = only the final file).", low=0, high=10000, section="saving", sd_name="save_every_n_epochs",
      emit="if_set"),
    S("save_precision", str, "fp16", "saving", "Precision of the saved LoRA file.", choices=SAVE_PRECISIONS,
      section="saving", sd_name="save_precision", emit="value"),
    S("link_to_library", bool, False, "saving", "Link the trained LoRA into ComfyUI's (and "
      "A1111/Forge's) LoRA folders when it is done.", where=Where.RUN, flags=("--link",),
      affects_result=False, doc_target="links the result into the UIs' LoRA folders afterwards"),
    S("save_state", bool, False, "saving", "Also save the training state (optimizer, scheduler, RNG) "
      "with every per-epoch file and at the end, so a cancelled or crashed run can be resumed.",
      section="saving", sd_name="save_state", emit="flag", affects_result=False),
    S("save_last_n_epochs", int, 0, "saving", "Keep only the newest N per-epoch files (0 = all).",
      low=0, high=10000, example=2, section="saving", sd_name="save_last_n_epochs", emit="if_set",
      affects_result=False),
    S("save_last_n_epochs_state", int, 0, "saving", "Keep only the newest N training states (0 = all).",
      low=0, high=10000, example=2, example_with={"save_state": True}, section="saving",
      sd_name="save_last_n_epochs_state", emit="if_set", affects_result=False),
    S("save_state_on_train_end", bool, False, "saving", "Save a training state at the end only (to "
      "train on later), not per epoch.", section="saving", sd_name="save_state_on_train_end",
      emit="flag", affects_result=False),
    S("resume", str, "", "saving", "Resume a cancelled or crashed run from its newest saved state: "
      "'latest' (the newest run of this output name) or a run folder (<name>-NNN in the project's "
      "output). Its settings must match; it continues in the same folder.", pattern=RESUME_RE,
      pattern_hint="must be 'latest' or a run folder", where=Where.RUN, affects_result=False,
      doc_values="empty, `latest`, or a run folder (`<name>-NNN`)",
      example="latest", doc_target="`resume` = the run's newest `<name>-NNNNNN-state` folder"),
    S("network_weights", str, "", "saving", "Continue from an existing LoRA file (.safetensors): a new "
      "run that starts from its weights (same network type and rank, or dim_from_weights).",
      section="network", sd_name="network_weights", example="/tmp/lora.safetensors"),
    S("dim_from_weights", bool, False, "saving", "Take the rank and alpha from network_weights instead "
      "of network_dim/network_alpha.", section="network", sd_name="dim_from_weights", emit="flag",
      example_with={"network_weights": "/tmp/lora.safetensors"}),
    S("tensorboard", bool, True, "saving", "Write TensorBoard logs to the project's logs/ folder "
      "(open with: tensorboard --logdir PROJECT/logs).", section="training", sd_name="logging_dir",
      affects_result=False, doc_target="`logging_dir` = PROJECT/logs, `log_prefix` = the run folder's name"),
    # ------------------------------------------------------------------ precision and memory
    S("mixed_precision", str, "auto", "precision", "auto: fp16 on a GPU, no on the CPU.",
      choices=MIXED_PRECISIONS, section="training", sd_name="mixed_precision", gpu_only_values=("fp16",),
      example="bf16", doc_target="`mixed_precision` (config and accelerate `--mixed_precision`)"),
    S("gradient_checkpointing", bool, True, "precision", "Less memory, a bit slower.", section="training",
      sd_name="gradient_checkpointing", emit="value"),
    S("cache_latents", bool, True, "precision", "Encode images once (off when the dataset uses "
      "color_aug/random_crop).", section="training", sd_name="cache_latents", emit="value", **_SD),
    S("cache_latents_to_disk", bool, True, "precision", "Keep the cached latents as .npz beside the "
      "images.", section="training", sd_name="cache_latents_to_disk", **_SD),
    S("lowram", bool, False, "precision", "Load models to VRAM instead of RAM (when VRAM > RAM).",
      section="training", sd_name="lowram", emit="flag", **_SD),
    S("attention", str, "sdpa", "precision", "sdpa works everywhere; xformers needs a GPU and the "
      "package.", choices=ATTENTIONS, section="training", sd_name="sdpa", gpu_only_values=("xformers",),
      example="none", doc_target="`sdpa = true` or `xformers = true`"),
    S("data_loader_workers", int, 0, "precision", "Data loader processes (0 = in the trainer; least RAM).",
      low=0, high=64, section="dataset", sd_name="max_data_loader_n_workers",
      flags=("--max-data-loader-n-workers",),
      doc_target="`max_data_loader_n_workers` (+ `persistent_data_loader_workers` when > 0)"),
    # ------------------------------------------------------------------ launch
    S("device", str, "auto", "launch", "auto: the GPU when torch in the sd-scripts environment sees one.",
      choices=DEVICES, where=Where.LAUNCH, sd_name="cpu", example="cpu", doc_target="`--cpu` on the CPU"),
    S("launcher", str, "accelerate", "launch", "accelerate launch (with explicit options) or plain python.",
      choices=LAUNCHERS, where=Where.LAUNCH, doc_target="`accelerate launch ...` or `python script`"),
    S("cpu_threads", int, 2, "launch", "accelerate --num_cpu_threads_per_process.", low=1, high=1024,
      flags=("--num-cpu-threads-per-process",), sd_name="num_cpu_threads_per_process", where=Where.LAUNCH),
    S("num_processes", int, 1, "launch", "GPUs (processes) to train on.", low=1, high=1024,
      sd_name="num_processes", gpu_only=True, gpu_why="one process per GPU", example_with={"device": "gpu"},
      where=Where.LAUNCH),
    S("gpu_ids", str, "", "launch", "Which GPUs, e.g. 0,1 (empty = accelerate's choice).",
      pattern=GPU_IDS_RE, pattern_hint="must be GPU numbers separated by commas, e.g. '0,1'", sd_name="gpu_ids",
      example="0,1", example_with={"device": "gpu"}, where=Where.LAUNCH),
    S("num_machines", int, 1, "launch", "Machines for multi-node training.", low=1, high=1024,
      sd_name="num_machines", example_with={"main_process_ip": "10.0.0.1", "device": "gpu"},
      where=Where.LAUNCH),
    S("machine_rank", int, 0, "launch", "This machine's rank (multi-node).", low=0, high=1023,
      sd_name="machine_rank", example_with={"num_machines": 2, "main_process_ip": "10.0.0.1", "device": "gpu"},
      where=Where.LAUNCH),
    S("main_process_ip", str, "", "launch", "Address of machine rank 0 (multi-node).", pattern=HOST_RE,
      pattern_hint="is not an address: give a host name or IP address (not starting with '-')", sd_name="main_process_ip",
      example="10.0.0.1", example_with={"num_machines": 2, "device": "gpu"},
      where=Where.LAUNCH),
    S("main_process_port", int, 0, "launch", "Port of the main process (0 = accelerate's default).",
      low=0, high=65535, sd_name="main_process_port", example=29500,
      where=Where.LAUNCH),
    S("tokenizer_cache_dir", str, "", "launch", "Folder with cached tokenizers (offline use); empty = "
      "$LORA_WORKBENCH_TOKENIZER_CACHE or the settings.", section="model", sd_name="tokenizer_cache_dir",
      affects_result=False, example="/tmp/tokenizers", **_SD),
    # ------------------------------------------------------------------ extra model files (DiT families)
    *(
        S(slot, str, AUTO_FILE, "model_files", f"{label}, from ComfyUI's {folder} folder; {AUTO_FILE} picks the "
          f"file named like one ({example}){extra}.", where=Where.RUN, sd_name=slot, families=fams,
          comfy_folder=folder, example=example,
          doc_target=f"`{slot}` in config [model]: the picked file's path (train.prepare resolves it)")
        for slot, label, folder, fams, example, extra in (
            ("clip_l", "CLIP-L text encoder (FLUX.1, SD3, FLUX.1 Kontext, FramePack)", "text_encoders",
             ("flux", "sd3", "flux_kontext", "framepack"),
             "clip_l.safetensors", f"; {NONE_FILE}: the SD3 checkpoint's own"),
            ("clip_g", "CLIP-G text encoder (SD3)", "text_encoders", ("sd3",), "clip_g.safetensors",
             f"; {NONE_FILE}: the checkpoint's own"),
            ("t5xxl", "T5-XXL text encoder (FLUX.1, Chroma, SD3, FLUX.1 Kontext), not a 'scaled' fp8 file",
             "text_encoders", ("flux", "chroma", "sd3", "flux_kontext"), "t5xxl_fp16.safetensors", f"; {NONE_FILE} for SD3: the checkpoint's own"),
            ("ae", "FLUX autoencoder (FLUX.1, Chroma, Lumina 2)", "vae", ("flux", "chroma", "lumina2"),
             "ae.safetensors", ""),
            ("vae", "VAE (HunyuanImage 2.1, Anima, and every musubi-tuner family: Qwen-Image, Wan, Z-Image, FLUX.2, "
             "FLUX.1 Kontext, HunyuanVideo 1.5, FramePack; optional for SD3)", "vae",
             ("sd3", "hunyuan_image", "anima", *MUSUBI_FAMILIES),
             "hunyuan_image_2.1_vae_fp16.safetensors", ""),
            ("gemma2", "Gemma 2 2B text encoder (Lumina 2)", "text_encoders", ("lumina2",),
             "gemma_2_2b_fp16.safetensors", ""),
            ("text_encoder", "Text encoder: Qwen2.5-VL 7B (HunyuanImage 2.1, Qwen-Image, HunyuanVideo 1.5), Qwen3 "
             "(Z-Image, FLUX.2 klein), Mistral 3 (FLUX.2 dev), LLaVA-LLaMA-3 (FramePack)", "text_encoders",
             ("hunyuan_image", "qwen_image", "z_image", "flux2", "hunyuan_video_1_5", "framepack"), "qwen_2.5_vl_7b.safetensors", ""),
            ("byt5", "ByT5 glyph text encoder (HunyuanImage 2.1, HunyuanVideo 1.5)", "text_encoders",
             ("hunyuan_image", "hunyuan_video_1_5"),
             "byt5_small_glyphxl_fp16.safetensors", ""),
            ("qwen3", "Qwen3 0.6B text encoder (Anima)", "text_encoders", ("anima",),
             "qwen_3_06b_base.safetensors", ""),
        )
    ),
    # ------------------------------------------------------------------ family options (auto = sd-scripts' advice)
    S("network_module", str, "auto", "family", "sd-scripts' network module; auto = the family's LoRA "
      "(networks.lora, networks.lora_flux, networks.lora_sd3, ...). Only the family's own modules work.",
      choices=NETWORK_MODULES, section="network", sd_name="network_module", example="networks.lora_fa"),
    S("cache_text_encoder_outputs", str, "auto", "family", "Encode the captions once and free the text "
      "(musubi-tuner always caches them, in a step of its own) "
      "encoders' memory; auto = on for FLUX, SD3, Lumina, HunyuanImage and Anima, off for SDXL (there it "
      "needs train_text_encoder off). Not with shuffled captions or caption dropout.", choices=AUTO_ON_OFF,
      section="training", sd_name="cache_text_encoder_outputs", families=("sdxl", *(f for f in DIT_FAMILIES if f in SD_SCRIPTS_FAMILIES)),
      example="on", example_with={"train_text_encoder": False}),
    S("fp8_base", bool, False, "family", "Load the base model (and T5) in fp8: about half the memory "
      "(musubi-tuner: the DiT only; add fp8_scaled for its better fp8, fp8_text_encoder for the encoder).",
      section="training", sd_name="fp8_base", emit="flag", families=(*SD_FAMILIES, "sd3", "flux", "chroma", "lumina2", *MUSUBI_FAMILIES),
      gpu_only=True, gpu_why="fp8 weights need a GPU", example_with={"device": "gpu"}),
    S("fp8_scaled", bool, False, "family", "Load the DiT in scaled fp8 (HunyuanImage's fp8 option; musubi-tuner's "
      "better fp8, with fp8_base). Not for a file that is already fp8 'scaled'.",
      section="training", sd_name="fp8_scaled", emit="flag", families=("hunyuan_image", *MUSUBI_FAMILIES), gpu_only=True,
      gpu_why="fp8 weights need a GPU", example_with={"device": "gpu"}),
    S("blocks_to_swap", int, 0, "family", "Keep this many transformer blocks in system memory and swap "
      "them in: less GPU memory, slower (FLUX up to 35, SD3.5 large 36, HunyuanImage 37, Qwen-Image 58, "
      "Wan 14B 39, ...).", low=0,
      high=60, section="training", sd_name="blocks_to_swap", emit="if_set", families=DIT_FAMILIES, example=4),
    S("guidance_scale", float, -1.0, "family", "FLUX's embedded guidance while training; -1 = the family's "
      "(1.0 for FLUX.1 and Kontext, 0.0 for Chroma; FLUX.2 dev takes it from the model version).", low=-1.0, high=100.0, step=0.1, section="training",
      sd_name="guidance_scale", emit="family", families=("flux", "chroma", "flux_kontext", "flux2"), example=3.5),
    S("timestep_sampling", str, "auto", "family", "How noise levels are drawn; auto = the family's "
      "(flux_shift for FLUX.1, sigmoid for Chroma and Anima, nextdit_shift for Lumina, sigma for "
      "HunyuanImage; shift for Qwen-Image, Wan, Z-Image, HunyuanVideo 1.5 and FramePack, flux2_shift for "
      "FLUX.2). qwen_shift, flux2_shift, logsnr and qinglong_* are musubi-tuner's, nextdit_shift Lumina's.", choices=TIMESTEP_SAMPLINGS, section="training", sd_name="timestep_sampling",
      emit="family", families=(*FLOW_FAMILIES, *MUSUBI_FAMILIES), example="shift"),
    S("model_prediction_type", str, "auto", "family", "How the model's prediction is read; auto = raw.",
      choices=PREDICTION_TYPES, section="training", sd_name="model_prediction_type", emit="family",
      families=("flux", "chroma", "lumina2", "hunyuan_image"), example="sigma_scaled"),
    S("discrete_flow_shift", float, 0.0, "family", "Shift of the flow-matching schedule (used with "
      "timestep_sampling shift); 0 = the family's (FLUX 3.1582, Lumina 6, HunyuanImage 5, Anima 1, Qwen-Image "
      "2.2, Wan 3, Z-Image 2, HunyuanVideo 1.5 2, FramePack 3).",
      low=0.0, high=100.0, step=0.01, section="training", sd_name="discrete_flow_shift", emit="family",
      families=(*FLOW_FAMILIES, *MUSUBI_FAMILIES), example=3.0),
    S("apply_t5_attn_mask", bool, False, "family", "Mask T5's padding tokens (always on for Chroma).",
      section="training", sd_name="apply_t5_attn_mask", families=("flux", "chroma", "sd3")),
    S("t5xxl_max_token_length", int, 0, "family", "T5 caption length in tokens; 0 = the family's (FLUX.1 "
      "dev 512, schnell 256; SD3 256).", low=0, high=2048, section="training",
      sd_name="t5xxl_max_token_length", emit="family", families=("flux", "chroma", "sd3"), example=256),
    S("training_shift", float, 1.0, "family", "SD3: shift of the timestep distribution.", low=0.01,
      high=100.0, step=0.01, section="training", sd_name="training_shift", emit="value", families=("sd3",),
      example=3.0),
    S("system_prompt", str, "You are an assistant designed to generate high-quality images based on user "
      "prompts.", "family", "Lumina 2: the system prompt put before every caption (and sample prompt).",
      section="training", sd_name="system_prompt", emit="value", families=("lumina2",),
      example="You are an assistant designed to generate high-quality images with the highest degree of "
      "image-text alignment based on textual prompts."),
    S("gemma2_max_token_length", int, 256, "family", "Lumina 2: caption length in Gemma tokens.", low=1,
      high=2048, section="training", sd_name="gemma2_max_token_length", emit="value", families=("lumina2",),
      example=512),
    S("text_encoder_cpu", bool, False, "family", "HunyuanImage: run the text encoders on the CPU (for "
      "GPUs under 12 GB; slow, caching to disk helps).", section="training", sd_name="text_encoder_cpu",
      emit="flag", families=("hunyuan_image",)),
    S("vae_chunk_size", int, 0, "family", "HunyuanImage, Anima: VAE works in chunks of this size (less "
      "memory); 0 = the family's (Anima 64) or none.", low=0, high=1024, section="training",
      sd_name="vae_chunk_size", emit="family", families=("hunyuan_image", "anima"), example=16),
    # ------------------------------------------------------------------ added later: appended to their
    # option nodes (a saved workflow's widget values fill a node's widgets in order, so new ones go last)
    S("debiased_estimation_loss", bool, False, "optimizer", "Debiased estimation loss: weights each "
      "noise level by 1/sqrt(SNR) (SD 1.x/2.x/SDXL; the flow-matching trainers ignore it).",
      section="training", sd_name="debiased_estimation_loss", emit="flag", families=SD_FAMILIES),
    S("min_timestep", int, 0, "optimizer", "Lowest noise timestep trained (0 = all).", low=0, high=999,
      example=100, section="training", sd_name="min_timestep", emit="non_default",
      families=(*SD_FAMILIES, "sd3", *MUSUBI_FAMILIES)),
    S("max_timestep", int, 1000, "optimizer", "Highest noise timestep trained, exclusive (1000 = all).",
      low=1, high=1000, example=900, section="training", sd_name="max_timestep", emit="non_default",
      families=(*SD_FAMILIES, "sd3", *MUSUBI_FAMILIES)),
    S("adaptive_noise_scale", float, 0.0, "optimizer", "Adds the latent's mean times this to the noise "
      "offset (needs noise_offset; 0 = off).", low=-1.0, high=1.0, step=0.001, example=0.005,
      example_with={"noise_offset": 0.05}, section="training", sd_name="adaptive_noise_scale",
      emit="if_set", families=SD_FAMILIES),
    S("noise_offset_random_strength", bool, False, "optimizer", "Draw the noise offset between 0 and "
      "noise_offset each step (needs noise_offset).", example_with={"noise_offset": 0.05},
      section="training", sd_name="noise_offset_random_strength", emit="flag", families=SD_FAMILIES),
    S("max_token_length", int, 75, "captions", "Caption length in CLIP tokens: 75, 150 or 225 (longer "
      "captions are cut).", low=75, high=225, step=75, example=225, section="training",
      sd_name="max_token_length", emit="non_default", families=SD_FAMILIES),
    S("bucket_no_upscale", bool, True, "captions", "Buckets never enlarge an image (small images get a "
      "smaller bucket); off = every image is scaled to the training area.", example_with={"buckets": "on"},
      where=Where.DATASET, section="datasets", sd_name="bucket_no_upscale"),
    S("bucket_reso_steps", int, 64, "captions", "Bucket sides step by this many pixels (buckets on): a "
      "multiple of 64 for SD 1.x/2.x, 32 for SDXL, FLUX, SD3 and HunyuanImage, 16 for Lumina and Anima.",
      low=8, high=1024, step=8, example=128, example_with={"buckets": "on", "bucket_no_upscale": False},
      where=Where.DATASET,
      section="datasets", sd_name="bucket_reso_steps", **_SD),
    S("full_bf16", bool, False, "precision", "Keep the gradients in bf16 too (less memory; needs "
      "mixed_precision bf16).", example_with={"mixed_precision": "bf16"}, section="training",
      sd_name="full_bf16", emit="flag", **_SD),
    S("full_fp16", bool, False, "precision", "Keep the gradients in fp16 too (less memory, less stable; "
      "needs mixed_precision fp16 and a GPU).", gpu_only=True, gpu_why="fp16 needs a GPU",
      example_with={"mixed_precision": "fp16", "device": "gpu"}, section="training", sd_name="full_fp16",
      emit="flag", **_SD),
    # ------------------------------------------------------------------ musubi-tuner (Qwen-Image, Wan, Z-Image,
    # FLUX.2, FLUX.1 Kontext, HunyuanVideo 1.5, FramePack): appended, as above
    S("umt5", str, AUTO_FILE, "model_files", f"umT5-XXL text encoder (Wan), from ComfyUI's text_encoders folder: "
      f"Wan's own file (models_t5_umt5-xxl-enc-bf16.pth); {AUTO_FILE} picks the file named like one.",
      where=Where.RUN, sd_name="t5", families=("wan",), comfy_folder="text_encoders",
      example="models_t5_umt5-xxl-enc-bf16.pth",
      doc_target="`t5` in config [model]: the picked file's path (train.prepare resolves it)"),
    S("image_encoder", str, AUTO_FILE, "model_files", f"Image encoder, from ComfyUI's clip_vision folder: Wan 2.1 "
      f"I2V's CLIP (musubi's --clip), the SigLIP of FramePack and HunyuanVideo 1.5 I2V; {AUTO_FILE} picks the "
      f"file named like one.", where=Where.RUN, sd_name="image_encoder",
      families=("wan", "hunyuan_video_1_5", "framepack"), comfy_folder="clip_vision",
      example="sigclip_vision_patch14_384.safetensors",
      doc_target="`image_encoder` (Wan: `clip`) for the latent cache and the trainer: the picked file's path"),
    S("weighting_scheme", str, "auto", "family", "How the loss weighs each noise level; auto = the family's "
      "(none for every musubi-tuner family).", choices=WEIGHTING_SCHEMES, section="training",
      sd_name="weighting_scheme", emit="family", families=MUSUBI_FAMILIES, example="logit_normal"),
    S("task", str, "auto", "family", "Wan's task (t2v-14B, i2v-A14B, ...) or HunyuanVideo 1.5's t2v / i2v; auto "
      "= the one read from the base model file. Set it where the file cannot tell (T2I, Fun Control).",
      choices=TASKS, where=Where.RUN, sd_name="task", families=("wan", "hunyuan_video_1_5"), example="t2v-14B",
      doc_target="musubi-tuner's `--task` for every step"),
    S("model_version", str, "auto", "family", "Qwen-Image's version (original, edit, edit-2509, edit-2511) or "
      "FLUX.2's (dev, klein-4b, klein-base-4b, ...); auto = the one read from the base model file (model_type "
      "qwen_image_edit... when the file cannot tell).", choices=MODEL_VERSIONS, where=Where.RUN,
      sd_name="model_version", families=("qwen_image", "flux2"), example="edit-2509",
      doc_target="musubi-tuner's `--model_version` for every step"),
    S("fp8_text_encoder", bool, False, "family", "Run the text encoder in fp8 while its outputs are cached "
      "(musubi-tuner: Wan and Kontext --fp8_t5, Qwen-Image and HunyuanVideo 1.5 --fp8_vl, Z-Image and FramePack "
      "--fp8_llm, FLUX.2 --fp8_text_encoder): for GPUs under 16 GB.", section="model",
      families=MUSUBI_FAMILIES, gpu_only=True, gpu_why="fp8 weights need a GPU", example_with={"device": "gpu"},
      doc_target="the family's text-encoder fp8 option, for the text-encoder cache and the trainer"),
    S("vae_cache_cpu", bool, False, "family", "Wan: keep the VAE's feature cache in system memory (less GPU "
      "memory while caching latents and sampling).", section="model", sd_name="vae_cache_cpu", emit="flag",
      families=("wan",), doc_target="`--vae_cache_cpu` for the latent cache and the trainer"),
    S("target_frames", str, "1", "captions", "Video subsets: the frame counts each clip is cut into, "
      "comma-separated (Wan, HunyuanVideo 1.5, FramePack: each 4n+1, e.g. 1,25,45).", pattern=TARGET_FRAMES_RE,
      pattern_hint="must be frame counts separated by commas, e.g. '1,25,45'", where=Where.DATASET,
      section="datasets", sd_name="target_frames", families=VIDEO_FAMILIES, example="1,25"),
    S("frame_extraction", str, "head", "captions", "Video subsets: where the frames come from: head (the first "
      "frames), chunk (back to back), slide (every frame_stride), uniform (frame_sample evenly spread), full "
      "(the whole clip, up to max_frames).", choices=FRAME_EXTRACTIONS, where=Where.DATASET, section="datasets",
      sd_name="frame_extraction", families=VIDEO_FAMILIES, example="uniform"),
    S("frame_stride", int, 1, "captions", "Video subsets, frame_extraction slide: frames between two cuts.",
      low=1, high=10000, where=Where.DATASET, section="datasets", sd_name="frame_stride",
      families=VIDEO_FAMILIES, example=10, example_with={"frame_extraction": "slide"}),
    S("frame_sample", int, 1, "captions", "Video subsets, frame_extraction uniform: cuts per clip.", low=1,
      high=1000, where=Where.DATASET, section="datasets", sd_name="frame_sample", families=VIDEO_FAMILIES,
      example=4, example_with={"frame_extraction": "uniform"}),
    S("max_frames", int, 129, "captions", "Video subsets, frame_extraction full: the most frames taken from a "
      "clip.", low=1, high=10000, where=Where.DATASET, section="datasets", sd_name="max_frames",
      families=VIDEO_FAMILIES, example=65, example_with={"frame_extraction": "full"}),
)
# fmt: on

SETTING: dict[str, Setting] = {s.name: s for s in SETTINGS}
DEFAULTS: dict[str, Any] = {s.name: s.default for s in SETTINGS}


def in_group(group: str) -> tuple[Setting, ...]:
    """The settings of one group, in declaration order (= widget order)."""
    return tuple(s for s in SETTINGS if s.group == group)


def option_groups() -> tuple[Group, ...]:
    """The groups that are option nodes (all but the main node)."""
    return tuple(g for g in GROUPS if g.key != "main")
