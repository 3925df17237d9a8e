"""The library's layout: its category folders, where each UI reads each category, and link counts.

Pure data and small helpers shared by the linker, the watcher, the nodes and the routes.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from .. import paths

MAX_SCAN_ENTRIES = 20000  # per target folder when counting links: a status call must stay cheap

# The library layout (the seed's init script): model categories plus repos and depth maps.
LIBRARY_FOLDERS = (
    "checkpoints",
    "loras",
    "vae",
    "embeddings",
    "upscale_models",
    "controlnet",
    "clip",
    "text_encoders",  # ComfyUI's newer name for clip; both link to the same UI folders
    "diffusion_models",  # diffusion-model-only files (FLUX, SD3.5, Lumina, ...): ComfyUI's unet loader
    "repos",
    "depth-maps",
)

# What the seed linked everywhere, and what some UIs read on top of it.
SEED_EXTS = frozenset({".ckpt", ".safetensors", ".pt", ".pth"})
COMFY_EXTS = SEED_EXTS | {".sft", ".bin"}  # folder_paths.supported_pt_extensions (minus .pt2/.pkl)
A1111_EMBEDDING_EXTS = SEED_EXTS | {".bin"}
A1111_CONTROLNET_EXTS = SEED_EXTS | {".bin"}

# UI -> library category -> (candidate folders relative to the UI folder, extensions).
# The first candidate folder that exists is used; when none exists the target is skipped.
UI_LAYOUTS: dict[str, dict[str, tuple[tuple[str, ...], frozenset[str]]]] = {
    "comfyui": {
        "checkpoints": (("models/checkpoints",), COMFY_EXTS),
        "loras": (("models/loras",), COMFY_EXTS),
        "vae": (("models/vae",), COMFY_EXTS),
        "embeddings": (("models/embeddings",), COMFY_EXTS),
        "upscale_models": (("models/upscale_models",), COMFY_EXTS),
        "controlnet": (("models/controlnet",), COMFY_EXTS),
        "clip": (("models/text_encoders", "models/clip"), COMFY_EXTS),
        "text_encoders": (("models/text_encoders", "models/clip"), COMFY_EXTS),
        "diffusion_models": (("models/diffusion_models", "models/unet"), COMFY_EXTS),
    },
    "a1111": {
        "checkpoints": (("models/Stable-diffusion",), SEED_EXTS),
        "loras": (("models/Lora",), SEED_EXTS),
        "vae": (("models/VAE",), SEED_EXTS),
        "embeddings": (("embeddings",), A1111_EMBEDDING_EXTS),
        "upscale_models": (("models/ESRGAN",), SEED_EXTS),
        "controlnet": (("models/ControlNet", "extensions/sd-webui-controlnet/models"), A1111_CONTROLNET_EXTS),
    },
}
# Forge keeps A1111's layout; its ControlNet is built in, so there is no extension folder. It loads
# FLUX's text encoders from models/text_encoder and diffusion-model-only files as checkpoints.
UI_LAYOUTS["forge"] = {
    **UI_LAYOUTS["a1111"],
    "controlnet": (("models/ControlNet",), A1111_CONTROLNET_EXTS),
    "text_encoders": (("models/text_encoder",), SEED_EXTS),
    "diffusion_models": (("models/Stable-diffusion",), SEED_EXTS),
}

# Library category -> ComfyUI folder_paths name (whose filename_list_cache to drop after a relink).
COMFY_FOLDER_NAMES = {
    "checkpoints": "checkpoints",
    "loras": "loras",
    "vae": "vae",
    "embeddings": "embeddings",
    "upscale_models": "upscale_models",
    "controlnet": "controlnet",
    "clip": "text_encoders",
    "text_encoders": "text_encoders",
    "diffusion_models": "diffusion_models",
}

# Where trained LoRAs go in each UI (link_trained).
TRAINED_LORA_FOLDERS = {"comfyui": "models/loras", "a1111": "models/Lora", "forge": "models/Lora"}

# Files a downloader is still writing: never linked until renamed to their final name.
PARTIAL_SUFFIXES = (".part", ".tmp", ".crdownload", ".download", ".partial", ".aria2")

UI_NAMES = {"comfyui": "ComfyUI", "a1111": "A1111", "forge": "Forge"}


def init_library(root: str | os.PathLike) -> list[Path]:
    """Create the library folder and its category folders; returns the folders it created (idempotent)."""
    root = Path(root).expanduser()
    created = []
    for p in (root, *(root / name for name in LIBRARY_FOLDERS)):
        if not p.is_dir():
            p.mkdir(parents=True, exist_ok=True)
            created.append(p)
    return created


def is_partial_download(name: str) -> bool:
    """True for a name a downloader uses while the file is incomplete (or a hidden temp file)."""
    low = name.lower()
    return name.startswith(".") or low.endswith(PARTIAL_SUFFIXES)


# --------------------------------------------------------------------------- targets
@dataclass(frozen=True)
class Target:
    """One UI folder that should mirror one library category."""

    ui: str
    category: str
    ui_dir: Path
    candidates: tuple[str, ...]  # folders relative to ui_dir; the first existing one is used
    extensions: frozenset[str]


def targets_for(
    uis: Mapping[str, str | os.PathLike], categories: Iterable[str] | None = None
) -> list[Target]:
    """The targets of `UI_LAYOUTS` for the given UIs ({"comfyui": dir, "a1111": dir, "forge": dir})."""
    wanted = set(categories) if categories is not None else None
    out = []
    for ui, ui_dir in uis.items():
        if ui not in UI_LAYOUTS:
            raise ValueError(f"Unknown UI {ui!r}: expected one of {', '.join(UI_LAYOUTS)}.")
        for category, (candidates, exts) in UI_LAYOUTS[ui].items():
            if wanted is None or category in wanted:
                out.append(Target(ui, category, Path(ui_dir), candidates, exts))
    return out


def default_ui_dirs() -> dict[str, Path]:
    """The UI folders from the environment/settings: ComfyUI only when COMFYUI_PATH (or the setting)
    is set; A1111 and Forge default to the seed's $HOME/stable-diffusion-webui(-forge)."""
    out: dict[str, Path] = {}
    comfy = paths.comfyui_path()
    if comfy is not None:
        out["comfyui"] = comfy
    out["a1111"] = paths.a1111_path()
    out["forge"] = paths.forge_path()
    return out


def target_folder(ui_dir: str | os.PathLike, candidates: Iterable[str]) -> Path | None:
    """The first candidate folder that exists under ui_dir (None when none does)."""
    return next((Path(ui_dir) / c for c in candidates if (Path(ui_dir) / c).is_dir()), None)


def link_counts(library: str, uis: Mapping[str, str | os.PathLike]) -> list[dict]:
    """Per UI and category: the folder the UI reads and how many links in it point into the library."""
    real_lib = os.path.realpath(library)
    out = []
    for ui, ui_dir in uis.items():
        for category, (candidates, _exts) in UI_LAYOUTS.get(ui, {}).items():
            folder = target_folder(ui_dir, candidates)
            out.append(
                {
                    "library": library,
                    "ui": ui,
                    "category": category,
                    "folder": str(folder) if folder else None,
                    "links": count_links(str(folder), real_lib) if folder else 0,
                }
            )
    return out


def count_links(folder: str, real_lib: str) -> int:
    """Symlinks under `folder` whose target lies in the library (a bounded walk)."""
    count = seen = 0
    prefix = real_lib.rstrip(os.sep) + os.sep
    stack = [folder]
    while stack and seen < MAX_SCAN_ENTRIES:
        try:
            entries = list(os.scandir(stack.pop()))
        except OSError:
            continue
        for e in entries:
            seen += 1
            if e.is_symlink():
                if os.path.realpath(e.path).startswith(prefix):
                    count += 1
            elif e.is_dir(follow_symlinks=False):
                stack.append(e.path)
    return count
