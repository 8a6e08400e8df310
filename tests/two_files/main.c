/* tests/two_files/main.c -- the file of the program that holds run.c's implementation
 * (RUN_NO_MAIN); story.c, compiled apart, sees only the declarations (RUN_HEADER_ONLY).
 * Usage: two_files MODEL TOKENIZER PROMPT STEPS -- prints what ./run -t 0 prints. */
#define RUN_NO_MAIN
#include "../../run.c"

int two_files_story(const char *model_path, const char *tokenizer_path, const char *prompt, int steps, ts_error *err);

int main(int argc, char **argv) {
    if (argc != 5) {
        fprintf(stderr, "usage: two_files MODEL TOKENIZER PROMPT STEPS\n");
        return 2;
    }
    ts_error err = {0, ""};
    if (two_files_story(argv[1], argv[2], argv[3], atoi(argv[4]), &err) != 0) {
        fprintf(stderr, "two_files: %s\n", err.msg);
        return 1;
    }
    return 0;
}
