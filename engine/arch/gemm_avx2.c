/*
 * gemm_avx2.c — the AVX2 batched dots of Q4_K and Q5_K and their tiles
 * (compiled with the AVX2 flags; installed after quant_avx2.c's table by
 * eng_quant_init on CPUs with AVX2, and replaced in turn by the AVX-VNNI
 * and AVX-512 tables where those run).
 *
 * Each keeps its vec_dot's two accumulators per column (quants, and the
 * mins term subtracted at the end), so every column equals vec_dot bit
 * for bit; why that matters: see gemm_avx512.c and matmul.c.
 *
 * Also the packed-activation kernels of Q8_0, Q4_0 and Q5_0 and the packer
 * of their activation rows (packed_avx2.h).
 */
#include "quant_arch.h"

#if defined(__x86_64__)

#include <immintrin.h>

#include "dots_avx2.h"
#include "ktile_x86.h"
#include "packed_avx2.h"
#include "quant_x86.h"

#define ALWAYS_INLINE static inline __attribute__((always_inline))

/* Fully unrolled column loops keep the per-column sums in registers:
 * without, GCC kept them on the stack (Q4_K in four columns per pass). */
#define UNROLL_COLUMNS _Pragma("GCC unroll 4")

ALWAYS_INLINE const void *col(const void *vy, int c, size_t st) {
    return (const char *)vy + (size_t)c * st;
}

/* vec_dot per column: acc += (dx * dy) * sumi, accm += (dmin * dy) * mins,
 * result hsum(acc - accm). Four columns per pass: their sums, the FMA
 * accumulators and the decoded chunk take the 16 ymm registers and the
 * mins' accumulators go to the stack, once per block; against two
 * columns per pass, one thread, 8 columns of 1536-wide rows in cache:
 * 54-55 -> 58-67 GMAC/s. Q5_K (five) adds the 5th bits as its vec_dot
 * does: chunk j's are bits 2j (low nibbles) and 2j + 1 (high) of qh. */
ALWAYS_INLINE void k4_span(int i0, int i1, const int nrc,
                           const void *restrict vx, const void *restrict vy,
                           size_t st, __m256 *acc, __m256 *accm,
                           const int five) {
    const size_t bs = five ? sizeof(block_q5_K) : sizeof(block_q4_K);
    const __m256i m4 = _mm256_set1_epi8(0xf), one = _mm256_set1_epi8(1);
    for (int i = i0; i < i1; i++) {
        /* Q4_K and Q5_K share d, dmin, scales; qh, then qs in Q5_K */
        const block_q4_K *x4 = (const block_q4_K *)((const char *)vx + i * bs);
        const uint8_t *qs = five ? ((const block_q5_K *)x4)->qs : x4->qs;
        __m256i qh = five ? _mm256_loadu_si256(
                                (const __m256i *)((const block_q5_K *)x4)->qh)
                          : _mm256_setzero_si256();
        __m128i sc, mn;
        k4_scales_mins(x4->scales, &sc, &mn);
        const __m256i mn2 = k4_mins_twice(mn);
        const __m256i sc2 = _mm256_broadcastsi128_si256(sc);
        const float dx = fp16_to_f32_f16c(x4->d);
        const float dmx = fp16_to_f32_f16c(x4->dmin);
        __m256i sumi[4];
        UNROLL_COLUMNS
        for (int c = 0; c < nrc; c++) {
            const block_q8_K *y = (const block_q8_K *)col(vy, c, st) + i;
            accm[c] = _mm256_fmadd_ps(
                _mm256_set1_ps(dmx * y->d),
                _mm256_cvtepi32_ps(k4_mins_bsums(mn2, y->bsums)), accm[c]);
            sumi[c] = _mm256_setzero_si256();
        }
        for (int j = 0; j < QK_K / 64; j++) {
            __m256i q = _mm256_loadu_si256((const __m256i *)(qs + 32 * j));
            __m256i lo = _mm256_and_si256(q, m4);
            __m256i hi = _mm256_and_si256(_mm256_srli_epi16(q, 4), m4);
            if (five) {
                lo = _mm256_or_si256(
                    lo, _mm256_slli_epi16(_mm256_and_si256(qh, one), 4));
                hi = _mm256_or_si256(
                    hi,
                    _mm256_slli_epi16(
                        _mm256_and_si256(_mm256_srli_epi16(qh, 1), one), 4));
                qh = _mm256_srli_epi16(qh, 2);
            }
            /* the scales as vec_dot picks them: one vpshufb each where
             * a byte load and a broadcast took three operations (one
             * thread, 8 columns of 1536 in cache: Q4_K 67.5-68.7 ->
             * 72.8-73.0 GMAC/s, Q5_K 57.7-58.6 -> 65.3-65.9) */
            const __m256i s0 = k4_scale_pick16(sc2, 2 * j);
            const __m256i s1 = k4_scale_pick16(sc2, 2 * j + 1);
            UNROLL_COLUMNS
            for (int c = 0; c < nrc; c++) {
                const int8_t *q8 =
                    ((const block_q8_K *)col(vy, c, st) + i)->qs + 64 * j;
                __m256i p0 = _mm256_madd_epi16(
                    _mm256_maddubs_epi16(
                        lo, _mm256_loadu_si256((const __m256i *)q8)),
                    s0);
                __m256i p1 = _mm256_madd_epi16(
                    _mm256_maddubs_epi16(
                        hi, _mm256_loadu_si256((const __m256i *)(q8 + 32))),
                    s1);
                sumi[c] = _mm256_add_epi32(sumi[c], _mm256_add_epi32(p0, p1));
            }
        }
        UNROLL_COLUMNS
        for (int c = 0; c < nrc; c++) {
            const block_q8_K *y = (const block_q8_K *)col(vy, c, st) + i;
            acc[c] = _mm256_fmadd_ps(_mm256_set1_ps(dx * y->d),
                                     _mm256_cvtepi32_ps(sumi[c]), acc[c]);
        }
    }
}

ALWAYS_INLINE void k4_nrc4_impl(int n, const int nrc, float *restrict s,
                                const void *restrict vx,
                                const void *restrict vy, size_t st,
                                const int five) {
    __m256 acc[4], accm[4];
    UNROLL_COLUMNS
    for (int c = 0; c < nrc; c++)
        acc[c] = accm[c] = _mm256_setzero_ps();
    k4_span(0, n / QK_K, nrc, vx, vy, st, acc, accm, five);
    UNROLL_COLUMNS
    for (int c = 0; c < nrc; c++)
        s[c] = hsum_ps_256(_mm256_sub_ps(acc[c], accm[c]));
}

ALWAYS_INLINE void k4_nrc_exact(int n, int nrc, float *restrict s,
                                const void *restrict vx,
                                const void *restrict vy, size_t st,
                                const int five) {
    const char *y = vy;
    for (; nrc >= 4; nrc -= 4, s += 4, y += 4 * st)
        k4_nrc4_impl(n, 4, s, vx, y, st, five);
    switch (nrc) {
    case 3:
        k4_nrc4_impl(n, 3, s, vx, y, st, five);
        break;
    case 2:
        k4_nrc4_impl(n, 2, s, vx, y, st, five);
        break;
    case 1:
        k4_nrc4_impl(n, 1, s, vx, y, st, five);
        break;
    default:
        break;
    }
}

void eng__vec_dot_q4_K_nrc_exact_avx2(int n, int nrc, float *restrict s,
                                      const void *restrict vx,
                                      const void *restrict vy, size_t st) {
    k4_nrc_exact(n, nrc, s, vx, vy, st, 0);
}

/* Without it a Q5_K batch ran nrc vec_dots per row, each reading the row
 * again (see the figures in bench/README). */
void eng__vec_dot_q5_K_nrc_exact_avx2(int n, int nrc, float *restrict s,
                                      const void *restrict vx,
                                      const void *restrict vy, size_t st) {
    k4_nrc_exact(n, nrc, s, vx, vy, st, 1);
}

ALWAYS_INLINE void q4_K_span(int i0, int i1, const int nrc,
                             const void *restrict vx, const void *restrict vy,
                             size_t st, __m256 *acc, __m256 *accm) {
    k4_span(i0, i1, nrc, vx, vy, st, acc, accm, 0);
}
K_TILE_AVX2(q4_K, block_q4_K, 1, eng__vec_dot_q4_K_nrc_exact_avx2,
            eng__vec_dot_q4_K_tile_avx2)

ALWAYS_INLINE void q5_K_span(int i0, int i1, const int nrc,
                             const void *restrict vx, const void *restrict vy,
                             size_t st, __m256 *acc, __m256 *accm) {
    k4_span(i0, i1, nrc, vx, vy, st, acc, accm, 1);
}
K_TILE_AVX2(q5_K, block_q5_K, 1, eng__vec_dot_q5_K_nrc_exact_avx2,
            eng__vec_dot_q5_K_tile_avx2)

/* ==== packed activations (packed_avx2.h) ===================================
 */

/* The packed Q8_0 row: quantized by the installed from_float four blocks
 * at a time (the rounding every packed row must have), each group
 * transposed as a Q8_0 weight group is, + 128. */
void eng__quantize_row_q8_0_packed_avx2(const float *restrict x,
                                        void *restrict vy, int64_t k) {
    const eng_from_float_fn quantize =
        eng_type_traits[ENG_TYPE_Q8_0].from_float;
    const __m256i flip = _mm256_set1_epi8((char)0x80);
    int8_t *q = vy;
    float *d = (float *)(q + k);
    const int64_t nb = k / QK8_0;
    block_q8_0 b[4];
    int64_t i = 0;
    for (; i + 4 <= nb; i += 4) {
        quantize(x + i * QK8_0, b, 4 * QK8_0);
        pk_group g;
        pk_group_q8_0(b, &g, 0);
        for (int j = 0; j < 4; j++)
            _mm256_storeu_si256((__m256i *)(q + QK8_0 * i + 32 * j),
                                _mm256_xor_si256(g.w[j], flip));
        _mm_storeu_ps(d + i, _mm256_castps256_ps128(g.dx));
    }
    for (; i < nb; i++) {
        quantize(x + i * QK8_0, b, QK8_0);
        _mm256_storeu_si256(
            (__m256i *)(q + QK8_0 * i),
            _mm256_xor_si256(_mm256_loadu_si256((const __m256i *)b[0].qs),
                             flip));
        d[i] = fp16_to_f32_f16c(b[0].d);
    }
}

/* c + the lane sums of y[k] . w[k] with vpmaddubsw + vpmaddwd: the four
 * 16-bit products of a lane sum to at most 4 * 2 * 255 * 16 in magnitude,
 * exact for Q4_0 and Q5_0 weights (|w| <= 16). */
ALWAYS_INLINE __m256i pk_dot_avx2(const __m256i *w, const uint8_t *y, int nv,
                                  __m256i c) {
    __m256i s =
        _mm256_maddubs_epi16(_mm256_loadu_si256((const __m256i *)y), w[0]);
    PK_UNROLL
    for (int k = 1; k < nv; k++)
        s = _mm256_add_epi16(
            s, _mm256_maddubs_epi16(
                   _mm256_loadu_si256((const __m256i *)(y + 32 * k)), w[k]));
    return _mm256_add_epi32(c, _mm256_madd_epi16(s, _mm256_set1_epi16(1)));
}

ALWAYS_INLINE __m256i pk_c0_avx2(const __m256i *w, int nv) {
    const __m256i one = _mm256_set1_epi8(1);
    __m256i s = _mm256_maddubs_epi16(one, w[0]);
    PK_UNROLL
    for (int k = 1; k < nv; k++)
        s = _mm256_add_epi16(s, _mm256_maddubs_epi16(one, w[k]));
    return _mm256_madd_epi16(s, _mm256_set1_epi16(-128));
}

/* w unsigned (at most 31), ys signed: four pair sums of at most
 * 2 * 31 * 128 = 7936 each stay within int16 */
ALWAYS_INLINE __m256i pk_dotu_avx2(const __m256i *w, const int8_t *ys, int nv,
                                   __m256i c) {
    __m256i s =
        _mm256_maddubs_epi16(w[0], _mm256_load_si256((const __m256i *)ys));
    PK_UNROLL
    for (int k = 1; k < nv; k++)
        s = _mm256_add_epi16(
            s, _mm256_maddubs_epi16(
                   w[k], _mm256_load_si256((const __m256i *)(ys + 32 * k))));
    return _mm256_add_epi32(c, _mm256_madd_epi16(s, _mm256_set1_epi16(1)));
}

/* Q8_0: vpmaddubsw of the activations + 128 (up to 255) against weights
 * up to 128 in magnitude would saturate its 16-bit pair sums, so here the
 * activations go back to signed bytes and take each weight's sign, against
 * |w|: a pair then sums to at most 2 * 128 * 127 = 32512, and the lane sums
 * are the exact sum of w * a, so no -128 * (weights) correction. The
 * integers are the AVX-VNNI kernel's, the float steps packed_avx2.h's: the
 * two levels give the same bits. Against the four-column vec_dot_nrc and
 * vec_dot it replaces, NIB_FORCE_ISA=avx2, one thread, alternating:
 * 512 x 1536 8 columns 45.6 -> 68-70 GMAC/s, one column 28-35 -> 38.5-39.3;
 * 896 x 4864 8 columns 45-46 -> 70-71; one column streaming 27-28 -> 37-38.
 * 0.5B Q8_0 (`nib bench -p 256 -n 32 -r 2`, two pairs): prompt 205-216 ->
 * 314-317 tok/s, 8-token verify 54.6-55.9 -> 34.5-34.8 ms. */
ALWAYS_INLINE __m256i pk_dot_sign_avx2(const __m256i *w, const uint8_t *y,
                                       int nv, __m256i c) {
    const __m256i flip = _mm256_set1_epi8((char)0x80);
    PK_UNROLL
    for (int k = 0; k < nv; k++) {
        const __m256i a = _mm256_xor_si256(
            _mm256_loadu_si256((const __m256i *)(y + 32 * k)), flip);
        const __m256i p = _mm256_maddubs_epi16(_mm256_sign_epi8(w[k], w[k]),
                                               _mm256_sign_epi8(a, w[k]));
        c = _mm256_add_epi32(c, _mm256_madd_epi16(p, _mm256_set1_epi16(1)));
    }
    return c;
}

ALWAYS_INLINE __m256i pk_c0_none(const __m256i *w, int nv) {
    (void)w;
    (void)nv;
    return _mm256_setzero_si256();
}

/* UNS_SHIFT 0: unsigned Q8_0 weights (w + 128) would saturate the pairs
 * the same way, so one column keeps this path too */
PK_AVX2_KERNELS(q8_0, block_q8_0, pk_group_q8_0, q8_0_block_i8,
                pk_dot_sign_avx2, pk_c0_none, pk_dotu_avx2, 0, _avx2)
PK_AVX2_KERNELS(q4_0, block_q4_0, pk_group_q4_0, q4_0_block_i8, pk_dot_avx2,
                pk_c0_avx2, pk_dotu_avx2, 3, _avx2)
PK_AVX2_KERNELS(q5_0, block_q5_0, pk_group_q5_0, q5_0_block_i8, pk_dot_avx2,
                pk_c0_avx2, pk_dotu_avx2, 4, _avx2)

const eng_arch_kernels eng__kernels_avx2_gemm = {
    .isa = "avx2",
    .vec_dot_nrc =
        {
            [ENG_TYPE_Q4_K] = eng__vec_dot_q4_K_nrc_exact_avx2,
            [ENG_TYPE_Q5_K] = eng__vec_dot_q5_K_nrc_exact_avx2,
        },
    .vec_dot_tile =
        {
            [ENG_TYPE_Q4_K] = eng__vec_dot_q4_K_tile_avx2,
            [ENG_TYPE_Q5_K] = eng__vec_dot_q5_K_tile_avx2,
        },
    .vec_dot_nrc_packed =
        {
            [ENG_TYPE_Q8_0] = eng__vec_dot_q8_0_nrc_packed_avx2,
            [ENG_TYPE_Q4_0] = eng__vec_dot_q4_0_nrc_packed_avx2,
            [ENG_TYPE_Q5_0] = eng__vec_dot_q5_0_nrc_packed_avx2,
        },
    .from_float_packed =
        {
            [ENG_TYPE_Q8_0] = eng__quantize_row_q8_0_packed_avx2,
        },
    .vec_dot_tile_packed =
        {
            [ENG_TYPE_Q8_0] = eng__vec_dot_q8_0_tile_packed_avx2,
            [ENG_TYPE_Q4_0] = eng__vec_dot_q4_0_tile_packed_avx2,
            [ENG_TYPE_Q5_0] = eng__vec_dot_q5_0_tile_packed_avx2,
        },
};

#endif
