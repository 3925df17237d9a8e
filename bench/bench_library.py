"""Benchmark the library linker and the watcher (not a test; prints figures and ratios).

    python bench/bench_library.py [--files 10000] [--watch-files 200] [--repeat 3]

1. full link of a FILES-file library into 3 UIs (ComfyUI, A1111, Forge) vs a plain os.symlink loop
   over the same (source, link) pairs into the same folders, measured in this run (ratio; target <= 1.5)
2. a relink when nothing changed (target <= 0.3 s)
3. watcher latency, file created -> link present in ComfyUI, p50/p95 over WATCH_FILES files created
   one at a time (target p95 <= 300 ms)
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lora_workbench.library import layout, watch
from lora_workbench.library import linker as library  # noqa: E402

# Categories every UI has a folder for, so each library file becomes 3 links.
SHARE = {
    "loras": 0.4,
    "checkpoints": 0.2,
    "vae": 0.1,
    "embeddings": 0.1,
    "upscale_models": 0.1,
    "controlnet": 0.1,
}


def build_library(root: Path, n: int) -> int:
    layout.init_library(root)
    made = 0
    for cat, share in SHARE.items():
        count = int(n * share)
        for i in range(count):
            sub = f"set{i % 10}" if i % 4 == 0 else ""  # a quarter in subfolders
            d = root / cat / sub
            d.mkdir(exist_ok=True)
            open(d / f"{cat}-{i:05d}.safetensors", "wb").close()
            made += 1
    return made


def make_uis(base: Path) -> dict[str, Path]:
    uis = {}
    for ui in ("comfyui", "a1111", "forge"):
        for folders, _exts in layout.UI_LAYOUTS[ui].values():
            (base / ui / folders[0]).mkdir(parents=True, exist_ok=True)
        uis[ui] = base / ui
    return uis


def pairs_for(lib: Path, uis: dict[str, Path]) -> list[tuple[str, str]]:
    """The same (source, link) pairs the linker makes, for the baseline loop."""
    out = []
    for ui, ui_dir in uis.items():
        for cat, (folders, _exts) in layout.UI_LAYOUTS[ui].items():
            if cat not in SHARE:
                continue
            src_root = lib / cat
            for dirpath, _dirs, files in os.walk(src_root):
                rel = os.path.relpath(dirpath, src_root)
                for f in files:
                    out.append((os.path.join(dirpath, f), os.path.join(ui_dir, folders[0], rel, f)))
    return out


def prepare_baseline_dirs(pairs) -> None:
    for d in {os.path.dirname(p) for _, p in pairs}:
        os.makedirs(d, exist_ok=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--files", type=int, default=10_000)
    ap.add_argument("--watch-files", type=int, default=200)
    ap.add_argument("--repeat", type=int, default=3, help="timed passes per variant (best and median shown)")
    args = ap.parse_args()

    work = Path(tempfile.mkdtemp(prefix="bench-library-"))
    try:
        lib = work / "library"
        n = build_library(lib, args.files)
        print(f"library: {n} files in {len(SHARE)} categories ({work})")

        base_times, link_times = [], []

        def time_baseline(r: int) -> list:
            # plain os.symlink loop over the same pairs; its folders are made beforehand (not timed)
            pairs = pairs_for(lib, make_uis(work / f"baseline-{r}"))
            prepare_baseline_dirs(pairs)
            os.sync()  # start each timed pass with no writeback pending
            t = time.perf_counter()
            for src, dst in pairs:
                os.symlink(src, dst)
            base_times.append(time.perf_counter() - t)
            return pairs

        def time_linker(r: int) -> dict:
            # ours: scan, plan, make subfolders, create links
            uis = make_uis(work / f"uis-{r}")
            os.sync()
            t = time.perf_counter()
            report = library.link_library(lib, uis)
            link_times.append(time.perf_counter() - t)
            assert report.ok, report.summary()
            return uis

        # Fresh folders for every pass and nothing deleted in between (deleting 30,000 links slows the
        # next pass on some disks); the order alternates so neither side always goes first.
        for r in range(args.repeat):
            if r % 2:
                uis = time_linker(r)
                pairs = time_baseline(r)
            else:
                pairs = time_baseline(r)
                uis = time_linker(r)
        assert len(pairs) == 3 * n
        base, full = min(base_times), min(link_times)
        print(
            f"full link, {len(pairs)} links into 3 UIs: {full:.3f} s   plain os.symlink loop: {base:.3f} s   "
            f"ratio {full / base:.2f} (best of {args.repeat}; target <= 1.5)"
        )
        print(
            f"  medians: {statistics.median(link_times):.3f} s vs {statistics.median(base_times):.3f} s, "
            f"ratio {statistics.median(link_times) / statistics.median(base_times):.2f}"
        )
        # The linker's own cost: the same pass with the symlink system call stubbed out.
        sdir = work / "stubbed"
        stub_uis = make_uis(sdir)
        real_symlink = os.symlink
        os.symlink = lambda *a, **k: None
        try:
            t = time.perf_counter()
            library.link_library(lib, stub_uis)
            own = time.perf_counter() - t
        finally:
            os.symlink = real_symlink
        shutil.rmtree(sdir)
        print(
            f"  the linker's own work (scan, plan, folders; symlink call stubbed): {own:.3f} s "
            f"= {own / base * 100:.0f}% of the plain loop"
        )

        relinks = []
        for _ in range(args.repeat):
            t = time.perf_counter()
            report = library.link_library(lib, uis)
            relinks.append(time.perf_counter() - t)
            assert not (report.created or report.fixed or report.removed), report.summary()
        print(
            f"no-change relink ({report.unchanged} links checked): {statistics.median(relinks):.3f} s "
            f"(median of {args.repeat}; target <= 0.3 s)"
        )

        w = watch.ensure_watcher(lib, uis)
        time.sleep(0.5)
        lat = []
        target = uis["comfyui"] / "models/loras"
        for i in range(args.watch_files):
            name = f"watch-{i:04d}.safetensors"
            t = time.perf_counter()
            with open(lib / "loras" / name, "wb") as fh:
                fh.write(b"x" * 1024)
            link = target / name
            deadline = t + 10
            while not os.path.islink(link):
                if time.perf_counter() > deadline:
                    raise SystemExit(f"no link for {name} after 10 s")
                time.sleep(0.001)
            lat.append((time.perf_counter() - t) * 1000)
        watch.stop_all()
        lat.sort()
        p50 = statistics.median(lat)
        p95 = lat[max(0, int(round(0.95 * len(lat))) - 1)]
        print(
            f"watch latency created -> linked over {len(lat)} files: p50 {p50:.0f} ms, p95 {p95:.0f} ms, "
            f"max {lat[-1]:.0f} ms (target p95 <= 300 ms; debounce {watch.DEBOUNCE_S * 1000:.0f} ms; "
            f"{w.relinks} relinks)"
        )
    finally:
        watch.stop_all()
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
