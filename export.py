#!/usr/bin/env python3
"""Convert language models and tokenizers to TSMF, the model file that run.c reads.

  export.py model SRC OUT.bin [--tokenizer TOK [--merges MERGES]]
                              [--dtype f32|q8_0|bf16] [--group-size N]
  export.py tokenizer TOKENIZER.model OUT.bin
  export.py info FILE [--tensors]

SRC of `model` is one of:
  - a Hugging Face checkpoint folder (config.json with model_type "llama" or "gpt_neo", and
    model.safetensors, sharded safetensors with model.safetensors.index.json, or
    pytorch_model.bin),
  - a llama2.c training checkpoint (ckpt.pt, read with PyTorch),
  - a llama2.c model file: legacy (headerless), version 1 (f32) or version 2 (Q8_0).

TOK of --tokenizer is a sentencepiece .model, a llama2.c tokenizer.bin, a GPT-2 vocab.json
(with --merges merges.txt) or a Hugging Face byte-level BPE tokenizer.json.

`tokenizer` writes llama2.c's tokenizer.bin from a sentencepiece .model.
`info` prints and validates the header of a TSMF file.

Only numpy is needed, except for pickled PyTorch files (.pt, pytorch_model.bin), which need
torch. The TSMF layout is the project's format spec (version 1); this file follows it exactly.
"""

import argparse
import contextlib
import dataclasses
import json
import io
import os
import pickletools
import re
import struct
import sys
import tempfile
import zipfile
from functools import partial

PROG = "export.py"

try:
    import numpy as np
except ImportError:
    sys.exit(f"{PROG}: error: numpy is required (install python3-numpy or run /usr/bin/python3)")


class ExportError(Exception):
    """Bad input or an unsupported feature: reported as one line, exit status 1."""


def fail(message):
    raise ExportError(message)


# ---------------------------------------------------------------------------------------------
# TSMF constants and header (format spec: "Header")
# ---------------------------------------------------------------------------------------------

MAGIC = b"TSMF"
VERSION = 1
HEADER_SIZE = 256
ALIGN = 64

ARCH_LLAMA, ARCH_GPTNEO = 1, 2
NORM_RMS, NORM_LAYER = 1, 2
ACT_SWIGLU, ACT_GELU = 1, 2
POS_ROPE, POS_LEARNED = 1, 2
FLAG_TIED, FLAG_QKV_BIAS, FLAG_OUT_BIAS, FLAG_MLP_BIAS, FLAG_SCALE_ATTN = 1, 2, 4, 8, 16
WT_F32, WT_Q8_0, WT_BF16 = 0, 1, 2
TOK_NONE, TOK_SENTENCEPIECE, TOK_GPT2 = 0, 1, 2

FLAG_NAMES = {FLAG_TIED: "TIED", FLAG_QKV_BIAS: "QKV_BIAS", FLAG_OUT_BIAS: "OUT_BIAS",
              FLAG_MLP_BIAS: "MLP_BIAS", FLAG_SCALE_ATTN: "SCALE_ATTN"}
WEIGHT_TYPES = {"f32": WT_F32, "q8_0": WT_Q8_0, "bf16": WT_BF16}
ENUM_NAMES = {
    "arch": {ARCH_LLAMA: "Llama", ARCH_GPTNEO: "GPT-Neo"},
    "norm_kind": {NORM_RMS: "RMSNorm", NORM_LAYER: "LayerNorm"},
    "act_kind": {ACT_SWIGLU: "SwiGLU", ACT_GELU: "GELU (tanh)"},
    "pos_kind": {POS_ROPE: "rotary", POS_LEARNED: "learned absolute"},
    "weight_type": {v: k for k, v in WEIGHT_TYPES.items()},
    "tokenizer_kind": {TOK_NONE: "none", TOK_SENTENCEPIECE: "sentencepiece BPE",
                       TOK_GPT2: "GPT-2 byte-level BPE"},
}

# The header, once: (field, struct code, default) in file order from offset 0; zeros follow
# up to HEADER_SIZE. HEADER_STRUCT packs it and the Header class is made from it.
HEADER_LAYOUT = [
    ("magic", "4s", MAGIC), ("version", "I", VERSION), ("header_size", "I", HEADER_SIZE), ("arch", "I", 0),
    ("dim", "i", 0), ("hidden_dim", "i", 0), ("n_layers", "i", 0), ("n_heads", "i", 0),
    ("n_kv_heads", "i", 0), ("head_dim", "i", 0), ("vocab_size", "i", 0), ("seq_len", "i", 0),
    ("norm_kind", "i", 0), ("act_kind", "i", 0), ("pos_kind", "i", 0), ("flags", "I", 0),
    ("weight_type", "i", WT_F32), ("group_size", "i", 0), ("rope_theta", "f", 0.0), ("norm_eps", "f", 0.0),
    ("tokenizer_kind", "i", TOK_NONE), ("bos_id", "i", -1), ("eos_id", "i", -1), ("reserved", "i", 0),
    ("weights_offset", "Q", 0), ("weights_size", "Q", 0),
    ("tokenizer_offset", "Q", 0), ("tokenizer_size", "Q", 0),
]
HEADER_FIELDS = [(name, code) for name, code, _ in HEADER_LAYOUT]
HEADER_STRUCT = struct.Struct("<" + "".join(code for _, code in HEADER_FIELDS))
MAX_LAYERS = 1024
MAX_GROUP_SIZE = 4096
DEFAULT_GROUP_SIZE = 64


@dataclasses.dataclass
class Header(dataclasses.make_dataclass(
        "HeaderFields", [(name, type(default), dataclasses.field(default=default)) for name, _, default in HEADER_LAYOUT])):
    layer_window: list = dataclasses.field(default_factory=list)  # at offset HEADER_SIZE

    @property
    def q_dim(self):
        return self.n_heads * self.head_dim

    @property
    def kv_dim(self):
        return self.n_kv_heads * self.head_dim

    def pack(self):
        """The header and the layer_window array that follows it."""
        values = [getattr(self, name) for name, _ in HEADER_FIELDS]
        head = HEADER_STRUCT.pack(*values).ljust(HEADER_SIZE, b"\0")
        return head + struct.pack(f"<{self.n_layers}i", *self.layer_window)

    @classmethod
    def unpack(cls, data, what):
        if len(data) < HEADER_SIZE:
            fail(f"{what}: truncated header ({len(data)} bytes)")
        h = cls(**dict(zip((name for name, _ in HEADER_FIELDS), HEADER_STRUCT.unpack_from(data))))
        if h.magic != MAGIC:
            fail(f"{what}: not a TSMF file (magic {h.magic!r})")
        if not 1 <= h.n_layers <= MAX_LAYERS:
            fail(f"{what}: bad n_layers {h.n_layers}")
        end = HEADER_SIZE + 4 * h.n_layers
        if len(data) < end:
            fail(f"{what}: truncated layer_window")
        h.layer_window = list(struct.unpack_from(f"<{h.n_layers}i", data, HEADER_SIZE))
        return h


def align(n):
    return (n + ALIGN - 1) // ALIGN * ALIGN


def check_header(h):
    """Fail unless the model fields of `h` are consistent (format spec "Header")."""
    def need(ok, what):
        if not ok:
            fail(f"bad header: {what}")
    need(h.magic == MAGIC and h.version == VERSION and h.header_size == HEADER_SIZE,
         f"magic/version/header_size {h.magic!r}/{h.version}/{h.header_size}")
    need(1 <= h.n_layers <= MAX_LAYERS, f"n_layers {h.n_layers}")
    for name in ("dim", "hidden_dim", "n_heads", "n_kv_heads", "head_dim", "vocab_size", "seq_len"):
        need(getattr(h, name) > 0, f"{name} {getattr(h, name)}")
    need(h.n_heads % h.n_kv_heads == 0,
         f"n_kv_heads {h.n_kv_heads} does not divide n_heads {h.n_heads}")
    for name in ("arch", "norm_kind", "act_kind", "pos_kind", "weight_type", "tokenizer_kind"):
        need(getattr(h, name) in ENUM_NAMES[name], f"{name} {getattr(h, name)}")
    need(h.flags & ~sum(FLAG_NAMES) == 0, f"unknown flags {h.flags:#x}")
    if h.pos_kind == POS_ROPE:
        need(h.head_dim % 2 == 0, f"rotary needs an even head_dim, not {h.head_dim}")
    if h.weight_type == WT_Q8_0:
        need(1 <= h.group_size <= MAX_GROUP_SIZE,
             f"Q8_0 group_size {h.group_size} (must be 1..{MAX_GROUP_SIZE})")
    else:
        need(h.group_size == 0, f"group_size {h.group_size} with weight_type {h.weight_type}")
    need(len(h.layer_window) == h.n_layers and all(w >= 0 for w in h.layer_window),
         f"layer_window {h.layer_window}")
    need(-1 <= h.bos_id < h.vocab_size and -1 <= h.eos_id < h.vocab_size,
         f"bos_id {h.bos_id} / eos_id {h.eos_id} outside the vocabulary of {h.vocab_size}")


def choose_group_size(requested):
    """The Q8_0 group size: --group-size, else 64."""
    if requested is None:
        return DEFAULT_GROUP_SIZE
    if not 1 <= requested <= MAX_GROUP_SIZE:
        fail(f"--group-size {requested} is out of range (1..{MAX_GROUP_SIZE})")
    return requested


# ---------------------------------------------------------------------------------------------
# TSMF tensor layout (format spec: "Tensors"): order, shapes, sizes, offsets
# ---------------------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class TensorSpec:
    name: str       # "tok_embedding", "layers.3.wq", ...
    key: str        # the name without its layer: "tok_embedding", "wq", ...
    layer: object   # layer index, or None for whole-model tensors
    shape: tuple
    matrix: bool    # stored in weight_type; other tensors are always f32


def tensor_specs(h):
    """Every tensor of a TSMF file, in file order."""
    specs = []

    def add(key, shape, matrix=False, layer=None):
        name = key if layer is None else f"layers.{layer}.{key}"
        specs.append(TensorSpec(name, key, layer, tuple(shape), matrix))

    d, hidden, layernorm = h.dim, h.hidden_dim, h.norm_kind == NORM_LAYER
    add("tok_embedding", (h.vocab_size, d), matrix=True)
    if h.pos_kind == POS_LEARNED:
        add("pos_embedding", (h.seq_len, d))
    for l in range(h.n_layers):
        add("attn_norm_weight", (d,), layer=l)
        if layernorm:
            add("attn_norm_bias", (d,), layer=l)
        add("wq", (h.q_dim, d), True, l)
        add("wk", (h.kv_dim, d), True, l)
        add("wv", (h.kv_dim, d), True, l)
        if h.flags & FLAG_QKV_BIAS:
            add("bq", (h.q_dim,), layer=l)
            add("bk", (h.kv_dim,), layer=l)
            add("bv", (h.kv_dim,), layer=l)
        add("wo", (d, h.q_dim), True, l)
        if h.flags & FLAG_OUT_BIAS:
            add("bo", (d,), layer=l)
        add("ffn_norm_weight", (d,), layer=l)
        if layernorm:
            add("ffn_norm_bias", (d,), layer=l)
        add("w1", (hidden, d), True, l)
        if h.flags & FLAG_MLP_BIAS:
            add("b1", (hidden,), layer=l)
        if h.act_kind == ACT_SWIGLU:
            add("w3", (hidden, d), True, l)
        add("w2", (d, hidden), True, l)
        if h.flags & FLAG_MLP_BIAS:
            add("b2", (d,), layer=l)
    add("final_norm_weight", (d,))
    if layernorm:
        add("final_norm_bias", (d,))
    if not h.flags & FLAG_TIED:
        add("classifier", (h.vocab_size, d), matrix=True)
    return specs


def tensor_parts(spec, h):
    """Byte sizes of the parts a tensor is stored as; each part starts 64-aligned."""
    n = int(np.prod(spec.shape))
    if not spec.matrix or h.weight_type == WT_F32:
        return [4 * n]
    if h.weight_type == WT_BF16:
        return [2 * n]
    rows, cols = spec.shape                     # Q8_0: int8 values, then f32 scales per group
    return [n, 4 * rows * groups_per_row(cols, h.group_size)]


def groups_per_row(cols, group_size):
    """Q8_0 groups of a row; the last one is shorter when group_size does not divide cols."""
    return -(-cols // group_size)


def place_tensors(h):
    """[(spec, offset from weights_offset)] in file order, and the resulting weights_size."""
    placed, pos = [], 0
    for spec in tensor_specs(h):
        start = align(pos)
        for size in tensor_parts(spec, h):
            pos = align(pos) + size
        placed.append((spec, start))
    return placed, pos


def set_layout(h, tokenizer_size):
    """Fill in the offset and size fields of `h` for a file laid out back to back."""
    h.weights_offset = align(HEADER_SIZE + 4 * h.n_layers)
    h.weights_size = place_tensors(h)[1]
    h.tokenizer_offset = align(h.weights_offset + h.weights_size) if tokenizer_size else 0
    h.tokenizer_size = tokenizer_size


def file_end(h):
    return max(h.weights_offset + h.weights_size, h.tokenizer_offset + h.tokenizer_size)


# ---------------------------------------------------------------------------------------------
# Tensor encodings: f32, BF16 (upper 16 bits of f32), Q8_0 (int8 plus per-group f32 scale).
# In memory, tensors are float32 arrays, or uint16 arrays holding bfloat16 bits as read
# from a bf16 checkpoint (kept as they are when writing BF16).
# ---------------------------------------------------------------------------------------------

def to_f32(a):
    if a.dtype == np.uint16:
        return (a.astype(np.uint32) << 16).view(np.float32)
    return a.astype("<f4", copy=False)


def to_bf16(a):
    """bfloat16 bits, rounding float32 to nearest even; NaN stays NaN."""
    if a.dtype == np.uint16:
        return a
    f = to_f32(a)
    bits = f.view(np.uint32)
    rounded = ((bits + 0x7FFF + ((bits >> 16) & 1)) >> 16).astype(np.uint16)
    return np.where(np.isnan(f), ((bits >> 16) | 0x40).astype(np.uint16), rounded)


def quantize_q8_0(a, group_size):
    """(int8 values, f32 scales) of a matrix, each row cut into groups of group_size:
    s = max|w| over the group / 127, q = round(w / s) (half to even), q = 0 where s = 0."""
    w = to_f32(a)
    rows, cols = w.shape
    groups = groups_per_row(cols, group_size)
    if groups * group_size != cols:             # zero-fill the short last group of each row
        w = np.pad(w, ((0, 0), (0, groups * group_size - cols)))
    w = w.reshape(rows, groups, group_size)
    scale = (np.abs(w).max(axis=2) / np.float32(127)).astype(np.float32)
    if not np.isfinite(scale).all():
        fail("cannot quantize a tensor holding inf or NaN")
    q = np.divide(w, scale[..., None], out=np.zeros_like(w), where=scale[..., None] > 0)
    q = np.clip(np.round(q), -127, 127).astype(np.int8).reshape(rows, groups * group_size)
    return np.ascontiguousarray(q[:, :cols]).reshape(-1), scale.reshape(-1)


def encode_tensor(spec, a, h):
    """The parts (arrays) a tensor is stored as, matching tensor_parts()."""
    if not spec.matrix or h.weight_type == WT_F32:
        return [to_f32(a)]
    if h.weight_type == WT_BF16:
        return [to_bf16(a).astype("<u2", copy=False)]
    return list(quantize_q8_0(a, h.group_size))


# ---------------------------------------------------------------------------------------------
# Writing a TSMF file
# ---------------------------------------------------------------------------------------------

@contextlib.contextmanager
def atomic_output(path):
    """A file object on a temporary file beside `path`, renamed to `path` only on success."""
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "wb") as f:
            yield f
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def pad_to(f, offset):
    f.write(b"\0" * (offset - f.tell()))


class Progress:
    """One line on a terminal's stderr, rewritten per tensor, for exports that take a while."""

    def __init__(self, total_bytes, count):
        self.enabled = total_bytes >= 64 << 20 and sys.stderr.isatty()
        self.count = count

    def step(self, index, name):
        if self.enabled:
            sys.stderr.write(f"\r{PROG}: tensor {index + 1}/{self.count} {name:<32}")
            sys.stderr.flush()

    def done(self):
        if self.enabled:
            sys.stderr.write("\n")


def write_tsmf(path, h, plan, tokenizer):
    """Write header, tensors (plan: name -> loader returning the array) and tokenizer bytes."""
    set_layout(h, len(tokenizer))
    check_header(h)
    placed, _ = place_tensors(h)
    progress = Progress(h.weights_size, len(placed))
    with atomic_output(path) as f:
        f.write(h.pack())
        try:
            for index, (spec, offset) in enumerate(placed):
                progress.step(index, spec.name)
                write_tensor(f, spec, plan[spec.name](), h, h.weights_offset + offset)
        finally:
            progress.done()
        if tokenizer:
            pad_to(f, h.tokenizer_offset)
            f.write(tokenizer)
        assert f.tell() == file_end(h)


def write_tensor(f, spec, a, h, offset):
    """Write one tensor in the encoding the header asks for, starting at file offset `offset`."""
    if a.shape != spec.shape:
        fail(f"tensor {spec.name} has shape {a.shape}, expected {spec.shape}")
    for i, (part, size) in enumerate(zip(encode_tensor(spec, a, h), tensor_parts(spec, h))):
        pad_to(f, align(f.tell()))
        assert i or f.tell() == offset, spec.name
        assert part.nbytes == size, spec.name
        f.write(memoryview(np.ascontiguousarray(part)).cast("B"))


def build_plan(h, resolve):
    """name -> loader for every tensor of `h`, from resolve(spec) of the source."""
    return {spec.name: resolve(spec) for spec in tensor_specs(h)}


# ---------------------------------------------------------------------------------------------
# Source tensors: a store of named tensors loaded on demand
# ---------------------------------------------------------------------------------------------

class TensorStore:
    """Named tensors of a checkpoint: name -> (shape, loader returning the array)."""

    def __init__(self, what, entries):
        self.what = what
        self.entries = entries
        self.used = set()

    def lazy(self, name, shape):
        """Loader of tensor `name`, checked now to exist with `shape`."""
        if name not in self.entries:
            fail(f"{self.what}: missing tensor {name}")
        src_shape, load = self.entries[name]
        if tuple(src_shape) != tuple(shape):
            fail(f"{self.what}: tensor {name} has shape {tuple(src_shape)}, "
                 f"the configuration needs {tuple(shape)}")
        self.used.add(name)
        return load

    def check_all_used(self, ignore=()):
        """Fail on tensors that the export did not use, unless they match an `ignore` regex."""
        left = [n for n in self.entries
                if n not in self.used and not any(re.search(p, n) for p in ignore)]
        if left:
            more = f" and {len(left) - 1} more" if len(left) > 1 else ""
            fail(f"{self.what}: unexpected tensor {left[0]}{more} (a feature this exporter "
                 "does not support, or a configuration that does not match the weights)")


# --- safetensors: u64 header length, JSON header, raw little-endian data -----------------------

SAFETENSORS_DTYPES = {"F32": "<f4", "F16": "<f2", "BF16": "<u2"}   # BF16 kept as raw bits
SAFETENSORS_ITEMSIZE = {"F64": 8, "I64": 8, "U64": 8, "F32": 4, "I32": 4, "U32": 4, "F16": 2,
                        "BF16": 2, "I16": 2, "U16": 2, "I8": 1, "U8": 1, "BOOL": 1,
                        "F8_E4M3": 1, "F8_E5M2": 1}


def read_safetensors(path):
    """{name: (shape, loader)} of a .safetensors file, validated against the file size."""
    size = os.path.getsize(path)
    with open(path, "rb") as f:
        raw = f.read(8)
        if len(raw) < 8:
            fail(f"{path}: truncated safetensors file ({size} bytes)")
        n = struct.unpack("<Q", raw)[0]
        if n > size - 8:
            fail(f"{path}: truncated safetensors file (header of {n} bytes, file of {size})")
        try:
            header = json.loads(f.read(n))
        except (ValueError, UnicodeDecodeError):
            fail(f"{path}: corrupt safetensors header (not JSON)")
    if not isinstance(header, dict):
        fail(f"{path}: corrupt safetensors header")
    data_start, data_size = 8 + n, size - 8 - n
    mapped = np.memmap(path, dtype=np.uint8, mode="r") if data_size else None
    entries = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        try:
            dtype, shape, (begin, end) = info["dtype"], tuple(info["shape"]), info["data_offsets"]
            numel = int(np.prod(shape, dtype=np.int64))
            assert all(isinstance(v, int) and v >= 0 for v in (*shape, begin, end))
        except (TypeError, KeyError, ValueError, AssertionError):
            fail(f"{path}: corrupt safetensors entry for {name}")
        if not begin <= end <= data_size:
            fail(f"{path}: truncated or corrupt safetensors file: {name} needs bytes "
                 f"{begin}..{end} of {data_size} data bytes")
        if dtype in SAFETENSORS_ITEMSIZE and end - begin != numel * SAFETENSORS_ITEMSIZE[dtype]:
            fail(f"{path}: corrupt safetensors file: {name} has {end - begin} bytes "
                 f"for {shape} {dtype}")
        load = partial(safetensors_array, mapped, data_start + begin, data_start + end,
                       dtype, shape, f"{path}: {name}")
        entries[name] = (shape, load)
    return entries


def safetensors_array(mapped, begin, end, dtype, shape, what):
    if dtype not in SAFETENSORS_DTYPES:
        fail(f"{what}: dtype {dtype} is not supported (F32, F16, BF16 are)")
    if begin == end:
        return np.zeros(shape, SAFETENSORS_DTYPES[dtype]).astype(np.float32)
    a = mapped[begin:end].view(SAFETENSORS_DTYPES[dtype]).reshape(shape)
    return a.astype(np.float32) if dtype == "F16" else a


# --- PyTorch pickles (read with torch, imported only when needed) ------------------------------

def import_torch(what):
    try:
        import torch
    except ImportError as e:
        fail(f"reading {what} needs PyTorch, which {sys.executable} cannot import ({e})")
    return torch


# Globals that a PyTorch pickle of tensor data names: tensor rebuilding, storages, dtypes,
# containers, numpy scalars. Unpickling calls whatever a pickle names, so any other name is
# refused before unpickling. (PyTorch 1.13's own weights_only mode, which does the same,
# cannot read the floats in a training checkpoint, and passing torch.load a restricted
# pickle_module has no effect there.)
SAFE_PICKLE_GLOBALS = {
    ("collections", "OrderedDict"), ("torch", "Size"), ("torch", "device"), ("torch", "Tensor"),
    ("torch._utils", "_rebuild_tensor"), ("torch._utils", "_rebuild_tensor_v2"),
    ("torch._utils", "_rebuild_parameter"), ("torch._utils", "_rebuild_parameter_with_state"),
    ("torch._tensor", "_rebuild_from_type_v2"), ("torch.nn.parameter", "Parameter"),
    ("numpy.core.multiarray", "scalar"), ("numpy", "dtype"), ("_codecs", "encode"),
    ("builtins", "set"), ("builtins", "frozenset"), ("builtins", "slice"),
    ("__builtin__", "set"), ("__builtin__", "frozenset"), ("__builtin__", "slice"),
}


def safe_pickle_global(torch, module, name):
    if (module, name) in SAFE_PICKLE_GLOBALS:
        return True
    value = getattr(torch, name, None) if module == "torch" else None
    return isinstance(value, torch.dtype) or (isinstance(value, type) and name.endswith("Storage"))


def check_pickle_globals(path, torch):
    """Fail unless every global that the pickles of a PyTorch file name is safe."""
    def scan(stream):
        for op, arg, _ in pickletools.genops(stream):
            if op.name in ("GLOBAL", "INST"):
                module, name = arg.split(" ", 1)
                if not safe_pickle_global(torch, module, name):
                    fail(f"{path}: refusing to unpickle {module}.{name} (not tensor data)")
            elif op.name in ("STACK_GLOBAL", "EXT1", "EXT2", "EXT4"):
                fail(f"{path}: pickle protocol 4+ is not supported (save with pickle_protocol=2, "
                     "torch.save's default)")

    try:
        if zipfile.is_zipfile(path):                  # torch >= 1.6: zip of data.pkl, data/
            with zipfile.ZipFile(path) as z:
                pickles = [n for n in z.namelist() if n.endswith(".pkl")]
                if not pickles or any(os.path.basename(n) != "data.pkl" for n in pickles):
                    fail(f"{path}: not a PyTorch state file (TorchScript or other archive)")
                for name in pickles:
                    scan(io.BytesIO(z.read(name)))
        else:                                                 # legacy: 5 pickles, then storages
            with open(path, "rb") as f:
                for _ in range(5):
                    scan(f)
    except (ValueError, EOFError, zipfile.BadZipFile, UnicodeDecodeError) as e:
        fail(f"{path}: cannot read PyTorch file ({e})")


def torch_load(path):
    """Unpickle a PyTorch file on the CPU, once check_pickle_globals() found it safe."""
    torch = import_torch(path)
    check_pickle_globals(path, torch)
    try:
        return torch.load(path, map_location="cpu", weights_only=False)
    except Exception as e:  # torch raises many kinds for corrupt, truncated or foreign files
        first_line = str(e).strip().splitlines()[0] if str(e).strip() else ""
        fail(f"{path}: cannot read PyTorch file ({type(e).__name__}: {first_line})")


def torch_entries(what, state_dict):
    """{name: (shape, loader)} of the tensors of a state dict."""
    torch = import_torch(what)
    return {name: (tuple(t.shape), partial(torch_array, t, f"{what}: {name}"))
            for name, t in state_dict.items() if torch.is_tensor(t)}


def read_torch_entries(path):
    """{name: (shape, loader)} of a pickled state dict (pytorch_model.bin)."""
    state_dict = torch_load(path)
    if not isinstance(state_dict, dict):
        fail(f"{path}: not a state dict")
    return torch_entries(path, state_dict)


def torch_array(t, what):
    torch = import_torch(what)
    t = t.detach().cpu().contiguous()
    if t.dtype == torch.float32:
        return t.numpy()
    if t.dtype == torch.float16:
        return t.float().numpy()
    if t.dtype == torch.bfloat16:
        return t.view(torch.int16).numpy().view(np.uint16)
    fail(f"{what}: dtype {t.dtype} is not supported (float32, float16, bfloat16 are)")


# ---------------------------------------------------------------------------------------------
# Llama-family header (Hugging Face Llama, llama2.c checkpoints and model files)
# ---------------------------------------------------------------------------------------------

def llama_header(*, dim, hidden_dim, n_layers, n_heads, n_kv_heads, head_dim, vocab_size,
                 seq_len, rope_theta, norm_eps, tied, bos_id, eos_id, attention_bias=False):
    flags = FLAG_SCALE_ATTN | (FLAG_TIED if tied else 0)
    if attention_bias:
        flags |= FLAG_QKV_BIAS | FLAG_OUT_BIAS
    h = Header(arch=ARCH_LLAMA, dim=dim, hidden_dim=hidden_dim, n_layers=n_layers,
               n_heads=n_heads, n_kv_heads=n_kv_heads, head_dim=head_dim,
               vocab_size=vocab_size, seq_len=seq_len, norm_kind=NORM_RMS,
               act_kind=ACT_SWIGLU, pos_kind=POS_ROPE, flags=flags, rope_theta=rope_theta,
               norm_eps=norm_eps, bos_id=bos_id, eos_id=eos_id, layer_window=[0] * n_layers)
    check_header(h)
    return h


# ---------------------------------------------------------------------------------------------
# Hugging Face checkpoint folders (config.json + weights)
# ---------------------------------------------------------------------------------------------

REQUIRED = object()


def config_value(config, key, default=REQUIRED, kind=int, where="config.json"):
    """config[key] checked to be of `kind`; `default` when absent or null."""
    value = config.get(key)
    if value is None:
        if default is REQUIRED:
            fail(f"{where}: {key} is missing")
        return default
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        fail(f"{where}: {key} should be {kind.__name__}, not {value!r}")
    return value


def token_id(value, vocab_size):
    """bos/eos id from config.json: an int, null (-1), or a list (its first entry). An id
    outside the vocabulary (transformers' GPT-Neo defaults to 50256 whatever the vocabulary)
    names no token of this model: -1, "none"."""
    if isinstance(value, list):
        value = value[0] if value else None
    if value is None or not 0 <= int(value) < vocab_size:
        return -1
    return int(value)


def hf_store(folder):
    """The weights of a Hugging Face folder, from safetensors (preferred) or a pickle."""
    def path(name):
        return os.path.join(folder, name)

    if os.path.isfile(path("model.safetensors")):
        return TensorStore(path("model.safetensors"), read_safetensors(path("model.safetensors")))
    for index_name, reader in (("model.safetensors.index.json", read_safetensors),
                               ("pytorch_model.bin.index.json", read_torch_entries)):
        if os.path.isfile(path(index_name)):
            return sharded_store(folder, index_name, reader)
    if os.path.isfile(path("pytorch_model.bin")):
        return TensorStore(path("pytorch_model.bin"), read_torch_entries(path("pytorch_model.bin")))
    fail(f"{folder}: no weights (model.safetensors, model.safetensors.index.json, "
         "pytorch_model.bin or pytorch_model.bin.index.json)")


def sharded_store(folder, index_name, reader):
    """Weights split over shard files listed by an index.json's weight_map."""
    index_path = os.path.join(folder, index_name)
    try:
        with open(index_path, encoding="utf-8") as f:
            weight_map = json.load(f)["weight_map"]
        shards = sorted(set(weight_map.values()))
    except (ValueError, KeyError, TypeError, AttributeError):
        fail(f"{index_path}: not a valid index (needs a weight_map)")
    entries = {}
    for shard in shards:
        shard_path = os.path.join(folder, shard)
        if not os.path.isfile(shard_path):
            fail(f"{index_path}: shard {shard} is missing")
        entries.update(reader(shard_path))
    return TensorStore(folder, entries)


def export_hf(folder):
    """(header, plan) for a Hugging Face Llama or GPT-Neo folder."""
    config_path = os.path.join(folder, "config.json")
    try:
        with open(config_path, encoding="utf-8") as f:
            config = json.load(f)
    except ValueError as e:
        fail(f"{config_path}: not valid JSON ({e})")
    if not isinstance(config, dict):
        fail(f"{config_path}: not a JSON object")
    model_type = config.get("model_type")
    converters = {"llama": hf_llama, "gpt_neo": hf_gptneo}
    if model_type not in converters:
        fail(f"{config_path}: unsupported model_type {model_type!r} (supported: llama, gpt_neo)")
    return converters[model_type](config, lambda: hf_store(folder))


# --- Llama (LlamaForCausalLM) -------------------------------------------------------------------

HF_LLAMA_NAMES = {
    "tok_embedding": "model.embed_tokens.weight",
    "attn_norm_weight": "model.layers.{l}.input_layernorm.weight",
    "wq": "model.layers.{l}.self_attn.q_proj.weight",
    "wk": "model.layers.{l}.self_attn.k_proj.weight",
    "wv": "model.layers.{l}.self_attn.v_proj.weight",
    "bq": "model.layers.{l}.self_attn.q_proj.bias",
    "bk": "model.layers.{l}.self_attn.k_proj.bias",
    "bv": "model.layers.{l}.self_attn.v_proj.bias",
    "wo": "model.layers.{l}.self_attn.o_proj.weight",
    "bo": "model.layers.{l}.self_attn.o_proj.bias",
    "ffn_norm_weight": "model.layers.{l}.post_attention_layernorm.weight",
    "w1": "model.layers.{l}.mlp.gate_proj.weight",
    "w3": "model.layers.{l}.mlp.up_proj.weight",
    "w2": "model.layers.{l}.mlp.down_proj.weight",
    "final_norm_weight": "model.norm.weight",
    "classifier": "lm_head.weight",
}
ROPE_KEYS = {"rope_type", "type", "rope_theta"}


def hf_rope_theta(config):
    """rope_theta, refusing rope scaling variants that run.c does not implement."""
    theta = config_value(config, "rope_theta", 10000.0, float)
    for key in ("rope_scaling", "rope_parameters"):
        params = config.get(key)
        if params is None:
            continue
        if not isinstance(params, dict):
            fail(f"config.json: {key} should be an object, not {params!r}")
        rope_type = params.get("rope_type", params.get("type", "default"))
        if rope_type != "default":
            fail(f"config.json: {key} has rope_type {rope_type!r}; only plain rotary "
                 "embeddings (\"default\") are supported")
        extra = [k for k, v in params.items() if k not in ROPE_KEYS and v is not None]
        if extra:
            fail(f"config.json: {key}.{extra[0]} is not supported")
        theta = config_value(params, "rope_theta", theta, float)
    return theta


def hf_llama(config, open_store):
    act = config.get("hidden_act", "silu")
    if act != "silu":
        fail(f"config.json: hidden_act {act!r} is not supported for llama (only silu)")
    if config.get("mlp_bias"):
        fail("config.json: mlp_bias=true is not supported")
    dim = config_value(config, "hidden_size")
    n_heads = config_value(config, "num_attention_heads")
    if config.get("head_dim") is None and dim % n_heads:
        fail(f"config.json: hidden_size {dim} is not a multiple of num_attention_heads {n_heads}")
    vocab_size = config_value(config, "vocab_size")
    h = llama_header(
        dim=dim, hidden_dim=config_value(config, "intermediate_size"),
        n_layers=config_value(config, "num_hidden_layers"), n_heads=n_heads,
        n_kv_heads=config_value(config, "num_key_value_heads", n_heads),
        head_dim=config_value(config, "head_dim", dim // n_heads),
        vocab_size=vocab_size,
        seq_len=config_value(config, "max_position_embeddings", 2048),
        rope_theta=hf_rope_theta(config),
        norm_eps=config_value(config, "rms_norm_eps", 1e-6, float),
        tied=bool(config.get("tie_word_embeddings", False)),
        bos_id=token_id(config.get("bos_token_id", 1), vocab_size),
        eos_id=token_id(config.get("eos_token_id", 2), vocab_size),
        attention_bias=bool(config.get("attention_bias", False)))
    store = open_store()

    def resolve(spec):
        load = store.lazy(HF_LLAMA_NAMES[spec.key].format(l=spec.layer), spec.shape)
        if spec.key in ("wq", "bq"):
            return partial(unpermute_rotary, load, h.n_heads, h.head_dim)
        if spec.key in ("wk", "bk"):
            return partial(unpermute_rotary, load, h.n_kv_heads, h.head_dim)
        return load

    plan = build_plan(h, resolve)
    ignore = [r"rotary_emb\.inv_freq$"] + ([r"^lm_head\.weight$"] if h.flags & FLAG_TIED else [])
    store.check_all_used(ignore)
    return h, plan


def unpermute_rotary(load, n_heads, head_dim):
    """Hugging Face's rotate-half q/k rows (or bias) back to llama2.c's adjacent pairs."""
    w = load()
    rest = w.shape[1:]
    w = w.reshape(n_heads, 2, head_dim // 2, *rest).swapaxes(1, 2)
    return np.ascontiguousarray(w.reshape(n_heads * head_dim, *rest))


# --- GPT-Neo (GPTNeoForCausalLM) ----------------------------------------------------------------

HF_GPTNEO_NAMES = {
    "tok_embedding": "transformer.wte.weight",
    "pos_embedding": "transformer.wpe.weight",
    "attn_norm_weight": "transformer.h.{l}.ln_1.weight",
    "attn_norm_bias": "transformer.h.{l}.ln_1.bias",
    "wq": "transformer.h.{l}.attn.attention.q_proj.weight",
    "wk": "transformer.h.{l}.attn.attention.k_proj.weight",
    "wv": "transformer.h.{l}.attn.attention.v_proj.weight",
    "wo": "transformer.h.{l}.attn.attention.out_proj.weight",
    "bo": "transformer.h.{l}.attn.attention.out_proj.bias",
    "ffn_norm_weight": "transformer.h.{l}.ln_2.weight",
    "ffn_norm_bias": "transformer.h.{l}.ln_2.bias",
    "w1": "transformer.h.{l}.mlp.c_fc.weight",
    "b1": "transformer.h.{l}.mlp.c_fc.bias",
    "w2": "transformer.h.{l}.mlp.c_proj.weight",
    "b2": "transformer.h.{l}.mlp.c_proj.bias",
    "final_norm_weight": "transformer.ln_f.weight",
    "final_norm_bias": "transformer.ln_f.bias",
    "classifier": "lm_head.weight",
}


def gptneo_attention_layers(config, n_layers):
    """Per-layer "global"/"local" from attention_layers, or expanded from attention_types."""
    layers = config.get("attention_layers")
    if layers is None:
        try:
            layers = [kind for kinds, repeat in config["attention_types"]
                      for _ in range(repeat) for kind in kinds]
        except (KeyError, TypeError, ValueError):
            fail("config.json: needs attention_layers or attention_types")
    if len(layers) != n_layers:
        fail(f"config.json: {len(layers)} attention layer types for {n_layers} layers")
    unknown = [kind for kind in layers if kind not in ("global", "local")]
    if unknown:
        fail(f"config.json: attention type {unknown[0]!r} is not supported (global, local)")
    return layers


def hf_gptneo(config, open_store):
    act = config.get("activation_function", "gelu_new")
    if act != "gelu_new":
        fail(f"config.json: activation_function {act!r} is not supported for gpt_neo (gelu_new)")
    dim = config_value(config, "hidden_size")
    n_layers = config_value(config, "num_layers")
    n_heads = config_value(config, "num_heads")
    if dim % n_heads:
        fail(f"config.json: hidden_size {dim} is not a multiple of num_heads {n_heads}")
    window = config_value(config, "window_size", 256)
    tied = bool(config.get("tie_word_embeddings", True))
    vocab_size = config_value(config, "vocab_size")
    h = Header(
        arch=ARCH_GPTNEO, dim=dim, hidden_dim=config_value(config, "intermediate_size", 4 * dim),
        n_layers=n_layers, n_heads=n_heads, n_kv_heads=n_heads, head_dim=dim // n_heads,
        vocab_size=vocab_size,
        seq_len=config_value(config, "max_position_embeddings", 2048),
        norm_kind=NORM_LAYER, act_kind=ACT_GELU, pos_kind=POS_LEARNED,
        flags=FLAG_OUT_BIAS | FLAG_MLP_BIAS | (FLAG_TIED if tied else 0),
        rope_theta=0.0, norm_eps=config_value(config, "layer_norm_epsilon", 1e-5, float),
        bos_id=token_id(config.get("bos_token_id", 50256), vocab_size),
        eos_id=token_id(config.get("eos_token_id", 50256), vocab_size),
        layer_window=[window if kind == "local" else 0
                      for kind in gptneo_attention_layers(config, n_layers)])
    check_header(h)
    store = open_store()
    plan = build_plan(h, lambda spec: store.lazy(
        HF_GPTNEO_NAMES[spec.key].format(l=spec.layer), spec.shape))
    ignore = [r"\.attn\.attention\.(bias|masked_bias)$"]
    if tied:
        ignore.append(r"^lm_head\.weight$")
    store.check_all_used(ignore)
    return h, plan


# ---------------------------------------------------------------------------------------------
# llama2.c training checkpoint (ckpt.pt: {"model_args": ..., "model": state_dict, ...})
# ---------------------------------------------------------------------------------------------

CKPT_NAMES = {
    "tok_embedding": "tok_embeddings.weight",
    "attn_norm_weight": "layers.{l}.attention_norm.weight",
    "wq": "layers.{l}.attention.wq.weight",
    "wk": "layers.{l}.attention.wk.weight",
    "wv": "layers.{l}.attention.wv.weight",
    "wo": "layers.{l}.attention.wo.weight",
    "ffn_norm_weight": "layers.{l}.ffn_norm.weight",
    "w1": "layers.{l}.feed_forward.w1.weight",
    "w2": "layers.{l}.feed_forward.w2.weight",
    "w3": "layers.{l}.feed_forward.w3.weight",
    "final_norm_weight": "norm.weight",
    "classifier": "output.weight",
}


def llama2c_hidden_dim(dim, multiple_of):
    """llama2.c's FeedForward width when hidden_dim is not given."""
    hidden = int(2 * (4 * dim) / 3)
    return multiple_of * ((hidden + multiple_of - 1) // multiple_of)


def export_ckpt(path, checkpoint):
    if not (isinstance(checkpoint, dict) and "model_args" in checkpoint and "model" in checkpoint):
        fail(f"{path}: not a llama2.c checkpoint (no model_args/model); for a Hugging Face "
             "pytorch_model.bin pass its folder with config.json")
    torch = import_torch(path)
    arg = partial(config_value, checkpoint["model_args"], where=f"{path}: model_args")
    state = {name.removeprefix("_orig_mod."): t for name, t in checkpoint["model"].items()}
    dim, n_heads = arg("dim"), arg("n_heads")
    if dim % n_heads:
        fail(f"{path}: dim {dim} is not a multiple of n_heads {n_heads}")
    hidden = arg("hidden_dim", None) or llama2c_hidden_dim(dim, arg("multiple_of", 256))
    emb, out = state.get("tok_embeddings.weight"), state.get("output.weight")
    tied = out is None or (emb is not None and out.shape == emb.shape
                           and (out.data_ptr() == emb.data_ptr() or bool(torch.equal(out, emb))))
    h = llama_header(
        dim=dim, hidden_dim=hidden, n_layers=arg("n_layers"), n_heads=n_heads,
        n_kv_heads=arg("n_kv_heads", n_heads), head_dim=dim // n_heads,
        vocab_size=arg("vocab_size"), seq_len=arg("max_seq_len"), rope_theta=10000.0,
        norm_eps=arg("norm_eps", 1e-5, float), tied=tied, bos_id=1, eos_id=2)
    store = TensorStore(path, torch_entries(path, state))
    plan = build_plan(h, lambda spec: store.lazy(
        CKPT_NAMES[spec.key].format(l=spec.layer), spec.shape))
    store.check_all_used([r"^freqs_(cos|sin)$"] + ([r"^output\.weight$"] if tied else []))
    return h, plan


# ---------------------------------------------------------------------------------------------
# llama2.c model files: legacy (7 x i32 header, f32 tensors), version 1 (256-byte header,
# f32 tensors) and version 2 (256-byte header, f32 norms then Q8_0 matrices)
# ---------------------------------------------------------------------------------------------

LLAMA2C_MAGIC = struct.pack("<I", 0x616B3432)     # b"24ka"
LLAMA2C_PARAMS = ("dim", "hidden_dim", "n_layers", "n_heads", "n_kv_heads", "vocab_size", "seq_len")
LLAMA2C_KINDS = {0: "legacy llama2.c", 1: "llama2.c version 1", 2: "llama2.c version 2"}


def read_llama2c_header(path):
    """(version (0 = legacy), params, shared_classifier, group_size, data offset)."""
    with open(path, "rb") as f:
        head = f.read(256)
    if head[:4] == LLAMA2C_MAGIC:
        if len(head) < 256:
            fail(f"{path}: truncated llama2.c header")
        version = struct.unpack_from("<i", head, 4)[0]
        if version not in (1, 2):
            fail(f"{path}: llama2.c model version {version} is not supported (1 and 2 are)")
        params = dict(zip(LLAMA2C_PARAMS, struct.unpack_from("<7i", head, 8)))
        shared = bool(head[36])
        group_size = struct.unpack_from("<i", head, 37)[0] if version == 2 else None
        offset = 256
    else:
        if len(head) < 28:
            fail(f"{path}: unrecognised model file (too short)")
        params = dict(zip(LLAMA2C_PARAMS, struct.unpack_from("<7i", head)))
        shared = params["vocab_size"] > 0
        params["vocab_size"] = abs(params["vocab_size"])
        version, group_size, offset = 0, None, 28
    p = params
    plausible = (all(0 < v < 1 << 24 for v in p.values()) and p["n_layers"] <= MAX_LAYERS
                 and p["dim"] % p["n_heads"] == 0 and p["n_heads"] % p["n_kv_heads"] == 0)
    if not plausible:
        fail(f"{path}: unrecognised model file (not a Hugging Face folder, llama2.c checkpoint "
             f"or llama2.c model file; read as {LLAMA2C_KINDS[version]}: {params})")
    if group_size is not None and (group_size <= 0 or p["dim"] % group_size):
        fail(f"{path}: bad Q8_0 group size {group_size} for dim {p['dim']}")
    return version, params, shared, group_size, offset


def llama2c_segments(version, p, shared):
    """File order of a llama2.c model: (key or None to skip, per layer?, shape, encoding)."""
    d, hd, voc = p["dim"], p["hidden_dim"], p["vocab_size"]
    head_size = d // p["n_heads"]
    kv = p["n_kv_heads"] * head_size
    emb = ("tok_embedding", False, (voc, d))
    norms = [("attn_norm_weight", True, (d,)), ("ffn_norm_weight", True, (d,)),
             ("final_norm_weight", False, (d,))]
    matrices = [("wq", True, (d, d)), ("wk", True, (kv, d)), ("wv", True, (kv, d)),
                ("wo", True, (d, d)), ("w1", True, (hd, d)), ("w2", True, (d, hd)),
                ("w3", True, (hd, d))]
    classifier = [] if shared else [("classifier", False, (voc, d))]
    if version == 0:                      # ends with the rotary tables freq_cis_real/imag
        freq = (p["seq_len"], head_size // 2)
        order = ([emb, norms[0]] + matrices[:4] + [norms[1]] + matrices[4:] + [norms[2]]
                 + [(None, False, freq), (None, False, freq)] + classifier)
        return [seg + ("f32",) for seg in order]
    if version == 1:
        return [seg + ("f32",) for seg in norms + [emb] + matrices + classifier]
    quantized = [emb] + matrices + classifier
    return [seg + ("f32",) for seg in norms] + [seg + ("q8",) for seg in quantized]


def llama2c_store(path, version, p, shared, group_size, offset):
    """Tensors of a llama2.c model file under their TSMF names, checking the exact file size."""
    mapped = np.memmap(path, dtype=np.uint8, mode="r")
    entries, pos = {}, offset
    for key, per_layer, shape, encoding in llama2c_segments(version, p, shared):
        for layer in (range(p["n_layers"]) if per_layer else [None]):
            numel = int(np.prod(shape))
            if encoding == "f32":
                size, load = 4 * numel, partial(raw_f32, mapped, pos, shape)
            else:
                size = numel + 4 * (numel // group_size)
                load = partial(raw_q8_0, mapped, pos, shape, group_size)
            if key is not None:
                entries[key if layer is None else f"layers.{layer}.{key}"] = (shape, load)
            pos += size
    if pos != mapped.size:
        problem = "truncated" if mapped.size < pos else "too long"
        fail(f"{path}: {problem} {LLAMA2C_KINDS[version]} file: {mapped.size} bytes, "
             f"expected {pos} for {p}")
    return TensorStore(path, entries)


def raw_f32(mapped, pos, shape):
    return mapped[pos:pos + 4 * int(np.prod(shape))].view("<f4").reshape(shape)


def raw_q8_0(mapped, pos, shape, group_size):
    """A llama2.c version 2 tensor: groups run over the flattened tensor."""
    numel = int(np.prod(shape))
    q = mapped[pos:pos + numel].view(np.int8).reshape(-1, group_size)
    scale = mapped[pos + numel:pos + numel + 4 * (numel // group_size)].view("<f4")
    return (q.astype(np.float32) * scale[:, None]).reshape(shape)


def export_llama2c(path):
    version, p, shared, group_size, offset = read_llama2c_header(path)
    store = llama2c_store(path, version, p, shared, group_size, offset)
    h = llama_header(dim=p["dim"], hidden_dim=p["hidden_dim"], n_layers=p["n_layers"],
                     n_heads=p["n_heads"], n_kv_heads=p["n_kv_heads"],
                     head_dim=p["dim"] // p["n_heads"], vocab_size=p["vocab_size"],
                     seq_len=p["seq_len"], rope_theta=10000.0, norm_eps=1e-5, tied=shared,
                     bos_id=1, eos_id=2)
    plan = build_plan(h, lambda spec: store.lazy(spec.name, spec.shape))
    store.check_all_used()
    return h, plan


# ---------------------------------------------------------------------------------------------
# Choosing the reader for SRC
# ---------------------------------------------------------------------------------------------

def export_source(src):
    """(header, plan) for any supported SRC."""
    if os.path.isfile(src) and os.path.basename(src) == "config.json":
        src = os.path.dirname(src) or "."
    if os.path.isdir(src):
        if not os.path.isfile(os.path.join(src, "config.json")):
            fail(f"{src}: folder without config.json (not a Hugging Face checkpoint)")
        return export_hf(src)
    if not os.path.isfile(src):
        fail(f"{src}: no such file or folder")
    if src.endswith(".safetensors"):
        fail(f"{src}: pass the Hugging Face folder that holds it with its config.json")
    with open(src, "rb") as f:
        magic = f.read(4)
    if magic.startswith(b"PK\x03\x04") or magic[:1] == b"\x80":     # torch zip or legacy pickle
        return export_ckpt(src, torch_load(src))
    return export_llama2c(src)


# ---------------------------------------------------------------------------------------------
# Tokenizers. sentencepiece .model (protobuf) -> llama2.c tokenizer.bin (u32 max_token_length,
# then per token f32 score, i32 len, bytes); GPT-2 byte-level BPE -> TSMF tokenizer kind 2.
# ---------------------------------------------------------------------------------------------

def read_varint(buf, pos):
    value, shift = 0, 0
    while True:
        if pos >= len(buf):
            fail("truncated varint")
        byte = buf[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if byte < 0x80:
            return value, pos
        if shift > 63:
            fail("varint too long")


def protobuf_fields(buf):
    """(field number, wire type, value) of a protobuf message; value is an int for
    varints and bytes for length-delimited and fixed-size fields."""
    pos = 0
    while pos < len(buf):
        key, pos = read_varint(buf, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = read_varint(buf, pos)
        elif wire in (1, 5):
            size = 8 if wire == 1 else 4
            value, pos = buf[pos:pos + size], pos + size
        elif wire == 2:
            size, pos = read_varint(buf, pos)
            value, pos = buf[pos:pos + size], pos + size
        else:
            fail(f"unsupported protobuf wire type {wire}")
        if pos > len(buf):
            fail("truncated message")
        yield number, wire, value


def as_int32(varint):
    varint &= 0xFFFFFFFF
    return varint - (1 << 32) if varint >= 1 << 31 else varint


def read_sentencepiece(path):
    """([(piece, score)], bos_id, eos_id) of a sentencepiece ModelProto."""
    with open(path, "rb") as f:
        data = f.read()
    pieces, bos, eos = [], 1, 2
    try:
        for number, wire, value in protobuf_fields(data):
            if number == 1 and wire == 2:                     # repeated SentencePiece
                piece, score = "", 0.0
                for n, w, v in protobuf_fields(value):
                    if n == 1 and w == 2:
                        piece = v.decode("utf-8")
                    elif n == 2 and w == 5:
                        score = struct.unpack("<f", v)[0]
                pieces.append((piece, score))
            elif number == 2 and wire == 2:                   # TrainerSpec
                for n, w, v in protobuf_fields(value):
                    if n == 41 and w == 0:
                        bos = as_int32(v)
                    elif n == 42 and w == 0:
                        eos = as_int32(v)
    except (ExportError, UnicodeDecodeError) as e:
        fail(f"{path}: not a valid sentencepiece model ({e})")
    if not pieces:
        fail(f"{path}: not a sentencepiece model (no pieces)")
    return pieces, bos, eos


def sentencepiece_to_llama2c(pieces, bos, eos):
    """llama2.c tokenizer.bin bytes."""
    texts = []
    for i, (piece, _) in enumerate(pieces):
        if i == bos:
            piece = "\n<s>\n"
        elif i == eos:
            piece = "\n</s>\n"
        texts.append(piece.replace("\u2581", " ").encode("utf-8"))
    records = [struct.pack("<fi", score, len(text)) + text
               for text, (_, score) in zip(texts, pieces)]
    return struct.pack("<I", max(map(len, texts))) + b"".join(records)


def count_llama2c_tokens(data, what):
    """Number of records in llama2.c tokenizer.bin bytes, which must fill them exactly."""
    pos, count = 4, 0
    while pos < len(data):
        if pos + 8 > len(data):
            fail(f"{what}: truncated llama2.c tokenizer")
        length = struct.unpack_from("<i", data, pos + 4)[0]
        if length < 0 or pos + 8 + length > len(data):
            fail(f"{what}: corrupt llama2.c tokenizer (token {count})")
        pos, count = pos + 8 + length, count + 1
    if len(data) < 4:
        fail(f"{what}: truncated llama2.c tokenizer")
    return count


def gpt2_byte_decoder():
    """GPT-2's printable-unicode alphabet back to bytes: 33..126, 161..172 and 174..255 stand
    for themselves, the other 68 bytes are chr(256), chr(257), ... in increasing order."""
    printable = [*range(33, 127), *range(161, 173), *range(174, 256)]
    others = [b for b in range(256) if b not in printable]
    table = {chr(b): b for b in printable}
    table.update({chr(256 + i): b for i, b in enumerate(others)})
    return table


def gpt2_tokenizer_section(vocab, merges, added, vocab_size, what):
    """TSMF tokenizer kind 2 bytes. vocab: text -> id, merges: [(left, right)] in rank order,
    added: id -> text of added tokens (stored as their UTF-8 text)."""
    decoder = gpt2_byte_decoder()

    def token_bytes(text):
        if all(c in decoder for c in text):
            return bytes(decoder[c] for c in text)
        return text.encode("utf-8")                           # special token: its text

    tokens = {}
    for text, i in vocab.items():
        if not isinstance(i, int) or i < 0:
            fail(f"{what}: bad id {i!r} for token {text!r}")
        tokens[i] = token_bytes(text)
    tokens.update((i, text.encode("utf-8")) for i, text in added.items())
    n = max(tokens) + 1 if tokens else 0
    missing = [i for i in range(n) if i not in tokens]
    if missing:
        fail(f"{what}: no token with id {missing[0]}")
    if n != vocab_size:
        fail(f"{what}: tokenizer has {n} tokens but the model's vocab_size is {vocab_size}")
    triples = np.empty((len(merges), 3), "<i4")
    for rank, (left, right) in enumerate(merges):
        ids = [vocab.get(left), vocab.get(right), vocab.get(left + right)]
        if None in ids:
            fail(f"{what}: merge {rank} ({left} {right}) uses a token missing from the vocabulary")
        if tokens[ids[2]] != tokens[ids[0]] + tokens[ids[1]]:
            fail(f"{what}: merge {rank} ({left} {right}) does not concatenate its tokens")
        triples[rank] = ids
    out = [struct.pack("<ii", n, len(merges))]
    out += [struct.pack("<i", len(tokens[i])) + tokens[i] for i in range(n)]
    return b"".join(out) + triples.tobytes()


def read_json(path):
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (ValueError, UnicodeDecodeError) as e:
        fail(f"{path}: not valid JSON ({e})")


def read_merges_txt(path):
    """[(left, right)] of a GPT-2 merges.txt, skipping a "#version" first line and blanks."""
    with open(path, encoding="utf-8") as f:
        lines = f.read().split("\n")
    if lines and lines[0].startswith("#version"):
        lines = lines[1:]
    merges = []
    for number, line in enumerate(lines, 1):
        line = line.rstrip("\r")
        if not line:
            continue
        pair = line.split(" ")
        if len(pair) != 2:
            fail(f"{path}: line {number} is not a \"left right\" pair: {line!r}")
        merges.append(tuple(pair))
    return merges


def is_byte_level(component):
    """True when a tokenizer.json pre_tokenizer/decoder is or contains ByteLevel."""
    if isinstance(component, dict):
        return component.get("type") == "ByteLevel" or any(map(is_byte_level, component.values()))
    if isinstance(component, list):
        return any(map(is_byte_level, component))
    return False


def read_tokenizer_json(path, tj):
    """(vocab, merges, added) of a Hugging Face byte-level BPE tokenizer.json."""
    model = tj.get("model") or {}
    if model.get("type", "BPE") != "BPE" or "vocab" not in model or "merges" not in model:
        fail(f"{path}: only BPE tokenizer.json files are supported")
    if not is_byte_level([tj.get("pre_tokenizer"), tj.get("decoder")]):
        fail(f"{path}: not a byte-level BPE tokenizer; for a sentencepiece model pass its .model")
    merges = []
    for merge in model["merges"]:
        pair = merge.split(" ") if isinstance(merge, str) else merge
        if not isinstance(pair, list) or len(pair) != 2:
            fail(f"{path}: bad merge {merge!r}")
        merges.append(tuple(pair))
    added = {t["id"]: t["content"] for t in tj.get("added_tokens") or []}
    return model["vocab"], merges, added


def load_tokenizer(path, merges_path, vocab_size):
    """(tokenizer_kind, section bytes) for --tokenizer, checked against the model's vocab."""
    if path.endswith(".json"):
        obj = read_json(path)
        if not isinstance(obj, dict):
            fail(f"{path}: not a vocab.json or tokenizer.json")
        if isinstance(obj.get("model"), dict):           # a vocab.json maps text to ints
            if merges_path:
                fail("--merges goes with a GPT-2 vocab.json, not a tokenizer.json")
            vocab, merges, added = read_tokenizer_json(path, obj)
        else:
            if not merges_path:
                fail(f"{path}: a GPT-2 vocab.json needs --merges merges.txt")
            vocab, merges, added = obj, read_merges_txt(merges_path), {}
        return TOK_GPT2, gpt2_tokenizer_section(vocab, merges, added, vocab_size, path)
    if merges_path:
        fail("--merges goes with a GPT-2 vocab.json only")
    if path.endswith(".model"):
        data = sentencepiece_to_llama2c(*read_sentencepiece(path))
    else:
        with open(path, "rb") as f:
            data = f.read()
    count = count_llama2c_tokens(data, path)
    if count != vocab_size:
        fail(f"{path}: tokenizer has {count} tokens but the model's vocab_size is {vocab_size}")
    return TOK_SENTENCEPIECE, data


# ---------------------------------------------------------------------------------------------
# info: print and validate a TSMF file
# ---------------------------------------------------------------------------------------------

def check_tokenizer_section(h, data):
    if h.tokenizer_kind == TOK_SENTENCEPIECE:
        count = count_llama2c_tokens(data, "tokenizer section")
        if count != h.vocab_size:
            fail(f"tokenizer section has {count} tokens, vocab_size is {h.vocab_size}")
    elif h.tokenizer_kind == TOK_GPT2:
        if len(data) < 8:
            fail("truncated tokenizer section")
        n_tokens, n_merges = struct.unpack_from("<ii", data)
        if n_tokens != h.vocab_size or n_merges < 0:
            fail(f"tokenizer section has {n_tokens} tokens, vocab_size is {h.vocab_size}")
        pos = 8
        for i in range(n_tokens):
            length = struct.unpack_from("<i", data, pos)[0] if pos + 4 <= len(data) else -1
            if length < 0 or pos + 4 + length > len(data):
                fail(f"tokenizer section: corrupt token {i}")
            pos += 4 + length
        if len(data) - pos != 12 * n_merges:
            fail(f"tokenizer section: {len(data) - pos} bytes for {n_merges} merges")
        ids = np.frombuffer(data, "<i4", offset=pos)
        if ids.size and (ids.min() < 0 or ids.max() >= n_tokens):
            fail("tokenizer section: merge id out of range")


def read_tsmf(path):
    """The validated header of a TSMF file (offsets, sizes and tokenizer section checked)."""
    size = os.path.getsize(path)
    with open(path, "rb") as f:
        data = f.read(HEADER_SIZE + 4 * MAX_LAYERS)
        h = Header.unpack(data, path)
        try:
            check_header(h)
            if h.weights_offset % ALIGN or h.weights_offset < HEADER_SIZE + 4 * h.n_layers:
                fail(f"weights_offset {h.weights_offset}")
            expected = place_tensors(h)[1]
            if h.weights_size != expected:
                fail(f"weights_size {h.weights_size}, the header fields give {expected}")
            if h.tokenizer_kind == TOK_NONE:
                if h.tokenizer_offset or h.tokenizer_size:
                    fail("tokenizer offset/size set without a tokenizer")
            elif (h.tokenizer_offset % ALIGN or h.tokenizer_size == 0
                  or h.tokenizer_offset < h.weights_offset + h.weights_size):
                fail(f"tokenizer_offset {h.tokenizer_offset} / size {h.tokenizer_size}")
            if size != file_end(h):
                problem = "truncated" if size < file_end(h) else "too long"
                fail(f"{problem}: {size} bytes, the header gives {file_end(h)}")
            if h.tokenizer_kind != TOK_NONE:
                f.seek(h.tokenizer_offset)
                check_tokenizer_section(h, f.read(h.tokenizer_size))
        except ExportError as e:
            fail(f"{path}: {e}")
    return h


def describe(h, field):
    value = getattr(h, field)
    if field == "flags":
        names = [name for bit, name in FLAG_NAMES.items() if value & bit]
        return f"{value:#x} ({'|'.join(names) or 'none'})"
    if field in ENUM_NAMES:
        return f"{value} ({ENUM_NAMES[field].get(value, '?')})"
    if field == "magic":
        return value.decode("latin-1")
    return str(np.float32(value)) if isinstance(value, float) else str(value)


def cmd_info(args):
    h = read_tsmf(args.file)
    for field, _ in HEADER_FIELDS:
        if field != "reserved":
            print(f"{field:<17} {describe(h, field)}")
    print(f"{'layer_window':<17} {' '.join(map(str, h.layer_window))}")
    placed, _ = place_tensors(h)
    params = sum(int(np.prod(spec.shape)) for spec, _ in placed)
    print(f"{'tensors':<17} {len(placed)} ({params} parameters)")
    if args.tensors:
        for spec, offset in placed:
            kind = ENUM_NAMES["weight_type"][h.weight_type] if spec.matrix else "f32"
            shape = "x".join(map(str, spec.shape))
            print(f"  {h.weights_offset + offset:>12} {spec.name:<28} {shape:<14} {kind}")


# ---------------------------------------------------------------------------------------------
# Commands
# ---------------------------------------------------------------------------------------------

def cmd_model(args):
    if args.group_size is not None and args.dtype != "q8_0":
        fail("--group-size only applies to --dtype q8_0")
    if args.merges and not args.tokenizer:
        fail("--merges needs --tokenizer vocab.json")
    h, plan = export_source(args.src)
    h.weight_type = WEIGHT_TYPES[args.dtype]
    h.group_size = choose_group_size(args.group_size) if args.dtype == "q8_0" else 0
    tokenizer = b""
    if args.tokenizer:
        h.tokenizer_kind, tokenizer = load_tokenizer(args.tokenizer, args.merges, h.vocab_size)
    write_tsmf(args.out, h, plan, tokenizer)


def cmd_tokenizer(args):
    data = sentencepiece_to_llama2c(*read_sentencepiece(args.src))
    with atomic_output(args.out) as f:
        f.write(data)


class Parser(argparse.ArgumentParser):
    def error(self, message):
        self.print_usage(sys.stderr)
        self.exit(1, f"{PROG}: error: {message}\n")


def parse_args(argv):
    parser = Parser(prog=PROG, description="Convert models and tokenizers to TSMF files for run.c.")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=Parser)
    model = commands.add_parser("model", help="convert a model (HF folder, ckpt.pt, llama2.c .bin)")
    model.add_argument("src", metavar="SRC")
    model.add_argument("out", metavar="OUT.bin")
    model.add_argument("--tokenizer", metavar="TOK",
                       help="embed a tokenizer: sentencepiece .model, llama2.c tokenizer.bin, "
                            "GPT-2 vocab.json (with --merges) or byte-level BPE tokenizer.json")
    model.add_argument("--merges", metavar="MERGES", help="GPT-2 merges.txt for a vocab.json")
    model.add_argument("--dtype", choices=list(WEIGHT_TYPES), default="f32",
                       help="type of the matrix tensors (default f32)")
    model.add_argument("--group-size", type=int, metavar="N",
                       help=f"Q8_0 group size, 1..{MAX_GROUP_SIZE} (default {DEFAULT_GROUP_SIZE})")
    model.set_defaults(run=cmd_model)
    tok = commands.add_parser("tokenizer", help="sentencepiece .model -> llama2.c tokenizer.bin")
    tok.add_argument("src", metavar="SRC.model")
    tok.add_argument("out", metavar="OUT.bin")
    tok.set_defaults(run=cmd_tokenizer)
    info = commands.add_parser("info", help="print and validate a TSMF file's header")
    info.add_argument("file", metavar="FILE")
    info.add_argument("--tensors", action="store_true", help="also list the tensors")
    info.set_defaults(run=cmd_info)
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    try:
        args.run(args)
    except ExportError as e:
        sys.stderr.write(f"{PROG}: error: {e}\n")
        return 1
    except BrokenPipeError:                                   # e.g. `info ... | head`
        sys.stdout = None
        return 1
    except OSError as e:
        where = f"{e.filename}: " if e.filename else ""
        sys.stderr.write(f"{PROG}: error: {where}{e.strerror or e}\n")
        return 1
    except MemoryError:
        sys.stderr.write(f"{PROG}: error: out of memory\n")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
