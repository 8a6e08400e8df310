/* run.c -- TinyStories language models in one file of C.
 *
 * Build the tool:     cc -O3 -march=native -ffp-contract=off -fopenmp -o run run.c -lm
 *                     (what `make` does: SIMD kernels for this CPU, threads; any C99
 *                     compiler builds it without the flags: plain loops, one thread)
 * Tell a story:       ./run stories15M.bin -z tokenizer.bin -i "Once upon a time"
 * Use as a library:   #define RUN_NO_MAIN
 *                     #include "run.c"                   (see "Library API" below)
 *
 * Contents, in reading order:
 *   0. Library API        the public declarations (prefix ts_), error handling
 *   1. Model file         llama2.c legacy / v1 / v2 files and our TSMF format, memory-mapped
 *   2. Tokenizer          SentencePiece BPE (Llama 2) and GPT-2 byte-level BPE
 *   3. Transformer        the forward pass: Llama (RMSNorm, RoPE, GQA, SwiGLU) and
 *                         GPT-Neo (LayerNorm, learned positions, local attention, GELU)
 *   4. Sampler            greedy, temperature, top-p; llama2.c's random number generator
 *   5. Generation         generate and chat loops, perplexity, logits
 *   6. Library functions  the API's implementation
 *   7. Command line       ./run MODEL [options]
 *
 * It follows llama2.c's run.c (Karpathy) closely enough that, for the same model,
 * tokenizer, prompt and sampling settings, it prints the same bytes. Everything lives in
 * structs passed explicitly: two models can run in one process, and several sessions can
 * share one read-only model from different threads.
 */
#ifndef RUN_C_INCLUDED
#define RUN_C_INCLUDED

#if !defined(_WIN32) && !defined(_POSIX_C_SOURCE)
#define _POSIX_C_SOURCE 200809L
#endif
#include <ctype.h>
#include <errno.h>
#include <float.h>
#include <limits.h>
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#if !defined(_WIN32) && !defined(RUN_NO_MMAP)
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#define TS_HAVE_MMAP 1
#endif
#ifdef _OPENMP
#include <omp.h>
#define TS_PRAGMA(x) _Pragma(#x)
#define TS_PARALLEL_FOR _Pragma("omp parallel for schedule(static)")
/* Threads only when the loop has enough work to pay for starting them (a few microseconds). */
#define TS_PARALLEL_FOR_IF(cond) TS_PRAGMA(omp parallel for schedule(static) if (cond))
#else
#define TS_PARALLEL_FOR
#define TS_PARALLEL_FOR_IF(cond)
#endif
/* Below this many multiply-adds a loop runs on one thread: starting threads costs more. */
#define TS_PARALLEL_MIN_WORK 65536.0
/* SIMD kernels: at most one path per instruction set, picked at compile time (-march=native
 * picks this machine's); without one, or with -DTS_PLAIN_KERNELS (the benchmark's
 * llama2.c-like baseline), the plain loops run everywhere. */
#if !defined(TS_PLAIN_KERNELS) && defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512VL__) && \
    defined(__AVX512VNNI__)
#define TS_AVX512 1
#include <immintrin.h>
#elif !defined(TS_PLAIN_KERNELS) && defined(__AVX2__) && defined(__FMA__)
#define TS_AVX2 1
#include <immintrin.h>
#endif
#if defined(__GNUC__)
#define TS_INLINE static inline __attribute__((always_inline))
#define TS_MAYBE_UNUSED __attribute__((unused))
#else
#define TS_INLINE static inline
#define TS_MAYBE_UNUSED
#endif

/* ==========================================================================
 * 0. Library API
 *
 * Every fallible function returns 0 on success or a negative TS_E* code, and writes a
 * one-line message into the caller's ts_error (which may be NULL). Nothing here prints,
 * exits or aborts. A ts_model is read-only once loaded; each ts_session holds the mutable
 * state of one conversation (KV cache, activations, sampler), so sessions on one model
 * may run on different threads at once.
 * ========================================================================== */

enum { TS_OK = 0, TS_E_IO = -1, TS_E_FORMAT = -2, TS_E_NOMEM = -3, TS_E_ARG = -4, TS_E_RANGE = -5 };
enum { TS_F32 = 0, TS_Q8_0 = 1, TS_BF16 = 2 };                  /* weight types */
enum { TS_TOK_NONE = 0, TS_TOK_SENTENCEPIECE = 1, TS_TOK_GPT2 = 2 }; /* tokenizer kinds */
enum { TS_ARCH_LLAMA = 1, TS_ARCH_GPTNEO = 2 };
enum { TS_NORM_RMS = 1, TS_NORM_LAYER = 2 };
enum { TS_ACT_SWIGLU = 1, TS_ACT_GELU = 2 };
enum { TS_POS_ROPE = 1, TS_POS_LEARNED = 2 };
enum { TS_FLAG_TIED = 1, TS_FLAG_QKV_BIAS = 2, TS_FLAG_OUT_BIAS = 4, TS_FLAG_MLP_BIAS = 8, TS_FLAG_SCALE_ATTN = 16 };

typedef struct ts_error { int code; char msg[320]; } ts_error;

typedef struct ts_config {
    int arch;          /* TS_ARCH_* */
    int dim;           /* width of the residual stream */
    int hidden_dim;    /* MLP inner width */
    int n_layers, n_heads, n_kv_heads, head_dim;
    int vocab_size, seq_len;
    int norm_kind, act_kind, pos_kind;
    unsigned flags;    /* TS_FLAG_* */
    int weight_type;   /* TS_F32, TS_Q8_0, TS_BF16 for the matrices */
    int group_size;    /* Q8_0 group size */
    float rope_theta, norm_eps;
    int bos_id, eos_id;
} ts_config;

typedef struct ts_model ts_model;
typedef struct ts_session ts_session;

/* Called for each generated piece of text; return non-zero to stop generating. */
typedef int (*ts_piece_fn)(void *user, int token, const char *piece, size_t len);

typedef struct ts_generate_opts {
    float temperature;          /* 0 = greedy */
    float topp;                 /* nucleus threshold; <= 0 or >= 1 = sample the full distribution */
    unsigned long long seed;    /* random number generator state; must not be 0 */
    int steps;                  /* positions to run, prompt included; 0 or > seq_len = seq_len */
} ts_generate_opts;

typedef struct ts_generate_stats {
    int prompt_tokens, generated_tokens, positions;
    double prompt_seconds, generate_seconds;
} ts_generate_stats;

/* Loading. tokenizer_path (or tok_data) may be NULL to use the tokenizer embedded in the
 * model file. ts_model_load_memory uses the caller's buffers in place: they must stay valid
 * (and 64-byte aligned for best speed, 4-byte aligned at least) until ts_model_free. */
int  ts_model_load(ts_model **out, const char *path, const char *tokenizer_path, ts_error *err);
int  ts_model_load_memory(ts_model **out, const void *data, size_t size,
                          const void *tok_data, size_t tok_size, ts_error *err);
void ts_model_free(ts_model *m);
const ts_config *ts_model_config(const ts_model *m);
size_t ts_model_file_size(const ts_model *m);

/* Tokenizer. ts_encode writes at most max_ids ids and sets *n_ids to the full count (if it
 * exceeds max_ids, call again with more room); add_bos puts the model's BOS first. */
int  ts_encode(const ts_model *m, const char *text, size_t len, int add_bos,
               int *ids, int max_ids, int *n_ids, ts_error *err);
/* The bytes to print for `token` following `prev` (llama2.c's rules: no space after BOS,
 * byte tokens as their byte, unprintable single bytes dropped). Never NULL. */
const char *ts_decode(const ts_model *m, int prev, int token, size_t *len);
/* The raw bytes a token stands for. NULL if the id is out of range. */
const char *ts_token_bytes(const ts_model *m, int token, size_t *len);

/* Sessions. max_positions bounds the KV cache (0 = the model's seq_len). */
int  ts_session_new(ts_session **out, const ts_model *m, int max_positions, ts_error *err);
void ts_session_free(ts_session *s);
int  ts_session_max_positions(const ts_session *s);
/* Runs n tokens at positions pos .. pos+n-1 (the cache must hold positions < pos). Returns
 * the logits of the last token (vocab_size floats, owned by the session, valid until the
 * next call), or NULL with err set. */
float *ts_forward(ts_session *s, const int *tokens, int n, int pos, ts_error *err);
/* As ts_forward, but writes the logits of every token to out (n rows of vocab_size). */
int  ts_forward_all(ts_session *s, const int *tokens, int n, int pos, float *out, ts_error *err);
/* Samples a token from logits (modified in place) with the session's generator. */
void ts_seed(ts_session *s, unsigned long long seed);
int  ts_sample(ts_session *s, float *logits, float temperature, float topp);
/* Encodes the prompt (BOS first for Llama tokenizers; GPT-2 prompts start bare, an empty
 * one from <|endoftext|>), runs it and samples until `steps` positions, BOS/EOS, or the
 * callback asks to stop. Pieces are the bytes llama2.c would print. */
int  ts_generate(ts_session *s, const char *prompt, const ts_generate_opts *opts,
                 ts_piece_fn on_piece, void *user, ts_generate_stats *stats, ts_error *err);
/* Perplexity of a text: BOS + encode(text) cut into chunks of seq_len tokens, each run
 * from position 0. Sets the token count and the mean negative log-likelihood (nats). */
int  ts_perplexity(ts_session *s, const char *text, size_t len, long *n_tokens,
                   double *mean_nll, void (*progress)(void *user, long done, long total),
                   void *user, ts_error *err);

#endif /* RUN_C_INCLUDED */

#ifndef RUN_C_IMPLEMENTATION_DONE
#define RUN_C_IMPLEMENTATION_DONE

/* Everything below is internal (static) except the ts_ functions declared above. */

static int ts_fail(ts_error *err, int code, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;
#include <stdarg.h>
static int ts_fail(ts_error *err, int code, const char *fmt, ...) {
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        va_end(ap);
        err->code = code;
    }
    return code;
}

/* Checked size arithmetic: every size read from a file goes through these. */
static int ts_mul(size_t a, size_t b, size_t *out) {
    if (a != 0 && b > SIZE_MAX / a) return 0;
    *out = a * b;
    return 1;
}
static int ts_add(size_t a, size_t b, size_t *out) {
    if (b > SIZE_MAX - a) return 0;
    *out = a + b;
    return 1;
}

static void *ts_aligned_alloc(size_t bytes) {
    /* 64-byte aligned, zeroed; freed with ts_aligned_free. */
    unsigned char *raw = (unsigned char *)calloc(1, bytes + 64 + sizeof(void *));
    if (!raw) return NULL;
    uintptr_t p = ((uintptr_t)(raw + sizeof(void *)) + 63) & ~(uintptr_t)63;
    ((void **)p)[-1] = raw;
    return (void *)p;
}
static void ts_aligned_free(void *p) {
    if (p) free(((void **)p)[-1]);
}

/* ==========================================================================
 * 1. Model file
 *
 * Three layouts are read, all into the same ts_model of pointers into the mapped file:
 *  - llama2.c legacy: 7 int32 (dim, hidden_dim, n_layers, n_heads, n_kv_heads,
 *    vocab_size, seq_len; negative vocab_size = separate classifier), then float32
 *    tensors stacked by kind: embedding, attention norms, wq, wk, wv, wo, ffn norms,
 *    w1, w2, w3, final norm, two unused RoPE tables, classifier.
 *  - llama2.c versioned (magic "ak42"): a 256-byte header; version 1 is float32 with
 *    the norms first, version 2 is Q8_0 (int8 values + a float scale per group).
 *  - TSMF, ours: a 256-byte header that says everything needed to run the model
 *    (architecture, norm, activation, positions, biases, rope theta, epsilon, per-layer
 *    attention window, weight type, embedded tokenizer) and 64-byte aligned tensors.
 *    README.md documents it field by field.
 * Every size is checked against the file length before a pointer is formed.
 * ========================================================================== */

/* A weight matrix (rows, cols): out[i] = sum_j W[i][j] * x[j]. Q8_0 cuts each row into
 * groups of group_size values (the last one shorter when group_size does not divide cols),
 * each with its own scale: W[i][j] = data[i][j] * scale[i][j / group_size]. */
typedef struct {
    int type;            /* TS_F32, TS_Q8_0, TS_BF16 */
    int rows, cols;
    int group_size;      /* Q8_0 */
    const void *data;    /* (rows, cols) of float, int8_t or uint16_t */
    const float *scale;  /* Q8_0: (rows, ts_groups(cols, group_size)) */
} ts_matrix;

static int ts_groups(int cols, int group_size) { return (cols + group_size - 1) / group_size; }

typedef struct {
    const float *attn_norm, *attn_norm_bias;  /* (dim) */
    ts_matrix wq, wk, wv, wo;                  /* (q_dim, dim) (kv_dim, dim) x2, (dim, q_dim) */
    const float *bq, *bk, *bv, *bo;            /* optional biases */
    const float *ffn_norm, *ffn_norm_bias;     /* (dim) */
    ts_matrix w1, w2, w3;                      /* (hidden, dim), (dim, hidden), (hidden, dim) */
    const float *b1, *b2;                      /* optional MLP biases */
    int window;                                /* 0 = global attention, else local window */
} ts_layer;

/* Tokenizer state (section 2); declared here because the model owns it. */
typedef struct gpt2_tokenizer gpt2_tokenizer;
typedef struct {
    int kind;                   /* TS_TOK_* */
    int vocab_size;
    const char **piece;         /* (vocab_size) token bytes, not NUL-terminated */
    int *piece_len;             /* (vocab_size) */
    float *score;               /* (vocab_size) SentencePiece merge scores */
    short *byte_value;          /* (vocab_size) byte a "<0xXX>" token stands for, or -1 */
    int byte_token[256];        /* id of the token for a single byte, or -1 */
    int *hash;                  /* open addressing: piece bytes -> id, -1 = empty */
    unsigned char *pair_seen;   /* (65536 bits) byte pairs (a, b) that occur as "ab" in a piece */
    size_t hash_mask;
    int bos_id, eos_id, space_id;
    unsigned char byte_text[512]; /* byte b as a NUL-terminated string at 2*b */
    gpt2_tokenizer *gpt2;
    void *owned;                /* file contents when loaded from a separate file */
} ts_tokenizer;

struct ts_model {
    ts_config config;
    ts_matrix tok_embedding;    /* (vocab_size, dim) */
    const float *pos_embedding; /* (seq_len, dim) for learned positions */
    ts_layer *layers;           /* (n_layers) */
    const float *final_norm, *final_norm_bias;
    ts_matrix classifier;       /* (vocab_size, dim) */
    ts_tokenizer tokenizer;
    const unsigned char *file;  /* the model file's bytes */
    size_t file_size;
    int mapped;                 /* file is an mmap to release, else owned malloc or caller's */
    void *owned_file;
    char source[32];            /* "llama2.c legacy", "TSMF" ... */
};

/* A cursor over the file: hands out tensors, refusing anything past the end. */
typedef struct {
    const unsigned char *base;
    size_t size, pos;
    ts_error *err;
    int failed;
} ts_reader;

static const void *ts_take(ts_reader *r, size_t count, size_t elem_size, size_t align, const char *what) {
    if (r->failed) return NULL;
    size_t bytes, start = r->pos, end;
    if (align > 1) start = (start + align - 1) / align * align;
    if (start < r->pos || !ts_mul(count, elem_size, &bytes) || !ts_add(start, bytes, &end) || end > r->size) {
        ts_fail(r->err, TS_E_FORMAT, "model file is truncated: tensor %s needs %zu x %zu bytes at offset %zu, file has %zu",
                what, count, elem_size, start, r->size);
        r->failed = 1;
        return NULL;
    }
    const unsigned char *p = r->base + start;
    if (elem_size >= 2 && ((uintptr_t)p % (elem_size > 4 ? 4 : elem_size)) != 0) {
        ts_fail(r->err, TS_E_FORMAT, "tensor %s at offset %zu is misaligned", what, start);
        r->failed = 1;
        return NULL;
    }
    r->pos = end;
    return p;
}

static const float *ts_take_f32(ts_reader *r, size_t count, size_t align, const char *what) {
    return (const float *)ts_take(r, count, sizeof(float), align, what);
}

/* A matrix of the given type: values, then (Q8_0) its group scales. */
static ts_matrix ts_take_matrix(ts_reader *r, int type, int rows, int cols, int group_size, size_t align, const char *what) {
    ts_matrix m = {type, rows, cols, group_size, NULL, NULL};
    size_t n = (size_t)rows * (size_t)cols;
    if (type == TS_F32) m.data = ts_take(r, n, 4, align, what);
    else if (type == TS_BF16) m.data = ts_take(r, n, 2, align, what);
    else {
        m.data = ts_take(r, n, 1, align, what);
        m.scale = ts_take_f32(r, (size_t)rows * (size_t)ts_groups(cols, group_size), align, what);
    }
    return m;
}

static int32_t ts_read_i32(const unsigned char *p) {
    uint32_t v = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
    int32_t out;
    memcpy(&out, &v, 4);
    return out;
}
static uint64_t ts_read_u64(const unsigned char *p) {
    return (uint64_t)(uint32_t)ts_read_i32(p) | (uint64_t)(uint32_t)ts_read_i32(p + 4) << 32;
}
static float ts_read_f32(const unsigned char *p) {
    int32_t i = ts_read_i32(p);
    float f;
    memcpy(&f, &i, 4);
    return f;
}

/* Header sanity: sizes positive, bounded, and consistent with each other. The bounds are
 * far above any model this engine targets and keep every product well inside size_t. */
static int ts_check_config(const ts_config *c, ts_error *err) {
#define TS_CHECK_RANGE(field, lo, hi)                                                            \
    if (c->field < (lo) || c->field > (hi))                                                      \
        return ts_fail(err, TS_E_FORMAT, "bad model header: " #field " = %d (must be %d..%d)", \
                       (int)c->field, (int)(lo), (int)(hi));
    TS_CHECK_RANGE(dim, 1, 1 << 16)
    TS_CHECK_RANGE(hidden_dim, 1, 1 << 18)
    TS_CHECK_RANGE(n_layers, 1, 1024)
    TS_CHECK_RANGE(n_heads, 1, 1024)
    TS_CHECK_RANGE(n_kv_heads, 1, c->n_heads)
    TS_CHECK_RANGE(head_dim, 1, 1 << 12)
    TS_CHECK_RANGE(vocab_size, 1, 1 << 22)
    TS_CHECK_RANGE(seq_len, 1, 1 << 20)
    TS_CHECK_RANGE(norm_kind, 1, 2)
    TS_CHECK_RANGE(act_kind, 1, 2)
    TS_CHECK_RANGE(pos_kind, 1, 2)
    TS_CHECK_RANGE(weight_type, 0, 2)
#undef TS_CHECK_RANGE
    if (c->n_heads % c->n_kv_heads != 0)
        return ts_fail(err, TS_E_FORMAT, "bad model header: n_kv_heads = %d does not divide n_heads = %d", c->n_kv_heads, c->n_heads);
    if ((size_t)c->n_heads * (size_t)c->head_dim > (1u << 18))
        return ts_fail(err, TS_E_FORMAT, "bad model header: n_heads x head_dim = %d x %d is too large", c->n_heads, c->head_dim);
    if (c->pos_kind == TS_POS_ROPE && c->head_dim % 2 != 0)
        return ts_fail(err, TS_E_FORMAT, "bad model header: head_dim = %d must be even for rotary positions", c->head_dim);
    if (c->weight_type == TS_Q8_0 && (c->group_size < 1 || c->group_size > 4096))
        return ts_fail(err, TS_E_FORMAT, "bad model header: Q8_0 group_size = %d (must be 1..4096)", c->group_size);
    if (!(c->norm_eps >= 0.0f && c->norm_eps < 1.0f))
        return ts_fail(err, TS_E_FORMAT, "bad model header: norm_eps = %g", (double)c->norm_eps);
    if (c->pos_kind == TS_POS_ROPE && !(c->rope_theta > 0.0f && c->rope_theta < 1e12f))
        return ts_fail(err, TS_E_FORMAT, "bad model header: rope_theta = %g", (double)c->rope_theta);
    if (c->bos_id < -1 || c->bos_id >= c->vocab_size || c->eos_id < -1 || c->eos_id >= c->vocab_size)
        return ts_fail(err, TS_E_FORMAT, "bad model header: bos_id %d / eos_id %d outside the vocabulary of %d", c->bos_id,
                       c->eos_id, c->vocab_size);
    return TS_OK;
}

/* The llama2.c files: one configuration, tensors stacked by kind, no alignment. */
static void ts_llama2c_defaults(ts_config *c) {
    c->arch = TS_ARCH_LLAMA;
    c->norm_kind = TS_NORM_RMS;
    c->act_kind = TS_ACT_SWIGLU;
    c->pos_kind = TS_POS_ROPE;
    c->rope_theta = 10000.0f;
    c->norm_eps = 1e-5f;
    c->bos_id = 1;
    c->eos_id = 2;
}

static int ts_read_llama2c_params(ts_config *c, const unsigned char *p, ts_error *err) {
    c->dim = ts_read_i32(p);
    c->hidden_dim = ts_read_i32(p + 4);
    c->n_layers = ts_read_i32(p + 8);
    c->n_heads = ts_read_i32(p + 12);
    c->n_kv_heads = ts_read_i32(p + 16);
    c->vocab_size = ts_read_i32(p + 20);
    c->seq_len = ts_read_i32(p + 24);
    if (c->n_heads <= 0 || c->dim <= 0 || c->dim % c->n_heads != 0)
        return ts_fail(err, TS_E_FORMAT, "bad model header: n_heads = %d does not divide dim = %d", c->n_heads, c->dim);
    c->head_dim = c->dim / c->n_heads;
    return TS_OK;
}

/* Lays out the stacked tensors of a llama2.c file. `version` is 0 (legacy), 1 or 2. */
static int ts_load_llama2c(ts_model *m, ts_reader *r, int version, int shared) {
    ts_config *c = &m->config;
    int L = c->n_layers, dim = c->dim, hid = c->hidden_dim, q_dim = c->n_heads * c->head_dim;
    int kv_dim = c->n_kv_heads * c->head_dim, type = version == 2 ? TS_Q8_0 : TS_F32, gs = c->group_size;
    const float *attn_norm = NULL, *ffn_norm = NULL;
    if (version >= 1) { /* v1/v2: all norms first */
        attn_norm = ts_take_f32(r, (size_t)L * dim, 1, "attention norms");
        ffn_norm = ts_take_f32(r, (size_t)L * dim, 1, "ffn norms");
        m->final_norm = ts_take_f32(r, (size_t)dim, 1, "final norm");
    }
    m->tok_embedding = ts_take_matrix(r, type, c->vocab_size, dim, gs, 1, "token embedding");
    if (version == 0) attn_norm = ts_take_f32(r, (size_t)L * dim, 1, "attention norms");
    /* wq/wk/wv/wo/w1/w2/w3 for every layer, kind by kind. f32 files hold each kind as
     * one block; Q8_0 files hold each layer's tensor as values then scales. */
    struct { size_t offset; int rows, cols; const char *name; } kinds[7] = {
        {offsetof(ts_layer, wq), q_dim, dim, "wq"},  {offsetof(ts_layer, wk), kv_dim, dim, "wk"},
        {offsetof(ts_layer, wv), kv_dim, dim, "wv"}, {offsetof(ts_layer, wo), dim, q_dim, "wo"},
        {offsetof(ts_layer, w1), hid, dim, "w1"},    {offsetof(ts_layer, w2), dim, hid, "w2"},
        {offsetof(ts_layer, w3), hid, dim, "w3"}};
    for (int k = 0; k < 7; k++) {
        if (version == 0 && k == 4) ffn_norm = ts_take_f32(r, (size_t)L * dim, 1, "ffn norms");
        for (int l = 0; l < L; l++)
            *(ts_matrix *)((char *)&m->layers[l] + kinds[k].offset) =
                ts_take_matrix(r, type, kinds[k].rows, kinds[k].cols, gs, 1, kinds[k].name);
    }
    if (version == 0) {
        m->final_norm = ts_take_f32(r, (size_t)dim, 1, "final norm");
        ts_take_f32(r, (size_t)c->seq_len * c->head_dim, 1, "rope tables"); /* unused freq_cis */
    }
    m->classifier = shared ? m->tok_embedding : ts_take_matrix(r, type, c->vocab_size, dim, gs, 1, "classifier");
    if (r->failed) return r->err ? r->err->code : TS_E_FORMAT;
    for (int l = 0; l < L; l++) {
        m->layers[l].attn_norm = attn_norm + (size_t)l * dim;
        m->layers[l].ffn_norm = ffn_norm + (size_t)l * dim;
    }
    if (r->pos != r->size)
        return ts_fail(r->err, TS_E_FORMAT, "model file has %zu bytes, but its header describes %zu (wrong header, or not a model file?)",
                       r->size, r->pos);
    return TS_OK;
}

/* TSMF: our header, then per-layer tensors, each 64-byte aligned. */
#define TS_TSMF_HEADER 256
static int ts_load_tsmf(ts_model *m, ts_reader *r, size_t *tok_offset, size_t *tok_size, int *tok_kind) {
    ts_config *c = &m->config;
    const unsigned char *h = r->base;
    ts_error *err = r->err;
    if (r->size < TS_TSMF_HEADER) return ts_fail(err, TS_E_FORMAT, "TSMF file is truncated: %zu bytes, the header alone is 256", r->size);
    uint32_t version = (uint32_t)ts_read_i32(h + 4), header_size = (uint32_t)ts_read_i32(h + 8);
    if (version != 1) return ts_fail(err, TS_E_FORMAT, "TSMF version %u is not supported (this engine reads version 1)", version);
    if (header_size != TS_TSMF_HEADER) return ts_fail(err, TS_E_FORMAT, "bad TSMF header_size = %u (expected 256)", header_size);
    c->arch = ts_read_i32(h + 12);
    c->dim = ts_read_i32(h + 16);
    c->hidden_dim = ts_read_i32(h + 20);
    c->n_layers = ts_read_i32(h + 24);
    c->n_heads = ts_read_i32(h + 28);
    c->n_kv_heads = ts_read_i32(h + 32);
    c->head_dim = ts_read_i32(h + 36);
    c->vocab_size = ts_read_i32(h + 40);
    c->seq_len = ts_read_i32(h + 44);
    c->norm_kind = ts_read_i32(h + 48);
    c->act_kind = ts_read_i32(h + 52);
    c->pos_kind = ts_read_i32(h + 56);
    c->flags = (unsigned)ts_read_i32(h + 60);
    c->weight_type = ts_read_i32(h + 64);
    c->group_size = ts_read_i32(h + 68);
    c->rope_theta = ts_read_f32(h + 72);
    c->norm_eps = ts_read_f32(h + 76);
    *tok_kind = ts_read_i32(h + 80);
    c->bos_id = ts_read_i32(h + 84);
    c->eos_id = ts_read_i32(h + 88);
    uint64_t weights_offset = ts_read_u64(h + 96), weights_size = ts_read_u64(h + 104);
    uint64_t tokenizer_offset = ts_read_u64(h + 112), tokenizer_size = ts_read_u64(h + 120);
    if (c->arch != TS_ARCH_LLAMA && c->arch != TS_ARCH_GPTNEO)
        return ts_fail(err, TS_E_FORMAT, "bad TSMF header: unknown arch = %d", c->arch);
    if (c->flags & ~31u) return ts_fail(err, TS_E_FORMAT, "bad TSMF header: unknown flags 0x%x", c->flags);
    if (*tok_kind < TS_TOK_NONE || *tok_kind > TS_TOK_GPT2)
        return ts_fail(err, TS_E_FORMAT, "bad TSMF header: unknown tokenizer_kind = %d", *tok_kind);
    int rc = ts_check_config(c, err);
    if (rc) return rc;
    /* per-layer attention windows follow the header */
    r->pos = TS_TSMF_HEADER;
    const unsigned char *windows = (const unsigned char *)ts_take(r, (size_t)c->n_layers, 4, 1, "layer_window");
    if (!windows) return TS_E_FORMAT;
    if (weights_offset % 64 || weights_offset < r->pos || weights_offset > r->size || weights_size > r->size - weights_offset)
        return ts_fail(err, TS_E_FORMAT, "bad TSMF header: weights at offset %llu size %llu do not fit the file of %zu bytes",
                       (unsigned long long)weights_offset, (unsigned long long)weights_size, r->size);
    if (*tok_kind != TS_TOK_NONE &&
        (tokenizer_offset % 64 || tokenizer_offset < weights_offset + weights_size || tokenizer_offset > r->size ||
         tokenizer_size > r->size - tokenizer_offset))
        return ts_fail(err, TS_E_FORMAT, "bad TSMF header: tokenizer at offset %llu size %llu does not fit the file of %zu bytes",
                       (unsigned long long)tokenizer_offset, (unsigned long long)tokenizer_size, r->size);
    *tok_offset = (size_t)tokenizer_offset;
    *tok_size = (size_t)tokenizer_size;

    /* tensors: the weights region only */
    ts_reader w = {r->base, (size_t)(weights_offset + weights_size), (size_t)weights_offset, err, 0};
    int type = c->weight_type, gs = c->group_size, dim = c->dim, hid = c->hidden_dim;
    int q_dim = c->n_heads * c->head_dim, kv_dim = c->n_kv_heads * c->head_dim;
    int layer_norm = c->norm_kind == TS_NORM_LAYER;
    m->tok_embedding = ts_take_matrix(&w, type, c->vocab_size, dim, gs, 64, "tok_embedding");
    if (c->pos_kind == TS_POS_LEARNED) m->pos_embedding = ts_take_f32(&w, (size_t)c->seq_len * dim, 64, "pos_embedding");
    for (int l = 0; l < c->n_layers; l++) {
        ts_layer *ly = &m->layers[l];
        ly->window = ts_read_i32(windows + 4 * (size_t)l);
        if (ly->window < 0) return ts_fail(err, TS_E_FORMAT, "bad TSMF header: layer_window[%d] = %d", l, ly->window);
        ly->attn_norm = ts_take_f32(&w, (size_t)dim, 64, "attn_norm");
        if (layer_norm) ly->attn_norm_bias = ts_take_f32(&w, (size_t)dim, 64, "attn_norm_bias");
        ly->wq = ts_take_matrix(&w, type, q_dim, dim, gs, 64, "wq");
        ly->wk = ts_take_matrix(&w, type, kv_dim, dim, gs, 64, "wk");
        ly->wv = ts_take_matrix(&w, type, kv_dim, dim, gs, 64, "wv");
        if (c->flags & TS_FLAG_QKV_BIAS) {
            ly->bq = ts_take_f32(&w, (size_t)q_dim, 64, "bq");
            ly->bk = ts_take_f32(&w, (size_t)kv_dim, 64, "bk");
            ly->bv = ts_take_f32(&w, (size_t)kv_dim, 64, "bv");
        }
        ly->wo = ts_take_matrix(&w, type, dim, q_dim, gs, 64, "wo");
        if (c->flags & TS_FLAG_OUT_BIAS) ly->bo = ts_take_f32(&w, (size_t)dim, 64, "bo");
        ly->ffn_norm = ts_take_f32(&w, (size_t)dim, 64, "ffn_norm");
        if (layer_norm) ly->ffn_norm_bias = ts_take_f32(&w, (size_t)dim, 64, "ffn_norm_bias");
        ly->w1 = ts_take_matrix(&w, type, hid, dim, gs, 64, "w1");
        if (c->flags & TS_FLAG_MLP_BIAS) ly->b1 = ts_take_f32(&w, (size_t)hid, 64, "b1");
        if (c->act_kind == TS_ACT_SWIGLU) ly->w3 = ts_take_matrix(&w, type, hid, dim, gs, 64, "w3");
        ly->w2 = ts_take_matrix(&w, type, dim, hid, gs, 64, "w2");
        if (c->flags & TS_FLAG_MLP_BIAS) ly->b2 = ts_take_f32(&w, (size_t)dim, 64, "b2");
    }
    m->final_norm = ts_take_f32(&w, (size_t)dim, 64, "final_norm");
    if (layer_norm) m->final_norm_bias = ts_take_f32(&w, (size_t)dim, 64, "final_norm_bias");
    m->classifier = (c->flags & TS_FLAG_TIED) ? m->tok_embedding
                                              : ts_take_matrix(&w, type, c->vocab_size, dim, gs, 64, "classifier");
    if (w.failed) return err ? err->code : TS_E_FORMAT;
    if (w.pos != w.size)
        return ts_fail(err, TS_E_FORMAT, "bad TSMF header: weights_size = %llu but the tensors take %zu bytes",
                       (unsigned long long)weights_size, w.pos - (size_t)weights_offset);
    return TS_OK;
}

static int ts_tokenizer_init(ts_tokenizer *t, int kind, const unsigned char *data, size_t size, const ts_config *c, ts_error *err);
static void ts_tokenizer_free(ts_tokenizer *t);

/* Recognises the layout from the first bytes and fills in the model. */
static int ts_model_parse(ts_model *m, const void *tok_data, size_t tok_size, ts_error *err) {
    ts_config *c = &m->config;
    ts_reader r = {m->file, m->file_size, 0, err, 0};
    size_t embedded_offset = 0, embedded_size = 0;
    int embedded_kind = TS_TOK_NONE, rc;
    memset(c, 0, sizeof *c);
    if (m->file_size < 28) return ts_fail(err, TS_E_FORMAT, "model file is too short (%zu bytes) to hold a header", m->file_size);
    if (((uintptr_t)m->file % 4) != 0) return ts_fail(err, TS_E_ARG, "model buffer must be at least 4-byte aligned");
    if (memcmp(m->file, "TSMF", 4) == 0) {
        strcpy(m->source, "TSMF");
        /* layers are needed before the tensors: read n_layers first, bounded */
        int32_t n_layers = m->file_size >= 28 ? ts_read_i32(m->file + 24) : 0;
        if (n_layers < 1 || n_layers > 1024) return ts_fail(err, TS_E_FORMAT, "bad model header: n_layers = %d (must be 1..1024)", n_layers);
        m->layers = (ts_layer *)calloc((size_t)n_layers, sizeof(ts_layer));
        if (!m->layers) return ts_fail(err, TS_E_NOMEM, "out of memory");
        rc = ts_load_tsmf(m, &r, &embedded_offset, &embedded_size, &embedded_kind);
        if (rc) return rc;
    } else {
        int version = 0, shared = 1;
        size_t header = 28;
        ts_llama2c_defaults(c);
        if ((uint32_t)ts_read_i32(m->file) == 0x616b3432u) { /* "ak42": llama2.c versioned file */
            if (m->file_size < 256) return ts_fail(err, TS_E_FORMAT, "llama2.c model file is truncated: %zu bytes, the header alone is 256", m->file_size);
            version = ts_read_i32(m->file + 4);
            if (version != 1 && version != 2)
                return ts_fail(err, TS_E_FORMAT, "llama2.c model version %d is not supported (1 = float32, 2 = Q8_0)", version);
            rc = ts_read_llama2c_params(c, m->file + 8, err);
            if (rc) return rc;
            shared = m->file[36];
            if (shared > 1) return ts_fail(err, TS_E_FORMAT, "bad model header: shared_classifier = %d", shared);
            if (version == 2) { /* llama2.c groups run over whole tensors: rows must hold whole groups */
                c->weight_type = TS_Q8_0;
                c->group_size = ts_read_i32(m->file + 37);
                if (c->group_size < 1 || c->dim % c->group_size || c->hidden_dim % c->group_size)
                    return ts_fail(err, TS_E_FORMAT, "bad model header: group_size = %d must divide dim %d and hidden_dim %d",
                                   c->group_size, c->dim, c->hidden_dim);
            }
            header = 256;
            snprintf(m->source, sizeof m->source, "llama2.c v%d", version);
        } else {
            rc = ts_read_llama2c_params(c, m->file, err);
            if (rc) return rc;
            shared = c->vocab_size > 0;
            if (c->vocab_size < 0 && c->vocab_size != INT_MIN) c->vocab_size = -c->vocab_size;
            strcpy(m->source, "llama2.c legacy");
        }
        if (shared) c->flags |= TS_FLAG_TIED;
        c->flags |= TS_FLAG_SCALE_ATTN;
        rc = ts_check_config(c, err);
        if (rc) return rc;
        m->layers = (ts_layer *)calloc((size_t)c->n_layers, sizeof(ts_layer));
        if (!m->layers) return ts_fail(err, TS_E_NOMEM, "out of memory");
        r.pos = header;
        rc = ts_load_llama2c(m, &r, version, shared);
        if (rc) return rc;
    }
    if (tok_data) return ts_tokenizer_init(&m->tokenizer, TS_TOK_SENTENCEPIECE, (const unsigned char *)tok_data, tok_size, c, err);
    if (embedded_kind != TS_TOK_NONE)
        return ts_tokenizer_init(&m->tokenizer, embedded_kind, m->file + embedded_offset, embedded_size, c, err);
    return TS_OK; /* no tokenizer: ids in, ids out (the logits mode needs nothing more) */
}

/* Reads a whole file: mmap where we can (read-only, shared between processes). */
static int ts_map_file(const char *path, const unsigned char **data, size_t *size, int *mapped, void **owned, ts_error *err) {
    *data = NULL, *size = 0, *mapped = 0, *owned = NULL;
    FILE *f = fopen(path, "rb");
    if (!f) return ts_fail(err, TS_E_IO, "cannot open %s: %s", path, strerror(errno));
    if (fseek(f, 0, SEEK_END) != 0) {
        fclose(f);
        return ts_fail(err, TS_E_IO, "cannot seek in %s (not a regular file?)", path);
    }
    long end = ftell(f);
    if (end < 0) {
        fclose(f);
        return ts_fail(err, TS_E_IO, "cannot size %s (not a regular file?)", path);
    }
    *size = (size_t)end;
    if (*size == 0) {
        fclose(f);
        return ts_fail(err, TS_E_FORMAT, "%s is empty", path);
    }
#ifdef TS_HAVE_MMAP
    void *p = mmap(NULL, *size, PROT_READ, MAP_PRIVATE, fileno(f), 0);
    fclose(f);
    if (p == MAP_FAILED) return ts_fail(err, TS_E_IO, "cannot map %s: %s", path, strerror(errno));
    *data = (const unsigned char *)p;
    *mapped = 1;
    return TS_OK;
#else
    unsigned char *buf = (unsigned char *)ts_aligned_alloc(*size);
    if (!buf) {
        fclose(f);
        return ts_fail(err, TS_E_NOMEM, "out of memory reading %s (%zu bytes)", path, *size);
    }
    rewind(f);
    size_t got = fread(buf, 1, *size, f);
    fclose(f);
    if (got != *size) {
        ts_aligned_free(buf);
        return ts_fail(err, TS_E_IO, "cannot read %s", path);
    }
    *data = buf;
    *owned = buf;
    return TS_OK;
#endif
}

static void ts_unmap_file(const unsigned char *data, size_t size, int mapped, void *owned) {
#ifdef TS_HAVE_MMAP
    if (mapped) munmap((void *)data, size);
#else
    (void)data, (void)size, (void)mapped;
#endif
    ts_aligned_free(owned);
}

/* ==========================================================================
 * 2. Tokenizer
 *
 * SentencePiece BPE as llama2.c stores it (tokenizer.bin: max_token_length, then per
 * token a float score, a length and the bytes, "▁" already turned into " "). Encoding
 * follows sentencepiece: a dummy-prefix space, one symbol per UTF-8 character (unknown
 * characters fall back to their bytes as <0xXX> tokens), then repeatedly merge the
 * adjacent pair whose concatenation is the highest-scoring token, leftmost on ties.
 * llama2.c rescans the whole text for every merge (quadratic); we keep the candidate
 * pairs in a heap, so a megabyte encodes in a fraction of a second, with the same result.
 *
 * GPT-2 byte-level BPE (the TinyStories paper's models) lives in its own sub-section.
 * ========================================================================== */

static uint64_t ts_hash_bytes(const char *a, size_t na, const char *b, size_t nb) {
    uint64_t h = 1469598103934665603ull; /* FNV-1a over a then b */
    for (size_t i = 0; i < na; i++) h = (h ^ (unsigned char)a[i]) * 1099511628211ull;
    for (size_t i = 0; i < nb; i++) h = (h ^ (unsigned char)b[i]) * 1099511628211ull;
    return h;
}

/* The id of the token whose bytes are a followed by b, or -1. */
static int ts_lookup2(const ts_tokenizer *t, const char *a, size_t na, const char *b, size_t nb) {
    size_t i = (size_t)ts_hash_bytes(a, na, b, nb) & t->hash_mask;
    for (;; i = (i + 1) & t->hash_mask) {
        int id = t->hash[i];
        if (id < 0) return -1;
        if ((size_t)t->piece_len[id] == na + nb && memcmp(t->piece[id], a, na) == 0 && memcmp(t->piece[id] + na, b, nb) == 0)
            return id;
    }
}

/* Builds the hash from pieces; the first of duplicate pieces wins. */
static int ts_build_hash(ts_tokenizer *t, ts_error *err) {
    size_t cap = 16;
    while (cap < (size_t)t->vocab_size * 2) cap *= 2;
    t->hash = (int *)malloc(cap * sizeof(int));
    if (!t->hash) return ts_fail(err, TS_E_NOMEM, "out of memory");
    memset(t->hash, 0xff, cap * sizeof(int));
    t->hash_mask = cap - 1;
    for (int id = 0; id < t->vocab_size; id++) {
        if (ts_lookup2(t, t->piece[id], (size_t)t->piece_len[id], "", 0) >= 0) continue;
        size_t i = (size_t)ts_hash_bytes(t->piece[id], (size_t)t->piece_len[id], "", 0) & t->hash_mask;
        while (t->hash[i] >= 0) i = (i + 1) & t->hash_mask;
        t->hash[i] = id;
    }
    return TS_OK;
}

static int ts_hexval(char ch) {
    if (ch >= '0' && ch <= '9') return ch - '0';
    if (ch >= 'A' && ch <= 'F') return ch - 'A' + 10;
    if (ch >= 'a' && ch <= 'f') return ch - 'a' + 10;
    return -1;
}

static int ts_sentencepiece_init(ts_tokenizer *t, const unsigned char *data, size_t size, ts_error *err) {
    int n = t->vocab_size;
    t->piece = (const char **)calloc((size_t)n, sizeof(char *));
    t->piece_len = (int *)calloc((size_t)n, sizeof(int));
    t->score = (float *)calloc((size_t)n, sizeof(float));
    t->byte_value = (short *)calloc((size_t)n, sizeof(short));
    if (!t->piece || !t->piece_len || !t->score || !t->byte_value) return ts_fail(err, TS_E_NOMEM, "out of memory");
    if (size < 4) return ts_fail(err, TS_E_FORMAT, "tokenizer is truncated: %zu bytes", size);
    size_t pos = 4; /* skip max_token_length: lengths are checked one by one instead */
    for (int id = 0; id < n; id++) {
        if (size - pos < 8)
            return ts_fail(err, TS_E_FORMAT, "tokenizer is truncated or does not match the model: it ends at token %d of the model's %d", id, n);
        float score = ts_read_f32(data + pos);
        int32_t len = ts_read_i32(data + pos + 4);
        pos += 8;
        if (!isfinite(score)) return ts_fail(err, TS_E_FORMAT, "tokenizer token %d has a non-finite score", id);
        if (len < 0 || (size_t)len > size - pos)
            return ts_fail(err, TS_E_FORMAT, "tokenizer token %d has length %d, past the end of the tokenizer (%zu bytes)", id, (int)len, size);
        t->piece[id] = (const char *)data + pos;
        t->piece_len[id] = len;
        t->score[id] = score;
        pos += (size_t)len;
    }
    if (pos != size)
        return ts_fail(err, TS_E_FORMAT, "tokenizer has %zu bytes after the model's %d tokens: it belongs to a model with a larger vocabulary", size - pos, n);
    for (int b = 0; b < 256; b++) t->byte_token[b] = -1;
    for (int id = n - 1; id >= 0; id--) { /* "<0xXX>" byte-fallback tokens; lowest id wins */
        const char *p = t->piece[id];
        int hi, lo;
        t->byte_value[id] = -1;
        if (t->piece_len[id] == 6 && p[0] == '<' && p[1] == '0' && p[2] == 'x' && p[5] == '>' && (hi = ts_hexval(p[3])) >= 0 &&
            (lo = ts_hexval(p[4])) >= 0) {
            t->byte_value[id] = (short)(hi * 16 + lo);
            t->byte_token[hi * 16 + lo] = id;
        }
    }
    int rc = ts_build_hash(t, err);
    if (rc) return rc;
    t->space_id = ts_lookup2(t, " ", 1, "", 0);
    t->pair_seen = (unsigned char *)calloc(65536 / 8, 1);
    if (!t->pair_seen) return ts_fail(err, TS_E_NOMEM, "out of memory");
    for (int id = 0; id < n; id++)
        for (int i = 0; i + 1 < t->piece_len[id]; i++) {
            unsigned pair = (unsigned char)t->piece[id][i] << 8 | (unsigned char)t->piece[id][i + 1];
            t->pair_seen[pair >> 3] |= (unsigned char)(1u << (pair & 7));
        }
    return TS_OK;
}

/* A symbol of the text being merged: a token in a doubly linked list. */
typedef struct { int id, prev, next; } ts_symbol;
/* A candidate merge of symbols left and left's next into token `merged`. */
typedef struct { float score; int left, merged, left_id, right_id; } ts_pair;

static int ts_pair_before(const ts_pair *a, const ts_pair *b) { /* higher score first, then leftmost */
    return a->score > b->score || (a->score == b->score && a->left < b->left);
}
static void ts_heap_push(ts_pair *heap, int *n, ts_pair p) {
    int i = (*n)++;
    while (i > 0 && ts_pair_before(&p, &heap[(i - 1) / 2])) {
        heap[i] = heap[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    heap[i] = p;
}
static ts_pair ts_heap_pop(ts_pair *heap, int *n) {
    ts_pair top = heap[0], last = heap[--(*n)];
    int i = 0;
    for (;;) {
        int c = 2 * i + 1;
        if (c >= *n) break;
        if (c + 1 < *n && ts_pair_before(&heap[c + 1], &heap[c])) c++;
        if (!ts_pair_before(&heap[c], &last)) break;
        heap[i] = heap[c];
        i = c;
    }
    if (*n > 0) heap[i] = last;
    return top;
}

static void ts_push_candidate(const ts_tokenizer *t, const ts_symbol *sym, int left, ts_pair *heap, int *n_heap) {
    int right = sym[left].next;
    if (left < 0 || right < 0) return;
    int a = sym[left].id, b = sym[right].id;
    int id = ts_lookup2(t, t->piece[a], (size_t)t->piece_len[a], t->piece[b], (size_t)t->piece_len[b]);
    if (id < 0) return;
    ts_pair p = {t->score[id], left, id, a, b};
    ts_heap_push(heap, n_heap, p);
}

/* Encodes with the llama2.c/sentencepiece rules into out (room for len + 3 ids). */
static long ts_sentencepiece_encode(const ts_tokenizer *t, const char *text, size_t len, int add_bos, int *out) {
    long n = 0;
    if (add_bos && t->bos_id >= 0) out[n++] = t->bos_id;
    if (len == 0) return n;
    /* Symbols: the dummy prefix, then each UTF-8 character (a lead byte and up to three
     * continuation bytes, as llama2.c groups them) or its bytes when it is no token. */
    ts_symbol *sym = (ts_symbol *)malloc((len + 2) * sizeof(ts_symbol));
    ts_pair *heap = (ts_pair *)malloc((3 * len + 8) * sizeof(ts_pair));
    if (!sym || !heap) {
        free(sym), free(heap);
        return -1;
    }
    int n_sym = 0, n_heap = 0;
    if (t->space_id >= 0) sym[n_sym++].id = t->space_id;
    else sym[n_sym++].id = t->byte_token[' '] >= 0 ? t->byte_token[' '] : 0;
    for (size_t i = 0; i < len;) {
        size_t j = i + 1;
        while (j < len && j - i < 4 && ((unsigned char)text[j] & 0xC0) == 0x80) j++;
        int id = ts_lookup2(t, text + i, j - i, "", 0);
        if (id >= 0) sym[n_sym++].id = id;
        else
            for (size_t k = i; k < j; k++) {
                int b = t->byte_token[(unsigned char)text[k]];
                sym[n_sym++].id = b >= 0 ? b : 0; /* no byte fallback in this vocabulary: <unk> */
            }
        i = j;
    }
    /* No merge can join two neighbouring symbols if the last byte of the left one's piece
     * and the first byte of the right one's never stand next to each other in any piece
     * (for Llama 2, e.g., a letter followed by a space). The text is cut at such places
     * and each part merged on its own: merges in one part never change the candidates of
     * another, so the result is that of one heap over the whole text, and the small heaps
     * stay in cache. */
    for (int first = 0, end = 1; first < n_sym; first = end, end = first + 1) {
        for (; end < n_sym; end++) {
            int a = sym[end - 1].id, b = sym[end].id;
            if (t->piece_len[a] == 0 || t->piece_len[b] == 0) continue;
            unsigned pair = (unsigned char)t->piece[a][t->piece_len[a] - 1] << 8 | (unsigned char)t->piece[b][0];
            if (!(t->pair_seen[pair >> 3] & (1u << (pair & 7)))) break;
        }
        for (int i = first; i < end; i++) sym[i].prev = i > first ? i - 1 : -1, sym[i].next = i + 1 < end ? i + 1 : -1;
        for (int i = first; i + 1 < end; i++) ts_push_candidate(t, sym, i, heap, &n_heap);
        while (n_heap > 0) {
            ts_pair p = ts_heap_pop(heap, &n_heap);
            int left = p.left, right = sym[left].next;
            /* stale entries: the left symbol was merged away or either side changed */
            if (sym[left].id != p.left_id || right < 0 || sym[right].id != p.right_id) continue;
            sym[left].id = p.merged;
            sym[left].next = sym[right].next;
            if (sym[right].next >= 0) sym[sym[right].next].prev = left;
            sym[right].id = -1;
            if (sym[left].prev >= 0) ts_push_candidate(t, sym, sym[left].prev, heap, &n_heap);
            ts_push_candidate(t, sym, left, heap, &n_heap);
        }
        for (int i = first; i >= 0; i = sym[i].next) out[n++] = sym[i].id;
    }
    free(sym);
    free(heap);
    return n;
}

/* ---- GPT-2 byte-level BPE ---------------------------------------------------------- */
/* (filled in below by the GPT-2 sub-section; see ts_gpt2_*) */
struct gpt2_tokenizer { int unused; };
static int ts_gpt2_init(ts_tokenizer *t, const unsigned char *data, size_t size, ts_error *err) {
    (void)t, (void)data, (void)size;
    return ts_fail(err, TS_E_FORMAT, "GPT-2 tokenizers are not supported yet");
}
static long ts_gpt2_encode(const ts_tokenizer *t, const char *text, size_t len, int *out, long max_out) {
    (void)t, (void)text, (void)len, (void)out, (void)max_out;
    return -1;
}
static void ts_gpt2_free(ts_tokenizer *t) { (void)t; }

static int ts_tokenizer_init(ts_tokenizer *t, int kind, const unsigned char *data, size_t size, const ts_config *c, ts_error *err) {
    memset(t, 0, sizeof *t);
    t->kind = kind;
    t->vocab_size = c->vocab_size;
    t->bos_id = c->bos_id;
    t->eos_id = c->eos_id;
    for (int b = 0; b < 256; b++) t->byte_text[2 * b] = (unsigned char)b;
    if (kind == TS_TOK_SENTENCEPIECE) return ts_sentencepiece_init(t, data, size, err);
    return ts_gpt2_init(t, data, size, err);
}

static void ts_tokenizer_free(ts_tokenizer *t) {
    if (t->kind == TS_TOK_GPT2) ts_gpt2_free(t);
    free(t->piece);
    free(t->piece_len);
    free(t->score);
    free(t->byte_value);
    free(t->hash);
    free(t->pair_seen);
    free(t->owned);
    memset(t, 0, sizeof *t);
}

/* ==========================================================================
 * 3. Transformer forward pass
 *
 * One function runs a block of n tokens at consecutive positions through every layer:
 * n = 1 while generating, n up to TS_BATCH for a prompt, so each weight matrix is read
 * once per block (a matrix-matrix product) instead of once per token. Per token and
 * layer (Llama, "Llama 2" Touvron et al. 2023; GPT-Neo, Black et al. 2021):
 *
 *   x  += Wo · attention(rope(Wq·norm(x)), rope(Wk·norm(x)), Wv·norm(x))
 *   x  += W2 · act(W1·norm(x), W3·norm(x))
 *
 * Llama: RMSNorm, rotary positions, grouped-query attention, SwiGLU.
 * GPT-Neo: LayerNorm, learned positions, biases, no score scaling, some layers attend
 * only to the last `window` positions, GELU (tanh form).
 * Each output element is summed in the same order whatever the block size and thread
 * count, so results never depend on either.
 * ========================================================================== */

#ifndef TS_BATCH
#define TS_BATCH 32 /* tokens per block when running a prompt */
#endif

struct ts_session {
    const ts_model *model;
    int max_positions, batch;
    /* activations, (batch, width) each */
    float *x;         /* (batch, dim) residual stream */
    float *xb;        /* (batch, max(dim, q_dim)) normed input / attention output */
    float *xb2;       /* (batch, dim) */
    float *hb, *hb2;  /* (batch, hidden_dim) */
    float *q;         /* (batch, q_dim) */
    float *att;       /* (batch, n_heads, max_positions) attention weights */
    float *logits;    /* (batch, vocab_size) */
    int8_t *xq;       /* (batch, max(dim, hidden, q_dim)) quantized activations (Q8_0) */
    float *xq_scale;  /* (batch, max(...) / group_size) */
    float *rope_cos, *rope_sin; /* (max_positions, head_dim / 2) */
    float *k;         /* (batch, kv_dim) the block's keys, before they go to the cache */
    float *key_cache;   /* (n_layers, kv_dim, max_positions): transposed, see ts_attention */
    float *value_cache; /* (n_layers, max_positions, kv_dim) */
    /* sampler */
    unsigned long long rng_state;
    struct ts_prob_index *probindex; /* (vocab_size) */
    /* optional recording of attention weights for --viz: (n_layers, n_heads, rec_len, rec_len) */
    float *att_record;
    int rec_len;
    void *memory;     /* the one allocation the arrays above are cut from */
};

/* ---- kernels: each is the plain loop; faster versions sit behind the same meaning ---- */

static float ts_bf16_to_f32(uint16_t h) {
    uint32_t bits = (uint32_t)h << 16;
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

/* Row `row` of an embedding matrix as floats: out (cols). */
static void ts_matrix_row(float *out, const ts_matrix *w, int row) {
    size_t start = (size_t)row * (size_t)w->cols;
    if (w->type == TS_F32) memcpy(out, (const float *)w->data + start, (size_t)w->cols * sizeof(float));
    else if (w->type == TS_BF16)
        for (int j = 0; j < w->cols; j++) out[j] = ts_bf16_to_f32(((const uint16_t *)w->data)[start + j]);
    else {
        const float *scale = w->scale + (size_t)row * ts_groups(w->cols, w->group_size);
        for (int j = 0; j < w->cols; j++) out[j] = ((const int8_t *)w->data)[start + j] * scale[j / w->group_size];
    }
}

/* (int)roundf(v) (halves away from zero) for |v| < 2^31, in a form compilers vectorise:
 * v minus its truncation is exact, so comparing it with 0.5 decides the rounding. */
static int ts_round(float v) {
    int r = (int)v;
    float frac = v - (float)r;
    return r + (frac >= 0.5f) - (frac <= -0.5f);
}

/* Q8_0 activations, as llama2.c's runq: per group of gs values, scale = max|x| / 127,
 * q = round(x / scale). x (n, cols) -> q (n, cols), s (n, groups). */
static void ts_quantize(int8_t *q, float *s, const float *x, int n, int cols, int gs) {
    int groups = ts_groups(cols, gs);
    for (int t = 0; t < n; t++)
        for (int g = 0; g < groups; g++) {
            const float *xg = x + (size_t)t * cols + (size_t)g * gs;
            int len = cols - g * gs < gs ? cols - g * gs : gs;
            float wmax = 0.0f;
            for (int i = 0; i < len; i++) wmax = fabsf(xg[i]) > wmax ? fabsf(xg[i]) : wmax; /* fmaxf, inlined */
            float scale = wmax / 127.0f;
            s[(size_t)t * groups + g] = scale;
            int8_t *qg = q + (size_t)t * cols + (size_t)g * gs;
            if (scale > 0.0f)
                for (int i = 0; i < len; i++) qg[i] = (int8_t)ts_round(xg[i] / scale); /* |x / scale| <= 127 */
            else
                for (int i = 0; i < len; i++) qg[i] = 0;
        }
}

/* One matrix product of a call: out (n, w->rows) = x (n, w->cols) · W^T. */
typedef struct {
    float *out;
    const ts_matrix *w;
} ts_product;
#define TS_MAX_PRODUCTS 3

/* One Q8_0 group's contribution to an output: its exact integer dot product, scaled by the
 * weights' and the activations' group scales (llama2.c's runq). Shared by the plain and the
 * fast kernels so that both round it the same way. */
TS_INLINE float ts_q8_step(float val, int32_t ival, float w_scale, float x_scale) {
    return val + (float)ival * w_scale * x_scale;
}

/* out (n, rows) = x (n, cols) · W^T, the plain loops: one dot product per output, summed
 * left to right in float (Q8_0: integer sums per group, scaled). This is the reference
 * every faster kernel is tested against, and what runs where no SIMD path exists. */
TS_MAYBE_UNUSED static void ts_matmul_plain(float *out, const float *x, const int8_t *xq, const float *xs, const ts_matrix *w, int n) {
    int rows = w->rows, cols = w->cols, gs = w->group_size, groups = w->type == TS_Q8_0 ? ts_groups(cols, gs) : 0;
    TS_PARALLEL_FOR
    for (int i = 0; i < rows; i++) {
        for (int t = 0; t < n; t++) {
            float val = 0.0f;
            size_t row = (size_t)i * cols;
            if (w->type == TS_F32) {
                const float *wr = (const float *)w->data + row, *xt = x + (size_t)t * cols;
                for (int j = 0; j < cols; j++) val += wr[j] * xt[j];
            } else if (w->type == TS_BF16) {
                const uint16_t *wr = (const uint16_t *)w->data + row;
                const float *xt = x + (size_t)t * cols;
                for (int j = 0; j < cols; j++) val += ts_bf16_to_f32(wr[j]) * xt[j];
            } else {
                const int8_t *wr = (const int8_t *)w->data + row, *xt = xq + (size_t)t * cols;
                const float *ws = w->scale + (size_t)i * groups, *xst = xs + (size_t)t * groups;
                for (int g = 0; g < groups; g++) {
                    int32_t ival = 0;
                    for (int k = g * gs; k < cols && k < (g + 1) * gs; k++) ival += (int32_t)xt[k] * (int32_t)wr[k];
                    val = ts_q8_step(val, ival, ws[g], xst[g]);
                }
            }
            out[(size_t)t * rows + i] = val;
        }
    }
}

/* ---- fast kernels ------------------------------------------------------------------
 * ts_matmul_fast computes what ts_matmul_plain computes, arranged for the machine:
 *  - Tiles of 4 rows x 4 tokens: each weight loaded serves 4 tokens of a prompt block and
 *    each activation loaded serves 4 rows (generating, n = 1: tiles of 4 rows x 1 token).
 *    A block of 32 prompt tokens thus reads each weight from memory once, not 32 times.
 *  - f32 and bf16 in SIMD lanes: lane l of an accumulator (16 lanes with AVX-512, 8 with
 *    AVX2) sums the products at j = l, l + LANES, l + 2 LANES, ... in order with fused
 *    multiply-adds, then the lanes are added in a fixed tree. That order differs from the
 *    plain loop's left to right (results differ in the last bits, well inside what any
 *    test tolerates), but each output is summed in the same order whatever tile, block
 *    size or thread computes it: a prompt run in blocks gives the bits of token-by-token
 *    decoding, with any number of threads.
 *  - bf16 weights widen to f32 exactly (a 16-bit shift) and multiply the f32 activations,
 *    so bf16 files lose nothing beyond their own rounding. (AVX-512 BF16's dot product
 *    instruction would also round the activations to bf16: we do not use it.)
 *  - Q8_0: integer dot products per group (AVX-512 VNNI vpdpbusd, AVX2 vpmaddubsw) give
 *    the plain loop's int32 sums exactly; the float update per group is ts_q8_step in the
 *    same order. Q8_0 results are the plain loop's, bit for bit.
 * Each instruction set supplies a few small helpers (load, multiply-add, sum the lanes);
 * the tiles are written once on top of them.
 * ------------------------------------------------------------------------------------ */
#if defined(TS_AVX512)
#define TS_LANES 16                   /* floats per vector */
#define TS_QCHUNK 64                  /* int8 values per vector */
typedef __m512 ts_vf;
typedef __m512i ts_vi;
TS_INLINE ts_vf ts_vf_zero(void) { return _mm512_setzero_ps(); }
TS_INLINE ts_vf ts_fma(ts_vf a, ts_vf b, ts_vf acc) { return _mm512_fmadd_ps(a, b, acc); }
/* The lanes' sum in a fixed tree: v[i] + v[i+8], then + the same 4 lanes on, then
 * (w0 + w2) + (w1 + w3). ts_vf_sum4 adds four vectors' lanes in the same tree at once. */
TS_INLINE float ts_vf_sum(ts_vf v) {
    __m256 h = _mm256_add_ps(_mm512_castps512_ps256(v), _mm512_extractf32x8_ps(v, 1));
    __m128 w = _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
    w = _mm_add_ps(w, _mm_movehl_ps(w, w));
    return _mm_cvtss_f32(_mm_add_ss(w, _mm_movehdup_ps(w)));
}
TS_INLINE void ts_vf_sum4(const ts_vf *v, float *out) {
    __m512 ab = _mm512_add_ps(_mm512_shuffle_f32x4(v[0], v[1], 0x44), _mm512_shuffle_f32x4(v[0], v[1], 0xee));
    __m512 cd = _mm512_add_ps(_mm512_shuffle_f32x4(v[2], v[3], 0x44), _mm512_shuffle_f32x4(v[2], v[3], 0xee));
    /* 128-bit lane k of w: the 4 partial sums of v[k] */
    __m512 w = _mm512_add_ps(_mm512_shuffle_f32x4(ab, cd, 0x88), _mm512_shuffle_f32x4(ab, cd, 0xdd));
    w = _mm512_add_ps(w, _mm512_shuffle_ps(w, w, 0xee));
    w = _mm512_add_ps(w, _mm512_shuffle_ps(w, w, 0x55));
    _mm_storeu_ps(out, _mm512_castps512_ps128(_mm512_permutexvar_ps(_mm512_setr_epi32(0, 4, 8, 12, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0), w)));
}
/* `count` (<= TS_LANES) floats from p, zeros after */
TS_INLINE ts_vf ts_load_f32(const float *p, int count) {
    return count == TS_LANES ? _mm512_loadu_ps(p) : _mm512_maskz_loadu_ps((__mmask16)((1u << count) - 1), p);
}
TS_INLINE ts_vf ts_load_bf16(const uint16_t *p, int count) { /* bf16 -> f32: the bits go up 16 places */
    __m256i h = count == TS_LANES ? _mm256_loadu_si256((const __m256i *)p)
                                  : _mm256_maskz_loadu_epi16((__mmask16)((1u << count) - 1), p);
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
}
TS_INLINE ts_vi ts_vi_zero(void) { return _mm512_setzero_si512(); }
TS_INLINE int32_t ts_vi_sum(ts_vi v) { return _mm512_reduce_add_epi32(v); }
/* The lane sums of four vectors at once (a transposing add tree): out[k] = sum of v[k]. */
TS_INLINE void ts_vi_sum4(const ts_vi *v, int32_t *out) {
    __m512i ab = _mm512_add_epi32(_mm512_unpacklo_epi32(v[0], v[1]), _mm512_unpackhi_epi32(v[0], v[1]));
    __m512i cd = _mm512_add_epi32(_mm512_unpacklo_epi32(v[2], v[3]), _mm512_unpackhi_epi32(v[2], v[3]));
    __m512i abcd = _mm512_add_epi32(_mm512_unpacklo_epi64(ab, cd), _mm512_unpackhi_epi64(ab, cd));
    __m256i h = _mm256_add_epi32(_mm512_castsi512_si256(abcd), _mm512_extracti64x4_epi64(abcd, 1));
    _mm_storeu_si128((__m128i *)out, _mm_add_epi32(_mm256_castsi256_si128(h), _mm256_extracti128_si256(h, 1)));
}
TS_INLINE ts_vi ts_load_i8(const int8_t *p, int count) {
    return count == TS_QCHUNK ? _mm512_loadu_si512(p) : _mm512_maskz_loadu_epi8(~0ull >> (64 - count), p);
}
/* Integer dot products: vpdpbusd adds to each int32 lane the sum of 4 products of unsigned
 * by signed bytes. Activations are loaded as x + 128 (unsigned), and the dot product is
 * corrected by 128 * sum(w), which one more vpdpbusd per weight vector gives:
 *   sum((x + 128) * w) - sum(128 * w) = sum(x * w), exactly. */
TS_INLINE ts_vi ts_load_qx(const int8_t *p, int count) { /* x + 128 = x with the top bit flipped */
    return _mm512_xor_si512(ts_load_i8(p, count), _mm512_set1_epi8(-128));
}
TS_INLINE ts_vi ts_qdot(ts_vi acc, ts_vi w, ts_vi x) { return _mm512_dpbusd_epi32(acc, x, w); }
TS_INLINE ts_vi ts_qcorrect(ts_vi corr, ts_vi w) { return _mm512_dpbusd_epi32(corr, _mm512_set1_epi8(-128), w); }
TS_INLINE ts_vi ts_vi_sub(ts_vi a, ts_vi b) { return _mm512_sub_epi32(a, b); }
#elif defined(TS_AVX2)
#define TS_LANES 8
#define TS_QCHUNK 32
typedef __m256 ts_vf;
typedef __m256i ts_vi;
TS_INLINE ts_vf ts_vf_zero(void) { return _mm256_setzero_ps(); }
TS_INLINE ts_vf ts_fma(ts_vf a, ts_vf b, ts_vf acc) { return _mm256_fmadd_ps(a, b, acc); }
TS_INLINE float ts_vf_sum(ts_vf v) { /* v[i] + v[i+4], then (w0 + w2) + (w1 + w3) */
    __m128 w = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    w = _mm_add_ps(w, _mm_movehl_ps(w, w));
    return _mm_cvtss_f32(_mm_add_ss(w, _mm_movehdup_ps(w)));
}
TS_INLINE void ts_vf_sum4(const ts_vf *v, float *out) { /* the same tree, four vectors at once */
    __m256 ab = _mm256_add_ps(_mm256_permute2f128_ps(v[0], v[1], 0x20), _mm256_permute2f128_ps(v[0], v[1], 0x31));
    __m256 cd = _mm256_add_ps(_mm256_permute2f128_ps(v[2], v[3], 0x20), _mm256_permute2f128_ps(v[2], v[3], 0x31));
    /* ab = [a0..a3 | b0..b3] partial sums; now (x0 + x2) + (x1 + x3) for each */
    __m256 t = _mm256_add_ps(_mm256_shuffle_ps(ab, cd, 0x44), _mm256_shuffle_ps(ab, cd, 0xee)); /* [a02 a13 c02 c13 | b02 b13 d02 d13] */
    t = _mm256_add_ps(_mm256_shuffle_ps(t, t, 0x88), _mm256_shuffle_ps(t, t, 0xdd));            /* [a c a c | b d b d] */
    __m128 r = _mm_unpacklo_ps(_mm256_castps256_ps128(t), _mm256_extractf128_ps(t, 1));          /* [a b c d] */
    _mm_storeu_ps(out, r);
}
TS_INLINE ts_vf ts_load_f32(const float *p, int count) {
    if (count == TS_LANES) return _mm256_loadu_ps(p);
    __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    return _mm256_maskload_ps(p, _mm256_cmpgt_epi32(_mm256_set1_epi32(count), lane));
}
TS_INLINE ts_vf ts_load_bf16(const uint16_t *p, int count) {
    uint16_t part[TS_LANES] = {0};
    if (count < TS_LANES) memcpy(part, p, (size_t)count * 2), p = part;
    __m256i wide = _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)p));
    return _mm256_castsi256_ps(_mm256_slli_epi32(wide, 16));
}
TS_INLINE ts_vi ts_vi_zero(void) { return _mm256_setzero_si256(); }
TS_INLINE int32_t ts_vi_sum(ts_vi v) {
    __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4e));
    return _mm_cvtsi128_si32(_mm_add_epi32(s, _mm_shuffle_epi32(s, 0xb1)));
}
TS_INLINE void ts_vi_sum4(const ts_vi *v, int32_t *out) { /* out[k] = sum of the lanes of v[k] */
    __m256i h = _mm256_hadd_epi32(_mm256_hadd_epi32(v[0], v[1]), _mm256_hadd_epi32(v[2], v[3]));
    _mm_storeu_si128((__m128i *)out, _mm_add_epi32(_mm256_castsi256_si128(h), _mm256_extracti128_si256(h, 1)));
}
TS_INLINE ts_vi ts_load_i8(const int8_t *p, int count) {
    int8_t part[TS_QCHUNK] = {0};
    if (count < TS_QCHUNK) memcpy(part, p, (size_t)count), p = part;
    return _mm256_loadu_si256((const __m256i *)p);
}
/* acc (8 x int32) += sums of 4 products w * x. vpmaddubsw multiplies unsigned by signed
 * bytes into pairwise int16 sums: it gets |w| and x with w's sign, and |w| <= 128,
 * |x| <= 127 keep the pairs below 32767. No correction is needed. */
TS_INLINE ts_vi ts_load_qx(const int8_t *p, int count) { return ts_load_i8(p, count); }
TS_INLINE ts_vi ts_qdot(ts_vi acc, ts_vi w, ts_vi x) {
    __m256i pairs = _mm256_maddubs_epi16(_mm256_abs_epi8(w), _mm256_sign_epi8(x, w));
    return _mm256_add_epi32(acc, _mm256_madd_epi16(pairs, _mm256_set1_epi16(1)));
}
TS_INLINE ts_vi ts_qcorrect(ts_vi corr, ts_vi w) { return (void)w, corr; }
TS_INLINE ts_vi ts_vi_sub(ts_vi a, ts_vi b) { return _mm256_sub_epi32(a, b); }
#endif

#if defined(TS_AVX512) || defined(TS_AVX2)
/* out (n, rows) at rows i0..i0+NR-1, tokens t0..t0+NT-1 (NR, NT <= 4), f32 or bf16 weights. */
TS_INLINE void ts_tile_float(float *out, const ts_matrix *w, const float *x, int i0, int t0, int NR, int NT) {
    int rows = w->rows, cols = w->cols, bf16 = w->type == TS_BF16;
    ts_vf acc[4][4], wv[4], xv[4];
    for (int r = 0; r < NR; r++)
        for (int t = 0; t < NT; t++) acc[r][t] = ts_vf_zero();
    for (int j = 0; j < cols; j += TS_LANES) {
        int count = cols - j < TS_LANES ? cols - j : TS_LANES;
        for (int r = 0; r < NR; r++) {
            size_t at = (size_t)(i0 + r) * cols + j;
            wv[r] = bf16 ? ts_load_bf16((const uint16_t *)w->data + at, count) : ts_load_f32((const float *)w->data + at, count);
        }
        for (int t = 0; t < NT; t++) xv[t] = ts_load_f32(x + (size_t)(t0 + t) * cols + j, count);
        for (int r = 0; r < NR; r++)
            for (int t = 0; t < NT; t++) acc[r][t] = ts_fma(wv[r], xv[t], acc[r][t]);
    }
    float sum[4][4];
    if (NT == 4) /* the lanes' sums, four vectors at once where there are four */
        for (int r = 0; r < NR; r++) ts_vf_sum4(acc[r], sum[r]);
    else if (NR == 4 && NT == 1) {
        ts_vf column[4] = {acc[0][0], acc[1][0], acc[2][0], acc[3][0]}, sums[4];
        ts_vf_sum4(column, (float *)sums);
        for (int r = 0; r < 4; r++) sum[r][0] = ((float *)sums)[r];
    } else
        for (int r = 0; r < NR; r++)
            for (int t = 0; t < NT; t++) sum[r][t] = ts_vf_sum(acc[r][t]);
    for (int r = 0; r < NR; r++)
        for (int t = 0; t < NT; t++) out[(size_t)(t0 + t) * rows + i0 + r] = sum[r][t];
}

/* The same tile for Q8_0 weights against quantized activations xq (n, cols), xs (n, groups). */
TS_INLINE void ts_tile_q8(float *out, const ts_matrix *w, const int8_t *xq, const float *xs, int i0, int t0, int NR, int NT) {
    int rows = w->rows, cols = w->cols, gs = w->group_size, groups = ts_groups(cols, gs);
    const int8_t *wq = (const int8_t *)w->data;
    float val[4][4];
    int32_t isum[4][4];
    ts_vi acc[4][4], corr[4], wv[4], xv[4];
    for (int r = 0; r < NR; r++)
        for (int t = 0; t < NT; t++) val[r][t] = 0.0f;
    for (int g = 0; g < groups; g++) {
        int start = g * gs, len = cols - start < gs ? cols - start : gs;
        for (int r = 0; r < NR; r++) {
            corr[r] = ts_vi_zero();
            for (int t = 0; t < NT; t++) acc[r][t] = ts_vi_zero();
        }
        for (int k = start; k < start + len; k += TS_QCHUNK) {
            int count = start + len - k < TS_QCHUNK ? start + len - k : TS_QCHUNK;
            for (int r = 0; r < NR; r++) {
                wv[r] = ts_load_i8(wq + (size_t)(i0 + r) * cols + k, count);
                corr[r] = ts_qcorrect(corr[r], wv[r]);
            }
            for (int t = 0; t < NT; t++) xv[t] = ts_load_qx(xq + (size_t)(t0 + t) * cols + k, count);
            for (int r = 0; r < NR; r++)
                for (int t = 0; t < NT; t++) acc[r][t] = ts_qdot(acc[r][t], wv[r], xv[t]);
        }
        for (int r = 0; r < NR; r++)
            for (int t = 0; t < NT; t++) acc[r][t] = ts_vi_sub(acc[r][t], corr[r]);
        if (NT == 4) /* sum the lanes, four vectors at once where there are four */
            for (int r = 0; r < NR; r++) ts_vi_sum4(acc[r], isum[r]);
        else if (NR == 4 && NT == 1) {
            ts_vi column[4] = {acc[0][0], acc[1][0], acc[2][0], acc[3][0]};
            int32_t sums[4];
            ts_vi_sum4(column, sums);
            for (int r = 0; r < 4; r++) isum[r][0] = sums[r];
        } else
            for (int r = 0; r < NR; r++)
                for (int t = 0; t < NT; t++) isum[r][t] = ts_vi_sum(acc[r][t]);
        for (int r = 0; r < NR; r++)
            for (int t = 0; t < NT; t++)
                val[r][t] = ts_q8_step(val[r][t], isum[r][t], w->scale[(size_t)(i0 + r) * groups + g],
                                       xs[(size_t)(t0 + t) * groups + g]);
    }
    for (int r = 0; r < NR; r++)
        for (int t = 0; t < NT; t++) out[(size_t)(t0 + t) * rows + i0 + r] = val[r][t];
}

TS_INLINE void ts_tile(float *out, const float *x, const int8_t *xq, const float *xs, const ts_matrix *w, int i0,
                       int t0, int NR, int NT) {
    if (w->type == TS_Q8_0) ts_tile_q8(out, w, xq, xs, i0, t0, NR, NT);
    else ts_tile_float(out, w, x, i0, t0, NR, NT);
}

/* The products of one call (see ts_matmuls), in tiles: the tiles of 4 rows of all the
 * matrices are shared out to the threads in one parallel loop. */
static void ts_matmul_fast(const ts_product *p, int count, const float *x, const int8_t *xq, const float *xs, int n) {
    int first[TS_MAX_PRODUCTS + 1] = {0}; /* first tile of each product */
    double work = 0;
    for (int k = 0; k < count; k++) {
        first[k + 1] = first[k] + (p[k].w->rows + 3) / 4;
        work += (double)p[k].w->rows * p[k].w->cols * n;
    }
    TS_PARALLEL_FOR_IF(work >= TS_PARALLEL_MIN_WORK)
    for (int tile = 0; tile < first[count]; tile++) {
        int k = 0;
        while (tile >= first[k + 1]) k++;
        const ts_matrix *w = p[k].w;
        float *out = p[k].out;
        int i0 = 4 * (tile - first[k]), rows = w->rows;
        if (i0 + 4 <= rows) {
            int t = 0;
            for (; t + 4 <= n; t += 4) ts_tile(out, x, xq, xs, w, i0, t, 4, 4);
            for (; t < n; t++) ts_tile(out, x, xq, xs, w, i0, t, 4, 1);
        } else /* the last rows, one at a time */
            for (int i = i0; i < rows; i++) {
                int t = 0;
                for (; t + 4 <= n; t += 4) ts_tile(out, x, xq, xs, w, i, t, 1, 4);
                for (; t < n; t++) ts_tile(out, x, xq, xs, w, i, t, 1, 1);
            }
    }
}
#endif

/* out_k (n, rows_k) = x (n, cols) · W_k^T for up to TS_MAX_PRODUCTS matrices that read the
 * same x (q, k and v; w1 and w3): the threads start once for all of them, and Q8_0 quantizes
 * x (into the session's buffers) once. */
static void ts_matmuls(ts_session *s, const float *x, int n, int count, const ts_product *p) {
    const ts_matrix *w = p[0].w;
    if (w->type == TS_Q8_0) ts_quantize(s->xq, s->xq_scale, x, n, w->cols, w->group_size);
#if defined(TS_AVX512) || defined(TS_AVX2)
    ts_matmul_fast(p, count, x, s->xq, s->xq_scale, n);
#else
    for (int k = 0; k < count; k++) ts_matmul_plain(p[k].out, x, s->xq, s->xq_scale, p[k].w, n);
#endif
}

/* out (n, rows) = x (n, cols) · W^T. */
static void ts_matmul(ts_session *s, float *out, const float *x, const ts_matrix *w, int n) {
    ts_product p = {out, w};
    ts_matmuls(s, x, n, 1, &p);
}

static void ts_add_bias(float *x, const float *bias, int n, int width) { /* x (n, width) += bias */
    if (!bias) return;
    for (int t = 0; t < n; t++)
        for (int i = 0; i < width; i++) x[(size_t)t * width + i] += bias[i];
}

/* RMSNorm (Zhang & Sennrich 2019): o = w * x / sqrt(mean(x^2) + eps), as llama2.c. */
static void ts_rmsnorm(float *o, const float *x, const float *w, int size, float eps) {
    float ss = 0.0f;
    for (int j = 0; j < size; j++) ss += x[j] * x[j];
    ss /= size;
    ss += eps;
    ss = 1.0f / sqrtf(ss);
    for (int j = 0; j < size; j++) o[j] = w[j] * (ss * x[j]);
}

/* LayerNorm (Ba et al. 2016): o = (x - mean) / sqrt(var + eps) * w + b. */
static void ts_layernorm(float *o, const float *x, const float *w, const float *b, int size, float eps) {
    float mean = 0.0f, var = 0.0f;
    for (int j = 0; j < size; j++) mean += x[j];
    mean /= size;
    for (int j = 0; j < size; j++) var += (x[j] - mean) * (x[j] - mean);
    var /= size;
    float inv = 1.0f / sqrtf(var + eps);
    for (int j = 0; j < size; j++) o[j] = (x[j] - mean) * inv * w[j] + b[j];
}

static void ts_norm(const ts_config *c, float *o, const float *x, const float *w, const float *b, int n) {
    for (int t = 0; t < n; t++) {
        if (c->norm_kind == TS_NORM_RMS) ts_rmsnorm(o + (size_t)t * c->dim, x + (size_t)t * c->dim, w, c->dim, c->norm_eps);
        else ts_layernorm(o + (size_t)t * c->dim, x + (size_t)t * c->dim, w, b, c->dim, c->norm_eps);
    }
}

/* Softmax in place, as llama2.c: subtract the max, exponentiate, normalise. */
static void ts_softmax(float *x, int size) {
    float max_val = x[0];
    for (int i = 1; i < size; i++)
        if (x[i] > max_val) max_val = x[i];
    float sum = 0.0f;
    for (int i = 0; i < size; i++) {
        x[i] = expf(x[i] - max_val);
        sum += x[i];
    }
    for (int i = 0; i < size; i++) x[i] /= sum;
}

/* Rotary positions (Su et al. 2021) in llama2.c's layout: each adjacent pair (2i, 2i+1)
 * of a head turns by angle pos * theta^(-2i/head_dim). vec (n_vec_heads * head_dim). */
static void ts_rope(const ts_session *s, float *vec, int n_vec_heads, int pos) {
    int half = s->model->config.head_dim / 2;
    const float *cs = s->rope_cos + (size_t)pos * half, *sn = s->rope_sin + (size_t)pos * half;
    for (int h = 0; h < n_vec_heads; h++)
        for (int i = 0; i < half; i++) {
            float *v = vec + (size_t)h * 2 * half + 2 * i;
            float v0 = v[0], v1 = v[1];
            v[0] = v0 * cs[i] - v1 * sn[i];
            v[1] = v0 * sn[i] + v1 * cs[i];
        }
}

/* Attention of the block's n tokens (positions pos .. pos+n-1) for all heads: q (n, q_dim)
 * against this layer's cached keys and values, out (n, q_dim). Keys are cached transposed,
 * (kv_dim, positions), so the scores of consecutive positions sit side by side and are
 * computed together in the compiler's SIMD lanes, each still summed over i in order, as
 * llama2.c sums it. One (token, head) pair is a unit of work for the threads. */
static void ts_attention(ts_session *s, int layer, int pos, int n, const float *q, float *out) {
    const ts_config *c = &s->model->config;
    int hd = c->head_dim, kv_dim = c->n_kv_heads * hd, q_dim = c->n_heads * hd, group = c->n_heads / c->n_kv_heads;
    int window = s->model->layers[layer].window, P = s->max_positions;
    float scale = (c->flags & TS_FLAG_SCALE_ATTN) ? 1.0f / sqrtf((float)hd) : 1.0f;
    const float *keys = s->key_cache + (size_t)layer * kv_dim * P;     /* (kv_dim, P) */
    const float *values = s->value_cache + (size_t)layer * P * kv_dim; /* (P, kv_dim) */
    TS_PARALLEL_FOR_IF((double)n * c->n_heads * (pos + n) * hd * 2 >= TS_PARALLEL_MIN_WORK)
    for (int unit = 0; unit < n * c->n_heads; unit++) {
        int t = unit / c->n_heads, h = unit % c->n_heads, p = pos + t;
        int start = (window > 0 && p - window + 1 > 0) ? p - window + 1 : 0, len = p - start + 1;
        const float *qh = q + (size_t)t * q_dim + (size_t)h * hd;
        const float *kh = keys + (size_t)(h / group) * hd * P + start; /* (hd, P) from position start */
        float *ah = s->att + (size_t)unit * P;                           /* (len) scores, then weights */
        for (int k = 0; k < len; k++) ah[k] = 0.0f;
        for (int i = 0; i < hd; i++) {
            float qi = qh[i];
            const float *ki = kh + (size_t)i * P;
            for (int k = 0; k < len; k++) ah[k] += qi * ki[k];
        }
        for (int k = 0; k < len; k++) ah[k] *= scale;
        ts_softmax(ah, len);
        float *oh = out + (size_t)t * q_dim + (size_t)h * hd;
        for (int i = 0; i < hd; i++) oh[i] = 0.0f;
        for (int k = 0; k < len; k++) {
            const float *v = values + (size_t)(start + k) * kv_dim + (size_t)(h / group) * hd;
            float a = ah[k];
            for (int i = 0; i < hd; i++) oh[i] += a * v[i];
        }
        if (s->att_record && p < s->rec_len) { /* keep the pattern for --viz */
            float *rec = s->att_record + (((size_t)layer * c->n_heads + h) * s->rec_len + p) * s->rec_len;
            for (int k = 0; k < s->rec_len; k++) rec[k] = (k >= start && k <= p) ? ah[k - start] : 0.0f;
        }
    }
}

static float ts_gelu(float x) { /* GELU, tanh approximation ("gelu_new") */
    return 0.5f * x * (1.0f + tanhf(0.7978845608028654f * (x + 0.044715f * x * x * x)));
}
static float ts_silu(float x) { return x * (1.0f / (1.0f + expf(-x))); }

/* Runs n (<= batch) tokens at positions pos..pos+n-1. Logits of every token go to
 * s->logits (n, vocab) if all_logits, else only the last token's to s->logits. */
static void ts_forward_block(ts_session *s, const int *tokens, int n, int pos, int all_logits) {
    const ts_model *m = s->model;
    const ts_config *c = &m->config;
    int dim = c->dim, hid = c->hidden_dim, hd = c->head_dim;
    int q_dim = c->n_heads * hd, kv_dim = c->n_kv_heads * hd;

    for (int t = 0; t < n; t++) { /* x = embedding (+ position embedding) */
        float *xt = s->x + (size_t)t * dim;
        ts_matrix_row(xt, &m->tok_embedding, tokens[t]);
        if (m->pos_embedding)
            for (int i = 0; i < dim; i++) xt[i] += m->pos_embedding[(size_t)(pos + t) * dim + i];
    }
    for (int l = 0; l < c->n_layers; l++) {
        const ts_layer *ly = &m->layers[l];
        float *kc = s->key_cache + (size_t)l * kv_dim * s->max_positions + pos;         /* (kv_dim, P) from pos */
        float *vc = s->value_cache + ((size_t)l * s->max_positions + pos) * kv_dim; /* (n, kv_dim) */
        /* attention: q, k, v for the block; values land straight in the cache, keys go in
         * transposed after their rotation */
        ts_norm(c, s->xb, s->x, ly->attn_norm, ly->attn_norm_bias, n);
        ts_product qkv[3] = {{s->q, &ly->wq}, {s->k, &ly->wk}, {vc, &ly->wv}};
        ts_matmuls(s, s->xb, n, 3, qkv);
        ts_add_bias(s->q, ly->bq, n, q_dim);
        ts_add_bias(s->k, ly->bk, n, kv_dim);
        ts_add_bias(vc, ly->bv, n, kv_dim);
        if (c->pos_kind == TS_POS_ROPE)
            for (int t = 0; t < n; t++) {
                ts_rope(s, s->q + (size_t)t * q_dim, c->n_heads, pos + t);
                ts_rope(s, s->k + (size_t)t * kv_dim, c->n_kv_heads, pos + t);
            }
        for (int t = 0; t < n; t++)
            for (int i = 0; i < kv_dim; i++) kc[(size_t)i * s->max_positions + t] = s->k[(size_t)t * kv_dim + i];
        ts_attention(s, l, pos, n, s->q, s->xb);
        ts_matmul(s, s->xb2, s->xb, &ly->wo, n);
        ts_add_bias(s->xb2, ly->bo, n, dim);
        for (size_t i = 0; i < (size_t)n * dim; i++) s->x[i] += s->xb2[i];

        /* MLP */
        ts_norm(c, s->xb, s->x, ly->ffn_norm, ly->ffn_norm_bias, n);
        ts_product up[2] = {{s->hb, &ly->w1}, {s->hb2, &ly->w3}}; /* w3 only for SwiGLU */
        ts_matmuls(s, s->xb, n, c->act_kind == TS_ACT_SWIGLU ? 2 : 1, up);
        ts_add_bias(s->hb, ly->b1, n, hid);
        if (c->act_kind == TS_ACT_SWIGLU) {
            for (size_t i = 0; i < (size_t)n * hid; i++) s->hb[i] = ts_silu(s->hb[i]) * s->hb2[i];
        } else {
            for (size_t i = 0; i < (size_t)n * hid; i++) s->hb[i] = ts_gelu(s->hb[i]);
        }
        ts_matmul(s, s->xb2, s->hb, &ly->w2, n);
        ts_add_bias(s->xb2, ly->b2, n, dim);
        for (size_t i = 0; i < (size_t)n * dim; i++) s->x[i] += s->xb2[i];
    }
    /* final norm and classifier, for every token or just the last */
    int first = all_logits ? 0 : n - 1, count = n - first;
    ts_norm(c, s->xb, s->x + (size_t)first * dim, m->final_norm, m->final_norm_bias, count);
    ts_matmul(s, s->logits, s->xb, &m->classifier, count);
}

/* ==========================================================================
 * 4. Sampler
 *
 * Exactly llama2.c's: an xorshift* generator (state must not be 0), temperature scaling,
 * softmax, then either a draw from the whole distribution or from the smallest set of
 * most likely tokens whose probability exceeds top-p ("nucleus", Holtzman et al. 2019).
 * Ties in the top-p sort are broken by token id, so the order never depends on qsort.
 * ========================================================================== */

typedef struct ts_prob_index { float prob; int index; } ts_prob_index;

static unsigned int ts_random_u32(unsigned long long *state) {
    *state ^= *state >> 12;
    *state ^= *state << 25;
    *state ^= *state >> 27;
    return (unsigned int)((*state * 0x2545F4914F6CDD1Dull) >> 32);
}
static float ts_random_f32(unsigned long long *state) { return (float)(ts_random_u32(state) >> 8) / 16777216.0f; }

static int ts_argmax(const float *p, int n) {
    int best = 0;
    for (int i = 1; i < n; i++)
        if (p[i] > p[best]) best = i;
    return best;
}

static int ts_sample_mult(const float *p, int n, float coin) {
    float cdf = 0.0f;
    for (int i = 0; i < n; i++) {
        cdf += p[i];
        if (coin < cdf) return i;
    }
    return n - 1; /* rounding */
}

static int ts_compare_prob(const void *a, const void *b) {
    const ts_prob_index *x = (const ts_prob_index *)a, *y = (const ts_prob_index *)b;
    if (x->prob > y->prob) return -1;
    if (x->prob < y->prob) return 1;
    return (x->index > y->index) - (x->index < y->index);
}

static int ts_sample_topp(const float *p, int n, float topp, ts_prob_index *probindex, float coin) {
    /* tokens below (1 - topp) / (n - 1) can never be in the nucleus: skip them before sorting */
    float cutoff = (1.0f - topp) / (float)(n - 1);
    int n0 = 0;
    for (int i = 0; i < n; i++)
        if (p[i] >= cutoff) probindex[n0].index = i, probindex[n0].prob = p[i], n0++;
    qsort(probindex, (size_t)n0, sizeof(ts_prob_index), ts_compare_prob);
    float cumulative = 0.0f;
    int last = n0 - 1;
    for (int i = 0; i < n0; i++) {
        cumulative += probindex[i].prob;
        if (cumulative > topp) {
            last = i;
            break;
        }
    }
    float r = coin * cumulative, cdf = 0.0f;
    for (int i = 0; i <= last; i++) {
        cdf += probindex[i].prob;
        if (r < cdf) return probindex[i].index;
    }
    return probindex[last].index;
}

static int ts_sample_logits(ts_session *s, float *logits, float temperature, float topp) {
    int n = s->model->config.vocab_size;
    if (temperature == 0.0f) return ts_argmax(logits, n);
    for (int i = 0; i < n; i++) logits[i] /= temperature;
    ts_softmax(logits, n);
    float coin = ts_random_f32(&s->rng_state);
    if (topp <= 0.0f || topp >= 1.0f) return ts_sample_mult(logits, n, coin);
    return ts_sample_topp(logits, n, topp, s->probindex, coin);
}

/* ==========================================================================
 * 5. Generation loops
 *
 * generate: llama2.c's loop. Position by position, feed the prompt's tokens, then sampled
 * ones, printing each token's text as it comes, until `steps` positions or BOS. The
 * prompt runs in blocks (one matrix-matrix product per weight instead of one
 * matrix-vector product per token); what is printed is unchanged.
 * ========================================================================== */

static double ts_now(void) {
    struct timespec ts;
    timespec_get(&ts, TIME_UTC);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Tokens a prompt starts a story with: Llama: BOS + encoding; GPT-2: the encoding, or
 * <|endoftext|> alone for an empty prompt. Returns a malloc'ed array. */
static int ts_prompt_tokens(const ts_model *m, const char *prompt, int **out, int *n_out, ts_error *err) {
    size_t len = strlen(prompt);
    int cap = len + 3 > (size_t)INT_MAX / 4 ? INT_MAX / 4 : (int)len + 3, n = 0;
    int gpt2 = m->tokenizer.kind == TS_TOK_GPT2;
    int *ids = (int *)malloc((size_t)cap * sizeof(int));
    if (!ids) return ts_fail(err, TS_E_NOMEM, "out of memory");
    int rc = ts_encode(m, prompt, len, !gpt2, ids, cap, &n, err);
    if (rc) {
        free(ids);
        return rc;
    }
    if (n == 0 && m->config.bos_id >= 0) ids[n++] = m->config.bos_id;
    if (n == 0) {
        free(ids);
        return ts_fail(err, TS_E_ARG, "the prompt is empty and the model has no BOS token to start from");
    }
    *out = ids;
    *n_out = n;
    return TS_OK;
}

/* ==========================================================================
 * 6. Library functions
 * ========================================================================== */

int ts_model_load_memory(ts_model **out, const void *data, size_t size, const void *tok_data, size_t tok_size, ts_error *err) {
    *out = NULL;
    if (!data) return ts_fail(err, TS_E_ARG, "no model data");
    ts_model *m = (ts_model *)calloc(1, sizeof(ts_model));
    if (!m) return ts_fail(err, TS_E_NOMEM, "out of memory");
    m->file = (const unsigned char *)data;
    m->file_size = size;
    int rc = ts_model_parse(m, tok_data, tok_size, err);
    if (rc) {
        ts_model_free(m);
        return rc;
    }
    *out = m;
    return TS_OK;
}

int ts_model_load(ts_model **out, const char *path, const char *tokenizer_path, ts_error *err) {
    *out = NULL;
    ts_model *m = (ts_model *)calloc(1, sizeof(ts_model));
    if (!m) return ts_fail(err, TS_E_NOMEM, "out of memory");
    int rc = ts_map_file(path, &m->file, &m->file_size, &m->mapped, &m->owned_file, err);
    if (rc) {
        free(m);
        return rc;
    }
    /* A separate tokenizer is small: keep a private copy so its pieces need no mapping. */
    void *tok_copy = NULL;
    size_t tok_size = 0;
    if (tokenizer_path) {
        const unsigned char *tok;
        int tok_mapped;
        void *tok_owned;
        rc = ts_map_file(tokenizer_path, &tok, &tok_size, &tok_mapped, &tok_owned, err);
        if (rc == TS_OK) {
            tok_copy = malloc(tok_size);
            if (tok_copy) memcpy(tok_copy, tok, tok_size);
            else rc = ts_fail(err, TS_E_NOMEM, "out of memory");
            ts_unmap_file(tok, tok_size, tok_mapped, tok_owned);
        }
        if (rc) {
            ts_model_free(m);
            return rc;
        }
    }
    rc = ts_model_parse(m, tok_copy, tok_size, err);
    m->tokenizer.owned = tok_copy; /* freed with the model, even on failure */
    if (rc) {
        ts_model_free(m);
        return rc;
    }
    *out = m;
    return TS_OK;
}

void ts_model_free(ts_model *m) {
    if (!m) return;
    ts_tokenizer_free(&m->tokenizer);
    free(m->layers);
    ts_unmap_file(m->file, m->file_size, m->mapped, m->owned_file);
    free(m);
}

const ts_config *ts_model_config(const ts_model *m) { return &m->config; }
size_t ts_model_file_size(const ts_model *m) { return m->file_size; }

int ts_encode(const ts_model *m, const char *text, size_t len, int add_bos, int *ids, int max_ids, int *n_ids, ts_error *err) {
    const ts_tokenizer *t = &m->tokenizer;
    *n_ids = 0;
    if (t->kind == TS_TOK_NONE) return ts_fail(err, TS_E_ARG, "the model has no tokenizer: embed one, or give one with -z");
    if (len > (size_t)INT_MAX / 4) return ts_fail(err, TS_E_RANGE, "text of %zu bytes is too long to encode", len);
    /* encode into a buffer large enough for any result, then copy what fits */
    int *buf = (int *)malloc((len + 3) * sizeof(int));
    if (!buf) return ts_fail(err, TS_E_NOMEM, "out of memory");
    long n = 0;
    if (t->kind == TS_TOK_SENTENCEPIECE) n = ts_sentencepiece_encode(t, text, len, add_bos, buf);
    else {
        if (add_bos && t->bos_id >= 0) buf[n++] = t->bos_id;
        long k = ts_gpt2_encode(t, text, len, buf + n, (long)len + 1);
        n = k < 0 ? -1 : n + k;
    }
    if (n < 0) {
        free(buf);
        return ts_fail(err, TS_E_NOMEM, "out of memory while encoding");
    }
    memcpy(ids, buf, (size_t)(n < max_ids ? n : max_ids) * sizeof(int));
    free(buf);
    *n_ids = (int)n;
    return TS_OK;
}

const char *ts_token_bytes(const ts_model *m, int token, size_t *len) {
    const ts_tokenizer *t = &m->tokenizer;
    if (t->kind == TS_TOK_NONE || token < 0 || token >= t->vocab_size) {
        *len = 0;
        return NULL;
    }
    *len = (size_t)t->piece_len[token];
    return t->piece[token];
}

const char *ts_decode(const ts_model *m, int prev, int token, size_t *len) {
    const ts_tokenizer *t = &m->tokenizer;
    const char *p = ts_token_bytes(m, token, len);
    if (!p) {
        *len = 0;
        return "";
    }
    if (t->kind != TS_TOK_SENTENCEPIECE) return p; /* GPT-2: the bytes as they are */
    /* llama2.c: strip the space after BOS; byte tokens print as their byte; text stops at
     * a NUL (printf %s); a lone byte prints only if printable or white space. */
    if (prev == t->bos_id && *len > 0 && p[0] == ' ') p++, (*len)--;
    if (t->byte_value[token] >= 0) p = (const char *)t->byte_text + 2 * t->byte_value[token], *len = 1;
    size_t n = 0;
    while (n < *len && p[n] != '\0') n++;
    *len = n;
    if (n == 1 && !(isprint((unsigned char)p[0]) || isspace((unsigned char)p[0]))) *len = 0;
    return p;
}

int ts_session_new(ts_session **out, const ts_model *m, int max_positions, ts_error *err) {
    *out = NULL;
    const ts_config *c = &m->config;
    if (max_positions <= 0 || max_positions > c->seq_len) max_positions = c->seq_len;
    ts_session *s = (ts_session *)calloc(1, sizeof(ts_session));
    if (!s) return ts_fail(err, TS_E_NOMEM, "out of memory");
    s->model = m;
    s->max_positions = max_positions;
    s->batch = max_positions < TS_BATCH ? max_positions : TS_BATCH;
    s->rng_state = 1;
    size_t B = (size_t)s->batch, P = (size_t)max_positions, dim = (size_t)c->dim, hid = (size_t)c->hidden_dim;
    size_t q_dim = (size_t)c->n_heads * c->head_dim, kv_dim = (size_t)c->n_kv_heads * c->head_dim;
    size_t widest = dim > hid ? dim : hid;
    if (q_dim > widest) widest = q_dim;
    size_t gs = c->group_size > 0 ? (size_t)c->group_size : 1;
    /* one allocation, cut into named arrays (each rounded up to 64 bytes) */
    struct { void **ptr; size_t bytes; } parts[] = {
        {(void **)&s->x, B * dim * 4},
        {(void **)&s->xb, B * widest * 4},
        {(void **)&s->xb2, B * dim * 4},
        {(void **)&s->hb, B * hid * 4},
        {(void **)&s->hb2, B * hid * 4},
        {(void **)&s->q, B * q_dim * 4},
        {(void **)&s->att, B * c->n_heads * P * 4},
        {(void **)&s->logits, B * (size_t)c->vocab_size * 4},
        {(void **)&s->xq, B * widest},
        {(void **)&s->xq_scale, B * (widest / gs + 1) * 4},
        {(void **)&s->rope_cos, P * (c->head_dim / 2 + 1) * 4},
        {(void **)&s->rope_sin, P * (c->head_dim / 2 + 1) * 4},
        {(void **)&s->k, B * kv_dim * 4},
        {(void **)&s->key_cache, (size_t)c->n_layers * P * kv_dim * 4},
        {(void **)&s->value_cache, (size_t)c->n_layers * P * kv_dim * 4},
        {(void **)&s->probindex, (size_t)c->vocab_size * sizeof(ts_prob_index)},
    };
    size_t total = 0, n_parts = sizeof parts / sizeof parts[0];
    for (size_t i = 0; i < n_parts; i++) total += (parts[i].bytes + 63) / 64 * 64;
    unsigned char *mem = (unsigned char *)ts_aligned_alloc(total);
    if (!mem) {
        free(s);
        return ts_fail(err, TS_E_NOMEM, "out of memory allocating %zu bytes of session state", total);
    }
    s->memory = mem;
    for (size_t i = 0; i < n_parts; i++) {
        *parts[i].ptr = mem;
        mem += (parts[i].bytes + 63) / 64 * 64;
    }
    /* rotary angles, as llama2.c computes them: freq = 1 / theta^(2i / head_dim) */
    int half = c->head_dim / 2;
    for (int p = 0; p < max_positions; p++)
        for (int i = 0; i < half; i++) {
            float freq = 1.0f / powf(c->rope_theta, (float)(2 * i) / (float)c->head_dim);
            float val = (float)p * freq;
            s->rope_cos[(size_t)p * half + i] = cosf(val);
            s->rope_sin[(size_t)p * half + i] = sinf(val);
        }
    *out = s;
    return TS_OK;
}

void ts_session_free(ts_session *s) {
    if (!s) return;
    free(s->att_record);
    ts_aligned_free(s->memory);
    free(s);
}

int ts_session_max_positions(const ts_session *s) { return s->max_positions; }

static int ts_check_tokens(const ts_session *s, const int *tokens, int n, int pos, ts_error *err) {
    if (n < 1) return ts_fail(err, TS_E_ARG, "no tokens to run");
    if (pos < 0 || n > s->max_positions || pos > s->max_positions - n)
        return ts_fail(err, TS_E_RANGE, "positions %d..%d are outside this session's %d positions", pos, pos + n - 1, s->max_positions);
    for (int i = 0; i < n; i++)
        if (tokens[i] < 0 || tokens[i] >= s->model->config.vocab_size)
            return ts_fail(err, TS_E_RANGE, "token id %d is outside the vocabulary of %d", tokens[i], s->model->config.vocab_size);
    return TS_OK;
}

float *ts_forward(ts_session *s, const int *tokens, int n, int pos, ts_error *err) {
    if (ts_check_tokens(s, tokens, n, pos, err)) return NULL;
    for (int done = 0; done < n; done += s->batch) {
        int k = n - done < s->batch ? n - done : s->batch;
        ts_forward_block(s, tokens + done, k, pos + done, 0);
    }
    return s->logits;
}

int ts_forward_all(ts_session *s, const int *tokens, int n, int pos, float *out, ts_error *err) {
    int rc = ts_check_tokens(s, tokens, n, pos, err);
    if (rc) return rc;
    size_t V = (size_t)s->model->config.vocab_size;
    for (int done = 0; done < n; done += s->batch) {
        int k = n - done < s->batch ? n - done : s->batch;
        ts_forward_block(s, tokens + done, k, pos + done, 1);
        memcpy(out + (size_t)done * V, s->logits, (size_t)k * V * sizeof(float));
    }
    return TS_OK;
}

void ts_seed(ts_session *s, unsigned long long seed) { s->rng_state = seed ? seed : 1; }

int ts_sample(ts_session *s, float *logits, float temperature, float topp) {
    return ts_sample_logits(s, logits, temperature, topp);
}

int ts_generate(ts_session *s, const char *prompt, const ts_generate_opts *o, ts_piece_fn on_piece, void *user,
                ts_generate_stats *stats, ts_error *err) {
    const ts_model *m = s->model;
    int steps = o->steps, *ids = NULL, n_prompt = 0;
    if (stats) memset(stats, 0, sizeof *stats);
    if (!(o->temperature >= 0.0f) || !isfinite(o->temperature))
        return ts_fail(err, TS_E_ARG, "temperature %g must be a number >= 0", (double)o->temperature);
    if (!(o->topp >= 0.0f && o->topp <= 1.0f)) return ts_fail(err, TS_E_ARG, "top-p %g must be in [0, 1]", (double)o->topp);
    if (steps <= 0 || steps > m->config.seq_len) steps = m->config.seq_len;
    if (steps > s->max_positions) steps = s->max_positions;
    int rc = ts_prompt_tokens(m, prompt ? prompt : "", &ids, &n_prompt, err);
    if (rc) return rc;
    if (n_prompt > m->config.seq_len) {
        free(ids);
        return ts_fail(err, TS_E_RANGE, "the prompt is %d tokens, longer than the model's context of %d", n_prompt, m->config.seq_len);
    }
    if (n_prompt > s->max_positions) {
        free(ids);
        return ts_fail(err, TS_E_RANGE, "the prompt is %d tokens, longer than the session's %d positions", n_prompt, s->max_positions);
    }
    ts_seed(s, o->seed);
    /* the prompt in blocks; as llama2.c, positions past `steps` are never run */
    int n_feed = n_prompt < steps ? n_prompt : steps;
    double t0 = ts_now();
    float *logits = ts_forward(s, ids, n_feed, 0, err);
    double t1 = ts_now();
    int token = ids[0], pos = 0, stopped = 0, generated = 0;
    while (pos < steps && logits) {
        int next;
        if (pos < n_prompt - 1) next = ids[pos + 1];
        else {
            if (pos >= n_feed) logits = ts_forward(s, &token, 1, pos, err);
            if (!logits) break;
            next = ts_sample_logits(s, logits, o->temperature, o->topp);
            generated++;
        }
        pos++;
        if (next == m->config.bos_id || (m->tokenizer.kind == TS_TOK_GPT2 && next == m->config.eos_id)) break;
        size_t len;
        const char *piece = ts_decode(m, token, next, &len);
        if (on_piece && on_piece(user, next, piece, len)) {
            stopped = 1;
            break;
        }
        token = next;
    }
    (void)stopped;
    double t2 = ts_now();
    free(ids);
    if (stats) {
        stats->prompt_tokens = n_feed;
        stats->generated_tokens = generated;
        stats->positions = pos;
        stats->prompt_seconds = t1 - t0;
        stats->generate_seconds = t2 - t1;
    }
    return logits ? TS_OK : (err ? err->code : TS_E_ARG);
}

int ts_perplexity(ts_session *s, const char *text, size_t len, long *n_tokens, double *mean_nll,
                  void (*progress)(void *user, long done, long total), void *user, ts_error *err) {
    const ts_model *m = s->model;
    int V = m->config.vocab_size, L = s->max_positions;
    *n_tokens = 0;
    *mean_nll = 0.0;
    if (m->tokenizer.kind == TS_TOK_NONE) return ts_fail(err, TS_E_ARG, "the model has no tokenizer: embed one, or give one with -z");
    if (len > (size_t)INT_MAX / 4 - 4) return ts_fail(err, TS_E_RANGE, "text of %zu bytes is too long", len);
    int *ids = (int *)malloc((len + 4) * sizeof(int));
    float *logits = (float *)malloc((size_t)s->batch * V * sizeof(float));
    if (!ids || !logits) {
        free(ids), free(logits);
        return ts_fail(err, TS_E_NOMEM, "out of memory");
    }
    int n = 0, rc;
    if (m->tokenizer.kind == TS_TOK_GPT2 && m->config.bos_id >= 0) { /* <|endoftext|> starts a document */
        ids[0] = m->config.bos_id;
        rc = ts_encode(m, text, len, 0, ids + 1, (int)len + 3, &n, err);
        n++;
    } else rc = ts_encode(m, text, len, 1, ids, (int)len + 4, &n, err);
    double nll = 0.0;
    long predicted = 0;
    for (int start = 0; rc == TS_OK && start < n; start += L) {
        int chunk = n - start < L ? n - start : L;
        /* every token of the chunk but the first is predicted from the ones before it */
        for (int done = 0; rc == TS_OK && done < chunk; done += s->batch) {
            int k = chunk - done < s->batch ? chunk - done : s->batch;
            rc = ts_forward_all(s, ids + start + done, k, done, logits, err);
            for (int t = 0; rc == TS_OK && t < k; t++) {
                int target_at = done + t + 1;
                if (target_at >= chunk) break;
                float *row = logits + (size_t)t * V;
                float max_val = row[0];
                for (int i = 1; i < V; i++) max_val = row[i] > max_val ? row[i] : max_val;
                double sum = 0.0;
                for (int i = 0; i < V; i++) sum += exp((double)row[i] - max_val);
                nll += log(sum) + max_val - row[ids[start + target_at]];
                predicted++;
            }
        }
        if (progress) progress(user, start + chunk, n);
    }
    free(ids);
    free(logits);
    if (rc) return rc;
    *n_tokens = n;
    *mean_nll = predicted > 0 ? nll / (double)predicted : 0.0;
    return TS_OK;
}

/* ==========================================================================
 * 7. Command line
 *
 * ./run MODEL [options], compatible with llama2.c's run, plus modes for tests and study.
 * Only this section prints and picks exit codes.
 * ========================================================================== */
#ifndef RUN_NO_MAIN

static void ts_usage(FILE *f) {
    fprintf(f,
            "Usage:   run <checkpoint> [options]\n"
            "Example: run model.bin -n 256 -i \"Once upon a time\"\n"
            "Options:\n"
            "  -t <float>  temperature in [0,inf), default 1.0 (0 = greedy)\n"
            "  -p <float>  p value in top-p (nucleus) sampling in [0,1], default 0.9\n"
            "  -s <int>    random seed, default time(NULL)\n"
            "  -n <int>    number of steps to run for, default 256. 0 = max_seq_len\n"
            "  -i <string> input prompt\n"
            "  -z <string> optional path to custom tokenizer (default: the model's own, else tokenizer.bin)\n"
            "  -m <string> mode: generate|chat|tokenize|logits|ppl, default: generate\n"
            "  -y <string> (optional) system prompt in chat mode\n"
            "  -f <file>   text file for -m ppl, or to encode with -m tokenize\n"
            "  --ids <file> --out <file>  token ids in, float32 logits out, for -m logits\n");
}

/* Parses a whole string as a number; rejects junk, NaN and out-of-range values. */
static int ts_parse_float(const char *s, float *out) {
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (end == s || *end != '\0' || errno == ERANGE || !isfinite(v) || fabs(v) > FLT_MAX) return 0;
    *out = (float)v;
    return 1;
}
static int ts_parse_long(const char *s, long long lo, long long hi, long long *out) {
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (end == s || *end != '\0' || errno == ERANGE || v < lo || v > hi) return 0;
    *out = v;
    return 1;
}

typedef struct {
    const char *checkpoint, *tokenizer, *prompt, *mode, *system_prompt, *ids_path, *out_path, *text_path, *viz_path;
    float temperature, topp;
    long long seed;
    int steps;
} ts_args;

/* Fills args from argv; on error writes a message and returns non-zero. */
static int ts_parse_args(int argc, char **argv, ts_args *a, char *msg, size_t msg_len) {
    memset(a, 0, sizeof *a);
    a->temperature = 1.0f, a->topp = 0.9f, a->steps = 256, a->mode = "generate";
    if (argc < 2) return snprintf(msg, msg_len, "missing the model file"), 1;
    a->checkpoint = argv[1];
    for (int i = 2; i < argc; i += 2) {
        const char *flag = argv[i], *val = i + 1 < argc ? argv[i + 1] : NULL;
        if (flag[0] != '-') return snprintf(msg, msg_len, "unexpected argument '%s' (options start with -)", flag), 1;
        if (!val) return snprintf(msg, msg_len, "option %s needs a value", flag), 1;
        long long v;
        if (!strcmp(flag, "-t")) {
            if (!ts_parse_float(val, &a->temperature) || a->temperature < 0.0f)
                return snprintf(msg, msg_len, "bad temperature '%s' for -t: must be a number >= 0", val), 1;
        } else if (!strcmp(flag, "-p")) {
            if (!ts_parse_float(val, &a->topp) || a->topp < 0.0f || a->topp > 1.0f)
                return snprintf(msg, msg_len, "bad top-p '%s' for -p: must be a number in [0, 1]", val), 1;
        } else if (!strcmp(flag, "-s")) {
            if (!ts_parse_long(val, 0, LLONG_MAX, &v))
                return snprintf(msg, msg_len, "bad seed '%s' for -s: must be a whole number >= 0", val), 1;
            a->seed = v;
        } else if (!strcmp(flag, "-n")) {
            if (!ts_parse_long(val, 0, INT_MAX, &v))
                return snprintf(msg, msg_len, "bad step count '%s' for -n: must be a whole number >= 0", val), 1;
            a->steps = (int)v;
        } else if (!strcmp(flag, "-i")) a->prompt = val;
        else if (!strcmp(flag, "-z")) a->tokenizer = val;
        else if (!strcmp(flag, "-m")) a->mode = val;
        else if (!strcmp(flag, "-y")) a->system_prompt = val;
        else if (!strcmp(flag, "-f")) a->text_path = val;
        else if (!strcmp(flag, "--ids")) a->ids_path = val;
        else if (!strcmp(flag, "--out")) a->out_path = val;
        else if (!strcmp(flag, "--viz")) a->viz_path = val;
        else return snprintf(msg, msg_len, "unknown option '%s'", flag), 1;
    }
    const char *modes[] = {"generate", "chat", "tokenize", "logits", "ppl"};
    int known = 0;
    for (size_t i = 0; i < sizeof modes / sizeof modes[0]; i++) known |= !strcmp(a->mode, modes[i]);
    if (!known) return snprintf(msg, msg_len, "unknown mode '%s' for -m (generate, chat, tokenize, logits, ppl)", a->mode), 1;
    if (!strcmp(a->mode, "logits") && (!a->ids_path || !a->out_path))
        return snprintf(msg, msg_len, "-m logits needs --ids FILE and --out FILE"), 1;
    if (!strcmp(a->mode, "ppl") && !a->text_path) return snprintf(msg, msg_len, "-m ppl needs -f FILE"), 1;
    return 0;
}

static int ts_die(const char *what) {
    fprintf(stderr, "run: %s\n", what);
    return 1;
}

/* llama2.c prints each piece as it comes. */
static int ts_print_piece(void *user, int token, const char *piece, size_t len) {
    (void)user, (void)token;
    fwrite(piece, 1, len, stdout);
    fflush(stdout);
    return 0;
}

static int ts_run_generate(ts_session *s, const ts_args *a, unsigned long long seed) {
    ts_generate_opts o = {a->temperature, a->topp, seed, a->steps};
    ts_generate_stats st;
    ts_error err = {0, ""};
    int rc = ts_generate(s, a->prompt, &o, ts_print_piece, NULL, &st, &err);
    if (rc) return ts_die(err.msg);
    printf("\n");
    fflush(stdout);
    if (st.positions > 1) {
        /* llama2.c's line: positions after the first, per second of wall time */
        double secs = st.prompt_seconds + st.generate_seconds;
        fprintf(stderr, "achieved tok/s: %f\n", secs > 0 ? (st.positions - 1) / secs : 0.0);
        fprintf(stderr, "prompt: %d tokens in %.3f s (%.1f tok/s), generated: %d tokens in %.3f s (%.1f tok/s)\n",
                st.prompt_tokens, st.prompt_seconds, st.prompt_seconds > 0 ? st.prompt_tokens / st.prompt_seconds : 0.0,
                st.generated_tokens, st.generate_seconds,
                st.generate_seconds > 0 ? st.generated_tokens / st.generate_seconds : 0.0);
    }
    return 0;
}

/* llama2.c's chat loop for Llama 2 chat models: [INST] prompts, the model answers until EOS. */
static int ts_read_line(const char *guide, char *buf, size_t size) {
    printf("%s", guide);
    fflush(stdout);
    if (!fgets(buf, (int)size, stdin)) return 0;
    size_t len = strlen(buf);
    if (len > 0 && buf[len - 1] == '\n') buf[len - 1] = '\0';
    return 1;
}

static int ts_run_chat(ts_session *s, const ts_args *a, unsigned long long seed) {
    const ts_model *m = s->model;
    char system_prompt[512] = "", user_prompt[512] = "", rendered[1152];
    int steps = a->steps <= 0 || a->steps > s->max_positions ? s->max_positions : a->steps;
    int *ids = (int *)malloc(sizeof(int) * (sizeof rendered + 3));
    int n_ids = 0, user_idx = 0, user_turn = 1, next = 0, token, pos = 0, eos = m->config.eos_id;
    ts_error err = {0, ""};
    if (!ids) return ts_die("out of memory");
    ts_seed(s, seed);
    while (pos < steps) {
        if (user_turn) {
            if (pos == 0) {
                if (a->system_prompt) snprintf(system_prompt, sizeof system_prompt, "%s", a->system_prompt);
                else if (!ts_read_line("Enter system prompt (optional): ", system_prompt, sizeof system_prompt)) break;
            }
            if (pos == 0 && a->prompt) snprintf(user_prompt, sizeof user_prompt, "%s", a->prompt);
            else if (!ts_read_line("User: ", user_prompt, sizeof user_prompt)) break;
            if (pos == 0 && system_prompt[0] != '\0')
                snprintf(rendered, sizeof rendered, "[INST] <<SYS>>\n%s\n<</SYS>>\n\n%s [/INST]", system_prompt, user_prompt);
            else snprintf(rendered, sizeof rendered, "[INST] %s [/INST]", user_prompt);
            if (ts_encode(m, rendered, strlen(rendered), 1, ids, (int)sizeof rendered + 3, &n_ids, &err)) break;
            user_idx = 0, user_turn = 0;
            printf("Assistant: ");
        }
        token = user_idx < n_ids ? ids[user_idx++] : next;
        if (token == eos) user_turn = 1;
        float *logits = ts_forward(s, &token, 1, pos, &err);
        if (!logits) break;
        next = ts_sample_logits(s, logits, a->temperature, a->topp);
        pos++;
        if (user_idx >= n_ids && next != eos) {
            size_t len;
            const char *piece = ts_decode(m, token, next, &len);
            ts_print_piece(NULL, next, piece, len);
        }
        if (next == eos) printf("\n");
    }
    printf("\n");
    free(ids);
    if (err.msg[0]) return ts_die(err.msg);
    return 0;
}

static char *ts_slurp(const char *path, size_t *len, char *msg, size_t msg_len);

/* Prints the ids of the -i text, or of the file given with -f (too long for a command line). */
static int ts_run_tokenize(const ts_model *m, const ts_args *a) {
    char msg[512];
    size_t len;
    char *file = a->text_path ? ts_slurp(a->text_path, &len, msg, sizeof msg) : NULL;
    if (a->text_path && !file) return ts_die(msg);
    const char *text = file ? file : a->prompt ? a->prompt : "";
    if (!file) len = strlen(text);
    int *ids = len < (size_t)INT_MAX / 4 - 3 ? (int *)malloc((len + 3) * sizeof(int)) : NULL, n = 0;
    ts_error err = {0, ""};
    if (!ids) {
        free(file);
        return ts_die("out of memory");
    }
    if (ts_encode(m, text, len, 0, ids, (int)len + 3, &n, &err)) {
        free(ids), free(file);
        return ts_die(err.msg);
    }
    for (int i = 0; i < n; i++) printf(i ? " %d" : "%d", ids[i]);
    printf("\n");
    free(ids), free(file);
    return 0;
}

/* Reads a whole file into a NUL-terminated malloc'ed buffer. */
static char *ts_slurp(const char *path, size_t *len, char *msg, size_t msg_len) {
    FILE *f = fopen(path, "rb");
    if (!f) return snprintf(msg, msg_len, "cannot open %s: %s", path, strerror(errno)), NULL;
    size_t cap = 1 << 16, n = 0;
    char *buf = (char *)malloc(cap + 1);
    while (buf) {
        size_t got = fread(buf + n, 1, cap - n, f);
        n += got;
        if (n < cap) break;
        char *bigger = cap > SIZE_MAX / 4 ? NULL : (char *)realloc(buf, cap * 2 + 1);
        if (!bigger) free(buf);
        buf = bigger, cap *= 2;
    }
    int failed = ferror(f);
    fclose(f);
    if (!buf) return snprintf(msg, msg_len, "out of memory reading %s", path), NULL;
    if (failed) {
        free(buf);
        return snprintf(msg, msg_len, "cannot read %s", path), NULL;
    }
    buf[n] = '\0';
    *len = n;
    return buf;
}

static int ts_run_logits(ts_session *s, const ts_args *a) {
    const ts_config *c = &s->model->config;
    char msg[512];
    size_t len;
    char *text = ts_slurp(a->ids_path, &len, msg, sizeof msg);
    if (!text) return ts_die(msg);
    int n = 0, cap = 1024;
    int *ids = (int *)malloc((size_t)cap * sizeof(int));
    char *p = text;
    for (;;) {
        while (*p && isspace((unsigned char)*p)) p++;
        if (!*p) break;
        char *end;
        errno = 0;
        long v = strtol(p, &end, 10);
        if (end == p || (*end && !isspace((unsigned char)*end)) || errno == ERANGE || v < 0 || v >= c->vocab_size) {
            snprintf(msg, sizeof msg, "%s: token %d is '%.20s', not an id in 0..%d", a->ids_path, n + 1, p, c->vocab_size - 1);
            free(ids), free(text);
            return ts_die(msg);
        }
        if (n == cap) {
            int *bigger = (int *)realloc(ids, (size_t)cap * 2 * sizeof(int));
            if (!bigger) break;
            ids = bigger, cap *= 2;
        }
        ids[n++] = (int)v;
        p = end;
    }
    free(text);
    if (n == 0) {
        free(ids);
        return ts_die("the ids file holds no token ids");
    }
    if (n > s->max_positions) {
        snprintf(msg, sizeof msg, "%d token ids are more than the model's context of %d", n, s->max_positions);
        free(ids);
        return ts_die(msg);
    }
    float *logits = (float *)malloc((size_t)n * c->vocab_size * sizeof(float));
    ts_error err = {0, ""};
    if (!logits || ts_forward_all(s, ids, n, 0, logits, &err)) {
        free(ids), free(logits);
        return ts_die(logits ? err.msg : "out of memory");
    }
    FILE *f = fopen(a->out_path, "wb");
    int ok = f != NULL;
    for (size_t i = 0; ok && i < (size_t)n * c->vocab_size; i++) { /* float32 little-endian */
        uint32_t bits;
        memcpy(&bits, &logits[i], 4);
        unsigned char b[4] = {(unsigned char)bits, (unsigned char)(bits >> 8), (unsigned char)(bits >> 16), (unsigned char)(bits >> 24)};
        ok = fwrite(b, 1, 4, f) == 4;
    }
    if (f && fclose(f) != 0) ok = 0;
    free(ids), free(logits);
    if (!ok) {
        snprintf(msg, sizeof msg, "cannot write %s: %s", a->out_path, strerror(errno));
        return ts_die(msg);
    }
    return 0;
}

static void ts_ppl_progress(void *user, long done, long total) {
    (void)user;
    fprintf(stderr, "\rppl: %ld / %ld tokens", done, total);
    if (done == total) fprintf(stderr, "\n");
}

static int ts_run_ppl(ts_session *s, const ts_args *a) {
    char msg[512];
    size_t len;
    char *text = ts_slurp(a->text_path, &len, msg, sizeof msg);
    if (!text) return ts_die(msg);
    long n;
    double loss;
    ts_error err = {0, ""};
    int rc = ts_perplexity(s, text, len, &n, &loss, ts_ppl_progress, NULL, &err);
    free(text);
    if (rc) return ts_die(err.msg);
    printf("tokens: %ld\nloss: %.6f\nperplexity: %.6f\n", n, loss, exp(loss));
    return 0;
}

/* Does the model file carry its own tokenizer? (peeks at the TSMF header) */
static int ts_file_has_tokenizer(const char *path) {
    unsigned char h[84];
    FILE *f = fopen(path, "rb");
    if (!f) return 0;
    size_t got = fread(h, 1, sizeof h, f);
    fclose(f);
    return got == sizeof h && memcmp(h, "TSMF", 4) == 0 && ts_read_i32(h + 80) != TS_TOK_NONE;
}

int main(int argc, char **argv) {
    ts_args a;
    char msg[512];
    if (argc >= 2 && (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help"))) {
        ts_usage(stdout);
        return 0;
    }
    if (ts_parse_args(argc, argv, &a, msg, sizeof msg)) {
        fprintf(stderr, "run: %s\n", msg);
        ts_usage(stderr);
        return 1;
    }
    /* the tokenizer: -z, else the model's own, else tokenizer.bin (llama2.c's default) */
    const char *tok_path = a.tokenizer;
    if (!tok_path && !ts_file_has_tokenizer(a.checkpoint) && strcmp(a.mode, "logits") != 0) tok_path = "tokenizer.bin";
    ts_model *m;
    ts_error err = {0, ""};
    if (ts_model_load(&m, a.checkpoint, tok_path, &err)) return ts_die(err.msg);
    const ts_config *c = ts_model_config(m);
    int steps = a.steps == 0 || a.steps > c->seq_len ? c->seq_len : a.steps;
    int positions = !strcmp(a.mode, "generate") ? steps : c->seq_len;
    ts_session *s;
    if (ts_session_new(&s, m, positions, &err)) {
        ts_model_free(m);
        return ts_die(err.msg);
    }
    unsigned long long seed = a.seed > 0 ? (unsigned long long)a.seed : (unsigned long long)time(NULL);
    int rc;
    if (!strcmp(a.mode, "generate")) rc = ts_run_generate(s, &a, seed);
    else if (!strcmp(a.mode, "chat")) rc = ts_run_chat(s, &a, seed);
    else if (!strcmp(a.mode, "tokenize")) rc = ts_run_tokenize(m, &a);
    else if (!strcmp(a.mode, "logits")) rc = ts_run_logits(s, &a);
    else rc = ts_run_ppl(s, &a);
    ts_session_free(s);
    ts_model_free(m);
    return rc;
}
#endif /* RUN_NO_MAIN */
#endif /* RUN_C_IMPLEMENTATION_DONE */
