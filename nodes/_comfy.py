"""The one place that imports ComfyUI (folder_paths, comfy.*, server), always lazily.

Node modules call these helpers instead of importing ComfyUI themselves, so the core stays pure and
the unit tests can stub ComfyUI in one spot (tests/conftest.py).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from ..lora_workbench import events, paths

log = logging.getLogger("lora_workbench")

CATEGORY = "LoRA Workbench"  # the pack-wide node category prefix


def folder_paths():
    import folder_paths  # ComfyUI's module

    return folder_paths


PROJECTS_FOLDER = "lora-projects"  # the sanctioned place for training projects, beside models/
NOT_MODEL_FOLDERS = ("custom_nodes",)  # folder_names_and_paths entries that hold code, not models


def comfy_roots() -> list[Path]:
    """ComfyUI's folders a workflow may use: every model folder, input, output and <base>/lora-projects.

    Never ComfyUI's base folder itself, custom_nodes/ or user/: a workflow that could make folders or
    links there could add code (a custom node) or change the user's settings.
    """
    fp = folder_paths()
    base = Path(fp.base_path)
    roots = [
        Path(fp.models_dir),
        Path(fp.get_output_directory()),
        Path(fp.get_input_directory()),
        projects_root(create=False),
    ]
    for name, (folders, _exts) in list(fp.folder_names_and_paths.items()):
        if name not in NOT_MODEL_FOLDERS:
            roots += [Path(p) for p in folders]
    code = [base / "custom_nodes", base / "user", *(Path(p) for p in _folders_of(fp, "custom_nodes"))]
    return [r for r in roots if not _holds_code(r, base, code)]


def upload_folders() -> list[Path]:
    """ComfyUI's input, output and temp folders: what any page that reaches ComfyUI can fill
    (/upload/image, a queued SaveImage), so never a place models are taken from."""
    fp = folder_paths()
    return [Path(fp.get_input_directory()), Path(fp.get_output_directory()), Path(fp.get_temp_directory())]


def _folders_of(fp, name: str) -> list[str]:
    try:
        return list(fp.get_folder_paths(name))
    except Exception:
        return []


def _holds_code(root: Path, base: Path, code: list[Path]) -> bool:
    """Is `root` ComfyUI's base folder, a folder above it, or inside custom_nodes/ or user/?"""
    real = Path(os.path.realpath(root))
    real_base = Path(os.path.realpath(base))
    if real_base == real or real in real_base.parents:
        return True
    return any(paths.is_within_roots(real, [Path(os.path.realpath(c))]) for c in code)


def projects_root(create: bool = True) -> Path:
    """<ComfyUI base>/lora-projects: an allowed root out of the box, for projects (made on first use)."""
    root = Path(folder_paths().base_path) / PROJECTS_FOLDER
    if create:
        root.mkdir(parents=True, exist_ok=True)
    return root


def register_comfy_roots() -> None:
    """Allow ComfyUI's model, input and output folders and <base>/lora-projects for untrusted paths."""
    try:
        for r in comfy_roots():
            paths.register_root(r)
    except Exception as exc:  # outside a real ComfyUI (tests) there may be no folder_paths
        log.debug("lora-workbench: could not read ComfyUI folders: %s", exc)


def get_filename_list(category: str) -> list[str]:
    return folder_paths().get_filename_list(category)


def get_full_path(category: str, name: str) -> str | None:
    return folder_paths().get_full_path(category, name)


def filename_list_or_empty(category: str) -> list[str]:
    """ComfyUI's file list of a folder, or [] outside ComfyUI / for a folder it does not know."""
    try:
        return list(get_filename_list(category))
    except Exception:
        return []


DIFFUSION_MODELS = "diffusion_models/"  # how a diffusion-model-only file shows in a base-model list


def base_model_names() -> list[str]:
    """ComfyUI's checkpoints, then its diffusion models (models/diffusion_models, models/unet) marked
    with the folder name, so one list holds both kinds of base model."""
    return filename_list_or_empty("checkpoints") + [
        DIFFUSION_MODELS + n for n in filename_list_or_empty("diffusion_models")
    ]


def model_file_path(folder: str, name: str) -> str | None:
    """The file `name` of one of ComfyUI's model folders, or None. The name comes from a workflow:
    an absolute path or a `..` step is refused, and the path found must lie in one of the folder's
    directories (a link the user put there may point anywhere: the folder is theirs)."""
    import os

    if (
        not isinstance(name, str)
        or not name
        or os.path.isabs(name)
        or ".." in name.replace("\\", "/").split("/")
    ):
        return None
    try:
        path = get_full_path(folder, name)
        dirs = [os.path.abspath(d) for d in folder_paths().get_folder_paths(folder)]
    except Exception:
        return None
    if path is None:
        return None
    where = os.path.abspath(path)
    return where if any(where.startswith(d.rstrip(os.sep) + os.sep) for d in dirs) else None


def base_model_path(name: str) -> str | None:
    """The file of a base_model_names() entry, inside ComfyUI's folders (None when not there)."""
    path = model_file_path("checkpoints", name)
    if path is None and isinstance(name, str) and name.startswith(DIFFUSION_MODELS):
        path = model_file_path("diffusion_models", name[len(DIFFUSION_MODELS) :])
    return path


def invalidate_filename_cache(category: str | None = None) -> None:
    """Drop ComfyUI's cached file list so new/removed models show after a refresh, no restart."""
    try:
        cache = folder_paths().filename_list_cache
    except Exception:
        return
    if category is None:
        cache.clear()
    else:
        cache.pop(category, None)


def load_torch_file(path: str) -> dict:
    """A LoRA/model file as a state dict, through ComfyUI's own reader (safetensors memory-mapped)."""
    import comfy.utils

    return comfy.utils.load_torch_file(path, safe_load=True)


def load_lora_for_models(model, clip, lora_sd: dict, strength_model: float, strength_clip: float):
    """ComfyUI's own LoRA application (the path LoraLoader takes): returns (model, clip) clones."""
    import comfy.sd

    return comfy.sd.load_lora_for_models(model, clip, lora_sd, strength_model, strength_clip)


def lora_key_map(model, clip) -> dict:
    """ComfyUI's own LoRA key map (kohya/diffusers/generic names -> weights) for a MODEL and a CLIP,
    the one its loader matches a LoRA's keys against; {} for a side that is None."""
    import comfy.lora

    key_map: dict = {}
    if model is not None:
        key_map = comfy.lora.model_lora_keys_unet(model.model, key_map)
    if clip is not None:
        key_map = comfy.lora.model_lora_keys_clip(clip.cond_stage_model, key_map)
    return key_map


def convert_lora(sd: dict) -> dict:
    """The LoRA state dict as ComfyUI's loader sees it before mapping (comfy.lora_convert: Wan-Fun's
    double underscore, BFL control and USO layouts); the same dict for any other LoRA."""
    import comfy.lora_convert

    return comfy.lora_convert.convert_lora(sd)


def interrupted() -> bool:
    """True once the user pressed Cancel (or POST /interrupt)."""
    import comfy.model_management as mm

    return mm.processing_interrupted()


def raise_if_interrupted() -> None:
    """Raise ComfyUI's InterruptProcessingException (and clear the flag) if Cancel was pressed."""
    import comfy.model_management as mm

    mm.throw_exception_if_processing_interrupted()


def free_gpu_memory() -> None:
    """Unload every model ComfyUI holds and empty its device cache (ComfyUI's own calls)."""
    import comfy.model_management as mm

    mm.unload_all_models()
    mm.soft_empty_cache()


def progress_bar(total: int, node_id: str | None = None):
    """ComfyUI's ProgressBar (its update raises on interrupt)."""
    import comfy.utils

    return comfy.utils.ProgressBar(total, node_id=node_id)


PREVIEW_MAX_SIZE = 512  # px: ComfyUI scales the preview down to fit this square


def update_progress(pbar, value: int, total: int, preview_image=None) -> None:
    """ProgressBar.update_absolute, with a PIL image previewed on the node the way samplers preview
    (ComfyUI 0.3.64: preview=(format, image, max_size); the frontend shows it on the node)."""
    preview = ("PNG", preview_image, PREVIEW_MAX_SIZE) if preview_image is not None else None
    pbar.update_absolute(value, total, preview=preview)


def listen_addresses() -> list[str]:
    """The addresses ComfyUI was told to listen on (--listen; 127.0.0.1 unless given)."""
    try:
        from comfy.cli_args import args

        listen = args.listen
    except Exception:  # outside a real ComfyUI: its default
        listen = "127.0.0.1"
    return [a.strip() for a in str(listen or "127.0.0.1").split(",") if a.strip()]


def prompt_server():
    """PromptServer.instance, or None outside a running server."""
    try:
        import server  # ComfyUI's module

        return server.PromptServer.instance
    except Exception:
        return None


def send_event(event: str, data: dict) -> None:
    """Broadcast a websocket message {type: event, data} to every browser tab (thread-safe)."""
    ps = prompt_server()
    if ps is not None:
        try:
            ps.send_sync(event, data)
        except Exception as exc:
            log.debug("lora-workbench: send_sync failed: %s", exc)


def send_progress_text(text: str, node_id: str | None) -> None:
    """Live text drawn on the node (ComfyUI's progress_text protocol)."""
    ps = prompt_server()
    if ps is not None and node_id is not None and hasattr(ps, "send_progress_text"):
        try:
            ps.send_progress_text(text, node_id)
        except Exception as exc:
            log.debug("lora-workbench: send_progress_text failed: %s", exc)


def forward_core_events() -> None:
    """Forward the core's event bus to the browser (subscribed once; again if the bus was cleared)."""
    if not events.subscribed(send_event):
        events.subscribe(send_event)
