"""The command line: the same jobs as the nodes, without ComfyUI.

    lora-workbench init LIBRARY
    lora-workbench link LIBRARY [--watch] [--dry-run]
    lora-workbench link-trained PROJECT [--dry-run]
    lora-workbench train-init PROJECT
    lora-workbench dataset scan|weights|apply PROJECT [...]
    lora-workbench train PROJECT --base CKPT [...]
    lora-workbench queue WORKFLOW [--set NODE.INPUT=VALUE ...]
    lora-workbench settings [--check] [--set KEY=VALUE ...]
    lora-workbench trainer install|status|check|update|remove|pins [...]

Each area adds its own subcommands (cli_library, cli_dataset, cli_train, cli_queue, cli_settings, cli_trainer); their modules
import nothing heavy at import time, so `--help` is instant.
Exit codes: 0 success, 1 the job failed (bad input, collisions, training error), 2 usage,
130 cancelled with Ctrl-C.
"""

from __future__ import annotations

import argparse
import sys

from .. import __version__
from ..errors import WorkbenchError
from ..terminal import echo
from . import dataset as cli_dataset
from . import library as cli_library
from . import queue as cli_queue
from . import settings as cli_settings
from . import train as cli_train
from . import trainer as cli_trainer


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lora-workbench",
        description="Model library linking, dataset weights and kohya LoRA training, without ComfyUI.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for module in (cli_library, cli_dataset, cli_train, cli_queue, cli_settings, cli_trainer):
        module.add_commands(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except WorkbenchError as exc:
        echo(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        echo("cancelled", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
