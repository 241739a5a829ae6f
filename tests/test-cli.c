/*
 * test-cli.c — the nib command line as users and the checks run it:
 * tokenize, eval (the golden JSON format), generate, info, and the errors a
 * user gets for models nib cannot run.
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/nib.h"
#include "test.h"

static int run(char **out, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static int run(char **out, const char *fmt, ...) {
    char cmd[8192];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    return test_run_capture(cmd, out, NULL);
}

TEST_IMPL(cli_eval_matches_golden) {
    const char *model = test_shared("models/stories260K.gguf");
    const char *prompt = test_shared("prompts/story1.txt");
    const char *golden = test_shared("golden/stories260K__story1.json");
    if (!model || !prompt || !golden)
        TEST_SKIP("../shared absent");
    char *out;
    ASSERT_EQ(run(&out, "%s eval -m %s -f %s --top 5 -n 32", test_nib_binary(),
                  model, prompt),
              0);
    json_error_t e;
    json_t *got = json_loads(out, 0, &e);
    ASSERT_MSG(got != NULL, "not JSON: %s", e.text);
    json_t *want = json_load_file(golden, 0, &e);
    ASSERT(json_equal(json_object_get(got, "prompt_tokens"),
                      json_object_get(want, "prompt_tokens")));
    ASSERT(json_equal(json_object_get(got, "greedy"),
                      json_object_get(want, "greedy")));
    json_t *top = json_object_get(got, "top_logits");
    ASSERT_EQ(json_array_size(top),
              json_array_size(json_object_get(want, "prompt_tokens")));
    ASSERT_EQ(json_array_size(json_array_get(top, 0)), 5);
    json_decref(got);
    json_decref(want);
    free(out);
    return 0;
}

TEST_IMPL(cli_tokenize) {
    const char *vocab = test_shared("vocab/ggml-vocab-qwen2.gguf");
    if (!vocab)
        TEST_SKIP("../shared absent");
    char path[256];
    snprintf(path, sizeof path, "%s/in.txt", test_tmpdir());
    FILE *f = fopen(path, "w");
    fputs("<|fim_prefix|>def add(a, b):", f);
    fclose(f);
    char *out;
    ASSERT_EQ(run(&out, "%s tokenize -m %s -f %s --no-bos", test_nib_binary(),
                  vocab, path),
              0);
    /* <|fim_prefix|> is parsed as the special token (151659 in Qwen2.5) */
    ASSERT_MSG(strncmp(out, "[151659,", 8) == 0, "got %s", out);
    free(out);
    return 0;
}

TEST_IMPL(cli_generate_and_info) {
    const char *model = test_shared("models/stories260K.gguf");
    if (!model)
        TEST_SKIP("../shared absent");
    char *out;
    ASSERT_EQ(run(&out, "%s generate -m %s -p 'Once upon a time' -n 16 "
                        "2>/dev/null",
                  test_nib_binary(), model),
              0);
    ASSERT_MSG(strncmp(out, "Once upon a time", 16) == 0 && strlen(out) > 30,
               "got %s", out);
    free(out);
    /* sampling with a seed is reproducible */
    char *a, *b;
    const char *fmt = "%s generate -m %s -p 'Lily' -n 24 --temp 0.9 --top-k 20 "
                      "--seed 7 2>/dev/null";
    ASSERT_EQ(run(&a, fmt, test_nib_binary(), model), 0);
    ASSERT_EQ(run(&b, fmt, test_nib_binary(), model), 0);
    ASSERT_STR_EQ(a, b);
    free(a);
    free(b);

    ASSERT_EQ(run(&out, "%s info -m %s", test_nib_binary(), model), 0);
    ASSERT(strstr(out, "architecture:    llama"));
    ASSERT(strstr(out, "layers:          5"));
    ASSERT(strstr(out, "heads:           8 (kv 4"));
    free(out);
    return 0;
}

/* Copy a shared model with `find` replaced by `repl` (same length) at its
 * first occurrence after `after`; returns the copy's path. */
static const char *patched(const char *rel, const char *after,
                           const void *find, const void *repl, size_t n,
                           size_t skip) {
    const char *src = test_shared(rel);
    if (!src)
        return NULL;
    char *data;
    size_t len;
    ASSERT_OK(nib_read_file(src, &data, &len));
    char *at = memmem(data, len, after, strlen(after));
    ASSERT(at != NULL);
    at += strlen(after) + skip;
    char *hit = memmem(at, len - (size_t)(at - data), find, n);
    ASSERT(hit != NULL);
    memcpy(hit, repl, n);
    static char path[256];
    snprintf(path, sizeof path, "%s/patched-%zu.gguf", test_tmpdir(), skip);
    FILE *f = fopen(path, "wb");
    fwrite(data, 1, len, f);
    fclose(f);
    nib_free(data);
    return path;
}

TEST_IMPL(cli_unsupported_models) {
    char *out;
    /* an architecture nib does not run */
    const char *p = patched("models/stories260K.gguf", "general.architecture",
                            "llama", "mamba", 5, 0);
    if (!p)
        TEST_SKIP("../shared absent");
    ASSERT_EQ(run(&out, "%s info -m %s 2>&1", test_nib_binary(), p), 1);
    ASSERT_MSG(strstr(out, "architecture \"mamba\" is not supported"), "%s",
               out);
    free(out);

    /* a tensor type nib does not run: a Q4_0 tensor relabelled IQ4_NL,
     * which has the same block size, so the file stays well-formed */
    uint32_t q4_0 = 2, iq4_nl = 20;
    p = patched("models/rq-star-q4_0.gguf", "blk.0.ffn_up.weight", &q4_0,
                &iq4_nl, 4, 4 + 2 * 8);
    ASSERT_EQ(run(&out, "%s generate -m %s -p x 2>&1", test_nib_binary(), p),
              1);
    ASSERT_MSG(strstr(out, "blk.0.ffn_up.weight has type IQ4_NL, which nib "
                           "does not support"),
               "%s", out);
    free(out);

    /* missing file, truncated file */
    ASSERT_EQ(run(&out, "%s info -m /nonexistent.gguf 2>&1", test_nib_binary()),
              1);
    ASSERT(strstr(out, "cannot load /nonexistent.gguf"));
    free(out);
    ASSERT_EQ(run(&out, "head -c 5000 %s > %s/trunc.gguf; %s info -m "
                        "%s/trunc.gguf 2>&1",
                  test_shared("models/rq-star-q8_0.gguf"), test_tmpdir(),
                  test_nib_binary(), test_tmpdir()),
              1);
    ASSERT_MSG(strstr(out, "cannot load") && strstr(out, "cannot fit"), "%s",
               out);
    free(out);

    /* usage errors */
    ASSERT_EQ(run(&out, "%s eval -m x 2>&1", test_nib_binary()), 2);
    ASSERT(strstr(out, "-f PROMPT_FILE is required"));
    free(out);
    ASSERT_EQ(run(&out, "%s generate -n abc 2>&1", test_nib_binary()), 2);
    ASSERT(strstr(out, "invalid value 'abc' for -n"));
    free(out);
    return 0;
}
