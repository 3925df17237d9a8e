"""The WD14 tagger: its options declared once, checked, and turned into sd-scripts' command line.

sd-scripts' `finetune/tag_images_by_wd14_tagger.py --onnx` reads the model from
`<model_dir>/<repo_id with / as _>/` (`model.onnx` and `selected_tags.csv`) and downloads it there
from the Hugging Face Hub when that folder is missing. The pack lets it download only when the user
allows it; otherwise the folder must hold both files and the script runs with HF_HUB_OFFLINE=1.
Every free-text value goes to the script as one `--option=value` argument, so a value that starts
with `-` stays a value; nothing here starts a process.
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass, fields, replace
from pathlib import Path

from .. import paths, settings
from ..errors import ValidationError

SCRIPT = Path("finetune") / "tag_images_by_wd14_tagger.py"
DEFAULT_REPO = "SmilingWolf/wd-v1-4-convnext-tagger-v2"
# SmilingWolf's taggers that ship model.onnx + selected_tags.csv (the layout the script reads).
KNOWN_REPOS = (
    DEFAULT_REPO,
    "SmilingWolf/wd-v1-4-convnextv2-tagger-v2",
    "SmilingWolf/wd-v1-4-vit-tagger-v2",
    "SmilingWolf/wd-v1-4-swinv2-tagger-v2",
    "SmilingWolf/wd-v1-4-moat-tagger-v2",
    "SmilingWolf/wd-vit-tagger-v3",
    "SmilingWolf/wd-convnext-tagger-v3",
    "SmilingWolf/wd-swinv2-tagger-v3",
    "SmilingWolf/wd-vit-large-tagger-v3",
    "SmilingWolf/wd-eva02-large-tagger-v3",
)
MODEL_FILES = ("model.onnx", "selected_tags.csv")
MODEL_DIR_SETTING = "wd14_tagger_dir"  # settings key / $LORA_WORKBENCH_WD14_DIR
COMFY_MODEL_FOLDER = "wd14_tagger"  # under ComfyUI's models/ when no setting names a folder
EXISTING = ("overwrite", "append", "keep")
MAX_TEXT = 2000  # characters of one tag list (undesired tags, first tags)
_REPO_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,95}/[A-Za-z0-9][A-Za-z0-9_.-]{0,95}")
_EXT_RE = re.compile(r"\.[A-Za-z0-9_-]{1,16}")
_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f\u2028\u2029]")


@dataclass(frozen=True)
class Option:
    """One tagger option: its type, default, bounds or choices, help, and the flag the script gets."""

    name: str
    kind: type
    default: object
    tooltip: str
    low: float | None = None
    high: float | None = None
    step: float | None = None
    choices: tuple[str, ...] = ()


OPTIONS: tuple[Option, ...] = (
    Option(
        "repo_id", str, DEFAULT_REPO,
        "Which WD14 tagger (a Hugging Face repo). Its files live in <model folder>/<repo with / as _>/ "
        "(model.onnx and selected_tags.csv); the model folder is `wd14_tagger_dir` in the settings, "
        "else ComfyUI's models/wd14_tagger.",
        choices=KNOWN_REPOS,
    ),
    Option(
        "general_threshold", float, 0.35,
        "Confidence a general tag needs to be written (sd-scripts --general_threshold); lower = more tags.",
        low=0.0, high=1.0, step=0.01,
    ),
    Option(
        "character_threshold", float, 0.85,
        "Confidence a character tag needs (sd-scripts --character_threshold); 1.0 writes none.",
        low=0.0, high=1.0, step=0.01,
    ),
    Option(
        "trigger_word", str, "",
        "Tags put first in every caption, once, comma-separated (your trigger word); added even when "
        "the tagger does not see them (sd-scripts --always_first_tags, then checked by the pack).",
    ),
    Option(
        "undesired_tags", str, "",
        "Comma-separated tags never written (sd-scripts --undesired_tags), spelled as they are written: "
        "with remove_underscore on, `long hair`, not `long_hair`.",
    ),
    Option(
        "existing_captions", str, "overwrite",
        "An image that already has a caption: overwrite it, append the new tags to it (sd-scripts "
        "--append_tags; no tag twice), or keep it and tag only images without one.",
        choices=EXISTING,
    ),
    Option(
        "caption_extension", str, ".txt",
        "The caption file beside each image (sd-scripts --caption_extension): the same one the dataset "
        "and the trainer read.",
    ),
    Option(
        "batch_size", int, 1,
        "Images per tagger batch (sd-scripts --batch_size); a model with a fixed batch size uses its own.",
        low=1, high=64, step=1,
    ),
    Option(
        "remove_underscore", bool, True,
        "Write `long hair` instead of `long_hair` (sd-scripts --remove_underscore).",
    ),
    Option(
        "use_rating_tags", bool, False,
        "Also write the rating tag (general, sensitive, questionable, explicit) first (sd-scripts "
        "--use_rating_tags).",
    ),
    Option(
        "regularization", bool, False,
        "Also caption the regularization/ subsets (off: only images/).",
    ),
    Option(
        "allow_download", bool, False,
        "Let sd-scripts download the tagger from the Hugging Face Hub when its files are not in the model "
        "folder. Off: nothing is downloaded (HF_HUB_OFFLINE=1) and a missing model is a sentence saying "
        "where to put which files.",
    ),
)  # fmt: skip
OPTION = {o.name: o for o in OPTIONS}


@dataclass(frozen=True)
class TaggerSpec:
    """What one tagging run is asked to do (defaults from OPTIONS); `checked()` validates it."""

    project_dir: str
    model_dir: str
    repo_id: str = DEFAULT_REPO
    general_threshold: float = 0.35
    character_threshold: float = 0.85
    trigger_word: str = ""
    undesired_tags: str = ""
    existing_captions: str = "overwrite"
    caption_extension: str = ".txt"
    batch_size: int = 1
    remove_underscore: bool = True
    use_rating_tags: bool = False
    regularization: bool = False
    allow_download: bool = False

    @classmethod
    def from_values(cls, project_dir: str, model_dir: str, values: dict) -> TaggerSpec:
        """A spec from option values by name (unknown names are ignored, missing ones take defaults)."""
        known = {f.name for f in fields(cls)}
        return cls(str(project_dir), str(model_dir), **{k: v for k, v in values.items() if k in known})

    def checked(self) -> TaggerSpec:
        """The spec with values normalized, or a ValidationError naming the option and what to do."""
        values = {o.name: _checked(o, getattr(self, o.name)) for o in OPTIONS}
        _check_repo(values["repo_id"])
        _check_extension(values["caption_extension"])
        return replace(self, **values)

    @property
    def model_folder(self) -> Path:
        """Where the script looks for (and downloads) this tagger's files."""
        return Path(self.model_dir) / self.repo_id.replace("/", "_")

    def first_tags(self) -> list[str]:
        from ..dataset.captions_merge import split_tags  # here: the pack's import leaves dataset/ out

        return split_tags(self.trigger_word)


# --------------------------------------------------------------------------- checking values
def _checked(option: Option, value):
    if option.kind is bool:
        if not isinstance(value, bool):
            raise ValidationError(f"The tagger option {option.name} must be true or false, not {value!r}.")
        return value
    if option.kind in (int, float):
        return _number(option, value)
    return _text(option, value)


def _number(option: Option, value) -> float | int:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    if ok and option.kind is int:
        ok = float(value).is_integer()
    if not ok or not math.isfinite(value) or not option.low <= value <= option.high:
        raise ValidationError(
            f"The tagger option {option.name} is {value!r}; give a number from {option.low:g} to {option.high:g}."
        )
    return option.kind(value)


def _text(option: Option, value) -> str:
    if not isinstance(value, str):
        raise ValidationError(f"The tagger option {option.name} must be text, not {type(value).__name__}.")
    value = value.strip()
    if _CONTROL_RE.search(value):
        raise ValidationError(
            f"The tagger option {option.name} holds a line break or a control character "
            f"({paths.shown(value, 60)}); write the tags on one line, separated by commas."
        )
    if len(value) > MAX_TEXT:
        raise ValidationError(
            f"The tagger option {option.name} is {len(value)} characters long; at most {MAX_TEXT} are taken."
        )
    if option.choices and option.name != "repo_id" and value not in option.choices:
        raise ValidationError(
            f"The tagger option {option.name} is {value!r}; pick one of {', '.join(option.choices)}."
        )
    return value


def _check_repo(repo_id: str) -> None:
    # The script joins the repo id into a folder path (and splits off a third part as a sub-folder),
    # so only the plain owner/name form of a Hub repo id is taken.
    if not _REPO_RE.fullmatch(repo_id) or ".." in repo_id:
        raise ValidationError(
            f"The tagger repo_id {paths.shown(repo_id, 80)} is not a Hugging Face repo id like {DEFAULT_REPO}; "
            f"give owner/name (letters, digits, . _ -)."
        )


def _check_extension(ext: str) -> None:
    from ..dataset.images import DEFAULT_RULES  # the dataset core loads when a run is checked

    if not _EXT_RE.fullmatch(ext):
        raise ValidationError(
            f"The caption_extension {paths.shown(ext, 40)} must look like .txt (a dot and up to 16 letters, "
            f"digits, _ or -)."
        )
    if ext.lower() in {e.lower() for e in DEFAULT_RULES.extensions} or ext.lower() in (".avif", ".jxl"):
        raise ValidationError(
            f"The caption_extension {ext} is an image extension: the tagger would write captions over the "
            f"images. Use .txt or .caption."
        )


# --------------------------------------------------------------------------- the model
def default_model_dir(comfy_models_dir: str | os.PathLike | None = None) -> Path | None:
    """$LORA_WORKBENCH_WD14_DIR or settings `wd14_tagger_dir`, else <ComfyUI models>/wd14_tagger
    (`comfy_models_dir`, or $COMFYUI_PATH/models); None when none is known."""
    env = settings.BY_KEY[MODEL_DIR_SETTING].env or ""
    if os.environ.get(env):
        return Path(os.environ[env]).expanduser()
    value = settings.get(MODEL_DIR_SETTING)
    if value:
        return Path(value).expanduser()
    if comfy_models_dir is not None:
        return Path(comfy_models_dir) / COMFY_MODEL_FOLDER
    comfy = paths.comfyui_path()
    return comfy / "models" / COMFY_MODEL_FOLDER if comfy is not None else None


def missing_model_files(spec: TaggerSpec) -> list[str]:
    """The model files the script needs that its folder lacks ([] when the model is there)."""
    return [name for name in MODEL_FILES if not (spec.model_folder / name).is_file()]


def check_model(spec: TaggerSpec) -> bool:
    """True when the model must be downloaded (allowed); a sentence when it is missing and not allowed."""
    missing = missing_model_files(spec)
    if not missing:
        return False
    if not spec.allow_download:
        raise ValidationError(
            f"The WD14 tagger {spec.repo_id} is not in {spec.model_folder} (missing {' and '.join(missing)}): "
            f"download model.onnx and selected_tags.csv from https://huggingface.co/{spec.repo_id} into that "
            f"folder, or turn on allow_download to let sd-scripts fetch them."
        )
    return True


# --------------------------------------------------------------------------- the command
def build_argv(
    spec: TaggerSpec, python: str | os.PathLike, script: str | os.PathLike, images_dir: str | os.PathLike
) -> list[str]:
    """sd-scripts' tagger command for a checked spec, on the (staged) images folder, as an argv list."""
    argv = [
        str(python),
        str(script),
        os.path.abspath(images_dir),  # absolute: never taken for an option
        "--onnx",
        "--recursive",
        f"--repo_id={spec.repo_id}",
        f"--model_dir={os.path.abspath(spec.model_dir)}",
        f"--batch_size={spec.batch_size}",
        f"--general_threshold={spec.general_threshold:g}",
        f"--character_threshold={spec.character_threshold:g}",
        f"--caption_extension={spec.caption_extension}",
    ]
    if spec.undesired_tags:
        argv.append(f"--undesired_tags={spec.undesired_tags}")
    if spec.trigger_word:
        argv.append(f"--always_first_tags={spec.trigger_word}")
    flags = {
        "--append_tags": spec.existing_captions == "append",
        "--remove_underscore": spec.remove_underscore,
        "--use_rating_tags": spec.use_rating_tags,
        "--force_download": spec.allow_download
        and spec.model_folder.exists()
        and bool(missing_model_files(spec)),
    }
    return argv + [flag for flag, on in flags.items() if on]


def child_environment(spec: TaggerSpec, scripts_dir: str | os.PathLike, base: dict | None = None) -> dict:
    """The script's environment: sd-scripts importable, and the Hub off line unless downloads are allowed."""
    env = dict(os.environ if base is None else base)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(scripts_dir), env.get("PYTHONPATH", "")) if p)
    if not spec.allow_download:
        env["HF_HUB_OFFLINE"] = "1"
    return env
