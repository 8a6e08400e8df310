/* Fuzz target: the decoders on arbitrary ids. The input is a sequence of little-endian
 * int32 token ids, in range or not; each is decoded after the one before it (so BOS
 * handling and byte tokens are reached), with the synthetic SentencePiece vocabulary, or
 * the synthetic GPT-2 one when the input's length is 2 or 3 more than a multiple of 4. */
#define RUN_NO_MAIN
#include "../run.c"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static ts_model *sentencepiece, *gpt2;
    if (!sentencepiece) {
        sy_buf tok = {0}, model = {0};
        sy_write_tokenizer(&tok, 1);
        sy_write_carrier(&model, SY_VOCAB);
        sentencepiece = fuzz_load(fuzz_copy(model.p, model.n), model.n, fuzz_copy(tok.p, tok.n), tok.n);
        FUZZ_CHECK(sentencepiece != NULL);
        free(model.p), free(tok.p);
        gpt2 = fuzz_gpt2_model();
    }
    const ts_model *m = size % 4 >= 2 ? gpt2 : sentencepiece;
    int prev = 1, vocab = m->config.vocab_size;
    for (size_t i = 0; i + 4 <= size; i += 4) {
        int id = ts_read_i32(data + i);
        if (size % 2 == 1) id %= vocab + 2; /* some inputs stay near the vocabulary */
        fuzz_decode(m, prev, id);
        prev = id;
    }
    return 0;
}
