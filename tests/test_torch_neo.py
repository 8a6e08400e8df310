"""The PyTorch GPT-Neo that make bench times ./run against (bench/torch_neo.py) is itself
correct: the fixture's logits (what transformers computed) within 1e-4 and its greedy ids,
so the comparison is between two correct programs. Needs torch and numpy; skipped without."""
import os
import subprocess
import sys
import unittest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED = os.path.abspath(os.environ.get("SHARED", os.path.join(ROOT, "..", "shared")))
FIXTURE = os.path.join(SHARED, "fixtures", "hf", "gptneo-tinystories-1m-shape")


class TorchGPTNeo(unittest.TestCase):
    def test_fixture_logits_and_greedy_ids(self):
        try:
            import torch  # noqa: F401
        except ImportError:
            self.skipTest("no torch in this Python (Debian: python3-torch; PYTHON=/usr/bin/python3)")
        if not os.path.isdir(FIXTURE):
            self.skipTest(f"{FIXTURE} not found (set SHARED)")
        r = subprocess.run([sys.executable, os.path.join(ROOT, "bench", "torch_neo.py"), "check", FIXTURE],
                           capture_output=True, text=True)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("greedy ids equal", r.stdout)


if __name__ == "__main__":
    unittest.main()
