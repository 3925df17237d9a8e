"""What the managed trainer installs unless told otherwise: the commit the integration tier is checked
against (scripts/integration-env.sh reads it from here), and the torch taken when ComfyUI's cannot be
read."""

from __future__ import annotations

import os

TRAINER = "sd-scripts"
SOURCE = "https://github.com/kohya-ss/sd-scripts.git"
REF = "48d368fa557731ad0488c07304dfeba8c07910eb"  # sd-scripts main, Feb 2026
FALLBACK_TORCH = ("torch==2.14.1", "torchvision==0.29.1")
# Left out of sd-scripts' requirements: 8-bit CUDA optimizers only; a user who wants AdamW8bit
# installs it into the trainer's venv (`trainer status` names the interpreter).
LEFT_OUT = ("bitsandbytes",)


# A mirror or local clone of the same repository for machines that cannot reach GitHub (offline,
# a company mirror). Only the environment ComfyUI or the CLI was started in sets it, never a request;
# the commit stays REF either way.
SOURCE_ENV = "LORA_WORKBENCH_TRAINER_SOURCE"


def source() -> str:
    """Where the pinned commit is cloned from: $LORA_WORKBENCH_TRAINER_SOURCE, else SOURCE."""
    return os.environ.get(SOURCE_ENV, "").strip() or SOURCE


def as_dict() -> dict:
    return {
        "trainer": TRAINER,
        "source": source(),
        "ref": REF,
        "fallback_torch": " ".join(FALLBACK_TORCH),
        "left_out": list(LEFT_OUT),
    }
