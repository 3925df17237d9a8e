"""Offline CLIP tokenizers for sd-scripts' --tokenizer_cache_dir, made from ComfyUI's own files.

sd-scripts loads a tokenizer from <cache>/<model id with / as _> when that folder exists, else it
downloads it. ComfyUI ships the CLIP ViT-L/14 vocabulary in comfy/sd1_tokenizer with
model_max_length 8192; sd-scripts pads every caption to model_max_length, so it is put back to 77
as in openai/clip-vit-large-patch14. SDXL's second tokenizer (CLIP ViT-bigG) has the same BPE
vocabulary and sd-scripts sets its pad token itself, so a copy serves for it. Other families'
tokenizers (T5, Gemma, Qwen...) are not in ComfyUI: offline, sd-scripts needs them in this folder.
The trainer's own transformers checks each folder (install.py's check step).
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

CLIP_L = "openai_clip-vit-large-patch14"
CLIP_BIG_G = "laion_CLIP-ViT-bigG-14-laion2B-39B-b160k"
NAMES = (CLIP_L, CLIP_BIG_G)
FILES = ("vocab.json", "merges.txt", "special_tokens_map.json")
CONFIG = "tokenizer_config.json"


def comfy_source(comfyui: Path | None) -> Path | None:
    """ComfyUI's comfy/sd1_tokenizer when it holds every file needed, else None."""
    if comfyui is None:
        return None
    folder = Path(comfyui) / "comfy" / "sd1_tokenizer"
    return folder if all((folder / f).is_file() for f in (*FILES, CONFIG)) else None


def inputs(source: Path | None) -> str:
    """A digest of the files a fill would copy ("" when there is nothing to copy)."""
    if source is None:
        return ""
    h = hashlib.sha256()
    for name in (*FILES, CONFIG):
        h.update((source / name).read_bytes())
    return h.hexdigest()[:16]


def fill(source: Path, dest: Path) -> list[str]:
    """Make each missing tokenizer folder in dest (written aside, then renamed); returns the names made."""
    made = []
    for name in NAMES:
        target = dest / name
        if (target / CONFIG).is_file():
            continue
        part = dest / f"{name}.part"
        shutil.rmtree(part, ignore_errors=True)
        part.mkdir(parents=True)
        for f in FILES:
            shutil.copyfile(source / f, part / f)
        config = json.loads((source / CONFIG).read_text(encoding="utf-8"))
        config["model_max_length"] = 77
        config.pop("special_tokens_map_file", None)
        (part / CONFIG).write_text(json.dumps(config, indent=2), encoding="utf-8")
        if target.exists():
            shutil.rmtree(target)  # a folder without its config is a fill that was killed
        part.rename(target)
        made.append(name)
    return made


def present(dest: Path) -> list[Path]:
    return [dest / n for n in NAMES if (dest / n / CONFIG).is_file()]
