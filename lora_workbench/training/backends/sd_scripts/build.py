"""sd-scripts' `Job` for one run: one `train` step (accelerate launch or python, the family's
script, `--config_file`), and the run folder's config TOML, dataset.toml copy and prompts.txt.
Pure: the command builders (training/command.py) decide every value; nothing is written here."""

from __future__ import annotations

from pathlib import PurePath

from .... import toml_writer
from ...command import Command, Target, build_command
from ...job import Job, ParserEntry, Step
from .dataset_config import dataset_copy_text

TRAINER = "sd-scripts"


def train_step(cmd: Command) -> Step:
    return Step(
        name="train",
        phase="Training",
        argv=tuple(cmd.argv),
        cwd=cmd.cwd,
        progress="train",
        parser=ParserEntry(PurePath(cmd.script).stem, ("setup_parser",)),
    )


def run_files(cmd: Command, target: Target) -> dict[str, str]:
    """run-folder name -> text: the config (with a header saying how to run it again), the dataset
    copy, the sample prompts when the run samples."""
    header = toml_writer.comment(
        f"sd-scripts {cmd.script} config for {cmd.output_name}, written by lora-workbench.",
        f"Run it again with: {cmd.display()}",
    )
    files = {
        target.config_name: header + toml_writer.dumps(cmd.config),
        target.dataset_toml.name: dataset_copy_text(target.dataset, cmd.dataset_patch),
    }
    if cmd.prompts:
        files[target.prompts_path.name] = cmd.prompts
    return files


def build_job(opts, target: Target, warnings: list[str] | None = None) -> Job:
    """The validated options' run against `target` (train.plan validates), as a Job."""
    cmd = build_command(opts, target, warnings)
    return Job(
        backend=TRAINER,
        steps=(train_step(cmd),),
        files=run_files(cmd, target),
        output_dir=cmd.output_dir,
        output_name=cmd.output_name,
        final_name=f"{cmd.output_name}.safetensors",
        total_steps=cmd.total_steps,
        device=cmd.device,
        mixed_precision=cmd.mixed_precision,
        script=cmd.script,
        warnings=tuple(cmd.warnings),
        config=cmd.config,
    )
