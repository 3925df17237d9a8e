"""A plain folder of images (no images/N_Subject/ layout) is one subset named after the folder, its
repeats from the folder_repeats option; nothing in the user's folder is moved or renamed (issue 19)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from PIL import Image

from lora_workbench.cli import main
from lora_workbench.dataset import prepare
from tests.unit.dataset.dataset_fakes import make_subset, opts

try:
    import tomllib
except ModuleNotFoundError:  # pragma: no cover
    import tomli as tomllib


def photos(folder: Path, n: int = 3, captions: bool = True) -> Path:
    """`n` phone-photo-like images of mixed sizes right in `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    for i, size in zip(range(n), [(640, 480), (480, 640), (512, 512)] * n, strict=False):
        Image.new("RGB", size, (i * 40, 90, 30)).save(folder / f"IMG_{i:04d}.jpg", "JPEG")
        if captions:
            (folder / f"IMG_{i:04d}.txt").write_text("a photo of mochi", encoding="utf-8")
    return folder


def listing(folder: Path) -> list[str]:
    return sorted(os.listdir(folder))


def toml_subsets(ds) -> list[dict]:
    return tomllib.loads(Path(ds.toml_path).read_text())["datasets"][0]["subsets"]


def default_options(**kw) -> prepare.DatasetOptions:
    return prepare.DatasetOptions(repeats="folders", **kw)


def test_images_right_in_the_project_folder_are_one_subset_named_after_it(tmp_path):
    root = photos(tmp_path / "mochi")
    ds, text = prepare.prepare_dataset(root, default_options(folder_repeats=4))
    (sub,) = toml_subsets(ds)
    assert sub["image_dir"] == str(root) and sub["num_repeats"] == 4 and sub["class_tokens"] == "mochi"
    assert ds.items_per_epoch == 12 and ds.class_tokens == ["mochi"]
    assert "no `N_` repeats prefix" not in text


def test_a_plain_folder_is_left_as_it_was_except_for_dataset_toml(tmp_path):
    root = photos(tmp_path / "mochi")
    before = listing(root)
    prepare.prepare_dataset(root, default_options())
    assert listing(root) == sorted([*before, "dataset.toml"])


def test_images_right_in_images_without_subset_folders_are_one_subset(tmp_path):
    root = tmp_path / "mochi"
    images = photos(root / "images")
    ds, _ = prepare.prepare_dataset(root, default_options(folder_repeats=2))
    (sub,) = toml_subsets(ds)
    assert sub["image_dir"] == str(images) and sub["num_repeats"] == 2 and sub["class_tokens"] == "mochi"


def test_subset_folders_win_over_images_beside_them(tmp_path):
    root = photos(tmp_path / "proj")
    make_subset(root, "2_cat", 2)
    ds, _ = prepare.prepare_dataset(root, opts(wrong_size="bucket"))
    assert [s["class_tokens"] for s in toml_subsets(ds)] == ["cat"]


def test_a_plain_folder_without_captions_trains_on_its_name_with_a_warning(tmp_path):
    root = photos(tmp_path / "mochi", captions=False)
    ds, text = prepare.prepare_dataset(root, default_options())
    assert ds.subsets[0].images == 3
    assert any("have no caption (e.g. IMG_0000.jpg)" in w and "'mochi'" in w for w in ds.warnings)


def test_rename_mode_never_renames_a_plain_folder(tmp_path):
    root = tmp_path / "mochi"
    photos(root / "images")
    before = listing(root / "images")
    _, text = prepare.prepare_dataset(root, default_options(folder_repeats=5), apply_mode="rename")
    assert listing(root / "images") == before and (root / "images").is_dir()
    assert "A plain folder of images is never renamed" in text


def test_a_folder_without_images_says_where_to_put_them_without_a_command(tmp_path):
    root = tmp_path / "notes"
    root.mkdir()
    (root / "readme.txt").write_text("hi")
    r = prepare.preview(root, default_options())
    (layout,) = [i for i in r["issues"] if i["code"] == "layout"]
    assert "holds no images" in layout["message"] and "train-init" not in layout["message"]


def test_the_cli_applies_a_plain_folder_with_its_repeats(tmp_path, capsys):
    root = photos(tmp_path / "mochi")
    assert main(["dataset", "apply", str(root), "--folder-repeats", "3"]) == 0
    assert "mochi" in capsys.readouterr().out
    assert tomllib.loads((root / "dataset.toml").read_text())["datasets"][0]["subsets"][0]["num_repeats"] == 3


@pytest.mark.parametrize("value", [0, 10_001])
def test_folder_repeats_out_of_range_is_refused_naming_the_value(tmp_path, value):
    root = photos(tmp_path / "mochi")
    with pytest.raises(
        Exception, match=f"folder_repeats must be a whole number from 1 to 10000, not {value}"
    ):
        prepare.prepare_dataset(root, default_options(folder_repeats=value))


@pytest.mark.parametrize("inside", ["", "images"])
def test_editing_a_plain_folders_image_makes_the_node_run_again(tmp_path, inside):
    from lora_workbench.dataset import fingerprint

    root = tmp_path / "mochi"
    folder = photos(root / inside if inside else root)
    before = fingerprint.listing_fingerprint(root)
    Image.new("RGB", (300, 200)).save(folder / "IMG_0001.jpg", "JPEG")
    os.utime(folder / "IMG_0001.jpg", ns=(1, 1))
    assert fingerprint.listing_fingerprint(root) != before
