"""The seam between the one training flow (train.py: plan -> build -> run -> record) and a trainer.

A backend owns what differs between kohya's two trainers: where it is installed, its family table
(recipes), its command and config building (one `Job`), its dataset config and what its outputs are.
Backends are tables and builders: no torch, no trainer import, nothing written or started.
"""

from __future__ import annotations

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
