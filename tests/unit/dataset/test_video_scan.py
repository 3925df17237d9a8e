"""Video subsets: the scan counts videos with their captions beside or instead of images, the dataset
says which subsets are video ones (kind, count, frames, fps), the step math counts a video as one item
per repeat, a folder holding both kinds is one sentence, and `dataset scan` prints the videos."""

from __future__ import annotations

import json

import pytest

from lora_workbench.cli import main
from lora_workbench.dataset import fingerprint, prepare
from lora_workbench.dataset.scan import scan_project
from lora_workbench.datatypes import DatasetSubset, LoraDataset
from tests.unit.dataset import video_fakes as vf
from tests.unit.dataset.dataset_fakes import make_subset, opts


def video_subset(root, dirname: str, lengths=(33, 49, 81), ext=".mp4", captions=True):
    folder = root / "images" / dirname
    write = vf.write_webm if ext in (".webm", ".mkv") else vf.write_mp4
    for i, frames in enumerate(lengths):
        v = write(folder / f"clip{i}{ext}", frames=frames, fps=16, width=832, height=480)
        if captions:
            vf.caption(v, f"a person walking, take {i}")
    return folder


def test_a_folder_of_videos_is_a_video_subset_with_its_frames(tmp_path):
    video_subset(tmp_path, "2_Walk", (33, 49, 81))
    sub = scan_project(tmp_path).train[0]
    assert sub.kind == "video"
    assert (sub.video_count, sub.image_count, sub.item_count, sub.captions) == (3, 0, 3, 3)
    assert sub.frame_range() == (33, 81)
    assert sub.fps_values() == [16.0]
    assert sub.video_info["clip1.mp4"].width == 832


@pytest.mark.parametrize("ext", [".webm", ".mov", ".mkv"])
def test_webm_mov_and_mkv_videos_are_counted_too(tmp_path, ext):
    video_subset(tmp_path, "1_Walk", (17, 21), ext=ext)
    assert scan_project(tmp_path).train[0].frame_range() == (17, 21)


def test_a_folder_of_images_stays_an_image_subset(tmp_path):
    make_subset(tmp_path, "1_Cat", 2)
    sub = scan_project(tmp_path).train[0]
    assert (sub.kind, sub.video_count, sub.frame_range()) == ("image", 0, (0, 0))


def test_a_video_without_a_caption_is_listed_like_an_image_without_one(tmp_path):
    video_subset(tmp_path, "1_Walk", (17,), captions=False)
    sub = scan_project(tmp_path).train[0]
    assert sub.missing_captions == ["clip0.mp4"]
    r = prepare.preview(tmp_path, opts())
    assert any("1_Walk/clip0.mp4 has no caption: add clip0.txt" in i["message"] for i in r["issues"])


def test_a_video_without_a_caption_stays_an_error_whatever_missing_caption_says(tmp_path):
    video_subset(tmp_path, "1_Walk", (17,), captions=False)
    r = prepare.preview(tmp_path, opts(missing_caption="class_tokens"))
    (issue,) = [i for i in r["issues"] if i["code"] == "caption-missing"]
    assert issue["severity"] == "error" and "musubi-tuner needs one per video" in issue["message"]


def test_a_video_caption_is_its_whole_text_as_musubi_reads_it(tmp_path):
    folder = video_subset(tmp_path, "1_Walk", (17,), captions=False)
    (folder / "clip0.txt").write_text("\na person walking,\nslowly", encoding="utf-8")
    r = prepare.preview(tmp_path, opts())
    assert not [i for i in r["issues"] if i["code"].startswith("caption")]


def test_a_video_takes_no_caption_by_the_face_crop_naming(tmp_path):
    folder = tmp_path / "images" / "1_Walk"
    vf.write_mp4(folder / "a_b_c_d_e.mp4")
    (folder / "a.txt").write_text("sd-scripts would read this for a_b_c_d_e.png", encoding="utf-8")
    assert scan_project(tmp_path).train[0].missing_captions == ["a_b_c_d_e.mp4"]


def test_the_dataset_marks_video_subsets_for_musubi(tmp_path):
    video_subset(tmp_path, "2_Walk", (33, 81))
    make_subset(tmp_path, "1_Cat", 3)
    ds, _ = prepare.prepare_dataset(tmp_path, opts(), dry_run=True)
    walk = next(s for s in ds.subsets if s.name == "Walk")
    cat = next(s for s in ds.subsets if s.name == "Cat")
    assert (walk.kind, walk.video_count, walk.frames_min, walk.frames_max, walk.fps) == (
        "video",
        2,
        33,
        81,
        [16.0],
    )
    assert walk.video_frames == {"clip0.mp4": 33, "clip1.mp4": 81}
    assert (cat.kind, cat.video_count, cat.video_frames) == ("image", 0, {})


def test_a_video_counts_as_one_item_per_repeat_in_the_step_math(tmp_path):
    video_subset(tmp_path, "3_Walk", (33, 49))
    make_subset(tmp_path, "1_Cat", 4)
    ds, _ = prepare.prepare_dataset(tmp_path, opts(batch_size=2), dry_run=True)
    assert ds.items_per_epoch == 2 * 3 + 4 * 1
    assert ds.steps_per_epoch == 5
    assert next(s for s in ds.subsets if s.name == "Walk").items == 6


def test_weights_balance_video_subsets_like_image_ones(tmp_path):
    video_subset(tmp_path, "Walk", (33, 49))
    make_subset(tmp_path, "Cat", 4)
    r = prepare.preview(tmp_path, opts("Walk: 1\nCat: 1"))
    rows = {row["name"]: row for row in r["subsets"]}
    assert rows["Walk"]["items"] == rows["Cat"]["items"]


def test_video_subset_facts_survive_the_dataset_json(tmp_path):
    video_subset(tmp_path, "1_Walk", (33,))
    ds, _ = prepare.prepare_dataset(tmp_path, opts(), dry_run=True)
    again = LoraDataset.from_dict(json.loads(json.dumps(ds.to_dict())))
    assert again.subsets[0] == ds.subsets[0]
    assert (
        DatasetSubset.from_dict({"name": "x", "image_dir": "/x", "images": 1, "repeats": 1}).kind == "image"
    )


def test_a_stray_video_in_an_image_folder_is_a_warning_and_the_images_train(tmp_path):
    folder = make_subset(tmp_path, "1_Walk", 2)
    vf.caption(vf.write_mp4(folder / "clip.mp4"))
    r = prepare.preview(tmp_path, opts())
    assert not [i for i in r["issues"] if i["severity"] == "error"]
    warned = [i for i in r["issues"] if i["code"] == "mixed-media"]
    assert warned and warned[0]["severity"] == "warning"
    assert "holds 2 image(s) and 1 video(s) (e.g. clip.mp4)" in warned[0]["message"]
    assert "its videos are not trained" in warned[0]["message"]
    assert "move them into a subset folder of their own" in warned[0]["message"]
    assert (r["subsets"][0]["kind"], r["subsets"][0]["images"]) == ("image", 2)


def test_the_report_and_summary_show_video_subsets(tmp_path):
    video_subset(tmp_path, "2_Walk", (33, 81))
    r = prepare.preview(tmp_path, opts())
    row = r["subsets"][0]
    assert (row["kind"], row["videos"], row["images"], row["frames"], row["fps"]) == (
        "video",
        2,
        2,
        [33, 81],
        [16.0],
    )
    assert "Videos in Walk: 2 (33-81 frames, 16 fps), one item each per repeat" in r["summary"]
    assert "Steps: 4 items" in r["summary"]


def test_a_plain_folder_of_videos_is_one_subset(tmp_path):
    for i in range(2):
        vf.caption(vf.write_mp4(tmp_path / f"v{i}.mp4", frames=25))
    sub = scan_project(tmp_path).train[0]
    assert (sub.flat, sub.kind, sub.video_count) == (True, "video", 2)


def test_a_video_in_a_wrong_case_or_hidden_name_is_skipped_with_musubi_named(tmp_path):
    folder = video_subset(tmp_path, "1_Walk", (17,))
    vf.write_mp4(folder / "clip9.Mp4")
    r = prepare.preview(tmp_path, opts())
    msg = next(i["message"] for i in r["issues"] if i["code"] == "image-skipped")
    assert "clip9.Mp4 is not trained: musubi-tuner only reads extensions" in msg


def test_an_avi_is_counted_but_its_length_is_not_checked(tmp_path):
    folder = video_subset(tmp_path, "1_Walk", (17,))
    (folder / "old.avi").write_bytes(b"RIFF" + bytes(64))
    vf.caption(folder / "old.avi")
    sub = scan_project(tmp_path).train[0]
    assert (sub.video_count, sub.unmeasured) == (2, ["old.avi"])
    r = prepare.preview(tmp_path, opts())
    assert any(i["code"] == "video-unmeasured" for i in r["issues"])


def test_a_changed_video_changes_the_dataset_fingerprint(tmp_path):
    folder = video_subset(tmp_path, "1_Walk", (17,))
    before = fingerprint.listing_fingerprint(tmp_path)
    vf.write_mp4(folder / "clip0.mp4", frames=25)
    assert fingerprint.listing_fingerprint(tmp_path) != before


def test_dataset_scan_prints_each_video(tmp_path, capsys):
    video_subset(tmp_path, "2_Walk", (33, 49))
    assert main(["dataset", "scan", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "2_Walk: 2 videos (33-49 frames), 2 captions, repeats 2" in out
    assert "clip0.mp4: 33 frames, 16 fps, 832x480, 2.062 s" in out


def test_dataset_scan_json_gives_the_video_facts(tmp_path, capsys):
    video_subset(tmp_path, "1_Walk", (33,))
    assert main(["dataset", "scan", str(tmp_path), "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    sub = d["subsets"][0]
    assert (d["videos"], sub["kind"], sub["videos"], sub["frames"]) == (1, "video", 1, [33, 33])
    assert sub["video_info"]["clip0.mp4"]["frames"] == 33


def test_the_dataset_node_outputs_a_video_subset_and_changes_when_a_video_does(pack, comfy, roots):
    comfy.start_server()
    try:
        node = pack.NODE_CLASS_MAPPINGS["DatasetSubsetWeights"]()
        folder = video_subset(roots / "proj", "2_Walk", (33, 49))
        args = dict(project_folder=str(roots / "proj"), weights="", width=512, height=512, enable_bucket=True)
        args |= dict(apply_mode="toml (non-destructive)", batch_size=1, epochs=1, max_items_per_epoch=0)
        ds, text = node.prepare(**args)["result"]
        (walk,) = ds.subsets
        assert (walk.kind, walk.video_count, walk.frames_min, walk.frames_max, ds.items_per_epoch) == (
            "video",
            2,
            33,
            49,
            4,
        )
        assert "Videos in Walk: 2 (33-49 frames, 16 fps)" in text
        before = type(node).IS_CHANGED(project_folder=str(roots / "proj"))
        vf.write_mp4(folder / "clip0.mp4", frames=45)
        assert type(node).IS_CHANGED(project_folder=str(roots / "proj")) != before
    finally:
        comfy.modules["server"].PromptServer.instance = None
