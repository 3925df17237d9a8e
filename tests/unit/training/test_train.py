"""A training run end to end through the real runner, with a fake sd-scripts (tests/unit/fake_sdscripts.py):
versioned run folders, the files written beside the output, the cache, and errors that quote the log."""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path

import pytest

from lora_workbench import events
from lora_workbench.dataset import dataset_toml
from lora_workbench.dataset.dataset_toml import tomllib
from lora_workbench.errors import ValidationError, WorkbenchError
from lora_workbench.training import train, write_places
from lora_workbench.training.options import TrainOptions
from lora_workbench.training.proctree import pid_alive
from tests.unit import train_fakes

fakes = train_fakes  # shared fakes: synthetic checkpoints, projects, a fake sd-scripts tree


@pytest.fixture
def setup(tmp_path, monkeypatch):
    monkeypatch.setenv("LORA_WORKBENCH_SETTINGS", str(tmp_path / "none.json"))
    fakes.make_kohya(tmp_path, monkeypatch)
    project = fakes.make_project(tmp_path)
    ckpt = fakes.write_checkpoint(tmp_path / "models" / "sd15.safetensors", fakes.sd1_tensors())
    launches = tmp_path / "launches.txt"
    monkeypatch.setenv("FAKE_SD_LAUNCHES", str(launches))
    for var in ("FAKE_SD_FAIL", "FAKE_SD_NO_FILE", "FAKE_SD_SLEEP", "FAKE_SD_CHILD_PIDFILE"):
        monkeypatch.delenv(var, raising=False)
    return project, ckpt, launches


def spec(**kw) -> TrainOptions:
    base = dict(
        epochs=2, width=64, height=64, network_dim=4, network_alpha=4, device="cpu", launcher="python"
    )
    base.update(kw)
    return TrainOptions(**base)


def launches(path: Path) -> int:
    return len(path.read_text().splitlines()) if path.exists() else 0


def test_a_run_writes_a_reproducible_run_folder_and_returns_the_trained_lora(setup):
    project, ckpt, _ = setup
    ds = dataset_toml.load_project_dataset(project)
    updates = []
    run = train.train(spec(), ds, ckpt, on_update=lambda st: updates.append((st.step, st.total)))
    run_dir = Path(run.run_dir)
    assert run_dir == project / "output" / "p1-001"
    for name in ("config.toml", "dataset.toml", "command.txt", "train.log", "run.json", "loss.png"):
        assert (run_dir / name).is_file(), name
    lora = run.lora
    assert lora.path == str(run_dir / "p1.safetensors") and Path(lora.path).is_file()
    assert lora.epoch_paths == [str(run_dir / "p1-000001.safetensors")]
    assert lora.trigger_words == ["subject"] and lora.base_arch == "sd1" and lora.base_model == str(ckpt)
    assert json.loads(lora.metadata["ss_dataset_dirs"]) == {"1_subject": {"n_repeats": 1, "img_count": 4}}
    assert "ss_tag_frequency" not in lora.metadata
    assert run.losses and run.losses[-1][0] == 8 and updates[-1] == (8, 8)
    cfg = tomllib.loads((run_dir / "config.toml").read_text())
    assert cfg["dataset"]["dataset_config"] == str(run_dir / "dataset.toml")
    assert cfg["saving"]["output_dir"] == str(run_dir) and cfg["training"]["max_train_steps"] == 8
    assert (run_dir / "dataset.toml").read_bytes() == (project / "dataset.toml").read_bytes()
    assert "--config_file" in (run_dir / "command.txt").read_text()
    rec = json.loads((run_dir / "run.json").read_text())
    assert rec["state"] == "finished" and rec["fingerprint"] and rec["trained_lora"]["path"] == lora.path
    assert events.latest(events.TRAIN)["state"] == "finished"


def test_every_run_is_listed_for_the_training_tab_whoever_started_it(setup):
    # The node, the queue API and the CLI all go through train(): each run's project is indexed.
    from lora_workbench.training import history

    project, ckpt, _ = setup
    run = train.train(spec(), dataset_toml.load_project_dataset(project), ckpt)
    assert history.known_projects() == [project]
    assert [r["run_id"] for r in history.list_runs(history.known_projects())] == [Path(run.run_dir).name]


def test_same_inputs_return_the_earlier_run_without_launching(setup):
    project, ckpt, launch_file = setup
    ds = dataset_toml.load_project_dataset(project)
    first = train.train(spec(), ds, ckpt)
    again = train.train(spec(), dataset_toml.load_project_dataset(project), ckpt)
    assert launches(launch_file) == 1
    assert again.cached and again.lora.path == first.lora.path and again.losses == first.losses
    assert events.latest(events.TRAIN)["state"] == "finished"


def test_a_changed_input_retrains_into_a_new_folder(setup):
    project, ckpt, launch_file = setup
    first = train.train(spec(), dataset_toml.load_project_dataset(project), ckpt)
    second = train.train(spec(seed=1), dataset_toml.load_project_dataset(project), ckpt)
    (project / "images" / "1_subject" / "img0.txt").write_text("changed caption")
    third = train.train(spec(seed=1), dataset_toml.load_project_dataset(project), ckpt)
    assert launches(launch_file) == 3
    assert [Path(r.run_dir).name for r in (first, second, third)] == ["p1-001", "p1-002", "p1-003"]
    assert Path(first.lora.path).is_file()  # never overwritten


def test_output_versioning_never_reuses_an_existing_folder(tmp_path):
    root = tmp_path / "output"
    (root / "x-001").mkdir(parents=True)
    (root / "x-007").mkdir()
    (root / "x-abc").mkdir()
    assert train.next_run_dir(root, "x").name == "x-008"
    assert write_places.make_run_dir(tmp_path, "x", None).name == "x-008"
    assert write_places.make_run_dir(tmp_path, "x", [tmp_path]).name == "x-009"


def test_trainer_widgets_override_the_dataset_toml_copy_only(setup):
    project, ckpt, _ = setup
    before = (project / "dataset.toml").read_bytes()
    run = train.train(
        spec(width=128, height=128, caption_extension=".caption"),
        dataset_toml.load_project_dataset(project),
        ckpt,
    )
    copy = tomllib.loads((Path(run.run_dir) / "dataset.toml").read_text())
    assert (
        copy["datasets"][0]["resolution"] == [128, 128] and copy["general"]["caption_extension"] == ".caption"
    )
    assert (project / "dataset.toml").read_bytes() == before
    assert any("training runs at 128x128" in w for w in run.warnings)


def test_a_failing_run_raises_with_the_log_tail(setup, monkeypatch):
    project, ckpt, _ = setup
    monkeypatch.setenv("FAKE_SD_FAIL", "1")
    with pytest.raises(WorkbenchError) as exc:
        train.train(spec(), dataset_toml.load_project_dataset(project), ckpt)
    text = str(exc.value)
    assert "failed" in text and "torch.OutOfMemoryError: CUDA out of memory" in text and "train.log" in text
    rec = json.loads((project / "output" / "p1-001" / "run.json").read_text())
    assert rec["state"] == "failed"


def test_exit_zero_without_a_lora_file_is_an_error_not_finished(setup, monkeypatch):
    project, ckpt, launch_file = setup
    monkeypatch.setenv("FAKE_SD_NO_FILE", "1")
    with pytest.raises(WorkbenchError, match="ended without writing p1.safetensors") as exc:
        train.train(spec(), dataset_toml.load_project_dataset(project), ckpt)
    assert "something odd happened" in str(exc.value)
    assert events.latest(events.TRAIN)["state"] == "failed"
    monkeypatch.delenv("FAKE_SD_NO_FILE")
    train.train(spec(), dataset_toml.load_project_dataset(project), ckpt)  # a failed run is not a cache hit
    assert launches(launch_file) == 2


def test_cancel_kills_the_trainer_and_its_child(setup, monkeypatch, tmp_path):
    project, ckpt, _ = setup
    pidfile = tmp_path / "child.pid"
    monkeypatch.setenv("FAKE_SD_CHILD_PIDFILE", str(pidfile))
    monkeypatch.setenv("FAKE_SD_SLEEP", "0.5")
    seen = []

    def cancel():
        return bool(seen) and seen[-1] >= 1

    with pytest.raises(train.TrainingCancelled):
        train.train(
            spec(epochs=20),
            dataset_toml.load_project_dataset(project),
            ckpt,
            on_update=lambda st: seen.append(st.step),
            should_cancel=cancel,
            grace_seconds=1.0,
        )
    child = int(pidfile.read_text())
    deadline = time.monotonic() + 5
    while pid_alive(child) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not pid_alive(child)
    rec = json.loads((project / "output" / "p1-001" / "run.json").read_text())
    assert rec["state"] == "cancelled"


def test_an_exception_from_on_update_kills_the_run_and_propagates(setup, monkeypatch):
    project, ckpt, _ = setup
    monkeypatch.setenv("FAKE_SD_SLEEP", "0.3")

    class InterruptProcessingException(Exception):
        pass

    def on_update(st):
        if st.step >= 1:
            raise InterruptProcessingException()

    with pytest.raises(InterruptProcessingException):
        train.train(
            spec(epochs=20),
            dataset_toml.load_project_dataset(project),
            ckpt,
            on_update=on_update,
            grace_seconds=1.0,
        )
    rec = json.loads((project / "output" / "p1-001" / "run.json").read_text())
    assert rec["state"] == "cancelled"


def test_two_trainings_at_once_run_one_after_another(setup):
    project, ckpt, launch_file = setup
    results, errors = [], []

    def go(seed):
        try:
            results.append(train.train(spec(seed=seed), dataset_toml.load_project_dataset(project), ckpt))
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=go, args=(s,)) for s in (1, 2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors and len(results) == 2
    assert sorted(Path(r.run_dir).name for r in results) == ["p1-001", "p1-002"]
    assert all(Path(r.lora.path).is_file() for r in results) and launches(launch_file) == 2


def test_validation_happens_before_anything_is_written(setup):
    project, ckpt, launch_file = setup
    with pytest.raises(ValidationError, match="width is 65"):
        train.train(spec(width=65), dataset_toml.load_project_dataset(project), ckpt)
    assert not (project / "output").exists() and launches(launch_file) == 0


def test_plan_shows_the_command_without_writing(setup):
    project, ckpt, _ = setup
    p = train.plan(spec(), dataset_toml.load_project_dataset(project), ckpt)
    assert p.run_dir == project / "output" / "p1-001" and not (project / "output").exists()
    assert list(p.job.train_step.argv[-2:]) == ["--config_file", str(p.run_dir / "config.toml")]


def test_empty_dataset_is_refused(setup):
    project, ckpt, _ = setup
    for f in (project / "images" / "1_subject").iterdir():
        f.unlink()
    with pytest.raises(ValidationError, match="no training images"):
        train.train(spec(), dataset_toml.load_project_dataset(project), ckpt)


def test_unusable_sdscripts_python_is_reported_before_launch(setup, monkeypatch, tmp_path):
    project, ckpt, _ = setup
    bad = tmp_path / "badpython"
    bad.write_text("#!/bin/sh\necho 'ModuleNotFoundError: No module named torch' >&2\nexit 1\n")
    bad.chmod(0o755)
    monkeypatch.setenv("KOHYA_PYTHON", str(bad))
    if os.name == "nt":
        pytest.skip("shell script interpreter")
    with pytest.raises(ValidationError, match="cannot import torch .*No module named torch"):
        train.train(spec(device="auto"), dataset_toml.load_project_dataset(project), ckpt)


def test_samples_are_collected(setup):
    project, ckpt, _ = setup
    run = train.train(
        spec(sample_prompts="subject, a photo"), dataset_toml.load_project_dataset(project), ckpt
    )
    assert len(run.samples) == 2 and all(Path(s).parent.name == "sample" for s in run.samples)
    assert (Path(run.run_dir) / "prompts.txt").read_text().startswith("subject, a photo --w 64")


def test_link_to_library_links_the_run_into_ui_lora_folders(setup, tmp_path):
    project, ckpt, _ = setup
    comfy = tmp_path / "ComfyUI"
    (comfy / "models" / "loras").mkdir(parents=True)
    run = train.train(
        spec(link_to_library=True),
        dataset_toml.load_project_dataset(project),
        ckpt,
        ui_dirs={"comfyui": comfy},
    )
    linked = comfy / "models" / "loras" / "p1-001" / "p1.safetensors"
    assert linked.exists() and os.path.realpath(linked) == os.path.realpath(run.lora.path)


# The cache key of the first TrainSpec's defaults, as main computed it: runs cached before the
# settings table must still be found (the settings added since count only when not at their default).
V1_SPEC_KEY = {
    "attention": "sdpa", "batch_size": 0, "buckets": "dataset", "cache_latents": True, "cache_latents_to_disk": True,
    "caption_extension": "", "cpu_threads": 2, "data_loader_workers": 0, "device": "auto", "epochs": 3,
    "gpu_ids": "", "gradient_checkpointing": True, "height": 512, "launcher": "accelerate", "learning_rate": 0.0001,
    "lowram": False, "lr_scheduler": "cosine_with_restarts", "lr_warmup_steps": 0, "machine_rank": 0,
    "main_process_ip": "", "main_process_port": 0, "max_bucket_reso": 1024, "max_train_steps": 0,
    "min_bucket_reso": 256, "mixed_precision": "auto", "model_type": "auto", "network_alpha": 128.0,
    "network_dim": 128, "noise_offset": 0.0, "num_machines": 1, "num_processes": 1, "optimizer": "AdamW",
    "output_name": "", "sample_every_n_epochs": 1, "sample_prompts": "", "sample_sampler": "dpm_2",
    "sample_steps": 20, "save_every_n_epochs": 1, "save_precision": "fp16", "script": "auto", "seed": 12345,
    "step_rule": "seed", "text_encoder_lr": 5e-05, "train_text_encoder": True, "unet_lr": 0.0001,
    "v_parameterization": False, "width": 512,
}  # fmt: skip


def test_the_cache_key_of_a_first_layout_run_is_unchanged():
    # a first-layout workflow holds the first defaults as values (epochs 3, 512x512, dim/alpha 128)
    first = TrainOptions(epochs=3, width=512, height=512, network_dim=128, network_alpha=128.0)
    assert train.options_key(first) == V1_SPEC_KEY


def test_every_setting_that_can_change_the_lora_is_in_the_cache_key(setup):
    """The fingerprint test of the settings table: a changed value changes the key, except for the
    settings declared not to change the trained file."""
    from lora_workbench.training.settings import SETTINGS

    project, ckpt, _ = setup
    ds = dataset_toml.load_project_dataset(project)

    def key(o):
        return train.fingerprint(o, ds, str(ckpt), script="train_network.py", device="cpu")

    base = key(TrainOptions())
    for s in SETTINGS:
        changed = key(TrainOptions.from_values({s.name: s.example_value()}))
        assert (changed != base) == s.affects_result, s.name
