"""Finding kohya musubi-tuner: the checkout (MUSUBI_TUNER_PATH / musubi_tuner_path, else the one
`lora-workbench trainer install --trainer musubi-tuner` made) and its own Python (MUSUBI_PYTHON /
musubi_python, the managed install's, else the checkout's venv): its pins differ from sd-scripts', so it
never shares sd-scripts' environment. Each miss is a sentence naming what to set or run.
"""

from __future__ import annotations

import os
from pathlib import Path

from .... import paths
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
    ref="30c658c4f4b0bf05038b3346eff9670259b10fc7",  # musubi-tuner main (v0.3.4 and later)
    source_env="LORA_WORKBENCH_MUSUBI_SOURCE",
    requirements="",  # pip install -e <checkout>: its pyproject.toml holds its pins
    package="musubi_tuner",
    # Wan's scripts cannot even print --help without a CUDA device (wan/modules/t5.py calls
    # torch.cuda.current_device() at import), so the build's check runs Qwen-Image's.
    check_script="src/musubi_tuner/qwen_image_train_network.py",
)
INSTALL_HINT = (
    "Install it with Settings -> LoRA Workbench -> Training (musubi-tuner) -> Install in ComfyUI, or "
    "`lora-workbench trainer install --trainer musubi-tuner` in a terminal"
)


def find_musubi(root: Path | None = None) -> Install:
    """The checkout and its python, or a ValidationError sentence naming what to set or run."""
    spec = INSTALL_SPEC
    given = Path(root).expanduser() if root is not None else paths.musubi_tuner_path()
    if given is None:
        raise ValidationError(
            f"No kohya musubi-tuner found. {INSTALL_HINT}; or set {spec.path_env} (or {spec.path_setting} with "
            f"`lora-workbench settings --set {spec.path_setting}=...`) to a musubi-tuner checkout."
        )
    if not given.is_dir():
        raise ValidationError(
            f"{spec.path_env}={given} does not exist. {INSTALL_HINT}; or point {spec.path_env} (or "
            f"{spec.path_setting} in {paths.settings_path()}) at a kohya-ss/musubi-tuner checkout."
        )
    if not (given / spec.marker).is_file():
        raise ValidationError(
            f"{spec.path_env}={given} has no {spec.marker}; point it at a kohya-ss/musubi-tuner checkout."
        )
    return Install(given, given, _python(given))


def _python(root: Path) -> Path:
    """MUSUBI_PYTHON / musubi_python (or the managed install's), else the checkout's venv/ or .venv/."""
    spec = INSTALL_SPEC
    explicit = paths.musubi_python()
    if explicit is not None:
        if explicit.is_file():
            return explicit
        raise ValidationError(
            f"{spec.python_env}={explicit} does not exist; set {spec.python_env} (or {spec.python_setting} in "
            f"{paths.settings_path()}) to the python of musubi-tuner's own environment."
        )
    tried = [root / v / b for v in ("venv", ".venv") for b in _venv_bins()]
    for python in tried:
        if python.is_file():
            return python
    raise ValidationError(
        f"No Python for musubi-tuner: {root} has no {tried[0].relative_to(root)}; create its venv there, or "
        f"set {spec.python_env} (or {spec.python_setting} with `lora-workbench settings --set "
        f"{spec.python_setting}=...`) to the python of musubi-tuner's own environment."
    )


def _venv_bins() -> tuple[str, ...]:
    return ("Scripts/python.exe",) if os.name == "nt" else ("bin/python",)
