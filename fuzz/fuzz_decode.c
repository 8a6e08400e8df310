/* Fuzz target: the decoder on arbitrary ids. The input is a sequence of little-endian
 * int32 token ids, in range or not; each is decoded after the one before it (so BOS
 * handling and byte tokens are reached), with the synthetic vocabulary. */
#define RUN_NO_MAIN
#include "../run.c"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static ts_model *m;
    if (!m) {
        sy_buf tok = {0}, model = {0};
        sy_write_tokenizer(&tok, 1);
        sy_write_carrier(&model, SY_VOCAB);
        m = fuzz_load(fuzz_copy(model.p, model.n), model.n, fuzz_copy(tok.p, tok.n), tok.n);
        FUZZ_CHECK(m != NULL);
        free(model.p), free(tok.p);
    }
    int prev = 1;
    for (size_t i = 0; i + 4 <= size; i += 4) {
        int id = ts_read_i32(data + i);
        if (i == 0 && size % 4 == 1) id %= SY_VOCAB + 2; /* some inputs stay near the vocabulary */
        fuzz_decode(m, prev, id);
        prev = id;
    }
    return 0;
}
