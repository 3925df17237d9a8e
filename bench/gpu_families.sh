#!/usr/bin/env bash
# Every model family end to end on a GPU machine without internet: random-weight full-size models
# built with sd-scripts' own classes, 4 training steps each through the pack, the LoRA loaded into
# ComfyUI and one image sampled; one line per family (bench/gpu_families.py).
#
#   COMFYUI_PATH=... KOHYA_SS_PATH=... [COMFYUI_PYTHON=... KOHYA_PYTHON=...] bench/gpu_families.sh [--families flux,sd3]
#   bench/gpu_families.sh --dry-run      # no GPU needed: tokenizers, small models, the train commands
set -euo pipefail
cd "$(dirname "$0")/.."
: "${COMFYUI_PATH:?set COMFYUI_PATH to a ComfyUI checkout}"
: "${KOHYA_SS_PATH:?set KOHYA_SS_PATH to an sd-scripts checkout (with its venv, or set KOHYA_PYTHON)}"
PY=${PYTHON:-.venv/bin/python}
[ -x "$PY" ] || PY=python3
if [[ " $* " != *" --dry-run "* ]]; then
  if ! command -v nvidia-smi >/dev/null 2>&1 || ! nvidia-smi -L >/dev/null 2>&1; then
    echo "gpu_families: no NVIDIA GPU here (nvidia-smi -L fails). This check trains full-size models" \
         "and needs one; run it with --dry-run for the parts that do not." >&2
    exit 3
  fi
fi
exec "$PY" bench/gpu_families.py "$@"
