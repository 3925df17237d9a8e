"""The training-project layout (the seed's sd-train-init): the folders a dataset and its runs live in."""

from __future__ import annotations

import os
from pathlib import Path

# images-unorganized/ and regularization-unorganized/ are the user's inbox; images/ and regularization/
# hold the `N_Subject` subsets kohya trains on; logs/ and output/ receive the runs.
PROJECT_FOLDERS = (
    "images-unorganized",
    "regularization-unorganized",
    "images",
    "regularization",
    "logs",
    "output",
)


def init_project(project_dir: str | os.PathLike) -> list[Path]:
    """Create the project folders that are missing; returns the ones created (idempotent)."""
    root = Path(project_dir).expanduser()
    created: list[Path] = []
    if not root.is_dir():
        root.mkdir(parents=True, exist_ok=True)
    for name in PROJECT_FOLDERS:
        p = root / name
        if not p.is_dir():
            p.mkdir(exist_ok=True)
            created.append(p)
    return created


def is_project(project_dir: str | os.PathLike) -> bool:
    """True when the folder has at least an images/ subfolder."""
    return (Path(project_dir) / "images").is_dir()
