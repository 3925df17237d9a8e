"""Attack: a sample prompt may not make sd-scripts open a file. sd-scripts splits each prompt line at
" --" and reads every part, the prompt's own start included, as an option when it can: `--cn PATH`
opens PATH as a ControlNet image (a file-existence oracle; a FIFO hangs the run). From the settings,
a kohya_ss GUI config, the CLI and the trigger words show_samples samples, such a line is a sentence
naming the line, never a prompts file."""

from __future__ import annotations

import os

import pytest

from lora_workbench.cli import main
from lora_workbench.errors import ValidationError
from lora_workbench.training import command
from lora_workbench.training.backends.sd_scripts import kohya_gui
from lora_workbench.training.options import TrainOptions
from lora_workbench.training.validation import validate
from tests.unit import train_fakes as fakes

FILE_NAMING = [
    "a cat --cn /etc/passwd",
    "a cat --CN /etc/passwd --w 512",
    "a cat --n blurry --Cn ../../secret.png",
    "cn /etc/passwd",
    "CN /etc/passwd, a cat",
    "a cat\ncn /etc/passwd",
    "a cat\rcn /etc/passwd",
    "a cat\r\n  cn /etc/passwd  ",
    "a cat\u2028cn /etc/passwd",
    "a cat\x00 --cn /etc/passwd",
    "a cat --c\x00n /etc/passwd",
]


@pytest.mark.parametrize("prompts", FILE_NAMING, ids=[repr(p) for p in FILE_NAMING])
def test_a_sample_prompt_naming_a_file_is_refused(prompts):
    with pytest.raises(ValidationError, match=r"(?i)sample_prompts line \d+: .*--cn.* may not name files"):
        validate(TrainOptions(sample_prompts=prompts))


@pytest.mark.parametrize(
    "prompts",
    ["a cat --n cnn --ss euler", "cnn news anchor", "a cat --cnx y", "a cat -- cn x", "a cat\t--cn x"],
)
def test_prompts_that_sd_scripts_reads_without_a_file_pass(prompts):
    validate(TrainOptions(sample_prompts=prompts))


def test_the_refusal_names_the_line_and_the_path():
    with pytest.raises(ValidationError) as err:
        validate(TrainOptions(sample_prompts="a dog\n\n# note\na cat --cn /srv/x.png"))
    assert str(err.value).startswith("sample_prompts line 4: the option --cn ")
    assert "'/srv/x.png'" in str(err.value)


def test_a_kohya_gui_config_with_a_file_naming_prompt_refuses_the_prompts():
    result = kohya_gui.import_config({"sample_prompts": "a cat --cn /etc/passwd", "epoch": 4})
    assert "sample_prompts" not in result.values
    assert dict(result.refused)["sample_prompts"].startswith("sample_prompts line 1: the option --cn")


def test_trigger_words_read_as_a_file_option_never_reach_the_prompts_file():
    # show_samples samples the class tokens, which come from the dataset's folder names
    opts = TrainOptions(show_samples=True, sample_prompts="anna\ncn /etc/passwd")
    with pytest.raises(ValidationError, match="sample prompt 2: .*--cn"):
        command.sample_prompts_text(opts)


def test_the_cli_refuses_a_prompt_naming_a_fifo_before_anything_runs(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("LORA_WORKBENCH_SETTINGS", str(tmp_path / "none.json"))
    fakes.make_kohya(tmp_path, monkeypatch)
    project = fakes.make_project(tmp_path)
    ckpt = fakes.write_checkpoint(tmp_path / "sd15.safetensors", fakes.sd1_tensors())
    fifo = tmp_path / "hang.png"
    os.mkfifo(fifo)
    args = ["train", str(project), "--base", str(ckpt), "--launcher", "python"]
    rc = main([*args, "--sample-prompts", f"a cat --cn {fifo}"])
    err = capsys.readouterr().err
    assert (
        rc == 1
        and err.strip().startswith("error: sample_prompts line 1: the option --cn")
        and "Traceback" not in err
    )
    assert not (project / "output").exists()
