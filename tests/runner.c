/*
 * runner.c — runs one test by name (`nib-tests name`, as ctest does), or
 * every test, each in a child process (`nib-tests`), or lists them
 * (`nib-tests --list`).
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "test.h"

#define TEST_ENTRY(name) int run_test_##name(void);
#include "test-list.h"
#undef TEST_ENTRY

typedef struct {
    const char *name;
    int (*fn)(void);
} test_entry;

static const test_entry tests[] = {
#define TEST_ENTRY(name) {#name, run_test_##name},
#include "test-list.h"
#undef TEST_ENTRY
    {NULL, NULL}};

static char shared_dir[PATH_MAX];
static int shared_checked;

const char *test_shared_dir(void) {
    if (!shared_checked) {
        shared_checked = 1;
        const char *env = getenv("NIB_SHARED");
        char cand[PATH_MAX];
        if (env && *env)
            snprintf(cand, sizeof cand, "%s", env);
        else
            snprintf(cand, sizeof cand, "%s/../shared", NIB_SOURCE_DIR);
        struct stat st;
        if (stat(cand, &st) == 0 && S_ISDIR(st.st_mode))
            if (!realpath(cand, shared_dir))
                shared_dir[0] = 0;
    }
    return shared_dir[0] ? shared_dir : NULL;
}

const char *test_shared(const char *rel) {
    static char buf[8][PATH_MAX];
    static int slot;
    const char *dir = test_shared_dir();
    if (!dir)
        return NULL;
    char *p = buf[slot++ % 8];
    snprintf(p, PATH_MAX, "%s/%s", dir, rel);
    if (access(p, R_OK) != 0)
        return NULL;
    return p;
}

const char *test_nib_binary(void) {
    const char *env = getenv("NIB_BINARY");
    return env && *env ? env : NIB_BINARY;
}

const char *test_tmpdir(void) {
    static char dir[64];
    if (!dir[0]) {
        snprintf(dir, sizeof dir, "/tmp/nib-test-XXXXXX");
        if (!mkdtemp(dir)) {
            perror("mkdtemp");
            abort();
        }
    }
    return dir;
}

int test_run_capture(const char *cmd, char **out, size_t *out_len) {
    FILE *p = popen(cmd, "r");
    if (!p)
        return -1;
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    size_t got;
    while ((got = fread(buf + n, 1, cap - n - 1, p)) > 0) {
        n += got;
        if (cap - n < 2) {
            cap *= 2;
            buf = realloc(buf, cap);
        }
    }
    buf[n] = 0;
    int st = pclose(p);
    if (out)
        *out = buf;
    else
        free(buf);
    if (out_len)
        *out_len = n;
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static int run_one(const test_entry *t) {
    int r = t->fn();
    fflush(stdout);
    fflush(stderr);
    return r;
}

int main(int argc, char **argv) {
    if (argc > 1 && strcmp(argv[1], "--list") == 0) {
        for (const test_entry *t = tests; t->name; t++)
            printf("%s\n", t->name);
        return 0;
    }
    if (argc > 1) {
        for (const test_entry *t = tests; t->name; t++)
            if (strcmp(t->name, argv[1]) == 0)
                return run_one(t);
        fprintf(stderr, "no test named %s\n", argv[1]);
        return 2;
    }
    int passed = 0, failed = 0, skipped = 0;
    for (const test_entry *t = tests; t->name; t++) {
        /* a child would print the parent's unflushed lines again when
         * stdout is a file or a pipe */
        fflush(stdout);
        pid_t pid = fork();
        if (pid == 0)
            _exit(run_one(t));
        int st;
        waitpid(pid, &st, 0);
        int code = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
        const char *what = code == 0 ? "ok" : code == TEST_SKIP_CODE ? "skip" : "FAIL";
        printf("%-4s %s\n", what, t->name);
        if (code == 0)
            passed++;
        else if (code == TEST_SKIP_CODE)
            skipped++;
        else
            failed++;
    }
    printf("%d passed, %d failed, %d skipped\n", passed, failed, skipped);
    return failed ? 1 : 0;
}
