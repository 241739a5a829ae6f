/*
 * attn_avx2.c — the attention unit for CPUs with AVX2, FMA and F16C but no
 * AVX-512 (most laptops), bit-identical to the scalar reference in attn.c.
 *
 * Without it those CPUs ran the reference, whose fp16 conversions and
 * fused multiply-adds are library calls one element at a time: 40% of a
 * decoded token of Qwen2.5-0.5B after 136 positions, more the longer the
 * context. The arithmetic is the reference's, reordered only where the
 * order of independent chains does not matter:
 *   - scores: 32 keys converted and transposed to [dim][position] once
 *     per unit, then each row's 32 scores are four registers of eight
 *     positions, lane j the reference's FMA chain for key j, d = 0, 1, ...;
 *   - softmax: the reference's, eight lanes at a time (softmax_avx2),
 *     then the weights rounded to fp16 eight at a time;
 *   - p.V: eight dims per register; lane accumulators l = 0..15 take
 *     positions j = l, l + 16, ... in order, as the reference's acc[j % 16]
 *     does, and meet in its 16-lane tree.
 * Test kernels_attn_group_avx2 checks it against the reference bit for
 * bit.
 */
#include "attn_arch.h"

#if defined(__x86_64__)

#include <immintrin.h>
#include <math.h>
#include <string.h>

/* Positions whose keys are transposed together. */
#define KT_POS 32

/* 8 x 8 floats: rows r[0..8) become columns. */
static inline void transpose8(__m256 r[8]) {
    __m256 t[8], u[8];
    for (int i = 0; i < 8; i += 2) {
        t[i] = _mm256_unpacklo_ps(r[i], r[i + 1]);
        t[i + 1] = _mm256_unpackhi_ps(r[i], r[i + 1]);
    }
    for (int i = 0; i < 8; i += 4) {
        u[i] = _mm256_shuffle_ps(t[i], t[i + 2], _MM_SHUFFLE(1, 0, 1, 0));
        u[i + 1] = _mm256_shuffle_ps(t[i], t[i + 2], _MM_SHUFFLE(3, 2, 3, 2));
        u[i + 2] =
            _mm256_shuffle_ps(t[i + 1], t[i + 3], _MM_SHUFFLE(1, 0, 1, 0));
        u[i + 3] =
            _mm256_shuffle_ps(t[i + 1], t[i + 3], _MM_SHUFFLE(3, 2, 3, 2));
    }
    for (int i = 0; i < 4; i++) {
        r[i] = _mm256_permute2f128_ps(u[i], u[i + 4], 0x20);
        r[i + 4] = _mm256_permute2f128_ps(u[i], u[i + 4], 0x31);
    }
}

/* kt[d * KT_POS + p] = key (j0 + p) at dim d, for p < np; zero beyond. */
static void keys_t8(float *kt, const eng_fp16 *k, size_t stride, int hd, int j0,
                    int np) {
    for (int p0 = 0; p0 < KT_POS; p0 += 8) {
        for (int d0 = 0; d0 < hd; d0 += 8) {
            __m256 r[8];
            for (int i = 0; i < 8; i++)
                r[i] =
                    p0 + i < np
                        ? _mm256_cvtph_ps(_mm_loadu_si128(
                              (const __m128i *)(k +
                                                (size_t)(j0 + p0 + i) * stride +
                                                d0)))
                        : _mm256_setzero_ps();
            transpose8(r);
            for (int i = 0; i < 8; i++)
                _mm256_storeu_ps(kt + (size_t)(d0 + i) * KT_POS + p0, r[i]);
        }
    }
}

/* One row's scores for positions j0 .. j0 + m (m <= KT_POS). */
static void scores_row(float *att, const float *qf, const float *kt, int hd,
                       int j0, int m, float scale) {
    __m256 acc[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(),
                     _mm256_setzero_ps(), _mm256_setzero_ps()};
    for (int d = 0; d < hd; d++) {
        const __m256 qd = _mm256_broadcast_ss(qf + d);
        const float *kd = kt + (size_t)d * KT_POS;
        for (int i = 0; i < 4; i++)
            acc[i] = _mm256_fmadd_ps(qd, _mm256_loadu_ps(kd + 8 * i), acc[i]);
    }
    float s[KT_POS];
    const __m256 sc = _mm256_set1_ps(scale);
    for (int i = 0; i < 4; i++)
        _mm256_storeu_ps(s + 8 * i, _mm256_mul_ps(acc[i], sc));
    memcpy(att + j0, s, (size_t)m * sizeof(float));
}

/* scores_row for two rows at once: each row's chains are its own (the
 * same FMAs in the same order), and the eight of them hide the FMA
 * latency that four alone left exposed (64 dependent FMAs per chain). */
static void scores_rows2(float *att0, const float *qf0, int m0, float *att1,
                         const float *qf1, int m1, const float *kt, int hd,
                         int j0, float scale) {
    __m256 a0[4], a1[4];
    for (int i = 0; i < 4; i++)
        a0[i] = a1[i] = _mm256_setzero_ps();
    for (int d = 0; d < hd; d++) {
        const __m256 q0 = _mm256_broadcast_ss(qf0 + d);
        const __m256 q1 = _mm256_broadcast_ss(qf1 + d);
        const float *kd = kt + (size_t)d * KT_POS;
        for (int i = 0; i < 4; i++) {
            const __m256 kv = _mm256_loadu_ps(kd + 8 * i);
            a0[i] = _mm256_fmadd_ps(q0, kv, a0[i]);
            a1[i] = _mm256_fmadd_ps(q1, kv, a1[i]);
        }
    }
    float s[2][KT_POS];
    const __m256 sc = _mm256_set1_ps(scale);
    for (int i = 0; i < 4; i++) {
        _mm256_storeu_ps(s[0] + 8 * i, _mm256_mul_ps(a0[i], sc));
        _mm256_storeu_ps(s[1] + 8 * i, _mm256_mul_ps(a1[i], sc));
    }
    memcpy(att0 + j0, s[0], (size_t)m0 * sizeof(float));
    memcpy(att1 + j0, s[1], (size_t)m1 * sizeof(float));
}

/* x[i] = fp32(fp16(x[i])), round to nearest even as eng_fp32_to_fp16. */
static void round_fp16(float *x, int n) {
    int i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(
            x + i, _mm256_cvtph_ps(_mm256_cvtps_ph(_mm256_loadu_ps(x + i),
                                                   _MM_FROUND_TO_NEAREST_INT)));
    for (; i < n; i++)
        x[i] = _cvtsh_ss(_cvtss_sh(x[i], _MM_FROUND_TO_NEAREST_INT));
}

/* The 16 lanes of dims [d0, d0 + 8 nb) (acc: lane l's 8 nb floats at
 * 8 nb l) into out, in the reference's sum16_tree: halves, quarters, then
 * pairs. */
static inline __attribute__((always_inline)) void
pv_tree(float *out, const float *acc, int d0, const int nb) {
    for (int b = 0; b < nb; b++) {
        __m256 s8[8], s4[4];
        for (int i = 0; i < 8; i++)
            s8[i] =
                _mm256_add_ps(_mm256_loadu_ps(acc + 8 * (nb * i + b)),
                              _mm256_loadu_ps(acc + 8 * (nb * (i + 8) + b)));
        for (int i = 0; i < 4; i++)
            s4[i] = _mm256_add_ps(s8[i], s8[i + 4]);
        _mm256_storeu_ps(out + d0 + 8 * b,
                         _mm256_add_ps(_mm256_add_ps(s4[0], s4[2]),
                                       _mm256_add_ps(s4[1], s4[3])));
    }
}

/* Dims [d0, d0 + 8 nb) of out: for each pair of the reference's lanes
 * (l = j % 16), one pass over that pair's positions in increasing order
 * with the 4 nb accumulators in registers, so each value row's 64 bytes
 * are read once per row of attention (in passes of 8 dims over all
 * lanes, each 64-byte line was read four times from L2 per query head:
 * p.V was a fifth of decode with a 2,000-token context). The lanes land
 * in acc (16 x 8 nb floats) and meet in the reference's tree. */
static inline __attribute__((always_inline)) void
pv_dims(float *out, const float *p, const eng_fp16 *v, size_t stride, int d0,
        const int nb, int n, float *acc) {
    for (int l = 0; l < 16; l += 2) {
        __m256 a[2][4];
        for (int i = 0; i < 2; i++)
            for (int b = 0; b < nb; b++)
                a[i][b] = _mm256_setzero_ps();
        for (int j0 = 0; j0 < n; j0 += 16) {
            for (int i = 0; i < 2; i++) {
                const int j = j0 + l + i;
                if (j >= n)
                    break;
                const __m256 pj = _mm256_broadcast_ss(p + j);
                const eng_fp16 *vr = v + (size_t)j * stride + d0;
                for (int b = 0; b < nb; b++)
                    a[i][b] =
                        _mm256_fmadd_ps(_mm256_cvtph_ps(_mm_loadu_si128(
                                            (const __m128i *)(vr + 8 * b))),
                                        pj, a[i][b]);
            }
        }
        for (int i = 0; i < 2; i++)
            for (int b = 0; b < nb; b++)
                _mm256_storeu_ps(acc + 8 * (nb * (l + i) + b), a[i][b]);
    }
    pv_tree(out, acc, d0, nb);
}

/* out[0..hd) = sum_j p_j v_j over n positions, in the reference's lanes
 * (j % 16) and tree, 32 dims (one 64-byte line of a value row) at a time.
 * acc holds 16 x 32 floats. */
static void pv_row(float *out, const float *p, const eng_fp16 *v, size_t stride,
                   int hd, int n, float *acc) {
    for (int d0 = 0; d0 < hd; d0 += 32) {
        switch ((hd - d0) / 8) {
        case 1:
            pv_dims(out, p, v, stride, d0, 1, n, acc);
            break;
        case 2:
            pv_dims(out, p, v, stride, d0, 2, n, acc);
            break;
        case 3:
            pv_dims(out, p, v, stride, d0, 3, n, acc);
            break;
        default:
            pv_dims(out, p, v, stride, d0, 4, n, acc);
            break;
        }
    }
}

/* pv_dims for two rows of attention over the same positions (query heads
 * of one KV head): each value vector is converted once for both, where
 * the two rows alone convert it twice. One lane at a time with both rows'
 * accumulators in registers (eight FMA chains, as the lane pairs above
 * give one row); each row's lanes take their positions in the same order,
 * so the sums are pv_dims' bit for bit. */
static inline __attribute__((always_inline)) void
pv_dims2(float *out0, const float *p0, float *out1, const float *p1,
         const eng_fp16 *v, size_t stride, int d0, const int nb, int n,
         float *acc0, float *acc1) {
    for (int l = 0; l < 16; l++) {
        __m256 a0[4], a1[4];
        for (int b = 0; b < nb; b++)
            a0[b] = a1[b] = _mm256_setzero_ps();
        for (int j = l; j < n; j += 16) {
            const __m256 q0 = _mm256_broadcast_ss(p0 + j);
            const __m256 q1 = _mm256_broadcast_ss(p1 + j);
            const eng_fp16 *vr = v + (size_t)j * stride + d0;
            for (int b = 0; b < nb; b++) {
                const __m256 vb = _mm256_cvtph_ps(
                    _mm_loadu_si128((const __m128i *)(vr + 8 * b)));
                a0[b] = _mm256_fmadd_ps(vb, q0, a0[b]);
                a1[b] = _mm256_fmadd_ps(vb, q1, a1[b]);
            }
        }
        for (int b = 0; b < nb; b++) {
            _mm256_storeu_ps(acc0 + 8 * (nb * l + b), a0[b]);
            _mm256_storeu_ps(acc1 + 8 * (nb * l + b), a1[b]);
        }
    }
    pv_tree(out0, acc0, d0, nb);
    pv_tree(out1, acc1, d0, nb);
}

/* pv_row for two rows with the same positions; acc holds 2 x 16 x 32
 * floats. */
static void pv_row2(float *out0, const float *p0, float *out1, const float *p1,
                    const eng_fp16 *v, size_t stride, int hd, int n,
                    float *acc) {
    float *acc1 = acc + 16 * 32;
    for (int d0 = 0; d0 < hd; d0 += 32) {
        switch ((hd - d0) / 8) {
        case 1:
            pv_dims2(out0, p0, out1, p1, v, stride, d0, 1, n, acc, acc1);
            break;
        case 2:
            pv_dims2(out0, p0, out1, p1, v, stride, d0, 2, n, acc, acc1);
            break;
        case 3:
            pv_dims2(out0, p0, out1, p1, v, stride, d0, 3, n, acc, acc1);
            break;
        default:
            pv_dims2(out0, p0, out1, p1, v, stride, d0, 4, n, acc, acc1);
            break;
        }
    }
}

/* eng__expf_vec on eight lanes: the same FMAs, and scale_pow2's exact
 * scaling (two steps beyond the normal exponents, the first exact), so
 * each lane rounds once where the reference does. */
static inline __m256 expf8(__m256 x) {
    const __m256 shift = _mm256_set1_ps(0x1.8p23f);
    const __m256 z = _mm256_fmadd_ps(x, _mm256_set1_ps(0x1.715476p+0f), shift);
    const __m256 n = _mm256_sub_ps(z, shift);
    const __m256 b =
        _mm256_fnmadd_ps(n, _mm256_set1_ps(0x1.7f7d1cp-20f),
                         _mm256_fnmadd_ps(n, _mm256_set1_ps(0x1.62e4p-1f), x));
    const __m256 u = _mm256_mul_ps(b, b);
    __m256 j = _mm256_fmadd_ps(
        _mm256_fmadd_ps(_mm256_fmadd_ps(_mm256_set1_ps(0x1.0e4020p-7f), b,
                                        _mm256_set1_ps(0x1.573e2ep-5f)),
                        u,
                        _mm256_fmadd_ps(_mm256_set1_ps(0x1.555e66p-3f), b,
                                        _mm256_set1_ps(0x1.fffdb6p-2f))),
        u,
        _mm256_fmadd_ps(_mm256_set1_ps(0x1.ffffecp-1f), b,
                        _mm256_set1_ps(1.0f)));
    __m256i ni = _mm256_cvtps_epi32(n); /* n is an integer: exact */
    const __m256i lo = _mm256_cmpgt_epi32(_mm256_set1_epi32(-126), ni);
    const __m256i hi = _mm256_cmpgt_epi32(ni, _mm256_set1_epi32(127));
    j = _mm256_mul_ps(
        j, _mm256_blendv_ps(_mm256_blendv_ps(_mm256_set1_ps(1.0f),
                                             _mm256_set1_ps(0x1p-100f),
                                             _mm256_castsi256_ps(lo)),
                            _mm256_set1_ps(0x1p100f), _mm256_castsi256_ps(hi)));
    ni = _mm256_add_epi32(
        ni, _mm256_sub_epi32(_mm256_and_si256(lo, _mm256_set1_epi32(100)),
                             _mm256_and_si256(hi, _mm256_set1_epi32(100))));
    __m256 r = _mm256_mul_ps(
        j, _mm256_castsi256_ps(_mm256_slli_epi32(
               _mm256_add_epi32(ni, _mm256_set1_epi32(127)), 23)));
    /* |n| > 192 or NaN: +inf above, NaN x stays, 0 below */
    const __m256 ok = _mm256_cmp_ps(_mm256_andnot_ps(_mm256_set1_ps(-0.0f), n),
                                    _mm256_set1_ps(192.0f), _CMP_LE_OQ);
    if (_mm256_movemask_ps(ok) != 0xff) {
        const __m256 pos = _mm256_cmp_ps(n, _mm256_setzero_ps(), _CMP_GT_OQ);
        const __m256 nan = _mm256_cmp_ps(x, x, _CMP_UNORD_Q);
        __m256 sp = _mm256_and_ps(nan, x);
        sp = _mm256_blendv_ps(sp, _mm256_set1_ps(INFINITY), pos);
        r = _mm256_blendv_ps(sp, r, ok);
    }
    return r;
}

/* Lanes [0, left) of eight. */
static inline __m256i lanes8(int left) {
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(left),
                              _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

/* eng__attn_softmax_ref eight lanes at a time: the same maximum (NaNs
 * skipped: vmaxps returns its second operand when the first is NaN), the
 * same exps, each block of 16 summed in the reference's tree (v[i] +
 * v[i + 8], then halves, then (0 + 2) + (1 + 3)) into the same double
 * sum, and the same product by its inverse. The exps past n are computed
 * and neither stored nor summed. */
static void softmax_avx2(float *x, int n) {
    __m256 mv = _mm256_set1_ps(-INFINITY);
    int i = 0;
    for (; i + 8 <= n; i += 8)
        mv = _mm256_max_ps(_mm256_loadu_ps(x + i), mv);
    float m8[8], max = -INFINITY;
    _mm256_storeu_ps(m8, mv);
    for (int l = 0; l < 8; l++)
        if (m8[l] > max)
            max = m8[l];
    for (; i < n; i++)
        if (x[i] > max)
            max = x[i];
    const __m256 mx = _mm256_set1_ps(max);
    double sum = 0.0;
    for (i = 0; i < n; i += 16) {
        const int left = n - i;
        const __m256i k0 = lanes8(left), k1 = lanes8(left - 8);
        __m256 e0 = expf8(_mm256_sub_ps(_mm256_maskload_ps(x + i, k0), mx));
        __m256 e1 = expf8(_mm256_sub_ps(_mm256_maskload_ps(x + i + 8, k1), mx));
        e0 = _mm256_and_ps(e0, _mm256_castsi256_ps(k0));
        e1 = _mm256_and_ps(e1, _mm256_castsi256_ps(k1));
        _mm256_maskstore_ps(x + i, k0, e0);
        _mm256_maskstore_ps(x + i + 8, k1, e1);
        const __m256 s8 = _mm256_add_ps(e0, e1);
        __m128 s4 = _mm_add_ps(_mm256_castps256_ps128(s8),
                               _mm256_extractf128_ps(s8, 1));
        s4 = _mm_add_ps(s4, _mm_movehl_ps(s4, s4));
        sum += (double)_mm_cvtss_f32(_mm_add_ss(s4, _mm_movehdup_ps(s4)));
    }
    const __m256 inv = _mm256_set1_ps((float)(1.0 / sum));
    for (i = 0; i < n; i += 8) {
        const __m256i k0 = lanes8(n - i);
        _mm256_maskstore_ps(x + i, k0,
                            _mm256_mul_ps(_mm256_maskload_ps(x + i, k0), inv));
    }
}

void eng__attn_group_avx2(float *out, const float *q, size_t ts,
                          const eng_fp16 *k, const eng_fp16 *v, size_t stride,
                          int hd, int ng, int nt, int n_pos, float scale,
                          float *scratch) {
    if (hd % 8) {
        eng__attn_group_ref(out, q, ts, k, v, stride, hd, ng, nt, n_pos, scale,
                            scratch);
        return;
    }
    const int rows = nt * ng;
    const int npos_max = n_pos + nt - 1;
    /* per row: its scores (npos_max + 16), then its query rounded to fp16
     * (hd); after all rows, the transposed keys or the p.V lanes */
    const size_t row_floats = (size_t)npos_max + 16 + (size_t)hd;
    float *kt = scratch + (size_t)rows * row_floats;
    for (int r = 0; r < rows; r++) {
        const int t = r / ng, g = r % ng;
        float *qf = scratch + (size_t)r * row_floats + npos_max + 16;
        memcpy(qf, q + (size_t)t * ts + (size_t)g * hd,
               (size_t)hd * sizeof *qf);
        round_fp16(qf, hd);
    }
    for (int j0 = 0; j0 < npos_max; j0 += KT_POS) {
        const int np = npos_max - j0 < KT_POS ? npos_max - j0 : KT_POS;
        keys_t8(kt, k, stride, hd, j0, np);
        /* rows by pairs; row r sees n_pos + r / ng positions, so a row
         * that needs this block is followed by rows that need it too */
        int r = 0;
        while (r < rows && n_pos + r / ng <= j0)
            r++;
        for (; r < rows; r += 2) {
            const int n0 = n_pos + r / ng; /* token t sees n_pos + t */
            const int m0 = n0 - j0 < KT_POS ? n0 - j0 : KT_POS;
            float *att0 = scratch + (size_t)r * row_floats;
            if (r + 1 == rows) {
                scores_row(att0, att0 + npos_max + 16, kt, hd, j0, m0, scale);
                break;
            }
            const int n1 = n_pos + (r + 1) / ng;
            float *att1 = att0 + row_floats;
            scores_rows2(
                att0, att0 + npos_max + 16, m0, att1, att1 + npos_max + 16,
                n1 - j0 < KT_POS ? n1 - j0 : KT_POS, kt, hd, j0, scale);
        }
    }
    for (int r = 0; r < rows; r++) {
        const int t = r / ng, g = r % ng;
        const int n_r = n_pos + t;
        float *att = scratch + (size_t)r * row_floats;
        softmax_avx2(att, n_r);
        round_fp16(att, n_r);
        /* the next row of the same token sees the same positions; the
         * two rows' lanes (1024 floats) fit the keys' 32 x hd if hd >= 32 */
        if (hd >= 32 && r + 1 < rows && (r + 1) / ng == t) {
            float *att1 = att + row_floats;
            softmax_avx2(att1, n_r);
            round_fp16(att1, n_r);
            pv_row2(out + (size_t)t * ts + (size_t)g * hd, att,
                    out + (size_t)t * ts + (size_t)(g + 1) * hd, att1, v,
                    stride, hd, n_r, kt);
            r++;
            continue;
        }
        pv_row(out + (size_t)t * ts + (size_t)g * hd, att, v, stride, hd, n_r,
               kt);
    }
}

/* eng__swiglu_ref eight lanes at a time (the leftover lanes by the
 * reference itself): the same exp, division and product. */
void eng__swiglu_avx2(float *o, const float *g, const float *u, int n) {
    const __m256 one = _mm256_set1_ps(1.0f);
    int i = 0;
    for (; i + 8 <= n; i += 8) {
        const __m256 gv = _mm256_loadu_ps(g + i);
        const __m256 e = expf8(_mm256_sub_ps(_mm256_setzero_ps(), gv));
        _mm256_storeu_ps(o + i,
                         _mm256_mul_ps(_mm256_div_ps(gv, _mm256_add_ps(one, e)),
                                       _mm256_loadu_ps(u + i)));
    }
    if (i < n)
        eng__swiglu_ref(o + i, g + i, u + i, n - i);
}

#endif
