"""Node KohyaGuiConfigOptions: a kohya_ss GUI preset or saved config as training options.

Thin adapter over training/backends/sd_scripts/kohya_gui.py (the GUI drives sd-scripts): the preset
list comes from the configured kohya_ss GUI checkout (KOHYA_SS_GUI_PATH, or KOHYA_SS_PATH when it is
one); a config file named by the workflow must lie inside the allowed roots. Its settings become the
chain's base: they replace the trainer's widgets left at their defaults; option nodes anywhere in
the chain and widgets moved off their defaults win over them (kohya_lora_train.collect_options). The
text output lists every key as used, mapped, overridden, refused or skipped (with the reason); a
refused key stops the run at the trainer unless an explicit setting settles it or
ignore_unsupported_keys is on.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from ..lora_workbench import paths
from ..lora_workbench.errors import ValidationError
from ..lora_workbench.training import node_layout
from . import _comfy

if TYPE_CHECKING:
    from ..lora_workbench.training.backends.sd_scripts.kohya_gui import GuiImport

NO_PRESET = "(none)"


def _presets() -> dict:
    # The importer (and the options and validation it brings) loads when the node is listed or run,
    # not when ComfyUI imports the pack.
    from ..lora_workbench.training.backends.sd_scripts import kohya_gui

    try:
        return kohya_gui.presets(paths.kohya_ss_gui_path())
    except Exception:  # a broken settings file must not break the node list
        return {}


def load(preset: str, config_file: str) -> GuiImport:
    """The chosen preset (from the GUI checkout) or the config file (confined); one of them."""
    from ..lora_workbench.training.backends.sd_scripts import kohya_gui

    if preset not in ("", NO_PRESET) and config_file.strip():
        raise ValidationError("Pick a preset or give a config_file, not both.")
    if config_file.strip():
        if not config_file.strip().lower().endswith(".json"):
            raise ValidationError(f"The kohya_ss config {paths.shown(config_file)} is not a .json file.")
        # Opened inside the roots (no-follow, what was opened checked) and parsed from that descriptor.
        return kohya_gui.import_file(config_file, confined=True)
    found = _presets()
    if preset in ("", NO_PRESET):
        raise ValidationError("Pick a kohya_ss preset or give a config_file (a GUI .json).")
    if preset not in found:
        raise ValidationError(
            f"The kohya_ss preset {preset!r} is not in {paths.kohya_ss_gui_path()}/presets/lora; pick one "
            f"from the list (set KOHYA_SS_GUI_PATH to your kohya_ss GUI folder)."
        )
    return kohya_gui.import_file(found[preset])


class KohyaGuiConfigOptions:
    """A kohya_ss GUI preset or config as the base of the training options."""

    DESCRIPTION = (
        "Imports a kohya_ss GUI LoRA preset (from your kohya_ss folder) or a saved GUI config (.json): "
        "its settings replace Kohya LoRA Train's widgets left at their defaults; option nodes in the "
        "chain and widgets you changed win over them. The text lists every key as used, mapped, "
        "overridden, refused (it changes training and cannot be given as meant: the run stops unless "
        "you set it or turn on ignore_unsupported_keys) or skipped (it changes nothing), with the reason."
    )
    CATEGORY = f"{_comfy.CATEGORY}/training/options"
    FUNCTION = "collect"
    RETURN_TYPES = (node_layout.OPTIONS_TYPE, "STRING")
    RETURN_NAMES = ("options", "report")
    OUTPUT_TOOLTIPS = (
        "The options received plus the config's settings (as the chain's base): connect to another "
        "option node or to Kohya LoRA Train's `options`.",
        "What became of each key of the config: used, mapped or skipped (and why).",
    )

    @classmethod
    def INPUT_TYPES(cls):
        names = [NO_PRESET, *sorted(_presets())]
        return {
            "required": {
                "preset": (
                    names,
                    {
                        "default": NO_PRESET,
                        "tooltip": "A LoRA preset of the kohya_ss GUI (presets/lora in KOHYA_SS_GUI_PATH, "
                        "or in KOHYA_SS_PATH when that is the GUI).",
                    },
                ),
                "config_file": (
                    "STRING",
                    {
                        "default": "",
                        "tooltip": "Or a kohya_ss GUI config (.json) inside the allowed roots, e.g. one the "
                        "GUI saved beside a run.",
                    },
                ),
                # Appended last: a saved workflow's two values still fill preset and config_file.
                "ignore_unsupported_keys": (
                    "BOOLEAN",
                    {
                        "default": False,
                        "tooltip": "Train without the config's keys this pack cannot give as meant (listed as "
                        "refused) instead of stopping on them. Off: set those settings on an option node, "
                        "or change the config.",
                    },
                ),
            },
            "optional": {
                node_layout.OPTIONS_INPUT: (
                    node_layout.OPTIONS_TYPE,
                    {"tooltip": "Options from another Kohya ... Options node; they win over the config."},
                ),
            },
            "hidden": {"unique_id": "UNIQUE_ID"},
        }

    @classmethod
    def IS_CHANGED(cls, preset=NO_PRESET, config_file="", **_kw):
        # The file can change on disk under the same name: re-import when it does.
        try:
            if not config_file.strip():
                path = _presets()[preset]
                st = path.stat()
                return f"{path}:{st.st_size}:{st.st_mtime_ns}"
            with paths.open_file(config_file, what="kohya_ss config file") as f:
                st = os.fstat(f.fd)  # what was opened and checked, not what the name points to now
                return f"{f.path}:{st.st_size}:{st.st_mtime_ns}"
        except Exception:
            return ""

    def collect(
        self, preset=NO_PRESET, config_file="", ignore_unsupported_keys=False, options=None, unique_id=None
    ):
        from ..lora_workbench.training.options import OptionSet

        imported = load(preset, config_file)
        received = options if isinstance(options, OptionSet) else OptionSet()
        source = f"kohya_ss config {imported.source} (node {unique_id})"
        chained = received.with_base(imported.values, source, imported, bool(ignore_unsupported_keys))
        text = imported.report(received.explicit()) + "\n" + _LATER
        if imported.open_refusals(received.explicit()) and ignore_unsupported_keys:
            text += "\n  ignore_unsupported_keys is on: training goes on without the refused keys."
        return {"ui": {"text": [text]}, "result": (chained, text)}


_LATER = (
    "  (option nodes chained after this one, and Kohya LoRA Train's widgets moved off their defaults, "
    "win over the config too; a refused key stops the run unless one of them sets it)"
)


NODE_CLASS_MAPPINGS = {"KohyaGuiConfigOptions": KohyaGuiConfigOptions}
NODE_DISPLAY_NAME_MAPPINGS = {"KohyaGuiConfigOptions": "Kohya GUI Config Options"}
