"""One LoRA training run, end to end: plan, write the run folder, run sd-scripts, collect the outputs.

    <project>/output/<name>-NNN/      a new folder per run (an earlier LoRA is never overwritten)
        config.toml  dataset.toml  prompts.txt  command.txt  train.log  run.json  loss.png
        <name>.safetensors  <name>-000001.safetensors ...  sample/

The run's fingerprint (dataset content, spec, base model path/size/mtime, script, device) is kept in
run.json: the same inputs again return the earlier finished run without training. A module lock makes
two trainings in one process run one after another.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from .. import toml_writer
from ..dataset.images import is_image
from ..datatypes import LoraDataset, TrainedLora
from ..errors import ValidationError, WorkbenchError
from ..modelfiles.detect import ModelInfo, detect_model
from ..modelfiles.safetensors_header import read_header
from . import kohya, runner
from .kohya import Command, KohyaInstall, TrainSpec

try:  # Python 3.11+; 3.10 needs tomli (ComfyUI's own requirements usually bring it)
    import tomllib
except ModuleNotFoundError:  # pragma: no cover
    import tomli as tomllib  # type: ignore[no-redef]

RUN_FILE = "run.json"
_train_lock = threading.Lock()
_device_cache: dict[str, str] = {}


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


@dataclass
class Plan:
    """A resolved run before anything is written (`--print-command` shows it)."""

    command: Command
    model: ModelInfo
    install: KohyaInstall
    run_dir: Path
    fingerprint: str
    dataset_patch: dict  # what the dataset TOML copy changes (empty: copied as is)
    warnings: list[str]


# --------------------------------------------------------------------------- dataset
def dataset_patch(spec: TrainSpec, dataset: LoraDataset) -> dict:
    """What the run's copy of the dataset TOML sets over the original (the trainer's widgets win)."""
    patch: dict = {}
    if (spec.width, spec.height) != tuple(dataset.resolution):
        patch["resolution"] = [spec.width, spec.height]
    if spec.batch_size and spec.batch_size != dataset.batch_size:
        patch["batch_size"] = spec.batch_size
    if spec.buckets == "on":
        patch.update(
            enable_bucket=True,
            min_bucket_reso=spec.min_bucket_reso,
            max_bucket_reso=spec.max_bucket_reso,
            bucket_no_upscale=True,
        )
    elif spec.buckets == "off" and dataset.enable_bucket:
        patch["enable_bucket"] = False
    if spec.caption_extension and spec.caption_extension != dataset.caption_extension:
        patch["caption_extension"] = spec.caption_extension
    return patch


def write_dataset_copy(dataset: LoraDataset, patch: dict, dest: Path) -> None:
    """Copy the dataset TOML into the run folder, with `patch` applied to every [[datasets]] entry."""
    src = Path(dataset.toml_path)
    if not patch:
        shutil.copyfile(src, dest)
        return
    data = tomllib.loads(src.read_text(encoding="utf-8"))
    cap = patch.get("caption_extension")
    general = data.setdefault("general", {})
    for key in ("resolution", "batch_size", "enable_bucket"):
        if key in patch:
            general.pop(key, None)
    if cap:
        general["caption_extension"] = cap
    for ds in data.get("datasets", []):
        for key, value in patch.items():
            if key != "caption_extension":
                ds[key] = value
        for s in ds.get("subsets", []):
            if cap and "caption_extension" in s:
                s["caption_extension"] = cap
    head = (
        f"# Copy of {src} for this run; the trainer set: "
        + ", ".join(f"{k}={v}" for k, v in patch.items())
        + "\n"
    )
    dest.write_text(head + toml_writer.dumps(data), encoding="utf-8")


# --------------------------------------------------------------------------- planning
def probe_device(python: str | os.PathLike) -> str:
    """ "gpu" when torch in the sd-scripts environment sees CUDA (or MPS), else "cpu" (cached per python)."""
    key = str(python)
    if key in _device_cache:
        return _device_cache[key]
    code = (
        "import torch; mps = getattr(torch.backends, 'mps', None); "
        "print('gpu' if torch.cuda.is_available() or (mps is not None and mps.is_available()) else 'cpu')"
    )
    try:
        proc = subprocess.run(
            [key, "-c", code], capture_output=True, text=True, timeout=180, env=runner.child_env(None)
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ValidationError(
            f"Could not run the sd-scripts python {key} ({exc}); set KOHYA_PYTHON to a working interpreter."
        ) from None
    out = proc.stdout.strip().splitlines()
    if proc.returncode != 0 or not out or out[-1] not in ("gpu", "cpu"):
        last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        raise ValidationError(
            f"The sd-scripts python {key} cannot import torch ({last}); install sd-scripts' "
            f"requirements in that environment or set KOHYA_PYTHON to the right interpreter."
        )
    _device_cache[key] = out[-1]
    return out[-1]


def _base_identity(path: str) -> dict:
    p = Path(path)
    if p.is_dir():
        cfg = p / "unet" / "config.json"
        st = cfg.stat() if cfg.exists() else p.stat()
    else:
        st = p.stat()
    return {"path": str(p), "size": st.st_size, "mtime_ns": st.st_mtime_ns}


def fingerprint(spec: TrainSpec, dataset: LoraDataset, base_model: str, *, script: str, device: str) -> str:
    """The cache key: same dataset content, spec, base model file, script and device -> same run."""
    ds_key = (
        dataset.fingerprint
        or hashlib.sha256(
            Path(dataset.toml_path).read_bytes()
            + json.dumps([s.to_dict() for s in dataset.subsets], sort_keys=True).encode()
        ).hexdigest()
    )
    spec_key = spec.to_dict()
    spec_key.pop("tokenizer_cache_dir", None)  # where the tokenizer is cached changes nothing trained
    blob = json.dumps(
        {
            "dataset": ds_key,
            "spec": spec_key,
            "base": _base_identity(base_model),
            "script": script,
            "device": device,
            "v": 1,
        },
        sort_keys=True,
    )
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


def _make_run_dir(root: Path, name: str) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for _ in range(1000):
        candidate = next_run_dir(root, name)
        try:
            candidate.mkdir()
            return candidate
        except FileExistsError:  # another process took it: take the next number
            continue
    raise WorkbenchError(f"Could not create a new run folder in {root}.")


def plan(
    spec: TrainSpec,
    dataset: LoraDataset,
    base_model: str | os.PathLike,
    *,
    kohya_root: str | os.PathLike | None = None,
    device: str | None = None,
) -> Plan:
    """Validate everything and resolve the command, writing nothing (the run folder is where it would go)."""
    warnings = list(kohya.validate(spec))
    base = str(Path(base_model).expanduser())
    model = detect_model(base, spec.model_type)
    install = kohya.find_install(kohya_root)
    if device is None:
        device = spec.device if spec.device != "auto" else probe_device(install.python)
    if device == "cpu":
        kohya.check_cpu(spec)
    if not dataset.subsets or not any(s.images > 0 and not s.is_reg for s in dataset.subsets):
        raise ValidationError(
            f"The dataset {dataset.toml_path} has no training images; add images to the "
            f"project's images/N_name folders and re-run the dataset step."
        )
    if tuple(dataset.resolution) != (spec.width, spec.height):
        warnings.append(
            f"The dataset was prepared at {dataset.resolution[0]}x{dataset.resolution[1]}; training "
            f"runs at {spec.width}x{spec.height} as set on the trainer."
        )
    warnings += list(dataset.warnings)
    name = spec.output_name or kohya.sanitize_output_name(Path(dataset.project_dir).name)
    run_dir = next_run_dir(output_root(dataset), name)
    fp = fingerprint(
        spec, dataset, base, script=spec.script if spec.script != "auto" else model.script, device=device
    )
    cmd = kohya.build_command(
        spec,
        dataset,
        model,
        install,
        output_dir=run_dir,
        dataset_toml=run_dir / "dataset.toml",
        config_path=run_dir / "config.toml",
        prompts_path=run_dir / "prompts.txt",
        device=device,
    )
    warnings += [w for w in cmd.warnings if w not in warnings]
    return Plan(cmd, model, install, run_dir, fp, dataset_patch(spec, dataset), warnings)


# --------------------------------------------------------------------------- the cache
def _read_run(run_dir: Path) -> dict | None:
    try:
        return json.loads((run_dir / RUN_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def find_cached(dataset: LoraDataset, fp: str) -> TrainRun | None:
    """The newest finished run with this fingerprint whose LoRA file still exists."""
    root = output_root(dataset)
    if not root.is_dir():
        return None
    for run_dir in sorted((p for p in root.iterdir() if p.is_dir()), key=lambda p: p.name, reverse=True):
        rec = _read_run(run_dir)
        if not rec or rec.get("fingerprint") != fp or rec.get("state") != "finished":
            continue
        lora = TrainedLora.from_dict(rec.get("trained_lora") or {})
        if not lora.path or not Path(lora.path).is_file():
            continue
        return TrainRun(
            lora=lora,
            run_dir=str(run_dir),
            loss_curve=rec.get("loss_curve", ""),
            samples=[s for s in rec.get("samples", []) if Path(s).is_file()],
            losses=[tuple(x) for x in rec.get("losses", [])],
            cached=True,
            warnings=[f"Reused the earlier run {run_dir} (same dataset, settings and base model)."],
            status=rec.get("status", {}),
        )
    return None


# --------------------------------------------------------------------------- running
def _write_json(path: Path, data: dict) -> None:
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(data, indent=2, default=str), encoding="utf-8")
    os.replace(tmp, path)


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


def _link(project_dir: str, ui_dirs: Mapping[str, str | os.PathLike] | None) -> list[str]:
    from ..library import layout, linker

    try:
        report = linker.link_trained(
            project_dir, ui_dirs if ui_dirs is not None else layout.default_ui_dirs()
        )
    except WorkbenchError as exc:
        return [f"Linking into the model library failed: {exc}"]
    out = []
    for path, why in [*report.errors, *report.collisions]:
        out.append(f"Library link {path}: {why}")
    return out


def train(
    spec: TrainSpec,
    dataset: LoraDataset,
    base_model: str | os.PathLike,
    *,
    on_update: Callable[[runner.TrainStatus], None] | None = None,
    should_cancel: Callable[[], bool] | None = None,
    node_id: str | None = None,
    kohya_root: str | os.PathLike | None = None,
    device: str | None = None,
    use_cache: bool = True,
    link_to_library: bool = False,
    ui_dirs: Mapping[str, str | os.PathLike] | None = None,
    grace_seconds: float = 5.0,
    env: dict | None = None,
) -> TrainRun:
    """Train (or reuse) a LoRA. Raises ValidationError before launch, TrainingCancelled on cancel, and
    WorkbenchError quoting the log's last meaningful lines when sd-scripts fails or writes no LoRA.
    An exception raised by `on_update` (ComfyUI's interrupt) kills the run and propagates."""
    with _train_lock:
        p = plan(spec, dataset, base_model, kohya_root=kohya_root, device=device)
        if use_cache:
            hit = find_cached(dataset, p.fingerprint)
            if hit is not None:
                _publish_cached(hit, node_id)
                if link_to_library:
                    hit.warnings += _link(dataset.project_dir, ui_dirs)
                return hit
        run_dir = _make_run_dir(output_root(dataset), p.command.output_name)
        if run_dir != p.run_dir:  # another process took the planned number
            p.run_dir = run_dir
            p.command = kohya.build_command(
                spec,
                dataset,
                p.model,
                p.install,
                output_dir=run_dir,
                dataset_toml=run_dir / "dataset.toml",
                config_path=run_dir / "config.toml",
                prompts_path=run_dir / "prompts.txt",
                device=p.command.device,
            )
        return _run(
            p,
            spec,
            dataset,
            on_update=on_update,
            should_cancel=should_cancel,
            node_id=node_id,
            link_to_library=link_to_library,
            ui_dirs=ui_dirs,
            grace_seconds=grace_seconds,
            env=env,
        )


def write_run_files(p: Plan, spec: TrainSpec, dataset: LoraDataset) -> dict:
    """config.toml, dataset.toml (copy), prompts.txt, command.txt and the first run.json."""
    cmd, run_dir = p.command, p.run_dir
    header = (
        f"# sd-scripts {cmd.script} config for {cmd.output_name}, written by lora-workbench.\n"
        f"# Run it again with: {cmd.display()}\n"
    )
    (run_dir / "config.toml").write_text(header + toml_writer.dumps(cmd.config), encoding="utf-8")
    write_dataset_copy(dataset, p.dataset_patch, run_dir / "dataset.toml")
    if cmd.prompts:
        (run_dir / "prompts.txt").write_text(cmd.prompts, encoding="utf-8")
    (run_dir / "command.txt").write_text(
        f"# working directory: {cmd.cwd}\n{cmd.display()}\n", encoding="utf-8"
    )
    record = {
        "fingerprint": p.fingerprint,
        "state": "running",
        "started_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "spec": spec.to_dict(),
        "dataset": dataset.to_dict(),
        "base_model": p.model.path,
        "base_arch": p.model.arch,
        "detected_by": p.model.how,
        "script": cmd.script,
        "device": cmd.device,
        "argv": cmd.argv,
        "cwd": cmd.cwd,
        "warnings": p.warnings,
        "python": sys.version.split()[0],
    }
    _write_json(run_dir / RUN_FILE, record)
    return record


def _run(
    p: Plan,
    spec: TrainSpec,
    dataset: LoraDataset,
    *,
    on_update,
    should_cancel,
    node_id,
    link_to_library,
    ui_dirs,
    grace_seconds,
    env,
) -> TrainRun:
    cmd, run_dir = p.command, p.run_dir
    record = write_run_files(p, spec, dataset)
    log_path = run_dir / "train.log"
    from . import losscurve

    try:
        result = runner.run_process(
            cmd.argv,
            cwd=cmd.cwd,
            env=env,
            log_path=str(log_path),
            total_steps=cmd.total_steps,
            on_update=on_update,
            should_cancel=should_cancel,
            run_id=run_dir.name,
            node_id=node_id,
            grace_seconds=grace_seconds,
            sample_dir=str(run_dir / "sample"),
        )
    except BaseException as exc:
        interrupted = isinstance(exc, KeyboardInterrupt) or "Interrupt" in type(exc).__name__
        record.update(
            state="cancelled" if interrupted else "failed",
            error=f"{type(exc).__name__}: {exc}",
            finished_at=time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        )
        _write_json(run_dir / RUN_FILE, record)
        raise
    status = result.status
    final = Path(cmd.final_path)
    ok = status.state == "finished" and result.returncode in (0, None) and final.is_file()
    loss_png = ""
    if status.losses or ok:
        loss_png = losscurve.render_loss_png(
            status.losses, run_dir / "loss.png", title=f"{cmd.output_name} loss"
        )
    record.update(
        finished_at=time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        returncode=result.returncode,
        losses=[list(x) for x in status.losses],
        loss_curve=loss_png,
    )

    if result.cancelled or status.state == "cancelled":
        record.update(state="cancelled", status=status.to_dict(max_losses=500))
        _write_json(run_dir / RUN_FILE, record)
        raise TrainingCancelled(f"Training {run_dir.name} was cancelled; partial files are in {run_dir}.")
    if not ok:
        if status.state == "finished":  # exit 0 but no file: never report that as a success
            status.state = "failed"
            status.message = f"sd-scripts ended without writing {final.name}"
            runner.publish_status(status)
        record.update(state="failed", error=result.error_message(), status=status.to_dict(max_losses=500))
        _write_json(run_dir / RUN_FILE, record)
        raise WorkbenchError(f"Training {run_dir.name} failed: {result.error_message()}")

    name = cmd.output_name
    epoch_paths = sorted(str(f) for f in run_dir.glob(f"{name}-[0-9][0-9][0-9][0-9][0-9][0-9].safetensors"))
    samples = sorted(str(f) for f in (run_dir / "sample").glob("*") if is_image(f.name))
    lora = TrainedLora(
        path=str(final),
        epoch_paths=epoch_paths,
        base_model=p.model.path,
        base_arch=p.model.arch,
        trigger_words=list(dataset.class_tokens),
        output_dir=str(run_dir),
        log_path=str(log_path),
        command_path=str(run_dir / "command.txt"),
        metadata=_lora_metadata(str(final)),
    )
    warnings = list(p.warnings)
    if link_to_library:
        warnings += _link(dataset.project_dir, ui_dirs)
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
        cached=False,
        warnings=warnings,
        status=status.to_dict(),
    )
