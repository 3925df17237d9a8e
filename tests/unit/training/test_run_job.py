"""A job's steps run as one run (runner.run_job): real subprocesses in order, one status naming the
phase, cache steps skipped while their project cache is current, one Cancel, a failure naming its
phase. The steps are small Python programs printing what musubi-tuner's steps print."""

from __future__ import annotations

import os
import sys
import threading
import time
from pathlib import Path

from lora_workbench import events
from lora_workbench.training import runner
from lora_workbench.training.job import Step
from lora_workbench.training.runner import RunOptions, run_job

FAKE = Path(__file__).with_name("fake_trainer.py")

CACHE = """
import sys, time
n = int(sys.argv[1])
print("INFO:musubi_tuner.cache_latents:Loading VAE", file=sys.stderr, flush=True)
for i in range(n + 1):
    sys.stderr.write(f"\\r{100 * i // n:3d}%|##        | {i}/{n} [00:0{i}<00:01,  2.00it/s]")
    sys.stderr.flush()
    time.sleep(float(sys.argv[2]) if len(sys.argv) > 2 else 0)
open("ran.txt", "a").write(sys.argv[3] + "\\n" if len(sys.argv) > 3 else "cache\\n")
"""
FAIL = """
import sys
print("ERROR:musubi_tuner.cache_latents:the VAE file holds no VAE", file=sys.stderr)
raise SystemExit(3)
"""


def cache_step(tmp_path, name="cache_latents", phase="Caching latents", n=3, sleep=0.0, key="", tag=""):
    argv = (sys.executable, "-c", CACHE, str(n), str(sleep), tag or name)
    marker = str(tmp_path / "cache" / f"{name}.key") if key else ""
    return Step(name, phase, argv, str(tmp_path), progress="count", reuse_key=key, reuse_marker=marker)


def train_step(tmp_path, *args):
    argv = (sys.executable, str(FAKE), "--output", str(tmp_path / "lora.safetensors"), *args)
    return Step("train", "Training", argv, str(tmp_path), progress="train")


def options(tmp_path, **kw):
    kw.setdefault("poll_interval", 0.05)
    return RunOptions(cwd=str(tmp_path), log_path=str(tmp_path / "train.log"), trainer="musubi-tuner", **kw)


def ran(tmp_path) -> list[str]:
    f = tmp_path / "ran.txt"
    return f.read_text().split() if f.exists() else []


def test_steps_run_in_order_as_one_run_whose_status_names_each_phase(tmp_path):
    seen: list[tuple[str, str, str]] = []
    steps = (
        cache_step(tmp_path),
        cache_step(tmp_path, "cache_text_encoder_outputs", "Caching text-encoder outputs", n=2),
        train_step(tmp_path, "--steps", "3"),
    )
    out = run_job(
        steps, options(tmp_path, total_steps=3, on_update=lambda s: seen.append((s.phase, s.state, s.text())))
    )
    assert out.ok and out.status.state == "finished" and out.returncode == 0
    assert ran(tmp_path) == ["cache_latents", "cache_text_encoder_outputs"]
    phases = list(dict.fromkeys(p for p, _, _ in seen))
    assert phases == ["Caching latents", "Caching text-encoder outputs", "Training"]
    assert "Caching latents · 3/3 · 2.00 it/s" in [t.split(" · ETA")[0] for _, _, t in seen]
    assert "Caching text-encoder outputs · 2/2 · 2.00 it/s" in [t.split(" · ETA")[0] for _, _, t in seen]
    assert ("Training", "finished") == seen[-1][:2]
    assert not any(state == "finished" for p, state, _ in seen if p != "Training")  # one end, the job's
    assert [s for s, _ in out.status.losses] == [1, 2, 3] and out.status.step == out.status.total == 3
    log = (tmp_path / "train.log").read_text(encoding="utf-8")
    assert log.index("Loading VAE") < log.index("steps:")  # one log, every step in order


def test_the_published_events_carry_the_phase(tmp_path):
    got: list[dict] = []
    unsubscribe = events.subscribe(lambda event, data: got.append(data) if event == events.TRAIN else None)
    try:
        run_job(
            (cache_step(tmp_path), train_step(tmp_path, "--steps", "1")), options(tmp_path, total_steps=1)
        )
    finally:
        unsubscribe()
    assert [e["phase"] for e in got][0] == "Caching latents" and got[-1]["phase"] == "Training"
    assert {"Caching latents", "Training"} == {e["phase"] for e in got}
    assert any(e["phase_step"] == 3 and e["phase_total"] == 3 and e["progress"] == "count" for e in got)
    assert got[-1]["progress"] == "train"
    assert got[-1]["state"] == "finished" and runner.current_status()["phase"] == "Training"


def test_a_cache_step_whose_marker_holds_its_key_is_skipped_and_says_reused(tmp_path):
    seen: list[str] = []
    steps = (cache_step(tmp_path, key="abc123"), train_step(tmp_path, "--steps", "1"))
    first = run_job(steps, options(tmp_path, total_steps=1))
    assert first.ok and ran(tmp_path) == ["cache_latents"]
    assert (tmp_path / "cache" / "cache_latents.key").read_text().split()[0] == "abc123"
    second = run_job(steps, options(tmp_path, total_steps=1, on_update=lambda s: seen.append(s.phase)))
    assert second.ok and ran(tmp_path) == ["cache_latents"]  # not run again
    assert seen[0] == "Caching latents (reused)" and seen[-1] == "Training"


def test_a_changed_key_runs_the_cache_step_again_and_records_the_new_key(tmp_path):
    run_job((cache_step(tmp_path, key="old"), train_step(tmp_path, "--steps", "1")), options(tmp_path))
    out = run_job((cache_step(tmp_path, key="new"), train_step(tmp_path, "--steps", "1")), options(tmp_path))
    assert out.ok and ran(tmp_path) == ["cache_latents", "cache_latents"]
    assert (tmp_path / "cache" / "cache_latents.key").read_text().split()[0] == "new"


def test_a_fifo_planted_as_the_marker_runs_the_step_instead_of_hanging(tmp_path):
    (tmp_path / "cache").mkdir()
    os.mkfifo(tmp_path / "cache" / "cache_latents.key")
    out = run_job((cache_step(tmp_path, key="k"), train_step(tmp_path, "--steps", "1")), options(tmp_path))
    assert out.ok and ran(tmp_path) == ["cache_latents"]


def test_a_failing_step_ends_the_job_naming_its_phase_and_writes_no_marker(tmp_path):
    fail = Step(
        "cache_latents",
        "Caching latents",
        (sys.executable, "-c", FAIL),
        str(tmp_path),
        "count",
        reuse_key="k",
        reuse_marker=str(tmp_path / "cache" / "k.key"),
    )
    out = run_job((fail, train_step(tmp_path, "--steps", "1")), options(tmp_path))
    assert not out.ok and out.status.state == "failed" and out.returncode == 3
    assert out.status.message.startswith("Caching latents failed: musubi-tuner exited with code 3")
    assert "the VAE file holds no VAE" in out.status.message
    assert out.status.phase == "Caching latents"
    assert not (tmp_path / "lora.safetensors").exists() and not (tmp_path / "cache" / "k.key").exists()


def test_a_step_that_cannot_start_names_its_phase(tmp_path):
    missing = Step(
        "convert", "Converting for ComfyUI", (str(tmp_path / "no-python"),), str(tmp_path), "count"
    )
    out = run_job((train_step(tmp_path, "--steps", "1"), missing), options(tmp_path))
    assert out.status.state == "failed"
    assert out.status.message.startswith("Converting for ComfyUI failed: Could not start")


def test_a_job_of_one_step_fails_with_the_trainers_words_alone(tmp_path):
    out = run_job((train_step(tmp_path, "--steps", "3", "--fail", "1"),), options(tmp_path))
    assert out.status.state == "failed" and out.status.message.startswith("musubi-tuner exited with code")


def test_cancel_between_steps_starts_no_further_step(tmp_path):
    done = {"cache": False}

    def on_update(status):  # the cache step's last update: it has exited (returncode 0), the next is not up
        if status.phase == "Caching latents" and status.returncode == 0:
            done["cache"] = True

    steps = (cache_step(tmp_path), train_step(tmp_path, "--steps", "3"))
    out = run_job(steps, options(tmp_path, on_update=on_update, should_cancel=lambda: done["cache"]))
    assert out.cancelled and out.status.state == "cancelled" and out.status.phase == "Caching latents"
    assert ran(tmp_path) == ["cache_latents"] and out.returncode is None  # no process was stopped
    assert (
        not (tmp_path / "lora.safetensors").exists() and "steps:" not in (tmp_path / "train.log").read_text()
    )


def test_cancel_current_stops_whichever_step_runs_and_the_rest(tmp_path):
    def cancel_when_training():
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            st = runner.current_status()
            if st and st.get("phase") == "Training" and st["state"] == "running" and st["step"] >= 1:
                assert runner.cancel_current() is True
                return
            time.sleep(0.02)

    t = threading.Thread(target=cancel_when_training)
    t.start()
    after = Step(
        "convert", "Converting", (sys.executable, "-c", "open('converted', 'w')"), str(tmp_path), "count"
    )
    out = run_job(
        (cache_step(tmp_path), train_step(tmp_path, "--steps", "1000", "--sleep", "0.05"), after),
        options(tmp_path),
    )
    t.join()
    assert out.cancelled and out.status.state == "cancelled" and out.status.phase == "Training"
    assert not (tmp_path / "converted").exists()
    assert runner.cancel_current() is False


def test_a_count_steps_bar_leaves_the_training_figures_alone():
    st = runner.TrainStatus(
        run_id="r",
        state="running",
        step=5,
        total=10,
        phase="Converting",
        progress="count",
        phase_step=1,
        phase_total=4,
    )
    assert st.text() == "Converting · 1/4" and st.bar() == (1, 4)
    st.state = "finished"
    assert st.text().startswith("finished · step 5/10") and st.bar() == (5, 10)
    starting = runner.TrainStatus(
        run_id="r", phase="Caching latents", progress="count", message="INFO Loading VAE"
    )
    assert starting.text() == "Caching latents · starting: INFO Loading VAE"
    assert runner.TrainStatus(run_id="r", phase="Caching latents (reused)", progress="count").text() == (
        "Caching latents (reused)"
    )


def test_a_folder_planted_as_the_marker_leaves_the_cache_unmarked_and_the_run_trains(tmp_path):
    (tmp_path / "cache" / "cache_latents.key").mkdir(parents=True)
    out = run_job((cache_step(tmp_path, key="k"), train_step(tmp_path, "--steps", "1")), options(tmp_path))
    assert out.ok and out.status.state == "finished" and ran(tmp_path) == ["cache_latents"]
    assert (tmp_path / "cache" / "cache_latents.key").is_dir()  # the next run caches again
    assert [p.name for p in (tmp_path / "cache").iterdir()] == ["cache_latents.key"]  # no temporary left


def test_a_marker_shipped_in_a_shared_project_with_the_right_key_does_not_skip_the_cache_step(tmp_path):
    """The key comes from what the project shows (file names, sizes, times; settings), so a shared
    project can ship a marker holding it over caches of other images: a marker counts only when it was
    written in this very folder, and the folder a project brings is made anew where it is unpacked."""
    (tmp_path / "cache").mkdir()
    (tmp_path / "cache" / "cache_latents.key").write_text("abc123\n")  # the key alone, as shipped
    out = run_job(
        (cache_step(tmp_path, key="abc123"), train_step(tmp_path, "--steps", "1")), options(tmp_path)
    )
    assert out.ok and ran(tmp_path) == ["cache_latents"]
    shipped = tmp_path / "shipped"  # a marker written in another folder (the author's machine), moved in
    shipped.mkdir()
    os.replace(tmp_path / "cache" / "cache_latents.key", shipped / "cache_latents.key")
    os.rename(tmp_path / "cache", tmp_path / "old-cache")
    (tmp_path / "cache").mkdir()
    os.replace(shipped / "cache_latents.key", tmp_path / "cache" / "cache_latents.key")
    run_job((cache_step(tmp_path, key="abc123"), train_step(tmp_path, "--steps", "1")), options(tmp_path))
    assert ran(tmp_path) == ["cache_latents", "cache_latents"]
