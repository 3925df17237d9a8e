"""The settings file: each key declared once with its type, its environment variable and its meaning.

`$LORA_WORKBENCH_SETTINGS` (default `$XDG_CONFIG_HOME/lora-workbench/settings.json`) holds one JSON
object. `load()` checks every known key's type and raises a sentence naming the file and the key when
one is wrong: a wrong type is never reinterpreted (a string `roots` is not read letter by letter), so a
broken file can only narrow what a workflow may touch, never widen it. Unknown keys are kept and
ignored, so a newer pack's file still loads. `update()` is for ComfyUI's settings dialog: it writes
only keys marked `ui_writable` (never `roots`), atomically.
"""

from __future__ import annotations

import contextlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

from . import disk, filelock
from .errors import WorkbenchError

SETTINGS_ENV = "LORA_WORKBENCH_SETTINGS"
MAX_SETTINGS_BYTES = 1 << 20  # a settings file is a few lines; anything bigger is not ours


class SettingsError(WorkbenchError):
    """The settings file cannot be used as it is (not JSON, not an object, a value of the wrong type)."""


@dataclass(frozen=True)
class Setting:
    """One key of the settings file."""

    key: str
    env: str | None  # the environment variable that overrides it
    kind: str  # "path" (a string) or "paths" (a list of strings)
    meaning: str
    ui_writable: bool = True  # may the settings editors (dialog, `settings --set`) write it? (roots: never)
    executable: bool = False  # decides what code runs: set from a shell only, never over HTTP
    defines_roots: bool = False  # an allowed root itself: stored resolved, checked again at use


SETTINGS: tuple[Setting, ...] = (
    Setting("library", "SD_MODELS_PATH", "path", "the model library folder", defines_roots=True),
    Setting(
        "comfyui_path", "COMFYUI_PATH", "path", "ComfyUI's folder (the CLI links into it)", defines_roots=True
    ),
    Setting("a1111_path", "A1111_PATH", "path", "stable-diffusion-webui"),
    Setting("forge_path", "FORGE_PATH", "path", "stable-diffusion-webui-forge"),
    Setting(
        "kohya_ss_path", "KOHYA_SS_PATH", "path", "a kohya_ss GUI or sd-scripts checkout", executable=True
    ),
    Setting("kohya_python", "KOHYA_PYTHON", "path", "the interpreter that runs sd-scripts", executable=True),
    Setting(
        "kohya_ss_gui_path",
        "KOHYA_SS_GUI_PATH",
        "path",
        "a kohya_ss GUI checkout (its presets/ for the GUI config import)",
        executable=True,  # its presets choose the trainer's options; kept with the trainer's paths
    ),
    Setting(
        "musubi_tuner_path",
        "MUSUBI_TUNER_PATH",
        "path",
        "a kohya musubi-tuner checkout (Qwen-Image, Wan, Z-Image, FLUX.2, FLUX.1 Kontext, HunyuanVideo 1.5, FramePack)",
        executable=True,
    ),
    Setting(
        "musubi_python",
        "MUSUBI_PYTHON",
        "path",
        "the interpreter that runs musubi-tuner (its own environment: its pins differ from sd-scripts')",
        executable=True,
    ),
    Setting(
        "roots",
        "LORA_WORKBENCH_ROOTS",
        "paths",
        "folders a workflow may touch",
        ui_writable=False,
    ),
    Setting(
        "tokenizer_cache_dir",
        "LORA_WORKBENCH_TOKENIZER_CACHE",
        "path",
        "sd-scripts --tokenizer_cache_dir (offline tokenizers)",
    ),
    Setting(
        "home",
        "LORA_WORKBENCH_HOME",
        "path",
        "the pack's data folder (the managed trainers: trainers/sd-scripts/, trainers/musubi-tuner/)",
        ui_writable=False,  # where installs write and `trainer remove` deletes: only the user sets it
    ),
    Setting(
        "wd14_tagger_dir",
        "LORA_WORKBENCH_WD14_DIR",
        "path",
        "the WD14 tagger models (default: ComfyUI's models/wd14_tagger)",
    ),
)
BY_KEY = {s.key: s for s in SETTINGS}


def settings_path() -> Path:
    """The settings file: $LORA_WORKBENCH_SETTINGS, else $XDG_CONFIG_HOME/lora-workbench/settings.json."""
    if os.environ.get(SETTINGS_ENV):
        return Path(os.environ[SETTINGS_ENV]).expanduser()
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "lora-workbench" / "settings.json"


def _type_error(path: Path, setting: Setting, value) -> SettingsError:
    want = {
        "path": 'a folder or file name as a string, e.g. "/data/models"',
        "paths": 'a list of folder names, e.g. ["/data/models", "/data/lora-projects"]',
    }[setting.kind]
    got = type(value).__name__ if value is not None else "null"
    return SettingsError(
        f"The settings file {path}: `{setting.key}` must be {want}, not a {got} ({_short(value)}). "
        "Fix or remove that key."
    )


def _short(value) -> str:
    text = json.dumps(value, ensure_ascii=True, default=str)
    return text if len(text) <= 80 else text[:77] + "..."


def check_value(setting: Setting, value, path: Path | None = None):
    """The value as the pack uses it (None when unset), or SettingsError naming the file and the key."""
    where = path if path is not None else settings_path()
    if value is None or value == "":
        return None
    if setting.kind == "path":
        if not isinstance(value, str) or "\x00" in value:
            raise _type_error(where, setting, value)
        return value
    if not isinstance(value, list) or not all(isinstance(v, str) and "\x00" not in v for v in value):
        raise _type_error(where, setting, value)
    return [v for v in value if v.strip()]


def _read_raw(path: Path) -> dict:
    try:
        with open(path, "rb") as f:
            raw = f.read(MAX_SETTINGS_BYTES + 1)
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise SettingsError(f"The settings file {path} cannot be read ({exc.strerror}).") from None
    if len(raw) > MAX_SETTINGS_BYTES:
        raise SettingsError(f"The settings file {path} is larger than 1 MiB; it is not a settings file.")
    if not raw.strip():
        return {}  # an empty file is empty settings
    try:
        data = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise SettingsError(f"The settings file {path} is not UTF-8 text; save it as UTF-8.") from None
    except json.JSONDecodeError as exc:
        raise SettingsError(
            f"The settings file {path} is not valid JSON ({exc.msg} at line {exc.lineno}); fix or delete it."
        ) from None
    except (ValueError, RecursionError):
        raise SettingsError(f"The settings file {path} is not valid JSON; fix or delete it.") from None
    if not isinstance(data, dict):
        raise SettingsError(f'The settings file {path} must hold a JSON object, e.g. {{"roots": ["/data"]}}.')
    return data


def load() -> dict:
    """The settings file as a dict whose known keys are checked; a missing file is empty settings."""
    path = settings_path()
    data = _read_raw(path)
    for key, setting in BY_KEY.items():
        if key in data:
            data[key] = check_value(setting, data[key], path)
    return data


def get(key: str):
    """One checked value (None when unset)."""
    return load().get(BY_KEY[key].key)


@contextlib.contextmanager
def _locked(target: Path):
    """Hold an exclusive lock on `<settings file>.lock` (shared by every process: ComfyUI's dialog and
    the command line), so each read-merge-write sees the one before it and no key is lost."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(
        target.with_name(target.name + ".lock"), os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o600
    )
    try:
        filelock.lock(fd)
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the lock


def update(changes: dict) -> dict:
    """Write `changes` into the settings file (the settings dialog and `settings --set`); returns the
    new settings.

    Only keys marked ui_writable may be written: `roots` decides what a workflow may touch, so only
    the user edits it by hand. A None or "" value removes the key. The file is read, merged and
    replaced atomically under a lock every process takes, so two writers never lose each other's keys.
    """
    path = settings_path()
    for key, value in changes.items():
        setting = BY_KEY.get(key)
        if setting is None:
            raise SettingsError(f"Unknown setting {key!r}; known: {', '.join(BY_KEY)}.")
        if not setting.ui_writable:
            raise SettingsError(f"`{key}` can only be changed by editing {path} by hand.")
        check_value(setting, value, path)
    target = Path(os.path.realpath(path))  # through a symlinked settings file (dotfiles): the link stays
    with disk.said_if_full(path), _locked(target):  # a full disk: a sentence, the old file kept
        data = _read_raw(path)
        for key, value in changes.items():
            if value is None or value == "":
                data.pop(key, None)
            else:
                data[key] = value
        disk.write_json(target, data, prefix=".settings-", indent=2, ensure_ascii=False)
    return load()
