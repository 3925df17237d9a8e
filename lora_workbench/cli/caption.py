"""CLI `lora-workbench dataset caption PROJECT --tagger wd14`: the Caption Dataset (WD14) node's run.

One flag per tagger option, in kebab-case, generated from captioning/wd14.py OPTIONS (the node's
widgets come from the same table). Progress is one `\\r` line on stderr; Ctrl-C stops the tagger's
whole process tree and changes no caption. The command line is the user's own shell: the project is
not confined to the allowed roots (links are followed and said so, like `dataset scan`).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..captioning.wd14 import OPTIONS, Option
from ..errors import ValidationError
from ..terminal import echo

TAGGERS = ("wd14",)


def _flag(option: Option) -> str:
    return "--" + option.name.replace("_", "-")


def _add_option(p: argparse.ArgumentParser, option: Option) -> None:
    if option.kind is bool:
        p.add_argument(
            _flag(option),
            action=argparse.BooleanOptionalAction,
            default=option.default,
            help=option.tooltip,
        )
        return
    kw: dict = {"type": option.kind, "default": option.default, "help": option.tooltip}
    if option.choices and option.name != "repo_id":  # any Hub repo id of the same layout may be given
        kw["choices"] = option.choices
    if option.kind in (int, float):
        kw["metavar"] = "N"
    p.add_argument(_flag(option), **kw)


def add_dataset_command(dsub) -> None:
    """Add `caption` to the `dataset` subcommands."""
    p = dsub.add_parser(
        "caption",
        help="caption the project's images with a tagger (sd-scripts' WD14 tagger)",
        description="Run sd-scripts' finetune/tag_images_by_wd14_tagger.py --onnx in the trainer's "
        "environment on every images/N_Subject/ subset and write the captions beside the images.",
    )
    p.add_argument("project")
    p.add_argument("--tagger", choices=TAGGERS, default="wd14", help="which tagger (wd14)")
    p.add_argument(
        "--model-dir",
        default="",
        metavar="FOLDER",
        help="the folder holding one folder per tagger model (default: `wd14_tagger_dir` in the "
        "settings, else $COMFYUI_PATH/models/wd14_tagger)",
    )
    for option in OPTIONS:
        _add_option(p, option)
    p.set_defaults(func=_caption)


def _caption(args) -> int:
    from ..captioning import tag, wd14
    from ..dataset.confined import Guard

    model_dir = Path(args.model_dir).expanduser() if args.model_dir else wd14.default_model_dir()
    if model_dir is None:
        raise ValidationError(
            "No folder for the WD14 tagger model is known: give --model-dir, or set "
            f"`{wd14.MODEL_DIR_SETTING}` (or COMFYUI_PATH) in the settings."
        )
    values = {o.name: getattr(args, o.name) for o in OPTIONS}
    project = Path(args.project).expanduser().resolve()
    spec = wd14.TaggerSpec.from_values(str(project), str(model_dir), values)
    guard = Guard()
    report = tag.caption_project(spec, guard, tag.Hooks(on_progress=_show_progress))
    echo(file=sys.stderr)
    for note in guard.followed:
        echo(note)
    echo(report.summary())
    return 0


def _show_progress(progress) -> None:
    sys.stderr.write("\r")  # back to the line's start; the text itself is escaped
    echo(f"{progress.text()[:100]:<100}", end="", file=sys.stderr, flush=True)
