"""Offline tokenizers for musubi-tuner, made from the tokenizer files ComfyUI ships.

musubi loads its tokenizers by Hugging Face id (AutoTokenizer / Qwen2Tokenizer.from_pretrained), so a
machine without internet needs them in the hub cache (HF_HOME/hub) first. ComfyUI carries Qwen2.5's
vocabulary (qwen25_tokenizer: Qwen-Image's, and Qwen3's up to its added special tokens) and T5's
(t5_tokenizer); UMT5's SentencePiece model comes only inside ComfyUI's UMT5 file, so the random-weight
Wan runs use T5's vocabulary as a stand-in (its ids all lie inside UMT5's 256,384).

    python musubi_tokenizers.py TOKENIZER_SOURCE HF_HOME
TOKENIZER_SOURCE: a ComfyUI checkout, or a folder holding t5_tokenizer/ and qwen25_tokenizer/.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

SNAPSHOT = "0" * 40
# (hub id, subfolder musubi asks for) -> ComfyUI's tokenizer folder with that vocabulary
FROM_COMFY = {
    ("Wan-AI/Wan2.1-T2V-14B", "google/umt5-xxl"): "t5_tokenizer",  # wan/modules/t5.py (stand-in)
    ("Qwen/Qwen-Image", "tokenizer"): "qwen25_tokenizer",  # qwen_image_utils.load_qwen2_5_vl
    ("Tongyi-MAI/Z-Image", "tokenizer"): "qwen25_tokenizer",  # zimage_utils.load_qwen3
    ("Qwen/Qwen3-4B", ""): "qwen25_tokenizer",  # flux2_utils.load_text_embedder (klein 4B)
    ("Qwen/Qwen3-8B", ""): "qwen25_tokenizer",  # (klein 9B)
}


def source_folder(source: Path, name: str) -> Path:
    for candidate in (source / "comfy" / "text_encoders" / name, source / name):
        if candidate.is_dir():
            return candidate
    raise SystemExit(f"no {name}/ under {source}: point it at a ComfyUI checkout or a copy of its tokenizers")


def build(source: Path, hf_home: Path) -> list[str]:
    """Write every tokenizer into HF_HOME/hub as a snapshot; returns one line per tokenizer."""
    done = []
    for (repo_id, sub), name in FROM_COMFY.items():
        repo = hf_home / "hub" / ("models--" + repo_id.replace("/", "--"))
        (repo / "refs").mkdir(parents=True, exist_ok=True)
        (repo / "refs" / "main").write_text(SNAPSHOT, encoding="utf-8")
        dst = repo / "snapshots" / SNAPSHOT / sub
        shutil.copytree(source_folder(source, name), dst, dirs_exist_ok=True)
        done.append(f"{repo_id}{'/' + sub if sub else ''}: {name}")
    return done


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    for line in build(Path(sys.argv[1]), Path(sys.argv[2])):
        print(line)
