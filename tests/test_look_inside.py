"""Embedding and looking inside: examples/story against ./run (and valgrind), -m inspect,
--viz (the HTML, and a screenshot in headless Chromium), -m ppl against an independent
numpy implementation of the Llama forward pass.

Run by `make test` (which builds ./run and examples/story first). Needs SHARED (../shared):
stories260K.bin, tok512.bin, the TinyStories text; each test says why when it skips.
The numpy check needs numpy (make test PYTHON=/usr/bin/python3), the screenshot chromium.
"""
import html as htmlmod
import os
import re
import shutil
import struct
import subprocess
import tempfile
import unittest
import zlib

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED = os.environ.get("SHARED", os.path.join(ROOT, "..", "shared"))
MODEL = os.path.join(SHARED, "models", "stories260K.bin")
TOK = os.path.join(SHARED, "models", "tok512.bin")
TEXT = os.path.join(SHARED, "data", "tinystories-valid-head.txt")
RUN = os.path.join(ROOT, "run")
STORY = os.path.join(ROOT, "examples", "story")
HAVE_SHARED = os.path.exists(MODEL) and os.path.exists(TOK)
NEED_SHARED = unittest.skipUnless(HAVE_SHARED, "no %s: set SHARED to the shared test data" % MODEL)


def run(*args, **kw):
    """./run stories260K.bin -z tok512.bin ARGS: (stdout bytes, stderr text); fails on error."""
    p = subprocess.run([RUN, MODEL, "-z", TOK] + list(args), capture_output=True, timeout=kw.get("timeout", 300))
    if p.returncode != 0:
        raise AssertionError("./run %s failed: %s" % (" ".join(args), p.stderr.decode(errors="replace")))
    return p.stdout, p.stderr.decode(errors="replace")


def unescape(s):
    """Undoes inspect's C-style escapes: the token's bytes."""
    out, i = bytearray(), 0
    while i < len(s):
        if s[i] == "\\":
            c = s[i + 1]
            if c == "x":
                out.append(int(s[i + 2:i + 4], 16))
                i += 4
                continue
            out += {"n": b"\n", "t": b"\t", '"': b'"', "\\": b"\\"}[c]
            i += 2
        else:
            out += s[i].encode()
            i += 1
    return bytes(out)


TOKEN = r'"((?:[^"\\]|\\.)*)"'


def parse_inspect(stdout):
    lines = stdout.decode().splitlines()
    rows = []
    for line in lines[1:]:
        m = re.match(r"^\s*(\d+)  " + TOKEN + r"\s+(-|\d\.\d{4})  (.*)$", line)
        if not m:
            raise AssertionError("inspect line does not parse: %r" % line)
        cands = [(unescape(t), float(p)) for t, p in re.findall(TOKEN + r" (\d\.\d{4})", m.group(4))]
        rows.append((int(m.group(1)), unescape(m.group(2)), None if m.group(3) == "-" else float(m.group(3)), cands))
    return lines[0], rows


class TestReadme(unittest.TestCase):
    def test_hello_is_the_readme_example(self):
        """The README shows examples/hello.c as it is."""
        hello = open(os.path.join(ROOT, "examples", "hello.c")).read()
        docs = [os.path.join(ROOT, "README.md")]
        found = [d for d in docs if os.path.exists(d) and "```c\n" + hello + "```" in open(d).read()]
        self.assertTrue(found, "examples/hello.c, verbatim in a ```c block of README.md")


@NEED_SHARED
class TestStoryExample(unittest.TestCase):
    """examples/story uses the library a token at a time; its stdout must be ./run's, byte for byte."""

    PROMPTS = ["Once upon a time", "Lily and Tom went to the park with their dog"]

    def test_same_bytes_as_run(self):
        for prompt in self.PROMPTS:
            want, _ = run("-t", "0", "-n", "256", "-i", prompt)
            got = subprocess.run([STORY, MODEL, TOK, prompt], capture_output=True, timeout=120)
            self.assertEqual(got.returncode, 0, got.stderr)
            self.assertGreater(len(want), 400, "a 256-step story")
            self.assertEqual(got.stdout, want, "examples/story vs ./run for %r" % prompt)

    def test_hello(self):
        """examples/hello, the README's example, is ./run with its settings."""
        want, _ = run("-t", "0.8", "-p", "0.9", "-s", "42", "-n", "256", "-i", self.PROMPTS[0])
        got = subprocess.run([os.path.join(ROOT, "examples", "hello"), MODEL, TOK, self.PROMPTS[0]], capture_output=True,
                             timeout=120)
        self.assertEqual(got.returncode, 0, got.stderr)
        self.assertEqual(got.stdout, want)

    def test_errors(self):
        p = subprocess.run([STORY, "/nonexistent.bin", TOK, "x"], capture_output=True, timeout=60)
        self.assertEqual(p.returncode, 1)
        self.assertIn(b"cannot open /nonexistent.bin", p.stderr)
        p = subprocess.run([STORY, MODEL], capture_output=True, timeout=60)
        self.assertEqual(p.returncode, 1)
        self.assertIn(b"usage", p.stderr)

    def test_valgrind_clean(self):
        if not shutil.which("valgrind"):
            self.skipTest("valgrind is not installed")
        p = subprocess.run(["valgrind", "--leak-check=full", "--error-exitcode=99", STORY, MODEL, TOK, self.PROMPTS[0]],
                           capture_output=True, timeout=600)
        log = p.stderr.decode(errors="replace")
        self.assertEqual(p.returncode, 0, log[-3000:])
        self.assertIn("ERROR SUMMARY: 0 errors", log)
        self.assertIn("All heap blocks were freed -- no leaks are possible", log)


@NEED_SHARED
class TestHeadsExample(unittest.TestCase):
    """examples/heads reads the recorded attention through the API: one row per head."""

    def test_table(self):
        if not os.path.exists(TEXT):
            self.skipTest("no %s" % TEXT)
        p = subprocess.run([os.path.join(ROOT, "examples", "heads"), MODEL, TOK, TEXT], capture_output=True, timeout=120)
        self.assertEqual(p.returncode, 0, p.stderr)
        lines = p.stdout.decode().splitlines()
        self.assertTrue(lines[0].startswith("512 tokens of "), lines[0])
        rows = {}
        for line in lines[2:]:
            f = line.split()
            rows[(int(f[0]), int(f[1]))] = [float(x.strip("()")) for x in f[2:7]]
        self.assertEqual(set(rows), {(l, h) for l in range(5) for h in range(8)})
        for shares in rows.values():
            self.assertTrue(all(0.0 <= x <= 1.0 for x in shares), shares)
        # stories260K's clearest previous-token head, and a head drawn to repeats beyond chance
        self.assertGreater(rows[(1, 3)][0], 0.5)
        self.assertGreater(rows[(4, 0)][3], 3 * rows[(4, 0)][4])


@NEED_SHARED
class TestInspect(unittest.TestCase):
    def test_table(self):
        # the prompt: a greedy continuation, so from "time" on each row's top 1 is the next row's token
        story, _ = run("-t", "0", "-n", "40", "-i", "Once upon a time")
        text = story.decode().rstrip("\n")
        out, _ = run("-m", "inspect", "-i", text)
        ids, _ = run("-m", "tokenize", "-i", text)
        header, rows = parse_inspect(out)
        n = len(ids.split()) + 1  # BOS, then the text's tokens
        self.assertIn("top 5", header)
        self.assertEqual(len(rows), n, "one row per token, BOS included")
        self.assertEqual([r[0] for r in rows], list(range(n)))
        self.assertEqual(rows[0][1], b"<s>")
        self.assertIsNone(rows[0][2], "BOS has no probability: '-'")
        self.assertEqual(b"".join(r[1] for r in rows[1:]), b" " + text.encode(), "the tokens spell the text")
        for pos, token, p, cands in rows:
            self.assertEqual(len(cands), 5)
            probs = [c[1] for c in cands]
            self.assertTrue(all(0.0 <= x <= 1.0 for x in probs), probs)
            self.assertEqual(probs, sorted(probs, reverse=True))
            self.assertLessEqual(sum(probs), 1.0001)
            if p is not None:
                self.assertTrue(0.0 <= p <= 1.0)
                prev = dict(rows[pos - 1][3])
                if token in prev:  # the same softmax, seen from two rows
                    self.assertAlmostEqual(prev[token], p, delta=0.00011)
        for pos in range(4, n - 1):  # rows from " time" on: the greedy story's next token
            self.assertEqual(rows[pos][3][0][0], rows[pos + 1][1], "row %d's top 1 is the greedy next token" % pos)
        # the last row's top 1 is what greedy generation prints next
        more, _ = run("-t", "0", "-n", str(n), "-i", text)  # n positions: the prompt, then one token
        self.assertTrue(more.rstrip(b"\n").endswith(rows[-1][3][0][0]), (more[-40:], rows[-1][3][0]))

    def test_escapes(self):
        out, _ = run("-m", "inspect", "-i", 'say "a\\b"\n\tok\xe9')
        _, rows = parse_inspect(out)
        self.assertEqual(b"".join(r[1] for r in rows[1:]), ' say "a\\b"\n\tok\xe9'.encode())
        for line in out.decode().splitlines():
            self.assertNotIn("\t", line)
        self.assertIn('\\"', out.decode())

    def test_errors(self):
        p = subprocess.run([RUN, MODEL, "-z", TOK, "-m", "inspect", "-i", "ab " * 400], capture_output=True, timeout=60)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn(b"context of 512", p.stderr)


def read_png(path):
    """(width, height, rows of (r, g, b) tuples) of an 8-bit RGB or RGBA PNG, stdlib only."""
    with open(path, "rb") as f:
        data = f.read()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat, ihdr = 8, b"", None
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            ihdr = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    width, height, depth, color, _, _, interlace = ihdr
    assert depth == 8 and color in (2, 6) and interlace == 0, ihdr
    bpp = 3 if color == 2 else 4
    raw, stride, prev, rows = zlib.decompress(idat), width * bpp, bytearray(width * bpp), []
    for y in range(height):
        f, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - bpp] if i >= bpp else 0
            b, c = prev[i], prev[i - bpp] if i >= bpp else 0
            if f == 1:
                line[i] = (line[i] + a) & 255
            elif f == 2:
                line[i] = (line[i] + b) & 255
            elif f == 3:
                line[i] = (line[i] + (a + b) // 2) & 255
            elif f == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        rows.append([tuple(line[x * bpp:x * bpp + 3]) for x in range(width)])
        prev = line
    return width, height, rows


def chromium():
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if shutil.which(name):
            return shutil.which(name)
    return None


def screenshot(html_path, png_path, size="1400,1000"):
    profile = tempfile.mkdtemp()
    try:
        subprocess.run([chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                        "--disable-background-networking", "--disable-component-update", "--disable-sync",
                        "--user-data-dir=" + profile, "--screenshot=" + png_path, "--window-size=" + size,
                        "file://" + html_path], capture_output=True, timeout=180)
    finally:
        shutil.rmtree(profile, ignore_errors=True)


@NEED_SHARED
class TestViz(unittest.TestCase):
    PROMPT = 'Tom said "<b>hi</b> & bye"'

    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp()
        cls.html_path = os.path.join(cls.dir, "viz.html")
        cls.steps = 60
        cls.stdout, _ = run("-t", "0", "-n", str(cls.steps), "-i", cls.PROMPT, "--viz", cls.html_path)
        cls.html_bytes = open(cls.html_path, "rb").read()

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.dir, ignore_errors=True)

    def test_same_story(self):
        plain, _ = run("-t", "0", "-n", str(self.steps), "-i", self.PROMPT)
        self.assertEqual(self.stdout, plain, "--viz does not change what is printed")

    def test_self_contained(self):
        html = self.html_bytes.decode("utf-8")  # strict: the page is valid UTF-8
        self.assertTrue(html.startswith("<!DOCTYPE html>"))
        self.assertIsNone(re.search(r"(?i)(https?:|<script|<link|<img|<iframe|@import|url\(|src=)", html),
                          "no network, no scripts, no external files")
        self.assertIn("<style>", html)
        self.assertIn(":target", html)

    def test_every_head(self):
        html = self.html_bytes.decode()
        layers, heads = 5, 8
        for kind in (r'<symbol id="m(\d+)_(\d+)"', r'<a href="#a(\d+)_(\d+)"', r'<div class="big" id="a(\d+)_(\d+)"'):
            found = set(re.findall(kind, html))
            self.assertEqual(found, {(str(l), str(h)) for l in range(layers) for h in range(heads)}, kind)
        # maps are as large as the positions that ran, not the model's 512
        self.assertEqual(set(re.findall(r'<symbol id="m\d+_\d+" viewBox="0 0 (\d+) (\d+)"', html)),
                         {(str(self.steps), str(self.steps))})
        # token text on the axes of the enlarged maps: one label per position, each way
        keys = re.search(r'<symbol id="keys">(.*?)</symbol>', html).group(1)
        queries = re.search(r'<symbol id="queries">(.*?)</symbol>', html).group(1)
        self.assertEqual(keys.count("<text"), self.steps)
        self.assertEqual(queries.count("<text"), self.steps)
        self.assertIn(">&lt;s&gt;</text>", queries)
        self.assertIn("> said</text>", keys)

    def test_escaped(self):
        html = self.html_bytes.decode()
        story = re.search(r'<div class="story">(.*?)</div>', html, re.S).group(1)
        pieces = re.findall(r"<span[^>]*>(.*?)</span>", story)
        for piece in pieces:  # each token's text is text: no markup, only these entities
            self.assertIsNone(re.search(r'[<>"]|&(?!lt;|gt;|amp;|quot;)', piece), piece)
        text = htmlmod.unescape("".join(pieces))
        self.assertTrue(text.startswith('<s> Tom said "<b>hi</b> & bye"'), text[:60])

    def test_top5(self):
        html = self.html_bytes.decode()
        table = html[html.index('id="offered"'):]
        rows = re.findall(r"<tr><td>(\d+)</td><td><code>(.*?)</code></td><td>([0-9.]+)</td><td>(.*?)</td></tr>", table)
        ids, _ = run("-m", "tokenize", "-i", self.PROMPT)
        n_prompt = len(ids.split()) + 1
        self.assertEqual(len(rows), self.steps + 1 - n_prompt, "one row per generated token")
        for pos, chosen, p, cands in rows:
            found = re.findall(r'<span class="cand( c)?"><i style="width:\d+px"></i><code>(.*?)</code> ([0-9.]+)</span>', cands)
            self.assertEqual(len(found), 5)
            probs = [float(x[2]) for x in found]
            self.assertTrue(all(0 <= x <= 1 for x in probs) and probs == sorted(probs, reverse=True), probs)
            # greedy: the chosen token is the most likely one, marked, with its probability
            self.assertEqual(found[0][0], " c")
            self.assertEqual(found[0][1], chosen)
            self.assertAlmostEqual(float(p), probs[0], delta=0.0006)

    def test_invalid_utf8(self):
        path = os.path.join(self.dir, "bytes.html")
        p = subprocess.run([RUN, MODEL, "-z", TOK, "-t", "0", "-n", "12", "-i", b"ok \xe2\x80 \xff", "--viz", path],
                           capture_output=True, timeout=120)
        self.assertEqual(p.returncode, 0, p.stderr)
        html = open(path, "rb").read().decode("utf-8")  # strict: raises on invalid UTF-8
        self.assertIn("\\xE2", html, "a lone byte shows as \\xNN")
        self.assertIn("\\xFF", html)

    def test_errors(self):
        p = subprocess.run([RUN, MODEL, "-z", TOK, "-m", "ppl", "-f", TEXT, "--viz", "x.html"], capture_output=True)
        self.assertEqual(p.returncode, 1)
        self.assertIn(b"--viz works with -m generate and -m neurons only", p.stderr)
        p = subprocess.run([RUN, MODEL, "-z", TOK, "-n", "10", "--viz", "/nonexistent/dir/x.html"], capture_output=True)
        self.assertEqual(p.returncode, 1)
        self.assertIn(b"cannot write /nonexistent/dir/x.html", p.stderr)

    def test_renders_in_chromium(self):
        if not chromium():
            self.skipTest("no headless browser (chromium) installed")
        png = os.path.join(self.dir, "shot.png")
        screenshot(self.html_path, png)
        self.assertTrue(os.path.exists(png), "chromium wrote no screenshot")
        width, height, rows = read_png(png)
        self.assertEqual((width, height), (1400, 1000))
        pixels = [px for row in rows[::4] for px in row[::4]]
        colors = set(pixels)
        dark = sum(1 for r, g, b in pixels if r + g + b < 300)                 # text
        blue = sum(1 for r, g, b in pixels if b > r + 60 and b > 120)          # heatmap cells
        orange = sum(1 for r, g, b in pixels if r > b + 60 and r > 200)        # shaded tokens
        self.assertGreater(len(colors), 100, "a page, not a blank")
        self.assertGreater(dark, 150, "text is drawn")
        self.assertGreater(sum(1 for px in pixels if px != (255, 255, 255)), len(pixels) // 10, "a tenth of the page is not white")
        self.assertGreater(blue, 100, "attention maps are drawn")
        self.assertGreater(orange, 50, "generated tokens are shaded")


try:
    import numpy as np
    import numpy_ref
except ImportError:
    np = None


def numpy_loss(token_ids, chunk):
    """Mean -log p of the predicted tokens, stories260K in float64 (tests/numpy_ref.py's
    forward pass), each chunk from position 0 as -m ppl runs them."""
    model = numpy_ref.llama2c(MODEL)
    total, count = 0.0, 0
    for start in range(0, len(token_ids), chunk):
        ids = np.array(token_ids[start:start + chunk])
        T = len(ids)
        logits = numpy_ref.forward(model, ids)["logits"]
        m = logits.max(-1, keepdims=True)
        logp = logits - m - np.log(np.exp(logits - m).sum(-1, keepdims=True))
        total -= logp[np.arange(T - 1), ids[1:]].sum()
        count += T - 1
    return total / count, count


@NEED_SHARED
class TestPerplexity(unittest.TestCase):
    def test_output_format(self):
        with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as f:
            f.write("Once upon a time, there was a little girl named Lily.\n")
        try:
            out, err = run("-m", "ppl", "-f", f.name)
        finally:
            os.unlink(f.name)
        m = re.fullmatch(r"tokens: (\d+)\nloss: (\d+\.\d{6})\nperplexity: (\d+\.\d+)\n", out.decode())
        self.assertIsNotNone(m, out)
        self.assertAlmostEqual(float(m.group(3)), 2.718281828 ** float(m.group(2)), delta=1e-4 * float(m.group(3)))
        self.assertIn("ppl: %s / %s tokens" % (m.group(1), m.group(1)), err, "progress goes to stderr")

    def test_against_numpy(self):
        if np is None:
            self.skipTest("numpy is not installed for this python (make test PYTHON=/usr/bin/python3)")
        if not os.path.exists(TEXT):
            self.skipTest("no %s" % TEXT)
        text = open(TEXT, "rb").read()[:12000]
        with tempfile.NamedTemporaryFile("wb", suffix=".txt", delete=False) as f:
            f.write(text)
        try:
            out, _ = run("-m", "ppl", "-f", f.name)
            ids_out, _ = run("-m", "tokenize", "-i", text.decode())
        finally:
            os.unlink(f.name)
        ids = [1] + [int(t) for t in ids_out.split()]  # BOS, then the text's tokens
        tokens, loss = re.search(rb"tokens: (\d+)\nloss: (\S+)", out).groups()
        self.assertEqual(int(tokens), len(ids))
        self.assertGreater(len(ids), 2 * 512, "several chunks, the last one short")
        expect, predicted = numpy_loss(ids, 512)
        self.assertEqual(predicted, len(ids) - (len(ids) + 511) // 512)
        self.assertAlmostEqual(float(loss), expect, delta=2e-6, msg="run.c %s, numpy %.6f" % (loss, expect))


if __name__ == "__main__":
    unittest.main()
