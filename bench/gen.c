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
 * from a fixed seed: the same arguments always give the same file. The layout is written by
 * fuzz/synth.h, the project's one C writer of model files (docs/format.md).
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../fuzz/synth.h" /* the one C writer of model files */

static uint64_t rng = 0x9E3779B97F4A7C15ull;
static float uniform(void) { /* [-1, 1) */
    rng ^= rng >> 12, rng ^= rng << 25, rng ^= rng >> 27;
    return (float)((rng * 0x2545F4914F6CDD1Dull) >> 40) / 8388608.0f - 1.0f;
}

/* The weights, in the order the writer asks for them: matrices uniform in +-1/sqrt(cols)
 * (the embedding in +-1), norm weights 1 +- 0.1, biases and positions 0 +- 0.1. */
static void values(void *ctx, const char *name, int layer, size_t rows, size_t cols, float *out) {
    (void)ctx, (void)layer;
    int norm = strstr(name, "norm") && !strstr(name, "bias"), matrix = name[0] == 'w' || !strcmp(name, "tok_embedding");
    float amp = !matrix ? 0.1f : !strcmp(name, "tok_embedding") ? 1.0f : 1.0f / sqrtf((float)cols);
    for (size_t i = 0; i < rows * cols; i++) out[i] = (norm ? 1.0f : 0.0f) + amp * uniform();
}

/* The synthetic tokenizer (llama2.c tokenizer.bin layout): <unk>, BOS, EOS, 256 byte
 * tokens, the printable ASCII characters, then words made of letters. */
static void tokenizer(sy_buf *b, int vocab) {
    sy_i32(b, 16);
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
        sy_f32(b, id < 259 ? 0.0f : -(float)id);
        sy_i32(b, (int32_t)strlen(piece));
        sy_put(b, piece, strlen(piece));
    }
}

int main(int argc, char **argv) {
    if (argc < 10) {
        fprintf(stderr, "usage: gen OUT.bin f32|q8_0|bf16 llama|gptneo DIM HIDDEN LAYERS HEADS VOCAB SEQ [WINDOW]\n");
        return 1;
    }
    int type = !strcmp(argv[2], "f32") ? 0 : !strcmp(argv[2], "q8_0") ? 1 : !strcmp(argv[2], "bf16") ? 2 : -1;
    int neo = !strcmp(argv[3], "gptneo");
    int dim = atoi(argv[4]), hid = atoi(argv[5]), L = atoi(argv[6]), heads = atoi(argv[7]);
    int vocab = atoi(argv[8]), seq = atoi(argv[9]), window = argc > 10 ? atoi(argv[10]) : 0;
    if (type < 0 || (!neo && strcmp(argv[3], "llama")) || dim <= 0 || hid <= 0 || L <= 0 || L > 64 || heads <= 0 ||
        dim % heads || vocab < 400 || seq <= 0) {
        fprintf(stderr, "gen: bad arguments\n");
        return 1;
    }
    sy_buf tok = {NULL, 0, 0}, file = {NULL, 0, 0};
    tokenizer(&tok, vocab);
    int windows[64];
    for (int l = 0; l < L; l++) windows[l] = neo && l % 2 ? window : 0;
    sy_model m = {SY_TSMF, dim, hid, L, heads, heads, vocab, seq, 1, type, 64, neo, tok.p, tok.n, 0, 0};
    /* tied; GPT-Neo: biases on the attention output and the MLP; Llama: scaled attention;
     * no BOS or EOS ids, so generation runs every step it is asked for */
    sy_header h = {dim / heads, neo ? (1u | 4u | 8u) : (1u | 16u), windows, 10000.0f, 1e-5f, -1, -1};
    sy_write_tsmf_from(&file, &m, &h, values, NULL);
    FILE *out = fopen(argv[1], "wb");
    if (!out || fwrite(file.p, 1, file.n, out) != file.n || fclose(out) != 0) {
        perror(argv[1]);
        return 1;
    }
    free(tok.p), free(file.p);
    return 0;
}
