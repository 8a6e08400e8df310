/* story.c -- run.c as a library: a greedy story, one token at a time.
 *
 *   make examples && examples/story MODEL TOKENIZER PROMPT
 *
 * prints what `./run MODEL -z TOKENIZER -t 0 -n 256 -i PROMPT` prints on stdout, byte for
 * byte, using the API of run.c section 0: encode the prompt, run one token at a time
 * (ts_forward), pick the next token (ts_sample at temperature 0), print its text (ts_decode).
 */
#define RUN_NO_MAIN
#include "../run.c"

enum { STEPS = 256 };

int main(int argc, char **argv) {
    if (argc != 4) {
        fprintf(stderr, "usage: %s MODEL TOKENIZER PROMPT\n", argv[0]);
        return 1;
    }
    ts_error err = {0, ""};
    ts_model *model = NULL;
    ts_session *session = NULL;
    int *ids = NULL, rc = 1;
    if (ts_model_load(&model, argv[1], argv[2], &err)) goto done;
    int steps = STEPS < ts_model_config(model)->seq_len ? STEPS : ts_model_config(model)->seq_len;
    if (ts_session_new(&session, model, steps, &err)) goto done;

    /* the prompt's tokens, BOS first: ask for the count, then encode into enough room */
    const char *prompt = argv[3];
    int n_ids = 0;
    if (ts_encode(model, prompt, strlen(prompt), 1, NULL, 0, &n_ids, &err)) goto done;
    ids = (int *)malloc((size_t)(n_ids + 1) * sizeof(int));
    if (!ids || n_ids == 0) {
        snprintf(err.msg, sizeof err.msg, "%s", ids ? "the prompt is empty and the model has no BOS token" : "out of memory");
        goto done;
    }
    if (ts_encode(model, prompt, strlen(prompt), 1, ids, n_ids, &n_ids, &err)) goto done;

    /* position by position: feed the token, read the logits, choose the next token */
    int token = ids[0], bos = ts_model_config(model)->bos_id;
    for (int pos = 0; pos < steps; pos++) {
        float *logits = ts_forward(session, &token, 1, pos, &err);
        if (!logits) goto done;
        int next = pos + 1 < n_ids ? ids[pos + 1] : ts_sample(session, logits, 0.0f, 0.0f, &err);
        if (next < 0) goto done;
        if (next == bos) break; /* llama2.c's models start a new story with BOS: stop there */
        size_t len;
        const char *piece = ts_decode(model, token, next, &len);
        fwrite(piece, 1, len, stdout);
        token = next;
    }
    printf("\n");
    rc = 0;
done:
    if (rc) fprintf(stderr, "story: %s\n", err.msg);
    free(ids);
    ts_session_free(session);
    ts_model_free(model);
    return rc;
}
