"""Attacks on what resume and the GUI-config import read from a shared project: a run.json or
train_state.json of the wrong shape, too deep, too big or a FIFO, a kohya_ss config nested too deep, a
--resume naming an unknown user's home. Each is one sentence (CLI exit 1), never a traceback or a hang."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import pytest

from lora_workbench import cli
from lora_workbench.errors import ValidationError, WorkbenchError
from lora_workbench.training import resume
from lora_workbench.training.backends.sd_scripts import kohya_gui
from tests.unit import train_fakes as fakes

DEEP = "[" * 100_000 + "]" * 100_000  # past json's recursion limit, well under every size cap


@pytest.fixture
def run_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("LORA_WORKBENCH_SETTINGS", str(tmp_path / "none.json"))
    monkeypatch.setenv("LORA_WORKBENCH_CACHE_DIR", str(tmp_path / "cache"))
    folder = tmp_path / "p1" / "output" / "p1-001"
    folder.mkdir(parents=True)
    return folder


@pytest.fixture
def no_hang():
    """Fail (instead of hanging) when a read blocks on a FIFO."""

    def _alarm(*_):
        raise TimeoutError("blocked on a FIFO")

    previous = signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(10)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, previous)


def write_record(run_dir: Path, record) -> None:
    (run_dir / "run.json").write_text(record if isinstance(record, str) else json.dumps(record))


@pytest.mark.parametrize("name", [["x"], 5, {"a": 1}])
def test_an_output_name_that_is_not_text_is_a_sentence(run_dir, name):
    write_record(run_dir, {"output_name": name})
    with pytest.raises(ValidationError, match="holds output_name .*, not a name"):
        resume.find_point("latest", run_dir.parent, "p1")


@pytest.mark.parametrize("spec", [["epochs"], "epochs", 5])
def test_mismatch_reads_a_spec_of_any_shape(spec):
    assert (
        resume.mismatch({"spec": spec}, {"epochs": 3}) == "the dataset, the base model or the device changed"
    )


def test_a_deep_run_record_is_a_sentence(run_dir):
    write_record(run_dir, DEEP)
    with pytest.raises(ValidationError, match="no readable run.json .*nested too deep"):
        resume.find_point("latest", run_dir.parent, "p1")


def test_a_huge_run_record_is_not_read(run_dir):
    with open(run_dir / "run.json", "wb") as f:
        f.truncate(resume.MAX_RECORD_BYTES + 1)  # sparse: nothing is written
    with pytest.raises(ValidationError, match="larger than 8 MiB"):
        resume.find_point("latest", run_dir.parent, "p1")


def test_a_fifo_run_record_does_not_block(run_dir, no_hang):
    os.mkfifo(run_dir / "run.json")
    with pytest.raises(ValidationError, match="not a regular file"):
        resume.find_point("latest", run_dir.parent, "p1")


def test_a_deep_train_state_leaves_the_state_out(run_dir):
    state = run_dir / "p1-000001-state"
    state.mkdir()
    (state / resume.COMPLETE_MARK).write_bytes(b"x")
    (state / "train_state.json").write_text("[" * 2000 + "]" * 2000)
    assert resume.saved_states(run_dir, "p1") == []


@pytest.mark.parametrize("value", ["~nouser-lw-test/x", "p1-\x00001"])
def test_a_resume_value_the_os_refuses_is_a_sentence(run_dir, value):
    with pytest.raises(ValidationError, match="is not a run folder of this project"):
        resume.find_run(value, run_dir.parent, "p1")


def test_a_deep_or_fifo_kohya_config_is_a_sentence(tmp_path, no_hang):
    (tmp_path / "deep.json").write_text(DEEP)
    with pytest.raises(ValidationError, match="nested too deep"):
        kohya_gui.load_json(tmp_path / "deep.json")
    os.mkfifo(tmp_path / "fifo.json")
    with pytest.raises(WorkbenchError, match="not a regular file"):
        kohya_gui.load_json(tmp_path / "fifo.json")


def test_the_gui_config_node_reads_a_deep_config_as_a_sentence(pack, roots, no_hang):
    gui = pack.NODE_CLASS_MAPPINGS["KohyaGuiConfigOptions"]()
    (roots / "deep.json").write_text(DEEP)
    with pytest.raises(ValidationError, match="nested too deep"):
        gui.collect(config_file=str(roots / "deep.json"), unique_id="3")


@pytest.fixture
def project(tmp_path, monkeypatch):
    monkeypatch.setenv("LORA_WORKBENCH_SETTINGS", str(tmp_path / "none.json"))
    monkeypatch.setenv("LORA_WORKBENCH_CACHE_DIR", str(tmp_path / "cache"))
    fakes.make_kohya(tmp_path, monkeypatch)
    project = fakes.make_project(tmp_path)
    (project / "output" / "p1-001").mkdir(parents=True)
    return project


@pytest.mark.parametrize(
    "record, said",
    [
        ({"spec": ["epochs"], "base_model": "/m.safetensors"}, "spec or base_model of the wrong kind"),
        ({"spec": {}, "base_model": 5}, "spec or base_model of the wrong kind"),
        (
            {"spec": {"device": "cpu", "launcher": "python"}, "output_name": [1], "base_model": "CKPT"},
            "not a name",
        ),
        (DEEP, "nested too deep"),
    ],
)
def test_the_cli_says_a_sentence_for_a_bad_run_record(project, capsys, record, said):
    ckpt = fakes.write_checkpoint(project.parent / "sd15.safetensors", fakes.sd1_tensors())
    if isinstance(record, dict) and record.get("base_model") == "CKPT":
        record = {**record, "base_model": str(ckpt)}
    write_record(project / "output" / "p1-001", record)
    rc = cli.main(["train", str(project), "--resume", "latest"])
    err = capsys.readouterr().err
    assert rc == 1 and said in err and "Traceback" not in err, err


@pytest.mark.parametrize("args", [["--resume", "~nouser-lw-test/x"], ["--kohya-json", "DEEP"]])
def test_the_cli_says_a_sentence_for_a_bad_resume_or_kohya_json(project, tmp_path, capsys, args):
    (tmp_path / "deep.json").write_text(DEEP)
    args = [str(tmp_path / "deep.json") if a == "DEEP" else a for a in args]
    rc = cli.main(["train", str(project), *args, "--base", str(tmp_path / "m.safetensors")])
    err = capsys.readouterr().err
    assert rc == 1 and ("not a run folder" in err or "nested too deep" in err) and "Traceback" not in err, err


def test_the_training_tab_skips_a_deep_run_record(run_dir):
    from lora_workbench.training import history

    write_record(run_dir, DEEP)
    assert history.read_record(run_dir) is None
