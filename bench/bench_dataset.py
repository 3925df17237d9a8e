"""Benchmark the dataset scan and the weights balancing (not a test; prints figures and ratios).

    python bench/bench_dataset.py [--images 20000] [--datasets 1000] [--keep DIR]

1. scan of IMAGES generated small PNG/JPEG files (20 subsets, captions beside each): header-only
   (our scan_project) vs PIL's lazy open per file vs a full decode (scan_project(verify=True)), all in
   this run (target: header-only >= 5,000 images/s)
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
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lora_workbench.dataset import (
    balance,  # noqa: E402
    project,
)
from lora_workbench.dataset import scan as dataset


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


def time_it(fn, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def pil_lazy_scan(root: Path) -> int:
    from PIL import Image

    n = 0
    for sub in sorted((root / "images").iterdir()):
        for f in sorted(os.listdir(sub)):
            if f.lower().endswith(dataset.IMAGE_EXTS):
                with Image.open(sub / f) as im:
                    im.size  # noqa: B018 - header only
                n += 1
    return n


def bench_scan(n: int, keep: str | None) -> None:
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
        header = time_it(lambda: dataset.scan_project(root), 3)
        lazy = time_it(lambda: pil_lazy_scan(root), 1)
        full = time_it(lambda: dataset.scan_project(root, verify=True), 1)
        print(f"scan, {count} images in 20 subsets (best of 3 for header-only):")
        print(
            f"  header-only (scan_project)   {header:7.2f} s  {count / header:9.0f} images/s   (target >= 5000)"
        )
        print(
            f"  PIL lazy open per file       {lazy:7.2f} s  {count / lazy:9.0f} images/s   "
            f"header-only is {lazy / header:.1f}x faster"
        )
        print(
            f"  full decode (verify=True)    {full:7.2f} s  {count / full:9.0f} images/s   "
            f"header-only is {full / header:.1f}x faster"
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
    ap.add_argument("--keep", default=None, help="generate into (or reuse) this folder and keep it")
    args = ap.parse_args()
    bench_scan(args.images, args.keep)
    bench_balance(args.datasets)


if __name__ == "__main__":
    main()
