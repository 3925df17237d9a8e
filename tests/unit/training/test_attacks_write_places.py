"""Attacks on where a run writes: a shared project whose output/, logs/, run folder or subset folders
are links out of the allowed roots. From a workflow (roots given) nothing may be written through them
and the refusal is a sentence naming the folder; the command line follows the links and says so."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from lora_workbench.dataset import dataset_toml
from lora_workbench.errors import PathNotAllowed, WorkbenchError
from lora_workbench.training import train, write_places
from lora_workbench.training.options import TrainOptions
from tests.unit import train_fakes as fakes


@pytest.fixture
def proj(tmp_path, monkeypatch):
    monkeypatch.setenv("LORA_WORKBENCH_SETTINGS", str(tmp_path / "none.json"))
    monkeypatch.setenv("LORA_WORKBENCH_CACHE_DIR", str(tmp_path / "cache"))
    for var in ("LORA_WORKBENCH_ROOTS", "SD_MODELS_PATH", "COMFYUI_PATH", "FAKE_SD_FAIL", "FAKE_SD_NO_FILE"):
        monkeypatch.delenv(var, raising=False)
    for var in ("FAKE_SD_SLEEP", "FAKE_SD_CHILD_PIDFILE", "FAKE_SD_CRASH_AT_EPOCH"):
        monkeypatch.delenv(var, raising=False)
    fakes.make_kohya(tmp_path, monkeypatch)
    project = fakes.make_project(tmp_path)
    ckpt = fakes.write_checkpoint(tmp_path / "models" / "sd15.safetensors", fakes.sd1_tensors())
    outside = tmp_path / "outside"
    outside.mkdir()
    return project, ckpt, outside


def spec(**kw) -> TrainOptions:
    base = dict(
        epochs=3, width=64, height=64, network_dim=4, network_alpha=4, device="cpu", launcher="python"
    )
    return TrainOptions(**{**base, **kw})


def from_workflow(project: Path, ckpt: Path, **kw):
    """train() as the node calls it: the allowed roots given (here: the project folder only)."""
    return train.train(spec(**kw), dataset_toml.load_project_dataset(project), ckpt, roots=[str(project)])


def test_a_linked_output_folder_makes_no_run_folder_outside_the_roots(proj):
    project, _, outside = proj
    (project / "output").symlink_to(outside)
    with pytest.raises(PathNotAllowed, match=r"output folder .*output is a link or not a folder"):
        write_places.make_run_dir(project, "x", [str(project)])
    assert list(outside.iterdir()) == []


def test_a_workflow_refuses_a_linked_output_folder_and_writes_nothing_there(proj):
    project, ckpt, outside = proj
    (project / "output").symlink_to(outside)
    with pytest.raises(
        PathNotAllowed, match=r"Replace it with a plain folder, or train from the command line"
    ):
        from_workflow(project, ckpt)
    assert list(outside.iterdir()) == []


@pytest.mark.parametrize("target", ["outside", "missing", "file"])
def test_a_workflow_refuses_linked_or_odd_logs_when_tensorboard_writes_there(proj, target):
    project, ckpt, outside = proj
    if target == "file":
        (project / "logs").write_text("not a folder")
    else:
        (project / "logs").symlink_to(outside if target == "outside" else outside / "nope")
    with pytest.raises(PathNotAllowed, match=r"logs folder .*logs is a link or not a folder"):
        from_workflow(project, ckpt, tensorboard=True)
    assert list(outside.iterdir()) == []
    assert not (project / "output").exists() or list((project / "output").iterdir()) == []


def test_logs_are_not_checked_when_tensorboard_is_off(proj):
    project, ckpt, outside = proj
    (project / "logs").symlink_to(outside)
    run = from_workflow(project, ckpt, tensorboard=False)
    assert Path(run.run_dir).parent == (project / "output").resolve()
    assert list(outside.iterdir()) == []


def test_the_command_line_follows_a_linked_output_and_says_so(proj):
    project, ckpt, outside = proj
    (project / "output").symlink_to(outside)
    run = train.train(spec(), dataset_toml.load_project_dataset(project), ckpt)
    assert (outside / "p1-001").is_dir() and Path(run.lora.path).is_file()
    assert any(f"{project / 'output'} is a link to {outside}" in w for w in run.warnings), run.warnings


def test_a_linked_output_does_not_move_where_a_workflow_resumes(proj, monkeypatch):
    project, ckpt, outside = proj
    monkeypatch.setenv("FAKE_SD_CRASH_AT_EPOCH", "3")
    with pytest.raises(WorkbenchError):
        from_workflow(project, ckpt, save_state=True)
    monkeypatch.delenv("FAKE_SD_CRASH_AT_EPOCH")
    shutil.move(project / "output" / "p1-001", outside / "p1-001")
    (project / "output").rmdir()
    (project / "output").symlink_to(outside)
    with pytest.raises(PathNotAllowed, match=r"output folder .* is a link"):
        from_workflow(project, ckpt, save_state=True, resume="latest")
    assert json.loads((outside / "p1-001" / "run.json").read_text())["state"] == "failed"


@pytest.mark.parametrize("planted", ["sample", "p1-000003-state", "p1.safetensors", "train.log"])
def test_a_workflow_resumes_no_run_folder_holding_a_link(proj, monkeypatch, planted):
    project, ckpt, outside = proj
    monkeypatch.setenv("FAKE_SD_CRASH_AT_EPOCH", "3")
    with pytest.raises(WorkbenchError):
        from_workflow(project, ckpt, save_state=True)
    monkeypatch.delenv("FAKE_SD_CRASH_AT_EPOCH")
    run_dir = project / "output" / "p1-001"
    victim = outside / planted
    if planted in ("sample", "p1-000003-state"):
        shutil.rmtree(run_dir / planted, ignore_errors=True)
        victim.mkdir()
    else:
        (run_dir / planted).unlink(missing_ok=True)
        victim.write_text("keep me")
    (run_dir / planted).symlink_to(victim)
    with pytest.raises(
        PathNotAllowed, match=rf"holds {planted}, a link; a resumed run writes into that folder"
    ):
        from_workflow(project, ckpt, save_state=True, resume="latest")
    assert (list(victim.iterdir()) == []) if victim.is_dir() else victim.read_text() == "keep me"


def test_a_workflow_refuses_subset_folders_outside_the_roots_when_latents_go_to_disk(proj):
    project, ckpt, outside = proj
    subset = project / "images" / "1_subject"
    shutil.move(subset, outside / "1_subject")
    subset.symlink_to(outside / "1_subject")
    before = sorted(p.name for p in (outside / "1_subject").iterdir())
    with pytest.raises(
        PathNotAllowed, match=r"writes cached latents \(.npz\) there; turn cache_latents_to_disk off"
    ):
        from_workflow(project, ckpt, cache_latents=True, cache_latents_to_disk=True)
    assert sorted(p.name for p in (outside / "1_subject").iterdir()) == before
    assert not (project / "output").exists() or list((project / "output").iterdir()) == []
