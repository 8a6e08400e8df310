/* test_speed.c -- the fast paths against the plain ones, and the exactness rules.
 *
 * Built with the fast build's flags (make test-speed), so the SIMD path of this machine
 * is the one tested. Checks:
 *  1. ts_matmul_fast against ts_matmul_plain for f32, bf16 and Q8_0 at awkward shapes
 *     (tails shorter than a vector, ragged Q8_0 groups, groups longer than a vector):
 *     f32/bf16 within the bound on reordering a float sum, and bit for bit the documented
 *     order every SIMD path shares (32 partial sums, then halves); Q8_0 bit for bit.
 *  2. The fast kernel's result for a token does not depend on the block it is in (n = 1
 *     vs a block of n) nor on the number of threads: bit for bit.
 *  3. Whole models: logits of a sequence run as one batched call equal those of the same
 *     tokens run one at a time, bit for bit (random f32 / bf16 / Q8_0 Llama and GPT-Neo
 *     models written by bench/gen, and stories260K when ../shared is there).
 *  4. The SentencePiece encoder, which merges the parts of a text between places no merge
 *     can cross separately, gives the ids of one merge over the whole text and of a
 *     quadratic llama2.c-style encoder (Llama 2 tokenizer, TinyStories text and odd
 *     strings, when ../shared is there).
 *  5. The vectorisable quantization and argmax give exactly what fmaxf/roundf and the
 *     first-maximum loop give.
 */
#define RUN_NO_MAIN
#include "../run.c"

#include "check.h"

#if defined(TS_SIMD) || defined(TS_WASM)
static uint64_t rng = 88172645463325252ull;
static float uniform(void) { /* [-1, 1) */
    rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
    return (float)(rng >> 40) / 8388608.0f - 1.0f;
}

/* A random matrix of the given type; the caller frees data and scale. */
static ts_matrix random_matrix(int type, int rows, int cols, int gs) {
    ts_matrix w = {type, rows, cols, type == TS_Q8_0 ? gs : 0, NULL, NULL};
    size_t n = (size_t)rows * cols;
    if (type == TS_F32) {
        float *d = malloc(n * 4);
        for (size_t i = 0; i < n; i++) d[i] = uniform();
        w.data = d;
    } else if (type == TS_BF16) {
        uint16_t *d = malloc(n * 2);
        for (size_t i = 0; i < n; i++) {
            float f = uniform();
            uint32_t bits;
            memcpy(&bits, &f, 4);
            d[i] = (uint16_t)(bits >> 16);
        }
        w.data = d;
    } else {
        int8_t *d = malloc(n);
        float *s = malloc((size_t)rows * ts_groups(cols, gs) * 4);
        for (size_t i = 0; i < n; i++) d[i] = (int8_t)(uniform() * 128.0f); /* -128 included */
        for (size_t i = 0; i < (size_t)rows * ts_groups(cols, gs); i++) s[i] = 0.01f * (1.5f + uniform());
        w.data = d, w.scale = s;
    }
    return w;
}

/* A matrix product to check: random weights and activations (quantized for Q8_0), and what
 * the plain loop gives for them, the reference of every kernel check. */
static const char *type_names[] = {"f32", "q8_0", "bf16"};
typedef struct {
    ts_matrix w;
    float *x, *xs, *plain; /* (n, cols), (n, groups), (n, rows) */
    int8_t *xq;            /* (n, cols) */
} matmul_case;
static matmul_case matmul_case_new(int type, int rows, int cols, int gs, int n) {
    matmul_case c = {random_matrix(type, rows, cols, gs), NULL, NULL, NULL, NULL};
    int groups = ts_groups(cols, gs > 0 ? gs : 1);
    c.x = malloc((size_t)n * cols * 4), c.xs = malloc((size_t)n * groups * 4), c.xq = malloc((size_t)n * cols);
    c.plain = malloc((size_t)n * rows * 4);
    for (size_t i = 0; i < (size_t)n * cols; i++) c.x[i] = uniform();
    if (type == TS_Q8_0) ts_quantize(c.xq, c.xs, c.x, n, cols, gs);
    ts_matmul_plain(c.plain, c.x, c.xq, c.xs, &c.w, n);
    return c;
}
static void matmul_case_free(matmul_case *c) {
    free((void *)c->w.data), free((void *)c->w.scale);
    free(c->x), free(c->xs), free(c->xq), free(c->plain);
}
#endif
#if defined(TS_WASM)
/* WebAssembly's kernels (run.c, section 5) give the plain loops' bits: every output of
 * every shape, for prompts (blocks of 4 tokens and the rest) and single tokens. */
static void test_wasm_matmul(int type, int rows, int cols, int gs, int n) {
    matmul_case c = matmul_case_new(type, rows, cols, gs, n);
    float *fast = malloc((size_t)n * rows * 4);
    ts_wasm_matmul(fast, c.x, c.xq, c.xs, &c.w, n);
    CHECK_MSG(memcmp(c.plain, fast, (size_t)n * rows * 4) == 0, "wasm %s %dx%d gs %d n %d: not the plain loop's bits",
              type_names[type], rows, cols, gs, n);
    matmul_case_free(&c), free(fast);
}
#endif
#if defined(TS_SIMD)
static float weight_at(const ts_matrix *w, int i, int j) {
    size_t at = (size_t)i * w->cols + j;
    if (w->type == TS_F32) return ((const float *)w->data)[at];
    if (w->type == TS_BF16) return ts_bf16_to_f32(((const uint16_t *)w->data)[at]);
    return ((const int8_t *)w->data)[at] * w->scale[(size_t)i * ts_groups(w->cols, w->group_size) + j / w->group_size];
}

/* The documented order of a float dot product (run.c, "A float dot product's order"),
 * written out in scalars: 32 partial sums by fused multiply-adds, then halves added. */
static float dot_in_order(const ts_matrix *w, int i, const float *x) {
    float lane[32] = {0};
    for (int j = 0; j < w->cols; j++) lane[j % 32] = fmaf(weight_at(w, i, j), x[j], lane[j % 32]);
    for (int half = 16; half >= 1; half /= 2)
        for (int l = 0; l < half; l++) lane[l] += lane[l + half];
    return lane[0];
}

#ifdef _OPENMP
#include <omp.h>
#endif
static void set_threads(int n) {
#ifdef _OPENMP
    omp_set_num_threads(n);
#else
    (void)n;
#endif
}

static void test_matmul(int type, int rows, int cols, int gs, int n) {
    matmul_case c = matmul_case_new(type, rows, cols, gs, n);
    ts_matrix w = c.w;
    int groups = ts_groups(cols, gs > 0 ? gs : 1);
    float *x = c.x, *xs = c.xs, *plain = c.plain;
    int8_t *xq = c.xq;
    float *fast = malloc((size_t)n * rows * 4), *one = malloc((size_t)n * rows * 4), *threads = malloc((size_t)n * rows * 4);
    void *packed = malloc(ts_q8_packed_bytes(n, cols, gs > 0 ? gs : 1) + 1);
    set_threads(1);
    ts_product product = {fast, &w};
    ts_matmul_fast(&product, 1, x, xq, xs, packed, n);
    int worst = -1, in_order_wrong = 0;
    double worst_err = 0;
    for (int t = 0; t < n; t++)
        for (int i = 0; i < rows; i++) {
            float a = plain[(size_t)t * rows + i], b = fast[(size_t)t * rows + i];
            if (type == TS_Q8_0) { /* exact integer sums, then the same float steps */
                if (memcmp(&a, &b, 4) != 0 && worst < 0) worst = t * rows + i;
                continue;
            }
            float ordered = dot_in_order(&w, i, x + (size_t)t * cols); /* every SIMD path's bits */
            if (memcmp(&ordered, &b, 4) != 0 && !in_order_wrong++)
                fprintf(stderr, "%s %dx%d n %d: output %d is %.9g, the documented order gives %.9g\n", type_names[type], rows, cols,
                        n, t * rows + i, b, ordered);
            /* Two orders of summing `cols` products differ by at most 2 cols eps sum|w x|
             * (the standard bound for recursive summation, plus one rounding per FMA). */
            double mag = 0;
            for (int j = 0; j < cols; j++) mag += fabs((double)weight_at(&w, i, j) * x[(size_t)t * cols + j]);
            double err = fabs((double)a - b), bound = 2.0 * (cols + 1) * FLT_EPSILON * mag;
            if (err > bound && err - bound > worst_err) worst_err = err - bound, worst = t * rows + i;
        }
    CHECK_MSG(in_order_wrong == 0, "%s %dx%d n %d: %d outputs not summed in the documented order", type_names[type], rows, cols, n,
          in_order_wrong);
    CHECK_MSG(worst < 0, "%s %dx%d gs %d n %d: fast %.9g vs plain %.9g at output %d", type_names[type], rows, cols, gs, n,
          worst < 0 ? 0.0 : fast[worst], worst < 0 ? 0.0 : plain[worst], worst);
    /* each token alone (the decoding path) gives the bits it got inside the block */
    int same = 1;
    for (int t = 0; t < n; t++) {
        ts_product alone = {one, &w};
        ts_matmul_fast(&alone, 1, x + (size_t)t * cols, xq + (size_t)t * cols, xs + (size_t)t * groups, packed, 1);
        same &= memcmp(one, fast + (size_t)t * rows, (size_t)rows * 4) == 0;
    }
    CHECK_MSG(same, "%s %dx%d gs %d n %d: a token alone differs from the same token in a block", type_names[type], rows, cols, gs, n);
    for (int th = 2; th <= 3; th++) { /* nor on the number of threads, nor on the other products of the call */
        set_threads(th);
        ts_product product3[3] = {{plain, &w}, {threads, &w}, {one, &w}}; /* three at once: the middle one */
        ts_matmul_fast(product3, 3, x, xq, xs, packed, n);
        CHECK_MSG(memcmp(threads, fast, (size_t)n * rows * 4) == 0, "%s %dx%d n %d: %d threads differ from 1", type_names[type], rows,
              cols, n, th);
    }
    set_threads(1);
    matmul_case_free(&c);
    free(fast), free(one), free(threads), free(packed);
}

/* ts_quantize == llama2.c's quantize (fmaxf, roundf), including halves and ragged groups,
 * and the clamped one for broken activations (NaN, denormal or infinite group scales). */
/* ts_exp (softmax, SwiGLU) gives libm's expf bits: every 13th float of 32 bits, which covers
 * every exponent and table slot, and the special values (libm's path). */
static void test_exp(void) {
#if !defined(TS_EXP_LANES)
    printf("ok   ts_exp is libm's expf in this build (no vector exp on this path)\n");
    return;
#endif
    enum { CHUNK = 4096 };
    static float got[CHUNK], in[CHUNK];
    long long checked = 0, wrong = 0;
    uint32_t first_wrong = 0;
    int fill = 0;
    static const float special[] = {0.0f, -0.0f, 88.0f, -88.0f, 87.99999f, -87.99999f, 88.72283f, 88.7229f, -103.97f,
                                    -104.0f, 1e-45f, -1e-45f, INFINITY, -INFINITY, NAN, 1e30f, -1e30f, 0.5f};
    for (uint64_t u = 0; u <= 0xffffffffull + sizeof special / sizeof special[0]; u += u <= 0xffffffffull ? 13 : 1) {
        float v;
        if (u <= 0xffffffffull) {
            uint32_t bits = (uint32_t)u;
            memcpy(&v, &bits, 4);
        } else v = special[u - 0xffffffffull - 1];
        in[fill++] = v;
        if (fill < CHUNK && u + 13 <= 0xffffffffull + sizeof special / sizeof special[0]) continue;
        memcpy(got, in, (size_t)fill * 4);
        ts_exp(got, (size_t)fill);
        for (int i = 0; i < fill; i++) {
            float want = expf(in[i]);
            checked++;
            if (memcmp(&want, &got[i], 4) != 0 && !(want != want && got[i] != got[i]) && wrong++ == 0) memcpy(&first_wrong, &in[i], 4);
        }
        fill = 0;
    }
    float at;
    memcpy(&at, &first_wrong, 4);
    CHECK_MSG(wrong == 0, "ts_exp differs from libm's expf at %lld of %lld floats, first at %a: this libm's expf is not "
          "glibc's algorithm, and SIMD and plain builds would sample differently", wrong, checked, at);
    if (wrong == 0) printf("ok   ts_exp == expf at %lld floats\n", checked);
}

/* ts_max and ts_argmax against their loops, with NaNs, infinities and zeros of both signs
 * at random places: the same value (zeros of either sign being equal) and the same index. */
static void test_max(void) {
    static const float odd[] = {NAN, INFINITY, -INFINITY, 0.0f, -0.0f, 1e-45f, 3.0e38f};
    float x[300];
    int bad_max = 0, bad_arg = 0;
    for (int trial = 0; trial < 3000; trial++) {
        int n = 1 + trial % 300;
        for (int i = 0; i < n; i++) x[i] = uniform() * 10.0f;
        for (int k = 0; k < trial % 5; k++) x[(trial * 7 + k * 31) % n] = odd[(trial + k) % 7];
        float want = x[0];
        int best = 0;
        for (int i = 1; i < n; i++) {
            if (x[i] > want) want = x[i];
            if (x[i] > x[best]) best = i;
        }
        float got = ts_max(x, n);
        bad_max += !(got == want || (got != got && want != want));
        bad_arg += ts_argmax(x, n) != best;
    }
    CHECK_MSG(bad_max == 0 && bad_arg == 0, "ts_max differs from its loop in %d of 3000 arrays, ts_argmax in %d", bad_max, bad_arg);
}

#if defined(TS_AVX512)
/* ts_value_sums_lanes against attention's loop (ts_axpy position after position), bit for
 * bit, at the head sizes and groupings of the TinyStories models and awkward lengths. */
static void test_value_sums(void) {
    static const int shapes[][3] = {{4, 4, 1}, {8, 2, 2}, {8, 2, 1}, {16, 1, 1}, {48, 1, 1}, {64, 1, 1}, {64, 3, 1},
                                    {4, 3, 1}, {32, 2, 2}, {6, 2, 1}};
    int bad = 0, used = 0;
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        int hd = shapes[s][0], nh = shapes[s][1], group = shapes[s][2], H = 8 * group > nh ? 8 * group : nh;
        int kv_dim = H / group * hd, P = 700;
        for (int len = 1; len <= 600; len += 97) {
            float *a = malloc((size_t)nh * P * 4), *v = malloc((size_t)len * kv_dim * 4 + 64);
            float want[256] = {0}, got[256];
            for (int i = 0; i < nh * P; i++) a[i] = uniform();
            for (int i = 0; i < len * kv_dim; i++) v[i] = uniform();
            int h0 = group; /* a unit that does not start at head 0 */
            for (int k = 0; k < len; k++)
                for (int h = 0; h < nh; h++)
                    for (int i = 0; i < hd; i++)
                        want[h * hd + i] += a[(size_t)h * P + k] * v[(size_t)k * kv_dim + (h0 + h) / group * hd + i];
            if (ts_value_sums_lanes(got, a, P, v, kv_dim, h0, nh, hd, group, len)) {
                used++;
                bad += memcmp(want, got, (size_t)nh * hd * 4) != 0;
            }
            free(a), free(v);
        }
    }
    CHECK_MSG(bad == 0 && used >= 40, "ts_value_sums_lanes: %d of %d differ from the loop", bad, used);
}
#endif

static void test_quantize(void) {
    enum { n = 3, cols = 200, gs = 64, groups = 4 };
    static float x[n * cols], s[n * groups], ref_s[n * groups];
    static int8_t q[n * cols], ref_q[n * cols];
    for (int i = 0; i < n * cols; i++) x[i] = i % 7 == 0 ? (float)(i % 255 - 127) * 0.5f : uniform() * 3.0f;
    for (int i = 0; i < cols; i++) x[cols + i] = 0.0f; /* an all-zero token: scale 0 */
    x[2 * cols + 5] = NAN;                               /* token 2: a NaN in group 0, */
    for (int i = 64; i < 128; i++) x[2 * cols + i] = (float)(i - 96) * 1e-43f; /* denormals, */
    x[2 * cols + 130] = INFINITY;                        /* an infinity in group 2 */
    ts_quantize(q, s, x, n, cols, gs);
    for (int t = 0; t < n; t++)
        for (int g = 0; g < groups; g++) {
            int len = cols - g * gs < gs ? cols - g * gs : gs;
            const float *xg = x + t * cols + g * gs;
            float wmax = 0.0f;
            for (int i = 0; i < len; i++) wmax = fmaxf(wmax, fabsf(xg[i]));
            float scale = wmax / 127.0f;
            ref_s[t * groups + g] = scale;
            for (int i = 0; i < len; i++) {
                float v = scale > 0.0f ? xg[i] / scale : 0.0f;
                v = v > 127.0f ? 127.0f : v < -127.0f ? -127.0f : v == v ? v : 0.0f;
                ref_q[t * cols + g * gs + i] = (int8_t)roundf(v);
            }
        }
    CHECK_MSG(memcmp(q, ref_q, sizeof q) == 0 && memcmp(s, ref_s, sizeof s) == 0, "ts_quantize differs from fmaxf/roundf quantization");
}
#endif

/* ts_argmax == the first index of the maximum, as llama2.c's loop finds it, with ties,
 * signed zeros and NaNs. */
static void test_argmax(void) {
    static float p[1000];
    uint64_t r = 12345;
    int bad = 0;
    for (int trial = 0; trial < 2000; trial++) {
        int n = 1 + (int)(r % 999);
        for (int i = 0; i < n; i++) {
            r ^= r << 13, r ^= r >> 7, r ^= r << 17;
            int kind = (int)(r % 16);
            p[i] = kind == 0 ? NAN : kind == 1 ? -0.0f : kind == 2 ? 0.0f : (float)((int)(r >> 40) % 7) - 3.0f;
        }
        if (trial % 3 == 0) p[0] = NAN;
        int best = 0;
        for (int i = 1; i < n; i++)
            if (p[i] > p[best]) best = i;
        bad += ts_argmax(p, n) != best;
    }
    CHECK_MSG(bad == 0, "ts_argmax differs from the first-maximum loop in %d of 2000 arrays", bad);
}

/* Logits of tokens run in one call (blocks of TS_BATCH) == the same tokens one by one. */
/* The fast engine's attention against ts_attention_plain, bit for bit: the weights and the
 * outputs of a block of queries at the end of a session whose cache holds n positions
 * (every layer: GPT-Neo's local windows too). */
static void test_attention_fast_plain(ts_session *s, int n) {
    const ts_config *c = &s->model->config;
    int q_dim = c->n_heads * c->head_dim, H = c->n_heads, P = s->max_positions;
    int nq = n < 20 ? n : 20, pos = n - nq;
    if (nq > s->batch) nq = s->batch;
    float *q = malloc((size_t)nq * q_dim * 4), *fast = malloc((size_t)nq * q_dim * 4), *plain = malloc((size_t)nq * q_dim * 4);
    float *att = malloc((size_t)nq * H * P * 4);
    for (int i = 0; i < nq * q_dim; i++) q[i] = (float)((i * 7919) % 2001 - 1000) / 300.0f;
    int bad = 0, declined = 0;
    for (int l = 0; l < c->n_layers; l++) {
        if (!ts_fast_attention(s, l, pos, nq, q, fast)) {
            declined++;
            continue;
        }
        memcpy(att, s->att, (size_t)nq * H * P * 4);
        ts_attention_plain(s, l, pos, nq, q, plain);
        if (memcmp(fast, plain, (size_t)nq * q_dim * 4) != 0) bad++;
        int window = s->model->layers[l].window;
        for (int t = 0; t < nq; t++) {
            int p = pos + t, start = (window > 0 && p - window + 1 > 0) ? p - window + 1 : 0;
            for (int h = 0; h < H; h++)
                if (memcmp(att + ((size_t)t * H + h) * P, s->att + ((size_t)t * H + h) * P, (size_t)(p - start + 1) * 4) != 0) bad++;
        }
    }
#if defined(TS_SIMD)
    CHECK_MSG(declined == 0, "ts_fast_attention declined %d layers in a SIMD build", declined);
#endif
    CHECK_MSG(bad == 0, "ts_fast_attention differs from ts_attention_plain in %d places", bad);
    free(q), free(fast), free(plain), free(att);
}

static void test_blocks_equal_tokens(const char *path, const char *tok_path, int n) {
    ts_model *m;
    ts_session *a, *b;
    ts_error err = {0, ""};
    if (ts_model_load(&m, path, tok_path, &err)) {
        CHECK_MSG(0, "cannot load %s: %s", path, err.msg);
        return;
    }
    const ts_config *c = ts_model_config(m);
    if (n > c->seq_len) n = c->seq_len;
    int *tokens = malloc((size_t)n * sizeof(int));
    for (int i = 0; i < n; i++) tokens[i] = (int)((i * 7919u + 3) % (unsigned)c->vocab_size);
    float *all = malloc((size_t)n * c->vocab_size * 4);
    int ok = !ts_session_new(&a, m, 0, &err) && !ts_session_new(&b, m, 0, &err) && !ts_forward_all(a, tokens, n, 0, all, &err);
    CHECK_MSG(ok, "%s: %s", path, err.msg);
    int differ = -1;
    for (int i = 0; ok && i < n; i++) {
        float *one = ts_forward(b, &tokens[i], 1, i, &err);
        if (!one || memcmp(one, all + (size_t)i * c->vocab_size, (size_t)c->vocab_size * 4) != 0) {
            differ = i;
            break;
        }
    }
    CHECK_MSG(differ < 0, "%s: logits at position %d differ between the block and one token at a time", path, differ);
    if (ok) test_attention_fast_plain(a, n);
    if (ok) ts_session_free(a), ts_session_free(b);
    free(tokens), free(all);
    ts_model_free(m);
}

/* llama2.c's encoder, quadratic: the reference for a few KB of text. Symbols as
 * sentencepiece makes them (a dummy-prefix space, UTF-8 characters or their bytes), then
 * repeatedly merge the best-scoring adjacent pair, leftmost on ties. */
static int reference_encode(const ts_tokenizer *t, const char *text, size_t len, int *ids) {
    int n = 0;
    ids[n++] = t->bos_id;
    ids[n++] = t->space_id;
    for (size_t i = 0; i < len;) {
        size_t j = i + 1;
        while (j < len && j - i < 4 && ((unsigned char)text[j] & 0xC0) == 0x80) j++;
        int id = ts_lookup2(t, text + i, j - i, "", 0);
        if (id >= 0) ids[n++] = id;
        else
            for (size_t k = i; k < j; k++) ids[n++] = t->byte_token[(unsigned char)text[k]];
        i = j;
    }
    for (;;) {
        float best = -1e30f;
        int at = -1, merged = -1;
        for (int i = 1; i + 1 < n; i++) {
            int id = ts_lookup2(t, t->piece[ids[i]], (size_t)t->piece_len[ids[i]], t->piece[ids[i + 1]],
                                (size_t)t->piece_len[ids[i + 1]]);
            if (id >= 0 && t->score[id] > best) best = t->score[id], at = i, merged = id;
        }
        if (at < 0) return n;
        ids[at] = merged;
        memmove(ids + at + 1, ids + at + 2, (size_t)(n - at - 2) * sizeof(int));
        n--;
    }
}

/* Encoding with the cuts == encoding with none (every byte pair marked as seen), and ==
 * llama2.c's quadratic encoder on the first 6 KB. */
static void test_tokenizer_cuts(const char *shared) {
    char tok[512], text_path[512];
    snprintf(tok, sizeof tok, "%s/models/llama2-tokenizer.bin", shared);
    snprintf(text_path, sizeof text_path, "%s/data/tinystories-valid-head.txt", shared);
    FILE *f = fopen(text_path, "rb");
    if (!f) {
        n_skip++, printf("SKIP tokenizer cut check: %s not found (set SHARED)\n", text_path);
        return;
    }
    /* a model that is only its tokenizer */
    ts_model *m = calloc(1, sizeof(ts_model));
    ts_config c = {0};
    c.vocab_size = 32000, c.bos_id = 1, c.eos_id = 2;
    static unsigned char tok_data[1 << 20];
    FILE *tf = fopen(tok, "rb");
    size_t tok_size = tf ? fread(tok_data, 1, sizeof tok_data, tf) : 0;
    if (tf) fclose(tf);
    ts_error err = {0, ""};
    CHECK_MSG(tok_size > 0 && ts_tokenizer_init(&m->tokenizer, TS_TOK_SENTENCEPIECE, tok_data, tok_size, &c, &err) == 0,
          "llama2 tokenizer %s: %s", tok, err.msg);
    m->config = c;
    static char text[200000];
    size_t len = fread(text, 1, sizeof text - 1, f);
    fclose(f);
    const char *odd[] = {"  two  spaces  ", "tab\there", "ünïcödé ✓ 😀", "\n\nnew lines\n", "a", " ", "", "<0x41>b", "x\x01y\xff"};
    int *cut = malloc((len + 3) * sizeof(int)), *whole = malloc((len + 3) * sizeof(int));
    for (size_t k = 0; k <= sizeof odd / sizeof odd[0]; k++) {
        const char *s = k < sizeof odd / sizeof odd[0] ? odd[k] : text;
        size_t n = k < sizeof odd / sizeof odd[0] ? strlen(s) : len;
        int n_cut = 0, n_whole = 0;
        unsigned char saved[65536 / 8];
        ts_encode(m, s, n, 1, cut, (int)len + 3, &n_cut, &err);
        memcpy(saved, m->tokenizer.pair_seen, sizeof saved);
        memset(m->tokenizer.pair_seen, 0xff, sizeof saved); /* no place to cut */
        ts_encode(m, s, n, 1, whole, (int)len + 3, &n_whole, &err);
        memcpy(m->tokenizer.pair_seen, saved, sizeof saved);
        CHECK_MSG(n_cut == n_whole && memcmp(cut, whole, (size_t)n_cut * sizeof(int)) == 0,
              "tokenizer: cutting the text changes its ids (%d vs %d ids) for text %d", n_cut, n_whole, (int)k);
        if (n == 0) continue; /* no dummy prefix for an empty text */
        if (n > 6000) n = 6000;
        while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80) n--; /* whole characters */
        ts_encode(m, s, n, 1, cut, (int)len + 3, &n_cut, &err);
        int n_ref = reference_encode(&m->tokenizer, s, n, whole);
        CHECK_MSG(n_cut == n_ref && memcmp(cut, whole, (size_t)n_cut * sizeof(int)) == 0,
              "tokenizer: %d ids where llama2.c's encoder gives %d, for text %d", n_cut, n_ref, (int)k);
    }
    free(cut), free(whole);
    ts_tokenizer_free(&m->tokenizer);
    free(m);
}

int main(void) {
#if defined(TS_SIMD)
    printf("SIMD path: %s\n", TS_KERNEL_PATH);
    /* rows, cols, Q8_0 group size: vector tails, ragged groups, groups over a vector */
    int shapes[][3] = {{1, 1, 1}, {5, 7, 3}, {9, 172, 4}, {13, 288, 64}, {8, 64, 32}, {70, 768, 64},
                       {33, 200, 200}, {3, 300, 128}, {4, 17, 17}, {6, 2048, 64}, {40, 96, 32}, {17, 130, 16}, {7, 1000, 24}};
    int ns[] = {1, 2, 4, 5, 9, 20, 32, 40};
    test_quantize();
    test_exp();
    test_max();
#if defined(TS_AVX512)
    test_value_sums();
#endif
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
        for (size_t k = 0; k < sizeof ns / sizeof ns[0]; k++)
            for (int type = 0; type < 3; type++) test_matmul(type, shapes[s][0], shapes[s][1], shapes[s][2], ns[k]);
#elif defined(TS_WASM)
    printf("SIMD path: %s (the plain loops' bits)\n", TS_KERNEL_PATH);
    int shapes[][3] = {{1, 1, 1}, {5, 7, 3}, {9, 172, 4}, {13, 288, 64}, {8, 64, 32}, {70, 768, 64},
                       {33, 200, 200}, {3, 300, 128}, {4, 17, 17}, {6, 2048, 64}, {40, 96, 32}, {17, 130, 16}, {7, 1000, 24}};
    int ns[] = {1, 2, 3, 4, 5, 9, 20, 32, 40};
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
        for (size_t k = 0; k < sizeof ns / sizeof ns[0]; k++)
            for (int type = 0; type < 3; type++) test_wasm_matmul(type, shapes[s][0], shapes[s][1], shapes[s][2], ns[k]);
#else
    n_skip++, printf("SKIP fast-vs-plain kernel checks: this build has no SIMD path (plain loops only)\n");
#endif
#if defined(__wasi__)
    n_skip++, printf("SKIP random whole models: WASI runs no bench/gen (tests/wasm.sh compares whole models with the native build)\n");
#else
    /* whole models from bench/gen: every weight type, Llama and GPT-Neo (local attention) */
    const char *gen[][2] = {
        {"f32 llama 64 172 2 4 512 80", "llama-f32"},  {"bf16 llama 64 172 2 4 512 80", "llama-bf16"},
        {"q8_0 llama 96 200 2 4 512 80", "llama-q8"},  {"f32 gptneo 64 256 3 16 600 80 16", "neo-f32"},
        {"q8_0 gptneo 64 256 3 16 600 80 16", "neo-q8"},
    };
    for (size_t i = 0; i < sizeof gen / sizeof gen[0]; i++) {
        char path[256], cmd[512];
        snprintf(path, sizeof path, "/tmp/test_speed_%d_%s.bin", (int)getpid(), gen[i][1]);
        snprintf(cmd, sizeof cmd, "bench/gen %s %s", path, gen[i][0]);
        if (system(cmd) != 0) {
            CHECK_MSG(0, "cannot run %s (build bench/gen first: make bench/gen)", cmd);
            continue;
        }
        test_blocks_equal_tokens(path, NULL, 75);
        remove(path);
    }
#endif
    const char *shared = getenv("SHARED") ? getenv("SHARED") : "../shared";
    char model[512], tok[512];
    snprintf(model, sizeof model, "%s/models/stories260K.bin", shared);
    snprintf(tok, sizeof tok, "%s/models/tok512.bin", shared);
    FILE *f = fopen(model, "rb");
    if (f) {
        fclose(f);
        test_blocks_equal_tokens(model, tok, 100);
    } else
        n_skip++, printf("SKIP stories260K block-vs-token check: %s not found (set SHARED)\n", model);
    test_tokenizer_cuts(shared);
    test_argmax();
    return check_summary("test_speed");
}
