/*
 * test-tools.c — `nib quantize` and `nib mkmodel`, run as the user runs
 * them (the built binary): byte-identity with llama.cpp's quantizer on the
 * shared files, every output type of a small random model loading and
 * evaluating, the mix and fallbacks, mkmodel's determinism and vocabulary
 * padding, its one-pass K-quant encoder against the reference, and the
 * errors for bad arguments (with no partial output left behind).
 */
#include <math.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/nib.h"
#include "engine/engine.h"
#include "engine/gguf.h"
#include "engine/quant.h"
#include "test.h"

/* ---- helpers ------------------------------------------------------------- */

/* Paths stay valid for the next 63 calls: enough for any one test. */
static const char *tmp(const char *name) {
    static char buf[64][512];
    static int slot;
    char *p = buf[slot++ % 64];
    snprintf(p, 512, "%s/%s", test_tmpdir(), name);
    return p;
}

/* Run `nib ARGS` with stderr captured too; returns the exit code and the
 * output in *out (caller frees with free; may be NULL). */
static int nib_run(char **out, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static int nib_run(char **out, const char *fmt, ...) {
    char args[4096], cmd[4600];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(args, sizeof args, fmt, ap);
    va_end(ap);
    snprintf(cmd, sizeof cmd, "'%s' %s 2>&1", test_nib_binary(), args);
    char *o = NULL;
    int rc = test_run_capture(cmd, &o, NULL);
    if (out)
        *out = o;
    else
        free(o);
    return rc;
}

static bool file_exists(const char *p) {
    struct stat st;
    return stat(p, &st) == 0;
}

static bool files_equal(const char *a, const char *b) {
    char *x, *y;
    size_t nx, ny;
    ASSERT_OK(nib_read_file(a, &x, &nx));
    ASSERT_OK(nib_read_file(b, &y, &ny));
    bool eq = nx == ny && memcmp(x, y, nx) == 0;
    nib_free(x);
    nib_free(y);
    return eq;
}

static eng_gguf *open_gguf(const char *path) {
    eng_gguf *g = NULL;
    char err[256] = "";
    int r = eng_gguf_open(path, &g, err, sizeof err);
    ASSERT_MSG(r == 0, "%s: %s", path, err);
    return g;
}

/* Every tensor's name, type, shape and bytes equal (metadata aside). */
static void assert_same_tensors(const char *a, const char *b) {
    eng_gguf *x = open_gguf(a), *y = open_gguf(b);
    ASSERT_EQ(x->n_tensors, y->n_tensors);
    for (uint64_t i = 0; i < x->n_tensors; i++) {
        const eng_gguf_tensor *s = &x->tensors[i], *t = &y->tensors[i];
        ASSERT_STR_EQ(s->name, t->name);
        ASSERT_EQ(s->type, t->type);
        ASSERT_MEM_EQ(s->ne, t->ne, sizeof s->ne);
        ASSERT_MSG(memcmp(s->data, t->data, s->n_bytes) == 0,
                   "tensor %s differs", s->name);
    }
    eng_gguf_close(x);
    eng_gguf_close(y);
}

static float *dequant(const eng_gguf_tensor *t) {
    float *f = nib_malloc(t->n_elements * sizeof *f);
    ASSERT(eng_type_traits[t->type].to_float);
    eng_type_traits[t->type].to_float(t->data, f, (int64_t)t->n_elements);
    return f;
}

/* Root-mean-square of (a - b) over that of b. */
static double rel_rmse(const float *a, const float *b, uint64_t n) {
    double e = 0, s = 0;
    for (uint64_t i = 0; i < n; i++) {
        e += ((double)a[i] - b[i]) * ((double)a[i] - b[i]);
        s += (double)b[i] * b[i];
    }
    return s > 0 ? sqrt(e / s) : sqrt(e);
}

static const char *type_of(const eng_gguf *g, const char *name) {
    const eng_gguf_tensor *t = eng_gguf_find_tensor(g, name);
    ASSERT_MSG(t, "no tensor %s", name);
    return eng_type_traits[t->type].name;
}

/* Load with the engine, evaluate a few tokens, check every logit is
 * finite; returns the last token's argmax. */
static int32_t load_and_eval(const char *path) {
    eng_model *m;
    char err[256] = "";
    int r = eng_model_load(path, &m, err, sizeof err);
    ASSERT_MSG(r == 0, "%s: %s", path, err);
    eng_ctx_params cp = eng_ctx_default_params();
    cp.n_ctx = 64;
    cp.n_threads = 1;
    eng_ctx *c;
    ASSERT_OK(eng_ctx_new(m, &cp, &c));
    const int32_t toks[] = {1, 100, 2000, 30000, 7};
    ASSERT_OK(eng_eval(c, toks, 5));
    const float *lg = eng_ctx_logits(c, -1);
    int n = eng_ctx_n_vocab(c);
    for (int i = 0; i < n; i++)
        ASSERT_MSG(isfinite(lg[i]), "%s: logit %d is %g", path, i, lg[i]);
    int32_t best = eng_argmax(lg, n);
    eng_ctx_delete(c);
    eng_model_delete(m);
    return best;
}

/* A small qwen2 model with the StarCoder vocabulary: dim 64 makes every
 * attention matrix take llama.cpp's fallback types under the K mixes, ffn
 * 256 keeps ffn_down on the K types themselves. */
static const char *small_model(const char *type, const char *extra,
                               const char *name) {
    const char *vocab = test_shared("vocab/ggml-vocab-starcoder.gguf");
    if (!vocab)
        return NULL;
    const char *out = tmp(name);
    char *log;
    int rc = nib_run(&log,
                     "mkmodel --arch qwen2 --dim 64 --layers 3 --heads 4 "
                     "--kv-heads 2 --ffn 256 --vocab '%s' --type %s -o '%s' "
                     "-t 2 %s",
                     vocab, type, out, extra);
    ASSERT_MSG(rc == 0, "mkmodel failed: %s", log);
    free(log);
    return out;
}

/* ---- byte identity with llama.cpp ---------------------------------------- */

static int quantize_like_llamacpp(const char *type, const char *ref_name) {
    const char *f16 = test_shared("models/rq-star-f16.gguf");
    char rel[128];
    snprintf(rel, sizeof rel, "models/%s", ref_name);
    const char *ref = test_shared(rel);
    if (!f16 || !ref)
        TEST_SKIP("../shared/models/rq-star-*.gguf absent");
    const char *out = tmp(ref_name);
    char *log;
    int rc = nib_run(&log, "quantize '%s' '%s' %s", f16, out, type);
    ASSERT_MSG(rc == 0, "quantize failed: %s", log);
    free(log);
    /* Byte for byte: metadata, tensor order, the mix and every block. */
    ASSERT_MSG(files_equal(out, ref), "%s differs from llama.cpp's %s", out,
               ref);
    unlink(out);
    return 0;
}

TEST_IMPL(tools_quantize_q8_0) {
    return quantize_like_llamacpp("Q8_0", "rq-star-q8_0.gguf");
}

TEST_IMPL(tools_quantize_q4_0) {
    return quantize_like_llamacpp("q4_0", "rq-star-q4_0.gguf");
}

TEST_IMPL(tools_quantize_q4_k_m) {
    return quantize_like_llamacpp("Q4_K_M", "rq-star-q4_k_m.gguf");
}

TEST_IMPL(tools_quantize_q5_k_m) {
    return quantize_like_llamacpp("Q5_K_M", "rq-star-q5_k_m.gguf");
}

/* Requantizing llama.cpp's Q8_0 file to Q8_0 copies every tensor as it is,
 * and going back to F16 from it gives a model that still loads. */
TEST_IMPL(tools_quantize_from_quantized) {
    const char *q8 = test_shared("models/rq-star-q8_0.gguf");
    if (!q8)
        TEST_SKIP("../shared/models/rq-star-q8_0.gguf absent");
    char *log;
    ASSERT_EQ(nib_run(&log, "quantize '%s' '%s' Q8_0", q8, tmp("same.gguf")),
              0);
    free(log);
    ASSERT(files_equal(q8, tmp("same.gguf")));
    ASSERT_EQ(nib_run(&log, "quantize '%s' '%s' F16", q8, tmp("back.gguf")), 0);
    ASSERT_MSG(strstr(log, "already quantized"), "%s", log);
    free(log);
    eng_gguf *g = open_gguf(tmp("back.gguf"));
    ASSERT_STR_EQ(type_of(g, "token_embd.weight"), "F16");
    ASSERT_STR_EQ(type_of(g, "blk.0.attn_norm.weight"), "F32");
    uint32_t ft;
    ASSERT_OK(eng_gguf_get_u32(g, "general.file_type", &ft));
    ASSERT_EQ(ft, 1);
    eng_gguf_close(g);
    load_and_eval(tmp("back.gguf"));
    return 0;
}

/* ---- every type from a random F32 model ---------------------------------- */

TEST_IMPL(tools_quantize_all_types) {
    const char *f32 = small_model("F32", "--seed 3", "all-f32.gguf");
    if (!f32)
        TEST_SKIP("../shared/vocab absent");
    static const struct {
        const char *type;
        uint32_t ftype;
        const char *attn_q, *attn_v2, *ffn_down0, *embd;
        double tol; /* relative RMSE of the 2-D weights */
    } cases[] = {
        {"F16", 1, "F16", "F16", "F16", "F16", 1e-3},
        {"BF16", 32, "BF16", "BF16", "BF16", "BF16", 8e-3},
        {"Q8_0", 7, "Q8_0", "Q8_0", "Q8_0", "Q8_0", 0.01},
        /* The tied embedding is the output: Q6_K, which rows of 64 turn
         * into Q8_0. */
        {"Q4_0", 2, "Q4_0", "Q4_0", "Q4_0", "Q8_0", 0.15},
        {"Q4_1", 3, "Q4_1", "Q4_1", "Q4_1", "Q8_0", 0.15},
        {"Q5_0", 8, "Q5_0", "Q5_0", "Q5_0", "Q8_0", 0.08},
        {"Q5_1", 9, "Q5_1", "Q5_1", "Q5_1", "Q8_0", 0.08},
        /* dim 64: Q4_K -> Q5_0, Q5_K -> Q5_1, Q6_K -> Q8_0; with 3
         * layers only blk.2 gets the extra bits. */
        {"Q4_K_S", 14, "Q5_0", "Q5_1", "Q4_K", "Q8_0", 0.15},
        {"Q4_K_M", 15, "Q5_0", "Q8_0", "Q4_K", "Q8_0", 0.15},
        {"Q5_K_S", 16, "Q5_1", "Q5_1", "Q5_K", "Q8_0", 0.08},
        {"Q5_K_M", 17, "Q5_1", "Q8_0", "Q5_K", "Q8_0", 0.08},
        {"Q6_K", 18, "Q8_0", "Q8_0", "Q6_K", "Q8_0", 0.04},
    };
    eng_gguf *src = open_gguf(f32);
    for (size_t c = 0; c < NIB_ARRAY_LEN(cases); c++) {
        char name[64];
        snprintf(name, sizeof name, "all-%s.gguf", cases[c].type);
        const char *out = tmp(name);
        char *log;
        int rc = nib_run(&log, "quantize -t 2 '%s' '%s' %s", f32, out,
                         cases[c].type);
        ASSERT_MSG(rc == 0, "%s: %s", cases[c].type, log);
        free(log);
        eng_gguf *g = open_gguf(out);
        uint32_t ft;
        ASSERT_OK(eng_gguf_get_u32(g, "general.file_type", &ft));
        ASSERT_EQ(ft, cases[c].ftype);
        /* The mix: norms and biases stay F32, the rest per llama.cpp. */
        ASSERT_STR_EQ(type_of(g, "output_norm.weight"), "F32");
        ASSERT_STR_EQ(type_of(g, "blk.1.attn_q.bias"), "F32");
        ASSERT_STR_EQ(type_of(g, "blk.0.attn_q.weight"), cases[c].attn_q);
        ASSERT_STR_EQ(type_of(g, "blk.2.attn_v.weight"), cases[c].attn_v2);
        ASSERT_STR_EQ(type_of(g, "blk.0.ffn_down.weight"), cases[c].ffn_down0);
        ASSERT_STR_EQ(type_of(g, "token_embd.weight"), cases[c].embd);
        if (cases[c].ftype == 15 || cases[c].ftype == 17)
            ASSERT_STR_EQ(type_of(g, "blk.2.ffn_down.weight"), "Q6_K");
        for (uint64_t i = 0; i < g->n_tensors; i++) {
            const eng_gguf_tensor *t = &g->tensors[i];
            const eng_gguf_tensor *s = eng_gguf_find_tensor(src, t->name);
            ASSERT(s);
            float *a = dequant(t), *b = dequant(s);
            double e = rel_rmse(a, b, s->n_elements);
            ASSERT_MSG(e <= cases[c].tol, "%s %s (%s): relative RMSE %g",
                       cases[c].type, t->name, eng_type_traits[t->type].name,
                       e);
            nib_free(a);
            nib_free(b);
        }
        eng_gguf_close(g);
        load_and_eval(out);
        if (cases[c].ftype == 32) {
            /* BF16 input (as Hugging Face exports are) converts too. */
            rc = nib_run(&log, "quantize '%s' '%s' Q8_0", out,
                         tmp("from-bf16.gguf"));
            ASSERT_MSG(rc == 0, "%s", log);
            free(log);
            load_and_eval(tmp("from-bf16.gguf"));
        }
        unlink(out);
    }
    eng_gguf_close(src);
    return 0;
}

/* --pure: no mix, the embedding and attn_v included. */
TEST_IMPL(tools_quantize_pure) {
    const char *f32 = small_model("F32", "--seed 2", "pure-f32.gguf");
    if (!f32)
        TEST_SKIP("../shared/vocab absent");
    char *log;
    ASSERT_EQ(nib_run(&log, "quantize --pure '%s' '%s' Q4_0 1", f32,
                      tmp("pure.gguf")),
              0);
    free(log);
    eng_gguf *g = open_gguf(tmp("pure.gguf"));
    ASSERT_STR_EQ(type_of(g, "token_embd.weight"), "Q4_0");
    ASSERT_STR_EQ(type_of(g, "blk.2.attn_v.weight"), "Q4_0");
    ASSERT_STR_EQ(type_of(g, "blk.2.ffn_norm.weight"), "F32");
    eng_gguf_close(g);
    load_and_eval(tmp("pure.gguf"));
    return 0;
}

/* ---- mkmodel ------------------------------------------------------------- */

TEST_IMPL(tools_mkmodel_loads) {
    const char *vocab = test_shared("vocab/ggml-vocab-qwen2.gguf");
    if (!vocab)
        TEST_SKIP("../shared/vocab/ggml-vocab-qwen2.gguf absent");
    const char *out = tmp("qwen.gguf");
    char *log;
    int rc = nib_run(&log,
                     "mkmodel --arch qwen2 --dim 256 --layers 2 --heads 4 "
                     "--kv-heads 2 --ffn 512 --ctx 2048 --vocab '%s' --type "
                     "Q4_K_M -o '%s' --seed 5",
                     vocab, out);
    ASSERT_MSG(rc == 0, "%s", log);
    free(log);
    eng_model *m;
    char err[256] = "";
    ASSERT_MSG(eng_model_load(out, &m, err, sizeof err) == 0, "%s", err);
    eng_model_info info;
    eng_model_get_info(m, &info);
    ASSERT_STR_EQ(info.arch, "qwen2");
    ASSERT_EQ(info.n_embd, 256);
    ASSERT_EQ(info.n_layer, 2);
    ASSERT_EQ(info.n_head, 4);
    ASSERT_EQ(info.n_head_kv, 2);
    ASSERT_EQ(info.n_ff, 512);
    ASSERT_EQ(info.n_vocab, 151936);
    ASSERT_EQ(info.n_ctx_train, 2048);
    ASSERT_NEAR(info.rope_base, 1e6, 1);
    /* The real tokenizer came along, FIM tokens included. */
    const eng_vocab *v = eng_model_vocab(m);
    ASSERT_EQ(eng_token_special(v, ENG_TOK_FIM_PRE), 151659);
    int32_t ids[16];
    ASSERT_GT(eng_tokenize(v, "def main():", 11, 0, ids, 16), 0);
    eng_model_delete(m);

    eng_gguf *g = open_gguf(out);
    ASSERT_STR_EQ(type_of(g, "token_embd.weight"), "Q6_K"); /* tied */
    ASSERT(!eng_gguf_find_tensor(g, "output.weight"));
    ASSERT_STR_EQ(type_of(g, "blk.1.attn_v.weight"), "Q6_K");
    ASSERT_STR_EQ(type_of(g, "blk.0.attn_v.weight"), "Q4_K");
    ASSERT_STR_EQ(type_of(g, "blk.0.attn_k.bias"), "F32");
    uint32_t ft;
    ASSERT_OK(eng_gguf_get_u32(g, "general.file_type", &ft));
    ASSERT_EQ(ft, 15);
    eng_gguf_close(g);
    load_and_eval(out);
    return 0;
}

/* A llama model with DeepSeek-Coder's rope settings and an untied output,
 * its vocabulary padded to --vocab-size. */
TEST_IMPL(tools_mkmodel_llama_padded) {
    const char *vocab = test_shared("vocab/ggml-vocab-deepseek-coder.gguf");
    if (!vocab)
        TEST_SKIP("../shared/vocab absent");
    const char *out = tmp("dsc.gguf");
    char *log;
    int rc = nib_run(&log,
                     "mkmodel --arch llama --dim 128 --layers 2 --heads 4 "
                     "--kv-heads 2 --ffn 256 --vocab-size 32300 --rope-base "
                     "100000 --rope-scale 4 --vocab '%s' --type Q8_0 -o '%s'",
                     vocab, out);
    ASSERT_MSG(rc == 0, "%s", log);
    free(log);
    eng_model *m;
    char err[256] = "";
    ASSERT_MSG(eng_model_load(out, &m, err, sizeof err) == 0, "%s", err);
    eng_model_info info;
    eng_model_get_info(m, &info);
    ASSERT_STR_EQ(info.arch, "llama");
    ASSERT_EQ(info.n_vocab, 32300);
    ASSERT_NEAR(info.rope_scale, 4, 1e-6);
    ASSERT_NEAR(info.rope_base, 1e5, 1);
    const eng_vocab *v = eng_model_vocab(m);
    ASSERT_EQ(eng_vocab_n_tokens(v), 32300);
    ASSERT_STR_EQ(eng_token_text(v, 32299), "[PAD32299]");
    ASSERT_STR_EQ(eng_token_text(v, 32255), "[PAD32255]"); /* the file's */
    eng_model_delete(m);
    eng_gguf *g = open_gguf(out);
    ASSERT_STR_EQ(type_of(g, "output.weight"), "Q8_0");
    ASSERT_STR_EQ(type_of(g, "token_embd.weight"), "Q8_0");
    ASSERT(!eng_gguf_find_tensor(g, "blk.0.attn_q.bias"));
    uint64_t n;
    const void *types;
    ASSERT_OK(eng_gguf_get_arr(g, "tokenizer.ggml.token_type", GGUF_TYPE_INT32,
                               &n, &types));
    ASSERT_EQ(n, 32300);
    int32_t last;
    memcpy(&last, (const int32_t *)types + 32299, 4);
    ASSERT_EQ(last, 4); /* user-defined, as in the published files */
    eng_gguf_close(g);
    load_and_eval(out);
    return 0;
}

/* One seed, one model: same bytes at any thread count; another seed gives
 * other weights. */
TEST_IMPL(tools_mkmodel_deterministic) {
    const char *a = small_model("Q4_K_M", "--seed 11 -t 1", "det-a.gguf");
    if (!a)
        TEST_SKIP("../shared/vocab absent");
    const char *b = small_model("Q4_K_M", "--seed 11", "det-b.gguf");
    const char *c = small_model("Q4_K_M", "--seed 12", "det-c.gguf");
    ASSERT(files_equal(a, b));
    ASSERT(!files_equal(a, c));
    ASSERT_EQ(load_and_eval(a), load_and_eval(b));
    return 0;
}

/* The one-pass K encoder stays close to the reference search, and --exact
 * gives exactly what `nib quantize` makes of the F32 model. */
TEST_IMPL(tools_mkmodel_fast_vs_exact) {
    const char *f32 = small_model("F32", "--seed 9", "fx-f32.gguf");
    if (!f32)
        TEST_SKIP("../shared/vocab absent");
    const char *types[] = {"Q4_K_M", "Q5_K_M", "Q6_K"};
    for (size_t i = 0; i < NIB_ARRAY_LEN(types); i++) {
        char *log;
        const char *fast = small_model(types[i], "--seed 9", "fx-fast.gguf");
        const char *exact =
            small_model(types[i], "--seed 9 --exact", "fx-exact.gguf");
        const char *q = tmp("fx-q.gguf");
        ASSERT_EQ(nib_run(&log, "quantize '%s' '%s' %s", f32, q, types[i]), 0);
        free(log);
        assert_same_tensors(exact, q);
        eng_gguf *gs = open_gguf(f32), *gf = open_gguf(fast),
                 *ge = open_gguf(exact);
        int k_tensors = 0;
        for (uint64_t t = 0; t < gf->n_tensors; t++) {
            const eng_gguf_tensor *tf = &gf->tensors[t];
            const eng_gguf_tensor *te = eng_gguf_find_tensor(ge, tf->name);
            const eng_gguf_tensor *ts = eng_gguf_find_tensor(gs, tf->name);
            ASSERT_EQ(tf->type, te->type);
            float *a = dequant(tf), *b = dequant(te), *s = dequant(ts);
            double ef = rel_rmse(a, s, ts->n_elements);
            double ee = rel_rmse(b, s, ts->n_elements);
            /* The search buys about 10%; much more would be a bug. */
            ASSERT_MSG(ef <= 1.3 * ee + 1e-6, "%s %s: fast %g, reference %g",
                       types[i], tf->name, ef, ee);
            if (tf->type == ENG_TYPE_Q4_K || tf->type == ENG_TYPE_Q5_K ||
                tf->type == ENG_TYPE_Q6_K) {
                k_tensors++;
                fprintf(stderr, "%s %s: relative RMSE fast %.4f, ref %.4f\n",
                        types[i], tf->name, ef, ee);
            }
            nib_free(a);
            nib_free(b);
            nib_free(s);
        }
        ASSERT_GT(k_tensors, 0);
        eng_gguf_close(gs);
        eng_gguf_close(gf);
        eng_gguf_close(ge);
    }
    return 0;
}

/* Q8_0's faster encoder is the reference, byte for byte. */
TEST_IMPL(tools_mkmodel_q8_0_exact) {
    const char *a = small_model("Q8_0", "--seed 4", "q8-fast.gguf");
    if (!a)
        TEST_SKIP("../shared/vocab absent");
    const char *b = small_model("Q8_0", "--seed 4 --exact", "q8-exact.gguf");
    ASSERT(files_equal(a, b));
    return 0;
}

/* A mkmodel'd F16 model quantized again loads and evaluates. */
TEST_IMPL(tools_mkmodel_requantize) {
    const char *f16 = small_model("F16", "", "rq-f16.gguf");
    if (!f16)
        TEST_SKIP("../shared/vocab absent");
    const char *q = tmp("rq-q5.gguf");
    char *log;
    ASSERT_EQ(nib_run(&log, "quantize '%s' '%s' Q5_K_M", f16, q), 0);
    free(log);
    load_and_eval(q);
    return 0;
}

/* ---- errors ------------------------------------------------------------- */

static void expect_fail(int want_rc, const char *want_msg, const char *args) {
    char *log;
    int rc = nib_run(&log, "%s", args);
    ASSERT_MSG(rc == want_rc, "nib %s: exit %d, output: %s", args, rc, log);
    ASSERT_MSG(strstr(log, want_msg), "nib %s: expected '%s' in: %s", args,
               want_msg, log);
    free(log);
}

TEST_IMPL(tools_bad_args) {
    char args[2048];
    const char *out = tmp("never.gguf");
    /* An existing output must survive a failed run untouched. */
    FILE *f = fopen(tmp("keep.gguf"), "w");
    ASSERT(f);
    fputs("old", f);
    fclose(f);

    expect_fail(2, "usage", "quantize");
    snprintf(args, sizeof args, "quantize in.gguf '%s' Q3_X", out);
    expect_fail(2, "unknown type 'Q3_X'", args);
    snprintf(args, sizeof args, "quantize /nonexistent/in.gguf '%s' Q8_0",
             tmp("keep.gguf"));
    expect_fail(1, "cannot read /nonexistent/in.gguf", args);
    snprintf(args, sizeof args, "quantize '%s' '%s' Q8_0", tmp("keep.gguf"),
             out);
    expect_fail(1, "cannot read", args); /* not a GGUF file */
    char *old;
    size_t n;
    ASSERT_OK(nib_read_file(tmp("keep.gguf"), &old, &n));
    ASSERT_EQ(n, 3);
    nib_free(old);

    const char *vocab = test_shared("vocab/ggml-vocab-starcoder.gguf");
    if (vocab) {
        snprintf(args, sizeof args,
                 "mkmodel --shape qwen2.5-coder-0.5b --vocab '%s' --type Q8_0 "
                 "-o /nonexistent/dir/m.gguf",
                 vocab);
        expect_fail(1, "cannot create /nonexistent/dir/m.gguf.tmp", args);
        const char *small = small_model("F16", "", "err-src.gguf");
        snprintf(args, sizeof args, "quantize '%s' /nonexistent/x.gguf Q4_0",
                 small);
        expect_fail(1, "cannot create", args);
        snprintf(args, sizeof args,
                 "mkmodel --arch qwen2 --dim 64 --layers 1 --heads 4 --ffn 64 "
                 "--vocab-size 1000 --vocab '%s' --type F16 -o '%s'",
                 vocab, out);
        expect_fail(1, "more than the model's 1000", args);
        /* Rows that fit no block of a legacy type: llama.cpp refuses too. */
        snprintf(args, sizeof args,
                 "mkmodel --arch llama --dim 48 --layers 1 --heads 4 --ffn 64 "
                 "--vocab '%s' --type Q4_0 -o '%s'",
                 vocab, out);
        expect_fail(1, "not a whole number of", args);
    }
    expect_fail(2, "unknown shape 'gpt-5'",
                "mkmodel --shape gpt-5 --vocab v.gguf --type F16 -o x.gguf");
    expect_fail(2, "needs --dim",
                "mkmodel --arch llama --vocab v.gguf --type F16 -o x.gguf");
    expect_fail(2, "must split",
                "mkmodel --arch llama --dim 100 --layers 1 --heads 3 --ffn 8 "
                "--vocab v.gguf --type F16 -o x.gguf");
    expect_fail(2, "unknown type 'Q9'",
                "mkmodel --shape qwen2.5-coder-0.5b --vocab v.gguf --type Q9 "
                "-o x.gguf");
    expect_fail(2, "are required", "mkmodel --shape qwen2.5-coder-0.5b");
    expect_fail(2, "invalid value", "mkmodel --dim x");
    expect_fail(1, "cannot read v.gguf",
                "mkmodel --shape qwen2.5-coder-0.5b --vocab v.gguf --type F16 "
                "-o x.gguf");
    /* No output and no leftover temporary from any of the failures. */
    ASSERT(!file_exists(out));
    char tmpname[600];
    snprintf(tmpname, sizeof tmpname, "%s.tmp", out);
    ASSERT(!file_exists(tmpname));
    ASSERT(!file_exists("x.gguf") && !file_exists("x.gguf.tmp"));
    return 0;
}
