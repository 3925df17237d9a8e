"""Attacks by records planted in a shared project on what training reads back: the training cache and
resume. A run.json naming files outside its run folder, a run.json or train_state.json that is a link,
odd loss points, a train_state.json swapped for a FIFO after it was looked at. Nothing outside the run
folder is handed on, nothing is read through a link, nothing blocks or raises a traceback."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import pytest

from lora_workbench.dataset import dataset_toml
from lora_workbench.errors import ValidationError
from lora_workbench.training import resume, train
from tests.unit.training.test_train import launches, setup, spec  # noqa: F401 (setup is a fixture)


class Blocked(Exception):
    pass


@pytest.fixture
def first_run(setup, tmp_path_factory):  # noqa: F811
    project, ckpt, launch_file = setup
    run = train.train(spec(), dataset_toml.load_project_dataset(project), ckpt)
    outside = tmp_path_factory.mktemp("outside")
    for name in ("secret.safetensors", "secret.png", "p1.safetensors"):
        (outside / name).write_bytes(b"outside")
    return Path(run.run_dir), outside, (project, ckpt, launch_file)


def edit_record(run_dir: Path, **changes) -> None:
    rec = json.loads((run_dir / "run.json").read_text())
    rec.update(changes)
    (run_dir / "run.json").write_text(json.dumps(rec))


def train_again(setup_values):
    project, ckpt, _ = setup_values
    return train.train(spec(), dataset_toml.load_project_dataset(project), ckpt)


def test_a_cached_record_naming_an_outside_lora_is_not_reused(first_run):
    run_dir, outside, setup_values = first_run
    rec = json.loads((run_dir / "run.json").read_text())
    edit_record(run_dir, trained_lora={**rec["trained_lora"], "path": str(outside / "secret.safetensors")})
    again = train_again(setup_values)
    assert not again.cached and launches(setup_values[2]) == 2
    assert str(outside) not in json.dumps(again.lora.to_dict())


def test_a_cached_record_s_files_are_taken_from_its_run_folder_only(first_run):
    run_dir, outside, setup_values = first_run
    rec = json.loads((run_dir / "run.json").read_text())
    lora = {**rec["trained_lora"], "path": str(outside / "p1.safetensors"), "log_path": "/etc/passwd"}
    edit_record(
        run_dir,
        trained_lora=lora,
        loss_curve=str(outside / "secret.png"),
        samples=[str(outside / "secret.png"), "/etc/passwd"],
    )
    again = train_again(setup_values)
    assert again.cached and again.lora.path == str(run_dir / "p1.safetensors")
    assert (
        again.loss_curve == "" and again.samples == [] and again.lora.log_path == str(run_dir / "train.log")
    )


@pytest.mark.parametrize("losses", [5, {}, [None], [["1", "x"]], "abc"])
def test_a_cached_record_with_odd_loss_points_is_reused_without_them(first_run, losses):
    run_dir, _, setup_values = first_run
    edit_record(run_dir, losses=losses, status=5)
    again = train_again(setup_values)
    assert again.cached and again.losses == []


def test_a_cached_record_that_is_a_link_is_not_followed(first_run):
    run_dir, outside, setup_values = first_run
    (run_dir / "run.json").rename(outside / "run.json")
    (run_dir / "run.json").symlink_to(outside / "run.json")
    again = train_again(setup_values)
    assert not again.cached and launches(setup_values[2]) == 2


def test_a_run_record_that_is_a_link_is_not_resumed(first_run):
    run_dir, outside, _ = first_run
    (run_dir / "run.json").rename(outside / "run.json")
    (run_dir / "run.json").symlink_to(outside / "run.json")
    with pytest.raises(ValidationError, match="no readable run.json .*symbolic link"):
        resume.find_point("latest", run_dir.parent, "p1")


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs here")
def test_a_train_state_swapped_for_a_fifo_after_it_was_looked_at_never_blocks(tmp_path, monkeypatch):
    state = tmp_path / "p1-000001-state"
    state.mkdir()
    (state / resume.COMPLETE_MARK).write_bytes(b"x")
    target = state / "train_state.json"
    target.write_text(json.dumps({"current_epoch": 1, "current_step": 4}))
    real_lstat = os.lstat

    def lstat_then_swap(path, *args, **kwargs):
        got = real_lstat(path, *args, **kwargs)
        if str(path) == str(target) and not target.is_fifo():
            target.unlink()
            os.mkfifo(target)
        return got

    def _alarm(*_):
        raise Blocked("blocked on a FIFO")  # not an OSError: the reader must not swallow it

    monkeypatch.setattr(os, "lstat", lstat_then_swap)
    previous = signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(10)
    try:
        found = resume.saved_states(tmp_path, "p1")
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
    assert [(s.epoch, s.step) for s in found] in ([], [(1, 4)])
