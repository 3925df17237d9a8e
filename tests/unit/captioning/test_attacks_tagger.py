"""A shared project is untrusted, and sd-scripts' tagger writes (and with --append_tags reads) each
caption with a plain open() that follows links. Attacks with real symlinks, a FIFO and a link planted
while the tagger runs: nothing outside the allowed roots is read into a caption or written, the image
concerned is named in the report, and the rest of the project is still captioned."""

from __future__ import annotations

import os

import pytest

from lora_workbench.captioning.tag import caption_project
from lora_workbench.dataset.confined import Guard
from lora_workbench.paths import allowed_roots
from tests.unit.captioning import tagger_fakes

SECRET = "secret: do not leak\n"


@pytest.fixture
def env(tmp_path, monkeypatch):
    env = tagger_fakes.setup(tmp_path, monkeypatch)
    (env.outside / "victim.txt").write_text(SECRET)
    return env


def run(env, **values):
    return caption_project(env.spec(**values), Guard(allowed_roots()), None)


def all_captions(env) -> str:
    return "".join(p.read_text() for p in env.project.rglob("*.txt") if not p.is_symlink())


@pytest.mark.parametrize("existing", ["overwrite", "append", "keep"])
def test_a_caption_planted_as_a_link_to_an_outside_file_is_neither_written_nor_read(env, existing):
    (env.subset / "img0.txt").symlink_to(env.outside / "victim.txt")
    report = run(env, existing_captions=existing)
    assert (env.outside / "victim.txt").read_text() == SECRET
    assert "secret" not in all_captions(env)
    assert "is a link" in report.skipped["images/2_cat/img0.png"]
    assert os.path.islink(env.subset / "img0.txt")  # left alone, not replaced
    assert (env.subset / "img1.txt").read_text() == "1girl, solo, long hair\n"


def test_a_caption_planted_as_a_link_inside_the_roots_is_left_alone_too(env):
    target = env.project / "notes.txt"
    target.write_text("mine\n")
    (env.subset / "img0.txt").symlink_to(target)
    report = run(env)
    assert target.read_text() == "mine\n" and "images/2_cat/img0.png" in report.skipped


def test_a_caption_planted_as_a_fifo_does_not_block_and_is_named(env):
    os.mkfifo(env.subset / "img0.txt")
    report = run(env, existing_captions="append")
    assert "is not a file" in report.skipped["images/2_cat/img0.png"]
    assert len(report.written) == 2


def test_a_link_planted_while_the_tagger_runs_is_not_written_through(env, monkeypatch):
    # The fake makes the link after the staging and before it writes: an attacker racing the run.
    monkeypatch.setenv("FAKE_WD14_PLANT", f"{env.subset / 'img2.txt'}={env.outside / 'victim.txt'}")
    report = run(env)
    assert (env.outside / "victim.txt").read_text() == SECRET
    assert "is a link" in report.skipped["images/2_cat/img2.png"]
    assert len(report.written) == 2


def test_an_image_planted_as_a_link_to_an_outside_image_is_not_tagged(env):
    outside_image = env.outside / "private.png"
    (env.subset / "img0.png").rename(outside_image)
    (env.subset / "img0.png").symlink_to(outside_image)
    report = run(env)
    assert "outside the allowed roots" in report.skipped["images/2_cat/img0.png"]
    assert not (env.subset / "img0.txt").exists() and not (env.outside / "private.txt").exists()
    assert report.images == 2


def test_a_subset_folder_linked_outside_is_refused_and_nothing_is_written_there(env):
    elsewhere = env.outside / "3_dog"
    elsewhere.mkdir()
    (env.subset / "img0.png").rename(elsewhere / "dog.png")
    (env.project / "images" / "3_dog").symlink_to(elsewhere)
    report = run(env)
    assert list(elsewhere.iterdir()) == [elsewhere / "dog.png"]
    assert any("3_dog" in where for where in report.skipped)


def test_an_images_folder_linked_outside_captions_nothing(env):
    moved = env.outside / "images"
    (env.project / "images").rename(moved)
    (env.project / "images").symlink_to(moved)
    report = run(env)
    assert report.images == 0 and not list(moved.rglob("*.txt"))
