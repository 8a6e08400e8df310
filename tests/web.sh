#!/usr/bin/env bash
# make test-web: the page of `make web` in a real headless Chromium (tests/web.mjs, playwright-core from
# npm, Debian's chromium), served from 127.0.0.1: two stories of stories260K and one of the GPT-Neo
# fixture (its GPT-2 tokenizer inside the file) must be ./run's stdout byte for byte; a click on a
# piece shows its candidates and the attention; a truncated file and a file that is no model are
# refused with a message in the page; no console error; a screenshot (out-web/page.png).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
SHARED=$(cd "${SHARED:-../shared}" 2>/dev/null && pwd || echo "${SHARED:-../shared}")
skip() { echo "test-web: SKIPPED ($1)"; exit 0; }
[ -f web/run.wasm ] || skip "no web/run.wasm: apt-get install wasi-libc lld libclang-rt-14-dev-wasm32, then make web"
command -v node >/dev/null || skip "no node: apt-get install nodejs"
CHROMIUM=${CHROMIUM:-$(command -v chromium || true)}
[ -n "$CHROMIUM" ] || skip "no chromium: apt-get install chromium"
node -e "require.resolve('playwright-core')" 2>/dev/null || skip "no playwright-core: npm install --no-save playwright-core"
[ -f "$SHARED/models/stories260K.bin" ] || skip "$SHARED/models/stories260K.bin not found (set SHARED)"
OUT=$PWD/out-web
rm -rf "$OUT" && mkdir -p "$OUT"
M=$SHARED/models
neo=$OUT/neo-1m-shape.bin
"$PYTHON" export.py model "$SHARED/fixtures/hf/gptneo-tinystories-1m-shape" "$neo" --dtype f32 \
  --tokenizer "$M/gpt2-vocab.json" --merges "$M/gpt2-merges.txt" >/dev/null
head -c 3000 "$M/stories260K.bin" >"$OUT/truncated.bin"
printf 'this is no model file, only some text\n' >"$OUT/notamodel.bin"
# the cases: page query, and ./run's stdout for the same settings (the page passes -t -p -s -n -i)
"$PYTHON" - "$OUT" "$M" "$neo" <<'PY' >"$OUT/cases.json"
import base64, json, subprocess, sys, urllib.parse
import numpy
out, m, neo = sys.argv[1:]
def case(name, model, tok, prompt, t, p, seed, steps, **extra):
    q = {"model": model, "prompt": prompt, "temperature": t, "topp": p, "seed": seed, "steps": steps}
    cmd = ["./run", model, "-t", str(t), "-p", str(p), "-s", str(seed), "-n", str(steps), "-i", prompt]
    if tok: q["tokenizer"] = tok; cmd += ["-z", tok]
    c = {"name": name, "query": urllib.parse.urlencode(q), **extra}
    if not extra.get("error"):
        story = subprocess.run(cmd, capture_output=True, check=True).stdout
        c["expect"] = base64.b64encode(story).decode()
    if extra.get("again_seed"): # a second story in the same page: the worker and its kept files reused
        again = [a if a != str(seed) else str(extra["again_seed"]) for a in cmd]
        c["again"] = base64.b64encode(subprocess.run(again, capture_output=True, check=True).stdout).decode()
    if extra.get("neurons"): # the piece the test clicks (5): each layer's 3 most active MLP neurons, from ./run -m dump
        dump = f"{out}/dump-{seed}"
        subprocess.run(["./run", model, "-m", "dump", "-i", story.decode(), "--out", dump] + (["-z", tok] if tok else []), check=True, capture_output=True)
        mlp = numpy.load(f"{dump}/mlp.npy")  # (layers, n, hidden)
        i = min(5, mlp.shape[1] - 1)
        c["neurons"] = [[l, int(k), float(mlp[l, i, k])] for l in range(mlp.shape[0]) for k in numpy.argsort(-mlp[l, i], kind="stable")[:3]]
    return c
print(json.dumps([
    case("stories260K greedy", f"{m}/stories260K.bin", f"{m}/tok512.bin", "Once upon a time", 0, 0.9, 42, 100, screenshot="page.png"),
    case("stories260K sampled", f"{m}/stories260K.bin", f"{m}/tok512.bin", "Lily saw a cat", 0.8, 0.9, 7, 120, neurons=True, again_seed=8),
    case("GPT-Neo, its tokenizer inside", neo, None, "Once upon a time", 1.0, 0.9, 3, 40),
    case("a truncated model", f"{out}/truncated.bin", f"{m}/tok512.bin", "x", 0, 0.9, 1, 10, error=True),
    case("a file that is no model", f"{out}/notamodel.bin", f"{m}/tok512.bin", "x", 0, 0.9, 1, 10, error=True),
]))
PY
SHARED="$SHARED" CHROMIUM="$CHROMIUM" node tests/web.mjs "$OUT/cases.json" "$OUT"
