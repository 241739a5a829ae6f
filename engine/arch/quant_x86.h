/*
 * quant_x86.h — small AVX2 helpers shared by quant_avx2.c and
 * quant_avx512.c. Static inline, so each ISA file gets its own copy built
 * with its own -m flags; include only from files compiled with at least
 * AVX2 + FMA + F16C.
 */
#ifndef NIB_ENGINE_ARCH_QUANT_X86_H
#define NIB_ENGINE_ARCH_QUANT_X86_H

#include <immintrin.h>
#include <stdint.h>
#include <string.h>

#include "../quant.h"

/* One fp16 scale to float with F16C: exact, and far cheaper than the
 * portable eng_fp16_to_fp32 call on the 32-element block paths, where two
 * scales per 34 bytes would otherwise dominate. */
static inline float fp16_to_f32_f16c(uint16_t h) {
    return _cvtsh_ss(h);
}

static inline float hsum_ps_256(__m256 v) {
    __m128 s =
        _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

#ifdef __AVX512F__
/* Sum of 16 lanes with a fixed association (halves, quarters, then
 * (l0 + l2) + (l1 + l3)), spelled out rather than left to
 * _mm512_reduce_add_ps, whose order is the compiler's: hsum_ps_512_x4
 * below must reproduce it bit for bit on four vectors at once. */
static inline float hsum_ps_512(__m512 v) {
    __m256 t =
        _mm256_add_ps(_mm512_extractf32x8_ps(v, 1), _mm512_castps512_ps256(v));
    __m128 q =
        _mm_add_ps(_mm256_extractf128_ps(t, 1), _mm256_castps256_ps128(t));
    q = _mm_add_ps(q, _mm_shuffle_ps(q, q, _MM_SHUFFLE(1, 0, 3, 2)));
    return _mm_cvtss_f32(_mm_add_ss(q, _mm_movehdup_ps(q)));
}

/* out[k] = hsum_ps_512(v[k]) for k < 4, the same adds on four vectors
 * transposed: a third of the shuffles of four separate sums. */
static inline void hsum_ps_512_x4(const __m512 v[4], float *out) {
    /* halves: 128-bit quarters (q0 + q2, q1 + q3) of two vectors each */
    __m512 x = _mm512_add_ps(
        _mm512_shuffle_f32x4(v[0], v[1], _MM_SHUFFLE(3, 2, 3, 2)),
        _mm512_shuffle_f32x4(v[0], v[1], _MM_SHUFFLE(1, 0, 1, 0)));
    __m512 y = _mm512_add_ps(
        _mm512_shuffle_f32x4(v[2], v[3], _MM_SHUFFLE(3, 2, 3, 2)),
        _mm512_shuffle_f32x4(v[2], v[3], _MM_SHUFFLE(1, 0, 1, 0)));
    /* quarters: one 128-bit lane per vector */
    __m512 z =
        _mm512_add_ps(_mm512_shuffle_f32x4(x, y, _MM_SHUFFLE(3, 1, 3, 1)),
                      _mm512_shuffle_f32x4(x, y, _MM_SHUFFLE(2, 0, 2, 0)));
    z = _mm512_add_ps(z, _mm512_permute_ps(z, _MM_SHUFFLE(1, 0, 3, 2)));
    z = _mm512_add_ps(z, _mm512_permute_ps(z, _MM_SHUFFLE(2, 3, 0, 1)));
    _mm512_mask_compressstoreu_ps(out, 0x1111, z);
}
#endif

static inline float hmax_ps_256(__m256 v) {
    __m128 m =
        _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    m = _mm_max_ps(m, _mm_movehl_ps(m, m));
    m = _mm_max_ss(m, _mm_movehdup_ps(m));
    return _mm_cvtss_f32(m);
}

static inline int32_t hsum_i32_256(__m256i v) {
    __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v),
                              _mm256_extracti128_si256(v, 1));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4e));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xb1));
    return _mm_cvtsi128_si32(s);
}

/* 32 int32 in element order (a = 0..7, b = 8..15, ...) to 32 int8 with
 * signed saturation. The packs work per 128-bit lane, which scrambles the
 * dword order; the final permute restores it. */
static inline __m256i pack_i32x32_to_i8(__m256i a, __m256i b, __m256i c,
                                        __m256i d) {
    __m256i ab = _mm256_packs_epi32(a, b);
    __m256i cd = _mm256_packs_epi32(c, d);
    __m256i abcd = _mm256_packs_epi16(ab, cd);
    return _mm256_permutevar8x32_epi32(
        abcd, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
}

/* 16 bytes of packed nibbles to 32 bytes in element order: low nibbles are
 * elements 0..15, high nibbles 16..31 (the Q4_0/Q4_1/Q5 layout). */
static inline __m256i nibbles32(const uint8_t *qs) {
    __m128i q = _mm_loadu_si128((const __m128i *)qs);
    const __m128i m4 = _mm_set1_epi8(0xf);
    return _mm256_set_m128i(_mm_and_si128(_mm_srli_epi16(q, 4), m4),
                            _mm_and_si128(q, m4));
}

/* Byte j = 0xff where bit j of bits is set, else 0 (Q5 high bits). */
static inline __m256i bits32_to_bytes(uint32_t bits) {
    const __m256i shuf =
        _mm256_setr_epi8(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2,
                         2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3);
    const __m256i sel = _mm256_set1_epi64x((long long)0x8040201008040201ull);
    __m256i v = _mm256_shuffle_epi8(_mm256_set1_epi32((int)bits), shuf);
    return _mm256_cmpeq_epi8(_mm256_and_si256(v, sel), sel);
}

/* One Q8_0 / Q4_0 / Q5_0 block's quants as 32 signed bytes in element
 * order: the leftover blocks of the four-block loops. */
static inline __m256i q8_0_block_i8(const block_q8_0 *a) {
    return _mm256_loadu_si256((const __m256i *)a->qs);
}
static inline __m256i q4_0_block_i8(const block_q4_0 *a) {
    return _mm256_sub_epi8(nibbles32(a->qs), _mm256_set1_epi8(8));
}
static inline __m256i q5_0_block_i8(const block_q5_0 *a) {
    uint32_t qh;
    memcpy(&qh, a->qh, 4);
    return _mm256_or_si256(
        nibbles32(a->qs),
        _mm256_andnot_si256(bits32_to_bytes(qh), _mm256_set1_epi8((char)0xf0)));
}

/* Eight int32 partial sums of x[i] * y[i] over 32 signed bytes each. */
static inline __m256i dot_i8_avx2(__m256i x, __m256i y) {
    __m256i p =
        _mm256_maddubs_epi16(_mm256_sign_epi8(x, x), _mm256_sign_epi8(y, x));
    return _mm256_madd_epi16(p, _mm256_set1_epi16(1));
}

/* Same for unsigned x (0..127 here, so maddubs never saturates). */
static inline __m256i dot_u8i8_avx2(__m256i x, __m256i y) {
    return _mm256_madd_epi16(_mm256_maddubs_epi16(x, y), _mm256_set1_epi16(1));
}

/* Q4_K/Q5_K's 12 scale bytes to the 8 sub-block scales and the 8 mins, as
 * int16, the 6-bit fields gathered in two 64-bit registers (scales and
 * mins 0-3: the low 6 bits of the first 8 bytes; 4-7: the nibbles of the
 * last 4 plus the top 2 bits of the first 8). Unpacked to byte arrays they
 * went through memory and back into vectors once per block (the AVX-512
 * Q4_K dot ran at 21 GB/s per core in cache with them). */
static inline void k4_scales_mins_u64(const uint8_t *q, uint64_t *sc,
                                      uint64_t *mn) {
    uint64_t lo;
    uint32_t hi;
    memcpy(&lo, q, 8);
    memcpy(&hi, q + 8, 4);
    /* bytes 0-3: sc[0..3], 4-7: mn[0..3] */
    const uint64_t a = lo & 0x3f3f3f3f3f3f3f3full;
    /* bytes 0-3: sc[4..7], 4-7: mn[4..7]: the low or high nibbles of the
     * last four bytes, and the top two bits of the first eight */
    const uint64_t b =
        (((uint64_t)hi | (uint64_t)(hi >> 4) << 32) & 0x0f0f0f0f0f0f0f0full) |
        ((lo >> 6) & 0x0303030303030303ull) << 4;
    *sc = (a & 0xffffffffu) | b << 32;
    *mn = a >> 32 | (b & ~0xffffffffull);
}

static inline void k4_scales_mins(const uint8_t *q, __m128i *sc, __m128i *mn) {
    uint64_t s, m;
    k4_scales_mins_u64(q, &s, &m);
    *sc = _mm_cvtepu8_epi16(_mm_cvtsi64_si128((long long)s));
    *mn = _mm_cvtepu8_epi16(_mm_cvtsi64_si128((long long)m));
}

/* The one-row K-quant dots (decode) prefetch the weights K_PREFETCH bytes
 * ahead, a block's lines per block. Rows lie one after another, so this
 * runs on into the next rows of the matrix (and harmlessly past its end:
 * prefetches do not fault).
 *   - AVX-512: without it one thread streamed Q4_K at 28 and Q6_K at
 *     28-29 GB/s, well under what the same loops do in cache and what the
 *     bus gives a core; with it, one thread, best of 5-7: Q4_K 1536-wide
 *     30-32, 4864-wide 35, 8960-wide 37-38; Q6_K 1536-wide 40-43,
 *     4864-wide 39, 8960-wide 45 GB/s. 8 and 16 KB measured alike, 4 and
 *     32 KB less.
 *   - AVX2, whose loops are slower than the bus: Q4_K 25-27 against 24-26
 *     GB/s, Q6_K 24-25 against 23-24, Q5_K even.
 * Prefetching whole rows ahead from matmul.c's row loop instead helped
 * the 1536-wide rows but cost 5-15% on 8960-wide ones: a burst of 79
 * prefetches at each row's start. */
#define K_PREFETCH 16384
static inline void k_prefetch(const void *block, size_t size) {
    const char *p = (const char *)block + K_PREFETCH;
    for (size_t o = 0; o < size; o += 64)
        _mm_prefetch(p + o, _MM_HINT_T0);
    _mm_prefetch(p + size - 1, _MM_HINT_T0);
}

#endif
