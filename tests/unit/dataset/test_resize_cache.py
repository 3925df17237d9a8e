"""Images of the wrong size with buckets off: an error that names the fixes, resized copies in the
project's cache (content-keyed, reused, originals untouched), or buckets turned on."""

import hashlib
import os
from pathlib import Path

import pytest
from PIL import Image

try:  # Python 3.11+
    import tomllib
except ImportError:  # 3.10
    import tomli as tomllib

from lora_workbench.dataset import prepare
from lora_workbench.errors import ValidationError
from tests.unit.dataset.dataset_fakes import make_subset, opts


@pytest.fixture
def mixed(tmp_path):
    root = tmp_path / "p"
    make_subset(root, "2_right", 2, size=(64, 64))
    wrong = make_subset(root, "1_wrong", 3, size=(128, 64))
    Image.new("RGB", (64, 64)).save(wrong / "fits.png")
    (wrong / "fits.txt").write_text("wrong, fits")
    return root


def snapshot(folder: Path) -> dict:
    return {
        p.name: (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns)
        for p in sorted(folder.iterdir())
    }


def toml_dirs(ds) -> dict:
    data = tomllib.loads(Path(ds.toml_path).read_text(encoding="utf-8"))
    return {Path(s["image_dir"]).name: s["image_dir"] for s in data["datasets"][0]["subsets"]}


def test_the_error_says_which_fixes_exist(mixed):
    with pytest.raises(ValidationError) as exc:
        prepare.prepare_dataset(mixed, opts())
    msg = str(exc.value)
    assert "1_wrong/img0.png is 128x64, not the training resolution 64x64" in msg
    assert "set wrong_size to `resize`" in msg and "`bucket`" in msg


def test_resize_trains_on_cached_copies_and_leaves_the_originals(mixed):
    before = snapshot(mixed / "images" / "1_wrong")
    ds, text = prepare.prepare_dataset(mixed, opts(wrong_size="resize"))
    assert snapshot(mixed / "images" / "1_wrong") == before
    dirs = toml_dirs(ds)
    cache = mixed.resolve() / "cache" / "resized" / "64x64" / "images" / "1_wrong"
    assert dirs == {"2_right": str(mixed.resolve() / "images" / "2_right"), "1_wrong": str(cache)}
    assert sorted(os.listdir(cache)) == [
        "fits.png",
        "fits.txt",
        "img0.png",
        "img0.txt",
        "img1.png",
        "img1.txt",
        "img2.png",
        "img2.txt",
    ]
    for name in ("img0.png", "fits.png"):
        with Image.open(cache / name) as im:
            assert im.size == (64, 64)
    assert os.stat(cache / "fits.png").st_ino == os.stat(mixed / "images/1_wrong/fits.png").st_ino  # linked
    assert (cache / "img0.txt").read_text() == (mixed / "images/1_wrong/img0.txt").read_text()
    assert "3 trained from resized copies (3 made, 0 reused)" in text
    assert not ds.enable_bucket


def test_copies_are_reused_and_follow_changes(mixed):
    first, _ = prepare.prepare_dataset(mixed, opts(wrong_size="resize"))
    again, text = prepare.prepare_dataset(mixed, opts(wrong_size="resize"))
    assert "(0 made, 3 reused)" in text and again.fingerprint == first.fingerprint
    src = mixed / "images" / "1_wrong"
    Image.new("RGB", (96, 32), (255, 0, 0)).save(src / "img1.png")
    (src / "img2.png").unlink()
    (src / "img2.txt").unlink()
    (src / "img0.txt").write_text("a new caption")
    changed, text = prepare.prepare_dataset(mixed, opts(wrong_size="resize"))
    assert "(1 made, 1 reused)" in text and changed.fingerprint != first.fingerprint
    cache = Path(toml_dirs(changed)["1_wrong"])
    assert "img2.png" not in os.listdir(cache)
    assert (cache / "img0.txt").read_text() == "a new caption"
    with Image.open(cache / "img1.png") as im:
        assert im.size == (64, 64) and im.getpixel((32, 32))[0] > 200


def test_a_copy_is_keyed_by_content_not_name(mixed, tmp_path):
    prepare.prepare_dataset(mixed, opts(wrong_size="resize"))
    store = mixed / "cache" / "resized" / "64x64" / "store"
    assert len(os.listdir(store)) == 3  # three distinct images
    make_subset(mixed, "1_same", 3, size=(128, 64))  # byte-identical to 1_wrong's img0..2
    (mixed / "images" / "1_same" / "img0.txt").write_text("same, x")
    _, text = prepare.prepare_dataset(mixed, opts(wrong_size="resize"))
    assert "(0 made, 6 reused)" in text and len(os.listdir(store)) == 3


def test_bucket_turns_buckets_on(mixed):
    # at 128x128, not the tests' 64x64: a 128x64 image scaled down to the 64x64 area gets a 0-pixel
    # bucket in sd-scripts, which the dataset checks refuse
    ds, text = prepare.prepare_dataset(mixed, opts(res=(128, 128), wrong_size="bucket"))
    assert ds.enable_bucket and "Buckets turned on" in text
    data = tomllib.loads(Path(ds.toml_path).read_text(encoding="utf-8"))
    assert data["datasets"][0]["enable_bucket"] is True
    assert not (mixed / "cache").exists()


def test_a_dry_run_makes_no_copies(mixed):
    _, text = prepare.prepare_dataset(mixed, opts(wrong_size="resize"), dry_run=True)
    assert "Would train 3 wrong-size image(s) from resized copies" in text
    assert not (mixed / "cache").exists() and not (mixed / "dataset.toml").exists()


def test_the_preview_reports_the_copies_as_a_warning(mixed):
    r = prepare.preview(mixed, opts(wrong_size="resize"))
    assert r["ok"]
    (w,) = [i for i in r["issues"] if i["code"] == "size-resized"]
    assert "3 image(s) in 1_wrong are not 64x64" in w["message"]


@pytest.mark.parametrize("trainer_ext, refused", [("", False), (".txt", False), (".caption", True)])
def test_resized_copies_refuse_a_trainer_caption_extension_they_do_not_carry(
    mixed, tmp_path, monkeypatch, trainer_ext, refused
):
    from lora_workbench.dataset import dataset_toml
    from lora_workbench.training import train
    from lora_workbench.training.options import TrainOptions
    from tests.unit import train_fakes

    monkeypatch.setenv("LORA_WORKBENCH_SETTINGS", str(tmp_path / "none.json"))
    train_fakes.make_kohya(tmp_path, monkeypatch)
    ckpt = train_fakes.write_checkpoint(tmp_path / "models" / "sd15.safetensors", train_fakes.sd1_tensors())
    (mixed / "images" / "1_wrong" / "img0.caption").write_text("only beside the original")
    node_ds, _ = prepare.prepare_dataset(mixed, opts(wrong_size="resize"))
    o = TrainOptions(width=64, height=64, device="cpu", launcher="python", caption_extension=trainer_ext)
    for ds in (node_ds, dataset_toml.load_project_dataset(mixed)):  # the node's and the CLI's dataset
        if not refused:
            assert train.plan(o, ds, ckpt).job.total_steps > 0
            continue
        with pytest.raises(ValidationError) as exc:
            train.plan(o, ds, ckpt)
        message = str(exc.value)
        assert "wrong" in message and ".caption" in message and "resized copies" in message


class Cancelled(Exception):
    pass


def test_cancel_mid_resize_stops_at_the_next_image_and_leaves_no_partial_file(tmp_path, monkeypatch):
    from lora_workbench.dataset import resize_cache

    root = tmp_path / "p"
    make_subset(root, "1_wrong", 6, size=(128, 64))
    made: list[bytes] = []
    resized_png = resize_cache._resized_png
    monkeypatch.setattr(resize_cache, "_resized_png", lambda *a: made.append(b"") or resized_png(*a))

    def cancel_after_two() -> None:
        if len(made) >= 2:
            raise Cancelled

    with pytest.raises(Cancelled):
        prepare.prepare_dataset(root, opts(wrong_size="resize"), check_cancel=cancel_after_two)
    assert len(made) == 2  # the third image was never started
    cache = root / "cache" / "resized" / "64x64"
    assert sorted(p.suffix for p in (cache / "store").iterdir()) == [".png", ".png"]
    for p in (cache / "store").iterdir():
        with Image.open(p) as im:
            assert im.size == (64, 64)
    assert not [p for p in cache.rglob("*") if ".tmp" in p.name]
    assert not (root / "dataset.toml").exists()


def test_a_full_disk_while_resizing_is_one_sentence_and_no_partial_copy(mixed, monkeypatch):
    from lora_workbench.errors import DiskFull
    from tests.unit.full_disk import fill_disk_for, temp_files

    fill_disk_for(monkeypatch, "*.png")
    with pytest.raises(DiskFull, match=r"The disk is full: .*store/[0-9a-f]+\.png could not be written"):
        prepare.prepare_dataset(mixed, opts(wrong_size="resize"))
    store = mixed / "cache" / "resized" / "64x64" / "store"
    assert list(store.iterdir()) == [] and temp_files(mixed / "cache") == []
    assert not (mixed / "dataset.toml").exists()
