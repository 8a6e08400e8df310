"""Every kernel path gives the same bits: the logits of a text and a sampled story, for a
float32, bf16 and Q8_0 file of each model kind, byte for byte from each binary given.

    python3 tests/paths.py ./run ./run-avx2 out-arm/run-neon.sh ...   (make test-arm runs it)

The models: stories260K (Llama, from ../shared) and the GPT-Neo fixture (export.py), each
exported to bf16 and Q8_0 as well.
"""
import hashlib
import os
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED = os.path.abspath(os.environ.get("SHARED", os.path.join(ROOT, "..", "shared")))


def export(*args):
    subprocess.run([sys.executable, os.path.join(ROOT, "export.py"), "model", *args], check=True, capture_output=True)


def main(binaries):
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
        ids_path = os.path.join(tmp, "ids.txt")
        for model, vocab in models:
            with open(ids_path, "w") as f:  # 300 positions: past GPT-Neo's local window of 256
                f.write(" ".join(str((i * 7919 + 3) % vocab) for i in range(300)))
            seen = {}
            for binary in binaries:
                out = os.path.join(tmp, "logits.f32")
                r1 = subprocess.run([binary, model, "-m", "logits", "--ids", ids_path, "--out", out], capture_output=True)
                r2 = subprocess.run([binary, model, "-s", "42", "-t", "0.9", "-n", "120", "-i", "Once upon a time"],
                                    capture_output=True)
                if r1.returncode or r2.returncode:
                    print(f"FAIL paths: {binary} {os.path.basename(model)}: {(r1.stderr + r2.stderr).decode()[-300:]}")
                    failed += 1
                    continue
                with open(out, "rb") as f:
                    logits = f.read()
                seen[binary] = (hashlib.sha256(logits).hexdigest()[:12], hashlib.sha256(r2.stdout).hexdigest()[:12])
            if len(set(seen.values())) > 1:
                failed += 1
                print(f"FAIL paths: {os.path.basename(model)}: (logits, story) differ: {seen}")
            else:
                print(f"ok   paths: {os.path.basename(model)}: logits and story the same from {len(seen)} binaries")
    print(f"paths: {len(models) - failed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
