"""Node KohyaLoRATrain: train a LoRA with the user's own kohya sd-scripts, with live progress and Cancel.

Thin adapter: the node shows the main settings (settings.py, group "main"); the rest arrive through
one `options` input from the chainable option nodes (kohya_train_options.py). Widgets + options ->
TrainOptions -> train.train() (which plans, runs and caches); ComfyUI's progress bar, live node text
and interrupt are wired in here through _comfy. API prompts of the first layout still work: its
other inputs are hidden inputs here and join the options.
"""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import TYPE_CHECKING

from ..lora_workbench import disk, paths
from ..lora_workbench.errors import ValidationError, WorkbenchError
from ..lora_workbench.training import node_layout
from ..lora_workbench.training.settings import SETTING
from . import _comfy

if TYPE_CHECKING:
    from ..lora_workbench.training.model_files import FileSource
    from ..lora_workbench.training.options import OptionSet, TrainOptions

# Only what the widgets need is imported here; the options and the training run's modules (train,
# runner, validation ...) are imported where a run uses them: ComfyUI imports every pack at start-up,
# and a training run need not cost that start-up anything.

_MAIN = {s.name for s in SETTING.values() if s.main}
_LEGACY = node_layout.legacy_inputs()


def collect_options(widgets: dict, options: OptionSet | None, unique_id) -> TrainOptions:
    """The node's own widgets + the option chain + inputs of the first layout an old API prompt sent
    (those only when not at their default); a setting given twice names both places."""
    from ..lora_workbench.training.options import OptionSet, TrainOptions

    main = {k: v for k, v in widgets.items() if k in _MAIN}
    legacy = {k: v for k, v in widgets.items() if k in _LEGACY and v != SETTING[k].default}
    chain = options if isinstance(options, OptionSet) else OptionSet()
    if legacy:
        chain = chain.add(legacy, f"Kohya LoRA Train (node {unique_id}, inputs of the first layout)")
    opts = TrainOptions.from_values(chain.resolved(main, _changed_widgets(main)))
    return confine_paths(opts)


def _changed_widgets(main: dict) -> dict[str, str]:
    # A widget always holds a value: one moved off its default is the user's word and wins over a
    # kohya_ss config; one at its default gives way to the config (README "kohya_ss GUI configs").
    return {k: f"Kohya LoRA Train's {k} widget" for k, v in main.items() if v != SETTING[k].default}


def config_overrides(widgets: dict, options: OptionSet | None) -> list[str]:
    """The kohya_ss config keys this run's explicit settings won over (for the node's text): the GUI
    config node cannot know the option nodes chained after it, nor the trainer's widgets."""
    base_import = getattr(options, "base_import", None)
    if base_import is None:
        return []
    main = {k: v for k, v in widgets.items() if k in _MAIN}
    report = base_import.report(options.explicit(_changed_widgets(main)))
    return [f"kohya_ss config {line.strip()}" for line in report.splitlines() if "overridden " in line[:14]]


def confine_paths(opts: TrainOptions) -> TrainOptions:
    """Files and folders a workflow names, only inside the allowed roots (resolved, must exist)."""
    if opts.tokenizer_cache_dir:
        where = paths.confine(opts.tokenizer_cache_dir, what="tokenizer cache folder", must_exist=True)
        opts = opts.replace(tokenizer_cache_dir=str(where))
    if opts.network_weights:
        where = paths.confine(
            opts.network_weights, what="LoRA file to continue from (network_weights)", must_exist=True
        )
        opts = opts.replace(network_weights=str(where))
    if opts.resume not in ("", "latest") and ("/" in opts.resume or os.sep in opts.resume):
        paths.confine(opts.resume, what="run folder to resume", must_exist=True)
    return opts


MAX_IMAGE_BYTES = 64 << 20  # a loss curve or a sample is a PNG of a few MB


def _run_image(path: str) -> bytes | None:
    """An image the run wrote (a sample, the loss curve), read from its folder inside the roots without
    following a link; None when it is not a plain file there now. A reused run's folder may lie in a
    shared project, where a file checked when the run was found can be a link by the time it is read."""
    p = Path(path)
    try:
        with paths.open_dir(p.parent, what="run folder") as folder:
            return folder.read_bytes(p.name, limit=MAX_IMAGE_BYTES)
    except (OSError, WorkbenchError):
        return None


def _ui_image(src: str, subfolder: str = "lora_workbench") -> dict | None:
    """Copy an image into ComfyUI's temp folder and describe it for ui.images (None: not readable)."""
    data = _run_image(src)
    if data is None:
        return None
    temp = Path(_comfy.folder_paths().get_temp_directory()) / subfolder
    temp.mkdir(parents=True, exist_ok=True)
    p = Path(src)
    name = f"{p.parent.name}_{p.name}" if p.parent.name != "sample" else f"{p.parent.parent.name}_{p.name}"
    disk.write_atomic(temp / name, data)
    return {"filename": name, "subfolder": subfolder, "type": "temp"}


def _image_tensor(png: str, losses):
    import numpy as np
    import torch
    from PIL import Image

    from ..lora_workbench.training import losscurve

    data = _run_image(png) if png else None
    img = Image.open(io.BytesIO(data)).convert("RGB") if data else losscurve.loss_curve_rgb(losses)
    arr = np.asarray(img, dtype=np.float32) / 255.0
    return torch.from_numpy(arr)[None, ...]


class KohyaLoRATrain:
    """Train a LoRA from a LORA_DATASET with kohya sd-scripts in its own environment."""

    DESCRIPTION = (
        "Trains a LoRA with your kohya sd-scripts (KOHYA_SS_PATH) on the dataset from "
        "DatasetSubsetWeights: shows step, epoch, loss and ETA live, Cancel stops the whole trainer, "
        "each run gets a new output/<name>-NNN folder with the config, the exact command and the log. "
        "Re-queuing the same inputs reuses the finished run instead of training again."
    )
    CATEGORY = f"{_comfy.CATEGORY}/training"
    OUTPUT_NODE = True
    FUNCTION = "train"
    # New outputs go at the end: saved workflows link outputs by slot number.
    RETURN_TYPES = ("TRAINED_LORA", "IMAGE", "STRING", "STRING", "IMAGE")
    RETURN_NAMES = ("trained_lora", "loss_curve", "lora_path", "log_path", "samples")
    OUTPUT_TOOLTIPS = (
        "The trained LoRA (final and per-epoch files, trigger words) for LoadTrainedLoRA.",
        "The loss curve (raw and smoothed avr_loss per step).",
        "Path of the final LoRA file.",
        "Path of the training log.",
        "The sample images of the last sampling round (the last epoch's) as one batch, for Save Image "
        "or Preview Image; a single black 64x64 image when the run made none (turn on show_samples or "
        "give sample prompts on Kohya Sampling Options).",
    )

    @classmethod
    def INPUT_TYPES(cls):
        required, optional = node_layout.main_inputs()
        head = {
            "dataset": ("LORA_DATASET", {"tooltip": "The dataset from DatasetSubsetWeights."}),
            "ckpt_name": (
                _comfy.base_model_names(),
                {
                    "tooltip": "The base model: a checkpoint (SD 1.x/2.x, SDXL, SD3) from ComfyUI's "
                    "checkpoints, or a diffusion model (FLUX.1, Chroma, Lumina 2, HunyuanImage 2.1, Anima) "
                    "from models/diffusion_models. Its family is read from the file; the text encoders and "
                    "VAE it needs come from a Kohya Model Files node (or are picked by name)."
                },
            ),
        }
        optional[node_layout.OPTIONS_INPUT] = (
            node_layout.OPTIONS_TYPE,
            {
                "tooltip": "More settings from the Kohya ... Options nodes (network, optimizer, captions, "
                "sampling, saving, precision, launch, model files, family options), chained in any order."
            },
        )
        return {
            "required": {**head, **required},
            "optional": optional,
            "hidden": {"unique_id": "UNIQUE_ID", **_LEGACY},
        }

    @classmethod
    def IS_CHANGED(cls, ckpt_name=None, **_kw):
        # A checkpoint replaced under the same name must not reuse ComfyUI's cached output.
        try:
            p = Path(_comfy.base_model_path(ckpt_name) or "")
            st = p.stat()
            return f"{p}:{st.st_size}:{st.st_mtime_ns}"
        except Exception:
            return ""

    def train(self, dataset, ckpt_name, unique_id=None, options=None, **widgets):
        from ..lora_workbench.training import train as train_core
        from ..lora_workbench.training.preview import PreviewPicker

        _comfy.forward_core_events()
        node_id = str(unique_id) if unique_id is not None else None
        base = _comfy.base_model_path(ckpt_name)
        if not base:
            raise ValidationError(
                f"The base model {ckpt_name!r} is not in ComfyUI's checkpoints or diffusion_models "
                f"folders; pick one from the list (refresh with R after adding files)."
            )
        opts = collect_options(widgets, options, node_id)
        overrides = config_overrides(widgets, options)
        pbar = _comfy.progress_bar(1, node_id)
        previews = PreviewPicker()

        def on_update(status):
            # The bar follows the running step (caching: its count; training: the steps); the text names
            # the phase. Raises on Cancel (the runner kills the tree); shows the newest sample or the loss curve.
            done, total = status.bar()
            _comfy.update_progress(pbar, done, total, previews.next_image(status))
            _comfy.send_progress_text(status.text(), node_id)

        try:
            run = train_core.train(
                opts,
                dataset,
                base,
                on_update=on_update,
                should_cancel=_comfy.interrupted,
                node_id=node_id,
                ui_dirs=_ui_dirs() if opts.link_to_library else None,
                roots=[str(r) for r in paths.allowed_roots()],  # the trained-LoRA links stay inside
                grace_seconds=3.0,
                files=comfy_file_source(),
                before_launch=hand_over_gpu,
            )
        except train_core.TrainingCancelled:
            _comfy.raise_if_interrupted()  # ComfyUI's own interrupt, so the prompt ends "interrupted"
            raise
        if run.cached:
            steps = run.losses[-1][0] if run.losses else 1
            pbar.update_absolute(steps, steps)
            _comfy.send_progress_text(
                f"reused {Path(run.run_dir).name} (same inputs; nothing trained)", node_id
            )
        if opts.link_to_library:
            _comfy.invalidate_filename_cache("loras")
        return _outputs(run, opts.show_samples, overrides)


def comfy_file_source() -> FileSource:
    """Extra model files from ComfyUI's own folders: names from its lists, paths through folder_paths
    (a name from a shared workflow resolves only inside ComfyUI's model folders)."""
    from ..lora_workbench.training.model_files import COMFY_SUBFOLDERS, FileSource

    folders = tuple(COMFY_SUBFOLDERS)  # text_encoders, vae, clip_vision
    listing = {f: _comfy.filename_list_or_empty(f) for f in folders}
    return FileSource(listing, _comfy.model_file_path)


def hand_over_gpu(device: str) -> None:
    """Before sd-scripts starts on the GPU: unload ComfyUI's models and empty its cache, so training
    does not run out of memory because the sampler still holds a checkpoint (CPU runs leave them)."""
    if device == "gpu":
        _comfy.free_gpu_memory()


def _ui_dirs() -> dict:
    from ..lora_workbench.library import layout

    ui_dirs = dict(layout.default_ui_dirs())
    ui_dirs["comfyui"] = Path(_comfy.folder_paths().models_dir).parent
    return ui_dirs


def _outputs(run, show_samples: bool, notes: list[str] = ()) -> dict:
    shown = ([run.loss_curve] if run.loss_curve else []) + (run.samples[-8:] if show_samples else [])
    images = [i for i in map(_ui_image, shown) if i is not None]
    text = [f"{run.lora.path}" + (" (reused)" if run.cached else ""), *run.warnings, *notes]
    tensor = _image_tensor(run.loss_curve, run.losses)
    return {
        "ui": {"images": images, "text": text},
        "result": (run.lora, tensor, run.lora.path, run.lora.log_path, _samples_tensor(run.samples)),
    }


def _samples_tensor(samples: list[str]):
    """The last sampling round as an IMAGE batch (B, H, W, 3) in 0..1; sizes follow the first image."""
    import numpy as np
    import torch
    from PIL import Image

    from ..lora_workbench.training.samples import last_round

    arrays = []
    for path in last_round(samples):
        data = _run_image(path)
        if data is None:
            continue
        with Image.open(io.BytesIO(data)) as img:
            rgb = img.convert("RGB")
        if arrays and rgb.size != (arrays[0].shape[1], arrays[0].shape[0]):
            rgb = rgb.resize((arrays[0].shape[1], arrays[0].shape[0]), Image.Resampling.LANCZOS)
        arrays.append(np.asarray(rgb, dtype=np.float32) / 255.0)
    if not arrays:
        return torch.from_numpy(np.zeros((1, 64, 64, 3), dtype=np.float32))
    return torch.from_numpy(np.stack(arrays))


NODE_CLASS_MAPPINGS = {"KohyaLoRATrain": KohyaLoRATrain}
NODE_DISPLAY_NAME_MAPPINGS = {"KohyaLoRATrain": "Kohya LoRA Train"}
