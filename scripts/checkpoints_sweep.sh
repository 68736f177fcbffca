#!/usr/bin/env bash
# Trains every example briefly with fixed seeds and leaves its checkpoints in OUT, so that two builds can
# be compared byte for byte (`cmp -r`): a refactoring that must not change any number should leave every
# checkpoint identical.
#
#   bash scripts/checkpoints_sweep.sh BUILD_DIR OUT_DIR
set -euo pipefail
build="$(cd "$1" && pwd)"; mkdir -p "$2"; out="$(cd "$2" && pwd)"
export OPENBLAS_NUM_THREADS=1 OPENBLAS_CORETYPE="${OPENBLAS_CORETYPE:-Haswell}"
mkdir -p "$out"
ex="$build/examples"
# Run from the source root with a relative text path: charlm records its --text path in the checkpoint.
cd "$(dirname "$0")/.."
"$ex/sentiment/sentiment" --epochs 2 --train-size 400 --max-len 30 --hidden 16 --out "$out/sentiment" >/dev/null
"$ex/translation/translation" --task dates --attention none,bahdanau,dot,general,concat,location,local-m,local-p \
  --epochs 1 --train-size 300 --test-size 50 --out "$out/translation" >/dev/null
"$ex/charlm/charlm" --text examples/charlm/README.md --steps 6 --eval-every 3 --batch 4 --out "$out/charlm" >/dev/null
"$ex/draw/draw" --synthetic --train-size 128 --test-size 32 --steps 6 --out "$out/draw" >/dev/null
"$ex/glimpse/glimpse" --synthetic --train-size 200 --test-size 50 --steps 20 --batch 16 --hidden 16 --out "$out/glimpse" >/dev/null
"$ex/captioning/captioning" --epochs 1 --train-size 64 --val-size 16 --test-size 16 --pictures 2 --channels 4 \
  --out "$out/captioning" >/dev/null
find "$out" -name '*.png' -delete
find "$out" -type f | sort
