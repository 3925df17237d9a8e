"""The scan counts what sd-scripts will read: its extensions and their letter case, hidden files, the
caption file per image (and its face-crop fallback), captions it cannot use, sizes from the header."""

import json
import os

import pytest
from PIL import Image

from lora_workbench.dataset import images, project
from lora_workbench.dataset import scan as dataset
from lora_workbench.dataset.images import ImageRules
from lora_workbench.errors import WorkbenchError
from tests.unit.dataset.dataset_fakes import image, make_subset


# --------------------------------------------------------------------------- image names
@pytest.mark.parametrize(
    "name, kind",
    [
        ("a.png", images.IMAGE),
        ("a.PNG", images.IMAGE),
        ("a.JPG", images.IMAGE),
        ("a.jpeg", images.IMAGE),
        ("a.webp", images.IMAGE),
        ("a.BMP", images.IMAGE),
        ("a.Png", images.WRONG_CASE),
        ("a.jpG", images.WRONG_CASE),
        (".a.png", images.HIDDEN),
        (".png", None),
        ("a.avif", images.PLUGIN),
        ("a.JXL", images.PLUGIN),
        ("a.txt", None),
        ("a.png.txt", None),
        ("a", None),
    ],
)
def test_image_names_follow_sd_scripts_glob_on_linux(name, kind):
    assert ImageRules(case_sensitive=True).classify(name) == kind


def test_on_windows_any_letter_case_is_an_image():
    rules = ImageRules(case_sensitive=False)
    assert rules.classify("a.Png") == images.IMAGE and rules.classify(".a.png") == images.HIDDEN


def test_extensions_are_read_from_the_sd_scripts_checkout(tmp_path):
    lib = tmp_path / "library"
    lib.mkdir()
    (lib / "train_util.py").write_text(
        'IMAGE_EXTENSIONS = [".png", ".jpg", ".tga", ".PNG"]\n'
        "try:\n    import x\n    IMAGE_EXTENSIONS.extend(['.avif', '.AVIF'])\nexcept:\n    pass\n"
    )
    rules = images.rules_from_sd_scripts(lib / "train_util.py")
    assert rules.classify("a.tga") == images.IMAGE and rules.classify("a.webp") is None
    assert rules.classify("a.avif") == images.PLUGIN and rules.classify("a.TGA") == images.WRONG_CASE
    assert images.rules_from_sd_scripts(tmp_path / "missing.py") == images.DEFAULT_RULES


def test_the_real_sd_scripts_list_matches_ours_when_present():
    kohya = os.environ.get("KOHYA_SS_PATH")
    if not kohya:
        pytest.skip("KOHYA_SS_PATH is not set")
    for candidate in ("library/train_util.py", "sd-scripts/library/train_util.py"):
        path = os.path.join(kohya, candidate)
        if os.path.isfile(path):
            assert images.rules_from_sd_scripts(path).extensions == images.SD_SCRIPTS_EXTS
            return
    pytest.skip("no train_util.py in KOHYA_SS_PATH")


# --------------------------------------------------------------------------- scan
def test_scan_counts_exactly_what_sd_scripts_globs(tmp_path):
    root = tmp_path / "p"
    folder = make_subset(root, "2_Mix", 2, ext=".PNG")
    image(folder / "j.JPG", fmt="JPEG")
    image(folder / "w.webp", fmt="WEBP")
    image(folder / "mixed.Png")  # skipped on Linux
    image(folder / ".hidden.png")  # skipped: glob's * never matches a leading dot
    (folder / "a.avif").write_bytes(b"\0")  # only with a plugin
    (folder / "dir.png").mkdir()  # sd-scripts would try to open it
    (folder / "notes.md").write_text("x")
    (s,) = dataset.scan_project(root, rules=ImageRules(case_sensitive=True)).subsets
    assert (s.repeats, s.name) == (2, "Mix")
    assert s.images == ["img0.PNG", "img1.PNG", "j.JPG", "w.webp"]
    assert s.skipped == {
        "mixed.Png": images.WRONG_CASE,
        ".hidden.png": images.HIDDEN,
        "a.avif": images.PLUGIN,
    }
    assert s.not_files == {"dir.png": "a folder"}
    assert set(s.missing_captions) == {"j.JPG", "w.webp"}


def test_scan_reads_sizes_and_finds_corrupt_files(tmp_path):
    root = tmp_path / "p"
    folder = make_subset(root, "1_A", 1, size=(96, 64))
    make_subset(root, "1_A", 1, size=(80, 48), ext=".jpg")
    (folder / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    (folder / "empty.jpg").write_bytes(b"")
    (folder / "text.jpg").write_bytes(b"not an image at all")
    for n in ("broken", "empty", "text"):
        (folder / f"{n}.txt").write_text("x")
    (s,) = dataset.scan_project(root).subsets
    assert s.sizes["img0.png"] == (96, 64) and s.sizes["img0.jpg"] == (80, 48)
    assert set(s.corrupt) == {"broken.png", "empty.jpg", "text.jpg"}


def test_sizes_come_from_the_header_for_every_format(tmp_path):
    for ext, fmt in ((".png", "PNG"), (".jpg", "JPEG"), (".webp", "WEBP"), (".bmp", "BMP")):
        for size in ((1, 1), (64, 48), (333, 517)):
            p = tmp_path / f"x{size[0]}{ext}"
            Image.new("RGB", size).save(p, fmt)
            assert images.image_size(p) == size == images.image_size_decoded(p)
    progressive = tmp_path / "prog.jpg"
    Image.new("RGB", (120, 90)).save(progressive, "JPEG", progressive=True)
    assert images.image_size(progressive) == (120, 90)


def test_verify_decodes_and_catches_cut_off_pixel_data(tmp_path):
    root = tmp_path / "p"
    folder = make_subset(root, "1_A", 1, size=(256, 256))
    data = (folder / "img0.png").read_bytes()
    (folder / "img0.png").write_bytes(data[: len(data) // 2])
    assert not dataset.scan_project(root).subsets[0].corrupt  # the header is fine
    assert "img0.png" in dataset.scan_project(root, verify=True).subsets[0].corrupt


def test_folder_without_number_prefix_is_kept_with_its_name(tmp_path):
    root = tmp_path / "p"
    make_subset(root, "Subject", 2)
    make_subset(root, "10_two_words", 1)
    by = {s.dirname: s for s in dataset.scan_project(root).subsets}
    assert (by["Subject"].repeats, by["Subject"].name) == (None, "Subject")
    assert (by["10_two_words"].repeats, by["10_two_words"].name) == (10, "two_words")


def test_scan_to_dict_is_json(tmp_path):
    root = tmp_path / "p"
    make_subset(root, "3_Cat", 7)
    make_subset(root, "1_Dog", 3)
    d = dataset.scan_project(root).to_dict()
    json.dumps(d)
    assert d["images"] == 10 and d["subsets"][1]["sizes"] == {"64x64": 7}  # sorted: 1_Dog, 3_Cat


def test_scan_of_a_missing_folder_names_it(tmp_path):
    with pytest.raises(WorkbenchError, match="does not exist"):
        dataset.scan_project(tmp_path / "nope")


def test_train_init_creates_the_layout_once(tmp_path):
    made = project.init_project(tmp_path / "p")
    assert sorted(p.name for p in made) == sorted(project.PROJECT_FOLDERS)
    assert project.init_project(tmp_path / "p") == []


# --------------------------------------------------------------------------- captions
def test_captions_as_sd_scripts_reads_them(tmp_path):
    root = tmp_path / "p"
    folder = root / "images" / "1_A"
    folder.mkdir(parents=True)
    cases = {
        "ok": b"a cat, sitting\n",
        "empty": b"",
        "spaces": b"   \t \n",
        "blankfirst": b"\n\nthe text is on line three\n",
        "latin1": "caf\xe9".encode("latin-1"),
        "two": b"first line\nsecond line\n",
        "bom": b"\xef\xbb\xbfwith bom",
    }
    for stem, data in cases.items():
        image(folder / f"{stem}.png")
        (folder / f"{stem}.txt").write_bytes(data)
    image(folder / "face_1_2_3_4.png")  # sd-scripts' face-crop naming falls back to face.txt
    (folder / "face.txt").write_text("face caption")
    image(folder / "none.png")
    (s,) = dataset.scan_project(root).subsets
    assert s.missing_captions == ["none.png"]
    assert sorted(s.empty_captions) == ["blankfirst.txt", "empty.txt", "spaces.txt"]
    assert s.bad_captions == {"latin1.txt": "byte 3 is not UTF-8"}
    assert s.multiline_captions == ["two.txt"] and s.bom_captions == ["bom.txt"]
    assert s.caption_texts["face.txt"] == "face caption"


def test_the_caption_extension_is_the_one_asked_for(tmp_path):
    root = tmp_path / "p"
    folder = make_subset(root, "1_A", 2)  # .txt captions
    (folder / "img0.caption").write_text("x")
    (s,) = dataset.scan_project(root, caption_extension=".caption").subsets
    assert s.missing_captions == ["img1.png"]


def test_keywords_count_distinct_tags(tmp_path):
    root = tmp_path / "p"
    folder = make_subset(root, "1_A", 3, caption="red hat, smiling")
    (folder / "img0.txt").write_text("A, red hat,  blue sky ,")
    kws = dict(dataset.caption_keywords(dataset.scan_project(root)))
    assert kws == {"A": 3, "red hat": 3, "smiling": 2, "blue sky": 1}


@pytest.mark.parametrize(
    ("caption", "counted"),
    [
        (b"red hat, smiling\nhidden, secret", {"red hat", "smiling"}),
        (b"red hat, smiling\r\nhidden, secret\r\n", {"red hat", "smiling"}),
        (b"red hat, smiling\rhidden, secret", {"red hat", "smiling"}),
        (b"\nhidden, secret", set()),
        (b"  \t \nhidden", set()),
        (b"\xef\xbb\xbfred hat\nhidden", {"red hat"}),
        ("red hat\u2028blue, smiling\nhidden".encode(), {"red hat\u2028blue", "smiling"}),
        (b"red hat\x0bblue\x0c, smiling", {"red hat\x0bblue", "smiling"}),
    ],
    ids=["lf", "crlf", "cr", "blank-first", "spaces-first", "bom", "u2028-not-a-break", "vt-ff-not-breaks"],
)
def test_keywords_come_from_the_line_sd_scripts_trains_on(tmp_path, caption, counted):
    """sd-scripts trains on the first line, stripped (readlines() in text mode: only \\n, \\r\\n and \\r
    end a line); tags on the other lines are never trained and are not counted."""
    root = tmp_path / "p"
    folder = make_subset(root, "1_A", 1)
    (folder / "img0.txt").write_bytes(caption)
    assert set(dict(dataset.caption_keywords(dataset.scan_project(root)))) == counted


def test_cancel_stops_the_scan_of_a_large_folder_at_the_next_file(tmp_path):
    class Cancelled(Exception):
        pass

    folder = tmp_path / "p" / "images" / "1_many"
    folder.mkdir(parents=True)
    for i in range(20):
        Image.new("RGB", (8, 8)).save(folder / f"{i}.png")
    seen = []

    def cancel_after_five() -> None:
        seen.append(1)
        if len(seen) > 5:
            raise Cancelled

    with pytest.raises(Cancelled):
        dataset.scan_project(tmp_path / "p", check_cancel=cancel_after_five)
    assert len(seen) == 6
