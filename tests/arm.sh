#!/usr/bin/env bash
# make test-arm: the NEON kernels, cross-built for aarch64 with Debian's gcc-aarch64-linux-gnu
# and run under qemu-user, with and without the dot-product extension. Each build must:
#  - pass the C suite (stories260K's llama2.c cases byte for byte through its ./run),
#  - pass the kernel checks (fast against plain and the documented order, blocks = tokens),
#  - give the Hugging Face fixtures' logits within 1e-4 and their greedy ids,
#  - and give the x86 builds' bits: tests/paths.py against ./run (and ./run-avx2).
# Speed under qemu means nothing; exactness does.
set -euo pipefail
cd "$(dirname "$0")/.."
ARM_CC=${ARM_CC:-aarch64-linux-gnu-gcc}
ARM_ROOT=${ARM_ROOT:-/usr/aarch64-linux-gnu}
SHARED=${SHARED:-../shared}
PYTHON=${PYTHON:-python3}
if ! command -v "$ARM_CC" >/dev/null || ! command -v qemu-aarch64 >/dev/null || [ ! -d "$ARM_ROOT/lib" ]; then
  echo "test-arm: SKIPPED (needs $ARM_CC and qemu-aarch64: apt-get install gcc-aarch64-linux-gnu qemu-user)"
  exit 0
fi
OUT=out-arm
mkdir -p "$OUT"
FLAGS="-ffp-contract=off -fopenmp -Wall -Wextra -Werror"
export QEMU_LD_PREFIX=$ARM_ROOT SHARED
# the two builds side by side (each in a function of its own, its output to a log shown
# when it is done): under qemu they are the longest part of make test
check_variant() {
  IFS='|' read -r name march path <<<"$1"
  # -O3 as `make` builds ./run; test_all at -O2: gcc 12's aarch64 vectoriser stops with an
  # internal error on one of its reference loops at -O3
  for src in run.c:-O3 test_all.c:-O2 tests/test_speed.c:-O3; do
    file=${src%%:*} bin=$(basename "${src%%:*}" .c)
    "$ARM_CC" ${src#*:} $FLAGS $march -o "$OUT/$bin-$name" "$file" -lm
  done
  wrapper=$OUT/run-$name.sh # ./run for the tests: the aarch64 binary under qemu
  printf '#!/bin/sh\nQEMU_LD_PREFIX=%s exec qemu-aarch64 "$(dirname "$0")/run-%s" "$@"\n' "$ARM_ROOT" "$name" >"$wrapper"
  chmod +x "$wrapper"
  echo "test-arm: $name ($ARM_CC $march)"
  RUN_BINARY=$wrapper qemu-aarch64 "$OUT/test_all-$name" >"$OUT/test_all-$name.log" || { cat "$OUT/test_all-$name.log"; return 1; }
  tail -1 "$OUT/test_all-$name.log"
  qemu-aarch64 "$OUT/test_speed-$name" >"$OUT/test_speed-$name.log" || { cat "$OUT/test_speed-$name.log"; return 1; }
  grep -E '^SIMD path|^test_speed' "$OUT/test_speed-$name.log"
  grep -q "^SIMD path: $path\$" "$OUT/test_speed-$name.log" || { echo "test-arm: $name did not build the $path kernels"; return 1; }
  # the fixtures' logits and greedy ids, and the statistics naming the path (the rest of
  # test_end_to_end runs the x86 build: under qemu its full-context runs take minutes). The
  # fixtures are float32, whose kernels the two builds share (the dot-product extension
  # changes only Q8_0's): once, with the dotprod build; paths.py compares both builds' bits.
  if [ "$name" = neon-dotprod ]; then
    RUN_BINARY=$wrapper EXPECT_KERNELS=$path "$PYTHON" -m unittest -q tests.test_end_to_end.HuggingFaceLogits \
      tests.test_end_to_end.GPT2Tokenizer.test_greedy_story_is_transformers_greedy 2>&1 | tail -1
    [ "${PIPESTATUS[0]}" -eq 0 ] || return 1
  fi
}
pids=() names=()
for variant in "neon|-march=armv8-a|neon" "neon-dotprod|-march=armv8.2-a+dotprod|neon (dotprod)"; do
  name=${variant%%|*}
  check_variant "$variant" >"$OUT/check-$name.log" 2>&1 &
  pids+=($!) names+=("$name")
done
failed=0
for i in "${!pids[@]}"; do
  wait "${pids[$i]}" || failed=1
  cat "$OUT/check-${names[$i]}.log"
done
[ "$failed" -eq 0 ] || { echo "test-arm: FAILED"; exit 1; }
wrappers=("$OUT/run-neon.sh" "$OUT/run-neon-dotprod.sh")
binaries=(./run)
[ -x ./run-avx2 ] && binaries+=(./run-avx2)
"$PYTHON" tests/paths.py "${binaries[@]}" "${wrappers[@]}"
