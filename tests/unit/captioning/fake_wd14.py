"""Test double for sd-scripts' finetune/tag_images_by_wd14_tagger.py (48d368fa): the same options and
the same behaviour where it matters here, without a model.

Like the real script it reads `<model_dir>/<repo_id with / as _>/` (and fails off line when it is
missing), globs the images (recursively with --recursive), prints a tqdm bar over batches to stderr,
and writes `<stem><caption_extension>` beside each image with a plain open() that follows links;
--append_tags reads the existing caption the same way. Tags per image come from $FAKE_WD14_TAGS
(default `1girl,solo,long_hair`). Switches: FAKE_WD14_RECORD (write the argv, cwd and environment as
JSON there), FAKE_WD14_SLEEP (seconds per batch), FAKE_WD14_FAIL (raise after the first batch),
FAKE_WD14_CHILD_PIDFILE (start a sleeping grandchild and write its PID), FAKE_WD14_PLANT
("LINK=TARGET": make that link just before writing the captions, an attacker racing the run).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

EXTS = (".png", ".jpg", ".jpeg", ".webp", ".bmp")


def setup_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser()
    p.add_argument("train_data_dir")
    p.add_argument("--repo_id", default="SmilingWolf/wd-v1-4-convnext-tagger-v2")
    p.add_argument("--model_dir", default="wd14_tagger_model")
    p.add_argument("--force_download", action="store_true")
    p.add_argument("--batch_size", type=int, default=1)
    p.add_argument("--output_path", default=None)
    p.add_argument("--caption_extension", default=".txt")
    p.add_argument("--thresh", type=float, default=0.35)
    p.add_argument("--general_threshold", type=float, default=None)
    p.add_argument("--character_threshold", type=float, default=None)
    p.add_argument("--recursive", action="store_true")
    p.add_argument("--remove_underscore", action="store_true")
    p.add_argument("--undesired_tags", default="")
    p.add_argument("--onnx", action="store_true")
    p.add_argument("--append_tags", action="store_true")
    p.add_argument("--use_rating_tags", action="store_true")
    p.add_argument("--always_first_tags", default=None)
    p.add_argument("--caption_separator", default=", ")
    return p


def tags_for(args) -> list[str]:
    tags = [t for t in os.environ.get("FAKE_WD14_TAGS", "1girl,solo,long_hair").split(",") if t]
    if args.remove_underscore:
        tags = [t.replace("_", " ") if len(t) > 3 else t for t in tags]
    undesired = {t.strip() for t in args.undesired_tags.split(",") if t.strip()}
    tags = [t for t in tags if t not in undesired]
    for first in [t for t in (args.always_first_tags or "").split(",") if t.strip()]:
        if first in tags:  # like the real script: only a tag it found moves first
            tags.remove(first)
            tags.insert(0, first)
    return tags


def caption(image: Path, args) -> None:
    path = str(image.with_suffix("")) + args.caption_extension
    tags = tags_for(args)
    if args.append_tags and os.path.exists(path):
        with open(path, encoding="utf-8") as f:
            existing = [t.strip() for t in f.read().strip("\n").split(",") if t.strip()]
        tags = existing + [t for t in tags if t not in existing]
    with open(path, "w", encoding="utf-8") as f:
        f.write(", ".join(tags) + "\n")


def main() -> None:
    args = setup_parser().parse_args()
    if os.environ.get("FAKE_WD14_RECORD"):
        keep = ("HF_HUB_OFFLINE", "PYTHONPATH", "PYTHONUNBUFFERED")
        record = {"argv": sys.argv, "cwd": os.getcwd(), "env": {k: os.environ.get(k) for k in keep}}
        Path(os.environ["FAKE_WD14_RECORD"]).write_text(json.dumps(record), encoding="utf-8")
    location = Path(args.model_dir) / args.repo_id.replace("/", "_")
    if not location.exists() and os.environ.get("HF_HUB_OFFLINE") == "1":
        raise SystemExit("huggingface_hub.errors.OfflineModeIsEnabled: Cannot reach the Hub: offline mode")
    if os.environ.get("FAKE_WD14_CHILD_PIDFILE"):
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
        Path(os.environ["FAKE_WD14_CHILD_PIDFILE"]).write_text(str(child.pid))
    root = Path(args.train_data_dir)
    found = root.rglob("*") if args.recursive else root.glob("*")
    images = sorted(p for p in found if p.suffix.lower() in EXTS)
    print(f"found {len(images)} images.", file=sys.stderr)
    batches = [images[i : i + args.batch_size] for i in range(0, len(images), args.batch_size)]
    if os.environ.get("FAKE_WD14_PLANT"):
        link, target = os.environ["FAKE_WD14_PLANT"].split("=", 1)
        os.symlink(target, link)
    for n, batch in enumerate(batches, 1):
        time.sleep(float(os.environ.get("FAKE_WD14_SLEEP", "0")))
        for image in batch:
            caption(image, args)
        pct = int(100 * n / len(batches))
        print(
            f"\r{pct:3d}%|{'#' * (pct // 10):<10}| {n}/{len(batches)} [00:01<00:00,  2.00it/s]",
            end="",
            file=sys.stderr,
        )
        sys.stderr.flush()
        if os.environ.get("FAKE_WD14_FAIL"):
            raise RuntimeError("onnxruntime says: the fake tagger failed on purpose")
    print("\ndone!", file=sys.stderr)


if __name__ == "__main__":
    main()
