"""Tiny video files written box by box: an MP4/QuickTime header (ftyp, moov with one video trak, an
empty mdat) and a WebM/Matroska header (EBML, Segment with Info and Tracks, one empty Cluster). They
hold no pictures: the pack reads only the headers, so the header is the whole test subject."""

from __future__ import annotations

import struct
from pathlib import Path


# --------------------------------------------------------------------------- ISO-BMFF
def box(kind: bytes, payload: bytes = b"", *, size: int | None = None, large: bool = False) -> bytes:
    """One box; `size` overrides the size field (attacks), `large` writes the 64-bit form."""
    if large:
        return struct.pack(">I4sQ", 1, kind, size if size is not None else 16 + len(payload)) + payload
    return struct.pack(">I4s", size if size is not None else 8 + len(payload), kind) + payload


def full(kind: bytes, payload: bytes, version: int = 0) -> bytes:
    return box(kind, bytes([version, 0, 0, 0]) + payload)


def tkhd(width: int, height: int, version: int = 0) -> bytes:
    times = struct.pack(">QQIIQ", 0, 0, 1, 0, 0) if version else struct.pack(">IIIII", 0, 0, 1, 0, 0)
    rest = bytes(8) + struct.pack(">hhhH", 0, 0, 0, 0) + bytes(36)
    return full(b"tkhd", times + rest + struct.pack(">II", width << 16, height << 16), version)


def mdhd(timescale: int, duration: int, version: int = 0) -> bytes:
    if version:
        body = struct.pack(">QQIQ", 0, 0, timescale, duration)
    else:
        body = struct.pack(">IIII", 0, 0, timescale, duration)
    return full(b"mdhd", body + struct.pack(">HH", 0x55C4, 0), version)


def hdlr(handler: bytes) -> bytes:
    return full(b"hdlr", struct.pack(">I4s", 0, handler) + bytes(12) + b"VideoHandler\0")


def stbl(frames: int, delta: int, *, stsz_count: int | None = None) -> bytes:
    stts = full(b"stts", struct.pack(">III", 1, frames, delta))
    stsz = full(
        b"stsz", struct.pack(">II", 0, frames if stsz_count is None else stsz_count) + bytes(4 * frames)
    )
    return box(b"stbl", full(b"stsd", struct.pack(">I", 0)) + stts + stsz)


def trak(
    frames: int = 25,
    fps: int = 25,
    width: int = 64,
    height: int = 48,
    *,
    handler: bytes = b"vide",
    version: int = 0,
    stsz_count: int | None = None,
) -> bytes:
    timescale, delta = fps * 512, 512
    minf = box(b"minf", full(b"vmhd", bytes(8)) + stbl(frames, delta, stsz_count=stsz_count))
    mdia = box(b"mdia", mdhd(timescale, frames * delta, version) + hdlr(handler) + minf)
    return box(b"trak", tkhd(width, height, version) + mdia)


def mp4_bytes(frames: int = 25, fps: int = 25, width: int = 64, height: int = 48, **kw) -> bytes:
    """ftyp + moov (mvhd, an audio trak first, then the video trak) + an empty mdat."""
    ftyp = box(b"ftyp", b"isom" + struct.pack(">I", 512) + b"isomiso2avc1mp41")
    mvhd = full(b"mvhd", struct.pack(">IIII", 0, 0, 1000, frames * 1000 // fps) + bytes(80))
    audio = trak(frames, fps, 0, 0, handler=b"soun")
    moov = box(b"moov", mvhd + audio + trak(frames, fps, width, height, **kw))
    return ftyp + moov + box(b"mdat")


def write_mp4(path: Path, frames: int = 25, fps: int = 25, width: int = 64, height: int = 48, **kw) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(mp4_bytes(frames, fps, width, height, **kw))
    return path


# --------------------------------------------------------------------------- EBML
def vint_size(n: int) -> bytes:
    """An EBML size as an 8-byte vint (always valid for test sizes)."""
    return bytes([0x01]) + n.to_bytes(7, "big")


def element(eid: int, payload: bytes, *, size: bytes | None = None) -> bytes:
    ident = eid.to_bytes((eid.bit_length() + 7) // 8, "big")
    return ident + (size if size is not None else vint_size(len(payload))) + payload


def uint(eid: int, value: int) -> bytes:
    return element(eid, value.to_bytes(max(1, (value.bit_length() + 7) // 8), "big"))


UNKNOWN_SIZE = bytes([0x01, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF])


def webm_bytes(
    frames: int = 25,
    fps: float = 25.0,
    width: int = 64,
    height: int = 48,
    *,
    doctype: bytes = b"webm",
    with_duration: bool = True,
    with_rate: bool = True,
    float32: bool = False,
) -> bytes:
    """EBML header + Segment(Info(TimecodeScale 1 ms, Duration), Tracks(audio, video), Cluster)."""
    head = element(0x1A45DFA3, element(0x4282, doctype) + uint(0x4287, 4) + uint(0x4285, 2))
    ms = frames / fps * 1000.0
    info = uint(0x2AD7B1, 1_000_000)
    if with_duration:
        info += element(0x4489, struct.pack(">f", ms) if float32 else struct.pack(">d", ms))
    audio = element(0xAE, uint(0xD7, 1) + uint(0x83, 2))
    video = uint(0xD7, 2) + uint(0x83, 1)
    if with_rate:
        video += uint(0x23E383, round(1e9 / fps))
    video += element(0xE0, uint(0xB0, width) + uint(0xBA, height))
    tracks = element(0x1654AE6B, audio + element(0xAE, video))
    cluster = element(0x1F43B675, uint(0xE7, 0))
    segment = element(0x18538067, element(0x1549A966, info) + tracks + cluster)
    return head + segment


def write_webm(
    path: Path, frames: int = 25, fps: float = 25.0, width: int = 64, height: int = 48, **kw
) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(webm_bytes(frames, fps, width, height, **kw))
    return path


def caption(video: Path, text: str = "a clip") -> Path:
    cap = video.with_suffix(".txt")
    cap.write_text(text, encoding="utf-8")
    return cap
