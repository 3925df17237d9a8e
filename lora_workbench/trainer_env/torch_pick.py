"""Which torch the trainer's venv gets, held by a constraint on every pip call.

`auto` reads the torch ComfyUI itself runs on (from its interpreter's package metadata, without
importing torch) and pins the same version and build, so pip takes the wheels from its cache instead
of downloading gigabytes again. A build tag picks PyTorch's own index: `+cu124` ->
https://download.pytorch.org/whl/cu124, `+cpu` -> .../cpu, `+rocm6.2` -> .../rocm6.2; a plain
version comes from PyPI. macOS has no CUDA builds: the default torch, which uses MPS when there is one.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from ..errors import ValidationError
from . import pins
from .platform import os_kind

TORCH_INDEX = "https://download.pytorch.org/whl/"
PIN_RE = re.compile(r"^(torch|torchvision|torchaudio)==([0-9][0-9A-Za-z.!_-]*)(\+([a-z0-9.]+))?$")
BUILD_RE = re.compile(r"^(cu\d{2,4}|cpu|rocm\d+(\.\d+)*|xpu)$")
PROBE = (
    "import json, importlib.metadata as m\n"
    "out = {}\n"
    "for name in ('torch', 'torchvision'):\n"
    "    try:\n"
    "        out[name] = m.version(name)\n"
    "    except m.PackageNotFoundError:\n"
    "        pass\n"
    "print(json.dumps(out))\n"
)


@dataclass(frozen=True)
class TorchChoice:
    pins: tuple[str, ...]  # e.g. ("torch==2.4.1+cu124", "torchvision==0.19.1+cu124")
    index_url: str | None  # PyTorch's index for a tagged build; None: PyPI
    origin: str  # where the choice came from, for `status` and the report
    note: str = ""

    @property
    def tag(self) -> str:
        """A short name for folder names: "torch2.4.1-cu124"."""
        version = self.pins[0].split("==", 1)[1]
        return "torch" + version.replace("+", "-").lower()

    def to_dict(self) -> dict:
        return {
            "pins": list(self.pins),
            "index_url": self.index_url,
            "origin": self.origin,
            "note": self.note,
        }


def parse_spec(text: str, origin: str = "--torch") -> TorchChoice:
    """An explicit spec: "torch==2.4.1+cu124 torchvision==0.19.1+cu124"; a sentence when it is not one."""
    words = text.split()
    if not words or not words[0].startswith("torch=="):
        raise ValidationError(
            f"--torch {text!r} must be `auto` or pins starting with torch, e.g. "
            '"torch==2.14.1 torchvision==0.29.1" (add +cu124 for a CUDA build).'
        )
    builds = set()
    for word in words:
        m = PIN_RE.match(word)
        if not m:
            raise ValidationError(
                f"--torch: {word!r} is not a pin of torch, torchvision or torchaudio like torch==2.14.1."
            )
        builds.add(m.group(4))
    if len(builds) > 1:
        raise ValidationError(
            f"--torch {text!r} mixes builds ({', '.join(sorted(map(str, builds)))}); use one."
        )
    build = builds.pop()
    if build is not None and not BUILD_RE.match(build):
        raise ValidationError(f"--torch: +{build} is not a PyTorch build (cu124, cpu, rocm6.2, xpu).")
    return TorchChoice(tuple(words), index_for(build), origin, _platform_note(build))


def index_for(build: str | None) -> str | None:
    return None if build is None else TORCH_INDEX + build


def _platform_note(build: str | None) -> str:
    kind = os_kind()
    if kind == "macos":
        return "macOS: no CUDA; the default torch trains on MPS when the Mac has it, else on the CPU."
    if build is None and kind == "windows":
        return "Windows: torch from PyPI is the CPU build; pin a +cuXXX build to train on an NVIDIA GPU."
    return ""


def probe(python: str | Path) -> dict:
    """{"torch": version, "torchvision": version} of an interpreter ({} when it has no torch or fails)."""
    try:
        done = subprocess.run([str(python), "-c", PROBE], capture_output=True, text=True, timeout=60)
        found = json.loads(done.stdout) if done.returncode == 0 else {}
    except (OSError, ValueError, subprocess.TimeoutExpired):
        return {}
    return found if isinstance(found, dict) else {}


def from_versions(found: dict, where: str) -> TorchChoice | None:
    """The pins matching what an interpreter has (None when it has no usable torch)."""
    torch = found.get("torch")
    if not isinstance(torch, str):
        return None
    words = [f"torch=={torch}"]
    vision = found.get("torchvision")
    if isinstance(vision, str):
        words.append(f"torchvision=={vision}")
    try:
        choice = parse_spec(" ".join(words), origin=f"ComfyUI's torch ({where})")
    except ValidationError:
        return None
    if os_kind() == "macos":  # a Mac's torch is the default build whatever its tag says
        choice = TorchChoice(tuple(p.split("+")[0] for p in choice.pins), None, choice.origin, choice.note)
    return choice


def pick(spec: str, comfy_python: str | Path | None = None) -> TorchChoice:
    """`auto`: ComfyUI's torch (its interpreter: comfy_python, else this one), else the pinned fallback."""
    if spec.strip() != "auto":
        return parse_spec(spec)
    python = str(comfy_python or sys.executable)
    choice = from_versions(probe(python), python)
    if choice is not None:
        return choice
    fallback = parse_spec(" ".join(pins.FALLBACK_TORCH), origin="the pack's default")
    note = f"{python} has no torch to match, so the pack's default torch is installed."
    return TorchChoice(
        fallback.pins, fallback.index_url, fallback.origin, " ".join(filter(None, [note, fallback.note]))
    )
