#!/usr/bin/env python3
"""Hostile inputs against the command line (issue 7): none may crash, hang or leave a
sanitizer report, and each invalid one must exit non-zero with a message starting "run: ".

    python3 tests/hostile.py ./run-asan          (make test-hostile; make test-asan)

Valid files of every layout come from the committed seed corpus (fuzz/corpus/model: llama2.c
legacy / v1 / v2, TSMF f32 / Q8_0 / BF16 / GPT-Neo / embedded tokenizer) and, when
$SHARED is there, stories260K.bin and tok512.bin. From them the test makes, in a temporary
folder: every class of truncation, appended bytes, bit flips in every header word, absurd
values in every header field, broken tokenizers, and hostile flags, prompts and paths.
Standard library only.
"""
import concurrent.futures
import os
import signal
import struct
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED = os.path.abspath(os.environ.get("SHARED", os.path.join(ROOT, "..", "shared")))
CORPUS = os.path.join(ROOT, "fuzz", "corpus", "model")
TIMEOUT = 60  # seconds per run; a sanitizer build takes well under 5
SANITIZER_MARKS = (b"AddressSanitizer", b"LeakSanitizer", b"UndefinedBehaviorSanitizer", b"runtime error:",
                   b"MemorySanitizer", b"ThreadSanitizer")

OK, ERROR, ANY, QUIET_SIGPIPE = "exit 0", "an error", "either", "ended by SIGPIPE, quietly"


class Case:
    """stdout: None (captured), "full" (/dev/full), "closed" (no descriptor 1), "pipe" or
    "pipe, SIGPIPE ignored" (a pipe whose reader takes 10 bytes and leaves). message: a
    text the error message must hold. no_output: nothing may reach stdout (the error is
    found before any work)."""

    def __init__(self, name, args, expect=ANY, stdin=b"", stdout=None, message=None, no_output=False):
        self.name, self.args, self.expect, self.stdin = name, args, expect, stdin
        self.stdout, self.message, self.no_output = stdout, message, no_output


def run_case(run, case, cwd, env):
    """(returncode, stdout, stderr) of one run, stdout as the case asks."""
    cmd = [run] + case.args
    if case.stdout is None:
        r = subprocess.run(cmd, input=case.stdin, capture_output=True, timeout=TIMEOUT, cwd=cwd, env=env)
        return r.returncode, r.stdout, r.stderr
    if case.stdout in ("full", "closed"):
        with open("/dev/full", "wb") as full:
            r = subprocess.run(cmd, input=case.stdin, stdout=full, stderr=subprocess.PIPE, timeout=TIMEOUT, cwd=cwd,
                               env=env, preexec_fn=(lambda: os.close(1)) if case.stdout == "closed" else None)
        return r.returncode, b"", r.stderr
    ignore = case.stdout == "pipe, SIGPIPE ignored"
    p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=cwd, env=env,
                         preexec_fn=(lambda: signal.signal(signal.SIGPIPE, signal.SIG_IGN)) if ignore else None)
    head = p.stdout.read(10)  # as `| head -c 10`
    p.stdout.close()
    try:
        err = p.stderr.read()
        p.wait(timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        p.kill()
        raise
    return p.returncode, head, err


def check(run, case, cwd):
    """None if the run behaved, else what went wrong."""
    env = dict(os.environ, OMP_NUM_THREADS="1")
    try:
        returncode, out, err = run_case(run, case, cwd, env)
    except subprocess.TimeoutExpired:
        return f"hung (no exit within {TIMEOUT} s)"
    r = subprocess.CompletedProcess(case.args, returncode, out, err)
    for mark in SANITIZER_MARKS:
        if mark in err:
            at = err.index(mark)
            return "sanitizer report: " + err[max(0, at - 200):at + 600].decode(errors="replace")
    if case.expect == QUIET_SIGPIPE:
        if r.returncode != -signal.SIGPIPE or err:
            return f"expected a quiet end by SIGPIPE, got exit {r.returncode}, stderr {err[:300]!r}"
        return None
    if r.returncode < 0:
        return f"killed by signal {-r.returncode}"
    if case.expect == OK and r.returncode != 0:
        return f"expected exit 0, got {r.returncode}: {err[:300].decode(errors='replace')}"
    if case.expect == ERROR and r.returncode == 0:
        return "expected an error, got exit 0"
    lines = err.split(b"\n")
    if r.returncode != 0 and not (len(lines) >= 2 and lines[-1] == b"" and lines[-2].startswith(b"run: ")):
        return f"exit {r.returncode}, but the last line of stderr is not a 'run: ' message ended by a newline: {err[-300:]!r}"
    if r.returncode != 0 and sum(line.startswith(b"run: ") for line in lines) != 1:
        return f"exit {r.returncode} with more than one 'run: ' line: {err[-300:]!r}"
    if case.message and case.message.encode() not in err:
        return f"the message does not say {case.message!r}: {err[-300:]!r}"
    if case.no_output and r.stdout:
        return f"wrote {len(r.stdout)} bytes to stdout before failing: the check comes after the work"
    return None


# ---- the files to break ----

def i32(data, at):
    return struct.unpack_from("<i", data, at)[0]


def layout(data):
    """(name, header words as (offset, size, kind)) for a valid model file."""
    if data[:4] == b"TSMF":
        n_layers = i32(data, 24)
        words = [(o, 4, "i32") for o in range(4, 72, 4)] + [(72, 4, "f32"), (76, 4, "f32")]
        words += [(o, 4, "i32") for o in range(80, 96, 4)] + [(o, 8, "u64") for o in range(96, 128, 8)]
        words += [(256 + 4 * l, 4, "i32") for l in range(n_layers)]
        kind, at = i32(data, 80), struct.unpack_from("<Q", data, 112)[0]
        if kind == 1:  # SentencePiece: max_token_length, then token 0's score and length
            words += [(at, 4, "i32"), (at + 4, 4, "f32"), (at + 8, 4, "i32")]
        elif kind == 2:  # GPT-2: n_tokens, n_merges, token 0's length, the first merge
            words += [(at, 4, "i32"), (at + 4, 4, "i32"), (at + 8, 4, "i32")]
            pos = at + 8
            for _ in range(i32(data, at)):
                pos += 4 + i32(data, pos)
            words += [(pos, 4, "i32"), (pos + 4, 4, "i32"), (pos + 8, 4, "i32")]
        return "TSMF", words
    if data[:4] == struct.pack("<I", 0x616B3432):  # "ak42"
        words = [(o, 4, "i32") for o in range(4, 36, 4)] + [(36, 1, "u8")]
        if i32(data, 4) == 2:
            words.append((37, 4, "i32"))
        return f"v{i32(data, 4)}", words
    return "legacy", [(o, 4, "i32") for o in range(0, 28, 4)]


INT_VALUES = [0, -1, 1, 2, 3, 255, 1 << 16, 1 << 20, 1 << 24, 0x7FFFFFFF, -0x80000000]
FLOAT_VALUES = [float("nan"), float("inf"), float("-inf"), 0.0, -0.0, 1e-45, 3e38, -1.0]


def u64_values(size):
    return [0, 1, 63, 64, size, size + 64, 1 << 63, (1 << 64) - 64, (1 << 64) - 1]


def truncation_lengths(n, header):
    picks = {0, 1, 2, 3, 4, 5, 7, 8, 27, 28, 29, 35, 36, 37, 40, 41, 63, 64, 65, 255, 256, 257, 259, 260, 263, 264,
             header - 1, header, header + 1, n // 4, n // 2, 3 * n // 4, n - 65, n - 64, n - 63, n - 5, n - 4, n - 3, n - 1}
    return sorted(x for x in picks if 0 <= x < n)


def mutations(data):
    """(label, bytes) for truncations, extensions, bit flips and absurd header values."""
    name, words = layout(data)
    header = max(o + s for o, s, _ in words if o < 512)
    for n in truncation_lengths(len(data), header):
        yield f"truncated to {n}", data[:n]
    yield "plus 1 byte", data + b"\0"
    yield "plus 64 bytes", data + bytes(64)
    yield "plus its first 100 bytes", data + data[:100]
    # every weight one value: NaN, infinities, a denormal (the forward pass and the sampler cope)
    start = {"legacy": 28, "TSMF": struct.unpack_from("<Q", data, 96)[0]}.get(name, 256)
    end = len(data) if name != "TSMF" else start + struct.unpack_from("<Q", data, 104)[0]
    for v in (float("nan"), float("inf"), float("-inf"), 1e-40):
        word = struct.pack("<f", v)
        yield f"weights all {v}", data[:start] + word * ((end - start) // 4) + data[start + (end - start) // 4 * 4:]
    for o, s, kind in words:
        for byte, bit in ((o, 0x01), (o, 0x10), (o + s - 1, 0x80), (o + s - 1, 0x40)):
            flipped = bytearray(data)
            flipped[byte] ^= bit
            yield f"bit 0x{bit:02x} of byte {byte} flipped", bytes(flipped)
        values = {"i32": [struct.pack("<i", v) for v in INT_VALUES],
                  "f32": [struct.pack("<f", v) for v in FLOAT_VALUES],
                  "u64": [struct.pack("<Q", v) for v in u64_values(len(data))],
                  "u8": [bytes([v]) for v in (0, 1, 2, 255)]}[kind]
        for v in values:
            yield f"{kind} at {o} = {v.hex()}", data[:o] + v + data[o + s:]


def tokenizer_mutations(data):
    n = len(data)
    for cut in sorted({0, 1, 3, 4, 5, 8, 11, 12, 13, 20, n // 2, n - 9, n - 8, n - 2, n - 1}):
        if 0 <= cut < n:
            yield f"truncated to {cut}", data[:cut]
    yield "plus 1 byte", data + b"x"
    yield "plus a whole record", data + struct.pack("<fi", 0.0, 3) + b"abc"
    # records: (offset of score, offset of len) of the first, second and the middle ones
    offsets, pos = [], 4
    while pos + 8 <= n:
        offsets.append(pos)
        pos += 8 + max(0, i32(data, pos + 4))
    for at in (offsets[0], offsets[1], offsets[len(offsets) // 2], offsets[-1]):
        for v in (float("nan"), float("inf"), float("-inf")):
            yield f"score at {at} = {v}", data[:at] + struct.pack("<f", v) + data[at + 4:]
        for v in (-1, 0, 7, 255, 1 << 20, 0x7FFFFFFF, -0x80000000):
            yield f"length at {at + 4} = {v}", data[:at + 4] + struct.pack("<i", v) + data[at + 8:]
    for v in (0, 0xFFFFFFFF):
        yield f"max_token_length = {v}", struct.pack("<I", v) + data[4:]
    for at in range(4, 68, 4):
        flipped = bytearray(data)
        flipped[at + 3] ^= 0x80
        yield f"top bit of byte {at + 3} flipped", bytes(flipped)


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: hostile.py ./run-asan")
    run = os.path.abspath(sys.argv[1])
    stories = os.path.join(SHARED, "models", "stories260K.bin")
    tok512 = os.path.join(SHARED, "models", "tok512.bin")
    have_shared = os.path.exists(stories) and os.path.exists(tok512)
    if not have_shared:
        print(f"hostile: {stories} not found: stories260K cases SKIPPED, synthetic files only")
    with tempfile.TemporaryDirectory() as tmp:
        counter = [0]

        def write(data, suffix=".bin"):
            counter[0] += 1
            path = os.path.join(tmp, f"f{counter[0]}{suffix}")
            with open(path, "wb") as f:
                f.write(data)
            return path

        ids_path = write(b"1 2 3\n", ".txt")
        out_path = os.path.join(tmp, "logits.f32")
        text_path = write(b"Once upon a time, there was a little girl named Lily.\n", ".txt")
        cases = []

        # model files: each layout, each mutation; run as far as the file allows
        sources = [(os.path.join(CORPUS, f), None) for f in sorted(os.listdir(CORPUS))]
        if have_shared:
            sources.append((stories, tok512))
        for path, tok in sources:
            data = open(path, "rb").read()
            embedded = data[:4] == b"TSMF" and i32(data, 80) != 0
            if tok:
                how = ["-z", tok, "-n", "6", "-s", "3", "-i", "Once upon"]
            elif embedded:
                how = ["-n", "6", "-s", "3", "-i", "Once upon"]
            else:
                how = ["-m", "logits", "--ids", ids_path, "--out", out_path]
            base = os.path.basename(path)
            cases.append(Case(f"{base}: as it is", [path] + how, OK))
            for label, bad in mutations(data):
                cases.append(Case(f"{base}: {label}", [write(bad)] + how, ANY))

        # tokenizers: tok512 for stories260K, the synthetic one for a TSMF model of its vocabulary
        synth_tok = open(os.path.join(ROOT, "fuzz", "corpus", "tokenizer", "synthetic"), "rb").read()[2:]
        tok_sources = [(synth_tok, os.path.join(CORPUS, "tsmf-tokenizer"), "synthetic tokenizer")]
        if have_shared:
            tok_sources.append((open(tok512, "rb").read(), stories, "tok512.bin"))
        for data, model, label in tok_sources:
            cases.append(Case(f"{label}: as it is", [model, "-z", write(data), "-n", "6", "-i", "Once"], OK))
            for what, bad in tokenizer_mutations(data):
                cases.append(Case(f"{label}: {what}", [model, "-z", write(bad), "-n", "6", "-i", "Once"], ANY))

        # flags, prompts and paths
        if have_shared:
            model = [stories, "-z", tok512]
        else:
            model = [os.path.join(CORPUS, "tsmf-tokenizer")]
        long_ids = write(" ".join(["5"] * 600).encode(), ".txt")
        empty = write(b"", ".txt")
        flag_cases = [
            ("huge -n", ["-n", "2147483647", "-t", "0"], OK),
            ("-n 0 (full context)", ["-n", "0", "-s", "5"], OK),
            ("tiny temperature", ["-t", "1e-45", "-n", "8"], OK),
            ("-p 0 and -p 1", ["-p", "0", "-p", "1", "-n", "8"], OK),
            ("seed 0 (time)", ["-s", "0", "-n", "8"], OK),
            ("empty prompt", ["-i", "", "-n", "8"], OK),
            ("invalid UTF-8 prompt", ["-i", b"\xff\xfe\xc3 \xe6\x97 \xf0\x9f".decode("latin-1"), "-n", "16"], OK),
            ("control characters", ["-i", "\x01\x02\t\x7f\x1b[31m", "-n", "16"], OK),
            ("tokenize 100 KB", ["-m", "tokenize", "-i", "Once upon a time. " * 5500], OK),
            ("chat, stdin closed", ["-m", "chat", "-n", "16"], OK),
            ("chat with prompts", ["-m", "chat", "-y", "be brief", "-i", "hello", "-n", "32"], OK),
            ("ppl", ["-m", "ppl", "-f", text_path], OK),
            ("ppl of an empty file", ["-m", "ppl", "-f", empty], ERROR),
            ("logits", ["-m", "logits", "--ids", ids_path, "--out", out_path], OK),
            ("-n -1", ["-n", "-1"], ERROR),
            ("-n 1e3", ["-n", "1e3"], ERROR),
            ("-n empty", ["-n", ""], ERROR),
            ("-n overflow", ["-n", "99999999999999999999"], ERROR),
            ("-t inf", ["-t", "inf"], ERROR),
            ("-t -1", ["-t", "-1"], ERROR),
            ("-t nan", ["-t", "nan"], ERROR),
            ("-t 1e39", ["-t", "1e39"], ERROR),
            ("-p nan", ["-p", "nan"], ERROR),
            ("-p 1.5", ["-p", "1.5"], ERROR),
            ("-p -0.1", ["-p", "-0.1"], ERROR),
            ("-s -5", ["-s", "-5"], ERROR),
            ("-s abc", ["-s", "abc"], ERROR),
            ("100 KB prompt", ["-i", "Once upon a time. " * 5500], ERROR),
            ("unknown mode", ["-m", "dance"], ERROR),
            ("-m without value", ["-m"], ERROR),
            ("-i without value", ["-i"], ERROR),
            ("-z without value", ["-n", "4", "-z"], ERROR),
            ("unknown option", ["-x", "1"], ERROR),
            ("stray argument", ["foo"], ERROR),
            ("logits without --ids", ["-m", "logits", "--out", out_path], ERROR),
            ("logits, missing ids file", ["-m", "logits", "--ids", os.path.join(tmp, "nope"), "--out", out_path], ERROR),
            ("logits, junk id", ["-m", "logits", "--ids", write(b"1 2 x", ".txt"), "--out", out_path], ERROR),
            ("logits, id out of range", ["-m", "logits", "--ids", write(b"1 99999", ".txt"), "--out", out_path], ERROR),
            ("logits, negative id", ["-m", "logits", "--ids", write(b"-1", ".txt"), "--out", out_path], ERROR),
            ("logits, id overflow", ["-m", "logits", "--ids", write(b"99999999999999999999999", ".txt"), "--out", out_path], ERROR),
            ("logits, more ids than the context", ["-m", "logits", "--ids", long_ids, "--out", out_path], ERROR),
            ("logits, no ids", ["-m", "logits", "--ids", empty, "--out", out_path], ERROR),
            ("logits, unwritable out", ["-m", "logits", "--ids", ids_path, "--out", os.path.join(tmp, "no", "dir")], ERROR),
            ("ppl without -f", ["-m", "ppl"], ERROR),
            ("ppl, missing file", ["-m", "ppl", "-f", os.path.join(tmp, "nope")], ERROR),
            ("ppl, a folder", ["-m", "ppl", "-f", tmp], ERROR),
        ]
        for name, args, expect in flag_cases:
            cases.append(Case(name, model + args, expect))
        # what the messages say: the real bounds, why, and before any work
        said = [
            ("-n 2147483648", ["-n", "2147483648"], "[0, 2147483647]"),
            ("-t 1e39 (finite)", ["-t", "1e39"], "finite number >= 0"),
            ("-t inf (finite)", ["-t", "inf"], "finite number >= 0"),
            ("ppl of nothing", ["-m", "ppl", "-f", empty], "no token to predict"),
            ("unknown option, the hint before", ["--bogus", "1"], "unknown option '--bogus' (run -h for help)"),
            ("a newline in a value, shown as ?", ["-m", "a\nb"], "unknown mode 'a?b'"),
        ]
        for name, args, message in said:
            cases.append(Case(name, model + args, ERROR, message=message))
        no_dir = os.path.join(tmp, "nonexistent", "x.html")
        cases.append(Case("--viz unwritable, found first", model + ["--viz", no_dir, "-n", "0", "-i", "Once"], ERROR,
                          message="cannot write", no_output=True))
        cases.append(Case("--out unwritable, found first", model + ["-m", "logits", "--ids", ids_path, "--out", no_dir],
                          ERROR, message="cannot write", no_output=True))
        cases.append(Case("model from a pipe", ["/dev/stdin"] + model[1:] + ["-n", "4"], ERROR,
                          stdin=open(model[0], "rb").read(), message="memory-mapped"))
        cases.append(Case("-h", ["-h"], OK))
        cases.append(Case("--help", ["--help"], OK))
        # standard output that cannot be written, in every mode that writes it
        writers = [("generate", ["-n", "0", "-s", "1"]), ("chat", ["-m", "chat", "-y", "x", "-i", "hello", "-n", "0", "-s", "1"]),
                   ("tokenize", ["-m", "tokenize", "-i", "Once upon a time. " * 5500]),  # more than a pipe holds
                   ("decode", ["-m", "decode", "--ids", ids_path]), ("inspect", ["-m", "inspect", "-i", "Once upon a time"]),
                   ("ppl", ["-m", "ppl", "-f", text_path])]
        for mode, args in writers:
            cases.append(Case(f"{mode} > /dev/full", model + args, ERROR, stdout="full", message="No space left on device"))
            cases.append(Case(f"{mode} >&-", model + args, ERROR, stdout="closed", message="Bad file descriptor"))
        # output that outlasts the reader: 100 KB of ids (more than a pipe holds), and
        # stories260K's 512 positions (the small synthetic model may finish first)
        for mode, args in [writers[2]] + ([writers[0]] if have_shared else []):
            cases.append(Case(f"{mode} | head -c 10, SIGPIPE ignored", model + args, ERROR, stdout="pipe, SIGPIPE ignored",
                              message="Broken pipe"))
            cases.append(Case(f"{mode} | head -c 10", model + args, QUIET_SIGPIPE, stdout="pipe"))
        # sparse files that claim terabytes (skipped where the file system cannot make them)
        sparse_tok, sparse_model = os.path.join(tmp, "sparse-tok.bin"), os.path.join(tmp, "sparse-model.bin")
        try:
            for path, head in ((sparse_tok, synth_tok[:4096]), (sparse_model, open(sources[-1][0], "rb").read(256))):
                with open(path, "wb") as f:
                    f.write(head)
                os.truncate(path, 2 << 40)
        except OSError as e:
            print(f"hostile: sparse 2 TiB files SKIPPED ({e})")
            sparse_tok = sparse_model = os.path.join(tmp, "nope")
        tok_cases = [("missing", os.path.join(tmp, "nope")), ("a folder", tmp), ("/dev/null", "/dev/null"),
                     ("/dev/zero", "/dev/zero"), ("empty", empty), ("a model file", os.path.join(CORPUS, "v1")),
                     ("of 2 TiB (sparse)", sparse_tok)]
        for name, path in tok_cases:
            cases.append(Case(f"tokenizer {name}", [model[0], "-z", path, "-n", "4"], ERROR))
        model_paths = [("missing", os.path.join(tmp, "nope")), ("a folder", tmp), ("/dev/null", "/dev/null"),
                       ("/dev/zero", "/dev/zero"), ("empty", empty), ("a text file", text_path),
                       ("a tokenizer", os.path.join(ROOT, "fuzz", "corpus", "tokenizer", "synthetic")),
                       ("of 2 TiB (sparse)", sparse_model)]
        for name, path in model_paths:
            cases.append(Case(f"model {name}", [path, "-n", "4"], ERROR))
        cases.append(Case("no arguments", [], ERROR))
        cases.append(Case("model without tokenizer, none in the folder", [os.path.join(CORPUS, "v1"), "-n", "4"], ERROR))

        # run them, two at a time per core
        workers = 2 * (os.cpu_count() or 1)
        failures, counts = [], {OK: 0, ERROR: 0, ANY: 0, QUIET_SIGPIPE: 0}
        with concurrent.futures.ThreadPoolExecutor(workers) as pool:
            for case, problem in zip(cases, pool.map(lambda c: check(run, c, tmp), cases)):
                counts[case.expect] += 1
                if problem:
                    failures.append(f"{case.name}: {problem}")
        for f in failures[:50]:
            print("hostile: FAIL", f)
        print(f"hostile: {len(cases)} runs of {os.path.basename(run)} ({counts[ANY]} broken files, "
              f"{counts[OK]} valid and {counts[ERROR]} invalid invocations): {len(failures)} failed")
        sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
