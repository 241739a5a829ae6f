/*
 * attn.c — causal grouped-query attention over the fp16 KV cache, and the
 * vectorised exp llama.cpp's CPU kernels use (shared with SiLU).
 *
 * The rounding points follow llama.cpp's CPU backend (fp16 query and
 * softmax weights), and so do the softmax and p.V sums (16 lanes and a
 * tree, as its F16 GEMM sums them), because the golden outputs come from
 * it and the random-weight test models amplify single-bit differences
 * into visible logit changes. The scores take another order, one FMA chain
 * per position (see dot_f16), for speed: the golden logits stay within
 * their tolerances.
 */
#include "internal.h"

#include "arch/attn_arch.h"

#include <math.h>
#include <stdatomic.h>
#include <string.h>

/* Attention work (multiply-adds) below which the calling thread does it
 * alone; see PARALLEL_MIN_BYTES in matmul.c. */
#define ATTN_PARALLEL_MIN (64 * 1024)

typedef struct {
    eng_ctx *c;
    int layer;
    int n;    /* tokens in the batch */
    int pos0; /* position of the first one */
    eng_attn_group_fn group;
    atomic_int next_unit; /* next unit (see attn_worker) nobody has taken */
} attn_task;

/* exp(x) as llama.cpp's vectorised CPU kernels compute it (a range
 * reduction to x = n ln2 + b and a degree-5 polynomial in b, after ARM's
 * optimized-routines expf), evaluated with the same fused multiply-adds so
 * the result is bit-identical. libm's expf differs in the last bit now and
 * then, and the random-weight reference models amplify such bits into
 * visible logit differences. */
/* j * 2^n, rounded once, as ldexpf(j, n) for |n| <= 192 but inline: the
 * libm call (and fmaf's, without -mfma) was a tenth of prompt time via
 * SiLU. A power of two in the normal range multiplies exactly; when the
 * result is subnormal that one multiply rounds once, to nearest, as ldexpf
 * does. Exponents beyond the normal range go in two steps whose first is
 * exact (j * 2^+-100 stays normal). */
static inline float scale_pow2(float j, int n) {
    float f;
    if (n < -126) {
        j *= 0x1p-100f;
        n += 100;
    } else if (n > 127) {
        j *= 0x1p100f;
        n -= 100;
    }
    uint32_t bits = (uint32_t)(n + 127) << 23;
    memcpy(&f, &bits, sizeof f);
    return j * f;
}

__attribute__((target_clones("fma", "default"))) float eng__expf_vec(float x) {
    const float shift = 0x1.8p23f;
    float z = fmaf(x, 0x1.715476p+0f, shift);
    float n = z - shift;
    if (!(fabsf(n) <= 192.0f)) /* far outside float's range, or NaN */
        return n > 0 ? INFINITY : (x != x ? x : 0.0f);
    float b = fmaf(-n, 0x1.7f7d1cp-20f, fmaf(-n, 0x1.62e4p-1f, x));
    float u = b * b;
    float j = fmaf(fmaf(fmaf(0x1.0e4020p-7f, b, 0x1.573e2ep-5f), u,
                        fmaf(0x1.555e66p-3f, b, 0x1.fffdb6p-2f)),
                   u, fmaf(0x1.ffffecp-1f, b, 1.0f));
    return scale_pow2(j, (int)n);
}

/* Sum of 16 lanes in the order of a 512-bit horizontal add (halves, then
 * quarters, then pairs), so softmax sums round as the reference's do. */
static float sum16_tree(const float *v) {
    float s8[8], s4[4];
    for (int i = 0; i < 8; i++)
        s8[i] = v[i] + v[i + 8];
    for (int i = 0; i < 4; i++)
        s4[i] = s8[i] + s8[i + 4];
    return (s4[0] + s4[2]) + (s4[1] + s4[3]);
}

/* In-place softmax of x[0..n): blocks of 16 exponentials, each block summed
 * as a tree and the blocks accumulated in double. */
void eng__attn_softmax_ref(float *x, int n) {
    float max = -INFINITY;
    for (int i = 0; i < n; i++)
        if (x[i] > max)
            max = x[i];
    double sum = 0.0;
    for (int i = 0; i < n; i += 16) {
        float blk[16];
        for (int k = 0; k < 16; k++)
            blk[k] =
                i + k < n ? (x[i + k] = eng__expf_vec(x[i + k] - max)) : 0.0f;
        sum += (double)sum16_tree(blk);
    }
    float inv = (float)(1.0 / sum);
    for (int i = 0; i < n; i++)
        x[i] *= inv;
}

/* q . k as one chain of fused multiply-adds along the head, d = 0, 1, ...
 * in order. With no horizontal sum the SIMD version computes sixteen
 * positions per register, lane j the same chain for key j, against keys
 * transposed once for every query row of a unit; the 16-lane order of
 * llama.cpp's F16 GEMM needed a lane tree per score, which was most of
 * the vector work of the scores after the FMAs. */
static float dot_f16(int n, const eng_fp16 *k, const eng_fp16 *q16) {
    float acc = 0.0f;
    for (int d = 0; d < n; d++)
        acc = fmaf(eng_fp16_to_fp32(q16[d]), eng_fp16_to_fp32(k[d]), acc);
    return acc;
}

/* One (token, head) pair: the scores of that query against every cached
 * key up to its own position, softmax, weighted sum of V. The query and
 * the softmax weights are rounded to fp16 before their dot products, where
 * llama.cpp's attention (fp16 KV cache, F16 matmuls with fp16 activations)
 * rounds them. This is the reference arch/attn_avx512.c must equal bit for
 * bit. Memory is O(n_pos) per thread: one row of scores. */
void eng__attn_head_ref(float *out, const float *q, const eng_fp16 *k,
                        const eng_fp16 *v, size_t stride, int hd, int n_pos,
                        float scale, float *att, eng_fp16 *q16) {
    for (int d = 0; d < hd; d++)
        q16[d] = eng_fp32_to_fp16(q[d]);
    for (int j = 0; j < n_pos; j++)
        att[j] = dot_f16(hd, k + (size_t)j * stride, q16) * scale;
    eng__attn_softmax_ref(att, n_pos);
    for (int j = 0; j < n_pos; j++)
        att[j] = eng_fp16_to_fp32(eng_fp32_to_fp16(att[j]));
    /* out[d] = sum_j fp16(p_j) v_j[d], lane j % 16 as in the GEMM */
    for (int d = 0; d < hd; d++) {
        float acc[16] = {0};
        for (int j = 0; j < n_pos; j++) {
            const eng_fp16 *vj = v + (size_t)j * stride;
            acc[j % 16] = fmaf(eng_fp16_to_fp32(vj[d]), att[j], acc[j % 16]);
        }
        out[d] = sum16_tree(acc);
    }
}

/* The unit as the reference computes it: row by row, the scores row and
 * the fp16 query in the scratch, each token over its own positions. */
void eng__attn_group_ref(float *out, const float *q, size_t ts,
                         const eng_fp16 *k, const eng_fp16 *v, size_t stride,
                         int hd, int ng, int nt, int n_pos, float scale,
                         float *scratch) {
    eng_fp16 *q16 = (eng_fp16 *)(scratch + n_pos + nt - 1 + 16);
    for (int t = 0; t < nt; t++)
        for (int g = 0; g < ng; g++) {
            size_t o = (size_t)t * ts + (size_t)g * hd;
            eng__attn_head_ref(out + o, q + o, k, v, stride, hd, n_pos + t,
                               scale, scratch, q16);
        }
}

eng_attn_group_fn eng__attn_group_best(void) {
#if defined(__x86_64__)
    eng_quant_init();
    /* avx512 only when cpu.c found it and NIB_FORCE_SCALAR is unset; the
     * AVX2 kernel where it found only AVX2 (with FMA and F16C), with or
     * without AVX-VNNI, or under NIB_FORCE_ISA=avx2 or avxvnni */
    if (eng_quant_isa_at_least("avx512"))
        return eng__attn_group_avx512;
    if (eng_quant_isa_at_least("avx2"))
        return eng__attn_group_avx2;
#endif
    return eng__attn_group_ref;
}

void eng__swiglu_ref(float *o, const float *g, const float *u, int n) {
    for (int i = 0; i < n; i++) {
        float x = g[i];
        o[i] = x / (1.0f + eng__expf_vec(0.0f - x)) * u[i];
    }
}

eng_swiglu_fn eng__swiglu_best(void) {
#if defined(__x86_64__)
    eng_quant_init();
    if (eng_quant_isa_at_least("avx512"))
        return eng__swiglu_avx512;
    if (eng_quant_isa_at_least("avx2"))
        return eng__swiglu_avx2;
#endif
    return eng__swiglu_ref;
}

/* Elements below which SwiGLU runs on the calling thread (a one-token
 * feed-forward is 4,864 to 8,960 of them: a few microseconds vectorised). */
#define SWIGLU_PARALLEL_MIN (16 * 1024)

typedef struct {
    float *o;
    const float *u;
    size_t n;
    eng_swiglu_fn fn;
} swiglu_task;

static void swiglu_share(void *arg, int ith, int nth) {
    const swiglu_task *t = arg;
    /* 16-element boundaries, so every vector of a share is whole */
    const size_t per = (t->n / (size_t)nth + 15) & ~(size_t)15;
    const size_t i0 = NIB_MIN(t->n, per * (size_t)ith);
    const size_t i1 = NIB_MIN(t->n, i0 + per);
    if (i1 > i0)
        t->fn(t->o + i0, t->o + i0, t->u + i0, (int)(i1 - i0));
}

void eng_swiglu(eng_ctx *c, float *gate, const float *up, size_t n) {
    swiglu_task t = {.o = gate, .u = up, .n = n, .fn = eng__swiglu_best()};
    if (n < SWIGLU_PARALLEL_MIN || n > INT32_MAX)
        swiglu_share(&t, 0, 1);
    else
        eng_pool_run(c->pool, swiglu_share, &t);
}

/* Threads take (KV head, run of tokens) units from a shared counter, so a
 * thread the scheduler leaves out (another process on the core) costs
 * nothing but its share of the speed-up; the share index `ith` only picks
 * the scratch. A unit holds all query heads of the KV head's group and up
 * to ENG_ATTN_TOKENS consecutive tokens, so the SIMD version converts and
 * transposes each fp16 key once for all of those rows; runs are shorter
 * where that leaves fewer units than threads (a verify batch on a model
 * with one KV head). Which unit a token lands in changes nothing in its
 * result. */
static void attn_worker(void *arg, int ith, int nth) {
    attn_task *t = arg;
    eng_ctx *c = t->c;
    const eng_config *cfg = &c->m->cfg;
    int hd = cfg->head_dim, kv_dim = cfg->n_kv_heads * hd;
    int q_dim = cfg->n_heads * hd;
    int group = cfg->n_heads / cfg->n_kv_heads;
    float scale = 1.0f / sqrtf((float)hd);
    size_t layer_off = (size_t)t->layer * c->n_ctx * kv_dim;
    const eng_fp16 *kc = c->key_cache + layer_off;
    const eng_fp16 *vc = c->value_cache + layer_off;
    /* forward.c sizes c->att as n_threads times this */
    const int max_run = NIB_MIN(ENG_ATTN_TOKENS, c->p.n_batch);
    float *scratch =
        c->att + (size_t)ith * ENG_ATTN_SCRATCH(c->n_ctx, hd, group, max_run);
    /* every thread derives the same run length from the same nth */
    int run = (t->n * cfg->n_kv_heads + nth - 1) / nth;
    run = NIB_MAX(1, NIB_MIN(run, max_run));
    int runs = (t->n + run - 1) / run;
    int units = runs * cfg->n_kv_heads;
    for (int u; (u = atomic_fetch_add(&t->next_unit, 1)) < units;) {
        int b = u / cfg->n_kv_heads * run, kvh = u % cfg->n_kv_heads;
        size_t qo = (size_t)b * q_dim + (size_t)kvh * group * hd;
        t->group(c->xb + qo, c->q + qo, (size_t)q_dim, kc + kvh * hd,
                 vc + kvh * hd, (size_t)kv_dim, hd, group,
                 NIB_MIN(run, t->n - b), t->pos0 + b + 1, scale, scratch);
    }
}

void eng_attention(eng_ctx *c, int layer, int n, int pos0) {
    const eng_config *p = &c->m->cfg;
    attn_task at = {.c = c,
                    .layer = layer,
                    .n = n,
                    .pos0 = pos0,
                    .group = eng__attn_group_best()};
    atomic_init(&at.next_unit, 0);
    if ((size_t)n * p->n_heads * (pos0 + n) * p->head_dim < ATTN_PARALLEL_MIN)
        attn_worker(&at, 0, 1);
    else
        eng_pool_run(c->pool, attn_worker, &at);
}
