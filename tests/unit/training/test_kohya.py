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


OFFLINE_LOG = [
    "Traceback (most recent call last):",
    "huggingface_hub.errors.OfflineModeIsEnabled: Cannot reach https://huggingface.co/api/models/google/t5-v1_1-xxl: "
    "offline mode is enabled. To disable it, please unset the `HF_HUB_OFFLINE` environment variable.",
    "OSError: We couldn't connect to 'https://huggingface.co' to load the files, and couldn't find them in the "
    "cached files. Check your internet connection or see how to run the library in offline mode. "
    "Can't load tokenizer for 'google/t5-v1_1-xxl'.",
]


def test_an_offline_tokenizer_failure_names_the_folder_to_fill(tmp_path):
    hint = kohya.offline_tokenizer_hint(OFFLINE_LOG, str(tmp_path / "tok"))
    assert f"put its files in {tmp_path / 'tok' / 'google_t5-v1_1-xxl'}" in hint
    assert "google/t5-v1_1-xxl from the Hugging Face Hub while offline" in hint


def test_an_offline_failure_without_a_tokenizer_folder_says_what_to_set():
    assert "set LORA_WORKBENCH_TOKENIZER_CACHE" in kohya.offline_tokenizer_hint(OFFLINE_LOG, "")


def test_other_failures_get_no_tokenizer_hint():
    assert kohya.offline_tokenizer_hint(["RuntimeError: CUDA out of memory"], "/tok") == ""
