"""A shared dataset's videos are untrusted: a cut-off, lying, looping or nesting header is a sentence
naming the file, never a hang or a traceback; a link to a video outside the roots and a FIFO named
.mp4 are refused without being read. The fuzz runs fixed seeds (the same bytes every run)."""

from __future__ import annotations

import os
import random
import struct
from pathlib import Path

import pytest

from lora_workbench.dataset import prepare, videos
from lora_workbench.dataset.confined import Guard
from lora_workbench.dataset.scan import scan_project
from tests.unit.dataset import video_fakes as vf


def read(data: bytes, tmp_path: Path, name: str = "a.mp4"):
    p = tmp_path / name
    p.write_bytes(data)
    with open(p, "rb") as f:
        return videos.video_info(f, name)


def unreadable(data: bytes, tmp_path: Path, name: str = "a.mp4") -> str:
    with pytest.raises(videos.VideoUnreadable) as err:
        read(data, tmp_path, name)
    return str(err.value)


# --------------------------------------------------------------------------- lying headers
@pytest.mark.parametrize("name, make", [("a.mp4", vf.mp4_bytes), ("a.webm", vf.webm_bytes)])
def test_every_cut_off_prefix_is_a_sentence_or_a_header_that_was_already_complete(tmp_path, name, make):
    data = make(frames=9)
    whole = read(data, tmp_path, name)
    for n in range(len(data)):
        try:
            got = read(data[:n], tmp_path, name)
        except videos.VideoUnreadable as exc:
            assert str(exc)
        else:
            assert got == whole  # only the trailing mdat / cluster was cut


def test_a_box_claiming_terabytes_is_a_sentence(tmp_path):
    moov = vf.box(b"moov", vf.trak(), size=1 << 62, large=True)
    assert "impossible size" in unreadable(vf.box(b"ftyp", b"isom") + moov, tmp_path)


def test_a_moov_larger_than_the_header_limit_is_refused_without_reading_it(tmp_path):
    p = tmp_path / "a.mp4"
    size = videos.MAX_HEADER + 1024
    with open(p, "wb") as f:  # sparse: the declared moov is really there, and costs no disk
        f.write(vf.box(b"ftyp", b"isom") + struct.pack(">I4s", size, b"moov"))
        f.truncate(12 + 8 + size)
    with open(p, "rb") as f, pytest.raises(videos.VideoUnreadable, match="MiB"):
        videos.video_info(f, p.name)


def test_a_box_smaller_than_its_own_header_cannot_loop(tmp_path):
    assert "impossible size" in unreadable(vf.box(b"ftyp", b"isom") + vf.box(b"moov", size=4), tmp_path)
    inner = vf.box(b"trak", vf.box(b"mdia", size=3))
    assert "impossible size" in unreadable(vf.box(b"moov", inner), tmp_path)


def test_a_million_empty_boxes_stop_at_the_element_budget(tmp_path):
    p = tmp_path / "a.mp4"
    p.write_bytes(vf.box(b"free") * (videos.MAX_ELEMENTS + 10))
    with open(p, "rb") as f, pytest.raises(videos.VideoUnreadable, match="more than"):
        videos.video_info(f, p.name)


def test_boxes_nested_without_end_are_a_sentence(tmp_path):
    inner = vf.trak()
    for _ in range(videos.MAX_DEPTH + 5):
        inner = vf.box(b"trak", inner)
    assert "nest too deeply" in unreadable(vf.box(b"moov", inner), tmp_path)


def test_an_stts_listing_more_entries_than_it_holds_is_a_sentence(tmp_path):
    stts = vf.full(b"stts", struct.pack(">I", 1 << 30))
    stbl = vf.box(b"stbl", stts + vf.full(b"stsz", struct.pack(">II", 0, 0)))
    trak = vf.box(b"trak", vf.tkhd(64, 48) + vf.box(b"mdia", vf.mdhd(25, 25) + vf.hdlr(b"vide") + stbl))
    assert "stts" in unreadable(vf.box(b"moov", trak), tmp_path)


def test_a_header_claiming_a_billion_frames_per_second_is_a_sentence(tmp_path):
    data = vf.webm_bytes(frames=10, fps=25).replace((40_000_000).to_bytes(4, "big"), (1).to_bytes(4, "big"))
    assert "no video has" in unreadable(data, tmp_path, "a.webm")


def test_an_ebml_element_claiming_more_than_the_file_is_a_sentence(tmp_path):
    head = vf.element(0x1A45DFA3, vf.element(0x4282, b"webm"))
    data = head + vf.element(0x18538067, vf.element(0x1549A966, b"", size=vf.vint_size(1 << 40)))
    assert "more than" in unreadable(data, tmp_path, "a.webm")


def test_a_zero_byte_where_an_ebml_id_belongs_is_a_sentence(tmp_path):
    head = vf.element(0x1A45DFA3, b"")
    assert "malformed" in unreadable(head + b"\x00" * 16, tmp_path, "a.webm")


def test_a_live_webm_with_unknown_sizes_is_read_up_to_its_first_cluster(tmp_path):
    data = vf.webm_bytes(frames=20, fps=10)
    seg = data.index((0x18538067).to_bytes(4, "big"))
    data = data[: seg + 4] + vf.UNKNOWN_SIZE + data[seg + 12 :]  # the Segment's size: unknown
    assert read(data, tmp_path, "a.webm").frames == 20


def test_not_a_video_at_all_is_a_sentence(tmp_path):
    assert "EBML" in unreadable(b"GIF89a" + bytes(64), tmp_path, "a.webm")
    assert unreadable(b"", tmp_path, "a.mp4")


@pytest.mark.parametrize(
    "name, make", [("a.mp4", vf.mp4_bytes), ("a.webm", vf.webm_bytes), ("a.mov", vf.mp4_bytes)]
)
def test_fuzzed_headers_answer_or_say_why(tmp_path, name, make):
    base = bytearray(make(frames=17))
    rng = random.Random(f"video-fuzz-{name}")
    p = tmp_path / name
    for _ in range(400):
        data = bytearray(base)
        for _ in range(rng.randint(1, 6)):
            at = rng.randrange(len(data))
            data[at] = rng.randrange(256) if rng.random() < 0.7 else rng.choice((0, 0xFF, 0x01))
        if rng.random() < 0.2:
            data = data[: rng.randrange(len(data))]
        p.write_bytes(bytes(data))
        videos._cache.clear()  # the same size within one mtime tick would otherwise answer from the cache
        with open(p, "rb") as f:
            try:
                v = videos.video_info(f, name)
            except videos.VideoUnreadable as exc:
                assert str(exc)
            else:
                assert v.frames > 0 and v.width > 0 and v.height > 0


# --------------------------------------------------------------------------- through the scan
@pytest.fixture
def guard(roots) -> Guard:
    from lora_workbench import paths

    return Guard(paths.allowed_roots())


def test_a_link_to_a_video_outside_the_roots_is_refused_unread(roots, tmp_path_factory, guard):
    outside = tmp_path_factory.mktemp("outside-videos")
    secret = vf.write_mp4(outside / "secret.mp4", frames=99)
    folder = roots / "proj" / "images" / "1_Walk"
    vf.caption(vf.write_mp4(folder / "a.mp4"))
    (folder / "leak.mp4").symlink_to(secret)
    (folder / "leak.txt").write_text("walk")
    scan = scan_project(roots / "proj", guard=guard)
    sub = scan.train[0]
    assert "outside the allowed roots" in sub.refused["leak.mp4"]
    assert "leak.mp4" not in sub.video_info and sub.videos == ["a.mp4"]
    r = prepare.preview(roots / "proj", prepare.DatasetOptions(), guard=guard)
    errors = [i["message"] for i in r["issues"] if i["severity"] == "error"]
    assert any("1_Walk/leak.mp4 is a link to" in m and "Copy the video" in m for m in errors)


def test_a_fifo_named_mp4_is_not_opened(roots, guard):
    folder = roots / "proj" / "images" / "1_Walk"
    vf.caption(vf.write_mp4(folder / "a.mp4"))
    os.mkfifo(folder / "pipe.mp4")
    (folder / "pipe.txt").write_text("walk")
    scan = scan_project(roots / "proj", guard=guard)  # would block forever if the FIFO were opened
    assert scan.train[0].not_files == {"pipe.mp4": "not a file"}
    r = prepare.preview(roots / "proj", prepare.DatasetOptions(), guard=guard)
    assert any("pipe.mp4 is not a file" in i["message"] for i in r["issues"])


def test_a_broken_video_is_named_in_one_sentence_by_the_dataset_check(roots, guard):
    folder = roots / "proj" / "images" / "1_Walk"
    vf.caption(vf.write_mp4(folder / "a.mp4"))
    (folder / "b.mp4").write_bytes(b"\0\0\0\x20ftyp" + bytes(8))
    vf.caption(folder / "b.mp4")
    r = prepare.preview(roots / "proj", prepare.DatasetOptions(), guard=guard)
    errors = [i["message"] for i in r["issues"] if i["severity"] == "error"]
    assert errors == [
        "1_Walk/b.mp4 cannot be read as a video (the box 'ftyp' has the impossible size 32); replace or remove it."
    ]
