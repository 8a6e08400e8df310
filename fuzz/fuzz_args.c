/* Fuzz target: command-line parsing. The input is split at NUL bytes into arguments
 * (after argv[0] = "run"); ts_parse_args either fails with a message or returns settings
 * that the rest of the program may trust. */
#define main ts_cli_main /* the program's main is compiled but not run: only its parser */
#include "../run.c"
#undef main
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    enum { MAX_ARGS = 64 };
    char *text = (char *)malloc(size + 1), *argv[MAX_ARGS + 1];
    FUZZ_CHECK(text != NULL);
    memcpy(text, data, size);
    text[size] = '\0';
    int argc = 0;
    argv[argc++] = (char *)"run";
    for (size_t start = 0; start <= size && argc < MAX_ARGS;) {
        argv[argc++] = text + start;
        start += strlen(text + start) + 1;
    }
    argv[argc] = NULL;
    ts_args a;
    char msg[512] = "";
    if (ts_parse_args(argc, argv, &a, msg, sizeof msg)) /* one line: main prints it last, after "run: " */
        FUZZ_CHECK(msg[0] != '\0' && strchr(msg, '\n') == NULL);
    else {
        FUZZ_CHECK(a.checkpoint != NULL && a.mode != NULL);
        FUZZ_CHECK(isfinite(a.temperature) && a.temperature >= 0.0f);
        FUZZ_CHECK(a.topp >= 0.0f && a.topp <= 1.0f);
        FUZZ_CHECK(a.steps >= 0 && a.seed >= 0);
        FUZZ_CHECK(!strcmp(a.mode, "generate") || !strcmp(a.mode, "chat") || !strcmp(a.mode, "tokenize") ||
                   !strcmp(a.mode, "decode") || !strcmp(a.mode, "logits") || !strcmp(a.mode, "ppl") ||
                   !strcmp(a.mode, "inspect") || !strcmp(a.mode, "dump") || !strcmp(a.mode, "neurons") ||
                   !strcmp(a.mode, "batch"));
        FUZZ_CHECK(strcmp(a.mode, "dump") || (a.out_path && !!a.prompt + !!a.text_path + !!a.ids_path == 1));
        FUZZ_CHECK(strcmp(a.mode, "neurons") || (!!a.prompt + !!a.text_path + !!a.ids_path == 1));
        FUZZ_CHECK(strcmp(a.mode, "batch") || a.text_path);
        FUZZ_CHECK(a.top_k >= 1 && a.samples >= 1 && a.sample_top_k >= 0 && a.repeat_last_n >= 0);
        FUZZ_CHECK(a.min_p >= 0.0f && a.min_p <= 1.0f && (a.repeat_penalty == 0.0f || a.repeat_penalty > 0.0f));
        for (int i = 0; i < a.n_stop; i++) FUZZ_CHECK(a.stop[i][0] != '\0');
        for (int k = 0; k < 4; k++) FUZZ_CHECK(!a.instruct[k] || !strpbrk(a.instruct[k], "\r\n"));
        const char *bad = NULL;
        FUZZ_CHECK(!a.ablate_heads || ts_parse_parts(a.ablate_heads, NULL, &bad) > 0);
        FUZZ_CHECK(!a.ablate_neurons || ts_parse_parts(a.ablate_neurons, NULL, &bad) > 0);
        FUZZ_CHECK(strcmp(a.mode, "decode") || a.ids_path);
        FUZZ_CHECK(strcmp(a.mode, "logits") || (a.ids_path && a.out_path));
        FUZZ_CHECK(strcmp(a.mode, "ppl") || a.text_path);
    }
    free(text);
    return 0;
}
