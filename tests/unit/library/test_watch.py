"""Live relinking with a real watchdog observer on real folders (timing-robust: poll, never time)."""

import os
import shutil
import threading
import time
from pathlib import Path

import pytest

pytest.importorskip("watchdog")

from lora_workbench import events  # noqa: E402
from lora_workbench.library import layout, watch

TIMEOUT = 20.0  # generous: a loaded 2-core CI machine


def wait_for(predicate, timeout=TIMEOUT, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture
def setup(tmp_path):
    lib = tmp_path / "library"
    layout.init_library(lib)
    comfy = tmp_path / "ComfyUI"
    for sub in ("models/loras", "models/checkpoints", "models/vae"):
        (comfy / sub).mkdir(parents=True)
    yield lib, comfy
    watch.stop_all()


def linked(comfy: Path, rel: str) -> bool:
    return os.path.islink(comfy / "models" / rel)


def test_a_new_model_is_linked_live(setup):
    lib, comfy = setup
    w = watch.ensure_watcher(lib, {"comfyui": comfy})
    (lib / "loras" / "new.safetensors").write_text("x")
    wait_for(lambda: linked(comfy, "loras/new.safetensors"), what="the new link")
    wait_for(lambda: w.last_report is not None, what="the report")
    assert "loras" in w.last_report.categories


def test_only_the_touched_category_is_relinked(setup):
    lib, comfy = setup
    reports = []
    watch.ensure_watcher(lib, {"comfyui": comfy}, on_report=reports.append)
    (lib / "vae" / "v.safetensors").write_text("x")
    wait_for(lambda: linked(comfy, "vae/v.safetensors"))
    assert all(r.categories == ["vae"] for r in reports)


def test_rename_and_delete_are_followed(setup):
    lib, comfy = setup
    watch.ensure_watcher(lib, {"comfyui": comfy})
    f = lib / "loras" / "a.safetensors"
    f.write_text("x")
    wait_for(lambda: linked(comfy, "loras/a.safetensors"))
    f.rename(lib / "loras" / "b.safetensors")
    wait_for(
        lambda: (
            linked(comfy, "loras/b.safetensors") and not os.path.lexists(comfy / "models/loras/a.safetensors")
        )
    )
    (lib / "loras" / "b.safetensors").unlink()
    wait_for(lambda: not os.path.lexists(comfy / "models/loras/b.safetensors"))


def test_partial_downloads_wait_until_renamed(setup):
    lib, comfy = setup
    w = watch.ensure_watcher(lib, {"comfyui": comfy})
    part = lib / "loras" / "big.safetensors.part"
    part.write_text("half")
    (lib / "loras" / "marker.safetensors").write_text("x")  # proves a relink ran after the .part appeared
    wait_for(lambda: linked(comfy, "loras/marker.safetensors"))
    assert not os.path.lexists(comfy / "models/loras/big.safetensors.part")
    assert not os.path.lexists(comfy / "models/loras/big.safetensors")
    part.rename(lib / "loras" / "big.safetensors")
    wait_for(lambda: linked(comfy, "loras/big.safetensors"))
    assert w.running


def test_a_file_still_growing_is_linked_only_once_complete(setup):
    lib, comfy = setup
    w = watch.ensure_watcher(lib, {"comfyui": comfy}, debounce=0.3)
    f = lib / "loras" / "slow.safetensors"
    with open(f, "wb") as fh:
        for _ in range(8):  # writes closer together than the quiet window
            fh.write(b"x" * 1024)
            fh.flush()
            time.sleep(0.05)
            assert not os.path.lexists(comfy / "models/loras/slow.safetensors")
    wait_for(lambda: linked(comfy, "loras/slow.safetensors"))
    assert w.running


def test_the_watcher_ignores_unfinished_files_when_relinking(setup):
    lib, comfy = setup
    w = watch.LibraryWatcher(lib, {"comfyui": comfy})
    f = lib / "loras" / "x.safetensors"
    f.write_bytes(b"12")
    st = f.stat()
    now = time.monotonic()
    w._growing[str(f)] = (1, st.st_mtime_ns, now)  # its size changed since the last look
    assert w._unfinished(["loras"], now) == {str(f)}
    assert "loras" in w._first and w._not_before["loras"] > now  # looked at again in a second
    w._growing[str(f)] = (2, st.st_mtime_ns, now - w.quiet)  # unchanged for the whole window
    assert w._unfinished(["loras"], now) == set()


def test_a_burst_of_1000_creates_ends_in_the_correct_state(setup):
    lib, comfy = setup
    w = watch.ensure_watcher(lib, {"comfyui": comfy})
    for i in range(1000):
        (lib / "loras" / f"m{i:04d}.safetensors").write_text("x")
    for i in range(0, 1000, 2):
        (lib / "loras" / f"m{i:04d}.safetensors").unlink()
    expected = sorted(f"m{i:04d}.safetensors" for i in range(1, 1000, 2))
    wait_for(lambda: sorted(os.listdir(comfy / "models/loras")) == expected, what="the burst to settle")
    assert w.relinks < 500  # debounced, not one relink per file


def test_one_watcher_per_library_however_often_it_is_ensured(setup, tmp_path):
    lib, comfy = setup
    before = threading.active_count()
    first = watch.ensure_watcher(lib, {"comfyui": comfy})
    after_first = threading.active_count()
    for _ in range(5):
        assert watch.ensure_watcher(str(lib) + "/", {"comfyui": comfy}) is first
    assert threading.active_count() == after_first > before
    assert len(watch.watcher_status()) == 1
    # new targets are picked up by the same watcher
    other = tmp_path / "Other"
    (other / "models/loras").mkdir(parents=True)
    watch.ensure_watcher(lib, {"comfyui": other})
    (lib / "loras" / "z.safetensors").write_text("x")
    wait_for(lambda: linked(other, "loras/z.safetensors"))


def test_stop_stops_cleanly_and_the_threads_end(setup):
    lib, comfy = setup
    before = threading.active_count()
    w = watch.ensure_watcher(lib, {"comfyui": comfy})
    assert w.running
    assert watch.stop_watcher(lib) is True
    assert not w.running
    wait_for(lambda: threading.active_count() <= before, what="threads to end")
    assert watch.stop_watcher(lib) is False
    assert watch.watcher_status() == []
    (lib / "loras" / "after.safetensors").write_text("x")
    time.sleep(0.3)
    assert not os.path.lexists(comfy / "models/loras/after.safetensors")


def test_the_library_folder_removed_and_recreated_is_watched_again(setup):
    lib, comfy = setup
    w = watch.ensure_watcher(lib, {"comfyui": comfy}, health_interval=0.2)
    (lib / "loras" / "a.safetensors").write_text("x")
    wait_for(lambda: linked(comfy, "loras/a.safetensors"))
    shutil.rmtree(lib)
    wait_for(lambda: not w.status()["armed"], what="the watch to notice the library is gone")
    assert os.path.lexists(comfy / "models/loras/a.safetensors")  # library missing: nothing changed
    layout.init_library(lib)
    (lib / "loras" / "b.safetensors").write_text("x")
    wait_for(lambda: linked(comfy, "loras/b.safetensors"), what="relink after the library came back")
    wait_for(lambda: not os.path.lexists(comfy / "models/loras/a.safetensors"))
    (lib / "loras" / "c.safetensors").write_text("x")
    wait_for(lambda: linked(comfy, "loras/c.safetensors"), what="live events after re-arming")
    assert w.running


def test_a_watcher_may_start_before_the_library_exists(tmp_path):
    lib = tmp_path / "later"
    comfy = tmp_path / "ComfyUI"
    (comfy / "models/loras").mkdir(parents=True)
    try:
        w = watch.ensure_watcher(lib, {"comfyui": comfy}, health_interval=0.2)
        assert not w.status()["armed"]
        layout.init_library(lib)
        (lib / "loras" / "a.safetensors").write_text("x")
        wait_for(lambda: linked(comfy, "loras/a.safetensors"))
    finally:
        watch.stop_all()


def test_every_relink_is_published_and_shown_in_the_status(setup):
    lib, comfy = setup
    got = []
    events.subscribe(lambda e, d: got.append(d) if e == events.LIBRARY else None)
    watch.ensure_watcher(lib, {"comfyui": comfy})
    (lib / "loras" / "a.safetensors").write_text("x")
    wait_for(lambda: any(d["created"] for d in got))
    d = next(d for d in got if d["created"])
    assert d["library"] == str(lib) and d["trigger"] == "watch:loras"
    status = watch.watcher_status()[0]
    assert status["running"] and status["targets"] == {"comfyui": str(comfy)}
    assert status["last_report"]["categories"] == ["loras"]
    assert any(e["path"].endswith("a.safetensors") and "time" in e for e in status["last_events"])
