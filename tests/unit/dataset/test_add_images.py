"""Images into a training project (Save Training Images and `dataset add-images`): content-hash names,
idempotence, captions and their modes, the trigger word once, fit, masks as alpha, limits, and a changed
caption invalidating the caches sd-scripts would train the old text from."""

from __future__ import annotations

import os

import pytest
from PIL import Image

from lora_workbench.cli import main
from lora_workbench.dataset import captions_merge, fingerprint, prepare
from lora_workbench.dataset.add_images import AddSpec, add_images
from lora_workbench.dataset.pictures import MAX_IMAGES, Picture
from lora_workbench.errors import ValidationError
from tests.unit.dataset.dataset_fakes import opts

try:
    import tomllib
except ModuleNotFoundError:  # pragma: no cover
    import tomli as tomllib


def pic(color=(200, 10, 10), size=(64, 64), mask=None) -> Picture:
    return Picture(Image.new("RGB", size, color), mask)


def spec(root, **kw) -> AddSpec:
    kw.setdefault("subject", "cat")
    kw.setdefault("repeats", 2)
    return AddSpec(project_dir=str(root), **kw)


def files(folder) -> list[str]:
    return sorted(os.listdir(folder))


@pytest.fixture
def proj(tmp_path):
    return tmp_path / "proj"


# --------------------------------------------------------------------------- caption shapes
@pytest.mark.parametrize(
    "captions, expected",
    [
        (None, ["", ""]),
        ("", ["", ""]),
        ("a cat", ["a cat", "a cat"]),
        ("one\ntwo\n", ["one", "two"]),
        (["one", "two"], ["one", "two"]),  # a caption node's list output (OUTPUT_IS_LIST)
        (["same for all"], ["same for all", "same for all"]),  # a widget under INPUT_IS_LIST
        (["one\ntwo"], ["one", "two"]),
        ([["one", "two"]], ["one", "two"]),  # a list of per-batch lists
        ("  spaced   out  ", ["spaced out", "spaced out"]),
    ],
)
def test_each_caption_shape_gives_one_caption_per_image(captions, expected):
    assert captions_merge.per_image(captions, 2) == expected


@pytest.mark.parametrize("captions", ["a\nb\nc", ["a", "b", "c"]])
def test_a_caption_list_of_the_wrong_length_is_a_sentence(captions):
    with pytest.raises(
        ValidationError, match=r"captions holds 3 captions for 2 image\(s\): give one caption"
    ):
        captions_merge.per_image(captions, 2)


def test_a_caption_list_with_no_text_in_it_is_a_sentence():
    with pytest.raises(ValidationError, match="captions must be text; the list holds a int"):
        captions_merge.per_image(["a", 3], 2)


@pytest.mark.parametrize(
    "caption, expected",
    [
        ("a cat, sitting", "ohwx, a cat, sitting"),
        ("ohwx, a cat", "ohwx, a cat"),
        ("a cat, OHWX, sitting", "ohwx, a cat, sitting"),
        ("", "ohwx"),
    ],
)
def test_the_trigger_word_comes_first_exactly_once(caption, expected):
    assert captions_merge.with_trigger(caption, "ohwx") == expected


@pytest.mark.parametrize(
    "mode, expected",
    [("replace", "ohwx, new, tag"), ("append", "ohwx, old, tag, new"), ("keep existing", "ohwx, old, tag")],
)
def test_caption_modes_merge_with_an_existing_caption(mode, expected):
    assert captions_merge.merge("ohwx, old, tag", "new, tag", mode, "ohwx") == expected


@pytest.mark.parametrize("word", ["a, b", "a\nb"])
def test_a_trigger_word_that_is_not_one_tag_is_a_sentence(word):
    with pytest.raises(ValidationError, match="must be one tag"):
        captions_merge.checked_trigger(word)


# --------------------------------------------------------------------------- hashing and idempotence
def test_images_are_named_by_content_with_their_caption_beside(proj):
    report = add_images(spec(proj, captions="a cat"), [pic(), pic((0, 0, 200))])
    folder = proj / "images" / "2_cat"
    assert len(report.added) == 2 and all(len(n) == 24 and n.endswith(".png") for n in report.added)
    assert files(folder) == sorted(report.added + [n[:-4] + ".txt" for n in report.added])
    assert (folder / (report.added[0][:-4] + ".txt")).read_text(encoding="utf-8") == "a cat\n"


def test_the_same_image_twice_is_one_file(proj):
    report = add_images(spec(proj, captions="a cat"), [pic(), pic()])
    assert len(report.added) == 1 and len(files(proj / "images" / "2_cat")) == 2


def test_queuing_again_adds_and_rewrites_nothing(proj):
    add_images(spec(proj, captions="a cat"), [pic()])
    folder = proj / "images" / "2_cat"
    before = {n: os.stat(folder / n).st_mtime_ns for n in files(folder)}
    report = add_images(spec(proj, captions="a cat"), [pic()])
    assert report.added == [] and report.recaptioned == [] and len(report.same) == 1
    assert {n: os.stat(folder / n).st_mtime_ns for n in files(folder)} == before


def test_a_changed_caption_rewrites_only_the_caption(proj):
    (name,) = add_images(spec(proj, captions="a cat"), [pic()]).added
    folder = proj / "images" / "2_cat"
    png_ino = os.stat(folder / name).st_ino
    report = add_images(spec(proj, captions="a black cat"), [pic()])
    assert report.recaptioned == [name] and report.added == []
    assert os.stat(folder / name).st_ino == png_ino
    assert (folder / (name[:-4] + ".txt")).read_text(encoding="utf-8") == "a black cat\n"


def test_nothing_else_in_the_folder_is_touched(proj):
    folder = proj / "images" / "2_cat"
    folder.mkdir(parents=True)
    (folder / "mine.png").write_bytes(b"not ours")
    (folder / "notes.txt").write_text("keep me")
    add_images(spec(proj, captions="x"), [pic()])
    add_images(spec(proj, captions="y"), [pic()])
    assert (folder / "mine.png").read_bytes() == b"not ours" and (
        folder / "notes.txt"
    ).read_text() == "keep me"


def test_no_caption_text_writes_no_empty_caption_file(proj):
    report = add_images(spec(proj), [pic()])
    assert report.uncaptioned == report.added
    assert [n for n in files(proj / "images" / "2_cat") if n.endswith(".txt")] == []
    assert "have no caption (set missing_caption" in report.summary()


def test_keep_existing_keeps_a_caption_written_by_hand(proj):
    (name,) = add_images(spec(proj, captions="first"), [pic()]).added
    txt = proj / "images" / "2_cat" / (name[:-4] + ".txt")
    txt.write_text("edited by hand\n", encoding="utf-8")
    add_images(spec(proj, captions="generated", caption_mode="keep existing", trigger_word="ohwx"), [pic()])
    assert txt.read_text(encoding="utf-8") == "ohwx, edited by hand\n"


def test_a_subject_already_there_with_other_repeats_is_a_sentence(proj):
    add_images(spec(proj, captions="x"), [pic()])
    with pytest.raises(ValidationError, match=r"already in .*2_cat with 2 repeats; set repeats to 2"):
        add_images(spec(proj, repeats=3, captions="x"), [pic()])


# --------------------------------------------------------------------------- caches
def test_a_changed_caption_removes_the_text_encoder_caches_and_the_info_cache(proj):
    (name,) = add_images(spec(proj, captions="a cat"), [pic()]).added
    folder, stem = proj / "images" / "2_cat", name[:-4]
    planted = [f"{stem}_te_outputs.npz", f"{stem}_flux_te.npz", f"{stem}_sd3_te.npz", "metadata_cache.json"]
    latents = f"{stem}_0064x0064_sd.npz"  # the latents depend on the pixels only: they stay
    for n in [*planted, latents]:
        (folder / n).write_bytes(b"cache")
    add_images(spec(proj, captions="a black cat"), [pic()])
    assert not any((folder / n).exists() for n in planted) and (folder / latents).exists()


def test_an_unchanged_caption_keeps_the_caches(proj):
    (name,) = add_images(spec(proj, captions="a cat"), [pic()]).added
    te = proj / "images" / "2_cat" / f"{name[:-4]}_te_outputs.npz"
    te.write_bytes(b"cache")
    add_images(spec(proj, captions="a cat"), [pic()])
    assert te.exists()


def test_a_changed_caption_changes_the_dataset_fingerprint_the_trainer_caches_on(proj):
    add_images(spec(proj, captions="a cat"), [pic()])
    first, _ = prepare.prepare_dataset(proj, opts())
    add_images(spec(proj, captions="a black cat"), [pic()])
    second, _ = prepare.prepare_dataset(proj, opts())
    assert first.fingerprint != second.fingerprint
    assert fingerprint.listing_fingerprint(proj) == fingerprint.listing_fingerprint(proj)


# --------------------------------------------------------------------------- fit
def test_crop_scales_down_to_cover_and_cuts_the_middle(proj):
    (name,) = add_images(
        spec(proj, captions="x", fit="crop", resolution=(64, 32)), [pic(size=(200, 50))]
    ).added
    assert Image.open(proj / "images" / "2_cat" / name).size == (64, 32)


def test_crop_never_enlarges_a_smaller_image(proj):
    with pytest.raises(
        ValidationError, match="image is 32x32, smaller than the training size 64x64; fit crop"
    ):
        add_images(spec(proj, fit="crop", resolution=(64, 64)), [pic(size=(32, 32))])
    assert not (proj / "images").exists()


def test_pad_fits_inside_without_enlarging(proj):
    (name,) = add_images(spec(proj, captions="x", fit="pad", resolution=(64, 64)), [pic(size=(32, 16))]).added
    with Image.open(proj / "images" / "2_cat" / name) as im:
        assert im.size == (64, 64)
        assert im.getpixel((32, 32)) == (200, 10, 10) and im.getpixel((0, 0)) == (0, 0, 0)


# --------------------------------------------------------------------------- masks
def test_a_mask_is_stored_as_alpha_and_the_subset_trains_with_alpha_mask(proj):
    mask = Image.new("L", (64, 64), 0)
    mask.paste(255, (0, 0, 32, 64))
    (name,) = add_images(spec(proj, captions="x"), [pic(mask=mask)]).added
    with Image.open(proj / "images" / "2_cat" / name) as im:
        assert im.mode == "RGBA" and im.getpixel((0, 0))[3] == 255 and im.getpixel((63, 0))[3] == 0
    prepare.prepare_dataset(proj, opts())
    (sub,) = tomllib.loads((proj / "dataset.toml").read_text())["datasets"][0]["subsets"]
    assert sub["alpha_mask"] is True


def test_a_subset_without_masks_has_no_alpha_mask_key(proj):
    add_images(spec(proj, captions="x"), [pic()])
    prepare.prepare_dataset(proj, opts())
    (sub,) = tomllib.loads((proj / "dataset.toml").read_text())["datasets"][0]["subsets"]
    assert "alpha_mask" not in sub


def test_the_same_image_with_another_mask_is_another_file(proj):
    report = add_images(spec(proj, captions="x"), [pic(mask=Image.new("L", (64, 64), 255)), pic()])
    assert len(report.added) == 2


def test_a_mask_of_another_size_is_a_sentence(proj):
    with pytest.raises(ValidationError, match="The mask of image is 32x32, the image 64x64"):
        add_images(spec(proj), [pic(mask=Image.new("L", (32, 32), 255))])


# --------------------------------------------------------------------------- limits
def test_more_images_than_a_run_takes_is_a_sentence(proj):
    with pytest.raises(ValidationError, match=f"at most {MAX_IMAGES} are saved per run"):
        add_images(spec(proj), [pic(size=(1, 1))] * (MAX_IMAGES + 1))


# --------------------------------------------------------------------------- the command line
def test_the_cli_adds_files_through_the_same_core(proj, tmp_path, capsys):
    a, b = tmp_path / "a.jpg", tmp_path / "b.png"
    Image.new("RGB", (64, 64), (1, 2, 3)).save(a)
    Image.new("RGB", (64, 64), (9, 9, 9)).save(b)
    caps = tmp_path / "caps.txt"
    caps.write_text("first, tag\nsecond\n", encoding="utf-8")
    args = ["dataset", "add-images", str(proj), "--subject", "dog", "--repeats", "3"]
    assert main([*args, "--captions-file", str(caps), "--trigger-word", "ohwx", str(a), str(b)]) == 0
    assert "2 new, 0 unchanged" in capsys.readouterr().out
    texts = sorted(p.read_text() for p in (proj / "images" / "3_dog").glob("*.txt"))
    assert texts == ["ohwx, first, tag\n", "ohwx, second\n"]
    assert main([*args, "--caption", "same", str(a)]) == 0
    assert "0 new, 0 unchanged, 1 caption(s) changed" in capsys.readouterr().out


def test_the_cli_names_a_file_that_is_no_image(proj, tmp_path, capsys):
    bad = tmp_path / "x.png"
    bad.write_bytes(b"no image")
    assert main(["dataset", "add-images", str(proj), "--subject", "dog", str(bad)]) == 1
    assert f"{bad} cannot be read as an image" in capsys.readouterr().err
