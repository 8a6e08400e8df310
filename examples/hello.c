/* hello.c -- the smallest program using run.c as a library: a story from a prompt. */
#define RUN_NO_MAIN
#include "../run.c"

static int print_piece(void *user, int token, const char *piece, size_t len) {
    (void)user, (void)token;
    fwrite(piece, 1, len, stdout);
    return 0; /* non-zero would stop the story here */
}

int main(int argc, char **argv) {
    if (argc != 4) {
        fprintf(stderr, "usage: hello MODEL TOKENIZER PROMPT\n");
        return 1;
    }
    ts_error err = {0, ""};
    ts_model *model = NULL;
    ts_session *session = NULL;
    ts_generate_opts opts = {.temperature = 0.8f, .topp = 0.9f, .seed = 42, .steps = 256};
    int rc = ts_model_load(&model, argv[1], argv[2], &err);
    if (rc == 0) rc = ts_session_new(&session, model, 0, &err); /* 0: the model's whole context */
    if (rc == 0) rc = ts_generate(session, argv[3], &opts, print_piece, NULL, NULL, &err);
    if (rc == 0) printf("\n");
    else fprintf(stderr, "hello: %s\n", err.msg);
    ts_session_free(session);
    ts_model_free(model);
    return rc == 0 ? 0 : 1;
}
