"""Hugging Face checkpoints of many shapes through the whole pipeline:

    export.py model HF_FOLDER OUT.bin   then   ./run OUT.bin -m logits --ids IDS --out L.f32

Each shape is a synthetic checkpoint folder written here the way transformers writes one
(config.json with sorted keys and indent 2; model.safetensors, or pytorch_model.bin via
torch.save) holding seeded random weights, with norms and biases pushed away from 1 and 0
so that a dropped term shows. The logits ./run computes are compared with an independent
PyTorch forward pass written below from what transformers computes (LlamaForCausalLM,
GPTNeoForCausalLM). Those reference passes are first checked against the logits that
transformers itself computed for the two fixtures in $SHARED/fixtures/hf. bf16 and q8_0
exports are also compared with the same passes done in bf16 / Q8_0 arithmetic (format spec),
which tells a correct quantized path from a wrong one on models where quantization alone
already moves logits by ~0.1.

Run from the repository root after `make run` (needs torch: use /usr/bin/python3):

    SHARED=../shared /usr/bin/python3 -m unittest tests/test_shapes.py -v

SHAPES_REPORT=1 prints a table of every comparison: max |diff| from the float32 pass, argmax
agreement with it, max |diff| from the bf16 / Q8_0 arithmetic pass, seconds (export + run).
Tests that need $SHARED skip when it is absent; the synthetic shapes do not need it.
"""

import json
import math
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import time
import unittest

try:
    import numpy as np
    import torch
    import torch.nn.functional as F
except ImportError as e:                              # the whole file skips without them
    torch, MISSING = None, str(e)

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED = os.path.abspath(os.environ.get("SHARED", os.path.join(REPO, "..", "shared")))
RUN = os.path.join(REPO, "run")
EXPORT = os.path.join(REPO, "export.py")

TOLERANCE = 1e-4        # max |logit difference|, float32 against transformers' float32
QUANT_AGREEMENT = 0.90  # q8_0 / bf16: fraction of positions with the float32 argmax
# q8_0 against the reference pass done with Q8_0 arithmetic: mean |diff| below this fraction
# of the quantization error itself (mean |Q8_0 pass - float32 pass|). Not a fixed tolerance:
# an activation that lands on a rounding boundary in one pass and not in the other moves
# by a whole quantization step and the change spreads, so a float32 rounding difference
# upstream (another summation order) can give ~0.25 of the quantization error in GPT-Neo
# (no 1/sqrt(d) scaling, sharp attention); mistakes in the Q8_0 scheme give 0.9 and more.
Q8_0_SIM_RATIO = 0.5
RESULTS = []    # (case, dtype, tokens, max |diff| vs float32, agreement, vs simulated, seconds)


def need_torch():
    if torch is None:
        raise unittest.SkipTest(f"numpy and torch are needed and {sys.executable} cannot import "
                                f"them ({MISSING}): run with /usr/bin/python3")


def need_run():
    if not os.access(RUN, os.X_OK):
        raise unittest.SkipTest(f"{RUN} is not built (run `make run` first)")


def shared(test, *parts):
    path = os.path.join(SHARED, *parts)
    if not os.path.exists(path):
        test.skipTest(f"{path} not found (set SHARED to the shared test data folder)")
    return path


# ---------------------------------------------------------------------------------------------
# Checkpoint files: safetensors written and read by these few lines, pickles by torch.save
# ---------------------------------------------------------------------------------------------

def write_safetensors(path, tensors):
    """u64 LE header length, JSON header (name -> dtype, shape, data_offsets; names sorted,
    padded with spaces to 8 bytes as the safetensors library does), raw LE data."""
    header, blobs, offset = {"__metadata__": {"format": "pt"}}, [], 0
    for name in sorted(tensors):
        a = np.ascontiguousarray(tensors[name], dtype="<f4")
        header[name] = {"dtype": "F32", "shape": list(a.shape),
                        "data_offsets": [offset, offset + a.nbytes]}
        blobs.append(a.tobytes())
        offset += a.nbytes
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + b"".join(blobs))


def read_safetensors(path):
    """name -> float32 torch tensor (F32 only, which is what the fixtures hold)."""
    with open(path, "rb") as f:
        raw = f.read()
    n = struct.unpack_from("<Q", raw)[0]
    out = {}
    for name, info in json.loads(raw[8:8 + n]).items():
        if name == "__metadata__":
            continue
        assert info["dtype"] == "F32", (name, info["dtype"])
        begin, end = info["data_offsets"]
        a = np.frombuffer(raw, "<f4", (end - begin) // 4, 8 + n + begin)
        out[name] = torch.from_numpy(a.reshape(info["shape"]).copy())
    return out


def write_config(folder, config):
    """config.json as transformers' save_pretrained writes it."""
    with open(os.path.join(folder, "config.json"), "w", encoding="utf-8") as f:
        f.write(json.dumps(config, indent=2, sort_keys=True) + "\n")


def write_checkpoint(folder, config, tensors, fmt):
    """A Hugging Face folder. fmt "safetensors": tied heads are left out (as transformers
    saves them); "bin": torch.save of the state dict, the tied head sharing the embedding's
    storage, with the buffers older checkpoints carry (inv_freq, GPT-Neo's mask)."""
    os.makedirs(folder)
    write_config(folder, config)
    if fmt == "safetensors":
        write_safetensors(os.path.join(folder, "model.safetensors"), tensors)
        return
    state = {name: torch.from_numpy(a) for name, a in tensors.items()}
    if config["model_type"] == "llama":
        d = llama_dims(config)
        if d["tied"]:
            state["lm_head.weight"] = state["model.embed_tokens.weight"]
        inv_freq = 1.0 / (d["theta"] ** (torch.arange(0, d["hd"], 2).float() / d["hd"]))
        for l in range(d["L"]):
            state[f"model.layers.{l}.self_attn.rotary_emb.inv_freq"] = inv_freq
    else:
        d = gptneo_dims(config)
        if d["tied"]:
            state["lm_head.weight"] = state["transformer.wte.weight"]
        causal = torch.tril(torch.ones(d["P"], d["P"], dtype=torch.bool)).view(1, 1, d["P"], d["P"])
        for l, kind in enumerate(d["layers"]):
            local = causal ^ torch.tril(causal, -d["window"]) if kind == "local" else causal
            state[f"transformer.h.{l}.attn.attention.bias"] = local
            state[f"transformer.h.{l}.attn.attention.masked_bias"] = torch.tensor(-1e9)
    torch.save(state, os.path.join(folder, "pytorch_model.bin"))


# ---------------------------------------------------------------------------------------------
# Arithmetic of the weight matrices: float32 (transformers), and what a bf16 or Q8_0 file
# means (format spec), so the reference passes can predict ./run on quantized files too
# ---------------------------------------------------------------------------------------------

class Float32Arithmetic:
    def weight(self, w):
        return w

    def matmul(self, x, w):
        """x (T, cols) @ W (rows, cols)^T, with W as the file stores it."""
        return x @ self.weight(w).T


class Bf16Arithmetic(Float32Arithmetic):
    """Matrices rounded to bfloat16 (nearest even), activations float32."""

    def weight(self, w):
        return w.to(torch.bfloat16).to(w.dtype)


class Q8_0Arithmetic(Float32Arithmetic):
    """Matrices as int8 with a float32 scale per group of group_size along each row (the last
    group of a row may be shorter): scale = max|w| / 127, q = round(w / scale), half to even.
    The input of each product is quantized the same way per token, rounding half away
    from zero (llama2.c's runq), before the integer dot products."""

    def __init__(self, group_size=64):
        self.gs = group_size

    def groups(self, a, rounding):
        rows, cols = a.shape
        n = -(-cols // self.gs)
        g = F.pad(a, (0, n * self.gs - cols)).view(rows, n, self.gs)
        scale = g.abs().amax(dim=-1, keepdim=True) / 127.0
        q = torch.where(scale > 0, rounding(g / torch.where(scale > 0, scale, torch.ones(()))),
                        torch.zeros(()))
        return (q.clamp(-127, 127) * scale).view(rows, n * self.gs)[:, :cols]

    def weight(self, w):
        return self.groups(w, torch.round)

    def matmul(self, x, w):
        half_away = lambda v: torch.sign(v) * torch.floor(v.abs() + 0.5)
        return self.groups(x, half_away) @ self.weight(w).T


# ---------------------------------------------------------------------------------------------
# LlamaForCausalLM: config as transformers reads it, random weights, the forward pass
# ---------------------------------------------------------------------------------------------

def llama_dims(c):
    """The shape transformers' LlamaConfig gives a config.json (its defaults for absent keys)."""
    D, H = c["hidden_size"], c["num_attention_heads"]
    rope = c.get("rope_parameters") or {}
    return dict(D=D, H=H, K=c.get("num_key_value_heads") or H, hd=c.get("head_dim") or D // H,
                L=c["num_hidden_layers"], I=c["intermediate_size"], V=c["vocab_size"],
                P=c.get("max_position_embeddings", 2048), eps=c.get("rms_norm_eps", 1e-6),
                theta=rope.get("rope_theta", c.get("rope_theta", 10000.0)),
                tied=c.get("tie_word_embeddings", False), bias=c.get("attention_bias", False))


def llama_weights(config, seed, std=0.15):
    """HF tensor names -> float32 arrays. Norm weights around 1.2 with spread, biases nonzero."""
    d, rng = llama_dims(config), np.random.default_rng(seed)
    normal = lambda *shape, s=std: (rng.standard_normal(shape) * s).astype(np.float32)
    norm = lambda n: (1.2 + rng.standard_normal(n) * 0.2).astype(np.float32)
    D, H, K, hd, I = d["D"], d["H"], d["K"], d["hd"], d["I"]
    t = {"model.embed_tokens.weight": normal(d["V"], D, s=0.3), "model.norm.weight": norm(D)}
    for l in range(d["L"]):
        p = f"model.layers.{l}."
        t[p + "input_layernorm.weight"] = norm(D)
        t[p + "post_attention_layernorm.weight"] = norm(D)
        for name, rows, cols in (("q", H * hd, D), ("k", K * hd, D), ("v", K * hd, D), ("o", D, H * hd)):
            t[p + f"self_attn.{name}_proj.weight"] = normal(rows, cols)
            if d["bias"]:
                t[p + f"self_attn.{name}_proj.bias"] = normal(rows, s=0.3)
        t[p + "mlp.gate_proj.weight"] = normal(I, D)
        t[p + "mlp.up_proj.weight"] = normal(I, D)
        t[p + "mlp.down_proj.weight"] = normal(D, I)
    if not d["tied"]:
        t["lm_head.weight"] = normal(d["V"], D, s=0.3)
    return t


def hf_llama_logits(config, w, ids, arith=None, dtype=None):
    """LlamaForCausalLM's forward pass in float32, as transformers computes it: rotate-half
    rotary, repeated KV heads, scores scaled by 1/sqrt(head_dim), RMSNorm in float32.
    arith (see Q8_0Arithmetic) changes the weight matrices and their inputs; dtype
    torch.float64 gives the exact values that float32 approximates."""
    d, arith, dtype = llama_dims(config), arith or Float32Arithmetic(), dtype or torch.float32
    H, K, hd, eps, T = d["H"], d["K"], d["hd"], d["eps"], len(ids)
    w = {k: torch.as_tensor(v, dtype=torch.float32).to(dtype) for k, v in w.items()}

    def rms_norm(x, weight):
        x = x.to(dtype)
        return weight * (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps))

    def linear(x, name):
        y = arith.matmul(x, w[name + ".weight"])
        attention = name.endswith(("q_proj", "k_proj", "v_proj", "o_proj"))
        return y + w[name + ".bias"] if d["bias"] and attention else y

    inv_freq = 1.0 / (d["theta"] ** (torch.arange(0, hd, 2, dtype=torch.int64).to(dtype) / hd))
    freqs = torch.arange(T, dtype=dtype)[:, None] * inv_freq[None, :]              # (T, hd/2)
    emb = torch.cat((freqs, freqs), dim=-1)
    cos, sin = emb.cos(), emb.sin()                                                # (T, hd)

    def rotate_half(x):
        return torch.cat((-x[..., hd // 2:], x[..., :hd // 2]), dim=-1)

    causal = torch.ones(T, T, dtype=torch.bool).tril()
    x = arith.weight(w["model.embed_tokens.weight"])[torch.tensor(ids)]            # (T, D)
    for l in range(d["L"]):
        p = f"model.layers.{l}."
        h = rms_norm(x, w[p + "input_layernorm.weight"])
        q = linear(h, p + "self_attn.q_proj").view(T, H, hd).transpose(0, 1)      # (H, T, hd)
        k = linear(h, p + "self_attn.k_proj").view(T, K, hd).transpose(0, 1)      # (K, T, hd)
        v = linear(h, p + "self_attn.v_proj").view(T, K, hd).transpose(0, 1)
        q, k = q * cos + rotate_half(q) * sin, k * cos + rotate_half(k) * sin
        k = k.repeat_interleave(H // K, dim=0)                                     # head i -> kv i // (H/K)
        v = v.repeat_interleave(H // K, dim=0)
        scores = (q @ k.transpose(1, 2)) * hd ** -0.5                              # (H, T, T)
        scores = scores.masked_fill(~causal, float("-inf"))
        att = torch.softmax(scores.to(dtype), dim=-1)
        o = (att @ v).transpose(0, 1).reshape(T, H * hd)
        x = x + linear(o, p + "self_attn.o_proj")
        h = rms_norm(x, w[p + "post_attention_layernorm.weight"])
        gate, up = linear(h, p + "mlp.gate_proj"), linear(h, p + "mlp.up_proj")
        x = x + linear(F.silu(gate) * up, p + "mlp.down_proj")
    x = rms_norm(x, w["model.norm.weight"])
    head = w["model.embed_tokens.weight"] if d["tied"] else w["lm_head.weight"]
    return arith.matmul(x, head).numpy()


def llama_config(style="v5", **changes):
    """A LlamaForCausalLM config.json; style "v5" (transformers 5: rope_parameters, dtype),
    "v4.40" (rope_theta at the top, rope_scaling null, torch_dtype, no head_dim) or "v4.30"
    (no rope_theta, no num_key_value_heads). changes set keys; None values stay as null."""
    c = {"architectures": ["LlamaForCausalLM"], "attention_bias": False, "attention_dropout": 0.0,
         "bos_token_id": 1, "eos_token_id": 2, "hidden_act": "silu", "hidden_size": 64,
         "initializer_range": 0.1, "intermediate_size": 172, "max_position_embeddings": 512,
         "model_type": "llama", "num_attention_heads": 8, "num_hidden_layers": 2,
         "num_key_value_heads": 4, "pad_token_id": None, "pretraining_tp": 1, "rms_norm_eps": 1e-05,
         "tie_word_embeddings": True, "use_cache": True, "vocab_size": 256}
    theta = changes.pop("rope_theta", 10000.0)
    if style == "v5":
        c.update({"dtype": "float32", "head_dim": None, "mlp_bias": False,
                  "rope_parameters": {"rope_theta": theta, "rope_type": "default"},
                  "transformers_version": "5.17.0"})
    elif style == "v4.40":
        c.update({"rope_scaling": None, "rope_theta": theta, "torch_dtype": "float32",
                  "transformers_version": "4.40.0"})
    else:
        assert style == "v4.30" and theta == 10000.0
        del c["attention_bias"], c["attention_dropout"], c["num_key_value_heads"], c["pretraining_tp"]
        c.update({"torch_dtype": "float32", "transformers_version": "4.30.2"})
    c.update(changes)
    if style == "v5" and c["head_dim"] is None:                 # transformers 5 writes it out
        c["head_dim"] = c["hidden_size"] // c["num_attention_heads"]
    return c


# ---------------------------------------------------------------------------------------------
# GPTNeoForCausalLM
# ---------------------------------------------------------------------------------------------

def gptneo_dims(c):
    """The shape transformers' GPTNeoConfig gives a config.json: attention_layers expanded
    from attention_types, intermediate_size null -> 4 * hidden, tied head by default."""
    D = c["hidden_size"]
    layers = [kind for kinds, repeat in c["attention_types"] for _ in range(repeat) for kind in kinds]
    assert layers == c.get("attention_layers", layers) and len(layers) == c["num_layers"]
    return dict(D=D, H=c["num_heads"], hd=D // c["num_heads"], L=c["num_layers"],
                I=c.get("intermediate_size") or 4 * D, V=c["vocab_size"],
                P=c.get("max_position_embeddings", 2048), eps=c.get("layer_norm_epsilon", 1e-5),
                window=c.get("window_size", 256), layers=layers,
                tied=c.get("tie_word_embeddings", True))


def gptneo_weights(config, seed, std=0.15):
    d, rng = gptneo_dims(config), np.random.default_rng(seed)
    normal = lambda *shape, s=std: (rng.standard_normal(shape) * s).astype(np.float32)
    norm = lambda n: (1.2 + rng.standard_normal(n) * 0.2).astype(np.float32)
    D, I = d["D"], d["I"]
    t = {"transformer.wte.weight": normal(d["V"], D, s=0.3), "transformer.wpe.weight": normal(d["P"], D),
         "transformer.ln_f.weight": norm(D), "transformer.ln_f.bias": normal(D)}
    for l in range(d["L"]):
        p = f"transformer.h.{l}."
        for ln in ("ln_1", "ln_2"):
            t[p + ln + ".weight"], t[p + ln + ".bias"] = norm(D), normal(D)
        for name in ("q_proj", "k_proj", "v_proj", "out_proj"):
            t[p + f"attn.attention.{name}.weight"] = normal(D, D)
        t[p + "attn.attention.out_proj.bias"] = normal(D)
        t[p + "mlp.c_fc.weight"], t[p + "mlp.c_fc.bias"] = normal(I, D), normal(I)
        t[p + "mlp.c_proj.weight"], t[p + "mlp.c_proj.bias"] = normal(D, I), normal(D)
    if not d["tied"]:
        t["lm_head.weight"] = normal(d["V"], D, s=0.3)
    return t


def gelu_new(x):
    return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * torch.pow(x, 3.0))))


def hf_gptneo_logits(config, w, ids, arith=None, dtype=None):
    """GPTNeoForCausalLM's forward pass in float32, as transformers computes it: learned
    positions, no 1/sqrt(head_dim) scaling, local layers see the last window_size keys.
    arith and dtype as for hf_llama_logits."""
    d, arith, dtype = gptneo_dims(config), arith or Float32Arithmetic(), dtype or torch.float32
    D, H, hd, T = d["D"], d["H"], d["hd"], len(ids)
    w = {k: torch.as_tensor(v, dtype=torch.float32).to(dtype) for k, v in w.items()}
    ln = lambda x, name: F.layer_norm(x, (D,), w[name + ".weight"], w[name + ".bias"], d["eps"])
    i, j = torch.arange(T)[:, None], torch.arange(T)[None, :]
    x = arith.weight(w["transformer.wte.weight"])[torch.tensor(ids)] + w["transformer.wpe.weight"][:T]
    for l, kind in enumerate(d["layers"]):
        p = f"transformer.h.{l}."
        a = p + "attn.attention."
        h = ln(x, p + "ln_1")
        q, k, v = (arith.matmul(h, w[a + n + "_proj.weight"]) for n in "qkv")
        q, k, v = (t.view(T, H, hd).transpose(0, 1) for t in (q, k, v))            # (H, T, hd)
        allowed = j <= i
        if kind == "local":
            allowed = allowed & (j > i - d["window"])
        scores = q.to(dtype) @ k.to(dtype).transpose(1, 2)                         # no scaling
        scores = torch.where(allowed, scores, torch.tensor(torch.finfo(dtype).min, dtype=dtype))
        att = torch.softmax(scores, dim=-1)
        o = (att @ v).transpose(0, 1).reshape(T, D)
        x = x + arith.matmul(o, w[a + "out_proj.weight"]) + w[a + "out_proj.bias"]
        h = ln(x, p + "ln_2")
        h = gelu_new(arith.matmul(h, w[p + "mlp.c_fc.weight"]) + w[p + "mlp.c_fc.bias"])
        x = x + arith.matmul(h, w[p + "mlp.c_proj.weight"]) + w[p + "mlp.c_proj.bias"]
    x = ln(x, "transformer.ln_f")
    head = w["transformer.wte.weight"] if d["tied"] else w["lm_head.weight"]
    return arith.matmul(x, head).numpy()


def gptneo_config(pattern, **changes):
    """A GPTNeoForCausalLM config.json as transformers 5 writes it; pattern is attention_types
    ([[kinds, repeat], ...]), from which attention_layers and num_layers follow. bos/eos are
    the last id of the small vocabulary (a model trained with its own tokenizer) unless
    changes say otherwise; transformers' default, 50256, has its own test."""
    layers = [kind for kinds, repeat in pattern for _ in range(repeat) for kind in kinds]
    c = {"activation_function": "gelu_new", "architectures": ["GPTNeoForCausalLM"],
         "attention_dropout": 0.0, "attention_layers": layers, "attention_types": pattern,
         "bos_token_id": 50256, "classifier_dropout": 0.1, "dtype": "float32", "embed_dropout": 0.0,
         "eos_token_id": 50256, "hidden_size": 64, "initializer_range": 0.1,
         "intermediate_size": None, "layer_norm_epsilon": 1e-05, "max_position_embeddings": 2048,
         "model_type": "gpt_neo", "num_heads": 16, "num_layers": len(layers), "pad_token_id": None,
         "resid_dropout": 0.0, "tie_word_embeddings": True, "transformers_version": "5.17.0",
         "use_cache": True, "vocab_size": 300, "window_size": 256}
    c.update(changes)
    for key in ("bos_token_id", "eos_token_id"):
        c[key] = changes.get(key, c["vocab_size"] - 1)
    return c


# ---------------------------------------------------------------------------------------------
# The pipeline under test
# ---------------------------------------------------------------------------------------------

def export(src, out, *extra):
    r = subprocess.run([sys.executable, EXPORT, "model", src, out, *extra],
                       capture_output=True, text=True, timeout=300)
    if r.returncode != 0:
        raise AssertionError(f"export.py model {src} {out} {' '.join(extra)} failed: {r.stderr}")


def run_logits(model, ids, vocab, tmp, out_name="logits.f32"):
    """./run MODEL -m logits: (len(ids), vocab) float32, and the raw bytes."""
    ids_path, out_path = os.path.join(tmp, "ids.txt"), os.path.join(tmp, out_name)
    with open(ids_path, "w") as f:
        f.write(" ".join(map(str, ids)) + "\n")
    # one thread unless told otherwise: results are the same for any thread count, and on a
    # busy machine OpenMP's barriers make these tiny models many times slower
    env = dict(os.environ, OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", "1"))
    r = subprocess.run([RUN, model, "-m", "logits", "--ids", ids_path, "--out", out_path],
                       capture_output=True, timeout=300, env=env)
    if r.returncode != 0:
        raise AssertionError(f"./run {model} -m logits failed ({r.returncode}): {r.stderr.decode()}")
    with open(out_path, "rb") as f:
        raw = f.read()
    assert len(raw) == 4 * len(ids) * vocab, (len(raw), len(ids), vocab)
    return np.frombuffer(raw, "<f4").reshape(len(ids), vocab), raw


class ShapeTest(unittest.TestCase):
    """Builds a checkpoint folder per test, exports it, runs it, compares with the reference."""

    @classmethod
    def setUpClass(cls):
        need_torch()
        need_run()

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="test_shapes_")
        self.addCleanup(shutil.rmtree, self.tmp)

    def build(self, config, weights, fmt="safetensors"):
        folder = os.path.join(self.tmp, "hf")
        write_checkpoint(folder, config, weights, fmt)
        return folder

    def pipeline(self, folder, ids, vocab, dtype="f32"):
        out = os.path.join(self.tmp, f"model-{dtype}.bin")
        export(folder, out, "--dtype", dtype)
        return run_logits(out, ids, vocab, self.tmp)[0]

    def compare(self, name, config, seed, n_tokens, fmt="safetensors", dtypes=("f32",)):
        """Export + run + compare for `config` with seeded weights and n_tokens random ids.
        f32: max |diff| < TOLERANCE from transformers' float32 pass and the same argmax
        everywhere. bf16, q8_0: the float32 argmax at >= QUANT_AGREEMENT of the positions, and
        the logits of the same pass done with bf16 (max |diff| < TOLERANCE) or Q8_0 arithmetic."""
        llama = config["model_type"] == "llama"
        forward = hf_llama_logits if llama else hf_gptneo_logits
        weights = (llama_weights if llama else gptneo_weights)(config, seed)
        vocab = config["vocab_size"]
        ids = [int(i) for i in np.random.default_rng(seed + 1000).integers(0, vocab, n_tokens)]
        folder = self.build(config, weights, fmt)
        want = forward(config, weights, ids)
        self.assertGreater(want.std(), 0.5, "reference logits too flat to tell shapes apart")
        for dtype in dtypes:
            start = time.perf_counter()
            got = self.pipeline(folder, ids, vocab, dtype)
            seconds = time.perf_counter() - start
            diff = float(np.abs(got - want).max())
            agree = float((got.argmax(axis=1) == want.argmax(axis=1)).mean())
            sim_diff = None
            if dtype != "f32":
                arith = Q8_0Arithmetic() if dtype == "q8_0" else Bf16Arithmetic()
                sim_diff = np.abs(got - forward(config, weights, ids, arith))
            RESULTS.append((name, dtype, n_tokens, diff, agree,
                            None if sim_diff is None else float(sim_diff.max()), seconds))
            with self.subTest(dtype=dtype):
                if dtype == "f32":
                    self.assertLess(diff, TOLERANCE, f"{name}: max |logit diff| {diff:.3g}")
                    np.testing.assert_array_equal(got.argmax(axis=1), want.argmax(axis=1),
                                                  f"{name}: argmax differs")
                    continue
                self.assertGreaterEqual(agree, QUANT_AGREEMENT,
                                        f"{name} {dtype}: argmax agrees at {agree:.3f}")
                if dtype == "bf16":
                    self.assertLess(sim_diff.max(), TOLERANCE,
                                    f"{name} bf16: max |diff| from bf16 arithmetic {sim_diff.max():.3g}")
                else:
                    noise = np.abs(forward(config, weights, ids, Q8_0Arithmetic()) - want).mean()
                    self.assertLess(sim_diff.mean(), Q8_0_SIM_RATIO * noise,
                                    f"{name} q8_0: mean |diff| from Q8_0 arithmetic "
                                    f"{sim_diff.mean():.3g}, quantization error {noise:.3g}")


# ---------------------------------------------------------------------------------------------
# 1. The reference passes against what transformers computed (fixtures in $SHARED)
# ---------------------------------------------------------------------------------------------

class ReferenceAgainstTransformers(unittest.TestCase):
    """hf_llama_logits / hf_gptneo_logits reproduce transformers' logits for the fixtures,
    so they may stand in for transformers on the shapes below."""

    @classmethod
    def setUpClass(cls):
        need_torch()

    def check(self, fixture, forward):
        folder = shared(self, "fixtures", "hf", fixture)
        with open(os.path.join(folder, "config.json"), encoding="utf-8") as f:
            config = json.load(f)
        with open(os.path.join(folder, "reference.json"), encoding="utf-8") as f:
            ref = json.load(f)
        vocab = ref["vocab_size"]
        want = np.fromfile(os.path.join(folder, "logits.f32"), "<f4").reshape(-1, vocab)
        weights = read_safetensors(os.path.join(folder, "model.safetensors"))
        got = forward(config, weights, ref["input_ids"])
        diff = float(np.abs(got[ref["logit_positions"]] - want).max())
        RESULTS.append((f"fixture {fixture} (reference only)", "f32", len(ref["input_ids"]),
                        diff, 1.0, None, 0.0))
        self.assertLess(diff, TOLERANCE, f"{fixture}: max |logit diff| {diff:.3g}")
        np.testing.assert_array_equal(got.argmax(axis=1), [t[0] for t in ref["top5"]])
        seq = ref["greedy_prompt"] + ref["greedy_output"]
        n = len(ref["greedy_prompt"])
        np.testing.assert_array_equal(forward(config, weights, seq)[n - 1:-1].argmax(axis=1),
                                      ref["greedy_output"])

    def test_llama_reference(self):
        self.check("llama-hf-gqa", hf_llama_logits)

    def test_gptneo_reference(self):
        self.check("gptneo-tinystories-1m-shape", hf_gptneo_logits)

    def test_gptneo_reference_without_local_mask_is_wrong(self):
        """The fixture's 300 tokens exceed its window of 256, so the local mask matters:
        the same pass with every layer global must miss (the check above can fail)."""
        folder = shared(self, "fixtures", "hf", "gptneo-tinystories-1m-shape")
        with open(os.path.join(folder, "config.json"), encoding="utf-8") as f:
            config = json.load(f)
        with open(os.path.join(folder, "reference.json"), encoding="utf-8") as f:
            ref = json.load(f)
        want = np.fromfile(os.path.join(folder, "logits.f32"), "<f4").reshape(-1, ref["vocab_size"])
        config["attention_types"] = [[["global"], config["num_layers"]]]
        config["attention_layers"] = ["global"] * config["num_layers"]
        got = hf_gptneo_logits(config, read_safetensors(os.path.join(folder, "model.safetensors")),
                               ref["input_ids"])
        self.assertGreater(np.abs(got[ref["logit_positions"]] - want).max(), 1e-2)


# ---------------------------------------------------------------------------------------------
# 2. Llama shapes
# ---------------------------------------------------------------------------------------------

class LlamaShapes(ShapeTest):
    def test_multi_query(self):
        self.compare("llama MQA 8/1", llama_config(num_key_value_heads=1, intermediate_size=96), 1, 40)

    def test_gqa_8_2(self):
        self.compare("llama GQA 8/2", llama_config(num_key_value_heads=2, num_hidden_layers=3), 2, 48)

    def test_mha_v430_pytorch_model_bin(self):
        """Multi-head, and a transformers 4.30 config (no num_key_value_heads, no rope_theta)
        with pytorch_model.bin holding the tied head and rotary_emb.inv_freq buffers."""
        config = llama_config("v4.30", num_attention_heads=4)
        self.assertNotIn("num_key_value_heads", config)
        self.compare("llama MHA 4/4 (4.30 config, .bin)", config, 3, 40, fmt="bin")

    def test_untied_lm_head(self):
        self.compare("llama untied lm_head", llama_config(tie_word_embeddings=False), 4, 40)

    def test_rope_theta_500000_old_style(self):
        config = llama_config("v4.40", rope_theta=500000.0, tie_word_embeddings=False)
        self.assertEqual((config["rope_theta"], config["rope_scaling"]), (500000.0, None))
        self.compare("llama rope_theta 5e5 (top-level)", config, 5, 64)

    def test_rope_theta_1e6_rope_parameters(self):
        config = llama_config(rope_theta=1000000.0)
        self.assertEqual(config["rope_parameters"]["rope_theta"], 1e6)
        self.compare("llama rope_theta 1e6 (rope_parameters)", config, 6, 64)

    def test_rope_theta_matters(self):
        """The same weights with theta 1e6 and 1e4 give different logits (so the two tests
        above would notice a theta that export.py or ./run drops)."""
        config = llama_config(rope_theta=1000000.0)
        weights, ids = llama_weights(config, 6), list(range(0, 256, 4))
        a = hf_llama_logits(config, weights, ids)
        b = hf_llama_logits(llama_config(), weights, ids)
        self.assertGreater(np.abs(a - b).max(), 1e-2)

    def test_rms_norm_eps_1e6(self):
        self.compare("llama rms_norm_eps 1e-6", llama_config(rms_norm_eps=1e-06), 7, 40)

    def test_head_dim_not_hidden_over_heads(self):
        """hidden 64, 4 heads of 32: q and the attention output are 128 wide."""
        config = llama_config(num_attention_heads=4, num_key_value_heads=2, head_dim=32)
        self.compare("llama head_dim 32 (hidden 64, 4 heads)", config, 8, 40)

    def test_hidden_not_multiple_of_heads(self):
        config = llama_config(hidden_size=40, num_attention_heads=3, num_key_value_heads=1,
                              head_dim=16, intermediate_size=72, vocab_size=199)
        self.compare("llama hidden 40, 3 heads of 16, vocab 199", config, 9, 40)

    def test_odd_intermediate_size(self):
        self.compare("llama intermediate 100", llama_config(intermediate_size=100), 10, 40)

    def test_attention_bias(self):
        config = llama_config(attention_bias=True, num_key_value_heads=2)
        self.compare("llama attention_bias", config, 11, 40)

    def test_sequence_at_max_position_embeddings(self):
        config = llama_config(max_position_embeddings=64, num_key_value_heads=2)
        self.compare("llama 64 tokens, max_position_embeddings 64", config, 12, 64)

    def test_wide_heads_long_sequence(self):
        """hidden 128, 2 heads of 64, 100 tokens: logits spread wider (std 4, up to 17) and
        q.k products grow, so float32 rounding alone moves transformers' own logits 2.2e-4 from
        the exact (float64) values, asserted below. The tolerance is 4e-4 here, against both;
        measured: 1.5e-4 from transformers' float32, 3.2e-4 from float64."""
        config = llama_config(hidden_size=128, num_attention_heads=2, num_key_value_heads=1,
                              intermediate_size=64)
        weights = llama_weights(config, 14)
        ids = [int(i) for i in np.random.default_rng(1014).integers(0, 256, 100)]
        want = hf_llama_logits(config, weights, ids)
        exact = hf_llama_logits(config, weights, ids, dtype=torch.float64).astype(np.float64)
        self.assertGreater(np.abs(want - exact).max(), TOLERANCE, "float32 rounding is smaller "
                           "than expected: this shape should then meet the 1e-4 tolerance")
        got = self.pipeline(self.build(config, weights), ids, 256)
        diff = float(np.abs(got - want).max())
        RESULTS.append(("llama hidden 128, 2x64 heads (sim column: float64)", "f32", 100, diff,
                        float((got.argmax(1) == want.argmax(1)).mean()),
                        float(np.abs(got - exact).max()), 0.0))
        self.assertLess(diff, 4e-4)
        self.assertLess(np.abs(got - exact).max(), 4e-4)
        np.testing.assert_array_equal(got.argmax(axis=1), want.argmax(axis=1))

    def test_bos_eos_outside_small_vocabulary(self):
        """A Llama 3 style config (bos 128000, eos [128001, 128009]) on a 256-token model:
        transformers never uses these ids in a forward pass, nor may the logits depend on them."""
        config = llama_config(bos_token_id=128000, eos_token_id=[128001, 128009])
        self.compare("llama vocab 256, bos 128000, eos [128001, 128009]", config, 15, 40)

    def test_quantized(self):
        """q8_0 and bf16 exports (intermediate 100 is not a multiple of the group size 64)."""
        config = llama_config(num_key_value_heads=2, intermediate_size=100, num_hidden_layers=3)
        self.compare("llama GQA 8/2, intermediate 100", config, 13, 64, dtypes=("f32", "q8_0", "bf16"))


# ---------------------------------------------------------------------------------------------
# 3. GPT-Neo shapes
# ---------------------------------------------------------------------------------------------

class GptNeoShapes(ShapeTest):
    def test_window_4(self):
        """window 4 with 20 tokens: local layers see only the last 4 positions."""
        config = gptneo_config([[["global", "local"], 2]], window_size=4)
        self.compare("gpt-neo window 4, 20 tokens", config, 21, 20)

    def test_all_global(self):
        config = gptneo_config([[["global"], 3]], hidden_size=48, num_heads=6)
        self.compare("gpt-neo all global, 6 heads of 8", config, 22, 32)

    def test_all_local_at_max_positions(self):
        """Every layer local (window 5) and 24 tokens = max_position_embeddings, so the last
        row of wpe is used."""
        config = gptneo_config([[["local"], 2]], window_size=5, max_position_embeddings=24,
                               hidden_size=32, num_heads=2)
        self.compare("gpt-neo all local, window 5, 24 = max positions", config, 23, 24)

    def test_local_global_pattern(self):
        config = gptneo_config([[["local", "global"], 2]], window_size=6)
        self.compare("gpt-neo [local, global] x 2, window 6", config, 24, 30)

    def test_intermediate_size_explicit(self):
        config = gptneo_config([[["global", "local"], 1]], window_size=8, intermediate_size=100)
        self.compare("gpt-neo intermediate 100", config, 25, 30)

    def test_untied_lm_head(self):
        config = gptneo_config([[["global", "local"], 1]], window_size=8, tie_word_embeddings=False)
        self.compare("gpt-neo untied lm_head", config, 26, 30)

    def test_layer_norm_epsilon_1e6(self):
        config = gptneo_config([[["global", "local"], 1]], window_size=8, layer_norm_epsilon=1e-06)
        self.compare("gpt-neo layer_norm_epsilon 1e-6", config, 27, 30)

    def test_one_layer(self):
        config = gptneo_config([[["global"], 1]], hidden_size=32, num_heads=4)
        self.compare("gpt-neo 1 layer", config, 28, 30)

    def test_pytorch_model_bin_with_mask_buffers(self):
        """pytorch_model.bin as older transformers saved it: the tied lm_head sharing wte's
        storage, and the bool attn.attention.bias / masked_bias buffers of every layer."""
        config = gptneo_config([[["global", "local"], 2]], window_size=7, max_position_embeddings=64)
        self.compare("gpt-neo pytorch_model.bin + mask buffers", config, 29, 40, fmt="bin")

    def test_default_bos_eos_outside_small_vocabulary(self):
        """transformers' GPTNeoConfig defaults bos/eos to 50256, so a checkpoint with a small
        vocabulary can carry ids outside it; transformers never uses them in a forward pass,
        and the logits must not depend on them either."""
        config = gptneo_config([[["global", "local"], 1]], window_size=8,
                               bos_token_id=50256, eos_token_id=50256)
        self.compare("gpt-neo vocab 300, bos/eos 50256", config, 31, 30)

    def test_quantized(self):
        config = gptneo_config([[["global", "local"], 2]], window_size=4)
        self.compare("gpt-neo window 4", config, 30, 64, dtypes=("f32", "q8_0", "bf16"))


# ---------------------------------------------------------------------------------------------
# 4. A llama2.c legacy file converted to TSMF computes exactly what the legacy file does
# ---------------------------------------------------------------------------------------------

class Stories260KBitwise(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        need_torch()                                # numpy, here and in export.py
        need_run()

    def test_legacy_and_tsmf_logits_identical(self):
        legacy = shared(self, "models", "stories260K.bin")
        with tempfile.TemporaryDirectory(prefix="test_shapes_") as tmp:
            tsmf = os.path.join(tmp, "s260k.bin")
            start = time.perf_counter()
            export(legacy, tsmf)
            ids = [1] + [int(i) for i in np.random.default_rng(260).integers(0, 512, 199)]
            a, raw_a = run_logits(legacy, ids, 512, tmp, "legacy.f32")
            b, raw_b = run_logits(tsmf, ids, 512, tmp, "tsmf.f32")
            RESULTS.append(("stories260K legacy vs TSMF (bitwise)", "f32", len(ids),
                            float(np.abs(a - b).max()), float((a.argmax(1) == b.argmax(1)).mean()),
                            None, time.perf_counter() - start))
            self.assertGreater(a.std(), 0.5)
            self.assertEqual(raw_a, raw_b, "logits of the TSMF export differ from the legacy file's")


def tearDownModule():
    if os.environ.get("SHAPES_REPORT") and RESULTS:
        lines = [f"\n{'case':<52} {'dtype':<5} {'tokens':>6} {'max|diff|':>10} {'argmax':>7} "
                 f"{'vs sim':>9} {'s':>5}"]
        for name, dtype, n, diff, agree, sim, seconds in RESULTS:
            sim = "" if sim is None else f"{sim:.3g}"
            lines.append(f"{name:<52} {dtype:<5} {n:>6} {diff:>10.3g} {agree:>7.1%} {sim:>9} "
                         f"{seconds:>5.2f}")
        sys.stderr.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    unittest.main()
