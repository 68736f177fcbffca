#!/usr/bin/env bash
# Builds heed and tests/test_threads.cpp with ThreadSanitizer (tests/tsan/CMakeLists.txt) and runs that
# test: two models trained in two threads at once must match their single-thread results, with no data
# race reported. Run by CTest (test "threads_tsan").
#
#   run_tsan_test.sh <heed source dir> <work dir> <c++ compiler> [compiler launcher]
#
# HEED_JOBS: parallel compile jobs (default: nproc). Prints the build and run times.
set -euo pipefail
src="$1" work="$2" cxx="$3" launcher="${4:-}"
here="$(cd "$(dirname "$0")" && pwd)"
jobs="${HEED_JOBS:-$(nproc)}"
fail() { echo "run_tsan_test: FAIL: $*" >&2; exit 1; }

args=(-DCMAKE_BUILD_TYPE=Debug "-DCMAKE_CXX_FLAGS_DEBUG=-O1 -g1" -DCMAKE_CXX_COMPILER="$cxx" -DHEED_SOURCE_DIR="$src")
[ -n "$launcher" ] && args+=(-DCMAKE_CXX_COMPILER_LAUNCHER="$launcher")
mkdir -p "$work"
start=$(date +%s)
cmake -S "$here" -B "$work" "${args[@]}" >"$work/configure.log" 2>&1 || { cat "$work/configure.log"; fail "configure"; }
cmake --build "$work" -j "$jobs" >"$work/build.log" 2>&1 || { tail -50 "$work/build.log"; fail "build"; }
built=$(date +%s)
echo "run_tsan_test: ThreadSanitizer build took $((built - start)) s ($jobs jobs)"

# One BLAS thread: OpenBLAS is not instrumented, and its own worker threads are not what this tests.
# halt_on_error: the first race report fails the run.
log="$work/run.log"
if ! OPENBLAS_NUM_THREADS=1 TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1" \
     "$work/heed_tsan_threads" >"$log" 2>&1; then
  cat "$log"
  fail "heed_tsan_threads failed"
fi
cat "$log"
if grep -q "ThreadSanitizer" "$log"; then fail "ThreadSanitizer reported something"; fi
echo "run_tsan_test: test run took $(( $(date +%s) - built )) s"
echo "run_tsan_test: OK"
