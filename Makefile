# run.c: TinyStories in one file of C.
#   make            the fast binary for this machine (./run)
#   make portable   a plain -O2 build that runs anywhere (./run-portable)
#   make check      the fast C suites (C suite, API, kernels), under 2 minutes
#   make test       every test: C suite, API tests, exporter tests, end-to-end checks, the
#                   other kernel paths (AVX2, clang, aarch64 NEON under qemu-user)
#   make examples   programs that use run.c as a library (examples/hello, story, heads)
#   make web        the page: run.c as WebAssembly (web/run.wasm) beside web/index.html
#   make story      download stories15M + tokenizer if missing, tell a story
#   make asan       sanitizer builds: ./run-asan and the tests (AddressSanitizer + UBSan)
#   make fuzz       each libFuzzer target for FUZZ_SECONDS (needs clang); see fuzz/README.md
CC      ?= cc
PYTHON  ?= python3
SHARED  ?= ../shared
WARN    := -Wall -Wextra -Werror
# OpenMP when the compiler has it; the code builds and runs the same without.
OPENMP  := $(shell echo 'int main(void){return 0;}' | $(CC) -fopenmp -x c - -o /dev/null 2>/dev/null && echo -fopenmp)
# -ffp-contract=off: every * and + rounds as written (gcc would otherwise fuse some of them
# into FMAs, differently as the code around them changes); the SIMD kernels use FMAs by name.
FAST    := -O3 -march=native -ffp-contract=off $(OPENMP)
CFLAGS  ?= $(FAST)

.PHONY: web test-wasm test-web all portable check test test-c test-api test-speed test-builds test-arm test-compile test-py test-e2e story examples bench clean asan test-asan \
        test-valgrind test-replay test-harden test-hostile test-runs fuzz fuzz-build fuzz-corpus
all: run

run: run.c
	$(CC) $(CFLAGS) $(WARN) -o $@ run.c -lm

run-portable: run.c
	$(CC) -O2 $(WARN) -o $@ run.c -lm
portable: run-portable

# Same flags as ./run: the suite compares the library's logits with ./run's bit for bit.
test_all: test_all.c run.c
	$(CC) $(CFLAGS) -g $(WARN) -o $@ test_all.c -lm

# Examples build like a user's program would: plain -O2, no -march (valgrind runs them).
EXAMPLE_CFLAGS ?= -O2 -g
examples: examples/hello examples/story examples/heads
examples/%: examples/%.c run.c
	$(CC) $(EXAMPLE_CFLAGS) $(WARN) -o $@ $< -lm

tests/test_api: tests/test_api.c run.c
	$(CC) -O2 -g $(OPENMP) -pthread $(WARN) -o $@ tests/test_api.c -lm

# The fast suites, for a quick answer while working (under 2 minutes): the C suite, the
# library API and the fast kernels against the plain loops.
check: test-c test-api test-speed
	@echo "make check: the C suites passed (make test runs everything)"

test: test-c test-api test-speed test-builds test-arm test-wasm test-web test-py test-harden test-replay test-runs test-asan test-valgrind
	@echo "make test: all suites passed"

test-c: test_all run
	SHARED=$(SHARED) ./test_all

test-api: tests/test_api tests/two_files/two_files run
	SHARED=$(SHARED) tests/test_api
	@# RUN_HEADER_ONLY: a second file sees the declarations and defines nothing of run.c's
	@if nm tests/two_files/story.o | grep -E ' [TtDdBbRr] ts_'; then echo "FAIL two_files: story.o defines run.c symbols"; exit 1; fi
	@if [ -s $(SHARED)/models/stories260K.bin ]; then \
	  tests/two_files/two_files $(SHARED)/models/stories260K.bin $(SHARED)/models/tok512.bin "Once upon a time" 60 > tests/two_files/out.txt && \
	  ./run $(SHARED)/models/stories260K.bin -z $(SHARED)/models/tok512.bin -t 0 -n 60 -i "Once upon a time" 2>/dev/null > tests/two_files/expected.txt && \
	  test -s tests/two_files/out.txt && cmp tests/two_files/out.txt tests/two_files/expected.txt && \
	  echo "ok   two_files: RUN_HEADER_ONLY + RUN_NO_MAIN in two files link and tell ./run's story"; \
	else echo "SKIP two_files story: $(SHARED)/models/stories260K.bin not found (the link and symbol checks ran)"; fi

# run.c in two files of one program: RUN_HEADER_ONLY in one, RUN_NO_MAIN in the other
tests/two_files/story.o: tests/two_files/story.c run.c
	$(CC) -O2 $(WARN) -c -o $@ tests/two_files/story.c
tests/two_files/two_files: tests/two_files/main.c tests/two_files/story.o run.c
	$(CC) -O2 $(WARN) -o $@ tests/two_files/main.c tests/two_files/story.o -lm

# the fast kernels against the plain loops, built as the fast binary is
test_speed: tests/test_speed.c run.c
	$(CC) $(CFLAGS) $(WARN) -o $@ tests/test_speed.c -lm

# Exactness in the builds the rest of `make test` does not run (it runs -march=native with
# $(CC), and the plain loops under the sanitizers): the AVX2 kernels, and clang's
# -march=native build. Each must print the stories260K cases byte for byte and pass the
# kernel checks (fast against plain, exp against libm).
AVX2    := -O2 -mavx2 -mfma -ffp-contract=off $(OPENMP) $(WARN)
CLANG_FAST := -O3 -march=native -ffp-contract=off $(WARN)
# Every kernel path compiles with -Werror under gcc and clang on every run, whether or not
# this CPU has it (name=flags,...; aarch64 through the cross compiler and clang's target).
PATHS_X86   := plain=-DTS_PLAIN_KERNELS avx2=-mavx2,-mfma avx512=-march=x86-64-v4,-mavx512vnni
PATHS_ARM   := neon=-march=armv8-a neon-dotprod=-march=armv8.2-a+dotprod
COMPILED    := run.c test_all.c tests/test_speed.c tests/test_api.c
test-compile:
	@{ for p in $(PATHS_X86); do for cc in gcc clang; do command -v $$cc >/dev/null || { echo "echo 'test-compile: $$cc SKIPPED (not installed)'"; continue; }; \
	  for f in $(COMPILED); do echo "$$cc -O2 $$(echo $${p#*=} | tr , " ") -ffp-contract=off $(WARN) -c -o /dev/null $$f || { echo 'test-compile: $$cc $${p%%=*} $$f FAILED'; exit 1; }"; done; \
	  echo "echo 'test-compile: $${p%%=*} with $$cc'"; done; done; \
	for p in $(PATHS_ARM); do for cc in aarch64-linux-gnu-gcc "clang --target=aarch64-linux-gnu"; do \
	  command -v $${cc%% *} >/dev/null && [ -d /usr/aarch64-linux-gnu/include ] || { echo "echo 'test-compile: $$cc SKIPPED (install gcc-aarch64-linux-gnu)'"; continue; }; \
	  for f in $(COMPILED); do echo "$$cc -O2 $$(echo $${p#*=} | tr , " ") -ffp-contract=off $(WARN) -c -o /dev/null $$f || { echo 'test-compile: $$cc $${p%%=*} $$f FAILED'; exit 1; }"; done; \
	  echo "echo 'test-compile: $${p%%=*} with $$cc'"; done; done; } | tr '\n' '\0' | xargs -0 -P 2 -n 1 sh -c

test-builds: test-compile
	CC="$(CC)" AVX2="$(AVX2)" CLANG_FAST="$(CLANG_FAST)" SHARED=$(SHARED) tests/builds.sh

# The NEON kernels: cross-built for aarch64, run under qemu-user (tests/arm.sh says what it checks).
test-arm: run bench/gen
	SHARED=$(SHARED) PYTHON=$(PYTHON) tests/arm.sh

# WebAssembly: the same run.c for wasm32-wasi (clang's target with Debian's wasi-libc, lld and
# compiler-rt for wasm32; plain kernels, one thread, files read instead of mapped), run under
# node's WASI by make test-wasm (tests/wasm.sh). Skipped with a message without the toolchain.
WASM_CC ?= clang --target=wasm32-wasi
# 256 MB of memory from the start: node 20's WASI crashed (SIGSEGV, in node) when a run's memory
# grew past ~20 MB during it (GPT-Neo's 50257-wide logits of 48+ tokens); it still grows past that.
WASM_LDFLAGS ?= -Wl,--initial-memory=268435456
# SIMD128: run.c's WebAssembly kernels (section 5: the plain loops' bits, 4 rows in the lanes)
WASM_CFLAGS ?= -O2 -ffp-contract=off -msimd128
web:
	@mkdir -p web; if echo 'int main(void){return 0;}' | $(WASM_CC) -x c - -o /dev/null 2>/dev/null; then \
	  $(WASM_CC) $(WASM_CFLAGS) $(WARN) $(WASM_LDFLAGS) -o web/run.wasm run.c -lm && echo "web: web/run.wasm ($(WASM_CC) $(WASM_CFLAGS))"; \
	else echo "web: SKIPPED (no wasm32-wasi toolchain: apt-get install wasi-libc lld libclang-rt-dev-wasm32)"; fi
test-wasm: run web
	SHARED=$(SHARED) PYTHON=$(PYTHON) WASM_CC="$(WASM_CC)" WASM_CFLAGS="$(WASM_CFLAGS)" WASM_LDFLAGS="$(WASM_LDFLAGS)" tests/wasm.sh

# The page (web/index.html, web/worker.js) in a real headless Chromium driven by playwright-core
# (npm), served from 127.0.0.1: stories byte for byte ./run's, the views, refused files
# (tests/web.sh). Serve it yourself: make web && cd web && python3 -m http.server 8000
test-web: run web
	SHARED=$(SHARED) PYTHON=$(PYTHON) tests/web.sh

test-speed: test_speed bench/gen
	SHARED=$(SHARED) ./test_speed

bench/gen: bench/gen.c
	$(CC) -O2 $(WARN) -o $@ bench/gen.c -lm

test-py: run examples
	SHARED=$(abspath $(SHARED)) $(PYTHON) -m unittest discover -s tests -p 'test_*.py' -v

# Speed: fast kernels vs the plain loops, random-weight models at the TinyStories shapes
# (writes about 2 GB of models into bench/out/models once; under 10 minutes).
bench:
	CC="$(CC)" CFLAGS="$(CFLAGS)" SHARED="$(SHARED)" PYTHON="$(PYTHON)" bench/bench.sh

# A first story: stories15M (Karpathy's tinyllamas) and the Llama 2 tokenizer.
STORY_MODEL_URL := https://huggingface.co/karpathy/tinyllamas/resolve/main/stories15M.bin
STORY_TOK_URL   := https://github.com/karpathy/llama2.c/raw/master/tokenizer.bin
story: run
	@for pair in "stories15M.bin $(STORY_MODEL_URL)" "tokenizer.bin $(STORY_TOK_URL)"; do \
	  set -- $$pair; \
	  if [ ! -s $$1 ]; then \
	    echo "downloading $$1 from $$2"; \
	    if command -v curl >/dev/null; then curl -fL --retry 2 -o $$1.part $$2 && mv $$1.part $$1; \
	    elif command -v wget >/dev/null; then wget -O $$1.part $$2 && mv $$1.part $$1; fi; \
	    if [ ! -s $$1 ]; then rm -f $$1.part; \
	      echo "could not download $$1: fetch $$2 by hand into this folder, then run make story again"; exit 1; fi; \
	  fi; \
	done
	./run stories15M.bin -z tokenizer.bin -i "Once upon a time"

# ---- hostile input: sanitizers, fuzzing, memory discipline (docs/security.md) ----
SANITIZE := -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined,float-cast-overflow -fno-sanitize-recover=all
FUZZ_CC  ?= clang
FUZZ_SECONDS ?= 60
FUZZ_TARGETS := model tokenizer gpt2 encode decode args
FUZZ_DEPS := run.c fuzz/fuzz.h fuzz/synth.h
# every sanitizer finding fails the run; leaks too
export ASAN_OPTIONS ?= detect_leaks=1:abort_on_error=0:exitcode=86
export UBSAN_OPTIONS ?= print_stacktrace=1:halt_on_error=1

run-asan: run.c
	$(CC) $(SANITIZE) $(OPENMP) $(WARN) -o $@ run.c -lm
test_all-asan: test_all.c run.c
	$(CC) $(SANITIZE) $(OPENMP) $(WARN) -o $@ test_all.c -lm
test_harden: tests/test_harden.c $(FUZZ_DEPS)
	$(CC) -O2 -g $(OPENMP) $(WARN) -o $@ tests/test_harden.c -lm
test_harden-asan: tests/test_harden.c $(FUZZ_DEPS)
	$(CC) $(SANITIZE) $(OPENMP) $(WARN) -o $@ tests/test_harden.c -lm
# valgrind cannot decode AVX-512: a plain build, with symbols
run-valgrind: run.c
	$(CC) -O2 -g $(OPENMP) $(WARN) -o $@ run.c -lm
asan: run-asan test_harden-asan $(if $(wildcard test_all.c),test_all-asan)

# Fuzz targets: linked with libFuzzer (clang) for `make fuzz`, or with fuzz/replay.c (any
# compiler) to replay the seed corpus and every past crash in `make test`.
fuzz/out/fuzz-%: fuzz/fuzz_%.c $(FUZZ_DEPS)
	@mkdir -p fuzz/out
	$(FUZZ_CC) -O1 -g -fsanitize=fuzzer,address,undefined,float-cast-overflow -fno-sanitize-recover=all $(WARN) -o $@ $< -lm
fuzz/out/replay-%: fuzz/fuzz_%.c fuzz/replay.c $(FUZZ_DEPS)
	@mkdir -p fuzz/out
	$(CC) -O1 -g $(WARN) -o $@ $< fuzz/replay.c -lm
fuzz/out/replay-asan-%: fuzz/fuzz_%.c fuzz/replay.c $(FUZZ_DEPS)
	@mkdir -p fuzz/out
	$(CC) $(SANITIZE) $(WARN) -o $@ $< fuzz/replay.c -lm
fuzz-build: $(addprefix fuzz/out/fuzz-,$(FUZZ_TARGETS))

# Each target for FUZZ_SECONDS from its seed corpus (plus the inputs earlier runs found, kept
# in fuzz/out/corpus/, and the regressions). A crash stops with the input's path.
fuzz: fuzz-build
	@for t in $(FUZZ_TARGETS); do \
	  mkdir -p fuzz/out/corpus/$$t fuzz/out/crashes/$$t; \
	  echo "fuzz: $$t for $(FUZZ_SECONDS) s"; \
	  ./fuzz/out/fuzz-$$t -max_total_time=$(FUZZ_SECONDS) -timeout=10 -rss_limit_mb=2048 -max_len=16384 \
	    -print_final_stats=1 -artifact_prefix=fuzz/out/crashes/$$t/ \
	    fuzz/out/corpus/$$t fuzz/corpus/$$t $$(ls -d fuzz/regressions/$$t 2>/dev/null) 2>fuzz/out/$$t.log \
	  || { tail -40 fuzz/out/$$t.log; echo "fuzz: $$t failed: add the input named above to fuzz/regressions/$$t/, fix, re-run"; exit 1; }; \
	  grep -E "^stat::number_of_executed_units|^stat::peak_rss_mb" fuzz/out/$$t.log | tr '\n' ' '; echo; \
	done

# Regenerate the committed seed corpus (fuzz/make_corpus.c writes fuzz/corpus/<target>/).
fuzz-corpus: fuzz/make_corpus.c $(FUZZ_DEPS)
	@mkdir -p fuzz/out
	$(CC) -O1 -g $(WARN) -o fuzz/out/make_corpus fuzz/make_corpus.c -lm
	./fuzz/out/make_corpus

test-replay: $(addprefix fuzz/out/replay-,$(FUZZ_TARGETS))
	@for t in $(FUZZ_TARGETS); do printf "%-10s " $$t; ./fuzz/out/replay-$$t fuzz/corpus/$$t fuzz/regressions/$$t || exit 1; done

test-harden: test_harden
	SHARED=$(SHARED) ./test_harden

# Hostile files, flags and prompts against the sanitizer build (tests/hostile.py).
test-hostile: run-asan
	SHARED=$(SHARED) $(PYTHON) tests/hostile.py ./run-asan

# Long runs, memory bounds and thread-count determinism of the real binary.
test-runs: run
	SHARED=$(SHARED) $(PYTHON) tests/runs.py ./run

# The whole suite under AddressSanitizer + UndefinedBehaviorSanitizer.
test-asan: asan $(addprefix fuzz/out/replay-asan-,$(FUZZ_TARGETS))
	$(if $(wildcard test_all.c),SHARED=$(SHARED) RUN_BINARY=./run-asan ./test_all-asan,@echo "test-asan: no test_all.c in this tree, skipped")
	SHARED=$(SHARED) ./test_harden-asan
	@for t in $(FUZZ_TARGETS); do printf "%-10s " $$t; ./fuzz/out/replay-asan-$$t fuzz/corpus/$$t fuzz/regressions/$$t || exit 1; done
	SHARED=$(SHARED) $(PYTHON) tests/hostile.py ./run-asan
	SHARED=$(SHARED) $(PYTHON) tests/runs.py --quick ./run-asan

# End-to-end generations under valgrind: stories260K for 64 steps, and the synthetic GPT-Neo
# file with its embedded tokenizer (seed corpus). No error, no leak.
VALGRIND := OMP_NUM_THREADS=2 OMP_WAIT_POLICY=passive valgrind -q --error-exitcode=99 --leak-check=full \
            --show-leak-kinds=definite,indirect --errors-for-leak-kinds=definite,indirect
test-valgrind: run-valgrind
	@if ! command -v valgrind >/dev/null; then echo "test-valgrind: SKIPPED (valgrind not installed)"; exit 0; fi; \
	mkdir -p fuzz/out; \
	$(VALGRIND) ./run-valgrind fuzz/corpus/model/tsmf-neo-tokenizer -n 0 -s 3 -i "Once" >/dev/null 2>fuzz/out/valgrind.log \
	  || { cat fuzz/out/valgrind.log; echo "test-valgrind: FAILED on the synthetic GPT-Neo file"; exit 1; }; \
	echo "test-valgrind: synthetic GPT-Neo file, full context: clean"; \
	if [ ! -f $(SHARED)/models/stories260K.bin ]; then echo "test-valgrind: stories260K SKIPPED ($(SHARED)/models/stories260K.bin not found)"; exit 0; fi; \
	$(VALGRIND) ./run-valgrind $(SHARED)/models/stories260K.bin -z $(SHARED)/models/tok512.bin -n 64 -s 42 -i "Once upon a time" \
	  >/dev/null 2>fuzz/out/valgrind.log || { cat fuzz/out/valgrind.log; echo "test-valgrind: FAILED on stories260K"; exit 1; }; \
	echo "test-valgrind: stories260K, 64 steps: clean"

clean:
	rm -f run run-portable run-asan run-valgrind test_all test_all-asan test_harden test_harden-asan tests/test_api \
	      examples/hello examples/story examples/heads test_speed bench/gen \
	      test_all-avx2 test_all-clang test_speed-avx2 test_all-avx2.log test_all-clang.log test_speed-avx2.log run-avx2 run-clang
	rm -rf fuzz/out out-arm out-wasm out-web web/run.wasm
