/* Fuzz target: a model file in any layout run.c reads (llama2.c legacy, v1, v2; TSMF with
 * or without an embedded tokenizer), recognised from its first bytes as ts_model_load does.
 * A file that loads must also run: a few positions of the forward pass, sampling, decoding,
 * encoding and generation, all inside the session's bounds. */
#define RUN_NO_MAIN
#include "../run.c"
#include "fuzz.h"

static int count_piece(void *user, int token, const char *piece, size_t len) {
    (void)token;
    FUZZ_CHECK(piece != NULL);
    unsigned sum = 0;
    for (size_t i = 0; i < len; i++) sum += (unsigned char)piece[i]; /* readable: ASan checks */
    FUZZ_CHECK(sum <= 255 * len);
    ++*(int *)user;
    return 0;
}

static void exercise(const ts_model *m) {
    const ts_config *c = ts_model_config(m);
    ts_session *s = NULL;
    ts_error err = {0, ""};
    /* 4 positions: the KV cache of a hostile header's million positions is never asked for */
    if (ts_session_new(&s, m, 4, &err) != TS_OK) {
        FUZZ_CHECK(s == NULL && err.msg[0] != '\0');
        return;
    }
    FUZZ_CHECK(ts_session_max_positions(s) == (c->seq_len < 4 ? c->seq_len : 4));
    int P = ts_session_max_positions(s), V = c->vocab_size;
    int tokens[4] = {0, V - 1, c->bos_id >= 0 ? c->bos_id : 0, V / 2};
    float *logits = ts_forward(s, tokens, P, 0, &err);
    FUZZ_CHECK(logits != NULL);
    int next = ts_sample(s, logits, 0.0f, 0.9f, NULL);
    FUZZ_CHECK(next >= 0 && next < V);
    logits = ts_forward(s, tokens, 1, P - 1, &err); /* the last position again */
    FUZZ_CHECK(logits != NULL);
    ts_seed(s, 42);
    next = ts_sample(s, logits, 1.0f, 0.9f, NULL);
    FUZZ_CHECK(next >= 0 && next < V);
    next = ts_sample(s, logits, 0.7f, 0.0f, NULL);
    FUZZ_CHECK(next >= 0 && next < V);
    FUZZ_CHECK(ts_forward(s, tokens, 1, P, &err) == NULL && err.msg[0]); /* past the cache */
    int bad = V;
    FUZZ_CHECK(ts_forward(s, &bad, 1, 0, &err) == NULL && err.msg[0]); /* not a token */
    for (int i = 0; i < 4; i++) fuzz_decode(m, tokens[(i + 3) % 4], tokens[i]);
    fuzz_decode(m, 0, -1);
    fuzz_decode(m, 0, V);
    if (m->tokenizer.kind != TS_TOK_NONE) {
        static const char text[] = "Once upon a time, Lily \xc3\xa9 \xe6\x97\xa5 \xff\x80!";
        fuzz_encode(m, text, sizeof text - 1, 1, 0);
        ts_generate_opts o = {.temperature = 0.8f, .topp = 0.9f, .seed = 7, .steps = 4};
        int pieces = 0;
        int rc = ts_generate(s, "Once", &o, count_piece, &pieces, NULL, &err);
        FUZZ_CHECK(rc == TS_OK || err.msg[0] != '\0');
        FUZZ_CHECK(pieces <= 4 + 1); /* steps, and a GPT-2 prompt prints its first token too */
        long n_tokens;
        double nll;
        rc = ts_perplexity(s, text, sizeof text - 1, &n_tokens, &nll, NULL, NULL, &err);
        FUZZ_CHECK(rc == TS_OK || err.msg[0] != '\0');
    }
    ts_session_free(s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    void *file = fuzz_copy(data, size);
    ts_model *m = fuzz_load(file, size, NULL, 0);
    if (m) {
        exercise(m);
        ts_model_free(m);
    }
    free(file);
    return 0;
}
