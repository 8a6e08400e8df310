"""End-to-end checks: export.py writes a model, ./run computes with it, and the results
match what Hugging Face transformers and llama2.c computed (fixtures in $SHARED).

Run from the repository root after `make run`:
    SHARED=../shared python3 -m unittest tests/test_end_to_end.py
"""
import json
import os
import re
import subprocess
import sys
import tempfile
import unittest

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED = os.path.abspath(os.environ.get("SHARED", os.path.join(ROOT, "..", "shared")))
RUN = os.environ.get("RUN_BINARY") or os.path.join(ROOT, "run")  # $RUN_BINARY: another build (an aarch64 one under qemu)
EXPORT = os.path.join(ROOT, "export.py")
TOLERANCE = 1e-4  # absolute, on logits, float32 against transformers' float32


def shared(*parts):
    return os.path.join(SHARED, *parts)


def need(testcase, *paths):
    for p in paths:
        if not os.path.exists(p):
            testcase.skipTest(f"{p} not found (set SHARED to the shared data folder)")


def export(*args):
    r = subprocess.run([sys.executable, EXPORT, *args], capture_output=True, text=True)
    if r.returncode != 0:
        raise AssertionError(f"export.py {' '.join(args)} failed: {r.stderr}")


def run(*args, check=True):
    r = subprocess.run([RUN, *args], capture_output=True)
    if check and r.returncode != 0:
        raise AssertionError(f"run {' '.join(args)} failed ({r.returncode}): {r.stderr.decode()}")
    return r


def expected_kernels():
    """The kernel path ./run names: $EXPECT_KERNELS for another build, else the one that
    -march=native picks on this CPU (run.c's dispatch at its top)."""
    if os.environ.get("EXPECT_KERNELS"):
        return os.environ["EXPECT_KERNELS"]
    flags = set()
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith(("flags", "Features")):
                flags = set(line.split(":", 1)[1].split())
                break
    if {"avx512f", "avx512bw", "avx512vl", "avx512_vnni"} <= flags:
        return "avx512"
    if {"avx2", "fma"} <= flags:
        return "avx2"
    if "asimd" in flags:
        return "neon (dotprod)" if "asimddp" in flags else "neon"
    return "plain"


def logits_for(model, ids, vocab, tmp):
    ids_path, out_path = os.path.join(tmp, "ids.txt"), os.path.join(tmp, "logits.f32")
    with open(ids_path, "w") as f:
        f.write(" ".join(map(str, ids)))
    run(model, "-m", "logits", "--ids", ids_path, "--out", out_path)
    got = np.fromfile(out_path, dtype="<f4")
    assert got.size == len(ids) * vocab, (got.size, len(ids), vocab)
    return got.reshape(len(ids), vocab)


class HuggingFaceLogits(unittest.TestCase):
    """Logits of exported HF checkpoints against transformers' own."""

    def check_reference(self, folder, model):
        ref = json.load(open(os.path.join(folder, "reference.json")))
        vocab = ref["vocab_size"]
        with tempfile.TemporaryDirectory() as tmp:
            got = logits_for(model, ref["input_ids"], vocab, tmp)
            want = np.fromfile(os.path.join(folder, "logits.f32"), dtype="<f4").reshape(-1, vocab)
            rows = got[ref["logit_positions"]]
            diff = np.abs(rows - want).max()
            self.assertLess(diff, TOLERANCE, f"max |logit difference| {diff}")
            top1 = np.array([t[0] for t in ref["top5"]])
            np.testing.assert_array_equal(got.argmax(axis=1), top1)
            # greedy: feeding prompt + the reference greedy tokens, each is the argmax
            seq = ref["greedy_prompt"] + ref["greedy_output"]
            g = logits_for(model, seq, vocab, tmp)
            n = len(ref["greedy_prompt"])
            np.testing.assert_array_equal(g[n - 1:-1].argmax(axis=1), ref["greedy_output"])

    def export_and_check(self, name):
        folder = shared("fixtures", "hf", name)
        need(self, folder)
        with tempfile.TemporaryDirectory() as tmp:
            out = os.path.join(tmp, "model.bin")
            export("model", folder, out)
            self.check_reference(folder, out)

    def test_llama_gqa(self):
        self.export_and_check("llama-hf-gqa")

    def test_gptneo_safetensors(self):
        self.export_and_check("gptneo-tinystories-1m-shape")

    def test_gptneo_pytorch_bin_alone(self):
        folder = shared("fixtures", "hf", "gptneo-tinystories-1m-shape")
        need(self, folder)
        with tempfile.TemporaryDirectory() as tmp:
            only = os.path.join(tmp, "ckpt")
            os.mkdir(only)
            for f in ("config.json", "pytorch_model.bin"):
                os.symlink(os.path.join(folder, f), os.path.join(only, f))
            out = os.path.join(tmp, "neo.bin")
            export("model", only, out)
            self.check_reference(folder, out)


class GPT2Tokenizer(unittest.TestCase):
    """The GPT-Neo model with GPT-2's tokenizer embedded, against Hugging Face tokenizers."""

    @classmethod
    def setUpClass(cls):
        folder = shared("fixtures", "hf", "gptneo-tinystories-1m-shape")
        vocab, merges = shared("models", "gpt2-vocab.json"), shared("models", "gpt2-merges.txt")
        cls.tmp = tempfile.TemporaryDirectory()
        cls.model = None
        if all(os.path.exists(p) for p in (folder, vocab, merges)):
            cls.model = os.path.join(cls.tmp.name, "neo.bin")
            export("model", folder, cls.model, "--tokenizer", vocab, "--merges", merges)

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def setUp(self):
        if self.model is None:
            self.skipTest(f"GPT-Neo fixture or GPT-2 vocabulary not found under {SHARED}")

    def test_reference_ids_and_round_trip(self):
        cases = json.load(open(shared("fixtures", "tokenizer-reference.json")))["gpt2"]
        self.assertEqual(len(cases), 26)
        for case in cases:
            r = run(self.model, "-m", "tokenize", "-i", case["text"])
            got = [int(x) for x in r.stdout.split()]
            self.assertEqual(got, case["ids"], repr(case["text"]))
            if not got:
                continue
            ids_path = os.path.join(self.tmp.name, "ids.txt")
            with open(ids_path, "w") as f:
                f.write(" ".join(map(str, got)))
            back = run(self.model, "-m", "decode", "--ids", ids_path).stdout
            self.assertEqual(back, case["text"].encode("utf-8"), repr(case["text"]))

    def decode(self, ids):
        ids_path = os.path.join(self.tmp.name, "decode.txt")
        with open(ids_path, "w") as f:
            f.write(" ".join(map(str, ids)))
        return run(self.model, "-m", "decode", "--ids", ids_path).stdout

    def test_greedy_story_is_transformers_greedy(self):
        """-i PROMPT -t 0 prints the prompt, then transformers' greedy tokens."""
        ref = json.load(open(shared("fixtures", "hf", "gptneo-tinystories-1m-shape", "reference.json")))
        prompt = self.decode(ref["greedy_prompt"])
        # the prompt text encodes back to the same ids, so the run starts from them
        ids = [int(x) for x in run(self.model, "-m", "tokenize", "-i", prompt).stdout.split()]
        self.assertEqual(ids, ref["greedy_prompt"])
        # -n counts positions run; the last sampled token needs no position of its own
        steps = len(ref["greedy_prompt"]) + len(ref["greedy_output"]) - 1
        r = run(self.model, "-i", prompt, "-t", "0", "-n", str(steps))
        self.assertEqual(r.stdout, self.decode(ref["greedy_prompt"] + ref["greedy_output"]) + b"\n")
        self.assertIn(b"achieved tok/s:", r.stderr)
        kernels = re.search(rb"^kernels: (.+), threads: (\d+)$", r.stderr, re.M)
        self.assertIsNotNone(kernels, r.stderr)
        self.assertEqual(kernels.group(1).decode(), expected_kernels())

    def test_full_context_run(self):
        """-n 0 runs all 2048 positions (past the 256 local window) without error."""
        r = run(self.model, "-i", "Once upon a time", "-t", "0.8", "-s", "5", "-n", "0")
        self.assertTrue(r.stdout.startswith(b"Once upon a time"))
        self.assertIn(b"achieved tok/s:", r.stderr)
        # this seed never samples <|endoftext|>: 4 prompt tokens at positions 0..3, then a
        # token sampled at each of positions 3..2047
        stats = re.search(rb"prompt: (\d+) tokens.*generated: (\d+) tokens", r.stderr)
        self.assertEqual((int(stats.group(1)), int(stats.group(2))), (4, 2045), r.stderr)

    def test_empty_prompt_starts_from_endoftext(self):
        r = run(self.model, "-t", "0", "-n", "5")
        self.assertEqual(r.returncode, 0)
        g = logits_for(self.model, [50256], 50257, self.tmp.name)
        first = int(g[0].argmax())
        ids_path = os.path.join(self.tmp.name, "first.txt")
        with open(ids_path, "w") as f:
            f.write(str(first))
        piece = run(self.model, "-m", "decode", "--ids", ids_path).stdout
        self.assertTrue(r.stdout.startswith(piece), (r.stdout, piece))


class Stories260K(unittest.TestCase):
    """The llama2.c model converted to our format."""

    def setUp(self):
        self.model = shared("models", "stories260K.bin")
        self.tok = shared("models", "tok512.bin")
        need(self, self.model, self.tok)
        self.cases = json.load(open(shared("fixtures", "stories260K-llama2c-outputs.json")))["cases"]

    def test_embedded_tokenizer_prints_reference_story(self):
        with tempfile.TemporaryDirectory() as tmp:
            out = os.path.join(tmp, "s.bin")
            export("model", self.model, out, "--tokenizer", self.tok)
            for case in self.cases:  # no -z: the tokenizer comes from the file
                r = run(out, *case["args"])
                self.assertEqual(r.stdout.decode("utf-8"), case["stdout"], case["args"])

    def test_tiny_temperatures_sample_as_greedy(self):
        """-t so small that logit / t overflows: greedy's story, not NaN's token 0 (both model kinds)."""
        neo = shared("fixtures", "hf", "gptneo-tinystories-1m-shape")
        need(self, neo)
        with tempfile.TemporaryDirectory() as tmp:
            neo_bin = os.path.join(tmp, "neo.bin")
            export("model", neo, neo_bin, "--tokenizer", shared("models", "gpt2-vocab.json"),
                   "--merges", shared("models", "gpt2-merges.txt"))
            for model in ([self.model, "-z", self.tok], [neo_bin]):
                greedy = run(*model, "-t", "0", "-n", "40", "-i", "Once upon a time").stdout
                for t in ("1e-38", "1e-45", "1.4e-45"):
                    r = run(*model, "-t", t, "-n", "40", "-s", "7", "-i", "Once upon a time")
                    self.assertEqual(r.stdout, greedy, (model[0], t))

    def test_q8_0_agrees_with_f32(self):
        with tempfile.TemporaryDirectory() as tmp:
            f32, q8 = os.path.join(tmp, "f32.bin"), os.path.join(tmp, "q8.bin")
            export("model", self.model, f32, "--tokenizer", self.tok)
            export("model", self.model, q8, "--tokenizer", self.tok, "--dtype", "q8_0")
            ratio = os.path.getsize(q8) / os.path.getsize(f32)
            self.assertLess(ratio, 0.33, f"q8_0 file is {ratio:.2f} of float32")
            self.assertGreater(ratio, 0.2, f"q8_0 file is {ratio:.2f} of float32")
            # the float32 greedy story, as token ids
            story = self.cases[0]["stdout"].rstrip("\n")
            ids_r = run(f32, "-m", "tokenize", "-i", story)
            ids = [1] + [int(x) for x in ids_r.stdout.split()]
            a = logits_for(f32, ids[:512], 512, tmp).argmax(axis=1)
            b = logits_for(q8, ids[:512], 512, tmp).argmax(axis=1)
            agree = (a == b).mean()
            self.assertGreaterEqual(agree, 0.95, f"q8_0 argmax agrees at {agree:.3f} of positions")


if __name__ == "__main__":
    unittest.main()
