"""The runner: a real subprocess (tests/unit/fake_trainer.py) watched, parsed, published and cancelled."""

from __future__ import annotations

import math
import os
import sys
import threading
import time
from pathlib import Path

import pytest

from lora_workbench import events
from lora_workbench.training import runner
from lora_workbench.training.proctree import pid_alive
from lora_workbench.training.runner import RunOptions, TrainStatus, run_process, summarize_tail

FAKE = Path(__file__).with_name("fake_trainer.py")


def fake(*args: str) -> list[str]:
    return [sys.executable, str(FAKE), *args]


def run(tmp_path, *args, **kw):
    kw.setdefault("poll_interval", 0.05)
    return run_process(
        fake(*args),
        RunOptions(cwd=str(tmp_path), env=None, log_path=str(tmp_path / "logs" / "train.log"), **kw),
    )


def wait_gone(pid: int, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not pid_alive(pid):
            return True
        time.sleep(0.05)
    return not pid_alive(pid)


def test_progress_reaches_the_total_with_one_loss_per_step(tmp_path):
    out = tmp_path / "lora.safetensors"
    updates: list[dict] = []
    threads: set[int] = set()

    def on_update(st: TrainStatus) -> None:
        threads.add(threading.get_ident())
        updates.append(st.to_dict())

    res = run(
        tmp_path,
        "--steps",
        "6",
        "--epochs",
        "2",
        "--output",
        str(out),
        on_update=on_update,
        run_id="r1",
        node_id="7",
    )
    st = res.status
    assert res.returncode == 0 and not res.cancelled
    assert st.state == "finished" and st.message == ""
    assert (st.step, st.total, st.epoch, st.epochs) == (6, 6, 2, 2)
    assert st.losses == [(i, float(f"{1 / i:.3g}")) for i in range(1, 7)]
    assert st.saved == [str(out)] and st.run_id == "r1" and st.node_id == "7"
    assert threads == {threading.get_ident()}  # on_update runs on the caller's thread
    assert updates[-1]["state"] == "finished"
    assert any(u["state"] == "running" for u in updates)
    assert runner.current_status()["state"] == "finished"
    assert events.latest(events.TRAIN)["run_id"] == "r1"


def _hold_until_the_child_exited(tmp_path):
    """A TRAIN subscriber that, at the run's first event, waits until the fake trainer has written all
    its output, both pipe readers have ended and the child has exited: the runner's next read then
    gets everything at once, with the exit (what a loaded machine does by chance)."""

    def hold(name: str, data: dict) -> None:
        if name != events.TRAIN or data["state"] != "starting":
            return
        for t in threading.enumerate():
            if t.name.startswith("lora-workbench-std"):
                t.join(10)
        pid = int((tmp_path / "fake_trainer.pid").read_text())
        deadline = time.monotonic() + 10
        while os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is None:
            assert time.monotonic() < deadline
            time.sleep(0.01)

    return events.subscribe(hold)


@pytest.mark.skipif(not hasattr(os, "waitid"), reason="needs os.waitid (POSIX)")
def test_a_run_whose_output_arrives_in_one_read_is_shown_running_before_finished(tmp_path):
    states: list[str] = []
    unsubscribe = _hold_until_the_child_exited(tmp_path)
    try:
        res = run(tmp_path, "--steps", "6", "--at-once", on_update=lambda st: states.append(st.state))
    finally:
        unsubscribe()
    assert res.status.state == "finished" and res.status.step == 6
    assert "running" in states and states[-1] == "finished"
    assert states.index("running") < states.index("finished")


def test_sample_images_are_found_while_training(tmp_path):
    out = tmp_path / "out"
    seen: list[list[str]] = []
    res = run(
        tmp_path,
        "--steps",
        "6",
        "--sleep",
        "0.3",
        "--sample-at",
        "2",
        "--output_dir",
        str(out),
        on_update=lambda st: seen.append(list(st.samples)) if st.state == "running" else None,
    )
    sample = str(out / "sample" / "x_000002_00.png")
    assert res.status.samples == [sample]
    assert any(sample in s for s in seen)  # shown before the run ended


def test_log_file_holds_both_streams_raw(tmp_path):
    res = run(tmp_path, "--steps", "2")
    raw = Path(res.status.log_path).read_bytes()
    assert b"\rsteps:" in raw and b"epoch 1/1" in raw and "学習開始".encode() in raw
    # appended, never truncated
    run(tmp_path, "--steps", "2")
    assert Path(res.status.log_path).read_bytes().startswith(raw)


def test_failure_tail_quotes_the_traceback(tmp_path):
    res = run(tmp_path, "--steps", "5", "--fail", "2", "--sleep", "0.05")
    st = res.status
    assert res.returncode == 1 and st.state == "failed"
    assert st.message == "sd-scripts exited with code 1: ValueError: fake failure at step 3"
    assert "Traceback (most recent call last):" in res.tail
    assert res.tail[-1] == "ValueError: fake failure at step 3"
    assert not any("steps:" in line for line in res.tail)
    assert st.step == 2 and st.losses == [(1, 1.0), (2, 0.5)]
    msg = res.error_message()
    assert not res.ok and msg.startswith(st.message) and "Traceback" in msg and st.log_path in msg


FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "sdscripts"


def test_real_crash_log_replayed_gives_the_trainers_error_not_accelerates(tmp_path):
    # A real `accelerate launch train_network.py --mixed_precision fp16` crash on CPU, replayed.
    res = run(tmp_path, "--replay", str(FIXTURES / "runner_accelerate_fp16cpu.log"), "--exit", "1")
    assert res.status.state == "failed"
    assert res.status.message == (
        "sd-scripts exited with code 1: RuntimeError: expected m1 and m2 to have "
        "the same dtype, but got: c10::Half != float"
    )
    assert len(res.tail) <= runner.TAIL_LINES
    assert (
        res.tail.count("Traceback (most recent call last):") == 1
    )  # accelerate's own is cut to its last line
    assert not any(set(line.strip()) == {"^"} for line in res.tail)
    assert "RuntimeError: expected m1 and m2 to have the same dtype, but got: c10::Half != float" in res.tail
    assert res.tail[-1].startswith("subprocess.CalledProcessError")


def test_real_no_data_log_replayed_is_a_failure_that_says_so(tmp_path):
    res = run(tmp_path, "--replay", str(FIXTURES / "runner_accelerate_nodata.log"))
    assert res.returncode == 0 and res.status.state == "failed"
    assert "No data found" in res.status.message
    assert any(line.startswith("ERROR No data found.") for line in res.tail)
    assert not any("it/s]" in line for line in res.tail)


def test_exit_zero_with_no_data_found_is_a_failure(tmp_path):
    res = run(tmp_path, "--no-data")
    assert res.returncode == 0 and res.status.state == "failed"
    assert "No data found" in res.status.message
    assert any("No data found" in line for line in res.tail)


def test_finished_without_a_checkpoint_says_so(tmp_path):
    res = run(tmp_path, "--steps", "1")
    assert res.status.state == "finished" and res.status.message == "sd-scripts reported no saved checkpoint"


@pytest.mark.parametrize("ignore_sigint", [False, True], ids=["sigint", "ignores-sigint"])
def test_cancel_kills_the_whole_process_tree(tmp_path, ignore_sigint):
    pidfile = tmp_path / "grandchild.pid"
    args = ["--steps", "1000", "--sleep", "0.05", "--spawn-child", str(pidfile)]
    if ignore_sigint:
        args.append("--ignore-sigint")
    seen: list[int] = []

    def should_cancel() -> bool:
        st = runner.current_status()
        seen.append(st["step"] if st else 0)
        return bool(st) and st["step"] >= 2

    t0 = time.monotonic()
    res = run(tmp_path, *args, should_cancel=should_cancel, grace_seconds=1.0)
    took = time.monotonic() - t0
    grandchild = int(pidfile.read_text())
    assert res.cancelled and res.status.state == "cancelled"
    assert res.returncode is not None
    assert wait_gone(grandchild, 3.0), "the grandchild survived the cancel"
    assert took < 15
    assert runner.current_status()["state"] == "cancelled"


def test_cancel_current_stops_the_running_training(tmp_path):
    assert runner.cancel_current() is False or runner.current_status()["state"] in runner.FINAL_STATES
    pidfile = tmp_path / "grandchild.pid"

    def cancel_soon():
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            st = runner.current_status()
            if st and st["state"] == "running" and st["step"] >= 1:
                assert runner.cancel_current() is True
                return
            time.sleep(0.02)

    t = threading.Thread(target=cancel_soon)
    t.start()
    res = run(tmp_path, "--steps", "1000", "--sleep", "0.05", "--spawn-child", str(pidfile))
    t.join()
    assert res.cancelled and res.status.state == "cancelled"
    assert wait_gone(int(pidfile.read_text()), 3.0)
    assert runner.cancel_current() is False


def test_interrupt_from_on_update_kills_the_tree_and_reraises(tmp_path):
    class InterruptProcessingException(Exception):
        pass

    pidfile = tmp_path / "grandchild.pid"

    def on_update(st: TrainStatus) -> None:
        if st.step >= 2:
            raise InterruptProcessingException()

    with pytest.raises(InterruptProcessingException):
        run(
            tmp_path, "--steps", "1000", "--sleep", "0.05", "--spawn-child", str(pidfile), on_update=on_update
        )
    assert wait_gone(int(pidfile.read_text()), 3.0)
    assert runner.current_status()["state"] == "cancelled"


def test_the_end_is_published_even_when_the_last_update_raises(tmp_path):
    # ComfyUI's interrupt raises from the final progress update: the browser must still hear the end.
    class Interrupted(Exception):
        pass

    def on_update(status):
        if status.state in runner.FINAL_STATES:
            raise Interrupted()

    with pytest.raises(Interrupted):
        run(tmp_path, "--steps", "2", on_update=on_update)
    assert events.latest(events.TRAIN)["state"] == "finished"


def test_a_process_left_behind_by_a_finished_run_is_stopped(tmp_path):
    pidfile = tmp_path / "grandchild.pid"
    res = run(tmp_path, "--steps", "2", "--spawn-child", str(pidfile))
    assert res.status.state == "finished"
    assert wait_gone(int(pidfile.read_text()), 3.0)


def test_published_events_are_throttled(tmp_path):
    got: list[dict] = []
    unsubscribe = events.subscribe(lambda name, data: got.append(data) if name == events.TRAIN else None)
    try:
        t0 = time.monotonic()
        res = run(tmp_path, "--steps", "150", "--sleep", "0.01", poll_interval=0.01)
        took = time.monotonic() - t0
    finally:
        unsubscribe()
    assert res.status.step == 150 and len(res.status.losses) == 150
    states = [d["state"] for d in got]
    assert states[0] == "starting" and states[-1] == "finished" and "running" in states
    # ~4 per second plus state changes, far fewer than the 300 bar refreshes.
    assert len(got) <= took / runner.PUBLISH_INTERVAL + 6


def test_child_gets_unbuffered_utf8_and_wide_columns(tmp_path):
    code = "import os; print(os.environ['PYTHONUNBUFFERED'], os.environ['PYTHONIOENCODING'], os.environ['COLUMNS'], os.environ.get('X'))"
    res = run_process(
        [sys.executable, "-c", code],
        RunOptions(cwd=str(tmp_path), env={"X": "y", "PATH": "/usr/bin"}, log_path=str(tmp_path / "env.log")),
    )
    assert (tmp_path / "env.log").read_text().strip() == "1 utf-8 250 y"
    assert res.status.state == "finished"


def test_a_missing_program_fails_with_a_sentence(tmp_path):
    res = run_process(
        [str(tmp_path / "no-such-python")], RunOptions(cwd=str(tmp_path), log_path=str(tmp_path / "x.log"))
    )
    assert res.returncode is None and res.status.state == "failed"
    assert res.status.message.startswith(f"Could not start {tmp_path / 'no-such-python'}")


def test_status_text_reads_like_the_node_shows_it():
    st = TrainStatus(
        run_id="x",
        state="running",
        step=12,
        total=24,
        epoch=2,
        epochs=3,
        loss=0.1234,
        it_per_s=1 / 1.33,
        eta_s=16,
    )
    assert st.text() == "epoch 2/3 · step 12/24 · loss 0.123 · 1.33 s/it · ETA 0:16"
    st.it_per_s = 4.2
    assert "4.20 it/s" in st.text()
    assert TrainStatus(run_id="x", message="INFO loading").text() == "starting: INFO loading"
    done = TrainStatus(run_id="x", state="failed", step=3, total=8, elapsed_s=75, message="boom")
    assert done.text() == "failed · step 3/8 · 1:15 · boom"


def test_status_dict_is_json_ready_and_thins_losses():
    import json

    st = TrainStatus(run_id="x", loss=math.nan, losses=[(i, 1.0 / i) for i in range(1, 1001)])
    st.losses[3] = (4, math.nan)
    d = st.to_dict(max_losses=100)
    json.dumps(d, allow_nan=False)
    assert d["loss"] is None and len(d["losses"]) == 100 and d["losses"][-1] == [1000, 0.001]
    assert len(st.to_dict()["losses"]) == 1000 and st.to_dict()["losses"][3] == [4, None]


def test_tail_keeps_the_trainers_traceback_and_accelerates():
    lines = (
        ["INFO loading"] * 50
        + ["ERROR something odd"]
        + ["Traceback (most recent call last):"]
        + [f'  File "train_network.py", line {i}, in f' for i in range(40)]
        + [
            "ValueError: fp16 mixed precision requires a GPU",
            "Traceback (most recent call last):",
            '  File "accelerate/launch.py", line 1',
            "subprocess.CalledProcessError: Command '[...]' returned non-zero exit status 1.",
        ]
    )
    tail = summarize_tail(lines)
    assert len(tail) <= runner.TAIL_LINES
    assert "ERROR something odd" in tail and "ValueError: fp16 mixed precision requires a GPU" in tail
    assert tail[-1].startswith("subprocess.CalledProcessError")
    assert runner.error_summary(lines) == "ValueError: fp16 mixed precision requires a GPU"
    assert summarize_tail(["a", "b"]) == ["a", "b"]
