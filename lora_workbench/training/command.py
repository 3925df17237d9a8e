"""Validated TrainOptions + what they run against -> the sd-scripts command, built once per run.

`build_command(opts, target)` resolves the few derived values once (script, precision, output name,
step count, prompts), then each config TOML section has its own small builder: the settings the
table marks `emit="value"|"flag"|"if_set"` are written generically, the rest (`emit="custom"`) by
the section's builder. The run's copy of the dataset TOML gets a patch built the same way, and the
accelerate argv has its own builder. Pure: nothing is written or started here.

Free-form text never becomes an argument: prompts go into a file, the output name is restricted to
[A-Za-z0-9._-], every number is range-checked, and there is no "extra args" input.
"""

from __future__ import annotations

import math
import shlex
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..datatypes import LoraDataset
from ..errors import ValidationError
from ..modelfiles.detect import SCRIPT_FOR_ARCH, ModelInfo
from . import families, kvargs, sample_prompts
from .backends.sd_scripts import quirks
from .kohya import default_tokenizer_cache
from .settings import SETTING, SETTINGS, Where
from .validation import (
    check_device,
    check_family,
    check_setting,
    network_module_for,
    sanitize_output_name,
)


@dataclass(frozen=True)
class Target:
    """What one run's options are resolved against."""

    dataset: LoraDataset
    model: ModelInfo
    install: Any  # the trainer's install: any object with root, scripts_dir and python (backends.Install)
    device: str  # "gpu" | "cpu" (train.py probes "auto")
    run_dir: Path
    logging_dir: Path | None = None  # TensorBoard logs (PROJECT/logs); None = no logs
    model_files: dict = field(default_factory=dict)  # sd-scripts option -> path (model_files.pick)
    resume_state: Path | None = None  # the saved state a resumed run starts from
    dataset_augments: tuple[str, ...] = ()  # color_aug/random_crop set in the dataset TOML itself
    dataset_captions: tuple[str, ...] = ()  # caption variation set there (shuffle_caption, ...)
    config_name: str = "config.toml"  # a resumed run writes its own config beside the first one

    @property
    def family(self) -> families.TrainingFamily:
        """The recipe of the model's family, from the trainer that owns it."""
        from .backends import for_family

        return for_family(self.model.arch)[1]

    @property
    def config_path(self) -> Path:
        return self.run_dir / self.config_name

    @property
    def dataset_toml(self) -> Path:
        return self.run_dir / "dataset.toml"

    @property
    def prompts_path(self) -> Path:
        return self.run_dir / "prompts.txt"


@dataclass(frozen=True)
class Resolved:
    """Values derived from the options and the target, computed once and read by every builder."""

    script: str
    mixed_precision: str
    output_name: str
    total_steps: int
    prompts: str  # the sample prompts file's text ("" = no samples)
    tokenizer_cache_dir: str
    train_text_encoder: bool  # asked for and possible for the family (HunyuanImage: never)
    cache_text_encoder_outputs: bool


@dataclass
class Command:
    """A resolved run: what to write beside the output and what to execute."""

    argv: list[str]
    cwd: str
    config: dict  # the --config_file TOML, by section
    dataset_patch: dict  # {level: {key: value}} applied to the run's copy of the dataset TOML
    prompts: str  # the sample prompts file's text ("" = none)
    script: str
    arch: str
    device: str  # "gpu" | "cpu"
    mixed_precision: str
    total_steps: int  # our estimate; sd-scripts' printed total wins in the progress
    output_dir: str
    output_name: str
    warnings: list[str] = field(default_factory=list)

    def display(self) -> str:
        """The argv as one shell-quoted line (for people; the run itself uses the list)."""
        return " ".join(shlex.quote(a) for a in self.argv)

    @property
    def final_path(self) -> str:
        return str(Path(self.output_dir) / f"{self.output_name}.safetensors")


# --------------------------------------------------------------------------- resolving
UNRECORDED_EPOCHS = 3  # a dataset that records no epochs (written before it did): the old default


def planned_epochs_note(opts, dataset: LoraDataset) -> list[str]:
    """A warning when the dataset's step plan (DatasetSubsetWeights target_steps) overrides the epochs
    setting, so training runs exactly the total the dataset node showed."""
    if not dataset.planned_epochs or opts.max_train_steps or dataset.planned_epochs == opts.epochs:
        return []
    ignored = f"; the epochs setting ({opts.epochs}) is not used" if opts.epochs else ""
    return [
        f"{dataset.planned_epochs} epochs from the dataset's step plan (target {dataset.target_steps} "
        f"steps){ignored}."
    ]


def dataset_settings_note(opts, dataset: LoraDataset) -> list[str]:
    """Which of resolution, batch size and epochs the run takes from the dataset (0 on the trainer):
    each knob lives on the dataset node unless the trainer sets it, and the run says which it used."""
    taken = []
    if not opts.width and not opts.height:
        taken.append(f"resolution {dataset.resolution[0]}x{dataset.resolution[1]}")
    elif not opts.width or not opts.height:
        name, value = (
            ("width", dataset.resolution[0]) if not opts.width else ("height", dataset.resolution[1])
        )
        taken.append(f"{name} {value}")
    if not opts.batch_size:
        taken.append(f"batch size {dataset.batch_size or 1}")
    if not opts.epochs and not opts.max_train_steps and not dataset.planned_epochs:
        taken.append(
            f"{dataset.epochs} epochs"
            if dataset.epochs
            else f"{UNRECORDED_EPOCHS} epochs (the dataset records none; prepare it again to set them there)"
        )
    if not taken:
        return []
    return [f"From the dataset: {', '.join(taken)} (set them on the trainer to override)."]


def _from_dataset(opts, dataset: LoraDataset):
    """The trainer's 0 (the dataset's) for width, height and epochs replaced by the dataset's value."""
    changes = {}
    if not opts.width:
        changes["width"] = int(dataset.resolution[0])
    if not opts.height:
        changes["height"] = int(dataset.resolution[1])
    if not opts.epochs:
        changes["epochs"] = dataset.epochs or UNRECORDED_EPOCHS
    return opts.replace(**changes) if changes else opts


def effective_options(opts, dataset: LoraDataset):
    """The options as they will train: 0 for width, height or epochs means the dataset's; the
    dataset's step plan sets the epochs; show_samples with no prompts samples the trigger words."""
    opts = _from_dataset(opts, dataset)
    if dataset.planned_epochs and not opts.max_train_steps:  # dataset step plan (issue 13)
        _check_planned_epochs(dataset)
        opts = opts.replace(epochs=dataset.planned_epochs)
    if opts.show_samples and not opts.sample_prompts.strip():
        return opts.replace(sample_prompts=", ".join(dataset.class_tokens) or "a photo")
    return opts


def _check_planned_epochs(dataset: LoraDataset) -> None:
    """The plan's epochs take the epochs setting's place: the same range holds for them."""
    try:
        check_setting(SETTING["epochs"], dataset.planned_epochs)
    except ValidationError:
        s = SETTING["epochs"]
        raise ValidationError(
            f"The dataset's step plan ({dataset.toml_path}) asks for {dataset.planned_epochs!r} epochs; the "
            f"trainer takes {s.low} to {s.high}. Lower target_steps, raise the step budget or the batch "
            f"size, and prepare the dataset again."
        ) from None


def resolve_mixed_precision(opts, device: str) -> str:
    if opts.mixed_precision != "auto":
        return opts.mixed_precision
    return "fp16" if device == "gpu" else "no"


def total_steps(opts, dataset: LoraDataset, processes: int = 1) -> int:
    """The seed's rule: optimizer steps per epoch (at the trainer's batch size) x epochs, unless set
    explicitly. Like sd-scripts, an epoch's batches are split over the processes and every
    gradient_accumulation_steps batches make one optimizer step (the last, shorter group too)."""
    if opts.max_train_steps:
        return opts.max_train_steps
    batch = opts.batch_size or dataset.batch_size or 1
    per_epoch = dataset.steps_per_epoch
    if opts.batch_size and opts.batch_size != dataset.batch_size:
        per_epoch = math.ceil(dataset.items_per_epoch / batch)
    per_process = math.ceil(max(1, per_epoch) / max(1, processes))
    return math.ceil(per_process / opts.gradient_accumulation_steps) * opts.epochs


def _sample_flags(opts, sample: families.SampleSettings | None) -> list[tuple[str, object]]:
    """Size, seed and steps, then the family's own guidance, CFG and negative prompt (flag, value)."""
    at_default = opts.sample_steps == SETTING["sample_steps"].default
    steps = sample.steps if sample is not None and at_default else opts.sample_steps
    flags: list[tuple[str, object]] = [("--w", opts.width), ("--h", opts.height), ("--d", opts.seed)]
    flags.append(("--s", steps))
    if sample is not None:
        if sample.cfg is not None:
            flags.append(("--l", f"{sample.cfg:g}"))
        if sample.guidance is not None:
            flags.append(("--g", f"{sample.guidance:g}"))
        if sample.negative:
            flags.append(("--n", sample.negative))
    return flags


def sample_prompts_text(
    opts,
    sample: families.SampleSettings | None = None,
    file_options: Mapping[str, str] = sample_prompts.FILE_OPTIONS,
    trainer: str = "sd-scripts",
) -> str:
    """The sd-scripts prompt file: one prompt per line, with size, seed, steps and the family's sample
    settings (guidance, CFG, negative prompt) appended unless the line gives them. Each line is checked
    as written (sample_prompts.check_line, against the trainer's `file_options`): the trigger words
    show_samples samples come from folder names."""
    lines = []
    for n, line in enumerate(sample_prompts.lines(opts.sample_prompts), 1):
        for flag, value in _sample_flags(opts, sample):
            if f" {flag} " not in f" {line} ":
                line += f" {flag} {value}"
        sample_prompts.check_line(line, f"sample prompt {n}", file_options, trainer)
        lines.append(line)
    return "\n".join(lines) + ("\n" if lines else "")


def output_name_for(opts, dataset: LoraDataset) -> str:
    """output_name, or the project folder's name made safe."""
    return opts.output_name or sanitize_output_name(Path(dataset.project_dir).name)


CAPTION_VARIATION = (
    "shuffle_caption",
    "caption_dropout_rate",
    "caption_tag_dropout_rate",
    "token_warmup_step",
)


def caption_variation(opts, family: families.TrainingFamily, in_dataset: tuple[str, ...] = ()) -> list[str]:
    """The settings that change a caption from step to step (run-wide or in the dataset TOML): cached
    text-encoder outputs cannot follow them (the trainers assert is_text_encoder_output_cacheable;
    Anima's cache handles caption dropout)."""
    names = dict.fromkeys([*(n for n in CAPTION_VARIATION if getattr(opts, n, 0)), *in_dataset])
    follows_dropout = family.id in quirks.TE_CACHE_FOLLOWS_CAPTION_DROPOUT
    return [n for n in names if not (follows_dropout and n == "caption_dropout_rate")]


def cache_text_encoder_outputs(
    opts, family: families.TrainingFamily, train_te: bool, varied: list[str] | tuple[str, ...] = ()
) -> bool:
    """on/off as set; auto: the family's advice (the DiT families), and never while SDXL trains its text
    encoders (sdxl_train_network.py refuses that) or while captions vary (`varied`, caption_variation)."""
    if opts.cache_text_encoder_outputs != "auto":
        return opts.cache_text_encoder_outputs == "on"
    return (
        bool(family.recommended.get("cache_text_encoder_outputs"))
        and (family.id not in quirks.TE_CACHE_REFUSES_TE_TRAINING or not train_te)
        and not varied
    )


def text_encoder_cache_check(opts, t) -> str | None:
    """A sentence when caching is on and captions vary (an error), a warning when auto turned it off."""
    varied = caption_variation(opts, t.family, t.dataset_captions)
    if not varied:
        return None
    if opts.cache_text_encoder_outputs == "on":
        raise ValidationError(
            f"cache_text_encoder_outputs on cannot go with {', '.join(varied)}: cached captions cannot change "
            f"from step to step (sd-scripts refuses it). Set cache_text_encoder_outputs to auto or off, or "
            f"turn {', '.join(varied)} off."
        )
    if opts.cache_text_encoder_outputs == "auto" and t.family.recommended.get("cache_text_encoder_outputs"):
        return (
            f"cache_text_encoder_outputs is off for this run: {', '.join(varied)} changes the captions every "
            f"step, so the text encoders stay loaded (more memory)."
        )
    return None


def resolve(opts, t: Target) -> Resolved:
    fam = t.family
    train_te = opts.train_text_encoder and fam.trains_text_encoder
    return Resolved(
        script=t.model.script if opts.script == "auto" else opts.script,
        mixed_precision=resolve_mixed_precision(opts, t.device),
        output_name=output_name_for(opts, t.dataset),
        total_steps=total_steps(opts, t.dataset, opts.num_processes if t.device == "gpu" else 1),
        prompts=sample_prompts_text(opts, fam.sample_for(t.model.variant)),
        tokenizer_cache_dir=opts.tokenizer_cache_dir or default_tokenizer_cache(),
        train_text_encoder=train_te,
        cache_text_encoder_outputs=cache_text_encoder_outputs(
            opts, fam, train_te, caption_variation(opts, fam, t.dataset_captions)
        ),
    )


# --------------------------------------------------------------------------- config sections
def direct(opts, where: Where, section: str, family: str | None = None) -> dict:
    """The settings of one section that the table says how to write (everything but emit="custom"),
    for the settings that apply to `family`; emit="family" at its default writes the family's advice."""
    out: dict = {}
    recipe = families.get(family) if family else None
    for s in SETTINGS:
        if s.where is not where or s.section != section or s.emit == "custom":
            continue
        if family is not None and family not in s.families:
            continue
        value = getattr(opts, s.name)
        if s.emit == "family":
            value = recipe.recommended.get(s.sd_name) if recipe and value == s.default else value
            if value is not None:
                out[s.sd_name] = value
        elif (
            s.emit == "value"
            or (s.emit == "flag" and value is True)
            or (s.emit == "if_set" and value)
            or (s.emit == "non_default" and value != s.default)
        ):
            out[s.sd_name] = True if s.emit == "flag" else value
    return out


def _model(o, t: Target, r: Resolved) -> dict:
    sec = {
        "pretrained_model_name_or_path": str(t.model.path),
        **direct(o, Where.CONFIG, "model", t.model.arch),
    }
    sec.update({option: str(path) for option, path in t.model_files.items()})
    if "model_type" in t.family.required:  # flux_train_network.py trains Chroma with --model_type chroma
        sec["model_type"] = t.family.required["model_type"]
    if t.model.arch in quirks.V2_FAMILIES:
        sec["v2"] = True
    if r.tokenizer_cache_dir:
        sec["tokenizer_cache_dir"] = str(r.tokenizer_cache_dir)
    return sec


def _dataset(o, t: Target, r: Resolved) -> dict:
    """sd-scripts' fallbacks for what the dataset TOML leaves out (the TOML copy carries the same)."""
    ds = t.dataset
    sec = {
        "dataset_config": str(t.dataset_toml),
        "resolution": f"{o.width},{o.height}",  # a string: an int or list crashes sd-scripts
        "caption_extension": o.caption_extension or ds.caption_extension or ".txt",
        "train_batch_size": o.batch_size or ds.batch_size or 1,
        "max_data_loader_n_workers": o.data_loader_workers,
        **direct(o, Where.CONFIG, "dataset", t.model.arch),
    }
    if o.data_loader_workers > 0:
        sec["persistent_data_loader_workers"] = True
    if o.buckets == "on":
        sec.update(
            enable_bucket=True,
            min_bucket_reso=o.min_bucket_reso,
            max_bucket_reso=o.max_bucket_reso,
            **bucket_shape(o),
        )
    elif o.buckets == "dataset" and ds.enable_bucket:
        sec.update(bucket_shape(o))
    return sec


def bucket_shape(o, changed_only: bool = False) -> dict:
    """How buckets are cut: bucket_no_upscale and bucket_reso_steps (all, or those not at default)."""
    keys = {"bucket_no_upscale": o.bucket_no_upscale, "bucket_reso_steps": o.bucket_reso_steps}
    return {k: v for k, v in keys.items() if not changed_only or v != SETTING[k].default}


def network_args(o) -> list[str]:
    """`network_args` as sd-scripts reads them: the network settings, then the validated extra pairs."""
    t = o.network_type
    args = [f"algo={kvargs.lycoris_algo(t)}"] if t in kvargs.LYCORIS_TYPES else []
    if o.conv_dim and t in kvargs.CONV_TYPES:
        args += [f"conv_dim={o.conv_dim}", f"conv_alpha={o.conv_alpha!r}"]
    if t in kvargs.DYLORA_TYPES:
        args.append(f"{'unit' if t == 'dylora' else 'block_size'}={o.dylora_unit}")
    for name in ("rank_dropout", "module_dropout"):
        if getattr(o, name):
            args.append(f"{name}={getattr(o, name)!r}")
    return args + kvargs.network_args(o.network_args, t)


def _network(o, t: Target, r: Resolved) -> dict:
    sec = {
        "network_module": network_module_for(o, t.family),
        **direct(o, Where.CONFIG, "network", t.model.arch),
    }
    if o.network_weights:
        sec["network_weights"] = str(o.network_weights)
    if not r.train_text_encoder:
        sec["network_train_unet_only"] = True
    return sec


def _optimizer(o, t: Target, r: Resolved) -> dict:
    sec = direct(o, Where.CONFIG, "optimizer", t.model.arch)
    if r.train_text_encoder:
        sec["text_encoder_lr"] = o.text_encoder_lr
    if o.lr_warmup_ratio:
        sec["lr_warmup_steps"] = float(o.lr_warmup_ratio)  # a float below 1: sd-scripts' ratio of all steps
    return sec


def latents_cacheable(o, t: Target) -> bool:
    """sd-scripts cannot cache latents when an image changes every time it is drawn."""
    return not (o.color_aug or o.random_crop or t.dataset_augments)


def latent_cache_warning(o, t: Target) -> str | None:
    if not o.cache_latents or latents_cacheable(o, t):
        return None
    why = ", ".join(n for n in ("color_aug", "random_crop") if getattr(o, n)) or ", ".join(t.dataset_augments)
    return (
        f"cache_latents is off for this run: {why} changes the images every epoch (sd-scripts requires it)."
    )


def _training(o, t: Target, r: Resolved) -> dict:
    sec = {
        "mixed_precision": r.mixed_precision,
        "cache_latents_to_disk": o.cache_latents and o.cache_latents_to_disk,
        **direct(o, Where.CONFIG, "training", t.model.arch),
    }
    sec.update(_family_training(o, t, r))
    if o.step_rule == "epochs" and not o.max_train_steps:
        sec["max_train_epochs"] = o.epochs
    else:
        sec["max_train_steps"] = r.total_steps
    if o.attention != "none":
        sec[o.attention] = True
    if t.model.arch in quirks.FP16_VAE_OVERFLOWS and r.mixed_precision == "fp16":
        sec["no_half_vae"] = True
    if o.multires_noise_iterations:
        sec["multires_noise_discount"] = o.multires_noise_discount
    if not latents_cacheable(o, t):
        sec.update(cache_latents=False, cache_latents_to_disk=False)
    if t.logging_dir and o.tensorboard:
        sec.update(logging_dir=str(t.logging_dir), log_prefix=f"{t.run_dir.name}_")
    return sec


def _family_training(o, t: Target, r: Resolved) -> dict:
    """What the family's trainer needs beyond the table: cached text encoders, Chroma's T5 mask."""
    sec: dict = {}
    if r.cache_text_encoder_outputs:
        sec["cache_text_encoder_outputs"] = True
    if o.apply_t5_attn_mask or t.family.required.get("apply_t5_attn_mask"):
        sec["apply_t5_attn_mask"] = True
    return sec


def _saving(o, t: Target, r: Resolved) -> dict:
    sec = {
        "output_dir": str(t.run_dir),
        "output_name": r.output_name,
        "save_model_as": "safetensors",
        **direct(o, Where.CONFIG, "saving", t.model.arch),
    }
    if t.resume_state is not None:
        sec["resume"] = str(t.resume_state)
    return sec


def _sample(o, t: Target, r: Resolved) -> dict:
    if not r.prompts:
        return {}
    return {
        "sample_prompts": str(t.prompts_path),
        "sample_sampler": o.sample_sampler,
        "sample_every_n_epochs": o.sample_every_n_epochs,
        **direct(o, Where.CONFIG, "sample", t.model.arch),
    }


SECTIONS: dict[str, Callable[..., dict]] = {
    "model": _model,
    "dataset": _dataset,
    "network": _network,
    "optimizer": _optimizer,
    "training": _training,
    "saving": _saving,
    "sample": _sample,
}


def build_config(opts, t: Target, r: Resolved) -> dict:
    """The --config_file TOML by section (empty sections left out)."""
    config = {name: builder(opts, t, r) for name, builder in SECTIONS.items()}
    return {name: sec for name, sec in config.items() if sec}


# --------------------------------------------------------------------------- dataset TOML patch
def dataset_patch(opts, dataset: LoraDataset) -> dict:
    """What the run's copy of the dataset TOML sets over the original, by level (the trainer wins)."""
    per_dataset: dict = direct(opts, Where.DATASET, "datasets")
    if (opts.width, opts.height) != tuple(dataset.resolution):
        per_dataset["resolution"] = [opts.width, opts.height]
    if opts.batch_size and opts.batch_size != dataset.batch_size:
        per_dataset["batch_size"] = opts.batch_size
    if opts.buckets == "on":
        per_dataset.update(
            enable_bucket=True,
            min_bucket_reso=opts.min_bucket_reso,
            max_bucket_reso=opts.max_bucket_reso,
            **bucket_shape(opts),
        )
    elif opts.buckets == "off" and dataset.enable_bucket:
        per_dataset["enable_bucket"] = False
    elif opts.buckets == "dataset" and dataset.enable_bucket:
        per_dataset.update(bucket_shape(opts, changed_only=True))
    general = direct(opts, Where.DATASET, "general")
    if opts.caption_extension and opts.caption_extension != dataset.caption_extension:
        general["caption_extension"] = opts.caption_extension
    patch = {
        "general": general,
        "datasets": per_dataset,
        "subsets": direct(opts, Where.DATASET, "subsets"),
        "subset_defaults": direct(opts, Where.DATASET, "subset_defaults"),
    }
    return {level: values for level, values in patch.items() if values}


def subset_caption_keys(values: Mapping[str, Any], source: str = "caption_options") -> dict:
    """The dataset TOML keys of the caption and augmentation settings in `values` (what
    DatasetSubsetWeights writes into every subset); any other setting is an error naming it."""
    out = {}
    for name, value in values.items():
        s = SETTING.get(name)
        if s is None or s.where is not Where.DATASET or s.section != "subset_defaults":
            raise ValidationError(
                f"{source}: {name} is not a caption or augmentation setting; it belongs on the trainer "
                f"(connect that option node to Kohya LoRA Train's options)."
            )
        if value != s.default:
            out[s.sd_name] = value
    return out


# --------------------------------------------------------------------------- the launch argv
def _accelerate_options(o, t: Target, r: Resolved) -> list[str]:
    argv = ["--num_processes", str(o.num_processes), "--num_machines", str(o.num_machines)]
    argv += ["--mixed_precision", r.mixed_precision, "--dynamo_backend", "no"]
    argv += ["--num_cpu_threads_per_process", str(o.cpu_threads)]
    if t.device == "cpu":
        argv.append("--cpu")
    elif o.num_processes > 1 or o.num_machines > 1:
        argv.append("--multi_gpu")
    if o.gpu_ids and t.device != "cpu":
        argv += ["--gpu_ids", o.gpu_ids]
    if o.num_machines > 1:
        argv += ["--machine_rank", str(o.machine_rank), "--main_process_ip", o.main_process_ip]
    if o.main_process_port:
        argv += ["--main_process_port", str(o.main_process_port)]
    return argv


def kv_argv(o) -> list[str]:
    """`--network_args` and `--optimizer_args` for the script's command line, each pair one argv item.

    Not in config.toml: their values hold commas (block_dims=2,4,4, betas=0.9,0.999), which
    toml_writer refuses inside a list because toml 0.10.2 may split them. sd-scripts parses the
    command line over the config's values (read_config_from_file), and every pair is validated and
    canonical (kvargs), starting with its key, so none can read as an option."""
    out: list[str] = []
    net = network_args(o)
    if net:
        out += ["--network_args", *net]
    opt = kvargs.optimizer_args(o.optimizer_args, o.optimizer)
    if opt:
        out += ["--optimizer_args", *opt]
    return out


def launch_argv(o, t: Target, r: Resolved) -> list[str]:
    script = [str(t.install.scripts_dir / r.script), "--config_file", str(t.config_path), *kv_argv(o)]
    if o.launcher == "python":
        return [str(t.install.python), *script]
    launch = [str(t.install.python), "-m", "accelerate.commands.launch"]
    return [*launch, *_accelerate_options(o, t, r), *script]


# --------------------------------------------------------------------------- the whole command
def check_script(opts, model: ModelInfo) -> None:
    """A script chosen by hand must be the one for the base model's family (sd-scripts would refuse it
    or fail loading the checkpoint); model_type is the setting for a wrongly detected base model."""
    if opts.script == "auto":
        return
    expected = SCRIPT_FOR_ARCH.get(model.arch, "")
    if opts.script != expected:
        wanted = next(a for a, script in SCRIPT_FOR_ARCH.items() if script == opts.script)
        also = f" (or {expected})" if expected else ""
        raise ValidationError(
            f"script {opts.script} does not train {model.name} models, and {model.path} looks like "
            f"{model.name} ({model.how}); set script to auto{also}, or set model_type to "
            f"{wanted} if the base model is really that."
        )


def build_command(opts, t: Target, warnings: list[str] | None = None) -> Command:
    """The command for validated options (train.plan validates): config, dataset patch, prompts, argv."""
    opts = _from_dataset(opts, t.dataset)  # train.plan did this already; a direct call gets it too
    check_device(opts, t.device)
    check_family(opts, t.model.arch, t.model.variant)
    check_script(opts, t.model)
    r = resolve(opts, t)
    warnings = list(warnings or [])
    for note in (latent_cache_warning(opts, t), text_encoder_cache_check(opts, t)):
        if note and note not in warnings:
            warnings.append(note)
    return Command(
        argv=launch_argv(opts, t, r),
        cwd=str(t.install.scripts_dir),
        config=build_config(opts, t, r),
        dataset_patch=dataset_patch(opts, t.dataset),
        prompts=r.prompts,
        script=r.script,
        arch=t.model.arch,
        device=t.device,
        mixed_precision=r.mixed_precision,
        total_steps=r.total_steps,
        output_dir=str(t.run_dir),
        output_name=r.output_name,
        warnings=warnings,
    )


def config_keys(config: dict) -> list[str]:
    """Every option name in a config dict (sections flattened, as sd-scripts reads them)."""
    out: list[str] = []
    for key, value in config.items():
        out += list(value) if isinstance(value, dict) else [key]
    return out


def argv_options(argv: list[str]) -> list[str]:
    """The `--option` names in an argv (without the dashes)."""
    return [a[2:] for a in argv if a.startswith("--")]
