#!/usr/bin/env bash
# heed's one entry point for setting up, building, testing and running.
#
#   bash scripts/heed.sh example   install what is missing, build the library and the flagship (Release), run it
#   bash scripts/heed.sh test      install what is missing (test-only packages too), build everything, run the
#                                  whole test suite (Release, then AddressSanitizer + UndefinedBehaviorSanitizer),
#                                  then every fuzz target for 10 s (clang, tests/fuzz)
#   bash scripts/heed.sh deps      only install the Debian packages heed needs (add --test for the test-only
#                                  ones)
#
# Works on a fresh Debian 12 as root (uses sudo when not root). Environment: HEED_JOBS (default: nproc),
# HEED_SKIP_ASAN=1 to skip the sanitizer pass, HEED_SKIP_FUZZ=1 to skip the fuzz targets.
set -euo pipefail
cd "$(dirname "$0")/.."
JOBS="${HEED_JOBS:-$(nproc)}"
# OpenBLAS 0.3.21 does not recognise recent CPUs (e.g. Zen 5) and then falls back to its slowest generic
# kernels (about 5 GFLOP/s instead of about 120 per core). Haswell's kernels need AVX2 + FMA, which heed's
# -march=x86-64-v3 build requires anyway. A value set by the caller wins.
export OPENBLAS_CORETYPE="${OPENBLAS_CORETYPE:-Haswell}"

# Build tools and libraries; dataset and text packages are for the examples.
PACKAGES=(g++ cmake make pkg-config
  libxtensor-dev libxtensor-blas-dev libxsimd-dev xtl-dev libopenblas-dev
  doctest-dev libfmt-dev libcli11-dev libstb-dev nlohmann-json3-dev zlib1g-dev
  libopenmpi-dev openmpi-bin
  dataset-fashion-mnist bible-kjv)
# Test-only: PyTorch for /usr/bin/python3, so the interop tests (a heed checkpoint loaded by PyTorch:
# tests/test_interop.cpp, the snippet_interop_lstm_py test) run instead of being reported as skipped.
# `example` does not need it (it is large).
# The run report's browser test (tests/browser) renders it in Chromium, with Debian's Chart.js.
TEST_PACKAGES=(python3-torch chromium fonts-dejavu-core libjs-chart.js)
TEST_PACKAGES+=(clang libclang-rt-14-dev)  # the fuzz targets (tests/fuzz) and clang_build: clang, libFuzzer

deps() {  # deps [package...]: installs PACKAGES and the given extra packages, when missing
  local missing=()
  for p in "${PACKAGES[@]}" "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    echo "heed: installing ${missing[*]}"
    local SUDO=""
    [ "$(id -u)" -ne 0 ] && SUDO=sudo
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
}

build() {  # build <dir> [cmake args...]; BUILD_TARGETS="a b" builds only those targets
  local dir="$1"; shift
  cmake -S . -B "$dir" "$@" >/dev/null
  cmake --build "$dir" -j "$JOBS" ${BUILD_TARGETS:+--target $BUILD_TARGETS}
}

case "${1:-}" in
  deps)
    if [ "${2:-}" = --test ]; then deps "${TEST_PACKAGES[@]}"; else deps; fi ;;
  example)
    deps
    BUILD_TARGETS=sentiment build build -DCMAKE_BUILD_TYPE=Release   # the library and the flagship only
    shift
    # Its checkpoints and attention.png go to out/sentiment (git ignores out/) unless --out is given.
    case " $* " in
      *" --out "*|*" --out="*) exec ./build/examples/sentiment/sentiment "$@" ;;
      *) mkdir -p out/sentiment && exec ./build/examples/sentiment/sentiment --out out/sentiment "$@" ;;
    esac ;;
  test)
    deps "${TEST_PACKAGES[@]}"
    start=$(date +%s)
    build build -DCMAKE_BUILD_TYPE=Release
    (cd build && OPENBLAS_NUM_THREADS=1 ctest -j "$JOBS" --output-on-failure --timeout 600)
    if [ "${HEED_SKIP_ASAN:-0}" != 1 ]; then
      # Tests named "[learning] ..." train a model to an accuracy target; they run in the Release pass and
      # are left out of the sanitizer pass, which checks memory and UB on every other test.
      echo "heed: sanitizer build (AddressSanitizer + UndefinedBehaviorSanitizer)"
      build build-asan -DCMAKE_BUILD_TYPE=Debug -DCMAKE_CXX_FLAGS_DEBUG="-O1 -g1" -DHEED_SANITIZE=ON \
        -DHEED_BUILD_EXAMPLES=OFF -DHEED_BUILD_BENCH=OFF
      (cd build-asan && OPENBLAS_NUM_THREADS=1 ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
        ctest -j "$JOBS" --output-on-failure --timeout 900 -E '\[learning\]')
    fi
    if [ "${HEED_SKIP_FUZZ:-0}" != 1 ]; then
      # Every fuzz target (tests/fuzz/README.md), clang + libFuzzer + ASan + UBSan, HEED_FUZZ_SECONDS (10) each.
      echo "heed: fuzz targets (clang, libFuzzer + AddressSanitizer + UndefinedBehaviorSanitizer)"
      build build-fuzz -DCMAKE_CXX_COMPILER=clang++ -DCMAKE_BUILD_TYPE=Debug -DCMAKE_CXX_FLAGS_DEBUG="-O1 -g1" \
        -DHEED_FUZZ=ON -DHEED_BUILD_TESTS=OFF -DHEED_BUILD_EXAMPLES=OFF -DHEED_BUILD_BENCH=OFF -DHEED_BUILD_TOOLS=OFF \
        -DHEED_INSTALL=OFF
      bash tests/fuzz/run_fuzzers.sh build-fuzz/tests/fuzz tests/fuzz/corpus
    fi
    echo "heed: build + tests took $(( $(date +%s) - start )) s"
    ;;
  *)
    sed -n '2,11p' "$0"; exit 2 ;;
esac
