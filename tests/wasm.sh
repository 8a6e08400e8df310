#!/usr/bin/env bash
# make test-wasm: the same run.c built for WebAssembly (wasm32-wasi: clang's target with Debian's
# wasi-libc and lld; SIMD128 kernels with the plain loops' bits, no threads, no mmap) and run
# under node's WASI must give
# the native plain build's results: tests/paths.py compares the logits of a text and a sampled
# story for float32, bf16 and Q8_0 files of stories260K and the GPT-Neo fixture, byte for byte
# (stories260K: its stories only, see below).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
SHARED=$(cd "${SHARED:-../shared}" 2>/dev/null && pwd || echo "${SHARED:-../shared}") # absolute: WASI sees / only
if [ ! -f web/run.wasm ]; then
  echo "test-wasm: SKIPPED (no web/run.wasm: apt-get install wasi-libc lld libclang-rt-dev-wasm32, then make web)"
  exit 0
fi
if ! command -v node >/dev/null; then
  echo "test-wasm: SKIPPED (no node to run web/run.wasm: apt-get install nodejs)"
  exit 0
fi
mkdir -p out-wasm
wrapper=out-wasm/run-wasm.sh
printf '#!/bin/sh\nexec node --no-warnings "%s/tests/wasi.mjs" "%s/web/run.wasm" "$@"\n' "$PWD" "$PWD" >"$wrapper"
chmod +x "$wrapper"
if [ -f "$SHARED/models/stories260K.bin" ]; then
  "$wrapper" "$SHARED/models/stories260K.bin" -z "$SHARED/models/tok512.bin" -t 0 -n 4 -i x 2>&1 >/dev/null | grep -q '^kernels: wasm simd128' ||
    { echo "test-wasm: web/run.wasm does not run under node"; exit 1; }
fi
echo "test-wasm: web/run.wasm under node $(node --version)"
# the kernels alone: tests/test_speed.c built as web/run.wasm is (make passes WASM_CC, WASM_CFLAGS
# and WASM_LDFLAGS), every output of the awkward shapes the plain loop's bits; blocks against
# single tokens
: "${WASM_CC:?run through make test-wasm}" "${WASM_CFLAGS:?}" "${WASM_LDFLAGS:?}"
$WASM_CC $WASM_CFLAGS -Wall -Wextra -Werror $WASM_LDFLAGS -o out-wasm/test_speed.wasm tests/test_speed.c -lm
SHARED="$SHARED" node --no-warnings tests/wasi.mjs out-wasm/test_speed.wasm
# its kernels (wasm simd128: 4 rows in the lanes, each summed left to right; Q8_0's exact
# integer sums) give the plain loops' bits: the native plain build's, whose stories are the
# fast paths' (their logits differ in the last bits: the documented order of the fast
# kernels' sums is not the plain loops' left to right). Prompts run in blocks here: the
# logits of a text exercise the 4-token tiles, a story's decoding the 8-row chains.
# GPT-Neo: the same logits, bit for bit. stories260K: the same stories, but not yet the same
# logits: its rotary tables come from libm's cosf, sinf and powf, as llama2.c's do, and
# wasi-libc's differ from glibc's in last bits (the GPT-Neo path's one libm call, expf, agrees)
${CC:-cc} -O2 -ffp-contract=off -DTS_PLAIN_KERNELS -o out-wasm/run-plain run.c -lm
"$PYTHON" tests/paths.py --story-only stories260K out-wasm/run-plain "$wrapper"
