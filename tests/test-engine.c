/*
 * test-engine.c — the inference context beyond plain evaluation: KV reuse
 * (prefix and moved chunks), sequences with an LRU limit, sampling, and
 * clear errors for models nib cannot run.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "engine/internal.h"
#include "test.h"

static eng_model *load(const char *rel) {
    const char *path = test_shared(rel);
    if (!path)
        return NULL;
    char err[256] = "";
    eng_model *m;
    int r = eng_model_load(path, &m, err, sizeof err);
    ASSERT_MSG(r == 0, "%s: %s", path, err);
    return m;
}

static void fill_tokens(int32_t *t, int n, int n_vocab, uint32_t seed) {
    for (int i = 0; i < n; i++) {
        seed = seed * 1664525u + 1013904223u;
        t[i] = (int32_t)((seed >> 8) % (uint32_t)n_vocab);
    }
}

static eng_ctx *new_ctx(eng_model *m, int n_ctx, int kv_limit_mb) {
    eng_ctx_params p = eng_ctx_default_params();
    p.n_ctx = n_ctx;
    p.n_batch = 64;
    p.kv_limit_mb = kv_limit_mb;
    eng_ctx *c;
    ASSERT_OK(eng_ctx_new(m, &p, &c));
    return c;
}

/* Reusing a cached prefix gives exactly the logits of a full evaluation:
 * every row of the forward pass is computed independently. */
TEST_IMPL(engine_reuse_prefix_exact) {
    eng_model *m = load("models/rq-star-q8_0.gguf");
    if (!m)
        TEST_SKIP("../shared/models/rq-star-q8_0.gguf absent");
    int nv = eng_vocab_n_tokens(eng_model_vocab(m));
    int32_t a[300], b[300];
    fill_tokens(a, 300, nv, 1);
    memcpy(b, a, sizeof a);
    fill_tokens(b + 250, 50, nv, 2); /* same first 250, new tail */

    eng_ctx *c = new_ctx(m, 512, 64);
    eng_reuse_stats st;
    ASSERT_OK(eng_eval_reuse(c, a, 300, 0, &st));
    ASSERT_EQ(st.n_reused, 0);
    ASSERT_EQ(st.n_evaluated, 300);
    ASSERT_OK(eng_eval_reuse(c, b, 300, 0, &st));
    ASSERT_EQ(st.n_reused, 250);
    ASSERT_EQ(st.n_evaluated, 50);
    ASSERT_EQ(eng_ctx_n_past(c), 300);
    ASSERT_MEM_EQ(eng_ctx_tokens(c), b, sizeof b);
    int n_vocab = eng_ctx_n_vocab(c);
    float *reused = malloc(sizeof(float) * (size_t)n_vocab);
    memcpy(reused, eng_ctx_logits(c, -1), sizeof(float) * (size_t)n_vocab);

    eng_ctx *fresh = new_ctx(m, 512, 64);
    ASSERT_OK(eng_eval(fresh, b, 300));
    ASSERT_MEM_EQ(reused, eng_ctx_logits(fresh, -1),
                  sizeof(float) * (size_t)n_vocab);

    /* The same prompt again: only the last token is recomputed. */
    ASSERT_OK(eng_eval_reuse(c, b, 300, 0, &st));
    ASSERT_EQ(st.n_reused, 299);
    ASSERT_EQ(st.n_evaluated, 1);
    ASSERT_MEM_EQ(reused, eng_ctx_logits(c, -1),
                  sizeof(float) * (size_t)n_vocab);
    /* A shorter prompt that is a prefix of the cache. */
    ASSERT_OK(eng_eval_reuse(c, b, 120, 0, &st));
    ASSERT_EQ(st.n_reused, 119);
    ASSERT_EQ(eng_ctx_n_past(c), 120);
    free(reused);
    eng_ctx_delete(fresh);
    eng_ctx_delete(c);
    eng_model_delete(m);
    return 0;
}

/* After a one-line edit in the middle, the part after the edit is moved,
 * not recomputed, and its layer-0 keys equal freshly computed ones up to
 * fp16 rounding: layer 0's keys depend only on the token and its position,
 * so this checks the re-rotation by the position change. */
static void check_shift(eng_model *m, int insert) {
    int nv = eng_vocab_n_tokens(eng_model_vocab(m));
    enum { N = 400, MID = 180, OLD_EDIT = 6 };
    int new_edit = OLD_EDIT + insert;
    int32_t old[N], neu[N + 64];
    fill_tokens(old, N, nv, 7);
    memcpy(neu, old, MID * sizeof(int32_t));
    fill_tokens(neu + MID, new_edit, nv, 99);
    memcpy(neu + MID + new_edit, old + MID + OLD_EDIT,
           (N - MID - OLD_EDIT) * sizeof(int32_t));
    int n_new = N + insert;

    eng_ctx *c = new_ctx(m, 1024, 64);
    eng_reuse_stats st;
    ASSERT_OK(eng_eval_reuse(c, old, N, 32, &st));
    ASSERT_OK(eng_eval_reuse(c, neu, n_new, 32, &st));
    fprintf(stderr, "insert %d: reused %d, shifted %d, evaluated %d\n", insert,
            st.n_reused, st.n_shifted, st.n_evaluated);
    ASSERT_EQ(st.n_reused + st.n_evaluated, n_new);
    ASSERT_EQ(eng_ctx_n_past(c), n_new);
    ASSERT_MEM_EQ(eng_ctx_tokens(c), neu, (size_t)n_new * sizeof(int32_t));
    ASSERT_LE(st.n_evaluated, new_edit + 2);
    if (insert != 0)
        ASSERT_EQ(st.n_shifted, N - MID - OLD_EDIT - 1);
    const float *lg = eng_ctx_logits(c, -1);
    for (int i = 0; i < eng_ctx_n_vocab(c); i++)
        ASSERT(isfinite(lg[i]));

    eng_ctx *fresh = new_ctx(m, 1024, 64);
    ASSERT_OK(eng_eval(fresh, neu, n_new));
    const eng_config *cfg = &m->cfg;
    int kv_dim = cfg->n_kv_heads * cfg->head_dim;
    /* Rotation mixes the two values of a pair, so an fp16 rounding of the
     * larger shows up in the smaller: measure against the row's scale. */
    double worst = 0;
    for (int pos = MID + new_edit; pos < n_new - 1; pos++) {
        const eng_fp16 *ra = c->key_cache + (size_t)pos * kv_dim;
        const eng_fp16 *rb = fresh->key_cache + (size_t)pos * kv_dim;
        double scale = 0;
        for (int d = 0; d < kv_dim; d++)
            scale = fmax(scale, fabs(eng_fp16_to_fp32(rb[d])));
        for (int d = 0; d < kv_dim; d++) {
            double e = fabs(eng_fp16_to_fp32(ra[d]) - eng_fp16_to_fp32(rb[d])) /
                       scale;
            if (e > worst)
                worst = e;
        }
    }
    fprintf(stderr, "layer-0 key error after the move: %.2e of the row's "
                    "largest value\n",
            worst);
    ASSERT_MSG(worst < 2e-3, "%.3g", worst); /* about two fp16 ulps */
    eng_ctx_delete(fresh);
    eng_ctx_delete(c);
}

TEST_IMPL(engine_reuse_shifted_chunk) {
    eng_model *m = load("models/rq-star-q8_0.gguf");
    if (!m)
        TEST_SKIP("../shared/models/rq-star-q8_0.gguf absent");
    check_shift(m, 5);   /* line got longer: the tail moves right */
    check_shift(m, -4);  /* shorter: it moves left */
    check_shift(m, 0);   /* same length: it stays */
    eng_model_delete(m);
    /* llama-style RoPE (adjacent pairs) too */
    m = load("models/rl-dsc-q4_k_m.gguf");
    if (m) {
        check_shift(m, 3);
        eng_model_delete(m);
    }
    return 0;
}

TEST_IMPL(engine_sequences_lru) {
    eng_model *m = load("models/stories260K.gguf");
    if (!m)
        TEST_SKIP("../shared/models/stories260K.gguf absent");
    eng_ctx *c = new_ctx(m, 256, 1);
    size_t one = eng_ctx_kv_bytes(c);
    ASSERT_EQ(eng_ctx_n_seqs(c), 1);
    /* with a 1 MiB limit, how many fit */
    int fit = (int)((1u << 20) / one);
    ASSERT_GE(fit, 2);

    int32_t t[3][40];
    for (int s = 0; s < 3; s++)
        fill_tokens(t[s], 40, 512, 10 + s);
    /* sequences 1 and 2 hold different streams, switching keeps both */
    ASSERT_OK(eng_ctx_use_seq(c, 1));
    ASSERT_OK(eng_eval(c, t[1], 40));
    ASSERT_OK(eng_ctx_use_seq(c, 2));
    ASSERT_EQ(eng_ctx_n_past(c), 0);
    ASSERT_OK(eng_eval(c, t[2], 30));
    ASSERT_OK(eng_ctx_use_seq(c, 1));
    ASSERT_EQ(eng_ctx_n_past(c), 40);
    ASSERT_MEM_EQ(eng_ctx_tokens(c), t[1], sizeof t[1]);
    eng_reuse_stats st;
    ASSERT_OK(eng_eval_reuse(c, t[1], 40, 0, &st));
    ASSERT_EQ(st.n_reused, 39);

    /* Filling past the limit drops the least recently used (sequence 0 and
     * then 2), never the current one. */
    for (uint64_t k = 100; k < 100 + (uint64_t)fit + 2; k++)
        ASSERT_OK(eng_ctx_use_seq(c, k));
    ASSERT_LE(eng_ctx_kv_bytes(c), (size_t)1 << 20);
    ASSERT_OK(eng_ctx_use_seq(c, 2));
    ASSERT_EQ(eng_ctx_n_past(c), 0); /* it was dropped, now new */
    eng_ctx_delete(c);
    eng_model_delete(m);
    return 0;
}

TEST_IMPL(engine_sampler) {
    enum { NV = 1000 };
    float logits[NV];
    for (int i = 0; i < NV; i++)
        logits[i] = (float)(i % 97) * 0.01f;
    logits[123] = 5.0f;
    logits[456] = 4.9f;
    eng_sampler_params p = eng_sampler_default_params();
    eng_sampler *s;
    p.temperature = 0;
    ASSERT_OK(eng_sampler_new(&p, NV, &s));
    ASSERT_EQ(eng_sample(s, logits, NULL, 0), 123);
    /* the repetition penalty pushes a repeated winner down */
    eng_sampler_delete(s);
    p.repeat_penalty = 1.5f;
    ASSERT_OK(eng_sampler_new(&p, NV, &s));
    int32_t hist[] = {123};
    ASSERT_EQ(eng_sample(s, logits, hist, 1), 456);
    eng_sampler_delete(s);

    /* top-k 2: only the two best are ever drawn, both of them sometimes;
     * the same seed gives the same draws. */
    p = eng_sampler_default_params();
    p.temperature = 1.0f;
    p.top_k = 2;
    p.top_p = 1.0f;
    p.min_p = 0.0f;
    p.seed = 42;
    int counts[NV] = {0};
    int32_t first[50];
    ASSERT_OK(eng_sampler_new(&p, NV, &s));
    for (int i = 0; i < 4000; i++) {
        int32_t t = eng_sample(s, logits, NULL, 0);
        ASSERT(t == 123 || t == 456);
        counts[t]++;
        if (i < 50)
            first[i] = t;
    }
    ASSERT_GT(counts[123], counts[456]);
    ASSERT_GT(counts[456], 0);
    eng_sampler_delete(s);
    ASSERT_OK(eng_sampler_new(&p, NV, &s));
    for (int i = 0; i < 50; i++)
        ASSERT_EQ(eng_sample(s, logits, NULL, 0), first[i]);
    eng_sampler_delete(s);

    /* min-p 0.5 with a flat tail: only tokens within half the best */
    p.top_k = 0;
    p.min_p = 0.5f;
    ASSERT_OK(eng_sampler_new(&p, NV, &s));
    for (int i = 0; i < 100; i++) {
        int32_t t = eng_sample(s, logits, NULL, 0);
        ASSERT(t == 123 || t == 456);
    }
    eng_sampler_delete(s);
    return 0;
}

TEST_IMPL(engine_errors) {
    char err[256] = "";
    eng_model *m;
    ASSERT_EQ(eng_model_load("/nonexistent/x.gguf", &m, err, sizeof err),
              NIB_ENOENT);
    /* a vocab-only file is not a runnable model, and says why */
    const char *v = test_shared("vocab/ggml-vocab-qwen2.gguf");
    if (!v)
        TEST_SKIP("../shared absent");
    int r = eng_model_load(v, &m, err, sizeof err);
    ASSERT_LT(r, 0);
    fprintf(stderr, "vocab-only: %s\n", err);
    ASSERT(strstr(err, "architecture") || strstr(err, "tensor") ||
           strstr(err, "metadata"));

    /* eval rejects ids out of range and overflowing the context */
    m = load("models/stories260K.gguf");
    eng_ctx *c = new_ctx(m, 32, 16);
    int32_t bad[] = {1, 600};
    ASSERT_EQ(eng_eval(c, bad, 2), NIB_EINVAL);
    int32_t many[40] = {0};
    ASSERT_EQ(eng_eval(c, many, 40), NIB_ECTXFULL);
    ASSERT_EQ(eng_eval_reuse(c, many, 40, 0, NULL), NIB_ECTXFULL);
    ASSERT_EQ(eng_ctx_n_past(c), 0);
    eng_ctx_delete(c);
    eng_model_delete(m);
    return 0;
}
