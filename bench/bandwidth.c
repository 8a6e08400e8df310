/* bandwidth.c -- how fast this machine streams memory, for the roofline in `make bench`.
 *
 *   bandwidth MiB [repeats]     prints "GB/s" for reading a buffer of MiB mebibytes
 *
 * Reads the whole buffer `repeats` times (OMP_NUM_THREADS threads, each its own slice,
 * as a matmul reads its rows) and prints the best rate of the passes (as STREAM does: on
 * a shared machine the best pass is the one least disturbed), in 10^9 bytes per second. The sum is of 64-bit integers, which the compiler may vectorise freely
 * (integer addition is associative), so the loop runs at the speed of the loads.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now(void) {
    struct timespec ts;
    timespec_get(&ts, TIME_UTC);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int compare(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: bandwidth MiB [repeats]\n");
        return 1;
    }
    size_t n = (size_t)atol(argv[1]) * 1024 * 1024 / 8;
    int repeats = argc > 2 ? atoi(argv[2]) : 9;
    if (n == 0 || repeats < 1 || repeats > 1000) return 1;
    uint64_t *buf = malloc(n * 8);
    double *rate = malloc((size_t)repeats * sizeof(double));
    if (!buf || !rate) return 1;
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; i++) buf[i] = i; /* touch every page, from the thread that reads it */
    uint64_t check = 0;
    for (int r = 0; r < repeats; r++) {
        double t0 = now();
        uint64_t sum = 0;
#pragma omp parallel for schedule(static) reduction(+ : sum)
        for (size_t i = 0; i < n; i++) sum += buf[i];
        rate[r] = (double)n * 8 / (now() - t0) / 1e9;
        check += sum;
    }
    qsort(rate, (size_t)repeats, sizeof(double), compare);
    printf("%.1f\n", rate[repeats - 1]);
    free(buf);
    free(rate);
    return check == 42; /* keeps the sums alive */
}
