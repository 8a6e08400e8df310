"""An independent forward pass in float64 numpy, with its insides: the tests' reference for
-m ppl, -m dump, -m neurons, --lens and ablation. Written from the papers and the file
formats, not from run.c: Llama (llama2.c's legacy file: RMSNorm, rotary positions on pairs
(2i, 2i+1), grouped-query attention, SwiGLU) and GPT-Neo (a Hugging Face checkpoint's
safetensors: LayerNorm, learned positions, biases, unscaled scores, local layers that see
the last window_size positions, GELU in its tanh form).

forward(model, ids, ablate_heads=(), ablate_neurons=()) gives, for tokens at positions
0..T-1, a dict of
  resid  (L+1, T, D)  the residual stream entering each layer, and after the last
  mlp    (L, T, F)    the input of the MLP's down projection
  attn   (L, H, T, T) each head's attention weights
  logits (T, V)
and lens(model, resid) the final norm and classifier applied to any residual (..., D).
An ablated head (layer, head) has its slice of the attention output zeroed before the
output projection; an ablated neuron (layer, index) its MLP activation.
"""
import json
import os
import struct

import numpy as np


def llama2c(path):
    """A llama2.c legacy file (7 int32, then float32 weights) as float64 arrays."""
    with open(path, "rb") as f:
        data = f.read()
    dim, hidden, layers, heads, kv_heads, vocab, seq_len = struct.unpack("<7i", data[:28])
    shared, vocab, hd = vocab > 0, abs(vocab), dim // heads
    w, at = np.frombuffer(data, dtype="<f4", offset=28).astype(np.float64), [0]

    def take(*shape):
        n = int(np.prod(shape))
        at[0] += n
        return w[at[0] - n:at[0]].reshape(shape)
    m = {"kind": "llama", "L": layers, "H": heads, "KV": kv_heads, "hd": hd, "D": dim}
    m["emb"], m["att_norm"] = take(vocab, dim), take(layers, dim)
    m["wq"], m["wk"], m["wv"] = take(layers, dim, dim), take(layers, kv_heads * hd, dim), take(layers, kv_heads * hd, dim)
    m["wo"], m["ffn_norm"] = take(layers, dim, dim), take(layers, dim)
    m["w1"], m["w2"], m["w3"] = take(layers, hidden, dim), take(layers, dim, hidden), take(layers, hidden, dim)
    m["final_norm"] = take(dim)
    take(seq_len, hd)  # llama2.c's unused rope tables
    m["cls"] = m["emb"] if shared else take(vocab, dim)
    return m


def gptneo(folder):
    """A GPT-Neo Hugging Face folder (config.json, model.safetensors of F32) as float64 arrays."""
    with open(os.path.join(folder, "config.json")) as f:
        config = json.load(f)
    with open(os.path.join(folder, "model.safetensors"), "rb") as f:
        raw = f.read()
    n = struct.unpack_from("<Q", raw)[0]
    w = {}
    for name, info in json.loads(raw[8:8 + n]).items():
        if name != "__metadata__":
            begin, end = info["data_offsets"]
            w[name] = np.frombuffer(raw, "<f4", (end - begin) // 4, 8 + n + begin).reshape(info["shape"]).astype(np.float64)
    D, H = config["hidden_size"], config["num_heads"]
    kinds = [k for pattern, times in config["attention_types"] for _ in range(times) for k in pattern]
    head = w["transformer.wte.weight"] if config.get("tie_word_embeddings", True) else w["lm_head.weight"]
    return {"kind": "gptneo", "L": config["num_layers"], "H": H, "KV": H, "hd": D // H, "D": D, "w": w, "layers": kinds,
            "window": config["window_size"], "eps": config["layer_norm_epsilon"], "cls": head}


def _rms(x, g):
    return g * x / np.sqrt((x * x).mean(-1, keepdims=True) + 1e-5)


def _layer_norm(x, g, b, eps):
    mu = x.mean(-1, keepdims=True)
    return g * (x - mu) / np.sqrt(((x - mu) ** 2).mean(-1, keepdims=True) + eps) + b


def _rope(x, pos, hd):  # x (T, n, hd): pairs (2i, 2i+1) turn by pos / 10000^(2i/hd)
    ang = pos[:, None] / 10000.0 ** (np.arange(0, hd, 2) / hd)
    c, s = np.cos(ang)[:, None, :], np.sin(ang)[:, None, :]
    out = x.copy()
    out[..., 0::2], out[..., 1::2] = x[..., 0::2] * c - x[..., 1::2] * s, x[..., 0::2] * s + x[..., 1::2] * c
    return out


def _softmax(scores):
    p = np.exp(scores - scores.max(-1, keepdims=True))
    return p / p.sum(-1, keepdims=True)


def final_norm(m, x):
    if m["kind"] == "llama":
        return _rms(x, m["final_norm"])
    return _layer_norm(x, m["w"]["transformer.ln_f.weight"], m["w"]["transformer.ln_f.bias"], m["eps"])


def lens(m, resid):
    """The logit lens: the final norm and classifier applied to residuals (..., D)."""
    return final_norm(m, resid) @ m["cls"].T


def forward(m, ids, ablate_heads=(), ablate_neurons=()):
    ids = np.asarray(ids)
    T, L, H, hd, D = len(ids), m["L"], m["H"], m["hd"], m["D"]
    i, j = np.arange(T)[:, None], np.arange(T)[None, :]
    if m["kind"] == "llama":
        x = m["emb"][ids]
    else:
        w = m["w"]
        x = w["transformer.wte.weight"][ids] + w["transformer.wpe.weight"][:T]
    resid, mlp, attn = [], [], []
    for l in range(L):
        resid.append(x)
        allowed = j <= i
        if m["kind"] == "llama":
            h = _rms(x, m["att_norm"][l])
            pos = np.arange(T, dtype=np.float64)
            rep = H // m["KV"]
            q = _rope((h @ m["wq"][l].T).reshape(T, H, hd), pos, hd)
            k = _rope((h @ m["wk"][l].T).reshape(T, m["KV"], hd), pos, hd).repeat(rep, axis=1)
            v = (h @ m["wv"][l].T).reshape(T, m["KV"], hd).repeat(rep, axis=1)
            scale = 1 / np.sqrt(hd)
        else:
            p, a = "transformer.h.%d." % l, "transformer.h.%d.attn.attention." % l
            h = _layer_norm(x, w[p + "ln_1.weight"], w[p + "ln_1.bias"], m["eps"])
            q, k, v = ((h @ w[a + n + "_proj.weight"].T).reshape(T, H, hd) for n in "qkv")
            scale = 1.0  # GPT-Neo does not scale its scores
            if m["layers"][l] == "local":
                allowed = allowed & (j > i - m["window"])
        scores = np.where(allowed, np.einsum("thd,shd->hts", q, k) * scale, -np.inf)
        weights = _softmax(scores)  # (H, T, T)
        attn.append(weights)
        o = np.einsum("hts,shd->thd", weights, v)  # (T, H, hd)
        for (al, ah) in ablate_heads:
            if al == l:
                o[:, ah, :] = 0
        o = o.reshape(T, D)
        if m["kind"] == "llama":
            x = x + o @ m["wo"][l].T
            h = _rms(x, m["ffn_norm"][l])
            g, u = h @ m["w1"][l].T, h @ m["w3"][l].T
            act = g / (1 + np.exp(-g)) * u
        else:
            x = x + o @ w[a + "out_proj.weight"].T + w[a + "out_proj.bias"]
            h = _layer_norm(x, w[p + "ln_2.weight"], w[p + "ln_2.bias"], m["eps"])
            f = h @ w[p + "mlp.c_fc.weight"].T + w[p + "mlp.c_fc.bias"]
            act = 0.5 * f * (1 + np.tanh(np.sqrt(2 / np.pi) * (f + 0.044715 * f ** 3)))
        for (nl, nj) in ablate_neurons:
            if nl == l:
                act[:, nj] = 0
        mlp.append(act)
        if m["kind"] == "llama":
            x = x + act @ m["w2"][l].T
        else:
            x = x + act @ w[p + "mlp.c_proj.weight"].T + w[p + "mlp.c_proj.bias"]
    resid.append(x)
    return {"resid": np.stack(resid), "mlp": np.stack(mlp), "attn": np.stack(attn), "logits": lens(m, x)}
