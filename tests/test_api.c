/* test_api.c -- the library API of run.c (section 0), used as a program would use it.
 *
 *   make test-api          (SHARED=../shared: stories260K.bin, tok512.bin, the TinyStories text)
 *
 * Every error path returns an error with a message (never exits); two threads on one model
 * give the tokens of one run after the other; the model's memory is never written (it is
 * mprotect'ed read-only while sessions run); perplexity matches a plain per-token loop;
 * a block of tokens gives the same bits as one token at a time, attention recording
 * included, also with local attention windows.
 * Checks that need the shared models say SKIP (never counted as passed) when it is absent.
 */
#define _DEFAULT_SOURCE /* MAP_ANONYMOUS */
#define RUN_NO_MAIN
#include "../run.c"

#include <pthread.h>

#include "check.h"

/* an API call that must fail with `code`, a message, and the error struct saying the same */
#define CHECK_ERR(call, want)                                                                          \
    do {                                                                                               \
        ts_error e_ = {0, ""};                                                                         \
        ts_error *err = &e_;                                                                           \
        int rc_ = (call);                                                                              \
        CHECK_MSG(rc_ == (want) && e_.code == (want) && e_.msg[0] != '\0', "%s: rc %d code %d msg '%s', expected %d", #call, \
              rc_, e_.code, e_.msg, (want));                                                           \
    } while (0)

static const char *shared_dir;
static char model_path[1024], tok_path[1024], text_path[1024];
static int have_shared;

/* A whole file in a page-aligned buffer of its own, so it can be made read-only. */
static void *read_file(const char *path, size_t *size) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    *size = (size_t)ftell(f);
    rewind(f);
    void *p = mmap(NULL, *size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED || fread(p, 1, *size, f) != *size) p = NULL;
    fclose(f);
    return p;
}

static int skip(const char *what) {
    printf("SKIP %s: no %s (set SHARED to the shared test data)\n", what, model_path);
    n_skip++;
    return 1;
}

/* ---- errors ------------------------------------------------------------------------- */

static void test_errors_without_model(void) {
    ts_model *m = (ts_model *)&m; /* set to NULL by the failing call */
    ts_session *s = NULL;
    CHECK_ERR(ts_model_load(&m, "/nonexistent/model.bin", NULL, err), TS_E_IO);
    CHECK_MSG(m == NULL, "failed load leaves *out NULL");
    CHECK_ERR(ts_model_load(NULL, "x", NULL, err), TS_E_ARG);
    CHECK_ERR(ts_model_load(&m, NULL, NULL, err), TS_E_ARG);
    {
        ts_error e = {0, ""};
        CHECK_MSG(ts_model_load(&m, "/", NULL, &e) < 0 && e.msg[0], "a directory is no model: %s", e.msg);
    }
    CHECK_ERR(ts_model_load_memory(&m, NULL, 100, NULL, 0, err), TS_E_ARG);
    CHECK_ERR(ts_model_load_memory(NULL, "x", 1, NULL, 0, err), TS_E_ARG);
    static uint32_t garbage[64]; /* 256 bytes: not a model of any kind */
    for (int i = 0; i < 64; i++) garbage[i] = 0x7fffffffu - (uint32_t)i * 977u;
    CHECK_ERR(ts_model_load_memory(&m, garbage, 0, NULL, 0, err), TS_E_ARG);
    CHECK_ERR(ts_model_load_memory(&m, garbage, 10, NULL, 0, err), TS_E_FORMAT);
    CHECK_ERR(ts_model_load_memory(&m, garbage, sizeof garbage, NULL, 0, err), TS_E_FORMAT);
    CHECK_ERR(ts_model_load_memory(&m, (char *)garbage + 1, 100, NULL, 0, err), TS_E_ARG); /* misaligned */
    CHECK_ERR(ts_session_new(&s, NULL, 0, err), TS_E_ARG);
    CHECK_ERR(ts_session_new(NULL, NULL, 0, err), TS_E_ARG);
    int n = 0, ids[4] = {0};
    CHECK_ERR(ts_encode(NULL, "a", 1, 1, ids, 4, &n, err), TS_E_ARG);
    CHECK_ERR(ts_forward(NULL, ids, 1, 0, err) ? 0 : e_.code, TS_E_ARG);
    CHECK_ERR(ts_forward_all(NULL, ids, 1, 0, NULL, err), TS_E_ARG);
    float logits[4] = {0};
    CHECK_ERR(ts_sample(NULL, logits, 0.0f, 0.0f, err), TS_E_ARG);
    ts_generate_opts o = {.temperature = 0.0f, .topp = 0.9f, .seed = 1, .steps = 10};
    CHECK_ERR(ts_generate(NULL, "x", &o, NULL, NULL, NULL, err), TS_E_ARG);
    long nt;
    double nll;
    CHECK_ERR(ts_perplexity(NULL, "x", 1, &nt, &nll, NULL, NULL, err), TS_E_ARG);
    CHECK_ERR(ts_session_record_attention(NULL, 4, err), TS_E_ARG);
    size_t len = 99;
    CHECK_MSG(ts_decode(NULL, 0, 0, &len)[0] == '\0' && len == 0, "ts_decode without a model gives \"\"");
    CHECK_MSG(ts_token_bytes(NULL, 0, &len) == NULL, "ts_token_bytes without a model gives NULL");
    CHECK_MSG(ts_model_config(NULL) == NULL && ts_model_file_size(NULL) == 0 && ts_session_max_positions(NULL) == 0, "NULL getters");
    CHECK_MSG(ts_session_attention(NULL, &n) == NULL && n == 0, "no attention without a session");
    CHECK_MSG(ts_top_k(NULL, 4, 2, ids, NULL) == 0 && ts_top_k(logits, 4, 0, ids, NULL) == 0, "ts_top_k refuses nothing to do");
    ts_model_free(NULL);
    ts_session_free(NULL);
}

static void test_errors_with_model(void) {
    if (!have_shared && skip("error paths with a model")) return;
    ts_model *m = NULL, *bare = NULL;
    ts_session *s = NULL;
    ts_error e = {0, ""};
    CHECK_ERR(ts_model_load(&m, model_path, "/nonexistent/tok.bin", err), TS_E_IO);
    char big_tok[1100];
    snprintf(big_tok, sizeof big_tok, "%s/models/llama2-tokenizer.bin", shared_dir);
    CHECK_ERR(ts_model_load(&m, model_path, big_tok, err), TS_E_FORMAT); /* 32000 tokens for a 512 model */
    size_t size;
    unsigned char *file = (unsigned char *)read_file(model_path, &size);
    CHECK_ERR(ts_model_load_memory(&m, file, size / 2, NULL, 0, err), TS_E_FORMAT); /* truncated */
    CHECK_ERR(ts_model_load_memory(&m, file, size, "abc", 3, err), TS_E_FORMAT);  /* tokenizer of 3 bytes */
    munmap(file, size);
    if (ts_model_load(&m, model_path, tok_path, &e)) {
        CHECK_MSG(0, "load: %s", e.msg);
        return;
    }
    const ts_config *c = ts_model_config(m);
    CHECK_MSG(ts_session_new(&s, m, c->seq_len + 1, &e) == 0 && ts_session_max_positions(s) == c->seq_len, "capped at seq_len");
    ts_session_free(s);
    CHECK_MSG(ts_session_new(&s, m, 16, &e) == 0 && ts_session_max_positions(s) == 16, "session of 16: %s", e.msg);
    int ids[40] = {1, 2, 3}, bad = c->vocab_size, neg = -1, n = 0;
    float *out = (float *)malloc(sizeof(float) * (size_t)c->vocab_size * 40);
    CHECK_ERR(ts_forward(s, ids, 0, 0, err) ? 0 : e_.code, TS_E_ARG);
    CHECK_ERR(ts_forward(s, NULL, 1, 0, err) ? 0 : e_.code, TS_E_ARG);
    CHECK_ERR(ts_forward(s, &bad, 1, 0, err) ? 0 : e_.code, TS_E_RANGE);
    CHECK_ERR(ts_forward(s, &neg, 1, 0, err) ? 0 : e_.code, TS_E_RANGE);
    CHECK_ERR(ts_forward(s, ids, 1, -1, err) ? 0 : e_.code, TS_E_RANGE);
    CHECK_ERR(ts_forward(s, ids, 1, 16, err) ? 0 : e_.code, TS_E_RANGE); /* past max_positions */
    CHECK_ERR(ts_forward(s, ids, 7, 10, err) ? 0 : e_.code, TS_E_RANGE); /* runs over the end */
    CHECK_ERR(ts_forward(s, ids, 17, 0, err) ? 0 : e_.code, TS_E_RANGE);
    CHECK_ERR(ts_forward_all(s, ids, 3, 0, NULL, err), TS_E_ARG);
    CHECK_ERR(ts_forward_all(s, ids, 3, 14, out, err), TS_E_RANGE);
    CHECK_MSG(ts_forward(s, ids, 1, 15, &e) != NULL, "the last position runs: %s", e.msg);
    CHECK_ERR(ts_encode(m, NULL, 5, 1, ids, 40, &n, err), TS_E_ARG);
    CHECK_ERR(ts_encode(m, "abc", 3, 1, ids, -1, &n, err), TS_E_ARG);
    CHECK_ERR(ts_encode(m, "abc", 3, 1, NULL, 5, &n, err), TS_E_ARG);
    CHECK_ERR(ts_encode(m, "abc", 3, 1, ids, 40, NULL, err), TS_E_ARG);
    CHECK_MSG(ts_encode(m, "abc", 3, 1, NULL, 0, &n, &e) == 0 && n >= 2, "counting without room: %d %s", n, e.msg);
    CHECK_MSG(ts_encode(m, NULL, 0, 1, ids, 40, &n, &e) == 0 && n == 1 && ids[0] == c->bos_id, "NULL empty text is BOS alone");
    float *logits = ts_forward(s, ids, 1, 0, &e);
    float inf = INFINITY, nan = NAN;
    CHECK_ERR(ts_sample(s, logits, -1.0f, 0.9f, err), TS_E_ARG);
    CHECK_ERR(ts_sample(s, logits, nan, 0.9f, err), TS_E_ARG);
    CHECK_ERR(ts_sample(s, logits, inf, 0.9f, err), TS_E_ARG);
    CHECK_ERR(ts_sample(s, logits, 1.0f, -0.1f, err), TS_E_ARG);
    CHECK_ERR(ts_sample(s, logits, 1.0f, 1.5f, err), TS_E_ARG);
    CHECK_ERR(ts_sample(s, logits, 1.0f, nan, err), TS_E_ARG);
    CHECK_ERR(ts_sample(s, NULL, 1.0f, 0.9f, err), TS_E_ARG);
    int tok = ts_sample(s, logits, 0.7f, 0.9f, &e);
    CHECK_MSG(tok >= 0 && tok < c->vocab_size, "a good sample: %d", tok);
    ts_generate_opts o = {.temperature = 0.0f, .topp = 0.9f, .seed = 1, .steps = 0};
    CHECK_ERR(ts_generate(s, "x", NULL, NULL, NULL, NULL, err), TS_E_ARG);
    o.temperature = -2.0f;
    CHECK_ERR(ts_generate(s, "x", &o, NULL, NULL, NULL, err), TS_E_ARG);
    o.temperature = 0.0f, o.topp = 2.0f;
    CHECK_ERR(ts_generate(s, "x", &o, NULL, NULL, NULL, err), TS_E_ARG);
    o.topp = 0.9f;
    ts_session *full = NULL;
    ts_session_new(&full, m, 0, &e);
    char long_prompt[4000];
    for (int i = 0; i < 3990; i++) long_prompt[i] = "ab "[i % 3];
    long_prompt[3990] = '\0';
    CHECK_ERR(ts_generate(full, long_prompt, &o, NULL, NULL, NULL, err), TS_E_RANGE); /* longer than seq_len */
    long nt;
    double nll;
    CHECK_ERR(ts_perplexity(s, NULL, 3, &nt, &nll, NULL, NULL, err), TS_E_ARG);
    CHECK_ERR(ts_perplexity(s, "abc", 3, NULL, &nll, NULL, NULL, err), TS_E_ARG);
    CHECK_ERR(ts_perplexity(s, "abc", 3, &nt, NULL, NULL, NULL, err), TS_E_ARG);
    CHECK_ERR(ts_session_record_attention(s, -1, err), TS_E_RANGE);
    CHECK_ERR(ts_session_record_attention(s, 17, err), TS_E_RANGE);
    size_t len = 5;
    CHECK_MSG(ts_decode(m, 1, c->vocab_size, &len)[0] == '\0' && len == 0, "decode of an id out of range is empty");
    CHECK_MSG(ts_decode(m, 1, -3, NULL)[0] == '\0', "decode tolerates len NULL");
    CHECK_MSG(ts_token_bytes(m, -1, &len) == NULL && ts_token_bytes(m, c->vocab_size, &len) == NULL, "token bytes out of range");

    /* a model without tokenizer: ids work, text does not */
    CHECK_MSG(ts_model_load(&bare, model_path, NULL, &e) == 0, "load without tokenizer: %s", e.msg);
    if (bare) {
        ts_session *bs = NULL;
        ts_session_new(&bs, bare, 8, &e);
        CHECK_MSG(ts_forward(bs, ids, 1, 0, &e) != NULL, "ids run without a tokenizer");
        CHECK_ERR(ts_encode(bare, "abc", 3, 1, ids, 40, &n, err), TS_E_ARG);
        CHECK_ERR(ts_generate(bs, "abc", &o, NULL, NULL, NULL, err), TS_E_ARG);
        CHECK_ERR(ts_perplexity(bs, "abc", 3, &nt, &nll, NULL, NULL, err), TS_E_ARG);
        CHECK_MSG(ts_token_bytes(bare, 5, &len) == NULL && ts_decode(bare, 1, 5, &len)[0] == '\0', "no pieces without a tokenizer");
        ts_session_free(bs);
        ts_model_free(bare);
    }
    free(out);
    ts_session_free(full);
    ts_session_free(s);
    ts_model_free(m);
}

/* ---- threads -------------------------------------------------------------------------- */

typedef struct {
    const ts_model *m;
    unsigned long long seed;
    int tokens[600], n, rc;
} story_job;

static int collect(void *user, int token, const char *piece, size_t len) {
    story_job *j = (story_job *)user;
    (void)piece, (void)len;
    if (j->n < 600) j->tokens[j->n++] = token;
    return 0;
}

/* three stories in a row on a session of its own: sampled, so any shared state would show */
static void *story_thread(void *arg) {
    story_job *j = (story_job *)arg;
    ts_session *s = NULL;
    ts_error e = {0, ""};
    j->rc = ts_session_new(&s, j->m, 200, &e);
    const char *prompts[3] = {"Once upon a time", "Lily and Tom", ""};
    for (int r = 0; r < 3 && j->rc == 0; r++) {
        ts_generate_opts o = {.temperature = 0.9f, .topp = 0.9f, .seed = j->seed + (unsigned long long)r, .steps = 200};
        j->rc = ts_generate(s, prompts[r], &o, collect, j, NULL, &e);
    }
    ts_session_free(s);
    return NULL;
}

static void test_threads(void) {
    if (!have_shared && skip("two sessions on two threads")) return;
    size_t size, tok_size;
    void *file = read_file(model_path, &size), *tok = read_file(tok_path, &tok_size);
    ts_model *m = NULL;
    ts_error e = {0, ""};
    CHECK_MSG(file && tok && ts_model_load_memory(&m, file, size, tok, tok_size, &e) == 0, "load from memory: %s", e.msg);
    if (!m) return;
    /* from here on any write into the model's or the tokenizer's bytes would crash */
    CHECK_MSG(mprotect(file, size, PROT_READ) == 0 && mprotect(tok, tok_size, PROT_READ) == 0, "mprotect");
    static story_job one[2], both[2];
    for (int i = 0; i < 2; i++) {
        one[i].m = both[i].m = m;
        one[i].seed = both[i].seed = 1000u + 77u * (unsigned)i;
        story_thread(&one[i]); /* one after the other */
    }
    pthread_t th[2];
    for (int i = 0; i < 2; i++) pthread_create(&th[i], NULL, story_thread, &both[i]);
    for (int i = 0; i < 2; i++) pthread_join(th[i], NULL);
    for (int i = 0; i < 2; i++) {
        CHECK_MSG(one[i].rc == 0 && both[i].rc == 0, "thread %d ran", i);
        CHECK_MSG(one[i].n > 300 && one[i].n == both[i].n && !memcmp(one[i].tokens, both[i].tokens, sizeof(int) * (size_t)one[i].n),
              "thread %d: %d tokens on a thread of its own = %d alone, the same ids", i, both[i].n, one[i].n);
    }
    CHECK_MSG(one[0].n != one[1].n || memcmp(one[0].tokens, one[1].tokens, sizeof(int) * (size_t)one[0].n),
          "different seeds give different stories (the comparison can fail)");
    ts_model_free(m);
    munmap(file, size), munmap(tok, tok_size);
}

/* ---- generate: the callbacks ---------------------------------------------------------- */

/* one user pointer serves both callbacks of ts_generate */
typedef struct { int n, stop_after, ban, first_pos, tokens[600]; float first_logits[512]; } cb_state;

static int count_pieces(void *user, int token, const char *piece, size_t len) {
    cb_state *st = (cb_state *)user;
    (void)piece, (void)len;
    if (st->n < 600) st->tokens[st->n] = token;
    return ++st->n >= st->stop_after;
}
static void ban_token(void *user, int pos, float *logits) {
    cb_state *st = (cb_state *)user;
    if (st->first_pos < 0) st->first_pos = pos, memcpy(st->first_logits, logits, sizeof st->first_logits);
    logits[st->ban] = -INFINITY;
}

static void test_generate_callbacks(void) {
    if (!have_shared && skip("generate callbacks")) return;
    ts_model *m = NULL;
    ts_session *s = NULL;
    ts_error e = {0, ""};
    ts_model_load(&m, model_path, tok_path, &e);
    ts_session_new(&s, m, 0, &e);
    static cb_state st = {0, 5, -1, -1, {0}, {0}};
    ts_generate_opts o = {.temperature = 0.0f, .topp = 0.9f, .seed = 1, .steps = 100};
    ts_generate_stats stats;
    CHECK_MSG(ts_generate(s, "Once upon a time", &o, count_pieces, &st, &stats, &e) == 0 && st.n == 5,
          "the callback stops generation after 5 pieces: %d (%s)", st.n, e.msg);
    /* the prompt "Once upon a time" is 5 tokens: greedy, its next token is "," */
    int ids[8], n;
    ts_encode(m, "Once upon a time", 16, 1, ids, 8, &n, &e);
    float *logits = ts_forward(s, ids, n, 0, &e);
    int greedy = -1;
    ts_top_k(logits, ts_model_config(m)->vocab_size, 1, &greedy, NULL);
    st.n = 0, st.stop_after = 1000, st.ban = greedy, o.steps = n, o.on_logits = ban_token; /* one token sampled */
    CHECK_MSG(ts_generate(s, "Once upon a time", &o, count_pieces, &st, NULL, &e) == 0 && st.n == n, "ran: %d pieces %s", st.n, e.msg);
    CHECK_MSG(st.first_pos == n - 1, "on_logits first sees the prompt's last position: %d", st.first_pos);
    ts_encode(m, "Once upon a time", 16, 1, ids, 8, &n, &e);
    logits = ts_forward(s, ids, n, 0, &e);
    CHECK_MSG(!memcmp(st.first_logits, logits, sizeof st.first_logits), "on_logits gets the logits ts_forward gives");
    CHECK_MSG(st.tokens[n - 1] != greedy && greedy >= 0, "a banned token is never sampled (%d)", greedy);
    ts_session_free(s);
    ts_model_free(m);
}

/* ---- blocks vs one token at a time, attention recording, local windows --------------- */

/* A small GPT-Neo-style TSMF model with random weights (LayerNorm, learned positions,
 * biases, GELU, tied classifier, layer 1 attending to a window of 5), no tokenizer. */
static unsigned char *tiny_neo(size_t *size) {
    enum { DIM = 16, HID = 32, LAYERS = 2, HEADS = 2, HD = 8, VOCAB = 20, SEQ = 40 };
    size_t cap = 1 << 16, pos = 0;
    unsigned char *b = (unsigned char *)ts_aligned_alloc(cap);
    unsigned long long rng = 42;
#define PUT_I32(off, v) do { int32_t v_ = (v); memcpy(b + (off), &v_, 4); } while (0)
#define TENSOR(count, base, amp)                                                    \
    do {                                                                            \
        pos = (pos + 63) / 64 * 64;                                                 \
        for (int i_ = 0; i_ < (count); i_++) {                                      \
            float v_ = (base) + (amp) * (ts_random_f32(&rng) * 2.0f - 1.0f);        \
            memcpy(b + pos, &v_, 4), pos += 4;                                      \
        }                                                                           \
    } while (0)
    memcpy(b, "TSMF", 4);
    int header[] = {1, 256, TS_ARCH_GPTNEO, DIM, HID, LAYERS, HEADS, HEADS, HD, VOCAB, SEQ, TS_NORM_LAYER, TS_ACT_GELU,
                    TS_POS_LEARNED, TS_FLAG_TIED | TS_FLAG_QKV_BIAS | TS_FLAG_OUT_BIAS | TS_FLAG_MLP_BIAS, TS_F32, 0};
    for (int i = 0; i < (int)(sizeof header / sizeof header[0]); i++) PUT_I32(4 + 4 * i, header[i]);
    float eps = 1e-5f;
    memcpy(b + 76, &eps, 4);
    PUT_I32(84, -1); PUT_I32(88, -1);
    PUT_I32(256, 0); PUT_I32(260, 5); /* layer windows */
    pos = 320;
    TENSOR(VOCAB * DIM, 0.0f, 1.0f);
    TENSOR(SEQ * DIM, 0.0f, 0.5f);
    for (int l = 0; l < LAYERS; l++) {
        TENSOR(DIM, 1.0f, 0.2f); TENSOR(DIM, 0.0f, 0.2f);                     /* attn norm */
        for (int k = 0; k < 3; k++) TENSOR(HEADS * HD * DIM, 0.0f, 0.9f);     /* wq wk wv: sharp attention */
        for (int k = 0; k < 3; k++) TENSOR(HEADS * HD, 0.0f, 0.1f);           /* bq bk bv */
        TENSOR(DIM * HEADS * HD, 0.0f, 0.25f); TENSOR(DIM, 0.0f, 0.1f);       /* wo bo */
        TENSOR(DIM, 1.0f, 0.2f); TENSOR(DIM, 0.0f, 0.2f);                     /* ffn norm */
        TENSOR(HID * DIM, 0.0f, 0.25f); TENSOR(HID, 0.0f, 0.1f);              /* w1 b1 */
        TENSOR(DIM * HID, 0.0f, 0.18f); TENSOR(DIM, 0.0f, 0.1f);              /* w2 b2 */
    }
    TENSOR(DIM, 1.0f, 0.2f); TENSOR(DIM, 0.0f, 0.2f); /* final norm */
    uint64_t woff = 320, wsize = pos - 320;
    memcpy(b + 96, &woff, 8), memcpy(b + 104, &wsize, 8);
    *size = pos;
#undef PUT_I32
#undef TENSOR
    return b;
}

/* The logits and attention of n random tokens: all in one ts_forward_all, then one at a
 * time, must be the same bits. */
static void check_blocks(const ts_model *m, const char *what, int n, int expect_window) {
    const ts_config *c = ts_model_config(m);
    ts_session *a = NULL, *b = NULL;
    ts_error e = {0, ""};
    ts_session_new(&a, m, n, &e), ts_session_new(&b, m, n, &e);
    CHECK_MSG(ts_session_record_attention(a, n, &e) == 0 && ts_session_record_attention(b, n, &e) == 0, "record: %s", e.msg);
    int *ids = (int *)malloc(sizeof(int) * (size_t)n), V = c->vocab_size;
    unsigned long long rng = 99;
    for (int i = 0; i < n; i++) ids[i] = (int)(ts_random_u32(&rng) % (unsigned)V);
    float *all = (float *)malloc(sizeof(float) * (size_t)n * V);
    CHECK_MSG(ts_forward_all(a, ids, n, 0, all, &e) == 0, "forward_all: %s", e.msg);
    long differ = 0;
    for (int i = 0; i < n; i++) {
        float *l = ts_forward(b, ids + i, 1, i, &e);
        differ += memcmp(l, all + (size_t)i * V, sizeof(float) * (size_t)V) != 0;
    }
    CHECK_MSG(differ == 0, "%s: %ld of %d positions' logits differ between a block and one token at a time", what, differ, n);
    int ra, rb;
    const float *wa = ts_session_attention(a, &ra), *wb = ts_session_attention(b, &rb);
    size_t count = (size_t)c->n_layers * c->n_heads * n * n;
    CHECK_MSG(ra == n && rb == n && wa && wb && !memcmp(wa, wb, count * sizeof(float)), "%s: recorded attention is the same bits", what);
    /* each row: sums to 1 over keys it can see, 0 elsewhere */
    double worst = 0;
    long outside = 0, inside_window = 0;
    for (int l = 0; l < c->n_layers; l++)
        for (int h = 0; h < c->n_heads; h++)
            for (int q = 0; q < n; q++) {
                const float *row = wa + (((size_t)l * c->n_heads + h) * n + q) * n;
                int window = m->layers[l].window, start = window > 0 && q - window + 1 > 0 ? q - window + 1 : 0;
                double sum = 0;
                for (int k = 0; k < n; k++) {
                    if (k < start || k > q) outside += row[k] != 0.0f;
                    else sum += row[k], inside_window += window > 0;
                }
                worst = fabs(sum - 1.0) > worst ? fabs(sum - 1.0) : worst;
            }
    CHECK_MSG(worst < 1e-5 && outside == 0, "%s: rows sum to 1 (worst %g), nothing outside (%ld)", what, worst, outside);
    CHECK_MSG(!expect_window || inside_window > 0, "%s: the local layer was seen", what);
    /* recording off frees it */
    CHECK_MSG(ts_session_record_attention(a, 0, &e) == 0 && ts_session_attention(a, &ra) == NULL && ra == 0, "recording off");
    free(ids), free(all);
    ts_session_free(a), ts_session_free(b);
}

static void test_blocks(void) {
    size_t size;
    unsigned char *neo = tiny_neo(&size);
    ts_model *m = NULL;
    ts_error e = {0, ""};
    CHECK_MSG(ts_model_load_memory(&m, neo, size, NULL, 0, &e) == 0, "tiny GPT-Neo: %s", e.msg);
    if (m) check_blocks(m, "GPT-Neo, window 5", 40, 1);
    ts_model_free(m);
    ts_aligned_free(neo);
    if (!have_shared && skip("blocks of stories260K")) return;
    ts_model_load(&m, model_path, tok_path, &e);
    check_blocks(m, "stories260K", 300, 0);
    ts_model_free(m);
}

/* ---- perplexity against a plain loop -------------------------------------------------- */

/* The mean -log p of every token but each chunk's first, one ts_forward per token, the
 * log-softmax in double written out here. */
static double plain_loss(const ts_model *m, const int *ids, int n, int chunk_len, long *predicted) {
    ts_session *s = NULL;
    ts_error e = {0, ""};
    ts_session_new(&s, m, chunk_len, &e);
    int V = ts_model_config(m)->vocab_size;
    double total = 0;
    *predicted = 0;
    for (int start = 0; start < n; start += chunk_len)
        for (int t = start; t < n && t < start + chunk_len; t++) {
            float *logits = ts_forward(s, ids + t, 1, t - start, &e);
            if (t + 1 >= n || t + 1 >= start + chunk_len) continue;
            double max = -INFINITY, sum = 0;
            for (int i = 0; i < V; i++) max = logits[i] > max ? logits[i] : max;
            for (int i = 0; i < V; i++) sum += exp(logits[i] - max);
            total += -((logits[ids[t + 1]] - max) - log(sum));
            (*predicted)++;
        }
    ts_session_free(s);
    return total / (double)*predicted;
}

static void test_perplexity(void) {
    if (!have_shared && skip("perplexity")) return;
    size_t size;
    char *text = (char *)read_file(text_path, &size);
    if (!text) {
        printf("SKIP perplexity: no %s\n", text_path);
        n_skip++;
        return;
    }
    ts_model *m = NULL;
    ts_error e = {0, ""};
    ts_model_load(&m, model_path, tok_path, &e);
    size_t len = 3000; /* about 1400 tokens: two full chunks of 512 and a short one */
    int *ids = (int *)malloc(sizeof(int) * (len + 3)), n;
    ts_encode(m, text, len, 1, ids, (int)len + 3, &n, &e);
    int chunk_lens[2] = {512, 100};
    for (int i = 0; i < 2; i++) {
        ts_session *s = NULL;
        ts_session_new(&s, m, chunk_lens[i], &e);
        long n_tokens, predicted;
        double loss, expect = plain_loss(m, ids, n, chunk_lens[i], &predicted);
        CHECK_MSG(ts_perplexity(s, text, len, &n_tokens, &loss, NULL, NULL, &e) == 0, "perplexity: %s", e.msg);
        CHECK_MSG(n_tokens == n && predicted == n - (n + chunk_lens[i] - 1) / chunk_lens[i], "token counts %ld %d", n_tokens, n);
        CHECK_MSG(fabs(loss - expect) < 1e-6, "chunks of %d: ts_perplexity %.9f, token by token %.9f", chunk_lens[i], loss, expect);
        CHECK_MSG(loss > 0.5 && loss < 3.0, "a loss of %f nats per token is plausible", loss);
        ts_session_free(s);
    }
    free(ids);
    munmap(text, size);
    ts_model_free(m);
}

/* Temperatures so small that logit / temperature overflows (1e-38, 1e-45, the smallest
 * denormal) sample what greedy does, in ts_sample and ts_generate, for a Llama model
 * (stories260K) and a GPT-Neo one (the synthetic file of the seed corpus); and a text with
 * no token to predict has no perplexity. */
typedef struct { char text[4096]; size_t len; } pieces;
static int keep_piece(void *user, int token, const char *piece, size_t len) {
    pieces *p = (pieces *)user;
    (void)token;
    if (p->len + len < sizeof p->text) memcpy(p->text + p->len, piece, len), p->len += len;
    return 0;
}
static void check_tiny_temperatures(const char *name, const char *path, const char *tok) {
    ts_model *m = NULL;
    ts_session *s = NULL;
    ts_error e = {0, ""};
    if (ts_model_load(&m, path, tok, &e) || ts_session_new(&s, m, 64, &e)) {
        CHECK_MSG(0, "%s: %s", name, e.msg);
        ts_model_free(m);
        return;
    }
    int V = ts_model_config(m)->vocab_size, token = ts_model_config(m)->bos_id >= 0 ? ts_model_config(m)->bos_id : 0;
    const float tiny[] = {1e-38f, 1e-45f, 0x1p-149f};
    float *logits = ts_forward(s, &token, 1, 0, &e), *copy = (float *)malloc((size_t)V * sizeof(float));
    CHECK_MSG(logits != NULL, "%s: %s", name, e.msg);
    int best = 0; /* the first most likely token, as llama2.c's greedy loop finds it */
    for (int i = 1; logits && i < V; i++)
        if (logits[i] > logits[best]) best = i;
    for (int k = 0; logits && k < 3; k++) {
        memcpy(copy, logits, (size_t)V * sizeof(float));
        int got = ts_sample(s, copy, tiny[k], 0.9f, &e);
        CHECK_MSG(got == best, "%s: temperature %g sampled %d, greedy takes %d", name, (double)tiny[k], got, best);
    }
    pieces greedy = {"", 0}, cold = {"", 0};
    ts_generate_opts o = {.temperature = 0.0f, .topp = 0.9f, .seed = 7, .steps = 24};
    CHECK_MSG(ts_generate(s, "Once", &o, keep_piece, &greedy, NULL, &e) == 0, "%s: %s", name, e.msg);
    for (int k = 0; k < 3; k++) {
        o.temperature = tiny[k], cold.len = 0;
        CHECK_MSG(ts_generate(s, "Once", &o, keep_piece, &cold, NULL, &e) == 0 && cold.len == greedy.len &&
                  memcmp(cold.text, greedy.text, greedy.len) == 0,
              "%s: the story at temperature %g is not the greedy one", name, (double)tiny[k]);
    }
    long n = -1;
    double loss = -1;
    CHECK_ERR(ts_perplexity(s, "", 0, &n, &loss, NULL, NULL, err), TS_E_ARG);
    free(copy);
    ts_session_free(s);
    ts_model_free(m);
}
static void test_tiny_temperatures(void) {
    check_tiny_temperatures("synthetic GPT-Neo", "fuzz/corpus/model/tsmf-neo-tokenizer", NULL);
    if (!have_shared && skip("tiny temperatures with stories260K")) return;
    check_tiny_temperatures("stories260K", model_path, tok_path);
}

/* ---- small pieces -------------------------------------------------------------------- */

/* ---- looking inside: ablation and the recorded internals --------------------------- */

/* stories260K, or NULL (a failed check) */
static ts_model *load_stories260k(void) {
    ts_model *m = NULL;
    ts_error e = {0, ""};
    CHECK_MSG(ts_model_load(&m, model_path, tok_path, &e) == 0, "load: %s", e.msg);
    return m;
}

/* With parts switched off, a block and one token at a time still give the same bits (logits,
 * residual stream, MLP activations); switching them back on gives the unablated bits. */
static void test_ablation(void) {
    if (!have_shared && skip("ablation")) return;
    ts_model *m = load_stories260k();
    ts_error e = {0, ""};
    if (!m) return;
    const ts_config *c = ts_model_config(m);
    int ids[64], n = 0, V = c->vocab_size;
    const char *text = "Once upon a time, there was a little girl named Lily. She loved to play outside.";
    CHECK_MSG(ts_encode(m, text, strlen(text), 1, ids, 64, &n, &e) == 0 && n > 20 && n <= 64, "encode: %d ids", n);
    ts_session *s[3] = {NULL, NULL, NULL};
    float *logits[3];
    for (int k = 0; k < 3; k++) {
        CHECK_MSG(ts_session_new(&s[k], m, 64, &e) == 0, "session: %s", e.msg);
        CHECK_MSG(ts_session_record_internals(s[k], n, &e) == 0, "record: %s", e.msg);
        logits[k] = (float *)calloc((size_t)n * V, sizeof(float));
    }
    for (int k = 0; k < 2; k++) /* sessions 0 and 1 ablated alike, session 2 not */
        CHECK_MSG(ts_session_ablate(s[k], TS_ABLATE_HEAD, 1, 3, 1, &e) == 0 && ts_session_ablate(s[k], TS_ABLATE_NEURON, 2, 100, 1, &e) == 0 &&
                      ts_session_ablate(s[k], TS_ABLATE_NEURON, 4, 0, 1, &e) == 0,
                  "ablate: %s", e.msg);
    CHECK_MSG(ts_forward_all(s[0], ids, n, 0, logits[0], &e) == 0, "block: %s", e.msg);
    for (int i = 0; i < n; i++) CHECK_MSG(ts_forward_all(s[1], ids + i, 1, i, logits[1] + (size_t)i * V, &e) == 0, "token %d", i);
    CHECK_MSG(ts_forward_all(s[2], ids, n, 0, logits[2], &e) == 0, "unablated: %s", e.msg);
    int rec = 0;
    size_t resid = (size_t)(c->n_layers + 1) * n * c->dim, mlp = (size_t)c->n_layers * n * c->hidden_dim;
    CHECK_MSG(memcmp(logits[0], logits[1], (size_t)n * V * sizeof(float)) == 0, "ablated logits: block and tokens agree to the bit");
    CHECK_MSG(memcmp(ts_session_residual(s[0], &rec), ts_session_residual(s[1], NULL), resid * sizeof(float)) == 0 && rec == n,
              "residual stream: block and tokens agree (%d positions)", rec);
    CHECK_MSG(memcmp(ts_session_mlp(s[0], NULL), ts_session_mlp(s[1], NULL), mlp * sizeof(float)) == 0, "MLP: block and tokens agree");
    CHECK_MSG(memcmp(logits[0], logits[2], (size_t)n * V * sizeof(float)) != 0, "the ablation changes the logits");
    const float *act = ts_session_mlp(s[0], NULL);
    int zero = 1;
    for (int t = 0; t < n; t++) zero &= act[((size_t)2 * n + t) * c->hidden_dim + 100] == 0.0f && act[(size_t)t * c->hidden_dim] != 0.0f;
    CHECK_MSG(zero, "neuron 2.100 is 0 at every position, neuron 0.0 is not");
    /* the lens of the last residual is the logits, bit for bit */
    float *lens = (float *)malloc((size_t)n * V * sizeof(float));
    CHECK_MSG(ts_logit_lens(s[2], ts_session_residual(s[2], NULL) + (size_t)c->n_layers * n * c->dim, n, lens, &e) == 0 &&
                  memcmp(lens, logits[2], (size_t)n * V * sizeof(float)) == 0,
              "ts_logit_lens of the last layer's residual = the logits");
    /* back on: the unablated bits */
    ts_session_ablate(s[0], TS_ABLATE_HEAD, 1, 3, 0, &e), ts_session_ablate(s[0], TS_ABLATE_NEURON, 2, 100, 0, &e);
    ts_session_ablate(s[0], TS_ABLATE_NEURON, 4, 0, 0, &e);
    CHECK_MSG(ts_forward_all(s[0], ids, n, 0, logits[0], &e) == 0 && memcmp(logits[0], logits[2], (size_t)n * V * sizeof(float)) == 0,
              "parts switched back on give the unablated logits");
    CHECK_ERR(ts_session_ablate(s[0], TS_ABLATE_HEAD, c->n_layers, 0, 1, err), TS_E_RANGE);
    CHECK_ERR(ts_session_ablate(s[0], TS_ABLATE_HEAD, 0, c->n_heads, 1, err), TS_E_RANGE);
    CHECK_ERR(ts_session_ablate(s[0], TS_ABLATE_NEURON, 0, -1, 1, err), TS_E_RANGE);
    CHECK_ERR(ts_session_ablate(s[0], 7, 0, 0, 1, err), TS_E_ARG);
    CHECK_ERR(ts_session_ablate(NULL, TS_ABLATE_HEAD, 0, 0, 1, err), TS_E_ARG);
    CHECK_ERR(ts_session_record_internals(s[0], 65, err), TS_E_RANGE);
    CHECK_ERR(ts_logit_lens(s[0], NULL, 1, lens, err), TS_E_ARG);
    CHECK_MSG(ts_session_record_internals(s[0], 0, &e) == 0 && ts_session_residual(s[0], &rec) == NULL && rec == 0, "recording stops");
    free(lens);
    for (int k = 0; k < 3; k++) free(logits[k]), ts_session_free(s[k]);
    ts_model_free(m);
}

/* ---- stories past the context: the window slides ------------------------------------ */

typedef struct { int tokens[256], n; float *logits; int *logit_pos, n_logits, vocab; } slide_log;
static int slide_piece(void *user, int token, const char *piece, size_t len) {
    slide_log *l = (slide_log *)user;
    (void)piece, (void)len;
    if (l->n < 256) l->tokens[l->n++] = token;
    return 0;
}
static void slide_logits(void *user, int pos, float *logits) {
    slide_log *l = (slide_log *)user;
    if (l->n_logits < 256) memcpy(l->logits + (size_t)l->n_logits * l->vocab, logits, (size_t)l->vocab * sizeof(float)), l->logit_pos[l->n_logits++] = pos;
}

/* A session of 24 positions runs 120 steps: each time the cache is full the last 12 tokens
 * run again from position 0, and the logits there are those of a fresh run of those 12. */
static void test_window_slides(void) {
    if (!have_shared && skip("window slides")) return;
    ts_model *m = load_stories260k();
    ts_error e = {0, ""};
    if (!m) return;
    int V = ts_model_config(m)->vocab_size;
    slide_log l = {{1}, 1, (float *)malloc((size_t)256 * V * sizeof(float)), (int *)malloc(256 * sizeof(int)), 0, V};
    ts_session *s = NULL, *fresh = NULL;
    CHECK_MSG(ts_session_new(&s, m, 24, &e) == 0 && ts_session_new(&fresh, m, 24, &e) == 0, "sessions: %s", e.msg);
    ts_generate_opts o = {.temperature = 0.9f, .topp = 0.9f, .seed = 3, .steps = 120, .on_logits = slide_logits};
    ts_generate_stats st;
    CHECK_MSG(ts_generate(s, "Once upon a time", &o, slide_piece, &l, &st, &e) == 0, "generate: %s", e.msg);
    CHECK_MSG(st.positions == 120 && st.slides >= 8, "120 positions in a window of 24: %d positions, %d slides", st.positions, st.slides);
    /* slides at absolute positions 24, 37, 50, ... (12 kept, 12 new): the 12 tokens up to and including the one there */
    float *want = (float *)malloc((size_t)12 * V * sizeof(float));
    int compared = 0;
    for (int i = 0; i < l.n_logits; i++) {
        int pos = l.logit_pos[i];
        if (pos < 24 || (pos - 24) % 13 != 0 || pos >= l.n) continue;
        CHECK_MSG(ts_forward_all(fresh, l.tokens + pos - 11, 12, 0, want, &e) == 0, "fresh run: %s", e.msg);
        CHECK_MSG(memcmp(l.logits + (size_t)i * V, want + (size_t)11 * V, (size_t)V * sizeof(float)) == 0,
                  "after the slide at position %d: the logits of the kept tokens run from scratch", pos);
        compared++;
    }
    CHECK_MSG(compared >= 6, "%d slides compared", compared);
    free(want), free(l.logits), free(l.logit_pos);
    ts_session_free(s), ts_session_free(fresh);
    ts_model_free(m);
}

/* ts_session_copy and ts_session_prefill: samples from copies of one prefilled session are
 * the samples of fresh sessions, byte for byte; the prefilled session is left as it was. */
static void test_session_copy(void) {
    if (!have_shared && skip("session copy")) return;
    ts_model *m = load_stories260k();
    ts_error e = {0, ""};
    if (!m) return;
    ts_session *base = NULL;
    CHECK_MSG(ts_session_new(&base, m, 100, &e) == 0, "session: %s", e.msg);
    ts_generate_opts o = {.temperature = 0.9f, .topp = 0.9f, .steps = 100};
    CHECK_MSG(ts_session_prefill(base, "Once upon a time, Lily", &o, &e) == 0, "prefill: %s", e.msg);
    for (int k = 0; k < 3; k++) {
        ts_session *copy = NULL, *fresh = NULL;
        story_job a, b;
        memset(&a, 0, sizeof a), memset(&b, 0, sizeof b);
        o.seed = 40 + (unsigned long long)k;
        ts_generate_stats st;
        CHECK_MSG(ts_session_copy(&copy, base, &e) == 0 && ts_generate(copy, "Once upon a time, Lily", &o, collect, &a, &st, &e) == 0,
                  "copy %d: %s", k, e.msg);
        CHECK_MSG(st.prompt_seconds < 0.001, "the copy does not run the prompt again (%.4f s)", st.prompt_seconds);
        CHECK_MSG(ts_session_new(&fresh, m, 100, &e) == 0 && ts_generate(fresh, "Once upon a time, Lily", &o, collect, &b, NULL, &e) == 0,
                  "fresh %d", k);
        CHECK_MSG(a.n > 10 && a.n == b.n && memcmp(a.tokens, b.tokens, (size_t)a.n * sizeof(int)) == 0,
                  "sample %d from a copy = from scratch (%d, %d tokens)", k, a.n, b.n);
        ts_session_free(copy), ts_session_free(fresh);
    }
    CHECK_ERR(ts_session_copy(NULL, base, err), TS_E_ARG);
    ts_session *none = (ts_session *)&none;
    CHECK_ERR(ts_session_copy(&none, NULL, err), TS_E_ARG);
    ts_session_free(base);
    ts_model_free(m);
}

static void test_top_k(void) {
    float logits[6] = {1.0f, 3.0f, 2.0f, 3.0f, -1.0f, 0.5f};
    int ids[6];
    float probs[6];
    CHECK_MSG(ts_top_k(logits, 6, 3, ids, probs) == 3 && ids[0] == 1 && ids[1] == 3 && ids[2] == 2, "top 3, ties to the lower id: %d %d %d",
          ids[0], ids[1], ids[2]);
    double sum = 0;
    for (int i = 0; i < 6; i++) sum += exp(logits[i] - 3.0);
    CHECK_MSG(fabs(probs[0] - 1.0 / sum) < 1e-7 && fabs(probs[2] - exp(-1.0) / sum) < 1e-7, "probabilities are the softmax");
    CHECK_MSG(ts_top_k(logits, 6, 10, ids, NULL) == 6 && ids[5] == 4, "k larger than n gives all, least likely last");
}

int main(void) {
    shared_dir = getenv("SHARED");
    if (!shared_dir || !*shared_dir) shared_dir = "../shared";
    snprintf(model_path, sizeof model_path, "%.900s/models/stories260K.bin", shared_dir);
    snprintf(tok_path, sizeof tok_path, "%.900s/models/tok512.bin", shared_dir);
    snprintf(text_path, sizeof text_path, "%.900s/data/tinystories-valid-head.txt", shared_dir);
    FILE *f = fopen(model_path, "rb");
    have_shared = f != NULL;
    if (f) fclose(f);
    struct { void (*fn)(void); const char *name; } groups[] = {
        {test_errors_without_model, "errors without a model"}, {test_errors_with_model, "errors with a model"},
        {test_top_k, "top k"}, {test_blocks, "blocks"}, {test_generate_callbacks, "generate callbacks"},
        {test_threads, "threads"}, {test_perplexity, "perplexity"}, {test_tiny_temperatures, "tiny temperatures"},
        {test_ablation, "ablation and internals"}, {test_window_slides, "window slides"},
        {test_session_copy, "session copy"}};
    for (size_t i = 0; i < sizeof groups / sizeof groups[0]; i++) {
        int failed_before = n_fail, skipped_before = n_skip;
        double t0 = ts_now();
        groups[i].fn();
        const char *status = n_fail > failed_before ? "FAIL" : n_skip > skipped_before ? "skip" : "ok";
        printf("%-4s %s (%.1f s)\n", status, groups[i].name, ts_now() - t0);
    }
    return check_summary("test_api");
}
