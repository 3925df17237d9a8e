"""Finding kohya musubi-tuner: the checkout (MUSUBI_TUNER_PATH) and its own Python (MUSUBI_PYTHON, else
the checkout's venv): its pins differ from sd-scripts', so it never shares sd-scripts' environment."""

from __future__ import annotations

import os
from pathlib import Path

from ....errors import ValidationError
from ..base import Install, InstallSpec

INSTALL_SPEC = InstallSpec(
    trainer="musubi-tuner",
    name="kohya musubi-tuner",
    repo="kohya-ss/musubi-tuner",
    marker="src/musubi_tuner/wan_train_network.py",
    path_env="MUSUBI_TUNER_PATH",
    path_setting="musubi_tuner_path",
    python_env="MUSUBI_PYTHON",
    python_setting="musubi_python",
)


def find_musubi(root: Path | None = None) -> Install:
    """The checkout and its python, or a sentence saying what to set (settings keys land with the
    managed install; the environment variables work today)."""
    given = root or os.environ.get(INSTALL_SPEC.path_env)
    if not given:
        raise ValidationError(
            f"No kohya musubi-tuner found: set {INSTALL_SPEC.path_env} to a musubi-tuner checkout, or "
            f"install it with `lora-workbench trainer install --trainer musubi-tuner`."
        )
    root = Path(given).expanduser()
    if not (root / INSTALL_SPEC.marker).is_file():
        raise ValidationError(
            f"{INSTALL_SPEC.path_env}={root} has no {INSTALL_SPEC.marker}; point it at a kohya-ss/musubi-tuner checkout."
        )
    explicit = os.environ.get(INSTALL_SPEC.python_env)
    candidates = (
        [Path(explicit).expanduser()] if explicit else [root / "venv/bin/python", root / ".venv/bin/python"]
    )
    for python in candidates:
        if python.is_file():
            return Install(root, root, python)
    raise ValidationError(
        f"No Python for musubi-tuner: {root} has no venv/ or .venv/; set {INSTALL_SPEC.python_env} to the "
        f"python of musubi-tuner's own environment."
    )
