/* bench/streams.c: how fast one thread streams a matrix-vector product (a matrix of floats
 * larger than the caches, row by row) when each loop step issues 1, 2 or 4 loads of 64 bytes
 * (1, 2, 4 zmm accumulators) or 2 of 32 bytes (ymm). The question it answers: what access
 * pattern the hardware streams best, which a decode kernel's order of sums should follow.
 * Build: cc -O3 -march=native -o bench/streams bench/streams.c; run: bench/streams ROWS COLS REPS
 * (e.g. 32000 288 15: stories15M's classifier). AVX-512 machines only. */
#if !defined(__AVX512F__)
#include <stdio.h>
int main(void) {
    printf("bench/streams: needs AVX-512 (build with -march=native on such a machine)\n");
    return 0;
}
#else
#include <immintrin.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + 1e-9 * t.tv_nsec; }
static inline float hsum(__m512 v) { return _mm512_reduce_add_ps(v); }
__attribute__((noinline)) void k1(float *out, const float *w, const float *x, int rows, int cols) {
    for (int i = 0; i < rows; i++) { __m512 a = _mm512_setzero_ps(); const float *r = w + (size_t)i * cols;
        for (int j = 0; j < cols; j += 16) a = _mm512_fmadd_ps(_mm512_loadu_ps(r + j), _mm512_loadu_ps(x + j), a);
        out[i] = hsum(a); }
}
__attribute__((noinline)) void k2(float *out, const float *w, const float *x, int rows, int cols) {
    for (int i = 0; i < rows; i++) { __m512 a = _mm512_setzero_ps(), b = a; const float *r = w + (size_t)i * cols;
        for (int j = 0; j < cols; j += 32) { a = _mm512_fmadd_ps(_mm512_loadu_ps(r + j), _mm512_loadu_ps(x + j), a);
            b = _mm512_fmadd_ps(_mm512_loadu_ps(r + j + 16), _mm512_loadu_ps(x + j + 16), b); }
        out[i] = hsum(_mm512_add_ps(a, b)); }
}
__attribute__((noinline)) void k4(float *out, const float *w, const float *x, int rows, int cols) {
    for (int i = 0; i < rows; i++) { __m512 a = _mm512_setzero_ps(), b = a, c = a, d = a; const float *r = w + (size_t)i * cols;
        int j = 0;
        for (; j + 64 <= cols; j += 64) { a = _mm512_fmadd_ps(_mm512_loadu_ps(r + j), _mm512_loadu_ps(x + j), a);
            b = _mm512_fmadd_ps(_mm512_loadu_ps(r + j + 16), _mm512_loadu_ps(x + j + 16), b);
            c = _mm512_fmadd_ps(_mm512_loadu_ps(r + j + 32), _mm512_loadu_ps(x + j + 32), c);
            d = _mm512_fmadd_ps(_mm512_loadu_ps(r + j + 48), _mm512_loadu_ps(x + j + 48), d); }
        for (; j < cols; j += 32) { a = _mm512_fmadd_ps(_mm512_loadu_ps(r + j), _mm512_loadu_ps(x + j), a);
            b = _mm512_fmadd_ps(_mm512_loadu_ps(r + j + 16), _mm512_loadu_ps(x + j + 16), b); }
        out[i] = hsum(_mm512_add_ps(_mm512_add_ps(a, c), _mm512_add_ps(b, d))); }
}
__attribute__((noinline)) void k2y(float *out, const float *w, const float *x, int rows, int cols) { /* 256-bit, 2 accs */
    for (int i = 0; i < rows; i++) { __m256 a = _mm256_setzero_ps(), b = a; const float *r = w + (size_t)i * cols;
        for (int j = 0; j < cols; j += 16) { a = _mm256_fmadd_ps(_mm256_loadu_ps(r + j), _mm256_loadu_ps(x + j), a);
            b = _mm256_fmadd_ps(_mm256_loadu_ps(r + j + 8), _mm256_loadu_ps(x + j + 8), b); }
        __m256 s = _mm256_add_ps(a, b); __m128 h = _mm_add_ps(_mm256_castps256_ps128(s), _mm256_extractf128_ps(s, 1));
        h = _mm_hadd_ps(h, h); h = _mm_hadd_ps(h, h); out[i] = _mm_cvtss_f32(h); }
}
typedef void (*kf)(float *, const float *, const float *, int, int);
int main(int argc, char **argv) {
    if (argc < 4) {
        printf("usage: bench/streams ROWS COLS REPS\n");
        return 1;
    }
    int rows = atoi(argv[1]), cols = atoi(argv[2]), reps = atoi(argv[3]);
    size_t n = (size_t)rows * cols, nm = (256u << 20) / (n * 4) + 1;
    float *w = aligned_alloc(64, nm * n * 4), *x = aligned_alloc(64, cols * 4), *out = malloc(rows * 4);
    for (size_t i = 0; i < nm * n; i++) w[i] = 1.0f;
    for (int j = 0; j < cols; j++) x[j] = 0.5f;
    kf f[] = {k1, k2, k4, k2y}; const char *nm_[] = {"1acc", "2acc", "4acc", "2acc-ymm"}; double best[4] = {1e9, 1e9, 1e9, 1e9};
    for (int r = 0; r < reps; r++) for (int k = 0; k < 4; k++) { double t0 = now(); for (size_t m = 0; m < nm; m++) f[k](out, w + m * n, x, rows, cols); double t = now() - t0; if (t < best[k]) best[k] = t; }
    printf("%dx%d:", rows, cols); for (int k = 0; k < 4; k++) printf(" %s %.1f", nm_[k], nm * n * 4 / best[k] / 1e9); printf(" GB/s\n");
}
#endif
