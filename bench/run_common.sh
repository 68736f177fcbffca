# Sourced by the bench/run_*.sh scripts: the settings every heed-versus-PyTorch run shares, and helpers.
#   PY       Debian's python3 (it has python3-torch)
#   PEERS    the folder of the PyTorch peer scripts, which are not part of heed: PEERS_DIR (when unset,
#            the folder shared/bench/peers beside the repository's own folder is tried)
# Environment both sides read: BENCH_QUIET_WAIT (10 here: seconds each measurement waits for an idle
# machine), BENCH_RETRIES (0 here), OMP_WAIT_POLICY (PASSIVE: PyTorch's OpenMP workers otherwise spin
# against OpenBLAS), OPENBLAS_CORETYPE (Haswell when unset: OpenBLAS 0.3.21 does not recognize newer CPUs,
# e.g. this machine's Xeon, family 6 model 207, and falls back to its SSE3 kernels, 3-10x slower; 'auto'
# keeps OpenBLAS's own detection), and BENCH_THREADS, BENCH_ITERS, OPENBLAS_NUM_THREADS passed through.
BENCH_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PY=/usr/bin/python3
PEERS="${PEERS_DIR:-$(cd "$BENCH_ROOT/.." && pwd)/shared/bench/peers}"
export BENCH_QUIET_WAIT="${BENCH_QUIET_WAIT:-10}" BENCH_RETRIES="${BENCH_RETRIES:-0}"
export OMP_WAIT_POLICY="${OMP_WAIT_POLICY:-PASSIVE}"
export OPENBLAS_CORETYPE="${OPENBLAS_CORETYPE:-Haswell}"
[ "$OPENBLAS_CORETYPE" = auto ] && unset OPENBLAS_CORETYPE

# bench_binary NAME [OVERRIDE]: prints the path of the bench binary NAME (OVERRIDE when given, else
# build/bench/NAME, else build-*/bench/NAME), or exits with a message saying how to build it.
bench_binary() {
  local name="$1" bin="${2:-}" cand
  if [ -z "$bin" ]; then
    for cand in "$BENCH_ROOT/build/bench/$name" "$BENCH_ROOT"/build-*/bench/"$name"; do
      if [ -x "$cand" ]; then bin="$cand"; break; fi
    done
  fi
  if [ -z "$bin" ] || [ ! -x "$bin" ]; then
    echo "$(basename "$0"): no $name binary; build it (cmake --build build --target $name)" >&2
    exit 1
  fi
  echo "$bin"
}

# tag_round ROUND: copies JSON lines from stdin to stdout with "round": ROUND added to each object.
tag_round() { sed "s/^{/{\"round\": $1, /"; }
