"""CLI subcommands for the model library: init, link [--watch], link-trained.

Exit codes: 0 done (skipped UI folders that do not exist are not an error), 1 a collision, an error,
or the library/project folder is missing. `link --watch` runs until Ctrl-C and then exits 0.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from ..errors import ValidationError
from ..library import layout, watch
from ..library import linker as library
from ..terminal import echo


def add_commands(sub) -> None:
    p = sub.add_parser(
        "init",
        help="create the library folder layout (idempotent)",
        description="Create LIBRARY and its folders: checkpoints, loras, vae, embeddings, "
        "upscale_models, controlnet, clip, repos, depth-maps.",
    )
    p.add_argument("library", type=Path, help="the model library folder")
    p.set_defaults(func=cmd_init)

    p = sub.add_parser(
        "link",
        help="link the library into ComfyUI / A1111 / Forge",
        description="Make each UI's model folders link to the library's files: create missing "
        "links, fix moved ones, remove our links to deleted files. Real files and "
        "foreign links are never touched (reported as collisions; exit code 1).",
    )
    p.add_argument("library", type=Path, help="the model library folder")
    _ui_options(p)
    p.add_argument(
        "--category",
        action="append",
        metavar="NAME",
        help="only this library category (repeatable), e.g. --category loras",
    )
    p.add_argument("--watch", action="store_true", help="keep relinking on changes until Ctrl-C")
    p.add_argument("--dry-run", action="store_true", help="report what would change; change nothing")
    p.set_defaults(func=cmd_link)

    p = sub.add_parser(
        "link-trained",
        help="link a training project's output*/ LoRAs into the UIs",
        description="Link every output*/ .safetensors of PROJECT into ComfyUI models/loras and "
        "A1111/Forge models/Lora; output-v2/x.safetensors becomes x-v2.safetensors.",
    )
    p.add_argument("project", type=Path, help="the training project folder")
    _ui_options(p)
    p.add_argument("--dry-run", action="store_true", help="report what would change; change nothing")
    p.set_defaults(func=cmd_link_trained)


def _ui_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--comfyui", type=Path, metavar="PATH", help="ComfyUI folder (default: $COMFYUI_PATH)")
    p.add_argument(
        "--a1111",
        type=Path,
        metavar="PATH",
        help="A1111 folder (default: $A1111_PATH or ~/stable-diffusion-webui)",
    )
    p.add_argument(
        "--forge",
        type=Path,
        metavar="PATH",
        help="Forge folder (default: $FORGE_PATH or ~/stable-diffusion-webui-forge)",
    )
    for ui in ("comfyui", "a1111", "forge"):
        p.add_argument(f"--no-{ui}", action="store_true", help=f"do not link into {ui}")


def _ui_dirs(args) -> dict[str, Path]:
    uis = layout.default_ui_dirs()
    for ui in ("comfyui", "a1111", "forge"):
        given = getattr(args, ui)
        if given is not None:
            uis[ui] = given.expanduser()
        if getattr(args, f"no_{ui}"):
            uis.pop(ui, None)
    return {ui: uis[ui] for ui in ("comfyui", "a1111", "forge") if ui in uis}


def cmd_init(args) -> int:
    made = layout.init_library(args.library)
    for p in made:
        echo(f"created {p}")
    echo(f"library ready: {args.library.expanduser()} ({len(made)} folders created)")
    return 0


def cmd_link(args) -> int:
    unknown = sorted(set(args.category or ()) - set(layout.LIBRARY_FOLDERS))
    if unknown:
        raise ValidationError(
            f"Unknown library category {', '.join(unknown)}: use one of {', '.join(layout.LIBRARY_FOLDERS)}."
        )
    uis = _ui_dirs(args)
    if "comfyui" not in uis and not args.no_comfyui:
        echo("note: ComfyUI not linked: set COMFYUI_PATH or pass --comfyui PATH")
    report = library.link_library(args.library, uis, dry_run=args.dry_run, categories=args.category)
    echo(report.to_text())
    rc = 0 if report.ok else 1
    if not args.watch or args.dry_run:
        return rc
    return _watch(args.library, uis)


def _watch(library_dir: Path, uis: dict[str, Path]) -> int:
    def show(report) -> None:
        echo(
            f"{time.strftime('%H:%M:%S')} {', '.join(report.categories) or 'all'}: {report.summary()}",
            flush=True,
        )

    watch.ensure_watcher(library_dir, uis, on_report=show)
    echo(f"watching {library_dir} (Ctrl-C to stop)", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        echo("stopped watching")
        return 0
    finally:
        watch.stop_all()


def cmd_link_trained(args) -> int:
    report = library.link_trained(args.project, _ui_dirs(args), dry_run=args.dry_run)
    echo(report.to_text())
    return 0 if report.ok else 1
