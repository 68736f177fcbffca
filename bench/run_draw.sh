#!/bin/bash
# One DRAW training step, heed (bench_draw) and PyTorch (draw_step.py)
# alternately in one run, then the ratio heed/PyTorch per step (median over rounds; < 1: heed faster).
#
# Usage:  bench/run_draw.sh [ROUNDS (3)]
# Knobs: HEED_BENCH_DRAW (the binary; default build*/bench/bench_draw), PEERS_DIR, and those run_common.sh lists
# (OPENBLAS_CORETYPE, OMP_WAIT_POLICY, BENCH_QUIET_WAIT, BENCH_RETRIES, BENCH_THREADS, BENCH_ITERS).
set -u
HERE="$(cd "$(dirname "$0")" && pwd)"
source "$HERE/run_common.sh"
ROUNDS="${1:-3}"
BIN="$(bench_binary bench_draw "${HEED_BENCH_DRAW:-}")" || exit 1
OUT="$(mktemp /tmp/heed_run_draw.XXXXXX.jsonl)"
for round in $(seq 1 "$ROUNDS"); do
  echo "[run_draw] round $round: heed ($BIN), then PyTorch" >&2
  "$BIN" | tag_round "$round" >>"$OUT"
  "$PY" "$PEERS/draw_step.py" | tag_round "$round" >>"$OUT"
done
echo "[run_draw] results: $OUT" >&2
"$PY" "$HERE/summarize_steps.py" "$OUT" read2_write5_T10
