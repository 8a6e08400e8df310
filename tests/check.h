/* The C tests' one check framework (test_all.c, tests/test_api.c, tests/test_speed.c,
 * tests/test_harden.c). A failed check prints file:line and what it expected; n_pass and
 * n_fail count the checks, n_skip the groups that could not run (each says SKIP and why,
 * and is never counted as passed). check_summary prints the suite's last line and gives
 * its exit status. */
#ifndef TS_CHECK_H
#define TS_CHECK_H
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static int n_pass, n_fail, n_skip;

/* A failed check: counted, and its file:line and message printed. The CHECK macros call it
 * only when the condition is false, so a message may show values the condition computes. */
static void check_fail(const char *file, int line, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;
static void check_fail(const char *file, int line, const char *fmt, ...) {
    n_fail++;
    va_list ap;
    va_start(ap, fmt);
    printf("FAIL %s:%d: ", file, line);
    vprintf(fmt, ap);
    printf("\n");
    va_end(ap);
    fflush(stdout);
}
#define check(ok, file, line, ...) ((ok) ? (void)n_pass++ : check_fail(file, line, __VA_ARGS__))

/* "name: N passed, N failed[, N skipped]"; 1 if any check failed */
static int check_summary(const char *name) {
    printf("%s: %d passed, %d failed", name, n_pass, n_fail);
    if (n_skip) printf(", %d skipped", n_skip);
    printf("\n");
    return n_fail ? 1 : 0;
}

#define CHECK(cond) check(!!(cond), __FILE__, __LINE__, "%s", #cond)
#define CHECK_MSG(cond, ...) check(!!(cond), __FILE__, __LINE__, __VA_ARGS__)
#define CHECK_INT(got, want)                                                                          \
    do {                                                                                              \
        long long g_ = (long long)(got), w_ = (long long)(want);                                      \
        check(g_ == w_, __FILE__, __LINE__, "%s: expected %lld, got %lld", #got, w_, g_);             \
    } while (0)
#define CHECK_NEAR(got, want, tol)                                                                    \
    do {                                                                                              \
        double g_ = (got), w_ = (want), t_ = (tol);                                                   \
        check(fabs(g_ - w_) <= t_, __FILE__, __LINE__, "%s: expected %.9g (within %g), got %.9g",     \
              #got, w_, t_, g_);                                                                      \
    } while (0)
/* an error measure (max difference ...) that must stay within a bound; NaN fails */
#define CHECK_LE(got, bound)                                                                          \
    do {                                                                                              \
        double g_ = (got), b_ = (bound);                                                              \
        check(g_ <= b_, __FILE__, __LINE__, "%s: expected <= %g, got %.9g", #got, b_, g_);            \
    } while (0)
/* a library call that must fail with a non-zero code and a message naming the problem */
#define CHECK_FAILS(rc, err, word)                                                                    \
    check((rc) != 0 && strstr((err).msg, (word)) != NULL, __FILE__, __LINE__,                        \
          "%s: expected an error mentioning \"%s\", got rc %d \"%s\"", #rc, (word), (rc), (err).msg)

#endif /* TS_CHECK_H */
