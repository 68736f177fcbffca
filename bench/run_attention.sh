#!/bin/bash
# Attention forward+backward against sequence length, heed (bench_attention) and PyTorch
# (the peer mha_scaling.py in PEERS_DIR for SDPA, bench/peer_mha.py for nn.MultiheadAttention) alternately
# in one run, then per length the times, the peak extra memory and the ratios heed/PyTorch (< 1: heed
# faster / smaller). Both sides measure memory the same way (fresh process per row, glibc mmap threshold
# 64K, VmHWM - VmRSS around one fwd+bwd step).
#
# Usage:  bench/run_attention.sh [SEQ ...]     (default 128 256 512 1024 2048 4096)
# Knobs: ROUNDS (1), THREADS (1: torch.set_num_threads and OPENBLAS_NUM_THREADS; heed's flash kernel is
# single-threaded apart from its BLAS calls), HEED_BENCH_ATTENTION (the binary; default
# build*/bench/bench_attention), PEERS_DIR, OPENBLAS_CORETYPE (Haswell when unset; 'auto' = OpenBLAS's
# detection), OMP_WAIT_POLICY (PASSIVE), BENCH_ITERS (10 heed / 20 torch unless set), BENCH_QUIET_WAIT (10),
# BENCH_RETRIES (0).
set -u
HERE="$(cd "$(dirname "$0")" && pwd)"
source "$HERE/run_common.sh"
ROUNDS="${ROUNDS:-1}"
SEQS="${*:-128 256 512 1024 2048 4096}"
export BENCH_THREADS="${THREADS:-1}" OPENBLAS_NUM_THREADS="${THREADS:-1}"
BIN="$(bench_binary bench_attention "${HEED_BENCH_ATTENTION:-}")" || exit 1
[ -f "$PEERS/mha_scaling.py" ] || { echo "run_attention.sh: no $PEERS/mha_scaling.py" >&2; exit 1; }
OUT="$(mktemp /tmp/heed_run_attention.XXXXXX.jsonl)"
for round in $(seq 1 "$ROUNDS"); do
  for T in $SEQS; do
    echo "[run_attention] round $round, T=$T: heed ($BIN), then PyTorch" >&2
    "$BIN" "$T" | tag_round "$round" >>"$OUT"
    # the peer's own main(), restricted to this length (its children re-run the script per row)
    "$PY" -c "import sys; sys.path.insert(0, sys.argv[1]); import mha_scaling as m; m.SEQS = [int(sys.argv[2])]; m.main()" \
      "$PEERS" "$T" | tag_round "$round" >>"$OUT"
    PEERS_DIR="$PEERS" "$PY" "$HERE/peer_mha.py" "$T" | tag_round "$round" >>"$OUT"
  done
done
echo "[run_attention] results: $OUT (threads: $OPENBLAS_NUM_THREADS)" >&2
"$PY" - "$OUT" <<'PYEOF'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
def pick(impl, variant, T, key):
    vals = [r[key] for r in rows if r.get("seq_len") == T and r.get("variant") == variant and key in r
            and ((r.get("impl") == "heed") == (impl == "heed"))]
    return statistics.median(vals) if vals else float("nan")
seqs = sorted({r["seq_len"] for r in rows if "seq_len" in r})
fmt = lambda x: f"{x:9.1f}" if x == x else f"{'-':>9}"
rat = lambda a, b: f"{a / b:8.2f}" if a == a and b == b and b > 0 else f"{'-':>8}"
print("time, ms per forward+backward (median); heed cpu_ms in brackets; torch 'sdpa' is 1.13's private op (math path)")
print(f"{'T':>5} {'heed naive':>10} {'heed flash':>10} {'torch math':>10} {'torch sdpa':>10} | {'naive/math':>10} {'flash/math':>10} {'flash/sdpa':>10} | {'heed cpu naive/flash':>20}")
for T in seqs:
    hn, hf = pick("heed", "naive", T, "median_ms"), pick("heed", "flash", T, "median_ms")
    tm, ts = pick("torch", "math", T, "median_ms"), pick("torch", "sdpa", T, "median_ms")
    cn, cf = pick("heed", "naive", T, "cpu_ms"), pick("heed", "flash", T, "cpu_ms")
    print(f"{T:5d} {fmt(hn):>10} {fmt(hf):>10} {fmt(tm):>10} {fmt(ts):>10} | {rat(hn, tm):>10} {rat(hf, tm):>10} {rat(hf, ts):>10} | {fmt(cn)} {fmt(cf)}")
print()
print("peak extra memory of one step, MB (VmHWM - VmRSS); attn = one T x T fp32 score matrix for all 4 heads")
print(f"{'T':>5} {'attn':>8} {'heed naive':>10} {'heed flash':>10} {'torch math':>10} {'torch sdpa':>10} | {'naive/math':>10} {'flash/math':>10} {'flash/naive':>11}")
for T in seqs:
    a = 4 * T * T * 4 / 2**20
    hn, hf = pick("heed", "naive", T, "vmhwm_delta_MB"), pick("heed", "flash", T, "vmhwm_delta_MB")
    tm, ts = pick("torch", "math", T, "vmhwm_delta_MB"), pick("torch", "sdpa", T, "vmhwm_delta_MB")
    print(f"{T:5d} {a:8.1f} {fmt(hn):>10} {fmt(hf):>10} {fmt(tm):>10} {fmt(ts):>10} | {rat(hn, tm):>10} {rat(hf, tm):>10} {rat(hf, hn):>11}")
print()
print("forward only (inference, no gradients): heed peak extra MB beyond the inputs (includes the output, T x 4 x 64 floats)")
print(f"{'T':>5} {'output':>8} {'naive_fwd':>10} {'flash_fwd':>10} | {'flash/naive':>11} {'flash - output':>14}")
for T in seqs:
    o = 4 * T * 64 * 4 / 2**20
    n, f = pick("heed", "naive_fwd", T, "vmhwm_delta_MB"), pick("heed", "flash_fwd", T, "vmhwm_delta_MB")
    print(f"{T:5d} {o:8.2f} {fmt(n):>10} {fmt(f):>10} | {rat(f, n):>11} {f - o:14.2f}")
print()
print("MultiheadAttention (E 256, 4 heads, batch 1, self-attention) forward+backward, with weights (heed: naive kernel)")
print("and without (heed: flash kernel; torch 1.13: the same math path): ms (median) and peak extra MB")
print(f"{'T':>5} {'heed w':>9} {'heed no-w':>9} {'torch w':>9} {'torch no-w':>10} | {'w ratio':>7} {'no-w ratio':>10} | {'heed w MB':>9} {'heed no-w MB':>12} {'torch w MB':>10} {'torch no-w MB':>13} | {'w ratio':>7} {'no-w ratio':>10}")
for T in seqs:
    hw, hf = pick("heed", "mha_naive", T, "median_ms"), pick("heed", "mha_flash", T, "median_ms")
    tw, tf = pick("torch", "mha_naive", T, "median_ms"), pick("torch", "mha_flash", T, "median_ms")
    mw, mf = pick("heed", "mha_naive", T, "vmhwm_delta_MB"), pick("heed", "mha_flash", T, "vmhwm_delta_MB")
    uw, uf = pick("torch", "mha_naive", T, "vmhwm_delta_MB"), pick("torch", "mha_flash", T, "vmhwm_delta_MB")
    print(f"{T:5d} {fmt(hw)} {fmt(hf)} {fmt(tw)} {fmt(tf):>10} | {rat(hw, tw):>7} {rat(hf, tf):>10} | {fmt(mw)} {fmt(mf):>12} {fmt(uw):>10} {fmt(uf):>13} | {rat(mw, uw):>7} {rat(mf, uf):>10}")
fc = [r["foreign_cpu"] for r in rows if "foreign_cpu" in r]
if fc:
    print(f"\nforeign_cpu (other processes' share of the CPUs while timing): median {statistics.median(fc):.2f}, max {max(fc):.2f}")
PYEOF
