"""Finding the user's sd-scripts checkout and its Python, and the TOML writer the configs use."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from lora_workbench import toml_writer
from lora_workbench.dataset.dataset_toml import tomllib
from lora_workbench.errors import ValidationError
from lora_workbench.training import kohya
from tests.unit import train_fakes

fakes = train_fakes  # shared fakes: synthetic checkpoints, projects, a fake sd-scripts tree


def test_finds_sd_scripts_inside_a_kohya_ss_checkout(tmp_path, monkeypatch):
    monkeypatch.setenv("LORA_WORKBENCH_SETTINGS", str(tmp_path / "none.json"))
    base = fakes.make_kohya(tmp_path, monkeypatch, layout="kohya_ss")
    inst = kohya.find_install()
    assert inst.scripts_dir == base / "sd-scripts" and inst.python == Path(sys.executable)


def test_missing_kohya_and_python_are_sentences(tmp_path, monkeypatch):
    monkeypatch.setenv("LORA_WORKBENCH_SETTINGS", str(tmp_path / "none.json"))
    monkeypatch.setenv("KOHYA_SS_PATH", str(tmp_path / "nowhere"))
    with pytest.raises(
        ValidationError,
        match="does not exist. Install sd-scripts with Settings -> LoRA Workbench -> Install sd-scripts",
    ):
        kohya.find_install()
    (tmp_path / "empty").mkdir()
    monkeypatch.setenv("KOHYA_SS_PATH", str(tmp_path / "empty"))
    with pytest.raises(ValidationError, match="neither train_network.py nor sd-scripts/train_network.py"):
        kohya.find_install()
    fakes.make_kohya(tmp_path, monkeypatch)
    monkeypatch.delenv("KOHYA_PYTHON")
    with pytest.raises(ValidationError, match="No python found for sd-scripts .* set KOHYA_PYTHON"):
        kohya.find_install()
    venv_py = tmp_path / "sd-scripts" / "venv" / "bin" / "python"
    venv_py.parent.mkdir(parents=True)
    venv_py.write_text("")
    if os.name != "nt":
        assert kohya.find_install().python == venv_py
    monkeypatch.setenv("KOHYA_PYTHON", str(tmp_path / "nope" / "python"))
    with pytest.raises(ValidationError, match="KOHYA_PYTHON=.* does not exist"):
        kohya.find_install()


def test_toml_writer_round_trips_nested_tables_and_escapes():
    data = {
        "general": {"caption_extension": ".txt", "flag": True},
        "datasets": [
            {
                "resolution": [64, 64],
                "batch_size": 1,
                "subsets": [{"image_dir": 'C:\\data\\"x"\n', "num_repeats": 2, "w": 1e-05}],
            }
        ],
    }
    assert tomllib.loads(toml_writer.dumps(data)) == data
