"""A video's frames, fps, size and duration come from its container's header, read in pure Python:
MP4/MOV boxes (stsz, stts, mdhd, tkhd of the video track) and WebM/MKV elements (Info, Tracks)."""

import os

import pytest

from lora_workbench.dataset import videos
from tests.unit.dataset import video_fakes as vf


def info(path):
    with open(path, "rb") as f:
        return videos.video_info(f, path.name)


@pytest.mark.parametrize(
    "name, kind",
    [
        ("a.mp4", videos.VIDEO),
        ("a.MP4", videos.VIDEO),
        ("a.webm", videos.VIDEO),
        ("a.mov", videos.VIDEO),
        ("a.mkv", videos.VIDEO),
        ("a.m4v", videos.VIDEO),
        ("a.avi", videos.VIDEO),
        ("a.Mp4", videos.WRONG_CASE),
        (".a.mp4", videos.HIDDEN),
        ("a.png", None),
        ("a.txt", None),
    ],
)
def test_video_names_are_classified_like_musubi_globs_them(name, kind):
    assert videos.classify(name) == kind


def test_an_mp4_gives_its_frames_fps_size_and_duration(tmp_path):
    v = info(vf.write_mp4(tmp_path / "a.mp4", frames=49, fps=16, width=832, height=480))
    assert (v.frames, v.fps, v.width, v.height) == (49, 16.0, 832, 480)
    assert v.duration == pytest.approx(49 / 16, abs=0.001)


def test_the_video_track_is_read_when_an_audio_track_comes_first(tmp_path):
    v = info(vf.write_mp4(tmp_path / "a.mp4", frames=30, fps=30, width=320, height=240))
    assert (v.width, v.height) == (320, 240)


def test_a_version_1_mov_header_is_read(tmp_path):
    v = info(vf.write_mp4(tmp_path / "a.mov", frames=30, fps=30, version=1))
    assert (v.frames, v.fps) == (30, 30.0)


def test_frames_come_from_stts_when_stsz_lists_none(tmp_path):
    v = info(vf.write_mp4(tmp_path / "a.mp4", frames=21, fps=7, stsz_count=0))
    assert v.frames == 21


def test_a_webm_gives_frames_from_duration_and_default_duration(tmp_path):
    v = info(vf.write_webm(tmp_path / "a.webm", frames=81, fps=16, width=640, height=360))
    assert (v.frames, v.fps, v.width, v.height) == (81, 16.0, 640, 360)
    assert v.duration == pytest.approx(81 / 16, abs=0.001)


def test_an_mkv_with_a_float32_duration_and_ntsc_rate_is_read(tmp_path):
    v = info(
        vf.write_webm(tmp_path / "a.mkv", frames=24, fps=24000 / 1001, float32=True, doctype=b"matroska")
    )
    assert v.frames == 24
    assert v.fps == pytest.approx(23.976, abs=0.001)


def test_a_webm_without_a_duration_is_a_sentence_saying_how_to_fix_it(tmp_path):
    with pytest.raises(videos.VideoUnreadable, match="no duration.*remux"):
        info(vf.write_webm(tmp_path / "a.webm", with_duration=False))


def test_a_webm_without_a_frame_rate_is_a_sentence(tmp_path):
    with pytest.raises(videos.VideoUnreadable, match="frame rate"):
        info(vf.write_webm(tmp_path / "a.webm", with_rate=False))


def test_an_mp4_without_a_video_track_is_a_sentence(tmp_path):
    p = tmp_path / "a.mp4"
    p.write_bytes(vf.box(b"ftyp", b"isom") + vf.box(b"moov", vf.trak(handler=b"soun")))
    with pytest.raises(videos.VideoUnreadable, match="no video track"):
        info(p)


def test_a_fragmented_mp4_is_a_sentence_saying_how_to_remux_it(tmp_path):
    p = tmp_path / "a.mp4"
    moov = vf.box(b"moov", vf.trak(frames=0) + vf.box(b"mvex", vf.box(b"trex", bytes(24))))
    p.write_bytes(vf.box(b"ftyp", b"isom") + moov + vf.box(b"moof") + vf.box(b"mdat"))
    with pytest.raises(videos.VideoUnreadable, match="fragmented.*faststart"):
        info(p)


def test_a_second_read_of_an_unchanged_file_comes_from_the_cache(tmp_path):
    p = vf.write_mp4(tmp_path / "a.mp4", frames=10)
    first = info(p)
    st = p.stat()
    with open(p, "r+b") as f:  # same size, mtime kept: the cache answers without reading
        f.write(b"\0" * 8)
    os.utime(p, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert info(p) == first


def test_a_changed_file_is_read_again(tmp_path):
    p = vf.write_mp4(tmp_path / "a.mp4", frames=10)
    assert info(p).frames == 10
    vf.write_mp4(p, frames=12)
    assert info(p).frames == 12
