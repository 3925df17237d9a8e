"""Resume and continue, end to end through the real runner with the fake sd-scripts (which saves and
resumes states like sd-scripts: a resumed run counts its steps bar from 0 again): a crashed or cancelled
run continues in its own folder with the right step count and loss curve, the cache never takes a
resumed run for a fresh one, and what a workflow names as the run or state is confined and trusted."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from lora_workbench.dataset import dataset_toml
from lora_workbench.dataset.dataset_toml import tomllib
from lora_workbench.errors import ValidationError, WorkbenchError
from lora_workbench.training import resume, train
from lora_workbench.training.options import TrainOptions
from tests.unit import train_fakes as fakes


@pytest.fixture
def setup(tmp_path, monkeypatch):
    monkeypatch.setenv("LORA_WORKBENCH_SETTINGS", str(tmp_path / "none.json"))
    monkeypatch.setenv("LORA_WORKBENCH_CACHE_DIR", str(tmp_path / "cache"))
    fakes.make_kohya(tmp_path, monkeypatch)
    project = fakes.make_project(tmp_path)
    ckpt = fakes.write_checkpoint(tmp_path / "models" / "sd15.safetensors", fakes.sd1_tensors())
    monkeypatch.setenv("FAKE_SD_LAUNCHES", str(tmp_path / "launches.txt"))
    for var in (
        "FAKE_SD_FAIL",
        "FAKE_SD_NO_FILE",
        "FAKE_SD_SLEEP",
        "FAKE_SD_CHILD_PIDFILE",
        "FAKE_SD_CRASH_AT_EPOCH",
    ):
        monkeypatch.delenv(var, raising=False)
    return project, ckpt, tmp_path / "launches.txt"


def spec(**kw) -> TrainOptions:
    base = dict(
        epochs=3, width=64, height=64, network_dim=4, network_alpha=4, device="cpu", launcher="python"
    )
    return TrainOptions(**{**base, "save_state": True, **kw})


def crash_in_epoch_3(project, ckpt, monkeypatch, **kw) -> Path:
    monkeypatch.setenv("FAKE_SD_CRASH_AT_EPOCH", "3")
    with pytest.raises(WorkbenchError, match="the machine fell over"):
        train.train(spec(**kw), dataset_toml.load_project_dataset(project), ckpt)
    monkeypatch.delenv("FAKE_SD_CRASH_AT_EPOCH")
    return project / "output" / "p1-001"


def test_a_crashed_run_resumes_from_its_newest_state_in_the_same_folder(setup, monkeypatch):
    project, ckpt, launches = setup
    run_dir = crash_in_epoch_3(project, ckpt, monkeypatch)
    rec = json.loads((run_dir / "run.json").read_text())
    assert rec["state"] == "failed" and rec["states"] == ["p1-000001-state", "p1-000002-state"]
    assert [s for s, _ in rec["losses"]] == list(range(1, 9))

    updates = []
    run = train.train(spec(resume="latest"), dataset_toml.load_project_dataset(project), ckpt,
                      on_update=lambda st: updates.append((st.step, st.total)))  # fmt: skip
    assert Path(run.run_dir) == run_dir and run.resumed_from == "p1-000002-state"
    assert [s for s, _ in run.losses] == list(range(1, 13))  # the loss curve continues
    assert updates[-1] == (12, 12) and all(total == 12 for _, total in updates)
    assert min(step for step, _ in updates) >= 8  # never shows the restarted bar's own count
    cfg = tomllib.loads((run_dir / "config-resume-1.toml").read_text())
    assert cfg["saving"]["resume"] == str(run_dir / "p1-000002-state")
    assert tomllib.loads((run_dir / "config.toml").read_text())["saving"].get("resume") is None
    assert (run_dir / "command.txt").read_text().count("--config_file") == 2
    assert "load train state" in (run_dir / "train.log").read_text()
    rec = json.loads((run_dir / "run.json").read_text())
    assert rec["state"] == "finished" and rec["resumes"][0]["step"] == 8
    assert rec["fingerprint"] != rec["setup_fingerprint"]
    assert sorted(p.name for p in (project / "output").iterdir()) == ["p1-001"]

    # The cache never takes the resumed run for a fresh one; queuing the resume again reuses it.
    prep = train.prepare(spec(), dataset_toml.load_project_dataset(project), ckpt)
    assert (
        prep.fingerprint == rec["setup_fingerprint"]
        and train.find_cached(prep.dataset, prep.fingerprint) is None
    )
    n = len(launches.read_text().splitlines())
    again = train.train(spec(resume="latest"), dataset_toml.load_project_dataset(project), ckpt)
    assert again.cached and again.lora.path == run.lora.path and len(launches.read_text().splitlines()) == n
    assert "nothing to resume" in " ".join(again.warnings)


# Cancel once the first state is whole (accelerate writes the RNG states last): on a loaded machine a
# Cancel as soon as the folder appeared could stop the trainer mid-save, leaving no state to resume.
COMPLETE = "random_states_0.pkl"


def test_a_cancelled_run_resumes_too(setup, monkeypatch):
    project, ckpt, _ = setup
    monkeypatch.setenv("FAKE_SD_SLEEP", "0.1")
    ds = dataset_toml.load_project_dataset(project)
    run_dir = project / "output" / "p1-001"
    with pytest.raises(train.TrainingCancelled):
        train.train(
            spec(), ds, ckpt, should_cancel=lambda: (run_dir / "p1-000001-state" / COMPLETE).is_file(),
            grace_seconds=1,
        )  # fmt: skip
    run = train.train(spec(resume="p1-001"), ds, ckpt)
    assert run.resumed_from in ("p1-000001-state", "p1-000002-state") and run.losses[-1][0] == 12


def test_resuming_with_other_settings_says_what_differs(setup, monkeypatch):
    project, ckpt, _ = setup
    crash_in_epoch_3(project, ckpt, monkeypatch)
    with pytest.raises(ValidationError, match=r"set up differently \(epochs 3 -> 4\)"):
        train.train(spec(epochs=4, resume="latest"), dataset_toml.load_project_dataset(project), ckpt)


def test_a_run_without_a_state_cannot_be_resumed(setup, monkeypatch):
    project, ckpt, _ = setup
    crash_in_epoch_3(project, ckpt, monkeypatch, save_state=False)
    with pytest.raises(ValidationError, match="no saved training state"):
        train.train(spec(save_state=False, resume="latest"), dataset_toml.load_project_dataset(project), ckpt)
    with pytest.raises(ValidationError, match="no earlier run of other"):
        train.train(
            spec(output_name="other", resume="latest"), dataset_toml.load_project_dataset(project), ckpt
        )


@pytest.mark.parametrize("value", ["../p1-001", "/etc", "p1-001/..", "p1-001/p1-000001-state", "nope-001"])
def test_a_run_folder_outside_the_projects_output_is_refused(setup, monkeypatch, value):
    project, ckpt, _ = setup
    crash_in_epoch_3(project, ckpt, monkeypatch)
    with pytest.raises(ValidationError, match="not a run folder of this project"):
        train.train(spec(resume=value), dataset_toml.load_project_dataset(project), ckpt)


def test_linked_run_and_state_folders_are_not_followed(setup, monkeypatch, tmp_path):
    project, ckpt, _ = setup
    run_dir = crash_in_epoch_3(project, ckpt, monkeypatch)
    elsewhere = tmp_path / "elsewhere"
    shutil.copytree(run_dir, elsewhere)
    (project / "output" / "p1-002").symlink_to(elsewhere)
    with pytest.raises(ValidationError, match="not a run folder of this project"):
        train.train(spec(resume="p1-002"), dataset_toml.load_project_dataset(project), ckpt)
    # a link named like a newer state is not a state of the run
    (run_dir / "p1-000009-state").symlink_to(elsewhere / "p1-000002-state")
    assert [s.path.name for s in resume.saved_states(run_dir, "p1")] == ["p1-000001-state", "p1-000002-state"]


def test_a_workflow_resumes_only_states_this_installation_wrote(setup, monkeypatch):
    project, ckpt, _ = setup
    run_dir = crash_in_epoch_3(project, ckpt, monkeypatch)
    planted = run_dir / "p1-000002-state" / "optimizer.bin"
    planted.write_bytes(b"a pickle that runs code when loaded")
    with pytest.raises(ValidationError, match="not saved by a run of this installation"):
        train.train(spec(resume="latest"), dataset_toml.load_project_dataset(project), ckpt)
    # the command line (the user's own shell) may resume it
    run = train.train(
        spec(resume="latest"), dataset_toml.load_project_dataset(project), ckpt, require_known_state=False
    )
    assert run.resumed_from == "p1-000002-state"


class ComfyKilled(BaseException):
    """ComfyUI killed (kill -9) once sd-scripts has exited: nothing of the run's end is recorded."""


def test_a_run_whose_comfyui_was_killed_resumes_from_a_workflow(setup, monkeypatch):
    project, ckpt, _ = setup

    def killed(*_args):
        raise ComfyKilled

    check_outcome = train._check_outcome
    monkeypatch.setattr(train, "_check_outcome", killed)
    monkeypatch.setenv("FAKE_SD_CRASH_AT_EPOCH", "3")
    with pytest.raises(ComfyKilled):
        train.train(spec(), dataset_toml.load_project_dataset(project), ckpt)
    monkeypatch.setattr(train, "_check_outcome", check_outcome)
    monkeypatch.delenv("FAKE_SD_CRASH_AT_EPOCH")
    run_dir = project / "output" / "p1-001"
    assert json.loads((run_dir / "run.json").read_text())["state"] == "running"  # as a kill leaves it
    run = train.train(spec(resume="latest"), dataset_toml.load_project_dataset(project), ckpt)
    assert run.resumed_from == "p1-000002-state"


def test_a_state_that_is_not_sd_scripts_or_not_complete_is_ignored(setup, monkeypatch):
    project, ckpt, _ = setup
    run_dir = crash_in_epoch_3(project, ckpt, monkeypatch)
    (run_dir / "p1-000002-state" / "train_state.json").write_text('{"current_epoch": "x"}')
    assert [s.path.name for s in resume.saved_states(run_dir, "p1")] == ["p1-000001-state"]
    (run_dir / "p1-000001-state" / "random_states_0.pkl").unlink()  # stopped while saving it
    assert resume.saved_states(run_dir, "p1") == []


def test_resume_and_network_weights_are_one_or_the_other(setup):
    project, ckpt, _ = setup
    with pytest.raises(ValidationError, match="Set only one of them"):
        train.train(
            spec(resume="latest", network_weights=str(ckpt)), dataset_toml.load_project_dataset(project), ckpt
        )


def test_the_cli_resumes_with_the_runs_own_settings_and_base_model(setup, monkeypatch, capsys):
    from lora_workbench import cli

    project, ckpt, _ = setup
    run_dir = crash_in_epoch_3(project, ckpt, monkeypatch)
    planted = run_dir / "p1-000002-state" / "optimizer.bin"
    planted.write_bytes(b"changed by hand")  # the user's own shell may resume it anyway
    rc = cli.main(["train", str(project), "--resume", "latest", "--print-command"])
    out, err = capsys.readouterr()
    assert rc == 0 and "config-resume-1.toml" in out and str(run_dir) in out, err
    rc = cli.main(["train", str(project), "--resume", "latest", "--epochs", "4"])
    assert rc == 1 and "set up differently (epochs 3 -> 4)" in capsys.readouterr().err
    rc = cli.main(["train", str(project), "--resume", "latest"])
    out = capsys.readouterr().out
    assert rc == 0 and f"resumed {run_dir} from p1-000002-state" in out


def test_a_run_records_as_trusted_only_the_states_it_saved(setup, monkeypatch):
    project, ckpt, _ = setup
    monkeypatch.setattr(train, "STATE_CLOCK_SLACK_NS", 0)
    run_dir = crash_in_epoch_3(project, ckpt, monkeypatch)
    planted = run_dir / "p1-step00000001-state"  # put there by whoever shared the project
    shutil.copytree(run_dir / "p1-000001-state", planted)
    (planted / "optimizer.bin").write_bytes(b"a pickle that runs code when loaded")
    run = train.train(
        spec(resume="latest"), dataset_toml.load_project_dataset(project), ckpt, require_known_state=False
    )
    assert run.resumed_from == "p1-000002-state"
    saved = [s for s in resume.saved_states(run_dir, "p1") if s.path != planted]
    for state in saved:  # the crashed run's and the resumed run's own states stay trusted
        resume.check_known(state)
    assert any(s.path.name == "p1-state" for s in saved)  # saved by the resumed run
    with pytest.raises(ValidationError, match="not saved by a run of this installation"):
        resume.check_known(resume.SavedState(planted, 1, 1))


def test_a_fifo_in_a_state_is_refused_without_blocking(setup, monkeypatch):
    import os
    import signal

    project, ckpt, _ = setup
    run_dir = crash_in_epoch_3(project, ckpt, monkeypatch)
    os.mkfifo(run_dir / "p1-000002-state" / "scheduler.bin")
    previous = signal.signal(signal.SIGALRM, lambda *_: (_ for _ in ()).throw(TimeoutError("blocked")))
    signal.alarm(10)
    try:
        with pytest.raises(ValidationError, match="not a regular file; it cannot be resumed"):
            train.train(spec(resume="latest"), dataset_toml.load_project_dataset(project), ckpt)
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
