#!/bin/bash
# The sentiment LSTM training step, heed (bench_sentiment) and PyTorch (sentiment_lstm_attn.py)
# alternately in one run, then the ratio heed/PyTorch per step (median over rounds; < 1: heed faster).
#
# Usage:  bench/run_sentiment.sh [ROUNDS (3)]
# Knobs: HEED_BENCH_SENTIMENT (the binary; default build*/bench/bench_sentiment), PEERS_DIR, and those run_common.sh lists
# (OPENBLAS_CORETYPE, OMP_WAIT_POLICY, BENCH_QUIET_WAIT, BENCH_RETRIES, BENCH_THREADS, BENCH_ITERS).
set -u
HERE="$(cd "$(dirname "$0")" && pwd)"
source "$HERE/run_common.sh"
ROUNDS="${1:-3}"
BIN="$(bench_binary bench_sentiment "${HEED_BENCH_SENTIMENT:-}")" || exit 1
OUT="$(mktemp /tmp/heed_run_sentiment.XXXXXX.jsonl)"
for round in $(seq 1 "$ROUNDS"); do
  echo "[run_sentiment] round $round: heed ($BIN), then PyTorch" >&2
  "$BIN" | tag_round "$round" >>"$OUT"
  "$PY" "$PEERS/sentiment_lstm_attn.py" | tag_round "$round" >>"$OUT"
done
echo "[run_sentiment] results: $OUT" >&2
"$PY" "$HERE/summarize_steps.py" "$OUT" last_hidden attn
