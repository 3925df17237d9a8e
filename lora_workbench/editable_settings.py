"""The settings a person may change from ComfyUI's settings dialog (and `lora-workbench settings --set`):
how each is shown and checked before `settings.update()` writes it into the file the CLI reads too.
Which keys exist, their environment variables and which of them may be written at all are declared
once in settings.py; this module adds what the dialog needs (label, help, heading, the check).

The allowed roots are deliberately not editable here: they are the fence around everything a
workflow or a browser may touch, so a request from the browser must never be able to move it.
For the same reason the folders that would widen the fence (the library and ComfyUI's folder, both
roots themselves) or that the pack writes links into (A1111, Forge) must already lie inside the
roots when they arrive through the browser; the two that are roots are stored resolved, and from the
browser may not hold `..` or pass through a link inside the roots (a shared project could re-point
it). The paths that decide what code runs (each trainer's folder and its Python: sd-scripts and
musubi-tuner; the kohya_ss GUI) are
shown to the dialog but set only from a shell (`lora-workbench settings --set`, `confine=False`):
nothing the browser sends is ever stored there or executed.
"""

from __future__ import annotations

import os
import re
import subprocess
import threading
from dataclasses import dataclass
from pathlib import Path

from . import paths, settings
from .errors import PathNotAllowed, ValidationError

PYTHON_CHECK_TIMEOUT_S = 120
# One interpreter probe at a time, remembered per (real path, mtime, size): twelve checks at once
# start one torch import, not twelve (each costs about 500 MB).
_probe_lock = threading.Lock()
_probes: dict[tuple[str, int, int], tuple[str, list[str]]] = {}
# An interpreter's file name: python, python3, python3.11, python.exe, pythonw.exe.
_PYTHON_NAME = re.compile(r"^pythonw?(\d+(\.\d+)?)?(\.exe)?$", re.IGNORECASE)


@dataclass(frozen=True)
class EditableSetting:
    """How the dialog shows and checks one key of the settings file (settings.SETTINGS declares it)."""

    key: str  # the settings.json key
    label: str
    kind: str  # folder | sd-scripts | musubi-tuner | python | kohya-gui
    help: str
    confined: bool = False  # must lie inside the allowed roots when it comes from the browser
    group: str = "Model library and UIs"  # the heading it is shown under in the dialog


EDITABLE: tuple[EditableSetting, ...] = (
    EditableSetting(
        "library",
        "Model library folder",
        "folder",
        "The one folder that holds your models; Link Model Library links it into every UI. "
        "It is also an allowed root, so it must already lie inside one.",
        confined=True,
    ),
    EditableSetting(
        "kohya_ss_path",
        "kohya_ss or sd-scripts folder",
        "sd-scripts",
        "A kohya_ss GUI checkout or a bare sd-scripts checkout (the folder with train_network.py, "
        "or with sd-scripts/train_network.py).",
        group="Training (sd-scripts)",
    ),
    EditableSetting(
        "kohya_python",
        "Python of the sd-scripts environment",
        "python",
        "The interpreter that runs sd-scripts; empty = the venv/ inside the kohya_ss folder. "
        "It must be able to import torch.",
        group="Training (sd-scripts)",
    ),
    EditableSetting(
        "kohya_ss_gui_path",
        "kohya_ss GUI folder (for its presets)",
        "kohya-gui",
        "A kohya_ss GUI checkout whose presets/lora the Kohya GUI Config Options node lists; empty = "
        "the kohya_ss folder above when it is the GUI.",
        group="Training (sd-scripts)",
    ),
    EditableSetting(
        "tokenizer_cache_dir",
        "Tokenizer cache folder",
        "folder",
        "sd-scripts' --tokenizer_cache_dir: tokenizers saved there let training start offline. "
        "sd-scripts writes into it, so from the browser it must lie inside an allowed root.",
        confined=True,  # the training node's input refuses the same value outside the roots
        group="Training (sd-scripts)",
    ),
    EditableSetting(
        "wd14_tagger_dir",
        "WD14 tagger models folder",
        "folder",
        "Where Caption Dataset (WD14) finds (and, when allowed, downloads) the tagger: one folder per "
        "model, e.g. SmilingWolf_wd-v1-4-convnext-tagger-v2/ with model.onnx and selected_tags.csv; "
        "empty = ComfyUI's models/wd14_tagger. Must lie inside an allowed root.",
        confined=True,
        group="Training (sd-scripts)",
    ),
    EditableSetting(
        "musubi_tuner_path",
        "musubi-tuner folder",
        "musubi-tuner",
        "A kohya-ss/musubi-tuner checkout (the folder with src/musubi_tuner/); empty = the one the pack "
        "installs (lora-workbench trainer install --trainer musubi-tuner). Trains Qwen-Image, Wan 2.x, "
        "Z-Image, FLUX.2, FLUX.1 Kontext, HunyuanVideo 1.5 and FramePack.",
        group="Training (musubi-tuner)",
    ),
    EditableSetting(
        "musubi_python",
        "Python of the musubi-tuner environment",
        "python",
        "The interpreter that runs musubi-tuner, in its own environment (its pins differ from "
        "sd-scripts'); empty = the venv/ inside the musubi-tuner folder. It must be able to import torch.",
        group="Training (musubi-tuner)",
    ),
    EditableSetting(
        "comfyui_path",
        "ComfyUI folder (for the command line)",
        "folder",
        "The command line links the library into this ComfyUI; inside ComfyUI its own folder is used.",
        confined=True,
    ),
    EditableSetting(
        "a1111_path",
        "A1111 (stable-diffusion-webui) folder",
        "folder",
        "Where the library and trained LoRAs are linked for A1111. Must lie inside an allowed root.",
        confined=True,
    ),
    EditableSetting(
        "forge_path",
        "Forge (stable-diffusion-webui-forge) folder",
        "folder",
        "Where the library and trained LoRAs are linked for Forge. Must lie inside an allowed root.",
        confined=True,
    ),
)
BY_KEY = {s.key: s for s in EDITABLE}


def env_of(key: str) -> str:
    """The environment variable that wins over a key (declared in settings.py)."""
    return settings.BY_KEY[key].env or ""


def shell_command(key: str) -> str:
    """The command that sets a key from a shell (the only way for the paths that decide what runs)."""
    return f"lora-workbench settings --set {key}=/path/to/it"


def _shell_only(key: str) -> str:
    return (
        f"{key} decides what code runs, so it is never set from the browser; set it from a shell: "
        f"`{shell_command(key)}` (or {env_of(key)} in ComfyUI's environment)."
    )


@dataclass
class Check:
    """The verdict on one value: an error blocks the save, notes are shown beside it."""

    key: str
    value: str
    error: str = ""
    notes: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return not self.error

    def to_dict(self) -> dict:
        return {
            "key": self.key,
            "value": self.value,
            "ok": self.ok,
            "error": self.error,
            "notes": list(self.notes),
        }


# --------------------------------------------------------------------------- reading
def describe() -> list[dict]:
    """Each editable setting with its saved value, the environment override and what is in effect."""
    saved = paths.load_settings()
    out = []
    for s in EDITABLE:
        value = saved.get(s.key)
        env = os.environ.get(env_of(s.key), "")
        out.append(
            {
                "key": s.key,
                "label": s.label,
                "kind": s.kind,
                "help": s.help,
                "env": env_of(s.key),
                "env_value": env,
                "value": value if isinstance(value, str) else "",
                "effective": env or (value if isinstance(value, str) else ""),
                "confined": s.confined,
                "group": s.group,
                "shell_only": settings.BY_KEY[s.key].executable,  # the dialog shows it read-only
                "command": shell_command(s.key),
            }
        )
    return out


# --------------------------------------------------------------------------- checking
def check(key: str, value: object, *, confine: bool) -> Check:
    """Check one value as the dialog would save it; `confine` for values that came from the browser.
    The value in the answer is what will be stored (resolved for a folder that is a root)."""
    setting = _setting(key)
    if not isinstance(value, str):
        raise ValidationError(f"The value of {key} must be text (a path), not {type(value).__name__}.")
    text = value.strip()
    if confine and settings.BY_KEY[key].executable:
        return Check(key, text, error=_shell_only(key))  # not even removed: the default runs code too
    if not text:
        return Check(key, "", notes=(f"not set: {env_of(key)} or the built-in default applies",))
    if "\x00" in text or "\n" in text:
        return Check(key, text, error=f"The {setting.label.lower()} contains a control character.")
    what = setting.label.lower()
    try:
        paths.check_path_text(text, what)
        path = paths.expand_user(text, what)
    except ValidationError as exc:
        return Check(key, text, error=str(exc))
    if not path.is_absolute():
        return Check(key, text, error=f"Give the {what} as an absolute path, not {text!r}.")
    error = _fence_error(setting, path, confine)
    if error:
        return Check(key, text, error=error)
    if settings.BY_KEY[key].defines_roots:
        path = Path(os.path.realpath(path))  # checked again at use: it must still resolve to itself
        if confine and setting.confined and not paths.is_within_roots(path, paths.allowed_roots()):
            # a folder on its way swapped for a link since the check above: what is stored is checked
            return Check(key, text, error=f"The {what} {text} changed while it was checked; save it again.")
    try:
        error, notes = _CHECKERS[setting.kind](path)
    except OSError as exc:  # a folder it may not read, a name the OS refuses
        error, notes = f"The {what} {path} cannot be read ({exc.strerror}).", []
    if not error and key == "tokenizer_cache_dir":
        notes += _tokenizer_notes(path)
    return Check(key, str(path), error=error, notes=tuple(notes))


def _fence_error(setting: EditableSetting, path: Path, confine: bool) -> str:
    """From the browser: a confined value must lie inside the roots, and one that is a root itself may
    hold no `..` and pass through no link that lies inside the roots (it could be re-pointed)."""
    if not confine or not setting.confined:
        return ""
    what = setting.label.lower()
    try:
        paths.confine(path, what=what)
    except (PathNotAllowed, ValidationError) as exc:
        return str(exc) + " The browser cannot widen the roots (see the README)."
    if not settings.BY_KEY[setting.key].defines_roots:
        return ""
    if ".." in path.parts:
        return f"The {what} {path} holds '..'; give the folder itself."
    link = _link_inside_roots(path)
    if link is not None:
        return (
            f"The {what} {path} passes through the link {link}, which lies inside an allowed root where a "
            f"shared project could re-point it; give the folder it leads to, {os.path.realpath(path)}."
        )
    return ""


def _link_inside_roots(path: Path) -> Path | None:
    """The first symlink on the way to `path` whose own place lies inside an allowed root, if any."""
    roots = paths.allowed_roots()
    for part in [*reversed(path.parents[:-1]), path]:
        if part.is_symlink() and paths.is_within_roots(os.path.realpath(part.parent), roots):
            return part
    return None


def _setting(key: str) -> EditableSetting:
    declared = settings.BY_KEY.get(key)
    if key not in BY_KEY or declared is None or not declared.ui_writable:
        allowed = ", ".join(BY_KEY)
        raise ValidationError(
            f"{key!r} cannot be set here (allowed: {allowed}). The allowed roots are set only in "
            f"{paths.ROOTS_ENV} or by editing `roots` in {paths.settings_path()}."
        )
    return BY_KEY[key]


def _check_folder(path: Path) -> tuple[str, list[str]]:
    if not path.exists():
        return f"The folder {path} does not exist; create it or pick another one.", []
    if not path.is_dir():
        return f"{path} is a file, not a folder.", []
    return "", []


def _check_sd_scripts(path: Path) -> tuple[str, list[str]]:
    error, notes = _check_folder(path)
    if error:
        return error, notes
    scripts = next((c for c in (path, path / "sd-scripts") if (c / "train_network.py").is_file()), None)
    if scripts is None:
        return (
            f"{path} has neither train_network.py nor sd-scripts/train_network.py: pick a kohya_ss or "
            f"sd-scripts checkout.",
            [],
        )
    venvs = [c / v / b for c in (path, scripts) for v in ("venv", ".venv") for b in ("bin", "Scripts")]
    if not any(v.is_dir() for v in venvs):
        notes.append("no venv/ inside: also set the Python of the sd-scripts environment")
    return "", [f"sd-scripts found in {scripts}", *notes]


def _check_musubi_tuner(path: Path) -> tuple[str, list[str]]:
    error, notes = _check_folder(path)
    if error:
        return error, notes
    marker = paths.trainer_spec(paths.MUSUBI_TUNER).marker
    if not (path / marker).is_file():
        return f"{path} has no {marker}: pick a kohya-ss/musubi-tuner checkout.", []
    venvs = [path / v / b for v in ("venv", ".venv") for b in ("bin", "Scripts")]
    if not any(v.is_dir() for v in venvs):
        notes.append("no venv/ inside: also set the Python of the musubi-tuner environment")
    return "", [f"musubi-tuner found in {path}", *notes]


def _check_kohya_gui(path: Path) -> tuple[str, list[str]]:
    error, notes = _check_folder(path)
    if error:
        return error, notes
    presets = path / "presets" / "lora"
    if not presets.is_dir():
        return f"{path} has no presets/lora folder: pick a kohya_ss GUI checkout (bmaltais/kohya_ss).", []
    count = sum(1 for f in presets.glob("*.json") if f.is_file())
    return "", [f"{count} LoRA presets in presets/lora"]


def _check_python(path: Path) -> tuple[str, list[str]]:
    """Run the interpreter once to see it import torch: only ever for a value set from a shell."""
    if not path.is_file():
        return f"The interpreter {path} does not exist.", []
    if not _PYTHON_NAME.match(path.name):
        return (
            f"{path.name} is not a Python interpreter's name (python, python3, python3.11, python.exe).",
            [],
        )
    if not os.access(path, os.X_OK):
        return f"{path} is not executable.", []
    st = path.stat()
    key = (os.path.realpath(path), st.st_mtime_ns, st.st_size)
    with _probe_lock:
        if key not in _probes:
            _probes[key] = _probe_python(path)
        error, notes = _probes[key]
    return error, list(notes)


def _probe_python(path: Path) -> tuple[str, list[str]]:
    code = "import sys, torch; print(torch.__version__, torch.cuda.is_available(), sys.version.split()[0])"
    try:
        proc = subprocess.run(
            [str(path), "-c", code], capture_output=True, text=True, timeout=PYTHON_CHECK_TIMEOUT_S
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"Could not run {path} ({exc}).", []
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        return (
            f"{path} cannot import torch ({last}); install the trainer's requirements in that environment "
            f"or pick its own python.",
            [],
        )
    torch_version, cuda, py_version = (proc.stdout.split() + ["?", "?", "?"])[:3]
    gpu = "a CUDA GPU" if cuda == "True" else "no CUDA GPU (CPU only)"
    return "", [f"Python {py_version}, torch {torch_version}, {gpu}"]


_CHECKERS = {
    "folder": _check_folder,
    "sd-scripts": _check_sd_scripts,
    "musubi-tuner": _check_musubi_tuner,
    "python": _check_python,
    "kohya-gui": _check_kohya_gui,
}


def _tokenizer_notes(path: Path) -> list[str]:
    if (path / "openai_clip-vit-large-patch14").is_dir():
        return ["holds the SD 1.x tokenizer"]
    return ["no openai_clip-vit-large-patch14 inside yet: sd-scripts saves it there on the first online run"]


# --------------------------------------------------------------------------- writing
def save(updates: dict, *, confine: bool) -> list[Check]:
    """Check every value and, when all pass, write them into the settings file in one atomic step.

    An empty value removes the key. Keys that are not editable (the roots above all) are refused
    before anything is checked; other keys already in the file are kept as they are. With `confine`
    (the browser) the paths that decide what code runs are refused and nothing is executed.
    """
    if not isinstance(updates, dict) or not updates:
        raise ValidationError("Send at least one setting as {key: value}.")
    for key in updates:
        _setting(key)
    checks = [check(k, v, confine=confine) for k, v in updates.items()]
    if all(c.ok for c in checks):
        settings.update({c.key: c.value for c in checks})  # locked against every other writer
    return checks
