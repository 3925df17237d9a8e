"""Files generated from the settings table: the reference docs/settings.md and the layout data the
browser's workflow migration reads (web/kohya_train_layout.js).

`generated_files()` maps each repo-relative path to its text; scripts/generate_settings.py writes
them and a unit test fails when a committed copy is stale. Other generated files (node help pages)
add themselves to that map.
"""

from __future__ import annotations

import json

from .node_layout import layout
from .settings import (
    FAMILIES,
    GROUPS,
    MUSUBI_FAMILIES,
    SD_FAMILIES,
    SD_SCRIPTS_FAMILIES,
    Setting,
    Where,
    in_group,
)
from .validation import family_name

_WHERE = {
    Where.CONFIG: "config TOML [{section}]",
    Where.DATASET: "dataset TOML [{section}]",
    Where.LAUNCH: "accelerate launch",
    Where.PROMPTS: "prompts file",
    Where.RUN: "ours (not passed)",
}


def _default(s: Setting) -> str:
    if s.type is bool:
        return "on" if s.default else "off"
    return (
        f"`{s.default!r}`" if s.type is str else f"`{s.default:g}`" if s.type is float else f"`{s.default}`"
    )


def _values(s: Setting) -> str:
    if s.doc_values:
        return s.doc_values
    if s.kv:
        return "key=value pairs separated by spaces, each key checked (kvargs.py)"
    if s.choices:
        return ", ".join(f"`{c}`" for c in s.choices)
    if s.type is bool:
        return "on / off"
    if s.low is not None:
        fmt = "{:d}" if s.type is int else "{:g}"
        step = f", step {fmt.format(s.type(s.step))}" if s.step else ""
        return f"{fmt.format(s.low)} to {fmt.format(s.high)}{step}"
    if s.pattern is not None:
        return f"empty, or `{s.pattern.pattern}`"
    return "text" + (" (several lines)" if s.multiline else "")


def _target(s: Setting) -> str:
    where = _WHERE[s.where].format(section=s.section)
    if s.where is Where.DATASET and s.section == "subset_defaults":
        where = "dataset TOML [general]; a subset's own value wins"
    if s.sd_name in ("network_args", "optimizer_args"):
        where = "training script's command line"  # command.kv_argv: their commas stay out of the TOML
    if s.doc_target:
        return f"{s.doc_target} ({where})"
    return f"`{s.sd_name}` ({where})" if s.sd_name else where


def _applies(s: Setting) -> str:
    if s.families == FAMILIES:
        families = "all"
    elif s.families == SD_FAMILIES:
        families = "SD 1.x, 2.x, SDXL"
    elif s.families == SD_SCRIPTS_FAMILIES:
        families = "the sd-scripts families (not musubi-tuner's)"
    elif s.families == MUSUBI_FAMILIES:
        families = "the musubi-tuner families"
    else:
        families = ", ".join(map(family_name, s.families))
    if s.gpu_only:
        return f"{families}; GPU only"
    if s.gpu_only_values:
        values = ", ".join(f"`{v}`" for v in s.gpu_only_values[:3]) + (
            ", ..." if len(s.gpu_only_values) > 3 else ""
        )
        return f"{families}; {values} need a GPU"
    return families


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _flags(s: Setting) -> str:
    flags = [s.flag, *s.flags]
    if s.type is bool:
        flags = [f"{f} / --no-{f[2:]}" for f in flags]
    return ", ".join(f"`{f}`" for f in flags)


def _table(settings: tuple[Setting, ...]) -> list[str]:
    rows = [
        "| Setting | CLI flag | Default | Values | Goes to | Applies to | What it does |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for s in settings:
        cells = (f"`{s.name}`", _flags(s), _default(s), _values(s), _target(s), _applies(s), s.help)
        rows.append("| " + " | ".join(_cell(c) for c in cells) + " |")
    return rows


def render_settings_md() -> str:
    """docs/settings.md: every training setting, grouped as the nodes show them."""
    out = [
        "# Training settings",
        "",
        "<!-- Generated from lora_workbench/training/settings.py by `python scripts/generate_settings.py`;",
        "     do not edit by hand (tests/unit/training/test_settings_doc.py fails when this is stale). -->",
        "",
        "Every setting is a widget (on **Kohya LoRA Train** or on one of its option nodes), a",
        "`lora-workbench train` flag and a key of the run's `run.json` (`spec`). Option nodes chain in any",
        "order into the trainer's `options` input; a setting given twice is an error naming both nodes.",
        "The *Goes to* column says what the trainer receives: a key of the run's `config.toml` section, of",
        "the run's copy of the dataset TOML (musubi-tuner: the dataset config the run writes), an",
        "`accelerate launch` option, or nothing (ours only). The SD 1.x to Anima families train with kohya",
        "sd-scripts, Qwen-Image, Wan, Z-Image, FLUX.2, FLUX.1 Kontext, HunyuanVideo 1.5 and FramePack with",
        "kohya musubi-tuner (docs/families.md).",
        f"Model families: {', '.join(map(family_name, FAMILIES))}; a setting given for a family it does",
        "not apply to is refused before launch.",
        "",
    ]
    for group in GROUPS:
        title = f"{group.title} (`{group.node}`)"
        out += [f"## {title}", "", group.help, "", *_table(in_group(group.key)), ""]
    return "\n".join(out)


def render_layout_js() -> str:
    """web/kohya_train_layout.js: the node layout the browser migration reads."""
    body = json.dumps(layout(), indent=2)
    return (
        "// Generated from lora_workbench/training/settings.py by scripts/generate_settings.py; do not edit.\n"
        "// The KohyaLoRATrain layout and its option nodes, for web/train_migration.js.\n"
        f"export const LAYOUT = {body};\n"
    )


def generated_files() -> dict[str, str]:
    """Repo-relative path -> the text it must hold."""
    from . import families_doc

    return {
        "docs/settings.md": render_settings_md(),
        "web/kohya_train_layout.js": render_layout_js(),
        families_doc.PATH: families_doc.render(),
    }


def help_facts(s: Setting) -> str:
    """What a node's help page says after a setting's own help: what the trainer receives, and the
    families (and devices) it applies to, as in docs/settings.md."""
    return f"trainer: {_target(s)}; applies to {_applies(s)}"
