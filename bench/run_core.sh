#!/bin/bash
# heed's core benchmarks against the PyTorch peers, alternately in one run, then a side-by-side table.
#
# Usage:  bench/run_core.sh [ROUNDS (2)] [OUT.jsonl]
# Each round runs, in turn: bench_core per_op_overhead, per_op_overhead.py, bench_core gemm, gemm.py,
# bench_core elementwise, peer_elementwise.py. All JSON lines (tagged with "round") go to OUT.jsonl
# (default: a temporary file, path printed), then summarize_core.py prints the ratios heed/PyTorch.
#
# Knobs (environment):
#   HEED_BENCH_BIN   the bench_core binary (default: build/bench/bench_core, else build-*/bench/bench_core)
#   PEERS_DIR        the folder of the PyTorch peer scripts (not part of heed; see run_common.sh)
#   BENCH_QUIET_WAIT (10 here)  seconds each measurement waits for an idle machine (both sides)
#   BENCH_RETRIES    (0 here)   the peers' re-measure-when-disturbed retries (bench_core does not retry)
#   OMP_WAIT_POLICY  (PASSIVE)  as run_all.sh: PyTorch's OpenMP workers otherwise spin against OpenBLAS
#   OPENBLAS_CORETYPE (Haswell here when unset; 'auto' = OpenBLAS's detection), OPENBLAS_NUM_THREADS,
#   BENCH_THREADS (2), BENCH_ITERS (20) pass through to both.
set -u
HERE="$(cd "$(dirname "$0")" && pwd)"
source "$HERE/run_common.sh"
ROUNDS="${1:-2}"
OUT="${2:-$(mktemp /tmp/heed_run_core.XXXXXX.jsonl)}"
export PEERS_DIR="$PEERS"
BIN="$(bench_binary bench_core "${HEED_BENCH_BIN:-}")" || exit 1
[ -f "$PEERS/per_op_overhead.py" ] || { echo "run_core.sh: PyTorch peers not found in $PEERS" >&2; exit 1; }
: > "$OUT"
log() { echo "[run_core $(date +%T)] $*" >&2; }

run() {  # run <round> <label> <cmd...>: JSON lines tagged with the round, errors recorded as rows
  local round="$1" label="$2"; shift 2
  log "round $round: $label"
  local tmp; tmp="$(mktemp /tmp/heed_run_core_step.XXXXXX)"
  timeout 600 "$@" >"$tmp"
  local rc=$?
  tag_round "$round" <"$tmp" >>"$OUT"
  rm -f "$tmp"
  if [ $rc -ne 0 ]; then echo "{\"round\": $round, \"bench\": \"$label\", \"error\": \"exit code $rc\"}" >>"$OUT"; fi
}

log "heed: $BIN; peers: $PEERS; OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-unset} OMP_WAIT_POLICY=$OMP_WAIT_POLICY"
for round in $(seq 1 "$ROUNDS"); do
  run "$round" heed_per_op   "$BIN" per_op_overhead
  run "$round" torch_per_op  "$PY" "$PEERS/per_op_overhead.py"
  run "$round" heed_gemm     "$BIN" gemm
  run "$round" torch_gemm    "$PY" "$PEERS/gemm.py"
  run "$round" heed_elementwise  "$BIN" elementwise
  run "$round" torch_elementwise "$PY" "$HERE/peer_elementwise.py"
done
log "results: $OUT"
"$PY" "$HERE/summarize_core.py" "$OUT"
