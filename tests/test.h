/*
 * test.h — nib's test harness (after libuv's runner).
 *
 * A test is `TEST_IMPL(name) { ...; return 0; }` in tests/test-<area>.c.
 * CMake collects every TEST_IMPL and ctest runs each as `nib-tests name`
 * in its own process. A test returns 0 to pass, TEST_SKIP_CODE (via
 * TEST_SKIP) to skip; a failed ASSERT prints both sides and aborts.
 */
#ifndef NIB_TEST_H
#define NIB_TEST_H

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TEST_SKIP_CODE 77

#define TEST_IMPL(name) int run_test_##name(void)

#define TEST_SKIP(...)                                                         \
    do {                                                                       \
        fprintf(stderr, "SKIP: ");                                             \
        fprintf(stderr, __VA_ARGS__);                                          \
        fprintf(stderr, "\n");                                                 \
        return TEST_SKIP_CODE;                                                 \
    } while (0)

#define TEST_FAIL_AT(...)                                                      \
    do {                                                                       \
        fprintf(stderr, "%s:%d: ", __FILE__, __LINE__);                        \
        fprintf(stderr, __VA_ARGS__);                                          \
        fprintf(stderr, "\n");                                                 \
        fflush(stderr);                                                        \
        abort();                                                               \
    } while (0)

#define ASSERT(expr)                                                           \
    do {                                                                       \
        if (!(expr))                                                           \
            TEST_FAIL_AT("assertion failed: %s", #expr);                       \
    } while (0)

#define ASSERT_MSG(expr, ...)                                                  \
    do {                                                                       \
        if (!(expr)) {                                                         \
            fprintf(stderr, "%s:%d: assertion failed: %s: ", __FILE__,         \
                    __LINE__, #expr);                                          \
            fprintf(stderr, __VA_ARGS__);                                      \
            fprintf(stderr, "\n");                                             \
            fflush(stderr);                                                    \
            abort();                                                           \
        }                                                                      \
    } while (0)

#define ASSERT_INT_OP(a, op, b)                                                \
    do {                                                                       \
        int64_t a_ = (int64_t)(a), b_ = (int64_t)(b);                          \
        if (!(a_ op b_))                                                       \
            TEST_FAIL_AT("%s %s %s (%" PRId64 " vs %" PRId64 ")", #a, #op, #b, \
                         a_, b_);                                              \
    } while (0)

#define ASSERT_EQ(a, b) ASSERT_INT_OP(a, ==, b)
#define ASSERT_NE(a, b) ASSERT_INT_OP(a, !=, b)
#define ASSERT_LT(a, b) ASSERT_INT_OP(a, <, b)
#define ASSERT_LE(a, b) ASSERT_INT_OP(a, <=, b)
#define ASSERT_GT(a, b) ASSERT_INT_OP(a, >, b)
#define ASSERT_GE(a, b) ASSERT_INT_OP(a, >=, b)

/* 0 expected; prints nib_strerror of anything else. */
#define ASSERT_OK(expr)                                                        \
    do {                                                                       \
        int r_ = (expr);                                                       \
        if (r_ != 0)                                                           \
            TEST_FAIL_AT("%s returned %d (%s)", #expr, r_, nib_strerror(r_));  \
    } while (0)

#define ASSERT_STR_EQ(a, b)                                                    \
    do {                                                                       \
        const char *a_ = (a), *b_ = (b);                                       \
        if (!a_ || !b_ || strcmp(a_, b_) != 0)                                 \
            TEST_FAIL_AT("%s == %s (\"%s\" vs \"%s\")", #a, #b,                \
                         a_ ? a_ : "(null)", b_ ? b_ : "(null)");              \
    } while (0)

#define ASSERT_MEM_EQ(a, b, n)                                                 \
    do {                                                                       \
        if (memcmp((a), (b), (n)) != 0)                                        \
            TEST_FAIL_AT("memory differs: %s vs %s (%zu bytes)", #a, #b,       \
                         (size_t)(n));                                         \
    } while (0)

#define ASSERT_NEAR(a, b, tol)                                                 \
    do {                                                                       \
        double a_ = (a), b_ = (b);                                             \
        if (!(a_ - b_ <= (tol) && b_ - a_ <= (tol)))                           \
            TEST_FAIL_AT("%s ~= %s (%.9g vs %.9g, tol %g)", #a, #b, a_, b_,    \
                         (double)(tol));                                       \
    } while (0)

/* Path of a file in ../shared (or $NIB_SHARED), in a static buffer, or NULL
 * when absent. Use: `const char *p = test_shared("models/x.gguf");
 * if (!p) TEST_SKIP("../shared/models/x.gguf absent");` */
const char *test_shared(const char *rel);
/* Directory of the shared data, or NULL. */
const char *test_shared_dir(void);
/* Path of the built nib binary. */
const char *test_nib_binary(void);
/* A fresh temporary directory for this test (removed by nobody: /tmp). */
const char *test_tmpdir(void);

/* Run a shell command, capture stdout (new buffer, caller frees) and return
 * the exit status (or -1). */
int test_run_capture(const char *cmd, char **out, size_t *out_len);

#endif
