"""A full disk as one sentence: which errors count, what the sentence says, what a trainer's log says."""

from __future__ import annotations

import errno

import pytest

from lora_workbench import disk
from lora_workbench.errors import DiskFull, WorkbenchError

TORCH_FULL = (
    "RuntimeError: [enforce fail at inline_container.cc:595] . PytorchStreamWriter failed writing file "
    "data/2: file write failed"
)
SAFETENSORS_FULL = (
    "safetensors_rust.SafetensorError: Error while serializing: IoError(Os { code: 28, kind: StorageFull, "
    'message: "No space left on device" })'
)


@pytest.mark.parametrize("code", sorted(disk.FULL_ERRNOS))
def test_a_full_disk_or_quota_is_a_sentence_naming_the_file_and_the_free_space(tmp_path, code):
    target = tmp_path / "run.json"
    with pytest.raises(DiskFull) as exc, disk.said_if_full(target):
        raise OSError(code, "no room")
    said = str(exc.value)
    assert said.startswith(f"The disk is full: {target} could not be written (no room); ")
    assert " free there. Free some space on that disk" in said
    assert isinstance(exc.value, WorkbenchError) and exc.value.errno == code  # and still an OSError


def test_other_write_errors_pass_unchanged(tmp_path):
    with pytest.raises(PermissionError), disk.said_if_full(tmp_path / "x"):
        raise PermissionError(errno.EACCES, "denied")


def test_sd_scripts_saying_no_space_is_a_full_disk(tmp_path):
    assert disk.full_in_log(["Traceback (most recent call last):", SAFETENSORS_FULL], tmp_path)


def test_torch_failing_to_write_is_a_full_disk_only_when_little_space_is_left(tmp_path, monkeypatch):
    monkeypatch.setattr(disk, "free_bytes", lambda _p: 10 << 20)
    assert "file write failed" in disk.full_in_log([TORCH_FULL], tmp_path)
    monkeypatch.setattr(disk, "free_bytes", lambda _p: 50 << 30)
    assert disk.full_in_log([TORCH_FULL], tmp_path) == ""


def test_a_failed_atomic_write_leaves_the_old_file_and_no_temporary_one(tmp_path, monkeypatch):
    import os

    target = tmp_path / "config.toml"
    target.write_text("old")

    def full(_fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(DiskFull, match="config.toml could not be written"):
        disk.write_atomic(target, "new")
    assert [p.name for p in tmp_path.iterdir()] == ["config.toml"] and target.read_text() == "old"
