/* Fuzz target: the encoders on arbitrary bytes, with the synthetic vocabularies of
 * fuzz/synth.h. The first byte picks options: bit 0 adds BOS; bit 1 uses the SentencePiece
 * vocabulary without byte tokens (unknown bytes become <unk>); bit 2 uses the GPT-2
 * byte-level BPE instead. Decoding the ids must give back " " + text (SentencePiece with
 * byte tokens) or exactly the text (GPT-2). */
#define RUN_NO_MAIN
#include "../run.c"
#include "fuzz.h"

static ts_model *tokenizer_model(int with_bytes) {
    sy_buf tok = {0}, model = {0};
    sy_write_tokenizer(&tok, with_bytes);
    sy_write_carrier(&model, SY_VOCAB);
    ts_model *m = fuzz_load(fuzz_copy(model.p, model.n), model.n, fuzz_copy(tok.p, tok.n), tok.n);
    FUZZ_CHECK(m != NULL); /* the buffers live as long as the process, as the models do */
    free(model.p), free(tok.p);
    return m;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static ts_model *models[3];
    if (!models[0]) models[0] = tokenizer_model(1), models[1] = tokenizer_model(0), models[2] = fuzz_gpt2_model();
    if (size < 1) return 0;
    int add_bos = data[0] & 1, no_bytes = (data[0] >> 1) & 1, gpt2 = (data[0] >> 2) & 1;
    char *text = (char *)fuzz_copy(data + 1, size - 1);
    fuzz_encode(models[gpt2 ? 2 : no_bytes], text, size - 1, add_bos, gpt2 || !no_bytes);
    free(text);
    return 0;
}
