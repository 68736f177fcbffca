#!/bin/bash
# Data-parallel training throughput: the token_cls Transformer training step (bench_transformer's, batch 32
# x seq 64 per process) with 1 and 2 processes, one thread each — heed (bench_dist under mpirun, heed::dist::
# DataParallel) and PyTorch DistributedDataParallel on gloo (peers_dist/ddp_transformer.py) — alternately in
# one run. Prints per implementation and process count the samples per second (median over rounds), the
# scaling (2-process / 1-process throughput), the share of heed's step time spent blocked waiting for
# communication (and in all of DataParallel's work), and each side's step time without gradient averaging
# (no_sync) against with it.
#
# Usage:  bench/run_dist.sh [ROUNDS (3)]
# Knobs: HEED_BENCH_DIST (the binary; default build*/bench/bench_dist), MPIRUN (mpirun), BENCH_WARMUP (5),
# BENCH_ITERS (20), BENCH_QUIET_WAIT (seconds to wait for an idle machine before each measurement; 60 here),
# OPENBLAS_CORETYPE (run_common.sh). OPENBLAS_NUM_THREADS is 1 here (one thread per process).
set -u
HERE="$(cd "$(dirname "$0")" && pwd)"
BENCH_QUIET_WAIT="${BENCH_QUIET_WAIT:-60}"
source "$HERE/run_common.sh"
ROUNDS="${1:-3}"
BIN="$(bench_binary bench_dist "${HEED_BENCH_DIST:-}")" || exit 1
export OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1
# Open MPI on this machine's shared memory only; no ptrace-based single copy (containers forbid it); not
# bound to cores, like the PyTorch processes.
export OMPI_MCA_btl=self,vader OMPI_MCA_btl_vader_single_copy_mechanism=none
MPIRUN="${MPIRUN:-mpirun} --allow-run-as-root --bind-to none"
# wait_quiet: up to BENCH_QUIET_WAIT seconds until the other processes use less than a tenth of the CPUs
# (two processes per measurement need both cores of a 2-core machine).
wait_quiet() {
  local waited=0 a b
  while [ "$waited" -lt "$BENCH_QUIET_WAIT" ]; do
    a=($(head -1 /proc/stat)); sleep 1; b=($(head -1 /proc/stat))
    local busy=$(( (b[1]+b[2]+b[3]+b[6]+b[7]) - (a[1]+a[2]+a[3]+a[6]+a[7]) ))
    local total=$(( busy + (b[4]+b[5]) - (a[4]+a[5]) ))
    [ "$total" -gt 0 ] && [ $((busy * 10)) -lt "$total" ] && return 0
    waited=$((waited + 1))
  done
  echo "[run_dist] the machine stayed busy for ${BENCH_QUIET_WAIT}s; measuring anyway (see foreign_cpu)" >&2
}
OUT="$(mktemp /tmp/heed_run_dist.XXXXXX.jsonl)"
for round in $(seq 1 "$ROUNDS"); do
  for np in 1 2; do
    wait_quiet
    echo "[run_dist] round $round: heed, $np process(es)" >&2
    $MPIRUN -np "$np" "$BIN" | tag_round "$round" >>"$OUT"
    wait_quiet
    echo "[run_dist] round $round: PyTorch DDP (gloo), $np process(es)" >&2
    "$PY" "$HERE/peers_dist/ddp_transformer.py" "$np" | tag_round "$round" >>"$OUT"
  done
done
echo "[run_dist] results: $OUT" >&2
"$PY" - "$OUT" <<'PYEOF'
import json, os, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
cpus = os.cpu_count() or 1
# A measurement is clean when other programs used at most a tenth of the machine besides the job's own
# other ranks ((P - 1) / cpus): on a 2-core machine a busy neighbour halves a 2-process job's speed.
clean = lambda r: r.get("foreign_cpu", 0) <= (r["processes"] - 1) / cpus + 0.1
def pick(impl, p):
    all_ = [r for r in rows if r["impl"] == impl and r["processes"] == p]
    good = [r for r in all_ if clean(r)]
    return (good or all_), len(good), len(all_)
def med(impl, p, key):
    v = [r[key] for r in pick(impl, p)[0] if key in r]
    return statistics.median(v) if v else float("nan")
impls = [("heed", "heed"), ("pytorch-ddp-gloo", "PyTorch DDP (gloo)")]
print("token_cls Transformer training step, batch 32 x seq 64 per process, one thread per process; medians "
      "over the clean rounds (other programs below a tenth of the CPUs; all rounds when none was clean)")
print(f"  {'':<20} {'1 process':>12} {'2 processes':>12} {'scaling':>8}   {'step ms 1p/2p':>14}   "
      f"{'2p no_sync ms':>13}   clean rounds 1p/2p")
for impl, name in impls:
    s1, s2 = med(impl, 1, "samples_per_s"), med(impl, 2, "samples_per_s")
    c1, c2 = pick(impl, 1), pick(impl, 2)
    print(f"  {name:<20} {s1:>9.1f}/s {s2:>9.1f}/s {s2 / s1:>7.2f}x   {med(impl, 1, 'median_ms'):>6.1f}/{med(impl, 2, 'median_ms'):<7.1f}"
          f"   {med(impl, 2, 'nosync_median_ms'):>13.1f}   {c1[1]}/{c1[2]} {c2[1]}/{c2[2]}")
h2, t2 = med("heed", 2, "samples_per_s"), med("pytorch-ddp-gloo", 2, "samples_per_s")
print(f"heed / PyTorch DDP at 2 processes: {h2 / t2:.2f}x the throughput")
print(f"heed, 2 processes: {100 * med('heed', 2, 'wait_share'):.1f}% of the step time blocked waiting for the "
      f"gradient averaging to finish, {100 * med('heed', 2, 'comm_share'):.1f}% in all of DataParallel's work "
      f"({med('heed', 2, 'mb_sent_per_step'):.2f} MB sent per step per rank, "
      f"{int(med('heed', 2, 'buckets'))} buckets)")
PYEOF
