"""Stories as users ask for them (issue 15): the sampler's options (top-k, min-p, the
repetition penalty, stop strings) and TinyStories-Instruct prompts, through ./run with
stories260K, each against a plain reference: greedy decoding, the story without the option,
the prompt written out by hand. The penalty's arithmetic is checked in test_all.c.

Run by `make test`. Needs SHARED (../shared): stories260K.bin and tok512.bin.
"""
import os
import subprocess
import unittest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED = os.environ.get("SHARED", os.path.join(ROOT, "..", "shared"))
MODEL = os.path.join(SHARED, "models", "stories260K.bin")
TOK = os.path.join(SHARED, "models", "tok512.bin")
RUN = os.path.join(ROOT, "run")
NEED_SHARED = unittest.skipUnless(os.path.exists(MODEL) and os.path.exists(TOK), "no %s: set SHARED" % MODEL)


def story(*args, ok=True):
    p = subprocess.run([RUN, MODEL, "-z", TOK] + list(args), capture_output=True, timeout=120)
    if ok and p.returncode != 0:
        raise AssertionError("./run %s: %s" % (" ".join(args), p.stderr.decode(errors="replace")))
    return p


@NEED_SHARED
class Sampler(unittest.TestCase):
    PROMPT = ["-i", "Once upon a time", "-n", "200"]

    def test_top_k_1_and_min_p_1_are_greedy(self):
        greedy = story("-t", "0", *self.PROMPT).stdout
        for flags in (["--top-k", "1"], ["--min-p", "1"]):
            for seed in ("1", "7"):
                self.assertEqual(story("-t", "1", "-s", seed, *flags, *self.PROMPT).stdout, greedy, flags)

    def test_off_is_today(self):
        base = story("-t", "1", "-s", "5", *self.PROMPT).stdout
        for flags in (["--top-k", "0"], ["--min-p", "0"], ["--repeat-penalty", "1"], ["--repeat-penalty", "1.3", "--repeat-last-n", "0"]):
            self.assertEqual(story("-t", "1", "-s", "5", *flags, *self.PROMPT).stdout, base, flags)

    def test_options_change_the_story(self):
        base = story("-t", "1", "-s", "5", *self.PROMPT).stdout
        for flags in (["--top-k", "5"], ["--min-p", "0.2"], ["--repeat-penalty", "1.5"]):
            out = story("-t", "1", "-s", "5", *flags, *self.PROMPT).stdout
            self.assertNotEqual(out, base, flags)
            self.assertEqual(out, story("-t", "1", "-s", "5", *flags, *self.PROMPT).stdout, "the same seed, the same bytes")

    def test_penalty_breaks_greedy_loops(self):
        """Greedy stories260K repeats itself; a penalty over the last 64 tokens repeats less."""
        def distinct(text):
            words = text.split()
            return len(set(words)) / max(1, len(words))
        greedy = story("-t", "0", "-i", "Once upon a time", "-n", "400").stdout.decode()
        penalized = story("-t", "0", "--repeat-penalty", "1.8", "-i", "Once upon a time", "-n", "400").stdout.decode()
        self.assertGreater(distinct(penalized), distinct(greedy))

    def test_stop_strings(self):
        full = story("-t", "0", *self.PROMPT).stdout
        text = full[len(b"Once upon a time"):]
        for stop in (text[20:32], text[5:6], text[40:47]):
            s = stop.decode()
            out = story("-t", "0", "--stop", s, *self.PROMPT).stdout
            at = full.index(stop, len(b"Once upon a time"))
            self.assertEqual(out, full[:at] + b"\n", "stops before %r" % s)
        # a stop string in the prompt alone does not stop the story; one never reached changes nothing
        self.assertEqual(story("-t", "0", "--stop", "upon", *self.PROMPT).stdout[:40], full[:40])
        self.assertEqual(story("-t", "0", "--stop", "zzzq", "--stop", "Qx", *self.PROMPT).stdout, full)

    def test_past_the_context(self):
        """-n past the 512 positions: the same story up to them, then it goes on, the window
        sliding (the statistics say how often); --viz keeps to one context."""
        short = story("-t", "1", "-s", "11", "-n", "512", "-i", "Once upon a time")
        long = story("-t", "1", "-s", "11", "-n", "1500", "-i", "Once upon a time")
        self.assertTrue(long.stdout.startswith(short.stdout.rstrip(b"\n")))
        self.assertGreater(len(long.stdout), len(short.stdout) + 500)
        self.assertIn("context: 512 positions, the window slid 2 times (the last 256 tokens run again each time)", long.stderr.decode())
        self.assertNotIn("window slid", short.stderr.decode())
        p = story("-n", "600", "--viz", "/tmp/v.html", ok=False)
        self.assertIn("--viz draws one context of 512 positions: use -n 512 or less", p.stderr.decode())

    def test_instruct_prompt(self):
        args = ["-t", "0", "-n", "120"]
        by_hand = story(*args, "-i", "Features: Dialogue\nWords: oak, gloomy\nRandom sentence: It was late.\n"
                                     "Summary: A dog finds a ball.\nStory:\nOnce").stdout
        built = story(*args, "--summary", "A dog finds a ball.", "--words", "oak, gloomy", "--features", "Dialogue",
                      "--sentence", "It was late.", "-i", "Once").stdout
        self.assertEqual(built, by_hand)
        self.assertEqual(story(*args, "--words", "oak").stdout, story(*args, "-i", "Words: oak\nStory:\n").stdout)

    def test_batch_lines_are_separate_runs(self):
        """-m batch: each line's text is what ./run -s SEED+k -i PROMPT prints, whatever the
        thread count; the prompts file's lines as given (an empty one too, and quotes)."""
        import json
        import tempfile
        with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as f:
            f.write('Once upon a time\nLily and Ben\n\nThe dog "Max" said\\n\n')
        try:
            opts = ["-t", "0.8", "-n", "80", "--top-k", "40", "--repeat-penalty", "1.1"]
            runs = {}
            for threads in ("1", "2"):
                p = subprocess.run([RUN, MODEL, "-z", TOK, "-m", "batch", "-f", f.name, "--samples", "3", "-s", "100"] + opts,
                                   capture_output=True, timeout=120, env=dict(os.environ, OMP_NUM_THREADS=threads))
                self.assertEqual(p.returncode, 0, p.stderr)
                runs[threads] = p.stdout
                self.assertIn("batch: prompt 4 / 4, 3 samples", p.stderr.decode())
        finally:
            os.unlink(f.name)
        self.assertEqual(runs["1"], runs["2"], "the same bytes on 1 and 2 threads")
        lines = [json.loads(l) for l in runs["2"].decode().splitlines()]
        self.assertEqual([(d["prompt"], d["sample"], d["seed"]) for d in lines],
                         [(p, k, 100 + k) for p in ("Once upon a time", "Lily and Ben", "", 'The dog "Max" said\\n') for k in range(3)])
        for d in lines:
            want = story("-s", str(d["seed"]), *opts, "-i", d["prompt"]).stdout
            self.assertEqual(d["text"].encode("utf-8", "surrogateescape"), want, d)
        self.assertGreater(len(set(d["text"] for d in lines)), 8, "the samples differ")

    def test_refused(self):
        cases = [
            (["--top-k", "-1"], "bad top-k '-1' for --top-k"),
            (["--min-p", "1.5"], "bad min-p '1.5' for --min-p: must be a number in [0, 1]"),
            (["--min-p", "nan"], "bad min-p 'nan'"),
            (["--repeat-penalty", "0"], "bad penalty '0' for --repeat-penalty"),
            (["--repeat-penalty", "-2"], "bad penalty '-2'"),
            (["--repeat-last-n", "-1"], "bad count '-1' for --repeat-last-n"),
            (["--stop", ""], "--stop needs a string that is not empty"),
            (["--words", "a\nb"], "--words must be one line"),
            (["--summary", "x\ry"], "--summary must be one line"),
            (["-m", "inspect", "-i", "x", "--top-k", "3"], "--top-k works with -m generate and -m batch only"),
            (["-m", "batch"], "-m batch needs -f PROMPTS"),
            (["-m", "batch", "-f", "/nonexistent/prompts.txt"], "/nonexistent/prompts.txt"),
            (["-m", "batch", "-f", "/dev/null", "--samples", "0"], "bad count '0' for --samples"),
            (["--samples", "2"], "--samples works with -m batch only"),
        ]
        for args, message in cases:
            p = story(*args, ok=False)
            self.assertNotEqual(p.returncode, 0, args)
            self.assertIn(message, p.stderr.decode(errors="replace").strip().splitlines()[-1], args)


if __name__ == "__main__":
    unittest.main()
