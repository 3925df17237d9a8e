"""One LoRA training run, end to end: plan, write the run folder, run the trainer, collect the outputs.

One flow for every trainer: `prepare` validates and finds the family's backend (backends.for_family)
and its install; `build` asks the backend for the run's `Job` (steps and file texts); `_run` writes
`job.files`, every step in command.txt and run.json, runs the steps (runner.run_job: one bar naming
the phase, one Cancel) and records the outcome. Nothing here asks which trainer or family it runs.

    <project>/output/<name>-NNN/      a new folder per run (an earlier LoRA is never overwritten)
        config.toml  dataset.toml  prompts.txt  command.txt  train.log  run.json  loss.png
        <name>.safetensors  <name>-000001.safetensors ...  sample/

The run's fingerprint (dataset content, spec, base model path/size/mtime, script, device, trainer) is
kept in run.json: the same inputs again return the earlier finished run without training. A module
lock makes two trainings in one process run one after another.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import stat
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from .. import disk, paths
from ..dataset import video_frames
from ..dataset.images import is_image
from ..dataset.resize_cache import CACHE_DIR
from ..datatypes import LoraDataset, TrainedLora
from ..errors import DiskFull, PathNotAllowed, ValidationError, WorkbenchError
from ..library import layout, linker
from ..modelfiles import lora_file
from ..modelfiles.detect import ModelInfo, detect_model
from ..modelfiles.safetensors_header import incomplete, read_header
from ..terminal import shown
from . import (
    backends,
    history,
    kohya,
    kvargs,
    losscurve,
    memory,
    model_files,
    module_probe,
    proctree,
    records,
    resume,
    runner,
    write_places,
)
from .backends import Backend, Install
from .command import (
    CAPTION_VARIATION,
    Target,
    cache_text_encoder_outputs,
    caption_variation,
    check_script,
    dataset_settings_note,
    effective_options,
    output_name_for,
    planned_epochs_note,
    resolve_mixed_precision,
)
from .device_probe import gpu_memory_gib, probe_device
from .job import Job
from .options import TrainOptions
from .settings import SETTINGS
from .validation import check_device, check_family, validate

try:  # Python 3.11+; 3.10 needs tomli (ComfyUI's own requirements usually bring it)
    import tomllib
except ModuleNotFoundError:  # pragma: no cover
    import tomli as tomllib  # type: ignore[no-redef]

RUN_FILE = records.RUN_FILE
STATE_CLOCK_SLACK_NS = 1_000_000_000  # file times come from a coarse clock: a little before the launch
_train_lock = threading.Lock()


class TrainingCancelled(WorkbenchError):
    """The user stopped the run (Cancel in ComfyUI, Ctrl-C in the terminal)."""


@dataclass
class TrainRun:
    """What one call to `train()` produced (or found in the cache)."""

    lora: TrainedLora
    run_dir: str
    loss_curve: str  # the PNG beside the LoRA
    samples: list[str] = field(default_factory=list)
    losses: list[tuple[int, float]] = field(default_factory=list)
    cached: bool = False
    warnings: list[str] = field(default_factory=list)
    status: dict = field(default_factory=dict)
    resumed_from: str = ""  # the state folder a resumed run started from


@dataclass(frozen=True)
class Prepared:
    """A validated run before its folder exists: everything but the command."""

    options: TrainOptions  # effective (show_samples' prompts filled in)
    dataset: LoraDataset
    model: ModelInfo
    install: Install  # the trainer's checkout and python (backend.find)
    device: str  # "gpu" | "cpu"
    output_name: str
    fingerprint: str
    warnings: tuple[str, ...]
    model_files: dict = field(default_factory=dict)  # trainer option -> path of an extra model file
    memory: memory.MemoryEstimate | None = None  # the VRAM estimate (GPU runs)
    backend: Backend | None = None  # the trainer that owns the model's family (backends.for_family)
    recipe: Any = None  # how that trainer trains the family (a TrainingFamily)


@dataclass
class Plan:
    """A resolved run: the Job built once for its run folder (`--print-command` shows it)."""

    prepared: Prepared
    job: Job
    run_dir: Path
    resume: resume.ResumePoint | None = None  # a resumed run: the run and state it continues
    launched_ns: int = 0  # when the trainer started (less the clock's slack): states newer are this run's
    cache_notes: list[str] = field(default_factory=list)  # from the command line: where a cache link leads

    @property
    def model(self) -> ModelInfo:
        return self.prepared.model

    @property
    def install(self) -> Install:
        return self.prepared.install

    @property
    def fingerprint(self) -> str:
        return self.prepared.fingerprint

    @property
    def warnings(self) -> list[str]:
        return [*self.job.warnings, *self.cache_notes]


@dataclass(frozen=True)
class RunControl:
    """How the caller watches and steers a run; none of it changes what is trained."""

    on_update: Callable[[runner.TrainStatus], None] | None = None
    should_cancel: Callable[[], bool] | None = None
    node_id: str | None = None
    ui_dirs: Mapping[str, str | os.PathLike] | None = None
    grace_seconds: float = 5.0
    env: dict | None = None
    roots: Sequence[str | os.PathLike] | None = None  # a workflow's allowed roots; None: the CLI
    before_launch: Callable[[str], None] | None = (
        None  # called with "gpu"/"cpu" just before the trainer starts
    )
    require_known_state: bool = True  # resume only states this installation saw written (workflows)


# --------------------------------------------------------------------------- dataset
def dataset_switches(toml_path: str | os.PathLike, keys: tuple[str, ...]) -> tuple[str, ...]:
    """Which of `keys` are on (true or above 0) anywhere in a dataset TOML."""
    try:
        data = tomllib.loads(Path(toml_path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return ()
    tables = [data.get("general") or {}]
    for ds in data.get("datasets") or []:
        tables += [ds, *(ds.get("subsets") or [])] if isinstance(ds, dict) else []
    found = {k for t in tables if isinstance(t, dict) for k in keys if _switched_on(t.get(k))}
    return tuple(k for k in keys if k in found)


def _switched_on(value) -> bool:
    return value is True or (isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0)


def dataset_image_dirs(toml_path: str | os.PathLike) -> list[str]:
    """The image_dir of every subset in the dataset TOML (where sd-scripts writes cached latents)."""
    try:
        data = tomllib.loads(Path(toml_path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    out = []
    for ds in data.get("datasets") or []:
        for sub in (ds.get("subsets") or []) if isinstance(ds, dict) else []:
            if isinstance(sub, dict) and isinstance(sub.get("image_dir"), str):
                out.append(sub["image_dir"])
    return out


def dataset_augments(toml_path: str | os.PathLike) -> tuple[str, ...]:
    """color_aug / random_crop switched on anywhere in a dataset TOML (they forbid latent caching)."""
    return dataset_switches(toml_path, ("color_aug", "random_crop"))


def dataset_captions(toml_path: str | os.PathLike) -> tuple[str, ...]:
    """Caption variation switched on anywhere in a dataset TOML (per-subset caption options, written by
    DatasetSubsetWeights): cached text-encoder outputs cannot follow it."""
    return dataset_switches(toml_path, CAPTION_VARIATION)


# --------------------------------------------------------------------------- planning
def _base_identity(path: str) -> dict:
    p = Path(path)
    try:
        if p.is_dir():
            cfg = p / "unet" / "config.json"
            st = cfg.stat() if cfg.exists() else p.stat()
        else:
            st = p.stat()
    except OSError:  # checked before a run; here only the key is made
        return {"path": str(p)}
    return {"path": str(p), "size": st.st_size, "mtime_ns": st.st_mtime_ns}


# The fields of the first TrainSpec: always in the cache key, so runs cached before the settings
# table still match. Settings added since count only when not at their default.
_V1_KEYS = frozenset(
    "epochs width height seed network_dim network_alpha learning_rate unet_lr text_encoder_lr noise_offset "
    "sample_sampler script model_type output_name batch_size save_every_n_epochs max_train_steps step_rule "
    "train_text_encoder optimizer lr_scheduler lr_warmup_steps mixed_precision save_precision "
    "caption_extension buckets min_bucket_reso max_bucket_reso sample_prompts sample_every_n_epochs "
    "sample_steps gradient_checkpointing cache_latents cache_latents_to_disk lowram attention "
    "v_parameterization data_loader_workers device launcher cpu_threads num_processes gpu_ids "
    "num_machines machine_rank main_process_ip main_process_port".split()
)


def options_key(opts: TrainOptions) -> dict:
    """Every setting that can change the trained file (settings.affects_result), for the cache key."""
    return {
        s.name: getattr(opts, s.name)
        for s in SETTINGS
        if s.affects_result and (s.name in _V1_KEYS or getattr(opts, s.name) != s.default)
    }


def fingerprint(
    opts: TrainOptions,
    dataset: LoraDataset,
    base_model: str,
    *,
    script: str,
    device: str,
    files: Mapping[str, str] | None = None,
    trainer: str = "",
) -> str:
    """The cache key: same dataset content, settings, base model file, script, device and trainer ->
    same run (and the same LoRA file to start from, for a run continued from one). `trainer` is the
    backend's cache_key_id ("" for sd-scripts, whose runs were keyed before there were two)."""
    ds_key = (
        dataset.fingerprint
        or hashlib.sha256(
            Path(dataset.toml_path).read_bytes()
            + json.dumps([s.to_dict() for s in dataset.subsets], sort_keys=True).encode()
        ).hexdigest()
    )
    blob = json.dumps(
        {
            "dataset": ds_key,
            "spec": options_key(opts),
            "base": _base_identity(base_model),
            "script": script,
            "device": device,
            "v": 1,
            **({"files": {k: _base_identity(v) for k, v in sorted(files.items())}} if files else {}),
            **({"weights": _base_identity(opts.network_weights)} if opts.network_weights else {}),
            **({"trainer": trainer} if trainer else {}),
        },
        sort_keys=True,
    )
    return hashlib.sha256(blob.encode()).hexdigest()[:24]


def resumed_fingerprint(setup: str, state: resume.SavedState) -> str:
    """A resumed run's cache key: never the key of a fresh run with the same settings."""
    blob = json.dumps({"setup": setup, "resumed_from": state.path.name, "step": state.step})
    return hashlib.sha256(blob.encode()).hexdigest()[:24]


def output_root(dataset: LoraDataset) -> Path:
    return Path(dataset.project_dir) / "output"


def next_run_dir(root: Path, name: str) -> Path:
    """`<root>/<name>-NNN` with NNN one above the highest existing (never an existing folder)."""
    highest = 0
    if root.is_dir():
        prefix = name + "-"
        for entry in root.iterdir():
            tail = entry.name[len(prefix) :]
            if entry.name.startswith(prefix) and tail.isdigit():
                highest = max(highest, int(tail))
    return root / f"{name}-{highest + 1:03d}"


def _dataset_warnings(opts: TrainOptions, dataset: LoraDataset) -> list[str]:
    if not dataset.subsets or not any(s.images > 0 and not s.is_reg for s in dataset.subsets):
        raise ValidationError(
            f"The dataset {dataset.toml_path} has no training images; add images to the "
            f"project's images/N_name folders and re-run the dataset step."
        )
    _check_resized_captions(opts, dataset)
    warnings = []
    if tuple(dataset.resolution) != (opts.width, opts.height):
        warnings.append(
            f"The dataset was prepared at {dataset.resolution[0]}x{dataset.resolution[1]}; training "
            f"runs at {opts.width}x{opts.height} as set on the trainer."
        )
    return warnings + list(dataset.warnings)


def _check_resized_captions(opts: TrainOptions, dataset: LoraDataset) -> None:
    """Resized copies (wrong_size=resize) carry only the dataset's caption files: another caption
    extension on the trainer would find none there and train those images without captions."""
    ext = opts.caption_extension
    if not ext or ext == dataset.caption_extension:
        return
    cache = (Path(dataset.project_dir) / CACHE_DIR / "resized").resolve()
    resized = [s.name for s in dataset.subsets if Path(s.image_dir).resolve().is_relative_to(cache)]
    if resized:
        raise ValidationError(
            f"The dataset trains {', '.join(resized)} from resized copies in {cache}, which carry only "
            f"{dataset.caption_extension} captions; caption_extension {ext} would train them without "
            f"captions. Set caption_extension {ext} on the dataset step (DatasetSubsetWeights or `dataset "
            f"apply --caption-extension`) and prepare it again, or leave the trainer's caption_extension empty."
        )


def check_network_weights(opts: TrainOptions, model: ModelInfo) -> None:
    """A LoRA file to continue from must exist, fit the base model and the network it starts."""
    path = Path(opts.network_weights)
    if not path.is_file() or path.suffix.lower() not in (".safetensors", ".sft"):
        raise ValidationError(
            f"network_weights {path} is not a .safetensors file; give the LoRA file to continue from."
        )
    cut = incomplete(path)
    if cut:
        raise ValidationError(
            f"network_weights {path} is not a whole LoRA file ({cut}): it was cut off while being written. "
            f"Continue from another file (an earlier epoch's), or train again."
        )
    info = lora_file.inspect(path)
    lora_file.check_compatible(info, model.arch, f"the base model {Path(model.path).name}")
    keys = read_header(path).keys()
    lycoris_kind = next((t for m, t in _LYCORIS_KEYS if any(m in k for k in keys)), None)
    if lycoris_kind and opts.network_type != lycoris_kind:
        raise ValidationError(
            f"network_weights {path.name} holds {lycoris_kind} weights; set network_type to {lycoris_kind}."
        )
    if not lycoris_kind and opts.network_type in kvargs.LORA_MODULE_TYPES and not opts.dim_from_weights:
        if info.rank is not None and info.rank != opts.network_dim:
            raise ValidationError(
                f"network_weights {path.name} has rank {info.rank} and network_dim is {opts.network_dim}; set "
                f"network_dim to {info.rank} (and network_alpha to its alpha), or turn dim_from_weights on."
            )


_LYCORIS_KEYS = ((".hada_w1_a", "lycoris_loha"), (".lokr_w1", "lycoris_lokr"))


def prepare(
    opts: TrainOptions,
    dataset: LoraDataset,
    base_model: str | os.PathLike,
    *,
    trainer_root: str | os.PathLike | None = None,
    kohya_root: str | os.PathLike | None = None,
    device: str | None = None,
    files: model_files.FileSource | None = None,
    env: dict | None = None,
) -> Prepared:
    """Validate everything once (settings, device, family, files, dataset, the LyCORIS package, the LoRA
    file to continue from) and find what the run needs: the trainer that owns the model's family and
    its install (`trainer_root`, or its path setting; `kohya_root` is the older name of trainer_root).
    `files` says where the extra model files come from (the node: ComfyUI's folders; default: paths,
    or names in $COMFYUI_PATH/models)."""
    notes = dataset_settings_note(opts, dataset) + planned_epochs_note(opts, dataset)
    opts = effective_options(opts, dataset)
    warnings = validate(opts) + notes  # the options as they will train: the plan's epochs included
    base = str(Path(base_model).expanduser())
    model = detect_model(base, opts.model_type)
    if model.unusable:
        raise ValidationError(f"{base} is {model.name}, but {model.unusable}.")
    warnings += [w for w in model.warnings if w not in warnings]
    backend, recipe = backends.for_family(model.arch)
    video_frames.refuse_videos(dataset.subsets, recipe.video, model.name)
    if recipe.video:
        warnings += [w for w in video_frames.check_video_frames(dataset.subsets, opts) if w not in warnings]
    install = backend.find(_root(trainer_root or kohya_root))
    if device is None:
        spec = backend.install_spec
        device = (
            opts.device
            if opts.device != "auto"
            else probe_device(install.python, spec.trainer, spec.python_env)
        )
    check_device(opts, device)
    if device == "cpu" and recipe.cpu_note:
        warnings.append(recipe.cpu_note)
    check_family(opts, model.arch, model.variant)
    check_script(opts, model)
    extra = _pick_files(opts, model, recipe, files)
    if opts.network_weights:
        check_network_weights(opts, model)
    if opts.network_type in kvargs.LYCORIS_TYPES:
        module_probe.require_lycoris(install.python, opts.network_type, env=env, cwd=str(install.scripts_dir))
    warnings += [w for w in _dataset_warnings(opts, dataset) if w not in warnings]
    estimate = _memory(opts, model, recipe, device, install, dataset_captions(dataset.toml_path))
    if estimate is not None and estimate.verdict in ("tight", "too_big"):
        warnings.append(estimate.message())
    script = opts.script if opts.script != "auto" else recipe.script
    trainer = getattr(backend, "cache_key_id", backend.id)
    fp = fingerprint(opts, dataset, base, script=script, device=device, files=extra, trainer=trainer)
    name = output_name_for(opts, dataset)
    return Prepared(
        opts, dataset, model, install, device, name, fp, tuple(warnings), extra, estimate, backend, recipe
    )


def _root(value: str | os.PathLike | None) -> Path | None:
    return Path(value).expanduser() if value else None


def _pick_files(opts: TrainOptions, model: ModelInfo, recipe, files: model_files.FileSource | None) -> dict:
    """Trainer option -> path of every extra model file the family needs (model_files.pick)."""
    slots = recipe.model_files
    if not slots:
        return {}
    source = files or model_files.path_source(paths.comfyui_path())
    chosen = {slot.setting: getattr(opts, slot.setting, model_files.AUTO) for slot in slots}
    return model_files.as_options(model_files.pick(model, chosen, source.listing, source.resolve, recipe))


def _memory(
    opts: TrainOptions, model: ModelInfo, fam, device: str, install, captions: tuple[str, ...] = ()
) -> memory.MemoryEstimate | None:
    """The VRAM estimate of a GPU run against the GPU's memory (None on the CPU)."""
    if device != "gpu":
        return None
    shape = memory.RunShape(
        model.arch,
        model.variant,
        opts.width,
        opts.height,
        opts.batch_size or 1,
        resolve_mixed_precision(opts, device),
        opts.fp8_base or opts.fp8_scaled,
        opts.blocks_to_swap,
        opts.gradient_checkpointing,
        cache_text_encoder_outputs(
            opts,
            fam,
            opts.train_text_encoder and fam.trains_text_encoder,
            caption_variation(opts, fam, captions),
        ),
        opts.train_text_encoder and fam.trains_text_encoder,
        opts.cache_latents,
        opts.network_dim,
        opts.optimizer,
        opts.text_encoder_cpu,
    )
    return memory.estimate(shape, gpu_memory_gib(install.python))


def build(prep: Prepared, run_dir: Path, point: resume.ResumePoint | None = None) -> Plan:
    """The backend's Job for one run folder (built once per run); a resumed run starts from its state."""
    run_dir = Path(run_dir)
    state = point.state if point is not None else None
    target = Target(
        prep.dataset,
        prep.model,
        prep.install,
        prep.device,
        run_dir,
        logging_dir=Path(prep.dataset.project_dir) / "logs",
        model_files=dict(prep.model_files),
        resume_state=state.path if state is not None else None,
        dataset_augments=dataset_augments(prep.dataset.toml_path),
        dataset_captions=dataset_captions(prep.dataset.toml_path),
        config_name=_resume_config_name(point) if point is not None else "config.toml",
    )
    backend = prep.backend or backends.owner_of(prep.model.arch)
    return Plan(prep, backend.build(prep.options, target, list(prep.warnings)), run_dir, point)


def _resume_config_name(point: resume.ResumePoint) -> str:
    return f"config-resume-{len(point.record.get('resumes') or []) + 1}.toml"


def plan(
    opts: TrainOptions,
    dataset: LoraDataset,
    base_model: str | os.PathLike,
    *,
    trainer_root: str | os.PathLike | None = None,
    kohya_root: str | os.PathLike | None = None,
    device: str | None = None,
    files: model_files.FileSource | None = None,
) -> Plan:
    """Validate and build the Job for the next run folder (or the resumed one), writing nothing."""
    root = trainer_root or kohya_root
    prep = prepare(opts, dataset, base_model, trainer_root=root, device=device, files=files)
    if prep.options.resume:
        point = resume_point(prep, require_known_state=False)
        if point.state is not None:
            return build(prep, point.run_dir, point)
    return build(prep, next_run_dir(output_root(dataset), prep.output_name))


# --------------------------------------------------------------------------- the cache
# A run.json may come from a shared project: it is read no-follow and capped, its loss points typed,
# and every file it names is looked up by its name in this run folder (no link), never at its path.
def _read_run(run_dir: Path) -> dict | None:
    try:
        rec = records.read(run_dir)
    except (OSError, WorkbenchError):
        return None
    return rec if isinstance(rec, dict) else None


def _here(run_dir: Path, recorded: object, sub: str = "") -> str:
    """The file a record names, by its name in the run folder (or its `sub` folder); "" when it is not
    a plain file there (a record may name any path; a moved project's names the old place)."""
    name = os.path.basename(recorded) if isinstance(recorded, str) else ""
    folder = run_dir / sub if sub else run_dir
    try:
        plain = bool(name) and not folder.is_symlink() and stat.S_ISREG(os.lstat(folder / name).st_mode)
    except (OSError, ValueError):
        plain = False
    return str(folder / name) if plain else ""


def _texts(value: object) -> list[str]:
    return [v for v in value if isinstance(v, str)] if isinstance(value, list) else []


def _cached_lora(run_dir: Path, raw: object) -> TrainedLora | None:
    """The record's trained_lora with its files in this run folder; None when its LoRA is not there."""
    path = _here(run_dir, raw.get("path")) if isinstance(raw, dict) else ""
    if not path:
        return None
    return TrainedLora(
        path=path,
        epoch_paths=[p for p in (_here(run_dir, e) for e in _texts(raw.get("epoch_paths"))) if p],
        base_model=raw.get("base_model") if isinstance(raw.get("base_model"), str) else "",
        base_arch=raw.get("base_arch") if isinstance(raw.get("base_arch"), str) else "",
        trigger_words=_texts(raw.get("trigger_words")),
        output_dir=str(run_dir),
        log_path=_here(run_dir, "train.log"),
        command_path=_here(run_dir, "command.txt"),
        metadata=raw.get("metadata") if isinstance(raw.get("metadata"), dict) else {},
    )


def find_cached(dataset: LoraDataset, fp: str) -> TrainRun | None:
    """The newest finished run with this fingerprint whose LoRA file is still in its run folder."""
    root = output_root(dataset)
    if not root.is_dir():
        return None
    folders = (p for p in root.iterdir() if p.is_dir() and not p.is_symlink())
    for run_dir in sorted(folders, key=lambda p: p.name, reverse=True):
        rec = _read_run(run_dir)
        if not rec or rec.get("fingerprint") != fp or rec.get("state") != "finished":
            continue
        lora = _cached_lora(run_dir, rec.get("trained_lora"))
        if lora is None:
            continue
        typed = records.typed(rec)
        return TrainRun(
            lora=lora,
            run_dir=str(run_dir),
            loss_curve=_here(run_dir, rec.get("loss_curve")),
            samples=[p for p in (_here(run_dir, s, "sample") for s in _texts(rec.get("samples"))) if p],
            losses=[(s, math.nan if v is None else v) for s, v in typed.get("losses", [])],
            cached=True,
            warnings=[f"Reused the earlier run {run_dir} (same dataset, settings and base model)."],
            status=typed["status"],
        )
    return None


# --------------------------------------------------------------------------- running
def _write_json(path: Path, data: dict) -> None:
    """Whole or not at all (a temporary file renamed into place); DiskFull when the disk is full."""
    disk.write_atomic(path, json.dumps(data, indent=2, default=str))


def _lora_metadata(path: str) -> dict:
    try:
        meta = read_header(path).metadata
    except WorkbenchError:
        return {}
    return {
        k: v
        for k, v in meta.items()
        if (k.startswith("ss_") or k.startswith("modelspec.")) and k != "ss_tag_frequency"
    }


def _publish_cached(run: TrainRun, node_id: str | None) -> None:
    st = runner.TrainStatus(
        run_id=Path(run.run_dir).name,
        state="finished",
        log_path=run.lora.log_path,
        node_id=node_id,
        losses=list(run.losses),
        message=f"reused {Path(run.run_dir).name} (same inputs)",
    )
    if run.losses:
        st.step = st.total = run.losses[-1][0]
        st.loss = run.losses[-1][1]
    runner.publish_status(st)
    run.status = st.to_dict()


def _link(project_dir: str, ctl: RunControl) -> list[str]:
    """Link the project's LoRAs into the UIs' LoRA folders; from a workflow (ctl.roots set) only into
    folders that resolve inside their UI folder or the allowed roots, as LinkModelLibrary does."""
    ui_dirs = ctl.ui_dirs if ctl.ui_dirs is not None else layout.default_ui_dirs()
    try:
        report = linker.link_trained(project_dir, ui_dirs, roots=ctl.roots)
    except WorkbenchError as exc:
        return [f"Linking into the model library failed: {exc}"]
    out = [f"Library link {path}: {why}" for path, why in [*report.errors, *report.collisions]]
    refused = [s for s in [*report.skipped_targets, *report.messages] if s.endswith("; not linked")]
    return out + [f"Library link refused: {s}" for s in refused]


def train(
    opts: TrainOptions,
    dataset: LoraDataset,
    base_model: str | os.PathLike,
    *,
    trainer_root: str | os.PathLike | None = None,
    kohya_root: str | os.PathLike | None = None,
    device: str | None = None,
    use_cache: bool = True,
    files: model_files.FileSource | None = None,
    **control,
) -> TrainRun:
    """Train (or reuse, or resume) a LoRA. `control` are RunControl's fields (on_update, should_cancel,
    node_id, ui_dirs, grace_seconds, env, roots, before_launch, require_known_state). Raises
    ValidationError before launch, TrainingCancelled on cancel, and WorkbenchError quoting the log's last
    meaningful lines when the trainer fails or writes no LoRA. `kohya_root`: the older name of
    trainer_root (the trainer's checkout; default: its path setting). An exception raised by `on_update`
    (ComfyUI's interrupt) kills the run and propagates."""
    ctl = RunControl(**control)
    with _train_lock:
        root = trainer_root or kohya_root
        prep = prepare(opts, dataset, base_model, trainer_root=root, device=device, files=files, env=ctl.env)
        prep = _check_write_places(prep, ctl)
        if prep.options.resume:
            return _resume(prep, ctl)
        if use_cache:
            hit = find_cached(dataset, prep.fingerprint)
            if hit is not None:
                return _reuse(hit, prep, ctl)
        run_dir = write_places.make_run_dir(dataset.project_dir, prep.output_name, ctl.roots)
        history.remember_run(run_dir)  # the Training tab lists runs from the CLI and the API too
        return _run(build(prep, run_dir), ctl)


def _check_write_places(prep: Prepared, ctl: RunControl) -> Prepared:
    """From a workflow, refuse a project whose output/, logs/ or subset folders lead out of the allowed
    roots (write_places); from the command line, add a warning where a link leads."""
    opts, dataset = prep.options, prep.dataset
    notes = write_places.check_project(dataset.project_dir, ctl.roots, tensorboard=opts.tensorboard)
    if opts.cache_latents and opts.cache_latents_to_disk:
        write_places.check_subset_folders(dataset_image_dirs(dataset.toml_path), ctl.roots)
    return replace(prep, warnings=(*prep.warnings, *notes)) if notes else prep


def _reuse(hit: TrainRun, prep: Prepared, ctl: RunControl) -> TrainRun:
    _publish_cached(hit, ctl.node_id)
    if prep.options.link_to_library:
        hit.warnings += _link(prep.dataset.project_dir, ctl)
    return hit


def resume_point(prep: Prepared, *, require_known_state: bool = True) -> resume.ResumePoint:
    """The run `resume` names, checked: the same setup, not running elsewhere, a state to start from
    (trusted, for a workflow). A finished run comes back with state None (nothing to resume)."""
    point = resume.find_point(prep.options.resume, output_root(prep.dataset), prep.output_name)
    rec, run_name = point.record, point.run_dir.name
    if (rec.get("setup_fingerprint") or rec.get("fingerprint")) != prep.fingerprint:
        raise ValidationError(
            f"The run {run_name} was set up differently ({resume.mismatch(rec, prep.options.to_dict())}); a "
            f"resumed run continues it as it was. Set the settings back, or clear resume to start a new run."
        )
    if rec.get("state") == "finished":
        return resume.ResumePoint(point.run_dir, rec, None)
    pid = rec.get("pid")
    if (
        rec.get("state") == "running"
        and isinstance(pid, int)
        and pid != os.getpid()
        and proctree.pid_alive(pid)
    ):
        raise ValidationError(
            f"The run {run_name} is still training (process {pid}); wait for it or cancel it first."
        )
    if point.state is None:
        raise ValidationError(
            f"The run {run_name} has no saved training state to resume from (save_state was off, or it "
            f"stopped before the first one); start a new run, with save_state on to be able to resume it."
        )
    if point.state.step >= int(rec.get("total_steps") or 0) > 0:
        raise ValidationError(
            f"The run {run_name}'s newest state is at its last step; there is nothing left to train."
        )
    if require_known_state:
        resume.check_known(point.state)
    return point


def _resume(prep: Prepared, ctl: RunControl) -> TrainRun:
    point = resume_point(prep, require_known_state=ctl.require_known_state)
    if point.state is None:  # finished already (e.g. the same resumed prompt queued again)
        hit = find_cached(prep.dataset, point.record.get("fingerprint", ""))
        if hit is not None:
            hit.warnings.append(f"{point.run_dir.name} has finished; there was nothing to resume.")
            return _reuse(hit, prep, ctl)
        raise ValidationError(
            f"The run {point.run_dir.name} has finished but its LoRA file is gone; start a new run."
        )
    if ctl.roots is not None:  # the trainer writes into the resumed run folder by name
        write_places.check_resumed_run(point.run_dir)
    history.remember_run(point.run_dir)  # a run resumed from another index (or none) shows in the tab too
    return _run(build(prep, point.run_dir, point), ctl)


def write_run_files(p: Plan) -> dict:
    """The job's files (config.toml, dataset.toml, prompts.txt, ...), command.txt (every step) and the
    first run.json; a resumed run writes its own config (config-resume-N.toml), appends to command.txt
    and updates the run's record."""
    job, run_dir = p.job, p.run_dir
    for name, text in job.files.items():
        disk.write_atomic(run_dir / _plain_name(name), text)
    text = commands_text(job)
    earlier = b""
    if p.resume is not None:
        text = f"# resumed from {p.resume.state.path.name}\n" + text
        earlier = _earlier_commands(run_dir / "command.txt")
    disk.write_atomic(run_dir / "command.txt", text, append_to=earlier)
    record = _resumed_record(p) if p.resume is not None else _new_record(p)
    _write_json(run_dir / RUN_FILE, record)
    return record


def _plain_name(name: str) -> str:
    """A job file's name: a plain name in the run folder (a backend never names another place)."""
    if not name or name != Path(name).name or name in (".", ".."):
        raise ValueError(f"a job file must be a plain name in the run folder, not {name!r}")
    return name


def commands_text(job: Job) -> str:
    """command.txt: each step's working directory and command (one step: as before there were more)."""
    out = []
    for i, step in enumerate(job.steps, 1):
        if len(job.steps) > 1:
            out.append(f"# step {i}/{len(job.steps)}: {step.phase} ({step.name})")
        out.append(f"# working directory: {shown(step.cwd)}\n{step.display()}")
    return "\n".join(out) + "\n"


def _steps_record(job: Job) -> list[dict]:
    return [{"name": s.name, "phase": s.phase, "argv": list(s.argv), "cwd": s.cwd} for s in job.steps]


def _earlier_commands(path: Path) -> bytes:
    """A resumed run's command.txt so far (a regular file, not followed if a link), kept in front."""
    try:  # the run folder was checked by write_places; the file in it is opened without following a link
        with paths.open_dir(path.parent, what="run folder", confined=False) as folder:
            return folder.read_bytes(path.name)
    except (OSError, WorkbenchError):
        return b""


def _resumed_record(p: Plan) -> dict:
    """The run's record, now resumed: its own cache key, the losses up to the state, the attempt noted."""
    point = p.resume
    state = point.state
    record = dict(point.record)
    setup = record.get("setup_fingerprint") or record.get("fingerprint")
    record.pop("error", None)
    record.update(
        fingerprint=resumed_fingerprint(setup, state),
        setup_fingerprint=setup,
        state="running",
        pid=os.getpid(),
        backend=p.job.backend,
        steps=_steps_record(p.job),
        argv=list(p.job.train_step.argv),
        losses=[x for x in record.get("losses") or [] if x[0] <= state.step],
        resumes=[
            *(record.get("resumes") or []),
            {
                "from": state.path.name,
                "step": state.step,
                "epoch": state.epoch,
                "at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            },
        ],
    )
    return record


def _new_record(p: Plan) -> dict:
    """The first run.json: `argv` and `cwd` are the train step's (for readers older than `steps`)."""
    job, dataset = p.job, p.prepared.dataset
    return {
        "fingerprint": p.fingerprint,
        "setup_fingerprint": p.fingerprint,
        "output_name": job.output_name,
        "final_name": job.final_name,
        "total_steps": job.total_steps,
        "pid": os.getpid(),
        "state": "running",
        "started_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "spec": p.prepared.options.to_dict(),
        "dataset": dataset.to_dict(),
        "base_model": p.model.path,
        "base_arch": p.model.arch,
        "detected_by": p.model.how,
        "backend": job.backend,
        "script": job.script,
        "device": job.device,
        "steps": _steps_record(job),
        "argv": list(job.train_step.argv),
        "cwd": job.train_step.cwd,
        "warnings": p.warnings,
        "python": sys.version.split()[0],
    }


def _run(p: Plan, ctl: RunControl) -> TrainRun:
    """Write the run folder, run the job's steps, and turn what they left into a TrainRun (or an error)."""
    check_cache_folders(p.job, ctl.roots)
    p.cache_notes = write_places.make_cache_folders(
        p.prepared.dataset.project_dir, p.job.cache_dirs, ctl.roots
    )
    record = write_run_files(p)
    if ctl.before_launch is not None:
        ctl.before_launch(p.job.device)
    p.launched_ns = time.time_ns() - STATE_CLOCK_SLACK_NS  # the states this run saves are newer
    result = _launch(p, ctl, record)
    loss_png, notes = _check_outcome(p, result, record)
    return _finished(p, ctl, record, result.status, loss_png, notes)


def check_cache_folders(job: Job, roots: Sequence[str | os.PathLike] | None) -> None:
    """From a workflow: every cache step's folder (where the trainer writes its cache and the runner its
    marker) must resolve inside the allowed roots; a shared project's cache folder may be a link out."""
    if roots is None:
        return
    for step in job.steps:
        if step.reuse_marker:
            try:
                paths.confine(Path(step.reuse_marker).parent, what="cache folder", extra_roots=roots)
            except PathNotAllowed as exc:
                raise PathNotAllowed(
                    f"{exc} {step.phase} writes its cache there; move the project's cache folder back "
                    f"into the project, or train from the command line."
                ) from None


class _StateRecorder:
    """Records the states sd-scripts saves as they appear, not only at the end, so a run whose ComfyUI
    was killed (no end to record anything) can still be resumed from a workflow. sd-scripts saves an
    epoch's state before it prints the next `epoch N/M`, so each new epoch records what came before;
    the `on_update` it wraps is called after."""

    def __init__(self, p: Plan, on_update: Callable[[runner.TrainStatus], None] | None):
        self.plan, self.on_update = p, on_update
        self.epoch: int | None = None
        self.recorded: set[str] = set()  # states digested already (a state is not rewritten)

    def __call__(self, status: runner.TrainStatus) -> None:
        if status.epoch != self.epoch:
            self.epoch = status.epoch
            p = self.plan
            resume.remember_states(p.run_dir, p.job.output_name, p.launched_ns, skip=self.recorded)
        if self.on_update is not None:
            self.on_update(status)


def _launch(p: Plan, ctl: RunControl, record: dict):
    """The job's steps, start to end; run.json says cancelled/failed when it raises (with the loss
    curve so far and the states it saved, so the run can be resumed)."""
    job, run_dir = p.job, p.run_dir
    offset = p.resume.state.step if p.resume is not None else 0
    try:
        return runner.run_job(
            job.steps,
            runner.RunOptions(
                cwd=job.train_step.cwd,
                env=ctl.env,
                log_path=str(run_dir / "train.log"),
                total_steps=job.total_steps,
                on_update=_StateRecorder(p, ctl.on_update),
                should_cancel=ctl.should_cancel,
                run_id=run_dir.name,
                node_id=ctl.node_id,
                grace_seconds=ctl.grace_seconds,
                sample_dir=str(run_dir / "sample"),
                step_offset=offset,
                prior_losses=[(x[0], math.nan if x[1] is None else x[1]) for x in record.get("losses") or []],
                trainer=job.backend,
            ),
        )
    except BaseException as exc:
        interrupted = isinstance(exc, KeyboardInterrupt) or "Interrupt" in type(exc).__name__
        last = runner.current_status() or {}
        record.update(
            state="cancelled" if interrupted else "failed",
            error=f"{type(exc).__name__}: {exc}",
            finished_at=time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        )
        if last.get("run_id") == run_dir.name:
            record["losses"] = [x for x in last.get("losses") or [] if x[1] is not None]
        record["states"] = resume.remember_states(run_dir, job.output_name, p.launched_ns)
        record["removed_cut_off"] = remove_cut_off_loras(run_dir)
        _write_json(run_dir / RUN_FILE, record)
        raise


def _check_outcome(p: Plan, result, record: dict) -> tuple[str, list[str]]:
    """The loss curve's path and notes for the run's warnings; raises TrainingCancelled or
    WorkbenchError when no whole LoRA came out (a cut-off one is removed first)."""
    job, run_dir, status = p.job, p.run_dir, result.status
    final = Path(job.final_path)
    cut = incomplete(final) if final.is_file() else "it was not written"
    ok = status.state == "finished" and result.returncode in (0, None) and not cut
    loss_png, notes = _loss_curve(p, status, ok)
    record.update(
        finished_at=time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        returncode=result.returncode,
        losses=[list(x) for x in status.losses],
        loss_curve=loss_png,
        states=resume.remember_states(run_dir, job.output_name, p.launched_ns, problems=notes),
        total_steps=status.total or job.total_steps,
    )
    if ok:
        return loss_png, notes
    removed = remove_cut_off_loras(run_dir)
    if removed:
        record["removed_cut_off"] = removed
    if result.cancelled or status.state == "cancelled":
        record.update(state="cancelled", status=status.to_dict(max_losses=500))
        _write_record(run_dir, record)
        raise TrainingCancelled(f"Training {run_dir.name} was cancelled; partial files are in {run_dir}.")
    _say_why_it_failed(p, result, final, cut)
    hint = kohya.offline_tokenizer_hint(result.tail, _tokenizer_cache_of(job))
    text = (
        (hint + " " if hint else "")
        + result.error_message()
        + _removed_note(removed)
        + "".join(f"\n\n{n}" for n in notes)
    )
    record.update(state="failed", error=text, status=status.to_dict(max_losses=500))
    _write_record(run_dir, record)
    raise WorkbenchError(f"Training {run_dir.name} failed: {text}")


def _loss_curve(p: Plan, status: runner.TrainStatus, ok: bool) -> tuple[str, list[str]]:
    """loss.png beside the LoRA; a full disk leaves none (never a 0-byte one) and says so."""
    if not (status.losses or ok):
        return "", []
    try:
        png = losscurve.render_loss_png(
            status.losses, p.run_dir / "loss.png", title=f"{p.job.output_name} loss"
        )
    except DiskFull as exc:
        return "", [f"The loss curve was not saved: {exc}"]
    return png, []


def _say_why_it_failed(p: Plan, result, final: Path, cut: str) -> None:
    """The status message of a failed run: a full disk as one sentence (the trainer's own words in
    it), a run that ended without a whole LoRA as such; published so the UI shows it."""
    status, who = result.status, p.job.backend
    said = disk.full_in_log([status.message, *result.tail], p.run_dir)
    if said:
        status.message = disk.full_sentence(p.run_dir, said, writer=who)
    elif status.state == "finished":  # exit 0 but no whole file: never report that as a success
        status.message = f"{who} ended without writing {final.name} whole ({cut})"
    else:
        return
    status.state = "failed"
    runner.publish_status(status)


def _removed_note(removed: list[str]) -> str:
    if not removed:
        return ""
    return (
        f"\n\nRemoved {', '.join(removed)}: cut off while being written, so no loader, link or "
        f"continued run may take it for a whole LoRA."
    )


def _write_record(run_dir: Path, record: dict) -> None:
    """run.json of a run that did not finish; a full disk says the record could not be updated."""
    try:
        _write_json(run_dir / RUN_FILE, record)
    except DiskFull as exc:
        raise WorkbenchError(
            f"Training {run_dir.name} {record.get('state')}: {record.get('error') or 'cancelled'}\n\n"
            f"Its record could not be updated either: {exc}"
        ) from None


def remove_cut_off_loras(run_dir: Path) -> list[str]:
    """Remove the run's LoRA files that were cut off while being written (a full disk, a run stopped
    while saving): LoadTrainedLoRA's list, link-trained and continuing from network_weights must never
    take one for a whole LoRA, and a full disk needs the space to record the failure. Returns their names."""
    removed = []
    try:
        entries = list(os.scandir(run_dir))
    except OSError:
        return removed
    for entry in entries:
        if not entry.name.endswith(".safetensors") or not entry.is_file(follow_symlinks=False):
            continue
        if incomplete(entry.path):
            try:
                os.unlink(entry.path)
            except OSError:
                continue
            removed.append(entry.name)
    return sorted(removed)


def _tokenizer_cache_of(job: Job) -> str:
    for section in job.config.values():
        if isinstance(section, dict) and section.get("tokenizer_cache_dir"):
            return str(section["tokenizer_cache_dir"])
    return ""


def _finished(
    p: Plan, ctl: RunControl, record: dict, status, loss_png: str, notes: Sequence[str] = ()
) -> TrainRun:
    job, run_dir, dataset = p.job, p.run_dir, p.prepared.dataset
    name = job.output_name
    epoch_paths = sorted(str(f) for f in run_dir.glob(f"{name}-[0-9][0-9][0-9][0-9][0-9][0-9].safetensors"))
    samples = sorted(str(f) for f in (run_dir / "sample").glob("*") if is_image(f.name))
    lora = TrainedLora(
        path=job.final_path,
        epoch_paths=epoch_paths,
        base_model=p.model.path,
        base_arch=p.model.arch,
        trigger_words=list(dataset.class_tokens),
        output_dir=str(run_dir),
        log_path=str(run_dir / "train.log"),
        command_path=str(run_dir / "command.txt"),
        metadata=_lora_metadata(job.final_path),
    )
    warnings = list(p.warnings) + list(notes)
    if p.prepared.options.link_to_library:
        warnings += _link(dataset.project_dir, ctl)
    record.update(
        state="finished",
        trained_lora=lora.to_dict(),
        samples=samples,
        status=status.to_dict(max_losses=500),
        warnings=warnings,
    )
    _write_json(run_dir / RUN_FILE, record)
    return TrainRun(
        lora=lora,
        run_dir=str(run_dir),
        loss_curve=loss_png,
        samples=samples,
        losses=list(status.losses),
        warnings=warnings,
        status=status.to_dict(),
        resumed_from=p.resume.state.path.name if p.resume is not None else "",
    )
