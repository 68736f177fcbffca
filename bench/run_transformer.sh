#!/bin/bash
# The Transformer training steps, heed (bench_transformer) and PyTorch (transformer_block.py) alternately
# in one run, then the ratio heed/PyTorch per step (median over rounds; < 1: heed faster), and heed's
# generation speed with and without the KV cache.
#
# Usage:  bench/run_transformer.sh [ROUNDS (3)]
# Knobs as run_core.sh: HEED_BENCH_TRANSFORMER (the binary; default build*/bench/bench_transformer),
# PEERS_DIR, OPENBLAS_CORETYPE (Haswell when unset; 'auto' = OpenBLAS's detection), OMP_WAIT_POLICY
# (PASSIVE), BENCH_QUIET_WAIT (10), BENCH_RETRIES (0), BENCH_THREADS (2), BENCH_ITERS (20),
# OPENBLAS_NUM_THREADS, BENCH_GEN_TOKENS (240).
set -u
HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(dirname "$HERE")"
PY=/usr/bin/python3
ROUNDS="${1:-3}"
PEERS="${PEERS_DIR:-$(cd "$ROOT/.." && pwd)/shared/bench/peers}"
export BENCH_QUIET_WAIT="${BENCH_QUIET_WAIT:-10}" BENCH_RETRIES="${BENCH_RETRIES:-0}"
export OMP_WAIT_POLICY="${OMP_WAIT_POLICY:-PASSIVE}"
export OPENBLAS_CORETYPE="${OPENBLAS_CORETYPE:-Haswell}"   # see run_core.sh
[ "$OPENBLAS_CORETYPE" = auto ] && unset OPENBLAS_CORETYPE
BIN="${HEED_BENCH_TRANSFORMER:-}"
if [ -z "$BIN" ]; then
  for cand in "$ROOT/build/bench/bench_transformer" "$ROOT"/build-*/bench/bench_transformer; do
    if [ -x "$cand" ]; then BIN="$cand"; break; fi
  done
fi
[ -n "$BIN" ] && [ -x "$BIN" ] || { echo "run_transformer.sh: build bench_transformer first" >&2; exit 1; }
OUT="$(mktemp /tmp/heed_run_transformer.XXXXXX.jsonl)"
for round in $(seq 1 "$ROUNDS"); do
  echo "[run_transformer] round $round: heed ($BIN), then PyTorch" >&2
  "$BIN" token_cls char_lm_causal | sed "s/^{/{\"round\": $round, /" >>"$OUT"
  "$PY" "$PEERS/transformer_block.py" | sed "s/^{/{\"round\": $round, /" >>"$OUT"
done
"$BIN" generate | sed "s/^{/{\"round\": 0, /" >>"$OUT"
echo "[run_transformer] results: $OUT" >&2
"$PY" - "$OUT" <<'PYEOF'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
print(f"{'variant':15} {'heed ms':>9} {'torch ms':>9} {'heed/torch':>11}  per round (foreign cpu heed/torch)")
for v in ("token_cls", "char_lm_causal"):
    pairs = []
    for r in sorted({x["round"] for x in rows}):
        h = [x for x in rows if x["round"] == r and x["variant"] == v and x["impl"] == "heed"]
        t = [x for x in rows if x["round"] == r and x["variant"] == v and x["impl"] != "heed"]
        if h and t:
            pairs.append((h[0], t[0]))
    if not pairs:
        continue
    hm = statistics.median(h["median_ms"] for h, _ in pairs)
    tm = statistics.median(t["median_ms"] for _, t in pairs)
    ratios = [h["median_ms"] / t["median_ms"] for h, t in pairs]
    detail = ", ".join(f"{q:.3f} ({h.get('foreign_cpu', 0):.2f}/{t.get('foreign_cpu', 0):.2f})"
                       for q, (h, t) in zip(ratios, pairs))
    print(f"{v:15} {hm:9.2f} {tm:9.2f} {statistics.median(ratios):11.3f}  {detail}")
gen = {x["variant"]: x for x in rows if x["variant"].startswith("generate")}
if "generate_cached" in gen and "generate_uncached" in gen:
    c, u = gen["generate_cached"], gen["generate_uncached"]
    print(f"generation (batch 1, prompt {c['prompt']}, {c['new_tokens']} new tokens, greedy): "
          f"cached {c['tokens_per_s']:.0f} tokens/s, uncached {u['tokens_per_s']:.0f} tokens/s "
          f"({c['tokens_per_s'] / u['tokens_per_s']:.1f}x)")
PYEOF
