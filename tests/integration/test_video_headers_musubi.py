"""What the pack reads from a video's header is what REAL musubi-tuner decodes and cuts.

1. Real videos encoded by PyAV (ffmpeg's libraries) in musubi-tuner's own environment: MP4 and MOV
   (MPEG-4 part 2), MKV, and WebM (VP9) when the build has it, at several lengths, rates and sizes.
   The pack's header reader gives the frames musubi-tuner's `load_video` decodes, and the size and
   frame rate PyAV reports.
2. The clips musubi-tuner's `VideoDataset` cuts from them (head, chunk, slide, uniform, full) are the
   ones `video_frames.clips` predicts, clip for clip.

Needs MUSUBI_TUNER_PATH (a checkout) and MUSUBI_PYTHON (its venv, with PyAV), or the skip says so.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from lora_workbench.dataset import videos
from lora_workbench.dataset.video_frames import FramePlan, clips

pytestmark = pytest.mark.integration

# name, codec, frames, fps, width, height
VIDEOS = [
    ("a.mp4", "mpeg4", 33, 16, 64, 48),
    ("b.mp4", "mpeg4", 81, 24, 96, 64),
    ("c.mov", "mpeg4", 17, 30, 64, 64),
    ("d.mkv", "mpeg4", 25, 25, 80, 48),
    ("e.webm", "libvpx-vp9", 21, 16, 64, 48),
]

ENCODE_AND_DECODE = r"""
import json, sys, numpy as np, av
from musubi_tuner.dataset.media_utils import load_video
out = {}
for name, codec, frames, fps, w, h in json.loads(sys.argv[2]):
    path = sys.argv[1] + "/" + name
    try:
        c = av.open(path, "w")
        s = c.add_stream(codec, rate=fps)
    except Exception as exc:  # a PyAV build without this encoder
        out[name] = {"skip": str(exc)}
        continue
    s.width, s.height, s.pix_fmt = w, h, "yuv420p"
    for i in range(frames):
        img = np.full((h, w, 3), (i * 7) % 255, np.uint8)
        for p in s.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
            c.mux(p)
    for p in s.encode():
        c.mux(p)
    c.close()
    with av.open(path) as r:
        v = r.streams.video[0]
        rate = float(v.average_rate or v.guessed_rate or 0)
        size = (v.codec_context.width, v.codec_context.height)
    decoded = load_video(path)
    out[name] = {"decoded": len(decoded), "fps": rate, "size": size,
                 "shape": list(decoded[0].shape) if decoded else []}
print(json.dumps(out))
"""

CUT = r"""
import json, sys, logging
logging.disable(logging.WARNING)
from musubi_tuner.dataset.image_video_dataset import VideoDataset
folder, cache = sys.argv[1], sys.argv[2]
out = {}
for label, kw in json.loads(sys.argv[3]).items():
    ds = VideoDataset((64, 48), ".txt", 1, 1, False, False, video_directory=folder, cache_directory=cache,
                      architecture="wan", **kw)
    got = {}
    for key, batch in ds.retrieve_latent_cache_batches(1):
        for item in batch:
            stem = item.item_key.rsplit("/", 1)[-1].rsplit("_", 1)[0]
            got.setdefault(stem, []).append(item.frame_count)
    out[label] = {k: sorted(v) for k, v in got.items()}
print(json.dumps(out))
"""

PLANS = {
    "head": dict(frame_extraction="head", target_frames=[1, 13, 25, 45]),
    "chunk": dict(frame_extraction="chunk", target_frames=[13, 25]),
    "slide": dict(frame_extraction="slide", target_frames=[1, 13, 25], frame_stride=10),
    "uniform": dict(frame_extraction="uniform", target_frames=[1, 13, 25], frame_sample=4),
    "full": dict(frame_extraction="full", max_frames=31),
}


@pytest.fixture(scope="module")
def musubi() -> tuple[Path, Path]:
    root, py = os.environ.get("MUSUBI_TUNER_PATH"), os.environ.get("MUSUBI_PYTHON")
    if not root or not py:
        pytest.skip(
            "MUSUBI_TUNER_PATH and MUSUBI_PYTHON are not set: point them at a musubi-tuner checkout and its venv"
        )
    if not (Path(root) / "src" / "musubi_tuner").is_dir() or not Path(py).is_file():
        pytest.skip(f"MUSUBI_TUNER_PATH={root} has no src/musubi_tuner, or MUSUBI_PYTHON={py} is missing")
    return Path(root), Path(py)


def run(musubi, code: str, *args: str) -> dict:
    root, py = musubi
    env = dict(os.environ, PYTHONPATH=str(root / "src"))
    done = subprocess.run([str(py), "-c", code, *args], capture_output=True, text=True, env=env, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def encoded(musubi, tmp_path_factory) -> tuple[Path, dict]:
    folder = tmp_path_factory.mktemp("videos")
    facts = run(musubi, ENCODE_AND_DECODE, str(folder), json.dumps(VIDEOS))
    for name, _codec, *_ in VIDEOS:
        if "skip" not in facts[name]:
            (folder / name).with_suffix(".txt").write_text(f"caption of {name}")
    return folder, facts


@pytest.mark.parametrize("name, codec, frames, fps, width, height", VIDEOS)
def test_the_header_gives_the_frames_musubi_decodes(encoded, name, codec, frames, fps, width, height):
    folder, facts = encoded
    real = facts[name]
    if "skip" in real:
        pytest.skip(f"this PyAV cannot encode {codec}: {real['skip']}")
    with open(folder / name, "rb") as f:
        got = videos.video_info(f, name)
    assert got.frames == real["decoded"] == frames
    assert (got.width, got.height) == tuple(real["size"]) == (width, height)
    assert got.fps == pytest.approx(real["fps"], rel=0.01)
    assert got.duration == pytest.approx(frames / fps, abs=0.05)


def test_the_clips_musubi_cuts_are_the_ones_predicted(musubi, encoded, tmp_path):
    folder, facts = encoded
    # one container per folder name: musubi keys items by stem
    lengths = {Path(n).stem: facts[n]["decoded"] for n, *_ in VIDEOS if "skip" not in facts[n]}
    cut = run(musubi, CUT, str(folder), str(tmp_path), json.dumps(PLANS))
    for label, kw in PLANS.items():
        plan = FramePlan(
            tuple(kw.get("target_frames", (1,))),
            kw["frame_extraction"],
            kw.get("frame_stride", 1),
            kw.get("frame_sample", 1),
            kw.get("max_frames", 129),
        )
        predicted = {stem: sorted(clips(n, plan)) for stem, n in lengths.items()}
        predicted = {k: v for k, v in predicted.items() if v}
        assert cut[label] == predicted, label
