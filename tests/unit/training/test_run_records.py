"""run.json as the Training tab reads it: capped (by fstat, before a byte is read), typed field by field,
a real long run's record well under the cap, and a record of another shape skipped or trimmed."""

from __future__ import annotations

import json
import math
import os

import pytest

from lora_workbench.training import history, records
from lora_workbench.training.runner import TrainStatus
from tests.unit.training.test_history import make_run


def test_a_record_over_the_cap_is_refused_before_a_byte_is_read(tmp_path, monkeypatch):
    run = make_run(tmp_path / "p", "p-001")
    with open(run / "run.json", "wb") as f:
        f.truncate(100 << 20)  # sparse: 100 MB that cost nothing to plant
    read = []
    real_read = os.read
    monkeypatch.setattr(os, "read", lambda fd, n: read.append(n) or real_read(fd, n))
    assert history.read_record(run) is None
    assert read == []
    monkeypatch.undo()
    assert history.list_runs([tmp_path / "p"]) == []


def test_a_valid_record_over_the_cap_is_left_out_of_the_list(tmp_path):
    run = make_run(tmp_path / "p", "p-001")
    padding = "x" * records.MAX_RECORD_BYTES
    (run / "run.json").write_text(json.dumps({"state": "finished", "text": padding}), encoding="utf-8")
    assert history.read_record(run) is None and history.list_runs([tmp_path / "p"]) == []


def test_a_real_long_run_s_record_stays_well_under_the_cap():
    # What train.py writes for a 100,000-step run: every loss, the status with 500 of them, indent=2.
    status = TrainStatus(run_id="p-001", state="finished", step=100_000, total=100_000)
    status.losses = [(i, 0.1 + 1.0 / i) for i in range(1, 100_001)]
    record = {"state": "finished", "losses": [list(x) for x in status.losses]}
    record["status"] = status.to_dict(max_losses=500)
    size = len(json.dumps(record, indent=2, default=str))
    assert size < records.MAX_RECORD_BYTES * 2 / 3


def test_a_record_the_runner_wrote_comes_back_whole(tmp_path):
    status = TrainStatus(run_id="p-001", state="finished", step=3, total=3, epoch=1, epochs=1, it_per_s=2.5)
    status.losses = [(1, 0.5), (2, math.nan), (3, 0.25)]
    record = {
        "state": "finished",
        "started_at": "2025-10-11T12:00:00+0000",
        "finished_at": "2025-10-11T12:01:30+0000",
        "losses": [list(x) for x in status.losses],  # a NaN loss is written as NaN
        "status": status.to_dict(max_losses=500),
        "spec": {"epochs": 1},
        "base_model": "/models/sd15.safetensors",
        "device": "cuda",
        "warnings": ["a note"],
    }
    rec = records.typed(json.loads(json.dumps(record, indent=2, default=str)))
    assert rec["notes"] == [] and rec["losses"] == [[1, 0.5], [2, None], [3, 0.25]]
    assert rec["status"]["it_per_s"] == 2.5 and rec["spec"] == {"epochs": 1} and rec["warnings"] == ["a note"]


@pytest.mark.parametrize(
    ("raw", "left_out"),
    [
        ({"losses": 5}, "losses"),
        ({"losses": [None]}, "losses"),
        ({"losses": [[1, "0.5"]]}, "losses"),
        ({"losses": [[-1, 0.5]]}, "losses"),
        ({"losses": [[True, 0.5]]}, "losses"),
        ({"warnings": 5}, "warnings"),
        ({"warnings": ["a", 1]}, "warnings"),
        ({"state": []}, "state"),
        ({"status": []}, "status"),
        ({"status": {"step": 10**300}}, "status.step"),
        ({"status": {"elapsed_s": float("inf")}}, "status.elapsed_s"),
        ({"status": {"it_per_s": float("nan")}}, "status.it_per_s"),
        ({"status": {"total": "8"}}, "status.total"),
        ({"spec": {"epochs": 2.5}}, "spec.epochs"),
    ],
)
def test_a_field_of_the_wrong_type_is_left_out_with_a_note(raw, left_out):
    rec = records.typed({"state": "finished", **raw})
    assert rec["notes"] == [next(n for n in rec["notes"] if n.startswith(f"run.json's {left_out} is not"))]
    top, _, inner = left_out.partition(".")
    if inner:
        assert inner not in rec[top]
    else:  # status and spec are always objects: an odd one is an empty one
        assert rec[top] == {} if top in records.NESTED else top not in rec


def test_the_notes_reach_the_run_s_warnings(tmp_path):
    run = make_run(tmp_path / "p", "p-001")
    (run / "run.json").write_text(json.dumps({"state": "finished", "losses": 5}), encoding="utf-8")
    d = history.detail(run)
    assert d["losses"] == [] and d["warnings"] == [
        "run.json's losses is not a list of [step, loss] pairs; it was left out."
    ]
