"""Attacks on library linking: UI folders that link outside, lookalike links, an empty mount point, a
library folder linking back into a UI, two passes at once (real subprocesses), a pass killed with
kill -9, and downloads that stall. Nothing outside the UI folders and the roots is written, nothing
of the user's is re-pointed or deleted, and every pass ends in the right state."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from lora_workbench.cli import main
from lora_workbench.library import layout, watch
from lora_workbench.library import linker as library
from lora_workbench.library.layout import init_library
from lora_workbench.library.linker import link_library

REPO = Path(__file__).resolve().parents[3]


def put(path: Path, text: str = "model") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def make_ui(base: Path, ui: str) -> Path:
    for candidates, _exts in layout.UI_LAYOUTS[ui].values():
        (base / candidates[0]).mkdir(parents=True, exist_ok=True)
    return base


def tree(folder: Path) -> dict[str, str]:
    """Every entry under folder (links not followed): relative path -> link text, 'dir' or 'file'."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(folder):
        for n in dirnames + filenames:
            p = os.path.join(dirpath, n)
            rel = os.path.relpath(p, folder)
            out[rel] = os.readlink(p) if os.path.islink(p) else ("dir" if os.path.isdir(p) else "file")
    return out


def wait_for(cond, timeout=10.0, what="condition"):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture
def lib(tmp_path) -> Path:
    root = tmp_path / "library"
    init_library(root)
    put(root / "loras" / "style.safetensors")
    put(root / "loras" / "people" / "anna.safetensors")
    return root


@pytest.fixture
def outside(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("outside")
    put(out / "keep.txt", "the user's")
    return out


# --------------------------------------------------------------------------- 6: UI folders that link outside
@pytest.fixture
def node(pack, comfy, roots):
    comfy.start_server()
    yield pack.NODE_CLASS_MAPPINGS["LinkModelLibrary"]()
    watch.stop_all()
    comfy.modules["server"].PromptServer.instance = None


def a1111_linking_out(roots: Path, outside: Path) -> Path:
    a1111 = make_ui(roots / "a1111", "a1111")
    os.rmdir(a1111 / "models/Lora")
    (a1111 / "models/Lora").symlink_to(outside, target_is_directory=True)
    return a1111


def test_a_ui_target_folder_that_links_outside_the_roots_gets_no_links(node, roots, outside):
    lib = roots / "library"
    init_library(lib)
    put(lib / "loras" / "people" / "anna.safetensors")
    a1111 = a1111_linking_out(roots, outside)
    before = tree(outside)
    text = node.link(library=str(lib), link_comfyui=True, a1111_path=str(a1111))["result"][0]
    assert tree(outside) == before
    assert "outside the UI folder and the allowed roots; not linked" in text
    # the watcher the node starts keeps the same rule
    node.link(library=str(lib), link_comfyui=True, a1111_path=str(a1111), watch=True)
    put(lib / "loras" / "new.safetensors")
    comfy_link = Path(watch.watcher_status()[0]["targets"]["comfyui"]) / "models/loras/new.safetensors"
    wait_for(lambda: os.path.islink(comfy_link), what="the watcher to link into ComfyUI")
    time.sleep(0.3)
    assert tree(outside) == before


def test_the_cli_follows_a_target_folder_link_and_says_so(tmp_path, lib, outside, capsys, monkeypatch):
    monkeypatch.setenv("LORA_WORKBENCH_SETTINGS", str(tmp_path / "none.json"))
    a1111 = a1111_linking_out(tmp_path, outside)
    assert main(["link", str(lib), "--a1111", str(a1111), "--no-comfyui", "--no-forge"]) == 0
    assert "note: A1111 loras links go to" in capsys.readouterr().out
    assert os.path.islink(outside / "style.safetensors")  # the user's own choice, from their shell


def test_a_sub_folder_swapped_for_a_link_after_planning_is_not_written_through(tmp_path, lib, outside):
    comfy = make_ui(tmp_path / "ComfyUI", "comfyui")
    plan = library.plan_links(lib, layout.targets_for({"comfyui": comfy}), roots=[str(tmp_path)])
    (comfy / "models/loras/people").symlink_to(outside, target_is_directory=True)  # the race
    report = library.apply_plan(plan)
    assert tree(outside) == {"keep.txt": "file"}
    assert any("people" in p for p, _ in report.collisions)
    assert os.path.islink(comfy / "models/loras/style.safetensors")


def test_a_target_folder_swapped_for_a_link_after_planning_is_refused(tmp_path, lib, outside):
    comfy = make_ui(tmp_path / "ComfyUI", "comfyui")
    plan = library.plan_links(lib, layout.targets_for({"comfyui": comfy}), roots=[str(tmp_path / "ComfyUI")])
    (comfy / "models/loras").rename(tmp_path / "old-loras")
    (comfy / "models/loras").symlink_to(outside, target_is_directory=True)
    report = library.apply_plan(plan)
    assert tree(outside) == {"keep.txt": "file"} and not report.ok


# --------------------------------------------------------------------------- 7: an empty mount point
@pytest.mark.parametrize("shape", ["empty folder", "only a readme", "category folders missing"])
def test_an_empty_mount_point_changes_nothing_and_says_it_looks_unmounted(tmp_path, lib, shape):
    comfy = make_ui(tmp_path / "ComfyUI", "comfyui")
    assert link_library(lib, {"comfyui": comfy}).ok
    before = tree(comfy)
    for child in lib.iterdir():
        (child.rename(tmp_path / f"away-{child.name}"))
    if shape == "only a readme":
        put(lib / "README.txt")
    if shape == "category folders missing":
        (lib / "repos").mkdir()
    report = link_library(lib, {"comfyui": comfy})
    assert tree(comfy) == before and report.removed == [] and not report.ok
    assert report.looks_unmounted and "looks unmounted" in report.summary()


def test_a_missing_category_folder_keeps_its_links(tmp_path, lib):
    comfy = make_ui(tmp_path / "ComfyUI", "comfyui")
    put(lib / "vae" / "v.safetensors")
    link_library(lib, {"comfyui": comfy})
    (lib / "loras").rename(tmp_path / "loras-away")
    report = link_library(lib, {"comfyui": comfy})
    assert report.removed == [] and os.path.islink(comfy / "models/loras/style.safetensors")
    assert any("no loras folder" in m for m in report.messages)
    (tmp_path / "loras-away").rename(lib / "loras")
    (lib / "clip").rmdir()
    (lib / "controlnet").rmdir()
    assert any("no clip, controlnet folders" in m for m in link_library(lib, {"comfyui": comfy}).messages)


def test_the_cli_and_the_node_report_an_unmounted_library(tmp_path, node, roots, capsys):
    empty = roots / "mnt"
    empty.mkdir()
    text = node.link(library=str(empty), link_comfyui=True)["result"][0]
    assert "looks unmounted" in text
    assert main(["link", str(empty), "--no-a1111", "--no-forge", "--comfyui", str(roots)]) == 1
    assert "looks unmounted" in capsys.readouterr().out


# --------------------------------------------------------------------------- 8: lookalike links
def test_a_lookalike_link_is_not_ours_and_is_never_repointed_or_removed(tmp_path, lib, outside):
    comfy = make_ui(tmp_path / "ComfyUI", "comfyui")
    loras = comfy / "models/loras"
    put(outside / "style.safetensors", "the user's own style")
    lookalike_wanted = f"{lib}/../{outside.name}/style.safetensors"  # named like a library file
    lookalike_gone = f"{lib}/loras/../../{outside.name}/gone.safetensors"  # dangling, not in the library
    (loras / "style.safetensors").symlink_to(lookalike_wanted)
    (loras / "gone.safetensors").symlink_to(lookalike_gone)
    os.symlink(os.path.relpath(outside / "keep.txt", loras), loras / "rel.safetensors")
    report = link_library(lib, {"comfyui": comfy})
    assert os.readlink(loras / "style.safetensors") == lookalike_wanted
    assert os.readlink(loras / "gone.safetensors") == lookalike_gone
    assert os.path.islink(loras / "rel.safetensors")
    assert [p for p, _ in report.collisions] == [str(loras / "style.safetensors")]
    assert report.fixed == [] and report.removed == []


def test_relative_links_into_the_library_are_ours(tmp_path, lib):
    comfy = make_ui(tmp_path / "ComfyUI", "comfyui")
    loras = comfy / "models/loras"
    os.symlink(os.path.relpath(lib / "loras/style.safetensors", loras), loras / "style.safetensors")
    os.symlink(os.path.relpath(lib / "loras/deleted.safetensors", loras), loras / "deleted.safetensors")
    report = link_library(lib, {"comfyui": comfy})
    assert report.collisions == [] and report.removed == [str(loras / "deleted.safetensors")]
    assert report.unchanged >= 1 and report.fixed == []


def test_the_library_through_a_symlinked_spelling_is_still_ours(tmp_path):
    real = tmp_path / "disk" / "models"
    init_library(real)
    for i in range(2000):
        put(real / "loras" / f"m{i:04d}.safetensors")
    alias = tmp_path / "models-link"
    alias.symlink_to(real, target_is_directory=True)
    comfy = make_ui(tmp_path / "ComfyUI", "comfyui")
    first = link_library(alias, {"comfyui": comfy})
    assert len(first.created) == 2000
    for spelling in (real, alias, tmp_path / "disk" / ".." / "models-link"):
        again = link_library(spelling, {"comfyui": comfy})
        assert (again.collisions, again.fixed, again.removed, again.created) == ([], [], [], [])
        assert again.unchanged == 2000
    (real / "loras" / "m0000.safetensors").unlink()
    assert link_library(real, {"comfyui": comfy}).removed == [str(comfy / "models/loras/m0000.safetensors")]


# --------------------------------------------------------------------------- a library linking back into a UI
@pytest.mark.parametrize("into", ["target folder", "ui folder", "filesystem root"])
def test_a_library_folder_linking_back_into_a_ui_does_not_grow(tmp_path, lib, into):
    comfy = make_ui(tmp_path / "ComfyUI", "comfyui")
    back = {"target folder": comfy / "models/loras", "ui folder": comfy, "filesystem root": Path("/")}[into]
    (lib / "loras" / "back").symlink_to(back, target_is_directory=True)
    for _ in range(3):
        report = link_library(lib, {"comfyui": comfy})
        assert report.errors == []
    names = tree(comfy / "models/loras")
    assert not any(n.startswith("back") for n in names), sorted(names)[:10]
    assert set(names) == {"style.safetensors", "people", "people/anna.safetensors"}
    assert any("not scanned" in m for m in report.messages)


# --------------------------------------------------------------------------- two passes at once, kill -9
def cli(*args: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(REPO), "LORA_WORKBENCH_SETTINGS": os.devnull}
    return subprocess.Popen(
        [sys.executable, "-m", "lora_workbench", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def expected_links(lib: Path, comfy: Path) -> dict[str, str]:
    return {
        os.path.relpath(p, lib / "loras"): str(p)
        for p in (lib / "loras").rglob("*.safetensors")
        if p.is_file()
    }


def comfy_links(comfy: Path) -> dict[str, str]:
    return {k: v for k, v in tree(comfy / "models/loras").items() if v not in ("dir", "file")}


def test_two_link_passes_at_once_end_right_with_no_spurious_errors(tmp_path, lib):
    comfy = make_ui(tmp_path / "ComfyUI", "comfyui")
    a1111 = make_ui(tmp_path / "a1111", "a1111")
    for i in range(1500):
        put(lib / "loras" / f"d{i % 7}" / f"m{i:04d}.safetensors")
    args = ["link", str(lib), "--comfyui", str(comfy), "--a1111", str(a1111), "--no-forge"]
    for round_ in range(3):
        if round_ == 1:  # deletions race
            for p in list((lib / "loras").rglob("m0[0-4]*.safetensors")):
                p.unlink()
        if round_ == 2:  # moves race (links to fix and to create)
            (lib / "loras" / "d1").rename(lib / "loras" / "moved")
        procs = [cli(*args), cli(*args)]
        outs = [p.communicate(timeout=120) for p in procs]
        for p, (out, err) in zip(procs, outs, strict=True):
            assert p.returncode == 0, (round_, out[-2000:], err[-2000:])
            assert "collision:" not in out and "error:" not in out and not err.strip()
        assert comfy_links(comfy) == expected_links(lib, comfy)


def test_a_link_pass_killed_mid_way_is_finished_by_the_next_one(tmp_path, lib):
    comfy = make_ui(tmp_path / "ComfyUI", "comfyui")
    for i in range(6000):
        put(lib / "loras" / f"m{i:05d}.safetensors")
    proc = cli("link", str(lib), "--comfyui", str(comfy), "--no-a1111", "--no-forge")
    wait_for(lambda: len(os.listdir(comfy / "models/loras")) > 50, timeout=60, what="the first links")
    os.kill(proc.pid, signal.SIGKILL)
    proc.communicate(timeout=30)
    again = cli("link", str(lib), "--comfyui", str(comfy), "--no-a1111", "--no-forge")
    out, err = again.communicate(timeout=120)
    assert again.returncode == 0 and "collision" not in out.split("\n", 1)[1], out[-2000:]
    assert comfy_links(comfy) == expected_links(lib, comfy)


# --------------------------------------------------------------------------- downloads that stall
@pytest.fixture
def watched(tmp_path, lib):
    comfy = make_ui(tmp_path / "ComfyUI", "comfyui")
    link_library(lib, {"comfyui": comfy})
    yield lib, comfy
    watch.stop_all()


def write_with_a_stall(path: Path, stall: float, check) -> None:
    with open(path, "wb") as fh:
        fh.write(b"x" * 4096)
        fh.flush()
        end = time.monotonic() + stall
        while time.monotonic() < end:  # the download stalls: no event for `stall` seconds
            time.sleep(0.05)
            check()
        fh.write(b"y" * 4096)
        fh.flush()
        check()


def test_a_download_that_stalls_is_linked_only_once_its_writer_closes_it(watched):
    lib, comfy = watched
    w = watch.ensure_watcher(lib, {"comfyui": comfy})
    time.sleep(0.2)
    link = comfy / "models/loras/big.safetensors"

    def not_linked():
        assert not os.path.lexists(link)

    write_with_a_stall(lib / "loras" / "big.safetensors", 1.5, not_linked)
    wait_for(lambda: os.path.islink(link), what="the link after the close")
    assert w.running


def test_without_close_events_a_stalled_file_waits_for_the_quiet_window(watched, monkeypatch):
    lib, comfy = watched
    monkeypatch.setattr(watch, "_IGNORED_EVENT_TYPES", watch._IGNORED_EVENT_TYPES | {"closed"})
    w = watch.ensure_watcher(lib, {"comfyui": comfy})
    w.quiet = 2.5
    time.sleep(0.2)
    link = comfy / "models/loras/slow.safetensors"

    def not_linked():
        assert not os.path.lexists(link)

    write_with_a_stall(lib / "loras" / "slow.safetensors", 1.5, not_linked)
    done = time.monotonic()
    wait_for(lambda: os.path.islink(link), what="the link after the quiet window")
    assert time.monotonic() - done >= 2.0


def test_partial_names_stay_unlinked_and_moved_in_files_link_at_once(watched):
    lib, comfy = watched
    watch.ensure_watcher(lib, {"comfyui": comfy})
    time.sleep(0.2)
    for name in ("a.safetensors.part", "b.safetensors.crdownload", "c.safetensors.aria2"):
        put(lib / "loras" / name)
    put(lib / "loras" / "done.safetensors.part").rename(lib / "loras" / "done.safetensors")
    (lib / "loras" / "ln.safetensors").symlink_to(lib / "loras" / "style.safetensors")
    wait_for(lambda: os.path.islink(comfy / "models/loras/done.safetensors"), timeout=3)
    wait_for(lambda: os.path.islink(comfy / "models/loras/ln.safetensors"), timeout=3)
    assert not any(
        ".part" in n or "crdownload" in n or "aria2" in n for n in os.listdir(comfy / "models/loras")
    )
