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
                   !strcmp(a.mode, "inspect"));
        FUZZ_CHECK(strcmp(a.mode, "decode") || a.ids_path);
        FUZZ_CHECK(strcmp(a.mode, "logits") || (a.ids_path && a.out_path));
        FUZZ_CHECK(strcmp(a.mode, "ppl") || a.text_path);
    }
    free(text);
    return 0;
}
