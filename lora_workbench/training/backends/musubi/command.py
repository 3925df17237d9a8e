"""Validated TrainOptions + what they run against -> a musubi-tuner `Job`: cache latents, cache the
text-encoder outputs, train (`accelerate launch <fam>_train_network.py --config_file config.toml`)
and, where ComfyUI needs another key layout, convert. Pure: nothing is written or started here.

The shared rules come from training/command.py (epochs from the dataset, total steps, the sample
prompts file, the optimizer's key=value pairs, the accelerate options); the settings table decides
which options a family takes (`Setting.families`: an sd-scripts-only setting at a non-default value
is refused by `check_family`, never dropped). Both cache steps carry a reuse key: a hash of the
dataset's content fingerprint, the cache-relevant part of the dataset config and the step's own
arguments (model files, variant, fp8), kept in the project's cache folder after the step succeeds,
so a run that changes only training settings skips them and a changed image or caption rebuilds them.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from types import SimpleNamespace

from .... import toml_writer
from ....errors import ValidationError
from ... import command as shared
from ... import sample_prompts
from ...families import TrainingFamily
from ...job import Job, ParserEntry, Step
from ...settings import SETTINGS, Where
from ...validation import check_device, check_family, network_module_for
from . import dataset_config, outputs
from .families import PARSERS, SRC, VARIANT_STEP_FLAGS, get

LATENTS, TEXT, TRAIN, CONVERT = "cache_latents", "cache_text_encoder_outputs", "train", "convert"
PHASES = {
    LATENTS: "Caching latents",
    TEXT: "Caching text-encoder outputs",
    TRAIN: "Training",
    CONVERT: "Converting the LoRA for ComfyUI",
}
# The steps that take the variant option (Wan's and HunyuanVideo 1.5's --task is the trainer's alone).
VARIANT_STEPS = {
    "qwen_image": (LATENTS, TEXT, TRAIN),
    "flux2": (LATENTS, TEXT, TRAIN),
    "wan": (TRAIN,),
    "hunyuan_video_1_5": (TRAIN,),
}
# Families (and their variants) that learn from image pairs: each subset needs control images.
CONTROL = {"flux_kontext": (), "qwen_image": ("edit", "edit-2509", "edit-2511")}
CONTROL_NAMES = {"flux_kontext": "FLUX.1 Kontext", "qwen_image": "Qwen-Image-Edit"}


# --------------------------------------------------------------------------- resolving
def variant_of(opts, recipe: TrainingFamily, detected: str) -> str:
    """The variant the run trains: the variant setting (task / model_version) unless auto, else the
    one detected; a variant musubi cannot train, or none where one must be named, is a sentence."""
    chosen = getattr(opts, recipe.variant_option, "auto") if recipe.variant_option else "auto"
    if chosen != "auto" and chosen not in recipe.variant_names:
        raise ValidationError(
            f"{recipe.variant_option} {chosen} is not a {recipe.name} {recipe.variant_option}; choose one of: "
            f"{', '.join(recipe.variant_names)} (or auto)."
        )
    variant = detected if chosen == "auto" else chosen
    if variant in recipe.refused_variants:
        raise ValidationError(recipe.refused_variants[variant])
    if recipe.variant_names and variant not in recipe.variant_names:
        if variant:
            raise ValidationError(
                f"The base model is {recipe.name} {variant}, which musubi-tuner does not train; set "
                f"{recipe.variant_option} to one of: {', '.join(recipe.variant_names)}."
            )
        variant = next(iter(recipe.variant_names))  # the family's plain model: original, dev, t2v
    return variant


def pairs_of(recipe: TrainingFamily, variant: str) -> str:
    """The model's name when the run learns from image pairs (every subset needs its control/ folder),
    else "" (FLUX.1 Kontext; Qwen-Image-Edit, not the original Qwen-Image)."""
    control = CONTROL.get(recipe.id)
    return CONTROL_NAMES[recipe.id] if control is not None and (not control or variant in control) else ""


def mixed_precision(opts, recipe: TrainingFamily, device: str) -> str:
    """auto: the family's advice on a GPU (bf16 for every musubi family), none on the CPU."""
    if opts.mixed_precision != "auto":
        return opts.mixed_precision
    return recipe.mixed_precision if device == "gpu" else "no"


def _check(opts, t, recipe: TrainingFamily, variant: str) -> None:
    if opts.attention == "none":
        raise ValidationError(
            "musubi-tuner needs an attention implementation (its trainer asserts --sdpa or --xformers); set "
            "attention to sdpa."
        )


def _model_files(recipe: TrainingFamily, variant: str, picked: dict, step: str) -> list[tuple[str, str]]:
    """(option, path) of the files `step` takes; a file the variant needs and nobody picked is a
    sentence saying which file to add and where ComfyUI keeps it."""
    out: list[tuple[str, str]] = []
    for f in recipe.model_files:
        if not f.needed_for(variant) or (step not in f.steps and not (step == TRAIN and not f.steps)):
            continue
        path = picked.get(f.option)
        if not path:
            raise ValidationError(
                f"{recipe.name} needs a {f.label} (--{f.option}) and none is picked: put the file (e.g. "
                f"{f.example}) in ComfyUI's models/{f.folder} and pick it in {f.setting}."
            )
        out.append((f.option, str(path)))
    return out


def _file_argv(pairs: list[tuple[str, str]]) -> list[str]:
    return [a for option, path in pairs for a in (f"--{option}", path)]


def _variant_args(recipe: TrainingFamily, variant: str, step: str) -> list[str]:
    args: list[str] = []
    if step in VARIANT_STEPS.get(recipe.id, ()):
        args += [f"--{recipe.variant_option}", variant]
    return args + list(VARIANT_STEP_FLAGS.get(recipe.id, {}).get(variant, {}).get(step, ()))


# --------------------------------------------------------------------------- the cache steps
def _script(t, recipe: TrainingFamily, step: str) -> str:
    return str(Path(t.install.root) / SRC / recipe.steps[step])


def _parser(recipe: TrainingFamily, step: str, config_option: str = "") -> ParserEntry | None:
    builders = PARSERS.get(recipe.id, {}).get(step)
    if not builders:
        return None
    module = "musubi_tuner." + recipe.steps[step][: -len(".py")].replace("/", ".")
    return ParserEntry(module, builders, sys_path=("src",), config_option=config_option)


def _cache_args(opts, t, recipe: TrainingFamily, variant: str, step: str) -> list[str]:
    args = _file_argv(_model_files(recipe, variant, t.model_files, step)) + _variant_args(
        recipe, variant, step
    )
    if step == TEXT and opts.fp8_text_encoder and recipe.te_fp8_option:
        args.append(f"--{recipe.te_fp8_option}")
    if step == LATENTS and getattr(opts, "vae_cache_cpu", False):
        args.append("--vae_cache_cpu")
    return args


def reuse_key(fingerprint: str, dataset_data: dict, step: str, args: list[str]) -> str:
    """What the step's cache depends on: the dataset's content (images, captions), the dataset config
    as the caches see it (not repeats or batch size) and the step's arguments. "" when the dataset
    has no fingerprint (then the step always runs)."""
    if not fingerprint:
        return ""
    what = {"fingerprint": fingerprint, "dataset": dataset_config.cache_view(dataset_data), step: args}
    return hashlib.sha256(json.dumps(what, sort_keys=True).encode()).hexdigest()[:32]


def _captions_fingerprinted(t, ds) -> bool:
    """The dataset's fingerprint covers the caption files the run reads: it hashes those with the
    dataset's own extension, so with another caption_extension on the trainer an edited caption would
    leave the text-encoder cache's key unchanged (then that step always runs)."""
    return ds.data["general"]["caption_extension"] == (t.dataset.caption_extension or ".txt")


def _cache_step(opts, t, recipe: TrainingFamily, variant: str, step: str, ds) -> Step:
    args = _cache_args(opts, t, recipe, variant, step)
    fingerprint = t.dataset.fingerprint if step != TEXT or _captions_fingerprinted(t, ds) else ""
    device = ["--device", "cpu"] if t.device == "cpu" else []
    argv = [str(t.install.python), _script(t, recipe, step), "--dataset_config", str(t.dataset_toml), *args]
    root = dataset_config.cache_root(t.dataset, recipe.id)
    return Step(
        name=step,
        phase=PHASES[step],
        argv=(*argv, *device),
        cwd=str(t.install.root),
        progress="count",
        parser=_parser(recipe, step),
        reuse_key=reuse_key(fingerprint, ds.data, step, args),
        reuse_marker=str(root / f"{step}.key"),
    )


# --------------------------------------------------------------------------- the train config
def direct(opts, recipe: TrainingFamily, section: str) -> dict:
    """The settings of one config section the table says how to write, for the settings that apply to
    the family (training/command.direct, with the recipe handed in: its advice fills emit="family")."""
    out: dict = {}
    for s in SETTINGS:
        if s.where is not Where.CONFIG or s.section != section or s.emit == "custom":
            continue
        if recipe.id not in s.families:
            continue
        value = getattr(opts, s.name)
        if s.emit == "family":
            value = recipe.recommended.get(s.sd_name) if value == s.default else value
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


def _model(o, t, recipe: TrainingFamily, variant: str) -> dict:
    sec: dict = {"dit": str(t.model.path), **dict(_model_files(recipe, variant, t.model_files, TRAIN))}
    if TRAIN in VARIANT_STEPS.get(recipe.id, ()):
        sec[recipe.variant_option] = variant
    if o.fp8_text_encoder and recipe.te_fp8_option:
        sec[recipe.te_fp8_option] = True
    sec[o.attention] = True  # sdpa | xformers (none is refused)
    return {**sec, **direct(o, recipe, "model")}


def _training(o, t, recipe: TrainingFamily, mp: str, total: int) -> dict:
    sec = {"mixed_precision": mp, **direct(o, recipe, "training")}
    if o.step_rule == "epochs" and not o.max_train_steps:
        sec["max_train_epochs"] = o.epochs
    else:
        sec["max_train_steps"] = total
    if t.logging_dir and o.tensorboard:
        sec.update(logging_dir=str(t.logging_dir), log_prefix=f"{t.run_dir.name}_", log_with="tensorboard")
    return sec


def _network(o, recipe: TrainingFamily) -> dict:
    sec = {"network_module": network_module_for(o, recipe), **direct(o, recipe, "network")}
    if o.network_weights:
        sec["network_weights"] = str(o.network_weights)
    return sec


def _optimizer(o, recipe: TrainingFamily) -> dict:
    sec = direct(o, recipe, "optimizer")
    if o.lr_warmup_ratio:
        sec["lr_warmup_steps"] = float(o.lr_warmup_ratio)  # a float below 1: musubi's ratio of all steps
    return sec


def _dataset(o, t) -> dict:
    sec: dict = {"dataset_config": str(t.dataset_toml), "max_data_loader_n_workers": o.data_loader_workers}
    if o.data_loader_workers > 0:
        sec["persistent_data_loader_workers"] = True
    return sec


def _saving(o, t, recipe: TrainingFamily, output_name: str) -> dict:
    sec = {"output_dir": str(t.run_dir), "output_name": output_name, **direct(o, recipe, "saving")}
    if t.resume_state is not None:
        sec["resume"] = str(t.resume_state)
    return sec


def _sample(o, t, prompts: str) -> dict:
    if not prompts:
        return {}
    return {"sample_prompts": str(t.prompts_path), "sample_every_n_epochs": o.sample_every_n_epochs}


def train_config(o, t, recipe: TrainingFamily, variant: str, run: SimpleNamespace) -> dict:
    """The train step's --config_file TOML, by section (empty sections left out)."""
    config = {
        "model": _model(o, t, recipe, variant),
        "dataset": _dataset(o, t),
        "network": _network(o, recipe),
        "optimizer": _optimizer(o, recipe),
        "training": _training(o, t, recipe, run.mixed_precision, run.total_steps),
        "saving": _saving(o, t, recipe, run.output_name),
        "sample": _sample(o, t, run.prompts),
    }
    return {name: sec for name, sec in config.items() if sec}


def _train_step(o, t, recipe: TrainingFamily, run: SimpleNamespace) -> Step:
    script = [_script(t, recipe, TRAIN), "--config_file", str(t.config_path), *shared.kv_argv(o)]
    if o.launcher == "python":
        argv = [str(t.install.python), *script]
    else:
        launch = [str(t.install.python), "-m", "accelerate.commands.launch"]
        argv = [*launch, *shared._accelerate_options(o, t, run), *script]
    return Step(
        name=TRAIN,
        phase=PHASES[TRAIN],
        argv=tuple(argv),
        cwd=str(t.install.root),
        progress="train",
        parser=_parser(recipe, TRAIN, "config_file"),
    )


def _convert_step(t, recipe: TrainingFamily, trained: str, final: str) -> Step:
    """musubi's converter for the family (outputs.py, the one table of how a LoRA reaches ComfyUI)."""
    script, *args = outputs.convert_args(recipe.id, trained, final)
    return Step(
        name=CONVERT,
        phase=PHASES[CONVERT],
        argv=(str(t.install.python), str(Path(t.install.root) / script), *args),
        cwd=str(t.install.root),
        progress="count",
        parser=_parser(recipe, CONVERT),
    )


# --------------------------------------------------------------------------- the whole job
def _resolve(opts, t, recipe: TrainingFamily) -> SimpleNamespace:
    processes = opts.num_processes if t.device == "gpu" else 1
    return SimpleNamespace(
        mixed_precision=mixed_precision(opts, recipe, t.device),
        output_name=shared.output_name_for(opts, t.dataset),
        total_steps=shared.total_steps(opts, t.dataset, processes),
    )


def build(opts, t, warnings: list[str] | None = None) -> Job:
    """The Job for validated options (train.plan validates; a direct call is checked here too)."""
    recipe = get(t.model.arch)
    opts = shared._from_dataset(opts, t.dataset)
    check_device(opts, t.device)
    variant = variant_of(opts, recipe, t.model.variant)
    check_family(opts, recipe.id, variant)
    _check(opts, t, recipe, variant)
    run = _resolve(opts, t, recipe)
    run.prompts = shared.sample_prompts_text(  # musubi's prompt lines open more files than sd-scripts'
        opts, recipe.sample_for(variant), sample_prompts.MUSUBI_FILE_OPTIONS, "musubi-tuner"
    )
    ds = dataset_config.build(opts, t.dataset, recipe, t, pairs=pairs_of(recipe, variant))
    steps = [_cache_step(opts, t, recipe, variant, step, ds) for step in (LATENTS, TEXT)]
    steps.append(_train_step(opts, t, recipe, run))
    trained = str(t.run_dir / f"{run.output_name}.safetensors")
    final_name = outputs.comfy_file_name(run.output_name, recipe.id)
    if outputs.output_for(recipe.id).converts:
        steps.append(_convert_step(t, recipe, trained, str(t.run_dir / final_name)))
    config = train_config(opts, t, recipe, variant, run)
    files = {t.config_name: toml_writer.dumps(config), t.dataset_toml.name: ds.text}
    if run.prompts:
        files[t.prompts_path.name] = run.prompts
    notes = [w for w in [*(warnings or []), *ds.warnings] if w]
    return Job(
        backend="musubi-tuner",
        steps=tuple(steps),
        files=files,
        output_dir=str(t.run_dir),
        output_name=run.output_name,
        final_name=final_name,
        total_steps=run.total_steps,
        device=t.device,
        mixed_precision=run.mixed_precision,
        script=recipe.steps[TRAIN],
        warnings=tuple(dict.fromkeys(notes)),
        config=config,
        cache_dirs=tuple(dataset_config.cache_folders(ds.text)),
    )
