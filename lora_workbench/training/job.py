"""What one run executes, as data: the steps (each one process) and the files written into the run
folder before the first step. A backend builds a `Job` (pure: nothing written or started); train.py
writes `files`, runs `steps` in order with one cancel and one progress bar naming the phase, and
`--print-command` prints `display()`.

sd-scripts runs one step (`train`). musubi-tuner runs `cache_latents`, `cache_text_encoder_outputs`,
`train` and, where ComfyUI needs another key layout, `convert`.
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from ..terminal import shown

STEP_NAMES = ("cache_latents", "cache_text_encoder_outputs", "train", "convert")


@dataclass(frozen=True)
class ParserEntry:
    """How to build the step's own argument parser, for the integration tier's parser check: import
    `module` from the trainer's checkout (with `sys_path` entries, relative to it, on sys.path), call
    `builders` in order, each taking the parser the last returned (the first gets none or a fresh
    argparse.ArgumentParser, as `first_takes_parser` says)."""

    module: str  # "train_network" | "musubi_tuner.wan_train_network"
    builders: tuple[str, ...]  # ("setup_parser",) | ("setup_parser_common", "wan_setup_parser")
    sys_path: tuple[str, ...] = ("",)  # "" = the checkout itself; "src" for musubi-tuner
    first_takes_parser: bool = False
    config_option: str = "config_file"  # the option naming the TOML the step reads ("" = none)


@dataclass(frozen=True)
class Step:
    name: str  # one of STEP_NAMES
    phase: str  # what the progress bar says: "Caching latents", "Training", ...
    argv: tuple[str, ...]
    cwd: str
    progress: str = "train"  # "train": sd-scripts' steps bar with loss; "count": an untotalled bar
    parser: ParserEntry | None = None
    # Cache steps: while the file `reuse_marker` holds `reuse_key`, the step is skipped (the project
    # cache holds its output); after it succeeds, train.py writes the key there.
    reuse_key: str = ""
    reuse_marker: str = ""

    def display(self) -> str:
        return " ".join(shlex.quote(a) for a in self.argv)


@dataclass(frozen=True)
class Job:
    backend: str  # "sd-scripts" | "musubi-tuner"
    steps: tuple[Step, ...]
    files: Mapping[str, str]  # run-folder file name -> text (config.toml, dataset.toml, prompts.txt)
    output_dir: str
    output_name: str  # the LoRA's stem; per-epoch files are <output_name>-00000N.safetensors
    final_name: str  # the file name ComfyUI loads (a converted copy where the backend converts)
    total_steps: int  # our estimate of the train step's steps; the trainer's printed total wins
    device: str  # "gpu" | "cpu"
    mixed_precision: str
    script: str  # the train step's script, for records and sentences
    warnings: tuple[str, ...] = ()
    config: Mapping[str, object] = field(default_factory=dict)  # the train step's config, by section
    # Folders the trainer writes by name outside the run folder (musubi's per-subset caches): made
    # before the first step as plain folders inside the project (write_places), never through a link.
    cache_dirs: tuple[str, ...] = ()

    @property
    def train_step(self) -> Step:
        return next(s for s in self.steps if s.name == "train")

    @property
    def final_path(self) -> str:
        return str(Path(self.output_dir) / self.final_name)

    @property
    def trained_path(self) -> str:
        """The LoRA as the trainer wrote it (before any conversion)."""
        return str(Path(self.output_dir) / f"{self.output_name}.safetensors")

    def display(self) -> str:
        """Everything the run would do, readable and runnable: each step's working directory and
        command, then each file the run folder gets, whole. The names in comment lines (the project's
        folders) have their line breaks escaped: a shared project's folder named "x\\ncurl ... | sh"
        must not print a line of its own that a pasted copy would run."""
        out: list[str] = []
        for i, step in enumerate(self.steps, 1):
            out.append(f"# step {i}/{len(self.steps)}: {step.phase} ({step.name})")
            if step.reuse_key:
                out.append(f"# skipped while {shown(step.reuse_marker)} holds {step.reuse_key}")
            out.append(f"cd {shlex.quote(step.cwd)}")
            out.append(step.display())
            out.append("")
        for name, text in self.files.items():
            out.append(f"# ---- {shown(Path(self.output_dir) / name)} ----")
            out.append(text.rstrip("\n"))
            out.append("")
        return "\n".join(out).rstrip("\n") + "\n"
