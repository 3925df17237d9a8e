"""Node KohyaLoRATrain: train a LoRA with the user's own kohya sd-scripts, with live progress and Cancel.

Thin adapter: widgets -> kohya.TrainSpec -> train.train() (which plans, runs and caches); ComfyUI's
progress bar, live node text and interrupt are wired in here through _comfy.
"""

from __future__ import annotations

import shutil
from dataclasses import fields
from pathlib import Path

from ..lora_workbench import paths
from ..lora_workbench.errors import ValidationError
from ..lora_workbench.training import kohya
from ..lora_workbench.training import train as train_core
from ..lora_workbench.training.kohya import TrainSpec
from . import _comfy

_D = TrainSpec()  # the defaults (the seed's)

# name -> (type, options); "required" are the seed's questions, the rest are optional so an API prompt
# may leave them out. Every entry has a tooltip.
REQUIRED: dict[str, tuple] = {
    "epochs": (
        "INT",
        {
            "default": _D.epochs,
            "min": 1,
            "max": 10000,
            "tooltip": "Passes over the dataset (each image x its repeats once per epoch).",
        },
    ),
    "width": (
        "INT",
        {
            "default": _D.width,
            "min": 64,
            "max": 8192,
            "step": 8,
            "tooltip": "Training width in pixels: a multiple of 64 (8 with buckets on).",
        },
    ),
    "height": (
        "INT",
        {
            "default": _D.height,
            "min": 64,
            "max": 8192,
            "step": 8,
            "tooltip": "Training height in pixels: a multiple of 64 (8 with buckets on).",
        },
    ),
    "seed": (
        "INT",
        {
            "default": _D.seed,
            "min": 0,
            "max": 2**32 - 1,
            "control_after_generate": False,
            "tooltip": "Training seed; the same seed and inputs give the same LoRA (and reuse the "
            "earlier run instead of training again).",
        },
    ),
    "network_dim": (
        "INT",
        {
            "default": _D.network_dim,
            "min": 1,
            "max": 1024,
            "tooltip": "LoRA rank: capacity and file size (128 is the seed's choice; 8-32 is "
            "often enough for one subject).",
        },
    ),
    "network_alpha": (
        "FLOAT",
        {
            "default": _D.network_alpha,
            "min": 0.0,
            "max": 1024.0,
            "step": 1.0,
            "tooltip": "Scales the update by alpha/dim; keep alpha <= dim.",
        },
    ),
    "learning_rate": (
        "FLOAT",
        {
            "default": _D.learning_rate,
            "min": 0.0,
            "max": 1.0,
            "step": 0.00001,
            "round": False,
            "tooltip": "Base learning rate (used where the U-Net and text-encoder rates are not set).",
        },
    ),
    "unet_lr": (
        "FLOAT",
        {
            "default": _D.unet_lr,
            "min": 0.0,
            "max": 1.0,
            "step": 0.00001,
            "round": False,
            "tooltip": "Learning rate of the U-Net LoRA.",
        },
    ),
    "text_encoder_lr": (
        "FLOAT",
        {
            "default": _D.text_encoder_lr,
            "min": 0.0,
            "max": 1.0,
            "step": 0.00001,
            "round": False,
            "tooltip": "Learning rate of the text-encoder LoRA.",
        },
    ),
    "noise_offset": (
        "FLOAT",
        {
            "default": _D.noise_offset,
            "min": 0.0,
            "max": 1.0,
            "step": 0.01,
            "tooltip": "Noise offset (0.05-0.1 helps very dark/bright images; 0 = off).",
        },
    ),
    "sample_sampler": (
        list(kohya.SAMPLERS),
        {"default": _D.sample_sampler, "tooltip": "Sampler for the sample images (sd-scripts' names)."},
    ),
    "script": (
        list(kohya.SCRIPTS),
        {
            "default": _D.script,
            "tooltip": "auto picks train_network.py for SD 1.x/2.x and "
            "sdxl_train_network.py for SDXL from the checkpoint.",
        },
    ),
}

OPTIONAL: dict[str, tuple] = {
    "output_name": (
        "STRING",
        {
            "default": "",
            "tooltip": "File name of the LoRA (letters, digits, . _ -); empty "
            "= the project folder's name. Each run gets its own "
            "output/<name>-NNN folder.",
        },
    ),
    "model_type": (
        list(kohya.MODEL_TYPES),
        {"default": _D.model_type, "tooltip": "auto reads it from the checkpoint; set it for .ckpt files."},
    ),
    "batch_size": (
        "INT",
        {"default": 0, "min": 0, "max": 1024, "tooltip": "Images per step; 0 = the dataset's batch size."},
    ),
    "save_every_n_epochs": (
        "INT",
        {
            "default": _D.save_every_n_epochs,
            "min": 0,
            "max": 10000,
            "tooltip": "Also save <name>-00000N.safetensors every N epochs (0 = only the final file).",
        },
    ),
    "max_train_steps": (
        "INT",
        {
            "default": 0,
            "min": 0,
            "max": 10_000_000,
            "tooltip": "0 = from step_rule; otherwise stop after this many steps.",
        },
    ),
    "step_rule": (
        list(kohya.STEP_RULES),
        {
            "default": _D.step_rule,
            "tooltip": "seed: steps = steps per epoch x epochs; epochs: let "
            "sd-scripts count (exact with buckets).",
        },
    ),
    "train_text_encoder": (
        "BOOLEAN",
        {
            "default": _D.train_text_encoder,
            "tooltip": "Train the text encoder too (off = U-Net only, smaller file).",
        },
    ),
    "optimizer": (
        list(kohya.OPTIMIZERS),
        {"default": _D.optimizer, "tooltip": "sd-scripts optimizer; 8bit/Paged ones need a GPU."},
    ),
    "lr_scheduler": (
        list(kohya.SCHEDULERS),
        {"default": _D.lr_scheduler, "tooltip": "Learning-rate schedule."},
    ),
    "lr_warmup_steps": (
        "INT",
        {
            "default": 0,
            "min": 0,
            "max": 10_000_000,
            "tooltip": "Warmup steps (not with the constant scheduler).",
        },
    ),
    "mixed_precision": (
        list(kohya.MIXED_PRECISIONS),
        {"default": _D.mixed_precision, "tooltip": "auto: fp16 on a GPU, no on the CPU."},
    ),
    "save_precision": (
        list(kohya.SAVE_PRECISIONS),
        {"default": _D.save_precision, "tooltip": "Precision of the saved LoRA file."},
    ),
    "caption_extension": (
        "STRING",
        {"default": "", "tooltip": "Caption file extension, e.g. .txt; empty = the dataset's."},
    ),
    "buckets": (
        list(kohya.BUCKETS),
        {"default": _D.buckets, "tooltip": "Aspect-ratio buckets: as the dataset says, or force on/off."},
    ),
    "min_bucket_reso": (
        "INT",
        {
            "default": _D.min_bucket_reso,
            "min": 64,
            "max": 8192,
            "step": 64,
            "tooltip": "Smallest bucket side (buckets on).",
        },
    ),
    "max_bucket_reso": (
        "INT",
        {
            "default": _D.max_bucket_reso,
            "min": 64,
            "max": 8192,
            "step": 64,
            "tooltip": "Largest bucket side (buckets on).",
        },
    ),
    "sample_prompts": (
        "STRING",
        {
            "default": "",
            "multiline": True,
            "tooltip": "One prompt per line for sample images after each epoch (sd-scripts "
            "options like --n negative may follow). Written to a prompts file.",
        },
    ),
    "sample_every_n_epochs": (
        "INT",
        {"default": 1, "min": 1, "max": 10000, "tooltip": "Make sample images every N epochs."},
    ),
    "sample_steps": (
        "INT",
        {"default": _D.sample_steps, "min": 1, "max": 1000, "tooltip": "Sampling steps per sample image."},
    ),
    "gradient_checkpointing": ("BOOLEAN", {"default": True, "tooltip": "Less memory, a bit slower."}),
    "cache_latents": (
        "BOOLEAN",
        {"default": True, "tooltip": "Encode images once (off when the dataset uses color_aug/random_crop)."},
    ),
    "cache_latents_to_disk": (
        "BOOLEAN",
        {"default": True, "tooltip": "Keep the cached latents as .npz beside the images."},
    ),
    "lowram": (
        "BOOLEAN",
        {"default": False, "tooltip": "Load models to VRAM instead of RAM (when VRAM > RAM)."},
    ),
    "attention": (
        list(kohya.ATTENTIONS),
        {"default": _D.attention, "tooltip": "sdpa works everywhere; xformers needs a GPU and the package."},
    ),
    "v_parameterization": ("BOOLEAN", {"default": False, "tooltip": "For SD 2.x 768-v models only."}),
    "data_loader_workers": (
        "INT",
        {
            "default": 0,
            "min": 0,
            "max": 64,
            "tooltip": "Data loader processes (0 = in the trainer; least RAM).",
        },
    ),
    "device": (
        list(kohya.DEVICES),
        {"default": _D.device, "tooltip": "auto: the GPU when torch in the sd-scripts environment sees one."},
    ),
    "launcher": (
        list(kohya.LAUNCHERS),
        {"default": _D.launcher, "tooltip": "accelerate launch (with explicit options) or plain python."},
    ),
    "cpu_threads": (
        "INT",
        {
            "default": _D.cpu_threads,
            "min": 1,
            "max": 1024,
            "tooltip": "accelerate --num_cpu_threads_per_process.",
        },
    ),
    "num_processes": (
        "INT",
        {"default": 1, "min": 1, "max": 1024, "tooltip": "GPUs (processes) to train on."},
    ),
    "gpu_ids": ("STRING", {"default": "", "tooltip": "Which GPUs, e.g. 0,1 (empty = accelerate's choice)."}),
    "num_machines": (
        "INT",
        {"default": 1, "min": 1, "max": 1024, "tooltip": "Machines for multi-node training."},
    ),
    "machine_rank": (
        "INT",
        {"default": 0, "min": 0, "max": 1023, "tooltip": "This machine's rank (multi-node)."},
    ),
    "main_process_ip": ("STRING", {"default": "", "tooltip": "Address of machine rank 0 (multi-node)."}),
    "main_process_port": (
        "INT",
        {
            "default": 0,
            "min": 0,
            "max": 65535,
            "tooltip": "Port of the main process (0 = accelerate's default).",
        },
    ),
    "tokenizer_cache_dir": (
        "STRING",
        {
            "default": "",
            "tooltip": "Folder with cached tokenizers (offline use); "
            "empty = $LORA_WORKBENCH_TOKENIZER_CACHE or the "
            "settings.",
        },
    ),
    "show_samples": (
        "BOOLEAN",
        {
            "default": False,
            "tooltip": "Make sample images (the trigger words as prompt when no prompts are "
            "given) and show them on the node.",
        },
    ),
    "link_to_library": (
        "BOOLEAN",
        {
            "default": False,
            "tooltip": "Link the trained LoRA into ComfyUI's (and A1111/Forge's) LoRA "
            "folders when it is done.",
        },
    ),
}

_SPEC_FIELDS = {f.name for f in fields(TrainSpec)}


def _ui_image(src: str, subfolder: str = "lora_workbench") -> dict:
    """Copy an image into ComfyUI's temp folder and describe it for ui.images."""
    temp = Path(_comfy.folder_paths().get_temp_directory()) / subfolder
    temp.mkdir(parents=True, exist_ok=True)
    p = Path(src)
    name = f"{p.parent.name}_{p.name}" if p.parent.name != "sample" else f"{p.parent.parent.name}_{p.name}"
    shutil.copyfile(p, temp / name)
    return {"filename": name, "subfolder": subfolder, "type": "temp"}


def _image_tensor(png: str, losses):
    import numpy as np
    import torch
    from PIL import Image

    from ..lora_workbench.training import losscurve

    img = Image.open(png).convert("RGB") if png and Path(png).is_file() else losscurve.loss_curve_rgb(losses)
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
    RETURN_TYPES = ("TRAINED_LORA", "IMAGE", "STRING", "STRING")
    RETURN_NAMES = ("trained_lora", "loss_curve", "lora_path", "log_path")
    OUTPUT_TOOLTIPS = (
        "The trained LoRA (final and per-epoch files, trigger words) for LoadTrainedLoRA.",
        "The loss curve (raw and smoothed avr_loss per step).",
        "Path of the final LoRA file.",
        "Path of the training log.",
    )

    @classmethod
    def INPUT_TYPES(cls):
        try:
            ckpts = _comfy.get_filename_list("checkpoints")
        except Exception:
            ckpts = []
        required = {
            "dataset": ("LORA_DATASET", {"tooltip": "The dataset from DatasetSubsetWeights."}),
            "ckpt_name": (
                ckpts,
                {"tooltip": "Base checkpoint (SD 1.x, SD 2.x or SDXL) from ComfyUI's checkpoints folders."},
            ),
        }
        required.update(REQUIRED)
        return {"required": required, "optional": dict(OPTIONAL), "hidden": {"unique_id": "UNIQUE_ID"}}

    @classmethod
    def IS_CHANGED(cls, ckpt_name=None, **_kw):
        # A checkpoint replaced under the same name must not reuse ComfyUI's cached output.
        try:
            p = Path(_comfy.get_full_path("checkpoints", ckpt_name) or "")
            st = p.stat()
            return f"{p}:{st.st_size}:{st.st_mtime_ns}"
        except Exception:
            return ""

    def train(self, dataset, ckpt_name, unique_id=None, show_samples=False, link_to_library=False, **kw):
        _comfy.forward_core_events()
        node_id = str(unique_id) if unique_id is not None else None
        base = _comfy.get_full_path("checkpoints", ckpt_name)
        if not base:
            raise ValidationError(
                f"The checkpoint {ckpt_name!r} is not in ComfyUI's checkpoints folders; pick one "
                f"from the list (refresh with R after adding files)."
            )
        values = {k: v for k, v in kw.items() if k in _SPEC_FIELDS}
        if values.get("tokenizer_cache_dir"):
            values["tokenizer_cache_dir"] = str(
                paths.confine(values["tokenizer_cache_dir"], what="tokenizer cache folder", must_exist=True)
            )
        if show_samples and not str(values.get("sample_prompts", "")).strip():
            values["sample_prompts"] = ", ".join(dataset.class_tokens) or "a photo"
        spec = TrainSpec(**values)

        pbar = _comfy.progress_bar(1, node_id)

        def on_update(status):
            total = max(1, status.total or 1)
            pbar.update_absolute(
                min(status.step, total), total
            )  # raises on Cancel: the runner kills the tree
            _comfy.send_progress_text(status.text(), node_id)

        ui_dirs = None
        if link_to_library:
            from ..lora_workbench.library import layout

            ui_dirs = dict(layout.default_ui_dirs())
            ui_dirs["comfyui"] = Path(_comfy.folder_paths().models_dir).parent
        try:
            run = train_core.train(
                spec,
                dataset,
                base,
                on_update=on_update,
                should_cancel=_comfy.interrupted,
                node_id=node_id,
                link_to_library=link_to_library,
                ui_dirs=ui_dirs,
                grace_seconds=3.0,
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
        if link_to_library:
            _comfy.invalidate_filename_cache("loras")

        images = []
        if run.loss_curve and Path(run.loss_curve).is_file():
            images.append(_ui_image(run.loss_curve))
        if show_samples:
            images += [_ui_image(s) for s in run.samples[-8:]]
        text = [f"{run.lora.path}" + (" (reused)" if run.cached else "")] + run.warnings
        tensor = _image_tensor(run.loss_curve, run.losses)
        return {
            "ui": {"images": images, "text": text},
            "result": (run.lora, tensor, run.lora.path, run.lora.log_path),
        }


NODE_CLASS_MAPPINGS = {"KohyaLoRATrain": KohyaLoRATrain}
NODE_DISPLAY_NAME_MAPPINGS = {"KohyaLoRATrain": "Kohya LoRA Train"}
