"""Node LinkModelLibrary: link the shared model library into ComfyUI (and A1111/Forge), optionally live."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from ..lora_workbench import paths
from ..lora_workbench.errors import PathNotAllowed
from . import _comfy

if TYPE_CHECKING:
    from ..lora_workbench.library.linker import LinkReport

# The library core is imported where the node uses it, not here: ComfyUI imports every pack at start-up, and
# what a node does when it runs need not cost that start-up anything.


def _default_library() -> str:
    try:
        p = paths.library_path()
    except Exception:  # a broken settings file must not break /object_info
        return ""
    return str(p) if p else ""


def _seed_default(fn) -> str:
    try:
        return str(fn())
    except Exception:
        return ""


def _comfy_ui_dir() -> Path:
    """The folder whose models/ ComfyUI reads (library.UI_LAYOUTS paths are relative to it)."""
    return Path(_comfy.folder_paths().models_dir).parent


def _invalidate_comfy_cache(report: LinkReport) -> None:
    from ..lora_workbench.library import layout

    for category in report.categories:
        name = layout.COMFY_FOLDER_NAMES.get(category)
        if name:
            _comfy.invalidate_filename_cache(name)


def _refuse_upload_folder(lib: Path) -> None:
    """A library inside ComfyUI's input, output or temp folder would link into every UI whatever a
    web page uploaded there (a .ckpt or .pt is a pickle): a workflow may not name one."""
    real = os.path.realpath(lib)
    for folder in _comfy.upload_folders():
        if paths.is_within_roots(real, [Path(os.path.realpath(folder))]):
            raise PathNotAllowed(
                f"The model library {lib} lies in ComfyUI's {folder.name} folder, where any page that "
                f"reaches ComfyUI can upload files; keep the library elsewhere (SD_MODELS_PATH or `library` "
                f"in the settings) and add that folder to the roots."
            )


def _init_library(lib: Path) -> int:
    """layout.init_library for a workflow's path: every folder made through its checked parent."""
    from ..lora_workbench.library import layout

    with paths.makedirs(lib, what="model library") as d:
        for name in layout.LIBRARY_FOLDERS:
            d.mkdir(name).close()
    return len(layout.LIBRARY_FOLDERS) + 1


class LinkModelLibrary:
    """Link every model of one library folder into ComfyUI's models (and A1111/Forge), without copies."""

    DESCRIPTION = (
        "Links the models of one library folder (checkpoints, loras, vae, embeddings, "
        "upscale_models, controlnet, clip) into ComfyUI and optionally A1111/Forge. Creates missing "
        "links, fixes moved ones, removes its own links to deleted files; never touches a real file "
        "or someone else's link (reported as a collision). With watch on, new downloads are linked "
        "live and show in the model lists after a refresh (R)."
    )
    CATEGORY = f"{_comfy.CATEGORY}/library"
    OUTPUT_NODE = True
    FUNCTION = "link"
    RETURN_TYPES = ("STRING",)
    RETURN_NAMES = ("report",)
    OUTPUT_TOOLTIPS = ("The link report: a summary line, then skipped folders, collisions and errors.",)

    @classmethod
    def INPUT_TYPES(cls):
        a1111 = _seed_default(paths.a1111_path)
        forge = _seed_default(paths.forge_path)
        return {
            "required": {
                "library": (
                    "STRING",
                    {
                        "default": _default_library(),
                        "tooltip": "The model library folder (default: $SD_MODELS_PATH or `library` in the settings). "
                        "Must lie inside an allowed root ($LORA_WORKBENCH_ROOTS or `roots` in the settings).",
                    },
                ),
                "link_comfyui": (
                    "BOOLEAN",
                    {
                        "default": True,
                        "tooltip": "Link into this ComfyUI's own models folder.",
                    },
                ),
                "watch": (
                    "BOOLEAN",
                    {
                        "default": False,
                        "tooltip": "Keep watching the library and relink new, renamed and deleted models live. "
                        "Off stops the watcher for this library.",
                    },
                ),
                "init_if_missing": (
                    "BOOLEAN",
                    {
                        "default": False,
                        "tooltip": "Create the library and its category folders if the folder does not exist yet.",
                    },
                ),
                "dry_run": (
                    "BOOLEAN",
                    {
                        "default": False,
                        "tooltip": "Only report what would change; create or remove nothing.",
                    },
                ),
            },
            "optional": {
                "a1111_path": (
                    "STRING",
                    {
                        "default": "",
                        "tooltip": f"An A1111 (stable-diffusion-webui) folder to link into as well; empty skips "
                        f"A1111. The seed's default is {a1111 or '$HOME/stable-diffusion-webui'} "
                        f"($A1111_PATH).",
                    },
                ),
                "forge_path": (
                    "STRING",
                    {
                        "default": "",
                        "tooltip": f"A Forge folder to link into as well; empty skips Forge. The seed's default is "
                        f"{forge or '$HOME/stable-diffusion-webui-forge'} ($FORGE_PATH).",
                    },
                ),
            },
            "hidden": {"unique_id": "UNIQUE_ID"},
        }

    @classmethod
    def IS_CHANGED(cls, **kwargs):
        # Always run: the library changes outside the graph, and a link pass is cheap and idempotent.
        return float("nan")

    def link(
        self,
        library: str,
        link_comfyui: bool = True,
        watch: bool = False,
        init_if_missing: bool = False,
        dry_run: bool = False,
        a1111_path: str = "",
        forge_path: str = "",
        unique_id=None,
    ):
        from ..lora_workbench.library import linker as library_core
        from ..lora_workbench.library import watch as watch_core

        lib = paths.confine(library, what="model library")
        _refuse_upload_folder(lib)
        uis: dict[str, Path] = {}
        if link_comfyui:
            uis["comfyui"] = _comfy_ui_dir()
        if a1111_path and a1111_path.strip():
            uis["a1111"] = paths.confine(a1111_path, what="A1111 folder")
        if forge_path and forge_path.strip():
            uis["forge"] = paths.confine(forge_path, what="Forge folder")

        notes = []
        if init_if_missing and not os.path.isdir(lib) and not dry_run:
            made = _init_library(lib)
            notes.append(f"created the library layout in {lib} ({made} folders)")
        # A workflow's target folders must resolve inside their UI folder or the allowed roots.
        roots = [str(r) for r in paths.allowed_roots()]
        report = library_core.link_library(lib, uis, dry_run=dry_run, trigger="node", roots=roots)
        if "comfyui" in uis and not dry_run:
            _invalidate_comfy_cache(report)

        if watch and not dry_run:
            hook = _invalidate_comfy_cache if "comfyui" in uis else None
            watch_core.ensure_watcher(lib, uis, on_report=hook, roots=roots)
            notes.append("watching the library for changes")
        elif not watch and watch_core.stop_watcher(lib):
            notes.append("stopped watching the library")
        text = report.to_text()
        if notes:
            text += "\n" + "\n".join(notes)
        _comfy.send_progress_text(report.summary(), unique_id)
        return {"ui": {"text": [text]}, "result": (text,)}


NODE_CLASS_MAPPINGS = {"LinkModelLibrary": LinkModelLibrary}
NODE_DISPLAY_NAME_MAPPINGS = {"LinkModelLibrary": "Link Model Library"}
