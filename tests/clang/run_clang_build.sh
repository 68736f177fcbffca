#!/usr/bin/env bash
# Configures heed with clang++ in a build directory of its own and builds the library, the test binary,
# the documentation snippets and every example (-O0, no debug info: only that clang compiles and links
# them), then runs one small group of tests with the clang-built test binary.
#
#   bash tests/clang/run_clang_build.sh <source dir> <build dir> [clang++] [compiler launcher, e.g. ccache]
#
# CTest runs it as `clang_build` (tests/CMakeLists.txt) in GCC builds when clang++ is installed. It prints
# "run_clang_build: OK in <N> s" at the end.
set -euo pipefail
src="$1"; dir="$2"; cxx="${3:-clang++}"; launcher="${4:-}"
start=$(date +%s)
args=(-DCMAKE_CXX_COMPILER="$cxx" -DCMAKE_BUILD_TYPE=Debug -DCMAKE_CXX_FLAGS_DEBUG=-O0 -DHEED_BUILD_TESTS=ON
      -DHEED_BUILD_EXAMPLES=ON -DHEED_BUILD_BENCH=OFF -DHEED_INSTALL=OFF)
[ -n "$launcher" ] && args+=(-DCMAKE_CXX_COMPILER_LAUNCHER="$launcher")
mkdir -p "$dir"
cmake -S "$src" -B "$dir" "${args[@]}" >"$dir/configure.log" 2>&1 || { cat "$dir/configure.log"; exit 1; }
cmake --build "$dir" -j "${HEED_JOBS:-2}"
OPENBLAS_NUM_THREADS=1 "$dir/tests/heed_tests" -tc="safetensors:*,shapes:*,module: save then load*"
echo "run_clang_build: OK in $(( $(date +%s) - start )) s"
