/*
 * dots_avx2.h — the AVX2 one-row dots of Q8_0, Q4_0 and Q5_0 against Q8_0
 * activations as inline bodies over the signed int8 dot of 32 bytes
 * (engine-internal; included only by ISA files compiled with AVX2 flags).
 *
 * quant_avx2.c instantiates them with vpmaddubsw + vpmaddwd,
 * quant_avxvnni.c with AVX-VNNI's vpdpbusd. Both leave in int32 lane k the
 * exact sum of products 4k..4k+3 (|x| <= 127 on the activation side, so
 * vpmaddubsw never saturates), and the float steps are the same code, so
 * the two are bit-identical (test kernels_avxvnni).
 */
#ifndef NIB_ENGINE_ARCH_DOTS_AVX2_H
#define NIB_ENGINE_ARCH_DOTS_AVX2_H

#include <immintrin.h>
#include <string.h>

#include "quant_x86.h"

#ifndef ALWAYS_INLINE
#define ALWAYS_INLINE static inline __attribute__((always_inline))
#endif

/* Fully unrolled column loops keep the per-column accumulators in
 * registers: without, the AVX2 batched Q8_0 dot ran 36-37 against 44-45
 * GMAC/s and the batched Q6_K 36 against 59-60 (one thread, 8 columns in
 * cache). */
#define UNROLL_COLUMNS _Pragma("GCC unroll 4")

/* Lane k: x[4k..4k+3] . y[4k..4k+3], x and y signed. */
typedef __m256i (*dot_i8_fn)(__m256i x, __m256i y);

ALWAYS_INLINE void dot_q8_0_body(int n, float *restrict s,
                                 const void *restrict vx,
                                 const void *restrict vy, dot_i8_fn dot_i8) {
    const block_q8_0 *x = vx;
    const block_q8_0 *y = vy;
    __m256 acc = _mm256_setzero_ps();
    for (int i = 0; i < n / QK8_0; i++) {
        const __m256 d =
            _mm256_set1_ps(fp16_to_f32_f16c(x[i].d) * fp16_to_f32_f16c(y[i].d));
        __m256i qx = _mm256_loadu_si256((const __m256i *)x[i].qs);
        __m256i qy = _mm256_loadu_si256((const __m256i *)y[i].qs);
        acc = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(dot_i8(qx, qy)), acc);
    }
    *s = hsum_ps_256(acc);
}

ALWAYS_INLINE void dot_q4_0_body(int n, float *restrict s,
                                 const void *restrict vx,
                                 const void *restrict vy, dot_i8_fn dot_i8) {
    const block_q4_0 *x = vx;
    const block_q8_0 *y = vy;
    const __m256i off = _mm256_set1_epi8(8);
    __m256 acc = _mm256_setzero_ps();
    for (int i = 0; i < n / QK8_0; i++) {
        const __m256 d =
            _mm256_set1_ps(fp16_to_f32_f16c(x[i].d) * fp16_to_f32_f16c(y[i].d));
        __m256i qx = _mm256_sub_epi8(nibbles32(x[i].qs), off);
        __m256i qy = _mm256_loadu_si256((const __m256i *)y[i].qs);
        acc = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(dot_i8(qx, qy)), acc);
    }
    *s = hsum_ps_256(acc);
}

/* Q5_0 block i's signed quants (q - 16): the nibbles from one broadcast
 * load and a per-lane shift, the fifth bits from a broadcast load, a byte
 * shuffle and a compare (four operations fewer per block than nibbles32
 * and bits32_to_bytes from registers; 11.4 GB/s per core in cache was what
 * an AVX2 laptop's Q4_K_M decode ran at). */
static inline __m256i q5_0_quants_avx2(const block_q5_0 *b) {
    const __m256i m4 = _mm256_set1_epi8(0xf);
    const __m256i q =
        _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)b->qs));
    const __m256i nib = _mm256_and_si256(
        _mm256_srlv_epi32(q, _mm256_setr_epi32(0, 0, 0, 0, 4, 4, 4, 4)), m4);
    /* byte j takes qh byte j / 8, and becomes all ones when its bit j % 8
     * is set: OR-ing every other bit in first leaves -1 only then */
    uint32_t qh;
    memcpy(&qh, b->qh, 4);
    const __m256i shuf =
        _mm256_setr_epi8(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2,
                         2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3);
    const __m256i others = _mm256_set1_epi64x((long long)0x7fbfdfeff7fbfdfeull);
    const __m256i set = _mm256_cmpeq_epi8(
        _mm256_or_si256(_mm256_shuffle_epi8(_mm256_set1_epi32((int)qh), shuf),
                        others),
        _mm256_set1_epi8(-1));
    /* q - 16 is the nibble when the 5th bit is set, nibble | 0xf0 (as
     * int8: nibble - 16) when it is clear */
    return _mm256_or_si256(
        nib, _mm256_andnot_si256(set, _mm256_set1_epi8((char)0xf0)));
}

ALWAYS_INLINE void dot_q5_0_body(int n, float *restrict s,
                                 const void *restrict vx,
                                 const void *restrict vy, dot_i8_fn dot_i8) {
    const block_q5_0 *x = vx;
    const block_q8_0 *y = vy;
    const int nb = n / QK8_0;
    __m256 acc = _mm256_setzero_ps();
    int i = 0;
    for (; i + 2 <= nb; i += 2) {
        /* the two blocks' fp16(dx) * fp16(dy) in one convert and multiply */
        const uint64_t h = (uint64_t)x[i].d | (uint64_t)x[i + 1].d << 16 |
                           (uint64_t)y[i].d << 32 | (uint64_t)y[i + 1].d << 48;
        const __m128 f = _mm_cvtph_ps(_mm_cvtsi64_si128((long long)h));
        const __m128 d01 = _mm_mul_ps(f, _mm_movehl_ps(f, f));
        for (int k = 0; k < 2; k++) {
            const __m256i qx = q5_0_quants_avx2(x + i + k);
            const __m256i qy = _mm256_loadu_si256((const __m256i *)y[i + k].qs);
            const __m256 d =
                _mm256_broadcastss_ps(k ? _mm_movehdup_ps(d01) : d01);
            acc = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(dot_i8(qx, qy)), acc);
        }
    }
    for (; i < nb; i++) {
        const __m256 d =
            _mm256_set1_ps(fp16_to_f32_f16c(x[i].d) * fp16_to_f32_f16c(y[i].d));
        acc =
            _mm256_fmadd_ps(d,
                            _mm256_cvtepi32_ps(dot_i8(
                                q5_0_quants_avx2(x + i),
                                _mm256_loadu_si256((const __m256i *)y[i].qs))),
                            acc);
    }
    *s = hsum_ps_256(acc);
}

/* Up to four columns per pass (see dot_q8_0_nrc_body); larger batches go
 * through in groups of four, each group still reading the weight row from
 * L1 only. The *_impl functions are inlined per column count. */
/* Half h of a Q6_K block (ql + 64 h, qh + 32 h) as four vectors of 32
 * quants (0..63, stored + 32): vector k holds quants 32k..32k+31, the
 * low or high nibbles of ql and bit pair k of qh. */
static inline void q6_quants_avx2(const uint8_t *ql, const uint8_t *qhp,
                                  __m256i q[4]) {
    const __m256i m4 = _mm256_set1_epi8(0xf), m30 = _mm256_set1_epi8(0x30);
    const __m256i l0 = _mm256_loadu_si256((const __m256i *)ql);
    const __m256i l1 = _mm256_loadu_si256((const __m256i *)(ql + 32));
    const __m256i qh = _mm256_loadu_si256((const __m256i *)qhp);
    /* bit pair k of qh moved to bits 4-5 by one shift and one mask: the
     * 16-bit shifts bring nothing from the other byte into those bits */
    q[0] = _mm256_or_si256(_mm256_and_si256(l0, m4),
                           _mm256_and_si256(_mm256_slli_epi16(qh, 4), m30));
    q[1] = _mm256_or_si256(_mm256_and_si256(l1, m4),
                           _mm256_and_si256(_mm256_slli_epi16(qh, 2), m30));
    q[2] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l0, 4), m4),
                           _mm256_and_si256(qh, m30));
    q[3] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l1, 4), m4),
                           _mm256_and_si256(_mm256_srli_epi16(qh, 2), m30));
}

/* Chunk j of a Q4_K / Q5_K super-block (j constant once its loop is
 * unrolled): lo the low nibbles of qs[32j..32j+31], hi the high ones, and
 * for Q5_K (five) their 5th bits, bits 2j and 2j + 1 of qh, each brought
 * to bit 4 by one shift and one mask (the 16-bit shifts move bit 4 only
 * within its byte), where a mask, two shifts per bit and a shift of qh
 * between chunks took eight operations. */
#define K4_CHUNK_UNROLL _Pragma("GCC unroll 4")
ALWAYS_INLINE void k4_chunk_avx2(const uint8_t *qs, __m256i qh, const int j,
                                 const int five, __m256i *lo, __m256i *hi) {
    const __m256i m4 = _mm256_set1_epi8(0xf);
    const __m256i q = _mm256_loadu_si256((const __m256i *)(qs + 32 * j));
    *lo = _mm256_and_si256(q, m4);
    *hi = _mm256_and_si256(_mm256_srli_epi16(q, 4), m4);
    if (five) {
        const __m256i m10 = _mm256_set1_epi8(0x10);
        const __m256i h0 = j < 2 ? _mm256_slli_epi16(qh, 4 - 2 * j)
                                 : _mm256_srli_epi16(qh, 2 * j - 4);
        const __m256i h1 = j < 2 ? _mm256_slli_epi16(qh, 3 - 2 * j)
                                 : _mm256_srli_epi16(qh, 2 * j - 3);
        *lo = _mm256_or_si256(*lo, _mm256_and_si256(h0, m10));
        *hi = _mm256_or_si256(*hi, _mm256_and_si256(h1, m10));
    }
}

/* The 8 Q4_K/Q5_K mins (int16, from k4_scales_mins) each twice: lane k of
 * their vpmaddwd with the 16 bsums is min[k] * (bsum[2k] + bsum[2k+1]). */
static inline __m256i k4_mins_twice(__m128i mn) {
    return _mm256_set_m128i(_mm_unpackhi_epi16(mn, mn),
                            _mm_unpacklo_epi16(mn, mn));
}

static inline __m256i k4_mins_bsums(__m256i mins2, const int16_t bsums[16]) {
    return _mm256_madd_epi16(mins2, _mm256_loadu_si256((const __m256i *)bsums));
}

/* The 8 int16 sub-block scales in both lanes; word w of them in every
 * int16 lane is one vpshufb (K4_SCALE_PICK), where _mm256_set1_epi16 of a
 * byte in memory was a load, a move and a broadcast per chunk half. */
static const uint8_t k4_scale_pick[8][32] = {
#define K4_PICK(w)                                                             \
    {                                                                          \
        2 * w, 2 * w + 1, 2 * w, 2 * w + 1, 2 * w, 2 * w + 1, 2 * w,           \
            2 * w + 1, 2 * w, 2 * w + 1, 2 * w, 2 * w + 1, 2 * w, 2 * w + 1,   \
            2 * w, 2 * w + 1, 2 * w, 2 * w + 1, 2 * w, 2 * w + 1, 2 * w,       \
            2 * w + 1, 2 * w, 2 * w + 1, 2 * w, 2 * w + 1, 2 * w, 2 * w + 1,   \
            2 * w, 2 * w + 1, 2 * w, 2 * w + 1                                 \
    }
    K4_PICK(0), K4_PICK(1), K4_PICK(2), K4_PICK(3),
    K4_PICK(4), K4_PICK(5), K4_PICK(6), K4_PICK(7),
#undef K4_PICK
};

static inline __m256i k4_scale_pick16(__m256i sc2, int w) {
    return _mm256_shuffle_epi8(
        sc2, _mm256_loadu_si256((const __m256i *)k4_scale_pick[w]));
}

#define NRC_SPLIT4(name, impl)                                                 \
    void name(int n, int nrc, float *restrict s, const void *restrict vx,      \
              const void *restrict vy, size_t st) {                            \
        const char *y = vy;                                                    \
        while (nrc > 0) {                                                      \
            int k = nrc > 4 ? 4 : nrc;                                         \
            switch (k) {                                                       \
            case 1:                                                            \
                impl(n, 1, s, vx, y, st);                                      \
                break;                                                         \
            case 2:                                                            \
                impl(n, 2, s, vx, y, st);                                      \
                break;                                                         \
            case 3:                                                            \
                impl(n, 3, s, vx, y, st);                                      \
                break;                                                         \
            default:                                                           \
                impl(n, 4, s, vx, y, st);                                      \
                break;                                                         \
            }                                                                  \
            s += k;                                                            \
            y += (size_t)k * st;                                               \
            nrc -= k;                                                          \
        }                                                                      \
    }

/* vec_dot_nrc of Q8_0 for up to four columns (the 16 ymm registers hold
 * four accumulators): per column the steps of dot_q8_0_body, with the
 * weights' |x| formed once; dot_u8i8 multiplies it (unsigned) by the
 * activations carrying x's sign. */
ALWAYS_INLINE void dot_q8_0_nrc_body(int n, const int nrc, float *restrict s,
                                     const void *restrict vx,
                                     const void *restrict vy, size_t st,
                                     dot_i8_fn dot_u8i8) {
    const block_q8_0 *x = vx;
    __m256 acc[4];
    UNROLL_COLUMNS
    for (int c = 0; c < nrc; c++)
        acc[c] = _mm256_setzero_ps();
    for (int i = 0; i < n / QK8_0; i++) {
        const __m256i qx = _mm256_loadu_si256((const __m256i *)x[i].qs);
        const __m256i ax = _mm256_sign_epi8(qx, qx);
        const float dx = fp16_to_f32_f16c(x[i].d);
        UNROLL_COLUMNS
        for (int c = 0; c < nrc; c++) {
            const block_q8_0 *y =
                (const block_q8_0 *)((const char *)vy + (size_t)c * st) + i;
            __m256i sy = _mm256_sign_epi8(
                _mm256_loadu_si256((const __m256i *)y->qs), qx);
            __m256i p = dot_u8i8(ax, sy);
            acc[c] =
                _mm256_fmadd_ps(_mm256_set1_ps(dx * fp16_to_f32_f16c(y->d)),
                                _mm256_cvtepi32_ps(p), acc[c]);
        }
    }
    UNROLL_COLUMNS
    for (int c = 0; c < nrc; c++)
        s[c] = hsum_ps_256(acc[c]);
}
#endif
