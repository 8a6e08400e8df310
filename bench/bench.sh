#!/usr/bin/env bash
# bench/bench.sh -- `make bench`: tokens per second of run.c's fast kernels against its own
# plain loops (the llama2.c-equivalent baseline), measured side by side in one run.
#
#   make bench                      (or: CC=cc CFLAGS="-O3 -march=native -fopenmp" bench/bench.sh)
#   RUNS=3 THREADS="1 2" bench/bench.sh
#   LLAMA2C_CFLAGS="-Ofast -march=native -fopenmp" bench/bench.sh    (the second baseline's flags)
#   CFLAGS="-O3 -mavx2 -mfma -ffp-contract=off -fopenmp" TORCH_CORETYPE=Haswell bench/bench.sh
#                                   (the AVX2 path, and torch on OpenBLAS's AVX2 kernels)
#
# Random-weight models at the published TinyStories shapes are written by bench/gen into
# bench/out/models (once; about 2 GB). Two binaries are built from run.c with the same
# compiler and flags: the fast one (./run), and the baseline with -DTS_PLAIN_KERNELS
# -DTS_BATCH=1: plain matrix-vector loops, prompts one token at a time, as llama2.c does.
# A third binary is the same plain loops built with llama2.c's runomp flags (-Ofast: the
# compiler may then reorder float sums into SIMD lanes), the bar the speed targets name.
# Each decode row also gives the memory roofline: the file's bytes are read once per token,
# so tokens/s can not exceed (read bandwidth for a buffer of the file's size) / (file bytes).
# Each measurement is the median of several runs. Results: stdout and bench/out/bench.md.
set -euo pipefail
cd "$(dirname "$0")/.."

CC=${CC:-cc}
CFLAGS=${CFLAGS:--O3 -march=native -ffp-contract=off -fopenmp}
BASELINE_CFLAGS=${BASELINE_CFLAGS:-$CFLAGS}
LLAMA2C_CFLAGS=${LLAMA2C_CFLAGS:--Ofast -march=native -fopenmp}
SHARED=${SHARED:-../shared}
RUNS=${RUNS:-5}
THREADS=${THREADS:-1 2}
OUT=bench/out
MODELS=$OUT/models
mkdir -p "$MODELS"
start_time=$(date +%s)

echo "building: $CC $CFLAGS (fast), $CC $BASELINE_CFLAGS -DTS_PLAIN_KERNELS -DTS_BATCH=1 (baseline), $LLAMA2C_CFLAGS (llama2.c flags)"
$CC -O2 -Wall -Wextra -o bench/gen bench/gen.c -lm
$CC $CFLAGS -Wall -Wextra -o "$OUT/run-fast" run.c -lm
$CC $BASELINE_CFLAGS -Wall -Wextra -DTS_PLAIN_KERNELS -DTS_BATCH=1 -o "$OUT/run-baseline" run.c -lm
$CC $LLAMA2C_CFLAGS -Wall -Wextra -DTS_PLAIN_KERNELS -DTS_BATCH=1 -o "$OUT/run-llama2c" run.c -lm
$CC $CFLAGS -Wall -Wextra -o "$OUT/bandwidth" bench/bandwidth.c

# name | gen arguments | fast: steps, runs | baseline: steps, runs. The baseline decodes
# fewer steps (it is 5-20x slower; its rate per token hardly changes with position, and
# fewer steps favour it: less attention work per token).
R=$RUNS R3=$((RUNS < 3 ? RUNS : 3))
MODEL_LIST=(
  "15M-f32|f32 llama 288 768 6 6 32000 256|256|$R|48|$R3"
  "15M-q8_0|q8_0 llama 288 768 6 6 32000 256|256|$R|48|$R3"
  "42M-f32|f32 llama 512 1376 8 8 32000 1024|256|$R|24|$R3"
  "42M-q8_0|q8_0 llama 512 1376 8 8 32000 1024|256|$R|24|$R3"
  "110M-f32|f32 llama 768 2048 12 12 32000 1024|128|$R3|16|$R3"
  "110M-q8_0|q8_0 llama 768 2048 12 12 32000 1024|128|$R3|16|$R3"
  "110M-bf16|bf16 llama 768 2048 12 12 32000 1024|128|$R3|16|$R3"
  "neo-1M-f32|f32 gptneo 64 256 8 16 50257 2048 256|256|$R|64|$R3"
  "neo-1M-q8_0|q8_0 gptneo 64 256 8 16 50257 2048 256|256|$R|64|$R3"
  "neo-33M-f32|f32 gptneo 768 3072 4 16 50257 2048 256|128|$R3|16|$R3"
  "neo-33M-q8_0|q8_0 gptneo 768 3072 4 16 50257 2048 256|128|$R3|16|$R3"
)
for spec in "${MODEL_LIST[@]}"; do
  IFS='|' read -r name args _ <<<"$spec"
  if [ ! -s "$MODELS/$name.bin" ]; then
    echo "writing $MODELS/$name.bin"
    bench/gen "$MODELS/$name.bin.part" $args && mv "$MODELS/$name.bin.part" "$MODELS/$name.bin"
  fi
done

median() { sort -g | awk '{v[NR] = $1} END {if (NR == 0) print "nan"; else if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {if (b > 0) printf "%.2f", a / b; else print "-"}'; }
mib() { awk -v b="$1" 'BEGIN {printf "%.1f", b / 1048576}'; }

# A prompt of exactly 255 tokens for the synthetic tokenizer: " a" is one token.
PROMPT=$(printf 'a%.0s ' $(seq 255))
PROMPT=${PROMPT% }

# decode BIN MODEL STEPS THREADS -> "tok/s maxrss_kb" of one run (generated tokens only)
decode() {
  local err
  err=$(OMP_DYNAMIC=false OMP_NUM_THREADS=$4 /usr/bin/time -f 'maxrss %M' "$1" "$2" -t 0 -n "$3" -i "Once upon a time" 2>&1 >/dev/null)
  echo "$(sed -n 's/.*generated: .* (\([0-9.]*\) tok\/s).*/\1/p' <<<"$err") $(sed -n 's/^maxrss //p' <<<"$err")"
}
# prefill BIN MODEL THREADS -> prompt tok/s of one run (255 prompt tokens)
prefill() {
  OMP_DYNAMIC=false OMP_NUM_THREADS=$3 "$1" "$2" -t 0 -n 255 -i "$PROMPT" 2>&1 >/dev/null | sed -n 's/^prompt: [0-9]* tokens in [0-9.]* s (\([0-9.]*\) tok\/s).*/\1/p'
}

decode_rows=() prefill_rows=()
declare -A fast_rate base_rate l2c_rate bf16_ratio
load_before=$(cut -d' ' -f1 /proc/loadavg)
BUDGET=${BUDGET:-420} # seconds for the model runs; past it (a busy machine): one short run each
hurried=""
for spec in "${MODEL_LIST[@]}"; do
  IFS='|' read -r name _ steps runs base_steps base_runs <<<"$spec"
  model="$MODELS/$name.bin"
  size=$(stat -c %s "$model")
  for th in $THREADS; do
    if [ $(($(date +%s) - start_time)) -gt "$BUDGET" ]; then
      runs=1 base_runs=1 steps=$((steps < 64 ? steps : 64)) base_steps=$((base_steps < 16 ? base_steps : 16))
      hurried="$hurried $name/$th"
    fi
    fast=() base=() l2c=() rss=0 pf=() pb=()
    # rounds: the fast run, then the baselines right after it, so that each speedup compares
    # runs that saw the same machine (a shared machine's speed drifts); speedups are the
    # medians of these back-to-back ratios
    ratio_base=() ratio_l2c=() ratio_bf16=()
    for ((r = 0; r < runs || r < base_runs; r++)); do
      if [ "$r" -lt "$runs" ]; then
        read -r rate kb < <(decode "$OUT/run-fast" "$model" "$steps" "$th")
        fast+=("$rate") last_fast=$rate
        [ "${kb:-0}" -gt "$rss" ] && rss=$kb
        pf+=("$(prefill "$OUT/run-fast" "$model" "$th")")
      fi
      if [ "$r" -lt "$base_runs" ]; then
        read -r rate _ < <(decode "$OUT/run-baseline" "$model" "$base_steps" "$th")
        base+=("$rate") ratio_base+=("$(ratio "$last_fast" "$rate")")
        read -r rate _ < <(decode "$OUT/run-llama2c" "$model" "$((2 * base_steps))" "$th")
        l2c+=("$rate") ratio_l2c+=("$(ratio "$last_fast" "$rate")")
        if [ "$name" = 110M-bf16 ]; then # the bf16 target is against llama2.c's float32
          read -r rate _ < <(decode "$OUT/run-llama2c" "$MODELS/110M-f32.bin" "$((2 * base_steps))" "$th")
          ratio_bf16+=("$(ratio "$last_fast" "$rate")")
        fi
      fi
    done
    # roofline: the best read rate of a buffer the file's size, on as many threads
    bw=$(OMP_NUM_THREADS=$th "$OUT/bandwidth" $(((size + 1048575) / 1048576)) 5)
    roof=$(awk -v bw="$bw" -v b="$size" 'BEGIN {printf "%.1f", bw * 1e9 / b}')
    # the baseline's prompt rate, measured where it is quick (it equals its decode rate)
    if [ "$name" = 15M-q8_0 ] || [ "$name" = neo-1M-f32 ]; then pb+=("$(prefill "$OUT/run-baseline" "$model" "$th")"); fi
    f=$(printf '%s\n' "${fast[@]}" | median)
    b=$(printf '%s\n' "${base[@]}" | median)
    o=$(printf '%s\n' "${l2c[@]}" | median)
    fast_rate[$name/$th]=$f
    base_rate[$name/$th]=$b
    l2c_rate[$name/$th]=$o
    rb=$(printf '%s\n' "${ratio_base[@]}" | median) ro=$(printf '%s\n' "${ratio_l2c[@]}" | median)
    [ ${#ratio_bf16[@]} -gt 0 ] && bf16_ratio[$th]=$(printf '%s\n' "${ratio_bf16[@]}" | median)
    row="| $name | $th | $f | $b | ${rb}x | $o | ${ro}x | $roof | $(awk -v m="$f" -v r="$roof" 'BEGIN {printf "%.0f%%", 100 * m / r}') | $(mib "$size") | $(mib $((rss * 1024))) |"
    decode_rows+=("$row")
    echo "decode  $row"
    pfm=$(printf '%s\n' "${pf[@]}" | median)
    if [ ${#pb[@]} -gt 0 ]; then pbm=$(printf '%s\n' "${pb[@]}" | median); else pbm="$b*"; fi
    row="| $name | $th | $pfm | $pbm | $(ratio "$pfm" "${pbm%\*}")x | $o* | $(ratio "$pfm" "$o")x |"
    prefill_rows+=("$row")
    echo "prefill $row"
  done
done
load_after=$(cut -d' ' -f1 /proc/loadavg)

# tokenizers: 1 MB of TinyStories text (or of made-up sentences without ../shared), wall
# time of the whole command (load the model and tokenizer, encode, print the ids)
TEXT=$OUT/text-1MB.txt
if [ ! -s "$TEXT" ]; then
  src="$SHARED/data/tinystories-valid-head.txt"
  while [ "$(stat -c %s "$TEXT" 2>/dev/null || echo 0)" -lt 1000000 ]; do
    if [ -s "$src" ]; then cat "$src"; else echo "Once upon a time there was a little girl who liked to play in the park."; fi >>"$TEXT"
  done
  head -c 1000000 "$TEXT" >"$TEXT.1" && mv "$TEXT.1" "$TEXT"
fi
tokenize_time() { # MODEL [-z TOKENIZER] -> "seconds ids"
  local times=() n_ids t0 t1
  for ((r = 0; r < RUNS; r++)); do
    t0=$(date +%s.%N)
    n_ids=$("$OUT/run-fast" "$@" -m tokenize -f "$TEXT" | wc -w)
    t1=$(date +%s.%N)
    times+=("$(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.3f", b - a}')")
  done
  echo "$(printf '%s\n' "${times[@]}" | median) $n_ids"
}
tok_rows=()
if [ -s "$SHARED/models/llama2-tokenizer.bin" ]; then
  read -r secs ids < <(tokenize_time "$MODELS/15M-f32.bin" -z "$SHARED/models/llama2-tokenizer.bin")
  tok_rows+=("| Llama 2 SentencePiece (32000) | $ids | $secs |")
else
  tok_rows+=("| Llama 2 SentencePiece | skipped: $SHARED/models/llama2-tokenizer.bin not found | |")
fi
# GPT-2 BPE: export.py embeds it in the GPT-Neo fixture model (needs numpy)
GPT2=$MODELS/neo-gpt2-tokenizer.bin
if [ ! -s "$GPT2" ] && [ -s "$SHARED/models/gpt2-merges.txt" ] && ${PYTHON:-python3} -c 'import numpy' 2>/dev/null; then
  ${PYTHON:-python3} export.py model "$SHARED/fixtures/hf/gptneo-tinystories-1m-shape" "$GPT2" \
    --tokenizer "$SHARED/models/gpt2-vocab.json" --merges "$SHARED/models/gpt2-merges.txt" >/dev/null 2>&1 || rm -f "$GPT2"
fi
if [ -s "$GPT2" ]; then
  read -r secs ids < <(tokenize_time "$GPT2")
  tok_rows+=("| GPT-2 byte-level BPE (50257) | $ids | $secs |")
else
  tok_rows+=("| GPT-2 byte-level BPE | skipped: needs $SHARED and a Python with numpy (PYTHON=...) for export.py | |")
fi

# GPT-Neo against PyTorch (bench/torch_neo.py, as transformers computes it) with OpenBLAS
# from Debian's libopenblas0-pthread, loaded for that process only: 500-token prompts (one
# batched forward) and decoding after them, rounds alternating ./run and torch.
NEO_THREADS=${NEO_THREADS:-2} NEO_ROUNDS=${NEO_ROUNDS:-5}
openblas_dir=/usr/lib/$($CC -print-multiarch 2>/dev/null || echo x86_64-linux-gnu)/openblas-pthread
torch_rows=() torch_note=""
$CC $CFLAGS -ffp-contract=fast -o "$OUT/fma_peak" bench/fma_peak.c # the vectors of the build measured
peak=$(OMP_NUM_THREADS=$NEO_THREADS "$OUT/fma_peak")
if ! ${PYTHON:-python3} -c 'import torch, numpy' 2>/dev/null; then
  torch_note="skipped: ${PYTHON:-python3} has no torch and numpy (Debian: python3-torch; PYTHON=/usr/bin/python3)"
elif [ ! -e "$openblas_dir/libblas.so.3" ]; then
  torch_note="skipped: $openblas_dir/libblas.so.3 not found (apt-get install libopenblas0-pthread)"
else
  PROMPT500=$(printf 'a%.0s ' $(seq 500))
  PROMPT500=${PROMPT500% }
  for shape in "8M|256|8" "33M|768|4"; do
    IFS='|' read -r label dim layers <<<"$shape"
    # multiply-adds of a prompt token in the matrix products (q, k, v, out; MLP up and down)
    macs=$((layers * (4 * dim * dim + 8 * dim * dim)))
    for type in f32 q8_0; do
      model=$MODELS/neo-$label-$type.bin
      [ -s "$model" ] || bench/gen "$model" $type gptneo "$dim" $((4 * dim)) "$layers" 16 50257 2048 256
      ours_p=() ours_d=() theirs_p=() theirs_d=() ratio_p=() ratio_d=()
      for ((r = 0; r < NEO_ROUNDS; r++)); do
        err=$(OMP_DYNAMIC=false OMP_NUM_THREADS=$NEO_THREADS "$OUT/run-fast" "$model" -t 0 -n 564 -i "$PROMPT500" 2>&1 >/dev/null)
        p=$(sed -n 's/^prompt: [0-9]* tokens in [0-9.]* s (\([0-9.]*\) tok\/s).*/\1/p' <<<"$err")
        d=$(sed -n 's/.*generated: .* (\([0-9.]*\) tok\/s).*/\1/p' <<<"$err")
        if [ "$type" = f32 ]; then # torch runs float32 for both files: once per round and shape, beside the f32 run
          # OpenBLAS at its best for this CPU: a machine-wide OPENBLAS_CORETYPE (set on some machines
          # because older OpenBLAS builds misdetect them) is left out of this command alone;
          # TORCH_CORETYPE=Haswell gives it the AVX2 kernels, to time an AVX2 build of ours against
          read -r tp td blas < <(env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE ${TORCH_CORETYPE:+OPENBLAS_CORETYPE=$TORCH_CORETYPE} LD_LIBRARY_PATH=$openblas_dir \
            OMP_NUM_THREADS=$NEO_THREADS ${PYTHON:-python3} bench/torch_neo.py \
            bench "$label" --threads "$NEO_THREADS" --prompt 500 --decode 64 |
            sed -n 's/^prompt \([0-9.]*\) tok\/s, decode \([0-9.]*\) tok\/s, .*BLAS: \(.*\)$/\1 \2 \3/p')
          tps[$r]=$tp tds[$r]=$td
        fi
        ours_p+=("$p") ours_d+=("$d") theirs_p+=("${tps[$r]}") theirs_d+=("${tds[$r]}")
        ratio_p+=("$(ratio "$p" "${tps[$r]}")") ratio_d+=("$(ratio "$d" "${tds[$r]}")")
      done
      op=$(printf '%s\n' "${ours_p[@]}" | median) od=$(printf '%s\n' "${ours_d[@]}" | median)
      gflops=$(awk -v t="$op" -v m="$macs" 'BEGIN {printf "%.1f", 2 * m * t / 1e9}')
      torch_rows+=("| $label | $type | $op | $(printf '%s\n' "${theirs_p[@]}" | median) | $(printf '%s\n' "${ratio_p[@]}" | median)x | $gflops | $(awk -v g="$gflops" -v p="$peak" 'BEGIN {printf "%.0f%%", 100 * g / p}') | $od | $(printf '%s\n' "${theirs_d[@]}" | median) | $(printf '%s\n' "${ratio_d[@]}" | median)x |")
      echo "torch   ${torch_rows[-1]}"
    done
  done
  torch_note="torch: $(${PYTHON:-python3} -c 'import torch; print(torch.__version__)'), BLAS: ${blas:-?}"
fi

# The page (make web, issue 16) in headless Chromium against ./run on one thread (the page has
# one): stories15M's shape, float32 and Q8_0, -n 256, rounds alternating the two
web_rows=() web_note=""
if [ ! -f web/run.wasm ] || ! command -v chromium >/dev/null || ! node -e "require.resolve('playwright-core')" 2>/dev/null; then
  web_note="skipped: needs web/run.wasm (make web), chromium (Debian) and playwright-core (npm install --no-save playwright-core)"
else
  for name in 15M-f32 15M-q8_0; do
    ours=() page=() ratios=()
    q=$(${PYTHON:-python3} -c 'import sys, urllib.parse; print(urllib.parse.urlencode({"model": sys.argv[1], "prompt": "Once upon a time", "temperature": 0, "steps": 256}))' "$PWD/$MODELS/$name.bin")
    printf '[{"name": "%s", "query": "%s", "rate": true}]' "$name" "$q" >"$OUT/web-case.json"
    for ((r = 0; r < 3; r++)); do
      n=$(OMP_NUM_THREADS=1 "$OUT/run-fast" "$MODELS/$name.bin" -t 0 -n 256 -i "Once upon a time" 2>&1 >/dev/null | sed -n 's/^achieved tok\/s: //p')
      w=$(SHARED="$SHARED" node tests/web.mjs "$OUT/web-case.json" "$OUT" | sed -n 's/^rate: [^ ]* \([0-9.]*\)$/\1/p')
      ours+=("$n") page+=("${w:-0}") ratios+=("$(ratio "${w:-0}" "$n")")
    done
    web_rows+=("| $name | $(printf '%s\n' "${page[@]}" | median | xargs printf %.1f) | $(printf '%s\n' "${ours[@]}" | median | xargs printf %.1f) | $(printf '%s\n' "${ratios[@]}" | median)x |")
    echo "web     ${web_rows[-1]}"
  done
  web_note="Chromium $(chromium --version 2>/dev/null | sed 's/[^0-9.]//g'), web/run.wasm built by make web ($(${WASM_CC:-clang} --version | head -1))"
fi

# memory bandwidth and the float32 110M roofline
f32_110M=$(stat -c %s "$MODELS/110M-f32.bin")
bw_rows=()
declare -A bw
for th in $THREADS; do
  small=$(OMP_NUM_THREADS=$th "$OUT/bandwidth" 16 21)
  big=$(OMP_NUM_THREADS=$th "$OUT/bandwidth" $((f32_110M / 1048576)) 7)
  bw[$th]=$big
  roof=$(awk -v bw="$big" -v b="$f32_110M" 'BEGIN {printf "%.1f", bw * 1e9 / b}')
  meas=${fast_rate[110M-f32/$th]:-0}
  bw_rows+=("| $th | $small | $big | $roof | $meas | $(awk -v m="$meas" -v r="$roof" 'BEGIN {printf "%.0f%%", 100 * m / r}') |")
done

cpu=$(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -1)
kernels=$("$OUT/run-fast" "$MODELS/15M-f32.bin" -n 8 -i "Once upon a time" 2>&1 >/dev/null | sed -n 's/^kernels: \(.*\), threads.*/\1/p')
{
  echo "# run.c benchmark"
  echo
  echo "$(date -u '+%Y-%m-%d %H:%M UTC'), $cpu, $(nproc) cores, kernel path: **${kernels:-?}**, $($CC --version | head -1)."
  echo "Command: \`make bench\` (fast: \`$CC $CFLAGS\`; baseline: \`$CC $BASELINE_CFLAGS -DTS_PLAIN_KERNELS -DTS_BATCH=1\`: run.c's"
  echo "plain loops, one token at a time, i.e. llama2.c's algorithm; llama2.c flags: the same plain loops built"
  echo "with \`$LLAMA2C_CFLAGS\`, as llama2.c's runomp is). Random weights at the TinyStories shapes"
  echo "(vocab 32000; GPT-Neo: vocab 50257, local attention window 256 on odd layers), greedy decoding."
  echo
  echo "## Decode (tokens/s of generated tokens, median of runs)"
  echo
  echo "| model | threads | fast | baseline | speedup | llama2.c flags | speedup | roofline | of roofline | file MiB | peak RSS MiB |"
  echo "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"
  printf '%s\n' "${decode_rows[@]}"
  echo
  echo "Fast: -n 256, median of $R runs (110M and 33M: -n 128, $R3 runs). Baseline: -n 48 (15M, 1M) or"
  echo "16-24 (larger), median of $R3 runs: its rate per token hardly depends on position, and"
  echo "fewer steps favour it (less attention work); the llama2.c-flags build twice those steps."
  echo "Speedups: medians of the ratios of back-to-back runs (a fast run, then each baseline), so"
  echo "that both sides of a ratio saw the same machine; rates: medians of all runs."
  echo "Roofline: tokens/s if each token read the file's bytes at the best rate \`bench/bandwidth\` reads a"
  echo "buffer of the file's size on as many threads (a file that fits the caches has a high roofline)."
  echo "Peak RSS includes the mapped model file."
  [ -n "$hurried" ] && echo "Over the time budget ($BUDGET s): one run of at most 64 (baseline 16) steps for:$hurried (model/threads)."
  echo "Threads: OMP_NUM_THREADS with OMP_DYNAMIC=false, so 2 means 2 (./run alone lets OpenMP use"
  echo "fewer threads than asked when the machine is busy)."
  for th in $THREADS; do
    echo "110M bf16 fast against the llama2.c-flags build of 110M float32 (back-to-back runs), $th thread(s): ${bf16_ratio[$th]:-?}x."
  done
  echo
  echo "## Prompt processing (tokens/s, a prompt of 255 tokens)"
  echo
  echo "| model | threads | fast (blocks of 64) | baseline (token by token) | speedup | llama2.c flags (token by token) | speedup |"
  echo "| --- | --- | --- | --- | --- | --- | --- |"
  printf '%s\n' "${prefill_rows[@]}"
  echo
  echo "\\* prompt rate not measured (time): the build's per-token decode rate, which is what it runs a prompt at."
  echo
  echo "## Tokenizers: 1,000,000 bytes of TinyStories text (median of $RUNS, the whole command)"
  echo
  echo "| tokenizer | ids | seconds |"
  echo "| --- | --- | --- |"
  printf '%s\n' "${tok_rows[@]}"
  echo
  echo "## GPT-Neo against PyTorch: 500-token prompts and decoding, $NEO_THREADS threads"
  echo
  echo "| shape | ./run file | ./run prompt tok/s | torch prompt tok/s | ratio | ./run GFLOP/s | of FMA peak | ./run decode tok/s | torch decode tok/s | ratio |"
  echo "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"
  printf '%s\n' "${torch_rows[@]}"
  echo
  echo "Random weights at the TinyStories-8M (256 wide, 8 layers) and -33M (768 wide, 4 layers) shapes,"
  echo "vocab 50257, 16 heads. torch: bench/torch_neo.py, float32, the prompt in one forward and then 64"
  echo "tokens with a KV cache, as transformers' generate runs it; medians of $NEO_ROUNDS alternating rounds,"
  echo "ratios the medians of each round's ratio. $torch_note."
  echo "GFLOP/s: 2 x the matrix products' multiply-adds per prompt token (attention and the"
  echo "classifier left out) x tokens/s; FMA peak: bench/fma_peak on $NEO_THREADS threads, $peak GFLOP/s."
  echo
  echo "## The page (make web) against ./run on one thread"
  echo
  echo "| model | page tok/s | ./run 1 thread tok/s | page / ./run |"
  echo "| --- | --- | --- | --- |"
  printf '%s\n' "${web_rows[@]}"
  echo
  echo "Random weights at stories15M's shape, greedy, -n 256 (the page: the same settings from its query"
  echo "string, its own tokens/s, run.c's 'achieved tok/s'); medians of 3 alternating rounds. $web_note."
  echo
  echo "## Memory bandwidth and the float32 110M roofline"
  echo
  echo "| threads | read GB/s, 16 MiB (best of 21) | read GB/s, $(mib "$f32_110M") MiB (best of 7) | 110M f32 roofline tok/s (file bytes per token / bandwidth) | measured | of roofline |"
  echo "| --- | --- | --- | --- | --- | --- |"
  printf '%s\n' "${bw_rows[@]}"
  echo
  echo "Load average (1 min) before the runs $load_before, after $load_after: on a 2-core machine,"
  echo "anything above about 0.3 means other programs shared the cores and the numbers (2 threads"
  echo "above all: OpenMP threads wait for each other) are lower than the machine can do."
  echo
  echo "Total benchmark time: $(($(date +%s) - start_time)) s."
} >"$OUT/bench.md"
echo
cat "$OUT/bench.md"
