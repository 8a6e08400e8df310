/* Writes the seed corpus of every fuzz target into fuzz/corpus/<target>/ (run from the
 * repository root: `make fuzz-corpus`). The files are small and committed; regenerating
 * them gives the same bytes. */
#define RUN_NO_MAIN
#include "../run.c"
#include "fuzz.h"
#include <sys/stat.h>

static void save(const char *target, const char *name, const void *data, size_t size) {
    char path[512];
    snprintf(path, sizeof path, "fuzz/corpus/%s", target);
    mkdir("fuzz/corpus", 0755), mkdir(path, 0755);
    snprintf(path, sizeof path, "fuzz/corpus/%s/%s", target, name);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(data, 1, size, f) != size || fclose(f) != 0) {
        fprintf(stderr, "make_corpus: cannot write %s\n", path);
        exit(1);
    }
}

static void save_model(const char *name, sy_model m) {
    sy_buf b = {0};
    sy_write_model(&b, &m);
    /* a seed that does not load would teach the fuzzer nothing about the deeper code */
    void *copy = fuzz_copy(b.p, b.n);
    ts_model *loaded = fuzz_load(copy, b.n, NULL, 0);
    if (!loaded) {
        fprintf(stderr, "make_corpus: seed %s does not load\n", name);
        exit(1);
    }
    ts_model_free(loaded);
    free(copy);
    save("model", name, b.p, b.n);
    free(b.p);
}

int main(void) {
    sy_buf tok = {0}, tok_nobytes = {0}, gpt2 = {0};
    sy_write_tokenizer(&tok, 1);
    sy_write_tokenizer(&tok_nobytes, 0);
    sy_write_gpt2_tokenizer(&gpt2);
    /* model files: every layout; small shapes so mutations reach the tensors */
    /*                      format      dim hid L  H  KV V   seq shared wt gs neo tok */
    save_model("legacy-shared", (sy_model){SY_LEGACY, 8, 12, 2, 2, 1, 16, 8, 1, 0, 0, 0, NULL, 0, 1, 0});
    save_model("legacy-unshared", (sy_model){SY_LEGACY, 8, 12, 1, 2, 2, 16, 8, 0, 0, 0, 0, NULL, 0, 2, 0});
    save_model("v1", (sy_model){SY_V1, 8, 12, 2, 2, 1, 16, 8, 0, 0, 0, 0, NULL, 0, 3, 0});
    save_model("v2-q8", (sy_model){SY_V2, 8, 16, 2, 2, 1, 16, 8, 1, 1, 4, 0, NULL, 0, 4, 0});
    save_model("tsmf-f32", (sy_model){SY_TSMF, 8, 12, 2, 2, 1, 16, 8, 1, 0, 0, 0, NULL, 0, 5, 0});
    save_model("tsmf-q8", (sy_model){SY_TSMF, 8, 16, 1, 2, 2, 16, 8, 0, 1, 8, 0, NULL, 0, 6, 0});
    save_model("tsmf-q8-short-groups", (sy_model){SY_TSMF, 8, 12, 1, 2, 1, 16, 8, 1, 1, 5, 0, NULL, 0, 11, 0});
    save_model("tsmf-bf16", (sy_model){SY_TSMF, 8, 12, 1, 2, 1, 16, 8, 1, 2, 0, 0, NULL, 0, 7, 0});
    save_model("tsmf-neo", (sy_model){SY_TSMF, 8, 16, 2, 2, 2, 16, 8, 1, 0, 0, 1, NULL, 0, 8, 0});
    save_model("tsmf-tokenizer", (sy_model){SY_TSMF, 4, 8, 1, 2, 1, SY_VOCAB, 8, 1, 0, 0, 0, tok.p, tok.n, 9, 0});
    save_model("tsmf-neo-tokenizer", (sy_model){SY_TSMF, 4, 8, 2, 1, 1, SY_VOCAB, 8, 1, 0, 0, 1, tok.p, tok.n, 10, 0});
    save_model("tsmf-neo-gpt2", (sy_model){SY_TSMF, 4, 8, 2, 2, 1, SY_GPT2_VOCAB, 8, 1, 0, 0, 1, gpt2.p, gpt2.n, 12, 1});

    /* tokenizer.bin: 2-byte vocabulary size (minus one), then the file */
    struct { const char *name; int vocab; const sy_buf *file; } toks[] = {
        {"synthetic", SY_VOCAB, &tok}, {"no-byte-tokens", SY_VOCAB, &tok_nobytes}};
    for (size_t i = 0; i < sizeof toks / sizeof toks[0]; i++) {
        sy_buf b = {0};
        unsigned char v[2] = {(unsigned char)(toks[i].vocab - 1), (unsigned char)((toks[i].vocab - 1) >> 8)};
        sy_put(&b, v, 2);
        sy_put(&b, toks[i].file->p, toks[i].file->n);
        save("tokenizer", toks[i].name, b.p, b.n);
        free(b.p);
    }
    static const unsigned char tiny[] = {3, 0, /* vocab 4: */ 5, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 'a',
                                         0, 0, 0x80, 0x3f, 1, 0, 0, 0, 'b', 0, 0, 0, 0, 2, 0, 0, 0, 'a', 'b',
                                         0, 0, 0, 0, 1, 0, 0, 0, ' '};
    save("tokenizer", "tiny", tiny, sizeof tiny);

    /* GPT-2 tokenizer sections: the synthetic one, and one of only the 256 bytes */
    save("gpt2", "synthetic", gpt2.p, gpt2.n);
    sy_buf bytes_only = {0};
    sy_i32(&bytes_only, 256), sy_i32(&bytes_only, 0);
    for (int i = 0; i < 256; i++) {
        unsigned char byte = (unsigned char)i;
        sy_i32(&bytes_only, 1), sy_put(&bytes_only, &byte, 1);
    }
    save("gpt2", "bytes-only", bytes_only.p, bytes_only.n);
    free(bytes_only.p);

    /* encoder: option byte, then text */
    static const char *texts[] = {"\x00Once upon a time, there was a little girl named Lily.",
                                  "\x01Lily \xc3\xa9! \xe6\x97\xa5\xe6\x97\xa5 \xf0\x9f\x98\x80 end.",
                                  "\x02\xff\xfe\x80\x80\xc3 broken \xe6\x97 utf-8 \xf0\x9f",
                                  "\x03 \n\n  tabs\tand\x01 controls\x7f",
                                  "\x04Once upon a time, Lily's 123 the end.  \n\n\xc3\xa9\xe6\x97\xa5",
                                  "\x05\xff\xfe broken \xe6\x97 utf-8 \xf0\x9f 'll 've   spaces   "};
    for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++) {
        char name[16];
        snprintf(name, sizeof name, "text%zu", i);
        save("encode", name, texts[i], 1 + strlen(texts[i] + 1));
    }

    /* decoder: int32 ids */
    int32_t ids[] = {1, 259, 300, 3 + ' ', 3 + 0xC3, 3 + 0xA9, 2, 0, -1, SY_VOCAB, SY_VOCAB - 1, 1, 3 + 'A', 7};
    unsigned char idbytes[sizeof ids];
    for (size_t i = 0; i < sizeof ids / sizeof ids[0]; i++)
        for (int k = 0; k < 4; k++) idbytes[4 * i + k] = (unsigned char)((uint32_t)ids[i] >> (8 * k));
    save("decode", "ids", idbytes, sizeof idbytes);

    /* command lines, NUL-separated */
    static const char args1[] = "model.bin\0-t\0" "0.8\0-p\0" "0.9\0-s\0" "42\0-n\0" "256\0-i\0Once upon a time";
    static const char args2[] = "m.bin\0-m\0logits\0--ids\0ids.txt\0--out\0out.f32";
    static const char args3[] = "m.bin\0-m\0ppl\0-f\0text.txt\0-z\0tok.bin\0-n\0" "0";
    static const char args4[] = "m.bin\0-m\0chat\0-y\0system\0-t\0" "1e-3\0-p\0" "1\0-s\0" "9223372036854775807";
    static const char args5[] = "m.bin\0-m\0tokenize\0-i\0\xff\xfe\0--viz\0out.txt";
    save("args", "generate", args1, sizeof args1 - 1);
    save("args", "logits", args2, sizeof args2 - 1);
    save("args", "ppl", args3, sizeof args3 - 1);
    save("args", "chat", args4, sizeof args4 - 1);
    save("args", "tokenize", args5, sizeof args5 - 1);
    /* the edges of issue 18: the smallest temperatures, the bounds, output paths */
    static const char args7[] = "m.bin\0-t\0" "1e-45\0-n\0" "2147483647\0--viz\0/nonexistent/x.html";
    static const char args8[] = "m.bin\0-t\0" "1e39\0-n\0" "2147483648\0-t\0inf\0-h";
    save("args", "edges", args7, sizeof args7 - 1);
    save("args", "bounds", args8, sizeof args8 - 1);
    static const char args6[] = "m.bin\0-m\0decode\0--ids\0ids.txt";
    save("args", "decode", args6, sizeof args6 - 1);
    free(tok.p), free(tok_nobytes.p), free(gpt2.p);
    printf("make_corpus: wrote fuzz/corpus/{model,tokenizer,gpt2,encode,decode,args}\n");
    return 0;
}
