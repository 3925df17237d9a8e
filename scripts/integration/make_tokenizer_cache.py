"""Offline CLIP tokenizers for sd-scripts' --tokenizer_cache_dir, made from ComfyUI's own files.

    <sd-scripts venv>/bin/python make_tokenizer_cache.py --comfyui DIR --out CACHE_DIR

sd-scripts loads a tokenizer from <cache>/<model id with / as _> when that folder exists, else
downloads it. ComfyUI ships the CLIP ViT-L/14 vocabulary in comfy/sd1_tokenizer, with
model_max_length 8192 in its config; sd-scripts pads every caption to model_max_length, so it is put
back to 77 as in openai/clip-vit-large-patch14. SDXL's second tokenizer (laion CLIP ViT-bigG) has the
same BPE vocabulary and sd-scripts sets its pad token itself, so a copy serves for it.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

CLIP_L = "openai_clip-vit-large-patch14"
CLIP_BIG_G = "laion_CLIP-ViT-bigG-14-laion2B-39B-b160k"
FILES = ("vocab.json", "merges.txt", "special_tokens_map.json")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--comfyui", required=True, help="the ComfyUI checkout")
    ap.add_argument("--out", required=True, help="the tokenizer cache folder")
    args = ap.parse_args()
    src = Path(args.comfyui) / "comfy" / "sd1_tokenizer"
    out = Path(args.out)
    for name in (CLIP_L, CLIP_BIG_G):
        dest = out / name
        if (dest / "tokenizer_config.json").is_file():
            print(f"exists, kept: {dest}")
            continue
        tmp = out / f"{name}.part"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        for f in FILES:
            shutil.copyfile(src / f, tmp / f)
        config = json.loads((src / "tokenizer_config.json").read_text(encoding="utf-8"))
        config["model_max_length"] = 77
        config.pop("special_tokens_map_file", None)
        (tmp / "tokenizer_config.json").write_text(json.dumps(config, indent=2), encoding="utf-8")
        check(tmp)
        tmp.rename(dest)
        print(f"wrote {dest}")
    return 0


def check(folder: Path) -> None:
    from transformers import CLIPTokenizer

    tok = CLIPTokenizer.from_pretrained(str(folder))
    ids = tok("a photo").input_ids
    if tok.model_max_length != 77 or ids[0] != 49406:
        raise SystemExit(
            f"the tokenizer in {folder} does not behave like CLIP's ({tok.model_max_length}, {ids})"
        )


if __name__ == "__main__":
    sys.exit(main())
