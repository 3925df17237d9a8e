"""Where each managed trainer lives, and the record of the build in use.

    HOME/trainers/<trainer>/   sd-scripts/, musubi-tuner/ (the InstallSpec's trainer id)
        <build>/            one build per (commit, torch, python): src/ venv/ build/ ready.json
        tokenizers/         sd-scripts: CLIP tokenizers made from ComfyUI's files (--tokenizer_cache_dir)
        current.json        the build in use, replaced atomically once its checks passed
        .lock               held while an install, update or remove runs

A build name is checked before it is joined to a path, so a damaged current.json cannot point the
pack outside its folder. `in_use(trainer)` is what `paths.trainer_checkout()` asks: cheap, and None on
any doubt.
"""

from __future__ import annotations

import json
import os
import re
import stat
from dataclasses import dataclass
from pathlib import Path

from .. import disk
from ..errors import WorkbenchError
from . import pins
from .platform import data_home, venv_python

BUILD_NAME_RE = re.compile(r"^[0-9a-z][0-9a-z.+_-]{0,80}$")
MARKER = ".lora-workbench-build"  # in every folder the pack made, so `remove` deletes only those
MAX_RECORD_BYTES = 1 << 16


@dataclass(frozen=True)
class Layout:
    home: Path
    trainer: str = pins.TRAINER

    def __post_init__(self) -> None:
        if not BUILD_NAME_RE.match(self.trainer):  # an id from the backends, joined to a path
            raise ValueError(f"not a trainer id: {self.trainer!r}")

    @classmethod
    def default(cls, trainer: str = pins.TRAINER) -> Layout:
        return cls(data_home(), trainer)

    @property
    def trainer_dir(self) -> Path:
        return self.home / "trainers" / self.trainer

    @property
    def current(self) -> Path:
        return self.trainer_dir / "current.json"

    @property
    def lock(self) -> Path:
        return self.trainer_dir / ".lock"

    @property
    def tokenizers(self) -> Path:
        return self.trainer_dir / "tokenizers"

    def build(self, name: str) -> BuildDirs:
        if not BUILD_NAME_RE.match(name):
            raise ValueError(f"not a build name: {name!r}")
        return BuildDirs(self.trainer_dir / name)


@dataclass(frozen=True)
class BuildDirs:
    root: Path

    @property
    def name(self) -> str:
        return self.root.name

    @property
    def src(self) -> Path:
        return self.root / "src"

    @property
    def venv(self) -> Path:
        return self.root / "venv"

    @property
    def python(self) -> Path:
        return venv_python(self.venv)

    @property
    def work(self) -> Path:
        return self.root / "build"  # stamps, generated requirement files, logs

    @property
    def ready(self) -> Path:
        return self.root / "ready.json"


@dataclass(frozen=True)
class InUse:
    """The managed trainer as current.json records it."""

    build: BuildDirs
    record: dict
    tokenizers: Path

    @property
    def src(self) -> Path:
        return self.build.src

    @property
    def python(self) -> Path:
        return self.build.python


def read_json_file(path: Path) -> dict:
    """A small JSON object file of ours; ValueError (with the reason) when it is not one."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0))
    with os.fdopen(fd, "rb") as f:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise ValueError("not a regular file")
        raw = f.read(MAX_RECORD_BYTES + 1)
    if len(raw) > MAX_RECORD_BYTES:
        raise ValueError("larger than 64 KiB")
    try:
        data = json.loads(raw.decode("utf-8"))
    except RecursionError:
        raise ValueError("nested too deep") from None
    if not isinstance(data, dict):
        raise ValueError("not a JSON object")
    return data


def write_json_atomic(path: Path, data: dict) -> None:
    """Write through a temp file in the same folder and rename over `path`: a kill leaves old or new."""
    path.parent.mkdir(parents=True, exist_ok=True)
    disk.write_json(path, data, prefix=f".{path.name}.", indent=2, sort_keys=True)


def read_current(layout: Layout) -> InUse | None:
    """The recorded build (None when none is recorded); ValueError naming what is wrong with the record."""
    try:
        record = read_json_file(layout.current)
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise ValueError(f"{layout.current} cannot be read ({exc})") from None
    name = record.get("build")
    if not isinstance(name, str) or not BUILD_NAME_RE.match(name):
        raise ValueError(f"{layout.current} names no valid build ({name!r})")
    return InUse(layout.build(name), record, layout.tokenizers)


def in_use(trainer: str = pins.TRAINER) -> InUse | None:
    """The managed trainer when one is recorded and its files are there; None otherwise (never raises)."""
    try:
        marker = pins.spec(trainer).marker
        found = read_current(Layout.default(trainer))
    except (ValueError, OSError, WorkbenchError):  # a broken settings file or record: not in use
        return None
    if found is None or not (found.src / marker).is_file() or not found.python.is_file():
        return None
    return found
