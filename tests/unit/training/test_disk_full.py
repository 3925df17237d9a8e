"""Runs that fail honestly on a full disk: one sentence (which file, that the disk is full, what is
free, what to do), run.json marked failed, and no cut-off LoRA, loss curve or half-written file left
where a loader, link-trained, a continued run or the cache would take it for a whole one."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from lora_workbench import events
from lora_workbench.dataset import dataset_toml
from lora_workbench.errors import DiskFull, ValidationError, WorkbenchError
from lora_workbench.library import linker
from lora_workbench.training import train
from lora_workbench.training.options import TrainOptions
from tests.unit import train_fakes as fakes
from tests.unit.full_disk import fill_disk_for, temp_files

SENTENCE = (
    r"The disk is full: .* could not be written \(.*\); [\d.]+ [KMGT]?B(ytes)? free there\. Free some space"
)


@pytest.fixture
def setup(tmp_path, monkeypatch):
    monkeypatch.setenv("LORA_WORKBENCH_SETTINGS", str(tmp_path / "none.json"))
    monkeypatch.setenv("LORA_WORKBENCH_CACHE_DIR", str(tmp_path / "cache"))
    fakes.make_kohya(tmp_path, monkeypatch)
    project = fakes.make_project(tmp_path)
    ckpt = fakes.write_checkpoint(tmp_path / "models" / "sd15.safetensors", fakes.sd1_tensors())
    for var in ("FAKE_SD_FAIL", "FAKE_SD_NO_FILE", "FAKE_SD_SLEEP", "FAKE_SD_CRASH_AT_EPOCH"):
        monkeypatch.delenv(var, raising=False)
    comfy = tmp_path / "ComfyUI"
    (comfy / "models" / "loras").mkdir(parents=True)
    return project, ckpt, comfy


def spec(**kw) -> TrainOptions:
    base = dict(
        epochs=2, width=64, height=64, network_dim=4, network_alpha=4, device="cpu", launcher="python"
    )
    return TrainOptions(**{**base, **kw})


def dataset(project):
    return dataset_toml.load_project_dataset(project)


def test_a_run_that_could_not_write_its_lora_is_marked_failed_with_one_sentence(setup, monkeypatch):
    project, ckpt, comfy = setup
    monkeypatch.setenv("FAKE_SD_DISK_FULL", "1")
    with pytest.raises(WorkbenchError) as exc:
        train.train(spec(link_to_library=True), dataset(project), ckpt, ui_dirs={"comfyui": comfy})
    run_dir = project / "output" / "p1-001"
    said = f"Training p1-001 failed: The disk is full: sd-scripts could not write {run_dir} (No space left on device)"
    assert str(exc.value).startswith(said) and "free there. Free some space on that disk" in str(exc.value)
    record = json.loads((run_dir / "run.json").read_text())
    assert record["state"] == "failed" and record["error"].startswith(
        f"The disk is full: sd-scripts could not write {run_dir}"
    )
    assert record["removed_cut_off"] == ["p1.safetensors"]
    status = events.latest(events.TRAIN)
    assert status["state"] == "failed" and status["message"].startswith("The disk is full:")


def test_a_cut_off_lora_is_not_left_to_link_load_or_reuse(setup, monkeypatch):
    project, ckpt, comfy = setup
    monkeypatch.setenv("FAKE_SD_DISK_FULL", "1")
    with pytest.raises(WorkbenchError):
        train.train(spec(link_to_library=True), dataset(project), ckpt, ui_dirs={"comfyui": comfy})
    run_dir = project / "output" / "p1-001"
    whole = ["p1-000001.safetensors"]  # the epoch saved before the disk filled stays
    assert sorted(p.name for p in run_dir.glob("*.safetensors")) == whole
    linker.link_trained(project, {"comfyui": comfy})
    linked = (comfy / "models" / "loras").rglob("*.safetensors")  # what LoadTrainedLoRA's list offers
    assert sorted(p.name for p in linked) == whole
    assert train.find_cached(dataset(project), train.plan(spec(), dataset(project), ckpt).fingerprint) is None


def test_a_cut_off_lora_is_never_continued_from(setup, tmp_path):
    project, ckpt, _ = setup
    cut = fakes.write_checkpoint(
        tmp_path / "cut.safetensors", {"lora_unet_x.lora_down.weight": ("F16", [4, 320])}
    )
    os.truncate(cut, cut.stat().st_size - 100)
    with pytest.raises(ValidationError, match=r"network_weights .*cut\.safetensors is not a whole LoRA file"):
        train.train(spec(network_weights=str(cut)), dataset(project), ckpt)


def test_a_full_disk_before_the_launch_is_a_sentence_and_no_run_record(setup, monkeypatch):
    project, ckpt, _ = setup
    fill_disk_for(monkeypatch, "config.toml")
    with pytest.raises(DiskFull, match=SENTENCE) as exc:
        train.train(spec(), dataset(project), ckpt)
    run_dir = project / "output" / "p1-001"
    assert str(run_dir / "config.toml") in str(exc.value)
    assert not (run_dir / "run.json").exists() and temp_files(run_dir) == []


def test_a_loss_curve_the_disk_had_no_room_for_is_a_warning_and_no_empty_png(setup, monkeypatch):
    project, ckpt, _ = setup
    fill_disk_for(monkeypatch, "loss.png")
    run = train.train(spec(), dataset(project), ckpt)
    run_dir = Path(run.run_dir)
    assert not (run_dir / "loss.png").exists() and run.loss_curve == "" and temp_files(run_dir) == []
    assert any(
        w.startswith(f"The loss curve was not saved: The disk is full: {run_dir / 'loss.png'}")
        for w in run.warnings
    )
    record = json.loads((run_dir / "run.json").read_text())
    assert record["state"] == "finished" and record["loss_curve"] == ""


def test_a_run_record_the_disk_had_no_room_for_is_a_sentence_and_no_half_file(setup, monkeypatch):
    project, ckpt, _ = setup
    refused = fill_disk_for(monkeypatch, "run.json")
    with pytest.raises(DiskFull, match=SENTENCE):
        train.train(spec(), dataset(project), ckpt)
    run_dir = project / "output" / "p1-001"
    assert refused == [str(run_dir / "run.json")] and not (run_dir / "run.json").exists()
    assert temp_files(run_dir) == []


def test_states_the_disk_had_no_room_to_record_as_trusted_are_a_warning(setup, monkeypatch):
    project, ckpt, _ = setup
    fill_disk_for(monkeypatch, "known-states.json")
    run = train.train(spec(save_state=True), dataset(project), ckpt)
    said = [w for w in run.warnings if "known-states.json could not be written" in w]
    assert said and said[0].startswith("The disk is full:")
    assert "a workflow cannot resume them; the command line can" in said[0]
