"""Which files musubi-tuner trains as videos, and their frame count, fps, size and duration.

musubi-tuner (dataset/media_utils.py `glob_videos`) globs `*<ext>` for each of its VIDEO_EXTENSIONS,
lower and upper case spelled out, so on Linux and macOS `x.Mp4` is never read. The facts come from
the containers' headers, read in pure Python (no ffmpeg, no PyAV in the core):

- ISO-BMFF / QuickTime (.mp4 .m4v .mov): `moov/trak` whose `mdia/hdlr` is `vide`: frames from
  `stbl/stsz` (its sample count; `stts` summed when stsz is empty), duration from `mdhd`, size from `tkhd`.
- EBML / Matroska (.webm .mkv): `Segment/Info` TimecodeScale and Duration, the video TrackEntry's
  `DefaultDuration` (nanoseconds per frame: the fps) and `Video/PixelWidth`/`PixelHeight`; frames =
  duration x fps, since Matroska stores no count.

Reads are bounded: top-level boxes are skipped by seeking, only `moov`/`Info`/`Tracks` are read, each
at most MAX_HEADER bytes, and the walk stops after MAX_ELEMENTS elements, so a hostile file (sizes
that loop, that claim terabytes, that nest without end) is a `VideoUnreadable` sentence, never a hang.
"""

from __future__ import annotations

import os
import struct
from dataclasses import asdict, dataclass
from typing import BinaryIO

# musubi-tuner's VIDEO_EXTENSIONS at 30c658c4 (lower and upper case, nothing else).
MUSUBI_VIDEO_EXTS = (".mp4", ".webm", ".avi", ".mkv", ".mov", ".flv", ".wmv", ".m4v", ".mpg", ".mpeg")
_BMFF = frozenset({".mp4", ".m4v", ".mov"})
_EBML = frozenset({".webm", ".mkv"})
VIDEO_EXTS = (".mp4", ".webm", ".mov", ".mkv")  # for messages: the ones whose length is checked

# What `classify` answers for a file name (the same words as images.classify).
VIDEO = "video"
HIDDEN = "hidden"
WRONG_CASE = "case"

MAX_HEADER = 32 << 20  # bytes of one moov / Info / Tracks read into memory
MAX_ELEMENTS = 100_000  # boxes or EBML elements visited per file
MAX_DEPTH = 16
MAX_FPS = 1000.0
MAX_FRAMES = 100_000_000


class VideoUnreadable(ValueError):
    """The file's header cannot be read; the message says why (the caller names the file)."""


@dataclass(frozen=True)
class VideoInfo:
    """What the header says about a video's picture track."""

    frames: int
    fps: float
    width: int
    height: int
    duration: float  # seconds

    def to_dict(self) -> dict:
        return asdict(self)


def classify(name: str) -> str | None:
    """VIDEO, HIDDEN, WRONG_CASE, or None for a file musubi-tuner does not read as a video."""
    ext = os.path.splitext(name)[1]
    if ext.lower() not in MUSUBI_VIDEO_EXTS:
        return None
    if name.startswith("."):
        return HIDDEN
    if os.name != "nt" and ext not in (ext.lower(), ext.upper()):
        return WRONG_CASE
    return VIDEO


def is_video(name: str) -> bool:
    return classify(name) == VIDEO


def measurable(name: str) -> bool:
    """True for the containers whose header this module reads (mp4/m4v/mov, webm/mkv)."""
    ext = os.path.splitext(name)[1].lower()
    return ext in _BMFF or ext in _EBML


# --------------------------------------------------------------------------- entry point
_cache: dict[tuple[int, int, int, int], VideoInfo] = {}
_CACHE_MAX = 4096


def video_info(f: BinaryIO, name: str) -> VideoInfo:
    """The facts of an open video file; `name` picks the container. Raises VideoUnreadable.

    Cached per (device, inode, size, mtime): a rescan of an unchanged folder reads no header twice.
    """
    st = os.fstat(f.fileno())
    key = (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)
    if key in _cache:
        return _cache[key]
    ext = os.path.splitext(name)[1].lower()
    if ext in _BMFF:
        info = _Bmff(f, st.st_size).info()
    elif ext in _EBML:
        info = _Ebml(f, st.st_size).info()
    else:
        raise VideoUnreadable(f"its container ({ext}) is not one whose length can be checked")
    if len(_cache) >= _CACHE_MAX:
        _cache.pop(next(iter(_cache)))
    _cache[key] = info
    return info


def _finish(frames: int, duration: float, width: int, height: int, fps: float = 0.0) -> VideoInfo:
    if frames <= 0:
        raise VideoUnreadable("its header records no video frames")
    if width <= 0 or height <= 0:
        raise VideoUnreadable(f"its header gives the picture size {width}x{height}")
    if not fps and duration > 0:
        fps = frames / duration
    if fps > MAX_FPS or frames > MAX_FRAMES:
        raise VideoUnreadable(f"its header gives {frames} frames at {fps:g} fps, which no video has")
    return VideoInfo(int(frames), round(float(fps), 3), int(width), int(height), round(float(duration), 3))


class _Reader:
    """Bounded reads and an element budget shared by one file's walk."""

    def __init__(self, f: BinaryIO, size: int):
        self.f = f
        self.size = size
        self.visited = 0

    def count(self) -> None:
        self.visited += 1
        if self.visited > MAX_ELEMENTS:
            raise VideoUnreadable(f"its header has more than {MAX_ELEMENTS} parts")

    def read_at(self, pos: int, n: int) -> bytes:
        if n > MAX_HEADER:
            raise VideoUnreadable(f"a header part claims {n} bytes (more than {MAX_HEADER >> 20} MiB)")
        self.f.seek(pos)
        data = self.f.read(n)
        if len(data) < n:
            raise VideoUnreadable("it ends inside its header (the file is cut off)")
        return data


# --------------------------------------------------------------------------- ISO-BMFF / QuickTime
_CONTAINERS = frozenset({b"trak", b"mdia", b"minf", b"stbl", b"edts"})


def _boxes(data: bytes, reader: _Reader, start: int = 0, end: int | None = None):
    """(type, payload start, payload end) of each box in data[start:end]; sizes are checked, so a
    box never covers less than its header (the loop always moves on) or more than its parent."""
    end = len(data) if end is None else end
    pos = start
    while pos + 8 <= end:
        reader.count()
        size, kind = struct.unpack_from(">I4s", data, pos)
        head = 8
        if size == 1:
            if pos + 16 > end:
                raise VideoUnreadable("a box header is cut off")
            size = struct.unpack_from(">Q", data, pos + 8)[0]
            head = 16
        elif size == 0:
            size = end - pos
        if size < head or pos + size > end:
            raise VideoUnreadable(f"the box {_kind(kind)} has the impossible size {size}")
        yield kind, pos + head, pos + size
        pos += size


def _kind(kind: bytes) -> str:
    return repr(kind.decode("latin-1"))


class _Bmff:
    def __init__(self, f: BinaryIO, size: int):
        self.r = _Reader(f, size)

    def info(self) -> VideoInfo:
        moov = self._moov()
        tracks = [self._track(moov, s, e) for kind, s, e in _boxes(moov, self.r) if kind == b"trak"]
        videos = [t for t in tracks if t["handler"] == b"vide"]
        if not videos:
            raise VideoUnreadable("it has no video track")
        t = videos[0]
        if not t["timescale"]:
            raise VideoUnreadable("its video track has no timescale")
        duration = t["duration"] / t["timescale"]
        frames = t["samples"] or t["stts"]
        if not frames and t["fragmented"]:
            raise VideoUnreadable(
                "it is a fragmented MP4 whose frames are not listed in its header; remux it "
                "(ffmpeg -i in.mp4 -c copy -movflags +faststart out.mp4)"
            )
        return _finish(frames, duration, t["width"], t["height"])

    def _moov(self) -> bytes:
        """The `moov` box's payload, found by skipping top-level boxes (mdat is never read)."""
        r, pos = self.r, 0
        moov = None
        while pos + 8 <= r.size:
            r.count()
            size, kind = struct.unpack(">I4s", r.read_at(pos, 8))
            head = 8
            if size == 1:
                size, head = struct.unpack(">Q", r.read_at(pos + 8, 8))[0], 16
            elif size == 0:
                size = r.size - pos
            if size < head or pos + size > r.size:
                raise VideoUnreadable(f"the box {_kind(kind)} has the impossible size {size}")
            if kind == b"moov":
                moov = r.read_at(pos + head, size - head)
                break
            pos += size
        if moov is None:
            if pos == 0:
                raise VideoUnreadable("it is empty or not an MP4/QuickTime file")
            raise VideoUnreadable("it has no 'moov' box (the file is cut off or not an MP4/QuickTime file)")
        self.fragmented = any(k == b"mvex" for k, _, _ in _boxes(moov, r))
        return moov

    def _track(self, data: bytes, start: int, end: int) -> dict:
        t = {"handler": b"", "timescale": 0, "duration": 0, "samples": 0, "stts": 0, "width": 0, "height": 0}
        t["fragmented"] = self.fragmented
        self._walk(data, start, end, t, 0)
        return t

    def _walk(self, data: bytes, start: int, end: int, t: dict, depth: int) -> None:
        if depth > MAX_DEPTH:
            raise VideoUnreadable("its boxes nest too deeply")
        for kind, s, e in _boxes(data, self.r, start, end):
            if kind in _CONTAINERS:
                self._walk(data, s, e, t, depth + 1)
            elif kind in _LEAVES:
                try:
                    _LEAVES[kind](data[s:e], t)
                except (struct.error, IndexError):
                    raise VideoUnreadable(f"the box {_kind(kind)} is too short") from None


def _tkhd(p: bytes, t: dict) -> None:
    # width and height are the last 8 bytes, 16.16 fixed point, in both versions
    w, h = struct.unpack_from(">II", p, 76 if p[0] == 0 else 88)
    t["width"], t["height"] = w >> 16, h >> 16


def _mdhd(p: bytes, t: dict) -> None:
    if p[0] == 1:
        t["timescale"], t["duration"] = struct.unpack_from(">IQ", p, 20)
    else:
        t["timescale"], t["duration"] = struct.unpack_from(">II", p, 12)


def _hdlr(p: bytes, t: dict) -> None:
    # QuickTime has a second hdlr in minf (the data handler, 'alis'): the first one, mdia's, names the media
    t["handler"] = t["handler"] or p[8:12]


def _stsz(p: bytes, t: dict) -> None:
    t["samples"] = struct.unpack_from(">I", p, 8)[0]


def _stts(p: bytes, t: dict) -> None:
    (count,) = struct.unpack_from(">I", p, 4)
    if 8 + 8 * count > len(p):
        raise VideoUnreadable(f"the box 'stts' lists {count} entries but holds fewer")
    t["stts"] = sum(n for n, _ in struct.iter_unpack(">II", p[8 : 8 + 8 * count]))


_LEAVES = {b"tkhd": _tkhd, b"mdhd": _mdhd, b"hdlr": _hdlr, b"stsz": _stsz, b"stts": _stts}


# --------------------------------------------------------------------------- EBML / Matroska
_EBML_HEAD = 0x1A45DFA3
_SEGMENT = 0x18538067
_INFO = 0x1549A966
_TRACKS = 0x1654AE6B
_CLUSTER = 0x1F43B675
_TRACK_ENTRY = 0xAE
_TRACK_TYPE = 0x83
_DEFAULT_DURATION = 0x23E383
_VIDEO = 0xE0
_PIXEL_WIDTH = 0xB0
_PIXEL_HEIGHT = 0xBA
_TIMECODE_SCALE = 0x2AD7B1
_DURATION = 0x4489
_UNKNOWN = -1


def _vint(data: bytes, pos: int, end: int, keep_marker: bool) -> tuple[int, int]:
    """(value, next position) of an EBML variable-size integer; -1 for an unknown size."""
    if pos >= end:
        raise VideoUnreadable("an element header is cut off")
    first = data[pos]
    length = 8 - first.bit_length() + 1
    if first == 0 or length > 8 or pos + length > end:
        raise VideoUnreadable("an element header is malformed or cut off")
    value = first if keep_marker else first & (0xFF >> length)
    for b in data[pos + 1 : pos + length]:
        value = (value << 8) | b
    if not keep_marker and value == (1 << (7 * length)) - 1:
        return _UNKNOWN, pos + length
    return value, pos + length


def _elements(data: bytes, reader: _Reader, start: int, end: int):
    """(id, payload start, payload end) of each element in data[start:end]; an unknown size runs to end."""
    pos = start
    while pos < end:
        reader.count()
        eid, pos = _vint(data, pos, end, True)
        size, pos = _vint(data, pos, end, False)
        stop = end if size == _UNKNOWN else pos + size
        if stop > end:
            raise VideoUnreadable(f"the element 0x{eid:X} claims {size} bytes, more than it holds")
        yield eid, pos, stop
        pos = stop


def _uint(p: bytes) -> int:
    return int.from_bytes(p, "big") if len(p) <= 8 else 0


def _float(p: bytes) -> float:
    if len(p) == 4:
        return struct.unpack(">f", p)[0]
    if len(p) == 8:
        return struct.unpack(">d", p)[0]
    raise VideoUnreadable("its Duration is not a 4- or 8-byte float")


class _Ebml:
    def __init__(self, f: BinaryIO, size: int):
        self.r = _Reader(f, size)

    def info(self) -> VideoInfo:
        head = self.r.read_at(0, min(self.r.size, 64))
        if len(head) < 4 or int.from_bytes(head[:4], "big") != _EBML_HEAD:
            raise VideoUnreadable("it does not start with an EBML header (not a WebM/Matroska file)")
        start, end = self._segment()
        scale, duration, track = 1_000_000, 0.0, None
        for eid, s, e in self._top_elements(start, end):
            if eid == _INFO:
                scale, duration = self._info(self.r.read_at(s, e - s), scale)
            elif eid == _TRACKS:
                track = self._tracks(self.r.read_at(s, e - s))
            if track is not None and duration:
                break
        if track is None:
            raise VideoUnreadable("it has no video track")
        seconds = duration * scale / 1e9
        if not seconds:
            raise VideoUnreadable(
                "its header has no duration (a live or browser recording); remux it "
                "(ffmpeg -i in.webm -c copy out.webm)"
            )
        if not track["frame_ns"]:
            raise VideoUnreadable(
                "its video track gives no frame rate (DefaultDuration); re-encode it at a constant frame rate"
            )
        fps = 1e9 / track["frame_ns"]
        return _finish(round(seconds * fps), seconds, track["width"], track["height"], fps)

    def _segment(self) -> tuple[int, int]:
        r, pos = self.r, 0
        while pos < r.size:
            r.count()
            head = r.read_at(pos, min(16, r.size - pos))
            eid, at = _vint(head, 0, len(head), True)
            size, at = _vint(head, at, len(head), False)
            stop = r.size if size == _UNKNOWN else pos + at + size
            if eid == _SEGMENT:
                return pos + at, min(stop, r.size)
            if stop > r.size:
                break
            pos = stop
        raise VideoUnreadable("it has no Segment (the file is cut off or not a WebM/Matroska file)")

    def _top_elements(self, start: int, end: int):
        """The Segment's children, read header by header; clusters (the frames) are skipped unread."""
        r, pos = self.r, start
        while pos < end:
            r.count()
            head = r.read_at(pos, min(16, end - pos))
            eid, at = _vint(head, 0, len(head), True)
            size, at = _vint(head, at, len(head), False)
            if size == _UNKNOWN:
                if eid == _CLUSTER:
                    return  # a live recording: what follows are frames
                raise VideoUnreadable(f"the element 0x{eid:X} has an unknown size")
            stop = pos + at + size
            if stop > end:
                raise VideoUnreadable(f"the element 0x{eid:X} claims {size} bytes, more than the file holds")
            yield eid, pos + at, stop
            pos = stop

    def _info(self, p: bytes, scale: int) -> tuple[int, float]:
        duration = 0.0
        for eid, s, e in _elements(p, self.r, 0, len(p)):
            if eid == _TIMECODE_SCALE:
                scale = _uint(p[s:e]) or scale
            elif eid == _DURATION:
                duration = _float(p[s:e])
        if not (duration >= 0 and duration < 1e18):  # NaN or absurd
            raise VideoUnreadable(f"its Duration {duration} is not a length")
        return scale, duration

    def _tracks(self, p: bytes) -> dict | None:
        for eid, s, e in _elements(p, self.r, 0, len(p)):
            if eid == _TRACK_ENTRY:
                t = self._entry(p, s, e)
                if t["type"] == 1:
                    return t
        return None

    def _entry(self, p: bytes, start: int, end: int) -> dict:
        t = {"type": 0, "frame_ns": 0, "width": 0, "height": 0}
        for eid, s, e in _elements(p, self.r, start, end):
            if eid == _TRACK_TYPE:
                t["type"] = _uint(p[s:e])
            elif eid == _DEFAULT_DURATION:
                t["frame_ns"] = _uint(p[s:e])
            elif eid == _VIDEO:
                for vid, vs, ve in _elements(p, self.r, s, e):
                    if vid == _PIXEL_WIDTH:
                        t["width"] = _uint(p[vs:ve])
                    elif vid == _PIXEL_HEIGHT:
                        t["height"] = _uint(p[vs:ve])
        return t
