#!/usr/bin/env bash
# Build everything the integration tier needs into one folder, then print the variables it reads.
#
#   scripts/integration-env.sh [--home DIR] [--sdxl] [--musubi]
#   . DIR/env && bash scripts/test.sh tests/integration -v -s
#
# DIR: --home, else $LORA_WORKBENCH_INTEGRATION_HOME, else .integration/ in this repository.
# It holds, when the script is done:
#   ComfyUI/  venv-comfy/          ComfyUI at the pinned commit below and its venv, with the pack's own
#                                  requirements, as a user's ComfyUI has them
#   workbench-home/                LORA_WORKBENCH_HOME: sd-scripts installed by the pack's own
#                                  `lora-workbench trainer install` (its checkout, its venv and the
#                                  offline CLIP tokenizers made from ComfyUI's files, in
#                                  trainers/sd-scripts/); KOHYA_SS_PATH and KOHYA_PYTHON point into it
#                                  With --musubi also musubi-tuner, the same way (`trainer install --trainer
#                                  musubi-tuner`, trainers/musubi-tuner/); MUSUBI_TUNER_PATH and
#                                  MUSUBI_PYTHON point into it
#   models/checkpoints/random_sd15.safetensors   a full-size SD1.5 with random weights (2 GiB),
#                                  made with sd-scripts' own model code; random_sdxl.safetensors
#                                  too with --sdxl (6.5 GiB, about 15 GiB of memory for a minute)
#   datasets/smoke/                4 PNGs with captions in images/2_testsubject, and dataset.toml
#   env                            the variables below, to source
# Running it again changes nothing: every step checks its result first (a venv keeps a stamp of
# what was installed into it; a changed requirement list or TORCH_SPEC reinstalls; the trainer
# install is a no-op when nothing changed).
#
# Overrides (environment):
#   COMFYUI_GIT, SD_SCRIPTS_GIT    where to clone from: a URL, or a local clone or mirror (offline)
#   MUSUBI_GIT                     the same for musubi-tuner (--musubi)
#   COMFYUI_REF, SD_SCRIPTS_REF    the commits (defaults: the versions the tier is checked against;
#   MUSUBI_REF                     the trainers': the pack's pins, `lora-workbench trainer pins [--trainer ...]`)
#   PYTHON                         the interpreter the venvs are made from (python3.11, else python3)
#   TORCH_SPEC                     the torch pins for both venvs ("torch==2.14.1 torchvision==0.29.1")
# Disk: about 15 GB (two torch venvs and the checkpoint), 22 GB with --sdxl, 5 GB more with --musubi.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
HERE="$REPO/scripts/integration"
: "${COMFYUI_GIT:=https://github.com/Comfy-Org/ComfyUI.git}"
: "${SD_SCRIPTS_GIT:=https://github.com/kohya-ss/sd-scripts.git}"
: "${MUSUBI_GIT:=https://github.com/kohya-ss/musubi-tuner.git}"
: "${COMFYUI_REF:=a125cd84b054a57729b5eecab930ca9408719832}"     # ComfyUI v0.3.64
: "${SD_SCRIPTS_REF:=}"  # empty: the sd-scripts InstallSpec's ref, the one pinned commit
: "${MUSUBI_REF:=}"  # empty: the musubi-tuner InstallSpec's ref
: "${TORCH_SPEC:=torch==2.14.1 torchvision==0.29.1}"
if [ -z "${PYTHON:-}" ]; then
  PYTHON=python3
  if command -v python3.11 >/dev/null 2>&1; then PYTHON=python3.11; fi
fi
HOME_DIR="${LORA_WORKBENCH_INTEGRATION_HOME:-$REPO/.integration}"
WITH_SDXL=0
WITH_MUSUBI=0
while [ $# -gt 0 ]; do
  case "$1" in
    --home) HOME_DIR="$2"; shift 2 ;;
    --sdxl) WITH_SDXL=1; shift ;;
    --musubi) WITH_MUSUBI=1; shift ;;
    -h|--help) sed -n '2,34p' "$0"; exit 0 ;;
    *) echo "unknown argument: $1 (see --help)" >&2; exit 64 ;;
  esac
done

T0=$SECONDS
log() { echo "[integration-env +$((SECONDS - T0))s] $*" >&2; }
die() { echo "[integration-env] error: $*" >&2; exit 1; }
command -v git >/dev/null || die "git is not installed"
command -v "$PYTHON" >/dev/null || die "no $PYTHON on PATH (set PYTHON to a Python 3.10 or 3.11)"
mkdir -p "$HOME_DIR"
HOME_DIR="$(cd "$HOME_DIR" && pwd)"
BUILD="$HOME_DIR/build"   # generated requirement lists and logs
mkdir -p "$BUILD"
COMFYUI="$HOME_DIR/ComfyUI"
COMFY_VENV="$HOME_DIR/venv-comfy"
TRAINER_HOME="$HOME_DIR/workbench-home"
CKPT="$HOME_DIR/models/checkpoints/random_sd15.safetensors"
SDXL_CKPT="$HOME_DIR/models/checkpoints/random_sdxl.safetensors"
DATASET="$HOME_DIR/datasets/smoke"

# ------------------------------------------------------------------ checkouts
# A local mirror may lack a few large blobs it never needed (ComfyUI's llama tokenizer.json, say).
# A plain checkout would stop at them, so those paths are left out with a sparse checkout: the
# integration tier uses none of them.
missing_paths() {  # missing_paths REPO COMMIT: the files whose blob the clone lacks, one per line
  git -C "$1" ls-tree -r --format='%(objecttype) %(objectname) %(path)' "$2" | awk '$1 == "blob"' > "$BUILD/tree.txt"
  # cat-file answers "<id> <type>", or "<id> missing" for a blob the clone does not have
  cut -d' ' -f2 "$BUILD/tree.txt" | git -C "$1" cat-file --batch-check='%(objectname) %(objecttype)' \
    | cut -d' ' -f2 > "$BUILD/types.txt"
  paste -d' ' "$BUILD/types.txt" "$BUILD/tree.txt" | awk '$1 == "missing"' | cut -d' ' -f4-
}

checkout() {  # checkout NAME SOURCE COMMIT DEST
  local name="$1" src="$2" ref="$3" dest="$4"
  if [ -d "$dest/.git" ]; then
    local have
    have="$(git -C "$dest" rev-parse HEAD)"
    if [ "$have" = "$(git -C "$dest" rev-parse --verify --quiet "$ref^{commit}" || true)" ]; then
      log "$name: $dest is at ${ref:0:12}"
      return 0
    fi
    die "$name: $dest is at ${have:0:12}, not ${ref:0:12}; remove it (or set ${name^^}_REF) and run again"
  fi
  rm -rf "$dest.part"
  log "$name: cloning $src"
  local filter=()
  if [ ! -d "$src" ]; then filter=(--filter=blob:none); fi  # a remote: fetch only the blobs checked out
  git clone --quiet --no-checkout "${filter[@]}" "$src" "$dest.part"
  local commit
  commit="$(git -C "$dest.part" rev-parse --verify --quiet "$ref^{commit}")" \
    || die "$name: $src has no commit $ref"
  if [ -d "$src" ]; then
    local patterns=("/*")
    while IFS= read -r path; do
      [ -n "$path" ] || continue
      log "$name: the source lacks the file '$path'; it is left out of the checkout"
      patterns+=("!/$(printf '%s' "$path" | sed 's/[][*?!#\\ ]/\\&/g')")
    done < <(missing_paths "$dest.part" "$commit")
    if [ ${#patterns[@]} -gt 1 ]; then
      git -C "$dest.part" config core.sparseCheckout true
      git -C "$dest.part" config core.sparseCheckoutCone false
      printf '%s\n' "${patterns[@]}" > "$dest.part/.git/info/sparse-checkout"
    fi
  fi
  # Left-out paths still make git print "error: invalid object" while it builds the index; it exits 0.
  git -C "$dest.part" -c advice.detachedHead=false checkout --quiet "$commit" 2> "$BUILD/$name-checkout.err" \
    || { cat "$BUILD/$name-checkout.err" >&2; die "$name: checkout failed"; }
  grep -v '^error: invalid object ' "$BUILD/$name-checkout.err" >&2 || true
  mv "$dest.part" "$dest"
  log "$name: checked out ${commit:0:12}"
}

checkout comfyui "$COMFYUI_GIT" "$COMFYUI_REF" "$COMFYUI"

# ------------------------------------------------------------------ virtual environments
# Generated files are written aside first and replace the real ones only when they differ, so a
# second run leaves every file and folder of DIR as it was.
SCRATCH="$(mktemp -d)"
trap 'rm -rf "$SCRATCH"' EXIT
settle() {  # settle FILE: $SCRATCH/<name> becomes FILE when it differs
  local new="$SCRATCH/$(basename "$1")"
  if cmp -s "$new" "$1"; then rm "$new"; else mv "$new" "$1"; fi
}

# TORCH_SPEC is a constraint on every install, so no requirement can pull another torch.
# shellcheck disable=SC2086  # one pin per word
printf '%s\n' $TORCH_SPEC > "$SCRATCH/torch-constraints.txt"
settle "$BUILD/torch-constraints.txt"

venv() {  # venv NAME DIR REQUIREMENTS CONSTRAINTS: install into DIR unless its stamp says it is done
  local name="$1" dir="$2" reqs="$3" cons="$4"
  local want have=""
  want="$(cat "$reqs" "$cons" | sha256sum | cut -c1-16)"
  [ -f "$dir/.integration-stamp" ] && have="$(cat "$dir/.integration-stamp")"
  if [ "$want" = "$have" ] && "$dir/bin/python" -c "import torch" 2>/dev/null; then
    log "$name: $dir is up to date"
    return 0
  fi
  [ -x "$dir/bin/python" ] || { log "$name: creating $dir"; "$PYTHON" -m venv "$dir"; }
  log "$name: installing (log: $BUILD/pip-$name.log)"
  # shellcheck disable=SC2086  # one pin per word
  if ! "$dir/bin/python" -m pip install --disable-pip-version-check $TORCH_SPEC -r "$reqs" -c "$cons" \
      > "$BUILD/pip-$name.log" 2>&1; then
    tail -30 "$BUILD/pip-$name.log" >&2
    die "$name: pip install failed"
  fi
  echo "$want" > "$dir/.integration-stamp"
  log "$name: ready ($("$dir/bin/python" -c 'import torch; print("torch", torch.__version__)'))"
}

# ComfyUI: its requirements without torch/torchvision/torchaudio (TORCH_SPEC pins those; torchaudio
# is left out: only its audio nodes need it), plus requests and transformers<5 (with transformers 5
# pip picks a huggingface-hub that no longer brings requests, which ComfyUI 0.3.64 imports), plus
# this pack's requirements, as a user installs them.
{
  grep -vE '^\s*(torch|torchvision|torchaudio)\s*([<>=!~].*)?$' "$COMFYUI/requirements.txt"
  echo requests
  cat "$REPO/requirements.txt"
} > "$SCRATCH/comfy-requirements.txt"
{ cat "$BUILD/torch-constraints.txt"; echo 'transformers<5'; } > "$SCRATCH/comfy-constraints.txt"
settle "$BUILD/comfy-requirements.txt"
settle "$BUILD/comfy-constraints.txt"
venv comfy "$COMFY_VENV" "$BUILD/comfy-requirements.txt" "$BUILD/comfy-constraints.txt"

# sd-scripts: installed the way a user installs it, by the pack (one way, not two): its checkout,
# a venv with TORCH_SPEC as a constraint on pip, the tokenizers from ComfyUI's files, checked.
trainer() {  # the pack's CLI, run by ComfyUI's interpreter as a user runs it
  (cd "$REPO" && LORA_WORKBENCH_HOME="$TRAINER_HOME" "$COMFY_VENV/bin/python" -m lora_workbench trainer "$@")
}
ref_arg=()
if [ -n "$SD_SCRIPTS_REF" ]; then ref_arg=(--ref "$SD_SCRIPTS_REF"); fi
log "sd-scripts: lora-workbench trainer install (log: $TRAINER_HOME/trainers/sd-scripts/<build>/build/)"
trainer install --source "$SD_SCRIPTS_GIT" "${ref_arg[@]}" --torch "$TORCH_SPEC" --python "$PYTHON" \
  --comfyui "$COMFYUI" >&2 || die "sd-scripts: lora-workbench trainer install failed"
trainer status --json > "$SCRATCH/trainer.json"
field() { "$COMFY_VENV/bin/python" -c 'import json, sys; print(json.load(open(sys.argv[1]))["managed"][sys.argv[2]])' "$SCRATCH/${2:-trainer}.json" "$1"; }
SD_SCRIPTS="$(field src)"
SDS_PYTHON="$(field python)"
SD_SCRIPTS_COMMIT="$(field commit)"
TOKENIZERS="$TRAINER_HOME/trainers/sd-scripts/tokenizers"

# musubi-tuner (--musubi): the same way, into its own venv (its pins differ from sd-scripts').
if [ "$WITH_MUSUBI" = 1 ]; then
  musubi_ref=()
  if [ -n "$MUSUBI_REF" ]; then musubi_ref=(--ref "$MUSUBI_REF"); fi
  log "musubi-tuner: lora-workbench trainer install --trainer musubi-tuner (log: $TRAINER_HOME/trainers/musubi-tuner/<build>/build/)"
  trainer install --trainer musubi-tuner --source "$MUSUBI_GIT" "${musubi_ref[@]}" --torch "$TORCH_SPEC" \
    --python "$PYTHON" >&2 || die "musubi-tuner: lora-workbench trainer install failed"
  trainer status --trainer musubi-tuner --json > "$SCRATCH/musubi.json"
  MUSUBI="$(field src musubi)"
  MUSUBI_PY="$(field python musubi)"
  MUSUBI_COMMIT="$(field commit musubi)"
fi

# ------------------------------------------------------------------ test material
"$SDS_PYTHON" "$HERE/make_random_sd15.py" --sd-scripts "$SD_SCRIPTS" --out "$CKPT" >&2
if [ "$WITH_SDXL" = 1 ]; then
  "$SDS_PYTHON" "$HERE/make_random_sdxl.py" --sd-scripts "$SD_SCRIPTS" --out "$SDXL_CKPT" >&2
fi
"$SDS_PYTHON" "$HERE/make_dataset.py" --root "$DATASET" >&2

# ------------------------------------------------------------------ the variables
{
  echo "# The integration tier's environment, written by scripts/integration-env.sh: source it."
  printf 'export LORA_WORKBENCH_INTEGRATION_HOME=%q\n' "$HOME_DIR"
  printf 'export COMFYUI_PATH=%q COMFYUI_PYTHON=%q\n' "$COMFYUI" "$COMFY_VENV/bin/python"
  printf 'export LORA_WORKBENCH_HOME=%q\n' "$TRAINER_HOME"
  printf 'export KOHYA_SS_PATH=%q KOHYA_PYTHON=%q\n' "$SD_SCRIPTS" "$SDS_PYTHON"
  if [ "$WITH_MUSUBI" = 1 ]; then printf 'export MUSUBI_TUNER_PATH=%q MUSUBI_PYTHON=%q\n' "$MUSUBI" "$MUSUBI_PY"; fi
  printf 'export LORA_WORKBENCH_TEST_CKPT=%q\n' "$CKPT"
  if [ -f "$SDXL_CKPT" ]; then printf 'export LORA_WORKBENCH_TEST_SDXL_CKPT=%q\n' "$SDXL_CKPT"; fi
  printf 'export LORA_WORKBENCH_TOKENIZER_CACHE=%q\n' "$TOKENIZERS"
  printf 'export LORA_WORKBENCH_TEST_DATASET=%q\n' "$DATASET"
  echo 'export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1'
} > "$SCRATCH/env"
settle "$HOME_DIR/env"
log "done: ComfyUI ${COMFYUI_REF:0:12}, sd-scripts ${SD_SCRIPTS_COMMIT:0:12}${MUSUBI_COMMIT:+, musubi-tuner ${MUSUBI_COMMIT:0:12}} in $HOME_DIR"
echo "# source it:  . $(printf '%q' "$HOME_DIR/env")" >&2
cat "$HOME_DIR/env"
