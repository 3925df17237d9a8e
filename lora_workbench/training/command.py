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
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from ..datatypes import LoraDataset
from ..errors import ValidationError
from ..modelfiles.detect import SCRIPT_FOR_ARCH, ModelInfo
from .kohya import KohyaInstall, default_tokenizer_cache
from .settings import SETTINGS, Where
from .validation import check_device, check_family, sanitize_output_name


@dataclass(frozen=True)
class Target:
    """What one run's options are resolved against."""

    dataset: LoraDataset
    model: ModelInfo
    install: KohyaInstall
    device: str  # "gpu" | "cpu" (train.py probes "auto")
    run_dir: Path
    logging_dir: Path | None = None

    @property
    def config_path(self) -> Path:
        return self.run_dir / "config.toml"

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
def effective_options(opts, dataset: LoraDataset):
    """The options as they will train: show_samples with no prompts samples the trigger words."""
    if opts.show_samples and not opts.sample_prompts.strip():
        return opts.replace(sample_prompts=", ".join(dataset.class_tokens) or "a photo")
    return opts


def resolve_mixed_precision(opts, device: str) -> str:
    if opts.mixed_precision != "auto":
        return opts.mixed_precision
    return "fp16" if device == "gpu" else "no"


def total_steps(opts, dataset: LoraDataset) -> int:
    """The seed's rule: steps per epoch (at the trainer's batch size) x epochs, unless set explicitly."""
    if opts.max_train_steps:
        return opts.max_train_steps
    batch = opts.batch_size or dataset.batch_size or 1
    per_epoch = dataset.steps_per_epoch
    if opts.batch_size and opts.batch_size != dataset.batch_size:
        per_epoch = math.ceil(dataset.items_per_epoch / batch)
    return max(1, per_epoch) * opts.epochs


def sample_prompts_text(opts) -> str:
    """The sd-scripts prompt file: one prompt per line, with size, seed and steps appended unless given."""
    lines = []
    for raw in opts.sample_prompts.splitlines():
        line = raw.replace("\x00", "").strip()
        if not line or line.startswith("#"):
            continue
        for flag, value in (("--w", opts.width), ("--h", opts.height), ("--d", opts.seed)):
            if f" {flag} " not in f" {line} ":
                line += f" {flag} {value}"
        if " --s " not in f" {line} ":
            line += f" --s {opts.sample_steps}"
        lines.append(line)
    return "\n".join(lines) + ("\n" if lines else "")


def output_name_for(opts, dataset: LoraDataset) -> str:
    """output_name, or the project folder's name made safe."""
    return opts.output_name or sanitize_output_name(Path(dataset.project_dir).name)


def resolve(opts, t: Target) -> Resolved:
    return Resolved(
        script=t.model.script if opts.script == "auto" else opts.script,
        mixed_precision=resolve_mixed_precision(opts, t.device),
        output_name=output_name_for(opts, t.dataset),
        total_steps=total_steps(opts, t.dataset),
        prompts=sample_prompts_text(opts),
        tokenizer_cache_dir=opts.tokenizer_cache_dir or default_tokenizer_cache(),
    )


# --------------------------------------------------------------------------- config sections
def direct(opts, where: Where, section: str) -> dict:
    """The settings of one section that the table says how to write (everything but emit="custom")."""
    out: dict = {}
    for s in SETTINGS:
        if s.where is not where or s.section != section or s.emit == "custom":
            continue
        value = getattr(opts, s.name)
        if s.emit == "value" or (s.emit == "flag" and value is True) or (s.emit == "if_set" and value):
            out[s.sd_name] = True if s.emit == "flag" else value
    return out


def _model(o, t: Target, r: Resolved) -> dict:
    sec = {"pretrained_model_name_or_path": str(t.model.path), **direct(o, Where.CONFIG, "model")}
    if t.model.arch == "sd2":
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
        **direct(o, Where.CONFIG, "dataset"),
    }
    if o.data_loader_workers > 0:
        sec["persistent_data_loader_workers"] = True
    if o.buckets == "on":
        sec.update(
            enable_bucket=True,
            min_bucket_reso=o.min_bucket_reso,
            max_bucket_reso=o.max_bucket_reso,
            bucket_no_upscale=True,
        )
    elif o.buckets == "dataset" and ds.enable_bucket:
        sec["bucket_no_upscale"] = True
    return sec


def _network(o, t: Target, r: Resolved) -> dict:
    sec = {"network_module": "networks.lora", **direct(o, Where.CONFIG, "network")}
    if not o.train_text_encoder:
        sec["network_train_unet_only"] = True
    return sec


def _optimizer(o, t: Target, r: Resolved) -> dict:
    sec = direct(o, Where.CONFIG, "optimizer")
    if o.train_text_encoder:
        sec["text_encoder_lr"] = o.text_encoder_lr
    return sec


def _training(o, t: Target, r: Resolved) -> dict:
    sec = {
        "mixed_precision": r.mixed_precision,
        "cache_latents_to_disk": o.cache_latents and o.cache_latents_to_disk,
        **direct(o, Where.CONFIG, "training"),
    }
    if o.step_rule == "epochs" and not o.max_train_steps:
        sec["max_train_epochs"] = o.epochs
    else:
        sec["max_train_steps"] = r.total_steps
    if o.attention != "none":
        sec[o.attention] = True
    if t.model.arch == "sdxl" and r.mixed_precision == "fp16":
        sec["no_half_vae"] = True  # SDXL's VAE overflows in fp16
    if t.logging_dir:
        sec["logging_dir"] = str(t.logging_dir)
    return sec


def _saving(o, t: Target, r: Resolved) -> dict:
    return {
        "output_dir": str(t.run_dir),
        "output_name": r.output_name,
        "save_model_as": "safetensors",
        **direct(o, Where.CONFIG, "saving"),
    }


def _sample(o, t: Target, r: Resolved) -> dict:
    if not r.prompts:
        return {}
    return {
        "sample_prompts": str(t.prompts_path),
        "sample_sampler": o.sample_sampler,
        "sample_every_n_epochs": o.sample_every_n_epochs,
        **direct(o, Where.CONFIG, "sample"),
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
            bucket_no_upscale=True,
        )
    elif opts.buckets == "off" and dataset.enable_bucket:
        per_dataset["enable_bucket"] = False
    general = direct(opts, Where.DATASET, "general")
    if opts.caption_extension and opts.caption_extension != dataset.caption_extension:
        general["caption_extension"] = opts.caption_extension
    patch = {"general": general, "datasets": per_dataset, "subsets": direct(opts, Where.DATASET, "subsets")}
    return {level: values for level, values in patch.items() if values}


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


def launch_argv(o, t: Target, r: Resolved) -> list[str]:
    script = [str(t.install.scripts_dir / r.script), "--config_file", str(t.config_path)]
    if o.launcher == "python":
        return [str(t.install.python), *script]
    launch = [str(t.install.python), "-m", "accelerate.commands.launch"]
    return [*launch, *_accelerate_options(o, t, r), *script]


# --------------------------------------------------------------------------- the whole command
def check_script(opts, model: ModelInfo) -> None:
    """A script chosen by hand must be the one for the base model's family (sd-scripts would refuse it
    or fail loading the checkpoint); model_type is the setting for a wrongly detected base model."""
    expected = SCRIPT_FOR_ARCH[model.arch]
    if opts.script not in ("auto", expected):
        wanted = next(a for a, script in SCRIPT_FOR_ARCH.items() if script == opts.script)
        raise ValidationError(
            f"script {opts.script} does not train {model.name} models, and {model.path} looks like "
            f"{model.name} ({model.how}); set script to auto (or {expected}), or set model_type to "
            f"{wanted} if the base model is really that."
        )


def build_command(opts, t: Target, warnings: list[str] | None = None) -> Command:
    """The command for validated options (train.plan validates): config, dataset patch, prompts, argv."""
    check_device(opts, t.device)
    check_family(opts, t.model.arch)
    check_script(opts, t.model)
    r = resolve(opts, t)
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
        warnings=list(warnings or []),
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
