"""Looking inside, the MLP half (issue 14): -m dump's .npy arrays, ablation, -m neurons and
its page, --lens in -m inspect, each against tests/numpy_ref.py's float64 forward pass (an
implementation of its own), for stories260K (Llama) and the GPT-Neo fixture.

Run by `make test`. Needs SHARED (../shared) and numpy (make test PYTHON=/usr/bin/python3);
each test says why when it skips.
"""
import os
import re
import subprocess
import sys
import tempfile
import unittest

try:
    import numpy as np
    import numpy_ref
except ImportError:
    np = None

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED = os.environ.get("SHARED", os.path.join(ROOT, "..", "shared"))
MODEL = os.path.join(SHARED, "models", "stories260K.bin")
TOK = os.path.join(SHARED, "models", "tok512.bin")
NEO = os.path.join(SHARED, "fixtures", "hf", "gptneo-tinystories-1m-shape")
GPT2 = [os.path.join(SHARED, "models", "gpt2-vocab.json"), os.path.join(SHARED, "models", "gpt2-merges.txt")]
RUN = os.path.join(ROOT, "run")
TEXT = ("Once upon a time, there was a little girl named Lily. She loved to play outside in the park. "
        "One day, she saw a big red ball.")
TOL, LENS_TOL = 2e-4, 1e-3  # max |difference| over the largest |value| of the array (at least 1)


def run(*args, model=MODEL, tok=TOK, ok=True):
    cmd = [RUN, model] + (["-z", tok] if tok else []) + list(args)
    p = subprocess.run(cmd, capture_output=True, timeout=300)
    if ok and p.returncode != 0:
        raise AssertionError("%s failed: %s" % (" ".join(cmd), p.stderr.decode(errors="replace")))
    return p


def need(test, *paths):
    if np is None:
        test.skipTest("numpy is not installed for this python (make test PYTHON=/usr/bin/python3)")
    for p in paths:
        if not os.path.exists(p):
            test.skipTest("no %s: set SHARED to the shared test data" % p)


class Dumps(unittest.TestCase):
    """The arrays of -m dump against numpy_ref, with and without parts switched off."""

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp()

    def dump(self, *args, model=MODEL, tok=TOK):
        out = tempfile.mkdtemp(dir=self.tmp)
        run("-m", "dump", "--out", out, "--lens", *args, model=model, tok=tok)
        return {n: np.load(os.path.join(out, n + ".npy")) for n in ("tokens", "resid", "mlp", "attn", "logits", "lens")}

    def agree(self, got, want, what):
        for name in ("resid", "mlp", "attn", "logits"):
            g, w = got[name], want[name]
            self.assertEqual(g.shape, w.shape, "%s %s" % (what, name))
            self.assertEqual(g.dtype, np.float32)
            err = np.abs(g - w).max() / max(1.0, np.abs(w).max())
            self.assertLessEqual(err, TOL, "%s %s: %.2e" % (what, name, err))
        lens = numpy_ref.lens(self.ref_model, want["resid"][1:])
        err = np.abs(got["lens"] - lens).max() / max(1.0, np.abs(lens).max())
        self.assertLessEqual(err, LENS_TOL, "%s lens: %.2e" % (what, err))
        self.assertTrue(np.array_equal(got["lens"][-1], got["logits"]), "the last layer's lens is the logits, bit for bit")

    def check_model(self, args, model, tok, ablations):
        base = self.dump(*args, model=model, tok=tok)
        ids = base["tokens"]
        self.assertEqual(ids.dtype, np.int32)
        self.agree(base, numpy_ref.forward(self.ref_model, ids), "no ablation")
        flags = []
        for heads, neurons in ablations:
            if heads:
                flags += ["--ablate-head", ",".join("%d.%d" % p for p in heads)]
            if neurons:
                flags += ["--ablate-neuron", ",".join("%d.%d" % p for p in neurons)]
            got = self.dump(*(list(args) + flags), model=model, tok=tok)
            want = numpy_ref.forward(self.ref_model, ids, heads, neurons)
            self.agree(got, want, "ablating %s %s" % (heads, neurons))
            for l, j in neurons:
                self.assertTrue((got["mlp"][l, :, j] == 0).all())
            self.assertGreater(np.abs(got["logits"] - base["logits"]).max(), 1e-3, "the ablation changes the logits")
            flags = []
        return base

    def test_stories260k(self):
        need(self, MODEL, TOK)
        self.ref_model = numpy_ref.llama2c(MODEL)
        base = self.check_model(["-i", TEXT], MODEL, TOK, [([(1, 3), (4, 0)], []), ([], [(0, 5), (2, 100)]),
                                                           ([(0, 7)], [(4, 171), (3, 0)])])
        ids = run("-m", "tokenize", "-i", TEXT).stdout.split()
        self.assertEqual(list(base["tokens"]), [1] + [int(t) for t in ids], "BOS, then the text's tokens")
        L, T = 5, len(base["tokens"])
        self.assertEqual(base["resid"].shape, (L + 1, T, 64))
        self.assertEqual(base["attn"].shape, (L, 8, T, T))
        self.assertEqual(base["lens"].shape, (L, T, 512))

    def test_gptneo(self):
        need(self, NEO, *GPT2)
        model = os.path.join(self.tmp, "neo.bin")
        subprocess.run([sys.executable, os.path.join(ROOT, "export.py"), "model", NEO, model, "--tokenizer", GPT2[0],
                        "--merges", GPT2[1]], check=True, capture_output=True)
        self.ref_model = numpy_ref.gptneo(NEO)
        ids_path = os.path.join(self.tmp, "ids.txt")
        ids = [50256, 7454, 2402, 257, 640, 11, 612, 373, 257, 1310, 2576, 3706, 20037, 13] * 20  # 280: past the window
        with open(ids_path, "w") as f:
            f.write(" ".join(map(str, ids)))
        base = self.check_model(["--ids", ids_path], model, None, [([(0, 3), (7, 15)], [(1, 10), (6, 200)])])
        self.assertEqual(list(base["tokens"]), ids, "--ids as given")
        local = base["attn"][1, :, 279, :]
        self.assertTrue((local[:, :279 - 255] == 0).all(), "local layers see the last 256 positions")


class AblationInEveryMode(unittest.TestCase):
    """--ablate-head and --ablate-neuron reach every mode through the one session opener:
    -m logits gives the dump's ablated logits bit for bit, -m ppl numpy_ref's ablated loss,
    generate and inspect a different story and table than without."""

    def test_modes(self):
        need(self, MODEL, TOK)
        tmp = tempfile.mkdtemp()
        ablate = ["--ablate-head", "1.3,4.0", "--ablate-neuron", "0.5"]
        out = os.path.join(tmp, "dump")
        run("-m", "dump", "-i", TEXT, "--out", out, *ablate)
        dumped = np.load(os.path.join(out, "logits.npy"))
        ids_path, logits_path = os.path.join(tmp, "ids.txt"), os.path.join(tmp, "logits.f32")
        ids = np.load(os.path.join(out, "tokens.npy"))
        with open(ids_path, "w") as f:
            f.write(" ".join(map(str, ids)))
        run("-m", "logits", "--ids", ids_path, "--out", logits_path, *ablate)
        self.assertEqual(np.fromfile(logits_path, "<f4").tobytes(), dumped.astype("<f4").tobytes())
        text_path = os.path.join(tmp, "text.txt")
        with open(text_path, "w") as f:
            f.write(TEXT)
        loss = float(re.search(r"loss: (\S+)", run("-m", "ppl", "-f", text_path, *ablate).stdout.decode()).group(1))
        model = numpy_ref.llama2c(MODEL)
        logits = numpy_ref.forward(model, ids, [(1, 3), (4, 0)], [(0, 5)])["logits"]
        mx = logits.max(-1, keepdims=True)
        logp = logits - mx - np.log(np.exp(logits - mx).sum(-1, keepdims=True))
        want = -logp[np.arange(len(ids) - 1), ids[1:]].mean()
        self.assertAlmostEqual(loss, want, delta=1e-5)
        plain = float(re.search(r"loss: (\S+)", run("-m", "ppl", "-f", text_path).stdout.decode()).group(1))
        self.assertNotAlmostEqual(loss, plain, delta=1e-3)
        for args in (["-t", "0", "-n", "120", "-i", "Once upon a time"], ["-m", "inspect", "-i", TEXT]):
            self.assertNotEqual(run(*args).stdout, run(*args, "--ablate-head", "0.0,1.3,2.5,4.0").stdout, args)


class Neurons(unittest.TestCase):
    def test_ranks_against_numpy(self):
        need(self, MODEL, TOK)
        with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as f:
            f.write(TEXT * 25)  # 3 windows of the 512 positions
        try:
            p = run("-m", "neurons", "-f", f.name, "--top", "3", "--ablate-neuron", "1.7")
            ids = [1] + [int(t) for t in run("-m", "tokenize", "-i", TEXT * 25).stdout.split()]
        finally:
            os.unlink(f.name)
        lines = p.stdout.decode().splitlines()
        self.assertEqual(lines[0], "# layer\tneuron\trank\tposition\tactivation\ttoken")
        model = numpy_ref.llama2c(MODEL)
        mlp = np.concatenate([numpy_ref.forward(model, ids[s:s + 512], ablate_neurons=[(1, 7)])["mlp"]
                              for s in range(0, len(ids), 512)], axis=1)  # (L, T, F), windows run from position 0
        self.assertGreater(len(ids), 1024)
        rows = [l.split("\t") for l in lines[1:]]
        self.assertEqual(len(rows), 5 * 172 * 3)
        checked = 0
        for layer, neuron, rank, pos, value, token in rows:
            l, j, r, t = int(layer), int(neuron), int(rank), int(pos)
            col = mlp[l, :, j]
            self.assertLessEqual(abs(float(value) - col[t]), TOL * max(1, abs(col).max()))
            want = np.sort(col)[::-1][r]
            self.assertLessEqual(abs(col[t] - want), 1e-5 + TOL * max(1, abs(col).max()), "layer %d neuron %d rank %d" % (l, j, r))
            gap = np.sort(np.abs(col - want))[1] if len(col) > 1 else 1
            if gap > 1e-3 and col[t] != 0:
                self.assertEqual(t, int(np.argmin(np.abs(col - want))))
                checked += 1
            self.assertTrue(token.startswith('"') and token.endswith('"'))
        self.assertGreater(checked, 1000, "positions compared where the ranking is clear")
        self.assertTrue(all(r[1] != "7" or r[0] != "1" or float(r[4]) == 0 for r in rows), "the ablated neuron is 0")

    def test_page(self):
        need(self, MODEL, TOK)
        page = os.path.join(tempfile.mkdtemp(), "neurons.html")
        run("-m", "neurons", "-i", TEXT, "--viz", page)
        with open(page, encoding="utf-8") as f:
            html = f.read()
        self.assertNotRegex(html, r"(?i)<script|https?://|<link")
        for l in range(5):
            self.assertIn('<h2 id="L%d">' % l, html)
        anchors = re.findall(r'id="L(\d)N(\d+)"', html)
        self.assertEqual(len(anchors), 5 * 64)
        for l, j in anchors[:20]:
            self.assertIn('href="#L%sN%s"' % (l, j), html)
        self.assertEqual(html.count('<div class="ctx">'), 5 * 64 * 10, "10 contexts of each neuron shown")
        self.assertEqual(html.count("<mark>"), 5 * 64 * 10 + 1, "each marks its token (and the note says so)")
        try:
            import test_look_inside
        except ImportError:
            self.skipTest("test_look_inside not importable")
        if not test_look_inside.chromium():
            self.skipTest("no chromium")
        png = page + ".png"
        test_look_inside.screenshot(page, png)
        self.assertTrue(os.path.exists(png), "chromium wrote no screenshot")
        width, height, rows = test_look_inside.read_png(png)
        self.assertEqual((width, height), (1400, 1000))
        pixels = [px for row in rows[::4] for px in row[::4]]
        dark = sum(1 for r, g, b in pixels if r + g + b < 300)              # text
        marked = sum(1 for r, g, b in pixels if r > 230 and 180 < g < 230 and b < 140)  # the <mark>ed tokens
        self.assertGreater(len(set(pixels)), 50, "a page, not a blank")
        self.assertGreater(dark, 1000, "text is drawn")
        self.assertGreater(marked, 100, "the tokens a neuron fires on are marked")


class Lens(unittest.TestCase):
    def test_inspect_lens(self):
        need(self, MODEL, TOK)
        out = run("-m", "inspect", "-i", TEXT, "--lens").stdout.decode().splitlines()
        self.assertRegex(out[0], r"^ pos +token +p +L0 +L1 +L2 +L3 +L4 +top 5")
        model = numpy_ref.llama2c(MODEL)
        ids = [1] + [int(t) for t in run("-m", "tokenize", "-i", TEXT).stdout.split()]
        fw = numpy_ref.forward(model, ids)
        lens = numpy_ref.lens(model, fw["resid"][1:])  # (L, T, V)
        probs = np.exp(lens - lens.max(-1, keepdims=True))
        probs /= probs.sum(-1, keepdims=True)
        cell = r'"((?:[^"\\]|\\.)*)" (\d\.\d\d)'
        for t, line in enumerate(out[1:]):
            cells = re.findall(cell, line)
            self.assertGreaterEqual(len(cells), 5 + 5)
            for l in range(5):
                p = float(cells[l][1])
                self.assertAlmostEqual(p, probs[l, t].max(), delta=0.006)
            self.assertEqual(cells[4][0], cells[5][0], "the last layer's lens token is the top next token")


class Errors(unittest.TestCase):
    def test_refused(self):
        need(self, MODEL, TOK)
        cases = [
            (["-m", "dump", "-i", "x", "--out", "/tmp/x", "--ablate-head", "1.x"], "bad item '1.x' in --ablate-head"),
            (["-m", "dump", "-i", "x", "--out", "/tmp/x", "--ablate-head", "-1.0"], "bad item '-1.0'"),
            (["--ablate-neuron", "1.2,3"], "bad item '3' in --ablate-neuron"),
            (["--ablate-neuron", "1.2,"], "bad item '' in --ablate-neuron"),
            (["--ablate-head", "9.0", "-n", "4"], "--ablate-head 9.0: layer 9 is out of range: the model has layers 0..4"),
            (["--ablate-head", "1.8", "-n", "4"], "--ablate-head 1.8: head 8 of layer 1 is out of range: the model has heads 0..7"),
            (["-m", "inspect", "-i", "Hi", "--ablate-neuron", "0.172"], "neuron 172 of layer 0 is out of range"),
            (["-m", "dump", "-i", "Once"], "-m dump needs --out DIR"),
            (["-m", "dump", "--out", "/tmp/x"], "-m dump needs one of -i TEXT, -f FILE or --ids FILE"),
            (["-m", "dump", "--out", "/tmp/x", "-i", "Once " * 600], "more than the model's context of 512"),
            (["--lens", "-i", "Once"], "--lens works with -m dump and -m inspect only"),
            (["-m", "neurons", "-i", "Once", "--top", "0"], "bad count '0' for --top"),
            (["--top", "3"], "--top works with -m neurons only"),
            (["-m", "neurons"], "-m neurons needs one of -f FILE or -i TEXT"),
        ]
        for args, message in cases:
            p = run(*args, ok=False)
            err = p.stderr.decode(errors="replace").strip().splitlines()
            self.assertNotEqual(p.returncode, 0, args)
            self.assertIn(message, err[-1] if err else "", args)

    def test_dump_past_memory(self):
        """A dump whose attention alone (64 layers x 32 heads x 8192^2 floats, 550 GB) cannot be
        held is refused before any work, with the sizes."""
        if np is None:
            self.skipTest("numpy is not installed for this python (make test PYTHON=/usr/bin/python3)")
        tmp = tempfile.mkdtemp()
        model, ids = os.path.join(tmp, "wide.bin"), os.path.join(tmp, "ids.txt")
        dim, hidden, layers, heads, vocab, seq = 64, 64, 64, 32, 32, 8192
        n = vocab * dim + layers * (2 * dim + 4 * dim * dim + 3 * hidden * dim) + dim + seq * (dim // heads)
        with open(model, "wb") as f:
            f.write(np.array([dim, hidden, layers, heads, heads, vocab, seq], "<i4").tobytes())
            f.write((np.random.default_rng(1).standard_normal(n) * 0.02).astype("<f4").tobytes())
        with open(ids, "w") as f:
            f.write(" ".join(["1"] * seq))
        p = subprocess.run([RUN, model, "-m", "dump", "--ids", ids, "--out", os.path.join(tmp, "out")], capture_output=True, timeout=60)
        self.assertNotEqual(p.returncode, 0)
        self.assertRegex(p.stderr.decode().strip().splitlines()[-1],
                         r"a dump of 8192 tokens needs \d+ MB of memory, more than this machine's \d+ MB: dump a shorter text")
        self.assertFalse(os.path.exists(os.path.join(tmp, "out", "attn.npy")))


if __name__ == "__main__":
    unittest.main()
