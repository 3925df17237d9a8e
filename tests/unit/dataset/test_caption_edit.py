"""The caption editor's core: tag actions as pure functions, a subset listed with its captions, saves
that keep the lines sd-scripts does not train on, conflicts, and server-made capped previews."""

from __future__ import annotations

import pytest
from PIL import Image

from lora_workbench.dataset import caption_edit as ce
from lora_workbench.dataset import thumbnails
from lora_workbench.errors import ValidationError

KEY = "images/3_Alice"


@pytest.fixture
def subset(tmp_path):
    folder = tmp_path / "project" / "images" / "3_Alice"
    folder.mkdir(parents=True)
    for i in range(3):
        Image.new("RGB", (600, 400), (60 * i, 90, 30)).save(folder / f"a{i}.png")
    (folder / "a0.txt").write_text("alice, red hair\nnot trained\n", encoding="utf-8")
    (folder / "a1.txt").write_text("\ufeffred hair, smiling", encoding="utf-8")
    return folder


@pytest.fixture
def project(tmp_path, subset):
    return ce.project_for(tmp_path / "project", [tmp_path])


def listed(project, **kw) -> dict[str, ce.CaptionItem]:
    return {i.image: i for i in ce.subset_captions(project, KEY, **kw).items}


# --------------------------------------------------------------------------- tag actions
def test_adding_a_tag_appends_it_with_kohyas_separator():
    assert ce.add_tag("alice,red hair", "smiling") == "alice, red hair, smiling"


def test_adding_a_tag_the_caption_has_leaves_it_as_it_was():
    assert ce.add_tag("alice,red hair", "alice") == "alice,red hair"


def test_adding_a_tag_first_puts_it_before_the_others():
    assert ce.add_tag("red hair", "alice", first=True) == "alice, red hair"


def test_removing_a_tag_removes_every_copy_and_only_whole_tags():
    assert ce.remove_tag("red, red hair, red", "red") == "red hair"


def test_find_and_replace_changes_every_occurrence_of_the_text():
    assert ce.replace_text("red hair, red eyes", "red", "blue") == "blue hair, blue eyes"


def test_the_trigger_word_goes_first_once_never_doubled():
    assert ce.trigger_first("red hair, alice, alice", "alice") == "alice, red hair"
    assert ce.trigger_first("alice, red hair", "alice") == "alice, red hair"
    assert ce.trigger_first("", "alice") == "alice"


def test_a_bulk_action_leaves_captions_it_does_not_change_exactly_as_they_were():
    out = ce.bulk(ce.BulkOp("remove", tag="smiling"), ["alice ,red", "smiling, alice"])
    assert out == ["alice ,red", "alice"]


@pytest.mark.parametrize("tag", ["a, b", "a\nb", "", "   ", "x" * 600])
def test_a_tag_with_a_comma_a_line_break_or_no_text_is_refused_with_a_sentence(tag):
    with pytest.raises(ValidationError, match="tag"):
        ce.bulk(ce.BulkOp("add", tag=tag), ["alice"])


def test_an_unknown_bulk_action_is_refused_naming_the_known_ones():
    with pytest.raises(ValidationError, match="trigger_first"):
        ce.bulk(ce.BulkOp("shuffle", tag="x"), ["alice"])


def test_tag_frequency_counts_captions_not_repeats_within_one():
    assert ce.tag_counts(["a, b, a", "a", "c"]) == [("a", 2), ("b", 1), ("c", 1)]


# --------------------------------------------------------------------------- listing
def test_the_listing_shows_each_images_first_caption_line(project):
    items = listed(project)
    assert items["a0.png"].text == "alice, red hair" and items["a0.png"].more_lines == 1
    assert items["a1.png"].text == "red hair, smiling"  # the byte-order mark is not shown


def test_an_image_without_a_caption_is_marked_missing(project):
    item = listed(project)["a2.png"]
    assert item.missing and item.hash == "" and item.caption_file == "a2.txt"


def test_the_listing_counts_each_tag_over_the_subsets_first_lines(project):
    result = ce.subset_captions(project, KEY)
    assert dict(result.tags) == {"red hair": 2, "alice": 1, "smiling": 1}
    assert result.missing == 1 and result.total == 3


def test_a_big_subset_is_listed_a_page_at_a_time(project):
    page = ce.subset_captions(project, KEY, offset=1, limit=1)
    assert [i.image for i in page.items] == ["a1.png"] and page.total == 3 and page.offset == 1


def test_the_projects_subsets_are_listed_with_their_keys(project, tmp_path):
    (tmp_path / "project" / "regularization" / "1_woman").mkdir(parents=True)
    keys = [s["key"] for s in ce.list_subsets(project)]
    assert keys == [KEY, "regularization/1_woman"]


# --------------------------------------------------------------------------- saving
def save(project, **captions):
    items = listed(project)
    edits = [ce.CaptionEdit(image, text, items[image].hash) for image, text in captions.items()]
    return ce.save_captions(project, KEY, edits)


def test_a_save_rewrites_the_first_line_and_keeps_the_lines_sd_scripts_does_not_train(project, subset):
    save(project, **{"a0.png": "alice, blue hair"})
    assert (subset / "a0.txt").read_text(encoding="utf-8") == "alice, blue hair\nnot trained\n"


def test_a_save_keeps_a_byte_order_mark_where_it_was(project, subset):
    save(project, **{"a1.png": "alice, smiling"})
    assert (subset / "a1.txt").read_text(encoding="utf-8") == "\ufeffalice, smiling"


def test_a_save_writes_a_caption_for_an_image_that_had_none(project, subset):
    report = save(project, **{"a2.png": "alice"})
    assert (subset / "a2.txt").read_text(encoding="utf-8") == "alice" and report.written == ["a2.txt"]


def test_a_caption_saved_unchanged_is_not_rewritten(project, subset):
    before = (subset / "a0.txt").stat().st_mtime_ns
    report = save(project, **{"a0.png": "alice, red hair"})
    assert report.unchanged == ["a0.png"] and (subset / "a0.txt").stat().st_mtime_ns == before


def test_a_caption_changed_on_disk_since_it_was_read_is_not_overwritten_and_nothing_is_saved(project, subset):
    items = listed(project)
    (subset / "a1.txt").write_text("changed elsewhere", encoding="utf-8")
    edits = [
        ce.CaptionEdit("a0.png", "mine", items["a0.png"].hash),
        ce.CaptionEdit("a1.png", "mine too", items["a1.png"].hash),
    ]
    with pytest.raises(ce.CaptionConflict, match="a1.txt changed on disk"):
        ce.save_captions(project, KEY, edits)
    assert (subset / "a0.txt").read_text(encoding="utf-8").startswith("alice, red hair")
    assert (subset / "a1.txt").read_text(encoding="utf-8") == "changed elsewhere"


def test_a_caption_written_on_disk_for_an_image_the_editor_saw_without_one_is_a_conflict(project, subset):
    items = listed(project)
    (subset / "a2.txt").write_text("made elsewhere", encoding="utf-8")
    with pytest.raises(ce.CaptionConflict):
        ce.save_captions(project, KEY, [ce.CaptionEdit("a2.png", "mine", items["a2.png"].hash)])


def test_an_empty_caption_is_refused_because_sd_scripts_stops_on_it(project):
    with pytest.raises(ValidationError, match="empty"):
        save(project, **{"a0.png": "  "})


def test_a_caption_with_a_line_break_is_refused_with_a_sentence():
    with pytest.raises(ValidationError, match="first line only"):
        ce.parse_edits([{"image": "a0.png", "caption": "a\nb", "hash": ""}])


def test_a_name_that_is_no_image_of_the_subset_is_refused_and_nothing_is_saved(project, subset):
    with pytest.raises(ValidationError, match="not an image"):
        ce.save_captions(project, KEY, [ce.CaptionEdit("a0.txt", "x", "")])


# --------------------------------------------------------------------------- previews
def test_a_preview_is_a_jpeg_no_larger_than_256_pixels(project):
    thumbnails.clear_cache()
    thumb = ce.image_thumbnail(project, KEY, "a0.png")
    import io

    with Image.open(io.BytesIO(thumb.data)) as im:
        assert im.format == "JPEG" and max(im.size) == thumbnails.MAX_SIDE and im.size[1] < 256


def test_a_preview_is_made_again_when_the_image_changes(project, subset):
    thumbnails.clear_cache()
    first = ce.image_thumbnail(project, KEY, "a0.png").data
    assert ce.image_thumbnail(project, KEY, "a0.png").data is first  # cached
    Image.new("RGB", (300, 300), (250, 250, 250)).save(subset / "a0.png")
    assert ce.image_thumbnail(project, KEY, "a0.png").data != first


def test_an_image_of_too_many_pixels_gets_no_preview_but_a_sentence(project, subset, monkeypatch):
    monkeypatch.setattr(thumbnails, "MAX_SOURCE_PIXELS", 100 * 100)
    thumbnails.clear_cache()
    with pytest.raises(ValidationError, match="pixels"):
        ce.image_thumbnail(project, KEY, "a0.png")


def test_a_saved_caption_makes_the_dataset_node_and_the_trainer_see_a_changed_dataset(
    project, subset, tmp_path
):
    # The node's re-run and the finished-run cache key on the captions' sizes and mtimes: an edit of the
    # same length must still count (the file is new, so its mtime is new).
    import os

    from lora_workbench.dataset.fingerprint import listing_fingerprint

    os.utime(subset / "a0.txt", (1_000_000, 1_000_000))
    before = listing_fingerprint(tmp_path / "project")
    save(project, **{"a0.png": "alice, red pair"})  # as long as "alice, red hair"
    assert listing_fingerprint(tmp_path / "project") != before
