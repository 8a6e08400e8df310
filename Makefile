# run.c: TinyStories in one file of C.
#   make            the fast binary for this machine (./run)
#   make portable   a plain -O2 build that runs anywhere (./run-portable)
#   make test       every test: C suite, exporter tests, end-to-end checks
#   make story      download stories15M + tokenizer if missing, tell a story
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

.PHONY: all portable test test-c test-speed test-py test-e2e story bench clean
all: run

run: run.c
	$(CC) $(CFLAGS) $(WARN) -o $@ run.c -lm

run-portable: run.c
	$(CC) -O2 $(WARN) -o $@ run.c -lm
portable: run-portable

# Same flags as ./run: the suite compares the library's logits with ./run's bit for bit.
test_all: test_all.c run.c
	$(CC) $(CFLAGS) -g $(WARN) -o $@ test_all.c -lm

test: test-c test-speed test-py
	@echo "make test: all suites passed"

test-c: test_all run
	SHARED=$(SHARED) ./test_all

# the fast kernels against the plain loops, built as the fast binary is
test_speed: tests/test_speed.c run.c
	$(CC) $(CFLAGS) $(WARN) -o $@ tests/test_speed.c -lm

test-speed: test_speed bench/gen
	SHARED=$(SHARED) ./test_speed

bench/gen: bench/gen.c
	$(CC) -O2 $(WARN) -o $@ bench/gen.c -lm

test-py:
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

clean:
	rm -f run run-portable test_all test_speed bench/gen
