/* Fuzz target: the GPT-2 byte-level BPE tokenizer section (TSMF tokenizer_kind 2,
 * docs/format.md): i32 n_tokens, i32 n_merges, the token records, the merge records. The
 * model's vocabulary is the section's own n_tokens when it is 256..65536 (else 50257, so the
 * count check is reached too). A section that loads must encode (losslessly) and decode. */
#define RUN_NO_MAIN
#include "../run.c"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    int32_t claimed = size >= 4 ? ts_read_i32(data) : 0;
    ts_model m; /* only what the tokenizer functions read: the configuration and the tokenizer */
    memset(&m, 0, sizeof m);
    m.config.vocab_size = claimed >= 256 && claimed <= 65536 ? claimed : 50257;
    m.config.bos_id = m.config.eos_id = m.config.vocab_size - 1;
    unsigned char *section = (unsigned char *)fuzz_copy(data, size);
    ts_error err = {0, ""};
    int rc = ts_tokenizer_init(&m.tokenizer, TS_TOK_GPT2, section, size, &m.config, &err);
    FUZZ_CHECK(rc == TS_OK || (err.code == rc && err.msg[0] != '\0'));
    if (rc == TS_OK) {
        static const char text[] = "Once upon a time, Lily's 123 \xc3\xa9 \xe6\x97\xa5   \n\n the end.\xff\x80";
        fuzz_encode(&m, text, sizeof text - 1, 1, 1);
        fuzz_encode(&m, (const char *)data, size < 512 ? size : 512, 0, 1);
        int vocab = m.config.vocab_size;
        for (int id = -1; id <= vocab && id < 4096; id++) fuzz_decode(&m, id - 1, id);
        fuzz_decode(&m, 0, vocab - 1);
        fuzz_decode(&m, 0, vocab);
    }
    ts_tokenizer_free(&m.tokenizer);
    free(section);
    return 0;
}
