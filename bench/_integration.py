"""Where the benchmarks find the real parts: the variables scripts/integration-env.sh prints (source its
`env` file), with the same defaults as tests/integration/conftest.py."""

from __future__ import annotations

import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def integration_home() -> Path:
    """$LORA_WORKBENCH_INTEGRATION_HOME, else the folder holding the KOHYA_SS_PATH checkout when it has
    the script's layout (models/ beside it), else .integration/ in this repository."""
    if os.environ.get("LORA_WORKBENCH_INTEGRATION_HOME"):
        return Path(os.environ["LORA_WORKBENCH_INTEGRATION_HOME"]).expanduser()
    kohya = os.environ.get("KOHYA_SS_PATH")
    if kohya and (Path(kohya).expanduser().parent / "models").is_dir():
        return Path(kohya).expanduser().parent
    return REPO / ".integration"


def first_file(*candidates: str | Path | None) -> Path | None:
    for c in candidates:
        if c and Path(c).is_file():
            return Path(c)
    return None


def kohya_python(kohya: Path) -> Path | None:
    home = integration_home()
    return first_file(
        os.environ.get("KOHYA_PYTHON"),
        kohya / "venv/bin/python",
        kohya / ".venv/bin/python",
        home / "venv-sdscripts/bin/python",
    )


def test_checkpoint() -> Path:
    value = os.environ.get("LORA_WORKBENCH_TEST_CKPT")
    return Path(value) if value else integration_home() / "models/checkpoints/random_sd15.safetensors"


def tokenizer_cache() -> Path:
    value = os.environ.get("LORA_WORKBENCH_TOKENIZER_CACHE")
    return Path(value) if value else integration_home() / "tokenizer_cache"


def smoke_images() -> Path:
    """The small dataset's images/ folder (one subset, 2_testsubject: 4 PNGs with captions)."""
    value = os.environ.get("LORA_WORKBENCH_TEST_DATASET")
    return (Path(value) if value else integration_home() / "datasets/smoke") / "images"
