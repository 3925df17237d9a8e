"""Attack: pattern checks on training settings are full matches. A trailing newline (Python's `$`
matches before it) or a second line must not pass output_name, caption_extension, gpu_ids or
main_process_ip, through the core or the CLI."""

from __future__ import annotations

import pytest

from lora_workbench.cli import main
from lora_workbench.errors import ValidationError
from lora_workbench.training import validation
from lora_workbench.training.options import TrainOptions
from tests.unit import train_fakes as fakes

SUFFIXES = ["\n", "\n--logging_dir=/tmp/evil", "\r", " ", "\x00"]
FIELDS = {
    "output_name": ("anna", {}),
    "caption_extension": (".txt", {}),
    "gpu_ids": ("0,1", {}),
    "main_process_ip": ("192.168.1.10", {"num_machines": 2, "launcher": "accelerate"}),
}
CASES = [(f, s) for f in FIELDS for s in SUFFIXES]


@pytest.mark.parametrize(("field", "suffix"), CASES, ids=[f"{f}+{s!r}" for f, s in CASES])
def test_a_trailing_line_never_passes_a_pattern_check(field, suffix):
    good, extra = FIELDS[field]
    validation.validate(TrainOptions(**{field: good}, **extra))  # the plain value passes
    with pytest.raises(ValidationError, match=field):
        validation.validate(TrainOptions(**{field: good + suffix}, **extra))


@pytest.mark.parametrize("flag", ["--output-name", "--caption-extension", "--gpu-ids"])
def test_the_cli_refuses_a_trailing_newline_in_one_line(tmp_path, monkeypatch, capsys, flag):
    monkeypatch.setenv("LORA_WORKBENCH_SETTINGS", str(tmp_path / "none.json"))
    fakes.make_kohya(tmp_path, monkeypatch)
    project = fakes.make_project(tmp_path)
    ckpt = fakes.write_checkpoint(tmp_path / "sd15.safetensors", fakes.sd1_tensors())
    value = {"--output-name": "anna\n", "--caption-extension": ".txt\n", "--gpu-ids": "0\n"}[flag]
    rc = main(["train", str(project), "--base", str(ckpt), "--launcher", "python", flag, value])
    err = capsys.readouterr().err
    assert rc == 1 and err.strip().startswith("error: ") and "Traceback" not in err
    assert flag[2:].replace("-", "_") in err
    assert not (project / "output").exists()  # refused before anything ran
