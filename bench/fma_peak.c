/* fma_peak.c -- the machine's float32 fused multiply-add peak, for make bench's GFLOP/s rows.
 *
 *   cc -O2 -march=native -ffp-contract=fast -fopenmp -o fma_peak fma_peak.c; OMP_NUM_THREADS=2 ./fma_peak
 *
 * Prints GFLOP/s (2 per lane per FMA) over all threads: each thread runs 16 independent
 * chains of a * x + y on vectors of the widest size the build has (64 bytes with AVX-512,
 * 32 with AVX2, 16 otherwise), enough chains to cover an FMA's latency times its throughput
 * on current cores (4 cycles x 2 per cycle = 8). Best of 5 passes. */
#include <stdio.h>
#include <time.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#if defined(__AVX512F__)
#define BYTES 64
#elif defined(__AVX2__) || defined(__AVX__)
#define BYTES 32
#else
#define BYTES 16
#endif
typedef float vec __attribute__((vector_size(BYTES)));
#define LANES (BYTES / 4)
#define CHAINS 16

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

int main(void) {
    const long steps = 20000000;
    double best = 0;
    for (int pass = 0; pass < 5; pass++) {
        double t0 = now(), sink = 0;
        int threads = 1;
#pragma omp parallel reduction(+ : sink)
        {
#ifdef _OPENMP
#pragma omp single
            threads = omp_get_num_threads();
#endif
            vec acc[CHAINS], a, x;
            for (int l = 0; l < LANES; l++) a[l] = 0.999999f, x[l] = 1e-7f;
            for (int c = 0; c < CHAINS; c++) acc[c] = a * (float)c;
            for (long i = 0; i < steps; i++)
                for (int c = 0; c < CHAINS; c++) acc[c] = acc[c] * a + x; /* one FMA each */
            for (int c = 0; c < CHAINS; c++)
                for (int l = 0; l < LANES; l++) sink += acc[c][l];
        }
        double secs = now() - t0, gflops = 2.0 * LANES * CHAINS * (double)steps * threads / secs / 1e9;
        if (gflops > best) best = gflops;
        if (sink == 12345.678) printf("!"); /* keeps the sums alive */
    }
    printf("%.1f\n", best);
    return 0;
}
