"""CLI `train PROJECT --base CKPT [...]`: the KohyaLoRATrain node's job in a terminal.

Every TrainSpec field is a `--kebab-case` flag with the node's default. Progress is one `\\r` line;
Ctrl-C stops the whole trainer process tree and exits 130; `--print-command` only shows what would run.
"""

from __future__ import annotations

import argparse
import signal
import sys
from dataclasses import fields
from pathlib import Path

# Short names the issue promises, besides the field names.
_ALIASES = {"sample_sampler": ["--sampler"], "lr_scheduler": ["--scheduler"]}
_CHOICES_FROM = {
    "sample_sampler": "SAMPLERS",
    "script": "SCRIPTS",
    "model_type": "MODEL_TYPES",
    "optimizer": "OPTIMIZERS",
    "lr_scheduler": "SCHEDULERS",
    "mixed_precision": "MIXED_PRECISIONS",
    "save_precision": "SAVE_PRECISIONS",
    "buckets": "BUCKETS",
    "attention": "ATTENTIONS",
    "device": "DEVICES",
    "launcher": "LAUNCHERS",
    "step_rule": "STEP_RULES",
}


def add_commands(sub) -> None:
    from ..training import kohya
    from ..training.kohya import TrainSpec

    p = sub.add_parser(
        "train",
        help="train a LoRA with kohya sd-scripts on a project's dataset",
        description="Train a LoRA on PROJECT's dataset (dataset.toml from `dataset apply`) with the "
        "sd-scripts in KOHYA_SS_PATH. Each run writes <project>/output/<name>-NNN/; the "
        "same inputs again reuse the finished run.",
    )
    p.add_argument("project", help="the training project folder")
    p.add_argument("--base", required=True, help="base checkpoint (SD 1.x, SD 2.x or SDXL .safetensors)")
    p.add_argument("--dataset-toml", help="the kohya dataset TOML (default: PROJECT/dataset.toml)")
    p.add_argument(
        "--print-command", action="store_true", help="print the command that would run; write nothing"
    )
    p.add_argument("--no-cache", action="store_true", help="train even when an identical finished run exists")
    p.add_argument(
        "--link", action="store_true", help="link the result into the UIs' LoRA folders afterwards"
    )
    defaults = TrainSpec()
    g = p.add_argument_group("training settings (the KohyaLoRATrain widgets)")
    for f in fields(TrainSpec):
        default = getattr(defaults, f.name)
        flag = "--" + f.name.replace("_", "-")
        names = [flag, *_ALIASES.get(f.name, [])]
        if isinstance(default, bool):
            g.add_argument(
                flag,
                dest=f.name,
                action=argparse.BooleanOptionalAction,
                default=default,
                help=f"(default: {'on' if default else 'off'})",
            )
            continue
        kw: dict = {"dest": f.name, "default": default, "help": f"(default: {default!r})"}
        if isinstance(default, int):
            kw["type"] = int
        elif isinstance(default, float):
            kw["type"] = float
        if f.name in _CHOICES_FROM:
            kw["choices"] = list(getattr(kohya, _CHOICES_FROM[f.name]))
            kw["metavar"] = f.name.upper()
            kw["help"] = f"{', '.join(kw['choices'])} (default: {default})"
        g.add_argument(*names, **kw)
    p.set_defaults(func=run_train)


def _spec_from_args(args):
    from ..training.kohya import TrainSpec

    return TrainSpec(**{f.name: getattr(args, f.name) for f in fields(TrainSpec)})


def run_train(args) -> int:  # noqa: C901 (cut into steps pending)
    from ..dataset import dataset_toml
    from ..errors import WorkbenchError
    from ..training import train

    spec = _spec_from_args(args)
    project = Path(args.project).expanduser().resolve()
    if args.dataset_toml:
        dataset = dataset_toml.dataset_from_toml(Path(args.dataset_toml).expanduser(), project)
    else:
        dataset = dataset_toml.load_project_dataset(project)
    base = str(Path(args.base).expanduser().resolve())

    if args.print_command:
        p = train.plan(spec, dataset, base)
        print(f"# {p.model.name} base ({p.model.how}); run folder {p.run_dir}")
        for w in p.warnings:
            print(f"# warning: {w}")
        print(p.command.display())
        return 0

    cancel = {"requested": False}
    previous = signal.getsignal(signal.SIGINT)

    def on_sigint(_sig, _frame):
        if cancel["requested"]:  # a second Ctrl-C: stop waiting for the clean shutdown
            raise KeyboardInterrupt
        cancel["requested"] = True
        sys.stderr.write("\ncancelling (stopping the trainer)...\n")

    width = {"n": 0}

    def on_update(status):
        text = status.text()[:150]
        pad = max(0, width["n"] - len(text))
        width["n"] = len(text)
        sys.stderr.write("\r" + text + " " * pad)
        sys.stderr.flush()

    signal.signal(signal.SIGINT, on_sigint)
    try:
        run = train.train(
            spec,
            dataset,
            base,
            on_update=on_update,
            should_cancel=lambda: cancel["requested"],
            use_cache=not args.no_cache,
            link_to_library=args.link,
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
