/* gen.c -- writes random-weight TSMF model files for `make bench`.
 *
 *   gen OUT.bin TYPE ARCH DIM HIDDEN LAYERS HEADS VOCAB SEQ [WINDOW]
 *
 * TYPE is f32, q8_0 or bf16; ARCH is llama (RMSNorm, RoPE, SwiGLU, tied classifier, as
 * the stories models) or gptneo (LayerNorm, learned positions, GELU, biases, tied; layers
 * 1, 3, 5, ... attend locally to the last WINDOW positions, as TinyStories-1M/33M).
 * The file carries a synthetic SentencePiece tokenizer of VOCAB pieces (byte tokens, then
 * made-up words) so `./run OUT.bin -i ...` needs nothing else, and no BOS/EOS ids, so
 * generation runs every step it is asked for. Weights are uniform in +-1/sqrt(fan_in)
 * from a fixed seed: the same arguments always give the same file. Layout: spec/format.md.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uint64_t rng = 0x9E3779B97F4A7C15ull;
static float uniform(void) { /* [-1, 1) */
    rng ^= rng >> 12, rng ^= rng << 25, rng ^= rng >> 27;
    return (float)((rng * 0x2545F4914F6CDD1Dull) >> 40) / 8388608.0f - 1.0f;
}

static FILE *out;
static uint64_t written;
static void put(const void *p, size_t n) {
    if (fwrite(p, 1, n, out) != n) {
        perror("gen: write");
        exit(1);
    }
    written += n;
}
static void pad64(void) {
    static const char zeros[64];
    put(zeros, (size_t)((64 - written % 64) % 64));
}
static void put_i32(int32_t v) { put(&v, 4); }

enum { F32, Q8_0, BF16 };
static int type, group_size = 64;

/* A (rows, cols) matrix of the file's weight type, values uniform in +-amp. */
static void matrix(int rows, int cols, float amp) {
    pad64();
    size_t chunk = 1 << 16;
    float *buf = malloc(chunk * sizeof(float));
    if (type == Q8_0) { /* int8 values, then one scale per group of each row */
        int groups = (cols + group_size - 1) / group_size;
        int8_t *q = malloc(chunk);
        for (size_t done = 0, n = (size_t)rows * cols; done < n; done += chunk) {
            size_t k = n - done < chunk ? n - done : chunk;
            for (size_t i = 0; i < k; i++) q[i] = (int8_t)lrintf(uniform() * 127.0f);
            put(q, k);
        }
        pad64();
        for (size_t i = 0; i < (size_t)rows * groups; i++) {
            float s = amp / 127.0f;
            put(&s, 4);
        }
        free(q);
    } else {
        for (size_t done = 0, n = (size_t)rows * cols; done < n; done += chunk) {
            size_t k = n - done < chunk ? n - done : chunk;
            for (size_t i = 0; i < k; i++) buf[i] = uniform() * amp;
            if (type == F32) put(buf, k * 4);
            else
                for (size_t i = 0; i < k; i++) {
                    uint32_t bits;
                    memcpy(&bits, &buf[i], 4);
                    uint16_t h = (uint16_t)(bits >> 16);
                    put(&h, 2);
                }
        }
    }
    free(buf);
}

/* A float vector: constant `base` plus uniform noise of amplitude `noise`. */
static void vec(int n, float base, float noise) {
    pad64();
    for (int i = 0; i < n; i++) {
        float v = base + noise * uniform();
        put(&v, 4);
    }
}

/* The synthetic tokenizer (llama2.c tokenizer.bin layout): <unk>, BOS, EOS, 256 byte
 * tokens, the printable ASCII characters, then words made of letters. */
static void tokenizer(int vocab) {
    put_i32(16);
    for (int id = 0; id < vocab; id++) {
        char piece[32];
        if (id == 0) strcpy(piece, "<unk>");
        else if (id == 1) strcpy(piece, "\n<s>\n");
        else if (id == 2) strcpy(piece, "\n</s>\n");
        else if (id < 259) snprintf(piece, sizeof piece, "<0x%02X>", id - 3);
        else if (id < 259 + 95) snprintf(piece, sizeof piece, "%c", ' ' + (id - 259));
        else {
            int k = id - 259 - 95, n = 0;
            if (k % 2) piece[n++] = ' ';
            for (k /= 2; n < 12; k /= 26) {
                piece[n++] = (char)('a' + k % 26);
                if (k < 26) break;
            }
            piece[n] = '\0';
        }
        float score = id < 259 ? 0.0f : -(float)id;
        int32_t len = (int32_t)strlen(piece);
        put(&score, 4);
        put_i32(len);
        put(piece, (size_t)len);
    }
}

int main(int argc, char **argv) {
    if (argc < 10) {
        fprintf(stderr, "usage: gen OUT.bin f32|q8_0|bf16 llama|gptneo DIM HIDDEN LAYERS HEADS VOCAB SEQ [WINDOW]\n");
        return 1;
    }
    type = !strcmp(argv[2], "f32") ? F32 : !strcmp(argv[2], "q8_0") ? Q8_0 : !strcmp(argv[2], "bf16") ? BF16 : -1;
    int neo = !strcmp(argv[3], "gptneo");
    int dim = atoi(argv[4]), hid = atoi(argv[5]), L = atoi(argv[6]), heads = atoi(argv[7]);
    int vocab = atoi(argv[8]), seq = atoi(argv[9]), window = argc > 10 ? atoi(argv[10]) : 0;
    if (type < 0 || (!neo && strcmp(argv[3], "llama")) || dim <= 0 || hid <= 0 || L <= 0 || heads <= 0 ||
        dim % heads || vocab < 400 || seq <= 0) {
        fprintf(stderr, "gen: bad arguments\n");
        return 1;
    }
    out = fopen(argv[1], "wb");
    if (!out) {
        perror(argv[1]);
        return 1;
    }
    /* header, with the two offsets patched in at the end */
    unsigned char h[256] = {0};
    int32_t fields[] = {1, 256, neo ? 2 : 1, dim, hid, L, heads, heads, dim / heads, vocab, seq,
                        neo ? 2 : 1, neo ? 2 : 1, neo ? 2 : 1,
                        neo ? (1 | 4 | 8) : (1 | 16), /* TIED | OUT_BIAS | MLP_BIAS, or TIED | SCALE_ATTN */
                        type, type == Q8_0 ? group_size : 0};
    memcpy(h, "TSMF", 4);
    memcpy(h + 4, fields, sizeof fields);
    float theta = 10000.0f, eps = 1e-5f;
    memcpy(h + 72, &theta, 4);
    memcpy(h + 76, &eps, 4);
    int32_t tail[] = {1, -1, -1}; /* SentencePiece tokenizer, no BOS, no EOS */
    memcpy(h + 80, tail, sizeof tail);
    put(h, 256);
    for (int l = 0; l < L; l++) put_i32(neo && l % 2 ? window : 0);
    pad64();
    uint64_t weights_offset = written;
    float a_dim = 1.0f / sqrtf((float)dim), a_hid = 1.0f / sqrtf((float)hid);
    matrix(vocab, dim, 1.0f);
    if (neo) vec(seq * dim, 0.0f, 0.1f);
    for (int l = 0; l < L; l++) {
        vec(dim, 1.0f, 0.1f);
        if (neo) vec(dim, 0.0f, 0.1f);
        matrix(dim, dim, a_dim), matrix(dim, dim, a_dim), matrix(dim, dim, a_dim);
        matrix(dim, dim, a_dim);
        if (neo) vec(dim, 0.0f, 0.1f);
        vec(dim, 1.0f, 0.1f);
        if (neo) vec(dim, 0.0f, 0.1f);
        matrix(hid, dim, a_dim);
        if (neo) vec(hid, 0.0f, 0.1f);
        if (!neo) matrix(hid, dim, a_dim);
        matrix(dim, hid, a_hid);
        if (neo) vec(dim, 0.0f, 0.1f);
    }
    vec(dim, 1.0f, 0.1f);
    if (neo) vec(dim, 0.0f, 0.1f);
    uint64_t weights_size = written - weights_offset;
    pad64();
    uint64_t tok_offset = written;
    tokenizer(vocab);
    uint64_t offsets[4] = {weights_offset, weights_size, tok_offset, written - tok_offset};
    if (fseek(out, 96, SEEK_SET) != 0 || fwrite(offsets, 8, 4, out) != 4 || fclose(out) != 0) {
        perror("gen: write header");
        return 1;
    }
    return 0;
}
