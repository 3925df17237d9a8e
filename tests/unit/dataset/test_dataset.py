"""Dataset scan, validation, weights text, preview and apply (TOML) on real generated images."""

import json
import os
from pathlib import Path

import pytest
from PIL import Image

try:  # Python 3.11+
    import tomllib
except ImportError:  # 3.10
    import tomli as tomllib

from lora_workbench.dataset import dataset_toml, project
from lora_workbench.dataset import scan as dataset
from lora_workbench.datatypes import LoraDataset
from lora_workbench.errors import ValidationError, WorkbenchError


def make_subset(
    root: Path,
    dirname: str,
    n: int,
    size=(64, 64),
    ext=".png",
    captions=True,
    reg=False,
    caption="photo, tag",
):
    folder = root / ("regularization" if reg else "images") / dirname
    folder.mkdir(parents=True, exist_ok=True)
    fmt = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".webp": "WEBP", ".bmp": "BMP"}[ext.lower()]
    for i in range(n):
        Image.new("RGB", size, (i * 20 % 255, 80, 120)).save(folder / f"img{i}{ext}", fmt)
        if captions:
            (folder / f"img{i}.txt").write_text(f"{dirname.split('_')[-1]}, {caption}", encoding="utf-8")
    return folder


@pytest.fixture
def proj(tmp_path):
    root = tmp_path / "proj"
    project.init_project(root)
    make_subset(root, "3_Cat", 7)
    make_subset(root, "1_Dog", 3)
    return root


# --------------------------------------------------------------------------- project layout
def test_train_init_creates_the_layout_once(tmp_path):
    made = project.init_project(tmp_path / "p")
    assert sorted(p.name for p in made) == sorted(project.PROJECT_FOLDERS)
    assert project.init_project(tmp_path / "p") == []


# --------------------------------------------------------------------------- scan
def test_scan_counts_images_of_every_format_and_case(tmp_path):
    root = tmp_path / "p"
    project.init_project(root)
    make_subset(root, "2_Mix", 2, ext=".PNG")
    folder = make_subset(root, "2_Mix", 1, ext=".JPG", captions=False)
    Image.new("RGB", (64, 64)).save(folder / "w.webp", "WEBP")
    Image.new("RGB", (64, 64)).save(folder / "b.Bmp", "BMP")
    Image.new("RGB", (64, 64)).save(folder / "j.jpeg", "JPEG")
    (folder / "notes.md").write_text("x")
    scan = dataset.scan_project(root)
    (s,) = scan.subsets
    assert (s.repeats, s.name) == (2, "Mix")
    assert s.image_count == 6
    assert set(s.sizes.values()) == {(64, 64)}
    assert set(s.missing_captions) == {"w.webp", "b.Bmp", "j.jpeg"}  # img0.JPG has img0.txt from the PNG pass


def test_scan_reads_sizes_from_headers_and_finds_corrupt_files(tmp_path):
    root = tmp_path / "p"
    folder = make_subset(root, "1_A", 1, size=(96, 64))
    make_subset(root, "1_A", 1, size=(80, 48), ext=".jpg")  # img0.jpg beside img0.png
    (folder / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    (folder / "empty.jpg").write_bytes(b"")
    (folder / "text.jpg").write_bytes(b"not an image at all")
    for n in ("broken", "empty", "text"):
        (folder / f"{n}.txt").write_text("x")
    (s,) = dataset.scan_project(root).subsets
    assert s.sizes["img0.png"] == (96, 64) and s.sizes["img0.jpg"] == (80, 48)
    assert set(s.corrupt) == {"broken.png", "empty.jpg", "text.jpg"}


def test_header_parser_agrees_with_pil(tmp_path):
    for ext, fmt in ((".png", "PNG"), (".jpg", "JPEG"), (".webp", "WEBP"), (".bmp", "BMP")):
        for size in ((1, 1), (64, 48), (333, 517)):
            p = tmp_path / f"x{size[0]}{ext}"
            Image.new("RGB", size).save(p, fmt, **({"exif": Image.Exif()} if fmt == "JPEG" else {}))
            assert dataset.image_size(p) == size == dataset.image_size_decoded(p)
    progressive = tmp_path / "prog.jpg"
    Image.new("RGB", (120, 90)).save(progressive, "JPEG", progressive=True)
    assert dataset.image_size(progressive) == (120, 90)


def test_folder_without_number_prefix_is_reported_not_guessed(tmp_path):
    root = tmp_path / "p"
    make_subset(root, "Subject", 2)
    make_subset(root, "10_two_words", 1)
    scan = dataset.scan_project(root)
    by = {s.dirname: s for s in scan.subsets}
    assert (by["Subject"].repeats, by["Subject"].name) == (None, "Subject")
    assert (by["10_two_words"].repeats, by["10_two_words"].name) == (10, "two_words")
    issues = dataset.validate(scan, (64, 64), False)
    assert any(
        i.severity == "warning" and "'Subject' has no `N_` repeats prefix" in i.message for i in issues
    )


def test_scan_to_dict_is_json(proj):
    d = dataset.scan_project(proj).to_dict()
    json.dumps(d)
    assert d["images"] == 10 and d["subsets"][1]["sizes"] == {"64x64": 7}  # sorted: 1_Dog, 3_Cat


def test_scan_of_a_missing_folder_names_it(tmp_path):
    with pytest.raises(WorkbenchError, match="does not exist"):
        dataset.scan_project(tmp_path / "nope")


# --------------------------------------------------------------------------- validation
def _messages(issues, severity):
    return [i.message for i in issues if i.severity == severity]


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
    scan = dataset.scan_project(root)
    errors = _messages(dataset.validate(scan, (64, 64), enable_bucket=False), "error")
    assert (
        "1_A/wide.png is 128x64, not the training resolution 64x64; resize it or turn buckets on." in errors
    )
    assert "1_A/nocap.png has no caption: add nocap.txt beside it." in errors
    assert any(m.startswith("1_A/bad.jpg cannot be read as an image") for m in errors)
    assert any(m.startswith("1_A/blank.txt is empty") for m in errors)
    warnings = _messages(dataset.validate(scan, (64, 64), enable_bucket=False), "warning")
    assert any("2_Empty has no images" in m for m in warnings)
    # with buckets a different size is fine; a smaller one is a warning
    issues = dataset.validate(scan, (96, 96), enable_bucket=True)
    assert not any("wide.png" in m for m in _messages(issues, "error"))
    assert any("img0.png is 64x64, smaller than 96x96" in m for m in _messages(issues, "warning"))


def test_validation_of_weights_names_and_duplicates(tmp_path):
    root = tmp_path / "p"
    make_subset(root, "1_A", 1)
    make_subset(root, "2_A", 1)
    make_subset(root, "1_B", 1)
    scan = dataset.scan_project(root)
    errors = _messages(dataset.validate(scan, (64, 64), False, {"Bee": 2}), "error")
    assert any("1_A, 2_A share the subject name 'A'" in m for m in errors)
    assert any("The weights name 'Bee', which is no subset of images/ (subsets: A, B)" in m for m in errors)


def test_empty_project_and_all_zero_weights_are_errors(tmp_path):
    root = tmp_path / "p"
    project.init_project(root)
    assert any(
        "has no subset folders" in m
        for m in _messages(dataset.validate(dataset.scan_project(root), (64, 64), False), "error")
    )
    make_subset(root, "1_A", 1)
    scan = dataset.scan_project(root)
    assert any(
        "nothing to train" in m for m in _messages(dataset.validate(scan, (64, 64), False, {"A": 0}), "error")
    )


def test_zero_repeats_folder_is_excluded_unless_weighted(tmp_path):
    root = tmp_path / "p"
    make_subset(root, "0_Old", 2)
    make_subset(root, "1_New", 2)
    r = dataset.preview(root, "", (64, 64), False)
    assert r["ok"]
    old = next(s for s in r["subsets"] if s["name"] == "Old")
    assert old["excluded"] and old["repeats"] == 0
    assert any("0 repeats in its name" in i["message"] for i in r["issues"])
    r = dataset.preview(root, "Old: 1", (64, 64), False)
    assert next(s for s in r["subsets"] if s["name"] == "Old")["repeats"] == 1


def test_excluded_subset_is_not_validated(tmp_path):
    root = tmp_path / "p"
    make_subset(root, "1_A", 2)
    make_subset(root, "1_Junk", 2, captions=False, size=(32, 32))
    assert not dataset.preview(root, "", (64, 64), False)["ok"]
    assert dataset.preview(root, "Junk: 0", (64, 64), False)["ok"]


# --------------------------------------------------------------------------- weights text
def test_parse_weights_lines_prefixes_comments_and_json():
    text = "# my weights\nCat: 2\n3_Dog: 1.5   # folder name works too\n\nBird = 0\nTwo words: 1\n"
    assert dataset.parse_weights(text) == {"Cat": 2.0, "Dog": 1.5, "Bird": 0.0, "Two words": 1.0}
    assert dataset.parse_weights('{"Cat": 2, "3_Dog": 1}') == {"Cat": 2.0, "Dog": 1.0}
    assert dataset.parse_weights("") == {}
    w = {"Cat": 2.0, "Dog": 0.5}
    assert dataset.parse_weights(dataset.format_weights(w)) == w


@pytest.mark.parametrize(
    "text, needle",
    [
        ("Cat: 2\nDog two\n", "Line 2 of the weights, 'Dog two', is not `Subject: weight`"),
        ("Cat: lots\n", "Line 1 of the weights, 'Cat: lots': 'lots' is not a number"),
        ("Cat: -1\n", "must be a number >= 0"),
        ("Cat: nan\n", "must be a number >= 0"),
        ("Cat: 1\n2_Cat: 2\n", "'Cat' is given twice"),
        ("{broken", "not valid"),
    ],
)
def test_parse_weights_errors_name_the_line(text, needle):
    with pytest.raises(ValidationError) as exc:
        dataset.parse_weights(text)
    assert needle in str(exc.value)


# --------------------------------------------------------------------------- preview
def test_preview_reports_repeats_shares_steps_and_keywords(proj):
    r = dataset.preview(proj, "", (64, 64), False, batch_size=2, epochs=3)
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
    }
    assert ["photo", 10] in r["keywords"]
    assert "Steps: 42 items / batch 2 = 21 steps per epoch x 3 epochs = 63 steps" in r["summary"]


def test_preview_never_raises_on_dataset_problems(tmp_path):
    root = tmp_path / "p"
    make_subset(root, "1_A", 1, captions=False)
    r = dataset.preview(root, "A: x\n", (64, 64), False)
    assert not r["ok"] and r["errors"] >= 2
    assert any("not a number" in i["message"] for i in r["issues"])
    with pytest.raises(WorkbenchError):
        dataset.preview(tmp_path / "missing", "", (64, 64), False)


def test_regularization_doubles_the_items(proj):
    make_subset(proj, "1_animal", 4, reg=True, captions=False)
    r = dataset.preview(proj, "", (64, 64), False, batch_size=4, epochs=1)
    assert r["steps"]["items_per_epoch"] == 84 and r["steps"]["steps_per_epoch"] == 21
    assert any("regularization image(s)" in i["message"] for i in r["issues"])  # warning only
    assert r["ok"]


# --------------------------------------------------------------------------- apply (toml)
def test_prepare_writes_a_toml_kohya_can_read_and_leaves_folders(proj):
    before = sorted(os.listdir(proj / "images"))
    ds, text = dataset.prepare_dataset(proj, "Cat: 2", (64, 64), False, 2, "toml", epochs=3)
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
        dataset.prepare_dataset(root, "", (64, 64), False, 1, "rename")
    msg = str(exc.value)
    assert "1_A/img0.png has no caption" in msg and "1_A/img1.png has no caption" in msg
    assert "1_B/img0.png is 32x32" in msg
    assert sorted(os.listdir(root / "images")) == ["1_A", "1_B"]
    assert not (root / "dataset.toml").exists()


def test_dry_run_writes_nothing(proj):
    ds, text = dataset.prepare_dataset(proj, "", (64, 64), False, 1, "rename", dry_run=True)
    assert not (proj / "dataset.toml").exists()
    assert sorted(os.listdir(proj / "images")) == ["1_Dog", "3_Cat"]
    assert "dry run" in text and "Would rename 1 folder(s): 1_Dog -> 7_Dog" in text
    assert ds.items_per_epoch == 42


def test_fingerprint_follows_content(proj):
    a, _ = dataset.prepare_dataset(proj, "", (64, 64), False, 1)
    b, _ = dataset.prepare_dataset(proj, "", (64, 64), False, 1)
    assert a.fingerprint == b.fingerprint
    (proj / "images/3_Cat/img0.txt").write_text("a changed caption")
    c, _ = dataset.prepare_dataset(proj, "", (64, 64), False, 1)
    assert c.fingerprint != a.fingerprint
    d, _ = dataset.prepare_dataset(proj, "Cat: 3", (64, 64), False, 1)
    assert d.fingerprint != c.fingerprint


def test_a_foreign_dataset_toml_is_never_overwritten(proj):
    (proj / "dataset.toml").write_text("# mine\n")
    with pytest.raises(WorkbenchError, match="not written by lora-workbench"):
        dataset.prepare_dataset(proj, "", (64, 64), False, 1)
    assert (proj / "dataset.toml").read_text() == "# mine\n"


def test_buckets_write_bucket_keys_within_the_resolution(proj):
    ds, _ = dataset.prepare_dataset(proj, "", (64, 64), True, 1)
    d = tomllib.loads(Path(ds.toml_path).read_text())["datasets"][0]
    assert d["enable_bucket"] is True and d["min_bucket_reso"] == 64 and d["max_bucket_reso"] == 1024
    assert d["bucket_reso_steps"] == 64


def test_the_dataset_object_round_trips(proj):
    ds, _ = dataset.prepare_dataset(proj, "", (64, 64), False, 1)
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
        "subsets",
    }
    subset_keys = {"image_dir", "num_repeats", "class_tokens", "caption_extension", "is_reg"}
    assert set(data["general"]) <= general_keys
    assert set(data["datasets"][0]) <= dataset_keys
    assert all(set(s) == subset_keys for s in data["datasets"][0]["subsets"])
    assert data["datasets"][0]["subsets"][0]["image_dir"] == r"C:\data\1_A"
    assert data["datasets"][0]["subsets"][1]["is_reg"] is True
    assert data["datasets"][0]["min_bucket_reso"] <= 512


# --------------------------------------------------------------------------- keywords
def test_keywords_count_distinct_tags(tmp_path):
    root = tmp_path / "p"
    folder = make_subset(root, "1_A", 3, caption="red hat, smiling")
    (folder / "img0.txt").write_text("A, red hat,  blue sky ,")
    kws = dict(dataset.caption_keywords(dataset.scan_project(root)))
    assert kws == {"A": 3, "red hat": 3, "smiling": 2, "blue sky": 1}


def test_listing_fingerprint_changes_with_files(proj):
    a = dataset.listing_fingerprint(proj)
    assert a == dataset.listing_fingerprint(proj)
    (proj / "images/3_Cat/new.txt").write_text("x")
    assert dataset.listing_fingerprint(proj) != a


def test_an_unreadable_subset_folder_is_an_error_not_a_crash(tmp_path, monkeypatch):
    root = tmp_path / "p"
    folder = make_subset(root, "1_A", 1)
    make_subset(root, "1_B", 1)
    real = os.scandir

    def scandir(path="."):
        if os.fspath(path) == str(folder):
            raise PermissionError(13, "Permission denied")
        return real(path)

    monkeypatch.setattr(os, "scandir", scandir)  # as a chmod 0 folder behaves for a non-root user
    r = dataset.preview(root, "", (64, 64), False)
    assert "The subset folder 1_A cannot be read (Permission denied); check its permissions." in [
        i["message"] for i in r["issues"]
    ]
    assert not r["ok"]


def test_the_trainers_toml_reader_sees_what_we_computed(proj):
    make_subset(proj, "1_person", 2, reg=True, captions=False)
    ds, _ = dataset.prepare_dataset(proj, "Cat: 2", (64, 64), True, 2)
    again = dataset_toml.dataset_from_toml(ds.toml_path, proj)
    assert again.items_per_epoch == ds.items_per_epoch and again.steps_per_epoch == ds.steps_per_epoch
    assert again.resolution == ds.resolution and again.enable_bucket and again.batch_size == 2
    assert [(s.image_dir, s.repeats, s.is_reg) for s in again.subsets] == [
        (s.image_dir, s.repeats, s.is_reg) for s in ds.subsets
    ]


def test_listing_fingerprint_ignores_sd_scripts_latent_caches(tmp_path):
    from PIL import Image

    from lora_workbench.dataset import scan as ds

    sub = tmp_path / "images" / "2_subject"
    sub.mkdir(parents=True)
    Image.new("RGB", (64, 64)).save(sub / "a.png")
    (sub / "a.txt").write_text("subject")
    before = ds.listing_fingerprint(tmp_path)
    (sub / "a_0064x0064_sd.npz").write_bytes(b"cache")
    (sub / "metadata_cache.json").write_text("{}")
    assert ds.listing_fingerprint(tmp_path) == before
    (sub / "b.txt").write_text("new caption")
    assert ds.listing_fingerprint(tmp_path) != before
