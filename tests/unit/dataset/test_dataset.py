"""Dataset validation, preview and apply (TOML) on real generated images."""

import dataclasses
import json
import os
from pathlib import Path

import pytest
from PIL import Image

try:  # Python 3.11+
    import tomllib
except ImportError:  # 3.10
    import tomli as tomllib

from lora_workbench.dataset import dataset_toml, fingerprint, prepare, project
from lora_workbench.datatypes import LoraDataset
from lora_workbench.errors import ValidationError, WorkbenchError
from tests.unit.dataset.dataset_fakes import make_subset, opts


@pytest.fixture
def proj(tmp_path):
    root = tmp_path / "proj"
    project.init_project(root)
    make_subset(root, "3_Cat", 7)
    make_subset(root, "1_Dog", 3)
    return root


def preview(root, weights="", res=(64, 64), bucket=False, **kw):
    return prepare.preview(root, opts(weights, res, bucket, **kw))


def apply(root, weights="", res=(64, 64), bucket=False, mode="toml", dry_run=False, **kw):
    return prepare.prepare_dataset(root, opts(weights, res, bucket, **kw), apply_mode=mode, dry_run=dry_run)


# --------------------------------------------------------------------------- validation
def _messages(report, severity):
    return [i["message"] for i in report["issues"] if i["severity"] == severity]


def test_validation_names_each_problem_file(tmp_path):
    root = tmp_path / "p"
    folder = make_subset(root, "1_A", 2)
    Image.new("RGB", (128, 64)).save(folder / "wide.png")
    (folder / "wide.txt").write_text("a")
    Image.new("RGB", (64, 64)).save(folder / "nocap.png")
    (folder / "bad.jpg").write_bytes(b"\xff\xd8\xff\xd9")
    (folder / "bad.txt").write_text("a")
    Image.new("RGB", (64, 64)).save(folder / "blank.png")
    (folder / "blank.txt").write_text("  \n")
    make_subset(root, "2_Empty", 0)
    r = preview(root)
    errors = _messages(r, "error")
    assert any(
        m.startswith(
            "1_A/wide.png is 128x64, not the training resolution 64x64: resize it, or set wrong_size to `resize`"
        )
        for m in errors
    )
    assert (
        "1_A/nocap.png has no caption: add nocap.txt beside it, or set missing_caption to class_tokens or empty."
        in errors
    )
    assert any(m.startswith("1_A/bad.jpg cannot be read as an image") for m in errors)
    assert any(m.startswith("1_A/blank.txt is empty or has no text on its first line") for m in errors)
    assert any("2_Empty has no images" in m for m in _messages(r, "warning"))
    # with buckets a different size is fine; smaller ones are one warning: they are never upscaled
    r = preview(root, res=(96, 96), bucket=True)
    assert not any("wide.png" in m for m in _messages(r, "error"))
    small = [m for m in _messages(r, "warning") if "smaller than 96x96" in m]
    assert len(small) == 1 and "(e.g. blank.png is 64x64)" in small[0] and "never upscaled" in small[0]


def test_validation_of_weights_names_and_duplicates(tmp_path):
    root = tmp_path / "p"
    make_subset(root, "1_A", 1)
    make_subset(root, "2_A", 1)
    make_subset(root, "1_B", 1)
    errors = _messages(preview(root, "Bee: 2"), "error")
    assert any("'1_A', '2_A' share the subject name 'A'" in m for m in errors)
    assert any("The weights name 'Bee', which is no subset of images/ (subsets: A, B)" in m for m in errors)


def test_empty_project_and_all_zero_weights_are_errors(tmp_path):
    root = tmp_path / "p"
    project.init_project(root)
    assert any("has no subset folders" in m for m in _messages(preview(root), "error"))
    make_subset(root, "1_A", 1)
    assert any("nothing to train" in m for m in _messages(preview(root, "A: 0"), "error"))


def test_excluded_subset_is_not_validated(tmp_path):
    root = tmp_path / "p"
    make_subset(root, "1_A", 2)
    make_subset(root, "1_Junk", 2, captions=False, size=(32, 32))
    assert not preview(root)["ok"]
    assert preview(root, "Junk: 0")["ok"]


def test_skipped_and_unusable_files_are_reported(tmp_path):
    root = tmp_path / "p"
    folder = make_subset(root, "1_A", 1)
    Image.new("RGB", (64, 64)).save(folder / "x.Png")
    (folder / "y.png").mkdir()
    r = preview(root)
    codes = {i["code"]: i for i in r["issues"]}
    assert (
        codes["image-skipped"]["severity"] == "warning"
        and "rename it to x.png" in codes["image-skipped"]["message"]
    )
    assert (
        codes["not-a-file"]["severity"] == "error" and "y.png is a folder" in codes["not-a-file"]["message"]
    )


# --------------------------------------------------------------------------- preview
def test_preview_reports_repeats_shares_steps_and_keywords(proj):
    r = preview(proj, repeats="equal", batch_size=2, epochs=3)
    json.dumps(r)
    rows = {s["name"]: s for s in r["subsets"]}
    assert rows["Cat"]["repeats"] == 3 and rows["Dog"]["repeats"] == 7
    assert rows["Cat"]["share"] == pytest.approx(0.5) and rows["Cat"]["target_share"] == pytest.approx(0.5)
    assert r["steps"] == {
        "train_items": 42,
        "regularization": False,
        "items_per_epoch": 42,
        "batch_size": 2,
        "steps_per_epoch": 21,
        "epochs": 3,
        "total_steps": 63,
        "target_steps": 0,
        "scale": "",
        "planned": False,
    }
    assert ["photo", 10] in r["keywords"]
    assert "Steps: 42 items / batch 2 = 21 steps per epoch x 3 epochs = 63 steps" in r["summary"]


def test_preview_never_raises_on_dataset_problems(tmp_path):
    root = tmp_path / "p"
    make_subset(root, "1_A", 1, captions=False)
    r = preview(root, "A: x\n")
    assert not r["ok"] and r["errors"] >= 2
    assert any("not a number" in i["message"] for i in r["issues"])
    with pytest.raises(WorkbenchError):
        preview(tmp_path / "missing")


def test_regularization_doubles_the_items(proj):
    make_subset(proj, "1_animal", 4, reg=True, captions=False)
    r = preview(proj, repeats="equal", batch_size=4, epochs=1)
    assert r["steps"]["items_per_epoch"] == 84 and r["steps"]["steps_per_epoch"] == 21
    assert any("regularization image(s)" in i["message"] for i in r["issues"])  # warning only
    assert r["ok"]


# --------------------------------------------------------------------------- apply (toml)
def test_prepare_writes_a_toml_kohya_can_read_and_leaves_folders(proj):
    before = sorted(os.listdir(proj / "images"))
    ds, text = apply(proj, "Cat: 2", batch_size=2, epochs=3)
    assert sorted(os.listdir(proj / "images")) == before
    assert isinstance(ds, LoraDataset) and ds.toml_path == str(proj.resolve() / "dataset.toml")
    data = tomllib.loads(Path(ds.toml_path).read_text(encoding="utf-8"))
    assert set(data) == {"general", "datasets"}
    assert data["general"] == {"caption_extension": ".txt", "enable_bucket": False}
    (d,) = data["datasets"]
    assert d["resolution"] == [64, 64] and d["batch_size"] == 2
    subs = {Path(s["image_dir"]).name: s for s in d["subsets"]}
    assert subs["3_Cat"] == {
        "image_dir": str(proj.resolve() / "images/3_Cat"),
        "num_repeats": 6,
        "class_tokens": "Cat",
        "caption_extension": ".txt",
        "is_reg": False,
    }
    assert subs["1_Dog"]["num_repeats"] == 7
    assert ds.items_per_epoch == 63 and ds.steps_per_epoch == 32 and ds.batch_size == 2
    assert ds.class_tokens == ["Dog", "Cat"] and ds.resolution == (64, 64)  # folder order
    assert [s.share for s in ds.subsets] == pytest.approx([1 / 3, 2 / 3])
    assert len(ds.fingerprint) == 32
    assert "Cat" in text and "share" in text
    assert dataset_toml.read_weights(Path(ds.toml_path).read_text()) == {"Cat": 2.0, "Dog": 1.0}


def test_prepare_raises_all_errors_and_changes_nothing(tmp_path):
    root = tmp_path / "p"
    make_subset(root, "1_A", 2, captions=False)
    make_subset(root, "1_B", 1, size=(32, 32))
    with pytest.raises(ValidationError) as exc:
        apply(root, mode="rename")
    msg = str(exc.value)
    assert "1_A/img0.png has no caption" in msg and "1_A/img1.png has no caption" in msg
    assert "1_B/img0.png is 32x32" in msg
    assert sorted(os.listdir(root / "images")) == ["1_A", "1_B"]
    assert not (root / "dataset.toml").exists()


def test_dry_run_writes_nothing(proj):
    ds, text = apply(proj, repeats="equal", mode="rename", dry_run=True)
    assert not (proj / "dataset.toml").exists()
    assert sorted(os.listdir(proj / "images")) == ["1_Dog", "3_Cat"]
    assert "dry run" in text and "Would rename 1 folder(s): 1_Dog -> 7_Dog" in text
    assert ds.items_per_epoch == 42


def test_fingerprint_follows_content(proj):
    a, _ = apply(proj)
    b, _ = apply(proj)
    assert a.fingerprint == b.fingerprint
    (proj / "images/3_Cat/img0.txt").write_text("a changed caption")
    c, _ = apply(proj)
    assert c.fingerprint != a.fingerprint
    d, _ = apply(proj, "Cat: 3")
    assert d.fingerprint != c.fingerprint


def test_a_foreign_dataset_toml_is_never_overwritten(proj):
    (proj / "dataset.toml").write_text("# mine\n")
    with pytest.raises(WorkbenchError, match="not written by lora-workbench"):
        apply(proj)
    assert (proj / "dataset.toml").read_text() == "# mine\n"


def test_buckets_write_bucket_keys_within_the_resolution(proj):
    ds, _ = apply(proj, bucket=True)
    d = tomllib.loads(Path(ds.toml_path).read_text())["datasets"][0]
    assert d["enable_bucket"] is True and d["min_bucket_reso"] == 64 and d["max_bucket_reso"] == 1024
    assert d["bucket_reso_steps"] == 64


def test_buckets_never_upscale_a_small_image(proj):
    ds, _ = apply(proj, bucket=True, res=(512, 512))
    assert tomllib.loads(Path(ds.toml_path).read_text())["datasets"][0]["bucket_no_upscale"] is True


def test_an_image_too_small_for_any_bucket_is_an_error_naming_it(tmp_path):
    folder = make_subset(tmp_path / "p", "1_A", 1)
    Image.new("RGB", (40, 300)).save(folder / "strip.png")
    (folder / "strip.txt").write_text("a")
    errors = _messages(preview(tmp_path / "p", res=(512, 512), bucket=True), "error")
    assert errors == [
        "1_A/strip.png is 40x300; buckets need at least 64 pixels on each side (images are never "
        "upscaled): remove it or replace it with a larger image."
    ]


def test_an_image_scaled_down_to_a_0_pixel_bucket_is_an_error_naming_it(tmp_path):
    # 160x120 scaled down to the 64x64 area is about 74x55: 55 rounds down to a 0-pixel side, where
    # sd-scripts stops with a ZeroDivisionError while it makes the dataset (the first-run browser test)
    folder = make_subset(tmp_path / "p", "1_A", 1, size=(64, 64))
    Image.new("RGB", (160, 120)).save(folder / "wide.png")
    (folder / "wide.txt").write_text("a")
    errors = _messages(preview(tmp_path / "p", res=(64, 64), bucket=True), "error")
    assert errors == [
        "1_A/wide.png is 160x120: scaled down to the 64x64 area, one side would be under 64 pixels, a "
        "0-pixel bucket that stops sd-scripts; train at a larger resolution, or crop the image closer to square."
    ]
    assert not _messages(preview(tmp_path / "p", res=(128, 128), bucket=True), "error")


@pytest.mark.parametrize(
    ("size", "area", "bucket"),
    [
        ((160, 120), 64 * 64, None),
        ((128, 128), 64 * 64, (64, 64)),
        ((160, 120), 128 * 128, (64, 64)),
        ((4000, 3000), 512 * 512, (512, 384)),
        ((4000, 200), 512 * 512, (1280, 64)),
        ((4000, 100), 512 * 512, (2560, 64)),
        ((300, 200), 512 * 512, (256, 192)),
    ],
)
def test_the_no_upscale_bucket_is_sd_scripts_own(size, area, bucket):
    # the answers of sd-scripts' BucketManager(no_upscale=True, steps 64) at 48d368fa (None: ZeroDivisionError)
    from lora_workbench.dataset.checks import no_upscale_bucket

    assert no_upscale_bucket(*size, area, 64) == bucket


def test_mixed_size_photos_train_as_they_are_with_the_default_options(tmp_path):
    root = tmp_path / "p"
    folder = make_subset(root, "1_A", 1, size=(4032, 3024), ext=".jpg")
    make_subset(root, "1_A", 1, size=(1080, 1920), ext=".jpg", stem="portrait")
    options = dataclasses.replace(prepare.DatasetOptions(), repeats="folders")
    ds, text = prepare.prepare_dataset(root, options)
    assert ds.enable_bucket and not ds.warnings and folder.is_dir()
    assert tomllib.loads(Path(ds.toml_path).read_text())["datasets"][0]["bucket_no_upscale"] is True


def test_the_dataset_object_round_trips(proj):
    ds, _ = apply(proj, target_steps=100)
    assert ds.planned_epochs and ds.target_steps == 100
    again = LoraDataset.from_dict(json.loads(json.dumps(ds.to_dict())))
    assert again == ds


# --------------------------------------------------------------------------- toml writer
@pytest.mark.parametrize(
    "value",
    [
        r"C:\Users\me\lora\images\3_Cat",
        'it\'s "quoted"',
        "tab\tnew\nline",
        "ünïcødé 猫",
        "back\\slash'quote",
        "ctrl\x01\x7f",
    ],
)
def test_toml_strings_round_trip(value):
    assert tomllib.loads(f"k = {dataset_toml.toml_string(value)}")["k"] == value


def test_windows_paths_are_literal_strings():
    assert dataset_toml.toml_string(r"C:\x\y") == r"'C:\x\y'"


def test_toml_shape_matches_config_util_keys(tmp_path):
    from lora_workbench.datatypes import DatasetSubset

    subs = [
        DatasetSubset("A", r"C:\data\1_A", 3, 2, class_tokens="A"),
        DatasetSubset("R", "/r/1_R", 3, 1, class_tokens="R", is_reg=True),
    ]
    text = dataset_toml.dumps(
        dataset_toml.build_config(subs, resolution=(768, 512), batch_size=4, enable_bucket=True)
    )
    data = tomllib.loads(text)
    general_keys = {"caption_extension", "enable_bucket"}
    dataset_keys = {
        "resolution",
        "batch_size",
        "enable_bucket",
        "min_bucket_reso",
        "max_bucket_reso",
        "bucket_reso_steps",
        "bucket_no_upscale",
        "subsets",
    }
    subset_keys = {"image_dir", "num_repeats", "class_tokens", "caption_extension", "is_reg"}
    assert set(data["general"]) <= general_keys
    assert set(data["datasets"][0]) <= dataset_keys
    assert all(set(s) == subset_keys for s in data["datasets"][0]["subsets"])
    assert data["datasets"][0]["subsets"][0]["image_dir"] == r"C:\data\1_A"
    assert data["datasets"][0]["subsets"][1]["is_reg"] is True
    assert data["datasets"][0]["min_bucket_reso"] <= 512


# --------------------------------------------------------------------------- fingerprints
def test_listing_fingerprint_changes_with_files(proj):
    a = fingerprint.listing_fingerprint(proj)
    assert a == fingerprint.listing_fingerprint(proj)
    (proj / "images/3_Cat/new.txt").write_text("x")
    assert fingerprint.listing_fingerprint(proj) != a


def test_an_unreadable_subset_folder_is_an_error_not_a_crash(tmp_path, monkeypatch):
    root = tmp_path / "p"
    folder = make_subset(root, "1_A", 1)
    make_subset(root, "1_B", 1)
    real = os.open

    def opener(path, flags, *args, **kwargs):
        if os.fspath(path) in ("1_A", str(folder)) and flags & getattr(os, "O_DIRECTORY", 0):
            raise PermissionError(13, "Permission denied")
        return real(path, flags, *args, **kwargs)

    monkeypatch.setattr(os, "open", opener)  # as a chmod 0 folder behaves for a non-root user
    r = preview(root)
    assert "The subset folder 1_A cannot be read (Permission denied)." in [i["message"] for i in r["issues"]]
    assert not r["ok"]


def test_the_trainers_toml_reader_sees_what_we_computed(proj):
    make_subset(proj, "1_person", 2, reg=True, captions=False)
    ds, _ = apply(proj, "Cat: 2", bucket=True, batch_size=2, target_steps=300)
    again = dataset_toml.dataset_from_toml(ds.toml_path, proj)
    assert again.items_per_epoch == ds.items_per_epoch and again.steps_per_epoch == ds.steps_per_epoch
    assert again.resolution == ds.resolution and again.enable_bucket and again.batch_size == 2
    assert [(s.image_dir, s.repeats, s.is_reg) for s in again.subsets] == [
        (s.image_dir, s.repeats, s.is_reg) for s in ds.subsets
    ]
    assert (again.planned_epochs, again.target_steps) == (ds.planned_epochs, 300)


def test_listing_fingerprint_ignores_sd_scripts_latent_caches(tmp_path):
    from PIL import Image

    sub = tmp_path / "images" / "2_subject"
    sub.mkdir(parents=True)
    Image.new("RGB", (64, 64)).save(sub / "a.png")
    (sub / "a.txt").write_text("subject")
    before = fingerprint.listing_fingerprint(tmp_path)
    (sub / "a_0064x0064_sd.npz").write_bytes(b"cache")
    (sub / "metadata_cache.json").write_text("{}")
    assert fingerprint.listing_fingerprint(tmp_path) == before
    (sub / "b.txt").write_text("new caption")
    assert fingerprint.listing_fingerprint(tmp_path) != before


def test_caption_options_reach_every_subset_of_the_toml(proj):
    caption = {"shuffle_caption": True, "keep_tokens": 1, "flip_aug": True}
    ds, _ = apply(proj, subset_options=caption)
    data = tomllib.loads(Path(ds.toml_path).read_text(encoding="utf-8"))
    for sub in data["datasets"][0]["subsets"]:
        assert {k: sub[k] for k in caption} == caption and sub["num_repeats"] >= 1
    plain, _ = apply(proj)
    assert plain.fingerprint != ds.fingerprint  # another TOML: the trainer's cache must not reuse the run


@pytest.mark.parametrize(
    "key", ["image_dir", "num_repeats", "is_reg", "caption_extension", "a b", "x\n[general]"]
)
def test_caption_options_cannot_replace_what_the_node_sets(proj, key):
    with pytest.raises(ValidationError, match="cannot be set per subset"):
        apply(proj, subset_options={key: True})
    assert not (proj / "dataset.toml").exists()
