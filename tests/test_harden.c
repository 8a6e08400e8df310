/* tests/test_harden.c -- hostile input through the library API (issue 7).
 *
 *   make test_harden && ./test_harden        (from the repository root; make test runs it,
 *                                             make test-asan runs it under the sanitizers)
 *
 * Model files and tokenizers come from fuzz/synth.h (synthetic, every layout), then get
 * broken on purpose: each header field set to a bad value must fail to load with a message
 * naming the field and the value; broken weights (NaN, denormal scales) must still run;
 * sessions must be sized by the positions asked for and refuse what the machine cannot hold.
 * Every failed check prints file:line and what; the last line counts passes and failures.
 */
#define RUN_NO_MAIN
#include "../run.c"
#include "../fuzz/synth.h"

#include <sys/stat.h>

#include "check.h"

/* ---- building and breaking files ---- */

static sy_buf make_model(sy_model spec) {
    sy_buf b = {0};
    sy_write_model(&b, &spec);
    return b;
}
static void put_i32_at(sy_buf *b, size_t at, int32_t v) {
    for (int i = 0; i < 4; i++) b->p[at + i] = (unsigned char)((uint32_t)v >> (8 * i));
}
static void put_f32_at(sy_buf *b, size_t at, float f) {
    int32_t v;
    memcpy(&v, &f, 4);
    put_i32_at(b, at, v);
}

/* Loads from a private 64-aligned copy (as the mapped file would be). */
static int load(const sy_buf *b, const sy_buf *tok, ts_model **m, ts_error *err) {
    static void *copies[2];
    free(copies[0]), free(copies[1]);
    copies[0] = copies[1] = NULL;
    if (posix_memalign(&copies[0], 64, b->n ? b->n : 1)) abort();
    memcpy(copies[0], b->p, b->n);
    if (tok) {
        copies[1] = malloc(tok->n ? tok->n : 1);
        memcpy(copies[1], tok->p, tok->n);
    }
    err->msg[0] = '\0';
    return ts_model_load_memory(m, copies[0], b->n, copies[1], tok ? tok->n : 0, err);
}

/* The synthetic vocabulary (fuzz/synth.h) on a carrier model, loaded; model and tok keep
 * the bytes for the test's own variations. NULL (reported) if it does not load. */
static ts_model *load_synthetic(sy_buf *model, sy_buf *tok) {
    sy_write_carrier(model, SY_VOCAB);
    sy_write_tokenizer(tok, 1);
    ts_model *m = NULL;
    ts_error err;
    int rc = load(model, tok, &m, &err);
    CHECK_MSG(rc == TS_OK, "the synthetic vocabulary on a carrier model: %s", err.msg);
    return rc == TS_OK ? m : NULL;
}

/* The file must fail to load, with a message holding both `field` and `value`. */
static void expect_refused(const char *what, const sy_buf *b, const sy_buf *tok, const char *field, const char *value) {
    ts_model *m = NULL;
    ts_error err;
    int rc = load(b, tok, &m, &err);
    CHECK_MSG(rc != TS_OK && m == NULL && strstr(err.msg, field) && strstr(err.msg, value),
              "%s: expected a refusal naming \"%s\" and \"%s\", got rc %d: %s", what, field, value, rc, err.msg);
    ts_model_free(m);
}

/* ---- 1. every header field, every layout ---- */

typedef struct { const char *name; size_t offset; int32_t value; const char *shown; } bad_int;

/* Each bad value written alone (at its offset + shift) into a fresh file of `spec`: each must
 * be refused naming the field and the value. `skip` (may be NULL) leaves some out. */
static void expect_ints_refused(const char *what, sy_model spec, const bad_int *bad, size_t count, size_t shift,
                                int (*skip)(const bad_int *)) {
    for (size_t i = 0; i < count; i++) {
        if (skip && skip(&bad[i])) continue;
        sy_buf b = make_model(spec);
        put_i32_at(&b, bad[i].offset + shift, bad[i].value);
        expect_refused(what, &b, NULL, bad[i].name, bad[i].shown);
        free(b.p);
    }
}
static int legacy_sign_trick(const bad_int *bad) { return bad->offset == 20 && bad->value == INT_MIN; }

static void test_header_fields(void) {
    sy_model legacy = {SY_LEGACY, 8, 12, 2, 2, 1, 16, 8, 1, 0, 0, 0, NULL, 0, 1, 0};
    bad_int legacy_bad[] = {
        {"dim", 0, 0, "dim = 0"},                 {"dim", 0, -8, "dim = -8"},
        {"hidden_dim", 4, 0, "0"},                {"hidden_dim", 4, 1 << 30, "1073741824"},
        {"n_layers", 8, 0, "0"},                  {"n_layers", 8, 100000, "100000"},
        {"n_heads", 12, 3, "3"},                  {"n_heads", 12, 0, "0"},
        {"n_heads", 12, INT_MIN, "-2147483648"},  {"n_kv_heads", 16, 0, "0"},
        {"n_kv_heads", 16, 3, "3"},               {"n_kv_heads", 16, -1, "-1"},
        {"vocab_size", 20, 0, "0"},               {"vocab_size", 20, INT_MIN, "-2147483648"},
        {"vocab_size", 20, 1 << 30, "1073741824"}, {"seq_len", 24, 0, "0"},
        {"seq_len", 24, -1, "-1"},                {"seq_len", 24, INT_MAX, "2147483647"},
    };
    size_t n_legacy_bad = sizeof legacy_bad / sizeof legacy_bad[0];
    expect_ints_refused("legacy", legacy, legacy_bad, n_legacy_bad, 0, NULL);
    /* a header that fits together but not the file: the tensor that runs off the end */
    sy_buf b = make_model(legacy);
    put_i32_at(&b, 20, 1000);
    expect_refused("legacy vocab 1000", &b, NULL, "model file is truncated", "token embedding");
    put_i32_at(&b, 20, 15);
    expect_refused("legacy vocab 15", &b, NULL, "bytes", "header describes");
    free(b.p);

    /* llama2.c v1 / v2: the same 7 fields 8 bytes later, then version, shared, group_size */
    sy_model v2 = {SY_V2, 8, 16, 2, 2, 1, 16, 8, 1, 1, 4, 0, NULL, 0, 4, 0};
    expect_ints_refused("v2", v2, legacy_bad, n_legacy_bad, 8, legacy_sign_trick); /* the sign trick is legacy's only */
    bad_int v2_bad[] = {{"version", 4, 3, "3"}, {"version", 4, -1, "-1"}, {"group_size", 37, 0, "0"},
                        {"group_size", 37, 3, "3"}, {"group_size", 37, -4, "-4"}};
    expect_ints_refused("v2", v2, v2_bad, sizeof v2_bad / sizeof v2_bad[0], 0, NULL);
    b = make_model(v2);
    b.p[36] = 7;
    expect_refused("v2 shared byte", &b, NULL, "shared_classifier", "7");
    free(b.p);

    /* TSMF: every field of the 256-byte header and the layer windows */
    sy_model tsmf = {SY_TSMF, 8, 16, 2, 2, 1, 16, 8, 0, 1, 8, 1, NULL, 0, 6, 0}; /* GPT-Neo shape, Q8_0 */
    bad_int tsmf_bad[] = {
        {"version", 4, 2, "2"},           {"header_size", 8, 255, "255"},    {"arch", 12, 3, "3"},
        {"dim", 16, 0, "0"},              {"hidden_dim", 20, -1, "-1"},      {"n_layers", 24, 0, "0"},
        {"n_layers", 24, 1025, "1025"},   {"n_heads", 28, 0, "0"},           {"n_kv_heads", 32, 3, "3"},
        {"head_dim", 36, 0, "0"},         {"head_dim", 36, 1 << 13, "8192"}, {"vocab_size", 40, 0, "0"},
        {"seq_len", 44, 1 << 21, "2097152"}, {"norm_kind", 48, 3, "3"},     {"act_kind", 52, 0, "0"},
        {"pos_kind", 56, 7, "7"},         {"flags", 60, 64, "0x40"},         {"weight_type", 64, 3, "3"},
        {"group_size", 68, 0, "0"},       {"group_size", 68, 5000, "5000"}, {"tokenizer_kind", 80, 3, "3"},
        {"bos_id", 84, 16, "16"},         {"eos_id", 88, -2, "-2"},          {"layer_window[1]", 260, -1, "-1"},
    };
    expect_ints_refused("TSMF", tsmf, tsmf_bad, sizeof tsmf_bad / sizeof tsmf_bad[0], 0, NULL);
    struct { const char *name; size_t offset; float value; const char *shown; int rope; } floats[] = {
        {"norm_eps", 76, NAN, "nan", 0},      {"norm_eps", 76, INFINITY, "inf", 0}, {"norm_eps", 76, -1.0f, "-1", 0},
        {"rope_theta", 72, NAN, "nan", 1},    {"rope_theta", 72, INFINITY, "inf", 1},
        {"rope_theta", 72, 0.0f, "0", 1},     {"rope_theta", 72, -INFINITY, "-inf", 1},
    };
    sy_model llama = {SY_TSMF, 8, 12, 2, 2, 1, 16, 8, 1, 0, 0, 0, NULL, 0, 5, 0};
    for (size_t i = 0; i < sizeof floats / sizeof floats[0]; i++) {
        b = make_model(floats[i].rope ? llama : tsmf);
        put_f32_at(&b, floats[i].offset, floats[i].value);
        expect_refused("TSMF float", &b, NULL, floats[i].name, floats[i].shown);
        free(b.p);
    }
    /* offsets and sizes (u64): misaligned, past the end, overlapping, wrapping */
    struct { const char *name; size_t offset; uint64_t value; const char *shown; } offsets[] = {
        {"weights_offset", 96, 0, "= 0"},
        {"weights_offset", 96, 65, "= 65"},
        {"weights_offset", 96, 1ull << 40, "= 1099511627776"},
        {"weights_size", 104, UINT64_MAX, "18446744073709551615"},
        {"weights_size", 104, 64, "weights_size"}, /* too small for the tensors: names the region */
        {"tokenizer_offset", 112, 64, "= 64"},
        {"tokenizer_size", 120, UINT64_MAX - 63, "18446744073709551552"},
    };
    sy_buf tok = {0};
    sy_write_tokenizer(&tok, 1);
    sy_model with_tok = {SY_TSMF, 4, 8, 1, 2, 1, SY_VOCAB, 8, 1, 0, 0, 0, tok.p, tok.n, 9, 0};
    for (size_t i = 0; i < sizeof offsets / sizeof offsets[0]; i++) {
        b = make_model(with_tok);
        sy_patch_u64(&b, offsets[i].offset, offsets[i].value);
        expect_refused("TSMF offsets", &b, NULL, offsets[i].name, offsets[i].shown);
        free(b.p);
    }
    /* n_heads x head_dim over the bound, each alone in range */
    b = make_model(tsmf);
    put_i32_at(&b, 28, 1024), put_i32_at(&b, 32, 1), put_i32_at(&b, 36, 4096);
    expect_refused("TSMF q_dim", &b, NULL, "n_heads x head_dim", "1024 x 4096");
    free(b.p);
    free(tok.p);
}

/* ---- 2. tokenizer files ---- */

static void test_tokenizers(void) {
    sy_buf model = {0}, tok = {0};
    ts_model *m = load_synthetic(&model, &tok);
    ts_error err;
    ts_model_free(m);
    /* too short to hold the vocabulary at all: refused before allocating for it */
    char vocab[32];
    snprintf(vocab, sizeof vocab, "%d tokens", SY_VOCAB);
    sy_buf tiny = {tok.p, 10, 10};
    expect_refused("10-byte tokenizer", &model, &tiny, "10 bytes", vocab);
    sy_buf none = {tok.p, 0, 0};
    expect_refused("empty tokenizer", &model, &none, "0 bytes", "tokens");
    /* record 0 (<unk>) at offset 4: score, length */
    sy_buf bad = {malloc(tok.n), tok.n, tok.n};
    float scores[] = {NAN, INFINITY, -INFINITY};
    const char *shown[] = {"nan", "inf", "-inf"};
    for (int i = 0; i < 3; i++) {
        memcpy(bad.p, tok.p, tok.n);
        put_f32_at(&bad, 4, scores[i]);
        expect_refused("tokenizer score", &model, &bad, "score", shown[i]);
    }
    int32_t lens[] = {-1, INT_MIN, INT_MAX, 1 << 20};
    const char *lshown[] = {"length -1", "length -2147483648", "length 2147483647", "length 1048576"};
    for (int i = 0; i < 4; i++) {
        memcpy(bad.p, tok.p, tok.n);
        put_i32_at(&bad, 8, lens[i]);
        expect_refused("tokenizer length", &model, &bad, "token 0", lshown[i]);
    }
    /* every truncation: refused with a message, never a read past the end (ASan builds) */
    int refused = 0;
    for (size_t n = 0; n < tok.n; n++) {
        sy_buf cut = {tok.p, n, n};
        m = NULL;
        refused += load(&model, &cut, &m, &err) != TS_OK && m == NULL && strstr(err.msg, "tokenizer") != NULL;
        ts_model_free(m);
    }
    CHECK_MSG(refused == (int)tok.n, "%d of %zu truncated tokenizers refused with a message", refused, tok.n);
    /* one byte more: it belongs to a larger vocabulary */
    sy_buf longer = {0};
    sy_put(&longer, tok.p, tok.n);
    sy_put(&longer, "x", 1);
    expect_refused("tokenizer + 1 byte", &model, &longer, "1 bytes after", vocab);
    free(longer.p), free(bad.p), free(tok.p), free(model.p);

    /* pieces crafted to share one hash slot: refused, instead of quadratic loading and long
     * lookups (vocabulary 512: a 1024-slot table) */
    sy_buf carrier = {0}, crafted = {0};
    sy_write_carrier(&carrier, 512);
    sy_u32(&crafted, 16);
    int colliding = 0;
    for (long k = 0, written = 0; written < 512; k++) {
        char piece[24];
        int len = snprintf(piece, sizeof piece, "c%ld", k);
        int collides = (ts_hash_bytes(piece, (size_t)len, "", 0) & 1023) == 0;
        if (!collides && written >= 512 - 300 + colliding) continue; /* room left for the colliding ones */
        colliding += collides;
        sy_f32(&crafted, 0.0f), sy_i32(&crafted, len), sy_put(&crafted, piece, (size_t)len), written++;
    }
    clock_t t0 = clock();
    expect_refused("colliding pieces", &carrier, &crafted, "share its hash slots", "tokenizer token");
    CHECK_MSG(clock() - t0 < CLOCKS_PER_SEC, "refused fast: %.3f s", (double)(clock() - t0) / CLOCKS_PER_SEC);
    free(carrier.p), free(crafted.p);
}

/* ---- 2b. GPT-2 sections embedded in TSMF (tokenizer_kind 2) ---- */

static sy_buf gpt2_file(const sy_buf *section, int vocab) {
    sy_model spec = {SY_TSMF, 4, 8, 1, 2, 1, vocab, 8, 1, 0, 0, 1, section->p, section->n, 12, 1};
    return make_model(spec);
}

static void test_gpt2_sections(void) {
    sy_buf section = {0};
    sy_write_gpt2_tokenizer(&section);
    sy_buf b = gpt2_file(&section, SY_GPT2_VOCAB);
    ts_model *m = NULL;
    ts_error err;
    CHECK(load(&b, NULL, &m, &err) == TS_OK && m && m->tokenizer.kind == TS_TOK_GPT2);
    ts_model_free(m);
    size_t T = (size_t)ts_read_u64(b.p + 112); /* tokenizer_offset */
    size_t merges = T + 8 + 256 * 5;                            /* after the byte tokens ... */
    for (int i = 0; i < SY_GPT2_N_MERGES; i++) merges += 4 + strlen(sy_gpt2_merges[i][0]) + strlen(sy_gpt2_merges[i][1]);
    merges += 4 + 13;                                           /* ... the merged ones and <|endoftext|> */
    char vocab[48], outside[48], n_merges[80];
    snprintf(vocab, sizeof vocab, "vocab_size = %d", SY_GPT2_VOCAB);
    snprintf(outside, sizeof outside, "outside 0..%d", SY_GPT2_VOCAB - 1);
    snprintf(n_merges, sizeof n_merges, "%d bytes of merge records", SY_GPT2_N_MERGES * 12);
    struct { size_t at; int32_t value; const char *field, *shown; } bad[] = {
        {T, SY_GPT2_VOCAB + 1, "n_tokens = ", vocab},
        {T, -1, "n_tokens = -1", vocab},
        {T + 4, -1, "n_merges = -1", "12 bytes each"},
        {T + 4, 1 << 30, "n_merges = 1073741824", "12 bytes each"},
        {T + 4, SY_GPT2_N_MERGES + 1, "n_merges = ", n_merges},
        {T + 8, -1, "token 0", "length -1"},
        {T + 8, INT_MAX, "token 0", "length 2147483647"},
        {merges, 99999, "merge 0 (99999", outside},
        {merges + 4, -7, "merge 0", "-7"},
        {merges + 8, 257, "merge 0: token 257", "not token 116 followed by token 104"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        sy_buf broken = gpt2_file(&section, SY_GPT2_VOCAB);
        put_i32_at(&broken, bad[i].at, bad[i].value);
        expect_refused("GPT-2 section", &broken, NULL, bad[i].field, bad[i].shown);
        free(broken.p);
    }
    sy_buf dup = gpt2_file(&section, SY_GPT2_VOCAB);
    dup.p[T + 8 + 5 + 4] = 0; /* token 1 (the byte 0x01) becomes a second 0x00 */
    expect_refused("GPT-2 duplicate byte", &dup, NULL, "tokens 0 and 1", "byte 0x00");
    free(dup.p), free(b.p), free(section.p);

    /* merges crafted to fill one run of hash slots: refused, not a slow table */
    enum { M = 300 };
    /* 300 merges: a table of 1024 slots */
    sy_buf crafted = {0};
    sy_i32(&crafted, 256 + M), sy_i32(&crafted, M);
    for (int i = 0; i < 256; i++) {
        unsigned char byte = (unsigned char)i;
        sy_i32(&crafted, 1), sy_put(&crafted, &byte, 1);
    }
    int pairs[M][2], n = 0;
    for (int l = 0; l < 256 && n < M; l++)
        for (int r = 0; r < 256 && n < M; r++)
            if ((ts_pair_hash((int32_t[2]){l, r}) & 1023) < 5) pairs[n][0] = l, pairs[n][1] = r, n++;
    for (int i = 0; i < n; i++) {
        unsigned char two[2] = {(unsigned char)pairs[i][0], (unsigned char)pairs[i][1]};
        sy_i32(&crafted, 2), sy_put(&crafted, two, 2);
    }
    for (int i = 0; i < n; i++) sy_i32(&crafted, pairs[i][0]), sy_i32(&crafted, pairs[i][1]), sy_i32(&crafted, 256 + i);
    CHECK_MSG(n == M, "found %d colliding pairs", n);
    b = gpt2_file(&crafted, 256 + M);
    clock_t t0 = clock();
    expect_refused("GPT-2 colliding merges", &b, NULL, "share its hash slots", "merge");
    CHECK_MSG(clock() - t0 < CLOCKS_PER_SEC, "refused fast: %.3f s", (double)(clock() - t0) / CLOCKS_PER_SEC);
    free(b.p), free(crafted.p);
}

/* ---- 3. broken weights still run: NaN everywhere, denormal Q8_0 scales ---- */

static int count_pieces(void *user, int token, const char *piece, size_t len) {
    (void)token, (void)piece, (void)len;
    ++*(int *)user;
    return 0;
}

/* Overwrites every 4-byte word from `from` to the end except the embedded tokenizer. */
static void fill_words(sy_buf *b, size_t from, size_t to, float value) {
    for (size_t at = from; at + 4 <= to; at += 4) put_f32_at(b, at, value);
}

static void run_broken(const char *what, const sy_buf *b) {
    ts_model *m = NULL;
    ts_session *s = NULL;
    ts_error err;
    int rc = load(b, NULL, &m, &err);
    CHECK_MSG(rc == TS_OK, "%s: loads (%s)", what, err.msg);
    if (rc) return;
    CHECK(ts_session_new(&s, m, 8, &err) == TS_OK);
    ts_generate_opts greedy = {.temperature = 0.0f, .topp = 0.9f, .seed = 1, .steps = 8};
    ts_generate_opts topp = {.temperature = 1.0f, .topp = 0.9f, .seed = 7, .steps = 8};
    ts_generate_opts full = {.temperature = 0.8f, .topp = 0.0f, .seed = 7, .steps = 8};
    const ts_generate_opts *opts[] = {&greedy, &topp, &full};
    for (int i = 0; i < 3; i++) {
        int pieces = 0;
        rc = ts_generate(s, "Once upon", opts[i], count_pieces, &pieces, NULL, &err);
        CHECK_MSG(rc == TS_OK && pieces >= 1 && pieces <= 8, "%s: generation %d: rc %d, %d pieces: %s", what, i, rc, pieces, err.msg);
    }
    ts_session_free(s);
    ts_model_free(m);
}

static void test_broken_weights(void) {
    sy_buf tok = {0};
    sy_write_tokenizer(&tok, 1);
    sy_model shapes[] = {
        {SY_TSMF, 8, 16, 2, 2, 1, SY_VOCAB, 8, 1, 0, 0, 0, tok.p, tok.n, 1, 0}, /* f32 Llama */
        {SY_TSMF, 8, 16, 2, 2, 2, SY_VOCAB, 8, 0, 1, 8, 0, tok.p, tok.n, 2, 0}, /* Q8_0 Llama */
        {SY_TSMF, 8, 12, 2, 2, 1, SY_VOCAB, 8, 1, 1, 5, 1, tok.p, tok.n, 3, 0}, /* Q8_0 GPT-Neo, short groups */
        {SY_TSMF, 8, 12, 2, 2, 1, SY_VOCAB, 8, 0, 2, 0, 1, tok.p, tok.n, 4, 0}, /* BF16 GPT-Neo */
    };
    const char *names[] = {"f32", "Q8_0", "Q8_0 neo", "BF16 neo"};
    float values[] = {NAN, INFINITY, 1e-40f /* denormal */, -3e38f};
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++)
        for (size_t v = 0; v < sizeof values / sizeof values[0]; v++) {
            sy_buf b = make_model(shapes[i]);
            uint64_t w0 = ts_read_u64(b.p + 96), w_size = ts_read_u64(b.p + 104);
            fill_words(&b, (size_t)w0, (size_t)(w0 + w_size), values[v]);
            char what[64];
            snprintf(what, sizeof what, "%s weights all %g", names[i], (double)values[v]);
            run_broken(what, &b);
            free(b.p);
        }
    /* a one-token vocabulary: top-p has nothing to cut */
    sy_model one = {SY_V1, 8, 8, 1, 2, 2, 1, 8, 1, 0, 0, 0, NULL, 0, 5, 0};
    sy_buf b = make_model(one);
    ts_model *m = NULL;
    ts_session *s = NULL;
    ts_error err;
    int rc = load(&b, NULL, &m, &err);
    CHECK_MSG(rc != TS_OK && strstr(err.msg, "bos_id"), "a 1-token llama2.c model has no room for BOS 1: %s", err.msg);
    free(b.p);
    sy_model tiny = {SY_TSMF, 8, 8, 1, 2, 2, 1, 8, 1, 0, 0, 0, NULL, 0, 5, 0}; /* TSMF: bos/eos -1 */
    b = make_model(tiny);
    CHECK(load(&b, NULL, &m, &err) == TS_OK);
    if (m) {
        CHECK(ts_session_new(&s, m, 2, &err) == TS_OK);
        int token = 0;
        float *logits = ts_forward(s, &token, 1, 0, &err);
        CHECK(logits != NULL && ts_sample(s, logits, 1.0f, 0.5f, NULL) == 0);
        float nan_logit[4] = {NAN, NAN, NAN, NAN}; /* the vocabulary has 1 token: only [0] is read */
        CHECK(ts_sample(s, nan_logit, 1.0f, 0.5f, NULL) == 0 && ts_sample(s, nan_logit, 0.0f, 0.5f, NULL) == 0);
        ts_session_free(s);
        ts_model_free(m);
    }
    free(b.p);
    free(tok.p);
}

/* ---- 4. the sampler on NaN logits: an id in range, whatever the settings ---- */

static void test_sampler_nan(void) {
    sy_model spec = {SY_TSMF, 8, 8, 1, 2, 2, 64, 8, 1, 0, 0, 0, NULL, 0, 5, 0};
    sy_buf b = make_model(spec);
    ts_model *m = NULL;
    ts_session *s = NULL;
    ts_error err;
    CHECK(load(&b, NULL, &m, &err) == TS_OK && ts_session_new(&s, m, 4, &err) == TS_OK);
    float logits[64];
    float settings[][2] = {{0.0f, 0.9f}, {1.0f, 0.9f}, {1.0f, 0.0f}, {1.0f, 1.0f}, {1e-30f, 0.5f}, {NAN, NAN}, {1.0f, NAN}};
    for (int fill = 0; fill < 3; fill++)
        for (size_t k = 0; k < sizeof settings / sizeof settings[0]; k++) {
            for (int i = 0; i < 64; i++) logits[i] = fill == 0 ? NAN : fill == 1 ? (i % 2 ? NAN : 1.0f) : (i == 5 ? INFINITY : 0.0f);
            int id = ts_sample(s, logits, settings[k][0], settings[k][1], NULL);
            /* NaN settings are refused (an error, not a draw); NaN logits still give a valid id */
            int bad_settings = isnan(settings[k][0]) || isnan(settings[k][1]);
            CHECK_MSG(bad_settings ? id == TS_E_ARG : (id >= 0 && id < 64), "fill %d, temperature %g top-p %g: id %d", fill,
                      (double)settings[k][0], (double)settings[k][1], id);
        }
    ts_session_free(s);
    ts_model_free(m);
    free(b.p);
}

/* ---- 5. sessions: sized by the positions asked for; refused beyond physical memory ---- */

static void test_session_memory(void) {
    /* 1024 layers, 2^20 positions: a full KV cache of 1024 * 2^20 * 16 * 4 * 2 = 128 GiB
     * from a 5 MB file (v1 has no RoPE tables to tie seq_len to the file size) */
    sy_model spec = {SY_V1, 16, 1, 1024, 1, 1, 16, 1 << 20, 1, 0, 0, 0, NULL, 0, 9, 0};
    sy_buf b = make_model(spec);
    ts_model *m = NULL;
    ts_session *s = NULL;
    ts_error err;
    CHECK(load(&b, NULL, &m, &err) == TS_OK);
    if (!m) return;
    CHECK(ts_session_new(&s, m, 16, &err) == TS_OK && ts_session_max_positions(s) == 16);
    int tokens[16] = {1, 3, 5, 7};
    CHECK(ts_forward(s, tokens, 16, 0, &err) != NULL);
    CHECK(ts_forward(s, tokens, 1, 16, &err) == NULL && strstr(err.msg, "outside this session's 16 positions"));
    ts_session_free(s);
    s = NULL;
    size_t phys = ts_physical_memory();
    double full_kv = 1024.0 * (1 << 20) * 16 * 4 * 2;
    if (phys == 0 || (double)phys > full_kv) printf("test_session_memory: the machine holds a 128 GiB KV cache, refusal not tested\n");
    else {
        int rc = ts_session_new(&s, m, 0, &err);
        CHECK_MSG(rc == TS_E_NOMEM && s == NULL && strstr(err.msg, "1048576 positions") && strstr(err.msg, "KV cache 131072 MB"),
                  "full-context session refused: rc %d: %s", rc, err.msg);
        ts_session_free(s);
    }
    ts_model_free(m);
    free(b.p);
    /* the positions asked for, capped by seq_len; 0 = seq_len */
    sy_model small = {SY_TSMF, 8, 12, 2, 2, 1, 16, 8, 1, 0, 0, 0, NULL, 0, 5, 0};
    b = make_model(small);
    CHECK(load(&b, NULL, &m, &err) == TS_OK);
    int asks[][2] = {{1, 1}, {5, 5}, {8, 8}, {9, 8}, {0, 8}, {-3, 8}, {INT_MAX, 8}};
    for (size_t i = 0; m && i < sizeof asks / sizeof asks[0]; i++) {
        s = NULL;
        CHECK(ts_session_new(&s, m, asks[i][0], &err) == TS_OK && ts_session_max_positions(s) == asks[i][1]);
        ts_session_free(s);
    }
    ts_model_free(m);
    free(b.p);
}

/* ---- 6. API arguments and files that are not files ---- */

static void test_api_arguments(void) {
    sy_buf model = {0}, tok = {0};
    ts_model *m = load_synthetic(&model, &tok);
    ts_error err;
    if (!m) return;
    int ids[4], n = -1;
    CHECK(ts_encode(m, "Once", 4, 1, ids, -1, &n, &err) == TS_E_ARG && strstr(err.msg, "max_ids = -1"));
    CHECK(ts_encode(m, "Once", 4, 1, NULL, 0, &n, &err) == TS_OK && n == 2); /* counting only: BOS, " Once" */
    CHECK(ts_encode(m, NULL, 4, 1, ids, 4, &n, &err) == TS_E_ARG);
    CHECK(ts_encode(m, NULL, 0, 1, ids, 4, &n, &err) == TS_OK && n == 1 && ids[0] == 1);
    ts_model_free(m);
    free(model.p), free(tok.p);

    /* paths that are not regular files fail at once (a FIFO would block in fopen) */
    const char *not_files[] = {".", "/dev/zero", "/dev/null"};
    for (size_t i = 0; i < sizeof not_files / sizeof not_files[0]; i++) {
        m = NULL;
        int rc = ts_model_load(&m, not_files[i], NULL, &err);
        CHECK_MSG(rc != TS_OK && m == NULL && strstr(err.msg, not_files[i]), "%s: rc %d: %s", not_files[i], rc, err.msg);
    }
    char fifo[] = "/tmp/test_harden_fifo_XXXXXX";
    int fd = mkstemp(fifo);
    if (fd >= 0) {
        close(fd);
        unlink(fifo);
        if (mkfifo(fifo, 0600) == 0) {
            int rc = ts_model_load(&m, fifo, NULL, &err);
            CHECK_MSG(rc == TS_E_IO && strstr(err.msg, "not a regular file"), "FIFO: rc %d: %s", rc, err.msg);
            unlink(fifo);
        }
    }
}

/* ---- 7. a full context through stories260K: every position, then one too many ---- */

static void test_full_context(void) {
    const char *dir = getenv("SHARED") ? getenv("SHARED") : "../shared";
    char model[1024], tok[1024];
    snprintf(model, sizeof model, "%s/models/stories260K.bin", dir);
    snprintf(tok, sizeof tok, "%s/models/tok512.bin", dir);
    ts_model *m = NULL;
    ts_error err;
    if (ts_model_load(&m, model, tok, &err) != TS_OK) {
        printf("test_full_context: SKIPPED (%s)\n", err.msg);
        return;
    }
    ts_session *s = NULL;
    CHECK(ts_session_new(&s, m, 0, &err) == TS_OK && ts_session_max_positions(s) == 512);
    /* teacher forcing: feed each greedy choice back, one position at a time, to the end */
    int token = 1, pos, finite = 1, distinct = 0, last = -1;
    for (pos = 0; pos < 512; pos++) {
        float *logits = ts_forward(s, &token, 1, pos, &err);
        if (!logits) break;
        for (int i = 0; i < 512; i++) finite &= isfinite(logits[i]) != 0;
        int next = ts_sample(s, logits, 0.0f, 0.0f, NULL);
        if (next == 1) next = 2 + pos % 100; /* past the end of a story: keep going with some token */
        distinct += next != last, last = token = next;
    }
    CHECK_MSG(pos == 512 && finite && distinct > 100, "full context: %d positions, finite %d, %d changes: %s", pos, finite, distinct,
              pos < 512 ? err.msg : "");
    CHECK(ts_forward(s, &token, 1, 512, &err) == NULL && strstr(err.msg, "512"));
    ts_session_free(s);
    ts_model_free(m);
}

int main(void) {
    test_header_fields();
    test_tokenizers();
    test_gpt2_sections();
    test_broken_weights();
    test_sampler_nan();
    test_session_memory();
    test_api_arguments();
    test_full_context();
    return check_summary("test_harden");
}
