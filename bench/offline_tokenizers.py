"""Offline tokenizers for every family's trainer, made from the tokenizer files ComfyUI ships.

sd-scripts loads tokenizers by Hugging Face id: through `--tokenizer_cache_dir` (<dir>/<org>_<name>),
through the hub cache (HF_HOME, or cache_dir=tokenizer_cache_dir for Gemma), and it downloads them
when neither has them. A machine without internet needs them in place first. ComfyUI carries the
same vocabularies (sd1_tokenizer, t5_tokenizer, qwen25_tokenizer, byt5_tokenizer); Gemma 2's comes
inside ComfyUI's Gemma file, so a random-weight run gets a small stand-in SentencePiece model.

    python offline_tokenizers.py COMFYUI_DIR TOKENIZER_CACHE_DIR HF_HOME
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

# sd-scripts' tokenizer id -> ComfyUI's folder with the same vocabulary (relative to comfy/)
FROM_COMFY = {
    "openai/clip-vit-large-patch14": "sd1_tokenizer",
    "laion/CLIP-ViT-bigG-14-laion2B-39B-b160k": "sd1_tokenizer",
    "google/t5-v1_1-xxl": "text_encoders/t5_tokenizer",
    "Qwen/Qwen2.5-VL-7B-Instruct": "text_encoders/qwen25_tokenizer",
    "google/byt5-small": "text_encoders/byt5_tokenizer",
}
# Loaded straight from the hub cache (no tokenizer_cache_dir) by sd-scripts' text-encoder loaders.
HUB_TOO = ("Qwen/Qwen2.5-VL-7B-Instruct", "google/byt5-small")
GEMMA = "google/gemma-2-2b"  # lumina: AutoTokenizer.from_pretrained(GEMMA, cache_dir=tokenizer_cache_dir)
SNAPSHOT = "0" * 40


def _copy_tokenizer(src: Path, dst: Path, model_max_length: int | None = None) -> None:
    dst.mkdir(parents=True, exist_ok=True)
    for f in src.iterdir():
        if f.is_file():
            shutil.copyfile(f, dst / f.name)
    if model_max_length:  # ComfyUI's CLIP config says 8192; sd-scripts pads captions to this length
        cfg_path = dst / "tokenizer_config.json"
        cfg = json.loads(cfg_path.read_text(encoding="utf-8"))
        cfg["model_max_length"] = model_max_length
        cfg_path.write_text(json.dumps(cfg, indent=2), encoding="utf-8")


def _hub_snapshot(cache: Path, repo_id: str) -> Path:
    """The snapshot folder of `repo_id` in a hub cache (models--org--name/snapshots/<rev>, refs/main)."""
    repo = cache / ("models--" + repo_id.replace("/", "--"))
    (repo / "refs").mkdir(parents=True, exist_ok=True)
    (repo / "refs" / "main").write_text(SNAPSHOT, encoding="utf-8")
    snap = repo / "snapshots" / SNAPSHOT
    snap.mkdir(parents=True, exist_ok=True)
    return snap


def _stand_in_gemma(dst: Path) -> Path:
    """A small SentencePiece model under Gemma's special-token ids (pad 0, eos 1, bos 2, unk 3), for
    random weights: sd-scripts reads it as Gemma's tokenizer, ComfyUI as the Gemma file's
    `spiece_model` (family_models.py embeds it). Returns the tokenizer.model path."""
    import io

    import sentencepiece as spm

    words = (
        "a an the of photo picture style subject testsubject image portrait in on with and red blue".split()
    )
    sentences = [" ".join(words[i:] + words[:i]) for i in range(len(words))] * 20
    buf = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(sentences),
        model_writer=buf,
        vocab_size=100,
        model_type="bpe",
        pad_id=0,
        eos_id=1,
        bos_id=2,
        unk_id=3,
        pad_piece="<pad>",
        eos_piece="<eos>",
        bos_piece="<bos>",
        unk_piece="<unk>",
        user_defined_symbols=["<start_of_turn>", "<end_of_turn>"],
        minloglevel=2,
    )
    dst.mkdir(parents=True, exist_ok=True)
    (dst / "tokenizer.model").write_bytes(buf.getvalue())
    cfg = {
        "tokenizer_class": "GemmaTokenizer",
        "bos_token": "<bos>",
        "eos_token": "<eos>",
        "pad_token": "<pad>",
        "unk_token": "<unk>",
        "add_bos_token": True,
        "add_eos_token": False,
    }
    (dst / "tokenizer_config.json").write_text(json.dumps(cfg, indent=2), encoding="utf-8")
    return dst / "tokenizer.model"


def gemma_spm(tokenizer_cache: Path) -> Path:
    """Where build() leaves the stand-in Gemma SentencePiece model."""
    return (
        tokenizer_cache / ("models--" + GEMMA.replace("/", "--")) / "snapshots" / SNAPSHOT / "tokenizer.model"
    )


def build(comfyui: Path, tokenizer_cache: Path, hf_home: Path) -> list[str]:
    """Write every tokenizer; returns what was written (one line each)."""
    done = []
    for repo_id, folder in FROM_COMFY.items():
        src = comfyui / "comfy" / folder
        if not src.is_dir():
            raise SystemExit(f"{src} is missing: point COMFYUI_PATH at a ComfyUI checkout")
        max_len = 77 if "clip" in repo_id.lower() else None
        _copy_tokenizer(src, tokenizer_cache / repo_id.replace("/", "_"), max_len)
        done.append(f"{repo_id}: {tokenizer_cache / repo_id.replace('/', '_')}")
        if repo_id in HUB_TOO:
            _copy_tokenizer(src, _hub_snapshot(hf_home / "hub", repo_id))
            done.append(f"{repo_id}: hub cache {hf_home / 'hub'}")
    _stand_in_gemma(_hub_snapshot(tokenizer_cache, GEMMA))
    done.append(f"{GEMMA}: stand-in vocabulary in {tokenizer_cache}")
    return done


if __name__ == "__main__":
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    for line in build(Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3])):
        print(line)
