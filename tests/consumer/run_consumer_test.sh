#!/usr/bin/env bash
# Uses heed from another project, the way docs/using-heed.md tells users to (run by CTest).
#
#   run_consumer_test.sh install      <heed build dir> <heed source dir> <build type> <c++ compiler> [launcher]
#   run_consumer_test.sh subdirectory <heed build dir> <heed source dir> <build type> <c++ compiler> [launcher]
#
# install: `cmake --install` the already-built heed into a temporary prefix (nothing is recompiled), then
#   configure and build tests/consumer with find_package(heed) against that prefix, run it and check that
#   the loss it prints falls; check that heed's -march did not leak into the consumer's compile flags;
#   then build the same program with `pkg-config --cflags --libs heed` and check it prints the same.
# subdirectory: configure tests/consumer with add_subdirectory(<heed source>) and compile the consumer's
#   main.cpp against the in-tree target (the library itself is not rebuilt here, to keep the suite fast;
#   set HEED_CONSUMER_FULL=1 to build and run it all).
set -euo pipefail
mode="$1" heed_build="$2" heed_src="$3" build_type="$4" cxx="$5" launcher="${6:-}"
here="$(cd "$(dirname "$0")" && pwd)"
work="$heed_build/consumer-$mode"
rm -rf "$work"
mkdir -p "$work"
cmake_args=(-DCMAKE_BUILD_TYPE="$build_type" -DCMAKE_CXX_COMPILER="$cxx" -DCMAKE_EXPORT_COMPILE_COMMANDS=ON)
[ -n "$launcher" ] && cmake_args+=(-DCMAKE_CXX_COMPILER_LAUNCHER="$launcher")
fail() { echo "run_consumer_test ($mode): FAIL: $*" >&2; exit 1; }

check_loss_falls() {  # check_loss_falls <program output file>
  grep -q '^heed [0-9]*\.[0-9]*\.[0-9]* (' "$1" || fail "no version line"
  awk '/^step [0-9]+ loss /{ loss[n++] = $4 }
       END {
         if (n < 20) { print "only " n " loss lines"; exit 1 }
         for (i = 0; i < n; i++) if (!(loss[i] == loss[i] + 0) || loss[i] != loss[i]) { print "bad loss " loss[i]; exit 1 }
         if (!(loss[n-1] < 0.5 * loss[0])) { print "loss did not halve: " loss[0] " -> " loss[n-1]; exit 1 }
         if (!(loss[int(n/2)] < loss[0] && loss[n-1] < loss[int(n/2)])) { print "loss not falling"; exit 1 }
         printf "loss falls: %s -> %s -> %s over %d steps\n", loss[0], loss[int(n/2)], loss[n-1], n
       }' "$1" || fail "loss check"
}

case "$mode" in
  install)
    prefix="$work/prefix"
    cmake --install "$heed_build" --prefix "$prefix" --config "$build_type" >/dev/null
    for f in lib/libheed.a include/heed/heed.hpp include/heed/core.hpp include/heed/layers.hpp \
             include/heed/version.hpp include/heed/nn/module.hpp include/heed/nn/basic.hpp \
             lib/cmake/heed/heedConfig.cmake lib/cmake/heed/heedConfigVersion.cmake lib/pkgconfig/heed.pc; do
      [ -f "$prefix/$f" ] || [ -n "$(ls "$prefix"/lib*/"${f#lib/}" 2>/dev/null)" ] || fail "not installed: $f"
    done
    if grep -rlE '#include <(xtensor|xsimd)' "$prefix/include/heed"; then fail "a public header includes xtensor/xsimd"; fi
    cmake -S "$here" -B "$work/build" "${cmake_args[@]}" -DCMAKE_PREFIX_PATH="$prefix" >/dev/null
    cmake --build "$work/build" >/dev/null
    if grep -q -- '-march' "$work/build/compile_commands.json"; then fail "heed::heed forced -march onto the consumer"; fi
    "$work/build/consumer" | tee "$work/out-cmake.txt"
    check_loss_falls "$work/out-cmake.txt"

    # The pkg-config route: same program, same output.
    pcdir="$(dirname "$(find "$prefix" -name heed.pc | head -1)")"
    flags="$(PKG_CONFIG_PATH="$pcdir" pkg-config --cflags --libs heed)" || fail "pkg-config heed"
    echo "pkg-config --cflags --libs heed: $flags"
    # shellcheck disable=SC2086
    $launcher "$cxx" -std=c++17 -O1 "$here/main.cpp" -o "$work/consumer-pc" $flags
    "$work/consumer-pc" > "$work/out-pc.txt"
    cmp -s "$work/out-cmake.txt" "$work/out-pc.txt" || fail "the pkg-config build prints something else"
    echo "pkg-config build: same output"
    ;;
  subdirectory)
    cmake -S "$here" -B "$work/build" -G "Unix Makefiles" "${cmake_args[@]}" \
      -DHEED_CONSUMER_SUBDIRECTORY="$heed_src" >/dev/null
    grep -q '^HEED_BUILD_TESTS:BOOL=OFF' "$work/build/CMakeCache.txt" || fail "heed's tests are on in a parent project"
    grep -q '^HEED_INSTALL:BOOL=OFF' "$work/build/CMakeCache.txt" || fail "heed's install rules are on in a parent project"
    if [ "${HEED_CONSUMER_FULL:-0}" = 1 ]; then
      cmake --build "$work/build" -j "$(nproc)" >/dev/null
      "$work/build/consumer" | tee "$work/out.txt"
      check_loss_falls "$work/out.txt"
    else
      make -C "$work/build" main.cpp.o >/dev/null   # the consumer against the in-tree heed::heed
      if grep -A3 '"file": ".*consumer/main.cpp"' "$work/build/compile_commands.json" | grep -q -- '-march'; then
        fail "heed::heed forced -march onto the consumer"
      fi
      echo "add_subdirectory: configured, consumer compiled against the in-tree heed::heed"
    fi
    ;;
  *) fail "unknown mode" ;;
esac
echo "run_consumer_test ($mode): OK"
