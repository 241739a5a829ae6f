/*
 * attn_avx512.c — one (token, head) unit of attention with AVX-512,
 * bit-identical to eng__attn_head_ref in attn.c (compiled with the AVX-512
 * flags; attn.c calls it only after cpu.c found AVX-512).
 *
 * The reference already sums in 16 lanes, so each of its 16-float arrays
 * is one zmm register here: fmaf per lane is one vfmadd, its lane tree
 * (halves, quarters, pairs) is the same adds on register halves, and the
 * vector exp is the scalar eng__expf_vec with the same FMAs (ldexpf is
 * vscalefps: both scale exactly and round subnormal results to nearest).
 * The p.V sum keeps "lane j % 16 takes position j" by holding the 16 lane
 * accumulators of 16 output dims in 16 registers; the final tree then adds
 * whole registers, dim by dim the same adds as the scalar tree.
 */
#include "attn_arch.h"

#if defined(__x86_64__)

#include <immintrin.h>
#include <math.h>

#define ALWAYS_INLINE static inline __attribute__((always_inline))

/* sum16_tree of one register: (v[i] + v[i+8]), then (+ [i+4]), then
 * (s4[0] + s4[2]) + (s4[1] + s4[3]). */
ALWAYS_INLINE float tree16(__m512 v) {
    __m256 s8 = _mm256_add_ps(_mm512_castps512_ps256(v),
                              _mm512_extractf32x8_ps(v, 1));
    __m128 s4 = _mm_add_ps(_mm256_castps256_ps128(s8),
                           _mm256_extractf128_ps(s8, 1));
    __m128 t = _mm_add_ps(s4, _mm_movehl_ps(s4, s4));
    return _mm_cvtss_f32(_mm_add_ss(t, _mm_movehdup_ps(t)));
}

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

/* softmax of attn.c: max, blocks of 16 exps summed by the lane tree and
 * accumulated in double, then one multiply by the float inverse. */
static void softmax16(float *x, int n) {
    __m512 vmax = _mm512_set1_ps(-INFINITY);
    for (int i = 0; i < n; i += 16)
        vmax = _mm512_max_ps(
            vmax, _mm512_mask_loadu_ps(_mm512_set1_ps(-INFINITY),
                                       tail_mask(n - i), x + i));
    const __m512 max = _mm512_set1_ps(_mm512_reduce_max_ps(vmax));
    double sum = 0.0;
    for (int i = 0; i < n; i += 16) {
        __mmask16 m = tail_mask(n - i);
        __m512 e = expf16(_mm512_sub_ps(_mm512_maskz_loadu_ps(m, x + i), max));
        e = _mm512_maskz_mov_ps(m, e);
        _mm512_mask_storeu_ps(x + i, m, e);
        sum += (double)tree16(e);
    }
    const __m512 inv = _mm512_set1_ps((float)(1.0 / sum));
    for (int i = 0; i < n; i += 16) {
        __mmask16 m = tail_mask(n - i);
        _mm512_mask_storeu_ps(
            x + i, m, _mm512_mul_ps(_mm512_maskz_loadu_ps(m, x + i), inv));
    }
}

ALWAYS_INLINE __m512 load_ph(const eng_fp16 *p) {
    return _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)p));
}

/* Sixteen p.V steps at positions j0..j0+15, lane l taking j0 + l. */
#define PV_STEP(l)                                                             \
    acc[l] = _mm512_fmadd_ps(load_ph(v + (size_t)(j0 + (l)) * stride + d0),    \
                             _mm512_set1_ps(att[j0 + (l)]), acc[l])

#define PV_TAIL(l)                                                             \
    if (j0 + (l) < n_pos)                                                      \
    PV_STEP(l)

void eng__attn_head_avx512(float *out, const float *q, const eng_fp16 *k,
                           const eng_fp16 *v, size_t stride, int hd, int n_pos,
                           float scale, float *att, eng_fp16 *q16) {
    if (hd % 16) {
        eng__attn_head_ref(out, q, k, v, stride, hd, n_pos, scale, att, q16);
        return;
    }
    for (int d = 0; d < hd; d += 16)
        _mm256_storeu_si256(
            (__m256i *)(q16 + d),
            _mm512_cvtps_ph(_mm512_loadu_ps(q + d),
                            _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));

    /* scores: one 16-lane FMA chain along the head per position */
    for (int j = 0; j < n_pos; j++) {
        const eng_fp16 *kj = k + (size_t)j * stride;
        __m512 acc = _mm512_setzero_ps();
        for (int d = 0; d < hd; d += 16)
            acc = _mm512_fmadd_ps(load_ph(kj + d), load_ph(q16 + d), acc);
        att[j] = tree16(acc) * scale;
    }

    softmax16(att, n_pos);

    /* weights rounded to fp16 once (the reference rounds them per dim) */
    for (int j = 0; j < n_pos; j += 16) {
        __mmask16 m = tail_mask(n_pos - j);
        __m512 p = _mm512_maskz_loadu_ps(m, att + j);
        p = _mm512_cvtph_ps(_mm512_cvtps_ph(
            p, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
        _mm512_mask_storeu_ps(att + j, m, p);
    }

    for (int d0 = 0; d0 < hd; d0 += 16) {
        __m512 acc[16];
        for (int l = 0; l < 16; l++)
            acc[l] = _mm512_setzero_ps();
        int j0 = 0;
        for (; j0 + 16 <= n_pos; j0 += 16) {
            PV_STEP(0); PV_STEP(1); PV_STEP(2); PV_STEP(3);
            PV_STEP(4); PV_STEP(5); PV_STEP(6); PV_STEP(7);
            PV_STEP(8); PV_STEP(9); PV_STEP(10); PV_STEP(11);
            PV_STEP(12); PV_STEP(13); PV_STEP(14); PV_STEP(15);
        }
        /* constant lane indices keep acc[] in registers */
        PV_TAIL(0); PV_TAIL(1); PV_TAIL(2); PV_TAIL(3);
        PV_TAIL(4); PV_TAIL(5); PV_TAIL(6); PV_TAIL(7);
        PV_TAIL(8); PV_TAIL(9); PV_TAIL(10); PV_TAIL(11);
        PV_TAIL(12); PV_TAIL(13); PV_TAIL(14);
        __m512 s8[8], s4[4];
        for (int i = 0; i < 8; i++)
            s8[i] = _mm512_add_ps(acc[i], acc[i + 8]);
        for (int i = 0; i < 4; i++)
            s4[i] = _mm512_add_ps(s8[i], s8[i + 4]);
        _mm512_storeu_ps(out + d0,
                         _mm512_add_ps(_mm512_add_ps(s4[0], s4[2]),
                                       _mm512_add_ps(s4[1], s4[3])));
    }
}

#endif
