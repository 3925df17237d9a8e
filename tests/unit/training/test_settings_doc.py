"""The generated files (docs/settings.md, web/kohya_train_layout.js) are committed fresh, and every
setting is in the reference, the CLI and the node layout data."""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

from lora_workbench import cli
from lora_workbench.training.node_layout import layout
from lora_workbench.training.settings import SETTINGS
from lora_workbench.training.settings_doc import generated_files

REPO = Path(__file__).resolve().parents[3]


def test_generated_files_are_up_to_date():
    stale = [
        rel for rel, text in generated_files().items() if (REPO / rel).read_text(encoding="utf-8") != text
    ]
    assert not stale, f"stale: {stale}; run `python scripts/generate_settings.py`"


def test_the_generator_script_checks_and_writes():
    proc = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "generate_settings.py"), "--check"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr


def test_every_setting_is_documented_with_its_flag():
    doc = generated_files()["docs/settings.md"]
    for s in SETTINGS:
        assert f"| `{s.name}` | `{s.flag}" in doc, s.name


def _train_parser() -> argparse.ArgumentParser:
    parser = cli.build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return sub.choices["train"]


def test_every_setting_has_a_cli_flag_with_help():
    """The CLI test of the settings table: every flag and alias, with the tooltip as help."""
    actions = {a.dest: a for a in _train_parser()._actions}
    for s in SETTINGS:
        action = actions[s.name]
        assert s.flag in action.option_strings and set(s.flags) <= set(action.option_strings), s.name
        assert s.help.split("(")[0].strip()[:30] in action.help, s.name
        assert action.default == s.default, s.name


def test_every_setting_is_in_the_browser_layout():
    data = layout()
    on_nodes = [n for node in data["option_nodes"] for n in node["widgets"]] + data["main"]["widgets"]
    assert sorted(on_nodes) == sorted(["ckpt_name", *(s.name for s in SETTINGS)])
    assert set(data["defaults"]) == {s.name for s in SETTINGS}
