"""The seam between the one training flow (train.py: plan -> build -> run -> record) and a trainer.

A backend owns what differs between kohya's two trainers: where it is installed, its family table
(recipes), its command and config building (one `Job`), its dataset config and what its outputs are.
Backends are tables and builders: no torch, no trainer import, nothing written or started.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol


@dataclass(frozen=True)
class InstallSpec:
    """What finds and installs a trainer: feeds find(), the settings dialog and the managed install."""

    trainer: str  # "sd-scripts" | "musubi-tuner" (`lora-workbench trainer install --trainer ...`)
    name: str  # for sentences: "kohya sd-scripts", "kohya musubi-tuner"
    repo: str  # "kohya-ss/sd-scripts"
    marker: str  # a file that proves a checkout: "train_network.py", "src/musubi_tuner/wan_train_network.py"
    path_env: str  # "KOHYA_SS_PATH" | "MUSUBI_TUNER_PATH"
    path_setting: str  # "kohya_ss_path" | "musubi_tuner_path"
    python_env: str  # "KOHYA_PYTHON" | "MUSUBI_PYTHON"
    python_setting: str  # "kohya_python" | "musubi_python"
    # The managed install (trainer_env), as data: nothing there asks which trainer it installs.
    ref: str = ""  # the pinned commit: what `trainer install` checks out and the integration tier tests
    source_env: str = ""  # names a mirror or local clone, in the shell's or ComfyUI's environment only
    requirements: str = (
        ""  # the checkout's requirement file; "" = its own package (pip install -e <checkout>)
    )
    left_out: tuple[str, ...] = ()  # requirements dropped from that file (CUDA-only extras)
    package: str = ""  # what the build's check imports: "library", "musubi_tuner"
    check_script: str = (
        ""  # the script the check runs with --help ("" = the marker); one that imports on a CPU
    )
    clip_tokenizers: bool = False  # fill --tokenizer_cache_dir with CLIP tokenizers from ComfyUI's files
    default_path: str = ""  # the checkout looked for when nothing is set or installed ("~/kohya_ss")

    @property
    def default_source(self) -> str:
        return f"https://github.com/{self.repo}.git"

    def source(self) -> str:
        """Where the pinned commit is cloned from: the mirror named by `source_env`, else GitHub."""
        return (os.environ.get(self.source_env, "").strip() if self.source_env else "") or self.default_source


@dataclass
class Install:
    """A found checkout: `root` as given, `scripts_dir` the folder commands run in, its python."""

    root: Path
    scripts_dir: Path
    python: Path


class Backend(Protocol):
    id: str  # "sd-scripts" | "musubi-tuner"
    install_spec: InstallSpec

    def recipes(self) -> Mapping[str, Any]:  # family id -> TrainingFamily (training/families.py)
        ...

    def find(self, root: Path | None = None) -> Install:  # checkout + python, or ValidationError
        ...

    def build(self, opts: Any, target: Any, warnings: list[str] | None = None) -> Any:  # -> job.Job
        ...
