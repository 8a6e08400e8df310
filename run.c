/* run.c -- TinyStories language models in one file of C.
 *
 * Build the tool:     cc -O3 -march=native -ffp-contract=off -fopenmp -o run run.c -lm
 *                     (what `make` does: SIMD kernels for this CPU, threads; any C99
 *                     compiler builds it without the flags: plain loops, one thread)
 * Tell a story:       ./run stories15M.bin -z tokenizer.bin -i "Once upon a time"
 * Use as a library:   #define RUN_NO_MAIN
 *                     #include "run.c"                   (see "Library API" below)
 *                     in one file of the program; in its other files
 *                     #define RUN_HEADER_ONLY
 *                     #include "run.c"                   (the declarations alone)
 *
 * Contents, in reading order (a first reading: 0 to 4, the transformer in plain C):
 *   0. Library API          the public declarations (prefix ts_), error handling
 *   1. The model in memory  config, weight matrices, layers, a session's arrays
 *   2. Transformer          the forward pass in plain C: Llama (RMSNorm, RoPE, GQA,
 *                           SwiGLU) and GPT-Neo (LayerNorm, learned positions, local
 *                           attention, GELU); matrix products for f32, bf16 and Q8_0
 *   3. Sampler              greedy, temperature, top-p; llama2.c's random number generator
 *   4. Generation           ts_forward, ts_sample, ts_generate, perplexity
 *   5. Appendix: the fast engine   every SIMD kernel (AVX-512, AVX2, NEON, WebAssembly
 *                           SIMD128), behind the hooks of section 2
 *   6. Tokenizers           SentencePiece BPE (Llama 2) and GPT-2 byte-level BPE
 *   7. Model files          llama2.c legacy / v1 / v2 files and our TSMF format,
 *                           memory-mapped, every size checked
 *   8. Library functions    loading, sessions, encoding: the rest of the API
 *   9. Command line         ./run MODEL [options]: parsing, messages
 *  10. Looking inside       -m inspect, --viz
 *  11. The program          the modes and main
 *  12. Data                 the GPT-2 pre-tokenizer's Unicode tables, the page's CSS
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
#if !defined(_WIN32) && !defined(__wasi__) && !defined(RUN_NO_MMAP) /* WebAssembly (WASI) has no mmap: files are read */
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
#define TS_PRAGMA(x)
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
#elif !defined(TS_PLAIN_KERNELS) && defined(__aarch64__) && defined(__ARM_NEON)
#define TS_NEON 1
#include <arm_neon.h>
#elif !defined(TS_PLAIN_KERNELS) && defined(__wasm_simd128__)
#define TS_WASM 1 /* not TS_SIMD: its products give the plain loops' bits (section 5) */
#include <wasm_simd128.h>
#endif
#if defined(TS_AVX512) || defined(TS_AVX2) || defined(TS_NEON)
#define TS_SIMD 1
#endif
/* The kernel path this file was built with, as ./run's statistics name it. */
#if defined(TS_AVX512)
#define TS_KERNEL_PATH "avx512"
#elif defined(TS_AVX2)
#define TS_KERNEL_PATH "avx2"
#elif defined(TS_NEON) && defined(__ARM_FEATURE_DOTPROD)
#define TS_KERNEL_PATH "neon (dotprod)"
#elif defined(TS_NEON)
#define TS_KERNEL_PATH "neon"
#elif defined(TS_WASM)
#define TS_KERNEL_PATH "wasm simd128"
#else
#define TS_KERNEL_PATH "plain"
#endif
#if defined(__GNUC__)
#define TS_INLINE static inline __attribute__((always_inline))
#define TS_UNROLL(n) TS_PRAGMA_(GCC unroll n) /* gcc and clang: unroll the next loop n times */
#define TS_PRAGMA_(x) _Pragma(#x)
#define TS_MAYBE_UNUSED __attribute__((unused))
#else
#define TS_INLINE static inline
#define TS_UNROLL(n)
#define TS_MAYBE_UNUSED
#endif

/* ==========================================================================
 * 0. Library API
 *
 * Every fallible function returns 0 on success or a negative TS_E* code, and writes a
 * one-line message into the caller's ts_error (which may be NULL). Nothing here prints,
 * exits or aborts. A ts_model is read-only once loaded; each ts_session holds the mutable
 * state of one conversation (KV cache, activations, sampler), so sessions on one model
 * may run on different threads at once. The smallest program: examples/hello.c.
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

/* Called for each piece of text generate produces (the prompt's tokens after the first,
 * then sampled ones): the token and the bytes to print for it. Return non-zero to stop. */
typedef int (*ts_piece_fn)(void *user, int token, const char *piece, size_t len);
/* Called before each token is sampled, with the logits it will be drawn from (vocab_size
 * floats) and the position of the token they follow. It may change them (ban a token, ...). */
typedef void (*ts_logits_fn)(void *user, int pos, float *logits);

/* A zeroed struct but for temperature and topp samples as llama2.c does. The filters run in
 * this order before llama2.c's draw: repetition penalty, top-k, temperature, min-p, top-p. */
typedef struct ts_generate_opts {
    float temperature;          /* >= 0; 0 = greedy */
    float topp;                 /* nucleus threshold in [0, 1]; 0 or 1 = sample the full distribution */
    unsigned long long seed;    /* random number generator state (0 is taken as 1) */
    int steps;                  /* positions to run, prompt included; 0 or > max positions = all */
    ts_logits_fn on_logits;     /* optional, may be NULL */
    int top_k;                  /* >= 0: keep the k most likely tokens (ties: the lower id); 0 = all */
    float min_p;                /* in [0, 1]: keep tokens of probability >= min_p x the most likely one's */
    float repeat_penalty;       /* > 0, 0 = off: a logit of a token among the last repeat_last_n is
                                 * divided by it if positive, multiplied if negative (llama.cpp's rule) */
    int repeat_last_n;          /* tokens the penalty looks back over, prompt included; 0 = 64 */
    const char *const *stop;    /* n_stop strings: generation ends before the first occurrence of any in
                                 * the generated text (not printed; one split across tokens too) */
    int n_stop;
} ts_generate_opts;

typedef struct ts_generate_stats {
    int prompt_tokens, generated_tokens, positions;
    double prompt_seconds, generate_seconds;
    int slides;                 /* times the window slid (steps past the session's positions) */
} ts_generate_stats;

/* Loading. tokenizer_path (or tok_data) may be NULL to use the tokenizer embedded in the
 * model file, if any (without one, the model runs token ids only). ts_model_load maps the
 * file (reads it where there is no mmap). ts_model_load_memory uses the caller's buffers in
 * place, never writing to them (a model compiled into a program works): they must stay
 * valid, 4-byte aligned (64 for best speed), until ts_model_free. A loaded model is never
 * written again: any number of sessions, on any threads, may use it at once. */
int  ts_model_load(ts_model **out, const char *path, const char *tokenizer_path, ts_error *err);
int  ts_model_load_memory(ts_model **out, const void *data, size_t size,
                          const void *tok_data, size_t tok_size, ts_error *err);
void ts_model_free(ts_model *m);                     /* NULL is fine; sessions must go first */
const ts_config *ts_model_config(const ts_model *m); /* sizes, ids of BOS/EOS, ... */
/* The kernel path this file was compiled with: "avx512", "avx2", "neon", "neon (dotprod)"
 * or "plain". Every path but "plain" gives the same bits (see "A float dot product's order"). */
const char *ts_kernel_path(void);
size_t ts_model_file_size(const ts_model *m);

/* Tokenizer. ts_encode writes at most max_ids ids and sets *n_ids to the full count (if it
 * exceeds max_ids, call again with more room; ids may be NULL when max_ids is 0); add_bos
 * puts the model's BOS first. The text is bytes (len of them; NUL is a byte like others). */
int  ts_encode(const ts_model *m, const char *text, size_t len, int add_bos,
               int *ids, int max_ids, int *n_ids, ts_error *err);
/* The bytes to print for `token` following `prev` (llama2.c's rules: no space after BOS,
 * byte tokens as their byte, unprintable single bytes dropped). Never NULL: an id out of
 * range gives "" (length 0). The bytes belong to the model. */
const char *ts_decode(const ts_model *m, int prev, int token, size_t *len);
/* The raw bytes a token stands for ("<0x0A>" for a byte token). NULL if the id is out of
 * range or the model has no tokenizer. */
const char *ts_token_bytes(const ts_model *m, int token, size_t *len);

/* Sessions: the mutable state of one text (KV cache, activations, random generator). One
 * session belongs to one thread at a time. max_positions bounds the KV cache; 0 (or more
 * than the model's seq_len) = seq_len. A session beyond physical memory is refused. */
int  ts_session_new(ts_session **out, const ts_model *m, int max_positions, ts_error *err);
void ts_session_free(ts_session *s);                 /* NULL is fine */
int  ts_session_max_positions(const ts_session *s);
/* A second session in the state of the first (its cache, generator, recordings, ablations):
 * many continuations of one text without running it again. */
int  ts_session_copy(ts_session **out, const ts_session *src, ts_error *err);
/* Runs the prompt as ts_generate(s, prompt, opts, ...) would (the positions opts->steps
 * lets it feed), so that ts_generate on s, or on a copy of s, with the same prompt and steps
 * starts sampling at once. Anything else run on the session after it undoes that. */
int  ts_session_prefill(ts_session *s, const char *prompt, const ts_generate_opts *opts, ts_error *err);
/* Runs n >= 1 tokens at positions pos .. pos+n-1 (pos + n <= max_positions; the cache must
 * already hold positions < pos: run a text from 0, or overwrite from any earlier position).
 * Returns the logits of the last token (vocab_size floats, owned by the session, valid until
 * its next call), or NULL with err set. A token gets the same logits, to the bit, whether
 * it runs alone or in a block, on one thread or many. */
float *ts_forward(ts_session *s, const int *tokens, int n, int pos, ts_error *err);
/* As ts_forward, but writes the logits of every token to out (n rows of vocab_size). */
int  ts_forward_all(ts_session *s, const int *tokens, int n, int pos, float *out, ts_error *err);
/* Sampling with the session's generator, as llama2.c: temperature 0 = the most likely
 * token, else softmax(logits / temperature), then top-p (0 or 1 = the whole distribution).
 * Changes logits in place (copy them first to keep them). Returns the token id, or a
 * negative TS_E_ARG for a bad temperature or top-p. */
void ts_seed(ts_session *s, unsigned long long seed); /* 0 is taken as 1 */
int  ts_sample(ts_session *s, float *logits, float temperature, float topp, ts_error *err);
/* The k most likely tokens of logits (n of them) and their probabilities (softmax at
 * temperature 1), most likely first, ties to the lower id; logits are not changed. Writes
 * min(k, n) entries to ids and probs (probs may be NULL) and returns that count. */
int  ts_top_k(const float *logits, int n, int k, int *ids, float *probs);
/* Encodes the prompt (NULL = ""; BOS first for Llama tokenizers; GPT-2 prompts start bare,
 * an empty one from <|endoftext|>), runs it and samples until `steps` positions, BOS/EOS,
 * or the callback asks to stop. Pieces are the bytes llama2.c would print. stats may be
 * NULL. Returns 0 also when the callback stopped it. steps 0 runs the session's positions;
 * more steps than those continue the story past them: when the cache is full, the last half
 * of the tokens is run again as a block from position 0 (the window slides) and sampling
 * goes on from there; until then nothing differs. */
int  ts_generate(ts_session *s, const char *prompt, const ts_generate_opts *opts,
                 ts_piece_fn on_piece, void *user, ts_generate_stats *stats, ts_error *err);
/* Perplexity of a text: BOS + encode(text), cut into chunks of max_positions tokens (the
 * model's seq_len for a full session), each run from position 0 with an empty cache; every
 * token of a chunk but its first is predicted from those before it. Sets the token count
 * and the mean negative log-likelihood of the predicted tokens in nats (perplexity =
 * exp(mean_nll)). progress (may be NULL) is called after each chunk. A text with no token
 * to predict (empty: BOS alone) is an error (TS_E_ARG), not a perplexity of 1. */
int  ts_perplexity(ts_session *s, const char *text, size_t len, long *n_tokens,
                   double *mean_nll, void (*progress)(void *user, long done, long total),
                   void *user, ts_error *err);
/* Looking inside. After ts_session_record_attention(s, n) (1 <= n <= max_positions), every
 * forward pass keeps the attention weights of positions < n; n = 0 stops and frees them.
 * ts_session_attention returns them as (n_layers, n_heads, n, n) floats, [l][h][q][k] the
 * weight the token at position q gave the one at k in layer l, head h (rows of positions
 * that ran sum to 1; 0 where k > q or outside a local window), or NULL when not recording. */
int  ts_session_record_attention(ts_session *s, int n_positions, ts_error *err);
const float *ts_session_attention(const ts_session *s, int *n_positions);
/* After ts_session_record_internals(s, n), every forward pass also keeps, for positions < n,
 * the residual stream entering each layer and after the last (before the final norm),
 * (n_layers + 1, n, dim), and the MLP activations, the input of the down projection
 * (Llama: silu(W1 x) * W3 x; GPT-Neo: gelu(W_fc x + b)), (n_layers, n, hidden_dim); n = 0
 * stops. The logit lens: ts_logit_lens applies the final norm and the classifier to n rows
 * of dim floats (a residual of any layer), giving n rows of vocab_size logits. */
int  ts_session_record_internals(ts_session *s, int n_positions, ts_error *err);
const float *ts_session_residual(const ts_session *s, int *n_positions);
const float *ts_session_mlp(const ts_session *s, int *n_positions);
int  ts_logit_lens(ts_session *s, const float *resid, int n, float *logits, ts_error *err);
/* Ablation: switch a part off (on = 1) or back on (0) for every later forward pass of the
 * session. TS_ABLATE_HEAD zeroes head `index` of `layer` (its slice of the attention
 * output, before the output projection); TS_ABLATE_NEURON zeroes MLP activation `index`.
 * Layers, heads and neurons count from 0; out of range is TS_E_RANGE. */
enum { TS_ABLATE_HEAD = 1, TS_ABLATE_NEURON = 2 };
int  ts_session_ablate(ts_session *s, int kind, int layer, int index, int on, ts_error *err);

#endif /* RUN_C_INCLUDED */

/* RUN_HEADER_ONLY: the declarations above and nothing more, for the other files of a
 * program whose one file includes run.c with RUN_NO_MAIN (stb-style). */
#if !defined(RUN_HEADER_ONLY) && !defined(RUN_C_IMPLEMENTATION_DONE)
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

/* Little-endian integers and floats of a file, whatever the machine. */
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

/* ==========================================================================
 * 1. The model in memory
 *
 * A model is its config and pointers into the mapped file: a weight matrix per
 * projection, grouped by layer, and the tokenizer. It is read-only once loaded; all that
 * changes while a text runs (activations, KV cache, sampler) lives in a ts_session, cut
 * from one allocation. Section 7 fills a ts_model from a file; section 8 allocates a session.
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

/* Tokenizer state (section 6); declared here because the model owns it. */
typedef struct {
    int32_t *slot;              /* item numbers, -1 = empty; a power of two of them */
    size_t mask;                /* slots - 1 */
} ts_hash;
typedef struct { int32_t left, right, result; } ts_merge; /* GPT-2: left + right -> result */
typedef struct {
    int kind;                   /* TS_TOK_* */
    int vocab_size;
    const char **piece;         /* (vocab_size) token bytes, not NUL-terminated */
    int *piece_len;             /* (vocab_size) */
    int longest_piece;          /* the largest piece_len */
    int byte_token[256];        /* id of the token for a single byte, or -1 */
    int bos_id, eos_id, space_id;
    unsigned char byte_text[512]; /* byte b as a NUL-terminated string at 2*b */
    /* SentencePiece */
    float *score;               /* (vocab_size) merge scores */
    short *byte_value;          /* (vocab_size) byte a "<0xXX>" token stands for, or -1 */
    ts_hash pieces;             /* piece bytes -> id */
    unsigned char *pair_seen;   /* (65536 bits) byte pairs (a, b) that occur as "ab" in a piece */
    /* GPT-2 */
    int n_merges;
    ts_merge *merge;            /* (n_merges) in rank order */
    ts_hash merges;             /* (left, right) -> merge number */
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

#ifndef TS_ATT_TOKENS
#define TS_ATT_TOKENS 8 /* prompt tokens whose attention scores share each row of keys read */
#endif
#ifndef TS_BATCH
/* Tokens per block when running a prompt. Each block reads every weight once: 64 rather
 * than 32 makes 500-token GPT-Neo-33M prompts 1.3x faster here (float32, 2 threads) for a
 * session's (batch, vocab) logits and (batch, heads, positions) scores twice as large. */
#define TS_BATCH 64
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
    void *xq_packed;  /* ts_q8_packed_bytes(batch, max(...), group_size): prompts' Q8_0 lanes */
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
    /* looking inside, optional (NULL when off): the residual stream and MLP activations of
     * positions < internals_len, and the parts switched off */
    float *resid_record;        /* (n_layers + 1, internals_len, dim) */
    float *mlp_record;          /* (n_layers, internals_len, hidden_dim) */
    int internals_len;
    unsigned char *ablated;     /* (n_layers, n_heads) heads, then (n_layers, hidden_dim) neurons: 1 = zeroed */
    int n_ablated;              /* how many are set: 0 skips the step */
    int *ready_ids, n_ready;    /* ts_session_prefill: the prompt in the cache, its last logits in `logits` */
    size_t memory_size;
    void *memory;     /* the one allocation the arrays above are cut from */
};

/* ==========================================================================
 * 2. Transformer: the forward pass, in plain C
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
 * count, so results never depend on either. The loops here are the reference: a few
 * steps (matrix products, exp, max, attention) call a hook of the fast engine (section 5)
 * first, which computes the same bits with SIMD instructions, or declines.
 * ========================================================================== */

/* ---- matrix products ---- */

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
            int clean = scale >= FLT_MIN && scale <= FLT_MAX; /* and no NaN: then |x / scale| <= 127 */
            for (int i = 0; i < len; i++) clean &= xg[i] == xg[i];
            if (clean) /* the usual case, in a loop compilers vectorise */
                for (int i = 0; i < len; i++) qg[i] = (int8_t)ts_round(xg[i] / scale);
            else /* zero, denormal or infinite scales and NaNs (broken models): clamp */
                for (int i = 0; i < len; i++) {
                    float v = scale > 0.0f ? xg[i] / scale : 0.0f;
                    v = v > 127.0f ? 127.0f : v < -127.0f ? -127.0f : v == v ? v : 0.0f;
                    qg[i] = (int8_t)ts_round(v);
                }
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
static void ts_matmul_plain(float *out, const float *x, const int8_t *xq, const float *xs, const ts_matrix *w, int n) {
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
                    int end = (g + 1) * gs < cols ? (g + 1) * gs : cols; /* the last group may be shorter */
                    for (int k = g * gs; k < end; k++) ival += (int32_t)xt[k] * (int32_t)wr[k];
                    val = ts_q8_step(val, ival, ws[g], xst[g]);
                }
            }
            out[(size_t)t * rows + i] = val;
        }
    }
}

/* ---- the fast engine's hooks ----
 * Each computes, bit for bit, what the plain code at its call computes and returns 1, or
 * returns 0 (a build without SIMD kernels, or a case they do not take) and the plain code
 * runs. A first reading can take every hook to return 0. Section 5 defines them. */
static int ts_fast_matmuls(ts_session *s, const float *x, int n, int count, const ts_product *p);
static size_t ts_fast_exp(float *x, size_t n); /* exponentiates x[0..k) for some k <= n, returns k */
static int ts_fast_max(const float *x, int n, float *max_val);
static int ts_fast_attention(ts_session *s, int layer, int pos, int n, const float *q, float *out);

/* out_k (n, rows_k) = x (n, cols) · W_k^T for up to TS_MAX_PRODUCTS matrices that read the
 * same x (q, k and v; w1 and w3): the threads start once for all of them, and Q8_0 quantizes
 * x (into the session's buffers) once. */
static void ts_matmuls(ts_session *s, const float *x, int n, int count, const ts_product *p) {
    const ts_matrix *w = p[0].w;
    if (w->type == TS_Q8_0) ts_quantize(s->xq, s->xq_scale, x, n, w->cols, w->group_size);
    if (ts_fast_matmuls(s, x, n, count, p)) return;
    for (int k = 0; k < count; k++) ts_matmul_plain(p[k].out, x, s->xq, s->xq_scale, p[k].w, n);
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

/* x[i] = expf(x[i]) for i < n: libm's bits, as llama2.c computes them (a last bit changed
 * here can change which token a story samples; the fast engine's vector exp, section 5,
 * gives the same bits). */
static void ts_exp(float *x, size_t n) {
    for (size_t i = ts_fast_exp(x, n); i < n; i++) x[i] = expf(x[i]);
}

/* The largest of x[0..n) (n >= 1). */
static float ts_max(const float *x, int n) {
    float max_val;
    if (ts_fast_max(x, n, &max_val)) return max_val;
    max_val = x[0];
    for (int i = 1; i < n; i++)
        if (x[i] > max_val) max_val = x[i];
    return max_val;
}

/* Softmax in place of x (size), as llama2.c: subtract the max, exponentiate, normalise by
 * the sum, added in order. */
static void ts_softmax(float *x, int size) {
    float max_val = ts_max(x, size), sum = 0.0f;
    for (int i = 0; i < size; i++) x[i] -= max_val;
    ts_exp(x, (size_t)size);
    for (int i = 0; i < size; i++) sum += x[i];
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

/* o[i] += a * v[i] for i < len, the value sum's step. The head sizes of the TinyStories
 * models get loops of a known length, which compilers turn into a few vector instructions:
 * a loop whose length is known only at run time costs more to set up than its work when
 * heads are small (4 or 8 values in GPT-Neo-1M and stories260K). */
TS_INLINE void ts_axpy(float *restrict o, float a, const float *restrict v, int len) {
#define TS_AXPY_CASE(L) \
    case L: \
        for (int i = 0; i < L; i++) o[i] += a * v[i]; \
        break;
    switch (len) {
        TS_AXPY_CASE(4) TS_AXPY_CASE(8) TS_AXPY_CASE(16) TS_AXPY_CASE(32) TS_AXPY_CASE(48) TS_AXPY_CASE(64)
    default:
        for (int i = 0; i < len; i++) o[i] += a * v[i];
    }
#undef TS_AXPY_CASE
}

/* Attention (Vaswani et al. 2017) of the block's n tokens, positions pos .. pos+n-1, every
 * head: q (n, q_dim) against this layer's cached keys and values, out (n, q_dim). Token t,
 * head h: a score q . k for each position p it sees (all up to its own, or the last
 * `window` of them), times 1/sqrt(head_dim) where the model scales; their softmax; then
 * the values summed with those weights, in order of p. Query head h reads key and value
 * head h / (n_heads / n_kv_heads) (grouped-query attention). Keys are cached transposed,
 * (kv_dim, positions): key i of position p at i * max_positions + p. The weights stay in
 * s->att (n, n_heads, max_positions), from the first position seen. */
static void ts_attention_plain(ts_session *s, int layer, int pos, int n, const float *q, float *out) {
    const ts_config *c = &s->model->config;
    int hd = c->head_dim, kv_dim = c->n_kv_heads * hd, q_dim = c->n_heads * hd, group = c->n_heads / c->n_kv_heads;
    int H = c->n_heads, window = s->model->layers[layer].window, P = s->max_positions;
    float scale = (c->flags & TS_FLAG_SCALE_ATTN) ? 1.0f / sqrtf((float)hd) : 1.0f;
    const float *keys = s->key_cache + (size_t)layer * kv_dim * P;     /* (kv_dim, P) */
    const float *values = s->value_cache + (size_t)layer * P * kv_dim; /* (P, kv_dim) */
    TS_PARALLEL_FOR
    for (int th = 0; th < n * H; th++) {
        int t = th / H, h = th % H, p = pos + t;
        int start = (window > 0 && p - window + 1 > 0) ? p - window + 1 : 0, len = p - start + 1;
        const float *qh = q + (size_t)t * q_dim + (size_t)h * hd;
        const float *kh = keys + (size_t)(h / group) * hd * P + start; /* (hd, P) from start */
        float *att = s->att + ((size_t)t * H + h) * P;                  /* (len) */
        for (int k = 0; k < len; k++) {
            float score = 0.0f;
            for (int i = 0; i < hd; i++) score += qh[i] * kh[(size_t)i * P + k];
            att[k] = score * scale;
        }
        ts_softmax(att, len);
        float *oh = out + (size_t)t * q_dim + (size_t)h * hd;
        for (int i = 0; i < hd; i++) oh[i] = 0.0f;
        for (int k = 0; k < len; k++) ts_axpy(oh, att[k], values + (size_t)(start + k) * kv_dim + (size_t)(h / group) * hd, hd);
    }
}
static void ts_attention(ts_session *s, int layer, int pos, int n, const float *q, float *out) {
    if (!ts_fast_attention(s, layer, pos, n, q, out)) ts_attention_plain(s, layer, pos, n, q, out);
}

/* Looking inside: keeps the attention weights of the block's tokens at positions below
 * rec_len, in att_record (n_layers, n_heads, rec_len, rec_len): row p holds position p's
 * weights over positions 0 .. rec_len-1 (0 where it does not look). */
static void ts_record_attention(ts_session *s, int layer, int pos, int n) {
    const ts_config *c = &s->model->config;
    int H = c->n_heads, P = s->max_positions, window = s->model->layers[layer].window, R = s->rec_len;
    for (int t = 0; t < n && pos + t < R; t++) {
        int p = pos + t, start = (window > 0 && p - window + 1 > 0) ? p - window + 1 : 0;
        for (int h = 0; h < H; h++) {
            const float *att = s->att + ((size_t)t * H + h) * P;
            float *rec = s->att_record + (((size_t)layer * H + h) * R + p) * R;
            for (int k = 0; k < R; k++) rec[k] = (k >= start && k <= p) ? att[k - start] : 0.0f;
        }
    }
}

/* GELU, tanh form ("gelu_new"): 0.5 x (1 + tanh(u)) with u = sqrt(2 / pi) (x + 0.044715 x^3),
 * in place over h (count). Computed as x / (1 + exp(-2u)), the same function (1 + tanh u =
 * 2 / (1 + exp(-2u))), so that its one libm call is expf: glibc's tanhf gives other bits on
 * aarch64 than on x86-64, its expf the same, and a story must not depend on the machine. */
static void ts_gelu(float *h, size_t count) {
    float e[256];
    for (size_t at = 0; at < count; at += 256) {
        size_t len = count - at < 256 ? count - at : 256;
        for (size_t i = 0; i < len; i++) {
            float x = h[at + i];
            e[i] = -1.5957691216057308f * (x + 0.044715f * x * x * x); /* -2u */
        }
        ts_exp(e, len);
        for (size_t i = 0; i < len; i++) h[at + i] = h[at + i] / (1.0f + e[i]);
    }
}
/* SwiGLU's gate: hb = silu(hb) * hb2 with silu(x) = x * (1 / (1 + exp(-x))), as llama2.c,
 * the exponentials a chunk at a time. hb, hb2 (count). */
static void ts_swiglu(float *hb, const float *hb2, size_t count) {
    float e[256];
    for (size_t at = 0; at < count; at += 256) {
        size_t len = count - at < 256 ? count - at : 256;
        for (size_t i = 0; i < len; i++) e[i] = -hb[at + i];
        ts_exp(e, len);
        for (size_t i = 0; i < len; i++) hb[at + i] = hb[at + i] * (1.0f / (1.0f + e[i])) * hb2[at + i];
    }
}

/* Looking inside: rows (n, width) of the block's tokens at positions below len go to
 * record's rows pos..pos+n-1 (record: (len, width)). */
static void ts_record_rows(float *record, int len, const float *rows, int n, int pos, size_t width) {
    for (int t = 0; t < n && pos + t < len; t++) memcpy(record + (size_t)(pos + t) * width, rows + (size_t)t * width, width * sizeof(float));
}
/* Ablation: zero what is switched off, in out (n, count), for the mask (count) of 1s. */
static void ts_zero_masked(float *out, int n, const unsigned char *mask, int count, int width) {
    for (int t = 0; t < n; t++)
        for (int i = 0; i < count; i++)
            if (mask[i]) memset(out + (size_t)t * count * width + (size_t)i * width, 0, (size_t)width * sizeof(float));
}

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
        if (s->resid_record) ts_record_rows(s->resid_record + (size_t)l * s->internals_len * dim, s->internals_len, s->x, n, pos, (size_t)dim);
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
        if (s->att_record) ts_record_attention(s, l, pos, n);
        if (s->n_ablated) ts_zero_masked(s->xb, n, s->ablated + (size_t)l * c->n_heads, c->n_heads, hd); /* heads switched off */
        ts_matmul(s, s->xb2, s->xb, &ly->wo, n);
        ts_add_bias(s->xb2, ly->bo, n, dim);
        for (size_t i = 0; i < (size_t)n * dim; i++) s->x[i] += s->xb2[i];

        /* MLP */
        ts_norm(c, s->xb, s->x, ly->ffn_norm, ly->ffn_norm_bias, n);
        ts_product up[2] = {{s->hb, &ly->w1}, {s->hb2, &ly->w3}}; /* w3 only for SwiGLU */
        ts_matmuls(s, s->xb, n, c->act_kind == TS_ACT_SWIGLU ? 2 : 1, up);
        ts_add_bias(s->hb, ly->b1, n, hid);
        /* the activation, a token per unit of work: a prompt block's exponentials and tanhs
         * are worth sharing out to the threads (each value is computed alone, so the same) */
        TS_PARALLEL_FOR_IF(n > 1 && (double)n * hid >= 4096)
        for (int t = 0; t < n; t++) {
            float *ht = s->hb + (size_t)t * hid;
            if (c->act_kind == TS_ACT_SWIGLU) ts_swiglu(ht, s->hb2 + (size_t)t * hid, (size_t)hid);
            else ts_gelu(ht, (size_t)hid);
        }
        if (s->n_ablated) /* neurons switched off */
            ts_zero_masked(s->hb, n, s->ablated + (size_t)c->n_layers * c->n_heads + (size_t)l * hid, hid, 1);
        if (s->mlp_record) ts_record_rows(s->mlp_record + (size_t)l * s->internals_len * hid, s->internals_len, s->hb, n, pos, (size_t)hid);
        ts_matmul(s, s->xb2, s->hb, &ly->w2, n);
        ts_add_bias(s->xb2, ly->b2, n, dim);
        for (size_t i = 0; i < (size_t)n * dim; i++) s->x[i] += s->xb2[i];
    }
    if (s->resid_record) /* after the last layer */
        ts_record_rows(s->resid_record + (size_t)c->n_layers * s->internals_len * dim, s->internals_len, s->x, n, pos, (size_t)dim);
    /* final norm and classifier, for every token or just the last */
    int first = all_logits ? 0 : n - 1, count = n - first;
    ts_norm(c, s->xb, s->x + (size_t)first * dim, m->final_norm, m->final_norm_bias, count);
    ts_matmul(s, s->logits, s->xb, &m->classifier, count);
}

/* ==========================================================================
 * 3. Sampler
 *
 * Exactly llama2.c's: an xorshift* generator (state must not be 0), temperature scaling,
 * softmax, then either a draw from the whole distribution or from the smallest set of
 * most likely tokens whose probability exceeds top-p ("nucleus", Holtzman et al. 2019).
 * Ties in the top-p sort are broken by token id, so the order never depends on qsort.
 * Optional filters before the draw, each off unless asked for (then the sampler is exactly
 * llama2.c's): a repetition penalty, top-k, and min-p, as llama.cpp has them.
 * ========================================================================== */

typedef struct ts_prob_index { float prob; int index; } ts_prob_index;

static unsigned int ts_random_u32(unsigned long long *state) {
    *state ^= *state >> 12;
    *state ^= *state << 25;
    *state ^= *state >> 27;
    return (unsigned int)((*state * 0x2545F4914F6CDD1Dull) >> 32);
}
static float ts_random_f32(unsigned long long *state) { return (float)(ts_random_u32(state) >> 8) / 16777216.0f; }

/* The first index of the largest value (NaNs never win, unless p[0] is one), as the loop
 * `if (p[i] > p[best]) best = i`, but in two passes without a long chain of dependent
 * steps: the largest value (ts_max, in SIMD lanes), then where it first occurs. */
static int ts_argmax(const float *p, int n) {
    float max_val = ts_max(p, n);
    for (int i = 0; i < n; i++)
        if (p[i] == max_val) return i;
    return 0; /* p[0] is NaN */
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
    float cutoff = n > 1 ? (1.0f - topp) / (float)(n - 1) : 0.0f;
    int n0 = 0;
    for (int i = 0; i < n; i++)
        if (p[i] >= cutoff) probindex[n0].index = i, probindex[n0].prob = p[i], n0++;
    if (n0 == 0) return ts_argmax(p, n); /* only NaN probabilities (a broken model): no nucleus */
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

/* -log p(target) for p = softmax(logits): log(sum exp(l - max)) + max - l[target], in double. */
static double ts_nll(const float *logits, int n, int target) {
    float max_val = ts_max(logits, n);
    double sum = 0.0;
    for (int i = 0; i < n; i++) sum += exp((double)logits[i] - max_val);
    return log(sum) + max_val - logits[target];
}

/* The repetition penalty over the last `last_n` tokens of history (n of them), once per
 * distinct token: a positive logit is divided by penalty, a negative one multiplied. */
static void ts_repeat_penalty(float *logits, int vocab, const int *history, int n, int last_n, float penalty) {
    int first = n > last_n ? n - last_n : 0;
    for (int i = first; i < n; i++) {
        int id = history[i], repeat = 0;
        for (int j = first; j < i && !repeat; j++) repeat = history[j] == id;
        if (id < 0 || id >= vocab || repeat) continue;
        logits[id] = logits[id] > 0.0f ? logits[id] / penalty : logits[id] * penalty;
    }
}

/* Top-k: every token but the k most likely (ties: the lower id) gets -inf. */
static void ts_keep_top_k(float *logits, int vocab, int k, ts_prob_index *scratch) {
    if (k <= 0 || k >= vocab) return;
    for (int i = 0; i < vocab; i++) scratch[i].prob = logits[i], scratch[i].index = i;
    qsort(scratch, (size_t)vocab, sizeof(ts_prob_index), ts_compare_prob);
    for (int i = k; i < vocab; i++) logits[scratch[i].index] = -INFINITY;
}

/* Min-p on probabilities: those below min_p x the largest become 0, the rest sum to 1 again. */
static void ts_keep_min_p(float *probs, int vocab, float min_p) {
    float top = ts_max(probs, vocab), cut = min_p * top;
    double sum = 0.0;
    for (int i = 0; i < vocab; i++) {
        if (probs[i] < cut) probs[i] = 0.0f;
        sum += probs[i];
    }
    for (int i = 0; i < vocab; i++) probs[i] = (float)(probs[i] / sum);
}

/* llama2.c's sampler, with min-p (0 = off) between its softmax and its draw. */
static int ts_sample_logits(ts_session *s, float *logits, float temperature, float min_p, float topp) {
    int n = s->model->config.vocab_size;
    if (temperature == 0.0f) return ts_argmax(logits, n);
    /* A temperature so small that logit / temperature overflows (1e-38 and below) would make
     * the softmax inf - inf = NaN. As the temperature goes to 0 the distribution puts all its
     * mass on the most likely token: greedy's choice, which is what it samples then. */
    if (!isfinite(ts_max(logits, n) / temperature)) return ts_argmax(logits, n);
    for (int i = 0; i < n; i++) logits[i] /= temperature;
    ts_softmax(logits, n);
    if (min_p > 0.0f) ts_keep_min_p(logits, n, min_p);
    float coin = ts_random_f32(&s->rng_state);
    if (topp <= 0.0f || topp >= 1.0f) return ts_sample_mult(logits, n, coin);
    return ts_sample_topp(logits, n, topp, s->probindex, coin);
}

/* Draws the next token from logits (vocab_size, changed in place): the filters of o, in
 * their order, then llama2.c's draw. history: the n tokens so far, for the penalty. With
 * the filters off this is exactly llama2.c's sampler. */
static int ts_sample_with(ts_session *s, float *logits, const ts_generate_opts *o, const int *history, int n) {
    int vocab = s->model->config.vocab_size;
    if (o->repeat_penalty > 0.0f && o->repeat_penalty != 1.0f)
        ts_repeat_penalty(logits, vocab, history, n, o->repeat_last_n > 0 ? o->repeat_last_n : 64, o->repeat_penalty);
    ts_keep_top_k(logits, vocab, o->top_k, s->probindex);
    return ts_sample_logits(s, logits, o->temperature, o->min_p, o->topp);
}


/* ==========================================================================
 * 4. Generation
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
static int ts_prompt_tokens(const ts_model *m, const char *prompt, size_t len, int **out, int *n_out, ts_error *err) {
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

static int ts_check_tokens(const ts_session *s, const int *tokens, int n, int pos, ts_error *err) {
    if (!s) return ts_fail(err, TS_E_ARG, "no session (NULL)");
    if (n < 1 || !tokens) return ts_fail(err, TS_E_ARG, "no tokens to run (%d, tokens %s)", n, tokens ? "given" : "NULL");
    if (pos < 0 || n > s->max_positions || pos > s->max_positions - n)
        return ts_fail(err, TS_E_RANGE, "positions %d..%d are outside this session's %d positions", pos, pos + n - 1, s->max_positions);
    for (int i = 0; i < n; i++)
        if (tokens[i] < 0 || tokens[i] >= s->model->config.vocab_size)
            return ts_fail(err, TS_E_RANGE, "token id %d is outside the vocabulary of %d", tokens[i], s->model->config.vocab_size);
    return TS_OK;
}

float *ts_forward(ts_session *s, const int *tokens, int n, int pos, ts_error *err) {
    if (ts_check_tokens(s, tokens, n, pos, err)) return NULL;
    s->n_ready = 0;
    for (int done = 0; done < n; done += s->batch) {
        int k = n - done < s->batch ? n - done : s->batch;
        ts_forward_block(s, tokens + done, k, pos + done, 0);
    }
    return s->logits;
}

int ts_forward_all(ts_session *s, const int *tokens, int n, int pos, float *out, ts_error *err) {
    int rc = ts_check_tokens(s, tokens, n, pos, err);
    if (rc) return rc;
    s->n_ready = 0;
    if (!out) return ts_fail(err, TS_E_ARG, "ts_forward_all: out is NULL");
    size_t V = (size_t)s->model->config.vocab_size;
    for (int done = 0; done < n; done += s->batch) {
        int k = n - done < s->batch ? n - done : s->batch;
        ts_forward_block(s, tokens + done, k, pos + done, 1);
        memcpy(out + (size_t)done * V, s->logits, (size_t)k * V * sizeof(float));
    }
    return TS_OK;
}

void ts_seed(ts_session *s, unsigned long long seed) {
    if (s) s->rng_state = seed ? seed : 1;
}

static int ts_check_sampling(float temperature, float topp, ts_error *err) {
    if (!(temperature >= 0.0f) || !isfinite(temperature))
        return ts_fail(err, TS_E_ARG, "temperature %g must be a finite number >= 0", (double)temperature);
    if (!(topp >= 0.0f && topp <= 1.0f)) return ts_fail(err, TS_E_ARG, "top-p %g must be in [0, 1]", (double)topp);
    return TS_OK;
}

static int ts_check_opts(const ts_generate_opts *o, ts_error *err) {
    int rc = ts_check_sampling(o->temperature, o->topp, err);
    if (rc) return rc;
    if (o->top_k < 0) return ts_fail(err, TS_E_ARG, "top-k %d must be 0 (off) or more", o->top_k);
    if (!(o->min_p >= 0.0f && o->min_p <= 1.0f)) return ts_fail(err, TS_E_ARG, "min-p %g must be in [0, 1]", (double)o->min_p);
    if (!(o->repeat_penalty >= 0.0f) || !isfinite(o->repeat_penalty))
        return ts_fail(err, TS_E_ARG, "repetition penalty %g must be a finite number > 0 (0: off)", (double)o->repeat_penalty);
    if (o->repeat_last_n < 0) return ts_fail(err, TS_E_ARG, "repeat_last_n %d must be 0 (64) or more", o->repeat_last_n);
    if (o->n_stop < 0 || (o->n_stop > 0 && !o->stop)) return ts_fail(err, TS_E_ARG, "%d stop strings and no array of them", o->n_stop);
    for (int i = 0; i < o->n_stop; i++)
        if (!o->stop[i] || !o->stop[i][0]) return ts_fail(err, TS_E_ARG, "stop string %d is empty", i);
    return TS_OK;
}

/* Stop strings: the generated text waits in `held` while it could still be the start of one;
 * returns the bytes of held that can go out, and sets *stop when a stop string is complete
 * (the bytes before it go out, it and what follows do not). */
static size_t ts_stop_release(const ts_generate_opts *o, const char *held, size_t n, int *stop) {
    size_t release = n;
    *stop = 0;
    for (int i = 0; i < o->n_stop; i++) {
        size_t k = strlen(o->stop[i]);
        for (size_t at = 0; at < n && at < release; at++) { /* a stop string from `at`, whole or cut by the end */
            size_t part = n - at < k ? n - at : k;
            if (memcmp(held + at, o->stop[i], part) != 0) continue;
            if (part == k) *stop = 1;
            release = at;
            break;
        }
    }
    return release;
}

int ts_sample(ts_session *s, float *logits, float temperature, float topp, ts_error *err) {
    if (!s || !logits) return ts_fail(err, TS_E_ARG, "ts_sample: %s is NULL", s ? "logits" : "the session");
    int rc = ts_check_sampling(temperature, topp, err);
    if (rc) return rc;
    s->n_ready = 0; /* the draw changes the logits (those of a prefilled prompt too) */
    return ts_sample_logits(s, logits, temperature, 0.0f, topp);
}

int ts_top_k(const float *logits, int n, int k, int *ids, float *probs) {
    if (!logits || n < 1 || k < 1 || !ids) return 0;
    if (k > n) k = n;
    /* insertion into the sorted list of the best so far: k is small */
    int count = 0;
    for (int i = 0; i < n; i++) {
        if (count == k && !(logits[i] > logits[ids[k - 1]])) continue;
        int j = count < k ? count++ : k - 1;
        while (j > 0 && logits[i] > logits[ids[j - 1]]) ids[j] = ids[j - 1], j--;
        ids[j] = i;
    }
    if (probs) { /* softmax in double: exp(l - max) / sum */
        double max_val = logits[ids[0]], sum = 0.0;
        for (int i = 0; i < n; i++) sum += exp((double)logits[i] - max_val);
        for (int j = 0; j < k; j++) probs[j] = (float)(exp((double)logits[ids[j]] - max_val) / sum);
    }
    return k;
}

/* The prompt's tokens and the steps to run, as ts_generate reads them: steps 0 = the
 * session's positions; a prompt longer than them runs what fits, as llama2.c does. */
static int ts_generate_prompt(ts_session *s, const char *prompt, int *steps, int **ids, int *n_prompt, ts_error *err) {
    const ts_model *m = s->model;
    int P = s->max_positions;
    if (*steps <= 0) *steps = P;
    int rc = ts_prompt_tokens(m, prompt ? prompt : "", prompt ? strlen(prompt) : 0, ids, n_prompt, err);
    if (rc) return rc;
    if (*n_prompt > m->config.seq_len) {
        free(*ids);
        return ts_fail(err, TS_E_RANGE, "the prompt is %d tokens, longer than the model's context of %d", *n_prompt, m->config.seq_len);
    }
    if (*n_prompt > P && *steps > P) *steps = P;
    return TS_OK;
}

int ts_session_prefill(ts_session *s, const char *prompt, const ts_generate_opts *o, ts_error *err) {
    if (!s || !o) return ts_fail(err, TS_E_ARG, "ts_session_prefill: %s is NULL", s ? "opts" : "the session");
    int steps = o->steps, *ids = NULL, n_prompt = 0;
    int rc = ts_generate_prompt(s, prompt, &steps, &ids, &n_prompt, err);
    if (rc) return rc;
    int n_feed = n_prompt < steps ? n_prompt : steps;
    int *keep = (int *)realloc(s->ready_ids, (size_t)n_feed * sizeof(int));
    if (!keep) {
        free(ids);
        return ts_fail(err, TS_E_NOMEM, "out of memory");
    }
    s->ready_ids = keep;
    rc = ts_forward(s, ids, n_feed, 0, err) ? TS_OK : (err ? err->code : TS_E_ARG);
    if (!rc) memcpy(s->ready_ids, ids, (size_t)n_feed * sizeof(int)), s->n_ready = n_feed;
    free(ids);
    return rc;
}

int ts_generate(ts_session *s, const char *prompt, const ts_generate_opts *o, ts_piece_fn on_piece, void *user,
                ts_generate_stats *stats, ts_error *err) {
    if (stats) memset(stats, 0, sizeof *stats);
    if (!s || !o) return ts_fail(err, TS_E_ARG, "ts_generate: %s is NULL", s ? "opts" : "the session");
    const ts_model *m = s->model;
    int steps = o->steps, *ids = NULL, n_prompt = 0;
    int rc = ts_check_opts(o, err);
    if (rc) return rc;
    int P = s->max_positions; /* the window: positions the cache holds */
    rc = ts_generate_prompt(s, prompt, &steps, &ids, &n_prompt, err);
    if (rc) return rc;
    /* the tokens so far (the penalty's history), and the generated text held back while it
     * could be the start of a stop string */
    size_t held_cap = 0, n_held = 0; /* the longest stop string, and the longest piece */
    for (int i = 0; i < o->n_stop; i++) held_cap = strlen(o->stop[i]) > held_cap ? strlen(o->stop[i]) : held_cap;
    if (o->n_stop > 0) held_cap += (size_t)m->tokenizer.longest_piece;
    int *history = (int *)malloc(((size_t)steps + 1) * sizeof(int));
    char *held = (char *)malloc(held_cap + 64); /* a stop string but its last byte, and a piece, with room to spare */
    if (!history || !held) {
        free(ids), free(history), free(held);
        return ts_fail(err, TS_E_NOMEM, "out of memory");
    }
    history[0] = ids[0];
    ts_seed(s, o->seed);
    /* the prompt in blocks; as llama2.c, positions past `steps` are never run */
    int n_feed = n_prompt < steps ? n_prompt : steps;
    double t0 = ts_now();
    int ready = s->n_ready == n_feed && memcmp(s->ready_ids, ids, (size_t)n_feed * sizeof(int)) == 0;
    float *logits = ready ? s->logits : ts_forward(s, ids, n_feed, 0, err); /* prefilled: sample at once */
    s->n_ready = 0; /* sampling changes the logits */
    double t1 = ts_now();
    int token = ids[0], pos = 0, stopped = 0, generated = 0, slides = 0, offset = 0; /* cache position = pos - offset */
    /* llama2.c prints each token as the one after its predecessor, so the first is never
     * printed: right for BOS, but a GPT-2 prompt starts with text of its own */
    if (logits && token != m->config.bos_id && on_piece) {
        size_t len;
        const char *piece = ts_decode(m, -1, token, &len);
        stopped = on_piece(user, token, piece, len);
    }
    while (pos < steps && logits && !stopped) {
        int next, sampled = pos >= n_prompt - 1;
        if (!sampled) next = ids[pos + 1];
        else {
            if (pos - offset == P) { /* the cache is full: keep the last half of the tokens, this one included */
                int keep = P / 2 > 0 ? P / 2 : 1;
                offset = pos + 1 - keep, slides++;
                logits = ts_forward(s, history + offset, keep, 0, err);
            } else if (pos >= n_feed) logits = ts_forward(s, &token, 1, pos - offset, err);
            if (!logits) break;
            if (o->on_logits) o->on_logits(user, pos, logits);
            next = ts_sample_with(s, logits, o, history, pos + 1);
            generated++;
        }
        pos++;
        history[pos] = next;
        if (next == m->config.bos_id || (m->tokenizer.kind == TS_TOK_GPT2 && next == m->config.eos_id)) break;
        size_t len;
        const char *piece = ts_decode(m, token, next, &len);
        token = next;
        if (sampled && o->n_stop > 0) { /* the piece joins the held text; what cannot start a stop string goes out */
            int stop;
            memcpy(held + n_held, piece, len);
            n_held += len;
            size_t release = ts_stop_release(o, held, n_held, &stop);
            if ((release > 0 || !stop) && on_piece && on_piece(user, next, held, release)) stopped = 1;
            memmove(held, held + release, n_held - release);
            n_held -= release;
            if (stop) stopped = 1, n_held = 0;
            continue;
        }
        if (on_piece && on_piece(user, next, piece, len)) break;
    }
    if (n_held > 0 && on_piece) on_piece(user, token, held, n_held); /* the end: no stop string after all */
    double t2 = ts_now();
    free(ids), free(history), free(held);
    if (stats) {
        stats->prompt_tokens = n_feed;
        stats->generated_tokens = generated;
        stats->positions = pos;
        stats->prompt_seconds = t1 - t0;
        stats->generate_seconds = t2 - t1;
        stats->slides = slides;
    }
    return logits ? TS_OK : (err ? err->code : TS_E_ARG);
}

int ts_perplexity(ts_session *s, const char *text, size_t len, long *n_tokens, double *mean_nll,
                  void (*progress)(void *user, long done, long total), void *user, ts_error *err) {
    if (!s || !n_tokens || !mean_nll)
        return ts_fail(err, TS_E_ARG, "ts_perplexity: %s is NULL", !s ? "the session" : !n_tokens ? "n_tokens" : "mean_nll");
    *n_tokens = 0;
    *mean_nll = 0.0;
    if (!text && len > 0) return ts_fail(err, TS_E_ARG, "ts_perplexity: text is NULL but len is %zu", len);
    const ts_model *m = s->model;
    int V = m->config.vocab_size, L = s->max_positions;
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
            for (int t = 0; rc == TS_OK && t < k && done + t + 1 < chunk; t++) {
                nll += ts_nll(logits + (size_t)t * V, V, ids[start + done + t + 1]);
                predicted++;
            }
        }
        if (progress) progress(user, start + chunk, n);
    }
    free(ids);
    free(logits);
    if (rc) return rc;
    if (predicted == 0) /* a mean over no token: not a perplexity of 1 */
        return ts_fail(err, TS_E_ARG, "the text is %d token%s: there is no token to predict, so no perplexity", n,
                       n == 1 ? "" : "s");
    *n_tokens = n;
    *mean_nll = nll / (double)predicted;
    return TS_OK;
}

/* ==========================================================================
 * 5. Appendix: the fast engine
 *
 * Everything of this file that is written for a particular instruction set: the
 * per-instruction-set helpers (AVX-512 with VNNI, AVX2 with FMA, NEON with or without the
 * dot-product extension), the tiles of the matrix products, the packed Q8_0 layout, the
 * vector exp, the SIMD max, the multi-row softmax and attention's value sums; last, the
 * matrix products of WebAssembly's SIMD128 (make web), which keep the plain loops' own
 * order and bits, since WebAssembly has no fused multiply-add that must fuse. Section 2
 * reaches it through four hooks (ts_fast_matmuls, ts_fast_exp, ts_fast_max,
 * ts_fast_attention); each computes the plain loops' bits, which tests/test_speed.c checks
 * on every path. A build without a SIMD path (or with -DTS_PLAIN_KERNELS) gets hooks that
 * decline, at the end of this section.
 * ========================================================================== */

/* The layout ts_pack_q8 (AVX-512 and AVX2 prompts, below) gives n tokens of cols quantized
 * values, in token tiles of TS_PACK_LANES (a vector's int32 lanes): dwords (tiles, slots,
 * lanes), a slot holding 4 values of one group, then the scales (tiles, groups, lanes) as
 * floats. */
#if defined(TS_AVX512)
#define TS_PACK_LANES 16
#elif defined(TS_AVX2)
#define TS_PACK_LANES 8
#endif
TS_MAYBE_UNUSED static int ts_q8_slots(int cols, int gs) { return cols / gs * ((gs + 3) / 4) + (cols % gs + 3) / 4; }
TS_MAYBE_UNUSED static size_t ts_q8_packed_dwords(int n, int cols, int gs) {
#if defined(TS_PACK_LANES)
    return (size_t)(n + TS_PACK_LANES - 1) / TS_PACK_LANES * TS_PACK_LANES * (size_t)ts_q8_slots(cols, gs);
#else
    return (void)n, (void)cols, (void)gs, 0;
#endif
}
/* Bytes of that layout, for the session to allocate (0 where it is not used). */
static size_t ts_q8_packed_bytes(int n, int cols, int gs) {
#if defined(TS_PACK_LANES)
    size_t padded = (size_t)(n + TS_PACK_LANES - 1) / TS_PACK_LANES * TS_PACK_LANES;
    return 4 * (ts_q8_packed_dwords(n, cols, gs) + padded * (size_t)ts_groups(cols, gs));
#else
    (void)n, (void)cols, (void)gs;
    return 0;
#endif
}

/* ---- fast kernels ------------------------------------------------------------------
 * ts_matmul_fast computes what ts_matmul_plain computes, arranged for the machine:
 *  - Float tiles (ts_tile_float): decoding streams one row at a time per thread; prompts
 *    run tiles of 4 rows x 3 tokens, so each weight loaded serves 3 tokens of a block and
 *    each activation 4 rows, and a block of TS_BATCH tokens reads each weight from memory
 *    once, not once a token. Q8_0 tiles prefetch the next tile's rows (they interleave rows).
 *  - f32 and bf16 sum in one documented order, the same in every SIMD path ("A float dot
 *    product's order" below: 32 partial sums by fused multiply-adds, then halves added).
 *    It differs from the plain loop's left to right in the last bits (well inside what
 *    any test tolerates), but each output is summed in that order whatever the path, tile,
 *    block size or thread that computes it: a prompt run in blocks gives the bits of
 *    token-by-token decoding, with any number of threads, on x86 and on Arm alike.
 *  - bf16 weights widen to f32 exactly (a 16-bit shift) and multiply the f32 activations,
 *    so bf16 files lose nothing beyond their own rounding. (AVX-512 BF16's dot product
 *    instruction would also round the activations to bf16: we do not use it.)
 *  - Q8_0: integer dot products per group (AVX-512 VNNI vpdpbusd, AVX2 vpmaddubsw, NEON sdot
 *    or widening multiplies) give
 *    the plain loop's int32 sums exactly; the float update per group is ts_q8_step in the
 *    same order. Q8_0 results are the plain loop's, bit for bit. A group of 64 values is
 *    one vector, so summing its lanes would cost more than its dot product: the tiles
 *    instead hold TS_LANES outputs in the lanes of one vector (ts_tile_q8: decoding, rows
 *    in the lanes; ts_tile_q8_tokens: AVX-512 prompts, tokens in the lanes).
 * Each instruction set supplies a few small helpers (load, multiply-add, sum the lanes);
 * the tiles are written once on top of them.
 * ------------------------------------------------------------------------------------ */
/* Float tile shapes (see ts_tile_float), from the register file and the prefetchers, not
 * from one machine (measured: bench/README.md):
 *  - decoding reads TS_DECODE_ROWS = 1 row at a time with all of its TS_PARTS accumulators
 *    (independent chains of fused multiply-adds): each thread streams its rows front to
 *    back, the pattern every hardware prefetcher follows (an AMD Zen 4 streams interleaved
 *    rows at half speed). A software prefetch TS_AHEAD bytes on (0: none, the default) can
 *    carry a stream past the 4 KB page an Intel L2 streamer stops at: 16384 gave +2-4% on
 *    a Xeon, but -10-25% on a Zen 4 (float32 15M, AVX-512 and AVX2 alike), whose
 *    prefetchers already follow the rows;
 *  - Q8_0 decoding reads rows of at least TS_ROW_Q8_MIN_GROUPS groups front to back
 *    (ts_row_q8, lanes left idle past the row's last group: a 768-wide row of 64-value
 *    groups fills 12 of AVX-512's 16); shorter rows (stories15M's 288 values = 5 groups)
 *    are tiled TS_LANES rows at a time (ts_tile_q8), where a row alone would leave most
 *    lanes idle;
 *  - prompts: tiles of TS_PROMPT_ROWS rows x TS_PROMPT_TOKENS tokens holding
 *    TS_PROMPT_PARTS of each output's TS_PARTS vectors at a time: 4 x 3 x 2 = 24 accumulators
 *    + 4 weights + 1 activation of AVX-512's and NEON's 32 vector registers, 4 x 3 x 1 = 12
 *    + 4 of AVX2's 16 (each weight loaded serves 3 tokens, each activation 4 rows). */
#ifndef TS_DECODE_ROWS
#define TS_DECODE_ROWS 1
#endif
#ifndef TS_AHEAD
#define TS_AHEAD 0
#endif
#ifndef TS_ROW_Q8_MIN_GROUPS
#define TS_ROW_Q8_MIN_GROUPS (TS_LANES < 8 ? TS_LANES : 8)
#endif
#ifndef TS_PROMPT_ROWS
#define TS_PROMPT_ROWS 4
#endif
#ifndef TS_PROMPT_TOKENS
#define TS_PROMPT_TOKENS 3
#endif
#ifndef TS_PROMPT_PARTS
#if defined(TS_AVX2)
#define TS_PROMPT_PARTS 1
#else
#define TS_PROMPT_PARTS 2
#endif
#endif
#if TS_DECODE_ROWS > 4 || TS_PROMPT_ROWS > 4 || TS_PROMPT_TOKENS > 4 /* ts_tile_float's TS_MAX_TILE */
#error "float tiles hold at most 4 rows and 4 tokens"
#endif
/* A hint to fetch the line `bytes` after p (in integers: past the end of the weights too). */
#define TS_PREFETCH(p, bytes) __builtin_prefetch((const void *)((uintptr_t)(p) + (bytes)), 0, 3)
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
    __m512i firsts = _mm512_setr_epi32(0, 4, 8, 12, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0); /* lane 0 of each */
    _mm_storeu_ps(out, _mm512_castps512_ps128(_mm512_permutexvar_ps(firsts, w)));
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
/* Lane r of the result: the sum of the lanes of v[r], r < 16 (a transposing add tree:
 * pairs of vectors, then quads, then 128-bit blocks). Integer sums: any order is exact. */
TS_INLINE ts_vi ts_vi_sum_rows(const ts_vi *v) {
    ts_vi pair[8], quad[4], half[2];
    for (int k = 0; k < 8; k++) /* per 128-bit block: [a b a b] partials of v[2k], v[2k+1] */
        pair[k] = _mm512_add_epi32(_mm512_unpacklo_epi32(v[2 * k], v[2 * k + 1]), _mm512_unpackhi_epi32(v[2 * k], v[2 * k + 1]));
    for (int k = 0; k < 4; k++) /* per block: [a b c d] partials of v[4k..4k+3] */
        quad[k] = _mm512_add_epi32(_mm512_unpacklo_epi64(pair[2 * k], pair[2 * k + 1]),
                                   _mm512_unpackhi_epi64(pair[2 * k], pair[2 * k + 1]));
    for (int k = 0; k < 2; k++) /* blocks 0 + 2 and 1 + 3 of two quads */
        half[k] = _mm512_add_epi32(_mm512_shuffle_i32x4(quad[2 * k], quad[2 * k + 1], 0x44),
                                   _mm512_shuffle_i32x4(quad[2 * k], quad[2 * k + 1], 0xee));
    return _mm512_add_epi32(_mm512_shuffle_i32x4(half[0], half[1], 0x88), _mm512_shuffle_i32x4(half[0], half[1], 0xdd));
}
TS_INLINE ts_vf ts_vf_from_vi(ts_vi v) { return _mm512_cvtepi32_ps(v); }
TS_INLINE ts_vf ts_vf_set1(float v) { return _mm512_set1_ps(v); }
TS_INLINE ts_vf ts_vf_add(ts_vf a, ts_vf b) { return _mm512_add_ps(a, b); }
TS_INLINE ts_vf ts_vf_mul(ts_vf a, ts_vf b) { return _mm512_mul_ps(a, b); }
TS_INLINE void ts_store_f32(float *p, ts_vf v) { _mm512_storeu_ps(p, v); }
/* val + v[0] + v[1] + ... + v[n-1], added one after another (n <= 16), in registers: a store
 * and 16 narrow loads of it would wait for store forwarding */
TS_INLINE float ts_vf_add_in_order(float val, ts_vf v, int n) {
    __m128 acc = _mm_set_ss(val);
    for (int c = 0; c < n; c += 4) {
        __m128 q = _mm512_castps512_ps128(v);
        acc = _mm_add_ss(acc, q);
        if (c + 1 < n) acc = _mm_add_ss(acc, _mm_movehdup_ps(q));
        if (c + 2 < n) acc = _mm_add_ss(acc, _mm_movehl_ps(q, q));
        if (c + 3 < n) acc = _mm_add_ss(acc, _mm_shuffle_ps(q, q, 3));
        v = _mm512_castsi512_ps(_mm512_alignr_epi32(_mm512_castps_si512(v), _mm512_castps_si512(v), 4)); /* next 4 lanes */
    }
    return _mm_cvtss_f32(acc);
}
TS_INLINE ts_vi ts_load_i32(const int32_t *p) { return _mm512_loadu_si512(p); }
TS_INLINE ts_vf ts_gather_f32(const float *p, ts_vi index) { return _mm512_i32gather_ps(index, p, 4); } /* p[index[l]] */
TS_INLINE ts_vi ts_load_i8(const int8_t *p, int count) {
    return count == TS_QCHUNK ? _mm512_loadu_si512(p) : _mm512_maskz_loadu_epi8(~0ull >> (64 - count), p);
}
/* Integer dot products: vpdpbusd adds to each int32 lane the sum of 4 products of unsigned
 * by signed bytes. Weights are loaded as w + 128 (unsigned), and the dot product is
 * corrected by 128 * sum(x), which one more vpdpbusd per activation vector gives (once
 * for the 4 rows of a tile): sum((w + 128) * x) - sum(128 * x) = sum(w * x), exactly. */
TS_INLINE ts_vi ts_load_qw(const int8_t *p, int count) { /* w + 128 = w with the top bit flipped */
    return _mm512_xor_si512(ts_load_i8(p, count), _mm512_set1_epi8(-128));
}
TS_INLINE ts_vi ts_qdot(ts_vi acc, ts_vi w, ts_vi x) { return _mm512_dpbusd_epi32(acc, w, x); }
TS_INLINE ts_vi ts_qcorrect(ts_vi corr, ts_vi x) { return _mm512_dpbusd_epi32(corr, _mm512_set1_epi8(-128), x); }
TS_INLINE ts_vi ts_vi_sub(ts_vi a, ts_vi b) { return _mm512_sub_epi32(a, b); }
/* Q8_0 prompts, tokens in the lanes (ts_tile_q8_tokens): acc += in each lane the 4 products
 * of quad's bytes (4 weights, broadcast) and the lane's 4 packed activations, x + 128;
 * ts_qtok_offset is what the + 128 added to a group's sums, 128 sum(w), taken off after. */
TS_INLINE ts_vi ts_qtok_dot(ts_vi acc, ts_vi x, int32_t quad) { return _mm512_dpbusd_epi32(acc, x, _mm512_set1_epi32(quad)); }
TS_INLINE ts_vi ts_qtok_offset(const int8_t *w, int len) {
    int32_t sum = 0;
    for (int k = 0; k < len; k += 64)
        sum += ts_vi_sum(_mm512_dpbusd_epi32(_mm512_setzero_si512(), _mm512_set1_epi8(1), ts_load_i8(w + k, len - k < 64 ? len - k : 64)));
    return _mm512_set1_epi32(128 * sum);
}
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
TS_INLINE ts_vf ts_load_bf16(const uint16_t *p, int count) { /* full vectors: no buffer to clear */
    uint16_t part[TS_LANES];
    if (count < TS_LANES) memset(part, 0, sizeof part), memcpy(part, p, (size_t)count * 2), p = part;
    __m256i wide = _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)p));
    return _mm256_castsi256_ps(_mm256_slli_epi32(wide, 16));
}
TS_INLINE ts_vi ts_vi_zero(void) { return _mm256_setzero_si256(); }
TS_INLINE ts_vi ts_vi_sum_rows(const ts_vi *v) { /* lane r = sum of the lanes of v[r], r < 8 */
    __m256i low = _mm256_hadd_epi32(_mm256_hadd_epi32(v[0], v[1]), _mm256_hadd_epi32(v[2], v[3]));
    __m256i high = _mm256_hadd_epi32(_mm256_hadd_epi32(v[4], v[5]), _mm256_hadd_epi32(v[6], v[7]));
    /* per 128-bit half: [a b c d] and [e f g h] partials */
    return _mm256_add_epi32(_mm256_permute2x128_si256(low, high, 0x20), _mm256_permute2x128_si256(low, high, 0x31));
}
TS_INLINE ts_vf ts_vf_from_vi(ts_vi v) { return _mm256_cvtepi32_ps(v); }
TS_INLINE ts_vf ts_vf_set1(float v) { return _mm256_set1_ps(v); }
TS_INLINE ts_vf ts_vf_add(ts_vf a, ts_vf b) { return _mm256_add_ps(a, b); }
TS_INLINE ts_vf ts_vf_mul(ts_vf a, ts_vf b) { return _mm256_mul_ps(a, b); }
TS_INLINE void ts_store_f32(float *p, ts_vf v) { _mm256_storeu_ps(p, v); }
TS_INLINE float ts_vf_add_in_order(float val, ts_vf v, int n) { /* val + v[0] + ... + v[n-1], one after another */
    __m128 acc = _mm_set_ss(val);
    for (int c = 0; c < n; c += 4) {
        __m128 q = c == 0 ? _mm256_castps256_ps128(v) : _mm256_extractf128_ps(v, 1);
        acc = _mm_add_ss(acc, q);
        if (c + 1 < n) acc = _mm_add_ss(acc, _mm_movehdup_ps(q));
        if (c + 2 < n) acc = _mm_add_ss(acc, _mm_movehl_ps(q, q));
        if (c + 3 < n) acc = _mm_add_ss(acc, _mm_shuffle_ps(q, q, 3));
    }
    return _mm_cvtss_f32(acc);
}
TS_INLINE ts_vi ts_load_i32(const int32_t *p) { return _mm256_loadu_si256((const __m256i *)p); }
TS_INLINE ts_vf ts_gather_f32(const float *p, ts_vi index) { return _mm256_i32gather_ps(p, index, 4); } /* p[index[l]] */
TS_INLINE ts_vi ts_load_i8(const int8_t *p, int count) { /* full vectors: no buffer to clear */
    int8_t part[TS_QCHUNK];
    if (count < TS_QCHUNK) memset(part, 0, sizeof part), memcpy(part, p, (size_t)count), p = part;
    return _mm256_loadu_si256((const __m256i *)p);
}
/* acc (8 x int32) += sums of 4 products w * x. vpmaddubsw multiplies unsigned by signed
 * bytes into pairwise int16 sums: it gets |w| and x with w's sign, and |w| <= 128,
 * |x| <= 127 keep the pairs below 32767. No correction is needed. */
TS_INLINE ts_vi ts_load_qw(const int8_t *p, int count) { return ts_load_i8(p, count); }
TS_INLINE ts_vi ts_qdot(ts_vi acc, ts_vi w, ts_vi x) {
    __m256i pairs = _mm256_maddubs_epi16(_mm256_abs_epi8(w), _mm256_sign_epi8(x, w));
    return _mm256_add_epi32(acc, _mm256_madd_epi16(pairs, _mm256_set1_epi16(1)));
}
TS_INLINE ts_vi ts_qcorrect(ts_vi corr, ts_vi x) { return (void)x, corr; }
TS_INLINE ts_vi ts_vi_sub(ts_vi a, ts_vi b) { return _mm256_sub_epi32(a, b); }
/* Q8_0 prompts, tokens in the lanes (ts_tile_q8_tokens): acc += in each lane the 4 products
 * of quad's bytes (4 weights, broadcast) and the lane's 4 packed activations, stored as they
 * are: vpmaddubsw multiplies |w| by x with w's sign into int16 pairs (|w| <= 128, |x| <= 127:
 * no overflow) and vpmaddwd adds the pairs; so there is no offset to take off. */
TS_INLINE ts_vi ts_qtok_dot(ts_vi acc, ts_vi x, int32_t quad) {
    __m256i wv = _mm256_set1_epi32(quad);
    return _mm256_add_epi32(acc, _mm256_madd_epi16(_mm256_maddubs_epi16(_mm256_abs_epi8(wv), _mm256_sign_epi8(x, wv)), _mm256_set1_epi16(1)));
}
TS_INLINE ts_vi ts_qtok_offset(const int8_t *w, int len) { return (void)w, (void)len, _mm256_setzero_si256(); }
#elif defined(TS_NEON)
#define TS_LANES 4
#define TS_QCHUNK 16
typedef float32x4_t ts_vf;
typedef int32x4_t ts_vi;
TS_INLINE ts_vf ts_vf_zero(void) { return vdupq_n_f32(0.0f); }
TS_INLINE ts_vf ts_fma(ts_vf a, ts_vf b, ts_vf acc) { return vfmaq_f32(acc, a, b); } /* one rounding */
TS_INLINE float ts_vf_sum(ts_vf v) { /* (v0 + v2) + (v1 + v3) */
    float32x2_t w = vadd_f32(vget_low_f32(v), vget_high_f32(v));
    return vget_lane_f32(w, 0) + vget_lane_f32(w, 1);
}
TS_INLINE void ts_vf_sum4(const ts_vf *v, float *out) {
    for (int k = 0; k < 4; k++) out[k] = ts_vf_sum(v[k]);
}
TS_INLINE ts_vf ts_load_f32(const float *p, int count) {
    if (count == TS_LANES) return vld1q_f32(p);
    float part[TS_LANES] = {0};
    memcpy(part, p, (size_t)count * 4);
    return vld1q_f32(part);
}
TS_INLINE ts_vf ts_load_bf16(const uint16_t *p, int count) { /* bf16 -> f32: the bits go up 16 places */
    if (count == TS_LANES) return vreinterpretq_f32_u32(vshll_n_u16(vld1_u16(p), 16));
    uint16_t part[TS_LANES] = {0};
    memcpy(part, p, (size_t)count * 2);
    return vreinterpretq_f32_u32(vshll_n_u16(vld1_u16(part), 16));
}
TS_INLINE ts_vi ts_vi_zero(void) { return vdupq_n_s32(0); }
TS_INLINE ts_vi ts_vi_sum_rows(const ts_vi *v) { /* lane r = sum of the lanes of v[r], r < 4 */
    return vpaddq_s32(vpaddq_s32(v[0], v[1]), vpaddq_s32(v[2], v[3]));
}
TS_INLINE ts_vf ts_vf_from_vi(ts_vi v) { return vcvtq_f32_s32(v); }
TS_INLINE ts_vf ts_vf_set1(float v) { return vdupq_n_f32(v); }
TS_INLINE ts_vf ts_vf_add(ts_vf a, ts_vf b) { return vaddq_f32(a, b); }
TS_INLINE ts_vf ts_vf_mul(ts_vf a, ts_vf b) { return vmulq_f32(a, b); }
TS_INLINE void ts_store_f32(float *p, ts_vf v) { vst1q_f32(p, v); }
TS_INLINE float ts_vf_add_in_order(float val, ts_vf v, int n) { /* val + v[0] + ... + v[n-1], one after another */
    val += vgetq_lane_f32(v, 0);
    if (n > 1) val += vgetq_lane_f32(v, 1);
    if (n > 2) val += vgetq_lane_f32(v, 2);
    if (n > 3) val += vgetq_lane_f32(v, 3);
    return val;
}
TS_INLINE ts_vi ts_load_i32(const int32_t *p) { return vld1q_s32(p); }
TS_INLINE ts_vf ts_gather_f32(const float *p, ts_vi index) { /* p[index[l]] */
    float g[4] = {p[vgetq_lane_s32(index, 0)], p[vgetq_lane_s32(index, 1)], p[vgetq_lane_s32(index, 2)],
                  p[vgetq_lane_s32(index, 3)]};
    return vld1q_f32(g);
}
/* Q8_0 vectors are 16 int8 values, carried in an int32x4 register. Integer dot products:
 * with the dot-product extension (Armv8.2 sdot) each int32 lane adds 4 products of signed
 * bytes; without it, widening multiplies to int16 (|w x| <= 16384) and pairwise adds. */
TS_INLINE ts_vi ts_load_i8(const int8_t *p, int count) {
    if (count == TS_QCHUNK) return vreinterpretq_s32_s8(vld1q_s8(p));
    int8_t part[TS_QCHUNK] = {0};
    memcpy(part, p, (size_t)count);
    return vreinterpretq_s32_s8(vld1q_s8(part));
}
TS_INLINE ts_vi ts_load_qw(const int8_t *p, int count) { return ts_load_i8(p, count); }
TS_INLINE ts_vi ts_qdot(ts_vi acc, ts_vi w, ts_vi x) {
    int8x16_t wb = vreinterpretq_s8_s32(w), xb = vreinterpretq_s8_s32(x);
#if defined(__ARM_FEATURE_DOTPROD)
    return vdotq_s32(acc, wb, xb);
#else
    int16x8_t low = vmull_s8(vget_low_s8(wb), vget_low_s8(xb)), high = vmull_high_s8(wb, xb);
    return vpadalq_s16(vpadalq_s16(acc, low), high);
#endif
}
TS_INLINE ts_vi ts_qcorrect(ts_vi corr, ts_vi x) { return (void)x, corr; }
TS_INLINE ts_vi ts_vi_sub(ts_vi a, ts_vi b) { return vsubq_s32(a, b); }
#endif

#if defined(TS_SIMD)
/* A float dot product's order, the same in every SIMD path (AVX-512, AVX2, NEON), so that a
 * story is the same on every machine: 32 partial sums, sum l adding w[j] x[j] for
 * j = l, l + 32, l + 64, ... < cols in that order, each with one fused multiply-add, from 0;
 * then halves added lane to lane, 32 -> 16 -> 8 -> 4 -> 2 -> 1 (sum l + sum l + 16, ...).
 * A path with TS_LANES floats per vector keeps the 32 sums in TS_PARTS vectors: the first
 * halvings add whole vectors (ts_fold), the last ones are ts_vf_sum's tree within one. */
#define TS_ORDER 32
#define TS_PARTS (TS_ORDER / TS_LANES) /* 2 AVX-512, 4 AVX2, 8 NEON */
#if TS_PARTS % TS_PROMPT_PARTS != 0
#error "TS_PROMPT_PARTS must divide the vectors of 32 partial sums"
#endif
TS_INLINE ts_vf ts_fold(ts_vf *part) { /* TS_PARTS vectors -> one, for ts_vf_sum */
    for (int half = TS_PARTS / 2; half >= 1; half /= 2)
        for (int k = 0; k < half; k++) part[k] = ts_vf_add(part[k], part[k + half]);
    return part[0];
}

/* Rows i0..i0+R-1 x tokens t0..t0+T-1 of out (n, rows), f32 or bf16 weights (BF16, a
 * constant: each case compiles on its own). V of each output's TS_PARTS vectors of partial
 * sums are held at once, in TS_PARTS / V passes over the rows, so that a tile of many
 * outputs fits in the registers (R T V accumulators): decoding holds all of them (one row,
 * V = TS_PARTS independent chains, the row read front to back), prompts one. */
#define TS_MAX_TILE 4
/* One vector step of a tile: acc[r][t] += w (row r, count values from column at) * x (token
 * t0 + t, the same columns), lane by lane. count is TS_LANES but in a row's last group. */
TS_INLINE void ts_tile_step(ts_vf acc[TS_MAX_TILE][TS_MAX_TILE][TS_PARTS], int v, const ts_matrix *w, const float *x, int i0,
                            int t0, int R, int T, int BF16, int at, int count) {
    int cols = w->cols;
    ts_vf wv[TS_MAX_TILE];
    for (int r = 0; r < R; r++) {
        size_t k = (size_t)(i0 + r) * cols + at;
        wv[r] = BF16 ? ts_load_bf16((const uint16_t *)w->data + k, count) : ts_load_f32((const float *)w->data + k, count);
    }
    for (int t = 0; t < T; t++) {
        ts_vf xv = ts_load_f32(x + (size_t)(t0 + t) * cols + at, count);
        for (int r = 0; r < R; r++) acc[r][t][v] = ts_fma(wv[r], xv, acc[r][t][v]);
    }
}
TS_INLINE void ts_tile_float(float *out, const ts_matrix *w, const float *x, int i0, int t0, int R, int T, int V, int BF16) {
    int rows = w->rows, cols = w->cols, full = cols / TS_ORDER * TS_ORDER;
    const char *bytes = (const char *)w->data + (size_t)i0 * cols * (BF16 ? 2 : 4); /* the tile's first row */
    ts_vf part[TS_MAX_TILE][TS_MAX_TILE][TS_PARTS];
    for (int p0 = 0; p0 < TS_PARTS; p0 += V) {
        ts_vf acc[TS_MAX_TILE][TS_MAX_TILE][TS_PARTS];
        for (int r = 0; r < R; r++)
            for (int t = 0; t < T; t++)
                for (int v = 0; v < V; v++) acc[r][t][v] = ts_vf_zero();
        for (int j = p0 * TS_LANES; j < full; j += TS_ORDER) /* whole groups of 32 */
            for (int v = 0; v < V; v++) {
                int at = j + v * TS_LANES;
                if (T == 1 && TS_AHEAD > 0) /* decoding: the row's lines TS_AHEAD bytes on */
                    for (int r = 0; r < R; r++) TS_PREFETCH(bytes + ((size_t)r * cols + at) * (BF16 ? 2 : 4), TS_AHEAD);
                ts_tile_step(acc, v, w, x, i0, t0, R, T, BF16, at, TS_LANES);
            }
        for (int v = 0; v < V; v++) { /* the last, partial group: vectors with fewer values or none */
            int at = full + (p0 + v) * TS_LANES, count = cols - at < TS_LANES ? cols - at : TS_LANES;
            if (count > 0) ts_tile_step(acc, v, w, x, i0, t0, R, T, BF16, at, count);
        }
        for (int r = 0; r < R; r++)
            for (int t = 0; t < T; t++)
                for (int v = 0; v < V; v++) part[r][t][p0 + v] = acc[r][t][v];
    }
    ts_vf folded[TS_MAX_TILE * TS_MAX_TILE];
    float sum[TS_MAX_TILE * TS_MAX_TILE];
    int k = 0, count = R * T;
    for (int r = 0; r < R; r++)
        for (int t = 0; t < T; t++) folded[r * T + t] = ts_fold(part[r][t]);
    for (; k + 4 <= count; k += 4) ts_vf_sum4(folded + k, sum + k); /* four trees at once */
    for (; k < count; k++) sum[k] = ts_vf_sum(folded[k]);
    for (int r = 0; r < R; r++)
        for (int t = 0; t < T; t++) out[(size_t)(t0 + t) * rows + i0 + r] = sum[r * T + t];
}

/* All tokens of rows i0..i0+R-1 (R constant), in tiles of TS_PROMPT_TOKENS tokens and the rest. */
TS_INLINE void ts_rows_float(float *out, const ts_matrix *w, const float *x, int i0, int R, int n, int BF16) {
    if (n == 1) {
        ts_tile_float(out, w, x, i0, 0, R, 1, TS_PARTS, BF16);
        return;
    }
    int t = 0;
    for (; t + TS_PROMPT_TOKENS <= n; t += TS_PROMPT_TOKENS) ts_tile_float(out, w, x, i0, t, R, TS_PROMPT_TOKENS, TS_PROMPT_PARTS, BF16);
    switch (n - t) { /* constant shapes: their loops unroll and the accumulators stay in registers */
    case 3: ts_tile_float(out, w, x, i0, t, R, 3, TS_PROMPT_PARTS, BF16); break;
    case 2: ts_tile_float(out, w, x, i0, t, R, 2, TS_PROMPT_PARTS, BF16); break;
    case 1: ts_tile_float(out, w, x, i0, t, R, 1, TS_PROMPT_PARTS, BF16); break;
    default: break;
    }
}

/* A Q8_0 tile: R rows x T tokens with R T = TS_LANES (TS_LANES x 1 when decoding, 4 x 4 or
 * 4 x 2 for prompts), from row i0 and token t0; only nr <= R rows and nt <= T tokens exist
 * (the others repeat the last row or token and are not stored). Lane r T + t of a vector is
 * output (row i0 + r, token t0 + t). Summing the lanes of one vector per output and group
 * would cost more than the integer dot products, so each output's group is summed in its
 * own vector and ts_vi_sum_rows adds all TS_LANES of them at once into one vector; then
 * ts_q8_step runs on TS_LANES outputs in one vector step, in the plain loop's order: the
 * plain loop's bits. Each weight row loaded serves T tokens, each activation R rows. */
TS_INLINE void ts_tile_q8(float *out, const ts_matrix *w, const int8_t *xq, const float *xs, int i0, int t0, int R,
                          int T, int nr, int nt) {
    int rows = w->rows, cols = w->cols, gs = w->group_size, groups = ts_groups(cols, gs);
    const int8_t *wrow[TS_LANES], *xrow[4];
    int32_t w_at[TS_LANES], x_at[TS_LANES]; /* each lane's scales: row and token, in floats */
    for (int r = 0; r < R; r++) wrow[r] = (const int8_t *)w->data + (size_t)(i0 + (r < nr ? r : nr - 1)) * cols;
    for (int t = 0; t < T; t++) xrow[t] = xq + (size_t)(t0 + (t < nt ? t : nt - 1)) * cols;
    for (int lane = 0; lane < TS_LANES; lane++) {
        int r = lane / T, t = lane % T;
        w_at[lane] = (r < nr ? r : nr - 1) * groups, x_at[lane] = (t < nt ? t : nt - 1) * groups;
    }
    ts_vi w_index = ts_load_i32(w_at), x_index = ts_load_i32(x_at), acc[TS_LANES], corr[4], xv[4];
    const float *w_scale = w->scale + (size_t)i0 * groups, *x_scale = xs + (size_t)t0 * groups;
    ts_vf val = ts_vf_zero();
    for (int g = 0; g < groups; g++) {
        int start = g * gs, len = cols - start < gs ? cols - start : gs;
        for (int t = 0; t < T; t++) corr[t] = ts_vi_zero();
        for (int lane = 0; lane < TS_LANES; lane++) acc[lane] = ts_vi_zero();
        for (int k = start; k < start + len; k += TS_QCHUNK) {
            int count = start + len - k < TS_QCHUNK ? start + len - k : TS_QCHUNK;
            for (int t = 0; t < T; t++) {
                xv[t] = ts_load_i8(xrow[t] + k, count);
                corr[t] = ts_qcorrect(corr[t], xv[t]);
            }
            for (int r = 0; r < R; r++) {
                TS_PREFETCH(wrow[r] + k, (size_t)R * cols); /* the next tile's: its rows are interleaved */
                ts_vi wv = ts_load_qw(wrow[r] + k, count);
                for (int t = 0; t < T; t++) acc[r * T + t] = ts_qdot(acc[r * T + t], wv, xv[t]);
            }
        }
        for (int lane = 0; lane < TS_LANES; lane++) acc[lane] = ts_vi_sub(acc[lane], corr[lane % T]);
        ts_vf isum = ts_vf_from_vi(ts_vi_sum_rows(acc));
        /* ts_q8_step: val + (float)ival * w_scale * x_scale */
        ts_vf xs_g = T == 1 ? ts_vf_set1(x_scale[g]) : ts_gather_f32(x_scale + g, x_index); /* one token: one scale */
        val = ts_vf_add(val, ts_vf_mul(ts_vf_mul(isum, ts_gather_f32(w_scale + g, w_index)), xs_g));
    }
    float result[TS_LANES];
    ts_store_f32(result, val);
    for (int r = 0; r < nr; r++)
        for (int t = 0; t < nt; t++) out[(size_t)(t0 + t) * rows + i0 + r] = result[r * T + t];
}

/* One Q8_0 row for decoding (one token), read front to back as the float rows are: the
 * integer sums of TS_LANES consecutive groups (each summed in a vector of its own) are added
 * up in one transposing step (ts_vi_sum_rows) and scaled in one vector step, then added to
 * the output one after another: ts_q8_step's order, the plain loop's bits. For rows of at
 * least TS_LANES groups (shorter ones, which leave lanes idle, use ts_tile_q8). */
TS_INLINE ts_vi ts_q8_group(const int8_t *w, const int8_t *x, int len) { /* one group's int32 sum, in lanes */
    ts_vi acc = ts_vi_zero(), corr = ts_vi_zero();
    int k = 0;
    for (; k + TS_QCHUNK <= len; k += TS_QCHUNK) {
        ts_vi xv = ts_load_i8(x + k, TS_QCHUNK);
        acc = ts_qdot(acc, ts_load_qw(w + k, TS_QCHUNK), xv);
        corr = ts_qcorrect(corr, xv);
    }
    if (k < len) {
        ts_vi xv = ts_load_i8(x + k, len - k);
        acc = ts_qdot(acc, ts_load_qw(w + k, len - k), xv);
        corr = ts_qcorrect(corr, xv);
    }
    return ts_vi_sub(acc, corr);
}
TS_INLINE void ts_row_q8(float *out, const ts_matrix *w, const int8_t *xq, const float *xs, int i) {
    int cols = w->cols, gs = w->group_size, groups = ts_groups(cols, gs);
    const int8_t *row = (const int8_t *)w->data + (size_t)i * cols;
    const float *w_scale = w->scale + (size_t)i * groups;
    float val = 0.0f;
    ts_vi acc[TS_LANES];
    for (int g0 = 0; g0 < groups; g0 += TS_LANES) {
        int ng = groups - g0 < TS_LANES ? groups - g0 : TS_LANES;
        TS_UNROLL(16)
        for (int l = 0; l < TS_LANES; l++) { /* unrolled: acc stays in registers */
            int start = (g0 + l) * gs, len = cols - start < gs ? cols - start : gs;
            if (l >= ng) {
                acc[l] = ts_vi_zero();
                continue;
            }
            if (TS_AHEAD > 0) TS_PREFETCH(row + start, TS_AHEAD);
            /* 64-value groups (llama2.c's runq and our exporter's default) as a constant: unrolled */
            acc[l] = len == 64 ? ts_q8_group(row + start, xq + start, 64) : ts_q8_group(row + start, xq + start, len);
        }
        ts_vf isum = ts_vf_from_vi(ts_vi_sum_rows(acc)); /* ts_q8_step's products, TS_LANES groups at once */
        val = ts_vf_add_in_order(val, ts_vf_mul(ts_vf_mul(isum, ts_load_f32(w_scale + g0, ng)), ts_load_f32(xs + g0, ng)), ng);
    }
    out[i] = val;
}

#if defined(TS_PACK_LANES)
/* Q8_0 for prompts: tokens in the lanes, so that no lanes need summing at all. ts_pack_q8
 * lays out the block's quantized activations as (token tiles of L = TS_PACK_LANES, slots, L
 * lanes) dwords: slot j of group g holds in lane l the 4 bytes xq[L tile + l][g gs + 4 j ..]
 * (0 past the group's end and for tokens past n), and the scales as (token tiles, groups, L).
 * A weight row's 4 bytes, broadcast to all lanes, multiply those 4 bytes of L tokens: lane l
 * adds the 4 products of token l. AVX-512 (vpdpbusd: unsigned by signed bytes) stores
 * x + 128 and takes 128 sum(w) off once per row and group; AVX2 (vpmaddubsw) stores x as it
 * is and multiplies |w| by x with w's sign. The integer sums are the plain loop's, and so,
 * by ts_q8_step's order, are the outputs. */
#define TS_PACK_MIN_TOKENS 8 /* fewer tokens: the rows-in-lanes tile */
#if defined(TS_AVX512)
#define TS_PACK_FLIP 0x80808080u /* + 128 to each byte: flip its top bit */
#else
#define TS_PACK_FLIP 0u
#endif
static void ts_pack_q8(uint32_t *packed, float *packed_scale, const int8_t *xq, const float *xs, int n, int cols, int gs) {
    enum { L = TS_PACK_LANES };
    int groups = ts_groups(cols, gs), slots = ts_q8_slots(cols, gs);
    for (int t = 0; t < (n + L - 1) / L * L; t++) {
        uint32_t *lane = packed + (size_t)(t / L) * slots * L + t % L;
        float *lane_scale = packed_scale + (size_t)(t / L) * groups * L + t % L;
        const int8_t *xt = xq + (size_t)t * cols;
        if (t >= n) { /* padding tokens */
            for (int slot = 0; slot < slots; slot++) lane[(size_t)slot * L] = 0;
            for (int g = 0; g < groups; g++) lane_scale[(size_t)g * L] = 0.0f;
            continue;
        }
        for (int g = 0, slot = 0; g < groups; g++) {
            int start = g * gs, end = start + gs < cols ? start + gs : cols, k = start;
            for (; k + 4 <= end; k += 4, slot++) {
                uint32_t quad;
                memcpy(&quad, xt + k, 4);
                lane[(size_t)slot * L] = quad ^ TS_PACK_FLIP;
            }
            if (k < end) { /* a group's last 1-3 values, then 0s */
                uint8_t b[4] = {0, 0, 0, 0};
                for (int i = 0; k + i < end; i++) b[i] = (uint8_t)(xt[k + i] ^ (uint8_t)TS_PACK_FLIP);
                memcpy(&lane[(size_t)slot++ * L], b, 4);
            }
            lane_scale[(size_t)g * L] = xs[(size_t)t * groups + g];
        }
    }
}
#endif

#if defined(TS_PACK_LANES)
#ifndef TS_TOKEN_TILE_ROWS
#if defined(TS_AVX512)
#define TS_TOKEN_TILE_ROWS 8 /* 8 rows x 2 token tiles = 16 accumulators: enough to keep vpdpbusd busy */
#else
#define TS_TOKEN_TILE_ROWS 4 /* 4 x 2 = 8 accumulators of AVX2's 16 registers */
#endif
#endif
/* Rows i0 .. i0+R-1 (R <= TS_TOKEN_TILE_ROWS) for the TT (<= 2) token tiles from `tile`:
 * TS_LANES TT tokens, of which the first nt exist. Each 4 weights loaded serve all TT tiles. */
TS_INLINE void ts_tile_q8_tokens(float *out, const ts_matrix *w, const uint32_t *packed, const float *packed_scale, int i0,
                                 int R, int tile, int TT, int nt) {
    enum { L = TS_PACK_LANES };
    int rows = w->rows, cols = w->cols, gs = w->group_size, groups = ts_groups(cols, gs), slots = ts_q8_slots(cols, gs);
    const int8_t *wrow[TS_TOKEN_TILE_ROWS];
    const uint32_t *xp[2];
    ts_vi acc[TS_TOKEN_TILE_ROWS][2];
    ts_vf val[TS_TOKEN_TILE_ROWS][2];
    for (int r = 0; r < R; r++) wrow[r] = (const int8_t *)w->data + (size_t)(i0 + r) * cols;
    for (int u = 0; u < TT; u++) xp[u] = packed + (size_t)(tile + u) * slots * L;
    for (int r = 0; r < R; r++)
        for (int u = 0; u < TT; u++) val[r][u] = ts_vf_zero();
    for (int g = 0, slot = 0; g < groups; g++) {
        int start = g * gs, end = start + gs < cols ? start + gs : cols;
        for (int r = 0; r < R; r++)
            for (int u = 0; u < TT; u++) acc[r][u] = ts_vi_zero();
        for (int k = start; k < end; k += 4, slot++) {
            int count = end - k < 4 ? end - k : 4; /* 4 weights, 0s past the group's end */
            ts_vi xv[2];
            for (int u = 0; u < TT; u++) xv[u] = ts_load_i32((const int32_t *)(xp[u] + (size_t)slot * L));
            for (int r = 0; r < R; r++) {
                int32_t quad = 0;
                if (count == 4) memcpy(&quad, wrow[r] + k, 4);
                else memcpy(&quad, wrow[r] + k, (size_t)count);
                for (int u = 0; u < TT; u++) acc[r][u] = ts_qtok_dot(acc[r][u], xv[u], quad);
            }
        }
        for (int r = 0; r < R; r++) {
            ts_vi offset = ts_qtok_offset(wrow[r] + start, end - start);
            ts_vf w_scale = ts_vf_set1(w->scale[(size_t)(i0 + r) * groups + g]);
            for (int u = 0; u < TT; u++) {
                ts_vf isum = ts_vf_from_vi(ts_vi_sub(acc[r][u], offset));
                ts_vf x_scale = ts_load_f32(packed_scale + ((size_t)(tile + u) * groups + g) * L, L);
                val[r][u] = ts_vf_add(val[r][u], ts_vf_mul(ts_vf_mul(isum, w_scale), x_scale)); /* ts_q8_step */
            }
        }
    }
    for (int u = 0; u < TT; u++) {
        float result[TS_TOKEN_TILE_ROWS][L];
        for (int r = 0; r < R; r++) ts_store_f32(result[r], val[r][u]);
        for (int l = 0; l < L && L * u + l < nt; l++)
            for (int r = 0; r < R; r++) out[(size_t)(L * (tile + u) + l) * rows + i0 + r] = result[r][l];
    }
}
#endif

/* The products of one call (see ts_matmuls), in tiles: the tiles of rows of all the
 * matrices are shared out to the threads in one parallel loop. `packed` has room for
 * ts_q8_packed_bytes(n, cols, group size) (or is NULL: then no prompt path of its own). */
static void ts_matmul_fast(const ts_product *p, int count, const float *x, const int8_t *xq, const float *xs, void *packed,
                           int n) {
    /* Float tiles of TS_DECODE_ROWS or TS_PROMPT_ROWS rows; Q8_0 tiles of R rows x T tokens (see ts_tile_q8), or for prompts on
     * AVX-512 and AVX2 of TS_TOKEN_TILE_ROWS rows x 2 token tiles (ts_tile_q8_tokens) */
    int q8 = p[0].w->type == TS_Q8_0, T = q8 && n >= TS_LANES / 4 ? TS_LANES / 4 : 1;
    int R = q8 ? TS_LANES / T : n == 1 ? TS_DECODE_ROWS : TS_PROMPT_ROWS;
#if defined(TS_PACK_LANES)
    int tokens_in_lanes = 0;
    const ts_matrix *w0 = p[0].w;
    float *packed_scale = NULL;
    if (q8 && packed && n >= TS_PACK_MIN_TOKENS) {
        tokens_in_lanes = 1, R = TS_TOKEN_TILE_ROWS;
        packed_scale = (float *)((uint32_t *)packed + ts_q8_packed_dwords(n, w0->cols, w0->group_size));
        ts_pack_q8((uint32_t *)packed, packed_scale, xq, xs, n, w0->cols, w0->group_size);
    }
#else
    (void)packed;
#endif
    int first[TS_MAX_PRODUCTS + 1] = {0}, height = R;
    double work = 0;
    for (int k = 0; k < count; k++) {
        first[k + 1] = first[k] + (p[k].w->rows + height - 1) / height;
        work += (double)p[k].w->rows * p[k].w->cols * n;
    }
    (void)work; /* read only by the OpenMP clause */
    TS_PARALLEL_FOR_IF(work >= TS_PARALLEL_MIN_WORK)
    for (int tile = 0; tile < first[count]; tile++) {
        int k = 0;
        while (tile >= first[k + 1]) k++;
        const ts_matrix *w = p[k].w;
        float *out = p[k].out;
        int i0 = height * (tile - first[k]), rows = w->rows;
#if defined(TS_PACK_LANES)
        if (tokens_in_lanes) {
            int token_tiles = (n + TS_PACK_LANES - 1) / TS_PACK_LANES;
            for (int tt = 0; tt < token_tiles; tt += 2) {
                int TT = token_tiles - tt < 2 ? 1 : 2, nt = n - TS_PACK_LANES * tt;
                if (i0 + TS_TOKEN_TILE_ROWS <= rows) {
                    if (TT == 2) ts_tile_q8_tokens(out, w, packed, packed_scale, i0, TS_TOKEN_TILE_ROWS, tt, 2, nt);
                    else ts_tile_q8_tokens(out, w, packed, packed_scale, i0, TS_TOKEN_TILE_ROWS, tt, 1, nt);
                } else
                    for (int i = i0; i < rows; i++) ts_tile_q8_tokens(out, w, packed, packed_scale, i, 1, tt, TT, nt);
            }
            continue;
        }
#endif
        if (q8) {
            int nr = rows - i0 < R ? rows - i0 : R;
            if (n == 1 && ts_groups(w->cols, w->group_size) >= TS_ROW_Q8_MIN_GROUPS) /* decoding long rows: one after another */
                for (int i = i0; i < i0 + nr; i++) ts_row_q8(out, w, xq, xs, i);
            else
            for (int t = 0; t < n; t += T) { /* the tile's shape as constants: its loops unroll */
                if (T == 1) ts_tile_q8(out, w, xq, xs, i0, t, TS_LANES, 1, nr, 1);
                else ts_tile_q8(out, w, xq, xs, i0, t, 4, TS_LANES / 4, nr, n - t < T ? n - t : T);
            }
        } else if (i0 + height <= rows) {
            if (n == 1 && w->type == TS_BF16) ts_rows_float(out, w, x, i0, TS_DECODE_ROWS, 1, 1);
            else if (n == 1) ts_rows_float(out, w, x, i0, TS_DECODE_ROWS, 1, 0);
            else if (w->type == TS_BF16) ts_rows_float(out, w, x, i0, TS_PROMPT_ROWS, n, 1);
            else ts_rows_float(out, w, x, i0, TS_PROMPT_ROWS, n, 0);
        } else /* the last rows, one at a time */
            for (int i = i0; i < rows; i++) {
                if (w->type == TS_BF16) ts_rows_float(out, w, x, i, 1, n, 1);
                else ts_rows_float(out, w, x, i, 1, n, 0);
            }
    }
}

/* The vector exp (ts_fast_exp): x[i] = expf(x[i]), a vector of values at once, with
 * libm's bits: llama2.c calls expf, and a last bit changed here can change which
 * token a story samples. glibc's expf (Arm's algorithm, also musl's) is, on machines with
 * FMA: x N / ln 2 = k + r (N = 32, k rounded to nearest by adding 1.5 2^52), 2^(k/N) from a
 * table of 2^(i/N) with the exponent of k / N added to its bits, 2^(r/N) by a cubic, in
 * double precision, rounded once to float. ts_exp_lanes runs those steps in SIMD lanes, with
 * the same fused multiply-adds; |x| >= 88 (overflow, underflow, inf, NaN) and the tail go to
 * libm's expf. test_speed compares the two at every 13th float of all 2^32. */
#if defined(TS_AVX512) || defined(TS_AVX2)
static const uint64_t ts_exp2_table[32] = { /* bits of 2^(i/32), minus i << 47 */
    0x3ff0000000000000, 0x3fefd9b0d3158574, 0x3fefb5586cf9890f, 0x3fef9301d0125b51, 0x3fef72b83c7d517b,
    0x3fef54873168b9aa, 0x3fef387a6e756238, 0x3fef1e9df51fdee1, 0x3fef06fe0a31b715, 0x3feef1a7373aa9cb,
    0x3feedea64c123422, 0x3feece086061892d, 0x3feebfdad5362a27, 0x3feeb42b569d4f82, 0x3feeab07dd485429,
    0x3feea47eb03a5585, 0x3feea09e667f3bcd, 0x3fee9f75e8ec5f74, 0x3feea11473eb0187, 0x3feea589994cce13,
    0x3feeace5422aa0db, 0x3feeb737b0cdc5e5, 0x3feec49182a3f090, 0x3feed503b23e255d, 0x3feee89f995ad3ad,
    0x3feeff76f2fb5e47, 0x3fef199bdd85529c, 0x3fef3720dcef9069, 0x3fef5818dcfba487, 0x3fef7c97337b9b5f,
    0x3fefa4afa2a490da, 0x3fefd0765b6e4540,
};
#define TS_EXP_INV_LN2_N (0x1.71547652b82fep+0 * 32) /* N / ln 2 */
#define TS_EXP_SHIFT 0x1.8p+52                        /* adding it rounds to an integer */
#define TS_EXP_C0 (0x1.c6af84b912394p-5 / 32 / 32 / 32) /* 2^(r/N) ~ C0 r^3 + C1 r^2 + C2 r + 1 */
#define TS_EXP_C1 (0x1.ebfce50fac4f3p-3 / 32 / 32)
#define TS_EXP_C2 (0x1.62e42ff0c52d6p-1 / 32)
#endif
#if defined(TS_AVX512)
#define TS_EXP_LANES 16
typedef __m512d ts_vd; /* 8 doubles */
TS_INLINE ts_vd ts_vd_set1(double v) { return _mm512_set1_pd(v); }
TS_INLINE ts_vd ts_vd_fmadd(ts_vd a, ts_vd b, ts_vd c) { return _mm512_fmadd_pd(a, b, c); } /* a b + c, one rounding */
TS_INLINE ts_vd ts_vd_fmsub(ts_vd a, ts_vd b, ts_vd c) { return _mm512_fmsub_pd(a, b, c); } /* a b - c, one rounding */
TS_INLINE ts_vd ts_vd_sub(ts_vd a, ts_vd b) { return _mm512_sub_pd(a, b); }
TS_INLINE ts_vd ts_vd_mul(ts_vd a, ts_vd b) { return _mm512_mul_pd(a, b); }
/* the bits of 2^(k/32): table[k % 32] + k << 47, k in the low bits of kd's bits */
TS_INLINE ts_vd ts_exp2_k(ts_vd kd) {
    __m512i k = _mm512_castpd_si512(kd);
    /* table[k % 32]: two 16-entry lookups across registers (vpermt2q), chosen by bit 4 */
    __m512i low = _mm512_permutex2var_epi64(_mm512_loadu_si512(ts_exp2_table), k, _mm512_loadu_si512(ts_exp2_table + 8));
    __m512i high = _mm512_permutex2var_epi64(_mm512_loadu_si512(ts_exp2_table + 16), k, _mm512_loadu_si512(ts_exp2_table + 24));
    __m512i t = _mm512_mask_blend_epi64(_mm512_test_epi64_mask(k, _mm512_set1_epi64(16)), low, high);
    return _mm512_castsi512_pd(_mm512_add_epi64(t, _mm512_slli_epi64(k, 47)));
}
#elif defined(TS_AVX2)
#define TS_EXP_LANES 8
typedef __m256d ts_vd; /* 4 doubles */
TS_INLINE ts_vd ts_vd_set1(double v) { return _mm256_set1_pd(v); }
TS_INLINE ts_vd ts_vd_fmadd(ts_vd a, ts_vd b, ts_vd c) { return _mm256_fmadd_pd(a, b, c); }
TS_INLINE ts_vd ts_vd_fmsub(ts_vd a, ts_vd b, ts_vd c) { return _mm256_fmsub_pd(a, b, c); }
TS_INLINE ts_vd ts_vd_sub(ts_vd a, ts_vd b) { return _mm256_sub_pd(a, b); }
TS_INLINE ts_vd ts_vd_mul(ts_vd a, ts_vd b) { return _mm256_mul_pd(a, b); }
TS_INLINE ts_vd ts_exp2_k(ts_vd kd) {
    __m256i k = _mm256_castpd_si256(kd);
    __m256i t = _mm256_i64gather_epi64((const long long *)ts_exp2_table, _mm256_and_si256(k, _mm256_set1_epi64x(31)), 8);
    return _mm256_castsi256_pd(_mm256_add_epi64(t, _mm256_slli_epi64(k, 47)));
}
#endif
#if defined(TS_EXP_LANES)
TS_INLINE ts_vd ts_exp_pd(ts_vd x) { /* a vector of doubles, the steps above */
    ts_vd kd = ts_vd_fmadd(ts_vd_set1(TS_EXP_INV_LN2_N), x, ts_vd_set1(TS_EXP_SHIFT)); /* k in the low bits */
    ts_vd s = ts_exp2_k(kd);
    kd = ts_vd_sub(kd, ts_vd_set1(TS_EXP_SHIFT));
    ts_vd r = ts_vd_fmsub(ts_vd_set1(TS_EXP_INV_LN2_N), x, kd);
    ts_vd z = ts_vd_fmadd(ts_vd_set1(TS_EXP_C0), r, ts_vd_set1(TS_EXP_C1));
    ts_vd y = ts_vd_fmadd(ts_vd_set1(TS_EXP_C2), r, ts_vd_set1(1.0));
    y = ts_vd_fmadd(z, ts_vd_mul(r, r), y);
    return ts_vd_mul(y, s);
}
#endif
#if defined(TS_AVX512)
TS_INLINE int ts_exp_lanes(float *p) { /* 16 values; 0 if one of them needs libm */
    __m512 x = _mm512_loadu_ps(p);
    if (_mm512_cmp_ps_mask(_mm512_abs_ps(x), _mm512_set1_ps(88.0f), _CMP_NLT_UQ)) return 0;
    __m256 low = _mm512_cvtpd_ps(ts_exp_pd(_mm512_cvtps_pd(_mm512_castps512_ps256(x))));
    __m256 high = _mm512_cvtpd_ps(ts_exp_pd(_mm512_cvtps_pd(_mm512_extractf32x8_ps(x, 1))));
    _mm256_storeu_ps(p, low), _mm256_storeu_ps(p + 8, high);
    return 1;
}
#elif defined(TS_AVX2)
TS_INLINE int ts_exp_lanes(float *p) { /* 8 values; 0 if one of them needs libm */
    __m256 x = _mm256_loadu_ps(p), big = _mm256_set1_ps(88.0f);
    __m256 magnitude = _mm256_andnot_ps(_mm256_set1_ps(-0.0f), x);
    if (_mm256_movemask_ps(_mm256_cmp_ps(magnitude, big, _CMP_NLT_UQ))) return 0;
    __m128 low = _mm256_cvtpd_ps(ts_exp_pd(_mm256_cvtps_pd(_mm256_castps256_ps128(x))));
    __m128 high = _mm256_cvtpd_ps(ts_exp_pd(_mm256_cvtps_pd(_mm256_extractf128_ps(x, 1))));
    _mm_storeu_ps(p, low), _mm_storeu_ps(p + 4, high);
    return 1;
}
#endif
#if defined(TS_EXP_LANES)
static size_t ts_fast_exp(float *x, size_t n) {
    size_t i = 0;
    for (; i + TS_EXP_LANES <= n; i += TS_EXP_LANES)
        if (!ts_exp_lanes(x + i))
            for (size_t k = i; k < i + TS_EXP_LANES; k++) x[k] = expf(x[k]);
    return i;
}
#define TS_HAVE_FAST_EXP 1
#endif

/* The SIMD max (ts_fast_max): the largest of x[0..n) as the loop `if (x[i] > m) m = x[i]`
 * from m = x[0] finds it. The largest value does not depend on the order it is looked for
 * in, except when x[0] is NaN (the loop then never replaces it) and for the sign of a zero
 * maximum (which no caller can tell: x - max and x == max come out the same), so a vector
 * of lanes looks at once. vmaxps(a, b) is exactly a > b ? a : b. */
#if defined(TS_AVX512) || defined(TS_AVX2)
static int ts_fast_max(const float *x, int n, float *out) {
    float max_val = x[0];
    int i = 0;
    if (x[0] != x[0]) return *out = x[0], 1;
#if defined(TS_AVX512)
    __m512 lanes = _mm512_set1_ps(x[0]);
    for (; i + 16 <= n; i += 16) lanes = _mm512_max_ps(_mm512_loadu_ps(x + i), lanes);
    max_val = _mm512_reduce_max_ps(lanes); /* lanes hold no NaN: any order */
#else
    __m256 lanes = _mm256_set1_ps(x[0]);
    for (; i + 8 <= n; i += 8) lanes = _mm256_max_ps(_mm256_loadu_ps(x + i), lanes);
    float lane[8];
    _mm256_storeu_ps(lane, lanes);
    for (int l = 0; l < 8; l++) max_val = lane[l] > max_val ? lane[l] : max_val;
#endif
    for (; i < n; i++) max_val = x[i] > max_val ? x[i] : max_val;
    *out = max_val;
    return 1;
}
#define TS_HAVE_FAST_MAX 1
#endif

/* Softmax in place of `rows` rows of x, each `size` long and `stride` apart: ts_softmax's
 * steps for each row, and each row's sum adds its values in order, one dependent addition
 * after another, as ts_softmax does; the sums of up to 8 rows advance together,
 * independent chains that the processor overlaps. */
static void ts_softmax_rows(float *x, int rows, size_t stride, int size) {
    for (int r = 0; r < rows; r++) {
        float *row = x + (size_t)r * stride, max_val = ts_max(row, size);
        for (int i = 0; i < size; i++) row[i] -= max_val;
        ts_exp(row, (size_t)size);
    }
    for (int r0 = 0; r0 < rows; r0 += 8) {
        int count = rows - r0 < 8 ? rows - r0 : 8;
        float sum[8] = {0};
        for (int i = 0; i < size; i++)
            for (int r = 0; r < count; r++) sum[r] += x[(size_t)(r0 + r) * stride + i];
        for (int r = 0; r < count; r++) {
            float *row = x + (size_t)(r0 + r) * stride;
            for (int i = 0; i < size; i++) row[i] /= sum[r];
        }
    }
}

#if defined(TS_AVX512)
/* The value sums of a unit of nh heads from head h0 in vector registers: out (nh hd) for
 * one token, weights a (nh, a_stride) over len positions, values v (len, kv_dim) from the
 * window's first position. The loop above keeps its sums in memory, a chain of store, load
 * and add per position; here up to 4 slices of 16 outputs stay in registers, each lane's
 * weight and value picked by vpermps from 16 weights (the unit's, at this position, copied
 * into w_t) and 16 values; each lane still adds a * v position after position, as the
 * loop does. Returns 0 (the loop runs) where a slice's values do not fit in 16 floats. */
static int ts_value_sums_lanes(float *out, const float *a, int a_stride, const float *v, int kv_dim, int h0, int nh,
                               int hd, int group, int len) {
    int width = nh * hd, slices = (width + 15) / 16;
    if (nh > 16 || slices > 4) return 0;
    __m512i a_lane[4], v_lane[4];
    int v_base[4];
    for (int sl = 0; sl < slices; sl++) { /* lane l of slice sl: output j = 16 sl + l */
        int32_t ai[16], vi[16], low = INT32_MAX, high = -1;
        for (int l = 0; l < 16; l++) {
            int j = 16 * sl + l < width ? 16 * sl + l : width - 1, head = h0 + j / hd;
            ai[l] = j / hd, vi[l] = head / group * hd + j % hd;
            low = vi[l] < low ? vi[l] : low, high = vi[l] > high ? vi[l] : high;
        }
        if (high - low >= 16 || low + 16 > kv_dim) return 0;
        for (int l = 0; l < 16; l++) vi[l] -= low;
        a_lane[sl] = _mm512_loadu_si512(ai), v_lane[sl] = _mm512_loadu_si512(vi), v_base[sl] = low;
    }
    __m512 acc[4] = {_mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps()};
    float w_t[256][16]; /* (positions, heads): the unit's weights, 256 positions at a time */
    for (int k0 = 0; k0 < len; k0 += 256) {
        int count = len - k0 < 256 ? len - k0 : 256;
        for (int h = 0; h < nh; h++)
            for (int k = 0; k < count; k++) w_t[k][h] = a[(size_t)h * a_stride + k0 + k];
        for (int k = 0; k < count; k++) {
            __m512 weights = _mm512_loadu_ps(w_t[k]); /* lanes past nh: not picked */
            const float *vk = v + (size_t)(k0 + k) * kv_dim;
            for (int sl = 0; sl < slices; sl++) {
                __m512 vs = _mm512_permutexvar_ps(v_lane[sl], _mm512_loadu_ps(vk + v_base[sl]));
                acc[sl] = _mm512_add_ps(acc[sl], _mm512_mul_ps(_mm512_permutexvar_ps(a_lane[sl], weights), vs));
            }
        }
    }
    for (int sl = 0; sl < slices; sl++) {
        float lanes[16];
        _mm512_storeu_ps(lanes, acc[sl]);
        for (int l = 0; l < 16 && 16 * sl + l < width; l++) out[16 * sl + l] = lanes[l];
    }
    return 1;
}
#endif

/* The fast attention (ts_fast_attention): ts_attention_plain's numbers, the loops turned
 * around. The keys' transposed cache puts the scores of consecutive positions side by side,
 * computed together in the compiler's SIMD lanes, each still summed over i in order. A
 * unit of work for the threads is a quarter of one token's heads. */
static int ts_fast_attention(ts_session *s, int layer, int pos, int n, const float *q, float *out) {
    const ts_config *c = &s->model->config;
    int hd = c->head_dim, kv_dim = c->n_kv_heads * hd, q_dim = c->n_heads * hd, group = c->n_heads / c->n_kv_heads;
    int H = c->n_heads, window = s->model->layers[layer].window, P = s->max_positions;
    float scale = (c->flags & TS_FLAG_SCALE_ATTN) ? 1.0f / sqrtf((float)hd) : 1.0f;
    const float *keys = s->key_cache + (size_t)layer * kv_dim * P;     /* (kv_dim, P) */
    const float *values = s->value_cache + (size_t)layer * P * kv_dim; /* (P, kv_dim) */
    /* A unit of work: a quarter of the heads of up to TS_ATT_TOKENS consecutive tokens of the
     * block. The tokens' scores are computed together, so that each row of keys read serves
     * all of them (a prompt's keys are read once per group, not once per token); each score
     * is still summed over i in order. The sums of the softmax and of the values are chains
     * of dependent additions (in llama2.c's order); the heads of a unit go through the
     * positions together, so that their chains overlap. */
    int per_unit = H >= 4 ? H / 4 : 1, units = (H + per_unit - 1) / per_unit, groups = (n + TS_ATT_TOKENS - 1) / TS_ATT_TOKENS;
    /* work: per head and position, 2 hd multiply-adds and the softmax's ~30 operations */
    double work = (double)n * H * (pos + n) * (2.0 * hd + 30.0);
    (void)work; /* read only by the OpenMP clause */
    TS_PARALLEL_FOR_IF(work >= TS_PARALLEL_MIN_WORK)
    for (int unit = 0; unit < groups * units; unit++) {
        int t0 = unit / units * TS_ATT_TOKENS, t1 = t0 + TS_ATT_TOKENS < n ? t0 + TS_ATT_TOKENS : n;
        int h0 = unit % units * per_unit, h1 = h0 + per_unit < H ? h0 + per_unit : H;
        int start[TS_ATT_TOKENS], len[TS_ATT_TOKENS];
        for (int t = t0; t < t1; t++) {
            int p = pos + t;
            start[t - t0] = (window > 0 && p - window + 1 > 0) ? p - window + 1 : 0, len[t - t0] = p - start[t - t0] + 1;
        }
        for (int h = h0; h < h1; h++) { /* scores q.k / sqrt(head_dim) over each token's window */
            const float *kh = keys + (size_t)(h / group) * hd * P; /* (hd, P) */
            for (int t = t0; t < t1; t++) {
                float *ah = s->att + ((size_t)t * H + h) * P;
                for (int k = 0; k < len[t - t0]; k++) ah[k] = 0.0f;
            }
            for (int i = 0; i < hd; i++) {
                const float *ki = kh + (size_t)i * P;
                for (int t = t0; t < t1; t++) {
                    float qi = q[(size_t)t * q_dim + (size_t)h * hd + i], *ah = s->att + ((size_t)t * H + h) * P;
                    const float *kt = ki + start[t - t0];
                    for (int k = 0; k < len[t - t0]; k++) ah[k] += qi * kt[k];
                }
            }
            for (int t = t0; t < t1; t++) {
                float *ah = s->att + ((size_t)t * H + h) * P;
                for (int k = 0; k < len[t - t0]; k++) ah[k] *= scale;
            }
        }
        for (int t = t0; t < t1; t++) {
            int st = start[t - t0], ln = len[t - t0];
            float *at = s->att + (size_t)t * H * P; /* (H, P): the scores, then the weights */
            ts_softmax_rows(at + (size_t)h0 * P, h1 - h0, (size_t)P, ln);
            /* out_h = sum_k a_h[k] v_h[k], in order of k */
            float *ot = out + (size_t)t * q_dim;
#if defined(TS_AVX512)
            if (ts_value_sums_lanes(ot + (size_t)h0 * hd, at + (size_t)h0 * P, P, values + (size_t)st * kv_dim, kv_dim, h0,
                                    h1 - h0, hd, group, ln))
                continue;
#endif
            for (int j = h0 * hd; j < h1 * hd; j++) ot[j] = 0.0f;
            for (int k = 0; k < ln; k++) {
                const float *vk = values + (size_t)(st + k) * kv_dim;
                for (int h = h0; h < h1; h++) ts_axpy(ot + (size_t)h * hd, at[(size_t)h * P + k], vk + (size_t)(h / group) * hd, hd);
            }
        }
    }
    return 1;
}

/* ---- the hooks ---- */
static int ts_fast_matmuls(ts_session *s, const float *x, int n, int count, const ts_product *p) {
    ts_matmul_fast(p, count, x, s->xq, s->xq_scale, s->xq_packed, n);
    return 1;
}
#endif /* TS_SIMD */

#if defined(TS_WASM)
/* ---- WebAssembly SIMD128 (make web): the plain loops' bits, four rows at a time ----
 * WebAssembly's SIMD has no fused multiply-add that must fuse (relaxed-simd's may or may
 * not), so the documented order of the other paths cannot be had here. This path instead
 * computes ts_matmul_plain's bits: for prompts, the four lanes of a vector are four rows'
 * dot products, each summed left to right with a rounded multiply and then a rounded add, as
 * the plain loop's `val += w * x`. Four values of each of four rows are loaded and transposed,
 * so one vector step adds one column's products to four outputs; each transposed block serves
 * TS_WASM_TOKENS tokens of a prompt. Decoding runs 8 rows' chains side by side instead.
 * Q8_0: a group's integer sum by 16-bit widening dot products (exact in any order), then
 * ts_q8_step as the plain loop. One thread. */
#define TS_WASM_TOKENS 4
/* values [at, at + count) of row `row` as floats (count <= 4; zeros after) */
static inline v128_t ts_wasm_load4(const ts_matrix *w, int row, int at, int count) {
    size_t k = (size_t)row * w->cols + at;
    if (w->type == TS_BF16) { /* bf16 -> f32: the bits go up 16 places */
        uint16_t part[4] = {0, 0, 0, 0};
        memcpy(part, (const uint16_t *)w->data + k, (size_t)count * 2);
        return wasm_i32x4_shl(wasm_u32x4_extend_low_u16x8(wasm_v128_load64_zero(part)), 16);
    }
    if (count == 4) return wasm_v128_load((const float *)w->data + k);
    float part[4] = {0, 0, 0, 0};
    memcpy(part, (const float *)w->data + k, (size_t)count * 4);
    return wasm_v128_load(part);
}
/* Rows i0..i0+nr-1 (nr <= 4; lanes past nr repeat the last row and are not stored) x
 * tokens t0..t0+NT-1 (NT a constant: the accumulators stay in locals, not in linear memory). */
TS_INLINE void ts_wasm_tile(float *out, const ts_matrix *w, const float *x, int i0, int nr, int t0, int NT) {
    int cols = w->cols, rows = w->rows, row[4];
    v128_t acc[TS_WASM_TOKENS];
    for (int r = 0; r < 4; r++) row[r] = i0 + (r < nr ? r : nr - 1);
    for (int t = 0; t < NT; t++) acc[t] = wasm_f32x4_splat(0.0f);
    for (int j = 0; j < cols; j += 4) {
        int count = cols - j < 4 ? cols - j : 4;
        v128_t r0 = ts_wasm_load4(w, row[0], j, count), r1 = ts_wasm_load4(w, row[1], j, count);
        v128_t r2 = ts_wasm_load4(w, row[2], j, count), r3 = ts_wasm_load4(w, row[3], j, count);
        /* transpose: column c of the block = (rows 0, 1, 2, 3 at j + c) */
        v128_t lo01 = wasm_i32x4_shuffle(r0, r1, 0, 4, 1, 5), lo23 = wasm_i32x4_shuffle(r2, r3, 0, 4, 1, 5);
        v128_t hi01 = wasm_i32x4_shuffle(r0, r1, 2, 6, 3, 7), hi23 = wasm_i32x4_shuffle(r2, r3, 2, 6, 3, 7);
        v128_t column[4] = {wasm_i32x4_shuffle(lo01, lo23, 0, 1, 4, 5), wasm_i32x4_shuffle(lo01, lo23, 2, 3, 6, 7),
                            wasm_i32x4_shuffle(hi01, hi23, 0, 1, 4, 5), wasm_i32x4_shuffle(hi01, hi23, 2, 3, 6, 7)};
        for (int t = 0; t < NT; t++) {
            const float *xt = x + (size_t)(t0 + t) * cols + j;
            if (count == 4) /* val += w * x, left to right (a constant count: unrolled) */
                for (int c = 0; c < 4; c++) acc[t] = wasm_f32x4_add(acc[t], wasm_f32x4_mul(column[c], wasm_f32x4_splat(xt[c])));
            else
                for (int c = 0; c < count; c++) acc[t] = wasm_f32x4_add(acc[t], wasm_f32x4_mul(column[c], wasm_f32x4_splat(xt[c])));
        }
    }
    for (int t = 0; t < NT; t++) {
        float lane[4];
        wasm_v128_store(lane, acc[t]);
        for (int r = 0; r < nr; r++) out[(size_t)(t0 + t) * rows + i0 + r] = lane[r];
    }
}
/* Decoding, float: 8 rows' dot products side by side, each summed left to right as the plain
 * loop sums it (its bits), but 8 independent chains of adds in flight instead of one (the
 * compiler may put them in vector lanes: each lane is still one row's chain). */
static void ts_wasm_decode_rows(float *out, const ts_matrix *w, const float *x, int i0, int nr) {
    int cols = w->cols;
    float val[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    if (w->type == TS_BF16) {
        const uint16_t *wr[8];
        for (int r = 0; r < 8; r++) wr[r] = (const uint16_t *)w->data + (size_t)(i0 + (r < nr ? r : nr - 1)) * cols;
        for (int j = 0; j < cols; j++)
            for (int r = 0; r < 8; r++) val[r] += ts_bf16_to_f32(wr[r][j]) * x[j];
    } else {
        const float *wr[8];
        for (int r = 0; r < 8; r++) wr[r] = (const float *)w->data + (size_t)(i0 + (r < nr ? r : nr - 1)) * cols;
        for (int j = 0; j < cols; j++)
            for (int r = 0; r < 8; r++) val[r] += wr[r][j] * x[j];
    }
    for (int r = 0; r < nr; r++) out[i0 + r] = val[r];
}
/* sum of w[k] x[k], k < len: exact int32 */
static int32_t ts_wasm_q8_dot(const int8_t *w, const int8_t *x, int len) {
    v128_t acc = wasm_i32x4_splat(0);
    int k = 0;
    for (; k + 16 <= len; k += 16) {
        v128_t wv = wasm_v128_load(w + k), xv = wasm_v128_load(x + k);
        acc = wasm_i32x4_add(acc, wasm_i32x4_dot_i16x8(wasm_i16x8_extend_low_i8x16(wv), wasm_i16x8_extend_low_i8x16(xv)));
        acc = wasm_i32x4_add(acc, wasm_i32x4_dot_i16x8(wasm_i16x8_extend_high_i8x16(wv), wasm_i16x8_extend_high_i8x16(xv)));
    }
    int32_t sum = wasm_i32x4_extract_lane(acc, 0) + wasm_i32x4_extract_lane(acc, 1) + wasm_i32x4_extract_lane(acc, 2) +
                  wasm_i32x4_extract_lane(acc, 3);
    for (; k < len; k++) sum += (int32_t)w[k] * (int32_t)x[k];
    return sum;
}
/* out (n, rows) = x (n, cols) · W^T with ts_matmul_plain's bits */
static void ts_wasm_matmul(float *out, const float *x, const int8_t *xq, const float *xs, const ts_matrix *w, int n) {
    int rows = w->rows, cols = w->cols;
    if (w->type != TS_Q8_0 && n == 1) {
        for (int i0 = 0; i0 < rows; i0 += 8) ts_wasm_decode_rows(out, w, x, i0, rows - i0 < 8 ? rows - i0 : 8);
        return;
    }
    if (w->type != TS_Q8_0) {
        for (int i0 = 0; i0 < rows; i0 += 4) {
            int nr = rows - i0 < 4 ? rows - i0 : 4, t0 = 0;
            for (; t0 + TS_WASM_TOKENS <= n; t0 += TS_WASM_TOKENS) ts_wasm_tile(out, w, x, i0, nr, t0, TS_WASM_TOKENS);
            switch (n - t0) { /* constant shapes */
            case 3: ts_wasm_tile(out, w, x, i0, nr, t0, 3); break;
            case 2: ts_wasm_tile(out, w, x, i0, nr, t0, 2); break;
            case 1: ts_wasm_tile(out, w, x, i0, nr, t0, 1); break;
            default: break;
            }
        }
        return;
    }
    int gs = w->group_size, groups = ts_groups(cols, gs);
    for (int i = 0; i < rows; i++)
        for (int t = 0; t < n; t++) {
            const int8_t *wr = (const int8_t *)w->data + (size_t)i * cols, *xt = xq + (size_t)t * cols;
            float val = 0.0f;
            for (int g = 0; g < groups; g++) {
                int start = g * gs, len = cols - start < gs ? cols - start : gs;
                val = ts_q8_step(val, ts_wasm_q8_dot(wr + start, xt + start, len), w->scale[(size_t)i * groups + g],
                                 xs[(size_t)t * groups + g]);
            }
            out[(size_t)t * rows + i] = val;
        }
}
/* Measured under node (stories15M's shape, tok/s): float decoding in 8 scalar chains 210-230
 * against the plain loop's 130-140 (4 chains: 160, 16: 130; SIMD rows with 4x4 transposes
 * serve one token only and were slower than the plain loop: 37-112); prompts in 4x4 blocks
 * 2.4x the plain loop; Q8_0 about 4x. */
static int ts_fast_matmuls(ts_session *s, const float *x, int n, int count, const ts_product *p) {
    for (int k = 0; k < count; k++) ts_wasm_matmul(p[k].out, x, s->xq, s->xq_scale, p[k].w, n);
    return 1;
}
#endif /* TS_WASM */
#if !defined(TS_SIMD) /* the plain build: every hook declines (WebAssembly: but the matrix products) */
#if !defined(TS_WASM)
static int ts_fast_matmuls(ts_session *s, const float *x, int n, int count, const ts_product *p) {
    return (void)s, (void)x, (void)n, (void)count, (void)p, 0;
}
#endif
static int ts_fast_attention(ts_session *s, int layer, int pos, int n, const float *q, float *out) {
    return (void)s, (void)layer, (void)pos, (void)n, (void)q, (void)out, 0;
}
#endif
#if !defined(TS_HAVE_FAST_EXP)
static size_t ts_fast_exp(float *x, size_t n) { return (void)x, (void)n, 0; }
#endif
#if !defined(TS_HAVE_FAST_MAX)
static int ts_fast_max(const float *x, int n, float *max_val) { return (void)x, (void)n, (void)max_val, 0; }
#endif

/* ==========================================================================
 * 6. Tokenizers
 *
 * Two byte-pair encoders that share their parts: one UTF-8 decoder, one hash table, one
 * merge loop over a heap of candidate pairs, and the file's error convention (ts_fail).
 *
 * SentencePiece BPE as llama2.c stores it (tokenizer.bin: max_token_length, then per
 * token a float score, a length and the bytes, "▁" already turned into " "). Encoding
 * follows sentencepiece: a dummy-prefix space, one symbol per UTF-8 character (unknown
 * characters fall back to their bytes as <0xXX> tokens), then repeatedly merge the
 * adjacent pair whose concatenation is the highest-scoring token, leftmost on ties.
 * llama2.c rescans the whole text for every merge (quadratic); the heap gives the same
 * result, and a megabyte encodes in a fraction of a second.
 *
 * GPT-2 byte-level BPE (Radford et al. 2019; the TinyStories paper's models): the text is
 * cut into pre-tokens by GPT-2's regular expression, and each pre-token's bytes are merged
 * pairwise by the rank of the merge, lowest first. It matches Hugging Face `tokenizers`.
 * ========================================================================== */

/* ---- UTF-8 ----
 * The length (1..4) of the UTF-8 character at p (n >= 1 bytes there), its code point in *cp;
 * 0 if the bytes are no valid character (an overlong form, a surrogate, past U+10FFFF, cut
 * short, a stray byte). The file's one decoder: GPT-2's character classes and the quoting
 * of -m inspect read text through it. (SentencePiece decodes nothing: it groups bytes as
 * llama2.c does, below.) */
static int ts_utf8_decode(const unsigned char *p, size_t n, uint32_t *cp) {
    unsigned b0 = p[0];
    int len = b0 < 0x80 ? 1 : b0 < 0xC2 ? 0 : b0 < 0xE0 ? 2 : b0 < 0xF0 ? 3 : b0 < 0xF5 ? 4 : 0;
    if (len == 0 || (size_t)len > n) return 0;
    uint32_t c = len == 1 ? b0 : b0 & (0x7Fu >> len); /* the lead byte's payload bits */
    for (int i = 1; i < len; i++) {
        if ((p[i] & 0xC0) != 0x80) return 0;
        c = c << 6 | (p[i] & 0x3Fu);
    }
    if ((len == 3 && (c < 0x800 || (c >= 0xD800 && c <= 0xDFFF))) || (len == 4 && (c < 0x10000 || c > 0x10FFFF))) return 0;
    *cp = c;
    return len;
}

/* ---- One hash table ----
 * Open addressing with linear probing, at most half full: slot[] holds item numbers, -1
 * where empty. SentencePiece keys it by a piece's bytes (item: the token id), GPT-2 by the
 * pair of ids a merge joins (item: the merge's number), both hashed with FNV-1a. Every item
 * sits at most TS_MAX_PROBE slots after its key's home slot, checked as the table is filled,
 * so a lookup never probes further. Real vocabularies stay far below (Llama 2's 32000
 * pieces: 34); a file crafted for collisions is refused instead of making every lookup
 * walk a long run. */
#define TS_MAX_PROBE 256
#define TS_HASH_FULL SIZE_MAX

typedef int (*ts_hash_match)(const void *key, int32_t item); /* does item have this key? */

static uint64_t ts_hash_bytes(const char *a, size_t na, const char *b, size_t nb) {
    uint64_t h = 1469598103934665603ull; /* FNV-1a over a then b */
    for (size_t i = 0; i < na; i++) h = (h ^ (unsigned char)a[i]) * 1099511628211ull;
    for (size_t i = 0; i < nb; i++) h = (h ^ (unsigned char)b[i]) * 1099511628211ull;
    return h;
}

static int ts_hash_alloc(ts_hash *h, size_t n_items, ts_error *err) {
    size_t cap = 16;
    while (cap / 2 < n_items) cap *= 2;
    h->slot = (int32_t *)malloc(cap * sizeof(int32_t));
    if (!h->slot) return ts_fail(err, TS_E_NOMEM, "out of memory for a hash table of %zu slots", cap);
    memset(h->slot, 0xff, cap * sizeof(int32_t));
    h->mask = cap - 1;
    return TS_OK;
}

/* The slot of the item with this key, or the empty slot where it goes; TS_HASH_FULL if the
 * TS_MAX_PROBE + 1 slots from the key's home all hold other items. */
static size_t ts_hash_find(const ts_hash *h, uint64_t hash, ts_hash_match match, const void *key) {
    size_t i = (size_t)hash & h->mask;
    for (int probe = 0; probe <= TS_MAX_PROBE; probe++, i = (i + 1) & h->mask)
        if (h->slot[i] < 0 || match(key, h->slot[i])) return i;
    return TS_HASH_FULL;
}

/* ---- One merge loop ----
 * Byte-pair encoding by priority. The symbols of a text are a doubly linked list of token
 * ids: a merge leaves its result in the left symbol's place and takes the right one out of
 * the list (its id becomes -1). Candidate merges wait in a min-heap of keys
 * priority << 32 | place, so one integer compare orders them by priority, leftmost on ties
 * (SentencePiece: the highest score; GPT-2: the lowest rank). A candidate whose pair a
 * neighbouring merge has changed is skipped when it comes out: it is current iff the pair
 * now at its place has its priority (two current candidates with one place and priority
 * stand for the same merge). The heap never holds more than 3n keys: n - 1 pairs at the
 * start, 2 new ones per merge. */
typedef uint32_t (*ts_bpe_priority)(const void *tok, int32_t left, int32_t right, int32_t *merged); /* UINT32_MAX: none */

typedef struct {
    int32_t *id, *prev, *next; /* (n) the symbols */
    uint64_t *heap;            /* (3n) candidate merges */
    void *buf;                 /* one allocation for the four, grown on demand */
    size_t cap;                /* symbols it has room for */
} ts_bpe;

static int ts_bpe_reserve(ts_bpe *s, size_t n) {
    const size_t per = 3 * sizeof(uint64_t) + 3 * sizeof(int32_t);
    if (n <= s->cap) return 0;
    if (n > (size_t)INT32_MAX || n > SIZE_MAX / per) return -1;
    void *buf = realloc(s->buf, n * per);
    if (!buf) return -1;
    s->buf = buf, s->cap = n;
    s->heap = (uint64_t *)buf; /* 8-byte keys first keep every part aligned */
    s->id = (int32_t *)(s->heap + 3 * n);
    s->prev = s->id + n;
    s->next = s->prev + n;
    return 0;
}

/* Min-heap h[0..n): restore the heap below slot i, which is to hold key. */
static void ts_heap_sift_down(uint64_t *h, size_t n, size_t i, uint64_t key) {
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= n) break;
        if (c + 1 < n && h[c + 1] < h[c]) c++;
        if (h[c] >= key) break;
        h[i] = h[c];
        i = c;
    }
    h[i] = key;
}

static void ts_heap_push(uint64_t *h, size_t *n, uint64_t key) {
    size_t i = (*n)++;
    for (; i > 0 && key < h[(i - 1) / 2]; i = (i - 1) / 2) h[i] = h[(i - 1) / 2];
    h[i] = key;
}

static uint64_t ts_heap_pop(uint64_t *h, size_t *n) {
    uint64_t top = h[0];
    if (--*n > 0) ts_heap_sift_down(h, *n, 0, h[*n]);
    return top;
}

/* The candidate merge of the symbol at place p with the next one, if they merge. */
static void ts_bpe_push(ts_bpe_priority priority, const void *tok, ts_bpe *s, int32_t p, size_t *n_heap) {
    int32_t merged = -1;
    if (p < 0 || s->next[p] < 0) return;
    uint32_t pr = priority(tok, s->id[p], s->id[s->next[p]], &merged);
    if (pr != UINT32_MAX) ts_heap_push(s->heap, n_heap, (uint64_t)pr << 32 | (uint32_t)p);
}

/* Links the symbols first..end-1 in order and merges them until no pair merges; the result
 * is the list from first. */
static void ts_bpe_merge(ts_bpe_priority priority, const void *tok, ts_bpe *s, int32_t first, int32_t end) {
    size_t n_heap = 0;
    for (int32_t i = first; i < end; i++) s->prev[i] = i > first ? i - 1 : -1, s->next[i] = i + 1 < end ? i + 1 : -1;
    for (int32_t i = first; i + 1 < end; i++) {
        int32_t merged = -1;
        uint32_t pr = priority(tok, s->id[i], s->id[i + 1], &merged);
        if (pr != UINT32_MAX) s->heap[n_heap++] = (uint64_t)pr << 32 | (uint32_t)i;
    }
    for (size_t k = n_heap / 2; k-- > 0;) ts_heap_sift_down(s->heap, n_heap, k, s->heap[k]); /* heapify */
    while (n_heap > 0) {
        uint64_t key = ts_heap_pop(s->heap, &n_heap);
        int32_t p = (int32_t)(uint32_t)key, q = s->next[p], merged = -1;
        if (s->id[p] < 0 || q < 0 || priority(tok, s->id[p], s->id[q], &merged) != (uint32_t)(key >> 32)) continue; /* stale */
        s->id[p] = merged;
        s->id[q] = -1;
        s->next[p] = s->next[q];
        if (s->next[q] >= 0) s->prev[s->next[q]] = p;
        ts_bpe_push(priority, tok, s, s->prev[p], &n_heap);
        ts_bpe_push(priority, tok, s, p, &n_heap);
    }
}

/* ---- SentencePiece ---- */

/* A piece to look up: a's bytes followed by b's. */
typedef struct {
    const ts_tokenizer *t;
    const char *a, *b;
    size_t na, nb;
} ts_piece_key;

static int ts_piece_match(const void *key, int32_t id) {
    const ts_piece_key *k = (const ts_piece_key *)key;
    const char *p = k->t->piece[id];
    return (size_t)k->t->piece_len[id] == k->na + k->nb && memcmp(p, k->a, k->na) == 0 && memcmp(p + k->na, k->b, k->nb) == 0;
}

/* The id of the token whose bytes are a followed by b, or -1. */
static int ts_lookup2(const ts_tokenizer *t, const char *a, size_t na, const char *b, size_t nb) {
    ts_piece_key key = {t, a, b, na, nb};
    size_t i = ts_hash_find(&t->pieces, ts_hash_bytes(a, na, b, nb), ts_piece_match, &key);
    return i == TS_HASH_FULL ? -1 : t->pieces.slot[i];
}

/* Fills the table from the pieces; the first of duplicate pieces wins. */
static int ts_build_piece_hash(ts_tokenizer *t, ts_error *err) {
    int rc = ts_hash_alloc(&t->pieces, (size_t)t->vocab_size, err);
    if (rc) return rc;
    for (int id = 0; id < t->vocab_size; id++) {
        ts_piece_key key = {t, t->piece[id], "", (size_t)t->piece_len[id], 0};
        size_t i = ts_hash_find(&t->pieces, ts_hash_bytes(key.a, key.na, "", 0), ts_piece_match, &key);
        if (i == TS_HASH_FULL)
            return ts_fail(err, TS_E_FORMAT, "tokenizer token %d: over %d pieces share its hash slots (a file crafted to slow lookups?)", id,
                           TS_MAX_PROBE);
        if (t->pieces.slot[i] < 0) t->pieces.slot[i] = id;
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
    /* every token takes at least 8 bytes: refuse a short file before allocating for it */
    if (size < 4 || (size - 4) / 8 < (size_t)n)
        return ts_fail(err, TS_E_FORMAT, "tokenizer is truncated or does not match the model: %zu bytes cannot hold the model's %d tokens",
                       size, n);
    t->piece = (const char **)calloc((size_t)n, sizeof(char *));
    t->piece_len = (int *)calloc((size_t)n, sizeof(int));
    t->score = (float *)calloc((size_t)n, sizeof(float));
    t->byte_value = (short *)calloc((size_t)n, sizeof(short));
    if (!t->piece || !t->piece_len || !t->score || !t->byte_value) return ts_fail(err, TS_E_NOMEM, "out of memory");
    size_t pos = 4; /* skip max_token_length: lengths are checked one by one instead */
    for (int id = 0; id < n; id++) {
        if (size - pos < 8)
            return ts_fail(err, TS_E_FORMAT, "tokenizer is truncated or does not match the model: it ends at token %d of the model's %d", id, n);
        float score = ts_read_f32(data + pos);
        int32_t len = ts_read_i32(data + pos + 4);
        pos += 8;
        if (!isfinite(score)) return ts_fail(err, TS_E_FORMAT, "tokenizer token %d has a non-finite score (%g)", id, (double)score);
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
    int rc = ts_build_piece_hash(t, err);
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

/* Merge priority: the highest score first. The score's bits, made to order as unsigned
 * numbers (flip a negative one's bits, set a positive one's sign), then flipped. */
static uint32_t ts_sentencepiece_priority(const void *tok, int32_t left, int32_t right, int32_t *merged) {
    const ts_tokenizer *t = (const ts_tokenizer *)tok;
    int id = ts_lookup2(t, t->piece[left], (size_t)t->piece_len[left], t->piece[right], (size_t)t->piece_len[right]);
    if (id < 0) return UINT32_MAX;
    *merged = id;
    uint32_t bits;
    memcpy(&bits, &t->score[id], sizeof bits);
    if (bits == 0x80000000u) bits = 0; /* -0 ties with +0 */
    bits = bits >> 31 ? ~bits : bits | 0x80000000u;
    return ~bits; /* never UINT32_MAX: the scores are finite */
}

/* Encodes with the llama2.c/sentencepiece rules into out (room for len + 3 ids). */
static long ts_sentencepiece_encode(const ts_tokenizer *t, const char *text, size_t len, int add_bos, int *out) {
    long n = 0;
    if (add_bos && t->bos_id >= 0) out[n++] = t->bos_id;
    if (len == 0) return n;
    ts_bpe s = {0};
    if (ts_bpe_reserve(&s, len + 1)) return -1;
    /* Symbols: the dummy prefix, then each UTF-8 character or its bytes when it is no
     * token. Characters are grouped as llama2.c groups them, a byte and up to three
     * continuation bytes after it, valid or not: invalid text gets llama2.c's ids too. */
    int32_t n_sym = 0;
    s.id[n_sym++] = t->space_id >= 0 ? t->space_id : t->byte_token[' '] >= 0 ? t->byte_token[' '] : 0;
    for (size_t i = 0; i < len;) {
        size_t j = i + 1;
        while (j < len && j - i < 4 && ((unsigned char)text[j] & 0xC0) == 0x80) j++;
        int id = ts_lookup2(t, text + i, j - i, "", 0);
        if (id >= 0) s.id[n_sym++] = id;
        else
            for (size_t k = i; k < j; k++) {
                int b = t->byte_token[(unsigned char)text[k]];
                s.id[n_sym++] = b >= 0 ? b : 0; /* no byte fallback in this vocabulary: <unk> */
            }
        i = j;
    }
    /* No merge can join two neighbouring symbols if the last byte of the left one's piece
     * and the first byte of the right one's never stand next to each other in any piece
     * (for Llama 2, e.g., a letter followed by a space). The text is cut at such places
     * and each part merged on its own: merges in one part never change the candidates of
     * another, so the result is that of one heap over the whole text, and the small heaps
     * stay in cache. */
    for (int32_t first = 0, end = 1; first < n_sym; first = end, end = first + 1) {
        for (; end < n_sym; end++) {
            int a = s.id[end - 1], b = s.id[end];
            if (t->piece_len[a] == 0 || t->piece_len[b] == 0) continue;
            unsigned pair = (unsigned char)t->piece[a][t->piece_len[a] - 1] << 8 | (unsigned char)t->piece[b][0];
            if (!(t->pair_seen[pair >> 3] & (1u << (pair & 7)))) break;
        }
        ts_bpe_merge(ts_sentencepiece_priority, t, &s, first, end);
        for (int32_t i = first; i >= 0; i = s.next[i]) out[n++] = s.id[i];
    }
    free(s.buf);
    return n;
}

/* ---- GPT-2 byte-level BPE ----------------------------------------------------------
 * The TinyStories paper's models use GPT-2's tokenizer (Radford et al. 2019): text is split
 * into pre-tokens by a regular expression (contractions, letters, numbers, other symbols,
 * white space; letters and numbers in the full Unicode sense), and each pre-token's bytes
 * are merged pairwise by rank, lowest first. It matches Hugging Face `tokenizers`. */

typedef struct { uint32_t first, last; } ts_gpt2_range;

/* \p{L} and \p{N}, the letters and numbers of the Unicode standard, as sorted ranges of
 * code points: generated tables, in section 12. */
static const ts_gpt2_range ts_gpt2_letter_ranges[677], ts_gpt2_number_ranges[144];

/* Character classes of the pre-tokenizer regex. */
enum { TS_GPT2_WS = 0, TS_GPT2_LETTER = 1, TS_GPT2_NUMBER = 2, TS_GPT2_SYMBOL = 3 };

/* Binary search in a sorted, non-overlapping range table. */
static int ts_gpt2_in_ranges(const ts_gpt2_range *r, size_t n, uint32_t cp) {
    size_t lo = 0, hi = n; /* invariant: a match, if any, is in r[lo..hi) */
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (cp < r[mid].first)
            hi = mid;
        else if (cp > r[mid].last)
            lo = mid + 1;
        else
            return 1;
    }
    return 0;
}

/* \s: Unicode White_Space (what Oniguruma and Rust's regex use for \s). */
static int ts_gpt2_is_space(uint32_t cp) {
    if (cp < 0x80) return (cp >= 0x09 && cp <= 0x0D) || cp == 0x20;
    return cp == 0x85 || cp == 0xA0 || cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 || cp == 0x2029 ||
           cp == 0x202F || cp == 0x205F || cp == 0x3000;
}

static int ts_gpt2_class_of(uint32_t cp) {
    if (cp < 0x80) { /* ASCII fast path */
        if ((cp | 0x20) >= 'a' && (cp | 0x20) <= 'z') return TS_GPT2_LETTER;
        if (cp >= '0' && cp <= '9') return TS_GPT2_NUMBER;
        return ts_gpt2_is_space(cp) ? TS_GPT2_WS : TS_GPT2_SYMBOL;
    }
    if (ts_gpt2_is_space(cp)) return TS_GPT2_WS;
    if (ts_gpt2_in_ranges(ts_gpt2_letter_ranges, sizeof ts_gpt2_letter_ranges / sizeof ts_gpt2_letter_ranges[0], cp))
        return TS_GPT2_LETTER;
    if (ts_gpt2_in_ranges(ts_gpt2_number_ranges, sizeof ts_gpt2_number_ranges / sizeof ts_gpt2_number_ranges[0], cp))
        return TS_GPT2_NUMBER;
    return TS_GPT2_SYMBOL;
}

/* The class of the character at s[i] (i < n); *len gets its byte length (1..4). A byte that
 * is not part of a valid UTF-8 character is a character of its own, of class
 * TS_GPT2_SYMBOL (not letter, number or space): byte-level BPE then encodes the raw byte as
 * usual, so encode/decode still round-trips every input. */
static int ts_gpt2_char_at(const unsigned char *s, size_t n, size_t i, size_t *len) {
    uint32_t cp;
    int char_len = ts_utf8_decode(s + i, n - i, &cp);
    *len = char_len > 0 ? (size_t)char_len : 1;
    return char_len > 0 ? ts_gpt2_class_of(cp) : TS_GPT2_SYMBOL;
}

/* End of the run of characters of class cls starting at i. */
static size_t ts_gpt2_run_end(const unsigned char *s, size_t n, size_t i, int cls) {
    size_t len;
    while (i < n && ts_gpt2_char_at(s, n, i, &len) == cls) i += len;
    return i;
}

/* End of the pre-token that starts at i (i < n): the match of the leftmost
 * regex alternative that matches at i. Every character is matched by one of
 * the alternatives, so pre-tokens tile the text. */
static size_t ts_gpt2_pretoken_end(const unsigned char *s, size_t n, size_t i) {
    size_t len, last, j;
    int cls;

    /* 's|'t|'re|'ve|'m|'ll|'d  (case-sensitive, as in GPT-2) */
    if (s[i] == '\'' && n - i >= 2) {
        unsigned a = s[i + 1];
        if (a == 's' || a == 't' || a == 'm' || a == 'd') return i + 2;
        if (n - i >= 3) {
            unsigned b = s[i + 2];
            if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l')) return i + 3;
        }
    }
    /* ' ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+' : an optional U+0020 then a run of
     * one non-space class (the class of the first character decides which). */
    if (s[i] == ' ' && n - i >= 2) {
        cls = ts_gpt2_char_at(s, n, i + 1, &len);
        if (cls != TS_GPT2_WS) return ts_gpt2_run_end(s, n, i + 1, cls);
    }
    cls = ts_gpt2_char_at(s, n, i, &len);
    if (cls != TS_GPT2_WS) return ts_gpt2_run_end(s, n, i, cls);

    /* '\s+(?!\S)|\s+' : take the whole whitespace run [i, j). If a non-space
     * follows, (?!\S) fails at j, so the regex backtracks one character and
     * leaves the last one (start `last`) to prefix the next pre-token; a run
     * of one character falls through to plain \s+ instead. */
    last = i;
    j = i + len;
    while (j < n && ts_gpt2_char_at(s, n, j, &len) == TS_GPT2_WS) {
        last = j;
        j += len;
    }
    if (j == n || last == i) return j;
    return last;
}


/* The GPT-2 tokenizer section (TSMF tokenizer_kind 2, docs/format.md): n_tokens and
 * n_merges (int32), each token as an int32 length and its bytes, then each merge as three
 * int32: left, right, result; a merge's number is its rank. */
#define TS_GPT2_ERR "gpt2 tokenizer: "

/* A pair to look up: the ids a merge joins. */
typedef struct {
    const ts_tokenizer *t;
    int32_t pair[2];
} ts_pair_key;

static uint64_t ts_pair_hash(const int32_t pair[2]) { return ts_hash_bytes((const char *)pair, 2 * sizeof(int32_t), "", 0); }

static int ts_merge_match(const void *key, int32_t m) {
    const ts_pair_key *k = (const ts_pair_key *)key;
    return k->t->merge[m].left == k->pair[0] && k->t->merge[m].right == k->pair[1];
}

/* Merge priority: the rank (the merge's number; the lowest merges first). */
static uint32_t ts_gpt2_priority(const void *tok, int32_t left, int32_t right, int32_t *merged) {
    ts_pair_key key = {(const ts_tokenizer *)tok, {left, right}};
    size_t i = ts_hash_find(&key.t->merges, ts_pair_hash(key.pair), ts_merge_match, &key);
    if (i == TS_HASH_FULL || key.t->merges.slot[i] < 0) return UINT32_MAX;
    int32_t m = key.t->merges.slot[i];
    *merged = key.t->merge[m].result;
    return (uint32_t)m;
}

/* The token records from *off: pieces and the one-byte tokens. */
static int ts_gpt2_load_tokens(ts_tokenizer *t, const unsigned char *sec, size_t size, size_t *off, ts_error *err) {
    for (int b = 0; b < 256; b++) t->byte_token[b] = -1;
    for (int i = 0; i < t->vocab_size; i++) {
        if (size - *off < 4)
            return ts_fail(err, TS_E_FORMAT, TS_GPT2_ERR "the section (%zu bytes) ends before the length of token %d", size, i);
        int64_t len = ts_read_i32(sec + *off);
        *off += 4;
        if (len < 0 || (uint64_t)len > size - *off)
            return ts_fail(err, TS_E_FORMAT, TS_GPT2_ERR "token %d has length %lld, past the end of the section (%zu bytes)", i,
                           (long long)len, size);
        t->piece[i] = (const char *)sec + *off;
        t->piece_len[i] = (int)len;
        *off += (size_t)len;
        if (len == 1) {
            int b = sec[*off - 1];
            if (t->byte_token[b] >= 0)
                return ts_fail(err, TS_E_FORMAT, TS_GPT2_ERR "tokens %d and %d are both the byte 0x%02x", t->byte_token[b], i, b);
            t->byte_token[b] = i;
        }
    }
    for (int b = 0; b < 256; b++)
        if (t->byte_token[b] < 0) return ts_fail(err, TS_E_FORMAT, TS_GPT2_ERR "no one-byte token for the byte 0x%02x", b);
    return TS_OK;
}

/* The merge records at off, which must end the section. A repeated pair keeps its last
 * rank, as Hugging Face's BPE does when it collects the merges into a map. */
static int ts_gpt2_load_merges(ts_tokenizer *t, const unsigned char *sec, size_t size, size_t off, ts_error *err) {
    if ((size - off) / 12 != (size_t)t->n_merges || (size - off) % 12 != 0)
        return ts_fail(err, TS_E_FORMAT, TS_GPT2_ERR "n_merges = %d, but %zu bytes of merge records (12 bytes each) follow the tokens",
                       t->n_merges, size - off);
    t->merge = (ts_merge *)malloc(((size_t)t->n_merges + 1) * sizeof(ts_merge));
    if (!t->merge) return ts_fail(err, TS_E_NOMEM, TS_GPT2_ERR "out of memory for %d merges", t->n_merges);
    int rc = ts_hash_alloc(&t->merges, (size_t)t->n_merges, err);
    if (rc) return rc;
    for (int i = 0; i < t->n_merges; i++, off += 12) {
        int64_t l = ts_read_i32(sec + off), r = ts_read_i32(sec + off + 4), res = ts_read_i32(sec + off + 8), n = t->vocab_size;
        if (l < 0 || l >= n || r < 0 || r >= n || res < 0 || res >= n)
            return ts_fail(err, TS_E_FORMAT, TS_GPT2_ERR "merge %d (%lld + %lld -> %lld) has an id outside 0..%d", i, (long long)l,
                           (long long)r, (long long)res, t->vocab_size - 1);
        const char *L = t->piece[l], *R = t->piece[r], *X = t->piece[res];
        size_t nl = (size_t)t->piece_len[l], nr = (size_t)t->piece_len[r];
        /* Non-empty parts make every merge strictly lengthen a symbol, which the merge
         * loop relies on (a place's id never repeats). */
        if (nl == 0 || nr == 0 || (size_t)t->piece_len[res] != nl + nr || memcmp(X, L, nl) != 0 || memcmp(X + nl, R, nr) != 0)
            return ts_fail(err, TS_E_FORMAT, TS_GPT2_ERR "merge %d: token %lld is not token %lld followed by token %lld (both non-empty)",
                           i, (long long)res, (long long)l, (long long)r);
        t->merge[i] = (ts_merge){(int32_t)l, (int32_t)r, (int32_t)res};
        ts_pair_key key = {t, {(int32_t)l, (int32_t)r}};
        size_t slot = ts_hash_find(&t->merges, ts_pair_hash(key.pair), ts_merge_match, &key);
        if (slot == TS_HASH_FULL)
            return ts_fail(err, TS_E_FORMAT, TS_GPT2_ERR "merge %d: over %d merges share its hash slots (a file crafted to slow lookups?)",
                           i, TS_MAX_PROBE);
        t->merges.slot[slot] = i;
    }
    return TS_OK;
}

/* Loads from a section that outlives t (the pieces point into it). */
static int ts_gpt2_init(ts_tokenizer *t, const unsigned char *data, size_t size, ts_error *err) {
    if (size < 8) return ts_fail(err, TS_E_FORMAT, TS_GPT2_ERR "the section of %zu bytes is too small", size);
    int64_t nt = ts_read_i32(data), nm = ts_read_i32(data + 4);
    if (nt != t->vocab_size)
        return ts_fail(err, TS_E_FORMAT, TS_GPT2_ERR "n_tokens = %lld differs from the model's vocab_size = %d", (long long)nt, t->vocab_size);
    /* Each token record takes >= 4 bytes and each merge 12: bounds the counts by the size
     * before anything is allocated. */
    if (nt < 256 || (uint64_t)nt > (size - 8) / 4)
        return ts_fail(err, TS_E_FORMAT, TS_GPT2_ERR "n_tokens = %lld (must be 256 or more, 4 bytes each in %zu bytes)", (long long)nt,
                       size);
    if (nm < 0 || (uint64_t)nm > (size - 8) / 12)
        return ts_fail(err, TS_E_FORMAT, TS_GPT2_ERR "n_merges = %lld (must be 0 or more, 12 bytes each in %zu bytes)", (long long)nm,
                       size);
    t->n_merges = (int)nm;
    t->piece = (const char **)calloc((size_t)nt, sizeof(char *));
    t->piece_len = (int *)calloc((size_t)nt, sizeof(int));
    if (!t->piece || !t->piece_len) return ts_fail(err, TS_E_NOMEM, TS_GPT2_ERR "out of memory for %lld tokens", (long long)nt);
    size_t off = 8;
    int rc = ts_gpt2_load_tokens(t, data, size, &off, err);
    return rc ? rc : ts_gpt2_load_merges(t, data, size, off, err);
}

/* Encodes len bytes of text (no BOS/EOS) into ids (room for len ids: a token is at least
 * a byte); the number of ids, or -1 when out of memory. */
static long ts_gpt2_encode(const ts_tokenizer *t, const char *text, size_t len, int *ids) {
    const unsigned char *s = (const unsigned char *)text;
    ts_bpe bpe = {0};
    long n = 0;
    for (size_t i = 0, end; i < len; i = end) {
        end = ts_gpt2_pretoken_end(s, len, i);
        if (ts_bpe_reserve(&bpe, end - i)) {
            free(bpe.buf);
            return -1;
        }
        for (size_t k = i; k < end; k++) bpe.id[k - i] = t->byte_token[s[k]];
        ts_bpe_merge(ts_gpt2_priority, t, &bpe, 0, (int32_t)(end - i));
        for (int32_t p = 0; p >= 0; p = bpe.next[p]) ids[n++] = bpe.id[p]; /* place 0 is never merged away */
    }
    free(bpe.buf);
    return n;
}

static int ts_tokenizer_init(ts_tokenizer *t, int kind, const unsigned char *data, size_t size, const ts_config *c, ts_error *err) {
    memset(t, 0, sizeof *t);
    t->kind = kind;
    t->vocab_size = c->vocab_size;
    t->bos_id = c->bos_id;
    t->eos_id = c->eos_id;
    for (int b = 0; b < 256; b++) t->byte_text[2 * b] = (unsigned char)b;
    int rc = kind == TS_TOK_SENTENCEPIECE ? ts_sentencepiece_init(t, data, size, err) : ts_gpt2_init(t, data, size, err);
    for (int id = 0; rc == TS_OK && id < t->vocab_size; id++)
        t->longest_piece = t->piece_len[id] > t->longest_piece ? t->piece_len[id] : t->longest_piece;
    return rc;
}

static void ts_tokenizer_free(ts_tokenizer *t) {
    free(t->piece);
    free(t->piece_len);
    free(t->score);
    free(t->byte_value);
    free(t->pieces.slot);
    free(t->pair_seen);
    free(t->merge);
    free(t->merges.slot);
    free(t->owned);
    memset(t, 0, sizeof *t);
}

/* ==========================================================================
 * 7. Model files
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
 *    docs/format.md documents it field by field.
 * Every size is checked against the file length before a pointer is formed.
 * ========================================================================== */

/* A cursor over the file: hands out tensors, refusing anything past the end. */
typedef struct {
    const unsigned char *base;
    size_t size, pos;
    ts_error *err;
    int failed;
    const char *region;  /* what ends at `size`, for messages: "model file", "TSMF weights" */
} ts_reader;

static const void *ts_take(ts_reader *r, size_t count, size_t elem_size, size_t align, const char *what) {
    if (r->failed) return NULL;
    size_t bytes, start = r->pos, end;
    if (align > 1) start = (start + align - 1) / align * align;
    if (start < r->pos || !ts_mul(count, elem_size, &bytes) || !ts_add(start, bytes, &end) || end > r->size) {
        ts_fail(r->err, TS_E_FORMAT, "%s is truncated: tensor %s needs %zu x %zu bytes at offset %zu, but it ends at %zu",
                r->region, what, count, elem_size, start, r->size);
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
    size_t n;
    if (!ts_mul((size_t)rows, (size_t)cols, &n)) n = SIZE_MAX; /* ts_take then reports it */
    if (type == TS_F32) m.data = ts_take(r, n, 4, align, what);
    else if (type == TS_BF16) m.data = ts_take(r, n, 2, align, what);
    else {
        m.data = ts_take(r, n, 1, align, what);
        m.scale = ts_take_f32(r, (size_t)rows * (size_t)ts_groups(cols, group_size), align, what);
    }
    return m;
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
        ts_take(r, (size_t)c->seq_len, (size_t)c->head_dim * 4, 1, "rope tables"); /* unused freq_cis */
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
        return ts_fail(err, TS_E_FORMAT, "bad TSMF header: weights_offset = %llu, weights_size = %llu do not fit the file of %zu bytes (offset a multiple of 64, after the layer windows)",
                       (unsigned long long)weights_offset, (unsigned long long)weights_size, r->size);
    if (*tok_kind != TS_TOK_NONE &&
        (tokenizer_offset % 64 || tokenizer_offset < weights_offset + weights_size || tokenizer_offset > r->size ||
         tokenizer_size > r->size - tokenizer_offset))
        return ts_fail(err, TS_E_FORMAT, "bad TSMF header: tokenizer_offset = %llu, tokenizer_size = %llu do not fit the file of %zu bytes (offset a multiple of 64, after the weights)",
                       (unsigned long long)tokenizer_offset, (unsigned long long)tokenizer_size, r->size);
    *tok_offset = (size_t)tokenizer_offset;
    *tok_size = (size_t)tokenizer_size;

    /* tensors: the weights region only */
    ts_reader w = {r->base, (size_t)(weights_offset + weights_size), (size_t)weights_offset, err, 0,
                   "TSMF weights region (weights_offset + weights_size)"};
    int type = c->weight_type, gs = c->group_size, dim = c->dim, hid = c->hidden_dim;
    int q_dim = c->n_heads * c->head_dim, kv_dim = c->n_kv_heads * c->head_dim;
    int layer_norm = c->norm_kind == TS_NORM_LAYER;
    m->tok_embedding = ts_take_matrix(&w, type, c->vocab_size, dim, gs, 64, "tok_embedding");
    if (c->pos_kind == TS_POS_LEARNED) /* (seq_len) rows of dim floats */
        m->pos_embedding = (const float *)ts_take(&w, (size_t)c->seq_len, (size_t)dim * 4, 64, "pos_embedding");
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
    ts_reader r = {m->file, m->file_size, 0, err, 0, "model file"};
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
#ifdef TS_HAVE_MMAP
    struct stat st; /* a FIFO would block, a device has no size: only plain files */
    if (stat(path, &st) == 0 && !S_ISREG(st.st_mode))
        return ts_fail(err, TS_E_IO, "%s is not a regular file (a pipe, a device or a folder): it is memory-mapped, so it must "
                       "be a file on disk (save a pipe's output to a file first)", path);
#endif
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
 * 8. Library functions
 * ========================================================================== */

int ts_model_load_memory(ts_model **out, const void *data, size_t size, const void *tok_data, size_t tok_size, ts_error *err) {
    if (!out) return ts_fail(err, TS_E_ARG, "ts_model_load_memory: out is NULL");
    *out = NULL;
    if (!data || size == 0) return ts_fail(err, TS_E_ARG, "no model data (buffer %s, %zu bytes)", data ? "given" : "NULL", size);
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
    if (!out) return ts_fail(err, TS_E_ARG, "ts_model_load: out is NULL");
    *out = NULL;
    if (!path) return ts_fail(err, TS_E_ARG, "no model file given (path is NULL)");
    ts_model *m = (ts_model *)calloc(1, sizeof(ts_model));
    if (!m) return ts_fail(err, TS_E_NOMEM, "out of memory");
    int rc = ts_map_file(path, &m->file, &m->file_size, &m->mapped, &m->owned_file, err);
    if (rc) {
        free(m);
        return rc;
    }
    /* A separate tokenizer is small: keep a private copy so its pieces need no mapping
     * (at most 1 GiB: Llama 2's is 0.4 MB; a sparse file could claim terabytes). */
    void *tok_copy = NULL;
    size_t tok_size = 0;
    if (tokenizer_path) {
        const unsigned char *tok;
        int tok_mapped;
        void *tok_owned;
        rc = ts_map_file(tokenizer_path, &tok, &tok_size, &tok_mapped, &tok_owned, err);
        if (rc == TS_OK && tok_size > ((size_t)1 << 30)) {
            rc = ts_fail(err, TS_E_FORMAT, "%s is %zu bytes, too large for a tokenizer (at most 1 GiB)", tokenizer_path, tok_size);
            ts_unmap_file(tok, tok_size, tok_mapped, tok_owned);
        } else if (rc == TS_OK) {
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

const ts_config *ts_model_config(const ts_model *m) { return m ? &m->config : NULL; }
const char *ts_kernel_path(void) { return TS_KERNEL_PATH; }
size_t ts_model_file_size(const ts_model *m) { return m ? m->file_size : 0; }

int ts_encode(const ts_model *m, const char *text, size_t len, int add_bos, int *ids, int max_ids, int *n_ids, ts_error *err) {
    if (!n_ids) return ts_fail(err, TS_E_ARG, "ts_encode: n_ids is NULL");
    *n_ids = 0;
    if (!m) return ts_fail(err, TS_E_ARG, "ts_encode: no model (NULL)");
    const ts_tokenizer *t = &m->tokenizer;
    if (t->kind == TS_TOK_NONE) return ts_fail(err, TS_E_ARG, "the model has no tokenizer: embed one, or give one with -z");
    if (!text && len > 0) return ts_fail(err, TS_E_ARG, "no text (NULL) of %zu bytes", len);
    if (max_ids < 0 || (max_ids > 0 && !ids)) return ts_fail(err, TS_E_ARG, "no room for the ids (max_ids = %d)", max_ids);
    if (len > (size_t)INT_MAX / 4) return ts_fail(err, TS_E_RANGE, "text of %zu bytes is too long to encode", len);
    /* encode into a buffer large enough for any result, then copy what fits */
    int *buf = (int *)malloc((len + 3) * sizeof(int));
    if (!buf) return ts_fail(err, TS_E_NOMEM, "out of memory");
    long n = 0;
    if (t->kind == TS_TOK_SENTENCEPIECE) n = ts_sentencepiece_encode(t, text, len, add_bos, buf);
    else {
        if (add_bos && t->bos_id >= 0) buf[n++] = t->bos_id;
        long k = ts_gpt2_encode(t, text, len, buf + n);
        n = k < 0 ? -1 : n + k;
    }
    if (n < 0) {
        free(buf);
        return ts_fail(err, TS_E_NOMEM, "out of memory while encoding");
    }
    if (max_ids > 0) memcpy(ids, buf, (size_t)(n < max_ids ? n : max_ids) * sizeof(int));
    free(buf);
    *n_ids = (int)n;
    return TS_OK;
}

const char *ts_token_bytes(const ts_model *m, int token, size_t *len) {
    size_t unused;
    if (!len) len = &unused;
    if (!m || m->tokenizer.kind == TS_TOK_NONE || token < 0 || token >= m->tokenizer.vocab_size) {
        *len = 0;
        return NULL;
    }
    *len = (size_t)m->tokenizer.piece_len[token];
    return m->tokenizer.piece[token];
}

const char *ts_decode(const ts_model *m, int prev, int token, size_t *len) {
    size_t unused;
    if (!len) len = &unused;
    const char *p = ts_token_bytes(m, token, len);
    if (!p) return "";
    const ts_tokenizer *t = &m->tokenizer;
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

/* Physical memory of this machine in bytes, 0 if unknown. A session larger than this could
 * only swap: ts_session_new refuses it with a clear message instead (a hostile header can
 * ask for a million positions of a thousand layers). */
static size_t ts_physical_memory(void) {
#if defined(TS_HAVE_MMAP) && defined(_SC_PHYS_PAGES)
    long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
    if (pages > 0 && page > 0 && (size_t)pages <= SIZE_MAX / (size_t)page) return (size_t)pages * (size_t)page;
#endif
    return 0;
}

int ts_session_new(ts_session **out, const ts_model *m, int max_positions, ts_error *err) {
    if (!out) return ts_fail(err, TS_E_ARG, "ts_session_new: out is NULL");
    *out = NULL;
    if (!m) return ts_fail(err, TS_E_ARG, "ts_session_new: no model (NULL)");
    const ts_config *c = &m->config;
    if (max_positions <= 0 || max_positions > c->seq_len) max_positions = c->seq_len;
    size_t B = (size_t)(max_positions < TS_BATCH ? max_positions : TS_BATCH), P = (size_t)max_positions;
    size_t dim = (size_t)c->dim, hid = (size_t)c->hidden_dim, V = (size_t)c->vocab_size, H = (size_t)c->n_heads;
    size_t q_dim = H * (size_t)c->head_dim, kv_dim = (size_t)c->n_kv_heads * c->head_dim;
    size_t widest = dim > hid ? dim : hid;
    if (q_dim > widest) widest = q_dim;
    size_t gs = c->group_size > 0 ? (size_t)c->group_size : 1, rope_w = (size_t)c->head_dim / 2 + 1;
    size_t kv_rows = (size_t)c->n_layers * P; /* cache rows of kv_dim floats, per K and V */
    /* one allocation, cut into named arrays of rows x width elements (each rounded up to 64 bytes) */
    ts_session *s = (ts_session *)calloc(1, sizeof(ts_session));
    if (!s) return ts_fail(err, TS_E_NOMEM, "out of memory");
    struct { void **ptr; size_t rows, width, elem; } parts[] = {
        {(void **)&s->x, B, dim, 4},
        {(void **)&s->xb, B, widest, 4},
        {(void **)&s->xb2, B, dim, 4},
        {(void **)&s->hb, B, hid, 4},
        {(void **)&s->hb2, B, hid, 4},
        {(void **)&s->q, B, q_dim, 4},
        {(void **)&s->att, B * H, P, 4},
        {(void **)&s->logits, B, V, 4},
        {(void **)&s->xq, B, widest, 1},
        {(void **)&s->xq_scale, B, widest / gs + 1, 4},
        {(void **)&s->xq_packed, 1, ts_q8_packed_bytes((int)B, (int)widest, (int)gs), 1},
        {(void **)&s->rope_cos, P, rope_w, 4},
        {(void **)&s->rope_sin, P, rope_w, 4},
        {(void **)&s->k, B, kv_dim, 4},
        {(void **)&s->key_cache, kv_rows, kv_dim, 4},
        {(void **)&s->value_cache, kv_rows, kv_dim, 4},
        {(void **)&s->probindex, V, 1, sizeof(ts_prob_index)},
    };
    size_t total = 0, n_parts = sizeof parts / sizeof parts[0], bytes[sizeof parts / sizeof parts[0]] = {0};
    int ok = 1;
    for (size_t i = 0; i < n_parts && ok; i++) { /* rows * width * elem rounded up to 64, checked */
        ok = ts_mul(parts[i].rows, parts[i].width, &bytes[i]) && ts_mul(bytes[i], parts[i].elem, &bytes[i]) &&
             ts_add(bytes[i], 63, &bytes[i]);
        bytes[i] -= bytes[i] % 64;
        ok = ok && ts_add(total, bytes[i], &total);
    }
    size_t phys = ts_physical_memory();
    if (!ok || total > SIZE_MAX / 2 || (phys > 0 && total > phys)) {
        free(s);
        return ts_fail(err, TS_E_NOMEM,
                       "a session of %d positions needs %.0f MB (KV cache %.0f MB), more than this machine's %.0f MB of memory: ask for fewer positions (-n)",
                       max_positions, ok ? (double)total / 1048576.0 : INFINITY, (double)kv_rows * (double)kv_dim * 8.0 / 1048576.0,
                       (double)phys / 1048576.0);
    }
    s->model = m;
    s->max_positions = max_positions;
    s->batch = (int)B;
    s->rng_state = 1;
    unsigned char *mem = (unsigned char *)ts_aligned_alloc(total);
    if (!mem) {
        free(s);
        return ts_fail(err, TS_E_NOMEM, "out of memory allocating %zu bytes of session state for %d positions", total, max_positions);
    }
    s->memory = mem;
    s->memory_size = total;
    for (size_t i = 0; i < n_parts; i++) {
        *parts[i].ptr = mem;
        mem += bytes[i];
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
    free(s->resid_record);
    free(s->mlp_record);
    free(s->ablated);
    free(s->ready_ids);
    ts_aligned_free(s->memory);
    free(s);
}

int ts_session_record_attention(ts_session *s, int n_positions, ts_error *err) {
    if (!s) return ts_fail(err, TS_E_ARG, "ts_session_record_attention: no session (NULL)");
    if (n_positions < 0 || n_positions > s->max_positions)
        return ts_fail(err, TS_E_RANGE, "cannot record %d positions: the session has %d", n_positions, s->max_positions);
    free(s->att_record);
    s->att_record = NULL, s->rec_len = 0;
    if (n_positions == 0) return TS_OK;
    const ts_config *c = &s->model->config;
    size_t count; /* (n_layers, n_heads, n, n) */
    if (!ts_mul((size_t)c->n_layers * (size_t)c->n_heads, (size_t)n_positions * (size_t)n_positions, &count) ||
        !ts_mul(count, sizeof(float), &count) || !(s->att_record = (float *)calloc(1, count)))
        return ts_fail(err, TS_E_NOMEM, "out of memory recording the attention of %d positions (%d layers x %d heads)", n_positions,
                       c->n_layers, c->n_heads);
    s->rec_len = n_positions;
    return TS_OK;
}

const float *ts_session_attention(const ts_session *s, int *n_positions) {
    if (n_positions) *n_positions = s ? s->rec_len : 0;
    return s ? s->att_record : NULL;
}

/* A malloc'ed copy of n bytes of src (NULL for NULL); *failed set when out of memory. */
static void *ts_dup(const void *src, size_t n, int *failed) {
    if (!src) return NULL;
    void *p = malloc(n > 0 ? n : 1);
    if (p) memcpy(p, src, n);
    else *failed = 1;
    return p;
}

int ts_session_copy(ts_session **out, const ts_session *src, ts_error *err) {
    if (!out) return ts_fail(err, TS_E_ARG, "ts_session_copy: out is NULL");
    *out = NULL;
    if (!src) return ts_fail(err, TS_E_ARG, "ts_session_copy: no session (NULL)");
    ts_session *s;
    int rc = ts_session_new(&s, src->model, src->max_positions, err);
    if (rc) return rc;
    const ts_config *c = &src->model->config;
    size_t L = (size_t)c->n_layers, att = src->rec_len, in = src->internals_len;
    int nomem = 0;
    memcpy(s->memory, src->memory, src->memory_size); /* cache, activations, logits: every array of the one allocation */
    s->rng_state = src->rng_state;
    s->att_record = (float *)ts_dup(src->att_record, L * c->n_heads * att * att * sizeof(float), &nomem), s->rec_len = src->rec_len;
    s->resid_record = (float *)ts_dup(src->resid_record, (L + 1) * in * c->dim * sizeof(float), &nomem);
    s->mlp_record = (float *)ts_dup(src->mlp_record, L * in * c->hidden_dim * sizeof(float), &nomem), s->internals_len = src->internals_len;
    s->ablated = (unsigned char *)ts_dup(src->ablated, L * ((size_t)c->n_heads + (size_t)c->hidden_dim), &nomem), s->n_ablated = src->n_ablated;
    s->ready_ids = (int *)ts_dup(src->ready_ids, (size_t)src->n_ready * sizeof(int), &nomem), s->n_ready = src->n_ready;
    if (nomem) {
        ts_session_free(s);
        return ts_fail(err, TS_E_NOMEM, "out of memory copying a session");
    }
    *out = s;
    return TS_OK;
}

int ts_session_record_internals(ts_session *s, int n_positions, ts_error *err) {
    if (!s) return ts_fail(err, TS_E_ARG, "ts_session_record_internals: no session (NULL)");
    if (n_positions < 0 || n_positions > s->max_positions)
        return ts_fail(err, TS_E_RANGE, "cannot record %d positions: the session has %d", n_positions, s->max_positions);
    free(s->resid_record), free(s->mlp_record);
    s->resid_record = s->mlp_record = NULL, s->internals_len = 0;
    if (n_positions == 0) return TS_OK;
    const ts_config *c = &s->model->config;
    size_t resid, mlp; /* (n_layers + 1, n, dim) and (n_layers, n, hidden_dim) floats */
    if (!ts_mul((size_t)(c->n_layers + 1) * (size_t)n_positions, (size_t)c->dim * sizeof(float), &resid) ||
        !ts_mul((size_t)c->n_layers * (size_t)n_positions, (size_t)c->hidden_dim * sizeof(float), &mlp) ||
        !(s->resid_record = (float *)calloc(1, resid)) || !(s->mlp_record = (float *)calloc(1, mlp))) {
        free(s->resid_record), s->resid_record = NULL;
        return ts_fail(err, TS_E_NOMEM, "out of memory recording the residual stream and MLP of %d positions", n_positions);
    }
    s->internals_len = n_positions;
    return TS_OK;
}

const float *ts_session_residual(const ts_session *s, int *n_positions) {
    if (n_positions) *n_positions = s ? s->internals_len : 0;
    return s ? s->resid_record : NULL;
}

const float *ts_session_mlp(const ts_session *s, int *n_positions) {
    if (n_positions) *n_positions = s ? s->internals_len : 0;
    return s ? s->mlp_record : NULL;
}

int ts_logit_lens(ts_session *s, const float *resid, int n, float *logits, ts_error *err) {
    if (!s || (n > 0 && (!resid || !logits))) return ts_fail(err, TS_E_ARG, "ts_logit_lens: no session, residual or output (NULL)");
    if (n < 0) return ts_fail(err, TS_E_RANGE, "ts_logit_lens: %d rows", n);
    const ts_model *m = s->model;
    const ts_config *c = &m->config;
    s->n_ready = 0; /* the session's logits are overwritten */
    for (int done = 0; done < n; done += s->batch) { /* the final norm and classifier of ts_forward_block */
        int k = n - done < s->batch ? n - done : s->batch;
        ts_norm(c, s->xb, resid + (size_t)done * c->dim, m->final_norm, m->final_norm_bias, k);
        ts_matmul(s, s->logits, s->xb, &m->classifier, k);
        memcpy(logits + (size_t)done * c->vocab_size, s->logits, (size_t)k * c->vocab_size * sizeof(float));
    }
    return TS_OK;
}

int ts_session_ablate(ts_session *s, int kind, int layer, int index, int on, ts_error *err) {
    if (!s) return ts_fail(err, TS_E_ARG, "ts_session_ablate: no session (NULL)");
    const ts_config *c = &s->model->config;
    int count = kind == TS_ABLATE_HEAD ? c->n_heads : c->hidden_dim;
    const char *what = kind == TS_ABLATE_HEAD ? "head" : "neuron";
    if (kind != TS_ABLATE_HEAD && kind != TS_ABLATE_NEURON) return ts_fail(err, TS_E_ARG, "ts_session_ablate: unknown kind %d", kind);
    if (layer < 0 || layer >= c->n_layers)
        return ts_fail(err, TS_E_RANGE, "layer %d is out of range: the model has layers 0..%d", layer, c->n_layers - 1);
    if (index < 0 || index >= count)
        return ts_fail(err, TS_E_RANGE, "%s %d of layer %d is out of range: the model has %ss 0..%d", what, index, layer, what, count - 1);
    if (!s->ablated) {
        s->ablated = (unsigned char *)calloc((size_t)c->n_layers, (size_t)c->n_heads + (size_t)c->hidden_dim);
        if (!s->ablated) return ts_fail(err, TS_E_NOMEM, "out of memory");
    }
    size_t at = kind == TS_ABLATE_HEAD ? (size_t)layer * c->n_heads + (size_t)index
                                       : (size_t)c->n_layers * c->n_heads + (size_t)layer * c->hidden_dim + (size_t)index;
    on = on != 0;
    s->n_ablated += on - s->ablated[at];
    s->ablated[at] = (unsigned char)on;
    return TS_OK;
}

int ts_session_max_positions(const ts_session *s) { return s ? s->max_positions : 0; }

/* ==========================================================================
 * 9. Command line
 *
 * ./run MODEL [options], compatible with llama2.c's run, plus modes for tests and study.
 * Only sections 9 to 11 print and pick exit codes.
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
            "  -n <int>    number of steps to run for, default 256. 0 = max_seq_len; more: the window slides\n"
            "  -i <string> input prompt\n"
            "  -z <string> optional path to custom tokenizer (default: the model's own, else tokenizer.bin)\n"
            "  -m <string> mode: generate|chat|tokenize|decode|logits|ppl|inspect|dump|neurons|batch, default: generate\n"
            "  -y <string> (optional) system prompt in chat mode\n"
            "  -f <file>   text file for -m ppl, dump and neurons, or to encode with -m tokenize\n"
            "  --ids <file> token ids for -m logits, decode and dump\n"
            "  --out <file> float32 logits out, for -m logits; the folder of -m dump's arrays\n"
            "  --viz <file.html>  generate, then draw the attention and the top-5 candidates;\n"
            "              with -m neurons, a page of each layer's most selective neurons\n"
            "  --ablate-head L.H[,L.H...]    switch heads off (layer.head, from 0), in every mode\n"
            "  --ablate-neuron L.N[,L.N...]  switch MLP neurons off (layer.neuron, from 0)\n"
            "  --lens      -m inspect: each layer's top token (logit lens); -m dump: lens.npy\n"
            "  --top <int> -m neurons: positions per neuron, default 10\n"
            "  --top-k <int>, --min-p <float>, --repeat-penalty <float>, --repeat-last-n <int> (64),\n"
            "  --stop <string> (repeatable): sampling, in the order penalty, top-k, temperature, min-p, top-p\n"
            "  --features, --words, --sentence, --summary <string>: a TinyStories-Instruct prompt\n"
            "  --samples <int> -m batch: samples per prompt, seeds -s, -s + 1, ...\n"
            "Modes: ppl -f FILE: perplexity of a text; inspect -i TEXT: per token, its probability\n"
            "and the model's 5 most likely next tokens; dump (-i TEXT | -f FILE | --ids FILE) --out DIR:\n"
            "NumPy arrays of one run (tokens, resid, mlp, attn, logits, lens); neurons -f FILE: per\n"
            "layer and MLP neuron, the positions where it fires most (tab-separated); batch -f PROMPTS:\n"
            "one JSON line per sample of each line's prompt (prompt, sample, seed, text)\n");
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
    const char *ablate_heads, *ablate_neurons; /* "L.I,L.I..." lists, checked for form */
    const char *instruct[4];    /* --features, --words, --sentence, --summary (TinyStories-Instruct) */
    const char *stop[16];       /* --stop, repeatable */
    int n_stop;
    float temperature, topp, min_p, repeat_penalty;
    long long seed;
    int steps, lens, top_k, sample_top_k, repeat_last_n, samples;
    const char *generate_only; /* the last option given that only -m generate takes */
} ts_args;

/* TinyStories-Instruct's fields, in the order of its training files, each "Name: value" on
 * a line of its own, then "Story:" and a newline. */
static const char *const ts_instruct_names[4] = {"Features", "Words", "Random sentence", "Summary"};
static const char *const ts_instruct_flags[4] = {"--features", "--words", "--sentence", "--summary"};

/* "L.I[,L.I...]" (--ablate-head, --ablate-neuron; whole numbers from 0): the count of
 * pairs, stored in pairs (room for 2 x count ints) unless NULL; -1 if an item is malformed,
 * and *bad then points at it. */
static int ts_parse_parts(const char *list, int *pairs, const char **bad) {
    int count = 0;
    for (const char *p = list;;) {
        const char *item = p;
        long long v[2] = {0, 0};
        for (int k = 0; k < 2; k++) {
            if (*p < '0' || *p > '9') return *bad = item, -1;
            for (; *p >= '0' && *p <= '9'; p++)
                if ((v[k] = v[k] * 10 + (*p - '0')) > INT_MAX) return *bad = item, -1;
            if (k == 0 && *p++ != '.') return *bad = item, -1;
        }
        if (*p != ',' && *p != '\0') return *bad = item, -1;
        if (pairs) pairs[2 * count] = (int)v[0], pairs[2 * count + 1] = (int)v[1];
        count++;
        if (*p++ == '\0') return count;
    }
}

/* A message as one line: the control bytes a file name or an argument may carry (a
 * newline above all) become '?', so that the error stays the last line of stderr. */
static void ts_one_line(char *msg) {
    for (; *msg; msg++)
        if ((unsigned char)*msg < 0x20 || *msg == 0x7f) *msg = '?';
}

static int ts_parse_args_of(int argc, char **argv, ts_args *a, char *msg, size_t msg_len);
/* Fills args from argv; on error writes a one-line message and returns non-zero. */
static int ts_parse_args(int argc, char **argv, ts_args *a, char *msg, size_t msg_len) {
    int rc = ts_parse_args_of(argc, argv, a, msg, msg_len);
    if (rc) ts_one_line(msg);
    return rc;
}
/* The options that take a whole number: *known set if flag is one; non-zero with a message
 * if its value is not a whole number in range. */
static int ts_int_option(ts_args *a, const char *flag, const char *val, char *msg, size_t msg_len, int *known) {
    const struct { const char *flag; int *to; long long lo, hi; int generate_only; const char *what, *rule; } ints[] = {
        {"-n", &a->steps, 0, INT_MAX, 0, "step count", "must be a whole number in [0, 2147483647]"},
        {"--top-k", &a->sample_top_k, 0, INT_MAX, 1, "top-k", "must be a whole number >= 0 (0 = off)"},
        {"--repeat-last-n", &a->repeat_last_n, 0, INT_MAX, 1, "count", "must be a whole number >= 0 (0 = no penalty)"},
        {"--samples", &a->samples, 1, 1000000, 0, "count", "must be a whole number in [1, 1000000]"},
        {"--top", &a->top_k, 1, 1000000, 0, "count", "must be a whole number in [1, 1000000]"},
    };
    *known = 0;
    for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++) {
        long long v;
        if (strcmp(flag, ints[i].flag) != 0) continue;
        *known = 1;
        if (!ts_parse_long(val, ints[i].lo, ints[i].hi, &v)) return snprintf(msg, msg_len, "bad %s '%s' for %s: %s", ints[i].what, val, flag, ints[i].rule), 1;
        *ints[i].to = (int)v;
        if (ints[i].generate_only) a->generate_only = flag;
    }
    return 0;
}

static int ts_parse_args_of(int argc, char **argv, ts_args *a, char *msg, size_t msg_len) {
    memset(a, 0, sizeof *a);
    a->temperature = 1.0f, a->topp = 0.9f, a->steps = 256, a->mode = "generate", a->repeat_last_n = 64;
    if (argc < 2) return snprintf(msg, msg_len, "missing the model file"), 1;
    a->checkpoint = argv[1];
    for (int i = 2; i < argc; i += 2) {
        const char *flag = argv[i], *val = i + 1 < argc ? argv[i + 1] : NULL;
        if (flag[0] != '-') return snprintf(msg, msg_len, "unexpected argument '%s' (options start with -)", flag), 1;
        if (!strcmp(flag, "--lens")) { /* the one option without a value */
            a->lens = 1, i--;
            continue;
        }
        if (!val) return snprintf(msg, msg_len, "option %s needs a value", flag), 1;
        long long v;
        int known_int;
        if (!strcmp(flag, "-t")) {
            if (!ts_parse_float(val, &a->temperature) || a->temperature < 0.0f)
                return snprintf(msg, msg_len, "bad temperature '%s' for -t: must be a finite number >= 0", val), 1;
        } else if (!strcmp(flag, "-p")) {
            if (!ts_parse_float(val, &a->topp) || a->topp < 0.0f || a->topp > 1.0f)
                return snprintf(msg, msg_len, "bad top-p '%s' for -p: must be a number in [0, 1]", val), 1;
        } else if (!strcmp(flag, "-s")) {
            if (!ts_parse_long(val, 0, LLONG_MAX, &v))
                return snprintf(msg, msg_len, "bad seed '%s' for -s: must be a whole number in [0, %lld]", val, LLONG_MAX), 1;
            a->seed = v;
        } else if (ts_int_option(a, flag, val, msg, msg_len, &known_int)) return 1;
        else if (known_int) continue;
        else if (!strcmp(flag, "-i")) a->prompt = val;
        else if (!strcmp(flag, "-z")) a->tokenizer = val;
        else if (!strcmp(flag, "-m")) a->mode = val;
        else if (!strcmp(flag, "-y")) a->system_prompt = val;
        else if (!strcmp(flag, "-f")) a->text_path = val;
        else if (!strcmp(flag, "--ids")) a->ids_path = val;
        else if (!strcmp(flag, "--ablate-head") || !strcmp(flag, "--ablate-neuron")) {
            const char *bad = val;
            if (ts_parse_parts(val, NULL, &bad) < 0)
                return snprintf(msg, msg_len, "bad item '%.*s' in %s '%s': must be LAYER.%s[,LAYER.%s...], whole numbers from 0",
                                (int)strcspn(bad, ","), bad, flag, val, flag[9] == 'h' ? "HEAD" : "NEURON", flag[9] == 'h' ? "HEAD" : "NEURON"),
                       1;
            if (flag[9] == 'h') a->ablate_heads = val;
            else a->ablate_neurons = val;
        } else if (!strcmp(flag, "--min-p")) {
            a->generate_only = flag;
            if (!ts_parse_float(val, &a->min_p) || a->min_p < 0.0f || a->min_p > 1.0f)
                return snprintf(msg, msg_len, "bad min-p '%s' for --min-p: must be a number in [0, 1]", val), 1;
        } else if (!strcmp(flag, "--repeat-penalty")) {
            a->generate_only = flag;
            if (!ts_parse_float(val, &a->repeat_penalty) || !(a->repeat_penalty > 0.0f))
                return snprintf(msg, msg_len, "bad penalty '%s' for --repeat-penalty: must be a finite number > 0 (1 = off)", val), 1;
        } else if (!strcmp(flag, "--stop")) {
            a->generate_only = flag;
            if (!val[0]) return snprintf(msg, msg_len, "--stop needs a string that is not empty"), 1;
            if (a->n_stop == (int)(sizeof a->stop / sizeof a->stop[0]))
                return snprintf(msg, msg_len, "too many --stop strings (at most %d)", (int)(sizeof a->stop / sizeof a->stop[0])), 1;
            a->stop[a->n_stop++] = val;
        } else if (!strcmp(flag, "--features") || !strcmp(flag, "--words") || !strcmp(flag, "--sentence") || !strcmp(flag, "--summary")) {
            int k = 0;
            a->generate_only = flag;
            while (strcmp(flag, ts_instruct_flags[k]) != 0) k++;
            if (strpbrk(val, "\r\n")) return snprintf(msg, msg_len, "%s must be one line: the value has a line break", flag), 1;
            a->instruct[k] = val;
        }
        else if (!strcmp(flag, "--out")) a->out_path = val;
        else if (!strcmp(flag, "--viz")) a->viz_path = val;
        else return snprintf(msg, msg_len, "unknown option '%s'", flag), 1;
    }
    const char *modes[] = {"generate", "chat", "tokenize", "decode", "logits", "ppl", "inspect", "dump", "neurons", "batch"};
    int known = 0;
    for (size_t i = 0; i < sizeof modes / sizeof modes[0]; i++) known |= !strcmp(a->mode, modes[i]);
    if (!known)
        return snprintf(msg, msg_len, "unknown mode '%s' for -m (generate, chat, tokenize, decode, logits, ppl, inspect, dump, neurons, batch)", a->mode), 1;
    int dump = !strcmp(a->mode, "dump"), neurons = !strcmp(a->mode, "neurons");
    if (dump && !a->out_path) return snprintf(msg, msg_len, "-m dump needs --out DIR"), 1;
    if (dump && (!!a->prompt + !!a->text_path + !!a->ids_path) != 1)
        return snprintf(msg, msg_len, "-m dump needs one of -i TEXT, -f FILE or --ids FILE"), 1;
    if (neurons && (!!a->prompt + !!a->text_path + !!a->ids_path) != 1)
        return snprintf(msg, msg_len, "-m neurons needs one of -f FILE or -i TEXT"), 1;
    if (a->lens && !dump && strcmp(a->mode, "inspect") != 0) return snprintf(msg, msg_len, "--lens works with -m dump and -m inspect only"), 1;
    if (a->top_k && !neurons) return snprintf(msg, msg_len, "--top works with -m neurons only"), 1;
    if (!a->top_k) a->top_k = 10;
    int batch = !strcmp(a->mode, "batch");
    if (a->generate_only && strcmp(a->mode, "generate") != 0 && !batch)
        return snprintf(msg, msg_len, "%s works with -m generate and -m batch only", a->generate_only), 1;
    if (batch && !a->text_path) return snprintf(msg, msg_len, "-m batch needs -f PROMPTS (one prompt per line)"), 1;
    if (a->samples && !batch) return snprintf(msg, msg_len, "--samples works with -m batch only"), 1;
    if (!a->samples) a->samples = 1;
    if (!strcmp(a->mode, "decode") && !a->ids_path) return snprintf(msg, msg_len, "-m decode needs --ids FILE"), 1;
    if (!strcmp(a->mode, "logits") && (!a->ids_path || !a->out_path))
        return snprintf(msg, msg_len, "-m logits needs --ids FILE and --out FILE"), 1;
    if (!strcmp(a->mode, "ppl") && !a->text_path) return snprintf(msg, msg_len, "-m ppl needs -f FILE"), 1;
    if (a->viz_path && strcmp(a->mode, "generate") != 0 && !neurons) return snprintf(msg, msg_len, "--viz works with -m generate and -m neurons only"), 1;
    return 0;
}

/* Whether path can be written (created, or opened for writing if it exists), checked
 * without changing it: 0, or non-zero with a message. Without POSIX's stat and access it
 * is not checked here (the write itself then reports a failure). */
static int ts_check_writable(const char *path, char *msg, size_t msg_len) {
#ifdef TS_HAVE_MMAP
    struct stat st;
    if (stat(path, &st) == 0) { /* an existing file (or a device such as /dev/null) */
        if (S_ISDIR(st.st_mode)) return snprintf(msg, msg_len, "cannot write %s: it is a folder", path), 1;
        if (access(path, W_OK) != 0) return snprintf(msg, msg_len, "cannot write %s: %s", path, strerror(errno)), 1;
        return 0;
    }
    FILE *f = fopen(path, "wb"); /* a new file: made, then taken away again */
    if (!f) return snprintf(msg, msg_len, "cannot write %s: %s", path, strerror(errno)), 1;
    fclose(f);
    remove(path);
#else
    (void)path, (void)msg, (void)msg_len;
#endif
    return 0;
}

static int ts_die(const char *what) {
    char line[1024];
    snprintf(line, sizeof line, "%s", what);
    ts_one_line(line);
    fprintf(stderr, "run: %s\n", line);
    return 1;
}

/* ts_die, after freeing what the caller holds. */
static int ts_die_free(void *held, const char *what) {
    free(held);
    return ts_die(what);
}

/* A session of `positions` (the most this run can reach: the KV cache holds no more), with
 * the parts --ablate-head and --ablate-neuron switch off. */
static int ts_open_session(const ts_model *m, int positions, ts_session **s, const ts_args *a) {
    ts_error err = {0, ""};
    if (ts_session_new(s, m, positions, &err)) return ts_die(err.msg);
    const char *lists[2] = {a->ablate_heads, a->ablate_neurons}, *flags[2] = {"--ablate-head", "--ablate-neuron"}, *bad;
    for (int k = 0; k < 2; k++) {
        int n = lists[k] ? ts_parse_parts(lists[k], NULL, &bad) : 0, *pairs = (int *)malloc(2 * sizeof(int) * (size_t)(n > 0 ? n : 1));
        if (!pairs) err.code = TS_E_NOMEM, snprintf(err.msg, sizeof err.msg, "out of memory");
        else if (n > 0) ts_parse_parts(lists[k], pairs, &bad);
        for (int i = 0; pairs && i < n; i++)
            if (ts_session_ablate(*s, k == 0 ? TS_ABLATE_HEAD : TS_ABLATE_NEURON, pairs[2 * i], pairs[2 * i + 1], 1, &err)) {
                char msg[sizeof err.msg + 64];
                snprintf(msg, sizeof msg, "%s %d.%d: %s", flags[k], pairs[2 * i], pairs[2 * i + 1], err.msg);
                free(pairs);
                ts_session_free(*s), *s = NULL;
                return ts_die(msg);
            }
        free(pairs);
        if (err.code) {
            ts_session_free(*s), *s = NULL;
            return ts_die(err.msg);
        }
    }
    return 0;
}

/* llama2.c prints each piece as it comes. A failed write stops the generation (non-zero);
 * the caller then reports it with ts_stdout_failed. */
static int ts_print_piece(void *user, int token, const char *piece, size_t len) {
    (void)user, (void)token;
    return fwrite(piece, 1, len, stdout) < len || fflush(stdout) != 0;
}

/* Whether writing standard output failed (a full disk, a closed descriptor, a pipe whose
 * reader has gone while SIGPIPE is ignored; with SIGPIPE's default action the process has
 * ended quietly by then, as any tool's does): if so, one message naming the error. */
static int ts_stdout_failed(void) {
    errno = 0;
    if (fflush(stdout) == 0 && !ferror(stdout)) return 0;
    fprintf(stderr, "run: cannot write to standard output: %s\n", errno ? strerror(errno) : "write error");
    return 1;
}

/* ---- Looking inside: token text for people, -m inspect, --viz -------------------- */


/* ==========================================================================
 * 10. Looking inside
 *
 * -m inspect: the text's tokens, each with its probability and the five the model
 * expected next. --viz FILE.html: one page of the story, every head's attention and each
 * token's candidates (inline SVG and CSS, nothing fetched).
 * ========================================================================== */

/* The bytes a token stands for, to show: a byte token's byte, BOS/EOS without the newlines
 * around them in llama2.c's tokenizer.bin ("\n<s>\n"). */
static const char *ts_token_text(const ts_model *m, int id, size_t *len) {
    const ts_tokenizer *t = &m->tokenizer;
    const char *p = ts_token_bytes(m, id, len);
    if (!p) return "";
    if (t->kind == TS_TOK_SENTENCEPIECE && t->byte_value[id] >= 0) {
        *len = 1;
        return (const char *)t->byte_text + 2 * t->byte_value[id];
    }
    if (id == t->bos_id || id == t->eos_id)
        while (*len > 1 && (p[0] == '\n' || p[*len - 1] == '\n')) p += p[0] == '\n', *len -= 1;
    return p;
}

/* Writes text as one line a person can read into out (cap bytes, NUL-terminated, cut short
 * with "..." if it does not fit): html = 0 in C string style (\n, \", \\, \xNN), html = 1
 * for an HTML page (&lt; &amp; ..., a newline as ↵). Either way, bytes that are not valid
 * UTF-8 and control characters become \xNN. Returns the number of characters shown. */
static int ts_escape(char *out, size_t cap, const char *text, size_t n, int html) {
    const unsigned char *p = (const unsigned char *)text;
    size_t o = 0;
    int shown = 0;
    for (size_t i = 0; i < n;) {
        char buf[16];
        const char *rep = buf;
        uint32_t cp;
        int len = ts_utf8_decode(p + i, n - i, &cp), width = 1;
        if (len == 1 && p[i] >= 0x20 && p[i] != 0x7F) {
            buf[0] = (char)p[i], buf[1] = '\0';
            if (html && p[i] == '<') rep = "&lt;";
            else if (html && p[i] == '>') rep = "&gt;";
            else if (html && p[i] == '&') rep = "&amp;";
            else if (html && p[i] == '"') rep = "&quot;";
            else if (!html && p[i] == '"') rep = "\\\"";
            else if (!html && p[i] == '\\') rep = "\\\\";
            width = (int)strlen(rep) * !html + html;
        } else if (len > 1) {
            memcpy(buf, p + i, (size_t)len), buf[len] = '\0';
        } else {
            len = 1;
            if (p[i] == '\n') rep = html ? "\xE2\x86\xB5" : "\\n"; /* ↵ */
            else if (p[i] == '\t') rep = html ? "\xE2\x87\xA5" : "\\t"; /* ⇥ */
            else snprintf(buf, sizeof buf, "\\x%02X", p[i]);
            width = html && (p[i] == '\n' || p[i] == '\t') ? 1 : (int)strlen(rep);
        }
        size_t rl = strlen(rep);
        if (o + rl + 4 > cap) {
            if (o + 4 <= cap) memcpy(out + o, "...", 3), o += 3, shown += 3;
            break;
        }
        memcpy(out + o, rep, rl);
        o += rl, shown += width, i += (size_t)len;
    }
    if (cap > 0) out[o < cap ? o : cap - 1] = '\0';
    return shown;
}

/* The prompt's tokens and their logits, from one batched pass: inspect's input. */
static int ts_run_inspect(const ts_model *m, const ts_args *a) {
    int V = m->config.vocab_size, n = 0, *ids = NULL;
    ts_error err = {0, ""};
    ts_session *s = NULL;
    if (ts_prompt_tokens(m, a->prompt ? a->prompt : "", a->prompt ? strlen(a->prompt) : 0, &ids, &n, &err)) return ts_die(err.msg);
    if (n > m->config.seq_len) {
        char msg[160];
        snprintf(msg, sizeof msg, "the text is %d tokens, more than the model's context of %d", n, m->config.seq_len);
        return ts_die_free(ids, msg);
    }
    if (ts_open_session(m, n, &s, a)) return free(ids), 1;
    float *logits = (float *)malloc((size_t)n * V * sizeof(float));
    int L = a->lens ? m->config.n_layers : 0, *lens_id = (int *)malloc(((size_t)L * n + 1) * sizeof(int));
    float *lens_p = (float *)malloc(((size_t)L * n + 1) * sizeof(float));
    float *lens = L ? (float *)malloc((size_t)s->batch * V * sizeof(float)) : NULL; /* a block of one layer's lens logits */
    int rc = logits && lens_id && lens_p && (lens || !L) ? TS_OK : ts_fail(&err, TS_E_NOMEM, "out of memory");
    if (!rc && L) rc = ts_session_record_internals(s, n, &err);
    for (int done = 0; !rc && done < n; done += s->batch)
        rc = ts_forward_all(s, ids + done, n - done < s->batch ? n - done : s->batch, done, logits + (size_t)done * V, &err);
    /* --lens: what each layer's residual predicts (final norm and classifier), its top token */
    for (int l = 0; !rc && l < L; l++)
        for (int done = 0; !rc && done < n; done += s->batch) {
            int k = n - done < s->batch ? n - done : s->batch;
            size_t at = (size_t)l * n + done;
            rc = ts_logit_lens(s, ts_session_residual(s, NULL) + ((size_t)(l + 1) * n + done) * m->config.dim, k, lens, &err);
            for (int i = 0; !rc && i < k; i++) ts_top_k(lens + (size_t)i * V, V, 1, lens_id + at + i, lens_p + at + i);
        }
    free(lens);
    if (rc) {
        free(ids), free(logits), free(lens_id), free(lens_p), ts_session_free(s);
        return ts_die(err.msg);
    }
    /* column width: the widest token as shown, in characters */
    char text[256];
    int width = 7;
    for (int i = 0; i < n; i++) {
        size_t len;
        const char *p = ts_token_text(m, ids[i], &len);
        int w = ts_escape(text, sizeof text, p, len, 0) + 2;
        width = w > width ? w : width;
    }
    printf("%4s  %-*s  %-6s", "pos", width, "token", "p");
    for (int l = 0; l < L; l++) printf("  L%-*d", 15, l);
    printf("  %s\n", L ? "top 5 next tokens (L0.. = each layer's top token by the logit lens)" : "top 5 next tokens (p = softmax of the logits at temperature 1)");
    for (int i = 0; i < n; i++) {
        const float *row = logits + (size_t)i * V;
        size_t len;
        const char *p = ts_token_text(m, ids[i], &len);
        int w = ts_escape(text, sizeof text, p, len, 0) + 2;
        printf("%4d  \"%s\"%*s  ", i, text, width - w, "");
        if (i == 0) printf("%-6s", "-");
        else printf("%.4f", exp(-ts_nll(row - V, V, ids[i])));
        for (int l = 0; l < L; l++) { /* "token" .pp, 16 characters */
            char cell[sizeof text + 16];
            p = ts_token_text(m, lens_id[(size_t)l * n + i], &len);
            ts_escape(text, 11, p, len, 0);
            snprintf(cell, sizeof cell, "\"%s\" %.2f", text, (double)lens_p[(size_t)l * n + i]);
            printf("  %-16s", cell);
        }
        int top[5];
        float prob[5];
        int k = ts_top_k(row, V, 5, top, prob);
        for (int j = 0; j < k; j++) {
            p = ts_token_text(m, top[j], &len);
            ts_escape(text, sizeof text, p, len, 0);
            printf("  \"%s\" %.4f", text, prob[j]);
        }
        printf("\n");
        if (ferror(stdout)) break; /* main says why */
    }
    free(ids), free(logits), free(lens_id), free(lens_p);
    ts_session_free(s);
    return 0;
}

/* --viz: what generate saw, collected by its callbacks, then drawn as one HTML page. */
typedef struct {
    const ts_model *m;
    int *tokens, n_tokens;     /* (steps + 1) the text: the first token, then each piece's */
    int *top_id;               /* (steps + 1, 5) the 5 most likely tokens before each sampled one */
    float *top_p, *chosen_p;   /* (steps + 1, 5), (steps + 1) their probabilities, the chosen one's */
    float *last_logits;        /* (vocab_size) a copy: sampling changes the logits */
    int pending;               /* the logits in last_logits still await their token */
} ts_viz;

static void ts_viz_logits(void *user, int pos, float *logits) {
    ts_viz *v = (ts_viz *)user;
    int V = v->m->config.vocab_size;
    (void)pos;
    memcpy(v->last_logits, logits, (size_t)V * sizeof(float));
    v->pending = 1;
}

static int ts_viz_piece(void *user, int token, const char *piece, size_t len) {
    ts_viz *v = (ts_viz *)user;
    int i = v->n_tokens++, V = v->m->config.vocab_size;
    v->tokens[i] = token;
    if (v->pending) { /* a sampled token: what the model offered before the draw */
        ts_top_k(v->last_logits, V, 5, v->top_id + (size_t)i * 5, v->top_p + (size_t)i * 5);
        v->chosen_p[i] = (float)exp(-ts_nll(v->last_logits, V, token));
        v->pending = 0;
    } else v->chosen_p[i] = -1.0f; /* from the prompt */
    return ts_print_piece(NULL, token, piece, len);
}

/* One token as HTML text, in a buffer of its own. */
static const char *ts_viz_text(const ts_viz *v, int token, char *buf, size_t cap) {
    size_t len;
    const char *p = ts_token_text(v->m, token, &len);
    ts_escape(buf, cap, p, len, 1);
    return buf;
}

/* A heatmap of one head: w (n, n) with rows `stride` apart, drawn as unit squares, one path
 * per shade. Shades follow sqrt(weight), so weak attention still shows; under 1/200 is white. */
static void ts_viz_heatmap(FILE *f, const float *w, int n, int stride, const char *id) {
    enum { SHADES = 8 };
    fprintf(f, "<symbol id=\"%s\" viewBox=\"0 0 %d %d\"><use href=\"#future\"/>", id, n, n);
    for (int shade = 1; shade <= SHADES; shade++) {
        int any = 0;
        for (int q = 0; q < n; q++) {
            const float *row = w + (size_t)q * stride;
#define TS_SHADE(x) ((x) < 0.005f ? 0 : (int)ceilf(sqrtf(x) * SHADES - 0.5f))
            for (int k = 0, run; k <= q; k += run) { /* runs of equal shade in the row: one rectangle */
                for (run = 1; k + run <= q && TS_SHADE(row[k + run]) == TS_SHADE(row[k]); run++) {}
                if (TS_SHADE(row[k]) != shade) continue;
                if (!any) fprintf(f, "<path fill=\"#0b3aa8\" fill-opacity=\"%.3f\" d=\"", (double)shade / SHADES), any = 1;
                fprintf(f, "M%d %dh%dv1h-%dz", k, q, run, run);
            }
#undef TS_SHADE
        }
        if (any) fprintf(f, "\"/>");
    }
    fprintf(f, "</symbol>\n");
}

static const char *ts_viz_css(void); /* section 12 */

/* The text, token by token: the prompt blue, generated tokens by how sure the model was. */
static void ts_viz_story(FILE *f, const ts_viz *v) {
    char t[512];
    fprintf(f, "<h2>The text, token by token</h2>\n<p class=\"note\">Blue: the prompt. Generated tokens are shaded by the "
               "probability the model gave them: white = sure, orange = a surprise. Hover for the number.</p>\n<div class=\"story\">");
    for (int i = 0; i < v->n_tokens; i++) {
        ts_viz_text(v, v->tokens[i], t, sizeof t);
        if (v->chosen_p[i] < 0) fprintf(f, "<span class=\"p\" title=\"%d: prompt\">%s</span>", i, t);
        else
            fprintf(f, "<span style=\"background:rgba(245,140,40,%.2f)\" title=\"%d: p = %.4f\">%s</span>",
                    0.85 * (1.0 - v->chosen_p[i]), i, (double)v->chosen_p[i], t);
        if (strstr(t, "\xE2\x86\xB5")) fputc('\n', f); /* a token with a newline (shown as ↵) ends the line */
    }
    fprintf(f, "</div>\n");
}

/* Every head's map of the n positions that ran: each drawn once as an SVG symbol, used by a
 * thumbnail in a grid (layers x heads) and by an enlargement (shown by CSS :target when the
 * thumbnail's link is followed) with the tokens along its axes. */
static void ts_viz_maps(FILE *f, const ts_viz *v, const float *att, int rec, int n) {
    int L = v->m->config.n_layers, H = v->m->config.n_heads;
    char t[512];
    /* "future" greys the keys a token cannot see (k > q): a staircase along the diagonal */
    fprintf(f, "<svg width=\"0\" height=\"0\" style=\"position:absolute\"><defs>\n<symbol id=\"future\"><path fill=\"#eef0f4\" d=\"M1 0H%d", n);
    for (int q = n - 1; q >= 1; q--) fprintf(f, "V%dH%d", q, q);
    fprintf(f, "Z\"/></symbol>\n");
    for (int l = 0; l < L; l++)
        for (int h = 0; h < H; h++) { /* the recording is (L, H, rec, rec); n <= rec positions ran */
            snprintf(t, sizeof t, "m%d_%d", l, h);
            ts_viz_heatmap(f, att + ((size_t)l * H + h) * rec * rec, n, rec, t);
        }
    /* token labels for the enlargements: keys along the top, queries down the left */
    int cell = n <= 40 ? 22 : n <= 80 ? 16 : 13, label_w = 0;
    for (int i = 0; i < n; i++) {
        size_t len;
        const char *p = ts_token_text(v->m, v->tokens[i], &len);
        int w = ts_escape(t, 64, p, len, 1);
        label_w = w > label_w ? w : label_w;
    }
    label_w = (label_w > 16 ? 16 : label_w) * 7 + 12;
    fprintf(f, "<symbol id=\"keys\">");
    for (int i = 0; i < n; i++)
        fprintf(f, "<text transform=\"translate(%d %d) rotate(-90)\">%s</text>", label_w + i * cell + cell / 2 + 4, label_w - 4,
                ts_viz_text(v, v->tokens[i], t, 64));
    fprintf(f, "</symbol><symbol id=\"queries\">");
    for (int i = 0; i < n; i++)
        fprintf(f, "<text x=\"%d\" y=\"%d\" text-anchor=\"end\">%s</text>", label_w - 4, label_w + i * cell + cell / 2 + 4,
                ts_viz_text(v, v->tokens[i], t, 64));
    fprintf(f, "</symbol></defs></svg>\n");

    fprintf(f, "<h2>Attention, every layer and head</h2>\n<p class=\"note\">Each map shows, for every token (a row), how "
               "much it attends to each token before it (the columns); darker = more weight (shade follows the square root "
               "of the weight). A diagonal line: a head looking at the previous token. A vertical stripe: a token many later "
               "ones look back at (a period, a name). A dark first column: a head resting on the first token. Click a map "
               "to enlarge it with the tokens on its axes.</p>\n");
    fprintf(f, "<div class=\"grid\" style=\"grid-template-columns:auto repeat(%d,auto)\"><div></div>", H);
    for (int h = 0; h < H; h++) fprintf(f, "<div class=\"h\">head %d</div>", h);
    for (int l = 0; l < L; l++) {
        fprintf(f, "\n<div class=\"h\">layer %d</div>", l);
        for (int h = 0; h < H; h++)
            fprintf(f, "<a href=\"#a%d_%d\" title=\"layer %d, head %d\"><svg viewBox=\"0 0 %d %d\" preserveAspectRatio=\"none\">"
                       "<use href=\"#m%d_%d\" width=\"%d\" height=\"%d\"/></svg></a>",
                    l, h, l, h, n, n, l, h, n, n);
    }
    fprintf(f, "</div>\n");
    int side = label_w + n * cell + 8;
    for (int i = 0; i < L * H; i++) {
        int l = i / H, h = i % H;
        fprintf(f, "<div class=\"big\" id=\"a%d_%d\"><div class=\"box\"><div class=\"bar\"><b>layer %d, head %d</b>", l, h, l, h);
        if (i > 0) fprintf(f, "<a href=\"#a%d_%d\">&larr; previous</a>", (i - 1) / H, (i - 1) % H);
        if (i + 1 < L * H) fprintf(f, "<a href=\"#a%d_%d\">next &rarr;</a>", (i + 1) / H, (i + 1) % H);
        fprintf(f, "<a href=\"#\">close &times;</a><span class=\"h\">rows: the token attending; columns: the token attended to</span>"
                   "</div><div class=\"scroll\"><svg width=\"%d\" height=\"%d\"><use href=\"#keys\"/><use href=\"#queries\"/>"
                   "<svg x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\"><use href=\"#m%d_%d\" width=\"%d\" height=\"%d\"/>"
                   "</svg></svg></div></div></div>\n",
                side, side, label_w, label_w, n * cell, n * cell, n, n, l, h, n, n);
    }
}

/* Before each sampled token: the 5 most likely, with probabilities, the chosen one in bold. */
static void ts_viz_candidates(FILE *f, const ts_viz *v, const ts_args *a) {
    char t[512];
    fprintf(f, "<h2 id=\"offered\">What the model offered</h2>\n<p class=\"note\">Before each generated token, the 5 tokens the model found "
               "most likely and their probabilities: its softmax at temperature 1, before sampling (the draw used temperature "
               "%g and top-p %g). The chosen token is in bold.</p>\n<table><tr><th>pos</th><th>chosen</th><th>p</th><th>top 5</th></tr>\n",
            (double)a->temperature, (double)a->topp);
    for (int i = 0; i < v->n_tokens; i++) {
        if (v->chosen_p[i] < 0) continue;
        fprintf(f, "<tr><td>%d</td><td><code>%s</code></td><td>%.4f</td><td>", i, ts_viz_text(v, v->tokens[i], t, sizeof t),
                (double)v->chosen_p[i]);
        for (int j = 0; j < 5; j++) {
            int id = v->top_id[(size_t)i * 5 + j];
            double p = v->top_p[(size_t)i * 5 + j];
            fprintf(f, "<span class=\"cand%s\"><i style=\"width:%dpx\"></i><code>%s</code> %.3f</span>", id == v->tokens[i] ? " c" : "",
                    (int)(p * 60 + 0.5), ts_viz_text(v, id, t, sizeof t), p);
        }
        fprintf(f, "</td></tr>\n");
    }
    fprintf(f, "</table>\n");
}

/* The page: one self-contained HTML file (inline CSS and SVG, no script, nothing fetched). */
static int ts_viz_write(const ts_viz *v, const ts_session *s, int n, const ts_args *a, unsigned long long seed) {
    const ts_config *c = &v->m->config;
    int rec;
    const float *att = ts_session_attention(s, &rec);
    FILE *f = fopen(a->viz_path, "wb");
    char t[512];
    if (f) {
        const char *name = strrchr(a->checkpoint, '/') ? strrchr(a->checkpoint, '/') + 1 : a->checkpoint; /* the file's name */
        ts_escape(t, sizeof t, name, strlen(name), 1);
        fprintf(f, "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n<title>Inside %s</title>\n<style>\n%s</style>"
                   "</head><body>\n<h1>Inside %s</h1>\n<p class=\"note\">%d layers &times; %d heads, dim %d, vocabulary %d. ",
                t, ts_viz_css(), t, c->n_layers, c->n_heads, c->dim, c->vocab_size);
        if (n > rec) n = rec;
        if (a->temperature == 0.0f) fprintf(f, "Generated greedily (temperature 0), %d positions.</p>\n", n);
        else fprintf(f, "Generated with temperature %g, top-p %g, seed %llu, %d positions.</p>\n", (double)a->temperature, (double)a->topp, seed, n);
        ts_viz_story(f, v);
        ts_viz_maps(f, v, att, rec, n);
        ts_viz_candidates(f, v, a);
        fprintf(f, "</body></html>\n");
    }
    if (!f || fclose(f) != 0) {
        snprintf(t, sizeof t, "cannot write %.400s: %s", a->viz_path, strerror(errno));
        return ts_die(t);
    }
    return 0;
}


/* -m neurons --viz FILE.html: per layer, the neurons that fire most selectively (their top
 * activation over their mean absolute one), each with the text around its top positions,
 * the token it fires on marked; an index of links finds a neuron (#L1N42). */
typedef struct { float value; int position; } ts_top_entry;

enum { TS_VIZ_NEURONS = 64 }; /* the most selective neurons of a layer on the page (the TSV has all) */

static int ts_viz_neurons(const ts_model *m, const ts_args *a, const int *ids, int n, const ts_top_entry *top, const int *count,
                          const double *sum_abs) {
    const ts_config *c = &m->config;
    int H = c->hidden_dim, K = a->top_k, shown = H < TS_VIZ_NEURONS ? H : TS_VIZ_NEURONS;
    FILE *f = fopen(a->viz_path, "wb");
    int *order = (int *)malloc((size_t)H * sizeof(int));
    double *score = (double *)malloc((size_t)H * sizeof(double));
    char t[512];
    if (f && order && score) {
        const char *name = strrchr(a->checkpoint, '/') ? strrchr(a->checkpoint, '/') + 1 : a->checkpoint;
        ts_escape(t, sizeof t, name, strlen(name), 1);
        fprintf(f, "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n<title>Neurons of %s</title>\n<style>\n%s</style>"
                   "</head><body>\n<h1>Neurons of %s</h1>\n<p class=\"note\">%d layers &times; %d MLP neurons, over %d tokens. Per layer, "
                   "the %d neurons with the highest top activation over mean |activation|, each with its top %d positions "
                   "(the token it fires on <mark>marked</mark>).</p>\n",
                t, ts_viz_css(), t, c->n_layers, H, n, shown, K);
        for (int l = 0; l < c->n_layers; l++) {
            for (int j = 0; j < H; j++) {
                size_t at = (size_t)l * H + j;
                double mean = sum_abs[at] / (n > 0 ? n : 1);
                order[j] = j, score[j] = count[at] > 0 && mean > 0 ? top[at * K].value / mean : 0.0;
            }
            for (int i = 1; i < H; i++) /* insertion sort by score, higher first, lower index on ties */
                for (int k = i; k > 0 && score[order[k]] > score[order[k - 1]]; k--) {
                    int tmp = order[k];
                    order[k] = order[k - 1], order[k - 1] = tmp;
                }
            fprintf(f, "<h2 id=\"L%d\">Layer %d</h2>\n<p class=\"note\">", l, l);
            for (int r = 0; r < shown; r++) fprintf(f, "<a href=\"#L%dN%d\">%d</a> ", l, order[r], order[r]);
            fprintf(f, "</p>\n");
            for (int r = 0; r < shown; r++) {
                int j = order[r];
                size_t at = (size_t)l * H + j;
                fprintf(f, "<div class=\"neuron\" id=\"L%dN%d\"><b>L%d N%d</b> <span class=\"h\">selectivity %.1f</span>\n", l, j, l, j,
                        score[j]);
                for (int k = 0; k < count[at]; k++) {
                    const ts_top_entry *e = top + at * K + k;
                    fprintf(f, "<div class=\"ctx\"><span class=\"h\">%8.3f @%d</span> ", (double)e->value, e->position);
                    for (int p = e->position - 10 < 0 ? 0 : e->position - 10; p <= e->position + 3 && p < n; p++) {
                        size_t len;
                        const char *piece = ts_token_text(m, ids[p], &len);
                        ts_escape(t, sizeof t, piece, len, 1);
                        fprintf(f, p == e->position ? "<mark>%s</mark>" : "%s", t);
                    }
                    fprintf(f, "</div>\n");
                }
                fprintf(f, "</div>\n");
            }
        }
        fprintf(f, "</body></html>\n");
    }
    int ok = f && order && score;
    if (f && fclose(f) != 0) ok = 0;
    free(order), free(score);
    if (!ok) {
        snprintf(t, sizeof t, "cannot write %.400s: %s", a->viz_path, f ? strerror(errno) : "out of memory");
        return ts_die(t);
    }
    return 0;
}

/* ==========================================================================
 * 11. The program: the modes and main
 * ========================================================================== */

/* The prompt of a run: -i, after the Instruct fields if any are given (malloc'ed, or NULL for
 * -i as it is). */
static char *ts_instruct_prompt(const ts_args *a) {
    size_t len = a->prompt ? strlen(a->prompt) : 0;
    int any = 0;
    for (int k = 0; k < 4; k++)
        if (a->instruct[k]) any = 1, len += strlen(ts_instruct_names[k]) + strlen(a->instruct[k]) + 3;
    char *text = any ? (char *)malloc(len + 8) : NULL;
    if (!text) return NULL;
    text[0] = '\0';
    for (int k = 0; k < 4; k++)
        if (a->instruct[k]) strcat(strcat(strcat(strcat(text, ts_instruct_names[k]), ": "), a->instruct[k]), "\n");
    strcat(text, "Story:\n");
    if (a->prompt) strcat(text, a->prompt);
    return text;
}

/* The library's options from the command line's (--repeat-last-n 0: no penalty). */
static ts_generate_opts ts_generate_opts_of(const ts_args *a, unsigned long long seed) {
    ts_generate_opts o = {.temperature = a->temperature, .topp = a->topp, .seed = seed, .steps = a->steps, .top_k = a->sample_top_k,
                          .min_p = a->min_p, .repeat_penalty = a->repeat_last_n > 0 ? a->repeat_penalty : 0.0f,
                          .repeat_last_n = a->repeat_last_n, .stop = a->stop, .n_stop = a->n_stop};
    return o;
}

static int ts_run_generate_with(ts_session *s, const ts_args *a, unsigned long long seed) {
    ts_generate_opts o = ts_generate_opts_of(a, seed);
    ts_generate_stats st;
    ts_error err = {0, ""};
    ts_viz viz;
    memset(&viz, 0, sizeof viz);
    if (a->viz_path) { /* record attention for every position this run can reach */
        const ts_config *c = &s->model->config;
        int n = s->max_positions, *ids = NULL, n_prompt = 0;
        if (a->steps > n) {
            char msg[128];
            snprintf(msg, sizeof msg, "--viz draws one context of %d positions: use -n %d or less", n, n);
            return ts_die(msg);
        }
        if ((double)c->n_layers * c->n_heads * n * n > 64e6)
            return ts_die("--viz: the attention of so many positions, layers and heads is too large to draw: use fewer steps (-n)");
        if (ts_session_record_attention(s, n, &err) || ts_prompt_tokens(s->model, a->prompt ? a->prompt : "", a->prompt ? strlen(a->prompt) : 0, &ids, &n_prompt, &err))
            return ts_die(err.msg);
        viz.m = s->model;
        viz.tokens = (int *)malloc((size_t)(n + 1) * sizeof(int));
        viz.top_id = (int *)malloc((size_t)(n + 1) * 5 * sizeof(int));
        viz.top_p = (float *)malloc((size_t)(n + 1) * 5 * sizeof(float));
        viz.chosen_p = (float *)malloc((size_t)(n + 1) * sizeof(float));
        viz.last_logits = (float *)malloc((size_t)c->vocab_size * sizeof(float));
        if (viz.tokens) viz.tokens[0] = ids[0], viz.n_tokens = 1;
        if (viz.chosen_p) viz.chosen_p[0] = -1.0f;
        free(ids);
        o.on_logits = ts_viz_logits;
    }
    int rc = 0;
    if (a->viz_path && (!viz.tokens || !viz.top_id || !viz.top_p || !viz.chosen_p || !viz.last_logits)) rc = ts_die("out of memory");
    else if (ts_generate(s, a->prompt, &o, a->viz_path ? ts_viz_piece : ts_print_piece, &viz, &st, &err)) rc = ts_die(err.msg);
    if (rc == 0) {
        printf("\n");
        rc = ts_stdout_failed();
    }
    if (rc == 0) {
        if (st.positions > 1) {
            /* llama2.c's line: positions after the first, per second of wall time */
            double secs = st.prompt_seconds + st.generate_seconds;
            fprintf(stderr, "achieved tok/s: %f\n", secs > 0 ? (st.positions - 1) / secs : 0.0);
            fprintf(stderr, "prompt: %d tokens in %.3f s (%.1f tok/s), generated: %d tokens in %.3f s (%.1f tok/s)\n",
                    st.prompt_tokens, st.prompt_seconds, st.prompt_seconds > 0 ? st.prompt_tokens / st.prompt_seconds : 0.0,
                    st.generated_tokens, st.generate_seconds,
                    st.generate_seconds > 0 ? st.generated_tokens / st.generate_seconds : 0.0);
            int threads = 1;
#ifdef _OPENMP
            threads = omp_get_max_threads();
#endif
            fprintf(stderr, "kernels: %s, threads: %d\n", ts_kernel_path(), threads);
            if (st.slides > 0)
                fprintf(stderr, "context: %d positions, the window slid %d time%s (the last %d tokens run again each time)\n",
                        s->max_positions, st.slides, st.slides == 1 ? "" : "s", s->max_positions / 2 > 0 ? s->max_positions / 2 : 1);
        }
        if (a->viz_path) rc = ts_viz_write(&viz, s, st.positions, a, seed);
    }
    free(viz.tokens), free(viz.top_id), free(viz.top_p), free(viz.chosen_p), free(viz.last_logits);
    return rc;
}

static int ts_run_generate(ts_session *s, const ts_args *a, unsigned long long seed) {
    ts_args with_prompt = *a;
    char *instruct = ts_instruct_prompt(a);
    int any = 0;
    for (int k = 0; k < 4; k++) any |= a->instruct[k] != NULL;
    if (any && !instruct) return ts_die("out of memory");
    if (instruct) with_prompt.prompt = instruct;
    int rc = ts_run_generate_with(s, &with_prompt, seed);
    free(instruct);
    return rc;
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
        next = ts_sample_logits(s, logits, a->temperature, 0.0f, a->topp);
        pos++;
        if (user_idx >= n_ids && next != eos) {
            size_t len;
            const char *piece = ts_decode(m, token, next, &len);
            if (ts_print_piece(NULL, next, piece, len)) break;
        }
        if (next == eos) printf("\n");
    }
    printf("\n");
    free(ids);
    if (err.msg[0]) return ts_die(err.msg);
    return ts_stdout_failed();
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

/* Reads a whole file into a NUL-terminated malloc'ed buffer, up to the most text the
 * tokenizer takes (a device such as /dev/zero would otherwise fill memory). */
#define TS_MAX_TEXT ((size_t)INT_MAX / 4 - 4)
static char *ts_slurp(const char *path, size_t *len, char *msg, size_t msg_len) {
    FILE *f = fopen(path, "rb");
    if (!f) return snprintf(msg, msg_len, "cannot open %s: %s", path, strerror(errno)), NULL;
    size_t cap = 1 << 16, n = 0;
    char *buf = (char *)malloc(cap + 1);
    while (buf) {
        size_t got = fread(buf + n, 1, cap - n, f);
        n += got;
        if (n < cap) break;
        if (n > TS_MAX_TEXT) {
            free(buf), fclose(f);
            return snprintf(msg, msg_len, "%s is larger than %zu bytes, the most this tool reads", path, TS_MAX_TEXT), NULL;
        }
        char *bigger = (char *)realloc(buf, cap * 2 + 1);
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

/* Reads whitespace-separated token ids, each in 0..vocab_size-1, into a malloc'ed array. */
static int *ts_read_ids(const char *path, int vocab_size, int *n_out, char *msg, size_t msg_len) {
    size_t len;
    char *text = ts_slurp(path, &len, msg, msg_len);
    if (!text) return NULL;
    int n = 0, cap = 1024;
    int *ids = (int *)malloc((size_t)cap * sizeof(int));
    for (char *p = text; ids;) {
        while (*p && isspace((unsigned char)*p)) p++;
        if (!*p) break;
        char *end;
        errno = 0;
        long v = strtol(p, &end, 10);
        if (end == p || (*end && !isspace((unsigned char)*end)) || errno == ERANGE || v < 0 || v >= vocab_size) {
            snprintf(msg, msg_len, "%s: token %d is '%.20s', not an id in 0..%d", path, n + 1, p, vocab_size - 1);
            free(ids), free(text);
            return NULL;
        }
        if (n == cap) {
            int *bigger = cap > INT_MAX / 2 ? NULL : (int *)realloc(ids, (size_t)cap * 2 * sizeof(int));
            if (!bigger) free(ids);
            ids = bigger, cap *= 2;
            if (!ids) break;
        }
        ids[n++] = (int)v;
        p = end;
    }
    free(text);
    if (!ids) return snprintf(msg, msg_len, "out of memory reading %s", path), NULL;
    if (n == 0) {
        free(ids);
        return snprintf(msg, msg_len, "%s holds no token ids", path), NULL;
    }
    *n_out = n;
    return ids;
}

/* The raw bytes the ids stand for, concatenated: the inverse of -m tokenize. */
static int ts_run_decode(const ts_model *m, const ts_args *a) {
    char msg[512];
    int n;
    int *ids = ts_read_ids(a->ids_path, m->config.vocab_size, &n, msg, sizeof msg);
    if (!ids) return ts_die(msg);
    for (int i = 0; i < n; i++) {
        size_t len;
        const char *bytes = ts_token_bytes(m, ids[i], &len);
        if (bytes) fwrite(bytes, 1, len, stdout);
    }
    free(ids);
    return 0;
}

/* Writes count 32-bit values (float32 or int32) little-endian, whatever the host's byte
 * order: 0, or -1 if the write fails. */
static int ts_write_le32(FILE *f, const void *data, size_t count) {
    const unsigned char *in = (const unsigned char *)data;
    unsigned char buf[4096];
    for (size_t i = 0; i < count;) {
        size_t k = 0;
        for (; k < sizeof buf && i < count; k += 4, i++) {
            uint32_t bits;
            memcpy(&bits, in + 4 * i, 4);
            buf[k] = (unsigned char)bits, buf[k + 1] = (unsigned char)(bits >> 8);
            buf[k + 2] = (unsigned char)(bits >> 16), buf[k + 3] = (unsigned char)(bits >> 24);
        }
        if (fwrite(buf, 1, k, f) != k) return -1;
    }
    return 0;
}

static int ts_run_logits(const ts_model *m, const ts_args *a) {
    const ts_config *c = ts_model_config(m);
    char msg[512];
    int n;
    int *ids = ts_read_ids(a->ids_path, c->vocab_size, &n, msg, sizeof msg);
    if (!ids) return ts_die(msg);
    if (n > c->seq_len) {
        snprintf(msg, sizeof msg, "%s holds %d token ids, more than the model's context of %d", a->ids_path, n, c->seq_len);
        return ts_die_free(ids, msg);
    }
    ts_session *s;
    if (ts_open_session(m, n, &s, a)) return free(ids), 1;
    /* one block of the session's batch at a time: out grows by rows as they come */
    FILE *f = fopen(a->out_path, "wb");
    ts_error err = {0, ""};
    size_t V = (size_t)c->vocab_size;
    float *logits = (float *)malloc((size_t)s->batch * V * sizeof(float));
    int ok = f != NULL && logits != NULL, failed_forward = 0;
    for (int done = 0; ok && done < n; done += s->batch) {
        int k = n - done < s->batch ? n - done : s->batch;
        if (ts_forward_all(s, ids + done, k, done, logits, &err)) {
            ok = 0, failed_forward = 1;
            break;
        }
        ok = ts_write_le32(f, logits, (size_t)k * V) == 0;
    }
    int saved_errno = errno;
    if (f && fclose(f) != 0) ok = 0, saved_errno = errno;
    free(ids), free(logits);
    ts_session_free(s);
    if (!ok) {
        if (failed_forward) snprintf(msg, sizeof msg, "%s", err.msg);
        else if (!f) snprintf(msg, sizeof msg, "cannot open %s for writing: %s", a->out_path, strerror(saved_errno));
        else if (!logits) snprintf(msg, sizeof msg, "out of memory");
        else snprintf(msg, sizeof msg, "cannot write %s: %s", a->out_path, strerror(saved_errno));
        return ts_die(msg);
    }
    return 0;
}

/* Progress on stderr, a line per tenth of the text (no \r: logs stay readable). */
static void ts_ppl_progress(void *user, long done, long total) {
    int *tenths = (int *)user, now = (int)(10.0 * (double)done / (double)total);
    if (now > *tenths || done == total) fprintf(stderr, "ppl: %ld / %ld tokens\n", done, total);
    *tenths = now;
}

static int ts_run_ppl(const ts_model *m, const ts_args *a) {
    char msg[512];
    size_t len;
    char *text = ts_slurp(a->text_path, &len, msg, sizeof msg);
    if (!text) return ts_die(msg);
    /* chunks of seq_len tokens; a text of len bytes is at most len + 2 tokens (BOS, prefix) */
    int positions = len + 2 < (size_t)m->config.seq_len ? (int)len + 2 : m->config.seq_len;
    ts_session *s;
    if (ts_open_session(m, positions, &s, a)) {
        free(text);
        return 1;
    }
    long n;
    double loss;
    ts_error err = {0, ""};
    int tenths = 0;
    int rc = ts_perplexity(s, text, len, &n, &loss, ts_ppl_progress, &tenths, &err);
    free(text);
    ts_session_free(s);
    if (rc) return ts_die(err.msg);
    printf("tokens: %ld\nloss: %.6f\nperplexity: %.6f\n", n, loss, exp(loss));
    return 0;
}

/* ---- -m dump: the insides of one run as NumPy arrays ----
 * Format 1.0 of the .npy files (numpy.lib.format): the magic "\x93NUMPY", version 1 0, a
 * little-endian uint16 header length, then a Python dict literal (descr, fortran_order,
 * shape) padded with spaces and a newline to a multiple of 64 bytes, then the data in C
 * order. */
static FILE *ts_npy_create(const char *path, const char *descr, const size_t *shape, int ndim) {
    char dict[256];
    int len = snprintf(dict, sizeof dict, "{'descr': '%s', 'fortran_order': False, 'shape': (", descr);
    for (int i = 0; i < ndim; i++) len += snprintf(dict + len, sizeof dict - (size_t)len, "%zu,%s", shape[i], i + 1 < ndim ? " " : "");
    len += snprintf(dict + len, sizeof dict - (size_t)len, "), }");
    int pad = (64 - (10 + len + 1) % 64) % 64, header = len + pad + 1;
    FILE *f = fopen(path, "wb");
    if (!f) return NULL;
    unsigned char magic[10] = {0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0, (unsigned char)header, (unsigned char)(header >> 8)};
    fwrite(magic, 1, sizeof magic, f);
    fprintf(f, "%s%*s\n", dict, pad, "");
    return f;
}

/* One array: dir/name of shape (ndim dims) from data. 0, or non-zero with a message. */
static int ts_npy_write(const char *dir, const char *name, const char *descr, const size_t *shape, int ndim, const void *data,
                        char *msg, size_t msg_len) {
    char path[4096];
    size_t count = 1;
    for (int i = 0; i < ndim; i++) count *= shape[i];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = ts_npy_create(path, descr, shape, ndim);
    int ok = f && ts_write_le32(f, data, count) == 0;
    if (f && fclose(f) != 0) ok = 0;
    if (!ok) snprintf(msg, msg_len, "cannot write %.400s: %s", path, strerror(errno));
    return !ok;
}

/* The tokens of -i TEXT or -f FILE as a prompt is encoded (BOS first for Llama models), or
 * the ids of --ids FILE as they are. */
static int *ts_input_tokens(const ts_model *m, const ts_args *a, int *n, char *msg, size_t msg_len) {
    if (a->ids_path) return ts_read_ids(a->ids_path, m->config.vocab_size, n, msg, msg_len);
    size_t len = a->prompt ? strlen(a->prompt) : 0;
    char *text = a->text_path ? ts_slurp(a->text_path, &len, msg, msg_len) : NULL;
    if (a->text_path && !text) return NULL;
    int *ids = NULL;
    ts_error err = {0, ""};
    if (ts_prompt_tokens(m, text ? text : a->prompt, len, &ids, n, &err)) snprintf(msg, msg_len, "%s", err.msg), ids = NULL;
    free(text);
    return ids;
}

static int ts_run_dump(const ts_model *m, const ts_args *a) {
    const ts_config *c = ts_model_config(m);
    char msg[512];
    int n;
    int *ids = ts_input_tokens(m, a, &n, msg, sizeof msg);
    if (!ids) return ts_die(msg);
    if (n > c->seq_len) {
        snprintf(msg, sizeof msg, "the text is %d tokens, more than the model's context of %d: a dump is of one run, not cut", n, c->seq_len);
        return ts_die_free(ids, msg);
    }
#ifdef TS_HAVE_MMAP
    if (mkdir(a->out_path, 0777) != 0 && errno != EEXIST) {
        snprintf(msg, sizeof msg, "cannot make the folder %s: %s", a->out_path, strerror(errno));
        return ts_die_free(ids, msg);
    }
#endif
    size_t L = (size_t)c->n_layers, N = (size_t)n, V = (size_t)c->vocab_size;
    /* held in memory: the logits, attention, residual stream and MLP (the lens is written a
     * layer at a time); past this machine's memory the run could only swap */
    double bytes = 4.0 * N * ((double)V + (double)L * c->n_heads * N + (double)(L + 1) * c->dim + (double)L * c->hidden_dim);
    size_t physical = ts_physical_memory();
    if (physical > 0 && bytes > (double)physical) {
        snprintf(msg, sizeof msg, "a dump of %d tokens needs %.0f MB of memory, more than this machine's %zu MB: dump a shorter text", n,
                 bytes / 1048576, physical >> 20);
        return ts_die_free(ids, msg);
    }
    ts_session *s;
    if (ts_open_session(m, n, &s, a)) return free(ids), 1;
    ts_error err = {0, ""};
    float *logits = (float *)malloc(N * V * sizeof(float));
    int rc = logits ? TS_OK : ts_fail(&err, TS_E_NOMEM, "out of memory for the logits of %d tokens (%zu MB)", n, N * V * 4 >> 20);
    if (!rc) rc = ts_session_record_attention(s, n, &err);
    if (!rc) rc = ts_session_record_internals(s, n, &err);
    for (int done = 0; !rc && done < n; done += s->batch)
        rc = ts_forward_all(s, ids + done, n - done < s->batch ? n - done : s->batch, done, logits + (size_t)done * V, &err);
    if (rc) snprintf(msg, sizeof msg, "%s", err.msg);
    size_t tokens[1] = {N}, resid[3] = {L + 1, N, (size_t)c->dim}, mlp[3] = {L, N, (size_t)c->hidden_dim};
    size_t attn[4] = {L, (size_t)c->n_heads, N, N}, logit_shape[2] = {N, V}, lens[3] = {L, N, V};
    if (!rc) rc = ts_npy_write(a->out_path, "tokens.npy", "<i4", tokens, 1, ids, msg, sizeof msg);
    if (!rc) rc = ts_npy_write(a->out_path, "resid.npy", "<f4", resid, 3, ts_session_residual(s, NULL), msg, sizeof msg);
    if (!rc) rc = ts_npy_write(a->out_path, "mlp.npy", "<f4", mlp, 3, ts_session_mlp(s, NULL), msg, sizeof msg);
    if (!rc) rc = ts_npy_write(a->out_path, "attn.npy", "<f4", attn, 4, ts_session_attention(s, NULL), msg, sizeof msg);
    if (!rc) rc = ts_npy_write(a->out_path, "logits.npy", "<f4", logit_shape, 2, logits, msg, sizeof msg);
    if (!rc && a->lens) { /* a layer at a time into the logits' buffer: memory does not grow with the layers */
        char path[4096];
        snprintf(path, sizeof path, "%s/lens.npy", a->out_path);
        FILE *f = ts_npy_create(path, "<f4", lens, 3);
        rc = !f;
        for (size_t l = 0; !rc && l < L; l++)
            rc = ts_logit_lens(s, ts_session_residual(s, NULL) + (l + 1) * N * c->dim, n, logits, &err) ||
                 ts_write_le32(f, logits, N * V);
        if (f && fclose(f) != 0) rc = 1;
        if (rc) snprintf(msg, sizeof msg, "cannot write %.400s: %s", path, strerror(errno));
    }
    free(ids), free(logits);
    ts_session_free(s);
    return rc ? ts_die(msg) : 0;
}

/* ---- -m neurons: where each MLP neuron fires most ----
 * The text's tokens run in windows of the context (each from position 0, as -m ppl runs
 * them); for every layer and neuron the K positions of the largest activations are kept,
 * largest first, the earlier position first among equal ones. */
static void ts_top_insert(ts_top_entry *top, int k, int *count, float value, int position) {
    if (isnan(value) || (*count == k && !(value > top[k - 1].value))) return; /* NaN never enters */
    int i = *count < k ? (*count)++ : k - 1;
    for (; i > 0 && value > top[i - 1].value; i--) top[i] = top[i - 1];
    top[i].value = value, top[i].position = position;
}

static int ts_neuron_tops(const ts_model *m, const ts_args *a, const int *ids, int n, ts_top_entry *top, int *count,
                          double *sum_abs, char *msg, size_t msg_len) {
    const ts_config *c = ts_model_config(m);
    int P = n < c->seq_len ? n : c->seq_len, H = c->hidden_dim, K = a->top_k;
    ts_session *s;
    if (ts_open_session(m, P, &s, a)) return snprintf(msg, msg_len, "no session"), -1; /* ts_die has spoken */
    ts_error err = {0, ""};
    float *logits = (float *)malloc((size_t)s->batch * c->vocab_size * sizeof(float));
    int rc = logits ? ts_session_record_internals(s, P, &err) : ts_fail(&err, TS_E_NOMEM, "out of memory");
    for (int start = 0; !rc && start < n; start += P) {
        int len = n - start < P ? n - start : P;
        for (int done = 0; !rc && done < len; done += s->batch)
            rc = ts_forward_all(s, ids + start + done, len - done < s->batch ? len - done : s->batch, done, logits, &err);
        const float *mlp = ts_session_mlp(s, NULL); /* (n_layers, P, hidden) */
        for (int l = 0; !rc && l < c->n_layers; l++)
            for (int t = 0; t < len; t++)
                for (int j = 0; j < H; j++) {
                    size_t at = (size_t)l * H + j;
                    float value = mlp[((size_t)l * P + t) * H + j];
                    ts_top_insert(top + at * K, K, count + at, value, start + t);
                    sum_abs[at] += fabs((double)value);
                }
    }
    if (rc) snprintf(msg, msg_len, "%s", err.msg);
    free(logits);
    ts_session_free(s);
    return rc;
}

static int ts_run_neurons(const ts_model *m, const ts_args *a) {
    const ts_config *c = ts_model_config(m);
    char msg[512], text[256];
    int n, K = a->top_k;
    int *ids = ts_input_tokens(m, a, &n, msg, sizeof msg);
    if (!ids) return ts_die(msg);
    size_t outputs = (size_t)c->n_layers * c->hidden_dim;
    ts_top_entry *top = (ts_top_entry *)malloc(outputs * K * sizeof(ts_top_entry));
    int *count = (int *)calloc(outputs, sizeof(int));
    double *sum_abs = (double *)calloc(outputs, sizeof(double));
    int rc = top && count && sum_abs ? ts_neuron_tops(m, a, ids, n, top, count, sum_abs, msg, sizeof msg)
                                     : (snprintf(msg, sizeof msg, "out of memory"), 1);
    if (rc == 0) {
        printf("# layer\tneuron\trank\tposition\tactivation\ttoken\n");
        for (size_t at = 0; at < outputs && !ferror(stdout); at++)
            for (int r = 0; r < count[at]; r++) {
                const ts_top_entry *e = top + at * K + r;
                size_t len;
                const char *p = ts_token_text(m, ids[e->position], &len);
                ts_escape(text, sizeof text, p, len, 0);
                printf("%d\t%d\t%d\t%d\t%.6g\t\"%s\"\n", (int)(at / c->hidden_dim), (int)(at % c->hidden_dim), r, e->position,
                       (double)e->value, text);
            }
        if (a->viz_path && ts_viz_neurons(m, a, ids, n, top, count, sum_abs)) rc = -1;
    }
    free(ids), free(top), free(count), free(sum_abs);
    return rc < 0 ? 1 : rc ? ts_die(msg) : 0;
}

/* ---- -m batch: N samples of M prompts, as JSON Lines ----
 * A JSON string of text: valid UTF-8 as it is, the escapes JSON needs, and a byte that is
 * part of no valid character as \udcXX (Python's "surrogateescape": json.loads(line)["text"]
 * .encode("utf-8", "surrogateescape") gives back the bytes ./run printed). */
static void ts_json_string(FILE *f, const char *text, size_t n) {
    const unsigned char *p = (const unsigned char *)text;
    fputc('"', f);
    for (size_t i = 0; i < n;) {
        uint32_t cp;
        int len = ts_utf8_decode(p + i, n - i, &cp);
        if (len == 0) fprintf(f, "\\udc%02x", p[i]), len = 1;
        else if (p[i] == '"' || p[i] == '\\') fprintf(f, "\\%c", p[i]);
        else if (p[i] == '\n') fputs("\\n", f);
        else if (p[i] == '\t') fputs("\\t", f);
        else if (p[i] < 0x20) fprintf(f, "\\u%04x", p[i]);
        else fwrite(p + i, 1, (size_t)len, f);
        i += (size_t)len;
    }
    fputc('"', f);
}

typedef struct { char *text; size_t len, cap; int failed; } ts_text;

static int ts_collect_piece(void *user, int token, const char *piece, size_t len) {
    ts_text *t = (ts_text *)user;
    (void)token;
    if (t->len + len + 2 > t->cap) {
        size_t cap = (t->len + len + 2) * 2;
        char *p = (char *)realloc(t->text, cap);
        if (!p) return t->failed = 1;
        t->text = p, t->cap = cap;
    }
    memcpy(t->text + t->len, piece, len);
    t->len += len;
    return 0;
}

static int ts_run_batch(const ts_model *m, const ts_args *a, unsigned long long seed) {
    char msg[512];
    size_t len;
    char *all = ts_slurp(a->text_path, &len, msg, sizeof msg);
    if (!all) return ts_die(msg);
    if (a->seed <= 0) fprintf(stderr, "batch: seed %llu (from the clock)\n", seed);
    int lines = 0, N = a->samples, rc = 0;
    for (size_t i = 0; i < len; i++) lines += all[i] == '\n';
    if (len > 0 && all[len - 1] != '\n') lines++;
    const ts_config *c = ts_model_config(m);
    int steps = a->steps == 0 || a->steps > c->seq_len ? c->seq_len : a->steps; /* ./run's session */
    ts_text *out = (ts_text *)calloc((size_t)N, sizeof(ts_text));
    if (!out) rc = ts_die("out of memory");
    char *line = all;
    for (int li = 0; rc == 0 && li < lines; li++) {
        char *end = memchr(line, '\n', len - (size_t)(line - all));
        if (!end) end = all + len;
        *end = '\0';
        if (memchr(line, '\0', (size_t)(end - line))) {
            snprintf(msg, sizeof msg, "%s: line %d holds a NUL byte", a->text_path, li + 1);
            rc = ts_die(msg);
            break;
        }
        ts_args one = *a;
        one.prompt = line;
        char *instruct = ts_instruct_prompt(&one);
        const char *prompt = instruct ? instruct : line;
        ts_generate_opts o = ts_generate_opts_of(a, seed);
        ts_session *base = NULL;
        ts_error err = {0, ""};
        if (ts_open_session(m, steps, &base, a)) rc = 1;
        else if (ts_session_prefill(base, prompt, &o, &err)) rc = ts_die(err.msg);
        /* the samples of a prompt side by side, one per thread, each from a copy of its cache
         * (a sample's bits do not depend on the thread that draws it) */
        int failed = 0;
        char fail_msg[sizeof err.msg] = "";
        TS_PRAGMA(omp parallel for schedule(dynamic, 1) if (N > 1))
        for (int k = 0; k < N; k++) {
            if (rc) continue;
            ts_session *copy = NULL;
            ts_error e = {0, ""};
            ts_generate_opts ok = o;
            ok.seed = seed + (unsigned long long)k;
            out[k].len = 0;
            if (ts_session_copy(&copy, base, &e) || ts_generate(copy, prompt, &ok, ts_collect_piece, &out[k], NULL, &e) ||
                out[k].failed || ts_collect_piece(&out[k], 0, "\n", 1)) {
                TS_PRAGMA(omp critical)
                {
                    failed = 1;
                    snprintf(fail_msg, sizeof fail_msg, "%s", e.msg[0] ? e.msg : "out of memory");
                }
            }
            ts_session_free(copy);
        }
        if (!rc && failed) rc = ts_die(fail_msg);
        for (int k = 0; rc == 0 && k < N; k++) {
            printf("{\"prompt\": ");
            ts_json_string(stdout, line, strlen(line));
            printf(", \"sample\": %d, \"seed\": %llu, \"text\": ", k, seed + (unsigned long long)k);
            ts_json_string(stdout, out[k].text, out[k].len);
            printf("}\n");
        }
        fflush(stdout);
        if (rc == 0) fprintf(stderr, "batch: prompt %d / %d, %d sample%s\n", li + 1, lines, N, N == 1 ? "" : "s");
        ts_session_free(base);
        free(instruct);
        line = end + 1;
    }
    for (int k = 0; out && k < N; k++) free(out[k].text);
    free(out), free(all);
    return rc;
}

int main(int argc, char **argv) {
    ts_args a;
    char msg[512];
    if (argc >= 2 && (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help"))) {
        ts_usage(stdout);
        return 0;
    }
    if (ts_parse_args(argc, argv, &a, msg, sizeof msg)) { /* the error is the last line, for scripts and logs */
        if (argc < 2) ts_usage(stderr);
        fprintf(stderr, "run: %s (run -h for help)\n", msg);
        return 1;
    }
    /* output files are checked before any work, not found unwritable after a long run */
    const char *outputs[] = {a.viz_path, strcmp(a.mode, "dump") ? a.out_path : NULL}; /* dump's is a folder */
    for (int i = 0; i < 2; i++)
        if (outputs[i] && ts_check_writable(outputs[i], msg, sizeof msg)) return ts_die(msg);
    /* the tokenizer: -z, else the model's own, else tokenizer.bin (llama2.c's default) */
    ts_model *m;
    ts_error err = {0, ""};
    if (ts_model_load(&m, a.checkpoint, a.tokenizer, &err)) return ts_die(err.msg);
    int ids_only = !strcmp(a.mode, "logits") || (!strcmp(a.mode, "dump") && a.ids_path); /* no text in or out */
    if (!a.tokenizer && m->tokenizer.kind == TS_TOK_NONE && !ids_only) {
        ts_model_free(m);
        if (ts_model_load(&m, a.checkpoint, "tokenizer.bin", &err)) return ts_die(err.msg);
    }
    const ts_config *c = ts_model_config(m);
    unsigned long long seed = a.seed > 0 ? (unsigned long long)a.seed : (unsigned long long)time(NULL);
    int rc;
    if (!strcmp(a.mode, "tokenize")) rc = ts_run_tokenize(m, &a); /* no session needed */
    else if (!strcmp(a.mode, "decode")) rc = ts_run_decode(m, &a);
    else if (!strcmp(a.mode, "logits")) rc = ts_run_logits(m, &a);
    else if (!strcmp(a.mode, "ppl")) rc = ts_run_ppl(m, &a);
    else if (!strcmp(a.mode, "inspect")) rc = ts_run_inspect(m, &a);
    else if (!strcmp(a.mode, "dump")) rc = ts_run_dump(m, &a);
    else if (!strcmp(a.mode, "neurons")) rc = ts_run_neurons(m, &a);
    else if (!strcmp(a.mode, "batch")) rc = ts_run_batch(m, &a, seed);
    else { /* generate and chat run at most `steps` positions */
        int steps = a.steps == 0 || a.steps > c->seq_len ? c->seq_len : a.steps;
        ts_session *s = NULL;
        rc = ts_open_session(m, steps, &s, &a);
        if (rc == 0) rc = !strcmp(a.mode, "generate") ? ts_run_generate(s, &a, seed) : ts_run_chat(s, &a, seed);
        ts_session_free(s);
    }
    ts_model_free(m);
    if (rc == 0) rc = ts_stdout_failed(); /* every mode's output reached its reader */
    return rc;
}
#endif /* RUN_NO_MAIN */


/* ==========================================================================
 * 12. Data
 * ========================================================================== */

#ifndef RUN_NO_MAIN
/* The --viz page's style sheet. */
static const char *ts_viz_css(void) {
    return
    "body{font:14px/1.45 system-ui,-apple-system,'Segoe UI',sans-serif;margin:18px 24px;color:#1d2330;background:#fff}\n"
    "h1{font-size:20px;margin:0 0 2px}h2{font-size:16px;margin:22px 0 4px}.note{color:#5b6475;margin:2px 0 8px;max-width:980px}\n"
    ".story{font:15px/2 ui-monospace,'DejaVu Sans Mono',monospace;white-space:pre-wrap;border:1px solid #d8dde6;"
    "border-radius:6px;padding:8px 12px;max-width:1300px}\n"
    ".story span{border-radius:3px;padding:1px 0;box-shadow:inset -1px 0 #fff}.story .p{background:#dfe6f3}\n"
    ".grid{display:grid;gap:6px 8px;align-items:center;justify-items:center;width:max-content}.h{font-size:12px;color:#5b6475}\n"
    ".grid a{display:block;border:1px solid #c9d0dc;line-height:0;background:#fff}"
    ".grid a:hover{border-color:#1d4fd7;outline:2px solid #1d4fd7}.grid svg{width:136px;height:136px;display:block}\n"
    "svg text{font:11px ui-monospace,'DejaVu Sans Mono',monospace;fill:#1d2330}\n"
    ".big{display:none;position:fixed;inset:0;background:rgba(20,25,35,.55);z-index:9}.big:target{display:block}\n"
    ".big .box{position:absolute;inset:24px;background:#fff;border-radius:8px;padding:10px 14px;display:flex;flex-direction:column}\n"
    ".big .bar{display:flex;gap:18px;align-items:baseline;margin-bottom:6px}.big .bar a{color:#1d4fd7;text-decoration:none}\n"
    ".big .scroll{overflow:auto;flex:1}\n"
    "table{border-collapse:collapse;font-size:13px}td,th{padding:2px 10px 2px 0;text-align:left;vertical-align:top}\n"
    "th{color:#5b6475;font-weight:normal;border-bottom:1px solid #d8dde6}\n"
    "code{font:13px ui-monospace,'DejaVu Sans Mono',monospace;white-space:pre;background:#eef0f4;border-radius:3px;padding:0 2px}\n"
    ".cand{display:inline-block;min-width:170px;white-space:pre}.cand.c{font-weight:bold}\n"
    ".cand i{display:inline-block;height:8px;background:#7d9be0;margin-right:4px;vertical-align:middle}\n"
    ".neuron{margin:10px 0;max-width:1300px}.ctx{font:13px ui-monospace,'DejaVu Sans Mono',monospace;white-space:pre-wrap}\n"
    "mark{background:#ffd15c;border-radius:3px}.neuron:target{outline:2px solid #1d4fd7}\n";
}
#endif

/* BEGIN generated tables: output of
 *   python3 tools/gen_unicode_tables.py DerivedGeneralCategory.txt   (Unicode 16.0 UCD)
 * Unicode 16.0 = what Hugging Face tokenizers 0.23 (Oniguruma) uses. */
/* Generated by gen_unicode_tables.py from
 * DerivedGeneralCategory-16.0.0-LN.txt. Do not edit by hand. */
/* \p{L}: Lu Ll Lt Lm Lo: 677 ranges */
static const ts_gpt2_range ts_gpt2_letter_ranges[677] = {
    {0x41,0x5A}, {0x61,0x7A}, {0xAA,0xAA}, {0xB5,0xB5}, {0xBA,0xBA},
    {0xC0,0xD6}, {0xD8,0xF6}, {0xF8,0x2C1}, {0x2C6,0x2D1}, {0x2E0,0x2E4},
    {0x2EC,0x2EC}, {0x2EE,0x2EE}, {0x370,0x374}, {0x376,0x377}, {0x37A,0x37D},
    {0x37F,0x37F}, {0x386,0x386}, {0x388,0x38A}, {0x38C,0x38C}, {0x38E,0x3A1},
    {0x3A3,0x3F5}, {0x3F7,0x481}, {0x48A,0x52F}, {0x531,0x556}, {0x559,0x559},
    {0x560,0x588}, {0x5D0,0x5EA}, {0x5EF,0x5F2}, {0x620,0x64A}, {0x66E,0x66F},
    {0x671,0x6D3}, {0x6D5,0x6D5}, {0x6E5,0x6E6}, {0x6EE,0x6EF}, {0x6FA,0x6FC},
    {0x6FF,0x6FF}, {0x710,0x710}, {0x712,0x72F}, {0x74D,0x7A5}, {0x7B1,0x7B1},
    {0x7CA,0x7EA}, {0x7F4,0x7F5}, {0x7FA,0x7FA}, {0x800,0x815}, {0x81A,0x81A},
    {0x824,0x824}, {0x828,0x828}, {0x840,0x858}, {0x860,0x86A}, {0x870,0x887},
    {0x889,0x88E}, {0x8A0,0x8C9}, {0x904,0x939}, {0x93D,0x93D}, {0x950,0x950},
    {0x958,0x961}, {0x971,0x980}, {0x985,0x98C}, {0x98F,0x990}, {0x993,0x9A8},
    {0x9AA,0x9B0}, {0x9B2,0x9B2}, {0x9B6,0x9B9}, {0x9BD,0x9BD}, {0x9CE,0x9CE},
    {0x9DC,0x9DD}, {0x9DF,0x9E1}, {0x9F0,0x9F1}, {0x9FC,0x9FC}, {0xA05,0xA0A},
    {0xA0F,0xA10}, {0xA13,0xA28}, {0xA2A,0xA30}, {0xA32,0xA33}, {0xA35,0xA36},
    {0xA38,0xA39}, {0xA59,0xA5C}, {0xA5E,0xA5E}, {0xA72,0xA74}, {0xA85,0xA8D},
    {0xA8F,0xA91}, {0xA93,0xAA8}, {0xAAA,0xAB0}, {0xAB2,0xAB3}, {0xAB5,0xAB9},
    {0xABD,0xABD}, {0xAD0,0xAD0}, {0xAE0,0xAE1}, {0xAF9,0xAF9}, {0xB05,0xB0C},
    {0xB0F,0xB10}, {0xB13,0xB28}, {0xB2A,0xB30}, {0xB32,0xB33}, {0xB35,0xB39},
    {0xB3D,0xB3D}, {0xB5C,0xB5D}, {0xB5F,0xB61}, {0xB71,0xB71}, {0xB83,0xB83},
    {0xB85,0xB8A}, {0xB8E,0xB90}, {0xB92,0xB95}, {0xB99,0xB9A}, {0xB9C,0xB9C},
    {0xB9E,0xB9F}, {0xBA3,0xBA4}, {0xBA8,0xBAA}, {0xBAE,0xBB9}, {0xBD0,0xBD0},
    {0xC05,0xC0C}, {0xC0E,0xC10}, {0xC12,0xC28}, {0xC2A,0xC39}, {0xC3D,0xC3D},
    {0xC58,0xC5A}, {0xC5D,0xC5D}, {0xC60,0xC61}, {0xC80,0xC80}, {0xC85,0xC8C},
    {0xC8E,0xC90}, {0xC92,0xCA8}, {0xCAA,0xCB3}, {0xCB5,0xCB9}, {0xCBD,0xCBD},
    {0xCDD,0xCDE}, {0xCE0,0xCE1}, {0xCF1,0xCF2}, {0xD04,0xD0C}, {0xD0E,0xD10},
    {0xD12,0xD3A}, {0xD3D,0xD3D}, {0xD4E,0xD4E}, {0xD54,0xD56}, {0xD5F,0xD61},
    {0xD7A,0xD7F}, {0xD85,0xD96}, {0xD9A,0xDB1}, {0xDB3,0xDBB}, {0xDBD,0xDBD},
    {0xDC0,0xDC6}, {0xE01,0xE30}, {0xE32,0xE33}, {0xE40,0xE46}, {0xE81,0xE82},
    {0xE84,0xE84}, {0xE86,0xE8A}, {0xE8C,0xEA3}, {0xEA5,0xEA5}, {0xEA7,0xEB0},
    {0xEB2,0xEB3}, {0xEBD,0xEBD}, {0xEC0,0xEC4}, {0xEC6,0xEC6}, {0xEDC,0xEDF},
    {0xF00,0xF00}, {0xF40,0xF47}, {0xF49,0xF6C}, {0xF88,0xF8C},
    {0x1000,0x102A}, {0x103F,0x103F}, {0x1050,0x1055}, {0x105A,0x105D},
    {0x1061,0x1061}, {0x1065,0x1066}, {0x106E,0x1070}, {0x1075,0x1081},
    {0x108E,0x108E}, {0x10A0,0x10C5}, {0x10C7,0x10C7}, {0x10CD,0x10CD},
    {0x10D0,0x10FA}, {0x10FC,0x1248}, {0x124A,0x124D}, {0x1250,0x1256},
    {0x1258,0x1258}, {0x125A,0x125D}, {0x1260,0x1288}, {0x128A,0x128D},
    {0x1290,0x12B0}, {0x12B2,0x12B5}, {0x12B8,0x12BE}, {0x12C0,0x12C0},
    {0x12C2,0x12C5}, {0x12C8,0x12D6}, {0x12D8,0x1310}, {0x1312,0x1315},
    {0x1318,0x135A}, {0x1380,0x138F}, {0x13A0,0x13F5}, {0x13F8,0x13FD},
    {0x1401,0x166C}, {0x166F,0x167F}, {0x1681,0x169A}, {0x16A0,0x16EA},
    {0x16F1,0x16F8}, {0x1700,0x1711}, {0x171F,0x1731}, {0x1740,0x1751},
    {0x1760,0x176C}, {0x176E,0x1770}, {0x1780,0x17B3}, {0x17D7,0x17D7},
    {0x17DC,0x17DC}, {0x1820,0x1878}, {0x1880,0x1884}, {0x1887,0x18A8},
    {0x18AA,0x18AA}, {0x18B0,0x18F5}, {0x1900,0x191E}, {0x1950,0x196D},
    {0x1970,0x1974}, {0x1980,0x19AB}, {0x19B0,0x19C9}, {0x1A00,0x1A16},
    {0x1A20,0x1A54}, {0x1AA7,0x1AA7}, {0x1B05,0x1B33}, {0x1B45,0x1B4C},
    {0x1B83,0x1BA0}, {0x1BAE,0x1BAF}, {0x1BBA,0x1BE5}, {0x1C00,0x1C23},
    {0x1C4D,0x1C4F}, {0x1C5A,0x1C7D}, {0x1C80,0x1C8A}, {0x1C90,0x1CBA},
    {0x1CBD,0x1CBF}, {0x1CE9,0x1CEC}, {0x1CEE,0x1CF3}, {0x1CF5,0x1CF6},
    {0x1CFA,0x1CFA}, {0x1D00,0x1DBF}, {0x1E00,0x1F15}, {0x1F18,0x1F1D},
    {0x1F20,0x1F45}, {0x1F48,0x1F4D}, {0x1F50,0x1F57}, {0x1F59,0x1F59},
    {0x1F5B,0x1F5B}, {0x1F5D,0x1F5D}, {0x1F5F,0x1F7D}, {0x1F80,0x1FB4},
    {0x1FB6,0x1FBC}, {0x1FBE,0x1FBE}, {0x1FC2,0x1FC4}, {0x1FC6,0x1FCC},
    {0x1FD0,0x1FD3}, {0x1FD6,0x1FDB}, {0x1FE0,0x1FEC}, {0x1FF2,0x1FF4},
    {0x1FF6,0x1FFC}, {0x2071,0x2071}, {0x207F,0x207F}, {0x2090,0x209C},
    {0x2102,0x2102}, {0x2107,0x2107}, {0x210A,0x2113}, {0x2115,0x2115},
    {0x2119,0x211D}, {0x2124,0x2124}, {0x2126,0x2126}, {0x2128,0x2128},
    {0x212A,0x212D}, {0x212F,0x2139}, {0x213C,0x213F}, {0x2145,0x2149},
    {0x214E,0x214E}, {0x2183,0x2184}, {0x2C00,0x2CE4}, {0x2CEB,0x2CEE},
    {0x2CF2,0x2CF3}, {0x2D00,0x2D25}, {0x2D27,0x2D27}, {0x2D2D,0x2D2D},
    {0x2D30,0x2D67}, {0x2D6F,0x2D6F}, {0x2D80,0x2D96}, {0x2DA0,0x2DA6},
    {0x2DA8,0x2DAE}, {0x2DB0,0x2DB6}, {0x2DB8,0x2DBE}, {0x2DC0,0x2DC6},
    {0x2DC8,0x2DCE}, {0x2DD0,0x2DD6}, {0x2DD8,0x2DDE}, {0x2E2F,0x2E2F},
    {0x3005,0x3006}, {0x3031,0x3035}, {0x303B,0x303C}, {0x3041,0x3096},
    {0x309D,0x309F}, {0x30A1,0x30FA}, {0x30FC,0x30FF}, {0x3105,0x312F},
    {0x3131,0x318E}, {0x31A0,0x31BF}, {0x31F0,0x31FF}, {0x3400,0x4DBF},
    {0x4E00,0xA48C}, {0xA4D0,0xA4FD}, {0xA500,0xA60C}, {0xA610,0xA61F},
    {0xA62A,0xA62B}, {0xA640,0xA66E}, {0xA67F,0xA69D}, {0xA6A0,0xA6E5},
    {0xA717,0xA71F}, {0xA722,0xA788}, {0xA78B,0xA7CD}, {0xA7D0,0xA7D1},
    {0xA7D3,0xA7D3}, {0xA7D5,0xA7DC}, {0xA7F2,0xA801}, {0xA803,0xA805},
    {0xA807,0xA80A}, {0xA80C,0xA822}, {0xA840,0xA873}, {0xA882,0xA8B3},
    {0xA8F2,0xA8F7}, {0xA8FB,0xA8FB}, {0xA8FD,0xA8FE}, {0xA90A,0xA925},
    {0xA930,0xA946}, {0xA960,0xA97C}, {0xA984,0xA9B2}, {0xA9CF,0xA9CF},
    {0xA9E0,0xA9E4}, {0xA9E6,0xA9EF}, {0xA9FA,0xA9FE}, {0xAA00,0xAA28},
    {0xAA40,0xAA42}, {0xAA44,0xAA4B}, {0xAA60,0xAA76}, {0xAA7A,0xAA7A},
    {0xAA7E,0xAAAF}, {0xAAB1,0xAAB1}, {0xAAB5,0xAAB6}, {0xAAB9,0xAABD},
    {0xAAC0,0xAAC0}, {0xAAC2,0xAAC2}, {0xAADB,0xAADD}, {0xAAE0,0xAAEA},
    {0xAAF2,0xAAF4}, {0xAB01,0xAB06}, {0xAB09,0xAB0E}, {0xAB11,0xAB16},
    {0xAB20,0xAB26}, {0xAB28,0xAB2E}, {0xAB30,0xAB5A}, {0xAB5C,0xAB69},
    {0xAB70,0xABE2}, {0xAC00,0xD7A3}, {0xD7B0,0xD7C6}, {0xD7CB,0xD7FB},
    {0xF900,0xFA6D}, {0xFA70,0xFAD9}, {0xFB00,0xFB06}, {0xFB13,0xFB17},
    {0xFB1D,0xFB1D}, {0xFB1F,0xFB28}, {0xFB2A,0xFB36}, {0xFB38,0xFB3C},
    {0xFB3E,0xFB3E}, {0xFB40,0xFB41}, {0xFB43,0xFB44}, {0xFB46,0xFBB1},
    {0xFBD3,0xFD3D}, {0xFD50,0xFD8F}, {0xFD92,0xFDC7}, {0xFDF0,0xFDFB},
    {0xFE70,0xFE74}, {0xFE76,0xFEFC}, {0xFF21,0xFF3A}, {0xFF41,0xFF5A},
    {0xFF66,0xFFBE}, {0xFFC2,0xFFC7}, {0xFFCA,0xFFCF}, {0xFFD2,0xFFD7},
    {0xFFDA,0xFFDC}, {0x10000,0x1000B}, {0x1000D,0x10026}, {0x10028,0x1003A},
    {0x1003C,0x1003D}, {0x1003F,0x1004D}, {0x10050,0x1005D}, {0x10080,0x100FA},
    {0x10280,0x1029C}, {0x102A0,0x102D0}, {0x10300,0x1031F}, {0x1032D,0x10340},
    {0x10342,0x10349}, {0x10350,0x10375}, {0x10380,0x1039D}, {0x103A0,0x103C3},
    {0x103C8,0x103CF}, {0x10400,0x1049D}, {0x104B0,0x104D3}, {0x104D8,0x104FB},
    {0x10500,0x10527}, {0x10530,0x10563}, {0x10570,0x1057A}, {0x1057C,0x1058A},
    {0x1058C,0x10592}, {0x10594,0x10595}, {0x10597,0x105A1}, {0x105A3,0x105B1},
    {0x105B3,0x105B9}, {0x105BB,0x105BC}, {0x105C0,0x105F3}, {0x10600,0x10736},
    {0x10740,0x10755}, {0x10760,0x10767}, {0x10780,0x10785}, {0x10787,0x107B0},
    {0x107B2,0x107BA}, {0x10800,0x10805}, {0x10808,0x10808}, {0x1080A,0x10835},
    {0x10837,0x10838}, {0x1083C,0x1083C}, {0x1083F,0x10855}, {0x10860,0x10876},
    {0x10880,0x1089E}, {0x108E0,0x108F2}, {0x108F4,0x108F5}, {0x10900,0x10915},
    {0x10920,0x10939}, {0x10980,0x109B7}, {0x109BE,0x109BF}, {0x10A00,0x10A00},
    {0x10A10,0x10A13}, {0x10A15,0x10A17}, {0x10A19,0x10A35}, {0x10A60,0x10A7C},
    {0x10A80,0x10A9C}, {0x10AC0,0x10AC7}, {0x10AC9,0x10AE4}, {0x10B00,0x10B35},
    {0x10B40,0x10B55}, {0x10B60,0x10B72}, {0x10B80,0x10B91}, {0x10C00,0x10C48},
    {0x10C80,0x10CB2}, {0x10CC0,0x10CF2}, {0x10D00,0x10D23}, {0x10D4A,0x10D65},
    {0x10D6F,0x10D85}, {0x10E80,0x10EA9}, {0x10EB0,0x10EB1}, {0x10EC2,0x10EC4},
    {0x10F00,0x10F1C}, {0x10F27,0x10F27}, {0x10F30,0x10F45}, {0x10F70,0x10F81},
    {0x10FB0,0x10FC4}, {0x10FE0,0x10FF6}, {0x11003,0x11037}, {0x11071,0x11072},
    {0x11075,0x11075}, {0x11083,0x110AF}, {0x110D0,0x110E8}, {0x11103,0x11126},
    {0x11144,0x11144}, {0x11147,0x11147}, {0x11150,0x11172}, {0x11176,0x11176},
    {0x11183,0x111B2}, {0x111C1,0x111C4}, {0x111DA,0x111DA}, {0x111DC,0x111DC},
    {0x11200,0x11211}, {0x11213,0x1122B}, {0x1123F,0x11240}, {0x11280,0x11286},
    {0x11288,0x11288}, {0x1128A,0x1128D}, {0x1128F,0x1129D}, {0x1129F,0x112A8},
    {0x112B0,0x112DE}, {0x11305,0x1130C}, {0x1130F,0x11310}, {0x11313,0x11328},
    {0x1132A,0x11330}, {0x11332,0x11333}, {0x11335,0x11339}, {0x1133D,0x1133D},
    {0x11350,0x11350}, {0x1135D,0x11361}, {0x11380,0x11389}, {0x1138B,0x1138B},
    {0x1138E,0x1138E}, {0x11390,0x113B5}, {0x113B7,0x113B7}, {0x113D1,0x113D1},
    {0x113D3,0x113D3}, {0x11400,0x11434}, {0x11447,0x1144A}, {0x1145F,0x11461},
    {0x11480,0x114AF}, {0x114C4,0x114C5}, {0x114C7,0x114C7}, {0x11580,0x115AE},
    {0x115D8,0x115DB}, {0x11600,0x1162F}, {0x11644,0x11644}, {0x11680,0x116AA},
    {0x116B8,0x116B8}, {0x11700,0x1171A}, {0x11740,0x11746}, {0x11800,0x1182B},
    {0x118A0,0x118DF}, {0x118FF,0x11906}, {0x11909,0x11909}, {0x1190C,0x11913},
    {0x11915,0x11916}, {0x11918,0x1192F}, {0x1193F,0x1193F}, {0x11941,0x11941},
    {0x119A0,0x119A7}, {0x119AA,0x119D0}, {0x119E1,0x119E1}, {0x119E3,0x119E3},
    {0x11A00,0x11A00}, {0x11A0B,0x11A32}, {0x11A3A,0x11A3A}, {0x11A50,0x11A50},
    {0x11A5C,0x11A89}, {0x11A9D,0x11A9D}, {0x11AB0,0x11AF8}, {0x11BC0,0x11BE0},
    {0x11C00,0x11C08}, {0x11C0A,0x11C2E}, {0x11C40,0x11C40}, {0x11C72,0x11C8F},
    {0x11D00,0x11D06}, {0x11D08,0x11D09}, {0x11D0B,0x11D30}, {0x11D46,0x11D46},
    {0x11D60,0x11D65}, {0x11D67,0x11D68}, {0x11D6A,0x11D89}, {0x11D98,0x11D98},
    {0x11EE0,0x11EF2}, {0x11F02,0x11F02}, {0x11F04,0x11F10}, {0x11F12,0x11F33},
    {0x11FB0,0x11FB0}, {0x12000,0x12399}, {0x12480,0x12543}, {0x12F90,0x12FF0},
    {0x13000,0x1342F}, {0x13441,0x13446}, {0x13460,0x143FA}, {0x14400,0x14646},
    {0x16100,0x1611D}, {0x16800,0x16A38}, {0x16A40,0x16A5E}, {0x16A70,0x16ABE},
    {0x16AD0,0x16AED}, {0x16B00,0x16B2F}, {0x16B40,0x16B43}, {0x16B63,0x16B77},
    {0x16B7D,0x16B8F}, {0x16D40,0x16D6C}, {0x16E40,0x16E7F}, {0x16F00,0x16F4A},
    {0x16F50,0x16F50}, {0x16F93,0x16F9F}, {0x16FE0,0x16FE1}, {0x16FE3,0x16FE3},
    {0x17000,0x187F7}, {0x18800,0x18CD5}, {0x18CFF,0x18D08}, {0x1AFF0,0x1AFF3},
    {0x1AFF5,0x1AFFB}, {0x1AFFD,0x1AFFE}, {0x1B000,0x1B122}, {0x1B132,0x1B132},
    {0x1B150,0x1B152}, {0x1B155,0x1B155}, {0x1B164,0x1B167}, {0x1B170,0x1B2FB},
    {0x1BC00,0x1BC6A}, {0x1BC70,0x1BC7C}, {0x1BC80,0x1BC88}, {0x1BC90,0x1BC99},
    {0x1D400,0x1D454}, {0x1D456,0x1D49C}, {0x1D49E,0x1D49F}, {0x1D4A2,0x1D4A2},
    {0x1D4A5,0x1D4A6}, {0x1D4A9,0x1D4AC}, {0x1D4AE,0x1D4B9}, {0x1D4BB,0x1D4BB},
    {0x1D4BD,0x1D4C3}, {0x1D4C5,0x1D505}, {0x1D507,0x1D50A}, {0x1D50D,0x1D514},
    {0x1D516,0x1D51C}, {0x1D51E,0x1D539}, {0x1D53B,0x1D53E}, {0x1D540,0x1D544},
    {0x1D546,0x1D546}, {0x1D54A,0x1D550}, {0x1D552,0x1D6A5}, {0x1D6A8,0x1D6C0},
    {0x1D6C2,0x1D6DA}, {0x1D6DC,0x1D6FA}, {0x1D6FC,0x1D714}, {0x1D716,0x1D734},
    {0x1D736,0x1D74E}, {0x1D750,0x1D76E}, {0x1D770,0x1D788}, {0x1D78A,0x1D7A8},
    {0x1D7AA,0x1D7C2}, {0x1D7C4,0x1D7CB}, {0x1DF00,0x1DF1E}, {0x1DF25,0x1DF2A},
    {0x1E030,0x1E06D}, {0x1E100,0x1E12C}, {0x1E137,0x1E13D}, {0x1E14E,0x1E14E},
    {0x1E290,0x1E2AD}, {0x1E2C0,0x1E2EB}, {0x1E4D0,0x1E4EB}, {0x1E5D0,0x1E5ED},
    {0x1E5F0,0x1E5F0}, {0x1E7E0,0x1E7E6}, {0x1E7E8,0x1E7EB}, {0x1E7ED,0x1E7EE},
    {0x1E7F0,0x1E7FE}, {0x1E800,0x1E8C4}, {0x1E900,0x1E943}, {0x1E94B,0x1E94B},
    {0x1EE00,0x1EE03}, {0x1EE05,0x1EE1F}, {0x1EE21,0x1EE22}, {0x1EE24,0x1EE24},
    {0x1EE27,0x1EE27}, {0x1EE29,0x1EE32}, {0x1EE34,0x1EE37}, {0x1EE39,0x1EE39},
    {0x1EE3B,0x1EE3B}, {0x1EE42,0x1EE42}, {0x1EE47,0x1EE47}, {0x1EE49,0x1EE49},
    {0x1EE4B,0x1EE4B}, {0x1EE4D,0x1EE4F}, {0x1EE51,0x1EE52}, {0x1EE54,0x1EE54},
    {0x1EE57,0x1EE57}, {0x1EE59,0x1EE59}, {0x1EE5B,0x1EE5B}, {0x1EE5D,0x1EE5D},
    {0x1EE5F,0x1EE5F}, {0x1EE61,0x1EE62}, {0x1EE64,0x1EE64}, {0x1EE67,0x1EE6A},
    {0x1EE6C,0x1EE72}, {0x1EE74,0x1EE77}, {0x1EE79,0x1EE7C}, {0x1EE7E,0x1EE7E},
    {0x1EE80,0x1EE89}, {0x1EE8B,0x1EE9B}, {0x1EEA1,0x1EEA3}, {0x1EEA5,0x1EEA9},
    {0x1EEAB,0x1EEBB}, {0x20000,0x2A6DF}, {0x2A700,0x2B739}, {0x2B740,0x2B81D},
    {0x2B820,0x2CEA1}, {0x2CEB0,0x2EBE0}, {0x2EBF0,0x2EE5D}, {0x2F800,0x2FA1D},
    {0x30000,0x3134A}, {0x31350,0x323AF},
};
/* \p{N}: Nd Nl No: 144 ranges */
static const ts_gpt2_range ts_gpt2_number_ranges[144] = {
    {0x30,0x39}, {0xB2,0xB3}, {0xB9,0xB9}, {0xBC,0xBE}, {0x660,0x669},
    {0x6F0,0x6F9}, {0x7C0,0x7C9}, {0x966,0x96F}, {0x9E6,0x9EF}, {0x9F4,0x9F9},
    {0xA66,0xA6F}, {0xAE6,0xAEF}, {0xB66,0xB6F}, {0xB72,0xB77}, {0xBE6,0xBF2},
    {0xC66,0xC6F}, {0xC78,0xC7E}, {0xCE6,0xCEF}, {0xD58,0xD5E}, {0xD66,0xD78},
    {0xDE6,0xDEF}, {0xE50,0xE59}, {0xED0,0xED9}, {0xF20,0xF33},
    {0x1040,0x1049}, {0x1090,0x1099}, {0x1369,0x137C}, {0x16EE,0x16F0},
    {0x17E0,0x17E9}, {0x17F0,0x17F9}, {0x1810,0x1819}, {0x1946,0x194F},
    {0x19D0,0x19DA}, {0x1A80,0x1A89}, {0x1A90,0x1A99}, {0x1B50,0x1B59},
    {0x1BB0,0x1BB9}, {0x1C40,0x1C49}, {0x1C50,0x1C59}, {0x2070,0x2070},
    {0x2074,0x2079}, {0x2080,0x2089}, {0x2150,0x2182}, {0x2185,0x2189},
    {0x2460,0x249B}, {0x24EA,0x24FF}, {0x2776,0x2793}, {0x2CFD,0x2CFD},
    {0x3007,0x3007}, {0x3021,0x3029}, {0x3038,0x303A}, {0x3192,0x3195},
    {0x3220,0x3229}, {0x3248,0x324F}, {0x3251,0x325F}, {0x3280,0x3289},
    {0x32B1,0x32BF}, {0xA620,0xA629}, {0xA6E6,0xA6EF}, {0xA830,0xA835},
    {0xA8D0,0xA8D9}, {0xA900,0xA909}, {0xA9D0,0xA9D9}, {0xA9F0,0xA9F9},
    {0xAA50,0xAA59}, {0xABF0,0xABF9}, {0xFF10,0xFF19}, {0x10107,0x10133},
    {0x10140,0x10178}, {0x1018A,0x1018B}, {0x102E1,0x102FB}, {0x10320,0x10323},
    {0x10341,0x10341}, {0x1034A,0x1034A}, {0x103D1,0x103D5}, {0x104A0,0x104A9},
    {0x10858,0x1085F}, {0x10879,0x1087F}, {0x108A7,0x108AF}, {0x108FB,0x108FF},
    {0x10916,0x1091B}, {0x109BC,0x109BD}, {0x109C0,0x109CF}, {0x109D2,0x109FF},
    {0x10A40,0x10A48}, {0x10A7D,0x10A7E}, {0x10A9D,0x10A9F}, {0x10AEB,0x10AEF},
    {0x10B58,0x10B5F}, {0x10B78,0x10B7F}, {0x10BA9,0x10BAF}, {0x10CFA,0x10CFF},
    {0x10D30,0x10D39}, {0x10D40,0x10D49}, {0x10E60,0x10E7E}, {0x10F1D,0x10F26},
    {0x10F51,0x10F54}, {0x10FC5,0x10FCB}, {0x11052,0x1106F}, {0x110F0,0x110F9},
    {0x11136,0x1113F}, {0x111D0,0x111D9}, {0x111E1,0x111F4}, {0x112F0,0x112F9},
    {0x11450,0x11459}, {0x114D0,0x114D9}, {0x11650,0x11659}, {0x116C0,0x116C9},
    {0x116D0,0x116E3}, {0x11730,0x1173B}, {0x118E0,0x118F2}, {0x11950,0x11959},
    {0x11BF0,0x11BF9}, {0x11C50,0x11C6C}, {0x11D50,0x11D59}, {0x11DA0,0x11DA9},
    {0x11F50,0x11F59}, {0x11FC0,0x11FD4}, {0x12400,0x1246E}, {0x16130,0x16139},
    {0x16A60,0x16A69}, {0x16AC0,0x16AC9}, {0x16B50,0x16B59}, {0x16B5B,0x16B61},
    {0x16D70,0x16D79}, {0x16E80,0x16E96}, {0x1CCF0,0x1CCF9}, {0x1D2C0,0x1D2D3},
    {0x1D2E0,0x1D2F3}, {0x1D360,0x1D378}, {0x1D7CE,0x1D7FF}, {0x1E140,0x1E149},
    {0x1E2F0,0x1E2F9}, {0x1E4F0,0x1E4F9}, {0x1E5F1,0x1E5FA}, {0x1E8C7,0x1E8CF},
    {0x1E950,0x1E959}, {0x1EC71,0x1ECAB}, {0x1ECAD,0x1ECAF}, {0x1ECB1,0x1ECB4},
    {0x1ED01,0x1ED2D}, {0x1ED2F,0x1ED3D}, {0x1F100,0x1F10C}, {0x1FBF0,0x1FBF9},
};
/* END generated tables */

#endif /* !RUN_HEADER_ONLY && !RUN_C_IMPLEMENTATION_DONE */
