/* tests/two_files/story.c -- a second file of a program that uses run.c as a library: it
 * includes run.c with RUN_HEADER_ONLY and gets the declarations alone (no definitions, so
 * the program links with run.c's implementation from main.c exactly once). */
#define RUN_HEADER_ONLY
#include "../../run.c"

static int print_piece(void *user, int token, const char *piece, size_t len) {
    (void)user, (void)token;
    return fwrite(piece, 1, len, stdout) == len ? 0 : 1;
}

/* Greedy story of `steps` positions from prompt; 0 or a TS_E_* code with err set. */
int two_files_story(const char *model_path, const char *tokenizer_path, const char *prompt, int steps, ts_error *err) {
    ts_model *model = NULL;
    ts_session *session = NULL;
    ts_generate_opts opts = {.temperature = 0.0f, .topp = 0.9f, .seed = 1, .steps = steps};
    int rc = ts_model_load(&model, model_path, tokenizer_path, err);
    if (rc == 0) rc = ts_session_new(&session, model, 0, err);
    if (rc == 0) rc = ts_generate(session, prompt, &opts, print_piece, NULL, NULL, err);
    if (rc == 0) printf("\n");
    ts_session_free(session);
    ts_model_free(model);
    return rc;
}
