#!/usr/bin/env bash
# What the GPU machine needs for `bench/gpu_families.sh --musubi` and cannot fetch (it has no
# internet): musubi-tuner's source, ComfyUI's two tokenizer folders, and musubi's Python packages the
# machine's image lacks (or holds in another major version) as wheels for Python 3.12 x86-64.
#
#   scripts/gpu_musubi_carry.sh [REPO_ROOT]      (default: this checkout)
#   env: MUSUBI_TUNER_PATH (default /work/musubi-tuner), COMFYUI_PATH (a ComfyUI checkout)
#
# Writes REPO_ROOT/.whl/ and REPO_ROOT/.musubi/{musubi-tuner,tokenizers}/, adds both to the
# repository's info/exclude (the device tool carries ignored paths named in `carry`), prints sizes.
set -euo pipefail
ROOT=$(cd "${1:-$(dirname "$0")/..}" && pwd)
MUSUBI=${MUSUBI_TUNER_PATH:-/work/musubi-tuner}
COMFY=${COMFYUI_PATH:?set COMFYUI_PATH to a ComfyUI checkout (its comfy/text_encoders tokenizers)}
# musubi-tuner 0.3.4's pins (pyproject.toml) for what the image lacks or has at another major:
# transformers 5.x / huggingface-hub 1.x there; 4.57.6 checks at import for hub < 1.0 and
# tokenizers <= 0.23.0, and accelerate 1.6.0 is musubi's pin (the image's 1.15 wants hub 1.x).
# PyAV (34 MB) is left out: the check trains on images and gpu_musubi.py stubs `av`.
WHEELS=(transformers==4.57.6 tokenizers==0.22.2 huggingface-hub==0.34.3 accelerate==1.6.0
        diffusers==0.32.1 voluptuous==0.15.2 toml==0.10.2 ftfy==6.3.1 wcwidth==0.9.5 easydict==1.13)
PY=${PYTHON:-python3}

rm -rf "$ROOT/.whl" && mkdir -p "$ROOT/.whl"
for w in "${WHEELS[@]}"; do
  "$PY" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
    --platform manylinux2014_x86_64 --platform manylinux1_x86_64 -d "$ROOT/.whl" "$w" 2>&1 \
    | grep -v "^WARNING: Location" || true
done

rm -rf "$ROOT/.musubi" && mkdir -p "$ROOT/.musubi/musubi-tuner" "$ROOT/.musubi/tokenizers"
cp -r "$MUSUBI/src" "$MUSUBI/pyproject.toml" "$ROOT/.musubi/musubi-tuner/"
find "$ROOT/.musubi" -name __pycache__ -prune -exec rm -rf {} +
for t in t5_tokenizer qwen25_tokenizer; do
  cp -r "$COMFY/comfy/text_encoders/$t" "$ROOT/.musubi/tokenizers/"
done

if git -C "$ROOT" rev-parse --git-dir >/dev/null 2>&1; then
  exclude=$(git -C "$ROOT" rev-parse --path-format=absolute --git-path info/exclude)
  mkdir -p "$(dirname "$exclude")"
  for p in /.whl/ /.musubi/; do grep -qxF "$p" "$exclude" 2>/dev/null || echo "$p" >>"$exclude"; done
fi
ls -l "$ROOT/.whl"
du -sh "$ROOT/.whl" "$ROOT/.musubi"
