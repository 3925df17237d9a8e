"""Per-OS places, decided at call time so tests can switch the platform: the pack's data folder and
the interpreter inside a venv (`bin/python`, or `Scripts\\python.exe` on Windows)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

HOME_ENV = "LORA_WORKBENCH_HOME"


def os_kind() -> str:
    """ "windows", "macos" or "linux" (every other POSIX system is treated as Linux)."""
    if os.name == "nt" or sys.platform == "win32":
        return "windows"
    if sys.platform == "darwin":
        return "macos"
    return "linux"


def default_data_home() -> Path:
    """$XDG_DATA_HOME (or ~/.local/share), ~/Library/Application Support or %LOCALAPPDATA%, + lora-workbench."""
    kind = os_kind()
    if kind == "windows":
        base = os.environ.get("LOCALAPPDATA") or str(Path.home() / "AppData" / "Local")
    elif kind == "macos":
        base = str(Path.home() / "Library" / "Application Support")
    else:
        base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "lora-workbench"


def data_home() -> Path:
    """$LORA_WORKBENCH_HOME, else settings `home`, else the platform's default (never from the browser)."""
    from .. import settings

    if os.environ.get(HOME_ENV):
        return Path(os.environ[HOME_ENV]).expanduser()
    value = settings.get("home")
    return Path(value).expanduser() if value else default_data_home()


def venv_python(venv: Path) -> Path:
    if os_kind() == "windows":
        return venv / "Scripts" / "python.exe"
    return venv / "bin" / "python"
