"""Every kernel path gives the same bits: the logits of a text and a sampled story, for a
float32, bf16 and Q8_0 file of each model kind, byte for byte from each binary given.

    python3 tests/paths.py ./run ./run-avx2 out-arm/run-neon.sh ...   (make test-arm runs it)
    python3 tests/paths.py --story-only stories260K A B   (logits not compared for that model)

The models: stories260K (Llama, from ../shared) and the GPT-Neo fixture (export.py), each
exported to bf16 and Q8_0 as well.
"""
import hashlib
import os
import concurrent.futures
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED = os.path.abspath(os.environ.get("SHARED", os.path.join(ROOT, "..", "shared")))


def export(*args):
    subprocess.run([sys.executable, os.path.join(ROOT, "export.py"), "model", *args], check=True, capture_output=True)


def main(binaries, story_only=()):
    """story_only: models (by name prefix) whose logits are not compared, only their stories."""
    models_dir = os.path.join(SHARED, "models")
    neo = os.path.join(SHARED, "fixtures", "hf", "gptneo-tinystories-1m-shape")
    if not os.path.isdir(models_dir) or not os.path.isdir(neo):
        print(f"paths: SKIPPED ({SHARED} has no models/ or fixtures/hf/: set SHARED)")
        return 0
    failed = 0
    with tempfile.TemporaryDirectory() as tmp:
        llama_src, tok = os.path.join(models_dir, "stories260K.bin"), os.path.join(models_dir, "tok512.bin")
        gpt2 = ["--tokenizer", os.path.join(models_dir, "gpt2-vocab.json"), "--merges", os.path.join(models_dir, "gpt2-merges.txt")]
        models = []
        for dtype in ("f32", "bf16", "q8_0"):
            out = os.path.join(tmp, f"stories260K-{dtype}.bin")
            export(llama_src, out, "--dtype", dtype, "--tokenizer", tok)
            models.append((out, 512))
            out = os.path.join(tmp, f"neo-{dtype}.bin")
            export(neo, out, "--dtype", dtype, *gpt2)
            models.append((out, 50257))
        def run(job):  # one binary on one model: (logits hash, story hash) or an error text
            k, model, vocab, binary = job
            ids = os.path.join(tmp, f"ids-{k}.txt")
            with open(ids, "w") as f:  # 300 positions: past GPT-Neo's local window of 256
                f.write(" ".join(str((i * 7919 + 3) % vocab) for i in range(300)))
            out = os.path.join(tmp, f"logits-{k}.f32")
            env = dict(os.environ, OMP_NUM_THREADS="1")  # the jobs run side by side instead
            r1 = subprocess.run([binary, model, "-m", "logits", "--ids", ids, "--out", out], capture_output=True, env=env)
            r2 = subprocess.run([binary, model, "-s", "42", "-t", "0.9", "-n", "120", "-i", "Once upon a time"],
                                capture_output=True, env=env)
            if r1.returncode or r2.returncode:
                return None, (r1.stderr + r2.stderr).decode()[-300:]
            with open(out, "rb") as f:
                logits = f.read()
            return (hashlib.sha256(logits).hexdigest()[:12], hashlib.sha256(r2.stdout).hexdigest()[:12]), None

        jobs = [(k, model, vocab, binary) for k, (model, vocab, binary) in
                enumerate((m, v, b) for m, v in models for b in binaries)]
        with concurrent.futures.ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
            results = list(pool.map(run, jobs))
        for model, vocab in models:
            seen = {}
            for (k, m, v, binary), (hashes, error) in zip(jobs, results):
                if m != model:
                    continue
                if error is not None:
                    print(f"FAIL paths: {binary} {os.path.basename(model)}: {error}")
                    failed += 1
                    continue
                seen[binary] = hashes
            what = "logits and story"
            if any(os.path.basename(model).startswith(p) for p in story_only):
                seen, what = {b: h[1] for b, h in seen.items()}, "story (logits not compared)"
            if len(set(seen.values())) > 1:
                failed += 1
                print(f"FAIL paths: {os.path.basename(model)}: (logits, story) differ: {seen}")
            else:
                print(f"ok   paths: {os.path.basename(model)}: {what} the same from {len(seen)} binaries")
    print(f"paths: {len(models) - failed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    args = sys.argv[1:]
    story_only = []
    while args and args[0] == "--story-only":  # --story-only NAME: that model's stories alone
        story_only.append(args[1])
        args = args[2:]
    sys.exit(main(args, story_only))
