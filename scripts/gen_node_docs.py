"""Write the node help pages ComfyUI's frontend shows in its node help panel: web/docs/<NodeName>.md.

Each page is generated from the node class itself (DESCRIPTION, INPUT_TYPES with defaults, bounds,
choices and tooltips, RETURN_NAMES/RETURN_TYPES/OUTPUT_TOOLTIPS), for the trainer and its option
nodes also from the training settings table (lora_workbench/training/settings.py: what sd-scripts
receives, which model families), plus a hand-written fragment in docs/node_help/<NodeName>.md (the
typical chain, the FAQ), so a widget's help can never drift from the widget.
tests/unit/nodes/test_node_docs.py fails when a committed page is stale.

    python scripts/gen_node_docs.py            # rewrite web/docs/*.md
    python scripts/gen_node_docs.py --check    # exit 1 when a page is stale
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import os
import sys
from collections.abc import Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PAGES = REPO / "web" / "docs"
FRAGMENTS = REPO / "docs" / "node_help"
PACKAGE = "lora_workbench_docs_pack"
FILE_PLACEHOLDER = "\0files:"  # stands for "the files in ComfyUI's <category> folders"
# Environment that would put this machine's paths into a default (the library, A1111, Forge).
_ENV_KEYS = (
    "SD_MODELS_PATH",
    "COMFYUI_PATH",
    "A1111_PATH",
    "FORGE_PATH",
    "KOHYA_SS_PATH",
    "KOHYA_SS_GUI_PATH",
    "KOHYA_PYTHON",
)


# --------------------------------------------------------------------------- a neutral machine
@contextlib.contextmanager
def neutral_machine(pack) -> Iterator[None]:
    """Render as on a machine with no settings, home "~" and file lists shown as placeholders, so
    the pages are the same wherever they are generated."""
    saved = {k: os.environ.get(k) for k in (*_ENV_KEYS, "HOME", "USERPROFILE", "LORA_WORKBENCH_SETTINGS")}
    comfy = pack.nodes._comfy
    real_list = comfy.get_filename_list
    try:
        for k in _ENV_KEYS:
            os.environ.pop(k, None)
        os.environ.update(HOME="~", USERPROFILE="~", LORA_WORKBENCH_SETTINGS=os.devnull + ".missing")
        comfy.get_filename_list = lambda category: [FILE_PLACEHOLDER + category]
        yield
    finally:
        comfy.get_filename_list = real_list
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


# --------------------------------------------------------------------------- rendering
def inline(text: object) -> str:
    """Text on one Markdown line (`<name>` would be read as an HTML tag and vanish)."""
    return " ".join(str(text).split()).replace("<", "&lt;").replace(">", "&gt;")


def number(v: object) -> str:
    if isinstance(v, bool):
        return "on" if v else "off"
    if isinstance(v, float):
        return f"{v:g}"
    return str(v)


def describe_type(kind: object) -> tuple[str, str]:
    """(type shown, choices) for an input's type: a name, or a list of choices (a combo)."""
    if not isinstance(kind, (list, tuple)):
        return str(kind), ""
    # A placeholder may carry a prefix (the trainer's "diffusion_models/" names): the folder is after it.
    files = [str(c).split(FILE_PLACEHOLDER, 1)[1] for c in kind if FILE_PLACEHOLDER in str(c)]
    fixed = [str(c) for c in kind if FILE_PLACEHOLDER not in str(c)]
    parts = []
    if fixed:  # a long list as plain text: code spans wrap badly in the narrow help panel
        parts.append("one of " + ", ".join(f"`{c}`" if len(fixed) <= 6 else c for c in fixed))
    if files:
        parts.append(("or " if fixed else "") + f"a file from ComfyUI's {' or '.join(files)} folders")
    return "choice", " ".join(parts)


def facts(kind: object, opts: dict) -> str:
    """ "INT, default `3`, 1 – 10000": the type, the default and the bounds or choices."""
    shown, choices = describe_type(kind)
    out = [shown]
    if choices:
        out.append(choices)
    if "default" in opts:
        d = opts["default"]
        out.append("default empty" if d == "" else f"default `{number(d)}`")
    if "min" in opts and "max" in opts:
        out.append(f"{number(opts['min'])} – {number(opts['max'])}")
    return ", ".join(out)


def input_lines(group: dict, settings: dict) -> list[str]:
    """One line per input; a training setting also says what sd-scripts receives (from the settings
    table, the same source as the widget)."""
    lines = []
    for name, spec in group.items():
        kind, opts = (spec[0], spec[1] if len(spec) > 1 else {}) if isinstance(spec, tuple) else (spec, {})
        tip = inline(opts.get("tooltip", ""))
        line = f"- **`{name}`** ({facts(kind, opts)})" + (f": {tip}" if tip else "")
        if name in settings:
            line += f" *{inline(settings[name])}.*"
        lines.append(line)
    return lines


def output_lines(cls) -> list[str]:
    names = getattr(cls, "RETURN_NAMES", None) or cls.RETURN_TYPES
    tips = getattr(cls, "OUTPUT_TOOLTIPS", None) or [""] * len(cls.RETURN_TYPES)
    return [
        f"- **`{name}`** ({kind})" + (f": {inline(tip)}" if tip else "")
        for name, kind, tip in zip(names, cls.RETURN_TYPES, tips, strict=False)
    ]


def split_fragment(text: str) -> tuple[str, str]:
    """(intro, sections): the fragment's text before its first `## ` heading, and the rest."""
    lines = text.strip().splitlines()
    first = next((i for i, ln in enumerate(lines) if ln.startswith("## ")), len(lines))
    return "\n".join(lines[:first]).strip(), "\n".join(lines[first:]).strip()


def option_chain(display: str) -> str:
    """The typical chain of an option node (generated: every option node chains the same way)."""
    return (
        f"## Typical chain\n\n**{display}** `options` → **Kohya LoRA Train** `options`, or into another "
        "*Kohya ... Options* node first: option nodes chain in any order, each adds its settings and "
        "passes the rest on. A setting given on two nodes is an error that names both."
    )


def render_page(name: str, cls, display: str, fragment: str, settings: dict | None = None) -> str:
    """The help page of one node class; `settings` maps its training settings to their facts."""
    settings = settings or {}
    types = cls.INPUT_TYPES()
    intro, sections = split_fragment(fragment)
    if name.startswith("Kohya") and name.endswith("Options") and "## Typical chain" not in sections:
        sections = (option_chain(display) + "\n\n" + sections).strip()
    out = [
        f"<!-- Generated by scripts/gen_node_docs.py from the {name} node and docs/node_help/{name}.md:"
        " edit those and run the script; do not edit this file. -->",
        f"# {display}",
        "",
        f"`{name}` · category *{cls.CATEGORY}*",
        "",
        inline(getattr(cls, "DESCRIPTION", "")),
    ]
    if intro:
        out += ["", intro]
    required, optional = types.get("required", {}), types.get("optional", {})
    out += ["", "## Inputs", "", *input_lines(required, settings)]
    if optional and required:
        out += ["", "### Optional inputs", "", "Left at their defaults unless you change them.", ""]
    out += input_lines(optional, settings)
    out += ["", "## Outputs", "", *output_lines(cls)]
    if sections:
        out += ["", sections]
    return "\n".join(out) + "\n"


def setting_facts(pack) -> dict[str, dict[str, str]]:
    """{node name: {setting: facts}} from the training settings table (the trainer's option groups)."""
    core = importlib.import_module(f"{pack.__name__}.lora_workbench.training.settings")
    doc = importlib.import_module(f"{pack.__name__}.lora_workbench.training.settings_doc")
    out: dict[str, dict[str, str]] = {}
    for group in core.GROUPS:
        out[group.node] = {s.name: doc.help_facts(s) for s in core.in_group(group.key)}
    return out


def render_all(pack) -> dict[str, str]:
    """{NodeName: page text} for every node the pack registers."""
    pages = {}
    facts_by_node = setting_facts(pack)
    with neutral_machine(pack):
        for name, cls in sorted(pack.NODE_CLASS_MAPPINGS.items()):
            fragment_path = FRAGMENTS / f"{name}.md"
            fragment = fragment_path.read_text(encoding="utf-8") if fragment_path.is_file() else ""
            display = pack.NODE_DISPLAY_NAME_MAPPINGS.get(name, name)
            pages[name] = render_page(name, cls, display, fragment, facts_by_node.get(name))
    return pages


# --------------------------------------------------------------------------- command line
def load_pack():
    """The pack imported as ComfyUI imports it (a package, so its relative imports work)."""
    if PACKAGE in sys.modules:
        return sys.modules[PACKAGE]
    spec = importlib.util.spec_from_file_location(
        PACKAGE, REPO / "__init__.py", submodule_search_locations=[str(REPO)]
    )
    module = importlib.util.module_from_spec(spec)
    sys.modules[PACKAGE] = module
    spec.loader.exec_module(module)
    return module


def stale_pages(pages: dict[str, str]) -> list[str]:
    """Pages whose committed file differs from what the nodes generate, and pages no node has."""
    stale = [n for n, text in pages.items() if _read(PAGES / f"{n}.md") != text]
    orphans = [p.stem for p in PAGES.glob("*.md") if p.stem not in pages]
    return stale + orphans


def _read(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8")
    except OSError:
        return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 when a page is stale; write nothing")
    args = parser.parse_args(argv)
    pages = render_all(load_pack())
    stale = stale_pages(pages)
    if args.check:
        for name in stale:
            print(f"stale: web/docs/{name}.md")
        return 1 if stale else 0
    PAGES.mkdir(parents=True, exist_ok=True)
    for name, text in pages.items():
        (PAGES / f"{name}.md").write_text(text, encoding="utf-8", newline="\n")
    for name in stale:
        if name not in pages:
            (PAGES / f"{name}.md").unlink()
    print(f"wrote {len(pages)} pages to {PAGES.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
