"""Attacks on Save Training Images / `dataset add-images`: a workflow's subject names, sizes and project
folder, and links or FIFOs planted in the target subset folder or under the names it writes. Nothing is
read, written or removed outside the project; bad names and sizes are sentences, never a traceback."""

from __future__ import annotations

import os
import stat

import numpy as np
import pytest
from PIL import Image

from lora_workbench import paths
from lora_workbench.cli import main
from lora_workbench.dataset import pictures
from lora_workbench.dataset.add_images import AddSpec, add_images
from lora_workbench.dataset.confined import Guard
from lora_workbench.dataset.pictures import Picture
from lora_workbench.errors import PathNotAllowed, ValidationError


def pic(color=(200, 10, 10), size=(64, 64)) -> Picture:
    return Picture(Image.new("RGB", size, color))


def stored_name(p: Picture) -> str:
    return pictures.content_name(pictures.with_mask(p))


@pytest.fixture
def outside(tmp_path_factory):
    d = tmp_path_factory.mktemp("outside")
    (d / "secret.txt").write_text("secret\n")
    return d


@pytest.fixture
def proj(roots):
    return roots / "proj"


def confined_add(proj, pics, **kw):
    kw.setdefault("subject", "cat")
    kw.setdefault("repeats", 2)
    kw.setdefault("captions", "a cat")
    return add_images(AddSpec(project_dir=str(proj), **kw), pics, Guard(paths.allowed_roots()))


def snapshot(folder) -> dict:
    return {p: (p.lstat().st_mode, p.read_bytes() if p.is_file() else b"") for p in folder.rglob("*")}


# --------------------------------------------------------------------------- names
BAD_SUBJECTS = [
    "../x",
    "1_a/b",
    "a\\b",
    "..",
    ".",
    ".hidden",
    "a\x00b",
    "line\nbreak",
    "CON",
    "nul.txt",
    "com1",
    "LPT9.png",
    "trailing.",
    "x" * 300,
    "é" * 150,  # 300 bytes in UTF-8
    "a:b",
    "",
    "   ",
]


@pytest.mark.parametrize("subject", BAD_SUBJECTS)
def test_a_subject_that_is_no_plain_folder_name_is_a_sentence_and_writes_nothing(proj, subject):
    with pytest.raises(ValidationError, match="subject"):
        confined_add(proj, [pic()], subject=subject)
    assert not proj.exists()


@pytest.mark.parametrize("repeats", [0, -1, 10_001, True, 2.5])
def test_repeats_out_of_range_is_a_sentence(proj, repeats):
    with pytest.raises(ValidationError, match="repeats must be a whole number from 1 to 10000"):
        confined_add(proj, [pic()], repeats=repeats)


def test_a_caption_extension_with_a_path_in_it_is_a_sentence(proj):
    with pytest.raises(ValidationError, match="must look like .txt"):
        confined_add(proj, [pic()], caption_extension="/../../x")


# --------------------------------------------------------------------------- sizes
@pytest.mark.parametrize("shape", [(1, 20_000, 64, 3), (1, 9000, 9000, 3), (17, 8192, 8192, 3)])
def test_huge_images_are_refused_from_their_shape_before_a_pixel_is_converted(pack, comfy, roots, shape):
    huge = np.broadcast_to(np.zeros((1, 1, 1, 3), dtype=np.float32), shape)  # no memory behind it
    node = pack.NODE_CLASS_MAPPINGS["SaveTrainingImages"]()
    with pytest.raises(ValidationError, match="megapixels"):
        node.save(images=[huge], project_folder=[str(roots / "proj")], subject=["cat"], repeats=[1])
    assert not (roots / "proj").exists()


def test_more_images_than_a_run_takes_are_refused_from_the_batch_shape(pack, comfy, roots):
    many = np.broadcast_to(np.zeros((1, 1, 1, 3), dtype=np.float32), (1001, 8, 8, 3))
    node = pack.NODE_CLASS_MAPPINGS["SaveTrainingImages"]()
    with pytest.raises(ValidationError, match="at most 1000 are saved per run"):
        node.save(images=[many], project_folder=[str(roots / "proj")], subject=["cat"], repeats=[1])


def test_a_decompression_bomb_file_is_refused_from_its_header(tmp_path, capsys):
    bomb = tmp_path / "bomb.png"
    Image.new("1", (12_000, 12_000)).save(bomb)  # 144 megapixels, a few KB on disk
    assert main(["dataset", "add-images", str(tmp_path / "proj"), "--subject", "x", str(bomb)]) == 1
    assert "12000x12000" in capsys.readouterr().err
    assert not (tmp_path / "proj" / "images" / "1_x").exists()


# --------------------------------------------------------------------------- the project and its folders
def test_a_project_folder_outside_the_roots_is_refused(proj, outside):
    with pytest.raises(PathNotAllowed):
        confined_add(outside / "proj", [pic()])
    assert sorted(os.listdir(outside)) == ["secret.txt"]


def test_a_project_link_leading_out_of_the_roots_is_refused(roots, outside):
    (roots / "proj").symlink_to(outside, target_is_directory=True)
    with pytest.raises(PathNotAllowed):
        confined_add(roots / "proj", [pic()])
    assert sorted(os.listdir(outside)) == ["secret.txt"]


def test_an_images_folder_planted_as_a_link_out_is_refused(proj, outside):
    proj.mkdir()
    (proj / "images").symlink_to(outside, target_is_directory=True)
    with pytest.raises(PathNotAllowed, match="images is a link or not a folder"):
        confined_add(proj, [pic()])
    assert sorted(os.listdir(outside)) == ["secret.txt"]


def test_a_subset_folder_planted_as_a_link_out_is_refused(proj, outside):
    (proj / "images").mkdir(parents=True)
    (proj / "images" / "2_cat").symlink_to(outside, target_is_directory=True)
    with pytest.raises(PathNotAllowed, match="2_cat is a link or not a folder"):
        confined_add(proj, [pic()])
    assert sorted(os.listdir(outside)) == ["secret.txt"]


def test_a_subset_folder_planted_as_a_fifo_is_refused_without_hanging(proj):
    (proj / "images").mkdir(parents=True)
    os.mkfifo(proj / "images" / "2_cat")
    with pytest.raises(PathNotAllowed):
        confined_add(proj, [pic()])


# --------------------------------------------------------------------------- names it writes
def planted_subset(proj):
    folder = proj / "images" / "2_cat"
    folder.mkdir(parents=True)
    return folder


def test_a_link_planted_as_the_image_name_is_replaced_not_written_through(proj, outside):
    folder, p = planted_subset(proj), pic()
    name = stored_name(p)
    (folder / name).symlink_to(outside / "secret.txt")
    confined_add(proj, [p])
    assert (outside / "secret.txt").read_text() == "secret\n"
    assert stat.S_ISREG((folder / name).lstat().st_mode)
    assert Image.open(folder / name).size == (64, 64)


def test_a_link_planted_as_the_caption_name_is_neither_read_nor_written_through(proj, outside):
    folder, p = planted_subset(proj), pic()
    caption = folder / (stored_name(p)[:-4] + ".txt")
    caption.symlink_to(outside / "secret.txt")
    confined_add(proj, [p], caption_mode="keep existing")  # keep would copy a readable caption
    assert (outside / "secret.txt").read_text() == "secret\n"
    assert not caption.is_symlink() and caption.read_text() == "a cat\n"


@pytest.mark.parametrize("which", ["image", "caption"])
def test_a_fifo_planted_under_a_name_it_writes_is_replaced_without_hanging(proj, which):
    folder, p = planted_subset(proj), pic()
    name = stored_name(p)
    os.mkfifo(folder / (name if which == "image" else name[:-4] + ".txt"))
    confined_add(proj, [p], caption_mode="append")
    assert stat.S_ISREG((folder / name).lstat().st_mode)
    assert (folder / (name[:-4] + ".txt")).read_text() == "a cat\n"


def test_a_cache_name_planted_as_a_link_out_is_removed_and_its_target_kept(proj, outside):
    p = pic()
    confined_add(proj, [p])
    folder = proj / "images" / "2_cat"
    te = folder / (stored_name(p)[:-4] + "_te_outputs.npz")
    te.symlink_to(outside / "secret.txt")
    (folder / "metadata_cache.json").symlink_to(outside / "secret.txt")
    confined_add(proj, [p], captions="another caption")
    assert not te.is_symlink() and not (folder / "metadata_cache.json").is_symlink()
    assert (outside / "secret.txt").read_text() == "secret\n"


def test_a_folder_planted_under_the_image_name_is_a_sentence_and_the_rest_stays(proj):
    folder, p = planted_subset(proj), pic()
    (folder / stored_name(p)).mkdir()
    (folder / stored_name(p) / "keep").write_text("x")
    before = snapshot(folder)
    with pytest.raises(ValidationError, match="is a folder"):
        confined_add(proj, [p])
    assert snapshot(folder) == before


def test_a_hard_link_planted_as_the_caption_name_is_not_read_into_the_dataset(proj, outside):
    folder, p = planted_subset(proj), pic()
    caption = folder / (stored_name(p)[:-4] + ".txt")
    os.link(outside / "secret.txt", caption)
    confined_add(proj, [p], caption_mode="append")
    assert caption.read_text() == "a cat\n" and (outside / "secret.txt").read_text() == "secret\n"
