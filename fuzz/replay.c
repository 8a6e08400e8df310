/* Replays inputs through one fuzz target without libFuzzer: each argument is a file or a
 * folder of files. Any C compiler builds it; `make test` runs every target on its seed
 * corpus (fuzz/corpus/<target>/) and on every input that once crashed it
 * (fuzz/regressions/<target>/). A failure aborts, so the test fails. */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int replay_file(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return fprintf(stderr, "replay: cannot open %s\n", path), 1;
    size_t cap = 1 << 16, n = 0, got;
    uint8_t *buf = (uint8_t *)malloc(cap);
    while (buf && (got = fread(buf + n, 1, cap - n, f)) > 0) {
        n += got;
        if (n == cap) {
            uint8_t *bigger = (uint8_t *)realloc(buf, cap *= 2);
            if (!bigger) free(buf);
            buf = bigger;
        }
    }
    fclose(f);
    if (!buf) return fprintf(stderr, "replay: out of memory reading %s\n", path), 1;
    /* an exact-size copy, so AddressSanitizer builds see a read past the input's end */
    uint8_t *exact = (uint8_t *)malloc(n ? n : 1);
    if (!exact) return free(buf), 1;
    memcpy(exact, buf, n);
    free(buf);
    LLVMFuzzerTestOneInput(exact, n);
    free(exact);
    return 0;
}

int main(int argc, char **argv) {
    int files = 0, failed = 0;
    for (int i = 1; i < argc; i++) {
        struct stat st;
        if (stat(argv[i], &st) != 0) continue; /* a target may have no regressions yet */
        if (!S_ISDIR(st.st_mode)) {
            failed |= replay_file(argv[i]), files++;
            continue;
        }
        DIR *d = opendir(argv[i]);
        struct dirent *e;
        while (d && (e = readdir(d)) != NULL) {
            char path[4096];
            if (e->d_name[0] == '.') continue;
            snprintf(path, sizeof path, "%s/%s", argv[i], e->d_name);
            if (stat(path, &st) == 0 && S_ISREG(st.st_mode)) failed |= replay_file(path), files++;
        }
        if (d) closedir(d);
    }
    printf("replay: %d inputs%s\n", files, failed ? ", some unreadable" : ", no failure");
    return failed;
}
