"""What a managed trainer installs unless told otherwise. Each trainer's facts are its backend's
InstallSpec (training/backends: repo, pinned commit, marker file, requirement file, the package the
check imports, the mirror variable); this module only looks them up by trainer id and adds the torch
taken when ComfyUI's cannot be read. scripts/integration-env.sh reads the pins through `trainer pins`.
"""

from __future__ import annotations

from ..errors import ValidationError

TRAINER = "sd-scripts"  # the trainer `lora-workbench trainer ...` and the dialog's first row mean by default
FALLBACK_TORCH = ("torch==2.14.1", "torchvision==0.29.1")

# The sd-scripts pins under their first names (the browser test and older scripts read them).
_SD_SCRIPTS_ALIASES = {
    "REF": "ref",
    "SOURCE": "default_source",
    "SOURCE_ENV": "source_env",
    "LEFT_OUT": "left_out",
}


def specs() -> tuple:
    """Every trainer's InstallSpec, in the backends' order (sd-scripts first)."""
    from ..training.backends import backends

    return tuple(b.install_spec for b in backends())


def ids() -> tuple[str, ...]:
    return tuple(s.trainer for s in specs())


def spec(trainer: str = TRAINER):
    """The InstallSpec of a trainer id; a sentence naming the known ids for any other value."""
    for s in specs():
        if s.trainer == trainer:
            return s
    raise ValidationError(f"{trainer!r} is not a trainer the pack installs; one of {', '.join(ids())}.")


def source(trainer: str = TRAINER) -> str:
    """Where the pinned commit is cloned from: the trainer's mirror variable (only the environment
    ComfyUI or the CLI was started in sets it, never a request), else its GitHub repository. The
    commit stays the pinned one either way."""
    return spec(trainer).source()


def as_dict(trainer: str = TRAINER) -> dict:
    s = spec(trainer)
    return {
        "trainer": s.trainer,
        "name": s.name,
        "source": s.source(),
        "source_env": s.source_env,
        "ref": s.ref,
        "fallback_torch": " ".join(FALLBACK_TORCH),
        "left_out": list(s.left_out),
    }


def __getattr__(name: str):
    if name in _SD_SCRIPTS_ALIASES:
        return getattr(spec(TRAINER), _SD_SCRIPTS_ALIASES[name])
    raise AttributeError(name)
