/* test_all.c -- the C test suite for run.c.
 *
 *   make test_all && SHARED=../shared ./test_all      (from the repository root)
 *
 * It includes run.c as a library and tests each piece against independent code written
 * here: kernels against plain double loops, whole forward passes against a naive
 * reference transformer, the tokenizer against sentencepiece's ids and a quadratic
 * re-implementation of llama2.c's merge loop, the sampler against a hand-coded
 * xorshift*, loaders on good and broken files, and the ./run binary against the stdout
 * of the reference llama2.c.
 *
 * Every failed check prints one line: file:line, what, expected vs got. The last line
 * is "N passed, M failed" (", K skipped" when groups were skipped, e.g. because the
 * shared data folder $SHARED, default ../shared, is absent). Exit status 1 on failure.
 */
#define RUN_NO_MAIN
#include "run.c"
#include "fuzz/synth.h" /* the one C writer of model files */

#include <sys/wait.h>

/* Time bounds are for optimized builds; sanitizer builds (make test-asan) run ~10x slower. */
#if defined(__SANITIZE_ADDRESS__)
#define TIME_BOUND_SCALE 10.0
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define TIME_BOUND_SCALE 10.0
#endif
#endif
#ifndef TIME_BOUND_SCALE
#define TIME_BOUND_SCALE 1.0
#endif

/* ==========================================================================
 * A tiny test framework
 * ========================================================================== */

#include "tests/check.h"

#define CHECK_BYTES(got, got_len, want, want_len) \
    check_bytes(__FILE__, __LINE__, #got, (const char *)(got), (got_len), (const char *)(want), (want_len))
/* Text for a one-line message: control bytes escaped, at most max bytes shown. Four
 * rotating buffers, so one message may show up to four texts. */
static const char *oneline(const char *s, size_t len, size_t max) {
    static char out[4][400];
    static int next;
    char *o = out[next++ % 4];
    size_t k = 0;
    for (size_t i = 0; i < len && i < max && k + 5 < sizeof out[0]; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '\n') o[k++] = '\\', o[k++] = 'n';
        else if (c < 32 || c == 127) k += (size_t)snprintf(o + k, 5, "\\x%02x", c);
        else o[k++] = (char)c;
    }
    o[k] = '\0';
    return o;
}
#define ONELINE(str) oneline((str), strlen(str), 300)

static void check_bytes(const char *file, int line, const char *what, const char *got, size_t got_len,
                        const char *want, size_t want_len) {
    size_t i = 0;
    while (i < got_len && i < want_len && got[i] == want[i]) i++;
    if (i == got_len && i == want_len) {
        check(1, file, line, "%s", what);
        return;
    }
    size_t from = i > 20 ? i - 20 : 0;
    check(0, file, line, "%s: differs at byte %zu (lengths: expected %zu, got %zu): expected \"%s\", got \"%s\"", what, i,
          want_len, got_len, oneline(want + from, want_len - from, 40), oneline(got + from, got_len - from, 40));
}

static void skip(const char *name, const char *reason) {
    n_skip++;
    printf("SKIP %s: %s\n", name, reason);
}
static int file_exists(const char *path);
/* Skips the group (and returns 1) when one of the NULL-terminated paths is missing. */
static int skip_if_missing(const char *name, ...) {
    va_list ap;
    va_start(ap, name);
    const char *path, *missing = NULL;
    while (!missing && (path = va_arg(ap, const char *)) != NULL)
        if (!file_exists(path)) missing = path;
    va_end(ap);
    if (missing) {
        char reason[600];
        snprintf(reason, sizeof reason, "%s not found (set SHARED to the shared data folder)", missing);
        skip(name, reason);
    }
    return missing != NULL;
}

/* ==========================================================================
 * Helpers: random numbers, byte buffers, files, commands
 * ========================================================================== */

static const char *SHARED_DIR = "../shared"; /* $SHARED */
static const char *RUN_BINARY = "./run";      /* $RUN_BINARY: the binary under test */
#define TEST_PI 3.14159265358979323846

static uint64_t rng_next(uint64_t *s) { /* splitmix64: independent of the engine's generator */
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}
static float rng_uniform(uint64_t *s, float a) { /* in [-a, a) */
    return a * (2.0f * (float)(rng_next(s) >> 40) / 16777216.0f - 1.0f);
}
static float *rng_floats(uint64_t *s, size_t n, float center, float a) {
    float *p = (float *)malloc(n * sizeof(float));
    for (size_t i = 0; i < n; i++) p[i] = center + rng_uniform(s, a);
    return p;
}

typedef sy_buf buf; /* fuzz/synth.h's growable byte buffer */
static void buf_zeros(buf *b, size_t n) {
    static const unsigned char z[64];
    for (; n > 64; n -= 64) sy_put(b, z, 64);
    sy_put(b, z, n);
}
static void put_u32_at(unsigned char *p, uint32_t v) {
    p[0] = (unsigned char)v, p[1] = (unsigned char)(v >> 8), p[2] = (unsigned char)(v >> 16), p[3] = (unsigned char)(v >> 24);
}
static void buf_f32s(buf *b, const float *f, size_t n) {
    for (size_t i = 0; i < n; i++) sy_f32(b, f[i]);
}

static char *read_file(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    buf b = {0};
    char chunk[65536];
    size_t got;
    while ((got = fread(chunk, 1, sizeof chunk, f)) > 0) sy_put(&b, chunk, got);
    fclose(f);
    sy_put(&b, "", 1); /* NUL-terminated for convenience */
    *len = b.n - 1;
    return (char *)b.p;
}
static int write_file(const char *path, const void *data, size_t n) {
    FILE *f = fopen(path, "wb");
    if (!f) return 0;
    int ok = fwrite(data, 1, n, f) == n;
    return fclose(f) == 0 && ok;
}
/* A fresh temporary file name (the file exists, empty). */
static void temp_path(char *path, size_t size) {
    snprintf(path, size, "/tmp/test_all_XXXXXX");
    int fd = mkstemp(path);
    if (fd >= 0) close(fd);
}
static const char *shared_path(char *out, size_t size, const char *rel) {
    snprintf(out, size, "%s/%s", SHARED_DIR, rel);
    return out;
}
static int file_exists(const char *path) {
    FILE *f = fopen(path, "rb");
    if (f) fclose(f);
    return f != NULL;
}

/* A command's stdout, stderr and how it ended. */
typedef struct {
    char *out, *err;
    size_t out_len, err_len;
    int exit_code; /* -1 when it did not exit normally */
    int crashed;   /* killed by a signal (also as the shell's 128+n) */
} cmd_result;

static void run_cmd(const char *cmd, cmd_result *r) {
    char err_path[64], full[8192];
    temp_path(err_path, sizeof err_path);
    snprintf(full, sizeof full, "%s 2>%s", cmd, err_path);
    memset(r, 0, sizeof *r);
    buf b = {0};
    FILE *p = popen(full, "r");
    if (p) {
        char chunk[4096];
        size_t got;
        while ((got = fread(chunk, 1, sizeof chunk, p)) > 0) sy_put(&b, chunk, got);
    }
    int status = p ? pclose(p) : -1;
    sy_put(&b, "", 1);
    r->out = (char *)b.p, r->out_len = b.n - 1;
    r->err = read_file(err_path, &r->err_len);
    if (!r->err) r->err = (char *)calloc(1, 1);
    remove(err_path);
    r->exit_code = status != -1 && WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    r->crashed = status == -1 || WIFSIGNALED(status) || r->exit_code >= 128;
}
static void cmd_free(cmd_result *r) { free(r->out), free(r->err); }

/* Appends s to a shell command line, single-quoted. */
static void shell_quote(buf *b, const char *s) {
    sy_put(b, " '", 2);
    for (; *s; s++) {
        if (*s == '\'') sy_put(b, "'\\''", 4);
        else sy_put(b, s, 1);
    }
    sy_put(b, "'", 1);
}

/* How many lines of text start with prefix. */
static int count_lines_starting(const char *text, const char *prefix) {
    int n = 0;
    size_t k = strlen(prefix);
    for (const char *p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL)
        if (strncmp(p, prefix, k) == 0) n++;
    return n;
}

/* ==========================================================================
 * A minimal JSON reader (for the fixtures): objects, arrays, strings with escapes
 * (\uXXXX incl. surrogate pairs to UTF-8), numbers, true/false/null.
 * ========================================================================== */

typedef struct json {
    char type; /* 'o' object, 'a' array, 's' string, 'n' number, 'b' boolean, 'z' null */
    double num;
    char *str; /* strings: UTF-8, also NUL-terminated */
    size_t len;
    int n;             /* arrays and objects: number of items */
    struct json *item; /* (n) */
    char **key;        /* objects: (n) */
} json;

static const char *json_ws(const char *p) {
    while (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t') p++;
    return p;
}
static void utf8_put(buf *b, unsigned cp) {
    unsigned char u[4];
    size_t n;
    if (cp < 0x80) u[0] = (unsigned char)cp, n = 1;
    else if (cp < 0x800) u[0] = (unsigned char)(0xC0 | cp >> 6), u[1] = (unsigned char)(0x80 | (cp & 63)), n = 2;
    else if (cp < 0x10000)
        u[0] = (unsigned char)(0xE0 | cp >> 12), u[1] = (unsigned char)(0x80 | (cp >> 6 & 63)), u[2] = (unsigned char)(0x80 | (cp & 63)), n = 3;
    else
        u[0] = (unsigned char)(0xF0 | cp >> 18), u[1] = (unsigned char)(0x80 | (cp >> 12 & 63)),
        u[2] = (unsigned char)(0x80 | (cp >> 6 & 63)), u[3] = (unsigned char)(0x80 | (cp & 63)), n = 4;
    sy_put(b, u, n);
}
static int json_hex4(const char *p, unsigned *out) {
    *out = 0;
    for (int i = 0; i < 4; i++) {
        int v = ts_hexval(p[i]);
        if (v < 0) return 0;
        *out = *out * 16 + (unsigned)v;
    }
    return 1;
}
static const char *json_string(const char *p, char **out, size_t *len) { /* p at the opening quote */
    buf b = {0};
    for (p++; *p != '"'; p++) {
        if (!*p) return free(b.p), NULL;
        if (*p != '\\') {
            sy_put(&b, p, 1);
            continue;
        }
        p++;
        unsigned cp, lo;
        switch (*p) {
        case 'n': sy_put(&b, "\n", 1); break;
        case 't': sy_put(&b, "\t", 1); break;
        case 'r': sy_put(&b, "\r", 1); break;
        case 'b': sy_put(&b, "\b", 1); break;
        case 'f': sy_put(&b, "\f", 1); break;
        case '"': case '\\': case '/': sy_put(&b, p, 1); break;
        case 'u':
            if (!json_hex4(p + 1, &cp)) return free(b.p), NULL;
            p += 4;
            if (cp >= 0xD800 && cp < 0xDC00 && p[1] == '\\' && p[2] == 'u' && json_hex4(p + 3, &lo) && lo >= 0xDC00 && lo < 0xE000) {
                cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                p += 6;
            }
            utf8_put(&b, cp);
            break;
        default: return free(b.p), NULL;
        }
    }
    sy_put(&b, "", 1);
    *out = (char *)b.p, *len = b.n - 1;
    return p + 1;
}
static const char *json_value(const char *p, json *v) {
    memset(v, 0, sizeof *v);
    p = json_ws(p);
    if (*p == '{' || *p == '[') {
        char close = *p == '{' ? '}' : ']';
        v->type = *p == '{' ? 'o' : 'a';
        p = json_ws(p + 1);
        if (*p == close) return p + 1;
        for (;;) {
            v->item = (json *)realloc(v->item, (size_t)(v->n + 1) * sizeof(json));
            v->key = (char **)realloc(v->key, (size_t)(v->n + 1) * sizeof(char *));
            v->key[v->n] = NULL;
            if (v->type == 'o') {
                size_t klen;
                p = json_ws(p);
                if (*p != '"' || !(p = json_string(p, &v->key[v->n], &klen))) return NULL;
                p = json_ws(p);
                if (*p++ != ':') return NULL;
            }
            if (!(p = json_value(p, &v->item[v->n]))) return NULL;
            v->n++;
            p = json_ws(p);
            if (*p == ',') p++;
            else if (*p == close) return p + 1;
            else return NULL;
        }
    }
    if (*p == '"') {
        v->type = 's';
        return json_string(p, &v->str, &v->len);
    }
    if (!strncmp(p, "true", 4)) return v->type = 'b', v->num = 1, p + 4;
    if (!strncmp(p, "false", 5)) return v->type = 'b', p + 5;
    if (!strncmp(p, "null", 4)) return v->type = 'z', p + 4;
    char *end;
    v->type = 'n';
    v->num = strtod(p, &end);
    return end == p ? NULL : end;
}
static void json_free(json *v) {
    for (int i = 0; i < v->n; i++) {
        json_free(&v->item[i]);
        free(v->key[i]);
    }
    free(v->item), free(v->key), free(v->str);
}
static const json *json_get(const json *o, const char *key) {
    for (int i = 0; o && o->type == 'o' && i < o->n; i++)
        if (!strcmp(o->key[i], key)) return &o->item[i];
    return NULL;
}
/* Parses a whole file; 0 if missing or malformed. */
static int json_load(const char *path, json *out) {
    size_t len;
    char *text = read_file(path, &len);
    if (!text) return 0;
    const char *end = json_value(text, out);
    free(text);
    return end != NULL;
}

static void test_json_reader(void) {
    json v;
    const char *text = "{\"a\": [1, -2.5e1, \"x\\n\\\"\\\\\\u00e9\\ud83e\\udd99\"], \"b\": {}, \"c\": true}";
    const char *end = json_value(text, &v);
    CHECK(end != NULL && *json_ws(end) == '\0');
    const json *a = json_get(&v, "a");
    CHECK(a && a->type == 'a' && a->n == 3);
    if (a && a->n == 3) {
        CHECK_NEAR(a->item[0].num, 1.0, 0.0);
        CHECK_NEAR(a->item[1].num, -25.0, 0.0);
        CHECK_BYTES(a->item[2].str, a->item[2].len, "x\n\"\\\xc3\xa9\xf0\x9f\xa6\x99", (size_t)10);
    }
    CHECK(json_get(&v, "b") && json_get(&v, "b")->n == 0);
    CHECK(json_get(&v, "c") && json_get(&v, "c")->num == 1);
    json_free(&v);
}

/* ==========================================================================
 * 1. Kernels against plain double-precision loops
 * ========================================================================== */

static float bf16_to_f32(uint16_t h) {
    uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}
/* w := what a Q8_0 or BF16 file stores for it, as floats */
static void round_like(float *w, int rows, int cols, int type, int gs) {
    size_t n = (size_t)rows * cols;
    if (type == TS_BF16)
        for (size_t i = 0; i < n; i++) w[i] = bf16_to_f32(sy_f32_to_bf16(w[i]));
    if (type != TS_Q8_0) return;
    int groups = (cols + gs - 1) / gs;
    int8_t *q = (int8_t *)malloc(n);
    float *s = (float *)malloc((size_t)rows * groups * sizeof(float));
    sy_q8_quantize(w, rows, cols, gs, q, s);
    for (int i = 0; i < rows; i++)
        for (int j = 0; j < cols; j++) w[(size_t)i * cols + j] = q[(size_t)i * cols + j] * s[(size_t)i * groups + j / gs];
    free(q), free(s);
}

static void test_matmul(void) {
    uint64_t rng = 11;
    /* rows, cols, tokens, group size: odd sizes, one token and several, partial groups */
    int shapes[][4] = {{37, 97, 1, 32}, {37, 97, 5, 32}, {16, 64, 3, 16}, {5, 3, 2, 2}, {33, 48, 7, 48}};
    const char *names[] = {"f32", "q8_0", "bf16"};
    for (size_t sh = 0; sh < sizeof shapes / sizeof shapes[0]; sh++) {
        int rows = shapes[sh][0], cols = shapes[sh][1], n = shapes[sh][2], gs = shapes[sh][3];
        int groups = (cols + gs - 1) / gs;
        float *w = rng_floats(&rng, (size_t)rows * cols, 0.0f, 1.0f);
        float *x = rng_floats(&rng, (size_t)n * cols, 0.0f, 2.0f);
        for (int type = 0; type < 3; type++) {
            /* the matrix as stored, and wd: its values as floats */
            float *wd = (float *)malloc((size_t)rows * cols * sizeof(float));
            memcpy(wd, w, (size_t)rows * cols * sizeof(float));
            round_like(wd, rows, cols, type, gs);
            void *data = NULL;
            float *scale = NULL;
            if (type == TS_F32) data = wd;
            if (type == TS_BF16) {
                uint16_t *h = (uint16_t *)malloc((size_t)rows * cols * 2);
                for (size_t i = 0; i < (size_t)rows * cols; i++) h[i] = sy_f32_to_bf16(w[i]);
                data = h;
            }
            if (type == TS_Q8_0) {
                data = malloc((size_t)rows * cols);
                scale = (float *)malloc((size_t)rows * groups * sizeof(float));
                sy_q8_quantize(w, rows, cols, gs, (int8_t *)data, scale);
            }
            ts_matrix m = {0};
            m.type = type, m.rows = rows, m.cols = cols, m.group_size = gs, m.data = data, m.scale = scale;
            /* activations as the kernel sees them: Q8_0 quantizes them per group like runq */
            int8_t *xq = (int8_t *)malloc((size_t)n * cols);
            float *xs = (float *)malloc((size_t)n * groups * sizeof(float));
            float *xv = (float *)malloc((size_t)n * cols * sizeof(float));
            memcpy(xv, x, (size_t)n * cols * sizeof(float));
            if (type == TS_Q8_0) {
                sy_q8_quantize(x, n, cols, gs, xq, xs);
                for (int t = 0; t < n; t++)
                    for (int j = 0; j < cols; j++) xv[(size_t)t * cols + j] = xq[(size_t)t * cols + j] * xs[(size_t)t * groups + j / gs];
            }
            float *got_plain = (float *)malloc((size_t)n * rows * sizeof(float));
            float *got = (float *)malloc((size_t)n * rows * sizeof(float));
            ts_matmul_plain(got_plain, x, xq, xs, &m, n);
            /* ts_matmul through a session that only lends its quantization buffers */
            ts_model fake_model;
            ts_session fake;
            memset(&fake_model, 0, sizeof fake_model);
            memset(&fake, 0, sizeof fake);
            fake_model.config.group_size = gs;
            fake.model = &fake_model;
            fake.xq = (int8_t *)calloc((size_t)n * cols, 1);
            fake.xq_scale = (float *)calloc((size_t)n * groups, sizeof(float));
            ts_matmul(&fake, got, x, &m, n);
            /* error relative to sum |w| |x| of each output: float sums of ~100 terms */
            double err_plain = 0, err = 0, err_unquantized = 0;
            for (int t = 0; t < n; t++)
                for (int i = 0; i < rows; i++) {
                    double ref = 0, ref_x = 0, mag = 1e-30;
                    for (int j = 0; j < cols; j++) {
                        ref += (double)wd[(size_t)i * cols + j] * xv[(size_t)t * cols + j];
                        ref_x += (double)wd[(size_t)i * cols + j] * x[(size_t)t * cols + j];
                        mag += fabs((double)wd[(size_t)i * cols + j] * x[(size_t)t * cols + j]);
                    }
                    err_plain = fmax(err_plain, fabs(got_plain[(size_t)t * rows + i] - ref) / mag);
                    err = fmax(err, fabs(got[(size_t)t * rows + i] - ref) / mag);
                    err_unquantized = fmax(err_unquantized, fabs(got[(size_t)t * rows + i] - ref_x) / mag);
                }
            CHECK_MSG(err_plain <= 1e-5, "ts_matmul_plain %s (%d x %d, n %d): relative error %g > 1e-5", names[type], rows, cols, n, err_plain);
            CHECK_MSG(err <= 1e-5, "ts_matmul %s (%d x %d, n %d): relative error %g > 1e-5", names[type], rows, cols, n, err);
            /* Q8_0 activations lose at most half a step of max|x| / 127 per value */
            CHECK_MSG(err_unquantized <= 2e-2, "ts_matmul %s (%d x %d, n %d) vs unquantized x: relative error %g > 2e-2",
                      names[type], rows, cols, n, err_unquantized);
            free(fake.xq), free(fake.xq_scale);
            free(got), free(got_plain), free(xv), free(xq), free(xs), free(scale);
            if (data != wd) free(data);
            free(wd);
        }
        free(w), free(x);
    }
}

static void test_norms_softmax_activations(void) {
    uint64_t rng = 12;
    int size = 33;
    float *x = rng_floats(&rng, (size_t)size, 0.3f, 2.0f), *w = rng_floats(&rng, (size_t)size, 1.0f, 0.5f);
    float *b = rng_floats(&rng, (size_t)size, 0.0f, 0.5f), o[64];
    double eps = 1e-5, ss = 0, mean = 0, var = 0, err = 0;
    for (int j = 0; j < size; j++) ss += (double)x[j] * x[j], mean += x[j];
    mean /= size;
    for (int j = 0; j < size; j++) var += (x[j] - mean) * (x[j] - mean);
    var /= size;
    ts_rmsnorm(o, x, w, size, (float)eps);
    for (int j = 0; j < size; j++) err = fmax(err, fabs(o[j] - w[j] * x[j] / sqrt(ss / size + eps)));
    CHECK_LE(err, 1e-5);
    err = 0;
    ts_layernorm(o, x, w, b, size, (float)eps);
    for (int j = 0; j < size; j++) err = fmax(err, fabs(o[j] - ((x[j] - mean) / sqrt(var + eps) * w[j] + b[j])));
    CHECK_LE(err, 1e-5);

    /* softmax: the direct formula; huge inputs must not overflow */
    float s[50], s2[3] = {1000.0f, 1001.0f, 999.0f};
    for (int i = 0; i < 50; i++) s[i] = rng_uniform(&rng, 10.0f);
    double ref[50], sum = 0, mx = -1e30, total = 0;
    for (int i = 0; i < 50; i++) mx = fmax(mx, s[i]);
    for (int i = 0; i < 50; i++) sum += ref[i] = exp(s[i] - mx);
    ts_softmax(s, 50);
    err = 0;
    for (int i = 0; i < 50; i++) err = fmax(err, fabs(s[i] - ref[i] / sum)), total += s[i];
    CHECK_LE(err, 1e-6);
    CHECK_NEAR(total, 1.0, 1e-5);
    ts_softmax(s2, 3);
    double e0 = exp(-1.0), e2 = exp(-2.0), z = 1 + e0 + e2;
    CHECK_NEAR(s2[1], 1 / z, 1e-6);
    CHECK_NEAR(s2[0], e0 / z, 1e-6);
    CHECK_NEAR(s2[2], e2 / z, 1e-6);

    /* GELU (tanh form) and SiLU against their formulas */
    double gerr = 0, serr = 0;
    float gate[48], up[48], gelu[48]; /* SwiGLU: silu(gate) * up, with up = 1 or 2 */
    int n_gate = 0;
    for (double v = -8.0; v <= 8.0; v += 0.37) gelu[n_gate] = gate[n_gate] = (float)v, up[n_gate++] = 1.0f;
    int n_gelu = n_gate;
    gelu[n_gelu] = 0.0f, gelu[n_gelu + 1] = 20.0f, gelu[n_gelu + 2] = -20.0f, gelu[n_gelu + 3] = -100.0f;
    ts_gelu(gelu, (size_t)n_gelu + 4);
    for (int i = 0; i < n_gelu; i++) {
        double v = -8.0 + 0.37 * i, g = 0.5 * v * (1 + tanh(sqrt(2 / TEST_PI) * (v + 0.044715 * v * v * v)));
        gerr = fmax(gerr, fabs(gelu[i] - g) / (1 + fabs(g)));
    }
    gate[n_gate] = -100.0f, up[n_gate++] = 1.0f; /* no NaN from exp overflow */
    gate[n_gate] = 100.0f, up[n_gate++] = 2.0f;
    ts_swiglu(gate, up, (size_t)n_gate);
    for (int i = 0; i < n_gate - 2; i++) {
        double v = -8.0 + 0.37 * i;
        serr = fmax(serr, fabs(gate[i] - v / (1 + exp(-v))) / (1 + fabs(v)));
    }
    CHECK_LE(gerr, 1e-6);
    CHECK_LE(serr, 1e-6);
    CHECK_NEAR(gelu[n_gelu], 0.0, 0.0);
    CHECK_NEAR(gelu[n_gelu + 1], 20.0, 1e-5);
    CHECK_NEAR(gelu[n_gelu + 2], 0.0, 1e-5);
    CHECK_NEAR(gelu[n_gelu + 3], 0.0, 0.0); /* no NaN from exp overflow */
    CHECK_NEAR(gate[n_gate - 2], 0.0, 1e-6);
    CHECK_NEAR(gate[n_gate - 1], 200.0, 2e-4);
    free(x), free(w), free(b);
}

static void test_quantize(void) {
    uint64_t rng = 13;
    int n = 2, cols = 70, gs = 32, groups = 3; /* groups of 32, 32 and 6 */
    float *x = rng_floats(&rng, (size_t)n * cols, 0.0f, 3.0f), s[6];
    for (int j = 32; j < 64; j++) x[j] = 0.0f; /* row 0, group 1: all zeros */
    int8_t q[140];
    ts_quantize(q, s, x, n, cols, gs);
    double worst = 0;
    int zeros_ok = 1, max_ok = 1;
    for (int t = 0; t < n; t++)
        for (int g = 0; g < groups; g++) {
            float sc = s[t * groups + g];
            int peak = 0;
            for (int j = g * gs; j < cols && j < (g + 1) * gs; j++) {
                size_t k = (size_t)t * cols + j;
                if (sc == 0.0f) zeros_ok &= q[k] == 0;
                else worst = fmax(worst, fabs(q[k] * sc - x[k]) / sc); /* in units of the step */
                peak = abs(q[k]) > peak ? abs(q[k]) : peak;
            }
            if (sc > 0.0f) max_ok &= peak == 127;
        }
    CHECK_NEAR(s[1], 0.0, 0.0);
    CHECK(zeros_ok);
    CHECK(max_ok); /* the largest value of each group maps to +-127 */
    CHECK_LE(worst, 0.5 + 1e-4); /* dequantized within scale/2 of the input */
    free(x);
}

/* ==========================================================================
 * 2. Whole forward passes against a naive reference transformer (and RoPE)
 *
 * Independent of run.c: all in double, whole sequences at once (no KV cache), written
 * from the papers' formulas. Weights live in float arrays; the writer lays them out as
 * format.md says.
 * ========================================================================== */

#define REF_MAX_LAYERS 8
typedef struct {
    int dim, hidden, n_layers, n_heads, n_kv_heads, head_dim, vocab, seq;
    int gptneo;     /* 0: Llama (RMSNorm, RoPE, SwiGLU); 1: GPT-Neo (LayerNorm, learned positions, GELU) */
    unsigned flags; /* TS_FLAG_* as in the file */
    int window[REF_MAX_LAYERS];
    float theta, eps;
    float *emb, *pos, *fnorm_w, *fnorm_b, *cls; /* cls == emb when tied */
    struct {
        float *an_w, *an_b, *wq, *wk, *wv, *bq, *bk, *bv, *wo, *bo, *fn_w, *fn_b, *w1, *b1, *w3, *w2, *b2;
    } L[REF_MAX_LAYERS];
    float *blocks[256]; /* allocations to free */
    int n_blocks;
} ref_model;

static float *ref_tensor(ref_model *r, uint64_t *rng, size_t n, float center, float a) {
    float *p = rng_floats(rng, n, center, a);
    r->blocks[r->n_blocks++] = p;
    return p;
}
static void ref_free(ref_model *r) {
    for (int i = 0; i < r->n_blocks; i++) free(r->blocks[i]);
    r->n_blocks = 0;
}

/* Random weights for the shape already set in r (dims, gptneo, flags, windows). */
static void ref_randomize(ref_model *r, uint64_t seed) {
    uint64_t rng = seed;
    int d = r->dim, h = r->hidden, qd = r->n_heads * r->head_dim, kvd = r->n_kv_heads * r->head_dim;
    r->emb = ref_tensor(r, &rng, (size_t)r->vocab * d, 0.0f, 1.0f);
    if (r->gptneo) r->pos = ref_tensor(r, &rng, (size_t)r->seq * d, 0.0f, 0.5f);
    for (int l = 0; l < r->n_layers; l++) {
        r->L[l].an_w = ref_tensor(r, &rng, (size_t)d, 1.0f, 0.3f);
        if (r->gptneo) r->L[l].an_b = ref_tensor(r, &rng, (size_t)d, 0.0f, 0.2f);
        r->L[l].wq = ref_tensor(r, &rng, (size_t)qd * d, 0.0f, 0.4f);
        r->L[l].wk = ref_tensor(r, &rng, (size_t)kvd * d, 0.0f, 0.4f);
        r->L[l].wv = ref_tensor(r, &rng, (size_t)kvd * d, 0.0f, 0.4f);
        if (r->flags & TS_FLAG_QKV_BIAS) {
            r->L[l].bq = ref_tensor(r, &rng, (size_t)qd, 0.0f, 0.2f);
            r->L[l].bk = ref_tensor(r, &rng, (size_t)kvd, 0.0f, 0.2f);
            r->L[l].bv = ref_tensor(r, &rng, (size_t)kvd, 0.0f, 0.2f);
        }
        r->L[l].wo = ref_tensor(r, &rng, (size_t)d * qd, 0.0f, 0.3f);
        if (r->flags & TS_FLAG_OUT_BIAS) r->L[l].bo = ref_tensor(r, &rng, (size_t)d, 0.0f, 0.2f);
        r->L[l].fn_w = ref_tensor(r, &rng, (size_t)d, 1.0f, 0.3f);
        if (r->gptneo) r->L[l].fn_b = ref_tensor(r, &rng, (size_t)d, 0.0f, 0.2f);
        r->L[l].w1 = ref_tensor(r, &rng, (size_t)h * d, 0.0f, 0.4f);
        if (r->flags & TS_FLAG_MLP_BIAS) r->L[l].b1 = ref_tensor(r, &rng, (size_t)h, 0.0f, 0.2f);
        if (!r->gptneo) r->L[l].w3 = ref_tensor(r, &rng, (size_t)h * d, 0.0f, 0.4f);
        r->L[l].w2 = ref_tensor(r, &rng, (size_t)d * h, 0.0f, 0.3f);
        if (r->flags & TS_FLAG_MLP_BIAS) r->L[l].b2 = ref_tensor(r, &rng, (size_t)d, 0.0f, 0.2f);
    }
    r->fnorm_w = ref_tensor(r, &rng, (size_t)d, 1.0f, 0.3f);
    if (r->gptneo) r->fnorm_b = ref_tensor(r, &rng, (size_t)d, 0.0f, 0.2f);
    r->cls = (r->flags & TS_FLAG_TIED) ? r->emb : ref_tensor(r, &rng, (size_t)r->vocab * d, 0.0f, 0.5f);
}

/* The tiny Llama of the forward tests: GQA (4 heads, 2 kv heads), untied classifier. */
static void ref_tiny_llama(ref_model *r, uint64_t seed, unsigned extra_flags) {
    memset(r, 0, sizeof *r);
    r->dim = 16, r->hidden = 24, r->n_layers = 2, r->n_heads = 4, r->n_kv_heads = 2, r->head_dim = 4;
    r->vocab = 40, r->seq = 16, r->flags = TS_FLAG_SCALE_ATTN | extra_flags, r->theta = 10000.0f, r->eps = 1e-5f;
    ref_randomize(r, seed);
}
/* A tiny GPT-Neo: LayerNorm with bias, learned positions, biases on the attention output
 * and the MLP, GELU, unscaled attention, a global then a local (window 3) layer, tied. */
static void ref_tiny_gptneo(ref_model *r, uint64_t seed) {
    memset(r, 0, sizeof *r);
    r->gptneo = 1, r->dim = 16, r->hidden = 64, r->n_layers = 2, r->n_heads = 4, r->n_kv_heads = 4, r->head_dim = 4;
    r->vocab = 40, r->seq = 16, r->flags = TS_FLAG_TIED | TS_FLAG_OUT_BIAS | TS_FLAG_MLP_BIAS, r->eps = 1e-5f;
    r->window[0] = 0, r->window[1] = 3;
    ref_randomize(r, seed);
}

/* Matrices replaced by what a file of `type` stores (for exact references). */
static void ref_round_matrices(ref_model *r, int type, int gs) {
    int d = r->dim, h = r->hidden, qd = r->n_heads * r->head_dim, kvd = r->n_kv_heads * r->head_dim;
    round_like(r->emb, r->vocab, d, type, gs);
    if (r->cls != r->emb) round_like(r->cls, r->vocab, d, type, gs);
    for (int l = 0; l < r->n_layers; l++) {
        round_like(r->L[l].wq, qd, d, type, gs);
        round_like(r->L[l].wk, kvd, d, type, gs);
        round_like(r->L[l].wv, kvd, d, type, gs);
        round_like(r->L[l].wo, d, qd, type, gs);
        round_like(r->L[l].w1, h, d, type, gs);
        if (r->L[l].w3) round_like(r->L[l].w3, h, d, type, gs);
        round_like(r->L[l].w2, d, h, type, gs);
    }
}

/* out (rows) = W (rows, cols) x + b. qgs > 0: x first quantized to Q8_0 groups, as
 * llama2.c's runq does to activations. */
static void ref_linear(double *out, const float *W, const float *b, const double *x, int rows, int cols, int qgs) {
    double *xv = (double *)malloc((size_t)cols * sizeof(double));
    for (int j = 0; j < cols; j++) xv[j] = x[j];
    if (qgs > 0) {
        float *xf = (float *)calloc((size_t)cols, sizeof(float)), *s = (float *)malloc((size_t)cols * sizeof(float));
        int8_t *q = (int8_t *)malloc((size_t)cols);
        for (int j = 0; j < cols; j++) xf[j] = (float)x[j];
        sy_q8_quantize(xf, 1, cols, qgs, q, s);
        for (int j = 0; j < cols; j++) xv[j] = (double)q[j] * s[j / qgs];
        free(xf), free(s), free(q);
    }
    for (int i = 0; i < rows; i++) {
        double sum = b ? b[i] : 0.0;
        for (int j = 0; j < cols; j++) sum += (double)W[(size_t)i * cols + j] * xv[j];
        out[i] = sum;
    }
    free(xv);
}
static void ref_norm(const ref_model *r, double *o, const double *x, const float *w, const float *b) {
    int d = r->dim;
    double mean = 0, var = 0;
    if (r->gptneo) {
        for (int j = 0; j < d; j++) mean += x[j];
        mean /= d;
    }
    for (int j = 0; j < d; j++) var += (x[j] - mean) * (x[j] - mean);
    var /= d; /* RMSNorm: mean(x^2) */
    for (int j = 0; j < d; j++) o[j] = (x[j] - mean) / sqrt(var + r->eps) * w[j] + (b ? b[j] : 0.0);
}
/* Rotates each adjacent pair (2i, 2i+1) of each head by pos * theta^(-2i / head_dim). */
static void ref_rope(const ref_model *r, double *v, int n_heads, int pos) {
    for (int h = 0; h < n_heads; h++)
        for (int i = 0; i < r->head_dim / 2; i++) {
            double a = pos * pow(r->theta, -2.0 * i / r->head_dim), *p = v + h * r->head_dim + 2 * i;
            double v0 = p[0], v1 = p[1];
            p[0] = v0 * cos(a) - v1 * sin(a);
            p[1] = v0 * sin(a) + v1 * cos(a);
        }
}

/* logits (n, vocab) of the n tokens at positions 0..n-1. qgs > 0: quantize activations. */
static void ref_forward(const ref_model *r, const int *tokens, int n, int qgs, double *logits) {
    int d = r->dim, hd = r->head_dim, qd = r->n_heads * hd, kvd = r->n_kv_heads * hd, H = r->hidden;
    double *x = (double *)calloc((size_t)n * d, sizeof(double)), *xn = (double *)malloc((size_t)d * sizeof(double));
    double *q = (double *)malloc((size_t)n * qd * sizeof(double)), *k = (double *)malloc((size_t)n * kvd * sizeof(double));
    double *v = (double *)malloc((size_t)n * kvd * sizeof(double)), *att = (double *)malloc((size_t)qd * sizeof(double));
    double *tmp = (double *)malloc((size_t)(d > H ? d : H) * sizeof(double)), *a = (double *)malloc((size_t)H * sizeof(double));
    double *g = (double *)malloc((size_t)H * sizeof(double)), *sc = (double *)malloc((size_t)n * sizeof(double));
    for (int t = 0; t < n; t++)
        for (int j = 0; j < d; j++) x[t * d + j] = r->emb[(size_t)tokens[t] * d + j] + (r->pos ? r->pos[(size_t)t * d + j] : 0.0f);
    for (int l = 0; l < r->n_layers; l++) {
        for (int t = 0; t < n; t++) {
            ref_norm(r, xn, x + t * d, r->L[l].an_w, r->L[l].an_b);
            ref_linear(q + t * qd, r->L[l].wq, r->L[l].bq, xn, qd, d, qgs);
            ref_linear(k + t * kvd, r->L[l].wk, r->L[l].bk, xn, kvd, d, qgs);
            ref_linear(v + t * kvd, r->L[l].wv, r->L[l].bv, xn, kvd, d, qgs);
            if (!r->gptneo) {
                ref_rope(r, q + t * qd, r->n_heads, t);
                ref_rope(r, k + t * kvd, r->n_kv_heads, t);
            }
        }
        for (int t = 0; t < n; t++) {
            int w = r->window[l], start = w > 0 && t - w + 1 > 0 ? t - w + 1 : 0;
            double scale = (r->flags & TS_FLAG_SCALE_ATTN) ? 1.0 / sqrt((double)hd) : 1.0;
            for (int h = 0; h < r->n_heads; h++) {
                int kh = h / (r->n_heads / r->n_kv_heads); /* grouped-query: heads share kv heads */
                double mx = -1e300, sum = 0;
                for (int u = start; u <= t; u++) {
                    double s = 0;
                    for (int i = 0; i < hd; i++) s += q[t * qd + h * hd + i] * k[u * kvd + kh * hd + i];
                    sc[u] = s * scale;
                    mx = fmax(mx, sc[u]);
                }
                for (int u = start; u <= t; u++) sum += sc[u] = exp(sc[u] - mx);
                for (int i = 0; i < hd; i++) {
                    double o = 0;
                    for (int u = start; u <= t; u++) o += sc[u] / sum * v[u * kvd + kh * hd + i];
                    att[h * hd + i] = o;
                }
            }
            ref_linear(tmp, r->L[l].wo, r->L[l].bo, att, d, qd, qgs);
            for (int j = 0; j < d; j++) x[t * d + j] += tmp[j];
        }
        for (int t = 0; t < n; t++) {
            ref_norm(r, xn, x + t * d, r->L[l].fn_w, r->L[l].fn_b);
            ref_linear(a, r->L[l].w1, r->L[l].b1, xn, H, d, qgs);
            if (r->gptneo)
                for (int i = 0; i < H; i++) a[i] = 0.5 * a[i] * (1 + tanh(sqrt(2 / TEST_PI) * (a[i] + 0.044715 * a[i] * a[i] * a[i])));
            else {
                ref_linear(g, r->L[l].w3, NULL, xn, H, d, qgs);
                for (int i = 0; i < H; i++) a[i] = a[i] / (1 + exp(-a[i])) * g[i];
            }
            ref_linear(tmp, r->L[l].w2, r->L[l].b2, a, d, H, qgs);
            for (int j = 0; j < d; j++) x[t * d + j] += tmp[j];
        }
    }
    for (int t = 0; t < n; t++) {
        ref_norm(r, xn, x + t * d, r->fnorm_w, r->fnorm_b);
        ref_linear(logits + (size_t)t * r->vocab, r->cls, NULL, xn, r->vocab, d, qgs);
    }
    free(x), free(xn), free(q), free(k), free(v), free(att), free(tmp), free(a), free(g), free(sc);
}

/* A reference model's tensors by loader name, for the writer (fuzz/synth.h). */
static void ref_values(void *ctx, const char *name, int layer, size_t rows, size_t cols, float *out) {
    const ref_model *r = (const ref_model *)ctx;
    const float *src = NULL;
    if (layer < 0) {
        const char *names[] = {"tok_embedding", "pos_embedding", "final_norm", "final_norm_bias", "classifier"};
        const float *tensors[] = {r->emb, r->pos, r->fnorm_w, r->fnorm_b, r->cls};
        for (int i = 0; i < 5; i++)
            if (!strcmp(name, names[i])) src = tensors[i];
    } else {
        const char *names[] = {"attn_norm", "attn_norm_bias", "wq", "wk", "wv", "bq", "bk", "bv", "wo", "bo",
                               "ffn_norm", "ffn_norm_bias", "w1", "b1", "w3", "w2", "b2"};
        const float *tensors[] = {r->L[layer].an_w, r->L[layer].an_b, r->L[layer].wq, r->L[layer].wk, r->L[layer].wv,
                                  r->L[layer].bq, r->L[layer].bk, r->L[layer].bv, r->L[layer].wo, r->L[layer].bo,
                                  r->L[layer].fn_w, r->L[layer].fn_b, r->L[layer].w1, r->L[layer].b1, r->L[layer].w3,
                                  r->L[layer].w2, r->L[layer].b2};
        for (int i = 0; i < 17; i++)
            if (!strcmp(name, names[i])) src = tensors[i];
    }
    if (!src) { /* the writer asks for a tensor the reference does not have: its layout is off */
        fprintf(stderr, "test_all: the writer asks for tensor %s of layer %d, which the reference model lacks\n", name, layer);
        abort();
    }
    memcpy(out, src, rows * cols * sizeof(float));
}

/* The TSMF bytes of a reference model (format.md), optionally with a tokenizer section. */
static buf tsmf_build(const ref_model *r, int type, int gs, const void *tok, size_t tok_size) {
    sy_model m = {SY_TSMF, r->dim, r->hidden, r->n_layers, r->n_heads, r->n_kv_heads, r->vocab, r->seq, 0, type, gs,
                  r->gptneo, (const unsigned char *)tok, tok_size, 0, 0};
    sy_header h = {r->head_dim, r->flags, r->window, r->theta, r->eps, r->gptneo ? -1 : 1, r->gptneo ? -1 : 2};
    buf out = {NULL, 0, 0};
    sy_write_tsmf_from(&out, &m, &h, ref_values, (void *)r);
    return out;
}

/* Largest |logit| of a reference, to state loose tolerances relative to it. */
static double max_abs(const double *x, size_t count) {
    double m = 0;
    for (size_t i = 0; i < count; i++) m = fmax(m, fabs(x[i]));
    return m;
}
/* Largest |engine - reference| over n rows of logits. */
static double max_logit_diff(const float *got, const double *want, size_t count) {
    double worst = 0;
    for (size_t i = 0; i < count; i++) worst = fmax(worst, isfinite(got[i]) ? fabs(got[i] - want[i]) : INFINITY);
    return worst;
}

/* Loads TSMF bytes and runs ts_forward_all over tokens; 0 on failure (reported). */
static int engine_logits(const buf *file, const int *tokens, int n, float *out) {
    ts_model *m;
    ts_session *s;
    ts_error err = {0, ""};
    int rc = ts_model_load_memory(&m, file->p, file->n, NULL, 0, &err);
    CHECK_MSG(rc == 0, "loading a TSMF built by the test: %s", err.msg);
    if (rc) return 0;
    rc = ts_session_new(&s, m, 0, &err);
    if (rc == 0) rc = ts_forward_all(s, tokens, n, 0, out, &err);
    CHECK_MSG(rc == 0, "ts_forward_all: %s", err.msg);
    if (rc == 0) ts_session_free(s);
    ts_model_free(m);
    return rc == 0;
}

/* Batched (all n tokens in one call) equals one token at a time, bit for bit. */
static void check_batched_equals_stepwise(const ts_model *m, const int *tokens, int n, const char *what) {
    ts_session *a, *b;
    ts_error err = {0, ""};
    int V = ts_model_config(m)->vocab_size;
    if (ts_session_new(&a, m, 0, &err) || ts_session_new(&b, m, 0, &err)) {
        CHECK_MSG(0, "%s: ts_session_new: %s", what, err.msg);
        return;
    }
    float *all = (float *)malloc((size_t)n * V * sizeof(float)), *one = (float *)malloc((size_t)n * V * sizeof(float));
    int ok = ts_forward_all(a, tokens, n, 0, all, &err) == 0;
    for (int t = 0; ok && t < n; t++) {
        float *l = ts_forward(b, &tokens[t], 1, t, &err);
        if (!l) ok = 0;
        else memcpy(one + (size_t)t * V, l, (size_t)V * sizeof(float));
    }
    CHECK_MSG(ok, "%s: forward failed: %s", what, err.msg);
    CHECK_MSG(ok && memcmp(all, one, (size_t)n * V * sizeof(float)) == 0, "%s: batched logits of %d tokens differ from one-at-a-time", what, n);
    /* and ts_forward with n tokens returns the last row of the same */
    ts_session_free(a);
    ts_session_new(&a, m, 0, &err);
    float *last = ts_forward(a, tokens, n, 0, &err);
    CHECK_MSG(last && memcmp(last, one + (size_t)(n - 1) * V, (size_t)V * sizeof(float)) == 0, "%s: ts_forward(n) last row differs", what);
    free(all), free(one);
    ts_session_free(a), ts_session_free(b);
}

static void test_forward_reference(void) {
    int tokens[16], n = 16;
    uint64_t rng = 21;
    for (int t = 0; t < n; t++) tokens[t] = (int)(rng_next(&rng) % 40);
    float *got = (float *)malloc((size_t)n * 40 * sizeof(float));
    double *want = (double *)malloc((size_t)n * 40 * sizeof(double)), d;

    /* Llama f32: every position within 1e-4 */
    ref_model r;
    ref_tiny_llama(&r, 1, 0);
    ref_forward(&r, tokens, n, 0, want);
    buf f = tsmf_build(&r, TS_F32, 0, NULL, 0);
    if (engine_logits(&f, tokens, n, got)) {
        d = max_logit_diff(got, want, (size_t)n * 40);
        CHECK_MSG(d <= 1e-4, "Llama f32 TSMF vs reference: max |logit diff| %g > 1e-4", d);
    }
    ts_model *m;
    ts_error err = {0, ""};
    if (ts_model_load_memory(&m, f.p, f.n, NULL, 0, &err) == 0) {
        check_batched_equals_stepwise(m, tokens, n, "tiny Llama f32");
        ts_model_free(m);
    }
    free(f.p);

    /* BF16: exact against a reference on the BF16-rounded weights; loose against f32 */
    f = tsmf_build(&r, TS_BF16, 0, NULL, 0);
    if (engine_logits(&f, tokens, n, got)) {
        d = max_logit_diff(got, want, (size_t)n * 40);
        /* BF16 keeps 8 bits of mantissa: within 1% of the largest logit */
        double tol = 0.01 * max_abs(want, (size_t)n * 40);
        CHECK_MSG(d <= tol, "Llama BF16 TSMF vs f32 reference: max |logit diff| %g > %g (1%% of max |logit|)", d, tol);
        ref_model rb;
        ref_tiny_llama(&rb, 1, 0);
        ref_round_matrices(&rb, TS_BF16, 0);
        double *wb = (double *)malloc((size_t)n * 40 * sizeof(double));
        ref_forward(&rb, tokens, n, 0, wb);
        d = max_logit_diff(got, wb, (size_t)n * 40);
        CHECK_MSG(d <= 1e-4, "Llama BF16 TSMF vs reference with BF16 weights: max |logit diff| %g > 1e-4", d);
        free(wb);
        ref_free(&rb);
    }
    free(f.p);

    /* Q8_0, group 8 (divides every width) and group 16 (hidden 24: rows end in a half
     * group): loose against f32; tight against runq-style (dequantized weights, activations
     * quantized per group before each matmul) */
    int group_sizes[] = {8, 16};
    for (int gi = 0; gi < 2; gi++) {
        int gs = group_sizes[gi];
        f = tsmf_build(&r, TS_Q8_0, gs, NULL, 0);
        if (engine_logits(&f, tokens, n, got)) {
            d = max_logit_diff(got, want, (size_t)n * 40);
            /* weights and activations rounded to 1/254 of their group's range: within 5% */
            double tol = 0.05 * max_abs(want, (size_t)n * 40);
            CHECK_MSG(d <= tol, "Llama Q8_0 (group %d) vs f32 reference: max |logit diff| %g > %g (5%% of max |logit|)", gs, d, tol);
            ref_model rq;
            ref_tiny_llama(&rq, 1, 0);
            ref_round_matrices(&rq, TS_Q8_0, gs);
            double *wq = (double *)malloc((size_t)n * 40 * sizeof(double));
            ref_forward(&rq, tokens, n, gs, wq);
            d = max_logit_diff(got, wq, (size_t)n * 40);
            CHECK_MSG(d <= 1e-4, "Llama Q8_0 (group %d) vs runq-style reference: max |logit diff| %g > 1e-4", gs, d);
            free(wq);
            ref_free(&rq);
        }
        if (gi == 0 && ts_model_load_memory(&m, f.p, f.n, NULL, 0, &err) == 0) {
            check_batched_equals_stepwise(m, tokens, n, "tiny Llama Q8_0");
            ts_model_free(m);
        }
        free(f.p);
    }
    ref_free(&r);

    /* Llama with tied classifier and q/k/v biases */
    ref_tiny_llama(&r, 3, TS_FLAG_TIED | TS_FLAG_QKV_BIAS);
    ref_forward(&r, tokens, n, 0, want);
    f = tsmf_build(&r, TS_F32, 0, NULL, 0);
    if (engine_logits(&f, tokens, n, got)) {
        d = max_logit_diff(got, want, (size_t)n * 40);
        CHECK_MSG(d <= 1e-4, "Llama (tied, qkv bias) vs reference: max |logit diff| %g > 1e-4", d);
    }
    free(f.p);
    ref_free(&r);

    /* GPT-Neo: 10 tokens, so the window of 3 cuts off most of the context */
    n = 10;
    ref_tiny_gptneo(&r, 2);
    ref_forward(&r, tokens, n, 0, want);
    f = tsmf_build(&r, TS_F32, 0, NULL, 0);
    if (engine_logits(&f, tokens, n, got)) {
        d = max_logit_diff(got, want, (size_t)n * 40);
        CHECK_MSG(d <= 1e-4, "GPT-Neo f32 TSMF vs reference: max |logit diff| %g > 1e-4", d);
        /* the window matters: a reference with both layers global disagrees */
        double *wg = (double *)malloc((size_t)n * 40 * sizeof(double));
        r.window[1] = 0;
        ref_forward(&r, tokens, n, 0, wg);
        r.window[1] = 3;
        d = max_logit_diff(got, wg, (size_t)n * 40);
        CHECK_MSG(d > 1e-2, "GPT-Neo: the local window changed nothing (max diff %g vs all-global)", d);
        free(wg);
    }
    if (ts_model_load_memory(&m, f.p, f.n, NULL, 0, &err) == 0) {
        check_batched_equals_stepwise(m, tokens, n, "tiny GPT-Neo");
        ts_model_free(m);
    }
    free(f.p);
    ref_free(&r);
    free(got), free(want);
}

/* RoPE through a real session's tables: a model with head_dim 16. */
static void test_rope(void) {
    ref_model r;
    memset(&r, 0, sizeof r);
    r.dim = 32, r.hidden = 8, r.n_layers = 1, r.n_heads = 2, r.n_kv_heads = 1, r.head_dim = 16;
    r.vocab = 8, r.seq = 64, r.flags = TS_FLAG_SCALE_ATTN, r.theta = 10000.0f, r.eps = 1e-5f;
    ref_randomize(&r, 5);
    buf f = tsmf_build(&r, TS_F32, 0, NULL, 0);
    ts_model *m;
    ts_session *s;
    ts_error err = {0, ""};
    if (ts_model_load_memory(&m, f.p, f.n, NULL, 0, &err) || ts_session_new(&s, m, 0, &err)) {
        CHECK_MSG(0, "rope model: %s", err.msg);
        free(f.p), ref_free(&r);
        return;
    }
    uint64_t rng = 6;
    float v[32], orig[32];
    for (int i = 0; i < 32; i++) orig[i] = v[i] = rng_uniform(&rng, 2.0f);
    ts_rope(s, v, 2, 0);
    CHECK(memcmp(v, orig, sizeof v) == 0); /* position 0 turns by nothing */
    int positions[] = {1, 7, 63};
    for (int k = 0; k < 3; k++) {
        int pos = positions[k];
        memcpy(v, orig, sizeof v);
        ts_rope(s, v, 2, pos);
        double norm_err = 0, err_formula = 0, want[32];
        for (int i = 0; i < 32; i++) want[i] = orig[i];
        ref_rope(&r, want, 2, pos);
        for (int i = 0; i < 32; i += 2) {
            double n0 = hypot(orig[i], orig[i + 1]), n1 = hypot(v[i], v[i + 1]);
            norm_err = fmax(norm_err, fabs(n1 - n0));
            err_formula = fmax(err_formula, fmax(fabs(v[i] - want[i]), fabs(v[i + 1] - want[i + 1])));
        }
        CHECK_MSG(norm_err <= 1e-5, "rope pos %d: pair norms change by %g", pos, norm_err);
        /* float angles: pos * freq rounded to float, so allow pos * 1e-6 */
        CHECK_MSG(err_formula <= 1e-5 + 1e-6 * pos, "rope pos %d: differs from cos/sin formula by %g", pos, err_formula);
    }
    ts_session_free(s);
    ts_model_free(m);
    free(f.p);
    ref_free(&r);
}

/* ==========================================================================
 * 3. Sampler
 * ========================================================================== */

static void test_sampler(void) {
    /* xorshift*, hand-coded: state ^= >>12, ^= <<25, ^= >>27, (state * M) >> 32 */
    unsigned long long engine = 42, mine = 42;
    int same = 1;
    for (int i = 0; i < 1000; i++) {
        mine ^= mine >> 12;
        mine ^= mine << 25;
        mine ^= mine >> 27;
        unsigned int want = (unsigned int)((mine * 0x2545F4914F6CDD1Dull) >> 32);
        unsigned int got = ts_random_u32(&engine);
        if (got != want) {
            CHECK_MSG(0, "ts_random_u32 draw %d from seed 42: expected %u, got %u", i, want, got);
            same = 0;
            break;
        }
    }
    CHECK(same);
    unsigned long long st = 42;
    float f = ts_random_f32(&st);
    CHECK(f >= 0.0f && f < 1.0f);

    float p[] = {1.0f, 3.0f, 3.0f, 2.0f};
    CHECK_INT(ts_argmax(p, 4), 1); /* first of equal maxima */
    float probs[] = {0.1f, 0.2f, 0.3f, 0.4f};
    CHECK_INT(ts_sample_mult(probs, 4, 0.05f), 0);
    CHECK_INT(ts_sample_mult(probs, 4, 0.15f), 1);
    CHECK_INT(ts_sample_mult(probs, 4, 0.35f), 2);
    CHECK_INT(ts_sample_mult(probs, 4, 0.65f), 3);
    CHECK_INT(ts_sample_mult(probs, 4, 0.9999f), 3);

    /* top-p 0.7 over {0.5, 0.3, 0.15, 0.05}: the nucleus is {0, 1}, drawn 5:3 */
    float nucleus[] = {0.5f, 0.3f, 0.15f, 0.05f};
    ts_prob_index pi[4];
    int count[4] = {0, 0, 0, 0};
    st = 42;
    for (int i = 0; i < 1000; i++) count[ts_sample_topp(nucleus, 4, 0.7f, pi, ts_random_f32(&st))]++;
    CHECK_INT(count[2], 0);
    CHECK_INT(count[3], 0);
    double ratio = count[1] ? (double)count[0] / count[1] : 0.0;
    CHECK_MSG(ratio > 1.4 && ratio < 2.0, "top-p: ids 0/1 drawn %d/%d times, ratio %g, expected near 5/3", count[0], count[1], ratio);
    CHECK_INT(ts_sample_topp(nucleus, 4, 0.7f, pi, 0.0f), 0);
    CHECK_INT(ts_sample_topp(nucleus, 4, 0.7f, pi, 0.9999f), 1);

    /* through a session: temperature 0 is argmax; a seed repeats its draws */
    ref_model r;
    ref_tiny_llama(&r, 1, 0);
    buf fb = tsmf_build(&r, TS_F32, 0, NULL, 0);
    ts_model *m;
    ts_session *s;
    ts_error err = {0, ""};
    if (ts_model_load_memory(&m, fb.p, fb.n, NULL, 0, &err) == 0 && ts_session_new(&s, m, 0, &err) == 0) {
        float logits[40], copy[40];
        uint64_t rng = 8;
        for (int i = 0; i < 40; i++) logits[i] = rng_uniform(&rng, 3.0f);
        logits[17] = 5.0f, logits[23] = 5.0f;
        memcpy(copy, logits, sizeof logits);
        CHECK_INT(ts_sample(s, copy, 0.0f, 0.9f, NULL), 17);
        int draws[2][20];
        for (int rep = 0; rep < 2; rep++) {
            ts_seed(s, 1234);
            for (int i = 0; i < 20; i++) {
                memcpy(copy, logits, sizeof logits);
                draws[rep][i] = ts_sample(s, copy, 1.0f, 0.9f, NULL);
            }
        }
        CHECK(memcmp(draws[0], draws[1], sizeof draws[0]) == 0);
        ts_session_free(s);
        ts_model_free(m);
    } else CHECK_MSG(0, "sampler model: %s", err.msg);
    free(fb.p);
    ref_free(&r);
}

/* ==========================================================================
 * 4. Tokenizer
 * ========================================================================== */

/* llama2.c's tokenizer.bin read independently: pieces, scores, and a sorted index. */
typedef struct {
    const char *p;
    int len, id;
} ref_piece;
typedef struct {
    int n;
    char *data;
    ref_piece *piece;  /* (n) by id */
    ref_piece *sorted; /* (n) by bytes, then id */
    float *score;
} ref_vocab;

static int ref_piece_cmp(const void *a, const void *b) {
    const ref_piece *x = (const ref_piece *)a, *y = (const ref_piece *)b;
    int c = memcmp(x->p, y->p, (size_t)(x->len < y->len ? x->len : y->len));
    if (c) return c;
    if (x->len != y->len) return x->len - y->len;
    return x->id - y->id;
}
static int ref_vocab_load(ref_vocab *v, const char *path, int n) {
    size_t size, pos = 4;
    memset(v, 0, sizeof *v);
    if (!(v->data = read_file(path, &size))) return 0;
    v->n = n;
    v->piece = (ref_piece *)malloc((size_t)n * sizeof(ref_piece));
    v->sorted = (ref_piece *)malloc((size_t)n * sizeof(ref_piece));
    v->score = (float *)malloc((size_t)n * sizeof(float));
    for (int i = 0; i < n; i++) {
        if (pos + 8 > size) return 0;
        int32_t len;
        memcpy(&v->score[i], v->data + pos, 4);
        memcpy(&len, v->data + pos + 4, 4);
        pos += 8;
        v->piece[i].p = v->data + pos, v->piece[i].len = len, v->piece[i].id = i;
        pos += (size_t)len;
    }
    memcpy(v->sorted, v->piece, (size_t)n * sizeof(ref_piece));
    qsort(v->sorted, (size_t)n, sizeof(ref_piece), ref_piece_cmp);
    return pos == size;
}
static void ref_vocab_free(ref_vocab *v) { free(v->data), free(v->piece), free(v->sorted), free(v->score); }
/* The lowest id whose piece is exactly s[0..len), or -1. */
static int ref_lookup(const ref_vocab *v, const char *s, int len) {
    int lo = 0, hi = v->n; /* first sorted entry >= (s, len, -1) */
    ref_piece key = {s, len, -1};
    while (lo < hi) {
        int mid = (lo + hi) / 2;
        if (ref_piece_cmp(&v->sorted[mid], &key) < 0) lo = mid + 1;
        else hi = mid;
    }
    return lo < v->n && v->sorted[lo].len == len && memcmp(v->sorted[lo].p, s, (size_t)len) == 0 ? v->sorted[lo].id : -1;
}
static int ref_byte_token(const ref_vocab *v, unsigned char byte) {
    char name[8];
    snprintf(name, sizeof name, "<0x%02X>", byte);
    return ref_lookup(v, name, 6);
}

/* The length of the well-formed UTF-8 sequence at s (n bytes there), or 0: Unicode's table
 * of well-formed byte sequences (The Unicode Standard, table 3-7), row by row. */
static size_t ref_utf8_len(const unsigned char *s, size_t n) {
    static const struct { unsigned char lo[4], hi[4]; size_t len; } row[] = {
        {{0x00}, {0x7F}, 1},
        {{0xC2, 0x80}, {0xDF, 0xBF}, 2},
        {{0xE0, 0xA0, 0x80}, {0xE0, 0xBF, 0xBF}, 3},
        {{0xE1, 0x80, 0x80}, {0xEC, 0xBF, 0xBF}, 3},
        {{0xED, 0x80, 0x80}, {0xED, 0x9F, 0xBF}, 3},
        {{0xEE, 0x80, 0x80}, {0xEF, 0xBF, 0xBF}, 3},
        {{0xF0, 0x90, 0x80, 0x80}, {0xF0, 0xBF, 0xBF, 0xBF}, 4},
        {{0xF1, 0x80, 0x80, 0x80}, {0xF3, 0xBF, 0xBF, 0xBF}, 4},
        {{0xF4, 0x80, 0x80, 0x80}, {0xF4, 0x8F, 0xBF, 0xBF}, 4},
    };
    for (size_t r = 0; r < sizeof row / sizeof row[0]; r++) {
        size_t k = 0;
        while (k < row[r].len && k < n && s[k] >= row[r].lo[k] && s[k] <= row[r].hi[k]) k++;
        if (k == row[r].len) return k;
    }
    return 0;
}

/* llama2.c's encode, straightforwardly: a " " prefix, one symbol per UTF-8 character
 * (a byte and up to three continuation bytes, valid or not; or its <0xXX> bytes), then repeatedly merge the adjacent pair whose concatenation
 * is the best-scoring token, leftmost first. Quadratic; pair ids are cached so 20 KB
 * takes a fraction of a second. Returns the count (no BOS). */
static int ref_encode(const ref_vocab *v, const char *text, size_t len, int *out) {
    if (len == 0) return 0;
    int *sym = (int *)malloc((len + 1) * sizeof(int)), *pair = (int *)malloc((len + 1) * sizeof(int)), n = 0;
    sym[n++] = ref_lookup(v, " ", 1);
    for (size_t i = 0; i < len;) {
        size_t j = i + 1;
        while (j < len && j - i < 4 && ((unsigned char)text[j] & 0xC0) == 0x80) j++;
        int id = ref_lookup(v, text + i, (int)(j - i));
        if (id >= 0) sym[n++] = id;
        else
            for (size_t k = i; k < j; k++) sym[n++] = ref_byte_token(v, (unsigned char)text[k]);
        i = j;
    }
    char joined[1024];
#define REF_PAIR(i)                                                                                           \
    (v->piece[sym[i]].len + v->piece[sym[(i) + 1]].len > (int)sizeof joined                                   \
         ? -1                                                                                                 \
         : (memcpy(joined, v->piece[sym[i]].p, (size_t)v->piece[sym[i]].len),                                 \
            memcpy(joined + v->piece[sym[i]].len, v->piece[sym[(i) + 1]].p, (size_t)v->piece[sym[(i) + 1]].len), \
            ref_lookup(v, joined, v->piece[sym[i]].len + v->piece[sym[(i) + 1]].len)))
    for (int i = 0; i + 1 < n; i++) pair[i] = REF_PAIR(i);
    for (;;) {
        int best = -1;
        float best_score = -1e10f;
        for (int i = 0; i + 1 < n; i++)
            if (pair[i] >= 0 && v->score[pair[i]] > best_score) best_score = v->score[pair[i]], best = i;
        if (best < 0) break;
        sym[best] = pair[best];
        memmove(sym + best + 1, sym + best + 2, (size_t)(n - best - 2) * sizeof(int));
        memmove(pair + best + 1, pair + best + 2, (size_t)(n > best + 2 ? n - best - 2 : 0) * sizeof(int));
        n--;
        if (best > 0) pair[best - 1] = REF_PAIR(best - 1);
        if (best + 1 < n) pair[best] = REF_PAIR(best);
    }
#undef REF_PAIR
    memcpy(out, sym, (size_t)n * sizeof(int));
    free(sym), free(pair);
    return n;
}
/* The bytes ids stand for: pieces concatenated, <0xXX> as its byte. */
static char *ref_detok(const ref_vocab *v, const int *ids, int n, size_t *len) {
    buf b = {0};
    for (int i = 0; i < n; i++) {
        const ref_piece *p = &v->piece[ids[i]];
        unsigned hi, lo;
        if (p->len == 6 && sscanf(p->p, "<0x%1X%1X>", &hi, &lo) == 2) {
            unsigned char c = (unsigned char)(hi * 16 + lo);
            sy_put(&b, &c, 1);
        } else sy_put(&b, p->p, (size_t)p->len);
    }
    sy_put(&b, "", 1);
    *len = b.n - 1;
    return (char *)b.p;
}

/* A legacy llama2.c file of random weights (tensors by kind, RoPE tables, tied). */
static buf legacy_random(int dim, int hidden, int layers, int heads, int kv, int vocab, int seq, uint64_t seed) {
    buf b = {0};
    int32_t hdr[7] = {dim, hidden, layers, heads, kv, vocab, seq};
    for (int i = 0; i < 7; i++) sy_i32(&b, hdr[i]);
    size_t hd = (size_t)dim / heads, L = (size_t)layers, kvd = (size_t)kv * hd;
    size_t count = (size_t)vocab * dim                       /* token embedding */
                   + L * dim                                 /* attention norms */
                   + L * dim * dim + 2 * L * dim * kvd       /* wq, wk, wv */
                   + L * dim * dim                           /* wo */
                   + L * dim                                 /* ffn norms */
                   + 3 * L * dim * hidden                    /* w1, w2, w3 */
                   + dim                                     /* final norm */
                   + (size_t)seq * hd;                       /* freq_cis real + imag */
    uint64_t rng = seed;
    float *w = rng_floats(&rng, count, 0.0f, 0.5f);
    buf_f32s(&b, w, count);
    free(w);
    return b;
}

static void test_tokenizer_llama2(void) {
    char tok_path[512], fix_path[512], text_path[512], model_path[64];
    shared_path(tok_path, sizeof tok_path, "models/llama2-tokenizer.bin");
    shared_path(fix_path, sizeof fix_path, "fixtures/tokenizer-reference.json");
    shared_path(text_path, sizeof text_path, "data/tinystories-valid-head.txt");
    if (skip_if_missing("tokenizer (llama2)", tok_path, fix_path, (char *)NULL)) return;
    /* a tiny random model with the Llama 2 vocabulary, from a temp file */
    buf lb = legacy_random(8, 16, 1, 2, 2, 32000, 32, 31);
    temp_path(model_path, sizeof model_path);
    write_file(model_path, lb.p, lb.n);
    free(lb.p);
    ts_model *m;
    ts_error err = {0, ""};
    int rc = ts_model_load(&m, model_path, tok_path, &err);
    remove(model_path);
    CHECK_MSG(rc == 0, "loading a random model with llama2-tokenizer.bin: %s", err.msg);
    if (rc) return;
    ref_vocab v;
    CHECK(ref_vocab_load(&v, tok_path, 32000));
    int ids[4096], want[4096], n;

    /* the 26 strings, against sentencepiece's ids and the quadratic reference */
    json fx;
    CHECK(json_load(fix_path, &fx));
    const json *cases = json_get(&fx, "llama2");
    CHECK(cases && cases->n == 26);
    for (int c = 0; cases && c < cases->n; c++) {
        const json *text = json_get(&cases->item[c], "text"), *expect = json_get(&cases->item[c], "ids");
        if (!text || !expect) continue;
        for (int i = 0; i < expect->n; i++) want[i] = (int)expect->item[i].num;
        rc = ts_encode(m, text->str, text->len, 0, ids, 4096, &n, &err);
        int same = rc == 0 && n == expect->n && memcmp(ids, want, (size_t)n * sizeof(int)) == 0;
        int k = 0;
        while (rc == 0 && k < n && k < expect->n && ids[k] == want[k]) k++;
        CHECK_MSG(same, "llama2 encode of \"%s\": %d ids, expected %d (first difference at %d)", text->str, n, expect->n, k);
        int nr = ref_encode(&v, text->str, text->len, want);
        CHECK_MSG(nr == n && memcmp(ids, want, (size_t)n * sizeof(int)) == 0, "llama2 encode of \"%s\" differs from the quadratic reference", text->str);
    }
    json_free(&fx);

    /* BOS, empty text */
    rc = ts_encode(m, "Once", 4, 1, ids, 4096, &n, &err);
    CHECK(rc == 0 && n >= 2 && ids[0] == 1);
    rc = ts_encode(m, "", 0, 0, ids, 4096, &n, &err);
    CHECK(rc == 0 && n == 0);
    rc = ts_encode(m, "", 0, 1, ids, 4096, &n, &err);
    CHECK(rc == 0 && n == 1 && ids[0] == 1);
    /* room for fewer ids than needed: the full count comes back */
    rc = ts_encode(m, "Once upon a time", 16, 0, ids, 2, &n, &err);
    CHECK(rc == 0 && n == 4);

    /* invalid UTF-8: byte fallback, <0xXX> = byte + 3 in this vocabulary */
    rc = ts_encode(m, "\xff\xfe abc", 6, 0, ids, 4096, &n, &err);
    CHECK(rc == 0 && n >= 3);
    CHECK_INT(ids[0], ref_lookup(&v, " ", 1));
    CHECK_INT(ids[1], 0xff + 3);
    CHECK_INT(ids[2], 0xfe + 3);
    CHECK_INT(ref_byte_token(&v, 0xff), 0xff + 3);
    size_t len;
    char *back = ref_detok(&v, ids, n, &len);
    CHECK_BYTES(back, len, " \xff\xfe abc", (size_t)7);
    free(back);
    /* a lone continuation byte and a truncated 4-byte character */
    rc = ts_encode(m, "a\x80z\xf0\x9f\xa6", 6, 0, ids, 4096, &n, &err);
    back = rc == 0 ? ref_detok(&v, ids, n, &len) : NULL;
    CHECK(back != NULL);
    if (back) CHECK_BYTES(back, len, " a\x80z\xf0\x9f\xa6", (size_t)7);
    free(back);

    /* llama2.c's grouping, valid or not: "a\x80" is one symbol, no token, so its two bytes
     * (where a character of its own would have merged " a") */
    rc = ts_encode(m, "a\x80", 2, 0, ids, 4096, &n, &err);
    CHECK(ref_lookup(&v, " a", 2) >= 0);
    CHECK(rc == 0 && n == 3 && ids[0] == ref_lookup(&v, " ", 1) && ids[1] == 'a' + 3 && ids[2] == 0x80 + 3);

    /* decode: no space after BOS, <0x0A> is a newline, unprintable bytes dropped */
    int once = ref_lookup(&v, " Once", 5);
    const char *piece = ts_decode(m, 1, once, &len);
    CHECK_BYTES(piece, len, "Once", (size_t)4);
    piece = ts_decode(m, 100, once, &len);
    CHECK_BYTES(piece, len, " Once", (size_t)5);
    piece = ts_decode(m, 100, 0x0A + 3, &len);
    CHECK_BYTES(piece, len, "\n", (size_t)1);
    piece = ts_decode(m, 100, 0x01 + 3, &len);
    CHECK_INT(len, 0);
    piece = ts_decode(m, 100, 'A' + 3, &len);
    CHECK_BYTES(piece, len, "A", (size_t)1);
    piece = ts_decode(m, 100, 32000, &len); /* out of range: empty, never NULL */
    CHECK(piece != NULL && len == 0);
    CHECK(ts_token_bytes(m, -1, &len) == NULL);

    /* 20 KB of stories: identical to the quadratic reference */
    size_t text_len;
    char *text = skip_if_missing("tokenizer long texts", text_path, (char *)NULL) ? NULL : read_file(text_path, &text_len);
    if (text) {
        size_t n20 = 20000;
        int *a = (int *)malloc((n20 + 3) * sizeof(int)), *b = (int *)malloc((n20 + 3) * sizeof(int));
        rc = ts_encode(m, text, n20, 0, a, (int)n20 + 3, &n, &err);
        int nr = ref_encode(&v, text, n20, b);
        CHECK_MSG(rc == 0 && n == nr, "20 KB: %d ids, the quadratic reference gives %d", n, nr);
        int k = 0;
        while (k < n && k < nr && a[k] == b[k]) k++;
        CHECK_MSG(k == n && k == nr, "20 KB: ids differ from the quadratic reference at %d", k);
        free(a), free(b);

        /* 1 MB (the file repeated): under a second, and the ids spell the text back */
        size_t big = 1 << 20;
        char *mb = (char *)malloc(big);
        for (size_t i = 0; i < big; i++) mb[i] = text[i % text_len];
        int *ids_mb = (int *)malloc((big + 3) * sizeof(int));
        clock_t t0 = clock();
        rc = ts_encode(m, mb, big, 0, ids_mb, (int)big + 3, &n, &err);
        double secs = (double)(clock() - t0) / CLOCKS_PER_SEC;
        CHECK_MSG(rc == 0, "1 MB encode: %s", err.msg);
        CHECK_MSG(secs < TIME_BOUND_SCALE * 1.0, "1 MB encode took %.2f s (sanity bound %g s)", secs, TIME_BOUND_SCALE * 1.0);
        back = ref_detok(&v, ids_mb, n, &len);
        CHECK_MSG(len == big + 1 && back[0] == ' ' && memcmp(back + 1, mb, big) == 0, "1 MB: decoded ids do not give back the text");
        free(back), free(ids_mb), free(mb), free(text);
    }
    ref_vocab_free(&v);
    ts_model_free(m);
}

/* ==========================================================================
 * 5. Loaders on good and bad files
 * ========================================================================== */

/* The tensors of a legacy llama2.c file, located independently of run.c. */
typedef struct {
    int dim, hidden, layers, heads, kv, vocab, seq, shared;
    const float *emb, *attn_norm, *wq, *wk, *wv, *wo, *ffn_norm, *w1, *w2, *w3, *final_norm, *cls;
} legacy;

static int legacy_parse(const unsigned char *data, size_t size, legacy *lg) {
    int32_t h[7];
    if (size < 28) return 0;
    memcpy(h, data, 28);
    lg->dim = h[0], lg->hidden = h[1], lg->layers = h[2], lg->heads = h[3], lg->kv = h[4];
    lg->shared = h[5] > 0, lg->vocab = abs(h[5]), lg->seq = h[6];
    if (lg->layers < 1 || lg->layers > REF_MAX_LAYERS || lg->heads < 1 || lg->kv < 1 || lg->dim % lg->heads) return 0;
    size_t d = (size_t)lg->dim, L = (size_t)lg->layers, hd = d / lg->heads, kvd = (size_t)lg->kv * hd, H = (size_t)lg->hidden;
    const float *p = (const float *)(data + 28);
    lg->emb = p, p += (size_t)lg->vocab * d;
    lg->attn_norm = p, p += L * d;
    lg->wq = p, p += L * d * d;
    lg->wk = p, p += L * kvd * d;
    lg->wv = p, p += L * kvd * d;
    lg->wo = p, p += L * d * d;
    lg->ffn_norm = p, p += L * d;
    lg->w1 = p, p += L * H * d;
    lg->w2 = p, p += L * d * H;
    lg->w3 = p, p += L * H * d;
    lg->final_norm = p, p += d;
    p += (size_t)lg->seq * hd; /* RoPE tables */
    lg->cls = lg->shared ? lg->emb : p;
    if (!lg->shared) p += (size_t)lg->vocab * d;
    return (const unsigned char *)p == data + size;
}

/* The reference model over a legacy file's weights (pointers into it). */
static void ref_from_legacy(ref_model *r, const legacy *lg) {
    memset(r, 0, sizeof *r);
    size_t d = (size_t)lg->dim, hd = d / lg->heads, kvd = (size_t)lg->kv * hd, H = (size_t)lg->hidden;
    r->dim = lg->dim, r->hidden = lg->hidden, r->n_layers = lg->layers, r->n_heads = lg->heads, r->n_kv_heads = lg->kv;
    r->head_dim = (int)hd, r->vocab = lg->vocab, r->seq = lg->seq, r->theta = 10000.0f, r->eps = 1e-5f;
    r->flags = TS_FLAG_SCALE_ATTN | (lg->shared ? TS_FLAG_TIED : 0);
    r->emb = (float *)lg->emb, r->cls = (float *)lg->cls, r->fnorm_w = (float *)lg->final_norm;
    for (size_t l = 0; l < (size_t)lg->layers; l++) {
        r->L[l].an_w = (float *)lg->attn_norm + l * d;
        r->L[l].wq = (float *)lg->wq + l * d * d;
        r->L[l].wk = (float *)lg->wk + l * kvd * d;
        r->L[l].wv = (float *)lg->wv + l * kvd * d;
        r->L[l].wo = (float *)lg->wo + l * d * d;
        r->L[l].fn_w = (float *)lg->ffn_norm + l * d;
        r->L[l].w1 = (float *)lg->w1 + l * H * d;
        r->L[l].w2 = (float *)lg->w2 + l * d * H;
        r->L[l].w3 = (float *)lg->w3 + l * H * d;
    }
}

/* llama2.c's versioned files from a legacy file's weights. v1: float32, norms first.
 * v2: float32 norms, then each matrix as int8 values followed by its float scales,
 * groups of gs running through the flattened tensor. */
static buf llama2c_versioned(const legacy *lg, int version, int gs) {
    buf b = {0};
    buf_zeros(&b, 256);
    put_u32_at(b.p, 0x616b3432u);
    put_u32_at(b.p + 4, (uint32_t)version);
    int32_t h[7] = {lg->dim, lg->hidden, lg->layers, lg->heads, lg->kv, lg->vocab, lg->seq};
    for (int i = 0; i < 7; i++) put_u32_at(b.p + 8 + 4 * i, (uint32_t)h[i]);
    b.p[36] = (unsigned char)lg->shared;
    if (version == 2) put_u32_at(b.p + 37, (uint32_t)gs);
    int d = lg->dim, H = lg->hidden, kvd = lg->kv * (d / lg->heads);
    size_t L = (size_t)lg->layers;
    buf_f32s(&b, lg->attn_norm, L * d);
    buf_f32s(&b, lg->ffn_norm, L * d);
    buf_f32s(&b, lg->final_norm, (size_t)d);
    struct { const float *w; int rows, cols; } kinds[] = {
        {lg->emb, lg->vocab, d}, {lg->wq, d, d}, {lg->wk, kvd, d}, {lg->wv, kvd, d},
        {lg->wo, d, d}, {lg->w1, H, d}, {lg->w2, d, H}, {lg->w3, H, d}};
    for (int k = 0; k < 8; k++)
        for (size_t l = 0; l < (k == 0 ? 1 : L); l++) {
            const float *w = kinds[k].w + l * kinds[k].rows * kinds[k].cols;
            size_t n = (size_t)kinds[k].rows * kinds[k].cols;
            if (version == 1) buf_f32s(&b, w, n);
            else {
                int8_t *q = (int8_t *)malloc(n);
                float *s = (float *)malloc(n / gs * sizeof(float));
                sy_q8_quantize(w, 1, (int)n, gs, q, s); /* one flat row: groups through the tensor */
                sy_put(&b, q, n);
                buf_f32s(&b, s, n / gs);
                free(q), free(s);
            }
        }
    return b;
}

/* Copy of a buffer with a 32-bit field changed. */
static buf with_i32(const buf *src, size_t offset, int32_t v) {
    buf b = {0};
    sy_put(&b, src->p, src->n);
    put_u32_at(b.p + offset, (uint32_t)v);
    return b;
}

/* Loading must fail and the message must name the problem. */
static void check_load_fails(const void *data, size_t size, const void *tok, size_t tok_size, const char *word,
                             const char *what, int line) {
    ts_model *m = NULL;
    ts_error err = {0, ""};
    /* a private, exactly sized copy so reading past the end would be caught by tools */
    void *copy = malloc(size ? size : 1);
    memcpy(copy, data, size);
    int rc = ts_model_load_memory(&m, copy, size, tok, tok_size, &err);
    check(rc != 0 && m == NULL && strstr(err.msg, word) != NULL, __FILE__, line,
          "%s: expected an error mentioning \"%s\", got rc %d \"%s\"", what, word, rc, err.msg);
    if (rc == 0) ts_model_free(m);
    free(copy);
}
#define CHECK_LOAD_FAILS(data, size, tok, tok_size, word, what) check_load_fails(data, size, tok, tok_size, word, what, __LINE__)

/* TSMF headers and layouts that must be refused (needs no shared data). */
static void test_bad_tsmf(void) {
    ref_model r;
    ref_tiny_llama(&r, 1, 0);
    buf good = tsmf_build(&r, TS_F32, 0, NULL, 0), b;
    ts_model *m;
    ts_error err = {0, ""};
    int rc = ts_model_load_memory(&m, good.p, good.n, NULL, 0, &err);
    CHECK_MSG(rc == 0, "good TSMF: %s", err.msg);
    if (rc == 0) {
        const ts_config *c = ts_model_config(m);
        CHECK(c->dim == 16 && c->hidden_dim == 24 && c->n_layers == 2 && c->n_heads == 4 && c->n_kv_heads == 2);
        CHECK(c->head_dim == 4 && c->vocab_size == 40 && c->seq_len == 16 && c->weight_type == TS_F32);
        ts_model_free(m);
    }
    /* truncated: the header alone, then every eighth of the file */
    CHECK_LOAD_FAILS(good.p, 100, NULL, 0, "truncated", "TSMF cut to 100 bytes");
    for (int k = 1; k < 8; k++) {
        size_t cut = good.n * k / 8;
        ts_model *mm = NULL;
        void *copy = malloc(cut);
        memcpy(copy, good.p, cut);
        rc = ts_model_load_memory(&mm, copy, cut, NULL, 0, &err);
        CHECK_MSG(rc != 0 && (strstr(err.msg, "truncated") || strstr(err.msg, "fit")),
                  "TSMF cut to %zu of %zu bytes: expected an error about the file being short, got rc %d \"%s\"", cut, good.n, rc, err.msg);
        if (rc == 0) ts_model_free(mm);
        free(copy);
    }
    struct { size_t offset; int32_t value; const char *word, *what; } bad[] = {
        {4, 2, "version", "version 2"},
        {8, 128, "header_size", "header_size 128"},
        {12, 3, "arch", "arch 3"},
        {16, 0, "dim", "dim 0"},
        {16, -16, "dim", "dim -16"},
        {20, 0, "hidden_dim", "hidden_dim 0"},
        {24, 0, "n_layers", "n_layers 0"},
        {24, 5000, "n_layers", "n_layers 5000"},
        {28, 0, "n_heads", "n_heads 0"},
        {32, 3, "n_kv_heads", "n_kv_heads 3 of 4 heads"},
        {32, 0, "n_kv_heads", "n_kv_heads 0"},
        {36, 3, "head_dim", "odd head_dim with rotary"},
        {36, 1 << 20, "head_dim", "huge head_dim"},
        {40, 0, "vocab_size", "vocab_size 0"},
        {44, -1, "seq_len", "seq_len -1"},
        {48, 7, "norm_kind", "norm_kind 7"},
        {52, 0, "act_kind", "act_kind 0"},
        {56, 9, "pos_kind", "pos_kind 9"},
        {60, 0x40, "flags", "unknown flag bit"},
        {64, 5, "weight_type", "weight_type 5"},
        {72, 0, "rope_theta", "rope_theta 0"},
        {76, 0x7fc00000, "norm_eps", "norm_eps NaN"},
        {80, 9, "tokenizer_kind", "tokenizer_kind 9"},
        {80, 1, "tokenizer", "tokenizer_kind 1 with no tokenizer section"},
        {84, 40, "bos_id", "bos_id outside the vocabulary"},
        {96, 100, "weights", "weights_offset not a multiple of 64"},
        {96, 1 << 30, "weights", "weights_offset past the end"},
        {104, 1 << 30, "weights", "weights_size past the end"},
        {256, -1, "layer_window", "layer_window -1"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        b = with_i32(&good, bad[i].offset, bad[i].value);
        CHECK_LOAD_FAILS(b.p, b.n, NULL, 0, bad[i].word, bad[i].what);
        free(b.p);
    }
    /* weights_size smaller than the tensors; trailing bytes inside weights_size */
    uint64_t ws = ts_read_u64(good.p + 104);
    b = with_i32(&good, 104, (int32_t)(ws - 64));
    CHECK_LOAD_FAILS(b.p, b.n, NULL, 0, "truncated", "weights_size 64 bytes short");
    free(b.p);
    b = with_i32(&good, 104, (int32_t)(ws + 64));
    buf_zeros(&b, 64);
    CHECK_LOAD_FAILS(b.p, b.n, NULL, 0, "weights_size", "weights_size 64 bytes more than the tensors");
    free(b.p);
    /* Q8_0 with group size 0 */
    buf q = tsmf_build(&r, TS_Q8_0, 8, NULL, 0);
    b = with_i32(&q, 68, 0);
    CHECK_LOAD_FAILS(b.p, b.n, NULL, 0, "group_size", "Q8_0 group_size 0");
    free(b.p), free(q.p);
    /* a misaligned buffer is refused, not read */
    buf shifted = {0};
    buf_zeros(&shifted, 1);
    sy_put(&shifted, good.p, good.n);
    rc = ts_model_load_memory(&m, shifted.p + 1, good.n, NULL, 0, &err);
    CHECK_MSG(rc != 0, "a model buffer at an odd address was accepted");
    if (rc == 0) ts_model_free(m);
    free(shifted.p);
    free(good.p);
    ref_free(&r);
}

typedef struct {
    buf text;
    int ids[2048], n;
} collected;
static int collect_piece(void *user, int token, const char *piece, size_t len) {
    collected *c = (collected *)user;
    sy_put(&c->text, piece, len);
    if (c->n < 2048) c->ids[c->n++] = token;
    return 0;
}
/* Generates with the library; the text gets llama2.c's trailing newline. */
static int generate(const ts_model *m, int max_positions, const char *prompt, float temperature, float topp,
                    unsigned long long seed, int steps, collected *out, ts_error *err) {
    ts_session *s;
    memset(out, 0, sizeof *out);
    int rc = ts_session_new(&s, m, max_positions, err);
    if (rc) return rc;
    ts_generate_opts o = {.temperature = temperature, .topp = topp, .seed = seed, .steps = steps};
    rc = ts_generate(s, prompt, &o, collect_piece, out, NULL, err);
    sy_put(&out->text, "\n", 1);
    ts_session_free(s);
    return rc;
}

static void test_loaders_shared(void) {
    char model_path[512], tok_path[512];
    shared_path(model_path, sizeof model_path, "models/stories260K.bin");
    shared_path(tok_path, sizeof tok_path, "models/tok512.bin");
    size_t size, tok_size;
    if (skip_if_missing("loaders (stories260K)", model_path, tok_path, (char *)NULL)) return;
    unsigned char *data = (unsigned char *)read_file(model_path, &size);
    char *tok = read_file(tok_path, &tok_size);
    legacy lg;
    if (!legacy_parse(data, size, &lg)) {
        CHECK_MSG(0, "%s is not the legacy llama2.c file this test expects", model_path);
        free(data), free(tok);
        return;
    }
    ts_model *m, *m1 = NULL, *m2 = NULL;
    ts_error err = {0, ""};
    int rc = ts_model_load(&m, model_path, tok_path, &err);
    CHECK_MSG(rc == 0, "loading stories260K.bin: %s", err.msg);
    if (rc) {
        free(data), free(tok);
        return;
    }
    const ts_config *c = ts_model_config(m);
    CHECK_INT(c->dim, 64);
    CHECK_INT(c->hidden_dim, 172);
    CHECK_INT(c->n_layers, 5);
    CHECK_INT(c->n_heads, 8);
    CHECK_INT(c->n_kv_heads, 4);
    CHECK_INT(c->head_dim, 8);
    CHECK_INT(c->vocab_size, 512);
    CHECK_INT(c->seq_len, 512);
    CHECK(c->flags & TS_FLAG_TIED);
    CHECK_INT(c->weight_type, TS_F32);
    CHECK_INT(ts_model_file_size(m), size);

    /* the real weights through the naive reference: 12 tokens within 1e-4 */
    ref_vocab v;
    CHECK(ref_vocab_load(&v, tok_path, 512));
    int tokens[256] = {1}, n = 1;
    const char *story = "Once upon a time, there was a little girl named Lily. She loved to play outside in the park. One day, she saw a big, red ball. She wanted to play with it, but it was too high.";
    n += ref_encode(&v, story, strlen(story), tokens + 1);
    n = n > 40 ? 40 : n;
    CHECK(n == 40);
    ref_model r;
    ref_from_legacy(&r, &lg);
    float *got = (float *)malloc((size_t)n * 512 * sizeof(float)), *got1 = (float *)malloc((size_t)n * 512 * sizeof(float));
    double *want = (double *)malloc((size_t)n * 512 * sizeof(double));
    ref_forward(&r, tokens, 12, 0, want);
    ts_session *s;
    rc = ts_session_new(&s, m, 0, &err);
    if (rc == 0) rc = ts_forward_all(s, tokens, n, 0, got, &err);
    CHECK_MSG(rc == 0, "stories260K forward: %s", err.msg);
    if (rc == 0) ts_session_free(s);
    double d = max_logit_diff(got, want, (size_t)12 * 512);
    CHECK_MSG(d <= 1e-4, "stories260K vs reference: max |logit diff| %g > 1e-4", d);
    /* 40 tokens: more than one block of the batched prompt path */
    check_batched_equals_stepwise(m, tokens, n, "stories260K");

    /* v1: the same floats, so the same logits bit for bit and the same story */
    buf f1 = llama2c_versioned(&lg, 1, 0);
    rc = ts_model_load_memory(&m1, f1.p, f1.n, tok, tok_size, &err);
    CHECK_MSG(rc == 0, "llama2.c v1 file: %s", err.msg);
    collected g0, g1;
    buf b;
    rc = generate(m, 0, "", 0.0f, 0.9f, 1, 200, &g0, &err);
    CHECK_MSG(rc == 0, "greedy generation: %s", err.msg);
    if (m1) {
        CHECK_INT(ts_model_config(m1)->hidden_dim, 172);
        rc = ts_session_new(&s, m1, 0, &err);
        if (rc == 0) rc = ts_forward_all(s, tokens, n, 0, got1, &err);
        CHECK_MSG(rc == 0 && memcmp(got, got1, (size_t)n * 512 * sizeof(float)) == 0, "v1 logits differ from legacy (%s)", err.msg);
        if (rc == 0) ts_session_free(s);
        generate(m1, 0, "", 0.0f, 0.9f, 1, 200, &g1, &err);
        CHECK_BYTES(g1.text.p, g1.text.n, g0.text.p, g0.text.n);
        free(g1.text.p);
        ts_model_free(m1);
    }
    /* v1 files one float short, with trailing bytes, of an unknown version, header cut */
    CHECK_LOAD_FAILS(f1.p, f1.n - 4, tok, tok_size, "truncated", "v1 file one float short");
    {
        buf t = {0};
        sy_put(&t, f1.p, f1.n);
        buf_zeros(&t, 4);
        CHECK_LOAD_FAILS(t.p, t.n, tok, tok_size, "describes", "v1 file with 4 trailing bytes");
        free(t.p);
    }
    buf bad_version = with_i32(&f1, 4, 3);
    CHECK_LOAD_FAILS(bad_version.p, bad_version.n, tok, tok_size, "version", "llama2.c version 3");
    free(bad_version.p);
    CHECK_LOAD_FAILS(f1.p, 200, tok, tok_size, "truncated", "v1 file shorter than its 256-byte header");
    free(f1.p);

    /* v2 (Q8_0, groups of 4: 172 = 4 x 43): greedy argmax agrees >= 95% with legacy, and
     * the logits match a runq-style reference tightly */
    buf f2 = llama2c_versioned(&lg, 2, 4);
    rc = ts_model_load_memory(&m2, f2.p, f2.n, tok, tok_size, &err);
    CHECK_MSG(rc == 0, "llama2.c v2 file: %s", err.msg);
    if (m2) {
        CHECK_INT(ts_model_config(m2)->weight_type, TS_Q8_0);
        CHECK_INT(ts_model_config(m2)->group_size, 4);
        /* feed the legacy greedy run; count where v2's argmax is the legacy's next token */
        int seq[512] = {1}, ns = 1, agree = 0;
        for (int i = 0; i < g0.n && ns < 512; i++) seq[ns++] = g0.ids[i];
        float *lg2 = (float *)malloc((size_t)ns * 512 * sizeof(float));
        rc = ts_session_new(&s, m2, 0, &err);
        if (rc == 0) rc = ts_forward_all(s, seq, ns - 1, 0, lg2, &err);
        CHECK_MSG(rc == 0, "v2 forward: %s", err.msg);
        if (rc == 0) ts_session_free(s);
        for (int t = 0; rc == 0 && t < ns - 1; t++) agree += ts_argmax(lg2 + (size_t)t * 512, 512) == seq[t + 1];
        CHECK_MSG(rc == 0 && agree >= 0.95 * (ns - 1), "v2 argmax agrees with legacy greedy at %d of %d positions (< 95%%)", agree, ns - 1);
        free(lg2);
        /* runq-style reference: dequantized weights, activations quantized per group */
        unsigned char *copy = (unsigned char *)malloc(size);
        memcpy(copy, data, size);
        legacy lq;
        legacy_parse(copy, size, &lq);
        ref_model rq;
        ref_from_legacy(&rq, &lq);
        rq.n_layers = lq.layers;
        /* per-tensor flat groups == per-row groups here, since 4 divides every width */
        ref_round_matrices(&rq, TS_Q8_0, 4);
        rc = ts_session_new(&s, m2, 0, &err);
        if (rc == 0) rc = ts_forward_all(s, tokens, 12, 0, got1, &err);
        if (rc == 0) ts_session_free(s);
        ref_forward(&rq, tokens, 12, 4, want);
        d = max_logit_diff(got1, want, (size_t)12 * 512);
        CHECK_MSG(rc == 0 && d <= 1e-4, "v2 vs runq-style reference: max |logit diff| %g > 1e-4", d);
        free(copy);
        ts_model_free(m2);
    }
    /* llama2.c's export picks group 64 for dim 64, but 64 does not divide hidden 172 */
    b = with_i32(&f2, 37, 64);
    CHECK_LOAD_FAILS(b.p, b.n, tok, tok_size, "group_size", "v2 with group_size 64 for hidden 172");
    free(b.p);
    free(f2.p);
    free(g0.text.p);

    /* legacy headers that must be refused, the rest of the file intact */
    buf good = {0};
    sy_put(&good, data, size);
    struct { int field; int32_t value; const char *word, *what; } bad[] = {
        {0, 0, "dim", "dim 0"},
        {0, -64, "dim", "dim -64"},
        {0, 1 << 30, "dim", "dim 2^30"},
        {1, 0, "hidden_dim", "hidden_dim 0"},
        {1, -172, "hidden_dim", "hidden_dim -172"},
        {2, 0, "n_layers", "n_layers 0"},
        {2, -5, "n_layers", "n_layers -5"},
        {3, 0, "n_heads", "n_heads 0"},
        {3, 7, "divide", "dim 64 not divisible by 7 heads"},
        {4, 3, "divide", "3 kv heads for 8 heads"},
        {4, 0, "n_kv_heads", "n_kv_heads 0"},
        {4, 16, "n_kv_heads", "more kv heads than heads"},
        {5, 0, "vocab_size", "vocab_size 0"},
        {6, 0, "seq_len", "seq_len 0"},
        {6, -512, "seq_len", "seq_len -512"},
        {6, 1 << 20, "truncated", "seq_len 2^20: RoPE tables past the end"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        b = with_i32(&good, 4 * (size_t)bad[i].field, bad[i].value);
        CHECK_LOAD_FAILS(b.p, b.n, tok, tok_size, bad[i].word, bad[i].what);
        free(b.p);
    }
    /* huge but in-range sizes: products must not overflow, the file is simply too short */
    int32_t huge[7] = {65536, 262144, 1024, 1024, 1024, 4194304, 1048576};
    b = (buf){0};
    sy_put(&b, data, size);
    for (int i = 0; i < 7; i++) put_u32_at(b.p + 4 * i, (uint32_t)huge[i]);
    CHECK_LOAD_FAILS(b.p, b.n, tok, tok_size, "truncated", "huge dimensions");
    free(b.p);
    /* truncated at every eighth, at the header, one float short; trailing garbage */
    CHECK_LOAD_FAILS(data, 28, tok, tok_size, "truncated", "legacy header only");
    CHECK_LOAD_FAILS(data, 20, tok, tok_size, "short", "legacy file shorter than its header");
    for (int k = 1; k < 8; k++) {
        char what[64];
        snprintf(what, sizeof what, "legacy file cut at %d/8", k);
        CHECK_LOAD_FAILS(data, size * k / 8 / 4 * 4, tok, tok_size, "truncated", what);
    }
    CHECK_LOAD_FAILS(data, size - 4, tok, tok_size, "truncated", "legacy file one float short");
    buf_zeros(&good, 8);
    CHECK_LOAD_FAILS(good.p, good.n, tok, tok_size, "describes", "legacy file with 8 trailing bytes");
    free(good.p);

    /* tokenizers that do not fit the model */
    size_t pos = 4, at500 = 0, last = 0, at10 = 0;
    for (int i = 0; i < 512; i++) {
        if (i == 500) at500 = pos;
        if (i == 10) at10 = pos;
        last = pos;
        int32_t len;
        memcpy(&len, tok + pos + 4, 4);
        pos += 8 + (size_t)len;
    }
    CHECK_INT(pos, tok_size);
    CHECK_LOAD_FAILS(data, size, tok, at500, "ends at token 500", "tokenizer of 500 tokens for a vocab of 512");
    buf t = {0};
    sy_put(&t, tok, tok_size);
    float zero = 0.0f;
    sy_put(&t, &zero, 4);
    sy_i32(&t, 1);
    sy_put(&t, "x", 1);
    CHECK_LOAD_FAILS(data, size, t.p, t.n, "larger vocabulary", "tokenizer of 513 tokens for a vocab of 512");
    free(t.p);
    t = (buf){0};
    sy_put(&t, tok, tok_size);
    put_u32_at(t.p + last + 4, 1000);
    CHECK_LOAD_FAILS(data, size, t.p, t.n, "past the end", "last token's length past the end");
    put_u32_at(t.p + last + 4, (uint32_t)-5);
    CHECK_LOAD_FAILS(data, size, t.p, t.n, "length", "negative token length");
    free(t.p);
    t = (buf){0};
    sy_put(&t, tok, tok_size);
    put_u32_at(t.p + at10, 0x7fc00000); /* token 10's score */
    CHECK_LOAD_FAILS(data, size, t.p, t.n, "score", "NaN score");
    free(t.p);
    CHECK_LOAD_FAILS(data, size, tok, 2, "truncated", "tokenizer of 2 bytes");

    /* files: missing, empty, a directory */
    rc = ts_model_load(&m1, "/nonexistent/model.bin", NULL, &err);
    CHECK_MSG(rc == TS_E_IO && strstr(err.msg, "cannot open") && m1 == NULL, "missing model file: rc %d \"%s\"", rc, err.msg);
    rc = ts_model_load(&m1, model_path, "/nonexistent/tok.bin", &err);
    CHECK_MSG(rc != 0 && strstr(err.msg, "cannot open") && m1 == NULL, "missing tokenizer file: rc %d \"%s\"", rc, err.msg);
    char empty[64];
    temp_path(empty, sizeof empty);
    rc = ts_model_load(&m1, empty, NULL, &err);
    CHECK_FAILS(rc, err, "empty");
    rc = ts_model_load(&m1, model_path, empty, &err);
    CHECK_FAILS(rc, err, "empty");
    remove(empty);
    rc = ts_model_load(&m1, "/tmp", NULL, &err);
    CHECK_MSG(rc != 0 && err.msg[0], "a directory as the model: rc %d \"%s\"", rc, err.msg);
    if (rc == 0) ts_model_free(m1);

    /* a TSMF with tok512 embedded: encodes with no -z */
    ref_model re;
    memset(&re, 0, sizeof re);
    re.dim = 16, re.hidden = 24, re.n_layers = 1, re.n_heads = 2, re.n_kv_heads = 2, re.head_dim = 8, re.vocab = 512;
    re.seq = 32, re.flags = TS_FLAG_SCALE_ATTN | TS_FLAG_TIED, re.theta = 10000.0f, re.eps = 1e-5f;
    ref_randomize(&re, 9);
    buf fe = tsmf_build(&re, TS_F32, 0, tok, tok_size);
    char emb_path[64];
    temp_path(emb_path, sizeof emb_path);
    write_file(emb_path, fe.p, fe.n);
    rc = ts_model_load(&m1, emb_path, NULL, &err);
    CHECK_MSG(rc == 0, "TSMF with an embedded tokenizer: %s", err.msg);
    if (rc == 0) {
        int ids[64], ni, want_ids[64];
        rc = ts_encode(m1, "Once upon a time", 16, 1, ids, 64, &ni, &err);
        int nw = ref_encode(&v, "Once upon a time", 16, want_ids);
        CHECK(rc == 0 && ni == nw + 1 && ids[0] == 1 && memcmp(ids + 1, want_ids, (size_t)nw * sizeof(int)) == 0);
        ts_model_free(m1);
    }
    /* its tokenizer section cut short */
    b = with_i32(&fe, 120, (int32_t)tok_size - 10);
    CHECK_LOAD_FAILS(b.p, b.n, NULL, 0, "tokenizer", "embedded tokenizer section 10 bytes short");
    free(b.p);
    b = with_i32(&fe, 120, (int32_t)tok_size + 10);
    CHECK_LOAD_FAILS(b.p, b.n, NULL, 0, "tokenizer", "embedded tokenizer section past the end");
    free(b.p);
    remove(emb_path);
    free(fe.p);
    ref_free(&re);

    ref_vocab_free(&v);
    ts_model_free(m);
    free(got), free(got1), free(want), free(data), free(tok);
}

/* ==========================================================================
 * 6. End to end: ./run and the library against llama2.c's stdout
 * ========================================================================== */

/* "./run MODEL -z TOK" and args, each quoted for the shell; env may prefix it. */
static char *run_command(const char *env, const char *model, const char *tok, const char *const *args, int n) {
    buf b = {0};
    if (env) sy_put(&b, env, strlen(env)), sy_put(&b, " ", 1);
    sy_put(&b, RUN_BINARY, strlen(RUN_BINARY));
    shell_quote(&b, model);
    if (tok) {
        sy_put(&b, " -z", 3);
        shell_quote(&b, tok);
    }
    for (int i = 0; i < n; i++) shell_quote(&b, args[i]);
    sy_put(&b, "", 1);
    return (char *)b.p;
}

static void test_end_to_end(void) {
    char model_path[512], tok_path[512], fix_path[512];
    shared_path(model_path, sizeof model_path, "models/stories260K.bin");
    shared_path(tok_path, sizeof tok_path, "models/tok512.bin");
    shared_path(fix_path, sizeof fix_path, "fixtures/stories260K-llama2c-outputs.json");
    json fx;
    if (skip_if_missing("end-to-end", model_path, tok_path, fix_path, (char *)NULL)) return;
    if (!json_load(fix_path, &fx)) {
        CHECK_MSG(0, "cannot parse %s", fix_path);
        return;
    }
    int have_run = access(RUN_BINARY, X_OK) == 0;
    if (!have_run) {
        char reason[600];
        snprintf(reason, sizeof reason, "%s not found (make run)", RUN_BINARY);
        skip("end-to-end ./run", reason);
    }
    ts_model *m;
    ts_error err = {0, ""};
    if (ts_model_load(&m, model_path, tok_path, &err)) {
        CHECK_MSG(0, "stories260K: %s", err.msg);
        json_free(&fx);
        return;
    }
    ref_vocab v;
    CHECK(ref_vocab_load(&v, tok_path, 512));

    /* every case: ./run's stdout and the library's pieces equal llama2.c's bytes */
    const json *cases = json_get(&fx, "cases");
    CHECK(cases && cases->n >= 6);
    for (int c = 0; cases && c < cases->n; c++) {
        const json *args = json_get(&cases->item[c], "args"), *want = json_get(&cases->item[c], "stdout");
        if (!args || !want) continue;
        const char *argv[32], *prompt = "";
        float temperature = 1.0f, topp = 0.9f;
        unsigned long long seed = 1;
        int steps = 256, n = args->n < 32 ? args->n : 32;
        for (int i = 0; i < n; i++) argv[i] = args->item[i].str;
        for (int i = 0; i + 1 < n; i += 2) {
            const char *flag = argv[i], *val = argv[i + 1];
            if (!strcmp(flag, "-t")) temperature = strtof(val, NULL);
            if (!strcmp(flag, "-p")) topp = strtof(val, NULL);
            if (!strcmp(flag, "-s")) seed = strtoull(val, NULL, 10);
            if (!strcmp(flag, "-n")) steps = atoi(val);
            if (!strcmp(flag, "-i")) prompt = val;
        }
        if (have_run) {
            char *cmd = run_command(NULL, model_path, tok_path, argv, n);
            cmd_result r;
            run_cmd(cmd, &r);
            CHECK_MSG(r.exit_code == 0, "%s: exit %d, stderr: %s", cmd, r.exit_code, ONELINE(r.err));
            CHECK_BYTES(r.out, r.out_len, want->str, want->len);
            cmd_free(&r);
            free(cmd);
        }
        collected g;
        int rc = generate(m, 0, prompt, temperature, topp, seed, steps, &g, &err);
        CHECK_MSG(rc == 0, "ts_generate case %d: %s", c, err.msg);
        CHECK_BYTES(g.text.p, g.text.n, want->str, want->len);
        free(g.text.p);
    }

    if (have_run) {
        /* the same seed gives the same bytes with 1, 2 or 4 threads */
        const json *sampled = cases && cases->n > 1 ? &cases->item[1] : NULL;
        const json *args = json_get(sampled, "args"), *want = json_get(sampled, "stdout");
        for (int threads = 1; args && want && threads <= 4; threads *= 2) {
            const char *argv[32];
            for (int i = 0; i < args->n && i < 32; i++) argv[i] = args->item[i].str;
            char env[64];
            snprintf(env, sizeof env, "OMP_NUM_THREADS=%d", threads);
            char *cmd = run_command(env, model_path, tok_path, argv, args->n);
            cmd_result r;
            run_cmd(cmd, &r);
            CHECK_MSG(r.exit_code == 0, "%s: exit %d", cmd, r.exit_code);
            CHECK_BYTES(r.out, r.out_len, want->str, want->len);
            cmd_free(&r);
            free(cmd);
        }

        /* command-line errors: non-zero exit, no crash, one "run: " line naming the problem */
        buf long_prompt = {0};
        for (int i = 0; i < 150; i++) sy_put(&long_prompt, "Once upon a time ", 17);
        sy_put(&long_prompt, "", 1);
        struct { const char *args[6]; int n; int with_tok; const char *model, *word; } bad[] = {
            {{"-x", "1"}, 2, 1, NULL, "-x"},
            {{"-t"}, 1, 1, NULL, "-t"},
            {{"-t", "-1"}, 2, 1, NULL, "temperature"},
            {{"-t", "nan"}, 2, 1, NULL, "temperature"},
            {{"-t", "abc"}, 2, 1, NULL, "temperature"},
            {{"-p", "1.5"}, 2, 1, NULL, "top-p"},
            {{"-n", "-3"}, 2, 1, NULL, "-n"},
            {{"-n", "1e9"}, 2, 1, NULL, "-n"},
            {{"-s", "-5"}, 2, 1, NULL, "seed"},
            {{"-m", "bogus"}, 2, 1, NULL, "bogus"},
            {{"-m", "logits"}, 2, 1, NULL, "--ids"},
            {{"-i", "hi"}, 2, 1, "/nonexistent/model.bin", "cannot open"},
            {{"-i", "hi"}, 2, 0, "TOKMISSING", "cannot open"},
            {{"-n", "0", "-i", (const char *)long_prompt.p}, 4, 1, NULL, "prompt"},
        };
        for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
            char *cmd;
            if (bad[i].model && !strcmp(bad[i].model, "TOKMISSING")) {
                const char *argv[] = {"-z", "/nonexistent/tok.bin", "-i", "hi"};
                cmd = run_command(NULL, model_path, NULL, argv, 4);
            } else cmd = run_command(NULL, bad[i].model ? bad[i].model : model_path, tok_path, bad[i].args, bad[i].n);
            cmd_result r;
            run_cmd(cmd, &r);
            const char *shown = strlen(cmd) > 120 ? "(the 600-word prompt)" : cmd;
            CHECK_MSG(r.exit_code > 0 && !r.crashed, "%s: expected a clean non-zero exit, got exit %d%s", shown, r.exit_code,
                      r.crashed ? " (crashed)" : "");
            CHECK_MSG(count_lines_starting(r.err, "run: ") == 1, "%s: expected one line starting \"run: \" on stderr, got: %s", shown, ONELINE(r.err));
            CHECK_MSG(strstr(r.err, bad[i].word) != NULL, "%s: stderr should mention \"%s\", got: %s", shown, bad[i].word, ONELINE(r.err));
            CHECK_MSG(r.out_len == 0, "%s: expected nothing on stdout, got %zu bytes", shown, r.out_len);
            cmd_free(&r);
            free(cmd);
        }
        free(long_prompt.p);
        cmd_result r;
        run_cmd(RUN_BINARY, &r);
        CHECK_MSG(r.exit_code > 0 && !r.crashed && count_lines_starting(r.err, "run: ") == 1, "./run with no arguments: exit %d, stderr %s",
                  r.exit_code, ONELINE(r.err));
        cmd_free(&r);

        /* a prompt longer than -n but inside the context: llama2.c echoes the prompt up to -n */
        const char *story = "Once upon a time, there was a little girl named Lily. She loved to play outside in the park.";
        const char *argv_steps[] = {"-t", "0", "-n", "10", "-i", story};
        char *cmd = run_command(NULL, model_path, tok_path, argv_steps, 6);
        run_cmd(cmd, &r);
        collected g;
        generate(m, 0, story, 0.0f, 0.9f, 1, 10, &g, &err);
        CHECK_MSG(r.exit_code == 0, "prompt longer than -n 10: exit %d, stderr: %s", r.exit_code, ONELINE(r.err));
        CHECK_BYTES(r.out, r.out_len, g.text.p, g.text.n);
        free(g.text.p);
        cmd_free(&r);
        free(cmd);

        /* -m tokenize: the ids of the quadratic reference, which spell the text back */
        const char *text = "Once upon a time";
        const char *argv_tok[] = {"-m", "tokenize", "-i", text};
        cmd = run_command(NULL, model_path, tok_path, argv_tok, 4);
        run_cmd(cmd, &r);
        int want_ids[64], got_ids[64], nw = ref_encode(&v, text, strlen(text), want_ids), ng = 0;
        for (char *p = r.out, *end; ng < 64; p = end) {
            long id = strtol(p, &end, 10);
            if (end == p) break;
            got_ids[ng++] = (int)id;
        }
        CHECK_MSG(r.exit_code == 0, "-m tokenize: exit %d", r.exit_code);
        CHECK_MSG(ng == nw && memcmp(got_ids, want_ids, (size_t)nw * sizeof(int)) == 0, "-m tokenize printed \"%s\"", ONELINE(r.out));
        size_t len;
        char *back = ref_detok(&v, got_ids, ng, &len);
        CHECK_BYTES(back, len, " Once upon a time", (size_t)17);
        CHECK(r.out_len > 0 && r.out[r.out_len - 1] == '\n');
        free(back);
        cmd_free(&r);
        free(cmd);

        /* -m logits: BOS + the prompt's ids in, n x vocab floats out, bit for bit the
         * library's; the last row's argmax is the greedy next token */
        int ids[65] = {1}, n = 1 + nw;
        memcpy(ids + 1, want_ids, (size_t)nw * sizeof(int));
        char ids_path[64], out_path[64], line[1024] = "";
        temp_path(ids_path, sizeof ids_path);
        temp_path(out_path, sizeof out_path);
        for (int i = 0; i < n; i++) snprintf(line + strlen(line), sizeof line - strlen(line), "%d%s", ids[i], i + 1 < n ? " " : "\n");
        write_file(ids_path, line, strlen(line));
        const char *argv_logits[] = {"-m", "logits", "--ids", ids_path, "--out", out_path};
        cmd = run_command(NULL, model_path, tok_path, argv_logits, 6);
        run_cmd(cmd, &r);
        CHECK_MSG(r.exit_code == 0, "-m logits: exit %d, stderr: %s", r.exit_code, ONELINE(r.err));
        size_t out_len;
        char *out = read_file(out_path, &out_len);
        CHECK_INT(out_len, (size_t)n * 512 * 4);
        float *lib = (float *)malloc((size_t)n * 512 * sizeof(float));
        ts_session *s;
        int rc = ts_session_new(&s, m, 0, &err);
        if (rc == 0) rc = ts_forward_all(s, ids, n, 0, lib, &err);
        if (rc == 0) ts_session_free(s);
        CHECK_MSG(out && out_len == (size_t)n * 512 * 4 && rc == 0 && memcmp(out, lib, out_len) == 0,
                  "-m logits output differs from ts_forward_all (./run and test_all must be built with the same flags)");
        generate(m, 0, text, 0.0f, 0.9f, 1, n, &g, &err); /* n - 1 prompt pieces, then one sampled */
        CHECK_MSG(g.n == n && g.ids[n - 1] == ts_argmax(lib + (size_t)(n - 1) * 512, 512),
                  "greedy next token %d, argmax of the last logits row %d", g.n ? g.ids[g.n - 1] : -1,
                  ts_argmax(lib + (size_t)(n - 1) * 512, 512));
        free(g.text.p);
        free(lib), free(out);
        cmd_free(&r);
        free(cmd);
        /* an ids file with a bad id */
        write_file(ids_path, "1 2 600\n", 8);
        cmd = run_command(NULL, model_path, tok_path, argv_logits, 6);
        run_cmd(cmd, &r);
        CHECK_MSG(r.exit_code > 0 && !r.crashed && count_lines_starting(r.err, "run: ") == 1 && strstr(r.err, "600"),
                  "-m logits with id 600: exit %d, stderr %s", r.exit_code, ONELINE(r.err));
        cmd_free(&r);
        free(cmd);
        remove(ids_path), remove(out_path);
    }
    ref_vocab_free(&v);
    ts_model_free(m);
    json_free(&fx);
}

/* ==========================================================================
 * main
 * ========================================================================== */

/* ---- GPT-2 pre-tokenizer: one case per rule of its regex ----
 * 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
 * The expected pieces are the regex's matches, worked out by hand from its rules. */
static void check_pretokens(int line, const char *text, const char *const *want, int n_want) {
    const unsigned char *s = (const unsigned char *)text;
    size_t n = strlen(text), i = 0;
    int k = 0, ok = 1;
    char got[512] = "";
    while (i < n && k < 64) {
        size_t e = ts_gpt2_pretoken_end(s, n, i);
        if (e <= i || e > n) { ok = 0; break; }
        if (k >= n_want || strlen(want[k]) != e - i || memcmp(want[k], text + i, e - i) != 0) ok = 0;
        size_t used = strlen(got);
        snprintf(got + used, sizeof got - used, "[%s]", oneline(text + i, e - i, 40));
        i = e, k++;
    }
    check(ok && k == n_want, __FILE__, line, "pre-tokens of \"%s\": got %s", oneline(text, strlen(text), 60), got);
}
#define CHECK_PRETOKENS(text, ...)                                                                    \
    do {                                                                                              \
        static const char *const want_[] = {__VA_ARGS__};                                             \
        check_pretokens(__LINE__, (text), want_, (int)(sizeof want_ / sizeof want_[0]));              \
    } while (0)

/* ts_utf8_decode against Unicode's table of well-formed sequences: every first and second
 * byte, with third and fourth bytes at and past the continuation range's ends, at every
 * length of text; the code points of the boundary characters. */
static void test_utf8_decode(void) {
    static const unsigned char tails[] = {0x7F, 0x80, 0xBF, 0xC0};
    long mismatches = 0, valid = 0;
    for (int b0 = 0; b0 < 256; b0++)
        for (int b1 = 0; b1 < 256; b1++)
            for (int t2 = 0; t2 < 4; t2++)
                for (int t3 = 0; t3 < 4; t3++) {
                    unsigned char s[4] = {(unsigned char)b0, (unsigned char)b1, tails[t2], tails[t3]};
                    for (size_t n = 1; n <= 4; n++) {
                        uint32_t cp = 0;
                        size_t got = (size_t)ts_utf8_decode(s, n, &cp), want = ref_utf8_len(s, n);
                        mismatches += got != want;
                        valid += want > 0;
                    }
                }
    CHECK_MSG(mismatches == 0 && valid > 0, "%ld of the lengths differ from table 3-7 (%ld valid)", mismatches, valid);
    struct { const char *s; uint32_t cp; } chars[] = {
        {"A", 0x41}, {"\x7F", 0x7F}, {"\xC2\x80", 0x80}, {"\xC3\xA9", 0xE9}, {"\xDF\xBF", 0x7FF}, {"\xE0\xA0\x80", 0x800},
        {"\xED\x9F\xBF", 0xD7FF}, {"\xEE\x80\x80", 0xE000}, {"\xEF\xBF\xBF", 0xFFFF}, {"\xF0\x90\x80\x80", 0x10000},
        {"\xF0\x9F\x99\x82", 0x1F642}, {"\xF4\x8F\xBF\xBF", 0x10FFFF},
    };
    for (size_t i = 0; i < sizeof chars / sizeof chars[0]; i++) {
        uint32_t cp = 0;
        int len = ts_utf8_decode((const unsigned char *)chars[i].s, strlen(chars[i].s), &cp);
        CHECK_MSG(len == (int)strlen(chars[i].s) && cp == chars[i].cp, "character %zu: length %d, U+%04X", i, len, (unsigned)cp);
    }
}

/* The sampler's filters against hand computations: the repetition penalty (llama.cpp's rule,
 * once per distinct token of the window), top-k (ties to the lower id), min-p. */
static void test_sampler_filters(void) {
    float logits[5] = {2.0f, -2.0f, 0.5f, 3.0f, -1.0f};
    int history[5] = {0, 1, 0, 2, 0};
    ts_repeat_penalty(logits, 5, history, 5, 64, 2.0f);
    float want[5] = {1.0f, -4.0f, 0.25f, 3.0f, -1.0f};
    CHECK_MSG(memcmp(logits, want, sizeof want) == 0, "penalty 2 over all: %g %g %g %g %g", logits[0], logits[1], logits[2], logits[3], logits[4]);
    float window[5] = {2.0f, -2.0f, 0.5f, 3.0f, -1.0f}, want_window[5] = {1.0f, -2.0f, 0.25f, 3.0f, -1.0f};
    ts_repeat_penalty(window, 5, history, 5, 3, 2.0f); /* the last 3: tokens 0, 2 */
    CHECK_MSG(memcmp(window, want_window, sizeof want_window) == 0, "penalty over the last 3");
    ts_prob_index scratch[6];
    float k2[6] = {1.0f, 5.0f, 3.0f, 5.0f, 3.0f, -7.0f};
    ts_keep_top_k(k2, 6, 3, scratch); /* 5, 5 and the first 3 */
    CHECK_MSG(k2[1] == 5.0f && k2[3] == 5.0f && k2[2] == 3.0f && isinf(k2[4]) && isinf(k2[0]) && isinf(k2[5]), "top-3, ties to the lower id");
    float probs[4] = {0.5f, 0.3f, 0.15f, 0.05f};
    ts_keep_min_p(probs, 4, 0.5f); /* >= 0.25: 0.5 and 0.3, renormalized */
    CHECK_NEAR(probs[0], 0.5 / 0.8, 1e-7);
    CHECK_NEAR(probs[1], 0.3 / 0.8, 1e-7);
    CHECK(probs[2] == 0.0f && probs[3] == 0.0f);
    /* stop strings: what may go out of the held text */
    const char *stops[2] = {"the end", "xy"};
    ts_generate_opts o = {0};
    o.stop = stops, o.n_stop = 2;
    int stop;
    CHECK(ts_stop_release(&o, "and then th", 11, &stop) == 9 && !stop);        /* "th" may start "the end" */
    CHECK(ts_stop_release(&o, "and the end.", 12, &stop) == 4 && stop);        /* stops before it */
    CHECK(ts_stop_release(&o, "a x", 3, &stop) == 2 && !stop);
    CHECK(ts_stop_release(&o, "nothing", 7, &stop) == 7 && !stop);
    CHECK(ts_stop_release(&o, "axyz the end", 12, &stop) == 1 && stop);       /* the first occurrence of any */
}

static void test_gpt2_pretokenizer(void) {
    /* the seven contractions, case-sensitive as in GPT-2 */
    CHECK_PRETOKENS("it's", "it", "'s");
    CHECK_PRETOKENS("don't", "don", "'t");
    CHECK_PRETOKENS("they're", "they", "'re");
    CHECK_PRETOKENS("we've", "we", "'ve");
    CHECK_PRETOKENS("I'm", "I", "'m");
    CHECK_PRETOKENS("you'll", "you", "'ll");
    CHECK_PRETOKENS("he'd", "he", "'d");
    CHECK_PRETOKENS("IT'S", "IT", "'", "S");          /* no upper-case contraction */
    CHECK_PRETOKENS("a 's", "a", " '", "s");          /* a space before: a symbol run */
    /* letters, an optional space before */
    CHECK_PRETOKENS("Once upon", "Once", " upon");
    /* numbers */
    CHECK_PRETOKENS("abc123 456", "abc", "123", " 456");
    /* other symbols */
    CHECK_PRETOKENS("Hi!!! ?.,", "Hi", "!!!", " ?.,");
    /* white space: a run before a non-space leaves its last character to the next piece */
    CHECK_PRETOKENS("a   b", "a", "  ", " b");
    CHECK_PRETOKENS("a  ", "a", "  ");                /* at the end: the whole run */
    CHECK_PRETOKENS("a\n\nb", "a", "\n", "\n", "b");  /* only U+0020 prefixes a word */
    CHECK_PRETOKENS("a\n\n b", "a", "\n\n", " b");
    /* letters and numbers in the Unicode sense */
    CHECK_PRETOKENS("caf\xc3\xa9 \xc3\xbc" "ber", "caf\xc3\xa9", " \xc3\xbc" "ber");
    CHECK_PRETOKENS("\xe6\x97\xa5\xe6\x9c\xac", "\xe6\x97\xa5\xe6\x9c\xac"); /* CJK letters */
    CHECK_PRETOKENS("x\xd9\xa3", "x", "\xd9\xa3");    /* U+0663, an Arabic-Indic digit */
}

int main(void) {
    const char *shared = getenv("SHARED");
    if (shared && *shared) SHARED_DIR = shared;
    const char *binary = getenv("RUN_BINARY");
    if (binary && *binary) RUN_BINARY = binary;
    setvbuf(stdout, NULL, _IOLBF, 0);
    test_json_reader();
    test_matmul();
    test_norms_softmax_activations();
    test_quantize();
    test_rope();
    test_sampler();
    test_forward_reference();
    test_bad_tsmf();
    test_tokenizer_llama2();
    test_utf8_decode();
    test_sampler_filters();
    test_gpt2_pretokenizer();
    test_loaders_shared();
    test_end_to_end();
    return check_summary("test_all");
}
