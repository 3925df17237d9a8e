"""Caption a training project with sd-scripts' WD14 tagger: check, stage, run, write back, report.

`caption_project(spec)` is the one entry point of the node and the CLI. Everything that can be
checked before the run is (the options, the sd-scripts checkout and its python, onnx/onnxruntime in
that environment, the model files), each a sentence. The script runs in the trainer's environment on
a staged copy of the images (staging.py), so nothing it does can reach outside that copy, and its
captions come back into the project only when it finished: a cancelled or failed run changes nothing.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from .. import paths
from ..dataset.captions import format_keywords, keywords
from ..dataset.confined import Guard
from ..errors import ValidationError, WorkbenchError
from ..training import kohya
from ..training.module_probe import probe_module
from . import process, staging
from .wd14 import SCRIPT, TaggerSpec, build_argv, check_model, child_environment

STAGING_FOLDER = "tagger-staging"  # under paths.cache_dir(); one private folder per run inside


class TaggingCancelled(WorkbenchError):
    """The user cancelled the tagger; no caption was changed."""


@dataclass
class CaptionReport:
    """What one tagging run did to the project."""

    project_dir: str
    repo_id: str
    images: int = 0  # images the tagger ran on
    written: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    kept: int = 0
    skipped: dict[str, str] = field(default_factory=dict)
    tags: list[tuple[str, int]] = field(default_factory=list)

    def summary(self, limit: int = 10) -> str:
        """A few lines for the node and the terminal."""
        lines = [
            f"WD14 ({self.repo_id}) tagged {self.images} image(s) in {self.project_dir}: "
            f"{len(self.written)} caption(s) written, {len(self.unchanged)} unchanged"
            + (f", {self.kept} existing kept" if self.kept else "")
            + "."
        ]
        if self.tags:
            lines.append("Tags: " + format_keywords(self.tags, 30))
        if self.skipped:
            lines.append(f"Not captioned ({len(self.skipped)}):")
            lines += [f"  {where}: {why}" for where, why in list(self.skipped.items())[:limit]]
            if len(self.skipped) > limit:
                lines.append(f"  ... and {len(self.skipped) - limit} more")
        return "\n".join(lines)


@dataclass
class Hooks:
    """How the caller follows and stops a run: progress (may raise to stop), a cancel poll."""

    on_progress: Callable[[process.Progress], None] | None = None
    should_cancel: Callable[[], bool] | None = None
    grace_seconds: float = 3.0


def caption_project(spec: TaggerSpec, guard: Guard, hooks: Hooks | None = None) -> CaptionReport:
    """Tag every image of the project's subsets and write the captions; a sentence on bad input."""
    spec = spec.checked()
    hooks = hooks or Hooks()
    install = kohya.find_install()
    script = find_script(install.scripts_dir)
    check_model(spec)
    env = child_environment(spec, install.scripts_dir)
    require_onnx(install.python, install.scripts_dir, env)
    root = _staging_root()
    try:
        staged = staging.stage(spec, guard, root)
        report = CaptionReport(spec.project_dir, spec.repo_id, staged.image_count, kept=staged.kept)
        report.skipped.update(staged.skipped)
        if staged.image_count:
            _run_script(build_argv(spec, install.python, script, root), install, env, hooks)
            _collect(report, staging.write_back(spec, guard, staged))
        return report
    finally:
        shutil.rmtree(root, ignore_errors=True)


def find_script(scripts_dir: Path) -> Path:
    script = Path(scripts_dir) / SCRIPT
    if not script.is_file():
        raise ValidationError(
            f"The sd-scripts checkout {scripts_dir} has no {SCRIPT.as_posix()}; update sd-scripts "
            f"(git pull) or set KOHYA_SS_PATH to a checkout that has it."
        )
    return script


def require_onnx(python: Path, scripts_dir: Path, env: dict) -> None:
    """A sentence with the pip command for the sd-scripts environment when onnx or onnxruntime is missing
    (asked in the script's own environment, and remembered until that environment changes)."""
    found = {
        m: probe_module(python, m, env=env, cwd=str(scripts_dir)).get("found")
        for m in ("onnxruntime", "onnx")
    }
    missing = [m for m, ok in found.items() if not ok]
    if missing:
        raise ValidationError(
            f"The sd-scripts environment ({python}) cannot import {' and '.join(missing)}, which the WD14 "
            f"tagger runs on. Install them there: {python} -m pip install onnx onnxruntime (onnxruntime-gpu "
            f"for an NVIDIA GPU), then queue again."
        )


def _staging_root() -> Path:
    base = paths.cache_dir() / STAGING_FOLDER
    base.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix="wd14-", dir=base))  # 0700, a new name every run


def _run_script(argv: list[str], install: kohya.KohyaInstall, env: dict, hooks: Hooks) -> None:
    outcome = process.run(
        argv,
        cwd=str(install.scripts_dir),
        env=env,
        on_progress=hooks.on_progress,
        should_cancel=hooks.should_cancel,
        grace_seconds=hooks.grace_seconds,
    )
    if outcome.cancelled:
        raise TaggingCancelled("The tagger was cancelled; no caption was changed.")
    if outcome.returncode != 0:
        raise WorkbenchError(
            f"sd-scripts' WD14 tagger ({argv[1]}) failed; no caption was changed: {outcome.error()}"
        )


def _collect(report: CaptionReport, written: staging.WriteReport) -> None:
    report.written, report.unchanged = written.written, written.unchanged
    report.skipped.update(written.skipped)
    report.tags = keywords(written.texts)
