#!/usr/bin/env python3
"""GPT-Neo in PyTorch, computed as Hugging Face transformers computes it: what the paper's
models' users run, to time ./run against (make bench) and to check against the fixture
(tests/test_torch_neo.py). numpy + torch only (Debian's python3-torch); no transformers.

    torch_neo.py check FOLDER            logits of a Hugging Face GPT-Neo folder against its
                                         reference.json / logits.f32 (the fixture in ../shared)
    torch_neo.py bench SHAPE [options]   random weights at a TinyStories shape (1M, 8M, 33M):
                                         tokens/s of one 500-token prompt and of decoding

The forward pass: token + position embeddings; per layer LayerNorm, q/k/v without bias, causal
attention without score scaling (GPT-Neo), "local" layers seeing only the last window_size
positions, output projection with bias; LayerNorm, c_fc, gelu_new, c_proj; a final LayerNorm
and the tied classifier. A prompt runs as one batched forward; decoding runs one token at a
time against a KV cache, as transformers' generate does (the classifier only for the last
position, its logits_to_keep=1).
"""
import argparse
import json
import math
import os
import sys
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# the TinyStories GPT-Neo shapes: hidden size, layers (16 heads, 4x MLP, vocab 50257)
SHAPES = {"1M": (64, 8), "8M": (256, 8), "33M": (768, 4)}


def import_torch():
    try:
        import torch
    except ImportError:
        sys.exit("torch_neo.py: needs torch (Debian: apt-get install python3-torch)")
    return torch


class GPTNeo:
    """weights: {Hugging Face name: torch tensor}; config: config.json's fields used."""

    def __init__(self, torch, weights, config):
        self.torch, self.w, self.c = torch, weights, config
        self.n_layers, self.n_heads = config["num_layers"], config["num_heads"]
        self.dim = config["hidden_size"]
        self.eps = config.get("layer_norm_epsilon", 1e-5)
        self.window = config.get("window_size", 256)
        self.local = [kind == "local" for kind in config["attention_layers"]]

    def layer_norm(self, x, name):
        return self.torch.nn.functional.layer_norm(x, (self.dim,), self.w[name + ".weight"], self.w[name + ".bias"], self.eps)

    def linear(self, x, name, bias=True):
        return self.torch.nn.functional.linear(x, self.w[name + ".weight"], self.w.get(name + ".bias") if bias else None)

    def forward(self, ids, cache, last_only=False):
        """Logits (n, vocab) of ids at the positions after the cache's (last_only: of the
        last one, as transformers' generate asks with logits_to_keep=1); cache: per layer
        [keys, values] (heads, positions, head_dim), extended in place."""
        torch, F = self.torch, self.torch.nn.functional
        past = cache[0][0].shape[1] if cache[0][0] is not None else 0
        n, H, hd = len(ids), self.n_heads, self.dim // self.n_heads
        pos = torch.arange(past, past + n)
        x = F.embedding(torch.tensor(ids), self.w["transformer.wte.weight"]) + self.w["transformer.wpe.weight"][pos]
        total = past + n
        q_pos, k_pos = pos[:, None], torch.arange(total)[None, :]
        for l in range(self.n_layers):
            p = f"transformer.h.{l}"
            h = self.layer_norm(x, p + ".ln_1")
            q, k, v = (self.linear(h, f"{p}.attn.attention.{name}_proj", bias=False).view(n, H, hd).transpose(0, 1)
                       for name in "qkv")
            if cache[l][0] is not None:
                k, v = torch.cat([cache[l][0], k], 1), torch.cat([cache[l][1], v], 1)
            cache[l] = [k, v]
            allowed = k_pos <= q_pos
            if self.local[l]:
                allowed = allowed & (q_pos - k_pos < self.window)
            scores = torch.matmul(q, k.transpose(1, 2))  # GPT-Neo does not scale the scores
            scores = scores.masked_fill(~allowed, torch.finfo(scores.dtype).min)
            a = torch.matmul(torch.softmax(scores, -1), v).transpose(0, 1).reshape(n, self.dim)
            x = x + self.linear(a, p + ".attn.attention.out_proj")
            h = self.layer_norm(x, p + ".ln_2")
            h = self.linear(h, p + ".mlp.c_fc")
            h = 0.5 * h * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (h + 0.044715 * torch.pow(h, 3.0))))  # gelu_new
            x = x + self.linear(h, p + ".mlp.c_proj")
        x = self.layer_norm(x[-1:] if last_only else x, "transformer.ln_f")
        return F.linear(x, self.w["transformer.wte.weight"])

    def new_cache(self):
        return [[None, None] for _ in range(self.n_layers)]


def load_folder(torch, folder):
    """A Hugging Face GPT-Neo folder through export.py's readers (safetensors or pickle)."""
    sys.path.insert(0, ROOT)
    import export
    config = json.load(open(os.path.join(folder, "config.json")))
    config["attention_layers"] = export.gptneo_attention_layers(config, config["num_layers"])
    store = export.hf_store(folder)
    weights = {name: torch.from_numpy(np.array(load(), dtype=np.float32)) for name, (_, load) in store.entries.items()}
    return GPTNeo(torch, weights, config)


def random_model(torch, shape, seed=1):
    dim, n_layers = SHAPES[shape]
    config = {"num_layers": n_layers, "num_heads": 16, "hidden_size": dim, "window_size": 256,
              "attention_layers": ["global", "local"] * (n_layers // 2)}
    g = torch.Generator().manual_seed(seed)
    vocab, positions, hidden = 50257, 2048, 4 * dim

    def rand(*size):
        return torch.randn(*size, generator=g) * 0.02

    w = {"transformer.wte.weight": rand(vocab, dim), "transformer.wpe.weight": rand(positions, dim),
         "transformer.ln_f.weight": torch.ones(dim), "transformer.ln_f.bias": torch.zeros(dim)}
    for l in range(n_layers):
        p = f"transformer.h.{l}"
        for name in ("ln_1", "ln_2"):
            w[f"{p}.{name}.weight"], w[f"{p}.{name}.bias"] = torch.ones(dim), torch.zeros(dim)
        for name in "qkv":
            w[f"{p}.attn.attention.{name}_proj.weight"] = rand(dim, dim)
        w[f"{p}.attn.attention.out_proj.weight"], w[f"{p}.attn.attention.out_proj.bias"] = rand(dim, dim), rand(dim)
        w[f"{p}.mlp.c_fc.weight"], w[f"{p}.mlp.c_fc.bias"] = rand(hidden, dim), rand(hidden)
        w[f"{p}.mlp.c_proj.weight"], w[f"{p}.mlp.c_proj.bias"] = rand(dim, hidden), rand(dim)
    return GPTNeo(torch, w, config)


def blas_in_use():
    """The BLAS library this process mapped (torch's libblas.so.3 resolves to it), and for
    OpenBLAS the kernels it chose for this CPU (its core name: Haswell = AVX2, SkylakeX or
    Cooperlake = AVX-512; OPENBLAS_CORETYPE overrides its choice)."""
    names = set()
    with open("/proc/self/maps") as f:
        for line in f:
            path = line.split()[-1] if len(line.split()) >= 6 else ""
            if "blas" in os.path.basename(path) or "mkl" in os.path.basename(path):
                names.add(os.path.realpath(path))
    core = ""
    for path in names:
        try:
            import ctypes
            get = ctypes.CDLL(path).openblas_get_corename
            get.restype = ctypes.c_char_p
            core = f" (OpenBLAS kernels: {get().decode()})"
            break
        except (OSError, AttributeError):
            continue
    return (", ".join(sorted(names)) or "none mapped") + core


def check(folder):
    torch = import_torch()
    model = load_folder(torch, folder)
    ref = json.load(open(os.path.join(folder, "reference.json")))
    vocab = ref["vocab_size"]
    with torch.no_grad():
        got = model.forward(ref["input_ids"], model.new_cache()).numpy()
        want = np.fromfile(os.path.join(folder, "logits.f32"), "<f4").reshape(-1, vocab)
        diff = float(np.abs(got[ref["logit_positions"]] - want).max())
        # greedy, as transformers' generate: the prompt in one forward, then a token at a time
        cache, ids = model.new_cache(), []
        logits = model.forward(ref["greedy_prompt"], cache)
        for _ in ref["greedy_output"]:
            ids.append(int(logits[-1].argmax()))
            logits = model.forward([ids[-1]], cache)
    ok = diff < 1e-4 and ids == ref["greedy_output"]
    print(f"torch_neo: max |logit - transformers'| {diff:.3g}, greedy ids {'equal' if ids == ref['greedy_output'] else 'DIFFER'}")
    return 0 if ok else 1


def bench(shape, threads, prompt_len, decode_steps, rounds):
    torch = import_torch()
    torch.set_num_threads(threads)
    model = random_model(torch, shape)
    prompt = [(i * 7919 + 3) % 50257 for i in range(prompt_len)]
    prompt_rates, decode_rates = [], []
    with torch.no_grad():
        model.forward(prompt[:8], model.new_cache())  # warm up
        for _ in range(rounds):
            cache = model.new_cache()
            t0 = time.perf_counter()
            logits = model.forward(prompt, cache, last_only=True)
            t1 = time.perf_counter()
            token = int(logits[-1].argmax())
            for _ in range(decode_steps):
                token = int(model.forward([token], cache, last_only=True)[-1].argmax())
            t2 = time.perf_counter()
            prompt_rates.append(prompt_len / (t1 - t0))
            decode_rates.append(decode_steps / (t2 - t1))
    print(f"prompt {np.median(prompt_rates):.1f} tok/s, decode {np.median(decode_rates):.1f} tok/s, "
          f"torch {torch.__version__}, {threads} threads, BLAS: {blas_in_use()}")
    return 0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("check")
    c.add_argument("folder")
    b = sub.add_parser("bench")
    b.add_argument("shape", choices=sorted(SHAPES))
    b.add_argument("--threads", type=int, default=2)
    b.add_argument("--prompt", type=int, default=500)
    b.add_argument("--decode", type=int, default=64)
    b.add_argument("--rounds", type=int, default=1)
    a = ap.parse_args()
    if a.cmd == "check":
        return check(a.folder)
    return bench(a.shape, a.threads, a.prompt, a.decode, a.rounds)


if __name__ == "__main__":
    sys.exit(main())
