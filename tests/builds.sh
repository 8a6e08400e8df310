#!/usr/bin/env bash
# make test-builds: the C suite and the kernel checks again with the AVX2 kernels (when this
# CPU has AVX2) and with clang's -march=native build, the two side by side; each prints the
# stories260K cases byte for byte through its own ./run. Flags come from the Makefile.
set -uo pipefail
cd "$(dirname "$0")/.."
avx2() {
  grep -q avx2 /proc/cpuinfo 2>/dev/null || { echo "test-builds: AVX2 SKIPPED (this processor has no AVX2)"; return 0; }
  $CC $AVX2 -o run-avx2 run.c -lm && $CC $AVX2 -o test_all-avx2 test_all.c -lm && $CC $AVX2 -o test_speed-avx2 tests/test_speed.c -lm || return 1
  echo "test-builds: AVX2 kernels ($CC)"
  RUN_BINARY=./run-avx2 ./test_all-avx2 >test_all-avx2.log || { cat test_all-avx2.log; return 1; }
  tail -1 test_all-avx2.log
  ./test_speed-avx2 >test_speed-avx2.log || { cat test_speed-avx2.log; return 1; }
  grep -v '^ok' test_speed-avx2.log
}
with_clang() {
  command -v clang >/dev/null || { echo "test-builds: clang SKIPPED (not installed)"; return 0; }
  clang $CLANG_FAST -o run-clang run.c -lm && clang $CLANG_FAST -o test_all-clang test_all.c -lm || return 1
  echo "test-builds: clang -march=native"
  RUN_BINARY=./run-clang ./test_all-clang >test_all-clang.log || { cat test_all-clang.log; return 1; }
  tail -1 test_all-clang.log
}
avx2 >builds-avx2.log 2>&1 &
a=$!
with_clang >builds-clang.log 2>&1 &
b=$!
wait $a; ra=$?
wait $b; rb=$?
cat builds-avx2.log builds-clang.log
rm -f builds-avx2.log builds-clang.log
[ $ra -eq 0 ] && [ $rb -eq 0 ] || { echo "test-builds: FAILED"; exit 1; }
