"""Where things are: environment, the settings file, and the roots untrusted paths are confined to.

Paths that arrive through a workflow or an HTTP route are untrusted: `confine()` resolves them
(following symlinks) and refuses anything outside the allowed roots. The CLI is the user's own shell
and does not confine.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path

from .errors import PathNotAllowed, WorkbenchError

SETTINGS_ENV = "LORA_WORKBENCH_SETTINGS"
ROOTS_ENV = "LORA_WORKBENCH_ROOTS"

# Roots added at run time by the ComfyUI adapter (ComfyUI's own model/input/output folders).
_registered_roots: list[Path] = []


def settings_path() -> Path:
    """The settings file: $LORA_WORKBENCH_SETTINGS, else $XDG_CONFIG_HOME/lora-workbench/settings.json."""
    if os.environ.get(SETTINGS_ENV):
        return Path(os.environ[SETTINGS_ENV]).expanduser()
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "lora-workbench" / "settings.json"


def load_settings() -> dict:
    """Read the settings file; a missing file is empty settings, a broken one is a clear error.

    Keys (all optional): roots (list of folders workflows may touch), library, comfyui_path,
    a1111_path, forge_path, kohya_ss_path, kohya_python.
    """
    path = settings_path()
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise WorkbenchError(
            f"The settings file {path} is not valid JSON ({exc.msg} at line {exc.lineno}); fix or delete it."
        ) from None
    if not isinstance(data, dict):
        raise WorkbenchError(
            f'The settings file {path} must hold a JSON object, e.g. {{"roots": ["/data"]}}.'
        )
    return data


def _setting_or_env(env: str, key: str, default: Path | None = None) -> Path | None:
    if os.environ.get(env):
        return Path(os.environ[env]).expanduser()
    value = load_settings().get(key)
    if value:
        return Path(value).expanduser()
    return default


def library_path() -> Path | None:
    """The model library: $SD_MODELS_PATH or settings `library`."""
    return _setting_or_env("SD_MODELS_PATH", "library")


def comfyui_path() -> Path | None:
    """ComfyUI's folder: $COMFYUI_PATH or settings `comfyui_path` (None when unset)."""
    return _setting_or_env("COMFYUI_PATH", "comfyui_path")


def a1111_path() -> Path:
    """A1111's folder: $A1111_PATH, settings, or the seed's default $HOME/stable-diffusion-webui."""
    return _setting_or_env("A1111_PATH", "a1111_path", Path.home() / "stable-diffusion-webui")


def forge_path() -> Path:
    """Forge's folder: $FORGE_PATH, settings, or the seed's default $HOME/stable-diffusion-webui-forge."""
    return _setting_or_env("FORGE_PATH", "forge_path", Path.home() / "stable-diffusion-webui-forge")


def kohya_ss_path() -> Path:
    """A kohya_ss or sd-scripts checkout: $KOHYA_SS_PATH, settings, or the seed's default $HOME/kohya_ss."""
    return _setting_or_env("KOHYA_SS_PATH", "kohya_ss_path", Path.home() / "kohya_ss")


def kohya_python() -> Path | None:
    """An explicit interpreter for sd-scripts: $KOHYA_PYTHON or settings `kohya_python` (None: find one)."""
    return _setting_or_env("KOHYA_PYTHON", "kohya_python")


def register_root(path: str | os.PathLike) -> None:
    """Allow a folder for untrusted paths (the ComfyUI adapter registers ComfyUI's own folders)."""
    p = Path(path)
    if p not in _registered_roots:
        _registered_roots.append(p)


def allowed_roots(extra: Iterable[str | os.PathLike] = ()) -> list[Path]:
    """Every root an untrusted path may resolve into, resolved, without duplicates.

    $LORA_WORKBENCH_ROOTS (os.pathsep-separated), settings `roots`, the library, ComfyUI's folder and
    the folders the ComfyUI adapter registered.
    """
    candidates: list[Path] = []
    env = os.environ.get(ROOTS_ENV, "")
    candidates += [Path(p).expanduser() for p in env.split(os.pathsep) if p.strip()]
    candidates += [Path(p).expanduser() for p in load_settings().get("roots", []) if p]
    for p in (library_path(), comfyui_path()):
        if p is not None:
            candidates.append(p)
    candidates += _registered_roots
    candidates += [Path(p) for p in extra]
    out: list[Path] = []
    for c in candidates:
        r = Path(os.path.realpath(c))
        if r not in out:
            out.append(r)
    return out


def _is_within(path: Path, root: Path) -> bool:
    try:
        path.relative_to(root)
        return True
    except ValueError:
        return False


def confine(
    value: str | os.PathLike,
    *,
    what: str = "path",
    must_exist: bool = False,
    extra_roots: Iterable[str | os.PathLike] = (),
) -> Path:
    """Resolve an untrusted path and return it only if it lies inside an allowed root.

    Relative paths are taken relative to the first allowed root. Symlinks are resolved before the
    check, so a link that escapes a root is refused like `..` is.
    """
    text = str(value).strip()
    if not text:
        raise PathNotAllowed(f"The {what} is empty; give a folder inside one of the allowed roots.")
    if "\x00" in text:
        raise PathNotAllowed(f"The {what} contains a NUL character.")
    roots = allowed_roots(extra_roots)
    if not roots:
        raise PathNotAllowed(
            f"No allowed roots are configured, so the {what} {text!r} cannot be used from a workflow. "
            f"Set {ROOTS_ENV} (folders separated by '{os.pathsep}') or `roots` in {settings_path()}."
        )
    p = Path(text).expanduser()
    if not p.is_absolute():
        p = roots[0] / p
    resolved = Path(os.path.realpath(p))
    if not any(_is_within(resolved, r) for r in roots):
        shown = ", ".join(str(r) for r in roots)
        raise PathNotAllowed(
            f"The {what} {text!r} resolves to {resolved}, outside the allowed roots ({shown}). "
            f"Add its folder to {ROOTS_ENV} or to `roots` in {settings_path()}."
        )
    if must_exist and not resolved.exists():
        raise PathNotAllowed(f"The {what} {resolved} does not exist.")
    return resolved
