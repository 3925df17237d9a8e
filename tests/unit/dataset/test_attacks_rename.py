"""Attacks on the rename journal: a shared project's `.lora-workbench-rename.json` may only rename that
project's own subset folders inside images/ or regularization/; anything else is refused, the journal
is left where it is, and nothing outside the project moves. A real crash (kill -9) mid-rename is
recovered even after the project folder moved."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from PIL import Image

from lora_workbench.cli import main
from lora_workbench.dataset import rename
from lora_workbench.errors import WorkbenchError

REPO = Path(__file__).resolve().parents[3]


def make_subset(root: Path, parent: str, dirname: str, n: int = 2) -> Path:
    folder = root / parent / dirname
    folder.mkdir(parents=True)
    for i in range(n):
        Image.new("RGB", (64, 64)).save(folder / f"{i}.png")
        (folder / f"{i}.txt").write_text(dirname)
    return folder


def snapshot(folder: Path) -> list[str]:
    """Every path (links not followed) under folder, relative, sorted: what 'nothing moved' compares."""
    out = []
    for dirpath, dirnames, filenames in os.walk(folder):
        for n in dirnames + filenames:
            out.append(os.path.relpath(os.path.join(dirpath, n), folder))
    return sorted(out)


@pytest.fixture
def world(tmp_path):
    """A project with two subsets, and an outside folder an attacker would like moved."""
    proj = tmp_path / "proj"
    make_subset(proj, "images", "1_A")
    make_subset(proj, "images", "1_B")
    outside = tmp_path / "outside"
    make_subset(outside, "images", "1_A")  # same shape as a project: relative names would match
    (outside / "secret.txt").write_text("keep me")
    return proj, outside


def plant(proj: Path, data) -> Path:
    j = rename.journal_path(proj)
    j.write_text(data if isinstance(data, str) else json.dumps(data), encoding="utf-8")
    return j


def assert_refused(proj: Path, outside: Path, journal_text: str | bytes):
    before_p, before_o = snapshot(proj), snapshot(outside)
    with pytest.raises(WorkbenchError) as err:
        rename.recover(proj)
    msg = str(err.value)
    assert str(rename.journal_path(proj)) in msg and "\n" not in msg.strip()
    assert snapshot(proj) == before_p and snapshot(outside) == before_o
    j = rename.journal_path(proj)
    got = j.read_bytes() if isinstance(journal_text, bytes) else j.read_text(encoding="utf-8")
    assert got == journal_text  # the journal is left as it is
    return msg


# --------------------------------------------------------------------------- what a journal may name
ESCAPES = {
    "absolute outside": lambda o, p: [[str(o / "secret.txt"), str(o / "moved.txt")]],
    "absolute outside subset": lambda o, p: [[str(o / "images/1_A"), str(o / "images/9_A")]],
    "dot-dot": lambda o, p: [["images/../../outside/secret.txt", "images/../../outside/x.txt"]],
    "dot-dot in the name": lambda o, p: [["images/..", "images/x"]],
    "project file": lambda o, p: [["dataset.toml", "x.toml"]],
    "project root subset": lambda o, p: [["images", "imagez"]],
    "a file in a subset": lambda o, p: [["images/1_A/0.png", "images/1_A/9.png"]],
    "across parents": lambda o, p: [["images/1_A", "regularization/1_A"]],
    "another parent": lambda o, p: [["output/x", "output/y"]],
    "empty name": lambda o, p: [["images/", "images/x"]],
    "absolute v2": lambda o, p: [[str(p / "images/1_A"), str(p / "images/3_A")]],
    "backslash parent": lambda o, p: [["images\\..\\..\\outside", "images/x"]],
    "NUL": lambda o, p: [["images/1_A\x00", "images/3_A"]],
}


@pytest.mark.parametrize("case", sorted(ESCAPES))
def test_a_journal_naming_anything_but_a_subset_folder_is_refused(world, case):
    proj, outside = world
    text = json.dumps({"version": 2, "moves": [["images/1_B", "images/5_B"], *ESCAPES[case](outside, proj)]})
    plant(proj, text)
    msg = assert_refused(proj, outside, text)
    assert "left as it is" in msg
    assert (proj / "images/1_B").is_dir()  # the legitimate first entry did not run either


def test_version_1_absolute_journals_are_confined_to_the_project_they_name(world):
    proj, outside = world
    text = json.dumps(
        {
            "version": 1,
            "project_dir": "/",
            "moves": [[str(outside / "images/1_A"), str(outside / "images/2_A")]],
        }
    )
    plant(proj, text)
    assert_refused(proj, outside, text)


def test_relative_entries_are_taken_in_the_project_not_the_working_folder(world, monkeypatch):
    proj, outside = world
    monkeypatch.chdir(outside)  # the seed resolved relative names against the process's folder
    plant(proj, {"version": 2, "moves": [["images/1_A", "images/4_A"]]})
    report = rename.recover(proj)
    assert report.found and [Path(t).name for _s, t in report.steps] == ["4_A"]
    assert (proj / "images/4_A").is_dir() and (outside / "images/1_A").is_dir()


def test_a_symlinked_images_folder_is_refused(world):
    proj, outside = world
    (proj / "regularization").symlink_to(outside / "images", target_is_directory=True)
    text = json.dumps({"version": 2, "moves": [["regularization/1_A", "regularization/7_A"]]})
    plant(proj, text)
    assert "not a plain folder" in assert_refused(proj, outside, text)


def test_a_journal_that_is_a_symlink_is_not_read(world):
    proj, outside = world
    real = outside / "journal.json"
    real.write_text(json.dumps({"version": 2, "moves": [["images/1_A", "images/6_A"]]}))
    rename.journal_path(proj).symlink_to(real)
    with pytest.raises(WorkbenchError, match="symbolic link"):
        rename.recover(proj)
    assert (proj / "images/1_A").is_dir() and os.path.islink(rename.journal_path(proj))


MALFORMED = {
    "not json": "{not json",
    "a list": "[]",
    "no moves": '{"version": 2}',
    "moves not a list": '{"version": 2, "moves": {"a": "b"}}',
    "entry of three": '{"version": 2, "moves": [["images/1_A", "images/2_A", "x"]]}',
    "entry of numbers": '{"version": 2, "moves": [[1, 2]]}',
    "entry a string": '{"version": 2, "moves": ["images/1_A"]}',
    "unknown version": '{"version": 99, "moves": []}',
    "boolean version": '{"version": true, "moves": []}',
    "deep nesting": '{"moves": ' + "[" * 100000 + "]" * 100000 + "}",
    "two to one": '{"version": 2, "moves": [["images/1_A", "images/9_X"], ["images/1_B", "images/9_X"]]}',
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_a_malformed_journal_is_a_clear_error(world, case):
    proj, outside = world
    plant(proj, MALFORMED[case])
    assert_refused(proj, outside, MALFORMED[case])


def test_a_journal_that_is_not_utf8_or_huge_is_a_clear_error(world):
    proj, outside = world
    j = rename.journal_path(proj)
    j.write_bytes(b'{"moves": ["\xff\xfe"]}')
    assert_refused(proj, outside, b'{"moves": ["\xff\xfe"]}')
    big = b'{"moves": [' + b'["images/1_A", "images/2_A"],' * 50000 + b"]}"
    j.write_bytes(big)
    assert "1 MiB" in assert_refused(proj, outside, big)


# --------------------------------------------------------------------------- public interfaces
def test_the_node_refuses_a_planted_journal_and_moves_nothing(pack, comfy, roots):
    proj = roots / "proj"
    make_subset(proj, "images", "1_A")
    outside = roots.parent / "outside-node"
    make_subset(outside, "images", "1_A")
    text = json.dumps({"version": 2, "moves": [[str(outside / "images/1_A"), str(outside / "images/2_A")]]})
    plant(proj, text)
    node = pack.NODE_CLASS_MAPPINGS["DatasetSubsetWeights"]()
    with pytest.raises(WorkbenchError, match="journal"):
        node.prepare(
            project_folder=str(proj),
            weights="",
            width=64,
            height=64,
            enable_bucket=False,
            apply_mode="toml (non-destructive)",
            batch_size=1,
            epochs=1,
            max_items_per_epoch=0,
        )
    assert (outside / "images/1_A").is_dir() and rename.journal_path(proj).read_text() == text


@pytest.mark.parametrize("argv", [["dataset", "recover"], ["dataset", "apply"]])
def test_the_cli_refuses_a_planted_journal_in_one_line(world, capsys, argv):
    proj, outside = world
    text = json.dumps({"version": 2, "moves": [["images/../../outside/images/1_A", "images/x"]]})
    plant(proj, text)
    assert main([*argv, str(proj)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: The rename journal") and err.count("\n") == 1
    assert (outside / "images/1_A").is_dir() and not (outside / "images/x").exists()
    assert rename.journal_path(proj).read_text() == text


# --------------------------------------------------------------------------- a real crash
CRASHER = textwrap.dedent(
    """
    import sys, time
    from lora_workbench.dataset import prepare, rename
    real = rename._rename_entry
    def slow(folder, src, dst):
        real(folder, src, dst)
        open(sys.argv[2], "w").close()  # tell the test one folder is renamed
        time.sleep(60)                  # ... and wait for kill -9
    rename._rename_entry = slow
    options = prepare.DatasetOptions(resolution=(64, 64), repeats="equal")
    prepare.prepare_dataset(sys.argv[1], options, apply_mode="rename")
    """
)


def test_a_rename_killed_mid_way_is_finished_after_the_project_moved(tmp_path):
    proj = tmp_path / "proj"
    make_subset(proj, "images", "A", 1)  # no repeats prefix yet: both folders get renamed
    make_subset(proj, "images", "B", 3)
    flag = tmp_path / "one-done"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    child = subprocess.Popen([sys.executable, "-c", CRASHER, str(proj), str(flag)], env=env)
    try:
        deadline = time.monotonic() + 30
        while not flag.exists():
            assert child.poll() is None and time.monotonic() < deadline, "the child never renamed"
            time.sleep(0.02)
        os.kill(child.pid, signal.SIGKILL)
    finally:
        child.wait(10)
    assert rename.journal_path(proj).exists()
    journal = json.loads(rename.journal_path(proj).read_text())
    assert all(not os.path.isabs(p) for pair in journal["moves"] for p in pair)
    moved = tmp_path / "elsewhere" / "proj-moved"
    moved.parent.mkdir()
    proj.rename(moved)  # the user moves the project before recovering
    out = subprocess.run(
        [sys.executable, "-m", "lora_workbench", "dataset", "recover", str(moved)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    assert "Interrupted rename finished:" in out.stdout
    expected = {"A", "B"}
    for src, dst in journal["moves"]:
        expected = (expected - {src.split("/")[1]}) | {dst.split("/")[1]}
    assert set(os.listdir(moved / "images")) == expected and len(journal["moves"]) == 2
    assert not rename.journal_path(moved).exists()
