"""End-to-end checks: export.py writes a model, ./run computes with it, and the results
match what Hugging Face transformers and llama2.c computed (fixtures in $SHARED).

Run from the repository root after `make run`:
    SHARED=../shared python3 -m unittest tests/test_end_to_end.py
"""
import json
import os
import subprocess
import sys
import tempfile
import unittest

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED = os.path.abspath(os.environ.get("SHARED", os.path.join(ROOT, "..", "shared")))
RUN = os.path.join(ROOT, "run")
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

    def test_llama_gqa(self):
        folder = shared("fixtures", "hf", "llama-hf-gqa")
        need(self, folder)
        with tempfile.TemporaryDirectory() as tmp:
            out = os.path.join(tmp, "llama.bin")
            export("model", folder, out)
            self.check_reference(folder, out)

    def test_gptneo_safetensors(self):
        folder = shared("fixtures", "hf", "gptneo-tinystories-1m-shape")
        need(self, folder)
        with tempfile.TemporaryDirectory() as tmp:
            out = os.path.join(tmp, "neo.bin")
            export("model", folder, out)
            self.check_reference(folder, out)

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
