"""Frames against the settings: the clips musubi-tuner cuts per frame_extraction (its docs' 40-frame
examples), a video shorter than target_frames named with its length and what to change, and a video
dataset refused for a model that trains on images."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from lora_workbench.dataset.video_frames import (
    FramePlan,
    check_video_frames,
    clip_count,
    clips,
    frame_plan,
    refuse_videos,
    short_videos,
)
from lora_workbench.datatypes import DatasetSubset
from lora_workbench.errors import ValidationError


# --------------------------------------------------------------------------- musubi's docs, 40 frames
def test_head_takes_the_first_frames_once_per_target():
    assert clips(40, FramePlan((1, 13, 25), "head")) == [1, 13, 25]


def test_chunk_splits_the_video_into_back_to_back_clips():
    assert clips(40, FramePlan((13, 25), "chunk")) == [13, 13, 13, 25]


def test_slide_steps_by_frame_stride():
    assert clips(40, FramePlan((1, 13, 25), "slide", frame_stride=10)) == [1] * 4 + [13] * 3 + [25] * 2


def test_uniform_takes_frame_sample_clips_per_target():
    assert clips(40, FramePlan((1, 13, 25), "uniform", frame_sample=4)) == [1] * 4 + [13] * 4 + [25] * 4


def test_full_takes_the_whole_video_up_to_max_frames_as_n4_plus_1():
    plan = FramePlan(frame_extraction="full", max_frames=31)
    assert [clips(n, plan) for n in (20, 25, 35)] == [[17], [25], [29]]


def test_target_frames_are_rounded_down_to_n4_plus_1_like_musubi_does():
    assert FramePlan((1, 24, 45, 46)).rounded() == (1, 21, 45)


def test_clips_are_counted_over_a_subsets_videos():
    assert clip_count({"a.mp4": 40, "b.mp4": 20}, FramePlan((1, 25), "head")) == 3


def test_an_unknown_extraction_is_a_sentence():
    with pytest.raises(ValidationError, match="frame_extraction 'middle' is not one of"):
        clips(40, FramePlan(frame_extraction="middle"))


# --------------------------------------------------------------------------- short videos
def test_a_video_shorter_than_every_target_trains_nothing_and_is_named_with_what_to_change():
    errors, warnings = short_videos("Walk", {"short.mp4": 20}, FramePlan((25, 45)))
    assert warnings == []
    assert errors == [
        "Walk/short.mp4 has 20 frames, fewer than the 25 that target_frames [25, 45] asks for (frame_extraction "
        "head), so it trains nothing: lower target_frames to at most 17, set frame_extraction to full, or "
        "replace it with a longer video."
    ]


def test_a_video_shorter_than_the_longest_target_skips_those_clips_with_a_warning():
    errors, warnings = short_videos("Walk", {"a.mp4": 30}, FramePlan((1, 25, 45)))
    assert errors == []
    assert warnings == [
        "Walk/a.mp4 has 30 frames, so its 45-frame clip(s) of target_frames [1, 25, 45] are skipped (it trains "
        "the 1, 25-frame ones); lower target_frames to at most 29 or use a longer video to train them."
    ]


def test_full_extraction_never_finds_a_video_too_short():
    assert short_videos("Walk", {"a.mp4": 5}, FramePlan((81,), "full")) == ([], [])


def test_many_short_videos_are_listed_up_to_a_limit():
    errors, _ = short_videos("Walk", {f"v{i:02}.mp4": 5 for i in range(15)}, FramePlan((25,)))
    assert len(errors) == 11 and errors[-1] == "... and 5 more like that in Walk."


def video(name="Walk", frames=None) -> DatasetSubset:
    frames = frames or {"a.mp4": 33}
    return DatasetSubset(
        name,
        "/p/images/1_" + name,
        len(frames),
        1,
        kind="video",
        video_count=len(frames),
        frames_min=min(frames.values()),
        frames_max=max(frames.values()),
        fps=[16.0],
        video_frames=frames,
    )


def test_the_trainer_options_are_read_with_musubis_defaults_for_missing_ones():
    assert frame_plan(object()) == FramePlan()
    opts = SimpleNamespace(target_frames="1, 25 45", frame_extraction="slide", frame_stride=5)
    assert frame_plan(opts) == FramePlan((1, 25, 45), "slide", frame_stride=5)


def test_check_video_frames_raises_for_a_video_that_trains_nothing():
    opts = SimpleNamespace(target_frames=[49])
    with pytest.raises(ValidationError, match=r"(?s)1 video\(s\) are too short.*Walk/a.mp4 has 33 frames"):
        check_video_frames([video()], opts)


def test_check_video_frames_returns_warnings_and_ignores_image_subsets():
    image = DatasetSubset("Cat", "/p/images/1_Cat", 4, 1)
    warnings = check_video_frames([image, video()], SimpleNamespace(target_frames=[1, 49]))
    assert len(warnings) == 1 and "49-frame clip(s)" in warnings[0]


# --------------------------------------------------------------------------- models that train images
def test_a_video_dataset_is_refused_for_a_model_that_trains_images():
    with pytest.raises(ValidationError) as err:
        refuse_videos([DatasetSubset("Cat", "/c", 2, 1), video()], takes_video=False, model="SDXL")
    assert str(err.value) == (
        "The dataset has video subset(s) 'Walk', but SDXL trains on images: videos train with "
        "Wan/HunyuanVideo/FramePack through musubi-tuner. Pick one of those models, or move the videos out "
        "of the project's subsets."
    )


def test_a_video_dataset_passes_for_a_video_model_and_an_image_dataset_for_any():
    refuse_videos([video()], takes_video=True, model="Wan 2.1")
    refuse_videos([DatasetSubset("Cat", "/c", 2, 1)], takes_video=False, model="SDXL")
