"""The steps of an install, computed from the request alone (nothing here touches the disk).

A step is redone when its stamp is missing or records other inputs. Each step's inputs include the
step before it, so a changed commit re-runs everything after the clone, and a changed torch
everything after the venv. The build's folder name carries the commit, the torch and a digest of
the interpreter, so an update is always built beside the trainer in use, never over it.

What differs between trainers is the InstallSpec's data, never a branch on the trainer's name: the
requirement file (sd-scripts' requirements.txt, rewritten) or the checkout's own package (musubi-tuner:
`pip install -e <checkout>` with its pyproject pins), and whether CLIP tokenizers are filled.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from . import pins
from .layout import BuildDirs, Layout
from .torch_pick import TorchChoice

STEPS = (
    ("clone", "clone {trainer}"),
    ("venv", "make the venv"),
    ("pip", "install the requirements"),
    ("tokenizers", "fill the tokenizers"),
    ("check", "check the build"),
    ("switch", "make it the trainer in use"),
)
_REQ_NAME_RE = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)")


@dataclass(frozen=True)
class InstallRequest:
    """What to install. The settings dialog's button builds it from `pinned()` only: no part of an
    HTTP request picks the source, the commit, the torch or a path (its trainer is one of the known ids).
    An empty source or ref is the trainer's own: its mirror variable or GitHub, its pinned commit."""

    torch: TorchChoice
    python: str  # the interpreter the venv is made from
    source: str = ""
    ref: str = ""
    comfyui: Path | None = None  # ComfyUI's folder, for its tokenizer files
    trainer: str = pins.TRAINER

    def __post_init__(self) -> None:
        spec = pins.spec(self.trainer)  # a sentence for an unknown trainer, before anything is made
        object.__setattr__(self, "source", self.source or spec.source())
        object.__setattr__(self, "ref", self.ref or spec.ref)

    @property
    def spec(self):
        return pins.spec(self.trainer)

    @classmethod
    def pinned(
        cls, torch: TorchChoice, python: str, comfyui: Path | None = None, trainer: str = pins.TRAINER
    ) -> InstallRequest:
        return cls(torch=torch, python=python, comfyui=comfyui, trainer=trainer)


@dataclass(frozen=True)
class Step:
    name: str
    title: str
    inputs: str  # digest of everything the step's result depends on


@dataclass(frozen=True)
class InstallPlan:
    request: InstallRequest
    layout: Layout
    build: BuildDirs
    steps: tuple[Step, ...] = field(default=())

    def step(self, name: str) -> Step:
        return next(s for s in self.steps if s.name == name)

    @property
    def constraints(self) -> Path:
        return self.build.work / "constraints.txt"

    @property
    def requirements(self) -> Path:
        return self.build.work / "requirements.txt"


def digest(*parts: object) -> str:
    text = json.dumps(parts, sort_keys=True, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def build_name(request: InstallRequest) -> str:
    ref = request.ref.lower() if re.fullmatch(r"[0-9a-fA-F]{7,40}", request.ref) else digest(request.ref)
    return f"{ref[:12]}-{request.torch.tag}-{digest(request.python, request.torch.index_url)[:6]}"


def plan_install(request: InstallRequest, layout: Layout, tokenizer_inputs: str = "") -> InstallPlan:
    """The plan; `tokenizer_inputs` says which tokenizer files ComfyUI offers (install.py reads them)."""
    build = layout.build(build_name(request))
    torch, spec = request.torch, request.spec
    inputs = {
        "clone": digest(request.ref),
        "venv": digest(request.python),
        "pip": digest(constraints_text(torch), torch.index_url, spec.requirements, spec.left_out),
        "tokenizers": digest(tokenizer_inputs),
        "check": "",
        "switch": "",
    }
    steps, before = [], ""
    for name, title in steps_of(spec):
        before = digest(before, inputs[name])
        steps.append(Step(name, title.format(trainer=spec.trainer), before))
    return InstallPlan(request, layout, build, tuple(steps))


def steps_of(spec) -> tuple[tuple[str, str], ...]:
    """The steps a trainer's install takes: every one, less the tokenizers where it takes none."""
    return tuple(s for s in STEPS if s[0] != "tokenizers" or spec.clip_tokenizers)


def constraints_text(torch: TorchChoice) -> str:
    return "".join(f"{pin}\n" for pin in torch.pins)


def requirements_text(original: str, src: Path, left_out: tuple[str, ...] = ("bitsandbytes",)) -> str:
    """A requirement file (sd-scripts' requirements.txt) as pip reads it here: its own package (`-e .`)
    from the checkout, the packages in `left_out` (the InstallSpec's) dropped."""
    out = []
    for line in original.splitlines():
        stripped = line.strip()
        if stripped in ("-e .", "-e ./"):
            out.append(f"-e {src}")
            continue
        m = _REQ_NAME_RE.match(stripped)
        if m and not stripped.startswith("-") and _canonical(m.group(1)) in {_canonical(n) for n in left_out}:
            continue
        out.append(line)
    return "\n".join(out) + "\n"


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def pip_argv(plan: InstallPlan) -> list[str]:
    """One pip call: torch pinned and the same pins as a constraint, so no requirement can swap it; then
    the generated requirement file, or the checkout itself (`-e <src>`: its pyproject's pins)."""
    argv = [str(plan.build.python), "-m", "pip", "install", "--disable-pip-version-check"]
    if plan.request.torch.index_url:
        argv += ["--extra-index-url", plan.request.torch.index_url]
    argv += ["-c", str(plan.constraints), *plan.request.torch.pins]
    if plan.request.spec.requirements:
        return [*argv, "-r", str(plan.requirements)]
    return [*argv, "-e", str(plan.build.src)]
