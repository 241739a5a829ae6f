/*
 * attn_avx512.c — one unit of attention (a query token and the query heads
 * that share one KV head) with AVX-512, bit-identical head by head to
 * eng__attn_head_ref in attn.c (compiled with the AVX-512 flags; attn.c
 * calls it only after cpu.c found AVX-512).
 *
 * The reference sums in 16 lanes, so each of its 16-float arrays is one
 * zmm register here, and its lane tree (halves, quarters, pairs) is the
 * same adds on register parts; the vector exp is the scalar eng__expf_vec
 * with the same FMAs (ldexpf is vscalefps: both scale exactly and round
 * subnormal results to nearest). What differs is only the organisation:
 *   - scores: sixteen positions at once, each its own 16-lane FMA chain
 *     along the head, against keys converted to F32 once per block for all
 *     heads; one transpose-add network then does the sixteen lane trees
 *     together (the same association as sum16_tree, lanes of other
 *     positions riding along) and leaves the scores in position order;
 *   - softmax: the same network sums sixteen blocks of exps at once, and
 *     the heads' serial double sums interleave;
 *   - p.V: lane l of the reference's accumulators takes the positions
 *     j = l (mod 16) in increasing order, so a register can hold lane l of
 *     every head and dim block while the positions of that lane stream by:
 *     each value row is converted once and used for all heads of the part,
 *     and each weight is broadcast once for all its dims. The sixteen
 *     lanes meet at the end in the reference's tree, whole registers at a
 *     time.
 */
#include "attn_arch.h"

#if defined(__x86_64__)

#include <immintrin.h>
#include <math.h>
#include <stdint.h>

#define ALWAYS_INLINE static inline __attribute__((always_inline))

/* eng__expf_vec on 16 lanes. */
ALWAYS_INLINE __m512 expf16(__m512 x) {
    const __m512 shift = _mm512_set1_ps(0x1.8p23f);
    __m512 z = _mm512_fmadd_ps(x, _mm512_set1_ps(0x1.715476p+0f), shift);
    __m512 n = _mm512_sub_ps(z, shift);
    __m512 b = _mm512_fnmadd_ps(
        n, _mm512_set1_ps(0x1.7f7d1cp-20f),
        _mm512_fnmadd_ps(n, _mm512_set1_ps(0x1.62e4p-1f), x));
    __m512 u = _mm512_mul_ps(b, b);
    __m512 j = _mm512_fmadd_ps(
        _mm512_fmadd_ps(_mm512_fmadd_ps(_mm512_set1_ps(0x1.0e4020p-7f), b,
                                        _mm512_set1_ps(0x1.573e2ep-5f)),
                        u,
                        _mm512_fmadd_ps(_mm512_set1_ps(0x1.555e66p-3f), b,
                                        _mm512_set1_ps(0x1.fffdb6p-2f))),
        u,
        _mm512_fmadd_ps(_mm512_set1_ps(0x1.ffffecp-1f), b,
                        _mm512_set1_ps(1.0f)));
    __m512 r = _mm512_scalef_ps(j, n);
    /* |n| > 192 or NaN: +inf above, NaN x stays, 0 below */
    __mmask16 ok = _mm512_cmp_ps_mask(_mm512_abs_ps(n), _mm512_set1_ps(192.0f),
                                      _CMP_LE_OQ);
    if (ok != 0xffff) {
        __mmask16 pos = _mm512_cmp_ps_mask(n, _mm512_setzero_ps(), _CMP_GT_OQ);
        __mmask16 nan = _mm512_cmp_ps_mask(x, x, _CMP_UNORD_Q);
        __m512 sp = _mm512_mask_mov_ps(_mm512_setzero_ps(), nan, x);
        sp = _mm512_mask_mov_ps(sp, pos, _mm512_set1_ps(INFINITY));
        r = _mm512_mask_mov_ps(sp, ok, r);
    }
    return r;
}

ALWAYS_INLINE __mmask16 tail_mask(int left) {
    return left >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << left) - 1);
}

ALWAYS_INLINE __m512 load_ph(const eng_fp16 *p) {
    return _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)p));
}

/* ---- scores -------------------------------------------------------------- */

/* attn.c's sum16_tree of sixteen registers at once: element n of the
 * result is sum16_tree(v[n]). Each level adds the reference's pairs of
 * lanes for all sixteen together, a blend taking one operand in place and
 * one shuffle bringing the other (half the shuffles of two per add, and
 * shuffles have the fewer ports):
 *   v[i], v[i+8] -> [s8 of v[i] | s8 of v[i+8]]         (lane k + lane k+8)
 *   w[i], w[i+4] -> quarters s4 of v[i], v[i+4], v[i+8], v[i+12]
 *                                                       (s8[k] + s8[k+4])
 *   x[i], x[i+2] -> per quarter s4[0] + s4[2], s4[1] + s4[3] of two chains
 *   y[0], y[1]   -> per quarter the sums of those pairs, four chains in
 *                   order. */
ALWAYS_INLINE __m512 tree16x16(const __m512 *v) {
    __m512 w[8], x[4], y[2];
#pragma GCC unroll 8
    for (int i = 0; i < 8; i++)
        w[i] = _mm512_add_ps(
            _mm512_mask_blend_ps(0xff00, v[i], v[i + 8]),
            _mm512_shuffle_f32x4(v[i], v[i + 8], _MM_SHUFFLE(1, 0, 3, 2)));
#pragma GCC unroll 4
    for (int i = 0; i < 4; i++) {
        __m512 t = _mm512_mask_blend_ps(0xf0f0, w[i + 4], w[i]);
        x[i] =
            _mm512_add_ps(_mm512_mask_blend_ps(0xf0f0, w[i], w[i + 4]),
                          _mm512_shuffle_f32x4(t, t, _MM_SHUFFLE(2, 3, 0, 1)));
    }
#pragma GCC unroll 2
    for (int i = 0; i < 2; i++)
        y[i] = _mm512_add_ps(
            _mm512_mask_blend_ps(0xcccc, x[i], x[i + 2]),
            _mm512_shuffle_ps(x[i], x[i + 2], _MM_SHUFFLE(1, 0, 3, 2)));
    __m512 t = _mm512_mask_blend_ps(0xaaaa, y[1], y[0]);
    return _mm512_add_ps(_mm512_mask_blend_ps(0xaaaa, y[0], y[1]),
                         _mm512_permute_ps(t, _MM_SHUFFLE(2, 3, 0, 1)));
}

/* att[g * rs + j] = scale * (K_j . q_g) for g < ng, j < n_pos (up to the
 * next multiple of 16 written). qf holds the ng queries as fp16 values in
 * F32. kf is scratch for 16 keys in F32, [hd / 16][key][16]: one base
 * address and constant offsets for the sixteen chains. */
static void scores16(float *att, size_t rs, const float *qf, const eng_fp16 *k,
                     size_t stride, int hd, int ng, int n_pos, float scale,
                     float *kf) {
    const __m512 vscale = _mm512_set1_ps(scale);
    const int nb = hd / 16;
    for (int j0 = 0; j0 < n_pos; j0 += 16) {
        /* keys past n_pos are zeros; softmax never reads their scores */
        for (int s = 0; s < 16; s++) {
            int j = j0 + s;
            float *dst = kf + 16 * s;
            if (j < n_pos) {
                const eng_fp16 *src = k + (size_t)j * stride;
                for (int b = 0; b < nb; b++)
                    _mm512_store_ps(dst + 256 * b, load_ph(src + 16 * b));
            } else {
                for (int b = 0; b < nb; b++)
                    _mm512_store_ps(dst + 256 * b, _mm512_setzero_ps());
            }
        }
        for (int g = 0; g < ng; g++) {
            const float *qg = qf + (size_t)g * hd;
            __m512 acc[16];
#pragma GCC unroll 16
            for (int s = 0; s < 16; s++)
                acc[s] = _mm512_setzero_ps();
            for (int b = 0; b < nb; b++) {
                const __m512 qv = _mm512_load_ps(qg + 16 * b);
                const float *kb = kf + 256 * b;
#pragma GCC unroll 16
                for (int s = 0; s < 16; s++)
                    acc[s] = _mm512_fmadd_ps(_mm512_load_ps(kb + 16 * s), qv,
                                             acc[s]);
            }
            _mm512_store_ps(att + g * rs + j0,
                            _mm512_mul_ps(tree16x16(acc), vscale));
        }
    }
}

/* ---- softmax ------------------------------------------------------------- */

/* Heads whose softmax sums run interleaved (see softmax_rows). */
#define SM_HEADS 8

/* exp(x[i] - max) for the 16 lanes from i, stored back; lanes at or past n
 * are zeros in the result and untouched in x. */
ALWAYS_INLINE __m512 exp_block(float *x, int i, int n, __m512 max) {
    if (i + 16 <= n) {
        __m512 e = expf16(_mm512_sub_ps(_mm512_load_ps(x + i), max));
        _mm512_store_ps(x + i, e);
        return e;
    }
    if (i >= n)
        return _mm512_setzero_ps();
    __mmask16 m = tail_mask(n - i);
    __m512 e = _mm512_maskz_mov_ps(
        m, expf16(_mm512_sub_ps(_mm512_maskz_load_ps(m, x + i), max)));
    _mm512_mask_store_ps(x + i, m, e);
    return e;
}

/* softmax of attn.c on rows x + g * rs, g < ng, each over [0, n), then
 * each weight rounded to fp16 (kept as F32) as the reference rounds it
 * before p.V: max, blocks of 16 exps summed by the lane tree and
 * accumulated in double, one multiply by the float inverse. The lane
 * trees of sixteen blocks run together in tree16x16, and the serial
 * double sums of up to SM_HEADS heads are interleaved so that each waits
 * on its own adds' latency in the others' shadow. */
static void softmax_rows(float *x, size_t rs, int ng, int n) {
    for (int g0 = 0; g0 < ng; g0 += SM_HEADS) {
        const int gn = ng - g0 < SM_HEADS ? ng - g0 : SM_HEADS;
        float *row[SM_HEADS];
        __m512 max[SM_HEADS];
        double sum[SM_HEADS];
        for (int g = 0; g < gn; g++) {
            row[g] = x + (size_t)(g0 + g) * rs;
            __m512 vmax = _mm512_set1_ps(-INFINITY);
            for (int i = 0; i < n; i += 16)
                vmax = _mm512_max_ps(
                    vmax, _mm512_mask_load_ps(_mm512_set1_ps(-INFINITY),
                                              tail_mask(n - i), row[g] + i));
            max[g] = _mm512_set1_ps(_mm512_reduce_max_ps(vmax));
            sum[g] = 0.0;
        }
        for (int i0 = 0; i0 < n; i0 += 256) {
            float blk[SM_HEADS][16];
            for (int g = 0; g < gn; g++) {
                __m512 e[16];
#pragma GCC unroll 16
                for (int b = 0; b < 16; b++)
                    e[b] = exp_block(row[g], i0 + 16 * b, n, max[g]);
                _mm512_storeu_ps(blk[g], tree16x16(e));
            }
            /* blocks past n add nothing; leave them out all the same */
            const int nblk = (n - i0 + 15) / 16 < 16 ? (n - i0 + 15) / 16 : 16;
            for (int b = 0; b < nblk; b++)
                for (int g = 0; g < gn; g++)
                    sum[g] += (double)blk[g][b];
        }
        for (int g = 0; g < gn; g++) {
            const __m512 inv = _mm512_set1_ps((float)(1.0 / sum[g]));
            for (int i = 0; i < n; i += 16) {
                __m512 p = _mm512_mul_ps(_mm512_load_ps(row[g] + i), inv);
                p = _mm512_cvtph_ps(_mm512_cvtps_ph(
                    p, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
                _mm512_mask_store_ps(row[g] + i, tail_mask(n - i), p);
            }
        }
    }
}

/* ---- p.V ----------------------------------------------------------------- */

/* Accumulator registers of a part at most: 7 heads x 64 dims. With the 4
 * value vectors and the broadcast weight that is one register more than
 * there are, so one accumulator lives in memory, its chain hidden by the
 * other 27. A part converts each value vector once for all its heads and
 * walks the positions of one lane, rows 16 apart; narrower parts would
 * fetch each row's cache lines in more passes, which the 4 KiB spacing of
 * those rows in a typical KV cache (kv_dim 128) makes slow (measured:
 * 7 heads x 32 dims per pass took 18% longer than x 64). */
#define PV_ACC 28

/* Lanes handled together so that a part has at least 16 independent
 * accumulators (NL * NG * ND) when it can: fewer chains than FMA latency
 * times FMA ports leave the units idle. */
#define PV_LANES(ngnd)                                                         \
    ((ngnd) <= 1 ? 16 : (ngnd) <= 2 ? 8 : (ngnd) <= 4 ? 4 : (ngnd) <= 8 ? 2 : 1)

/* For heads g < NG (weights p + g * rs) and dims d0 .. d0 + 16*ND of
 * out (row stride hd): the reference's 16 lane accumulators, lane l the
 * positions j = l (mod 16) in order, NL lanes at a time in registers,
 * then its lane tree. */
ALWAYS_INLINE void pv_part(float *out, int hd, const float *p, size_t rs,
                           const eng_fp16 *v, size_t stride, int n_pos, int d0,
                           const int NG, const int ND, const int NL) {
    __m512 lanes[16][PV_ACC]; /* [lane][g * ND + i] */
    for (int l0 = 0; l0 < 16; l0 += NL) {
        __m512 acc[16][PV_ACC]; /* [lane - l0][g * ND + i] */
#pragma GCC unroll 16
        for (int a = 0; a < NL; a++)
#pragma GCC unroll 28
            for (int r = 0; r < NG * ND; r++)
                acc[a][r] = _mm512_setzero_ps();
        int j = l0;
        for (; j + NL <= n_pos; j += 16) {
#pragma GCC unroll 16
            for (int a = 0; a < NL; a++) {
                const eng_fp16 *vj = v + (size_t)(j + a) * stride + d0;
                __m512 vv[4];
#pragma GCC unroll 4
                for (int i = 0; i < ND; i++)
                    vv[i] = load_ph(vj + 16 * i);
#pragma GCC unroll 8
                for (int g = 0; g < NG; g++) {
                    const __m512 pb = _mm512_set1_ps(p[g * rs + j + a]);
#pragma GCC unroll 4
                    for (int i = 0; i < ND; i++)
                        acc[a][g * ND + i] =
                            _mm512_fmadd_ps(vv[i], pb, acc[a][g * ND + i]);
                }
            }
        }
        /* the last positions when fewer than NL of them are left */
#pragma GCC unroll 16
        for (int a = 0; a < NL; a++) {
            if (j + a >= n_pos)
                break;
            const eng_fp16 *vj = v + (size_t)(j + a) * stride + d0;
#pragma GCC unroll 8
            for (int g = 0; g < NG; g++) {
                const __m512 pb = _mm512_set1_ps(p[g * rs + j + a]);
#pragma GCC unroll 4
                for (int i = 0; i < ND; i++)
                    acc[a][g * ND + i] = _mm512_fmadd_ps(
                        load_ph(vj + 16 * i), pb, acc[a][g * ND + i]);
            }
        }
#pragma GCC unroll 16
        for (int a = 0; a < NL; a++)
#pragma GCC unroll 28
            for (int r = 0; r < NG * ND; r++)
                lanes[l0 + a][r] = acc[a][r];
    }
    for (int g = 0; g < NG; g++)
        for (int i = 0; i < ND; i++) {
            int r = g * ND + i;
            __m512 s8[8], s4[4];
#pragma GCC unroll 8
            for (int l = 0; l < 8; l++)
                s8[l] = _mm512_add_ps(lanes[l][r], lanes[l + 8][r]);
#pragma GCC unroll 4
            for (int l = 0; l < 4; l++)
                s4[l] = _mm512_add_ps(s8[l], s8[l + 4]);
            _mm512_storeu_ps(out + (size_t)g * hd + d0 + 16 * i,
                             _mm512_add_ps(_mm512_add_ps(s4[0], s4[2]),
                                           _mm512_add_ps(s4[1], s4[3])));
        }
}

typedef void (*pv_part_fn)(float *out, int hd, const float *p, size_t rs,
                           const eng_fp16 *v, size_t stride, int n_pos, int d0);

#define PV_FN(ng, nd)                                                          \
    static void pv_##ng##_##nd(float *out, int hd, const float *p, size_t rs,  \
                               const eng_fp16 *v, size_t stride, int n_pos,    \
                               int d0) {                                       \
        pv_part(out, hd, p, rs, v, stride, n_pos, d0, ng, nd,                  \
                PV_LANES((ng) * (nd)));                                        \
    }
/* clang-format off */
PV_FN(1, 1) PV_FN(1, 2) PV_FN(1, 3) PV_FN(1, 4)
PV_FN(2, 1) PV_FN(2, 2) PV_FN(2, 3) PV_FN(2, 4)
PV_FN(3, 1) PV_FN(3, 2) PV_FN(3, 3) PV_FN(3, 4)
PV_FN(4, 1) PV_FN(4, 2) PV_FN(4, 3) PV_FN(4, 4)
PV_FN(5, 1) PV_FN(5, 2) PV_FN(5, 3) PV_FN(5, 4)
PV_FN(6, 1) PV_FN(6, 2) PV_FN(6, 3) PV_FN(6, 4)
PV_FN(7, 1) PV_FN(7, 2) PV_FN(7, 3) PV_FN(7, 4)
PV_FN(8, 1) PV_FN(8, 2) PV_FN(8, 3)

/* [heads - 1][dim blocks - 1], NG * ND <= PV_ACC */
static const pv_part_fn pv_parts[8][4] = {
    {pv_1_1, pv_1_2, pv_1_3, pv_1_4}, {pv_2_1, pv_2_2, pv_2_3, pv_2_4},
    {pv_3_1, pv_3_2, pv_3_3, pv_3_4}, {pv_4_1, pv_4_2, pv_4_3, pv_4_4},
    {pv_5_1, pv_5_2, pv_5_3, pv_5_4}, {pv_6_1, pv_6_2, pv_6_3, pv_6_4},
    {pv_7_1, pv_7_2, pv_7_3, pv_7_4}, {pv_8_1, pv_8_2, pv_8_3, NULL},
};
/* clang-format on */

/* ---- the unit ------------------------------------------------------------ */

void eng__attn_group_avx512(float *out, const float *q, const eng_fp16 *k,
                            const eng_fp16 *v, size_t stride, int hd, int ng,
                            int n_pos, float scale, float *scratch) {
    if (hd % 16) {
        eng__attn_group_ref(out, q, k, v, stride, hd, ng, n_pos, scale,
                            scratch);
        return;
    }
    /* scratch: ng score rows of rs floats, the ng queries, 16 keys; all
     * 64-byte aligned, as rs and hd are multiples of 16 floats */
    float *att = (float *)(((uintptr_t)scratch + 63) & ~(uintptr_t)63);
    const size_t rs = ((size_t)n_pos + 15) & ~(size_t)15;
    float *qf = att + ng * rs;
    float *kf = qf + (size_t)ng * hd;

    /* queries rounded to fp16 */
    for (int i = 0; i < ng * hd; i += 16)
        _mm512_store_ps(qf + i,
                        _mm512_cvtph_ps(_mm512_cvtps_ph(
                            _mm512_loadu_ps(q + i),
                            _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)));

    scores16(att, rs, qf, k, stride, hd, ng, n_pos, scale, kf);

    softmax_rows(att, rs, ng, n_pos);

    /* parts of at most 8 heads, as equal as can be, each over as many
     * dims at once as PV_ACC allows */
    const int n_parts = (ng + 7) / 8;
    for (int part = 0; part < n_parts; part++) {
        int g0 = ng * part / n_parts, gn = ng * (part + 1) / n_parts - g0;
        int nd_max = PV_ACC / gn < 4 ? PV_ACC / gn : 4;
        for (int d0 = 0; d0 < hd; d0 += 16 * nd_max) {
            int nd = (hd - d0) / 16 < nd_max ? (hd - d0) / 16 : nd_max;
            pv_parts[gn - 1][nd - 1](out + (size_t)g0 * hd, hd, att + g0 * rs,
                                     rs, v, stride, n_pos, d0);
        }
    }
}

/* eng__swiglu_ref sixteen lanes at a time: the same exp, and the same
 * division and product, each rounded once. */
void eng__swiglu_avx512(float *o, const float *g, const float *u, int n) {
    const __m512 one = _mm512_set1_ps(1.0f);
    for (int i = 0; i < n; i += 16) {
        const __mmask16 m = tail_mask(n - i);
        const __m512 gv = _mm512_maskz_loadu_ps(m, g + i);
        const __m512 e = expf16(_mm512_sub_ps(_mm512_setzero_ps(), gv));
        _mm512_mask_storeu_ps(
            o + i, m,
            _mm512_mul_ps(_mm512_div_ps(gv, _mm512_add_ps(one, e)),
                          _mm512_maskz_loadu_ps(m, u + i)));
    }
}

#endif
