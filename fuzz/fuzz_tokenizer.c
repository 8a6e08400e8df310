/* Fuzz target: a llama2.c tokenizer.bin given separately (-z). The input is a 2-byte
 * little-endian vocabulary size (1..1024 after `% 1024 + 1`), then the tokenizer's bytes;
 * a tiny synthetic model of that vocabulary carries it. A tokenizer that loads must encode
 * and decode without reading outside itself. */
#define RUN_NO_MAIN
#include "../run.c"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 2) return 0;
    int vocab = (data[0] | data[1] << 8) % 1024 + 1;
    sy_buf model = {0};
    sy_write_carrier(&model, vocab);
    void *file = fuzz_copy(model.p, model.n), *tok = fuzz_copy(data + 2, size - 2);
    ts_model *m = fuzz_load(file, model.n, tok, size - 2);
    if (m) {
        static const char text[] = "Once upon a time, Lily \xc3\xa9 \xe6\x97\xa5 \xff\x80\x01!";
        fuzz_encode(m, text, sizeof text - 1, 1, 0);
        fuzz_encode(m, (const char *)data + 2, size - 2 < 256 ? size - 2 : 256, 0, 0);
        for (int id = -1; id <= vocab; id++) fuzz_decode(m, id > 0 ? id - 1 : 1, id);
        ts_model_free(m);
    }
    free(tok);
    free(file);
    free(model.p);
    return 0;
}
