"""The shape checks on UI-format workflows (lora_workbench.ui_workflow) refuse nothing the real ComfyUI
frontend writes: every workflow template installed with ComfyUI (comfyui_workflow_templates, subgraphs
among them) passes the checks, the layout migration and, without subgraphs, the converter's shape
checks. No server runs."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from lora_workbench.client import workflow as wf
from lora_workbench.training.node_layout import migrate_workflow
from lora_workbench.ui_workflow import checked_graphs

pytestmark = pytest.mark.integration

WHERE = "import comfyui_workflow_templates, os; print(os.path.dirname(comfyui_workflow_templates.__file__))"


@pytest.fixture(scope="module")
def templates(comfy_python) -> list[Path]:
    proc = subprocess.run([str(comfy_python), "-c", WHERE], capture_output=True, text=True)
    if proc.returncode != 0:
        pytest.skip(f"ComfyUI's python has no comfyui_workflow_templates: {proc.stderr[-300:]}")
    found = sorted((Path(proc.stdout.strip()) / "templates").glob("*.json"))
    return [p for p in found if isinstance(json.loads(p.read_text(encoding="utf-8")), dict)]


def test_every_comfyui_workflow_template_passes_the_shape_checks(templates):
    checked = with_subgraphs = 0
    for path in templates:
        ui = json.loads(path.read_text(encoding="utf-8"))
        if not wf.is_ui_format(ui):
            continue
        graphs = checked_graphs(ui)
        assert migrate_workflow(ui) == (ui, []), path.name
        if len(graphs) == 1:
            wf._check_convertible(ui)
        checked += 1
        with_subgraphs += len(graphs) > 1
    print(f"{checked} templates pass, {with_subgraphs} of them with subgraphs")
    assert checked > 50 and with_subgraphs > 0
