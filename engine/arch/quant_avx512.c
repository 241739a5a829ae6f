/*
 * quant_avx512.c — AVX-512 F/BW/DQ/VL + VNNI + BF16 kernels (compiled with
 * those -m flags; run only after cpu.c found all of them).
 *
 * Only kernels that beat their AVX2 twin live here; eng_quant_init installs
 * the AVX2 table first and this one over it. The int8 dots use VNNI's
 * vpdpbusd (u8 x s8, four products summed into each int32 lane), which
 * replaces AVX2's maddubs + madd pair and never saturates; a 512-bit
 * vector takes two 32-element blocks (four per loop step) or a Q4_K/Q5_K
 * 64-element chunk. Functions are non-static only so that benchmarks and
 * debuggers can name them; everything else reaches them through the table
 * at the end.
 */
#include "quant_arch.h"

#if defined(__x86_64__)

#include <immintrin.h>
#include <string.h>

#include "ktile_x86.h"
#include "quant_x86.h"

#define ALWAYS_INLINE static inline __attribute__((always_inline))

/* Column loops fully unrolled, so that each column's accumulators stay in
 * registers: left to GCC, the 8-column Q4_K kernel kept them on the stack
 * (as gemm_avx512.c found for the packed kernels). */
#define UNROLL_COLUMNS _Pragma("GCC unroll 8")

/* Two 256-bit halves into one 512-bit vector (lo in lanes 0-7). */
static inline __m512i join256(__m256i lo, __m256i hi) {
    return _mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1);
}

/* [a x 8 | b x 8] */
static inline __m512 two_scales(float a, float b) {
    return _mm512_insertf32x8(_mm512_set1_ps(a), _mm256_set1_ps(b), 1);
}

/* 16 int32 sums of x * y (signed x signed) over 64 bytes: vpdpbusd wants an
 * unsigned left side, so use |x| and give y the sign of x. */
static inline __m512i dot_i8_512(__m512i x, __m512i y) {
    __mmask64 neg = _mm512_movepi8_mask(x);
    __m512i sy = _mm512_mask_sub_epi8(y, neg, _mm512_setzero_si512(), y);
    return _mm512_dpbusd_epi32(_mm512_setzero_si512(), _mm512_abs_epi8(x), sy);
}

/* ==== float types ========================================================= */

void eng__vec_dot_f32_avx512(int n, float *restrict s, const void *restrict vx,
                             const void *restrict vy) {
    const float *x = vx, *y = vy;
    __m512 acc0 = _mm512_setzero_ps(), acc1 = _mm512_setzero_ps();
    int i = 0;
    for (; i + 32 <= n; i += 32) {
        acc0 = _mm512_fmadd_ps(_mm512_loadu_ps(x + i), _mm512_loadu_ps(y + i),
                               acc0);
        acc1 = _mm512_fmadd_ps(_mm512_loadu_ps(x + i + 16),
                               _mm512_loadu_ps(y + i + 16), acc1);
    }
    for (; i + 16 <= n; i += 16)
        acc0 = _mm512_fmadd_ps(_mm512_loadu_ps(x + i), _mm512_loadu_ps(y + i),
                               acc0);
    if (i < n) {
        /* Masked loads finish the row without a scalar loop. */
        __mmask16 m = (__mmask16)((1u << (n - i)) - 1);
        acc1 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, x + i),
                               _mm512_maskz_loadu_ps(m, y + i), acc1);
    }
    *s = hsum_ps_512(_mm512_add_ps(acc0, acc1));
}

void eng__vec_dot_f16_avx512(int n, float *restrict s, const void *restrict vx,
                             const void *restrict vy) {
    const eng_fp16 *x = vx, *y = vy;
    __m512 acc0 = _mm512_setzero_ps(), acc1 = _mm512_setzero_ps();
    int i = 0;
    for (; i + 32 <= n; i += 32) {
        acc0 = _mm512_fmadd_ps(
            _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(x + i))),
            _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(y + i))),
            acc0);
        acc1 = _mm512_fmadd_ps(
            _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(x + i + 16))),
            _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(y + i + 16))),
            acc1);
    }
    if (i < n) {
        for (; i + 16 <= n; i += 16)
            acc0 = _mm512_fmadd_ps(
                _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(x + i))),
                _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(y + i))),
                acc0);
        if (i < n) {
            __mmask16 m = (__mmask16)((1u << (n - i)) - 1);
            acc1 = _mm512_fmadd_ps(
                _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, x + i)),
                _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, y + i)), acc1);
        }
    }
    *s = hsum_ps_512(_mm512_add_ps(acc0, acc1));
}

/* vdpbf16ps multiplies bf16 pairs exactly and adds both products to the
 * fp32 lane, as ggml does on CPUs with AVX512_BF16. */
void eng__vec_dot_bf16_avx512(int n, float *restrict s, const void *restrict vx,
                              const void *restrict vy) {
    const eng_bf16 *x = vx, *y = vy;
    __m512 acc0 = _mm512_setzero_ps(), acc1 = _mm512_setzero_ps();
    int i = 0;
    for (; i + 64 <= n; i += 64) {
        acc0 = _mm512_dpbf16_ps(acc0, (__m512bh)_mm512_loadu_si512(x + i),
                                (__m512bh)_mm512_loadu_si512(y + i));
        acc1 = _mm512_dpbf16_ps(acc1, (__m512bh)_mm512_loadu_si512(x + i + 32),
                                (__m512bh)_mm512_loadu_si512(y + i + 32));
    }
    for (; i + 32 <= n; i += 32)
        acc0 = _mm512_dpbf16_ps(acc0, (__m512bh)_mm512_loadu_si512(x + i),
                                (__m512bh)_mm512_loadu_si512(y + i));
    if (i < n) {
        /* Zero-filled tail: the missing products add exactly 0. */
        __mmask32 m = (__mmask32)((1ull << (n - i)) - 1);
        acc1 =
            _mm512_dpbf16_ps(acc1, (__m512bh)_mm512_maskz_loadu_epi16(m, x + i),
                             (__m512bh)_mm512_maskz_loadu_epi16(m, y + i));
    }
    *s = hsum_ps_512(_mm512_add_ps(acc0, acc1));
}

/* ==== 32-element blocks ================================================== */

void eng__vec_dot_q8_0_q8_0_avx512(int n, float *restrict s,
                                   const void *restrict vx,
                                   const void *restrict vy) {
    const block_q8_0 *x = vx;
    const block_q8_0 *y = vy;
    const int nb = n / QK8_0;
    __m512 acc0 = _mm512_setzero_ps(), acc1 = _mm512_setzero_ps();
    int i = 0;
    for (; i + 4 <= nb; i += 4) {
        /* Two independent chains of two blocks each hide FMA latency. */
        for (int h = 0; h < 2; h++) {
            const block_q8_0 *a = x + i + 2 * h, *b = y + i + 2 * h;
            __m512i qx = join256(_mm256_loadu_si256((const __m256i *)a[0].qs),
                                 _mm256_loadu_si256((const __m256i *)a[1].qs));
            __m512i qy = join256(_mm256_loadu_si256((const __m256i *)b[0].qs),
                                 _mm256_loadu_si256((const __m256i *)b[1].qs));
            __m512 d =
                two_scales(fp16_to_f32_f16c(a[0].d) * fp16_to_f32_f16c(b[0].d),
                           fp16_to_f32_f16c(a[1].d) * fp16_to_f32_f16c(b[1].d));
            __m512 p = _mm512_cvtepi32_ps(dot_i8_512(qx, qy));
            if (h == 0)
                acc0 = _mm512_fmadd_ps(d, p, acc0);
            else
                acc1 = _mm512_fmadd_ps(d, p, acc1);
        }
    }
    float sum = hsum_ps_512(_mm512_add_ps(acc0, acc1));
    /* Fewer than four blocks left: the 256-bit VNNI form. */
    for (; i < nb; i++) {
        __m256i qx = _mm256_loadu_si256((const __m256i *)x[i].qs);
        __m256i qy = _mm256_loadu_si256((const __m256i *)y[i].qs);
        __m256i p = _mm256_dpbusd_epi32(_mm256_setzero_si256(),
                                        _mm256_sign_epi8(qx, qx),
                                        _mm256_sign_epi8(qy, qx));
        sum += fp16_to_f32_f16c(x[i].d) * fp16_to_f32_f16c(y[i].d) *
               (float)hsum_i32_256(p);
    }
    *s = sum;
}

/* Q4_0 and Q5_0 four blocks at a time. The 4 x 16 bytes of nibbles load
 * as one vector; masking and shifting give [lo0 lo1 lo2 lo3] and
 * [hi0 .. hi3], and one two-source permute per block pair restores the
 * activation order [lo0 hi0 lo1 hi1]. The quants go into vpdpbusd unsigned
 * (q + 8 resp. q + 16) and the offset comes off as off * sum(y), one more
 * vpdpbusd. The eight fp16 scales convert in one vcvtph2ps. */
ALWAYS_INLINE void nibbles_quad(const uint8_t *q0, const uint8_t *q1,
                                const uint8_t *q2, const uint8_t *q3,
                                __m512i *x0, __m512i *x1) {
    const __m512i m4 = _mm512_set1_epi8(0xf);
    const __m512i idx0 = _mm512_setr_epi64(0, 1, 8, 9, 2, 3, 10, 11);
    const __m512i idx1 = _mm512_setr_epi64(4, 5, 12, 13, 6, 7, 14, 15);
    __m512i q = _mm512_castsi128_si512(_mm_loadu_si128((const __m128i *)q0));
    q = _mm512_inserti32x4(q, _mm_loadu_si128((const __m128i *)q1), 1);
    q = _mm512_inserti32x4(q, _mm_loadu_si128((const __m128i *)q2), 2);
    q = _mm512_inserti32x4(q, _mm_loadu_si128((const __m128i *)q3), 3);
    __m512i lo = _mm512_and_si512(q, m4);
    __m512i hi = _mm512_and_si512(_mm512_srli_epi16(q, 4), m4);
    *x0 = _mm512_permutex2var_epi64(lo, idx0, hi);
    *x1 = _mm512_permutex2var_epi64(lo, idx1, hi);
}

/* d[k] = fp16(a_k) * fp16(b_k) spread as [d0 x 8 | d1 x 8], [d2 | d3]. */
ALWAYS_INLINE void scales_quad(const eng_fp16 a[4], const eng_fp16 b[4],
                               __m512 *d01, __m512 *d23) {
    const __m512i sel0 =
        _mm512_setr_epi32(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1);
    const __m512i sel1 =
        _mm512_setr_epi32(2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3);
    __m256 dd = _mm256_cvtph_ps(
        _mm_setr_epi16((short)a[0], (short)a[1], (short)a[2], (short)a[3],
                       (short)b[0], (short)b[1], (short)b[2], (short)b[3]));
    __m512 d4 = _mm512_castps128_ps512(
        _mm_mul_ps(_mm256_castps256_ps128(dd), _mm256_extractf128_ps(dd, 1)));
    *d01 = _mm512_permutexvar_ps(sel0, d4);
    *d23 = _mm512_permutexvar_ps(sel1, d4);
}

/* 16 int32 partial sums of (u - off) * y for unsigned u. */
ALWAYS_INLINE __m512i dot_u8_off(__m512i u, __m512i y, __m512i off) {
    return _mm512_sub_epi32(
        _mm512_dpbusd_epi32(_mm512_setzero_si512(), u, y),
        _mm512_dpbusd_epi32(_mm512_setzero_si512(), off, y));
}

ALWAYS_INLINE __m512i load_q8_pair(const block_q8_0 *b) {
    return join256(_mm256_loadu_si256((const __m256i *)b[0].qs),
                   _mm256_loadu_si256((const __m256i *)b[1].qs));
}

/* One leftover block the 256-bit way (signed x signed via |x|). */
ALWAYS_INLINE float dot_block_i8(__m256i qx, const block_q8_0 *b, float dx) {
    __m256i qy = _mm256_loadu_si256((const __m256i *)b->qs);
    __m256i p =
        _mm256_dpbusd_epi32(_mm256_setzero_si256(), _mm256_sign_epi8(qx, qx),
                            _mm256_sign_epi8(qy, qx));
    return dx * fp16_to_f32_f16c(b->d) * (float)hsum_i32_256(p);
}

void eng__vec_dot_q4_0_q8_0_avx512(int n, float *restrict s,
                                   const void *restrict vx,
                                   const void *restrict vy) {
    const block_q4_0 *x = vx;
    const block_q8_0 *y = vy;
    const int nb = n / QK8_0;
    const __m512i eight = _mm512_set1_epi8(8);
    __m512 acc0 = _mm512_setzero_ps(), acc1 = _mm512_setzero_ps();
    int i = 0;
    for (; i + 4 <= nb; i += 4) {
        const block_q4_0 *a = x + i;
        const block_q8_0 *b = y + i;
        __m512i x0, x1;
        nibbles_quad(a[0].qs, a[1].qs, a[2].qs, a[3].qs, &x0, &x1);
        const eng_fp16 da[4] = {a[0].d, a[1].d, a[2].d, a[3].d};
        const eng_fp16 db[4] = {b[0].d, b[1].d, b[2].d, b[3].d};
        __m512 d01, d23;
        scales_quad(da, db, &d01, &d23);
        acc0 = _mm512_fmadd_ps(
            d01, _mm512_cvtepi32_ps(dot_u8_off(x0, load_q8_pair(b), eight)),
            acc0);
        acc1 = _mm512_fmadd_ps(
            d23, _mm512_cvtepi32_ps(dot_u8_off(x1, load_q8_pair(b + 2), eight)),
            acc1);
    }
    float sum = hsum_ps_512(_mm512_add_ps(acc0, acc1));
    for (; i < nb; i++)
        sum += dot_block_i8(
            _mm256_sub_epi8(nibbles32(x[i].qs), _mm256_set1_epi8(8)), y + i,
            fp16_to_f32_f16c(x[i].d));
    *s = sum;
}

void eng__vec_dot_q5_0_q8_0_avx512(int n, float *restrict s,
                                   const void *restrict vx,
                                   const void *restrict vy) {
    const block_q5_0 *x = vx;
    const block_q8_0 *y = vy;
    const int nb = n / QK8_0;
    const __m512i sixteen = _mm512_set1_epi8(16);
    __m512 acc0 = _mm512_setzero_ps(), acc1 = _mm512_setzero_ps();
    int i = 0;
    for (; i + 4 <= nb; i += 4) {
        const block_q5_0 *a = x + i;
        const block_q8_0 *b = y + i;
        __m512i x0, x1;
        nibbles_quad(a[0].qs, a[1].qs, a[2].qs, a[3].qs, &x0, &x1);
        /* q + 16 = nibble | 5th bit << 4: set bits add 16 (bit j of a
         * block's qh is its element j, which sits at byte j). */
        uint32_t h[4];
        for (int k = 0; k < 4; k++)
            memcpy(&h[k], a[k].qh, 4);
        x0 = _mm512_mask_add_epi8(
            x0, (__mmask64)((uint64_t)h[0] | ((uint64_t)h[1] << 32)), x0,
            sixteen);
        x1 = _mm512_mask_add_epi8(
            x1, (__mmask64)((uint64_t)h[2] | ((uint64_t)h[3] << 32)), x1,
            sixteen);
        const eng_fp16 da[4] = {a[0].d, a[1].d, a[2].d, a[3].d};
        const eng_fp16 db[4] = {b[0].d, b[1].d, b[2].d, b[3].d};
        __m512 d01, d23;
        scales_quad(da, db, &d01, &d23);
        acc0 = _mm512_fmadd_ps(
            d01, _mm512_cvtepi32_ps(dot_u8_off(x0, load_q8_pair(b), sixteen)),
            acc0);
        acc1 = _mm512_fmadd_ps(
            d23,
            _mm512_cvtepi32_ps(dot_u8_off(x1, load_q8_pair(b + 2), sixteen)),
            acc1);
    }
    float sum = hsum_ps_512(_mm512_add_ps(acc0, acc1));
    for (; i < nb; i++) {
        uint32_t qh;
        memcpy(&qh, x[i].qh, 4);
        __m256i h = _mm256_andnot_si256(bits32_to_bytes(qh),
                                        _mm256_set1_epi8((char)0xf0));
        sum += dot_block_i8(_mm256_or_si256(nibbles32(x[i].qs), h), y + i,
                            fp16_to_f32_f16c(x[i].d));
    }
    *s = sum;
}

/* ==== K-quants ============================================================ */

/* A Q4_K/Q5_K super-block's 8 scales (int16 words 0-7) and 8 mins (words
 * 8-15), their 6-bit fields gathered in general registers and widened
 * together. The batched kernels take this form: their vector pipes are
 * busy with the columns, and the vector form below measured 5% slower
 * there (8 columns, Q4_K and Q5_K). */
static inline __m256i k4_scales_mins16_gpr(const uint8_t *q) {
    uint64_t sc, mn;
    k4_scales_mins_u64(q, &sc, &mn);
    return _mm256_cvtepu8_epi16(_mm_set_epi64x((long long)mn, (long long)sc));
}

/* The same 16 values unpacked in one vector: byte k of the result is
 *   k 0-3:   q[k] & 63            k 8-11:  q[k - 4] & 63
 *   k 4-7:   q[k + 4] & 15 | (q[k - 4] >> 6) << 4
 *   k 12-15: q[k - 4] >> 4 | (q[k - 8] >> 6) << 4
 * (the bytes of k4_scales_mins). The one-column Q4_K loop is bound by
 * how many instructions it issues (20 NOPs per super-block cost it 15%),
 * and this takes 8 where the 64-bit form took about 18. It reads 16
 * bytes: the 12 scale bytes and the first 4 of qs or qh. */
static inline __m256i k4_scales_mins16(const uint8_t *q) {
    const __m128i s = _mm_loadu_si128((const __m128i *)q);
    const __m128i a = _mm_shuffle_epi8(
        s, _mm_setr_epi8(0, 1, 2, 3, 8, 9, 10, 11, 4, 5, 6, 7, 8, 9, 10, 11));
    const __m128i b =
        _mm_shuffle_epi8(s, _mm_setr_epi8(-1, -1, -1, -1, 0, 1, 2, 3, -1, -1,
                                          -1, -1, 4, 5, 6, 7));
    /* bytes 12-15 shifted down a nibble, then each byte's low field */
    const __m128i lo =
        _mm_and_si128(_mm_mask_srli_epi16(a, 0xc0, a, 4),
                      _mm_setr_epi8(63, 63, 63, 63, 15, 15, 15, 15, 63, 63, 63,
                                    63, 15, 15, 15, 15));
    /* lo | ((b >> 2) & 0x30): the top two bits of b's bytes at 4-5 */
    const __m128i v = _mm_ternarylogic_epi32(lo, _mm_srli_epi16(b, 2),
                                             _mm_set1_epi8(0x30), 0xf8);
    return _mm256_cvtepu8_epi16(v);
}

/* The mins as int16, each twice, against the 16 bsums: lane k is
 * min[k] * (bsum[2k] + bsum[2k+1]) (Q4_K/Q5_K mins term). */
static inline __m256i k4_mins_vector(__m256i sm) {
    const __m256i idx = _mm256_setr_epi16(8, 8, 9, 9, 10, 10, 11, 11, 12, 12,
                                          13, 13, 14, 14, 15, 15);
    return _mm256_permutexvar_epi16(idx, sm);
}

static inline __m256i mins_dot_bsums(__m256i sm, const int16_t bsums[16]) {
    return _mm256_madd_epi16(k4_mins_vector(sm),
                             _mm256_loadu_si256((const __m256i *)bsums));
}

/* d * dy in lane 0 and dmin * dy in lane 1, from the block's first eight
 * bytes (d, dmin and two scale bytes) in one convert: the same products
 * as the scalar conversions and multiplies, in three operations instead
 * of six. */
static inline __m128 k4_d_dmin(const void *block, float dy) {
    return _mm_mul_ps(_mm_cvtph_ps(_mm_loadl_epi64((const __m128i *)block)),
                      _mm_set1_ps(dy));
}

/* Lane 1 of dd (dmin * dy) in all eight lanes. */
static inline __m256 k4_dmin8(__m128 dd) {
    return _mm256_permutexvar_ps(_mm256_set1_epi32(1),
                                 _mm256_castps128_ps256(dd));
}

/* A 64-element chunk of Q4_K/Q5_K as [low nibbles | high nibbles] lines up
 * with 64 consecutive activations: int32 lanes 0-7 of its vpdpbusd belong
 * to sub-block 2j, lanes 8-15 to 2j+1. Each lane's four products sum to
 * at most 4 * 31 * 128 in magnitude, so vpackssdw packs two chunks' lanes
 * into int16 without saturating, and one vpdpwssd multiplies them by the
 * sub-block scales and accumulates: three multiplier operations per two
 * chunks, where vpmaddubsw + vpdpwssd per chunk took four (Zen 5 issues
 * both kinds on the same two pipes; the pack goes elsewhere). */
static inline void k4_scale_vectors(__m256i sm, __m512i scw[2]) {
    const __m512i s16 = _mm512_castsi256_si512(sm);
    /* int16 lane m of pair p: from 128-bit lane m / 8 of chunk
     * 2p + (m % 8) / 4, whose first two 128-bit lanes are its low
     * sub-block: scale 4p + 2 ((m % 8) / 4) + m / 16 */
    static const short idx[2][32] = {
        {0, 0, 0, 0, 2, 2, 2, 2, 0, 0, 0, 0, 2, 2, 2, 2,
         1, 1, 1, 1, 3, 3, 3, 3, 1, 1, 1, 1, 3, 3, 3, 3},
        {4, 4, 4, 4, 6, 6, 6, 6, 4, 4, 4, 4, 6, 6, 6, 6,
         5, 5, 5, 5, 7, 7, 7, 7, 5, 5, 5, 5, 7, 7, 7, 7},
    };
    for (int p = 0; p < 2; p++)
        scw[p] = _mm512_permutexvar_epi16(_mm512_loadu_si512(idx[p]), s16);
}

/* Two chunks' (or vectors') products, summed per int16 pair by scw. */
static inline __m512i k_pair_dot(__m512i acc, __m512i q0, __m512i q1,
                                 const int8_t *q8, __m512i scw) {
    const __m512i a =
        _mm512_dpbusd_epi32(_mm512_setzero_si512(), q0, _mm512_loadu_si512(q8));
    const __m512i b = _mm512_dpbusd_epi32(_mm512_setzero_si512(), q1,
                                          _mm512_loadu_si512(q8 + 64));
    return _mm512_dpwssd_epi32(acc, _mm512_packs_epi32(a, b), scw);
}

/* A chunk's 32 bytes of nibbles as [low nibbles | high nibbles]: one
 * broadcast load, one variable shift of the high half and one and, where
 * two ands, a shift and an insert took four vector operations. Same
 * bytes: the 16-bit shift's carries land in the bits the mask clears. */
static inline __m512i k4_nibbles(const uint8_t *qs) {
    const __m512i q =
        _mm512_broadcast_i64x4(_mm256_loadu_si256((const __m256i *)qs));
    const __m512i shift =
        _mm512_inserti64x4(_mm512_setzero_si512(), _mm256_set1_epi16(4), 1);
    return _mm512_and_si512(_mm512_srlv_epi16(q, shift), _mm512_set1_epi8(0xf));
}

/* A Q5_K super-block's four chunks as in k4_nibbles with each byte's 5th
 * bit at bit 4. hh = [qh | qh >> 1] holds chunk j's bits at bit 2j of
 * each byte (low nibbles' in the first half, high nibbles' in the
 * second); a shift by 4 - 2j brings them to bit 4 (the 16-bit shifts move
 * bit 4 only within its byte) and one vpternlogd masks and merges: 9
 * vector operations where a mask, a shift and an or per chunk, a shift
 * between chunks and a join took 18. */
static inline void q5_K_quants(const uint8_t *qs, const uint8_t *qh,
                               __m512i q[4]) {
    const __m512i m10 = _mm512_set1_epi8(0x10);
    const __m512i hh = _mm512_srlv_epi16(
        _mm512_broadcast_i64x4(_mm256_loadu_si256((const __m256i *)qh)),
        _mm512_inserti64x4(_mm512_setzero_si512(), _mm256_set1_epi16(1), 1));
    /* 0xEA is (A & B) | C */
    q[0] = _mm512_ternarylogic_epi32(_mm512_slli_epi16(hh, 4), m10,
                                     k4_nibbles(qs), 0xEA);
    q[1] = _mm512_ternarylogic_epi32(_mm512_slli_epi16(hh, 2), m10,
                                     k4_nibbles(qs + 32), 0xEA);
    q[2] = _mm512_ternarylogic_epi32(hh, m10, k4_nibbles(qs + 64), 0xEA);
    q[3] = _mm512_ternarylogic_epi32(_mm512_srli_epi16(hh, 2), m10,
                                     k4_nibbles(qs + 96), 0xEA);
}

void eng__vec_dot_q4_K_q8_K_avx512(int n, float *restrict s,
                                   const void *restrict vx,
                                   const void *restrict vy) {
    const block_q4_K *x = vx;
    const block_q8_K *y = vy;
    __m512 acc = _mm512_setzero_ps();
    __m256 accm = _mm256_setzero_ps();
    for (int i = 0; i < n / QK_K; i++) {
        k_prefetch(x + i, sizeof(block_q4_K));
        const __m128 dd = k4_d_dmin(x + i, y[i].d);
        const __m256i sm = k4_scales_mins16(x[i].scales);
        accm = _mm256_fmadd_ps(
            k4_dmin8(dd), _mm256_cvtepi32_ps(mins_dot_bsums(sm, y[i].bsums)),
            accm);
        __m512i scw[2];
        k4_scale_vectors(sm, scw);
        /* one chain: integer sums, so the same lanes as two chains and an
         * add, in two instructions fewer */
        const uint8_t *q = x[i].qs;
        const __m512i s0 = k_pair_dot(_mm512_setzero_si512(), k4_nibbles(q),
                                      k4_nibbles(q + 32), y[i].qs, scw[0]);
        const __m512i s1 = k_pair_dot(
            s0, k4_nibbles(q + 64), k4_nibbles(q + 96), y[i].qs + 128, scw[1]);
        acc = _mm512_fmadd_ps(_mm512_broadcastss_ps(dd), _mm512_cvtepi32_ps(s1),
                              acc);
    }
    *s = hsum_ps_512(acc) - hsum_ps_256(accm);
}

void eng__vec_dot_q5_K_q8_K_avx512(int n, float *restrict s,
                                   const void *restrict vx,
                                   const void *restrict vy) {
    const block_q5_K *x = vx;
    const block_q8_K *y = vy;
    __m512 acc = _mm512_setzero_ps();
    __m256 accm = _mm256_setzero_ps();
    for (int i = 0; i < n / QK_K; i++) {
        k_prefetch(x + i, sizeof(block_q5_K));
        const __m128 dd = k4_d_dmin(x + i, y[i].d);
        const __m256i sm = k4_scales_mins16(x[i].scales);
        accm = _mm256_fmadd_ps(
            k4_dmin8(dd), _mm256_cvtepi32_ps(mins_dot_bsums(sm, y[i].bsums)),
            accm);
        __m512i scw[2];
        k4_scale_vectors(sm, scw);
        __m512i qq[4];
        q5_K_quants(x[i].qs, x[i].qh, qq);
        __m512i sumi = _mm512_setzero_si512();
        for (int p = 0; p < 2; p++)
            sumi = k_pair_dot(sumi, qq[2 * p], qq[2 * p + 1], y[i].qs + 128 * p,
                              scw[p]);
        acc = _mm512_fmadd_ps(_mm512_broadcastss_ps(dd),
                              _mm512_cvtepi32_ps(sumi), acc);
    }
    *s = hsum_ps_512(acc) - hsum_ps_256(accm);
}

/* Q6_K: quants stored +32, so dot(q - 32, y) = dot(q, y) - 32 * bsum per
 * 16-group. Half h of a block (128 quants) is two vectors: q[0] holds
 * quant rows 0 and 1 (low nibbles of ql[0, 64), high bit pairs 0-1 and
 * 2-3 of qh), q[1] rows 2 and 3 (the high nibbles, bit pairs 4-5 and
 * 6-7). One 64-byte load of ql, one broadcast of qh shifted by 0 | 2 in
 * its two halves, and three operations per vector, where 32-byte pieces
 * took 23 operations and two inserts per half. */
static inline void q6_quants(const uint8_t *ql, const uint8_t *qh,
                             __m512i q[2]) {
    const __m512i m4 = _mm512_set1_epi8(0xf), m30 = _mm512_set1_epi8(0x30);
    const __m512i l = _mm512_loadu_si512(ql);
    /* [qh | qh >> 2]; the 16-bit shifts' carries land in bits the masks
     * clear, as in the 32-byte form */
    const __m512i h = _mm512_srlv_epi16(
        _mm512_broadcast_i64x4(_mm256_loadu_si256((const __m256i *)qh)),
        _mm512_inserti64x4(_mm512_setzero_si512(), _mm256_set1_epi16(2), 1));
    /* (bits 4-5 of a shifted h) | nibble in one vpternlogd: 0xEA is
     * (A & B) | C */
    q[0] = _mm512_ternarylogic_epi32(_mm512_slli_epi16(h, 4), m30,
                                     _mm512_and_si512(l, m4), 0xEA);
    q[1] = _mm512_ternarylogic_epi32(
        h, m30, _mm512_and_si512(_mm512_srli_epi16(l, 4), m4), 0xEA);
}

/* The int16 scales of the packed pair of vectors 2h and 2h + 1 (the two
 * of half h), for k_pair_dot: int32 lane l of vector k holds four
 * products of 16-quant group 4k + l / 4, at most 4 * 63 * 128 in
 * magnitude, so the pack does not saturate; int16 lane m comes from
 * 128-bit lane m / 8 of vector 2h + (m % 8) / 4, group
 * 8h + 4 ((m % 8) / 4) + m / 8. */
static inline void q6_scale_vectors(__m256i sc16, __m512i scw[2]) {
    const __m512i s = _mm512_castsi256_si512(sc16);
    static const short idx[32] = {0, 0, 0, 0, 4, 4, 4, 4, 1, 1, 1,
                                  1, 5, 5, 5, 5, 2, 2, 2, 2, 6, 6,
                                  6, 6, 3, 3, 3, 3, 7, 7, 7, 7};
    const __m512i i0 = _mm512_loadu_si512(idx);
    scw[0] = _mm512_permutexvar_epi16(i0, s);
    scw[1] =
        _mm512_permutexvar_epi16(_mm512_add_epi16(i0, _mm512_set1_epi16(8)), s);
}

void eng__vec_dot_q6_K_q8_K_avx512(int n, float *restrict s,
                                   const void *restrict vx,
                                   const void *restrict vy) {
    const block_q6_K *x = vx;
    const block_q8_K *y = vy;
    __m512 acc = _mm512_setzero_ps();
    for (int i = 0; i < n / QK_K; i++) {
        k_prefetch(x + i, sizeof(block_q6_K));
        const float d = fp16_to_f32_f16c(x[i].d) * y[i].d;
        const __m256i sc16 =
            _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)x[i].scales));
        /* one chain from -32 * sum(scale * bsum) (the +32 of the quants)
         * through both halves: the same integers as two chains, an add and
         * a subtract, in four instructions fewer (this loop, like Q4_K's,
         * is bound by how many it issues) */
        const __m256i off = _mm256_slli_epi32(
            _mm256_madd_epi16(_mm256_sub_epi16(_mm256_setzero_si256(), sc16),
                              _mm256_loadu_si256((const __m256i *)y[i].bsums)),
            5);
        __m512i scw[2];
        q6_scale_vectors(sc16, scw);
        __m512i sumi = _mm512_zextsi256_si512(off);
        _Pragma("GCC unroll 2") for (int h = 0; h < 2; h++) {
            __m512i q[2];
            q6_quants(x[i].ql + 64 * h, x[i].qh + 32 * h, q);
            sumi = k_pair_dot(sumi, q[0], q[1], y[i].qs + 128 * h, scw[h]);
        }
        acc = _mm512_fmadd_ps(_mm512_set1_ps(d), _mm512_cvtepi32_ps(sumi), acc);
    }
    *s = hsum_ps_512(acc);
}

/* ==== batched dots (one weight row, nrc activation rows) ================== */

/* Each kernel decodes a weight block into registers once and then runs the
 * cheap per-column part nrc times. The *_impl functions are always inlined
 * into a switch on nrc so that every column count gets its accumulators in
 * registers (a run-time bound would spill them to the stack). */
#define NRC_DISPATCH(name, impl)                                               \
    void name(int n, int nrc, float *restrict s, const void *restrict vx,      \
              const void *restrict vy, size_t st) {                            \
        switch (nrc) {                                                         \
        case 1:                                                                \
            impl(n, 1, s, vx, vy, st);                                         \
            break;                                                             \
        case 2:                                                                \
            impl(n, 2, s, vx, vy, st);                                         \
            break;                                                             \
        case 3:                                                                \
            impl(n, 3, s, vx, vy, st);                                         \
            break;                                                             \
        case 4:                                                                \
            impl(n, 4, s, vx, vy, st);                                         \
            break;                                                             \
        case 5:                                                                \
            impl(n, 5, s, vx, vy, st);                                         \
            break;                                                             \
        case 6:                                                                \
            impl(n, 6, s, vx, vy, st);                                         \
            break;                                                             \
        case 7:                                                                \
            impl(n, 7, s, vx, vy, st);                                         \
            break;                                                             \
        default:                                                               \
            impl(n, 8, s, vx, vy, st);                                         \
            break;                                                             \
        }                                                                      \
    }

ALWAYS_INLINE const void *col(const void *vy, int c, size_t st) {
    return (const char *)vy + (size_t)c * st;
}

/* F16 rows: two vectors of x per step and two accumulators per column,
 * so the FMA chains stay independent even for nrc = 1. (The same kernel
 * for F32 and BF16 measured no faster than nrc vec_dot calls, since those
 * are bound by reading the activations, so they keep the default loop.) */
ALWAYS_INLINE __m512 load_f16x16(const eng_fp16 *p) {
    return _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)p));
}

ALWAYS_INLINE void f16_nrc_impl(int n, const int nrc, float *restrict s,
                                const void *restrict vx,
                                const void *restrict vy, size_t st) {
    const eng_fp16 *x = vx;
    __m512 acc0[ENG_NRC_MAX], acc1[ENG_NRC_MAX];
    UNROLL_COLUMNS
    for (int c = 0; c < nrc; c++)
        acc0[c] = acc1[c] = _mm512_setzero_ps();
    int i = 0;
    for (; i + 32 <= n; i += 32) {
        __m512 x0 = load_f16x16(x + i), x1 = load_f16x16(x + i + 16);
        UNROLL_COLUMNS
        for (int c = 0; c < nrc; c++) {
            const eng_fp16 *y = (const eng_fp16 *)col(vy, c, st) + i;
            acc0[c] = _mm512_fmadd_ps(x0, load_f16x16(y), acc0[c]);
            acc1[c] = _mm512_fmadd_ps(x1, load_f16x16(y + 16), acc1[c]);
        }
    }
    for (; i < n; i += 16) {
        __mmask16 m =
            n - i >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (n - i)) - 1);
        __m512 xv = _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, x + i));
        UNROLL_COLUMNS
        for (int c = 0; c < nrc; c++) {
            const eng_fp16 *y = col(vy, c, st);
            acc0[c] = _mm512_fmadd_ps(
                xv, _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, y + i)),
                acc0[c]);
        }
    }
    UNROLL_COLUMNS
    for (int c = 0; c < nrc; c++)
        s[c] = hsum_ps_512(_mm512_add_ps(acc0[c], acc1[c]));
}
NRC_DISPATCH(eng__vec_dot_f16_nrc_avx512, f16_nrc_impl)

/* Q8_0 and Q4_0 weights against Q8_0 columns, two blocks per vector: the
 * weights' |x| and sign mask are computed once, each column then costs a
 * masked negate, one vpdpbusd and one FMA. The odd last block (n/32 odd)
 * is zero-padded: a zero weight vector adds nothing. */
ALWAYS_INLINE void q8_0_pair_columns(const int nrc, __m512i qx, float dx0,
                                     float dx1, int i, const void *vy,
                                     size_t st, bool two, __m512 *acc) {
    const __mmask64 neg = _mm512_movepi8_mask(qx);
    const __m512i ax = _mm512_abs_epi8(qx);
    UNROLL_COLUMNS
    for (int c = 0; c < nrc; c++) {
        const block_q8_0 *y = (const block_q8_0 *)col(vy, c, st) + i;
        __m512i qy = two ? join256(_mm256_loadu_si256((const __m256i *)y[0].qs),
                                   _mm256_loadu_si256((const __m256i *)y[1].qs))
                         : _mm512_castsi256_si512(
                               _mm256_loadu_si256((const __m256i *)y[0].qs));
        __m512i sy = _mm512_mask_sub_epi8(qy, neg, _mm512_setzero_si512(), qy);
        __m512i p = _mm512_dpbusd_epi32(_mm512_setzero_si512(), ax, sy);
        __m512 d = two_scales(dx0 * fp16_to_f32_f16c(y[0].d),
                              two ? dx1 * fp16_to_f32_f16c(y[1].d) : 0.0f);
        acc[c] = _mm512_fmadd_ps(d, _mm512_cvtepi32_ps(p), acc[c]);
    }
}

ALWAYS_INLINE void q8_0_nrc_impl(int n, const int nrc, float *restrict s,
                                 const void *restrict vx,
                                 const void *restrict vy, size_t st) {
    const block_q8_0 *x = vx;
    const int nb = n / QK8_0;
    __m512 acc[ENG_NRC_MAX];
    UNROLL_COLUMNS
    for (int c = 0; c < nrc; c++)
        acc[c] = _mm512_setzero_ps();
    int i = 0;
    for (; i + 2 <= nb; i += 2) {
        __m512i qx = join256(_mm256_loadu_si256((const __m256i *)x[i].qs),
                             _mm256_loadu_si256((const __m256i *)x[i + 1].qs));
        q8_0_pair_columns(nrc, qx, fp16_to_f32_f16c(x[i].d),
                          fp16_to_f32_f16c(x[i + 1].d), i, vy, st, true, acc);
    }
    if (i < nb) {
        __m512i qx = _mm512_zextsi256_si512(
            _mm256_loadu_si256((const __m256i *)x[i].qs));
        q8_0_pair_columns(nrc, qx, fp16_to_f32_f16c(x[i].d), 0.0f, i, vy, st,
                          false, acc);
    }
    UNROLL_COLUMNS
    for (int c = 0; c < nrc; c++)
        s[c] = hsum_ps_512(acc[c]);
}
NRC_DISPATCH(eng__vec_dot_q8_0_nrc_avx512, q8_0_nrc_impl)

ALWAYS_INLINE void q4_0_nrc_impl(int n, const int nrc, float *restrict s,
                                 const void *restrict vx,
                                 const void *restrict vy, size_t st) {
    const block_q4_0 *x = vx;
    const int nb = n / QK8_0;
    const __m512i off = _mm512_set1_epi8(8);
    __m512 acc[ENG_NRC_MAX];
    UNROLL_COLUMNS
    for (int c = 0; c < nrc; c++)
        acc[c] = _mm512_setzero_ps();
    int i = 0;
    for (; i + 2 <= nb; i += 2) {
        __m512i qx = _mm512_sub_epi8(
            join256(nibbles32(x[i].qs), nibbles32(x[i + 1].qs)), off);
        q8_0_pair_columns(nrc, qx, fp16_to_f32_f16c(x[i].d),
                          fp16_to_f32_f16c(x[i + 1].d), i, vy, st, true, acc);
    }
    if (i < nb) {
        __m512i qx = _mm512_zextsi256_si512(
            _mm256_sub_epi8(nibbles32(x[i].qs), _mm256_set1_epi8(8)));
        q8_0_pair_columns(nrc, qx, fp16_to_f32_f16c(x[i].d), 0.0f, i, vy, st,
                          false, acc);
    }
    UNROLL_COLUMNS
    for (int c = 0; c < nrc; c++)
        s[c] = hsum_ps_512(acc[c]);
}
NRC_DISPATCH(eng__vec_dot_q4_0_nrc_avx512, q4_0_nrc_impl)

/* Q5_0: the 5th bits of two blocks form one 64-bit lane mask. q - 16 is
 * the low nibble where the bit is set and the nibble minus 16 where it is
 * clear, i.e. one masked subtract. A lone last block masks its upper half
 * to zero instead. */
ALWAYS_INLINE __m512i q5_0_pair(const block_q5_0 *a, bool two) {
    uint32_t h0, h1 = 0;
    memcpy(&h0, a[0].qh, 4);
    __m512i nib;
    if (two) {
        memcpy(&h1, a[1].qh, 4);
        nib = join256(nibbles32(a[0].qs), nibbles32(a[1].qs));
    } else {
        nib = _mm512_zextsi256_si512(nibbles32(a[0].qs));
    }
    const uint64_t hb = (uint64_t)h0 | ((uint64_t)h1 << 32);
    const uint64_t live = two ? ~0ull : 0xffffffffull;
    return _mm512_mask_sub_epi8(nib, (__mmask64)(~hb & live), nib,
                                _mm512_set1_epi8(16));
}

ALWAYS_INLINE void q5_0_nrc_impl(int n, const int nrc, float *restrict s,
                                 const void *restrict vx,
                                 const void *restrict vy, size_t st) {
    const block_q5_0 *x = vx;
    const int nb = n / QK8_0;
    __m512 acc[ENG_NRC_MAX];
    UNROLL_COLUMNS
    for (int c = 0; c < nrc; c++)
        acc[c] = _mm512_setzero_ps();
    int i = 0;
    for (; i + 2 <= nb; i += 2)
        q8_0_pair_columns(nrc, q5_0_pair(x + i, true), fp16_to_f32_f16c(x[i].d),
                          fp16_to_f32_f16c(x[i + 1].d), i, vy, st, true, acc);
    if (i < nb)
        q8_0_pair_columns(nrc, q5_0_pair(x + i, false),
                          fp16_to_f32_f16c(x[i].d), 0.0f, i, vy, st, false,
                          acc);
    UNROLL_COLUMNS
    for (int c = 0; c < nrc; c++)
        s[c] = hsum_ps_512(acc[c]);
}
NRC_DISPATCH(eng__vec_dot_q5_0_nrc_avx512, q5_0_nrc_impl)

/* Q4_1 / Q5_1 against Q8_1: the weights are unsigned (0..15 / 0..31), so
 * vpdpbusd takes them as they are; the min enters through the
 * activation's s = d * sum(q) once per block. */
ALWAYS_INLINE void q8_1_pair_columns(const int nrc, __m512i ux,
                                     const float dx[2], const float mx[2],
                                     int i, const void *vy, size_t st, bool two,
                                     __m512 *acc, float *summ) {
    UNROLL_COLUMNS
    for (int c = 0; c < nrc; c++) {
        const block_q8_1 *y = (const block_q8_1 *)col(vy, c, st) + i;
        __m512i qy = two ? join256(_mm256_loadu_si256((const __m256i *)y[0].qs),
                                   _mm256_loadu_si256((const __m256i *)y[1].qs))
                         : _mm512_zextsi256_si512(
                               _mm256_loadu_si256((const __m256i *)y[0].qs));
        __m512i p = _mm512_dpbusd_epi32(_mm512_setzero_si512(), ux, qy);
        __m512 d = two_scales(dx[0] * fp16_to_f32_f16c(y[0].d),
                              two ? dx[1] * fp16_to_f32_f16c(y[1].d) : 0.0f);
        acc[c] = _mm512_fmadd_ps(d, _mm512_cvtepi32_ps(p), acc[c]);
        summ[c] += mx[0] * fp16_to_f32_f16c(y[0].s);
        if (two)
            summ[c] += mx[1] * fp16_to_f32_f16c(y[1].s);
    }
}

ALWAYS_INLINE void q4_1_nrc_impl(int n, const int nrc, float *restrict s,
                                 const void *restrict vx,
                                 const void *restrict vy, size_t st) {
    const block_q4_1 *x = vx;
    const int nb = n / QK8_1;
    __m512 acc[ENG_NRC_MAX];
    float summ[ENG_NRC_MAX];
    UNROLL_COLUMNS
    for (int c = 0; c < nrc; c++) {
        acc[c] = _mm512_setzero_ps();
        summ[c] = 0;
    }
    for (int i = 0; i < nb; i += 2) {
        const bool two = i + 1 < nb;
        __m512i ux = two ? join256(nibbles32(x[i].qs), nibbles32(x[i + 1].qs))
                         : _mm512_zextsi256_si512(nibbles32(x[i].qs));
        const float dx[2] = {fp16_to_f32_f16c(x[i].d),
                             two ? fp16_to_f32_f16c(x[i + 1].d) : 0.0f};
        const float mx[2] = {fp16_to_f32_f16c(x[i].m),
                             two ? fp16_to_f32_f16c(x[i + 1].m) : 0.0f};
        q8_1_pair_columns(nrc, ux, dx, mx, i, vy, st, two, acc, summ);
    }
    UNROLL_COLUMNS
    for (int c = 0; c < nrc; c++)
        s[c] = hsum_ps_512(acc[c]) + summ[c];
}
/* Only batched: for one column this measured slower than the AVX2 kernel
 * (four scalar fp16 scales per block pair dominate), so vec_dot stays AVX2. */
NRC_DISPATCH(eng__vec_dot_q4_1_nrc_avx512, q4_1_nrc_impl)

ALWAYS_INLINE void q5_1_nrc_impl(int n, const int nrc, float *restrict s,
                                 const void *restrict vx,
                                 const void *restrict vy, size_t st) {
    const block_q5_1 *x = vx;
    const int nb = n / QK8_1;
    __m512 acc[ENG_NRC_MAX];
    float summ[ENG_NRC_MAX];
    UNROLL_COLUMNS
    for (int c = 0; c < nrc; c++) {
        acc[c] = _mm512_setzero_ps();
        summ[c] = 0;
    }
    for (int i = 0; i < nb; i += 2) {
        const bool two = i + 1 < nb;
        uint32_t h0, h1 = 0;
        memcpy(&h0, x[i].qh, 4);
        if (two)
            memcpy(&h1, x[i + 1].qh, 4);
        __m512i nib = two ? join256(nibbles32(x[i].qs), nibbles32(x[i + 1].qs))
                          : _mm512_zextsi256_si512(nibbles32(x[i].qs));
        __m512i ux = _mm512_mask_add_epi8(
            nib, (__mmask64)((uint64_t)h0 | ((uint64_t)h1 << 32)), nib,
            _mm512_set1_epi8(16));
        const float dx[2] = {fp16_to_f32_f16c(x[i].d),
                             two ? fp16_to_f32_f16c(x[i + 1].d) : 0.0f};
        const float mx[2] = {fp16_to_f32_f16c(x[i].m),
                             two ? fp16_to_f32_f16c(x[i + 1].m) : 0.0f};
        q8_1_pair_columns(nrc, ux, dx, mx, i, vy, st, two, acc, summ);
    }
    UNROLL_COLUMNS
    for (int c = 0; c < nrc; c++)
        s[c] = hsum_ps_512(acc[c]) + summ[c];
}
NRC_DISPATCH(eng__vec_dot_q5_1_nrc_avx512, q5_1_nrc_impl)

void eng__vec_dot_q5_1_q8_1_avx512(int n, float *restrict s,
                                   const void *restrict vx,
                                   const void *restrict vy) {
    q5_1_nrc_impl(n, 1, s, vx, vy, 0);
}

/* Q4_K / Q5_K: a block decodes to four [low | high] 64-byte chunks, their
 * per-lane sub-block scales and the duplicated mins; per column the work
 * is two k_pair_dot and the bsums madd. */
typedef struct {
    __m512i q[4];
    __m512i sc[2]; /* int16 sub-block scales per pair (k4_scale_vectors) */
    __m256i mins;
    float d, dmin;
} k4_decoded;

ALWAYS_INLINE void k4_decode_scales(const uint8_t *scales, eng_fp16 d,
                                    eng_fp16 dmin, k4_decoded *k) {
    const __m256i sm = k4_scales_mins16_gpr(scales);
    k4_scale_vectors(sm, k->sc);
    k->mins = k4_mins_vector(sm);
    k->d = fp16_to_f32_f16c(d);
    k->dmin = fp16_to_f32_f16c(dmin);
}

ALWAYS_INLINE void k4_columns(const int nrc, const k4_decoded *k, int i,
                              const void *vy, size_t st, __m512 *acc,
                              __m256 *accm) {
    UNROLL_COLUMNS
    for (int c = 0; c < nrc; c++) {
        const block_q8_K *y = (const block_q8_K *)col(vy, c, st) + i;
        /* a chain per pair, as in the one-column kernel */
        const __m512i s0 = k_pair_dot(_mm512_setzero_si512(), k->q[0], k->q[1],
                                      y->qs, k->sc[0]);
        const __m512i s1 = k_pair_dot(_mm512_setzero_si512(), k->q[2], k->q[3],
                                      y->qs + 128, k->sc[1]);
        acc[c] = _mm512_fmadd_ps(_mm512_set1_ps(k->d * y->d),
                                 _mm512_cvtepi32_ps(_mm512_add_epi32(s0, s1)),
                                 acc[c]);
        __m256i mm = _mm256_madd_epi16(
            k->mins, _mm256_loadu_si256((const __m256i *)y->bsums));
        accm[c] = _mm256_fmadd_ps(_mm256_set1_ps(k->dmin * y->d),
                                  _mm256_cvtepi32_ps(mm), accm[c]);
    }
}

/* Super-block i of a Q4_K row against nrc columns, into acc and accm. */
ALWAYS_INLINE void q4_K_sb(const int nrc, const block_q4_K *x, int i,
                           const void *vy, size_t st, __m512 *acc,
                           __m256 *accm) {
    k4_decoded k;
    k4_decode_scales(x[i].scales, x[i].d, x[i].dmin, &k);
    for (int j = 0; j < 4; j++)
        k.q[j] = k4_nibbles(x[i].qs + 32 * j);
    k4_columns(nrc, &k, i, vy, st, acc, accm);
}

ALWAYS_INLINE void q4_K_nrc_impl(int n, const int nrc, float *restrict s,
                                 const void *restrict vx,
                                 const void *restrict vy, size_t st) {
    const block_q4_K *x = vx;
    __m512 acc[ENG_NRC_MAX];
    __m256 accm[ENG_NRC_MAX];
    UNROLL_COLUMNS
    for (int c = 0; c < nrc; c++) {
        acc[c] = _mm512_setzero_ps();
        accm[c] = _mm256_setzero_ps();
    }
    for (int i = 0; i < n / QK_K; i++)
        q4_K_sb(nrc, x, i, vy, st, acc, accm);
    UNROLL_COLUMNS
    for (int c = 0; c < nrc; c++)
        s[c] = hsum_ps_512(acc[c]) - hsum_ps_256(accm[c]);
}
NRC_DISPATCH(eng__vec_dot_q4_K_nrc_avx512, q4_K_nrc_impl)

ALWAYS_INLINE void q5_K_sb(const int nrc, const block_q5_K *x, int i,
                           const void *vy, size_t st, __m512 *acc,
                           __m256 *accm) {
    k4_decoded k;
    k4_decode_scales(x[i].scales, x[i].d, x[i].dmin, &k);
    q5_K_quants(x[i].qs, x[i].qh, k.q);
    k4_columns(nrc, &k, i, vy, st, acc, accm);
}

ALWAYS_INLINE void q5_K_nrc_impl(int n, const int nrc, float *restrict s,
                                 const void *restrict vx,
                                 const void *restrict vy, size_t st) {
    const block_q5_K *x = vx;
    __m512 acc[ENG_NRC_MAX];
    __m256 accm[ENG_NRC_MAX];
    UNROLL_COLUMNS
    for (int c = 0; c < nrc; c++) {
        acc[c] = _mm512_setzero_ps();
        accm[c] = _mm256_setzero_ps();
    }
    for (int i = 0; i < n / QK_K; i++)
        q5_K_sb(nrc, x, i, vy, st, acc, accm);
    UNROLL_COLUMNS
    for (int c = 0; c < nrc; c++)
        s[c] = hsum_ps_512(acc[c]) - hsum_ps_256(accm[c]);
}
NRC_DISPATCH(eng__vec_dot_q5_K_nrc_avx512, q5_K_nrc_impl)

/* accm is unused: Q6_K has no mins term (see K_TILE). */
ALWAYS_INLINE void q6_K_sb(const int nrc, const block_q6_K *x, int i,
                           const void *vy, size_t st, __m512 *acc,
                           __m256 *accm) {
    (void)accm;
    /* q[2h + p]: vector p of half h, scw[] their scales (see
     * eng__vec_dot_q6_K_q8_K_avx512) */
    __m512i q[4], scw[2];
    const __m256i sc16 =
        _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)x[i].scales));
    q6_scale_vectors(sc16, scw);
    for (int h = 0; h < 2; h++)
        q6_quants(x[i].ql + 64 * h, x[i].qh + 32 * h, q + 2 * h);
    const float d = fp16_to_f32_f16c(x[i].d);
    UNROLL_COLUMNS
    for (int c = 0; c < nrc; c++) {
        const block_q8_K *y = (const block_q8_K *)col(vy, c, st) + i;
        __m512i sumi = _mm512_setzero_si512();
        for (int h = 0; h < 2; h++)
            sumi = k_pair_dot(sumi, q[2 * h], q[2 * h + 1], y->qs + 128 * h,
                              scw[h]);
        __m256i off = _mm256_slli_epi32(
            _mm256_madd_epi16(sc16,
                              _mm256_loadu_si256((const __m256i *)y->bsums)),
            5);
        sumi = _mm512_sub_epi32(sumi, _mm512_zextsi256_si512(off));
        acc[c] = _mm512_fmadd_ps(_mm512_set1_ps(d * y->d),
                                 _mm512_cvtepi32_ps(sumi), acc[c]);
    }
}

ALWAYS_INLINE void q6_K_nrc_impl(int n, const int nrc, float *restrict s,
                                 const void *restrict vx,
                                 const void *restrict vy, size_t st) {
    const block_q6_K *x = vx;
    __m512 acc[ENG_NRC_MAX];
    UNROLL_COLUMNS
    for (int c = 0; c < nrc; c++)
        acc[c] = _mm512_setzero_ps();
    for (int i = 0; i < n / QK_K; i++)
        q6_K_sb(nrc, x, i, vy, st, acc, NULL);
    UNROLL_COLUMNS
    for (int c = 0; c < nrc; c++)
        s[c] = hsum_ps_512(acc[c]);
}
NRC_DISPATCH(eng__vec_dot_q6_K_nrc_avx512, q6_K_nrc_impl)

/* ---- K-quant tiles ------------------------------------------------------- */

/* The tiles of ktile_x86.h: a step of super-blocks is T##_sb over all nc
 * columns at once. Without them the matmul took as many columns per pass
 * as fit 16 KB: one for the 8960-wide down projection of Qwen2.5-1.5B,
 * whose 7.7 MB of Q4_K / Q6_K weights an 8-token batch then read eight
 * times. */
#define KT512_STEP(T, nc, x, i0, i1, vy, st, acc, accm)                        \
    do {                                                                       \
        __m512 a[ENG_NRC_MAX];                                                 \
        __m256 am[ENG_NRC_MAX];                                                \
        UNROLL_COLUMNS                                                         \
        for (int c = 0; c < (nc); c++) {                                       \
            a[c] = (acc)[c];                                                   \
            am[c] = (accm)[c];                                                 \
        }                                                                      \
        for (int i = (i0); i < (i1); i++)                                      \
            T##_sb(nc, x, i, vy, st, a, am);                                   \
        UNROLL_COLUMNS                                                         \
        for (int c = 0; c < (nc); c++) {                                       \
            (acc)[c] = a[c];                                                   \
            (accm)[c] = am[c];                                                 \
        }                                                                      \
    } while (0)
#define KT512_FINAL0(a, am) hsum_ps_512(a)
#define KT512_FINAL1(a, am) (hsum_ps_512(a) - hsum_ps_256(am))
#define K_TILE_512(T, BLOCK, MINS)                                             \
    K_TILE(T, BLOCK, __m512, __m256, _mm512_setzero_ps, _mm256_setzero_ps,     \
           KT512_FINAL##MINS, T##_nrc_impl, KT512_STEP,                        \
           eng__vec_dot_##T##_tile_avx512)

K_TILE_512(q4_K, block_q4_K, 1)
K_TILE_512(q5_K, block_q5_K, 1)
K_TILE_512(q6_K, block_q6_K, 0)

/* ---- Q4_K / Q5_K tiles on packed Q8_K activations -------------------------
 *
 * The tiles above spend per column and super-block four vpdpbusd, two
 * packs, two vpdpwssd, an add, and five operations on the mins term. Here
 * the activations come rearranged (block_q8_K_packed, written once per
 * matmul) so that two vpdpbusd can chain: each int32 lane of A = W0.Y0 +
 * W1.Y1 (and of B = W2.Y2 + W3.Y3) then sums eight products of one
 * sub-block, at most 8 * 31 * 128 in magnitude, and one pack and one
 * vpmaddwd by the scales finish the super-block. The weights are decoded
 * in the same order once per row for all columns (k4p_decode). Lane 4l + m
 * of the result holds exactly the integer of lane 4l + m in k_pair_dot's
 * two pairs summed, and the float steps are q4_K_nrc_impl's (the mins as
 * float(min) * float(pair sum), both integers, so the same float as the
 * vpmaddwd and convert), so every output is bit-identical to vec_dot_nrc
 * and vec_dot on plain Q8_K rows: the packed layout serves batches only
 * (there is no vec_dot_nrc_packed) and one-token decode keeps vec_dot.
 * One thread, 8 columns, 128 x 8960 in L2: Q4_K 118-121 -> 141-143
 * GMAC/s (of which unaligned 64-byte loads of the 292-byte Q8_K blocks
 * were about 15 points); through eng_matmul with the conversion (`nib
 * bench --gemm --gemm-rows 1536 --gemm-cols 8960 -t 1`, batches 8 and
 * 64) Q4_K 86-111 -> 126-133, Q5_K 100-104 -> 108-115. */

/* Lane L of packed vector v (v = 0, 1 for A; 2, 3 for B) takes elements
 * e0 + 4 (v & 1) .. + 3 of sub-block s, where with l = L / 4, m = L / 2 %
 * 2, p = L % 2: s = 4p + l / 2 + 2 (v / 2), e0 = 16 (l % 2) + 8m. As
 * int32 indices into the 64 of the plain quants: */
ALWAYS_INLINE int k4p_src_dword(int v, int L) {
    const int l = L >> 2, m = (L >> 1) & 1, p = L & 1;
    const int s = 4 * p + (l >> 1) + 2 * (v >> 1);
    return 8 * s + 4 * (l & 1) + 2 * m + (v & 1);
}

void eng__quantize_row_q8_K_packed_avx512(const float *restrict x,
                                          void *restrict vy, int64_t k) {
    block_q8_K_packed *y = vy;
    for (int64_t i = 0; i < k / QK_K; i++) {
        /* the installed quantizer's bytes, so that a batch sees the same
         * quants as one-token decode */
        block_q8_K b;
        eng_type_traits[ENG_TYPE_Q8_K].from_float(x + i * QK_K, &b, QK_K);
        int32_t q[64], o[64];
        memcpy(q, b.qs, sizeof q);
        for (int v = 0; v < 4; v++)
            for (int L = 0; L < 16; L++)
                o[16 * v + L] = q[k4p_src_dword(v, L)];
        memcpy(y[i].qs, o, sizeof o);
        for (int j = 0; j < 8; j++)
            y[i].pairs[j] = (float)(b.bsums[2 * j] + b.bsums[2 * j + 1]);
        y[i].d = b.d;
        memset(y[i].pad, 0, sizeof y[i].pad);
    }
}

/* Plain dword k4p_w_idx[v][L] of the 128 bytes of nibbles (two 64-byte
 * halves) holds packed lane L's four quants of vector v: the low nibbles
 * for L < 8, the high ones above (sub-block s is nibble s % 2 of chunk
 * s / 2). */
static const int32_t k4p_w_idx[4][16] = {
    {0, 16, 2, 18, 4, 20, 6, 22, 0, 16, 2, 18, 4, 20, 6, 22},
    {1, 17, 3, 19, 5, 21, 7, 23, 1, 17, 3, 19, 5, 21, 7, 23},
    {8, 24, 10, 26, 12, 28, 14, 30, 8, 24, 10, 26, 12, 28, 14, 30},
    {9, 25, 11, 27, 13, 29, 15, 31, 9, 25, 11, 27, 13, 29, 15, 31},
};
/* Q5_K: the qh dword of the same elements, and the bit (sub-block s) */
static const int32_t k4p_h_idx[4][16] = {
    {0, 0, 2, 2, 4, 4, 6, 6, 0, 0, 2, 2, 4, 4, 6, 6},
    {1, 1, 3, 3, 5, 5, 7, 7, 1, 1, 3, 3, 5, 5, 7, 7},
    {0, 0, 2, 2, 4, 4, 6, 6, 0, 0, 2, 2, 4, 4, 6, 6},
    {1, 1, 3, 3, 5, 5, 7, 7, 1, 1, 3, 3, 5, 5, 7, 7},
};
static const int32_t k4p_h_shift[2][16] = {
    {0, 4, 0, 4, 0, 4, 0, 4, 1, 5, 1, 5, 1, 5, 1, 5},
    {2, 6, 2, 6, 2, 6, 2, 6, 3, 7, 3, 7, 3, 7, 3, 7},
};
/* int16 word w of 128-bit lane l: the scale of the sub-block the packed
 * lane behind it holds (words 0-3: A, 4-7: B) */
static const int16_t k4p_sc_idx[32] = {
    0, 4, 0, 4, 2, 6, 2, 6, 0, 4, 0, 4, 2, 6, 2, 6,
    1, 5, 1, 5, 3, 7, 3, 7, 1, 5, 1, 5, 3, 7, 3, 7,
};

typedef struct {
    __m512i w[4]; /* the quants in the packed order */
    __m512i sc;   /* int16 scales by k4p_sc_idx */
    __m256 mins;  /* float(min j) */
    float d, dmin;
} k4p_decoded;

ALWAYS_INLINE void k4p_decode(const block_q4_K *x, const int five,
                              k4p_decoded *k) {
    const uint8_t *qs = five ? ((const block_q5_K *)x)->qs : x->qs;
    const __m256i sm = k4_scales_mins16_gpr(x->scales);
    k->sc = _mm512_permutexvar_epi16(_mm512_loadu_si512(k4p_sc_idx),
                                     _mm512_castsi256_si512(sm));
    k->mins = _mm256_cvtepi32_ps(
        _mm256_cvtepu16_epi32(_mm256_extracti128_si256(sm, 1)));
    k->d = fp16_to_f32_f16c(x->d);
    k->dmin = fp16_to_f32_f16c(x->dmin);
    const __m512i q01 = _mm512_loadu_si512(qs),
                  q23 = _mm512_loadu_si512(qs + 64);
    /* low nibbles in the lower 256 bits, high ones in the upper */
    const __m512i shift =
        _mm512_inserti64x4(_mm512_setzero_si512(), _mm256_set1_epi16(4), 1);
    const __m512i m4 = _mm512_set1_epi8(0xf);
    __m512i qh = _mm512_setzero_si512();
    if (five)
        qh = _mm512_castsi256_si512(
            _mm256_loadu_si256((const __m256i *)((const block_q5_K *)x)->qh));
    for (int v = 0; v < 4; v++) {
        const __m512i t = _mm512_permutex2var_epi32(
            q01, _mm512_loadu_si512(k4p_w_idx[v]), q23);
        k->w[v] = _mm512_and_si512(_mm512_srlv_epi16(t, shift), m4);
        if (five) {
            /* bit s of each byte to bit 4 */
            const __m512i h = _mm512_srlv_epi32(
                _mm512_permutexvar_epi32(_mm512_loadu_si512(k4p_h_idx[v]), qh),
                _mm512_loadu_si512(k4p_h_shift[v >> 1]));
            k->w[v] = _mm512_ternarylogic_epi32(
                k->w[v], _mm512_slli_epi32(h, 4), _mm512_set1_epi8(0x10),
                0xf8); /* a | (b & c) */
        }
    }
}

/* Super-block i of one row against nrc packed columns. */
ALWAYS_INLINE void k4p_sb(const int nrc, const k4p_decoded *k, int i,
                          const void *vy, size_t st, __m512 *acc,
                          __m256 *accm) {
    /* d * dy and dmin * dy of every column: the products the plain kernel
     * forms one by one */
    float dy[ENG_NRC_MAX] = {0};
    UNROLL_COLUMNS
    for (int c = 0; c < nrc; c++)
        dy[c] = ((const block_q8_K_packed *)col(vy, c, st) + i)->d;
    float dd[ENG_NRC_MAX], dm[ENG_NRC_MAX];
    const __m256 dyv = _mm256_loadu_ps(dy);
    _mm256_storeu_ps(dd, _mm256_mul_ps(_mm256_set1_ps(k->d), dyv));
    _mm256_storeu_ps(dm, _mm256_mul_ps(_mm256_set1_ps(k->dmin), dyv));
    UNROLL_COLUMNS
    for (int c = 0; c < nrc; c++) {
        const block_q8_K_packed *y =
            (const block_q8_K_packed *)col(vy, c, st) + i;
        __m512i a = _mm512_dpbusd_epi32(_mm512_setzero_si512(), k->w[0],
                                        _mm512_loadu_si512(y->qs));
        a = _mm512_dpbusd_epi32(a, k->w[1], _mm512_loadu_si512(y->qs + 64));
        __m512i b = _mm512_dpbusd_epi32(_mm512_setzero_si512(), k->w[2],
                                        _mm512_loadu_si512(y->qs + 128));
        b = _mm512_dpbusd_epi32(b, k->w[3], _mm512_loadu_si512(y->qs + 192));
        const __m512i s = _mm512_madd_epi16(_mm512_packs_epi32(a, b), k->sc);
        acc[c] = _mm512_fmadd_ps(_mm512_set1_ps(dd[c]), _mm512_cvtepi32_ps(s),
                                 acc[c]);
        accm[c] = _mm256_fmadd_ps(
            _mm256_set1_ps(dm[c]),
            _mm256_mul_ps(k->mins, _mm256_loadu_ps(y->pairs)), accm[c]);
    }
}

#define K4P(T, BLOCK, FIVE)                                                    \
    ALWAYS_INLINE void T##_sb(const int nrc, const BLOCK *x, int i,            \
                              const void *vy, size_t st, __m512 *acc,          \
                              __m256 *accm) {                                  \
        k4p_decoded k;                                                         \
        k4p_decode((const block_q4_K *)(x + i), FIVE, &k);                     \
        k4p_sb(nrc, &k, i, vy, st, acc, accm);                                 \
    }                                                                          \
    ALWAYS_INLINE void T##_nrc_impl(int n, const int nrc, float *restrict s,   \
                                    const void *restrict vx,                   \
                                    const void *restrict vy, size_t st) {      \
        const BLOCK *x = vx;                                                   \
        __m512 acc[ENG_NRC_MAX];                                               \
        __m256 accm[ENG_NRC_MAX];                                              \
        UNROLL_COLUMNS                                                         \
        for (int c = 0; c < nrc; c++) {                                        \
            acc[c] = _mm512_setzero_ps();                                      \
            accm[c] = _mm256_setzero_ps();                                     \
        }                                                                      \
        for (int i = 0; i < n / QK_K; i++)                                     \
            T##_sb(nrc, x, i, vy, st, acc, accm);                              \
        UNROLL_COLUMNS                                                         \
        for (int c = 0; c < nrc; c++)                                          \
            s[c] = hsum_ps_512(acc[c]) - hsum_ps_256(accm[c]);                 \
    }                                                                          \
    K_TILE_512(T, BLOCK, 1)

K4P(q4_K_packed, block_q4_K, 0)
K4P(q5_K_packed, block_q5_K, 1)

/* ==== table =============================================================== */

const eng_arch_kernels eng__kernels_avx512 = {
    .isa = "avx512",
    .vec_dot =
        {
            [ENG_TYPE_F32] = eng__vec_dot_f32_avx512,
            [ENG_TYPE_F16] = eng__vec_dot_f16_avx512,
            [ENG_TYPE_BF16] = eng__vec_dot_bf16_avx512,
            [ENG_TYPE_Q8_0] = eng__vec_dot_q8_0_q8_0_avx512,
            [ENG_TYPE_Q4_0] = eng__vec_dot_q4_0_q8_0_avx512,
            [ENG_TYPE_Q5_0] = eng__vec_dot_q5_0_q8_0_avx512,
            [ENG_TYPE_Q5_1] = eng__vec_dot_q5_1_q8_1_avx512,
            [ENG_TYPE_Q4_K] = eng__vec_dot_q4_K_q8_K_avx512,
            [ENG_TYPE_Q5_K] = eng__vec_dot_q5_K_q8_K_avx512,
            [ENG_TYPE_Q6_K] = eng__vec_dot_q6_K_q8_K_avx512,
        },
    .vec_dot_nrc =
        {
            [ENG_TYPE_F16] = eng__vec_dot_f16_nrc_avx512,
            [ENG_TYPE_Q8_0] = eng__vec_dot_q8_0_nrc_avx512,
            [ENG_TYPE_Q4_0] = eng__vec_dot_q4_0_nrc_avx512,
            [ENG_TYPE_Q4_1] = eng__vec_dot_q4_1_nrc_avx512,
            [ENG_TYPE_Q5_0] = eng__vec_dot_q5_0_nrc_avx512,
            [ENG_TYPE_Q5_1] = eng__vec_dot_q5_1_nrc_avx512,
            [ENG_TYPE_Q4_K] = eng__vec_dot_q4_K_nrc_avx512,
            [ENG_TYPE_Q5_K] = eng__vec_dot_q5_K_nrc_avx512,
            [ENG_TYPE_Q6_K] = eng__vec_dot_q6_K_nrc_avx512,
        },
    .vec_dot_tile =
        {
            [ENG_TYPE_Q4_K] = eng__vec_dot_q4_K_tile_avx512,
            [ENG_TYPE_Q5_K] = eng__vec_dot_q5_K_tile_avx512,
            [ENG_TYPE_Q6_K] = eng__vec_dot_q6_K_tile_avx512,
        }, /* batches only: see K4P */
    .vec_dot_tile_packed =
        {
            [ENG_TYPE_Q4_K] = eng__vec_dot_q4_K_packed_tile_avx512,
            [ENG_TYPE_Q5_K] = eng__vec_dot_q5_K_packed_tile_avx512,
        },
    .from_float_packed =
        {
            [ENG_TYPE_Q8_K] = eng__quantize_row_q8_K_packed_avx512,
        },
};

#endif
