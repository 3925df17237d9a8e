"""Recent runs read back from their run folders: the project index, summaries, the log tail as a
terminal shows it, the output files, and nothing read through a link out of the run folder."""

from __future__ import annotations

import json
import os
import time

import pytest

from lora_workbench.training import history


@pytest.fixture
def settings_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("LORA_WORKBENCH_SETTINGS", str(tmp_path / "cfg" / "settings.json"))
    return tmp_path / "cfg"


def make_run(project, name, state="finished", losses=((1, 0.5), (2, 0.4)), log="", samples=0, age=0.0):
    run = project / "output" / name
    (run / "sample").mkdir(parents=True)
    record = {"state": state, "started_at": "2025-10-11T12:00:00+0000", "spec": {"epochs": 2}}
    if state != "running":
        record.update(losses=[list(p) for p in losses], finished_at="2025-10-11T12:01:30+0000")
    if state == "finished":
        record["status"] = {"step": 2, "total": 2, "epoch": 2, "epochs": 2, "elapsed_s": 88.5}
    (run / "run.json").write_text(json.dumps(record), encoding="utf-8")
    (run / "train.log").write_text(log or "loading\nsteps: 100%|##| 2/2\n", encoding="utf-8")
    (run / f"{name}.safetensors").write_bytes(b"x" * 10)
    (run / "loss.png").write_bytes(b"\x89PNG")
    for i in range(samples):
        (run / "sample" / f"{name}_e{i}.png").write_bytes(b"\x89PNG")
    if age:
        past = time.time() - age
        for f in (run / "run.json", run / "train.log"):
            os.utime(f, (past, past))
    return run


def test_remembered_projects_come_back_newest_first(settings_dir, tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    assert history.remember_run(a / "output" / "a-001") is True
    assert history.remember_run(b / "output" / "b-001") is True
    assert history.remember_run(b / "output" / "b-002") is False  # already first
    assert history.known_projects() == [b, a]
    assert history.remember_run(tmp_path / "not-a-run-folder") is False
    assert (settings_dir / history.INDEX_NAME).is_file()


def test_a_broken_index_is_an_empty_one(settings_dir):
    settings_dir.mkdir()
    (settings_dir / history.INDEX_NAME).write_text("{broken", encoding="utf-8")
    assert history.known_projects() == []


def test_runs_are_listed_from_disk_newest_first_with_their_state(tmp_path):
    project = tmp_path / "anna"
    old = make_run(project, "anna-001", age=600)
    new = make_run(project, "anna-002", state="failed")
    runs = history.list_runs([project])
    assert [r["run_id"] for r in runs] == ["anna-002", "anna-001"]
    assert runs[0]["state"] == "failed" and runs[1]["state"] == "finished"
    assert runs[1]["elapsed_s"] == 88.5 and runs[1]["epoch"] == 2
    assert runs[0]["elapsed_s"] == 90.0  # no status recorded (it failed): from the timestamps
    assert runs[1]["loss"] == 0.4 and runs[1]["step"] == 2 and runs[1]["dir"] == os.path.realpath(old)
    assert runs[0]["project"] == os.path.realpath(project) and new.name == "anna-002"


def test_a_running_record_whose_log_went_silent_is_stopped(tmp_path):
    project = tmp_path / "p"
    make_run(project, "p-001", state="running", age=history.STALE_AFTER_S + 60)
    make_run(project, "p-002", state="running")
    states = {r["run_id"]: r["state"] for r in history.list_runs([project])}
    assert states == {"p-001": "stopped", "p-002": "running"}


def test_the_log_tail_keeps_what_a_terminal_shows(tmp_path):
    log = tmp_path / "train.log"
    log.write_text(
        "start\n\nsteps:  10%|#| 1/10\rsteps:  20%|##| 2/10\rsteps:  30%|###| 3/10\nsaving\rsteps: 40%\r",
        encoding="utf-8",
    )
    assert history.log_tail(log, 10) == ["start", "steps:  30%|###| 3/10", "steps: 40%"]
    assert history.log_tail(log, 1) == ["steps: 40%"]
    log.write_text(" 33%|###| 1/3\x1b[A\n 67%|######| 2/3\x1b[A\r\x1b[K\n", encoding="utf-8")
    assert history.log_tail(log) == [" 33%|###| 1/3", " 67%|######| 2/3"]  # tqdm's cursor moves go
    assert history.log_tail(tmp_path / "missing.log") == []


def test_a_long_log_is_read_from_its_end_only(tmp_path):
    log = tmp_path / "train.log"
    log.write_text("".join(f"line {i}\n" for i in range(50000)), encoding="utf-8")
    tail = history.log_tail(log, 3)
    assert tail == ["line 49997", "line 49998", "line 49999"]


def test_detail_lists_the_outputs_and_thins_the_loss_points(tmp_path):
    run = make_run(tmp_path / "p", "p-001", losses=[(i, 1.0 / i) for i in range(1, 2001)], samples=3)
    d = history.detail(run, max_losses=100)
    assert len(d["losses"]) == 100 and d["losses"][-1] == [2000, 1.0 / 2000]
    kinds = {f["name"]: f["kind"] for f in d["files"]}
    assert (
        kinds["p-001.safetensors"] == "lora" and kinds["loss.png"] == "loss" and kinds["train.log"] == "log"
    )
    assert len(d["samples"]) == 3 and d["log_tail"][-1].startswith("steps: 100%")


def test_links_inside_a_run_folder_are_not_followed(tmp_path, tmp_path_factory):
    secret = tmp_path_factory.mktemp("secret") / "passwords.txt"
    secret.write_text("hunter2\n", encoding="utf-8")
    run = make_run(tmp_path / "p", "p-001")
    (run / "train.log").unlink()
    (run / "train.log").symlink_to(secret)
    (run / "stolen.txt").symlink_to(secret)
    os.rename(run / "sample", run / "sample-real")
    (run / "sample").symlink_to(secret.parent, target_is_directory=True)
    d = history.detail(run)
    assert d["log_tail"] == []
    assert "stolen.txt" not in {f["name"] for f in d["files"]} and d["samples"] == []
    (run / "run.json").rename(run / "real.json")
    (run / "run.json").symlink_to(run / "real.json")
    assert history.read_record(run) is None


def test_an_output_link_out_of_the_roots_is_left_out_when_confined(tmp_path, tmp_path_factory, monkeypatch):
    elsewhere = tmp_path_factory.mktemp("elsewhere")
    make_run(elsewhere / "x", "x-001")
    project = tmp_path / "p"
    project.mkdir()
    (project / "output").symlink_to(elsewhere / "x" / "output", target_is_directory=True)
    monkeypatch.setenv("LORA_WORKBENCH_ROOTS", str(tmp_path))
    monkeypatch.setenv("LORA_WORKBENCH_SETTINGS", str(tmp_path / "none.json"))
    assert history.list_runs([project], confined=True) == []
    assert len(history.list_runs([project])) == 1  # the command line follows it


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs here")
def test_a_fifo_named_like_the_log_never_blocks_the_reader(tmp_path):
    run = make_run(tmp_path / "p", "p-001")
    (run / "train.log").unlink()
    os.mkfifo(run / "train.log")
    (run / "run.json").unlink()
    os.mkfifo(run / "run.json")
    assert history.log_tail(run / "train.log") == [] and history.read_record(run) is None
