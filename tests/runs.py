#!/usr/bin/env python3
"""Long runs, memory bounds and determinism of the command line (issue 7).

    python3 tests/runs.py ./run          (make test-runs; make test-asan runs it on ./run-asan)

- Determinism: the same seed gives the same bytes with OMP_NUM_THREADS = 1, 2 and 4
  (stories260K generation and logits; synthetic Q8_0 / BF16 / GPT-Neo files, logits).
- Long runs: a generation to the last position of stories260K's context (512), 512 ids of
  logits, perplexity over several contexts; a synthetic GPT-Neo file to its full context;
  the TinyStories-1M-shaped GPT-Neo fixture (exported with export.py and the GPT-2
  tokenizer) through all of its 2048 positions (not with --quick: minutes under sanitizers).
- Memory: a file whose full KV cache would not fit this machine runs with -n 16 in little
  memory, and -n 0 (the full context) is refused with a message instead of swapping.
Standard library only; cases that need $SHARED are reported SKIPPED when it is absent.
"""
import os
import re
import struct
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED = os.path.abspath(os.environ.get("SHARED", os.path.join(ROOT, "..", "shared")))
CORPUS = os.path.join(ROOT, "fuzz", "corpus")
STORIES = os.path.join(SHARED, "models", "stories260K.bin")
NEO = os.path.join(SHARED, "fixtures", "hf", "gptneo-tinystories-1m-shape")
GPT2_VOCAB = os.path.join(SHARED, "models", "gpt2-vocab.json")
GPT2_MERGES = os.path.join(SHARED, "models", "gpt2-merges.txt")
TOK512 = os.path.join(SHARED, "models", "tok512.bin")
TEXT = os.path.join(SHARED, "data", "tinystories-valid-head.txt")

failures, passes, skips = [], 0, []


def check(ok, what):
    global passes
    if ok:
        passes += 1
    else:
        failures.append(what)
        print("runs: FAIL", what)


def run(binary, args, threads=1, stdin=b""):
    """(exit code, stdout, stderr)."""
    # passive waiting: on a busy shared machine, spinning threads only slow each other down
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), OMP_WAIT_POLICY="passive")
    r = subprocess.run([binary] + args, input=stdin, capture_output=True, env=env, timeout=600)
    return r.returncode, r.stdout, r.stderr


TIME = "/usr/bin/time"  # GNU time: a Python parent's own memory would count in ru_maxrss


def peak_rss_kb(binary, args):
    """(exit code, peak resident kB or None without GNU time, stderr) of one run."""
    env = dict(os.environ, OMP_NUM_THREADS="1")
    if not os.path.exists(TIME):
        rc, _, err = run(binary, args)
        return rc, None, err
    r = subprocess.run([TIME, "-f", "peak-rss-kb %M", binary] + args, capture_output=True, env=env, timeout=600)
    m = re.search(rb"peak-rss-kb (\d+)\n?$", r.stderr)
    return r.returncode, int(m.group(1)) if m else None, r.stderr[:m.start()] if m else r.stderr


def have_shared(what):
    if os.path.exists(STORIES) and os.path.exists(TOK512) and os.path.exists(TEXT):
        return True
    skips.append(what)
    print(f"runs: SKIPPED {what} ({STORIES} or its tokenizer / text not found)")
    return False


def stats(err):
    """(prompt tokens, generated tokens) from the statistics line on stderr."""
    m = re.search(rb"prompt: (\d+) tokens .*generated: (\d+) tokens", err)
    return (int(m.group(1)), int(m.group(2))) if m else (None, None)


def test_determinism(binary, tmp):
    ids = os.path.join(tmp, "ids.txt")
    out = os.path.join(tmp, "logits.f32")
    jobs = []
    if have_shared("determinism of stories260K"):
        model = [STORIES, "-z", TOK512]
        jobs += [("stories260K -t 1 -s 42", model + ["-t", "1.0", "-s", "42", "-n", "256"], None),
                 ("stories260K -t 0.8 -p 0.9 prompt", model + ["-t", "0.8", "-p", "0.9", "-s", "7", "-n", "200",
                                                               "-i", "Lily and Tom went to the park"], None),
                 ("stories260K logits", [STORIES, "-m", "logits", "--ids", ids, "--out", out],
                  " ".join(str(3 + (i * 37) % 500) for i in range(100)))]
    for name in ("tsmf-q8", "tsmf-q8-short-groups", "tsmf-bf16", "tsmf-neo", "v2-q8", "legacy-unshared"):
        jobs.append((f"{name} logits", [os.path.join(CORPUS, "model", name), "-m", "logits", "--ids", ids, "--out", out],
                     "1 5 9 2 14 3 7 0"))
    for name, args, id_text in jobs:
        if id_text is not None:
            with open(ids, "w") as f:
                f.write(id_text)
        results = []
        for threads in (1, 2, 4):
            rc, stdout, err = run(binary, args, threads)
            data = open(out, "rb").read() if id_text is not None and rc == 0 else stdout
            results.append((rc, data))
        check(results[0][0] == 0 and len(results[0][1]) > 0, f"{name}: runs ({results[0][0]})")
        check(results[0] == results[1] == results[2], f"{name}: same bytes with 1, 2 and 4 threads")


def test_long_runs(binary, tmp):
    # synthetic GPT-Neo (local windows) with its own tokenizer: -n 0 = its whole context of 8
    neo = os.path.join(CORPUS, "model", "tsmf-neo-tokenizer")
    rc, out, err = run(binary, [neo, "-n", "0", "-s", "11", "-i", "Once"])
    prompt, generated = stats(err)
    check(rc == 0 and prompt is not None and prompt + generated == 9,
          f"GPT-Neo-shaped file, -n 0: all 8 positions ({rc}, {prompt}, {generated}): {err[:200]}")
    if not have_shared("full-context runs of stories260K"):
        return
    text = open(TEXT, encoding="utf-8").read()
    text = text[text.index("Once upon a time, in a big forest"):]

    def n_tokens(s):
        rc, out, err = run(binary, [STORIES, "-z", TOK512, "-m", "tokenize", "-i", s])
        return len(out.split())

    # the longest prefix of the text that is 504 tokens (+ BOS = 505): 7 positions remain
    lo, hi = 100, 4000
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if n_tokens(text[:mid]) <= 504:
            lo = mid
        else:
            hi = mid - 1
    prompt_text = text[:lo]
    check(n_tokens(prompt_text) == 504, f"prompt of 504 tokens ({n_tokens(prompt_text)})")
    rc, out, err = run(binary, [STORIES, "-z", TOK512, "-n", "0", "-t", "0", "-i", prompt_text])
    prompt, generated = stats(err)
    check(rc == 0 and (prompt, generated) == (505, 8), f"stories260K to position 511: rc {rc}, prompt {prompt}, "
          f"generated {generated}: {err[:300]}")
    check(out.startswith(prompt_text.encode()) and len(out) > len(prompt_text.encode()) + 8,
          "stories260K full context: the prompt, then the continuation")
    rc, out, err = run(binary, [STORIES, "-z", TOK512, "-n", "0", "-t", "0", "-i", text[:lo + 3000]])
    check(rc == 1 and err.startswith(b"run: the prompt is") and b"context of 512" in err,
          f"a prompt longer than the context is refused: {err[:200]}")
    # logits for all 512 positions; ppl over several 512-token contexts
    ids = os.path.join(tmp, "ids512.txt")
    out_path = os.path.join(tmp, "logits512.f32")
    rc, tok_out, _ = run(binary, [STORIES, "-z", TOK512, "-m", "tokenize", "-i", text[:4000]])
    with open(ids, "w") as f:
        f.write("1 " + " ".join(x.decode() for x in tok_out.split()[:511]))
    rc, _, err = run(binary, [STORIES, "-m", "logits", "--ids", ids, "--out", out_path])
    data = open(out_path, "rb").read() if rc == 0 else b""
    last = struct.unpack_from("<512f", data, len(data) - 2048) if len(data) == 512 * 512 * 4 else ()
    check(rc == 0 and len(data) == 512 * 512 * 4 and all(abs(v) < 1e4 for v in last),
          f"logits at all 512 positions: rc {rc}, {len(data)} bytes: {err[:200]}")
    text_path = os.path.join(tmp, "text.txt")
    with open(text_path, "w", encoding="utf-8") as f:
        f.write(text[:8000])
    rc, out, err = run(binary, [STORIES, "-z", TOK512, "-m", "ppl", "-f", text_path])
    m = re.search(rb"tokens: (\d+)\nloss: ([0-9.]+)", out)
    check(rc == 0 and m and int(m.group(1)) > 1024 and 1.0 < float(m.group(2)) < 1.8,
          f"perplexity over {m.group(1).decode() if m else '?'} tokens (3+ contexts): {out[:100]} {err[-200:]}")


def test_gptneo_2048(binary, tmp):
    """The TinyStories-1M-shaped GPT-Neo (local attention every other layer, window 256)
    generates greedily through its whole context of 2048 positions."""
    if not all(os.path.exists(p) for p in (NEO, GPT2_VOCAB, GPT2_MERGES)):
        skips.append("GPT-Neo 2048 positions")
        print(f"runs: SKIPPED GPT-Neo 2048 positions ({NEO} or the GPT-2 tokenizer not found)")
        return
    model = os.path.join(tmp, "neo.bin")
    r = subprocess.run([sys.executable, os.path.join(ROOT, "export.py"), "model", NEO, model, "--tokenizer", GPT2_VOCAB,
                        "--merges", GPT2_MERGES], capture_output=True)
    if r.returncode != 0:
        skips.append("GPT-Neo 2048 positions")
        print(f"runs: SKIPPED GPT-Neo 2048 positions (export.py failed with {sys.executable}: "
              f"{r.stderr.decode(errors='replace').strip().splitlines()[-1:]})")
        return
    rc, out, err = run(binary, [model, "-n", "0", "-t", "0", "-i", "Once upon a time"], threads=2)
    prompt, generated = stats(err)
    check(rc == 0 and prompt is not None and prompt + generated == 2049 and out.startswith(b"Once upon a time"),
          f"GPT-Neo through all 2048 positions: rc {rc}, prompt {prompt}, generated {generated}: {err[-300:]}")


def test_memory(binary, tmp):
    """A llama2.c v1 file (zero weights) whose full KV cache is at least twice this machine's
    memory: -n 16 runs small, -n 0 is refused before allocating."""
    mem_kb = 0
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal:"):
                mem_kb = int(line.split()[1])
    seq_len = 1 << 20
    for dim in (16, 32, 64):  # KV cache = n_layers * seq_len * dim * 4 bytes * 2 (K and V)
        n_layers = -(-2 * mem_kb * 1024 // (seq_len * dim * 8))
        if n_layers <= 1024:
            break
    else:
        skips.append("memory refusal")
        print(f"runs: SKIPPED the memory refusal: {mem_kb} kB of memory holds any KV cache a header can ask for")
        return
    tok = open(os.path.join(CORPUS, "tokenizer", "synthetic"), "rb").read()
    vocab = struct.unpack_from("<H", tok)[0] + 1
    tok_path = os.path.join(tmp, "synthetic-tok.bin")
    with open(tok_path, "wb") as f:
        f.write(tok[2:])
    hidden = 1
    floats = (2 * n_layers * dim + dim + vocab * dim  # norms, embedding (shared classifier)
              + n_layers * (4 * dim * dim + 3 * dim * hidden))  # wq wk wv wo (one head), w1 w2 w3
    path = os.path.join(tmp, "long-context.bin")
    with open(path, "wb") as f:
        header = struct.pack("<Ii7iB", 0x616B3432, 1, dim, hidden, n_layers, 1, 1, vocab, seq_len, 1)
        f.write(header + bytes(256 - len(header)))
        f.write(bytes(4 * floats))
    size_mb = os.path.getsize(path) / 2**20
    full_kv_mb = n_layers * seq_len * dim * 8 / 2**20
    rc, kb, err = peak_rss_kb(binary, [path, "-z", tok_path, "-n", "16", "-s", "1"])
    check(rc == 0 and (kb is None or kb < 512 * 1024), f"-n 16 on a file of {n_layers} layers x 2^20 positions: "
          f"rc {rc}, peak {kb} kB: {err[:200]}")
    print(f"runs: {size_mb:.1f} MB file, full KV cache {full_kv_mb:.0f} MB, this machine {mem_kb // 1024} MB: "
          f"-n 16 peaks at " + (f"{kb / 1024:.1f} MB" if kb else f"? MB ({TIME} not found)"))
    rc, out, err = run(binary, [path, "-z", tok_path, "-n", "0"])
    check(rc == 1 and err.startswith(b"run: a session of 1048576 positions needs") and b"KV cache" in err
          and b"-n" in err, f"-n 0 refused with a message: rc {rc}: {err[:300]}")
    for mode in (["-m", "chat", "-n", "16"], ["-m", "tokenize", "-i", "Once upon a time"]):
        rc, out, err = run(binary, [path, "-z", tok_path] + mode)
        check(rc == 0, f"{mode[1]} sized to what it reaches: rc {rc}: {err[:200]}")
    text_path = os.path.join(tmp, "short.txt")
    with open(text_path, "w") as f:
        f.write("Once upon a time, Lily.")
    rc, out, err = run(binary, [path, "-z", tok_path, "-m", "ppl", "-f", text_path])
    check(rc == 0 and out.startswith(b"tokens: "), f"ppl sized to the text: rc {rc}: {err[:200]}")
    ids = os.path.join(tmp, "ids4.txt")
    with open(ids, "w") as f:
        f.write("1 2 3 4")
    rc, out, err = run(binary, [path, "-m", "logits", "--ids", ids, "--out", os.path.join(tmp, "l4.f32")])
    check(rc == 0 and os.path.getsize(os.path.join(tmp, "l4.f32")) == 4 * vocab * 4,
          f"logits sized to its ids: rc {rc}: {err[:200]}")
    # stories260K: the KV cache grows with -n (report only: pages are touched as positions run)
    if os.path.exists(STORIES) and os.path.exists(TOK512) and os.path.exists(TIME):
        rss = {n: peak_rss_kb(binary, [STORIES, "-z", TOK512, "-n", str(n), "-s", "1"])[1] for n in (16, 512)}
        print(f"runs: stories260K peak resident memory: -n 16 {rss[16] / 1024:.1f} MB, -n 512 {rss[512] / 1024:.1f} MB "
              f"(file {os.path.getsize(STORIES) / 2**20:.1f} MB)")


def main():
    args = [a for a in sys.argv[1:] if a != "--quick"]
    if len(args) != 1:
        sys.exit("usage: runs.py [--quick] ./run")
    binary = os.path.abspath(args[0])
    with tempfile.TemporaryDirectory() as tmp:
        test_determinism(binary, tmp)
        test_long_runs(binary, tmp)
        if "--quick" in sys.argv:
            print("runs: GPT-Neo 2048 positions left out (--quick); make test-runs runs it")
        else:
            test_gptneo_2048(binary, tmp)
        test_memory(binary, tmp)
    print(f"runs: {passes} passed, {len(failures)} failed" + (f", {len(skips)} skipped" if skips else ""))
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
