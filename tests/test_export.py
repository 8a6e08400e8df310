"""Tests of export.py. Run from the repository root:

    /usr/bin/python3 -m unittest discover -s tests -p 'test_export*.py'

Test data (real models, Hugging Face fixtures with reference logits) is read from $SHARED,
by default ../shared beside the repository; tests that need it skip when it is absent.

Everything here reads TSMF files with its own code written from the format spec, so that
export.py is checked against the spec rather than against itself.
"""

import importlib.util
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import unittest

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXPORT = os.path.join(REPO, "export.py")
SHARED = os.environ.get("SHARED", os.path.join(REPO, "..", "shared"))
LLAMA_HF = os.path.join("fixtures", "hf", "llama-hf-gqa")
GPTNEO_HF = os.path.join("fixtures", "hf", "gptneo-tinystories-1m-shape")


def shared(test, *parts):
    """Path of a test data file under $SHARED; skips the test when it is absent."""
    path = os.path.join(SHARED, *parts)
    if not os.path.exists(path):
        test.skipTest(f"{path} not found (set SHARED to the shared test data folder)")
    return path


def read_json(path):
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def run_export(*args):
    return subprocess.run([sys.executable, EXPORT, *map(str, args)],
                          capture_output=True, text=True, timeout=120)


class TempDirTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="test_export_")
        self.addCleanup(shutil.rmtree, self.tmp)

    def path(self, name):
        return os.path.join(self.tmp, name)

    def export(self, *args):
        """Run export.py, which must succeed."""
        result = run_export(*args)
        self.assertEqual(result.returncode, 0, result.stderr)
        return result


# ---------------------------------------------------------------------------------------------
# An independent TSMF reader (format spec, version 1)
# ---------------------------------------------------------------------------------------------

HEADER = struct.Struct("<4sIII" + "i" * 11 + "I" + "ii" + "ff" + "iiii" + "QQQQ")
HEADER_NAMES = ("magic version header_size arch dim hidden_dim n_layers n_heads n_kv_heads "
                "head_dim vocab_size seq_len norm_kind act_kind pos_kind flags weight_type "
                "group_size rope_theta norm_eps tokenizer_kind bos_id eos_id reserved "
                "weights_offset weights_size tokenizer_offset tokenizer_size").split()
TIED, QKV_BIAS, OUT_BIAS, MLP_BIAS, SCALE_ATTN = 1, 2, 4, 8, 16


class Tsmf:
    def __init__(self, path):
        with open(path, "rb") as f:
            self.raw = f.read()
        h = self.h = dict(zip(HEADER_NAMES, HEADER.unpack_from(self.raw)))
        assert h["magic"] == b"TSMF" and h["version"] == 1 and h["header_size"] == 256
        self.layer_window = list(np.frombuffer(self.raw, "<i4", h["n_layers"], 256))
        self.pos = h["weights_offset"]
        assert self.pos % 64 == 0
        d, hidden, q_dim = h["dim"], h["hidden_dim"], h["n_heads"] * h["head_dim"]
        kv_dim, flags, ln = h["n_kv_heads"] * h["head_dim"], h["flags"], h["norm_kind"] == 2
        self.tok_embedding = self.matrix((h["vocab_size"], d))
        self.pos_embedding = self.f32((h["seq_len"], d)) if h["pos_kind"] == 2 else None
        self.layers = []
        for _ in range(h["n_layers"]):
            t = {"attn_norm_weight": self.f32((d,))}
            if ln:
                t["attn_norm_bias"] = self.f32((d,))
            t["wq"], t["wk"], t["wv"] = (self.matrix(s) for s in ((q_dim, d), (kv_dim, d), (kv_dim, d)))
            if flags & QKV_BIAS:
                t["bq"], t["bk"], t["bv"] = self.f32((q_dim,)), self.f32((kv_dim,)), self.f32((kv_dim,))
            t["wo"] = self.matrix((d, q_dim))
            if flags & OUT_BIAS:
                t["bo"] = self.f32((d,))
            t["ffn_norm_weight"] = self.f32((d,))
            if ln:
                t["ffn_norm_bias"] = self.f32((d,))
            t["w1"] = self.matrix((hidden, d))
            if flags & MLP_BIAS:
                t["b1"] = self.f32((hidden,))
            if h["act_kind"] == 1:
                t["w3"] = self.matrix((hidden, d))
            t["w2"] = self.matrix((d, hidden))
            if flags & MLP_BIAS:
                t["b2"] = self.f32((d,))
            self.layers.append(t)
        self.final_norm_weight = self.f32((d,))
        self.final_norm_bias = self.f32((d,)) if ln else None
        self.classifier = self.tok_embedding if flags & TIED else self.matrix((h["vocab_size"], d))
        assert self.pos == h["weights_offset"] + h["weights_size"], (self.pos, h)
        start, size = h["tokenizer_offset"], h["tokenizer_size"]
        assert start % 64 == 0
        self.tokenizer = self.raw[start:start + size]
        assert len(self.raw) == max(self.pos, start + size)

    def take(self, nbytes):
        self.pos = (self.pos + 63) // 64 * 64
        start, self.pos = self.pos, self.pos + nbytes
        assert self.pos <= len(self.raw)
        return start

    def f32(self, shape):
        n = int(np.prod(shape))
        return np.frombuffer(self.raw, "<f4", n, self.take(4 * n)).reshape(shape)

    def matrix(self, shape):
        n, kind = int(np.prod(shape)), self.h["weight_type"]
        if kind == 0:
            return self.f32(shape)
        if kind == 2:
            bits = np.frombuffer(self.raw, "<u2", n, self.take(2 * n))
            return (bits.astype(np.uint32) << 16).view(np.float32).reshape(shape)
        gs, (rows, cols) = self.h["group_size"], shape       # Q8_0: groups cut per row
        groups = -(-cols // gs)
        q = np.frombuffer(self.raw, np.int8, n, self.take(n)).reshape(rows, cols)
        s = np.frombuffer(self.raw, "<f4", rows * groups, self.take(4 * rows * groups))
        return q * s.reshape(rows, groups)[:, np.arange(cols) // gs]     # W[i][j] = q * s[i][j/gs]

    def matrices(self):
        """name -> matrix (all matrix tensors), for comparisons."""
        out = {"tok_embedding": self.tok_embedding}
        if not self.h["flags"] & TIED:
            out["classifier"] = self.classifier
        for l, t in enumerate(self.layers):
            out.update({f"{l}.{k}": v for k, v in t.items() if k[0] == "w"})
        return out


# ---------------------------------------------------------------------------------------------
# Reference forward pass in numpy (float64), driven by the TSMF header fields
# ---------------------------------------------------------------------------------------------

def norm(m, x, w, b):
    if m.h["norm_kind"] == 1:                                   # RMSNorm
        return x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + m.h["norm_eps"]) * w
    mu = x.mean(axis=-1, keepdims=True)                         # LayerNorm
    var = ((x - mu) ** 2).mean(axis=-1, keepdims=True)
    return (x - mu) / np.sqrt(var + m.h["norm_eps"]) * w + b


def rotary(m, v, n_heads):
    """llama2.c rotary: adjacent pairs (2i, 2i+1) of each head rotated by pos*theta^(-2i/hd)."""
    hd, T = m.h["head_dim"], v.shape[0]
    freq = m.h["rope_theta"] ** (-np.arange(0, hd, 2) / hd)
    angle = np.arange(T)[:, None, None] * freq[None, None, :]
    pairs = v.reshape(T, n_heads, hd // 2, 2)
    a, b = pairs[..., 0], pairs[..., 1]
    out = np.stack([a * np.cos(angle) - b * np.sin(angle), a * np.sin(angle) + b * np.cos(angle)], -1)
    return out.reshape(T, n_heads * hd)


def gelu_new(x):
    return 0.5 * x * (1 + np.tanh(np.sqrt(2 / np.pi) * (x + 0.044715 * x ** 3)))


def reference_logits(m, tokens, positions):
    h, T = m.h, len(tokens)
    H, K, hd = h["n_heads"], h["n_kv_heads"], h["head_dim"]
    f64 = lambda a: None if a is None else np.asarray(a, np.float64)
    x = f64(m.tok_embedding)[tokens]
    if h["pos_kind"] == 2:
        x = x + f64(m.pos_embedding)[:T]
    i, j = np.arange(T)[:, None], np.arange(T)[None, :]
    for l, t in enumerate(m.layers):
        t = {k: f64(v) for k, v in t.items()}
        xn = norm(m, x, t["attn_norm_weight"], t.get("attn_norm_bias"))
        q, k, v = xn @ t["wq"].T, xn @ t["wk"].T, xn @ t["wv"].T
        if h["flags"] & QKV_BIAS:
            q, k, v = q + t["bq"], k + t["bk"], v + t["bv"]
        if h["pos_kind"] == 1:
            q, k = rotary(m, q, H), rotary(m, k, K)
        q = q.reshape(T, H, hd)
        k = np.repeat(k.reshape(T, K, hd), H // K, axis=1)      # GQA: head -> head // (H/K)
        v = np.repeat(v.reshape(T, K, hd), H // K, axis=1)
        scores = np.einsum("ihd,jhd->hij", q, k)
        if h["flags"] & SCALE_ATTN:
            scores /= np.sqrt(hd)
        w = m.layer_window[l]
        visible = (j <= i) & ((j > i - w) if w > 0 else True)
        scores = np.where(visible, scores, -np.inf)
        p = np.exp(scores - scores.max(axis=-1, keepdims=True))
        p /= p.sum(axis=-1, keepdims=True)
        attn = np.einsum("hij,jhd->ihd", p, v).reshape(T, H * hd) @ t["wo"].T
        x = x + attn + (t["bo"] if h["flags"] & OUT_BIAS else 0)
        xn = norm(m, x, t["ffn_norm_weight"], t.get("ffn_norm_bias"))
        if h["act_kind"] == 1:
            a = xn @ t["w1"].T
            x = x + (a / (1 + np.exp(-a)) * (xn @ t["w3"].T)) @ t["w2"].T
        else:
            x = x + gelu_new(xn @ t["w1"].T + t["b1"]) @ t["w2"].T + t["b2"]
    x = norm(m, x[positions], f64(m.final_norm_weight), f64(m.final_norm_bias))
    return x @ f64(m.classifier).T


# ---------------------------------------------------------------------------------------------
# Small helpers for source formats (safetensors, llama2.c files, GPT-2 tokenizer section)
# ---------------------------------------------------------------------------------------------

def read_safetensors(path):
    with open(path, "rb") as f:
        raw = f.read()
    n = struct.unpack_from("<Q", raw)[0]
    header = json.loads(raw[8:8 + n])
    dtypes = {"F32": "<f4", "BF16": "<u2"}
    return {name: np.frombuffer(raw, dtypes[e["dtype"]], int(np.prod(e["shape"])),
                                8 + n + e["data_offsets"][0]).reshape(e["shape"])
            for name, e in header.items() if name != "__metadata__"}


def write_safetensors(path, tensors):
    """tensors: name -> float32 array, or uint16 array holding bfloat16 bits."""
    header, pos = {}, 0
    for name, a in tensors.items():
        dtype = "BF16" if a.dtype == np.uint16 else "F32"
        header[name] = {"dtype": dtype, "shape": list(a.shape), "data_offsets": [pos, pos + a.nbytes]}
        pos += a.nbytes
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text)
        for a in tensors.values():
            f.write(a.tobytes())


def random_llama2c_weights(rng, dim, hidden, n_layers, n_heads, n_kv_heads, vocab):
    kv = n_kv_heads * dim // n_heads
    shapes = {"tok_embeddings": (vocab, dim), "attention_norm": (n_layers, dim),
              "wq": (n_layers, dim, dim), "wk": (n_layers, kv, dim), "wv": (n_layers, kv, dim),
              "wo": (n_layers, dim, dim), "ffn_norm": (n_layers, dim),
              "w1": (n_layers, hidden, dim), "w2": (n_layers, dim, hidden),
              "w3": (n_layers, hidden, dim), "norm": (dim,), "output": (vocab, dim)}
    return {k: rng.standard_normal(s).astype(np.float32) for k, s in shapes.items()}


LEGACY_ORDER = ["tok_embeddings", "attention_norm", "wq", "wk", "wv", "wo", "ffn_norm",
                "w1", "w2", "w3", "norm"]
V1_ORDER = ["attention_norm", "ffn_norm", "norm", "tok_embeddings", "wq", "wk", "wv", "wo",
            "w1", "w2", "w3"]


def read_legacy(path):
    """params and tensors of a legacy llama2.c model file (7 x i32 header, f32 data)."""
    with open(path, "rb") as f:
        raw = f.read()
    p = dict(zip(("dim", "hidden", "layers", "heads", "kv_heads", "vocab", "seq"),
                 struct.unpack_from("<7i", raw)))
    d, hd, L, vocab = p["dim"], p["hidden"], p["layers"], abs(p["vocab"])
    kv, half = p["kv_heads"] * d // p["heads"], d // p["heads"] // 2
    shapes = {"tok_embeddings": (vocab, d), "attention_norm": (L, d), "wq": (L, d, d),
              "wk": (L, kv, d), "wv": (L, kv, d), "wo": (L, d, d), "ffn_norm": (L, d),
              "w1": (L, hd, d), "w2": (L, d, hd), "w3": (L, hd, d), "norm": (d,),
              "freq_cis_real": (p["seq"], half), "freq_cis_imag": (p["seq"], half),
              "output": (vocab, d)}
    order = LEGACY_ORDER + ["freq_cis_real", "freq_cis_imag"] + (["output"] if p["vocab"] < 0 else [])
    tensors, pos = {}, 28
    for name in order:
        n = int(np.prod(shapes[name]))
        tensors[name] = np.frombuffer(raw, "<f4", n, pos).reshape(shapes[name])
        pos += 4 * n
    assert pos == len(raw)
    return p, tensors


def write_legacy(path, w, seq_len, shared):
    dim, vocab = w["tok_embeddings"].shape[1], w["tok_embeddings"].shape[0]
    L, hidden = w["w1"].shape[:2]
    n_heads, n_kv = 4, 4 * w["wk"].shape[1] // dim
    freq = np.zeros((2, seq_len, dim // n_heads // 2), np.float32)
    with open(path, "wb") as f:
        f.write(struct.pack("<7i", dim, hidden, L, n_heads, n_kv, vocab if shared else -vocab, seq_len))
        for name in LEGACY_ORDER:
            f.write(w[name].tobytes())
        f.write(freq.tobytes())
        if not shared:
            f.write(w["output"].tobytes())


def llama2c_v_header(version, w, seq_len, shared, group_size=None):
    dim, vocab = w["tok_embeddings"].shape[1], w["tok_embeddings"].shape[0]
    L, hidden = w["w1"].shape[:2]
    head = struct.pack("<Ii7iB", 0x616B3432, version, dim, hidden, L, 4, 4 * w["wk"].shape[1] // dim,
                       vocab, seq_len, int(shared))
    if group_size:
        head += struct.pack("<i", group_size)
    return head.ljust(256, b"\0")


def write_v1(path, w, seq_len, shared):
    with open(path, "wb") as f:
        f.write(llama2c_v_header(1, w, seq_len, shared))
        for name in V1_ORDER + ([] if shared else ["output"]):
            f.write(w[name].tobytes())


def write_v2(path, w, seq_len, shared, group_size):
    """llama2.c version 2 (Q8_0); returns the dequantized weights it stores."""
    stored = dict(w)
    with open(path, "wb") as f:
        f.write(llama2c_v_header(2, w, seq_len, shared, group_size))
        for name in ["attention_norm", "ffn_norm", "norm"]:
            f.write(w[name].tobytes())
        quantized = ["tok_embeddings", "wq", "wk", "wv", "wo", "w1", "w2", "w3"]
        for name in quantized + ([] if shared else ["output"]):
            layers = w[name] if w[name].ndim == 3 else [w[name]]
            restored = []
            for a in layers:
                g = a.reshape(-1, group_size)
                s = (np.abs(g).max(axis=1) / 127).astype(np.float32)
                q = np.round(g / s[:, None]).astype(np.int8)
                f.write(q.tobytes() + s.tobytes())
                restored.append((q * s[:, None]).astype(np.float32).reshape(a.shape))
            stored[name] = np.stack(restored) if w[name].ndim == 3 else restored[0]
    return stored


def assert_q8_0_error(test, quantized, original, group_size):
    """Each value within half a quantization step (max|w| of its row group / 127 / 2)."""
    for name, w in original.items():
        rows, cols = w.shape
        groups = -(-cols // group_size)
        padded = np.pad(np.abs(w), ((0, 0), (0, groups * group_size - cols)))
        step = padded.reshape(rows, groups, group_size).max(axis=2) / 127
        bound = step[:, np.arange(cols) // group_size] / 2 * (1 + 1e-5)
        test.assertTrue((np.abs(quantized[name] - w) <= bound).all(), name)
        test.assertGreater(np.abs(quantized[name] - w).max(), 0, name)


def llama2c_tensors_match(test, m, w):
    """The TSMF tensors equal llama2.c weights w (stacked per layer)."""
    np.testing.assert_array_equal(m.tok_embedding, w["tok_embeddings"])
    np.testing.assert_array_equal(m.final_norm_weight, w["norm"])
    np.testing.assert_array_equal(m.classifier, w["output"])
    names = {"attn_norm_weight": "attention_norm", "ffn_norm_weight": "ffn_norm",
             "wq": "wq", "wk": "wk", "wv": "wv", "wo": "wo", "w1": "w1", "w2": "w2", "w3": "w3"}
    for l, t in enumerate(m.layers):
        test.assertEqual(set(t), set(names))
        for ours, theirs in names.items():
            np.testing.assert_array_equal(t[ours], w[theirs][l], f"layer {l} {ours}")


def parse_gpt2_section(data):
    n_tokens, n_merges = struct.unpack_from("<ii", data)
    tokens, pos = [], 8
    for _ in range(n_tokens):
        n = struct.unpack_from("<i", data, pos)[0]
        tokens.append(data[pos + 4:pos + 4 + n])
        pos += 4 + n
    merges = np.frombuffer(data, "<i4", 3 * n_merges, pos).reshape(-1, 3)
    assert pos + merges.nbytes == len(data)
    return tokens, merges


# ---------------------------------------------------------------------------------------------
# 1. sentencepiece -> llama2.c tokenizer.bin
# ---------------------------------------------------------------------------------------------

class TokenizerConversion(TempDirTest):
    def test_llama2_tokenizer_byte_identical(self):
        model = shared(self, "models", "llama2-tokenizer.model")
        expected = shared(self, "models", "llama2-tokenizer.bin")
        self.export("tokenizer", model, self.path("tok.bin"))
        with open(self.path("tok.bin"), "rb") as a, open(expected, "rb") as b:
            ours, theirs = a.read(), b.read()
        self.assertEqual(len(ours), len(theirs))
        self.assertEqual(ours, theirs)
        self.assertEqual(os.listdir(self.tmp), ["tok.bin"])


# ---------------------------------------------------------------------------------------------
# 2. Hugging Face checkpoints: logits of a reference forward pass over the exported file
# ---------------------------------------------------------------------------------------------

class HuggingFaceLogits(TempDirTest):
    def check_logits(self, folder, out, fixture):
        ref = read_json(os.path.join(fixture, "reference.json"))
        expected = np.fromfile(os.path.join(fixture, "logits.f32"), "<f4")
        expected = expected.reshape(len(ref["logit_positions"]), ref["vocab_size"])
        self.export("model", folder, out)
        m = Tsmf(out)
        logits = reference_logits(m, ref["input_ids"], ref["logit_positions"])
        self.assertLess(np.abs(logits - expected).max(), 1e-4)
        np.testing.assert_array_equal(logits.argmax(axis=1), expected.argmax(axis=1))
        return m

    def test_llama_gqa(self):
        fixture = shared(self, LLAMA_HF)
        m = self.check_logits(fixture, self.path("llama.bin"), fixture)
        h = m.h
        self.assertEqual((h["arch"], h["dim"], h["hidden_dim"], h["n_layers"], h["n_heads"],
                          h["n_kv_heads"], h["head_dim"], h["vocab_size"], h["seq_len"]),
                         (1, 64, 172, 5, 8, 4, 8, 512, 512))
        self.assertEqual((h["norm_kind"], h["act_kind"], h["pos_kind"], h["flags"]),
                         (1, 1, 1, TIED | SCALE_ATTN))
        self.assertEqual((h["rope_theta"], h["bos_id"], h["eos_id"], h["tokenizer_kind"]),
                         (10000.0, 1, 2, 0))
        self.assertAlmostEqual(h["norm_eps"], 1e-5, places=10)
        self.assertEqual(m.layer_window, [0] * 5)

    def test_gptneo_safetensors(self):
        fixture = shared(self, GPTNEO_HF)
        m = self.check_logits(fixture, self.path("neo.bin"), fixture)
        h = m.h
        self.assertEqual((h["arch"], h["dim"], h["hidden_dim"], h["n_layers"], h["n_heads"],
                          h["n_kv_heads"], h["head_dim"], h["vocab_size"], h["seq_len"]),
                         (2, 64, 256, 8, 16, 16, 4, 50257, 2048))
        self.assertEqual((h["norm_kind"], h["act_kind"], h["pos_kind"], h["flags"]),
                         (2, 2, 2, TIED | OUT_BIAS | MLP_BIAS))
        self.assertEqual((h["bos_id"], h["eos_id"]), (50256, 50256))
        self.assertEqual(m.layer_window, [0, 256] * 4)

    def test_gptneo_attention_types_expanded(self):
        fixture = shared(self, GPTNEO_HF)
        config = read_json(os.path.join(fixture, "config.json"))
        del config["attention_layers"]
        config["attention_types"] = [[["local"], 1], [["global", "local"], 3], [["global"], 1]]
        folder = self.path("neo")
        os.mkdir(folder)
        with open(os.path.join(folder, "config.json"), "w") as f:
            json.dump(config, f)
        os.symlink(os.path.join(os.path.abspath(fixture), "model.safetensors"),
                   os.path.join(folder, "model.safetensors"))
        self.export("model", folder, self.path("neo.bin"))
        self.assertEqual(Tsmf(self.path("neo.bin")).layer_window, [256, 0, 256, 0, 256, 0, 256, 0])

    def test_gptneo_pytorch_model_bin(self):
        fixture = shared(self, GPTNEO_HF)
        if importlib.util.find_spec("torch") is None:
            self.skipTest("torch not installed (needed to read pytorch_model.bin)")
        folder = self.path("neo")
        os.mkdir(folder)
        shutil.copy(os.path.join(fixture, "config.json"), folder)
        os.symlink(os.path.join(os.path.abspath(fixture), "pytorch_model.bin"),
                   os.path.join(folder, "pytorch_model.bin"))
        self.check_logits(folder, self.path("neo.bin"), fixture)

    def test_llama_sharded_safetensors_same_file(self):
        fixture = shared(self, LLAMA_HF)
        tensors = read_safetensors(os.path.join(fixture, "model.safetensors"))
        folder = self.path("sharded")
        os.mkdir(folder)
        shutil.copy(os.path.join(fixture, "config.json"), folder)
        names = sorted(tensors)
        weight_map = {}
        for i, part in enumerate((names[:20], names[20:])):
            shard = f"model-0000{i + 1}-of-00002.safetensors"
            write_safetensors(os.path.join(folder, shard), {n: tensors[n] for n in part})
            weight_map.update({n: shard for n in part})
        with open(os.path.join(folder, "model.safetensors.index.json"), "w") as f:
            json.dump({"metadata": {}, "weight_map": weight_map}, f)
        self.export("model", fixture, self.path("a.bin"))
        self.export("model", folder, self.path("b.bin"))
        with open(self.path("a.bin"), "rb") as a, open(self.path("b.bin"), "rb") as b:
            self.assertEqual(a.read(), b.read())

    def test_llama_bf16_checkpoint_bits_kept(self):
        fixture = shared(self, LLAMA_HF)
        tensors = read_safetensors(os.path.join(fixture, "model.safetensors"))
        bf16 = {n: (a.view(np.uint32) >> 16).astype(np.uint16) for n, a in tensors.items()}
        folder = self.path("bf16")
        os.mkdir(folder)
        shutil.copy(os.path.join(fixture, "config.json"), folder)
        write_safetensors(os.path.join(folder, "model.safetensors"), bf16)
        self.export("model", folder, self.path("bf16.bin"), "--dtype", "bf16")
        m = Tsmf(self.path("bf16.bin"))
        self.assertEqual(m.h["weight_type"], 2)
        as_f32 = lambda bits: (bits.astype(np.uint32) << 16).view(np.float32)
        np.testing.assert_array_equal(m.tok_embedding, as_f32(bf16["model.embed_tokens.weight"]))
        np.testing.assert_array_equal(m.layers[3]["w2"],
                                      as_f32(bf16["model.layers.3.mlp.down_proj.weight"]))
        np.testing.assert_array_equal(m.layers[3]["ffn_norm_weight"],
                                      as_f32(bf16["model.layers.3.post_attention_layernorm.weight"]))

    def test_llama_attention_bias_against_rotate_half(self):
        """attention_bias: biases of q and k are un-permuted like their weights. Checked
        against a forward pass on the Hugging Face tensors with rotate-half rotary."""
        fixture = shared(self, LLAMA_HF)
        config = read_json(os.path.join(fixture, "config.json"))
        config.update(attention_bias=True, tie_word_embeddings=False)
        tensors = dict(read_safetensors(os.path.join(fixture, "model.safetensors")))
        rng = np.random.default_rng(5)
        for l in range(config["num_hidden_layers"]):
            for proj, n in (("q", 64), ("k", 32), ("v", 32), ("o", 64)):
                tensors[f"model.layers.{l}.self_attn.{proj}_proj.bias"] = \
                    rng.standard_normal(n).astype(np.float32) * 0.5
        tensors["lm_head.weight"] = rng.standard_normal((512, 64)).astype(np.float32)
        folder = self.path("bias")
        os.mkdir(folder)
        with open(os.path.join(folder, "config.json"), "w") as f:
            json.dump(config, f)
        write_safetensors(os.path.join(folder, "model.safetensors"), tensors)
        self.export("model", folder, self.path("bias.bin"))
        m = Tsmf(self.path("bias.bin"))
        self.assertEqual(m.h["flags"], QKV_BIAS | OUT_BIAS | SCALE_ATTN)
        tokens = list(rng.integers(0, 512, 40))
        ours = reference_logits(m, tokens, list(range(40)))
        theirs = hf_llama_rotate_half_logits(tensors, config, tokens)
        self.assertLess(np.abs(ours - theirs).max(), 1e-6)


def hf_llama_rotate_half_logits(t, config, tokens):
    """Llama forward pass on Hugging Face tensors, with its rotate-half rotary layout."""
    t = {k: np.asarray(v, np.float64) for k, v in t.items()}
    H, K, hd = config["num_attention_heads"], config["num_key_value_heads"], config["head_dim"]
    T, eps = len(tokens), config["rms_norm_eps"]
    rms = lambda x, w: x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + eps) * w
    inv = 10000.0 ** (-np.arange(0, hd, 2) / hd)
    angle = np.concatenate([np.arange(T)[:, None] * inv] * 2, axis=1)[:, None, :]

    def rope(x):
        half = np.concatenate([-x[..., hd // 2:], x[..., :hd // 2]], axis=-1)
        return x * np.cos(angle) + half * np.sin(angle)

    x = t["model.embed_tokens.weight"][tokens]
    for l in range(config["num_hidden_layers"]):
        p = f"model.layers.{l}."
        xn = rms(x, t[p + "input_layernorm.weight"])
        proj = lambda n: xn @ t[p + f"self_attn.{n}_proj.weight"].T + t[p + f"self_attn.{n}_proj.bias"]
        q = rope(proj("q").reshape(T, H, hd))
        k = np.repeat(rope(proj("k").reshape(T, K, hd)), H // K, axis=1)
        v = np.repeat(proj("v").reshape(T, K, hd), H // K, axis=1)
        s = np.einsum("ihd,jhd->hij", q, k) / np.sqrt(hd)
        s = np.where(np.tril(np.ones((T, T), bool)), s, -np.inf)
        pr = np.exp(s - s.max(-1, keepdims=True))
        pr /= pr.sum(-1, keepdims=True)
        o = np.einsum("hij,jhd->ihd", pr, v).reshape(T, H * hd)
        x = x + o @ t[p + "self_attn.o_proj.weight"].T + t[p + "self_attn.o_proj.bias"]
        xn = rms(x, t[p + "post_attention_layernorm.weight"])
        g = xn @ t[p + "mlp.gate_proj.weight"].T
        up = xn @ t[p + "mlp.up_proj.weight"].T
        x = x + (g / (1 + np.exp(-g)) * up) @ t[p + "mlp.down_proj.weight"].T
    return rms(x, t["model.norm.weight"]) @ t["lm_head.weight"].T


# ---------------------------------------------------------------------------------------------
# 3. stories260K (legacy llama2.c file) with its tokenizer embedded; q8_0 and bf16
# ---------------------------------------------------------------------------------------------

class Stories260K(TempDirTest):
    def setUp(self):
        super().setUp()
        self.model = shared(self, "models", "stories260K.bin")
        self.tok = shared(self, "models", "tok512.bin")
        self.params, self.legacy = read_legacy(self.model)
        self.legacy["output"] = self.legacy["tok_embeddings"]

    def export_as(self, dtype, *extra):
        out = self.path(f"s260k-{dtype}.bin")
        self.export("model", self.model, out, "--tokenizer", self.tok, "--dtype", dtype, *extra)
        return Tsmf(out), os.path.getsize(out)

    def test_f32_header_tensors_tokenizer(self):
        m, _ = self.export_as("f32")
        h = m.h
        self.assertEqual((h["arch"], h["dim"], h["hidden_dim"], h["n_layers"], h["n_heads"],
                          h["n_kv_heads"], h["head_dim"], h["vocab_size"], h["seq_len"]),
                         (1, 64, 172, 5, 8, 4, 8, 512, 512))
        self.assertEqual((h["norm_kind"], h["act_kind"], h["pos_kind"], h["flags"], h["weight_type"],
                          h["group_size"]), (1, 1, 1, TIED | SCALE_ATTN, 0, 0))
        self.assertEqual((h["rope_theta"], h["tokenizer_kind"], h["bos_id"], h["eos_id"]),
                         (10000.0, 1, 1, 2))
        self.assertEqual(np.float32(h["norm_eps"]), np.float32(1e-5))
        self.assertEqual(h["weights_offset"], 320)          # 256 + 5*4, rounded up to 64
        llama2c_tensors_match(self, m, self.legacy)
        with open(self.tok, "rb") as f:
            self.assertEqual(m.tokenizer, f.read())

    def test_info_prints_and_validates(self):
        out = self.path("s.bin")
        self.export("model", self.model, out, "--tokenizer", self.tok)
        text = self.export("info", out).stdout
        self.assertIn("n_kv_heads        4\n", text)
        self.assertIn("flags             0x11 (TIED|SCALE_ATTN)\n", text)
        self.assertIn("tensors           47 (260032 parameters)\n", text)
        with open(out, "r+b") as f:
            f.truncate(os.path.getsize(out) - 1)
        result = run_export("info", out)
        self.assertEqual(result.returncode, 1)
        self.assertIn("truncated", result.stderr)

    def test_q8_0(self):
        ref, f32_size = self.export_as("f32")
        m, size = self.export_as("q8_0")
        self.assertEqual((m.h["weight_type"], m.h["group_size"]), (1, 64))
        # one int8 plus a f32 scale per 64 weights (per 44 in the rows of w2, 172 = 2*64 + 44)
        # instead of 4 bytes; the norms and the tokenizer stay as they are
        self.assertTrue(0.26 < size / f32_size < 0.30, size / f32_size)
        assert_q8_0_error(self, m.matrices(), ref.matrices(), 64)
        np.testing.assert_array_equal(m.layers[2]["ffn_norm_weight"], ref.layers[2]["ffn_norm_weight"])
        self.assertEqual(m.tokenizer, ref.tokenizer)

    def test_q8_0_group_size_option(self):
        ref, _ = self.export_as("f32")
        m, _ = self.export_as("q8_0", "--group-size", "48")   # 64 = 48 + 16, 172 = 3*48 + 28
        self.assertEqual(m.h["group_size"], 48)
        assert_q8_0_error(self, m.matrices(), ref.matrices(), 48)
        for bad in ("0", "4097"):
            result = run_export("model", self.model, self.path("x.bin"),
                                "--dtype", "q8_0", "--group-size", bad)
            self.assertEqual(result.returncode, 1)
            self.assertIn(f"--group-size {bad} is out of range (1..4096)", result.stderr)
            self.assertFalse(os.path.exists(self.path("x.bin")))

    def test_bf16(self):
        ref, f32_size = self.export_as("f32")
        m, size = self.export_as("bf16")
        self.assertEqual((m.h["weight_type"], m.h["group_size"]), (2, 0))
        self.assertAlmostEqual(size / f32_size, 0.5, delta=0.02)
        for name, b in m.matrices().items():
            w = ref.matrices()[name]
            # round to nearest: within half a bf16 ulp (2^-8 relative); truncation is not
            self.assertTrue((np.abs(b - w) <= np.abs(w) * 2.0 ** -8).all(), name)
            self.assertGreater(np.abs(b - w).max(), 0)


# ---------------------------------------------------------------------------------------------
# 4. Synthetic llama2.c files (legacy, v1, v2) and training checkpoints
# ---------------------------------------------------------------------------------------------

class Llama2cSources(TempDirTest):
    DIMS = dict(dim=64, hidden=128, n_layers=2, n_heads=4, n_kv_heads=2, vocab=96)
    SEQ = 32

    def setUp(self):
        super().setUp()
        self.w = random_llama2c_weights(np.random.default_rng(1), **self.DIMS)

    def convert(self, src, *extra):
        out = src + ".tsmf"
        self.export("model", src, out, *extra)
        m = Tsmf(out)
        h = m.h
        self.assertEqual((h["dim"], h["hidden_dim"], h["n_layers"], h["n_heads"], h["n_kv_heads"],
                          h["head_dim"], h["vocab_size"], h["seq_len"]), (64, 128, 2, 4, 2, 16, 96, 32))
        self.assertEqual((h["rope_theta"], h["bos_id"], h["eos_id"]), (10000.0, 1, 2))
        return m

    def test_legacy_unshared(self):
        write_legacy(self.path("legacy.bin"), self.w, self.SEQ, shared=False)
        m = self.convert(self.path("legacy.bin"))
        self.assertEqual(m.h["flags"], SCALE_ATTN)
        llama2c_tensors_match(self, m, self.w)

    def test_v1_shared_and_unshared(self):
        write_v1(self.path("v1.bin"), self.w, self.SEQ, shared=False)
        llama2c_tensors_match(self, self.convert(self.path("v1.bin")), self.w)
        write_v1(self.path("v1s.bin"), self.w, self.SEQ, shared=True)
        m = self.convert(self.path("v1s.bin"))
        self.assertEqual(m.h["flags"], TIED | SCALE_ATTN)
        llama2c_tensors_match(self, m, dict(self.w, output=self.w["tok_embeddings"]))

    def test_v2_dequantized(self):
        stored = write_v2(self.path("v2.bin"), self.w, self.SEQ, shared=False, group_size=32)
        m = self.convert(self.path("v2.bin"))
        llama2c_tensors_match(self, m, stored)
        self.assertGreater(np.abs(stored["wq"] - self.w["wq"]).max(), 0)   # really quantized

    def test_ckpt_pt(self):
        torch = self.torch()
        state = {"tok_embeddings.weight": self.w["tok_embeddings"], "norm.weight": self.w["norm"],
                 "output.weight": self.w["output"]}
        names = {"attention_norm": "attention_norm.weight", "ffn_norm": "ffn_norm.weight",
                 **{k: f"attention.{k}.weight" for k in ("wq", "wk", "wv", "wo")},
                 **{k: f"feed_forward.{k}.weight" for k in ("w1", "w2", "w3")}}
        for l in range(2):
            state.update({f"layers.{l}.{v}": self.w[k][l] for k, v in names.items()})
        state = {"_orig_mod." + k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in state.items()}
        args = dict(dim=64, n_layers=2, n_heads=4, n_kv_heads=2, vocab_size=96, hidden_dim=None,
                    multiple_of=32, norm_eps=1e-5, max_seq_len=self.SEQ, dropout=0.0)
        # llama2.c's rule: int(2 * 4 * 64 / 3) = 170, rounded up to a multiple of 32 -> 192;
        # give hidden_dim explicitly for 128
        optimizer = {"state": {0: {"step": torch.tensor(3.0), "exp_avg": torch.zeros(4)}},
                     "param_groups": [{"lr": 1e-3, "betas": (0.9, 0.95), "params": [0]}]}
        torch.save({"model": state, "model_args": dict(args, hidden_dim=128), "iter_num": 3,
                    "optimizer": optimizer, "best_val_loss": torch.tensor(1.25),
                    "config": {"batch_size": 8, "learning_rate": 5e-4, "dataset": "tinystories"}},
                   self.path("ckpt.pt"))
        m = self.convert(self.path("ckpt.pt"))
        self.assertEqual(m.h["flags"], SCALE_ATTN)
        llama2c_tensors_match(self, m, self.w)
        # tied (output.weight is the embedding tensor itself), in torch's pre-1.6 non-zip format
        state["_orig_mod.output.weight"] = state["_orig_mod.tok_embeddings.weight"]
        torch.save({"model": state, "model_args": dict(args, hidden_dim=128)}, self.path("tied.pt"),
                   _use_new_zipfile_serialization=False)
        m = self.convert(self.path("tied.pt"))
        self.assertEqual(m.h["flags"], TIED | SCALE_ATTN)
        llama2c_tensors_match(self, m, dict(self.w, output=self.w["tok_embeddings"]))
        # hidden_dim from the rule does not match w1's 128 rows: a shape error
        torch.save({"model": state, "model_args": args}, self.path("rule.pt"))
        result = run_export("model", self.path("rule.pt"), self.path("rule.tsmf"))
        self.assertEqual(result.returncode, 1)
        self.assertIn("layers.0.feed_forward.w1.weight has shape (128, 64)", result.stderr)
        self.assertIn("(192, 64)", result.stderr)

    def test_q8_0_quarter_size(self):
        write_v1(self.path("v1.bin"), self.w, self.SEQ, shared=False)
        f32 = self.convert(self.path("v1.bin"))
        self.export("model", self.path("v1.bin"), self.path("q8.bin"), "--dtype", "q8_0")
        q8 = Tsmf(self.path("q8.bin"))
        self.assertEqual(q8.h["group_size"], 64)
        ratio = os.path.getsize(self.path("q8.bin")) / os.path.getsize(self.path("v1.bin.tsmf"))
        self.assertTrue(0.25 < ratio < 0.29, ratio)              # (1 + 4/64) / 4 = 0.266
        assert_q8_0_error(self, q8.matrices(), f32.matrices(), 64)

    def torch(self):
        try:
            import torch
        except ImportError:
            self.skipTest("torch not installed (needed to write ckpt.pt)")
        return torch


# ---------------------------------------------------------------------------------------------
# 5. GPT-2 tokenizer section (vocab.json + merges.txt, and tokenizer.json)
# ---------------------------------------------------------------------------------------------

class Gpt2Tokenizer(TempDirTest):
    def setUp(self):
        super().setUp()
        self.fixture = shared(self, GPTNEO_HF)
        self.vocab = shared(self, "models", "gpt2-vocab.json")
        self.merges = shared(self, "models", "gpt2-merges.txt")

    def section(self, *tokenizer_args):
        out = self.path("neo.bin")
        self.export("model", self.fixture, out, *tokenizer_args)
        m = Tsmf(out)
        self.assertEqual(m.h["tokenizer_kind"], 2)
        return m.tokenizer

    def test_vocab_and_merges(self):
        section = self.section("--tokenizer", self.vocab, "--merges", self.merges)
        tokens, merges = parse_gpt2_section(section)
        self.assertEqual((len(tokens), len(merges)), (50257, 50000))
        self.assertEqual((tokens[220], tokens[198], tokens[0], tokens[188]), (b" ", b"\n", b"!", b"\0"))
        self.assertEqual(tokens[50256], b"<|endoftext|>")
        self.assertEqual(sorted(tokens[:256]), [bytes([b]) for b in range(256)])
        self.assertEqual(tokens[256], b" t")
        self.assertEqual(merges[0].tolist(), [220, 83, 256])     # "Ġ t" -> "Ġt"
        self.assertEqual(merges[1].tolist(), [220, 64, 257])     # "Ġ a" -> "Ġa"
        self.assertEqual(merges[6].tolist(), [256, 258, 262])    # "Ġt he" -> "Ġthe"
        self.assertEqual(tokens[262], b" the")
        for left, right, result in merges:
            self.assertEqual(tokens[result], tokens[left] + tokens[right])

    def test_tokenizer_json_same_section(self):
        vocab = read_json(self.vocab)
        with open(self.merges, encoding="utf-8") as f:
            pairs = [line.split(" ") for line in f.read().split("\n") if line]
        tj = {"version": "1.0",
              "added_tokens": [{"id": 50256, "content": "<|endoftext|>", "special": True}],
              "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": False},
              "decoder": {"type": "ByteLevel"},
              "model": {"type": "BPE", "vocab": vocab, "merges": pairs}}
        with open(self.path("tokenizer.json"), "w", encoding="utf-8") as f:
            json.dump(tj, f)
        a = self.section("--tokenizer", self.path("tokenizer.json"))
        b = self.section("--tokenizer", self.vocab, "--merges", self.merges)
        self.assertEqual(a, b)
        tj["model"]["merges"] = [" ".join(p) for p in pairs]          # "a b" strings
        with open(self.path("tokenizer.json"), "w", encoding="utf-8") as f:
            json.dump(tj, f)
        self.assertEqual(self.section("--tokenizer", self.path("tokenizer.json")), b)


# ---------------------------------------------------------------------------------------------
# 6. Errors: exit 1, one "export.py: error:" line, nothing left behind
# ---------------------------------------------------------------------------------------------

class CallsPrint:
    """Unpickling this calls print(): a stand-in for a pickle that runs code."""

    def __reduce__(self):
        return print, ("UNPICKLED",)


class Errors(TempDirTest):
    def assert_fails(self, message, *args):
        before = set(os.listdir(self.tmp))
        out = self.path("out.bin")
        result = run_export("model", *args[:1], out, *args[1:])
        self.assertEqual(result.returncode, 1, result.stderr)
        self.assertNotIn("Traceback", result.stderr)
        lines = result.stderr.strip().splitlines()
        self.assertEqual(len(lines), 1, result.stderr)
        self.assertTrue(lines[0].startswith("export.py: error: "), lines[0])
        self.assertIn(message, lines[0])
        self.assertEqual(set(os.listdir(self.tmp)), before)       # no output, no temp file

    def hf_folder(self, fixture, config_changes=None, tensors=None, remove=()):
        """A copy of a Hugging Face fixture with a changed config.json or weights."""
        folder = self.path("hf")
        os.mkdir(folder)
        config = read_json(os.path.join(fixture, "config.json"))
        config.update(config_changes or {})
        with open(os.path.join(folder, "config.json"), "w") as f:
            json.dump(config, f)
        weights = os.path.join(fixture, "model.safetensors")
        if tensors is None and not remove:
            os.symlink(os.path.abspath(weights), os.path.join(folder, "model.safetensors"))
        else:
            tensors = tensors or dict(read_safetensors(weights))
            write_safetensors(os.path.join(folder, "model.safetensors"),
                              {k: v for k, v in tensors.items() if k not in remove})
        return folder

    def test_missing_tensor(self):
        folder = self.hf_folder(shared(self, LLAMA_HF), remove=["model.layers.2.mlp.up_proj.weight"])
        self.assert_fails("missing tensor model.layers.2.mlp.up_proj.weight", folder)

    def test_shape_mismatch(self):
        folder = self.hf_folder(shared(self, LLAMA_HF), {"intermediate_size": 176})
        self.assert_fails("has shape (172, 64), the configuration needs (176, 64)", folder)

    def test_unexpected_tensor(self):
        fixture = shared(self, LLAMA_HF)
        tensors = dict(read_safetensors(os.path.join(fixture, "model.safetensors")))
        tensors["model.layers.0.mlp.up_proj.bias"] = np.zeros(172, np.float32)
        folder = self.hf_folder(fixture, tensors=tensors)
        self.assert_fails("unexpected tensor model.layers.0.mlp.up_proj.bias", folder)

    def test_unknown_model_type(self):
        folder = self.hf_folder(shared(self, LLAMA_HF), {"model_type": "bert"})
        self.assert_fails("unsupported model_type 'bert'", folder)

    def test_rope_scaling(self):
        rope = {"rope_type": "linear", "factor": 2.0}
        folder = self.hf_folder(shared(self, LLAMA_HF), {"rope_scaling": rope})
        self.assert_fails("rope_scaling has rope_type 'linear'", folder)

    def test_rope_parameters_type(self):
        rope = {"rope_type": "llama3", "rope_theta": 500000.0, "factor": 8.0}
        folder = self.hf_folder(shared(self, LLAMA_HF), {"rope_parameters": rope})
        self.assert_fails("rope_parameters has rope_type 'llama3'", folder)

    def test_unsupported_options(self):
        self.assert_fails("hidden_act 'gelu'",
                          self.hf_folder(shared(self, LLAMA_HF), {"hidden_act": "gelu"}))
        shutil.rmtree(self.path("hf"))
        self.assert_fails("mlp_bias", self.hf_folder(shared(self, LLAMA_HF), {"mlp_bias": True}))
        shutil.rmtree(self.path("hf"))
        self.assert_fails("activation_function 'gelu'",
                          self.hf_folder(shared(self, GPTNEO_HF), {"activation_function": "gelu"}))

    def test_truncated_safetensors(self):
        fixture = shared(self, LLAMA_HF)
        folder = self.hf_folder(fixture, {})
        os.unlink(os.path.join(folder, "model.safetensors"))
        with open(os.path.join(fixture, "model.safetensors"), "rb") as f:
            data = f.read()
        with open(os.path.join(folder, "model.safetensors"), "wb") as f:
            f.write(data[:len(data) // 2])
        self.assert_fails("truncated or corrupt safetensors", folder)
        with open(os.path.join(folder, "model.safetensors"), "wb") as f:
            f.write(data[:100])
        self.assert_fails("truncated safetensors file", folder)

    def test_truncated_and_too_long_legacy(self):
        with open(shared(self, "models", "stories260K.bin"), "rb") as f:
            data = f.read()
        with open(self.path("short.bin"), "wb") as f:
            f.write(data[:-100])
        self.assert_fails("truncated legacy llama2.c file: 1056440 bytes, expected 1056540",
                          self.path("short.bin"))
        with open(self.path("long.bin"), "wb") as f:
            f.write(data + b"\0\0\0\0")
        self.assert_fails("too long legacy llama2.c file", self.path("long.bin"))

    def test_truncated_v1(self):
        w = random_llama2c_weights(np.random.default_rng(2), 32, 64, 1, 4, 4, 16)
        write_v1(self.path("v1.bin"), w, 8, shared=True)
        with open(self.path("v1.bin"), "r+b") as f:
            f.truncate(os.path.getsize(self.path("v1.bin")) - 4)
        self.assert_fails("truncated llama2.c version 1 file", self.path("v1.bin"))

    def test_unknown_source(self):
        with open(self.path("junk.bin"), "wb") as f:
            f.write(b"hello, this is not a model at all\n" * 10)
        self.assert_fails("unrecognised model file", self.path("junk.bin"))
        os.mkdir(self.path("empty"))
        self.assert_fails("folder without config.json", self.path("empty"))
        self.assert_fails("no such file or folder", self.path("nothing"))

    def test_pickle_naming_code_refused(self):
        try:
            import torch
        except ImportError:
            self.skipTest("torch not installed (needed to write a .pt file)")
        torch.save({"model": {}, "model_args": {}, "x": CallsPrint()}, self.path("evil.pt"))
        result = run_export("model", self.path("evil.pt"), self.path("out.bin"))
        self.assertEqual(result.returncode, 1)
        self.assertNotIn("UNPICKLED", result.stdout)
        self.assertRegex(result.stderr, r"refusing to unpickle (__builtin__|builtins)\.print ")

    def test_tokenizer_vocab_mismatch(self):
        model = shared(self, "models", "stories260K.bin")
        sp = shared(self, "models", "llama2-tokenizer.model")
        self.assert_fails("tokenizer has 32000 tokens but the model's vocab_size is 512",
                          model, "--tokenizer", sp)
        gpt2_vocab = shared(self, "models", "gpt2-vocab.json")
        self.assert_fails("needs --merges", model, "--tokenizer", gpt2_vocab)

    def test_existing_output_kept_on_error(self):
        with open(self.path("out.bin"), "wb") as f:
            f.write(b"old")
        folder = self.hf_folder(shared(self, LLAMA_HF), {"model_type": "bert"})
        result = run_export("model", folder, self.path("out.bin"))
        self.assertEqual(result.returncode, 1)
        with open(self.path("out.bin"), "rb") as f:
            self.assertEqual(f.read(), b"old")
        self.assertEqual(sorted(os.listdir(self.tmp)), ["hf", "out.bin"])


if __name__ == "__main__":
    unittest.main()
