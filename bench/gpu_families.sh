#!/usr/bin/env bash
# Every model family end to end on a GPU machine without internet: random-weight full-size models
# built with the trainer's own classes, a few training steps each, and one image sampled; one line
# per family.
#
# sd-scripts families (bench/gpu_families.py): through the pack, the LoRA loaded into ComfyUI:
#   COMFYUI_PATH=... KOHYA_SS_PATH=... [COMFYUI_PYTHON=... KOHYA_PYTHON=...] bench/gpu_families.sh [--families flux,sd3]
# musubi-tuner families (bench/gpu_musubi.py): musubi's cache/cache/train steps, its own sampler:
#   MUSUBI_TUNER_PATH=... COMFYUI_PATH=...|MUSUBI_TOKENIZERS=... [MUSUBI_PYTHON=...] \
#     bench/gpu_families.sh --musubi [--families wan,z_image,flux2,qwen_image] [--timeout 180]
#   either with --dry-run      # no GPU needed: tokenizers, sparse/small models, the commands
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
[ -x "$PY" ] || PY=python3
if [[ " $* " != *" --dry-run "* && " $* " != *" --cpu "* ]]; then
  if ! command -v nvidia-smi >/dev/null 2>&1 || ! nvidia-smi -L >/dev/null 2>&1; then
    echo "gpu_families: no NVIDIA GPU here (nvidia-smi -L fails). This check trains full-size models" \
         "and needs one; run it with --dry-run for the parts that do not." >&2
    exit 3
  fi
fi
if [[ " $* " == *" --musubi "* ]]; then
  : "${MUSUBI_TUNER_PATH:?set MUSUBI_TUNER_PATH to a musubi-tuner checkout}"
  args=()
  for a in "$@"; do [[ "$a" == "--musubi" ]] || args+=("$a"); done
  exec "$PY" bench/gpu_musubi.py "${args[@]}"
fi
: "${COMFYUI_PATH:?set COMFYUI_PATH to a ComfyUI checkout}"
: "${KOHYA_SS_PATH:?set KOHYA_SS_PATH to an sd-scripts checkout (with its venv, or set KOHYA_PYTHON)}"
exec "$PY" bench/gpu_families.py "$@"
