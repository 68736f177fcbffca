#!/bin/bash
# The Transformer training steps, heed (bench_transformer) and PyTorch (transformer_block.py) alternately
# in one run, then the ratio heed/PyTorch per step (median over rounds; < 1: heed faster), and heed's
# generation speed with and without the KV cache.
#
# Usage:  bench/run_transformer.sh [ROUNDS (3)]
# Knobs: HEED_BENCH_TRANSFORMER (the binary; default build*/bench/bench_transformer), PEERS_DIR, and those run_common.sh lists
# (OPENBLAS_CORETYPE, OMP_WAIT_POLICY, BENCH_QUIET_WAIT, BENCH_RETRIES, BENCH_THREADS, BENCH_ITERS), BENCH_GEN_TOKENS (240).
set -u
HERE="$(cd "$(dirname "$0")" && pwd)"
source "$HERE/run_common.sh"
ROUNDS="${1:-3}"
BIN="$(bench_binary bench_transformer "${HEED_BENCH_TRANSFORMER:-}")" || exit 1
OUT="$(mktemp /tmp/heed_run_transformer.XXXXXX.jsonl)"
for round in $(seq 1 "$ROUNDS"); do
  echo "[run_transformer] round $round: heed ($BIN), then PyTorch" >&2
  "$BIN" token_cls char_lm_causal | tag_round "$round" >>"$OUT"
  "$PY" "$PEERS/transformer_block.py" | tag_round "$round" >>"$OUT"
done
"$BIN" generate | tag_round 0 >>"$OUT"
echo "[run_transformer] results: $OUT" >&2
"$PY" "$HERE/summarize_steps.py" "$OUT" token_cls char_lm_causal
"$PY" - "$OUT" <<'PYEOF'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
gen = {x["variant"]: x for x in rows if x["variant"].startswith("generate")}
if "generate_cached" in gen and "generate_uncached" in gen:
    c, u = gen["generate_cached"], gen["generate_uncached"]
    print(f"generation (batch 1, prompt {c['prompt']}, {c['new_tokens']} new tokens, greedy): "
          f"cached {c['tokens_per_s']:.0f} tokens/s, uncached {u['tokens_per_s']:.0f} tokens/s "
          f"({c['tokens_per_s'] / u['tokens_per_s']:.1f}x)")
PYEOF
