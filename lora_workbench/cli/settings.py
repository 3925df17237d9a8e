"""CLI `settings [--check] [--json] [--set KEY=VALUE ...]`: the paths in the settings file, where each
value comes from (environment, settings file, default), and the same checks and locked, atomic write as
ComfyUI's settings dialog. It is the only place (with the environment) that sets the paths that decide
what code runs (kohya_ss_path, kohya_python, kohya_ss_gui_path, musubi_tuner_path, musubi_python), and
the only check that runs the Python.
The allowed roots are edited by hand or set in LORA_WORKBENCH_ROOTS.
"""

from __future__ import annotations

import argparse
import json

from ..terminal import echo


def add_commands(sub) -> None:
    p = sub.add_parser(
        "settings",
        help="show, check or set the paths in the settings file (the ones ComfyUI's settings dialog edits)",
        description="Show the settings ComfyUI's settings dialog edits, where each value comes from, "
        "and check them; --set KEY=VALUE saves values (checked first, all or none).",
    )
    p.add_argument("--json", action="store_true", help="print JSON")
    p.add_argument("--check", action="store_true", help="check every value in effect (runs the Python)")
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="save a value (empty VALUE removes it); keys: library, kohya_ss_path, kohya_python, "
        "kohya_ss_gui_path, musubi_tuner_path, musubi_python, tokenizer_cache_dir, wd14_tagger_dir, "
        "comfyui_path, a1111_path, forge_path (the trainers' paths and Pythons decide what code runs and "
        "are set only here, never from ComfyUI's dialog)",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from .. import editable_settings, paths
    from ..errors import ValidationError

    if args.set:
        updates = {}
        for item in args.set:
            key, sep, value = item.partition("=")
            if not sep:
                raise ValidationError(f"--set takes KEY=VALUE, not {item!r}.")
            updates[key.strip()] = value
        checks = editable_settings.save(updates, confine=False)  # your own shell: not confined
        failed = [c for c in checks if not c.ok]
        for c in checks:
            echo(f"{c.key}: {c.error or 'ok'}" + "".join(f"\n  {n}" for n in c.notes))
        if failed:
            return 1
        echo(f"saved in {paths.settings_path()}")
    items = editable_settings.describe()
    if args.check:
        for item in items:
            c = editable_settings.check(item["key"], item["effective"], confine=False)
            item["check"] = c.to_dict()
    if args.json:
        echo(json.dumps({"settings_file": str(paths.settings_path()), "settings": items}, indent=2))
    else:
        _print_table(items, str(paths.settings_path()))
    return 1 if any(not i.get("check", {}).get("ok", True) for i in items) else 0


def _print_table(items: list[dict], settings_file: str) -> None:
    echo(f"settings file: {settings_file}")
    for item in items:
        source = (
            f"from {item['env']}" if item["env_value"] else ("from the file" if item["value"] else "unset")
        )
        echo(f"{item['key']:<20} {item['effective'] or '-'}  ({source})")
        check = item.get("check")
        if check:
            echo(f"{'':<20} {'ok' if check['ok'] else 'ERROR: ' + check['error']}")
            for note in check["notes"]:
                echo(f"{'':<20} {note}")
