#!/usr/bin/env bash
# Runs every fuzz target of a -DHEED_FUZZ=ON build for a fixed time each, one after another, on a scratch
# copy of its checked-in seed corpus (new inputs stay out of the source tree).
#
#   bash tests/fuzz/run_fuzzers.sh <build>/tests/fuzz tests/fuzz/corpus [target ...]
#
# HEED_FUZZ_SECONDS (default 10) is the time per target; HEED_FUZZ_WORK the scratch directory (default
# <build>/tests/fuzz/work, kept: its corpus grows from run to run). A crash, a leak, undefined behaviour,
# a broken invariant or a timeout stops the run with exit code 1 and leaves the input in the scratch
# directory as <target>-crash-<sha1> (or leak-/timeout-/oom-); reproduce it with `<build>/tests/fuzz/fuzz_<target> FILE`.
set -euo pipefail
bin="$1"; corpus="$2"; shift 2
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(safetensors idx sentiment_reader translation_pairs tokenizer)
seconds="${HEED_FUZZ_SECONDS:-10}"
work="${HEED_FUZZ_WORK:-$bin/work}"
mkdir -p "$work"
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1}" UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1}"
export OPENBLAS_NUM_THREADS=1
for t in "${targets[@]}"; do
  mkdir -p "$work/$t"
  dict=()
  [ -f "$corpus/../$t.dict" ] && dict=(-dict="$corpus/../$t.dict")
  log="$work/$t.log"
  if ! "$bin/fuzz_$t" -max_total_time="$seconds" -timeout=25 -rss_limit_mb=2048 -print_final_stats=1 \
       -artifact_prefix="$work/$t-" "${dict[@]}" "$work/$t" "$corpus/$t" >"$log" 2>&1; then
    tail -n 60 "$log"
    echo "fuzz_$t: FAILED (input saved under $work/$t-*; log $log)"
    exit 1
  fi
  # libFuzzer's last status line ("#N DONE cov: C ft: F corp: ...") and its executions count.
  summary=$(grep -E '^#[0-9]+' "$log" | tail -n 1 || true)
  runs=$(grep -E '^stat::number_of_executed_units' "$log" | awk '{print $2}' || true)
  echo "fuzz_$t: ${seconds}s, ${runs:-?} executions, no finding; ${summary}"
done
