/*
 * attn_avx512.c — one unit of attention (a KV head, the query heads that
 * share it and a run of consecutive tokens of the batch) with AVX-512,
 * bit-identical row by row to eng__attn_head_ref in attn.c (compiled with
 * the AVX-512 flags; attn.c calls it only after cpu.c found AVX-512).
 *
 * The reference's softmax and p.V sum in 16 lanes, so each of their
 * 16-float arrays is one zmm register here, and their lane tree (halves,
 * quarters, pairs) is the same adds on register parts; the vector exp is
 * the scalar eng__expf_vec with the same FMAs (ldexpf is vscalefps: both
 * scale exactly and round subnormal results to nearest). What differs is
 * only the organisation:
 *   - scores: the reference's score is one FMA chain along the head, so
 *     lane s of a register runs that chain for position s: 32 keys at a
 *     time are converted to F32 and transposed to [dim][position] once,
 *     for every query row of the unit (ng heads x the run's tokens), and
 *     each row then needs one broadcast and one FMA per dim for sixteen
 *     positions, with no horizontal sum. Rows share the keys up to the
 *     last token's position; the positions past a row's own are computed
 *     and never read;
 *   - softmax (token by token): the transpose-add network of tree16x16
 *     sums sixteen blocks of exps at once, and the heads' serial double
 *     sums interleave;
 *   - p.V (token by token): lane l of the reference's accumulators takes
 *     the positions j = l (mod 16) in increasing order, so a register can
 *     hold lane l of every head and dim block while the positions of that
 *     lane stream by: each value row is converted once and used for all
 *     heads of the part, and each weight is broadcast once for all its
 *     dims. The sixteen lanes meet at the end in the reference's tree,
 *     whole registers at a time.
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

/* In place: element k of r[i] becomes element i of r[k]. Pairs of rows
 * interleave by floats, then by float pairs, which leaves in each 128-bit
 * lane L of b[4G + e] element 4L + e of rows 4G .. 4G + 3; two rounds of
 * lane shuffles then gather lane L of the four row groups. */
ALWAYS_INLINE void transpose16(__m512 r[16]) {
    __m512 a[16], b[16], c[16];
#pragma GCC unroll 8
    for (int i = 0; i < 16; i += 2) {
        a[i] = _mm512_unpacklo_ps(r[i], r[i + 1]);
        a[i + 1] = _mm512_unpackhi_ps(r[i], r[i + 1]);
    }
#pragma GCC unroll 4
    for (int g = 0; g < 16; g += 4) {
        __m512d a0 = _mm512_castps_pd(a[g]), a1 = _mm512_castps_pd(a[g + 1]);
        __m512d a2 = _mm512_castps_pd(a[g + 2]),
                a3 = _mm512_castps_pd(a[g + 3]);
        b[g] = _mm512_castpd_ps(_mm512_unpacklo_pd(a0, a2));
        b[g + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(a0, a2));
        b[g + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(a1, a3));
        b[g + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(a1, a3));
    }
    /* c[4e + h]: lanes {0, 1} (h = 0) or {2, 3} (h = 1) of groups 0 and 1,
     * and (h = 2, 3) the same of groups 2 and 3 */
#pragma GCC unroll 4
    for (int e = 0; e < 4; e++) {
        c[4 * e] = _mm512_shuffle_f32x4(b[e], b[4 + e], 0x44);
        c[4 * e + 1] = _mm512_shuffle_f32x4(b[e], b[4 + e], 0xee);
        c[4 * e + 2] = _mm512_shuffle_f32x4(b[8 + e], b[12 + e], 0x44);
        c[4 * e + 3] = _mm512_shuffle_f32x4(b[8 + e], b[12 + e], 0xee);
    }
#pragma GCC unroll 4
    for (int e = 0; e < 4; e++) {
        r[e] = _mm512_shuffle_f32x4(c[4 * e], c[4 * e + 2], 0x88);
        r[4 + e] = _mm512_shuffle_f32x4(c[4 * e], c[4 * e + 2], 0xdd);
        r[8 + e] = _mm512_shuffle_f32x4(c[4 * e + 1], c[4 * e + 3], 0x88);
        r[12 + e] = _mm512_shuffle_f32x4(c[4 * e + 1], c[4 * e + 3], 0xdd);
    }
}

/* kt[32 * d + s] = key j0 + s, dim d, in F32 for s < 16, d < hd: sixteen
 * positions per row, one register each, so that a query row's scores
 * are one chain of FMAs per register. Keys at or past n_pos (nv < 16 of
 * them valid) are zeros: they lie past the cache's valid rows and maybe
 * its end, and no softmax reads their scores. */
ALWAYS_INLINE void keys_t_block(float *kt, const eng_fp16 *k, size_t stride,
                                int hd, int nv) {
    for (int c = 0; c < hd; c += 16) {
        __m512 r[16];
#pragma GCC unroll 16
        for (int s = 0; s < 16; s++)
            r[s] = s < nv ? load_ph(k + (size_t)s * stride + c)
                          : _mm512_setzero_ps();
        transpose16(r);
#pragma GCC unroll 16
        for (int i = 0; i < 16; i++)
            _mm512_store_ps(kt + 32 * (c + i), r[i]);
    }
}

static void keys_t(float *kt, const eng_fp16 *k, size_t stride, int hd,
                   int nv) {
    if (nv >= 16)
        keys_t_block(kt, k, stride, hd, 16);
    else
        keys_t_block(kt, k, stride, hd, nv);
}

/* Query rows at most in one pass over the transposed keys: 8 rows of 32
 * positions are 16 independent FMA chains, twice the FMA latency times
 * its ports, in 16 of the 32 registers. */
#define SC_ROWS 8

/* att[r * rs + s] = scale * (q_r . key s) for the R rows r of a chunk and
 * the 16 * NB positions s of kt (NB = 2: kt + 16 holds the second 16).
 * qi holds the rows' queries interleaved, qi[d * R + r], so each
 * broadcast is one constant offset from one pointer. */
ALWAYS_INLINE void score_rows(float *att, size_t rs, const float *qi, int hd,
                              const float *kt, __m512 vscale, const int R,
                              const int NB) {
    __m512 acc[SC_ROWS][2];
#pragma GCC unroll 8
    for (int r = 0; r < R; r++)
#pragma GCC unroll 2
        for (int h = 0; h < NB; h++)
            acc[r][h] = _mm512_setzero_ps();
#pragma GCC unroll 2
    for (int d = 0; d < hd; d++) {
        __m512 kv[2];
#pragma GCC unroll 2
        for (int h = 0; h < NB; h++)
            kv[h] = _mm512_load_ps(kt + 32 * d + 16 * h);
#pragma GCC unroll 8
        for (int r = 0; r < R; r++) {
            const __m512 qb = _mm512_set1_ps(qi[d * R + r]);
#pragma GCC unroll 2
            for (int h = 0; h < NB; h++)
                acc[r][h] = _mm512_fmadd_ps(qb, kv[h], acc[r][h]);
        }
    }
#pragma GCC unroll 8
    for (int r = 0; r < R; r++)
#pragma GCC unroll 2
        for (int h = 0; h < NB; h++)
            _mm512_store_ps(att + r * rs + 16 * h,
                            _mm512_mul_ps(acc[r][h], vscale));
}

typedef void (*score_fn)(float *att, size_t rs, const float *qi, int hd,
                         const float *kt, __m512 vscale);

#define SCORE_FN(r, nb)                                                        \
    static void score_##r##_##nb(float *att, size_t rs, const float *qi,       \
                                 int hd, const float *kt, __m512 vscale) {     \
        score_rows(att, rs, qi, hd, kt, vscale, r, nb);                        \
    }
/* clang-format off */
SCORE_FN(1, 1) SCORE_FN(2, 1) SCORE_FN(3, 1) SCORE_FN(4, 1)
SCORE_FN(5, 1) SCORE_FN(6, 1) SCORE_FN(7, 1) SCORE_FN(8, 1)
SCORE_FN(1, 2) SCORE_FN(2, 2) SCORE_FN(3, 2) SCORE_FN(4, 2)
SCORE_FN(5, 2) SCORE_FN(6, 2) SCORE_FN(7, 2) SCORE_FN(8, 2)

/* [blocks of 16 positions - 1][rows - 1] */
static const score_fn score_fns[2][SC_ROWS] = {
    {score_1_1, score_2_1, score_3_1, score_4_1,
     score_5_1, score_6_1, score_7_1, score_8_1},
    {score_1_2, score_2_2, score_3_2, score_4_2,
     score_5_2, score_6_2, score_7_2, score_8_2},
};
/* clang-format on */

/* Rows in chunks of at most SC_ROWS, as equal as can be: chunk c is rows
 * [chunk_start(rows, n, c), chunk_start(rows, n, c + 1)). */
static inline int chunk_start(int rows, int n_chunks, int c) {
    return (int)((long)rows * c / n_chunks);
}

/* The scores of all rows (rows of scores rs apart, queries in qf as
 * interleaved chunks, see eng__attn_group_avx512) over positions
 * [0, n_pos): per 32 positions the keys are transposed once into kt, then
 * every chunk of rows runs its FMA chains against them. */
static void scores(float *att, size_t rs, const float *qf, int rows,
                   const eng_fp16 *k, size_t stride, int hd, int n_pos,
                   float scale, float *kt) {
    const __m512 vscale = _mm512_set1_ps(scale);
    const int n_chunks = (rows + SC_ROWS - 1) / SC_ROWS;
    for (int j0 = 0; j0 < n_pos; j0 += 32) {
        const int nb = n_pos - j0 > 16 ? 2 : 1;
        /* the keys of the next block: rows kv_dim apart, and in decode
         * far from any cache after the matmuls between two layers; the
         * hardware prefetcher leaves them to demand misses (measured with
         * the caches flushed before each layer: 0.94 ms instead of 1.03
         * for 24 layers of one token at 512 positions, medians) */
        for (int j = j0 + 32; j < j0 + 64 && j < n_pos; j++)
            for (int b = 0; b < hd * 2; b += 64)
                _mm_prefetch((const char *)(k + (size_t)j * stride) + b,
                             _MM_HINT_T0);
        keys_t(kt, k + (size_t)j0 * stride, stride, hd, n_pos - j0);
        if (nb == 2)
            keys_t(kt + 16, k + (size_t)(j0 + 16) * stride, stride, hd,
                   n_pos - j0 - 16);
        for (int c = 0; c < n_chunks; c++) {
            const int r0 = chunk_start(rows, n_chunks, c);
            const int r1 = chunk_start(rows, n_chunks, c + 1);
            score_fns[nb - 1][r1 - r0 - 1](
                att + r0 * rs + j0, rs, qf + (size_t)r0 * hd, hd, kt, vscale);
        }
    }
}

/* ---- softmax ------------------------------------------------------------- */

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

void eng__attn_group_avx512(float *out, const float *q, size_t ts,
                            const eng_fp16 *k, const eng_fp16 *v, size_t stride,
                            int hd, int ng, int nt, int n_pos, float scale,
                            float *scratch) {
    if (hd % 16) {
        eng__attn_group_ref(out, q, ts, k, v, stride, hd, ng, nt, n_pos, scale,
                            scratch);
        return;
    }
    /* rows r = t * ng + g; the last token sees n_last positions, the
     * others compute scores up to there too and never read the extra */
    const int rows = nt * ng, n_last = n_pos + nt - 1;
    /* scratch: the score rows, rs floats each, the queries, 32 keys; all
     * 64-byte aligned, as rs and hd are multiples of 16 floats */
    float *att = (float *)(((uintptr_t)scratch + 63) & ~(uintptr_t)63);
    const size_t rs = ((size_t)n_last + 15) & ~(size_t)15;
    float *qf = att + rows * rs;
    float *kt = qf + (size_t)rows * hd;

    /* queries rounded to fp16, each chunk's interleaved (score_rows):
     * qf[r0 * hd + d * R + r] for the R rows from r0 */
    const int n_chunks = (rows + SC_ROWS - 1) / SC_ROWS;
    for (int c = 0; c < n_chunks; c++) {
        const int r0 = chunk_start(rows, n_chunks, c);
        const int R = chunk_start(rows, n_chunks, c + 1) - r0;
        float *qi = qf + (size_t)r0 * hd;
        for (int r = 0; r < R; r++) {
            const int row = r0 + r;
            const float *qr =
                q + (size_t)(row / ng) * ts + (size_t)(row % ng) * hd;
            for (int d = 0; d < hd; d += 16) {
                float h[16];
                _mm512_storeu_ps(
                    h, _mm512_cvtph_ps(_mm512_cvtps_ph(
                           _mm512_loadu_ps(qr + d),
                           _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)));
                for (int i = 0; i < 16; i++)
                    qi[(d + i) * R + r] = h[i];
            }
        }
    }

    scores(att, rs, qf, rows, k, stride, hd, n_last, scale, kt);

    for (int t = 0; t < nt; t++) {
        float *at = att + (size_t)t * ng * rs;
        float *ot = out + (size_t)t * ts;
        const int np = n_pos + t;
        softmax_rows(at, rs, ng, np);

        /* parts of at most 8 heads, as equal as can be, each over as many
         * dims at once as PV_ACC allows */
        const int n_parts = (ng + 7) / 8;
        for (int part = 0; part < n_parts; part++) {
            int g0 = ng * part / n_parts, gn = ng * (part + 1) / n_parts - g0;
            int nd_max = PV_ACC / gn < 4 ? PV_ACC / gn : 4;
            for (int d0 = 0; d0 < hd; d0 += 16 * nd_max) {
                int nd = (hd - d0) / 16 < nd_max ? (hd - d0) / 16 : nd_max;
                pv_parts[gn - 1][nd - 1](ot + (size_t)g0 * hd, hd, at + g0 * rs,
                                         rs, v, stride, np, d0);
            }
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
