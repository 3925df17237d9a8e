"""What the managed trainer's files cannot make the pack do: delete or write outside its folder
through a planted link, or run a trainer from outside its folder through a damaged record. Real links."""

from __future__ import annotations

import json

import pytest

from lora_workbench import paths
from lora_workbench.trainer_env import install as inst
from lora_workbench.trainer_env.layout import MARKER, Layout, read_current
from tests.unit.trainer_env.trainer_fakes import FakeTools, Killed, make_repo, request


@pytest.fixture
def layout(tmp_path, monkeypatch) -> Layout:
    monkeypatch.setenv("LORA_WORKBENCH_HOME", str(tmp_path / "home"))
    for var in ("KOHYA_SS_PATH", "KOHYA_PYTHON"):
        monkeypatch.delenv(var, raising=False)
    return Layout.default()


@pytest.fixture
def victim(tmp_path):
    folder = tmp_path / "victim"
    folder.mkdir()
    (folder / "keep.txt").write_text("mine", encoding="utf-8")
    (folder / MARKER).touch()  # even a folder that carries the marker is not ours through a link
    return folder


def installed(layout, tmp_path):
    src, commit = make_repo(tmp_path / "src-repo")
    return inst.install(request(src, commit), layout=layout, runner=FakeTools())


def test_remove_refuses_a_trainer_folder_that_is_a_link(layout, victim):
    layout.trainer_dir.parent.mkdir(parents=True)
    layout.trainer_dir.symlink_to(victim, target_is_directory=True)
    with pytest.raises(inst.TrainerInstallError, match="is a link; the pack removes only folders it made"):
        inst.remove(layout)
    assert (victim / "keep.txt").read_text() == "mine"


def test_remove_unlinks_a_planted_build_link_without_following_it(layout, victim, tmp_path):
    installed(layout, tmp_path)
    (layout.trainer_dir / "0123456789ab-torch2.14.1-abcdef").symlink_to(victim, target_is_directory=True)
    inst.remove(layout)
    assert (victim / "keep.txt").read_text() == "mine"


def test_remove_leaves_a_folder_the_pack_did_not_make(layout, tmp_path):
    installed(layout, tmp_path)
    theirs = layout.trainer_dir / "my-notes"
    theirs.mkdir()
    (theirs / "n.txt").write_text("x", encoding="utf-8")
    inst.remove(layout)
    assert (theirs / "n.txt").is_file()


def test_a_link_planted_inside_a_build_is_unlinked_not_followed(layout, victim, tmp_path):
    report = installed(layout, tmp_path)
    (layout.trainer_dir / report.build / "src" / "evil").symlink_to(victim, target_is_directory=True)
    inst.remove(layout)
    assert (victim / "keep.txt").read_text() == "mine"


def test_a_clone_folder_planted_as_a_link_is_replaced_never_written_through(layout, victim, tmp_path):
    src, commit = make_repo(tmp_path / "src-repo")
    with pytest.raises(Killed):  # stopped after the clone: the build's folders exist
        inst.install(request(src, commit), layout=layout, runner=FakeTools(kill="venv-before"))
    build = read_build(layout)
    for name in ("src.part", "venv"):
        target = build / name
        if target.exists():
            inst.remove_tree(target, layout)
        target.symlink_to(victim, target_is_directory=True)
    (build / "build" / "clone.stamp").unlink()
    inst.install(request(src, commit), layout=layout, runner=FakeTools())
    assert sorted(p.name for p in victim.iterdir()) == [MARKER, "keep.txt"]
    assert (victim / "keep.txt").read_text() == "mine"


def read_build(layout):
    return next(p for p in layout.trainer_dir.iterdir() if (p / MARKER).is_file())


@pytest.mark.parametrize("name", ["../../../victim", "/etc", "", "a/b", 7, ".."])
def test_a_record_naming_a_build_outside_the_trainer_folder_is_never_used(layout, tmp_path, name):
    layout.trainer_dir.mkdir(parents=True)
    layout.current.write_text(json.dumps({"build": name}), encoding="utf-8")
    assert paths.managed_trainer() is None and paths.kohya_python() is None
    with pytest.raises(ValueError, match="names no valid build"):
        read_current(layout)


def test_a_record_that_is_a_fifo_does_not_block(layout):
    import os

    layout.trainer_dir.mkdir(parents=True)
    os.mkfifo(layout.current)
    assert paths.managed_trainer() is None


def test_a_record_that_is_a_link_is_not_followed(layout, tmp_path):
    elsewhere = tmp_path / "elsewhere.json"
    elsewhere.write_text(json.dumps({"build": "0123456789ab-torch2.14.1-abcdef"}), encoding="utf-8")
    layout.trainer_dir.mkdir(parents=True)
    layout.current.symlink_to(elsewhere)
    assert paths.managed_trainer() is None
