/*
 * test-bench.c — `nib bench` smoke tests: the JSON it prints has every
 * field with a plausible value, and bad arguments give clear errors. The
 * figures themselves are never asserted against targets (bench/README.md
 * reports them); only that they are measurements at all.
 */
#include <jansson.h>
#include <math.h>

#include "common/nib.h"
#include "test.h"

/* Run nib bench with `args` on the shared rq-star Q8_0 model and parse its
 * stdout; NULL when the model is absent. */
static json_t *run_bench(const char *model, const char *args) {
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "'%s' bench -m '%s' %s", test_nib_binary(), model,
             args);
    char *out;
    int rc = test_run_capture(cmd, &out, NULL);
    ASSERT_MSG(rc == 0, "%s exited with %d", cmd, rc);
    json_error_t e;
    json_t *j = json_loads(out, 0, &e);
    ASSERT_MSG(j && json_is_object(j), "not a JSON object (%s): %s", e.text,
               out);
    free(out);
    return j;
}

static double num(const json_t *j, const char *key) {
    json_t *v = json_object_get(j, key);
    ASSERT_MSG(v && json_is_number(v), "field %s missing or not a number", key);
    return json_number_value(v);
}

static void check_positive(const json_t *j, const char *const *keys) {
    for (; *keys; keys++) {
        double v = num(j, *keys);
        ASSERT_MSG(v > 0 && v < 1e12, "%s = %g", *keys, v);
    }
}

TEST_IMPL(bench_json_fields) {
    const char *model = test_shared("models/rq-star-q8_0.gguf");
    if (!model)
        TEST_SKIP("../shared/models/rq-star-q8_0.gguf absent");
    json_t *j = run_bench(model, "-t 1 -p 16 -n 4 -r 1 --bw-mb 64");
    static const char *const pos[] = {"threads",
                                      "n_prompt",
                                      "n_gen",
                                      "n_params",
                                      "weights_mb",
                                      "kv_mb",
                                      "load_ms",
                                      "pp_tps",
                                      "tg_tps",
                                      "bandwidth_gbs",
                                      "tg_efficiency",
                                      "verify1_ms",
                                      "verify8_ms",
                                      "verify8_ratio",
                                      "verify8_ratio_best",
                                      "peak_rss_mb",
                                      "bytes_per_token_mb",
                                      "bandwidth_low_gbs",
                                      "bandwidth_samples",
                                      "tg_efficiency_best",
                                      "batch1_ms",
                                      "batch8_ms",
                                      "batch8_ratio",
                                      "tg_efficiency_interleaved",
                                      "tg_interleaved_tps",
                                      "bandwidth_interleaved_gbs",
                                      NULL};
    check_positive(j, pos);
    ASSERT_EQ(num(j, "threads"), 1);
    /* the interleaved ratio is the interleaved decode rate over the
     * interleaved bandwidth, in bytes (the JSON rounds each figure) */
    const double want = num(j, "bytes_per_token_mb") * 1048576.0 *
                        num(j, "tg_interleaved_tps") /
                        (num(j, "bandwidth_interleaved_gbs") * 1e9);
    ASSERT_MSG(fabs(num(j, "tg_efficiency_interleaved") - want) <=
                   0.002 + 0.01 * want,
               "tg_efficiency_interleaved %g, from its parts %g",
               num(j, "tg_efficiency_interleaved"), want);
    /* verify8_ratio is the median of paired ratios, verify8_ratio_best
     * the ratio of the two best times. All three are printed to 0.001, and
     * this model's token takes a fraction of a millisecond, so the ratio
     * of the printed times may be off by more than 0.1%: it must lie
     * within what the times' rounding allows (a fixed tolerance failed
     * one run in a dozen: 2.841 against 2.84615 from 0.xxx ms parts). */
    const double v1 = num(j, "verify1_ms"), v8 = num(j, "verify8_ms");
    const double lo = (v8 - 0.0005) / (v1 + 0.0005) - 0.0005,
                 hi = (v8 + 0.0005) / (v1 - 0.0005) + 0.0005;
    ASSERT(v1 > 0.0005);
    ASSERT_MSG(num(j, "verify8_ratio_best") >= lo &&
                   num(j, "verify8_ratio_best") <= hi,
               "verify8_ratio_best %g, from its parts %g (%g to %g)",
               num(j, "verify8_ratio_best"), v8 / v1, lo, hi);
    /* Three rounds of pairs spread over the run, verify8_ratio the median
     * of all: with rounds of one size, a median of their union lies
     * between the smallest and the largest round's median (each printed
     * to 0.001). */
    const json_t *rounds = json_object_get(j, "verify8_ratio_rounds");
    ASSERT_MSG(json_is_array(rounds) && json_array_size(rounds) == 3,
               "verify8_ratio_rounds: not an array of 3");
    double rmin = 1e300, rmax = 0;
    for (size_t i = 0; i < 3; i++) {
        const json_t *v = json_array_get(rounds, i);
        ASSERT(json_is_number(v) && json_number_value(v) > 0);
        rmin = fmin(rmin, json_number_value(v));
        rmax = fmax(rmax, json_number_value(v));
    }
    ASSERT_MSG(num(j, "verify8_ratio") >= rmin - 0.001 &&
                   num(j, "verify8_ratio") <= rmax + 0.001,
               "verify8_ratio %g outside its rounds' medians %g to %g",
               num(j, "verify8_ratio"), rmin, rmax);
    ASSERT_EQ(num(j, "n_prompt"), 16);
    ASSERT_EQ(num(j, "n_gen"), 4);
    ASSERT_STR_EQ(json_string_value(json_object_get(j, "ftype")), "Q8_0");
    ASSERT(json_string_value(json_object_get(j, "simd")));
    ASSERT(json_string_value(json_object_get(j, "main_type")));
    ASSERT_LE(num(j, "bandwidth_low_gbs"), num(j, "bandwidth_gbs"));
    /* Before and after the one decode run, and at the end. */
    ASSERT_EQ(num(j, "bandwidth_samples"), 3);
    ASSERT(json_string_value(json_object_get(j, "model")));
    /* rq-star ties its embeddings: every weight byte is read per token. */
    ASSERT_NEAR(num(j, "bytes_per_token_mb"), num(j, "weights_mb"), 0.01);
    /* The decoder cannot read weights faster than memory, give or take
     * caches: this model fits in L3, so allow a wide margin. */
    ASSERT(num(j, "tg_efficiency") < 100);
    /* The process holds the mapped weights at least. */
    ASSERT(num(j, "peak_rss_mb") >= num(j, "weights_mb") * 0.5);
    ASSERT(json_object_get(j, "reuse_fraction") == NULL);
    json_decref(j);
    return 0;
}

TEST_IMPL(bench_reuse_fields) {
    const char *model = test_shared("models/rq-star-q8_0.gguf");
    if (!model)
        TEST_SKIP("../shared/models/rq-star-q8_0.gguf absent");
    json_t *j = run_bench(model, "-t 1 -p 16 -n 4 -r 1 --bw-mb 64 --reuse "
                                 "--reuse-tokens 300 --min-chunk 16");
    static const char *const pos[] = {"reuse_tokens",
                                      "reuse_full_ms",
                                      "reuse_edit_ms",
                                      "reuse_fraction",
                                      "reuse_reused",
                                      "reuse_evaluated",
                                      NULL};
    check_positive(j, pos);
    /* The prompt is re-tokenized from the cut text, which may merge a
     * token or two at the cut. */
    ASSERT_NEAR(num(j, "reuse_tokens"), 300, 2);
    ASSERT_EQ(num(j, "reuse_min_chunk"), 16);
    /* Every token of the edited prompt is either kept or evaluated. */
    ASSERT_EQ(num(j, "reuse_reused") + num(j, "reuse_evaluated"),
              num(j, "reuse_tokens_edited"));
    ASSERT_GE(num(j, "reuse_shifted"), 0);
    ASSERT_LE(num(j, "reuse_shifted"), num(j, "reuse_reused"));
    /* A one-line edit halfway keeps at least the prefix before it. */
    ASSERT_GE(num(j, "reuse_reused"), num(j, "reuse_tokens") / 3);
    json_decref(j);
    return 0;
}

/* With a separate output matrix, a decoded token reads one row of the
 * token embedding, not all of it: rl-dsc's embedding is 32,256 x 256 Q4_K
 * (4.43 MiB of its 11.79). */
TEST_IMPL(bench_untied_bytes_per_token) {
    const char *model = test_shared("models/rl-dsc-q4_k_m.gguf");
    if (!model)
        TEST_SKIP("../shared/models/rl-dsc-q4_k_m.gguf absent");
    json_t *j = run_bench(model, "-q -t 1 -p 8 -n 2 -r 1 --bw-mb 64");
    double w = num(j, "weights_mb"), b = num(j, "bytes_per_token_mb");
    ASSERT_NEAR(w - b, 32255.0 * 256 / 256 * 144 / (1024 * 1024), 0.02);
    json_decref(j);
    return 0;
}

TEST_IMPL(bench_bad_arguments) {
    char cmd[1024];
    /* Missing -m, an unknown option and a bad number are usage errors. */
    snprintf(cmd, sizeof cmd, "'%s' bench 2>/dev/null", test_nib_binary());
    ASSERT_EQ(test_run_capture(cmd, NULL, NULL), 2);
    snprintf(cmd, sizeof cmd, "'%s' bench -m x --frobnicate 2>/dev/null",
             test_nib_binary());
    ASSERT_EQ(test_run_capture(cmd, NULL, NULL), 2);
    snprintf(cmd, sizeof cmd, "'%s' bench -m x -p 0 2>/dev/null",
             test_nib_binary());
    ASSERT_EQ(test_run_capture(cmd, NULL, NULL), 2);
    /* A missing model names the file on stderr and exits with 1. */
    char *out;
    snprintf(cmd, sizeof cmd, "'%s' bench -m /nonexistent/model.gguf 2>&1",
             test_nib_binary());
    ASSERT_EQ(test_run_capture(cmd, &out, NULL), 1);
    ASSERT_MSG(strstr(out, "/nonexistent/model.gguf") != NULL, "%s", out);
    free(out);
    return 0;
}

/* `nib bench --gemm`: both matmul paths on the same random product agree
 * to within the integer path's activation rounding, for every weight type
 * and for batch sizes on both sides of the sgemm thresholds; "used" names
 * the path eng_matmul picks, which must be the integer one up to 16
 * columns (the speculative verify sizes stay bit-identical to decode). */
TEST_IMPL(bench_gemm_paths) {
    char cmd[1024];
    /* 4096 x 512: just over the size where dequantizing F16 pays */
    snprintf(cmd, sizeof cmd,
             "'%s' bench --gemm -q -t 2 -r 1 --gemm-rows 4096 --gemm-cols 512 "
             "--gemm-batches 1,16,40,130",
             test_nib_binary());
    char *out;
    ASSERT_EQ(test_run_capture(cmd, &out, NULL), 0);
    json_error_t e;
    json_t *j = json_loads(out, 0, &e);
    ASSERT_MSG(j && json_is_object(j), "not a JSON object (%s): %s", e.text,
               out);
    free(out);
    json_t *res = json_object_get(j, "results");
    ASSERT(json_is_array(res));
    ASSERT_EQ(json_array_size(res), 9 * 4); /* 9 default types x 4 batches */
    size_t i;
    json_t *r;
    int sgemm_used = 0;
    json_array_foreach(res, i, r) {
        const char *type = json_string_value(json_object_get(r, "type"));
        const char *used = json_string_value(json_object_get(r, "used"));
        const int batch = (int)num(r, "batch");
        ASSERT(type && used);
        static const char *const pos[] = {"int_ms", "sgemm_ms", "int_gmacs",
                                          "sgemm_gmacs", NULL};
        check_positive(r, pos);
        /* Q8 activations: a few 1e-4 of the largest output; fp16 or F32:
         * far less */
        const double diff = num(r, "max_rel_diff");
        ASSERT_MSG(diff >= 0 && diff < 5e-3, "%s batch %d: %g", type, batch,
                   diff);
        if (batch <= 16)
            ASSERT_MSG(strcmp(used, "int") == 0, "%s batch %d uses %s", type,
                       batch, used);
        if (strcmp(used, "sgemm") == 0) {
            ASSERT_MSG(!strcmp(type, "F32") || !strcmp(type, "F16"),
                       "%s batch %d uses sgemm", type, batch);
            sgemm_used++;
        }
    }
    /* F32 at 40 and 130 columns, F16 at 130 */
    ASSERT_EQ(sgemm_used, 3);
    json_decref(j);

    /* a small F16 matrix stays on the integer path however long the batch
     * (nib's own F16 draft model is of that size) */
    snprintf(cmd, sizeof cmd,
             "'%s' bench --gemm -q -t 2 -r 1 --gemm-types F16 --gemm-rows 768 "
             "--gemm-cols 256 --gemm-batches 512",
             test_nib_binary());
    ASSERT_EQ(test_run_capture(cmd, &out, NULL), 0);
    ASSERT_MSG(strstr(out, "\"used\":\"int\"") != NULL, "%s", out);
    free(out);

    /* a weight type nib does not run is a usage error naming it */
    snprintf(cmd, sizeof cmd,
             "'%s' bench --gemm -q --gemm-types IQ2_XS 2>&1 >/dev/null",
             test_nib_binary());
    ASSERT_EQ(test_run_capture(cmd, &out, NULL), 2);
    ASSERT_MSG(strstr(out, "IQ2_XS") != NULL, "%s", out);
    free(out);
    return 0;
}
