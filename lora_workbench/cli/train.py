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

from .. import numbers, paths
from ..dataset import dataset_toml
from ..errors import ValidationError, WorkbenchError
from ..terminal import echo, safe, shown
from ..training import model_files, train
from ..training.options import TrainOptions
from ..training.settings import GROUPS, SETTING, SETTINGS, in_group


def _help(s) -> str:
    default = ("on" if s.default else "off") if s.type is bool else repr(s.default)
    choices = f" Choices: {', '.join(s.choices)}." if s.choices else ""
    return f"{s.help}{choices} (default: {default})".replace("%", "%%")


GIVEN = "given_settings"  # the namespace attribute holding {setting: the flag typed}


def _mark(namespace, dest: str, option: str | None) -> None:
    given = dict(getattr(namespace, GIVEN, None) or {})
    given[dest] = option or dest
    setattr(namespace, GIVEN, given)


class _Typed(argparse.Action):
    """Stores the value and remembers that the flag was typed: a flag equal to the default is still
    the user's word, and wins over a kohya_ss config or a resumed run (argparse's own default cannot
    tell "typed" from "left out")."""

    def __call__(self, parser, namespace, values, option_string=None):
        setattr(namespace, self.dest, values)
        _mark(namespace, self.dest, option_string)


class _TypedBool(argparse.BooleanOptionalAction):
    def __call__(self, parser, namespace, values, option_string=None):
        super().__call__(parser, namespace, values, option_string)
        _mark(namespace, self.dest, option_string)


def add_setting_flags(parser: argparse.ArgumentParser) -> None:
    """One flag per setting, in one argument group per option node."""
    for group in GROUPS:
        title = "training settings (Kohya LoRA Train)" if group.key == "main" else f"{group.title.lower()}"
        g = parser.add_argument_group(title, None if group.key == "main" else group.help)
        for s in in_group(group.key):
            names = [s.flag, *s.flags]
            if s.type is bool:
                g.add_argument(*names, dest=s.name, action=_TypedBool, default=s.default, help=_help(s))
                continue
            kw: dict = {
                "dest": s.name,
                "default": s.default,
                "action": _Typed,
                "type": numbers.arg_float if s.type is float else s.type,
                "help": _help(s),
            }
            if s.choices:
                kw.update(choices=list(s.choices), metavar=s.name.upper())
            g.add_argument(*names, **kw)


def add_commands(sub) -> None:
    p = sub.add_parser(
        "train",
        help="train a LoRA with kohya's trainers (sd-scripts, musubi-tuner) on a project's dataset",
        description="Train a LoRA on PROJECT's dataset (dataset.toml from `dataset apply`) with the "
        "trainer of the base model's family: the sd-scripts in KOHYA_SS_PATH, or the musubi-tuner in "
        "MUSUBI_TUNER_PATH. Each run writes <project>/output/<name>-NNN/; the "
        "same inputs again reuse the finished run. Every setting is listed in docs/settings.md.",
    )
    p.add_argument("project", help="the training project folder")
    p.add_argument(
        "--base",
        help="the base model: a checkpoint or a diffusion model .safetensors of any family (docs/families.md), "
        "as a path or as a name in ComfyUI's checkpoints or diffusion_models folders (COMFYUI_PATH, and its "
        "extra_model_paths.yaml); with --resume, the resumed run's",
    )
    p.add_argument(
        "--kohya-json",
        metavar="FILE",
        help="start from a kohya_ss GUI config or preset (JSON): prints which keys were used, mapped, "
        "overridden, refused and skipped; every flag you type wins over it (even at its default value)",
    )
    p.add_argument(
        "--ignore-unsupported-keys",
        action="store_true",
        help="with --kohya-json: train without the config's keys that this pack cannot give as meant "
        "(listed as refused) instead of stopping on them",
    )
    p.add_argument("--dataset-toml", help="the kohya dataset TOML (default: PROJECT/dataset.toml)")
    p.add_argument(
        "--print-command",
        action="store_true",
        help="print every command the run would start and every file it would write; write nothing",
    )
    p.add_argument("--no-cache", action="store_true", help="train even when an identical finished run exists")
    add_setting_flags(p)
    p.set_defaults(func=run_train)


def given_flags(args) -> dict:
    """The settings whose flags were typed on the command line (at their default value or not)."""
    return {name: getattr(args, name) for name in explicit_flags(args)}


def explicit_flags(args) -> dict[str, str]:
    """{setting: the flag typed for it}."""
    return dict(getattr(args, GIVEN, None) or {})


def resumed_record(args) -> dict:
    """run.json of the run --resume names (its settings and base model start a resumed run)."""
    from ..training import resume
    from ..training.validation import sanitize_output_name

    project = Path(args.project).expanduser().resolve()
    name = args.output_name or sanitize_output_name(project.name)
    root = project / "output"
    return resume.read_record(resume.find_run(args.resume, root, name))


def options_from_args(args, base: dict | None = None):
    """The run's options: `base` (a resumed run's settings, a kohya_ss GUI config), then the flags given."""
    if base is None:
        return TrainOptions.from_values({s.name: getattr(args, s.name) for s in SETTINGS})
    kept = {k: v for k, v in base.items() if k in SETTING}
    return TrainOptions.from_values({**kept, **given_flags(args)})


def _gui_values(args) -> dict:
    """The config's settings; the report says which typed flag won over which key, and the import
    stops on a key it cannot give as meant unless a flag settles it or --ignore-unsupported-keys."""
    from ..training.backends.sd_scripts import kohya_gui

    imported = kohya_gui.import_file(args.kohya_json)
    explicit = explicit_flags(args)
    echo(imported.report(explicit))
    imported.check(explicit, args.ignore_unsupported_keys)
    return imported.settings(explicit)


def _start_values(args) -> tuple[dict | None, str | None]:
    """(base settings, base model) from --resume's run or --kohya-json; (None, None) for neither."""
    if args.resume and args.kohya_json:
        raise ValidationError("--resume continues a run as it was set up; drop --kohya-json.")
    if args.resume:
        rec = resumed_record(args)
        spec, base = rec.get("spec") or {}, rec.get("base_model")
        if not isinstance(spec, dict) or not isinstance(base, (str, type(None))):
            raise ValidationError(
                f"The run.json of the run --resume {args.resume!r} names holds a spec or base_model of the "
                f"wrong kind, so it was not written by lora-workbench; start a new run instead."
            )
        return {**spec, "resume": args.resume}, base
    if args.kohya_json:
        return _gui_values(args), None
    return None, None


def _load_dataset(args):
    project = Path(args.project).expanduser().resolve()
    if args.dataset_toml:
        return dataset_toml.dataset_from_toml(Path(args.dataset_toml).expanduser(), project)
    return dataset_toml.load_project_dataset(project)


def _print_command(opts, dataset, base: str) -> int:
    """What a run would do, whole: every step's working directory and command, then every file the
    run folder would get (the config TOML, the dataset config, the prompts), as a run writes them."""
    p = train.plan(opts, dataset, base)
    echo(f"# {shown(p.model.name)} base ({p.model.how}); {p.job.backend}; run folder {shown(p.run_dir)}")
    for w in p.warnings:
        echo(f"# warning: {shown(w)}")  # one comment line each, whatever folder names they hold
    echo(p.job.display().rstrip("\n"))
    return 0


def _report(run) -> int:
    if run.cached:
        echo(f"reused {run.run_dir} (same dataset, settings and base model; use --no-cache to train again)")
    if run.resumed_from:
        echo(f"resumed {run.run_dir} from {run.resumed_from}")
    echo(f"LoRA: {run.lora.path}")
    for p in run.lora.epoch_paths:
        echo(f"  epoch file: {p}")
    if run.loss_curve:
        echo(f"loss curve: {run.loss_curve}")
    echo(f"log: {run.lora.log_path}")
    if run.lora.trigger_words:
        echo(f"trigger words: {', '.join(run.lora.trigger_words)}")
    for w in run.warnings:
        echo(f"warning: {w}", file=sys.stderr)
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
        text = safe(status.text()[:150])
        sys.stderr.write("\r" + text + " " * max(0, self.width - len(text)))
        sys.stderr.flush()
        self.width = len(text)


def run_train(args) -> int:
    start, recorded_base = _start_values(args)
    opts = options_from_args(args, start)
    if opts.network_weights:
        opts = opts.replace(network_weights=str(Path(opts.network_weights).expanduser().resolve()))
    dataset = _load_dataset(args)
    if not (args.base or recorded_base):
        raise ValidationError("--base is required: the base checkpoint to train on.")
    base = model_files.find_base_model(args.base or recorded_base, paths.comfyui_path())
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
            require_known_state=False,  # the user's own shell may resume any state of the project
        )
    except train.TrainingCancelled as exc:
        sys.stderr.write(f"\n{safe(str(exc))}\n")
        return 130
    except WorkbenchError:
        sys.stderr.write("\n")
        raise
    finally:
        signal.signal(signal.SIGINT, previous)
    sys.stderr.write("\n")
    return _report(run)
