/* fuzz/synth.h -- small synthetic model files and tokenizers, in every layout run.c reads.
 *
 * The project's one C writer of model files. The fuzz targets, the seed-corpus generator
 * (fuzz/make_corpus.c) and the hostile-input tests build their inputs with it, so nothing
 * needs a download and nothing is copied from ../shared: weights are pseudo-random (a fixed
 * seed gives fixed bytes), a valid file of the right shape, no language model. test_all.c
 * (a reference model's weights) and bench/gen.c (random weights at the published shapes)
 * write TSMF files through sy_write_tsmf_from, which takes the values from its caller.
 *
 * Needs only libc and libm (it uses nothing of run.c). All functions are static.
 */
#ifndef SYNTH_H
#define SYNTH_H
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <math.h>
#include <stdio.h>

/* ---- a growable byte buffer with little-endian writers ---- */
typedef struct { unsigned char *p; size_t n, cap; } sy_buf;

static inline void sy_put(sy_buf *b, const void *src, size_t n) {
    if (b->n + n > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->n + n) cap *= 2;
        unsigned char *p = (unsigned char *)realloc(b->p, cap);
        if (!p) abort(); /* test tooling: no way to go on */
        b->p = p, b->cap = cap;
    }
    if (n) memcpy(b->p + b->n, src, n);
    b->n += n;
}
static inline void sy_u32(sy_buf *b, uint32_t v) {
    unsigned char x[4] = {(unsigned char)v, (unsigned char)(v >> 8), (unsigned char)(v >> 16), (unsigned char)(v >> 24)};
    sy_put(b, x, 4);
}
static inline void sy_i32(sy_buf *b, int32_t v) { sy_u32(b, (uint32_t)v); }
static inline void sy_f32(sy_buf *b, float f) {
    uint32_t v;
    memcpy(&v, &f, 4);
    sy_u32(b, v);
}
static inline void sy_u64(sy_buf *b, uint64_t v) {
    sy_u32(b, (uint32_t)v);
    sy_u32(b, (uint32_t)(v >> 32));
}
static inline void sy_patch_u64(sy_buf *b, size_t at, uint64_t v) {
    for (int i = 0; i < 8; i++) b->p[at + i] = (unsigned char)(v >> (8 * i));
}
static inline void sy_pad(sy_buf *b, size_t align) {
    static const unsigned char zero[64];
    while (b->n % align) sy_put(b, zero, 1);
}

/* uniform in [-0.5, 0.5): an xorshift32 stream */
static inline float sy_rand(uint32_t *state) {
    *state ^= *state << 13, *state ^= *state >> 17, *state ^= *state << 5;
    return (float)(*state >> 8) / 16777216.0f - 0.5f;
}

/* ---- tokenizer.bin (llama2.c): u32 max_token_length, then per token f32 score, i32 len, bytes ---- */

/* Pieces after <unk>, BOS, EOS and the 256 byte tokens. Each multi-character piece is the
 * concatenation of two earlier ones, so BPE can reach it; multi-byte UTF-8 characters are
 * single pieces, as in the Llama vocabulary. */
static const char *const sy_pieces[] = {
    " ", "e", "t", "a", "o", "n", "h", "s", "O", "c", "u", "p", "i", "m", "T", "L", "l", "y", ".", ",", "!", "\n",
    "\xc3\xa9" /* é */, "\xe6\x97\xa5" /* 日 */, "\xf0\x9f\x98\x80" /* 😀 */,
    "th", "he", "an", "on", " t", " a", "in", " the", "the", "nc", "Onc", "Once", " Once", "up", " up", " upon", "ti", "me",
    " time", "im", "ly", "Ly", "Lil", "il", "Lily", " Lily", "é!", " 日",
};
#define SY_N_PIECES ((int)(sizeof sy_pieces / sizeof sy_pieces[0]))
#define SY_VOCAB (3 + 256 + SY_N_PIECES)

/* The synthetic vocabulary: ids 0..SY_VOCAB-1. with_bytes = 0 leaves out the byte tokens
 * (their ids then hold "<unk>"-like filler pieces "#0", "#1", ...). */
static inline void sy_write_tokenizer(sy_buf *b, int with_bytes) {
    char text[16];
    sy_u32(b, 16); /* max_token_length: ignored by run.c, kept for llama2.c */
    const char *fixed[3] = {"<unk>", "\n<s>\n", "\n</s>\n"};
    for (int i = 0; i < 3; i++) {
        sy_f32(b, 0.0f);
        sy_i32(b, (int32_t)strlen(fixed[i]));
        sy_put(b, fixed[i], strlen(fixed[i]));
    }
    static const char hex[] = "0123456789ABCDEF";
    for (int i = 0; i < 256; i++) {
        if (with_bytes) text[0] = '<', text[1] = '0', text[2] = 'x', text[3] = hex[i >> 4], text[4] = hex[i & 15], text[5] = '>', text[6] = 0;
        else text[0] = '#', text[1] = hex[i >> 4], text[2] = hex[i & 15], text[3] = 0;
        sy_f32(b, 0.0f);
        sy_i32(b, (int32_t)strlen(text));
        sy_put(b, text, strlen(text));
    }
    for (int i = 0; i < SY_N_PIECES; i++) { /* later (longer) pieces merge first, as sentencepiece scores them */
        sy_f32(b, -1000.0f + (float)i);
        sy_i32(b, (int32_t)strlen(sy_pieces[i]));
        sy_put(b, sy_pieces[i], strlen(sy_pieces[i]));
    }
}

/* ---- GPT-2 byte-level BPE section (TSMF tokenizer_kind 2, docs/format.md) ----
 * i32 n_tokens, i32 n_merges, n_tokens x (i32 len, bytes), n_merges x (i32 left, right, result).
 * Ids 0..255 are the single bytes, then one token per merge below (in rank order), then
 * "<|endoftext|>" as the last id (the models' BOS and EOS). */
static const char *const sy_gpt2_merges[][2] = {
    {"t", "h"}, {"h", "e"}, {"th", "e"}, {" ", "t"}, {" t", "he"}, {"i", "n"}, {"a", "n"}, {" ", "a"},
    {"O", "n"}, {"On", "c"}, {"Onc", "e"}, {" ", "u"}, {" u", "p"}, {"o", "n"}, {" up", "on"}, {" ", "Once"},
    {"\xc3", "\xa9"}, {"\xe6", "\x97"}, {"\xe6\x97", "\xa5"}, {"L", "i"}, {"l", "y"}, {"Li", "ly"}, {"'", "s"},
    {" ", "the"}, {"1", "2"}, {"12", "3"},
};
#define SY_GPT2_N_MERGES ((int)(sizeof sy_gpt2_merges / sizeof sy_gpt2_merges[0]))
#define SY_GPT2_VOCAB (256 + SY_GPT2_N_MERGES + 1)

/* The id of a piece among the bytes and the merges so far (-1 if absent). */
static inline int sy_gpt2_id(const char *piece, int n_merges) {
    if (strlen(piece) == 1) return (unsigned char)piece[0];
    for (int i = 0; i < n_merges; i++) {
        char both[32];
        snprintf(both, sizeof both, "%s%s", sy_gpt2_merges[i][0], sy_gpt2_merges[i][1]);
        if (!strcmp(both, piece)) return 256 + i;
    }
    return -1;
}

static inline void sy_write_gpt2_tokenizer(sy_buf *b) {
    sy_i32(b, SY_GPT2_VOCAB);
    sy_i32(b, SY_GPT2_N_MERGES);
    for (int i = 0; i < 256; i++) {
        unsigned char byte = (unsigned char)i;
        sy_i32(b, 1);
        sy_put(b, &byte, 1);
    }
    for (int i = 0; i < SY_GPT2_N_MERGES; i++) {
        size_t l = strlen(sy_gpt2_merges[i][0]), r = strlen(sy_gpt2_merges[i][1]);
        sy_i32(b, (int32_t)(l + r));
        sy_put(b, sy_gpt2_merges[i][0], l);
        sy_put(b, sy_gpt2_merges[i][1], r);
    }
    sy_i32(b, 13);
    sy_put(b, "<|endoftext|>", 13);
    for (int i = 0; i < SY_GPT2_N_MERGES; i++) {
        int left = sy_gpt2_id(sy_gpt2_merges[i][0], i), right = sy_gpt2_id(sy_gpt2_merges[i][1], i);
        if (left < 0 || right < 0) abort(); /* a merge of pieces not made yet: fix the table */
        sy_i32(b, left), sy_i32(b, right), sy_i32(b, 256 + i);
    }
}

/* ---- model files ---- */
enum { SY_LEGACY, SY_V1, SY_V2, SY_TSMF };

typedef struct {
    int format;                       /* SY_* */
    int dim, hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size, seq_len;
    int shared;                       /* classifier = token embedding */
    int weight_type, group_size;      /* TSMF: 0 f32, 1 Q8_0, 2 BF16; SY_V2 is always Q8_0 */
    int neo;                          /* TSMF: GPT-Neo (LayerNorm, GELU, learned positions, biases, local windows) */
    const unsigned char *tok;         /* TSMF: embedded SentencePiece tokenizer, or NULL */
    size_t tok_size;
    uint32_t seed;
    int tok_gpt2;                     /* TSMF: tok is a GPT-2 section (kind 2), BOS = EOS = the last id */
} sy_model;

static inline void sy_floats(sy_buf *b, size_t n, float base, uint32_t *rng) {
    for (size_t i = 0; i < n; i++) sy_f32(b, base + sy_rand(rng));
}

/* A matrix (rows, cols) of the given type: f32, BF16, or Q8_0 values then one scale per
 * group of each row (TSMF aligns the scales to 64; llama2.c v2 packs them). */
static inline void sy_matrix(sy_buf *b, int type, size_t rows, size_t cols, int gs, size_t align, uint32_t *rng) {
    size_t n = rows * cols;
    if (align > 1) sy_pad(b, align);
    if (type == 0) sy_floats(b, n, 0.0f, rng);
    else if (type == 2)
        for (size_t i = 0; i < n; i++) {
            float f = sy_rand(rng);
            uint32_t v;
            memcpy(&v, &f, 4);
            unsigned char h[2] = {(unsigned char)(v >> 16), (unsigned char)(v >> 24)};
            sy_put(b, h, 2);
        }
    else {
        for (size_t i = 0; i < n; i++) {
            signed char q = (signed char)(sy_rand(rng) * 254.0f);
            sy_put(b, &q, 1);
        }
        if (align > 1) sy_pad(b, align);
        for (size_t i = 0; i < rows * ((cols + (size_t)gs - 1) / (size_t)gs); i++) sy_f32(b, 0.004f + 0.001f * sy_rand(rng));
    }
}

static inline void sy_vec(sy_buf *b, size_t n, float base, size_t align, uint32_t *rng) {
    if (align > 1) sy_pad(b, align);
    sy_floats(b, n, base, rng);
}

/* llama2.c files: legacy (7 ints), v1 / v2 (256-byte "ak42" header), tensors by kind. */
static inline void sy_write_llama2c(sy_buf *b, const sy_model *m) {
    uint32_t rng = m->seed ? m->seed : 1;
    size_t L = (size_t)m->n_layers, dim = (size_t)m->dim, hid = (size_t)m->hidden_dim, V = (size_t)m->vocab_size;
    size_t hd = dim / (size_t)m->n_heads, kv = (size_t)m->n_kv_heads * hd;
    int type = m->format == SY_V2 ? 1 : 0, gs = m->group_size;
    int32_t params[7] = {m->dim, m->hidden_dim, m->n_layers, m->n_heads, m->n_kv_heads,
                         m->format == SY_LEGACY && !m->shared ? -m->vocab_size : m->vocab_size, m->seq_len};
    if (m->format != SY_LEGACY) {
        sy_u32(b, 0x616b3432u);
        sy_i32(b, m->format == SY_V1 ? 1 : 2);
    }
    for (int i = 0; i < 7; i++) sy_i32(b, params[i]);
    if (m->format != SY_LEGACY) {
        unsigned char shared = (unsigned char)(m->shared != 0);
        sy_put(b, &shared, 1);
        if (m->format == SY_V2) sy_i32(b, gs);
        while (b->n < 256) sy_put(b, "", 1);
        sy_floats(b, L * dim, 1.0f, &rng); /* attention norms */
        sy_floats(b, L * dim, 1.0f, &rng); /* ffn norms */
        sy_floats(b, dim, 1.0f, &rng);     /* final norm */
    }
    sy_matrix(b, type, V, dim, gs, 1, &rng);
    if (m->format == SY_LEGACY) sy_floats(b, L * dim, 1.0f, &rng);
    size_t shapes[7][2] = {{dim, dim}, {kv, dim}, {kv, dim}, {dim, dim}, {hid, dim}, {dim, hid}, {hid, dim}};
    for (int k = 0; k < 7; k++) {
        if (m->format == SY_LEGACY && k == 4) sy_floats(b, L * dim, 1.0f, &rng);
        for (size_t l = 0; l < L; l++) sy_matrix(b, type, shapes[k][0], shapes[k][1], gs, 1, &rng);
    }
    if (m->format == SY_LEGACY) {
        sy_floats(b, dim, 1.0f, &rng);
        sy_floats(b, (size_t)m->seq_len * hd, 0.0f, &rng); /* the unused RoPE tables */
    }
    if (!m->shared) sy_matrix(b, type, V, dim, gs, 1, &rng);
}

/* ---- weights from the caller (sy_write_tsmf_from) ----
 * Q8_0 as format.md: each row cut into groups of gs (the last one shorter), s = max|w| / 127,
 * q = round(w / s). q (rows, cols), s (rows, ceil(cols / gs)). */
static inline void sy_q8_quantize(const float *w, int rows, int cols, int gs, int8_t *q, float *s) {
    int groups = (cols + gs - 1) / gs;
    for (int i = 0; i < rows; i++)
        for (int g = 0; g < groups; g++) {
            int lo = g * gs, hi = lo + gs < cols ? lo + gs : cols;
            float m = 0.0f;
            for (int j = lo; j < hi; j++) m = fmaxf(m, fabsf(w[(size_t)i * cols + j]));
            float scale = m / 127.0f;
            s[(size_t)i * groups + g] = scale;
            for (int j = lo; j < hi; j++)
                q[(size_t)i * cols + j] = scale > 0.0f ? (int8_t)roundf(w[(size_t)i * cols + j] / scale) : 0;
        }
}
static inline uint16_t sy_f32_to_bf16(float f) { /* round to nearest even */
    uint32_t u;
    memcpy(&u, &f, 4);
    return (uint16_t)((u + 0x7FFF + ((u >> 16) & 1)) >> 16);
}

/* Fills out (rows x cols floats) with the values of tensor `name` (run.c's names: "wq",
 * "attn_norm", ...; vectors have rows = 1) of `layer` (-1 outside the layers). */
typedef void (*sy_values_fn)(void *ctx, const char *name, int layer, size_t rows, size_t cols, float *out);

/* Header fields a caller sets itself (sy_write_tsmf_from); sy_write_tsmf derives them. */
typedef struct {
    int head_dim;
    unsigned flags;          /* TS_FLAG_* bits of format.md */
    const int *windows;      /* (n_layers) attention windows, 0 = global */
    float rope_theta, norm_eps;
    int bos_id, eos_id;      /* -1: none */
} sy_header;

/* Writes one tensor: from the caller's values if there are any (matrices then quantized or
 * rounded to the file's type), else pseudo-random (vectors around `base`). */
typedef struct { sy_values_fn values; void *ctx; uint32_t *rng; int type, gs; } sy_source;
static inline void sy_tensor(sy_buf *b, const sy_source *src, const char *name, int layer, int matrix, size_t rows,
                             size_t cols, float base) {
    if (!src->values) {
        if (matrix) sy_matrix(b, src->type, rows, cols, src->gs, 64, src->rng);
        else sy_vec(b, rows * cols, base, 64, src->rng);
        return;
    }
    size_t n = rows * cols;
    float *w = (float *)malloc(n * sizeof(float));
    if (!w) abort(); /* test tooling: no way to go on */
    src->values(src->ctx, name, layer, rows, cols, w);
    sy_pad(b, 64);
    if (!matrix || src->type == 0)
        for (size_t i = 0; i < n; i++) sy_f32(b, w[i]);
    else if (src->type == 2)
        for (size_t i = 0; i < n; i++) {
            uint16_t h = sy_f32_to_bf16(w[i]);
            unsigned char t[2] = {(unsigned char)h, (unsigned char)(h >> 8)};
            sy_put(b, t, 2);
        }
    else {
        size_t ns = rows * ((cols + (size_t)src->gs - 1) / (size_t)src->gs);
        int8_t *q = (int8_t *)malloc(n);
        float *s = (float *)malloc(ns * sizeof(float));
        if (!q || !s) abort();
        sy_q8_quantize(w, (int)rows, (int)cols, src->gs, q, s);
        sy_put(b, q, n);
        sy_pad(b, 64);
        for (size_t i = 0; i < ns; i++) sy_f32(b, s[i]);
        free(q), free(s);
    }
    free(w);
}

/* TSMF (docs/format.md): 256-byte header, layer windows, 64-aligned tensors in the
 * loader's order, tokenizer. The one writer of TSMF files in C: the fuzz targets and
 * hostile-input tests (random weights), test_all.c (a reference model's weights) and
 * bench/gen.c (random weights at the published shapes) all write through it.
 * h = NULL derives the header: tied if m->shared; GPT-Neo with biases on q/k/v, the output
 * and the MLP, odd layers local (window (seq_len + 1) / 2); Llama with scaled attention. */
static inline void sy_write_tsmf_from(sy_buf *b, const sy_model *m, const sy_header *h, sy_values_fn values, void *ctx) {
    uint32_t rng = m->seed ? m->seed : 1;
    int t = m->weight_type, gs = t == 1 ? m->group_size : 0, neo = m->neo;
    size_t L = (size_t)m->n_layers, dim = (size_t)m->dim, hid = (size_t)m->hidden_dim, V = (size_t)m->vocab_size;
    size_t hd = h && h->head_dim ? (size_t)h->head_dim : dim / (size_t)m->n_heads;
    size_t q = (size_t)m->n_heads * hd, kv = (size_t)m->n_kv_heads * hd;
    unsigned flags = h ? h->flags : (m->shared ? 1u : 0u) | (neo ? 2u | 4u | 8u : 16u);
    int bos = h ? h->bos_id : m->tok_gpt2 ? m->vocab_size - 1 : m->vocab_size > 2 ? 1 : -1;
    int eos = h ? h->eos_id : m->tok_gpt2 ? m->vocab_size - 1 : m->vocab_size > 2 ? 2 : -1;
    sy_source src = {values, ctx, &rng, t, gs};
    size_t start = b->n;
    sy_put(b, "TSMF", 4);
    int32_t head[] = {1, 256, neo ? 2 : 1, m->dim, m->hidden_dim, m->n_layers, m->n_heads, m->n_kv_heads, (int32_t)hd,
                      m->vocab_size, m->seq_len, neo ? 2 : 1, neo ? 2 : 1, neo ? 2 : 1, (int32_t)flags, t, gs};
    for (size_t i = 0; i < sizeof head / sizeof head[0]; i++) sy_i32(b, head[i]);
    sy_f32(b, h ? h->rope_theta : 10000.0f);
    sy_f32(b, h ? h->norm_eps : 1e-5f);
    sy_i32(b, m->tok ? (m->tok_gpt2 ? 2 : 1) : 0);
    sy_i32(b, bos);
    sy_i32(b, eos);
    sy_i32(b, 0);
    size_t offsets_at = b->n;
    for (int i = 0; i < 4; i++) sy_u64(b, 0); /* patched below */
    while (b->n - start < 256) sy_put(b, "", 1);
    for (size_t l = 0; l < L; l++) sy_i32(b, h ? h->windows[l] : neo && l % 2 ? (m->seq_len + 1) / 2 : 0);
    sy_pad(b, 64);
    size_t w0 = b->n;
    sy_tensor(b, &src, "tok_embedding", -1, 1, V, dim, 0.0f);
    if (neo) sy_tensor(b, &src, "pos_embedding", -1, 0, (size_t)m->seq_len, dim, 0.0f);
    for (int l = 0; l < (int)L; l++) {
        sy_tensor(b, &src, "attn_norm", l, 0, 1, dim, 1.0f);
        if (neo) sy_tensor(b, &src, "attn_norm_bias", l, 0, 1, dim, 0.0f);
        sy_tensor(b, &src, "wq", l, 1, q, dim, 0.0f);
        sy_tensor(b, &src, "wk", l, 1, kv, dim, 0.0f);
        sy_tensor(b, &src, "wv", l, 1, kv, dim, 0.0f);
        if (flags & 2u) {
            sy_tensor(b, &src, "bq", l, 0, 1, q, 0.0f);
            sy_tensor(b, &src, "bk", l, 0, 1, kv, 0.0f);
            sy_tensor(b, &src, "bv", l, 0, 1, kv, 0.0f);
        }
        sy_tensor(b, &src, "wo", l, 1, dim, q, 0.0f);
        if (flags & 4u) sy_tensor(b, &src, "bo", l, 0, 1, dim, 0.0f);
        sy_tensor(b, &src, "ffn_norm", l, 0, 1, dim, 1.0f);
        if (neo) sy_tensor(b, &src, "ffn_norm_bias", l, 0, 1, dim, 0.0f);
        sy_tensor(b, &src, "w1", l, 1, hid, dim, 0.0f);
        if (flags & 8u) sy_tensor(b, &src, "b1", l, 0, 1, hid, 0.0f);
        if (!neo) sy_tensor(b, &src, "w3", l, 1, hid, dim, 0.0f);
        sy_tensor(b, &src, "w2", l, 1, dim, hid, 0.0f);
        if (flags & 8u) sy_tensor(b, &src, "b2", l, 0, 1, dim, 0.0f);
    }
    sy_tensor(b, &src, "final_norm", -1, 0, 1, dim, 1.0f);
    if (neo) sy_tensor(b, &src, "final_norm_bias", -1, 0, 1, dim, 0.0f);
    if (!(flags & 1u)) sy_tensor(b, &src, "classifier", -1, 1, V, dim, 0.0f);
    size_t w1 = b->n, t0 = 0;
    if (m->tok) {
        sy_pad(b, 64);
        t0 = b->n;
        sy_put(b, m->tok, m->tok_size);
    }
    sy_patch_u64(b, offsets_at, w0 - start);
    sy_patch_u64(b, offsets_at + 8, w1 - w0);
    sy_patch_u64(b, offsets_at + 16, m->tok ? t0 - start : 0);
    sy_patch_u64(b, offsets_at + 24, m->tok ? m->tok_size : 0);
}
static inline void sy_write_tsmf(sy_buf *b, const sy_model *m) { sy_write_tsmf_from(b, m, NULL, NULL, NULL); }

static inline void sy_write_model(sy_buf *b, const sy_model *m) {
    if (m->format == SY_TSMF) sy_write_tsmf(b, m);
    else sy_write_llama2c(b, m);
}

/* A tiny legacy model of the given vocabulary: enough to carry a tokenizer in tests. */
static inline void sy_write_carrier(sy_buf *b, int vocab_size) {
    sy_model m = {SY_LEGACY, 2, 2, 1, 1, 1, vocab_size, 4, 1, 0, 0, 0, NULL, 0, 7, 0};
    sy_write_model(b, &m);
}

#endif /* SYNTH_H */
