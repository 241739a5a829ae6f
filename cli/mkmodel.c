/*
 * mkmodel.c — `nib mkmodel`: a random-weight model with a real model's
 * shape and a real tokenizer, for benchmarks and tests that need the size
 * and layout of Qwen2.5-Coder or DeepSeek-Coder without downloading them.
 *
 * The file is what llama.cpp's converter and quantizer would write for such
 * a model: standard tensor names and hyper-parameter keys, the vocabulary's
 * tokenizer.* keys (the token list padded to the shape's vocabulary with
 * [PAD<i>] tokens, as the published GGUFs are), tensors in llama-quantize's
 * order with its type mix. Weights are streamed: each tensor is generated
 * a few MiB of rows at a time, quantized on all cores and appended, so a
 * 1.5B model never sits in memory.
 *
 * Every weight depends only on (seed, tensor name, row), never on thread
 * count or batch size, so a seed names one model.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "tools.h"

/* ==== shapes ============================================================== */

typedef struct {
    const char *name;
    const char *arch;
    int dim, n_layer, n_head, n_head_kv, n_ff, n_vocab, n_ctx;
    float rope_base, rope_scale, eps;
    bool tied, qkv_bias;
} mk_shape;

/* From the published config.json files. */
static const mk_shape shapes[] = {
    {"qwen2.5-coder-0.5b", "qwen2", 896, 24, 14, 2, 4864, 151936, 32768, 1e6f,
     1.0f, 1e-6f, true, true},
    {"qwen2.5-coder-1.5b", "qwen2", 1536, 28, 12, 2, 8960, 151936, 32768, 1e6f,
     1.0f, 1e-6f, true, true},
    {"deepseek-coder-1.3b", "llama", 2048, 24, 16, 16, 5504, 32256, 16384, 1e5f,
     4.0f, 1e-6f, false, false},
};

/* ==== weights ============================================================= */

/* Standard deviation of every matrix and bias: GPT-2's initialisation, small
 * enough that activations and logits stay finite through any depth. */
#define MK_STD 0.02f

static uint64_t splitmix64(uint64_t *s) {
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static uint64_t fnv1a(const char *s) {
    uint64_t h = 0xcbf29ce484222325ull;
    for (; *s; s++)
        h = (h ^ (uint8_t)*s) * 0x100000001b3ull;
    return h;
}

typedef struct {
    uint64_t key; /* seed mixed with the tensor name */
    int64_t n_per_row;
    float std; /* 0: every value is `value` */
    float value;
} gen_ctx;

/* Normal deviates as the sum of four uniform 16-bit draws (Irwin-Hall):
 * one 64-bit random number per weight, no log or sin, which keeps a
 * 1.5B-weight model's generation well below its quantization time. The
 * tails stop at 3.5 standard deviations, which random weights never miss. */
static void gen_fill(void *ud, int64_t row0, int64_t nrows, float *dst) {
    const gen_ctx *c = ud;
    const float mean = 4 * 32767.5f;
    const float scale = c->std / sqrtf(4 * (65536.0f * 65536.0f - 1) / 12);
    for (int64_t r = 0; r < nrows; r++) {
        float *row = dst + r * c->n_per_row;
        if (c->std == 0) {
            for (int64_t i = 0; i < c->n_per_row; i++)
                row[i] = c->value;
            continue;
        }
        uint64_t s = c->key ^ (uint64_t)(row0 + r) * 0xd1342543de82ef95ull;
        splitmix64(&s);
        for (int64_t i = 0; i < c->n_per_row; i++) {
            uint64_t x = splitmix64(&s);
            uint32_t sum = (uint32_t)(x & 0xffff) +
                           (uint32_t)((x >> 16) & 0xffff) +
                           (uint32_t)((x >> 32) & 0xffff) + (uint32_t)(x >> 48);
            row[i] = ((float)(int32_t)sum - mean) * scale;
        }
    }
}

/* ==== one-pass K-quants ===================================================
 * The reference K-quantizers search twenty candidate scales per sub-block
 * to minimise the error: about 100 ns a weight, three minutes for a 1.5B
 * model on two cores, and nothing gained for random weights. These write
 * the same formats in one pass (sub-block scale and min from its extremes),
 * which is what the reference starts its search from; `--exact` keeps the
 * reference so the output equals `nib quantize` of the F32 model. */

/* Round to nearest (ties to even) for |f| < 2^22: adding 1.5 * 2^23 puts
 * the integer in the low mantissa bits. Inline, unlike lrintf, which the
 * compiler leaves as a libm call here. */
static inline int nearest(float f) {
    float v = f + 12582912.0f;
    int32_t i;
    memcpy(&i, &v, sizeof i);
    return (i & 0x007fffff) - 0x00400000;
}

/* fminf/fmaxf stay libm calls without -ffast-math (NaN rules); the weights
 * here are finite. */
static inline float minf(float a, float b) {
    return a < b ? a : b;
}

static inline float maxf(float a, float b) {
    return a > b ? a : b;
}

static inline int clampi(int v, int lo, int hi) {
    return v < lo ? lo : v > hi ? hi : v;
}

/* Q4_K and Q5_K: 8 sub-blocks of 32 with a 6-bit scale and min each. */
static void fast_qk_scales(const float *x, int nmax, float *d_out,
                           float *dmin_out, uint8_t *scales, float *dl,
                           float *ml) {
    float sc[8], mn[8], max_sc = 0, max_mn = 0;
    for (int j = 0; j < 8; j++) {
        float lo = x[32 * j], hi = x[32 * j];
        for (int i = 1; i < 32; i++) {
            lo = minf(lo, x[32 * j + i]);
            hi = maxf(hi, x[32 * j + i]);
        }
        lo = minf(lo, 0.0f);
        sc[j] = hi > lo ? (hi - lo) / nmax : 0.0f;
        mn[j] = -lo;
        max_sc = maxf(max_sc, sc[j]);
        max_mn = maxf(max_mn, mn[j]);
    }
    const eng_fp16 hd = eng_fp32_to_fp16(max_sc / 63),
                   hm = eng_fp32_to_fp16(max_mn / 63);
    const float d = eng_fp16_to_fp32(hd), dmin = eng_fp16_to_fp32(hm);
    memset(scales, 0, K_SCALE_SIZE);
    for (int j = 0; j < 8; j++) {
        /* Round the scale up so the largest value still fits nmax. */
        int ls = d > 0 ? clampi((int)ceilf(sc[j] / d), 0, 63) : 0;
        int lm = dmin > 0 ? clampi(nearest(mn[j] / dmin), 0, 63) : 0;
        if (j < 4) {
            scales[j] |= (uint8_t)ls;
            scales[j + 4] |= (uint8_t)lm;
        } else {
            scales[j + 4] = (uint8_t)((ls & 0xf) | ((lm & 0xf) << 4));
            scales[j - 4] |= (uint8_t)((ls >> 4) << 6);
            scales[j] |= (uint8_t)((lm >> 4) << 6);
        }
        dl[j] = d * ls;
        ml[j] = dmin * lm;
    }
    *d_out = max_sc / 63;
    *dmin_out = max_mn / 63;
}

static void fast_q4_K(const float *restrict x, void *restrict vy, int64_t k) {
    block_q4_K *y = vy;
    for (int64_t b = 0; b < k / QK_K; b++, x += QK_K) {
        float d, dmin, dl[8], ml[8];
        uint8_t L[QK_K];
        fast_qk_scales(x, 15, &d, &dmin, y[b].scales, dl, ml);
        y[b].d = eng_fp32_to_fp16(d);
        y[b].dmin = eng_fp32_to_fp16(dmin);
        for (int j = 0; j < 8; j++) {
            const float id = dl[j] > 0 ? 1.0f / dl[j] : 0.0f;
            for (int i = 0; i < 32; i++)
                L[32 * j + i] = (uint8_t)clampi(
                    nearest((x[32 * j + i] + ml[j]) * id), 0, 15);
        }
        uint8_t *q = y[b].qs;
        for (int j = 0; j < QK_K; j += 64, q += 32)
            for (int l = 0; l < 32; l++)
                q[l] = (uint8_t)(L[j + l] | (L[j + l + 32] << 4));
    }
}

static void fast_q5_K(const float *restrict x, void *restrict vy, int64_t k) {
    block_q5_K *y = vy;
    for (int64_t b = 0; b < k / QK_K; b++, x += QK_K) {
        float d, dmin, dl[8], ml[8];
        uint8_t L[QK_K];
        fast_qk_scales(x, 31, &d, &dmin, y[b].scales, dl, ml);
        y[b].d = eng_fp32_to_fp16(d);
        y[b].dmin = eng_fp32_to_fp16(dmin);
        for (int j = 0; j < 8; j++) {
            const float id = dl[j] > 0 ? 1.0f / dl[j] : 0.0f;
            for (int i = 0; i < 32; i++)
                L[32 * j + i] = (uint8_t)clampi(
                    nearest((x[32 * j + i] + ml[j]) * id), 0, 31);
        }
        uint8_t *qh = y[b].qh, *ql = y[b].qs;
        memset(qh, 0, QK_K / 8);
        uint8_t m1 = 1, m2 = 2;
        for (int n = 0; n < QK_K; n += 64, ql += 32, m1 <<= 2, m2 <<= 2) {
            for (int j = 0; j < 32; j++) {
                int l1 = L[n + j], l2 = L[n + j + 32];
                if (l1 > 15) {
                    l1 -= 16;
                    qh[j] |= m1;
                }
                if (l2 > 15) {
                    l2 -= 16;
                    qh[j] |= m2;
                }
                ql[j] = (uint8_t)(l1 | (l2 << 4));
            }
        }
    }
}

/* Q6_K: 16 sub-blocks of 16 with a signed 8-bit scale each. */
static void fast_q6_K(const float *restrict x, void *restrict vy, int64_t k) {
    block_q6_K *y = vy;
    for (int64_t b = 0; b < k / QK_K; b++, x += QK_K) {
        float sc[16], max_abs = 0, max_sc = 0;
        for (int j = 0; j < 16; j++) {
            float amax = 0, v = 0;
            for (int i = 0; i < 16; i++) {
                const float a = fabsf(x[16 * j + i]);
                v = a > amax ? x[16 * j + i] : v;
                amax = a > amax ? a : amax;
            }
            sc[j] = v / -32; /* the extreme maps to -32, as the reference */
            if (fabsf(sc[j]) > max_abs) {
                max_abs = fabsf(sc[j]);
                max_sc = sc[j];
            }
        }
        uint8_t L[QK_K];
        memset(L, 32, sizeof L);
        if (max_abs == 0) {
            memset(&y[b], 0, sizeof y[b]); /* d = 0: all zeros */
            continue;
        }
        const float iscale = -128.0f / max_sc;
        y[b].d = eng_fp32_to_fp16(1 / iscale);
        const float d = eng_fp16_to_fp32(y[b].d);
        for (int j = 0; j < 16; j++) {
            y[b].scales[j] = (int8_t)clampi(nearest(iscale * sc[j]), -128, 127);
            const float dj = d * y[b].scales[j];
            if (dj == 0)
                continue;
            const float id = 1.0f / dj;
            for (int i = 0; i < 16; i++)
                L[16 * j + i] =
                    (uint8_t)(clampi(nearest(x[16 * j + i] * id), -32, 31) +
                              32);
        }
        uint8_t *ql = y[b].ql, *qh = y[b].qh;
        for (int j = 0; j < QK_K; j += 128, ql += 64, qh += 32) {
            for (int l = 0; l < 32; l++) {
                ql[l] =
                    (uint8_t)((L[j + l] & 0xf) | ((L[j + l + 64] & 0xf) << 4));
                ql[l + 32] = (uint8_t)((L[j + l + 32] & 0xf) |
                                       ((L[j + l + 96] & 0xf) << 4));
                qh[l] =
                    (uint8_t)((L[j + l] >> 4) | ((L[j + l + 32] >> 4) << 2) |
                              ((L[j + l + 64] >> 4) << 4) |
                              ((L[j + l + 96] >> 4) << 6));
            }
        }
    }
}

/* The encoder mkmodel uses for type t: a one-pass one for the K-quants,
 * the reference's exact twin for Q8_0 (tools.h), NULL (the reference) for the
 * rest, which are cheap already. */
static eng_from_float_fn fast_quant(eng_type t) {
    switch (t) {
    case ENG_TYPE_Q8_0:
        return cli_quantize_q8_0;
    case ENG_TYPE_Q4_K:
        return fast_q4_K;
    case ENG_TYPE_Q5_K:
        return fast_q5_K;
    case ENG_TYPE_Q6_K:
        return fast_q6_K;
    default:
        return NULL;
    }
}

/* ==== tensors ============================================================= */

typedef struct {
    char name[GGUF_W_MAX_NAME + 1];
    uint32_t n_dims;
    uint64_t ne[2];
    float std, value;
} mk_tensor;

typedef struct {
    mk_tensor *t;
    int64_t n, cap;
} mk_list;

static void add_t(mk_list *l, const char *name, uint64_t ne0, uint64_t ne1,
                  float std, float value) {
    if (l->n == l->cap) {
        l->cap = l->cap ? 2 * l->cap : 64;
        l->t = nib_realloc(l->t, (size_t)l->cap * sizeof *l->t);
    }
    mk_tensor *t = &l->t[l->n++];
    snprintf(t->name, sizeof t->name, "%s", name);
    t->n_dims = ne1 ? 2 : 1;
    t->ne[0] = ne0;
    t->ne[1] = ne1 ? ne1 : 1;
    t->std = std;
    t->value = value;
}

static void build_tensors(mk_list *l, const mk_shape *s) {
    const uint64_t dim = (uint64_t)s->dim, ff = (uint64_t)s->n_ff,
                   kv = (uint64_t)(s->dim / s->n_head * s->n_head_kv),
                   nv = (uint64_t)s->n_vocab;
    add_t(l, "token_embd.weight", dim, nv, MK_STD, 0);
    add_t(l, "output_norm.weight", dim, 0, 0, 1);
    if (!s->tied)
        add_t(l, "output.weight", dim, nv, MK_STD, 0);
    for (int i = 0; i < s->n_layer; i++) {
        char n[GGUF_W_MAX_NAME + 1];
#define L(suffix) (snprintf(n, sizeof n, "blk.%d." suffix, i), n)
        add_t(l, L("attn_norm.weight"), dim, 0, 0, 1);
        add_t(l, L("attn_q.weight"), dim, dim, MK_STD, 0);
        add_t(l, L("attn_k.weight"), dim, kv, MK_STD, 0);
        add_t(l, L("attn_v.weight"), dim, kv, MK_STD, 0);
        if (s->qkv_bias) {
            add_t(l, L("attn_q.bias"), dim, 0, MK_STD, 0);
            add_t(l, L("attn_k.bias"), kv, 0, MK_STD, 0);
            add_t(l, L("attn_v.bias"), kv, 0, MK_STD, 0);
        }
        add_t(l, L("attn_output.weight"), dim, dim, MK_STD, 0);
        add_t(l, L("ffn_norm.weight"), dim, 0, 0, 1);
        add_t(l, L("ffn_gate.weight"), dim, ff, MK_STD, 0);
        add_t(l, L("ffn_up.weight"), dim, ff, MK_STD, 0);
        add_t(l, L("ffn_down.weight"), ff, dim, MK_STD, 0);
#undef L
    }
}

/* ==== metadata ============================================================ */

static int set_hparams(eng_gguf_w *w, const mk_shape *s, const char *name,
                       const cli_ftype *ft) {
    char k[128];
    int r = 0;
#define K(suffix) (snprintf(k, sizeof k, "%s." suffix, s->arch), k)
    r |= eng_gguf_w_set_str(w, "general.architecture", s->arch);
    r |= eng_gguf_w_set_str(w, "general.name", name);
    r |= eng_gguf_w_set_u32(w, K("context_length"), (uint32_t)s->n_ctx);
    r |= eng_gguf_w_set_u32(w, K("embedding_length"), (uint32_t)s->dim);
    r |= eng_gguf_w_set_u32(w, K("block_count"), (uint32_t)s->n_layer);
    r |= eng_gguf_w_set_u32(w, K("feed_forward_length"), (uint32_t)s->n_ff);
    r |= eng_gguf_w_set_u32(w, K("attention.head_count"), (uint32_t)s->n_head);
    r |= eng_gguf_w_set_u32(w, K("attention.head_count_kv"),
                            (uint32_t)s->n_head_kv);
    r |= eng_gguf_w_set_f32(w, K("rope.freq_base"), s->rope_base);
    r |= eng_gguf_w_set_f32(w, K("attention.layer_norm_rms_epsilon"), s->eps);
    if (!strcmp(s->arch, "llama")) {
        r |= eng_gguf_w_set_u32(w, K("rope.dimension_count"),
                                (uint32_t)(s->dim / s->n_head));
        r |= eng_gguf_w_set_u32(w, K("vocab_size"), (uint32_t)s->n_vocab);
    }
    if (s->rope_scale != 1.0f) {
        r |= eng_gguf_w_set_str(w, K("rope.scaling.type"), "linear");
        r |= eng_gguf_w_set_f32(w, K("rope.scaling.factor"), s->rope_scale);
    }
    r |= eng_gguf_w_set_u32(w, "general.file_type", ft->ftype);
    r |= eng_gguf_w_set_u32(w, "general.quantization_version", 2);
#undef K
    return r ? NIB_EINVAL : 0;
}

/* Token types of llama.cpp's vocabulary (llama_token_type). */
enum { TOKTYPE_NORMAL = 1, TOKTYPE_USER_DEFINED = 4, TOKTYPE_UNUSED = 5 };

/* Copy the vocabulary's tokenizer.* keys, padding the per-token arrays to
 * n_vocab entries. Padding follows the published files: "[PAD<i>]" tokens,
 * user-defined in BPE vocabularies (Qwen2.5's GGUFs), unused with score
 * -1000 in SentencePiece ones (which have scores), as llama.cpp's converter
 * writes them. */
static int copy_vocab(eng_gguf_w *w, const eng_gguf *v, int n_vocab, char *err,
                      size_t err_size) {
    uint64_t n_tok;
    const eng_str *toks;
    if (eng_gguf_get_str_arr(v, "tokenizer.ggml.tokens", &n_tok, &toks) < 0) {
        nib_errf(err, err_size, "the vocabulary has no tokenizer.ggml.tokens");
        return NIB_EBADMODEL;
    }
    if (n_tok > (uint64_t)n_vocab) {
        nib_errf(err, err_size,
                 "the vocabulary has %llu tokens, more than the model's %d "
                 "(--vocab-size)",
                 (unsigned long long)n_tok, n_vocab);
        return NIB_EINVAL;
    }
    if (eng_gguf_w_copy_kvs(w, v, "tokenizer.") < 0) {
        nib_errf(err, err_size, "%s", eng_gguf_w_error(w));
        return NIB_EIO;
    }
    if (n_tok == (uint64_t)n_vocab)
        return 0;

    const uint64_t nv = (uint64_t)n_vocab;
    uint64_t n_sc = 0;
    const void *sc = NULL;
    bool has_scores = eng_gguf_get_arr(v, "tokenizer.ggml.scores",
                                       GGUF_TYPE_FLOAT32, &n_sc, &sc) == 0 &&
                      n_sc == n_tok;
    uint64_t n_ty = 0;
    const void *ty = NULL;
    bool has_types = eng_gguf_get_arr(v, "tokenizer.ggml.token_type",
                                      GGUF_TYPE_INT32, &n_ty, &ty) == 0 &&
                     n_ty == n_tok;

    eng_str *spans = nib_malloc(nv * sizeof *spans);
    char *pad = nib_malloc((nv - n_tok) * 24);
    int32_t *types = nib_malloc(nv * sizeof *types);
    float *scores = nib_malloc(nv * sizeof *scores);
    memcpy(spans, toks, n_tok * sizeof *spans);
    for (uint64_t i = 0; i < n_tok; i++)
        types[i] = TOKTYPE_NORMAL;
    if (has_types)
        memcpy(types, ty, n_tok * sizeof *types);
    if (has_scores)
        memcpy(scores, sc, n_tok * sizeof *scores);
    for (uint64_t i = n_tok; i < nv; i++) {
        char *p = pad + (i - n_tok) * 24;
        int len = snprintf(p, 24, "[PAD%llu]", (unsigned long long)i);
        spans[i] = (eng_str){p, (uint64_t)len};
        types[i] = has_scores ? TOKTYPE_UNUSED : TOKTYPE_USER_DEFINED;
        scores[i] = -1000.0f;
    }
    int r = eng_gguf_w_set_str_arr_spans(w, "tokenizer.ggml.tokens", spans, nv);
    if (!r)
        r = eng_gguf_w_set_arr(w, "tokenizer.ggml.token_type", GGUF_TYPE_INT32,
                               types, nv);
    if (!r && has_scores)
        r = eng_gguf_w_set_arr(w, "tokenizer.ggml.scores", GGUF_TYPE_FLOAT32,
                               scores, nv);
    if (r)
        nib_errf(err, err_size, "%s", eng_gguf_w_error(w));
    nib_free(scores);
    nib_free(types);
    nib_free(pad);
    nib_free(spans);
    return r ? NIB_EIO : 0;
}

/* ==== nib mkmodel ========================================================= */

static void mkmodel_usage(FILE *f) {
    fprintf(f,
            "usage: nib mkmodel --shape NAME | --arch qwen2|llama --dim N "
            "--layers N\n"
            "                   --heads N --ffn N [--kv-heads N] "
            "[--vocab-size N] [--ctx N]\n"
            "                   --vocab VOCAB.gguf --type TYPE -o OUT.gguf "
            "[--seed S]\n"
            "\n"
            "Write a random-weight model with a real model's shape and a real\n"
            "tokenizer (benchmarks, tests). Shapes:\n"
            "  qwen2.5-coder-0.5b   qwen2, dim 896, 24 layers, 14/2 heads, "
            "ffn 4864, tied\n"
            "  qwen2.5-coder-1.5b   qwen2, dim 1536, 28 layers, 12/2 heads, "
            "ffn 8960, tied\n"
            "  deepseek-coder-1.3b  llama, dim 2048, 24 layers, 16/16 heads, "
            "ffn 5504\n"
            "Options given with --shape override it. TYPE is one of:\n"
            "  %s\n"
            "\n"
            "other options:\n"
            "  --seed S  weights (default 42; the same seed gives the same "
            "file)\n"
            "  --rope-base F, --rope-scale F (linear), --eps F, --tied, "
            "--untied,\n"
            "  --name NAME, -t N (threads; default all CPUs)\n"
            "  --exact   quantize K types with llama.cpp's reference search "
            "(slow;\n"
            "            the default one-pass encoder is ~10x faster)\n",
            cli_ftype_names());
}

/* A positive, finite float (rope base and scale, norm epsilon). */
static bool parse_f(const char *s, float *out) {
    float v;
    if (!cli_parse_float(s, &v) || !(v > 0))
        return false;
    *out = v;
    return true;
}

int cli_mkmodel(int argc, char **argv) {
    const char *shape_name = NULL, *arch = NULL, *vocab = NULL, *type = NULL,
               *outp = NULL, *name = NULL;
    int dim = 0, layers = 0, heads = 0, kv_heads = 0, ffn = 0, n_vocab = 0,
        ctx = 0, n_threads = 0, tied = -1;
    float rope_base = 0, rope_scale = 0, eps = 0;
    uint64_t seed = 42;
    bool exact = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        bool ok = true;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            mkmodel_usage(stdout);
            return 0;
        } else if (!strcmp(a, "--tied") || !strcmp(a, "--untied")) {
            tied = !strcmp(a, "--tied");
            continue;
        } else if (!strcmp(a, "--exact")) {
            exact = true;
            continue;
        }
        if (a[0] != '-') {
            fprintf(stderr, "nib mkmodel: unexpected argument '%s'\n", a);
            return 2;
        }
        if (!v) {
            fprintf(stderr, "nib mkmodel: option %s needs a value\n", a);
            return 2;
        }
        i++;
        if (!strcmp(a, "--shape"))
            shape_name = v;
        else if (!strcmp(a, "--arch"))
            arch = v;
        else if (!strcmp(a, "--vocab"))
            vocab = v;
        else if (!strcmp(a, "--type"))
            type = v;
        else if (!strcmp(a, "-o") || !strcmp(a, "--output"))
            outp = v;
        else if (!strcmp(a, "--name"))
            name = v;
        else if (!strcmp(a, "--dim"))
            ok = cli_parse_int(v, 1, 65536, &dim);
        else if (!strcmp(a, "--layers"))
            ok = cli_parse_int(v, 1, 1024, &layers);
        else if (!strcmp(a, "--heads"))
            ok = cli_parse_int(v, 1, 1024, &heads);
        else if (!strcmp(a, "--kv-heads"))
            ok = cli_parse_int(v, 1, 1024, &kv_heads);
        else if (!strcmp(a, "--ffn"))
            ok = cli_parse_int(v, 1, 1 << 20, &ffn);
        else if (!strcmp(a, "--vocab-size"))
            ok = cli_parse_int(v, 1, 1 << 24, &n_vocab);
        else if (!strcmp(a, "--ctx"))
            ok = cli_parse_int(v, 1, 1 << 24, &ctx);
        else if (!strcmp(a, "-t") || !strcmp(a, "--threads"))
            ok = cli_parse_int(v, 1, 256, &n_threads);
        else if (!strcmp(a, "--rope-base"))
            ok = parse_f(v, &rope_base);
        else if (!strcmp(a, "--rope-scale"))
            ok = parse_f(v, &rope_scale);
        else if (!strcmp(a, "--eps"))
            ok = parse_f(v, &eps);
        else if (!strcmp(a, "--seed")) {
            char *end;
            errno = 0;
            seed = strtoull(v, &end, 10);
            ok = !errno && end != v && !*end;
        } else {
            fprintf(stderr,
                    "nib mkmodel: unknown option '%s' (see nib "
                    "mkmodel --help)\n",
                    a);
            return 2;
        }
        if (!ok) {
            fprintf(stderr, "nib mkmodel: invalid value '%s' for %s\n", v, a);
            return 2;
        }
    }

    /* ---- the shape: a named one, overridden by explicit options -------------- */
    mk_shape s = {0};
    if (shape_name) {
        const mk_shape *found = NULL;
        for (size_t i = 0; i < NIB_ARRAY_LEN(shapes); i++)
            if (!strcmp(shapes[i].name, shape_name))
                found = &shapes[i];
        if (!found) {
            fprintf(stderr,
                    "nib mkmodel: unknown shape '%s' (qwen2.5-coder-0.5b, "
                    "qwen2.5-coder-1.5b, deepseek-coder-1.3b)\n",
                    shape_name);
            return 2;
        }
        s = *found;
        if (arch && strcmp(arch, s.arch) != 0) {
            fprintf(stderr, "nib mkmodel: shape %s is a %s model, not %s\n",
                    s.name, s.arch, arch);
            return 2;
        }
    } else {
        if (!arch || (strcmp(arch, "qwen2") && strcmp(arch, "llama"))) {
            fprintf(stderr, "nib mkmodel: give --shape NAME, or --arch qwen2 "
                            "or llama with --dim --layers --heads --ffn\n");
            return 2;
        }
        if (!dim || !layers || !heads || !ffn) {
            fprintf(stderr,
                    "nib mkmodel: --arch %s needs --dim, --layers, "
                    "--heads and --ffn\n",
                    arch);
            return 2;
        }
        bool q = !strcmp(arch, "qwen2");
        s = (mk_shape){.arch = q ? "qwen2" : "llama",
                       .n_ctx = 4096,
                       .rope_base = q ? 1e6f : 1e4f,
                       .rope_scale = 1.0f,
                       .eps = q ? 1e-6f : 1e-5f,
                       .tied = q,
                       .qkv_bias = q};
    }
    if (dim)
        s.dim = dim;
    if (layers)
        s.n_layer = layers;
    if (heads)
        s.n_head = heads;
    if (kv_heads)
        s.n_head_kv = kv_heads;
    else if (!shape_name)
        s.n_head_kv = s.n_head;
    if (ffn)
        s.n_ff = ffn;
    if (n_vocab)
        s.n_vocab = n_vocab;
    if (ctx)
        s.n_ctx = ctx;
    if (rope_base)
        s.rope_base = rope_base;
    if (rope_scale)
        s.rope_scale = rope_scale;
    if (eps)
        s.eps = eps;
    if (tied >= 0)
        s.tied = tied;
    if (s.dim % s.n_head || s.n_head % s.n_head_kv || (s.dim / s.n_head) % 2) {
        fprintf(stderr,
                "nib mkmodel: --dim %d must split into --heads %d of an even "
                "size, and the heads into --kv-heads %d groups\n",
                s.dim, s.n_head, s.n_head_kv);
        return 2;
    }
    if (!vocab || !type || !outp) {
        fprintf(stderr, "nib mkmodel: --vocab VOCAB.gguf, --type TYPE and -o "
                        "OUT.gguf are required\n");
        return 2;
    }
    const cli_ftype *ft = cli_ftype_find(type);
    if (!ft) {
        fprintf(stderr, "nib mkmodel: unknown type '%s' (one of: %s)\n", type,
                cli_ftype_names());
        return 2;
    }
    if (n_threads <= 0)
        n_threads = cli_n_threads();

    char err[512] = "";
    eng_gguf *vg = NULL;
    int r = eng_gguf_open(vocab, &vg, err, sizeof err);
    if (r < 0) {
        fprintf(stderr, "nib mkmodel: cannot read %s: %s\n", vocab,
                err[0] ? err : nib_strerror(r));
        return 1;
    }
    if (!s.n_vocab) {
        uint64_t nt;
        const eng_str *toks;
        if (eng_gguf_get_str_arr(vg, "tokenizer.ggml.tokens", &nt, &toks) ==
                0 &&
            nt <= (1u << 24))
            s.n_vocab = (int)nt;
    }
    char gen_name[96];
    if (!name) {
        if (shape_name)
            snprintf(gen_name, sizeof gen_name, "nib-random-%s", shape_name);
        else
            snprintf(gen_name, sizeof gen_name, "nib-random-%s-%dx%d", s.arch,
                     s.dim, s.n_layer);
        name = gen_name;
    }

    uint64_t t0 = nib_now_ns();
    int rc = 1;
    mk_list l = {0};
    eng_gguf_w *w = eng_gguf_w_new();
    cli_out out = {0};
    eng_type *types = NULL;
    int64_t *order = NULL;
    const char **names = NULL;
    if (set_hparams(w, &s, name, ft) < 0) {
        nib_errf(err, sizeof err, "%s", eng_gguf_w_error(w));
        goto fail;
    }
    if (copy_vocab(w, vg, s.n_vocab, err, sizeof err) < 0)
        goto fail;

    build_tensors(&l, &s);
    names = nib_malloc((size_t)l.n * sizeof *names);
    order = nib_malloc((size_t)l.n * sizeof *order);
    types = nib_malloc((size_t)l.n * sizeof *types);
    for (int64_t i = 0; i < l.n; i++)
        names[i] = l.t[i].name;
    cli_tensor_order(names, order, l.n);
    cli_plan plan;
    cli_plan_init(&plan, ft, s.n_layer, names, l.n);
    for (int64_t k = 0; k < l.n; k++) {
        const mk_tensor *t = &l.t[order[k]];
        /* Weights start as F32, as the converter's output would hold them
         * before quantizing: 1-D tensors stay F32. */
        if (cli_plan_type(&plan, t->name, t->n_dims, t->ne, ENG_TYPE_F32,
                          &types[k], err, sizeof err) < 0)
            goto fail;
        if (eng_gguf_w_add_tensor(w, t->name, types[k], t->n_dims, t->ne) < 0) {
            nib_errf(err, sizeof err, "%s", eng_gguf_w_error(w));
            goto fail;
        }
    }

    if (cli_out_open(&out, outp, err, sizeof err) < 0)
        goto fail;
    if (eng_gguf_w_write_header(w, out.f) < 0) {
        nib_errf(err, sizeof err, "%s", eng_gguf_w_error(w));
        goto fail;
    }
    uint64_t bytes = 0, params = 0;
    for (int64_t k = 0; k < l.n; k++) {
        const mk_tensor *t = &l.t[order[k]];
        gen_ctx c = {seed ^ fnv1a(t->name), (int64_t)t->ne[0], t->std,
                     t->value};
        if (cli_stream_rows(w, out.f, types[k], (int64_t)t->ne[0],
                            (int64_t)t->ne[1], gen_fill, &c,
                            exact ? NULL : fast_quant(types[k]), n_threads, err,
                            sizeof err) < 0)
            goto fail;
        bytes += eng_gguf_w_tensor_bytes(w, k);
        params += t->ne[0] * t->ne[1];
    }
    if (eng_gguf_w_finish(w, out.f) < 0) {
        nib_errf(err, sizeof err, "%s", eng_gguf_w_error(w));
        goto fail;
    }
    if (cli_out_close(&out, true, err, sizeof err) < 0)
        goto fail;
    fprintf(stderr,
            "nib mkmodel: %s: %s %s, %.1fM parameters, %lld tensors, %.1f MiB "
            "in %.1f s\n",
            outp, s.arch, ft->name, params / 1e6, (long long)l.n,
            bytes / 1048576.0, (double)(nib_now_ns() - t0) / 1e9);
    rc = 0;
    goto done;
fail:
    fprintf(stderr, "nib mkmodel: %s\n", err[0] ? err : "failed");
    cli_out_close(&out, false, NULL, 0);
done:
    nib_free(types);
    nib_free(order);
    nib_free(names);
    nib_free(l.t);
    eng_gguf_w_delete(w);
    eng_gguf_close(vg);
    return rc;
}
