"""The weights editor shows a video subset: its count with a film icon, its frames and fps in the
cell's title (what the preview route's rows carry), and the videos counted apart from the images."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from lora_workbench.dataset import prepare
from tests.unit.dataset import video_fakes as vf
from tests.unit.dataset.dataset_fakes import make_subset, opts

REPO = Path(__file__).resolve().parents[3]

RUNNER = r"""
import { mediaCell } from "./ext/web/weights_editor.js";
const rows = JSON.parse(process.argv[2]);
console.log(JSON.stringify(rows.map(mediaCell)));
"""


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")
def test_the_editor_marks_a_video_subset_with_an_icon_and_its_frames(tmp_path):
    project = tmp_path / "proj"
    folder = project / "images" / "2_Walk"
    for i, frames in enumerate((33, 81)):
        vf.caption(vf.write_mp4(folder / f"clip{i}.mp4", frames=frames, fps=16))
    make_subset(project, "1_Cat", 3)
    rows = prepare.preview(project, opts())["subsets"]
    (tmp_path / "ext").mkdir()
    shutil.copytree(REPO / "web", tmp_path / "ext" / "web")
    (tmp_path / "scripts").mkdir()
    (tmp_path / "scripts" / "api.js").write_text("export const api = {};\n")
    (tmp_path / "package.json").write_text('{"type": "module"}')
    (tmp_path / "ext" / "package.json").write_text('{"type": "module"}')
    (tmp_path / "run.js").write_text(RUNNER)
    run = subprocess.run(
        ["node", str(tmp_path / "run.js"), json.dumps(rows)], capture_output=True, text=True, timeout=60
    )
    assert run.returncode == 0, run.stderr
    cells = dict(zip([r["name"] for r in rows], json.loads(run.stdout), strict=True))
    assert cells["Walk"] == {
        "text": "2 \U0001f39e",
        "video": True,
        "title": "2 video(s), 33–81 frames, 16 fps; each is one item per repeat",
    }
    assert cells["Cat"] == {"text": "3", "video": False, "title": "3 image(s)"}
