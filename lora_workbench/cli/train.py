"""CLI `train PROJECT --base CKPT [...]`: the KohyaLoRATrain node's job in a terminal.

Every training setting (training/settings.py) is a `--kebab-case` flag with the node's default and
its tooltip as help, grouped like the option nodes; sd-scripts' own spellings work too where ours
differ (`--optimizer-type`, `--train-batch-size`, ...). Progress is one `\\r` line; Ctrl-C stops the
whole trainer process tree and exits 130; `--print-command` only shows what would run.
"""

from __future__ import annotations

import argparse
import signal
import sys
from pathlib import Path

from ..dataset import dataset_toml
from ..errors import WorkbenchError
from ..training import train
from ..training.options import TrainOptions
from ..training.settings import GROUPS, SETTINGS, in_group


def _help(s) -> str:
    default = ("on" if s.default else "off") if s.type is bool else repr(s.default)
    choices = f" Choices: {', '.join(s.choices)}." if s.choices else ""
    return f"{s.help}{choices} (default: {default})".replace("%", "%%")


def add_setting_flags(parser: argparse.ArgumentParser) -> None:
    """One flag per setting, in one argument group per option node."""
    for group in GROUPS:
        title = "training settings (Kohya LoRA Train)" if group.key == "main" else f"{group.title.lower()}"
        g = parser.add_argument_group(title, None if group.key == "main" else group.help)
        for s in in_group(group.key):
            names = [s.flag, *s.flags]
            if s.type is bool:
                g.add_argument(
                    *names,
                    dest=s.name,
                    action=argparse.BooleanOptionalAction,
                    default=s.default,
                    help=_help(s),
                )
                continue
            kw: dict = {"dest": s.name, "default": s.default, "type": s.type, "help": _help(s)}
            if s.choices:
                kw.update(choices=list(s.choices), metavar=s.name.upper())
            g.add_argument(*names, **kw)


def add_commands(sub) -> None:
    p = sub.add_parser(
        "train",
        help="train a LoRA with kohya sd-scripts on a project's dataset",
        description="Train a LoRA on PROJECT's dataset (dataset.toml from `dataset apply`) with the "
        "sd-scripts in KOHYA_SS_PATH. Each run writes <project>/output/<name>-NNN/; the "
        "same inputs again reuse the finished run. Every setting is listed in docs/settings.md.",
    )
    p.add_argument("project", help="the training project folder")
    p.add_argument(
        "--base",
        required=True,
        help="the base model: a checkpoint or a diffusion model .safetensors of any family (docs/families.md)",
    )
    p.add_argument("--dataset-toml", help="the kohya dataset TOML (default: PROJECT/dataset.toml)")
    p.add_argument(
        "--print-command", action="store_true", help="print the command that would run; write nothing"
    )
    p.add_argument("--no-cache", action="store_true", help="train even when an identical finished run exists")
    add_setting_flags(p)
    p.set_defaults(func=run_train)


def options_from_args(args):
    return TrainOptions.from_values({s.name: getattr(args, s.name) for s in SETTINGS})


def _load_dataset(args):
    project = Path(args.project).expanduser().resolve()
    if args.dataset_toml:
        return dataset_toml.dataset_from_toml(Path(args.dataset_toml).expanduser(), project)
    return dataset_toml.load_project_dataset(project)


def _print_command(opts, dataset, base: str) -> int:
    p = train.plan(opts, dataset, base)
    print(f"# {p.model.name} base ({p.model.how}); run folder {p.run_dir}")
    for w in p.warnings:
        print(f"# warning: {w}")
    print(p.command.display())
    return 0


def _report(run) -> int:
    if run.cached:
        print(f"reused {run.run_dir} (same dataset, settings and base model; use --no-cache to train again)")
    print(f"LoRA: {run.lora.path}")
    for p in run.lora.epoch_paths:
        print(f"  epoch file: {p}")
    if run.loss_curve:
        print(f"loss curve: {run.loss_curve}")
    print(f"log: {run.lora.log_path}")
    if run.lora.trigger_words:
        print(f"trigger words: {', '.join(run.lora.trigger_words)}")
    for w in run.warnings:
        print(f"warning: {w}", file=sys.stderr)
    return 0


class _Terminal:
    """The one-line progress display and the Ctrl-C handling of a run in a terminal."""

    def __init__(self):
        self.cancel_requested = False
        self.width = 0

    def on_sigint(self, _sig, _frame):
        if self.cancel_requested:  # a second Ctrl-C: stop waiting for the clean shutdown
            raise KeyboardInterrupt
        self.cancel_requested = True
        sys.stderr.write("\ncancelling (stopping the trainer)...\n")

    def on_update(self, status):
        text = status.text()[:150]
        sys.stderr.write("\r" + text + " " * max(0, self.width - len(text)))
        sys.stderr.flush()
        self.width = len(text)


def run_train(args) -> int:
    opts = options_from_args(args)
    dataset = _load_dataset(args)
    base = str(Path(args.base).expanduser().resolve())
    if args.print_command:
        return _print_command(opts, dataset, base)
    term = _Terminal()
    previous = signal.getsignal(signal.SIGINT)
    signal.signal(signal.SIGINT, term.on_sigint)
    try:
        run = train.train(
            opts,
            dataset,
            base,
            on_update=term.on_update,
            should_cancel=lambda: term.cancel_requested,
            use_cache=not args.no_cache,
        )
    except train.TrainingCancelled as exc:
        sys.stderr.write(f"\n{exc}\n")
        return 130
    except WorkbenchError:
        sys.stderr.write("\n")
        raise
    finally:
        signal.signal(signal.SIGINT, previous)
    sys.stderr.write("\n")
    return _report(run)
