"""Benchmark the dataset scan and the weights balancing (not a test; prints figures and ratios).

    python bench/bench_dataset.py [--images 20000] [--datasets 1000] [--repeat 5] [--keep DIR]

1. image sizes of IMAGES generated small PNG/JPEG files: Pillow's lazy open (what images.py uses)
   against the hand-written PNG/JPEG header parser the pack used before (kept here as the baseline),
   alone and inside a whole scan_project (captions, listing, confined opens), alternating the two
   and repeating, best and median; then a full decode (scan_project(verify=True)) once.
   (target: a scan >= 5,000 images/s)
2. share error (|achieved share - weight share|, max over a dataset's subsets) of balance_repeats vs the
   seed's floor()/gcd rule over DATASETS random datasets (max and mean for both)
"""

from __future__ import annotations

import argparse
import io
import os
import random
import shutil
import statistics
import struct
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lora_workbench.dataset import balance, images, project  # noqa: E402
from lora_workbench.dataset import scan as dataset  # noqa: E402


# --------------------------------------------------------------------------- the baseline parser
def _png_size(head: bytes):
    if head[:8] == b"\x89PNG\r\n\x1a\n" and head[12:16] == b"IHDR" and len(head) >= 24:
        return struct.unpack(">II", head[16:24])
    return None


_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}


def _jpeg_size(f):
    f.seek(2)
    while True:
        b = f.read(2)
        if len(b) < 2 or b[0] != 0xFF:
            raise ValueError("broken JPEG marker")
        m = b[1]
        while m == 0xFF:
            nb = f.read(1)
            if not nb:
                raise ValueError("truncated JPEG")
            m = nb[0]
        if m == 0x01 or 0xD0 <= m <= 0xD8:
            continue
        if m in (0xD9, 0xDA):
            raise ValueError("JPEG without a frame header")
        seg = f.read(2)
        if len(seg) < 2:
            raise ValueError("truncated JPEG")
        if m in _SOF:
            data = f.read(5)
            h, w = struct.unpack(">HH", data[1:5])
            return w, h
        f.seek(int.from_bytes(seg, "big") - 2, 1)


def header_size(source):
    """The hand-written PNG/JPEG header parser the pack used until issue 13 (Pillow for the rest)."""
    f = source if hasattr(source, "read") else open(source, "rb")  # noqa: SIM115
    try:
        head = f.read(32)
        size = _png_size(head)
        if size is not None:
            return int(size[0]), int(size[1])
        if head[:2] == b"\xff\xd8":
            return _jpeg_size(f)
        f.seek(0)
        return images.image_size(f)
    finally:
        if f is not source:
            f.close()


def generate(root: Path, n: int) -> None:
    from PIL import Image

    project.init_project(root)
    rng = random.Random(7)
    blobs = []
    for k in range(40):  # distinct small images, copied byte-for-byte (generation is not what we time)
        size = (rng.choice([64, 96, 128, 512]), rng.choice([64, 96, 128, 768]))
        buf = io.BytesIO()
        fmt = "PNG" if k % 2 == 0 else "JPEG"
        Image.new("RGB", size, (k * 6, 100, 200 - k * 4)).save(buf, fmt)
        blobs.append((".png" if fmt == "PNG" else ".jpg", buf.getvalue()))
    per = n // 20
    for s in range(20):
        folder = root / "images" / f"{1 + s % 3}_subject{s:02d}"
        folder.mkdir()
        for i in range(per):
            ext, data = blobs[(s * per + i) % len(blobs)]
            (folder / f"img{i:05d}{ext}").write_bytes(data)
            (folder / f"img{i:05d}.txt").write_text(f"subject{s:02d}, tag{i % 7}")


def timed(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def alternate(named: dict, repeat: int) -> dict[str, list[float]]:
    """Run each function `repeat` times, alternating their order each round (the disk is noisy)."""
    times: dict[str, list[float]] = {k: [] for k in named}
    keys = list(named)
    for i in range(repeat):
        for k in keys if i % 2 == 0 else reversed(keys):
            times[k].append(timed(named[k]))
    return times


def sizes_only(root: Path, reader) -> int:
    n = 0
    for sub in sorted((root / "images").iterdir()):
        for f in sorted(os.listdir(sub)):
            if images.is_image(f):
                with open(sub / f, "rb") as fp:  # both readers get the same open file
                    reader(fp)
                n += 1
    return n


def scan_with(reader):
    def run(root: Path):
        saved = dataset.image_size
        dataset.image_size = reader
        try:
            return dataset.scan_project(root)
        finally:
            dataset.image_size = saved

    return run


def report(label: str, count: int, t: list[float], base: list[float] | None = None) -> None:
    best, med = min(t), statistics.median(t)
    line = f"  {label:<34} best {best:6.2f} s  median {med:6.2f} s  {count / best:8.0f} images/s"
    if base is not None:
        line += f"   Pillow/parser: best {best / min(base):.2f}x, median {med / statistics.median(base):.2f}x"
    print(line)


def bench_scan(n: int, keep: str | None, repeat: int) -> None:
    tmp = Path(keep) if keep else Path(tempfile.mkdtemp(prefix="lw-bench-dataset-"))
    root = tmp / "proj"
    try:
        if not (root / "images").is_dir():
            t = time.perf_counter()
            generate(root, n)
            print(f"generated {n} images + captions in {time.perf_counter() - t:.1f} s under {root}")
        scan = dataset.scan_project(root)
        count = sum(s.image_count for s in scan.subsets)
        assert count == n and not any(s.corrupt for s in scan.subsets)
        assert scan_with(header_size)(root).to_dict() == scan.to_dict()  # both read the same sizes
        print(f"image sizes, {count} images in 20 subsets ({repeat} runs each, alternating):")
        raw = alternate(
            {
                "parser": lambda: sizes_only(root, header_size),
                "pil": lambda: sizes_only(root, images.image_size),
            },
            repeat,
        )
        report("sizes only: hand-written parser", count, raw["parser"])
        report("sizes only: Pillow lazy open", count, raw["pil"], raw["parser"])
        full = alternate(
            {
                "parser": lambda: scan_with(header_size)(root),
                "pil": lambda: scan_with(images.image_size)(root),
            },
            repeat,
        )
        report("scan_project: hand-written parser", count, full["parser"])
        report("scan_project: Pillow (as shipped)", count, full["pil"], full["parser"])
        verify = timed(lambda: dataset.scan_project(root, verify=True))
        print(
            f"  {'scan_project(verify=True), decode':<34} once   {verify:6.2f} s  {count / verify:8.0f} images/s"
        )
    finally:
        if not keep:
            shutil.rmtree(tmp, ignore_errors=True)


def random_dataset(rng: random.Random):
    n = rng.randint(2, 10)
    counts = {f"s{i}": rng.choice([rng.randint(1, 20), rng.randint(5, 300)]) for i in range(n)}
    weights = {k: rng.choice([1, 1, 2, 3, 0.5, round(rng.uniform(0.2, 4), 2)]) for k in counts}
    return counts, weights


def bench_balance(m: int) -> None:
    rng = random.Random(42)
    ours, seed, t_ours = [], [], 0.0
    seed_zero = exact = seed_over = 0
    for _ in range(m):
        counts, weights = random_dataset(rng)
        t = time.perf_counter()
        r = balance.balance_repeats(counts, weights)
        t_ours += time.perf_counter() - t
        ours.append(r.max_error)
        exact += r.exact
        s = balance.seed_repeats(counts, weights)
        seed_zero += any(v == 0 for v in s.values())
        seed_over += sum(counts[k] * s[k] for k in counts) > r.budget
        seed.append(max(abs(e) for e in balance.evaluate(counts, weights, s)))
    print(
        f"balancing, {m} random datasets (2-10 subsets, 1-300 images, mixed weights; budget "
        f"{balance.DEFAULT_MAX_ITEMS_PER_EPOCH} items/epoch):"
    )
    print(
        f"  ours: max share error {100 * max(ours):6.2f}%  mean {100 * statistics.mean(ours):6.3f}%  "
        f"exact in {exact}/{m}  ({1000 * t_ours / m:.2f} ms per dataset)"
    )
    print(
        f"  seed: max share error {100 * max(seed):6.2f}%  mean {100 * statistics.mean(seed):6.3f}%  "
        f"0 repeats in {seed_zero}/{m}, over the budget in {seed_over}/{m}"
    )
    worse = sum(o > s + 1e-12 for o, s in zip(ours, seed, strict=True))
    print(
        f"  ours worse than seed on {worse}/{m} datasets; mean error ratio seed/ours = "
        f"{statistics.mean(seed) / max(1e-12, statistics.mean(ours)):.1f}x"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--images", type=int, default=20_000)
    ap.add_argument("--datasets", type=int, default=1000)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--keep", default=None, help="generate into (or reuse) this folder and keep it")
    args = ap.parse_args()
    bench_scan(args.images, args.keep, args.repeat)
    bench_balance(args.datasets)


if __name__ == "__main__":
    main()
