/* heads.c -- what each attention head looks at, measured through run.c's library.
 *
 *   make examples && examples/heads MODEL TOKENIZER TEXTFILE
 *
 * Runs the start of the text (BOS + up to the model's context) with attention recording on
 * (ts_session_record_attention), then prints, per layer and head, the share of attention a
 * token gives, on average:
 *   prev    to the token just before it
 *   self    to itself
 *   first   to the first token (BOS)
 *   repeat  to tokens that followed an earlier copy of it ("the cat ... the" -> "cat"): the
 *           pattern of induction heads (Olsson et al. 2022); `uniform` is what attention
 *           spread evenly would give, for comparison
 *   most    the token that draws most of the rest (attention beyond prev and self)
 */
#define RUN_NO_MAIN
#include "../run.c"

static void print_token(const char *p, size_t len) { /* quoted, a newline as \n */
    putchar('\'');
    for (size_t i = 0; i < len; i++) p[i] == '\n' ? fputs("\\n", stdout) : putchar(p[i]);
    putchar('\'');
}

int main(int argc, char **argv) {
    if (argc != 4) {
        fprintf(stderr, "usage: %s MODEL TOKENIZER TEXTFILE\n", argv[0]);
        return 1;
    }
    ts_error err = {0, ""};
    ts_model *m = NULL;
    ts_session *s = NULL;
    char *text = NULL;
    int *ids = NULL, rc = 1;
    float *logits = NULL;
    double *drawn = NULL;
    FILE *f = fopen(argv[3], "rb");
    if (!f) {
        snprintf(err.msg, sizeof err.msg, "cannot open %s", argv[3]);
        goto done;
    }
    text = (char *)malloc(1 << 16);
    size_t len = text ? fread(text, 1, 1 << 16, f) : 0; /* the context holds far fewer tokens than this */
    fclose(f);
    if (ts_model_load(&m, argv[1], argv[2], &err)) goto done;
    const ts_config *c = ts_model_config(m);
    int n = 0;
    ids = (int *)malloc((len + 3) * sizeof(int));
    if (!ids || ts_encode(m, text, len, 1, ids, (int)len + 3, &n, &err)) goto done;
    if (n > c->seq_len) n = c->seq_len;
    if (n < 3) {
        snprintf(err.msg, sizeof err.msg, "%s is too short", argv[3]);
        goto done;
    }
    /* one pass over the text, recording every head's weights: (layers, heads, n, n) */
    logits = (float *)malloc((size_t)n * c->vocab_size * sizeof(float));
    drawn = (double *)malloc((size_t)c->vocab_size * sizeof(double));
    if (!logits || !drawn || ts_session_new(&s, m, n, &err) || ts_session_record_attention(s, n, &err) ||
        ts_forward_all(s, ids, n, 0, logits, &err))
        goto done;
    int rec;
    const float *att = ts_session_attention(s, &rec);
    printf("%d tokens of %s\nlayer head   prev   self  first  repeat (uniform)  most\n", n, argv[3]);
    for (int l = 0; l < c->n_layers; l++)
        for (int h = 0; h < c->n_heads; h++) {
            double prev = 0, self = 0, first = 0, repeat = 0, uniform = 0;
            int repeats = 0;
            memset(drawn, 0, (size_t)c->vocab_size * sizeof(double));
            for (int q = 1; q < n; q++) {
                const float *w = att + (((size_t)l * c->n_heads + h) * rec + q) * rec; /* row q: keys 0..q */
                prev += w[q - 1], self += w[q], first += w[0];
                double r = 0;
                int targets = 0;
                for (int k = 1; k < q; k++) { /* k follows an earlier copy of token q */
                    if (ids[k - 1] == ids[q] && k - 1 < q - 1) r += w[k], targets++;
                    if (k < q - 1) drawn[ids[k]] += w[k];
                }
                if (targets) repeat += r, uniform += (double)targets / (q + 1), repeats++;
            }
            int most = 0;
            double rest = 0;
            for (int v = 0; v < c->vocab_size; v++) {
                rest += drawn[v];
                if (drawn[v] > drawn[most]) most = v;
            }
            size_t piece_len;
            const char *piece = ts_token_bytes(m, most, &piece_len);
            printf("%5d %4d  %5.2f  %5.2f  %5.2f  %5.2f  (%4.2f)    ", l, h, prev / (n - 1), self / (n - 1), first / (n - 1),
                   repeats ? repeat / repeats : 0.0, repeats ? uniform / repeats : 0.0);
            print_token(piece, piece_len);
            printf(" %.0f%%\n", rest > 0 ? 100 * drawn[most] / rest : 0.0);
        }
    rc = 0;
done:
    if (rc) fprintf(stderr, "heads: %s\n", err.msg);
    free(text), free(ids), free(logits), free(drawn);
    ts_session_free(s);
    ts_model_free(m);
    return rc;
}
