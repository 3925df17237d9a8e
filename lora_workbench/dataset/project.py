"""The training-project layout (the seed's sd-train-init): the folders a dataset and its runs live in."""

from __future__ import annotations

import os
from pathlib import Path

from .confined import Guard

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


def init_project(project_dir: str | os.PathLike, guard: Guard | None = None) -> list[Path]:
    """Create the project folders that are missing; returns the ones created (idempotent).

    Through a confining `guard` every folder is made relative to its parent's descriptor, so a
    workflow's project cannot make the pack create folders outside the allowed roots.
    """
    created: list[Path] = []
    with (guard or Guard()).open_dir(project_dir, "project folder", create=True) as root:
        for name in PROJECT_FOLDERS:
            if not root.exists(name):
                root.mkdir_open(name).close()
                created.append(root.path / name)
    return created


def is_new(project_dir: str | os.PathLike, guard: Guard | None = None) -> bool:
    """True for a missing or empty folder: only those get the layout (never an unrelated folder)."""
    if not Path(project_dir).exists():
        return True
    with (guard or Guard()).open_dir(project_dir, "project folder") as root:
        return not root.entries()


def is_project(project_dir: str | os.PathLike) -> bool:
    """True when the folder has at least an images/ subfolder."""
    return (Path(project_dir) / "images").is_dir()
