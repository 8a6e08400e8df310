/* fuzz/fuzz.h -- shared by the fuzz targets: the check macro and the synthetic inputs.
 * Each target defines LLVMFuzzerTestOneInput; it is linked either with libFuzzer
 * (make fuzz, clang) or with replay.c (make test, any C compiler). */
#ifndef FUZZ_H
#define FUZZ_H
#include <stdio.h>
#include <stdlib.h>
#include "synth.h"

/* An invariant the engine promises: a violation is a bug, reported as a crash. */
#define FUZZ_CHECK(cond)                                                                  \
    do {                                                                                  \
        if (!(cond)) {                                                                    \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);      \
            abort();                                                                      \
        }                                                                                 \
    } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A private copy of exactly `size` bytes, 64-byte aligned as a mapped file would be, so
 * AddressSanitizer sees any read past the end. */
static inline void *fuzz_copy(const uint8_t *data, size_t size) {
    void *p = NULL;
    if (posix_memalign(&p, 64, size ? size : 1) != 0) abort();
    if (size) memcpy(p, data, size);
    return p;
}

/* Loads `model` (with an optional separate tokenizer); a failure must say why. */
static inline ts_model *fuzz_load(const void *model, size_t size, const void *tok, size_t tok_size) {
    ts_model *m = NULL;
    ts_error err = {0, ""};
    int rc = ts_model_load_memory(&m, model, size, tok, tok_size, &err);
    FUZZ_CHECK(rc == TS_OK ? m != NULL : (m == NULL && err.code == rc && err.msg[0] != '\0'));
    return m;
}

/* Encodes text and checks what ts_encode promises: ids in range, the full count reported
 * even when max_ids is smaller, and decoding gives the text back (SentencePiece with byte
 * fallback: after the dummy-prefix space; GPT-2: exactly). */
static inline void fuzz_encode(const ts_model *m, const char *text, size_t len, int add_bos, int check_roundtrip) {
    const ts_tokenizer *t = &m->tokenizer;
    int cap = (int)len + 3, n = -1, n_small = -1;
    int *ids = (int *)malloc((size_t)cap * sizeof(int));
    FUZZ_CHECK(ids != NULL);
    ts_error err = {0, ""};
    FUZZ_CHECK(ts_encode(m, text, len, add_bos, ids, cap, &n, &err) == TS_OK);
    FUZZ_CHECK(n >= 0 && n <= cap);
    for (int i = 0; i < n; i++) FUZZ_CHECK(ids[i] >= 0 && ids[i] < m->config.vocab_size);
    if (n > 0) { /* a buffer too small: exactly max_ids written (ASan checks), full count back */
        int *few = (int *)malloc((size_t)(n / 2 + 1) * sizeof(int));
        FUZZ_CHECK(few != NULL);
        FUZZ_CHECK(ts_encode(m, text, len, add_bos, few, n / 2, &n_small, &err) == TS_OK && n_small == n);
        FUZZ_CHECK(n / 2 == 0 || memcmp(few, ids, (size_t)(n / 2) * sizeof(int)) == 0);
        free(few);
    }
    if (check_roundtrip && t->kind == TS_TOK_SENTENCEPIECE) {
        /* the dummy-prefix space, then the text: each token's bytes, byte tokens as their byte */
        char *back = (char *)malloc(len * 6 + 16);
        size_t got = 0;
        FUZZ_CHECK(back != NULL);
        for (int i = (add_bos && t->bos_id >= 0) ? 1 : 0; i < n; i++) {
            size_t piece_len;
            const char *piece = ts_token_bytes(m, ids[i], &piece_len);
            FUZZ_CHECK(piece != NULL);
            if (t->byte_value[ids[i]] >= 0) back[got++] = (char)t->byte_value[ids[i]];
            else memcpy(back + got, piece, piece_len), got += piece_len;
            FUZZ_CHECK(got <= len * 6 + 8);
        }
        FUZZ_CHECK(len == 0 ? got == 0 : (got == len + 1 && back[0] == ' ' && memcmp(back + 1, text, len) == 0));
        free(back);
    }
    if (check_roundtrip && t->kind == TS_TOK_GPT2) { /* byte-level BPE loses nothing: the ids spell the text */
        size_t got = 0;
        for (int i = (add_bos && t->bos_id >= 0) ? 1 : 0; i < n; i++) {
            size_t piece_len;
            const char *piece = ts_token_bytes(m, ids[i], &piece_len);
            FUZZ_CHECK(piece != NULL && got + piece_len <= len && memcmp(text + got, piece, piece_len) == 0);
            got += piece_len;
        }
        FUZZ_CHECK(got == len);
    }
    free(ids);
}

/* ts_decode of (prev, token) for any ids: never NULL, a short piece we can read. */
static inline void fuzz_decode(const ts_model *m, int prev, int token) {
    size_t len = 12345;
    const char *p = ts_decode(m, prev, token, &len);
    FUZZ_CHECK(p != NULL);
    char copy[256];
    if (token < 0 || token >= m->config.vocab_size || m->tokenizer.kind == TS_TOK_NONE) FUZZ_CHECK(len == 0);
    else {
        size_t raw;
        FUZZ_CHECK(ts_token_bytes(m, token, &raw) != NULL && len <= (raw > 1 ? raw : 1));
    }
    memcpy(copy, p, len < sizeof copy ? len : sizeof copy);
    (void)copy;
}
/* A tiny GPT-Neo-shaped TSMF file carrying the synthetic GPT-2 tokenizer (fuzz/synth.h),
 * loaded; the file's bytes live as long as the process, as the model does. */
static inline ts_model *fuzz_gpt2_model(void) {
    sy_buf tok = {0}, model = {0};
    sy_write_gpt2_tokenizer(&tok);
    sy_model spec = {SY_TSMF, 4, 8, 1, 2, 1, SY_GPT2_VOCAB, 8, 1, 0, 0, 1, tok.p, tok.n, 12, 1};
    sy_write_model(&model, &spec);
    ts_model *m = fuzz_load(fuzz_copy(model.p, model.n), model.n, NULL, 0);
    FUZZ_CHECK(m != NULL && m->tokenizer.kind == TS_TOK_GPT2);
    free(model.p), free(tok.p);
    return m;
}
#endif /* FUZZ_H */
