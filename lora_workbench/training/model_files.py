"""The extra model files a family's trainer needs (FLUX: clip_l, t5xxl, ae; Wan: t5, vae; FramePack:
text_encoder1, text_encoder2, image_encoder, vae; ...): which file of ComfyUI's text_encoders/vae/
clip_vision folders goes where, pre-selected by name when the choice is obvious, and checked before
launch (there, and the kind of file it is: modelfiles/components.py).

Pure: the caller passes the folder listings and a resolver from (folder, name) to a path, so the node
(ComfyUI's folder_paths), the CLI (paths given on the command line) and the tests share it.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from ..errors import ValidationError
from ..modelfiles import components
from ..modelfiles.detect import ModelInfo
from . import families
from .families import ModelFile

AUTO = "(auto)"  # pick the obvious file by name (settings.AUTO_FILE)
NONE = "(none)"  # leave the option out (only where the checkpoint carries it; settings.NONE_FILE)

# Where ComfyUI looks for each folder_paths name, for messages.
COMFY_FOLDERS = {
    "text_encoders": "models/text_encoders (or models/clip)",
    "vae": "models/vae",
    "clip_vision": "models/clip_vision",
    "diffusion_models": "models/diffusion_models (or models/unet)",
    "checkpoints": "models/checkpoints",
}
# Among several files that match a slot, this order picks one (sd-scripts' docs: t5xxl_fp16).
_PRECISION_ORDER = ("fp16", "bf16", "fp32", "", "fp8")


@dataclass(frozen=True)
class PickedFile:
    option: str  # sd-scripts' option
    name: str  # the file name as ComfyUI lists it ("" = left out)
    path: str  # resolved path ("" = left out)
    how: str  # "picked" | "by name" | "in the checkpoint"


def _precision(name: str) -> str:
    low = name.lower()
    for tag in ("fp16", "bf16", "fp32", "fp8"):
        if tag in low:
            return tag
    return ""


def preselect(slot: ModelFile, names: Sequence[str]) -> str:
    """The obvious file for `slot` among `names` (ComfyUI's list for its folder), "" when none or a tie."""
    hint = re.compile(slot.hint)
    avoid = re.compile(slot.avoid) if slot.avoid else None
    matches = []
    for name in names:
        base = os.path.basename(name).lower()
        if hint.search(base) and not (avoid and avoid.search(base)):
            matches.append(name)
    if len(matches) <= 1:
        return matches[0] if matches else ""
    best = min(_PRECISION_ORDER.index(_precision(n)) for n in matches)
    top = [n for n in matches if _PRECISION_ORDER.index(_precision(n)) == best]
    return top[0] if len(top) == 1 else ""


def slots(family_id: str, recipe=None) -> tuple[ModelFile, ...]:
    return (recipe or families.get(family_id)).model_files


def _missing(family: families.TrainingFamily, slot: ModelFile, names: Sequence[str]) -> ValidationError:
    where = COMFY_FOLDERS.get(slot.folder, slot.folder)
    seen = f" ({len(names)} files there, none named like one)" if names else " (the folder is empty)"
    return ValidationError(
        f"{family.name} needs a {slot.label} (--{slot.option}): none is picked and none was found by "
        f"name in ComfyUI's {where}{seen}. Put the file (e.g. {slot.example}) in {where} and pick it "
        f"in {slot.setting}."
    )


def pick(
    model: ModelInfo,
    chosen: Mapping[str, str],
    listing: Mapping[str, Sequence[str]],
    resolve: Callable[[str, str], str | None],
    recipe=None,
) -> list[PickedFile]:
    """The files for every slot of the model's family: `chosen` maps the slot's setting (its widget,
    else its option) -> a name, AUTO or NONE
    (missing = AUTO); `listing` maps folder -> the names in it; `resolve(folder, name)` -> path or None.
    `recipe` is the family's recipe (backends.for_family); without it, sd-scripts' table is asked.
    Raises a sentence for a required file that is missing, does not exist, or is the wrong kind."""
    family = recipe or families.get(model.arch)
    out = []
    for slot in family.model_files:
        if not slot.needed_for(model.variant):
            continue  # FLUX.2 dev's Mistral is no file of klein's; Wan's image encoder only for i2v
        value = chosen.get(slot.setting, chosen.get(slot.option, AUTO)) or AUTO
        names = list(listing.get(slot.folder, ()))
        bundled = slot.bundled_kind and slot.bundled_kind in model.includes
        if value == NONE or (value == AUTO and bundled):
            if not bundled:
                raise ValidationError(
                    f"{family.name} needs a {slot.label} (--{slot.option}) and {os.path.basename(model.path)} "
                    f"does not carry one; pick a file in {slot.setting}."
                )
            out.append(PickedFile(slot.option, "", "", "in the checkpoint"))
            continue
        name = preselect(slot, names) if value == AUTO else value
        if not name:
            raise _missing(family, slot, names)
        how = "by name" if value == AUTO else "picked"
        out.append(_resolved(family, slot, name, resolve, how, model.trainer))
    return out


def _resolved(
    family, slot: ModelFile, name: str, resolve, how: str, trainer: str = "sd-scripts"
) -> PickedFile:
    path = resolve(slot.folder, name)
    if not path or not os.path.isfile(path):
        where = COMFY_FOLDERS.get(slot.folder, slot.folder)
        raise ValidationError(
            f"The {slot.label} {name!r} (--{slot.option}) is not in ComfyUI's {where}; put it there "
            f"(or refresh with R and pick it again)."
        )
    facts = components.file_facts(path)
    kind = facts.kind
    if facts.scaled_fp8:
        raise ValidationError(
            f"The file picked for {slot.setting}, {name}, is a ComfyUI 'scaled fp8' file, whose scale "
            f"tensors {trainer} does not read. "
            f"Pick the fp16/bf16 file (e.g. {slot.example or 'the bf16 one'}) instead."
        )
    if not components.satisfies(kind, slot.kind):
        raise ValidationError(
            f"The file picked for {slot.setting}, {name}, holds {components.kind_name(kind)}, not "
            f"{components.kind_name(slot.kind)}; pick the {slot.label} for {family.name} there."
        )
    return PickedFile(slot.option, name, path, how)


def as_options(picked: Sequence[PickedFile]) -> dict[str, str]:
    """option -> path for sd-scripts (files the checkpoint carries are left out)."""
    return {p.option: p.path for p in picked if p.path}


# --------------------------------------------------------------------------- where the names come from
@dataclass(frozen=True)
class FileSource:
    """Where extra model files are found: folder -> names to pick from, and (folder, value) -> path."""

    listing: Mapping[str, Sequence[str]]
    resolve: Callable[[str, str], str | None]


# ComfyUI's folder_paths names -> its folders under models/ (for the CLI, which has no folder_paths).
COMFY_SUBFOLDERS = {
    "text_encoders": ("text_encoders", "clip"),
    "vae": ("vae",),
    "clip_vision": ("clip_vision",),
}
# .pth too: musubi-tuner's Wan loads the T5 and CLIP as Wan-AI ships them (models_t5_umt5-xxl-enc-bf16.pth)
_EXTS = (".safetensors", ".sft", ".pth")


def path_source(comfyui_dir: str | os.PathLike | None) -> FileSource:
    """For the CLI and the core: a value is a file path (absolute, or relative to the current folder)
    or a name in ComfyUI's models folders when COMFYUI_PATH is known; (auto) looks there by name."""
    roots = {
        folder: [os.path.join(comfyui_dir, "models", sub) for sub in subs] if comfyui_dir else []
        for folder, subs in COMFY_SUBFOLDERS.items()
    }

    def names(folder: str) -> list[str]:
        out = []
        for root in roots.get(folder, []):
            for dirpath, _dirs, files in os.walk(root):
                out += [
                    os.path.relpath(os.path.join(dirpath, f), root)
                    for f in files
                    if f.lower().endswith(_EXTS)
                ]
        return sorted(out)

    def resolve(folder: str, value: str) -> str | None:
        if os.path.isfile(value):
            return os.path.abspath(value)
        for root in roots.get(folder, []):
            candidate = os.path.join(root, value)
            if os.path.isfile(candidate):
                return candidate
        return None

    return FileSource({folder: names(folder) for folder in COMFY_SUBFOLDERS}, resolve)


# --------------------------------------------------------------------------- the base model by name (CLI)
# ComfyUI's folder_paths names for base models -> their folders under models/ (unet is the old name).
BASE_MODEL_FOLDERS = {"checkpoints": ("checkpoints",), "diffusion_models": ("diffusion_models", "unet")}
DIFFUSION_PREFIX = "diffusion_models/"  # how the node lists a diffusion model (nodes/_comfy.py)
EXTRA_PATHS_FILE = "extra_model_paths.yaml"


def base_model_dirs(comfyui_dir: str | os.PathLike | None) -> list[tuple[str, str]]:
    """(folder_paths name, folder) where ComfyUI finds base models: models/checkpoints, models/
    diffusion_models and models/unet, then the folders its extra_model_paths.yaml adds (read as ComfyUI's
    utils/extra_config.py does; skipped without PyYAML, which ComfyUI itself brings)."""
    if not comfyui_dir:
        return []
    out = [
        (kind, os.path.join(comfyui_dir, "models", sub))
        for kind, subs in BASE_MODEL_FOLDERS.items()
        for sub in subs
    ]
    return out + _extra_model_dirs(os.path.join(comfyui_dir, EXTRA_PATHS_FILE))


def _extra_model_dirs(yaml_path: str) -> list[tuple[str, str]]:
    try:
        import yaml

        with open(yaml_path, encoding="utf-8") as stream:
            config = yaml.safe_load(stream)
    except Exception:  # no PyYAML, no file, or not YAML: ComfyUI's own folders still count
        return []
    out = []
    base_dir = os.path.dirname(os.path.abspath(yaml_path))
    for conf in (config or {}).values() if isinstance(config, dict) else ():
        if not isinstance(conf, dict):
            continue
        base = conf.get("base_path")
        base = (
            os.path.join(base_dir, os.path.expandvars(os.path.expanduser(base)))
            if isinstance(base, str)
            else ""
        )
        for key, value in conf.items():
            kind = "diffusion_models" if key == "unet" else key
            if kind in BASE_MODEL_FOLDERS and isinstance(value, str):
                out += [
                    (kind, os.path.normpath(os.path.join(base or base_dir, p)))
                    for p in value.split("\n")
                    if p
                ]
    return out


def find_base_model(value: str, comfyui_dir: str | os.PathLike | None) -> str:
    """`--base`: a path to the file, else a name in ComfyUI's checkpoints or diffusion-model folders
    (`diffusion_models/NAME` as the node lists it also works); a sentence naming where it looked."""
    path = os.path.expanduser(value)
    if os.path.isfile(path):
        return os.path.realpath(path)
    kinds = tuple(BASE_MODEL_FOLDERS)
    name = value
    if value.startswith(DIFFUSION_PREFIX):
        kinds, name = ("diffusion_models",), value[len(DIFFUSION_PREFIX) :]
    dirs = [folder for kind, folder in base_model_dirs(comfyui_dir) if kind in kinds]
    if not os.path.isabs(name) and ".." not in name.replace("\\", "/").split("/"):
        for folder in dirs:
            candidate = os.path.join(folder, name)
            if os.path.isfile(candidate):
                return os.path.realpath(candidate)
    where = (
        f"nor in {', '.join(dirs)}"
        if dirs
        else "and COMFYUI_PATH is not set, so ComfyUI's models were not searched"
    )
    raise ValidationError(
        f"The base model {value!r} is not a file {where}; give the path of the .safetensors file or "
        f"the name of a file in ComfyUI's checkpoints or diffusion_models folder."
    )
